// The span kernels of vector_math.h. Highway compiles the vector part once per x86 target
// (foreach_target) and HWY_DYNAMIC_DISPATCH picks the best one the CPU supports, once per
// process. cos and pow are SLEEF's 1-ULP functions for that target's vector width (SLEEF's
// dispatcher would choose by itself, but one vector width per Highway target keeps the loops and
// the math in the same registers). Compiled with -ffp-contract=off (server/CMakeLists.txt).
#include "core/vector_math.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/vector_math.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
// SLEEF's per-target entry points (sleef.h declares them only when the whole translation unit is
// built for that instruction set; here only the Highway target's functions are). Declared once
// per target, inside that target's pragma region, so the vector arguments pass in its registers.
#if HWY_ARCH_X86 && HWY_TARGET == HWY_SSE4
extern "C" {
__m128d Sleef_cosd2_u10sse4(__m128d);
__m128d Sleef_powd2_u10sse4(__m128d, __m128d);
}
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
extern "C" {
__m256d Sleef_cosd4_u10avx2(__m256d);
__m256d Sleef_powd4_u10avx2(__m256d, __m256d);
}
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX3
extern "C" {
__m512d Sleef_cosd8_u10avx512f(__m512d);
__m512d Sleef_powd8_u10avx512f(__m512d, __m512d);
}
#endif

namespace hpsched::core::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<double>;
using V = hn::Vec<D>;

// SLEEF's cos takes one branch of its argument reduction for a whole vector, chosen by its largest
// lane (sleefsimddp.c: |x| < 15, TRIGRANGEMAX2: two-constant Cody-Waite; < 1e14, TRIGRANGEMAX:
// four constants; beyond: Payne-Hanek), and the branches may differ in the last bit. A lane's
// result must not depend on its neighbours, so a vector whose lanes fall in different ranges is
// computed lane by lane, each lane broadcast alone.
constexpr double kSmallTrig = 15;
constexpr double kMediumTrig = 1e14;

#if HWY_ARCH_X86 && HWY_TARGET == HWY_SSE4
HWY_INLINE V RawCos(V x) { return V{Sleef_cosd2_u10sse4(x.raw)}; }
HWY_INLINE V Pow(V x, V y) { return V{Sleef_powd2_u10sse4(x.raw, y.raw)}; }
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
HWY_INLINE V RawCos(V x) { return V{Sleef_cosd4_u10avx2(x.raw)}; }
HWY_INLINE V Pow(V x, V y) { return V{Sleef_powd4_u10avx2(x.raw, y.raw)}; }
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX3
HWY_INLINE V RawCos(V x) { return V{Sleef_cosd8_u10avx512f(x.raw)}; }
HWY_INLINE V Pow(V x, V y) { return V{Sleef_powd8_u10avx512f(x.raw, y.raw)}; }
#else
// Targets without a SLEEF counterpart here (SSSE3, EMU128, scalar): libm lane by lane, which is
// the scalar reference itself.
HWY_INLINE V RawCos(V x) {
  const D d;
  HWY_ALIGN double lanes[hn::MaxLanes(d)];
  hn::Store(x, d, lanes);
  for (size_t i = 0; i < hn::Lanes(d); ++i) lanes[i] = std::cos(lanes[i]);
  return hn::Load(d, lanes);
}
HWY_INLINE V Pow(V x, V y) {
  const D d;
  HWY_ALIGN double xs[hn::MaxLanes(d)];
  HWY_ALIGN double ys[hn::MaxLanes(d)];
  hn::Store(x, d, xs);
  hn::Store(y, d, ys);
  for (size_t i = 0; i < hn::Lanes(d); ++i) xs[i] = std::pow(xs[i], ys[i]);
  return hn::Load(d, xs);
}
#endif

