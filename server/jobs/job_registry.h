// The job table: every job's record and compiled plan, kept in memory and written through a
// JobStore.
#ifndef HPSCHED_JOBS_JOB_REGISTRY_H_
#define HPSCHED_JOBS_JOB_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/job_plan.h"
#include "jobs/clock.h"
#include "store/job_store.h"

namespace hpsched::jobs {

inline constexpr size_t kMaxRequestIdLength = 128;

// A job as the registry holds it: immutable, shared with in-flight reads, replaced whole on change.
struct Job {
  store::JobRecord record;
  std::shared_ptr<const core::JobPlan> plan;
};

struct JobPage {
  std::vector<std::shared_ptr<const Job>> jobs;
  // The id to continue after, empty on the last page.
  std::string next_after;
};

// Thread-safe. Reads (Get, List) take a shared lock only long enough to copy a pointer; mutations
// take the exclusive lock, and write through the store before they change the table, so a failed
// write changes nothing.
class JobRegistry {
 public:
  // `store` and `clock` must outlive the registry. Create refuses jobs beyond `max_jobs`.
  JobRegistry(store::JobStore* store, const Clock* clock, size_t max_jobs = 1'000'000);

  // Loads every job from the store and compiles it. Errors: the store's, or Internal (naming the
  // job) for a stored spec that no longer compiles.
  absl::Status Load();

  // Creates job `job_id` from a validated spec. Returns the existing job when `request_id` matches
  // the request that created it, or when the spec is identical; AlreadyExists when a different job
  // has that id. Errors from validation are InvalidArgument with paths under "job"; `job_id` and
  // `request_id` are checked too.
  absl::StatusOr<std::shared_ptr<const Job>> Create(absl::string_view job_id, core::JobSpec spec,
                                                    absl::string_view request_id);
  // NotFound if there is no such job.
  absl::StatusOr<std::shared_ptr<const Job>> Get(absl::string_view job_id) const;
  // Up to `page_size` jobs with ids greater than `after`, in order of id.
  JobPage List(size_t page_size, absl::string_view after) const;
  // NotFound if there is no such job.
  absl::Status Delete(absl::string_view job_id);

  size_t size() const;

 private:
  // Replaces (or with null, removes) the table entry of `job_id`: the only place the table is
  // written.
  void Publish(const std::string& job_id, std::shared_ptr<const Job> job)
      ABSL_LOCKS_EXCLUDED(table_mutex_);

  store::JobStore* const store_;
  const Clock* const clock_;
  const size_t max_jobs_;
  // Serializes mutations, held across their store writes; reads never take it, so a slow write (an
  // fsync) never delays a read.
  absl::Mutex write_mutex_ ABSL_ACQUIRED_BEFORE(table_mutex_);
  // Guards the table; held exclusively only to swap a pointer.
  mutable absl::Mutex table_mutex_;
  std::map<std::string, std::shared_ptr<const Job>, std::less<>> jobs_
      ABSL_GUARDED_BY(table_mutex_);
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_JOB_REGISTRY_H_
