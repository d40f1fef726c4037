// Kinds that gather a library's schedules under one message with a `name` field (transformers'
// get_scheduler names, Keras's class names), so a user writes the names and argument names they
// know. The message's fields are the union of every schedule's arguments; each schedule takes a
// subset, and a field set for a schedule that does not take it is an error, as passing an unknown
// keyword argument is in the source library.
#ifndef HPSCHED_CORE_KINDS_NAMED_SCHEDULES_H_
#define HPSCHED_CORE_KINDS_NAMED_SCHEDULES_H_

#include <cstdint>
#include <memory>
#include <span>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/kinds/closed_form_node.h"
#include "core/node.h"
#include "core/params.h"
#include "core/schedule_spec.h"

namespace hpsched::core::kinds {

// One schedule of a library: its name, the parameters it takes (space-separated field names,
// besides `name`), and its compiler, called only after the parameters were checked.
struct NamedSchedule {
  absl::string_view name;
  absl::string_view params;
  absl::StatusOr<NodePtr> (*compile)(const Params& p);
};

// Reads the string parameter `name`, finds it in `schedules`, checks that every parameter set in
// `spec` is one that schedule takes, and compiles it. InvalidArgument naming the field when `name`
// is missing or unknown, or when a parameter is not one the schedule takes.
absl::StatusOr<NodePtr> CompileNamedSchedule(const ScheduleSpec& spec,
                                             const CompileContext& context,
                                             std::span<const NamedSchedule> schedules);

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_NAMED_SCHEDULES_H_
