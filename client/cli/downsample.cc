#include "client/cli/downsample.h"

#include <algorithm>
#include <cmath>

namespace hpsched::cli {

M4Reducer::M4Reducer(double x_lo, double x_hi, int buckets)
    : x_lo_(x_lo), x_hi_(x_hi), buckets_(std::max(buckets, 1)) {}

void M4Reducer::Add(double x, double y) {
  if (std::isnan(y) || std::isnan(x)) return;
  long column = 0;
  if (x_hi_ > x_lo_) {
    column = static_cast<long>(std::floor((x - x_lo_) / (x_hi_ - x_lo_) * buckets_));
    column = std::clamp<long>(column, 0, buckets_ - 1);
  }
  if (column != current_) {
    Flush();
    current_ = column;
    bucket_ = Bucket{};
  }
  const PlotPoint p{x, y};
  if (bucket_.count == 0) {
    bucket_.first = bucket_.min = bucket_.max = p;
  } else {
    if (y < bucket_.min.y) bucket_.min = p;
    if (y > bucket_.max.y) bucket_.max = p;
  }
  bucket_.last = p;
  ++bucket_.count;
  if (bucket_.count <= 4) pending_.push_back(p);
}

void M4Reducer::Flush() {
  if (bucket_.count == 0) return;
  if (bucket_.count <= 4) {
    kept_.insert(kept_.end(), pending_.begin(), pending_.end());
  } else {
    std::vector<PlotPoint> four = {bucket_.first, bucket_.min, bucket_.max, bucket_.last};
    std::stable_sort(four.begin(), four.end(),
                     [](const PlotPoint& a, const PlotPoint& b) { return a.x < b.x; });
    for (const PlotPoint& p : four) {
      if (kept_.empty() || !(kept_.back() == p)) kept_.push_back(p);
    }
  }
  pending_.clear();
  bucket_.count = 0;
}

std::vector<PlotPoint> M4Reducer::Points() const {
  M4Reducer copy = *this;
  copy.Flush();
  return copy.kept_;
}

std::vector<PlotPoint> DownsampleM4(std::span<const PlotPoint> points, double x_lo, double x_hi,
                                    int buckets) {
  M4Reducer reducer(x_lo, x_hi, buckets);
  for (const PlotPoint& p : points) reducer.Add(p.x, p.y);
  return reducer.Points();
}

}  // namespace hpsched::cli
