#include "store/memory_job_store.h"

#include "absl/strings/str_cat.h"

namespace hpsched::store {

absl::Status MemoryJobStore::Put(const core::JobRecord& record) {
  absl::MutexLock lock(&mutex_);
  records_.insert_or_assign(record.job_id, record);
  return absl::OkStatus();
}

absl::Status MemoryJobStore::Delete(absl::string_view job_id) {
  absl::MutexLock lock(&mutex_);
  auto it = records_.find(job_id);
  if (it == records_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  records_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<core::JobRecord>> MemoryJobStore::LoadAll() {
  absl::MutexLock lock(&mutex_);
  std::vector<core::JobRecord> records;
  records.reserve(records_.size());
  for (const auto& [id, record] : records_) records.push_back(record);
  return records;
}

absl::StatusOr<core::JobRecord> MemoryJobStore::Get(absl::string_view job_id) {
  absl::MutexLock lock(&mutex_);
  auto it = records_.find(job_id);
  if (it == records_.end()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  return it->second;
}

absl::StatusOr<std::vector<core::JobRecord>> MemoryJobStore::List(size_t page_size,
                                                                  absl::string_view after) {
  if (page_size == 0) return absl::InvalidArgumentError("page_size: must be > 0");
  absl::MutexLock lock(&mutex_);
  std::vector<core::JobRecord> page;
  for (auto it = records_.upper_bound(after); it != records_.end() && page.size() < page_size;
       ++it) {
    page.push_back(it->second);
  }
  return page;
}

}  // namespace hpsched::store
