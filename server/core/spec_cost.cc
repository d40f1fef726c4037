#include "core/spec_cost.h"

#include <string>
#include <variant>

#include "absl/strings/str_cat.h"
#include "core/expression.h"
#include "core/kind_registry.h"

namespace hpsched::core {
namespace {

// 1234567 -> "1,234,567".
std::string WithThousands(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

// The expression a kind evaluates at every step, if it has one.
const std::string* ExpressionOf(const ScheduleSpec& schedule) {
  const char* name = schedule.kind == "lambda"           ? "expression"
                     : schedule.kind == "multiplicative" ? "lr_lambda"
                                                         : nullptr;
  if (name == nullptr) return nullptr;
  auto found = schedule.params.find(name);
  return found == schedule.params.end() ? nullptr : std::get_if<std::string>(&found->second);
}

// Saturates instead of overflowing: a cost only needs to be compared with a limit.
int64_t Add(int64_t a, int64_t b) { return a > INT64_MAX - b ? INT64_MAX : a + b; }

void AddCost(const ScheduleSpec& schedule, int64_t groups, int depth, SpecCost* cost) {
  cost->node_groups = Add(cost->node_groups, groups);
  if (const std::string* text = ExpressionOf(schedule)) {
    auto expression = Expression::Compile(*text, "step");
    if (expression.ok()) {
      cost->expression_op_groups =
          Add(cost->expression_op_groups,
              static_cast<int64_t>(expression->instruction_count()) * groups);
    }
  }
  if (schedule.kind == "multiplicative") {
    cost->multiplicative_groups = Add(cost->multiplicative_groups, groups);
  }
  if (depth >= kMaxScheduleDepth) return;  // Deeper children are an error of their own.
  for (const ScheduleSpec& child : schedule.children) AddCost(child, groups, depth + 1, cost);
}

}  // namespace

void AddScheduleCost(const ScheduleSpec& schedule, int64_t groups, SpecCost* cost) {
  AddCost(schedule, groups, 0, cost);
}

void AddHyperparameterCost(const HyperparameterSpec& hp, SpecCost* cost) {
  const auto groups = static_cast<int64_t>(hp.base_values.size());
  AddScheduleCost(hp.schedule, groups, cost);
  for (const SegmentSpec& segment : hp.segments) {
    if (segment.change == SegmentSpec::Change::kSchedule) {
      AddScheduleCost(segment.schedule, groups, cost);
    } else {
      cost->node_groups = Add(cost->node_groups, groups);
    }
  }
}

absl::Status CheckSpecCost(const SpecCost& cost, absl::string_view path) {
  if (cost.node_groups > kMaxNodeGroups) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": costs ", WithThousands(cost.node_groups), " node-groups, over the limit of ",
        WithThousands(kMaxNodeGroups), " (schedule nodes x parameter groups)"));
  }
  if (cost.expression_op_groups > kMaxExpressionOpGroups) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": costs ", WithThousands(cost.expression_op_groups),
        " expression operation-groups, over the limit of ", WithThousands(kMaxExpressionOpGroups),
        " (expression operations x parameter groups)"));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::core
