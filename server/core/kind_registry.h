// The schedule kinds: each kind lives in its own file under core/kinds/ and is listed once in
// kinds/kinds.inc.
#ifndef HPSCHED_CORE_KIND_REGISTRY_H_
#define HPSCHED_CORE_KIND_REGISTRY_H_

#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/node.h"
#include "core/params.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

// Limits on the shape of a spec, so that no spec can exhaust the stack or memory of the compiler.
inline constexpr int kMaxScheduleDepth = 8;
inline constexpr int kMaxChildren = 64;

// Validates `spec` and compiles it for the parameter group described by `context` (context.path is
// the field path of the schedule, e.g. "job.hyperparameters[0].schedule"). On error, returns
// InvalidArgument naming the field path and the rule; nothing is evaluated before the whole spec is
// valid.
absl::StatusOr<NodePtr> CompileSchedule(const ScheduleSpec& spec, const CompileContext& context);

// Compiles the children of a composite schedule (`spec.children`, the field "schedules"), each with
// base value `base` and the group of `context`. A composite that runs child i on local time from
// its own step starts[i] on passes `starts` (one per child); without, children share the parent's
// time. Errors: none given, more than kMaxChildren, or a child's own error.
absl::StatusOr<std::vector<NodePtr>> CompileChildren(const ScheduleSpec& spec,
                                                     const CompileContext& context, double base,
                                                     std::span<const int64_t> starts = {});

// The names of every kind, in the order of kinds.inc.
std::vector<absl::string_view> KindNames();

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_KIND_REGISTRY_H_
