// plot: a job's values (plot JOB_ID) or a spec's (plot --schedule), drawn on the terminal, written
// as SVG, or printed as JSON.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/commands.h"
#include "client/cli/downsample.h"
#include "client/cli/plot_marks.h"
#include "client/cli/plot_model.h"
#include "client/cli/series_io.h"
#include "client/cli/svg_plot.h"
#include "client/cli/terminal_plot.h"

namespace hpsched::cli {
namespace {

// Buckets of the plot data: ranges up to this many steps are kept exactly.
constexpr int kPlotBuckets = 4096;
// Longest range plot reads (it reads every step, so spikes are never missed).
constexpr int64_t kMaxPlotSteps = 10'000'000;

absl::Status CheckPlotRange(const StepRange& range) {
  if (range.count > kMaxPlotSteps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--steps: plot reads every step, at most ", kMaxPlotSteps));
  }
  return absl::OkStatus();
}

// Events of the job's history that become marks: the effective step of every UpdateJob segment and
// every plateau reduction.
std::vector<JobEvent> JobHistoryEvents(const v1::Job& job) {
  std::vector<JobEvent> events;
  for (const v1::Hyperparameter& hp : job.hyperparameters()) {
    for (const v1::Segment& segment : hp.segments()) {
      events.push_back(JobEvent{segment.effective_step(), MarkKind::kUpdate});
    }
    for (int64_t step : hp.plateau_reductions()) {
      events.push_back(JobEvent{step, MarkKind::kPlateauReduction});
    }
  }
  return events;
}

absl::StatusOr<PlotModel> JobPlot(client::Client* client, const std::string& job_id,
                                  StepRange range, const PlotOptions& options) {
  auto job = client->GetJob(job_id);
  if (!job.ok()) return job.status();
  std::vector<std::string> names;
  const std::string& filter = options.spec.hyperparameter;
  if (!filter.empty() && filter != "all") names = absl::StrSplit(filter, ',', absl::SkipEmpty());
  PlotModel model;
  model.title = options.title.empty() ? job->name() : options.title;
  model.subtitle = absl::StrCat("steps ", range.start, ":", range.start + range.count, ", version ",
                                job->version());
  model.x_min = static_cast<double>(range.start);
  model.x_max = static_cast<double>(range.start + range.count - 1);
  const double lo = model.x_min;
  const double hi = static_cast<double>(range.start + range.count);
  const std::vector<Mark> event_marks = EventMarks(JobHistoryEvents(*job), lo, hi);
  std::vector<M4Reducer> reducers;
  for (const auto& hp : job->hyperparameters()) {
    if (!names.empty() && std::find(names.begin(), names.end(), hp.name()) == names.end()) {
      continue;
    }
    PlotPanel panel;
    panel.y_label = hp.name();
    for (int g = 0; g < hp.base_values_size(); ++g) {
      panel.series.push_back({absl::StrCat(hp.name(), " group ", g), hp.name(), g, {}});
      reducers.emplace_back(model.x_min, model.x_max, kPlotBuckets);
    }
    panel.marks = MergeMarks(HyperparameterMarks(hp, lo, hi), event_marks);
    model.panels.push_back(std::move(panel));
  }
  // GetValues returns the series in the job's order of hyperparameters, then groups: the order of
  // the panels and their series. Unknown names are the server's INVALID_ARGUMENT.
  double provisional_from = INFINITY;
  auto status = ReadValues(
      client, job_id, names, range,
      [&](const v1::GetValuesResponse& r) {
        if (r.has_provisional_from()) {
          provisional_from = std::min(provisional_from, static_cast<double>(r.provisional_from()));
        }
        for (int s = 0; s < r.series_size() && s < static_cast<int>(reducers.size()); ++s) {
          for (int i = 0; i < r.series(s).values_size(); ++i) {
            reducers[s].Add(static_cast<double>(r.start_step() + i), r.series(s).values(i));
          }
        }
      },
      v1::PENDING_POLICY_PROVISIONAL_NOW);  // A running plateau job: draw what is known now.
  if (!status.ok()) return status;
  size_t s = 0;
  for (auto& panel : model.panels) {
    for (auto& series : panel.series) {
      series.points = reducers[s++].Points();
      series.provisional_from = provisional_from;
    }
  }
  return model;
}

absl::StatusOr<PlotModel> SpecPlot(client::Client* client, const PlotOptions& options) {
  auto args = ParseSpecArgs(options.spec);
  if (!args.ok()) return args.status();
  if (auto s = CheckPlotRange(args->range); !s.ok()) return s;
  const bool local = options.spec.local;
  PlotModel model;
  model.title = options.title.empty() ? ScheduleTitle(args->schedule) : options.title;
  std::vector<double> bases = args->bases;
  if (bases.empty()) bases.push_back(1.0);  // What Preview does.
  std::vector<std::string> base_text;
  for (double b : bases) base_text.push_back(absl::StrFormat("%g", b));
  model.subtitle =
      absl::StrCat("steps ", args->range.start, ":", args->range.start + args->range.count,
                   ", base ", absl::StrJoin(base_text, ", "), local ? " (local)" : "");
  model.x_min = static_cast<double>(args->range.start);
  model.x_max = static_cast<double>(args->range.start + args->range.count - 1);
  PlotPanel panel;
  panel.y_label = "value";
  std::vector<M4Reducer> reducers;
  for (size_t g = 0; g < bases.size(); ++g) {
    panel.series.push_back(
        {absl::StrCat("group ", g, " (base ", base_text[g], ")"), "", static_cast<int>(g), {}});
    reducers.emplace_back(model.x_min, model.x_max, kPlotBuckets);
  }
  panel.marks = ScheduleMarks(args->schedule, model.x_min, model.x_max + 1);
  auto status =
      EvaluateSpec(client, local, *args, [&](int64_t start, const v1::PreviewResponse& response) {
        for (int s = 0; s < response.series_size() && s < static_cast<int>(reducers.size()); ++s) {
          for (int i = 0; i < response.series(s).values_size(); ++i) {
            reducers[s].Add(static_cast<double>(start + i), response.series(s).values(i));
          }
        }
      });
  if (!status.ok()) return status;
  for (size_t g = 0; g < reducers.size(); ++g) panel.series[g].points = reducers[g].Points();
  model.panels.push_back(std::move(panel));
  return model;
}

int TerminalWidth() {
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  int columns = 0;
  if (const char* env = std::getenv("COLUMNS");
      env != nullptr && absl::SimpleAtoi(env, &columns) && columns > 0) {
    return columns;
  }
  return 80;
}

absl::StatusOr<bool> UseColor(const std::string& mode) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  if (mode != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("--color: must be auto, always or never, got \"", mode, "\""));
  }
  const char* term = std::getenv("TERM");
  return isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr &&
         !(term != nullptr && std::string(term) == "dumb");
}

