#include "metrics/prometheus_metrics.h"

#include <cmath>
#include <limits>

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

// LatencyBuckets in nanoseconds (each bound is a whole number of them).
const std::vector<int64_t>& LatencyBucketsNanos() {
  static const auto* nanos = [] {
    auto* out = new std::vector<int64_t>;
    for (double bound : LatencyBuckets()) out->push_back(std::llround(bound * 1e9));
    return out;
  }();
  return *nanos;
}

constexpr char kStartedName[] = "grpc_server_started_total";
constexpr char kStartedHelp[] = "Total number of RPCs started on the server.";
constexpr char kHandledName[] = "grpc_server_handled_total";
constexpr char kHandledHelp[] =
    "Total number of RPCs completed on the server, regardless of success or failure.";
constexpr char kSecondsName[] = "grpc_server_handling_seconds";
constexpr char kSecondsHelp[] =
    "Histogram of response latency (seconds) of gRPC that had been application-level handled by "
    "the server.";
constexpr char kValuesName[] = "hpsched_values_served_total";
constexpr char kValuesHelp[] = "Schedule values returned by GetValues, BatchGetValues and Preview.";

// Labels sorted by name, as prometheus-cpp's std::map gives them.
std::vector<prometheus::ClientMetric::Label> MethodLabels(const MethodSeries& series,
                                                          const char* code) {
  std::vector<prometheus::ClientMetric::Label> labels;
  if (code != nullptr) labels.push_back({"grpc_code", code});
  labels.push_back({"grpc_method", series.method});
  labels.push_back({"grpc_service", series.service});
  labels.push_back({"grpc_type", series.type});
  return labels;
}

prometheus::MetricFamily Family(const char* name, const char* help, prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

// Appends the series of one method to the three families.
void CollectMethod(const MethodSeries& series, prometheus::MetricFamily* started,
                   prometheus::MetricFamily* handled, prometheus::MetricFamily* seconds) {
  prometheus::ClientMetric& start = started->metric.emplace_back();
  start.label = MethodLabels(series, nullptr);
  start.counter.value = static_cast<double>(series.started.Value(0));
  for (size_t code = 0; code < kCodeNames.size(); ++code) {
    prometheus::ClientMetric& done = handled->metric.emplace_back();
    done.label = MethodLabels(series, kCodeNames[code]);
    done.counter.value = static_cast<double>(series.handled.Value(code));
  }
  const ShardedHistogram::Snapshot snapshot = series.seconds.Read();
  prometheus::ClientMetric& histogram = seconds->metric.emplace_back();
  histogram.label = MethodLabels(series, nullptr);
  histogram.histogram.sample_count = snapshot.count;
  histogram.histogram.sample_sum = static_cast<double>(snapshot.sum_nanos) / 1e9;
  const auto& bounds = LatencyBuckets();
  for (size_t i = 0; i < snapshot.cumulative.size(); ++i) {
    histogram.histogram.bucket.push_back(
        {snapshot.cumulative[i],
         i < bounds.size() ? bounds[i] : std::numeric_limits<double>::infinity()});
  }
}

}  // namespace

MethodSeries::MethodSeries(absl::string_view full_method, absl::string_view type)
    : type(type), seconds(LatencyBucketsNanos()) {
  std::vector<std::string> parts = absl::StrSplit(full_method.substr(1), '/');
  service = parts.empty() ? "" : parts[0];
  method = parts.size() < 2 ? "" : parts[1];
}

CallSeries::CallSeries(std::vector<const google::protobuf::ServiceDescriptor*> services) {
  for (const auto* service : services) {
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      const char* type = method->client_streaming()
                             ? (method->server_streaming() ? "bidi_stream" : "client_stream")
                             : (method->server_streaming() ? "server_stream" : "unary");
      const std::string name = "/" + service->full_name() + "/" + method->name();
      auto& slot = known_[name];
      if (slot != nullptr) continue;
      slot = std::make_unique<MethodSeries>(name, type);
      known_order_.push_back(slot.get());
    }
  }
}

MethodSeries* CallSeries::Series(absl::string_view method) {
  if (auto it = known_.find(method); it != known_.end()) return it->second.get();
  absl::MutexLock lock(&mutex_);
  auto& slot = others_[method];
  if (slot == nullptr) {
    slot = std::make_unique<MethodSeries>(method, "unknown");
    others_order_.push_back(slot.get());
  }
  return slot.get();
}

MethodSeries* CallSeries::Started(absl::string_view method) {
  MethodSeries* series = Series(method);
  Started(series);
  return series;
}

void CallSeries::Started(MethodSeries* series) { series->started.Add(0); }

void CallSeries::Handled(MethodSeries* series, grpc::StatusCode code, int64_t nanos) {
  const size_t index = static_cast<size_t>(code) < kStatusCodes ? static_cast<size_t>(code) : 2;
  series->handled.Add(index);
  series->seconds.Observe(nanos);
}

std::vector<prometheus::MetricFamily> CallSeries::Collect() const {
  std::vector<prometheus::MetricFamily> families;
  families.push_back(Family(kStartedName, kStartedHelp, prometheus::MetricType::Counter));
  families.push_back(Family(kHandledName, kHandledHelp, prometheus::MetricType::Counter));
  families.push_back(Family(kSecondsName, kSecondsHelp, prometheus::MetricType::Histogram));
  for (const MethodSeries* series : known_order_) {
    CollectMethod(*series, &families[0], &families[1], &families[2]);
  }
  {
    absl::MutexLock lock(&mutex_);
    for (const MethodSeries* series : others_order_) {
      CollectMethod(*series, &families[0], &families[1], &families[2]);
    }
  }
  prometheus::MetricFamily values =
      Family(kValuesName, kValuesHelp, prometheus::MetricType::Counter);
  values.metric.emplace_back().counter.value = static_cast<double>(values_served_.Value(0));
  families.push_back(std::move(values));
  return families;
}

PrometheusMetrics::PrometheusMetrics(
    std::vector<const google::protobuf::ServiceDescriptor*> services)
    : calls_(std::make_shared<CallSeries>(std::move(services))),
      registry_(std::make_shared<prometheus::Registry>()),
      jobs_(prometheus::BuildGauge()
                .Name("hpsched_jobs")
                .Help("Jobs held by the server.")
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
                              .Add({})) {}

void PrometheusMetrics::ValuesServed(int64_t count) { calls_->ValuesServed(count); }

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

}  // namespace hpsched::metrics
