// optax: the schedules of google-deepmind/optax, by function name (optax/schedules/_schedule.py at
// commit bda4442 and _join.py at commit 58f8353, optax 0.2.x). Step N = schedule(N): optax
// evaluates a schedule on the update count before incrementing it, so the first update uses
// schedule(0). The formulas are in core/kinds/optax_nodes.h; this file maps each function's
// arguments onto them, with optax's defaults and quirks:
//   * polynomial/linear and exponential_decay with transition_steps <= 0 (and exponential_decay
//     with decay_rate 0) are the constant init_value, end_value ignored; a negative
//     transition_begin counts as 0;
//   * exponential_decay's end_value clips from below when decay_rate < 1, from above otherwise,
//     the initial value included;
//   * warmup_cosine_decay's decay_steps includes the warmup, and alpha = end_value / peak_value
//     (0 when peak_value is 0); warmup_constant with warmup_steps 0 is the constant init_value;
//   * piecewise scales multiply cumulatively from their boundary on; boundaries_and_scales is a
//     dict, so the *_onecycle boundaries that coincide keep the last scale;
//   * join_schedules runs schedules[i] on local time t - boundaries[i - 1].
// Absolute values (value, init_value, peak_value, end_value) are per group; the value a function
// starts from or peaks at (value, init_value, peak_value) defaults to the group's base value,
// except the warmup start init_value of warmup_*, which optax requires. Ranges optax leaves open
// are bounded so that every value is finite for every step in [0, 2^53).
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/library_table.h"
#include "core/kinds/optax_nodes.h"
#include "core/kinds/piecewise_node.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

using optax::Constant;
using optax::CosineDecay;
using optax::ExponentialDecay;
using optax::PiecewiseConstant;
using optax::PiecewiseInterpolate;
using optax::Polynomial;

constexpr absl::string_view kWarmupCosine = "warmup_cosine_decay_schedule";

// A step count or step offset: an integer with |value| <= 2^53, at least `min`.
absl::StatusOr<int64_t> Steps(const Params& p, absl::string_view name, int64_t min,
                              std::optional<int64_t> default_value = std::nullopt) {
  int64_t value = 0;
  if (default_value.has_value()) {
    ASSIGN_OR_RETURN(value, p.Int(name, *default_value));
  } else {
    ASSIGN_OR_RETURN(value, p.Int(name));
  }
  if (value < min || value > kStepLimit || value < -kStepLimit) {
    const std::string low = min == -kStepLimit ? std::string("-2^53") : absl::StrCat(min);
    return p.Error(name, absl::StrCat("must be in [", low, ", 2^53], got ", value));
  }
  return value;
}

absl::StatusOr<double> NonNegative(const Params& p, absl::string_view name, double default_value) {
  ASSIGN_OR_RETURN(double value, p.Double(name, default_value));
  if (value < 0) return p.Error(name, absl::StrCat("must be >= 0, got ", value));
  return value;
}

absl::StatusOr<double> Fraction(const Params& p, absl::string_view name, double default_value) {
  ASSIGN_OR_RETURN(double value, p.Double(name, default_value));
  if (value < 0 || value > 1) {
    return p.Error(name, absl::StrCat("must be between 0 and 1, got ", value));
  }
  return value;
}

double MaxAbs(const std::vector<double>& values) {
  double bound = 0;
  for (double v : values) bound = std::max(bound, std::fabs(v));
  return bound;
}

// polynomial_schedule(init, end, power, steps, begin): constant init when steps <= 0, begin < 0
// counts as 0.
NodePtr PolynomialNode(double init, double end, double power, int64_t steps, int64_t begin) {
  if (steps <= 0) return MakeClosedFormNode(Constant{init}, std::fabs(init));
  // (1 - c / steps)^power is in [0, 1]: the value lies between end and init.
  return MakeClosedFormNode(Polynomial{init, end, power, steps, std::max<int64_t>(begin, 0)},
                            std::max(std::fabs(init), std::fabs(end)));
}

