// The durable JobStore: SQLite in WAL mode under a data directory, one row per job.
#ifndef HPSCHED_STORE_SQLITE_JOB_STORE_H_
#define HPSCHED_STORE_SQLITE_JOB_STORE_H_

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "store/job_store.h"
#include "store/report_rows.h"

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
  // Directory of the database (hpsched.db, its WAL), the LOCK file and the IDENTITY file; created
  // if missing.
  std::string data_dir;
  SyncMode sync = SyncMode::kFull;
  // Open a missing or empty hpsched.db even where IDENTITY records that a database which held jobs
  // was (the server's --accept_empty_store); without it such an Open fails.
  bool accept_empty_store = false;
};

// Thread-safe (one connection behind a mutex). Only one process may open a data directory: Open
// takes an exclusive lock on <data_dir>/LOCK (for a clear message), and the connection holds
// SQLite's exclusive lock on hpsched.db itself (`PRAGMA locking_mode=EXCLUSIVE`, so WAL keeps its
// index in the process and uses no -shm file) from Open until the store is destroyed: deleting LOCK
// does not let a second process in. Both locks die with the process.
//
// Open refuses a database it cannot write (it writes the `meta` table before returning), and a
// missing or empty hpsched.db where <data_dir>/IDENTITY (the database's random id, and whether it
// ever held a job, kept outside the database) says a database that held jobs was.
//
// Served marks (PutServedMarks) live in their own columns beside the row, so a flush writes a few
// integers per job, never the job. `meta` records whether the last stop was clean.
// A row holds the store's own hpsched.store.StoredJob (store/job_state.proto), never an API
// message. Metric reports (schema 5 on) live in a table of their own, a row per report: a Put
// writes the job's row and only the reports the table does not hold yet (the store remembers, per
// job and metric, which history it wrote and how much of it; core::MetricHistory::lineage), so a
// report costs O(1) however many came before. A Put of a history the store did not write rewrites
// that metric's reports. Rows written before schema 3 (a v1.Job) still load, and Put rewrites them
// in the new format.
class SqliteJobStore final : public JobStore {
 public:
  // The newest schema this code writes; Open migrates older databases to it.
  static constexpr int kSchemaVersion = 5;

  // Opens or creates the store. Errors: FailedPrecondition when another process holds the directory
  // or the database, the database has a newer schema than kSchemaVersion, it is not writable, or it
  // is missing or empty where IDENTITY says a database that held jobs was; Unavailable when the
  // directory or database cannot be opened. Every message names the file.
  static absl::StatusOr<std::unique_ptr<SqliteJobStore>> Open(const SqliteOptions& options);
  ~SqliteJobStore() override;

  absl::Status Put(const core::JobRecord& record) override;
  absl::Status Delete(absl::string_view job_id) override;
  // Every job, in order of job_id. DataLoss naming the job when a stored row does not parse.
  absl::StatusOr<std::vector<core::JobRecord>> LoadAll() override;
  // Row by row (one statement, the store's lock held throughout); DataLoss as LoadAll.
  absl::Status LoadEach(absl::FunctionRef<absl::Status(core::JobRecord)> visit) override;
  // DataLoss naming the job when its row does not parse (Get, List).
  absl::StatusOr<core::JobRecord> Get(absl::string_view job_id) override;
  absl::StatusOr<std::vector<core::JobRecord>> List(size_t page_size,
                                                    absl::string_view after) override;
  // One transaction for all `marks`.
  absl::Status PutServedMarks(std::span<const ServedMark> marks, bool clean_stop) override;

  // Whether the store was stopped cleanly before this Open (see PutServedMarks); a new store was.
  bool opened_after_clean_stop() const { return opened_after_clean_stop_; }

  // Parses `text` ("full", "normal" or "off").
  static absl::StatusOr<SyncMode> ParseSyncMode(absl::string_view text);

 private:
  SqliteJobStore() = default;
  absl::Status Migrate();
  // Before a write: a clean-stop mark written earlier no longer holds.
  absl::Status ClearCleanStop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // After a successful Put: the first job this database holds is recorded in IDENTITY.
  void NoteHeldJobs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Deletes the reports of `metric` of the job, or, with null, every report of the job.
  absl::Status DeleteReports(absl::string_view job_id, const std::string* metric)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Adds the table's reports to each of `records` (rows just read) and notes them written.
  absl::Status AddReportsOf(std::vector<core::JobRecord>* records)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Notes that the table holds exactly the reports of `records`, except where `in_rows` says
  // that the record's row held reports.
  void NoteWritten(std::span<const core::JobRecord> records, const std::vector<bool>& in_rows)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  int lock_fd_ = -1;
  bool opened_after_clean_stop_ = true;
  std::string identity_path_;
  std::string database_id_;
  absl::Mutex mutex_;
  sqlite3* db_ ABSL_GUARDED_BY(mutex_) = nullptr;
  sqlite3_stmt* put_ ABSL_GUARDED_BY(mutex_) = nullptr;
  sqlite3_stmt* delete_ ABSL_GUARDED_BY(mutex_) = nullptr;
  sqlite3_stmt* put_mark_ ABSL_GUARDED_BY(mutex_) = nullptr;
  sqlite3_stmt* put_report_ ABSL_GUARDED_BY(mutex_) = nullptr;
  sqlite3_stmt* delete_reports_ ABSL_GUARDED_BY(mutex_) = nullptr;
  sqlite3_stmt* delete_job_reports_ ABSL_GUARDED_BY(mutex_) = nullptr;
  // Per job with reports the store wrote or read since Open, per metric (see Put).
  std::map<std::string, WrittenMetrics, std::less<>> written_ ABSL_GUARDED_BY(mutex_);
  // Whether written_ covers every job with rows in metric_reports (after LoadAll).
  bool table_known_ ABSL_GUARDED_BY(mutex_) = false;
  // Set by PutServedMarks(clean_stop) until the next write.
  bool clean_stop_written_ ABSL_GUARDED_BY(mutex_) = false;
  // Whether IDENTITY records that this database has held a job.
  bool identity_held_jobs_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_SQLITE_JOB_STORE_H_
