#include "reset_guard.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "service/call_note.h"
#include "spdlog/spdlog.h"

namespace hpsched::server {

namespace {

// A peer in gRPC's form as an address (IPv4-mapped IPv6 addresses as IPv4) and port.
struct PeerAddress {
  int family = 0;
  in_addr v4{};
  in6_addr v6{};
  int port = 0;
};

bool ParsePeer(const std::string& peer, PeerAddress* out) {
  std::string text = absl::StrReplaceAll(peer, {{"%5B", "["}, {"%5D", "]"}, {"%25", "%"}});
  absl::string_view rest = text;
  const bool v6 = absl::ConsumePrefix(&rest, "ipv6:");
  if (!v6 && !absl::ConsumePrefix(&rest, "ipv4:")) return false;
  const size_t colon = rest.rfind(':');
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(rest.substr(colon + 1), &out->port)) {
    return false;
  }
  absl::string_view host = rest.substr(0, colon);
  absl::ConsumePrefix(&host, "[");
  absl::ConsumeSuffix(&host, "]");
  const std::string bare(host.substr(0, host.find('%')));  // no zone id
  if (inet_pton(AF_INET, bare.c_str(), &out->v4) == 1) {
    out->family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, bare.c_str(), &out->v6) == 1) {
    out->family = AF_INET6;
    return true;
  }
  return false;
}

bool SameAddress(const sockaddr_storage& address, const PeerAddress& peer) {
  if (address.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
    return peer.family == AF_INET && ntohs(v4.sin_port) == peer.port &&
           v4.sin_addr.s_addr == peer.v4.s_addr;
  }
  if (address.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(address);
    if (ntohs(v6.sin6_port) != peer.port) return false;
    if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
      return peer.family == AF_INET &&
             std::memcmp(&v6.sin6_addr.s6_addr[12], &peer.v4.s_addr, 4) == 0;
    }
    return peer.family == AF_INET6 && std::memcmp(&v6.sin6_addr, &peer.v6, sizeof(in6_addr)) == 0;
  }
  return false;
}

}  // namespace

ResetGuard::ResetGuard(int64_t threshold, std::function<int64_t()> now)
    : threshold_(threshold), now_(std::move(now)) {}

int64_t ResetGuard::Now() const { return now_ ? now_() : service::SteadyNanos(); }

void ResetGuard::Arm() {
  const int64_t until = Now() + absl::ToInt64Nanoseconds(kArmedFor);
  // Only ever later (and never 0), so that concurrent premature calls cannot shorten it.
  int64_t current = armed_until_.load(std::memory_order_relaxed);
  while (current < until &&
         !armed_until_.compare_exchange_weak(current, until, std::memory_order_relaxed)) {
  }
}

void ResetGuard::PrematureOf(const std::string& peer) {
  if (threshold_ <= 0) return;
  Arm();
  CallStarted(peer);
  CallEnded(peer, /*premature=*/true);
}

void ResetGuard::PrematureWithoutPeer() {
  if (threshold_ > 0) Arm();
}

bool ResetGuard::armed() {
  int64_t until = armed_until_.load(std::memory_order_relaxed);
  if (until == 0) return false;
  if (Now() < until) return true;
  // Calm again (unless a premature call armed it again meanwhile).
  armed_until_.compare_exchange_strong(until, 0, std::memory_order_relaxed);
  return false;
}

ResetGuard::Shard& ResetGuard::ShardOf(const std::string& peer) {
  return shards_[absl::Hash<std::string>{}(peer) % kShards];
}

void ResetGuard::CallStarted(const std::string& peer) {
  if (threshold_ <= 0) return;
  Shard& shard = ShardOf(peer);
  absl::MutexLock lock(&shard.mutex);
  if (shard.peers.size() >= kMaxPeers / kShards && !shard.peers.contains(peer)) {
    shard.peers.clear();
  }
  ++shard.peers[peer].calls;
}

void ResetGuard::CallEnded(const std::string& peer, bool premature) {
  if (threshold_ <= 0 || !premature) return;
  {
    Shard& shard = ShardOf(peer);
    absl::MutexLock lock(&shard.mutex);
    auto it = shard.peers.find(peer);
    if (it == shard.peers.end()) return;
    Counts& counts = it->second;
    ++counts.premature;
    if (armed_until_.load(std::memory_order_relaxed) != 0) Arm();  // The attack goes on.
    if (counts.closing || counts.premature < threshold_ || 2 * counts.premature <= counts.calls) {
      return;
    }
    counts.closing = true;
  }
  // Outside the lock: the scan of the descriptors is the slow part, and rare.
  const int shut = ShutdownSocketsOfPeer(peer);
  closed_.fetch_add(1);
  spdlog::warn(
      "closed the connection of {}: at least {} of its calls were reset before their request "
      "(an HTTP/2 rapid-reset flood; --reset_flood_threshold), {} socket(s) shut down",
      peer, threshold_, shut);
}

int ShutdownSocketsOfPeer(const std::string& peer) {
  PeerAddress address;
  if (!ParsePeer(peer, &address)) return 0;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  int shut = 0;
  while (const dirent* entry = readdir(dir)) {
    int fd = 0;
    if (!absl::SimpleAtoi(entry->d_name, &fd) || fd == dirfd(dir)) continue;
    sockaddr_storage remote{};
    socklen_t size = sizeof(remote);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&remote), &size) != 0) continue;
    if (SameAddress(remote, address) && shutdown(fd, SHUT_RDWR) == 0) ++shut;
  }
  closedir(dir);
  return shut;
}

}  // namespace hpsched::server
