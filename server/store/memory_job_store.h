// A JobStore in process memory: for tests and throwaway runs; nothing survives a restart.
#ifndef HPSCHED_STORE_MEMORY_JOB_STORE_H_
#define HPSCHED_STORE_MEMORY_JOB_STORE_H_

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "store/job_store.h"

namespace hpsched::store {

class MemoryJobStore final : public JobStore {
 public:
  absl::Status Put(const core::JobRecord& record) override;
  absl::Status Delete(absl::string_view job_id) override;
  absl::StatusOr<std::vector<core::JobRecord>> LoadAll() override;
  absl::StatusOr<core::JobRecord> Get(absl::string_view job_id) override;
  absl::StatusOr<std::vector<core::JobRecord>> List(size_t page_size,
                                                    absl::string_view after) override;

 private:
  absl::Mutex mutex_;
  std::map<std::string, core::JobRecord, std::less<>> records_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_MEMORY_JOB_STORE_H_
