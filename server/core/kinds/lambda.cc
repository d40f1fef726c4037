// lambda: PyTorch LambdaLR (torch/optim/lr_scheduler.py, LambdaLR.get_lr), with a safe expression
// over `step` in place of the Python callable (see core/expression.h). value(t) = b *
// expression(t).
#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/expression.h"
#include "core/kind_registry.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

class LambdaNode final : public Node {
 public:
  LambdaNode(double base, Expression expression, double bound)
      : Node(bound), base_(base), expression_(std::move(expression)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    constexpr size_t kChunk = 256;
    std::array<double, kChunk> steps;
    for (size_t offset = 0; offset < out.size(); offset += kChunk) {
      const size_t n = std::min(kChunk, out.size() - offset);
      for (size_t i = 0; i < n; ++i) {
        steps[i] = static_cast<double>(start + static_cast<int64_t>(offset + i));
      }
      std::span<double> chunk = out.subspan(offset, n);
      expression_.Evaluate(std::span<const double>(steps.data(), n), chunk);
      for (double& value : chunk) value = base_ * value;
    }
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
