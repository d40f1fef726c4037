// The timm, deepspeed and megatron kinds: validation (errors name the field and the rule, and a
// field the named scheduler does not take is an error), the conventions the golden files cannot
// show on their own, and a property test: every spec that compiles, from a sampled set of valid and
// hostile parameter values, gives finite values on the whole step range.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "chained_checks.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/kind_registry.h"

namespace hpsched::core {
namespace {

using Params = hpsched::core::ScheduleParams;

ScheduleSpec Spec(std::string kind, Params params) {
  return ScheduleSpec{std::move(kind), std::move(params), {}};
}

absl::Status Compile(const ScheduleSpec& spec, std::vector<double> bases = {0.1}) {
  return CompileStandalone(spec, bases, "schedule").status();
}

void ExpectInvalid(const ScheduleSpec& spec, const std::string& message) {
  const absl::Status status = Compile(spec);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), message);
}

std::vector<double> Values(const ScheduleSpec& spec, int64_t start, size_t count,
                           std::vector<double> bases = {1.0}, size_t group = 0) {
  auto nodes = CompileStandalone(spec, bases, "schedule");
  EXPECT_TRUE(nodes.ok()) << nodes.status();
  std::vector<double> out(count);
  if (!nodes.ok()) return out;
  EvalQuery query{(*nodes)[group].get(), start, out};
  EvaluateBatch(std::span<const EvalQuery>(&query, 1));
  return out;
}

double ValueAt(const ScheduleSpec& spec, int64_t step, double base = 1.0) {
  return Values(spec, step, 1, {base})[0];
}

std::vector<double> D(std::initializer_list<double> v) { return std::vector<double>(v); }

// ---------------------------------------------------------------------------------------------
// Validation.

constexpr char kTimmNames[] = "(one of \"cosine\", \"tanh\", \"step\", \"multistep\", \"poly\")";
constexpr char kDeepSpeedNames[] =
    "(one of \"WarmupLR\", \"WarmupDecayLR\", \"WarmupCosineLR\", \"OneCycle\", \"LRRangeTest\")";
constexpr char kMegatronNames[] =
    "(one of \"linear\", \"cosine\", \"inverse-square-root\", \"WSD\", \"constant\", "
    "\"weight_decay\")";

TEST(CatalogValidationTest, NameIsRequiredAndSpelledAsTheLibrary) {
  ExpectInvalid(Spec("timm", {}), std::string("schedule.timm.name: is required ") + kTimmNames);
  ExpectInvalid(Spec("deepspeed", {}),
                std::string("schedule.deepspeed.name: is required ") + kDeepSpeedNames);
  ExpectInvalid(Spec("megatron", {}),
                std::string("schedule.megatron.name: is required ") + kMegatronNames);
  ExpectInvalid(Spec("timm", {{"name", std::string("CosineLRScheduler")}}),
                std::string("schedule.timm.name: unknown timm schedule \"CosineLRScheduler\"; did "
                            "you mean \"cosine\"? ") +
                    kTimmNames);
  ExpectInvalid(Spec("timm", {{"name", std::string("plateau")}}),
                std::string("schedule.timm.name: unknown timm schedule \"plateau\" ") + kTimmNames);
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("warmup_lr")}}),
                std::string("schedule.deepspeed.name: unknown deepspeed schedule \"warmup_lr\"; "
                            "did you mean \"WarmupLR\"? ") +
                    kDeepSpeedNames);
  ExpectInvalid(Spec("megatron", {{"name", std::string("wsd")}}),
                std::string("schedule.megatron.name: unknown megatron schedule \"wsd\"; did you "
                            "mean \"WSD\"? ") +
                    kMegatronNames);
}

