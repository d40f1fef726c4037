#include "metrics/instrumented_job_store.h"

#include <chrono>

namespace hpsched::metrics {
namespace {

template <typename Write>
absl::Status Timed(PrometheusMetrics* metrics, Write write) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = write();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  metrics->StoreWrite(elapsed.count(), status.ok());
  return status;
}

}  // namespace

absl::Status InstrumentedJobStore::Put(const core::JobRecord& record) {
  return Timed(metrics_, [&] { return inner_->Put(record); });
}

absl::Status InstrumentedJobStore::Delete(absl::string_view job_id) {
  return Timed(metrics_, [&] { return inner_->Delete(job_id); });
}

absl::Status InstrumentedJobStore::PutServedMarks(std::span<const store::ServedMark> marks,
                                                  bool clean_stop) {
  // Not in hpsched_store_write_seconds, which counts the writes of mutations (one per
  // acknowledged change): background flushes come as reads and ticks fall.
  return inner_->PutServedMarks(marks, clean_stop);
}

}  // namespace hpsched::metrics
