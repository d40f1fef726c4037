// Closes a connection that cancels its calls in bulk: the HTTP/2 "rapid reset" flood
// (CVE-2023-44487), HEADERS and at once RST_STREAM, thousands of times on one connection, which
// gRPC 1.51 does not mitigate itself (each reset stream costs the server a call it has to set up
// and retire, and a connection that sends faster than they retire grows the server's memory without
// bound).
//
// The server's call interceptor (call_interceptor.h) sees every call, reset ones included, and
// tells the guard of each. A call that ends before its request
// message arrived is "premature". Per connection (the peer address gRPC reports, one per TCP
// connection), once at least `threshold` calls were premature and they are more than half of the
// connection's calls, the guard closes that connection: gRPC offers no API to close one
// connection, so the guard finds the server's socket whose peer is that address and shuts it down
// (shutdown(2), never close(2): gRPC still owns and closes the descriptor). gRPC then sees the
// connection end and cancels what is left of it. The same rule as Envoy's since 1.27.1.
//
// Not seen: calls of gRPC's built-in health and reflection services, which gRPC serves through its
// completion-queue API and retires, when reset before their request, before any interceptor runs.
//
// What it bounds: the work one connection can queue before it is cut, to about `threshold` calls
// plus what gRPC had read ahead. A client that reconnects is cut again each time; a proxy in front
// (deploy/envoy/) remains the answer to many connections.
//
// Thread-safe; the per-call cost is one lock of a mutex around a hash map update at the call's
// start (and at its end when premature). The table is split in kShards by the peer's hash, each
// with its own mutex, so concurrent calls of different connections seldom wait for each other.
// It is bounded (`kMaxPeers` in all); a full shard is cleared.
#ifndef HPSCHED_SERVER_RESET_GUARD_H_
#define HPSCHED_SERVER_RESET_GUARD_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/synchronization/mutex.h"

namespace hpsched::server {

class ResetGuard {
 public:
  // threshold 0: off (CallStarted and CallEnded do nothing).
  explicit ResetGuard(int64_t threshold) : threshold_(threshold) {}

  // Connections closed so far.
  int64_t closed_connections() const { return closed_.load(); }

  // For the call interceptor: a call of `peer` started / ended (premature: before its message).
  void CallStarted(const std::string& peer);
  void CallEnded(const std::string& peer, bool premature);

 private:
  static constexpr size_t kMaxPeers = 1 << 16;
  static constexpr size_t kShards = 16;
  struct Counts {
    int64_t calls = 0;
    int64_t premature = 0;
    bool closing = false;
  };
  struct Shard {
    absl::Mutex mutex;
    absl::flat_hash_map<std::string, Counts> peers ABSL_GUARDED_BY(mutex);
  };
  Shard& ShardOf(const std::string& peer);

  const int64_t threshold_;
  std::atomic<int64_t> closed_{0};
  std::array<Shard, kShards> shards_;
};

// Shuts down (SHUT_RDWR) every socket of this process whose peer is `peer`, in gRPC's form
// ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", possibly with the brackets percent-encoded). Returns
// how many sockets it shut down.
int ShutdownSocketsOfPeer(const std::string& peer);

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_RESET_GUARD_H_
