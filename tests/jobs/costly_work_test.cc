// The pieces that keep costly evaluations apart: the bounded work pool, and the evaluator that
// stops between chunks. Chunked values are compared with the plain evaluator's bit for bit.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "core/job_plan.h"
#include "core/schedule_spec.h"
#include "jobs/cancellable_evaluator.h"
#include "jobs/work_pool.h"

namespace hpsched::jobs {
namespace {

core::ScheduleSpec Lambda(const std::string& expression) {
  return core::ScheduleSpec{"lambda", {{"expression", std::string(expression)}}, {}};
}

core::ScheduleSpec Sequential() {
  core::ScheduleSpec spec{"sequential", {{"milestones", std::vector<int64_t>{300}}}, {}};
  spec.children.push_back(Lambda("0.5 + 0.5 * cos(step / 7)"));
  spec.children.push_back(core::ScheduleSpec{
      "multiplicative", {{"lr_lambda", std::string("0.999")}, {"total_iters", int64_t{2000}}}, {}});
  return spec;
}

TEST(CancellableEvaluatorTest, ChunkedValuesAreTheSameBits) {
  for (const core::ScheduleSpec& spec : {Lambda("0.9 ** step + sin(step)"), Sequential()}) {
    auto nodes = core::CompileStandalone(spec, std::vector<double>{0.1, 2.0}, "schedule");
    ASSERT_TRUE(nodes.ok()) << nodes.status();
    std::vector<double> plain(2 * 5000), chunked(2 * 5000);
    auto queries = [&](std::vector<double>& out) {
      return std::vector<core::EvalQuery>{
          {(*nodes)[0].get(), 123, std::span<double>(out.data(), 5000)},
          {(*nodes)[1].get(), 7, std::span<double>(out.data() + 5000, 5000)}};
    };
    core::DefaultEvaluator().Evaluate(queries(plain));
    int stops_asked = 0;
    // A chunk of 100 units: many chunks of 64 steps per query.
    const CancellableEvaluator evaluator(
        &core::DefaultEvaluator(), [&] { return ++stops_asked, false; }, 100);
    evaluator.Evaluate(queries(chunked));
    EXPECT_FALSE(evaluator.stopped());
    EXPECT_GT(stops_asked, 2 * (5000 / 64));
    EXPECT_EQ(std::memcmp(plain.data(), chunked.data(), plain.size() * sizeof(double)), 0);
  }
}

TEST(CancellableEvaluatorTest, StopsBetweenChunks) {
  auto nodes = core::CompileStandalone(Lambda("sqrt(step + 1)"), std::vector<double>{1.0}, "s");
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ((*nodes)[0]->step_cost(), 1 + 2);  // The value, then its instructions: + 1, sqrt.
  std::vector<double> out(100'000, -1.0);
  int chunks = 0;
  const CancellableEvaluator evaluator(
      &core::DefaultEvaluator(), [&] { return ++chunks > 3; }, 64 * 3);
  evaluator.Evaluate({{core::EvalQuery{(*nodes)[0].get(), 0, out}}});
  EXPECT_TRUE(evaluator.stopped());
  EXPECT_EQ(chunks, 4);
  // Three chunks of 64 steps ran; nothing after them.
  EXPECT_EQ(out[191], std::sqrt(192.0));
  EXPECT_EQ(out[192], -1.0);
  EXPECT_EQ(out.back(), -1.0);
}

// Records the batches it is given, then evaluates them.
class RecordingEvaluator final : public core::Evaluator {
 public:
  void Evaluate(std::span<const core::EvalQuery> queries) const override {
    batches.emplace_back(queries.data(), queries.size());
    core::DefaultEvaluator().Evaluate(queries);
  }
  mutable std::vector<std::pair<const core::EvalQuery*, size_t>> batches;
};

TEST(CancellableEvaluatorTest, PassesRunsOfWholeQueriesThroughAsTheyAre) {
  auto nodes = core::CompileStandalone(Lambda("sqrt(step + 1)"), std::vector<double>{1.0}, "s");
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ((*nodes)[0]->step_cost(), 3);
  const core::Node* node = (*nodes)[0].get();
  std::vector<double> out(100 + 100 + 700 + 100 + 100);
  const std::span<double> all(out);
  // Chunks of 1000 units: the first two fit (600), the third (2100) does not and is split into
  // pieces of 320 steps (1000 / 3 rounded down to 64s), the last two fit again.
  const std::vector<core::EvalQuery> queries = {{node, 0, all.subspan(0, 100)},
                                                {node, 100, all.subspan(100, 100)},
                                                {node, 200, all.subspan(200, 700)},
                                                {node, 900, all.subspan(900, 100)},
                                                {node, 1000, all.subspan(1000, 100)}};
  RecordingEvaluator inner;
  int stops_asked = 0;
  const CancellableEvaluator evaluator(
      &inner, [&] { return ++stops_asked, false; }, 1000);
  evaluator.Evaluate(queries);
  ASSERT_EQ(inner.batches.size(), 5u);
  EXPECT_EQ(inner.batches[0], std::make_pair(&queries[0], size_t{2}));  // The caller's own.
  EXPECT_EQ(inner.batches[1].second, 1u);
  EXPECT_EQ(inner.batches[2].second, 1u);
  EXPECT_EQ(inner.batches[3].second, 1u);
  EXPECT_EQ(inner.batches[4], std::make_pair(&queries[3], size_t{2}));
  EXPECT_EQ(stops_asked, 5);
  for (size_t t = 0; t < out.size(); ++t) ASSERT_EQ(out[t], std::sqrt(t + 1.0)) << t;
}

TEST(WorkPoolTest, RefusesBeyondItsThreadsAndQueue) {
  absl::Notification release, started;  // Outlive the pool, whose thread uses them.
  std::atomic<int> ran = 0;
  {
    WorkPool pool(1, 1);
    ASSERT_TRUE(pool.TrySchedule([&] {
      started.Notify();
      release.WaitForNotification();
      ++ran;
    }));
    started.WaitForNotification();
    EXPECT_TRUE(pool.TrySchedule([&] { ++ran; }));        // Waits in the queue.
    EXPECT_FALSE(pool.TrySchedule([&] { ran += 100; }));  // The queue is full.
    EXPECT_EQ(pool.running(), 1u);
    EXPECT_EQ(pool.queued(), 1u);
    release.Notify();
  }  // The destructor runs what was accepted.
  EXPECT_EQ(ran, 2);
}

}  // namespace
}  // namespace hpsched::jobs
