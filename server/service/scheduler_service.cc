#include "service/scheduler_service.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "codec/proto_convert.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/status_macros.h"
#include "service/status_convert.h"

namespace hpsched::service {
namespace {

namespace v1 = ::hpsched::v1;

// The Job resource of a job: its record, and what its plan knows (plateau reductions).
void ToProto(const jobs::Job& job, v1::Job* proto) {
  codec::JobToProto(job.record, proto);
  codec::PlanToProto(*job.plan, proto);
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// The values a batch of GetValues computes: the queries point into the responses' series, and
// `jobs` keeps the plans they evaluate alive until the batch has run.
struct ValuesBatch {
  std::vector<core::EvalQuery> queries;
  std::vector<std::shared_ptr<const jobs::Job>> jobs;
  int64_t total_values = 0;
};

// Validates one GetValues request (fields named under `prefix`) and adds its queries to `batch`,
// sizing the series of `response` to receive the values.
absl::Status PlanGetValues(const jobs::JobRegistry& registry, const v1::GetValuesRequest& request,
                           absl::string_view prefix, v1::GetValuesResponse* response,
                           ValuesBatch* batch) {
  ASSIGN_OR_RETURN(std::string job_id,
                   codec::JobIdFromName(request.job(), absl::StrCat(prefix, "job")));
  const int64_t count = request.count() == 0 ? 1 : request.count();
  RETURN_IF_ERROR(core::CheckStepRange(request.step(), count, absl::StrCat(prefix, "step"),
                                       absl::StrCat(prefix, "count")));
  ASSIGN_OR_RETURN(std::shared_ptr<const jobs::Job> job, registry.Get(job_id));
  const std::vector<std::string> names(request.hyperparameters().begin(),
                                       request.hyperparameters().end());
  ASSIGN_OR_RETURN(std::vector<size_t> selected,
                   job->plan->Select(names, absl::StrCat(prefix, "hyperparameters")));
  batch->total_values += count * static_cast<int64_t>(selected.size());
  if (batch->total_values > core::kMaxValuesPerBatch) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, "count: the response would hold more than ", core::kMaxValuesPerBatch,
                     " values (count x series); ask for fewer steps or hyperparameters"));
  }
  response->set_job(codec::JobName(job_id));
  response->set_version(job->record.version);
  response->set_start_step(request.step());
  const int64_t provisional_from = job->plan->ProvisionalFrom(selected);
  if (provisional_from < request.step() + count) {
    response->set_provisional_from(std::max(provisional_from, request.step()));
  }
  for (size_t index : selected) {
    const core::SeriesPlan& plan = job->plan->series()[index];
    v1::Series* series = response->add_series();
    series->set_hyperparameter(plan.hyperparameter);
    series->set_group(plan.group);
    series->mutable_values()->Resize(static_cast<int>(count), 0.0);
    batch->queries.push_back(core::EvalQuery{
        plan.node.get(), request.step(),
        std::span<double>(series->mutable_values()->mutable_data(), static_cast<size_t>(count))});
  }
  batch->jobs.push_back(std::move(job));
  return absl::OkStatus();
}

// Whether a request's provisional values mean waiting, given its policy and whether the deadline
// has come.
bool MustWait(const v1::GetValuesRequest& request, const v1::GetValuesResponse& response,
              bool at_deadline) {
  if (!response.has_provisional_from()) return false;
  if (request.pending_policy() == v1::PENDING_POLICY_PROVISIONAL_NOW) return false;
  if (request.pending_policy() == v1::PENDING_POLICY_WAIT_THEN_PROVISIONAL) return !at_deadline;
  return true;
}

// Sets the `lr` convenience field from the evaluated series.
void SetLr(v1::GetValuesResponse* response) {
  for (const v1::Series& series : response->series()) {
    if (series.hyperparameter() == "lr" && series.group() == 0) {
      response->set_lr(series.values(0));
      return;
    }
  }
}

constexpr absl::string_view kPageTokenPrefix = "after:";
// How often GetValues plans again when it meets a job being replaced.
constexpr int kMaxClosedRetries = 20000;

absl::StatusOr<std::string> DecodePageToken(absl::string_view token) {
  std::string decoded;
  if (!absl::WebSafeBase64Unescape(token, &decoded) ||
      !absl::StartsWith(decoded, kPageTokenPrefix)) {
    return absl::InvalidArgumentError(
        "page_token: is not a token from a previous ListJobs response");
  }
  return decoded.substr(kPageTokenPrefix.size());
}

}  // namespace

