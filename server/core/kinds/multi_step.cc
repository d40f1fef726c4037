// multi_step: PyTorch MultiStepLR (torch/optim/lr_scheduler.py, MultiStepLR._get_closed_form_lr).
// value(t) = b * gamma ^ bisect_right(milestones, t); repeated milestones stack; gamma defaults to
// 0.1.
#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/geometric_bound.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

class MultiStepNode final : public Node {
 public:
  MultiStepNode(double base, double gamma, std::vector<int64_t> milestones, double bound)
      : Node(bound), base_(base), gamma_(gamma), milestones_(std::move(milestones)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    auto next = std::upper_bound(milestones_.begin(), milestones_.end(), start);
    size_t i = 0;
    while (i < out.size()) {
      const auto passed = next - milestones_.begin();
      const double value = base_ * std::pow(gamma_, static_cast<double>(passed));
      size_t end = out.size();
      if (next != milestones_.end()) end = std::min(end, static_cast<size_t>(*next - start));
      for (; i < end; ++i) out[i] = value;
      // Step past every milestone equal to the one just reached: repeated milestones stack.
      if (next != milestones_.end()) next = std::upper_bound(next, milestones_.end(), *next);
    }
  }

 private:
  double base_;
  double gamma_;
  std::vector<int64_t> milestones_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileMultiStep(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(std::vector<int64_t> milestones, p.Ints("milestones"));
  ASSIGN_OR_RETURN(double gamma, p.Double("gamma", 0.1));
  for (size_t i = 0; i < milestones.size(); ++i) {
    const std::string name = absl::StrCat("milestones[", i, "]");
    if (milestones[i] < 0) return p.Error(name, absl::StrCat("must be >= 0, got ", milestones[i]));
    if (i > 0 && milestones[i] < milestones[i - 1]) {
      return p.Error(name, absl::StrCat("must be >= ", milestones[i - 1],
                                        " (milestones are sorted), got ", milestones[i]));
    }
  }
  if (gamma < 0) return p.Error("gamma", absl::StrCat("must be >= 0, got ", gamma));
  // The steps reach every milestone below 2^53.
  const int64_t reached =
      std::lower_bound(milestones.begin(), milestones.end(), kStepLimit) - milestones.begin();
  ASSIGN_OR_RETURN(double bound, GeometricBound(p, gamma, reached, "the milestones below 2^53"));
  return std::make_unique<MultiStepNode>(context.base, gamma, std::move(milestones), bound);
}

}  // namespace hpsched::core::kinds
