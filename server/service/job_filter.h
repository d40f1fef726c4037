// ListJobsRequest.filter: a strict subset of AIP-160 (https://google.aip.dev/160), parsed once per
// call and matched against each job's id and labels. Pure: no gRPC, no protos.
//
// Grammar (whitespace between tokens is free):
//   filter := term ("AND" term)*
//   term   := "labels." KEY "=" value     the job has label KEY with exactly value
//           | "id" "=" value              the job's id is value; a value ending in * is a prefix
//           | "id" ":" value              value must end in *: the job's id starts with the rest
//   value  := "..." (\" and \\ escape) | a bare word of letters, digits and _ - . *
// Anything else (OR, NOT, -, parentheses, other fields or operators, a * inside a value) is refused
// with the position, counted from 1, where the filter stops being supported.
#ifndef HPSCHED_SERVICE_JOB_FILTER_H_
#define HPSCHED_SERVICE_JOB_FILTER_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/schedule_spec.h"

namespace hpsched::service {

inline constexpr size_t kMaxFilterLength = 1000;

class JobFilter {
 public:
  // Every term of `text`. InvalidArgument "filter: position N: ..." naming what is not supported;
  // an empty `text` matches every job.
  static absl::StatusOr<JobFilter> Parse(absl::string_view text);

  // Whether the job `id` with `labels` matches every term.
  bool Matches(absl::string_view id, const core::Labels& labels) const;

  bool empty() const { return labels_.empty() && ids_.empty(); }

 private:
  struct IdTerm {
    std::string text;
    bool prefix = false;
  };
  std::vector<std::pair<std::string, std::string>> labels_;
  std::vector<IdTerm> ids_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_JOB_FILTER_H_
