// The rule for job ids, shared by every layer that accepts one.
#ifndef HPSCHED_CORE_JOB_ID_H_
#define HPSCHED_CORE_JOB_ID_H_

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace hpsched::core {

inline constexpr char kJobIdPattern[] = "[a-z0-9][a-z0-9._-]{0,62}";

// True when `job_id` matches kJobIdPattern.
inline bool IsValidJobId(absl::string_view job_id) {
  if (job_id.empty() || job_id.size() > 63) return false;
  if (!absl::ascii_islower(job_id[0]) && !absl::ascii_isdigit(job_id[0])) return false;
  for (char c : job_id) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '.' && c != '_' && c != '-')
      return false;
  }
  return true;
}

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_JOB_ID_H_
