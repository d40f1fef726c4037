// The `transformers` and `keras` kinds: validation (an argument the named schedule does not take,
// missing required arguments, out-of-range values; errors name the field and the rule), the
// library quirks the golden files show only in passing, and finiteness of every valid spec over
// the whole step range.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/kind_registry.h"

namespace hpsched::core {
namespace {

using Params = hpsched::core::ScheduleParams;

constexpr int64_t kLast = kStepLimit - 1;

ScheduleSpec Spec(std::string kind, Params params) {
  return ScheduleSpec{std::move(kind), std::move(params), {}};
}
ScheduleSpec Hf(Params params) { return Spec("transformers", std::move(params)); }
ScheduleSpec Keras(Params params) { return Spec("keras", std::move(params)); }

absl::Status Compile(const ScheduleSpec& spec, std::vector<double> bases = {0.1}) {
  return CompileStandalone(spec, bases, "schedule").status();
}

void ExpectInvalid(const ScheduleSpec& spec, const std::string& message,
                   std::vector<double> bases = {0.1}) {
  const absl::Status status = Compile(spec, std::move(bases));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(std::string(status.message()), message);
}

// The values of group `group` at `steps`, each evaluated alone.
std::vector<double> At(const ScheduleSpec& spec, const std::vector<int64_t>& steps,
                       std::vector<double> bases = {1.0}, size_t group = 0) {
  auto nodes = CompileStandalone(spec, bases, "schedule");
  EXPECT_TRUE(nodes.ok()) << nodes.status();
  std::vector<double> out(steps.size());
  if (!nodes.ok()) return out;
  for (size_t i = 0; i < steps.size(); ++i) {
    EvalQuery query{(*nodes)[group].get(), steps[i], std::span<double>(&out[i], 1)};
    EvaluateBatch(std::span<const EvalQuery>(&query, 1));
  }
  return out;
}

// --- transformers: validation
// ---------------------------------------------------------------------

TEST(TransformersValidationTest, NameIsRequiredAndSpelledLikeHf) {
  ExpectInvalid(Hf({}),
                "schedule.transformers.name: is required (one of \"linear\", \"cosine\", "
                "\"cosine_with_restarts\", \"polynomial\", \"constant\", \"constant_with_warmup\", "
                "\"inverse_sqrt\", \"cosine_with_min_lr\", \"cosine_warmup_with_min_lr\", "
                "\"warmup_stable_decay\")");
  ExpectInvalid(Hf({{"name", std::string("Cosine")}}),
                "schedule.transformers.name: unknown transformers schedule \"Cosine\"; did you "
                "mean \"cosine\"? (one of \"linear\", \"cosine\", "
                "\"cosine_with_restarts\", \"polynomial\", \"constant\", \"constant_with_warmup\", "
                "\"inverse_sqrt\", \"cosine_with_min_lr\", \"cosine_warmup_with_min_lr\", "
                "\"warmup_stable_decay\")");
  ExpectInvalid(Hf({{"name", std::string("reduce_lr_on_plateau")}}),
                "schedule.transformers.name: unknown transformers schedule "
                "\"reduce_lr_on_plateau\" (one of \"linear\", \"cosine\", "
                "\"cosine_with_restarts\", \"polynomial\", \"constant\", \"constant_with_warmup\", "
                "\"inverse_sqrt\", \"cosine_with_min_lr\", \"cosine_warmup_with_min_lr\", "
                "\"warmup_stable_decay\")");
  ExpectInvalid(Hf({{"name", int64_t{3}}}), "schedule.transformers.name: must be a string");
}

TEST(TransformersValidationTest, AnArgumentTheSchedulerDoesNotTakeIsAnError) {
  ExpectInvalid(
      Hf({{"name", std::string("constant")}, {"num_warmup_steps", int64_t{10}}}),
      "schedule.transformers.num_warmup_steps: is not a parameter of transformers \"constant\" (it "
      "takes none)");
  ExpectInvalid(
      Hf({{"name", std::string("linear")},
          {"num_warmup_steps", int64_t{10}},
          {"num_training_steps", int64_t{100}},
          {"num_cycles", 0.5}}),
      "schedule.transformers.num_cycles: is not a parameter of transformers \"linear\" (it takes "
      "num_warmup_steps, num_training_steps)");
  ExpectInvalid(Hf({{"name", std::string("constant_with_warmup")},
                    {"num_warmup_steps", int64_t{10}},
                    {"num_training_steps", int64_t{100}}}),
                "schedule.transformers.num_training_steps: is not a parameter of "
                "transformers \"constant_with_warmup\" (it takes num_warmup_steps)");
  ExpectInvalid(
      Hf({{"name", std::string("cosine")},
          {"num_warmup_steps", int64_t{10}},
          {"num_training_steps", int64_t{100}},
          {"min_lr_rate", 0.1}}),
      "schedule.transformers.min_lr_rate: is not a parameter of transformers \"cosine\" (it takes "
      "num_warmup_steps, num_training_steps, num_cycles)");
  ExpectInvalid(
      Hf({{"name", std::string("warmup_stable_decay")},
          {"num_warmup_steps", int64_t{10}},
          {"num_training_steps", int64_t{100}},
          {"num_decay_steps", int64_t{10}},
          {"power", 2.0}}),
      "schedule.transformers.power: is not a parameter of transformers \"warmup_stable_decay\" (it "
      "takes num_warmup_steps, num_decay_steps, num_training_steps, num_stable_steps, "
      "warmup_type, decay_type, min_lr_ratio, num_cycles)");
}

TEST(TransformersValidationTest, RequiredArgumentsAsHfRaises) {
  ExpectInvalid(Hf({{"name", std::string("linear")}, {"num_warmup_steps", int64_t{10}}}),
                "schedule.transformers.num_training_steps: is required");
  ExpectInvalid(Hf({{"name", std::string("cosine")}, {"num_training_steps", int64_t{10}}}),
                "schedule.transformers.num_warmup_steps: is required");
  ExpectInvalid(Hf({{"name", std::string("inverse_sqrt")}}),
                "schedule.transformers.num_warmup_steps: is required");
  ExpectInvalid(Hf({{"name", std::string("warmup_stable_decay")},
                    {"num_warmup_steps", int64_t{10}},
                    {"num_training_steps", int64_t{100}}}),
                "schedule.transformers.num_decay_steps: is required");
  ExpectInvalid(Hf({{"name", std::string("warmup_stable_decay")},
                    {"num_warmup_steps", int64_t{10}},
                    {"num_decay_steps", int64_t{10}}}),
                "schedule.transformers.num_stable_steps: is required: set num_stable_steps or "
                "num_training_steps (HF raises otherwise)");
  const Params cosine_min = {{"name", std::string("cosine_with_min_lr")},
                             {"num_warmup_steps", int64_t{10}},
                             {"num_training_steps", int64_t{100}}};
  ExpectInvalid(Hf(cosine_min),
                "schedule.transformers.min_lr_rate: is required: set min_lr_rate or min_lr (HF "
                "raises otherwise)");
  Params both = cosine_min;
  both["min_lr"] = std::vector<double>{0.001};
  both["min_lr_rate"] = 0.1;
  ExpectInvalid(Hf(both),
                "schedule.transformers.min_lr: only one of min_lr and min_lr_rate may be set (HF "
                "raises otherwise)");
}

TEST(TransformersValidationTest, Ranges) {
  auto linear = [](int64_t warmup, int64_t training) {
    return Hf({{"name", std::string("linear")},
               {"num_warmup_steps", warmup},
               {"num_training_steps", training}});
  };
  ExpectInvalid(linear(-1, 100),
                "schedule.transformers.num_warmup_steps: must be >= 0 and <= 2^53, got -1");
  ExpectInvalid(linear(0, kStepLimit + 1),
                "schedule.transformers.num_training_steps: must be >= 0 and <= 2^53, got "
                "9007199254740993");
  EXPECT_TRUE(Compile(linear(kStepLimit, kStepLimit)).ok());
  ExpectInvalid(Hf({{"name", std::string("linear")},
                    {"num_warmup_steps", 10.0},
                    {"num_training_steps", int64_t{100}}}),
                "schedule.transformers.num_warmup_steps: must be an integer");

  const Params poly = {{"name", std::string("polynomial")},
                       {"num_warmup_steps", int64_t{10}},
                       {"num_training_steps", int64_t{10}}};
  ExpectInvalid(Hf(poly),
                "schedule.transformers.num_training_steps: must differ from num_warmup_steps (HF "
                "divides by their difference at step num_training_steps), got 10");
  Params poly_end = poly;
  poly_end["num_training_steps"] = int64_t{100};
  poly_end["lr_end"] = std::vector<double>{0.01};
  ExpectInvalid(Hf(poly_end),
                "schedule.transformers.lr_end: must be smaller than the group's base value (HF "
                "raises otherwise), got lr_end 0.01 and base value 0.01 for group 1",
                {0.1, 0.01});
  EXPECT_TRUE(Compile(Hf(poly_end), {0.1, 0.02}).ok());
  Params poly_negative_end = poly_end;
  poly_negative_end["lr_end"] = std::vector<double>{-1.0};
  ExpectInvalid(Hf(poly_negative_end),
                "schedule.transformers.lr_end: HF divides it by the group's base value, which "
                "gives -1 / 1e-310 for group 0: the base value must be nonzero and the ratio "
                "finite",
                {1e-310});
  Params poly_power = poly_end;
  poly_power["power"] = -1.0;
  ExpectInvalid(Hf(poly_power), "schedule.transformers.power: must be >= 0, got -1");

  ExpectInvalid(Hf({{"name", std::string("inverse_sqrt")},
                    {"num_warmup_steps", int64_t{0}},
                    {"timescale", int64_t{0}}}),
                "schedule.transformers.timescale: must be > 0 and <= 2^53, got 0");
  ExpectInvalid(Hf({{"name", std::string("cosine_with_restarts")},
                    {"num_warmup_steps", int64_t{0}},
                    {"num_training_steps", int64_t{100}},
                    {"num_cycles", -2.0}}),
                "schedule.transformers.num_cycles: must be >= 0, got -2");
  ExpectInvalid(Hf({{"name", std::string("cosine_with_min_lr")},
                    {"num_warmup_steps", int64_t{10}},
                    {"num_training_steps", int64_t{100}},
                    {"min_lr", std::vector<double>{0.001}}}),
                "schedule.transformers.min_lr: HF divides it by the group's base value, which "
                "gives 0.001 / 0 for group 0: the base value must be nonzero and the ratio finite",
                {0.0});
  ExpectInvalid(Hf({{"name", std::string("warmup_stable_decay")},
                    {"num_warmup_steps", int64_t{10}},
                    {"num_training_steps", int64_t{100}},
                    {"num_decay_steps", int64_t{95}}}),
                "schedule.transformers.num_training_steps: must be >= num_warmup_steps + "
                "num_decay_steps (105) so that the stable phase is not negative, got 100");
  ExpectInvalid(Hf({{"name", std::string("warmup_stable_decay")},
                    {"num_warmup_steps", int64_t{10}},
                    {"num_stable_steps", int64_t{100}},
                    {"num_decay_steps", int64_t{10}},
                    {"decay_type", std::string("sqrt")}}),
                "schedule.transformers.decay_type: must be one of \"linear\", \"cosine\", "
                "\"1-sqrt\", got \"sqrt\"");
}

// --- transformers: HF's quirks ------------------------------------------------------------------

TEST(TransformersSemanticsTest, WarmupStartsAtZero) {
  const auto spec = Hf({{"name", std::string("linear")},
                        {"num_warmup_steps", int64_t{10}},
                        {"num_training_steps", int64_t{100}}});
  EXPECT_EQ(At(spec, {0, 5, 10, 55, 100, 200}, {0.1}),
            (std::vector<double>{0.0, 0.1 * 0.5, 0.1, 0.1 * 0.5, 0.0, 0.0}));
}

TEST(TransformersSemanticsTest, CosineRisesAgainPastTheEnd) {
  const auto spec = Hf({{"name", std::string("cosine")},
                        {"num_warmup_steps", int64_t{10}},
                        {"num_training_steps", int64_t{100}}});
  const std::vector<double> v = At(spec, {100, 145, 190});
  EXPECT_NEAR(v[0], 0.0, 1e-15);
  EXPECT_NEAR(v[1], 0.5, 1e-15);
  EXPECT_NEAR(v[2], 1.0, 1e-15);
}

TEST(TransformersSemanticsTest, PolynomialEndsAtLrEndForEveryGroup) {
  const auto spec = Hf({{"name", std::string("polynomial")},
                        {"num_warmup_steps", int64_t{0}},
                        {"num_training_steps", int64_t{10}},
                        {"lr_end", std::vector<double>{0.001}}});
  for (size_t g = 0; g < 2; ++g) {
    const std::vector<double> v = At(spec, {0, 10, 11, kLast}, {0.1, 0.01}, g);
    EXPECT_DOUBLE_EQ(v[0], g == 0 ? 0.1 : 0.01);
    for (size_t i = 1; i < v.size(); ++i) EXPECT_DOUBLE_EQ(v[i], 0.001);
  }
}

TEST(TransformersSemanticsTest, WarmupStableDecayPhases) {
  const auto spec = Hf({{"name", std::string("warmup_stable_decay")},
                        {"num_warmup_steps", int64_t{10}},
                        {"num_training_steps", int64_t{100}},
                        {"num_decay_steps", int64_t{20}},
                        {"decay_type", std::string("linear")},
                        {"min_lr_ratio", 0.1}});
  const std::vector<double> v = At(spec, {0, 10, 79, 80, 90, 100, 1000});
  EXPECT_DOUBLE_EQ(v[0], 0.1);
  EXPECT_DOUBLE_EQ(v[1], 1.0);
  EXPECT_DOUBLE_EQ(v[2], 1.0);
  EXPECT_DOUBLE_EQ(v[3], 1.0);
  EXPECT_DOUBLE_EQ(v[4], 0.55);
  EXPECT_DOUBLE_EQ(v[5], 0.1);
  EXPECT_DOUBLE_EQ(v[6], 0.1);
}

// --- keras: validation
// ----------------------------------------------------------------------------

TEST(KerasValidationTest, NamesAreKerasClassNames) {
  ExpectInvalid(Keras({{"name", std::string("cosine_decay")}}),
                "schedule.keras.name: unknown keras schedule \"cosine_decay\"; did you mean "
                "\"CosineDecay\"? (one of \"ExponentialDecay\", \"PiecewiseConstantDecay\", "
                "\"PolynomialDecay\", \"InverseTimeDecay\", \"CosineDecay\", "
                "\"CosineDecayRestarts\")");
  ExpectInvalid(Keras({{"decay_steps", 10.0}}),
                "schedule.keras.name: is required (one of \"ExponentialDecay\", "
                "\"PiecewiseConstantDecay\", \"PolynomialDecay\", \"InverseTimeDecay\", "
                "\"CosineDecay\", \"CosineDecayRestarts\")");
}

TEST(KerasValidationTest, AnArgumentTheClassDoesNotTakeIsAnError) {
  ExpectInvalid(
      Keras({{"name", std::string("CosineDecay")}, {"decay_steps", 100.0}, {"staircase", true}}),
      "schedule.keras.staircase: is not a parameter of keras \"CosineDecay\" (it takes "
      "initial_learning_rate, decay_steps, alpha, warmup_target, warmup_steps)");
  ExpectInvalid(Keras({{"name", std::string("PiecewiseConstantDecay")},
                       {"boundaries", std::vector<int64_t>{10}},
                       {"values", std::vector<double>{1, 0.1}},
                       {"initial_learning_rate", std::vector<double>{1}}}),
                "schedule.keras.initial_learning_rate: is not a parameter of "
                "keras \"PiecewiseConstantDecay\" (it takes boundaries, values)");
  ExpectInvalid(
      Keras({{"name", std::string("CosineDecay")}, {"decay_steps", 100.0}, {"warmup_steps", 10.0}}),
      "schedule.keras.warmup_steps: has no effect without warmup_target (Keras ignores "
      "it): set warmup_target, the value the warmup rises to");
}

TEST(KerasValidationTest, RequiredArguments) {
  ExpectInvalid(Keras({{"name", std::string("ExponentialDecay")}, {"decay_steps", 10.0}}),
                "schedule.keras.decay_rate: is required");
  ExpectInvalid(Keras({{"name", std::string("PolynomialDecay")}}),
                "schedule.keras.decay_steps: is required");
  ExpectInvalid(Keras({{"name", std::string("CosineDecayRestarts")}}),
                "schedule.keras.first_decay_steps: is required");
  ExpectInvalid(
      Keras({{"name", std::string("PiecewiseConstantDecay")}, {"values", std::vector<double>{1}}}),
      "schedule.keras.boundaries: must have at least one boundary (Keras fails without "
      "one)");
}

TEST(KerasValidationTest, Ranges) {
  ExpectInvalid(
      Keras({{"name", std::string("InverseTimeDecay")}, {"decay_steps", 0.0}, {"decay_rate", 0.5}}),
      "schedule.keras.decay_steps: must be > 0, got 0");
  ExpectInvalid(
      Keras(
          {{"name", std::string("InverseTimeDecay")}, {"decay_steps", 1.0}, {"decay_rate", -0.5}}),
      "schedule.keras.decay_rate: must be >= 0, got -0.5");
  ExpectInvalid(Keras({{"name", std::string("ExponentialDecay")},
                       {"decay_steps", 1000.0},
                       {"decay_rate", 1.01}}),
                "schedule.keras.decay_rate: grows the value past the largest double before step "
                "2^53 - 1 (1.01 ^ (step / 1000) with initial value 0.1)");
  EXPECT_TRUE(Compile(Keras({{"name", std::string("ExponentialDecay")},
                             {"decay_steps", 1e14},
                             {"decay_rate", 1.5}}))
                  .ok());
  ExpectInvalid(
      Keras({{"name", std::string("PolynomialDecay")}, {"decay_steps", 10.0}, {"power", -1.0}}),
      "schedule.keras.power: must be >= 0, got -1");
  ExpectInvalid(Keras({{"name", std::string("PiecewiseConstantDecay")},
                       {"boundaries", std::vector<int64_t>{10, 10}},
                       {"values", std::vector<double>{1, 0.5, 0.1}}}),
                "schedule.keras.boundaries[1]: must be greater than 10 (boundaries are strictly "
                "increasing), got 10");
  ExpectInvalid(Keras({{"name", std::string("PiecewiseConstantDecay")},
                       {"boundaries", std::vector<int64_t>{10, 20}},
                       {"values", std::vector<double>{1, 0.5}}}),
                "schedule.keras.values: must have len(boundaries) + 1 = 3 values, or that many "
                "per parameter group (6 for 2 groups), got 2",
                {0.1, 0.2});
  ExpectInvalid(Keras({{"name", std::string("CosineDecay")},
                       {"decay_steps", 10.0},
                       {"warmup_target", std::vector<double>{1}},
                       {"warmup_steps", -1.0}}),
                "schedule.keras.warmup_steps: must be >= 0, got -1");
  ExpectInvalid(Keras({{"name", std::string("CosineDecay")},
                       {"decay_steps", 10.0},
                       {"warmup_target", std::vector<double>{1, 2}}}),
                "schedule.keras.warmup_target: must have 1 value or one per parameter group (3), "
                "got 2",
                {0.1, 0.2, 0.3});
  ExpectInvalid(Keras({{"name", std::string("CosineDecayRestarts")},
                       {"first_decay_steps", 10.0},
                       {"t_mul", 0.5}}),
                "schedule.keras.t_mul: must be >= 1 (below 1 the cycles add up to "
                "first_decay_steps / (1 - t_mul) steps, past which Keras gives NaN), got 0.5");
  ExpectInvalid(Keras({{"name", std::string("CosineDecayRestarts")},
                       {"first_decay_steps", 10.0},
                       {"m_mul", -0.5}}),
                "schedule.keras.m_mul: must be >= 0, got -0.5");
  ExpectInvalid(Keras({{"name", std::string("CosineDecayRestarts")},
                       {"first_decay_steps", 10.0},
                       {"t_mul", 1.0},
                       {"m_mul", 1.5}}),
                "schedule.keras.m_mul: grows the peak past the largest double before step 2^53 - "
                "1 (1.5 ^ 9.0072e+14)");
  ExpectInvalid(Keras({{"name", std::string("CosineDecayRestarts")},
                       {"first_decay_steps", 1e-150},
                       {"t_mul", 1e150}}),
                "schedule.keras.t_mul: with first_decay_steps 1e-150, the restart arithmetic "
                "overflows before step 2^53 - 1");
}

// --- keras: semantics
// -----------------------------------------------------------------------------

TEST(KerasSemanticsTest, ABoundaryBelongsToTheEarlierSegment) {
  const auto spec = Keras({{"name", std::string("PiecewiseConstantDecay")},
                           {"boundaries", std::vector<int64_t>{10, 20}},
                           {"values", std::vector<double>{1.0, 0.5, 0.1, 2.0, 1.0, 0.2}}});
  EXPECT_EQ(At(spec, {0, 10, 11, 20, 21, kLast}, {7, 8}, 0),
            (std::vector<double>{1.0, 1.0, 0.5, 0.5, 0.1, 0.1}));
  EXPECT_EQ(At(spec, {0, 10, 11, 20, 21, kLast}, {7, 8}, 1),
            (std::vector<double>{2.0, 2.0, 1.0, 1.0, 0.2, 0.2}));
}

TEST(KerasSemanticsTest, InitialLearningRateDefaultsToTheBaseValue) {
  const auto spec = Keras({{"name", std::string("CosineDecay")}, {"decay_steps", 100.0}});
  EXPECT_EQ(At(spec, {0}, {0.3, 0.7}, 0)[0], 0.3);
  EXPECT_EQ(At(spec, {0}, {0.3, 0.7}, 1)[0], 0.7);
  const auto warmup = Keras({{"name", std::string("CosineDecay")},
                             {"decay_steps", 100.0},
                             {"initial_learning_rate", std::vector<double>{0.0}},
                             {"warmup_target", std::vector<double>{1.0}},
                             {"warmup_steps", 10.0}});
  EXPECT_EQ(At(warmup, {0, 5, 10, 110, kLast}, {0.3}),
            (std::vector<double>{0.0, 0.5, 1.0, 0.0, 0.0}));
}

// Keras finds the cycle with log(1 - f * (1 - t_mul)) / log(t_mul), which lands on the wrong side
// of some restarts: t_mul = 3 gives the end of the previous cycle (the floor, alpha) at steps 121
// (first_decay_steps 1) and 1210 (first_decay_steps 10). hpsched restarts there.
TEST(KerasSemanticsTest, RestartsAreAtTheirStep) {
  const auto spec = Keras({{"name", std::string("CosineDecayRestarts")},
                           {"first_decay_steps", 1.0},
                           {"t_mul", 3.0},
                           {"alpha", 0.25}});
  int64_t start = 0;
  int64_t length = 1;
  while (start + length < kStepLimit) {
    // The last step of a cycle of `length` steps is at fraction (length - 1) / length.
    const double fraction = static_cast<double>(length - 1) / static_cast<double>(length);
    const double end_of_cycle = (1 - 0.25) * (0.5 * (1.0 + std::cos(M_PI * fraction))) + 0.25;
    start += length;
    length *= 3;
    const std::vector<double> v = At(spec, {start - 1, start});
    EXPECT_NEAR(v[0], end_of_cycle, 1e-12) << "end of the cycle before step " << start;
    EXPECT_EQ(v[1], 1.0) << "restart at step " << start;
  }
  const auto tens = Keras(
      {{"name", std::string("CosineDecayRestarts")}, {"first_decay_steps", 10.0}, {"t_mul", 3.0}});
  EXPECT_EQ(At(tens, {1210, 295240}), (std::vector<double>{1.0, 1.0}));
}

// --- both: every spec that compiles is finite over [0, 2^53)
// ----------------------------------------

std::string Describe(const ScheduleSpec& spec) {
  std::string out = spec.kind.str() + " {";
  for (const auto& [key, value] : spec.params) {
    out += " " + key + "=";
    if (const auto* s = std::get_if<std::string>(&value)) out += *s;
    if (const auto* b = std::get_if<bool>(&value)) out += *b ? "true" : "false";
    if (const auto* i = std::get_if<int64_t>(&value)) out += std::to_string(*i);
    if (const auto* d = std::get_if<double>(&value)) out += std::to_string(*d);
    if (const auto* v = std::get_if<std::vector<int64_t>>(&value)) {
      for (int64_t x : *v) out += std::to_string(x) + ",";
    }
    if (const auto* v = std::get_if<std::vector<double>>(&value)) {
      for (double x : *v) out += std::to_string(x) + ",";
    }
  }
  return out + " }";
}

class SpecSampler {
 public:
  explicit SpecSampler(uint32_t seed) : rng_(seed) {}

