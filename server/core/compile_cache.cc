#include "core/compile_cache.h"

#include <bit>
#include <utility>
#include <vector>

#include "core/params.h"

namespace hpsched::core {
namespace {

// A node compiled once and shared: forwards every call (one virtual call per span more).
class SharedNode final : public Node {
 public:
  explicit SharedNode(std::shared_ptr<const Node> node)
      : Node(node->max_abs()), node_(std::move(node)) {}

  void Evaluate(int64_t start, std::span<double> out) const override {
    node_->Evaluate(start, out);
  }
  void AddReportDependences(int64_t start, int64_t end, int64_t shift,
                            std::vector<ReportDependence>* out) const override {
    node_->AddReportDependences(start, end, shift, out);
  }
  int64_t step_cost() const override { return node_->step_cost(); }

 private:
  std::shared_ptr<const Node> node_;
};

}  // namespace

absl::StatusOr<NodePtr> CompileCache::Compile(const ScheduleSpec& spec,
                                              const CompileContext& context, Compiler compile) {
  const Key key{&spec, std::bit_cast<uint64_t>(context.base), context.time_offset};
  if (auto found = nodes_.find(key); found != nodes_.end()) {
    ++shared_;
    return std::make_unique<SharedNode>(found->second);
  }
  // Whether this subtree reads its group, apart from what the subtrees around it read.
  const bool outer = group_dependent_;
  group_dependent_ = false;
  absl::StatusOr<NodePtr> node = compile(spec, context);
  const bool inner = group_dependent_;
  group_dependent_ = outer || inner;
  ++compiled_;
  if (!node.ok() || inner) return node;
  std::shared_ptr<const Node> shared = *std::move(node);
  nodes_.emplace(key, shared);
  return std::make_unique<SharedNode>(std::move(shared));
}

}  // namespace hpsched::core
