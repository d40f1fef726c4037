// The pure parts of `hpsched plot`: nice ticks, M4 downsampling, marks derived from specs, the SVG
// and terminal renderers, and the JSON helpers. No server.
#include <google/protobuf/util/json_util.h>

#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "client/cli/downsample.h"
#include "client/cli/json_io.h"
#include "client/cli/plot_marks.h"
#include "client/cli/plot_model.h"
#include "client/cli/plot_scale.h"
#include "client/cli/svg_plot.h"
#include "client/cli/terminal_plot.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hpsched::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

v1::Schedule ParseSchedule(const std::string& json) {
  v1::Schedule schedule;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &schedule);
  EXPECT_TRUE(status.ok()) << json << ": " << status.ToString();
  return schedule;
}

std::vector<double> Steps(const std::vector<Mark>& marks) {
  std::vector<double> steps;
  for (const Mark& m : marks) steps.push_back(m.step);
  return steps;
}

// --- Nice ticks ----------------------------------------------------------------------------------

// True if `step` is 1, 2 or 5 times a power of ten.
bool IsNice(double step) {
  const double exponent = std::floor(std::log10(step) + 1e-9);
  const double mantissa = step / std::pow(10.0, exponent);
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (std::abs(mantissa - m) < 1e-9) return true;
  }
  return false;
}

TEST(NiceStepTest, RoundsUpToOneTwoFive) {
  EXPECT_DOUBLE_EQ(NiceStep(0.013), 0.02);
  EXPECT_DOUBLE_EQ(NiceStep(0.3), 0.5);
  EXPECT_DOUBLE_EQ(NiceStep(7), 10);
  EXPECT_DOUBLE_EQ(NiceStep(1), 1);
  EXPECT_DOUBLE_EQ(NiceStep(0.1), 0.1);
  EXPECT_DOUBLE_EQ(NiceStep(2.5), 5);
  EXPECT_DOUBLE_EQ(NiceStep(120), 200);
}

TEST(NiceTicksTest, ZeroToOne) {
  double step = 0;
  EXPECT_THAT(NiceTicks(0, 1, 5, &step), ElementsAre(0, 0.2, 0.4, 0.6, 0.8, 1.0));
  EXPECT_DOUBLE_EQ(step, 0.2);
}

TEST(NiceTicksTest, ValuesAreExactMultiplesNotAccumulated) {
  // 0.1 + 0.1 + 0.1 != 0.3 in doubles; the ticks are computed as k * step.
  const std::vector<double> ticks = NiceTicks(0, 1, 10);
  ASSERT_GE(ticks.size(), 4u);
  EXPECT_EQ(ticks[3], 0.3);
}

TEST(NiceTicksTest, ManyRangesGiveNiceStepsInsideTheRange) {
  const double ranges[][2] = {{0, 0.1}, {0.0125, 0.1}, {1e-6, 3e-4}, {0, 999},       {1195, 1225},
                              {-3, 7},  {0.98, 1.02},  {0, 1e7},     {5e-5, 5.1e-5}, {100, 100.5}};
  for (const auto& r : ranges) {
    for (int target : {3, 5, 8}) {
      double step = 0;
      const std::vector<double> ticks = NiceTicks(r[0], r[1], target, &step);
      SCOPED_TRACE(testing::Message() << r[0] << ".." << r[1] << " target " << target);
      EXPECT_TRUE(IsNice(step)) << step;
      EXPECT_GE(ticks.size(), 2u);
      EXPECT_LE(ticks.size(), static_cast<size_t>(2 * target + 1));
      for (size_t i = 0; i < ticks.size(); ++i) {
        EXPECT_GE(ticks[i], r[0] - 1e-12);
        EXPECT_LE(ticks[i], r[1] + 1e-12);
        if (i > 0) {
          EXPECT_NEAR(ticks[i] - ticks[i - 1], step, step * 1e-9);
        }
      }
    }
  }
}

TEST(FormatTickTest, JustEnoughDecimals) {
  EXPECT_EQ(FormatTick(0.05, 0.01), "0.05");
  EXPECT_EQ(FormatTick(0.1, 0.02), "0.10");
  EXPECT_EQ(FormatTick(250, 50), "250");
  EXPECT_EQ(FormatTick(0, 0.001), "0");
  EXPECT_EQ(FormatTick(-0.5, 0.5), "-0.5");
  EXPECT_EQ(FormatTick(2e-5, 1e-5), "2e-05");
  EXPECT_EQ(FormatTick(1.5e7, 5e6), "1.5e+07");
}

TEST(LinearAxisTest, PadsToTheEnclosingTicks) {
  const Axis axis = LinearAxis(0.0125, 0.1, 6, /*pad=*/true);
  EXPECT_LE(axis.lo, 0.0125);
  EXPECT_GE(axis.hi, 0.1);
  EXPECT_DOUBLE_EQ(axis.ticks.front(), axis.lo);
  EXPECT_DOUBLE_EQ(axis.ticks.back(), axis.hi);
  EXPECT_EQ(axis.labels.size(), axis.ticks.size());
  EXPECT_DOUBLE_EQ(axis.Fraction(axis.lo), 0);
  EXPECT_DOUBLE_EQ(axis.Fraction(axis.hi), 1);
}

TEST(LinearAxisTest, PrefersFewerTicksNearTheTarget) {
  // 0..0.1 with about 8 ticks: 0, 0.02, ..., 0.10 (6), not 0.01 steps (11).
  const Axis axis = LinearAxis(2.7e-6, 0.1, 8, /*pad=*/true);
  EXPECT_THAT(axis.labels, ElementsAre("0", "0.02", "0.04", "0.06", "0.08", "0.10"));
}