absl::Status SchedulerService::Authorize(const grpc::CallbackServerContext* context, Role role,
                                         absl::string_view method) const {
  if (auth_ == nullptr) return absl::OkStatus();
  return auth_->Check(*context, role, method);
}

void SchedulerService::CountJobs() {
  if (metrics_ != nullptr) metrics_->JobCount(registry_->size());
}

void SchedulerService::CountValues(int64_t values) {
  if (metrics_ != nullptr) metrics_->ValuesServed(values);
}

grpc::ServerUnaryReactor* SchedulerService::CreateJob(grpc::CallbackServerContext* context,
                                                      const v1::CreateJobRequest* request,
                                                      v1::Job* response) {
  if (absl::Status auth = Authorize(context, Role::kAdmin, "CreateJob"); !auth.ok())
    return Finish(context, auth);
  if (!request->has_job()) return Finish(context, absl::InvalidArgumentError("job: is required"));
  auto job = registry_->Create(request->job_id(), codec::JobSpecFromProto(request->job()),
                               request->request_id());
  if (job.ok()) ToProto(**job, response);
  CountJobs();
  return Finish(context, job.status());
}

grpc::ServerUnaryReactor* SchedulerService::GetJob(grpc::CallbackServerContext* context,
                                                   const v1::GetJobRequest* request,
                                                   v1::Job* response) {
  if (absl::Status auth = Authorize(context, Role::kReader, "GetJob"); !auth.ok())
    return Finish(context, auth);
  auto id = codec::JobIdFromName(request->name(), "name");
  if (!id.ok()) return Finish(context, id.status());
  auto job = registry_->Get(*id);
  if (job.ok()) ToProto(**job, response);
  return Finish(context, job.status());
}

grpc::ServerUnaryReactor* SchedulerService::ListJobs(grpc::CallbackServerContext* context,
                                                     const v1::ListJobsRequest* request,
                                                     v1::ListJobsResponse* response) {
  if (absl::Status auth = Authorize(context, Role::kReader, "ListJobs"); !auth.ok())
    return Finish(context, auth);
  if (request->page_size() < 0) {
    return Finish(context, absl::InvalidArgumentError(absl::StrCat("page_size: must be >= 0, got ",
                                                                   request->page_size())));
  }
  int page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  page_size = std::min(page_size, kMaxPageSize);
  std::string after;
  if (!request->page_token().empty()) {
    auto decoded = DecodePageToken(request->page_token());
    if (!decoded.ok()) return Finish(context, decoded.status());
    after = *std::move(decoded);
  }
  jobs::JobPage page = registry_->List(static_cast<size_t>(page_size), after);
  for (const auto& job : page.jobs) ToProto(*job, response->add_jobs());
  if (!page.next_after.empty()) {
    response->set_next_page_token(
        absl::WebSafeBase64Escape(absl::StrCat(kPageTokenPrefix, page.next_after)));
  }
  return Finish(context, absl::OkStatus());
}

grpc::ServerUnaryReactor* SchedulerService::DeleteJob(grpc::CallbackServerContext* context,
                                                      const v1::DeleteJobRequest* request,
                                                      v1::DeleteJobResponse* response) {
  if (absl::Status auth = Authorize(context, Role::kAdmin, "DeleteJob"); !auth.ok())
    return Finish(context, auth);
  auto id = codec::JobIdFromName(request->name(), "name");
  if (!id.ok()) return Finish(context, id.status());
  const absl::Status status = registry_->Delete(*id);
  CountJobs();
  return Finish(context, status);
}

// Computes the values of `requests` into `responses` (all or nothing). Returns nullopt when some
// values are provisional and their request's policy says to wait (unless `at_deadline`); at the
// deadline, a request that does not accept provisional values answers DEADLINE_EXCEEDED.
std::optional<absl::Status> SchedulerService::ComputeValues(
    std::span<const v1::GetValuesRequest* const> requests, bool batch,
    std::span<v1::GetValuesResponse* const> responses, bool at_deadline) {
  // A mutation closes a job while it replaces it (see JobRegistry::MarkServed): plan again with
  // the new job. Mutations hold a job closed for one store write, so this is short.
  for (int attempt = 0; attempt < kMaxClosedRetries; ++attempt) {
    bool closing = false;
    std::optional<absl::Status> result =
        TryComputeValues(requests, batch, responses, at_deadline, &closing);
    if (!closing) return result;
    absl::SleepFor(absl::Microseconds(100));
  }
  return absl::UnavailableError("the job is being changed; retry");
}

