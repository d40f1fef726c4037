// exponential: PyTorch ExponentialLR (torch/optim/lr_scheduler.py,
// ExponentialLR._get_closed_form_lr). value(t) = b * gamma ^ t.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/geometric_bound.h"
#include "core/status_macros.h"
#include "core/vector_math.h"

namespace hpsched::core::kinds {
namespace {

class ExponentialNode final : public Node {
 public:
  ExponentialNode(double base, double gamma, double bound)
      : Node(bound), base_(base), gamma_(gamma) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    simd::ExponentialSteps(base_, gamma_, start, out);
  }

 private:
  double base_;
  double gamma_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileExponential(const ScheduleSpec& spec,
                                           const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(double gamma, p.Double("gamma"));
  if (gamma <= 0) return p.Error("gamma", absl::StrCat("must be > 0, got ", gamma));
  ASSIGN_OR_RETURN(double bound, GeometricBound(p, gamma, kStepLimit - 1, "the last step"));
  return std::make_unique<ExponentialNode>(context.base, gamma, bound);
}

}  // namespace hpsched::core::kinds
