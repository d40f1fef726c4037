// Closing a job for a mutation (the registry's mutations, one server's and the replicas').
#ifndef HPSCHED_JOBS_CLOSING_H_
#define HPSCHED_JOBS_CLOSING_H_

#include <functional>
#include <utility>

#include "jobs/job_registry.h"

namespace hpsched::jobs {

// Closes `job` (null: nothing to close) for a mutation; reopens it unless the mutation committed
// (replaced the job), and then calls `reopened` (which tells observers), so readers waiting on
// the job retry. See JobRegistry::MarkServed for why readers cannot slip past it.
class Closing {
 public:
  Closing(const Job* job, std::function<void()> reopened)
      : job_(job), reopened_(std::move(reopened)) {
    if (job_ != nullptr) job_->closing.store(true);
  }
  Closing(const Job& job, std::function<void()> reopened) : Closing(&job, std::move(reopened)) {}
  Closing(const Closing&) = delete;
  Closing& operator=(const Closing&) = delete;
  ~Closing() {
    if (committed_ || job_ == nullptr) return;
    job_->closing.store(false);
    reopened_();
  }
  void Committed() { committed_ = true; }

 private:
  const Job* job_;
  std::function<void()> reopened_;
  bool committed_ = false;
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_CLOSING_H_
