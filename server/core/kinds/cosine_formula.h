// PyTorch's cosine annealing formula, shared by cosine_annealing and cosine_annealing_warm_restarts
// so both compute eta_min + (b - eta_min) * (1 + cos(pi * t / t_max)) / 2 with the same operations
// as torch/optim/lr_scheduler.py.
#ifndef HPSCHED_CORE_KINDS_COSINE_FORMULA_H_
#define HPSCHED_CORE_KINDS_COSINE_FORMULA_H_

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/node.h"

namespace hpsched::core::kinds {

inline double CosineAnnealing(double base, double eta_min, double t, double t_max) {
  return eta_min + (base - eta_min) * (1 + std::cos(std::numbers::pi * t / t_max)) / 2;
}

// The value lies between eta_min and base ((1 + cos) / 2 is in [0, 1]); |base|, |eta_min| <= 1e150
// (kMaxMagnitude) keep every intermediate finite.
inline double CosineAnnealingBound(double base, double eta_min) {
  return RoundBoundUp(std::max(std::fabs(base), std::fabs(eta_min)));
}

}  // namespace hpsched::core::kinds

#endif  // HPSCHED_CORE_KINDS_COSINE_FORMULA_H_
