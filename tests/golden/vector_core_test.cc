// The vector math path against the scalar reference (docs/catalog.md, "Accuracy of the vector
// path"), on every instruction set this CPU and binary support: every golden case of every
// reference library, and a randomized sweep of parameters and steps of the vectorized kinds and
// their compositions. Each value is within 1e-12 relative of the scalar evaluator's, or within 4
// ULP of the node's scale (its proven bound max_abs(), the largest magnitude its parameters give)
// where the formula cancels; the vector values still match the reference libraries; a step gives
// the same bits alone as inside any span.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "codec/proto_convert.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/vector_math.h"
#include "golden/golden_util.h"

namespace hpsched {
namespace {

using core::ScheduleSpec;

ScheduleSpec Spec(std::string kind, hpsched::core::ScheduleParams params,
                  std::vector<ScheduleSpec> children = {}) {
  return ScheduleSpec{std::move(kind), std::move(params), std::move(children)};
}

// The accuracy contract of the vector path.
bool WithinContract(double scalar, double vector, double scale) {
  if (scalar == vector) return true;
  const double error = std::fabs(vector - scalar);
  if (error <= 1e-12 * std::fabs(scalar)) return true;
  const double ulp = std::nextafter(scale, std::numeric_limits<double>::infinity()) - scale;
  return error <= 4 * ulp;
}

void Evaluate(const core::Evaluator& evaluator, const core::Node& node, int64_t start,
              std::span<double> out) {
  const core::EvalQuery query{&node, start, out};
  evaluator.Evaluate(std::span<const core::EvalQuery>(&query, 1));
}

// Compares one node's span on both paths, and single steps of the vector path with the span.
void CheckSpan(const core::Node& node, int64_t start, size_t count, std::mt19937_64& rng) {
  static const core::ScalarEvaluator scalar;
  static const core::VectorEvaluator vector;
  std::vector<double> reference(count);
  std::vector<double> fast(count);
  Evaluate(scalar, node, start, reference);
  Evaluate(vector, node, start, fast);
  for (size_t i = 0; i < count; ++i) {
    ASSERT_TRUE(WithinContract(reference[i], fast[i], node.max_abs()))
        << "step " << start + static_cast<int64_t>(i) << ": scalar " << reference[i] << ", vector "
        << fast[i] << ", scale " << node.max_abs() << " [" << core::VectorTargetName() << "]";
  }
  // Every step of a short span, 16 random steps of a long one: each alone, through the tail code
  // (SLEEF's 2-lane variants where the full vectors are wider).
  const size_t checks = count <= 48 ? count : 16;
  for (size_t k = 0; k < checks; ++k) {
    const size_t i = count <= 48 ? k : std::uniform_int_distribution<size_t>(0, count - 1)(rng);
    double one = 0;
    Evaluate(vector, node, start + static_cast<int64_t>(i), std::span<double>(&one, 1));
    ASSERT_EQ(one, fast[i]) << "step " << start + static_cast<int64_t>(i) << " ["
                            << core::VectorTargetName() << "]";
  }
}

// Runs `check` once per vector target (the dispatch restricted to it), then lifts the restriction.
template <typename F>
void ForEachTarget(F&& check) {
  for (int64_t target : core::AvailableVectorTargets()) {
    core::RestrictVectorTarget(target);
    SCOPED_TRACE(core::VectorTargetName());
    check();
    if (::testing::Test::HasFatalFailure()) break;
  }
  core::RestrictVectorTarget(0);
}

TEST(VectorCoreTest, TheBestTargetIsAVectorTarget) {
  const std::string name = core::VectorTargetName();
  EXPECT_FALSE(core::AvailableVectorTargets().empty());
  // This project builds and runs on x86-64 machines with at least SSE4.
  EXPECT_TRUE(name == "AVX3" || name == "AVX2" || name == "SSE4" || name == "AVX3_DL")
      << "vector path on " << name;
}

TEST(VectorCoreTest, EvaluatorFlagNamesThePaths) {
  EXPECT_EQ(*core::ParseEvaluatorPath("vector", "--evaluator"),
            core::EvaluatorOptions::Path::kVector);
  EXPECT_EQ(*core::ParseEvaluatorPath("scalar", "--evaluator"),
            core::EvaluatorOptions::Path::kScalar);
  const auto bad = core::ParseEvaluatorPath("avx2", "--evaluator");
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "--evaluator: must be \"vector\" or \"scalar\", got \"avx2\"");
}

// The scalar evaluator is the reference as it was before the vector path: PyTorch's closed form
// with libm's cos, bit for bit; MakeEvaluator gives each path.
TEST(VectorCoreTest, ScalarEvaluatorIsTheLibmFormula) {
  auto nodes = core::CompileStandalone(
      Spec("cosine_annealing", {{"t_max", int64_t{1000}}, {"eta_min", 0.001}}),
      std::vector<double>{0.1}, "schedule");
  ASSERT_TRUE(nodes.ok());
  core::EvaluatorOptions options;
  options.path = core::EvaluatorOptions::Path::kScalar;
  const auto scalar = core::MakeEvaluator(options);
  options.path = core::EvaluatorOptions::Path::kVector;
  const auto vector = core::MakeEvaluator(options);
  std::vector<double> reference(2000);
  std::vector<double> fast(2000);
  Evaluate(*scalar, *(*nodes)[0], 0, reference);
  Evaluate(*vector, *(*nodes)[0], 0, fast);
  int differ = 0;
  for (int64_t t = 0; t < 2000; ++t) {
    const double libm =
        0.001 +
        (0.1 - 0.001) * (1 + std::cos(std::numbers::pi * static_cast<double>(t) / 1000)) / 2;
    ASSERT_EQ(reference[static_cast<size_t>(t)], libm) << "step " << t;
    differ += fast[static_cast<size_t>(t)] != libm;
  }
  // Where SLEEF's vector cos is available, some values round differently from libm's.
  if (core::VectorTargetName() == "AVX2" || core::VectorTargetName() == "AVX3") {
    EXPECT_GT(differ, 0);
  }
}

TEST(VectorCoreTest, EveryGoldenCaseWithinContractAndStillMatchesTheReferenceLibrary) {
  const std::vector<golden::GoldenFile> files = testing::LoadAllGoldens();
  std::mt19937_64 rng(11);
  ForEachTarget([&] {
    int points = 0;
    for (const auto& file : files) {
      for (const auto& c : file.cases()) {
        SCOPED_TRACE(c.name() + ": " + c.reference());
        const std::vector<double> bases(c.base_values().begin(), c.base_values().end());
        auto nodes = core::CompileStandalone(codec::ScheduleFromProto(c.schedule()), bases,
                                             "schedule", testing::Hyperparameter(c));
        ASSERT_TRUE(nodes.ok()) << nodes.status();
        const core::VectorEvaluator vector;
        for (const auto& point : c.points()) {
          for (size_t g = 0; g < bases.size(); ++g) {
            double value = 0;
            Evaluate(vector, *(*nodes)[g], point.step(), std::span<double>(&value, 1));
            ASSERT_TRUE(testing::GoldenClose(point.values(g), value, testing::Scale(c)))
                << "step " << point.step() << " group " << g << ": reference " << point.values(g)
                << ", vector " << value;
            ++points;
          }
          // Spans around the point, across milestones and restarts, on both paths.
          CheckSpan(*(*nodes)[0], std::max<int64_t>(0, point.step() - 37), 131, rng);
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
    }
    EXPECT_GT(points, 1000);
  });
}

// A random spec of a vectorized kind or a composition of them (case 8 is the default).
ScheduleSpec RandomSpec(std::mt19937_64& rng) {
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto integer = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto log_integer = [&](double lo_exp, double hi_exp) {
    return static_cast<int64_t>(std::pow(10.0, uniform(lo_exp, hi_exp)));
  };
  auto cosine = [&] {
    return Spec("cosine_annealing", {{"t_max", std::max<int64_t>(1, log_integer(0, 7))},
                                     {"eta_min", integer(0, 2) == 0 ? 0.0 : uniform(0, 1e-2)}});
  };
  switch (integer(0, 13)) {
    case 0:
      return cosine();
    case 1:
      return Spec("cosine_annealing_warm_restarts",
                  {{"t_0", std::max<int64_t>(1, log_integer(0, 5))},
                   {"t_mult", integer(1, 3)},
                   {"eta_min", integer(0, 1) == 0 ? 0.0 : uniform(0, 1e-3)}});
    case 2:
      return Spec("linear", {{"start_factor", uniform(1e-3, 1)},
                             {"end_factor", uniform(0, 1)},
                             {"total_iters", std::max<int64_t>(1, log_integer(0, 6))}});
    case 3:
      return Spec("exponential", {{"gamma", uniform(0.5, 1)}});
    case 4:
      return Spec("polynomial", {{"total_iters", std::max<int64_t>(1, log_integer(0, 6))},
                                 {"power", uniform(0, 4)}});
    case 5: {
      const bool three_phase = integer(0, 1) == 1;
      return Spec("one_cycle", {{"total_steps", std::max<int64_t>(10, log_integer(1, 7))},
                                {"pct_start", uniform(0.05, three_phase ? 0.5 : 0.95)},
                                {"anneal_strategy", std::string(integer(0, 1) ? "cos" : "linear")},
                                {"three_phase", three_phase}});
    }
    case 6: {
      const int64_t warmup = std::max<int64_t>(1, log_integer(0, 4));
      return Spec("sequential", {{"milestones", std::vector<int64_t>{warmup}}},
                  {Spec("linear", {{"start_factor", uniform(1e-3, 1)}, {"total_iters", warmup}}),
                   cosine()});
    }
    case 7:
      return Spec("chained", {}, {Spec("exponential", {{"gamma", uniform(0.9, 1)}}), cosine()});
    // The library kinds whose formulas take their cos through the vector kernel.
    case 9: {
      const int64_t warmup = log_integer(0, 4);
      return Spec("transformers", {{"name", std::string("cosine")},
                                   {"num_warmup_steps", warmup},
                                   {"num_training_steps", warmup + log_integer(0, 6) + 1}});
    }
    case 10:
      return Spec("deepspeed", {{"name", std::string("WarmupCosineLR")},
                                {"total_num_steps", log_integer(1, 6) + 10},
                                {"warmup_num_steps", log_integer(0, 1)}});
    case 11: {
      const int64_t warmup = log_integer(0, 3);
      return Spec("megatron", {{"name", std::string("cosine")},
                               {"max_lr", std::vector<double>{uniform(1e-4, 1)}},
                               {"min_lr", std::vector<double>{0.0}},
                               {"lr_warmup_steps", warmup},
                               {"lr_decay_steps", warmup + log_integer(0, 6) + 1}});
    }
    case 12:
      return Spec("optax", {{"name", std::string("cosine_decay_schedule")},
                            {"init_value", std::vector<double>{uniform(1e-4, 1)}},
                            {"decay_steps", log_integer(0, 6) + 1},
                            {"alpha", uniform(0, 0.5)}});
    case 13:
      return Spec("keras", {{"name", std::string("CosineDecay")},
                            {"initial_learning_rate", std::vector<double>{uniform(1e-4, 1)}},
                            {"decay_steps", static_cast<double>(log_integer(0, 6) + 1)}});
    default:
      return Spec("sequential", {{"milestones", std::vector<int64_t>{log_integer(0, 5)}}},
                  {Spec("polynomial", {{"total_iters", log_integer(0, 5) + 1}, {"power", 2.0}}),
                   Spec("cosine_annealing_warm_restarts", {{"t_0", log_integer(0, 4) + 1}})});
  }
}

TEST(VectorCoreTest, RandomizedSweepWithinContractAndSpanIndependent) {
  std::mt19937_64 rng(20261202);
  ForEachTarget([&] {
    for (int trial = 0; trial < 2500; ++trial) {
      const ScheduleSpec spec = RandomSpec(rng);
      const double base = std::pow(10.0, std::uniform_real_distribution<double>(-8, 3)(rng));
      auto nodes = core::CompileStandalone(spec, std::vector<double>{base}, "schedule");
      ASSERT_TRUE(nodes.ok()) << spec.kind << ": " << nodes.status();
      SCOPED_TRACE(spec.kind.str() + " trial " + std::to_string(trial));
      // Mostly the schedule's working range, sometimes far out (huge cosine arguments).
      const int64_t start =
          trial % 10 == 0 ? std::uniform_int_distribution<int64_t>(0, core::kStepLimit - 1000)(rng)
                          : std::uniform_int_distribution<int64_t>(0, 3'000'000)(rng);
      const size_t count = std::uniform_int_distribution<size_t>(1, 700)(rng);
      CheckSpan(*(*nodes)[0], start, count, rng);
      if (::testing::Test::HasFatalFailure()) return;
    }
  });
}

// Spans whose lanes straddle cosine's range-reduction thresholds (|x| of 15 and 1e14) still give
// each step the bits it has alone.
TEST(VectorCoreTest, LanesAcrossRangeReductionBranchesAreIndependent) {
  std::mt19937_64 rng(3);
  ForEachTarget([&] {
    for (int64_t t_max : {1, 3, 7}) {
      auto nodes = core::CompileStandalone(Spec("cosine_annealing", {{"t_max", t_max}}),
                                           std::vector<double>{1.0}, "schedule");
      ASSERT_TRUE(nodes.ok());
      for (int64_t start : {int64_t{0}, int64_t{1}, int64_t{30}, int64_t{31'830'988'618'379},
                            core::kStepLimit - 64}) {
        CheckSpan(*(*nodes)[0], start, 64, rng);
      }
    }
  });
}

// Cases the schedule fuzzer found (tests/fuzz/schedule_fuzzer.cc: "batched == one-at-a-time"): each
// span's steps equal the same steps alone, on every target and on the scalar path.
TEST(VectorCoreTest, FuzzerFindingsAreSpanIndependent) {
  struct Case {
    ScheduleSpec spec;
    std::vector<double> bases;
    int64_t start;
    size_t count;
  };
  const Case cases[] = {
      {Spec("exponential", {{"gamma", 0.999}}),
       {4.9406564584124654e-324, 0.01},
       1696907598565269,
       70},
      {Spec("exponential", {{"gamma", 0.999}}), {4.9406564584124654e-324, 0.01}, 0, 300},
      {Spec("cosine_annealing_warm_restarts", {{"t_0", int64_t{10}}, {"t_mult", int64_t{3}}}),
       {1.0, 1.0},
       0,
       300},
  };
  std::mt19937_64 rng(11);
  for (const Case& c : cases) {
    auto nodes = core::CompileStandalone(c.spec, c.bases, "schedule");
    ASSERT_TRUE(nodes.ok()) << nodes.status();
    SCOPED_TRACE(c.spec.kind.str() + " from " + std::to_string(c.start));
    for (const auto& node : *nodes) {
      ForEachTarget([&] { CheckSpan(*node, c.start, c.count, rng); });
      // The scalar path: each step alone equals the span.
      static const core::ScalarEvaluator scalar;
      std::vector<double> span(c.count);
      Evaluate(scalar, *node, c.start, span);
      for (size_t i = 0; i < c.count; ++i) {
        double one = 0;
        Evaluate(scalar, *node, c.start + static_cast<int64_t>(i), std::span<double>(&one, 1));
        ASSERT_EQ(one, span[i]) << "scalar path, step " << c.start + static_cast<int64_t>(i);
      }
    }
  }
}

}  // namespace
}  // namespace hpsched
