// timm: timm's learning-rate schedulers (huggingface/pytorch-image-models, timm/scheduler/
// cosine_lr.py, tanh_lr.py, step_lr.py, multistep_lr.py, poly_lr.py, each `_get_lr`, and the noise
// of scheduler.py `_add_noise` / `_calculate_noise`; main branch, cosine_lr.py at 7479d45,
// multistep_lr.py at b1b024d), selected by `name`.
//
// Step N is timm's t = N: the value step_update(N) (or step(N)) writes. With W = warmup_t:
//   t < W: warmup_lr_init + t * (target - warmup_lr_init) / W, target = b, or for "tanh" without
//          warmup_prefix the tanh value at t = W;
//   else:  the curve at t' = t - W (warmup_prefix) or t' = t;
// and inside noise_range_t the value v becomes v + v * n, n from torch.randn(1) with a generator
// seeded with noise_seed + t, redrawn until |n| < noise_pct.
// Curves: cycle i of length t_i = t_initial * cycle_mul^i starts at S_i = t_initial * (1 -
// cycle_mul^i) / (1 - cycle_mul) (i * t_initial for cycle_mul 1); with t_cur = t' - S_i,
// lr_max = b * cycle_decay^i and lr_min after cycle_limit cycles:
//   cosine: lr_min + 0.5 * (lr_max - lr_min) * (1 + cos(pi * t_cur^k / t_i^k))
//   tanh:   lr_min + 0.5 * (lr_max - lr_min) * (1 - tanh(lb * (1 - r) + ub * r)), r = t_cur / t_i
//   poly:   lr_min + (lr_max - lr_min) * (1 - t_cur^k / t_i^k)^power
//   step:      b * decay_rate^(t' // decay_t)          (Python's float floor division)
//   multistep: b * decay_rate^bisect_right(decay_t, t' + 1)
//
// timm's defect, fixed here: timm finds the cycle with floor(log(1 + t'/t_initial * (cycle_mul -
// 1)) / log(cycle_mul)), and the rounded logarithm puts some restarts one cycle early (t_initial
// 10, cycle_mul 3, t' = 1210: log gives 4.999999999999999, timm returns lr_min where cycle 5
// restarts at b). We start from that estimate and move to the last cycle whose start S_i (same
// formula as timm's t_cur) is <= t', which is exact whenever the S_i are exact doubles (every
// integer cycle_mul). Where timm raises OverflowError (cycle_decay^i or t^k too large), we give the
// mathematically right value: lr_min past cycle_limit, and (t_cur / t_i)^k.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/library_table.h"
#include "core/kinds/step_count.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

enum class Curve { kCosine, kTanh, kPoly, kStep, kMultiStep };

// One draw of torch.randn(1, generator=g).item() and its successors for a CPU generator seeded
// with `seed` (torch 1.13: aten/src/ATen/core/DistributionsHelper.h normal_distribution<double>,
// TransformationHelper.h uniform_real, CPUGeneratorImpl random64): normals come in Box-Muller
// pairs from two 53-bit uniforms, the second one cached for the next call; each is rounded to
// float32 (the tensor's dtype).
class TorchNormalStream {
 public:
  explicit TorchNormalStream(uint32_t seed) : engine_(seed) {}

  double Next() {
    if (has_cached_) {
      has_cached_ = false;
      return static_cast<float>(cached_);
    }
    const double u1 = Uniform();
    const double u2 = Uniform();
    const double r = std::sqrt(-2.0 * std::log(1.0 - u2));
    const double theta = 2.0 * std::numbers::pi * u1;
    cached_ = r * std::sin(theta);
    has_cached_ = true;
    return static_cast<float>(r * std::cos(theta));
  }

 private:
  double Uniform() {
    const uint64_t high = engine_();
    const uint64_t low = engine_();
    const uint64_t bits = ((high << 32) | low) & ((uint64_t{1} << 53) - 1);
    return static_cast<double>(bits) * (1.0 / static_cast<double>(uint64_t{1} << 53));
  }

