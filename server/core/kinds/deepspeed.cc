// deepspeed: DeepSpeed's learning-rate schedules (deepspeedai/DeepSpeed,
// deepspeed/runtime/lr_schedules.py, commit 22779f2): WarmupLR, WarmupDecayLR, WarmupCosineLR,
// OneCycle and LRRangeTest, selected by `name`.
//
// Step convention. DeepSpeed's engine calls scheduler.step() after every successful optimizer
// step, and step() sets last_batch_iteration += 1 (from -1) before computing the lr. So step N (the
// N-th optimizer step, from 0) runs at the value the constructor set when N = 0, and at get_lr()
// with last_batch_iteration = N - 1 when N >= 1:
//   WarmupLR:       N = 0: warmup_min_lr; else min + (max - min) * gamma(N - 1), gamma(it) =
//                   log(it + 1) / log(W) ("log") or it / W ("linear") while it < W, else 1, with
//                   W = max(2, warmup_num_steps). Log warmup thus runs at min for steps 0 and 1.
//   WarmupDecayLR:  as WarmupLR, but after the warmup gamma = max(0, (T - it) / max(1, T - W)).
//   WarmupCosineLR: N = 0: 0 (DeepSpeed's get_lr before the first step); else b * ratio(N - 1):
//                   warmup_min_ratio + gamma * (1 - warmup_min_ratio) while it < W, then
//                   max(0, cos_min_ratio + (1 - cos_min_ratio) * (1 + cos(pi * p)) / 2) with
//                   p = min(1, (it - W + 1) / max(1, T - W)).
//   OneCycle:       the cycle uses the batch index it + 1 = N, so for N <= cycle length L (the sum
//   of
//                   both step sizes) lr = min + (max - min) * scale(N), and past it
//                   lr = min / (1 + decay_lr_rate * (N - L) / decay_step_size). Momentum
//                   (hyperparameter "momentum"): cycle_min_mom at N = 0 (the constructor's value),
//                   then max_mom - (max_mom - min_mom) * scale(N), and past L
//                   max_mom * (1 + decay_mom_rate * (N - L) / decay_step_size).
//   LRRangeTest:    min_lr * (1 + step_rate * interval), interval = N / step_size, floored when
//                   staircase; the constructor's value min_lr is the same formula at N = 0.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/closed_form_node.h"
#include "core/kinds/library_table.h"
#include "core/kinds/step_count.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

// The warmup fraction of WarmupLR, WarmupDecayLR and WarmupCosineLR at last_batch_iteration `it`
// (it < warmup): DeepSpeed's _get_gamma / get_lr_ratio.
struct Warmup {
  bool log;
  int64_t steps;  // max(2, warmup_num_steps)
  double inverse_log;

  double Gamma(int64_t it) const {
    if (log) return inverse_log * std::log(static_cast<double>(it + 1));
    return static_cast<double>(it) / static_cast<double>(steps);
  }
};

absl::StatusOr<Warmup> ReadWarmup(const Params& p) {
  ASSIGN_OR_RETURN(int64_t steps, StepCount(p, "warmup_num_steps", 1000, 1));
  ASSIGN_OR_RETURN(std::string type, p.Enum("warmup_type", "log", {"log", "linear"}));
  Warmup w{type == "log", std::max<int64_t>(2, steps), 0};
  w.inverse_log = 1.0 / std::log(static_cast<double>(w.steps));
  return w;
}

// WarmupLR, and WarmupDecayLR when `decay` is set.
class WarmupLrNode final : public Node {
 public:
  // gamma is in [0, 1]: the value lies between min_lr and max_lr.
  WarmupLrNode(Warmup warmup, double min_lr, double max_lr, bool decay, int64_t total)
      : Node(RoundBoundUp(std::max(std::fabs(min_lr), std::fabs(max_lr)))),
        warmup_(warmup),
        min_lr_(min_lr),
        delta_(max_lr - min_lr),
        decay_(decay),
        total_(total) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t n = start + static_cast<int64_t>(i);
      out[i] = n == 0 ? min_lr_ : min_lr_ + delta_ * Gamma(n - 1);
    }
  }

 private:
  double Gamma(int64_t it) const {
    if (it < warmup_.steps) return warmup_.Gamma(it);
    if (!decay_) return 1.0;
    return std::max(0.0, static_cast<double>(total_ - it) /
                             std::max(1.0, static_cast<double>(total_ - warmup_.steps)));
  }

  Warmup warmup_;
  double min_lr_;
  double delta_;
  bool decay_;
  int64_t total_;
};

