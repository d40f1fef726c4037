#include "call_interceptor.h"

#include <grpcpp/server_context.h>

#include <chrono>
#include <string>

#include "absl/algorithm/container.h"
#include "absl/strings/string_view.h"

namespace hpsched::server {
namespace {

using Hook = grpc::experimental::InterceptionHookPoints;

bool Observed(absl::string_view method) {
  return absl::c_linear_search(service::kObservedMethods, method);
}

class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  // `parts`: what this call's interceptor does (the metrics off for an observed method's call).
  CallInterceptor(CallInterceptorParts parts, grpc::experimental::ServerRpcInfo* info)
      : parts_(parts), info_(info) {}

  ~CallInterceptor() override {
    if (guard_started_) parts_.reset_guard->CallEnded(peer_, !received_message_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_INITIAL_METADATA)) Started(methods);
    if (parts_.reset_guard != nullptr &&
        methods->QueryInterceptionHookPoint(Hook::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      received_message_ = true;
    }
    if (series_ != nullptr && methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
      parts_.metrics->RpcHandled(series_, methods->GetSendStatus().error_code(),
                                 std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - start_)
                                     .count());
    }
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
  }

  const CallInterceptorParts parts_;
  grpc::experimental::ServerRpcInfo* const info_;
  std::chrono::steady_clock::time_point start_;
  metrics::MethodSeries* series_ = nullptr;
  std::string peer_;
  bool guard_started_ = false;
  bool received_message_ = false;
};

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(CallInterceptorParts parts) : parts_(parts) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    CallInterceptorParts parts = parts_;
    if (Observed(info->method())) {
      // CallObservers keep its metrics; the guard needs the interceptor only when armed, and
      // counts a premature call by its peer from the handoff otherwise.
      parts.metrics = nullptr;
      if (parts.reset_guard != nullptr && !parts.reset_guard->armed()) parts.reset_guard = nullptr;
      if (parts_.reset_guard != nullptr) {
        service::next_call_handoff.intercepted = parts.reset_guard != nullptr;
        // An intercepted call's peer is the interceptor's to take.
        if (parts.reset_guard == nullptr) {
          service::next_call_handoff.peer = info->server_context()->peer();
        }
      }
    }
    if (parts.reset_guard == nullptr && parts.metrics == nullptr) return nullptr;
    return new CallInterceptor(parts, info);
  }

 private:
  const CallInterceptorParts parts_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallInterceptorFactory(
    CallInterceptorParts parts) {
  return std::make_unique<Factory>(parts);
}

class CallObservers::Method final : public service::CallObserver {
 public:
  Method(CallInterceptorParts parts, absl::string_view method)
      : parts_(parts),
        series_(parts.metrics != nullptr ? parts.metrics->RpcSeries(method) : nullptr) {}

  void CallStarted() override {
    if (series_ != nullptr) parts_.metrics->RpcStarted(series_);
  }

  void CallEnded(const service::CallNote& note, grpc::StatusCode code, int64_t nanos) override {
    if (series_ != nullptr) parts_.metrics->RpcHandled(series_, code, nanos);
    // Before its handler: reset before its request arrived, or a request that does not parse
    // (which the interceptor counts as premature too: no message was received). An intercepted
    // call is the interceptor's to count.
    if (note.reached_handler || note.call.intercepted || parts_.reset_guard == nullptr) return;
    if (!note.call.peer.empty()) {
      parts_.reset_guard->PrematureOf(note.call.peer);
    } else {
      parts_.reset_guard->PrematureWithoutPeer();
    }
  }

 private:
  const CallInterceptorParts parts_;
  metrics::MethodSeries* const series_;
};

CallObservers::CallObservers(CallInterceptorParts parts) {
  if (parts.metrics == nullptr && parts.reset_guard == nullptr) return;
  for (absl::string_view method : service::kObservedMethods) {
    methods_.push_back(std::make_unique<Method>(parts, method));
  }
}

CallObservers::~CallObservers() = default;

service::CallObserver* CallObservers::For(absl::string_view full_method) {
  for (size_t i = 0; i < methods_.size(); ++i) {
    if (service::kObservedMethods[i] == full_method) return methods_[i].get();
  }
  return nullptr;
}

}  // namespace hpsched::server
