#include "jobs/executor.h"

namespace hpsched::jobs {

Executor::TaskId TaskQueue::Add(absl::Time when, Executor::Task task) {
  const Executor::TaskId id = next_id_++;
  tasks_.emplace(std::make_pair(when, id), std::move(task));
  due_.emplace(id, when);
  return id;
}

void TaskQueue::Cancel(Executor::TaskId id) {
  auto it = due_.find(id);
  if (it == due_.end()) return;
  tasks_.erase(std::make_pair(it->second, id));
  due_.erase(it);
}

std::optional<Executor::Task> TaskQueue::PopDue(absl::Time now) {
  auto first = tasks_.begin();
  if (first == tasks_.end() || first->first.first > now) return std::nullopt;
  Executor::Task task = std::move(first->second);
  due_.erase(first->first.second);
  tasks_.erase(first);
  return task;
}

absl::Time TaskQueue::next_due() const {
  return tasks_.empty() ? absl::InfiniteFuture() : tasks_.begin()->first.first;
}

ThreadExecutor::ThreadExecutor(const Clock* clock) : clock_(clock) {
  thread_ = std::thread([this] { Run(); });
}

ThreadExecutor::~ThreadExecutor() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
    queued_.Signal();
  }
  thread_.join();
}

Executor::TaskId QueuedExecutor::At(absl::Time when, Task task) {
  absl::MutexLock lock(&mutex_);
  queued_.SignalAll();
  return tasks_.Add(when, std::move(task));
}

void QueuedExecutor::Cancel(TaskId id) {
  absl::MutexLock lock(&mutex_);
  tasks_.Cancel(id);
}

void ThreadExecutor::Run() {
  absl::MutexLock lock(&mutex_);
  while (!stopping_) {
    std::optional<Task> task = tasks_.PopDue(clock_->Now());
    if (!task.has_value()) {
      // A CondVar rather than Await(Condition): the condition is then only read by this thread,
      // holding the mutex (ThreadSanitizer cannot see the hand-off of a Condition evaluated by the
      // unlocking thread inside an uninstrumented Abseil).
      queued_.WaitWithDeadline(&mutex_, tasks_.next_due());
      continue;
    }
    mutex_.Unlock();
    (*task)();
    mutex_.Lock();
  }
}

int ManualExecutor::RunDue() {
  int ran = 0;
  while (true) {
    std::optional<Task> task;
    {
      absl::MutexLock lock(&mutex_);
      task = tasks_.PopDue(clock_->Now());
    }
    if (!task.has_value()) return ran;
    (*task)();
    ++ran;
  }
}

int ManualExecutor::Advance(absl::Duration d) {
  clock_->Advance(d);
  return RunDue();
}

void ManualExecutor::AwaitQueued(size_t n) {
  absl::MutexLock lock(&mutex_);
  // A CondVar rather than Await(Condition), as in ThreadExecutor::Run (ThreadSanitizer).
  while (tasks_.size() < n) queued_.Wait(&mutex_);
}

size_t ManualExecutor::queued() const {
  absl::MutexLock lock(&mutex_);
  return tasks_.size();
}

}  // namespace hpsched::jobs
