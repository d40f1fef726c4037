#include "client/cli/terminal_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/cli/downsample.h"
#include "client/cli/plot_marks.h"
#include "client/cli/plot_scale.h"

namespace hpsched::cli {
namespace {

constexpr absl::string_view kColors[] = {"34", "33", "32", "31", "35",
                                         "36", "94", "93", "92", "95"};
constexpr absl::string_view kMarkColor = "90";
constexpr int kMaxLegendSeries = 12;
constexpr int kMaxListedMarks = 8;

absl::string_view ColorOf(int series) {
  constexpr int n = sizeof(kColors) / sizeof(kColors[0]);
  return kColors[series % n];
}

// The UTF-8 encoding of a code point below U+10000.
std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Dots of a braille cell, indexed [column][row].
constexpr uint8_t kDotBits[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};

class BrailleCanvas {
 public:
  BrailleCanvas(int cols, int rows)
      : cols_(cols), rows_(rows), bits_(cols * rows, 0), color_(cols * rows, -1) {}

  int dot_width() const { return cols_ * 2; }
  int dot_height() const { return rows_ * 4; }

  // color -1: a mark (grey); otherwise a series index. A series overrides a mark's colour.
  void Set(int x, int y, int color) {
    if (x < 0 || y < 0 || x >= dot_width() || y >= dot_height()) return;
    const int cell = (y / 4) * cols_ + x / 2;
    bits_[cell] |= kDotBits[x % 2][y % 4];
    if (color >= 0 || color_[cell] < 0) color_[cell] = color;
  }