TEST(CatalogValidationTest, AnArgumentTheNamedSchedulerDoesNotTakeIsAnError) {
  ExpectInvalid(
      Spec("timm", {{"name", std::string("cosine")}, {"t_initial", int64_t{10}}, {"power", 2.0}}),
      "schedule.timm.power: is not a parameter of timm \"cosine\" (it takes warmup_t, "
      "warmup_lr_init, warmup_prefix, noise_range_t, noise_pct, noise_std, noise_seed, t_initial, "
      "lr_min, cycle_mul, cycle_decay, cycle_limit, k_decay)");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("WarmupCosineLR")},
                                   {"total_num_steps", int64_t{100}},
                                   {"warmup_max_lr", D({0.1})}}),
                "schedule.deepspeed.warmup_max_lr: is not a parameter of deepspeed "
                "\"WarmupCosineLR\" (it takes total_num_steps, warmup_min_ratio, "
                "warmup_num_steps, cos_min_ratio, warmup_type)");
  ExpectInvalid(Spec("megatron", {{"name", std::string("linear")},
                                  {"lr_decay_steps", int64_t{10}},
                                  {"start_wd", D({0.1})}}),
                "schedule.megatron.start_wd: is not a parameter of megatron \"linear\" (it takes "
                "max_lr, min_lr, init_lr, lr_warmup_steps, lr_decay_steps)");
  ExpectInvalid(
      Spec("timm",
           {{"name", std::string("step")}, {"decay_t", D({10})}, {"t_initial", int64_t{10}}}),
      "schedule.timm.t_initial: is not a parameter of timm \"step\" (it takes warmup_t, "
      "warmup_lr_init, warmup_prefix, noise_range_t, noise_pct, noise_std, noise_seed, decay_t, "
      "decay_rate)");
  ExpectInvalid(
      Spec("timm", {{"name", std::string("tanh")}, {"t_initial", int64_t{10}}, {"k_decay", 2.0}}),
      "schedule.timm.k_decay: is not a parameter of timm \"tanh\" (it takes warmup_t, "
      "warmup_lr_init, warmup_prefix, noise_range_t, noise_pct, noise_std, noise_seed, t_initial, "
      "lb, ub, lr_min, cycle_mul, cycle_decay, cycle_limit)");
  ExpectInvalid(
      Spec("deepspeed", {{"name", std::string("WarmupLR")}, {"total_num_steps", int64_t{100}}}),
      "schedule.deepspeed.total_num_steps: is not a parameter of deepspeed \"WarmupLR\" (it takes "
      "warmup_min_lr, warmup_max_lr, warmup_num_steps, warmup_type)");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("LRRangeTest")},
                                   {"hyperparameter", std::string("momentum")}}),
                "schedule.deepspeed.hyperparameter: is not a parameter of deepspeed "
                "\"LRRangeTest\" (it takes lr_range_test_min_lr, lr_range_test_step_size, "
                "lr_range_test_step_rate, lr_range_test_staircase)");
  ExpectInvalid(Spec("megatron", {{"name", std::string("cosine")},
                                  {"lr_decay_steps", int64_t{10}},
                                  {"wsd_decay_steps", int64_t{5}}}),
                "schedule.megatron.wsd_decay_steps: is not a parameter of megatron \"cosine\" (it "
                "takes max_lr, min_lr, init_lr, lr_warmup_steps, lr_decay_steps)");
  ExpectInvalid(Spec("megatron", {{"name", std::string("weight_decay")}, {"max_lr", D({0.1})}}),
                "schedule.megatron.max_lr: is not a parameter of megatron \"weight_decay\" (it "
                "takes start_wd, end_wd, wd_incr_steps, wd_incr_style, wd_mult)");
}

