// The rapid-reset guard (server/reset_guard.h): when it closes a connection, and that it closes
// exactly the socket of that peer.
#include "reset_guard.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace hpsched::server {
namespace {

TEST(ResetGuardTest, ClosesAfterThresholdPrematureCallsThatAreMostOfTheConnection) {
  ResetGuard guard(10);
  const std::string peer = "ipv4:192.0.2.1:1234";  // no such socket here: counting only
  for (int i = 0; i < 9; ++i) {
    guard.CallStarted(peer);
    guard.CallEnded(peer, /*premature=*/true);
  }
  EXPECT_EQ(guard.closed_connections(), 0);
  guard.CallStarted(peer);
  guard.CallEnded(peer, true);
  EXPECT_EQ(guard.closed_connections(), 1);
  // Once per connection.
  guard.CallStarted(peer);
  guard.CallEnded(peer, true);
  EXPECT_EQ(guard.closed_connections(), 1);
}

TEST(ResetGuardTest, CallsThatGotTheirRequestKeepTheConnection) {
  ResetGuard guard(10);
  const std::string peer = "ipv4:192.0.2.1:1235";
  // 30 calls, 12 of them reset early: over the threshold but not half of the calls.
  for (int i = 0; i < 30; ++i) guard.CallStarted(peer);
  for (int i = 0; i < 18; ++i) guard.CallEnded(peer, false);
  for (int i = 0; i < 12; ++i) guard.CallEnded(peer, true);
  EXPECT_EQ(guard.closed_connections(), 0);
}

TEST(ResetGuardTest, ZeroIsOff) {
  ResetGuard guard(0);
  for (int i = 0; i < 100; ++i) {
    guard.CallStarted("ipv4:192.0.2.1:1");
    guard.CallEnded("ipv4:192.0.2.1:1", true);
  }
  EXPECT_EQ(guard.closed_connections(), 0);
}

TEST(ResetGuardTest, APrematureCallWithoutAPeerArmsTheGuardForAWhile) {
  int64_t now = 1'000'000'000;
  ResetGuard guard(100, [&now] { return now; });
  EXPECT_FALSE(guard.armed());
  guard.PrematureWithoutPeer();
  EXPECT_TRUE(guard.armed());
  // Stays armed until kArmedFor passes without a premature call...
  const int64_t armed_for = absl::ToInt64Nanoseconds(ResetGuard::kArmedFor);
  now += armed_for - 1;
  EXPECT_TRUE(guard.armed());
  // ...and each premature call seen with its peer while armed (the interceptor's) extends it.
  const std::string peer = "ipv4:192.0.2.1:1236";
  guard.CallStarted(peer);
  guard.CallEnded(peer, /*premature=*/true);
  now += armed_for - 1;
  EXPECT_TRUE(guard.armed());
  now += 1;
  EXPECT_FALSE(guard.armed());
  // A call that got its request does not arm it; the next premature one does.
  guard.CallStarted(peer);
  guard.CallEnded(peer, /*premature=*/false);
  EXPECT_FALSE(guard.armed());
  guard.PrematureWithoutPeer();
  EXPECT_TRUE(guard.armed());
}

TEST(ResetGuardTest, PrematureCallsOfAnUninterceptedMethodCountByTheirPeer) {
  // GetValues' calls while the guard is calm: only the premature ones are seen, each with its call.
  int64_t now = 0;
  ResetGuard guard(10, [&now] { return now; });
  const std::string peer = "ipv4:192.0.2.1:1238";
  for (int i = 0; i < 9; ++i) guard.PrematureOf(peer);
  EXPECT_TRUE(guard.armed());
  EXPECT_EQ(guard.closed_connections(), 0);
  guard.PrematureOf(peer);
  EXPECT_EQ(guard.closed_connections(), 1);
}

TEST(ResetGuardTest, PrematureCallsSeenCalmDoNotArmIt) {
  // Calls of intercepted methods are counted per connection; only peerless ones arm the guard.
  int64_t now = 0;
  ResetGuard guard(10, [&now] { return now; });
  for (int i = 0; i < 5; ++i) {
    guard.CallStarted("ipv4:192.0.2.1:1237");
    guard.CallEnded("ipv4:192.0.2.1:1237", true);
  }
  EXPECT_FALSE(guard.armed());
}

TEST(ResetGuardTest, OffIsNeverArmed) {
  ResetGuard guard(0);
  for (int i = 0; i < 100; ++i) guard.PrematureWithoutPeer();
  EXPECT_FALSE(guard.armed());
}

// A connected pair on loopback: the accepted (server) side is what the guard shuts down.
struct Connection {
  int listener = -1, client = -1, accepted = -1;
  int client_port = 0;

  explicit Connection(int family) {
    listener = socket(family, SOCK_STREAM, 0);
    sockaddr_storage address{};
    socklen_t size = 0;
    if (family == AF_INET) {
      auto& v4 = reinterpret_cast<sockaddr_in&>(address);
      v4.sin_family = AF_INET;
      v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      size = sizeof(v4);
    } else {
      auto& v6 = reinterpret_cast<sockaddr_in6&>(address);
      v6.sin6_family = AF_INET6;
      v6.sin6_addr = in6addr_loopback;
      size = sizeof(v6);
    }
    EXPECT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), size), 0);
    EXPECT_EQ(listen(listener, 1), 0);
    getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size);
    client = socket(family, SOCK_STREAM, 0);
    EXPECT_EQ(connect(client, reinterpret_cast<sockaddr*>(&address), size), 0);
    accepted = accept(listener, nullptr, nullptr);
    sockaddr_storage local{};
    socklen_t local_size = sizeof(local);
    getsockname(client, reinterpret_cast<sockaddr*>(&local), &local_size);
    client_port = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in&>(local).sin_port)
                                    : ntohs(reinterpret_cast<sockaddr_in6&>(local).sin6_port);
  }
  ~Connection() {
    close(client);
    close(accepted);
    close(listener);
  }
};

TEST(ShutdownSocketsOfPeerTest, ShutsDownTheSocketOfThatPeerOnly) {
  Connection target(AF_INET);
  Connection other(AF_INET);
  EXPECT_EQ(ShutdownSocketsOfPeer(absl::StrCat("ipv4:127.0.0.1:", target.client_port)), 1);
  char byte;
  // The client sees the end of the connection; the other connection is untouched.
  EXPECT_EQ(recv(target.client, &byte, 1, 0), 0);
  EXPECT_EQ(send(other.accepted, "x", 1, 0), 1);
  EXPECT_EQ(recv(other.client, &byte, 1, 0), 1);
}

TEST(ShutdownSocketsOfPeerTest, IpvSixPeersInGrpcsForms) {
  Connection plain(AF_INET6);
  Connection encoded(AF_INET6);
  EXPECT_EQ(ShutdownSocketsOfPeer(absl::StrCat("ipv6:[::1]:", plain.client_port)), 1);
  EXPECT_EQ(ShutdownSocketsOfPeer(absl::StrCat("ipv6:%5B::1%5D:", encoded.client_port)), 1);
  EXPECT_EQ(ShutdownSocketsOfPeer("unix:/tmp/socket"), 0);
  EXPECT_EQ(ShutdownSocketsOfPeer("ipv4:not-an-address:1"), 0);
}

}  // namespace
}  // namespace hpsched::server
