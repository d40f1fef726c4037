// Bearer-token authentication with roles, checked by the server's call interceptor
// (server/call_interceptor.h). A token file lists one
// "<role> <token>" per line (blank lines and lines starting with # are ignored); roles are
// reader < trainer < admin, each allowed what the ones below it are (the table is RequiredRole):
//   reader:  GetJob, ListJobs, GetValues, BatchGetValues, Preview, WatchJob
//   trainer: reader, plus ReportMetrics
//   admin:   everything, including CreateJob, UpdateJob and DeleteJob
// Health and reflection are not SchedulerService methods and stay open for probes and tooling.
//
// gRPC's C++ server interceptors cannot end a call themselves (they have no Hijack), so the
// interceptor decides and records its verdict per call (CallVerdicts); SchedulerService's handler
// prologue answers a denied call with the verdict before doing anything, and the interceptor makes
// sure the status sent is the verdict.
#ifndef HPSCHED_SERVICE_AUTH_H_
#define HPSCHED_SERVICE_AUTH_H_

#include <grpcpp/server_context.h>

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

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

// The role a method needs, by gRPC's full method name ("/hpsched.v1.SchedulerService/GetJob");
// nullopt for methods of other services (open). A SchedulerService method missing from the table
// needs admin.
std::optional<Role> RequiredRole(absl::string_view full_method);

// The authorization interceptor's verdict on each call in flight. Thread-safe: the table is split
// in kShards by the context's address, each with its own mutex, so concurrent calls seldom wait
// for each other (three locks a call: Set, Of, Erase).
class CallVerdicts {
 public:
  // The verdict on the call of `context`: OK, or the Unauthenticated / PermissionDenied status to
  // answer. PermissionDenied for a call the interceptor has not seen (it sees every call before
  // its handler runs, so only a miswired server gets this).
  absl::Status Of(const grpc::ServerContextBase& context) const;

  void Set(const grpc::ServerContextBase* context, absl::Status verdict);
  void Erase(const grpc::ServerContextBase* context);

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    absl::Mutex mutex;
    absl::flat_hash_map<const grpc::ServerContextBase*, absl::Status> verdicts
        ABSL_GUARDED_BY(mutex);
  };
  Shard& ShardOf(const grpc::ServerContextBase* context) const;

  mutable std::array<Shard, kShards> shards_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_AUTH_H_