TEST(CatalogValidationTest, Megatron) {
  const auto lr = [](Params extra) {
    Params p = {{"name", std::string("linear")}, {"lr_decay_steps", int64_t{100}}};
    for (auto& [k, v] : extra) p[k] = v;
    return Spec("megatron", p);
  };
  ExpectInvalid(Spec("megatron", {{"name", std::string("cosine")}}),
                "schedule.megatron.lr_decay_steps: is required");
  ExpectInvalid(lr({{"lr_decay_steps", int64_t{0}}}),
                "schedule.megatron.lr_decay_steps: must be >= 1 and <= 2^53, got 0");
  ExpectInvalid(lr({{"lr_warmup_steps", int64_t{100}}}),
                "schedule.megatron.lr_warmup_steps: must be < lr_decay_steps (100), got 100");
  ExpectInvalid(lr({{"min_lr", D({-1})}}), "schedule.megatron.min_lr: must be >= 0, got -1");
  ExpectInvalid(lr({{"min_lr", D({0.5})}, {"max_lr", D({0.25})}}),
                "schedule.megatron.max_lr: must be >= min_lr (0.5), got 0.25");
  ExpectInvalid(lr({{"init_lr", D({0.5})}}),
                "schedule.megatron.init_lr: must be <= max_lr (0.1 (the group's base value, its "
                "default)), got 0.5");
  EXPECT_EQ(
      Compile(lr({}), {-0.1}).message(),
      "schedule.megatron.max_lr: must be >= min_lr (0), got -0.1 (the group's base value, its "
      "default)");
  ExpectInvalid(
      lr({{"max_lr", D({0.1, 0.2, 0.3})}}),
      "schedule.megatron.max_lr: must have 1 value or one per parameter group (1), got 3");
  ExpectInvalid(Spec("megatron", {{"name", std::string("WSD")}, {"lr_decay_steps", int64_t{100}}}),
                "schedule.megatron.wsd_decay_steps: is required");
  ExpectInvalid(Spec("megatron", {{"name", std::string("WSD")},
                                  {"lr_decay_steps", int64_t{100}},
                                  {"wsd_decay_steps", int64_t{10}},
                                  {"lr_wsd_decay_style", std::string("sqrt")}}),
                "schedule.megatron.lr_wsd_decay_style: must be one of \"exponential\", \"linear\", "
                "\"cosine\", \"minus_sqrt\", got \"sqrt\"");
  ExpectInvalid(Spec("megatron", {{"name", std::string("weight_decay")}, {"end_wd", D({0.2})}}),
                "schedule.megatron.end_wd: must equal start_wd (0.1) when wd_incr_style is "
                "\"constant\", got 0.2");
  ExpectInvalid(Spec("megatron", {{"name", std::string("weight_decay")},
                                  {"wd_incr_style", std::string("linear")}}),
                "schedule.megatron.wd_incr_steps: is required");
  ExpectInvalid(Spec("megatron", {{"name", std::string("weight_decay")},
                                  {"wd_incr_style", std::string("cosine")},
                                  {"wd_incr_steps", int64_t{0}}}),
                "schedule.megatron.wd_incr_steps: must be >= 1 and <= 2^53, got 0");
  ExpectInvalid(Spec("megatron", {{"name", std::string("weight_decay")},
                                  {"start_wd", D({0.2})},
                                  {"end_wd", D({0.1})},
                                  {"wd_incr_style", std::string("linear")},
                                  {"wd_incr_steps", int64_t{10}}}),
                "schedule.megatron.end_wd: must be >= start_wd (0.2), got 0.1");
}

