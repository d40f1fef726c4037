// PyTorch beyond v1: `multiplicative` (MultiplicativeLR) and its running-product checkpoints, the
// momentum / beta1 curves of `cyclic` and `one_cycle`, and CosineAnnealingWarmRestarts at its
// restart boundaries. Golden values from real PyTorch are in tests/golden/torch_extra_golden.json.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/kinds/running_product.h"

namespace hpsched::core {
namespace {

using kinds::FactorSequence;
using kinds::RunningProduct;
using ::testing::HasSubstr;
using ::testing::StartsWith;

ScheduleSpec Spec(std::string kind, hpsched::core::ScheduleParams params = {}) {
  return ScheduleSpec{std::move(kind), std::move(params), {}};
}

absl::Status Compile(const ScheduleSpec& spec, std::vector<double> bases = {0.1},
                     std::string hyperparameter = "lr") {
  return CompileStandalone(spec, bases, "schedule", hyperparameter).status();
}

std::vector<double> Values(const ScheduleSpec& spec, int64_t start, size_t count,
                           std::vector<double> bases = {1.0}, std::string hyperparameter = "lr",
                           size_t group = 0) {
  auto nodes = CompileStandalone(spec, bases, "schedule", hyperparameter);
  EXPECT_TRUE(nodes.ok()) << nodes.status();
  std::vector<double> out(count);
  if (!nodes.ok()) return out;
  EvalQuery query{(*nodes)[group].get(), start, out};
  EvaluateBatch(std::span<const EvalQuery>(&query, 1));
  return out;
}

// f(t) = 1 - 1e-6 * (t % 7), counting every factor it gives.
class CountingFactors final : public FactorSequence {
 public:
  explicit CountingFactors(std::atomic<int64_t>* count) : count_(count) {}
  void Evaluate(int64_t first, std::span<double> out) const override {
    for (size_t i = 0; i < out.size(); ++i) out[i] = Factor(first + static_cast<int64_t>(i));
    count_->fetch_add(static_cast<int64_t>(out.size()), std::memory_order_relaxed);
  }
  static double Factor(int64_t t) { return 1 - 1e-6 * static_cast<double>(t % 7); }

