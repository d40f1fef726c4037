// GetValues calls that wait for metric reports: parked without a thread, retried when their jobs
// change, finished at their deadline.
#ifndef HPSCHED_SERVICE_PENDING_CALLS_H_
#define HPSCHED_SERVICE_PENDING_CALLS_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "jobs/job_registry.h"

namespace hpsched::service {

// The longest a call waits when it has no deadline of its own.
inline constexpr absl::Duration kMaxWait = absl::Minutes(10);

class PendingCalls final : public jobs::JobObserver {
 public:
  // Tries to complete a parked call: returns its final status once it can finish (its response
  // filled), or nullopt to keep waiting. `at_deadline` is true on the last try.
  using Attempt = std::function<std::optional<absl::Status>(bool at_deadline)>;

  explicit PendingCalls(size_t max_calls);
  ~PendingCalls() override;

  // Parks a call that depends on `job_ids` until an Attempt succeeds or `deadline`. Returns the
  // reactor to return from the handler; RESOURCE_EXHAUSTED when max_calls are parked, UNAVAILABLE
  // after Close.
  grpc::ServerUnaryReactor* Park(std::set<std::string> job_ids, absl::Time deadline,
                                 Attempt attempt);

  void OnJobEvent(const jobs::JobEvent& event) override;

  // Finishes every parked call with its deadline answer and refuses new ones.
  void Close();

  size_t size() const;

 private:
  class Call;
  void Run();
  void Cancel(Call* call);
  // Tries `call`; finishes and forgets it when done.
  void TryLocked(Call* call, bool at_deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const size_t max_calls_;
  mutable absl::Mutex mutex_;
  std::set<Call*> calls_ ABSL_GUARDED_BY(mutex_);
  // Jobs that changed since the worker last looked.
  std::set<std::string> changed_ ABSL_GUARDED_BY(mutex_);
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  // A call was parked: the worker recomputes its next deadline.
  bool rescan_ ABSL_GUARDED_BY(mutex_) = false;
  // Wakes the worker: a change, a parked call, or Close.
  absl::CondVar wake_;
  std::thread worker_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_PENDING_CALLS_H_
