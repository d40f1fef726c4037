// keras: Keras 3's learning-rate schedule classes (keras/src/optimizers/schedules/
// learning_rate_schedule.py, keras-team/keras at commit 2534b643145262fc2c9ee638065ee14fdb623984),
// by class name. Step N is schedule(N); each formula below names the __call__ it transcribes and
// follows its order of operations. Keras computes in the dtype of initial_learning_rate (float32
// by default); we compute the same formula in float64.
//
// Values are absolute: the group's base value b is only the default of initial_learning_rate.
// Validation rejects what Keras rejects (decay_steps <= 0, len(values) != len(boundaries) + 1,
// empty boundaries, which fail on the first call) and what would make a value non-finite in Keras
// (negative power or decay_rate, t_mul < 1, growth that overflows before step 2^53).
//
// One deliberate difference: CosineDecayRestarts restarts at the right step where Keras's
// floating-point logarithm misplaces the restart (see CosineDecayRestarts::Locate).
#include <algorithm>
#include <cmath>
#include <numbers>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/closed_form_node.h"
#include "core/kinds/library_table.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

constexpr double kPi = std::numbers::pi;
// The last step, where every growing quantity is largest.
constexpr double kLastStep = static_cast<double>(kStepLimit - 1);

// p = step / decay_steps, floored when staircase: ExponentialDecay's and InverseTimeDecay's.
double DecayProgress(int64_t step, double decay_steps, bool staircase) {
  const double p = static_cast<double>(step) / decay_steps;
  return staircase ? std::floor(p) : p;
}

// ExponentialDecay.__call__.
struct ExponentialDecay {
  double initial;
  double decay_steps;
  double decay_rate;
  bool staircase;
  double operator()(int64_t step) const {
    return initial * std::pow(decay_rate, DecayProgress(step, decay_steps, staircase));
  }
};

double MaxAbs(const std::vector<double>& values) {
  double bound = 0;
  for (double v : values) bound = std::max(bound, std::fabs(v));
  return bound;
}

// PiecewiseConstantDecay.__call__: a sum of indicator * value over the segments
// (step <= b[0]), (b[i-1] < step <= b[i]), (step > b[-1]); with strictly increasing boundaries
// exactly one indicator is 1, so the value is that segment's.
class PiecewiseConstantNode final : public Node {
 public:
  // Each value is one of `values`.
  PiecewiseConstantNode(std::vector<int64_t> boundaries, std::vector<double> values)
      : Node(MaxAbs(values)), boundaries_(std::move(boundaries)), values_(std::move(values)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    // The segment of `start`: the number of boundaries < start.
    size_t segment =
        std::lower_bound(boundaries_.begin(), boundaries_.end(), start) - boundaries_.begin();
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t step = start + static_cast<int64_t>(i);
      while (segment < boundaries_.size() && boundaries_[segment] < step) ++segment;
      out[i] = values_[segment];
    }
  }

 private:
  std::vector<int64_t> boundaries_;
  std::vector<double> values_;
};

// PolynomialDecay.__call__. With cycle, floating-point rounding of ceil(N / d) could leave
// N / d' a hair above 1 at huge steps (Keras then takes a negative number to a power); 1 - p is
// clamped at 0 there, which changes nothing wherever Keras's value is defined.
struct PolynomialDecay {
  double initial;
  double decay_steps;
  double end;
  double power;
  bool cycle;
  double operator()(int64_t step) const {
    double global_step = static_cast<double>(step);
    double decay_steps_recomp = decay_steps;
    if (cycle) {
      const double multiplier = global_step == 0 ? 1.0 : std::ceil(global_step / decay_steps);
      decay_steps_recomp = decay_steps_recomp * multiplier;
    } else {
      global_step = std::min(global_step, decay_steps_recomp);
    }
    const double p = global_step / decay_steps_recomp;
    return (initial - end) * std::pow(std::max(0.0, 1 - p), power) + end;
  }
};

// InverseTimeDecay.__call__.
struct InverseTimeDecay {
  double initial;
  double decay_steps;
  double decay_rate;
  bool staircase;
  double operator()(int64_t step) const {
    return initial / (1.0 + decay_rate * DecayProgress(step, decay_steps, staircase));
  }
};

// CosineDecay.__call__, _decay_function and _warmup_function.
struct CosineDecay {
  double initial;
  double decay_steps;
  double alpha;
  std::optional<double> warmup_target;
  double warmup_steps;