// The linear warmup of warmup_*: linear_schedule(init_value, peak_value, warmup_steps).
NodePtr WarmupNode(double init, double peak, int64_t warmup_steps) {
  return PolynomialNode(init, peak, 1.0, warmup_steps, 0);
}

NodePtr Joined(NodePtr first, NodePtr second, int64_t boundary) {
  std::vector<NodePtr> children;
  children.push_back(std::move(first));
  children.push_back(std::move(second));
  return std::make_unique<PiecewiseNode>(std::move(children), std::vector<int64_t>{boundary});
}

// exponential_decay from `init` with the exponential parameters of `p`.
absl::StatusOr<NodePtr> ExponentialDecayNode(const Params& p, double init) {
  ASSIGN_OR_RETURN(int64_t steps, Steps(p, "transition_steps", -kStepLimit));
  if (!p.Has("decay_rate")) return p.Error("decay_rate", "is required");
  ASSIGN_OR_RETURN(double rate, NonNegative(p, "decay_rate", 0));
  ASSIGN_OR_RETURN(int64_t begin, Steps(p, "transition_begin", -kStepLimit, 0));
  ASSIGN_OR_RETURN(bool staircase, p.Bool("staircase", false));
  std::optional<double> end;
  if (p.Has("end_value")) {
    ASSIGN_OR_RETURN(end, p.PerGroupDouble("end_value", std::nullopt));
  }
  if (steps <= 0 || rate == 0) return MakeClosedFormNode(Constant{init}, std::fabs(init));
  const ExponentialDecay formula{init, steps, rate, std::max<int64_t>(begin, 0), staircase, end};
  // The value is monotonic in the step, so it is finite everywhere when it is at the last step.
  const double last = formula(kStepLimit - 1);
  if (!std::isfinite(last)) {
    return p.Error("decay_rate",
                   absl::StrCat("must keep the value finite up to step 2^53 - 1 (it reaches ", last,
                                "; set end_value to cap it), got ", rate));
  }
  // init * rate^p is monotonic in the step, from init to its value at the last step; the clip
  // moves a value towards end_value, or to it.
  return MakeClosedFormNode(
      formula, std::max({std::fabs(init), std::fabs(end.value_or(0.0)), std::fabs(last)}));
}

// Cosine decay from `peak`: decay_steps > 0 steps, with alpha and exponent.
absl::StatusOr<NodePtr> CosineDecayNode(const Params& p, double init, int64_t decay_steps,
                                        double alpha) {
  ASSIGN_OR_RETURN(double exponent, NonNegative(p, "exponent", 1.0));
  // The cosine factor is in [0, 1], and so is its power.
  return MakeClosedFormNode(CosineDecay{init, static_cast<double>(decay_steps), alpha, exponent},
                            std::fabs(init) * (std::fabs(1 - alpha) + std::fabs(alpha)));
}

// The values of a piecewise schedule: init, init * scales[0], init * scales[0] * scales[1], ...
// over boundaries sorted without duplicates. `field` names the parameter an out-of-range value is
// blamed on.
absl::StatusOr<std::vector<double>> CumulativeValues(
    const Params& p, absl::string_view field, double init,
    const std::vector<std::pair<int64_t, double>>& sorted) {
  if (!(std::fabs(init) <= kMaxMagnitude)) {
    return p.Error(field, absl::StrCat("gives the start value ", init,
                                       "; every value must be within +-1e150"));
  }
  std::vector<double> values = {init};
  for (const auto& [boundary, scale] : sorted) {
    const double value = values.back() * scale;
    if (!(std::fabs(value) <= kMaxMagnitude)) {
      return p.Error(field, absl::StrCat("gives the value ", value, " from step ", boundary,
                                         " on; every value must be within +-1e150"));
    }
    values.push_back(value);
  }
  return values;
}

