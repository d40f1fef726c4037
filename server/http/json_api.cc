#include "http/json_api.h"

#include <google/protobuf/descriptor.h>

#include <chrono>
#include <functional>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "codec/api_json.h"
#include "http/query_params.h"
#include "http/rpc_status.pb.h"

namespace hpsched::http {
namespace {

using google::protobuf::Message;
using Stub = hpsched::v1::SchedulerService::Stub;

// One google.api.http rule. The path is `prefix`, then (when `variable` is set) one segment
// without '/' or ':' that becomes "jobs/<segment>" in the request field `variable`, then `suffix`
// (a custom verb such as ":values").
struct Route {
  const char* method;
  const char* prefix;
  const char* variable;  // nullptr: no path variable.
  const char* suffix;
  // "*": the body is the whole request; a field name: the body is that field; nullptr: no body,
  // the query parameters fill the request.
  const char* body;
  std::function<std::unique_ptr<Message>()> new_request;
  std::function<std::unique_ptr<Message>()> new_response;
  std::function<grpc::Status(Stub*, grpc::ClientContext*, const Message&, Message*)> call;
};

template <typename Req, typename Resp>
Route Unary(const char* method, const char* prefix, const char* variable, const char* suffix,
            const char* body, grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Req&, Resp*)) {
  return Route{
      method,
      prefix,
      variable,
      suffix,
      body,
      [] { return std::make_unique<Req>(); },
      [] { return std::make_unique<Resp>(); },
      [rpc](Stub* stub, grpc::ClientContext* context, const Message& request, Message* response) {
        return (stub->*rpc)(context, static_cast<const Req&>(request),
                            static_cast<Resp*>(response));
      }};
}

const std::vector<Route>& Routes() {
  using namespace hpsched::v1;  // NOLINT: the request and response types of the table.
  static const std::vector<Route>* routes = new std::vector<Route>{
      Unary("GET", "/v1/jobs", nullptr, "", nullptr, &Stub::ListJobs),
      Unary("POST", "/v1/jobs", nullptr, "", "job", &Stub::CreateJob),
      Unary("POST", "/v1/jobs:batchGetValues", nullptr, "", "*", &Stub::BatchGetValues),
      Unary("POST", "/v1/preview", nullptr, "", "*", &Stub::Preview),
      Unary("GET", "/v1/jobs/", "name", "", nullptr, &Stub::GetJob),
      Unary("PATCH", "/v1/jobs/", "name", "", "*", &Stub::UpdateJob),
      Unary("DELETE", "/v1/jobs/", "name", "", nullptr, &Stub::DeleteJob),
      Unary("GET", "/v1/jobs/", "job", ":values", nullptr, &Stub::GetValues),
      Unary("GET", "/v1/jobs/", "job", ":metricReports", nullptr, &Stub::GetMetricReports),
      Unary("POST", "/v1/jobs/", "job", ":reportMetrics", "*", &Stub::ReportMetrics),
  };
  return *routes;
}

constexpr absl::string_view kWatchPrefix = "/v1/jobs/";
constexpr absl::string_view kWatchSuffix = ":watch";

// The path variable's segment when `path` has the route's shape; nullopt otherwise.
std::optional<absl::string_view> MatchPath(absl::string_view path, absl::string_view prefix,
                                           bool has_variable, absl::string_view suffix) {
  if (!absl::ConsumePrefix(&path, prefix) || !absl::ConsumeSuffix(&path, suffix)) {
    return std::nullopt;
  }
  if (!has_variable) {
    if (!path.empty()) return std::nullopt;
    return absl::string_view();
  }
  if (path.empty() || absl::StrContains(path, '/') || absl::StrContains(path, ':')) {
    return std::nullopt;
  }
  return path;
}

void SetPathVariable(Message* request, const char* field, absl::string_view segment) {
  const google::protobuf::FieldDescriptor* f = request->GetDescriptor()->FindFieldByName(field);
  request->GetReflection()->SetString(request, f, absl::StrCat("jobs/", segment));
}

// Fills `request` from the HTTP request as grpc-gateway does: the body (into the body field, or
// the whole message), the path variable over it, then the query parameters (not for body "*").
absl::Status BuildRequest(const Route& route, const ApiRequest& http, absl::string_view segment,
                          Message* request) {
  if (route.body != nullptr) {
    const absl::string_view body = absl::StripAsciiWhitespace(http.body);
    const std::string what = absl::StrCat(
        "request body (", request->GetDescriptor()->full_name(),
        route.body == absl::string_view("*") ? "" : absl::StrCat(".", route.body), ")");
    if (!body.empty()) {
      Message* target = request;
      if (absl::string_view(route.body) != "*") {
        const auto* f = request->GetDescriptor()->FindFieldByName(route.body);
        target = request->GetReflection()->MutableMessage(request, f);
      }
      if (absl::Status s = codec::MergeApiJson(body, what, target); !s.ok()) return s;
    }
  }
  if (route.variable != nullptr) SetPathVariable(request, route.variable, segment);
  if (route.body == nullptr || absl::string_view(route.body) != "*") {
    return ApplyQueryParams(http.query, request);
  }
  if (!http.query.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter ", http.query.front().first,
                     ": this route takes its whole request in the body"));
  }
  return absl::OkStatus();
}

