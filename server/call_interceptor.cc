#include "call_interceptor.h"

#include <grpcpp/server_context.h>

#include <chrono>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace hpsched::server {
namespace {

using Hook = grpc::experimental::InterceptionHookPoints;

constexpr absl::string_view kServicePrefix = "/hpsched.v1.SchedulerService/";

class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(const CallInterceptorParts& parts, grpc::experimental::ServerRpcInfo* info,
                  std::optional<service::Role> role)
      : parts_(parts), info_(info), role_(role) {}

  ~CallInterceptor() override {
    if (guard_started_) parts_.reset_guard->CallEnded(peer_, !received_message_);
    if (verdict_recorded_) parts_.verdicts->Erase(info_->server_context());
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_INITIAL_METADATA)) Started(methods);
    if (parts_.reset_guard != nullptr &&
        methods->QueryInterceptionHookPoint(Hook::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      received_message_ = true;
    }
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) Ending(methods);
    methods->Proceed();
  }

 private:
  void Started(grpc::experimental::InterceptorBatchMethods* methods) {
    if (parts_.metrics != nullptr) {
      start_ = std::chrono::steady_clock::now();
      series_ = parts_.metrics->RpcStarted(info_->method());
    }
    if (parts_.reset_guard != nullptr) {
      peer_ = info_->server_context()->peer();
      guard_started_ = true;
      parts_.reset_guard->CallStarted(peer_);
    }
    if (role_.has_value()) {
      const auto* metadata = methods->GetRecvInitialMetadata();
      absl::string_view value;
      if (auto it = metadata->find("authorization"); it != metadata->end()) {
        value = absl::string_view(it->second.data(), it->second.size());
      }
      absl::string_view method = info_->method();
      method.remove_prefix(kServicePrefix.size());
      verdict_ = parts_.auth->Check(value, *role_, method);
      parts_.verdicts->Set(info_->server_context(), verdict_);
      verdict_recorded_ = true;
    }
  }

  void Ending(grpc::experimental::InterceptorBatchMethods* methods) {
    grpc::StatusCode code = grpc::StatusCode::OK;
    if (!verdict_.ok()) {
      code = static_cast<grpc::StatusCode>(verdict_.code());
      methods->ModifySendStatus(grpc::Status(code, std::string(verdict_.message())));
    } else if (series_ != nullptr) {
      code = methods->GetSendStatus().error_code();
    }
    if (series_ != nullptr) {
      parts_.metrics->RpcHandled(series_, code,
                                 std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - start_)
                                     .count());
    }
  }

  const CallInterceptorParts& parts_;
  grpc::experimental::ServerRpcInfo* const info_;
  const std::optional<service::Role> role_;
  std::chrono::steady_clock::time_point start_;
  metrics::MethodSeries* series_ = nullptr;
  std::string peer_;
  absl::Status verdict_;
  bool guard_started_ = false;
  bool received_message_ = false;
  bool verdict_recorded_ = false;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(CallInterceptorParts parts) : parts_(parts) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    std::optional<service::Role> role;
    if (parts_.auth != nullptr) role = service::RequiredRole(info->method());  // nullopt: open
    if (parts_.reset_guard == nullptr && parts_.metrics == nullptr && !role.has_value()) {
      return nullptr;
    }
    return new CallInterceptor(parts_, info, role);
  }

 private:
  const CallInterceptorParts parts_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallInterceptorFactory(
    CallInterceptorParts parts) {
  return std::make_unique<Factory>(parts);
}

}  // namespace hpsched::server
