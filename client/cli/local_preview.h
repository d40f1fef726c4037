// `preview --local` and `plot --local`: one Preview evaluated in-process with the server's core, no
// server. The one place the CLI evaluates; errors name the CLI's flags (--base, --steps).
#ifndef HPSCHED_CLIENT_CLI_LOCAL_PREVIEW_H_
#define HPSCHED_CLIENT_CLI_LOCAL_PREVIEW_H_

#include "absl/status/statusor.h"
#include "hpsched/v1/scheduler_service.pb.h"

namespace hpsched::cli {

// The values a server's Preview would answer for `request` (one series per base value, in order);
// INVALID_ARGUMENT for a schedule, base values or a step range the server would refuse.
absl::StatusOr<v1::PreviewResponse> LocalPreview(const v1::PreviewRequest& request);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_LOCAL_PREVIEW_H_
