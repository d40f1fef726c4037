// A small, safe arithmetic expression language over one variable.
//
// Used by `lambda` learning-rate schedules: the schedule's value is
// base * expression(step). An expression is parsed and checked once by
// Expression::Compile() and then evaluated many times, typically over spans of
// steps, by Expression::Evaluate().
//
// Language (all values are IEEE-754 doubles):
//
//   Precedence, lowest first:
//     1. c ? a : b        conditional; right-associative; c is true when c != 0
//                         (so NaN is true, like Python's bool(nan)).
//     2. a || b           logical or            -> 1.0 or 0.0, left-assoc.
//     3. a && b           logical and           -> 1.0 or 0.0, left-assoc.
//     4. < <= > >= == !=  comparison            -> 1.0 or 0.0. Comparisons do
//                         not chain: `a < b < c` is an error (Python and C
//                         disagree on its meaning); write `a < b && b < c`.
//     5. a + b, a - b     left-associative.
//     6. a * b, a / b     left-associative.
//     7. -a, +a, !a       prefix operators (!a is 1.0 when a == 0, else 0.0).
//     8. a ** b, a ^ b    power (`^` is NOT xor); right-associative. The
//                         left operand is a primary, the right operand may
//                         carry prefix operators, exactly like Python:
//                         -2**2 == -4, 2**-1 == 0.5, 2**3**2 == 512.
//     9. primaries: numbers (1, 0.5, .5, 1., 1e-3, 2.5E+4), the variable,
//                   the constants `pi` and `e`, `( expr )`, function calls.
//
//   Functions: min(a, b, ...) and max(a, b, ...) (2 or more arguments), pow(a,
//   b) (exactly 2), and abs, floor, ceil, exp, log (natural), sqrt, sin, cos
//   (exactly 1). Whitespace (space, \t, \n, \r, \f, \v) is free. Nothing else
//   is accepted: only ASCII is allowed, and every error names a 1-based column
//   (a byte offset + 1).
//
// Semantics match Python/C double arithmetic operation for operation, so the
// result equals what a Python lambda with the same operations (as used by a
// PyTorch LambdaLR) computes:
//   * + - * / are IEEE-754 double operations; `a ** b` and pow(a, b) are
//     std::pow(a, b); the other functions are the <cmath> ones.
//   * min/max behave like Python's builtins on floats: the first smallest
//     (largest) argument wins, i.e. min(a, b) == (b < a ? b : a), folded left
//     to right over the arguments.
//   * The conditional selects exactly the chosen arm's value; the other arm's
//     value (even inf/NaN) never leaks into the result.
//   * Nothing is reassociated or algebraically simplified. Sub-expressions
//     made only of constants are computed once at compile time with exactly
//     the same operations (and code) the evaluator uses, so the result is
//     bit-for-bit unchanged.
//   * A NaN result is always the canonical quiet NaN
//     (std::numeric_limits<double>::quiet_NaN()), unless the expression is
//     just the variable (then x is passed through unchanged). NaN sign and
//     payload bits are not otherwise meaningful.
//   * Where Python would raise (division by zero, log(0), math range errors,
//     negative base with a fractional exponent), the IEEE/C result (inf, NaN)
//     is produced instead. The variable is a double: integer steps are exact
//     up to 2**53. Range() proves, before any evaluation, that none of this
//     happens over a domain (the lambda kind requires it over the steps).
//
// Limits (checked by Compile, so evaluation is bounded and allocation-free):
//   * at most kMaxLength bytes of source text;
//   * at most kMaxNesting levels of nesting (parentheses, call argument lists,
//     conditional arms, prefix operators, power exponents), which bounds the
//     parser's recursion;
//   * at most kMaxStack evaluation stack slots;
//   * the instruction count follows from the text length (each operator or
//     function name emits at most one instruction, `?:` at most three), with
//     a hard cap of 4 * kMaxLength.
//
// Thread-safety: a compiled Expression is immutable; Evaluate() may be called
// concurrently from any number of threads.
//
// Implementation, one job per file (namespace expression_internal): expression_lexer (text ->
// tokens), expression_ast + expression_parser (tokens -> syntax tree), expression_codegen (tree ->
// bytecode, constants folded), expression_vm (runs the bytecode), expression_interval (interval
// arithmetic, with Interval and Domain), expression_range (Range(): a walk over the tree);
// expression_bytecode holds the instruction set and the scalar semantics they all share.

#ifndef HPSCHED_CORE_EXPRESSION_H_
#define HPSCHED_CORE_EXPRESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/expression_bytecode.h"
#include "core/expression_interval.h"

namespace hpsched::core {

namespace expression_internal {
class Ast;
}  // namespace expression_internal

class Expression {
 public:
  // Maximum length of the source text, in bytes (ASCII characters).
  static constexpr size_t kMaxLength = 1024;
  // Maximum nesting depth accepted by the parser.
  static constexpr int kMaxNesting = 64;
  // Maximum number of evaluation stack slots a program may use.
  static constexpr int kMaxStack = 64;
  // Evaluate() processes inputs in chunks of this many lanes.
  static constexpr size_t kLanes = 64;

