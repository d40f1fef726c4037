// The hpsched server: a store, the job registry and SchedulerService behind one gRPC server, with
// health and reflection.
#ifndef HPSCHED_SERVER_SERVER_H_
#define HPSCHED_SERVER_SERVER_H_

#include <grpcpp/server.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "call_interceptor.h"
#include "core/evaluator.h"
#include "jobs/clock.h"
#include "jobs/executor.h"
#include "jobs/job_registry.h"
#include "jobs/replica_sync.h"
#include "reset_guard.h"
#include "service/scheduler_service.h"
#include "store/job_store.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace hpsched::metrics {
class PrometheusMetrics;
}  // namespace hpsched::metrics

namespace hpsched::http {
class HttpFrontEnd;
}  // namespace hpsched::http

namespace hpsched::server {

struct ServerOptions {
  // Address to listen on; "[::]" listens on every interface. Empty: "[::]" when authentication is
  // on (auth_token_file) or allow_unauthenticated_remote is set, else "127.0.0.1" (loopback only).
  // A non-loopback address with authentication off needs allow_unauthenticated_remote.
  std::string address;
  // TCP port; 0 picks a free one (see Server::port()).
  int port = 50051;
  // Serve without authentication on non-loopback addresses (gRPC and metrics): the operator wants
  // an open server. Without it and without auth_token_file, only loopback is served.
  bool allow_unauthenticated_remote = false;
  // How long Shutdown lets in-flight calls finish before cancelling them.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // "sqlite" (durable, under data_dir), "postgres" (durable, in the database at postgres_url,
  // which several servers may share) or "memory" (nothing survives a restart).
  std::string store = "sqlite";
  // libpq URI or key=value string of the postgres store; may hold a password (never logged).
  std::string postgres_url;
  std::string data_dir = "/var/lib/hpsched";
  // "full", "normal" or "off": see store::SyncMode.
  std::string sync = "full";
  // Start on a missing or empty hpsched.db where the directory's IDENTITY says a database that
  // held jobs was (otherwise the start is refused).
  bool accept_empty_store = false;
  // The sqlite and postgres stores' served marks: written in the background every
  // served_mark_interval, each with a reservation served_mark_reserve steps ahead; a read past a
  // reservation waits for the next one to be durable (see JobRegistry::StartServedMarkFlusher).
  absl::Duration served_mark_interval = absl::Seconds(1);
  int64_t served_mark_reserve = 10'000;
  // Replicas (the postgres store; docs/replicas.md): this replica's name among those sharing the
  // database (empty: host name and process id), its lease, how long an update waits for the other
  // replicas' exact marks, and the catch-up's safety-net interval.
  std::string replica_id;
  absl::Duration replica_lease = absl::Seconds(10);
  absl::Duration replica_fence_timeout = absl::Seconds(1);
  absl::Duration replica_catchup_interval = absl::Seconds(1);
  // TLS: PEM files of the server's certificate chain and key; with tls_client_ca, clients must
  // present a certificate signed by that CA (mutual TLS). All empty: plaintext.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Bearer tokens with roles (see service/auth.h); empty: authentication off.
  std::string auth_token_file;
  // Limits. A CreateJob beyond max_jobs answers RESOURCE_EXHAUSTED; so does a request larger than
  // max_request_bytes (gRPC rejects it before it is parsed).
  size_t max_jobs = 1'000'000;
  int max_request_bytes = 4 << 20;
  // HTTP/2 streams (calls) in flight per connection; further calls wait in the client.
  int max_concurrent_streams = 256;
  // Memory gRPC may use for calls in flight, in total; beyond it new calls are refused with
  // RESOURCE_EXHAUSTED.
  int64_t max_call_memory_bytes = int64_t{1} << 30;
  // Open WatchJob streams and GetValues calls waiting for metric reports.
  service::ServiceLimits limits;
  // The evaluator of every value served (--evaluator): the vector path, or the scalar reference.
  core::EvaluatorOptions evaluator;
  // A connection on which at least this many calls ended before their request message arrived, and
  // more than half of its calls, is closed (HTTP/2 rapid reset; see reset_guard.h). 0: off.
  int64_t reset_flood_threshold = 1000;
  // Threads gRPC may use for calls (grpc::ResourceQuota::SetMaxThreads); 0 leaves gRPC's default.
  int max_threads = 0;
  // Connections: closed after max_connection_idle without calls, and asked to reconnect (GOAWAY)
  // after max_connection_age, calls in flight then get max_connection_age_grace to finish.
  // InfiniteDuration turns a bound off.
  absl::Duration max_connection_idle = absl::Minutes(30);
  absl::Duration max_connection_age = absl::InfiniteDuration();
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  // Server keepalive pings on idle connections, and the answer it waits for.
  absl::Duration keepalive_time = absl::Hours(2);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Client pings closer than this (without data in between) count as strikes; after two the
  // connection is closed with GOAWAY ENHANCE_YOUR_CALM (keepalive enforcement).
  absl::Duration min_client_ping_interval = absl::Minutes(5);
  // Prometheus /metrics over HTTP on metrics_address:metrics_port; port 0 disables it. "[::]" is
  // every interface, IPv6 and IPv4. Empty: as for `address` ("[::]" or "127.0.0.1").
  std::string metrics_address;
  int metrics_port = 9464;
  // A plaintext listener that serves only grpc.health.v1.Health (the same statuses as the main
  // port), for probes that cannot speak TLS (Kubernetes' native gRPC probes). Port 0: off. Health
  // tells nothing about jobs, so it is not restricted to loopback without authentication.
  std::string health_address = "[::]";
  int health_port = 0;
  // The HTTP listener (server/http/: JSON API, server-sent events, dashboard) on
  // http_address:http_port, with the TLS files and tokens of the gRPC port; port 0: off. Empty
  // address: the gRPC port's (`address` after its default). The loopback rule applies as for
  // `address`.
  std::string http_address;
  int http_port = 8080;
  // Event streams (GET /v1/jobs/{id}:watch) open at once on the HTTP listener.
  int http_max_streams = 32;
  // A heartbeat comment on an idle event stream this often.
  absl::Duration http_heartbeat = absl::Seconds(15);
};

class Server {
 public:
  // Builds and starts the server. Errors: FailedPrecondition when another process holds a port
  // (see CheckCanListen), Unavailable when an address cannot be bound otherwise, InvalidArgument
  // for a TLS file that does not read or parse or a key that does not match its certificate, or an
  // open address without authentication; the store's errors.
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();

