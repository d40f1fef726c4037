#include "jobs/executor.h"

namespace hpsched::jobs {

ThreadExecutor::ThreadExecutor(const Clock* clock) : clock_(clock) {
  thread_ = std::thread([this] { Run(); });
}

ThreadExecutor::~ThreadExecutor() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
    wake_.Signal();
  }
  thread_.join();
}

void ThreadExecutor::Schedule(Task task) { At(absl::InfinitePast(), std::move(task)); }

void ThreadExecutor::At(absl::Time when, Task task) {
  absl::MutexLock lock(&mutex_);
  tasks_.emplace(std::make_pair(when, next_sequence_++), std::move(task));
  wake_.Signal();
}

void ThreadExecutor::Run() {
  absl::MutexLock lock(&mutex_);
  while (!stopping_) {
    if (tasks_.empty()) {
      wake_.Wait(&mutex_);
      continue;
    }
    auto first = tasks_.begin();
    if (first->first.first > clock_->Now()) {
      // A CondVar rather than Await(Condition): the condition is then only read by this thread,
      // holding the mutex (ThreadSanitizer cannot see the hand-off of a Condition evaluated by the
      // unlocking thread inside an uninstrumented Abseil).
      wake_.WaitWithDeadline(&mutex_, first->first.first);
      continue;
    }
    Task task = std::move(first->second);
    tasks_.erase(first);
    mutex_.Unlock();
    task();
    mutex_.Lock();
  }
}

void ManualExecutor::Schedule(Task task) { At(absl::InfinitePast(), std::move(task)); }

void ManualExecutor::At(absl::Time when, Task task) {
  absl::MutexLock lock(&mutex_);
  tasks_.emplace(std::make_pair(when, next_sequence_++), std::move(task));
}

int ManualExecutor::RunDue() {
  int ran = 0;
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mutex_);
      auto first = tasks_.begin();
      if (first == tasks_.end() || first->first.first > clock_->Now()) return ran;
      task = std::move(first->second);
      tasks_.erase(first);
    }
    task();
    ++ran;
  }
}

int ManualExecutor::Advance(absl::Duration d) {
  clock_->Advance(d);
  return RunDue();
}

void ManualExecutor::AwaitQueued(size_t n) {
  absl::MutexLock lock(&mutex_);
  auto enough = [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return tasks_.size() >= n; };
  mutex_.Await(absl::Condition(&enough));
}

size_t ManualExecutor::queued() const {
  absl::MutexLock lock(&mutex_);
  return tasks_.size();
}

}  // namespace hpsched::jobs
