#include "core/expression_interval.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hpsched::core {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

Interval Interval::Empty() { return {kInf, -kInf}; }

double Interval::max_abs() const { return empty() ? 0.0 : std::max(std::fabs(lo), std::fabs(hi)); }

std::string Interval::ToString() const {
  if (empty()) return "[]";
  return absl::StrFormat("[%.6g, %.6g]", lo, hi);
}

Domain StepDomain() { return {{0.0, static_cast<double>((int64_t{1} << 53) - 1)}, true}; }

namespace expression_internal {

Interval Hull(Interval a, Interval b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
}

Interval Intersect(Interval a, Interval b) { return {std::max(a.lo, b.lo), std::min(a.hi, b.hi)}; }

bool Finite(Interval a) { return std::isfinite(a.lo) && std::isfinite(a.hi); }
bool MayBeZero(Interval a) { return a.contains(0.0); }
bool SurelyZero(Interval a) { return a.lo == 0.0 && a.hi == 0.0; }

namespace {

Interval Widen(Interval a, int ulps) {
  for (int i = 0; i < ulps; ++i) {
    a.lo = std::nextafter(a.lo, -kInf);
    a.hi = std::nextafter(a.hi, kInf);
  }
  return a;
}

// Clamps a widened interval to <= v (when `below`) or >= v (when `above`): a faithful result
// (error < 1 ulp) never crosses a double that bounds the exact result, so widening must not either
// (it would make 0.95 ** step reach above 1).
Interval NotAcross(Interval a, double v, bool below, bool above) {
  if (below) a.hi = std::min(a.hi, v);
  if (above) a.lo = std::max(a.lo, v);
  return a;
}

// The smallest interval holding the four values.
Interval Corners(double a, double b, double c, double d) {
  return {std::min({a, b, c, d}), std::max({a, b, c, d})};
}

// The value of a predicate when it is decided over the whole operand ranges, else [0, 1].
Interval Decided(bool surely_true, bool surely_false) {
  if (surely_true) return Interval::Point(1.0);
  if (surely_false) return Interval::Point(0.0);
  return {0.0, 1.0};
}

Abstract Overflow(std::string what) { return {{}, absl::StrCat("may overflow: ", what)}; }

Abstract RangePow(Interval a, Interval b) {
  const auto describe = [&] {
    return absl::StrCat("the base's range ", a.ToString(), ", the exponent's range ", b.ToString());
  };
  Interval r;
  if (a.lo < 0) {
    // A negative base gives NaN for a non-integer exponent: only a constant integer exponent is
    // safe. x^n is then monotone on each side of 0.
    if (!(b.lo == b.hi && std::floor(b.lo) == b.lo)) {
      return {{},
              absl::StrCat("may be NaN: the base's range ", a.ToString(),
                           " has negative values and the exponent (range ", b.ToString(),
                           ") is not a constant integer (clamp the base, e.g. max(0, ...) ** y)")};
    }
    const double n = b.lo;
    if (n < 0 && MayBeZero(a)) {
      return {{},
              absl::StrCat("may divide by zero: the base's range ", a.ToString(),
                           " contains 0 and the exponent ", n, " is negative")};
    }
    const double x = std::pow(a.lo, n);
    const double y = std::pow(a.hi, n);
    r = {std::min(x, y), std::max(x, y)};
    // An even power of an interval around 0 reaches its minimum, 0, inside.
    if (MayBeZero(a) && std::fmod(n, 2.0) == 0) r.lo = 0.0;
  } else if (a.lo == 0) {  // 0 or -0 may be the base.
    if (b.lo < 0) {
      return {{}, absl::StrCat("may divide by zero (0 to a negative power): ", describe())};
    }
    // 0 <= x^y <= max(1, a.hi^b.hi) for x in [0, a.hi], y >= 0.
    r = {0.0, a.hi >= 1 ? std::pow(a.hi, b.hi) : 1.0};
  } else {
    // x > 0: x^y = exp(y * log(x)), and y * log(x) is extreme at the corners.
    r = Corners(std::pow(a.lo, b.lo), std::pow(a.lo, b.hi), std::pow(a.hi, b.lo),
                std::pow(a.hi, b.hi));
    // x^y is <= 1 or >= 1 when x and y are on one side of 1 and 0.
    r = Widen(r, 2);
    const bool x_le_1 = a.hi <= 1, x_ge_1 = a.lo >= 1, y_ge_0 = b.lo >= 0, y_le_0 = b.hi <= 0;
    r = NotAcross(r, 1.0, (x_le_1 && y_ge_0) || (x_ge_1 && y_le_0),
                  (x_ge_1 && y_ge_0) || (x_le_1 && y_le_0));
  }
  if (a.lo <= 0) r = Widen(r, 2);
  if (a.lo >= 0) r.lo = std::max(r.lo, 0.0);
  if (!Finite(r)) return Overflow(describe());
  return {r, ""};
}

}  // namespace

Abstract RangeUnary(Op op, Interval a) {
  switch (op) {
    case Op::kNeg:
      return {{-a.hi, -a.lo}, ""};
    case Op::kNot:
      return {Decided(SurelyZero(a), !MayBeZero(a)), ""};
    case Op::kAbs:
      if (a.lo >= 0) return {a, ""};
      if (a.hi <= 0) return {{-a.hi, -a.lo}, ""};
      return {{0.0, std::max(-a.lo, a.hi)}, ""};
    case Op::kFloor:
      return {{std::floor(a.lo), std::floor(a.hi)}, ""};
    case Op::kCeil:
      return {{std::ceil(a.lo), std::ceil(a.hi)}, ""};
    case Op::kExp: {
      Interval r = NotAcross(Widen({std::exp(a.lo), std::exp(a.hi)}, 2), 1.0, a.hi <= 0, a.lo >= 0);
      r.lo = std::max(r.lo, 0.0);
      if (!Finite(r)) {
        return Overflow(absl::StrCat("the argument's range ", a.ToString(), " goes above 709.78"));
      }
      return {r, ""};
    }
    case Op::kLog:
      if (!(a.lo > 0)) {
        return {{},
                absl::StrCat("may take the log of a value <= 0: the argument's range ",
                             a.ToString(), " is not > 0")};
      }
      return {NotAcross(Widen({std::log(a.lo), std::log(a.hi)}, 2), 0.0, a.hi <= 1, a.lo >= 1), ""};
    case Op::kSqrt:
      if (!(a.lo >= 0)) {
        return {{},
                absl::StrCat("may take the square root of a negative value: the argument's range ",
                             a.ToString(), " has negative values")};
      }
      return {{std::sqrt(a.lo), std::sqrt(a.hi)}, ""};
    case Op::kSin:
    case Op::kCos:
      return {{-1.0, 1.0}, ""};
    default:
      return {{}, "unsupported operation"};  // Unreachable.
  }
}

Abstract RangeBinary(Op op, Interval a, Interval b) {
  const auto overflow = [&](Interval r) -> Abstract {
    if (Finite(r)) return {r, ""};
    return Overflow(absl::StrCat("the operands' ranges are ", a.ToString(), " and ", b.ToString()));
  };
  switch (op) {
    case Op::kAdd:
      return overflow({a.lo + b.lo, a.hi + b.hi});
    case Op::kSub:
      return overflow({a.lo - b.hi, a.hi - b.lo});
    case Op::kMul:
      return overflow(Corners(a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi));
    case Op::kDiv:
      if (MayBeZero(b)) {
        return {
            {},
            absl::StrCat("may divide by zero: the divisor's range ", b.ToString(), " contains 0")};
      }
      return overflow(Corners(a.lo / b.lo, a.lo / b.hi, a.hi / b.lo, a.hi / b.hi));
    case Op::kPow:
      return RangePow(a, b);
    case Op::kLt:
      return {Decided(a.hi < b.lo, a.lo >= b.hi), ""};
    case Op::kLe:
      return {Decided(a.hi <= b.lo, a.lo > b.hi), ""};
    case Op::kGt:
      return {Decided(a.lo > b.hi, a.hi <= b.lo), ""};
    case Op::kGe:
      return {Decided(a.lo >= b.hi, a.hi < b.lo), ""};
    case Op::kEq:
    case Op::kNe: {
      const bool same = a.lo == a.hi && b.lo == b.hi && a.lo == b.lo;
      const bool disjoint = a.hi < b.lo || b.hi < a.lo;
      return {op == Op::kEq ? Decided(same, disjoint) : Decided(disjoint, same), ""};
    }
    case Op::kAnd:
      return {Decided(!MayBeZero(a) && !MayBeZero(b), SurelyZero(a) || SurelyZero(b)), ""};
    case Op::kOr:
      return {Decided(!MayBeZero(a) || !MayBeZero(b), SurelyZero(a) && SurelyZero(b)), ""};
    case Op::kMin:
      return {{std::min(a.lo, b.lo), std::min(a.hi, b.hi)}, ""};
    case Op::kMax:
      return {{std::max(a.lo, b.lo), std::max(a.hi, b.hi)}, ""};
    default:
      return {{}, "unsupported operation"};  // Unreachable.
  }
}

// The part of `d` where `x op c` holds (a superset of it: bounds are rounded outwards).
Interval Refine(const Domain& d, Op op, double c) {
  Interval r = d.range;
  const auto at_most = [&](double hi) { r.hi = std::min(r.hi, hi); };
  const auto at_least = [&](double lo) { r.lo = std::max(r.lo, lo); };
  switch (op) {
    case Op::kLt:
      at_most(d.integers ? std::ceil(c) - 1 : std::nextafter(c, -kInf));
      break;
    case Op::kLe:
      at_most(d.integers ? std::floor(c) : c);
      break;
    case Op::kGt:
      at_least(d.integers ? std::floor(c) + 1 : std::nextafter(c, kInf));
      break;
    case Op::kGe:
      at_least(d.integers ? std::ceil(c) : c);
      break;
    case Op::kEq:
      if (d.integers && std::floor(c) != c) return Interval::Empty();
      at_most(c);
      at_least(c);
      break;
    case Op::kNe:
      // Only an excluded end point narrows an interval.
      if (r.lo == c) at_least(d.integers ? c + 1 : std::nextafter(c, kInf));
      if (r.hi == c) at_most(d.integers ? c - 1 : std::nextafter(c, -kInf));
      break;
    default:
      break;
  }
  return r;
}

// The comparison that holds when `op` does not (the variable is finite: no NaN).
Op Negate(Op op) {
  switch (op) {
    case Op::kLt:
      return Op::kGe;
    case Op::kLe:
      return Op::kGt;
    case Op::kGt:
      return Op::kLe;
    case Op::kGe:
      return Op::kLt;
    case Op::kEq:
      return Op::kNe;
    default:
      return Op::kEq;
  }
}

// `c op x` == `x Mirror(op) c`.
Op Mirror(Op op) {
  switch (op) {
    case Op::kLt:
      return Op::kGt;
    case Op::kLe:
      return Op::kGe;
    case Op::kGt:
      return Op::kLt;
    case Op::kGe:
      return Op::kLe;
    default:
      return op;
  }
}

bool IsComparison(Op op) {
  return op == Op::kLt || op == Op::kLe || op == Op::kGt || op == Op::kGe || op == Op::kEq ||
         op == Op::kNe;
}
}  // namespace expression_internal
}  // namespace hpsched::core
