// The hpsched commands against an in-process SchedulerService over the memory store: printed
// values match the reference library's golden numbers (tests/golden/torch_golden.json), and errors
// keep their messages and exit codes.
#include "client/cli/commands.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/client.h"
#include "golden/golden_util.h"
#include "jobs/clock.h"
#include "jobs/job_registry.h"
#include "service/scheduler_service.h"
#include "store/memory_job_store.h"

namespace hpsched::cli {
namespace {

using ::testing::HasSubstr;

// The golden case `name` of the PyTorch file.
golden::GoldenCase TorchCase(const std::string& name) {
  const golden::GoldenFile file = hpsched::testing::LoadGolden("torch_golden.json");
  for (const golden::GoldenCase& c : file.cases()) {
    if (c.name() == name) return c;
  }
  ADD_FAILURE() << "no golden case " << name;
  return {};
}

std::string ScheduleJson(const golden::GoldenCase& c) {
  std::string json;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(c.schedule(), &json).ok());
  return json;
}

std::string BaseText(const golden::GoldenCase& c) {
  std::vector<std::string> parts;
  for (double b : c.base_values()) parts.push_back(absl::StrCat(b));
  return absl::StrJoin(parts, ",");
}

// Parses "step\tv\tv..." rows.
std::map<int64_t, std::vector<double>> ParseRows(const std::string& text) {
  std::map<int64_t, std::vector<double>> rows;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    int64_t step = 0;
    EXPECT_TRUE(absl::SimpleAtoi(fields[0], &step)) << line;
    for (size_t i = 1; i < fields.size(); ++i) {
      double value = 0;
      EXPECT_TRUE(absl::SimpleAtod(fields[i], &value)) << line;
      rows[step].push_back(value);
    }
  }
  return rows;
}

// Every golden point below `end` appears in `rows` with the reference value.
void ExpectGoldenRows(const golden::GoldenCase& c, int64_t end,
                      const std::map<int64_t, std::vector<double>>& rows) {
  int checked = 0;
  for (const golden::GoldenPoint& point : c.points()) {
    if (point.step() >= end) continue;
    auto it = rows.find(point.step());
    ASSERT_NE(it, rows.end()) << "step " << point.step();
    ASSERT_EQ(it->second.size(), static_cast<size_t>(point.values_size()));
    for (int g = 0; g < point.values_size(); ++g) {
      EXPECT_TRUE(
          hpsched::testing::GoldenClose(point.values(g), it->second[g], hpsched::testing::Scale(c)))
          << "step " << point.step() << " group " << g << ": " << it->second[g] << " vs "
          << point.values(g);
      ++checked;
    }
  }
  EXPECT_GT(checked, 10);
}

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    client::ClientOptions options;
    options.timeout = absl::Seconds(30);
    client_ = std::make_unique<client::Client>(server_->InProcessChannel(grpc::ChannelArguments()),
                                               options);
  }
  void TearDown() override { server_->Shutdown(); }

  Output Text() { return Output{.out = &out_, .json = false}; }
  Output Json() { return Output{.out = &out_, .json = true}; }

  absl::Status CreateDemo(const std::string& id = "demo") {
    return Create(client_.get(), id,
                  {.schedule = R"({"step":{"step_size":10,"gamma":0.5}})", .base = "0.1"}, Text());
  }

  store::MemoryJobStore store_;
  jobs::SystemClock clock_;
  jobs::JobRegistry registry_{&store_, &clock_};
  service::SchedulerService service_{&registry_};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<client::Client> client_;
  std::ostringstream out_;
};

TEST_F(CommandsTest, PreviewPrintsTheReferenceValues) {
  const golden::GoldenCase c = TorchCase("cosine_tmax20_etamin0.001");
  SpecOptions spec{.schedule = ScheduleJson(c), .base = BaseText(c), .steps = "0:60"};
  ASSERT_TRUE(Preview(client_.get(), spec, Text()).ok());
  ExpectGoldenRows(c, 60, ParseRows(out_.str()));
}

TEST_F(CommandsTest, LocalPreviewPrintsWhatTheServerPrints) {
  const golden::GoldenCase c = TorchCase("cosine_tmax20_etamin0.001");
  SpecOptions spec{.schedule = ScheduleJson(c), .base = BaseText(c), .steps = "0:60"};
  ASSERT_TRUE(Preview(client_.get(), spec, Text()).ok());
  const std::string remote = out_.str();
  out_.str("");
  spec.local = true;
  ASSERT_TRUE(Preview(nullptr, spec, Text()).ok());
  EXPECT_EQ(out_.str(), remote);
  ExpectGoldenRows(c, 60, ParseRows(out_.str()));
}

TEST_F(CommandsTest, ValuesOfACreatedJobAreTheReferenceValues) {
  const golden::GoldenCase c = TorchCase("multi_step_30_80_gamma0.1");
  ASSERT_TRUE(
      Create(client_.get(), "ms", {.schedule = ScheduleJson(c), .base = BaseText(c)}, Text()).ok());
  EXPECT_THAT(out_.str(), HasSubstr("\"name\": \"jobs/ms\""));
  out_.str("");
  ASSERT_TRUE(Values(client_.get(), "ms", {.steps = "0:120"}, Text()).ok());
  ExpectGoldenRows(c, 120, ParseRows(out_.str()));
}

