// Work and timers, injected so tests control when they run.
#ifndef HPSCHED_JOBS_EXECUTOR_H_
#define HPSCHED_JOBS_EXECUTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "jobs/clock.h"

namespace hpsched::jobs {

// Runs tasks later, off the caller's stack: observers that are called under a lock hand their
// work here. Implementations are thread-safe; a task may schedule or cancel tasks. Tasks still
// queued when the executor is destroyed are dropped without running, so whatever a task points at
// must outlive the executor or tolerate that.
class Executor {
 public:
  using Task = std::function<void()>;
  // Names a scheduled task, for Cancel.
  using TaskId = uint64_t;
  virtual ~Executor() = default;
  // Runs `task` once the executor's clock reads `when` or later: as soon as possible when it
  // already does, but never inside this call.
  virtual TaskId At(absl::Time when, Task task) = 0;
  // Drops the task if it has not started; a no-op for a task that ran, runs or was cancelled.
  virtual void Cancel(TaskId id) = 0;
  // At(InfinitePast(), task).
  TaskId Schedule(Task task) { return At(absl::InfinitePast(), std::move(task)); }
};

// The queue of both executors below: tasks in order of due time, then of scheduling. Not
// thread-safe (its owner's mutex guards it).
class TaskQueue {
 public:
  Executor::TaskId Add(absl::Time when, Executor::Task task);
  void Cancel(Executor::TaskId id);
  // Removes and returns the first task due at `now`; nullopt when none is.
  std::optional<Executor::Task> PopDue(absl::Time now);
  // When the first task is due; InfiniteFuture when there is none.
  absl::Time next_due() const;
  size_t size() const { return tasks_.size(); }

 private:
  std::map<std::pair<absl::Time, Executor::TaskId>, Executor::Task> tasks_;
  absl::flat_hash_map<Executor::TaskId, absl::Time> due_;
  Executor::TaskId next_id_ = 1;
};

// A task that many triggers run once: Trigger schedules it on the executor unless a run is already
// scheduled and not yet started. A run sees everything its triggers' callers did before them; a
// trigger during a run schedules another run. For observers that queue events under a lock and
// handle them later. Thread-safe; the same lifetime rule as the executor's tasks.
class CoalescedTask {
 public:
  // `executor` must outlive this object.
  CoalescedTask(Executor* executor, std::function<void()> task)
      : executor_(executor), task_(std::move(task)) {}

  void Trigger() {
    if (scheduled_.exchange(true)) return;
    executor_->Schedule([this] {
      scheduled_.store(false);
      task_();
    });
  }

 private:
  Executor* const executor_;
  const std::function<void()> task_;
  std::atomic<bool> scheduled_{false};
};

// The two executors below: a TaskQueue under a mutex, and a CondVar signalled whenever a task is
// queued (ThreadExecutor's thread waits on it for work, ManualExecutor::AwaitQueued for a count).
class QueuedExecutor : public Executor {
 public:
  TaskId At(absl::Time when, Task task) override;
  void Cancel(TaskId id) override;

 protected:
  mutable absl::Mutex mutex_;
  TaskQueue tasks_ ABSL_GUARDED_BY(mutex_);
  absl::CondVar queued_;
};

// Production: one thread that runs tasks in order of due time, against `clock` (the system clock
// in a server).
class ThreadExecutor final : public QueuedExecutor {
 public:
  // `clock` must outlive the executor.
  explicit ThreadExecutor(const Clock* clock);
  // Drops the tasks not yet due and joins the thread (a running task finishes first).
  ~ThreadExecutor() override;

 private:
  void Run();

  const Clock* const clock_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

// Tests: nothing runs until the test says so. RunDue runs, on the test's thread, every task due at
// the fake clock's time, including those the tasks schedule; Advance moves the clock and runs what
// came due. Thread-safe.
class ManualExecutor final : public QueuedExecutor {
 public:
  // `clock` must outlive the executor.
  explicit ManualExecutor(FakeClock* clock) : clock_(clock) {}

  // Runs due tasks until none is left; returns how many ran.
  int RunDue();
  // clock->Advance(d), then RunDue().
  int Advance(absl::Duration d);
  // Blocks until at least `n` tasks are queued (due or not): lets a test wait for work another
  // thread hands over (a parked call's deadline timer) without sleeping.
  void AwaitQueued(size_t n);
  size_t queued() const;

 private:
  FakeClock* const clock_;
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_EXECUTOR_H_