// DeepSpeed WarmupCosineLR: the value at scheduler step n is base * ratio(n - 1) (0 at n = 0).
struct WarmupCosine {
  Warmup warmup;
  double base;
  int64_t total;
  double warmup_min_ratio;
  double cos_min_ratio;

  template <typename Math>
  double operator()(int64_t n, const Math& math) const {
    return n == 0 ? 0.0 : base * Ratio(n - 1, math);
  }

  template <typename Math>
  double Ratio(int64_t it, const Math& math) const {
    if (it < warmup.steps) {
      return warmup_min_ratio + warmup.Gamma(it) * (1. - warmup_min_ratio);
    }
    const int64_t real_last_step = it - warmup.steps + 1;
    const int64_t real_total_steps = std::max<int64_t>(1, total - warmup.steps);
    const double progress =
        std::min(1.0, static_cast<double>(real_last_step) / static_cast<double>(real_total_steps));
    const double ratio = (1 + math.Cos(std::numbers::pi * progress)) / 2;
    return std::max(0.0, cos_min_ratio + (1. - cos_min_ratio) * ratio);
  }
};

struct OneCycleConfig {
  double first_size;
  double second_size;
  double total_size;
  double step_ratio;
  int64_t first_stairs;
  int64_t second_stairs;
  double decay_step_size;
  bool momentum;        // the schedule is the momentum (betas[0]), not the lr
  bool cycle_momentum;  // DeepSpeed cycles the momentum at all
  double low;           // cycle_min_lr, or cycle_min_mom
  double high;          // cycle_max_lr, or cycle_max_mom
  double decay_rate;    // 0: no decay after the cycle
  double base;          // the momentum when cycle_momentum is false
};

class OneCycleNode final : public Node {
 public:
  OneCycleNode(const OneCycleConfig& c, double bound) : Node(bound), c_(c) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    for (size_t i = 0; i < out.size(); ++i) out[i] = ValueAt(start + static_cast<int64_t>(i));
  }

  double ValueAt(int64_t n) const {
    if (c_.momentum) {
      if (!c_.cycle_momentum) return c_.base;
      if (n == 0) return c_.low;  // The constructor sets betas[0] = cycle_min_mom.
    }
    const double batch = static_cast<double>(n);
    if (batch <= c_.total_size) {
      const double height = (c_.high - c_.low) * ScaleFactor(batch);
      return c_.momentum ? c_.high - height : c_.low + height;
    }
    if (c_.decay_rate == 0 || c_.decay_step_size == 0) return c_.momentum ? c_.high : c_.low;
    const double interval = (batch - c_.total_size) / c_.decay_step_size;
    const double factor = 1 + c_.decay_rate * interval;
    return c_.momentum ? c_.high * factor : c_.low / factor;
  }

 private:
  // OneCycle._get_scale_factor for batch_iteration = n.
  double ScaleFactor(double n) const {
    const double cycle = std::floor(1 + n / c_.total_size);
    const double x = 1. + n / c_.total_size - cycle;
    double scale = 0;
    int64_t stairs = 0;
    if (x <= c_.step_ratio) {
      scale = x / c_.step_ratio;
      stairs = c_.first_stairs;
    } else {
      scale = (x - 1) / (c_.step_ratio - 1);
      stairs = c_.second_stairs;
    }
    if (stairs > 0) {
      const double cycle_iteration = std::fmod(n, c_.total_size);
      const double position =
          cycle_iteration <= c_.first_size
              ? cycle_iteration * static_cast<double>(stairs) / c_.first_size
              : (c_.total_size - cycle_iteration) * static_cast<double>(stairs) / c_.second_size;
      scale = std::floor(position) / static_cast<double>(stairs);
    }
    return scale;
  }

  OneCycleConfig c_;
};

