// Compile cost of large specs (issue 10, item 1): the attack (a `chained` tree of 64 x 64 x 4
// `constant` leaves, 1,024 base values) and a just-legal large spec (256 nodes x 1,024 groups),
// through Preview's and CreateJob's compile. Prints wall times; run it under /usr/bin/time -v for
// the peak memory. Results: docs/operations.md (Limits).
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/job_plan.h"
#include "core/preview.h"

namespace {

using hpsched::core::ScheduleSpec;

ScheduleSpec Constant(double factor, int64_t total_iters) {
  return ScheduleSpec{"constant", {{"factor", factor}, {"total_iters", total_iters}}, {}};
}

// `levels` nested chained, `fanout[i]` children at level i, constant leaves.
ScheduleSpec Tree(const std::vector<int>& fanout, size_t level = 0) {
  if (level == fanout.size()) return Constant(0.5, 1 + static_cast<int64_t>(level));
  return ScheduleSpec{
      "chained", {}, std::vector<ScheduleSpec>(fanout[level], Tree(fanout, level + 1))};
}

void Run(const char* name, const ScheduleSpec& tree, size_t groups) {
  std::vector<double> bases;
  for (size_t g = 0; g < groups; ++g) bases.push_back(0.1 * static_cast<double>(g + 1));
  auto start = std::chrono::steady_clock::now();
  auto preview = hpsched::core::CompiledPreview::Compile(tree, bases, "lr");
  const double preview_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  hpsched::core::JobSpec job;
  job.hyperparameters.push_back({"lr", bases, tree});
  start = std::chrono::steady_clock::now();
  auto plan = hpsched::core::JobPlan::Compile(job, "job");
  const double job_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-40s preview %9.4f s (%s)  job %9.4f s (%s)\n", name, preview_s,
              preview.ok() ? "ok" : std::string(preview.status().message()).c_str(), job_s,
              plan.ok() ? "ok" : "refused");
}

}  // namespace

int main() {
  Run("attack 64x64x4 leaves, 1024 groups", Tree({64, 64, 4}), 1024);
  Run("just legal 15x16 leaves, 1024 groups", Tree({15, 16}), 1024);
  Run("64x64x4 leaves, 1 group", Tree({64, 64, 4}), 1);
  return 0;
}
