// cosine_annealing_warm_restarts: PyTorch CosineAnnealingWarmRestarts (torch/optim/lr_scheduler.py,
// CosineAnnealingWarmRestarts.get_lr with the cycle bookkeeping of its plain step()).
// Cycle i has length t_i = t_0 * t_mult^i; t_cur is the step within the current cycle;
// value(t) = eta_min + (b - eta_min) * (1 + cos(pi * t_cur / t_i)) / 2. Defaults t_mult 1, eta_min
// 0.
//
// Restart boundaries are found in integer arithmetic. PyTorch's step(epoch) uses a floating-point
// logarithm instead and misplaces some of them (t_0=10, t_mult=3, step 1210 gives eta_min where a
// restart gives b): we give the value of its plain step(), which is right.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "core/kind_registry.h"
#include "core/kinds/cosine_formula.h"
#include "core/status_macros.h"
#include "core/vector_math.h"

namespace hpsched::core::kinds {
namespace {

class WarmRestartsNode final : public Node {
 public:
  WarmRestartsNode(double base, double eta_min, int64_t t_0, int64_t t_mult)
      : Node(CosineAnnealingBound(base, eta_min)),
        base_(base),
        eta_min_(eta_min),
        t_0_(t_0),
        t_mult_(t_mult) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    // The cycle bookkeeping in integers, chunk by chunk; the formula over each chunk in one kernel.
    constexpr size_t kChunk = 256;
    std::array<double, kChunk> t_curs;
    std::array<double, kChunk> t_is;
    int64_t t_cur = 0;
    int64_t t_i = 0;
    Locate(start, &t_cur, &t_i);
    for (size_t offset = 0; offset < out.size(); offset += kChunk) {
      const size_t n = std::min(kChunk, out.size() - offset);
      for (size_t i = 0; i < n; ++i) {
        t_curs[i] = static_cast<double>(t_cur);
        t_is[i] = static_cast<double>(t_i);
        if (++t_cur >= t_i) {
          t_cur = 0;
          t_i = Grow(t_i);
        }
      }
      simd::CosineAnnealingPairs(base_, eta_min_, t_curs.data(), t_is.data(),
                                 out.subspan(offset, n));
    }
  }

 private:
  // The next cycle's length, saturating far beyond any step.
  int64_t Grow(int64_t length) const {
    if (length > std::numeric_limits<int64_t>::max() / t_mult_) {
      return std::numeric_limits<int64_t>::max();
    }
    return length * t_mult_;
  }

  // The position of step t: t_cur within a cycle of length t_i. At most 53 iterations when t_mult
  // > 1.
  void Locate(int64_t t, int64_t* t_cur, int64_t* t_i) const {
    if (t_mult_ == 1) {
      *t_cur = t % t_0_;
      *t_i = t_0_;
      return;
    }
    int64_t cycle_start = 0;
    int64_t length = t_0_;
    while (t - cycle_start >= length) {
      cycle_start += length;
      length = Grow(length);
    }
    *t_cur = t - cycle_start;
    *t_i = length;
  }

  double base_;
  double eta_min_;
  int64_t t_0_;
  int64_t t_mult_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileCosineAnnealingWarmRestarts(const ScheduleSpec& spec,
                                                           const CompileContext& context) {
  Params p(spec, context);
  ASSIGN_OR_RETURN(int64_t t_0, p.Int("t_0"));
  ASSIGN_OR_RETURN(int64_t t_mult, p.Int("t_mult", 1));
  ASSIGN_OR_RETURN(double eta_min, p.Double("eta_min", 0.0));
  if (t_0 <= 0) return p.Error("t_0", absl::StrCat("must be > 0, got ", t_0));
  if (t_mult < 1) return p.Error("t_mult", absl::StrCat("must be >= 1, got ", t_mult));
  return std::make_unique<WarmRestartsNode>(context.base, eta_min, t_0, t_mult);
}

}  // namespace hpsched::core::kinds
