// What a spec costs to compile, counted on the spec before any of it is compiled, and the budgets
// that bound it (issue 10: a Preview of a `chained` tree of 64 x 64 x 4 leaves with 1,024 base
// values compiled 21 million nodes). CreateJob, UpdateJob and Preview check the same budgets:
// JobPlan::Compile for a job, CompileStandalone for a preview.
#ifndef HPSCHED_CORE_SPEC_COST_H_
#define HPSCHED_CORE_SPEC_COST_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

// Schedule nodes x parameter groups, summed over a job's hyperparameters and their segments (a
// scale or pin segment counts one node). 256 nodes for each of 1,024 groups, or 64
// hyperparameters x 1,024 groups x 4 nodes.
inline constexpr int64_t kMaxNodeGroups = 262'144;
// Expression instructions (`lambda`, `multiplicative`) x parameter groups: 1,024 groups of the
// longest expression.
inline constexpr int64_t kMaxExpressionOpGroups = 4'194'304;
// The multiplications `multiplicative` schedules may run at compile time, shared by every such
// schedule and group of a job (core/kinds/multiplicative.cc divides it between them).
inline constexpr int64_t kMaxMultiplicativeWork = int64_t{1} << 25;

struct SpecCost {
  int64_t node_groups = 0;
  int64_t expression_op_groups = 0;
  // `multiplicative` schedules x their groups: how many share kMaxMultiplicativeWork.
  int64_t multiplicative_groups = 0;
};

// Adds the cost of `schedule` compiled for `groups` parameter groups to `cost`. Counts children
// no deeper than kMaxScheduleDepth (deeper specs are rejected when compiled), so it cannot
// exhaust the stack; linear in the size of the spec (each expression is compiled once, not once
// per group). Invalid parameters cost nothing here: compiling reports them.
void AddScheduleCost(const ScheduleSpec& schedule, int64_t groups, SpecCost* cost);

// Adds the cost of one hyperparameter: its schedule and every segment, for its base values.
void AddHyperparameterCost(const HyperparameterSpec& hp, SpecCost* cost);

// InvalidArgument naming `path` and the limit when `cost` is over a budget:
//   "schedule: costs 21,038,080 node-groups, over the limit of 262,144 (schedule nodes x
//   parameter groups)"
absl::Status CheckSpecCost(const SpecCost& cost, absl::string_view path);

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_SPEC_COST_H_
