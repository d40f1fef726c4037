// Validation of every kind (errors name the field path and the rule) and the conventions the golden
// files cannot show: behaviour past the end, exact restart boundaries, the far end of the step
// range.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/kind_registry.h"

namespace hpsched::core {
namespace {

using ::testing::HasSubstr;

ScheduleSpec Spec(std::string kind, hpsched::core::ScheduleParams params = {},
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

// Select matches names against each hyperparameter's run of series (Compile lists them by
// hyperparameter, then group): every group of a named one, in the job's order whatever the order
// of the names, each once; the first unknown name is the one reported.
TEST(JobPlanTest, SelectsEveryGroupOfEachNamedHyperparameterInTheJobsOrder) {
  JobSpec spec;
  spec.hyperparameters.push_back({"lr", {0.1, 0.01}, Spec("constant")});
  spec.hyperparameters.push_back({"momentum", {0.9}, Spec("constant")});
  spec.hyperparameters.push_back({"beta", {0.1, 0.2, 0.3, 0.4, 0.5}, Spec("constant")});
  auto plan = JobPlan::Compile(spec, "job");
  ASSERT_TRUE(plan.ok()) << plan.status();
  SeriesSelection selected = {7};
  ASSERT_TRUE((*plan)->Select({}, "hyperparameters", &selected).ok());
  EXPECT_EQ(selected, (SeriesSelection{0, 1, 2, 3, 4, 5, 6, 7}));
  const std::vector<std::string> names = {"beta", "lr", "beta", "lr"};
  ASSERT_TRUE((*plan)->Select(names, "hyperparameters", &selected).ok());
  EXPECT_EQ(selected, (SeriesSelection{0, 1, 3, 4, 5, 6, 7}));
  const std::vector<std::string> bad = {"momentum", "lr", "b", "momentum", "c"};
  EXPECT_EQ((*plan)->Select(bad, "requests[3].hyperparameters", &selected).message(),
            "requests[3].hyperparameters[2]: the job has no hyperparameter \"b\"");
  EXPECT_TRUE(selected.empty());
  const std::vector<std::string> too_many(kMaxSelectedNames + 1, "lr");
  EXPECT_EQ((*plan)->Select(too_many, "hyperparameters", &selected).message(),
            "hyperparameters: must name at most 1024 hyperparameters, got 1025");
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
  SeriesSelection selected;
  ASSERT_TRUE((*plan)->Select(names, "hyperparameters", &selected).ok());
  EXPECT_EQ(selected, SeriesSelection{2});
  const std::vector<std::string> bad = {"beta1"};
  EXPECT_EQ((*plan)->Select(bad, "hyperparameters", &selected).message(),
            "hyperparameters[0]: the job has no hyperparameter \"beta1\"");
  EXPECT_TRUE(selected.empty());
}

// ---------------------------------------------------------------------------
// Finiteness: every spec that compiles gives finite values at every step in [0, 2^53), within the
// bound its node states (Node::max_abs). Each rule has its regression cases (found by the
// schedule fuzzer), then a property test samples many specs of every v1 kind.
// ---------------------------------------------------------------------------

constexpr int64_t kLastStep = kStepLimit - 1;

// The steps a spec is checked at: 0 to 299, the steps its parameters name (and their
// neighbours), 2^31, the last steps, and a few random ones.
std::vector<int64_t> CheckSteps(const ScheduleSpec& spec, std::mt19937_64& rng) {
  std::vector<int64_t> steps = {int64_t{1} << 31, kLastStep - 1, kLastStep};
  for (int64_t t = 0; t < 300; ++t) steps.push_back(t);
  const auto add = [&](int64_t v) {
    for (int64_t d : {-1, 0, 1}) {
      if (v >= 0 && v < kStepLimit && v + d >= 0 && v + d < kStepLimit) steps.push_back(v + d);
    }
  };
  std::vector<const ScheduleSpec*> todo = {&spec};
  while (!todo.empty()) {
    const ScheduleSpec* s = todo.back();
    todo.pop_back();
    for (const auto& [name, value] : s->params) {
      if (const auto* v = std::get_if<int64_t>(&value)) add(*v);
      if (const auto* list = std::get_if<std::vector<int64_t>>(&value)) {
        for (int64_t v : *list) add(v);
      }
      if (const auto* x = std::get_if<double>(&value); x != nullptr && *x >= 0 && *x < 1e16) {
        add(static_cast<int64_t>(*x));
        add(static_cast<int64_t>(*x * 2));
      }
    }
    for (const ScheduleSpec& child : s->children) todo.push_back(&child);
  }
  for (int i = 0; i < 4; ++i) steps.push_back(static_cast<int64_t>(rng() % kStepLimit));
  return steps;
}

// Compiles `spec` for `bases`; when it compiles, every value at the check steps is finite and
// within the node's bound. Returns whether it compiled.
bool ExpectFiniteIfValid(const ScheduleSpec& spec, const std::vector<double>& bases,
                         std::mt19937_64& rng, const std::string& label) {
  auto nodes = CompileStandalone(spec, bases, "schedule");
  if (!nodes.ok()) {
    EXPECT_EQ(nodes.status().code(), absl::StatusCode::kInvalidArgument) << label;
    return false;
  }
  const std::vector<int64_t> steps = CheckSteps(spec, rng);
  for (size_t g = 0; g < nodes->size(); ++g) {
    const Node& node = *(*nodes)[g];
    for (int64_t step : steps) {
      double v = 0;
      node.Evaluate(step, std::span<double>(&v, 1));
      EXPECT_TRUE(std::isfinite(v) && std::fabs(v) <= node.max_abs())
          << label << "\nbase " << bases[g] << " at step " << step << ": " << v << " (bound "
          << node.max_abs() << ")";
    }
  }
  return true;
}

bool Finite(const ScheduleSpec& spec, std::vector<double> bases = {0.1}) {
  std::mt19937_64 rng(1);
  return ExpectFiniteIfValid(spec, bases, rng, spec.kind);
}

TEST(FinitenessTest, GammaAboveOneOnlyWhileTheValueStaysFinite) {
  // exponential: b * gamma^t up to t = 2^53 - 1, so gamma must be within ~7.8e-14 of 1.
  EXPECT_EQ(Compile(Spec("exponential", {{"gamma", 1.01}})).message(),
            "schedule.exponential.gamma: must be <= 1, or > 1 only as long as b * gamma^n stays "
            "finite for every n up to 9007199254740991 (the last step); b = 0.1, got 1.01");
  EXPECT_TRUE(Finite(Spec("exponential", {{"gamma", 1 + 5e-14}})));
  EXPECT_FALSE(Finite(Spec("exponential", {{"gamma", 1 + 1e-13}})));
  // step: n is the number of periods the last step reaches.
  EXPECT_TRUE(Finite(Spec("step", {{"step_size", int64_t{1} << 50}, {"gamma", 2.0}})));
  EXPECT_EQ(Compile(Spec("step", {{"step_size", int64_t{1}}, {"gamma", 2.0}})).message(),
            "schedule.step.gamma: must be <= 1, or > 1 only as long as b * gamma^n stays finite "
            "for every n up to 9007199254740991 (the periods reached by the last step); b = 0.1, "
            "got 2");
  // multi_step: n is the number of milestones below 2^53, whatever the steps.
  const auto multi = [](double gamma, std::vector<int64_t> milestones) {
    return Spec("multi_step", {{"gamma", gamma}, {"milestones", std::move(milestones)}});
  };
  EXPECT_TRUE(Finite(multi(10.0, {10, 20, 30})));
  EXPECT_DOUBLE_EQ(Values(multi(10.0, {10, 20, 30}), kLastStep, 1, 0.1)[0], 100.0);
  EXPECT_TRUE(Finite(multi(1e150, {10, 20})));
  EXPECT_THAT(Compile(multi(1e150, {10, 20, 30})).message(),
              HasSubstr("n up to 3 (the milestones below 2^53)"));
  EXPECT_TRUE(Finite(multi(1e150, {10, 20, kStepLimit, kStepLimit + 5})));
  // The bound depends on the group's base value: 1e150 * 1e150^2 overflows.
  EXPECT_TRUE(Finite(multi(1e150, {5, 6}), {1e-150}));
  EXPECT_FALSE(Finite(multi(1e150, {5, 6}), {1e150}));
  // b = 0 does not hide an infinite gamma^n (0 * inf is NaN).
  EXPECT_FALSE(Finite(Spec("exponential", {{"gamma", 2.0}}), {0.0}));
}

TEST(FinitenessTest, LambdaExpressionsAreProvenFinite) {
  const auto lambda = [](std::string text) {
    return Spec("lambda", {{"expression", std::move(text)}});
  };
  EXPECT_EQ(Compile(lambda("1/step")).message(),
            "schedule.lambda.expression: '/' at column 2 may divide by zero: the divisor's range "
            "[0, 9.0072e+15] contains 0");
  EXPECT_THAT(Compile(lambda("log(step)")).message(), HasSubstr("may take the log of a value"));
  EXPECT_THAT(Compile(lambda("sqrt(step-1)")).message(), HasSubstr("square root of a negative"));
  EXPECT_THAT(Compile(lambda("exp(step)")).message(), HasSubstr("'exp' at column 1 may overflow"));
  EXPECT_THAT(Compile(lambda("(1 - step/1000) ** 0.9")).message(), HasSubstr("may be NaN"));
  for (const char* ok : {"0.95 ** step", "1/(step+1)", "min(1, (step+1)/1000)",
                         "max(0, 1 - step/1000) ** 0.9", "step < 1 ? 1 : 1/step"}) {
    EXPECT_TRUE(Finite(lambda(ok), {0.1, 1e150, -1e150})) << ok;
  }
  // b * expression must be finite too.
  EXPECT_TRUE(Finite(lambda("1e150"), {1e150}));
  EXPECT_EQ(Compile(lambda("1e200 * min(1, step)"), {1e150}).message(),
            "schedule.lambda.expression: b * expression may overflow: b = 1e+150, the "
            "expression's range is [0, 1e+200]");
}

TEST(FinitenessTest, DivisorsHaveAMinimumMagnitude) {
  // cyclic: t / (step_size_up + step_size_down) overflows for subnormal step sizes.
  const auto cyclic = [](double up, double down) {
    return Spec("cyclic", {{"max_lr", std::vector<double>{1.0}},
                           {"step_size_up", up},
                           {"step_size_down", down},
                           {"mode", std::string("triangular2")}});
  };
  EXPECT_EQ(Compile(cyclic(5e-324, 1)).message(),
            "schedule.cyclic.step_size_up: must be >= 1e-290 and <= 2^53, got 4.94066e-324");
  EXPECT_EQ(Compile(cyclic(1, 1e-300)).message(),
            "schedule.cyclic.step_size_down: must be >= 1e-290 and <= 2^53, got 1e-300");
  EXPECT_TRUE(Finite(cyclic(1e-290, 1e-290)));
  EXPECT_TRUE(Finite(cyclic(1e-290, 9007199254740992.0)));
  EXPECT_TRUE(Finite(cyclic(9007199254740992.0, 1e-290)));
  // one_cycle: max_lr / div_factor / final_div_factor must stay within 1e300.
  const auto one_cycle = [](double div, double final_div) {
    return Spec(
        "one_cycle",
        {{"total_steps", int64_t{100}}, {"div_factor", div}, {"final_div_factor", final_div}});
  };
  EXPECT_EQ(Compile(one_cycle(1e-320, 1e4)).message(),
            "schedule.one_cycle.div_factor: must keep |max_lr / div_factor| <= 1e300 (max_lr = "
            "0.1), got 9.99989e-321");
  EXPECT_EQ(Compile(one_cycle(25, 1e-320)).message(),
            "schedule.one_cycle.final_div_factor: must keep |max_lr / div_factor / "
            "final_div_factor| <= 1e300 (max_lr = 0.1, div_factor = 25), got 9.99989e-321");
  EXPECT_TRUE(Finite(one_cycle(1e-140, 1e-10), {1e150}));
  // Found by the fuzzer: in the subnormal range, rounding errors are absolute, not relative, and
  // the bound must allow for them (this value rounds up to 17 * 2^-1074 with a max_lr of 16).
  EXPECT_TRUE(Finite(Spec("one_cycle", {{"max_lr", std::vector<double>{7.90505033345994e-323}},
                                        {"total_steps", int64_t{100}},
                                        {"three_phase", true}}),
                     {std::numeric_limits<double>::denorm_min(), 3.0}));
  EXPECT_TRUE(Finite(Spec("cosine_annealing", {{"t_max", int64_t{7}}, {"eta_min", 3e-323}}),
                     {std::numeric_limits<double>::denorm_min()}));
  EXPECT_FALSE(Finite(one_cycle(1e-150, 1e-150), {1e150}));
}

TEST(FinitenessTest, ChainedProductsAreBounded) {
  const auto lambda = [](std::string text) {
    return Spec("lambda", {{"expression", std::move(text)}});
  };
  // Each child is finite, their product is not.
  EXPECT_EQ(
      Compile(Spec("chained", {}, {lambda("1e150"), lambda("1e150"), lambda("1e150")})).message(),
      "schedule.chained.schedules[2]: the product of the schedules' values up to this one "
      "may overflow: its bound is 1e+150 and b = 0.1");
  EXPECT_TRUE(Finite(Spec("chained", {}, {lambda("1e150"), lambda("1e150")})));
  // A factor 0 after an overflow would give NaN: every running product must be finite.
  EXPECT_FALSE(Finite(Spec("chained", {}, {lambda("1e200"), lambda("1e200"), lambda("0")})));
  const auto exp_gamma = Spec("exponential", {{"gamma", 1 + 5e-14}});  // Up to ~e^450.
  EXPECT_TRUE(Finite(Spec("chained", {}, {exp_gamma, Spec("constant")})));
  EXPECT_FALSE(Finite(Spec("chained", {}, {exp_gamma, exp_gamma})));
  // Absolute-valued children count with their own values.
  const auto cosine = Spec("cosine_annealing", {{"t_max", int64_t{10}}, {"eta_min", 1e150}});
  EXPECT_TRUE(Finite(Spec("chained", {}, {cosine, cosine})));
  EXPECT_FALSE(Finite(Spec("chained", {}, {cosine, cosine, cosine})));
  // Sequential children: the largest bound of its schedules.
  EXPECT_FALSE(Finite(Spec(
      "chained", {},
      {Spec("sequential", {{"milestones", std::vector<int64_t>{5}}}, {Spec("constant"), cosine}),
       cosine, cosine})));
}

// Draws valid-looking specs of every v1 kind, edge values included (gamma near 1 and above it,
// subnormal and huge magnitudes, steps near 2^53).
class SpecSampler {
 public:
  explicit SpecSampler(uint64_t seed) : rng_(seed) {}

  std::mt19937_64& rng() { return rng_; }

  template <typename T>
  T Pick(std::initializer_list<T> values) {
    return *(values.begin() + rng_() % values.size());
  }

  double Unit() { return std::uniform_real_distribution<double>(0, 1)(rng_); }

  int64_t Steps() {
    return Pick<int64_t>({0, 1, 2, 5, 7, 100, 1000, int64_t{1} << 31, kLastStep - 1, kLastStep,
                          kStepLimit, int64_t{1} << 62, static_cast<int64_t>(rng_() % 100000)});
  }
  int64_t PositiveSteps() {
    const int64_t s = Steps();
    return s > 0 ? s : 1;
  }
  double Gamma() {
    return Pick<double>({0.0, 1e-300, 0.1, 0.5, 0.9, 0.999999, 1.0, 1 + 1e-15, 1 + 5e-14, 1 + 1e-13,
                         1.0001, 1.5, 2.0, 10.0, 1e10, 1e150, Unit()});
  }
  double Value() {
    return Pick<double>(
        {0.0, 5e-324, 8e-323, 1e-300, 1e-3, 0.1, 1.0, 2.0, -0.5, 1e100, 1e150, -1e150, Unit()});
  }
  double Size() {
    return Pick<double>(
        {1e-300, 1e-290, 1e-10, 0.5, 1.0, 5.0, 2000.0, 1e9, 9007199254740992.0, 1 + Unit() * 100});
  }
  std::vector<int64_t> SortedSteps(size_t max_count, bool strictly_positive) {
    std::vector<int64_t> v(rng_() % (max_count + 1));
    for (int64_t& x : v) x = strictly_positive ? PositiveSteps() : Steps();
    std::sort(v.begin(), v.end());
    if (strictly_positive) v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  }

  ScheduleSpec Sample(const std::string& kind, int depth) {
    if (kind == "constant") {
      return Spec(
          kind, {{"factor", Pick<double>({0.0, 1.0 / 3, 1.0, Unit()})}, {"total_iters", Steps()}});
    }
    if (kind == "step") return Spec(kind, {{"step_size", Steps()}, {"gamma", Gamma()}});
    if (kind == "multi_step") {
      return Spec(kind, {{"milestones", SortedSteps(5, false)}, {"gamma", Gamma()}});
    }
    if (kind == "exponential") return Spec(kind, {{"gamma", Gamma()}});
    if (kind == "linear") {
      return Spec(kind, {{"start_factor", Pick<double>({1e-300, 1e-3, 1.0 / 3, 1.0, Unit()})},
                         {"end_factor", Pick<double>({0.0, 0.5, 1.0, Unit()})},
                         {"total_iters", Steps()}});
    }
    if (kind == "polynomial") {
      return Spec(kind, {{"total_iters", Steps()},
                         {"power", Pick<double>({0.0, 0.5, 1.0, 2.0, 1e150, Unit() * 10})}});
    }
    if (kind == "cosine_annealing") {
      return Spec(kind, {{"t_max", Steps()}, {"eta_min", Value()}});
    }
    if (kind == "cosine_annealing_warm_restarts") {
      return Spec(kind, {{"t_0", Steps()},
                         {"t_mult", Pick<int64_t>({1, 2, 3, 1000, int64_t{1} << 40})},
                         {"eta_min", Value()}});
    }
    if (kind == "cyclic") {
      return Spec(
          kind,
          {{"base_lr", std::vector<double>{Value()}},
           {"max_lr", std::vector<double>{Value()}},
           {"step_size_up", Size()},
           {"step_size_down", Size()},
           {"mode", std::string(Pick<const char*>({"triangular", "triangular2", "exp_range"}))},
           {"gamma", Pick<double>({1e-300, 0.5, 0.99999, 1.0, Unit()})}});
    }
    if (kind == "one_cycle") {
      return Spec(kind, {{"max_lr", std::vector<double>{Value()}},
                         {"total_steps", Steps()},
                         {"pct_start", Pick<double>({0.0, 0.1, 0.25, 0.3, 0.5, 0.7, 1.0, Unit()})},
                         {"anneal_strategy", std::string(Pick<const char*>({"cos", "linear"}))},
                         {"div_factor", Pick<double>({1e-300, 1e-150, 1e-10, 1.0, 25.0, 1e150})},
                         {"final_div_factor", Pick<double>({1e-300, 1e-150, 1.0, 1e4, 1e150})},
                         {"three_phase", rng_() % 2 == 0}});
    }
    if (kind == "lambda") {
      return Spec(
          kind, {{"expression",
                  std::string(Pick<const char*>(
                      {"0.95 ** step", "1/(step+1)", "min(1, (step+1)/1000)", "1/step", "log(step)",
                       "log(step + 1)", "sqrt(step - 1)", "exp(step)", "exp(-step)",
                       "(1 - step/1000) ** 0.9", "max(0, 1 - step/1000) ** 0.9",
                       "step < 100 ? step / 100 : 0.5 * (1 + cos(pi * (step - 100) / 900))",
                       "1e150", "1e300", "step * 1e150", "step ** 2", "1.0000001 ** step",
                       "step == 0 ? 1 : 1/step"}))}});
    }
    // Composites.
    std::vector<ScheduleSpec> children(1 + rng_() % 3);
    for (ScheduleSpec& child : children) child = Sample(AnyKind(depth + 1), depth + 1);
    if (kind == "sequential") {
      std::vector<int64_t> milestones;
      for (size_t i = 1; i < children.size(); ++i) {
        milestones.push_back((milestones.empty() ? 0 : milestones.back()) + PositiveSteps() % 1000 +
                             1);
      }
      return Spec(kind, {{"milestones", milestones}}, std::move(children));
    }
    return Spec(kind, {}, std::move(children));
  }

  std::string AnyKind(int depth) {
    const std::vector<absl::string_view> names = KindNames();
    std::string kind(names[rng_() % names.size()]);
    while (depth >= 2 && (kind == "sequential" || kind == "chained")) {
      kind = std::string(names[rng_() % names.size()]);
    }
    return kind;
  }

 private:
  std::mt19937_64 rng_;
};

TEST(FinitenessTest, SampledValidSpecsOfEveryKindAreFinite) {
  SpecSampler sampler(20261129);
  const std::vector<double> base_sets[] = {{0.1},
                                           {1.0, 0.01},
                                           {1e150, -1e150, 0.0},
                                           {1e-300, std::numeric_limits<double>::denorm_min()}};
  std::map<std::string, int> valid;
  // The v1 kinds; the catalog's kinds have their property tests next to their other tests
  // (catalog_*_test.cc, torch_extra_test.cc).
  const std::vector<absl::string_view> kinds = {
      "constant", "step",       "multi_step",       "exponential",
      "linear",   "polynomial", "cosine_annealing", "cosine_annealing_warm_restarts",
      "cyclic",   "one_cycle",  "lambda",           "sequential",
      "chained"};
  for (absl::string_view name : kinds) {
    for (int i = 0; i < 1000; ++i) {
      const ScheduleSpec spec = sampler.Sample(std::string(name), 0);
      const std::vector<double>& bases = base_sets[i % std::size(base_sets)];
      if (ExpectFiniteIfValid(spec, bases, sampler.rng(), std::string(name))) {
        ++valid[std::string(name)];
      }
      if (HasFailure()) return;
    }
  }
  // Every kind was exercised with plenty of valid specs.
  for (absl::string_view name : kinds) {
    EXPECT_GE(valid[std::string(name)], 200) << name;
  }
}

}  // namespace
}  // namespace hpsched::core
