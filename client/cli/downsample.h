// Downsampling of long curves for drawing: per column (bucket of x), keep the first, lowest,
// highest and last point (M4, Jugel et al. 2014). A polyline through them draws the same pixels as
// the full curve, so spikes, restarts and steps stay visible however long the range is.
#ifndef HPSCHED_CLIENT_CLI_DOWNSAMPLE_H_
#define HPSCHED_CLIENT_CLI_DOWNSAMPLE_H_

#include <span>
#include <vector>

#include "client/cli/plot_model.h"

namespace hpsched::cli {

// Streams points in increasing x into `buckets` equal columns over [x_lo, x_hi]; Points() returns
// at most 4 points per column, in x order. Points with a NaN y are dropped. A column that receives
// at most 4 points keeps all of them, so a range of up to `buckets` steps is kept exactly.
class M4Reducer {
 public:
  M4Reducer(double x_lo, double x_hi, int buckets);

  void Add(double x, double y);
  std::vector<PlotPoint> Points() const;

 private:
  struct Bucket {
    int count = 0;
    PlotPoint first, min, max, last;
  };
  void Flush();

  double x_lo_;
  double x_hi_;
  int buckets_;
  long current_ = -1;
  Bucket bucket_;
  std::vector<PlotPoint> kept_;     // Previous columns.
  std::vector<PlotPoint> pending_;  // The current column's points while it has at most 4.
};

// M4 of a whole curve (points in increasing x).
std::vector<PlotPoint> DownsampleM4(std::span<const PlotPoint> points, double x_lo, double x_hi,
                                    int buckets);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_DOWNSAMPLE_H_
