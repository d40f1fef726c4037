// An evaluation that can stop: a core::Evaluator that evaluates its queries in chunks of bounded
// cost through another evaluator and asks, before each chunk, whether to go on (the call was
// cancelled, its deadline passed, the server's shutdown grace ended). One per call, never shared.
#ifndef HPSCHED_JOBS_CANCELLABLE_EVALUATOR_H_
#define HPSCHED_JOBS_CANCELLABLE_EVALUATOR_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>

#include "core/evaluator.h"

namespace hpsched::jobs {

class CancellableEvaluator final : public core::Evaluator {
 public:
  // Evaluation units (Node::step_cost() x steps) between two calls of `stop`: about a millisecond.
  static constexpr int64_t kChunkCost = int64_t{1} << 20;

  // `inner` must outlive this object; `stop` returns true to stop.
  CancellableEvaluator(const core::Evaluator* inner, std::function<bool()> stop,
                       int64_t chunk_cost = kChunkCost)
      : inner_(inner), stop_(std::move(stop)), chunk_cost_(chunk_cost) {}

  // Writes every query's values, exactly as `inner` would (a node gives the same bits for a step
  // in any span), unless `stop` says to stop first: then the outputs not yet reached hold
  // unspecified values and stopped() is true, and the caller must discard them. Allocates nothing:
  // `inner` is given runs of `queries` themselves, or one piece of a query split at a time.
  void Evaluate(std::span<const core::EvalQuery> queries) const override;

  bool stopped() const { return stopped_.load(std::memory_order_relaxed); }

 private:
  const core::Evaluator* const inner_;
  const std::function<bool()> stop_;
  const int64_t chunk_cost_;
  mutable std::atomic<bool> stopped_{false};
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_CANCELLABLE_EVALUATOR_H_