  // The bound port.
  int port() const { return port_; }
  // The bound metrics port, 0 when metrics are off.
  int metrics_port() const { return metrics_port_; }
  // The bound health-only port, 0 when it is off.
  int health_port() const { return health_port_; }
  // The bound HTTP port, 0 when HTTP is off.
  int http_port() const;
  // Marks health NOT_SERVING, stops accepting calls and waits up to the grace period for in-flight
  // ones. Idempotent.
  void Shutdown();
  // Blocks until the server has shut down.
  void Wait();

 private:
  Server() = default;
  // The health status kReplicaHealthName and the degraded gauge (ReplicaSync's callback).
  void SetReplicaHealth(bool healthy);

  ServerOptions options_;
  std::unique_ptr<metrics::PrometheusMetrics> metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int metrics_port_ = 0;
  std::shared_ptr<prometheus::Collectable> sampled_gauges_;
  std::unique_ptr<store::JobStore> store_;
  // With the postgres store: the replicas' shared database (outlives the registry and the sync).
  std::unique_ptr<store::SharedJobStore> shared_store_;
  std::unique_ptr<service::Authenticator> auth_;
  // Declared before grpc_server_ and service_, whose interceptors and message holders point at
  // them.
  std::unique_ptr<ResetGuard> reset_guard_;
  std::unique_ptr<CallObservers> call_observers_;
  jobs::SystemClock clock_;
  std::unique_ptr<jobs::JobRegistry> registry_;
  // Follows the other replicas; stopped (destroyed) before the registry it applies changes to.
  std::unique_ptr<jobs::ReplicaSync> replica_sync_;
  // Evaluates for the service; declared before it, so destroyed after.
  std::unique_ptr<core::Evaluator> evaluator_;
  std::unique_ptr<service::SchedulerService> service_;
  // The service's retries, deadlines and watch deliveries. Declared after service_ so that it is
  // destroyed (its thread joined, its queued tasks dropped) before the service its tasks point at.
  std::unique_ptr<jobs::ThreadExecutor> executor_;
  // The served-mark flusher's thread: stopped before the service and the registry its flushes tell
  // and write (after Shutdown, which ends the flusher, nothing wakes it).
  std::unique_ptr<jobs::ThreadExecutor> flush_executor_;
  std::unique_ptr<grpc::Server> grpc_server_;
  int port_ = 0;
  // The health-only listener (options_.health_port), shut down after grpc_server_.
  std::unique_ptr<grpc::Server> health_server_;
  int health_port_ = 0;
  // The HTTP listener, a client of grpc_server_ over an in-process channel: declared after it, so
  // it is destroyed (its workers joined) first; Shutdown stops it before the service.
  std::unique_ptr<http::HttpFrontEnd> http_;
  // Shutdown runs once (the signal thread, then the destructor).
  std::atomic<bool> shut_down_{false};
  std::atomic<bool> replica_degraded_{false};
};

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_SERVER_H_