absl::StatusOr<PlotModel> BuildPlot(client::Client* client, const std::string& job_id,
                                    const PlotOptions& options) {
  if (job_id.empty()) return SpecPlot(client, options);
  if (!options.spec.schedule.empty()) {
    return absl::InvalidArgumentError("plot: give a JOB_ID or --schedule, not both");
  }
  auto range = ParseStepRange("--steps", options.spec.steps);
  if (!range.ok()) return range.status();
  if (auto s = CheckPlotRange(*range); !s.ok()) return s;
  return JobPlot(client, job_id, *range, options);
}

// --svg FILE, or --svg=- for `output`.
absl::Status WriteSvg(const PlotModel& model, const PlotOptions& options, const Output& output) {
  SvgOptions svg_options;
  if (options.width > 0) svg_options.width = options.width;
  if (options.height > 0) svg_options.height = options.height;
  const std::string svg = RenderSvg(model, svg_options);
  if (options.svg == "-") {
    output.out->write(svg.data(), static_cast<std::streamsize>(svg.size()));
    return absl::OkStatus();
  }
  std::ofstream out(options.svg, std::ios::binary | std::ios::trunc);
  out << svg;
  out.close();
  if (!out) return absl::FailedPreconditionError(absl::StrCat("--svg: cannot write ", options.svg));
  if (!output.json) {
    // Say what was done; with --json stdout carries the plot's JSON only.
    PrintLine(output, absl::StrCat("wrote ", options.svg, " (", model.panels.size(),
                                   model.panels.size() == 1 ? " panel, " : " panels, ",
                                   model.subtitle, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Plot(client::Client* client, const std::string& job_id, const PlotOptions& options,
                  const Output& output) {
  if (options.width < 0 || options.height < 0) {
    return absl::InvalidArgumentError("--width, --height: must be >= 0 (0: the default)");
  }
  auto color = UseColor(options.color);
  if (!color.ok()) return color.status();
  absl::StatusOr<PlotModel> model = BuildPlot(client, job_id, options);
  if (!model.ok()) return model.status();
  model->log_y = options.log;
  if (!options.svg.empty()) {
    if (auto s = WriteSvg(*model, options, output); !s.ok()) return s;
  }
  if (output.json) {
    PrintLine(output, PlotToJson(*model));
  } else if (options.svg.empty()) {
    TerminalOptions terminal;
    terminal.width = options.width > 0 ? options.width : std::clamp(TerminalWidth(), 20, 400);
    if (options.height > 0) terminal.height = options.height;
    terminal.color = *color;
    const std::string text = RenderTerminal(*model, terminal);
    output.out->write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::cli
