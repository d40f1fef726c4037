#include "store/sqlite_job_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "store/job_state.pb.h"
#include "store/legacy_row.h"
#include "store/stored_job.h"

namespace hpsched::store {
namespace {

// Schema migrations: kMigrations[i] takes the database from user_version i to i + 1. Append, never
// edit.
//
// Schema 3 on, a row's `job` holds the store's own hpsched.store.StoredJob (format 2). Rows written
// before (format 1) hold the public hpsched.v1.Job resource in `job` and a hpsched.store.JobState
// in `state`; they load through store/legacy_row.h and are rewritten as format 2 on their next Put.
constexpr const char* kMigrations[] = {
    R"sql(
      CREATE TABLE jobs (
        job_id TEXT PRIMARY KEY NOT NULL,
        version INTEGER NOT NULL,
        job BLOB NOT NULL,
        create_request_id TEXT NOT NULL
      ) WITHOUT ROWID;
    )sql",
    // 2: metric reports, UpdateJob request ids and the served-step mark (hpsched.store.JobState).
    R"sql(
      ALTER TABLE jobs ADD COLUMN state BLOB NOT NULL DEFAULT x'';
    )sql",
    // 3: the encoding of `job`: 1 the v1.Job resource (every row so far), 2
    // hpsched.store.StoredJob.
    R"sql(
      ALTER TABLE jobs ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
    )sql",
};
constexpr int64_t kLegacyFormat = 1;
constexpr int64_t kStoredJobFormat = 2;
// The columns every read selects, in the order DecodeRow reads them.
constexpr const char* kSelect =
    "SELECT job_id, version, job, create_request_id, state, format FROM jobs";

absl::string_view Column(sqlite3_stmt* stmt, int i) {
  const void* data = sqlite3_column_blob(stmt, i);
  const int size = sqlite3_column_bytes(stmt, i);
  return data == nullptr ? absl::string_view()
                         : absl::string_view(static_cast<const char*>(data), size);
}

// The record of the current row of a kSelect statement. DataLoss naming the job when it does not
// parse.
absl::StatusOr<core::JobRecord> DecodeRow(sqlite3_stmt* stmt) {
  const std::string job_id(Column(stmt, 0));
  const int64_t version = sqlite3_column_int64(stmt, 1);
  const absl::string_view job = Column(stmt, 2);
  if (sqlite3_column_int64(stmt, 5) == kLegacyFormat) {
    ASSIGN_OR_RETURN(core::JobRecord record,
                     DecodeLegacyJob(job_id, version, job, Column(stmt, 3)));
    JobState state;
    const absl::string_view state_bytes = Column(stmt, 4);
    if (!state.ParseFromArray(state_bytes.data(), static_cast<int>(state_bytes.size()))) {
      return absl::DataLossError(absl::StrCat("stored state of ", job_id, " does not parse"));
    }
    StateFromProto(state, &record);
    return record;
  }
  StoredJob stored;
  if (sqlite3_column_int64(stmt, 5) != kStoredJobFormat ||
      !stored.ParseFromArray(job.data(), static_cast<int>(job.size())) ||
      stored.job_id() != job_id || stored.version() != version) {
    return absl::DataLossError(absl::StrCat("stored job ", job_id, " does not parse"));
  }
  return StoredJobToRecord(stored);
}

// Steps `stmt` (a kSelect) to the end and finalizes it.
absl::StatusOr<std::vector<core::JobRecord>> ReadRows(sqlite3* db, sqlite3_stmt* stmt) {
  std::vector<core::JobRecord> records;
  absl::Status status;
  int step;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
    absl::StatusOr<core::JobRecord> record = DecodeRow(stmt);
    if (!record.ok()) {
      status = record.status();
      break;
    }
    records.push_back(*std::move(record));
  }
  if (status.ok() && step != SQLITE_DONE)
    status = absl::UnavailableError(absl::StrCat("sqlite: load: ", sqlite3_errmsg(db)));
  sqlite3_finalize(stmt);
  if (!status.ok()) return status;
  return records;
}
static_assert(std::size(kMigrations) == SqliteJobStore::kSchemaVersion);

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db)));
}

// Prepares kSelect followed by `rest` (a WHERE / ORDER BY clause); `what` names the call in errors.
absl::StatusOr<sqlite3_stmt*> PrepareSelect(sqlite3* db, absl::string_view rest,
                                            absl::string_view what) {
  sqlite3_stmt* stmt = nullptr;
  const std::string sql = absl::StrCat(kSelect, rest);
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return SqliteError(db, what);
  }
  return stmt;
}

absl::Status Exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    absl::Status status =
        absl::UnavailableError(absl::StrCat("sqlite: ", sql, ": ", error ? error : "?"));
    sqlite3_free(error);
    return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) return SqliteError(db, sql);
  absl::StatusOr<int64_t> result = SqliteError(db, sql);
  if (sqlite3_step(stmt) == SQLITE_ROW) result = sqlite3_column_int64(stmt, 0);
  sqlite3_finalize(stmt);
  return result;
}

}  // namespace

absl::StatusOr<SyncMode> SqliteJobStore::ParseSyncMode(absl::string_view text) {
  if (text == "full") return SyncMode::kFull;
  if (text == "normal") return SyncMode::kNormal;
  if (text == "off") return SyncMode::kOff;
  return absl::InvalidArgumentError(
      absl::StrCat("--sync: must be full, normal or off, got \"", text, "\""));
}

