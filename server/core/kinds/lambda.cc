// lambda: PyTorch LambdaLR (torch/optim/lr_scheduler.py, LambdaLR.get_lr), with a safe expression
// over `step` in place of the Python callable (see core/expression.h). value(t) = b *
// expression(t).
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/expression.h"
#include "core/kind_registry.h"
#include "core/kinds/expression_steps.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

class LambdaNode final : public Node {
 public:
  LambdaNode(double base, Expression expression, double bound)
      : Node(bound), base_(base), expression_(std::move(expression)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    EvaluateAtSteps(expression_, start, out);
    for (double& value : out) value = base_ * value;
  }
  int64_t step_cost() const override {
    return 1 + static_cast<int64_t>(expression_.instruction_count());
  }

 private:
  double base_;
  Expression expression_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileLambda(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(std::string text, p.String("expression"));
  auto expression = Expression::Compile(text, "step");
  if (!expression.ok()) return p.Error("expression", expression.status().message());
  // Every operation finite at every step, and the product with b too.
  const absl::StatusOr<Interval> range = expression->Range(StepDomain());
  if (!range.ok()) return p.Error("expression", range.status().message());
  // |b * v| <= |b| * max|v|, rounding included (multiplication is monotone).
  const double bound = std::fabs(context.base) * range->max_abs();
  if (!std::isfinite(bound)) {
    return p.Error("expression", absl::StrCat("b * expression may overflow: b = ", context.base,
                                              ", the expression's range is ", range->ToString()));
  }
  return std::make_unique<LambdaNode>(context.base, *std::move(expression), bound);
}

}  // namespace hpsched::core::kinds
