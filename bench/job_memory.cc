// Where a job's bytes go (issue 11, item 4): builds N single-hyperparameter cosine jobs the way the
// server holds them, with a counting operator new (glibc chunk sizes: malloc_usable_size + 8), and
// prints one Markdown section:
//  - the whole: N jobs written to a SQLite store in a temporary directory (as bench/scale_fill
//    does), then loaded by a JobRegistry (JobRegistry::Load, the server's start): live heap,
//    glibc's arena (mallinfo2) and resident memory, each divided by N;
//  - the parts: the same jobs converted from their stored row (parse, StoredJobToRecord), compiled
//    (JobPlan::Compile as Load does), made a Job and put in a table, each step's live heap counted,
//    and inside the record and the plan each structure's own heap, measured by copying it (a copy
//    allocates what the original holds) or from its blocks' usable sizes.
//
// Usage: job_memory [--jobs=N] [--specs=distinct|same] [--quick]
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "absl/container/btree_set.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/job_plan.h"
#include "core/job_record.h"
#include "jobs/clock.h"
#include "jobs/job_registry.h"
#include "store/job_state.pb.h"
#include "store/sqlite_job_store.h"
#include "store/stored_job.h"

namespace {

// Live heap bytes in glibc chunks (an in-use chunk is its usable size plus an 8-byte header).
std::atomic<int64_t> g_live{0};

int64_t ChunkOf(void* p) { return p == nullptr ? 0 : int64_t(malloc_usable_size(p)) + 8; }

}  // namespace

void* operator new(size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  g_live.fetch_add(ChunkOf(p), std::memory_order_relaxed);
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept {
  g_live.fetch_sub(ChunkOf(p), std::memory_order_relaxed);
  std::free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, size_t) noexcept { operator delete(p); }
void operator delete[](void* p, size_t) noexcept { operator delete(p); }

namespace {

using hpsched::core::JobRecord;

int64_t Live() { return g_live.load(std::memory_order_relaxed); }

int64_t ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr || std::fscanf(f, "%ld %ld", &pages, &resident) != 2) std::abort();
  std::fclose(f);
  return int64_t(resident) * sysconf(_SC_PAGESIZE);
}

// Job i as bench/scale_fill writes it (CreateJob's record of {"lr": base 0.1, cosine_annealing}).
JobRecord MakeRecord(long i, bool distinct, absl::Time now) {
  JobRecord record;
  record.job_id = absl::StrFormat("job-%07d", i);
  hpsched::core::HyperparameterSpec lr;
  lr.name = "lr";
  lr.base_values = {0.1};
  lr.schedule.kind = "cosine_annealing";
  lr.schedule.params["t_max"] = int64_t{distinct ? 1000 + i : 1000};
  record.spec.hyperparameters.push_back(std::move(lr));
  record.version = 1;
  record.etag = absl::StrFormat("1-%016x", static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull);
  record.create_time = record.update_time = now;
  return record;
}

// The heap a copy of `value` allocates: what the original holds beyond its own sizeof.
template <typename T>
int64_t HeapOf(const T& value) {
  const int64_t before = Live();
  auto copy = std::make_unique<T>(value);
  return Live() - before - ChunkOf(copy.get());
}

struct Row {
  std::string what;
  double bytes = 0;  // Per job.
  std::string how;
};

