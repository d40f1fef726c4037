#include "http/http_front_end.h"

#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "codec/api_json.h"
#include "http/event_stream.h"
#include "web/web_assets.h"

namespace hpsched::http {
namespace {

// Events a stream holds for a slow client before it stops reading from the service.
constexpr size_t kMaxQueuedEvents = 16;
constexpr char kTokenCookie[] = "hpsched_token";

// SO_REUSEADDR (connections in TIME_WAIT do not block a restart) and, unlike cpp-httplib's default,
// no SO_REUSEPORT: a second process must fail to bind instead of sharing the port
// (listen_address.h).
void SocketOptions(int sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

// cpp-httplib takes host names and unbracketed literals.
std::string BindHost(absl::string_view host) {
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host.remove_prefix(1);
    host.remove_suffix(1);
  }
  return std::string(host);
}

// FNV-1a, 64 bits: a stable strong validator of an asset's bytes across restarts.
std::string ETagOf(std::string_view body) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : body) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrCat("\"", absl::Hex(h, absl::kZeroPad16), "\"");
}

// The bearer credentials of a request: the Authorization header, else (reads only) the
// hpsched_token cookie as "Bearer <token>".
std::string Authorization(const httplib::Request& request) {
  std::string header = request.get_header_value("Authorization");
  if (!header.empty() || (request.method != "GET" && request.method != "HEAD")) return header;
  for (size_t i = 0; i < request.get_header_value_count("Cookie"); ++i) {
    for (absl::string_view cookie :
         absl::StrSplit(request.get_header_value("Cookie", i), ';', absl::SkipWhitespace())) {
      cookie = absl::StripAsciiWhitespace(cookie);
      if (absl::ConsumePrefix(&cookie, kTokenCookie) && absl::ConsumePrefix(&cookie, "=") &&
          !cookie.empty()) {
        return absl::StrCat("Bearer ", cookie);
      }
    }
  }
  return "";
}

constexpr const char* kJsonType = "application/json; charset=utf-8";

void SetJson(httplib::Response& response, const ApiReply& reply) {
  response.status = reply.http_status;
  if (reply.http_status == 401) response.set_header("WWW-Authenticate", "Bearer realm=\"hpsched\"");
  response.set_header("Cache-Control", "no-store");
  // With a parameter, so cpp-httplib does not compress it: Debian's build picks brotli at its top
  // quality for any browser (Accept-Encoding: br), which took 18 s for the 2 MB of 10^5 values
  // (0.5 s uncompressed, on loopback where the bytes cost nothing). docs/dashboard.md.
  response.set_content(reply.body, kJsonType);
}

ApiRequest ToApiRequest(const httplib::Request& request, std::string authorization) {
  ApiRequest api;
  api.method = request.method;
  api.path = request.path;
  // From the request target only: cpp-httplib also puts the fields of a form-encoded body (what
  // curl -d sends by default) into request.params.
  const size_t question = request.target.find('?');
  if (question != std::string::npos) {
    httplib::Params query;
    httplib::detail::parse_query_text(request.target.substr(question + 1), query);
    for (const auto& [key, value] : query) api.query.emplace_back(key, value);
  }
  api.body = request.body;
  api.authorization = std::move(authorization);
  api.grpc_timeout = request.get_header_value("Grpc-Timeout");
  return api;
}

