// polynomial: PyTorch PolynomialLR (torch/optim/lr_scheduler.py, PolynomialLR._get_closed_form_lr).
// value(t) = b * (1 - min(total_iters, t) / total_iters) ^ power; defaults total_iters 5, power 1.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/status_macros.h"
#include "core/vector_math.h"

namespace hpsched::core::kinds {
namespace {

class PolynomialNode final : public Node {
 public:
  // (1 - t / total_iters) is in [0, 1] and power >= 0: the power is in [0, 1].
  PolynomialNode(double base, int64_t total_iters, double power)
      : Node(RoundBoundUp(std::fabs(base))),
        base_(base),
        total_iters_(total_iters),
        power_(power) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    simd::PolynomialSteps(base_, total_iters_, power_, start, out);
  }

 private:
  double base_;
  int64_t total_iters_;
  double power_;
};

}  // namespace

absl::StatusOr<NodePtr> CompilePolynomial(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(int64_t total_iters, p.Int("total_iters", 5));
  ASSIGN_OR_RETURN(double power, p.Double("power", 1.0));
  if (total_iters <= 0) {
    return p.Error("total_iters", absl::StrCat("must be > 0, got ", total_iters));
  }
  if (power < 0) return p.Error("power", absl::StrCat("must be >= 0, got ", power));
  return std::make_unique<PolynomialNode>(context.base, total_iters, power);
}

}  // namespace hpsched::core::kinds