void Fail(const absl::Status& status) {
  std::fprintf(stderr, "job_memory: %s\n", status.ToString().c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  long jobs = 100'000;
  bool distinct = true;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--jobs=", 0) == 0) {
      jobs = std::strtol(arg.c_str() + 7, nullptr, 10);
    } else if (arg == "--specs=same") {
      distinct = false;
    } else if (arg == "--specs=distinct") {
      distinct = true;
    } else if (arg == "--quick") {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--jobs=N] [--specs=distinct|same] [--quick]\n", argv[0]);
      return 2;
    }
  }
  if (quick) jobs = 2'000;
  const absl::Time now = absl::Now();

  // --- The whole: a SQLite store loaded by a registry, as the server starts.
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrFormat("hpsched-job-memory-%d", getpid());
  std::filesystem::create_directories(dir);
  double live_per_job = 0, arena_per_job = 0, rss_per_job = 0;
  {
    hpsched::store::SqliteOptions options;
    options.data_dir = dir.string();
    options.sync = hpsched::store::SyncMode::kOff;
    auto store = hpsched::store::SqliteJobStore::Open(options);
    if (!store.ok()) Fail(store.status());
    for (long i = 0; i < jobs; ++i) {
      if (absl::Status s = (*store)->Put(MakeRecord(i, distinct, now)); !s.ok()) Fail(s);
    }
    malloc_trim(0);
    hpsched::jobs::SystemClock clock;
    const int64_t live0 = Live();
    const int64_t arena0 = int64_t(mallinfo2().uordblks);
    const int64_t rss0 = ResidentBytes();
    hpsched::jobs::JobRegistry registry(store->get(), &clock, size_t(jobs) + 1);
    if (absl::Status s = registry.Load(); !s.ok()) Fail(s);
    live_per_job = double(Live() - live0) / jobs;
    arena_per_job = double(int64_t(mallinfo2().uordblks) - arena0) / jobs;
    rss_per_job = double(ResidentBytes() - rss0) / jobs;
  }
  std::filesystem::remove_all(dir);

  // --- The parts, step by step as Load does them.
  std::vector<Row> rows;
  hpsched::store::StoredJob stored;
  std::string bytes;
  int64_t record_heap = 0, plan_heap = 0, job_heap = 0, table_heap = 0;
  int64_t id = 0, etag = 0, request_id = 0, hps = 0, hp_name = 0, base_values = 0, kind = 0,
          params = 0, children = 0, segments = 0, labels = 0, metrics = 0, reports = 0,
          requests = 0;
  int64_t series = 0, nodes = 0;
  absl::btree_set<std::shared_ptr<const hpsched::jobs::Job>,
                  decltype([](const auto& a, const auto& b) {
                    return a->record.job_id < b->record.job_id;
                  })>
      table;
  for (long i = 0; i < jobs; ++i) {
    {
      JobRecord original = MakeRecord(i, distinct, now);
      hpsched::store::RecordToStoredJob(original).SerializeToString(&bytes);
    }
    stored.ParseFromString(bytes);  // One message reused, as the store's reader does.
    JobRecord record = hpsched::store::StoredJobToRecord(stored);
    record_heap += HeapOf(record);

    id += HeapOf(record.job_id);
    etag += HeapOf(record.etag);
    request_id += HeapOf(record.create_request_id);
    hps += ChunkOf(record.spec.hyperparameters.data());
    for (const auto& hp : record.spec.hyperparameters) {
      hp_name += HeapOf(hp.name);
      base_values += HeapOf(hp.base_values);
      kind += HeapOf(hp.schedule.kind);
      params += HeapOf(hp.schedule.params);
      children += HeapOf(hp.schedule.children);
      segments += HeapOf(hp.segments);
    }
    labels += HeapOf(record.spec.labels);
    metrics += HeapOf(record.spec.metrics);
    reports += HeapOf(record.metric_reports);
    requests += HeapOf(record.update_requests);

    int64_t before = Live();
    auto plan = hpsched::core::JobPlan::Compile(record.spec, "job", nullptr,
                                                hpsched::core::JobPlan::Budgets::kAccepted);
    if (!plan.ok()) Fail(plan.status());
    plan_heap += Live() - before;
    {
      // Series held inline in the plan object have no block of their own.
      const char* data = reinterpret_cast<const char*>((*plan)->series().data());
      const char* object = reinterpret_cast<const char*>(plan->get());
      if (data < object || data >= object + sizeof(hpsched::core::JobPlan)) {
        series += ChunkOf(const_cast<char*>(data));
      }
    }
    for (const auto& s : (*plan)->series()) {
      nodes += ChunkOf(const_cast<hpsched::core::Node*>(s.node.get()));
    }

    before = Live();
    auto job = std::make_shared<const hpsched::jobs::Job>(std::move(record), *std::move(plan));
    job_heap += Live() - before;
    before = Live();
    table.insert(table.end(), std::move(job));
    table_heap += Live() - before;
  }
  const double n = double(jobs);
  const int64_t record_parts = id + etag + request_id + hps + hp_name + base_values + kind +
                               params + children + segments + labels + metrics + reports + requests;
  rows.push_back({"the `Job` (with its `JobRecord` inline) and its `shared_ptr` control block",
                  job_heap / n,
                  absl::StrFormat("one `make_shared` block; sizeof(Job) %d, sizeof(JobRecord) %d",
                                  sizeof(hpsched::jobs::Job), sizeof(JobRecord))});
  rows.push_back({"record: job id", id / n, "heap of the string (ids up to 15 chars are inline)"});
  rows.push_back({"record: etag", etag / n, "heap of the string"});
  rows.push_back({"record: create request id", request_id / n, "heap of the string"});
  rows.push_back({"record: hyperparameters array", hps / n,
                  absl::StrFormat("sizeof(HyperparameterSpec) %d, sizeof(ScheduleSpec) %d",
                                  sizeof(hpsched::core::HyperparameterSpec),
                                  sizeof(hpsched::core::ScheduleSpec))});
  rows.push_back({"record: hyperparameter name", hp_name / n, "heap of the string"});
  rows.push_back({"record: base values", base_values / n, "heap of the vector"});
  rows.push_back({"record: schedule kind name", kind / n, "heap of the kind's name"});
  rows.push_back({"record: schedule parameters", params / n, "the parameter container's heap"});
  rows.push_back({"record: children, segments", (children + segments) / n, "empty here"});
  rows.push_back({"record: labels, metrics, reports, request ids",
                  (labels + metrics + reports + requests) / n, "empty here"});
  rows.push_back(
      {"record: other", (record_heap - record_parts) / n, "the record's heap not in a part above"});
  rows.push_back({"plan: series array (none when inline in the plan)", series / n,
                  absl::StrFormat("sizeof(SeriesPlan) %d", sizeof(hpsched::core::SeriesPlan))});
  rows.push_back({"plan: nodes", nodes / n, "the cosine node"});
  rows.push_back({"plan: the `JobPlan` and the rest", (plan_heap - series - nodes) / n,
                  absl::StrFormat("sizeof(JobPlan) %d, with its control block",
                                  sizeof(hpsched::core::JobPlan))});
  rows.push_back({"table entry", table_heap / n, "a B-tree slot of one `shared_ptr`"});
  const double parts = double(record_heap + plan_heap + job_heap + table_heap) / n;

  std::printf("## Memory per job, by structure (`job_memory`)\n\n```sh\n");
  std::printf("build/bench/job_memory --jobs=%ld --specs=%s%s\n```\n\n", jobs,
              distinct ? "distinct" : "same", quick ? " --quick" : "");
  std::printf("%ld single-hyperparameter cosine jobs (%s), glibc chunk bytes per job.\n\n", jobs,
              distinct ? "every spec distinct, t_max = 1000 + i" : "one spec for every job");
  std::printf("| structure | bytes per job | how measured |\n|---|---|---|\n");
  for (const Row& row : rows) {
    std::printf("| %s | %.0f | %s |\n", row.what.c_str(), row.bytes, row.how.c_str());
  }
  std::printf("| **sum of the parts** | **%.0f** | record + plan + job + table |\n\n", parts);
  std::printf("| whole: `JobRegistry::Load` from SQLite | bytes per job |\n|---|---|\n");
  std::printf("| live heap (counted) | %.0f |\n| glibc arena in use (mallinfo2) | %.0f |\n",
              live_per_job, arena_per_job);
  std::printf("| resident memory growth | %.0f |\n\n", rss_per_job);
  std::printf(
      "Judged by (issue 11): at most 1,024 bytes of server memory per job at 10^6 jobs "
      "(bench/scale_bench.py measures the server's RSS); this table says where they go.\n");
  return 0;
}
