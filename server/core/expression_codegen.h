// The code generator of Expression: syntax tree -> register-style bytecode.
//
// A CodeGen is a NodeSink: the parser hands it each node as it completes it, children first, and
// it keeps a stack of the values not yet consumed by a parent (a constant, the variable, or a stack
// slot). Operations on constants are folded with the VM's own scalar functions
// (expression_bytecode.h), so folding never changes a result; a fresh slot is allocated for each
// result before its operands' slots are released, so an instruction never writes a slot it reads.
// Running in step with the parser, it reports "too complex" where a one-pass compiler would, at the
// column of the token that follows the operation. Implementation detail of Expression.

#ifndef HPSCHED_CORE_EXPRESSION_CODEGEN_H_
#define HPSCHED_CORE_EXPRESSION_CODEGEN_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/expression_ast.h"
#include "core/expression_bytecode.h"

namespace hpsched::core::expression_internal {

// A compiled program: what Expression evaluates.
struct Program {
  std::vector<Instruction> code;
  Result result;
  int slots = 0;  // Stack slots used (<= Expression::kMaxStack).
};

class CodeGen final : public NodeSink {
 public:
  // Errors: "expression is too complex: needs more than 64 evaluation stack slots (at column N)",
  // "expression is too complex: too many instructions".
  bool OnNode(const Ast& ast, NodeId id, size_t next_pos, std::string* error) override;
  void OnDrop() override;

  // The program of the whole tree. Requires that the parse succeeded (exactly one value left).
  Program Finish() &&;

 private:
  struct Value {
    enum class Kind : uint8_t { kConstant, kVariable, kSlot };
    Kind kind = Kind::kConstant;
    uint8_t slot = 0;
    double k = 0.0;
    bool is_constant() const { return kind == Kind::kConstant; }
  };

  static uint8_t Source(const Value& v) {
    return v.kind == Value::Kind::kSlot ? v.slot : kVariableSource;
  }

  Value Pop();
  bool AllocSlot(uint8_t* slot);
  void Release(const Value& v);
  bool Emit(Instruction in, Value* out);
  bool EmitUnary(Op op, Value a, Value* out);
  bool EmitBinary(Op op, Value a, Value b, Value* out);
  bool Materialize(Value* v);
  bool EmitSelect(Value c, Value a, Value b, Value* out);

  std::vector<Value> stack_;
  std::vector<Instruction> code_;
  uint64_t used_ = 0;  // Bit i: slot i holds a live value.
  int max_slots_ = 0;
  size_t next_pos_ = 0;  // Of the node being generated, for errors.
  std::string* error_ = nullptr;
};

}  // namespace hpsched::core::expression_internal

#endif  // HPSCHED_CORE_EXPRESSION_CODEGEN_H_
