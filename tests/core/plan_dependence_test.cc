// Which values depend on metric reports (issue 14, fault 3): a step is provisional only where a
// reduce_on_plateau actually runs and a report it reads is missing. Composites delegate by time
// (sequential, optax join_schedules and the optax schedules built on it), combine their children
// (chained), and UpdateJob segments switch the schedule from their step on (an anchored one keeps
// the dependence of the value it starts from).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/job_plan.h"

namespace hpsched::core {
namespace {

using ::testing::ElementsAre;

ScheduleSpec Spec(std::string kind, hpsched::core::ScheduleParams params = {},
                  std::vector<ScheduleSpec> children = {}) {
  return ScheduleSpec{std::move(kind), std::move(params), std::move(children)};
}

const ScheduleSpec kPlateau =
    Spec("reduce_on_plateau", {{"metric", std::string("loss")}, {"patience", int64_t{0}}});
const ScheduleSpec kWarmup =
    Spec("linear", {{"start_factor", 0.01}, {"total_iters", int64_t{100}}});
const ScheduleSpec kConstant = Spec("constant", {{"factor", 1.0}, {"total_iters", int64_t{0}}});

// lr with `schedule`, "loss" reported every 10 steps (at 9, 19, ...), none arrived yet unless
// `reports` says so.
JobSpec Job(ScheduleSpec schedule, std::vector<SegmentSpec> segments = {}) {
  JobSpec spec;
  spec.hyperparameters.push_back({"lr", {0.1, 0.2}, std::move(schedule), std::move(segments)});
  spec.metrics.push_back(MetricSpec{"loss", 10, 0});
  return spec;
}

std::shared_ptr<const JobPlan> Compile(const JobSpec& spec, std::vector<int64_t> reported = {}) {
  MetricReports reports;
  for (int64_t step : reported) reports[step] = MetricReport{1.0};
  const MetricLog log = {{"loss", BuildTrack(spec.metrics[0], reports)}};
  auto plan = JobPlan::Compile(spec, "job", &log);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : nullptr;
}

int64_t ProvisionalFrom(const JobPlan& plan, int64_t start = 0, int64_t end = kStepLimit) {
  const std::vector<size_t> all = {0, 1};
  return plan.ProvisionalFrom(all, start, end);
}

SegmentSpec Segment(int64_t at, ScheduleSpec schedule, bool anchor = false) {
  SegmentSpec segment;
  segment.effective_step = at;
  segment.schedule = std::move(schedule);
  segment.anchor = anchor;
  return segment;
}

TEST(PlanDependenceTest, APlateauAloneDependsOnReportsFromItsFirstStep) {
  auto plan = Compile(Job(kPlateau));
  // The report at 9 is missing: step 10 is the first value that reads it.
  EXPECT_EQ(ProvisionalFrom(*plan), 10);
  EXPECT_THAT(plan->series()[0].dependences(),
              ElementsAre(ReportDependence{"loss", 0, kStepLimit, 0, kStepLimit}));
}

TEST(PlanDependenceTest, AWarmupBeforeASequentialMilestoneIsFinal) {
  // Linear warmup for 100 steps, then the plateau: it reads the reports from step 100 on (the
  // report at 99 and earlier ones belong to the warmup), so values up to and including step 100
  // (its local step 0, the base value) depend on no report.
  auto plan = Compile(
      Job(Spec("sequential", {{"milestones", std::vector<int64_t>{100}}}, {kWarmup, kPlateau})));
  EXPECT_EQ(ProvisionalFrom(*plan), 101);
  EXPECT_EQ(ProvisionalFrom(*plan, 0, 100), kNeverPending);
  EXPECT_EQ(ProvisionalFrom(*plan, 50, 101), kNeverPending);
  EXPECT_EQ(ProvisionalFrom(*plan, 95, 200), 101);
  EXPECT_THAT(plan->series()[0].dependences(),
              ElementsAre(ReportDependence{"loss", 100, kStepLimit, 100, kStepLimit}));
  // Reports of the warmup arriving change nothing; the plateau's first report (109) moves it on.
  EXPECT_EQ(
      ProvisionalFrom(*Compile(
          Job(Spec("sequential", {{"milestones", std::vector<int64_t>{100}}}, {kWarmup, kPlateau})),
          {9, 19, 29, 39, 49, 59, 69, 79, 89, 99, 109})),
      120);
}

TEST(PlanDependenceTest, APlateauBetweenTwoMilestonesOnlyMakesItsOwnStepsProvisional) {
  auto plan = Compile(Job(Spec("sequential", {{"milestones", std::vector<int64_t>{100, 200}}},
                               {kWarmup, kPlateau, kConstant})));
  EXPECT_EQ(ProvisionalFrom(*plan), 101);
  // After the second milestone the constant reads no report: final again.
  EXPECT_EQ(ProvisionalFrom(*plan, 200, 300), kNeverPending);
  EXPECT_EQ(ProvisionalFrom(*plan, 150, 300), 150);
}

TEST(PlanDependenceTest, OptaxJoinSchedulesDelegatesByBoundary) {
  auto plan = Compile(Job(Spec(
      "optax", {{"name", std::string("join_schedules")}, {"boundaries", std::vector<int64_t>{30}}},
      {Spec("optax", {{"name", std::string("constant_schedule")}}), kPlateau})));
  EXPECT_EQ(ProvisionalFrom(*plan, 0, 31), kNeverPending);
  EXPECT_EQ(ProvisionalFrom(*plan), 31);
}

TEST(PlanDependenceTest, ChainedCombinesItsChildren) {
  // Every child of a chain runs at every step: a plateau anywhere in it makes the product depend
  // on reports; inside a sequential child only from that child's milestone on.
  auto direct = Compile(Job(Spec("chained", {}, {kConstant, kPlateau})));
  EXPECT_EQ(ProvisionalFrom(*direct), 10);
  auto nested =
      Compile(Job(Spec("chained", {},
                       {kConstant, Spec("sequential", {{"milestones", std::vector<int64_t>{40}}},
                                        {kConstant, kPlateau})})));
  EXPECT_EQ(ProvisionalFrom(*nested, 0, 41), kNeverPending);
  EXPECT_EQ(ProvisionalFrom(*nested), 41);
  // Without a plateau nothing is provisional, whatever reports are missing.
  EXPECT_EQ(ProvisionalFrom(*Compile(Job(Spec("chained", {}, {kConstant, kWarmup})))),
            kNeverPending);
}

TEST(PlanDependenceTest, ASegmentSwitchesTheDependenceFromItsStep) {
  // A plateau until 50, then (UpdateJob) a cosine on local time: from 50 on nothing waits.
  auto away =
      Compile(Job(kPlateau, {Segment(50, Spec("cosine_annealing", {{"t_max", int64_t{100}}}))}));
  EXPECT_EQ(ProvisionalFrom(*away), 10);
  EXPECT_EQ(ProvisionalFrom(*away, 50, 1000), kNeverPending);
  // A warmup, then a plateau from 70 on local time: it reads reports from 70 on.
  auto onto = Compile(Job(kWarmup, {Segment(70, kPlateau)}));
  EXPECT_EQ(ProvisionalFrom(*onto), 71);
  EXPECT_EQ(ProvisionalFrom(*onto, 0, 71), kNeverPending);
}

TEST(PlanDependenceTest, AnAnchoredSegmentKeepsTheDependenceOfItsStartingValue) {
  // The cosine from 50 starts at the plateau's value at 50, which read the reports up to 49: with
  // the report at 9 missing, every step from 50 on is provisional too...
  const ScheduleSpec cosine = Spec("cosine_annealing", {{"t_max", int64_t{100}}});
  auto missing = Compile(Job(kPlateau, {Segment(50, cosine, /*anchor=*/true)}));
  EXPECT_EQ(ProvisionalFrom(*missing, 50, 1000), 50);
  EXPECT_THAT(missing->series()[0].dependences(),
              ElementsAre(ReportDependence{"loss", 0, kStepLimit, 0, 50},
                          ReportDependence{"loss", 0, 49, 50, kStepLimit}));
  // ...and final once those reports are in, though later ones are still missing.
  auto arrived =
      Compile(Job(kPlateau, {Segment(50, cosine, /*anchor=*/true)}), {9, 19, 29, 39, 49});
  EXPECT_EQ(ProvisionalFrom(*arrived), kNeverPending);
}

TEST(PlanDependenceTest, ScaleAndPinSegments) {
  SegmentSpec scale;
  scale.effective_step = 30;
  scale.change = SegmentSpec::Change::kScale;
  scale.scale = 0.5;
  SegmentSpec pin;
  pin.effective_step = 60;
  pin.change = SegmentSpec::Change::kPin;
  pin.pin = {0.01};
  auto plan = Compile(
      Job(Spec("sequential", {{"milestones", std::vector<int64_t>{40}}}, {kWarmup, kPlateau}),
          {scale, pin}));
  // The scaled values are the plateau's from 40 on; the pinned ones from 60 on depend on nothing.
  EXPECT_EQ(ProvisionalFrom(*plan, 0, 41), kNeverPending);
  EXPECT_EQ(ProvisionalFrom(*plan, 0, 60), 41);
  EXPECT_EQ(ProvisionalFrom(*plan, 60, 1000), kNeverPending);
}

}  // namespace
}  // namespace hpsched::core
