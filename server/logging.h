// spdlog set-up for the server: level and format (human text or JSON lines for log pipelines).
#ifndef HPSCHED_SERVER_LOGGING_H_
#define HPSCHED_SERVER_LOGGING_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hpsched::server {

// `level`: trace, debug, info, warn, error, critical or off. `format`: "text", or "json" for one
// JSON object per line
// {"time": RFC 3339 UTC, "level", "thread", "message"}, with the message escaped. InvalidArgument
// naming the flag.
absl::Status ConfigureLogging(absl::string_view level, absl::string_view format);

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_LOGGING_H_
