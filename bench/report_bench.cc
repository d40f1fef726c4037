// Report cost at 10^5 reports: ReportMetrics latency on one reduce_on_plateau job (a report every
// step) through the real server over loopback gRPC, near the 100th, 1,000th, 10,000th and
// 100,000th report, with the memory store, SQLite (default --sync full) and, with
// --stores=...,postgres, PostgreSQL (a replica of one, --store=postgres); then, for each durable
// store, the restart time of the server holding that job, and that it serves the same values after.
//
// Usage (from the repo root): build/bench/report_bench [--server=build/server/hpsched-server]
//     [--reports=100000] [--stores=memory,sqlite] [--postgres_url=URL] [--quick]
// PostgreSQL needs a throwaway database: run it under `tests/lib/pg_cluster.py run --`, which sets
// HPSCHED_POSTGRES_URL (the URL, which holds a password, is never printed).
// Prints one Markdown section. Target: the median near the last report within 2x of the median
// near the 100th. Budget: about 2.5 min on 2 loaded cores for memory and SQLite at 10^5 (SQLite's
// fsync per report, with --sync full, takes most of it); PostgreSQL commits each report too (about
// 4-5 ms on the loaded box), so make bench runs it at 10^4 (about 1 min); --quick (2,000 reports)
// takes a few seconds per store.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "hpsched/v1/scheduler_service.grpc.pb.h"

extern char** environ;

namespace {

namespace v1 = hpsched::v1;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string server = "build/server/hpsched-server";
  int64_t reports = 100'000;
  bool quick = false;
  // Which stores to run, in order: memory, sqlite, postgres.
  std::vector<std::string> stores = {"memory", "sqlite"};
  // For --store=postgres: a throwaway database (tests/lib/pg_cluster.py run sets
  // HPSCHED_POSTGRES_URL).
  std::string postgres_url;
};

// A running hpsched-server.
struct Server {
  pid_t pid = -1;
  int port = 0;
  // From exec to the port file (written once it serves).
  double start_seconds = 0;
};

Server Start(const Args& args, const std::filesystem::path& dir, const std::string& store) {
  const std::string port_file = (dir / "port").string();
  std::filesystem::remove(port_file);
  std::vector<std::string> argv = {
      args.server,        "--address=127.0.0.1", "--port=0",        "--port_file=" + port_file,
      "--metrics_port=0", "--log_level=warn",    "--store=" + store};
  if (store == "sqlite") argv.push_back("--data_dir=" + (dir / "data").string());
  if (store == "postgres") {
    argv.push_back("--postgres_url=" + args.postgres_url);
    argv.push_back("--replica_id=report-bench");
  }
  std::vector<char*> raw;
  for (std::string& a : argv) raw.push_back(a.data());
  raw.push_back(nullptr);
  Server server;
  const auto begin = Clock::now();
  // The server logs to stdout; this program's stdout is the report (make bench writes it into the
  // results file), so the server's log goes to stderr.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
  const int spawned =
      posix_spawn(&server.pid, args.server.c_str(), &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    std::fprintf(stderr, "cannot start %s\n", args.server.c_str());
    std::exit(1);
  }
  // Bounded: 60 s.
  for (int i = 0; i < 60'000; ++i) {
    std::ifstream in(port_file);
    if (in >> server.port && server.port > 0) break;
    int status = 0;
    if (waitpid(server.pid, &status, WNOHANG) == server.pid) {
      std::fprintf(stderr, "the server exited at start\n");
      std::exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (server.port <= 0) {
    std::fprintf(stderr, "the server did not start in 60 s\n");
    std::exit(1);
  }
  server.start_seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  return server;
}

void Stop(Server& server) {
  kill(server.pid, SIGTERM);
  int status = 0;
  waitpid(server.pid, &status, 0);
  server.pid = -1;
}

std::unique_ptr<v1::SchedulerService::Stub> Connect(int port) {
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return v1::SchedulerService::NewStub(channel);
}

void Check(const grpc::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, status.error_message().c_str());
    std::exit(1);
  }
}

// A loss that falls in stairs of 300 steps, with a little noise: each stair improves on the last,
// then stalls, so the plateau (patience 50, cooldown 50) reduces about twice per stair, all along
// the run (factor 0.99 from 0.1 leaves room for about 1,100 reductions before eps stops them).
double Loss(int64_t step) {
  return 1.0 / (1.0 + 0.01 * static_cast<double>(step / 300)) +
         5e-5 * std::sin(static_cast<double>(step) * 0.61);
}

