// A JobStore decorator that times every write for the metrics.
#ifndef HPSCHED_SERVER_METRICS_INSTRUMENTED_JOB_STORE_H_
#define HPSCHED_SERVER_METRICS_INSTRUMENTED_JOB_STORE_H_

#include <memory>

#include "metrics/prometheus_metrics.h"
#include "store/job_store.h"

namespace hpsched::metrics {

class InstrumentedJobStore final : public store::JobStore {
 public:
  // `metrics` must outlive the store.
  InstrumentedJobStore(std::unique_ptr<store::JobStore> inner, PrometheusMetrics* metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}

  absl::Status Put(const core::JobRecord& record) override;
  absl::Status Delete(absl::string_view job_id) override;
  absl::StatusOr<std::vector<core::JobRecord>> LoadAll() override { return inner_->LoadAll(); }
  absl::Status LoadEach(absl::FunctionRef<absl::Status(core::JobRecord)> visit) override {
    return inner_->LoadEach(visit);
  }
  absl::StatusOr<core::JobRecord> Get(absl::string_view job_id) override {
    return inner_->Get(job_id);
  }
  absl::StatusOr<std::vector<core::JobRecord>> List(size_t page_size,
                                                    absl::string_view after) override {
    return inner_->List(page_size, after);
  }
  absl::Status PutServedMarks(std::span<const store::ServedMark> marks, bool clean_stop) override;

 private:
  std::unique_ptr<store::JobStore> inner_;
  PrometheusMetrics* const metrics_;
};

}  // namespace hpsched::metrics

#endif  // HPSCHED_SERVER_METRICS_INSTRUMENTED_JOB_STORE_H_
