// hpsched.v1.SchedulerService over gRPC's callback API. Handlers are thin: convert the request,
// call the job registry or the read path (jobs/read_path.h), park the call or finish it, converting
// the status once. Every handler first checks the call's bearer token (service/auth.h).
// GetValues and BatchGetValues also write the call's CallNote (service/call_note.h): the server
// keeps them out of gRPC's interceptors and does their bookkeeping from it.
#ifndef HPSCHED_SERVICE_SCHEDULER_SERVICE_H_
#define HPSCHED_SERVICE_SCHEDULER_SERVICE_H_

#include <atomic>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "core/evaluator.h"
#include "hpsched/v1/scheduler_service.grpc.pb.h"
#include "jobs/clock.h"
#include "jobs/executor.h"
#include "jobs/job_registry.h"
#include "jobs/read_path.h"
#include "jobs/work_pool.h"
#include "service/arena_messages.h"
#include "service/auth.h"
#include "service/call_note.h"
#include "service/pending_calls.h"
#include "service/service_metrics.h"
#include "service/watch_hub.h"

namespace hpsched::service {

inline constexpr int kMaxBatchRequests = 1000;
inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

// Bounds on what the service keeps open.
struct ServiceLimits {
  // Open WatchJob streams, in all.
  size_t max_watches = 10'000;
  // GetValues calls parked waiting for metric reports, in all.
  size_t max_waiting_calls = 10'000;
  // The evaluation budget of one GetValues, BatchGetValues (all its requests) or Preview: the sum
  // over its series of count x Node::step_cost(); beyond it the call fails INVALID_ARGUMENT
  // before evaluating (core::CheckEvalCost).
  int64_t max_eval_cost = core::kDefaultMaxEvalCost;
  // Calls that cost at most this evaluate on the gRPC thread that received them; costlier ones
  // go to the work pool, so they cannot take the threads health checks and cheap calls need.
  int64_t inline_eval_cost = int64_t{1} << 20;
  // The work pool the service starts when it is given none: its threads, and how many costly
  // calls may wait for one before further ones answer RESOURCE_EXHAUSTED.
  int eval_threads = 2;
  size_t eval_queue = 64;
  // Bytes of events one WatchJob stream may hold unsent before it is ended with
  // RESOURCE_EXHAUSTED (it fell behind; it reconnects for a fresh snapshot). A stream always
  // takes at least one event, however large.
  size_t max_watch_queue_bytes = size_t{8} << 20;
};

// What the service is given. Every pointer must outlive the service.
struct ServiceOptions {
  ServiceLimits limits;
  // Time of deadlines and event stamps. Null: the system clock.
  const jobs::Clock* clock = nullptr;
  // Runs retries of parked calls, their deadlines, and watch deliveries. Null: the service starts
  // a jobs::ThreadExecutor of its own. The executor must drop or have run its tasks before the
  // service is destroyed.
  jobs::Executor* executor = nullptr;
  // Runs the evaluations that cost more than limits.inline_eval_cost. Null: the service starts a
  // jobs::WorkPool of limits.eval_threads threads and limits.eval_queue places. Must outlive the
  // service's calls.
  jobs::WorkPool* work_pool = nullptr;
  // Null records nothing.
  ServiceMetrics* metrics = nullptr;
  // Evaluates every value served. Null: core::DefaultEvaluator().
  const core::Evaluator* evaluator = nullptr;
  // Checks every call's "authorization" metadata. Null: authentication off, every call allowed.
  const Authenticator* auth = nullptr;
  // The observers of GetValues' and BatchGetValues' calls (kObservedMethods), by gRPC's full
  // method name; each must outlive the service's calls. Null, or null for a method: none.
  std::function<CallObserver*(absl::string_view full_method)> call_observer;
};

// WatchJob is served raw (grpc::ByteBuffer in and out) so that its events are serialized once and
// shared between streams (see WatchHub); on the wire it is the same method.
class SchedulerService final : public hpsched::v1::SchedulerService::WithRawCallbackMethod_WatchJob<
                                   hpsched::v1::SchedulerService::CallbackService> {
 public:
  SchedulerService(jobs::JobRegistry* registry, const ServiceOptions& options);
  explicit SchedulerService(jobs::JobRegistry* registry)
      : SchedulerService(registry, ServiceOptions()) {}
  ~SchedulerService() override;

  // Graceful shutdown: ends every watch stream (OK) and answers every waiting call as at its
  // deadline; new watches and waits are refused.
  void Shutdown();
  // Evaluations still running at `when` (by the service's clock) stop at their next chunk and
  // answer UNAVAILABLE: the server calls this with the end of its shutdown grace.
  void CancelEvaluationsAt(absl::Time when);

  size_t watch_count() const { return watches_.size(); }
  size_t waiting_count() const { return pending_.size(); }

  grpc::ServerUnaryReactor* CreateJob(grpc::CallbackServerContext* context,
                                      const hpsched::v1::CreateJobRequest* request,
                                      hpsched::v1::Job* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const hpsched::v1::GetJobRequest* request,
                                   hpsched::v1::Job* response) override;
  grpc::ServerUnaryReactor* GetMetricReports(
      grpc::CallbackServerContext* context, const hpsched::v1::GetMetricReportsRequest* request,
      hpsched::v1::GetMetricReportsResponse* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const hpsched::v1::ListJobsRequest* request,
                                     hpsched::v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* DeleteJob(grpc::CallbackServerContext* context,
                                      const hpsched::v1::DeleteJobRequest* request,
                                      hpsched::v1::DeleteJobResponse* response) override;
  grpc::ServerUnaryReactor* GetValues(grpc::CallbackServerContext* context,
                                      const hpsched::v1::GetValuesRequest* request,
                                      hpsched::v1::GetValuesResponse* response) override;
  grpc::ServerUnaryReactor* BatchGetValues(grpc::CallbackServerContext* context,
                                           const hpsched::v1::BatchGetValuesRequest* request,
                                           hpsched::v1::BatchGetValuesResponse* response) override;
  grpc::ServerUnaryReactor* Preview(grpc::CallbackServerContext* context,
                                    const hpsched::v1::PreviewRequest* request,
                                    hpsched::v1::PreviewResponse* response) override;
  grpc::ServerUnaryReactor* UpdateJob(grpc::CallbackServerContext* context,
                                      const hpsched::v1::UpdateJobRequest* request,
                                      hpsched::v1::Job* response) override;
  grpc::ServerUnaryReactor* ReportMetrics(grpc::CallbackServerContext* context,
                                          const hpsched::v1::ReportMetricsRequest* request,
                                          hpsched::v1::ReportMetricsResponse* response) override;
  // `request` is a serialized hpsched.v1.WatchJobRequest; the stream writes serialized
  // hpsched.v1.WatchJobResponse messages.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchJob(grpc::CallbackServerContext* context,
                                                       const grpc::ByteBuffer* request) override;

 private:
  // A GetValues or BatchGetValues call: its requests as the read path takes them, and the
  // responses their values go to. On the handler's stack while the call is answered inline (no
  // allocation for a single read); moved to the heap when it is parked or queued, and then lives
  // until the call finishes.
  struct ValuesCall {
    absl::InlinedVector<jobs::ReadRequest, 1> requests;
    jobs::FieldNames names = jobs::FieldNames::kSingle;
    absl::InlinedVector<hpsched::v1::GetValuesResponse*, 1> responses;
    // Each request's `job` field as sent (in the call's request message, which outlives the
    // call): a response names its job by it when it is already "jobs/{id}".
    absl::InlinedVector<absl::string_view, 1> job_names;
    // Where the call's answer is noted for the server's bookkeeping (null in a test's own call).
    CallNote* note = nullptr;
  };
  // Whether an evaluation should stop (see jobs::CancellableEvaluator).
  using StopFn = std::function<bool()>;
  // An evaluation handed to the work pool: the call's status.
  using Work = std::function<absl::Status(const StopFn& stop)>;

  // Whether the call's token allows `method` ("GetJob"): OK when authentication is off, else
  // Authenticator::Check's answer.
  absl::Status Allowed(const grpc::CallbackServerContext& context, absl::string_view method) const;
  // The prologue and epilogue of every unary handler: the call's authorization for `method`, then
  // `body` (which fills the response and returns the call's status), then Finish.
  template <typename Body>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, absl::string_view method,
                                  Body body);
  // The same for handlers of one job: `name` (field `field`) is parsed into a job id first.
  template <typename Body>
  grpc::ServerUnaryReactor* ForJob(grpc::CallbackServerContext* context, absl::string_view method,
                                   const std::string& name, absl::string_view field, Body body);

