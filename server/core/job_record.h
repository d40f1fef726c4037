// The state of one job: what the job table holds and every store writes (each in its own row
// format).
#ifndef HPSCHED_CORE_JOB_RECORD_H_
#define HPSCHED_CORE_JOB_RECORD_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "core/flat_map.h"
#include "core/metric_reports.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

// UpdateJob request_ids remembered per job for retries.
inline constexpr size_t kMaxRememberedRequests = 1000;

struct JobRecord {
  std::string job_id;
  JobSpec spec;
  int64_t version = 0;
  std::string etag;
  absl::Time create_time;
  absl::Time update_time;
  // The request_id of the CreateJob that made the job, for retries; may be empty.
  std::string create_request_id;
  // Every metric report, by metric name (copied in O(1): see MetricHistory).
  FlatMap<std::string, MetricHistory> metric_reports;
  // The request_ids of the latest UpdateJob calls (at most kMaxRememberedRequests, oldest first),
  // each with the version it made.
  std::vector<std::pair<std::string, int64_t>> update_requests;
  // The highest step GetValues had served when the record was last written; -1 for none.
  int64_t served_through = -1;

  bool operator==(const JobRecord&) const = default;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_JOB_RECORD_H_
