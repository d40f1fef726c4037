// step: PyTorch StepLR (torch/optim/lr_scheduler.py, StepLR._get_closed_form_lr).
// value(t) = b * gamma ^ floor(t / step_size); gamma defaults to 0.1.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/geometric_bound.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

class StepNode final : public Node {
 public:
  StepNode(double base, double gamma, int64_t step_size, double bound)
      : Node(bound), base_(base), gamma_(gamma), step_size_(step_size) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    // The value changes once per step_size steps: compute it once per period.
    size_t i = 0;
    while (i < out.size()) {
      const int64_t t = start + static_cast<int64_t>(i);
      const int64_t period = t / step_size_;
      const double value = base_ * std::pow(gamma_, static_cast<double>(period));
      const int64_t period_end = (period + 1) * step_size_;  // < 2^54: no overflow.
      const size_t end = std::min(out.size(), static_cast<size_t>(period_end - start));
      for (; i < end; ++i) out[i] = value;
    }
  }

 private:
  double base_;
  double gamma_;
  int64_t step_size_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileStep(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(int64_t step_size, p.Int("step_size"));
  ASSIGN_OR_RETURN(double gamma, p.Double("gamma", 0.1));
  if (step_size <= 0) {
    return p.Error("step_size", absl::StrCat("must be > 0, got ", step_size));
  }
  if (gamma < 0) return p.Error("gamma", absl::StrCat("must be >= 0, got ", gamma));
  const int64_t periods = (kStepLimit - 1) / step_size;
  ASSIGN_OR_RETURN(double bound,
                   GeometricBound(p, gamma, periods, "the periods reached by the last step"));
  return std::make_unique<StepNode>(context.base, gamma, step_size, bound);
}

}  // namespace hpsched::core::kinds
