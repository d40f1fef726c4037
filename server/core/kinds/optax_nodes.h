// The evaluation nodes of the optax kind (core/kinds/optax.cc): one per optax formula, each
// transcribed from google-deepmind/optax, optax/schedules/_schedule.py (commit bda4442) and
// _join.py (commit 58f8353), in float64 and in optax's order of operations (optax computes in
// float32 by default under jax). The nodes take resolved, validated numbers; optax.cc checks the
// ranges that keep every value finite.
#ifndef HPSCHED_CORE_KINDS_OPTAX_NODES_H_
#define HPSCHED_CORE_KINDS_OPTAX_NODES_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "core/kinds/closed_form_node.h"
#include "core/node.h"

namespace hpsched::core::kinds::optax {

// Every optax schedule but join_schedules (PiecewiseNode, core/kinds/piecewise_node.h) is a closed
// form in the step (ClosedFormNode).

// constant_schedule: `value` at every step.
struct Constant {
  double value;
  double operator()(int64_t) const { return value; }
};

// polynomial_schedule (and linear_schedule, power 1), for transition_steps > 0 and
// transition_begin >= 0: c = clip(t - begin, 0, steps); (init - end) * (1 - c / steps)^power + end.
struct Polynomial {
  double init;
  double end;
  double power;
  int64_t steps;
  int64_t begin;
  double operator()(int64_t t) const {
    const int64_t count = std::clamp<int64_t>(t - begin, 0, steps);
    const double frac = 1 - static_cast<double>(count) / static_cast<double>(steps);
    return (init - end) * std::pow(frac, power) + end;
  }
};

// exponential_decay, for transition_steps > 0, decay_rate != 0 and transition_begin >= 0:
// d = t - begin; p = d / steps (floored if staircase); init if d <= 0 else init * rate^p; then,
// with an end value, clipped from below (rate < 1) or above (rate >= 1), the initial value too.
struct ExponentialDecay {
  double init;
  int64_t steps;
  double rate;
  int64_t begin;
  bool staircase;
  std::optional<double> end;
  double operator()(int64_t t) const {
    const int64_t decreased = t - begin;
    double value = init;
    if (decreased > 0) {
      double p = static_cast<double>(decreased) / static_cast<double>(steps);
      if (staircase) p = std::floor(p);
      value = init * std::pow(rate, p);
    }
    if (!end.has_value()) return value;
    // jnp.maximum / jnp.minimum; values are never NaN here (optax.cc rejects specs that make them).
    return rate < 1.0 ? std::max(value, *end) : std::min(value, *end);
  }
};

// cosine_decay_schedule, for decay_steps > 0: c = min(t, steps);
// init * ((1 - alpha) * (0.5 * (1 + cos(pi * c / steps)))^exponent + alpha).
struct CosineDecay {
  double init;
  double steps;
  double alpha;
  double exponent;
  template <typename Math>
  double operator()(int64_t t, const Math& math) const {
    const double count = std::min(static_cast<double>(t), steps);
    const double cosine = 0.5 * (1 + math.Cos(std::numbers::pi * count / steps));
    if constexpr (Math::kRecording) return 0;  // Only the cos argument was wanted.
    const double decayed = (1 - alpha) * std::pow(cosine, exponent) + alpha;
    return init * decayed;
  }
};

// piecewise_constant_schedule: values[k], where k = the number of boundaries <= t, boundaries
// sorted, and values[k] = init * scales[0] * ... * scales[k - 1] (multiplied in that order).
struct PiecewiseConstant {
  std::vector<int64_t> boundaries;
  std::vector<double> values;
  double operator()(int64_t t) const {
    const auto k = std::upper_bound(boundaries.begin(), boundaries.end(), t) - boundaries.begin();
    return values[static_cast<size_t>(k)];
  }
};

// piecewise_interpolate_schedule: bounds = [0, sorted boundaries...], values = their cumulative
// products as above. From the last bound on: the last value. Before it, in the interval [bounds[i],
// bounds[i + 1]) that holds t (empty intervals hold nothing), pct = (t - bounds[i]) / (bounds[i +
// 1] - bounds[i]) and the value interpolates values[i] -> values[i + 1]: linear (end - start) * pct
// + start, or cosine end + (start - end) / 2 * (cos(pi * pct) + 1).
struct PiecewiseInterpolate {
  std::vector<int64_t> bounds;
  std::vector<double> values;
  bool cosine;
  double operator()(int64_t t) const {
    if (t >= bounds.back()) return values.back();
    // The last bound <= t; bounds[0] = 0 <= t, and bounds[i + 1] > t since t < bounds.back().
    const size_t i =
        static_cast<size_t>(std::upper_bound(bounds.begin(), bounds.end(), t) - bounds.begin()) - 1;
    const double size = static_cast<double>(bounds[i + 1] - bounds[i]);
    const double pct = static_cast<double>(t - bounds[i]) / size;
    const double start = values[i];
    const double end = values[i + 1];
    if (cosine) return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
    return (end - start) * pct + start;
  }
};

}  // namespace hpsched::core::kinds::optax

#endif  // HPSCHED_CORE_KINDS_OPTAX_NODES_H_
