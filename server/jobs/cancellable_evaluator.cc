#include "jobs/cancellable_evaluator.h"

#include <algorithm>

namespace hpsched::jobs {

void CancellableEvaluator::Evaluate(std::span<const core::EvalQuery> queries) const {
  // Whole queries are batched together while they fit in a chunk; a costlier query is split into
  // spans of consecutive steps, each a multiple of 64 steps (the expression VM's lane width) but
  // for the last. A batch of whole queries is always a run of consecutive `queries`, so it is
  // passed on as a subspan of them, and a piece of a split query from this stack: nothing is
  // copied or allocated, however many queries there are.
  size_t run_begin = 0;
  int64_t run_cost = 0;
  auto evaluate = [&](std::span<const core::EvalQuery> batch) -> bool {
    if (batch.empty()) return true;
    if (stop_()) {
      stopped_.store(true, std::memory_order_relaxed);
      return false;
    }
    inner_->Evaluate(batch);
    return true;
  };
  for (size_t i = 0; i < queries.size(); ++i) {
    const core::EvalQuery& query = queries[i];
    const int64_t step_cost = std::max<int64_t>(query.node->step_cost(), 1);
    const int64_t steps = static_cast<int64_t>(query.out.size());
    if (run_cost + step_cost * steps <= chunk_cost_) {
      run_cost += step_cost * steps;
      continue;
    }
    if (!evaluate(queries.subspan(run_begin, i - run_begin))) return;
    const int64_t chunk_steps = std::max<int64_t>(64, chunk_cost_ / step_cost / 64 * 64);
    for (int64_t offset = 0; offset < steps; offset += chunk_steps) {
      const int64_t n = std::min(chunk_steps, steps - offset);
      const core::EvalQuery piece{
          query.node, query.start + offset,
          query.out.subspan(static_cast<size_t>(offset), static_cast<size_t>(n))};
      if (!evaluate(std::span<const core::EvalQuery>(&piece, 1))) return;
    }
    run_begin = i + 1;
    run_cost = 0;
  }
  evaluate(queries.subspan(run_begin));
}

}  // namespace hpsched::jobs
