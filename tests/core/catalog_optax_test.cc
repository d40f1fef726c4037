// The optax kind (core/kinds/optax.cc): validation names the field and the rule, the conventions
// the golden file (tests/golden/optax_golden.json) cannot show, and a property test: every sampled
// spec that compiles gives finite values, the same alone as inside a span, up to step 2^53 - 1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "chained_checks.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/kind_registry.h"

namespace hpsched::core {
namespace {

using ::testing::HasSubstr;
using ParamMap = hpsched::core::ScheduleParams;

constexpr int64_t kLast = kStepLimit - 1;

ScheduleSpec Optax(std::string name, ParamMap params = {},
                   std::vector<ScheduleSpec> children = {}) {
  params["name"] = std::move(name);
  return ScheduleSpec{"optax", std::move(params), std::move(children)};
}

std::vector<double> D(std::initializer_list<double> values) { return values; }
std::vector<int64_t> I(std::initializer_list<int64_t> values) { return values; }

absl::Status Compile(const ScheduleSpec& spec, std::vector<double> bases = {0.1}) {
  return CompileStandalone(spec, bases, "schedule").status();
}

void ExpectInvalid(const ScheduleSpec& spec, const std::string& message,
                   std::vector<double> bases = {0.1}) {
  const absl::Status status = Compile(spec, bases);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(status.message(), message);
}

double ValueAt(const Node& node, int64_t step) {
  double value = 0;
  EvalQuery query{&node, step, std::span<double>(&value, 1)};
  EvaluateBatch(std::span<const EvalQuery>(&query, 1));
  return value;
}

// The value of group `group` at `step`.
double ValueAt(const ScheduleSpec& spec, int64_t step, std::vector<double> bases = {1.0},
               size_t group = 0) {
  auto nodes = CompileStandalone(spec, bases, "schedule");
  EXPECT_TRUE(nodes.ok()) << nodes.status();
  if (!nodes.ok()) return NAN;
  return ValueAt(*(*nodes)[group], step);
}

ScheduleSpec WarmupCosine(int64_t warmup, int64_t decay) {
  return Optax("warmup_cosine_decay_schedule",
               {{"init_value", D({0.0})}, {"warmup_steps", warmup}, {"decay_steps", decay}});
}

// Every optax function's name, as the errors list them.
constexpr char kOptaxNames[] =
    "(one of \"constant_schedule\", \"linear_schedule\", \"polynomial_schedule\", "
    "\"exponential_decay\", \"cosine_decay_schedule\", \"warmup_constant_schedule\", "
    "\"warmup_cosine_decay_schedule\", \"warmup_exponential_decay_schedule\", "
    "\"piecewise_constant_schedule\", \"piecewise_interpolate_schedule\", \"join_schedules\", "
    "\"sgdr_schedule\", \"cosine_onecycle_schedule\", \"linear_onecycle_schedule\")";

TEST(OptaxValidationTest, NameIsTheOptaxFunction) {
  const std::string names = kOptaxNames;
  ExpectInvalid(ScheduleSpec{"optax", {}, {}}, "schedule.optax.name: is required " + names);
  ExpectInvalid(Optax("cosine_decay", {{"decay_steps", int64_t{10}}}),
                "schedule.optax.name: unknown optax schedule \"cosine_decay\"; did you mean "
                "\"cosine_decay_schedule\"? " +
                    names);
  ExpectInvalid(Optax("optax.cosine_decay_schedule"),
                "schedule.optax.name: unknown optax schedule \"optax.cosine_decay_schedule\"; did "
                "you mean \"cosine_decay_schedule\"? " +
                    names);
  ExpectInvalid(Optax("exponential_decay_schedule"),
                "schedule.optax.name: unknown optax schedule \"exponential_decay_schedule\"; did "
                "you mean \"exponential_decay\"? " +
                    names);
  ExpectInvalid(Optax("join_schedule"),
                "schedule.optax.name: unknown optax schedule \"join_schedule\"; did you mean "
                "\"join_schedules\"? " +
                    names);
  ExpectInvalid(Optax("cosine_annealing"),
                "schedule.optax.name: unknown optax schedule \"cosine_annealing\" " + names);
}

TEST(OptaxValidationTest, ParametersTheFunctionDoesNotTakeAreErrors) {
  ExpectInvalid(Optax("constant_schedule", {{"decay_steps", int64_t{10}}}),
                "schedule.optax.decay_steps: is not a parameter of optax \"constant_schedule\" "
                "(it takes value)");
  ExpectInvalid(
      Optax("cosine_onecycle_schedule", {{"transition_steps", int64_t{10}}, {"pct_final", 0.9}}),
      "schedule.optax.pct_final: is not a parameter of optax \"cosine_onecycle_schedule\" (it "
      "takes transition_steps, peak_value, pct_start, div_factor, final_div_factor)");
  ExpectInvalid(Optax("join_schedules", {{"scales", D({0.5})}},
                      {Optax("constant_schedule"), Optax("constant_schedule")}),
                "schedule.optax.scales: is not a parameter of optax \"join_schedules\" (it takes "
                "boundaries, schedules)");
  ExpectInvalid(Optax("linear_schedule", {{"end_value", D({0})}, {"transition_steps", int64_t{5}}},
                      {Optax("constant_schedule")}),
                "schedule.optax.schedules: is not a parameter of optax \"linear_schedule\" (it "
                "takes init_value, end_value, transition_steps, transition_begin)");
  ExpectInvalid(Optax("sgdr_schedule", {{"boundaries", I({10})}}, {WarmupCosine(1, 10)}),
                "schedule.optax.boundaries: is not a parameter of optax \"sgdr_schedule\" (it "
                "takes schedules)");
}

TEST(OptaxValidationTest, RequiredParameters) {
  ExpectInvalid(Optax("linear_schedule", {{"transition_steps", int64_t{5}}}),
                "schedule.optax.end_value: is required");
  ExpectInvalid(Optax("linear_schedule", {{"end_value", D({0})}}),
                "schedule.optax.transition_steps: is required");
  ExpectInvalid(
      Optax("polynomial_schedule", {{"end_value", D({0})}, {"transition_steps", int64_t{5}}}),
      "schedule.optax.power: is required");
  ExpectInvalid(Optax("exponential_decay", {{"transition_steps", int64_t{5}}}),
                "schedule.optax.decay_rate: is required");
  ExpectInvalid(Optax("exponential_decay", {{"decay_rate", 0.5}}),
                "schedule.optax.transition_steps: is required");
  ExpectInvalid(Optax("cosine_decay_schedule"), "schedule.optax.decay_steps: is required");
  ExpectInvalid(Optax("warmup_cosine_decay_schedule",
                      {{"warmup_steps", int64_t{5}}, {"decay_steps", int64_t{50}}}),
                "schedule.optax.init_value: is required");
  ExpectInvalid(Optax("warmup_constant_schedule", {{"init_value", D({0})}}),
                "schedule.optax.warmup_steps: is required");
  ExpectInvalid(Optax("piecewise_interpolate_schedule"),
                "schedule.optax.interpolate_type: is required");
  ExpectInvalid(Optax("linear_onecycle_schedule"), "schedule.optax.transition_steps: is required");
  ExpectInvalid(Optax("join_schedules"),
                "schedule.optax.schedules: must have at least one schedule");
  ExpectInvalid(Optax("sgdr_schedule"),
                "schedule.optax.schedules: must have at least one schedule");
}

TEST(OptaxValidationTest, Ranges) {
  ExpectInvalid(Optax("cosine_decay_schedule", {{"decay_steps", int64_t{0}}}),
                "schedule.optax.decay_steps: must be in [1, 2^53], got 0");
  ExpectInvalid(Optax("cosine_decay_schedule", {{"decay_steps", kStepLimit + 1}}),
                "schedule.optax.decay_steps: must be in [1, 2^53], got 9007199254740993");
  ExpectInvalid(Optax("cosine_decay_schedule", {{"decay_steps", int64_t{10}}, {"exponent", -1.0}}),
                "schedule.optax.exponent: must be >= 0, got -1");
  ExpectInvalid(WarmupCosine(10, 10),
                "schedule.optax.decay_steps: must be greater than warmup_steps (10): it includes "
                "the warmup, got 10");
  ExpectInvalid(WarmupCosine(-1, 10), "schedule.optax.warmup_steps: must be in [0, 2^53], got -1");
  ExpectInvalid(Optax("polynomial_schedule",
                      {{"end_value", D({0})}, {"power", -0.5}, {"transition_steps", int64_t{5}}}),
                "schedule.optax.power: must be >= 0, got -0.5");
  ExpectInvalid(Optax("linear_schedule", {{"end_value", D({0})},
                                          {"transition_steps", int64_t{5}},
                                          {"transition_begin", -kStepLimit - 1}}),
                "schedule.optax.transition_begin: must be in [-2^53, 2^53], got -9007199254740993");
  ExpectInvalid(
      Optax("exponential_decay", {{"transition_steps", int64_t{5}}, {"decay_rate", -0.5}}),
      "schedule.optax.decay_rate: must be >= 0, got -0.5");
  ExpectInvalid(
      Optax("piecewise_interpolate_schedule", {{"interpolate_type", std::string("cos")}}),
      "schedule.optax.interpolate_type: must be one of \"linear\", \"cosine\", got \"cos\"");
  ExpectInvalid(Optax("cosine_onecycle_schedule", {{"transition_steps", int64_t{0}}}),
                "schedule.optax.transition_steps: must be in [1, 2^53], got 0");
  ExpectInvalid(
      Optax("cosine_onecycle_schedule", {{"transition_steps", int64_t{10}}, {"pct_start", 1.5}}),
      "schedule.optax.pct_start: must be between 0 and 1, got 1.5");
  ExpectInvalid(
      Optax("linear_onecycle_schedule", {{"transition_steps", int64_t{10}}, {"pct_final", -0.1}}),
      "schedule.optax.pct_final: must be between 0 and 1, got -0.1");
  ExpectInvalid(
      Optax("linear_onecycle_schedule", {{"transition_steps", int64_t{10}}, {"div_factor", 0.0}}),
      "schedule.optax.div_factor: must be > 0, got 0");
  ExpectInvalid(Optax("linear_onecycle_schedule",
                      {{"transition_steps", int64_t{10}}, {"final_div_factor", -2.0}}),
                "schedule.optax.final_div_factor: must be > 0, got -2");
}

TEST(OptaxValidationTest, BoundariesAndScales) {
  ExpectInvalid(
      Optax("piecewise_constant_schedule", {{"boundaries", I({10, 20})}, {"scales", D({0.5})}}),
      "schedule.optax.scales: must have one value per boundary (2), got 1");
  ExpectInvalid(Optax("piecewise_constant_schedule",
                      {{"boundaries", I({10, 20, 10})}, {"scales", D({0.5, 0.5, 0.5})}}),
                "schedule.optax.boundaries[2]: repeats boundaries[0] (10): optax's "
                "boundaries_and_scales is a dict");
  ExpectInvalid(
      Optax("piecewise_interpolate_schedule", {{"interpolate_type", std::string("linear")},
                                               {"boundaries", I({-1})},
                                               {"scales", D({0.5})}}),
      "schedule.optax.boundaries[0]: must be in [0, 2^53], got -1");
  ExpectInvalid(Optax("piecewise_constant_schedule",
                      {{"boundaries", I({10, 20})}, {"scales", D({0.5, -0.5})}}),
                "schedule.optax.scales[1]: must be >= 0, as in optax, got -0.5");
  ExpectInvalid(
      Optax("piecewise_constant_schedule",
            {{"init_value", D({1e100})}, {"boundaries", I({10, 20})}, {"scales", D({1e40, 1e40})}}),
      "schedule.optax.scales: gives the value 1e+180 from step 20 on; every value must "
      "be within +-1e150");
  ExpectInvalid(
      Optax("cosine_onecycle_schedule",
            {{"transition_steps", int64_t{10}}, {"peak_value", D({1e150})}, {"div_factor", 1e-10}}),
      "schedule.optax.div_factor: gives the start value 1e+160; every value must be "
      "within +-1e150");
}

TEST(OptaxValidationTest, JoinAndSgdr) {
  const ScheduleSpec one = Optax("constant_schedule", {{"value", D({1})}});
  ExpectInvalid(Optax("join_schedules", {{"boundaries", I({5, 3})}}, {one, one, one}),
                "schedule.optax.boundaries[1]: must be in [5, 2^53] (non-decreasing), got 3");
  ExpectInvalid(Optax("join_schedules", {{"boundaries", I({-1})}}, {one, one}),
                "schedule.optax.boundaries[0]: must be in [0, 2^53] (non-decreasing), got -1");
  ExpectInvalid(Optax("join_schedules", {}, {one, one}),
                "schedule.optax.boundaries: must have one fewer value than schedules (1), got 0");
  ExpectInvalid(Optax("join_schedules", {{"boundaries", I({5})}},
                      {one, Optax("cosine_decay_schedule", {{"decay_steps", int64_t{0}}})}),
                "schedule.optax.schedules[1].optax.decay_steps: must be in [1, 2^53], got 0");
  ExpectInvalid(Optax("sgdr_schedule", {}, {WarmupCosine(1, 10), one}),
                "schedule.optax.schedules[1]: each cycle must be an optax "
                "warmup_cosine_decay_schedule (optax's cosine_kwargs)");
  ExpectInvalid(Optax("sgdr_schedule", {}, {ScheduleSpec{"step", {{"step_size", int64_t{3}}}, {}}}),
                "schedule.optax.schedules[0]: each cycle must be an optax "
                "warmup_cosine_decay_schedule (optax's cosine_kwargs)");
  ExpectInvalid(Optax("sgdr_schedule", {}, {WarmupCosine(1, 10), WarmupCosine(5, 5)}),
                "schedule.optax.schedules[1].optax.decay_steps: must be greater than warmup_steps "
                "(5): it includes the warmup, got 5");
}

TEST(OptaxValidationTest, PerGroupValuesAndFiniteness) {
  ExpectInvalid(Optax("constant_schedule", {{"value", D({0.1, 0.2, 0.3})}}),
                "schedule.optax.value: must have 1 value or one per parameter group (2), got 3",
                {0.1, 0.01});
  ExpectInvalid(
      Optax("cosine_decay_schedule", {{"init_value", D({NAN})}, {"decay_steps", int64_t{5}}}),
      "schedule.optax.init_value[0]: must be finite, got nan");
  // decay_rate > 1 overflows before step 2^53 unless end_value caps it.
  ExpectInvalid(
      Optax("exponential_decay", {{"transition_steps", int64_t{10}}, {"decay_rate", 1.5}}),
      "schedule.optax.decay_rate: must keep the value finite up to step 2^53 - 1 (it "
      "reaches inf; set end_value to cap it), got 1.5");
  EXPECT_TRUE(Compile(Optax("exponential_decay", {{"transition_steps", int64_t{10}},
                                                  {"decay_rate", 1.5},
                                                  {"end_value", D({2.0})}}))
                  .ok());
  // ... and 0 * inf would be NaN where optax gives it too.
  ExpectInvalid(Optax("exponential_decay", {{"init_value", D({0.0})},
                                            {"transition_steps", int64_t{10}},
                                            {"decay_rate", 1.5},
                                            {"end_value", D({2.0})}}),
                "schedule.optax.decay_rate: must keep the value finite up to step 2^53 - 1 (it "
                "reaches nan; set end_value to cap it), got 1.5");
  // alpha = end_value / peak_value must stay bounded (the base value may be tiny).
  ExpectInvalid(Optax("warmup_cosine_decay_schedule", {{"init_value", D({0})},
                                                       {"warmup_steps", int64_t{1}},
                                                       {"decay_steps", int64_t{10}},
                                                       {"end_value", D({1.0})}}),
                "schedule.optax.end_value: must keep end_value / peak_value within +-1e150, got 1 "
                "/ 4.94066e-324",
                {5e-324});
}

TEST(OptaxSemanticsTest, UnsetValuesAreTheBaseValuePerGroup) {
  const std::vector<double> bases = {0.1, 0.02};
  const auto cosine = Optax("cosine_decay_schedule", {{"decay_steps", int64_t{10}}});
  EXPECT_EQ(ValueAt(cosine, 0, bases, 0), 0.1);
  EXPECT_EQ(ValueAt(cosine, 0, bases, 1), 0.02);
  const auto onecycle = Optax("cosine_onecycle_schedule", {{"transition_steps", int64_t{100}}});
  EXPECT_DOUBLE_EQ(ValueAt(onecycle, 30, bases, 1), 0.02);
  // Per-group absolute values replace the base value; one value applies to every group.
  const auto constant = Optax("constant_schedule", {{"value", D({3.0, 4.0})}});
  EXPECT_EQ(ValueAt(constant, 7, bases, 0), 3.0);
  EXPECT_EQ(ValueAt(constant, 7, bases, 1), 4.0);
}

TEST(OptaxSemanticsTest, JoinRunsChildrenOnLocalTime) {
  const auto linear =
      Optax("linear_schedule",
            {{"init_value", D({0})}, {"end_value", D({10})}, {"transition_steps", int64_t{10}}});
  const auto join = Optax("join_schedules", {{"boundaries", I({5, 8})}},
                          {Optax("constant_schedule", {{"value", D({-1})}}), linear, linear});
  EXPECT_EQ(ValueAt(join, 4), -1);
  EXPECT_EQ(ValueAt(join, 5), 0);  // A boundary belongs to the schedule it starts.
  EXPECT_EQ(ValueAt(join, 7), 2);
  EXPECT_EQ(ValueAt(join, 8), 0);
  EXPECT_EQ(ValueAt(join, 12), 4);
  EXPECT_EQ(ValueAt(join, kLast), 10);
}

TEST(OptaxSemanticsTest, SgdrCyclesStartAtTheSumsOfDecaySteps) {
  const auto sgdr = Optax("sgdr_schedule", {}, {WarmupCosine(2, 10), WarmupCosine(0, 20)});
  EXPECT_EQ(ValueAt(sgdr, 0), 0);   // Warmup start of cycle 0.
  EXPECT_EQ(ValueAt(sgdr, 2), 1);   // Its peak (the base value).
  EXPECT_EQ(ValueAt(sgdr, 10), 1);  // Cycle 1 starts at 10, without warmup.
  EXPECT_NEAR(ValueAt(sgdr, 20), 0.5, 1e-15);
  EXPECT_EQ(ValueAt(sgdr, 30), 0);
  EXPECT_EQ(ValueAt(sgdr, kLast), 0);
}

TEST(OptaxSemanticsTest, QuirksKeptFromOptax) {
  // transition_steps <= 0: the constant init_value; end_value is not even looked at.
  EXPECT_EQ(
      ValueAt(Optax("exponential_decay",
                    {{"transition_steps", int64_t{0}}, {"decay_rate", 0.5}, {"end_value", D({7})}}),
              100),
      1.0);
  // end_value clips the initial value too.
  EXPECT_EQ(
      ValueAt(Optax("exponential_decay",
                    {{"transition_steps", int64_t{5}}, {"decay_rate", 0.5}, {"end_value", D({2})}}),
              0),
      2.0);
  // warmup_constant with no warmup stays at init_value (linear_schedule with 0 steps).
  EXPECT_EQ(ValueAt(Optax("warmup_constant_schedule",
                          {{"init_value", D({0.25})}, {"warmup_steps", int64_t{0}}}),
                    1000),
            0.25);
  // Scales multiply cumulatively; boundaries are sorted like the dict's keys.
  const auto piecewise = Optax("piecewise_constant_schedule",
                               {{"boundaries", I({20, 10})}, {"scales", D({0.5, 0.1})}});
  EXPECT_EQ(ValueAt(piecewise, 9), 1.0);
  EXPECT_EQ(ValueAt(piecewise, 10), 0.1);
  EXPECT_EQ(ValueAt(piecewise, 20), 0.1 * 0.5);
}

// ---- Property test: sampled valid specs are finite everywhere. ----

class Sampler {
 public:
  explicit Sampler(uint32_t seed) : rng_(seed) {}

