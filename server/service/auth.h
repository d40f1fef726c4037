// Bearer-token authentication with roles. A token file lists one "<role> <token>" per line (blank
// lines and lines starting with # are ignored); roles are reader < trainer < admin, each allowed
// what the ones below it are:
//   reader:  GetJob, ListJobs, GetValues, BatchGetValues, Preview (and, when they exist, WatchJob)
//   trainer: reader, plus ReportMetrics (when it exists)
//   admin:   everything, including CreateJob and DeleteJob
// Health and reflection are not SchedulerService methods and stay open for probes and tooling.
#ifndef HPSCHED_SERVICE_AUTH_H_
#define HPSCHED_SERVICE_AUTH_H_

#include <grpcpp/server_context.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hpsched::service {

enum class Role { kReader = 0, kTrainer = 1, kAdmin = 2 };

// Immutable once loaded; thread-safe.
class Authenticator {
 public:
  static constexpr size_t kMinTokenLength = 16;

  // Parses a token file's contents. InvalidArgument naming the line for an unknown role, a short
  // token, or a duplicate token. Tokens never appear in messages.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromText(absl::string_view text);
  // Reads and parses `path`. Unavailable when it cannot be read.
  static absl::StatusOr<std::unique_ptr<Authenticator>> FromFile(const std::string& path);

  // OK when `authorization` ("Bearer <token>") names a token whose role is at least `required`.
  // Unauthenticated when it is missing, malformed or unknown; PermissionDenied when the role is too
  // low. Tokens are compared in constant time (independent of where a guess first differs), against
  // every configured token.
  absl::Status Check(absl::string_view authorization, Role required,
                     absl::string_view method) const;
  // The same for a call: reads its "authorization" metadata.
  absl::Status Check(const grpc::CallbackServerContext& context, Role required,
                     absl::string_view method) const;

 private:
  struct Entry {
    Role role;
    std::string token;
  };
  std::vector<Entry> entries_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_AUTH_H_
