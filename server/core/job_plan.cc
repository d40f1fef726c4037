#include "core/job_plan.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/compile_cache.h"
#include "core/history.h"
#include "core/kind_registry.h"
#include "core/params.h"
#include "core/spec_cost.h"
#include "core/status_macros.h"

namespace hpsched::core {
namespace {

absl::Status Invalid(absl::string_view path, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", rule));
}

// `[A-Za-z_][A-Za-z0-9_.-]*`, 1 to 63 characters.
bool IsHyperparameterName(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!absl::ascii_isalpha(name[0]) && name[0] != '_') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// `[a-z][a-z0-9_-]*`, 1 to 63 characters.
bool IsLabelKey(absl::string_view key) {
  if (key.empty() || key.size() > 63 || !absl::ascii_islower(key[0])) return false;
  for (char c : key) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '_' && c != '-') return false;
  }
  return true;
}

absl::Status CheckLabels(const Labels& labels, absl::string_view path) {
  if (labels.size() > kMaxLabels) {
    return Invalid(path,
                   absl::StrCat("must have at most ", kMaxLabels, " labels, got ", labels.size()));
  }
  for (const auto& [key, value] : labels) {
    if (!IsLabelKey(key)) {
      return Invalid(absl::StrCat(path, "[\"", absl::CHexEscape(key.substr(0, 64)), "\"]"),
                     "key must match [a-z][a-z0-9_-]* and be at most 63 characters");
    }
    if (value.size() > 63) {
      return Invalid(absl::StrCat(path, "[\"", key, "\"]"),
                     absl::StrCat("value must be at most 63 characters, got ", value.size()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const JobPlan>> JobPlan::Compile(const JobSpec& spec,
                                                                absl::string_view path,
                                                                const MetricLog* metrics,
                                                                Budgets budgets,
                                                                const JobPlan* previous) {
  const std::string hps_path = absl::StrCat(path, ".hyperparameters");
  if (spec.hyperparameters.empty())
    return Invalid(hps_path, "must have at least one hyperparameter");
  if (spec.hyperparameters.size() > kMaxHyperparameters) {
    return Invalid(hps_path, absl::StrCat("must have at most ", kMaxHyperparameters, ", got ",
                                          spec.hyperparameters.size()));
  }
  RETURN_IF_ERROR(CheckLabels(spec.labels, absl::StrCat(path, ".labels")));
  RETURN_IF_ERROR(CheckMetricSpecs(spec.metrics, absl::StrCat(path, ".metrics")));
  // Every declared metric has a track, empty until reports arrive.
  MetricLog log;
  for (const MetricSpec& metric : spec.metrics) {
    auto found = metrics != nullptr ? metrics->find(metric.name) : MetricLog::const_iterator();
    log[metric.name] = metrics != nullptr && found != metrics->end()
                           ? found->second
                           : BuildTrack(metric, MetricReports());
  }
  // What the whole job costs, before any of it is compiled.
  SpecCost cost;
  for (const HyperparameterSpec& hp : spec.hyperparameters) AddHyperparameterCost(hp, &cost);
  if (budgets == Budgets::kEnforce) {
    RETURN_IF_ERROR(CheckSpecCost(cost, hps_path));
  } else {
    cost.multiplicative_groups = 0;  // Each multiplicative schedule's own budget, as before.
  }
  auto plan = std::make_shared<JobPlan>();
  auto reports = std::make_unique<Reports>();
  for (const auto& [name, track] : log)
    reports->pending_steps.emplace_back(name, track.pending_step);
  std::set<int64_t> new_reductions;
  std::set<absl::string_view> names;
  for (size_t h = 0; h < spec.hyperparameters.size(); ++h) {
    const HyperparameterSpec& hp = spec.hyperparameters[h];
    const std::string hp_path = absl::StrCat(hps_path, "[", h, "]");
    if (!IsHyperparameterName(hp.name)) {
      return Invalid(
          absl::StrCat(hp_path, ".name"),
          absl::StrCat("must match [A-Za-z_][A-Za-z0-9_.-]* and be 1 to 63 characters, got \"",
                       absl::CHexEscape(hp.name.substr(0, 64)), "\""));
    }
    if (!names.insert(hp.name).second) {
      return Invalid(absl::StrCat(hp_path, ".name"),
                     absl::StrCat("must be unique, \"", hp.name, "\" appears twice"));
    }
    RETURN_IF_ERROR(CheckBaseValues(hp.base_values, absl::StrCat(hp_path, ".base_values")));
    // One cache per hyperparameter: its groups share what does not depend on the group.
    CompileCache cache;
    for (size_t g = 0; g < hp.base_values.size(); ++g) {
      CompileNotes notes;
      CompileContext context;
      if (hp.base_values.size() > 1) context.cache = &cache;
      context.multiplicative_groups = cost.multiplicative_groups;
      context.path = hp_path;
      context.base = hp.base_values[g];
      context.group = static_cast<int>(g);
      context.num_groups = static_cast<int>(hp.base_values.size());
      context.hyperparameter = hp.name;
      context.metrics = &log;
      context.notes = &notes;
      // The same series of the previous plan (series are listed by hyperparameter, then group).
      const size_t index = plan->series_.size();
      if (previous != nullptr && index < previous->series_.size() &&
          previous->series_[index].hyperparameter == hp.name &&
          previous->series_[index].group == static_cast<int>(g)) {
        context.previous_plateaus = &previous->series_[index].plateaus();
      }
      ASSIGN_OR_RETURN(NodePtr node, CompileHistory(hp, context));
      new_reductions.insert(notes.new_reduction_steps.begin(), notes.new_reduction_steps.end());
      // Sorted by key for the next compile's lookups; a key compiled twice keeps its first state
      // (a later compile checks a state's inputs before it resumes from it).
      std::stable_sort(notes.plateaus.begin(), notes.plateaus.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      notes.plateaus.erase(
          std::unique(notes.plateaus.begin(), notes.plateaus.end(),
                      [](const auto& a, const auto& b) { return a.first == b.first; }),
          notes.plateaus.end());
      std::vector<ReportDependence> dependences;
      node->AddReportDependences(0, kStepLimit, 0, &dependences);
      std::unique_ptr<const SeriesReports> series_reports;
      if (!notes.metrics.empty() || !dependences.empty() || !notes.plateaus.empty()) {
        series_reports = std::make_unique<const SeriesReports>(
            SeriesReports{{notes.metrics.begin(), notes.metrics.end()},
                          std::move(dependences),
                          std::move(notes.plateaus)});
      }
      plan->series_.push_back(
          SeriesPlan{hp.name, static_cast<int>(g), std::move(node), std::move(series_reports)});
    }
  }
  reports->new_reduction_steps.assign(new_reductions.begin(), new_reductions.end());
  reports->metrics = std::move(log);
  if (!reports->pending_steps.empty() || !reports->new_reduction_steps.empty() ||
      !reports->metrics.empty()) {
    plan->reports_ = std::move(reports);
  }
  return plan;
}

namespace {

// Every reduction of `plateaus`, as global steps, increasing, distinct.
void AddReductionSteps(const PlateauStates& plateaus, std::set<int64_t>* steps) {
  for (const auto& [key, state] : plateaus) {
    for (size_t i = 0; i < state->reductions.size(); ++i) {
      steps->insert(state->reductions[i].first + state->time_offset);
    }
  }
}

}  // namespace

const std::vector<ReportDependence>& SeriesPlan::dependences() const {
  static const auto* const kNone = new std::vector<ReportDependence>();
  return reports != nullptr ? reports->dependences : *kNone;
}

const PlateauStates& SeriesPlan::plateaus() const {
  static const auto* const kNone = new PlateauStates();
  return reports != nullptr ? reports->plateaus : *kNone;
}

std::vector<int64_t> SeriesPlan::reduction_steps() const {
  std::set<int64_t> all;
  AddReductionSteps(plateaus(), &all);
  std::vector<int64_t> shown;
  for (int64_t step : all) {
    double around[2];
    node->Evaluate(step - 1, std::span<double>(around, 2));
    if (around[0] != around[1]) shown.push_back(step);
  }
  return shown;
}

std::vector<int64_t> JobPlan::reduction_steps() const {
  std::set<int64_t> all;
  for (const SeriesPlan& series : series_) AddReductionSteps(series.plateaus(), &all);
  return {all.begin(), all.end()};
}

bool JobPlan::HasReductionAt(int64_t step) const {
  for (const SeriesPlan& series : series_) {
    for (const auto& [key, state] : series.plateaus()) {
      const auto& reductions = state->reductions;
      const int64_t local = step - state->time_offset;
      size_t lo = 0, hi = reductions.size();
      while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (reductions[mid].first < local) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      if (lo < reductions.size() && reductions[lo].first == local) return true;
    }
  }
  return false;
}

const std::vector<int64_t>& JobPlan::new_reduction_steps() const {
  static const auto* const kNone = new std::vector<int64_t>();
  return reports_ != nullptr ? reports_->new_reduction_steps : *kNone;
}

const MetricLog& JobPlan::metrics() const {
  static const auto* const kNone = new MetricLog();
  return reports_ != nullptr ? reports_->metrics : *kNone;
}

absl::Status JobPlan::Select(std::span<const std::string> names, absl::string_view path,
                             SeriesSelection* selected) const {
  selected->clear();
  if (names.empty()) {
    // absl's reserve and resize are out-of-line calls even within the inline capacity: a single
    // series is pushed, and only a larger job reserves.
    if (series_.size() > kInlineSeries) selected->reserve(series_.size());
    for (size_t i = 0; i < series_.size(); ++i) selected->push_back(i);
    return absl::OkStatus();
  }
  if (names.size() > kMaxSelectedNames) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": must name at most ", kMaxSelectedNames,
                                                   " hyperparameters, got ", names.size()));
  }
  // Compile lists series by hyperparameter, then group, and refuses more than kMaxHyperparameters:
  // each hyperparameter's series are the run from its group 0 to the next one. Names are matched
  // against those runs, not against every series, so a name costs at most kMaxHyperparameters
  // comparisons however many groups the job has (and one named again selects nothing new), with
  // no set or flag vector to allocate.
  std::array<size_t, kMaxHyperparameters + 1> first;
  size_t hyperparameters = 0;
  for (size_t i = 0; i < series_.size(); ++i) {
    if (series_[i].group == 0) first[hyperparameters++] = i;
  }
  first[hyperparameters] = series_.size();
  std::bitset<kMaxHyperparameters> wanted;
  for (size_t n = 0; n < names.size(); ++n) {
    size_t h = 0;
    while (h < hyperparameters && series_[first[h]].hyperparameter != names[n]) ++h;
    if (h == hyperparameters) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, "[", n, "]: the job has no hyperparameter \"",
                       absl::CHexEscape(names[n].substr(0, 64)), "\""));
    }
    wanted.set(h);
  }
  for (size_t h = 0; h < hyperparameters; ++h) {
    if (!wanted.test(h)) continue;
    for (size_t i = first[h]; i < first[h + 1]; ++i) selected->push_back(i);
  }
  return absl::OkStatus();
}

