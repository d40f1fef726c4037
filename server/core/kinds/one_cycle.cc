// one_cycle: PyTorch OneCycleLR (torch/optim/lr_scheduler.py, OneCycleLR.__init__ phases and
// get_lr). initial = max_lr / div_factor, min = initial / final_div_factor. Phases end at pct_start
// * N - 1 and N - 1 (three_phase: pct_start * N - 1, 2 * pct_start * N - 2, N - 1) and anneal
// initial -> max -> min (three_phase: initial -> max -> initial -> min), with cos: end + (start -
// end) / 2 * (cos(pi * pct) + 1), or linear: (end - start) * pct + start, pct = (t - phase start) /
// (phase end - phase start). From step N - 1 on the value holds: PyTorch extrapolates the last
// phase at step N and raises past it. Defaults: max_lr = the group's base value, pct_start 0.3,
// anneal_strategy "cos", div_factor 25, final_div_factor 1e4, three_phase false; N = total_steps,
// or epochs * steps_per_epoch.
//
// For a hyperparameter named "momentum" or "beta1" (core/kinds/momentum_cycle.h), the value is
// PyTorch's momentum on the same phases: with cycle_momentum (default true) it anneals max_momentum
// -> base_momentum -> max_momentum (three_phase: max -> base -> max -> max), defaults 0.95 and 0.85
// (the group's base value, the optimizer's momentum or betas[0], is overwritten as in PyTorch);
// without it, the group's base value at every step.
#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/momentum_cycle.h"
#include "core/status_macros.h"
#include "core/vector_math.h"

namespace hpsched::core::kinds {
namespace {

struct Phase {
  double end_step;
  double start_value;
  double end_value;
};

class OneCycleNode final : public Node {
 public:
  OneCycleNode(std::array<Phase, 3> phases, int num_phases, int64_t total_steps, bool cosine,
               double bound)
      : Node(bound),
        phases_(phases),
        num_phases_(num_phases),
        total_steps_(total_steps),
        cosine_(cosine) {}

  // A step s (clamped to the last step) belongs to the first phase with s <= end_step (or to the
  // last phase): the span splits into runs of one phase each, and each run is one kernel call.
  void Evaluate(int64_t start, std::span<double> out) const override {
    const int64_t last = total_steps_ - 1;
    const int64_t end = start + static_cast<int64_t>(out.size());
    int64_t t = start;
    double start_step = 0;
    for (int p = 0; p < num_phases_ && t < end; ++p) {
      const Phase& phase = phases_[p];
      int64_t run_end = end;  // Steps past `last` clamp to it and so join the phase `last` is in.
      if (p < num_phases_ - 1) {
        if (static_cast<double>(std::min(t, last)) > phase.end_step) {
          start_step = phase.end_step;
          continue;
        }
        // The steps s <= end_step (end_step >= 0 and < 2^53, so its floor is exact), unless
        // `last` is among them.
        const int64_t phase_last = static_cast<int64_t>(std::floor(phase.end_step));
        if (phase_last < last) run_end = std::min(end, phase_last + 1);
      }
      simd::OneCyclePhase(
          phase.start_value, phase.end_value, start_step, phase.end_step - start_step, cosine_, t,
          last, out.subspan(static_cast<size_t>(t - start), static_cast<size_t>(run_end - t)));
      t = run_end;
      start_step = phase.end_step;
    }
  }

