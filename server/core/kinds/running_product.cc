#include "core/kinds/running_product.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <charconv>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/params.h"

namespace hpsched::core::kinds {
namespace {

// Factors are evaluated this many at a time (on the stack).
constexpr int64_t kChunk = 256;

// The last value a thread computed for a few products: a forward reader resumes from it.
struct Cursor {
  uint64_t id = 0;  // 0: empty.
  int64_t step = 0;
  double value = 0;
};
constexpr size_t kCursorsPerThread = 8;
thread_local std::array<Cursor, kCursorsPerThread> cursors;
thread_local size_t next_cursor = 0;

std::atomic<uint64_t> next_id{1};

// The shortest text that reads back as `x` ("0.1", "1.2198285152006581e+150").
std::string Shortest(double x) {
  std::array<char, 32> buffer;
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), x);
  return std::string(buffer.data(), result.ptr);
}

bool SameBits(double a, double b) {
  return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);
}

}  // namespace

absl::StatusOr<RunningProduct> RunningProduct::Build(double base,
                                                     std::unique_ptr<const FactorSequence> factors,
                                                     Options options) {
  RunningProduct product;
  product.id_ = next_id.fetch_add(1, std::memory_order_relaxed);
  product.factors_ = std::move(factors);
  product.horizon_ = options.horizon;
  product.checkpoints_.push_back(base);
  product.max_abs_ = std::fabs(base);
  double value = base;
  double before = base;  // value(t - 2), once t >= 2.
  std::array<double, kChunk> f;
  for (int64_t first = 1; first <= options.horizon; first += kChunk) {
    const int64_t n = std::min(kChunk, options.horizon - first + 1);
    product.factors_->Evaluate(first, std::span<double>(f.data(), static_cast<size_t>(n)));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = first + i;
      if (!std::isfinite(f[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("the factor is not finite at step ", t, " (got ", Shortest(f[i]), ")"));
      }
      const double next = value * f[i];
      if (!(std::fabs(next) <= kMaxMagnitude)) {
        return absl::InvalidArgumentError(
            absl::StrCat("the value leaves +-1e150 at step ", t, " (got ", Shortest(next), ")"));
      }
      product.max_abs_ = std::max(product.max_abs_, std::fabs(next));
      if (options.constant_factor && t >= 2 && SameBits(next, before)) {
        // value(t) == value(t - 2), and value(t + 1) = value(t) * c = value(t - 1): from t - 2 on
        // the values alternate between value(t - 2) and value(t - 1) (equal when the product is
        // fixed; a zero's sign alternates under a negative factor).
        product.horizon_ = t - 2;
        product.settled_ = {before, value};
        return product;
      }
      before = value;
      value = next;
      if (t % product.interval_ == 0) {
        if (static_cast<int64_t>(product.checkpoints_.size()) == kMaxCheckpoints) {
          // Twice the interval, half the checkpoints: keep the even ones.
          for (size_t k = 0; 2 * k < product.checkpoints_.size(); ++k) {
            product.checkpoints_[k] = product.checkpoints_[2 * k];
          }
          product.checkpoints_.resize((product.checkpoints_.size() + 1) / 2);
          product.interval_ *= 2;
        }
        if (t % product.interval_ == 0) product.checkpoints_.push_back(value);
      }
    }
  }
  product.settled_ = {value, value};
  return product;
}

void RunningProduct::Evaluate(int64_t start, std::span<double> out) const {
  const int64_t end = start + static_cast<int64_t>(out.size());
  // Steps from the horizon on hold the settled values.
  const int64_t product_end = std::min(end, horizon_);
  for (int64_t t = std::max(start, horizon_); t < end; ++t) {
    out[t - start] = settled_[(t - horizon_) & 1];
  }
  if (start >= product_end) return;

  // Resume from the nearest checkpoint at or below `start`, or from this thread's cursor when it is
  // nearer.
  int64_t step =
      std::min(start / interval_, static_cast<int64_t>(checkpoints_.size()) - 1) * interval_;
  double value = checkpoints_[step / interval_];
  for (const Cursor& cursor : cursors) {
    if (cursor.id == id_ && cursor.step <= start && cursor.step > step) {
      step = cursor.step;
      value = cursor.value;
    }
  }
  if (step == start) out[0] = value;
  std::array<double, kChunk> f;
  while (step + 1 < product_end) {
    const int64_t first = step + 1;
    const int64_t n = std::min(kChunk, product_end - first);
    factors_->Evaluate(first, std::span<double>(f.data(), static_cast<size_t>(n)));
    for (int64_t i = 0; i < n; ++i) {
      value *= f[i];
      if (first + i >= start) out[first + i - start] = value;
    }
    step += n;
  }

  // Remember where this thread stopped (replacing its old cursor for this product, if any).
  Cursor* slot = nullptr;
  for (Cursor& cursor : cursors) {
    if (cursor.id == id_) slot = &cursor;
  }
  if (slot == nullptr) {
    slot = &cursors[next_cursor];
    next_cursor = (next_cursor + 1) % kCursorsPerThread;
  }
  *slot = Cursor{id_, step, value};
}

}  // namespace hpsched::core::kinds
