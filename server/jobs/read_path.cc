#include "jobs/read_path.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
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
// passes literals and only a batch builds strings (none on GetValues' success path).
class ReadPath::FieldPaths {
 public:
  FieldPaths(FieldNames names, size_t index) {
    if (names == FieldNames::kBatch) {
      const std::string prefix = absl::StrCat("requests[", index, "].");
      step_storage_ = absl::StrCat(prefix, "step");
      count_storage_ = absl::StrCat(prefix, "count");
      hyperparameters_storage_ = absl::StrCat(prefix, "hyperparameters");
      step_ = step_storage_;
      count_ = count_storage_;
      hyperparameters_ = hyperparameters_storage_;
    }
  }
  FieldPaths(const FieldPaths&) = delete;  // The views may point into the storage.
  FieldPaths& operator=(const FieldPaths&) = delete;

  absl::string_view step() const { return step_; }
  absl::string_view count() const { return count_; }
  absl::string_view hyperparameters() const { return hyperparameters_; }
  // The prefix alone: "" or "requests[i].".
  absl::string_view prefix() const { return step_.substr(0, step_.size() - 4); }

 private:
  std::string step_storage_, count_storage_, hyperparameters_storage_;
  absl::string_view step_ = "step", count_ = "count", hyperparameters_ = "hyperparameters";
};

absl::StatusOr<PlannedRead> ReadPath::PlanOne(const ReadRequest& request, const FieldPaths& fields,
                                              int64_t* total_values, int64_t* total_cost) const {
  if (!request.job_id.ok()) return request.job_id.status();
  PlannedRead read;
  read.start = request.start;
  read.count = core::EffectiveCount(request.count);
  RETURN_IF_ERROR(core::CheckStepRange(read.start, read.count, fields.step(), fields.count()));
  ASSIGN_OR_RETURN(read.job, registry_->Get(*request.job_id));
  ASSIGN_OR_RETURN(read.series,
                   read.job->plan->Select(request.hyperparameters, fields.hyperparameters()));
  *total_values += read.count * static_cast<int64_t>(read.series.size());
  RETURN_IF_ERROR(core::CheckValueCap(*total_values, fields.count()));
  // At most 400000 values of nodes whose step cost is far below 2^40: no overflow.
  for (size_t index : read.series) {
    *total_cost += read.count * read.job->plan->series()[index].node->step_cost();
  }
  RETURN_IF_ERROR(core::CheckEvalCost(*total_cost, max_eval_cost_, fields.count()));
  const int64_t provisional_from =
      read.job->plan->ProvisionalFrom(read.series, read.start, read.start + read.count);
  if (provisional_from != core::kNeverPending) read.provisional_from = provisional_from;
  return read;
}

absl::StatusOr<ReadPlan> ReadPath::Plan(std::span<const ReadRequest> requests, FieldNames names,
                                        bool at_deadline) const {
  ReadPlan plan;
  plan.reads.reserve(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    const FieldPaths fields(names, i);
    ASSIGN_OR_RETURN(PlannedRead read,
                     PlanOne(requests[i], fields, &plan.total_values, &plan.total_cost));
    if (MustWait(requests[i], read, at_deadline)) {
      if (!at_deadline) {
        plan.state = ReadPlan::State::kWait;
        return plan;
      }
      return absl::DeadlineExceededError(absl::StrCat(
          fields.prefix(), "step: the values from step ", *read.provisional_from,
          " on wait for metric reports that have not arrived (set pending_policy to accept "
          "provisional values)"));
    }
    plan.reads.push_back(std::move(read));
  }
  // Mark before evaluating: a job a mutation is replacing, or read past its reservation, must not
  // be served from yet. Every read is marked, so one flush reserves for all of them.
  // A peek marks nothing: it reads the job it pinned, which stays valid however it is replaced.
  for (size_t i = 0; i < plan.reads.size(); ++i) {
    const PlannedRead& read = plan.reads[i];
    if (requests[i].peek) continue;
    if (!registry_->MarkServed(*read.job, read.start + read.count - 1)) {
      plan.state = ReadPlan::State::kReplaced;
    }
  }
  return plan;
}

void ReadPath::Evaluate(const ReadPlan& plan, std::span<const std::span<double>> outs,
                        const core::Evaluator& evaluator) const {
  std::vector<core::EvalQuery> queries;
  queries.reserve(outs.size());
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
