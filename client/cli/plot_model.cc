#include "client/cli/plot_model.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "client/cli/json_io.h"

namespace hpsched::cli {

absl::string_view MarkKindName(MarkKind kind) {
  switch (kind) {
    case MarkKind::kMilestone:
      return "milestone";
    case MarkKind::kDecay:
      return "decay";
    case MarkKind::kRestart:
      return "restart";
    case MarkKind::kPhase:
      return "phase";
    case MarkKind::kUpdate:
      return "update";
    case MarkKind::kPlateauReduction:
      return "plateau";
  }
  return "mark";
}

bool ValueRange(const PlotPanel& panel, bool log, double* lo, double* hi) {
  bool any = false;
  for (const PlotSeries& series : panel.series) {
    for (const PlotPoint& p : series.points) {
      if (!std::isfinite(p.y) || (log && !(p.y > 0))) continue;
      if (!any || p.y < *lo) *lo = p.y;
      if (!any || p.y > *hi) *hi = p.y;
      any = true;
    }
  }
  return any;
}

std::string PlotToJson(const PlotModel& model) {
  std::string out = absl::StrCat("{\"title\":", JsonString(model.title),
                                 ",\"subtitle\":", JsonString(model.subtitle),
                                 ",\"x_label\":\"step\",\"x_min\":", JsonNumber(model.x_min),
                                 ",\"x_max\":", JsonNumber(model.x_max),
                                 ",\"log_y\":", model.log_y ? "true" : "false", ",\"panels\":[");
  for (size_t p = 0; p < model.panels.size(); ++p) {
    const PlotPanel& panel = model.panels[p];
    absl::StrAppend(&out, p == 0 ? "" : ",", "{\"y_label\":", JsonString(panel.y_label),
                    ",\"series\":[");
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const PlotSeries& series = panel.series[s];
      absl::StrAppend(&out, s == 0 ? "" : ",", "{\"label\":", JsonString(series.label),
                      ",\"hyperparameter\":", JsonString(series.hyperparameter),
                      ",\"group\":", series.group);
      if (std::isfinite(series.provisional_from)) {
        absl::StrAppend(&out, ",\"provisional_from\":", JsonNumber(series.provisional_from));
      }
      out += ",\"points\":[";
      for (size_t i = 0; i < series.points.size(); ++i) {
        absl::StrAppend(&out, i == 0 ? "[" : ",[", JsonNumber(series.points[i].x), ",",
                        JsonNumber(series.points[i].y), "]");
      }
      out += "]}";
    }
    out += "],\"marks\":[";
    for (size_t m = 0; m < panel.marks.size(); ++m) {
      const Mark& mark = panel.marks[m];
      absl::StrAppend(&out, m == 0 ? "" : ",", "{\"step\":", JsonNumber(mark.step),
                      ",\"kind\":", JsonString(MarkKindName(mark.kind)),
                      ",\"label\":", JsonString(mark.label), "}");
    }
    out += "]}";
  }
  out += "]}";
  return out;
}

}  // namespace hpsched::cli