// The TLS context: TLS 1.2 or newer, the server's chain and key, and with a client CA, client
// certificates required and verified (as the gRPC port does).
bool SetUpTls(const HttpOptions& options, SSL_CTX& context) {
  SSL_CTX_set_min_proto_version(&context, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(&context, options.tls_cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(&context, options.tls_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(&context) != 1) {
    return false;
  }
  if (!options.tls_client_ca.empty()) {
    if (SSL_CTX_load_verify_locations(&context, options.tls_client_ca.c_str(), nullptr) != 1) {
      return false;
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.tls_client_ca.c_str());
    if (names != nullptr) SSL_CTX_set_client_CA_list(&context, names);
    SSL_CTX_set_verify(&context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return true;
}

// Bodies for the errors cpp-httplib answers itself (413, 414, 400, ...), in the API's form.
int CodeForHttpStatus(int status) {
  switch (status) {
    case 404:
      return static_cast<int>(grpc::StatusCode::NOT_FOUND);
    case 413:
      return static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED);
    case 503:
      return static_cast<int>(grpc::StatusCode::UNAVAILABLE);
    case 500:
      return static_cast<int>(grpc::StatusCode::INTERNAL);
    default:
      return static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT);
  }
}

}  // namespace

HttpFrontEnd::HttpFrontEnd(const HttpOptions& options,
                           std::shared_ptr<grpc::ChannelInterface> channel)
    : options_(options), api_(std::move(channel), options.api) {}

absl::StatusOr<std::unique_ptr<HttpFrontEnd>> HttpFrontEnd::Start(
    const HttpOptions& given, std::shared_ptr<grpc::ChannelInterface> channel) {
  HttpOptions options = given;
  if (options.threads <= 0) options.threads = options.max_streams + 16;
  if (options.max_streams < 0 || options.max_streams >= options.threads) {
    return absl::InvalidArgumentError(absl::StrCat("--http_max_streams: must be >= 0 and below ",
                                                   "the listener's threads (", options.threads,
                                                   "), got ", options.max_streams));
  }
  std::unique_ptr<HttpFrontEnd> front(new HttpFrontEnd(options, std::move(channel)));
  if (options.tls_cert.empty()) {
    front->server_ = std::make_unique<httplib::Server>();
  } else {
    auto tls = std::make_unique<httplib::SSLServer>(
        [&options](SSL_CTX& context) { return SetUpTls(options, context); });
    if (!tls->is_valid()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls_cert=", options.tls_cert, ", --tls_key=", options.tls_key,
          options.tls_client_ca.empty() ? ""
                                        : absl::StrCat(", --tls_client_ca=", options.tls_client_ca),
          ": OpenSSL refused them for the HTTP listener"));
    }
    front->server_ = std::move(tls);
  }
  httplib::Server& server = *front->server_;
  const size_t threads = static_cast<size_t>(options.threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_socket_options(SocketOptions);
  // Headers and body go out in separate writes; with Nagle's algorithm the second waits for the
  // client's delayed ACK (40 ms on Linux) on every small response.
  server.set_tcp_nodelay(true);
  server.set_payload_max_length(options.max_body_bytes);
  server.set_keep_alive_timeout(2);
  server.set_keep_alive_max_count(100);
  server.set_read_timeout(5, 0);
  server.set_write_timeout(5, 0);
  HttpFrontEnd* self = front.get();
  const auto dispatch = [self](const httplib::Request& request, httplib::Response& response) {
    self->Dispatch(request, response);
  };
  server.Get(".*", dispatch);
  server.Post(".*", dispatch);
  server.Patch(".*", dispatch);
  server.Put(".*", dispatch);
  server.Delete(".*", dispatch);
  server.Options(".*", dispatch);
  server.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& request,
                                                                   httplib::Response& response) {
    if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const int code = CodeForHttpStatus(response.status);
    const bool form = absl::StartsWith(request.get_header_value("Content-Type"),
                                       "application/x-www-form-urlencoded");
    std::string message =
        response.status == 413
            ? (form ? "the request body is larger than a form-encoded body may be (8 KiB); send "
                      "it with Content-Type: application/json"
                    : "the request body is larger than the server accepts (--max_request_bytes)")
            : absl::StrCat("the HTTP listener refused the request (HTTP ", response.status,
                           response.status == 414 ? ": the request line is too long" : "",
                           response.status == 400 ? ": malformed, or a header too long" : "", ")");
    response.set_content(StatusJson(code, message), kJsonType);
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
        response.status = 500;
        response.set_content(StatusJson(static_cast<int>(grpc::StatusCode::INTERNAL),
                                        "internal error in the HTTP listener"),
                             kJsonType);
      });

  const std::string host = BindHost(options.host);
  if (options.port == 0) {
    front->port_ = server.bind_to_any_port(host);
  } else if (server.bind_to_port(host, options.port)) {
    front->port_ = options.port;
  }
  if (front->port_ <= 0) {
    front->port_ = 0;
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.host, ":", options.port, " (HTTP)"));
  }
  front->listener_ = std::thread([self] { self->server_->listen_after_bind(); });
  // stop() is a no-op before the accept loop runs, so Shutdown must not come before it. The
  // socket is bound and listening already (connections queue); this only waits for the thread.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server.is_running()) {
    return absl::UnavailableError("the HTTP listener's accept loop did not start");
  }
  return front;
}

HttpFrontEnd::~HttpFrontEnd() { Shutdown(); }

void HttpFrontEnd::BeginShutdown() {
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (EventStream* stream : streams_) stream->Cancel();
  }
  // Closes the listening socket: the accept loop ends, and the listener thread then joins the
  // workers (cpp-httplib's ThreadPool::shutdown).
  if (server_ != nullptr) server_->stop();
}

void HttpFrontEnd::Shutdown() {
  BeginShutdown();
  if (listener_.joinable()) listener_.join();
}

void HttpFrontEnd::Dispatch(const httplib::Request& request, httplib::Response& response) {
  std::string authorization = Authorization(request);
  if (request.path == "/v1" || absl::StartsWith(request.path, "/v1/")) {
    if (request.is_multipart_form_data()) {
      SetJson(response, ErrorReply(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT),
                                   "request body: must be JSON, not multipart/form-data"));
      return;
    }
    ApiRequest api = ToApiRequest(request, std::move(authorization));
    if (JsonApi::IsWatch(api)) {
      ServeWatch(api, response);
    } else {
      SetJson(response, api_.Handle(api));
    }
    return;
  }
  ServePage(request, authorization, response);
}

