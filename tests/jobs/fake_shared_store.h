// An in-memory stand-in for the shared database of several replicas (store::SharedJobStore), for
// registry tests without processes: one FakeSharedDatabase, one FakeSharedStore per replica. One
// mutex plays every row lock (coarser than PostgreSQL, the same outcomes). A fence's
// acknowledgements come from `on_fence` (the test runs the other replicas' listeners there), and a
// replica listed in `silent` never acknowledges, as if it were slow or cut off.
#ifndef HPSCHED_TESTS_JOBS_FAKE_SHARED_STORE_H_
#define HPSCHED_TESTS_JOBS_FAKE_SHARED_STORE_H_

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/status_macros.h"
#include "store/shared_job_store.h"

namespace hpsched::jobs::testing {

#define RETURN_IF_DOWN() \
  if (db_->down) return absl::UnavailableError("database down")

struct FakeSharedDatabase {
  absl::Mutex mutex;
  std::map<std::string, store::SharedJob> jobs;
  // Every change: (seq, job id).
  std::vector<store::Change> log;
  // (job id, replica) -> (served, reserved).
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, int64_t>> marks;
  std::map<int64_t, store::Fence> fences;
  // fence id -> replica -> served.
  std::map<int64_t, std::map<std::string, int64_t>> acks;
  std::set<std::string> expired_leases;
  std::set<std::string> silent;
  bool down = false;
  int64_t next_fence = 1;
  // Run (without the mutex) while an update waits for acknowledgements.
  std::function<void()> on_fence;
};

class FakeSharedStore final : public store::SharedJobStore {
 public:
  FakeSharedStore(FakeSharedDatabase* db, std::string replica_id)
      : db_(db), replica_id_(std::move(replica_id)) {}

  const std::string& replica_id() const override { return replica_id_; }

  absl::StatusOr<Snapshot> LoadAllShared() override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    Snapshot snapshot;
    for (const auto& [id, job] : db_->jobs) snapshot.jobs.push_back(WithOwnMark(job));
    snapshot.seq = static_cast<int64_t>(db_->log.size());
    return snapshot;
  }

