// The one check every listener runs before it binds (server/listen_address.h): a port another
// process holds is refused with a message naming the address, the listener and its flag.
#include "listen_address.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace hpsched::server {
namespace {

// A socket listening on 127.0.0.1 (or ::1) at a free port, as another process would hold it.
class HeldPort {
 public:
  explicit HeldPort(int family = AF_INET) : fd_(socket(family, SOCK_STREAM, 0)) {
    EXPECT_GE(fd_, 0);
    if (family == AF_INET) {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
      socklen_t size = sizeof(address);
      getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
      port_ = ntohs(address.sin_port);
    } else {
      sockaddr_in6 address{};
      address.sin6_family = AF_INET6;
      address.sin6_addr = in6addr_loopback;
      EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
      socklen_t size = sizeof(address);
      getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
      port_ = ntohs(address.sin6_port);
    }
    EXPECT_EQ(listen(fd_, 1), 0);
  }
  ~HeldPort() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

TEST(IsLoopbackHostTest, LoopbackAddressesOnly) {
  for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host :
       {"[::]", "::", "0.0.0.0", "10.0.0.1", "128.0.0.1", "[::ffff:10.0.0.1]", "example.com", ""}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(CheckCanListenTest, HeldPortIsRefusedByName) {
  HeldPort held;
  const absl::Status status = CheckCanListen("gRPC", "--port", {"127.0.0.1", held.port()});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(),
            absl::StrCat("cannot listen on 127.0.0.1:", held.port(),
                         " (gRPC): another process holds this port (address already in use); "
                         "stop it or choose another --port"));
}

TEST(CheckCanListenTest, WildcardFindsAnIpv4Holder) {
  HeldPort held;
  // [::] is dual-stack: a process on 127.0.0.1 holds the port for it too.
  EXPECT_EQ(CheckCanListen("metrics", "--metrics_port", {"[::]", held.port()}).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CheckCanListen("metrics", "--metrics_port", {"0.0.0.0", held.port()}).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CheckCanListenTest, FreePortsAndPortZeroPass) {
  EXPECT_TRUE(CheckCanListen("gRPC", "--port", {"127.0.0.1", 0}).ok());
  EXPECT_TRUE(CheckCanListen("gRPC", "--port", {"localhost", 0}).ok());
  int free_port = 0;
  {
    HeldPort probe;
    free_port = probe.port();
  }
  EXPECT_TRUE(CheckCanListen("gRPC", "--port", {"127.0.0.1", free_port}).ok());
  // The check binds and closes: it leaves the port free for the listener.
  EXPECT_TRUE(CheckCanListen("gRPC", "--port", {"127.0.0.1", free_port}).ok());
}

TEST(CheckCanListenTest, UnresolvableHostIsInvalid) {
  const absl::Status status = CheckCanListen("health", "--health_port", {"no such host", 1234});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(),
                               "cannot listen on no such host:1234 (health): the address does "
                               "not resolve"))
      << status.message();
}

TEST(CheckCanListenTest, AddressOfNoLocalInterfaceIsUnavailable) {
  // TEST-NET-1 (RFC 5737) is never a local address.
  EXPECT_EQ(CheckCanListen("gRPC", "--port", {"192.0.2.1", 0}).code(),
            absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace hpsched::server