// boundaries_and_scales as two parallel lists, sorted by boundary (optax sorts the dict).
absl::StatusOr<std::vector<std::pair<int64_t, double>>> BoundariesAndScales(const Params& p) {
  ASSIGN_OR_RETURN(std::vector<int64_t> boundaries, p.Ints("boundaries"));
  ASSIGN_OR_RETURN(std::vector<double> scales, p.Doubles("scales"));
  if (boundaries.size() != scales.size()) {
    return p.Error("scales", absl::StrCat("must have one value per boundary (", boundaries.size(),
                                          "), got ", scales.size()));
  }
  std::vector<std::pair<int64_t, double>> pairs;
  for (size_t i = 0; i < boundaries.size(); ++i) {
    const std::string b = absl::StrCat("boundaries[", i, "]");
    if (boundaries[i] < 0 || boundaries[i] > kStepLimit) {
      return p.Error(b, absl::StrCat("must be in [0, 2^53], got ", boundaries[i]));
    }
    for (size_t j = 0; j < i; ++j) {
      if (boundaries[j] == boundaries[i]) {
        return p.Error(b, absl::StrCat("repeats boundaries[", j, "] (", boundaries[i],
                                       "): optax's boundaries_and_scales is a dict"));
      }
    }
    if (scales[i] < 0) {
      return p.Error(absl::StrCat("scales[", i, "]"),
                     absl::StrCat("must be >= 0, as in optax, got ", scales[i]));
    }
    pairs.emplace_back(boundaries[i], scales[i]);
  }
  std::sort(pairs.begin(), pairs.end());
  return pairs;
}

NodePtr InterpolateNode(double init, const std::vector<std::pair<int64_t, double>>& sorted,
                        std::vector<double> values, bool cosine) {
  std::vector<int64_t> bounds = {0};
  for (const auto& pair : sorted) bounds.push_back(pair.first);
  // Each value interpolates between two of `values`.
  const double bound = MaxAbs(values);
  return MakeClosedFormNode(PiecewiseInterpolate{std::move(bounds), std::move(values), cosine},
                            bound);
}

// *_onecycle: piecewise_interpolate_schedule from peak_value / div_factor over the dict `scales`
// (boundary -> scale; a later key replaces an earlier equal one, as in a dict literal).
absl::StatusOr<NodePtr> OneCycleNode(const Params& p, double init,
                                     const std::map<int64_t, double>& scales, bool cosine) {
  const std::vector<std::pair<int64_t, double>> sorted(scales.begin(), scales.end());
  ASSIGN_OR_RETURN(std::vector<double> values, CumulativeValues(p, "div_factor", init, sorted));
  return InterpolateNode(init, sorted, std::move(values), cosine);
}

struct OneCycleArgs {
  int64_t steps;
  double peak;
  double pct_start;
  double div_factor;
  double final_div_factor;
};

absl::StatusOr<OneCycleArgs> ReadOneCycle(const Params& p, const CompileContext& context) {
  OneCycleArgs a;
  ASSIGN_OR_RETURN(a.steps, Steps(p, "transition_steps", 1));
  ASSIGN_OR_RETURN(a.peak, p.PerGroupDouble("peak_value", context.base));
  ASSIGN_OR_RETURN(a.pct_start, Fraction(p, "pct_start", 0.3));
  ASSIGN_OR_RETURN(a.div_factor, p.Double("div_factor", 25.0));
  ASSIGN_OR_RETURN(a.final_div_factor, p.Double("final_div_factor", 1e4));
  if (a.div_factor <= 0) {
    return p.Error("div_factor", absl::StrCat("must be > 0, got ", a.div_factor));
  }
  if (a.final_div_factor <= 0) {
    return p.Error("final_div_factor", absl::StrCat("must be > 0, got ", a.final_div_factor));
  }
  return a;
}

