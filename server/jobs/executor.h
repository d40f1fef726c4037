// Work and timers, injected so tests control when they run.
#ifndef HPSCHED_JOBS_EXECUTOR_H_
#define HPSCHED_JOBS_EXECUTOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "jobs/clock.h"

namespace hpsched::jobs {

// Runs tasks later, off the caller's stack: observers that are called under a lock hand their
// work here. Implementations are thread-safe; a task may schedule more tasks. Tasks still queued
// when the executor is destroyed are dropped without running, so whatever a task points at must
// outlive the executor or tolerate that.
class Executor {
 public:
  using Task = std::function<void()>;
  virtual ~Executor() = default;
  // Runs `task` as soon as possible, never inside this call.
  virtual void Schedule(Task task) = 0;
  // Runs `task` once the executor's clock reads `when` or later (at once if it already does).
  virtual void At(absl::Time when, Task task) = 0;
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

// Production: one thread that runs tasks in order of due time (ties in order of scheduling),
// against `clock` (the system clock in a server).
class ThreadExecutor final : public Executor {
 public:
  // `clock` must outlive the executor.
  explicit ThreadExecutor(const Clock* clock);
  // Drops the tasks not yet due and joins the thread (a running task finishes first).
  ~ThreadExecutor() override;

  void Schedule(Task task) override;
  void At(absl::Time when, Task task) override;

 private:
  void Run();

  const Clock* const clock_;
  absl::Mutex mutex_;
  // Keyed by (due time, sequence number).
  std::multimap<std::pair<absl::Time, uint64_t>, Task> tasks_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  absl::CondVar wake_;
  std::thread thread_;
};

// Tests: nothing runs until the test says so. RunDue runs, on the test's thread, every task due at
// the fake clock's time, including those the tasks schedule; Advance moves the clock and runs what
// came due. Thread-safe.
class ManualExecutor final : public Executor {
 public:
  // `clock` must outlive the executor.
  explicit ManualExecutor(FakeClock* clock) : clock_(clock) {}

  void Schedule(Task task) override;
  void At(absl::Time when, Task task) override;

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
  mutable absl::Mutex mutex_;
  std::multimap<std::pair<absl::Time, uint64_t>, Task> tasks_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mutex_) = 0;
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_EXECUTOR_H_
