// SchedulerService over an in-process channel, through the C++ client library: every RPC, its error
// codes, the golden values from PyTorch, and that no bad request hurts the server. Time is a fake
// clock and the service's work (retries, deadlines, watch deliveries) runs only when a test runs
// the manual executor: no test sleeps to wait for time.
#include "service/scheduler_service.h"

#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "client/client.h"
#include "client/prefetching_reader.h"
#include "golden/golden_util.h"
#include "jobs/executor.h"
#include "jobs/work_pool.h"
#include "store/memory_job_store.h"

namespace hpsched {
namespace {

using ::testing::HasSubstr;

v1::Schedule ScheduleJson(const std::string& json) {
  v1::Schedule schedule;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &schedule).ok()) << json;
  return schedule;
}

v1::Job LrJob(const std::string& schedule_json, std::vector<double> bases = {0.1}) {
  v1::Job job;
  auto* hp = job.add_hyperparameters();
  hp->set_name("lr");
  hp->mutable_base_values()->Add(bases.begin(), bases.end());
  *hp->mutable_schedule() = ScheduleJson(schedule_json);
  return job;
}

// An in-process server for `service`, and a client of it (30 s per call).
std::unique_ptr<grpc::Server> StartInProcess(grpc::Service* service) {
  grpc::ServerBuilder builder;
  builder.RegisterService(service);
  return builder.BuildAndStart();
}

std::unique_ptr<client::Client> InProcessClient(grpc::Server& server) {
  client::ClientOptions options;
  options.timeout = absl::Seconds(30);
  return std::make_unique<client::Client>(server.InProcessChannel(grpc::ChannelArguments()),
                                          options);
}

class SchedulerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartInProcess(&service_);
    client_ = InProcessClient(*server_);
  }
  void TearDown() override { server_->Shutdown(); }

  service::ServiceOptions Options() {
    service::ServiceOptions options;
    options.clock = &clock_;
    options.executor = &executor_;
    return options;
  }

  store::MemoryJobStore store_;
  jobs::FakeClock clock_{absl::Now()};
  jobs::ManualExecutor executor_{&clock_};
  jobs::JobRegistry registry_{&store_, &clock_};
  service::SchedulerService service_{&registry_, Options()};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(SchedulerServiceTest, CreateGetListDelete) {
  auto job = client_->CreateJob("demo", LrJob(R"({"step": {"step_size": 10, "gamma": 0.5}})"));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name(), "jobs/demo");
  EXPECT_EQ(job->version(), 1);
  EXPECT_FALSE(job->etag().empty());
  EXPECT_GT(job->create_time().seconds(), 1'600'000'000);
  // The stored spec comes back as it was sent, unset parameters still unset.
  EXPECT_EQ(job->hyperparameters(0).schedule().step().step_size(), 10);
  EXPECT_FALSE(
      LrJob(R"({"step": {"step_size": 10}})").hyperparameters(0).schedule().step().has_gamma());

  auto same = client_->CreateJob("demo", LrJob(R"({"step": {"step_size": 10, "gamma": 0.5}})"));
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->etag(), job->etag());
  auto conflict = client_->CreateJob("demo", LrJob(R"({"step": {"step_size": 20}})"));
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);

  auto got = client_->GetJob("demo");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->SerializeAsString(), job->SerializeAsString());
  EXPECT_TRUE(client_->GetJob("jobs/demo").ok());

  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        client_->CreateJob("job-" + std::to_string(i), LrJob(R"({"exponential": {"gamma": 0.9}})"))
            .ok());
  }
  std::vector<std::string> names;
  std::string token;
  do {
    auto page = client_->ListJobs(2, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->jobs_size(), 2);
    for (const auto& j : page->jobs()) names.push_back(j.name());
    token = page->next_page_token();
  } while (!token.empty());
  EXPECT_THAT(names, ::testing::ElementsAre("jobs/demo", "jobs/job-0", "jobs/job-1", "jobs/job-2",
                                            "jobs/job-3", "jobs/job-4"));
  EXPECT_EQ(client_->ListJobs(2, "garbage!").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->ListJobs(-1, "").status().code(), absl::StatusCode::kInvalidArgument);

  ASSERT_TRUE(client_->DeleteJob("demo").ok());
  EXPECT_EQ(client_->GetJob("demo").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DeleteJob("demo").code(), absl::StatusCode::kNotFound);
}

TEST_F(SchedulerServiceTest, GetValuesSeriesAndLr) {
  v1::Job job = LrJob(R"({"step": {"step_size": 10, "gamma": 0.5}})", {0.1, 0.01});
  auto* momentum = job.add_hyperparameters();
  momentum->set_name("momentum");
  momentum->add_base_values(0.9);
  *momentum->mutable_schedule() =
      ScheduleJson(R"({"constant": {"factor": 0.5, "total_iters": 3}})");
  ASSERT_TRUE(client_->CreateJob("multi", job).ok());

  v1::GetValuesRequest request;
  request.set_job("jobs/multi");
  request.set_step(8);
  request.set_count(4);
  auto values = client_->GetValues(request);
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->job(), "jobs/multi");
  EXPECT_EQ(values->version(), 1);
  EXPECT_EQ(values->start_step(), 8);
  ASSERT_EQ(values->series_size(), 3);
  EXPECT_EQ(values->series(1).hyperparameter(), "lr");
  EXPECT_EQ(values->series(1).group(), 1);
  EXPECT_THAT(values->series(0).values(), ::testing::ElementsAre(0.1, 0.1, 0.05, 0.05));
  EXPECT_THAT(values->series(1).values(), ::testing::ElementsAre(0.01, 0.01, 0.005, 0.005));
  EXPECT_EQ(values->series(2).hyperparameter(), "momentum");
  EXPECT_TRUE(values->has_lr());
  EXPECT_EQ(values->lr(), 0.1);

  request.add_hyperparameters("momentum");
  request.set_count(0);  // Means 1.
  values = client_->GetValues(request);
  ASSERT_TRUE(values.ok());
  ASSERT_EQ(values->series_size(), 1);
  EXPECT_THAT(values->series(0).values(), ::testing::ElementsAre(0.9));
  EXPECT_FALSE(values->has_lr());

  request.set_hyperparameters(0, "beta1");
  EXPECT_EQ(client_->GetValues(request).status().message(),
            "hyperparameters[0]: the job has no hyperparameter \"beta1\"");
}

