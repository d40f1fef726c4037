// Kinds that mirror a whole library module (timm, deepspeed, megatron) select the library's
// scheduler with a `name` parameter and carry the union of its schedulers' arguments. These
// helpers reject an argument that the named scheduler does not take, so a spec never sets a field
// that would be silently ignored.
#ifndef HPSCHED_CORE_KINDS_NAMED_PARAMS_H_
#define HPSCHED_CORE_KINDS_NAMED_PARAMS_H_

#include <algorithm>
#include <initializer_list>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/node.h"
#include "core/params.h"
#include "core/schedule_spec.h"

namespace hpsched::core::kinds {

// InvalidArgument naming the first parameter of `spec` other than "name" that is not in `allowed`:
// "<path>.<kind>.<param>: is not an argument of <library> \"<name>\"".
inline absl::Status CheckOnlyParams(const ScheduleSpec& spec, const Params& p,
                                    absl::string_view library, absl::string_view name,
                                    absl::Span<const absl::string_view> allowed) {
  for (const auto& [param, value] : spec.params) {
    if (param == "name") continue;
    if (std::find(allowed.begin(), allowed.end(), param) == allowed.end()) {
      return p.Error(param, absl::StrCat("is not an argument of ", library, " \"", name, "\""));
    }
  }
  return absl::OkStatus();
}

// The required `name` parameter, one of `names` (the library's spelling).
inline absl::StatusOr<std::string> SchedulerName(const Params& p,
                                                 std::initializer_list<absl::string_view> names) {
  if (!p.Has("name")) return p.Error("name", "is required");
  return p.Enum("name", "", names);
}

// A step count parameter in [min_value, 2^53]: every such count is exact as a double.
inline absl::StatusOr<int64_t> StepCount(const Params& p, absl::string_view field,
                                         int64_t default_value, int64_t min_value) {
  auto value = p.Int(field, default_value);
  if (!value.ok()) return value.status();
  if (*value < min_value || *value > kStepLimit) {
    return p.Error(field, absl::StrCat("must be >= ", min_value, " and <= 2^53, got ", *value));
  }
  return *value;
}

// A required step count in [min_value, 2^53].
inline absl::StatusOr<int64_t> StepCount(const Params& p, absl::string_view field,
                                         int64_t min_value) {
  if (!p.Has(field)) return p.Error(field, "is required");
  return StepCount(p, field, 0, min_value);
}

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_NAMED_PARAMS_H_
