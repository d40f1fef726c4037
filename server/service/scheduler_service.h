// hpsched.v1.SchedulerService over gRPC's callback API. Handlers are thin: convert the request,
// call the job registry or the read path (jobs/read_path.h), park the call or finish it, converting
// the status once. Authorization is the server's interceptor (service/auth.h); the service only
// asks it for each call's verdict.
#ifndef HPSCHED_SERVICE_SCHEDULER_SERVICE_H_
#define HPSCHED_SERVICE_SCHEDULER_SERVICE_H_

#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "core/evaluator.h"
#include "hpsched/v1/scheduler_service.grpc.pb.h"
#include "jobs/clock.h"
#include "jobs/executor.h"
#include "jobs/job_registry.h"
#include "jobs/read_path.h"
#include "service/auth.h"
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
  // Null records nothing.
  ServiceMetrics* metrics = nullptr;
  // Evaluates every value served. Null: core::DefaultEvaluator().
  const core::Evaluator* evaluator = nullptr;
  // The verdicts of the server's authorization interceptor (see AuthInterceptorFactory). Null:
  // authentication off, every call allowed.
  const CallVerdicts* verdicts = nullptr;
};

class SchedulerService final : public hpsched::v1::SchedulerService::CallbackService {
 public:
  SchedulerService(jobs::JobRegistry* registry, const ServiceOptions& options);
  explicit SchedulerService(jobs::JobRegistry* registry)
      : SchedulerService(registry, ServiceOptions()) {}
  ~SchedulerService() override;

  // Graceful shutdown: ends every watch stream (OK) and answers every waiting call as at its
  // deadline; new watches and waits are refused.
  void Shutdown();

  size_t watch_count() const { return watches_.size(); }
  size_t waiting_count() const { return pending_.size(); }

  grpc::ServerUnaryReactor* CreateJob(grpc::CallbackServerContext* context,
                                      const hpsched::v1::CreateJobRequest* request,
                                      hpsched::v1::Job* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const hpsched::v1::GetJobRequest* request,
                                   hpsched::v1::Job* response) override;
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
  grpc::ServerWriteReactor<hpsched::v1::WatchJobResponse>* WatchJob(
      grpc::CallbackServerContext* context, const hpsched::v1::WatchJobRequest* request) override;

 private:
  // A GetValues or BatchGetValues call: its requests as the read path takes them, and the
  // responses their values go to. Lives until the call finishes (it may be parked).
  struct ValuesCall {
    std::vector<jobs::ReadRequest> requests;
    jobs::FieldNames names = jobs::FieldNames::kSingle;
    std::vector<hpsched::v1::GetValuesResponse*> responses;
  };

  // The authorization interceptor's verdict on the call: OK when authentication is off.
  absl::Status Allowed(const grpc::CallbackServerContext& context) const;
  // The prologue and epilogue of every unary handler: the call's authorization verdict, then
  // `body` (which fills the response and returns the call's status), then Finish.
  template <typename Body>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, Body body);
  // The same for handlers of one job: `name` (field `field`) is parsed into a job id first.
  template <typename Body>
  grpc::ServerUnaryReactor* ForJob(grpc::CallbackServerContext* context, const std::string& name,
                                   absl::string_view field, Body body);

  // Reports a finished mutation's effect on the job count.
  void CountJobs();
  // Reports values returned.
  void CountValues(int64_t values);

  // GetValues and BatchGetValues: plan, then evaluate or park the call until it can be answered.
  grpc::ServerUnaryReactor* ServeValues(grpc::CallbackServerContext* context,
                                        std::shared_ptr<ValuesCall> call);
  // One try: the call's final status, or nullopt (and why) to wait for a change of its jobs.
  std::optional<absl::Status> TryValues(const ValuesCall& call, bool at_deadline,
                                        PendingCalls::Reason* reason);

  jobs::JobRegistry* const registry_;
  const ServiceOptions options_;
  jobs::SystemClock system_clock_;
  const jobs::Clock* const clock_;
  // Set when no executor was given.
  std::unique_ptr<jobs::ThreadExecutor> own_executor_;
  jobs::Executor* const executor_;
  const jobs::ReadPath read_path_;
  WatchHub watches_;
  PendingCalls pending_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_SCHEDULER_SERVICE_H_
