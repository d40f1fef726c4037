// Fills a SQLite data directory with N single-hyperparameter jobs for the scale benchmark
// (bench/scale_bench.py): through the store's own Put path, so the server loads them the normal
// way, only without the gRPC round trip per job (10^6 CreateJob calls from a Python client take
// about 6 minutes here; this takes seconds). Each job is what CreateJob stores for
// {"lr": base 0.1, cosine_annealing t_max 1000 + i}, every spec distinct (no sharing helps):
// version 1, an etag, create and update times; ids job-0000000, job-0000001, ...
//
// Usage: scale_fill DATA_DIR JOBS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "core/job_record.h"
#include "store/sqlite_job_store.h"

int main(int argc, char** argv) {
  const std::string mode = argc > 3 ? argv[3] : "distinct";
  if ((argc != 3 && argc != 4) || (mode != "distinct" && mode != "same")) {
    std::fprintf(stderr, "usage: %s DATA_DIR JOBS [distinct|same]\n", argv[0]);
    return 2;
  }
  const long jobs = std::strtol(argv[2], nullptr, 10);
  hpsched::store::SqliteOptions options;
  options.data_dir = argv[1];
  options.sync = hpsched::store::SyncMode::kOff;
  auto store = hpsched::store::SqliteJobStore::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  const absl::Time now = absl::Now();
  for (long i = 0; i < jobs; ++i) {
    hpsched::core::JobRecord record;
    record.job_id = absl::StrFormat("job-%07d", i);
    hpsched::core::HyperparameterSpec lr;
    lr.name = "lr";
    lr.base_values = {0.1};
    lr.schedule.kind = "cosine_annealing";
    lr.schedule.params["t_max"] = int64_t{mode == "same" ? 1000 : 1000 + i};
    record.spec.hyperparameters.push_back(std::move(lr));
    record.version = 1;
    record.etag = absl::StrFormat("1-%016x", static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ull);
    record.create_time = record.update_time = now;
    if (absl::Status status = (*store)->Put(record); !status.ok()) {
      std::fprintf(stderr, "%s\n", status.ToString().c_str());
      return 1;
    }
  }
  std::printf("filled %ld jobs in %.1f s\n", jobs,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return 0;
}
