// constant: PyTorch ConstantLR (torch/optim/lr_scheduler.py, ConstantLR._get_closed_form_lr).
// value(t) = b * (factor + [t >= total_iters] * (1 - factor)); defaults factor 1/3, total_iters 5.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

class ConstantNode final : public Node {
 public:
  ConstantNode(double before, double after, int64_t total_iters, double bound)
      : Node(bound), before_(before), after_(after), total_iters_(total_iters) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = start + static_cast<int64_t>(i) >= total_iters_ ? after_ : before_;
    }
  }

 private:
  double before_;
  double after_;
  int64_t total_iters_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileConstant(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(double factor, p.Double("factor", 1.0 / 3.0));
  ASSIGN_OR_RETURN(int64_t total_iters, p.Int("total_iters", 5));
  if (factor < 0 || factor > 1) {
    return p.Error("factor", absl::StrCat("must be between 0 and 1, got ", factor));
  }
  if (total_iters < 0) {
    return p.Error("total_iters", absl::StrCat("must be >= 0, got ", total_iters));
  }
  const double b = context.base;
  // The same operations as PyTorch's closed form, with the boolean as 0 or 1. Finite: factor in
  // [0, 1] keeps both values within |b| (up to rounding).
  return std::make_unique<ConstantNode>(b * (factor + 0.0 * (1 - factor)),
                                        b * (factor + 1.0 * (1 - factor)), total_iters,
                                        RoundBoundUp(std::fabs(b)));
}

}  // namespace hpsched::core::kinds
