#include "client/client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <thread>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hpsched::client {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::string NewRequestId() {
  absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

}  // namespace

std::string ToJobName(absl::string_view job_id) {
  return absl::StartsWith(job_id, "jobs/") ? std::string(job_id) : absl::StrCat("jobs/", job_id);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ClientOptions& options) {
  if (!options.use_tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = options.tls_ca_pem;
  ssl.pem_cert_chain = options.tls_cert_pem;
  ssl.pem_private_key = options.tls_key_pem;
  return grpc::SslCredentials(ssl);
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = OpenChannel(options_);
  if (!channel.ok()) {
    channel_error_ = channel.status();
    channel = grpc::CreateChannel("localhost:0", grpc::InsecureChannelCredentials());
  }
  stub_ = v1::SchedulerService::NewStub(*std::move(channel));
}

Client::Client(std::shared_ptr<grpc::ChannelInterface> channel, ClientOptions options)
    : options_(std::move(options)), stub_(v1::SchedulerService::NewStub(std::move(channel))) {}

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> Client::Call(Method method, const Request& request) {
  if (!channel_error_.ok()) return channel_error_;
  const absl::Time deadline = absl::Now() + options_.timeout;
  absl::Duration backoff = options_.initial_backoff;
  absl::BitGen gen;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    if (!options_.bearer_token.empty()) {
      context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.bearer_token));
    }
    Response response;
    const grpc::Status status = (stub_.get()->*method)(&context, request, &response);
    if (status.ok()) return response;
    // CANCELLED too: this client never cancels its own calls, so the server ended the call (a
    // replica stopping past its shutdown grace); every call here is safe to repeat, as for
    // UNAVAILABLE (reads, request_id mutations, reports; a repeated delete says NOT_FOUND).
    const bool retryable = status.error_code() == grpc::StatusCode::UNAVAILABLE ||
                           status.error_code() == grpc::StatusCode::CANCELLED;
    if (!retryable || attempt >= options_.max_attempts) {
      return FromGrpc(status);
    }
    // Full jitter: sleep a random fraction of the backoff, never past the deadline.
    const absl::Duration sleep =
        std::min(backoff * absl::Uniform(gen, 0.0, 1.0), deadline - absl::Now());
    if (sleep <= absl::ZeroDuration()) return FromGrpc(status);
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(sleep));
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::StatusOr<v1::Job> Client::CreateJob(absl::string_view job_id, const v1::Job& job,
                                          std::string request_id) {
  v1::CreateJobRequest request;
  request.set_job_id(std::string(job_id));
  *request.mutable_job() = job;
  request.set_request_id(request_id.empty() ? NewRequestId() : std::move(request_id));
  return Call<v1::CreateJobRequest, v1::Job>(&v1::SchedulerService::Stub::CreateJob, request);
}

absl::StatusOr<v1::Job> Client::GetJob(absl::string_view job_id) {
  v1::GetJobRequest request;
  request.set_name(ToJobName(job_id));
  return Call<v1::GetJobRequest, v1::Job>(&v1::SchedulerService::Stub::GetJob, request);
}

absl::StatusOr<v1::ListJobsResponse> Client::ListJobs(int page_size, absl::string_view page_token,
                                                      absl::string_view filter) {
  v1::ListJobsRequest request;
  request.set_filter(std::string(filter));
  request.set_page_size(page_size);
  request.set_page_token(std::string(page_token));
  return Call<v1::ListJobsRequest, v1::ListJobsResponse>(&v1::SchedulerService::Stub::ListJobs,
                                                         request);
}

absl::Status Client::DeleteJob(absl::string_view job_id) {
  v1::DeleteJobRequest request;
  request.set_name(ToJobName(job_id));
  return Call<v1::DeleteJobRequest, v1::DeleteJobResponse>(&v1::SchedulerService::Stub::DeleteJob,
                                                           request)
      .status();
}

absl::StatusOr<v1::GetValuesResponse> Client::GetValues(const v1::GetValuesRequest& request) {
  return Call<v1::GetValuesRequest, v1::GetValuesResponse>(&v1::SchedulerService::Stub::GetValues,
                                                           request);
}

absl::StatusOr<v1::BatchGetValuesResponse> Client::BatchGetValues(
    const v1::BatchGetValuesRequest& request) {
  return Call<v1::BatchGetValuesRequest, v1::BatchGetValuesResponse>(
      &v1::SchedulerService::Stub::BatchGetValues, request);
}

absl::StatusOr<v1::PreviewResponse> Client::Preview(const v1::PreviewRequest& request) {
  return Call<v1::PreviewRequest, v1::PreviewResponse>(&v1::SchedulerService::Stub::Preview,
                                                       request);
}

absl::StatusOr<v1::Job> Client::UpdateJob(v1::UpdateJobRequest request) {
  request.set_name(ToJobName(request.name()));
  if (request.request_id().empty()) request.set_request_id(NewRequestId());
  return Call<v1::UpdateJobRequest, v1::Job>(&v1::SchedulerService::Stub::UpdateJob, request);
}

absl::StatusOr<v1::ReportMetricsResponse> Client::ReportMetrics(
    const v1::ReportMetricsRequest& request) {
  // Safe to retry: the same report again is a no-op on the server.
  return Call<v1::ReportMetricsRequest, v1::ReportMetricsResponse>(
      &v1::SchedulerService::Stub::ReportMetrics, request);
}

std::unique_ptr<WatchStream> Client::WatchJob(absl::string_view job_id, absl::Time deadline) {
  return std::make_unique<WatchStream>(stub_.get(), options_, job_id, deadline);
}

WatchStream::WatchStream(v1::SchedulerService::Stub* stub, const ClientOptions& options,
                         absl::string_view job_id, absl::Time deadline) {
  if (deadline != absl::InfiniteFuture()) context_.set_deadline(absl::ToChronoTime(deadline));
  if (!options.bearer_token.empty()) {
    context_.AddMetadata("authorization", absl::StrCat("Bearer ", options.bearer_token));
  }
  v1::WatchJobRequest request;
  request.set_job(ToJobName(job_id));
  reader_ = stub->WatchJob(&context_, request);
}

WatchStream::~WatchStream() {
  if (!done_) {
    context_.TryCancel();
    (void)reader_->Finish();
  }
}

absl::StatusOr<v1::WatchJobResponse> WatchStream::Next() {
  if (done_) return absl::OutOfRangeError("the watch stream has ended");
  v1::WatchJobResponse event;
  if (reader_->Read(&event)) return event;
  done_ = true;
  const grpc::Status status = reader_->Finish();
  if (status.ok()) return absl::OutOfRangeError("the watch stream has ended");
  return FromGrpc(status);
}

void WatchStream::Cancel() { context_.TryCancel(); }

}  // namespace hpsched::client