  ScheduleSpec Transformers() {
    static const char* kNames[] = {"linear",
                                   "cosine",
                                   "cosine_with_restarts",
                                   "polynomial",
                                   "constant",
                                   "constant_with_warmup",
                                   "inverse_sqrt",
                                   "cosine_with_min_lr",
                                   "cosine_warmup_with_min_lr",
                                   "warmup_stable_decay"};
    Params p = {{"name", std::string(Pick(kNames))}};
    const std::string name = std::get<std::string>(p["name"]);
    if (name != "constant") p["num_warmup_steps"] = StepCount();
    if (Coin()) p["num_training_steps"] = StepCount();
    if (Coin()) p["num_cycles"] = Real();
    if (Coin()) p["lr_end"] = std::vector<double>{Real()};
    if (Coin()) p["power"] = Real();
    if (Coin()) p["timescale"] = StepCount();
    if (Coin()) {
      p["min_lr"] = std::vector<double>{Real()};
    } else {
      p["min_lr_rate"] = Real();
    }
    if (Coin()) p["warmup_lr_rate"] = Real();
    if (Coin()) p["num_stable_steps"] = StepCount();
    if (Coin()) p["num_decay_steps"] = StepCount();
    if (Coin()) p["warmup_type"] = std::string(Pick({"linear", "cosine", "1-sqrt"}));
    if (Coin()) p["decay_type"] = std::string(Pick({"linear", "cosine", "1-sqrt"}));
    if (Coin()) p["min_lr_ratio"] = Real();
    return Hf(Keep("transformers", std::move(p), name));
  }

