// Following a job's changes: StreamingJobWatcher over the WatchJob stream (the default), or
// PollingJobWatcher over GetJob (`hpsched watch --poll`, for servers older than WatchJob).
// `hpsched watch` only sees the JobWatcher interface.
#ifndef HPSCHED_CLIENT_CLI_JOB_WATCHER_H_
#define HPSCHED_CLIENT_CLI_JOB_WATCHER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "hpsched/v1/job.pb.h"

namespace hpsched::cli {

enum class WatchEventType {
  kInitial,   // The job as it is when the watch starts.
  kModified,  // The job's version or etag changed (including a delete and re-create between polls).
  kDeleted,   // The job is gone; the watch ends.
};

// "initial", "modified", "deleted".
const char* WatchEventTypeName(WatchEventType type);

struct WatchEvent {
  WatchEventType type = WatchEventType::kInitial;
  // The job (initial, modified), or the last one seen (deleted).
  hpsched::v1::Job job;
  absl::Time time;  // When the change was observed.
  // For a streamed kModified: "updated" or "plateau_reduced", and the first step it changed.
  std::string change = {};
  int64_t effective_step = 0;
};

class JobWatcher {
 public:
  virtual ~JobWatcher() = default;
  // Blocks until the next event. The first is kInitial; after kDeleted there are no more
  // (FailedPrecondition). DeadlineExceeded when `deadline` passes first; other errors are the
  // server's (NOT_FOUND for the first call: the job does not exist).
  virtual absl::StatusOr<WatchEvent> Next(absl::Time deadline) = 0;
};

// Time for PollingJobWatcher, injectable for tests.
struct WatchClock {
  std::function<absl::Time()> now = [] { return absl::Now(); };
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) { absl::SleepFor(d); };
};

// Polls GetJob every `interval`; an event whenever the version or etag differs from the previous
// poll, kDeleted on NOT_FOUND.
class PollingJobWatcher : public JobWatcher {
 public:
  using GetJobFn = std::function<absl::StatusOr<hpsched::v1::Job>()>;

  PollingJobWatcher(GetJobFn get_job, absl::Duration interval, WatchClock clock = WatchClock());

  absl::StatusOr<WatchEvent> Next(absl::Time deadline) override;

 private:
  GetJobFn get_job_;
  absl::Duration interval_;
  WatchClock clock_;
  std::optional<hpsched::v1::Job> last_;
  bool deleted_ = false;
  bool polled_ = false;  // Whether a poll happened (the next one waits an interval).
};

// Reads a WatchJob stream, opened on the first Next() with that call's deadline (RunWatch passes
// the same deadline to every call).
class StreamingJobWatcher : public JobWatcher {
 public:
  // Opens the stream for `deadline`.
  using OpenFn = std::function<std::unique_ptr<client::WatchStream>(absl::Time deadline)>;

  explicit StreamingJobWatcher(OpenFn open) : open_(std::move(open)) {}

  absl::StatusOr<WatchEvent> Next(absl::Time deadline) override;

 private:
  OpenFn open_;
  std::unique_ptr<client::WatchStream> stream_;
  bool deleted_ = false;
};

// Runs `watcher` and calls `emit` with each event: stops with OK after a kDeleted event, after
// `count` changes (modified or deleted; 0 = no limit; the initial event does not count), or when
// `timeout` (0 = none) passes and `count` is 0. If `count` changes do not come within `timeout`,
// DeadlineExceeded. Other errors end the watch with that error.
absl::Status RunWatch(
    JobWatcher& watcher, int count, absl::Duration timeout,
    const std::function<void(const WatchEvent&)>& emit,
    std::function<absl::Time()> now = [] { return absl::Now(); });

// An event as one line of text: "2024-05-01T10:00:00Z initial jobs/demo version=1 etag=..." and as
// one JSON object: {"event":"initial","time":"...","job":{...}} ("deleted": "name" instead of
// "job").
std::string WatchEventText(const WatchEvent& event);
std::string WatchEventJson(const WatchEvent& event);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_JOB_WATCHER_H_
