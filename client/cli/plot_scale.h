// Axes of a plot: "nice" tick values (1-2-5 steps), their labels, and the mapping of data to [0,
// 1]. Pure functions, shared by the SVG and terminal renderers.
#ifndef HPSCHED_CLIENT_CLI_PLOT_SCALE_H_
#define HPSCHED_CLIENT_CLI_PLOT_SCALE_H_

#include <string>
#include <vector>

namespace hpsched::cli {

// The smallest number of the form {1, 2, 5} * 10^k that is >= `rough` (> 0).
double NiceStep(double rough);

// Multiples of a nice step inside [lo, hi], about `target` of them (at least 2 when lo < hi).
// Computed as k * step, so there is no accumulated rounding: 0.1 * 3 prints as 0.3.
std::vector<double> NiceTicks(double lo, double hi, int target, double* step = nullptr);

// The label of tick `value` on an axis whose ticks are `step` apart: just enough decimals to tell
// ticks apart ("0.05", "250"; "1.5e+07", "2e-05" when the numbers are very large or small).
std::string FormatTick(double value, double step);

// A numeric axis from `lo` to `hi`, linear or logarithmic (base 10).
struct Axis {
  double lo = 0;
  double hi = 1;
  bool log = false;
  std::vector<double> ticks;        // Inside [lo, hi], increasing.
  std::vector<std::string> labels;  // One per tick.

  // The position of `value` on the axis, 0 at lo and 1 at hi (outside [0, 1] when value is outside;
  // NaN for a value <= 0 on a log axis).
  double Fraction(double value) const;
};

// A linear axis over the data range [data_lo, data_hi] with about `target` ticks. With `pad`, the
// range grows to the enclosing ticks (so the curve never touches the frame unlabelled); a flat
// range (lo == hi) is widened around the value. `integer`: ticks are at least 1 apart (steps).
Axis LinearAxis(double data_lo, double data_hi, int target, bool pad, bool integer = false);

// A log10 axis over the positive data range [data_lo, data_hi] (data_lo > 0), padded to the
// enclosing ticks. Over at most two decades the ticks are the 1-2-5 multiples of powers of ten
// (0.01, 0.02, 0.05, 0.1); over more, powers of ten (every 10^k, k a multiple of a stride that
// keeps about `target` ticks).
Axis LogAxis(double data_lo, double data_hi, int target);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_PLOT_SCALE_H_