  template <typename Math>
  double Decay(double step, double decay_from, const Math& math) const {
    const double completed_fraction = step / decay_steps;
    const double cosine_decayed = 0.5 * (1.0 + math.Cos(kPi * completed_fraction));
    const double decayed = (1 - alpha) * cosine_decayed + alpha;
    return decay_from * decayed;
  }

  template <typename Math>
  double operator()(int64_t step, const Math& math) const {
    double global_step = static_cast<double>(step);
    if (!warmup_target.has_value()) return Decay(std::min(global_step, decay_steps), initial, math);
    global_step = std::min(global_step, decay_steps + warmup_steps);
    if (global_step < warmup_steps) {
      const double completed_fraction = global_step / warmup_steps;
      const double total_step_delta = *warmup_target - initial;
      return total_step_delta * completed_fraction + initial;
    }
    return Decay(global_step - warmup_steps, *warmup_target, math);
  }
};

// CosineDecayRestarts.__call__: the cycle index and the fraction of it completed.
struct Restart {
  double index;
  double fraction;
};

struct CosineDecayRestarts {
  double initial;
  double first_decay_steps;
  double t_mul;
  double m_mul;
  double alpha;

  // compute_step: cycle k starts at first_decay_steps * (1 + t_mul + ... + t_mul^(k-1)), found by
  // a logarithm. In floating point that logarithm lands on the wrong side of some restarts (t_mul
  // 3, first_decay_steps 1: at step 121, the start of cycle 5, Keras gives the end of cycle 4, a
  // fraction of exactly 1); we then move to the neighbouring cycle, so that the fraction lies in
  // [0, 1) and the restart comes at its step.
  Restart Locate(double step) const {
    const double completed_fraction = step / first_decay_steps;
    if (t_mul == 1.0) {
      const double i_restart = std::floor(completed_fraction);
      return {i_restart, completed_fraction - i_restart};
    }
    double i_restart =
        std::floor(std::log(1.0 - completed_fraction * (1.0 - t_mul)) / std::log(t_mul));
    double fraction = Fraction(completed_fraction, i_restart);
    if (fraction < 0) {
      i_restart -= 1;
      fraction = Fraction(completed_fraction, i_restart);
    } else if (fraction >= 1) {
      i_restart += 1;
      fraction = Fraction(completed_fraction, i_restart);
    }
    return {i_restart, fraction};
  }

  // The fraction of cycle i_restart completed at `completed_fraction` first cycles.
  double Fraction(double completed_fraction, double i_restart) const {
    const double sum_r = (1.0 - std::pow(t_mul, i_restart)) / (1.0 - t_mul);
    return (completed_fraction - sum_r) / std::pow(t_mul, i_restart);
  }

  double operator()(int64_t step) const {
    const Restart r = Locate(static_cast<double>(step));
    const double m_fac = std::pow(m_mul, r.index);
    const double cosine_decayed = 0.5 * m_fac * (1.0 + std::cos(kPi * r.fraction));
    const double decayed = (1 - alpha) * cosine_decayed + alpha;
    return initial * decayed;
  }
};

// --- Parameters ----------------------------------------------------------------------------------

// decay_steps, first_decay_steps: Keras raises unless > 0.
absl::StatusOr<double> PositiveSteps(const Params& p, absl::string_view name) {
  ASSIGN_OR_RETURN(double value, p.Double(name));
  if (!(value > 0)) return p.Error(name, absl::StrCat("must be > 0, got ", value));
  return value;
}

absl::StatusOr<double> InitialLearningRate(const Params& p) {
  return p.PerGroupDouble("initial_learning_rate", p.context().base);
}

absl::StatusOr<double> DecayRate(const Params& p) {
  ASSIGN_OR_RETURN(double value, p.Double("decay_rate"));
  if (value < 0) return p.Error("decay_rate", absl::StrCat("must be >= 0, got ", value));
  return value;
}

// --- The schedules, by Keras class name ----------------------------------------------------------

