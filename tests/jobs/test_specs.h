// Specs the jobs-layer tests share.
#ifndef HPSCHED_TESTS_JOBS_TEST_SPECS_H_
#define HPSCHED_TESTS_JOBS_TEST_SPECS_H_

#include <cstdint>
#include <string>
#include <vector>

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

// A linear warmup for 100 steps, then (sequential milestone 100) the plateau of PlateauSpec: the
// values up to step 100 depend on no report.
inline core::JobSpec WarmupThenPlateauSpec() {
  core::JobSpec spec = PlateauSpec();
  spec.hyperparameters[0].schedule = core::ScheduleSpec{
      "sequential",
      {{"milestones", std::vector<int64_t>{100}}},
      {core::ScheduleSpec{"linear", {{"start_factor", 0.01}, {"total_iters", int64_t{100}}}, {}},
       spec.hyperparameters[0].schedule}};
  return spec;
}

}  // namespace hpsched::jobs

#endif  // HPSCHED_TESTS_JOBS_TEST_SPECS_H_
