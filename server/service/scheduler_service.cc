#include "service/scheduler_service.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "codec/proto_convert.h"
#include "core/status_macros.h"
#include "jobs/cancellable_evaluator.h"
#include "service/job_filter.h"
#include "service/status_convert.h"

namespace hpsched::service {
namespace {

namespace v1 = ::hpsched::v1;

void ToProto(const jobs::Job& job, v1::Job* proto) {
  codec::JobToProto(job.record, *job.plan, proto);
  // The served mark is the job's mutable part (not in the record): a read, not a change.
  if (const int64_t served = job.served_through.load(); served >= 0) {
    proto->set_served_through(served);
  }
}

// Job.watchers: set only when some stream is open, so a job nobody watches reads as it was created.
void SetWatchers(const WatchHub& hub, const std::string& job_id, v1::Job* proto) {
  if (const size_t n = hub.WatchersOf(job_id); n > 0) proto->set_watchers(static_cast<int32_t>(n));
}

// Sizes `series` for `count` values and returns its buffer, for the evaluator to write into. The
// values are left unset (no zero fill: 1.3% of a count-4096 call's CPU): the evaluator writes every
// one, and a call whose evaluation stops clears its responses.
std::span<double> SizedValues(v1::Series* series, int64_t count) {
  google::protobuf::RepeatedField<double>* values = series->mutable_values();
  values->Reserve(static_cast<int>(count));
  double* out = values->AddNAlreadyReserved(static_cast<int>(count));
  return std::span<double>(out, static_cast<size_t>(count));
}

// `note`: where a values call's answer is noted (null for the other methods).
grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, const absl::Status& status,
                                 CallNote* note = nullptr) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(Noted(note, ToGrpcStatus(status)));
  return reactor;
}

// The observer of `method` (one of kObservedMethods), if the server gave one.
CallObserver* ObserverOf(const ServiceOptions& options, absl::string_view method) {
  return options.call_observer ? options.call_observer(method) : nullptr;
}

// The note of a values call, marked as having reached its handler.
CallNote* ReachedHandler(const google::protobuf::MessageLite& request) {
  CallNote* note = CallNoteOf(request);
  if (note != nullptr) note->reached_handler = true;
  return note;
}

jobs::PendingPolicy PolicyFromProto(v1::PendingPolicy policy) {
  switch (policy) {
    case v1::PENDING_POLICY_PROVISIONAL_NOW:
      return jobs::PendingPolicy::kProvisionalNow;
    case v1::PENDING_POLICY_WAIT_THEN_PROVISIONAL:
      return jobs::PendingPolicy::kWaitThenProvisional;
    default:
      return jobs::PendingPolicy::kWait;
  }
}

// `job_field`: the path errors about the job's name name ("job", "requests[i].job").
jobs::ReadRequest ReadRequestFromProto(const v1::GetValuesRequest& request,
                                       absl::string_view job_field) {
  jobs::ReadRequest read;
  read.job_id = codec::JobIdFromName(request.job(), job_field);
  read.start = request.step();
  read.count = request.count();
  read.hyperparameters.assign(request.hyperparameters().begin(), request.hyperparameters().end());
  read.pending_policy = PolicyFromProto(request.pending_policy());
  read.peek = request.peek();
  return read;
}

