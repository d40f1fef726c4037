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
#include "service/job_filter.h"
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

// Parses "step\tv\tv..." rows after the header line "step\t...".
std::map<int64_t, std::vector<double>> ParseRows(const std::string& text) {
  std::map<int64_t, std::vector<double>> rows;
  bool header = true;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, '\t');
    if (header) {
      EXPECT_EQ(fields[0], "step") << line;
      header = false;
      continue;
    }
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
  ASSERT_TRUE(List(client_.get(), {.page_size = 1}, Json()).ok());  // One job a page: two pages.
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
  EXPECT_EQ(out_.str(), "step\tlr/0\n4\t0.1\n5\t0.2\n");
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

// Text rows: a header naming every column, and the shortest text that reads back as each double
// (what --json prints), not 17 digits.
TEST_F(CommandsTest, ValuesTextHasAHeaderAndShortestNumbers) {
  ASSERT_TRUE(Create(client_.get(), "two", {.job = R"({"hyperparameters":[
                         {"name":"lr","base_values":[0.1,0.3],"schedule":{"step":{"step_size":10}}},
                         {"name":"momentum","base_values":[0.9],
                          "schedule":{"constant":{"factor":1}}}]})"},
                     Text())
                  .ok());
  out_.str("");
  ASSERT_TRUE(
      Values(client_.get(), "two", {.steps = "9:11", .hyperparameter = "all"}, Text()).ok());
  EXPECT_EQ(out_.str(),
            "step\tlr/0\tlr/1\tmomentum/0\n"
            "9\t0.1\t0.3\t0.9\n"
            "10\t0.010000000000000002\t0.03\t0.9\n");
}

// A reduce_on_plateau job without reports: values used to print the first chunk and then fail
// with DEADLINE_EXCEEDED (the default policy waits for the reports). Now the values come at once,
// the ones that wait for reports marked provisional; --pending_policy=wait still waits.
TEST_F(CommandsTest, ValuesOfAPlateauJobDoNotWaitAndSayWhatIsProvisional) {
  ASSERT_TRUE(Create(client_.get(), "live",
                     {.job = R"({"hyperparameters":[{"name":"lr","base_values":1,
                         "schedule":{"reduce_on_plateau":{"metric":"loss","patience":0}}}],
                         "metrics":[{"name":"loss","every_steps":10}]})"},
                     Text())
                  .ok());
  out_.str("");
  ASSERT_TRUE(Values(client_.get(), "live", {.steps = "0:40"}, Text()).ok());
  std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 41u);
  EXPECT_EQ(lines[0], "step\tlr/0");
  EXPECT_EQ(lines[40], "39\t1\tprovisional");
  out_.str("");
  ASSERT_TRUE(Values(client_.get(), "live", {.steps = "39:40"}, Json()).ok());
  EXPECT_EQ(out_.str(), "{\"step\":39,\"values\":{\"lr/0\":1},\"provisional\":true}\n");

  const absl::Status bad = Values(client_.get(), "live", {.pending_policy = "later"}, Text());
  EXPECT_EQ(bad.message(),
            "--pending_policy: must be provisional_now, wait or wait_then_provisional, got "
            "\"later\"");
  client::ClientOptions quick;
  quick.timeout = absl::Milliseconds(500);
  client::Client impatient(server_->InProcessChannel(grpc::ChannelArguments()), quick);
  const absl::Status waited =
      Values(&impatient, "live", {.steps = "0:40", .pending_policy = "wait"}, Text());
  EXPECT_EQ(waited.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(waited.message(), HasSubstr("--pending_policy=provisional_now prints them at once"));
}

TEST_F(CommandsTest, CreateReadsPlainNumbersAndPyTorchSpellings) {
  ASSERT_TRUE(
      Create(client_.get(), "oc",
             {.schedule = R"({"one_cycle":{"max_lr":0.1,"total_steps":100}})", .base = "0.01,0.02"},
             Text())
          .ok());
  ASSERT_TRUE(
      Create(client_.get(), "cos", {.schedule = R"({"cosine_annealing":{"T_max":20}})"}, Text())
          .ok());
  out_.str("");
  ASSERT_TRUE(Get(client_.get(), "cos", Json()).ok());
  EXPECT_THAT(out_.str(), HasSubstr("\"cosine_annealing\":{\"t_max\":\"20\"}"));
  const absl::Status typo =
      Create(client_.get(), "x", {.schedule = R"({"cosine_anealing":{"T_max":20}})"}, Text());
  EXPECT_EQ(ExitCode(typo), 2);
  EXPECT_THAT(typo.message(), HasSubstr("schedule.cosine_anealing: is not a field of "
                                        "hpsched.v1.Schedule; did you mean \"cosine_annealing\"?"));
  const absl::Status job_typo = Create(
      client_.get(), "x",
      {.job =
           R"({"hyperparameters":[{"name":"lr","base_values":[1],"schedule":{"step":{"stepsize":3,"gama":1}}}]})"},
      Text());
  EXPECT_EQ(job_typo.message(),
            "job.hyperparameters[0].schedule.step.gama: is not a field of hpsched.v1.StepSchedule; "
            "did you mean \"gamma\"? (valid: gamma, step_size)");
}

