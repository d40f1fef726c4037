// Range analysis of Expression (Expression::Range): a walk over the syntax tree with interval
// arithmetic (expression_interval.h), proving every operation finite over the variable's domain.
//
// Each conditional's arms are walked over the part of the domain where they are selected, known
// exactly when the condition compares the variable with a constant (or combines such comparisons
// with &&, || and !); sub-expressions made of constants are folded as the code generator folds
// them, so `step < 2 * 50` splits the domain at 100. The walk recurses along the tree, whose depth
// is bounded by the text length (kMaxLength: at most ~512 frames, for `1+1+...+1`). Implementation
// detail of Expression.

#ifndef HPSCHED_CORE_EXPRESSION_RANGE_H_
#define HPSCHED_CORE_EXPRESSION_RANGE_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "core/expression_ast.h"
#include "core/expression_interval.h"

namespace hpsched::core::expression_internal {

// The interval holding f(x) for every x of `domain` (non-empty and finite), f being `ast` parsed
// from `text`; or InvalidArgument naming the first operation, in text order, that may give inf or
// NaN: "'/' at column 2 may divide by zero: the divisor's range [0, 9.0072e+15] contains 0".
absl::StatusOr<Interval> AnalyzeRange(const Ast& ast, std::string_view text, const Domain& domain);

}  // namespace hpsched::core::expression_internal

#endif  // HPSCHED_CORE_EXPRESSION_RANGE_H_
