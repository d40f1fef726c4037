#include "jobs/job_registry.h"

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/job_id.h"
#include "core/status_macros.h"
#include "spdlog/spdlog.h"

namespace hpsched::jobs {
namespace {

std::string MakeEtag(const store::JobRecord& record) {
  const size_t hash =
      absl::HashOf(record.job_id, record.version, absl::ToUnixNanos(record.create_time));
  return absl::StrFormat("%d-%016x", record.version, hash);
}

}  // namespace

JobRegistry::JobRegistry(store::JobStore* store, const Clock* clock, size_t max_jobs)
    : store_(store), clock_(clock), max_jobs_(max_jobs) {}

void JobRegistry::Publish(const std::string& job_id, std::shared_ptr<const Job> job) {
  absl::MutexLock lock(&table_mutex_);
  if (job == nullptr) {
    jobs_.erase(job_id);
  } else {
    jobs_.insert_or_assign(job_id, std::move(job));
  }
}

absl::Status JobRegistry::Load() {
  ASSIGN_OR_RETURN(std::vector<store::JobRecord> records, store_->LoadAll());
  std::map<std::string, std::shared_ptr<const Job>, std::less<>> jobs;
  for (store::JobRecord& record : records) {
    auto plan = core::JobPlan::Compile(record.spec, "job");
    if (!plan.ok()) {
      return absl::InternalError(absl::StrCat("stored job ", record.job_id,
                                              " does not compile: ", plan.status().message()));
    }
    std::string id = record.job_id;
    jobs.emplace(std::move(id),
                 std::make_shared<const Job>(Job{std::move(record), *std::move(plan)}));
  }
  absl::MutexLock write_lock(&write_mutex_);
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
  if (request_id.size() > kMaxRequestIdLength) {
    return absl::InvalidArgumentError(absl::StrCat("request_id: must be at most ",
                                                   kMaxRequestIdLength, " characters, got ",
                                                   request_id.size()));
  }
  // Compile outside the lock: it is the expensive part and needs no shared state.
  ASSIGN_OR_RETURN(std::shared_ptr<const core::JobPlan> plan, core::JobPlan::Compile(spec, "job"));

  absl::MutexLock write_lock(&write_mutex_);
  if (auto existing_job = Get(job_id); existing_job.ok()) {
    const store::JobRecord& existing = (*existing_job)->record;
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
  store::JobRecord record;
  record.job_id = std::string(job_id);
  record.spec = std::move(spec);
  record.version = 1;
  record.create_time = record.update_time = clock_->Now();
  record.create_request_id = std::string(request_id);
  record.etag = MakeEtag(record);
  RETURN_IF_ERROR(store_->Put(record));
  auto job = std::make_shared<const Job>(Job{std::move(record), std::move(plan)});
  Publish(std::string(job_id), job);
  spdlog::info("created job jobs/{} ({} hyperparameters, {} series)", std::string(job_id),
               job->record.spec.hyperparameters.size(), job->plan->series().size());
  return job;
}

absl::StatusOr<std::shared_ptr<const Job>> JobRegistry::Get(absl::string_view job_id) const {
  absl::ReaderMutexLock lock(&table_mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    return absl::NotFoundError(
        absl::StrCat("job jobs/", absl::CHexEscape(job_id.substr(0, 80)), " not found"));
  }
  return it->second;
}

JobPage JobRegistry::List(size_t page_size, absl::string_view after) const {
  JobPage page;
  absl::ReaderMutexLock lock(&table_mutex_);
  auto it = after.empty() ? jobs_.begin() : jobs_.upper_bound(after);
  for (; it != jobs_.end() && page.jobs.size() < page_size; ++it) page.jobs.push_back(it->second);
  if (it != jobs_.end() && !page.jobs.empty()) page.next_after = page.jobs.back()->record.job_id;
  return page;
}

absl::Status JobRegistry::Delete(absl::string_view job_id) {
  absl::MutexLock write_lock(&write_mutex_);
  RETURN_IF_ERROR(Get(job_id).status());
  RETURN_IF_ERROR(store_->Delete(job_id));
  Publish(std::string(job_id), nullptr);
  spdlog::info("deleted job jobs/{}", std::string(job_id));
  return absl::OkStatus();
}

size_t JobRegistry::size() const {
  absl::ReaderMutexLock lock(&table_mutex_);
  return jobs_.size();
}

}  // namespace hpsched::jobs