// Fills `response`'s fields from `read` and sizes its series; appends their buffers to `outs`.
// `job_name` is the request's: the canonical name it already is, or the id alone.
void SizeResponse(const jobs::PlannedRead& read, absl::string_view job_name,
                  v1::GetValuesResponse* response,
                  absl::InlinedVector<std::span<double>, 4>* outs) {
  if (absl::StartsWith(job_name, "jobs/")) {
    response->set_job(job_name.data(), job_name.size());  // The planned read found this id.
  } else {
    response->set_job(codec::JobName(read.job->record.job_id));
  }
  response->set_version(read.job->record.version);
  response->set_start_step(read.start);
  if (read.provisional_from.has_value()) response->set_provisional_from(*read.provisional_from);
  for (size_t index : read.series) {
    const core::SeriesPlan& plan = read.job->plan->series()[index];
    v1::Series* series = response->add_series();
    series->set_hyperparameter(plan.hyperparameter);
    series->set_group(plan.group);
    outs->push_back(SizedValues(series, read.count));
  }
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

// When a parked call answers: its own deadline or kMaxWait, whichever is first, less a margin so
// the answer reaches the caller in time.
absl::Time ParkDeadline(const grpc::CallbackServerContext& context, absl::Time now) {
  absl::Time deadline = absl::FromChrono(context.deadline());
  if (deadline == absl::InfiniteFuture() || deadline - now > kMaxWait) deadline = now + kMaxWait;
  return deadline - std::min(absl::Milliseconds(100), (deadline - now) / 10);
}

constexpr absl::string_view kPageTokenPrefix = "after:";

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

SchedulerService::SchedulerService(jobs::JobRegistry* registry, const ServiceOptions& options)
    : registry_(registry),
      options_(options),
      clock_(options.clock != nullptr ? options.clock : &system_clock_),
      own_executor_(options.executor == nullptr ? std::make_unique<jobs::ThreadExecutor>(clock_)
                                                : nullptr),
      executor_(options.executor != nullptr ? options.executor : own_executor_.get()),
      own_work_pool_(options.work_pool == nullptr
                         ? std::make_unique<jobs::WorkPool>(options.limits.eval_threads,
                                                            options.limits.eval_queue)
                         : nullptr),
      work_pool_(options.work_pool != nullptr ? options.work_pool : own_work_pool_.get()),
      read_path_(registry,
                 options.evaluator != nullptr ? options.evaluator : &core::DefaultEvaluator(),
                 options.limits.max_eval_cost),
      watches_(options.limits.max_watches, options.limits.max_watch_queue_bytes, clock_, executor_),
      pending_(options.limits.max_waiting_calls, clock_, executor_),
      get_values_messages_(ObserverOf(options, kObservedMethods[0])),
      batch_get_values_messages_(ObserverOf(options, kObservedMethods[1])) {
  registry_->AddObserver(&watches_);
  registry_->AddObserver(&pending_);
  SetMessageAllocatorFor_GetValues(&get_values_messages_);
  SetMessageAllocatorFor_BatchGetValues(&batch_get_values_messages_);
}

SchedulerService::~SchedulerService() {
  // The pool's tasks use the read path: run them out first. The executor's queued tasks point at
  // watches_ and pending_: drop them next.
  own_work_pool_.reset();
  own_executor_.reset();
}

absl::Status SchedulerService::Allowed(const grpc::CallbackServerContext& context,
                                       absl::string_view method) const {
  if (options_.auth == nullptr) return absl::OkStatus();
  absl::string_view authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  return options_.auth->Check(authorization, RequiredRole(method), method);
}

template <typename Body>
grpc::ServerUnaryReactor* SchedulerService::Unary(grpc::CallbackServerContext* context,
                                                  absl::string_view method, Body body) {
  if (absl::Status allowed = Allowed(*context, method); !allowed.ok()) {
    return Finish(context, allowed);
  }
  return Finish(context, body());
}

template <typename Body>
grpc::ServerUnaryReactor* SchedulerService::ForJob(grpc::CallbackServerContext* context,
                                                   absl::string_view method,
                                                   const std::string& name, absl::string_view field,
                                                   Body body) {
  return Unary(context, method, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string id, codec::JobIdFromName(name, field));
    return body(id);
  });
}

void SchedulerService::CountJobs() {
  if (options_.metrics != nullptr) options_.metrics->JobCount(registry_->size());
}

void SchedulerService::CountValues(int64_t values) {
  if (options_.metrics != nullptr) options_.metrics->ValuesServed(values);
}

