#include "core/expression_codegen.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/expression.h"
#include "core/expression_lexer.h"

namespace hpsched::core::expression_internal {
bool CodeGen::OnNode(const Ast& ast, NodeId id, size_t next_pos, std::string* error) {
  next_pos_ = next_pos;
  error_ = error;
  const Node& n = ast.node(id);
  Value out;
  switch (n.kind) {
    case Node::Kind::kNumber:
      out.k = n.value;
      break;
    case Node::Kind::kVariable:
      out.kind = Value::Kind::kVariable;
      break;
    case Node::Kind::kUnary: {
      const Value a = Pop();
      if (!EmitUnary(n.op, a, &out)) return false;
      break;
    }
    case Node::Kind::kBinary: {
      const Value b = Pop();
      const Value a = Pop();
      if (!EmitBinary(n.op, a, b, &out)) return false;
      break;
    }
    case Node::Kind::kSelect: {
      const Value b = Pop();
      const Value a = Pop();
      const Value c = Pop();
      if (!EmitSelect(c, a, b, &out)) return false;
      break;
    }
  }
  stack_.push_back(out);
  return true;
}

void CodeGen::OnDrop() { Release(Pop()); }

Program CodeGen::Finish() && {
  Program p;
  const Value v = stack_.empty() ? Value{} : stack_.back();
  switch (v.kind) {
    case Value::Kind::kConstant:
      p.result.kind = Result::Kind::kConstant;
      p.result.constant = std::isnan(v.k) ? std::numeric_limits<double>::quiet_NaN() : v.k;
      break;
    case Value::Kind::kVariable:
      p.result.kind = Result::Kind::kVariable;
      break;
    case Value::Kind::kSlot:
      p.result.kind = Result::Kind::kSlot;
      p.result.slot = v.slot;
      break;
  }
  p.code = std::move(code_);
  p.code.shrink_to_fit();
  p.slots = max_slots_;
  return p;
}

CodeGen::Value CodeGen::Pop() {
  const Value v = stack_.back();
  stack_.pop_back();
  return v;
}

bool CodeGen::AllocSlot(uint8_t* slot) {
  for (int i = 0; i < Expression::kMaxStack; ++i) {
    if ((used_ & (uint64_t{1} << i)) == 0) {
      used_ |= uint64_t{1} << i;
      max_slots_ = std::max(max_slots_, i + 1);
      *slot = static_cast<uint8_t>(i);
      return true;
    }
  }
  *error_ = absl::StrCat("expression is too complex: needs more than ", Expression::kMaxStack,
                         " evaluation stack slots (at ", Column(next_pos_), ")");
  return false;
}

void CodeGen::Release(const Value& v) {
  if (v.kind == Value::Kind::kSlot) used_ &= ~(uint64_t{1} << v.slot);
}

bool CodeGen::Emit(Instruction in, Value* out) {
  // Defensive: cannot trigger with kMaxLength-bounded input, but keeps the
  // instruction count bounded whatever the limits are set to.
  if (code_.size() >= 4 * Expression::kMaxLength) {
    *error_ = "expression is too complex: too many instructions";
    return false;
  }
  code_.push_back(in);
  *out = Value{Value::Kind::kSlot, in.dst, 0.0};
  return true;
}

bool CodeGen::EmitUnary(Op op, Value a, Value* out) {
  if (a.is_constant()) {
    *out = Value{Value::Kind::kConstant, 0, FoldUnary(op, a.k)};
    return true;
  }
  Instruction in;
  in.op = op;
  in.a = Source(a);
  if (!AllocSlot(&in.dst)) return false;
  Release(a);
  return Emit(in, out);
}

bool CodeGen::EmitBinary(Op op, Value a, Value b, Value* out) {
  if (a.is_constant() && b.is_constant()) {
    *out = Value{Value::Kind::kConstant, 0, FoldBinary(op, a.k, b.k)};
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
bool CodeGen::Materialize(Value* v) {
  if (!v->is_constant()) return true;
  Instruction in;
  in.op = Op::kFill;
  in.k = v->k;
  if (!AllocSlot(&in.dst)) return false;
  return Emit(in, v);
}

bool CodeGen::EmitSelect(Value c, Value a, Value b, Value* out) {
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

}  // namespace hpsched::core::expression_internal
