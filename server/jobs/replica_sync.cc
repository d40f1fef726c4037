#include "jobs/replica_sync.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "core/status_macros.h"
#include "spdlog/spdlog.h"

namespace hpsched::jobs {

ReplicaSync::ReplicaSync(JobRegistry* registry, store::SharedJobStore* shared,
                         ReplicaSyncOptions options, std::function<void(bool)> on_health)
    : registry_(registry), shared_(shared), options_(options), on_health_(std::move(on_health)) {}

ReplicaSync::~ReplicaSync() { Stop(); }

void ReplicaSync::Start() {
  {
    absl::MutexLock lock(&mutex_);
    low_ = registry_->loaded_seq();
  }
  listen_thread_ = std::thread([this] { ListenLoop(); });
  catchup_thread_ = std::thread([this] { CatchUpLoop(); });
}

void ReplicaSync::Stop() {
  if (stopping_.exchange(true)) return;
  stopped_.Notify();
  {
    absl::MutexLock lock(&mutex_);  // Wakes the catch-up loop's wait.
    wanted_ = true;
  }
  if (listen_thread_.joinable()) listen_thread_.join();
  if (catchup_thread_.joinable()) catchup_thread_.join();
}

void ReplicaSync::Trigger() {
  absl::MutexLock lock(&mutex_);
  wanted_ = true;
}

int64_t ReplicaSync::applied_seq() const {
  absl::MutexLock lock(&mutex_);
  return low_;
}

void ReplicaSync::SetDegraded(bool degraded, const absl::Status& why) {
  if (degraded_.exchange(degraded) == degraded) return;
  if (degraded) {
    spdlog::error(
        "replica degraded: the database is unreachable ({}); reads are answered from memory, "
        "mutations answer UNAVAILABLE until it returns",
        std::string(why.message()));
  } else {
    spdlog::info("replica recovered: the database is back and this replica has caught up");
  }
  if (on_health_) on_health_(!degraded);
}

absl::Status ReplicaSync::AcknowledgeFences() {
  ASSIGN_OR_RETURN(std::vector<store::Fence> fences, shared_->PendingFences());
  std::set<int64_t> pending;
  for (const store::Fence& fence : fences) {
    pending.insert(fence.id);
    {
      absl::MutexLock lock(&mutex_);
      if (acknowledged_.contains(fence.id)) continue;
    }
    const int64_t served = registry_->FenceReads(fence);
    RETURN_IF_ERROR(shared_->AcknowledgeFence(fence, served));
    absl::MutexLock lock(&mutex_);
    acknowledged_.insert(fence.id);
  }
  absl::MutexLock lock(&mutex_);
  for (auto it = acknowledged_.begin(); it != acknowledged_.end();) {
    it = pending.contains(*it) ? std::next(it) : acknowledged_.erase(it);
  }
  return absl::OkStatus();
}

absl::Status ReplicaSync::CatchUp() {
  absl::MutexLock serial(&catchup_mutex_);
  // The epoch before the fences are read: a fence taken after it is not lifted by this round.
  const int64_t epoch = registry_->FenceEpoch();
  ASSIGN_OR_RETURN(std::vector<store::Fence> fences, shared_->PendingFences());
  for (const store::Fence& fence : fences) {
    bool acknowledged;
    {
      absl::MutexLock lock(&mutex_);
      acknowledged = acknowledged_.contains(fence.id);
    }
    if (acknowledged) continue;
    const int64_t served = registry_->FenceReads(fence);
    RETURN_IF_ERROR(shared_->AcknowledgeFence(fence, served));
    absl::MutexLock lock(&mutex_);
    acknowledged_.insert(fence.id);
  }
  int64_t low;
  {
    absl::MutexLock lock(&mutex_);
    low = low_;
  }
  ASSIGN_OR_RETURN(std::vector<store::Change> changes, shared_->ChangesSince(low, 10000));
  std::set<std::string> job_ids;
  {
    absl::MutexLock lock(&mutex_);
    for (const store::Change& change : changes) {
      if (!seen_.contains(change.seq)) job_ids.insert(change.job_id);
    }
  }
  for (const std::string& id : job_ids) {
    ASSIGN_OR_RETURN(std::optional<store::SharedJob> job, shared_->ReadJob(id));
    registry_->ApplyRemote(id, std::move(job));
  }
  {
    absl::MutexLock lock(&mutex_);
    for (const store::Change& change : changes) {
      if (change.seq > low_) seen_.insert(change.seq);
    }
    // Advance over applied changes; a gap (a sequence number not committed yet, or never) is
    // waited for gap_wait before it is passed over.
    const absl::Time now = absl::Now();
    while (!seen_.empty()) {
      if (*seen_.begin() == low_ + 1) {
        seen_.erase(seen_.begin());
        gaps_.erase(++low_);
        continue;
      }
      auto [gap, fresh] = gaps_.try_emplace(low_ + 1, now);
      if (now - gap->second < options_.gap_wait) break;
      gaps_.erase(gap);
      ++low_;
    }
  }
  // Every change committed before the fences were read is applied: fences gone from the database
  // (committed or refused) can go here too.
  registry_->LiftFences(fences, epoch);
  return absl::OkStatus();
}

void ReplicaSync::CatchUpLoop() {
  while (!stopping_.load()) {
    {
      absl::MutexLock lock(&mutex_);
      mutex_.Await(absl::Condition(&wanted_));
      wanted_ = false;
    }
    if (stopping_.load()) break;
    absl::Status status = CatchUp();
    if (!status.ok()) spdlog::debug("catch-up failed: {}", std::string(status.message()));
  }
}

void ReplicaSync::ListenLoop() {
  absl::Time renewed_at = absl::Now();  // Loaded just now: as good as a renewal.
  absl::Time next_renewal = absl::InfinitePast();
  bool lease_valid = true;
  while (!stopping_.load()) {
    absl::Status status;
    const absl::Time start = absl::Now();
    if (start >= next_renewal) {
      status = shared_->RenewLease(options_.lease);
      if (status.ok()) {
        renewed_at = start;
        next_renewal = start + options_.lease / 3;
      }
    }
    if (status.ok()) status = AcknowledgeFences();
    if (status.ok()) {
      const absl::Duration wait = std::max(
          absl::Milliseconds(1), std::min(options_.catchup_interval, next_renewal - absl::Now()));
      status = shared_->WaitForAnnouncement(wait).status();
    }
    // The lease by this replica's clock, from before the renewal was sent: it runs out here
    // before the database's record of it does.
    if (lease_valid && absl::Now() - renewed_at > options_.lease * 0.8) {
      lease_valid = false;
      spdlog::warn("replica lease ran out: serving only steps already served until it renews");
      registry_->SetLeaseValid(false);
    }
    if (!status.ok()) {
      SetDegraded(true, status);
      stopped_.WaitForNotificationWithTimeout(options_.retry_interval);
      next_renewal = absl::InfinitePast();
      continue;
    }
    if (degraded_.load() || !lease_valid) {
      // Recovering: catch up completely (here, serialized with the catch-up thread) before
      // serving changed jobs again.
      const absl::Status caught = CatchUp();
      if (!caught.ok()) {
        stopped_.WaitForNotificationWithTimeout(options_.retry_interval);
        continue;
      }
      if (!lease_valid) {
        lease_valid = true;
        registry_->SetLeaseValid(true);
      }
      SetDegraded(false, absl::OkStatus());
      continue;
    }
    Trigger();
  }
}

}  // namespace hpsched::jobs
