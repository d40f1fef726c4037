// sequential: PyTorch SequentialLR (torch/optim/lr_scheduler.py, SequentialLR.step).
// schedules[i] runs from milestones[i-1] on (bisect_right: a milestone belongs to the schedule it
// starts), on local time t - milestones[i-1], with the group's base value.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

double MaxBound(const std::vector<NodePtr>& children) {
  double bound = 0;
  for (const NodePtr& child : children) bound = std::max(bound, child->max_abs());
  return bound;
}

class SequentialNode final : public Node {
 public:
  // Each value is one child's value.
  SequentialNode(std::vector<NodePtr> children, std::vector<int64_t> milestones)
      : Node(MaxBound(children)),
        children_(std::move(children)),
        milestones_(std::move(milestones)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    const int64_t end = start + static_cast<int64_t>(out.size());
    size_t child =
        std::upper_bound(milestones_.begin(), milestones_.end(), start) - milestones_.begin();
    int64_t t = start;
    while (t < end) {
      const int64_t segment_start = child == 0 ? 0 : milestones_[child - 1];
      const int64_t segment_end =
          child < milestones_.size() ? std::min(end, milestones_[child]) : end;
      children_[child]->Evaluate(t - segment_start,
                                 out.subspan(t - start, static_cast<size_t>(segment_end - t)));
      t = segment_end;
      ++child;
    }
  }

 private:
  std::vector<NodePtr> children_;
  std::vector<int64_t> milestones_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileSequential(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(std::vector<int64_t> milestones, p.Ints("milestones"));
  // Child i starts at milestones[i - 1] (reduce_on_plateau children see reports from there on).
  std::vector<int64_t> starts = {0};
  starts.insert(starts.end(), milestones.begin(), milestones.end());
  ASSIGN_OR_RETURN(std::vector<NodePtr> children,
                   CompileChildren(spec, context, context.base, starts));
  if (milestones.size() + 1 != children.size()) {
    return p.Error("milestones", absl::StrCat("must have one fewer value than schedules (",
                                              children.size() - 1, "), got ", milestones.size()));
  }
  for (size_t i = 0; i < milestones.size(); ++i) {
    const std::string name = absl::StrCat("milestones[", i, "]");
    if (i == 0 && milestones[i] <= 0) {
      return p.Error(name, absl::StrCat("must be greater than 0, got ", milestones[i]));
    }
    if (i > 0 && milestones[i] <= milestones[i - 1]) {
      return p.Error(
          name, absl::StrCat("must be greater than ", milestones[i - 1], ", got ", milestones[i]));
    }
  }
  return std::make_unique<SequentialNode>(std::move(children), std::move(milestones));
}

}  // namespace hpsched::core::kinds
