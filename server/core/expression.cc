#include "core/expression.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace hpsched::core {
namespace {

using expression_internal::Instruction;
using expression_internal::kVariableSource;
using expression_internal::Mode;
using expression_internal::Op;
using expression_internal::Result;

constexpr size_t kLanes = Expression::kLanes;

// ---------------------------------------------------------------------------
// Scalar semantics. These exact functions are used both by the evaluator's
// lane loops and by compile-time folding of constant sub-expressions, so a
// folded value is bit-for-bit what evaluation would have produced.
// ---------------------------------------------------------------------------

inline double Truth(bool v) { return v ? 1.0 : 0.0; }

inline double NegF(double a) { return -a; }
inline double NotF(double a) { return Truth(a == 0.0); }
inline double AbsF(double a) { return std::fabs(a); }
inline double FloorF(double a) { return std::floor(a); }
inline double CeilF(double a) { return std::ceil(a); }
inline double ExpF(double a) { return std::exp(a); }
inline double LogF(double a) { return std::log(a); }
inline double SqrtF(double a) { return std::sqrt(a); }
inline double SinF(double a) { return std::sin(a); }
inline double CosF(double a) { return std::cos(a); }

inline double AddF(double a, double b) { return a + b; }
inline double SubF(double a, double b) { return a - b; }
inline double MulF(double a, double b) { return a * b; }
inline double DivF(double a, double b) { return a / b; }
inline double PowF(double a, double b) { return std::pow(a, b); }
inline double LtF(double a, double b) { return Truth(a < b); }
inline double LeF(double a, double b) { return Truth(a <= b); }
inline double GtF(double a, double b) { return Truth(a > b); }
inline double GeF(double a, double b) { return Truth(a >= b); }
inline double EqF(double a, double b) { return Truth(a == b); }
inline double NeF(double a, double b) { return Truth(a != b); }
// Non-short-circuit on purpose (no side effects exist); `&`/`|` on bools keep
// the lane loops branch-free.
inline double AndF(double a, double b) { return Truth((a != 0.0) & (b != 0.0)); }
inline double OrF(double a, double b) { return Truth((a != 0.0) | (b != 0.0)); }
// Python's min()/max() keep the first of equal candidates and only replace the
// running value when the new one is strictly smaller (larger).
inline double MinF(double a, double b) { return b < a ? b : a; }
inline double MaxF(double a, double b) { return b > a ? b : a; }
inline double SelectF(double c, double a, double b) { return c != 0.0 ? a : b; }

double FoldUnary(Op op, double a) {
  switch (op) {
    case Op::kNeg:
      return NegF(a);
    case Op::kNot:
      return NotF(a);
    case Op::kAbs:
      return AbsF(a);
    case Op::kFloor:
      return FloorF(a);
    case Op::kCeil:
      return CeilF(a);
    case Op::kExp:
      return ExpF(a);
    case Op::kLog:
      return LogF(a);
    case Op::kSqrt:
      return SqrtF(a);
    case Op::kSin:
      return SinF(a);
    case Op::kCos:
      return CosF(a);
    default:
      return a;  // Unreachable: only unary ops are folded here.
  }
}

double FoldBinary(Op op, double a, double b) {
  switch (op) {
    case Op::kAdd:
      return AddF(a, b);
    case Op::kSub:
      return SubF(a, b);
    case Op::kMul:
      return MulF(a, b);
    case Op::kDiv:
      return DivF(a, b);
    case Op::kPow:
      return PowF(a, b);
    case Op::kLt:
      return LtF(a, b);
    case Op::kLe:
      return LeF(a, b);
    case Op::kGt:
      return GtF(a, b);
    case Op::kGe:
      return GeF(a, b);
    case Op::kEq:
      return EqF(a, b);
    case Op::kNe:
      return NeF(a, b);
    case Op::kAnd:
      return AndF(a, b);
    case Op::kOr:
      return OrF(a, b);
    case Op::kMin:
      return MinF(a, b);
    case Op::kMax:
      return MaxF(a, b);
    default:
      return a;  // Unreachable: only binary ops are folded here.
  }
}

// ---------------------------------------------------------------------------
// Range analysis (Expression::Range). Interval arithmetic over the exact
// double operations the evaluator performs. For + - * / and sqrt, which are
// correctly rounded, rounding is monotone, so the rounded images of an
// interval's corners bound the rounded images of its inside: the corners'
// values (computed with the same operations) are exact bounds. exp, log and pow
// are only faithful (glibc: < 1 ulp), so their bounds are widened by 2 ulps.
// Every interval handled here is finite: an operation whose result may not be
// is reported instead.
// ---------------------------------------------------------------------------

constexpr double kInf = std::numeric_limits<double>::infinity();

Interval Hull(Interval a, Interval b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return {std::min(a.lo, b.lo), std::max(a.hi, b.hi)};
}

Interval Intersect(Interval a, Interval b) { return {std::max(a.lo, b.lo), std::min(a.hi, b.hi)}; }

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

bool Finite(Interval a) { return std::isfinite(a.lo) && std::isfinite(a.hi); }

// The smallest interval holding the four values.
Interval Corners(double a, double b, double c, double d) {
  return {std::min({a, b, c, d}), std::max({a, b, c, d})};
}

bool MayBeZero(Interval a) { return a.contains(0.0); }
bool SurelyZero(Interval a) { return a.lo == 0.0 && a.hi == 0.0; }

// The value of a predicate when it is decided over the whole operand ranges, else [0, 1].
Interval Decided(bool surely_true, bool surely_false) {
  if (surely_true) return Interval::Point(1.0);
  if (surely_false) return Interval::Point(0.0);
  return {0.0, 1.0};
}

// Either the interval of an operation's results or why it may not be finite.
struct Abstract {
  Interval range;
  std::string error;  // Empty when range is valid.
};

Abstract Overflow(std::string what) { return {{}, absl::StrCat("may overflow: ", what)}; }

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

// ---------------------------------------------------------------------------
// Evaluator. Each instruction is applied across a whole chunk of lanes, so the
// dispatch cost is amortized and the simple loops vectorize. `Count` is either
// std::integral_constant<size_t, kLanes> (full chunks: constant trip count) or
// size_t (the tail, and scalar evaluation); both run the same per-lane code.
// ---------------------------------------------------------------------------

template <double (*F)(double), typename Count>
inline void UnaryLoop(double* __restrict d, const double* __restrict a, Count n) {
  for (size_t i = 0; i < n; ++i) d[i] = F(a[i]);
}

template <double (*F)(double, double), typename Count>
inline void BinaryLoop(Mode mode, double k, double* __restrict d, const double* __restrict a,
                       const double* __restrict b, Count n) {
  switch (mode) {
    case Mode::kSlotSlot:
      for (size_t i = 0; i < n; ++i) d[i] = F(a[i], b[i]);
      break;
    case Mode::kSlotConstant:
      for (size_t i = 0; i < n; ++i) d[i] = F(a[i], k);
      break;
    case Mode::kConstantSlot:
      for (size_t i = 0; i < n; ++i) d[i] = F(k, b[i]);
      break;
  }
}

template <typename Count>
inline void SelectLoop(double* __restrict d, const double* __restrict c, const double* __restrict a,
                       const double* __restrict b, Count n) {
  for (size_t i = 0; i < n; ++i) d[i] = SelectF(c[i], a[i], b[i]);
}

template <size_t kRows, size_t kWidth, typename Count>
void RunChunk(std::span<const Instruction> code, double (&s)[kRows][kWidth], const double* xc,
              Count n) {
  const auto src = [&](uint8_t r) -> const double* { return r == kVariableSource ? xc : s[r]; };
  for (const Instruction& in : code) {
    double* d = s[in.dst];
    switch (in.op) {
      case Op::kFill:
        for (size_t i = 0; i < n; ++i) d[i] = in.k;
        break;
      case Op::kNeg:
        UnaryLoop<NegF>(d, src(in.a), n);
        break;
      case Op::kNot:
        UnaryLoop<NotF>(d, src(in.a), n);
        break;
      case Op::kAbs:
        UnaryLoop<AbsF>(d, src(in.a), n);
        break;
      case Op::kFloor:
        UnaryLoop<FloorF>(d, src(in.a), n);
        break;
      case Op::kCeil:
        UnaryLoop<CeilF>(d, src(in.a), n);
        break;
      case Op::kExp:
        UnaryLoop<ExpF>(d, src(in.a), n);
        break;
      case Op::kLog:
        UnaryLoop<LogF>(d, src(in.a), n);
        break;
      case Op::kSqrt:
        UnaryLoop<SqrtF>(d, src(in.a), n);
        break;
      case Op::kSin:
        UnaryLoop<SinF>(d, src(in.a), n);
        break;
      case Op::kCos:
        UnaryLoop<CosF>(d, src(in.a), n);
        break;
      case Op::kAdd:
        BinaryLoop<AddF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kSub:
        BinaryLoop<SubF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kMul:
        BinaryLoop<MulF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kDiv:
        BinaryLoop<DivF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kPow:
        BinaryLoop<PowF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kLt:
        BinaryLoop<LtF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kLe:
        BinaryLoop<LeF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kGt:
        BinaryLoop<GtF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kGe:
        BinaryLoop<GeF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kEq:
        BinaryLoop<EqF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kNe:
        BinaryLoop<NeF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kAnd:
        BinaryLoop<AndF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kOr:
        BinaryLoop<OrF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kMin:
        BinaryLoop<MinF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kMax:
        BinaryLoop<MaxF>(in.mode, in.k, d, src(in.a), src(in.b), n);
        break;
      case Op::kSelect:
        SelectLoop(d, src(in.a), src(in.b), src(in.c), n);
        break;
    }
  }
}

template <size_t kRows, size_t kWidth, typename Count>
inline void WriteResult(const Result& result, const double (&s)[kRows][kWidth], const double* xc,
                        double* out, Count n) {
  switch (result.kind) {
    case Result::Kind::kConstant:
      for (size_t i = 0; i < n; ++i) out[i] = result.constant;
      break;
    case Result::Kind::kVariable:
      // `out` may alias `xc` exactly (in-place evaluation); element-wise copy
      // is fine then.
      for (size_t i = 0; i < n; ++i) out[i] = xc[i];
      break;
    case Result::Kind::kSlot: {
      // The sign and payload of a NaN produced by arithmetic depend on operand
      // order, which the compiler may choose differently for vectorized and
      // scalar loops. They can never influence a non-NaN result, so returning
      // one canonical NaN makes span and scalar evaluation agree bit for bit.
      constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
      const double* v = s[result.slot];
      for (size_t i = 0; i < n; ++i) out[i] = v[i] == v[i] ? v[i] : kNaN;
      break;
    }
  }
}

template <size_t kRows>
void Run(std::span<const Instruction> code, const Result& result, const double* x, double* out,
         size_t n) {
  // Uninitialized on purpose: every slot lane is written before it is read.
  alignas(64) double s[kRows][kLanes];
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    constexpr std::integral_constant<size_t, kLanes> full{};
    RunChunk(code, s, x + i, full);
    WriteResult(result, s, x + i, out + i, full);
  }
  if (i < n) {
    RunChunk(code, s, x + i, n - i);
    WriteResult(result, s, x + i, out + i, n - i);
  }
}

