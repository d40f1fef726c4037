// Closes a connection that cancels its calls in bulk: the HTTP/2 "rapid reset" flood
// (CVE-2023-44487), HEADERS and at once RST_STREAM, thousands of times on one connection, which
// gRPC 1.51 does not mitigate itself (each reset stream costs the server a call it has to set up
// and retire, and a connection that sends faster than they retire grows the server's memory without
// bound).
//
// The server's call interceptor (call_interceptor.h) sees every call, reset ones included, and
// tells the guard of each. A call that ends before its request message arrived is "premature".
// Per connection (the peer address gRPC reports, one per TCP connection), once at least
// `threshold` calls were premature and they are more than half of the connection's calls, the
// guard closes that connection: gRPC offers no API to close one
// connection, so the guard finds the server's socket whose peer is that address and shuts it down
// (shutdown(2), never close(2): gRPC still owns and closes the descriptor). gRPC then sees the
// connection end and cancels what is left of it. The same rule as Envoy's since 1.27.1.
//
// GetValues and BatchGetValues have no interceptor while the guard is calm (service/call_note.h:
// an interceptor costs a small call 14% of its instructions): their calls are not counted, and a
// premature one is counted, with its call, when gRPC releases it (PrematureOf its peer; without a
// peer, PrematureWithoutPeer only arms). A premature call arms the guard: while armed, every call
// gets the interceptor again, so that a connection's good calls are counted too and one with a
// few premature calls among many good ones is not cut. The guard stays armed until kArmedFor
// passes without a premature call; an honest client's rare premature call only costs the calls of
// the next kArmedFor their interceptor.
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
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace hpsched::server {

class ResetGuard {
 public:
  // How long the guard stays armed after the last premature call.
  static constexpr absl::Duration kArmedFor = absl::Seconds(10);

  // threshold 0: off (CallStarted and CallEnded do nothing, and the guard is never armed).
  // `now` (steady nanoseconds; null: the steady clock) is for tests.
  explicit ResetGuard(int64_t threshold, std::function<int64_t()> now = nullptr);

  // Connections closed so far.
  int64_t closed_connections() const { return closed_.load(); }

  // For the call interceptor: a call of `peer` started / ended (premature: before its message).
  void CallStarted(const std::string& peer);
  void CallEnded(const std::string& peer, bool premature);

  // A premature call of a method served without an interceptor, of `peer`: counted as a call and
  // premature (CallStarted and CallEnded), and arms the guard.
  void PrematureOf(const std::string& peer);
  // The same when the peer is unknown: only arms the guard.
  void PrematureWithoutPeer();
  // Whether every call needs the interceptor now. One relaxed load while calm.
  bool armed();

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
  int64_t Now() const;
  // Arms the guard, or keeps it armed, for kArmedFor from now.
  void Arm();

  const int64_t threshold_;
  const std::function<int64_t()> now_;
  std::atomic<int64_t> closed_{0};
  // Until when (Now()) the guard is armed; 0: calm.
  std::atomic<int64_t> armed_until_{0};
  std::array<Shard, kShards> shards_;
};

// Shuts down (SHUT_RDWR) every socket of this process whose peer is `peer`, in gRPC's form
// ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", possibly with the brackets percent-encoded). Returns
// how many sockets it shut down.
int ShutdownSocketsOfPeer(const std::string& peer);

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_RESET_GUARD_H_