  ScheduleSpec KerasSpec() {
    static const char* kNames[] = {"ExponentialDecay", "PiecewiseConstantDecay",
                                   "PolynomialDecay",  "InverseTimeDecay",
                                   "CosineDecay",      "CosineDecayRestarts"};
    Params p = {{"name", std::string(Pick(kNames))}};
    const std::string name = std::get<std::string>(p["name"]);
    if (Coin()) p["initial_learning_rate"] = std::vector<double>{Real()};
    p["decay_steps"] = Real();
    p["decay_rate"] = Real();
    if (Coin()) p["staircase"] = Coin();
    p["boundaries"] = std::vector<int64_t>{StepCount(), kStepLimit - 2};
    p["values"] = std::vector<double>{Real(), Real(), Real()};
    if (Coin()) p["end_learning_rate"] = std::vector<double>{Real()};
    if (Coin()) p["power"] = Real();
    if (Coin()) p["cycle"] = Coin();
    if (Coin()) p["alpha"] = Real();
    if (Coin()) {
      p["warmup_target"] = std::vector<double>{Real()};
      p["warmup_steps"] = Real();
    }
    p["first_decay_steps"] = Real();
    if (Coin()) p["t_mul"] = Real();
    if (Coin()) p["m_mul"] = Real();
    return Keras(Keep("keras", std::move(p), name));
  }

