// chained: PyTorch ChainedScheduler (torch/optim/lr_scheduler.py) over multiplicative schedulers.
// value(t) = b * product of schedules[i](t), each evaluated with base value 1.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/params.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

class ChainedNode final : public Node {
 public:
  ChainedNode(double base, std::vector<NodePtr> children, double bound)
      : Node(bound), base_(base), children_(std::move(children)), step_cost_(1) {
    for (const NodePtr& child : children_) step_cost_ += child->step_cost();
  }

  void Evaluate(int64_t start, std::span<double> out) const override {
    constexpr size_t kChunk = 256;
    std::array<double, kChunk> factors;
    std::fill(out.begin(), out.end(), base_);
    for (size_t offset = 0; offset < out.size(); offset += kChunk) {
      const size_t n = std::min(kChunk, out.size() - offset);
      const int64_t chunk_start = start + static_cast<int64_t>(offset);
      for (const NodePtr& child : children_) {
        child->Evaluate(chunk_start, std::span<double>(factors.data(), n));
        for (size_t i = 0; i < n; ++i) out[offset + i] *= factors[i];
      }
    }
  }

  // Every child runs at every step, on the chain's time.
  void AddReportDependences(int64_t start, int64_t end, int64_t shift,
                            std::vector<ReportDependence>* out) const override {
    for (const NodePtr& child : children_) child->AddReportDependences(start, end, shift, out);
  }

  int64_t step_cost() const override { return step_cost_; }

 private:
  double base_;
  std::vector<NodePtr> children_;
  int64_t step_cost_;  // Computed once: reads ask for it per call.
};

}  // namespace

absl::StatusOr<NodePtr> CompileChained(const ScheduleSpec& spec, const CompileContext& context) {
  ASSIGN_OR_RETURN(std::vector<NodePtr> children, CompileChildren(spec, context, 1.0));
  // The running product b * v_0 * ... * v_i is bounded by |b| * max_abs_0 * ... * max_abs_i, and
  // every one of them must be finite: a later factor 0 would turn an inf into NaN.
  Params p(spec, context);
  double bound = std::fabs(context.base);
  for (size_t i = 0; i < children.size(); ++i) {
    const double child = children[i]->max_abs();
    if (std::isinf(child)) {
      return p.Error(absl::StrCat("schedules[", i, "]"),
                     absl::StrCat("kind \"", spec.children[i].kind.view(),
                                  "\" states no bound on its values, so the product of the "
                                  "schedules cannot be proven finite"));
    }
    bound = RoundBoundUp(bound * child);
    if (!std::isfinite(bound)) {
      return p.Error(absl::StrCat("schedules[", i, "]"),
                     absl::StrCat("the product of the schedules' values up to this one may "
                                  "overflow: its bound is ",
                                  child, " and b = ", context.base));
    }
  }
  return std::make_unique<ChainedNode>(context.base, std::move(children), bound);
}

}  // namespace hpsched::core::kinds
