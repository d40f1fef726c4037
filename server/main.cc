// hpsched-server: flags (or HPSCHED_* environment variables) -> ServerOptions -> Server; SIGTERM
// and SIGINT shut it down gracefully.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "env_flags.h"
#include "logging.h"
#include "server.h"
#include "spdlog/spdlog.h"

ABSL_FLAG(std::string, address, "[::]",
          "Address to listen on ([::] is every interface, IPv6 and IPv4). Without "
          "--auth_token_file only loopback is served: left unset, the server listens on 127.0.0.1; "
          "set to another address, it refuses to start unless --allow_unauthenticated_remote.");
ABSL_FLAG(bool, allow_unauthenticated_remote, false,
          "Serve gRPC and metrics on non-loopback addresses although --auth_token_file is not set "
          "(an open server: anyone who reaches it may create, change and delete jobs).");
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
ABSL_FLAG(bool, accept_empty_store, false,
          "Start even though hpsched.db is missing or empty where --data_dir/IDENTITY says a "
          "database that held jobs was (begin anew with an empty store).");
ABSL_FLAG(absl::Duration, served_mark_interval, absl::Seconds(1),
          "How often the highest steps served per job are written to the store in the background "
          "(one transaction for all jobs read since).");
ABSL_FLAG(int64_t, served_mark_reserve, 10000,
          "Steps reserved ahead of each job's written served mark: reads within it never wait for "
          "the store; after a crash, UpdateJob treats them as served.");
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
ABSL_FLAG(int64_t, reset_flood_threshold, 1000,
          "A connection on which at least this many calls were reset before their request arrived, "
          "and more than half of its calls, is closed (HTTP/2 rapid-reset floods, CVE-2023-44487); "
          "0 turns the check off.");
ABSL_FLAG(int, max_threads, 0,
          "Most threads gRPC may use for calls (grpc::ResourceQuota::SetMaxThreads); 0 keeps "
          "gRPC's default.");
ABSL_FLAG(absl::Duration, max_connection_idle, absl::Minutes(30),
          "A connection without calls for this long is closed (clients reconnect); inf: never.");
ABSL_FLAG(absl::Duration, max_connection_age, absl::InfiniteDuration(),
          "A connection older than this is asked to reconnect (GOAWAY); inf: never.");
ABSL_FLAG(absl::Duration, max_connection_age_grace, absl::Seconds(30),
          "How long calls in flight on a connection past --max_connection_age may still run.");
ABSL_FLAG(absl::Duration, keepalive_time, absl::Hours(2),
          "The server pings a connection idle for this long, to find dead peers.");
ABSL_FLAG(absl::Duration, keepalive_timeout, absl::Seconds(20),
          "A keepalive ping not answered within this closes the connection.");
ABSL_FLAG(absl::Duration, min_client_ping_interval, absl::Minutes(5),
          "Client pings closer together than this (without calls) are strikes; the second strike "
          "closes the connection (GOAWAY ENHANCE_YOUR_CALM).");
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
ABSL_FLAG(std::string, metrics_address, "[::]",
          "Address the metrics endpoint listens on ([::] is every interface, IPv6 and IPv4; "
          "0.0.0.0 IPv4 only; 127.0.0.1 or [::1] loopback). Without --auth_token_file the same "
          "rule as for --address applies.");
ABSL_FLAG(std::string, metrics_port_file, "",
          "If set, the bound metrics port is written to this file once serving.");
ABSL_FLAG(
    int, health_port, 0,
    "A plaintext port serving only grpc.health.v1.Health (the statuses of --port), for probes "
    "that cannot speak TLS such as Kubernetes' native gRPC probes; 0 turns it off.");
ABSL_FLAG(std::string, health_address, "[::]", "Address the --health_port listener binds.");
// The HTTP listener (issue 13): docs/http.md.
ABSL_FLAG(int, http_port, 8080,
          "HTTP port of the JSON API (/v1/...), its server-sent events and the dashboard (/); "
          "same TLS files and tokens as --port; 0 turns HTTP off.");
ABSL_FLAG(std::string, http_address, "[::]",
          "Address the HTTP listener binds; left unset, the same as --address (and the same "
          "loopback rule without --auth_token_file).");
ABSL_FLAG(std::string, http_port_file, "",
          "If set, the bound HTTP port is written to this file once serving.");
ABSL_FLAG(int, http_max_streams, 32,
          "Event streams (GET /v1/jobs/{id}:watch) open at once; more are answered 429.");
ABSL_FLAG(absl::Duration, http_heartbeat, absl::Seconds(15),
          "An idle event stream gets a heartbeat comment this often (keeps proxies from closing "
          "it, and finds vanished clients).");

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

// --help and --helpshort list the flags of this file (Abseil's default looks for a file named
// after the binary, hpsched-server.cc, and so listed none).
bool IsServerFlagFile(absl::string_view path) { return absl::EndsWith(path, "server/main.cc"); }

