// The JSON API: HTTP requests mapped onto SchedulerService calls the way grpc-gateway maps a
// service with google.api.http rules (docs/http.md lists every route):
//   GET    /v1/jobs                         ListJobs        (filter, page_size, page_token)
//   POST   /v1/jobs                         CreateJob       body: the Job; job_id, request_id in
//   the query GET    /v1/jobs/{id}                    GetJob PATCH  /v1/jobs/{id} UpdateJob body:
//   the UpdateJobRequest DELETE /v1/jobs/{id}                    DeleteJob GET /v1/jobs/{id}:values
//   GetValues       (step, count, hyperparameters, pending_policy) POST /v1/jobs/{id}:reportMetrics
//   ReportMetrics   body: the ReportMetricsRequest POST   /v1/jobs:batchGetValues BatchGetValues
//   body: the BatchGetValuesRequest POST   /v1/preview                      Preview         body:
//   the PreviewRequest GET    /v1/jobs/{id}:watch              WatchJob        (server-sent events;
//   the listener streams it)
//
// A front end, like the gRPC server: it knows no rules. Each request becomes the RPC's request
// message (path variable, then query parameters by field name through reflection, or the body in
// the protobuf JSON mapping through codec/api_json.h) and is sent over `channel`, an in-process
// channel to the server's own SchedulerService, with the caller's Authorization header as the
// "authorization" metadata. So values, validation, roles (service/auth.h's table, checked by the
// server's interceptor) and error codes are the gRPC service's by construction.
//
// Errors are google.rpc.Status JSON ({"code", "message", "details"}) with the HTTP status
// grpc-gateway gives the gRPC code (HttpStatusFromCode). Thread-safe; holds no state per request.
#ifndef HPSCHED_HTTP_JSON_API_H_
#define HPSCHED_HTTP_JSON_API_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "hpsched/v1/scheduler_service.grpc.pb.h"

namespace hpsched::http {

struct ApiRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // Decoded, without the query: "/v1/jobs/exp-1:values".
  // Decoded query parameters in order; a repeated field takes a parameter per element
  // (?hyperparameters=lr&hyperparameters=momentum).
  std::vector<std::pair<std::string, std::string>> query;
  std::string body;
  // The Authorization header as sent ("Bearer <token>"), empty when absent.
  std::string authorization;
  // The Grpc-Timeout header as sent (grpc-gateway reads it as the call's deadline), empty when
  // absent: then a unary call gets JsonApiOptions::call_timeout, and a watch none.
  std::string grpc_timeout;
};

struct ApiReply {
  int http_status = 200;
  std::string body;  // JSON: the response message, or a google.rpc.Status.
};

struct JsonApiOptions {
  // Deadline of a call that sends no Grpc-Timeout header. A GetValues waiting for metric reports
  // (pending_policy) waits until near it, as over gRPC.
  absl::Duration call_timeout = absl::Seconds(30);
};

// grpc-gateway's HTTPStatusFromCode: 400 for INVALID_ARGUMENT, FAILED_PRECONDITION and
// OUT_OF_RANGE, 401, 403, 404, 409 for ALREADY_EXISTS and ABORTED, 429 for RESOURCE_EXHAUSTED,
// 499 for CANCELLED, 501, 503, 504, 500 for the rest.
int HttpStatusFromCode(int grpc_code);

// {"code": <code>, "message": "<message>", "details": []}.
std::string StatusJson(int grpc_code, absl::string_view message);
// An error reply: StatusJson with its HTTP status.
ApiReply ErrorReply(int grpc_code, absl::string_view message);
ApiReply ErrorReply(const absl::Status& status);

// Parses a Grpc-Timeout header value ("<digits><unit>", unit H, M, S, m, u or n).
// InvalidArgument naming the header otherwise.
absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value);

class JsonApi {
 public:
  JsonApi(std::shared_ptr<grpc::ChannelInterface> channel, JsonApiOptions options);

  // Answers a request of a unary route. 404 NOT_FOUND JSON when no route has the path, 405
  // UNIMPLEMENTED JSON when routes have it but not for this method (grpc-gateway's answers).
  ApiReply Handle(const ApiRequest& request) const;

  // True for GET /v1/jobs/{id}:watch, which the listener streams (see event_stream.h).
  static bool IsWatch(const ApiRequest& request);
  // The WatchJobRequest of a watch route (path variable, then query parameters), or
  // InvalidArgument naming the parameter that does not fit.
  static absl::StatusOr<hpsched::v1::WatchJobRequest> WatchRequest(const ApiRequest& request);

  // Sets up `context` for a call on behalf of `request`: the authorization metadata, and the
  // deadline (Grpc-Timeout, else `default_timeout`; InfiniteDuration: none). InvalidArgument when
  // the Authorization header cannot be sent as metadata or Grpc-Timeout does not parse.
  static absl::Status Prepare(const ApiRequest& request, absl::Duration default_timeout,
                              grpc::ClientContext* context);

  hpsched::v1::SchedulerService::Stub* stub() const { return stub_.get(); }

 private:
  std::unique_ptr<hpsched::v1::SchedulerService::Stub> stub_;
  JsonApiOptions options_;
};

}  // namespace hpsched::http

#endif  // HPSCHED_HTTP_JSON_API_H_