class RangeTestNode final : public Node {
 public:
  RangeTestNode(double min_lr, double step_size, double step_rate, bool staircase, double bound)
      : Node(bound),
        min_lr_(min_lr),
        step_size_(step_size),
        step_rate_(step_rate),
        staircase_(staircase) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    for (size_t i = 0; i < out.size(); ++i) out[i] = ValueAt(start + static_cast<int64_t>(i));
  }

  double ValueAt(int64_t n) const {
    double interval = static_cast<double>(n) / step_size_;
    if (staircase_) interval = std::floor(interval);
    return min_lr_ * (1 + step_rate_ * interval);
  }

 private:
  double min_lr_;
  double step_size_;
  double step_rate_;
  bool staircase_;
};

// WarmupLR, and WarmupDecayLR when `decay` is set.
absl::StatusOr<NodePtr> CompileWarmup(const Params& p, bool decay) {
  ASSIGN_OR_RETURN(double min_lr, p.PerGroupDouble("warmup_min_lr", 0.0));
  ASSIGN_OR_RETURN(double max_lr, p.PerGroupDouble("warmup_max_lr", p.context().base));
  ASSIGN_OR_RETURN(Warmup warmup, ReadWarmup(p));
  int64_t total = 0;
  if (decay) {
    ASSIGN_OR_RETURN(total, StepCount(p, "total_num_steps", 0));
  }
  return std::make_unique<WarmupLrNode>(warmup, min_lr, max_lr, decay, total);
}

absl::StatusOr<NodePtr> CompileWarmupCosine(const Params& p) {
  ASSIGN_OR_RETURN(int64_t total, StepCount(p, "total_num_steps", 0));
  ASSIGN_OR_RETURN(double warmup_min_ratio, p.Double("warmup_min_ratio", 0.0));
  ASSIGN_OR_RETURN(double cos_min_ratio, p.Double("cos_min_ratio", 0.0001));
  if (warmup_min_ratio < 0 || warmup_min_ratio > 1) {
    return p.Error("warmup_min_ratio",
                   absl::StrCat("must be between 0 and 1, got ", warmup_min_ratio));
  }
  if (cos_min_ratio < 0 || cos_min_ratio > 1) {
    return p.Error("cos_min_ratio", absl::StrCat("must be between 0 and 1, got ", cos_min_ratio));
  }
  ASSIGN_OR_RETURN(Warmup warmup, ReadWarmup(p));
  // Both ratios are in [0, 1] (warmup_min_ratio and cos_min_ratio are): |value| <= |base|.
  return MakeClosedFormNode(
      WarmupCosine{warmup, p.context().base, total, warmup_min_ratio, cos_min_ratio},
      std::fabs(p.context().base));
}

absl::StatusOr<NodePtr> CompileOneCycle(const Params& p) {
  ASSIGN_OR_RETURN(std::string hyperparameter, p.Enum("hyperparameter", "lr", {"lr", "momentum"}));
  OneCycleConfig c{};
  c.momentum = hyperparameter == "momentum";
  c.base = p.context().base;
  ASSIGN_OR_RETURN(int64_t first, StepCount(p, "cycle_first_step_size", 2000, 1));
  ASSIGN_OR_RETURN(int64_t second, StepCount(p, "cycle_second_step_size", first, 1));
  c.first_size = static_cast<double>(first);
  c.second_size = static_cast<double>(second);
  c.total_size = c.first_size + c.second_size;
  c.step_ratio = c.first_size / c.total_size;
  // A stair count <= 0 (DeepSpeed's argparse default is -1) keeps the cycle continuous.
  ASSIGN_OR_RETURN(c.first_stairs, p.Int("cycle_first_stair_count", 0));
  ASSIGN_OR_RETURN(c.second_stairs, p.Int("cycle_second_stair_count", c.first_stairs));
  ASSIGN_OR_RETURN(int64_t decay_step_size, StepCount(p, "decay_step_size", 0, 0));
  c.decay_step_size = static_cast<double>(decay_step_size);
  ASSIGN_OR_RETURN(double min_lr, p.PerGroupDouble("cycle_min_lr", std::nullopt));
  ASSIGN_OR_RETURN(double max_lr, p.PerGroupDouble("cycle_max_lr", c.base));
  ASSIGN_OR_RETURN(double decay_lr_rate, p.Double("decay_lr_rate", 0.0));
  // A negative rate would divide by 1 + rate * interval, which reaches 0.
  if (decay_lr_rate < 0) {
    return p.Error("decay_lr_rate", absl::StrCat("must be >= 0, got ", decay_lr_rate));
  }
  ASSIGN_OR_RETURN(c.cycle_momentum, p.Bool("cycle_momentum", true));
  ASSIGN_OR_RETURN(double min_mom, p.PerGroupDouble("cycle_min_mom", 0.8));
  ASSIGN_OR_RETURN(double max_mom, p.PerGroupDouble("cycle_max_mom", 0.9));
  ASSIGN_OR_RETURN(double decay_mom_rate, p.Double("decay_mom_rate", 0.0));
  if (c.momentum) {
    c.low = min_mom;
    c.high = max_mom;
    c.decay_rate = decay_mom_rate;
  } else {
    c.low = min_lr;
    c.high = max_lr;
    c.decay_rate = decay_lr_rate;
  }
  // The momentum grows linearly after the cycle: it must stay finite up to the last step.
  const double last = OneCycleNode(c, 0).ValueAt(kStepLimit - 1);
  if (!std::isfinite(last)) {
    return p.Error(
        "decay_mom_rate",
        absl::StrCat("makes the momentum overflow before step 2^53, got ", decay_mom_rate));
  }
  // The scale factor is in [0, 1], so the cycle lies between low and high; after it the lr
  // decays from low and the momentum grows from high, monotonically, to its last value. Without
  // cycle_momentum the momentum is the base value.
  const double bound = std::max(
      {std::fabs(c.low), std::fabs(c.high), std::fabs(last), c.momentum ? std::fabs(c.base) : 0.0});
  return std::make_unique<OneCycleNode>(c, RoundBoundUp(bound));
}

