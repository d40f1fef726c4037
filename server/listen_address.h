// Where a listener of hpsched-server binds, and the one check every listener (gRPC, health,
// metrics, and any later HTTP front end) runs before binding: is the port free, or does another
// process hold it?
//
// Why a check of our own: gRPC sets SO_REUSEPORT by default, so a second server on a port that is
// already served starts, and the kernel splits new connections between the two. We turn that off
// for gRPC (GRPC_ARG_ALLOW_REUSEPORT=0), and CheckCanListen names the conflict clearly for every
// listener, whichever library binds it afterwards (civetweb reports a failed bind only as an
// exception with a generic text).
#ifndef HPSCHED_SERVER_LISTEN_ADDRESS_H_
#define HPSCHED_SERVER_LISTEN_ADDRESS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hpsched::server {

struct ListenAddress {
  // As given by a flag: "[::]" (every interface, IPv6 and IPv4), "0.0.0.0" (every IPv4
  // interface), "127.0.0.1", "[::1]", "localhost", or any other IP literal or host name.
  std::string host;
  // 0 picks a free port.
  int port = 0;

  // "host:port", the form gRPC's AddListeningPort takes.
  std::string ToString() const;
};

// True when `host` names only loopback interfaces: 127.0.0.0/8, ::1 (bracketed or not), and
// "localhost". False for the wildcards and everything else (a host name is not resolved).
bool IsLoopbackHost(absl::string_view host);

// Binds a socket of every address `address.host` resolves to on `address.port`, with SO_REUSEADDR
// (so connections in TIME_WAIT do not count) and without SO_REUSEPORT, then closes it. A wildcard
// IPv6 address is checked dual-stack, so an IPv4 holder of the port is found too.
//
// OK when every bind succeeded (port 0 only checks that the host is usable). Errors name `what`
// (e.g. "gRPC") and `flag` (e.g. "--port"):
//  - FailedPrecondition "cannot listen on H:P (what): another process holds this port (address
//    already in use); stop it or choose another <flag>" for EADDRINUSE;
//  - InvalidArgument when the host does not resolve;
//  - Unavailable with the system's reason for any other failure (EACCES below 1024, EADDRNOTAVAIL
//    for an address of no local interface, ...).
// The check and the later bind are two steps, so a process binding in between is still possible;
// the listeners themselves bind without SO_REUSEPORT and then fail instead of sharing.
absl::Status CheckCanListen(absl::string_view what, absl::string_view flag,
                            const ListenAddress& address);

}  // namespace hpsched::server

#endif  // HPSCHED_SERVER_LISTEN_ADDRESS_H_