absl::StatusOr<NodePtr> CompileExponentialDecay(const Params& p) {
  ASSIGN_OR_RETURN(double initial, InitialLearningRate(p));
  ASSIGN_OR_RETURN(double decay_steps, PositiveSteps(p, "decay_steps"));
  ASSIGN_OR_RETURN(double decay_rate, DecayRate(p));
  ASSIGN_OR_RETURN(bool staircase, p.Bool("staircase", false));
  const ExponentialDecay formula{initial, decay_steps, decay_rate, staircase};
  // A rate > 1 grows |value| monotonically: finite at the last step means finite everywhere.
  if (decay_rate > 1 && !std::isfinite(formula(kStepLimit - 1))) {
    return p.Error(
        "decay_rate",
        absl::StrCat("grows the value past the largest double before step 2^53 - 1 (", decay_rate,
                     " ^ (step / ", decay_steps, ") with initial value ", initial, ")"));
  }
  // rate^p with p >= 0 growing with the step: at most 1 for a rate <= 1, largest at the last step
  // otherwise.
  return MakeClosedFormNode(formula,
                            std::max(std::fabs(initial), std::fabs(formula(kStepLimit - 1))));
}

absl::StatusOr<NodePtr> CompilePiecewiseConstantDecay(const Params& p) {
  ASSIGN_OR_RETURN(std::vector<int64_t> boundaries, p.Ints("boundaries"));
  ASSIGN_OR_RETURN(std::vector<double> values, p.Doubles("values"));
  if (boundaries.empty()) {
    return p.Error("boundaries", "must have at least one boundary (Keras fails without one)");
  }
  for (size_t i = 1; i < boundaries.size(); ++i) {
    if (boundaries[i] <= boundaries[i - 1]) {
      return p.Error(absl::StrCat("boundaries[", i, "]"),
                     absl::StrCat("must be greater than ", boundaries[i - 1],
                                  " (boundaries are strictly increasing), got ", boundaries[i]));
    }
  }
  const size_t per_group = boundaries.size() + 1;
  const auto groups = static_cast<size_t>(p.context().num_groups);
  size_t first = 0;
  if (values.size() == per_group * groups && groups > 1) {
    p.context().MarkGroupDependent();
    first = per_group * static_cast<size_t>(p.context().group);
  } else if (values.size() != per_group) {
    return p.Error("values",
                   absl::StrCat("must have len(boundaries) + 1 = ", per_group,
                                " values, or that many per parameter group (", per_group * groups,
                                " for ", groups, " groups), got ", values.size()));
  }
  std::vector<double> group_values(values.begin() + static_cast<ptrdiff_t>(first),
                                   values.begin() + static_cast<ptrdiff_t>(first + per_group));
  return std::make_unique<PiecewiseConstantNode>(std::move(boundaries), std::move(group_values));
}

absl::StatusOr<NodePtr> CompilePolynomialDecay(const Params& p) {
  ASSIGN_OR_RETURN(double initial, InitialLearningRate(p));
  ASSIGN_OR_RETURN(double decay_steps, PositiveSteps(p, "decay_steps"));
  ASSIGN_OR_RETURN(double end, p.PerGroupDouble("end_learning_rate", 0.0001));
  ASSIGN_OR_RETURN(double power, p.Double("power", 1.0));
  ASSIGN_OR_RETURN(bool cycle, p.Bool("cycle", false));
  // (1 - p) ^ power with p = 1 at the end of each decay: a negative power divides by zero.
  if (power < 0) return p.Error("power", absl::StrCat("must be >= 0, got ", power));
  // max(0, 1 - p)^power is in [0, 1]: the value lies between end and initial.
  return MakeClosedFormNode(PolynomialDecay{initial, decay_steps, end, power, cycle},
                            std::max(std::fabs(initial), std::fabs(end)));
}

absl::StatusOr<NodePtr> CompileInverseTimeDecay(const Params& p) {
  ASSIGN_OR_RETURN(double initial, InitialLearningRate(p));
  ASSIGN_OR_RETURN(double decay_steps, PositiveSteps(p, "decay_steps"));
  // 1 + decay_rate * p >= 1 keeps the division finite.
  ASSIGN_OR_RETURN(double decay_rate, DecayRate(p));
  ASSIGN_OR_RETURN(bool staircase, p.Bool("staircase", false));
  return MakeClosedFormNode(InverseTimeDecay{initial, decay_steps, decay_rate, staircase},
                            std::fabs(initial));
}