// cos with each lane's result a function of that lane alone (see kSmallTrig). NaN lanes (never
// produced by the validated formulas) count as large and go lane by lane too.
HWY_INLINE V Cos(V x) {
  const D d;
  const V magnitude = hn::Abs(x);
  const auto small = hn::Lt(magnitude, hn::Set(d, kSmallTrig));
  if (HWY_LIKELY(hn::AllTrue(d, small))) return RawCos(x);
  if (hn::AllFalse(d, small) && hn::AllTrue(d, hn::Lt(magnitude, hn::Set(d, kMediumTrig)))) {
    return RawCos(x);
  }
  HWY_ALIGN double lanes[hn::MaxLanes(d)];
  hn::Store(x, d, lanes);
  for (size_t i = 0; i < hn::Lanes(d); ++i) {
    lanes[i] = hn::GetLane(RawCos(hn::Set(d, lanes[i])));
  }
  return hn::Load(d, lanes);
}

// Runs `kernel(t)` (t: a vector of consecutive steps as doubles) over out: full vectors, then the
// tail through one more full vector whose extra lanes are discarded, so a step's value never
// depends on where the span ends.
template <typename Kernel>
HWY_INLINE void ForSteps(int64_t start, std::span<double> out, const Kernel& kernel) {
  const D d;
  const size_t n = hn::Lanes(d);
  const V iota = hn::Iota(d, 0.0);
  size_t i = 0;
  for (; i + n <= out.size(); i += n) {
    // start + i < 2^53: exact, and so is every lane's sum.
    const V t = hn::Add(hn::Set(d, static_cast<double>(start + static_cast<int64_t>(i))), iota);
    hn::StoreU(kernel(t), d, out.data() + i);
  }
  if (i < out.size()) {
    HWY_ALIGN double tail[hn::MaxLanes(d)];
    const V t = hn::Add(hn::Set(d, static_cast<double>(start + static_cast<int64_t>(i))), iota);
    hn::Store(kernel(t), d, tail);
    std::copy(tail, tail + (out.size() - i), out.data() + i);
  }
}

void CosImpl(std::span<double> x) {
  const D d;
  const size_t n = hn::Lanes(d);
  size_t i = 0;
  for (; i + n <= x.size(); i += n) hn::StoreU(Cos(hn::LoadU(d, x.data() + i)), d, x.data() + i);
  if (i < x.size()) {
    HWY_ALIGN double lanes[hn::MaxLanes(d)] = {};  // Padding 0: a small argument.
    std::copy(x.data() + i, x.data() + x.size(), lanes);
    hn::Store(Cos(hn::Load(d, lanes)), d, lanes);
    std::copy(lanes, lanes + (x.size() - i), x.data() + i);
  }
}

void CosineAnnealingStepsImpl(double base, double eta_min, double t_max, int64_t start,
                              std::span<double> out) {
  const D d;
  const V pi = hn::Set(d, std::numbers::pi);
  const V vt_max = hn::Set(d, t_max);
  const V one = hn::Set(d, 1.0);
  const V half = hn::Set(d, 0.5);  // x / 2 and x * 0.5 round the same exact value.
  const V veta = hn::Set(d, eta_min);
  const V range = hn::Set(d, base - eta_min);
  ForSteps(start, out, [&](V t) {
    const V c = Cos(hn::Div(hn::Mul(pi, t), vt_max));
    return hn::Add(veta, hn::Mul(hn::Mul(range, hn::Add(one, c)), half));
  });
}

void CosineAnnealingPairsImpl(double base, double eta_min, const double* t, const double* t_max,
                              std::span<double> out) {
  const D d;
  const size_t n = hn::Lanes(d);
  const V pi = hn::Set(d, std::numbers::pi);
  const V one = hn::Set(d, 1.0);
  const V half = hn::Set(d, 0.5);
  const V veta = hn::Set(d, eta_min);
  const V range = hn::Set(d, base - eta_min);
  const auto formula = [&](V vt, V vt_max) {
    const V c = Cos(hn::Div(hn::Mul(pi, vt), vt_max));
    return hn::Add(veta, hn::Mul(hn::Mul(range, hn::Add(one, c)), half));
  };
  size_t i = 0;
  for (; i + n <= out.size(); i += n) {
    hn::StoreU(formula(hn::LoadU(d, t + i), hn::LoadU(d, t_max + i)), d, out.data() + i);
  }
  if (i < out.size()) {
    // Padding lanes hold t = 0, t_max = 1: a small argument, so they never change the branch.
    HWY_ALIGN double ts[hn::MaxLanes(d)] = {};
    HWY_ALIGN double maxes[hn::MaxLanes(d)];
    std::fill(maxes, maxes + hn::MaxLanes(d), 1.0);
    std::copy(t + i, t + out.size(), ts);
    std::copy(t_max + i, t_max + out.size(), maxes);
    hn::Store(formula(hn::Load(d, ts), hn::Load(d, maxes)), d, ts);
    std::copy(ts, ts + (out.size() - i), out.data() + i);
  }
}