  // Reports a finished mutation's effect on the job count.
  void CountJobs();
  // Reports values returned.
  void CountValues(int64_t values);

  // GetValues and BatchGetValues: plan, then evaluate or park the call until it can be answered.
  grpc::ServerUnaryReactor* ServeValues(grpc::CallbackServerContext* context, ValuesCall call);
  // Clears the call's responses and plans its reads (returned, not moved: the plan holds its
  // first read inline).
  absl::StatusOr<jobs::ReadPlan> PlanValues(const ValuesCall& call, bool at_deadline);
  // What a plan means for the call: an error; nullopt (and why) when the call must wait, for
  // metric reports its policy waits for (unless `at_deadline`; at the deadline a request that does
  // not accept provisional values answers DEADLINE_EXCEEDED) or for a job a mutation is replacing
  // (its next event); or OK, the plan ready to evaluate.
  static std::optional<absl::Status> Readiness(const absl::StatusOr<jobs::ReadPlan>& planned,
                                               bool at_deadline, PendingCalls::Reason* reason);
  // Evaluates a ready plan into the call's responses, stopping when `stop` says so.
  absl::Status EvaluateValues(const ValuesCall& call, const jobs::ReadPlan& plan,
                              const StopFn& stop);
  // One try of a parked call: PlanValues and Readiness, then EvaluateValues on the caller's thread.
  std::optional<absl::Status> TryValues(const ValuesCall& call, bool at_deadline,
                                        PendingCalls::Reason* reason, const StopFn& stop);
  // When the evaluations of the call on `context` stop: it was cancelled, its deadline passed
  // (with `check_deadline`; a parked call's last try answers at its deadline), or the shutdown
  // grace ended. `context` must outlive the returned function's use.
  StopFn StopFor(grpc::CallbackServerContext* context, bool check_deadline = true) const;
  // What StopFor's functions answer: whether the call on `context` should stop now, `deadline`
  // being its deadline (or InfiniteFuture).
  bool ShouldStop(grpc::CallbackServerContext* context, absl::Time deadline) const;
  // Why an evaluation stopped (after `stop` said so): CANCELLED, DEADLINE_EXCEEDED, UNAVAILABLE.
  absl::Status StoppedStatus(grpc::CallbackServerContext* context) const;
  // Runs `work` inline when it costs at most inline_eval_cost, else on the work pool (or answers
  // RESOURCE_EXHAUSTED when the pool's queue is full); finishes the call with its status, noted
  // on `note` when there is one.
  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context, int64_t cost, Work work,
                                     CallNote* note = nullptr);

  jobs::JobRegistry* const registry_;
  const ServiceOptions options_;
  jobs::SystemClock system_clock_;
  const jobs::Clock* const clock_;
  // Set when no executor was given.
  std::unique_ptr<jobs::ThreadExecutor> own_executor_;
  jobs::Executor* const executor_;
  // Set when no work pool was given.
  std::unique_ptr<jobs::WorkPool> own_work_pool_;
  jobs::WorkPool* const work_pool_;
  // CancelEvaluationsAt's time, in Unix nanoseconds; INT64_MAX until it is called.
  std::atomic<int64_t> cancel_evaluations_at_{std::numeric_limits<int64_t>::max()};
  const jobs::ReadPath read_path_;
  WatchHub watches_;
  PendingCalls pending_;
  // The values calls' messages, on one arena per call, and their observers (registered in the
  // constructor).
  ArenaMessageAllocator<hpsched::v1::GetValuesRequest, hpsched::v1::GetValuesResponse>
      get_values_messages_;
  ArenaMessageAllocator<hpsched::v1::BatchGetValuesRequest, hpsched::v1::BatchGetValuesResponse>
      batch_get_values_messages_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_SCHEDULER_SERVICE_H_