absl::StatusOr<NodePtr> CompileCosineDecay(const Params& p) {
  ASSIGN_OR_RETURN(double initial, InitialLearningRate(p));
  ASSIGN_OR_RETURN(double decay_steps, PositiveSteps(p, "decay_steps"));
  ASSIGN_OR_RETURN(double alpha, p.Double("alpha", 0.0));
  std::optional<double> warmup_target;
  if (p.Has("warmup_target")) {
    ASSIGN_OR_RETURN(warmup_target, p.PerGroupDouble("warmup_target", std::nullopt));
  }
  ASSIGN_OR_RETURN(double warmup_steps, p.Double("warmup_steps", 0.0));
  if (warmup_steps < 0) {
    return p.Error("warmup_steps", absl::StrCat("must be >= 0, got ", warmup_steps));
  }
  if (p.Has("warmup_steps") && !warmup_target.has_value()) {
    return p.Error("warmup_steps",
                   "has no effect without warmup_target (Keras ignores it): set warmup_target, "
                   "the value the warmup rises to");
  }
  // The warmup lies between initial and warmup_target; the decay is decay_from * ((1 - alpha) * c +
  // alpha) with c in [0, 1].
  const double from = std::max(std::fabs(initial), std::fabs(warmup_target.value_or(0.0)));
  return MakeClosedFormNode(CosineDecay{initial, decay_steps, alpha, warmup_target, warmup_steps},
                            from * (std::fabs(1 - alpha) + std::fabs(alpha)));
}

absl::StatusOr<NodePtr> CompileCosineDecayRestarts(const Params& p) {
  ASSIGN_OR_RETURN(double initial, InitialLearningRate(p));
  ASSIGN_OR_RETURN(double first_decay_steps, PositiveSteps(p, "first_decay_steps"));
  ASSIGN_OR_RETURN(double t_mul, p.Double("t_mul", 2.0));
  ASSIGN_OR_RETURN(double m_mul, p.Double("m_mul", 1.0));
  ASSIGN_OR_RETURN(double alpha, p.Double("alpha", 0.0));
  if (t_mul < 1) {
    return p.Error("t_mul", absl::StrCat("must be >= 1 (below 1 the cycles add up to ",
                                         "first_decay_steps / (1 - t_mul) steps, past which "
                                         "Keras gives NaN), got ",
                                         t_mul));
  }
  if (m_mul < 0) return p.Error("m_mul", absl::StrCat("must be >= 0, got ", m_mul));
  const CosineDecayRestarts formula{initial, first_decay_steps, t_mul, m_mul, alpha};
  // The cycle index, t_mul^index and the cycle start grow with the step: finite at the last step
  // means finite at every step. The largest value is bounded by initial * (|1 - alpha| *
  // max(1, m_mul)^index + |alpha|).
  const Restart last = formula.Locate(kLastStep);
  const double peak = std::pow(std::max(1.0, m_mul), last.index);
  const double bound = std::fabs(initial) * (std::fabs(1 - alpha) * peak + std::fabs(alpha));
  if (!std::isfinite(last.fraction) || !std::isfinite(std::pow(t_mul, last.index))) {
    return p.Error("t_mul",
                   absl::StrCat("with first_decay_steps ", first_decay_steps,
                                ", the restart arithmetic overflows before step 2^53 - 1"));
  }
  if (!std::isfinite(bound)) {
    return p.Error("m_mul", absl::StrCat("grows the peak past the largest double before step "
                                         "2^53 - 1 (",
                                         m_mul, " ^ ", last.index, ")"));
  }
  return MakeClosedFormNode(formula, bound);
}

constexpr LibrarySchedule kSchedules[] = {
    {"ExponentialDecay", "initial_learning_rate decay_steps decay_rate staircase", false,
     &CompileExponentialDecay},
    {"PiecewiseConstantDecay", "boundaries values", false, &CompilePiecewiseConstantDecay},
    {"PolynomialDecay", "initial_learning_rate decay_steps end_learning_rate power cycle", false,
     &CompilePolynomialDecay},
    {"InverseTimeDecay", "initial_learning_rate decay_steps decay_rate staircase", false,
     &CompileInverseTimeDecay},
    {"CosineDecay", "initial_learning_rate decay_steps alpha warmup_target warmup_steps", false,
     &CompileCosineDecay},
    {"CosineDecayRestarts", "initial_learning_rate first_decay_steps t_mul m_mul alpha", false,
     &CompileCosineDecayRestarts},
};

}  // namespace

absl::StatusOr<NodePtr> CompileKeras(const ScheduleSpec& spec, const CompileContext& context) {
  return CompileLibrarySchedule(spec, context, Library{"keras", kSchedules});
}

}  // namespace hpsched::core::kinds