  std::mt19937 engine_;
  double cached_ = 0;
  bool has_cached_ = false;
};

struct Noise {
  bool enabled = false;
  double range_begin = 0;
  double range_end = std::numeric_limits<double>::infinity();
  double pct = 0.67;
  int64_t seed = 42;

  bool Applies(int64_t t) const {
    const double x = static_cast<double>(t);
    return enabled && range_begin <= x && x < range_end;
  }

  // timm's _calculate_noise(t). torch seeds mt19937 with the low 32 bits of noise_seed + t.
  double At(int64_t t) const {
    const uint64_t seed = static_cast<uint64_t>(this->seed) + static_cast<uint64_t>(t);
    TorchNormalStream stream(static_cast<uint32_t>(seed));
    // timm redraws forever; with noise_pct >= 0.01 a draw is accepted with probability > 0.7%, so
    // the cap is never reached in practice and only bounds the work.
    for (int i = 0; i < 1'000'000; ++i) {
      const double n = stream.Next();
      if (std::fabs(n) < pct) return n;
    }
    return 0;
  }
};

struct Config {
  Curve curve;
  double base;
  double lr_min;
  // Cycles.
  int64_t t_initial;
  double cycle_mul;
  double cycle_decay;
  int64_t cycle_limit;
  double k_decay;
  double power;
  double lb;
  double ub;
  // Step and multistep.
  std::vector<double> decay_t;
  double decay_rate;
  // Warmup.
  int64_t warmup_t;
  double warmup_lr_init;
  double warmup_step;
  bool warmup_prefix;
  Noise noise;
};

// Where t' falls among the cycles.
struct CyclePosition {
  double index;   // i (an integer, as a double)
  double length;  // t_i
  double t_cur;
};

// Python's float floor division a // b for b > 0 (CPython float_floor_div).
double PyFloorDiv(double a, double b) {
  double mod = std::fmod(a, b);
  double div = (a - mod) / b;
  if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
  if (div == 0) return std::copysign(0.0, a / b);
  double floor_div = std::floor(div);
  if (div - floor_div > 0.5) floor_div += 1.0;
  return floor_div;
}

class TimmNode final : public Node {
 public:
  TimmNode(Config c, double bound) : Node(bound), c_(std::move(c)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    for (size_t i = 0; i < out.size(); ++i) out[i] = ValueAt(start + static_cast<int64_t>(i));
  }

  double ValueAt(int64_t t) const {
    double value = 0;
    if (t < c_.warmup_t) {
      value = c_.warmup_lr_init + static_cast<double>(t) * c_.warmup_step;
    } else {
      value = CurveAt(c_.warmup_prefix ? t - c_.warmup_t : t);
    }
    if (c_.noise.Applies(t)) value = value + value * c_.noise.At(t);
    return value;
  }

  // The curve without warmup or noise at t' >= 0.
  double CurveAt(int64_t t) const {
    switch (c_.curve) {
      case Curve::kStep:
        return c_.base * std::pow(c_.decay_rate, PyFloorDiv(static_cast<double>(t), c_.decay_t[0]));
      case Curve::kMultiStep: {
        const auto passed =
            std::upper_bound(c_.decay_t.begin(), c_.decay_t.end(), static_cast<double>(t + 1)) -
            c_.decay_t.begin();
        return c_.base * std::pow(c_.decay_rate, static_cast<double>(passed));
      }
      default:
        break;
    }
    const CyclePosition pos = Locate(t);
    if (!(pos.index < static_cast<double>(c_.cycle_limit))) return c_.lr_min;
    const double lr_max = c_.base * std::pow(c_.cycle_decay, pos.index);
    switch (c_.curve) {
      case Curve::kCosine:
        return c_.lr_min +
               0.5 * (lr_max - c_.lr_min) * (1 + std::cos(KDecayRatio(pos, std::numbers::pi)));
      case Curve::kPoly:
        return c_.lr_min + (lr_max - c_.lr_min) * std::pow(1 - KDecayRatio(pos, 1.0), c_.power);
      case Curve::kTanh: {
        const double tr = pos.t_cur / pos.length;
        return c_.lr_min +
               0.5 * (lr_max - c_.lr_min) * (1 - std::tanh(c_.lb * (1. - tr) + c_.ub * tr));
      }
      default:
        return c_.lr_min;
    }
  }

