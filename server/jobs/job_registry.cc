#include "jobs/job_registry.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <variant>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/history.h"
#include "core/job_id.h"
#include "core/status_macros.h"
#include "jobs/closing.h"
#include "spdlog/spdlog.h"

namespace hpsched::jobs {
namespace {

std::string MakeEtag(const core::JobRecord& record) {
  const size_t hash =
      absl::HashOf(record.job_id, record.version, absl::ToUnixNanos(record.create_time));
  return absl::StrFormat("%d-%016x", record.version, hash);
}

// The tracks of the job's declared metrics, from its reports.
core::MetricLog MetricLogOf(const core::JobRecord& record) {
  core::MetricLog log;
  for (const core::MetricSpec& metric : record.spec.metrics) {
    auto reports = record.metric_reports.find(metric.name);
    log[metric.name] = core::BuildTrack(
        metric, reports == record.metric_reports.end() ? core::MetricHistory() : reports->second);
  }
  return log;
}

// `budgets` is kAccepted where the spec is one the server already accepted (see JobPlan::Compile).
absl::StatusOr<std::shared_ptr<const core::JobPlan>> CompileRecord(
    const core::JobRecord& record, absl::string_view path,
    core::JobPlan::Budgets budgets = core::JobPlan::Budgets::kEnforce) {
  const core::MetricLog log = MetricLogOf(record);
  return core::JobPlan::Compile(record.spec, path, &log, budgets);
}

// Hashes a job's spec for SharedPlan: every field (equal specs hash equal); a collision only costs
// a comparison, as SharedPlan compares the specs themselves.
template <typename H>
H HashSchedule(H state, const core::ScheduleSpec& schedule) {
  state =
      H::combine(std::move(state), schedule.kind, schedule.params.size(), schedule.children.size());
  for (const auto& [name, value] : schedule.params) {
    state = H::combine(std::move(state), name, value.index());
    state = std::visit([&](const auto& v) { return H::combine(std::move(state), v); }, value);
  }
  for (const core::ScheduleSpec& child : schedule.children) {
    state = HashSchedule(std::move(state), child);
  }
  return state;
}

struct SpecKey {
  const core::JobSpec& spec;

  template <typename H>
  friend H AbslHashValue(H state, const SpecKey& key) {
    for (const core::HyperparameterSpec& hp : key.spec.hyperparameters) {
      state = H::combine(std::move(state), hp.name, hp.base_values, hp.segments.size());
      state = HashSchedule(std::move(state), hp.schedule);
      for (const core::SegmentSpec& segment : hp.segments) {
        state = H::combine(std::move(state), segment.effective_step, segment.change, segment.scale,
                           segment.pin, segment.global_time, segment.anchor, segment.version,
                           segment.create_time_nanos);
        state = HashSchedule(std::move(state), segment.schedule);
      }
    }
    state = H::combine(std::move(state), key.spec.labels.size(), key.spec.metrics.size());
    return state;
  }
};

absl::Status CheckRequestId(absl::string_view request_id) {
  if (request_id.size() > kMaxRequestIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("request_id: must be at most ",
                                                   kMaxRequestIdLength, " characters, got ",
                                                   request_id.size()));
  }
  return absl::OkStatus();
}

// Rewrites the field path of an error in segment `k` of hyperparameter `h` of the job
// ("job.hyperparameters[h].segments[k]...") as the request's ("updates[i].segment...").
absl::Status RenameSegmentError(const absl::Status& status, size_t h, size_t k, size_t i) {
  const std::string from = absl::StrCat("job.hyperparameters[", h, "].segments[", k, "]");
  if (!absl::StartsWith(status.message(), from)) return status;
  return absl::Status(status.code(), absl::StrCat("updates[", i, "].segment",
                                                  status.message().substr(from.size())));
}

}  // namespace

std::string JobRegistry::EtagOf(const core::JobRecord& record) { return MakeEtag(record); }

absl::StatusOr<std::shared_ptr<const core::JobPlan>> JobRegistry::CompileAccepted(
    const core::JobRecord& record) {
  return CompileRecord(record, "job", core::JobPlan::Budgets::kAccepted);
}