grpc::ServerUnaryReactor* SchedulerService::CreateJob(grpc::CallbackServerContext* context,
                                                      const v1::CreateJobRequest* request,
                                                      v1::Job* response) {
  return Unary(context, "CreateJob", [&]() -> absl::Status {
    if (!request->has_job()) return absl::InvalidArgumentError("job: is required");
    auto job = registry_->Create(request->job_id(), codec::JobSpecFromProto(request->job()),
                                 request->request_id());
    if (job.ok()) ToProto(**job, response);
    CountJobs();
    return job.status();
  });
}

grpc::ServerUnaryReactor* SchedulerService::GetJob(grpc::CallbackServerContext* context,
                                                   const v1::GetJobRequest* request,
                                                   v1::Job* response) {
  return ForJob(context, "GetJob", request->name(), "name",
                [&](const std::string& id) -> absl::Status {
                  ASSIGN_OR_RETURN(std::shared_ptr<const jobs::Job> job, registry_->Get(id));
                  ToProto(*job, response);
                  return absl::OkStatus();
                });
}

grpc::ServerUnaryReactor* SchedulerService::GetMetricReports(
    grpc::CallbackServerContext* context, const v1::GetMetricReportsRequest* request,
    v1::GetMetricReportsResponse* response) {
  return ForJob(
      context, "GetMetricReports", request->job(), "job",
      [&](const std::string& id) -> absl::Status {
        constexpr int kDefaultReports = 10'000;
        constexpr int kMaxReports = 100'000;
        const int64_t start = request->start_step();
        const int64_t end = request->end_step();
        if (start < 0) {
          return absl::InvalidArgumentError(absl::StrCat("start_step: must be >= 0, got ", start));
        }
        if (end != 0 && end <= start) {
          return absl::InvalidArgumentError(absl::StrCat(
              "end_step: must be 0 (no end) or > start_step (", start, "), got ", end));
        }
        if (request->max_reports() < 0 || request->max_reports() > kMaxReports) {
          return absl::InvalidArgumentError(absl::StrCat(
              "max_reports: must be in [0, ", kMaxReports, "], got ", request->max_reports()));
        }
        const int max = request->max_reports() == 0 ? kDefaultReports : request->max_reports();
        ASSIGN_OR_RETURN(std::shared_ptr<const jobs::Job> job, registry_->Get(id));
        response->set_job(codec::JobName(id));
        for (const core::MetricSpec& spec : job->record.spec.metrics) {
          v1::MetricReportSeries* series = response->add_metrics();
          series->set_metric(spec.name);
          const auto reports = job->record.metric_reports.find(spec.name);
          if (reports == job->record.metric_reports.end()) continue;
          // A history keeps its reports in the order they came (core::MetricHistory); the answer
          // goes by step.
          const core::MetricHistory& history = reports->second;
          std::vector<const core::MetricHistory::Entry*> in_range;
          for (size_t i = 0; i < history.size(); ++i) {
            const core::MetricHistory::Entry& entry = history[i];
            if (entry.step >= start && (end == 0 || entry.step < end)) in_range.push_back(&entry);
          }
          std::sort(in_range.begin(), in_range.end(),
                    [](const auto* a, const auto* b) { return a->step < b->step; });
          for (const core::MetricHistory::Entry* entry : in_range) {
            if (series->steps_size() == max) {
              series->set_truncated(true);
              break;
            }
            series->add_steps(entry->step);
            series->add_values(entry->report.value);
          }
        }
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::ListJobs(grpc::CallbackServerContext* context,
                                                     const v1::ListJobsRequest* request,
                                                     v1::ListJobsResponse* response) {
  return Unary(context, "ListJobs", [&]() -> absl::Status {
    if (request->page_size() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("page_size: must be >= 0, got ", request->page_size()));
    }
    int page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
    page_size = std::min(page_size, kMaxPageSize);
    std::string after;
    if (!request->page_token().empty()) {
      ASSIGN_OR_RETURN(after, DecodePageToken(request->page_token()));
    }
    ASSIGN_OR_RETURN(const JobFilter filter, JobFilter::Parse(request->filter()));
    // Reads the table a page at a time until this page is full of matches or the table ends; the
    // token continues after the last job looked at.
    std::string next_after;
    for (;;) {
      jobs::JobPage page = registry_->List(static_cast<size_t>(page_size), after);
      for (size_t i = 0; i < page.jobs.size(); ++i) {
        const jobs::Job& job = *page.jobs[i];
        if (!filter.Matches(job.record.job_id, job.record.spec.labels)) continue;
        v1::Job* listed = response->add_jobs();
        ToProto(job, listed);
        SetWatchers(watches_, job.record.job_id, listed);
        if (response->jobs_size() == page_size) {
          const bool more = i + 1 < page.jobs.size() || !page.next_after.empty();
          if (more) next_after = job.record.job_id;
          break;
        }
      }
      if (response->jobs_size() == page_size || page.next_after.empty()) break;
      after = page.next_after;
    }
    if (!next_after.empty()) {
      response->set_next_page_token(
          absl::WebSafeBase64Escape(absl::StrCat(kPageTokenPrefix, next_after)));
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SchedulerService::DeleteJob(grpc::CallbackServerContext* context,
                                                      const v1::DeleteJobRequest* request,
                                                      v1::DeleteJobResponse* response) {
  return ForJob(context, "DeleteJob", request->name(), "name", [&](const std::string& id) {
    const absl::Status status = registry_->Delete(id);
    CountJobs();
    return status;
  });
}

absl::StatusOr<jobs::ReadPlan> SchedulerService::PlanValues(const ValuesCall& call,
                                                            bool at_deadline) {
  for (v1::GetValuesResponse* response : call.responses) response->Clear();
  return read_path_.Plan(call.requests, call.names, at_deadline);
}

std::optional<absl::Status> SchedulerService::Readiness(
    const absl::StatusOr<jobs::ReadPlan>& planned, bool at_deadline, PendingCalls::Reason* reason) {
  if (!planned.ok()) return planned.status();
  switch (planned->state) {
    case jobs::ReadPlan::State::kWait:
      *reason = PendingCalls::Reason::kReports;
      return std::nullopt;
    case jobs::ReadPlan::State::kReplaced:
      if (at_deadline) return absl::UnavailableError("the job is being changed; retry");
      *reason = PendingCalls::Reason::kReplacedJob;
      return std::nullopt;
    case jobs::ReadPlan::State::kReady:
      break;
  }
  return absl::OkStatus();
}

absl::Status SchedulerService::EvaluateValues(const ValuesCall& call, const jobs::ReadPlan& plan,
                                              const StopFn& stop) {
  absl::InlinedVector<std::span<double>, 4> outs;
  for (size_t i = 0; i < plan.reads.size(); ++i) {
    SizeResponse(plan.reads[i], call.job_names[i], call.responses[i], &outs);
  }
  const jobs::CancellableEvaluator evaluator(&read_path_.evaluator(), stop);
  read_path_.Evaluate(plan, outs, evaluator);
  if (evaluator.stopped()) {
    for (v1::GetValuesResponse* response : call.responses) response->Clear();
    return absl::CancelledError();  // Replaced by StoppedStatus where the context is known.
  }
  for (v1::GetValuesResponse* response : call.responses) SetLr(response);
  CountValues(plan.total_values);
  return absl::OkStatus();
}

std::optional<absl::Status> SchedulerService::TryValues(const ValuesCall& call, bool at_deadline,
                                                        PendingCalls::Reason* reason,
                                                        const StopFn& stop) {
  const absl::StatusOr<jobs::ReadPlan> planned = PlanValues(call, at_deadline);
  std::optional<absl::Status> ready = Readiness(planned, at_deadline, reason);
  if (!ready.has_value() || !ready->ok()) return ready;
  return EvaluateValues(call, *planned, stop);
}

SchedulerService::StopFn SchedulerService::StopFor(grpc::CallbackServerContext* context,
                                                   bool check_deadline) const {
  const absl::Time deadline =
      check_deadline ? absl::FromChrono(context->deadline()) : absl::InfiniteFuture();
  return [this, context, deadline] { return ShouldStop(context, deadline); };
}

bool SchedulerService::ShouldStop(grpc::CallbackServerContext* context, absl::Time deadline) const {
  // The call's deadline is gRPC's, on the system clock; the shutdown grace is on the service's.
  return absl::Now() >= deadline ||
         clock_->Now() >=
             absl::FromUnixNanos(cancel_evaluations_at_.load(std::memory_order_relaxed)) ||
         context->IsCancelled();
}

absl::Status SchedulerService::StoppedStatus(grpc::CallbackServerContext* context) const {
  if (clock_->Now() >=
      absl::FromUnixNanos(cancel_evaluations_at_.load(std::memory_order_relaxed))) {
    return absl::UnavailableError(
        "the server is shutting down: the evaluation was stopped at the end of its grace");
  }
  if (absl::Now() >= absl::FromChrono(context->deadline())) {
    return absl::DeadlineExceededError("the call's deadline passed during its evaluation");
  }
  return absl::CancelledError("the call was cancelled during its evaluation");
}

void SchedulerService::CancelEvaluationsAt(absl::Time when) {
  cancel_evaluations_at_.store(absl::ToUnixNanos(when), std::memory_order_relaxed);
}

grpc::ServerUnaryReactor* SchedulerService::Evaluate(grpc::CallbackServerContext* context,
                                                     int64_t cost, Work work, CallNote* note) {
  const StopFn stop = StopFor(context);
  auto finish = [this, context](absl::Status status) {
    // A stopped evaluation answers why it stopped.
    if (absl::IsCancelled(status) && status.message().empty()) status = StoppedStatus(context);
    return status;
  };
  if (cost <= options_.limits.inline_eval_cost) return Finish(context, finish(work(stop)), note);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool accepted =
      work_pool_->TrySchedule([reactor, work = std::move(work), stop, finish, note] {
        reactor->Finish(Noted(note, ToGrpcStatus(finish(work(stop)))));
      });
  if (!accepted) {
    reactor->Finish(Noted(
        note,
        ToGrpcStatus(absl::ResourceExhaustedError(absl::StrCat(
            "the server is busy with costly evaluations (", work_pool_->queued(),
            " waiting for its evaluation threads); retry later, or ask for fewer steps, groups or "
            "hyperparameters per call (a call costing at most ",
            options_.limits.inline_eval_cost, " evaluation units is never queued)")))));
  }
  return reactor;
}

grpc::ServerUnaryReactor* SchedulerService::ServeValues(grpc::CallbackServerContext* context,
                                                        ValuesCall call) {
  PendingCalls::Reason reason = PendingCalls::Reason::kReports;
  absl::StatusOr<jobs::ReadPlan> planned = PlanValues(call, false);
  std::optional<absl::Status> done = Readiness(planned, false, &reason);
  if (done.has_value()) {
    if (!done->ok()) return Finish(context, *done, call.note);
    jobs::ReadPlan& plan = *planned;
    if (plan.total_cost <= options_.limits.inline_eval_cost) {
      // Evaluate's inline case without its closures (each a heap allocation): the stop check
      // lives on this stack, for as long as the evaluation that reads it.
      const absl::Time deadline = absl::FromChrono(context->deadline());
      auto stop_now = [this, context, deadline] { return ShouldStop(context, deadline); };
      absl::Status status = EvaluateValues(call, plan, StopFn(std::ref(stop_now)));
      if (absl::IsCancelled(status) && status.message().empty()) status = StoppedStatus(context);
      return Finish(context, status, call.note);
    }
    const int64_t cost = plan.total_cost;
    CallNote* note = call.note;
    return Evaluate(
        context, cost,
        [this, call = std::make_shared<ValuesCall>(std::move(call)),
         plan = std::move(plan)](const StopFn& stop) { return EvaluateValues(*call, plan, stop); },
        note);
  }
  std::set<std::string> job_ids;
  for (const jobs::ReadRequest& request : call.requests) {
    if (request.job_id.ok()) job_ids.insert(*request.job_id);
  }
  // A parked call's retries evaluate on the service's executor, bounded by max_eval_cost.
  CallNote* note = call.note;
  return pending_.Park(
      std::move(job_ids), ParkDeadline(*context, clock_->Now()),
      [this, call = std::make_shared<ValuesCall>(std::move(call)), context,
       stop = StopFor(context, /*check_deadline=*/false)](bool at_deadline) {
        PendingCalls::Reason ignored;
        std::optional<absl::Status> status = TryValues(*call, at_deadline, &ignored, stop);
        if (status.has_value() && absl::IsCancelled(*status) && status->message().empty()) {
          status = StoppedStatus(context);
        }
        return status;
      },
      reason, note);
}

grpc::ServerUnaryReactor* SchedulerService::GetValues(grpc::CallbackServerContext* context,
                                                      const v1::GetValuesRequest* request,
                                                      v1::GetValuesResponse* response) {
  CallNote* note = ReachedHandler(*request);
  if (absl::Status allowed = Allowed(*context, "GetValues"); !allowed.ok()) {
    return Finish(context, allowed, note);
  }
  ValuesCall call;
  call.note = note;
  call.requests.push_back(ReadRequestFromProto(*request, "job"));
  call.responses.push_back(response);
  call.job_names.push_back(request->job());
  return ServeValues(context, std::move(call));
}

grpc::ServerUnaryReactor* SchedulerService::BatchGetValues(grpc::CallbackServerContext* context,
                                                           const v1::BatchGetValuesRequest* request,
                                                           v1::BatchGetValuesResponse* response) {
  CallNote* note = ReachedHandler(*request);
  if (absl::Status allowed = Allowed(*context, "BatchGetValues"); !allowed.ok()) {
    return Finish(context, allowed, note);
  }
  if (request->requests_size() > kMaxBatchRequests) {
    return Finish(
        context,
        absl::InvalidArgumentError(absl::StrCat("requests: must have at most ", kMaxBatchRequests,
                                                " requests, got ", request->requests_size())),
        note);
  }
  ValuesCall call;
  call.note = note;
  call.names = jobs::FieldNames::kBatch;
  for (int i = 0; i < request->requests_size(); ++i) {
    call.requests.push_back(
        ReadRequestFromProto(request->requests(i), absl::StrCat("requests[", i, "].job")));
    call.responses.push_back(response->add_responses());
    call.job_names.push_back(request->requests(i).job());
  }
  return ServeValues(context, std::move(call));
}

grpc::ServerUnaryReactor* SchedulerService::UpdateJob(grpc::CallbackServerContext* context,
                                                      const v1::UpdateJobRequest* request,
                                                      v1::Job* response) {
  return ForJob(
      context, "UpdateJob", request->name(), "name", [&](const std::string& id) -> absl::Status {
        std::vector<jobs::SegmentChange> changes;
        for (int i = 0; i < request->updates_size(); ++i) {
          const v1::HyperparameterUpdate& update = request->updates(i);
          if (!update.has_segment()) {
            return absl::InvalidArgumentError(
                absl::StrCat("updates[", i, "].segment: is required"));
          }
          if (update.segment().change_case() == v1::Segment::CHANGE_NOT_SET) {
            return absl::InvalidArgumentError(absl::StrCat(
                "updates[", i, "].segment: set exactly one of schedule, scale or pin"));
          }
          changes.push_back(jobs::SegmentChange{update.hyperparameter(),
                                                codec::SegmentFromProto(update.segment())});
        }
        ASSIGN_OR_RETURN(std::shared_ptr<const jobs::Job> job,
                         registry_->Update(id, std::move(changes), request->etag(),
                                           request->request_id(), request->allow_rewrite()));
        ToProto(*job, response);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* SchedulerService::ReportMetrics(grpc::CallbackServerContext* context,
                                                          const v1::ReportMetricsRequest* request,
                                                          v1::ReportMetricsResponse* response) {
  return ForJob(
      context, "ReportMetrics", request->job(), "job", [&](const std::string& id) -> absl::Status {
        const std::map<std::string, double> metrics(request->metrics().begin(),
                                                    request->metrics().end());
        std::optional<int64_t> next_step;
        if (request->has_next_step()) next_step = request->next_step();
        ASSIGN_OR_RETURN(jobs::ReportResult result,
                         registry_->ReportMetrics(id, request->step(), metrics, next_step));
        response->set_job(codec::JobName(id));
        response->set_duplicate(result.duplicate);
        response->mutable_reduction_steps()->Add(result.reduction_steps.begin(),
                                                 result.reduction_steps.end());
        return absl::OkStatus();
      });
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* SchedulerService::WatchJob(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw) {
  if (absl::Status allowed = Allowed(*context, "WatchJob"); !allowed.ok()) {
    return WatchHub::Fail(ToGrpcStatus(allowed));
  }
  v1::WatchJobRequest request;
  grpc::ByteBuffer bytes(*raw);  // Shares the slices; Deserialize consumes its argument.
  if (!grpc::SerializationTraits<v1::WatchJobRequest>::Deserialize(&bytes, &request).ok()) {
    return WatchHub::Fail(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "the request is not a serialized WatchJobRequest"));
  }
  auto id = codec::JobIdFromName(request.job(), "job");
  if (!id.ok()) return WatchHub::Fail(ToGrpcStatus(id.status()));
  return watches_.Start(*registry_, *id);
}

void SchedulerService::Shutdown() {
  watches_.Close();
  pending_.Close();
}

grpc::ServerUnaryReactor* SchedulerService::Preview(grpc::CallbackServerContext* context,
                                                    const v1::PreviewRequest* request,
                                                    v1::PreviewResponse* response) {
  if (absl::Status allowed = Allowed(*context, "Preview"); !allowed.ok()) {
    return Finish(context, allowed);
  }
  if (!request->has_schedule()) {
    return Finish(context, absl::InvalidArgumentError("schedule: is required"));
  }
  std::vector<double> base_values(request->base_values().begin(), request->base_values().end());
  // The checks of core::PreviewValues, in its order, then the evaluation budget.
  if (absl::Status checked =
          core::CheckPreview(base_values, request->start_step(), request->count());
      !checked.ok()) {
    return Finish(context, checked);
  }
  absl::StatusOr<core::CompiledPreview> compiled =
      core::CompiledPreview::Compile(codec::ScheduleFromProto(request->schedule()),
                                     std::move(base_values), request->hyperparameter());
  if (!compiled.ok()) return Finish(context, compiled.status());
  const int64_t cost = compiled->step_cost() * core::EffectiveCount(request->count());
  if (absl::Status budget = core::CheckEvalCost(cost, options_.limits.max_eval_cost, "count");
      !budget.ok()) {
    return Finish(context, budget);
  }
  auto preview = std::make_shared<const core::CompiledPreview>(*std::move(compiled));
  return Evaluate(context, cost, [this, preview, request, response](const StopFn& stop) {
    const jobs::CancellableEvaluator evaluator(&read_path_.evaluator(), stop);
    int64_t values = 0;
    RETURN_IF_ERROR(preview->Evaluate(request->start_step(), request->count(), evaluator,
                                      [&](size_t group, int64_t count) {
                                        v1::Series* series = response->add_series();
                                        series->set_group(static_cast<int>(group));
                                        values += count;
                                        return SizedValues(series, count);
                                      }));
    if (evaluator.stopped()) {
      response->Clear();
      return absl::CancelledError();  // Evaluate answers why it stopped.
    }
    CountValues(values);
    return absl::OkStatus();
  });
}

}  // namespace hpsched::service
