// Interval arithmetic over the exact double operations of the expression language.
//
// Interval and Domain are part of the public API (Expression::Range takes a Domain and returns an
// Interval). The functions in expression_internal are the abstract semantics of each bytecode
// operation, used by the range analysis (expression_range.cc). For + - * / and sqrt, which are
// correctly rounded, rounding is monotone, so the rounded images of an interval's corners bound the
// rounded images of its inside: the corners' values (computed with the same operations) are exact
// bounds. exp, log and pow are only faithful (glibc: < 1 ulp), so their bounds are widened by 2
// ulps. Every interval these functions return is finite: an operation whose result may not be is
// reported instead, as an error message naming the operands' ranges.

#ifndef HPSCHED_CORE_EXPRESSION_INTERVAL_H_
#define HPSCHED_CORE_EXPRESSION_INTERVAL_H_

#include <string>

#include "core/expression_bytecode.h"

namespace hpsched::core {

// A closed interval [lo, hi] of doubles; empty when !(lo <= hi).
struct Interval {
  double lo = 0.0;
  double hi = 0.0;

  static Interval Empty();
  static Interval Point(double v) { return {v, v}; }
  bool empty() const { return !(lo <= hi); }
  bool contains(double v) const { return lo <= v && v <= hi; }
  // max(|lo|, |hi|); 0 when empty.
  double max_abs() const;
  // "[lo, hi]" with 6 significant digits, or "[]".
  std::string ToString() const;
  bool operator==(const Interval&) const = default;
};

// The values the variable of an expression takes: every double in `range`, or, when `integers`,
// every integer in it.
struct Domain {
  Interval range;
  bool integers = false;
};

// The steps of a schedule: the integers in [0, 2^53 - 1].
Domain StepDomain();

namespace expression_internal {

// The smallest interval holding both (an empty operand is ignored).
Interval Hull(Interval a, Interval b);
Interval Intersect(Interval a, Interval b);
bool Finite(Interval a);
bool MayBeZero(Interval a);
bool SurelyZero(Interval a);

// Either the interval of an operation's results or why it may not be finite.
struct Abstract {
  Interval range;
  std::string error;  // Empty when range is valid.
};

// The interval of op(x) for x in `a` (op is a unary Op), or why it may be inf or NaN.
Abstract RangeUnary(Op op, Interval a);
// The interval of op(x, y) for x in `a`, y in `b` (op is a binary Op), or why it may be inf or NaN.
Abstract RangeBinary(Op op, Interval a, Interval b);

// The part of `d` where `x op c` holds, op a comparison (a superset of it: bounds are rounded
// outwards).
Interval Refine(const Domain& d, Op op, double c);
// The comparison that holds when `op` does not (the variable is finite: no NaN).
Op Negate(Op op);
// `c op x` == `x Mirror(op) c`.
Op Mirror(Op op);
bool IsComparison(Op op);

}  // namespace expression_internal
}  // namespace hpsched::core

#endif  // HPSCHED_CORE_EXPRESSION_INTERVAL_H_
