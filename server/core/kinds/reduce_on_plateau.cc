// reduce_on_plateau: PyTorch ReduceLROnPlateau (torch/optim/lr_scheduler.py, torch 1.13:
// ReduceLROnPlateau.step, _reduce_lr, is_better), over the job's metric reports in step order.
// A report at global step s is one step(value) call; the value it leads to holds from step s + 1
// on. The schedule is compiled again whenever a report arrives, so its node is a plain step
// function; the compile resumes torch's state from the job's previous plan (core/plateau_state.h)
// and takes only the reports that plan had not taken, so a report costs O(1) amortized whatever
// the job's age. The values are those of replaying every report: the same operations, in the same
// order, on the same state.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/plateau_state.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

// The value is `state.base` before the first reduction, and each reduction's value from its local
// step on. Every value depends on the reports of the state's metric from the schedule's first step
// (global time_offset) on.
class StepFunctionNode final : public Node {
 public:
  explicit StepFunctionNode(std::shared_ptr<const PlateauState> state)
      // Reductions lower a positive lr (to at least min_lr >= 0): |base| bounds every value.
      : Node(std::fabs(state->base)), state_(std::move(state)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    const SharedLog<std::pair<int64_t, double>>& reductions = state_->reductions;
    const int64_t end = start + static_cast<int64_t>(out.size());
    // The first reduction after `start`.
    size_t lo = 0, hi = reductions.size();
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      if (reductions[mid].first <= start) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    size_t piece = lo;
    int64_t t = start;
    while (t < end) {
      const int64_t piece_end =
          piece < reductions.size() ? std::min(end, reductions[piece].first) : end;
      const double value = piece == 0 ? state_->base : reductions[piece - 1].second;
      std::fill(out.begin() + (t - start), out.begin() + (piece_end - start), value);
      t = piece_end;
      ++piece;
    }
  }

  void AddReportDependences(int64_t start, int64_t end, int64_t shift,
                            std::vector<ReportDependence>* out) const override {
    if (start < end) {
      out->push_back({state_->metric, state_->time_offset, kStepLimit, start + shift, end + shift});
    }
  }

 private:
  std::shared_ptr<const PlateauState> state_;
};

// torch's is_better, with its order of operations.
bool IsBetter(const PlateauParams& p, double a, double best) {
  if (!p.maximize && p.relative) return a < best * (1. - p.threshold);
  if (!p.maximize) return a < best - p.threshold;
  if (p.relative) return a > best * (p.threshold + 1.);
  return a > best + p.threshold;
}

// The state before any report: torch's __init__ and _reset.
PlateauState Initial(std::string metric, const PlateauParams& params, double base,
                     int64_t time_offset) {
  PlateauState state;
  state.metric = std::move(metric);
  state.params = params;
  state.base = base;
  state.time_offset = time_offset;
  state.lr = base;
  state.best = params.maximize ? -std::numeric_limits<double>::infinity()
                               : std::numeric_limits<double>::infinity();
  return state;
}

// One step(value) call for the report at global `step`. Returns whether it reduced the lr.
bool Take(int64_t step, double value, PlateauState* state) {
  const PlateauParams& p = state->params;
  state->last_step = step;
  ++state->taken;
  if (step < state->time_offset) return false;  // Before this schedule started.
  if (IsBetter(p, value, state->best)) {
    state->best = value;
    state->num_bad_epochs = 0;
  } else {
    ++state->num_bad_epochs;
  }
  if (state->cooldown_counter > 0) {
    --state->cooldown_counter;
    state->num_bad_epochs = 0;
  }
  bool reduced = false;
  if (state->num_bad_epochs > p.patience) {
    const double lowered = std::max(state->lr * p.factor, p.min_lr);
    if (state->lr - lowered > p.eps) {
      state->lr = lowered;
      state->reductions.Append({step - state->time_offset + 1, lowered});
      reduced = true;
    }
    state->cooldown_counter = p.cooldown;
    state->num_bad_epochs = 0;
  }
  return reduced;
}

