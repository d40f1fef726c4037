#include "metrics/sharded_cells.h"

#include <algorithm>
#include <cstdlib>

namespace hpsched::metrics {

size_t ThisThreadShard() {
  static std::atomic<size_t> next{0};
  thread_local const size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kCellShards;
  return shard;
}

ShardedHistogram::ShardedHistogram(std::span<const int64_t> bounds_nanos) {
  if (bounds_nanos.size() > kMaxBounds || !std::is_sorted(bounds_nanos.begin(), bounds_nanos.end()))
    std::abort();  // A programming error: the bounds are constants of the server.
  std::copy(bounds_nanos.begin(), bounds_nanos.end(), bounds_.begin());
  bound_count_ = bounds_nanos.size();
}

void ShardedHistogram::Observe(int64_t nanos) {
  nanos = std::max<int64_t>(nanos, 0);
  size_t bucket = 0;
  while (bucket < bound_count_ && bounds_[bucket] < nanos) ++bucket;
  Cell& cell = cells_[ThisThreadShard()];
  cell.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
  cell.sum_nanos.fetch_add(nanos, std::memory_order_relaxed);
}

ShardedHistogram::Snapshot ShardedHistogram::Read() const {
  Snapshot snapshot;
  std::vector<uint64_t> counts(bound_count_ + 1, 0);
  for (const Cell& cell : cells_) {
    for (size_t i = 0; i <= bound_count_; ++i) {
      counts[i] += cell.buckets[i].load(std::memory_order_relaxed);
    }
    snapshot.sum_nanos += cell.sum_nanos.load(std::memory_order_relaxed);
  }
  snapshot.cumulative.resize(counts.size());
  uint64_t running = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    running += counts[i];
    snapshot.cumulative[i] = running;
  }
  snapshot.count = running;
  return snapshot;
}

}  // namespace hpsched::metrics
