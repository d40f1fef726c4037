// One piecewise node for the kinds that run child schedules one after another: PyTorch's
// SequentialLR (`sequential`) and optax's join_schedules (and the optax schedules built on it).
#ifndef HPSCHED_CORE_KINDS_PIECEWISE_NODE_H_
#define HPSCHED_CORE_KINDS_PIECEWISE_NODE_H_

#include <algorithm>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/node.h"
#include "core/params.h"

namespace hpsched::core::kinds {

// children[k] on local time t - boundaries[k - 1], with k = the number of boundaries <= t: a
// boundary belongs to the child it starts. `boundaries` has one value fewer than `children`, each
// in [0, kStepLimit], non-decreasing; a child whose boundary equals the next one never runs (of
// equal boundaries the last wins, as in optax's join_schedules). SequentialLR's milestones are the
// strictly increasing case. Each value is one child's value, so the bound is the largest child's.
class PiecewiseNode final : public Node {
 public:
  PiecewiseNode(std::vector<NodePtr> children, std::vector<int64_t> boundaries)
      : Node(MaxBound(children)),
        children_(std::move(children)),
        boundaries_(std::move(boundaries)),
        step_cost_(1) {
    for (const NodePtr& child : children_) {
      step_cost_ = std::max(step_cost_, 1 + child->step_cost());
    }
  }

  void Evaluate(int64_t start, std::span<double> out) const override {
    const int64_t end = start + static_cast<int64_t>(out.size());
    size_t child =
        std::upper_bound(boundaries_.begin(), boundaries_.end(), start) - boundaries_.begin();
    for (int64_t t = start; t < end; ++child) {
      const int64_t local_origin = child == 0 ? 0 : boundaries_[child - 1];
      const int64_t segment_end =
          child < boundaries_.size() ? std::min(end, boundaries_[child]) : end;
      if (segment_end <= t) continue;  // A child whose boundary equals the next one never runs.
      children_[child]->Evaluate(
          t - local_origin,
          out.subspan(static_cast<size_t>(t - start), static_cast<size_t>(segment_end - t)));
      t = segment_end;
    }
  }

  // Only the children that run within [start, end), each over its own part on its local time.
  void AddReportDependences(int64_t start, int64_t end, int64_t shift,
                            std::vector<ReportDependence>* out) const override {
    for (size_t child = 0; child < children_.size(); ++child) {
      const int64_t origin = child == 0 ? 0 : boundaries_[child - 1];
      const int64_t lo = std::max(start, origin);
      const int64_t hi = child < boundaries_.size() ? std::min(end, boundaries_[child]) : end;
      if (lo < hi)
        children_[child]->AddReportDependences(lo - origin, hi - origin, shift + origin, out);
    }
  }

  // Each value is one child's: the costliest child's (computed once: reads ask for it per call).
  int64_t step_cost() const override { return step_cost_; }

 private:
  static double MaxBound(const std::vector<NodePtr>& children) {
    double bound = 0;
    for (const NodePtr& child : children) bound = std::max(bound, child->max_abs());
    return bound;
  }

  std::vector<NodePtr> children_;
  std::vector<int64_t> boundaries_;
  int64_t step_cost_;
};

// The pieces of a piecewise kind (sequential's milestones, optax join_schedules' boundaries): reads
// the int list `field` and compiles the children, child i on local time from field[i - 1] (a
// reduce_on_plateau child sees the reports from there on). InvalidArgument on `field` unless there
// is one value fewer than children; the order each kind requires of the values it checks itself.
struct Pieces {
  std::vector<int64_t> boundaries;
  std::vector<NodePtr> children;
};
absl::StatusOr<Pieces> CompilePieces(const Params& p, absl::string_view field);

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_PIECEWISE_NODE_H_
