// sequential: PyTorch SequentialLR (torch/optim/lr_scheduler.py, SequentialLR.step).
// schedules[i] runs from milestones[i-1] on (bisect_right: a milestone belongs to the schedule it
// starts), on local time t - milestones[i-1], with the group's base value.
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/piecewise_node.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {

absl::StatusOr<NodePtr> CompileSequential(const ScheduleSpec& spec, const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(Pieces pieces, CompilePieces(p, "milestones"));
  const std::vector<int64_t>& milestones = pieces.boundaries;
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
  return std::make_unique<PiecewiseNode>(std::move(pieces.children), std::move(pieces.boundaries));
}

absl::StatusOr<Pieces> CompilePieces(const Params& p, absl::string_view field) {
  Pieces pieces;
  ASSIGN_OR_RETURN(pieces.boundaries, p.Ints(field));
  std::vector<int64_t> starts = {0};
  starts.insert(starts.end(), pieces.boundaries.begin(), pieces.boundaries.end());
  ASSIGN_OR_RETURN(pieces.children,
                   CompileChildren(p.spec(), p.context(), p.context().base, starts));
  if (pieces.boundaries.size() + 1 != pieces.children.size()) {
    return p.Error(field,
                   absl::StrCat("must have one fewer value than schedules (",
                                pieces.children.size() - 1, "), got ", pieces.boundaries.size()));
  }
  return pieces;
}

}  // namespace hpsched::core::kinds
