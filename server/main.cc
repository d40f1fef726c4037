// hpsched-server: flags -> ServerOptions -> Server; SIGTERM and SIGINT shut it down gracefully.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, address, "[::]", "Address to listen on ([::] is every interface).");
ABSL_FLAG(int, port, 50051, "gRPC port; 0 picks a free port (see --port_file).");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound port is written to this file once serving.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "How long in-flight calls may run after SIGTERM before they are cancelled.");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("hpsched-server: serves hyperparameter schedules over gRPC.");
  absl::ParseCommandLine(argc, argv);

  const auto level = spdlog::level::from_str(absl::GetFlag(FLAGS_log_level));
  if (level == spdlog::level::off && absl::GetFlag(FLAGS_log_level) != "off") {
    std::fprintf(stderr,
                 "--log_level: must be one of trace, debug, info, warn, error, critical, off\n");
    return 2;
  }
  spdlog::set_level(level);
  if (absl::GetFlag(FLAGS_port) < 0 || absl::GetFlag(FLAGS_port) > 65535) {
    std::fprintf(stderr, "--port: must be between 0 and 65535\n");
    return 2;
  }

  // Block the shutdown signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  hpsched::server::ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.port = absl::GetFlag(FLAGS_port);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  auto server = hpsched::server::Server::Start(options);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  if (const std::string path = absl::GetFlag(FLAGS_port_file); !path.empty()) {
    // Written whole, then renamed, so a reader never sees a partial file.
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << (*server)->port() << "\n";
    std::rename(tmp.c_str(), path.c_str());
  }

  std::thread signal_waiter([&signals, &server] {
    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("signal {}: shutting down", signal);
    (*server)->Shutdown();
  });
  (*server)->Wait();
  signal_waiter.join();
  spdlog::info("stopped");
  return 0;
}