  // The cycle index of t' (used to bound cycle_decay^i at compile time).
  double CycleIndex(int64_t t) const { return Locate(t).index; }

 private:
  // t_cur^k / t_i^k, times `scale` first (timm's cosine computes math.pi * t_curr ** k / t_i ** k
  // left to right), falling back to scale * (t_cur / t_i)^k where the powers overflow (timm raises
  // OverflowError there).
  double KDecayRatio(const CyclePosition& pos, double scale) const {
    const double num = std::pow(pos.t_cur, c_.k_decay);
    const double den = std::pow(pos.length, c_.k_decay);
    if (std::isfinite(num) && std::isfinite(den)) return scale * num / den;
    return scale * std::pow(pos.t_cur / pos.length, c_.k_decay);
  }

  // The start of cycle i, as timm computes the start it subtracts for t_curr.
  double CycleStart(double i) const {
    return (1 - std::pow(c_.cycle_mul, i)) / (1 - c_.cycle_mul) * static_cast<double>(c_.t_initial);
  }

  CyclePosition Locate(int64_t t) const {
    const double t_initial = static_cast<double>(c_.t_initial);
    if (c_.cycle_mul == 1) {
      const int64_t i = t / c_.t_initial;
      return {static_cast<double>(i), t_initial, static_cast<double>(t - c_.t_initial * i)};
    }
    const double x = static_cast<double>(t);
    double i =
        std::floor(std::log(1 - x / t_initial * (1 - c_.cycle_mul)) / std::log(c_.cycle_mul));
    if (!(i >= 0)) i = 0;
    // Correct timm's estimate against the cycle starts themselves.
    while (CycleStart(i + 1) <= x) i += 1;
    while (i > 0 && CycleStart(i) > x) i -= 1;
    return {i, std::pow(c_.cycle_mul, i) * t_initial, x - CycleStart(i)};
  }

  Config c_;
};

absl::Status ReadCycles(const Params& p, Config& c) {
  ASSIGN_OR_RETURN(c.t_initial, StepCount(p, "t_initial", 1));
  ASSIGN_OR_RETURN(c.lr_min, p.PerGroupDouble("lr_min", 0.0));
  ASSIGN_OR_RETURN(c.cycle_mul, p.Double("cycle_mul", 1.0));
  ASSIGN_OR_RETURN(c.cycle_decay, p.Double("cycle_decay", 1.0));
  ASSIGN_OR_RETURN(c.cycle_limit, p.Int("cycle_limit", 1));
  ASSIGN_OR_RETURN(c.k_decay, p.Double("k_decay", 1.0));
  ASSIGN_OR_RETURN(c.power, p.Double("power", 0.5));
  ASSIGN_OR_RETURN(c.lb, p.Double("lb", -7.0));
  ASSIGN_OR_RETURN(c.ub, p.Double("ub", 3.0));
  if (c.lr_min < 0) return p.Error("lr_min", absl::StrCat("must be >= 0, got ", c.lr_min));
  // cycle_mul < 1 makes timm take the logarithm of a negative number once the shrinking cycles
  // have converged.
  if (c.cycle_mul < 1) {
    return p.Error("cycle_mul", absl::StrCat("must be >= 1, got ", c.cycle_mul));
  }
  if (c.cycle_decay < 0) {
    return p.Error("cycle_decay", absl::StrCat("must be >= 0, got ", c.cycle_decay));
  }
  if (c.cycle_limit < 0) {
    return p.Error("cycle_limit", absl::StrCat("must be >= 0, got ", c.cycle_limit));
  }
  if (c.k_decay <= 0) return p.Error("k_decay", absl::StrCat("must be > 0, got ", c.k_decay));
  if (c.power < 0) return p.Error("power", absl::StrCat("must be >= 0, got ", c.power));
  if (!(c.lb < c.ub)) {
    return p.Error("lb", absl::StrCat("must be < ub (", c.ub, "), got ", c.lb));
  }
  return absl::OkStatus();
}