void CreateJob(v1::SchedulerService::Stub& stub) {
  v1::CreateJobRequest request;
  request.set_job_id("bench");
  v1::Hyperparameter* lr = request.mutable_job()->add_hyperparameters();
  lr->set_name("lr");
  lr->add_base_values(0.1);
  lr->add_base_values(0.05);
  v1::ReduceOnPlateauSchedule* plateau = lr->mutable_schedule()->mutable_reduce_on_plateau();
  plateau->set_metric("loss");
  plateau->set_patience(50);
  plateau->set_factor(0.99);
  plateau->set_cooldown(50);
  v1::MetricSpec* metric = request.mutable_job()->add_metrics();
  metric->set_name("loss");
  metric->set_every_steps(1);
  grpc::ClientContext context;
  v1::Job job;
  Check(stub.CreateJob(&context, request, &job), "CreateJob");
}

// The values of steps [0, count) of every series, read 50,000 steps at a time (a read returns at
// most 100,000 values).
std::vector<double> Values(v1::SchedulerService::Stub& stub, int64_t count) {
  std::vector<double> values;
  for (int64_t start = 0; start < count; start += 50'000) {
    v1::GetValuesRequest request;
    request.set_job("jobs/bench");
    request.set_step(start);
    request.set_count(std::min<int64_t>(50'000, count - start));
    request.set_pending_policy(v1::PENDING_POLICY_PROVISIONAL_NOW);
    grpc::ClientContext context;
    v1::GetValuesResponse response;
    Check(stub.GetValues(&context, request, &response), "GetValues");
    for (const v1::Series& series : response.series()) {
      values.insert(values.end(), series.values().begin(), series.values().end());
    }
  }
  return values;
}

struct Run {
  std::vector<double> latency_ms;  // per report, in order
  int64_t reductions = 0;
  double seconds = 0;
};

Run Report(v1::SchedulerService::Stub& stub, int64_t reports) {
  Run run;
  run.latency_ms.reserve(static_cast<size_t>(reports));
  const auto begin = Clock::now();
  for (int64_t step = 0; step < reports; ++step) {
    v1::ReportMetricsRequest request;
    request.set_job("jobs/bench");
    request.set_step(step);
    (*request.mutable_metrics())["loss"] = Loss(step);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ReportMetricsResponse response;
    const auto t0 = Clock::now();
    Check(stub.ReportMetrics(&context, request, &response), "ReportMetrics");
    run.latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    run.reductions += response.reduction_steps_size();
  }
  run.seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  return run;
}

// Percentile q of the reports numbered [first, last] (1-based), clamped to the run.
double Percentile(const Run& run, int64_t first, int64_t last, double q) {
  const int64_t n = static_cast<int64_t>(run.latency_ms.size());
  first = std::max<int64_t>(1, first);
  last = std::min(n, last);
  std::vector<double> window(run.latency_ms.begin() + (first - 1), run.latency_ms.begin() + last);
  std::sort(window.begin(), window.end());
  const size_t at = std::min(window.size() - 1, static_cast<size_t>(q * window.size()));
  return window[at];
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      args.quick = true;
      args.reports = 2'000;
    } else if (a.rfind("--server=", 0) == 0) {
      args.server = a.substr(9);
    } else if (a.rfind("--reports=", 0) == 0) {
      args.reports = std::stoll(a.substr(10));
    } else if (a.rfind("--stores=", 0) == 0) {
      args.stores.clear();
      for (size_t at = 9; at <= a.size();) {
        const size_t comma = std::min(a.find(',', at), a.size());
        args.stores.push_back(a.substr(at, comma - at));
        at = comma + 1;
      }
    } else if (a.rfind("--postgres_url=", 0) == 0) {
      args.postgres_url = a.substr(15);
    } else {
      std::fprintf(stderr,
                   "usage: %s [--server=PATH] [--reports=N] [--stores=memory,sqlite,postgres] "
                   "[--postgres_url=URL] [--quick]\n",
                   argv[0]);
      return 2;
    }
  }
  // --quick after --reports (run_bench.py appends it) keeps the smoke run small for every store.
  if (args.quick) args.reports = std::min<int64_t>(args.reports, 2'000);
  if (args.postgres_url.empty()) {
    if (const char* url = std::getenv("HPSCHED_POSTGRES_URL")) args.postgres_url = url;
  }
  for (const std::string& store : args.stores) {
    if (store != "memory" && store != "sqlite" && store != "postgres") {
      std::fprintf(stderr, "--stores: each must be memory, sqlite or postgres, got \"%s\"\n",
                   store.c_str());
      return 2;
    }
    if (store == "postgres" && args.postgres_url.empty()) {
      std::fprintf(stderr,
                   "--stores=postgres needs --postgres_url or HPSCHED_POSTGRES_URL (run it under "
                   "tests/lib/pg_cluster.py run --)\n");
      return 2;
    }
  }
  if (args.reports < 200) args.reports = 200;
  std::string command = "build/bench/report_bench";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    // The URL holds the database's password: never printed.
    command += a.rfind("--postgres_url=", 0) == 0 ? " --postgres_url=..." : " " + a;
  }

  // Windows of 100 reports around each mark (the last ends at the last report).
  std::vector<int64_t> marks;
  for (int64_t mark = 100; mark <= args.reports; mark *= 10) marks.push_back(mark);
  if (marks.back() != args.reports) marks.push_back(args.reports);

  std::printf("## Report cost at %lld reports (`report_bench`)\n\n",
              static_cast<long long>(args.reports));
  std::printf("```sh\n%s\n```\n\n", command.c_str());
  std::printf(
      "One reduce_on_plateau job (2 groups, a report every step), %lld ReportMetrics calls in a "
      "row "
      "from one C++ gRPC client over loopback; latency of each call in ms, over the 100 reports "
      "ending at or centred on each mark.\n\n",
      static_cast<long long>(args.reports));
  std::printf("| store | near report | p50 | p90 | p99 |\n|---|---|---|---|---|\n");
  struct Summary {
    std::string store;
    double first = 0, last = 0, seconds = 0;
    int64_t reductions = 0;
  };
  std::vector<Summary> summaries;
  struct Restart {
    std::string store;
    double seconds = 0;
    bool same_values = false;
  };
  std::vector<Restart> restarts;
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("hpsched-report-bench-" + std::to_string(getpid()));
  for (const std::string& store : args.stores) {
    const std::filesystem::path dir = root / store;
    std::filesystem::create_directories(dir);
    Server server = Start(args, dir, store);
    auto stub = Connect(server.port);
    CreateJob(*stub);
    const Run run = Report(*stub, args.reports);
    Summary summary{store};
    for (int64_t mark : marks) {
      const int64_t first = mark == args.reports ? mark - 99 : mark - 49;
      const int64_t last = mark == args.reports ? mark : mark + 50;
      const double p50 = Percentile(run, first, last, 0.5);
      std::printf("| %s | %lld | %.3f | %.3f | %.3f |\n", store.c_str(),
                  static_cast<long long>(mark), p50, Percentile(run, first, last, 0.9),
                  Percentile(run, first, last, 0.99));
      if (mark == marks.front()) summary.first = p50;
      if (mark == marks.back()) summary.last = p50;
    }
    summary.seconds = run.seconds;
    summary.reductions = run.reductions;
    summaries.push_back(summary);
    if (store != "memory") {
      const std::vector<double> before = Values(*stub, args.reports + 10);
      stub.reset();
      Stop(server);
      server = Start(args, dir, store);
      stub = Connect(server.port);
      restarts.push_back({store, server.start_seconds, Values(*stub, args.reports + 10) == before});
    }
    stub.reset();
    Stop(server);
  }
  std::filesystem::remove_all(root);

  std::printf(
      "\n| store | reports/s over the run | plateau reductions | p50 near %lld / near 100 |\n",
      static_cast<long long>(args.reports));
  std::printf("|---|---|---|---|\n");
  bool met = true;
  for (const Summary& s : summaries) {
    const double ratio = s.last / s.first;
    met = met && ratio <= 2.0;
    std::printf("| %s | %.0f | %lld | %.2fx |\n", s.store.c_str(),
                static_cast<double>(args.reports) / s.seconds, static_cast<long long>(s.reductions),
                ratio);
  }
  std::printf("\n");
  bool same_values = true;
  for (const Restart& r : restarts) {
    same_values = same_values && r.same_values;
    std::printf(
        "Restart of the %s server holding the job (%lld reports): %.3f s from exec to serving; "
        "values of steps 0..%lld after it %s those before.\n\n",
        r.store.c_str(), static_cast<long long>(args.reports), r.seconds,
        static_cast<long long>(args.reports + 9), r.same_values ? "equal" : "DIFFER FROM");
  }
  std::printf("Target: p50 near the %lldth report within 2x of p50 near the 100th: %s.\n",
              static_cast<long long>(args.reports), met ? "met" : "missed");
  return same_values ? 0 : 1;
}
