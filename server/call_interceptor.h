// What the server does around every call: the rapid-reset guard's count (ResetGuard) and the
// per-call metrics (PrometheusMetrics: started, handled by the status sent, the handling time).
// Authorization is not here: each SchedulerService handler checks the call's token itself
// (service/auth.h), since an interceptor cannot end a call.
//
// Two ways, one bookkeeping:
//   - CallInterceptorFactory: one gRPC interceptor per call (it was three: the guard's, the
//     metrics', the authorization's). gRPC runs each interceptor of a call at each of its hook
//     points (a unary call has about six) with a virtual call, a std::function and the hook
//     bookkeeping, and allocates it per call: about 9k instructions a call however little the
//     interceptor does.
//   - CallObservers: for GetValues and BatchGetValues (service::kObservedMethods), the calls
//     trainers make every step, the same metrics and the guard's count come from the call's message
//     holder (service/call_note.h) and no interceptor is made, unless the reset guard is armed
//     (then the interceptor does the guard's part only, so that the calls that did get their
//     request are counted by connection too; see reset_guard.h).
#ifndef HPSCHED_SERVER_CALL_INTERCEPTOR_H_
#define HPSCHED_SERVER_CALL_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <vector>

#include "absl/strings/string_view.h"
#include "metrics/prometheus_metrics.h"
#include "reset_guard.h"
#include "service/call_note.h"

namespace hpsched::server {

struct CallInterceptorParts {
  // Null: that part is off. Each must outlive the server.
  ResetGuard* reset_guard = nullptr;
  metrics::PrometheusMetrics* metrics = nullptr;
};

// For grpc::ServerBuilder::experimental().SetInterceptorCreators(). A call with no part to do gets
// no interceptor at all, and neither does a call of service::kObservedMethods while the guard is
// calm.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallInterceptorFactory(
    CallInterceptorParts parts);

// The observers of service::kObservedMethods' calls, for service::ServiceOptions::call_observer.
class CallObservers {
 public:
  explicit CallObservers(CallInterceptorParts parts);
  ~CallObservers();

  // Null for a method that is not one of kObservedMethods, or when there is nothing to do.
  service::CallObserver* For(absl::string_view full_method);

 private:
  class Method;
  std::vector<std::unique_ptr<Method>> methods_;
};

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_CALL_INTERCEPTOR_H_
