#include "core/kind_registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/compile_cache.h"

namespace hpsched::core {
namespace kinds {
// Each kind file defines one compiler with this signature.
#define HPSCHED_KIND(name, compiler) \
  absl::StatusOr<NodePtr> compiler(const ScheduleSpec& spec, const CompileContext& context);
#include "core/kinds/kinds.inc"
#undef HPSCHED_KIND
}  // namespace kinds

namespace {

struct Kind {
  absl::string_view name;
  absl::StatusOr<NodePtr> (*compile)(const ScheduleSpec&, const CompileContext&);
};

constexpr Kind kKinds[] = {
#define HPSCHED_KIND(name, compiler) {#name, &kinds::compiler},
#include "core/kinds/kinds.inc"
#undef HPSCHED_KIND
};

}  // namespace

absl::StatusOr<NodePtr> CompileSchedule(const ScheduleSpec& spec, const CompileContext& context) {
  if (spec.kind.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(context.path, ": is required (set exactly one kind of schedule)"));
  }
  if (context.depth > kMaxScheduleDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(context.path, ": schedules nest deeper than ", kMaxScheduleDepth, " levels"));
  }
  for (const Kind& kind : kKinds) {
    if (kind.name != spec.kind) continue;
    if (context.cache == nullptr) return kind.compile(spec, context);
    return context.cache->Compile(spec, context, kind.compile);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(context.path, ": unknown kind of schedule \"", spec.kind.view(), "\""));
}

absl::StatusOr<std::vector<NodePtr>> CompileChildren(const ScheduleSpec& spec,
                                                     const CompileContext& context, double base,
                                                     std::span<const int64_t> starts) {
  const std::string path = absl::StrCat(context.path, ".", spec.kind.view(), ".schedules");
  if (spec.children.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": must have at least one schedule"));
  }
  if (spec.children.size() > kMaxChildren) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": must have at most ", kMaxChildren,
                                                   " schedules, got ", spec.children.size()));
  }
  std::vector<NodePtr> nodes;
  nodes.reserve(spec.children.size());
  for (size_t i = 0; i < spec.children.size(); ++i) {
    CompileContext child = context;
    child.path = absl::StrCat(path, "[", i, "]");
    child.base = base;
    child.depth = context.depth + 1;
    if (i < starts.size()) {
      // Saturates at kStepLimit (a child that starts beyond every step); starts are not yet
      // validated here, the composite checks them.
      const int64_t start = std::clamp<int64_t>(starts[i], 0, kStepLimit);
      child.time_offset = std::min(kStepLimit, context.time_offset + start);
    }
    auto node = CompileSchedule(spec.children[i], child);
    if (!node.ok()) return node.status();
    nodes.push_back(*std::move(node));
  }
  return nodes;
}

std::vector<absl::string_view> KindNames() {
  std::vector<absl::string_view> names;
  for (const Kind& kind : kKinds) names.push_back(kind.name);
  return names;
}

}  // namespace hpsched::core
