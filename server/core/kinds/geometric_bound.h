// The finiteness rule of the kinds whose value is b * gamma^n with a step-dependent count n (step,
// multi_step, exponential): PyTorch accepts gamma > 1, and so do we, as long as the value stays
// finite up to the largest n any step in [0, 2^53) reaches.
#ifndef HPSCHED_CORE_KINDS_GEOMETRIC_BOUND_H_
#define HPSCHED_CORE_KINDS_GEOMETRIC_BOUND_H_

#include <cmath>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "core/node.h"
#include "core/params.h"

namespace hpsched::core::kinds {

// A bound of |b * gamma^n| for n in [0, max_n] (gamma >= 0), or InvalidArgument on "gamma" when
// gamma > 1 and that value may overflow. `what_n` says what n counts, for the error.
inline absl::StatusOr<double> GeometricBound(const Params& p, double gamma, int64_t max_n,
                                             absl::string_view what_n) {
  const double b = std::fabs(p.context().base);
  // gamma^n <= 1 for gamma in [0, 1] (pow is faithful, and 1 is a double), so |b * gamma^n| <= |b|.
  if (gamma <= 1) return b;
  // pow is increasing in n for gamma > 1, up to its < 1 ulp error: RoundBoundUp covers that.
  const double top = RoundBoundUp(b * std::pow(gamma, static_cast<double>(max_n)));
  if (!std::isfinite(top) || !std::isfinite(std::pow(gamma, static_cast<double>(max_n)))) {
    return p.Error("gamma",
                   absl::StrCat("must be <= 1, or > 1 only as long as b * gamma^n stays "
                                "finite for every n up to ",
                                max_n, " (", what_n, "); b = ", p.context().base, ", got ", gamma));
  }
  return top;
}

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_GEOMETRIC_BOUND_H_
