// What a database shared by several hpsched-server replicas offers the job registry beyond a
// JobStore: mutations as compare-and-set transactions under the job's lock, a change log to follow,
// per-replica served marks, fences and leases. The protocol and the argument for it are in
// docs/replicas.md; the names below (R1-R3, fences) are that page's.
#ifndef HPSCHED_STORE_SHARED_JOB_STORE_H_
#define HPSCHED_STORE_SHARED_JOB_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "core/job_record.h"

namespace hpsched::store {

// A job as the database holds it, with the sequence number of the change that last wrote it. Its
// record's served_through is this replica's own reservation for the job (what an earlier run of
// the same replica may have served), -1 for none.
struct SharedJob {
  core::JobRecord record;
  int64_t revision = 0;
};

// What the other replicas may have served of a job, read under the job's lock in Mutate.
struct OthersServed {
  // The highest step another replica may have served: its exact mark where it acknowledged the
  // mutation's fence, its reservation otherwise; -1 for none.
  int64_t served_through = -1;
  // Replicas whose reservation reaches the fence step, that did not acknowledge, whose lease is
  // still live (by the database's clock).
  std::vector<std::string> unacknowledged_live;
};

// What a mutation decided, given the job as the database holds it (see Mutate).
struct MutationDecision {
  enum class Action { kNone, kPut, kDelete };
  Action action = Action::kNone;
  // The record to write for kPut.
  core::JobRecord record;
};

// A pending fence (docs/replicas.md): an update at `step` of `job_id` waits for exact marks.
struct Fence {
  int64_t id = 0;
  std::string job_id;
  int64_t step = 0;
};

// One replica's marks for one job, to flush; `revision` is the revision the replica holds.
struct ReplicaMark {
  std::string job_id;
  int64_t served_through = -1;
  int64_t reserved_through = -1;
  int64_t revision = 0;
};

// What a flush made durable for one job: the reservation granted (capped below pending fences, and
// not raised for a job the replica holds an old revision of: R2) and whether the replica is behind.
struct GrantedMark {
  std::string job_id;
  int64_t reserved_through = -1;
  bool behind = false;
};

// A committed change, in the log.
struct Change {
  int64_t seq = 0;
  std::string job_id;
};

// Thread-safe. Every call is one or more database transactions on this replica's connections;
// errors are Unavailable when the database cannot be reached (nothing changed, or for Mutate, the
// outcome is unknown and the change log tells), Internal/DataLoss for what it holds.
class SharedJobStore {
 public:
  using Decide = std::function<absl::StatusOr<MutationDecision>(
      const std::optional<SharedJob>& current, const OthersServed& others)>;

  virtual ~SharedJobStore() = default;

  // This replica's name (unique among live replicas).
  virtual const std::string& replica_id() const = 0;

  // Every job, and the change sequence number the load is consistent with (follow from there).
  struct Snapshot {
    std::vector<SharedJob> jobs;
    int64_t seq = 0;
  };
  virtual absl::StatusOr<Snapshot> LoadAllShared() = 0;

  // One job as the database holds it now, nullopt if there is none.
  virtual absl::StatusOr<std::optional<SharedJob>> ReadJob(absl::string_view job_id) = 0;

  // One transaction under `job_id`'s lock: reads the job, and (with `fence`) the other replicas'
  // marks as OthersServed for `fence->step`; calls `decide` once; writes its decision with a new
  // revision, logs and announces it, deletes `fence`, and commits. Returns the new revision (0 for
  // kNone). Errors: decide's (nothing written); Unavailable when `fence` has expired (deleted by
  // a catch-up) or the database fails.
  virtual absl::StatusOr<int64_t> Mutate(absl::string_view job_id, const Fence* fence,
                                         const Decide& decide) = 0;

  // The highest reservation another replica holds for `job_id`; -1 for none.
  virtual absl::StatusOr<int64_t> OthersReserved(absl::string_view job_id) = 0;
  // Commits a fence at `step` on `job_id` (under the job's lock, so ordered against every flush of
  // it), expiring after `timeout`, and announces it. Returns it.
  virtual absl::StatusOr<Fence> AddFence(absl::string_view job_id, int64_t step,
                                         absl::Duration timeout) = 0;
  // Waits until every replica with a live lease whose reservation reaches `fence.step` has
  // acknowledged, or until `deadline`. Returns whether all did.
  virtual absl::StatusOr<bool> AwaitAcknowledgements(const Fence& fence, absl::Time deadline) = 0;
  // Deletes a fence (the update did not commit).
  virtual absl::Status DropFence(const Fence& fence) = 0;
  // This replica's exact mark for the fence's job, and its acknowledgement.
  virtual absl::Status AcknowledgeFence(const Fence& fence, int64_t served_through) = 0;
  // Every pending fence; deletes expired ones first (under their jobs' locks).
  virtual absl::StatusOr<std::vector<Fence>> PendingFences() = 0;

  // This replica's marks, in one transaction (R2).
  virtual absl::StatusOr<std::vector<GrantedMark>> PutReplicaMarks(
      std::span<const ReplicaMark> marks) = 0;

  // The changes logged after `seq`, in order of seq, at most `limit`.
  virtual absl::StatusOr<std::vector<Change>> ChangesSince(int64_t seq, size_t limit) = 0;

  // A graceful stop: this replica's exact final marks (lowering its reservations to them: it serves
  // nothing more), and its lease ends.
  virtual absl::Status Retire(std::span<const ReplicaMark> exact_marks) = 0;

  // Renews this replica's lease for `lease`.
  virtual absl::Status RenewLease(absl::Duration lease) = 0;

  // Blocks until a change or fence is announced, or `timeout` passes (on the listening
  // connection). Returns whether something was announced. Unavailable when the connection broke.
  virtual absl::StatusOr<bool> WaitForAnnouncement(absl::Duration timeout) = 0;
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_SHARED_JOB_STORE_H_
