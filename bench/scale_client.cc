// The gRPC side of the scale benchmark (bench/scale_bench.py): listing every job page by page, and
// WatchJob fan-out with an asynchronous (callback API) client holding thousands of streams.
// Prints one JSON object per measurement on stdout; the script turns them into Markdown.
//
//   scale_client list ADDRESS PAGE_SIZE
//       ListJobs page by page to the end; the time of every page, the first and last ten summed.
//   scale_client watch-one ADDRESS STREAMS ROUNDS
//       One job, STREAMS watchers (over STREAMS / 200 connections: the server allows 256 calls
//       per connection); ROUNDS times an UpdateJob, and the time from sending it to each stream's
//       event (every stream's, and the last one's per round), plus the UpdateJob's own latency.
//   scale_client watch-many ADDRESS JOBS ROUNDS
//       JOBS jobs with one watcher each; per round every job gets an UpdateJob (64 in flight), and
//       the time from sending each to its stream's event.
//
// Client and server share the machine's cores, so the latencies include the client's own work
// (parsing 10^4 copies of each event): an upper bound of the server's part.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "hpsched/v1/scheduler_service.grpc.pb.h"

namespace {

namespace v1 = ::hpsched::v1;
using Clock = std::chrono::steady_clock;

constexpr int kStreamsPerChannel = 200;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// The q-quantile (nearest rank) of `values`, sorted in place.
double Quantile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(q * static_cast<double>(values.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, values.size());
  return values[rank - 1];
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address) {
  grpc::ChannelArguments args;
  // A connection of its own (channels with equal arguments share one).
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

void Check(const grpc::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %d %s\n", what, status.error_code(), status.error_message().c_str());
    std::exit(1);
  }
}

void CreateJob(v1::SchedulerService::Stub* stub, const std::string& id) {
  v1::CreateJobRequest request;
  request.set_job_id(id);
  v1::Hyperparameter* lr = request.mutable_job()->add_hyperparameters();
  lr->set_name("lr");
  lr->add_base_values(0.1);
  lr->mutable_schedule()->mutable_cosine_annealing()->set_t_max(1000);
  v1::Job job;
  grpc::ClientContext context;
  Check(stub->CreateJob(&context, request, &job), "CreateJob");
}

v1::UpdateJobRequest Update(const std::string& id, int round) {
  v1::UpdateJobRequest request;
  request.set_name("jobs/" + id);
  v1::HyperparameterUpdate* update = request.add_updates();
  update->set_hyperparameter("lr");
  update->mutable_segment()->set_effective_step(1'000'000 + round);
  update->mutable_segment()->set_scale(0.99);
  return request;
}

int List(const std::string& address, int page_size) {
  auto stub = v1::SchedulerService::NewStub(Channel(address));
  std::vector<double> pages;
  std::string token;
  int64_t jobs = 0;
  const Clock::time_point start = Clock::now();
  do {
    v1::ListJobsRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    v1::ListJobsResponse response;
    grpc::ClientContext context;
    const Clock::time_point t0 = Clock::now();
    Check(stub->ListJobs(&context, request, &response), "ListJobs");
    pages.push_back(Ms(Clock::now() - t0));
    jobs += response.jobs_size();
    token = response.next_page_token();
  } while (!token.empty());
  const double total = Ms(Clock::now() - start);
  const size_t k = std::min<size_t>(10, pages.size());
  double first = 0, last = 0;
  for (size_t i = 0; i < k; ++i) {
    first += pages[i];
    last += pages[pages.size() - 1 - i];
  }
  std::vector<double> sorted = pages;
  std::printf(
      "{\"measure\": \"list\", \"jobs\": %lld, \"pages\": %zu, \"page_size\": %d, "
      "\"total_ms\": %.1f, \"first10_ms_per_page\": %.3f, \"last10_ms_per_page\": %.3f, "
      "\"median_ms_per_page\": %.3f}\n",
      static_cast<long long>(jobs), pages.size(), page_size, total, first / k, last / k,
      Quantile(sorted, 0.5));
  return 0;
}

// Counts, per round, the streams that got the round's event, and when each did.
class Fanout {
 public:
  Fanout(size_t streams, int rounds)
      : received_(static_cast<size_t>(rounds), std::vector<Clock::time_point>(streams)),
        counts_(static_cast<size_t>(rounds), 0) {}