void LinearStepsImpl(double base, double start_factor, double delta, int64_t total, int64_t start,
                     std::span<double> out) {
  const D d;
  const V vbase = hn::Set(d, base);
  const V vstart = hn::Set(d, start_factor);
  const V vdelta = hn::Set(d, delta);
  const V vtotal = hn::Set(d, static_cast<double>(total));
  ForSteps(start, out, [&](V t) {
    // min in doubles equals min in integers: both are exact below 2^53.
    const V frac = hn::Div(hn::Mul(vdelta, hn::Min(t, vtotal)), vtotal);
    return hn::Mul(vbase, hn::Add(vstart, frac));
  });
}

void ExponentialStepsImpl(double base, double gamma, int64_t start, std::span<double> out) {
  const D d;
  const V vbase = hn::Set(d, base);
  const V vgamma = hn::Set(d, gamma);
  ForSteps(start, out, [&](V t) { return hn::Mul(vbase, Pow(vgamma, t)); });
}

void PolynomialStepsImpl(double base, int64_t total, double power, int64_t start,
                         std::span<double> out) {
  const D d;
  const V vbase = hn::Set(d, base);
  const V vtotal = hn::Set(d, static_cast<double>(total));
  const V vpower = hn::Set(d, power);
  const V one = hn::Set(d, 1.0);
  ForSteps(start, out, [&](V t) {
    const V x = hn::Sub(one, hn::Div(hn::Min(t, vtotal), vtotal));
    return hn::Mul(vbase, Pow(x, vpower));
  });
}

void OneCyclePhaseImpl(double begin, double end, double phase_start, double phase_length,
                       bool cosine, int64_t start, int64_t last, std::span<double> out) {
  const D d;
  const V vbegin = hn::Set(d, begin);
  const V vend = hn::Set(d, end);
  const V vphase_start = hn::Set(d, phase_start);
  const V vlength = hn::Set(d, phase_length);
  const V vlast = hn::Set(d, static_cast<double>(last));
  const V pi = hn::Set(d, std::numbers::pi);
  const V one = hn::Set(d, 1.0);
  const V half_range = hn::Set(d, (begin - end) / 2.0);
  const V slope = hn::Set(d, end - begin);
  ForSteps(start, out, [&](V t) {
    const V pct = hn::Div(hn::Sub(hn::Min(t, vlast), vphase_start), vlength);
    if (cosine) return hn::Add(vend, hn::Mul(half_range, hn::Add(Cos(hn::Mul(pi, pct)), one)));
    return hn::Add(hn::Mul(slope, pct), vbegin);
  });
}