absl::StatusOr<std::unique_ptr<SqliteJobStore>> SqliteJobStore::Open(const SqliteOptions& options) {
  std::error_code error;
  std::filesystem::create_directories(options.data_dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("--data_dir: cannot create ", options.data_dir, ": ", error.message()));
  }
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore());
  const std::string lock_path = (std::filesystem::path(options.data_dir) / "LOCK").string();
  store->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (store->lock_fd_ < 0) {
    return absl::UnavailableError(
        absl::StrCat("--data_dir: cannot open ", lock_path, ": ", std::strerror(errno)));
  }
  if (::flock(store->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("--data_dir: ", options.data_dir,
                                                      " is in use by another hpsched-server (",
                                                      lock_path, ")"));
  }

  absl::MutexLock lock(&store->mutex_);
  const std::string db_path = (std::filesystem::path(options.data_dir) / "hpsched.db").string();
  if (sqlite3_open_v2(db_path.c_str(), &store->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return SqliteError(store->db_, absl::StrCat("open ", db_path));
  }
  sqlite3* db = store->db_;
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &stmt, nullptr) != SQLITE_OK) {
    return SqliteError(db, "PRAGMA journal_mode=WAL");
  }
  const bool wal =
      sqlite3_step(stmt) == SQLITE_ROW &&
      std::strcmp(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal") == 0;
  sqlite3_finalize(stmt);
  if (!wal)
    return absl::UnavailableError(absl::StrCat("sqlite: ", db_path, " cannot use WAL mode"));
  const char* sync = options.sync == SyncMode::kFull     ? "PRAGMA synchronous=FULL"
                     : options.sync == SyncMode::kNormal ? "PRAGMA synchronous=NORMAL"
                                                         : "PRAGMA synchronous=OFF";
  RETURN_IF_ERROR(Exec(db, sync));
  RETURN_IF_ERROR(store->Migrate());
  if (sqlite3_prepare_v2(
          db,
          "INSERT INTO jobs (job_id, version, job, create_request_id, state, format) "
          "VALUES (?1, ?2, ?3, ?4, x'', 2) ON CONFLICT (job_id) DO UPDATE SET version = ?2, "
          "job = ?3, create_request_id = ?4, state = x'', format = 2",
          -1, &store->put_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "DELETE FROM jobs WHERE job_id = ?1", -1, &store->delete_, nullptr) !=
          SQLITE_OK) {
    return SqliteError(db, "prepare");
  }
  return store;
}

absl::Status SqliteJobStore::Migrate() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ASSIGN_OR_RETURN(int64_t version, QueryInt(db_, "PRAGMA user_version"));
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("--data_dir: the database has schema version ", version,
                     ", newer than this hpsched-server's ", kSchemaVersion));
  }
  for (; version < kSchemaVersion; ++version) {
    // Each migration and its version bump commit together.
    RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
    absl::Status status = Exec(db_, kMigrations[version]);
    if (status.ok())
      status = Exec(db_, absl::StrCat("PRAGMA user_version = ", version + 1).c_str());
    if (!status.ok()) {
      (void)Exec(db_, "ROLLBACK");
      return status;
    }
    RETURN_IF_ERROR(Exec(db_, "COMMIT"));
  }
  return absl::OkStatus();
}

SqliteJobStore::~SqliteJobStore() {
  {
    absl::MutexLock lock(&mutex_);
    sqlite3_finalize(put_);
    sqlite3_finalize(delete_);
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // Releases the flock.
}

absl::Status SqliteJobStore::Put(const core::JobRecord& record) {
  const std::string bytes = RecordToStoredJob(record).SerializeAsString();
  absl::MutexLock lock(&mutex_);
  sqlite3_reset(put_);
  sqlite3_bind_text(put_, 1, record.job_id.data(), static_cast<int>(record.job_id.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(put_, 2, record.version);
  sqlite3_bind_blob(put_, 3, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(put_, 4, record.create_request_id.data(),
                    static_cast<int>(record.create_request_id.size()), SQLITE_TRANSIENT);
  // A single statement in autocommit mode: committed (and, with sync full, on disk) when it
  // returns.
  if (sqlite3_step(put_) != SQLITE_DONE)
    return SqliteError(db_, absl::StrCat("put ", record.job_id));
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Delete(absl::string_view job_id) {
  absl::MutexLock lock(&mutex_);
  sqlite3_reset(delete_);
  sqlite3_bind_text(delete_, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(delete_) != SQLITE_DONE)
    return SqliteError(db_, absl::StrCat("delete ", job_id));
  if (sqlite3_changes(db_) == 0)
    return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<core::JobRecord>> SqliteJobStore::LoadAll() {
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, PrepareSelect(db_, " ORDER BY job_id", "load"));
  return ReadRows(db_, stmt);
}

absl::StatusOr<core::JobRecord> SqliteJobStore::Get(absl::string_view job_id) {
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, PrepareSelect(db_, " WHERE job_id = ?1", "get"));
  sqlite3_bind_text(stmt, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
  ASSIGN_OR_RETURN(std::vector<core::JobRecord> records, ReadRows(db_, stmt));
  if (records.empty()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  return std::move(records.front());
}

absl::StatusOr<std::vector<core::JobRecord>> SqliteJobStore::List(size_t page_size,
                                                                  absl::string_view after) {
  if (page_size == 0) return absl::InvalidArgumentError("page_size: must be > 0");
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                   PrepareSelect(db_, " WHERE job_id > ?1 ORDER BY job_id LIMIT ?2", "list"));
  sqlite3_bind_text(stmt, 1, after.data(), static_cast<int>(after.size()), SQLITE_TRANSIENT);
  sqlite3_bind_int64(stmt, 2, static_cast<int64_t>(page_size));
  return ReadRows(db_, stmt);
}

}  // namespace hpsched::store
