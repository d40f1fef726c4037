// Where job state lives. The job registry writes through a JobStore before it acknowledges a
// mutation, and loads every job from it at start-up.
#ifndef HPSCHED_STORE_JOB_STORE_H_
#define HPSCHED_STORE_JOB_STORE_H_

#include <span>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/job_record.h"

namespace hpsched::store {

// A job's served-step marks as the registry persists them in the background
// (JobRegistry::FlushServedMarks), apart from the job's record.
struct ServedMark {
  std::string job_id;
  // The highest step GetValues had served when the mark was taken; -1 for none.
  int64_t served_through = -1;
  // A bound the server does not serve past before a higher one is durable (>= served_through):
  // after an unclean stop, the job counts every step up to it as served.
  int64_t reserved_through = -1;
};

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
  // Every stored job, in order of job_id. A record's served_through is the highest step the job
  // counts as served: at least every served mark written for it, and, when the store was not
  // stopped cleanly (PutServedMarks with `clean_stop`, nothing written after it), at least every
  // reserved_through written for it.
  virtual absl::StatusOr<std::vector<core::JobRecord>> LoadAll() = 0;
  // Calls `visit` with every record LoadAll would return, in the same order, one at a time: a
  // start with 10^6 jobs never holds them all twice. Stops at the first error, of the store or of
  // `visit`, and returns it. The default visits what LoadAll returns; stores that can read row by
  // row override it.
  virtual absl::Status LoadEach(absl::FunctionRef<absl::Status(core::JobRecord)> visit);
  // One job. NotFound if there is none. The default reads LoadAll; stores override it.
  virtual absl::StatusOr<core::JobRecord> Get(absl::string_view job_id);
  // At most `page_size` jobs with job_id > `after` (every job for an empty `after`), in order of
  // job_id: a page of a listing that goes on from the last job_id of the previous page.
  // InvalidArgument when page_size is 0. The default reads LoadAll; stores override it.
  virtual absl::StatusOr<std::vector<core::JobRecord>> List(size_t page_size,
                                                            absl::string_view after);
  // Raises the served marks of the listed jobs (a mark never lowers what is stored; a job the store
  // does not hold is skipped). With `clean_stop` these are the final, exact marks of a graceful
  // shutdown, and the next open may load them as they are (see LoadAll) unless anything is written
  // after them. On error nothing changed. The default raises each record's served_through with
  // Get and Put, one job at a time; durable stores override it with one transaction.
  virtual absl::Status PutServedMarks(std::span<const ServedMark> marks, bool clean_stop);
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_JOB_STORE_H_
