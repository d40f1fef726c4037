// A hyperparameter's whole history compiled into one node per group: its schedule from step 0, then
// every UpdateJob segment from its effective step on.
#ifndef HPSCHED_CORE_HISTORY_H_
#define HPSCHED_CORE_HISTORY_H_

#include "absl/status/statusor.h"
#include "core/node.h"
#include "core/params.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

// Most segments one hyperparameter may accumulate.
inline constexpr size_t kMaxSegments = 256;
// Bound on the product of every scale factor of one hyperparameter's history, so that scaling can
// never overflow a value.
inline constexpr double kMaxScaleProduct = 1e6;

// Compiles `hp` for the group of `context` (context.path is the hyperparameter's field path,
// "job.hyperparameters[0]"; context.base its base value for the group). Segments apply in order:
// each replaces, from its effective step on, whatever applied there before. Errors are
// InvalidArgument naming "<path>.schedule..." or "<path>.segments[k]...".
absl::StatusOr<NodePtr> CompileHistory(const HyperparameterSpec& hp, const CompileContext& context);

// Checks one segment on its own (the parts that do not depend on the job): effective step, the
// change's fields. Errors name fields under `path`.
absl::Status CheckSegment(const SegmentSpec& segment, size_t num_groups, absl::string_view path);

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_HISTORY_H_