// Scalar evaluation: the same per-lane code with a single lane (a trip count
// of exactly one, so the loops collapse to straight-line code) and a stack
// of one double per slot.
double RunOne(std::span<const Instruction> code, const Result& result, double x) {
  double s[Expression::kMaxStack][1];
  constexpr std::integral_constant<size_t, 1> one{};
  RunChunk(code, s, &x, one);
  double out = 0.0;
  WriteResult(result, s, &x, &out, one);
  return out;
}

void RunAny(std::span<const Instruction> code, const Result& result, int slots, const double* x,
            double* out, size_t n) {
  // Use the smallest stack that fits, to keep the frame small for the common
  // simple expressions (64 slots x 64 lanes x 8 bytes = 32 KiB at most).
  if (slots <= 4) {
    Run<4>(code, result, x, out, n);
  } else if (slots <= 16) {
    Run<16>(code, result, x, out, n);
  } else {
    Run<Expression::kMaxStack>(code, result, x, out, n);
  }
}

// ---------------------------------------------------------------------------
// Compiler: lexer + recursive-descent parser that emits register-style
// bytecode directly. Every operand is tracked as a Value (a constant, the
// variable, or a stack slot); operations on constants are folded with the
// evaluator's own scalar functions; a fresh slot is allocated for each result
// before its operands' slots are released, so an instruction never writes a
// slot it reads.
// ---------------------------------------------------------------------------

