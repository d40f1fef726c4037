// Sharing compiled subtrees between the parameter groups of one hyperparameter (issue 10: a
// `chained` tree compiled once per group cost size x groups). A subtree's node depends on its
// group only through its base value, its time offset and the per-group parameters it reads; when
// it reads none, every group with the same base value and offset gets the node the first one
// compiled. The children of `chained` (base value 1) are the common case: their tree is compiled
// once for all groups.
#ifndef HPSCHED_CORE_COMPILE_CACHE_H_
#define HPSCHED_CORE_COMPILE_CACHE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "absl/status/statusor.h"
#include "core/node.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

struct CompileContext;

// Not thread-safe: one per compile of one hyperparameter (every group of it), which must not
// outlive the spec it compiles. The nodes it hands out are immutable and may be shared freely.
class CompileCache {
 public:
  using Compiler = absl::StatusOr<NodePtr> (*)(const ScheduleSpec&, const CompileContext&);

  // `compile(spec, context)`, or the node an earlier group compiled for the same spec, base value
  // and time offset, when that compile read nothing of its own group.
  absl::StatusOr<NodePtr> Compile(const ScheduleSpec& spec, const CompileContext& context,
                                  Compiler compile);

  // Called by what reads its group's own parameters (a per-group list, notes for the plan): the
  // subtree being compiled, and every one around it, is not shared.
  void MarkGroupDependent() { group_dependent_ = true; }

  // How many subtrees were compiled, and how many were handed out again (tests, benchmarks).
  int64_t compiled() const { return compiled_; }
  int64_t shared() const { return shared_; }

 private:
  using Key = std::tuple<const ScheduleSpec*, uint64_t, int64_t>;

  std::map<Key, std::shared_ptr<const Node>> nodes_;
  bool group_dependent_ = false;
  int64_t compiled_ = 0;
  int64_t shared_ = 0;
};

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_COMPILE_CACHE_H_