const char* TargetNameImpl() { return hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace hpsched::core::simd
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "core/kinds/cosine_formula.h"

namespace hpsched::core {
namespace {
thread_local MathPath current_path = MathPath::kVector;
}  // namespace

MathPath CurrentMathPath() { return current_path; }

ScopedMathPath::ScopedMathPath(MathPath path) : previous_(current_path) { current_path = path; }
ScopedMathPath::~ScopedMathPath() { current_path = previous_; }

namespace simd {

HWY_EXPORT(CosImpl);
HWY_EXPORT(CosineAnnealingStepsImpl);
HWY_EXPORT(CosineAnnealingPairsImpl);
HWY_EXPORT(LinearStepsImpl);
HWY_EXPORT(ExponentialStepsImpl);
HWY_EXPORT(PolynomialStepsImpl);
HWY_EXPORT(OneCyclePhaseImpl);
HWY_EXPORT(TargetNameImpl);

// Each scalar branch is the kind's formula as it was written before the vector path, one libm
// call per value: the reference.

void Cos(std::span<double> x) {
  if (CurrentMathPath() == MathPath::kScalar) {
    for (double& value : x) value = std::cos(value);
    return;
  }
  HWY_DYNAMIC_DISPATCH(CosImpl)(x);
}

void CosineAnnealingSteps(double base, double eta_min, double t_max, int64_t start,
                          std::span<double> out) {
  if (CurrentMathPath() == MathPath::kScalar) {
    for (size_t i = 0; i < out.size(); ++i) {
      const double t = static_cast<double>(start + static_cast<int64_t>(i));
      out[i] = kinds::CosineAnnealing(base, eta_min, t, t_max);
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(CosineAnnealingStepsImpl)(base, eta_min, t_max, start, out);
}

void CosineAnnealingPairs(double base, double eta_min, const double* t, const double* t_max,
                          std::span<double> out) {
  if (CurrentMathPath() == MathPath::kScalar) {
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = kinds::CosineAnnealing(base, eta_min, t[i], t_max[i]);
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(CosineAnnealingPairsImpl)(base, eta_min, t, t_max, out);
}

void LinearSteps(double base, double start_factor, double delta, int64_t total, int64_t start,
                 std::span<double> out) {
  if (CurrentMathPath() == MathPath::kScalar) {
    const double total_d = static_cast<double>(total);
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t t = std::min(total, start + static_cast<int64_t>(i));
      out[i] = base * (start_factor + delta * static_cast<double>(t) / total_d);
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(LinearStepsImpl)(base, start_factor, delta, total, start, out);
}

void ExponentialSteps(double base, double gamma, int64_t start, std::span<double> out) {
  if (CurrentMathPath() == MathPath::kScalar) {
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = base * std::pow(gamma, static_cast<double>(start + static_cast<int64_t>(i)));
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(ExponentialStepsImpl)(base, gamma, start, out);
}

void PolynomialSteps(double base, int64_t total, double power, int64_t start,
                     std::span<double> out) {
  if (CurrentMathPath() == MathPath::kScalar) {
    const double total_d = static_cast<double>(total);
    for (size_t i = 0; i < out.size(); ++i) {
      const int64_t t = std::min(total, start + static_cast<int64_t>(i));
      out[i] = base * std::pow(1.0 - static_cast<double>(t) / total_d, power);
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(PolynomialStepsImpl)(base, total, power, start, out);
}

void OneCyclePhase(double begin, double end, double phase_start, double phase_length, bool cosine,
                   int64_t start, int64_t last, std::span<double> out) {
  if (CurrentMathPath() == MathPath::kScalar) {
    for (size_t i = 0; i < out.size(); ++i) {
      const double step = static_cast<double>(std::min(start + static_cast<int64_t>(i), last));
      const double pct = (step - phase_start) / phase_length;
      if (cosine) {
        const double cos_out = std::cos(std::numbers::pi * pct) + 1;
        out[i] = end + (begin - end) / 2.0 * cos_out;
      } else {
        out[i] = (end - begin) * pct + begin;
      }
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(OneCyclePhaseImpl)
  (begin, end, phase_start, phase_length, cosine, start, last, out);
}

}  // namespace simd

std::string VectorTargetName() { return HWY_DYNAMIC_DISPATCH(simd::TargetNameImpl)(); }

std::vector<int64_t> AvailableVectorTargets() {
  std::vector<int64_t> targets;
  const int64_t available = hwy::SupportedTargets() & HWY_TARGETS;
  for (int64_t bit = 1; bit != 0 && bit <= available; bit <<= 1) {
    if ((available & bit) != 0) targets.push_back(bit);  // Lower bits are the better targets.
  }
  return targets;
}

void RestrictVectorTarget(int64_t target) { hwy::SetSupportedTargetsForTest(target); }

}  // namespace hpsched::core
#endif  // HWY_ONCE
