// grpc.health.v1.Health/Check through a generic stub: Debian's grpc-proto ships the health messages
// but not their service stubs, so the call is made by method name with the messages of
// hpsched_health_proto.
#ifndef HPSCHED_CLIENT_CLI_HEALTH_H_
#define HPSCHED_CLIENT_CLI_HEALTH_H_

#include <grpcpp/channel.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace hpsched::cli {

// The serving status of `service` ("" is the server as a whole): "SERVING", "NOT_SERVING",
// "UNKNOWN" or "SERVICE_UNKNOWN". One attempt within `timeout`; errors are the call's status
// (NOT_FOUND for a service the server does not know, UNAVAILABLE when it cannot be reached).
absl::StatusOr<std::string> CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                                        absl::string_view service, absl::Duration timeout);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_HEALTH_H_
