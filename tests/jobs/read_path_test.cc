// The read path as domain code: planning against pinned jobs (selection, provisional values, the
// pending policy, the served mark, a job being replaced), evaluation into the caller's spans, the
// batch cap and the count default, and Preview; plus the executors it is driven by.
#include "jobs/read_path.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "absl/synchronization/notification.h"
#include "jobs/executor.h"
#include "store/memory_job_store.h"
#include "test_specs.h"

namespace hpsched::jobs {
namespace {

// The preview half of reads lives in the core (core/preview.h), beside the rules every read shares.
using core::CheckValueCap;
using core::CompiledPreview;
using core::EffectiveCount;
using core::PreviewFields;
using core::PreviewValues;

core::JobSpec TwoHyperparameters() {
  core::JobSpec spec;
  spec.hyperparameters.push_back(
      {"lr", {0.1, 0.01}, core::ScheduleSpec{"step", {{"step_size", int64_t{10}}}, {}}});
  spec.hyperparameters.push_back({"momentum", {0.9}, core::ScheduleSpec{"constant", {}, {}}});
  return spec;
}

ReadRequest Read(std::string job, int64_t start, int64_t count,
                 PendingPolicy policy = PendingPolicy::kWait) {
  ReadRequest request;
  request.job_id = std::move(job);
  request.start = start;
  request.count = count;
  request.pending_policy = policy;
  return request;
}

// Counts the batches it evaluates, then evaluates them as the scalar evaluator does.
class CountingEvaluator final : public core::Evaluator {
 public:
  void Evaluate(std::span<const core::EvalQuery> queries) const override {
    ++batches;
    core::ScalarEvaluator().Evaluate(queries);
  }
  mutable int batches = 0;
};

class ReadPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.Create("demo", TwoHyperparameters(), "").ok());
    ASSERT_TRUE(registry_.Create("p", PlateauSpec(), "").ok());
  }

  store::MemoryJobStore store_;
  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  JobRegistry registry_{&store_, &clock_};
  CountingEvaluator evaluator_;
  ReadPath read_path_{&registry_, &evaluator_};
};

TEST_F(ReadPathTest, PlansSelectedSeriesAndEvaluatesIntoTheCallersSpans) {
  std::vector<ReadRequest> requests = {Read("demo", 9, 2)};
  requests[0].hyperparameters = {"lr"};
  auto plan = read_path_.Plan(requests, FieldNames::kSingle, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->state, ReadPlan::State::kReady);
  ASSERT_EQ(plan->reads.size(), 1u);
  EXPECT_THAT(plan->reads[0].series, ::testing::ElementsAre(0, 1));  // lr, both groups.
  EXPECT_EQ(plan->total_values, 4);
  EXPECT_FALSE(plan->reads[0].provisional_from.has_value());
  EXPECT_EQ(plan->reads[0].job->served_through.load(), 10);  // Marked before evaluating.
  double group0[2], group1[2];
  const std::span<double> outs[] = {group0, group1};
  read_path_.Evaluate(*plan, outs);
  EXPECT_EQ(evaluator_.batches, 1);  // One batch for the whole plan.
  EXPECT_THAT(group0, ::testing::ElementsAre(0.1, 0.1 * 0.1));
  EXPECT_THAT(group1, ::testing::ElementsAre(0.01, 0.01 * 0.1));
}

TEST_F(ReadPathTest, CountZeroMeansOne) {
  EXPECT_EQ(EffectiveCount(0), 1);
  EXPECT_EQ(EffectiveCount(7), 7);
  const std::vector<ReadRequest> requests = {Read("demo", 3, 0)};
  auto plan = read_path_.Plan(requests, FieldNames::kSingle, false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->reads[0].count, 1);
}

TEST_F(ReadPathTest, ErrorsComeInRequestOrderWithTheirFieldPaths) {
  std::vector<ReadRequest> requests = {Read("demo", 0, 1), Read("missing", 0, 1),
                                       Read("demo", -1, 1)};
  requests[2].job_id = absl::InvalidArgumentError("requests[2].job: is required");
  auto plan = read_path_.Plan(requests, FieldNames::kBatch, false);
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kNotFound);
  requests[1] = Read("demo", 0, 100001);
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kBatch, false).status().message(),
            "requests[1].count: must be between 1 and 100000, got 100001");
  requests[1] = Read("demo", 0, 1);
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kBatch, false).status().message(),
            "requests[2].job: is required");
  requests = {Read("demo", 0, 1)};
  requests[0].hyperparameters = {"beta1"};
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kSingle, false).status().message(),
            "hyperparameters[0]: the job has no hyperparameter \"beta1\"");
}

