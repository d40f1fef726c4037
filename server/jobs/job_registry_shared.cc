// The job registry's replica mode (JobRegistry::UseSharedStore): mutations as transactions of the
// shared database, catch-up, fences and leases. The protocol and its argument: docs/replicas.md.
#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "jobs/closing.h"
#include "jobs/job_registry.h"
#include "spdlog/spdlog.h"

namespace hpsched::jobs {
namespace {

using store::MutationDecision;

// The event a remote change makes, comparing the job held with the one replacing it.
JobEvent RemoteEvent(const Job& held, const std::shared_ptr<const Job>& job) {
  if (job->record.version != held.record.version) {
    int64_t first = core::kStepLimit;
    for (const core::HyperparameterSpec& hp : job->record.spec.hyperparameters) {
      for (const core::SegmentSpec& segment : hp.segments) {
        if (segment.version > held.record.version) first = std::min(first, segment.effective_step);
      }
    }
    return JobEvent{JobEvent::Type::kUpdated, job->record.job_id, job,
                    first == core::kStepLimit ? 0 : first};
  }
  const std::vector<int64_t>& before = held.plan->reduction_steps();
  for (int64_t step : job->plan->reduction_steps()) {
    if (!std::binary_search(before.begin(), before.end(), step)) {
      return JobEvent{JobEvent::Type::kPlateauReduced, job->record.job_id, job, step};
    }
  }
  // The first step a new report can change.
  int64_t first = core::kStepLimit;
  for (const auto& [name, reports] : job->record.metric_reports) {
    auto old = held.record.metric_reports.find(name);
    const core::MetricHistory* had =
        old == held.record.metric_reports.end() ? nullptr : &old->second;
    // Reports are kept in the order they were added: when the held history is a prefix of the new
    // one (its last report is where it was), only the reports after it are new.
    size_t from = 0;
    if (had != nullptr && !had->empty() && had->size() <= reports.size() &&
        reports[had->size() - 1].step == (*had)[had->size() - 1].step) {
      from = had->size();
    }
    for (size_t i = from; i < reports.size(); ++i) {
      const int64_t step = reports[i].step;
      if (had == nullptr || had->Find(step) == nullptr) first = std::min(first, step + 1);
    }
  }
  if (first == core::kStepLimit) {
    return JobEvent{JobEvent::Type::kUnchanged, job->record.job_id, job, 0};
  }
  return JobEvent{JobEvent::Type::kMetricsReported, job->record.job_id, job, first};
}

}  // namespace

void JobRegistry::UseSharedStore(store::SharedJobStore* shared, absl::Duration fence_timeout) {
  shared_ = shared;
  fence_timeout_ = fence_timeout;
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::FromShared(
    const store::SharedJob& shared, const std::shared_ptr<const Job>& held) const {
  if (held != nullptr && held->revision == shared.revision) return held;
  std::shared_ptr<const core::JobPlan> extended;
  if (held != nullptr) extended = ExtendedPlan(shared.record, *held);
  auto plan = extended != nullptr ? extended : CompileAccepted(shared.record);
  if (!plan.ok()) {
    return absl::InternalError(absl::StrCat("stored job ", shared.record.job_id,
                                            " does not compile: ", plan.status().message()));
  }
  // A job new to this replica starts from its own reservation (an earlier run's), if any.
  const int64_t served = held != nullptr ? -1 : shared.record.served_through;
  return std::make_shared<const Job>(shared.record, *std::move(plan), served, shared.revision);
}

std::shared_ptr<const core::JobPlan> JobRegistry::ExtendedPlan(const core::JobRecord& record,
                                                               const Job& held) {
  if (record.version != held.record.version || !(record.spec == held.record.spec)) return nullptr;
  // Every history held is a prefix of the new one (core::MetricHistory::lineage): the shared
  // store builds the new histories on the ones this replica holds.
  for (const auto& [name, had] : held.record.metric_reports) {
    auto now = record.metric_reports.find(name);
    if (now == record.metric_reports.end() || now->second.size() < had.size() ||
        (!had.empty() && now->second.lineage() != had.lineage())) {
      return nullptr;
    }
  }
  core::MetricLog log = held.plan->metrics();
  for (const auto& [name, reports] : record.metric_reports) {
    auto spec = std::find_if(record.spec.metrics.begin(), record.spec.metrics.end(),
                             [&](const core::MetricSpec& m) { return m.name == name; });
    if (spec == record.spec.metrics.end()) return nullptr;
    core::ExtendTrack(*spec, reports, &log[name]);
  }
  auto plan = core::JobPlan::Compile(record.spec, "job", &log, core::JobPlan::Budgets::kAccepted,
                                     held.plan.get());
  return plan.ok() ? *std::move(plan) : nullptr;
}

std::shared_ptr<const Job> JobRegistry::Carry(std::shared_ptr<const Job> job, const Job* held) {
  if (held != nullptr) {
    // `held` is closed: readers that mark it from now on plan again on `job`, so its marks are
    // final here.
    held->closing.store(true);
    job->served_through.store(std::max(job->served_through.load(), held->served_through.load()));
    job->reserved_through.store(
        std::max(job->reserved_through.load(), held->reserved_through.load()));
    job->flushed_through.store(std::max(job->flushed_through.load(), held->flushed_through.load()));
  }
  Publish(job->record.job_id, job);
  return job;
}

std::shared_ptr<const Job> JobRegistry::ApplyLocked(absl::string_view job_id,
                                                    std::optional<store::SharedJob> shared) {
  std::shared_ptr<const Job> held;
  if (auto found = Get(job_id); found.ok()) held = *std::move(found);
  if (!shared.has_value()) {
    if (held == nullptr) return nullptr;
    held->closing.store(true);
    Publish(std::string(job_id), nullptr);
    Notify(JobEvent{JobEvent::Type::kDeleted, std::string(job_id), nullptr, 0});
    spdlog::info("job jobs/{} deleted through another replica", std::string(job_id));
    return nullptr;
  }
  if (held != nullptr && held->revision >= shared->revision) return held;
  auto job = FromShared(*shared, held);
  if (!job.ok()) {
    spdlog::error("cannot follow a change of job jobs/{}: {}", std::string(job_id),
                  std::string(job.status().message()));
    return held;
  }
  Carry(*job, held.get());
  if (held != nullptr) Notify(RemoteEvent(*held, *job));
  return *job;
}

void JobRegistry::ApplyRemote(absl::string_view job_id, std::optional<store::SharedJob> job) {
  absl::MutexLock write_lock(&write_mutex_);
  ApplyLocked(job_id, std::move(job));
}

int64_t JobRegistry::HeldRevision(absl::string_view job_id) const {
  auto job = Get(job_id);
  return job.ok() ? (*job)->revision : 0;
}

std::vector<std::string> JobRegistry::HeldJobIds() const {
  absl::ReaderMutexLock lock(&table_mutex_);
  std::vector<std::string> ids;
  ids.reserve(jobs_.size());
  for (const auto& job : jobs_) ids.push_back(job->record.job_id);
  return ids;
}

int64_t JobRegistry::LowestFence(absl::string_view job_id) const {
  int64_t lowest = core::kStepLimit;
  for (const auto& [id, fence] : fences_) {
    if (fence.job_id == job_id) lowest = std::min(lowest, fence.step);
  }
  return lowest;
}

int64_t JobRegistry::FenceReads(const store::Fence& fence) {
  absl::MutexLock fence_lock(&fence_mutex_);
  fences_.insert_or_assign(fence.id, HeldFence{fence.job_id, fence.step, fence_epoch_});
  absl::ReaderMutexLock lock(&table_mutex_);
  auto it = jobs_.find(fence.job_id);
  if (it == jobs_.end()) return -1;
  const Job& job = **it;
  // The fence first, then the mark: a reader marks first, then checks the fence (MarkServed).
  job.fence_step.store(std::min(job.fence_step.load(), fence.step));
  return job.served_through.load();
}

bool JobRegistry::HoldsFence(int64_t id) const {
  absl::MutexLock fence_lock(&fence_mutex_);
  return fences_.contains(id);
}

int64_t JobRegistry::FenceEpoch() const {
  absl::MutexLock fence_lock(&fence_mutex_);
  return ++fence_epoch_;
}

void JobRegistry::LiftFences(std::span<const store::Fence> pending, int64_t epoch) {
  absl::MutexLock write_lock(&write_mutex_);
  std::vector<std::shared_ptr<const Job>> lifted;
  {
    absl::MutexLock fence_lock(&fence_mutex_);
    std::vector<std::string> job_ids;
    for (auto it = fences_.begin(); it != fences_.end();) {
      const bool still = std::any_of(pending.begin(), pending.end(),
                                     [&](const store::Fence& f) { return f.id == it->first; });
      if (it->second.epoch < epoch && !still) {
        job_ids.push_back(it->second.job_id);
        it = fences_.erase(it);
      } else {
        ++it;
      }
    }
    absl::ReaderMutexLock lock(&table_mutex_);
    for (const std::string& id : job_ids) {
      auto it = jobs_.find(id);
      if (it == jobs_.end()) continue;
      (*it)->fence_step.store(LowestFence(id));
      lifted.push_back(*it);
    }
  }
  for (const auto& job : lifted) {
    Notify(JobEvent{JobEvent::Type::kUnchanged, job->record.job_id, job, 0});
  }
}

void JobRegistry::SetLeaseValid(bool valid) {
  if (lease_valid_.exchange(valid) == valid || !valid) return;
  // Reads that waited for the lease plan again.
  absl::MutexLock write_lock(&write_mutex_);
  std::vector<std::shared_ptr<const Job>> jobs;
  {
    absl::ReaderMutexLock lock(&table_mutex_);
    for (const auto& job : jobs_) jobs.push_back(job);
  }
  for (const auto& job : jobs) {
    Notify(JobEvent{JobEvent::Type::kUnchanged, job->record.job_id, job, 0});
  }
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::CreateShared(
    absl::string_view job_id, core::JobSpec spec, std::shared_ptr<const core::JobPlan> plan,
    absl::string_view request_id) {
  absl::MutexLock write_lock(&write_mutex_);
  if (size() >= max_jobs_ && !Get(job_id).ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("the server holds its maximum of ", max_jobs_,
                                                     " jobs; delete some or raise --max_jobs"));
  }
  core::JobRecord record;
  record.job_id = std::string(job_id);
  record.spec = std::move(spec);
  record.version = 1;
  record.create_time = record.update_time = clock_->Now();
  record.create_request_id = std::string(request_id);
  record.etag = EtagOf(record);
  std::optional<store::SharedJob> existing;
  ASSIGN_OR_RETURN(
      int64_t revision,
      shared_->Mutate(job_id, nullptr,
                      [&](const std::optional<store::SharedJob>& current,
                          const store::OthersServed&) -> absl::StatusOr<MutationDecision> {
                        if (current.has_value()) {
                          // A repeated create, or the loser of a race for the id.
                          const core::JobRecord& have = current->record;
                          const bool same_request =
                              !request_id.empty() && have.create_request_id == request_id;
                          if (!same_request && !(have.spec == record.spec)) {
                            return absl::AlreadyExistsError(
                                absl::StrCat("job_id: a different job named jobs/", job_id,
                                             " already exists (version ", have.version, ")"));
                          }
                          existing = current;
                          return MutationDecision{};
                        }
                        return MutationDecision{MutationDecision::Action::kPut, record};
                      }));
  if (revision == 0) {
    std::shared_ptr<const Job> job = ApplyLocked(job_id, std::move(existing));
    if (job == nullptr) return JobNotFound(job_id);
    return job;
  }
  std::shared_ptr<const Job> held;
  if (auto found = Get(job_id); found.ok()) held = *std::move(found);
  auto job = std::make_shared<const Job>(std::move(record), std::move(plan), -1, revision);
  Carry(job, held.get());
  spdlog::info("created job jobs/{} ({} hyperparameters, {} series)", std::string(job_id),
               job->record.spec.hyperparameters.size(), job->plan->series().size());
  return job;
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::UpdateShared(
    absl::string_view job_id, std::vector<SegmentChange> changes, absl::string_view etag,
    absl::string_view request_id, bool allow_rewrite) {
  int64_t fence_step = core::kStepLimit;
  for (const SegmentChange& change : changes) {
    fence_step = std::min(fence_step, change.segment.effective_step);
  }
  absl::MutexLock write_lock(&write_mutex_);
  std::shared_ptr<const Job> held;
  if (auto found = Get(job_id); found.ok()) held = *std::move(found);
  // Other replicas that may have served the step report exact marks first (docs/replicas.md).
  std::optional<store::Fence> fence;
  if (fence_step >= 0 && fence_step < core::kStepLimit) {
    ASSIGN_OR_RETURN(int64_t others, shared_->OthersReserved(job_id));
    if (others >= fence_step) {
      ASSIGN_OR_RETURN(fence, shared_->AddFence(job_id, fence_step, fence_timeout_));
      auto all = shared_->AwaitAcknowledgements(*fence, absl::Now() + fence_timeout_);
      if (!all.ok()) {
        (void)shared_->DropFence(*fence);
        return all.status();
      }
    }
  }
  Closing closing(held.get(), [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // write_mutex_ is held.
    Notify(JobEvent{JobEvent::Type::kUnchanged, std::string(job_id), held, 0});
  });
  UpdateDecision decision;
  std::shared_ptr<const Job> base;
  auto revision = shared_->Mutate(
      job_id, fence ? &*fence : nullptr,
      [&](const std::optional<store::SharedJob>& current,
          const store::OthersServed& others) -> absl::StatusOr<MutationDecision> {
        if (!current.has_value()) return JobNotFound(job_id);
        ASSIGN_OR_RETURN(base, FromShared(*current, held));
        if (allow_rewrite && !others.unacknowledged_live.empty()) {
          return absl::UnavailableError(absl::StrCat(
              "replica ", absl::StrJoin(others.unacknowledged_live, ", "),
              " did not report what it served of jobs/", job_id, " from step ", fence_step,
              " in time; a rewrite needs every live replica's answer; retry"));
        }
        const int64_t served = std::max(held != nullptr ? held->served_through.load() : int64_t{-1},
                                        others.served_through);
        ASSIGN_OR_RETURN(decision,
                         DecideUpdate(base, changes, etag, request_id, allow_rewrite, served));
        if (decision.retry != nullptr) return MutationDecision{};
        return MutationDecision{MutationDecision::Action::kPut, decision.record};
      });
  if (!revision.ok()) {
    if (fence.has_value()) (void)shared_->DropFence(*fence);
    return revision.status();
  }
  if (*revision == 0) {  // A retry of a request already applied.
    if (base != held) Carry(base, held.get());
    closing.Committed();
    if (held != nullptr && base != held) Notify(RemoteEvent(*held, base));
    return base;
  }
  auto job = std::make_shared<const Job>(std::move(decision.record), std::move(decision.plan), -1,
                                         *revision);
  Carry(job, held.get());
  closing.Committed();
  spdlog::info("updated job jobs/{} to version {} ({} changes, from step {})", std::string(job_id),
               job->record.version, changes.size(), decision.first_step);
  Notify(JobEvent{JobEvent::Type::kUpdated, std::string(job_id), job, decision.first_step});
  return job;
}

absl::StatusOr<ReportResult> JobRegistry::ReportShared(absl::string_view job_id, int64_t step,
                                                       const std::map<std::string, double>& metrics,
                                                       std::optional<int64_t> next_step) {
  absl::MutexLock write_lock(&write_mutex_);
  std::shared_ptr<const Job> held;
  if (auto found = Get(job_id); found.ok()) held = *std::move(found);
  Closing closing(held.get(), [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // write_mutex_ is held.
    Notify(JobEvent{JobEvent::Type::kUnchanged, std::string(job_id), held, 0});
  });
  ReportDecision decision;
  std::shared_ptr<const Job> base;
  ASSIGN_OR_RETURN(
      int64_t revision,
      shared_->Mutate(job_id, nullptr,
                      [&](const std::optional<store::SharedJob>& current,
                          const store::OthersServed&) -> absl::StatusOr<MutationDecision> {
                        if (!current.has_value()) return JobNotFound(job_id);
                        ASSIGN_OR_RETURN(base, FromShared(*current, held));
                        ASSIGN_OR_RETURN(decision, DecideReport(*base, step, metrics, next_step));
                        if (decision.duplicate) return MutationDecision{};
                        return MutationDecision{MutationDecision::Action::kPut, decision.record};
                      }));
  ReportResult result;
  if (revision == 0) {  // Recorded already, through this replica or another.
    if (base != held) Carry(base, held.get());
    closing.Committed();
    if (held != nullptr && base != held) Notify(RemoteEvent(*held, base));
    result.job = base;
    result.duplicate = true;
    return result;
  }
  // The reductions this report made, against the job as the database held it before.
  result.reduction_steps = std::move(decision.reduction_steps);
  auto job = std::make_shared<const Job>(std::move(decision.record), std::move(decision.plan), -1,
                                         revision);
  Carry(job, held.get());
  closing.Committed();
  result.job = job;
  if (held != nullptr && base != held) {
    // Changes from other replicas this one had not applied yet come with this one's event.
    Notify(RemoteEvent(*held, base));
  }
  if (result.reduction_steps.empty()) {
    Notify(JobEvent{JobEvent::Type::kMetricsReported, std::string(job_id), job, step + 1});
  } else {
    spdlog::info("job jobs/{}: plateau reduction from step {}", std::string(job_id),
                 result.reduction_steps.front());
    Notify(JobEvent{JobEvent::Type::kPlateauReduced, std::string(job_id), job,
                    result.reduction_steps.front()});
  }
  return result;
}

absl::Status JobRegistry::DeleteShared(absl::string_view job_id) {
  absl::MutexLock write_lock(&write_mutex_);
  ASSIGN_OR_RETURN(
      int64_t revision,
      shared_->Mutate(job_id, nullptr,
                      [&](const std::optional<store::SharedJob>& current,
                          const store::OthersServed&) -> absl::StatusOr<MutationDecision> {
                        if (!current.has_value()) return JobNotFound(job_id);
                        return MutationDecision{MutationDecision::Action::kDelete, {}};
                      }));
  (void)revision;
  if (Get(job_id).ok()) {
    ApplyLocked(job_id, std::nullopt);
  }
  spdlog::info("deleted job jobs/{}", std::string(job_id));
  return absl::OkStatus();
}

absl::Status JobRegistry::FlushShared() {
  struct Flushed {
    std::shared_ptr<const Job> job;
    int64_t served;
    bool waited;
  };
  std::vector<store::ReplicaMark> marks;
  std::vector<Flushed> flushed;
  {
    absl::ReaderMutexLock lock(&table_mutex_);
    for (const auto& job : jobs_) {
      const int64_t served = job->served_through.load();
      const int64_t old = job->reserved_through.load();
      // A reservation left behind its mark (capped by a fence, or refused while behind) is asked
      // for again.
      if (served <= job->flushed_through.load() && served <= old) continue;
      const int64_t reserved =
          std::max(old, std::min(served + reserve_steps_, core::kStepLimit - 1));
      marks.push_back(store::ReplicaMark{job->record.job_id, served, reserved, job->revision});
      flushed.push_back(Flushed{job, served, served > old});
    }
  }
  if (marks.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<store::GrantedMark> granted, shared_->PutReplicaMarks(marks));
  bool behind = false;
  for (size_t i = 0; i < flushed.size() && i < granted.size(); ++i) {
    const Flushed& f = flushed[i];
    f.job->flushed_through.store(f.served);
    if (granted[i].behind) {
      behind = true;  // Not raised: the catch-up replaces the job, and its readers plan again.
      continue;
    }
    f.job->reserved_through.store(
        std::max(f.job->reserved_through.load(), granted[i].reserved_through));
    if (f.waited) Notify(JobEvent{JobEvent::Type::kUnchanged, f.job->record.job_id, f.job, 0});
  }
  if (behind && on_behind_) on_behind_();
  return absl::OkStatus();
}

absl::Status JobRegistry::RetireShared() {
  // From here on nothing past a served mark is served: the marks written below are final.
  lease_valid_.store(false);
  std::vector<store::ReplicaMark> marks;
  {
    absl::ReaderMutexLock lock(&table_mutex_);
    for (const auto& job : jobs_) {
      const int64_t served = job->served_through.load();
      marks.push_back(store::ReplicaMark{job->record.job_id, served, served, job->revision});
    }
  }
  RETURN_IF_ERROR(shared_->Retire(marks));
  // The job store's own clean-stop record (its session), so the next start does not take this
  // one for a crash; its per-job marks are not the guard's with replicas (replica_marks is).
  RETURN_IF_ERROR(store_->PutServedMarks({}, true));
  spdlog::info("wrote the exact served steps of {} jobs; this replica's lease ends", marks.size());
  return absl::OkStatus();
}

}  // namespace hpsched::jobs