// A dashboard's look at a job (peek) must not count as serving: it neither raises the job's
// served_through nor makes an update of the steps it looked at need allow_rewrite.
TEST_F(SchedulerServiceTest, APeekReadsWithoutMarkingTheStepsServed) {
  ASSERT_TRUE(
      client_->CreateJob("demo", LrJob(R"({"step": {"step_size": 10, "gamma": 0.5}})")).ok());
  EXPECT_FALSE(client_->GetJob("demo")->has_served_through());

  v1::GetValuesRequest read;
  read.set_job("demo");
  read.set_step(0);
  read.set_count(20);
  ASSERT_TRUE(client_->GetValues(read).ok());
  EXPECT_EQ(client_->GetJob("demo")->served_through(), 19);

  read.set_peek(true);
  read.set_count(100);
  auto peeked = client_->GetValues(read);
  ASSERT_TRUE(peeked.ok()) << peeked.status();
  EXPECT_EQ(peeked->series(0).values(15), 0.05);
  EXPECT_EQ(peeked->series(0).values(99), 0.1 * std::pow(0.5, 9));
  EXPECT_EQ(client_->GetJob("demo")->served_through(), 19);
  auto listed = client_->ListJobs(10, "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->jobs(0).served_through(), 19);

  // Step 50 was only peeked at: an update there needs no allow_rewrite; step 10 was served.
  v1::UpdateJobRequest update;
  update.set_name("demo");
  auto* change = update.add_updates();
  change->set_hyperparameter("lr");
  change->mutable_segment()->mutable_pin()->add_values(0.02);
  change->mutable_segment()->set_effective_step(10);
  EXPECT_EQ(client_->UpdateJob(update).status().code(), absl::StatusCode::kFailedPrecondition);
  change->mutable_segment()->set_effective_step(50);
  auto updated = client_->UpdateJob(update);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->served_through(), 19);
}

TEST_F(SchedulerServiceTest, GetValuesErrors) {
  ASSERT_TRUE(client_->CreateJob("demo", LrJob(R"({"exponential": {"gamma": 0.9}})")).ok());
  v1::GetValuesRequest request;
  request.set_job("jobs/nope");
  EXPECT_EQ(client_->GetValues(request).status().code(), absl::StatusCode::kNotFound);
  request.set_job("");
  EXPECT_EQ(client_->GetValues(request).status().message(), "job: is required");
  request.set_job("jobs/Bad Name");
  EXPECT_EQ(client_->GetValues(request).status().code(), absl::StatusCode::kInvalidArgument);
  request.set_job("jobs/demo");
  request.set_step(-1);
  EXPECT_EQ(client_->GetValues(request).status().message(),
            "step: must be >= 0 and < 2^53, got -1");
  request.set_step(0);
  request.set_count(100001);
  EXPECT_EQ(client_->GetValues(request).status().message(),
            "count: must be between 1 and 100000, got 100001");
  request.set_step((int64_t{1} << 53) - 1);
  request.set_count(1);
  auto far = client_->GetValues(request);
  ASSERT_TRUE(far.ok()) << far.status();
  EXPECT_EQ(far->lr(), 0.0);  // 0.1 * 0.9^(2^53 - 1) underflows to 0, as in PyTorch.
}

TEST_F(SchedulerServiceTest, BatchGetValuesIsAllOrNothing) {
  ASSERT_TRUE(client_->CreateJob("a", LrJob(R"({"step": {"step_size": 2}})")).ok());
  ASSERT_TRUE(client_->CreateJob("b", LrJob(R"({"exponential": {"gamma": 0.5}})", {1.0})).ok());
  v1::BatchGetValuesRequest batch;
  auto* ra = batch.add_requests();
  ra->set_job("jobs/a");
  ra->set_step(2);
  auto* rb = batch.add_requests();
  rb->set_job("b");
  rb->set_step(3);
  rb->set_count(2);
  auto response = client_->BatchGetValues(batch);
  ASSERT_TRUE(response.ok()) << response.status();
  ASSERT_EQ(response->responses_size(), 2);
  EXPECT_DOUBLE_EQ(response->responses(0).lr(), 0.1 * 0.1);
  EXPECT_THAT(response->responses(1).series(0).values(), ::testing::ElementsAre(0.125, 0.0625));

  batch.add_requests()->set_job("jobs/missing");
  auto failed = client_->BatchGetValues(batch);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kNotFound);
  batch.mutable_requests(2)->set_job("jobs/a");
  batch.mutable_requests(2)->set_count(-5);
  EXPECT_THAT(client_->BatchGetValues(batch).status().message(), HasSubstr("requests[2].count: "));
}

// Issue 10, item 1: the compile amplification attack (a reader's Preview of a `chained` tree of
// 64 x 64 x 4 `constant` leaves with 1,024 base values) is refused before anything is compiled,
// naming the limit and the cost; CreateJob checks the same budget.
TEST_F(SchedulerServiceTest, ASpecOverTheCostBudgetIsRefusedBeforeCompiling) {
  v1::Schedule leaf;
  leaf.mutable_constant()->set_factor(0.5);
  leaf.mutable_constant()->set_total_iters(1);
  v1::Schedule inner;
  for (int i = 0; i < 4; ++i) *inner.mutable_chained()->add_schedules() = leaf;
  v1::Schedule middle;
  for (int i = 0; i < 64; ++i) *middle.mutable_chained()->add_schedules() = inner;
  v1::PreviewRequest request;
  for (int i = 0; i < 64; ++i)
    *request.mutable_schedule()->mutable_chained()->add_schedules() = middle;
  for (int g = 0; g < 1024; ++g) request.add_base_values(0.1);
  request.set_count(10);
  auto preview = client_->Preview(request);
  EXPECT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(preview.status().message(),
            "schedule: costs 21,038,080 node-groups, over the limit of 262,144 (schedule nodes x "
            "parameter groups)");
  v1::Job job;
  auto* hp = job.add_hyperparameters();
  hp->set_name("lr");
  *hp->mutable_base_values() = request.base_values();
  *hp->mutable_schedule() = request.schedule();
  auto created = client_->CreateJob("big", job);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(created.status().message(),
              HasSubstr("costs 21,038,080 node-groups, over the limit of 262,144"));
  // The server still answers.
  EXPECT_TRUE(client_->CreateJob("small", LrJob(R"({"constant": {"factor": 0.5}})")).ok());
}

