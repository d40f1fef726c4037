#include "core/expression.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/expression_bytecode.h"
#include "core/expression_interval.h"
#include "core/expression_lexer.h"
#include "core/expression_vm.h"

namespace hpsched::core {
namespace {

using expression_internal::Abstract;
using expression_internal::Column;
using expression_internal::Finite;
using expression_internal::FoldBinary;
using expression_internal::FoldUnary;
using expression_internal::Hull;
using expression_internal::Instruction;
using expression_internal::Intersect;
using expression_internal::IsComparison;
using expression_internal::IsIdentChar;
using expression_internal::IsIdentStart;
using expression_internal::kVariableSource;
using expression_internal::Lexer;
using expression_internal::MayBeZero;
using expression_internal::Mirror;
using expression_internal::Mode;
using expression_internal::Negate;
using expression_internal::Op;
using expression_internal::Quote;
using expression_internal::RangeBinary;
using expression_internal::RangeUnary;
using expression_internal::Refine;
using expression_internal::Result;
using expression_internal::SurelyZero;
using expression_internal::Sv;
using expression_internal::Tok;
using expression_internal::Token;

// ---------------------------------------------------------------------------
// Compiler: lexer + recursive-descent parser that emits register-style
// bytecode directly. Every operand is tracked as a Value (a constant, the
// variable, or a stack slot); operations on constants are folded with the
// evaluator's own scalar functions; a fresh slot is allocated for each result
// before its operands' slots are released, so an instruction never writes a
// slot it reads.
// ---------------------------------------------------------------------------

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

class Compiler {
 public:
  Compiler(std::string_view text, std::string_view variable)
      : text_(text), variable_(variable), lexer_(text) {}
  // A compiler that also runs the range analysis over `domain` (Expression::Range).
  Compiler(std::string_view text, std::string_view variable, const Domain& domain)
      : text_(text), variable_(variable), lexer_(text), analyzing_(true), domain_(domain) {}

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

  // Reads the next token into tok_. Returns false (status_ set) on a lexical error.
  bool Advance() {
    std::string error;
    if (!lexer_.Next(&tok_, &error)) return Fail(std::move(error));
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
    const bool call = lexer_.NextCharIs('(');
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
  Lexer lexer_;
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
  expression_internal::RunAny(code_, result_, slots_, x.data(), out.data(), n);
}

double Expression::Evaluate(double x) const {
  return expression_internal::RunOne(code_, result_, x);
}

}  // namespace hpsched::core
