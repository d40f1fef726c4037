// chained: PyTorch ChainedScheduler (torch/optim/lr_scheduler.py) over multiplicative schedulers.
// value(t) = b * product of schedules[i](t), each evaluated with base value 1.
#include <algorithm>
#include <array>
#include <vector>

#include "core/kind_registry.h"
#include "core/status_macros.h"

namespace hpsched::core::kinds {
namespace {

class ChainedNode final : public Node {
 public:
  ChainedNode(double base, std::vector<NodePtr> children)
      : base_(base), children_(std::move(children)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    constexpr size_t kChunk = 256;
    std::array<double, kChunk> factors;
    std::fill(out.begin(), out.end(), base_);
    for (size_t offset = 0; offset < out.size(); offset += kChunk) {
      const size_t n = std::min(kChunk, out.size() - offset);
      const int64_t chunk_start = start + static_cast<int64_t>(offset);
      for (const NodePtr& child : children_) {
        child->Evaluate(chunk_start, std::span<double>(factors.data(), n));
        for (size_t i = 0; i < n; ++i) out[offset + i] *= factors[i];
      }
    }
  }

 private:
  double base_;
  std::vector<NodePtr> children_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileChained(const ScheduleSpec& spec, const CompileContext& context) {
  ASSIGN_OR_RETURN(std::vector<NodePtr> children, CompileChildren(spec, context, 1.0));
  return std::make_unique<ChainedNode>(context.base, std::move(children));
}

}  // namespace hpsched::core::kinds