// int(pct * steps) of Python, for pct in [0, 1].
int64_t Truncated(double pct, int64_t steps) {
  return static_cast<int64_t>(pct * static_cast<double>(steps));
}

// ---- The functions ----

absl::StatusOr<NodePtr> CompileConstantSchedule(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(double value, p.PerGroupDouble("value", context.base));
  return MakeClosedFormNode(Constant{value}, std::fabs(value));
}

absl::StatusOr<NodePtr> CompilePolynomialLike(const Params& p, const CompileContext& context,
                                              std::optional<double> fixed_power) {
  ASSIGN_OR_RETURN(double init, p.PerGroupDouble("init_value", context.base));
  ASSIGN_OR_RETURN(double end, p.PerGroupDouble("end_value", std::nullopt));
  double power = 1.0;
  if (fixed_power.has_value()) {
    power = *fixed_power;
  } else {
    ASSIGN_OR_RETURN(power, p.Double("power"));
    // 0^power at the end of the transition: infinite for power < 0.
    if (power < 0) return p.Error("power", absl::StrCat("must be >= 0, got ", power));
  }
  ASSIGN_OR_RETURN(int64_t steps, Steps(p, "transition_steps", -kStepLimit));
  ASSIGN_OR_RETURN(int64_t begin, Steps(p, "transition_begin", -kStepLimit, 0));
  return PolynomialNode(init, end, power, steps, begin);
}

absl::StatusOr<NodePtr> CompilePolynomialSchedule(const Params& p) {
  const CompileContext& context = p.context();
  return CompilePolynomialLike(p, context, std::nullopt);
}

absl::StatusOr<NodePtr> CompileLinearSchedule(const Params& p) {
  const CompileContext& context = p.context();
  return CompilePolynomialLike(p, context, 1.0);
}

absl::StatusOr<NodePtr> CompileExponentialDecay(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(double init, p.PerGroupDouble("init_value", context.base));
  return ExponentialDecayNode(p, init);
}

absl::StatusOr<NodePtr> CompileCosineDecaySchedule(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(double init, p.PerGroupDouble("init_value", context.base));
  ASSIGN_OR_RETURN(int64_t decay_steps, Steps(p, "decay_steps", 1));
  ASSIGN_OR_RETURN(double alpha, p.Double("alpha", 0.0));
  return CosineDecayNode(p, init, decay_steps, alpha);
}

struct WarmupArgs {
  double init;
  double peak;
  int64_t warmup_steps;
};

absl::StatusOr<WarmupArgs> ReadWarmup(const Params& p, const CompileContext& context) {
  WarmupArgs a;
  ASSIGN_OR_RETURN(a.init, p.PerGroupDouble("init_value", std::nullopt));
  ASSIGN_OR_RETURN(a.peak, p.PerGroupDouble("peak_value", context.base));
  ASSIGN_OR_RETURN(a.warmup_steps, Steps(p, "warmup_steps", 0));
  return a;
}

absl::StatusOr<NodePtr> CompileWarmupConstantSchedule(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(WarmupArgs w, ReadWarmup(p, context));
  return WarmupNode(w.init, w.peak, w.warmup_steps);
}

absl::StatusOr<NodePtr> CompileWarmupCosineDecaySchedule(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(WarmupArgs w, ReadWarmup(p, context));
  ASSIGN_OR_RETURN(int64_t decay_steps, Steps(p, "decay_steps", 1));
  if (decay_steps <= w.warmup_steps) {
    return p.Error("decay_steps",
                   absl::StrCat("must be greater than warmup_steps (", w.warmup_steps,
                                "): it includes the warmup, got ", decay_steps));
  }
  ASSIGN_OR_RETURN(double end, p.PerGroupDouble("end_value", 0.0));
  const double alpha = w.peak == 0.0 ? 0.0 : end / w.peak;
  if (!(std::fabs(alpha) <= kMaxMagnitude)) {
    return p.Error(
        "end_value",
        absl::StrCat("must keep end_value / peak_value within +-1e150, got ", end, " / ", w.peak));
  }
  ASSIGN_OR_RETURN(NodePtr cosine, CosineDecayNode(p, w.peak, decay_steps - w.warmup_steps, alpha));
  return Joined(WarmupNode(w.init, w.peak, w.warmup_steps), std::move(cosine), w.warmup_steps);
}