TEST(CatalogValidationTest, DeepSpeed) {
  ExpectInvalid(
      Spec("deepspeed", {{"name", std::string("WarmupLR")}, {"warmup_num_steps", int64_t{0}}}),
      "schedule.deepspeed.warmup_num_steps: must be >= 1 and <= 2^53, got 0");
  ExpectInvalid(
      Spec("deepspeed",
           {{"name", std::string("WarmupLR")}, {"warmup_type", std::string("cosine")}}),
      "schedule.deepspeed.warmup_type: must be one of \"log\", \"linear\", got \"cosine\"");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("WarmupDecayLR")}}),
                "schedule.deepspeed.total_num_steps: is required");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("WarmupCosineLR")},
                                   {"total_num_steps", int64_t{10}},
                                   {"cos_min_ratio", 1.5}}),
                "schedule.deepspeed.cos_min_ratio: must be between 0 and 1, got 1.5");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("OneCycle")}}),
                "schedule.deepspeed.cycle_min_lr: is required");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("OneCycle")},
                                   {"cycle_min_lr", D({0.01})},
                                   {"cycle_second_step_size", int64_t{-1}}}),
                "schedule.deepspeed.cycle_second_step_size: must be >= 1 and <= 2^53, got -1");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("OneCycle")},
                                   {"cycle_min_lr", D({0.01})},
                                   {"decay_lr_rate", -0.5}}),
                "schedule.deepspeed.decay_lr_rate: must be >= 0, got -0.5");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("OneCycle")},
                                   {"hyperparameter", std::string("momentum")},
                                   {"cycle_min_lr", D({0.01})},
                                   {"cycle_first_step_size", int64_t{1}},
                                   {"decay_step_size", int64_t{1}},
                                   {"decay_mom_rate", 1e150},
                                   {"cycle_max_mom", D({1e150})}}),
                "schedule.deepspeed.decay_mom_rate: makes the momentum overflow before step 2^53, "
                "got 1e+150");
  ExpectInvalid(Spec("deepspeed", {{"name", std::string("LRRangeTest")},
                                   {"lr_range_test_min_lr", D({1e150})},
                                   {"lr_range_test_step_size", int64_t{1}},
                                   {"lr_range_test_step_rate", 1e150}}),
                "schedule.deepspeed.lr_range_test_step_rate: makes the value overflow before step "
                "2^53, got 1e+150");
}

TEST(CatalogValidationTest, Timm) {
  const auto cosine = [](Params extra) {
    Params p = {{"name", std::string("cosine")}, {"t_initial", int64_t{10}}};
    for (auto& [k, v] : extra) p[k] = v;
    return Spec("timm", p);
  };
  ExpectInvalid(Spec("timm", {{"name", std::string("cosine")}}),
                "schedule.timm.t_initial: is required");
  ExpectInvalid(cosine({{"t_initial", int64_t{0}}}),
                "schedule.timm.t_initial: must be >= 1 and <= 2^53, got 0");
  ExpectInvalid(cosine({{"cycle_mul", 0.5}}), "schedule.timm.cycle_mul: must be >= 1, got 0.5");
  ExpectInvalid(cosine({{"k_decay", 0.0}}), "schedule.timm.k_decay: must be > 0, got 0");
  ExpectInvalid(cosine({{"lr_min", D({-0.1})}}), "schedule.timm.lr_min: must be >= 0, got -0.1");
  ExpectInvalid(cosine({{"cycle_limit", int64_t{-1}}}),
                "schedule.timm.cycle_limit: must be >= 0, got -1");
  ExpectInvalid(cosine({{"noise_pct", 0.0}, {"noise_range_t", D({0})}}),
                "schedule.timm.noise_pct: must be >= 0.01, got 0");
  ExpectInvalid(cosine({{"noise_range_t", D({0, 10, 20})}}),
                "schedule.timm.noise_range_t: must hold 0, 1 or 2 values, got 3");
  ExpectInvalid(cosine({{"cycle_decay", 2.0}, {"cycle_limit", int64_t{2000}}}),
                "schedule.timm.cycle_decay: makes the value overflow before step 2^53 (|b| * "
                "rate^count > 1e300)");
  ExpectInvalid(
      Spec("timm", {{"name", std::string("tanh")}, {"t_initial", int64_t{10}}, {"lb", 3.0}}),
      "schedule.timm.lb: must be < ub (3), got 3");
  ExpectInvalid(Spec("timm", {{"name", std::string("step")}}),
                "schedule.timm.decay_t: must hold "
                "exactly one value (the decay "
                "period) for \"step\", got 0");
  ExpectInvalid(Spec("timm", {{"name", std::string("step")}, {"decay_t", D({0})}}),
                "schedule.timm.decay_t: must be > 0, got 0");
  ExpectInvalid(Spec("timm", {{"name", std::string("multistep")}, {"decay_t", D({10, 5})}}),
                "schedule.timm.decay_t: must be non-decreasing, got 5 after 10");
  ExpectInvalid(
      Spec("timm", {{"name", std::string("step")}, {"decay_t", D({1})}, {"decay_rate", 1.5}}),
      "schedule.timm.decay_rate: makes the value overflow before step 2^53 (|b| * "
      "rate^count > 1e300)");
}