TEST(LinearAxisTest, FlatRangeIsWidened) {
  const Axis axis = LinearAxis(0.1, 0.1, 5, true);
  EXPECT_LT(axis.lo, 0.1);
  EXPECT_GT(axis.hi, 0.1);
  const Axis zero = LinearAxis(0, 0, 5, true);
  EXPECT_LT(zero.lo, 0);
  EXPECT_GT(zero.hi, 0);
}

TEST(LinearAxisTest, IntegerAxisHasWholeSteps) {
  const Axis axis = LinearAxis(0, 9, 12, /*pad=*/false, /*integer=*/true);
  EXPECT_DOUBLE_EQ(axis.lo, 0);
  EXPECT_DOUBLE_EQ(axis.hi, 9);
  for (double t : axis.ticks) EXPECT_EQ(t, std::floor(t));
  for (const auto& label : axis.labels) EXPECT_THAT(label, Not(HasSubstr(".")));
}

TEST(LogAxisTest, PowersOfTenOverManyDecades) {
  const Axis axis = LogAxis(1e-5, 0.1, 6);
  EXPECT_TRUE(axis.log);
  EXPECT_THAT(axis.labels, ElementsAre("1e-05", "0.0001", "0.001", "0.01", "0.1"));
  EXPECT_DOUBLE_EQ(axis.Fraction(1e-5), 0);
  EXPECT_DOUBLE_EQ(axis.Fraction(0.1), 1);
  EXPECT_NEAR(axis.Fraction(1e-3), 0.5, 1e-12);
  EXPECT_TRUE(std::isnan(axis.Fraction(0)));
  EXPECT_TRUE(std::isnan(axis.Fraction(-1)));
}

TEST(LogAxisTest, OneTwoFiveWithinADecade) {
  const Axis axis = LogAxis(0.021, 0.09, 5);
  EXPECT_THAT(axis.labels, ElementsAre("0.02", "0.05", "0.1"));
  EXPECT_LE(axis.lo, 0.021);
  EXPECT_GE(axis.hi, 0.09);
}

TEST(LogAxisTest, StrideOverVeryManyDecades) {
  const Axis axis = LogAxis(1e-12, 1, 4);
  EXPECT_LE(axis.ticks.size(), 8u);
  EXPECT_LE(axis.lo, 1e-12);
  EXPECT_GE(axis.hi, 1);
}

// --- Downsampling --------------------------------------------------------------------------------

TEST(DownsampleTest, ShortRangesAreKeptExactly) {
  std::vector<PlotPoint> points;
  for (int i = 0; i < 100; ++i) points.push_back({static_cast<double>(i), std::sin(i)});
  EXPECT_EQ(DownsampleM4(points, 0, 99, 4096), points);
}

