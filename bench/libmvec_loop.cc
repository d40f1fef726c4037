// The baseline of issue 11: warmup + cosine as a plain C++ loop that GCC vectorizes through glibc's
// libmvec (`#pragma omp simd` with -fopenmp-simd; AVX2 calls _ZGVdN4v_cos). Its own translation
// unit, built with -O3 -mavx2 -mfma -fopenmp-simd -fno-math-errno -fno-trapping-math (the select
// needs the last) and without -ffast-math (bench/CMakeLists.txt); bench/core_bench.py checks with
// objdump that the call is there. Not the service's formula: libmvec's cos is within 4 ULP and the
// lanes are not range-checked.
#include "libmvec_loop.h"

// glibc declares the vector variants only under -ffast-math; declared here so that the loop is
// vectorized without it.
extern "C" {
#pragma omp declare simd notinbranch
double cos(double) noexcept;
}

namespace hpsched::bench {

void LibmvecWarmupCosine(double base, double start_factor, int64_t warmup, int64_t t_max,
                         int64_t start, double* out, int64_t count) {
  const double w = static_cast<double>(warmup);
  const double tm = static_cast<double>(t_max);
  const double pi = 3.14159265358979323846;
  const double t0 = static_cast<double>(start);
  // An int index and a double induction: AVX2 has no int64 -> double conversion, and GCC would
  // not vectorize the loop with one.
  const int n = static_cast<int>(count);
#pragma omp simd
  for (int i = 0; i < n; ++i) {
    const double t = t0 + i;
    const double warm = base * (start_factor + (1 - start_factor) * t / w);
    const double cosine = base * (1 + cos(pi * (t - w) / tm)) / 2;
    out[i] = t < w ? warm : cosine;
  }
}

}  // namespace hpsched::bench
