#include "server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "grpc/health/v1/health.pb.h"
#include "metrics/instrumented_job_store.h"
#include "metrics/prometheus_metrics.h"
#include "prometheus/exposer.h"
#include "spdlog/spdlog.h"
#include "store/memory_job_store.h"
#include "store/sqlite_job_store.h"

namespace hpsched::server {

constexpr char kServiceName[] = "hpsched.v1.SchedulerService";

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view flag) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("--", flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

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
  grpc::SslServerCredentialsOptions ssl(
      options.tls_client_ca.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                    : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(options.tls_cert, "tls_cert"));
  ASSIGN_OR_RETURN(pair.private_key, ReadFile(options.tls_key, "tls_key"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadFile(options.tls_client_ca, "tls_client_ca"));
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server());
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
  } else if (options.store == "sqlite") {
    store::SqliteOptions sqlite;
    sqlite.data_dir = options.data_dir;
    ASSIGN_OR_RETURN(sqlite.sync, store::SqliteJobStore::ParseSyncMode(options.sync));
    ASSIGN_OR_RETURN(backing, store::SqliteJobStore::Open(sqlite));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--store: must be sqlite or memory, got \"", options.store, "\""));
  }
  server->store_ =
      std::make_unique<metrics::InstrumentedJobStore>(std::move(backing), server->metrics_.get());
  server->registry_ =
      std::make_unique<jobs::JobRegistry>(server->store_.get(), &server->clock_, options.max_jobs);
  const absl::Time load_start = absl::Now();
  RETURN_IF_ERROR(server->registry_->Load());
  server->registry_->AddObserver(server->metrics_.get());
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
  if (server->auth_ != nullptr) service_options.verdicts = &server->verdicts_;
  server->service_ =
      std::make_unique<service::SchedulerService>(server->registry_.get(), service_options);
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, Credentials(options));
  if (options.metrics_port != 0) {
    const std::string metrics_address =
        absl::StrCat(options.metrics_address, ":", options.metrics_port);
    try {
      server->exposer_ = std::make_unique<prometheus::Exposer>(metrics_address);
    } catch (const std::exception& e) {
      // prometheus-cpp (civetweb) reports a failed bind by throwing.
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", metrics_address, ": ", e.what()));
    }
    server->exposer_->RegisterCollectable(server->metrics_->registry());
    service::SchedulerService* service = server->service_.get();
    server->sampled_gauges_ = server->metrics_->SampledGauges({
        {"hpsched_watch_streams", "Open WatchJob streams.",
         [service] { return static_cast<double>(service->watch_count()); }},
        {"hpsched_waiting_calls", "GetValues calls waiting for metric reports.",
         [service] { return static_cast<double>(service->waiting_count()); }},
    });
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
  const std::string address = absl::StrCat(options.address, ":", options.port);
  builder.AddListeningPort(address, credentials, &server->port_);
  builder.SetMaxReceiveMessageSize(options.max_request_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  grpc::ResourceQuota quota("hpsched-server");
  quota.Resize(static_cast<size_t>(options.max_call_memory_bytes));
  builder.SetResourceQuota(quota);
  builder.RegisterService(server->service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(server->metrics_->InterceptorFactory());
  if (server->auth_ != nullptr) {
    interceptors.push_back(
        service::AuthInterceptorFactory(server->auth_.get(), &server->verdicts_));
  }
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  server->grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  spdlog::info(
      "hpsched-server serving on {}:{} ({}, {}; {} store{}, {} jobs loaded in {}); metrics {}",
      options.address, server->port_,
      options.tls_cert.empty() ? "plaintext"
                               : (options.tls_client_ca.empty() ? "TLS" : "mutual TLS"),
      server->auth_ == nullptr ? "auth off" : "bearer-token auth", options.store,
      options.store == "sqlite" ? absl::StrCat(" in ", options.data_dir, ", sync ", options.sync)
                                : "",
      server->registry_->size(), absl::FormatDuration(load_time),
      server->metrics_port_ == 0 ? std::string("off")
                                 : absl::StrCat("on http://", options.metrics_address, ":",
                                                server->metrics_port_, "/metrics"));
  return server;
}

Server::~Server() {
  Shutdown();
  Wait();
}

void Server::Shutdown() {
  if (grpc_server_ == nullptr) return;
  grpc_server_->GetHealthCheckService()->Shutdown();
  // Watch streams end and waiting calls answer now, so in-flight calls can all finish in time.
  service_->Shutdown();
  // Evaluations still running at the end of the grace stop at their next chunk.
  const absl::Time grace_end = clock_.Now() + options_.shutdown_grace;
  service_->CancelEvaluationsAt(grace_end);
  grpc_server_->Shutdown(absl::ToChronoTime(grace_end));
  // GetValues only raises a job's served mark in memory; keep the marks for the next start (a
  // crash loses those since the job's last change).
  if (absl::Status status = registry_->PersistServedMarks(); !status.ok()) {
    spdlog::error("could not write the served steps: {}", std::string(status.message()));
  }
}

void Server::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

}  // namespace hpsched::server
