// The bytecode VM of Expression: runs a compiled program over spans of inputs.
//
// Each instruction is applied across a whole chunk of Expression::kLanes lanes, so the dispatch
// cost is amortized and the simple loops vectorize; scalar evaluation runs the very same per-lane
// code with one lane, so both agree bit for bit. Nothing here fails, allocates or makes a virtual
// call. Implementation detail of Expression (namespace expression_internal).

#ifndef HPSCHED_CORE_EXPRESSION_VM_H_
#define HPSCHED_CORE_EXPRESSION_VM_H_

#include <cstddef>
#include <span>

#include "core/expression_bytecode.h"

namespace hpsched::core::expression_internal {

// Computes out[i] = f(x[i]) for i < n, f being the program (`code`, whose value ends in `result`)
// that uses `slots` stack slots (<= Expression::kMaxStack). `out` may be `x` itself but must not
// otherwise overlap it.
void RunAny(std::span<const Instruction> code, const Result& result, int slots, const double* x,
            double* out, size_t n);

// Returns f(x): the same per-lane code as RunAny, one lane.
double RunOne(std::span<const Instruction> code, const Result& result, double x);

}  // namespace hpsched::core::expression_internal

#endif  // HPSCHED_CORE_EXPRESSION_VM_H_
