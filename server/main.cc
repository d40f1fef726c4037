// hpsched-server: flags (or HPSCHED_* environment variables) -> ServerOptions -> Server; SIGTERM
// and SIGINT shut it down gracefully.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "env_flags.h"
#include "logging.h"
#include "server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, address, "[::]", "Address to listen on ([::] is every interface).");
ABSL_FLAG(int, port, 50051, "gRPC port; 0 picks a free port (see --port_file).");
ABSL_FLAG(std::string, port_file, "",
          "If set, the bound gRPC port is written to this file once serving.");
ABSL_FLAG(std::string, log_level, "info", "trace, debug, info, warn, error, critical or off.");
ABSL_FLAG(std::string, log_format, "text", "text, or json for one JSON object per line.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "How long in-flight calls may run after SIGTERM before they are cancelled.");
ABSL_FLAG(std::string, store, "sqlite",
          "sqlite (durable, under --data_dir) or memory (for throwaway runs: nothing survives a "
          "restart).");
ABSL_FLAG(std::string, data_dir, "/var/lib/hpsched",
          "Directory of the SQLite store; one server per directory.");
ABSL_FLAG(std::string, sync, "full",
          "full: acknowledged writes survive a power loss; normal: they survive a process crash, a "
          "power loss can "
          "lose the last ones; off: they survive a process crash only.");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key turns on TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of the server.");
ABSL_FLAG(
    std::string, tls_client_ca, "",
    "PEM CA certificates; when set, clients must present a certificate it signed (mutual TLS).");
ABSL_FLAG(std::string, auth_token_file, "",
          "File of \"<role> <token>\" lines (roles reader, trainer, admin); when set, calls need "
          "\"authorization: Bearer <token>\". Health and reflection stay open.");
ABSL_FLAG(int64_t, max_jobs, 1000000,
          "Most jobs the server holds; CreateJob beyond it is RESOURCE_EXHAUSTED.");
ABSL_FLAG(int, max_request_bytes, 4 << 20,
          "Largest request message accepted (RESOURCE_EXHAUSTED beyond).");
ABSL_FLAG(int, max_concurrent_streams, 256, "Calls in flight per connection (HTTP/2 streams).");
ABSL_FLAG(int64_t, max_watches, 10000,
          "Most WatchJob streams open at once; more are RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, max_waiting_calls, 10000,
          "Most GetValues calls waiting for metric reports at once; more are RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, max_call_memory_bytes, int64_t{1} << 30,
          "Memory for calls in flight, in total.");
// Costly work (service-load): see docs/operations.md, Limits.
ABSL_FLAG(int64_t, max_eval_cost, 50'000'000,
          "Evaluation budget of one GetValues, BatchGetValues or Preview (count x per-step cost of "
          "each series); beyond it INVALID_ARGUMENT.");
ABSL_FLAG(int64_t, inline_eval_cost, int64_t{1} << 20,
          "Calls costing more than this evaluate on the evaluation threads, not gRPC's.");
ABSL_FLAG(int, eval_threads, 2, "Threads for costly evaluations.");
ABSL_FLAG(int64_t, eval_queue, 64,
          "Costly calls that may wait for an evaluation thread; more are RESOURCE_EXHAUSTED.");
ABSL_FLAG(int64_t, max_watch_queue_bytes, int64_t{8} << 20,
          "Bytes of unsent events a WatchJob stream may hold; beyond it the stream ends with "
          "RESOURCE_EXHAUSTED (the client reconnects for a fresh snapshot).");
ABSL_FLAG(int, metrics_port, 9464, "Prometheus /metrics HTTP port; 0 turns metrics off.");
ABSL_FLAG(std::string, metrics_address, "0.0.0.0", "Address the metrics endpoint listens on.");
ABSL_FLAG(std::string, metrics_port_file, "",
          "If set, the bound metrics port is written to this file once serving.");

namespace {

// Written whole, then renamed, so a reader never sees a partial file.
void WritePortFile(const std::string& path, int port) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << port << "\n";
  std::rename(tmp.c_str(), path.c_str());
}

bool ValidPort(const char* flag, int port) {
  if (port >= 0 && port <= 65535) return true;
  std::fprintf(stderr, "--%s: must be between 0 and 65535, got %d\n", flag, port);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "hpsched-server: serves hyperparameter schedules over gRPC.\n"
      "Every flag can also be set by the environment variable HPSCHED_<FLAG IN UPPER CASE>; the "
      "command line wins.");
  if (absl::Status env = hpsched::server::ApplyEnvironmentToFlags(); !env.ok()) {
    std::fprintf(stderr, "%s\n", std::string(env.message()).c_str());
    return 2;
  }
  absl::ParseCommandLine(argc, argv);

  if (absl::Status logging = hpsched::server::ConfigureLogging(absl::GetFlag(FLAGS_log_level),
                                                               absl::GetFlag(FLAGS_log_format));
      !logging.ok()) {
    std::fprintf(stderr, "%s\n", std::string(logging.message()).c_str());
    return 2;
  }
  if (!ValidPort("port", absl::GetFlag(FLAGS_port)) ||
      !ValidPort("metrics_port", absl::GetFlag(FLAGS_metrics_port))) {
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
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.store = absl::GetFlag(FLAGS_store);
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  options.max_jobs = static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_max_jobs)));
  options.max_request_bytes = absl::GetFlag(FLAGS_max_request_bytes);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.max_call_memory_bytes = absl::GetFlag(FLAGS_max_call_memory_bytes);
  options.limits.max_watches =
      static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_max_watches)));
  options.limits.max_waiting_calls =
      static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_max_waiting_calls)));
  options.limits.max_eval_cost = std::max<int64_t>(1, absl::GetFlag(FLAGS_max_eval_cost));
  options.limits.inline_eval_cost = absl::GetFlag(FLAGS_inline_eval_cost);
  options.limits.eval_threads = std::max(1, absl::GetFlag(FLAGS_eval_threads));
  options.limits.eval_queue =
      static_cast<size_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_eval_queue)));
  options.limits.max_watch_queue_bytes =
      static_cast<size_t>(std::max<int64_t>(1, absl::GetFlag(FLAGS_max_watch_queue_bytes)));
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.sync = absl::GetFlag(FLAGS_sync);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  auto server = hpsched::server::Server::Start(options);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  WritePortFile(absl::GetFlag(FLAGS_port_file), (*server)->port());
  WritePortFile(absl::GetFlag(FLAGS_metrics_port_file), (*server)->metrics_port());

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
