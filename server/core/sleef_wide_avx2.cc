// The AVX2 half of sleef_wide.h; compiled with -mavx2 -mfma (server/CMakeLists.txt). SLEEF's
// deterministic FMA variants (finz_): the same bits at every vector width.
#include <immintrin.h>

#include "core/sleef_wide.h"

extern "C" {
__m256d Sleef_finz_cosd4_u35avx2(__m256d);
__m256d Sleef_finz_powd4_u10avx2(__m256d, __m256d);
}

namespace hpsched::core::sleef_wide {

void CosD4(const double* x, double* out) {
  _mm256_storeu_pd(out, Sleef_finz_cosd4_u35avx2(_mm256_loadu_pd(x)));
}

void PowD4(const double* x, const double* y, double* out) {
  _mm256_storeu_pd(out, Sleef_finz_powd4_u10avx2(_mm256_loadu_pd(x), _mm256_loadu_pd(y)));
}

}  // namespace hpsched::core::sleef_wide
