// The RPC benchmark's baseline server (bench/rpc_bench.py): a trivial callback-API service built
// from the same gRPC as hpsched-server, answering one double (Tiny) or a plain 32 KiB payload
// (Large) with no other work. GetValues is judged as a ratio of its calls/s under the same load.
//
// Usage: echo_server --port_file=FILE   (listens on 127.0.0.1, a free port written to FILE; stops
// on SIGTERM/SIGINT)
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "hpsched/bench/echo.grpc.pb.h"

namespace {

namespace bench = ::hpsched::bench;

constexpr size_t kLargeBytes = 32 * 1024;

class EchoService final : public bench::Echo::CallbackService {
 public:
  EchoService() : payload_(kLargeBytes, '\x5a') {}

  grpc::ServerUnaryReactor* Tiny(grpc::CallbackServerContext* context, const bench::EchoRequest*,
                                 bench::EchoReply* reply) override {
    reply->set_value(0.5);
    return Answer(context);
  }

  grpc::ServerUnaryReactor* Large(grpc::CallbackServerContext* context, const bench::EchoRequest*,
                                  bench::EchoReply* reply) override {
    reply->set_payload(payload_);
    return Answer(context);
  }

  grpc::ServerUnaryReactor* Count(grpc::CallbackServerContext* context, const bench::EchoRequest*,
                                  bench::EchoCount* reply) override {
    reply->set_answered(answered_.load(std::memory_order_relaxed));
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  grpc::ServerUnaryReactor* Answer(grpc::CallbackServerContext* context) {
    answered_.fetch_add(1, std::memory_order_relaxed);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  const std::string payload_;
  std::atomic<int64_t> answered_{0};
};

std::atomic<bool> stop_requested{false};

void OnSignal(int) { stop_requested.store(true); }

}  // namespace

int main(int argc, char** argv) {
#ifdef NDEBUG
  // As hpsched-server does (server/main.cc): the same process-wide lock settings for both servers.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  std::string port_file;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--port_file=", 12) == 0) {
      port_file = argv[i] + 12;
    } else {
      std::fprintf(stderr, "usage: echo_server --port_file=FILE\n");
      return 2;
    }
  }
  EchoService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "echo_server: cannot listen on 127.0.0.1\n");
    return 1;
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  if (!port_file.empty()) {
    // Written whole under another name, then renamed: a reader never sees half a port.
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  } else {
    std::printf("%d\n", port);
    std::fflush(stdout);
  }
  // The signal handler only sets a flag; this thread polls it (a benchmark tool, not the product).
  while (!stop_requested.load()) {
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, nullptr);
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  return 0;
}
