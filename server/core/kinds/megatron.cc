// megatron: Megatron-LM's OptimizerParamScheduler (NVIDIA/Megatron-LM,
// megatron/core/optimizer_param_scheduler.py, get_lr and get_wd, commit 00caa53).
//
// `name` is Megatron's --lr-decay-style ("linear", "cosine", "inverse-square-root", "WSD",
// "constant") for a learning rate, or "weight_decay" for the weight-decay increment schedule. Step
// N is Megatron's num_steps = N: the constructor calls step(0) and each successful iteration calls
// step(increment), so with an increment of 1 the N-th iteration (from 0) runs at the value for N.
// Megatron counts samples when the batch size ramps up; then step N means N samples.
//
// Learning rate, with W = lr_warmup_steps, D = lr_decay_steps, n = the step:
//   n <= W (W > 0): init_lr + (max_lr - init_lr) * n / W
//   constant: max_lr;  n > D: min_lr
//   inverse-square-root: max(min_lr, max_lr * max(W, 1)^0.5 / max(n, 1)^0.5)
//   otherwise min_lr + coeff * (max_lr - min_lr), r = (n - W) / (D - W):
//     linear 1 - r; cosine (cos(pi r) + 1) / 2; WSD 1 until D - wsd_decay_steps, then with
//     s = (n - (D - wsd_decay_steps)) / wsd_decay_steps: linear 1 - s, cosine (cos(pi s) + 1) / 2,
//     exponential 2 * 0.5^s - 1, minus_sqrt 1 - sqrt(s).
// Weight decay, with I = wd_incr_steps: n > I: end_wd; constant: end_wd; otherwise with r = n / I
//   start_wd + coeff * (end_wd - start_wd), coeff = r (linear) or (cos(pi (1 - r)) + 1) / 2
//   (cosine); the result is multiplied by wd_mult, as Megatron does per parameter group.
#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/closed_form_node.h"
#include "core/kinds/library_table.h"
#include "core/kinds/step_count.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

// How a value that defaults to the group's base value b is named in an error: a spec that does not
// set max_lr may still fail "max_lr >= min_lr" because of its base value.
std::string DefaultNote(const Params& p, absl::string_view name) {
  return p.Has(name) ? "" : " (the group's base value, its default)";
}

enum class Style { kLinear, kCosine, kInverseSqrt, kWsd, kConstant };
enum class WsdStyle { kExponential, kLinear, kCosine, kMinusSqrt };
enum class WdStyle { kConstant, kLinear, kCosine };

struct LrConfig {
  Style style;
  WsdStyle wsd_style;
  double max_lr;
  double min_lr;
  double init_lr;
  int64_t warmup;
  int64_t decay;
  int64_t wsd_decay;
};

// A cos-split formula (closed_form_node.h): its cos runs on the vector path.
struct MegatronLr {
  template <typename Math>
  double operator()(int64_t n, const Math& math) const {
    if (c_.warmup > 0 && n <= c_.warmup) {
      return c_.init_lr +
             (c_.max_lr - c_.init_lr) * static_cast<double>(n) / static_cast<double>(c_.warmup);
    }
    if (c_.style == Style::kConstant) return c_.max_lr;
    if (n > c_.decay) return c_.min_lr;
    if (c_.style == Style::kInverseSqrt) {
      const double warmup = static_cast<double>(std::max<int64_t>(c_.warmup, 1));
      const double steps = static_cast<double>(std::max<int64_t>(n, 1));
      // Python's `x**0.5` is pow(x, 0.5), which may differ from sqrt in the last bit.
      const double lr = c_.max_lr * std::pow(warmup, 0.5) / std::pow(steps, 0.5);
      return std::max(c_.min_lr, lr);
    }
    const double ratio =
        static_cast<double>(n - c_.warmup) / static_cast<double>(c_.decay - c_.warmup);
    double coeff = 1.0;
    switch (c_.style) {
      case Style::kLinear:
        coeff = 1.0 - ratio;
        break;
      case Style::kCosine:
        coeff = 0.5 * (math.Cos(std::numbers::pi * ratio) + 1.0);
        break;
      case Style::kWsd:
        coeff = WsdCoeff(n, math);
        break;
      case Style::kInverseSqrt:
      case Style::kConstant:
        break;  // Handled above.
    }
    return c_.min_lr + coeff * (c_.max_lr - c_.min_lr);
  }

