#include "server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "call_interceptor.h"
#include "civetweb.h"
#include "core/status_macros.h"
#include "grpc/health/v1/health.pb.h"
#include "http/http_front_end.h"
#include "listen_address.h"
#include "metrics/instrumented_job_store.h"
#include "metrics/prometheus_metrics.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"
#include "spdlog/spdlog.h"
#include "store/memory_job_store.h"
#include "store/postgres_connection.h"
#include "store/postgres_job_store.h"
#include "store/postgres_shared_store.h"
#include "store/sqlite_job_store.h"
#include "tls_files.h"

namespace hpsched::server {

constexpr char kServiceName[] = "hpsched.v1.SchedulerService";
// With replicas: NOT_SERVING while this replica has lost the database (docs/replicas.md).
constexpr char kReplicaHealthName[] = "hpsched.v1.SchedulerService.replica";

namespace {

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& options) {
  if (options.tls_cert.empty() && options.tls_key.empty()) {
    if (!options.tls_client_ca.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca: needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert.empty() || options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key: set both, or neither");
  }
  ASSIGN_OR_RETURN(TlsFiles files,
                   LoadTlsFiles(options.tls_cert, options.tls_key, options.tls_client_ca));
  grpc::SslServerCredentialsOptions ssl(
      options.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                    : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  pair.cert_chain = std::move(files.cert_chain);
  pair.private_key = std::move(files.private_key);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  ssl.pem_root_certs = std::move(files.client_ca);
  return grpc::SslServerCredentials(ssl);
}

// A duration as a gRPC channel argument in milliseconds; InfiniteDuration is INT_MAX (gRPC's
// "never").
int ChannelMilliseconds(absl::Duration duration) {
  if (duration >= absl::Milliseconds(std::numeric_limits<int>::max())) {
    return std::numeric_limits<int>::max();
  }
  return static_cast<int>(absl::ToInt64Milliseconds(std::max(duration, absl::ZeroDuration())));
}

// The metrics endpoint's address as civetweb (under prometheus-cpp) can bind it. civetweb takes IP
// literals only ("localhost" becomes 127.0.0.1), and its "[::]:port" would be IPv6 only: every
// interface, both families, is its "+port". Debian's libcivetweb1 is built without IPv6
// (mg_check_feature(8) is 0): there "[::]" falls back to 0.0.0.0, saying so, and an IPv6 literal is
// refused by name instead of civetweb's "null context when constructing CivetServer".
absl::StatusOr<ListenAddress> CivetwebAddress(const ListenAddress& address) {
  constexpr unsigned kCivetwebIpv6 = 8;
  const bool ipv6 = mg_check_feature(kCivetwebIpv6) != 0;
  ListenAddress bound = address;
  if (address.host == "localhost") bound.host = "127.0.0.1";
  if (address.host == "[::]" || address.host == "::") {
    if (ipv6) return bound;
    spdlog::info(
        "metrics: this civetweb build has no IPv6, so --metrics_address={} listens on 0.0.0.0 "
        "(every IPv4 interface)",
        address.host);
    bound.host = "0.0.0.0";
  } else if (!ipv6 && absl::StrContains(address.host, ':')) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics_address=", address.host,
                     ": this civetweb build (prometheus-cpp's HTTP server) has no IPv6; use "
                     "0.0.0.0, 127.0.0.1 or [::] (which falls back to 0.0.0.0)"));
  }
  return bound;
}

std::string CivetwebListeningPort(const ListenAddress& address) {
  if (address.host == "[::]" || address.host == "::") return absl::StrCat("+", address.port);
  return address.ToString();
}

