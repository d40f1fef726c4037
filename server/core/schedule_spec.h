// Domain types for job and schedule specs: what a client asked for, independent of any wire format.
#ifndef HPSCHED_CORE_SCHEDULE_SPEC_H_
#define HPSCHED_CORE_SCHEDULE_SPEC_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/flat_map.h"
#include "core/kind_name.h"
#include "core/metric_reports.h"

namespace hpsched::core {

// The value of one schedule parameter. Integer parameters are int64_t, real ones double.
using ParamValue =
    std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

// A schedule's parameters by name, in name order (a FlatMap: a job holds one per schedule).
using ScheduleParams = FlatMap<std::string, ParamValue>;

// A job's labels, in key order.
using Labels = FlatMap<std::string, std::string>;

// A schedule: its kind ("step", "cosine_annealing", ...), the parameters that were set (an unset
// parameter is absent and takes the kind's default), and the child schedules of composite kinds
// ("sequential", "chained").
struct ScheduleSpec {
  KindName kind;
  ScheduleParams params;
  std::vector<ScheduleSpec> children;

  bool operator==(const ScheduleSpec&) const = default;
};

// A change of a hyperparameter from `effective_step` on (UpdateJob): a new schedule (on local or
// global time, from the base values or anchored at the value the hyperparameter had at
// effective_step), the previous values scaled, or pinned values.
struct SegmentSpec {
  enum class Change { kSchedule, kScale, kPin };

  int64_t effective_step = 0;
  Change change = Change::kSchedule;
  ScheduleSpec schedule;
  double scale = 1;
  // One value for every group, or one per group.
  std::vector<double> pin;
  bool global_time = false;
  bool anchor = false;
  // The job version the change made, and when (Unix nanoseconds).
  int64_t version = 0;
  int64_t create_time_nanos = 0;

  bool operator==(const SegmentSpec&) const = default;
};

// One scheduled hyperparameter: a base value per parameter group, the schedule all groups follow,
// and the changes made since, in the order they were made.
struct HyperparameterSpec {
  std::string name;
  std::vector<double> base_values;
  ScheduleSpec schedule;
  std::vector<SegmentSpec> segments = {};

  bool operator==(const HyperparameterSpec&) const = default;
};

// Everything a client specifies about a job.
struct JobSpec {
  std::vector<HyperparameterSpec> hyperparameters;
  Labels labels;
  std::vector<MetricSpec> metrics;

  bool operator==(const JobSpec&) const = default;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_SCHEDULE_SPEC_H_
