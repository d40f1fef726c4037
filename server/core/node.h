// A compiled schedule for one parameter group: the unit of the batched evaluation core.
#ifndef HPSCHED_CORE_NODE_H_
#define HPSCHED_CORE_NODE_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace hpsched::core {

// Steps are int64 in [0, kStepLimit): every step is exactly representable as a double.
inline constexpr int64_t kStepLimit = int64_t{1} << 53;

// A stretch of steps whose values depend on metric reports (reduce_on_plateau): the value at every
// global step t in [from, to) depends on the reports of `metric` at the steps in
// [first_report, min(t - 1, last_report)] (a report at step s applies from step s + 1 on). Such a
// value is provisional while a report it depends on has not arrived; every other value is final.
struct ReportDependence {
  std::string metric;
  int64_t first_report = 0;
  int64_t last_report = kStepLimit;
  int64_t from = 0;
  int64_t to = kStepLimit;

  bool operator==(const ReportDependence&) const = default;
};

// Evaluates one schedule, with every parameter resolved for one parameter group, over spans of
// consecutive steps. Implementations are immutable after construction and safe to call from many
// threads at once; they allocate nothing and make no virtual call per value (composites make one
// call per child and span).
class Node {
 public:
  virtual ~Node() = default;

  // Writes the values of the steps [start, start + out.size()) to `out`.
  // Requires 0 <= start and start + out.size() <= kStepLimit (callers validate; nodes do not
  // check).
  virtual void Evaluate(int64_t start, std::span<double> out) const = 0;

  // A bound proven when the node was compiled: |value| <= max_abs() at every step in
  // [0, kStepLimit). Every kind states one: it passes it to the constructor, Node(bound), usually
  // RoundBoundUp(a bound of its formula's exact value, derived from the validated parameters).
  // It may be +inf only where a finite bound would overflow; composites that multiply their
  // children's values (chained) reject such children, as they cannot prove the product finite.
  double max_abs() const { return max_abs_; }

  // Appends to `out` the report dependences of the values at this node's steps [start, end), where
  // the node's step u is global step u + shift. The default, for every kind whose value is a
  // function of the step alone, appends nothing; reduce_on_plateau appends its metric, and
  // composites ask exactly the children that run in the range, with their time mapped (so a
  // plateau after a `sequential` milestone leaves the warmup before it final). Called when a plan
  // is compiled, never per value.
  virtual void AddReportDependences(int64_t /*start*/, int64_t /*end*/, int64_t /*shift*/,
                                    std::vector<ReportDependence>* /*out*/) const {}

  // The work of one value, in units of one closed-form value (a few floating-point operations),
  // at least 1: an estimate, not a proof, for bounding what one request may cost (steps x
  // step_cost()). A lambda counts its instructions; a composite, itself plus the children one of
  // its values evaluates. O(1): composites compute it once, when they are built (their children may
  // share nodes, as an updated hyperparameter's history does, so a walk per call could explode).
  virtual int64_t step_cost() const { return 1; }

 protected:
  explicit Node(double max_abs) : max_abs_(max_abs) {}

 private:
  double max_abs_;
};

// `bound` plus a relative 1e-9 and an absolute 2^-1022 (the smallest normal double): far more than
// the rounding error of any kind's formula (a few operations, each within 2^-53 relative, or
// 2^-1075 absolute for subnormal results), so that a bound of the exact value bounds the computed
// one.
inline double RoundBoundUp(double bound) {
  return bound * (1 + 1e-9) + std::numeric_limits<double>::min();
}

using NodePtr = std::unique_ptr<const Node>;

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_NODE_H_
