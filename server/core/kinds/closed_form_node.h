// A node whose value at each step is a pure function of the step, shared by the catalog kinds
// (Hugging Face, Keras, optax, DeepSpeed, Megatron).
#ifndef HPSCHED_CORE_KINDS_CLOSED_FORM_NODE_H_
#define HPSCHED_CORE_KINDS_CLOSED_FORM_NODE_H_

#include <algorithm>
#include <array>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "core/node.h"
#include "core/vector_math.h"

namespace hpsched::core::kinds {

// The cos a formula's value goes through: libm, for the scalar reference.
struct LibmCos {
  static constexpr bool kRecording = false;
  double Cos(double x) const { return std::cos(x); }
};

// A cos-split formula: `template <typename Math> double operator()(int64_t step, const Math& math)
// const`, whose cos calls go through math.Cos. ClosedFormNode evaluates it in two passes on the
// vector path: each step's cos argument first (a pass that answers 0 for the cos), the cos of a
// whole chunk through the vector kernel, then the formula again around its step's cos. A step
// that calls cos more than once is evaluated with libm, so each step's value stays a function of
// the step alone. A cos argument must not depend on a cos result; a formula with costly work after
// its cos may return early when Math::kRecording (the first pass ignores its value).
template <typename Formula>
concept CosSplitFormula = requires(const Formula& f, int64_t step, const LibmCos& math) {
  { f(step, math) } -> std::convertible_to<double>;
};

// The first pass: records the argument of a step's cos and counts the calls.
struct RecordCos {
  static constexpr bool kRecording = true;
  double* argument;
  int* calls;
  double Cos(double x) const {
    *argument = x;
    ++*calls;
    return 0.0;
  }
};

// The second pass: the step's cos, computed by the vector kernel.
struct ReplayCos {
  static constexpr bool kRecording = false;
  double value;
  double Cos(double) const { return value; }
};

// Writes f(step) for the steps [start, start + out.size()) of a cos-split formula `f`: on the
// scalar path with libm one step at a time, on the vector path in the two passes described above.
// For nodes other than ClosedFormNode whose value is such a formula.
template <typename F>
void EvaluateCosSplit(const F& f, int64_t start, std::span<double> out) {
  if (CurrentMathPath() == MathPath::kScalar) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = f(start + static_cast<int64_t>(i), LibmCos{});
    return;
  }
  constexpr size_t kChunk = 256;
  std::array<double, kChunk> cosines;
  std::array<int, kChunk> calls;
  for (size_t offset = 0; offset < out.size(); offset += kChunk) {
    const size_t n = std::min(kChunk, out.size() - offset);
    const int64_t chunk_start = start + static_cast<int64_t>(offset);
    for (size_t i = 0; i < n; ++i) {
      cosines[i] = 0;
      calls[i] = 0;
      f(chunk_start + static_cast<int64_t>(i), RecordCos{&cosines[i], &calls[i]});
    }
    simd::Cos(std::span<double>(cosines.data(), n));
    for (size_t i = 0; i < n; ++i) {
      const int64_t step = chunk_start + static_cast<int64_t>(i);
      out[offset + i] = calls[i] <= 1 ? f(step, ReplayCos{cosines[i]}) : f(step, LibmCos{});
    }
  }
}

// A node whose value at each step is `formula(step)`: a closed form, so a step gives the same bits
// alone or inside any span. `Formula` is a small immutable value type with
// `double operator()(int64_t step) const`, or a cos-split formula (above). `bound` is the node's
// max_abs().
template <typename Formula>
class ClosedFormNode final : public Node {
 public:
  ClosedFormNode(Formula formula, double bound) : Node(bound), formula_(std::move(formula)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    if constexpr (CosSplitFormula<Formula>) {
      EvaluateCosSplit(formula_, start, out);
    } else {
      for (size_t i = 0; i < out.size(); ++i) out[i] = formula_(start + static_cast<int64_t>(i));
    }
  }

 private:
  Formula formula_;
};

// `value_bound` bounds |formula's exact value| at every step in [0, kStepLimit), as derived from
// the formula and its validated parameters; the node states RoundBoundUp(value_bound).
template <typename Formula>
NodePtr MakeClosedFormNode(Formula formula, double value_bound) {
  return std::make_unique<ClosedFormNode<Formula>>(std::move(formula), RoundBoundUp(value_bound));
}

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_CLOSED_FORM_NODE_H_
