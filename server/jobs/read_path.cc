#include "jobs/read_path.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/utility/utility.h"
#include "core/job_plan.h"
#include "core/status_macros.h"

namespace hpsched::jobs {

namespace {

// Whether a read's provisional values mean waiting, given its policy and whether the deadline has
// come.
bool MustWait(const ReadRequest& request, const PlannedRead& read, bool at_deadline) {
  if (!read.provisional_from.has_value()) return false;
  switch (request.pending_policy) {
    case PendingPolicy::kProvisionalNow:
      return false;
    case PendingPolicy::kWaitThenProvisional:
      return !at_deadline;
    case PendingPolicy::kWait:
      return true;
  }
  return true;
}

}  // namespace

// The field paths a request's errors name: "step", ... for GetValues; "requests[i].step", ... for
// the i-th request of a batch. The checks take them whether or not they fail, so a single read
// passes literals, and a batch formats its three paths into this object's own buffer: a batch of
// 10^4 reads would otherwise build 3 x 10^4 heap strings that no successful read ever reads.
class ReadPath::FieldPaths {
 public:
  FieldPaths(FieldNames names, size_t index) {
    if (names != FieldNames::kBatch) return;
    char prefix[kMaxPrefix] = "requests[";
    char* end = std::to_chars(prefix + kRequests.size(), prefix + kMaxPrefix - 2, index).ptr;
    *end++ = ']';
    *end++ = '.';
    const absl::string_view formatted(prefix, static_cast<size_t>(end - prefix));
    char* next = buffer_;
    step_ = Join(formatted, kStep, &next);
    count_ = Join(formatted, kCount, &next);
    hyperparameters_ = Join(formatted, kHyperparameters, &next);
  }
  FieldPaths(const FieldPaths&) = delete;  // The views may point into the buffer.
  FieldPaths& operator=(const FieldPaths&) = delete;

  absl::string_view step() const { return step_; }
  absl::string_view count() const { return count_; }
  absl::string_view hyperparameters() const { return hyperparameters_; }
  // The prefix alone: "" or "requests[i].".
  absl::string_view prefix() const { return step_.substr(0, step_.size() - kStep.size()); }

 private:
  static constexpr absl::string_view kRequests = "requests[";
  static constexpr absl::string_view kStep = "step";
  static constexpr absl::string_view kCount = "count";
  static constexpr absl::string_view kHyperparameters = "hyperparameters";
  // "requests[", at most 20 digits of a size_t, "].".
  static constexpr size_t kMaxPrefix = kRequests.size() + 20 + 2;

  // Writes `prefix` then `field` at *next, advances *next past them and returns what it wrote.
  static absl::string_view Join(absl::string_view prefix, absl::string_view field, char** next) {
    char* begin = *next;
    char* end =
        std::copy(field.begin(), field.end(), std::copy(prefix.begin(), prefix.end(), begin));
    *next = end;
    return absl::string_view(begin, static_cast<size_t>(end - begin));
  }

  // A batch's three paths, side by side; untouched for a single read.
  char buffer_[3 * kMaxPrefix + kStep.size() + kCount.size() + kHyperparameters.size()];
  absl::string_view step_ = kStep, count_ = kCount, hyperparameters_ = kHyperparameters;
};

absl::Status ReadPath::PlanOne(const ReadRequest& request, const FieldPaths& fields,
                               PlannedRead* read, int64_t* total_values,
                               int64_t* total_cost) const {
  if (!request.job_id.ok()) return request.job_id.status();
  read->start = request.start;
  read->count = core::EffectiveCount(request.count);
  RETURN_IF_ERROR(core::CheckStepRange(read->start, read->count, fields.step(), fields.count()));
  ASSIGN_OR_RETURN(read->job, registry_->Get(*request.job_id));
  const core::JobPlan& plan = *read->job->plan;
  RETURN_IF_ERROR(plan.Select(request.hyperparameters, fields.hyperparameters(), &read->series));
  *total_values += read->count * static_cast<int64_t>(read->series.size());
  RETURN_IF_ERROR(core::CheckValueCap(*total_values, fields.count()));
  // At most 400000 values of nodes whose step cost is far below 2^40: no overflow.
  for (size_t index : read->series) {
    *total_cost += read->count * plan.series()[index].node->step_cost();
  }
  RETURN_IF_ERROR(core::CheckEvalCost(*total_cost, max_eval_cost_, fields.count()));
  const int64_t provisional_from =
      plan.ProvisionalFrom(read->series, read->start, read->start + read->count);
  if (provisional_from != core::kNeverPending) read->provisional_from = provisional_from;
  return absl::OkStatus();
}

absl::StatusOr<ReadPlan> ReadPath::Plan(std::span<const ReadRequest> requests, FieldNames names,
                                        bool at_deadline) const {
  absl::StatusOr<ReadPlan> result(absl::in_place);
  // One named result, returned on every path: no move of the plan on the way out.
  if (absl::Status status = PlanInto(requests, names, at_deadline, &*result); !status.ok()) {
    result = std::move(status);
  }
  return result;
}

absl::Status ReadPath::PlanInto(std::span<const ReadRequest> requests, FieldNames names,
                                bool at_deadline, ReadPlan* plan) const {
  // absl's reserve is an out-of-line call even within the inline capacity: only a batch calls it.
  if (requests.size() > 1) plan->reads.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const FieldPaths fields(names, i);
    PlannedRead& read = plan->reads.emplace_back();
    RETURN_IF_ERROR(PlanOne(requests[i], fields, &read, &plan->total_values, &plan->total_cost));
    if (MustWait(requests[i], read, at_deadline)) {
      if (!at_deadline) {
        plan->reads.pop_back();  // A waiting plan holds the reads before the one that waits.
        plan->state = ReadPlan::State::kWait;
        return absl::OkStatus();
      }
      return absl::DeadlineExceededError(absl::StrCat(
          fields.prefix(), "step: the values from step ", *read.provisional_from,
          " on wait for metric reports that have not arrived (set pending_policy to accept "
          "provisional values)"));
    }
  }
  // Mark before evaluating: a job a mutation is replacing, or read past its reservation, must not
  // be served from yet. Every read is marked, so one flush reserves for all of them.
  // A peek marks nothing: it reads the job it pinned, which stays valid however it is replaced.
  for (size_t i = 0; i < plan->reads.size(); ++i) {
    const PlannedRead& read = plan->reads[i];
    if (requests[i].peek) continue;
    if (!registry_->MarkServed(*read.job, read.start + read.count - 1)) {
      plan->state = ReadPlan::State::kReplaced;
    }
  }
  return absl::OkStatus();
}

void ReadPath::Evaluate(const ReadPlan& plan, std::span<const std::span<double>> outs,
                        const core::Evaluator& evaluator) const {
  // One query per series, on this stack up to kInlineSeries (absl's reserve is an out-of-line
  // call even within the inline capacity: only more series call it).
  absl::InlinedVector<core::EvalQuery, core::kInlineSeries> queries;
  if (outs.size() > queries.capacity()) queries.reserve(outs.size());
  size_t next = 0;
  for (const PlannedRead& read : plan.reads) {
    for (size_t index : read.series) {
      queries.push_back(
          core::EvalQuery{read.job->plan->series()[index].node.get(), read.start, outs[next++]});
    }
  }
  evaluator.Evaluate(queries);
}

}  // namespace hpsched::jobs
