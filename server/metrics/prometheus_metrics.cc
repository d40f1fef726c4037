#include "metrics/prometheus_metrics.h"

#include <chrono>

#include "absl/strings/str_split.h"

namespace hpsched::metrics {
namespace {

// go-grpc-prometheus spells codes as Go's codes.Code.String() does.
constexpr std::array<const char*, 17> kCodeNames = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

// Server latencies are sub-millisecond; the buckets reach down far enough to show them.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  return *buckets;
}

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(PrometheusMetrics* metrics, const char* method)
      : metrics_(metrics), method_(method) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_INITIAL_METADATA)) {
      start_ = std::chrono::steady_clock::now();
      series_ = metrics_->RpcStarted(method_);
    }
    if (methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS) && series_ != nullptr) {
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
      metrics_->RpcHandled(series_, methods->GetSendStatus().error_code(), elapsed.count());
    }
    methods->Proceed();
  }

 private:
  PrometheusMetrics* const metrics_;
  const char* const method_;
  std::chrono::steady_clock::time_point start_;
  MethodSeries* series_ = nullptr;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(PrometheusMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new MetricsInterceptor(metrics_, info->method());
  }

 private:
  PrometheusMetrics* const metrics_;
};

}  // namespace

PrometheusMetrics::PrometheusMetrics(
    std::vector<const google::protobuf::ServiceDescriptor*> services)
    : registry_(std::make_shared<prometheus::Registry>()),
      started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("Total number of RPCs started on the server.")
                   .Register(*registry_)),
      handled_(
          prometheus::BuildCounter()
              .Name("grpc_server_handled_total")
              .Help(
                  "Total number of RPCs completed on the server, regardless of success or failure.")
              .Register(*registry_)),
      handling_seconds_(
          prometheus::BuildHistogram()
              .Name("grpc_server_handling_seconds")
              .Help(
                  "Histogram of response latency (seconds) of gRPC that had been application-level "
                  "handled by the server.")
              .Register(*registry_)),
      jobs_(prometheus::BuildGauge()
                .Name("hpsched_jobs")
                .Help("Jobs held by the server.")
                .Register(*registry_)
                .Add({})),
      values_served_(prometheus::BuildCounter()
                         .Name("hpsched_values_served_total")
                         .Help("Schedule values returned by GetValues, BatchGetValues and Preview.")
                         .Register(*registry_)
                         .Add({})),
      store_write_seconds_(prometheus::BuildHistogram()
                               .Name("hpsched_store_write_seconds")
                               .Help("Latency of job store writes (Put and Delete).")
                               .Register(*registry_)
                               .Add({}, LatencyBuckets())),
      store_write_errors_(prometheus::BuildCounter()
                              .Name("hpsched_store_write_errors_total")
                              .Help("Job store writes that failed.")
                              .Register(*registry_)
                              .Add({})),
      updates_(prometheus::BuildCounter()
                   .Name("hpsched_updates_total")
                   .Help("UpdateJob calls that changed a job.")
                   .Register(*registry_)
                   .Add({})),
      metric_reports_(prometheus::BuildCounter()
                          .Name("hpsched_metric_reports_total")
                          .Help("ReportMetrics calls that recorded a new report.")
                          .Register(*registry_)
                          .Add({})),
      plateau_reductions_(prometheus::BuildCounter()
                              .Name("hpsched_plateau_reductions_total")
                              .Help("Metric reports that made a reduce_on_plateau schedule reduce.")
                              .Register(*registry_)
                              .Add({})) {
  for (const auto* service : services) {
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      const char* type = method->client_streaming()
                             ? (method->server_streaming() ? "bidi_stream" : "client_stream")
                             : (method->server_streaming() ? "server_stream" : "unary");
      const std::string name = "/" + service->full_name() + "/" + method->name();
      known_.emplace(name, MakeSeries(name, type));
    }
  }
}

MethodSeries PrometheusMetrics::MakeSeries(absl::string_view method, absl::string_view type) {
  std::vector<std::string> parts = absl::StrSplit(method.substr(1), '/');
  const std::string service = parts.empty() ? "" : parts[0];
  const std::string name = parts.size() < 2 ? "" : parts[1];
  const prometheus::Labels labels = {
      {"grpc_type", std::string(type)}, {"grpc_service", service}, {"grpc_method", name}};
  MethodSeries series;
  series.started = &started_.Add(labels);
  for (size_t code = 0; code < kCodeNames.size(); ++code) {
    prometheus::Labels with_code = labels;
    with_code["grpc_code"] = kCodeNames[code];
    series.handled[code] = &handled_.Add(with_code);
  }
  series.seconds = &handling_seconds_.Add(labels, LatencyBuckets());
  return series;
}

MethodSeries* PrometheusMetrics::RpcStarted(absl::string_view method) {
  MethodSeries* series = nullptr;
  if (auto it = known_.find(method); it != known_.end()) {
    series = &it->second;
  } else {
    absl::MutexLock lock(&mutex_);
    auto& slot = others_[method];
    if (slot == nullptr) slot = std::make_unique<MethodSeries>(MakeSeries(method, "unknown"));
    series = slot.get();
  }
  series->started->Increment();
  return series;
}

void PrometheusMetrics::RpcHandled(MethodSeries* series, grpc::StatusCode code, double seconds) {
  const size_t index =
      static_cast<size_t>(code) < kCodeNames.size() ? static_cast<size_t>(code) : 2;
  series->handled[index]->Increment();
  series->seconds->Observe(seconds);
}

void PrometheusMetrics::ValuesServed(int64_t count) {
  values_served_.Increment(static_cast<double>(count));
}

void PrometheusMetrics::JobCount(size_t jobs) { jobs_.Set(static_cast<double>(jobs)); }

void PrometheusMetrics::OnJobEvent(const jobs::JobEvent& event) {
  switch (event.type) {
    case jobs::JobEvent::Type::kUpdated:
      updates_.Increment();
      break;
    case jobs::JobEvent::Type::kPlateauReduced:
      plateau_reductions_.Increment();
      metric_reports_.Increment();
      break;
    case jobs::JobEvent::Type::kMetricsReported:
      metric_reports_.Increment();
      break;
    case jobs::JobEvent::Type::kDeleted:
    case jobs::JobEvent::Type::kUnchanged:
      break;
  }
}

namespace {

// Gauges whose values are read at scrape time.
class SampledGaugeSet final : public prometheus::Collectable {
 public:
  using Gauges = std::vector<std::tuple<std::string, std::string, std::function<double()>>>;
  explicit SampledGaugeSet(Gauges gauges) : gauges_(std::move(gauges)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    for (const auto& [name, help, sample] : gauges_) {
      prometheus::MetricFamily family;
      family.name = name;
      family.help = help;
      family.type = prometheus::MetricType::Gauge;
      family.metric.emplace_back();
      family.metric.back().gauge.value = sample();
      families.push_back(std::move(family));
    }
    return families;
  }

 private:
  Gauges gauges_;
};

}  // namespace

std::shared_ptr<prometheus::Collectable> PrometheusMetrics::SampledGauges(
    std::vector<std::tuple<std::string, std::string, std::function<double()>>> gauges) {
  return std::make_shared<SampledGaugeSet>(std::move(gauges));
}

void PrometheusMetrics::StoreWrite(double seconds, bool ok) {
  store_write_seconds_.Observe(seconds);
  if (!ok) store_write_errors_.Increment();
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
PrometheusMetrics::InterceptorFactory() {
  return std::make_unique<MetricsInterceptorFactory>(this);
}

}  // namespace hpsched::metrics