// The state of the previous plan to resume from: same key, same inputs, and a track that extends
// the reports it took. Null when there is none.
std::shared_ptr<const PlateauState> Resumable(const CompileContext& context, absl::string_view key,
                                              const PlateauState& initial,
                                              const MetricTrack& track) {
  if (context.previous_plateaus == nullptr) return nullptr;
  const PlateauStates& states = *context.previous_plateaus;
  auto it =
      std::lower_bound(states.begin(), states.end(), key,
                       [](const auto& entry, absl::string_view k) { return entry.first < k; });
  if (it == states.end() || it->first != key) return nullptr;
  const PlateauState& old = *it->second;
  if (old.metric != initial.metric || !(old.params == initial.params) ||
      std::bit_cast<uint64_t>(old.base) != std::bit_cast<uint64_t>(initial.base) ||
      old.time_offset != initial.time_offset || old.taken > track.reports.size() ||
      (old.taken > 0 && track.reports[old.taken - 1].first != old.last_step)) {
    return nullptr;
  }
  return it->second;
}

}  // namespace

absl::StatusOr<NodePtr> CompileReduceOnPlateau(const ScheduleSpec& spec,
                                               const CompileContext& context) {
  Params p(spec, context);
  PlateauParams plateau;
  ASSIGN_OR_RETURN(std::string metric, p.String("metric"));
  ASSIGN_OR_RETURN(std::string mode, p.Enum("mode", "min", {"min", "max"}));
  ASSIGN_OR_RETURN(plateau.factor, p.Double("factor", 0.1));
  ASSIGN_OR_RETURN(plateau.patience, p.Int("patience", 10));
  ASSIGN_OR_RETURN(plateau.threshold, p.Double("threshold", 1e-4));
  ASSIGN_OR_RETURN(std::string threshold_mode, p.Enum("threshold_mode", "rel", {"rel", "abs"}));
  ASSIGN_OR_RETURN(plateau.cooldown, p.Int("cooldown", 0));
  ASSIGN_OR_RETURN(plateau.min_lr, p.PerGroupDouble("min_lr", 0.0));
  ASSIGN_OR_RETURN(plateau.eps, p.Double("eps", 1e-8));
  plateau.maximize = mode == "max";
  plateau.relative = threshold_mode == "rel";
  if (plateau.factor < 0 || plateau.factor >= 1) {
    return p.Error("factor", absl::StrCat("must be >= 0 and < 1, got ", plateau.factor));
  }
  if (plateau.patience < 0) {
    return p.Error("patience", absl::StrCat("must be >= 0, got ", plateau.patience));
  }
  if (plateau.threshold < 0) {
    return p.Error("threshold", absl::StrCat("must be >= 0, got ", plateau.threshold));
  }
  if (plateau.cooldown < 0) {
    return p.Error("cooldown", absl::StrCat("must be >= 0, got ", plateau.cooldown));
  }
  if (plateau.min_lr < 0) {
    return p.Error("min_lr", absl::StrCat("must be >= 0, got ", plateau.min_lr));
  }
  if (plateau.eps < 0) return p.Error("eps", absl::StrCat("must be >= 0, got ", plateau.eps));

  // Its notes (metrics, reductions) go to each group's plan: never shared.
  context.MarkGroupDependent();
  PlateauState initial = Initial(metric, plateau, context.base, context.time_offset);
  if (context.metrics == nullptr) {
    return std::make_unique<StepFunctionNode>(
        std::make_shared<const PlateauState>(std::move(initial)));
  }
  auto track = context.metrics->find(metric);
  if (track == context.metrics->end()) {
    return p.Error("metric", absl::StrCat("\"", metric,
                                          "\" is not declared in the job's metrics (job.metrics)"));
  }
  const SharedLog<std::pair<int64_t, double>>& reports = track->second.reports;
  const std::string key = absl::StrCat(context.path, "@", context.time_offset);
  std::shared_ptr<const PlateauState> state;
  if (auto old = Resumable(context, key, initial, track->second);
      old != nullptr && old->taken == reports.size()) {
    state = std::move(old);  // Nothing new: share it.
  } else {
    PlateauState next = old != nullptr ? *old : std::move(initial);
    for (size_t i = next.taken; i < reports.size(); ++i) {
      const auto [step, value] = reports[i];
      if (Take(step, value, &next) && context.notes != nullptr) {
        context.notes->new_reduction_steps.push_back(step + 1);
      }
    }
    state = std::make_shared<const PlateauState>(std::move(next));
  }
  if (context.notes != nullptr) {
    context.notes->metrics.insert(metric);
    context.notes->plateaus.emplace_back(key, state);
  }
  return std::make_unique<StepFunctionNode>(std::move(state));
}

}  // namespace hpsched::core::kinds