// A batch formats its requests' field paths without a heap string; a request far into the batch
// names its own index in each of them.
TEST_F(ReadPathTest, BatchErrorsNameTheRequestsIndex) {
  std::vector<ReadRequest> requests(12, Read("demo", 0, 1));
  requests[11].hyperparameters = {"lr", "beta1"};
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kBatch, false).status().message(),
            "requests[11].hyperparameters[1]: the job has no hyperparameter \"beta1\"");
  requests[10] = Read("demo", core::kStepLimit - 1, 2);
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kBatch, false).status().message(),
            "requests[10].count: requests[10].step + requests[10].count must be <= 2^53, got "
            "9007199254740991 + 2");
  requests[10] = Read("demo", -1, 1);
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kBatch, false).status().message(),
            "requests[10].step: must be >= 0 and < 2^53, got -1");
  requests.resize(10);
  auto plan = read_path_.Plan(requests, FieldNames::kBatch, false);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->reads.size(), 10u);
  EXPECT_EQ(plan->total_values, 30);  // 3 series each.
}

TEST_F(ReadPathTest, OneCapForTheBatch) {
  // 3 series x 100000 values, twice: over 400000.
  const std::vector<ReadRequest> requests = {Read("demo", 0, 100000), Read("demo", 0, 100000)};
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kBatch, false).status().message(),
            "requests[1].count: the response would hold more than 400000 values (count x series); "
            "ask for fewer steps or hyperparameters");
  EXPECT_TRUE(CheckValueCap(core::kMaxValuesPerBatch, "count").ok());
}

TEST_F(ReadPathTest, PendingPolicies) {
  // Steps from 10 on wait for the report at 9.
  std::vector<ReadRequest> requests = {Read("p", 5, 10)};
  auto wait = read_path_.Plan(requests, FieldNames::kSingle, false);
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(wait->state, ReadPlan::State::kWait);
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kSingle, true).status().message(),
            "step: the values from step 10 on wait for metric reports that have not arrived (set "
            "pending_policy to accept provisional values)");
  requests[0].pending_policy = PendingPolicy::kWaitThenProvisional;
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kSingle, false)->state, ReadPlan::State::kWait);
  auto at_deadline = read_path_.Plan(requests, FieldNames::kSingle, true);
  ASSERT_TRUE(at_deadline.ok());
  EXPECT_EQ(at_deadline->state, ReadPlan::State::kReady);
  EXPECT_EQ(at_deadline->reads[0].provisional_from, 10);
  requests[0].pending_policy = PendingPolicy::kProvisionalNow;
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kSingle, false)->state, ReadPlan::State::kReady);
}

TEST_F(ReadPathTest, AWarmupBeforeThePlateauAnswersAtOnce) {
  ASSERT_TRUE(registry_.Create("w", WarmupThenPlateauSpec(), "").ok());
  // No report has arrived, but the warmup's values (steps 0 to 100: the plateau starts from the
  // base value at its milestone) read none: final, so a waiting read answers at once.
  std::vector<ReadRequest> warmup = {Read("w", 0, 101)};
  auto ready = read_path_.Plan(warmup, FieldNames::kSingle, false);
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->state, ReadPlan::State::kReady);
  EXPECT_FALSE(ready->reads[0].provisional_from.has_value());
  // Past the milestone the plateau reads the report at 100 and later: those reads still wait.
  std::vector<ReadRequest> past = {Read("w", 95, 10)};
  auto wait = read_path_.Plan(past, FieldNames::kSingle, false);
  ASSERT_TRUE(wait.ok());
  EXPECT_EQ(wait->state, ReadPlan::State::kWait);
  past[0].pending_policy = PendingPolicy::kProvisionalNow;
  auto now = read_path_.Plan(past, FieldNames::kSingle, false);
  ASSERT_TRUE(now.ok());
  EXPECT_EQ(now->reads[0].provisional_from, 101);
}