JobRegistry::JobRegistry(store::JobStore* store, const Clock* clock, size_t max_jobs)
    : store_(store), clock_(clock), max_jobs_(max_jobs) {}

void JobRegistry::Publish(const std::string& job_id, std::shared_ptr<const Job> job) {
  // A fence outlives the job it was taken on (FenceReads): the new job starts fenced.
  absl::MutexLock fence_lock(&fence_mutex_);
  if (job != nullptr && !fences_.empty()) job->fence_step.store(LowestFence(job_id));
  absl::MutexLock lock(&table_mutex_);
  auto it = jobs_.find(job_id);
  // The entry's key is its job's id: a replaced job leaves, and its successor takes its place.
  if (it != jobs_.end()) it = jobs_.erase(it);
  if (job != nullptr) jobs_.insert(it, std::move(job));
}

std::shared_ptr<const core::JobPlan> JobRegistry::SharedPlan(const core::JobRecord& record,
                                                             PlanOffer* offer) {
  *offer = PlanOffer();
  if (!record.metric_reports.empty()) return nullptr;
  const size_t hash = absl::HashOf(SpecKey{record.spec});
  PlanDonor& donor = plan_donors_[hash & (kPlanDonors - 1)];
  *offer = PlanOffer{&donor, hash};
  if (donor.hash != hash) return nullptr;
  const std::shared_ptr<const Job> job = donor.job.lock();
  if (job == nullptr || !job->record.metric_reports.empty() || job->record.spec != record.spec) {
    return nullptr;
  }
  *offer = PlanOffer();  // Its donor stays.
  return job->plan;
}