TEST_F(SchedulerServiceTest, Preview) {
  v1::PreviewRequest request;
  *request.mutable_schedule() = ScheduleJson(R"({"cosine_annealing": {"t_max": 10}})");
  request.add_base_values(0.1);
  request.add_base_values(1.0);
  request.set_start_step(9);
  request.set_count(3);
  auto preview = client_->Preview(request);
  ASSERT_TRUE(preview.ok()) << preview.status();
  ASSERT_EQ(preview->series_size(), 2);
  EXPECT_EQ(preview->series(1).values(1), 0.0);
  EXPECT_NEAR(preview->series(1).values(0), preview->series(1).values(2), 1e-15);
  request.clear_base_values();
  request.add_base_values(INFINITY);
  EXPECT_EQ(client_->Preview(request).status().message(),
            "base_values[0]: must be finite, got inf");
  request.clear_schedule();
  EXPECT_EQ(client_->Preview(request).status().message(), "schedule: is required");
}

TEST_F(SchedulerServiceTest, PreviewOfMomentum) {
  v1::PreviewRequest request;
  *request.mutable_schedule() =
      ScheduleJson(R"({"one_cycle": {"max_lr": [1.0], "total_steps": 100}})");
  request.set_count(30);
  auto lr = client_->Preview(request);
  request.set_hyperparameter("beta1");
  auto beta1 = client_->Preview(request);
  ASSERT_TRUE(lr.ok() && beta1.ok());
  EXPECT_NEAR(lr->series(0).values(0), 0.04, 1e-15);
  EXPECT_DOUBLE_EQ(beta1->series(0).values(0), 0.95);
  EXPECT_DOUBLE_EQ(beta1->series(0).values(29), 0.85);
}

// The bad specs of the v1 issue, each INVALID_ARGUMENT naming the field; the server keeps serving.
TEST_F(SchedulerServiceTest, BadSpecsAreRejectedWithTheirField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"cosine_annealing": {"t_max": 0}})",
       "job.hyperparameters[0].schedule.cosine_annealing.t_max: must be > 0"},
      {R"({"step": {"step_size": -3}})",
       "job.hyperparameters[0].schedule.step.step_size: must be > 0, got -3"},
      {R"({"sequential": {}})",
       "job.hyperparameters[0].schedule.sequential.schedules: must have at least one"},
      {R"({"sequential": {"schedules": [{"constant": {}}, {"constant": {}}, {"constant": {}}],
           "milestones": [5, 3]}})",
       "job.hyperparameters[0].schedule.sequential.milestones[1]: must be greater than 5, got 3"},
      {R"({"exponential": {"gamma": "NaN"}})",
       "job.hyperparameters[0].schedule.exponential.gamma: must be finite"},
      {R"({"cosine_annealing": {"t_max": 5, "eta_min": "Infinity"}})",
       "job.hyperparameters[0].schedule.cosine_annealing.eta_min: must be finite"},
      {R"({"cyclic": {"max_lr": [1], "mode": "zigzag"}})",
       "job.hyperparameters[0].schedule.cyclic.mode: must be one of"},
      {R"({"one_cycle": {"total_steps": 100, "anneal_strategy": "cosine"}})",
       "job.hyperparameters[0].schedule.one_cycle.anneal_strategy: must be one of"},
      {R"({"lambda": {"expression": "step *"}})",
       "job.hyperparameters[0].schedule.lambda.expression: "},
      {R"json({"lambda": {"expression": "os.system(1)"}})json",
       "job.hyperparameters[0].schedule.lambda.expression: "},
      {"{\"lambda\": {\"expression\": \"" + std::string(1500, '1') + "\"}}",
       "job.hyperparameters[0].schedule.lambda.expression: "},
      {R"({})", "job.hyperparameters[0].schedule: is required"},
  };
  for (const auto& [json, message] : cases) {
    auto created = client_->CreateJob("bad", LrJob(json));
    EXPECT_EQ(created.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_THAT(created.status().message(), HasSubstr(message)) << json;
  }
  EXPECT_EQ(client_->GetJob("bad").status().code(), absl::StatusCode::kNotFound);
  v1::CreateJobRequest no_job;
  EXPECT_EQ(client_->CreateJob("x", v1::Job()).status().message(),
            "job.hyperparameters: must have at least one hyperparameter");
  EXPECT_TRUE(client_->CreateJob("good", LrJob(R"({"constant": {}})")).ok());
}

// Every golden case of every reference library, through the service and the client library.
TEST_F(SchedulerServiceTest, GoldenValuesThroughTheService) {
  std::vector<golden::GoldenCase> cases;
  for (const auto& file : testing::LoadAllGoldens()) {
    cases.insert(cases.end(), file.cases().begin(), file.cases().end());
  }
  int compared = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.name());
    v1::Job job;
    auto* hp = job.add_hyperparameters();
    hp->set_name(testing::Hyperparameter(c));
    *hp->mutable_base_values() = c.base_values();
    *hp->mutable_schedule() = c.schedule();
    const std::string id = "golden-" + std::to_string(i);
    ASSERT_TRUE(client_->CreateJob(id, job).ok());
    for (const auto& point : c.points()) {
      v1::GetValuesRequest request;
      request.set_job(id);
      request.set_step(point.step());
      auto values = client_->GetValues(request);
      ASSERT_TRUE(values.ok()) << values.status();
      for (int g = 0; g < point.values_size(); ++g) {
        EXPECT_TRUE(
            testing::GoldenClose(point.values(g), values->series(g).values(0), testing::Scale(c)))
            << "step " << point.step() << " group " << g;
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 1000);
}

