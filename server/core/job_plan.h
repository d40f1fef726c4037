// A job's spec compiled once into an evaluation plan: one Node per (hyperparameter, parameter
// group).
#ifndef HPSCHED_CORE_JOB_PLAN_H_
#define HPSCHED_CORE_JOB_PLAN_H_

#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/metric_reports.h"
#include "core/node.h"
#include "core/plateau_state.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

inline constexpr size_t kMaxHyperparameters = 64;
inline constexpr size_t kMaxGroups = 1024;
inline constexpr size_t kMaxLabels = 64;
// Most names one read may list in `hyperparameters` (duplicates included).
inline constexpr size_t kMaxSelectedNames = 1024;

// Indices into JobPlan::series(), increasing. A read of a job with up to kInlineSeries series (most
// jobs have one) holds them without touching the heap: the count-1 GetValues path allocates
// nothing of its own below the service.
inline constexpr size_t kInlineSeries = 4;
using SeriesSelection = absl::InlinedVector<size_t, kInlineSeries>;

// What a series' values need from metric reports (reduce_on_plateau): held only by the series
// that have some, so that a series of a closed-form schedule costs no empty vectors (issue 11: 10^6
// jobs).
struct SeriesReports {
  // The metrics the series' values depend on.
  std::vector<std::string> metrics;
  // Which steps depend on which reports (Node::AddReportDependences over every step): a step
  // outside every one of them is final whatever reports are missing.
  std::vector<ReportDependence> dependences;
  // The state of every reduce_on_plateau schedule of the series, by key (see PlateauStates).
  PlateauStates plateaus;
};

// The compiled schedule of one hyperparameter for one parameter group.
struct SeriesPlan {
  std::string hyperparameter;
  int group = 0;
  NodePtr node;
  // Null when the series depends on no report (its SeriesReports would be empty).
  std::unique_ptr<const SeriesReports> reports;

  // The parts of `reports`, empty when it is null.
  const std::vector<ReportDependence>& dependences() const;
  const PlateauStates& plateaus() const;

  // The steps at which a reduce_on_plateau schedule lowered the series' value, increasing: its
  // reductions that show (one after its schedule stopped applying, under a later `sequential`
  // child or segment, changes nothing). O(reductions).
  std::vector<int64_t> reduction_steps() const;
};

// Immutable once compiled; shared between the job table and in-flight reads.
class JobPlan {
 public:
  // Validates `spec` (hyperparameter names, base values, labels and every schedule) and compiles
  // it. Errors are InvalidArgument naming the field under `path`
  // ("job.hyperparameters[0].schedule.step.step_size: must be > 0, got -1"). On success, series()
  // lists hyperparameters in spec order, then groups.
  // `metrics` are the job's metric reports (see MetricLog); null means none have arrived.
  // `previous`, the plan of the job before this change (same hyperparameters and groups), lets
  // each reduce_on_plateau schedule resume from its state there: a compile then costs what the
  // spec costs plus the reports `previous` had not taken, however many it had (values identical to
  // a compile without it).
  // Budgets::kEnforce (CreateJob, UpdateJob) first checks the spec's cost (core/spec_cost.h);
  // Budgets::kAccepted recompiles a spec the server has already accepted (a stored job at start,
  // a metric report), under the rules it was accepted with, so that a stricter budget never
  // makes a stored job unloadable.
  enum class Budgets { kEnforce, kAccepted };
  static absl::StatusOr<std::shared_ptr<const JobPlan>> Compile(const JobSpec& spec,
                                                                absl::string_view path,
                                                                const MetricLog* metrics = nullptr,
                                                                Budgets budgets = Budgets::kEnforce,
                                                                const JobPlan* previous = nullptr);

  std::span<const SeriesPlan> series() const { return {series_.data(), series_.size()}; }

  // The first step in [start, end) whose value, in any of the `selected` series, is provisional: it
  // depends on a metric report that has not arrived (see ReportDependence). kNeverPending when
  // every value there is final, e.g. a warmup before the `sequential` milestone where a
  // reduce_on_plateau takes over.
  int64_t ProvisionalFrom(std::span<const size_t> selected, int64_t start = 0,
                          int64_t end = kStepLimit) const;

  // The global steps at which reduce_on_plateau schedules reduce a value, increasing, distinct
  // (whether or not the reduction shows in its series). O(reductions).
  std::vector<int64_t> reduction_steps() const;
  // Whether one of them is `step`. O(plateau schedules x log reductions).
  bool HasReductionAt(int64_t step) const;
  // The reduction steps that reports this compile took produced (reports `previous` had not taken;
  // every report without `previous`), increasing, distinct.
  const std::vector<int64_t>& new_reduction_steps() const;

  // The tracks the plan was compiled with, one per declared metric: the start of the next plan's
  // (ExtendTrack), copied in O(1).
  const MetricLog& metrics() const;

  // Sets `*selected` to the indices into series() of the named hyperparameters, every group of
  // each, in the order of the job, each once however often it is named; all series when `names`
  // is empty. InvalidArgument naming `path`[i] for a name the job does not have, or `path` for
  // more than kMaxSelectedNames names; `*selected` is then empty. The caller's selection is
  // filled in place (the read path's lives in its plan) rather than returned, so that a read's
  // selection is never moved; it allocates only beyond kInlineSeries series, and only errors
  // build strings. O(series + names x hyperparameters).
  absl::Status Select(std::span<const std::string> names, absl::string_view path,
                      SeriesSelection* selected) const;

 private:
  // The parts of a plan that only jobs declaring metrics have, allocated only for them.
  struct Reports {
    // Per metric the job declares (at most kMaxMetrics), the step of its first missing expected
    // report.
    std::vector<std::pair<std::string, int64_t>> pending_steps;
    std::vector<int64_t> new_reduction_steps;
    MetricLog metrics;
  };

  // Most jobs schedule one hyperparameter for one group: its series lives in the plan itself.
  absl::InlinedVector<SeriesPlan, 1> series_;
  // Null for a job that declares no metrics (most jobs): 8 bytes, not ~100 of empty containers.
  std::unique_ptr<const Reports> reports_;
};

// Checks one hyperparameter's base values: 1 to kMaxGroups finite numbers. InvalidArgument names
// `path`.
absl::Status CheckBaseValues(std::span<const double> values, absl::string_view path);

// Compiles a schedule that is not part of a job (Preview), or one hyperparameter of a job, one node
// per base value, for the hyperparameter named `hyperparameter` (see CompileContext). Errors name
// fields under `path`.
absl::StatusOr<std::vector<NodePtr>> CompileStandalone(const ScheduleSpec& schedule,
                                                       std::span<const double> base_values,
                                                       absl::string_view path,
                                                       absl::string_view hyperparameter = "lr");

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_JOB_PLAN_H_
