// The stored state of one job.
#ifndef HPSCHED_STORE_JOB_RECORD_H_
#define HPSCHED_STORE_JOB_RECORD_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "core/schedule_spec.h"

namespace hpsched::store {

struct JobRecord {
  std::string job_id;
  core::JobSpec spec;
  int64_t version = 0;
  std::string etag;
  absl::Time create_time;
  absl::Time update_time;
  // The request_id of the CreateJob that made the job, for retries; may be empty.
  std::string create_request_id;

  bool operator==(const JobRecord&) const = default;
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_JOB_RECORD_H_
