// hpsched::client::Client: typed calls to hpsched.v1.SchedulerService, each with a deadline,
// retried with exponential backoff while the server is UNAVAILABLE (or ends the call: CANCELLED).
#ifndef HPSCHED_CLIENT_CLIENT_H_
#define HPSCHED_CLIENT_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/sync_stream.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hpsched/v1/scheduler_service.grpc.pb.h"

namespace hpsched::client {

struct ClientOptions {
  // Where the server or its replicas are: one gRPC target ("localhost:50051", or
  // "dns:///hpsched.example:50051", whose every address record is a replica), or a comma-separated
  // list of HOST:PORT ("10.0.0.1:50051,10.0.0.2:50051"; names in a list are resolved once, when
  // the channel opens). Calls go round-robin over the replicas (ServiceConfigJson).
  std::string target = "localhost:50051";
  // Deadline of each call, retries included.
  absl::Duration timeout = absl::Seconds(10);
  // Attempts per call while the server answers UNAVAILABLE or CANCELLED (1 = no retry).
  int max_attempts = 5;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(2);
  // Sent as "authorization: Bearer <token>" on every call when set.
  std::string bearer_token;
  // TLS: PEM CA certificates to verify the server with; empty with use_tls means the system roots.
  // For mutual TLS, the client's PEM certificate chain and key.
  bool use_tls = false;
  std::string tls_ca_pem;
  std::string tls_cert_pem;
  std::string tls_key_pem;
};

// The channel credentials `options` describe.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ClientOptions& options);

// The gRPC target for ClientOptions::target: a target URI or a single HOST:PORT as it is; a list
// as "ipv4:a:p,b:p" (or ipv6:), its names resolved now. InvalidArgument naming --target for an
// empty entry, a missing port or mixed address families; Unavailable when a name does not resolve.
absl::StatusOr<std::string> ChannelTarget(absl::string_view addresses);
// The channel's service config: round_robin over every address of the target, and, with
// max_attempts > 1, gRPC's retry on UNAVAILABLE (up to 3 tries, each on the next replica) for the
// reads and the mutations safe to repeat (CreateJob and UpdateJob carry a request_id; a repeated
// metric report is a no-op). DeleteJob and WatchJob are left to the caller.
std::string ServiceConfigJson(const ClientOptions& options);
// The channel Client(options) opens: ChannelTarget, ServiceConfigJson, retries on. Errors as
// ChannelTarget's.
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const ClientOptions& options);

// Thread-safe. Errors are the server's status (code and message) as absl::Status; DEADLINE_EXCEEDED
// when the call's deadline passes; UNAVAILABLE after the last attempt.
class Client {
 public:
  // Connects lazily (OpenChannel), with the credentials of `options`. When options.target is
  // not valid, every call answers OpenChannel's error.
  explicit Client(ClientOptions options);
  Client(std::shared_ptr<grpc::ChannelInterface> channel, ClientOptions options);

  // CreateJob with a request_id (one is generated when empty), so retries never create twice.
  absl::StatusOr<v1::Job> CreateJob(absl::string_view job_id, const v1::Job& job,
                                    std::string request_id = "");
  absl::StatusOr<v1::Job> GetJob(absl::string_view job_id);
  // `filter`: ListJobsRequest.filter (empty: every job).
  absl::StatusOr<v1::ListJobsResponse> ListJobs(int page_size, absl::string_view page_token,
                                                absl::string_view filter = "");
  absl::Status DeleteJob(absl::string_view job_id);
  absl::StatusOr<v1::GetValuesResponse> GetValues(const v1::GetValuesRequest& request);
  absl::StatusOr<v1::BatchGetValuesResponse> BatchGetValues(
      const v1::BatchGetValuesRequest& request);
  absl::StatusOr<v1::PreviewResponse> Preview(const v1::PreviewRequest& request);
  // UpdateJob with a request_id (one is generated when the request has none), so a retry never
  // applies a change twice.
  absl::StatusOr<v1::Job> UpdateJob(v1::UpdateJobRequest request);
  absl::StatusOr<v1::ReportMetricsResponse> ReportMetrics(const v1::ReportMetricsRequest& request);
  // Opens a WatchJob stream that ends at `deadline` at the latest. Not retried: a caller that
  // wants to follow a job across server restarts opens a new stream (the snapshot tells it where it
  // is).
  std::unique_ptr<class WatchStream> WatchJob(absl::string_view job_id,
                                              absl::Time deadline = absl::InfiniteFuture());

  const ClientOptions& options() const { return options_; }

 private:
  template <typename Request, typename Response, typename Method>
  absl::StatusOr<Response> Call(Method method, const Request& request);

  ClientOptions options_;
  // OpenChannel's error, answered by every call; OK otherwise.
  absl::Status channel_error_;
  std::unique_ptr<v1::SchedulerService::Stub> stub_;
};

// One WatchJob stream. Next() blocks; Cancel() may be called from any thread and makes a blocked
// Next() return CANCELLED.
class WatchStream {
 public:
  WatchStream(v1::SchedulerService::Stub* stub, const ClientOptions& options,
              absl::string_view job_id, absl::Time deadline);
  ~WatchStream();

  // The next event. When the stream ends: OutOfRange after the delete event, otherwise the status
  // the server ended it with (NOT_FOUND for an unknown job, DEADLINE_EXCEEDED at the deadline,
  // UNAVAILABLE when the server went away, OK mapped to OutOfRange at a graceful shutdown).
  absl::StatusOr<v1::WatchJobResponse> Next();
  void Cancel();

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::WatchJobResponse>> reader_;
  bool done_ = false;
};

// "jobs/{job_id}" for a bare id; a name is returned as it is.
std::string ToJobName(absl::string_view job_id);

}  // namespace hpsched::client

#endif  // HPSCHED_CLIENT_CLIENT_H_