absl::StatusOr<NodePtr> CompileWarmupExponentialDecaySchedule(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(WarmupArgs w, ReadWarmup(p, context));
  ASSIGN_OR_RETURN(NodePtr decay, ExponentialDecayNode(p, w.peak));
  return Joined(WarmupNode(w.init, w.peak, w.warmup_steps), std::move(decay), w.warmup_steps);
}

absl::StatusOr<NodePtr> CompilePiecewiseConstantSchedule(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(double init, p.PerGroupDouble("init_value", context.base));
  ASSIGN_OR_RETURN(auto sorted, BoundariesAndScales(p));
  ASSIGN_OR_RETURN(std::vector<double> values, CumulativeValues(p, "scales", init, sorted));
  std::vector<int64_t> boundaries;
  for (const auto& pair : sorted) boundaries.push_back(pair.first);
  const double bound = MaxAbs(values);
  return MakeClosedFormNode(PiecewiseConstant{std::move(boundaries), std::move(values)}, bound);
}

absl::StatusOr<NodePtr> CompilePiecewiseInterpolateSchedule(const Params& p) {
  const CompileContext& context = p.context();
  if (!p.Has("interpolate_type")) return p.Error("interpolate_type", "is required");
  ASSIGN_OR_RETURN(std::string type, p.Enum("interpolate_type", "", {"linear", "cosine"}));
  ASSIGN_OR_RETURN(double init, p.PerGroupDouble("init_value", context.base));
  ASSIGN_OR_RETURN(auto sorted, BoundariesAndScales(p));
  ASSIGN_OR_RETURN(std::vector<double> values, CumulativeValues(p, "scales", init, sorted));
  return InterpolateNode(init, sorted, std::move(values), type == "cosine");
}

absl::StatusOr<NodePtr> CompileLinearOnecycleSchedule(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(OneCycleArgs a, ReadOneCycle(p, context));
  ASSIGN_OR_RETURN(double pct_final, Fraction(p, "pct_final", 0.85));
  std::map<int64_t, double> scales;
  scales[Truncated(a.pct_start, a.steps)] = a.div_factor;
  scales[Truncated(pct_final, a.steps)] = 1.0 / a.div_factor;
  scales[a.steps] = 1.0 / a.final_div_factor;
  return OneCycleNode(p, a.peak / a.div_factor, scales, /*cosine=*/false);
}

absl::StatusOr<NodePtr> CompileCosineOnecycleSchedule(const Params& p) {
  const CompileContext& context = p.context();
  ASSIGN_OR_RETURN(OneCycleArgs a, ReadOneCycle(p, context));
  std::map<int64_t, double> scales;
  scales[Truncated(a.pct_start, a.steps)] = a.div_factor;
  scales[a.steps] = 1.0 / (a.div_factor * a.final_div_factor);
  return OneCycleNode(p, a.peak / a.div_factor, scales, /*cosine=*/true);
}

absl::StatusOr<NodePtr> CompileJoinSchedules(const Params& p) {
  ASSIGN_OR_RETURN(Pieces pieces, CompilePieces(p, "boundaries"));
  const std::vector<int64_t>& boundaries = pieces.boundaries;
  for (size_t i = 0; i < boundaries.size(); ++i) {
    const std::string name = absl::StrCat("boundaries[", i, "]");
    const int64_t min = i == 0 ? 0 : boundaries[i - 1];
    if (boundaries[i] < min || boundaries[i] > kStepLimit) {
      return p.Error(
          name, absl::StrCat("must be in [", min, ", 2^53] (non-decreasing), got ", boundaries[i]));
    }
  }
  return std::make_unique<PiecewiseNode>(std::move(pieces.children), std::move(pieces.boundaries));
}