// ---------------------------------------------------------------------------------------------
// Conventions.

TEST(CatalogConventionTest, TimmCycleMulRestartsAtTheExactBoundary) {
  // timm's floor(log(243) / log(3)) = 4 at t = 1210 puts the restart of cycle 5 at the end of
  // cycle 4 (lr_min); the restart is b.
  const auto spec = Spec("timm", {{"name", std::string("cosine")},
                                  {"t_initial", int64_t{10}},
                                  {"cycle_mul", 3.0},
                                  {"cycle_limit", int64_t{100}}});
  for (int64_t start : {int64_t{10}, int64_t{40}, int64_t{1210}, int64_t{295240}}) {
    EXPECT_EQ(ValueAt(spec, start, 2.0), 2.0) << start;
    EXPECT_LT(ValueAt(spec, start - 1, 2.0), 0.05) << start;  // the end of the previous cycle
  }
  // The same holds inside a span that crosses the boundary.
  const auto span = Values(spec, 1200, 20, {2.0});
  EXPECT_EQ(span[10], 2.0);
}

TEST(CatalogConventionTest, TimmNoiseIsAPureFunctionOfTheStep) {
  const auto spec = Spec(
      "timm",
      {{"name", std::string("cosine")}, {"t_initial", int64_t{100}}, {"noise_range_t", D({0})}});
  const auto noisy = Values(spec, 0, 50);
  const auto plain =
      Values(Spec("timm", {{"name", std::string("cosine")}, {"t_initial", int64_t{100}}}), 0, 50);
  int differ = 0;
  for (size_t i = 0; i < noisy.size(); ++i) {
    EXPECT_EQ(noisy[i], ValueAt(spec, static_cast<int64_t>(i)));
    EXPECT_LT(std::fabs(noisy[i] / plain[i] - 1), 0.67);
    differ += noisy[i] != plain[i];
  }
  EXPECT_EQ(differ, 50);
}

TEST(CatalogConventionTest, TimmWarmupPrefixDefaultsDifferByScheduler) {
  // step and multistep default to warmup_prefix = true, cosine to false (as in timm).
  const auto step = Spec("timm", {{"name", std::string("step")},
                                  {"decay_t", D({10})},
                                  {"decay_rate", 0.5},
                                  {"warmup_t", int64_t{5}}});
  EXPECT_EQ(ValueAt(step, 14), 1.0);
  EXPECT_EQ(ValueAt(step, 15), 0.5);
  const auto cosine =
      Spec("timm",
           {{"name", std::string("cosine")}, {"t_initial", int64_t{10}}, {"warmup_t", int64_t{5}}});
  EXPECT_DOUBLE_EQ(ValueAt(cosine, 5), 0.5 * (1 + std::cos(M_PI * 5 / 10)));
}