// Whether argv sets --name (or -name), as "--name=value" or "--name value", before a "--". This
// Abseil release keeps CommandLineFlag::IsSpecifiedOnCommandLine private.
bool OnCommandLine(int argc, char** argv, absl::string_view name) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--")) absl::ConsumePrefix(&arg, "-");
    if (absl::ConsumePrefix(&arg, name) && (arg.empty() || arg.front() == '=')) return true;
  }
  return false;
}

// Flags the operator set: on the command line, or as HPSCHED_<FLAG>.
struct GivenFlags {
  int argc;
  char** argv;
  std::vector<std::string> from_env;

  bool Given(absl::string_view name) const {
    return OnCommandLine(argc, argv, name) ||
           std::find(from_env.begin(), from_env.end(), name) != from_env.end();
  }
  // The flag's value when given, else "" (the server then chooses).
  std::string ValueOrEmpty(const absl::Flag<std::string>& flag) const {
    return Given(absl::GetFlagReflectionHandle(flag).Name()) ? absl::GetFlag(flag) : std::string();
  }
};

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "serves hyperparameter schedules over gRPC.\n"
      "Every flag can also be set by the environment variable HPSCHED_<FLAG IN UPPER CASE>; the "
      "command line wins.");
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = IsServerFlagFile;
  usage.contains_helpshort_flags = IsServerFlagFile;
  absl::SetFlagsUsageConfig(usage);
  GivenFlags given{argc, argv, {}};
  if (absl::Status env = hpsched::server::ApplyEnvironmentToFlags("HPSCHED_", &given.from_env);
      !env.ok()) {
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
      !ValidPort("metrics_port", absl::GetFlag(FLAGS_metrics_port)) ||
      !ValidPort("health_port", absl::GetFlag(FLAGS_health_port)) ||
      !ValidPort("http_port", absl::GetFlag(FLAGS_http_port))) {
    return 2;
  }
  // --data_dir means nothing to the memory store. Given on the command line that is a mistake to
  // refuse; from the environment (a ConfigMap or compose file sets every variable at once) it is
  // said loudly.
  if (absl::GetFlag(FLAGS_store) == "memory" && OnCommandLine(argc, argv, "data_dir")) {
    std::fprintf(stderr,
                 "--data_dir=%s: has no effect with --store=memory, which keeps nothing on disk; "
                 "drop --data_dir, or use --store=sqlite\n",
                 absl::GetFlag(FLAGS_data_dir).c_str());
    return 2;
  }
  if (absl::GetFlag(FLAGS_store) == "memory" && given.Given("data_dir")) {
    spdlog::warn(
        "HPSCHED_DATA_DIR={} is ignored: --store=memory keeps nothing on disk, and nothing "
        "survives a restart",
        absl::GetFlag(FLAGS_data_dir));
  }

  // Block the shutdown signals in every thread; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  hpsched::server::ServerOptions options;
  // Left unset, the server chooses by whether authentication is on (see ServerOptions::address).
  options.address = given.ValueOrEmpty(FLAGS_address);
  options.allow_unauthenticated_remote = absl::GetFlag(FLAGS_allow_unauthenticated_remote);
  options.port = absl::GetFlag(FLAGS_port);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.metrics_address = given.ValueOrEmpty(FLAGS_metrics_address);
  options.health_address = absl::GetFlag(FLAGS_health_address);
  options.health_port = absl::GetFlag(FLAGS_health_port);
  options.max_threads = absl::GetFlag(FLAGS_max_threads);
  options.reset_flood_threshold = absl::GetFlag(FLAGS_reset_flood_threshold);
  options.max_connection_idle = absl::GetFlag(FLAGS_max_connection_idle);
  options.max_connection_age = absl::GetFlag(FLAGS_max_connection_age);
  options.max_connection_age_grace = absl::GetFlag(FLAGS_max_connection_age_grace);
  options.keepalive_time = absl::GetFlag(FLAGS_keepalive_time);
  options.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout);
  options.min_client_ping_interval = absl::GetFlag(FLAGS_min_client_ping_interval);
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
  options.accept_empty_store = absl::GetFlag(FLAGS_accept_empty_store);
  options.served_mark_interval = absl::GetFlag(FLAGS_served_mark_interval);
  options.served_mark_reserve = absl::GetFlag(FLAGS_served_mark_reserve);
  options.metrics_port = absl::GetFlag(FLAGS_metrics_port);
  options.http_address = given.ValueOrEmpty(FLAGS_http_address);
  options.http_port = absl::GetFlag(FLAGS_http_port);
  options.http_max_streams = absl::GetFlag(FLAGS_http_max_streams);
  options.http_heartbeat = absl::GetFlag(FLAGS_http_heartbeat);
  auto server = hpsched::server::Server::Start(options);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  WritePortFile(absl::GetFlag(FLAGS_port_file), (*server)->port());
  WritePortFile(absl::GetFlag(FLAGS_metrics_port_file), (*server)->metrics_port());
  WritePortFile(absl::GetFlag(FLAGS_http_port_file), (*server)->http_port());

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
