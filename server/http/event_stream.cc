#include "http/event_stream.h"

namespace hpsched::http {

EventStream::EventStream(hpsched::v1::SchedulerService::Stub* stub,
                         std::unique_ptr<grpc::ClientContext> context,
                         const hpsched::v1::WatchJobRequest& request, size_t max_queued)
    : context_(std::move(context)), max_queued_(std::max<size_t>(1, max_queued)) {
  stub->async()->WatchJob(context_.get(), &request, this);
  // Held until no read can be started any more (a read failed, or the owner is closing), so that
  // OnDone, after which nothing may touch the call, cannot run while a paused stream resumes.
  AddHold();
  StartRead(&incoming_);
  StartCall();
}

EventStream::~EventStream() {
  bool release = false;
  {
    absl::MutexLock lock(&mutex_);
    cancelled_ = true;
    // With a read in flight, its failure (after TryCancel) releases the hold in OnReadDone.
    if (paused_ && !hold_released_) {
      hold_released_ = true;
      release = true;
    }
  }
  context_->TryCancel();
  if (release) RemoveHold();
  absl::MutexLock lock(&mutex_);
  mutex_.Await(absl::Condition(&done_));
}

void EventStream::Cancel() {
  {
    absl::MutexLock lock(&mutex_);
    cancelled_ = true;
  }
  context_->TryCancel();
}

void EventStream::OnReadDone(bool ok) {
  bool read_again = false;
  bool release = false;
  {
    absl::MutexLock lock(&mutex_);
    if (ok && !cancelled_) {
      queue_.push_back(std::move(incoming_));
      incoming_.Clear();
      if (queue_.size() < max_queued_) {
        read_again = true;
      } else {
        paused_ = true;
      }
    } else {
      read_ended_ = true;
      if (!hold_released_) {
        hold_released_ = true;
        release = true;
      }
    }
  }
  // Outside the lock: either may run another reaction inline.
  if (read_again) StartRead(&incoming_);
  if (release) RemoveHold();
}

void EventStream::OnDone(const grpc::Status& status) {
  absl::MutexLock lock(&mutex_);
  status_ = status;
  done_ = true;
}

EventStream::Next EventStream::Wait(absl::Duration timeout, hpsched::v1::WatchJobResponse* event,
                                    grpc::Status* status) {
  bool resume = false;
  Next next;
  {
    absl::MutexLock lock(&mutex_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
      return !queue_.empty() || done_ || cancelled_;
    };
    mutex_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (cancelled_) {
      *status = done_ && !status_.ok()
                    ? status_
                    : grpc::Status(grpc::StatusCode::CANCELLED, "the event stream was closed");
      return Next::kEnd;
    }
    if (!queue_.empty()) {
      *event = std::move(queue_.front());
      queue_.pop_front();
      if (paused_) {
        paused_ = false;
        resume = true;
      }
      next = Next::kEvent;
    } else if (done_) {
      *status = status_;
      return Next::kEnd;
    } else {
      return Next::kTimeout;
    }
  }
  if (resume) StartRead(&incoming_);
  return next;
}

}  // namespace hpsched::http
