// Metrics that drive reduce_on_plateau schedules: what a job declares, what reporters sent, and the
// final prefix of the reports that evaluation may use.
#ifndef HPSCHED_CORE_METRIC_REPORTS_H_
#define HPSCHED_CORE_METRIC_REPORTS_H_

#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hpsched::core {

inline constexpr size_t kMaxMetrics = 16;
inline constexpr int64_t kMaxEverySteps = int64_t{1} << 40;
// Most reports kept per metric of a job.
inline constexpr size_t kMaxReportsPerMetric = 100'000;
// "No further report follows" (ReportMetricsRequest.next_step = -1).
inline constexpr int64_t kNoNextReport = -1;
// A step beyond every step: "every value is final".
inline constexpr int64_t kNeverPending = std::numeric_limits<int64_t>::max();

// When a metric's reports are expected: every `every_steps` steps (at the steps s with
// (s + 1) % every_steps == 0), or, when every_steps is 0, from `first_step` on at the steps each
// report announces. every_steps 0 with first_step -1 means no cadence was given (invalid).
struct MetricSpec {
  std::string name;
  int64_t every_steps = 0;
  int64_t first_step = 0;

  bool operator==(const MetricSpec&) const = default;
};

// One reported value. `next_step` is the announced next report (announced metrics only).
struct MetricReport {
  double value = 0;
  int64_t next_step = kNoNextReport;

  bool operator==(const MetricReport&) const = default;
};

// Every report of one metric, by step.
using MetricReports = std::map<int64_t, MetricReport>;

// The reports of one metric that evaluation uses: the expected reports, in step order, up to the
// first one that has not arrived (`pending_step`, kNeverPending when none is missing). The values
// of steps up to and including pending_step are final; later ones are provisional.
struct MetricTrack {
  std::vector<std::pair<int64_t, double>> reports;
  int64_t pending_step = kNeverPending;
};

// The tracks of a job's declared metrics, by name.
using MetricLog = std::map<std::string, MetricTrack, std::less<>>;

// Builds the track of `spec` from its reports.
MetricTrack BuildTrack(const MetricSpec& spec, const MetricReports& reports);

// Checks a job's metric declarations (distinct valid names, a valid cadence); errors are
// InvalidArgument naming `path`[i].
absl::Status CheckMetricSpecs(std::span<const MetricSpec> specs, absl::string_view path);

// Checks that a report of `spec` at `step` is expected there, given the reports so far: the cadence
// of every_steps, or an announced step. Errors are InvalidArgument naming `field`.
absl::Status CheckReportStep(const MetricSpec& spec, const MetricReports& reports, int64_t step,
                             absl::string_view field);

// `[A-Za-z_][A-Za-z0-9_./-]*`, 1 to 63 characters.
bool IsMetricName(absl::string_view name);

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_METRIC_REPORTS_H_
