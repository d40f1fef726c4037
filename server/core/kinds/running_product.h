// The running product of a factor sequence, as PyTorch's MultiplicativeLR computes it:
//   value(0) = b,  value(t) = value(t - 1) * f(t)  for 1 <= t <= horizon,  value(t) =
//   value(horizon) for t > horizon (or, for a constant factor, the values that repeat from the
//   horizon on)
// i.e. (((b * f(1)) * f(2)) * ...) * f(t), one IEEE multiplication per step in PyTorch's order.
//
// There is no closed form that gives these exact bits (b * f^t rounds differently), so the product
// is computed once, at compile time, over the whole horizon: that pass is also the validation
// (every factor finite, every value within +-kMaxMagnitude), so a RunningProduct that was built
// gives finite values for every step. It keeps a checkpoint (the exact value) every `interval`
// steps, at most kMaxCheckpoints of them (bounded memory); evaluating a step re-multiplies forward
// from the nearest checkpoint below it, so its cost is at most `interval` factor evaluations, and
// every path to a step performs exactly the same multiplications: values are bit-identical whether
// a step is evaluated alone or in any span. A reader moving forward one step (or one window) at a
// time pays O(1) per step: each thread remembers the last value it computed for a few products (a
// thread_local cursor, keyed by a process-unique id, so no lock and no shared mutable state).
#ifndef HPSCHED_CORE_KINDS_RUNNING_PRODUCT_H_
#define HPSCHED_CORE_KINDS_RUNNING_PRODUCT_H_

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace hpsched::core::kinds {

// The factors f(t). Implementations are immutable and thread-safe, allocate nothing per call, and
// give the same bits for a step whatever span it is evaluated in.
class FactorSequence {
 public:
  virtual ~FactorSequence() = default;
  // Writes f(first + i) to out[i].
  virtual void Evaluate(int64_t first, std::span<double> out) const = 0;
};

class RunningProduct {
 public:
  // At most this many checkpoints per product (8 bytes each).
  static constexpr int64_t kMaxCheckpoints = 4096;
  // Checkpoints are never closer than this many steps.
  static constexpr int64_t kMinInterval = 64;

  struct Options {
    // The last step that multiplies by a factor; the value holds from there on. 0 <= horizon <
    // 2^53.
    int64_t horizon = 0;
    // When true, the factor is known not to depend on the step (a constant), so the values are a
    // function of the previous one: once value(t) == value(t - 2) bit for bit, they repeat with
    // period 2 (1 when the product is fixed: it reached 0, a subnormal fixed point, or the factor
    // is 1; 2 when a zero's sign alternates under a negative factor) and the product stops at t - 2
    // (the effective horizon) instead of running to `horizon`.
    bool constant_factor = false;
  };

  // Computes the product of `base` and `factors` over [1, options.horizon] and keeps its
  // checkpoints. Errors (InvalidArgument, message without a field path, naming the step):
  //   "the factor is not finite at step 17 (got inf)"
  //   "the value leaves +-1e150 at step 942 (got 1.2e+150)"
  // Requires |base| <= kMaxMagnitude.
  static absl::StatusOr<RunningProduct> Build(double base,
                                              std::unique_ptr<const FactorSequence> factors,
                                              Options options);

  RunningProduct(RunningProduct&&) noexcept = default;
  RunningProduct& operator=(RunningProduct&&) noexcept = default;

  // Writes value(start + i) to out[i]. Requires 0 <= start, start + out.size() <= 2^53.
  // Thread-safe; allocates nothing.
  void Evaluate(int64_t start, std::span<double> out) const;

  // The step from which the values hold (the horizon, or the step from which a constant factor's
  // values repeat).
  int64_t settled_step() const { return horizon_; }
  // Steps between two checkpoints.
  int64_t interval() const { return interval_; }
  // The largest |value| at any step: every value is one that Build computed (Evaluate repeats the
  // same multiplications), so this is exact.
  double max_abs() const { return max_abs_; }

 private:
  RunningProduct() = default;

  uint64_t id_ = 0;  // Process-unique: keys this product's thread_local cursors.
  std::unique_ptr<const FactorSequence> factors_;
  int64_t horizon_ = 0;
  int64_t interval_ = kMinInterval;
  std::vector<double>
      checkpoints_;  // checkpoints_[i] = value(i * interval_), i * interval_ <= horizon_.
  // value(horizon_ + 2k) and value(horizon_ + 2k + 1), for k >= 0.
  std::array<double, 2> settled_ = {0, 0};
  double max_abs_ = 0;
};

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_RUNNING_PRODUCT_H_
