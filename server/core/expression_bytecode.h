// The bytecode of a compiled Expression and the scalar semantics of each of its operations.
//
// The scalar functions are the single definition of what an operation computes: the VM's lane
// loops (expression_vm.cc) and the constant folding of the code generator (expression_codegen.cc)
// and of the range analysis (expression_range.cc) all call them, so a folded value is bit for bit
// what evaluation would have produced. Implementation detail of Expression (namespace
// expression_internal); not for use outside server/core/.

#ifndef HPSCHED_CORE_EXPRESSION_BYTECODE_H_
#define HPSCHED_CORE_EXPRESSION_BYTECODE_H_

#include <cmath>
#include <cstdint>

namespace hpsched::core {

namespace expression_internal {

// Bytecode operations. Implementation detail of Expression.
enum class Op : uint8_t {
  kFill,  // dst = k
  // Unary: dst = f(a).
  kNeg,
  kNot,
  kAbs,
  kFloor,
  kCeil,
  kExp,
  kLog,
  kSqrt,
  kSin,
  kCos,
  // Binary: dst = f(a, b), with either operand possibly the immediate k.
  kAdd,
  kSub,
  kMul,
  kDiv,
  kPow,
  kLt,
  kLe,
  kGt,
  kGe,
  kEq,
  kNe,
  kAnd,
  kOr,
  kMin,
  kMax,
  // dst = a != 0 ? b : c.
  kSelect,
};

// Where the operands of a binary instruction come from.
enum class Mode : uint8_t {
  kSlotSlot,      // f(a, b)
  kSlotConstant,  // f(a, k)
  kConstantSlot,  // f(k, b)
};

// Source index that denotes the input variable instead of a stack slot.
inline constexpr uint8_t kVariableSource = 0xFF;

// One instruction of the compiled program. Sources are stack slots
// (< Expression::kMaxStack, see expression.h) or kVariableSource; dst is always a slot that is
// distinct from every source of the same instruction.
struct Instruction {
  Op op = Op::kFill;
  Mode mode = Mode::kSlotSlot;
  uint8_t dst = 0;
  uint8_t a = kVariableSource;
  uint8_t b = kVariableSource;
  uint8_t c = kVariableSource;
  double k = 0.0;
};

// Where the final value lives after the program has run.
struct Result {
  enum class Kind : uint8_t { kConstant, kVariable, kSlot };
  Kind kind = Kind::kConstant;
  uint8_t slot = 0;
  double constant = 0.0;
};

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

inline double FoldUnary(Op op, double a) {
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

inline double FoldBinary(Op op, double a, double b) {
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

}  // namespace expression_internal
}  // namespace hpsched::core

#endif  // HPSCHED_CORE_EXPRESSION_BYTECODE_H_