  template <typename Math>
  double WsdCoeff(int64_t n, const Math& math) const {
    const int64_t anneal_start = c_.decay - c_.wsd_decay;
    if (n <= anneal_start) return 1.0;
    const double s = static_cast<double>(n - anneal_start) / static_cast<double>(c_.wsd_decay);
    switch (c_.wsd_style) {
      case WsdStyle::kLinear:
        return 1.0 - s;
      case WsdStyle::kCosine:
        return 0.5 * (math.Cos(std::numbers::pi * s) + 1.0);
      case WsdStyle::kExponential:
        return 2.0 * std::pow(0.5, s) - 1.0;
      case WsdStyle::kMinusSqrt:
        return 1.0 - std::sqrt(s);
    }
    return 1.0;
  }

  LrConfig c_;
};

// Megatron's weight decay increment (OptimizerParamScheduler.get_wd) times the group's wd_mult.
struct MegatronWd {
  WdStyle style;
  double start_wd;
  double end_wd;
  int64_t incr_steps;
  double mult;

  template <typename Math>
  double operator()(int64_t n, const Math& math) const {
    return WeightDecay(n, math) * mult;
  }

  template <typename Math>
  double WeightDecay(int64_t n, const Math& math) const {
    if (n > incr_steps || style == WdStyle::kConstant) return end_wd;
    const double ratio = static_cast<double>(n) / static_cast<double>(incr_steps);
    const double coeff =
        style == WdStyle::kLinear ? ratio : 0.5 * (math.Cos(std::numbers::pi * (1 - ratio)) + 1.0);
    return start_wd + coeff * (end_wd - start_wd);
  }
};

absl::StatusOr<NodePtr> CompileWeightDecay(const Params& p) {
  const double base = p.context().base;
  ASSIGN_OR_RETURN(double start_wd, p.PerGroupDouble("start_wd", base));
  ASSIGN_OR_RETURN(double end_wd, p.PerGroupDouble("end_wd", base));
  ASSIGN_OR_RETURN(double wd_mult, p.PerGroupDouble("wd_mult", 1.0));
  ASSIGN_OR_RETURN(std::string style_name,
                   p.Enum("wd_incr_style", "constant", {"constant", "linear", "cosine"}));
  if (start_wd < 0) {
    return p.Error("start_wd",
                   absl::StrCat("must be >= 0, got ", start_wd, DefaultNote(p, "start_wd")));
  }
  if (end_wd < start_wd) {
    return p.Error("end_wd", absl::StrCat("must be >= start_wd (", start_wd, "), got ", end_wd,
                                          DefaultNote(p, "end_wd")));
  }
  const WdStyle style = style_name == "constant" ? WdStyle::kConstant
                        : style_name == "linear" ? WdStyle::kLinear
                                                 : WdStyle::kCosine;
  int64_t incr_steps = 0;
  if (style == WdStyle::kConstant) {
    if (start_wd != end_wd) {
      return p.Error("end_wd", absl::StrCat("must equal start_wd (", start_wd,
                                            ") when wd_incr_style is \"constant\", got ", end_wd));
    }
    ASSIGN_OR_RETURN(incr_steps, StepCount(p, "wd_incr_steps", 0, 0));
  } else {
    // Megatron divides by wd_incr_steps at step 0.
    ASSIGN_OR_RETURN(incr_steps, StepCount(p, "wd_incr_steps", 1));
  }
  // The coefficient is in [0, 1]: the weight decay lies between start_wd and end_wd.
  return MakeClosedFormNode(MegatronWd{style, start_wd, end_wd, incr_steps, wd_mult},
                            std::max(std::fabs(start_wd), std::fabs(end_wd)) * std::fabs(wd_mult));
}

