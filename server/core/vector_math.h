// Span kernels of the closed-form formulas, in two paths: the scalar reference (libm, one step at a
// time: the formulas exactly as the kinds wrote them before) and the vector path (Highway, with
// SLEEF's 3.5-ULP cos and 1-ULP pow, the instruction set chosen at run time: SSE4, AVX2 or
// AVX-512).
//
// Contract of every kernel:
// - The value of a step is a function of the step and the kernel's parameters alone, in either
//   path: the same bits whether the step is evaluated alone or inside any span (tails run through
//   the full vector code on padded lanes; lanes whose argument would take another branch of
//   SLEEF's range reduction than their neighbours' are computed one by one), so batched and
//   one-at-a-time evaluation agree bit for bit.
// - The vector path performs the formula's arithmetic with the same IEEE operations in the same
//   order as the scalar path (this file is compiled with -ffp-contract=off: no fused
//   multiply-adds), so the two differ only by the error of cos / pow: SLEEF's cos is within 3.5
//   ULP (its u35 functions: 1.5x to 2x faster than the 1-ULP u10 ones, which is what brings the
//   AVX2 path to libmvec's speed, bench/README.md), its pow and libm's functions within 1 ULP, so
//   a value differs by a few ULP of its own magnitude, or, where the formula cancels (1 + cos near
//   a cosine trough), by at most about 2 ULP of the formula's scale.
//   docs/catalog.md states the contract; tests/golden/vector_core_test.cc checks it.
// - Which path runs is the calling thread's: the vector path, unless a ScopedMathPath(kScalar) is
//   alive on the thread (ScalarEvaluator opens one around its batch). Nodes read it once per span.
// - Kernels allocate nothing and keep no state: safe from many threads at once.
#ifndef HPSCHED_CORE_VECTOR_MATH_H_
#define HPSCHED_CORE_VECTOR_MATH_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hpsched::core {

enum class MathPath { kVector, kScalar };

// The path the kernels take on the calling thread.
MathPath CurrentMathPath();

// Sets the calling thread's path for the object's lifetime, restoring the previous one after.
class ScopedMathPath {
 public:
  explicit ScopedMathPath(MathPath path);
  ~ScopedMathPath();
  ScopedMathPath(const ScopedMathPath&) = delete;
  ScopedMathPath& operator=(const ScopedMathPath&) = delete;

 private:
  MathPath previous_;
};

// The instruction set the vector path runs on in this process ("AVX2", "AVX3" = AVX-512, "SSE4",
// ...), as Highway names it.
std::string VectorTargetName();

// For tests and benchmarks. The vector targets this binary holds that this CPU supports (Highway's
// target bits, best first), and a restriction of the dispatch to one of them (0 lifts it). Not
// thread-safe: call while no evaluation runs.
std::vector<int64_t> AvailableVectorTargets();
void RestrictVectorTarget(int64_t target);

namespace simd {

// x[i] = cos(x[i]), in place: for formulas that compute their cos argument and finish around it in
// scalar code (ClosedFormNode's cos-split formulas).
void Cos(std::span<double> x);

// PyTorch's cosine annealing (cosine_formula.h): for t = start + i,
// out[i] = eta_min + (base - eta_min) * (1 + cos(pi * t / t_max)) / 2.
void CosineAnnealingSteps(double base, double eta_min, double t_max, int64_t start,
                          std::span<double> out);

// The same formula with t and t_max per value (warm restarts): t[i], t_max[i] for out[i]. `t` and
// `t_max` hold at least out.size() values.
void CosineAnnealingPairs(double base, double eta_min, const double* t, const double* t_max,
                          std::span<double> out);

// PyTorch's LinearLR: out[i] = base * (start_factor + delta * min(t, total) / total), t = start +
// i.
void LinearSteps(double base, double start_factor, double delta, int64_t total, int64_t start,
                 std::span<double> out);

// PyTorch's ExponentialLR: out[i] = base * pow(gamma, t), t = start + i.
void ExponentialSteps(double base, double gamma, int64_t start, std::span<double> out);

// PyTorch's PolynomialLR: out[i] = base * pow(1 - min(t, total) / total, power), t = start + i.
void PolynomialSteps(double base, int64_t total, double power, int64_t start,
                     std::span<double> out);

// One phase of a one-cycle policy (PyTorch's OneCycleLR, its _annealing_cos / _annealing_linear):
// for x = step(i) - phase_start, pct = x / phase_length, where step(i) = min(start + i, last):
// cosine: out[i] = end + (begin - end) / 2 * (cos(pi * pct) + 1); linear: (end - begin) * pct +
// begin.
void OneCyclePhase(double begin, double end, double phase_start, double phase_length, bool cosine,
                   int64_t start, int64_t last, std::span<double> out);

}  // namespace simd
}  // namespace hpsched::core

#endif  // HPSCHED_CORE_VECTOR_MATH_H_
