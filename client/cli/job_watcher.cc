#include "client/cli/job_watcher.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/cli/json_io.h"

namespace hpsched::cli {

namespace v1 = ::hpsched::v1;

namespace {

// RFC 3339 in UTC with a "Z", like the protobuf JSON timestamps: 2024-05-01T10:00:00.25Z.
std::string Rfc3339(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", time, absl::UTCTimeZone());
}

}  // namespace

const char* WatchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kInitial:
      return "initial";
    case WatchEventType::kModified:
      return "modified";
    case WatchEventType::kDeleted:
      return "deleted";
  }
  return "unknown";
}

PollingJobWatcher::PollingJobWatcher(GetJobFn get_job, absl::Duration interval, WatchClock clock)
    : get_job_(std::move(get_job)),
      interval_(std::max(interval, absl::Milliseconds(10))),
      clock_(std::move(clock)) {}

absl::StatusOr<WatchEvent> PollingJobWatcher::Next(absl::Time deadline) {
  if (deleted_) return absl::FailedPreconditionError("watch: the job was deleted");
  for (;;) {
    if (polled_) {
      const absl::Duration left = deadline - clock_.now();
      if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("watch: timed out");
      clock_.sleep(std::min(interval_, left));
      if (clock_.now() >= deadline && interval_ > left) {
        return absl::DeadlineExceededError("watch: timed out");
      }
    }
    polled_ = true;
    absl::StatusOr<v1::Job> job = get_job_();
    const absl::Time now = clock_.now();
    if (!job.ok()) {
      if (job.status().code() == absl::StatusCode::kNotFound && last_.has_value()) {
        deleted_ = true;
        return WatchEvent{WatchEventType::kDeleted, *last_, now};
      }
      return job.status();
    }
    if (!last_.has_value()) {
      last_ = *job;
      return WatchEvent{WatchEventType::kInitial, *std::move(job), now};
    }
    if (job->version() != last_->version() || job->etag() != last_->etag()) {
      last_ = *job;
      return WatchEvent{WatchEventType::kModified, *std::move(job), now};
    }
  }
}

absl::Status RunWatch(JobWatcher& watcher, int count, absl::Duration timeout,
                      const std::function<void(const WatchEvent&)>& emit,
                      std::function<absl::Time()> now) {
  const absl::Time deadline =
      timeout > absl::ZeroDuration() ? now() + timeout : absl::InfiniteFuture();
  int changes = 0;
  for (;;) {
    absl::StatusOr<WatchEvent> event = watcher.Next(deadline);
    if (!event.ok()) {
      if (event.status().code() == absl::StatusCode::kDeadlineExceeded && count == 0 &&
          timeout > absl::ZeroDuration() && now() >= deadline) {
        return absl::OkStatus();  // Watched for the whole --watch_timeout.
      }
      if (event.status().code() == absl::StatusCode::kDeadlineExceeded && count > 0) {
        return absl::DeadlineExceededError(absl::StrCat(
            "watch: ", changes, " of ", count, " changes within ", absl::FormatDuration(timeout)));
      }
      return event.status();
    }
    emit(*event);
    if (event->type == WatchEventType::kDeleted) return absl::OkStatus();
    if (event->type == WatchEventType::kModified && count > 0 && ++changes >= count) {
      return absl::OkStatus();
    }
  }
}

absl::StatusOr<WatchEvent> StreamingJobWatcher::Next(absl::Time deadline) {
  if (deleted_) return absl::FailedPreconditionError("watch: the job was deleted");
  if (stream_ == nullptr) stream_ = open_(deadline);
  absl::StatusOr<v1::WatchJobResponse> event = stream_->Next();
  if (!event.ok()) {
    if (absl::IsDeadlineExceeded(event.status())) {
      return absl::DeadlineExceededError("watch: timed out");
    }
    return event.status();
  }
  WatchEvent out;
  out.job = event->job();
  out.time = absl::FromUnixNanos(
      google::protobuf::util::TimeUtil::TimestampToNanoseconds(event->event_time()));
  out.effective_step = event->effective_step();
  switch (event->type()) {
    case v1::JOB_EVENT_TYPE_SNAPSHOT:
      out.type = WatchEventType::kInitial;
      break;
    case v1::JOB_EVENT_TYPE_DELETED:
      out.type = WatchEventType::kDeleted;
      deleted_ = true;
      break;
    default:
      out.type = WatchEventType::kModified;
      out.change =
          event->type() == v1::JOB_EVENT_TYPE_PLATEAU_REDUCED ? "plateau_reduced" : "updated";
      break;
  }
  return out;
}

std::string WatchEventText(const WatchEvent& event) {
  std::string line =
      absl::StrCat(Rfc3339(event.time), " ", WatchEventTypeName(event.type), " ", event.job.name());
  if (event.type != WatchEventType::kDeleted) {
    absl::StrAppend(&line, " version=", event.job.version(), " etag=", event.job.etag());
  }
  if (!event.change.empty()) {
    absl::StrAppend(&line, " change=", event.change, " effective_step=", event.effective_step);
  }
  return line;
}

std::string WatchEventJson(const WatchEvent& event) {
  std::string json = absl::StrCat("{\"event\":", JsonString(WatchEventTypeName(event.type)),
                                  ",\"time\":", JsonString(Rfc3339(event.time)));
  if (event.type == WatchEventType::kDeleted) {
    absl::StrAppend(&json, ",\"name\":", JsonString(event.job.name()), "}");
  } else {
    if (!event.change.empty()) {
      absl::StrAppend(&json, ",\"change\":", JsonString(event.change),
                      ",\"effective_step\":", event.effective_step);
    }
    absl::StrAppend(&json, ",\"job\":", ToCompactJson(event.job), "}");
  }
  return json;
}

}  // namespace hpsched::cli
