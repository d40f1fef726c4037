#include "client/cli/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/downsample.h"
#include "client/cli/plot_marks.h"
#include "client/cli/plot_scale.h"

namespace hpsched::cli {
namespace {

constexpr absl::string_view kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kMaxLegendSeries = 12;
constexpr int kLegendRow = 18;
constexpr double kCharWidth = 0.6;  // Of the font size: a generous estimate for sans-serif.

struct MarkStyle {
  absl::string_view color;
  absl::string_view dash;
};

MarkStyle StyleOf(MarkKind kind) {
  switch (kind) {
    case MarkKind::kMilestone:
      return {"#444444", "6 4"};
    case MarkKind::kDecay:
      return {"#999999", "3 3"};
    case MarkKind::kRestart:
      return {"#555555", "2 3"};
    case MarkKind::kPhase:
      return {"#777777", "8 3 2 3"};
    case MarkKind::kUpdate:
      return {"#cc0000", "6 4"};
    case MarkKind::kPlateauReduction:
      return {"#cc0000", "2 3"};
  }
  return {"#777777", "4 4"};
}

double TextWidth(absl::string_view text, double font_size) {
  return static_cast<double>(text.size()) * font_size * kCharWidth;
}

std::string Num(double v) {
  std::string s = absl::StrFormat("%.2f", v);
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

// A legend entry: a swatch (solid line for a series, dashed for a kind of mark) and its text.
struct LegendEntry {
  std::string text;
  std::string color;
  std::string dash;  // Empty for a solid line.
};

// Lays the entries out in rows of `width` pixels; returns each entry's (x, row).
std::vector<std::pair<double, int>> LayoutLegend(const std::vector<LegendEntry>& entries,
                                                 double width, int* rows) {
  std::vector<std::pair<double, int>> places;
  double x = 0;
  int row = 0;
  for (const LegendEntry& e : entries) {
    const double w = 28 + TextWidth(e.text, 12) + 18;
    if (x > 0 && x + w > width) {
      x = 0;
      ++row;
    }
    places.emplace_back(x, row);
    x += w;
  }
  *rows = entries.empty() ? 0 : row + 1;
  return places;
}

// The first step of the panel from which some series is provisional, if it is at most `x_hi`;
// infinity otherwise.
double ProvisionalFrom(const PlotPanel& panel, double x_hi) {
  double from = INFINITY;
  for (const PlotSeries& series : panel.series) from = std::min(from, series.provisional_from);
  return from <= x_hi ? from : INFINITY;
}

struct PanelBox {
  double top = 0;     // Of the panel.
  double height = 0;  // Of the panel.
};

void RenderPanel(const PlotModel& model, const PlotPanel& panel, int index, const PanelBox& box,
                 int width, int first_color, std::string* out) {
  // Axes first: the y tick labels decide the left margin.
  double lo = 0;
  double hi = 1;
  const bool has_values = ValueRange(panel, model.log_y, &lo, &hi);
  // Legend entries decide the bottom margin.
  std::vector<LegendEntry> legend;
  const int shown_series = static_cast<int>(panel.series.size()) <= kMaxLegendSeries
                               ? static_cast<int>(panel.series.size())
                               : kMaxLegendSeries - 1;
  for (int s = 0; s < shown_series; ++s) {
    legend.push_back({panel.series[s].label, std::string(SeriesColor(first_color + s)), ""});
  }
  if (shown_series < static_cast<int>(panel.series.size())) {
    legend.push_back(
        {absl::StrCat("+", panel.series.size() - shown_series, " more series"), "#ffffff", ""});
  }
  const double right = 24;
  const double top_margin = 24;

  const int plot_height_estimate = static_cast<int>(box.height) - 120;
  const int y_target = std::clamp(plot_height_estimate / 45, 3, 10);
  const Axis y_axis = model.log_y && has_values ? LogAxis(lo, hi, y_target)
                                                : LinearAxis(lo, hi, y_target, /*pad=*/true);
  size_t widest = 1;
  for (const auto& label : y_axis.labels) widest = std::max(widest, label.size());
  const double left = std::max(64.0, 34 + TextWidth(std::string(widest, '0'), 11) + 10);
  const double plot_left = left;
  const double plot_right = width - right;
  const double plot_width = std::max(10.0, plot_right - plot_left);

  const int x_target = std::clamp(static_cast<int>(plot_width / 90), 2, 12);
  const Axis x_axis = LinearAxis(model.x_min, model.x_max, x_target, /*pad=*/false, true);
  std::vector<HiddenMarks> hidden;
  const std::vector<Mark> marks =
      DrawableMarks(panel.marks, x_axis.lo, x_axis.hi, static_cast<int>(plot_width), 6, &hidden);
  bool kind_present[static_cast<int>(MarkKind::kPlateauReduction) + 1] = {};
  for (const Mark& m : marks) kind_present[static_cast<int>(m.kind)] = true;
  for (int k = 0; k <= static_cast<int>(MarkKind::kPlateauReduction); ++k) {
    const MarkKind kind = static_cast<MarkKind>(k);
    if (kind_present[k]) {
      const MarkStyle style = StyleOf(kind);
      legend.push_back(
          {std::string(MarkKindName(kind)), std::string(style.color), std::string(style.dash)});
    }
  }
  for (const HiddenMarks& h : hidden) {
    legend.push_back(
        {absl::StrCat(h.count, " ", MarkKindName(h.kind), " marks (too dense)"), "#ffffff", ""});
  }
  if (const double from = ProvisionalFrom(panel, x_axis.hi); std::isfinite(from)) {
    legend.push_back(
        {absl::StrCat("provisional from step ", FormatTick(from, 1), " (waits for metric reports)"),
         "#888888", "5 4"});
  }
  int legend_rows = 0;
  const auto places = LayoutLegend(legend, plot_width, &legend_rows);
  const double bottom = 48 + legend_rows * kLegendRow + 6;
  const double plot_top = box.top + top_margin;
  const double plot_bottom = std::max(plot_top + 40, box.top + box.height - bottom);
  const double plot_h = plot_bottom - plot_top;

  auto px = [&](double x) { return plot_left + x_axis.Fraction(x) * plot_width; };
  auto py = [&](double y) { return plot_bottom - y_axis.Fraction(y) * plot_h; };

  const std::string clip = absl::StrCat("plot-area-", index);
  absl::StrAppend(out, "<g class=\"panel\" id=\"panel-", index, "\">\n");
  absl::StrAppend(out, "<clipPath id=\"", clip, "\"><rect x=\"", Num(plot_left), "\" y=\"",
                  Num(plot_top - 1), "\" width=\"", Num(plot_width), "\" height=\"",
                  Num(plot_h + 2), "\"/></clipPath>\n");
  // Grid and ticks.
  absl::StrAppend(out, "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n");
  for (double t : y_axis.ticks) {
    absl::StrAppend(out, "<line x1=\"", Num(plot_left), "\" y1=\"", Num(py(t)), "\" x2=\"",
                    Num(plot_right), "\" y2=\"", Num(py(t)), "\"/>\n");
  }
  for (double t : x_axis.ticks) {
    absl::StrAppend(out, "<line x1=\"", Num(px(t)), "\" y1=\"", Num(plot_top), "\" x2=\"",
                    Num(px(t)), "\" y2=\"", Num(plot_bottom), "\"/>\n");
  }
  out->append("</g>\n");
  absl::StrAppend(out, "<g class=\"tick\" stroke=\"#333333\" stroke-width=\"1\">\n");
  for (double t : y_axis.ticks) {
    absl::StrAppend(out, "<line x1=\"", Num(plot_left - 5), "\" y1=\"", Num(py(t)), "\" x2=\"",
                    Num(plot_left), "\" y2=\"", Num(py(t)), "\"/>\n");
  }
  for (double t : x_axis.ticks) {
    absl::StrAppend(out, "<line x1=\"", Num(px(t)), "\" y1=\"", Num(plot_bottom), "\" x2=\"",
                    Num(px(t)), "\" y2=\"", Num(plot_bottom + 5), "\"/>\n");
  }
  out->append("</g>\n");
  absl::StrAppend(out, "<g class=\"tick-label\" font-size=\"11\" fill=\"#333333\">\n");
  for (size_t i = 0; i < y_axis.ticks.size(); ++i) {
    absl::StrAppend(out, "<text x=\"", Num(plot_left - 8), "\" y=\"", Num(py(y_axis.ticks[i])),
                    "\" dy=\"0.35em\" text-anchor=\"end\">", XmlEscape(y_axis.labels[i]),
                    "</text>\n");
  }
  for (size_t i = 0; i < x_axis.ticks.size(); ++i) {
    absl::StrAppend(out, "<text x=\"", Num(px(x_axis.ticks[i])), "\" y=\"", Num(plot_bottom + 18),
                    "\" text-anchor=\"middle\">", XmlEscape(x_axis.labels[i]), "</text>\n");
  }
  out->append("</g>\n");
  absl::StrAppend(out, "<text class=\"x-label\" x=\"", Num(plot_left + plot_width / 2), "\" y=\"",
                  Num(plot_bottom + 36),
                  "\" font-size=\"13\" text-anchor=\"middle\">step</text>\n");
  const double y_mid = plot_top + plot_h / 2;
  absl::StrAppend(out, "<text class=\"y-label\" x=\"16\" y=\"", Num(y_mid),
                  "\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 16 ",
                  Num(y_mid), ")\" dy=\"0.35em\">",
                  XmlEscape(panel.y_label.empty() ? "value" : panel.y_label),
                  model.log_y ? " (log)" : "", "</text>\n");

  // Marks, under the curves; labels above the frame where they do not overlap.
  double label_end = -1e9;
  for (const Mark& m : marks) {
    const MarkStyle style = StyleOf(m.kind);
    const double x = px(m.step);
    absl::StrAppend(out, "<line class=\"mark mark-", MarkKindName(m.kind), "\" x1=\"", Num(x),
                    "\" y1=\"", Num(plot_top), "\" x2=\"", Num(x), "\" y2=\"", Num(plot_bottom),
                    "\" stroke=\"", style.color, "\" stroke-width=\"1\" stroke-dasharray=\"",
                    style.dash, "\"><title>", XmlEscape(m.label), " at step ",
                    FormatTick(m.step, m.step == std::floor(m.step) ? 1 : 0.001),
                    "</title></line>\n");
    const double w = TextWidth(m.label, 10);
    if (x - w / 2 > label_end + 4 && x + w / 2 <= width - 2) {
      absl::StrAppend(out, "<text class=\"mark-label\" x=\"", Num(x), "\" y=\"", Num(plot_top - 5),
                      "\" font-size=\"10\" fill=\"", style.color, "\" text-anchor=\"middle\">",
                      XmlEscape(m.label), "</text>\n");
      label_end = x + w / 2;
    }
  }

  // Curves.
  absl::StrAppend(out, "<g clip-path=\"url(#", clip, ")\" fill=\"none\" stroke-width=\"1.8\" ",
                  "stroke-linejoin=\"round\" stroke-linecap=\"round\">\n");
  for (size_t s = 0; s < panel.series.size(); ++s) {
    const PlotSeries& series = panel.series[s];
    const std::string color(SeriesColor(first_color + static_cast<int>(s)));
    const std::vector<PlotPoint> points =
        DownsampleM4(series.points, x_axis.lo, x_axis.hi, static_cast<int>(std::ceil(plot_width)));
    // Final points solid; provisional ones (from provisional_from on) dashed and lighter, joined to
    // the last final point so the curve stays one line.
    std::vector<PlotPoint> final_points;
    std::vector<PlotPoint> provisional_points;
    for (const PlotPoint& p : points) {
      if (p.x < series.provisional_from) {
        final_points.push_back(p);
      } else {
        if (provisional_points.empty() && !final_points.empty()) {
          provisional_points.push_back(final_points.back());
        }
        provisional_points.push_back(p);
      }
    }
    for (const bool provisional : {false, true}) {
      const std::vector<PlotPoint>& part = provisional ? provisional_points : final_points;
      const std::string cls = provisional ? "series provisional" : "series";
      const std::string style =
          provisional ? " stroke-dasharray=\"5 4\" stroke-opacity=\"0.55\"" : "";
      std::vector<std::string> segments;
      std::string current;
      int in_current = 0;
      auto close = [&] {
        if (in_current > 0) segments.push_back(current);
        current.clear();
        in_current = 0;
      };
      for (const PlotPoint& p : part) {
        const double fy = y_axis.Fraction(p.y);
        if (!std::isfinite(fy) || !std::isfinite(p.y)) {
          close();
          continue;
        }
        absl::StrAppend(&current, in_current == 0 ? "" : " ", Num(px(p.x)), ",", Num(py(p.y)));
        ++in_current;
      }
      close();
      for (const std::string& segment : segments) {
        if (segment.find(' ') == std::string::npos) {  // A lone point.
          const size_t comma = segment.find(',');
          absl::StrAppend(out, "<circle class=\"", cls, "\" data-series=\"", s, "\" cx=\"",
                          segment.substr(0, comma), "\" cy=\"", segment.substr(comma + 1),
                          "\" r=\"2\" fill=\"", color, "\" stroke=\"none\"",
                          provisional ? " fill-opacity=\"0.55\"" : "", "/>\n");
          continue;
        }
        absl::StrAppend(out, "<polyline class=\"", cls, "\" data-series=\"", s, "\" stroke=\"",
                        color, "\"", style, " points=\"", segment, "\"><title>",
                        XmlEscape(series.label), provisional ? " (provisional)" : "",
                        "</title></polyline>\n");
      }
    }
  }
  out->append("</g>\n");
  absl::StrAppend(out, "<rect class=\"frame\" x=\"", Num(plot_left), "\" y=\"", Num(plot_top),
                  "\" width=\"", Num(plot_width), "\" height=\"", Num(plot_h),
                  "\" fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>\n");
  if (!has_values) {
    absl::StrAppend(out, "<text x=\"", Num(plot_left + plot_width / 2), "\" y=\"", Num(y_mid),
                    "\" font-size=\"13\" fill=\"#999999\" text-anchor=\"middle\">",
                    "no values to draw</text>\n");
  }

  // Legend, under the x label.
  absl::StrAppend(out, "<g class=\"legend\" font-size=\"12\" fill=\"#222222\">\n");
  const double legend_top = plot_bottom + 52;
  for (size_t i = 0; i < legend.size(); ++i) {
    const LegendEntry& e = legend[i];
    const double x = plot_left + places[i].first;
    const double y = legend_top + places[i].second * kLegendRow;
    if (e.color != "#ffffff") {
      absl::StrAppend(
          out, "<line x1=\"", Num(x), "\" y1=\"", Num(y), "\" x2=\"", Num(x + 22), "\" y2=\"",
          Num(y), "\" stroke=\"", e.color, "\" stroke-width=\"", e.dash.empty() ? "2.5" : "1.5",
          "\"", e.dash.empty() ? "" : absl::StrCat(" stroke-dasharray=\"", e.dash, "\""), "/>\n");
    }
    absl::StrAppend(out, "<text x=\"", Num(x + 28), "\" y=\"", Num(y), "\" dy=\"0.35em\">",
                    XmlEscape(e.text), "</text>\n");
  }
  out->append("</g>\n</g>\n");
}

}  // namespace

absl::string_view SeriesColor(int index) {
  constexpr int n = sizeof(kPalette) / sizeof(kPalette[0]);
  return kPalette[((index % n) + n) % n];
}

std::string XmlEscape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0; tab and newline are.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

std::string RenderSvg(const PlotModel& model, const SvgOptions& options) {
  const int width = std::max(options.width, 200);
  const bool has_subtitle = !model.subtitle.empty();
  const double header = has_subtitle ? 58 : 42;
  const size_t panels = std::max<size_t>(1, model.panels.size());
  const double panel_height =
      std::max<double>(kMinPanelHeight, (std::max(options.height, 200) - header) / panels);
  const int height = static_cast<int>(std::ceil(header + panel_height * panels));

  std::string out = absl::StrCat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n",
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", width, "\" height=\"", height,
      "\" viewBox=\"0 0 ", width, " ", height,
      "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n", "<title>",
      XmlEscape(model.title), "</title>\n",
      "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", "<text class=\"title\" x=\"",
      Num(width / 2.0),
      "\" y=\"26\" font-size=\"17\" font-weight=\"bold\" text-anchor=\"middle\" fill=\"#111111\">",
      XmlEscape(model.title), "</text>\n");
  if (has_subtitle) {
    absl::StrAppend(&out, "<text class=\"subtitle\" x=\"", Num(width / 2.0),
                    "\" y=\"45\" font-size=\"12\" text-anchor=\"middle\" fill=\"#555555\">",
                    XmlEscape(model.subtitle), "</text>\n");
  }
  int color = 0;
  for (size_t p = 0; p < model.panels.size(); ++p) {
    RenderPanel(model, model.panels[p], static_cast<int>(p),
                PanelBox{header + panel_height * p, panel_height}, width, color, &out);
    color += static_cast<int>(model.panels[p].series.size());
  }
  out += "</svg>\n";
  return out;
}

}  // namespace hpsched::cli
