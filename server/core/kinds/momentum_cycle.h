// Momentum cycling, shared by `cyclic` and `one_cycle`: PyTorch's CyclicLR and OneCycleLR also set
// the optimizer's momentum at every step (SGD's `momentum`, or betas[0] for optimizers with
// `betas`, PyTorch's use_beta1), in the opposite direction to the learning rate. hpsched gives that
// curve when the same spec schedules a hyperparameter named "momentum" or "beta1".
#ifndef HPSCHED_CORE_KINDS_MOMENTUM_CYCLE_H_
#define HPSCHED_CORE_KINDS_MOMENTUM_CYCLE_H_

#include "absl/status/statusor.h"
#include "core/params.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {

// The momentum parameters of one group: cycle_momentum, base_momentum, max_momentum.
struct MomentumCycle {
  bool cycle = true;
  double base = 0;
  double max = 0;
};

// True when the schedule is compiled for the momentum (or Adam's beta1) of the optimizer.
inline bool DrivesMomentum(const CompileContext& context) {
  return context.hyperparameter == "momentum" || context.hyperparameter == "beta1";
}

// Reads cycle_momentum (default true) and the per-group base_momentum and max_momentum (one value
// for every group or one per group; defaults are the PyTorch class's). They are validated whatever
// the hyperparameter, so a spec is valid or not independently of the name it is used under.
inline absl::StatusOr<MomentumCycle> ReadMomentumCycle(const Params& p, double default_base,
                                                       double default_max) {
  MomentumCycle m;
  ASSIGN_OR_RETURN(m.cycle, p.Bool("cycle_momentum", true));
  ASSIGN_OR_RETURN(m.base, p.PerGroupDouble("base_momentum", default_base));
  ASSIGN_OR_RETURN(m.max, p.PerGroupDouble("max_momentum", default_max));
  return m;
}

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_MOMENTUM_CYCLE_H_
