// Recursive-descent parser of the expression language (grammar in expression.h), building an Ast.

#include <cstddef>
#include <cstdint>
#include <numbers>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/expression.h"
#include "core/expression_ast.h"
#include "core/expression_lexer.h"

namespace hpsched::core::expression_internal {
namespace {

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

bool ComparisonOp(Tok t, Op* op) {
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

}  // namespace

bool IsFunctionName(std::string_view name) { return FindFunction(name) != nullptr; }
bool IsConstantName(std::string_view name) { return name == "pi" || name == "e"; }

class Parser {
 public:
  Parser(std::string_view text, std::string_view variable, NodeSink* sink)
      : text_(text), variable_(variable), lexer_(text), sink_(sink) {}

  absl::StatusOr<Ast> Parse() {
    if (!Advance()) return status_;
    if (tok_.kind == Tok::kEnd) return absl::InvalidArgumentError("empty expression");
    NodeId root;
    if (!ParseConditional(&root)) return status_;
    if (tok_.kind != Tok::kEnd) {
      Unexpected();
      return status_;
    }
    ast_.root_ = root;
    return std::move(ast_);
  }

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

  bool Enter(size_t pos) {
    if (++depth_ > Expression::kMaxNesting) {
      return Fail(
          absl::StrCat("nesting deeper than ", Expression::kMaxNesting, " at ", Column(pos)));
    }
    return true;
  }
  void Leave() { --depth_; }

  // Reads the next token into tok_. Returns false (status_ set) on a lexical error.
  bool Advance() {
    std::string error;
    if (!lexer_.Next(&tok_, &error)) return Fail(std::move(error));
    return true;
  }

  // ----- tree building ----------------------------------------------------

  // Appends `n` and hands it to the sink, with the position of the current token (the one that
  // follows the node once its last operand is parsed).
  bool Add(Node n, NodeId* out) {
    *out = static_cast<NodeId>(ast_.nodes_.size());
    ast_.nodes_.push_back(n);
    if (sink_ == nullptr) return true;
    std::string error;
    if (!sink_->OnNode(ast_, *out, tok_.pos, &error)) return Fail(std::move(error));
    return true;
  }

  bool Leaf(Node::Kind kind, double value, NodeId* out) {
    Node n;
    n.kind = kind;
    n.value = value;
    return Add(n, out);
  }

  // `at` is the operator's or function's token.
  bool Unary(Op op, NodeId a, const Token& at, NodeId* out) {
    Node n;
    n.kind = Node::Kind::kUnary;
    n.op = op;
    n.a = a;
    n.pos = static_cast<uint32_t>(at.pos);
    n.len = static_cast<uint32_t>(at.len);
    return Add(n, out);
  }

  bool Binary(Op op, NodeId a, NodeId b, const Token& at, NodeId* out) {
    Node n;
    n.kind = Node::Kind::kBinary;
    n.op = op;
    n.a = a;
    n.b = b;
    n.pos = static_cast<uint32_t>(at.pos);
    n.len = static_cast<uint32_t>(at.len);
    return Add(n, out);
  }

  // ----- grammar ----------------------------------------------------------

  // conditional := or [ '?' conditional ':' conditional ]
  bool ParseConditional(NodeId* out) {
    NodeId c;
    if (!ParseOr(&c)) return false;
    if (tok_.kind != Tok::kQuestion) {
      *out = c;
      return true;
    }
    const Token question = tok_;
    if (!Advance() || !Enter(question.pos)) return false;
    NodeId a, b;
    if (!ParseConditional(&a)) return false;
    if (tok_.kind != Tok::kColon) {
      if (tok_.kind == Tok::kEnd) {
        return Fail(absl::StrCat("missing ':' for '?' at ", Column(question.pos)));
      }
      return Fail(absl::StrCat("unexpected ", Describe(tok_), " at ", Column(tok_.pos),
                               " (expected ':' for '?' at ", Column(question.pos), ")"));
    }
    if (!Advance() || !ParseConditional(&b)) return false;
    Leave();
    Node n;
    n.kind = Node::Kind::kSelect;
    n.op = Op::kSelect;
    n.a = c;
    n.b = a;
    n.c = b;
    n.pos = static_cast<uint32_t>(question.pos);
    n.len = static_cast<uint32_t>(question.len);
    return Add(n, out);
  }