  // `dotted`: only the dots with an even x + y (provisional values look sparse).
  void Line(int x0, int y0, int x1, int y1, int color, bool dotted = false) {
    const int dx = std::abs(x1 - x0);
    const int dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1;
    const int sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
      if (!dotted || (x0 + y0) % 2 == 0) Set(x0, y0, color);
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  // The cells of `row`, coloured with ANSI escapes when `color`.
  std::string Row(int row, bool color) const {
    std::string out;
    int open = -2;  // The colour of the current escape; -2: none.
    for (int c = 0; c < cols_; ++c) {
      const int cell = row * cols_ + c;
      const int want = bits_[cell] == 0 ? -2 : color_[cell];
      if (color && want != open) {
        if (open != -2) out += "\x1b[0m";
        if (want != -2) {
          absl::StrAppend(&out, "\x1b[", want < 0 ? kMarkColor : ColorOf(want), "m");
        }
        open = want;
      }
      out += bits_[cell] == 0 ? std::string(" ") : Utf8(0x2800 + bits_[cell]);
    }
    if (color && open != -2) out += "\x1b[0m";
    return out;
  }

 private:
  int cols_;
  int rows_;
  std::vector<uint8_t> bits_;
  std::vector<int> color_;
};

std::string PadLeft(absl::string_view s, size_t width) {
  return s.size() >= width ? std::string(s) : std::string(width - s.size(), ' ') + std::string(s);
}

std::string Colored(absl::string_view text, absl::string_view code, bool color) {
  if (!color) return std::string(text);
  return absl::StrCat("\x1b[", code, "m", text, "\x1b[0m");
}

std::string FormatValue(double v) {
  if (!std::isfinite(v)) return "nan";
  return absl::StrFormat("%.6g", v);
}

void RenderPanel(const PlotModel& model, const PlotPanel& panel, int first_color,
                 const TerminalOptions& options, std::string* out) {
  const int rows = std::max(options.height, 3);
  double lo = 0;
  double hi = 1;
  const bool has_values = ValueRange(panel, model.log_y, &lo, &hi);
  const int y_target = std::clamp(rows / 3, 2, 8);
  const Axis y_axis = model.log_y && has_values ? LogAxis(lo, hi, y_target)
                                                : LinearAxis(lo, hi, y_target, /*pad=*/true);
  size_t label_width = 1;
  for (const auto& label : y_axis.labels) label_width = std::max(label_width, label.size());
  const int cols = std::max(options.width, 20) - static_cast<int>(label_width) - 2;
  BrailleCanvas canvas(std::max(cols, 4), rows);
  const int canvas_cols = std::max(cols, 4);
  const int width = static_cast<int>(label_width) + 2 + canvas_cols;
  const Axis x_axis = LinearAxis(model.x_min, model.x_max, std::clamp(canvas_cols / 12, 2, 10),
                                 /*pad=*/false, true);

  auto dot_x = [&](double x) {
    return static_cast<int>(std::lround(x_axis.Fraction(x) * (canvas.dot_width() - 1)));
  };
  auto dot_y = [&](double f) {
    return static_cast<int>(std::lround((1 - f) * (canvas.dot_height() - 1)));
  };

  // Marks first (dotted), then the curves over them.
  std::vector<HiddenMarks> hidden;
  const std::vector<Mark> marks =
      DrawableMarks(panel.marks, x_axis.lo, x_axis.hi, canvas.dot_width(), 3, &hidden);
  for (const Mark& m : marks) {
    const int x = dot_x(m.step);
    for (int y = 0; y < canvas.dot_height(); y += 2) canvas.Set(x, y, -1);
  }
  for (size_t s = 0; s < panel.series.size(); ++s) {
    const auto points =
        DownsampleM4(panel.series[s].points, x_axis.lo, x_axis.hi, canvas.dot_width());
    bool have_previous = false;
    int px = 0;
    int py = 0;
    for (const PlotPoint& p : points) {
      const double f = y_axis.Fraction(p.y);
      if (!std::isfinite(f)) {
        have_previous = false;
        continue;
      }
      const int x = dot_x(p.x);
      const int y = dot_y(std::clamp(f, 0.0, 1.0));
      if (have_previous) {
        canvas.Line(px, py, x, y, first_color + static_cast<int>(s),
                    /*dotted=*/p.x >= panel.series[s].provisional_from);
      } else {
        canvas.Set(x, y, first_color + static_cast<int>(s));
      }
      px = x;
      py = y;
      have_previous = true;
    }
  }

  // The y label, then the canvas rows with tick labels.
  absl::StrAppend(out, panel.y_label.empty() ? "value" : panel.y_label, model.log_y ? " (log)" : "",
                  has_values ? "" : "  (no values to draw)", "\n");
  std::vector<std::string> row_labels(rows);
  for (size_t i = 0; i < y_axis.ticks.size(); ++i) {
    const double f = y_axis.Fraction(y_axis.ticks[i]);
    const int row = std::clamp(dot_y(f) / 4, 0, rows - 1);
    if (row_labels[row].empty()) row_labels[row] = y_axis.labels[i];
  }
  for (int r = 0; r < rows; ++r) {
    absl::StrAppend(out, PadLeft(row_labels[r], label_width), row_labels[r].empty() ? " │" : " ┤",
                    canvas.Row(r, options.color), "\n");
  }

  // The x axis: a tick where each x tick falls, then the labels centred under them.
  std::vector<int> tick_cols;
  for (double t : x_axis.ticks) tick_cols.push_back(dot_x(t) / 2);
  std::string axis = absl::StrCat(std::string(label_width + 1, ' '), "└");
  for (int c = 0; c < canvas_cols; ++c) {
    axis += std::find(tick_cols.begin(), tick_cols.end(), c) != tick_cols.end() ? "┬" : "─";
  }
  absl::StrAppend(out, axis, "\n");
  std::string labels(width, ' ');
  int used_until = -1;
  for (size_t i = 0; i < x_axis.ticks.size(); ++i) {
    const std::string& text = x_axis.labels[i];
    const int center = static_cast<int>(label_width) + 2 + tick_cols[i];
    int start = center - static_cast<int>(text.size()) / 2;
    start = std::clamp(start, 0, width - static_cast<int>(text.size()));
    if (start <= used_until + 1) continue;
    labels.replace(start, text.size(), text);
    used_until = start + static_cast<int>(text.size()) - 1;
  }
  if (used_until + 1 + 5 <= width - 1) {
    labels.replace(width - 4, 4, "step");
    absl::StrAppend(out, labels, "\n");
  } else {
    absl::StrAppend(out, labels, "\n", std::string(width - 4, ' '), "step\n");
  }

  // Legend: one line per series, then one per kind of mark.
  const size_t shown =
      panel.series.size() <= kMaxLegendSeries ? panel.series.size() : kMaxLegendSeries - 1;
  for (size_t s = 0; s < shown; ++s) {
    const PlotSeries& series = panel.series[s];
    double smin = 0;
    double smax = 0;
    bool any = false;
    for (const PlotPoint& p : series.points) {
      if (!std::isfinite(p.y)) continue;
      smin = any ? std::min(smin, p.y) : p.y;
      smax = any ? std::max(smax, p.y) : p.y;
      any = true;
    }
    absl::StrAppend(out, "  ",
                    Colored("━━", ColorOf(first_color + static_cast<int>(s)), options.color), " ",
                    series.label);
    if (any) absl::StrAppend(out, "  min ", FormatValue(smin), "  max ", FormatValue(smax));
    out->append("\n");
  }
  if (shown < panel.series.size()) {
    absl::StrAppend(out, "  +", panel.series.size() - shown, " more series\n");
  }
  for (int k = 0; k <= static_cast<int>(MarkKind::kPlateauReduction); ++k) {
    std::vector<std::string> steps;
    int count = 0;
    for (const Mark& m : marks) {
      if (static_cast<int>(m.kind) != k) continue;
      if (++count <= kMaxListedMarks) {
        steps.push_back(m.label == MarkKindName(m.kind)
                            ? FormatValue(m.step)
                            : absl::StrCat(FormatValue(m.step), " (", m.label, ")"));
      }
    }
    if (count == 0) continue;
    absl::StrAppend(out, "  ", Colored("┊ ", kMarkColor, options.color),
                    MarkKindName(static_cast<MarkKind>(k)), " at ", absl::StrJoin(steps, ", "),
                    count > kMaxListedMarks ? absl::StrCat(" ... (", count, " in all)") : "", "\n");
  }
  for (const HiddenMarks& h : hidden) {
    absl::StrAppend(out, "  ", h.count, " ", MarkKindName(h.kind),
                    " marks not drawn (too dense)\n");
  }
  double provisional_from = INFINITY;
  for (const PlotSeries& series : panel.series) {
    provisional_from = std::min(provisional_from, series.provisional_from);
  }
  if (provisional_from <= x_axis.hi) {
    absl::StrAppend(out, "  ⠁⠄ provisional from step ", FormatValue(provisional_from),
                    " (dotted: waits for metric reports)\n");
  }
}

}  // namespace

std::string RenderTerminal(const PlotModel& model, const TerminalOptions& options) {
  std::string out = model.title;
  if (!model.subtitle.empty()) absl::StrAppend(&out, "  ", model.subtitle);
  out += "\n";
  int color = 0;
  for (size_t p = 0; p < model.panels.size(); ++p) {
    if (p > 0) out += "\n";
    RenderPanel(model, model.panels[p], color, options, &out);
    color += static_cast<int>(model.panels[p].series.size());
  }
  return out;
}

}  // namespace hpsched::cli
