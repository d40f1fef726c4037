// Domain types for job and schedule specs: what a client asked for, independent of any wire format.
#ifndef HPSCHED_CORE_SCHEDULE_SPEC_H_
#define HPSCHED_CORE_SCHEDULE_SPEC_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace hpsched::core {

// The value of one schedule parameter. Integer parameters are int64_t, real ones double.
using ParamValue =
    std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;

// A schedule: its kind ("step", "cosine_annealing", ...), the parameters that were set (an unset
// parameter is absent and takes the kind's default), and the child schedules of composite kinds
// ("sequential", "chained").
struct ScheduleSpec {
  std::string kind;
  std::map<std::string, ParamValue, std::less<>> params;
  std::vector<ScheduleSpec> children;

  bool operator==(const ScheduleSpec&) const = default;
};

// One scheduled hyperparameter: a base value per parameter group and the schedule all groups
// follow.
struct HyperparameterSpec {
  std::string name;
  std::vector<double> base_values;
  ScheduleSpec schedule;

  bool operator==(const HyperparameterSpec&) const = default;
};

// Everything a client specifies about a job.
struct JobSpec {
  std::vector<HyperparameterSpec> hyperparameters;
  std::map<std::string, std::string> labels;

  bool operator==(const JobSpec&) const = default;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_SCHEDULE_SPEC_H_