  absl::StatusOr<std::optional<store::SharedJob>> ReadJob(absl::string_view job_id) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    auto it = db_->jobs.find(std::string(job_id));
    if (it == db_->jobs.end()) return std::nullopt;
    return WithOwnMark(it->second);
  }

  absl::StatusOr<int64_t> Mutate(absl::string_view job_id, const store::Fence* fence,
                                 const Decide& decide) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    const std::string id(job_id);
    if (fence != nullptr && !db_->fences.contains(fence->id)) {
      return absl::UnavailableError("fence expired");
    }
    std::optional<store::SharedJob> current;
    if (auto it = db_->jobs.find(id); it != db_->jobs.end()) current = it->second;
    store::OthersServed others;
    if (fence != nullptr) {
      for (const auto& [key, mark] : db_->marks) {
        if (key.first != id || key.second == replica_id_) continue;
        const auto& acks = db_->acks[fence->id];
        if (auto ack = acks.find(key.second); ack != acks.end()) {
          others.served_through = std::max(others.served_through, ack->second);
        } else {
          others.served_through = std::max(others.served_through, mark.second);
          if (mark.second >= fence->step && !db_->expired_leases.contains(key.second)) {
            others.unacknowledged_live.push_back(key.second);
          }
        }
      }
    } else {
      // Without a fence the guard counts every other replica's reservation.
      for (const auto& [key, mark] : db_->marks) {
        if (key.first == id && key.second != replica_id_) {
          others.served_through = std::max(others.served_through, mark.second);
        }
      }
    }
    ASSIGN_OR_RETURN(store::MutationDecision decision, decide(current, others));
    if (decision.action == store::MutationDecision::Action::kNone) return 0;
    const int64_t seq = static_cast<int64_t>(db_->log.size()) + 1;
    db_->log.push_back(store::Change{seq, id});
    if (decision.action == store::MutationDecision::Action::kDelete) {
      db_->jobs.erase(id);
    } else {
      db_->jobs[id] = store::SharedJob{decision.record, seq};
    }
    if (fence != nullptr) db_->fences.erase(fence->id);
    return seq;
  }

  absl::StatusOr<int64_t> OthersReserved(absl::string_view job_id) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    int64_t reserved = -1;
    for (const auto& [key, mark] : db_->marks) {
      if (key.first == job_id && key.second != replica_id_) {
        reserved = std::max(reserved, mark.second);
      }
    }
    return reserved;
  }

  absl::StatusOr<store::Fence> AddFence(absl::string_view job_id, int64_t step,
                                        absl::Duration) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    store::Fence fence{db_->next_fence++, std::string(job_id), step};
    db_->fences[fence.id] = fence;
    return fence;
  }

  absl::StatusOr<bool> AwaitAcknowledgements(const store::Fence& fence, absl::Time) override {
    if (db_->on_fence) db_->on_fence();
    absl::MutexLock lock(&db_->mutex);
    for (const auto& [key, mark] : db_->marks) {
      if (key.first != fence.job_id || key.second == replica_id_ || mark.second < fence.step) {
        continue;
      }
      if (!db_->acks[fence.id].contains(key.second)) return false;
    }
    return true;
  }

  absl::Status DropFence(const store::Fence& fence) override {
    absl::MutexLock lock(&db_->mutex);
    db_->fences.erase(fence.id);
    return absl::OkStatus();
  }

  absl::Status AcknowledgeFence(const store::Fence& fence, int64_t served) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    if (db_->silent.contains(replica_id_)) return absl::OkStatus();
    auto& mark = db_->marks[{fence.job_id, replica_id_}];
    if (mark.first == 0 && mark.second == 0) mark = {-1, -1};
    mark.first = std::max(mark.first, served);
    db_->acks[fence.id][replica_id_] = served;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<store::Fence>> PendingFences() override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    std::vector<store::Fence> fences;
    for (const auto& [id, fence] : db_->fences) fences.push_back(fence);
    return fences;
  }

  absl::StatusOr<std::vector<store::GrantedMark>> PutReplicaMarks(
      std::span<const store::ReplicaMark> marks) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    std::vector<store::GrantedMark> granted;
    for (const store::ReplicaMark& m : marks) {
      auto [it, fresh] = db_->marks.try_emplace({m.job_id, replica_id_}, -1, -1);
      auto& [served, reserved] = it->second;
      served = std::max(served, m.served_through);
      int64_t cap = m.reserved_through;
      for (const auto& [id, fence] : db_->fences) {
        if (fence.job_id == m.job_id) cap = std::min(cap, fence.step - 1);
      }
      auto job = db_->jobs.find(m.job_id);
      const bool behind = job != db_->jobs.end() && job->second.revision > m.revision;
      if (!behind) reserved = std::max(reserved, cap);
      granted.push_back(store::GrantedMark{m.job_id, reserved, behind});
    }
    return granted;
  }

  absl::StatusOr<std::vector<store::Change>> ChangesSince(int64_t seq, size_t limit) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    std::vector<store::Change> changes;
    for (const store::Change& change : db_->log) {
      if (change.seq > seq && changes.size() < limit) changes.push_back(change);
    }
    return changes;
  }

  absl::Status Retire(std::span<const store::ReplicaMark> marks) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    for (const store::ReplicaMark& m : marks) {
      db_->marks[{m.job_id, replica_id_}] = {m.served_through, m.served_through};
    }
    db_->expired_leases.insert(replica_id_);
    return absl::OkStatus();
  }

  absl::Status RenewLease(absl::Duration) override {
    absl::MutexLock lock(&db_->mutex);
    RETURN_IF_DOWN();
    return absl::OkStatus();
  }

  absl::StatusOr<bool> WaitForAnnouncement(absl::Duration) override { return false; }

 private:
  store::SharedJob WithOwnMark(store::SharedJob job) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(db_->mutex) {
    auto mark = db_->marks.find({job.record.job_id, replica_id_});
    job.record.served_through = mark == db_->marks.end() ? -1 : mark->second.second;
    return job;
  }

  FakeSharedDatabase* const db_;
  const std::string replica_id_;
};

}  // namespace hpsched::jobs::testing

#endif  // HPSCHED_TESTS_JOBS_FAKE_SHARED_STORE_H_
