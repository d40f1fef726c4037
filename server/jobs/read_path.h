// The read path: how a request for values becomes values, as domain types (no protos, no gRPC).
// GetValues and BatchGetValues go through it (Preview and `hpsched preview --local`, which read no
// job, through core/preview.h, which shares its count rule and cap):
//
//   ReadPath::Plan      pins each request's job, selects its series, finds where its values turn
//                       provisional, applies the pending policy, and marks the steps served;
//   the caller          sizes its output buffers from the plan (the service: the response's
//                       repeated doubles) and hands over one span per planned series;
//   ReadPath::Evaluate  evaluates every series of the batch into those spans in one call of the
//                       injected core::Evaluator.
//
// A request that meets a job being replaced, or that reads past the job's durable reservation
// (JobRegistry::MarkServed), plans as kReplaced: the caller waits for that job's next registry
// event and plans again; nothing here sleeps, blocks or writes.
#ifndef HPSCHED_JOBS_READ_PATH_H_
#define HPSCHED_JOBS_READ_PATH_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/preview.h"
#include "core/schedule_spec.h"
#include "jobs/job_registry.h"

namespace hpsched::jobs {

// What a read does when some of its values are provisional (they depend on metric reports that
// have not arrived).
enum class PendingPolicy {
  kWait,                 // Wait for the reports; at the deadline, fail with DEADLINE_EXCEEDED.
  kWaitThenProvisional,  // Wait; at the deadline, answer with the provisional values.
  kProvisionalNow,       // Answer at once.
};

// One read of consecutive steps of some of a job's hyperparameters.
struct ReadRequest {
  // The job's id; or the error of converting the request's job name, reported when planning
  // reaches this request (so a batch reports the first error in request order, as it always has).
  absl::StatusOr<std::string> job_id;
  int64_t start = 0;
  // 0 means 1 (EffectiveCount).
  int64_t count = 0;
  // Empty: every hyperparameter of the job.
  std::vector<std::string> hyperparameters;
  PendingPolicy pending_policy = PendingPolicy::kWait;
  // Read without marking the steps served (GetValuesRequest.peek): a look, not a use.
  bool peek = false;
};

// One request, planned against the job it pinned.
struct PlannedRead {
  // Keeps the plan the series evaluate alive until the read is done.
  std::shared_ptr<const Job> job;
  // Indices into job->plan->series(), in the job's order (inline up to core::kInlineSeries).
  core::SeriesSelection series;
  int64_t start = 0;
  int64_t count = 0;
  // The first provisional step within [start, start + count), when there is one.
  std::optional<int64_t> provisional_from;
};

struct ReadPlan {
  enum class State {
    kReady,     // Marked served: size the outputs and Evaluate.
    kWait,      // A request's values are provisional and its policy waits: retry on a change.
    kReplaced,  // A job is being replaced, or awaits a reservation: retry on its next event.
  };
  State state = State::kReady;
  // Inline for one read (GetValues): planning a single read allocates nothing of its own.
  absl::InlinedVector<PlannedRead, 1> reads;
  int64_t total_values = 0;
  // The evaluation cost of the reads: the sum over their series of count x Node::step_cost().
  int64_t total_cost = 0;
};

// Whether a batch names its requests' fields "requests[i]." (BatchGetValues) or not (GetValues).
enum class FieldNames { kSingle, kBatch };

// Thread-safe; holds no state of its own.
class ReadPath {
 public:
  // `registry` and `evaluator` must outlive the read path. A plan may cost at most
  // `max_eval_cost` (see core::CheckEvalCost).
  ReadPath(const JobRegistry* registry, const core::Evaluator* evaluator,
           int64_t max_eval_cost = core::kDefaultMaxEvalCost)
      : registry_(registry), evaluator_(evaluator), max_eval_cost_(max_eval_cost) {}

  // Plans `requests`, all or nothing, in order. Errors are the first failing request's: the job
  // name's, InvalidArgument for the step range, NotFound for the job, InvalidArgument for an
  // unknown hyperparameter, the batch cap or the evaluation budget, and, `at_deadline`,
  // DeadlineExceeded for a request that waits. Without `at_deadline`, a request that waits makes
  // the plan kWait.
  absl::StatusOr<ReadPlan> Plan(std::span<const ReadRequest> requests, FieldNames names,
                                bool at_deadline) const;

  // Evaluates a kReady plan into `outs`: one span per planned series, read by read, each of its
  // read's count. Cannot fail; allocates nothing for up to core::kInlineSeries series in all. The
  // second form evaluates through `evaluator` (a CancellableEvaluator over evaluator(), for a call
  // that may stop).
  void Evaluate(const ReadPlan& plan, std::span<const std::span<double>> outs) const {
    Evaluate(plan, outs, *evaluator_);
  }
  void Evaluate(const ReadPlan& plan, std::span<const std::span<double>> outs,
                const core::Evaluator& evaluator) const;

  const core::Evaluator& evaluator() const { return *evaluator_; }

 private:
  // The field paths one request's errors name (read_path.cc).
  class FieldPaths;

  // Plan's work, into `plan` (default-constructed, inside the StatusOr that Plan returns: the
  // plan is built where the caller receives it, not moved there). Returns Plan's errors.
  absl::Status PlanInto(std::span<const ReadRequest> requests, FieldNames names, bool at_deadline,
                        ReadPlan* plan) const;
  // Plans `request` into `read` (default-constructed, already in its place in the plan: a read is
  // built where it is kept, not moved there) and adds its values and cost to the plan's totals.
  absl::Status PlanOne(const ReadRequest& request, const FieldPaths& fields, PlannedRead* read,
                       int64_t* total_values, int64_t* total_cost) const;

  const JobRegistry* const registry_;
  const core::Evaluator* const evaluator_;
  const int64_t max_eval_cost_;
};

}  // namespace hpsched::jobs

#endif  // HPSCHED_JOBS_READ_PATH_H_