  double Base() { return Pick({1.0, 0.1, 3e-4, 1e-300, -0.5, 1e150, 5e-324}); }

 private:
  // The parameters `name` takes (read from the error the kind gives for one it does not take).
  static Params Keep(const std::string& kind, Params p, const std::string& kind_name) {
    Params kept;
    for (auto& [key, value] : p) {
      Params probe = {{"name", kind_name}, {key, value}};
      const absl::Status status =
          CompileStandalone(Spec(kind, probe), std::vector<double>{1.0}, "schedule").status();
      if (key == "name" || status.message().find("is not a parameter of") == std::string::npos) {
        kept[key] = value;
      }
    }
    return kept;
  }

  bool Coin() { return std::bernoulli_distribution(0.5)(rng_); }

  template <typename T>
  T Pick(std::initializer_list<T> options) {
    std::uniform_int_distribution<size_t> d(0, options.size() - 1);
    return *(options.begin() + d(rng_));
  }
  template <typename T, size_t N>
  T Pick(T (&options)[N]) {
    std::uniform_int_distribution<size_t> d(0, N - 1);
    return options[d(rng_)];
  }

  int64_t StepCount() {
    return Pick({int64_t{0}, int64_t{1}, int64_t{2}, int64_t{10}, int64_t{100}, int64_t{1000},
                 int64_t{1} << 31, kStepLimit - 1, kStepLimit});
  }
  double Real() {
    return Pick({0.0, 1.0, 0.5, 2.0, 0.999, 1.0001, 3.0, 10.0, 1e-150, 1e150, -1.0, -1e150, 1e-7,
                 100.0, 7.5});
  }