std::optional<absl::Status> SchedulerService::TryComputeValues(
    std::span<const v1::GetValuesRequest* const> requests, bool batch,
    std::span<v1::GetValuesResponse* const> responses, bool at_deadline, bool* closing) {
  ValuesBatch values;
  for (size_t i = 0; i < requests.size(); ++i) {
    responses[i]->Clear();
    const std::string prefix = batch ? absl::StrCat("requests[", i, "].") : "";
    absl::Status status = PlanGetValues(*registry_, *requests[i], prefix, responses[i], &values);
    if (!status.ok()) return status;
    if (MustWait(*requests[i], *responses[i], at_deadline)) {
      if (!at_deadline) return std::nullopt;
      return absl::DeadlineExceededError(absl::StrCat(
          prefix, "step: the values from step ", responses[i]->provisional_from(),
          " on wait for metric reports that have not arrived (set pending_policy to accept "
          "provisional values)"));
    }
  }
  // Mark before evaluating: a job a mutation is replacing must not be served from.
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t count = requests[i]->count() == 0 ? 1 : requests[i]->count();
    if (!jobs::JobRegistry::MarkServed(*values.jobs[i], requests[i]->step() + count - 1)) {
      *closing = true;
      return std::nullopt;
    }
  }
  core::EvaluateBatch(values.queries);
  for (size_t i = 0; i < requests.size(); ++i) SetLr(responses[i]);
  CountValues(values.total_values);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* SchedulerService::ServeValues(
    grpc::CallbackServerContext* context, std::vector<const v1::GetValuesRequest*> requests,
    bool batch, std::vector<v1::GetValuesResponse*> responses) {
  std::optional<absl::Status> done = ComputeValues(requests, batch, responses, false);
  if (done.has_value()) return Finish(context, *done);
  // Some values wait for metric reports: park the call until they arrive or the deadline is near
  // (answering a little before it, so the answer reaches the caller in time).
  const absl::Time now = absl::Now();
  absl::Time deadline = absl::FromChrono(context->deadline());
  if (deadline == absl::InfiniteFuture() || deadline - now > kMaxWait) deadline = now + kMaxWait;
  deadline -= std::min(absl::Milliseconds(100), (deadline - now) / 10);
  std::set<std::string> job_ids;
  for (const v1::GetValuesRequest* request : requests) {
    auto id = codec::JobIdFromName(request->job(), "job");
    if (id.ok()) job_ids.insert(*id);
  }
  return pending_.Park(
      std::move(job_ids), deadline,
      [this, requests = std::move(requests), batch, responses = std::move(responses)](
          bool at_deadline) { return ComputeValues(requests, batch, responses, at_deadline); });
}

grpc::ServerUnaryReactor* SchedulerService::GetValues(grpc::CallbackServerContext* context,
                                                      const v1::GetValuesRequest* request,
                                                      v1::GetValuesResponse* response) {
  if (absl::Status auth = Authorize(context, Role::kReader, "GetValues"); !auth.ok())
    return Finish(context, auth);
  return ServeValues(context, {request}, false, {response});
}

grpc::ServerUnaryReactor* SchedulerService::BatchGetValues(grpc::CallbackServerContext* context,
                                                           const v1::BatchGetValuesRequest* request,
                                                           v1::BatchGetValuesResponse* response) {
  if (absl::Status auth = Authorize(context, Role::kReader, "BatchGetValues"); !auth.ok())
    return Finish(context, auth);
  if (request->requests_size() > kMaxBatchRequests) {
    return Finish(context, absl::InvalidArgumentError(
                               absl::StrCat("requests: must have at most ", kMaxBatchRequests,
                                            " requests, got ", request->requests_size())));
  }
  std::vector<const v1::GetValuesRequest*> requests;
  std::vector<v1::GetValuesResponse*> responses;
  for (const auto& r : request->requests()) {
    requests.push_back(&r);
    responses.push_back(response->add_responses());
  }
  return ServeValues(context, std::move(requests), true, std::move(responses));
}

grpc::ServerUnaryReactor* SchedulerService::UpdateJob(grpc::CallbackServerContext* context,
                                                      const v1::UpdateJobRequest* request,
                                                      v1::Job* response) {
  if (absl::Status auth = Authorize(context, Role::kAdmin, "UpdateJob"); !auth.ok())
    return Finish(context, auth);
  auto id = codec::JobIdFromName(request->name(), "name");
  if (!id.ok()) return Finish(context, id.status());
  std::vector<jobs::SegmentChange> changes;
  for (int i = 0; i < request->updates_size(); ++i) {
    const v1::HyperparameterUpdate& update = request->updates(i);
    if (!update.has_segment()) {
      return Finish(context, absl::InvalidArgumentError(
                                 absl::StrCat("updates[", i, "].segment: is required")));
    }
    if (update.segment().change_case() == v1::Segment::CHANGE_NOT_SET) {
      return Finish(context,
                    absl::InvalidArgumentError(absl::StrCat(
                        "updates[", i, "].segment: set exactly one of schedule, scale or pin")));
    }
    changes.push_back(
        jobs::SegmentChange{update.hyperparameter(), codec::SegmentFromProto(update.segment())});
  }
  auto job = registry_->Update(*id, std::move(changes), request->etag(), request->request_id(),
                               request->allow_rewrite());
  if (job.ok()) ToProto(**job, response);
  return Finish(context, job.status());
}

