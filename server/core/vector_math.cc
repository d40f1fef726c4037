// The span kernels of vector_math.h. Highway compiles the vector part once per x86 target
// (foreach_target) and HWY_DYNAMIC_DISPATCH picks the best one the CPU supports, once per
// process. cos and pow are SLEEF's (3.5-ULP cos, 1-ULP pow) for that target's vector width (SLEEF's
// dispatcher would choose by itself, but the width of each Highway target's registers keeps the
// loops and the math together, and spans' tails use SLEEF's 2-lane deterministic variants).
// Compiled with -ffp-contract=off (server/CMakeLists.txt).
#include "core/vector_math.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <span>

#include "core/sleef_wide.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/vector_math.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
// SLEEF's per-target entry points (sleef.h declares them only when the whole translation unit is
// built for that instruction set; here only the Highway target's functions are). Declared once
// per target, inside that target's pragma region, so the vector arguments pass in its registers.
// On AVX2 and AVX-512, the finz_ functions: SLEEF's deterministic FMA variants, which give the same
// bits at every vector width, so a span's tail can run on 2 lanes and still match the full
// vectors' lanes.
#if HWY_ARCH_X86 && HWY_TARGET == HWY_SSE4
extern "C" {
__m128d Sleef_cosd2_u35sse4(__m128d);
__m128d Sleef_powd2_u10sse4(__m128d, __m128d);
}
#elif HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3)
extern "C" {
// The 2-lane tail functions serve both targets: declared once, in whichever pass comes first
// (xmm arguments pass the same way under either).
#ifndef HPSCHED_SLEEF_AVX2128_DECLARED
#define HPSCHED_SLEEF_AVX2128_DECLARED
__m128d Sleef_finz_cosd2_u35avx2128(__m128d);
__m128d Sleef_finz_powd2_u10avx2128(__m128d, __m128d);
#endif
}
// The full-width functions (4 and 8 lanes) are called through core/sleef_wide.h, which passes
// the vectors in memory (see there why).

#endif

namespace hpsched::core::simd {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// D: the target's full vectors. DT: the vectors of a span's tail (2 lanes where the full vectors
// are wider and SLEEF's results do not depend on the width).
using D = hn::ScalableTag<double>;
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3)
using DT = hn::FixedTag<double, 2>;
#else
using DT = D;
#endif

// SLEEF's cos takes one branch of its argument reduction for a whole vector, chosen by its largest
// lane (sleefsimddp.c: |x| < 15, TRIGRANGEMAX2: two-constant Cody-Waite; < 1e14, TRIGRANGEMAX:
// four constants; beyond: Payne-Hanek), and the branches may differ in the last bit. A lane's
// result must not depend on its neighbours, so a vector whose lanes fall in different ranges is
// computed lane by lane, each lane broadcast alone.
constexpr double kSmallTrig = 15;
constexpr double kMediumTrig = 1e14;

// A full-width SLEEF function through core/sleef_wide.h, whose arguments pass in memory.
template <class DD>
HWY_INLINE hn::Vec<DD> ThroughMemory(DD d, hn::Vec<DD> x, void (*f)(const double*, double*)) {
  HWY_ALIGN double lanes[hn::MaxLanes(d)];
  hn::Store(x, d, lanes);
  f(lanes, lanes);
  return hn::Load(d, lanes);
}
template <class DD>
HWY_INLINE hn::Vec<DD> ThroughMemory(DD d, hn::Vec<DD> x, hn::Vec<DD> y,
                                     void (*f)(const double*, const double*, double*)) {
  HWY_ALIGN double xs[hn::MaxLanes(d)];
  HWY_ALIGN double ys[hn::MaxLanes(d)];
  hn::Store(x, d, xs);
  hn::Store(y, d, ys);
  f(xs, ys, xs);
  return hn::Load(d, xs);
}

// cos and pow of a whole vector of tag DD.
template <class DD>
HWY_INLINE hn::Vec<DD> RawCos(DD d, hn::Vec<DD> x) {
#if HWY_ARCH_X86 && HWY_TARGET == HWY_SSE4
  return hn::Vec<DD>{Sleef_cosd2_u35sse4(x.raw)};
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
  if constexpr (hn::MaxLanes(DD()) == 4) {
    return ThroughMemory(d, x, sleef_wide::CosD4);
  } else {
    return hn::Vec<DD>{Sleef_finz_cosd2_u35avx2128(x.raw)};
  }
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX3
  if constexpr (hn::MaxLanes(DD()) == 8) {
    return ThroughMemory(d, x, sleef_wide::CosD8);
  } else {
    return hn::Vec<DD>{Sleef_finz_cosd2_u35avx2128(x.raw)};
  }
#else
  // Targets without a SLEEF counterpart here (SSSE3, EMU128, scalar): libm lane by lane, which is
  // the scalar reference itself.
  HWY_ALIGN double lanes[hn::MaxLanes(d)];
  hn::Store(x, d, lanes);
  for (size_t i = 0; i < hn::Lanes(d); ++i) lanes[i] = std::cos(lanes[i]);
  return hn::Load(d, lanes);
#endif
}

