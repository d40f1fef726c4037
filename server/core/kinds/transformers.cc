// transformers: Hugging Face transformers' get_scheduler(name, ...)
// (src/transformers/optimization.py, huggingface/transformers main at commit
// 005edacb6b5dabbf0843e92c6623de9e07ca6241). Every HF schedule is a LambdaLR multiplier: value(N) =
// b * lr_lambda(N), with lr_lambda transcribed from the _get_*_lr_lambda functions of that file in
// their order of operations; each formula below names its function. W = num_warmup_steps, T =
// num_training_steps.
//
// HF's quirks are kept: the warmup starts at 0; cosine is not clamped past T; polynomial divides by
// the initial lr (here the group's base value) and holds lr_end / b past T. Validation rejects what
// HF rejects (missing arguments, an argument the scheduler does not take, lr_end >= lr, both or
// neither of min_lr and min_lr_rate) and what would divide by zero or be meaningless in HF
// (polynomial with T == W, timescale <= 0, negative step counts, num_cycles or power).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/closed_form_node.h"
#include "core/kinds/library_table.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

constexpr double kPi = std::numbers::pi;

// The linear warmup every *_with_warmup lambda starts with: float(N) / float(max(1, W)).
double Warmup(int64_t step, int64_t warmup) {
  return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
}

// (N - W) / max(1, T - W), as float(current_step - num_warmup_steps) / float(max(1, T - W)).
double Progress(int64_t step, int64_t warmup, int64_t training) {
  return static_cast<double>(step - warmup) /
         static_cast<double>(std::max<int64_t>(1, training - warmup));
}

// LambdaLR: value(N) = b * lr_lambda(N), where |lr_lambda| <= `lambda_bound` at every step (each
// compiler below says why).
// A cos-split lambda (closed_form_node.h) stays one, so its cos runs on the vector path.
template <typename Lambda>
NodePtr LambdaLr(double base, Lambda lr_lambda, double lambda_bound) {
  if constexpr (CosSplitFormula<Lambda>) {
    return MakeClosedFormNode(
        [base, lr_lambda](int64_t step, const auto& math) -> double {
          return base * lr_lambda(step, math);
        },
        std::fabs(base) * lambda_bound);
  } else {
    return MakeClosedFormNode(
        [base, lr_lambda](int64_t step) -> double { return base * lr_lambda(step); },
        std::fabs(base) * lambda_bound);
  }
}

// The bound of a factor that lies between `rate` and 1 (or is clamped at 0 below): max(1, |rate|).
double BetweenRateAndOne(double rate) { return std::max(1.0, std::fabs(rate)); }

// The lambdas that start with the linear warmup: Warmup(N, W) for N < W, then `after(N)`.
template <typename After>
struct WarmupThen {
  int64_t warmup;
  After after;
  double operator()(int64_t step) const requires(!CosSplitFormula<After>) {
    return step < warmup ? Warmup(step, warmup) : after(step);
  }
  template <typename Math>
  double operator()(int64_t step, const Math& math) const requires CosSplitFormula<After> {
    return step < warmup ? Warmup(step, warmup) : after(step, math);
  }
};

template <typename After>
WarmupThen<After> WithWarmup(int64_t warmup, After after) {
  return WarmupThen<After>{warmup, std::move(after)};
}

// _get_constant_lambda, and _get_constant_schedule_with_warmup_lr_lambda after the warmup.
struct One {
  double operator()(int64_t) const { return 1.0; }
};

// _get_linear_schedule_with_warmup_lr_lambda, after the warmup.
struct Linear {
  int64_t warmup;
  int64_t training;
  double operator()(int64_t step) const {
    return std::max(0.0, static_cast<double>(training - step) /
                             static_cast<double>(std::max<int64_t>(1, training - warmup)));
  }
};

// _get_cosine_schedule_with_warmup_lr_lambda (the second definition in the file, which takes
// min_lr_rate and replaces the first), after the warmup: cosine (min_lr_rate 0) and
// cosine_with_min_lr.
struct Cosine {
  int64_t warmup;
  int64_t training;
  double num_cycles;
  double min_lr_rate;
  template <typename Math>
  double operator()(int64_t step, const Math& math) const {
    const double progress = Progress(step, warmup, training);
    double factor = 0.5 * (1.0 + math.Cos(kPi * num_cycles * 2.0 * progress));
    factor = factor * (1 - min_lr_rate) + min_lr_rate;
    return std::max(0.0, factor);
  }
};