TEST_F(SchedulerServiceTest, PrefetchingReaderMakesOneCallPerWindow) {
  ASSERT_TRUE(
      client_->CreateJob("demo", LrJob(R"({"step": {"step_size": 10, "gamma": 0.5}})")).ok());
  client::PrefetchingReader reader(client_.get(), "demo", 16);
  for (int step = 0; step < 64; ++step) {
    auto lr = reader.Value(step);
    ASSERT_TRUE(lr.ok()) << lr.status();
    EXPECT_DOUBLE_EQ(*lr, 0.1 * std::pow(0.5, step / 10));
  }
  EXPECT_EQ(reader.rpc_count(), 4);
  EXPECT_EQ(reader.Value(3, "momentum").status().code(), absl::StatusCode::kNotFound);
  client::PrefetchingReader missing(client_.get(), "nope", 16);
  EXPECT_EQ(missing.Value(0).status().code(), absl::StatusCode::kNotFound);
}

// Writers create and delete jobs while readers read values: every read either finds the job and
// gets exactly its values, or gets NOT_FOUND; nothing else, and the server ends consistent.
TEST_F(SchedulerServiceTest, ConcurrentMutationsAndReads) {
  constexpr int kJobs = 8;
  constexpr int kRounds = 40;
  std::atomic<int> reads_ok{0};
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0; round < kRounds; ++round) {
        const std::string id = "c" + std::to_string((round * 2 + w) % kJobs);
        auto created =
            client_->CreateJob(id, LrJob(R"({"step": {"step_size": 4, "gamma": 0.5}})", {1.0}));
        if (!created.ok() && created.status().code() != absl::StatusCode::kAlreadyExists) ++bad;
        if (round % 3 == 0) {
          const absl::Status deleted = client_->DeleteJob(id);
          if (!deleted.ok() && deleted.code() != absl::StatusCode::kNotFound) ++bad;
        }
      }
    });
  }
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      for (int i = 0; i < kRounds * 3; ++i) {
        v1::GetValuesRequest request;
        request.set_job("c" + std::to_string((i + r) % kJobs));
        request.set_step(i % 16);
        request.set_count(8);
        auto values = client_->GetValues(request);
        if (!values.ok()) {
          if (values.status().code() != absl::StatusCode::kNotFound) ++bad;
          continue;
        }
        for (int k = 0; k < 8; ++k) {
          if (values->series(0).values(k) != std::pow(0.5, (i % 16 + k) / 4)) ++bad;
        }
        ++reads_ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads_ok.load(), 0);
  auto page = client_->ListJobs(100, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(static_cast<size_t>(page->jobs_size()), registry_.size());
}

// --- Live jobs: waiting reads, watches, the prefetching reader
// --------------------------------------

// lr follows reduce_on_plateau on "loss", reported every 10 steps (at 9, 19, ...), patience 0.
v1::Job PlateauJob() {
  v1::Job job =
      LrJob(R"({"reduce_on_plateau": {"metric": "loss", "patience": 0, "factor": 0.5}})", {1.0});
  auto* metric = job.add_metrics();
  metric->set_name("loss");
  metric->set_every_steps(10);
  return job;
}

v1::ReportMetricsRequest Report(int64_t step, double loss) {
  v1::ReportMetricsRequest request;
  request.set_job("p");
  request.set_step(step);
  (*request.mutable_metrics())["loss"] = loss;
  return request;
}

// The dashboard plots a job's reported metrics beside the schedules they drive.
TEST_F(SchedulerServiceTest, GetMetricReportsReturnsTheReportsInARange) {
  ASSERT_TRUE(client_->CreateJob("p", PlateauJob()).ok());
  for (int64_t step : {9, 19, 29, 39}) {
    ASSERT_TRUE(client_->ReportMetrics(Report(step, static_cast<double>(step) / 10)).ok());
  }
  auto stub = v1::SchedulerService::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  v1::GetMetricReportsRequest request;
  request.set_job("jobs/p");
  request.set_start_step(10);
  request.set_end_step(39);
  v1::GetMetricReportsResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetMetricReports(&context, request, &response).ok());
  }
  EXPECT_EQ(response.job(), "jobs/p");
  ASSERT_EQ(response.metrics_size(), 1);
  EXPECT_EQ(response.metrics(0).metric(), "loss");
  EXPECT_THAT(response.metrics(0).steps(), ::testing::ElementsAre(19, 29));
  EXPECT_THAT(response.metrics(0).values(), ::testing::ElementsAre(1.9, 2.9));
  EXPECT_FALSE(response.metrics(0).truncated());

  request.set_end_step(0);
  request.set_max_reports(2);
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->GetMetricReports(&context, request, &response).ok());
  }
  EXPECT_THAT(response.metrics(0).steps(), ::testing::ElementsAre(19, 29));
  EXPECT_TRUE(response.metrics(0).truncated());

  request.set_end_step(5);
  grpc::ClientContext bad;
  const grpc::Status status = stub->GetMetricReports(&bad, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "end_step: must be 0 (no end) or > start_step (10), got 5");
  request.set_job("jobs/none");
  request.set_end_step(0);
  grpc::ClientContext missing;
  EXPECT_EQ(stub->GetMetricReports(&missing, request, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// Waits, without sleeping, until `done()` holds: for what another thread does (the client's watch
// thread), never for time.
template <typename Done>
bool Eventually(Done done) {
  for (int i = 0; i < 100'000'000; ++i) {
    if (done()) return true;
    std::this_thread::yield();
  }
  return false;
}

v1::GetValuesRequest ValuesAt(const std::string& job, int64_t step, int64_t count = 1,
                              v1::PendingPolicy policy = v1::PENDING_POLICY_UNSPECIFIED) {
  v1::GetValuesRequest request;
  request.set_job(job);
  request.set_step(step);
  request.set_count(count);
  request.set_pending_policy(policy);
  return request;
}

TEST_F(SchedulerServiceTest, AWaitingGetValuesIsAnsweredWhenTheReportArrives) {
  ASSERT_TRUE(client_->CreateJob("p", PlateauJob()).ok());
  ASSERT_TRUE(client_->ReportMetrics(Report(9, 1.0)).ok());
  // Step 25 needs the report at 19 (reports before 25).
  absl::StatusOr<v1::GetValuesResponse> answer;
  std::thread reader([&] { answer = client_->GetValues(ValuesAt("p", 25)); });
  executor_.AwaitQueued(1);  // The parked call's deadline.
  EXPECT_EQ(service_.waiting_count(), 1u);
  ASSERT_TRUE(client_->ReportMetrics(Report(19, 2.0)).ok());  // Worse: halve from step 20.
  EXPECT_EQ(executor_.RunDue(), 1);                           // The retry, not the deadline.
  reader.join();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->lr(), 0.5);
  EXPECT_FALSE(answer->has_provisional_from());
  EXPECT_EQ(service_.waiting_count(), 0u);
  EXPECT_EQ(executor_.queued(), 0u);  // Its deadline timer went with it.
}

// Issue 14: a linear warmup for 100 steps, then (sequential milestone 100) a plateau on "loss".
// Without any report, a waiting read of the warmup is answered at once with final values
// (PyTorch's LinearLR, torch 1.13, which it matches within its rounding: torch multiplies
// step by step); only the steps past the milestone wait.
TEST_F(SchedulerServiceTest, AWarmupBeforeAPlateauIsAnsweredAtOnceWithoutReports) {
  v1::Job job = LrJob(R"({"sequential": {"milestones": [100], "schedules": [
      {"linear": {"start_factor": 0.01, "total_iters": 100}},
      {"reduce_on_plateau": {"metric": "loss", "patience": 0, "factor": 0.5}}]}})");
  auto* metric = job.add_metrics();
  metric->set_name("loss");
  metric->set_every_steps(10);
  ASSERT_TRUE(client_->CreateJob("w", job).ok());
  auto warmup = client_->GetValues(ValuesAt("w", 0, 100));  // pending_policy: wait.
  ASSERT_TRUE(warmup.ok()) << warmup.status();
  EXPECT_FALSE(warmup->has_provisional_from());
  EXPECT_EQ(service_.waiting_count(), 0u);
  EXPECT_EQ(executor_.queued(), 0u);  // It never parked.
  ASSERT_EQ(warmup->series(0).values_size(), 100);
  EXPECT_DOUBLE_EQ(warmup->series(0).values(0), 0.001);
  EXPECT_DOUBLE_EQ(warmup->series(0).values(1), 0.00199);
  EXPECT_DOUBLE_EQ(warmup->series(0).values(50), 0.050499999999999996);
  EXPECT_DOUBLE_EQ(warmup->series(0).values(99), 0.09900999999999997);
  // Past the milestone the values read reports that have not arrived.
  auto past = client_->GetValues(ValuesAt("w", 95, 10, v1::PENDING_POLICY_PROVISIONAL_NOW));
  ASSERT_TRUE(past.ok()) << past.status();
  EXPECT_EQ(past->provisional_from(), 101);
}

