// Prometheus metrics of the server: gRPC's usual series (go-grpc-prometheus names) from a server
// interceptor, hpsched's own from the service and the store.
#ifndef HPSCHED_SERVER_METRICS_PROMETHEUS_METRICS_H_
#define HPSCHED_SERVER_METRICS_PROMETHEUS_METRICS_H_

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/server_interceptor.h>
#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "jobs/job_registry.h"
#include "service/service_metrics.h"

namespace hpsched::metrics {

// The series of one gRPC method.
struct MethodSeries {
  prometheus::Counter* started = nullptr;
  std::array<prometheus::Counter*, 17> handled{};  // By grpc::StatusCode.
  prometheus::Histogram* seconds = nullptr;
};

// Thread-safe. The series of every method of `services` are created up front, so recording a call
// takes no lock; calls to other methods (reflection) get their series on first use, under a lock.
class PrometheusMetrics final : public service::ServiceMetrics, public jobs::JobObserver {
 public:
  explicit PrometheusMetrics(std::vector<const google::protobuf::ServiceDescriptor*> services);

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // service::ServiceMetrics.
  void ValuesServed(int64_t count) override;
  void JobCount(size_t jobs) override;

  // Called by the interceptor: `method` is gRPC's "/package.Service/Method".
  MethodSeries* RpcStarted(absl::string_view method);
  void RpcHandled(MethodSeries* series, grpc::StatusCode code, double seconds);

  // Called by InstrumentedJobStore.
  void StoreWrite(double seconds, bool ok);

  // jobs::JobObserver: counts updates, metric reports and plateau reductions.
  void OnJobEvent(const jobs::JobEvent& event) override;

  // Gauges read when Prometheus scrapes (open watch streams, waiting calls): `name` -> sampler.
  // Register the returned collectable with the exposer next to registry().
  std::shared_ptr<prometheus::Collectable> SampledGauges(
      std::vector<std::tuple<std::string, std::string, std::function<double()>>> gauges);

  // An interceptor factory for grpc::ServerBuilder::experimental().SetInterceptorCreators().
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> InterceptorFactory();

 private:
  MethodSeries MakeSeries(absl::string_view method, absl::string_view type);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
  prometheus::Gauge& jobs_;
  prometheus::Counter& values_served_;
  prometheus::Histogram& store_write_seconds_;
  prometheus::Counter& store_write_errors_;
  prometheus::Counter& updates_;
  prometheus::Counter& metric_reports_;
  prometheus::Counter& plateau_reductions_;
  // Read-only after construction.
  absl::flat_hash_map<std::string, MethodSeries> known_;
  absl::Mutex mutex_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> others_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hpsched::metrics

#endif  // HPSCHED_SERVER_METRICS_PROMETHEUS_METRICS_H_
