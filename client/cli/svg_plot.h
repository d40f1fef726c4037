// A plot as an SVG document: a pure function of the data, no I/O.
#ifndef HPSCHED_CLIENT_CLI_SVG_PLOT_H_
#define HPSCHED_CLIENT_CLI_SVG_PLOT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "client/cli/plot_model.h"

namespace hpsched::cli {

struct SvgOptions {
  // Size of the figure in pixels. With several panels, each gets at least kMinPanelHeight and the
  // figure grows taller than `height` if needed.
  int width = 900;
  int height = 560;
};
inline constexpr int kMinPanelHeight = 320;

// The figure: the title (and subtitle) on top, then per panel a frame with grid lines, ticks at
// nice values and their labels, "step" under the x axis, the panel's y label along the y axis, one
// polyline per series (M4-downsampled to one column per pixel, split where a log axis cannot show a
// value; the provisional tail of a series, from PlotSeries.provisional_from, dashed and lighter, in
// class "series provisional"), a vertical dashed line per mark with its label above the frame, and
// a legend naming each series, each kind of mark and the provisional values. Elements carry classes
// for tools and tests: title, subtitle, panel, frame, grid, tick, tick-label, x-label, y-label,
// series, provisional, mark, mark-label, legend.
std::string RenderSvg(const PlotModel& model, const SvgOptions& options);

// `text` with &, <, >, " and ' replaced by entities.
std::string XmlEscape(absl::string_view text);

// The colour of series `index`: matplotlib's tab10, then again.
absl::string_view SeriesColor(int index);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_SVG_PLOT_H_
