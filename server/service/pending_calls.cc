#include "service/pending_calls.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "service/status_convert.h"

namespace hpsched::service {

class PendingCalls::Call final : public grpc::ServerUnaryReactor {
 public:
  Call(PendingCalls* owner, uint64_t id, std::set<std::string> job_ids, absl::Time deadline,
       Attempt attempt, Reason reason, CallNote* note)
      : owner_(owner),
        id_(id),
        job_ids_(std::move(job_ids)),
        deadline_(deadline),
        attempt_(std::move(attempt)),
        reason_(reason),
        note_(note) {}

  const std::set<std::string>& job_ids() const { return job_ids_; }
  absl::Time deadline() const { return deadline_; }
  Reason reason() const { return reason_; }
  // The executor's task that answers the call at its deadline.
  std::optional<jobs::Executor::TaskId> timer;
  std::optional<absl::Status> Try(bool at_deadline) { return attempt_(at_deadline); }
  void Answer(grpc::Status status) { Finish(Noted(note_, std::move(status))); }

  void OnCancel() override { owner_->Cancel(id_); }
  void OnDone() override { delete this; }

 private:
  PendingCalls* const owner_;
  const uint64_t id_;
  const std::set<std::string> job_ids_;
  const absl::Time deadline_;
  Attempt attempt_;
  const Reason reason_;
  CallNote* const note_;
};

namespace {

// A reactor that finishes at once.
class FinishedCall final : public grpc::ServerUnaryReactor {
 public:
  FinishedCall(const absl::Status& status, CallNote* note) {
    Finish(Noted(note, ToGrpcStatus(status)));
  }
  void OnDone() override { delete this; }
};

}  // namespace

PendingCalls::PendingCalls(size_t max_calls, const jobs::Clock* clock, jobs::Executor* executor)
    : max_calls_(max_calls),
      clock_(clock),
      executor_(executor),
      retry_(executor, [this] { RetryChanged(); }) {}

PendingCalls::~PendingCalls() { Close(); }

grpc::ServerUnaryReactor* PendingCalls::Park(std::set<std::string> job_ids, absl::Time deadline,
                                             Attempt attempt, Reason reason, CallNote* note) {
  absl::MutexLock lock(&mutex_);
  if (closed_) {
    return new FinishedCall(absl::UnavailableError("the server is shutting down"), note);
  }
  if (reason == Reason::kReports && waiting_for_reports_ >= max_calls_) {
    return new FinishedCall(absl::ResourceExhaustedError(absl::StrCat(
                                "the server holds its maximum of ", max_calls_,
                                " GetValues calls waiting for metric reports; retry later")),
                            note);
  }
  const uint64_t id = next_id_++;
  auto* call = new Call(this, id, std::move(job_ids), deadline, std::move(attempt), reason, note);
  calls_.emplace(id, call);
  if (reason == Reason::kReports) ++waiting_for_reports_;
  // A change may have landed between the handler's first try and now.
  TryLocked(id, call, false);
  if (calls_.contains(id)) call->timer = executor_->At(deadline, [this, id] { AtDeadline(id); });
  return call;
}

void PendingCalls::TryLocked(uint64_t id, Call* call, bool at_deadline) {
  std::optional<absl::Status> status = call->Try(at_deadline);
  if (!status.has_value()) return;
  Forget(id, call);
  call->Answer(ToGrpcStatus(*status));
}

void PendingCalls::Forget(uint64_t id, Call* call) {
  calls_.erase(id);
  if (call->reason() == Reason::kReports) --waiting_for_reports_;
  // Answered before its deadline: its timer need not stay queued until then.
  if (call->timer.has_value()) executor_->Cancel(*call->timer);
}

void PendingCalls::OnJobEvent(const jobs::JobEvent& event) {
  absl::MutexLock lock(&mutex_);
  if (calls_.empty()) return;
  changed_.insert(event.job_id);
  retry_.Trigger();
}

void PendingCalls::RetryChanged() {
  absl::MutexLock lock(&mutex_);
  const std::set<std::string> changed = std::move(changed_);
  changed_.clear();
  const absl::Time now = clock_->Now();
  const std::vector<std::pair<uint64_t, Call*>> calls(calls_.begin(), calls_.end());
  for (const auto& [id, call] : calls) {
    bool affected = false;
    for (const std::string& job_id : call->job_ids())
      affected = affected || changed.contains(job_id);
    if (affected) TryLocked(id, call, closed_ || call->deadline() <= now);
  }
}

void PendingCalls::AtDeadline(uint64_t id) {
  absl::MutexLock lock(&mutex_);
  auto it = calls_.find(id);
  if (it != calls_.end()) TryLocked(id, it->second, true);
}

void PendingCalls::Cancel(uint64_t id) {
  absl::MutexLock lock(&mutex_);
  auto it = calls_.find(id);
  if (it == calls_.end()) return;
  Call* call = it->second;
  Forget(id, call);
  call->Answer(grpc::Status::CANCELLED);
}

void PendingCalls::Close() {
  absl::MutexLock lock(&mutex_);
  closed_ = true;
  const std::vector<std::pair<uint64_t, Call*>> calls(calls_.begin(), calls_.end());
  for (const auto& [id, call] : calls) TryLocked(id, call, true);
}

size_t PendingCalls::size() const {
  absl::MutexLock lock(&mutex_);
  return calls_.size();
}

}  // namespace hpsched::service