  std::mt19937 rng_;
};

TEST(CatalogFinitenessTest, EveryValidSpecIsFiniteOverTheStepRange) {
  SpecSampler sampler(20261129);
  int compiled = 0;
  std::map<std::string, int> compiled_by_name;
  for (int i = 0; i < 4000; ++i) {
    const ScheduleSpec spec = i % 2 == 0 ? sampler.Transformers() : sampler.KerasSpec();
    const std::vector<double> bases = {sampler.Base(), sampler.Base()};
    auto nodes = CompileStandalone(spec, bases, "schedule");
    if (!nodes.ok()) {
      EXPECT_EQ(nodes.status().code(), absl::StatusCode::kInvalidArgument);
      continue;
    }
    ++compiled;
    ++compiled_by_name[std::get<std::string>(spec.params.at("name"))];
    for (const NodePtr& node : *nodes) {
      for (int64_t start : {int64_t{0}, int64_t{9}, int64_t{98}, int64_t{998}, int64_t{1} << 31,
                            kStepLimit / 3, kStepLimit - 64}) {
        std::vector<double> out(64);
        EvalQuery query{node.get(), start, out};
        EvaluateBatch(std::span<const EvalQuery>(&query, 1));
        for (size_t k = 0; k < out.size(); ++k) {
          ASSERT_TRUE(std::isfinite(out[k]))
              << Describe(spec) << " bases " << bases[0] << ", " << bases[1] << " step "
              << start + static_cast<int64_t>(k) << " = " << out[k];
          ASSERT_LE(std::fabs(out[k]), node->max_abs())
              << Describe(spec) << " step " << start + static_cast<int64_t>(k);
        }
      }
    }
  }
  EXPECT_GT(compiled, 800);
  // Every schedule of both libraries is sampled.
  EXPECT_EQ(compiled_by_name.size(), 16u);
  for (const auto& [name, count] : compiled_by_name) EXPECT_GE(count, 10) << name;
}

}  // namespace
}  // namespace hpsched::core
