// A node whose value at each step is a pure function of the step, shared by the catalog kinds
// (Hugging Face, Keras, optax, DeepSpeed, Megatron).
#ifndef HPSCHED_CORE_KINDS_CLOSED_FORM_NODE_H_
#define HPSCHED_CORE_KINDS_CLOSED_FORM_NODE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "core/node.h"

namespace hpsched::core::kinds {

// A node whose value at each step is `formula(step)`: a closed form, so a step gives the same bits
// alone or inside any span. `Formula` is a small immutable value type with
// `double operator()(int64_t step) const`. `bound` is the node's max_abs().
template <typename Formula>
class ClosedFormNode final : public Node {
 public:
  ClosedFormNode(Formula formula, double bound) : Node(bound), formula_(std::move(formula)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    for (size_t i = 0; i < out.size(); ++i) out[i] = formula_(start + static_cast<int64_t>(i));
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