// A GetValues that waits, answered at its deadline: the call parks, then the fake clock passes the
// deadline.
absl::StatusOr<v1::GetValuesResponse> AtDeadline(client::Client* client,
                                                 jobs::ManualExecutor* executor,
                                                 const v1::GetValuesRequest& request) {
  absl::StatusOr<v1::GetValuesResponse> answer;
  std::thread reader([&] { answer = client->GetValues(request); });
  executor->AwaitQueued(1);
  executor->Advance(absl::Hours(1));
  reader.join();
  return answer;
}

// A read that meets a job a mutation is replacing does not spin on the callback thread: it parks
// on the job and plans again at the job's next event.
TEST_F(SchedulerServiceTest, AReadThatMeetsAJobBeingReplacedWaitsForItsNextEvent) {
  ASSERT_TRUE(client_->CreateJob("demo", LrJob(R"({"constant": {"factor": 1.0}})")).ok());
  std::shared_ptr<const jobs::Job> job = *registry_.Get("demo");
  job->closing.store(true);  // As a mutation does while it replaces the job.
  absl::StatusOr<v1::GetValuesResponse> answer;
  std::thread reader([&] {
    answer = client_->GetValues(ValuesAt("demo", 0, 3, v1::PENDING_POLICY_PROVISIONAL_NOW));
  });
  executor_.AwaitQueued(1);  // Parked: its deadline is queued.
  EXPECT_EQ(service_.waiting_count(), 1u);
  job->closing.store(false);
  // A mutation that closes the job and ends without replacing it (a stale etag) tells the job's
  // event; the parked read plans again.
  v1::UpdateJobRequest update;
  update.set_name("demo");
  update.set_etag("stale");
  auto* change = update.add_updates();
  change->set_hyperparameter("lr");
  change->mutable_segment()->set_effective_step(10);
  change->mutable_segment()->set_scale(0.5);
  EXPECT_EQ(client_->UpdateJob(update).status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(executor_.RunDue(), 1);
  reader.join();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_THAT(answer->series(0).values(), ::testing::ElementsAre(0.1, 0.1, 0.1));
  EXPECT_EQ(service_.waiting_count(), 0u);
}

TEST_F(SchedulerServiceTest, PendingPolicies) {
  ASSERT_TRUE(client_->CreateJob("p", PlateauJob()).ok());
  // Steps 0..9 are final (no report before them is expected); 10 on wait for the report at 9.
  auto final_values = client_->GetValues(ValuesAt("p", 0, 10));
  ASSERT_TRUE(final_values.ok());
  EXPECT_FALSE(final_values->has_provisional_from());
  auto waited = AtDeadline(client_.get(), &executor_, ValuesAt("p", 5, 10));
  EXPECT_EQ(waited.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(waited.status().message(),
            "step: the values from step 10 on wait for metric reports that have not arrived (set "
            "pending_policy to accept provisional values)");
  auto provisional = AtDeadline(client_.get(), &executor_,
                                ValuesAt("p", 5, 10, v1::PENDING_POLICY_WAIT_THEN_PROVISIONAL));
  ASSERT_TRUE(provisional.ok()) << provisional.status();
  EXPECT_EQ(provisional->provisional_from(), 10);
  // Answered at once: nothing parked, nothing queued.
  auto now = client_->GetValues(ValuesAt("p", 5, 10, v1::PENDING_POLICY_PROVISIONAL_NOW));
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(executor_.queued(), 0u);
  EXPECT_EQ(now->provisional_from(), 10);
  EXPECT_EQ(now->series(0).values(9), 1.0);
}

TEST_F(SchedulerServiceTest, WatchJobStreamsEveryChange) {
  ASSERT_TRUE(client_->CreateJob("p", PlateauJob()).ok());
  std::unique_ptr<client::WatchStream> stream =
      client_->WatchJob("p", absl::Now() + absl::Seconds(30));
  auto snapshot = stream->Next();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->type(), v1::JOB_EVENT_TYPE_SNAPSHOT);
  EXPECT_EQ(snapshot->job().version(), 1);
  EXPECT_FALSE(client_->GetJob("p")->has_watchers());
  EXPECT_EQ(client_->ListJobs(10, "")->jobs(0).watchers(), 1);

  v1::UpdateJobRequest update;
  update.set_name("p");
  auto* change = update.add_updates();
  change->set_hyperparameter("lr");
  change->mutable_segment()->set_effective_step(1000);
  change->mutable_segment()->set_scale(0.5);
  ASSERT_TRUE(client_->UpdateJob(update).ok());
  EXPECT_EQ(executor_.RunDue(), 1);  // The registry only queued the change; this sends it.
  auto updated = stream->Next();
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->type(), v1::JOB_EVENT_TYPE_UPDATED);
  EXPECT_EQ(updated->effective_step(), 1000);
  EXPECT_EQ(updated->job().hyperparameters(0).segments_size(), 1);

  ASSERT_TRUE(client_->ReportMetrics(Report(9, 1.0)).ok());   // Best so far: no event.
  ASSERT_TRUE(client_->ReportMetrics(Report(19, 2.0)).ok());  // Worse: a reduction from 20.
  executor_.RunDue();
  auto reduced = stream->Next();
  ASSERT_TRUE(reduced.ok());
  EXPECT_EQ(reduced->type(), v1::JOB_EVENT_TYPE_PLATEAU_REDUCED);
  EXPECT_EQ(reduced->effective_step(), 20);
  ASSERT_EQ(reduced->job().hyperparameters(0).plateau_reductions_size(), 1);
  EXPECT_EQ(reduced->job().hyperparameters(0).plateau_reductions(0), 20);
  EXPECT_EQ(client_->GetJob("p")->hyperparameters(0).plateau_reductions(0), 20);

  ASSERT_TRUE(client_->DeleteJob("p").ok());
  executor_.RunDue();
  auto deleted = stream->Next();
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->type(), v1::JOB_EVENT_TYPE_DELETED);
  EXPECT_EQ(stream->Next().status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(client_->WatchJob("p")->Next().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SchedulerServiceTest, ShutdownEndsWatchesAndAnswersWaitingCalls) {
  ASSERT_TRUE(client_->CreateJob("p", PlateauJob()).ok());
  std::unique_ptr<client::WatchStream> stream = client_->WatchJob("p");
  ASSERT_TRUE(stream->Next().ok());
  absl::StatusOr<v1::GetValuesResponse> answer;
  std::thread reader([&] {
    answer = client_->GetValues(ValuesAt("p", 50, 1, v1::PENDING_POLICY_WAIT_THEN_PROVISIONAL));
  });
  executor_.AwaitQueued(1);  // The parked call's deadline.
  service_.Shutdown();
  reader.join();
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->provisional_from(), 50);
  EXPECT_EQ(stream->Next().status().code(), absl::StatusCode::kOutOfRange);  // Ended with OK.
}

