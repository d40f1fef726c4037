#include "service/pending_calls.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/status_convert.h"

namespace hpsched::service {

class PendingCalls::Call final : public grpc::ServerUnaryReactor {
 public:
  Call(PendingCalls* owner, std::set<std::string> job_ids, absl::Time deadline, Attempt attempt)
      : owner_(owner),
        job_ids_(std::move(job_ids)),
        deadline_(deadline),
        attempt_(std::move(attempt)) {}

  const std::set<std::string>& job_ids() const { return job_ids_; }
  absl::Time deadline() const { return deadline_; }
  std::optional<absl::Status> Try(bool at_deadline) { return attempt_(at_deadline); }

  void OnCancel() override { owner_->Cancel(this); }
  void OnDone() override { delete this; }

 private:
  PendingCalls* const owner_;
  const std::set<std::string> job_ids_;
  const absl::Time deadline_;
  Attempt attempt_;
};

namespace {

// A reactor that finishes at once.
class FinishedCall final : public grpc::ServerUnaryReactor {
 public:
  explicit FinishedCall(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

PendingCalls::PendingCalls(size_t max_calls) : max_calls_(max_calls) {
  worker_ = std::thread([this] { Run(); });
}

PendingCalls::~PendingCalls() {
  Close();
  worker_.join();
}

grpc::ServerUnaryReactor* PendingCalls::Park(std::set<std::string> job_ids, absl::Time deadline,
                                             Attempt attempt) {
  absl::MutexLock lock(&mutex_);
  if (closed_) return new FinishedCall(absl::UnavailableError("the server is shutting down"));
  if (calls_.size() >= max_calls_) {
    return new FinishedCall(absl::ResourceExhaustedError(
        absl::StrCat("the server holds its maximum of ", max_calls_,
                     " GetValues calls waiting for metric reports; retry later")));
  }
  auto* call = new Call(this, std::move(job_ids), deadline, std::move(attempt));
  calls_.insert(call);
  // A report may have landed between the handler's first try and now.
  TryLocked(call, false);
  rescan_ = true;  // The worker's next wake-up may now be earlier.
  wake_.Signal();
  return call;
}

void PendingCalls::TryLocked(Call* call, bool at_deadline) {
  std::optional<absl::Status> status = call->Try(at_deadline);
  if (!status.has_value()) return;
  calls_.erase(call);
  call->Finish(ToGrpcStatus(*status));
}

void PendingCalls::OnJobEvent(const jobs::JobEvent& event) {
  absl::MutexLock lock(&mutex_);
  if (calls_.empty()) return;
  changed_.insert(event.job_id);
  wake_.Signal();
}

void PendingCalls::Cancel(Call* call) {
  absl::MutexLock lock(&mutex_);
  if (calls_.erase(call) > 0) call->Finish(grpc::Status::CANCELLED);
}

void PendingCalls::Close() {
  absl::MutexLock lock(&mutex_);
  closed_ = true;
  wake_.Signal();
  std::vector<Call*> calls(calls_.begin(), calls_.end());
  for (Call* call : calls) TryLocked(call, true);
}

size_t PendingCalls::size() const {
  absl::MutexLock lock(&mutex_);
  return calls_.size();
}

void PendingCalls::Run() {
  absl::MutexLock lock(&mutex_);
  while (!closed_ || !calls_.empty()) {
    absl::Time wake = absl::InfiniteFuture();
    for (Call* call : calls_) wake = std::min(wake, call->deadline());
    // A CondVar rather than Await(Condition): the condition is then only read by this thread,
    // holding the mutex (ThreadSanitizer cannot see the hand-off of a Condition evaluated by the
    // unlocking thread inside an uninstrumented Abseil).
    while (changed_.empty() && !closed_ && !rescan_) {
      if (wake_.WaitWithDeadline(&mutex_, wake)) break;  // Timed out.
    }
    if (closed_ && calls_.empty()) break;
    rescan_ = false;
    const std::set<std::string> changed = std::move(changed_);
    changed_.clear();
    const absl::Time now = absl::Now();
    std::vector<Call*> calls(calls_.begin(), calls_.end());
    for (Call* call : calls) {
      const bool at_deadline = closed_ || call->deadline() <= now;
      bool affected = at_deadline;
      for (const std::string& id : call->job_ids()) affected = affected || changed.contains(id);
      if (affected) TryLocked(call, at_deadline);
    }
  }
}

}  // namespace hpsched::service
