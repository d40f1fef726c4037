// multiplicative: PyTorch MultiplicativeLR (torch/optim/lr_scheduler.py, MultiplicativeLR.get_lr:
// group['lr'] * lr_lambda(last_epoch) for last_epoch > 0, group['lr'] at 0), with a safe expression
// over `step` (core/expression.h) in place of the Python callable:
//   value(0) = b,  value(t) = value(t - 1) * lr_lambda(t)  for 1 <= t <= total_iters,
//   value(t) = value(total_iters)  for t > total_iters.
// The multiplications are PyTorch's, in its order (b * f(1) first), so the values are its bits; the
// product is computed once, when the spec is compiled (core/kinds/running_product.h), which is also
// where it is validated: every factor must be finite and every value within +-1e150.
//
// A product over 2^53 factors cannot be computed, so the product runs over a horizon:
// - a factor that depends on `step` needs `total_iters` (required);
// - a constant factor (no `step` in lr_lambda) needs no horizon when the product settles, i.e. the
//   values start repeating bit for bit (the product reaches 0 or a subnormal fixed point, or the
//   factor is 1; with a negative factor, the sign alternates): from there on the values are
//   PyTorch's for every step. Otherwise it needs `total_iters` too.
// The work is bounded: total_iters (or the steps until a constant factor settles) x the cost of a
// step x the parameter groups <= kMaxMultiplicativeWork, which every multiplicative schedule and
// group of the job shares (core/spec_cost.h).
#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/expression.h"
#include "core/kind_registry.h"
#include "core/kinds/expression_steps.h"
#include "core/kinds/running_product.h"
#include "core/spec_cost.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

// Work is counted in units of one multiplication: a step costs 1 with a constant factor, 1 + 4 x
// the expression's instructions otherwise (pow, exp and the like cost several times more than + or
// <). kMaxMultiplicativeWork is well under a second.

class ExpressionFactors final : public FactorSequence {
 public:
  explicit ExpressionFactors(Expression expression) : expression_(std::move(expression)) {}

  void Evaluate(int64_t first, std::span<double> out) const override {
    EvaluateAtSteps(expression_, first, out);
  }

 private:
  Expression expression_;
};

class ConstantFactors final : public FactorSequence {
 public:
  explicit ConstantFactors(double factor) : factor_(factor) {}
  void Evaluate(int64_t, std::span<double> out) const override {
    std::fill(out.begin(), out.end(), factor_);
  }

 private:
  double factor_;
};

class MultiplicativeNode final : public Node {
 public:
  // The product's largest |value|, which RunningProduct::Build found within +-kMaxMagnitude.
  explicit MultiplicativeNode(RunningProduct product)
      : Node(product.max_abs()), product_(std::move(product)) {}
  void Evaluate(int64_t start, std::span<double> out) const override {
    product_.Evaluate(start, out);
  }

 private:
  RunningProduct product_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileMultiplicative(const ScheduleSpec& spec,
                                              const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(std::string text, p.String("lr_lambda"));
  auto expression = Expression::Compile(text, "step");
  if (!expression.ok()) return p.Error("lr_lambda", expression.status().message());
  // The text compiles without the variable exactly when it does not use `step`.
  const bool constant = Expression::Compile(text, "hpsched_no_variable").ok();
  std::optional<int64_t> total_iters;
  if (p.Has("total_iters")) {
    ASSIGN_OR_RETURN(total_iters, p.Int("total_iters"));
    if (*total_iters < 0 || *total_iters >= kStepLimit) {
      return p.Error("total_iters", absl::StrCat("must be >= 0 and < 2^53, got ", *total_iters));
    }
  }
  const int64_t cost = constant ? 1 : 1 + 4 * static_cast<int64_t>(expression->instruction_count());
  // This schedule's share of the job's budget: its groups, and those of the job's other
  // multiplicative schedules.
  const int64_t sharers = std::max<int64_t>({1, context.num_groups, context.multiplicative_groups});
  const int64_t limit = kMaxMultiplicativeWork / cost / sharers;
  const std::string budget =
      sharers > context.num_groups
          ? absl::StrCat(" (the product is computed when the spec is compiled: at most ", limit,
                         " steps for this lr_lambda, whose budget the job's ", sharers,
                         " multiplicative schedules x parameter groups share)")
          : absl::StrCat(" (the product is computed when the spec is compiled: at most ", limit,
                         " steps for this lr_lambda and ", context.num_groups, " parameter group",
                         context.num_groups == 1 ? "" : "s", ")");
  if (!constant && !total_iters.has_value()) {
    return p.Error("total_iters",
                   "is required when lr_lambda depends on `step`: the product runs over steps "
                   "1..total_iters and holds after");
  }
  if (!constant && *total_iters > limit) {
    return p.Error("total_iters",
                   absl::StrCat("must be <= ", limit, budget, ", got ", *total_iters));
  }

  const double constant_factor = constant ? expression->Evaluate(0.0) : 0.0;
  std::unique_ptr<const FactorSequence> factors;
  if (constant) {
    factors = std::make_unique<ConstantFactors>(constant_factor);
  } else {
    factors = std::make_unique<ExpressionFactors>(*std::move(expression));
  }
  const int64_t horizon = std::min(total_iters.value_or(kStepLimit - 1), limit);
  auto product = RunningProduct::Build(context.base, std::move(factors),
                                       {.horizon = horizon, .constant_factor = constant});
  if (!product.ok()) return p.Error("lr_lambda", product.status().message());
  if (product->settled_step() == horizon && horizon < total_iters.value_or(kStepLimit - 1)) {
    // A constant factor that does not settle within the work limit.
    const std::string reason = absl::StrCat("the constant factor ", text,
                                            " does not settle within ", limit, " steps", budget);
    if (!total_iters.has_value())
      return p.Error("total_iters", absl::StrCat("is required: ", reason));
    return p.Error("total_iters",
                   absl::StrCat("must be <= ", limit, ", got ", *total_iters, ": ", reason));
  }
  return std::make_unique<MultiplicativeNode>(*std::move(product));
}

}  // namespace hpsched::core::kinds