  template <typename T>
  T Pick(const std::vector<T>& values) {
    return values[std::uniform_int_distribution<size_t>(0, values.size() - 1)(rng_)];
  }
  bool Coin() { return std::uniform_int_distribution<int>(0, 1)(rng_) == 1; }

  ScheduleSpec Spec(int depth) {
    static const std::vector<std::string> kNames = {"constant_schedule",
                                                    "linear_schedule",
                                                    "polynomial_schedule",
                                                    "exponential_decay",
                                                    "cosine_decay_schedule",
                                                    "warmup_constant_schedule",
                                                    "warmup_cosine_decay_schedule",
                                                    "warmup_exponential_decay_schedule",
                                                    "piecewise_constant_schedule",
                                                    "piecewise_interpolate_schedule",
                                                    "cosine_onecycle_schedule",
                                                    "linear_onecycle_schedule",
                                                    "join_schedules",
                                                    "sgdr_schedule"};
    // Below depth 2, no more composites: the nesting stays bounded.
    const size_t last = depth >= 2 ? kNames.size() - 3 : kNames.size() - 1;
    const std::string name = kNames[std::uniform_int_distribution<size_t>(0, last)(rng_)];
    ParamMap params;
    const std::vector<double> absolute = {0, 0.1, 1, -0.5, 3.7, 1e150, -1e150, 1e-300, 5e-324};
    const std::vector<int64_t> steps = {
        -5, 0, 1, 2, 10, 1000, int64_t{1} << 31, kStepLimit / 3, kStepLimit, -kStepLimit};
    for (const char* p : {"value", "init_value", "end_value", "peak_value"}) {
      if (Coin()) params[p] = std::vector<double>{Pick(absolute)};
    }
    for (const char* p : {"transition_steps", "transition_begin", "decay_steps", "warmup_steps"}) {
      if (Coin()) params[p] = Pick(steps);
    }
    if (Coin()) params["power"] = Pick<double>({0, 0.5, 1, 2, 1e150, 1e-300});
    if (Coin()) params["exponent"] = Pick<double>({0, 0.5, 1, 3, 1e150, 1e-300});
    if (Coin()) params["decay_rate"] = Pick<double>({0, 1e-300, 0.5, 0.999, 1, 1.001, 2, 1e150});
    if (Coin()) params["alpha"] = Pick<double>({0, 0.1, -1, 1e150, -1e150});
    if (Coin()) params["staircase"] = Coin();
    if (Coin()) params["pct_start"] = Pick<double>({0, 0.3, 0.999, 1});
    if (Coin()) params["pct_final"] = Pick<double>({0, 0.85, 1});
    if (Coin()) params["div_factor"] = Pick<double>({1e-300, 0.5, 25, 1e150});
    if (Coin()) params["final_div_factor"] = Pick<double>({1e-300, 0.5, 1e4, 1e150});
    if (Coin()) params["interpolate_type"] = Pick<std::string>({"linear", "cosine"});
    const int n = std::uniform_int_distribution<int>(0, 3)(rng_);
    std::vector<int64_t> boundaries;
    std::vector<double> scales;
    for (int i = 0; i < n; ++i) {
      boundaries.push_back(Pick<int64_t>({0, 1, 5, 7, 1000, int64_t{1} << 31, kStepLimit}));
      scales.push_back(Pick<double>({0, 0.5, 2, 1e150, 1e-300}));
    }
    std::sort(boundaries.begin(), boundaries.end());
    if (!boundaries.empty()) {
      params["boundaries"] = boundaries;
      params["scales"] = scales;
    }
    // Keep the parameters the function takes.
    ScheduleSpec spec = Optax(name, params);
    auto probe = Compile(spec);
    const std::string prefix = "schedule.optax.";
    while (!probe.ok() && absl::StrContains(probe.message(), "is not a parameter")) {
      const std::string field(
          probe.message().substr(prefix.size(), probe.message().find(':') - prefix.size()));
      spec.params.erase(field);
      probe = Compile(spec);
    }
    if (name == "join_schedules" || name == "sgdr_schedule") {
      spec.params.erase("scales");
      if (name == "sgdr_schedule") spec.params.erase("boundaries");
      const int children = depth > 1 ? 1 : std::uniform_int_distribution<int>(1, 3)(rng_);
      for (int i = 0; i < children; ++i) {
        spec.children.push_back(name == "sgdr_schedule"
                                    ? WarmupCosine(Pick<int64_t>({0, 3}), Pick<int64_t>({5, 1000}))
                                    : Spec(depth + 1));
      }
      if (name == "join_schedules") {
        std::vector<int64_t> b;
        for (int i = 1; i < children; ++i) b.push_back(Pick<int64_t>({0, 3, 10, kStepLimit}));
        std::sort(b.begin(), b.end());
        spec.params.erase("boundaries");
        if (!b.empty()) spec.params["boundaries"] = b;
      }
    }
    return spec;
  }