// A watcher that never reads (issue 11) holds back neither the writer nor the other watchers: its
// stream keeps the one event in flight (the in-process transport hands a message over only when
// the client reads) and, once its bounded queue would overflow, ends with RESOURCE_EXHAUSTED;
// meanwhile every UpdateJob succeeds and a reading watcher gets every event, in order.
TEST(SlowWatcherTest, NeitherDelaysTheWriterNorTheOtherWatchers) {
  store::MemoryJobStore store;
  jobs::FakeClock clock{absl::Now()};
  jobs::ManualExecutor executor{&clock};
  jobs::JobRegistry registry{&store, &clock};
  service::ServiceOptions options;
  options.clock = &clock;
  options.executor = &executor;
  // Events grow with the segments (about 8 KB at 200): a reading stream holds one or two (a write
  // completes on gRPC's thread after the client has read it), the slow one all of them.
  options.limits.max_watch_queue_bytes = 64 << 10;
  service::SchedulerService service{&registry, options};
  std::unique_ptr<grpc::Server> server = StartInProcess(&service);
  std::unique_ptr<client::Client> client = InProcessClient(*server);

  ASSERT_TRUE(client->CreateJob("w", LrJob(R"({"cosine_annealing": {"t_max": 100}})")).ok());
  std::unique_ptr<client::WatchStream> slow = client->WatchJob("w");  // Never read until the end.
  ASSERT_TRUE(Eventually([&] { return service.watch_count() == 1; }));
  std::unique_ptr<client::WatchStream> fast = client->WatchJob("w");
  auto snapshot = fast->Next();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->job().version(), 1);

  constexpr int kUpdates = 200;  // Under the 256 segments a hyperparameter may hold.
  for (int i = 0; i < kUpdates; ++i) {
    v1::UpdateJobRequest update;
    update.set_name("w");
    auto* change = update.add_updates();
    change->set_hyperparameter("lr");
    change->mutable_segment()->set_effective_step(1000 + i);
    change->mutable_segment()->set_scale(0.5);
    auto updated = client->UpdateJob(update);
    ASSERT_TRUE(updated.ok()) << "update " << i << ": " << updated.status();
    EXPECT_EQ(updated->version(), i + 2);
    executor.RunDue();
    auto event = fast->Next();
    ASSERT_TRUE(event.ok()) << "update " << i << ": " << event.status();
    EXPECT_EQ(event->type(), v1::JOB_EVENT_TYPE_UPDATED);
    EXPECT_EQ(event->job().version(), i + 2);
    EXPECT_EQ(event->effective_step(), 1000 + i);
  }
  // The slow stream gets what was in flight (its snapshot), then its end; no event after it.
  auto first = slow->Next();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->type(), v1::JOB_EVENT_TYPE_SNAPSHOT);
  const absl::Status ended = slow->Next().status();
  EXPECT_EQ(ended.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(ended.message(), HasSubstr("--max_watch_queue_bytes"));
  EXPECT_TRUE(Eventually([&] { return service.watch_count() == 1; }));  // The fast one.
  service.Shutdown();
  EXPECT_EQ(fast->Next().status().code(), absl::StatusCode::kOutOfRange);
  server->Shutdown();
}

