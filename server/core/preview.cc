#include "core/preview.h"

#include "absl/strings/str_cat.h"
#include "core/job_plan.h"
#include "core/status_macros.h"

namespace hpsched::core {

absl::Status CheckValueCap(int64_t total_values, absl::string_view count_field) {
  if (total_values <= core::kMaxValuesPerBatch) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(count_field, ": the response would hold more than ", core::kMaxValuesPerBatch,
                   " values (count x series); ask for fewer steps or hyperparameters"));
}

absl::Status CheckEvalCost(int64_t cost, int64_t limit, absl::string_view count_field) {
  if (cost <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      count_field, ": the request would cost ", cost,
      " evaluation units (count x the per-step cost of each series), more than the server's "
      "limit of ",
      limit, " (--max_eval_cost); ask for fewer steps, groups or hyperparameters"));
}

absl::Status CheckPreview(std::span<const double> base_values, int64_t start, int64_t count,
                          const PreviewFields& fields) {
  const std::vector<double> one = {1.0};
  const std::span<const double> bases =
      base_values.empty() ? std::span<const double>(one) : base_values;
  RETURN_IF_ERROR(CheckBaseValues(bases, fields.base_values));
  const int64_t n = EffectiveCount(count);
  RETURN_IF_ERROR(CheckStepRange(start, n, fields.start, fields.count));
  return CheckValueCap(static_cast<int64_t>(bases.size()) * n, fields.count);
}

absl::StatusOr<CompiledPreview> CompiledPreview::Compile(const ScheduleSpec& schedule,
                                                         std::vector<double> base_values,
                                                         absl::string_view hyperparameter,
                                                         const PreviewFields& fields) {
  if (base_values.empty()) base_values.push_back(1.0);
  RETURN_IF_ERROR(CheckBaseValues(base_values, fields.base_values));
  CompiledPreview preview;
  ASSIGN_OR_RETURN(preview.nodes_,
                   CompileStandalone(schedule, base_values, fields.schedule,
                                     hyperparameter.empty() ? "lr" : hyperparameter));
  return preview;
}

int64_t CompiledPreview::step_cost() const {
  int64_t cost = 0;
  for (const NodePtr& node : nodes_) cost += node->step_cost();
  return cost;
}

absl::Status CompiledPreview::Evaluate(int64_t start, int64_t count, const Evaluator& evaluator,
                                       const std::function<std::span<double>(size_t, int64_t)>& out,
                                       const PreviewFields& fields) const {
  const int64_t n = EffectiveCount(count);
  RETURN_IF_ERROR(CheckStepRange(start, n, fields.start, fields.count));
  RETURN_IF_ERROR(CheckValueCap(static_cast<int64_t>(nodes_.size()) * n, fields.count));
  std::vector<EvalQuery> queries;
  queries.reserve(nodes_.size());
  for (size_t g = 0; g < nodes_.size(); ++g) {
    queries.push_back(EvalQuery{nodes_[g].get(), start, out(g, n)});
  }
  evaluator.Evaluate(queries);
  return absl::OkStatus();
}

absl::Status PreviewValues(const ScheduleSpec& schedule, std::vector<double> base_values,
                           absl::string_view hyperparameter, int64_t start, int64_t count,
                           const Evaluator& evaluator,
                           const std::function<std::span<double>(size_t, int64_t)>& out,
                           const PreviewFields& fields) {
  RETURN_IF_ERROR(CheckPreview(base_values, start, count, fields));
  ASSIGN_OR_RETURN(
      CompiledPreview preview,
      CompiledPreview::Compile(schedule, std::move(base_values), hyperparameter, fields));
  return preview.Evaluate(start, count, evaluator, out, fields);
}

}  // namespace hpsched::core
