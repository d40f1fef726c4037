#include "store/job_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace hpsched::store {

absl::Status JobStore::LoadEach(absl::FunctionRef<absl::Status(core::JobRecord)> visit) {
  ASSIGN_OR_RETURN(std::vector<core::JobRecord> records, LoadAll());
  for (core::JobRecord& record : records) RETURN_IF_ERROR(visit(std::move(record)));
  return absl::OkStatus();
}

absl::StatusOr<core::JobRecord> JobStore::Get(absl::string_view job_id) {
  ASSIGN_OR_RETURN(std::vector<core::JobRecord> records, LoadAll());
  for (core::JobRecord& record : records) {
    if (record.job_id == job_id) return std::move(record);
  }
  return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
}

absl::StatusOr<std::vector<core::JobRecord>> JobStore::List(size_t page_size,
                                                            absl::string_view after) {
  if (page_size == 0) return absl::InvalidArgumentError("page_size: must be > 0");
  ASSIGN_OR_RETURN(std::vector<core::JobRecord> records, LoadAll());
  auto first = std::upper_bound(
      records.begin(), records.end(), after,
      [](absl::string_view id, const core::JobRecord& r) { return id < r.job_id; });
  std::vector<core::JobRecord> page;
  for (auto it = first; it != records.end() && page.size() < page_size; ++it) {
    page.push_back(std::move(*it));
  }
  return page;
}

absl::Status JobStore::PutServedMarks(std::span<const ServedMark> marks, bool /*clean_stop*/) {
  for (const ServedMark& mark : marks) {
    absl::StatusOr<core::JobRecord> record = Get(mark.job_id);
    if (absl::IsNotFound(record.status())) continue;
    RETURN_IF_ERROR(record.status());
    if (record->served_through >= mark.served_through) continue;
    record->served_through = mark.served_through;
    RETURN_IF_ERROR(Put(*record));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::store