// Streams opened while updates are being made (the system clock and the service's own executor):
// each starts from a snapshot and then gets every later version exactly once, in order, up to the
// last. A watch registered after a change was published but before it was told must neither miss
// it (had the job been read before the registration) nor get it twice (the snapshot holds it).
TEST(WatchRaceTest, AStreamStartedDuringUpdatesMissesNoVersionAndRepeatsNone) {
  store::MemoryJobStore store;
  jobs::SystemClock clock;
  jobs::JobRegistry registry{&store, &clock};
  service::SchedulerService service{&registry, service::ServiceOptions{}};
  std::unique_ptr<grpc::Server> server = StartInProcess(&service);
  std::unique_ptr<client::Client> writer = InProcessClient(*server);
  std::unique_ptr<client::Client> watcher = InProcessClient(*server);
  ASSERT_TRUE(writer->CreateJob("r", LrJob(R"({"constant": {"factor": 1.0}})")).ok());

  constexpr int kUpdates = 200;  // Under the 256 segments a hyperparameter may hold.
  std::atomic<bool> writing{true};
  std::thread updates([&] {
    for (int i = 0; i < kUpdates; ++i) {
      v1::UpdateJobRequest update;
      update.set_name("r");
      auto* change = update.add_updates();
      change->set_hyperparameter("lr");
      change->mutable_segment()->set_effective_step(1000 + i);
      change->mutable_segment()->set_scale(0.5);
      EXPECT_TRUE(writer->UpdateJob(update).ok()) << "update " << i;
    }
    writing = false;
  });
  std::vector<std::unique_ptr<client::WatchStream>> streams;
  std::vector<int64_t> snapshots;
  while (writing && streams.size() < 400) {
    streams.push_back(watcher->WatchJob("r", absl::Now() + absl::Seconds(60)));
    auto snapshot = streams.back()->Next();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    ASSERT_EQ(snapshot->type(), v1::JOB_EVENT_TYPE_SNAPSHOT);
    snapshots.push_back(snapshot->job().version());
  }
  updates.join();
  ASSERT_FALSE(streams.empty());
  for (size_t k = 0; k < streams.size(); ++k) {
    for (int64_t version = snapshots[k] + 1; version <= kUpdates + 1; ++version) {
      auto event = streams[k]->Next();
      ASSERT_TRUE(event.ok()) << "stream " << k << " from version " << snapshots[k]
                              << ", waiting for " << version << ": " << event.status();
      ASSERT_EQ(event->type(), v1::JOB_EVENT_TYPE_UPDATED);
      ASSERT_EQ(event->job().version(), version) << "stream " << k << " from " << snapshots[k];
    }
  }
  service.Shutdown();
  for (auto& stream : streams) {
    EXPECT_EQ(stream->Next().status().code(), absl::StatusCode::kOutOfRange);  // No event more.
  }
  server->Shutdown();
}

TEST_F(SchedulerServiceTest, PrefetchingReaderDropsValuesAChangeMadeStale) {
  ASSERT_TRUE(client_->CreateJob("demo", LrJob(R"({"constant": {"factor": 1.0}})")).ok());
  client::PrefetchingReader reader(client_.get(), "demo", client::PrefetchOptions{.window = 100});
  ASSERT_EQ(*reader.Value(0), 0.1);  // Prefetches 0..99 (served: an update below 100 is refused).
  v1::UpdateJobRequest update;
  update.set_name("demo");
  update.set_allow_rewrite(true);
  auto* change = update.add_updates();
  change->set_hyperparameter("lr");
  change->mutable_segment()->set_effective_step(50);
  change->mutable_segment()->mutable_pin()->add_values(0.02);
  ASSERT_TRUE(client_->UpdateJob(update).ok());
  executor_.RunDue();
  // The reader's watch thread gets the change (or, had its stream not started, a snapshot with it)
  // on its own time.
  EXPECT_TRUE(Eventually([&] { return *reader.Value(60) == 0.02; }));
  EXPECT_EQ(*reader.Value(49), 0.1);
  EXPECT_EQ(reader.invalidations(), 1);
}

TEST_F(SchedulerServiceTest, PrefetchingReaderNeverCachesProvisionalValues) {
  ASSERT_TRUE(client_->CreateJob("p", PlateauJob()).ok());
  // A reporter that follows the trainer: the loss of epoch e is reported once the trainer has read
  // the last step of epoch e; it gets worse every other epoch.
  absl::Mutex mutex;
  int64_t trainer_step ABSL_GUARDED_BY(mutex) = -1;
  absl::CondVar stepped;
  std::thread reporter([&] {
    for (int64_t e = 0; e < 6; ++e) {
      const int64_t step = 10 * e + 9;
      {
        // A CondVar rather than Await(Condition): ThreadSanitizer sees its hand-off.
        absl::MutexLock lock(&mutex);
        while (trainer_step < step) stepped.Wait(&mutex);
      }
      ASSERT_TRUE(client_->ReportMetrics(Report(step, e % 2 == 0 ? 1.0 / (e + 1) : 5.0)).ok());
      executor_.RunDue();  // Answers the read waiting for this report; sends the watch its events.
    }
  });
  client::PrefetchingReader reader(client_.get(), "p", client::PrefetchOptions{.window = 25});
  std::vector<double> seen;
  for (int64_t step = 0; step < 60; ++step) {
    auto value = reader.Value(step);
    ASSERT_TRUE(value.ok()) << value.status();
    seen.push_back(*value);
    absl::MutexLock lock(&mutex);
    trainer_step = step;
    stepped.Signal();
  }
  reporter.join();
  auto final_values = client_->GetValues(ValuesAt("p", 0, 60));
  ASSERT_TRUE(final_values.ok());
  EXPECT_FALSE(final_values->has_provisional_from());
  EXPECT_EQ(seen, std::vector<double>(final_values->series(0).values().begin(),
                                      final_values->series(0).values().end()));
  EXPECT_LT(seen.back(), 1.0);  // Reductions happened.
}

// --- Costly work: the evaluation budget, the work pool, cancellation, repeated names

