// A plot as text for a terminal: Unicode braille dots (2 x 4 per character cell), box-drawing axes,
// optional ANSI colours. A pure function of the data, no I/O.
#ifndef HPSCHED_CLIENT_CLI_TERMINAL_PLOT_H_
#define HPSCHED_CLIENT_CLI_TERMINAL_PLOT_H_

#include <string>

#include "client/cli/plot_model.h"

namespace hpsched::cli {

struct TerminalOptions {
  // Columns of every axis and canvas line (y labels included); at least 20.
  int width = 80;
  // Rows of each panel's canvas (without the axis and legend lines); at least 3.
  int height = 16;
  // ANSI colours: one per series, grey marks.
  bool color = false;
};

// Per figure a title line; per panel the y label line, `height` canvas rows with y tick labels on
// the left ("0.05 ┤"), the x axis ("└──┬──") and its step labels with "step" at the right end (on a
// line of its own when the labels leave no room), then a legend line per series ("━━ lr group 0
// min 0.0125  max 0.1") and a line per kind of mark with its steps. Every canvas and axis line is
// exactly `width` columns wide. Curves are M4-downsampled to one column of dots each and joined dot
// to dot, with every other dot only from a series' provisional_from on (and a legend line saying
// from which step values are provisional); marks are dotted vertical lines.
std::string RenderTerminal(const PlotModel& model, const TerminalOptions& options);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_TERMINAL_PLOT_H_
