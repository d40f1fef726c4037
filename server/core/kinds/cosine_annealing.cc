// cosine_annealing: PyTorch CosineAnnealingLR (torch/optim/lr_scheduler.py,
// CosineAnnealingLR._get_closed_form_lr).
// value(t) = eta_min + (b - eta_min) * (1 + cos(pi * t / t_max)) / 2; eta_min defaults to 0.
// Not clamped, like PyTorch's closed form: it climbs back to b at 2 * t_max and repeats with period
// 2 * t_max.
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/cosine_formula.h"
#include "core/status_macros.h"
#include "core/vector_math.h"

namespace hpsched::core::kinds {
namespace {

class CosineAnnealingNode final : public Node {
 public:
  CosineAnnealingNode(double base, double eta_min, int64_t t_max)
      : Node(CosineAnnealingBound(base, eta_min)),
        base_(base),
        eta_min_(eta_min),
        t_max_(static_cast<double>(t_max)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    simd::CosineAnnealingSteps(base_, eta_min_, t_max_, start, out);
  }

 private:
  double base_;
  double eta_min_;
  double t_max_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileCosineAnnealing(const ScheduleSpec& spec,
                                               const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(int64_t t_max, p.Int("t_max"));
  ASSIGN_OR_RETURN(double eta_min, p.Double("eta_min", 0.0));
  if (t_max <= 0) return p.Error("t_max", absl::StrCat("must be > 0, got ", t_max));
  return std::make_unique<CosineAnnealingNode>(context.base, eta_min, t_max);
}

}  // namespace hpsched::core::kinds