absl::StatusOr<NodePtr> CompileSgdrSchedule(const Params& p) {
  const ScheduleSpec& spec = p.spec();
  const CompileContext& context = p.context();
  // Each cycle is optax's warmup_cosine_decay_schedule(**kwargs): check that before compiling.
  for (size_t i = 0; i < spec.children.size(); ++i) {
    const ScheduleSpec& cycle = spec.children[i];
    auto name = cycle.params.find("name");
    const std::string* function =
        name == cycle.params.end() ? nullptr : std::get_if<std::string>(&name->second);
    if (cycle.kind != "optax" || function == nullptr || *function != kWarmupCosine) {
      return absl::InvalidArgumentError(absl::StrCat(
          p.FieldPath("schedules"), "[", i,
          "]: each cycle must be an optax warmup_cosine_decay_schedule (optax's cosine_kwargs)"));
    }
  }
  ASSIGN_OR_RETURN(std::vector<NodePtr> children, CompileChildren(spec, context, context.base));
  // Cycle i starts at the sum of the decay_steps of the cycles before it (each in [1, 2^53]).
  std::vector<int64_t> boundaries;
  int64_t step = 0;
  for (size_t i = 0; i + 1 < spec.children.size(); ++i) {
    step += std::get<int64_t>(spec.children[i].params.at("decay_steps"));
    boundaries.push_back(step);
  }
  return std::make_unique<PiecewiseNode>(std::move(children), std::move(boundaries));
}

constexpr LibrarySchedule kSchedules[] = {
    {"constant_schedule", "value", false, &CompileConstantSchedule},
    {"linear_schedule", "init_value end_value transition_steps transition_begin", false,
     &CompileLinearSchedule},
    {"polynomial_schedule", "init_value end_value power transition_steps transition_begin", false,
     &CompilePolynomialSchedule},
    {"exponential_decay",
     "init_value transition_steps decay_rate transition_begin staircase end_value", false,
     &CompileExponentialDecay},
    {"cosine_decay_schedule", "init_value decay_steps alpha exponent", false,
     &CompileCosineDecaySchedule},
    {"warmup_constant_schedule", "init_value peak_value warmup_steps", false,
     &CompileWarmupConstantSchedule},
    {kWarmupCosine, "init_value peak_value warmup_steps decay_steps end_value exponent", false,
     &CompileWarmupCosineDecaySchedule},
    {"warmup_exponential_decay_schedule",
     "init_value peak_value warmup_steps transition_steps decay_rate transition_begin staircase "
     "end_value",
     false, &CompileWarmupExponentialDecaySchedule},
    {"piecewise_constant_schedule", "init_value boundaries scales", false,
     &CompilePiecewiseConstantSchedule},
    {"piecewise_interpolate_schedule", "interpolate_type init_value boundaries scales", false,
     &CompilePiecewiseInterpolateSchedule},
    {"join_schedules", "boundaries", true, &CompileJoinSchedules},
    {"sgdr_schedule", "", true, &CompileSgdrSchedule},
    {"cosine_onecycle_schedule",
     "transition_steps peak_value pct_start div_factor final_div_factor", false,
     &CompileCosineOnecycleSchedule},
    {"linear_onecycle_schedule",
     "transition_steps peak_value pct_start pct_final div_factor final_div_factor", false,
     &CompileLinearOnecycleSchedule},
};

}  // namespace

absl::StatusOr<NodePtr> CompileOptax(const ScheduleSpec& spec, const CompileContext& context) {
  return CompileLibrarySchedule(spec, context, Library{"optax", kSchedules});
}

}  // namespace hpsched::core::kinds
