#include "client/cli/plot_scale.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_format.h"

namespace hpsched::cli {
namespace {

constexpr double kEpsilon = 1e-9;

// A nice step m * 10^e with m in {1, 2, 5}.
struct Step {
  int mantissa = 1;
  int exponent = 0;

  double Value() const { return Multiple(1); }
  // k * step, computed so that k * 0.1 is the double nearest to k / 10.
  double Multiple(double k) const {
    return exponent >= 0 ? k * mantissa * std::pow(10.0, exponent)
                         : k * mantissa / std::pow(10.0, -exponent);
  }
};

Step NiceStepOf(double rough) {
  if (!(rough > 0) || !std::isfinite(rough)) return Step{};
  int exponent = static_cast<int>(std::floor(std::log10(rough)));
  const double fraction = rough / std::pow(10.0, exponent);
  int mantissa = 10;
  if (fraction <= 1 + kEpsilon) {
    mantissa = 1;
  } else if (fraction <= 2 + kEpsilon) {
    mantissa = 2;
  } else if (fraction <= 5 + kEpsilon) {
    mantissa = 5;
  }
  if (mantissa == 10) {
    mantissa = 1;
    ++exponent;
  }
  return Step{mantissa, exponent};
}

// The nice step below `step`: 5 -> 2 -> 1 -> 0.5.
Step Smaller(Step step) {
  if (step.mantissa == 5) return Step{2, step.exponent};
  if (step.mantissa == 2) return Step{1, step.exponent};
  return Step{5, step.exponent - 1};
}

std::vector<double> TicksWithStep(double lo, double hi, Step step) {
  const double s = step.Value();
  const double first = std::ceil(lo / s - kEpsilon);
  const double last = std::floor(hi / s + kEpsilon);
  std::vector<double> ticks;
  for (double k = first; k <= last && ticks.size() < 1000; ++k) {
    const double v = step.Multiple(k);
    ticks.push_back(v == 0 ? 0.0 : v);  // No "-0".
  }
  return ticks;
}

// The number of ticks of `step` over [lo, hi], or over the enclosing ticks when `padded`.
int TickCount(double lo, double hi, Step step, bool padded) {
  if (!padded) return static_cast<int>(TicksWithStep(lo, hi, step).size());
  const double s = step.Value();
  return static_cast<int>(std::ceil(hi / s - kEpsilon) - std::floor(lo / s + kEpsilon)) + 1;
}

Step ChooseStep(double lo, double hi, int target, bool padded = false) {
  target = std::max(target, 2);
  // Candidates around range / target; keep the one whose tick count is closest to the target,
  // preferring the larger step on a tie.
  Step best = NiceStepOf((hi - lo) / target);
  int best_error = std::abs(TickCount(lo, hi, best, padded) - target);
  Step candidate = best;
  for (int i = 0; i < 3; ++i) {
    candidate = Smaller(candidate);
    const int count = TickCount(lo, hi, candidate, padded);
    const int error = std::abs(count - target);
    if (error < best_error) {
      best = candidate;
      best_error = error;
    }
  }
  return best;
}

// The range around a flat value v: v +- 10% (+- 1 around 0).
void Widen(double* lo, double* hi, double minimum) {
  if (*hi > *lo) return;
  const double d = std::max(std::abs(*lo) * 0.1, minimum);
  *lo -= d;
  *hi += d;
}

}  // namespace

double NiceStep(double rough) { return NiceStepOf(rough).Value(); }

std::vector<double> NiceTicks(double lo, double hi, int target, double* step) {
  if (!(hi > lo)) {
    if (step != nullptr) *step = 1;
    return {lo};
  }
  const Step s = ChooseStep(lo, hi, target);
  if (step != nullptr) *step = s.Value();
  return TicksWithStep(lo, hi, s);
}

std::string FormatTick(double value, double step) {
  if (value == 0) return "0";
  if (!std::isfinite(value)) return absl::StrFormat("%g", value);
  const int step_exponent = static_cast<int>(std::floor(std::log10(std::abs(step)) + kEpsilon));
  const int decimals = std::max(0, -step_exponent);
  if (decimals <= 4 && std::abs(value) < 1e7) return absl::StrFormat("%.*f", decimals, value);
  const int value_exponent = static_cast<int>(std::floor(std::log10(std::abs(value)) + kEpsilon));
  const int digits = std::clamp(std::max(value_exponent, step_exponent) - step_exponent + 1, 1, 17);
  return absl::StrFormat("%.*g", digits, value);
}

double Axis::Fraction(double value) const {
  if (log) {
    if (!(value > 0)) return std::numeric_limits<double>::quiet_NaN();
    return (std::log10(value) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
  }
  return (value - lo) / (hi - lo);
}

Axis LinearAxis(double data_lo, double data_hi, int target, bool pad, bool integer) {
  Axis axis;
  if (!std::isfinite(data_lo) || !std::isfinite(data_hi) || data_lo > data_hi) {
    data_lo = 0;
    data_hi = 1;
  }
  Widen(&data_lo, &data_hi, integer ? 1.0 : (data_lo == 0 ? 1.0 : 0.0));
  Step step = ChooseStep(data_lo, data_hi, target, pad);
  if (integer && step.exponent < 0) step = Step{1, 0};
  axis.lo = data_lo;
  axis.hi = data_hi;
  if (pad) {
    axis.lo = step.Multiple(std::floor(data_lo / step.Value() + kEpsilon));
    axis.hi = step.Multiple(std::ceil(data_hi / step.Value() - kEpsilon));
  }
  axis.ticks = TicksWithStep(axis.lo, axis.hi, step);
  for (double t : axis.ticks) axis.labels.push_back(FormatTick(t, step.Value()));
  return axis;
}

Axis LogAxis(double data_lo, double data_hi, int target) {
  Axis axis;
  axis.log = true;
  if (!(data_lo > 0) || !std::isfinite(data_lo) || !std::isfinite(data_hi) || data_hi < data_lo) {
    data_lo = 0.1;
    data_hi = 1;
  }
  int lo_exp = static_cast<int>(std::floor(std::log10(data_lo) + kEpsilon));
  int hi_exp = static_cast<int>(std::ceil(std::log10(data_hi) - kEpsilon));
  if (hi_exp <= lo_exp) hi_exp = lo_exp + 1;
  auto pow10 = [](int e) { return e >= 0 ? std::pow(10.0, e) : 1.0 / std::pow(10.0, -e); };
  if (hi_exp - lo_exp <= 2) {
    // 1-2-5 multiples of powers of ten; the range pads to the enclosing ones.
    std::vector<double> candidates;
    for (int e = lo_exp; e <= hi_exp; ++e) {
      for (int m : {1, 2, 5}) {
        if (e == hi_exp && m > 1) break;
        candidates.push_back(m * pow10(e));
      }
    }
    size_t first = 0;
    while (first + 1 < candidates.size() && candidates[first + 1] <= data_lo * (1 + kEpsilon)) {
      ++first;
    }
    size_t last = candidates.size() - 1;
    while (last > first + 1 && candidates[last - 1] >= data_hi * (1 - kEpsilon)) --last;
    axis.lo = candidates[first];
    axis.hi = candidates[last];
    for (size_t i = first; i <= last; ++i) {
      axis.ticks.push_back(candidates[i]);
      axis.labels.push_back(FormatTick(candidates[i], candidates[i]));
    }
    return axis;
  }
  const int stride = std::max(1, (hi_exp - lo_exp + std::max(target, 2) - 1) / std::max(target, 2));
  lo_exp = static_cast<int>(std::floor(static_cast<double>(lo_exp) / stride)) * stride;
  hi_exp = static_cast<int>(std::ceil(static_cast<double>(hi_exp) / stride)) * stride;
  axis.lo = pow10(lo_exp);
  axis.hi = pow10(hi_exp);
  for (int e = lo_exp; e <= hi_exp; e += stride) {
    axis.ticks.push_back(pow10(e));
    axis.labels.push_back(FormatTick(pow10(e), pow10(e)));
  }
  return axis;
}

}  // namespace hpsched::cli
