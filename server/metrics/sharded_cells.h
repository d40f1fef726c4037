// Counters and a latency histogram for the per-call path, without a cache line that every call
// shares. prometheus-cpp's Counter is an atomic double updated by a compare-and-swap loop, and its
// Histogram::Observe takes a std::mutex: on the GetValues path both cores wrote the same lines on
// every call. Here each thread adds into one of kCellShards cells (threads take shards round robin
// on their first use, so up to kCellShards threads never share one), each on its own cache line,
// with relaxed atomic adds; a scrape sums the cells.
//
// Contract: every Add and Observe is counted exactly once (two threads on one shard add
// atomically; they only slow each other down). A read sums the cells one by one while writers may
// add: it sees each add that happened before it and possibly some that race with it, never a
// torn value. A histogram's count is the sum of its buckets as read, so its +Inf bucket always
// equals its count; its sum may include an observation whose bucket the read missed, or the other
// way round, by the racing observations only. Thread-safe; no allocation after construction.
#ifndef HPSCHED_SERVER_METRICS_SHARDED_CELLS_H_
#define HPSCHED_SERVER_METRICS_SHARDED_CELLS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hpsched::metrics {

inline constexpr size_t kCellShards = 16;
inline constexpr size_t kCacheLine = 64;

// The calling thread's shard, in [0, kCellShards).
size_t ThisThreadShard();

// `N` counters (indexed 0..N-1), sharded.
template <size_t N>
class ShardedCounters {
 public:
  void Add(size_t index, uint64_t n = 1) {
    cells_[ThisThreadShard()].values[index].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t Value(size_t index) const {
    uint64_t total = 0;
    for (const Cell& cell : cells_) total += cell.values[index].load(std::memory_order_relaxed);
    return total;
  }

 private:
  struct alignas(kCacheLine) Cell {
    std::array<std::atomic<uint64_t>, N> values{};
  };
  std::array<Cell, kCellShards> cells_{};
};

// A histogram of durations in nanoseconds over fixed upper bounds (Prometheus' `le`: an
// observation counts in the first bucket whose bound is >= it; past the last bound, in +Inf).
class ShardedHistogram {
 public:
  static constexpr size_t kMaxBounds = 23;  // With +Inf and the sum: 25 words a shard.

  // `bounds_nanos`: increasing, at most kMaxBounds.
  explicit ShardedHistogram(std::span<const int64_t> bounds_nanos);

  // A negative duration counts as 0.
  void Observe(int64_t nanos);

  struct Snapshot {
    // Per bound, then +Inf: observations <= that bound.
    std::vector<uint64_t> cumulative;
    uint64_t count = 0;
    // The exact sum of the observations counted, in nanoseconds.
    int64_t sum_nanos = 0;
  };
  Snapshot Read() const;

  std::span<const int64_t> bounds_nanos() const { return {bounds_.data(), bound_count_}; }

 private:
  struct alignas(kCacheLine) Cell {
    std::array<std::atomic<uint64_t>, kMaxBounds + 1> buckets{};
    std::atomic<int64_t> sum_nanos{0};
  };
  std::array<int64_t, kMaxBounds> bounds_{};
  size_t bound_count_ = 0;
  std::array<Cell, kCellShards> cells_{};
};

}  // namespace hpsched::metrics

#endif  // HPSCHED_SERVER_METRICS_SHARDED_CELLS_H_