  // The event of version `version` reached stream `index`; round = version - 2 (version 1 is the
  // created job).
  void Event(size_t index, int64_t version, Clock::time_point when) {
    const int64_t round = version - 2;
    absl::MutexLock lock(&mutex_);
    if (round < 0 || round >= static_cast<int64_t>(counts_.size())) return;
    received_[round][index] = when;
    ++counts_[round];
  }
  void Snapshot() {
    absl::MutexLock lock(&mutex_);
    ++snapshots_;
  }
  void Ended(const grpc::Status& status) {
    absl::MutexLock lock(&mutex_);
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      ++failed_;
      if (first_error_.empty()) first_error_ = status.error_message();
    }
    ++ended_;
  }
  bool AwaitSnapshots(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return snapshots_ >= n || failed_ > 0;
    };
    mutex_.AwaitWithTimeout(absl::Condition(&done), timeout);
    return snapshots_ >= n;
  }
  bool AwaitRound(int round, size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return counts_[round] >= n || failed_ > 0;
    };
    mutex_.AwaitWithTimeout(absl::Condition(&done), timeout);
    return counts_[round] >= n;
  }
  bool AwaitEnded(size_t n, absl::Duration timeout) {
    absl::MutexLock lock(&mutex_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) { return ended_ >= n; };
    return mutex_.AwaitWithTimeout(absl::Condition(&done), timeout);
  }
  Clock::time_point At(int round, size_t index) {
    absl::MutexLock lock(&mutex_);
    return received_[round][index];
  }
  std::string error() {
    absl::MutexLock lock(&mutex_);
    return absl::StrCat(failed_, " streams failed, first: ", first_error_);
  }

 private:
  absl::Mutex mutex_;
  std::vector<std::vector<Clock::time_point>> received_ ABSL_GUARDED_BY(mutex_);
  std::vector<size_t> counts_ ABSL_GUARDED_BY(mutex_);
  size_t snapshots_ ABSL_GUARDED_BY(mutex_) = 0;
  size_t ended_ ABSL_GUARDED_BY(mutex_) = 0;
  size_t failed_ ABSL_GUARDED_BY(mutex_) = 0;
  std::string first_error_ ABSL_GUARDED_BY(mutex_);
};

