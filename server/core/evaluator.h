// The batched evaluation core: every value any RPC returns is computed here.
#ifndef HPSCHED_CORE_EVALUATOR_H_
#define HPSCHED_CORE_EVALUATOR_H_

#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/node.h"

namespace hpsched::core {

// Most consecutive steps one query may ask for, and most values one batch may produce.
inline constexpr int64_t kMaxValuesPerQuery = 100'000;
inline constexpr int64_t kMaxValuesPerBatch = 400'000;

// One query: the values of `node` for the steps [start, start + out.size()), written to `out`.
struct EvalQuery {
  const Node* node = nullptr;
  int64_t start = 0;
  std::span<double> out;
};

// Checks a requested step range: 0 <= start, 1 <= count <= kMaxValuesPerQuery, start + count <=
// kStepLimit. InvalidArgument names `start_field` or `count_field`.
absl::Status CheckStepRange(int64_t start, int64_t count, absl::string_view start_field,
                            absl::string_view count_field);

// Evaluates every query. A pure function of the queries: no locks, no allocation. Every query must
// have passed CheckStepRange.
void EvaluateBatch(std::span<const EvalQuery> queries);

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_EVALUATOR_H_
