// The durable JobStore: SQLite in WAL mode under a data directory, one row per job.
#ifndef HPSCHED_STORE_SQLITE_JOB_STORE_H_
#define HPSCHED_STORE_SQLITE_JOB_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "store/job_store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hpsched::store {

// What a successful write promises (SQLite's `PRAGMA synchronous` in WAL mode):
//   kFull:   durable when acknowledged, across a process crash and a power loss (an fsync per
//   commit). kNormal: durable across a process crash; a power loss can lose the last commits before
//   a WAL checkpoint. kOff:    durable across a process crash (the OS has the data); a power loss
//   can lose or corrupt recent commits.
enum class SyncMode { kFull, kNormal, kOff };

struct SqliteOptions {
  // Directory of the database (hpsched.db, its WAL) and of the LOCK file; created if missing.
  std::string data_dir;
  SyncMode sync = SyncMode::kFull;
};

// Thread-safe (one connection behind a mutex). Only one process may open a data directory: Open
// takes an exclusive lock on <data_dir>/LOCK, held until the store is destroyed.
// A row holds the store's own hpsched.store.StoredJob (store/job_state.proto), never an API
// message. Rows written before schema 3 (a v1.Job) still load, and Put rewrites them in the new
// format.
class SqliteJobStore final : public JobStore {
 public:
  // The newest schema this code writes; Open migrates older databases to it.
  static constexpr int kSchemaVersion = 3;

  // Opens or creates the store. Errors: FailedPrecondition when another process holds the directory
  // or the database has a newer schema than kSchemaVersion; Unavailable when the directory or
  // database cannot be opened.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const SqliteOptions& options);
  ~SqliteJobStore() override;

  absl::Status Put(const core::JobRecord& record) override;
  absl::Status Delete(absl::string_view job_id) override;
  // Every job, in order of job_id. DataLoss naming the job when a stored row does not parse.
  absl::StatusOr<std::vector<core::JobRecord>> LoadAll() override;
  // DataLoss naming the job when its row does not parse (Get, List).
  absl::StatusOr<core::JobRecord> Get(absl::string_view job_id) override;
  absl::StatusOr<std::vector<core::JobRecord>> List(size_t page_size,
                                                    absl::string_view after) override;

  // Parses `text` ("full", "normal" or "off").
  static absl::StatusOr<SyncMode> ParseSyncMode(absl::string_view text);

 private:
  SqliteJobStore() = default;
  absl::Status Migrate();

  int lock_fd_ = -1;
  absl::Mutex mutex_;
  sqlite3* db_ ABSL_GUARDED_BY(mutex_) = nullptr;
  sqlite3_stmt* put_ ABSL_GUARDED_BY(mutex_) = nullptr;
  sqlite3_stmt* delete_ ABSL_GUARDED_BY(mutex_) = nullptr;
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_SQLITE_JOB_STORE_H_