template <class DD>
HWY_INLINE hn::Vec<DD> Pow(DD d, hn::Vec<DD> x, hn::Vec<DD> y) {
#if HWY_ARCH_X86 && HWY_TARGET == HWY_SSE4
  return hn::Vec<DD>{Sleef_powd2_u10sse4(x.raw, y.raw)};
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
  if constexpr (hn::MaxLanes(DD()) == 4) {
    return ThroughMemory(d, x, y, sleef_wide::PowD4);
  } else {
    return hn::Vec<DD>{Sleef_finz_powd2_u10avx2128(x.raw, y.raw)};
  }
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX3
  if constexpr (hn::MaxLanes(DD()) == 8) {
    return ThroughMemory(d, x, y, sleef_wide::PowD8);
  } else {
    return hn::Vec<DD>{Sleef_finz_powd2_u10avx2128(x.raw, y.raw)};
  }
#else
  HWY_ALIGN double xs[hn::MaxLanes(d)];
  HWY_ALIGN double ys[hn::MaxLanes(d)];
  hn::Store(x, d, xs);
  hn::Store(y, d, ys);
  for (size_t i = 0; i < hn::Lanes(d); ++i) xs[i] = std::pow(xs[i], ys[i]);
  return hn::Load(d, xs);
#endif
}

// cos with each lane's result a function of that lane alone (see kSmallTrig). NaN lanes (never
// produced by the validated formulas) count as large and go lane by lane too.
template <class DD>
HWY_INLINE hn::Vec<DD> Cos(DD d, hn::Vec<DD> x) {
  const auto magnitude = hn::Abs(x);
  const auto small = hn::Lt(magnitude, hn::Set(d, kSmallTrig));
  if (HWY_LIKELY(hn::AllTrue(d, small))) return RawCos(d, x);
  if (hn::AllFalse(d, small) && hn::AllTrue(d, hn::Lt(magnitude, hn::Set(d, kMediumTrig)))) {
    return RawCos(d, x);
  }
  HWY_ALIGN double lanes[hn::MaxLanes(d)];
  hn::Store(x, d, lanes);
  for (size_t i = 0; i < hn::Lanes(d); ++i) {
    lanes[i] = hn::GetLane(RawCos(d, hn::Set(d, lanes[i])));
  }
  return hn::Load(d, lanes);
}

// Runs `kernel(tag, t)` (t: a vector of consecutive steps as doubles) over out: full vectors, then
// the tail in vectors of DT whose extra lanes are discarded, so a step's value never depends on
// where the span ends.
template <typename Kernel>
HWY_INLINE void ForSteps(int64_t start, std::span<double> out, const Kernel& kernel) {
  const D d;
  const size_t n = hn::Lanes(d);
  const auto iota = hn::Iota(d, 0.0);
  size_t i = 0;
  for (; i + n <= out.size(); i += n) {
    // start + i < 2^53: exact, and so is every lane's sum.
    const auto t = hn::Add(hn::Set(d, static_cast<double>(start + static_cast<int64_t>(i))), iota);
    hn::StoreU(kernel(d, t), d, out.data() + i);
  }
  const DT dt;
  const size_t nt = hn::Lanes(dt);
  const auto iota_t = hn::Iota(dt, 0.0);
  for (; i < out.size(); i += nt) {
    HWY_ALIGN double tail[hn::MaxLanes(dt)];
    const auto t =
        hn::Add(hn::Set(dt, static_cast<double>(start + static_cast<int64_t>(i))), iota_t);
    hn::Store(kernel(dt, t), dt, tail);
    std::copy(tail, tail + std::min(nt, out.size() - i), out.data() + i);
  }
}