 private:
  std::mt19937 rng_;
};

TEST(OptaxPropertyTest, EveryValidSpecIsFiniteEverywhere) {
  Sampler sampler(20261129);
  int valid = 0;
  std::map<std::string, int> valid_names;
  const std::vector<std::vector<double>> base_sets = {{0.1}, {1e150, -1e150}, {5e-324, 0.0, 0.5}};
  for (int i = 0; i < 4000; ++i) {
    const ScheduleSpec spec = sampler.Spec(0);
    const std::vector<double>& bases = base_sets[i % base_sets.size()];
    auto nodes = CompileStandalone(spec, bases, "schedule");
    if (!nodes.ok()) {
      EXPECT_EQ(nodes.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(nodes.status().message(), HasSubstr("schedule.optax"));
      continue;
    }
    ++valid;
    ++valid_names[std::get<std::string>(spec.params.at("name"))];
    ExpectChainedAccepts(spec, bases);
    std::vector<int64_t> steps = {0,
                                  1,
                                  2,
                                  3,
                                  5,
                                  6,
                                  7,
                                  9,
                                  10,
                                  11,
                                  999,
                                  1000,
                                  1001,
                                  (int64_t{1} << 31) - 1,
                                  int64_t{1} << 31,
                                  kStepLimit / 3,
                                  int64_t{1} << 52,
                                  kLast - 1,
                                  kLast};
    for (const auto& [name, value] : spec.params) {
      if (const auto* v = std::get_if<int64_t>(&value)) steps.push_back(*v);
      if (const auto* v = std::get_if<std::vector<int64_t>>(&value)) {
        steps.insert(steps.end(), v->begin(), v->end());
      }
    }
    for (const auto& node : *nodes) {
      for (int64_t s : steps) {
        for (int64_t t = std::max<int64_t>(0, s - 1); t <= std::min(kLast, s + 1); ++t) {
          const double value = ValueAt(*node, t);
          ASSERT_TRUE(std::isfinite(value)) << "step " << t << " value " << value;
          ASSERT_LE(std::fabs(value), node->max_abs()) << "step " << t;
        }
      }
      // A span across the sampled steps gives the values of one-at-a-time evaluation.
      std::vector<double> span(64);
      const int64_t start = std::min<int64_t>(steps[i % steps.size()], kStepLimit - 64);
      EvalQuery query{node.get(), start, span};
      EvaluateBatch(std::span<const EvalQuery>(&query, 1));
      for (size_t k = 0; k < span.size(); ++k) {
        ASSERT_EQ(span[k], ValueAt(*node, start + static_cast<int64_t>(k)));
      }
    }
  }
  EXPECT_GT(valid, 1000);
  // Every function is among the valid specs.
  EXPECT_EQ(valid_names.size(), 14u);
  for (const auto& [name, count] : valid_names) EXPECT_GE(count, 10) << name;
}

}  // namespace
}  // namespace hpsched::core
