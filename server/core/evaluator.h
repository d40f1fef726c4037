// The batched evaluation core: every value any RPC returns is computed here, through one seam.
#ifndef HPSCHED_CORE_EVALUATOR_H_
#define HPSCHED_CORE_EVALUATOR_H_

#include <cstdint>
#include <memory>
#include <span>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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

// Knobs of an evaluator, so callers configure every implementation the same way.
struct EvaluatorOptions {
  // Which math evaluates the closed-form kinds (core/vector_math.h): kVector, the default, runs
  // their span kernels on vector units; kScalar is the reference, libm one value at a time.
  enum class Path { kVector, kScalar };
  Path path = Path::kVector;
};

// "vector" or "scalar" (the server's --evaluator flag). InvalidArgument names `field` otherwise.
absl::StatusOr<EvaluatorOptions::Path> ParseEvaluatorPath(absl::string_view name,
                                                          absl::string_view field);

// Evaluates batches of queries: the seam between the read path and the math.
//
// Contract, for every implementation:
// - Evaluate writes exactly query.out for every query, the same values, bit for bit, as
//   query.node->Evaluate(query.start, query.out) run on the implementation's math path
//   (core/vector_math.h: the vector path unless a ScopedMathPath(kScalar) is alive;
//   golden_core_test checks batched == one at a time); the order in which queries run is the
//   implementation's.
// - Queries have passed CheckStepRange and their spans do not overlap; the batch holds at most
//   kMaxValuesPerBatch values. Evaluate validates nothing and cannot fail.
// - The nodes and spans are the caller's and outlive the call; Evaluate keeps no reference to them.
// - Implementations are immutable after construction and safe to call from many threads at once;
//   Evaluate takes no lock shared with other calls and allocates nothing per value.
class Evaluator {
 public:
  virtual ~Evaluator() = default;
  virtual void Evaluate(std::span<const EvalQuery> queries) const = 0;
};

// One query after another, each through its node's own span loop on the scalar math path (libm,
// one value at a time): the reference implementation.
class ScalarEvaluator final : public Evaluator {
 public:
  explicit ScalarEvaluator(const EvaluatorOptions& /*options*/ = {}) {}
  void Evaluate(std::span<const EvalQuery> queries) const override;
};

// One query after another on the vector math path: the closed-form kinds, and every composite of
// them, evaluate their spans with SIMD kernels (core/vector_math.h), within the accuracy contract
// of docs/catalog.md of the scalar reference.
class VectorEvaluator final : public Evaluator {
 public:
  explicit VectorEvaluator(const EvaluatorOptions& /*options*/ = {}) {}
  void Evaluate(std::span<const EvalQuery> queries) const override;
};

// The evaluator `options.path` names. Never null.
std::unique_ptr<Evaluator> MakeEvaluator(const EvaluatorOptions& options);

// The process-wide vector evaluator, for callers given no other. Never null; never destroyed.
const Evaluator& DefaultEvaluator();

// DefaultEvaluator().Evaluate(queries): for callers that need no seam (tests, tools).
void EvaluateBatch(std::span<const EvalQuery> queries);

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_EVALUATOR_H_