  // A left-associative level: next { op next }, with `op_of` mapping a token to its operation.
  template <typename Next, typename OpOf>
  bool ParseLeft(Next next, OpOf op_of, NodeId* out) {
    NodeId left;
    if (!(this->*next)(&left)) return false;
    Op op;
    while (op_of(tok_.kind, &op)) {
      const Token op_tok = tok_;
      NodeId right;
      if (!Advance() || !(this->*next)(&right) || !Binary(op, left, right, op_tok, &left)) {
        return false;
      }
    }
    *out = left;
    return true;
  }

  // or := and { '||' and }
  bool ParseOr(NodeId* out) { return ParseLeft(&Parser::ParseAnd, OpIf<Tok::kOrOr, Op::kOr>, out); }

  // and := comparison { '&&' comparison }
  bool ParseAnd(NodeId* out) {
    return ParseLeft(&Parser::ParseComparison, OpIf<Tok::kAndAnd, Op::kAnd>, out);
  }

  template <Tok kTok, Op kOp>
  static bool OpIf(Tok t, Op* op) {
    *op = kOp;
    return t == kTok;
  }

  static bool AdditiveOp(Tok t, Op* op) {
    *op = t == Tok::kPlus ? Op::kAdd : Op::kSub;
    return t == Tok::kPlus || t == Tok::kMinus;
  }

  static bool MultiplicativeOp(Tok t, Op* op) {
    *op = t == Tok::kStar ? Op::kMul : Op::kDiv;
    return t == Tok::kStar || t == Tok::kSlash;
  }

