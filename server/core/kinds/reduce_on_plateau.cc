// reduce_on_plateau: PyTorch ReduceLROnPlateau (torch/optim/lr_scheduler.py, torch 1.13:
// ReduceLROnPlateau.step, _reduce_lr, is_better), replaying the job's metric reports in step order.
// A report at global step s is one step(value) call; the value it leads to holds from step s + 1
// on. The schedule is compiled again whenever a report arrives, so its node is a plain step
// function.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

// Values change at `starts` (local steps, increasing): values[i] holds from starts[i - 1] on, and
// values[0] before starts[0]. Every value depends on the reports of `metric` from the schedule's
// first step (global `first_report`) on.
class StepFunctionNode final : public Node {
 public:
  StepFunctionNode(std::vector<int64_t> starts, std::vector<double> values, std::string metric,
                   int64_t first_report)
      : Node(Bound(values)),
        starts_(std::move(starts)),
        values_(std::move(values)),
        metric_(std::move(metric)),
        first_report_(first_report) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    const int64_t end = start + static_cast<int64_t>(out.size());
    size_t piece = std::upper_bound(starts_.begin(), starts_.end(), start) - starts_.begin();
    int64_t t = start;
    while (t < end) {
      const int64_t piece_end = piece < starts_.size() ? std::min(end, starts_[piece]) : end;
      std::fill(out.begin() + (t - start), out.begin() + (piece_end - start), values_[piece]);
      t = piece_end;
      ++piece;
    }
  }

  void AddReportDependences(int64_t start, int64_t end, int64_t shift,
                            std::vector<ReportDependence>* out) const override {
    if (start < end)
      out->push_back({metric_, first_report_, kStepLimit, start + shift, end + shift});
  }

 private:
  static double Bound(const std::vector<double>& values) {
    double bound = 0;
    for (double v : values) bound = std::max(bound, std::fabs(v));
    return bound;  // The values themselves: exact.
  }

  std::vector<int64_t> starts_;
  std::vector<double> values_;
  std::string metric_;
  int64_t first_report_;
};

struct Plateau {
  bool maximize = false;
  bool relative = true;
  double factor = 0.1;
  int64_t patience = 10;
  double threshold = 1e-4;
  int64_t cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;

  // torch's is_better, with its order of operations.
  bool IsBetter(double a, double best) const {
    if (!maximize && relative) return a < best * (1. - threshold);
    if (!maximize) return a < best - threshold;
    if (relative) return a > best * (threshold + 1.);
    return a > best + threshold;
  }
};

}  // namespace

absl::StatusOr<NodePtr> CompileReduceOnPlateau(const ScheduleSpec& spec,
                                               const CompileContext& context) {
  Params p(spec, context);
  Plateau plateau;
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
  std::vector<int64_t> starts;
  std::vector<double> values = {context.base};
  if (context.metrics != nullptr) {
    auto track = context.metrics->find(metric);
    if (track == context.metrics->end()) {
      return p.Error(
          "metric",
          absl::StrCat("\"", metric, "\" is not declared in the job's metrics (job.metrics)"));
    }
    if (context.notes != nullptr) context.notes->metrics.insert(metric);
    double lr = context.base;
    double best = plateau.maximize ? -std::numeric_limits<double>::infinity()
                                   : std::numeric_limits<double>::infinity();
    int64_t bad = 0;
    int64_t cooldown_counter = 0;
    for (const auto& [step, value] : track->second.reports) {
      if (step < context.time_offset) continue;  // Before this schedule started.
      if (plateau.IsBetter(value, best)) {
        best = value;
        bad = 0;
      } else {
        ++bad;
      }
      if (cooldown_counter > 0) {
        --cooldown_counter;
        bad = 0;
      }
      if (bad > plateau.patience) {
        const double reduced = std::max(lr * plateau.factor, plateau.min_lr);
        if (lr - reduced > plateau.eps) {
          lr = reduced;
          starts.push_back(step - context.time_offset + 1);
          values.push_back(lr);
          if (context.notes != nullptr) {
            context.notes->reduction_steps.push_back(step + 1);
          }
        }
        cooldown_counter = plateau.cooldown;
        bad = 0;
      }
    }
  }
  return std::make_unique<StepFunctionNode>(std::move(starts), std::move(values), std::move(metric),
                                            context.time_offset);
}

}  // namespace hpsched::core::kinds