// A service with a small budget (10000 units), costly above 1000 units, and the test's own pool.
class CostlyCallsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = StartInProcess(&service_);
    client_ = InProcessClient(*server_);
    // A step schedule costs 1 unit per value.
    ASSERT_TRUE(
        client_->CreateJob("two", LrJob(R"({"step": {"step_size": 10, "gamma": 0.5}})", {0.1, 1.0}))
            .ok());
  }
  void TearDown() override { server_->Shutdown(); }

  service::ServiceOptions Options() {
    service::ServiceOptions options;
    options.clock = &clock_;
    options.executor = &executor_;
    options.work_pool = &pool_;
    options.limits.max_eval_cost = 10'000;
    options.limits.inline_eval_cost = 1'000;
    return options;
  }

  static v1::PreviewRequest StepPreview(int64_t count) {
    v1::PreviewRequest request;
    *request.mutable_schedule() = ScheduleJson(R"({"step": {"step_size": 10, "gamma": 0.5}})");
    request.add_base_values(0.1);
    request.add_base_values(1.0);
    request.set_count(count);
    return request;
  }

  store::MemoryJobStore store_;
  jobs::FakeClock clock_{absl::Now()};
  jobs::ManualExecutor executor_{&clock_};
  jobs::WorkPool pool_{1, 0};
  jobs::JobRegistry registry_{&store_, &clock_};
  service::SchedulerService service_{&registry_, Options()};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(CostlyCallsTest, TheEvaluationBudgetIsCheckedBeforeEvaluating) {
  const std::string over =
      ": the request would cost 12000 evaluation units (count x the per-step cost of each "
      "series), more than the server's limit of 10000 (--max_eval_cost); ask for fewer steps, "
      "groups or hyperparameters";
  auto values = client_->GetValues(ValuesAt("two", 0, 6000));
  EXPECT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(values.status().message(), "count" + over);
  // BatchGetValues: the total of its requests.
  v1::BatchGetValuesRequest batch;
  *batch.add_requests() = ValuesAt("two", 0, 3000);
  *batch.add_requests() = ValuesAt("two", 100, 3000);
  auto batched = client_->BatchGetValues(batch);
  EXPECT_EQ(batched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(batched.status().message(), "requests[1].count" + over);
  auto preview = client_->Preview(StepPreview(6000));
  EXPECT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(preview.status().message(), "count" + over);

  // Within the budget but costly: evaluated on the pool, the same values (PyTorch StepLR, gamma
  // 0.5 every 10 steps: step 4999 of base 1.0 is 0.5^499).
  auto within = client_->GetValues(ValuesAt("two", 0, 5000));
  ASSERT_TRUE(within.ok()) << within.status();
  EXPECT_EQ(within->series(1).values(4999), std::pow(0.5, 499));
  // The answer may reach the client before the pool's thread is free again (one thread, no
  // queue): the next costly call waits until it is, or it would be refused as the server busy.
  ASSERT_TRUE(Eventually([&] { return pool_.running() == 0; }));
  auto previewed = client_->Preview(StepPreview(5000));
  ASSERT_TRUE(previewed.ok()) << previewed.status();
  EXPECT_EQ(previewed->series(0).values(25), 0.1 * 0.25);
}

TEST_F(CostlyCallsTest, AFullPoolRefusesCostlyCallsAndServesCheapOnes) {
  // Shared with the task: it may still be returning from WaitForNotification when the test ends.
  auto started = std::make_shared<absl::Notification>();
  auto release = std::make_shared<absl::Notification>();
  ASSERT_TRUE(pool_.TrySchedule([started, release] {
    started->Notify();
    release->WaitForNotification();
  }));
  started->WaitForNotification();
  auto costly = client_->Preview(StepPreview(1000));  // 2000 units.
  EXPECT_EQ(costly.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(costly.status().message(), HasSubstr("busy with costly evaluations"));
  EXPECT_EQ(client_->GetValues(ValuesAt("two", 0, 1000)).status().code(),
            absl::StatusCode::kResourceExhausted);
  // Cheap calls run on the thread that received them.
  EXPECT_TRUE(client_->Preview(StepPreview(500)).ok());
  EXPECT_TRUE(client_->GetValues(ValuesAt("two", 0, 500)).ok());
  release->Notify();
}

TEST_F(CostlyCallsTest, EvaluationsStopAtTheEndOfTheShutdownGrace) {
  service_.CancelEvaluationsAt(clock_.Now());
  const std::string message =
      "the server is shutting down: the evaluation was stopped at the end of its grace";
  auto costly = client_->Preview(StepPreview(4000));
  EXPECT_EQ(costly.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(costly.status().message(), message);
  ASSERT_TRUE(Eventually([&] { return pool_.running() == 0; }));  // See the budget test above.
  auto values = client_->GetValues(ValuesAt("two", 0, 4000));
  EXPECT_EQ(values.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(values.status().message(), message);
}

// Each update wraps the history before it: 256 of them must not make the cost estimate explode
// (a recursive walk of the shared pieces hung the first version of this change).
TEST_F(CostlyCallsTest, TheCostOfALongHistoryIsLinear) {
  for (int k = 0; k < 4; ++k) {
    v1::UpdateJobRequest update;
    update.set_name("two");
    for (int i = 0; i < 64; ++i) {
      auto* change = update.add_updates();
      change->set_hyperparameter("lr");
      change->mutable_segment()->set_effective_step(1000 + 64 * k + i);
      change->mutable_segment()->set_scale(1.0);
    }
    ASSERT_TRUE(client_->UpdateJob(update).ok());
  }
  auto values = client_->GetValues(ValuesAt("two", 1200, 3));
  ASSERT_TRUE(values.ok()) << values.status();
  EXPECT_EQ(values->series(1).values(0), std::pow(0.5, 120));
}

TEST_F(CostlyCallsTest, RepeatedHyperparameterNamesAnswerOnceAndAreBounded) {
  v1::GetValuesRequest request = ValuesAt("two", 0, 3);
  for (int i = 0; i < 1024; ++i) request.add_hyperparameters("lr");
  auto once = client_->GetValues(request);
  ASSERT_TRUE(once.ok()) << once.status();
  EXPECT_EQ(once->series_size(), 2);  // lr, each group once.
  request.add_hyperparameters("lr");
  auto refused = client_->GetValues(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "hyperparameters: must name at most 1024 hyperparameters, got 1025");
}

}  // namespace
}  // namespace hpsched
