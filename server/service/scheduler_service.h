// hpsched.v1.SchedulerService over gRPC's callback API. Handlers are thin: validate and convert the
// request, call the job registry and the evaluation core, convert the result and the status once.
#ifndef HPSCHED_SERVICE_SCHEDULER_SERVICE_H_
#define HPSCHED_SERVICE_SCHEDULER_SERVICE_H_

#include "hpsched/v1/scheduler_service.grpc.pb.h"
#include "jobs/job_registry.h"
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

class SchedulerService final : public hpsched::v1::SchedulerService::CallbackService {
 public:
  // `registry`, `metrics` and `auth` must outlive the service. A null `metrics` records nothing; a
  // null `auth` lets every call through (authentication off).
  explicit SchedulerService(jobs::JobRegistry* registry, ServiceMetrics* metrics = nullptr,
                            const Authenticator* auth = nullptr, const ServiceLimits& limits = {})
      : registry_(registry),
        metrics_(metrics),
        auth_(auth),
        watches_(limits.max_watches),
        pending_(limits.max_waiting_calls) {
    registry_->AddObserver(&watches_);
    registry_->AddObserver(&pending_);
  }

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
  // Reports a finished mutation's effect on the job count.
  void CountJobs();
  // Reports values returned.
  void CountValues(int64_t values);

  // OK when authentication is off or the call's token has at least `role`.
  absl::Status Authorize(const grpc::CallbackServerContext* context, Role role,
                         absl::string_view method) const;

  // GetValues and BatchGetValues: compute, or park the call until its values are final.
  grpc::ServerUnaryReactor* ServeValues(grpc::CallbackServerContext* context,
                                        std::vector<const hpsched::v1::GetValuesRequest*> requests,
                                        bool batch,
                                        std::vector<hpsched::v1::GetValuesResponse*> responses);
  // One try of ComputeValues; sets `closing` (and returns nothing) when a job it read is being
  // replaced by a mutation.
  std::optional<absl::Status> TryComputeValues(
      std::span<const hpsched::v1::GetValuesRequest* const> requests, bool batch,
      std::span<hpsched::v1::GetValuesResponse* const> responses, bool at_deadline, bool* closing);
  std::optional<absl::Status> ComputeValues(
      std::span<const hpsched::v1::GetValuesRequest* const> requests, bool batch,
      std::span<hpsched::v1::GetValuesResponse* const> responses, bool at_deadline);

  jobs::JobRegistry* const registry_;
  ServiceMetrics* const metrics_;
  const Authenticator* const auth_;
  WatchHub watches_;
  PendingCalls pending_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_SCHEDULER_SERVICE_H_
