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
#include "core/shared_log.h"

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

// Every report of one metric, by step: the plain form (tests, the reference replay).
using MetricReports = std::map<int64_t, MetricReport>;

// Every report of one metric, in the order they were added, as a job's record holds them: copies
// in O(1), adds and finds a step in O(1) amortized (core/shared_log.h), whatever the number of
// reports. Equality compares the reports by step, not their order.
class MetricHistory {
 public:
  struct Entry {
    int64_t step = 0;
    MetricReport report;
  };

  MetricHistory() = default;
  MetricHistory(std::initializer_list<std::pair<const int64_t, MetricReport>> reports);
  explicit MetricHistory(const MetricReports& reports);

  size_t size() const { return log_.size(); }
  bool empty() const { return log_.empty(); }
  // The i-th report added; requires i < size().
  const Entry& operator[](size_t i) const { return log_[i]; }
  // The report at `step`, or null.
  const MetricReport* Find(int64_t step) const;
  // Adds a report at a step this history does not hold.
  void Add(int64_t step, const MetricReport& report);
  // See SharedLog::lineage: a history with the same lineage as one written before holds those
  // reports as its first ones.
  uint64_t lineage() const { return log_.lineage(); }

  MetricReports ToMap() const;
  bool operator==(const MetricHistory& other) const;

 private:
  SharedLog<Entry> log_;
};

// The reports of one metric that evaluation uses: the expected reports, in step order, up to the
// first one that has not arrived (`pending_step`, kNeverPending when none is missing). The values
// of steps up to and including pending_step are final; later ones are provisional. Copies in O(1);
// grows by ExtendTrack.
struct MetricTrack {
  SharedLog<std::pair<int64_t, double>> reports;
  int64_t pending_step = kNeverPending;
};

// The tracks of a job's declared metrics, by name.
using MetricLog = std::map<std::string, MetricTrack, std::less<>>;

// Builds the track of `spec` from its reports (every report: O(reports)).
MetricTrack BuildTrack(const MetricSpec& spec, const MetricReports& reports);
MetricTrack BuildTrack(const MetricSpec& spec, const MetricHistory& reports);
// Extends `track`, built from earlier reports of `spec`, with the expected reports of `reports`
// (which holds those earlier ones) that follow it: O(1) amortized per report taken. `track` from a
// default MetricTrack (pending_step kNeverPending) takes nothing; BuildTrack starts one.
void ExtendTrack(const MetricSpec& spec, const MetricHistory& reports, MetricTrack* track);

// Checks a job's metric declarations (distinct valid names, a valid cadence); errors are
// InvalidArgument naming `path`[i].
absl::Status CheckMetricSpecs(std::span<const MetricSpec> specs, absl::string_view path);

// Checks that a report of `spec` at `step` is expected there, given the reports so far: the cadence
// of every_steps, or an announced step. Errors are InvalidArgument naming `field`.
absl::Status CheckReportStep(const MetricSpec& spec, const MetricReports& reports, int64_t step,
                             absl::string_view field);
// The same check in O(1), from the metric's track, for a step not reported yet: reports are taken
// only at expected steps, so an announced metric's reports form one chain from first_step, and the
// one step announced and not reported is the track's pending step.
absl::Status CheckReportStep(const MetricSpec& spec, const MetricTrack& track, int64_t step,
                             absl::string_view field);

// `[A-Za-z_][A-Za-z0-9_./-]*`, 1 to 63 characters.
bool IsMetricName(absl::string_view name);

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_METRIC_REPORTS_H_
