// The AVX-512 half of sleef_wide.h; compiled with -mavx512f (server/CMakeLists.txt). SLEEF's
// deterministic FMA variants (finz_): the same bits at every vector width.
#include <immintrin.h>

#include "core/sleef_wide.h"

extern "C" {
__m512d Sleef_finz_cosd8_u35avx512f(__m512d);
__m512d Sleef_finz_powd8_u10avx512f(__m512d, __m512d);
}

namespace hpsched::core::sleef_wide {

void CosD8(const double* x, double* out) {
  _mm512_storeu_pd(out, Sleef_finz_cosd8_u35avx512f(_mm512_loadu_pd(x)));
}

void PowD8(const double* x, const double* y, double* out) {
  _mm512_storeu_pd(out, Sleef_finz_powd8_u10avx512f(_mm512_loadu_pd(x), _mm512_loadu_pd(y)));
}

}  // namespace hpsched::core::sleef_wide
