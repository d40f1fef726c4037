#include "server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

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
  server->registry_ = std::make_unique<jobs::JobRegistry>(server->store_.get(), &server->clock_);
  const absl::Time load_start = absl::Now();
  RETURN_IF_ERROR(server->registry_->Load());
  const absl::Duration load_time = absl::Now() - load_start;
  server->metrics_->JobCount(server->registry_->size());
  server->service_ =
      std::make_unique<service::SchedulerService>(server->registry_.get(), server->metrics_.get());
  if (options.metrics_port != 0) {
    const std::string metrics_address =
        absl::StrCat(options.metrics_address, ":", options.metrics_port);
    try {
      server->exposer_ = std::make_unique<prometheus::Exposer>(metrics_address);
    } catch (
        const std::exception& e) {  // prometheus-cpp (civetweb) reports a failed bind by throwing.
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", metrics_address, ": ", e.what()));
    }
    server->exposer_->RegisterCollectable(server->metrics_->registry());
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
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(server->metrics_->InterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  server->grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  spdlog::info("hpsched-server serving on {}:{} ({} store{}, {} jobs loaded in {}); metrics {}",
               options.address, server->port_, options.store,
               options.store == "sqlite"
                   ? absl::StrCat(" in ", options.data_dir, ", sync ", options.sync)
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
  grpc_server_->Shutdown(std::chrono::system_clock::now() +
                         absl::ToChronoMilliseconds(options_.shutdown_grace));
}

void Server::Wait() {
  if (grpc_server_ != nullptr) grpc_server_->Wait();
}

}  // namespace hpsched::server
