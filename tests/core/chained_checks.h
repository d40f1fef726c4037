// A check the catalog tests share: a valid catalog spec is accepted inside `chained`, whose values
// stay finite and within the product's bound.
#ifndef HPSCHED_TESTS_CORE_CHAINED_CHECKS_H_
#define HPSCHED_TESTS_CORE_CHAINED_CHECKS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/job_plan.h"
#include "core/node.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

// `spec` (valid for `bases`) inside chained with a PyTorch factor: chained compiles the children
// with base value 1, and accepts every child that compiles there, unless the product of the bounds
// overflows; the product's values are finite and within its bound.
inline void ExpectChainedAccepts(const ScheduleSpec& spec, const std::vector<double>& bases) {
  if (!CompileStandalone(spec, std::vector<double>(bases.size(), 1.0), "schedule").ok()) return;
  ScheduleSpec exponential{"exponential", {}, {}};
  exponential.params["gamma"] = 0.99;
  auto chained =
      CompileStandalone(ScheduleSpec{"chained", {}, {spec, exponential}}, bases, "schedule");
  if (!chained.ok()) {
    ASSERT_THAT(std::string(chained.status().message()), ::testing::HasSubstr("may overflow"));
    return;
  }
  for (const NodePtr& node : *chained) {
    for (int64_t step : {int64_t{0}, int64_t{1}, int64_t{100}, kStepLimit - 1}) {
      double value = 0;
      node->Evaluate(step, std::span<double>(&value, 1));
      ASSERT_TRUE(std::isfinite(value) && std::fabs(value) <= node->max_abs()) << step;
    }
  }
}

}  // namespace hpsched::core

#endif  // HPSCHED_TESTS_CORE_CHAINED_CHECKS_H_