bool PrintableAscii(absl::string_view value) {
  for (char c : value) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

int HttpStatusFromCode(int grpc_code) {
  switch (static_cast<grpc::StatusCode>(grpc_code)) {
    case grpc::StatusCode::OK:
      return 200;
    case grpc::StatusCode::CANCELLED:
      return 499;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE:
      return 400;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return 504;
    case grpc::StatusCode::NOT_FOUND:
      return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED:
      return 409;
    case grpc::StatusCode::PERMISSION_DENIED:
      return 403;
    case grpc::StatusCode::UNAUTHENTICATED:
      return 401;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return 429;
    case grpc::StatusCode::UNIMPLEMENTED:
      return 501;
    case grpc::StatusCode::UNAVAILABLE:
      return 503;
    default:  // UNKNOWN, INTERNAL, DATA_LOSS.
      return 500;
  }
}

std::string StatusJson(int grpc_code, absl::string_view message) {
  Status status;
  status.set_code(grpc_code);
  status.set_message(std::string(message));
  std::string json;
  (void)codec::PrintApiJson(status, &json);
  return json;
}

ApiReply ErrorReply(int grpc_code, absl::string_view message) {
  return ApiReply{HttpStatusFromCode(grpc_code), StatusJson(grpc_code, message)};
}

ApiReply ErrorReply(const absl::Status& status) {
  return ErrorReply(static_cast<int>(status.code()), status.message());
}

absl::StatusOr<absl::Duration> ParseGrpcTimeout(absl::string_view value) {
  const absl::Status bad = absl::InvalidArgumentError(absl::StrCat(
      "Grpc-Timeout header: must be digits and a unit (H, M, S, m, u or n), got \"", value, "\""));
  if (value.size() < 2 || value.size() > 9) return bad;
  int64_t amount;
  if (!absl::SimpleAtoi(value.substr(0, value.size() - 1), &amount) || amount < 0) return bad;
  switch (value.back()) {
    case 'H':
      return absl::Hours(amount);
    case 'M':
      return absl::Minutes(amount);
    case 'S':
      return absl::Seconds(amount);
    case 'm':
      return absl::Milliseconds(amount);
    case 'u':
      return absl::Microseconds(amount);
    case 'n':
      return absl::Nanoseconds(amount);
  }
  return bad;
}

JsonApi::JsonApi(std::shared_ptr<grpc::ChannelInterface> channel, JsonApiOptions options)
    : stub_(hpsched::v1::SchedulerService::NewStub(channel)), options_(options) {}

absl::Status JsonApi::Prepare(const ApiRequest& request, absl::Duration default_timeout,
                              grpc::ClientContext* context) {
  absl::Duration timeout = default_timeout;
  if (!request.grpc_timeout.empty()) {
    absl::StatusOr<absl::Duration> parsed = ParseGrpcTimeout(request.grpc_timeout);
    if (!parsed.ok()) return parsed.status();
    timeout = *parsed;
  }
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(timeout));
  }
  if (!request.authorization.empty()) {
    if (!PrintableAscii(request.authorization)) {
      return absl::InvalidArgumentError(
          "Authorization header: must be \"Bearer <token>\" in printable ASCII");
    }
    context->AddMetadata("authorization", request.authorization);
  }
  return absl::OkStatus();
}

bool JsonApi::IsWatch(const ApiRequest& request) {
  return request.method == "GET" &&
         MatchPath(request.path, kWatchPrefix, true, kWatchSuffix).has_value();
}

absl::StatusOr<hpsched::v1::WatchJobRequest> JsonApi::WatchRequest(const ApiRequest& request) {
  std::optional<absl::string_view> segment =
      MatchPath(request.path, kWatchPrefix, true, kWatchSuffix);
  hpsched::v1::WatchJobRequest watch;
  if (!segment.has_value()) return absl::NotFoundError("not a watch route");
  SetPathVariable(&watch, "job", *segment);
  if (absl::Status s = ApplyQueryParams(request.query, &watch); !s.ok()) return s;
  return watch;
}

ApiReply JsonApi::Handle(const ApiRequest& request) const {
  bool path_known = false;
  for (const Route& route : Routes()) {
    std::optional<absl::string_view> segment =
        MatchPath(request.path, route.prefix, route.variable != nullptr, route.suffix);
    if (!segment.has_value()) continue;
    path_known = true;
    if (request.method != route.method) continue;
    std::unique_ptr<Message> rpc_request = route.new_request();
    if (absl::Status s = BuildRequest(route, request, *segment, rpc_request.get()); !s.ok()) {
      return ErrorReply(s);
    }
    grpc::ClientContext context;
    if (absl::Status s = Prepare(request, options_.call_timeout, &context); !s.ok()) {
      return ErrorReply(s);
    }
    std::unique_ptr<Message> response = route.new_response();
    const grpc::Status status = route.call(stub_.get(), &context, *rpc_request, response.get());
    if (!status.ok()) return ErrorReply(status.error_code(), status.error_message());
    ApiReply reply;
    if (absl::Status s = codec::PrintApiJson(*response, &reply.body); !s.ok()) {
      return ErrorReply(s);
    }
    return reply;
  }
  if (path_known || MatchPath(request.path, kWatchPrefix, true, kWatchSuffix).has_value()) {
    // grpc-gateway's answer to a known path with another method: 405, code UNIMPLEMENTED.
    const int code = static_cast<int>(grpc::StatusCode::UNIMPLEMENTED);
    return ApiReply{405, StatusJson(code, absl::StrCat(request.method, " ", request.path,
                                                       ": method not allowed"))};
  }
  return ErrorReply(static_cast<int>(grpc::StatusCode::NOT_FOUND),
                    absl::StrCat(request.path, ": no such route"));
}

}  // namespace hpsched::http
