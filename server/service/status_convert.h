// The one place where absl::Status becomes grpc::Status.
#ifndef HPSCHED_SERVICE_STATUS_CONVERT_H_
#define HPSCHED_SERVICE_STATUS_CONVERT_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace hpsched::service {

// Same code (the numbering is shared), same message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_STATUS_CONVERT_H_