 private:
  std::array<Phase, 3> phases_;
  int num_phases_;
  int64_t total_steps_;
  bool cosine_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileOneCycle(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(double max_lr, p.PerGroupDouble("max_lr", context.base));
  int64_t total_steps = 0;
  if (p.Has("total_steps")) {
    ASSIGN_OR_RETURN(total_steps, p.Int("total_steps"));
    if (total_steps <= 0 || total_steps > kStepLimit) {
      return p.Error("total_steps", absl::StrCat("must be > 0 and <= 2^53, got ", total_steps));
    }
  } else if (p.Has("epochs") || p.Has("steps_per_epoch")) {
    ASSIGN_OR_RETURN(int64_t epochs, p.Int("epochs"));
    ASSIGN_OR_RETURN(int64_t steps_per_epoch, p.Int("steps_per_epoch"));
    if (epochs <= 0) return p.Error("epochs", absl::StrCat("must be > 0, got ", epochs));
    if (steps_per_epoch <= 0 || steps_per_epoch > kStepLimit / epochs) {
      return p.Error(
          "steps_per_epoch",
          absl::StrCat("must be > 0 with epochs * steps_per_epoch <= 2^53, got ", steps_per_epoch));
    }
    total_steps = epochs * steps_per_epoch;
  } else {
    return p.Error("total_steps", "is required (or set epochs and steps_per_epoch)");
  }
  ASSIGN_OR_RETURN(double pct_start, p.Double("pct_start", 0.3));
  ASSIGN_OR_RETURN(std::string strategy, p.Enum("anneal_strategy", "cos", {"cos", "linear"}));
  ASSIGN_OR_RETURN(double div_factor, p.Double("div_factor", 25.0));
  ASSIGN_OR_RETURN(double final_div_factor, p.Double("final_div_factor", 1e4));
  ASSIGN_OR_RETURN(bool three_phase, p.Bool("three_phase", false));
  ASSIGN_OR_RETURN(MomentumCycle momentum, ReadMomentumCycle(p, 0.85, 0.95));
  if (pct_start < 0 || pct_start > 1) {
    return p.Error("pct_start", absl::StrCat("must be between 0 and 1, got ", pct_start));
  }
  if (div_factor <= 0) {
    return p.Error("div_factor", absl::StrCat("must be > 0, got ", div_factor));
  }
  if (final_div_factor <= 0) {
    return p.Error("final_div_factor", absl::StrCat("must be > 0, got ", final_div_factor));
  }
  const double n = static_cast<double>(total_steps);
  const double first_end = pct_start * n - 1;
  // Step 0 falls in the first phase when it ends at 0, and PyTorch divides 0 by 0 there.
  if (first_end == 0) {
    return p.Error("pct_start",
                   absl::StrCat("must not make the first phase end at step 0 (pct_start * "
                                "total_steps == 1), got ",
                                pct_start));
  }
  const double initial = max_lr / div_factor;
  const double min = initial / final_div_factor;
  // Each phase interpolates between two of max_lr, initial and min (pct is in [0, 1]): within
  // +-1e300 they keep (start - end) / 2 * (cos + 1) + end finite. A tiny divisor (1e-320) would
  // make them overflow.
  constexpr double kMaxValue = 1e300;
  if (!(std::fabs(initial) <= kMaxValue)) {
    return p.Error("div_factor", absl::StrCat("must keep |max_lr / div_factor| <= 1e300 (max_lr = ",
                                              max_lr, "), got ", div_factor));
  }
  if (!(std::fabs(min) <= kMaxValue)) {
    return p.Error(
        "final_div_factor",
        absl::StrCat("must keep |max_lr / div_factor / final_div_factor| <= 1e300 "
                     "(max_lr = ",
                     max_lr, ", div_factor = ", div_factor, "), got ", final_div_factor));
  }
  // The phases go start -> peak (-> start) -> end: for the learning rate initial -> max_lr (->
  // initial) -> min, for the momentum max -> base (-> max) -> max.
  double start = initial;
  double peak = max_lr;
  double end = min;
  if (DrivesMomentum(context)) {
    start = end = momentum.cycle ? momentum.max : context.base;
    peak = momentum.cycle ? momentum.base : context.base;
  }
  const double bound = RoundBoundUp(std::max({std::fabs(start), std::fabs(peak), std::fabs(end)}));
  std::array<Phase, 3> phases{};
  int num_phases = 2;
  if (three_phase) {
    phases = {Phase{first_end, start, peak}, Phase{2 * pct_start * n - 2, peak, start},
              Phase{n - 1, start, end}};
    num_phases = 3;
  } else {
    phases = {Phase{first_end, start, peak}, Phase{n - 1, peak, end}, Phase{}};
  }
  return std::make_unique<OneCycleNode>(phases, num_phases, total_steps, strategy == "cos", bound);
}

}  // namespace hpsched::core::kinds