// _get_cosine_with_hard_restarts_schedule_with_warmup_lr_lambda, after the warmup. Python's
// `x % 1.0` equals fmod for the x >= 0 that num_cycles >= 0 and N >= W give.
struct CosineWithRestarts {
  int64_t warmup;
  int64_t training;
  double num_cycles;
  template <typename Math>
  double operator()(int64_t step, const Math& math) const {
    const double progress = Progress(step, warmup, training);
    if (progress >= 1.0) return 0.0;
    return std::max(0.0, 0.5 * (1.0 + math.Cos(kPi * std::fmod(num_cycles * progress, 1.0))));
  }
};

// _get_polynomial_decay_schedule_with_warmup_lr_lambda after the warmup, with lr_init = the
// group's base value.
struct Polynomial {
  int64_t warmup;
  int64_t training;
  double lr_end;
  double power;
  double lr_init;
  double operator()(int64_t step) const {
    if (step > training) return lr_end / lr_init;
    const double lr_range = lr_init - lr_end;
    const double pct_remaining =
        1 - static_cast<double>(step - warmup) / static_cast<double>(training - warmup);
    const double decay = lr_range * std::pow(pct_remaining, power) + lr_end;
    return decay / lr_init;
  }
};

// _get_inverse_sqrt_schedule_lr_lambda, after the warmup.
struct InverseSqrt {
  int64_t warmup;
  int64_t timescale;
  double operator()(int64_t step) const {
    const int64_t shift = timescale - warmup;
    return 1.0 / std::sqrt(static_cast<double>(step + shift) / static_cast<double>(timescale));
  }
};

// _get_cosine_with_min_lr_schedule_with_warmup_lr_rate_lambda, which works in floats throughout and
// is one step ahead of the other cosines: its warmup is (N + 1) / W and its progress
// (N - W + 1) / (T - W).
struct CosineWarmupWithMinLr {
  double warmup;
  double training;
  double num_cycles;
  double min_lr_rate;
  std::optional<double> warmup_lr_rate;
  template <typename Math>
  double operator()(int64_t step, const Math& math) const {
    const double s = static_cast<double>(step);
    if (s < warmup) {
      if (!warmup_lr_rate.has_value()) return (s + 1.) / std::max(1., warmup);
      const double r = *warmup_lr_rate;
      return r + (1.0 - r) * s / std::max(1., warmup - 1);
    }
    const double progress = (s - warmup + 1.) / std::max(1., training - warmup);
    double factor = 0.5 * (1.0 + math.Cos(kPi * num_cycles * 2.0 * progress));
    factor = factor * (1 - min_lr_rate) + min_lr_rate;
    return std::max(0.0, factor);
  }
};

enum class Shape { kLinear, kCosine, kOneMinusSqrt };

// _get_wsd_scheduler_lambda.
struct WarmupStableDecay {
  int64_t warmup;
  int64_t stable;
  int64_t decay;
  Shape warmup_type;
  Shape decay_type;
  double min_lr_ratio;
  double num_cycles;

  // factor scaled into [min_lr_ratio, 1], clamped at 0.
  double Scaled(double factor) const {
    return std::max(0.0, factor * (1.0 - min_lr_ratio) + min_lr_ratio);
  }

  template <typename Math>
  double operator()(int64_t step, const Math& math) const {
    if (step < warmup) {
      const double progress = Warmup(step, warmup);
      switch (warmup_type) {
        case Shape::kLinear:
          return Scaled(progress);
        case Shape::kCosine:
          return Scaled(0.5 * (1.0 - math.Cos(kPi * progress)));
        case Shape::kOneMinusSqrt:
          return Scaled(1.0 - std::sqrt(1.0 - progress));
      }
    }
    if (step < warmup + stable) return 1.0;
    if (step < warmup + stable + decay) {
      const double progress = static_cast<double>(step - warmup - stable) /
                              static_cast<double>(std::max<int64_t>(1, decay));
      switch (decay_type) {
        case Shape::kLinear:
          return Scaled(1.0 - progress);
        case Shape::kCosine:
          return Scaled(0.5 * (1.0 + math.Cos(kPi * num_cycles * 2.0 * progress)));
        case Shape::kOneMinusSqrt:
          return Scaled(1.0 - std::sqrt(progress));
      }
    }
    return min_lr_ratio;
  }
};

