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

  static Value Constant(double v) { return {Kind::kConstant, 0, v}; }
  static Value Variable() { return {Kind::kVariable, 0, 0.0}; }
  static Value Slot(uint8_t s) { return {Kind::kSlot, s, 0.0}; }
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

  absl::Status Compile() {
    if (!Advance()) return status_;
    if (tok_.kind == Tok::kEnd) return absl::InvalidArgumentError("empty expression");
    Value v;
    if (!ParseConditional(&v)) return status_;
    if (tok_.kind != Tok::kEnd) {
      Unexpected();
      return status_;
    }
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

 private:
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

  bool EmitUnary(Op op, Value a, Value* out) {
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

  bool EmitBinary(Op op, Value a, Value b, Value* out) {
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
    Value a, b;
    if (!ParseConditional(&a)) return false;
    if (tok_.kind != Tok::kColon) {
      if (tok_.kind == Tok::kEnd) {
        return Fail(absl::StrCat("missing ':' for '?' at ", Column(question)));
      }
      return Fail(absl::StrCat("unexpected ", Describe(tok_), " at ", Column(tok_.pos),
                               " (expected ':' for '?' at ", Column(question), ")"));
    }
    if (!Advance() || !ParseConditional(&b)) return false;
    Leave();
    return EmitSelect(c, a, b, out);
  }

  // or := and { '||' and }
  bool ParseOr(Value* out) {
    Value left;
    if (!ParseAnd(&left)) return false;
    while (tok_.kind == Tok::kOrOr) {
      Value right;
      if (!Advance() || !ParseAnd(&right) || !EmitBinary(Op::kOr, left, right, &left)) {
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
      Value right;
      if (!Advance() || !ParseComparison(&right) || !EmitBinary(Op::kAnd, left, right, &left)) {
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
      Value right;
      if (!Advance() || !ParseAdditive(&right) || !EmitBinary(op, left, right, &left)) {
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
      Value right;
      if (!Advance() || !ParseMultiplicative(&right) || !EmitBinary(op, left, right, &left)) {
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
      Value right;
      if (!Advance() || !ParseUnary(&right) || !EmitBinary(op, left, right, &left)) {
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
    const size_t pos = tok_.pos;
    if (!Advance() || !Enter(pos)) return false;
    Value v;
    if (!ParseUnary(&v)) return false;
    Leave();
    if (kind == Tok::kPlus) {  // Identity, like Python's float.__pos__.
      *out = v;
      return true;
    }
    return EmitUnary(kind == Tok::kMinus ? Op::kNeg : Op::kNot, v, out);
  }

  // power := primary [ ('**' | '^') unary ]
  bool ParsePower(Value* out) {
    Value base;
    if (!ParsePrimary(&base)) return false;
    if (tok_.kind != Tok::kPow) {
      *out = base;
      return true;
    }
    const size_t pos = tok_.pos;
    if (!Advance() || !Enter(pos)) return false;
    Value exponent;
    if (!ParseUnary(&exponent)) return false;
    Leave();
    return EmitBinary(Op::kPow, base, exponent, out);
  }

  // primary := number | name | name '(' args ')' | '(' conditional ')'
  bool ParsePrimary(Value* out) {
    switch (tok_.kind) {
      case Tok::kNumber:
        *out = Value::Constant(tok_.number);
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
      return ParseCall(*fn, name_tok.pos, out);
    }
    if (name == variable_) {
      *out = Value::Variable();
      return Advance();
    }
    if (name == "pi") {
      *out = Value::Constant(std::numbers::pi);
      return Advance();
    }
    if (name == "e") {
      *out = Value::Constant(std::numbers::e);
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
  bool ParseCall(const Function& fn, size_t name_pos, Value* out) {
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
          } else if (!EmitBinary(fn.op, acc, v, &acc)) {
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
    if (fn.max_args == 1) return EmitUnary(fn.op, args[0], out);
    return EmitBinary(fn.op, args[0], args[1], out);
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

void Expression::Evaluate(std::span<const double> x, std::span<double> out) const {
  const size_t n = std::min(x.size(), out.size());
  if (n == 0) return;
  RunAny(code_, result_, slots_, x.data(), out.data(), n);
}

double Expression::Evaluate(double x) const { return RunOne(code_, result_, x); }

}  // namespace hpsched::core
