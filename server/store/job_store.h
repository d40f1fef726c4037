// Where job state lives. The job registry writes through a JobStore before it acknowledges a
// mutation, and loads every job from it at start-up.
#ifndef HPSCHED_STORE_JOB_STORE_H_
#define HPSCHED_STORE_JOB_STORE_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/job_record.h"

namespace hpsched::store {

// Implementations are thread-safe. A successful Put or Delete is durable to the degree the
// implementation promises (the memory store: until the process exits).
class JobStore {
 public:
  virtual ~JobStore() = default;

  // Inserts or replaces the record of `record.job_id`. Errors: Unavailable/Internal from the
  // backing store; on error nothing changed.
  virtual absl::Status Put(const core::JobRecord& record) = 0;
  // Removes a job. NotFound if there is none.
  virtual absl::Status Delete(absl::string_view job_id) = 0;
  // Every stored job, in order of job_id.
  virtual absl::StatusOr<std::vector<core::JobRecord>> LoadAll() = 0;
  // One job. NotFound if there is none. The default reads LoadAll; stores override it.
  virtual absl::StatusOr<core::JobRecord> Get(absl::string_view job_id);
  // At most `page_size` jobs with job_id > `after` (every job for an empty `after`), in order of
  // job_id: a page of a listing that goes on from the last job_id of the previous page.
  // InvalidArgument when page_size is 0. The default reads LoadAll; stores override it.
  virtual absl::StatusOr<std::vector<core::JobRecord>> List(size_t page_size,
                                                            absl::string_view after);
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_JOB_STORE_H_