TEST_F(ReadPathTest, AJobBeingReplacedIsNotServedFrom) {
  std::shared_ptr<const Job> job = *registry_.Get("demo");
  job->closing.store(true);  // As a mutation does while it replaces the job.
  const std::vector<ReadRequest> requests = {Read("demo", 0, 5)};
  auto plan = read_path_.Plan(requests, FieldNames::kSingle, false);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->state, ReadPlan::State::kReplaced);
  job->closing.store(false);
  EXPECT_EQ(read_path_.Plan(requests, FieldNames::kSingle, false)->state, ReadPlan::State::kReady);
}

TEST_F(ReadPathTest, Preview) {
  const core::ScheduleSpec step{"step", {{"step_size", int64_t{2}}}, {}};
  std::vector<std::vector<double>> series;
  auto out = [&](size_t group, int64_t count) {
    series.resize(group + 1);
    series[group].resize(count);
    return std::span<double>(series[group]);
  };
  ASSERT_TRUE(PreviewValues(step, {1.0, 10.0}, "", 1, 3, evaluator_, out).ok());
  EXPECT_THAT(series[0], ::testing::ElementsAre(1.0, 0.1, 0.1));
  EXPECT_THAT(series[1], ::testing::ElementsAre(10.0, 1.0, 1.0));
  series.clear();
  ASSERT_TRUE(PreviewValues(step, {}, "", 0, 0, evaluator_, out).ok());  // Base 1, count 1.
  EXPECT_THAT(series, ::testing::ElementsAre(::testing::ElementsAre(1.0)));
  EXPECT_EQ(PreviewValues(step, {INFINITY}, "", 0, 1, evaluator_, out).message(),
            "base_values[0]: must be finite, got inf");
  EXPECT_EQ(PreviewValues(step, {1.0}, "", -1, 1, evaluator_, out).message(),
            "start_step: must be >= 0 and < 2^53, got -1");
  EXPECT_EQ(
      PreviewValues(step, std::vector<double>(5, 1.0), "", 0, 100000, evaluator_, out).message(),
      "count: the response would hold more than 400000 values (count x series); ask for "
      "fewer steps or hyperparameters");
  // The CLI's fields, compiled once and evaluated per chunk.
  const PreviewFields flags{"schedule", "--base", "--steps", "--steps"};
  auto compiled = CompiledPreview::Compile(step, {1.0}, "lr", flags);
  ASSERT_TRUE(compiled.ok());
  EXPECT_EQ(compiled->Evaluate(-3, 1, evaluator_, out, flags).message(),
            "--steps: must be >= 0 and < 2^53, got -3");
}

TEST(ManualExecutorTest, RunsDueTasksInOrderWhenTheClockAdvances) {
  FakeClock clock(absl::FromUnixSeconds(100));
  ManualExecutor executor(&clock);
  std::vector<int> ran;
  executor.At(absl::FromUnixSeconds(105), [&] { ran.push_back(2); });
  executor.Schedule([&] {
    ran.push_back(1);
    executor.Schedule([&] { ran.push_back(3); });  // Scheduled by a task: runs in the same pass.
  });
  EXPECT_EQ(executor.RunDue(), 2);
  EXPECT_THAT(ran, ::testing::ElementsAre(1, 3));
  EXPECT_EQ(executor.queued(), 1u);
  EXPECT_EQ(executor.Advance(absl::Seconds(4)), 0);
  EXPECT_EQ(executor.Advance(absl::Seconds(1)), 1);
  EXPECT_THAT(ran, ::testing::ElementsAre(1, 3, 2));
}

TEST(ManualExecutorTest, CancelledTasksNeverRun) {
  FakeClock clock(absl::FromUnixSeconds(100));
  ManualExecutor executor(&clock);
  bool ran = false;
  const Executor::TaskId id = executor.At(absl::FromUnixSeconds(101), [&] { ran = true; });
  executor.Cancel(id);
  executor.Cancel(id);  // Twice: a no-op.
  EXPECT_EQ(executor.queued(), 0u);
  EXPECT_EQ(executor.Advance(absl::Seconds(5)), 0);
  EXPECT_FALSE(ran);
}

TEST(ThreadExecutorTest, RunsScheduledTasks) {
  SystemClock clock;
  absl::Notification done;
  ThreadExecutor executor(&clock);
  executor.At(absl::InfinitePast(), [&] { done.Notify(); });
  done.WaitForNotification();
  // Dropped, not run, when the executor goes away first.
  executor.At(absl::InfiniteFuture(), [] { FAIL() << "ran a task that was never due"; });
}

}  // namespace
}  // namespace hpsched::jobs