// --- Parameters ----------------------------------------------------------------------------------

// A step count: an integer in [0, 2^53].
absl::Status CheckSteps(const Params& p, absl::string_view name, int64_t value) {
  if (value < 0 || value > kStepLimit) {
    return p.Error(name, absl::StrCat("must be >= 0 and <= 2^53, got ", value));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Steps(const Params& p, absl::string_view name) {
  ASSIGN_OR_RETURN(int64_t value, p.Int(name));
  RETURN_IF_ERROR(CheckSteps(p, name, value));
  return value;
}

absl::StatusOr<double> NumCycles(const Params& p, double default_value) {
  ASSIGN_OR_RETURN(double value, p.Double("num_cycles", default_value));
  if (value < 0) return p.Error("num_cycles", absl::StrCat("must be >= 0, got ", value));
  return value;
}

// A ratio HF divides by the optimizer's lr (here the group's base value): finite only when b != 0
// and the quotient does not overflow.
absl::StatusOr<double> RatioToBase(const Params& p, absl::string_view name, double value) {
  const double base = p.context().base;
  const double ratio = value / base;
  if (base == 0 || !std::isfinite(ratio)) {
    return p.Error(name, absl::StrCat("HF divides it by the group's base value, which gives ",
                                      value, " / ", base, " for group ", p.context().group,
                                      ": the base value must be nonzero and the ratio finite"));
  }
  return ratio;
}

// min_lr_rate, or min_lr / b: exactly one of them (get_cosine_with_min_lr_schedule_with_warmup).
absl::StatusOr<double> MinLrRate(const Params& p) {
  const bool has_min_lr = p.Has("min_lr");
  const bool has_rate = p.Has("min_lr_rate");
  if (has_min_lr && has_rate) {
    return p.Error("min_lr", "only one of min_lr and min_lr_rate may be set (HF raises otherwise)");
  }
  if (has_rate) return p.Double("min_lr_rate");
  if (!has_min_lr) {
    return p.Error("min_lr_rate", "is required: set min_lr_rate or min_lr (HF raises otherwise)");
  }
  ASSIGN_OR_RETURN(double min_lr, p.PerGroupDouble("min_lr", std::nullopt));
  return RatioToBase(p, "min_lr", min_lr);
}

struct WarmupAndTraining {
  int64_t warmup;
  int64_t training;
};

absl::StatusOr<WarmupAndTraining> ReadWarmupAndTraining(const Params& p) {
  ASSIGN_OR_RETURN(int64_t warmup, Steps(p, "num_warmup_steps"));
  ASSIGN_OR_RETURN(int64_t training, Steps(p, "num_training_steps"));
  return WarmupAndTraining{warmup, training};
}

absl::StatusOr<Shape> ReadShape(const Params& p, absl::string_view name,
                                absl::string_view default_value) {
  ASSIGN_OR_RETURN(std::string shape, p.Enum(name, default_value, {"linear", "cosine", "1-sqrt"}));
  if (shape == "linear") return Shape::kLinear;
  if (shape == "cosine") return Shape::kCosine;
  return Shape::kOneMinusSqrt;
}

// --- The schedules, by HF's SchedulerType names --------------------------------------------------

absl::StatusOr<NodePtr> CompileConstant(const Params& p) {
  return LambdaLr(p.context().base, One{}, 1.0);
}

absl::StatusOr<NodePtr> CompileConstantWithWarmup(const Params& p) {
  ASSIGN_OR_RETURN(int64_t warmup, Steps(p, "num_warmup_steps"));
  // The warmup N / max(1, W) for N < W is in [0, 1).
  return LambdaLr(p.context().base, WithWarmup(warmup, One{}), 1.0);
}

absl::StatusOr<NodePtr> CompileLinear(const Params& p) {
  ASSIGN_OR_RETURN(WarmupAndTraining wt, ReadWarmupAndTraining(p));
  // (T - N) / max(1, T - W) <= 1 for N >= W, clamped at 0.
  return LambdaLr(p.context().base, WithWarmup(wt.warmup, Linear{wt.warmup, wt.training}), 1.0);
}

absl::StatusOr<NodePtr> CompileCosine(const Params& p) {
  ASSIGN_OR_RETURN(WarmupAndTraining wt, ReadWarmupAndTraining(p));
  ASSIGN_OR_RETURN(double num_cycles, NumCycles(p, 0.5));
  return LambdaLr(p.context().base,
                  WithWarmup(wt.warmup, Cosine{wt.warmup, wt.training, num_cycles, 0.0}), 1.0);
}

absl::StatusOr<NodePtr> CompileCosineWithRestarts(const Params& p) {
  ASSIGN_OR_RETURN(WarmupAndTraining wt, ReadWarmupAndTraining(p));
  ASSIGN_OR_RETURN(double num_cycles, NumCycles(p, 1.0));
  return LambdaLr(p.context().base,
                  WithWarmup(wt.warmup, CosineWithRestarts{wt.warmup, wt.training, num_cycles}),
                  1.0);
}

absl::StatusOr<NodePtr> CompilePolynomial(const Params& p) {
  ASSIGN_OR_RETURN(WarmupAndTraining wt, ReadWarmupAndTraining(p));
  ASSIGN_OR_RETURN(double lr_end, p.PerGroupDouble("lr_end", 1e-7));
  ASSIGN_OR_RETURN(double power, p.Double("power", 1.0));
  const double base = p.context().base;
  if (wt.training == wt.warmup) {
    return p.Error("num_training_steps",
                   absl::StrCat("must differ from num_warmup_steps (HF divides by their "
                                "difference at step num_training_steps), got ",
                                wt.training));
  }
  if (!(base > lr_end)) {
    return p.Error(
        "lr_end", absl::StrCat("must be smaller than the group's base value (HF raises "
                               "otherwise), got lr_end ",
                               lr_end, " and base value ", base, " for group ", p.context().group));
  }
  // For W <= N <= T, (1 - (N - W) / (T - W))^power is in [0, 1], so decay lies between lr_end and
  // b; past T the factor is lr_end / b.
  ASSIGN_OR_RETURN(double ratio, RatioToBase(p, "lr_end", lr_end));
  if (power < 0) return p.Error("power", absl::StrCat("must be >= 0, got ", power));
  return LambdaLr(base,
                  WithWarmup(wt.warmup, Polynomial{wt.warmup, wt.training, lr_end, power, base}),
                  BetweenRateAndOne(ratio));
}

absl::StatusOr<NodePtr> CompileInverseSqrt(const Params& p) {
  ASSIGN_OR_RETURN(int64_t warmup, Steps(p, "num_warmup_steps"));
  ASSIGN_OR_RETURN(int64_t timescale, p.Int("timescale", warmup != 0 ? warmup : 10000));
  if (timescale <= 0 || timescale > kStepLimit) {
    return p.Error("timescale", absl::StrCat("must be > 0 and <= 2^53, got ", timescale));
  }
  // For N >= W, (N + timescale - W) / timescale >= 1: the factor is <= 1.
  return LambdaLr(p.context().base, WithWarmup(warmup, InverseSqrt{warmup, timescale}), 1.0);
}

absl::StatusOr<NodePtr> CompileCosineWithMinLr(const Params& p) {
  ASSIGN_OR_RETURN(WarmupAndTraining wt, ReadWarmupAndTraining(p));
  ASSIGN_OR_RETURN(double num_cycles, NumCycles(p, 0.5));
  ASSIGN_OR_RETURN(double min_lr_rate, MinLrRate(p));
  return LambdaLr(p.context().base,
                  WithWarmup(wt.warmup, Cosine{wt.warmup, wt.training, num_cycles, min_lr_rate}),
                  BetweenRateAndOne(min_lr_rate));
}

absl::StatusOr<NodePtr> CompileCosineWarmupWithMinLr(const Params& p) {
  ASSIGN_OR_RETURN(WarmupAndTraining wt, ReadWarmupAndTraining(p));
  ASSIGN_OR_RETURN(double num_cycles, NumCycles(p, 0.5));
  ASSIGN_OR_RETURN(double min_lr_rate, MinLrRate(p));
  std::optional<double> warmup_lr_rate;
  if (p.Has("warmup_lr_rate")) {
    ASSIGN_OR_RETURN(warmup_lr_rate, p.Double("warmup_lr_rate"));
  }
  return LambdaLr(
      p.context().base,
      CosineWarmupWithMinLr{static_cast<double>(wt.warmup), static_cast<double>(wt.training),
                            num_cycles, min_lr_rate, warmup_lr_rate},
      std::max(BetweenRateAndOne(min_lr_rate), BetweenRateAndOne(warmup_lr_rate.value_or(0.0))));
}

absl::StatusOr<NodePtr> CompileWarmupStableDecay(const Params& p) {
  ASSIGN_OR_RETURN(int64_t warmup, Steps(p, "num_warmup_steps"));
  ASSIGN_OR_RETURN(int64_t decay, Steps(p, "num_decay_steps"));
  int64_t stable = 0;
  if (p.Has("num_stable_steps")) {
    ASSIGN_OR_RETURN(stable, Steps(p, "num_stable_steps"));
    // HF warns and ignores num_training_steps; it must still be a step count.
    if (p.Has("num_training_steps")) RETURN_IF_ERROR(Steps(p, "num_training_steps").status());
  } else if (p.Has("num_training_steps")) {
    ASSIGN_OR_RETURN(int64_t training, Steps(p, "num_training_steps"));
    stable = training - warmup - decay;
    if (stable < 0) {
      return p.Error("num_training_steps",
                     absl::StrCat("must be >= num_warmup_steps + num_decay_steps (", warmup + decay,
                                  ") so that the stable phase is not negative, got ", training));
    }
  } else {
    return p.Error("num_stable_steps",
                   "is required: set num_stable_steps or num_training_steps (HF raises otherwise)");
  }
  ASSIGN_OR_RETURN(Shape warmup_type, ReadShape(p, "warmup_type", "linear"));
  ASSIGN_OR_RETURN(Shape decay_type, ReadShape(p, "decay_type", "cosine"));
  ASSIGN_OR_RETURN(double min_lr_ratio, p.Double("min_lr_ratio", 0.0));
  ASSIGN_OR_RETURN(double num_cycles, NumCycles(p, 0.5));
  return LambdaLr(
      p.context().base,
      WarmupStableDecay{warmup, stable, decay, warmup_type, decay_type, min_lr_ratio, num_cycles},
      BetweenRateAndOne(min_lr_ratio));
}

constexpr LibrarySchedule kSchedules[] = {
    {"linear", "num_warmup_steps num_training_steps", false, &CompileLinear},
    {"cosine", "num_warmup_steps num_training_steps num_cycles", false, &CompileCosine},
    {"cosine_with_restarts", "num_warmup_steps num_training_steps num_cycles", false,
     &CompileCosineWithRestarts},
    {"polynomial", "num_warmup_steps num_training_steps lr_end power", false, &CompilePolynomial},
    {"constant", "", false, &CompileConstant},
    {"constant_with_warmup", "num_warmup_steps", false, &CompileConstantWithWarmup},
    {"inverse_sqrt", "num_warmup_steps timescale", false, &CompileInverseSqrt},
    {"cosine_with_min_lr", "num_warmup_steps num_training_steps num_cycles min_lr min_lr_rate",
     false, &CompileCosineWithMinLr},
    {"cosine_warmup_with_min_lr",
     "num_warmup_steps num_training_steps num_cycles min_lr min_lr_rate warmup_lr_rate", false,
     &CompileCosineWarmupWithMinLr},
    {"warmup_stable_decay",
     "num_warmup_steps num_decay_steps num_training_steps num_stable_steps warmup_type decay_type "
     "min_lr_ratio num_cycles",
     false, &CompileWarmupStableDecay},
};

}  // namespace

absl::StatusOr<NodePtr> CompileTransformers(const ScheduleSpec& spec,
                                            const CompileContext& context) {
  return CompileLibrarySchedule(spec, context, Library{"transformers", kSchedules});
}

}  // namespace hpsched::core::kinds