absl::Status ReadDecay(const Params& p, Config& c) {
  ASSIGN_OR_RETURN(c.decay_t, p.Doubles("decay_t"));
  ASSIGN_OR_RETURN(c.decay_rate, p.Double("decay_rate", 1.0));
  if (c.curve == Curve::kStep) {
    if (c.decay_t.size() != 1) {
      return p.Error("decay_t", absl::StrCat("must hold exactly one value (the decay period) for "
                                             "\"step\", got ",
                                             c.decay_t.size()));
    }
    if (!(c.decay_t[0] > 0)) {
      return p.Error("decay_t", absl::StrCat("must be > 0, got ", c.decay_t[0]));
    }
  } else {
    if (c.decay_t.empty()) return p.Error("decay_t", "is required");
    for (size_t i = 1; i < c.decay_t.size(); ++i) {
      if (c.decay_t[i] < c.decay_t[i - 1]) {
        return p.Error("decay_t", absl::StrCat("must be non-decreasing, got ", c.decay_t[i],
                                               " after ", c.decay_t[i - 1]));
      }
    }
  }
  if (c.decay_rate < 0) {
    return p.Error("decay_rate", absl::StrCat("must be >= 0, got ", c.decay_rate));
  }
  return absl::OkStatus();
}

absl::Status ReadNoise(const Params& p, Noise& noise) {
  ASSIGN_OR_RETURN(std::vector<double> range, p.Doubles("noise_range_t"));
  ASSIGN_OR_RETURN(noise.pct, p.Double("noise_pct", 0.67));
  ASSIGN_OR_RETURN(double noise_std, p.Double("noise_std", 1.0));
  (void)noise_std;  // timm accepts and ignores it.
  ASSIGN_OR_RETURN(noise.seed, p.Int("noise_seed", 42));
  if (range.size() > 2) {
    return p.Error("noise_range_t", absl::StrCat("must hold 0, 1 or 2 values, got ", range.size()));
  }
  noise.enabled = !range.empty();
  if (!range.empty()) noise.range_begin = range[0];
  if (range.size() == 2) noise.range_end = range[1];
  if (!(noise.pct >= 0.01)) {
    return p.Error("noise_pct", absl::StrCat("must be >= 0.01, got ", noise.pct));
  }
  return absl::OkStatus();
}

// The largest |peak| the schedule reaches within the step range (|b| * decay_rate^count, or
// |b| * cycle_decay^i up to the last cycle); it must stay far from overflow, so that
// lr_max - lr_min and the noise stay finite.
absl::StatusOr<double> Peak(const Params& p, const Config& c, const TimmNode& node) {
  constexpr double kMaxPeak = 1e300;
  const double last = static_cast<double>(kStepLimit - 1);
  double peak = 0;
  absl::string_view field;
  if (c.curve == Curve::kStep || c.curve == Curve::kMultiStep) {
    if (c.decay_rate <= 1) return std::fabs(c.base);
    const double decays = c.curve == Curve::kStep ? PyFloorDiv(last, c.decay_t[0])
                                                  : static_cast<double>(c.decay_t.size());
    peak = std::fabs(c.base) * std::pow(c.decay_rate, decays);
    field = "decay_rate";
  } else {
    if (c.cycle_decay <= 1 || c.cycle_limit == 0) return std::fabs(c.base);
    const double last_cycle =
        std::min(node.CycleIndex(kStepLimit - 1), static_cast<double>(c.cycle_limit - 1));
    peak = std::fabs(c.base) * std::pow(c.cycle_decay, last_cycle);
    field = "cycle_decay";
  }
  if (!(peak <= kMaxPeak)) {
    return p.Error(field, "makes the value overflow before step 2^53 (|b| * rate^count > 1e300)");
  }
  return std::max(peak, std::fabs(c.base));
}