  // Parses and checks `text`, an expression over one variable named
  // `variable` (e.g. "step"), and compiles it to bytecode.
  //
  // On success returns an Expression ready for evaluation. Never crashes or
  // hangs, whatever the bytes of `text` (NUL and non-ASCII bytes included).
  //
  // Errors (all InvalidArgument; the message says what is wrong and where,
  // with a 1-based column, and carries no field path -- the caller prefixes
  // it), for example:
  //   "longer than 1024 characters (got 2000)"
  //   "empty expression"
  //   "unexpected ')' at column 7"            (also trailing garbage, bare
  //                                             operators, end of text)
  //   "unclosed '(' at column 3"
  //   "unknown name 'stp' at column 1 (...)"
  //   "unknown function 'foo' at column 1"
  //   "'min' needs at least 2 arguments at column 1, got 1"
  //   "'pow' needs exactly 2 arguments at column 1, got 3"
  //   "nesting deeper than 64 at column 65"
  //   "unexpected byte 0x00 at column 4 (only printable ASCII is allowed)"
  //   "number '1e999' at column 1 is out of range (not a finite double)"
  //   "malformed number '1e' at column 1"
  //   "comparisons cannot be chained ('<' at column 7); ..."
  //   "expression is too complex: needs more than 64 evaluation stack slots"
  // `variable` must be an identifier ([A-Za-z_][A-Za-z0-9_]*) that is not a
  // function name or `pi`/`e`; otherwise InvalidArgument
  // "invalid variable name '...'" or "variable name 'pi' is reserved".
  static absl::StatusOr<Expression> Compile(std::string_view text, std::string_view variable);

  Expression(const Expression&) = default;
  Expression(Expression&&) noexcept = default;
  Expression& operator=(const Expression&) = default;
  Expression& operator=(Expression&&) noexcept = default;

  // Conservative range analysis: proves that f(x) is finite for every x of `domain` and returns an
  // interval that holds every such f(x) (Evaluate's exact value, rounding included), or returns
  // InvalidArgument naming the first operation (by its column) that may give inf or NaN, and why:
  //   "'/' at column 2 may divide by zero: the divisor's range [0, 9.0072e+15] contains 0"
  //   "'log' at column 1 may take the log of a value <= 0: the argument's range [0, 10] ..."
  //   "'**' at column 12 may be NaN: the base's range [-8.9e+12, 1] has negative values and the
  //    exponent is not a constant integer (clamp the base, e.g. max(0, ...) ** 0.9)"
  // Every operation must be finite over the variable's range where it is evaluated (intermediate
  // results included: min(1, exp(step)) is rejected though the min would hide the overflow), with
  // one exception that keeps piecewise expressions usable: the arms of `c ? a : b` are analyzed
  // only where they are selected. When c is a comparison of the variable with a constant (`step <
  // 100`, `1000 <= step`, `step == 0`), or a combination of those with &&, || and !, arm a is
  // analyzed over the part of the range where c holds and arm b over the rest; an arm that no
  // value reaches is not analyzed at all (`step < 0 ? 1/0 : 1` is fine). Any other condition is
  // analyzed as a whole value: when its range excludes 0 only arm a is analyzed, when it is {0}
  // only arm b, otherwise both over the whole range.
  //
  // The analysis uses interval arithmetic with rounding taken into account (+ - * / sqrt are
  // correctly rounded, hence monotone; exp, log and pow results are widened by 2 ulps), so it is
  // sound, but conservative: `1/(step - 0.5)` is rejected though no integer step makes it divide
  // by zero. The returned interval is empty only for an empty domain. Cost: one walk of the
  // syntax tree kept by Compile (microseconds); call it once, at compile time.
  //
  // For example, over StepDomain(): `0.95 ** step` -> [0, 1]; `1/(step+1)` -> [~1.1e-16, 1];
  // `min(1, (step+1)/1000)`; `step < 100 ? step/100 : 0.5 * (1 + cos(pi * (step-100)/900))` are
  // accepted; `1/step`, `log(step)`, `sqrt(step - 1)`, `exp(step)`, `(1 - step/1000) ** 0.9` are
  // rejected (the last is NaN past step 1000, and complex in Python; write `max(0, 1 -
  // step/1000) ** 0.9`).
  absl::StatusOr<Interval> Range(const Domain& domain) const;

  // Computes out[i] = f(x[i]) for every i. Requires x.size() == out.size();
  // if they differ, only the first min(x.size(), out.size()) elements are
  // computed (never out of bounds). `out` may be the very same memory as `x`
  // (in-place evaluation) but must not otherwise overlap it. Never fails,
  // allocates nothing and makes no virtual calls; invalid operations yield
  // inf/NaN as in IEEE-754. Inputs are processed kLanes at a time, each
  // instruction being applied across the whole chunk; the evaluation stack
  // lives on the C++ stack (at most kMaxStack * kLanes doubles = 32 KiB, less
  // for expressions that use few slots).
  void Evaluate(std::span<const double> x, std::span<double> out) const;

  // Returns f(x); bit-for-bit the same result as the span version (same
  // per-lane operations, one lane). Never fails, allocates nothing.
  double Evaluate(double x) const;

  // The source text, exactly as given to Compile().
  const std::string& text() const { return text_; }
  // The variable name, exactly as given to Compile().
  const std::string& variable() const { return variable_; }

  // Introspection (for tests and diagnostics): number of bytecode
  // instructions, and number of evaluation stack slots used.
  size_t instruction_count() const { return code_.size(); }
  int stack_slots() const { return slots_; }

 private:
  Expression() = default;

  std::string text_;
  std::string variable_;
  std::vector<expression_internal::Instruction> code_;
  expression_internal::Result result_;
  int slots_ = 0;
  // The syntax tree, for Range(); shared by copies (it is immutable).
  std::shared_ptr<const expression_internal::Ast> ast_;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_EXPRESSION_H_
