// hpsched.v1.SchedulerService over gRPC's callback API. Handlers are thin: validate and convert the
// request, call the job registry and the evaluation core, convert the result and the status once.
#ifndef HPSCHED_SERVICE_SCHEDULER_SERVICE_H_
#define HPSCHED_SERVICE_SCHEDULER_SERVICE_H_

#include "hpsched/v1/scheduler_service.grpc.pb.h"
#include "jobs/job_registry.h"
#include "service/auth.h"
#include "service/service_metrics.h"

namespace hpsched::service {

inline constexpr int kMaxBatchRequests = 1000;
inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

class SchedulerService final : public hpsched::v1::SchedulerService::CallbackService {
 public:
  // `registry`, `metrics` and `auth` must outlive the service. A null `metrics` records nothing; a
  // null `auth` lets every call through (authentication off).
  explicit SchedulerService(jobs::JobRegistry* registry, ServiceMetrics* metrics = nullptr,
                            const Authenticator* auth = nullptr)
      : registry_(registry), metrics_(metrics), auth_(auth) {}

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

 private:
  // Reports a finished mutation's effect on the job count.
  void CountJobs();
  // Reports values returned.
  void CountValues(int64_t values);

  // OK when authentication is off or the call's token has at least `role`.
  absl::Status Authorize(const grpc::CallbackServerContext* context, Role role,
                         absl::string_view method) const;

  jobs::JobRegistry* const registry_;
  ServiceMetrics* const metrics_;
  const Authenticator* const auth_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_SCHEDULER_SERVICE_H_
