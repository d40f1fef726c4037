// The one mechanism for the kinds that gather a library's schedules under one message with a
// `name` field (transformers, keras, optax, timm, deepspeed, megatron), so a user writes the names
// and argument names the library uses. The message's fields are the union of every schedule's
// arguments; each schedule takes a subset, and a field set for a schedule that does not take it is
// an error, as passing an unknown keyword argument is in the source library.
//
// Each library is one table of LibrarySchedule, and every library reads its errors the same way:
//   <path>.<kind>.name: is required (one of "a", "b", ...)
//   <path>.<kind>.name: unknown <library> schedule "x"; did you mean "a"? (one of "a", "b", ...)
//   <path>.<kind>.name: unknown <library> schedule "x" (one of "a", "b", ...)
//   <path>.<kind>.<param>: is not a parameter of <library> "<name>" (it takes p, q)
#ifndef HPSCHED_CORE_KINDS_LIBRARY_TABLE_H_
#define HPSCHED_CORE_KINDS_LIBRARY_TABLE_H_

#include <span>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/node.h"
#include "core/params.h"
#include "core/schedule_spec.h"

namespace hpsched::core::kinds {

// One schedule of a library: its name, the parameters it takes (space-separated field names,
// besides `name`), whether it takes child schedules (the field "schedules"), and its compiler,
// called only after the name and the parameters were checked. The compiler reads the spec through
// `p` (p.spec(), p.context()).
struct LibrarySchedule {
  absl::string_view name;
  absl::string_view params;
  bool takes_schedules;
  absl::StatusOr<NodePtr> (*compile)(const Params& p);
};

// One library: the name errors call it by (the kind's name) and its schedules.
struct Library {
  absl::string_view name;
  std::span<const LibrarySchedule> schedules;
};

// Reads the string parameter `name`, finds it in `library`, checks that every parameter set in
// `spec` (and its children, if any) is one that schedule takes, and compiles it. InvalidArgument
// in the wordings above when `name` is missing or unknown or a parameter is not taken; otherwise
// whatever the schedule's compiler returns.
absl::StatusOr<NodePtr> CompileLibrarySchedule(const ScheduleSpec& spec,
                                               const CompileContext& context,
                                               const Library& library);

// The name in `names` closest to `name` when it is a near miss (a small edit distance, ignoring
// case, or one name contains the other), for "did you mean"; empty when none is close.
absl::string_view NearestName(absl::string_view name, std::span<const absl::string_view> names);

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_LIBRARY_TABLE_H_
