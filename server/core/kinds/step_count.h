// Step-count parameters of the library kinds (timm, deepspeed, megatron).
#ifndef HPSCHED_CORE_KINDS_STEP_COUNT_H_
#define HPSCHED_CORE_KINDS_STEP_COUNT_H_

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/node.h"
#include "core/params.h"

namespace hpsched::core::kinds {

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

#endif  // HPSCHED_CORE_KINDS_STEP_COUNT_H_
