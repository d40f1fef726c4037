// The pieces that keep costly evaluations apart: the bounded work pool, and the evaluator that
// stops between chunks. Chunked values are compared with the plain evaluator's bit for bit.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
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
