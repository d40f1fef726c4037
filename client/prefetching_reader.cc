#include "client/prefetching_reader.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace hpsched::client {
namespace {

constexpr int64_t kNoChange = std::numeric_limits<int64_t>::max();

void LowerTo(std::atomic<int64_t>& value, int64_t candidate) {
  int64_t seen = value.load();
  while (candidate < seen && !value.compare_exchange_weak(seen, candidate)) {
  }
}

}  // namespace

PrefetchingReader::PrefetchingReader(Client* client, std::string job_id, PrefetchOptions options)
    : client_(client),
      job_name_(ToJobName(job_id)),
      options_([&] {
        options.window = std::max<int64_t>(options.window, 1);
        return options;
      }()),
      stale_from_(kNoChange) {
  if (options_.watch) watcher_ = std::thread([this] { WatchLoop(); });
}

PrefetchingReader::~PrefetchingReader() {
  stopping_ = true;
  {
    absl::MutexLock lock(&stream_mutex_);
    if (stream_ != nullptr) stream_->Cancel();
  }
  if (watcher_.joinable()) watcher_.join();
}

void PrefetchingReader::WatchLoop() {
  absl::Duration backoff = absl::Milliseconds(100);
  while (!stopping_) {
    std::unique_ptr<WatchStream> stream = client_->WatchJob(job_name_);
    {
      absl::MutexLock lock(&stream_mutex_);
      if (stopping_) return;
      stream_ = stream.get();
    }
    absl::Status ended;
    while (true) {
      absl::StatusOr<v1::WatchJobResponse> event = stream->Next();
      if (!event.ok()) {
        ended = event.status();
        break;
      }
      backoff = absl::Milliseconds(100);
      switch (event->type()) {
        case v1::JOB_EVENT_TYPE_SNAPSHOT: {
          // Changes made before the stream started (or while it was down) are in the snapshot:
          // every segment newer than the cached values' version makes them stale from its step.
          const int64_t cached = cached_version_.load();
          for (const v1::Hyperparameter& hp : event->job().hyperparameters()) {
            for (const v1::Segment& segment : hp.segments()) {
              if (segment.version() > cached) LowerTo(stale_from_, segment.effective_step());
            }
          }
          break;
        }
        case v1::JOB_EVENT_TYPE_UPDATED:
        case v1::JOB_EVENT_TYPE_PLATEAU_REDUCED:
          LowerTo(stale_from_, event->effective_step());
          break;
        default:
          break;
      }
    }
    {
      absl::MutexLock lock(&stream_mutex_);
      stream_ = nullptr;
    }
    // A deleted or unknown job has nothing more to watch; Value() reports NOT_FOUND itself.
    if (stopping_ || absl::IsOutOfRange(ended) || absl::IsNotFound(ended)) return;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

absl::Status PrefetchingReader::Fetch(int64_t step, int64_t count, v1::PendingPolicy policy) {
  v1::GetValuesRequest request;
  request.set_job(job_name_);
  request.set_step(step);
  request.set_count(count);
  request.set_pending_policy(policy);
  ++rpc_count_;
  auto response = client_->GetValues(request);
  if (!response.ok()) {
    usable_end_ = 0;
    window_values_.Clear();
    return response.status();
  }
  window_values_ = *std::move(response);
  cached_version_ = window_values_.version();
  usable_end_ = step + count;
  if (window_values_.has_provisional_from()) {
    usable_end_ = std::min(usable_end_, window_values_.provisional_from());
  }
  return absl::OkStatus();
}

absl::StatusOr<double> PrefetchingReader::Value(int64_t step, absl::string_view hyperparameter,
                                                int group) {
  const int64_t stale = stale_from_.exchange(kNoChange);
  if (stale < usable_end_) {
    usable_end_ = std::max(window_values_.start_step(), stale);
    ++invalidations_;
  }
  if (step < window_values_.start_step() || step >= usable_end_) {
    if (absl::Status s = Fetch(step, options_.window, v1::PENDING_POLICY_PROVISIONAL_NOW);
        !s.ok()) {
      return s;
    }
    // The step itself waits for metric reports: ask for it alone, waiting on the server, for as
    // long as max_wait allows (each call lasts the client's timeout).
    const absl::Time give_up = absl::Now() + options_.max_wait;
    while (step >= usable_end_) {
      absl::Status status = Fetch(step, 1, v1::PENDING_POLICY_UNSPECIFIED);
      if (status.ok()) break;
      if (!absl::IsDeadlineExceeded(status) || absl::Now() >= give_up) return status;
    }
  }
  for (const v1::Series& series : window_values_.series()) {
    if (series.hyperparameter() == hyperparameter && series.group() == group) {
      return series.values(static_cast<int>(step - window_values_.start_step()));
    }
  }
  return absl::NotFoundError(absl::StrCat(job_name_, " has no hyperparameter \"", hyperparameter,
                                          "\" with parameter group ", group));
}

}  // namespace hpsched::client