enum class Tok : uint8_t {
  kEnd,
  kNumber,
  kIdent,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPow,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kAndAnd,
  kOrOr,
  kBang,
  kQuestion,
  kColon,
  kLParen,
  kRParen,
  kComma,
};

struct Token {
  Tok kind = Tok::kEnd;
  size_t pos = 0;
  size_t len = 0;
  double number = 0.0;
};

struct Value {
  enum class Kind : uint8_t { kConstant, kVariable, kSlot };
  Kind kind = Kind::kConstant;
  uint8_t slot = 0;
  double k = 0.0;
  // Range analysis only (Expression::Range): the value's range over the variable's current
  // domain, and, when `split`, the parts of that domain where the value is nonzero (when_true) and
  // zero (when_false), known for comparisons of the variable with a constant and their &&, ||, !.
  Interval range;
  bool split = false;
  Interval when_true;
  Interval when_false;

  static Value Constant(double v) { return Make(Kind::kConstant, 0, v); }
  static Value Variable() { return Make(Kind::kVariable, 0, 0.0); }
  static Value Slot(uint8_t s) { return Make(Kind::kSlot, s, 0.0); }
  static Value Make(Kind kind, uint8_t slot, double k) {
    Value v;
    v.kind = kind;
    v.slot = slot;
    v.k = k;
    return v;
  }
  bool is_constant() const { return kind == Kind::kConstant; }
};

struct Function {
  std::string_view name;
  Op op;
  int min_args;
  int max_args;  // -1: unbounded
};

constexpr Function kFunctions[] = {
    {"min", Op::kMin, 2, -1}, {"max", Op::kMax, 2, -1},    {"pow", Op::kPow, 2, 2},
    {"abs", Op::kAbs, 1, 1},  {"floor", Op::kFloor, 1, 1}, {"ceil", Op::kCeil, 1, 1},
    {"exp", Op::kExp, 1, 1},  {"log", Op::kLog, 1, 1},     {"sqrt", Op::kSqrt, 1, 1},
    {"sin", Op::kSin, 1, 1},  {"cos", Op::kCos, 1, 1},
};

