// Rows of schema 2 and older held the public hpsched.v1.Job resource. This reads one, once, when
// SqliteJobStore::Open migrates the database to the store's own format (store/job_state.proto). The
// only store code that uses the API codec; no other layer of the service or gRPC.
#ifndef HPSCHED_STORE_LEGACY_ROW_H_
#define HPSCHED_STORE_LEGACY_ROW_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/job_record.h"

namespace hpsched::store {

// The record of a schema-2 row, without its live state (the `state` column, which the caller adds).
// DataLoss naming the job when `job_bytes` does not parse as a v1.Job of `job_id` at `version`.
absl::StatusOr<core::JobRecord> DecodeLegacyJob(absl::string_view job_id, int64_t version,
                                                absl::string_view job_bytes,
                                                absl::string_view create_request_id);

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_LEGACY_ROW_H_
