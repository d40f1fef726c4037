#include "jobs/cancellable_evaluator.h"

#include <algorithm>
#include <vector>

namespace hpsched::jobs {

void CancellableEvaluator::Evaluate(std::span<const core::EvalQuery> queries) const {
  // Whole queries are batched together while they fit in a chunk; a costlier query is split into
  // spans of consecutive steps, each a multiple of 64 steps (the expression VM's lane width) but
  // for the last.
  std::vector<core::EvalQuery> batch;
  int64_t batch_cost = 0;
  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    if (stop_()) {
      stopped_.store(true, std::memory_order_relaxed);
      return false;
    }
    inner_->Evaluate(batch);
    batch.clear();
    batch_cost = 0;
    return true;
  };
  for (const core::EvalQuery& query : queries) {
    const int64_t step_cost = std::max<int64_t>(query.node->step_cost(), 1);
    const int64_t steps = static_cast<int64_t>(query.out.size());
    if (batch_cost + step_cost * steps <= chunk_cost_) {
      batch.push_back(query);
      batch_cost += step_cost * steps;
      continue;
    }
    if (!flush()) return;
    const int64_t chunk_steps = std::max<int64_t>(64, chunk_cost_ / step_cost / 64 * 64);
    for (int64_t offset = 0; offset < steps; offset += chunk_steps) {
      const int64_t n = std::min(chunk_steps, steps - offset);
      batch.push_back(
          core::EvalQuery{query.node, query.start + offset,
                          query.out.subspan(static_cast<size_t>(offset), static_cast<size_t>(n))});
      if (!flush()) return;
    }
  }
  flush();
}

}  // namespace hpsched::jobs