const Function* FindFunction(std::string_view name) {
  for (const Function& f : kFunctions) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool IsConstantName(std::string_view name) { return name == "pi" || name == "e"; }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// absl may be built with its own string_view type (e.g. Debian's package);
// convert explicitly so the code builds either way.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Quotes a (pure ASCII, lexer-produced) lexeme for an error message,
// shortening very long ones.
std::string Quote(std::string_view s) {
  constexpr size_t kMaxShown = 40;
  if (s.size() > kMaxShown) return absl::StrCat("'", Sv(s.substr(0, kMaxShown)), "...'");
  return absl::StrCat("'", Sv(s), "'");
}

std::string Column(size_t pos) { return absl::StrCat("column ", pos + 1); }

class Compiler {
 public:
  Compiler(std::string_view text, std::string_view variable) : text_(text), variable_(variable) {}
  // A compiler that also runs the range analysis over `domain` (Expression::Range).
  Compiler(std::string_view text, std::string_view variable, const Domain& domain)
      : text_(text), variable_(variable), analyzing_(true), domain_(domain) {}

  absl::Status Compile() {
    if (!Advance()) return status_;
    if (tok_.kind == Tok::kEnd) return absl::InvalidArgumentError("empty expression");
    Value v;
    if (!ParseConditional(&v)) return status_;
    if (tok_.kind != Tok::kEnd) {
      Unexpected();
      return status_;
    }
    range_ = v.range;
    switch (v.kind) {
      case Value::Kind::kConstant:
        result_.kind = Result::Kind::kConstant;
        result_.constant = std::isnan(v.k) ? std::numeric_limits<double>::quiet_NaN() : v.k;
        break;
      case Value::Kind::kVariable:
        result_.kind = Result::Kind::kVariable;
        break;
      case Value::Kind::kSlot:
        result_.kind = Result::Kind::kSlot;
        result_.slot = v.slot;
        break;
    }
    return absl::OkStatus();
  }

  std::vector<Instruction>& code() { return code_; }
  const Result& result() const { return result_; }
  int slots() const { return max_slots_; }
  // The result's range (when analyzing).
  Interval range() const { return range_; }

 private:
  // ----- range analysis ---------------------------------------------------

  // Whether the code being parsed is reached by no value of the variable (a conditional's arm
  // that is never selected): nothing there is analyzed.
  bool Dead() const { return analyzing_ && domain_.range.empty(); }

  Value Constant(double v) const {
    Value c = Value::Constant(v);
    c.range = Dead() ? Interval::Empty() : Interval::Point(v);
    return c;
  }

  Value Variable() const {
    Value x = Value::Variable();
    x.range = domain_.range;
    return x;
  }

  // The parts of the current domain where `v` is nonzero and zero.
  void Split(const Value& v, Interval* when_true, Interval* when_false) const {
    if (v.split) {
      *when_true = v.when_true;
      *when_false = v.when_false;
      return;
    }
    const bool dead = Dead() || v.range.empty();
    *when_true = dead || SurelyZero(v.range) ? Interval::Empty() : domain_.range;
    *when_false = dead || !MayBeZero(v.range) ? Interval::Empty() : domain_.range;
  }

  bool AnalysisFailed(const Token& at, const std::string& why) {
    return Fail(
        absl::StrCat(Quote(text_.substr(at.pos, at.len)), " at ", Column(at.pos), " ", why));
  }

  // Sets out's range (and split) from operand `a`.
  bool AnalyzeUnary(Op op, const Value& a, const Token& at, Value* out) {
    if (Dead() || a.range.empty()) {
      out->range = Interval::Empty();
      return true;
    }
    const Abstract r = RangeUnary(op, a.range);
    if (!r.error.empty()) return AnalysisFailed(at, r.error);
    out->range = r.range;
    if (op == Op::kNot && a.split) {
      out->split = true;
      out->when_true = a.when_false;
      out->when_false = a.when_true;
    }
    return true;
  }

  bool AnalyzeBinary(Op op, const Value& a, const Value& b, const Token& at, Value* out) {
    if (Dead() || a.range.empty() || b.range.empty()) {
      out->range = Interval::Empty();
      return true;
    }
    const Abstract r = RangeBinary(op, a.range, b.range);
    if (!r.error.empty()) return AnalysisFailed(at, r.error);
    out->range = r.range;
    const bool var_const = a.kind == Value::Kind::kVariable && b.is_constant();
    const bool const_var = a.is_constant() && b.kind == Value::Kind::kVariable;
    if (IsComparison(op) && (var_const || const_var)) {
      const Op cmp = var_const ? op : Mirror(op);
      const double c = var_const ? b.k : a.k;
      out->split = true;
      out->when_true = Refine(domain_, cmp, c);
      out->when_false = Refine(domain_, Negate(cmp), c);
    } else if (op == Op::kAnd || op == Op::kOr) {
      Interval at1, af1, at2, af2;
      Split(a, &at1, &af1);
      Split(b, &at2, &af2);
      out->split = true;
      out->when_true = op == Op::kAnd ? Intersect(at1, at2) : Hull(at1, at2);
      out->when_false = op == Op::kAnd ? Hull(af1, af2) : Intersect(af1, af2);
    }
    if (out->split) {
      if (out->when_true.empty()) out->range = Interval::Point(0.0);
      if (out->when_false.empty()) out->range = Interval::Point(1.0);
    }
    return true;
  }

  // ----- errors -----------------------------------------------------------

  bool Fail(std::string message) {
    if (status_.ok()) status_ = absl::InvalidArgumentError(std::move(message));
    return false;
  }

  std::string Describe(const Token& t) const {
    const std::string_view lexeme = text_.substr(t.pos, t.len);
    switch (t.kind) {
      case Tok::kEnd:
        return "end of expression";
      case Tok::kNumber:
        return absl::StrCat("number ", Quote(lexeme));
      case Tok::kIdent:
        return absl::StrCat("name ", Quote(lexeme));
      default:
        return Quote(lexeme);
    }
  }

  bool Unexpected() {
    return Fail(absl::StrCat("unexpected ", Describe(tok_), " at ", Column(tok_.pos)));
  }

  // ----- nesting ----------------------------------------------------------

  bool Enter(size_t pos) {
    if (++depth_ > Expression::kMaxNesting) {
      return Fail(
          absl::StrCat("nesting deeper than ", Expression::kMaxNesting, " at ", Column(pos)));
    }
    return true;
  }
  void Leave() { --depth_; }

  // ----- lexer ------------------------------------------------------------

  // Reads the next token into tok_. Returns false (status_ set) on a lexical
  // error.
  bool Advance() {
    const size_t n = text_.size();
    size_t p = pos_;
    while (p < n && IsSpace(text_[p])) ++p;
    tok_ = Token{Tok::kEnd, p, 0, 0.0};
    if (p >= n) {
      pos_ = p;
      return true;
    }
    const char c = text_[p];
    const char next = p + 1 < n ? text_[p + 1] : '\0';
    auto punct = [&](Tok kind, size_t len) {
      tok_.kind = kind;
      tok_.len = len;
      pos_ = p + len;
      return true;
    };
    if (IsDigit(c) || (c == '.' && IsDigit(next))) return LexNumber(p);
    if (IsIdentStart(c)) {
      size_t q = p + 1;
      while (q < n && IsIdentChar(text_[q])) ++q;
      return punct(Tok::kIdent, q - p);
    }
    switch (c) {
      case '+':
        return punct(Tok::kPlus, 1);
      case '-':
        return punct(Tok::kMinus, 1);
      case '*':
        return next == '*' ? punct(Tok::kPow, 2) : punct(Tok::kStar, 1);
      case '^':
        return punct(Tok::kPow, 1);
      case '/':
        return punct(Tok::kSlash, 1);
      case '<':
        return next == '=' ? punct(Tok::kLe, 2) : punct(Tok::kLt, 1);
      case '>':
        return next == '=' ? punct(Tok::kGe, 2) : punct(Tok::kGt, 1);
      case '!':
        return next == '=' ? punct(Tok::kNe, 2) : punct(Tok::kBang, 1);
      case '=':
        if (next == '=') return punct(Tok::kEq, 2);
        return Fail(
            absl::StrCat("unexpected character '=' at ", Column(p), " (did you mean '=='?)"));
      case '&':
        if (next == '&') return punct(Tok::kAndAnd, 2);
        return Fail(
            absl::StrCat("unexpected character '&' at ", Column(p), " (did you mean '&&'?)"));
      case '|':
        if (next == '|') return punct(Tok::kOrOr, 2);
        return Fail(
            absl::StrCat("unexpected character '|' at ", Column(p), " (did you mean '||'?)"));
      case '?':
        return punct(Tok::kQuestion, 1);
      case ':':
        return punct(Tok::kColon, 1);
      case '(':
        return punct(Tok::kLParen, 1);
      case ')':
        return punct(Tok::kRParen, 1);
      case ',':
        return punct(Tok::kComma, 1);
      default:
        break;
    }
    const auto byte = static_cast<unsigned char>(c);
    if (byte > 0x20 && byte < 0x7F) {
      return Fail(
          absl::StrCat("unexpected character '", absl::string_view(&c, 1), "' at ", Column(p)));
    }
    return Fail(absl::StrFormat("unexpected byte 0x%02X at %s (only printable ASCII is allowed)",
                                byte, Column(p)));
  }

  // Lexes a number literal starting at p: digits [. digits] [(e|E) [+-]
  // digits], with at least one mantissa digit. Rejects literals that run into
  // letters, digits, '_' or '.', and literals that are not finite doubles.
  bool LexNumber(size_t p) {
    const size_t n = text_.size();
    const size_t start = p;
    bool malformed = false;
    while (p < n && IsDigit(text_[p])) ++p;
    const size_t int_end = p;
    size_t frac_begin = p, frac_end = p;
    if (p < n && text_[p] == '.') {
      ++p;
      frac_begin = p;
      while (p < n && IsDigit(text_[p])) ++p;
      frac_end = p;
    }
    const size_t mantissa_end = p;
    if (p < n && (text_[p] == 'e' || text_[p] == 'E')) {
      size_t q = p + 1;
      if (q < n && (text_[q] == '+' || text_[q] == '-')) ++q;
      if (q < n && IsDigit(text_[q])) {
        p = q;
        while (p < n && IsDigit(text_[p])) ++p;
      } else {
        malformed = true;
        p = p + 1;
      }
    }
    if (p < n && (IsIdentChar(text_[p]) || text_[p] == '.')) malformed = true;
    if (malformed) {
      while (p < n && (IsIdentChar(text_[p]) || text_[p] == '.')) ++p;
      return Fail(absl::StrCat("malformed number ", Quote(text_.substr(start, p - start)), " at ",
                               Column(start)));
    }
    const std::string_view lexeme = text_.substr(start, p - start);
    double value = 0.0;
    const auto [ptr, ec] = std::from_chars(lexeme.data(), lexeme.data() + lexeme.size(), value);
    if (ec == std::errc::result_out_of_range) {
      // Either overflow (an error) or underflow to zero (Python also gives
      // 0.0). Decide by the decimal order of magnitude of the literal.
      long long order = 0;
      bool found = false;
      for (size_t i = start; i < int_end && !found; ++i) {
        if (text_[i] != '0') {
          order = static_cast<long long>(int_end - i);
          found = true;
        }
      }
      for (size_t i = frac_begin; i < frac_end && !found; ++i) {
        if (text_[i] != '0') {
          order = -static_cast<long long>(i - frac_begin);
          found = true;
        }
      }
      long long exponent = 0;
      if (mantissa_end < p) {
        size_t q = mantissa_end + 1;
        bool negative = false;
        if (text_[q] == '+' || text_[q] == '-') negative = text_[q++] == '-';
        for (; q < p; ++q) {
          exponent = std::min<long long>(exponent * 10 + (text_[q] - '0'), 1000000000LL);
        }
        if (negative) exponent = -exponent;
      }
      if (found && order + exponent > 0) {
        return Fail(absl::StrCat("number ", Quote(lexeme), " at ", Column(start),
                                 " is out of range (not a finite double)"));
      }
      value = 0.0;
    } else if (ec != std::errc() || ptr != lexeme.data() + lexeme.size() || !std::isfinite(value)) {
      return Fail(absl::StrCat("malformed number ", Quote(lexeme), " at ", Column(start)));
    }
    tok_ = Token{Tok::kNumber, start, p - start, value};
    pos_ = p;
    return true;
  }

  // ----- code generation --------------------------------------------------

  bool AllocSlot(uint8_t* slot) {
    for (int i = 0; i < Expression::kMaxStack; ++i) {
      if ((used_ & (uint64_t{1} << i)) == 0) {
        used_ |= uint64_t{1} << i;
        max_slots_ = std::max(max_slots_, i + 1);
        *slot = static_cast<uint8_t>(i);
        return true;
      }
    }
    return Fail(absl::StrCat("expression is too complex: needs more than ", Expression::kMaxStack,
                             " evaluation stack slots (at ", Column(tok_.pos), ")"));
  }

  void Release(const Value& v) {
    if (v.kind == Value::Kind::kSlot) used_ &= ~(uint64_t{1} << v.slot);
  }

  static uint8_t Source(const Value& v) {
    return v.kind == Value::Kind::kSlot ? v.slot : kVariableSource;
  }

  bool Emit(Instruction in, Value* out) {
    // Defensive: cannot trigger with kMaxLength-bounded input, but keeps the
    // instruction count bounded whatever the limits are set to.
    if (code_.size() >= 4 * Expression::kMaxLength) {
      return Fail("expression is too complex: too many instructions");
    }
    code_.push_back(in);
    *out = Value::Slot(in.dst);
    return true;
  }

  // `at` is the operator's or function's token (for the range analysis' errors).
  bool EmitUnary(Op op, Value a, const Token& at, Value* out) {
    if (!EmitUnaryCode(op, a, out)) return false;
    return !analyzing_ || AnalyzeUnary(op, a, at, out);
  }

  bool EmitBinary(Op op, Value a, Value b, const Token& at, Value* out) {
    if (!EmitBinaryCode(op, a, b, out)) return false;
    return !analyzing_ || AnalyzeBinary(op, a, b, at, out);
  }

  bool EmitUnaryCode(Op op, Value a, Value* out) {
    if (a.is_constant()) {
      *out = Value::Constant(FoldUnary(op, a.k));
      return true;
    }
    Instruction in;
    in.op = op;
    in.a = Source(a);
    if (!AllocSlot(&in.dst)) return false;
    Release(a);
    return Emit(in, out);
  }

  bool EmitBinaryCode(Op op, Value a, Value b, Value* out) {
    if (a.is_constant() && b.is_constant()) {
      *out = Value::Constant(FoldBinary(op, a.k, b.k));
      return true;
    }
    Instruction in;
    in.op = op;
    if (a.is_constant()) {
      in.mode = Mode::kConstantSlot;
      in.k = a.k;
      in.b = Source(b);
    } else if (b.is_constant()) {
      in.mode = Mode::kSlotConstant;
      in.k = b.k;
      in.a = Source(a);
    } else {
      in.mode = Mode::kSlotSlot;
      in.a = Source(a);
      in.b = Source(b);
    }
    if (!AllocSlot(&in.dst)) return false;
    Release(a);
    Release(b);
    return Emit(in, out);
  }

  // Puts a constant into a slot (for instructions without immediates).
  bool Materialize(Value* v) {
    if (!v->is_constant()) return true;
    Instruction in;
    in.op = Op::kFill;
    in.k = v->k;
    if (!AllocSlot(&in.dst)) return false;
    return Emit(in, v);
  }

  bool EmitSelect(Value c, Value a, Value b, Value* out) {
    Interval when_true, when_false;
    Split(c, &when_true, &when_false);
    Interval range = Interval::Empty();
    if (!Dead()) {
      range = when_true.empty() ? b.range : when_false.empty() ? a.range : Hull(a.range, b.range);
    }
    if (!EmitSelectCode(c, a, b, out)) return false;
    out->range = range;
    out->split = false;
    return true;
  }

  bool EmitSelectCode(Value c, Value a, Value b, Value* out) {
    if (c.is_constant()) {
      // Selection is exact, so folding it is too.
      if (c.k != 0.0) {
        Release(b);
        *out = a;
      } else {
        Release(a);
        *out = b;
      }
      return true;
    }
    if (!Materialize(&a) || !Materialize(&b)) return false;
    Instruction in;
    in.op = Op::kSelect;
    in.a = Source(c);
    in.b = Source(a);
    in.c = Source(b);
    if (!AllocSlot(&in.dst)) return false;
    Release(c);
    Release(a);
    Release(b);
    return Emit(in, out);
  }

  // ----- parser -----------------------------------------------------------

  // conditional := or [ '?' conditional ':' conditional ]
  bool ParseConditional(Value* out) {
    Value c;
    if (!ParseOr(&c)) return false;
    if (tok_.kind != Tok::kQuestion) {
      *out = c;
      return true;
    }
    const size_t question = tok_.pos;
    if (!Advance() || !Enter(question)) return false;
    // Each arm is analyzed over the part of the domain where it is selected.
    const Interval outer = domain_.range;
    Interval when_true, when_false;
    Split(c, &when_true, &when_false);
    domain_.range = when_true;
    Value a, b;
    if (!ParseConditional(&a)) return false;
    if (tok_.kind != Tok::kColon) {
      if (tok_.kind == Tok::kEnd) {
        return Fail(absl::StrCat("missing ':' for '?' at ", Column(question)));
      }
      return Fail(absl::StrCat("unexpected ", Describe(tok_), " at ", Column(tok_.pos),
                               " (expected ':' for '?' at ", Column(question), ")"));
    }
    domain_.range = when_false;
    if (!Advance() || !ParseConditional(&b)) return false;
    domain_.range = outer;
    Leave();
    return EmitSelect(c, a, b, out);
  }

  // or := and { '||' and }
  bool ParseOr(Value* out) {
    Value left;
    if (!ParseAnd(&left)) return false;
    while (tok_.kind == Tok::kOrOr) {
      const Token op_tok = tok_;
      Value right;
      if (!Advance() || !ParseAnd(&right) || !EmitBinary(Op::kOr, left, right, op_tok, &left)) {
        return false;
      }
    }
    *out = left;
    return true;
  }

  // and := comparison { '&&' comparison }
  bool ParseAnd(Value* out) {
    Value left;
    if (!ParseComparison(&left)) return false;
    while (tok_.kind == Tok::kAndAnd) {
      const Token op_tok = tok_;
      Value right;
      if (!Advance() || !ParseComparison(&right) ||
          !EmitBinary(Op::kAnd, left, right, op_tok, &left)) {
        return false;
      }
    }
    *out = left;
    return true;
  }

  static bool ComparisonOp(Tok t, Op* op) {
    switch (t) {
      case Tok::kLt:
        *op = Op::kLt;
        return true;
      case Tok::kLe:
        *op = Op::kLe;
        return true;
      case Tok::kGt:
        *op = Op::kGt;
        return true;
      case Tok::kGe:
        *op = Op::kGe;
        return true;
      case Tok::kEq:
        *op = Op::kEq;
        return true;
      case Tok::kNe:
        *op = Op::kNe;
        return true;
      default:
        return false;
    }
  }

  // comparison := additive [ cmp additive ]   (no chaining)
  bool ParseComparison(Value* out) {
    Value left;
    if (!ParseAdditive(&left)) return false;
    Op op;
    if (ComparisonOp(tok_.kind, &op)) {
      const Token op_tok = tok_;
      Value right;
      if (!Advance() || !ParseAdditive(&right) || !EmitBinary(op, left, right, op_tok, &left)) {
        return false;
      }
      if (ComparisonOp(tok_.kind, &op)) {
        return Fail(absl::StrCat("comparisons cannot be chained (",
                                 Quote(text_.substr(tok_.pos, tok_.len)), " at ", Column(tok_.pos),
                                 "); combine them with &&, e.g. 'a < b && b < c'"));
      }
    }
    *out = left;
    return true;
  }

  // additive := multiplicative { ('+' | '-') multiplicative }
  bool ParseAdditive(Value* out) {
    Value left;
    if (!ParseMultiplicative(&left)) return false;
    while (tok_.kind == Tok::kPlus || tok_.kind == Tok::kMinus) {
      const Op op = tok_.kind == Tok::kPlus ? Op::kAdd : Op::kSub;
      const Token op_tok = tok_;
      Value right;
      if (!Advance() || !ParseMultiplicative(&right) ||
          !EmitBinary(op, left, right, op_tok, &left)) {
        return false;
      }
    }
    *out = left;
    return true;
  }

  // multiplicative := unary { ('*' | '/') unary }
  bool ParseMultiplicative(Value* out) {
    Value left;
    if (!ParseUnary(&left)) return false;
    while (tok_.kind == Tok::kStar || tok_.kind == Tok::kSlash) {
      const Op op = tok_.kind == Tok::kStar ? Op::kMul : Op::kDiv;
      const Token op_tok = tok_;
      Value right;
      if (!Advance() || !ParseUnary(&right) || !EmitBinary(op, left, right, op_tok, &left)) {
        return false;
      }
    }
    *out = left;
    return true;
  }

  // unary := ('-' | '+' | '!') unary | power
  bool ParseUnary(Value* out) {
    const Tok kind = tok_.kind;
    if (kind != Tok::kMinus && kind != Tok::kPlus && kind != Tok::kBang) return ParsePower(out);
    const Token op_tok = tok_;
    if (!Advance() || !Enter(op_tok.pos)) return false;
    Value v;
    if (!ParseUnary(&v)) return false;
    Leave();
    if (kind == Tok::kPlus) {  // Identity, like Python's float.__pos__.
      *out = v;
      return true;
    }
    return EmitUnary(kind == Tok::kMinus ? Op::kNeg : Op::kNot, v, op_tok, out);
  }

  // power := primary [ ('**' | '^') unary ]
  bool ParsePower(Value* out) {
    Value base;
    if (!ParsePrimary(&base)) return false;
    if (tok_.kind != Tok::kPow) {
      *out = base;
      return true;
    }
    const Token op_tok = tok_;
    if (!Advance() || !Enter(op_tok.pos)) return false;
    Value exponent;
    if (!ParseUnary(&exponent)) return false;
    Leave();
    return EmitBinary(Op::kPow, base, exponent, op_tok, out);
  }

  // primary := number | name | name '(' args ')' | '(' conditional ')'
  bool ParsePrimary(Value* out) {
    switch (tok_.kind) {
      case Tok::kNumber:
        *out = Constant(tok_.number);
        return Advance();
      case Tok::kIdent:
        return ParseName(out);
      case Tok::kLParen: {
        const size_t open = tok_.pos;
        if (!Advance() || !Enter(open) || !ParseConditional(out)) return false;
        if (tok_.kind != Tok::kRParen) {
          if (tok_.kind == Tok::kEnd) {
            return Fail(absl::StrCat("unclosed '(' at ", Column(open)));
          }
          return Unexpected();
        }
        Leave();
        return Advance();
      }
      default:
        return Unexpected();
    }
  }

  bool ParseName(Value* out) {
    const Token name_tok = tok_;
    const std::string_view name = text_.substr(name_tok.pos, name_tok.len);
    // Peek at the next character rather than lexing the next token, so that
    // errors about this name are reported before errors that follow it.
    size_t next = pos_;
    while (next < text_.size() && IsSpace(text_[next])) ++next;
    const bool call = next < text_.size() && text_[next] == '(';
    const Function* fn = FindFunction(name);
    if (call) {
      if (!Advance()) return false;  // Now at the '('.
      if (fn == nullptr) {
        if (name == variable_ || IsConstantName(name)) {
          return Fail(
              absl::StrCat(Quote(name), " at ", Column(name_tok.pos), " is not a function"));
        }
        return Fail(absl::StrCat("unknown function ", Quote(name), " at ", Column(name_tok.pos)));
      }
      return ParseCall(*fn, name_tok, out);
    }
    if (name == variable_) {
      *out = Variable();
      return Advance();
    }
    if (name == "pi") {
      *out = Constant(std::numbers::pi);
      return Advance();
    }
    if (name == "e") {
      *out = Constant(std::numbers::e);
      return Advance();
    }
    if (fn != nullptr) {
      return Fail(
          absl::StrCat("expected '(' after function ", Quote(name), " at ", Column(name_tok.pos)));
    }
    return Fail(absl::StrCat("unknown name ", Quote(name), " at ", Column(name_tok.pos),
                             " (known names: '", Sv(variable_), "', 'pi', 'e')"));
  }

  // Called with tok_ at the '(' following the function name.
  bool ParseCall(const Function& fn, const Token& name_tok, Value* out) {
    const size_t name_pos = name_tok.pos;
    const size_t open = tok_.pos;
    if (!Advance() || !Enter(open)) return false;
    int count = 0;
    Value args[2];  // Fixed-arity functions take at most 2 arguments.
    Value acc;      // Running min/max.
    const bool variadic = fn.max_args < 0;
    if (tok_.kind != Tok::kRParen) {
      while (true) {
        Value v;
        if (!ParseConditional(&v)) return false;
        ++count;
        if (variadic) {
          if (count == 1) {
            acc = v;
          } else if (!EmitBinary(fn.op, acc, v, name_tok, &acc)) {
            return false;
          }
        } else if (count <= 2) {
          args[count - 1] = v;
        } else {
          Release(v);
        }
        if (tok_.kind == Tok::kComma) {
          if (!Advance()) return false;
          continue;
        }
        if (tok_.kind == Tok::kRParen) break;
        if (tok_.kind == Tok::kEnd) return Fail(absl::StrCat("unclosed '(' at ", Column(open)));
        return Unexpected();
      }
    }
    Leave();
    if (!Advance()) return false;
    if (count < fn.min_args || (fn.max_args >= 0 && count > fn.max_args)) {
      std::string need;
      if (fn.max_args < 0) {
        need = absl::StrCat("at least ", fn.min_args);
      } else {
        need = absl::StrCat("exactly ", fn.min_args);
      }
      return Fail(absl::StrCat(Quote(fn.name), " needs ", need,
                               fn.min_args == 1 ? " argument" : " arguments", " at ",
                               Column(name_pos), ", got ", count));
    }
    if (variadic) {
      *out = acc;
      return true;
    }
    if (fn.max_args == 1) return EmitUnary(fn.op, args[0], name_tok, out);
    return EmitBinary(fn.op, args[0], args[1], name_tok, out);
  }

  std::string_view text_;
  std::string_view variable_;
  size_t pos_ = 0;
  Token tok_;
  int depth_ = 0;
  absl::Status status_;

  std::vector<Instruction> code_;
  Result result_;
  uint64_t used_ = 0;
  int max_slots_ = 0;

  const bool analyzing_ = false;
  Domain domain_;  // The variable's domain where the code being parsed is evaluated.
  Interval range_;
};

absl::Status CheckVariable(std::string_view variable) {
  bool valid = !variable.empty() && variable.size() <= 64 && IsIdentStart(variable[0]);
  for (char c : variable) valid = valid && IsIdentChar(c);
  if (!valid) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid variable name '", absl::CHexEscape(Sv(variable.substr(0, 64))),
                     "' (must match [A-Za-z_][A-Za-z0-9_]*, at most 64 characters)"));
  }
  if (FindFunction(variable) != nullptr || IsConstantName(variable)) {
    return absl::InvalidArgumentError(
        absl::StrCat("variable name '", Sv(variable), "' is reserved"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Expression> Expression::Compile(std::string_view text, std::string_view variable) {
  if (absl::Status s = CheckVariable(variable); !s.ok()) return s;
  if (text.size() > kMaxLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("longer than ", kMaxLength, " characters (got ", text.size(), ")"));
  }
  Compiler compiler(text, variable);
  if (absl::Status s = compiler.Compile(); !s.ok()) return s;
  Expression e;
  e.text_ = std::string(text);
  e.variable_ = std::string(variable);
  e.code_ = std::move(compiler.code());
  e.code_.shrink_to_fit();
  e.result_ = compiler.result();
  e.slots_ = compiler.slots();
  return e;
}

Interval Interval::Empty() { return {kInf, -kInf}; }

double Interval::max_abs() const { return empty() ? 0.0 : std::max(std::fabs(lo), std::fabs(hi)); }

std::string Interval::ToString() const {
  if (empty()) return "[]";
  return absl::StrFormat("[%.6g, %.6g]", lo, hi);
}

Domain StepDomain() { return {{0.0, static_cast<double>((int64_t{1} << 53) - 1)}, true}; }

absl::StatusOr<Interval> Expression::Range(const Domain& domain) const {
  if (domain.range.empty()) return Interval::Empty();
  if (!Finite(domain.range)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the variable's range ", domain.range.ToString(), " is not finite"));
  }
  Compiler compiler(text_, variable_, domain);
  if (absl::Status s = compiler.Compile(); !s.ok()) return s;
  return compiler.range();
}

void Expression::Evaluate(std::span<const double> x, std::span<double> out) const {
  const size_t n = std::min(x.size(), out.size());
  if (n == 0) return;
  RunAny(code_, result_, slots_, x.data(), out.data(), n);
}

double Expression::Evaluate(double x) const { return RunOne(code_, result_, x); }

}  // namespace hpsched::core
