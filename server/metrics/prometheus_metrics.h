// Prometheus metrics of the server: gRPC's usual series (go-grpc-prometheus names) from the
// server's call interceptor (server/call_interceptor.h), hpsched's own from the service and the
// store. The per-call series (started, handled, handling seconds, values served) are sharded cells
// (metrics/sharded_cells.h) summed at scrape time, so recording a call writes no cache line that
// other threads write; the rare ones (store writes, job events) are prometheus-cpp's.
#ifndef HPSCHED_SERVER_METRICS_PROMETHEUS_METRICS_H_
#define HPSCHED_SERVER_METRICS_PROMETHEUS_METRICS_H_

#include <google/protobuf/descriptor.h>
#include <grpcpp/support/status.h>
#include <prometheus/collectable.h>
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
#include "metrics/sharded_cells.h"
#include "service/service_metrics.h"

namespace hpsched::metrics {

inline constexpr size_t kStatusCodes = 17;

// The series of one gRPC method.
struct MethodSeries {
  MethodSeries(absl::string_view method, absl::string_view type);

  // Label values.
  std::string service;
  std::string method;
  std::string type;
  ShardedCounters<1> started;
  ShardedCounters<kStatusCodes> handled;  // By grpc::StatusCode; codes beyond it as Unknown.
  ShardedHistogram seconds;
};

// The per-call families, collected at scrape time: grpc_server_started_total,
// grpc_server_handled_total (every code of every method, zeros included),
// grpc_server_handling_seconds, hpsched_values_served_total. Thread-safe.
class CallSeries final : public prometheus::Collectable {
 public:
  explicit CallSeries(std::vector<const google::protobuf::ServiceDescriptor*> services);

  // The series of `method` (created on first use for a method of no given service).
  MethodSeries* Series(absl::string_view method);
  // Counts a call started: Series(method), then Started(series).
  MethodSeries* Started(absl::string_view method);
  void Started(MethodSeries* series);
  void Handled(MethodSeries* series, grpc::StatusCode code, int64_t nanos);
  void ValuesServed(int64_t count) { values_served_.Add(0, static_cast<uint64_t>(count)); }

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  // Read-only after construction; the series in it never move.
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> known_;
  // known_'s series in the services' order, for a stable exposition.
  std::vector<const MethodSeries*> known_order_;
  mutable absl::Mutex mutex_;
  absl::flat_hash_map<std::string, std::unique_ptr<MethodSeries>> others_ ABSL_GUARDED_BY(mutex_);
  std::vector<const MethodSeries*> others_order_ ABSL_GUARDED_BY(mutex_);
  ShardedCounters<1> values_served_;
};

// Thread-safe. The series of every method of `services` are created up front, so recording a call
// takes no lock; calls to other methods (reflection) get their series on first use, under a lock.
class PrometheusMetrics final : public service::ServiceMetrics, public jobs::JobObserver {
 public:
  explicit PrometheusMetrics(std::vector<const google::protobuf::ServiceDescriptor*> services);

  // What a scrape collects: the registry of the rare series and the per-call series. The exposer
  // and the HTTP listener's /metrics register both.
  std::vector<std::shared_ptr<prometheus::Collectable>> Collectables() const {
    return {registry_, calls_};
  }

  // service::ServiceMetrics.
  void ValuesServed(int64_t count) override;
  void JobCount(size_t jobs) override;

  // Called by the interceptor: `method` is gRPC's "/package.Service/Method". Methods of the
  // services given to the constructor take no lock; others (reflection) take one.
  MethodSeries* RpcStarted(absl::string_view method) { return calls_->Started(method); }
  // The same in two steps, for a caller that keeps the series of its method (the observers of
  // server/call_interceptor.h).
  MethodSeries* RpcSeries(absl::string_view method) { return calls_->Series(method); }
  void RpcStarted(MethodSeries* series) { calls_->Started(series); }
  void RpcHandled(MethodSeries* series, grpc::StatusCode code, int64_t nanos) {
    calls_->Handled(series, code, nanos);
  }

  // Called by InstrumentedJobStore.
  void StoreWrite(double seconds, bool ok);

  // jobs::JobObserver: counts updates, metric reports and plateau reductions.
  void OnJobEvent(const jobs::JobEvent& event) override;

  // Gauges read when Prometheus scrapes (open watch streams, waiting calls): `name` -> sampler.
  // Register the returned collectable with the exposer next to Collectables().
  std::shared_ptr<prometheus::Collectable> SampledGauges(
      std::vector<std::tuple<std::string, std::string, std::function<double()>>> gauges);

 private:
  // Shared with the scrapers, which may outlive this object.
  std::shared_ptr<CallSeries> calls_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge& jobs_;
  prometheus::Histogram& store_write_seconds_;
  prometheus::Counter& store_write_errors_;
  prometheus::Counter& updates_;
  prometheus::Counter& metric_reports_;
  prometheus::Counter& plateau_reductions_;
};

}  // namespace hpsched::metrics

#endif  // HPSCHED_SERVER_METRICS_PROMETHEUS_METRICS_H_
