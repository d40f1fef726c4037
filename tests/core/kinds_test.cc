// Validation of every kind (errors name the field path and the rule) and the conventions the golden
// files cannot show: behaviour past the end, exact restart boundaries, the far end of the step
// range.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/kind_registry.h"

namespace hpsched::core {
namespace {

using ::testing::HasSubstr;

ScheduleSpec Spec(std::string kind, std::map<std::string, ParamValue, std::less<>> params = {},
                  std::vector<ScheduleSpec> children = {}) {
  return ScheduleSpec{std::move(kind), std::move(params), std::move(children)};
}

absl::Status Compile(const ScheduleSpec& spec, std::vector<double> bases = {0.1}) {
  return CompileStandalone(spec, bases, "schedule").status();
}

std::vector<double> Values(const ScheduleSpec& spec, int64_t start, size_t count,
                           double base = 1.0) {
  const std::vector<double> bases = {base};
  auto nodes = CompileStandalone(spec, bases, "schedule");
  EXPECT_TRUE(nodes.ok()) << nodes.status();
  std::vector<double> out(count);
  if (!nodes.ok()) return out;
  EvalQuery query{(*nodes)[0].get(), start, out};
  EvaluateBatch(std::span<const EvalQuery>(&query, 1));
  return out;
}

void ExpectInvalid(const ScheduleSpec& spec, const std::string& message) {
  const absl::Status status = Compile(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), message);
}

TEST(ValidationTest, NamesTheFieldAndTheRule) {
  ExpectInvalid(Spec("cosine_annealing", {{"t_max", int64_t{0}}}),
                "schedule.cosine_annealing.t_max: must be > 0, got 0");
  ExpectInvalid(Spec("step", {{"step_size", int64_t{-1}}}),
                "schedule.step.step_size: must be > 0, got -1");
  ExpectInvalid(Spec("step"), "schedule.step.step_size: is required");
  ExpectInvalid(Spec("exponential", {{"gamma", std::nan("")}}),
                "schedule.exponential.gamma: must be finite, got nan");
  ExpectInvalid(Spec("cosine_annealing", {{"t_max", int64_t{10}}, {"eta_min", INFINITY}}),
                "schedule.cosine_annealing.eta_min: must be finite, got inf");
  ExpectInvalid(Spec("sequential"),
                "schedule.sequential.schedules: must have at least one schedule");
  ExpectInvalid(Spec("chained"), "schedule.chained.schedules: must have at least one schedule");
  ExpectInvalid(Spec(""), "schedule: is required (set exactly one kind of schedule)");
  ExpectInvalid(Spec("warmup_cosine"), "schedule: unknown kind of schedule \"warmup_cosine\"");
}

TEST(ValidationTest, NumbersAreBounded) {
  ExpectInvalid(Spec("cosine_annealing", {{"t_max", int64_t{10}}, {"eta_min", 1e200}}),
                "schedule.cosine_annealing.eta_min: must be within +-1e150, got 1e+200");
  ExpectInvalid(Spec("cyclic", {{"max_lr", std::vector<double>{-1e151}}}),
                "schedule.cyclic.max_lr[0]: must be within +-1e150, got -1e+151");
  EXPECT_EQ(
      CheckBaseValues(std::vector<double>{0.1, 1.7976931348623157e308}, "base_values").message(),
      "base_values[1]: must be within +-1e150, got 1.79769e+308");
  EXPECT_TRUE(Compile(Spec("cosine_annealing", {{"t_max", int64_t{10}}}), {1e150, -1e150}).ok());
}

TEST(ValidationTest, SequentialMilestones) {
  const auto child = Spec("exponential", {{"gamma", 0.9}});
  ExpectInvalid(
      Spec("sequential", {{"milestones", std::vector<int64_t>{5, 3}}}, {child, child, child}),
      "schedule.sequential.milestones[1]: must be greater than 5, got 3");
  ExpectInvalid(
      Spec("sequential", {{"milestones", std::vector<int64_t>{5, 5}}}, {child, child, child}),
      "schedule.sequential.milestones[1]: must be greater than 5, got 5");
  ExpectInvalid(Spec("sequential", {{"milestones", std::vector<int64_t>{0}}}, {child, child}),
                "schedule.sequential.milestones[0]: must be greater than 0, got 0");
  ExpectInvalid(
      Spec("sequential", {{"milestones", std::vector<int64_t>{5}}}, {child}),
      "schedule.sequential.milestones: must have one fewer value than schedules (0), got 1");
}

TEST(ValidationTest, ChildErrorsCarryTheirPath) {
  const auto bad = Spec("cosine_annealing", {{"t_max", int64_t{0}}});
  const auto good = Spec("exponential", {{"gamma", 0.9}});
  ExpectInvalid(Spec("sequential", {{"milestones", std::vector<int64_t>{5}}}, {good, bad}),
                "schedule.sequential.schedules[1].cosine_annealing.t_max: must be > 0, got 0");
  ExpectInvalid(Spec("chained", {}, {Spec("chained", {}, {good, bad})}),
                "schedule.chained.schedules[0].chained.schedules[1].cosine_annealing.t_max: must "
                "be > 0, got 0");
}

TEST(ValidationTest, NestingIsBounded) {
  ScheduleSpec spec = Spec("exponential", {{"gamma", 0.9}});
  for (int i = 0; i <= kMaxScheduleDepth; ++i) spec = Spec("chained", {}, {spec});
  const absl::Status status = Compile(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("nest deeper than 8"));
  ScheduleSpec wide =
      Spec("chained", {},
           std::vector<ScheduleSpec>(kMaxChildren + 1, Spec("exponential", {{"gamma", 0.9}})));
  EXPECT_THAT(Compile(wide).message(), HasSubstr("must have at most 64 schedules, got 65"));
}

TEST(ValidationTest, ModesAreSpelledLikePyTorch) {
  ExpectInvalid(
      Spec("cyclic", {{"max_lr", std::vector<double>{1.0}}, {"mode", std::string("Triangular")}}),
      "schedule.cyclic.mode: must be one of \"triangular\", \"triangular2\", \"exp_range\", got "
      "\"Triangular\"");
  ExpectInvalid(
      Spec("one_cycle",
           {{"total_steps", int64_t{100}}, {"anneal_strategy", std::string("cosine")}}),
      "schedule.one_cycle.anneal_strategy: must be one of \"cos\", \"linear\", got \"cosine\"");
  ExpectInvalid(
      Spec("cyclic", {{"max_lr", std::vector<double>{1.0}}, {"scale_mode", std::string("epoch")}}),
      "schedule.cyclic.scale_mode: must be one of \"cycle\", \"iterations\", got \"epoch\"");
}

TEST(ValidationTest, RangesOfEveryKind) {
  ExpectInvalid(Spec("constant", {{"factor", 1.5}}),
                "schedule.constant.factor: must be between 0 and 1, got 1.5");
  ExpectInvalid(Spec("constant", {{"total_iters", int64_t{-1}}}),
                "schedule.constant.total_iters: must be >= 0, got -1");
  ExpectInvalid(Spec("multi_step", {{"milestones", std::vector<int64_t>{30, 10}}}),
                "schedule.multi_step.milestones[1]: must be >= 30 (milestones are sorted), got 10");
  ExpectInvalid(Spec("exponential"), "schedule.exponential.gamma: is required");
  ExpectInvalid(Spec("exponential", {{"gamma", 0.0}}),
                "schedule.exponential.gamma: must be > 0, got 0");
  ExpectInvalid(Spec("linear", {{"start_factor", 0.0}}),
                "schedule.linear.start_factor: must be > 0 and <= 1, got 0");
  ExpectInvalid(Spec("linear", {{"total_iters", int64_t{0}}}),
                "schedule.linear.total_iters: must be > 0, got 0");
  ExpectInvalid(Spec("polynomial", {{"power", -1.0}}),
                "schedule.polynomial.power: must be >= 0, got -1");
  ExpectInvalid(
      Spec("cosine_annealing_warm_restarts", {{"t_0", int64_t{10}}, {"t_mult", int64_t{0}}}),
      "schedule.cosine_annealing_warm_restarts.t_mult: must be >= 1, got 0");
  ExpectInvalid(Spec("cyclic"), "schedule.cyclic.max_lr: is required");
  ExpectInvalid(Spec("cyclic", {{"max_lr", std::vector<double>{1.0}}, {"step_size_up", -5.0}}),
                "schedule.cyclic.step_size_up: must be >= 1e-290 and <= 2^53, got -5");
  ExpectInvalid(Spec("one_cycle"),
                "schedule.one_cycle.total_steps: is required (or set epochs and steps_per_epoch)");
  ExpectInvalid(
      Spec("one_cycle", {{"total_steps", int64_t{10}}, {"pct_start", 0.1}}),
      "schedule.one_cycle.pct_start: must not make the first phase end at step 0 (pct_start * "
      "total_steps == 1), got 0.1");
  ExpectInvalid(Spec("lambda"), "schedule.lambda.expression: is required");
}

TEST(ValidationTest, PerGroupValuesMustMatchTheGroups) {
  const auto spec = Spec("cyclic", {{"max_lr", std::vector<double>{1.0, 2.0}}});
  EXPECT_TRUE(Compile(spec, {0.1, 0.2}).ok());
  const absl::Status status = Compile(spec, {0.1, 0.2, 0.3});
  EXPECT_EQ(status.message(),
            "schedule.cyclic.max_lr: must have 1 value or one per parameter group (3), got 2");
}

TEST(ValidationTest, ExpressionsAreCheckedWhenCompiled) {
  const absl::Status broken = Compile(Spec("lambda", {{"expression", std::string("1 + ")}}));
  EXPECT_EQ(broken.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(broken.message(), HasSubstr("schedule.lambda.expression: "));
  const absl::Status unknown = Compile(Spec("lambda", {{"expression", std::string("stp * 2")}}));
  EXPECT_THAT(unknown.message(), HasSubstr("schedule.lambda.expression: "));
  EXPECT_THAT(unknown.message(), HasSubstr("stp"));
  const absl::Status oversized = Compile(Spec("lambda", {{"expression", std::string(2000, '1')}}));
  EXPECT_EQ(oversized.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(oversized.message(), HasSubstr("schedule.lambda.expression: "));
}

TEST(SemanticsTest, WarmRestartsBoundariesAreExact) {
  // PyTorch's step(epoch) gives eta_min at 1210 and 295240 (float log); the restart value is the
  // base.
  const auto spec =
      Spec("cosine_annealing_warm_restarts", {{"t_0", int64_t{10}}, {"t_mult", int64_t{3}}});
  EXPECT_EQ(Values(spec, 1210, 1, 0.1)[0], 0.1);
  EXPECT_EQ(Values(spec, 295240, 1, 0.1)[0], 0.1);
  // Restarts of t_0=10, t_mult=3 are at 10 * (3^n - 1) / 2.
  int64_t restart = 0;
  for (int64_t length = 10; restart < kStepLimit / 4; length *= 3) {
    restart += length;
    const auto around = Values(spec, restart - 1, 2, 0.1);
    EXPECT_LT(around[0], 0.1) << restart;
    EXPECT_EQ(around[1], 0.1) << restart;
  }
}

TEST(SemanticsTest, OneCycleHoldsItsFinalValue) {
  const auto spec =
      Spec("one_cycle", {{"max_lr", std::vector<double>{1.0}}, {"total_steps", int64_t{100}}});
  const auto v = Values(spec, 99, 5);
  for (double x : v) EXPECT_EQ(x, v[0]);
  EXPECT_DOUBLE_EQ(v[0], 1.0 / 25 / 1e4);
  EXPECT_EQ(Values(spec, kStepLimit - 1, 1)[0], v[0]);
}

TEST(SemanticsTest, CosineAnnealingIsPeriodicLikePyTorch) {
  const auto spec = Spec("cosine_annealing", {{"t_max", int64_t{10}}});
  EXPECT_EQ(Values(spec, 10, 1)[0], 0.0);
  EXPECT_DOUBLE_EQ(Values(spec, 20, 1)[0], 1.0);
  EXPECT_DOUBLE_EQ(Values(spec, 15, 1)[0], Values(spec, 5, 1)[0]);
}

TEST(SemanticsTest, EveryKindIsFiniteAtTheFarEnd) {
  const std::vector<ScheduleSpec> specs = {
      Spec("constant"),
      Spec("step", {{"step_size", int64_t{1}}}),
      Spec("multi_step", {{"milestones", std::vector<int64_t>{1, 2}}}),
      Spec("exponential", {{"gamma", 0.5}}),
      Spec("linear"),
      Spec("polynomial"),
      Spec("cosine_annealing", {{"t_max", int64_t{7}}}),
      Spec("cosine_annealing_warm_restarts", {{"t_0", int64_t{1}}, {"t_mult", int64_t{2}}}),
      Spec("cyclic", {{"max_lr", std::vector<double>{1.0}}, {"mode", std::string("triangular2")}}),
      Spec("cyclic", {{"max_lr", std::vector<double>{1.0}},
                      {"mode", std::string("exp_range")},
                      {"gamma", 0.5}}),
      Spec("one_cycle", {{"total_steps", int64_t{1000}}}),
      Spec("lambda", {{"expression", std::string("1 / sqrt(step + 1)")}}),
  };
  for (const auto& spec : specs) {
    for (int64_t start : {int64_t{0}, int64_t{1} << 40, kStepLimit - 64}) {
      for (double v : Values(spec, start, 64))
        EXPECT_TRUE(std::isfinite(v)) << spec.kind << " at " << start;
    }
  }
}

TEST(EvaluatorTest, CheckStepRange) {
  EXPECT_TRUE(CheckStepRange(0, 1, "step", "count").ok());
  EXPECT_TRUE(CheckStepRange(kStepLimit - 1, 1, "step", "count").ok());
  EXPECT_EQ(CheckStepRange(-1, 1, "step", "count").message(),
            "step: must be >= 0 and < 2^53, got -1");
  EXPECT_EQ(CheckStepRange(0, 0, "step", "count").message(),
            "count: must be between 1 and 100000, got 0");
  EXPECT_EQ(CheckStepRange(0, 100001, "step", "count").message(),
            "count: must be between 1 and 100000, got 100001");
  EXPECT_EQ(CheckStepRange(kStepLimit - 1, 2, "step", "count").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckStepRange(std::numeric_limits<int64_t>::max(), 100, "step", "count").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JobPlanTest, ValidatesTheJob) {
  JobSpec spec;
  EXPECT_EQ(JobPlan::Compile(spec, "job").status().message(),
            "job.hyperparameters: must have at least one hyperparameter");
  spec.hyperparameters.push_back({"lr", {0.1, 0.01}, Spec("step", {{"step_size", int64_t{10}}})});
  spec.hyperparameters.push_back({"lr", {0.9}, Spec("constant")});
  EXPECT_EQ(JobPlan::Compile(spec, "job").status().message(),
            "job.hyperparameters[1].name: must be unique, \"lr\" appears twice");
  spec.hyperparameters[1].name = "momentum";
  spec.hyperparameters[1].base_values = {};
  EXPECT_EQ(
      JobPlan::Compile(spec, "job").status().message(),
      "job.hyperparameters[1].base_values: must have at least one value (one per parameter group)");
  spec.hyperparameters[1].base_values = {std::nan("")};
  EXPECT_EQ(JobPlan::Compile(spec, "job").status().message(),
            "job.hyperparameters[1].base_values[0]: must be finite, got nan");
  spec.hyperparameters[1].base_values = {0.9};
  spec.labels["Team"] = "x";
  EXPECT_THAT(JobPlan::Compile(spec, "job").status().message(),
              HasSubstr("job.labels[\"Team\"]: key must match"));
  spec.labels = {{"team", "vision"}};
  auto plan = JobPlan::Compile(spec, "job");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ((*plan)->series().size(), 3u);
  EXPECT_EQ((*plan)->series()[1].hyperparameter, "lr");
  EXPECT_EQ((*plan)->series()[1].group, 1);
  const std::vector<std::string> names = {"momentum"};
  EXPECT_EQ(*(*plan)->Select(names, "hyperparameters"), std::vector<size_t>{2});
  const std::vector<std::string> bad = {"beta1"};
  EXPECT_EQ((*plan)->Select(bad, "hyperparameters").status().message(),
            "hyperparameters[0]: the job has no hyperparameter \"beta1\"");
}

}  // namespace
}  // namespace hpsched::core
