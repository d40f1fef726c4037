// How a replica follows the others (docs/replicas.md): the change log into the registry's table,
// fences acknowledged, the lease renewed, and the degraded state while the database is away.
#ifndef HPSCHED_JOBS_REPLICA_SYNC_H_
#define HPSCHED_JOBS_REPLICA_SYNC_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "jobs/job_registry.h"
#include "store/shared_job_store.h"

namespace hpsched::jobs {

struct ReplicaSyncOptions {
  // A catch-up runs on every announcement and at least this often (the safety net for a lost one).
  absl::Duration catchup_interval = absl::Seconds(1);
  // The lease (renewed every third of it); without a live lease a replica serves only steps it
  // served before.
  absl::Duration lease = absl::Seconds(10);
  // How long a gap in the change log (a sequence number taken by a transaction that has not
  // committed, or rolled back) is waited for before it is passed over.
  absl::Duration gap_wait = absl::Seconds(10);
  // Between reconnection attempts while the database is away.
  absl::Duration retry_interval = absl::Seconds(1);
};

// Runs two threads of its own: one listens for announcements, acknowledges fences and renews the
// lease (it never takes the registry's write lock, so a local update waiting for other replicas
// never delays this replica's answers to theirs); the other applies the change log to the registry.
// Thread-safe.
class ReplicaSync {
 public:
  // `registry` (in shared mode, loaded) and `shared` must outlive this. `on_health` is called with
  // false when the replica becomes degraded (the database is away) and true when it has recovered
  // (caught up, lease renewed); from this object's threads.
  ReplicaSync(JobRegistry* registry, store::SharedJobStore* shared, ReplicaSyncOptions options,
              std::function<void(bool healthy)> on_health);
  ~ReplicaSync();  // Stop()s.

  // Starts following from the registry's loaded_seq().
  void Start();
  void Stop();
  // Asks for a catch-up now (e.g. a flush found this replica behind).
  void Trigger();

  bool degraded() const { return degraded_.load(); }
  // The highest change sequence number applied with every one before it (for tests and metrics).
  int64_t applied_seq() const;

  // One catch-up: pending fences, then the changes since the last one, then lifts fences. Public
  // for tests that drive it without threads.
  absl::Status CatchUp();
  // Acknowledges the pending fences this replica has not acknowledged yet.
  absl::Status AcknowledgeFences();

 private:
  void ListenLoop();
  void CatchUpLoop();
  void SetDegraded(bool degraded, const absl::Status& why);

  JobRegistry* const registry_;
  store::SharedJobStore* const shared_;
  const ReplicaSyncOptions options_;
  const std::function<void(bool)> on_health_;

  std::atomic<bool> degraded_{false};
  std::atomic<bool> stopping_{false};
  absl::Notification stopped_;
  std::thread listen_thread_;
  std::thread catchup_thread_;

  mutable absl::Mutex mutex_;
  // Catch-up requested and not started.
  bool wanted_ ABSL_GUARDED_BY(mutex_) = false;
  // Every change up to low_ is applied; seen_ holds those above it, gaps_ when a gap was noticed.
  int64_t low_ ABSL_GUARDED_BY(mutex_) = 0;
  std::set<int64_t> seen_ ABSL_GUARDED_BY(mutex_);
  std::map<int64_t, absl::Time> gaps_ ABSL_GUARDED_BY(mutex_);
  // Fences acknowledged (pruned to the pending ones).
  std::set<int64_t> acknowledged_ ABSL_GUARDED_BY(mutex_);
  // Serializes CatchUp (the loop, and tests).
  absl::Mutex catchup_mutex_;
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_REPLICA_SYNC_H_
