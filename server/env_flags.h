// Every flag from the environment: HPSCHED_<FLAG_NAME> sets --<flag_name>, for containers and
// Kubernetes.
#ifndef HPSCHED_SERVER_ENV_FLAGS_H_
#define HPSCHED_SERVER_ENV_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hpsched::server {

// For every flag linked into the binary, parses the environment variable `prefix` + the flag's name
// in upper case (HPSCHED_METRICS_PORT for --metrics_port) into the flag, when the variable is set.
// Call it before absl::ParseCommandLine so that the command line wins. InvalidArgument naming the
// variable when a value does not parse; flags already set are left as they were set. When `applied`
// is not null, the names of the flags set from the environment are appended to it.
absl::Status ApplyEnvironmentToFlags(absl::string_view prefix = "HPSCHED_",
                                     std::vector<std::string>* applied = nullptr);

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_ENV_FLAGS_H_
