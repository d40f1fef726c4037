// Every flag from the environment: HPSCHED_<FLAG_NAME> sets --<flag_name>, for containers and
// Kubernetes.
#ifndef HPSCHED_SERVER_ENV_FLAGS_H_
#define HPSCHED_SERVER_ENV_FLAGS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hpsched::server {

// For every flag linked into the binary, parses the environment variable `prefix` + the flag's name
// in upper case (HPSCHED_METRICS_PORT for --metrics_port) into the flag, when the variable is set.
// Call it before absl::ParseCommandLine so that the command line wins. InvalidArgument naming the
// variable when a value does not parse; flags already set are left as they were set.
absl::Status ApplyEnvironmentToFlags(absl::string_view prefix = "HPSCHED_");

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_ENV_FLAGS_H_
