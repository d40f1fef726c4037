// A job's history (UpdateJob segments) and its metric-driven schedules, compiled into one plan:
// earlier steps never change, local and global time, anchor continuity, scale and pin, plateau
// reductions replayed from reports, and which values are provisional.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/evaluator.h"
#include "core/history.h"
#include "core/job_plan.h"

namespace hpsched::core {
namespace {

using ::testing::HasSubstr;

ScheduleSpec Spec(std::string kind, hpsched::core::ScheduleParams params = {},
                  std::vector<ScheduleSpec> children = {}) {
  return ScheduleSpec{std::move(kind), std::move(params), std::move(children)};
}

SegmentSpec ScheduleSegment(int64_t at, ScheduleSpec schedule, bool global = false,
                            bool anchor = false) {
  SegmentSpec s;
  s.effective_step = at;
  s.schedule = std::move(schedule);
  s.global_time = global;
  s.anchor = anchor;
  return s;
}

SegmentSpec ScaleSegment(int64_t at, double factor) {
  SegmentSpec s;
  s.effective_step = at;
  s.change = SegmentSpec::Change::kScale;
  s.scale = factor;
  return s;
}

SegmentSpec PinSegment(int64_t at, std::vector<double> values) {
  SegmentSpec s;
  s.effective_step = at;
  s.change = SegmentSpec::Change::kPin;
  s.pin = std::move(values);
  return s;
}

JobSpec Job(ScheduleSpec schedule, std::vector<SegmentSpec> segments = {},
            std::vector<double> bases = {0.1}) {
  JobSpec spec;
  spec.hyperparameters.push_back(
      {"lr", std::move(bases), std::move(schedule), std::move(segments)});
  return spec;
}

// Values of series `index` for [start, start + count), evaluated as one span.
std::vector<double> Values(const JobPlan& plan, int64_t start, size_t count, size_t index = 0) {
  std::vector<double> out(count);
  EvalQuery query{plan.series()[index].node.get(), start, out};
  EvaluateBatch(std::span<const EvalQuery>(&query, 1));
  return out;
}

double At(const JobPlan& plan, int64_t step, size_t index = 0) {
  return Values(plan, step, 1, index)[0];
}

std::shared_ptr<const JobPlan> MustCompile(const JobSpec& spec, const MetricLog* log = nullptr) {
  auto plan = JobPlan::Compile(spec, "job", log);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : nullptr;
}

const ScheduleSpec kStep = Spec("step", {{"step_size", int64_t{10}}, {"gamma", 0.5}});

TEST(HistoryTest, EarlierStepsNeverChange) {
  auto before = MustCompile(Job(kStep));
  auto after = MustCompile(Job(kStep, {ScheduleSegment(25, Spec("constant", {{"factor", 1.0}}))}));
  EXPECT_EQ(Values(*before, 0, 25), Values(*after, 0, 25));
  for (double v : Values(*after, 25, 100)) EXPECT_EQ(v, 0.1);
}

TEST(HistoryTest, LocalAndGlobalTime) {
  auto local = MustCompile(Job(Spec("constant", {{"factor", 1.0}}), {ScheduleSegment(30, kStep)}));
  auto global =
      MustCompile(Job(Spec("constant", {{"factor", 1.0}}), {ScheduleSegment(30, kStep, true)}));
  // Local: the step schedule starts at its own step 0 at step 30.
  EXPECT_EQ(At(*local, 30), 0.1);
  EXPECT_EQ(At(*local, 39), 0.1);
  EXPECT_EQ(At(*local, 40), 0.1 * 0.5);
  // Global: it is at its step 30 already.
  EXPECT_EQ(At(*global, 30), 0.1 * std::pow(0.5, 3));
  EXPECT_EQ(At(*global, 45), 0.1 * std::pow(0.5, 4));
}

TEST(HistoryTest, AnchorContinuesFromTheOldValue) {
  // "From step 25, cosine down to 0 over 100 steps from wherever we are".
  const ScheduleSpec cosine = Spec("cosine_annealing", {{"t_max", int64_t{100}}});
  auto plan = MustCompile(Job(kStep, {ScheduleSegment(25, cosine, false, true)}, {0.1, 0.3}));
  for (size_t g = 0; g < 2; ++g) {
    const double old = (g == 0 ? 0.1 : 0.3) * 0.25;  // step 25 of StepLR(10, 0.5)
    EXPECT_EQ(At(*plan, 24, g), old);
    EXPECT_EQ(At(*plan, 25, g), old) << "group " << g;
    EXPECT_NEAR(At(*plan, 75, g), old / 2, 1e-15);
    EXPECT_EQ(At(*plan, 125, g), 0.0);
  }
}

TEST(HistoryTest, ScaleAndPin) {
  auto plan =
      MustCompile(Job(kStep, {ScaleSegment(20, 0.5), PinSegment(60, {0.002, 0.004})}, {0.1, 0.2}));
  EXPECT_EQ(At(*plan, 19), 0.1 * 0.5);
  EXPECT_EQ(At(*plan, 20), 0.1 * 0.25 * 0.5);
  EXPECT_EQ(At(*plan, 59), 0.1 * std::pow(0.5, 5) * 0.5);
  EXPECT_EQ(At(*plan, 60, 0), 0.002);
  EXPECT_EQ(At(*plan, 60, 1), 0.004);
  EXPECT_EQ(At(*plan, 1'000'000, 1), 0.004);
}

TEST(HistoryTest, AChangeReplacesLaterOnesFromItsStep) {
  // Pin from 50, then (made later) a new schedule from 30: the pin is gone.
  auto plan = MustCompile(Job(kStep, {PinSegment(50, {7.0}), ScheduleSegment(30, kStep)}));
  EXPECT_EQ(At(*plan, 29), 0.1 * 0.25);
  EXPECT_EQ(At(*plan, 55), 0.1 * std::pow(0.5, 2));
  // A scale multiplies the values as they were before it, later changes included.
  plan = MustCompile(Job(kStep, {PinSegment(50, {7.0}), ScaleSegment(30, 2.0)}));
  EXPECT_EQ(At(*plan, 35), 0.1 * std::pow(0.5, 3) * 2.0);
  EXPECT_EQ(At(*plan, 55), 14.0);
}

TEST(HistoryTest, BatchedEqualsOneAtATime) {
  auto plan = MustCompile(Job(kStep, {ScaleSegment(20, 0.5), ScheduleSegment(33, kStep),
                                      PinSegment(70, {0.5}), ScheduleSegment(90, kStep, true)}));
  const std::vector<double> span = Values(*plan, 0, 200);
  for (int64_t t = 0; t < 200; ++t) EXPECT_EQ(span[t], At(*plan, t)) << t;
}

TEST(HistoryTest, InvalidSegmentsNameTheField) {
  auto bad = JobPlan::Compile(Job(kStep, {ScaleSegment(5, -1)}), "job");
  EXPECT_THAT(bad.status().message(),
              HasSubstr("job.hyperparameters[0].segments[0].scale: must be > 0"));
  bad = JobPlan::Compile(Job(kStep, {PinSegment(5, {1, 2})}), "job");
  EXPECT_THAT(bad.status().message(),
              HasSubstr("segments[0].pin.values: must have one value or one per group (1)"));
  bad = JobPlan::Compile(Job(kStep, {ScheduleSegment(5, Spec("step"))}), "job");
  EXPECT_THAT(bad.status().message(),
              HasSubstr("job.hyperparameters[0].segments[0].schedule.step.step_size"));
  // Scale factors whose product could overflow.
  std::vector<SegmentSpec> scales;
  for (int i = 0; i < 3; ++i) scales.push_back(ScaleSegment(10 + i, 1000));
  bad = JobPlan::Compile(Job(kStep, scales), "job");
  EXPECT_THAT(bad.status().message(), HasSubstr("segments[2].scale: the product"));
}

// --- reduce_on_plateau
// ----------------------------------------------------------------------------

JobSpec PlateauJob(ScheduleSpec schedule, int64_t every_steps, std::vector<double> bases = {1.0}) {
  JobSpec spec = Job(std::move(schedule), {}, std::move(bases));
  spec.metrics.push_back(MetricSpec{"loss", every_steps, 0});
  return spec;
}

MetricLog Log(const JobSpec& spec, const std::vector<double>& values) {
  MetricReports reports;
  const int64_t k = spec.metrics[0].every_steps;
  for (size_t e = 0; e < values.size(); ++e) {
    reports[static_cast<int64_t>(e + 1) * k - 1] = MetricReport{values[e]};
  }
  return MetricLog{{"loss", BuildTrack(spec.metrics[0], reports)}};
}

TEST(PlateauTest, ReducesAfterPatienceBadReports) {
  const JobSpec spec =
      PlateauJob(Spec("reduce_on_plateau",
                      {{"metric", std::string("loss")}, {"patience", int64_t{1}}, {"factor", 0.5}}),
                 10);
  // Epochs: 1.0 (best), 1.0 (bad 1), 1.0 (bad 2 > patience: reduce), 0.5 (best), ...
  const MetricLog log = Log(spec, {1.0, 1.0, 1.0, 0.5});
  auto plan = MustCompile(spec, &log);
  EXPECT_EQ(At(*plan, 29), 1.0);
  EXPECT_EQ(At(*plan, 30), 0.5);  // The third report (step 29) reduced from step 30 on.
  EXPECT_EQ(plan->reduction_steps(), std::vector<int64_t>{30});
  // The report for epoch 4 (step 39) is there; epoch 5's (step 49) is not: from step 50 the values
  // are provisional.
  const std::vector<size_t> all = {0};
  EXPECT_EQ(plan->ProvisionalFrom(all), 50);
}

TEST(PlateauTest, UndeclaredMetricIsAnError) {
  JobSpec spec = PlateauJob(Spec("reduce_on_plateau", {{"metric", std::string("acc")}}), 10);
  auto plan = JobPlan::Compile(spec, "job");
  EXPECT_THAT(plan.status().message(),
              HasSubstr("job.hyperparameters[0].schedule.reduce_on_plateau.metric: \"acc\" is "
                        "not declared"));
}

TEST(PlateauTest, InsideSequentialItSeesReportsFromItsStart) {
  // Warmup for 20 steps, then plateau with patience 0: every non-improving report reduces.
  const ScheduleSpec plateau =
      Spec("reduce_on_plateau",
           {{"metric", std::string("loss")}, {"patience", int64_t{0}}, {"factor", 0.5}});
  const JobSpec spec = PlateauJob(
      Spec("sequential", {{"milestones", std::vector<int64_t>{20}}},
           {Spec("linear", {{"start_factor", 0.5}, {"total_iters", int64_t{20}}}), plateau}),
      10);
  // Reports at 9 and 19 fall in the warmup and are not seen; 29 is the plateau's first (best),
  // 39 is worse: reduce from 40.
  const MetricLog log = Log(spec, {0.1, 0.1, 1.0, 2.0});
  auto plan = MustCompile(spec, &log);
  EXPECT_EQ(At(*plan, 20), 1.0);
  EXPECT_EQ(At(*plan, 39), 1.0);
  EXPECT_EQ(At(*plan, 40), 0.5);
  EXPECT_EQ(plan->series()[0].reduction_steps(), std::vector<int64_t>{40});
}

TEST(PlateauTest, InsideOptaxJoinSchedulesItSeesReportsFromItsBoundary) {
  const ScheduleSpec plateau =
      Spec("reduce_on_plateau",
           {{"metric", std::string("loss")}, {"patience", int64_t{0}}, {"factor", 0.5}});
  const JobSpec spec = PlateauJob(
      Spec("optax",
           {{"name", std::string("join_schedules")}, {"boundaries", std::vector<int64_t>{20}}},
           {Spec("optax", {{"name", std::string("constant_schedule")}}), plateau}),
      10);
  // As in the sequential test: 9 and 19 are before the boundary; 29 is the best, 39 worse.
  const MetricLog log = Log(spec, {0.1, 0.1, 1.0, 2.0});
  auto plan = MustCompile(spec, &log);
  EXPECT_EQ(At(*plan, 39), 1.0);
  EXPECT_EQ(At(*plan, 40), 0.5);
}

TEST(PlateauTest, ReductionsAfterThePlateauStoppedApplyingDoNotShow) {
  // Plateau (patience 0) for 25 steps, then constant: the reductions at 20 shows, the one at 30
  // (after the plateau ended) changes nothing.
  const ScheduleSpec plateau =
      Spec("reduce_on_plateau",
           {{"metric", std::string("loss")}, {"patience", int64_t{0}}, {"factor", 0.5}});
  const JobSpec spec = PlateauJob(Spec("sequential", {{"milestones", std::vector<int64_t>{25}}},
                                       {plateau, Spec("constant", {{"factor", 1.0}})}),
                                  10);
  const MetricLog log = Log(spec, {1.0, 2.0, 3.0});
  auto plan = MustCompile(spec, &log);
  EXPECT_EQ(plan->reduction_steps(), (std::vector<int64_t>{20, 30}));
  EXPECT_EQ(plan->series()[0].reduction_steps(), std::vector<int64_t>{20});
}

TEST(MetricsTest, AnnouncedReportsAndPendingSteps) {
  const MetricSpec spec{"loss", 0, 5};
  MetricReports reports;
  EXPECT_EQ(BuildTrack(spec, reports).pending_step, 5);
  reports[5] = MetricReport{1.0, 17};
  reports[40] = MetricReport{1.0, kNoNextReport};  // Not announced yet: not used.
  MetricTrack track = BuildTrack(spec, reports);
  EXPECT_EQ(track.reports.size(), 1u);
  EXPECT_EQ(track.pending_step, 17);
  EXPECT_TRUE(CheckReportStep(spec, reports, 17, "step").ok());
  EXPECT_THAT(CheckReportStep(spec, reports, 18, "step").message(),
              HasSubstr("step: metric \"loss\" is not expected at step 18"));
  reports[17] = MetricReport{1.0, 40};
  track = BuildTrack(spec, reports);
  EXPECT_EQ(track.reports.size(), 3u);
  EXPECT_EQ(track.pending_step, kNeverPending);
}

TEST(MetricsTest, EveryStepsCadence) {
  const MetricSpec spec{"loss", 100, 0};
  MetricReports reports;
  EXPECT_TRUE(CheckReportStep(spec, reports, 99, "step").ok());
  EXPECT_THAT(CheckReportStep(spec, reports, 100, "step").message(),
              HasSubstr("(s + 1) % 100 == 0; got 100"));
  reports[99] = MetricReport{1.0};
  reports[299] = MetricReport{1.0};  // 199 missing: 299 waits.
  const MetricTrack track = BuildTrack(spec, reports);
  EXPECT_EQ(track.reports.size(), 1u);
  EXPECT_EQ(track.pending_step, 199);
}

}  // namespace
}  // namespace hpsched::core
