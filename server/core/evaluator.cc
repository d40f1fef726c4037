#include "core/evaluator.h"

#include "absl/strings/str_cat.h"

namespace hpsched::core {

absl::Status CheckStepRange(int64_t start, int64_t count, absl::string_view start_field,
                            absl::string_view count_field) {
  if (start < 0 || start >= kStepLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat(start_field, ": must be >= 0 and < 2^53, got ", start));
  }
  if (count < 1 || count > kMaxValuesPerQuery) {
    return absl::InvalidArgumentError(
        absl::StrCat(count_field, ": must be between 1 and ", kMaxValuesPerQuery, ", got ", count));
  }
  if (count > kStepLimit - start) {
    return absl::InvalidArgumentError(absl::StrCat(count_field, ": ", start_field, " + ",
                                                   count_field, " must be <= 2^53, got ", start,
                                                   " + ", count));
  }
  return absl::OkStatus();
}

void ScalarEvaluator::Evaluate(std::span<const EvalQuery> queries) const {
  for (const EvalQuery& query : queries) query.node->Evaluate(query.start, query.out);
}

const Evaluator& DefaultEvaluator() {
  static const ScalarEvaluator* const evaluator = new ScalarEvaluator();
  return *evaluator;
}

void EvaluateBatch(std::span<const EvalQuery> queries) { DefaultEvaluator().Evaluate(queries); }

}  // namespace hpsched::core
