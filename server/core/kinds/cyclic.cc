// cyclic: PyTorch CyclicLR (torch/optim/lr_scheduler.py, CyclicLR.get_lr, closed-form in the step).
//   cycle = floor(1 + t / (up + down)); x = 1 + t / (up + down) - cycle; r = up / (up + down)
//   scale = x / r if x <= r else (x - 1) / (r - 1)
//   value = base_lr + (max_lr - base_lr) * scale * f
// with f = 1 (triangular), 1 / 2^(cycle - 1) (triangular2) or gamma^t (exp_range). As in PyTorch,
// the built-in modes fix the scale mode (cycle, cycle, iterations); an explicit scale_mode is
// validated and, as there, not used. Defaults: base_lr = the group's base value, step_size_up 2000,
// step_size_down = step_size_up, mode triangular, gamma 1.
//
// For a hyperparameter named "momentum" or "beta1" (core/kinds/momentum_cycle.h), the value is
// PyTorch's momentum instead, on the same cycle: with cycle_momentum (default true)
//   value = max_momentum - (max_momentum - base_momentum) * scale * f
// (defaults 0.9 and 0.8: the group's base value, the optimizer's momentum, is overwritten as in
// PyTorch); without it, the group's base value at every step (PyTorch leaves the momentum alone).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/momentum_cycle.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

enum class Mode { kTriangular, kTriangular2, kExpRange };

// value = anchor + height * scale_factor * f: the learning rate has anchor base_lr and height
// max_lr - base_lr; the momentum has anchor max_momentum and height -(max_momentum -
// base_momentum), which gives PyTorch's max_momentum - (max_momentum - base_momentum) *
// scale_factor * f bit for bit (negation is exact and rounding is symmetric).
class CyclicNode final : public Node {
 public:
  CyclicNode(double anchor, double height, double total_size, double step_ratio, Mode mode,
             double gamma)
      // scale and f are in [0, 1]: the value lies between anchor and anchor + height.
      : Node(RoundBoundUp(std::max(std::fabs(anchor), std::fabs(anchor + height)))),
        anchor_(anchor),
        height_(height),
        total_size_(total_size),
        step_ratio_(step_ratio),
        mode_(mode),
        gamma_(gamma) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    for (size_t i = 0; i < out.size(); ++i) {
      const double t = static_cast<double>(start + static_cast<int64_t>(i));
      const double cycle = std::floor(1 + t / total_size_);
      const double x = 1. + t / total_size_ - cycle;
      const double scale_factor = x <= step_ratio_ ? x / step_ratio_ : (x - 1) / (step_ratio_ - 1);
      const double base_height = height_ * scale_factor;
      double scale = 1.;
      switch (mode_) {
        case Mode::kTriangular:
          break;
        case Mode::kTriangular2:
          scale = 1 / std::pow(2., cycle - 1);
          break;
        case Mode::kExpRange:
          scale = std::pow(gamma_, t);
          break;
      }
      out[i] = anchor_ + base_height * scale;
    }
  }

 private:
  double anchor_;
  double height_;
  double total_size_;
  double step_ratio_;
  Mode mode_;
  double gamma_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileCyclic(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(double base_lr, p.PerGroupDouble("base_lr", context.base));
  ASSIGN_OR_RETURN(double max_lr, p.PerGroupDouble("max_lr", std::nullopt));
  ASSIGN_OR_RETURN(double up, p.Double("step_size_up", 2000.0));
  ASSIGN_OR_RETURN(double down, p.Double("step_size_down", up));
  ASSIGN_OR_RETURN(std::string mode_name,
                   p.Enum("mode", "triangular", {"triangular", "triangular2", "exp_range"}));
  ASSIGN_OR_RETURN(double gamma, p.Double("gamma", 1.0));
  ASSIGN_OR_RETURN(std::string scale_mode, p.Enum("scale_mode", "cycle", {"cycle", "iterations"}));
  ASSIGN_OR_RETURN(MomentumCycle momentum, ReadMomentumCycle(p, 0.8, 0.9));
  // At least kMinSize: t / (up + down) stays finite for every step t < 2^53 (it would overflow,
  // and x become inf - inf = NaN, below about 5e-293), and r = up / (up + down) stays > 0 (a
  // subnormal up makes it 0, and scale 0 / 0 at the start of each cycle).
  constexpr double kMinSize = 1e-290;
  constexpr double kMaxSize = static_cast<double>(kStepLimit);
  if (!(up >= kMinSize && up <= kMaxSize)) {
    return p.Error("step_size_up", absl::StrCat("must be >= 1e-290 and <= 2^53, got ", up));
  }
  if (!(down >= kMinSize && down <= kMaxSize)) {
    return p.Error("step_size_down", absl::StrCat("must be >= 1e-290 and <= 2^53, got ", down));
  }
  // gamma > 1 would overflow gamma^t to infinity (and 0 * inf to NaN) within the step range.
  if (gamma <= 0 || gamma > 1) {
    return p.Error("gamma", absl::StrCat("must be > 0 and <= 1, got ", gamma));
  }
  const Mode mode = mode_name == "triangular"    ? Mode::kTriangular
                    : mode_name == "triangular2" ? Mode::kTriangular2
                                                 : Mode::kExpRange;
  const double total_size = up + down;
  double anchor = base_lr;
  double height = max_lr - base_lr;
  if (DrivesMomentum(context)) {
    anchor = momentum.cycle ? momentum.max : context.base;
    height = momentum.cycle ? -(momentum.max - momentum.base) : 0.0;
  }
  return std::make_unique<CyclicNode>(anchor, height, total_size, up / total_size, mode, gamma);
}

}  // namespace hpsched::core::kinds
