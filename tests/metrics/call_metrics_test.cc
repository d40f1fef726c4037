// The per-call metrics (server/metrics/sharded_cells.h, CallSeries in prometheus_metrics.h): a
// scrape shows exactly what was observed, in the exposition prometheus-cpp's own Counter and
// Histogram give for the same observations, and concurrent observers lose nothing.
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hpsched/v1/scheduler_service.grpc.pb.h"
#include "metrics/prometheus_metrics.h"
#include "metrics/sharded_cells.h"

namespace hpsched::metrics {
namespace {

const std::vector<int64_t> kBounds = {100, 1000, 10000};

TEST(ShardedHistogramTest, CountsEachObservationInTheFirstBucketAtOrAboveIt) {
  ShardedHistogram histogram(kBounds);
  for (int64_t nanos : {0, 100, 101, 1000, 5000, 10000, 10001, 1000000}) histogram.Observe(nanos);
  histogram.Observe(-5);  // as 0
  const ShardedHistogram::Snapshot snapshot = histogram.Read();
  EXPECT_THAT(snapshot.cumulative, testing::ElementsAre(3, 5, 7, 9));
  EXPECT_EQ(snapshot.count, 9u);
  EXPECT_EQ(snapshot.sum_nanos, 100 + 101 + 1000 + 5000 + 10000 + 10001 + 1000000);
}

TEST(ShardedCellsTest, ConcurrentObserversLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  ShardedCounters<3> counters;
  ShardedHistogram histogram(kBounds);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        counters.Add(static_cast<size_t>(i % 3));
        counters.Add(2, static_cast<uint64_t>(t));
        histogram.Observe((i % 4) * 1000);  // 0, 1000, 2000, 3000: buckets 0, 1, 2, 2
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  // i % 3 over 0..19999: 6667 zeros, 6667 ones, 6666 twos per thread.
  EXPECT_EQ(counters.Value(0), uint64_t{kThreads} * 6667);
  EXPECT_EQ(counters.Value(1), uint64_t{kThreads} * 6667);
  EXPECT_EQ(counters.Value(2),
            uint64_t{kThreads} * 6666 + kPerThread * (0 + 1 + 2 + 3 + 4 + 5 + 6 + 7));
  const ShardedHistogram::Snapshot snapshot = histogram.Read();
  constexpr uint64_t kQuarter = uint64_t{kThreads} * kPerThread / 4;
  EXPECT_THAT(snapshot.cumulative,
              testing::ElementsAre(kQuarter, 2 * kQuarter, 4 * kQuarter, 4 * kQuarter));
  EXPECT_EQ(snapshot.sum_nanos, static_cast<int64_t>(kQuarter) * (1000 + 2000 + 3000));
}

// The exposition lines of the families named `prefix`*, sorted (prometheus-cpp's families keep
// their metrics in a hash map, so the order of its lines is not part of the format).
std::vector<std::string> Lines(const std::vector<prometheus::MetricFamily>& families,
                               const std::string& prefix) {
  std::vector<std::string> lines;
  for (absl::string_view line :
       absl::StrSplit(prometheus::TextSerializer().Serialize(families), '\n')) {
    if (absl::StartsWith(line, prefix) || absl::StartsWith(line, "# HELP " + prefix) ||
        absl::StartsWith(line, "# TYPE " + prefix)) {
      lines.emplace_back(line);
    }
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

const google::protobuf::ServiceDescriptor* Service() {
  // Through a message of its file, which loads the file's descriptors.
  return hpsched::v1::GetValuesRequest::descriptor()->file()->FindServiceByName("SchedulerService");
}

TEST(CallSeriesTest, ScrapeEqualsPrometheusCppForTheSameObservations) {
  struct Call {
    const char* method;
    grpc::StatusCode code;
    int64_t nanos;
  };
  const std::vector<Call> calls = {
      {"GetValues", grpc::StatusCode::OK, 500'000},  // exactly on the 0.0005 s bound
      {"GetValues", grpc::StatusCode::OK, 20'000},
      {"GetValues", grpc::StatusCode::NOT_FOUND, 250'000'000},
      {"GetJob", grpc::StatusCode::INVALID_ARGUMENT, 2'000'000'000},
      {"CreateJob", grpc::StatusCode::OK, 12'000'000'000},  // past the last bound
      {"WatchJob", grpc::StatusCode::CANCELLED, 1'500'000},
  };
  CallSeries series({Service()});
  for (const Call& call : calls) {
    MethodSeries* method =
        series.Started(std::string("/hpsched.v1.SchedulerService/") + call.method);
    series.Handled(method, call.code, call.nanos);
  }
  series.Started("/hpsched.v1.SchedulerService/GetValues");  // started, not yet handled
  series.ValuesServed(40);
  series.ValuesServed(2);

  // The same observations through prometheus-cpp, as the server recorded them before.
  const std::vector<std::string> codes = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  prometheus::Registry registry;
  auto& started = prometheus::BuildCounter()
                      .Name("grpc_server_started_total")
                      .Help("Total number of RPCs started on the server.")
                      .Register(registry);
  auto& handled = prometheus::BuildCounter()
                      .Name("grpc_server_handled_total")
                      .Help(
                          "Total number of RPCs completed on the server, regardless of success "
                          "or failure.")
                      .Register(registry);
  auto& seconds = prometheus::BuildHistogram()
                      .Name("grpc_server_handling_seconds")
                      .Help(
                          "Histogram of response latency (seconds) of gRPC that had been "
                          "application-level handled by the server.")
                      .Register(registry);
  auto& values = prometheus::BuildCounter()
                     .Name("hpsched_values_served_total")
                     .Help("Schedule values returned by GetValues, BatchGetValues and Preview.")
                     .Register(registry)
                     .Add({});
  const prometheus::Histogram::BucketBoundaries bounds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10};
  const auto* service = Service();
  for (int i = 0; i < service->method_count(); ++i) {
    const auto* method = service->method(i);
    const std::string type = method->server_streaming() ? "server_stream" : "unary";
    const prometheus::Labels labels = {{"grpc_type", type},
                                       {"grpc_service", service->full_name()},
                                       {"grpc_method", method->name()}};
    auto& start = started.Add(labels);
    auto& histogram = seconds.Add(labels, bounds);
    std::vector<prometheus::Counter*> by_code;
    for (const std::string& code : codes) {
      prometheus::Labels with_code = labels;
      with_code["grpc_code"] = code;
      by_code.push_back(&handled.Add(with_code));
    }
    for (const Call& call : calls) {
      if (call.method != method->name()) continue;
      start.Increment();
      by_code[static_cast<size_t>(call.code)]->Increment();
      histogram.Observe(static_cast<double>(call.nanos) / 1e9);
    }
    if (method->name() == "GetValues") start.Increment();
  }
  values.Increment(40);
  values.Increment(2);

  for (const std::string prefix : {"grpc_server_started_total", "grpc_server_handled_total",
                                   "grpc_server_handling_seconds", "hpsched_values_served_total"}) {
    SCOPED_TRACE(prefix);
    EXPECT_EQ(Lines(series.Collect(), prefix), Lines(registry.Collect(), prefix));
  }
  // And the values themselves, spelled out.
  const std::vector<std::string> lines = Lines(series.Collect(), "grpc_server_handl");
  const std::string get_values =
      "grpc_method=\"GetValues\",grpc_service=\"hpsched.v1.SchedulerService\",grpc_type=\"unary\"";
  EXPECT_THAT(
      lines, testing::Contains("grpc_server_handled_total{grpc_code=\"OK\"," + get_values + "} 2"));
  EXPECT_THAT(lines, testing::Contains("grpc_server_handling_seconds_bucket{" + get_values +
                                       ",le=\"0.0005\"} 2"));
  EXPECT_THAT(lines,
              testing::Contains("grpc_server_handling_seconds_sum{" + get_values + "} 0.25052"));
  EXPECT_THAT(Lines(series.Collect(), "hpsched_values"),
              testing::Contains("hpsched_values_served_total 42"));
}

TEST(CallSeriesTest, OtherMethodsGetSeriesOnFirstUse) {
  CallSeries series({Service()});
  MethodSeries* reflection =
      series.Started("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  series.Handled(reflection, grpc::StatusCode::OK, 1000);
  EXPECT_EQ(series.Started("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            reflection);
  EXPECT_THAT(Lines(series.Collect(), "grpc_server_started_total"),
              testing::Contains("grpc_server_started_total{grpc_method=\"ServerReflectionInfo\","
                                "grpc_service=\"grpc.reflection.v1alpha.ServerReflection\","
                                "grpc_type=\"unknown\"} 2"));
}

TEST(CallSeriesTest, ConcurrentCallsAndScrapesLoseNothing) {
  constexpr int kThreads = 6;
  constexpr int kCalls = 5000;
  CallSeries series({Service()});
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        MethodSeries* method = series.Started("/hpsched.v1.SchedulerService/GetValues");
        series.Handled(method, i % 2 == 0 ? grpc::StatusCode::OK : grpc::StatusCode::NOT_FOUND,
                       1000);
        series.ValuesServed(1);
      }
      running.fetch_sub(1);
    });
  }
  // Scrapes while the calls run: each sees a count equal to its +Inf bucket, never decreasing.
  uint64_t last_count = 0;
  for (int scrape = 0; scrape < 1000 && running.load() > 0; ++scrape) {
    for (const prometheus::MetricFamily& family : series.Collect()) {
      if (family.name != "grpc_server_handling_seconds") continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        if (metric.label[0].value != "GetValues") continue;
        EXPECT_EQ(metric.histogram.bucket.back().cumulative_count, metric.histogram.sample_count);
        EXPECT_GE(metric.histogram.sample_count, last_count);
        last_count = metric.histogram.sample_count;
      }
    }
  }
  for (std::thread& thread : threads) thread.join();
  const std::string get_values =
      "grpc_method=\"GetValues\",grpc_service=\"hpsched.v1.SchedulerService\",grpc_type=\"unary\"";
  const std::string half = std::to_string(kThreads * kCalls / 2);
  const std::string all = std::to_string(kThreads * kCalls);
  const std::vector<std::string> lines = Lines(series.Collect(), "");
  EXPECT_THAT(lines, testing::Contains("grpc_server_started_total{" + get_values + "} " + all));
  EXPECT_THAT(lines, testing::Contains("grpc_server_handled_total{grpc_code=\"OK\"," + get_values +
                                       "} " + half));
  EXPECT_THAT(lines, testing::Contains("grpc_server_handled_total{grpc_code=\"NotFound\"," +
                                       get_values + "} " + half));
  EXPECT_THAT(lines,
              testing::Contains("grpc_server_handling_seconds_count{" + get_values + "} " + all));
  EXPECT_THAT(lines, testing::Contains("hpsched_values_served_total " + all));
}

}  // namespace
}  // namespace hpsched::metrics
