#include "core/expression_range.h"

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/expression_bytecode.h"
#include "core/expression_lexer.h"

namespace hpsched::core::expression_internal {
namespace {

// What the analysis knows of a sub-expression's value over the current domain.
struct Abstraction {
  // Whether the value is a compile-time constant `k` (folded as the code generator does) or the
  // variable itself; comparisons of the two split the domain.
  enum class Kind : uint8_t { kConstant, kVariable, kOther };
  Kind kind = Kind::kOther;
  double k = 0.0;
  Interval range;
  // When `split`, the parts of the domain where the value is nonzero (when_true) and zero
  // (when_false): known for comparisons of the variable with a constant and their &&, ||, !.
  bool split = false;
  Interval when_true;
  Interval when_false;
};

class RangeAnalysis {
 public:
  RangeAnalysis(const Ast& ast, std::string_view text) : ast_(ast), text_(text) {}

  // Sets *out to the abstraction of node `id` over `d` (an empty d.range: the node is reached by
  // no value of the variable, and nothing in it is analyzed). Returns false, error() set, when an
  // operation may not be finite.
  bool Walk(NodeId id, const Domain& d, Abstraction* out) {
    const Node& n = ast_.node(id);
    Abstraction a, b;
    switch (n.kind) {
      case Node::Kind::kNumber:
        out->kind = Abstraction::Kind::kConstant;
        out->k = n.value;
        out->range = d.range.empty() ? Interval::Empty() : Interval::Point(n.value);
        return true;
      case Node::Kind::kVariable:
        out->kind = Abstraction::Kind::kVariable;
        out->range = d.range;
        return true;
      case Node::Kind::kUnary:
        return Walk(n.a, d, &a) && Unary(n, a, d, out);
      case Node::Kind::kBinary:
        return Walk(n.a, d, &a) && Walk(n.b, d, &b) && Binary(n, a, b, d, out);
      case Node::Kind::kSelect:
        return Select(n, d, out);
    }
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  bool Fail(const Node& at, const std::string& why) {
    error_ = absl::StrCat(Quote(text_.substr(at.pos, at.len)), " at ", Column(at.pos), " ", why);
    return false;
  }

  // The parts of `d` where `v` is nonzero and zero.
  static void Split(const Abstraction& v, const Domain& d, Interval* when_true,
                    Interval* when_false) {
    if (v.split) {
      *when_true = v.when_true;
      *when_false = v.when_false;
      return;
    }
    const bool dead = d.range.empty() || v.range.empty();
    *when_true = dead || SurelyZero(v.range) ? Interval::Empty() : d.range;
    *when_false = dead || !MayBeZero(v.range) ? Interval::Empty() : d.range;
  }

  bool Unary(const Node& n, const Abstraction& a, const Domain& d, Abstraction* out) {
    if (a.kind == Abstraction::Kind::kConstant) {
      out->kind = Abstraction::Kind::kConstant;
      out->k = FoldUnary(n.op, a.k);
    }
    if (d.range.empty() || a.range.empty()) {
      out->range = Interval::Empty();
      return true;
    }
    const Abstract r = RangeUnary(n.op, a.range);
    if (!r.error.empty()) return Fail(n, r.error);
    out->range = r.range;
    if (n.op == Op::kNot && a.split) {
      out->split = true;
      out->when_true = a.when_false;
      out->when_false = a.when_true;
    }
    return true;
  }

  bool Binary(const Node& n, const Abstraction& a, const Abstraction& b, const Domain& d,
              Abstraction* out) {
    using Kind = Abstraction::Kind;
    if (a.kind == Kind::kConstant && b.kind == Kind::kConstant) {
      out->kind = Kind::kConstant;
      out->k = FoldBinary(n.op, a.k, b.k);
    }
    if (d.range.empty() || a.range.empty() || b.range.empty()) {
      out->range = Interval::Empty();
      return true;
    }
    const Abstract r = RangeBinary(n.op, a.range, b.range);
    if (!r.error.empty()) return Fail(n, r.error);
    out->range = r.range;
    const bool var_const = a.kind == Kind::kVariable && b.kind == Kind::kConstant;
    const bool const_var = a.kind == Kind::kConstant && b.kind == Kind::kVariable;
    if (IsComparison(n.op) && (var_const || const_var)) {
      const Op cmp = var_const ? n.op : Mirror(n.op);
      const double c = var_const ? b.k : a.k;
      out->split = true;
      out->when_true = Refine(d, cmp, c);
      out->when_false = Refine(d, Negate(cmp), c);
    } else if (n.op == Op::kAnd || n.op == Op::kOr) {
      Interval at1, af1, at2, af2;
      Split(a, d, &at1, &af1);
      Split(b, d, &at2, &af2);
      out->split = true;
      out->when_true = n.op == Op::kAnd ? Intersect(at1, at2) : Hull(at1, at2);
      out->when_false = n.op == Op::kAnd ? Hull(af1, af2) : Intersect(af1, af2);
    }
    if (out->split) {
      if (out->when_true.empty()) out->range = Interval::Point(0.0);
      if (out->when_false.empty()) out->range = Interval::Point(1.0);
    }
    return true;
  }

  // Each arm is analyzed over the part of the domain where it is selected.
  bool Select(const Node& n, const Domain& d, Abstraction* out) {
    Abstraction c, a, b;
    if (!Walk(n.a, d, &c)) return false;
    Interval when_true, when_false;
    Split(c, d, &when_true, &when_false);
    if (!Walk(n.b, {when_true, d.integers}, &a)) return false;
    if (!Walk(n.c, {when_false, d.integers}, &b)) return false;
    Interval range = Interval::Empty();
    if (!d.range.empty()) {
      range = when_true.empty() ? b.range : when_false.empty() ? a.range : Hull(a.range, b.range);
    }
    // A constant condition selects its arm at compile time: the value is that arm's.
    *out = c.kind != Abstraction::Kind::kConstant ? Abstraction{} : c.k != 0.0 ? a : b;
    out->range = range;
    out->split = false;
    return true;
  }

  const Ast& ast_;
  std::string_view text_;
  std::string error_;
};

}  // namespace

absl::StatusOr<Interval> AnalyzeRange(const Ast& ast, std::string_view text, const Domain& domain) {
  RangeAnalysis analysis(ast, text);
  Abstraction root;
  if (!analysis.Walk(ast.root(), domain, &root)) {
    return absl::InvalidArgumentError(analysis.error());
  }
  return root.range;
}

}  // namespace hpsched::core::expression_internal
