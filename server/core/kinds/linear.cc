// linear: PyTorch LinearLR (torch/optim/lr_scheduler.py, LinearLR._get_closed_form_lr).
// value(t) = b * (start_factor + (end_factor - start_factor) * min(total_iters, t) / total_iters);
// defaults start_factor 1/3, end_factor 1, total_iters 5.
#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/status_macros.h"
#include "core/vector_math.h"

namespace hpsched::core::kinds {
namespace {

class LinearNode final : public Node {
 public:
  LinearNode(double base, double start_factor, double end_factor, int64_t total_iters)
      : Node(RoundBoundUp(std::fabs(base))),  // Both factors are in [0, 1].
        base_(base),
        start_(start_factor),
        delta_(end_factor - start_factor),
        total_iters_(total_iters) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    simd::LinearSteps(base_, start_, delta_, total_iters_, start, out);
  }

 private:
  double base_;
  double start_;
  double delta_;
  int64_t total_iters_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileLinear(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(double start_factor, p.Double("start_factor", 1.0 / 3.0));
  ASSIGN_OR_RETURN(double end_factor, p.Double("end_factor", 1.0));
  ASSIGN_OR_RETURN(int64_t total_iters, p.Int("total_iters", 5));
  if (start_factor <= 0 || start_factor > 1) {
    return p.Error("start_factor", absl::StrCat("must be > 0 and <= 1, got ", start_factor));
  }
  if (end_factor < 0 || end_factor > 1) {
    return p.Error("end_factor", absl::StrCat("must be between 0 and 1, got ", end_factor));
  }
  if (total_iters <= 0) {
    return p.Error("total_iters", absl::StrCat("must be > 0, got ", total_iters));
  }
  return std::make_unique<LinearNode>(context.base, start_factor, end_factor, total_iters);
}

}  // namespace hpsched::core::kinds
