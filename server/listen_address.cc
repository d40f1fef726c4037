#include "listen_address.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace hpsched::server {

namespace {

// "[::1]" -> "::1"; other hosts unchanged.
std::string Unbracketed(absl::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return std::string(host.substr(1, host.size() - 2));
  }
  return std::string(host);
}

// One bind attempt; 0 on success, else errno.
int TryBind(const addrinfo& info) {
  const int fd = socket(info.ai_family, info.ai_socktype, info.ai_protocol);
  if (fd < 0) return errno;
  const int on = 1;
  const int off = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (info.ai_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(info.ai_addr);
    // The wildcard listens dual-stack (as gRPC's does), so an IPv4 holder conflicts with it too.
    if (IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr)) {
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    }
  }
  const int result = bind(fd, info.ai_addr, info.ai_addrlen) == 0 ? 0 : errno;
  close(fd);
  return result;
}

}  // namespace

std::string ListenAddress::ToString() const { return absl::StrCat(host, ":", port); }

bool IsLoopbackHost(absl::string_view host) {
  const std::string bare = Unbracketed(host);
  if (absl::EqualsIgnoreCase(bare, "localhost")) return true;
  in_addr v4;
  if (inet_pton(AF_INET, bare.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, bare.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

absl::Status CheckCanListen(absl::string_view what, absl::string_view flag,
                            const ListenAddress& address) {
  const std::string shown = address.ToString();
  const std::string host = Unbracketed(address.host);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (const int error =
          getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      error != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot listen on ", shown, " (", what,
                     "): the address does not resolve: ", gai_strerror(error)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owned(found, &freeaddrinfo);
  int usable = 0;
  int last_error = 0;
  for (const addrinfo* info = found; info != nullptr; info = info->ai_next) {
    const int error = TryBind(*info);
    if (error == EADDRINUSE) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot listen on ", shown, " (", what,
          "): another process holds this port (address already in use); stop it or choose "
          "another ",
          flag));
    }
    // "localhost" may resolve to ::1 on a host without IPv6; what binds is enough.
    if (error == 0) {
      ++usable;
    } else {
      last_error = error;
    }
  }
  if (usable == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", shown, " (", what, "): ", std::strerror(last_error)));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::server
