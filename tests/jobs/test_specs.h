// Specs the jobs-layer tests share.
#ifndef HPSCHED_TESTS_JOBS_TEST_SPECS_H_
#define HPSCHED_TESTS_JOBS_TEST_SPECS_H_

#include <cstdint>
#include <string>

#include "core/schedule_spec.h"

namespace hpsched::jobs {

// One lr driven by reduce_on_plateau (patience 0) on a metric "loss" reported every 10 steps.
inline core::JobSpec PlateauSpec() {
  core::JobSpec spec;
  spec.hyperparameters.push_back(
      {"lr",
       {1.0},
       core::ScheduleSpec{
           "reduce_on_plateau", {{"metric", std::string("loss")}, {"patience", int64_t{0}}}, {}}});
  spec.metrics.push_back(core::MetricSpec{"loss", 10, 0});
  return spec;
}

}  // namespace hpsched::jobs

#endif  // HPSCHED_TESTS_JOBS_TEST_SPECS_H_
