#include "core/kinds/library_table.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

// The Levenshtein distance between a and b.
size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::vector<absl::string_view> Names(const Library& library) {
  std::vector<absl::string_view> names;
  for (const LibrarySchedule& s : library.schedules) names.push_back(s.name);
  return names;
}

std::string OneOf(const Library& library) {
  return absl::StrCat("(one of \"", absl::StrJoin(Names(library), "\", \""), "\")");
}

absl::Status UnknownName(const Params& p, const Library& library, absl::string_view name) {
  const std::vector<absl::string_view> names = Names(library);
  const absl::string_view nearest = NearestName(name, names);
  const std::string hint =
      nearest.empty() ? " " : absl::StrCat("; did you mean \"", nearest, "\"? ");
  return p.Error("name", absl::StrCat("unknown ", library.name, " schedule \"", name, "\"", hint,
                                      OneOf(library)));
}

}  // namespace

absl::string_view NearestName(absl::string_view name, std::span<const absl::string_view> names) {
  const std::string lower = absl::AsciiStrToLower(name);
  absl::string_view best;
  // The edit distance less the length of the common prefix: of two near names, the one that
  // starts like `name` ("exponential_decay" for "exponential_decay_schedule", not
  // "warmup_exponential_decay_schedule").
  int64_t best_score = std::numeric_limits<int64_t>::max();
  for (absl::string_view candidate : names) {
    const std::string other = absl::AsciiStrToLower(candidate);
    const size_t distance = EditDistance(lower, other);
    const bool contains =
        !lower.empty() && (absl::StrContains(other, lower) || absl::StrContains(lower, other));
    if (distance > std::max<size_t>(2, other.size() / 3) && !contains) continue;
    size_t prefix = 0;
    while (prefix < lower.size() && prefix < other.size() && lower[prefix] == other[prefix]) {
      ++prefix;
    }
    const int64_t score = static_cast<int64_t>(distance) - static_cast<int64_t>(prefix);
    if (score < best_score) {
      best = candidate;
      best_score = score;
    }
  }
  return best;
}

absl::StatusOr<NodePtr> CompileLibrarySchedule(const ScheduleSpec& spec,
                                               const CompileContext& context,
                                               const Library& library) {
  Params p(spec, context);
  if (!p.Has("name")) return p.Error("name", absl::StrCat("is required ", OneOf(library)));
  ASSIGN_OR_RETURN(std::string name, p.String("name"));
  const LibrarySchedule* schedule = nullptr;
  for (const LibrarySchedule& s : library.schedules) {
    if (s.name == name) schedule = &s;
  }
  if (schedule == nullptr) return UnknownName(p, library, name);
  std::vector<absl::string_view> taken = absl::StrSplit(schedule->params, ' ', absl::SkipEmpty());
  const auto takes = [&](absl::string_view param) {
    return std::find(taken.begin(), taken.end(), param) != taken.end();
  };
  if (schedule->takes_schedules) taken.push_back("schedules");
  const std::string not_taken =
      absl::StrCat("is not a parameter of ", library.name, " \"", name, "\" (it takes ",
                   taken.empty() ? "none" : absl::StrJoin(taken, ", "), ")");
  for (const auto& [param, value] : spec.params) {
    if (param != "name" && !takes(param)) return p.Error(param, not_taken);
  }
  if (!spec.children.empty() && !schedule->takes_schedules) {
    return p.Error("schedules", not_taken);
  }
  return schedule->compile(p);
}

}  // namespace hpsched::core::kinds