TEST(CatalogConventionTest, DeepSpeedStepZeroIsTheConstructorsValue) {
  // WarmupCosineLR writes 0 before its first step(); WarmupLR writes warmup_min_lr.
  const auto cosine = Spec("deepspeed", {{"name", std::string("WarmupCosineLR")},
                                         {"total_num_steps", int64_t{100}},
                                         {"warmup_num_steps", int64_t{10}},
                                         {"warmup_min_ratio", 0.5}});
  EXPECT_EQ(ValueAt(cosine, 0), 0.0);
  EXPECT_EQ(ValueAt(cosine, 1), 0.5);
  const auto warmup = Spec("deepspeed", {{"name", std::string("WarmupLR")},
                                         {"warmup_min_lr", D({0.01})},
                                         {"warmup_num_steps", int64_t{10}}});
  // Log warmup: steps 0 and 1 both at the minimum; the maximum from step W + 1 on.
  EXPECT_EQ(ValueAt(warmup, 0), 0.01);
  EXPECT_EQ(ValueAt(warmup, 1), 0.01);
  EXPECT_EQ(ValueAt(warmup, 11), 1.0);
  EXPECT_EQ(ValueAt(warmup, int64_t{1} << 52), 1.0);
  // OneCycle momentum starts at cycle_min_mom (the constructor), then the cycle starts at max.
  const auto momentum = Spec("deepspeed", {{"name", std::string("OneCycle")},
                                           {"hyperparameter", std::string("momentum")},
                                           {"cycle_min_lr", D({0.01})},
                                           {"cycle_first_step_size", int64_t{10}}});
  EXPECT_EQ(ValueAt(momentum, 0), 0.8);
  EXPECT_NEAR(ValueAt(momentum, 1), 0.89, 1e-15);
  EXPECT_EQ(ValueAt(momentum, 20), 0.9);
}

TEST(CatalogConventionTest, MegatronInverseSqrtDropsToMinAtDecaySteps) {
  const auto spec = Spec("megatron", {{"name", std::string("inverse-square-root")},
                                      {"lr_warmup_steps", int64_t{100}},
                                      {"lr_decay_steps", int64_t{400}},
                                      {"min_lr", D({0.01})}});
  EXPECT_EQ(ValueAt(spec, 100), 1.0);
  EXPECT_DOUBLE_EQ(ValueAt(spec, 400), 0.5);
  EXPECT_EQ(ValueAt(spec, 401), 0.01);
  // Per-group overrides: the second group's max_lr.
  const auto groups =
      Spec("megatron", {{"name", std::string("constant")}, {"max_lr", D({0.1, 0.2})}});
  EXPECT_EQ(Values(groups, 7, 1, {1.0, 1.0}, 1)[0], 0.2);
}

// ---------------------------------------------------------------------------------------------
// Property: every spec that compiles is finite on the whole step range.

enum class Type { kInt, kDouble, kDoubles, kBool, kString };

struct Field {
  const char* name;
  Type type;
  std::vector<std::string> choices = {};  // for kString
};

struct Library {
  const char* kind;
  std::vector<std::string> names;
  std::vector<Field> fields;
};