class WatchReader final : public grpc::ClientReadReactor<v1::WatchJobResponse> {
 public:
  WatchReader(Fanout* fanout, size_t index, v1::SchedulerService::Stub* stub,
              const std::string& job_id)
      : fanout_(fanout), index_(index) {
    request_.set_job("jobs/" + job_id);
    stub->async()->WatchJob(&context_, &request_, this);
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows.
    const Clock::time_point now = Clock::now();
    if (response_.type() == v1::JOB_EVENT_TYPE_SNAPSHOT) {
      fanout_->Snapshot();
    } else {
      fanout_->Event(index_, response_.job().version(), now);
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override { fanout_->Ended(status); }
  void Cancel() { context_.TryCancel(); }

 private:
  Fanout* const fanout_;
  const size_t index_;
  grpc::ClientContext context_;
  v1::WatchJobRequest request_;
  v1::WatchJobResponse response_;
};

struct Streams {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::SchedulerService::Stub>> stubs;
  std::vector<std::unique_ptr<WatchReader>> readers;
};

// Opens one stream per entry of `job_ids` and waits for every snapshot.
void Open(const std::string& address, const std::vector<std::string>& job_ids, Fanout* fanout,
          Streams* streams) {
  const size_t channels = (job_ids.size() + kStreamsPerChannel - 1) / kStreamsPerChannel;
  for (size_t c = 0; c < channels; ++c) {
    streams->channels.push_back(Channel(address));
    streams->stubs.push_back(v1::SchedulerService::NewStub(streams->channels.back()));
  }
  const Clock::time_point start = Clock::now();
  for (size_t i = 0; i < job_ids.size(); ++i) {
    streams->readers.push_back(std::make_unique<WatchReader>(
        fanout, i, streams->stubs[i / kStreamsPerChannel].get(), job_ids[i]));
  }
  if (!fanout->AwaitSnapshots(job_ids.size(), absl::Seconds(60))) {
    std::fprintf(stderr, "not every stream got its snapshot: %s\n", fanout->error().c_str());
    std::exit(1);
  }
  std::printf("{\"measure\": \"open\", \"streams\": %zu, \"connections\": %zu, \"ms\": %.1f}\n",
              job_ids.size(), channels, Ms(Clock::now() - start));
}

void Close(Streams* streams, Fanout* fanout) {
  for (auto& reader : streams->readers) reader->Cancel();
  fanout->AwaitEnded(streams->readers.size(), absl::Seconds(30));
}

int WatchOne(const std::string& address, size_t watchers, int rounds) {
  auto stub = v1::SchedulerService::NewStub(Channel(address));
  const std::string id = "fanout-one";
  CreateJob(stub.get(), id);
  Fanout fanout(watchers, rounds);
  Streams streams;
  Open(address, std::vector<std::string>(watchers, id), &fanout, &streams);
  std::vector<double> every, last, update;
  for (int round = 0; round < rounds; ++round) {
    const v1::UpdateJobRequest request = Update(id, round);
    v1::Job job;
    grpc::ClientContext context;
    const Clock::time_point sent = Clock::now();
    Check(stub->UpdateJob(&context, request, &job), "UpdateJob");
    update.push_back(Ms(Clock::now() - sent));
    if (!fanout.AwaitRound(round, watchers, absl::Seconds(30))) {
      std::fprintf(stderr, "round %d: not every stream got the event: %s\n", round,
                   fanout.error().c_str());
      return 1;
    }
    double latest = 0;
    for (size_t i = 0; i < watchers; ++i) {
      const double ms = Ms(fanout.At(round, i) - sent);
      every.push_back(ms);
      latest = std::max(latest, ms);
    }
    last.push_back(latest);
  }
  Close(&streams, &fanout);
  std::printf(
      "{\"measure\": \"watch-one\", \"streams\": %zu, \"rounds\": %d, "
      "\"every_p50_ms\": %.2f, \"every_p99_ms\": %.2f, \"last_p50_ms\": %.2f, "
      "\"last_p99_ms\": %.2f, \"update_p50_ms\": %.2f, \"update_p99_ms\": %.2f}\n",
      watchers, rounds, Quantile(every, 0.5), Quantile(every, 0.99), Quantile(last, 0.5),
      Quantile(last, 0.99), Quantile(update, 0.5), Quantile(update, 0.99));
  return 0;
}

int WatchMany(const std::string& address, size_t jobs, int rounds) {
  auto channel = Channel(address);
  auto stub = v1::SchedulerService::NewStub(channel);
  std::vector<std::string> ids;
  for (size_t i = 0; i < jobs; ++i) {
    ids.push_back(absl::StrFormat("fanout-%05d", i));
    CreateJob(stub.get(), ids.back());
  }
  Fanout fanout(jobs, rounds);
  Streams streams;
  Open(address, ids, &fanout, &streams);
  std::vector<double> every, round_ms, update;
  constexpr size_t kInFlight = 64;
  for (int round = 0; round < rounds; ++round) {
    std::vector<Clock::time_point> sent(jobs);
    struct Call {
      grpc::ClientContext context;
      v1::UpdateJobRequest request;
      v1::Job response;
    };
    std::vector<std::unique_ptr<Call>> calls(jobs);
    absl::Mutex mutex;
    size_t in_flight = 0, done = 0, failed = 0;
    std::vector<double> update_ms(jobs);
    const Clock::time_point start = Clock::now();
    for (size_t i = 0; i < jobs; ++i) {
      {
        absl::MutexLock lock(&mutex);
        auto room = [&] { return in_flight < kInFlight; };
        mutex.Await(absl::Condition(&room));
        ++in_flight;
      }
      calls[i] = std::make_unique<Call>();
      calls[i]->request = Update(ids[i], round);
      sent[i] = Clock::now();
      stub->async()->UpdateJob(&calls[i]->context, &calls[i]->request, &calls[i]->response,
                               [&, i](grpc::Status status) {
                                 const double ms = Ms(Clock::now() - sent[i]);
                                 absl::MutexLock lock(&mutex);
                                 update_ms[i] = ms;
                                 if (!status.ok()) ++failed;
                                 --in_flight;
                                 ++done;
                               });
    }
    {
      absl::MutexLock lock(&mutex);
      auto all = [&] { return done == jobs; };
      mutex.Await(absl::Condition(&all));
      if (failed > 0) {
        std::fprintf(stderr, "round %d: %zu UpdateJob calls failed\n", round, failed);
        return 1;
      }
    }
    if (!fanout.AwaitRound(round, jobs, absl::Seconds(60))) {
      std::fprintf(stderr, "round %d: not every stream got its event: %s\n", round,
                   fanout.error().c_str());
      return 1;
    }
    Clock::time_point latest = start;
    for (size_t i = 0; i < jobs; ++i) {
      const Clock::time_point at = fanout.At(round, i);
      every.push_back(Ms(at - sent[i]));
      latest = std::max(latest, at);
    }
    round_ms.push_back(Ms(latest - start));
    update.insert(update.end(), update_ms.begin(), update_ms.end());
  }
  Close(&streams, &fanout);
  std::printf(
      "{\"measure\": \"watch-many\", \"streams\": %zu, \"rounds\": %d, \"every_p50_ms\": %.2f, "
      "\"every_p99_ms\": %.2f, \"round_p50_ms\": %.1f, \"update_p50_ms\": %.2f, "
      "\"update_p99_ms\": %.2f}\n",
      jobs, rounds, Quantile(every, 0.5), Quantile(every, 0.99), Quantile(round_ms, 0.5),
      Quantile(update, 0.5), Quantile(update, 0.99));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string command = argc > 1 ? argv[1] : "";
  if (command == "list" && argc == 4) return List(argv[2], std::atoi(argv[3]));
  if (command == "watch-one" && argc == 5) {
    return WatchOne(argv[2], std::strtoul(argv[3], nullptr, 10), std::atoi(argv[4]));
  }
  if (command == "watch-many" && argc == 5) {
    return WatchMany(argv[2], std::strtoul(argv[3], nullptr, 10), std::atoi(argv[4]));
  }
  std::fprintf(stderr,
               "usage: %s list ADDRESS PAGE_SIZE | watch-one ADDRESS STREAMS ROUNDS | "
               "watch-many ADDRESS JOBS ROUNDS\n",
               argv[0]);
  return 2;
}
