// GetValues calls that cannot be answered yet: parked without a thread, retried when one of their
// jobs changes, finished at their deadline. Time comes from an injected clock and every retry and
// deadline runs on an injected executor, so tests drive both.
#ifndef HPSCHED_SERVICE_PENDING_CALLS_H_
#define HPSCHED_SERVICE_PENDING_CALLS_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "jobs/clock.h"
#include "jobs/executor.h"
#include "jobs/job_registry.h"
#include "service/call_note.h"

namespace hpsched::service {

// The longest a call waits when it has no deadline of its own.
inline constexpr absl::Duration kMaxWait = absl::Minutes(10);

class PendingCalls final : public jobs::JobObserver {
 public:
  // Tries to complete a parked call: returns its final status once it can finish (its response
  // filled), or nullopt to keep waiting. `at_deadline` is true on the last try.
  using Attempt = std::function<std::optional<absl::Status>(bool at_deadline)>;

  // Why a call waits: for metric reports (counted against max_calls), or for a job a mutation is
  // replacing, which takes one store write (not counted: the call is not waiting for a trainer).
  enum class Reason { kReports, kReplacedJob };

  // `clock` and `executor` must outlive this object; the executor must drop or have run its tasks
  // before this object is destroyed (see jobs::Executor).
  PendingCalls(size_t max_calls, const jobs::Clock* clock, jobs::Executor* executor);
  ~PendingCalls() override;

  // Parks a call that depends on `job_ids` until an Attempt succeeds or `deadline` (by the clock).
  // Returns the reactor to return from the handler; RESOURCE_EXHAUSTED when max_calls wait for
  // reports, UNAVAILABLE after Close. The answer is noted on `note` when there is one.
  grpc::ServerUnaryReactor* Park(std::set<std::string> job_ids, absl::Time deadline,
                                 Attempt attempt, Reason reason = Reason::kReports,
                                 CallNote* note = nullptr);

  // Only notes the job and schedules a retry on the executor (called under the registry's lock).
  void OnJobEvent(const jobs::JobEvent& event) override;

  // Finishes every parked call with its deadline answer and refuses new ones.
  void Close();

  size_t size() const;

 private:
  class Call;
  // Retries the calls on the jobs that changed since the last retry.
  void RetryChanged();
  void AtDeadline(uint64_t id);
  void Cancel(uint64_t id);
  // Tries `call`; finishes and forgets it when done.
  void TryLocked(uint64_t id, Call* call, bool at_deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Drops a finished call: its entry, its count, its deadline timer.
  void Forget(uint64_t id, Call* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const size_t max_calls_;
  const jobs::Clock* const clock_;
  jobs::Executor* const executor_;
  mutable absl::Mutex mutex_;
  std::map<uint64_t, Call*> calls_ ABSL_GUARDED_BY(mutex_);
  uint64_t next_id_ ABSL_GUARDED_BY(mutex_) = 0;
  // Calls waiting for reports (those max_calls_ bounds).
  size_t waiting_for_reports_ ABSL_GUARDED_BY(mutex_) = 0;
  // Jobs that changed since the last retry.
  std::set<std::string> changed_ ABSL_GUARDED_BY(mutex_);
  // Runs RetryChanged once for any number of changes.
  jobs::CoalescedTask retry_;
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_PENDING_CALLS_H_
