// CPU per read of the read path below the service (jobs::ReadPath::Plan + Evaluate through a
// jobs::CancellableEvaluator, as SchedulerService::ServeValues runs them), against an in-memory
// registry of 10^4 warmup + cosine jobs: one GetValues-shaped read of count 1 (the lean path), and
// BatchGetValues-shaped batches of one read per job. The first argument is the number of reads,
// the second whether each read names its hyperparameter ("lr") rather than taking all of them.
// No gRPC, no protobuf: what this measures is the domain code alone (bench/README.md).
#include <benchmark/benchmark.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/evaluator.h"
#include "jobs/cancellable_evaluator.h"
#include "jobs/clock.h"
#include "jobs/job_registry.h"
#include "jobs/read_path.h"
#include "store/memory_job_store.h"

namespace hpsched::jobs {
namespace {

constexpr int kJobs = 10'000;

core::ScheduleSpec Spec(std::string kind, core::ScheduleParams params,
                        std::vector<core::ScheduleSpec> children = {}) {
  return core::ScheduleSpec{std::move(kind), std::move(params), std::move(children)};
}

// The jobs of bench/rpc_bench.py's GetValues: "lr", linear warmup then cosine annealing.
core::JobSpec WarmupCosineJob(int j) {
  const int64_t warmup = 50 + j % 200;
  core::JobSpec spec;
  spec.hyperparameters.push_back(
      {"lr",
       {0.1},
       Spec("sequential", {{"milestones", std::vector<int64_t>{warmup}}},
            {Spec("linear", {{"start_factor", 0.01}, {"total_iters", warmup}}),
             Spec("cosine_annealing", {{"t_max", int64_t{10'000} + j}})})});
  return spec;
}

// One registry for every benchmark: creating 10^4 jobs is not what is measured.
struct Fixture {
  Fixture() {
    for (int j = 0; j < kJobs; ++j) {
      if (!registry.Create(absl::StrCat("job-", j), WarmupCosineJob(j), "").ok()) std::abort();
    }
  }
  store::MemoryJobStore store;
  FakeClock clock{absl::FromUnixSeconds(1'800'000'000)};
  JobRegistry registry{&store, &clock};
  ReadPath read_path{&registry, &core::DefaultEvaluator()};
};

Fixture& Shared() {
  static Fixture* const fixture = new Fixture();
  return *fixture;
}

void BM_ReadPath(benchmark::State& state) {
  Fixture& fixture = Shared();
  const size_t reads = static_cast<size_t>(state.range(0));
  std::vector<ReadRequest> requests(reads);
  for (size_t i = 0; i < reads; ++i) {
    requests[i].job_id = absl::StrCat("job-", i % kJobs);
    requests[i].count = 1;
    if (state.range(1) != 0) requests[i].hyperparameters = {"lr"};
  }
  const FieldNames names = reads == 1 ? FieldNames::kSingle : FieldNames::kBatch;
  std::vector<double> values(reads);
  std::vector<std::span<double>> outs(reads);
  for (size_t i = 0; i < reads; ++i) outs[i] = std::span<double>(&values[i], 1);
  // The service's inline evaluation: a stop check on the stack, passed by reference.
  auto never = [] { return false; };
  int64_t step = 0;
  for (auto _ : state) {
    for (ReadRequest& request : requests) request.start = step;
    absl::StatusOr<ReadPlan> plan = fixture.read_path.Plan(requests, names, false);
    if (!plan.ok() || plan->state != ReadPlan::State::kReady) {
      state.SkipWithError("the plan is not ready");
      return;
    }
    const CancellableEvaluator evaluator(&fixture.read_path.evaluator(),
                                         std::function<bool()>(std::ref(never)));
    fixture.read_path.Evaluate(*plan, outs, evaluator);
    benchmark::DoNotOptimize(values.data());
    benchmark::ClobberMemory();
    step = (step + 7) % 1'000'000;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(reads));
}
BENCHMARK(BM_ReadPath)->Args({1, 0})->Args({1, 1})->Args({kJobs, 0})->Args({kJobs, 1});

}  // namespace
}  // namespace hpsched::jobs

BENCHMARK_MAIN();
