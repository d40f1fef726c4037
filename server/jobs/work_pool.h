// Costly work kept off the threads that must stay free: a fixed set of threads and a bounded queue.
// The service hands it evaluations too costly to run inline on a gRPC callback thread (see
// ServiceLimits::inline_eval_cost), so health checks, cheap reads and writes keep their threads
// whatever the expensive calls do; when the queue is full it refuses (the caller answers
// RESOURCE_EXHAUSTED) instead of growing.
#ifndef HPSCHED_JOBS_WORK_POOL_H_
#define HPSCHED_JOBS_WORK_POOL_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace hpsched::jobs {

// Thread-safe. Every accepted task runs exactly once, queued tasks included when the pool is
// destroyed (tasks finish calls: dropping one would leave its call open), so a task must end
// promptly once its call is cancelled.
class WorkPool {
 public:
  using Task = std::function<void()>;

  // `threads` >= 1 threads; at most `max_queued` accepted tasks wait for one (a task given while a
  // thread is idle does not wait).
  WorkPool(int threads, size_t max_queued);
  // Runs what is queued, then joins the threads.
  ~WorkPool();

  // Queues `task`; false (and `task` dropped unrun) when every thread is busy and max_queued tasks
  // already wait.
  bool TrySchedule(Task task);

  // Tasks waiting and tasks running, for metrics and tests.
  size_t queued() const;
  size_t running() const;

 private:
  void Run();

  const size_t max_queued_;
  mutable absl::Mutex mutex_;
  absl::CondVar work_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mutex_);
  size_t running_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_WORK_POOL_H_