int64_t JobPlan::ProvisionalFrom(std::span<const size_t> selected, int64_t start,
                                 int64_t end) const {
  int64_t from = kNeverPending;
  if (reports_ == nullptr) return from;  // No metrics, no provisional values.
  const auto& pending_steps = reports_->pending_steps;
  for (size_t index : selected) {
    for (const ReportDependence& dependence : series_[index].dependences()) {
      auto track =
          std::find_if(pending_steps.begin(), pending_steps.end(),
                       [&](const auto& pending) { return pending.first == dependence.metric; });
      if (track == pending_steps.end() || track->second == kNeverPending) continue;
      // Reports up to the pending one have arrived; the value at t is provisional once it depends
      // on a report at or after it: first_report <= s <= min(t - 1, last_report), s >= pending.
      const int64_t missing = std::max(track->second, dependence.first_report);
      if (dependence.last_report < missing) continue;
      const int64_t first = std::max({start, dependence.from, missing + 1});
      if (first < std::min(end, dependence.to)) from = std::min(from, first);
    }
  }
  return from;
}

absl::Status CheckBaseValues(std::span<const double> values, absl::string_view path) {
  if (values.empty())
    return Invalid(path, "must have at least one value (one per parameter group)");
  if (values.size() > kMaxGroups) {
    return Invalid(path,
                   absl::StrCat("must have at most ", kMaxGroups, " values, got ", values.size()));
  }
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return Invalid(absl::StrCat(path, "[", i, "]"),
                     absl::StrCat("must be finite, got ", values[i]));
    }
    if (std::fabs(values[i]) > kMaxMagnitude) {
      return Invalid(absl::StrCat(path, "[", i, "]"),
                     absl::StrCat("must be within +-1e150, got ", values[i]));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<NodePtr>> CompileStandalone(const ScheduleSpec& schedule,
                                                       std::span<const double> base_values,
                                                       absl::string_view path,
                                                       absl::string_view hyperparameter) {
  SpecCost cost;
  AddScheduleCost(schedule, static_cast<int64_t>(base_values.size()), &cost);
  RETURN_IF_ERROR(CheckSpecCost(cost, path));
  CompileCache cache;
  std::vector<NodePtr> nodes;
  nodes.reserve(base_values.size());
  for (size_t g = 0; g < base_values.size(); ++g) {
    CompileContext context;
    if (base_values.size() > 1) context.cache = &cache;
    context.multiplicative_groups = cost.multiplicative_groups;
    context.path = std::string(path);
    context.hyperparameter = std::string(hyperparameter);
    context.base = base_values[g];
    context.group = static_cast<int>(g);
    context.num_groups = static_cast<int>(base_values.size());
    ASSIGN_OR_RETURN(NodePtr node, CompileSchedule(schedule, context));
    nodes.push_back(std::move(node));
  }
  return nodes;
}

}  // namespace hpsched::core