TEST_F(CommandsTest, ValuesJsonRowsNameTheSeries) {
  ASSERT_TRUE(CreateDemo().ok());
  out_.str("");
  ASSERT_TRUE(Values(client_.get(), "demo", {.steps = "9:11"}, Json()).ok());
  EXPECT_EQ(out_.str(),
            "{\"step\":9,\"values\":{\"lr/0\":0.1}}\n{\"step\":10,\"values\":{\"lr/0\":0.05}}\n");
}

TEST_F(CommandsTest, GetListDeleteInJson) {
  ASSERT_TRUE(CreateDemo("a").ok());
  ASSERT_TRUE(CreateDemo("b").ok());
  out_.str("");
  ASSERT_TRUE(Get(client_.get(), "a", Json()).ok());
  const std::string got = out_.str();
  EXPECT_EQ(std::count(got.begin(), got.end(), '\n'), 1);
  EXPECT_THAT(got, HasSubstr("\"name\":\"jobs/a\""));
  out_.str("");
  ASSERT_TRUE(List(client_.get(), 1, Json()).ok());  // One job a page: two pages.
  const std::string listed = out_.str();
  EXPECT_EQ(std::count(listed.begin(), listed.end(), '\n'), 2);
  EXPECT_THAT(listed, HasSubstr("jobs/a"));
  EXPECT_THAT(listed, HasSubstr("jobs/b"));
  out_.str("");
  ASSERT_TRUE(Delete(client_.get(), "a", Json()).ok());
  EXPECT_EQ(out_.str(), "{}\n");
  const absl::Status missing = Get(client_.get(), "a", Json());
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ExitCode(missing), 1);
}

TEST_F(CommandsTest, UpdateScalesTheValuesFromAStep) {
  ASSERT_TRUE(CreateDemo().ok());
  ASSERT_TRUE(Update(client_.get(), "demo", {.from = 5, .scale = "2"}, Text()).ok());
  out_.str("");
  ASSERT_TRUE(Values(client_.get(), "demo", {.steps = "4:6"}, Text()).ok());
  EXPECT_EQ(out_.str(), "4\t0.10000000000000001\n5\t0.20000000000000001\n");
}

TEST_F(CommandsTest, ArgumentErrorsExitWithTwo) {
  const std::vector<std::pair<absl::Status, std::string>> cases = {
      {Preview(client_.get(), {}, Text()), "--schedule: is required"},
      {Create(client_.get(), "x", {}, Text()), "--schedule or --job: one is required"},
      {Update(client_.get(), "x", {.scale = "2"}, Text()), "--from: is required"},
      {Update(client_.get(), "x", {.from = 1}, Text()),
       "--schedule, --scale or --pin: give exactly one"},
      {Update(client_.get(), "x", {.from = 1, .scale = "1,2"}, Text()), "--scale: one factor"},
      {Report(client_.get(), "x", {}, Text()), "--step: is required"},
      {Report(client_.get(), "x", {.step = 1, .metric = "loss"}, Text()),
       "--metric: expected name=value[,name=value], got \"loss\""},
      {Watch(client_.get(), "x", {.count = -1}, Text()), "--count: must be >= 0"},
      {Watch(client_.get(), "x", {.interval = absl::ZeroDuration()}, Text()),
       "--interval: must be > 0"},
      {Plot(client_.get(), "", {.width = -1}, Text()),
       "--width, --height: must be >= 0 (0: the default)"},
      {Plot(client_.get(), "", {.color = "sometimes"}, Text()),
       "--color: must be auto, always or never, got \"sometimes\""},
      {Plot(client_.get(), "x", {.spec = {.schedule = "{}"}}, Text()),
       "plot: give a JOB_ID or --schedule, not both"},
      {Plot(client_.get(), "x", {.spec = {.steps = "0:10000001"}}, Text()),
       "--steps: plot reads every step, at most 10000000"},
  };
  for (const auto& [status, message] : cases) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_EQ(status.message(), message);
    EXPECT_EQ(ExitCode(status), 2);
  }
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CommandsTest, ServerInvalidArgumentExitsWithTwo) {
  ASSERT_TRUE(CreateDemo().ok());
  const absl::Status status = Values(client_.get(), "demo", {.hyperparameter = "momentum"}, Text());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ExitCode(status), 2);
}

TEST_F(CommandsTest, PlotJsonOfASpec) {
  PlotOptions options{.spec = {.schedule = R"({"step":{"step_size":2,"gamma":0.5}})",
                               .base = "1",
                               .steps = "0:4",
                               .local = true}};
  ASSERT_TRUE(Plot(nullptr, "", options, Json()).ok());
  EXPECT_THAT(out_.str(), HasSubstr("[[0,1],[1,1],[2,0.5],[3,0.5]]"));
}

}  // namespace
}  // namespace hpsched::cli
