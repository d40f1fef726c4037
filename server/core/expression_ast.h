// The syntax tree of the expression language and its parser.
//
// Parse() turns source text into an Ast: a small immutable tree of numbers (literals, `pi`, `e`),
// the variable, unary and binary operations (function calls included: `sqrt(x)` is a unary kSqrt,
// `pow(a, b)` a binary kPow, `min(a, b, c)` is min(min(a, b), c), folded left like Python) and
// conditionals. Parentheses and unary `+` leave no node. Each operation keeps the position of its
// operator or function name, so later passes (range analysis) can name it in their errors.
//
// Nodes are stored in the order the parser completes them, children before parents (post-order);
// a NodeSink sees them in that order as they are completed, which lets the code generator run in
// step with the parser and report its own errors exactly where a one-pass compiler would.
// Implementation detail of Expression (namespace expression_internal).

#ifndef HPSCHED_CORE_EXPRESSION_AST_H_
#define HPSCHED_CORE_EXPRESSION_AST_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/expression_bytecode.h"

namespace hpsched::core::expression_internal {

using NodeId = uint32_t;

struct Node {
  enum class Kind : uint8_t {
    kNumber,    // value
    kVariable,  // the variable
    kUnary,     // op(a)
    kBinary,    // op(a, b)
    kSelect,    // a != 0 ? b : c
  };
  Kind kind = Kind::kNumber;
  Op op = Op::kFill;   // kUnary, kBinary; kSelect for kSelect.
  double value = 0.0;  // kNumber.
  NodeId a = 0, b = 0, c = 0;
  // The operator's (or function name's) token: byte offset and length in the text.
  uint32_t pos = 0;
  uint32_t len = 0;
};

// A parsed expression. Immutable once Parse() returns it.
class Ast {
 public:
  const Node& node(NodeId id) const { return nodes_[id]; }
  NodeId root() const { return root_; }
  size_t size() const { return nodes_.size(); }

  // The tree in prefix notation, for tests and diagnostics: "(+ x (* 2 (sqrt x)))", numbers with
  // %.17g, the variable as `x`, a conditional as "(? c a b)".
  std::string ToString() const;

 private:
  friend class Parser;
  std::vector<Node> nodes_;
  NodeId root_ = 0;
};

// Sees each node as the parser completes it (children first).
class NodeSink {
 public:
  virtual ~NodeSink() = default;
  // Node `id` of `ast` is complete; `next_pos` is the offset of the token that follows it. Returns
  // false, with *error set, to stop the parse with that error.
  virtual bool OnNode(const Ast& ast, NodeId id, size_t next_pos, std::string* error) = 0;
  // The most recently completed node that no parent consumes yet will never be consumed (an
  // argument beyond a function's arity, about to be reported as an error).
  virtual void OnDrop() = 0;
};

// Parses `text`, an expression over the variable `variable` (a valid identifier, not a reserved
// name: Expression::Compile checks it first), at most Expression::kMaxLength bytes. `sink` may be
// null. Returns the tree, or InvalidArgument with the first error met, in text order (lexical,
// syntax, nesting, names, arity, or the sink's), e.g. "unexpected ')' at column 7".
absl::StatusOr<Ast> Parse(std::string_view text, std::string_view variable, NodeSink* sink);

// Whether `name` is a function of the language, or one of its constants (`pi`, `e`).
bool IsFunctionName(std::string_view name);
bool IsConstantName(std::string_view name);

}  // namespace hpsched::core::expression_internal

#endif  // HPSCHED_CORE_EXPRESSION_AST_H_