// Protected mode: without authentication only loopback is served, unless the operator asked for
// an open server. `given` empty: the default for the mode.
absl::StatusOr<std::string> ChooseHost(const std::string& given, bool open,
                                       absl::string_view flag) {
  if (given.empty()) return std::string(open ? "[::]" : "127.0.0.1");
  if (!open && !IsLoopbackHost(given)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, "=", given,
        ": authentication is off (no --auth_token_file), so only loopback addresses are served; "
        "set --auth_token_file, or --allow_unauthenticated_remote to serve an open server on "
        "purpose"));
  }
  return given;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& given) {
  std::unique_ptr<Server> server(new Server());
  ServerOptions options = given;
  const bool open = !options.auth_token_file.empty() || options.allow_unauthenticated_remote;
  const bool chose_loopback =
      !open &&
      (options.address.empty() || (options.metrics_port != 0 && options.metrics_address.empty()) ||
       (options.http_port != 0 && options.http_address.empty()));
  ASSIGN_OR_RETURN(options.address, ChooseHost(options.address, open, "address"));
  // An address of metrics that are off binds nothing, so it is not refused.
  if (options.metrics_port != 0) {
    ASSIGN_OR_RETURN(options.metrics_address,
                     ChooseHost(options.metrics_address, open, "metrics_address"));
  }
  if (options.http_port != 0) {
    if (options.http_address.empty()) {
      options.http_address = options.address;
    } else {
      ASSIGN_OR_RETURN(options.http_address,
                       ChooseHost(options.http_address, open, "http_address"));
    }
  }
  if (chose_loopback) {
    spdlog::warn(
        "authentication is off (no --auth_token_file): listening on loopback only; set "
        "--auth_token_file, or --allow_unauthenticated_remote for an open server");
  } else if (options.allow_unauthenticated_remote && options.auth_token_file.empty()) {
    spdlog::warn(
        "--allow_unauthenticated_remote: serving without authentication on {} (anyone who reaches "
        "it may create, change and delete jobs)",
        options.address);
  }
  // Every listener's port is checked before anything else starts, so a second server on a port
  // in use stops here, before it takes a store.
  const ListenAddress grpc_address{options.address, options.port};
  ListenAddress metrics_address{options.metrics_address, options.metrics_port};
  if (options.metrics_port != 0) {
    ASSIGN_OR_RETURN(metrics_address, CivetwebAddress(metrics_address));
    options.metrics_address = metrics_address.host;
  }
  const ListenAddress health_address{options.health_address, options.health_port};
  RETURN_IF_ERROR(CheckCanListen("gRPC", "--port", grpc_address));
  if (options.metrics_port != 0) {
    RETURN_IF_ERROR(CheckCanListen("metrics", "--metrics_port", metrics_address));
  }
  if (options.health_port != 0) {
    RETURN_IF_ERROR(CheckCanListen("health", "--health_port", health_address));
  }
  const ListenAddress http_address{options.http_address, options.http_port};
  if (options.http_port != 0) {
    RETURN_IF_ERROR(CheckCanListen("HTTP", "--http_port", http_address));
  }
  // TLS files are checked before the store is opened, too.
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, Credentials(options));
  server->options_ = options;
  server->metrics_ = std::make_unique<metrics::PrometheusMetrics>(
      std::vector<const google::protobuf::ServiceDescriptor*>{
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
              hpsched::v1::SchedulerService::service_full_name()),
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
              "grpc.health.v1.Health")});
  std::unique_ptr<store::JobStore> backing;
  if (options.store == "memory") {
    backing = std::make_unique<store::MemoryJobStore>();
  } else if (options.store == "sqlite" || options.store == "postgres") {
    if (options.served_mark_interval <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--served_mark_interval: must be > 0, got ",
                       absl::FormatDuration(options.served_mark_interval)));
    }
    if (options.served_mark_reserve < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--served_mark_reserve: must be >= 1, got ", options.served_mark_reserve));
    }
    if (options.store == "postgres") {
      store::PostgresOptions postgres;
      postgres.url = options.postgres_url;
      ASSIGN_OR_RETURN(backing, store::PostgresJobStore::Open(postgres));
      // Opened after the job store, which migrates the schema the shared store needs.
      std::string replica_id = options.replica_id;
      if (replica_id.empty()) {
        char host[256] = {};
        gethostname(host, sizeof(host) - 1);
        replica_id = absl::StrCat(host, "-", getpid());
      }
      ASSIGN_OR_RETURN(server->shared_store_,
                       store::PostgresSharedStore::Open(options.postgres_url, replica_id));
    } else {
      store::SqliteOptions sqlite;
      sqlite.data_dir = options.data_dir;
      sqlite.accept_empty_store = options.accept_empty_store;
      ASSIGN_OR_RETURN(sqlite.sync, store::SqliteJobStore::ParseSyncMode(options.sync));
      ASSIGN_OR_RETURN(backing, store::SqliteJobStore::Open(sqlite));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--store: must be sqlite, postgres or memory, got \"", options.store, "\""));
  }
  server->store_ =
      std::make_unique<metrics::InstrumentedJobStore>(std::move(backing), server->metrics_.get());
  server->registry_ =
      std::make_unique<jobs::JobRegistry>(server->store_.get(), &server->clock_, options.max_jobs);
  if (server->shared_store_ != nullptr) {
    server->registry_->UseSharedStore(server->shared_store_.get(), options.replica_fence_timeout);
    jobs::ReplicaSyncOptions sync;
    sync.lease = options.replica_lease;
    sync.catchup_interval = options.replica_catchup_interval;
    Server* s = server.get();
    server->replica_sync_ = std::make_unique<jobs::ReplicaSync>(
        server->registry_.get(), server->shared_store_.get(), sync,
        [s](bool healthy) { s->SetReplicaHealth(healthy); });
    jobs::ReplicaSync* follower = server->replica_sync_.get();
    server->registry_->SetBehindCallback([follower] { follower->Trigger(); });
  }
  const absl::Time load_start = absl::Now();
  RETURN_IF_ERROR(server->registry_->Load());
  server->registry_->AddObserver(server->metrics_.get());
  if (options.store != "memory") {
    server->flush_executor_ = std::make_unique<jobs::ThreadExecutor>(&server->clock_);
    server->registry_->StartServedMarkFlusher(
        server->flush_executor_.get(), options.served_mark_interval, options.served_mark_reserve);
  }
  const absl::Duration load_time = absl::Now() - load_start;
  server->metrics_->JobCount(server->registry_->size());
  if (!options.auth_token_file.empty()) {
    ASSIGN_OR_RETURN(server->auth_, service::Authenticator::FromFile(options.auth_token_file));
  }
  server->executor_ = std::make_unique<jobs::ThreadExecutor>(&server->clock_);
  service::ServiceOptions service_options;
  service_options.limits = options.limits;
  service_options.clock = &server->clock_;
  service_options.executor = server->executor_.get();
  service_options.metrics = server->metrics_.get();
  server->evaluator_ = core::MakeEvaluator(options.evaluator);
  service_options.evaluator = server->evaluator_.get();
  service_options.auth = server->auth_.get();
  if (options.reset_flood_threshold > 0) {
    server->reset_guard_ = std::make_unique<ResetGuard>(options.reset_flood_threshold);
  }
  CallInterceptorParts parts;
  parts.reset_guard = server->reset_guard_.get();
  parts.metrics = server->metrics_.get();
  server->call_observers_ = std::make_unique<CallObservers>(parts);
  service_options.call_observer = [observers = server->call_observers_.get()](
                                      absl::string_view method) { return observers->For(method); };
  server->service_ =
      std::make_unique<service::SchedulerService>(server->registry_.get(), service_options);
  {
    // Sampled at each scrape, on the metrics port and on the HTTP listener's /metrics.
    service::SchedulerService* service = server->service_.get();
    server->sampled_gauges_ = server->metrics_->SampledGauges({
        {"hpsched_watch_streams", "Open WatchJob streams.",
         [service] { return static_cast<double>(service->watch_count()); }},
        {"hpsched_waiting_calls", "GetValues calls waiting for metric reports.",
         [service] { return static_cast<double>(service->waiting_count()); }},
        {"hpsched_replica_degraded",
         "1 while this replica has lost the shared database (docs/replicas.md), else 0.",
         [self = server.get()] { return self->replica_degraded_.load() ? 1.0 : 0.0; }},
    });
  }
  if (options.metrics_port != 0) {
    try {
      server->exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
          "listening_ports", CivetwebListeningPort(metrics_address), "num_threads", "2"});
    } catch (const std::exception& e) {
      // prometheus-cpp (civetweb) reports a failed bind by throwing.
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", metrics_address.ToString(), ": ", e.what()));
    }
    for (const auto& collectable : server->metrics_->Collectables()) {
      server->exposer_->RegisterCollectable(collectable);
    }
    server->exposer_->RegisterCollectable(server->sampled_gauges_);
    const std::vector<int> ports = server->exposer_->GetListeningPorts();
    server->metrics_port_ = ports.empty() ? 0 : ports[0];
  }

  // Referencing the health messages keeps their descriptors linked in, so reflection can describe
  // the health service.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = grpc_address.ToString();
  builder.AddListeningPort(address, credentials, &server->port_);
  // Never share a port with another process (gRPC would set SO_REUSEPORT).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             ChannelMilliseconds(options.max_connection_idle));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             ChannelMilliseconds(options.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             ChannelMilliseconds(options.max_connection_age_grace));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             ChannelMilliseconds(options.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             ChannelMilliseconds(options.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             ChannelMilliseconds(options.min_client_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  grpc::ResourceQuota quota("hpsched-server");
  quota.Resize(static_cast<size_t>(options.max_call_memory_bytes));
  if (options.max_threads > 0) quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  builder.RegisterService(server->service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(CallInterceptorFactory(parts));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  if (options.health_port != 0) {
    // Plaintext, whatever the main port speaks: only the default health service is registered
    // (and gRPC's reflection plugin, which every builder gets, describing just that).
    grpc::ServerBuilder health;
    health.AddListeningPort(health_address.ToString(), grpc::InsecureServerCredentials(),
                            &server->health_port_);
    health.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    health.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 16);
    health.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                              ChannelMilliseconds(options.max_connection_idle));
    health.SetMaxReceiveMessageSize(4096);
    grpc::ResourceQuota health_quota("hpsched-health");
    health_quota.Resize(16 << 20);
    health.SetResourceQuota(health_quota);
    if (server->reset_guard_ != nullptr) {
      std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> guard;
      CallInterceptorParts health_parts;
      health_parts.reset_guard = server->reset_guard_.get();
      guard.push_back(CallInterceptorFactory(health_parts));
      health.experimental().SetInterceptorCreators(std::move(guard));
    }
    server->health_server_ = health.BuildAndStart();
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", health_address.ToString(), " (health)"));
    }
    server->health_server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  }
  if (options.http_port != 0) {
    http::HttpOptions http;
    http.host = options.http_address;
    http.port = options.http_port;
    http.tls_cert = options.tls_cert;
    http.tls_key = options.tls_key;
    http.tls_client_ca = options.tls_client_ca;
    http.max_body_bytes = static_cast<size_t>(std::max(0, options.max_request_bytes));
    http.max_streams = options.http_max_streams;
    http.heartbeat = options.http_heartbeat;
    std::vector<std::shared_ptr<prometheus::Collectable>> collectables =
        server->metrics_->Collectables();
    collectables.push_back(server->sampled_gauges_);
    http.metrics_text = [collectables = std::move(collectables)] {
      std::vector<prometheus::MetricFamily> families;
      for (const auto& collectable : collectables) {
        for (prometheus::MetricFamily& family : collectable->Collect()) {
          families.push_back(std::move(family));
        }
      }
      return prometheus::TextSerializer().Serialize(families);
    };
    if (server->auth_ != nullptr) {
      // Pages need the lowest role; API calls are decided by the service's table (RequiredRole).
      const service::Authenticator* auth = server->auth_.get();
      http.authorize_page = [auth](absl::string_view authorization) {
        return auth->Check(authorization, service::Role::kReader, "pages");
      };
    }
    grpc::ChannelArguments channel_args;
    // Responses are bounded by the service (the 400,000-value cap), not by a client limit.
    channel_args.SetMaxReceiveMessageSize(-1);
    ASSIGN_OR_RETURN(
        server->http_,
        http::HttpFrontEnd::Start(http, server->grpc_server_->InProcessChannel(channel_args)));
  }
  server->grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  if (server->replica_sync_ != nullptr) {
    server->SetReplicaHealth(true);
    server->replica_sync_->Start();
    spdlog::info("replica {} of the database at {}", server->shared_store_->replica_id(),
                 store::PgWhere(options.postgres_url).value_or("?"));
  }
  spdlog::info(
      "hpsched-server serving on {}:{} ({}, {}; {} store{}, {} jobs loaded in {}); metrics {}",
      options.address, server->port_,
      options.tls_cert.empty() ? "plaintext"
                               : (options.tls_client_ca.empty() ? "TLS" : "mutual TLS"),
      server->auth_ == nullptr ? "auth off" : "bearer-token auth", options.store,
      options.store == "sqlite" ? absl::StrCat(" in ", options.data_dir, ", sync ", options.sync)
      : options.store == "postgres"
          ? absl::StrCat(" at ", store::PgWhere(options.postgres_url).value_or("?"))
          : "",
      server->registry_->size(), absl::FormatDuration(load_time),
      server->metrics_port_ == 0 ? std::string("off")
                                 : absl::StrCat("on http://", options.metrics_address, ":",
                                                server->metrics_port_, "/metrics"));
  if (server->http_ != nullptr) {
    spdlog::info("HTTP (JSON API under /v1/, dashboard at /) on {}://{}:{}",
                 options.tls_cert.empty() ? "http" : "https", options.http_address,
                 server->http_->port());
  }
  if (server->health_port_ != 0) {
    spdlog::info("health only (plaintext grpc.health.v1) on {}:{}", options.health_address,
                 server->health_port_);
  }
  return server;
}

