// An expression over `step` evaluated at consecutive steps: shared by `lambda` and
// `multiplicative`.
#ifndef HPSCHED_CORE_KINDS_EXPRESSION_STEPS_H_
#define HPSCHED_CORE_KINDS_EXPRESSION_STEPS_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

#include "core/expression.h"

namespace hpsched::core::kinds {

// Writes expression(first + i) to out[i], the steps as doubles (exact below 2^53). Allocates
// nothing; the bits of a step do not depend on the span (Expression::Evaluate's guarantee).
inline void EvaluateAtSteps(const Expression& expression, int64_t first, std::span<double> out) {
  constexpr size_t kChunk = 256;
  std::array<double, kChunk> steps;
  for (size_t offset = 0; offset < out.size(); offset += kChunk) {
    const size_t n = std::min(kChunk, out.size() - offset);
    for (size_t i = 0; i < n; ++i) {
      steps[i] = static_cast<double>(first + static_cast<int64_t>(offset + i));
    }
    expression.Evaluate(std::span<const double>(steps.data(), n), out.subspan(offset, n));
  }
}

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_EXPRESSION_STEPS_H_