grpc::ServerUnaryReactor* SchedulerService::ReportMetrics(grpc::CallbackServerContext* context,
                                                          const v1::ReportMetricsRequest* request,
                                                          v1::ReportMetricsResponse* response) {
  if (absl::Status auth = Authorize(context, Role::kTrainer, "ReportMetrics"); !auth.ok())
    return Finish(context, auth);
  auto id = codec::JobIdFromName(request->job(), "job");
  if (!id.ok()) return Finish(context, id.status());
  const std::map<std::string, double> metrics(request->metrics().begin(), request->metrics().end());
  std::optional<int64_t> next_step;
  if (request->has_next_step()) next_step = request->next_step();
  auto result = registry_->ReportMetrics(*id, request->step(), metrics, next_step);
  if (result.ok()) {
    response->set_job(codec::JobName(*id));
    response->set_duplicate(result->duplicate);
    response->mutable_reduction_steps()->Add(result->reduction_steps.begin(),
                                             result->reduction_steps.end());
  }
  return Finish(context, result.status());
}

grpc::ServerWriteReactor<v1::WatchJobResponse>* SchedulerService::WatchJob(
    grpc::CallbackServerContext* context, const v1::WatchJobRequest* request) {
  if (absl::Status auth = Authorize(context, Role::kReader, "WatchJob"); !auth.ok())
    return WatchHub::Fail(ToGrpcStatus(auth));
  auto id = codec::JobIdFromName(request->job(), "job");
  if (!id.ok()) return WatchHub::Fail(ToGrpcStatus(id.status()));
  auto job = registry_->Get(*id);
  if (!job.ok()) return WatchHub::Fail(ToGrpcStatus(job.status()));
  return watches_.Start(*std::move(job));
}

void SchedulerService::Shutdown() {
  watches_.Close();
  pending_.Close();
}

grpc::ServerUnaryReactor* SchedulerService::Preview(grpc::CallbackServerContext* context,
                                                    const v1::PreviewRequest* request,
                                                    v1::PreviewResponse* response) {
  if (absl::Status auth = Authorize(context, Role::kReader, "Preview"); !auth.ok())
    return Finish(context, auth);
  if (!request->has_schedule()) {
    return Finish(context, absl::InvalidArgumentError("schedule: is required"));
  }
  std::vector<double> bases(request->base_values().begin(), request->base_values().end());
  if (bases.empty()) bases.push_back(1.0);
  const int64_t count = request->count() == 0 ? 1 : request->count();
  absl::Status status = core::CheckBaseValues(bases, "base_values");
  if (status.ok())
    status = core::CheckStepRange(request->start_step(), count, "start_step", "count");
  if (status.ok() && static_cast<int64_t>(bases.size()) * count > core::kMaxValuesPerBatch) {
    status = absl::InvalidArgumentError(absl::StrCat("count: the response would hold more than ",
                                                     core::kMaxValuesPerBatch, " values"));
  }
  if (!status.ok()) return Finish(context, status);
  auto nodes =
      core::CompileStandalone(codec::ScheduleFromProto(request->schedule()), bases, "schedule",
                              request->hyperparameter().empty() ? "lr" : request->hyperparameter());
  if (!nodes.ok()) return Finish(context, nodes.status());
  std::vector<core::EvalQuery> queries;
  for (size_t g = 0; g < nodes->size(); ++g) {
    v1::Series* series = response->add_series();
    series->set_group(static_cast<int>(g));
    series->mutable_values()->Resize(static_cast<int>(count), 0.0);
    queries.push_back(core::EvalQuery{
        (*nodes)[g].get(), request->start_step(),
        std::span<double>(series->mutable_values()->mutable_data(), static_cast<size_t>(count))});
  }
  core::EvaluateBatch(queries);
  CountValues(count * static_cast<int64_t>(queries.size()));
  return Finish(context, absl::OkStatus());
}

}  // namespace hpsched::service