absl::StatusOr<NodePtr> CompileCurve(const Params& p, Curve curve) {
  Config c{};
  c.curve = curve;
  c.base = p.context().base;
  c.cycle_mul = 1;
  const bool steps = c.curve == Curve::kStep || c.curve == Curve::kMultiStep;
  if (steps) {
    RETURN_IF_ERROR(ReadDecay(p, c));
  } else {
    RETURN_IF_ERROR(ReadCycles(p, c));
  }
  ASSIGN_OR_RETURN(c.warmup_t, StepCount(p, "warmup_t", 0, 0));
  ASSIGN_OR_RETURN(c.warmup_lr_init, p.PerGroupDouble("warmup_lr_init", 0.0));
  ASSIGN_OR_RETURN(c.warmup_prefix, p.Bool("warmup_prefix", steps));
  if (c.warmup_lr_init < 0) {
    return p.Error("warmup_lr_init", absl::StrCat("must be >= 0, got ", c.warmup_lr_init));
  }
  RETURN_IF_ERROR(ReadNoise(p, c.noise));

  TimmNode probe(c, /*bound=*/0);
  ASSIGN_OR_RETURN(double peak, Peak(p, c, probe));
  // Every curve lies between lr_min and lr_max <= peak (its coefficient is in [0, 1]); the warmup
  // between warmup_lr_init and its target; the noise multiplies by 1 + n, |n| < noise_pct.
  double bound = std::max({peak, std::fabs(c.lr_min), std::fabs(c.warmup_lr_init)});
  if (c.warmup_t > 0) {
    // tanh without warmup_prefix warms up to its own value at warmup_t, the others to b.
    const double target =
        c.curve == Curve::kTanh && !c.warmup_prefix ? probe.CurveAt(c.warmup_t) : c.base;
    c.warmup_step = (target - c.warmup_lr_init) / static_cast<double>(c.warmup_t);
    bound = std::max(bound, std::fabs(target));
  }
  if (c.noise.enabled) bound *= 1 + c.noise.pct;
  return std::make_unique<TimmNode>(std::move(c), RoundBoundUp(bound));
}

// Every scheduler takes the warmup and the noise.
#define HPSCHED_TIMM_COMMON \
  "warmup_t warmup_lr_init warmup_prefix noise_range_t noise_pct noise_std noise_seed "

constexpr LibrarySchedule kSchedules[] = {
    {"cosine", HPSCHED_TIMM_COMMON "t_initial lr_min cycle_mul cycle_decay cycle_limit k_decay",
     false, [](const Params& p) { return CompileCurve(p, Curve::kCosine); }},
    {"tanh", HPSCHED_TIMM_COMMON "t_initial lb ub lr_min cycle_mul cycle_decay cycle_limit", false,
     [](const Params& p) { return CompileCurve(p, Curve::kTanh); }},
    {"step", HPSCHED_TIMM_COMMON "decay_t decay_rate", false,
     [](const Params& p) { return CompileCurve(p, Curve::kStep); }},
    {"multistep", HPSCHED_TIMM_COMMON "decay_t decay_rate", false,
     [](const Params& p) { return CompileCurve(p, Curve::kMultiStep); }},
    {"poly", HPSCHED_TIMM_COMMON "t_initial power lr_min cycle_mul cycle_decay cycle_limit k_decay",
     false, [](const Params& p) { return CompileCurve(p, Curve::kPoly); }},
};

#undef HPSCHED_TIMM_COMMON

}  // namespace

absl::StatusOr<NodePtr> CompileTimm(const ScheduleSpec& spec, const CompileContext& context) {
  return CompileLibrarySchedule(spec, context, Library{"timm", kSchedules});
}

}  // namespace hpsched::core::kinds
