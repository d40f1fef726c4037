// The server's one interceptor: what the server does around every call, in one object per call.
// It was three (the rapid-reset guard's, the metrics', the authorization's); gRPC runs each
// interceptor of a call at each of its hook points (a unary call has about six: its metadata, its
// message, the reply's metadata, message and status, the close), with a virtual call, a
// std::function and the hook bookkeeping per interceptor and point, and allocates each interceptor
// per call. One interceptor pays that once.
//
// Per call, each part optional:
//   reset guard  (ResetGuard)          the call's start by its peer, and whether it ended before
//   its
//                                      request message arrived;
//   metrics      (PrometheusMetrics)   started, then handled by the status sent, and the time from
//                                      its metadata to its status;
//   authorization (Authenticator)      for SchedulerService methods, the verdict on the
//                                      "authorization" metadata, recorded in CallVerdicts for the
//                                      call's lifetime (the handler answers a denied call with it,
//                                      see service/auth.h), and a denied call's status forced to
//                                      it.
// A call with no part to do (health with nothing configured) gets no interceptor at all.
#ifndef HPSCHED_SERVER_CALL_INTERCEPTOR_H_
#define HPSCHED_SERVER_CALL_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "metrics/prometheus_metrics.h"
#include "reset_guard.h"
#include "service/auth.h"

namespace hpsched::server {

struct CallInterceptorParts {
  // Null: that part is off. Each must outlive the server.
  ResetGuard* reset_guard = nullptr;
  metrics::PrometheusMetrics* metrics = nullptr;
  // Both or neither.
  const service::Authenticator* auth = nullptr;
  service::CallVerdicts* verdicts = nullptr;
};

// For grpc::ServerBuilder::experimental().SetInterceptorCreators().
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallInterceptorFactory(
    CallInterceptorParts parts);

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_CALL_INTERCEPTOR_H_
