// Values per second of the evaluation core: every kind, spans of 1, 64, 4096 and 100,000 steps,
// through the scalar reference and the vector evaluator side by side (the second argument: 0
// scalar, 1 vector); batches of one query per job across 10^4 jobs; and the libmvec loop of
// warmup + cosine (libmvec_loop.cc), the baseline of issue 11. bench/core_bench.py runs it and
// prints the ratios.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/vector_math.h"
#include "libmvec_loop.h"

namespace hpsched::core {
namespace {

using Params = hpsched::core::ScheduleParams;

ScheduleSpec Spec(std::string kind, Params params, std::vector<ScheduleSpec> children = {}) {
  return ScheduleSpec{std::move(kind), std::move(params), std::move(children)};
}

// The warmup + cosine of issue 11: linear warmup over 100 steps, then cosine to 0 over 2 * 10^6
// steps.
constexpr int64_t kWarmup = 100;
constexpr int64_t kTMax = 2'000'000;  // Spans start within [0, 10^6): inside the cosine.
constexpr double kStartFactor = 0.01;
ScheduleSpec WarmupCosine() {
  return Spec("sequential", {{"milestones", std::vector<int64_t>{kWarmup}}},
              {Spec("linear", {{"start_factor", kStartFactor}, {"total_iters", kWarmup}}),
               Spec("cosine_annealing", {{"t_max", kTMax}})});
}

const Evaluator& EvaluatorFor(int64_t vector) {
  static const ScalarEvaluator scalar;
  static const VectorEvaluator vectorized;
  if (vector != 0) return vectorized;
  return scalar;
}

// Spans starting at varied steps within the schedule's first 10^6.
void RunSpan(benchmark::State& state, const ScheduleSpec& spec) {
  const std::vector<double> bases = {0.1};
  auto nodes = CompileStandalone(spec, bases, "schedule");
  if (!nodes.ok()) {
    state.SkipWithError(std::string(nodes.status().message()).c_str());
    return;
  }
  const Evaluator& evaluator = EvaluatorFor(state.range(1));
  std::vector<double> out(static_cast<size_t>(state.range(0)));
  int64_t start = 0;
  for (auto _ : state) {
    const EvalQuery query{(*nodes)[0].get(), start, out};
    evaluator.Evaluate(std::span<const EvalQuery>(&query, 1));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    start = (start + 7919) % 1'000'000;
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetLabel(state.range(1) != 0 ? VectorTargetName() : "scalar");
}

// Every kind, one representative spec each (the library kinds by one common schedule).
#define HPSCHED_KIND_BENCH(Name, spec_expr) \
  void BM_##Name(benchmark::State& s) { RunSpan(s, spec_expr); }
HPSCHED_KIND_BENCH(Constant, Spec("constant", {{"factor", 0.5}, {"total_iters", int64_t{100}}}))
HPSCHED_KIND_BENCH(Step, Spec("step", {{"step_size", int64_t{10}}}))
HPSCHED_KIND_BENCH(MultiStep,
                   Spec("multi_step", {{"milestones", std::vector<int64_t>{100, 1000, 10000}}}))
HPSCHED_KIND_BENCH(Exponential, Spec("exponential", {{"gamma", 0.9999}}))
HPSCHED_KIND_BENCH(Linear, Spec("linear", {{"total_iters", int64_t{1'000'000}}}))
HPSCHED_KIND_BENCH(Polynomial,
                   Spec("polynomial", {{"total_iters", int64_t{2'000'000}}, {"power", 2.0}}))
HPSCHED_KIND_BENCH(CosineAnnealing, Spec("cosine_annealing", {{"t_max", int64_t{1'000'000}}}))
HPSCHED_KIND_BENCH(WarmRestarts, Spec("cosine_annealing_warm_restarts",
                                      {{"t_0", int64_t{1000}}, {"t_mult", int64_t{2}}}))
HPSCHED_KIND_BENCH(Cyclic, Spec("cyclic", {{"base_lr", std::vector<double>{0.01}},
                                           {"max_lr", std::vector<double>{0.1}},
                                           {"step_size_up", 2000.0},
                                           {"mode", std::string("exp_range")},
                                           {"gamma", 0.99999}}))
HPSCHED_KIND_BENCH(OneCycle, Spec("one_cycle", {{"total_steps", int64_t{2'000'000}}}))
HPSCHED_KIND_BENCH(Lambda, Spec("lambda", {{"expression", std::string("min(1, (step + 1) / 100) "
                                                                      "* 0.99 ** (step / 100)")}}))
HPSCHED_KIND_BENCH(Multiplicative, Spec("multiplicative", {{"lr_lambda", std::string("0.999999")},
                                                           {"total_iters", int64_t{1000}}}))
HPSCHED_KIND_BENCH(SequentialWarmupCosine, WarmupCosine())
HPSCHED_KIND_BENCH(Chained, Spec("chained", {},
                                 {Spec("exponential", {{"gamma", 0.99999}}),
                                  Spec("cosine_annealing", {{"t_max", int64_t{1'000'000}}})}))
HPSCHED_KIND_BENCH(TransformersCosine,
                   Spec("transformers", {{"name", std::string("cosine")},
                                         {"num_warmup_steps", int64_t{100}},
                                         {"num_training_steps", int64_t{2'000'000}}}))
HPSCHED_KIND_BENCH(KerasCosineDecay,
                   Spec("keras", {{"name", std::string("CosineDecay")},
                                  {"initial_learning_rate", std::vector<double>{0.1}},
                                  {"decay_steps", 2'000'000.0}}))
HPSCHED_KIND_BENCH(OptaxWarmupCosine,
                   Spec("optax", {{"name", std::string("warmup_cosine_decay_schedule")},
                                  {"init_value", std::vector<double>{0.0}},
                                  {"peak_value", std::vector<double>{0.1}},
                                  {"warmup_steps", int64_t{100}},
                                  {"decay_steps", int64_t{2'000'000}}}))
HPSCHED_KIND_BENCH(TimmCosine, Spec("timm", {{"name", std::string("cosine")},
                                             {"t_initial", int64_t{2'000'000}},
                                             {"warmup_t", int64_t{100}}}))
HPSCHED_KIND_BENCH(DeepSpeedWarmupCosine,
                   Spec("deepspeed", {{"name", std::string("WarmupCosineLR")},
                                      {"total_num_steps", int64_t{2'000'000}},
                                      {"warmup_num_steps", int64_t{100}}}))
HPSCHED_KIND_BENCH(MegatronCosine, Spec("megatron", {{"name", std::string("cosine")},
                                                     {"max_lr", std::vector<double>{0.1}},
                                                     {"min_lr", std::vector<double>{0.0}},
                                                     {"lr_warmup_steps", int64_t{100}},
                                                     {"lr_decay_steps", int64_t{2'000'000}}}))
HPSCHED_KIND_BENCH(ReduceOnPlateau, Spec("reduce_on_plateau", {{"metric", std::string("loss")}}))
#undef HPSCHED_KIND_BENCH

void Spans(benchmark::internal::Benchmark* b) {
  for (int64_t span : {1, 64, 4096, 100'000}) {
    for (int64_t vector : {0, 1}) b->Args({span, vector});
  }
}
BENCHMARK(BM_Constant)->Apply(Spans);
BENCHMARK(BM_Step)->Apply(Spans);
BENCHMARK(BM_MultiStep)->Apply(Spans);
BENCHMARK(BM_Exponential)->Apply(Spans);
BENCHMARK(BM_Linear)->Apply(Spans);
BENCHMARK(BM_Polynomial)->Apply(Spans);
BENCHMARK(BM_CosineAnnealing)->Apply(Spans);
BENCHMARK(BM_WarmRestarts)->Apply(Spans);
BENCHMARK(BM_Cyclic)->Apply(Spans);
BENCHMARK(BM_OneCycle)->Apply(Spans);
BENCHMARK(BM_Lambda)->Apply(Spans);
BENCHMARK(BM_Multiplicative)->Apply(Spans);
BENCHMARK(BM_SequentialWarmupCosine)->Apply(Spans);
BENCHMARK(BM_Chained)->Apply(Spans);
BENCHMARK(BM_TransformersCosine)->Apply(Spans);
BENCHMARK(BM_KerasCosineDecay)->Apply(Spans);
BENCHMARK(BM_OptaxWarmupCosine)->Apply(Spans);
BENCHMARK(BM_TimmCosine)->Apply(Spans);
BENCHMARK(BM_DeepSpeedWarmupCosine)->Apply(Spans);
BENCHMARK(BM_MegatronCosine)->Apply(Spans);
BENCHMARK(BM_ReduceOnPlateau)->Apply(Spans);

// 10^4 jobs (warmup + cosine with varied lengths), one query of range(0) steps each, in one batch:
// the read path's shape when many trainers ask at once.
void BM_BatchWarmupCosine10kJobs(benchmark::State& state) {
  constexpr int kJobs = 10'000;
  std::vector<NodePtr> nodes;
  nodes.reserve(kJobs);
  for (int j = 0; j < kJobs; ++j) {
    const int64_t warmup = 50 + j % 200;
    auto compiled = CompileStandalone(
        Spec("sequential", {{"milestones", std::vector<int64_t>{warmup}}},
             {Spec("linear", {{"start_factor", kStartFactor}, {"total_iters", warmup}}),
              Spec("cosine_annealing", {{"t_max", int64_t{10'000} + j}})}),
        std::vector<double>{0.1}, "schedule");
    if (!compiled.ok()) {
      state.SkipWithError(std::string(compiled.status().message()).c_str());
      return;
    }
    nodes.push_back(std::move((*compiled)[0]));
  }
  const size_t count = static_cast<size_t>(state.range(0));
  std::vector<double> out(kJobs * count);
  std::vector<EvalQuery> queries(kJobs);
  const Evaluator& evaluator = EvaluatorFor(state.range(1));
  int64_t round = 0;
  for (auto _ : state) {
    for (int j = 0; j < kJobs; ++j) {
      queries[j] = EvalQuery{nodes[j].get(), (round * 97 + j * 13) % 20'000,
                             std::span<double>(out.data() + j * count, count)};
    }
    evaluator.Evaluate(queries);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    ++round;
  }
  state.SetItemsProcessed(state.iterations() * kJobs * state.range(0));
  state.SetLabel(state.range(1) != 0 ? VectorTargetName() : "scalar");
}
BENCHMARK(BM_BatchWarmupCosine10kJobs)->Args({1, 0})->Args({1, 1})->Args({16, 0})->Args({16, 1});

// The libmvec loop of the same warmup + cosine (second argument unused, kept for the table).
void BM_LibmvecWarmupCosine(benchmark::State& state) {
  std::vector<double> out(static_cast<size_t>(state.range(0)));
  int64_t start = 0;
  for (auto _ : state) {
    bench::LibmvecWarmupCosine(0.1, kStartFactor, kWarmup, kTMax, start, out.data(),
                               state.range(0));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
    start = (start + 7919) % 1'000'000;
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetLabel("libmvec AVX2");
}
BENCHMARK(BM_LibmvecWarmupCosine)->Args({1, 2})->Args({64, 2})->Args({4096, 2})->Args({100'000, 2});

// The vector path restricted to AVX2, for the like-for-like ratio with the libmvec loop on a
// machine whose best target is AVX-512 (skipped where AVX2 is not available).
void BM_SequentialWarmupCosineAvx2(benchmark::State& state) {
  constexpr int64_t kAvx2 = int64_t{1} << 9;  // HWY_AVX2
  bool found = false;
  for (int64_t target : AvailableVectorTargets()) found = found || target == kAvx2;
  if (!found) {
    state.SkipWithError("no AVX2");
    return;
  }
  RestrictVectorTarget(kAvx2);
  RunSpan(state, WarmupCosine());
  RestrictVectorTarget(0);
}
BENCHMARK(BM_SequentialWarmupCosineAvx2)->Args({4096, 1})->Args({100'000, 1});

}  // namespace
}  // namespace hpsched::core

BENCHMARK_MAIN();
