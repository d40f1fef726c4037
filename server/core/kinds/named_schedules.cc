#include "core/kinds/named_schedules.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

std::string QuotedNames(std::span<const NamedSchedule> schedules) {
  std::vector<absl::string_view> names;
  for (const NamedSchedule& s : schedules) names.push_back(s.name);
  return absl::StrCat("\"", absl::StrJoin(names, "\", \""), "\"");
}

}  // namespace

absl::StatusOr<NodePtr> CompileNamedSchedule(const ScheduleSpec& spec,
                                             const CompileContext& context,
                                             std::span<const NamedSchedule> schedules) {
  Params p(spec, context);
  if (!p.Has("name")) {
    return p.Error("name", absl::StrCat("is required (one of ", QuotedNames(schedules), ")"));
  }
  ASSIGN_OR_RETURN(std::string name, p.String("name"));
  const NamedSchedule* schedule = nullptr;
  for (const NamedSchedule& s : schedules) {
    if (s.name == name) schedule = &s;
  }
  if (schedule == nullptr) {
    return p.Error("name",
                   absl::StrCat("must be one of ", QuotedNames(schedules), ", got \"", name, "\""));
  }
  const std::vector<absl::string_view> taken =
      absl::StrSplit(schedule->params, ' ', absl::SkipEmpty());
  for (const auto& [param, value] : spec.params) {
    if (param == "name" || std::find(taken.begin(), taken.end(), param) != taken.end()) continue;
    return p.Error(param, absl::StrCat("is not a parameter of \"", name, "\" (it takes ",
                                       taken.empty() ? "none" : absl::StrJoin(taken, ", "), ")"));
  }
  return schedule->compile(p);
}

}  // namespace hpsched::core::kinds