TEST(DownsampleTest, KeepsSpikesDipsAndEndsOfAMillionPoints) {
  std::vector<PlotPoint> points;
  for (int i = 0; i < 1'000'000; ++i) {
    double y = 0.5 + 0.1 * std::sin(i * 1e-4);
    if (i == 123'457) y = 100;  // One-step spike.
    if (i == 765'433) y = -50;  // One-step dip.
    points.push_back({static_cast<double>(i), y});
  }
  const int buckets = 800;
  const std::vector<PlotPoint> out = DownsampleM4(points, 0, 999'999, buckets);
  EXPECT_LE(out.size(), 4u * buckets);
  EXPECT_GE(out.size(), static_cast<size_t>(buckets));
  EXPECT_EQ(out.front(), points.front());
  EXPECT_EQ(out.back(), points.back());
  bool spike = false;
  bool dip = false;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == PlotPoint{123'457, 100}) spike = true;
    if (out[i] == PlotPoint{765'433, -50}) dip = true;
    if (i > 0) {
      EXPECT_LT(out[i - 1].x, out[i].x);
    }
  }
  EXPECT_TRUE(spike);
  EXPECT_TRUE(dip);
}

TEST(DownsampleTest, KeepsEveryRestartOfASawtooth) {
  // Warm restarts every 1000 steps over 200k steps, 300 buckets: every peak and trough survives.
  M4Reducer reducer(0, 199'999, 300);
  for (int i = 0; i < 200'000; ++i) reducer.Add(i, 1.0 - (i % 1000) / 1000.0);
  const std::vector<PlotPoint> out = reducer.Points();
  std::set<double> peaks;
  std::set<double> troughs;
  for (const PlotPoint& p : out) {
    if (p.y == 1.0) peaks.insert(p.x);
    if (p.y == 1.0 - 999 / 1000.0) troughs.insert(p.x);
  }
  EXPECT_EQ(peaks.size(), 200u);
  EXPECT_EQ(troughs.size(), 200u);
}

TEST(DownsampleTest, DropsNaN) {
  const std::vector<PlotPoint> points = {
      {0, 1}, {1, std::numeric_limits<double>::quiet_NaN()}, {2, 3}};
  EXPECT_THAT(DownsampleM4(points, 0, 2, 100), ElementsAre(PlotPoint{0, 1}, PlotPoint{2, 3}));
}

// --- Marks from specs ----------------------------------------------------------------------------

TEST(ScheduleMarksTest, SequentialWarmupCosineMarksItsMilestone) {
  const auto marks = ScheduleMarks(
      ParseSchedule(
          R"({"sequential":{"schedules":[{"linear":{"start_factor":0.1,"total_iters":5}},)"
          R"({"cosine_annealing":{"t_max":95}}],"milestones":[5]}})"),
      0, 100);
  ASSERT_THAT(Steps(marks), ElementsAre(5));
  EXPECT_EQ(marks[0].kind, MarkKind::kMilestone);
  EXPECT_EQ(marks[0].label, "milestone");
}

TEST(ScheduleMarksTest, SequentialShiftsAndClipsItsChildren) {
  // constant ends at 3 (inside its segment); step decays at 20 + 10k; milestone at 20.
  const auto marks = ScheduleMarks(
      ParseSchedule(R"({"sequential":{"schedules":[{"constant":{"factor":0.5,"total_iters":3}},)"
                    R"({"step":{"step_size":10}}],"milestones":[20]}})"),
      0, 60);
  EXPECT_THAT(Steps(marks), ElementsAre(3, 20, 30, 40, 50));
  EXPECT_EQ(marks[0].kind, MarkKind::kPhase);
  EXPECT_EQ(marks[1].kind, MarkKind::kMilestone);
  EXPECT_EQ(marks[2].kind, MarkKind::kDecay);
  // A child's marks past its segment are left out: linear's end at 50 is after the milestone 10.
  EXPECT_THAT(Steps(ScheduleMarks(
                  ParseSchedule(R"({"sequential":{"schedules":[{"linear":{"total_iters":50}},)"
                                R"({"exponential":{"gamma":0.9}}],"milestones":[10]}})"),
                  0, 100)),
              ElementsAre(10));
}

TEST(ScheduleMarksTest, MultiStepMilestonesOnceEach) {
  const auto marks = ScheduleMarks(
      ParseSchedule(R"({"multi_step":{"milestones":[30,80,80],"gamma":0.1}})"), 0, 100);
  EXPECT_THAT(Steps(marks), ElementsAre(30, 80));
  EXPECT_EQ(marks[0].kind, MarkKind::kMilestone);
}

TEST(ScheduleMarksTest, StepSizeMultiplesInTheRange) {
  EXPECT_THAT(Steps(ScheduleMarks(ParseSchedule(R"({"step":{"step_size":10}})"), 0, 35)),
              ElementsAre(10, 20, 30));
  EXPECT_THAT(Steps(ScheduleMarks(ParseSchedule(R"({"step":{"step_size":10}})"), 25, 45)),
              ElementsAre(30, 40));
}

TEST(ScheduleMarksTest, WarmRestarts) {
  const auto cawr = ParseSchedule(R"({"cosine_annealing_warm_restarts":{"t_0":10,"t_mult":2}})");
  const auto marks = ScheduleMarks(cawr, 0, 150);
  EXPECT_THAT(Steps(marks), ElementsAre(10, 30, 70));
  for (const Mark& m : marks) EXPECT_EQ(m.kind, MarkKind::kRestart);
  EXPECT_THAT(Steps(ScheduleMarks(cawr, 25, 75)), ElementsAre(30, 70));
  EXPECT_THAT(Steps(ScheduleMarks(ParseSchedule(R"({"cosine_annealing_warm_restarts":{"t_0":10}})"),
                                  0, 35)),
              ElementsAre(10, 20, 30));
  // t_0=10, t_mult=3: 10, 40, 130, 400, 1210 (where PyTorch's step(epoch) misplaces one).
  EXPECT_THAT(
      Steps(ScheduleMarks(
          ParseSchedule(R"({"cosine_annealing_warm_restarts":{"t_0":10,"t_mult":3}})"), 0, 1225)),
      ElementsAre(10, 40, 130, 400, 1210));
}

TEST(ScheduleMarksTest, OneCyclePhaseEnds) {
  // pct_start * N - 1 = 29.000000000000004 in doubles: snapped to 29.
  const auto marks =
      ScheduleMarks(ParseSchedule(R"({"one_cycle":{"max_lr":[1.0],"total_steps":100}})"), 0, 100);
  EXPECT_THAT(Steps(marks), ElementsAre(29, 99));
  EXPECT_EQ(marks[0].label, "peak");
  EXPECT_EQ(marks[1].label, "end");
  EXPECT_THAT(
      Steps(ScheduleMarks(ParseSchedule(R"({"one_cycle":{"total_steps":1000,"pct_start":0.25,)"
                                        R"("three_phase":true}})"),
                          0, 1000)),
      ElementsAre(249, 498, 999));
  EXPECT_THAT(
      Steps(ScheduleMarks(
          ParseSchedule(R"({"one_cycle":{"epochs":10,"steps_per_epoch":10,"pct_start":0.5}})"), 0,
          100)),
      ElementsAre(49, 99));
}

TEST(ScheduleMarksTest, CyclicHalfCycles) {
  const auto marks = ScheduleMarks(
      ParseSchedule(R"({"cyclic":{"base_lr":[0.01],"max_lr":[0.1],"step_size_up":5}})"), 0, 30);
  EXPECT_THAT(Steps(marks), ElementsAre(5, 10, 15, 20, 25));
  EXPECT_EQ(marks[0].label, "peak");
  EXPECT_EQ(marks[1].label, "trough");
  EXPECT_THAT(Steps(ScheduleMarks(ParseSchedule(R"({"cyclic":{"max_lr":[0.1],"step_size_up":2,)"
                                                R"("step_size_down":3}})"),
                                  0, 12)),
              ElementsAre(2, 5, 7, 10));
}

TEST(ScheduleMarksTest, ChainedUnionAndKindsWithoutMarks) {
  EXPECT_THAT(Steps(ScheduleMarks(
                  ParseSchedule(R"({"chained":{"schedules":[{"constant":{"total_iters":4}},)"
                                R"({"multi_step":{"milestones":[7]}}]}})"),
                  0, 10)),
              ElementsAre(4, 7));
  EXPECT_THAT(ScheduleMarks(ParseSchedule(R"({"exponential":{"gamma":0.9}})"), 0, 100),
              testing::IsEmpty());
  EXPECT_THAT(ScheduleMarks(ParseSchedule(R"({"lambda":{"expression":"0.5"}})"), 0, 100),
              testing::IsEmpty());
  EXPECT_THAT(Steps(ScheduleMarks(ParseSchedule(R"({"cosine_annealing":{"t_max":20}})"), 0, 70)),
              ElementsAre(20, 40, 60));
}

TEST(ScheduleMarksTest, InvalidParametersGiveNoMarksAndNoHang) {
  EXPECT_THAT(ScheduleMarks(ParseSchedule(R"({"step":{"step_size":0}})"), 0, 100),
              testing::IsEmpty());
  EXPECT_THAT(
      ScheduleMarks(ParseSchedule(R"({"cosine_annealing_warm_restarts":{"t_0":-1}})"), 0, 100),
      testing::IsEmpty());
  EXPECT_THAT(ScheduleMarks(ParseSchedule(R"({"cyclic":{"step_size_up":-2}})"), 0, 100),
              testing::IsEmpty());
}

TEST(ScheduleMarksTest, LongPeriodicRangesAreCapped) {
  EXPECT_EQ(ScheduleMarks(ParseSchedule(R"({"step":{"step_size":1}})"), 0, 1e6).size(),
            static_cast<size_t>(kMaxMarks));
}

TEST(MarksTest, EventMarksHookMergesWithSpecMarks) {
  const std::vector<JobEvent> events = {{5, MarkKind::kUpdate, "v2"},
                                        {42, MarkKind::kPlateauReduction, ""},
                                        {500, MarkKind::kUpdate, "v3"}};
  const auto event_marks = EventMarks(events, 0, 100);
  EXPECT_THAT(Steps(event_marks), ElementsAre(5, 42));
  EXPECT_EQ(event_marks[1].label, "plateau");
  const auto merged = MergeMarks({{5, MarkKind::kMilestone, "milestone"}}, event_marks);
  ASSERT_THAT(Steps(merged), ElementsAre(5, 42));
  EXPECT_EQ(merged[0].kind, MarkKind::kUpdate);  // The job's event wins at the same step.
  EXPECT_EQ(merged[1].kind, MarkKind::kPlateauReduction);
}

// An update on a step where the schedule has a mark of its own (a decay of step_size 10) keeps its
// update mark.
TEST(MarksTest, AnUpdateOnADecayStepKeepsItsMark) {
  const std::vector<JobEvent> events = {{20, MarkKind::kUpdate, ""}};
  const auto merged =
      MergeMarks(ScheduleMarks(ParseSchedule(R"({"step":{"step_size":10}})"), 0, 40),
                 EventMarks(events, 0, 40));
  ASSERT_THAT(Steps(merged), ElementsAre(10, 20, 30));
  EXPECT_EQ(merged[1].kind, MarkKind::kUpdate);
  EXPECT_EQ(merged[1].label, "update");
}

v1::Hyperparameter HyperparameterFromJson(const std::string& json) {
  v1::Hyperparameter hp;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &hp);
  EXPECT_TRUE(status.ok()) << json << ": " << status.ToString();
  return hp;
}

// The decays of step_size 10 end at the update from step 35 (a cosine with t_max 20 on local
// time); the cosine's t_max marks start there, shifted by 35, and end at the pin from 80.
TEST(MarksTest, MarksOfAReplacedScheduleEndWhereItsSegmentEnds) {
  const v1::Hyperparameter hp = HyperparameterFromJson(R"({"name":"lr","base_values":[0.1],
      "schedule":{"step":{"step_size":10}},
      "segments":[{"effective_step":35,"schedule":{"cosine_annealing":{"t_max":20}}},
                  {"effective_step":80,"pin":{"values":[0.01]}}]})");
  EXPECT_THAT(Steps(HyperparameterMarks(hp, 0, 200)), ElementsAre(10, 20, 30, 55, 75));
}

TEST(MarksTest, GlobalTimeScaleAndALaterSegmentThatReplacesAnEarlierOne) {
  // Global time: the step decays of the new schedule are at multiples of 25 from step 30 on. The
  // scale from 60 keeps them (it scales what was there). The segment made last, from step 20,
  // replaces both from step 20 on with a schedule without marks.
  v1::Hyperparameter hp = HyperparameterFromJson(R"({"name":"lr","base_values":[0.1],
      "schedule":{"step":{"step_size":10}},
      "segments":[{"effective_step":30,"time":"SEGMENT_TIME_GLOBAL",
                   "schedule":{"step":{"step_size":25}}},
                  {"effective_step":60,"scale":0.5}]})");
  EXPECT_THAT(Steps(HyperparameterMarks(hp, 0, 120)), ElementsAre(10, 20, 50, 75, 100));
  v1::Segment* late = hp.add_segments();
  late->set_effective_step(20);
  late->mutable_schedule()->mutable_exponential()->set_gamma(0.9);
  EXPECT_THAT(Steps(HyperparameterMarks(hp, 0, 120)), ElementsAre(10));
}

// However dense the schedule's marks, a job's updates and plateau reductions are drawn.
TEST(MarksTest, DenseMarksNeverHideUpdatesOrReductions) {
  std::vector<JobEvent> events;
  for (int i = 0; i < 400; ++i) events.push_back({i * 2 + 1, MarkKind::kUpdate, ""});
  events.push_back({500, MarkKind::kPlateauReduction, ""});
  const auto marks =
      MergeMarks(ScheduleMarks(ParseSchedule(R"({"step":{"step_size":1}})"), 0, 1000),
                 EventMarks(events, 0, 1000));
  std::vector<HiddenMarks> hidden;
  const auto drawn = DrawableMarks(marks, 0, 999, 800, 6, &hidden);
  int updates = 0;
  int reductions = 0;
  for (const Mark& m : drawn) {
    updates += m.kind == MarkKind::kUpdate;
    reductions += m.kind == MarkKind::kPlateauReduction;
  }
  EXPECT_EQ(updates, 400);
  EXPECT_EQ(reductions, 1);
  ASSERT_EQ(hidden.size(), 1u);
  EXPECT_EQ(hidden[0].kind, MarkKind::kDecay);
}

TEST(MarksTest, DrawableMarksHidesKindsTooDenseToDraw) {
  std::vector<Mark> marks = ScheduleMarks(ParseSchedule(R"({"step":{"step_size":1}})"), 0, 1000);
  marks = MergeMarks(marks, std::vector<Mark>{{500.5, MarkKind::kMilestone, "milestone"}});
  std::vector<HiddenMarks> hidden;
  const auto drawn = DrawableMarks(marks, 0, 999, 800, 6, &hidden);
  EXPECT_THAT(Steps(drawn), ElementsAre(500.5));
  ASSERT_EQ(hidden.size(), 1u);
  EXPECT_EQ(hidden[0].kind, MarkKind::kDecay);
  EXPECT_EQ(hidden[0].count, 999);
}

TEST(ScheduleTitleTest, NamesKindsAndChildren) {
  EXPECT_EQ(ScheduleTitle(ParseSchedule(R"({"step":{"step_size":3}})")), "step");
  EXPECT_EQ(ScheduleTitle(ParseSchedule(
                R"({"sequential":{"schedules":[{"linear":{}},{"cosine_annealing":{"t_max":9}}],)"
                R"("milestones":[5]}})")),
            "sequential(linear, cosine_annealing)");
}

// --- The SVG -------------------------------------------------------------------------------------

// A small XML well-formedness check: a prolog, then elements that nest and close properly, quoted
// attributes, and text without a raw '<' or a stray '&'. Returns "" or what is wrong.
std::string CheckXml(const std::string& xml) {
  size_t i = 0;
  std::vector<std::string> stack;
  int roots = 0;
  auto check_text = [](absl::string_view text) -> std::string {
    for (size_t k = 0; k < text.size(); ++k) {
      if (text[k] == '&') {
        const size_t semi = text.find(';', k);
        if (semi == absl::string_view::npos) return "stray &";
        const absl::string_view entity = text.substr(k + 1, semi - k - 1);
        if (entity != "amp" && entity != "lt" && entity != "gt" && entity != "quot" &&
            entity != "apos" && !absl::StartsWith(entity, "#")) {
          return absl::StrCat("unknown entity &", entity, ";");
        }
      }
    }
    return "";
  };
  while (i < xml.size()) {
    const size_t lt = xml.find('<', i);
    const absl::string_view text(xml.data() + i, (lt == std::string::npos ? xml.size() : lt) - i);
    if (const std::string e = check_text(text); !e.empty()) return e;
    if (stack.empty() && !absl::StripAsciiWhitespace(text).empty()) return "text outside the root";
    if (lt == std::string::npos) break;
    if (xml.compare(lt, 5, "<?xml") == 0) {
      if (lt != 0) return "the XML declaration is not first";
      const size_t end = xml.find("?>", lt);
      if (end == std::string::npos) return "unterminated declaration";
      i = end + 2;
      continue;
    }
    if (xml.compare(lt, 4, "<!--") == 0) {
      const size_t end = xml.find("-->", lt);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    const size_t gt = xml.find('>', lt);
    if (gt == std::string::npos) return "unterminated tag";
    std::string tag = xml.substr(lt + 1, gt - lt - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside a tag";
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) {
        return absl::StrCat("</", name, "> closes <", stack.empty() ? "" : stack.back(), ">");
      }
      stack.pop_back();
    } else {
      const bool self_closing = !tag.empty() && tag.back() == '/';
      if (self_closing) tag.pop_back();
      const size_t space = tag.find_first_of(" \n\t");
      const std::string name = tag.substr(0, space);
      if (name.empty()) return "empty tag name";
      // Attributes: name="value" pairs.
      std::string rest = space == std::string::npos ? "" : tag.substr(space);
      size_t k = 0;
      while (k < rest.size()) {
        if (std::isspace(static_cast<unsigned char>(rest[k]))) {
          ++k;
          continue;
        }
        const size_t eq = rest.find('=', k);
        if (eq == std::string::npos || eq + 1 >= rest.size() || rest[eq + 1] != '"') {
          return absl::StrCat("unquoted attribute in <", name, ">");
        }
        const size_t close = rest.find('"', eq + 2);
        if (close == std::string::npos) return "unterminated attribute";
        if (const std::string e = check_text(rest.substr(eq + 2, close - eq - 2)); !e.empty()) {
          return e;
        }
        k = close + 1;
      }
      if (stack.empty()) ++roots;
      if (!self_closing) stack.push_back(name);
    }
    i = gt + 1;
  }
  if (!stack.empty()) return absl::StrCat("<", stack.back(), "> is not closed");
  if (roots != 1) return absl::StrCat(roots, " root elements");
  return "";
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// The texts of the <text> elements whose opening tag contains `marker` inside group `group_class`.
std::vector<std::string> TextsOfGroup(const std::string& svg, const std::string& group_class) {
  std::vector<std::string> texts;
  size_t at = 0;
  while ((at = svg.find(absl::StrCat("<g class=\"", group_class, "\""), at)) != std::string::npos) {
    const size_t end = svg.find("</g>", at);
    for (size_t t = svg.find("<text", at); t < end; t = svg.find("<text", t + 1)) {
      const size_t open_end = svg.find('>', t);
      texts.push_back(svg.substr(open_end + 1, svg.find("</text>", t) - open_end - 1));
    }
    at = end;
  }
  return texts;
}

PlotModel JobLikeModel() {
  PlotModel model;
  model.title = "jobs/demo";
  model.subtitle = "steps 0:100, version 1";
  model.x_min = 0;
  model.x_max = 99;
  PlotPanel panel;
  panel.y_label = "lr";
  for (int g = 0; g < 2; ++g) {
    PlotSeries series{absl::StrCat("lr group ", g), "lr", g, {}};
    for (int i = 0; i < 100; ++i) {
      series.points.push_back(
          {static_cast<double>(i), (g == 0 ? 0.1 : 0.01) * std::pow(0.5, i / 10)});
    }
    panel.series.push_back(series);
  }
  panel.marks = ScheduleMarks(ParseSchedule(R"({"step":{"step_size":10}})"), 0, 100);
  model.panels.push_back(panel);
  return model;
}

TEST(SvgTest, IsWellFormedWithTitleAxesLegendAndCurves) {
  const PlotModel model = JobLikeModel();
  const std::string svg = RenderSvg(model, SvgOptions{});
  EXPECT_EQ(CheckXml(svg), "") << svg;
  EXPECT_THAT(svg, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" "
                             "height=\"560\" viewBox=\"0 0 900 560\""));
  EXPECT_THAT(svg, HasSubstr("<title>jobs/demo</title>"));
  EXPECT_THAT(svg, HasSubstr(">jobs/demo</text>"));
  EXPECT_THAT(svg, HasSubstr("steps 0:100, version 1</text>"));
  EXPECT_THAT(svg, HasSubstr("class=\"x-label\""));
  EXPECT_THAT(svg, HasSubstr(">step</text>"));
  EXPECT_THAT(svg, HasSubstr(">lr</text>"));
  const std::vector<std::string> legend = TextsOfGroup(svg, "legend");
  EXPECT_THAT(legend, ElementsAre("lr group 0", "lr group 1", "decay"));
  // One polyline per series, each in its own colour.
  EXPECT_EQ(Count(svg, "<polyline class=\"series\""), 2);
  EXPECT_THAT(svg, HasSubstr(absl::StrCat("stroke=\"", SeriesColor(0), "\" points=")));
  EXPECT_THAT(svg, HasSubstr(absl::StrCat("stroke=\"", SeriesColor(1), "\" points=")));
  EXPECT_NE(SeriesColor(0), SeriesColor(1));
  // Nine decay marks at 10..90, dashed, labelled.
  EXPECT_EQ(Count(svg, "<line class=\"mark mark-decay\""), 9);
  EXPECT_THAT(svg, HasSubstr("stroke-dasharray="));
  EXPECT_GE(Count(svg, "class=\"mark-label\""), 1);
}

TEST(SvgTest, TickLabelsAreNiceEvenlySpacedNumbers) {
  const std::string svg = RenderSvg(JobLikeModel(), SvgOptions{});
  const std::vector<std::string> labels = TextsOfGroup(svg, "tick-label");
  // y labels first (from 0 up), then x labels.
  std::vector<double> values;
  for (const auto& l : labels) {
    double v = 0;
    ASSERT_TRUE(absl::SimpleAtod(l, &v)) << l;
    values.push_back(v);
  }
  std::vector<double> y;
  std::vector<double> x;
  bool in_x = false;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0 && values[i] < values[i - 1]) in_x = true;  // x labels start over at 0.
    (in_x ? x : y).push_back(values[i]);
  }
  ASSERT_GE(y.size(), 3u);
  ASSERT_GE(x.size(), 3u);
  EXPECT_LE(y.front(), 0.1 * std::pow(0.5, 9));
  EXPECT_GE(y.back(), 0.1);
  for (const auto* ticks : {&y, &x}) {
    const double step = (*ticks)[1] - (*ticks)[0];
    EXPECT_TRUE(IsNice(step)) << step;
    for (size_t i = 1; i < ticks->size(); ++i) {
      EXPECT_NEAR((*ticks)[i] - (*ticks)[i - 1], step, step * 1e-6);
    }
  }
  EXPECT_EQ(x.front(), 0);
}

TEST(SvgTest, EscapesText) {
  PlotModel model = JobLikeModel();
  model.title = "a<b & \"c\"";
  model.panels[0].series[0].label = "lr <group> 0 & 'x'";
  const std::string svg = RenderSvg(model, SvgOptions{});
  EXPECT_EQ(CheckXml(svg), "");
  EXPECT_THAT(svg, HasSubstr("a&lt;b &amp; &quot;c&quot;"));
  EXPECT_THAT(svg, HasSubstr("lr &lt;group&gt; 0 &amp; &apos;x&apos;"));
}

TEST(SvgTest, LongRangeIsDownsampledToPixelsKeepingTheSpike) {
  PlotModel model;
  model.title = "spike";
  model.x_min = 0;
  model.x_max = 999'999;
  PlotPanel panel;
  PlotSeries series{"value", "", 0, {}};
  for (int i = 0; i < 1'000'000; ++i)
    series.points.push_back({double(i), i == 500'001 ? 1.0 : 0.5});
  panel.series.push_back(series);
  model.panels.push_back(panel);
  const std::string svg = RenderSvg(model, SvgOptions{});
  EXPECT_EQ(CheckXml(svg), "");
  const size_t at = svg.find("points=\"");
  ASSERT_NE(at, std::string::npos);
  const std::string points = svg.substr(at + 8, svg.find('"', at + 8) - at - 8);
  const std::vector<std::string> pairs = absl::StrSplit(points, ' ');
  EXPECT_LE(pairs.size(), 4u * 900);
  // The spike reaches the top of the value axis: the smallest y coordinate is the axis' top.
  double min_y = 1e9;
  double max_y = -1e9;
  for (const auto& pair : pairs) {
    double y = 0;
    ASSERT_TRUE(absl::SimpleAtod(pair.substr(pair.find(',') + 1), &y));
    min_y = std::min(min_y, y);
    max_y = std::max(max_y, y);
  }
  EXPECT_GT(max_y - min_y, 100);  // The 0.5 -> 1.0 spike spans a good part of the plot's height.
}

TEST(SvgTest, LogScaleBreaksTheLineAtNonPositiveValues) {
  PlotModel model = JobLikeModel();
  model.log_y = true;
  model.panels[0].series.resize(1);
  model.panels[0].series[0].points[50].y = 0;  // Not drawable on a log axis.
  const std::string svg = RenderSvg(model, SvgOptions{});
  EXPECT_EQ(CheckXml(svg), "");
  EXPECT_EQ(Count(svg, "<polyline class=\"series\""), 2);
  EXPECT_THAT(svg, HasSubstr(">lr (log)</text>"));
}

TEST(SvgTest, OnePanelPerHyperparameterGrowsTheFigure) {
  PlotModel model = JobLikeModel();
  PlotPanel momentum;
  momentum.y_label = "momentum";
  momentum.series.push_back({"momentum group 0", "momentum", 0, {{0, 0.9}, {99, 0.95}}});
  model.panels.push_back(momentum);
  model.panels.push_back(momentum);
  const std::string svg = RenderSvg(model, SvgOptions{});
  EXPECT_EQ(CheckXml(svg), "");
  EXPECT_EQ(Count(svg, "<g class=\"panel\""), 3);
  EXPECT_EQ(Count(svg, "class=\"y-label\""), 3);
  EXPECT_THAT(svg, HasSubstr(absl::StrCat("height=\"", 58 + 3 * kMinPanelHeight, "\"")));
  // Colours continue across panels.
  EXPECT_THAT(svg, HasSubstr(absl::StrCat("stroke=\"", SeriesColor(2), "\" points=")));
}

TEST(SvgTest, EmptyAndSinglePointPlotsStillRender) {
  PlotModel model;
  model.title = "empty";
  model.panels.push_back(PlotPanel{"value", {}, {}});
  EXPECT_EQ(CheckXml(RenderSvg(model, SvgOptions{})), "");
  model.panels[0].series.push_back({"group 0", "", 0, {{7, 0.5}}});
  model.x_min = model.x_max = 7;
  const std::string svg = RenderSvg(model, SvgOptions{});
  EXPECT_EQ(CheckXml(svg), "");
  EXPECT_THAT(svg, HasSubstr("<circle class=\"series\""));
}

TEST(XmlCheckTest, CatchesMalformedDocuments) {
  EXPECT_NE(CheckXml("<svg><g></svg>"), "");
  EXPECT_NE(CheckXml("<svg a=b></svg>"), "");
  EXPECT_NE(CheckXml("<svg>a & b</svg>"), "");
  EXPECT_NE(CheckXml("<svg/><svg/>"), "");
  EXPECT_EQ(CheckXml("<?xml version=\"1.0\"?>\n<svg a=\"1\"><g/><text>&lt;</text></svg>\n"), "");
}

// --- The terminal --------------------------------------------------------------------------------

// Display columns of a line without ANSI escapes: one per code point (braille, box drawing and
// ASCII are all one column wide).
int Columns(absl::string_view line) {
  int n = 0;
  for (const char c : line) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

TEST(TerminalTest, CanvasAndAxisLinesHaveTheRequestedWidth) {
  for (int width : {40, 80, 123}) {
    for (int height : {3, 10, 20}) {
      const std::string text = RenderTerminal(JobLikeModel(), {width, height, false});
      const std::vector<std::string> lines = absl::StrSplit(text, '\n');
      SCOPED_TRACE(testing::Message() << width << "x" << height << "\n" << text);
      ASSERT_GT(lines.size(), static_cast<size_t>(height + 4));
      EXPECT_EQ(lines[0], "jobs/demo  steps 0:100, version 1");
      EXPECT_EQ(lines[1], "lr");
      // height canvas rows, then the x axis and its labels.
      for (int r = 2; r < 2 + height + 2; ++r) EXPECT_EQ(Columns(lines[r]), width) << r;
      EXPECT_TRUE(absl::StrContains(lines[2 + height], "└"));
      EXPECT_TRUE(absl::StrContains(lines[2 + height], "┬"));
      EXPECT_TRUE(absl::StrContains(text, "step\n"));
    }
  }
}

TEST(TerminalTest, HasYLabelsBrailleCurvesLegendAndMarks) {
  const std::string text = RenderTerminal(JobLikeModel(), {80, 16, false});
  EXPECT_THAT(text, HasSubstr("0.10 ┤"));
  EXPECT_THAT(text, HasSubstr("   0 ┤"));
  EXPECT_THAT(text, HasSubstr("━━ lr group 0  min 0.000195313  max 0.1"));
  EXPECT_THAT(text, HasSubstr("━━ lr group 1"));
  EXPECT_THAT(text, HasSubstr("decay at 10, 20, 30, 40, 50, 60, 70, 80 ... (9 in all)"));
  bool braille = false;
  for (size_t i = 0; i + 2 < text.size(); ++i) {
    // U+2801..U+28FF in UTF-8: E2 A0..A3 xx.
    if (static_cast<unsigned char>(text[i]) == 0xE2 &&
        (static_cast<unsigned char>(text[i + 1]) & 0xFC) == 0xA0) {
      braille = true;
    }
  }
  EXPECT_TRUE(braille);
  EXPECT_THAT(text, Not(HasSubstr("\x1b[")));
  EXPECT_THAT(RenderTerminal(JobLikeModel(), {80, 16, true}), HasSubstr("\x1b[34m"));
}

// A model whose values from step 60 on wait for metric reports.
PlotModel ProvisionalModel() {
  PlotModel model = JobLikeModel();
  for (PlotSeries& series : model.panels[0].series) series.provisional_from = 60;
  return model;
}

TEST(TerminalTest, ProvisionalValuesAreDottedAndNamed) {
  const std::string final_text = RenderTerminal(JobLikeModel(), {80, 16, false});
  const std::string text = RenderTerminal(ProvisionalModel(), {80, 16, false});
  EXPECT_THAT(final_text, Not(HasSubstr("provisional")));
  EXPECT_THAT(text, HasSubstr("⠁⠄ provisional from step 60 (dotted: waits for metric reports)"));
  // The same curve with fewer dots from step 60 on: fewer braille bits in all.
  auto dots = [](const std::string& t) {
    int n = 0;
    for (size_t i = 0; i + 2 < t.size(); ++i) {
      if (static_cast<unsigned char>(t[i]) == 0xE2 &&
          (static_cast<unsigned char>(t[i + 1]) & 0xFC) == 0xA0) {
        const int bits = ((static_cast<unsigned char>(t[i + 1]) & 0x03) << 6) |
                         (static_cast<unsigned char>(t[i + 2]) & 0x3F);
        n += __builtin_popcount(bits);
      }
    }
    return n;
  };
  EXPECT_LT(dots(text), dots(final_text));
}

TEST(SvgTest, ProvisionalValuesAreDashedLighterAndInTheLegend) {
  const std::string svg = RenderSvg(ProvisionalModel(), SvgOptions{});
  EXPECT_EQ(CheckXml(svg), "") << svg;
  EXPECT_THAT(svg, HasSubstr("<polyline class=\"series provisional\" data-series=\"0\""));
  EXPECT_THAT(svg, HasSubstr("stroke-dasharray=\"5 4\" stroke-opacity=\"0.55\""));
  EXPECT_THAT(svg, HasSubstr(">provisional from step 60 (waits for metric reports)</text>"));
  EXPECT_THAT(svg, HasSubstr("<title>lr group 1 (provisional)</title>"));
  const std::string final_svg = RenderSvg(JobLikeModel(), SvgOptions{});
  EXPECT_THAT(final_svg, Not(HasSubstr("provisional")));
  EXPECT_THAT(PlotToJson(ProvisionalModel()), HasSubstr("\"group\":0,\"provisional_from\":60,"));
}

TEST(TerminalTest, OnePanelPerHyperparameter) {
  PlotModel model = JobLikeModel();
  model.panels.push_back(
      PlotPanel{"momentum", {{"momentum group 0", "momentum", 0, {{0, 0.9}}}}, {}});
  const std::string text = RenderTerminal(model, {60, 8, false});
  EXPECT_THAT(text, HasSubstr("\nlr\n"));
  EXPECT_THAT(text, HasSubstr("\nmomentum\n"));
  EXPECT_EQ(Count(text, "└"), 2);
}

// --- JSON ----------------------------------------------------------------------------------------

TEST(JsonTest, NumbersRoundTripAndNonFiniteIsNull) {
  EXPECT_EQ(JsonNumber(0.1), "0.1");
  EXPECT_EQ(JsonNumber(3), "3");
  EXPECT_EQ(JsonNumber(1e-5), "1e-05");
  EXPECT_EQ(JsonNumber(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(JsonNumber(std::numeric_limits<double>::infinity()), "null");
  const double v = 0.1 * 0.9 * 0.9 * 0.9;
  double back = 0;
  ASSERT_TRUE(absl::SimpleAtod(JsonNumber(v), &back));
  EXPECT_EQ(back, v);
}

TEST(JsonTest, StringsAndErrors) {
  EXPECT_EQ(JsonString("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(StatusToJson(absl::NotFoundError("job \"x\" not found")),
            "{\"code\":\"NOT_FOUND\",\"message\":\"job \\\"x\\\" not found\"}");
}

TEST(JsonTest, PlotToJsonHasDataAndMarks) {
  const std::string json = PlotToJson(JobLikeModel());
  EXPECT_THAT(json, HasSubstr("\"title\":\"jobs/demo\""));
  EXPECT_THAT(json, HasSubstr("\"y_label\":\"lr\""));
  EXPECT_THAT(json, HasSubstr("\"label\":\"lr group 1\",\"hyperparameter\":\"lr\",\"group\":1"));
  EXPECT_THAT(json, HasSubstr("\"points\":[[0,0.1],[1,0.1],"));
  EXPECT_THAT(json, HasSubstr("{\"step\":10,\"kind\":\"decay\",\"label\":\"decay\"}"));
  EXPECT_EQ(json.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace hpsched::cli
