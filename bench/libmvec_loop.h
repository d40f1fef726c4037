// The libmvec loop of warmup + cosine (libmvec_loop.cc), for evaluator_bench.
#ifndef HPSCHED_BENCH_LIBMVEC_LOOP_H_
#define HPSCHED_BENCH_LIBMVEC_LOOP_H_

#include <cstdint>

namespace hpsched::bench {

// out[i], i < count: base * linear warmup over `warmup` steps from start_factor, then cosine
// annealing to 0 over t_max steps, at step start + i.
void LibmvecWarmupCosine(double base, double start_factor, int64_t warmup, int64_t t_max,
                         int64_t start, double* out, int64_t count);  // count < 2^31

}  // namespace hpsched::bench

#endif  // HPSCHED_BENCH_LIBMVEC_LOOP_H_
