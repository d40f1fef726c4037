#include "core/evaluator.h"

#include "absl/strings/str_cat.h"
#include "core/vector_math.h"

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

absl::StatusOr<EvaluatorOptions::Path> ParseEvaluatorPath(absl::string_view name,
                                                          absl::string_view field) {
  if (name == "vector") return EvaluatorOptions::Path::kVector;
  if (name == "scalar") return EvaluatorOptions::Path::kScalar;
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": must be \"vector\" or \"scalar\", got \"", name, "\""));
}

void ScalarEvaluator::Evaluate(std::span<const EvalQuery> queries) const {
  const ScopedMathPath scalar(MathPath::kScalar);
  for (const EvalQuery& query : queries) query.node->Evaluate(query.start, query.out);
}

void VectorEvaluator::Evaluate(std::span<const EvalQuery> queries) const {
  const ScopedMathPath vector(MathPath::kVector);
  for (const EvalQuery& query : queries) query.node->Evaluate(query.start, query.out);
}

std::unique_ptr<Evaluator> MakeEvaluator(const EvaluatorOptions& options) {
  if (options.path == EvaluatorOptions::Path::kScalar) {
    return std::make_unique<ScalarEvaluator>(options);
  }
  return std::make_unique<VectorEvaluator>(options);
}

const Evaluator& DefaultEvaluator() {
  static const VectorEvaluator* const evaluator = new VectorEvaluator();
  return *evaluator;
}

void EvaluateBatch(std::span<const EvalQuery> queries) { DefaultEvaluator().Evaluate(queries); }

}  // namespace hpsched::core