// A learning rate of --lr-decay-style `style`.
absl::StatusOr<NodePtr> CompileLr(const Params& p, Style style) {
  LrConfig c{};
  c.style = style;
  ASSIGN_OR_RETURN(c.max_lr, p.PerGroupDouble("max_lr", p.context().base));
  ASSIGN_OR_RETURN(c.min_lr, p.PerGroupDouble("min_lr", 0.0));
  ASSIGN_OR_RETURN(c.init_lr, p.PerGroupDouble("init_lr", 0.0));
  // Megatron's constructor asserts these three.
  if (c.min_lr < 0) return p.Error("min_lr", absl::StrCat("must be >= 0, got ", c.min_lr));
  if (c.max_lr < c.min_lr) {
    return p.Error("max_lr", absl::StrCat("must be >= min_lr (", c.min_lr, "), got ", c.max_lr,
                                          DefaultNote(p, "max_lr")));
  }
  if (c.init_lr > c.max_lr) {
    return p.Error("init_lr", absl::StrCat("must be <= max_lr (", c.max_lr,
                                           DefaultNote(p, "max_lr"), "), got ", c.init_lr));
  }
  ASSIGN_OR_RETURN(c.warmup, StepCount(p, "lr_warmup_steps", 0, 0));
  if (c.style == Style::kConstant && !p.Has("lr_decay_steps")) {
    c.decay = kStepLimit;  // Unused by "constant"; Megatron only checks it.
  } else {
    ASSIGN_OR_RETURN(c.decay, StepCount(p, "lr_decay_steps", 1));
  }
  if (c.warmup >= c.decay) {
    return p.Error("lr_warmup_steps",
                   absl::StrCat("must be < lr_decay_steps (", c.decay, "), got ", c.warmup));
  }
  if (c.style == Style::kWsd) {
    ASSIGN_OR_RETURN(c.wsd_decay, StepCount(p, "wsd_decay_steps", 1));
    ASSIGN_OR_RETURN(std::string wsd_name,
                     p.Enum("lr_wsd_decay_style", "exponential",
                            {"exponential", "linear", "cosine", "minus_sqrt"}));
    c.wsd_style = wsd_name == "exponential" ? WsdStyle::kExponential
                  : wsd_name == "linear"    ? WsdStyle::kLinear
                  : wsd_name == "cosine"    ? WsdStyle::kCosine
                                            : WsdStyle::kMinusSqrt;
  }
  // Every phase lies between two of init_lr, max_lr and min_lr (each coefficient is in [0, 1], and
  // inverse-square-root's ratio is <= 1 past the warmup).
  return MakeClosedFormNode(
      MegatronLr{c}, std::max({std::fabs(c.init_lr), std::fabs(c.max_lr), std::fabs(c.min_lr)}));
}

#define HPSCHED_MEGATRON_LR "max_lr min_lr init_lr lr_warmup_steps lr_decay_steps"

constexpr LibrarySchedule kSchedules[] = {
    {"linear", HPSCHED_MEGATRON_LR, false,
     [](const Params& p) { return CompileLr(p, Style::kLinear); }},
    {"cosine", HPSCHED_MEGATRON_LR, false,
     [](const Params& p) { return CompileLr(p, Style::kCosine); }},
    {"inverse-square-root", HPSCHED_MEGATRON_LR, false,
     [](const Params& p) { return CompileLr(p, Style::kInverseSqrt); }},
    {"WSD", HPSCHED_MEGATRON_LR " wsd_decay_steps lr_wsd_decay_style", false,
     [](const Params& p) { return CompileLr(p, Style::kWsd); }},
    {"constant", HPSCHED_MEGATRON_LR, false,
     [](const Params& p) { return CompileLr(p, Style::kConstant); }},
    {"weight_decay", "start_wd end_wd wd_incr_steps wd_incr_style wd_mult", false,
     &CompileWeightDecay},
};

#undef HPSCHED_MEGATRON_LR

}  // namespace

absl::StatusOr<NodePtr> CompileMegatron(const ScheduleSpec& spec, const CompileContext& context) {
  return CompileLibrarySchedule(spec, context, Library{"megatron", kSchedules});
}

}  // namespace hpsched::core::kinds