absl::Status JobRegistry::Load() {
  absl::MutexLock write_lock(&write_mutex_);
  Table jobs;
  // Compiles `record` (or gives it the plan of an equal spec) and adds its job to `jobs`.
  auto add = [&](core::JobRecord record, int64_t revision)
                 ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {  // write_mutex_ is held.
    PlanOffer offer;
    std::shared_ptr<const core::JobPlan> plan = SharedPlan(record, &offer);
    if (plan == nullptr) {
      auto compiled = CompileRecord(record, "job", core::JobPlan::Budgets::kAccepted);
      if (!compiled.ok()) {
        return absl::InternalError(absl::StrCat(
            "stored job ", record.job_id, " does not compile: ", compiled.status().message()));
      }
      plan = *std::move(compiled);
    }
    const int64_t served = record.served_through;
    auto job = std::make_shared<const Job>(std::move(record), std::move(plan), served, revision);
    OfferPlan(job, offer);
    jobs.insert(jobs.end(), std::move(job));
    return absl::OkStatus();
  };
  if (shared_ != nullptr) {
    ASSIGN_OR_RETURN(store::SharedJobStore::Snapshot snapshot, shared_->LoadAllShared());
    for (store::SharedJob& job : snapshot.jobs) {
      RETURN_IF_ERROR(add(std::move(job.record), job.revision));
    }
    loaded_seq_ = snapshot.seq;
  } else {
    // Row by row: each record becomes its job as it is read, so the start never holds every
    // record twice (issue 11: 10^6 jobs).
    RETURN_IF_ERROR(
        store_->LoadEach([&](core::JobRecord record) { return add(std::move(record), 0); }));
  }
  absl::MutexLock lock(&table_mutex_);
  jobs_ = std::move(jobs);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::Create(absl::string_view job_id,
                                                               core::JobSpec spec,
                                                               absl::string_view request_id) {
  if (!core::IsValidJobId(job_id)) {
    return absl::InvalidArgumentError(
        absl::StrCat("job_id: must match [a-z0-9][a-z0-9._-]{0,62}, got \"",
                     absl::CHexEscape(job_id.substr(0, 80)), "\""));
  }
  RETURN_IF_ERROR(CheckRequestId(request_id));
  // Output-only parts of a spec never come from a client.
  for (core::HyperparameterSpec& hp : spec.hyperparameters) hp.segments.clear();
  // Compile outside the lock: it is the expensive part and needs no shared state.
  ASSIGN_OR_RETURN(std::shared_ptr<const core::JobPlan> plan, core::JobPlan::Compile(spec, "job"));
  if (shared_ != nullptr) return CreateShared(job_id, std::move(spec), std::move(plan), request_id);

  absl::MutexLock write_lock(&write_mutex_);
  if (auto existing_job = Get(job_id); existing_job.ok()) {
    const core::JobRecord& existing = (*existing_job)->record;
    const bool same_request = !request_id.empty() && existing.create_request_id == request_id;
    if (same_request || existing.spec == spec) return *existing_job;
    return absl::AlreadyExistsError(absl::StrCat("job_id: a different job named jobs/", job_id,
                                                 " already exists (version ", existing.version,
                                                 ")"));
  }
  if (size() >= max_jobs_) {
    return absl::ResourceExhaustedError(absl::StrCat("the server holds its maximum of ", max_jobs_,
                                                     " jobs; delete some or raise --max_jobs"));
  }
  core::JobRecord record;
  record.job_id = std::string(job_id);
  record.spec = std::move(spec);
  record.version = 1;
  record.create_time = record.update_time = clock_->Now();
  record.create_request_id = std::string(request_id);
  record.etag = MakeEtag(record);
  RETURN_IF_ERROR(store_->Put(record));
  // Validated and compiled above; an equal spec's plan is the same plan, held once.
  PlanOffer offer;
  if (auto shared = SharedPlan(record, &offer); shared != nullptr) plan = std::move(shared);
  auto job = std::make_shared<const Job>(std::move(record), std::move(plan));
  OfferPlan(job, offer);
  Publish(std::string(job_id), job);
  spdlog::info("created job jobs/{} ({} hyperparameters, {} series)", std::string(job_id),
               job->record.spec.hyperparameters.size(), job->plan->series().size());
  return job;
}

absl::Status JobRegistry::JobNotFound(absl::string_view job_id) {
  return absl::NotFoundError(
      absl::StrCat("job jobs/", absl::CHexEscape(job_id.substr(0, 80)), " not found"));
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::Get(absl::string_view job_id) const {
  absl::ReaderMutexLock lock(&table_mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return JobNotFound(job_id);
  return *it;
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::GetSubscribed(
    absl::string_view job_id,
    absl::FunctionRef<void(const std::shared_ptr<const Job>&)> subscribe) const {
  // A change publishes its job under table_mutex_, then tells the observers: holding the lock
  // here puts the subscription either before the publication (the observer is told the change)
  // or after it (the job holds it, and the observer may be told it too).
  absl::ReaderMutexLock lock(&table_mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return JobNotFound(job_id);
  subscribe(*it);
  return *it;
}

JobPage JobRegistry::List(size_t page_size, absl::string_view after) const {
  JobPage page;
  absl::ReaderMutexLock lock(&table_mutex_);
  auto it = after.empty() ? jobs_.begin() : jobs_.upper_bound(after);
  for (; it != jobs_.end() && page.jobs.size() < page_size; ++it) page.jobs.push_back(*it);
  if (it != jobs_.end() && !page.jobs.empty()) page.next_after = page.jobs.back()->record.job_id;
  return page;
}

absl::Status JobRegistry::Delete(absl::string_view job_id) {
  if (shared_ != nullptr) return DeleteShared(job_id);
  absl::MutexLock write_lock(&write_mutex_);
  RETURN_IF_ERROR(Get(job_id).status());
  RETURN_IF_ERROR(store_->Delete(job_id));
  Publish(std::string(job_id), nullptr);
  Notify(JobEvent{JobEvent::Type::kDeleted, std::string(job_id), nullptr, 0});
  spdlog::info("deleted job jobs/{}", std::string(job_id));
  return absl::OkStatus();
}

void JobRegistry::AddObserver(JobObserver* observer) {
  absl::MutexLock write_lock(&write_mutex_);
  observers_.push_back(observer);
}

void JobRegistry::Notify(const JobEvent& event) {
  for (JobObserver* observer : observers_) observer->OnJobEvent(event);
}

bool JobRegistry::MarkServed(const Job& job, int64_t last_step) const {
  int64_t seen = job.served_through.load();
  // Without a lease a replica serves only what it served before (docs/replicas.md, leases).
  if (seen < last_step && !lease_valid_.load()) return false;
  while (seen < last_step && !job.served_through.compare_exchange_weak(seen, last_step)) {
  }
  if (job.closing.load()) return false;
  // Another replica's update is pending from this step on (R3): the mark above is in the
  // acknowledgement, or this read waits for the fence to go.
  if (last_step >= job.fence_step.load()) return false;
  // The mark is raised before the flusher is woken, so the flush it runs sees it.
  if (reserving_.load() && last_step > job.reserved_through.load()) {
    if (!marks_persisted_.load()) flush_now_->Trigger();  // After shutdown's write: no flusher.
    return false;
  }
  return true;
}

void JobRegistry::StartServedMarkFlusher(Executor* executor, absl::Duration interval,
                                         int64_t reserve_steps) {
  flush_executor_ = executor;
  flush_interval_ = interval;
  reserve_steps_ = std::max<int64_t>(0, reserve_steps);
  flush_now_ = std::make_unique<CoalescedTask>(executor, [this] { FlushAndLog(); });
  reserving_.store(true);
  executor->At(clock_->Now() + interval, [this] { FlushTick(); });
}

void JobRegistry::FlushTick() {
  FlushAndLog();
  if (!marks_persisted_.load()) {
    flush_executor_->At(clock_->Now() + flush_interval_, [this] { FlushTick(); });
  }
}

void JobRegistry::FlushAndLog() {
  const absl::Status status = FlushServedMarks();
  // Said once per failing spell, not once per tick; reads past their reservation wait meanwhile.
  if (!status.ok() && !flush_failing_) {
    spdlog::error(
        "cannot write served marks ({}); reads past a job's reservation wait until it "
        "can",
        std::string(status.message()));
  } else if (status.ok() && flush_failing_) {
    spdlog::info("served marks written again");
  }
  flush_failing_ = !status.ok();
}

absl::Status JobRegistry::FlushServedMarks() {
  absl::MutexLock write_lock(&write_mutex_);
  if (marks_persisted_.load()) return absl::OkStatus();
  if (shared_ != nullptr) return FlushShared();
  struct Flushed {
    std::shared_ptr<const Job> job;
    int64_t served;
    int64_t reserved;
    // A reader waits for this reservation.
    bool waited;
  };
  std::vector<store::ServedMark> marks;
  std::vector<Flushed> flushed;
  {
    absl::ReaderMutexLock lock(&table_mutex_);
    for (const std::shared_ptr<const Job>& job : jobs_) {
      const std::string& id = job->record.job_id;
      const int64_t served = job->served_through.load();
      if (served <= job->flushed_through.load()) continue;
      const int64_t old = job->reserved_through.load();
      const int64_t reserved =
          std::max(old, std::min(served + reserve_steps_, core::kStepLimit - 1));
      marks.push_back(store::ServedMark{id, served, reserved});
      flushed.push_back(Flushed{job, served, reserved, served > old});
    }
  }
  if (marks.empty()) return absl::OkStatus();
  RETURN_IF_ERROR(store_->PutServedMarks(marks, false));
  // Durable now: readers may serve up to the new reservations.
  for (const Flushed& f : flushed) {
    f.job->flushed_through.store(f.served);
    f.job->reserved_through.store(f.reserved);
  }
  for (const Flushed& f : flushed) {
    if (f.waited) Notify(JobEvent{JobEvent::Type::kUnchanged, f.job->record.job_id, f.job, 0});
  }
  return absl::OkStatus();
}

absl::Status JobRegistry::PersistServedMarks() {
  absl::MutexLock write_lock(&write_mutex_);
  if (marks_persisted_.exchange(true)) return absl::OkStatus();
  if (shared_ != nullptr) return RetireShared();
  std::vector<store::ServedMark> marks;
  {
    absl::ReaderMutexLock lock(&table_mutex_);
    for (const std::shared_ptr<const Job>& job : jobs_) {
      const std::string& id = job->record.job_id;
      const int64_t served = job->served_through.load();
      if (served > job->flushed_through.load()) {
        marks.push_back(
            store::ServedMark{id, served, std::max(served, job->reserved_through.load())});
      }
    }
  }
  // Exact marks and the clean-stop mark together: the next start loads these as they are.
  RETURN_IF_ERROR(store_->PutServedMarks(marks, true));
  spdlog::info("wrote the served steps of {} jobs and the clean-stop mark", marks.size());
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::Commit(
    core::JobRecord record, std::shared_ptr<const core::JobPlan> plan, const Job& current) {
  // `current` is closed: readers that mark it from now on retry with the new job.
  record.served_through = std::max(record.served_through, current.served_through.load());
  RETURN_IF_ERROR(store_->Put(record));
  const std::string job_id = record.job_id;
  const int64_t served = record.served_through;
  auto job = std::make_shared<const Job>(std::move(record), std::move(plan), served);
  // The record just written holds `served` as a served mark: a bound after a crash too.
  job->reserved_through.store(std::max(served, current.reserved_through.load()));
  Publish(job_id, job);
  return job;
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::Update(absl::string_view job_id,
                                                               std::vector<SegmentChange> changes,
                                                               absl::string_view etag,
                                                               absl::string_view request_id,
                                                               bool allow_rewrite) {
  RETURN_IF_ERROR(CheckRequestId(request_id));
  if (changes.empty()) {
    return absl::InvalidArgumentError("updates: must have at least one update");
  }
  if (changes.size() > kMaxUpdatesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "updates: must have at most ", kMaxUpdatesPerRequest, " updates, got ", changes.size()));
  }
  if (shared_ != nullptr) {
    return UpdateShared(job_id, std::move(changes), etag, request_id, allow_rewrite);
  }
  absl::MutexLock write_lock(&write_mutex_);
  ASSIGN_OR_RETURN(std::shared_ptr<const Job> current, Get(job_id));
  Closing closing(*current, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // write_mutex_ is held.
    Notify(JobEvent{JobEvent::Type::kUnchanged, std::string(job_id), current, 0});
  });
  ASSIGN_OR_RETURN(UpdateDecision decision,
                   DecideUpdate(current, changes, etag, request_id, allow_rewrite,
                                current->served_through.load()));
  if (decision.retry != nullptr) return decision.retry;
  ASSIGN_OR_RETURN(std::shared_ptr<const Job> job,
                   Commit(std::move(decision.record), std::move(decision.plan), *current));
  closing.Committed();
  spdlog::info("updated job jobs/{} to version {} ({} changes, from step {})", std::string(job_id),
               job->record.version, changes.size(), decision.first_step);
  Notify(JobEvent{JobEvent::Type::kUpdated, std::string(job_id), job, decision.first_step});
  return job;
}

absl::StatusOr<JobRegistry::UpdateDecision> JobRegistry::DecideUpdate(
    const std::shared_ptr<const Job>& current, const std::vector<SegmentChange>& request,
    absl::string_view etag, absl::string_view request_id, bool allow_rewrite,
    int64_t served) const {
  std::vector<SegmentChange> changes = request;
  UpdateDecision decision;
  const core::JobRecord& old = current->record;
  if (!request_id.empty()) {
    for (const auto& [seen, version] : old.update_requests) {
      if (seen == request_id) {  // A retry: applied already.
        decision.retry = current;
        return decision;
      }
    }
  }
  if (!etag.empty() && etag != old.etag) {
    return absl::AbortedError(absl::StrCat("etag: the job has changed (etag \"", old.etag,
                                           "\", version ", old.version,
                                           "); read it again and retry"));
  }
  core::JobRecord record = old;
  record.version = old.version + 1;
  record.update_time = clock_->Now();
  const int64_t now_nanos = absl::ToUnixNanos(record.update_time);
  int64_t first_step = core::kStepLimit;
  // Where each change lands: (hyperparameter index, segment index) for error paths.
  std::vector<std::pair<size_t, size_t>> places;
  for (size_t i = 0; i < changes.size(); ++i) {
    SegmentChange& change = changes[i];
    const std::string path = absl::StrCat("updates[", i, "]");
    size_t h = 0;
    while (h < record.spec.hyperparameters.size() &&
           record.spec.hyperparameters[h].name != change.hyperparameter) {
      ++h;
    }
    if (h == record.spec.hyperparameters.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ".hyperparameter: the job has no hyperparameter \"",
                       absl::CHexEscape(change.hyperparameter.substr(0, 64)), "\""));
    }
    core::HyperparameterSpec& hp = record.spec.hyperparameters[h];
    RETURN_IF_ERROR(
        core::CheckSegment(change.segment, hp.base_values.size(), absl::StrCat(path, ".segment")));
    if (change.segment.effective_step <= served && !allow_rewrite) {
      return absl::FailedPreconditionError(
          absl::StrCat(path, ".segment.effective_step: ", change.segment.effective_step,
                       " would change values already served (up to step ", served,
                       "); choose a later step, or set allow_rewrite"));
    }
    if (hp.segments.size() >= core::kMaxSegments) {
      return absl::ResourceExhaustedError(absl::StrCat(path, ".hyperparameter: \"", hp.name,
                                                       "\" already has the maximum of ",
                                                       core::kMaxSegments, " segments"));
    }
    change.segment.version = record.version;
    change.segment.create_time_nanos = now_nanos;
    first_step = std::min(first_step, change.segment.effective_step);
    places.emplace_back(h, hp.segments.size());
    hp.segments.push_back(std::move(change.segment));
  }
  // The reports are those of the current plan: its tracks and plateau states carry over.
  auto plan = core::JobPlan::Compile(record.spec, "job", &current->plan->metrics(),
                                     core::JobPlan::Budgets::kEnforce, current->plan.get());
  if (!plan.ok()) {
    absl::Status status = plan.status();
    for (size_t i = 0; i < places.size(); ++i) {
      status = RenameSegmentError(status, places[i].first, places[i].second, i);
    }
    return status;
  }
  record.etag = MakeEtag(record);
  if (!request_id.empty()) {
    record.update_requests.emplace_back(std::string(request_id), record.version);
    if (record.update_requests.size() > core::kMaxRememberedRequests) {
      record.update_requests.erase(record.update_requests.begin());
    }
  }
  decision.record = std::move(record);
  decision.plan = *std::move(plan);
  decision.first_step = first_step;
  return decision;
}

absl::StatusOr<ReportResult> JobRegistry::ReportMetrics(
    absl::string_view job_id, int64_t step, const std::map<std::string, double>& metrics,
    std::optional<int64_t> next_step) {
  if (step < 0 || step >= core::kStepLimit) {
    return absl::InvalidArgumentError(absl::StrCat("step: must be >= 0 and < 2^53, got ", step));
  }
  if (metrics.empty()) return absl::InvalidArgumentError("metrics: must have at least one metric");
  if (metrics.size() > core::kMaxMetrics) {
    return absl::InvalidArgumentError(absl::StrCat("metrics: must have at most ", core::kMaxMetrics,
                                                   " metrics, got ", metrics.size()));
  }
  for (const auto& [name, value] : metrics) {
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics[\"", absl::CHexEscape(name.substr(0, 64)), "\"]: must be finite, got ", value));
    }
  }
  if (next_step.has_value() && *next_step != core::kNoNextReport &&
      (*next_step <= step || *next_step >= core::kStepLimit)) {
    return absl::InvalidArgumentError(absl::StrCat("next_step: must be greater than step (", step,
                                                   ") and < 2^53, or -1, got ", *next_step));
  }
  if (shared_ != nullptr) return ReportShared(job_id, step, metrics, next_step);
  absl::MutexLock write_lock(&write_mutex_);
  ASSIGN_OR_RETURN(std::shared_ptr<const Job> current, Get(job_id));
  Closing closing(*current, [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {  // write_mutex_ is held.
    Notify(JobEvent{JobEvent::Type::kUnchanged, std::string(job_id), current, 0});
  });
  ASSIGN_OR_RETURN(ReportDecision decision, DecideReport(*current, step, metrics, next_step));
  ReportResult result;
  if (decision.duplicate) {
    result.job = current;
    result.duplicate = true;
    return result;
  }
  result.reduction_steps = std::move(decision.reduction_steps);
  ASSIGN_OR_RETURN(result.job,
                   Commit(std::move(decision.record), std::move(decision.plan), *current));
  closing.Committed();
  if (result.reduction_steps.empty()) {
    Notify(JobEvent{JobEvent::Type::kMetricsReported, std::string(job_id), result.job, step + 1});
  } else {
    spdlog::info("job jobs/{}: plateau reduction from step {}", std::string(job_id),
                 result.reduction_steps.front());
    Notify(JobEvent{JobEvent::Type::kPlateauReduced, std::string(job_id), result.job,
                    result.reduction_steps.front()});
  }
  return result;
}

absl::StatusOr<JobRegistry::ReportDecision> JobRegistry::DecideReport(
    const Job& current, int64_t step, const std::map<std::string, double>& metrics,
    std::optional<int64_t> next_step) const {
  ReportDecision result;
  // Copies the record in O(spec): its histories share their storage (core::MetricHistory).
  core::JobRecord record = current.record;
  // The tracks the current plan was compiled with, extended below by what this report completes.
  core::MetricLog log = current.plan->metrics();
  // Every report is checked before any is added: a request refused halfway must not leave an
  // entry in a history's shared storage (the next report would then copy the history).
  struct Adding {
    const core::MetricSpec* spec;
    core::MetricReport report;
  };
  std::vector<std::pair<std::string, Adding>> adding;
  for (const auto& [name, value] : metrics) {
    const std::string field =
        absl::StrCat("metrics[\"", absl::CHexEscape(name.substr(0, 64)), "\"]");
    auto spec = std::find_if(record.spec.metrics.begin(), record.spec.metrics.end(),
                             [&](const core::MetricSpec& m) { return m.name == name; });
    if (spec == record.spec.metrics.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": the job declares no such metric (job.metrics)"));
    }
    const bool announced = spec->every_steps == 0;
    if (announced && !next_step.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("next_step: is required: metric \"", name,
                       "\" is announced (first_step); give the next report's step, or -1"));
    }
    if (!announced && next_step.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat("next_step: must be unset: metric \"", name,
                                                     "\" is reported every ", spec->every_steps,
                                                     " steps"));
    }
    auto history = record.metric_reports.find(name);
    const core::MetricHistory empty;
    const core::MetricHistory& reports =
        history == record.metric_reports.end() ? empty : history->second;
    const core::MetricReport report{value, announced ? *next_step : core::kNoNextReport};
    if (const core::MetricReport* had = reports.Find(step); had != nullptr) {
      if (*had == report) continue;  // The same report again.
      return absl::FailedPreconditionError(absl::StrCat(
          field, ": step ", step, " was already reported with value ", had->value,
          had->next_step != report.next_step ? absl::StrCat(" and next_step ", had->next_step) : "",
          "; a report cannot change"));
    }
    RETURN_IF_ERROR(core::CheckReportStep(*spec, log[name], step, "step"));
    if (reports.size() >= core::kMaxReportsPerMetric) {
      return absl::ResourceExhaustedError(absl::StrCat(field, ": the job holds the maximum of ",
                                                       core::kMaxReportsPerMetric,
                                                       " reports of this metric"));
    }
    adding.emplace_back(name, Adding{&*spec, report});
  }
  for (const auto& [name, add] : adding) {
    core::MetricHistory& reports = record.metric_reports[name];
    reports.Add(step, add.report);
    core::ExtendTrack(*add.spec, reports, &log[name]);
  }
  if (adding.empty()) {
    result.duplicate = true;
    return result;
  }
  ASSIGN_OR_RETURN(std::shared_ptr<const core::JobPlan> plan,
                   core::JobPlan::Compile(record.spec, "job", &log,
                                          core::JobPlan::Budgets::kAccepted, current.plan.get()));
  // New reductions that change a value (a reduction after its schedule stopped applying, in a
  // `sequential` or under a later segment, changes nothing), and that the current plan did not
  // have already.
  for (int64_t step : plan->new_reduction_steps()) {
    if (current.plan->HasReductionAt(step)) continue;
    for (size_t i = 0; i < plan->series().size(); ++i) {
      double old_value = 0, new_value = 0;
      current.plan->series()[i].node->Evaluate(step, std::span<double>(&old_value, 1));
      plan->series()[i].node->Evaluate(step, std::span<double>(&new_value, 1));
      if (old_value != new_value) {
        result.reduction_steps.push_back(step);
        break;
      }
    }
  }
  result.record = std::move(record);
  result.plan = std::move(plan);
  return result;
}

size_t JobRegistry::size() const {
  absl::ReaderMutexLock lock(&table_mutex_);
  return jobs_.size();
}

}  // namespace hpsched::jobs
