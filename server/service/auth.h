// Bearer-token authentication with roles, checked by each SchedulerService handler before it does
// anything (SchedulerService::Allowed). A token file lists one "<role> <token>" per line (blank
// lines and lines starting with # are ignored); roles are reader < trainer < admin, each allowed
// what the ones below it are (the table is RequiredRole):
//   reader:  GetJob, ListJobs, GetValues, BatchGetValues, Preview, WatchJob
//   trainer: reader, plus ReportMetrics
//   admin:   everything, including CreateJob, UpdateJob and DeleteJob
// Health and reflection are not SchedulerService methods and stay open for probes and tooling.
// (The check was an interceptor's until 2026-12: gRPC's C++ server interceptors cannot end a call,
// so it had to record a verdict per call for the handler to answer with, three locks a call, and
// an interceptor alone costs a small call about 14% of its instructions.)
#ifndef HPSCHED_SERVICE_AUTH_H_
#define HPSCHED_SERVICE_AUTH_H_

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

 private:
  struct Entry {
    Role role;
    std::string token;
  };
  std::vector<Entry> entries_;
};

// The role a SchedulerService method needs, by its name ("GetJob"). A method missing from the
// table needs admin.
Role RequiredRole(absl::string_view method);

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_AUTH_H_
