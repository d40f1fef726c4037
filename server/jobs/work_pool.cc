#include "jobs/work_pool.h"

#include <algorithm>
#include <utility>

namespace hpsched::jobs {

WorkPool::WorkPool(int threads, size_t max_queued) : max_queued_(max_queued) {
  for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this] { Run(); });
}

WorkPool::~WorkPool() {
  {
    absl::MutexLock lock(&mutex_);
    stopping_ = true;
    work_.SignalAll();
  }
  for (std::thread& thread : threads_) thread.join();
}

bool WorkPool::TrySchedule(Task task) {
  absl::MutexLock lock(&mutex_);
  // Idle threads take tasks at once; beyond them, max_queued_ may wait.
  if (stopping_ || tasks_.size() + running_ >= threads_.size() + max_queued_) return false;
  tasks_.push_back(std::move(task));
  work_.Signal();
  return true;
}

size_t WorkPool::queued() const {
  absl::MutexLock lock(&mutex_);
  return tasks_.size();
}

size_t WorkPool::running() const {
  absl::MutexLock lock(&mutex_);
  return running_;
}

void WorkPool::Run() {
  absl::MutexLock lock(&mutex_);
  while (true) {
    if (tasks_.empty()) {
      if (stopping_) return;
      // A CondVar rather than Await(Condition), as in ThreadExecutor::Run (ThreadSanitizer).
      work_.Wait(&mutex_);
      continue;
    }
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    ++running_;
    mutex_.Unlock();
    task();
    task = nullptr;
    mutex_.Lock();
    --running_;
  }
}

}  // namespace hpsched::jobs
