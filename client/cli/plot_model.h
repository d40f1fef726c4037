// The data of a plot, independent of how it is drawn: what `hpsched plot` fetches (from GetValues,
// Preview or the in-process core) and what the SVG, terminal and JSON renderers draw. Pure data.
#ifndef HPSCHED_CLIENT_CLI_PLOT_MODEL_H_
#define HPSCHED_CLIENT_CLI_PLOT_MODEL_H_

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace hpsched::cli {

// One point of a curve: x is the step, y the value.
struct PlotPoint {
  double x = 0;
  double y = 0;

  bool operator==(const PlotPoint&) const = default;
};

// One curve: the values of one hyperparameter for one parameter group, in increasing x.
struct PlotSeries {
  std::string label;           // "lr group 0" (job) or "group 0 (base 0.1)" (spec).
  std::string hyperparameter;  // Empty for a spec.
  int group = 0;
  std::vector<PlotPoint> points;
  // The points at x >= provisional_from wait for metric reports
  // (GetValuesResponse.provisional_from) and may still change: renderers draw them distinctly
  // (dashed and lighter in SVG, sparse dots on the terminal) and name them in the legend. Infinity
  // when every point is final.
  double provisional_from = INFINITY;
};

// What a vertical marker stands for.
enum class MarkKind {
  kMilestone,  // sequential: the next schedule starts; multi_step: a decay milestone.
  kDecay,      // step: a multiple of step_size.
  kRestart,    // cosine_annealing_warm_restarts: a new cycle starts.
  kPhase,  // one_cycle / cyclic phase ends, the end of linear/constant/polynomial, cosine t_max.
  // Events of a job's history rather than its spec (see EventMarks in plot_marks.h).
  kUpdate,            // The job's spec was updated, taking effect at this step.
  kPlateauReduction,  // reduce_on_plateau lowered the value at this step.
};

// "milestone", "decay", "restart", "phase", "update", "plateau".
absl::string_view MarkKindName(MarkKind kind);

// A vertical marker at `step` (fractional for cyclic and one_cycle phases that end between steps).
struct Mark {
  double step = 0;
  MarkKind kind = MarkKind::kMilestone;
  std::string label;  // Short text drawn next to the marker: "milestone", "restart", "peak".

  bool operator==(const Mark&) const = default;
};

// One chart: the series of one hyperparameter (a job) or of a spec, on one y axis.
struct PlotPanel {
  std::string y_label;  // The hyperparameter's name, or "value".
  std::vector<PlotSeries> series;
  std::vector<Mark> marks;  // Sorted by step, one per step.
};

// A figure: one panel per hyperparameter, sharing the x range [x_min, x_max] (steps).
struct PlotModel {
  std::string title;     // The job's name, or the schedule's kind.
  std::string subtitle;  // "steps 0:1000, version 3".
  double x_min = 0;
  double x_max = 0;
  bool log_y = false;
  std::vector<PlotPanel> panels;
};

// The range of the panel's finite values (only the positive ones when `log`). False when there is
// none.
bool ValueRange(const PlotPanel& panel, bool log, double* lo, double* hi);

// The plot as one JSON object (one line): title, subtitle, x range, log, and per panel the y label,
// the series with their points as [step, value] pairs (and "provisional_from" when some are
// provisional), and the marks. Non-finite values are null.
std::string PlotToJson(const PlotModel& model);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_PLOT_MODEL_H_
