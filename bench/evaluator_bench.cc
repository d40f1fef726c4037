// Values per second of the batched evaluation core, per kind, for spans of consecutive steps.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/evaluator.h"
#include "core/job_plan.h"

namespace hpsched::core {
namespace {

ScheduleSpec Spec(std::string kind, std::map<std::string, ParamValue, std::less<>> params,
                  std::vector<ScheduleSpec> children = {}) {
  return ScheduleSpec{std::move(kind), std::move(params), std::move(children)};
}

void RunSpan(benchmark::State& state, const ScheduleSpec& spec) {
  const std::vector<double> bases = {0.1};
  auto nodes = CompileStandalone(spec, bases, "schedule");
  if (!nodes.ok()) {
    state.SkipWithError(std::string(nodes.status().message()).c_str());
    return;
  }
  std::vector<double> out(static_cast<size_t>(state.range(0)));
  int64_t start = 0;
  for (auto _ : state) {
    EvalQuery query{(*nodes)[0].get(), start, out};
    EvaluateBatch(std::span<const EvalQuery>(&query, 1));
    benchmark::DoNotOptimize(out.data());
    start = (start + 7919) % 1'000'000;
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}

void BM_Step(benchmark::State& s) { RunSpan(s, Spec("step", {{"step_size", int64_t{10}}})); }
void BM_CosineAnnealing(benchmark::State& s) {
  RunSpan(s, Spec("cosine_annealing", {{"t_max", int64_t{1000}}}));
}
void BM_WarmRestarts(benchmark::State& s) {
  RunSpan(s,
          Spec("cosine_annealing_warm_restarts", {{"t_0", int64_t{10}}, {"t_mult", int64_t{2}}}));
}
void BM_OneCycle(benchmark::State& s) {
  RunSpan(s, Spec("one_cycle", {{"total_steps", int64_t{2'000'000}}}));
}
void BM_Lambda(benchmark::State& s) {
  RunSpan(s, Spec("lambda", {{"expression",
                              std::string("min(1, (step + 1) / 100) * 0.99 ** (step / 100)")}}));
}
void BM_SequentialWarmupCosine(benchmark::State& s) {
  RunSpan(s, Spec("sequential", {{"milestones", std::vector<int64_t>{100}}},
                  {Spec("linear", {{"start_factor", 0.01}, {"total_iters", int64_t{100}}}),
                   Spec("cosine_annealing", {{"t_max", int64_t{100000}}})}));
}

BENCHMARK(BM_Step)->Arg(1)->Arg(1024);
BENCHMARK(BM_CosineAnnealing)->Arg(1)->Arg(1024);
BENCHMARK(BM_WarmRestarts)->Arg(1)->Arg(1024);
BENCHMARK(BM_OneCycle)->Arg(1)->Arg(1024);
BENCHMARK(BM_Lambda)->Arg(1)->Arg(1024);
BENCHMARK(BM_SequentialWarmupCosine)->Arg(1)->Arg(1024);

}  // namespace
}  // namespace hpsched::core

BENCHMARK_MAIN();