const std::vector<Library>& Libraries() {
  static const auto* libraries = new std::vector<Library>{
      {"timm",
       {"cosine", "tanh", "step", "multistep", "poly"},
       {{"t_initial", Type::kInt},
        {"lr_min", Type::kDoubles},
        {"cycle_mul", Type::kDouble},
        {"cycle_decay", Type::kDouble},
        {"cycle_limit", Type::kInt},
        {"warmup_t", Type::kInt},
        {"warmup_lr_init", Type::kDoubles},
        {"warmup_prefix", Type::kBool},
        {"k_decay", Type::kDouble},
        {"decay_t", Type::kDoubles},
        {"decay_rate", Type::kDouble},
        {"power", Type::kDouble},
        {"lb", Type::kDouble},
        {"ub", Type::kDouble},
        {"noise_range_t", Type::kDoubles},
        {"noise_pct", Type::kDouble},
        {"noise_std", Type::kDouble},
        {"noise_seed", Type::kInt}}},
      {"deepspeed",
       {"WarmupLR", "WarmupDecayLR", "WarmupCosineLR", "OneCycle", "LRRangeTest"},
       {{"warmup_min_lr", Type::kDoubles},
        {"warmup_max_lr", Type::kDoubles},
        {"warmup_num_steps", Type::kInt},
        {"warmup_type", Type::kString, {"log", "linear"}},
        {"total_num_steps", Type::kInt},
        {"warmup_min_ratio", Type::kDouble},
        {"cos_min_ratio", Type::kDouble},
        {"cycle_min_lr", Type::kDoubles},
        {"cycle_max_lr", Type::kDoubles},
        {"decay_lr_rate", Type::kDouble},
        {"cycle_first_step_size", Type::kInt},
        {"cycle_second_step_size", Type::kInt},
        {"cycle_first_stair_count", Type::kInt},
        {"cycle_second_stair_count", Type::kInt},
        {"decay_step_size", Type::kInt},
        {"cycle_momentum", Type::kBool},
        {"cycle_min_mom", Type::kDoubles},
        {"cycle_max_mom", Type::kDoubles},
        {"decay_mom_rate", Type::kDouble},
        {"lr_range_test_min_lr", Type::kDoubles},
        {"lr_range_test_step_size", Type::kInt},
        {"lr_range_test_step_rate", Type::kDouble},
        {"lr_range_test_staircase", Type::kBool},
        {"hyperparameter", Type::kString, {"lr", "momentum"}}}},
      {"megatron",
       {"linear", "cosine", "inverse-square-root", "WSD", "constant", "weight_decay"},
       {{"max_lr", Type::kDoubles},
        {"min_lr", Type::kDoubles},
        {"init_lr", Type::kDoubles},
        {"lr_warmup_steps", Type::kInt},
        {"lr_decay_steps", Type::kInt},
        {"wsd_decay_steps", Type::kInt},
        {"lr_wsd_decay_style", Type::kString, {"exponential", "linear", "cosine", "minus_sqrt"}},
        {"start_wd", Type::kDoubles},
        {"end_wd", Type::kDoubles},
        {"wd_incr_steps", Type::kInt},
        {"wd_incr_style", Type::kString, {"constant", "linear", "cosine"}},
        {"wd_mult", Type::kDoubles}}},
  };
  return *libraries;
}

constexpr int64_t kLast = kStepLimit - 1;

// Mostly ordinary values, and one time in five a hostile one (negative, huge, at or past 2^53).
ParamValue Sample(const Field& field, std::mt19937_64& rng) {
  static const int64_t kInts[] = {0, 1, 2, 3, 7, 10, 100, 1000, 12345};
  static const int64_t kHostileInts[] = {-1,
                                         int64_t{1} << 31,
                                         kLast,
                                         kStepLimit,
                                         kStepLimit + 1,
                                         std::numeric_limits<int64_t>::max(),
                                         std::numeric_limits<int64_t>::min()};
  static const double kDoubles[] = {0.0, 0.01, 0.1, 0.5, 0.67, 0.9, 0.999999, 1.0, 1.5, 2.0, 3.0};
  static const double kHostileDoubles[] = {-0.0,  1e-300, 1e6,  1e12, 2.0e15, 9.007199254740991e15,
                                           1e150, -1e150, -1.0, -7.0, 1.1};
  auto pick = [&](const auto& values) {
    return values[std::uniform_int_distribution<size_t>(0, std::size(values) - 1)(rng)];
  };
  const bool hostile = std::uniform_int_distribution<int>(0, 4)(rng) == 0;
  auto number = [&] { return hostile ? pick(kHostileDoubles) : pick(kDoubles); };
  switch (field.type) {
    case Type::kInt:
      return hostile ? pick(kHostileInts) : pick(kInts);
    case Type::kDouble:
      return number();
    case Type::kDoubles: {
      std::vector<double> v(std::uniform_int_distribution<int>(hostile ? 0 : 1, 3)(rng));
      for (double& x : v) x = number();
      std::sort(v.begin(), v.end());  // Mostly valid decay_t lists.
      if (hostile) std::reverse(v.begin(), v.end());
      return v;
    }
    case Type::kBool:
      return std::uniform_int_distribution<int>(0, 1)(rng) == 1;
    case Type::kString:
      if (hostile) return std::string("bogus");
      return pick(field.choices);
  }
  return int64_t{0};
}