TEST_F(CommandsTest, DeleteSaysWhatItDid) {
  ASSERT_TRUE(CreateDemo("a").ok());
  out_.str("");
  ASSERT_TRUE(Delete(client_.get(), "a", Text()).ok());
  EXPECT_EQ(out_.str(), "deleted jobs/a\n");
}

class ListTest : public CommandsTest {
 protected:
  void CreateLabeled(const std::string& id, const std::string& team) {
    ASSERT_TRUE(Create(client_.get(), id,
                       {.job = absl::StrCat(R"({"labels":{"team":")", team,
                                            R"("},"hyperparameters":[{"name":"lr","base_values":[1],
                                            "schedule":{"step":{"step_size":10}}}]})")},
                       Text())
                    .ok());
  }
  void SetUp() override {
    CommandsTest::SetUp();
    CreateLabeled("a", "vision");
    CreateLabeled("exp-1", "vision");
    CreateLabeled("exp-2", "nlp");
    CreateLabeled("exp-3", "vision");
    CreateLabeled("z", "vision");
    out_.str("");
  }
};

TEST_F(ListTest, PrintsATableByDefault) {
  ASSERT_TRUE(List(client_.get(), {}, Text()).ok());
  std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[0], "ID     HYPERPARAMETERS  VERSION  LABELS       UPDATED");
  EXPECT_THAT(lines[2], ::testing::StartsWith("exp-1  lr               1        team=vision  20"));
  EXPECT_THAT(lines[3], ::testing::StartsWith("exp-2  lr               1        team=nlp     20"));
}

TEST_F(ListTest, LabelAndIdPrefixFilterOnTheServerAcrossPages) {
  ASSERT_TRUE(List(client_.get(),
                   {.page_size = 1, .filter = R"(id:"exp-*")", .labels = {"team=vision"}}, Json())
                  .ok());
  std::vector<std::string> lines = absl::StrSplit(out_.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("\"name\":\"jobs/exp-1\""));
  EXPECT_THAT(lines[1], HasSubstr("\"name\":\"jobs/exp-3\""));

  // The pages themselves: full pages of matches, a token while more jobs follow, none at the end.
  auto first = client_->ListJobs(2, "", R"(labels.team = "vision")");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->jobs_size(), 2);
  EXPECT_EQ(first->jobs(1).name(), "jobs/exp-1");
  auto second = client_->ListJobs(2, first->next_page_token(), R"(labels.team = "vision")");
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->jobs_size(), 2);
  EXPECT_EQ(second->jobs(0).name(), "jobs/exp-3");
  EXPECT_EQ(second->jobs(1).name(), "jobs/z");
  EXPECT_EQ(second->next_page_token(), "");
  auto none = client_->ListJobs(10, "", R"(labels.team = "audio" AND id = "a")");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->jobs_size(), 0);
  EXPECT_EQ(none->next_page_token(), "");
  auto exact = client_->ListJobs(10, "", "id = exp-2");
  ASSERT_TRUE(exact.ok());
  ASSERT_EQ(exact->jobs_size(), 1);
  EXPECT_EQ(exact->jobs(0).name(), "jobs/exp-2");
}

TEST_F(ListTest, UnsupportedFiltersAreInvalidArgumentNamingThePosition) {
  const std::string supported =
      " (supported: labels.KEY = \"VALUE\", id = \"ID\", id:\"PREFIX*\", joined by AND)";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"(labels.team = "vision" OR id = "a")", "position 24: OR is not supported"},
      {R"(NOT id = "a")", "position 1: NOT where a term must start"},
      {R"((id = "a"))", "position 1: '(' is not supported"},
      {R"(name = "a")", "position 1: the field \"name\" is not supported"},
      {R"(id:"a")", "position 4: id: takes a prefix ending in *, e.g. id:\"exp-*\""},
      {R"(id = "a*b")", "position 6: * is only supported at the end of an id"},
      {R"(labels.team:"x")",
       "position 12: labels.KEY takes = (the has operator : is not "
       "supported)"},
      {R"(labels.team = "x" AND)", "position 22: a term is missing at the end"},
      {R"(labels.team = "x)", "position 15: a string that is never closed"},
      {R"(id < "b")", "position 4: '<' is not supported"},
  };
  for (const auto& [filter, want] : cases) {
    auto page = client_->ListJobs(10, "", filter);
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument) << filter;
    EXPECT_EQ(page.status().message(), absl::StrCat("filter: ", want, supported)) << filter;
  }
  const absl::Status label = List(client_.get(), {.labels = {"team"}}, Text());
  EXPECT_EQ(label.message(), "--label: must be KEY=VALUE, got \"team\"");
  EXPECT_TRUE(service::JobFilter::Parse("").ok());
}

TEST_F(CommandsTest, PlotSvgSaysWhatItWrote) {
  const std::string path = ::testing::TempDir() + "/plot_says.svg";
  PlotOptions options{.spec = {.schedule = R"({"step":{"step_size":2,"gamma":0.5}})",
                               .base = "1",
                               .steps = "0:4",
                               .local = true},
                      .svg = path};
  ASSERT_TRUE(Plot(nullptr, "", options, Text()).ok());
  EXPECT_EQ(out_.str(), absl::StrCat("wrote ", path, " (1 panel, steps 0:4, base 1 (local))\n"));
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
