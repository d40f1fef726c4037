// Values of a schedule that is not part of a job: the Preview RPC and `hpsched preview --local`
// (which needs no server) compile and evaluate here, so both give the same numbers bit for bit.
// Also the request rules every read shares: the count default and the cap on values per response.
#ifndef HPSCHED_CORE_PREVIEW_H_
#define HPSCHED_CORE_PREVIEW_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/evaluator.h"
#include "core/node.h"
#include "core/schedule_spec.h"

namespace hpsched::core {

// The count a request means: 0 (unset) means 1.
inline int64_t EffectiveCount(int64_t count) { return count == 0 ? 1 : count; }

// InvalidArgument "<count_field>: the response would hold more than 400000 values (count x series);
// ..." when `total_values` exceeds kMaxValuesPerBatch: the one check of the batch cap.
absl::Status CheckValueCap(int64_t total_values, absl::string_view count_field);

// The default of the evaluation budget of one request (see CheckEvalCost): 0.05 s to 0.3 s of one
// core (a unit is 1 to 6 ns: arithmetic to transcendental functions).
inline constexpr int64_t kDefaultMaxEvalCost = 50'000'000;

// The evaluation cost of one request is the sum over its series of count x Node::step_cost().
// InvalidArgument "<count_field>: the request would cost N evaluation units (count x the per-step
// cost of each series), more than the server's limit of L (--max_eval_cost); ..." when `cost`
// exceeds `limit`: the one check of the evaluation budget.
absl::Status CheckEvalCost(int64_t cost, int64_t limit, absl::string_view count_field);

// Where preview errors point: the request's field names (the CLI passes its flags).
struct PreviewFields {
  std::string schedule = "schedule";
  std::string base_values = "base_values";
  std::string start = "start_step";
  std::string count = "count";
};

// A schedule compiled once for previews of any step range: one node per base value.
class CompiledPreview {
 public:
  // Checks `base_values` (empty means {1.0}) and compiles `schedule` for the hyperparameter named
  // `hyperparameter` (empty means "lr"). InvalidArgument naming fields of `fields`.
  static absl::StatusOr<CompiledPreview> Compile(const ScheduleSpec& schedule,
                                                 std::vector<double> base_values,
                                                 absl::string_view hyperparameter,
                                                 const PreviewFields& fields = {});

  size_t groups() const { return nodes_.size(); }
  // The cost of one step of every group: the sum of the nodes' step_cost().
  int64_t step_cost() const;

  // Checks [start, start + EffectiveCount(count)) and the batch cap (count x groups), then
  // evaluates with `evaluator`: `out(group, count)` returns the span group `group` is written to.
  absl::Status Evaluate(int64_t start, int64_t count, const Evaluator& evaluator,
                        const std::function<std::span<double>(size_t, int64_t)>& out,
                        const PreviewFields& fields = {}) const;

 private:
  std::vector<NodePtr> nodes_;
};

// The checks of a preview that come before compiling, in the order the service has always made
// them: base values, step range, cap. Compile + Evaluate make them too; Preview calls this first
// so a bad range is reported before a bad schedule.
absl::Status CheckPreview(std::span<const double> base_values, int64_t start, int64_t count,
                          const PreviewFields& fields = {});

// Preview in one call: CheckPreview, Compile, Evaluate. `hpsched preview --local` and the
// Preview RPC both end here.
absl::Status PreviewValues(const ScheduleSpec& schedule, std::vector<double> base_values,
                           absl::string_view hyperparameter, int64_t start, int64_t count,
                           const Evaluator& evaluator,
                           const std::function<std::span<double>(size_t, int64_t)>& out,
                           const PreviewFields& fields = {});

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_PREVIEW_H_
