#include "service/watch_hub.h"

#include <google/protobuf/util/time_util.h>

#include <deque>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "codec/proto_convert.h"

namespace hpsched::service {
namespace {

namespace v1 = ::hpsched::v1;

v1::WatchJobResponse MakeEvent(v1::JobEventType type, const std::string& job_id,
                               const jobs::Job* job, int64_t effective_step, absl::Time time) {
  v1::WatchJobResponse event;
  event.set_type(type);
  if (job != nullptr) {
    codec::JobToProto(job->record, *job->plan, event.mutable_job());
  } else {
    event.mutable_job()->set_name(codec::JobName(job_id));
  }
  event.set_effective_step(effective_step);
  *event.mutable_event_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
  return event;
}

}  // namespace

// One stream. Writes go out one at a time from a queue; the last event (a delete, a close or an
// overflow) finishes the stream once it is written.
class WatchHub::Watch final : public grpc::ServerWriteReactor<v1::WatchJobResponse> {
 public:
  Watch(WatchHub* hub, std::string job_id, uint64_t sequence)
      : hub_(hub), job_id_(std::move(job_id)), sequence_(sequence) {}

  const std::string& job_id() const { return job_id_; }
  uint64_t sequence() const { return sequence_; }

  // Queues `event`; with `finish`, the stream ends with `status` after it (or at once without an
  // event).
  void Push(std::optional<v1::WatchJobResponse> event, bool finish,
            grpc::Status status = grpc::Status::OK) {
    absl::MutexLock lock(&mutex_);
    if (finishing_) return;
    if (event.has_value()) {
      if (queue_.size() >= kMaxQueuedEvents) {
        finishing_ = true;
        final_status_ = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                     "the watcher reads too slowly: more than 1024 events queued");
      } else {
        queue_.push_back(*std::move(event));
      }
    }
    if (finish && !finishing_) {
      finishing_ = true;
      final_status_ = status;
    }
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mutex_);
    writing_ = false;
    queue_.pop_front();  // the event just written: kept until now, whatever came meanwhile
    if (!ok) {
      // The client went away; OnCancel or OnDone follows.
      queue_.clear();
      if (!finished_) {
        finishing_ = true;
        final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
      }
    }
    PumpLocked();
  }

  void OnCancel() override {
    hub_->Remove(this);
    absl::MutexLock lock(&mutex_);
    // A write in flight still reads the front event (StartWrite keeps a pointer to it until
    // OnWriteDone, which may come after this with ok true and pops it): drop only the rest.
    // Clearing it all here freed the message under the write, and OnWriteDone then popped an
    // empty deque: a segfault when a watch was cancelled (deadline, client gone) mid-write.
    queue_.erase(writing_ ? std::next(queue_.begin()) : queue_.begin(), queue_.end());
    if (!finishing_) {
      finishing_ = true;
      final_status_ = grpc::Status::CANCELLED;
    }
    PumpLocked();
  }

  void OnDone() override {
    hub_->Remove(this);
    delete this;
  }

 private:
  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (writing_ || finished_) return;
    if (!queue_.empty()) {
      writing_ = true;
      StartWrite(&queue_.front());
    } else if (finishing_) {
      finished_ = true;
      Finish(final_status_);
    }
  }

  WatchHub* const hub_;
  const std::string job_id_;
  const uint64_t sequence_;
  absl::Mutex mutex_;
  std::deque<v1::WatchJobResponse> queue_ ABSL_GUARDED_BY(mutex_);
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finishing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mutex_);
};

namespace {

// A reactor that finishes at once with a status.
class FailedWatch final : public grpc::ServerWriteReactor<v1::WatchJobResponse> {
 public:
  explicit FailedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

WatchHub::~WatchHub() { Close(); }

grpc::ServerWriteReactor<v1::WatchJobResponse>* WatchHub::Fail(const grpc::Status& status) {
  return new FailedWatch(status);
}

grpc::ServerWriteReactor<v1::WatchJobResponse>* WatchHub::Start(
    std::shared_ptr<const jobs::Job> job) {
  absl::MutexLock lock(&mutex_);
  if (closed_) {
    return Fail(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
  }
  if (watches_.size() >= max_watches_) {
    return Fail(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                             absl::StrCat("the server holds its maximum of ", max_watches_,
                                          " watch streams; retry later")));
  }
  // Registered and given its snapshot under the hub's lock: no change can fall between the two.
  auto* watch = new Watch(this, job->record.job_id, next_sequence_++);
  watches_.emplace(job->record.job_id, watch);
  watch->Push(
      MakeEvent(v1::JOB_EVENT_TYPE_SNAPSHOT, job->record.job_id, job.get(), 0, clock_->Now()),
      false);
  return watch;
}

void WatchHub::OnJobEvent(const jobs::JobEvent& event) {
  absl::MutexLock lock(&mutex_);
  if (closed_ || !watches_.contains(event.job_id)) return;
  queue_.push_back(Queued{event, clock_->Now(), next_sequence_++});
  delivery_.Trigger();
}

void WatchHub::Deliver() {
  absl::MutexLock lock(&mutex_);
  while (!queue_.empty()) {
    const Queued queued = std::move(queue_.front());
    queue_.pop_front();
    const jobs::JobEvent& event = queued.event;
    v1::JobEventType type;
    switch (event.type) {
      case jobs::JobEvent::Type::kUpdated:
        type = v1::JOB_EVENT_TYPE_UPDATED;
        break;
      case jobs::JobEvent::Type::kPlateauReduced:
        type = v1::JOB_EVENT_TYPE_PLATEAU_REDUCED;
        break;
      case jobs::JobEvent::Type::kDeleted:
        type = v1::JOB_EVENT_TYPE_DELETED;
        break;
      default:
        continue;  // Changes of no value (reports that reduce nothing) are not events for watchers.
    }
    const bool last = event.type == jobs::JobEvent::Type::kDeleted;
    auto [begin, end] = watches_.equal_range(event.job_id);
    std::optional<v1::WatchJobResponse> message;
    for (auto it = begin; it != end;) {
      if (it->second->sequence() > queued.sequence) {
        ++it;
        continue;
      }
      if (!message.has_value()) {
        message = MakeEvent(type, event.job_id, event.job.get(), event.effective_step, queued.time);
      }
      it->second->Push(*message, last);
      it = last ? watches_.erase(it) : std::next(it);
    }
  }
}

void WatchHub::Close() {
  absl::MutexLock lock(&mutex_);
  closed_ = true;
  queue_.clear();
  for (auto& [job_id, watch] : watches_) watch->Push(std::nullopt, true);
  watches_.clear();
}

void WatchHub::Remove(Watch* watch) {
  absl::MutexLock lock(&mutex_);
  auto [begin, end] = watches_.equal_range(watch->job_id());
  for (auto it = begin; it != end; ++it) {
    if (it->second == watch) {
      watches_.erase(it);
      return;
    }
  }
}

size_t WatchHub::size() const {
  absl::MutexLock lock(&mutex_);
  return watches_.size();
}

}  // namespace hpsched::service
