// SLEEF's wide (256- and 512-bit) cos (3.5 ULP) and pow (1 ULP) behind a calling convention every
// compiler agrees on: arrays in memory. vector_math.cc is compiled for the baseline instruction set
// with per-function target regions (Highway), and clang chooses how to pass a __m256d / __m512d
// argument by the translation unit's instruction set, not the function's: it passes them in memory,
// while SLEEF's functions read them from ymm / zmm registers (pow then returned garbage in the
// clang fuzz build). The wrappers live in translation units compiled for AVX2 / AVX-512, where both
// compilers pass vectors in registers; vector_math.cc calls them only from the matching Highway
// target, so the CPU has the instructions.
//
// Each function reads 4 (D4) or 8 (D8) doubles from each input and writes as many to `out`; the
// arrays need no alignment. These translation units include nothing but <immintrin.h>, so no
// inline function compiled with wide instructions can be shared with the rest of the binary.
#ifndef HPSCHED_CORE_SLEEF_WIDE_H_
#define HPSCHED_CORE_SLEEF_WIDE_H_

namespace hpsched::core::sleef_wide {

// AVX2 + FMA.
void CosD4(const double* x, double* out);
void PowD4(const double* x, const double* y, double* out);

// AVX-512F.
void CosD8(const double* x, double* out);
void PowD8(const double* x, const double* y, double* out);

}  // namespace hpsched::core::sleef_wide

#endif  // HPSCHED_CORE_SLEEF_WIDE_H_
