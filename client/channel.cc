#include <arpa/inet.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>
#include <netdb.h>
#include <sys/socket.h>

#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace hpsched::client {
namespace {

// The methods gRPC retries on UNAVAILABLE by itself (on another replica under round_robin): the
// reads, and the mutations that are safe to send twice: CreateJob and UpdateJob carry a request_id
// (the client always sets one), so a repeat answers as the first did; a repeated metric report is
// recognized and changes nothing. Not DeleteJob (no request_id: a repeat after a lost answer says
// NOT_FOUND) and not WatchJob (a stream: the caller reopens it from its snapshot).
constexpr const char* kRetriedMethods[] = {"GetJob",  "ListJobs",  "GetValues", "BatchGetValues",
                                           "Preview", "CreateJob", "UpdateJob", "ReportMetrics"};

struct HostPort {
  std::string host;  // Without brackets.
  std::string port;
};

absl::StatusOr<HostPort> SplitHostPort(absl::string_view address) {
  HostPort out;
  if (absl::ConsumePrefix(&address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || address.substr(close + 1, 1) != ":") {
      return absl::InvalidArgumentError(
          absl::StrCat("--target: \"[", address, "\" must be [IPV6]:PORT"));
    }
    out.host = std::string(address.substr(0, close));
    out.port = std::string(address.substr(close + 2));
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--target: \"", address, "\" must be HOST:PORT (a list needs every port)"));
    }
    out.host = std::string(address.substr(0, colon));
    out.port = std::string(address.substr(colon + 1));
  }
  int port = 0;
  if (out.host.empty() || !absl::SimpleAtoi(out.port, &port) || port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target: \"", address, "\" must be HOST:PORT with a port in 1..65535"));
  }
  return out;
}

// The IPv4 and IPv6 addresses of `host` (a literal or a name, resolved now).
absl::Status Resolve(const std::string& host, std::vector<std::string>* v4,
                     std::vector<std::string>* v6) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int error = getaddrinfo(host.c_str(), nullptr, &hints, &found); error != 0) {
    return absl::UnavailableError(
        absl::StrCat("--target: cannot resolve \"", host, "\": ", gai_strerror(error)));
  }
  std::set<std::string> seen;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, text, sizeof text);
      if (seen.insert(text).second) v4->push_back(text);
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, text,
                sizeof text);
      if (seen.insert(text).second) v6->push_back(text);
    }
  }
  freeaddrinfo(found);
  return absl::OkStatus();
}

std::string Seconds(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleSeconds(std::max(d, absl::Milliseconds(1))), "s");
}

}  // namespace

absl::StatusOr<std::string> ChannelTarget(absl::string_view addresses) {
  const absl::string_view target = absl::StripAsciiWhitespace(addresses);
  if (target.empty()) return absl::InvalidArgumentError("--target: must not be empty");
  // A gRPC target URI (dns:///name:port, ipv4:..., unix:...) is gRPC's to resolve.
  if (absl::StrContains(target, ":/") || absl::StartsWith(target, "ipv4:") ||
      absl::StartsWith(target, "ipv6:") || absl::StartsWith(target, "unix:")) {
    return std::string(target);
  }
  std::vector<absl::string_view> list = absl::StrSplit(target, ',');
  if (list.size() == 1) return std::string(target);
  std::vector<std::string> v4_entries, v6_entries;
  bool all_v4 = true, all_v6 = true;
  for (absl::string_view entry : list) {
    entry = absl::StripAsciiWhitespace(entry);
    if (entry.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--target: \"", target, "\" has an empty address in its list"));
    }
    auto address = SplitHostPort(entry);
    if (!address.ok()) return address.status();
    std::vector<std::string> v4, v6;
    if (absl::Status status = Resolve(address->host, &v4, &v6); !status.ok()) return status;
    all_v4 = all_v4 && !v4.empty();
    all_v6 = all_v6 && !v6.empty();
    for (const std::string& ip : v4) v4_entries.push_back(absl::StrCat(ip, ":", address->port));
    for (const std::string& ip : v6)
      v6_entries.push_back(absl::StrCat("[", ip, "]:", address->port));
  }
  // One gRPC target holds one address family.
  if (all_v4) return absl::StrCat("ipv4:", absl::StrJoin(v4_entries, ","));
  if (all_v6) return absl::StrCat("ipv6:", absl::StrJoin(v6_entries, ","));
  return absl::InvalidArgumentError(absl::StrCat(
      "--target: \"", target,
      "\" mixes addresses that are IPv4 only and IPv6 only; list one family (or use dns:///)"));
}

std::string ServiceConfigJson(const ClientOptions& options) {
  std::string config = R"({"loadBalancingConfig":[{"round_robin":{}}])";
  if (options.max_attempts > 1) {
    std::vector<std::string> names;
    for (const char* method : kRetriedMethods) {
      names.push_back(
          absl::StrCat(R"({"service":"hpsched.v1.SchedulerService","method":")", method, R"("})"));
    }
    // A quick second and third try, each on the next replica; the client's own backoff loop
    // (max_attempts) covers longer outages.
    absl::StrAppend(&config, R"(,"methodConfig":[{"name":[)", absl::StrJoin(names, ","),
                    R"(],"retryPolicy":{"maxAttempts":)", std::min(options.max_attempts, 3),
                    R"(,"initialBackoff":")", Seconds(options.initial_backoff / 2),
                    R"(","maxBackoff":")", Seconds(options.max_backoff),
                    R"(","backoffMultiplier":2,"retryableStatusCodes":["UNAVAILABLE"]}}])");
  }
  config += "}";
  return config;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const ClientOptions& options) {
  auto target = ChannelTarget(options.target);
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(ServiceConfigJson(options));
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
  // A list resolved here names the replicas by address; TLS checks the first name given.
  if (*target != absl::StripAsciiWhitespace(options.target) &&
      !absl::StartsWith(absl::StripAsciiWhitespace(options.target), "ipv")) {
    const absl::string_view first =
        absl::StripAsciiWhitespace(*absl::StrSplit(options.target, ',').begin());
    args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, std::string(first));
  }
  return grpc::CreateCustomChannel(*target, ChannelCredentials(options), args);
}

}  // namespace hpsched::client