// Runs `kernel(tag, a, b)` over the values a[i], b[i] of two arrays into out, the tail in vectors
// of DT padded with `pad_a`, `pad_b`.
template <typename Kernel>
HWY_INLINE void ForPairs(const double* a, const double* b, double pad_a, double pad_b,
                         std::span<double> out, const Kernel& kernel) {
  const D d;
  const size_t n = hn::Lanes(d);
  size_t i = 0;
  for (; i + n <= out.size(); i += n) {
    hn::StoreU(kernel(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out.data() + i);
  }
  const DT dt;
  const size_t nt = hn::Lanes(dt);
  for (; i < out.size(); i += nt) {
    const size_t m = std::min(nt, out.size() - i);
    HWY_ALIGN double as[hn::MaxLanes(dt)];
    HWY_ALIGN double bs[hn::MaxLanes(dt)];
    std::fill(as, as + nt, pad_a);
    std::fill(bs, bs + nt, pad_b);
    std::copy(a + i, a + i + m, as);
    std::copy(b + i, b + i + m, bs);
    hn::Store(kernel(dt, hn::Load(dt, as), hn::Load(dt, bs)), dt, as);
    std::copy(as, as + m, out.data() + i);
  }
}

void CosImpl(std::span<double> x) {
  // Padding 0: a small argument, which never changes the branch of the lanes beside it.
  ForPairs(x.data(), x.data(), 0.0, 0.0, x, [](auto d, auto v, auto) { return Cos(d, v); });
}

void CosineAnnealingStepsImpl(double base, double eta_min, double t_max, int64_t start,
                              std::span<double> out) {
  ForSteps(start, out, [&](auto d, auto t) {
    const auto c = Cos(d, hn::Div(hn::Mul(hn::Set(d, std::numbers::pi), t), hn::Set(d, t_max)));
    // x / 2 and x * 0.5 round the same exact value.
    const auto scaled =
        hn::Mul(hn::Mul(hn::Set(d, base - eta_min), hn::Add(hn::Set(d, 1.0), c)), hn::Set(d, 0.5));
    return hn::Add(hn::Set(d, eta_min), scaled);
  });
}

void CosineAnnealingPairsImpl(double base, double eta_min, const double* t, const double* t_max,
                              std::span<double> out) {
  // Padding lanes hold t = 0, t_max = 1: a small argument, so they never change the branch.
  ForPairs(t, t_max, 0.0, 1.0, out, [&](auto d, auto vt, auto vt_max) {
    const auto c = Cos(d, hn::Div(hn::Mul(hn::Set(d, std::numbers::pi), vt), vt_max));
    const auto scaled =
        hn::Mul(hn::Mul(hn::Set(d, base - eta_min), hn::Add(hn::Set(d, 1.0), c)), hn::Set(d, 0.5));
    return hn::Add(hn::Set(d, eta_min), scaled);
  });
}

void LinearStepsImpl(double base, double start_factor, double delta, int64_t total, int64_t start,
                     std::span<double> out) {
  const double total_d = static_cast<double>(total);
  ForSteps(start, out, [&](auto d, auto t) {
    // min in doubles equals min in integers: both are exact below 2^53.
    const auto vtotal = hn::Set(d, total_d);
    const auto frac = hn::Div(hn::Mul(hn::Set(d, delta), hn::Min(t, vtotal)), vtotal);
    return hn::Mul(hn::Set(d, base), hn::Add(hn::Set(d, start_factor), frac));
  });
}

void ExponentialStepsImpl(double base, double gamma, int64_t start, std::span<double> out) {
  ForSteps(start, out,
           [&](auto d, auto t) { return hn::Mul(hn::Set(d, base), Pow(d, hn::Set(d, gamma), t)); });
}

void PolynomialStepsImpl(double base, int64_t total, double power, int64_t start,
                         std::span<double> out) {
  const double total_d = static_cast<double>(total);
  ForSteps(start, out, [&](auto d, auto t) {
    const auto vtotal = hn::Set(d, total_d);
    const auto x = hn::Sub(hn::Set(d, 1.0), hn::Div(hn::Min(t, vtotal), vtotal));
    return hn::Mul(hn::Set(d, base), Pow(d, x, hn::Set(d, power)));
  });
}

void OneCyclePhaseImpl(double begin, double end, double phase_start, double phase_length,
                       bool cosine, int64_t start, int64_t last, std::span<double> out) {
  const double last_d = static_cast<double>(last);
  const double half_range = (begin - end) / 2.0;
  const double slope = end - begin;
  ForSteps(start, out, [&](auto d, auto t) {
    const auto pct = hn::Div(hn::Sub(hn::Min(t, hn::Set(d, last_d)), hn::Set(d, phase_start)),
                             hn::Set(d, phase_length));
    if (cosine) {
      const auto c = Cos(d, hn::Mul(hn::Set(d, std::numbers::pi), pct));
      return hn::Add(hn::Set(d, end), hn::Mul(hn::Set(d, half_range), hn::Add(c, hn::Set(d, 1.0))));
    }
    return hn::Add(hn::Mul(hn::Set(d, slope), pct), hn::Set(d, begin));
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
