#include "core/expression_vm.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>

#include "core/expression.h"

namespace hpsched::core::expression_internal {
namespace {

constexpr size_t kLanes = Expression::kLanes;

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

// One flat switch over every operation, on purpose: splitting it into unary and binary helpers
// (which would bring it under the ~60-line guideline) measured ~6% slower on a typical lambda.
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

}  // namespace

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

}  // namespace hpsched::core::expression_internal

namespace hpsched::core {

// Defined here, beside the VM, so that the calls into it can be inlined.
void Expression::Evaluate(std::span<const double> x, std::span<double> out) const {
  const size_t n = std::min(x.size(), out.size());
  if (n == 0) return;
  expression_internal::RunAny(code_, result_, slots_, x.data(), out.data(), n);
}

double Expression::Evaluate(double x) const {
  return expression_internal::RunOne(code_, result_, x);
}

}  // namespace hpsched::core