int Server::http_port() const { return http_ == nullptr ? 0 : http_->port(); }

void Server::SetReplicaHealth(bool healthy) {
  // The replica's own health: NOT_SERVING while the database is away (reads go on, mutations
  // answer UNAVAILABLE); the overall and the service's status stay SERVING, so reads still come.
  grpc_server_->GetHealthCheckService()->SetServingStatus(kReplicaHealthName, healthy);
  if (health_server_ != nullptr) {
    health_server_->GetHealthCheckService()->SetServingStatus(kReplicaHealthName, healthy);
  }
  replica_degraded_.store(!healthy);
}

Server::~Server() {
  Shutdown();
  Wait();
}

void Server::Shutdown() {
  if (grpc_server_ == nullptr || shut_down_.exchange(true)) return;
  // The HTTP listener first: it stops accepting and its event streams end; its workers finish
  // their requests (at most its 5 s read and write timeouts) while the gRPC port drains, so the two
  // waits overlap instead of adding up.
  if (http_ != nullptr) http_->BeginShutdown();
  grpc_server_->GetHealthCheckService()->Shutdown();
  if (health_server_ != nullptr) health_server_->GetHealthCheckService()->Shutdown();
  // Watch streams end and waiting calls answer now, so in-flight calls can all finish in time.
  service_->Shutdown();
  // Evaluations still running at the end of the grace stop at their next chunk.
  const absl::Time grace_end = clock_.Now() + options_.shutdown_grace;
  service_->CancelEvaluationsAt(grace_end);
  grpc_server_->Shutdown(absl::ToChronoTime(grace_end));
  if (http_ != nullptr) http_->Shutdown();
  // Probes saw NOT_SERVING during the drain; the health port goes last.
  if (health_server_ != nullptr) health_server_->Shutdown(std::chrono::system_clock::now());
  // The exact served marks, and the clean-stop mark with them (the memory store keeps nothing).
  if (options_.store != "memory") {
    if (absl::Status status = registry_->PersistServedMarks(); !status.ok()) {
      spdlog::error("could not write the served steps: {}", std::string(status.message()));
    }
  }
  if (replica_sync_ != nullptr) replica_sync_->Stop();
}

void Server::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
  if (health_server_ != nullptr) health_server_->Wait();
}

}  // namespace hpsched::server
