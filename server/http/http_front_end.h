// The HTTP listener of hpsched-server (cpp-httplib, Debian's libcpp-httplib built with OpenSSL):
// the JSON API (json_api.h) and its server-sent events (event_stream.h) under /v1/, and the
// dashboard's static files (web/web_assets.h) everywhere else, "/" being /index.html; /metrics when
// the server hands its metrics over.
//
// A front end, like the gRPC server: every API request is a call over `channel`, an in-process
// channel to the server's own SchedulerService, so the service's interceptors decide roles exactly
// as for gRPC. Pages are not calls; `authorize_page` (the server wires the same Authenticator, role
// reader) decides them.
//
// Credentials: the Authorization header ("Bearer <token>"); for GET and HEAD only, also the cookie
// hpsched_token=<token>, since a browser's page loads and EventSource cannot set headers. A cookie
// never authorizes a write, so another site cannot make a browser write with it (CSRF).
//
// Bounds: request bodies (max_body_bytes: 413 beyond), headers and the request line (8 KiB each,
// cpp-httplib's compiled limits: 400 / 414 beyond), event streams open at once (max_streams: 429
// beyond), worker threads (threads; each connection holds one while it is open, idle keep-alive
// connections for at most 2 s), a client that stops reading (5 s per write, then the connection is
// closed).
//
// Shutdown ends every event stream at once (its call is cancelled; the client gets the close) and
// waits for the workers, which finish within the keep-alive and write timeouts.
#ifndef HPSCHED_HTTP_HTTP_FRONT_END_H_
#define HPSCHED_HTTP_HTTP_FRONT_END_H_

#include <grpcpp/channel.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "http/json_api.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace hpsched::http {

class EventStream;

struct HttpOptions {
  // Where to listen, as the server's other listeners take it: "[::]", "0.0.0.0", "127.0.0.1",
  // "[::1]", "localhost". The caller has run CheckCanListen and the loopback rule already.
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port (see HttpFrontEnd::port()).
  // PEM files (checked by the caller); both empty: plaintext. With tls_client_ca, clients must
  // present a certificate signed by it.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  size_t max_body_bytes = 4 << 20;
  // Event streams (GET /v1/jobs/{id}:watch) open at once; fewer than `threads`, so that reads are
  // still served while every stream is open.
  int max_streams = 32;
  // Worker threads; 0: max_streams + 16.
  int threads = 0;
  // A comment line (": heartbeat") on an event stream idle this long, so that proxies keep it
  // open and a vanished client is noticed.
  absl::Duration heartbeat = absl::Seconds(15);
  JsonApiOptions api;
  // The Prometheus text of the server's metrics, served at GET /metrics (role reader, like a page);
  // nullptr: no /metrics here.
  std::function<std::string()> metrics_text;
  // OK when `authorization` ("Bearer <token>", empty when none was sent) may read pages; the
  // Unauthenticated / PermissionDenied status otherwise. nullptr: pages are open.
  std::function<absl::Status(absl::string_view authorization)> authorize_page;
};

class HttpFrontEnd {
 public:
  // Binds and starts serving. InvalidArgument for options that do not fit (TLS files OpenSSL
  // refuses, max_streams >= threads); Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpFrontEnd>> Start(
      const HttpOptions& options, std::shared_ptr<grpc::ChannelInterface> channel);
  // Shuts down (see Shutdown).
  ~HttpFrontEnd();

  // The bound port.
  int port() const { return port_; }
  // Event streams open now.
  int open_streams() const { return open_streams_.load(); }

  // Stops accepting, ends the event streams, waits for the workers. Idempotent.
  void Shutdown();

 private:
  HttpFrontEnd(const HttpOptions& options, std::shared_ptr<grpc::ChannelInterface> channel);

  void Dispatch(const httplib::Request& request, httplib::Response& response);
  void ServePage(const httplib::Request& request, const std::string& authorization,
                 httplib::Response& response);
  void ServeWatch(const ApiRequest& request, httplib::Response& response);

  const HttpOptions options_;
  JsonApi api_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  int port_ = 0;
  std::atomic<int> open_streams_{0};

  absl::Mutex mutex_;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  absl::flat_hash_set<EventStream*> streams_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hpsched::http

#endif  // HPSCHED_HTTP_HTTP_FRONT_END_H_