absl::StatusOr<NodePtr> CompileRangeTest(const Params& p) {
  ASSIGN_OR_RETURN(double min_lr, p.PerGroupDouble("lr_range_test_min_lr", p.context().base));
  ASSIGN_OR_RETURN(int64_t step_size, StepCount(p, "lr_range_test_step_size", 2000, 1));
  ASSIGN_OR_RETURN(double step_rate, p.Double("lr_range_test_step_rate", 1.0));
  ASSIGN_OR_RETURN(bool staircase, p.Bool("lr_range_test_staircase", false));
  const RangeTestNode probe(min_lr, static_cast<double>(step_size), step_rate, staircase, 0);
  // The value is linear in the step: finite at both ends means finite everywhere, and bounded by
  // its value at one of them.
  const double last = probe.ValueAt(kStepLimit - 1);
  if (!std::isfinite(last)) {
    return p.Error("lr_range_test_step_rate",
                   absl::StrCat("makes the value overflow before step 2^53, got ", step_rate));
  }
  const double bound = RoundBoundUp(std::max(std::fabs(probe.ValueAt(0)), std::fabs(last)));
  return std::make_unique<RangeTestNode>(min_lr, static_cast<double>(step_size), step_rate,
                                         staircase, bound);
}

constexpr LibrarySchedule kSchedules[] = {
    {"WarmupLR", "warmup_min_lr warmup_max_lr warmup_num_steps warmup_type", false,
     [](const Params& p) { return CompileWarmup(p, /*decay=*/false); }},
    {"WarmupDecayLR", "warmup_min_lr warmup_max_lr warmup_num_steps warmup_type total_num_steps",
     false, [](const Params& p) { return CompileWarmup(p, /*decay=*/true); }},
    {"WarmupCosineLR",
     "total_num_steps warmup_min_ratio warmup_num_steps cos_min_ratio warmup_type", false,
     &CompileWarmupCosine},
    {"OneCycle",
     "cycle_min_lr cycle_max_lr decay_lr_rate cycle_first_step_size cycle_second_step_size "
     "cycle_first_stair_count cycle_second_stair_count decay_step_size cycle_momentum "
     "cycle_min_mom cycle_max_mom decay_mom_rate hyperparameter",
     false, &CompileOneCycle},
    {"LRRangeTest",
     "lr_range_test_min_lr lr_range_test_step_size lr_range_test_step_rate "
     "lr_range_test_staircase",
     false, &CompileRangeTest},
};

}  // namespace

absl::StatusOr<NodePtr> CompileDeepSpeed(const ScheduleSpec& spec, const CompileContext& context) {
  return CompileLibrarySchedule(spec, context, Library{"deepspeed", kSchedules});
}

}  // namespace hpsched::core::kinds