 private:
  std::atomic<int64_t>* count_;
};

// PyTorch's loop: value(t) = value(t - 1) * f(t), from b.
std::vector<double> NaiveProduct(double base, int64_t horizon, int64_t steps) {
  std::vector<double> values(steps);
  double value = base;
  for (int64_t t = 0; t < steps; ++t) {
    if (t > 0 && t <= horizon) value *= CountingFactors::Factor(t);
    values[t] = value;
  }
  return values;
}

// A product of CountingFactors over [1, horizon], counting factor evaluations in `count`.
RunningProduct CountingProduct(double base, int64_t horizon, std::atomic<int64_t>* count) {
  auto product =
      RunningProduct::Build(base, std::make_unique<CountingFactors>(count), {.horizon = horizon});
  EXPECT_TRUE(product.ok()) << product.status();
  return *std::move(product);
}

double One(const RunningProduct& product, int64_t step) {
  double value = 0;
  product.Evaluate(step, std::span<double>(&value, 1));
  return value;
}

TEST(RunningProductTest, EqualsPyTorchsLoopBitForBitInEveryChunking) {
  std::atomic<int64_t> count{0};
  constexpr int64_t kHorizon = 50'000;
  const RunningProduct product = CountingProduct(0.1, kHorizon, &count);
  EXPECT_EQ(count.load(), kHorizon);  // The compile-time pass, once.
  const auto naive = NaiveProduct(0.1, kHorizon, kHorizon + 100);
  for (int64_t t : {int64_t{0}, int64_t{1}, int64_t{63}, int64_t{64}, int64_t{65}, int64_t{4097},
                    kHorizon - 1, kHorizon, kHorizon + 1, kHorizon + 99}) {
    EXPECT_EQ(One(product, t), naive[t]) << t;
  }
  std::vector<double> span(kHorizon + 100);
  product.Evaluate(0, span);
  EXPECT_EQ(span, naive);
  std::vector<double> window(777);
  for (int64_t start = 12'345; start + 777 < kHorizon + 100; start += 9'999) {
    product.Evaluate(start, window);
    for (size_t i = 0; i < window.size(); ++i) ASSERT_EQ(window[i], naive[start + i]) << start + i;
  }
  EXPECT_EQ(One(product, kStepLimit - 1), naive[kHorizon]);
}

TEST(RunningProductTest, AForwardReaderPaysOneFactorPerStep) {
  std::atomic<int64_t> count{0};
  constexpr int64_t kHorizon = 1'000'000;
  const RunningProduct product = CountingProduct(1.0, kHorizon, &count);
  // Bounded memory: at most kMaxCheckpoints, so the interval grows with the horizon.
  EXPECT_GE(product.interval() * RunningProduct::kMaxCheckpoints, kHorizon);
  EXPECT_LE(product.interval(), 2 * kHorizon / RunningProduct::kMaxCheckpoints);

  // A cold step costs at most one interval of factors.
  count = 0;
  One(product, 777'777);
  EXPECT_LE(count.load(), product.interval());

  // One step at a time, forward: one factor per step (plus at most one interval to start).
  count = 0;
  constexpr int64_t kFrom = 300'001;
  constexpr int64_t kSteps = 20'000;
  for (int64_t t = kFrom; t < kFrom + kSteps; ++t) One(product, t);
  EXPECT_LE(count.load(), kSteps + product.interval());

  // Windows, forward: one factor per step too.
  count = 0;
  std::vector<double> window(100);
  for (int64_t t = 600'000; t < 600'000 + kSteps; t += 100) product.Evaluate(t, window);
  EXPECT_LE(count.load(), kSteps + product.interval());
}

TEST(RunningProductTest, ConcurrentReadersGetIdenticalValues) {
  std::atomic<int64_t> count{0};
  constexpr int64_t kHorizon = 200'000;
  const RunningProduct product = CountingProduct(0.5, kHorizon, &count);
  const auto naive = NaiveProduct(0.5, kHorizon, kHorizon + 10);
  std::atomic<int64_t> mismatches{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 6; ++r) {
    threads.emplace_back([&, r] {
      // Each reader moves forward through its own stretch with its own window size, and jumps.
      const int64_t window_size = 1 + 17 * r;
      std::vector<double> window(window_size);
      int64_t t = 1'000 * r;
      for (int i = 0; i < 3'000 && t + window_size <= kHorizon + 10; ++i) {
        product.Evaluate(t, window);
        for (int64_t k = 0; k < window_size; ++k) {
          if (window[k] != naive[t + k]) ++mismatches;
        }
        t += (i % 500 == 499) ? 20'011 : window_size;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(RunningProductTest, ValidatesEveryFactorAndValue) {
  class Explodes final : public FactorSequence {
   public:
    void Evaluate(int64_t first, std::span<double> out) const override {
      for (size_t i = 0; i < out.size(); ++i) {
        out[i] = first + static_cast<int64_t>(i) == 300 ? INFINITY : 4.0;
      }
    }
  };
  EXPECT_EQ(RunningProduct::Build(1.0, std::make_unique<Explodes>(), {.horizon = 249}).status(),
            absl::OkStatus());
  EXPECT_EQ(RunningProduct::Build(1e-100, std::make_unique<Explodes>(), {.horizon = 1000})
                .status()
                .message(),
            "the factor is not finite at step 300 (got inf)");
  EXPECT_EQ(std::string(RunningProduct::Build(1.0, std::make_unique<Explodes>(), {.horizon = 1000})
                            .status()
                            .message()),
            "the value leaves +-1e150 at step 250 (got 3.273390607896142e+150)");
}

// ---------------------------------------------------------------------------------------------
// multiplicative

ScheduleSpec Multiplicative(std::string lr_lambda, std::optional<int64_t> total_iters = {}) {
  ScheduleSpec spec = Spec("multiplicative", {{"lr_lambda", std::move(lr_lambda)}});
  if (total_iters) spec.params["total_iters"] = *total_iters;
  return spec;
}

TEST(MultiplicativeTest, ConstantFactorsSettleAndHoldExactly) {
  // 0.95 from 0.1 reaches a fixed point among the subnormals (9 x 2^-1074, as 9 x 0.95 rounds
  // back to 9) after some 14,500 steps; PyTorch's values are then that forever, so every step is
  // exact without a horizon.
  const auto spec = Multiplicative("0.95");
  double value = 0.1;
  std::vector<double> naive(20'000);
  for (size_t t = 0; t < naive.size(); ++t) {
    if (t > 0) value *= 0.95;
    naive[t] = value;
  }
  EXPECT_EQ(Values(spec, 0, naive.size(), {0.1}), naive);
  EXPECT_EQ(naive.back(), 9 * std::numeric_limits<double>::denorm_min());
  EXPECT_EQ(Values(spec, kStepLimit - 1, 1, {0.1})[0], naive.back());
  // Factor 1 settles at once: the base value for every step.
  EXPECT_EQ(Values(Multiplicative("1"), kStepLimit - 5, 5, {0.3}), std::vector<double>(5, 0.3));
  // A negative factor alternates the sign, of zero too, like PyTorch's loop.
  EXPECT_EQ(Values(Multiplicative("-1"), kStepLimit - 3, 3, {0.3}),
            (std::vector<double>{-0.3, 0.3, -0.3}));  // 2^53 - 3 is odd.
  const auto zeros = Values(Multiplicative("-0.5"), kStepLimit - 3, 3, {0.3});
  EXPECT_TRUE(zeros[0] == 0 && std::signbit(zeros[0]) && !std::signbit(zeros[1]) &&
              std::signbit(zeros[2]));
  // The value is b at step 0, whatever the factor.
  EXPECT_EQ(Values(Multiplicative("0", 10), 0, 3, {0.3}), (std::vector<double>{0.3, 0.0, 0.0}));
}

TEST(MultiplicativeTest, StepFactorsRunToTotalItersAndHold) {
  // f(0) is never evaluated (PyTorch does not call lr_lambda at step 0).
  const auto spec = Multiplicative("1 - 1 / (step + 1)^2", 1000);
  const auto v = Values(spec, 0, 1100, {2.0});
  double value = 2.0;
  for (int64_t t = 1; t <= 1000; ++t) {
    value *= 1 - 1 / std::pow(static_cast<double>(t) + 1, 2);
    ASSERT_EQ(v[t], value) << t;
  }
  for (int64_t t = 1000; t < 1100; ++t) EXPECT_EQ(v[t], value);
  EXPECT_EQ(Values(spec, kStepLimit - 1, 1, {2.0})[0], value);
  EXPECT_TRUE(Compile(Multiplicative("1 / step", 100)).ok());
  EXPECT_EQ(Values(Multiplicative("step", 0), 0, 4, {0.5}), std::vector<double>(4, 0.5));
}

TEST(MultiplicativeTest, ValidationNamesTheFieldAndTheStep) {
  const auto error = [](const ScheduleSpec& spec, std::vector<double> bases = {0.1}) {
    return std::string(Compile(spec, bases).message());
  };
  EXPECT_EQ(error(Spec("multiplicative")), "schedule.multiplicative.lr_lambda: is required");
  EXPECT_THAT(error(Multiplicative("0.9 +")), StartsWith("schedule.multiplicative.lr_lambda: "));
  EXPECT_THAT(error(Multiplicative("0.99 ^ step")),
              StartsWith("schedule.multiplicative.total_iters: is required when lr_lambda depends "
                         "on `step`"));
  EXPECT_EQ(error(Multiplicative("0.9", -1)),
            "schedule.multiplicative.total_iters: must be >= 0 and < 2^53, got -1");
  EXPECT_THAT(error(Multiplicative("0.99 ^ step", int64_t{1} << 40)),
              StartsWith("schedule.multiplicative.total_iters: must be <= "));
  EXPECT_EQ(error(Multiplicative("1 / (step - 5)", 10)),
            "schedule.multiplicative.lr_lambda: the factor is not finite at step 5 (got inf)");
  EXPECT_EQ(error(Multiplicative("sqrt(3 - step)", 10)),
            "schedule.multiplicative.lr_lambda: the factor is not finite at step 4 (got nan)");
  // A factor above 1 overflows: rejected at the step where the value leaves +-1e150.
  EXPECT_THAT(
      error(Multiplicative("1.5")),
      StartsWith("schedule.multiplicative.lr_lambda: the value leaves +-1e150 at step 858"));
  EXPECT_TRUE(Compile(Multiplicative("1.5", 800)).ok());
  EXPECT_THAT(error(Multiplicative("step < 10 ? 1e20 : 1", 20)),
              StartsWith("schedule.multiplicative.lr_lambda: the value leaves +-1e150 at step 8"));
  // A constant factor that does not settle within the work limit needs a horizon.
  EXPECT_THAT(error(Multiplicative("0.9999999")),
              StartsWith("schedule.multiplicative.total_iters: is required: the constant factor "
                         "0.9999999 does not settle within "));
  EXPECT_TRUE(Compile(Multiplicative("0.9999999", 1'000'000)).ok());
  // A horizon beyond the limit is fine for a constant factor that settles before it.
  EXPECT_EQ(Values(Multiplicative("0.95", int64_t{1} << 50), kStepLimit - 1, 1, {0.1}),
            Values(Multiplicative("0.95"), kStepLimit - 1, 1, {0.1}));
  // The limit is shared by the groups.
  EXPECT_TRUE(Compile(Multiplicative("0.99 ^ step", 1'000'000), {0.1}).ok());
  EXPECT_THAT(error(Multiplicative("0.99 ^ step", 1'000'000), std::vector<double>(64, 0.1)),
              HasSubstr("64 parameter groups"));
}

TEST(MultiplicativeTest, InsideComposites) {
  ScheduleSpec seq = Spec("sequential", {{"milestones", std::vector<int64_t>{5}}});
  seq.children = {Spec("constant", {{"factor", 0.5}, {"total_iters", int64_t{5}}}),
                  Multiplicative("0.5", 3)};
  EXPECT_EQ(Values(seq, 3, 6, {1.0}), (std::vector<double>{0.5, 0.5, 1.0, 0.5, 0.25, 0.125}));
}

// ---------------------------------------------------------------------------------------------
// momentum and beta1 cycling

TEST(MomentumTest, CyclicGivesPyTorchsInverseCycle) {
  const auto spec = Spec("cyclic", {{"base_lr", std::vector<double>{0.01}},
                                    {"max_lr", std::vector<double>{0.1}},
                                    {"step_size_up", 4.0}});
  for (const std::string name : {"momentum", "beta1"}) {
    const auto m = Values(spec, 0, 9, {0.5}, name);
    EXPECT_EQ(m[0], 0.9) << name;  // max_momentum: the base value is overwritten.
    EXPECT_DOUBLE_EQ(m[2], 0.85) << name;
    EXPECT_DOUBLE_EQ(m[4], 0.8) << name;  // base_momentum at the learning rate's peak.
    EXPECT_DOUBLE_EQ(m[8], 0.9) << name;
  }
  // Other names get the learning rate, which the momentum fields do not change.
  auto with_momentum = spec;
  with_momentum.params["base_momentum"] = std::vector<double>{0.5};
  with_momentum.params["max_momentum"] = std::vector<double>{0.99};
  EXPECT_EQ(Values(with_momentum, 0, 9, {0.5}, "lr"), Values(spec, 0, 9, {0.5}, "lr"));
  EXPECT_EQ(Values(with_momentum, 0, 9, {0.5}, "weight_decay"), Values(spec, 0, 9, {0.5}, "lr"));
  EXPECT_DOUBLE_EQ(Values(with_momentum, 4, 1, {0.5}, "momentum")[0], 0.5);
  // Without cycle_momentum PyTorch leaves the momentum alone: the group's base value.
  auto fixed = spec;
  fixed.params["cycle_momentum"] = false;
  EXPECT_EQ(Values(fixed, 0, 9, {0.7}, "momentum"), std::vector<double>(9, 0.7));
}

TEST(MomentumTest, AJobNamesTheCurveOfEachHyperparameter) {
  const auto cyclic = Spec("cyclic", {{"base_lr", std::vector<double>{0.01}},
                                      {"max_lr", std::vector<double>{0.1}},
                                      {"step_size_up", 4.0}});
  JobSpec job;
  job.hyperparameters = {{"lr", {0.1}, cyclic}, {"momentum", {0.9}, cyclic}};
  auto plan = JobPlan::Compile(job, "job");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ((*plan)->series().size(), 2u);
  std::vector<double> lr(5), momentum(5);
  (*plan)->series()[0].node->Evaluate(0, lr);
  (*plan)->series()[1].node->Evaluate(0, momentum);
  EXPECT_DOUBLE_EQ(lr[4], 0.1);
  EXPECT_DOUBLE_EQ(momentum[4], 0.8);
  EXPECT_EQ(momentum[0], 0.9);
}

TEST(MomentumTest, PerGroupMomentumLists) {
  const auto spec = Spec("one_cycle", {{"total_steps", int64_t{100}},
                                       {"base_momentum", std::vector<double>{0.8, 0.85}},
                                       {"max_momentum", std::vector<double>{0.9, 0.99}}});
  EXPECT_EQ(Values(spec, 0, 1, {0.9, 0.9}, "momentum", 0)[0], 0.9);
  EXPECT_EQ(Values(spec, 0, 1, {0.9, 0.9}, "momentum", 1)[0], 0.99);
  EXPECT_DOUBLE_EQ(Values(spec, 29, 1, {0.9, 0.9}, "beta1", 1)[0], 0.85);
  EXPECT_EQ(Values(spec, 99, 3, {0.9, 0.9}, "beta1", 1), std::vector<double>(3, 0.99));
  EXPECT_EQ(Compile(spec, {0.9, 0.9, 0.9}, "momentum").message(),
            "schedule.one_cycle.base_momentum: must have 1 value or one per parameter group (3), "
            "got 2");
}

TEST(MomentumTest, MomentumFieldsAreValidatedForEveryHyperparameter) {
  const auto spec = Spec("cyclic", {{"max_lr", std::vector<double>{1.0}},
                                    {"max_momentum", std::vector<double>{INFINITY}}});
  for (const std::string name : {"lr", "momentum"}) {
    EXPECT_EQ(Compile(spec, {0.1}, name).message(),
              "schedule.cyclic.max_momentum[0]: must be finite, got inf");
  }
}

// ---------------------------------------------------------------------------------------------
// CosineAnnealingWarmRestarts: restarts give the base value exactly (PyTorch's step() loop), not
// what PyTorch's step(epoch) gives where its floating-point logarithm misplaces the cycle.

double WarmRestarts(double base, int64_t t_cur, int64_t t_i) {
  return base *
         (1 + std::cos(std::numbers::pi * static_cast<double>(t_cur) / static_cast<double>(t_i))) /
         2;
}

TEST(WarmRestartsTest, RestartBoundariesNearAndFar) {
  for (int64_t t_mult : {1, 2, 3}) {
    constexpr int64_t kT0 = 10;
    const auto spec = Spec("cosine_annealing_warm_restarts", {{"t_0", kT0}, {"t_mult", t_mult}});
    int64_t restart = 0;
    int64_t length = kT0;
    int restarts = 0;
    while (restart <= kStepLimit - 1 - length && restarts < 200) {
      const int64_t previous = restart;
      restart += length;
      const auto v = Values(spec, restart - 1, 3, {0.1});
      SCOPED_TRACE(::testing::Message() << "t_mult " << t_mult << " restart " << restart);
      EXPECT_EQ(v[1], 0.1);  // The restart: the base value.
      EXPECT_LT(v[0], v[1]);
      EXPECT_NEAR(v[0], WarmRestarts(0.1, restart - 1 - previous, length), 1e-15);
      length *= t_mult;
      EXPECT_NEAR(v[2], WarmRestarts(0.1, 1, length), 1e-15);
      ++restarts;
    }
    if (t_mult == 1) {
      // Far restarts of equal cycles: every multiple of t_0.
      const int64_t far = (kStepLimit - 1) / kT0 * kT0;
      EXPECT_EQ(Values(spec, far, 1, {0.1})[0], 0.1);
      EXPECT_NEAR(Values(spec, far - 5, 1, {0.1})[0], 0.05, 1e-15);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Every valid spec of these kinds is finite at every step: a sample, at the edges of the range.

TEST(PropertyTest, SampledValidSpecsAreFiniteEverywhere) {
  std::vector<std::pair<ScheduleSpec, std::string>> specs;
  for (const char* lambda : {"0.95", "1", "0", "-0.5", "-1", "0.999", "1e-300"}) {
    specs.push_back({Multiplicative(lambda), "lr"});
  }
  specs.push_back({Multiplicative("1.01", 10'000), "lr"});
  specs.push_back({Multiplicative("step < 100 ? 1.1 : 0.9", 100'000), "lr"});
  specs.push_back({Multiplicative("1 + sin(step) / 2", 5'000), "lr"});
  for (const char* mode : {"triangular", "triangular2", "exp_range"}) {
    for (const char* name : {"lr", "momentum", "beta1"}) {
      specs.push_back({Spec("cyclic", {{"max_lr", std::vector<double>{1e150}},
                                       {"base_lr", std::vector<double>{-1e150}},
                                       {"base_momentum", std::vector<double>{-1e150}},
                                       {"max_momentum", std::vector<double>{1e150}},
                                       {"step_size_up", 1.0},
                                       {"gamma", 1e-300},
                                       {"mode", std::string(mode)}}),
                       name});
    }
  }
  for (bool three_phase : {false, true}) {
    for (const char* strategy : {"cos", "linear"}) {
      specs.push_back({Spec("one_cycle", {{"total_steps", kStepLimit},
                                          {"three_phase", three_phase},
                                          {"anneal_strategy", std::string(strategy)},
                                          {"base_momentum", std::vector<double>{-1e150}},
                                          {"max_momentum", std::vector<double>{1e150}}}),
                       "momentum"});
    }
  }
  int compiled = 0;
  for (const auto& [spec, name] : specs) {
    for (double base : {0.1, 1e150, -1e150}) {
      // A factor above 1 is valid only for bases it does not carry past 1e150.
      auto nodes = CompileStandalone(spec, std::vector<double>{base}, "schedule", name);
      if (!nodes.ok()) {
        EXPECT_NE(base, 0.1) << nodes.status();
        continue;
      }
      ++compiled;
      for (int64_t start : {int64_t{0}, int64_t{99}, int64_t{4095}, int64_t{1} << 31,
                            kStepLimit / 2, kStepLimit - 64}) {
        std::vector<double> out(64);
        (*nodes)[0]->Evaluate(start, out);
        for (double v : out) {
          ASSERT_TRUE(std::isfinite(v)) << spec.kind << " " << name << " at " << start;
        }
      }
    }
  }
  EXPECT_GT(compiled, 60);
}

}  // namespace
}  // namespace hpsched::core
