// Typed, validated access to a schedule's parameters, with errors that name the field path and the
// rule.
#ifndef HPSCHED_CORE_PARAMS_H_
#define HPSCHED_CORE_PARAMS_H_

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/metric_reports.h"
#include "core/plateau_state.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

// Every number in a spec (base values and parameters) has |x| <= kMaxMagnitude: no hyperparameter
// needs more, and it keeps products of two of them (base x factor, (max - base) x scale) far from
// overflowing to infinity.
inline constexpr double kMaxMagnitude = 1e150;

class CompileCache;

// What compiling a schedule found out besides its node.
struct CompileNotes {
  // The metrics the schedule's values depend on.
  std::set<std::string> metrics;
  // The state of every reduce_on_plateau schedule compiled, by key (see PlateauStates), in the
  // order compiled.
  PlateauStates plateaus;
  // The global steps at which a reduce_on_plateau schedule reduced its value on a report this
  // compile took (not one a resumed state had taken before); may repeat.
  std::vector<int64_t> new_reduction_steps;
};

// What a kind's compiler knows about where it is: the field path of the schedule
// ("schedule.sequential.schedules[1]"), the hyperparameter and parameter group it compiles for, and
// that group's base value.
struct CompileContext {
  std::string path;
  // The scheduled hyperparameter's name. Kinds that drive more than one hyperparameter, like
  // PyTorch's CyclicLR and OneCycleLR (the learning rate, and "momentum" or "beta1"), give the
  // curve of this one.
  std::string hyperparameter = "lr";
  double base = 1.0;
  int group = 0;
  int num_groups = 1;
  // How many composite schedules enclose this one.
  int depth = 0;
  // The global step at which this schedule's own step 0 falls (a `sequential` child or an UpdateJob
  // segment on local time starts later than step 0).
  int64_t time_offset = 0;
  // The job's metric reports (reduce_on_plateau); null where there are none (Preview).
  const MetricLog* metrics = nullptr;
  // Where compilers leave what the job plan needs to know; may be null.
  CompileNotes* notes = nullptr;
  // The plateau states of the same series in the job's previous plan, sorted by key: a
  // reduce_on_plateau resumes from its own (same key and inputs) instead of replaying every report.
  // May be null.
  const PlateauStates* previous_plateaus = nullptr;
  // Shares subtrees that do not depend on the group between the groups of one hyperparameter
  // (core/compile_cache.h); null compiles everything. A compiler that reads its own group's
  // parameters (other than through Params::PerGroupDouble, which does) calls MarkGroupDependent().
  CompileCache* cache = nullptr;
  // The job's `multiplicative` schedules x their groups, which share the job's multiplicative
  // work budget (core/spec_cost.h); 0 means this schedule's groups alone.
  int64_t multiplicative_groups = 0;

  // Tells the cache, if any, that the schedule being compiled reads its group's own parameters.
  void MarkGroupDependent() const;
};

// Reads the parameters of one schedule. Every getter returns InvalidArgument naming
// "<path>.<kind>.<name>" when the value has the wrong type, is not finite, or (for getters without
// a default) is missing.
class Params {
 public:
  Params(const ScheduleSpec& spec, const CompileContext& context);

  // Required parameters.
  absl::StatusOr<int64_t> Int(absl::string_view name) const;
  absl::StatusOr<double> Double(absl::string_view name) const;
  absl::StatusOr<std::string> String(absl::string_view name) const;
  // Parameters with a default.
  absl::StatusOr<int64_t> Int(absl::string_view name, int64_t default_value) const;
  absl::StatusOr<double> Double(absl::string_view name, double default_value) const;
  absl::StatusOr<bool> Bool(absl::string_view name, bool default_value) const;
  // A string that must be one of `allowed`.
  absl::StatusOr<std::string> Enum(absl::string_view name, absl::string_view default_value,
                                   std::initializer_list<absl::string_view> allowed) const;
  // Optional lists; absent means empty.
  absl::StatusOr<std::vector<int64_t>> Ints(absl::string_view name) const;
  absl::StatusOr<std::vector<double>> Doubles(absl::string_view name) const;
  // A per-group list: one value for every group, or exactly one per group. Empty means
  // `default_value` (or an error when there is none).
  absl::StatusOr<double> PerGroupDouble(absl::string_view name,
                                        std::optional<double> default_value) const;

  bool Has(absl::string_view name) const;

  // The InvalidArgument error for parameter `name`: "<path>.<kind>.<name>: <rule>".
  absl::Status Error(absl::string_view name, absl::string_view rule) const;
  // The field path of parameter `name`.
  std::string FieldPath(absl::string_view name) const;
  // The field path of this schedule's kind message ("schedule.step").
  const std::string& KindPath() const { return kind_path_; }

  const CompileContext& context() const { return context_; }
  // The schedule whose parameters these are.
  const ScheduleSpec& spec() const { return spec_; }

 private:
  const ParamValue* Find(absl::string_view name) const;

  const ScheduleSpec& spec_;
  const CompileContext& context_;
  std::string kind_path_;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_PARAMS_H_