void HttpFrontEnd::ServePage(const httplib::Request& request, const std::string& authorization,
                             httplib::Response& response) {
  if (request.method != "GET" && request.method != "HEAD") {
    SetJson(response, ApiReply{405, StatusJson(static_cast<int>(grpc::StatusCode::UNIMPLEMENTED),
                                               absl::StrCat(request.method, " ", request.path,
                                                            ": pages are read with GET"))});
    return;
  }
  if (options_.authorize_page) {
    if (absl::Status allowed = options_.authorize_page(authorization); !allowed.ok()) {
      SetJson(response, ErrorReply(allowed));
      return;
    }
  }
  if (request.path == "/metrics" && options_.metrics_text) {
    response.set_header("Cache-Control", "no-store");
    response.set_content(options_.metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
    return;
  }
  const web::Asset* asset = web::FindAsset(request.path == "/" ? "/index.html" : request.path);
  if (asset == nullptr) {
    SetJson(response, ErrorReply(static_cast<int>(grpc::StatusCode::NOT_FOUND),
                                 absl::StrCat(request.path, ": no such page")));
    return;
  }
  const std::string etag = ETagOf(asset->body);
  // Unversioned file names: the browser keeps its copy but asks each time (a 304 is cheap).
  response.set_header("Cache-Control", "no-cache");
  response.set_header("ETag", etag);
  response.set_header("X-Content-Type-Options", "nosniff");
  response.set_header("X-Frame-Options", "DENY");
  response.set_header("Referrer-Policy", "no-referrer");
  if (request.get_header_value("If-None-Match") == etag) {
    response.status = 304;
    return;
  }
  response.set_content(asset->body.data(), asset->body.size(), std::string(asset->content_type));
}

void HttpFrontEnd::ServeWatch(const ApiRequest& request, httplib::Response& response) {
  absl::StatusOr<hpsched::v1::WatchJobRequest> watch = JsonApi::WatchRequest(request);
  if (!watch.ok()) {
    SetJson(response, ErrorReply(watch.status()));
    return;
  }
  auto context = std::make_unique<grpc::ClientContext>();
  if (absl::Status s = JsonApi::Prepare(request, absl::InfiniteDuration(), context.get());
      !s.ok()) {
    SetJson(response, ErrorReply(s));
    return;
  }
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) {
      SetJson(response, ErrorReply(static_cast<int>(grpc::StatusCode::UNAVAILABLE),
                                   "the server is shutting down"));
      return;
    }
  }
  if (open_streams_.fetch_add(1) >= options_.max_streams) {
    open_streams_.fetch_sub(1);
    SetJson(response, ErrorReply(static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED),
                                 absl::StrCat("too many event streams open (--http_max_streams=",
                                              options_.max_streams, ")")));
    return;
  }
  auto stream =
      std::make_shared<EventStream>(api_.stub(), std::move(context), *watch, kMaxQueuedEvents);
  {
    absl::MutexLock lock(&mutex_);
    if (stopping_) stream->Cancel();
    streams_.insert(stream.get());
  }
  auto release = [this, raw = stream.get()] {
    absl::MutexLock lock(&mutex_);
    streams_.erase(raw);
    open_streams_.fetch_sub(1);
  };
  // The first event (the snapshot) or the call's error, before the status line is sent: a bad
  // token or an unknown job is an ordinary error reply, not a stream.
  auto first = std::make_shared<hpsched::v1::WatchJobResponse>();
  grpc::Status end;
  const EventStream::Next next = stream->Wait(options_.api.call_timeout, first.get(), &end);
  if (next != EventStream::Next::kEvent) {
    release();
    if (next == EventStream::Next::kTimeout) {
      SetJson(response, ErrorReply(static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED),
                                   "the watch sent no first event in time"));
    } else if (end.ok()) {
      SetJson(response, ErrorReply(static_cast<int>(grpc::StatusCode::UNAVAILABLE),
                                   "the watch ended before its first event"));
    } else {
      SetJson(response, ErrorReply(end.error_code(), end.error_message()));
    }
    return;
  }
  response.set_header("Cache-Control", "no-store");
  response.set_header("X-Accel-Buffering", "no");  // nginx: do not buffer the stream.
  const absl::Duration heartbeat = options_.heartbeat;
  response.set_chunked_content_provider(
      "text/event-stream",
      [stream, first, heartbeat](size_t, httplib::DataSink& sink) mutable {
        hpsched::v1::WatchJobResponse event;
        grpc::Status status;
        EventStream::Next next = EventStream::Next::kEvent;
        if (first != nullptr) {
          event = std::move(*first);
          first.reset();
        } else {
          next = stream->Wait(heartbeat, &event, &status);
        }
        std::string chunk;
        switch (next) {
          case EventStream::Next::kEvent: {
            std::string json;
            if (!codec::PrintApiJson(event, &json).ok()) return false;
            chunk = absl::StrCat("data: ", json, "\n\n");
            break;
          }
          case EventStream::Next::kTimeout:
            chunk = ": heartbeat\n\n";
            break;
          case EventStream::Next::kEnd:
            // A delete or a shutdown ends the stream; an error is said before the close.
            if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
              const std::string error = absl::StrCat(
                  "event: error\ndata: ", StatusJson(status.error_code(), status.error_message()),
                  "\n\n");
              sink.write(error.data(), error.size());
            }
            sink.done();
            return true;
        }
        // A failed write: the client is gone; returning false closes the connection.
        return sink.write(chunk.data(), chunk.size());
      },
      [release](bool) { release(); });
}

}  // namespace hpsched::http