  // comparison := additive [ cmp additive ]   (no chaining)
  bool ParseComparison(NodeId* out) {
    NodeId left;
    if (!ParseAdditive(&left)) return false;
    Op op;
    if (ComparisonOp(tok_.kind, &op)) {
      const Token op_tok = tok_;
      NodeId right;
      if (!Advance() || !ParseAdditive(&right) || !Binary(op, left, right, op_tok, &left)) {
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
  bool ParseAdditive(NodeId* out) {
    return ParseLeft(&Parser::ParseMultiplicative, AdditiveOp, out);
  }

  // multiplicative := unary { ('*' | '/') unary }
  bool ParseMultiplicative(NodeId* out) {
    return ParseLeft(&Parser::ParseUnary, MultiplicativeOp, out);
  }

  // unary := ('-' | '+' | '!') unary | power
  bool ParseUnary(NodeId* out) {
    const Tok kind = tok_.kind;
    if (kind != Tok::kMinus && kind != Tok::kPlus && kind != Tok::kBang) return ParsePower(out);
    const Token op_tok = tok_;
    if (!Advance() || !Enter(op_tok.pos)) return false;
    NodeId v;
    if (!ParseUnary(&v)) return false;
    Leave();
    if (kind == Tok::kPlus) {  // Identity, like Python's float.__pos__.
      *out = v;
      return true;
    }
    return Unary(kind == Tok::kMinus ? Op::kNeg : Op::kNot, v, op_tok, out);
  }

  // power := primary [ ('**' | '^') unary ]
  bool ParsePower(NodeId* out) {
    NodeId base;
    if (!ParsePrimary(&base)) return false;
    if (tok_.kind != Tok::kPow) {
      *out = base;
      return true;
    }
    const Token op_tok = tok_;
    if (!Advance() || !Enter(op_tok.pos)) return false;
    NodeId exponent;
    if (!ParseUnary(&exponent)) return false;
    Leave();
    return Binary(Op::kPow, base, exponent, op_tok, out);
  }

  // primary := number | name | name '(' args ')' | '(' conditional ')'
  bool ParsePrimary(NodeId* out) {
    switch (tok_.kind) {
      case Tok::kNumber:
        return Leaf(Node::Kind::kNumber, tok_.number, out) && Advance();
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

  bool ParseName(NodeId* out) {
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
    if (name == variable_) return Leaf(Node::Kind::kVariable, 0.0, out) && Advance();
    if (name == "pi") return Leaf(Node::Kind::kNumber, std::numbers::pi, out) && Advance();
    if (name == "e") return Leaf(Node::Kind::kNumber, std::numbers::e, out) && Advance();
    if (fn != nullptr) {
      return Fail(
          absl::StrCat("expected '(' after function ", Quote(name), " at ", Column(name_tok.pos)));
    }
    return Fail(absl::StrCat("unknown name ", Quote(name), " at ", Column(name_tok.pos),
                             " (known names: '", Sv(variable_), "', 'pi', 'e')"));
  }

  // Parses the arguments of a call, tok_ at the '(' following the function name. min and max
  // fold each argument into the running value as it is parsed; other functions keep their first
  // two arguments in args[] (and drop the rest: an arity error follows).
  bool ParseArguments(const Function& fn, const Token& name_tok, NodeId (&args)[2], int* count) {
    const size_t open = tok_.pos;
    if (!Advance() || !Enter(open)) return false;
    const bool variadic = fn.max_args < 0;
    if (tok_.kind != Tok::kRParen) {
      while (true) {
        NodeId v;
        if (!ParseConditional(&v)) return false;
        ++*count;
        if (variadic && *count > 1) {
          if (!Binary(fn.op, args[0], v, name_tok, &args[0])) return false;
        } else if (*count <= 2) {
          args[*count - 1] = v;
        } else if (sink_ != nullptr) {
          sink_->OnDrop();
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
    return Advance();
  }

  // Called with tok_ at the '(' following the function name.
  bool ParseCall(const Function& fn, const Token& name_tok, NodeId* out) {
    int count = 0;
    NodeId args[2] = {0, 0};
    if (!ParseArguments(fn, name_tok, args, &count)) return false;
    if (count < fn.min_args || (fn.max_args >= 0 && count > fn.max_args)) {
      const std::string need = fn.max_args < 0 ? absl::StrCat("at least ", fn.min_args)
                                               : absl::StrCat("exactly ", fn.min_args);
      return Fail(absl::StrCat(Quote(fn.name), " needs ", need,
                               fn.min_args == 1 ? " argument" : " arguments", " at ",
                               Column(name_tok.pos), ", got ", count));
    }
    if (fn.max_args < 0) {
      *out = args[0];
      return true;
    }
    if (fn.max_args == 1) return Unary(fn.op, args[0], name_tok, out);
    return Binary(fn.op, args[0], args[1], name_tok, out);
  }

  std::string_view text_;
  std::string_view variable_;
  Lexer lexer_;
  NodeSink* const sink_;
  Token tok_;
  int depth_ = 0;
  absl::Status status_;
  Ast ast_;
};

absl::StatusOr<Ast> Parse(std::string_view text, std::string_view variable, NodeSink* sink) {
  return Parser(text, variable, sink).Parse();
}

namespace {

void Print(const Ast& ast, NodeId id, std::string* out) {
  const Node& n = ast.node(id);
  switch (n.kind) {
    case Node::Kind::kNumber:
      absl::StrAppendFormat(out, "%.17g", n.value);
      return;
    case Node::Kind::kVariable:
      out->append("x");
      return;
    default:
      break;
  }
  static constexpr std::string_view kNames[] = {
      "fill", "neg", "!",  "abs", "floor", "ceil", "exp", "log", "sqrt",
      "sin",  "cos", "+",  "-",   "*",     "/",    "**",  "<",   "<=",
      ">",    ">=",  "==", "!=",  "&&",    "||",   "min", "max", "?"};
  absl::StrAppend(out, "(", Sv(kNames[static_cast<int>(n.op)]), " ");
  Print(ast, n.a, out);
  if (n.kind != Node::Kind::kUnary) {
    out->append(" ");
    Print(ast, n.b, out);
  }
  if (n.kind == Node::Kind::kSelect) {
    out->append(" ");
    Print(ast, n.c, out);
  }
  out->append(")");
}

}  // namespace

std::string Ast::ToString() const {
  std::string out;
  if (!nodes_.empty()) Print(*this, root_, &out);
  return out;
}

}  // namespace hpsched::core::expression_internal