TEST(CatalogPropertyTest, EverySpecThatCompilesIsFiniteOnTheWholeStepRange) {
  std::mt19937_64 rng(20261129);
  const std::vector<std::vector<double>> base_sets = {
      {0.1}, {1e-3, 0.5}, {1e150, -1e150, 0.0}, {0.9}};
  const int64_t fixed_steps[] = {0,
                                 1,
                                 2,
                                 3,
                                 9,
                                 10,
                                 11,
                                 99,
                                 100,
                                 101,
                                 1000,
                                 1210,
                                 4095,
                                 1000000,
                                 int64_t{1} << 31,
                                 (int64_t{1} << 31) + 1,
                                 kLast / 2,
                                 kLast - 1,
                                 kLast};
  int compiled = 0;
  int rejected = 0;
  for (int iteration = 0; iteration < 30000; ++iteration) {
    const Library& library = Libraries()[iteration % Libraries().size()];
    ScheduleSpec spec{library.kind, {}, {}};
    spec.params["name"] =
        library.names[std::uniform_int_distribution<size_t>(0, library.names.size() - 1)(rng)];
    for (const Field& field : library.fields) {
      if (std::uniform_int_distribution<int>(0, 2)(rng) == 0) {
        spec.params[field.name] = Sample(field, rng);
      }
    }
    const auto& bases = base_sets[iteration % base_sets.size()];
    auto nodes = CompileStandalone(spec, bases, "schedule");
    // Mostly drop the arguments the named scheduler does not take, so that most specs reach the
    // other rules; the message names the field to drop.
    while (!nodes.ok() && std::uniform_int_distribution<int>(0, 19)(rng) != 0) {
      const std::string message(nodes.status().message());
      const auto at = message.find(": is not a parameter of");
      if (at == std::string::npos) break;
      spec.params.erase(
          message.substr(message.rfind('.', at) + 1, at - message.rfind('.', at) - 1));
      nodes = CompileStandalone(spec, bases, "schedule");
    }
    if (!nodes.ok()) {
      ASSERT_EQ(nodes.status().code(), absl::StatusCode::kInvalidArgument) << nodes.status();
      ASSERT_THAT(std::string(nodes.status().message()),
                  ::testing::StartsWith(std::string("schedule.") + library.kind + "."));
      ++rejected;
      continue;
    }
    ++compiled;
    ExpectChainedAccepts(spec, bases);
    std::vector<int64_t> steps(std::begin(fixed_steps), std::end(fixed_steps));
    for (auto& [name, value] : spec.params) {  // Steps near every integer parameter.
      if (const auto* v = std::get_if<int64_t>(&value)) {
        for (int64_t d : {-1, 0, 1}) {
          if (*v >= 0 && *v < kStepLimit && *v + d >= 0 && *v + d < kStepLimit) {
            steps.push_back(*v + d);
          }
        }
      }
    }
    for (int k = 0; k < 8; ++k) {
      steps.push_back(std::uniform_int_distribution<int64_t>(0, kLast)(rng));
    }
    for (size_t g = 0; g < nodes->size(); ++g) {
      for (int64_t step : steps) {
        double value = 0;
        EvalQuery query{(*nodes)[g].get(), step, std::span<double>(&value, 1)};
        EvaluateBatch(std::span<const EvalQuery>(&query, 1));
        ASSERT_TRUE(std::isfinite(value))
            << "step " << step << " group " << g << " kind " << library.kind << " name "
            << std::get<std::string>(spec.params["name"]);
        ASSERT_LE(std::fabs(value), (*nodes)[g]->max_abs())
            << "step " << step << " group " << g << " kind " << library.kind << " name "
            << std::get<std::string>(spec.params["name"]);
      }
    }
  }
  std::cerr << "compiled " << compiled << ", rejected " << rejected << "\n";
  // Both outcomes are well represented.
  EXPECT_GT(compiled, 1000);
  EXPECT_GT(rejected, 1000);
}

}  // namespace
}  // namespace hpsched::core
