#include "server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"
#include "core/status_macros.h"
#include "spdlog/spdlog.h"
#include "store/memory_job_store.h"

namespace hpsched::server {

constexpr char kServiceName[] = "hpsched.v1.SchedulerService";

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  server->store_ = std::make_unique<store::MemoryJobStore>();
  server->registry_ = std::make_unique<jobs::JobRegistry>(server->store_.get(), &server->clock_);
  RETURN_IF_ERROR(server->registry_->Load());
  server->service_ = std::make_unique<service::SchedulerService>(server->registry_.get());

  // Referencing the health messages keeps their descriptors linked in, so reflection can describe the health service.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  const std::string address = absl::StrCat(options.address, ":", options.port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  server->grpc_server_ = builder.BuildAndStart();
  if (server->grpc_server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address));
  }
  server->grpc_server_->GetHealthCheckService()->SetServingStatus(kServiceName, true);
  spdlog::info("hpsched-server serving on {}:{} ({} jobs loaded)", options.address, server->port_,
               server->registry_->size());
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
