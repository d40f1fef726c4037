#include "store/sqlite_job_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "spdlog/spdlog.h"
#include "store/job_state.pb.h"
#include "store/legacy_row.h"
#include "store/report_rows.h"
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
    // 4: served marks written in the background (PutServedMarks), beside the row: the served step
    // and the reserved bound, each plus one (0 for none); and the store's own facts: its random
    // identity (database_id) and whether it was last stopped cleanly (clean_stop).
    R"sql(
      ALTER TABLE jobs ADD COLUMN served_end INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN reserved_end INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
    )sql",
    // 5: metric reports in a table of their own, a row per report, so that a report writes one
    // row, not the job's whole history. `seq` is the report's place in its metric's history (the
    // order reports were added). A row's StoredJob no longer holds reports; one written before
    // still does, and they load first (they are older than any in the table).
    R"sql(
      CREATE TABLE metric_reports (
        job_id TEXT NOT NULL,
        metric TEXT NOT NULL,
        seq INTEGER NOT NULL,
        step INTEGER NOT NULL,
        value REAL NOT NULL,
        next_step INTEGER NOT NULL,
        PRIMARY KEY (job_id, metric, seq)
      ) WITHOUT ROWID;
    )sql",
};
constexpr int64_t kLegacyFormat = 1;
constexpr int64_t kStoredJobFormat = 2;
// The columns every read selects, in the order DecodeRow reads them.
constexpr const char* kSelect =
    "SELECT job_id, version, job, create_request_id, state, format, served_end, reserved_end "
    "FROM jobs";

absl::string_view Column(sqlite3_stmt* stmt, int i) {
  const void* data = sqlite3_column_blob(stmt, i);
  const int size = sqlite3_column_bytes(stmt, i);
  return data == nullptr ? absl::string_view()
                         : absl::string_view(static_cast<const char*>(data), size);
}

// The record of the current row of a kSelect statement, without the mark columns. DataLoss naming
// the job when it does not parse. `stored` is scratch space, reused from row to row (a load of
// 10^6 rows then allocates each message's parts once, not once a row).
absl::StatusOr<core::JobRecord> DecodeRecord(sqlite3_stmt* stmt, StoredJob& stored) {
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
  stored.Clear();
  if (sqlite3_column_int64(stmt, 5) != kStoredJobFormat ||
      !stored.ParseFromArray(job.data(), static_cast<int>(job.size())) ||
      stored.job_id() != job_id || stored.version() != version) {
    return absl::DataLossError(absl::StrCat("stored job ", job_id, " does not parse"));
  }
  return StoredJobToRecord(stored);
}

// The record of the current row, its served_through raised to the mark written in the background
// (which, after an unclean stop, Open has raised to the reservation).
absl::StatusOr<core::JobRecord> DecodeRow(sqlite3_stmt* stmt, StoredJob& stored) {
  ASSIGN_OR_RETURN(core::JobRecord record, DecodeRecord(stmt, stored));
  record.served_through =
      std::max<int64_t>(record.served_through, sqlite3_column_int64(stmt, 6) - 1);
  return record;
}

// Steps `stmt` (a kSelect) to the end, handing each row's record to `visit`, and finalizes it.
// Stops at the first error (a row that does not parse, or one of `visit`).
absl::Status VisitRows(sqlite3* db, sqlite3_stmt* stmt,
                       absl::FunctionRef<absl::Status(core::JobRecord)> visit) {
  absl::Status status;
  StoredJob stored;
  int step;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
    absl::StatusOr<core::JobRecord> record = DecodeRow(stmt, stored);
    status = record.ok() ? visit(*std::move(record)) : record.status();
    if (!status.ok()) break;
  }
  if (status.ok() && step != SQLITE_DONE)
    status = absl::UnavailableError(absl::StrCat("sqlite: load: ", sqlite3_errmsg(db)));
  sqlite3_finalize(stmt);
  return status;
}

// Every row of `stmt` (a kSelect); finalizes it.
absl::StatusOr<std::vector<core::JobRecord>> ReadRows(sqlite3* db, sqlite3_stmt* stmt) {
  std::vector<core::JobRecord> records;
  RETURN_IF_ERROR(VisitRows(db, stmt, [&](core::JobRecord record) {
    records.push_back(std::move(record));
    return absl::OkStatus();
  }));
  return records;
}
static_assert(std::size(kMigrations) == SqliteJobStore::kSchemaVersion);

// Per record just read from its row: whether the row held metric reports (rows written before
// schema 5).
std::vector<bool> ReportsInRows(const std::vector<core::JobRecord>& records) {
  std::vector<bool> in_rows;
  in_rows.reserve(records.size());
  for (const core::JobRecord& record : records) in_rows.push_back(!record.metric_reports.empty());
  return in_rows;
}

// Adds the rows of a statement selecting (job_id, metric, step, value, next_step), ordered by
// job_id, metric, seq, to `records` (in order of job_id), after the reports their rows held. A
// step held twice keeps its first report. Steps `stmt` to the end and finalizes it.
absl::Status AddReportRows(sqlite3* db, sqlite3_stmt* stmt, std::vector<core::JobRecord>* records) {
  auto record = records->begin();
  absl::Status status;
  int step;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
    const absl::string_view job_id = Column(stmt, 0);
    while (record != records->end() && record->job_id < job_id) ++record;
    if (record == records->end()) break;
    if (record->job_id != job_id) continue;  // Reports of a job without a row: none are written.
    core::MetricHistory& reports = record->metric_reports[std::string(Column(stmt, 1))];
    const int64_t at = sqlite3_column_int64(stmt, 2);
    if (reports.Find(at) == nullptr) {
      reports.Add(
          at, core::MetricReport{sqlite3_column_double(stmt, 3), sqlite3_column_int64(stmt, 4)});
    }
  }
  if (step != SQLITE_DONE && step != SQLITE_ROW) {
    status = absl::UnavailableError(absl::StrCat("sqlite: load reports: ", sqlite3_errmsg(db)));
  }
  sqlite3_finalize(stmt);
  return status;
}

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db)));
}

// Prepares a selection of (job_id, metric, step, value, next_step) from metric_reports followed by
// `rest`; `what` names the call in errors.
absl::StatusOr<sqlite3_stmt*> PrepareReports(sqlite3* db, absl::string_view rest,
                                             absl::string_view what) {
  sqlite3_stmt* stmt = nullptr;
  const std::string sql =
      absl::StrCat("SELECT job_id, metric, step, value, next_step FROM metric_reports", rest);
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    return absl::UnavailableError(absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db)));
  }
  return stmt;
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

// The value of `key` in the meta table (schema 4 on); nullopt when there is none.
absl::StatusOr<std::optional<std::string>> QueryMeta(sqlite3* db, const char* key) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &stmt, nullptr) !=
      SQLITE_OK) {
    return SqliteError(db, "read meta");
  }
  sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
  absl::StatusOr<std::optional<std::string>> result = std::nullopt;
  const int step = sqlite3_step(stmt);
  if (step == SQLITE_ROW) {
    result = std::string(Column(stmt, 0));
  } else if (step != SQLITE_DONE) {
    result = SqliteError(db, "read meta");
  }
  sqlite3_finalize(stmt);
  return result;
}

absl::Status PutMeta(sqlite3* db, const char* key, absl::string_view value) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", -1, &stmt,
                         nullptr) != SQLITE_OK) {
    return SqliteError(db, "write meta");
  }
  sqlite3_bind_text(stmt, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(stmt, 2, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
  const int step = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  if (step != SQLITE_DONE) return SqliteError(db, "write meta");
  return absl::OkStatus();
}

// `status` from the first read of the database, as "in use" when SQLite found it locked: another
// process holds its exclusive lock.
absl::Status InUseOr(sqlite3* db, absl::Status status, const std::string& db_path) {
  if ((sqlite3_errcode(db) & 0xff) != SQLITE_BUSY) return status;
  return absl::FailedPreconditionError(absl::StrCat(
      "--data_dir: ", db_path,
      " is locked by another process (another hpsched-server on this directory, even if its LOCK "
      "file was deleted)"));
}

// <data_dir>/IDENTITY: which database the directory holds, kept outside the database so that a
// database found missing or emptied can be told from a new one.
struct Identity {
  std::string database_id;
  // Whether that database has ever held a job.
  bool held_jobs = false;
};

absl::StatusOr<std::optional<Identity>> ReadIdentity(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::nullopt;
  std::ifstream in(path);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in) {
    return absl::UnavailableError(
        absl::StrCat("--data_dir: cannot read ", path, ": ", std::strerror(errno)));
  }
  Identity identity;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (absl::ConsumePrefix(&line, "database_id=")) identity.database_id = std::string(line);
    if (absl::ConsumePrefix(&line, "held_jobs=")) identity.held_jobs = line == "true";
  }
  if (identity.database_id.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--data_dir: ", path,
        " does not name a database (no database_id= line); if hpsched.db is the database you "
        "want, delete ",
        path, " and start again"));
  }
  return identity;
}

// Written whole, synced, then renamed over the old one, and the directory synced.
absl::Status WriteIdentity(const std::string& path, const Identity& identity) {
  const std::string text = absl::StrCat(
      "# hpsched-server: which database this directory holds (see docs/operations.md, State and "
      "durability).\n# A missing or empty hpsched.db where held_jobs=true is refused at start.\n",
      "database_id=", identity.database_id, "\nheld_jobs=", identity.held_jobs ? "true" : "false",
      "\n");
  const std::string tmp = path + ".tmp";
  const auto failed = [&](const std::string& file) {
    return absl::UnavailableError(
        absl::StrCat("--data_dir: cannot write ", file, ": ", std::strerror(errno)));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed(tmp);
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
      ::fsync(fd) != 0) {
    absl::Status status = failed(tmp);
    ::close(fd);
    return status;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return failed(path);
  const int dir = ::open(std::filesystem::path(path).parent_path().c_str(), O_RDONLY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return absl::OkStatus();
}

std::string NewDatabaseId() {
  std::random_device random;
  return absl::StrFormat("%08x%08x%08x%08x", random(), random(), random(), random());
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
  const std::filesystem::path dir(options.data_dir);
  std::unique_ptr<SqliteJobStore> store(new SqliteJobStore());
  const std::string lock_path = (dir / "LOCK").string();
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

  // What the directory held before SQLite touches it.
  const std::string db_path = (dir / "hpsched.db").string();
  store->identity_path_ = (dir / "IDENTITY").string();
  const bool db_existed = std::filesystem::exists(db_path, error);
  const uintmax_t db_size = db_existed ? std::filesystem::file_size(db_path, error) : 0;
  ASSIGN_OR_RETURN(std::optional<Identity> identity, ReadIdentity(store->identity_path_));

  absl::MutexLock lock(&store->mutex_);
  if (sqlite3_open_v2(db_path.c_str(), &store->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return SqliteError(store->db_, absl::StrCat("open ", db_path));
  }
  sqlite3* db = store->db_;
  // SQLite falls back to read-only when the file is write-protected; every write would then fail.
  if (sqlite3_db_readonly(db, "main") == 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("--data_dir: ", db_path,
                     " is not writable (SQLite could open it only for reading): check its owner, "
                     "permissions and file system"));
  }
  // Held from the first read to the close, by this connection only; the index of the WAL lives in
  // the process (no -shm file), so no other process can read or write the database meanwhile.
  RETURN_IF_ERROR(Exec(db, "PRAGMA locking_mode=EXCLUSIVE"));
  sqlite3_busy_timeout(db, 1000);

  // The database's identity, before anything is written to it.
  absl::StatusOr<int64_t> version = QueryInt(db, "PRAGMA user_version");
  if (!version.ok()) return InUseOr(db, version.status(), db_path);
  std::string database_id;
  bool has_jobs = false;
  if (*version >= 4) {
    ASSIGN_OR_RETURN(std::optional<std::string> id, QueryMeta(db, "database_id"));
    database_id = id.value_or("");
  }
  if (*version >= 1) {
    ASSIGN_OR_RETURN(int64_t any, QueryInt(db, "SELECT EXISTS (SELECT 1 FROM jobs)"));
    has_jobs = any != 0;
  }
  if (identity.has_value() && identity->database_id != database_id && !has_jobs &&
      identity->held_jobs) {
    const std::string found = !db_existed    ? "missing"
                              : db_size == 0 ? "empty (0 bytes)"
                                             : "a database without jobs";
    if (!options.accept_empty_store) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--data_dir: ", db_path, " is ", found, ", but ", store->identity_path_,
          " records that database ", identity->database_id,
          ", which held jobs, was here: restore hpsched.db (with its -wal file) from a backup, or "
          "start with --accept_empty_store to begin with an empty store"));
    }
    spdlog::error("--accept_empty_store: {} is {}; database {}, which held jobs, is gone", db_path,
                  found, identity->database_id);
  } else if (identity.has_value() && !database_id.empty() && identity->database_id != database_id) {
    spdlog::warn("{} holds database {}, not {} as {} recorded (restored from elsewhere?)", db_path,
                 database_id, identity->database_id, store->identity_path_);
  }

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

  // A write at open: proves the database writable (and takes the exclusive lock for good), records
  // that this run has not stopped cleanly yet, and gives a new database its identity.
  const auto unwritable = [&](const absl::Status& status) {
    return absl::FailedPreconditionError(
        absl::StrCat("--data_dir: cannot write ", db_path, ": ", status.message()));
  };
  if (absl::Status begin = Exec(db, "BEGIN IMMEDIATE"); !begin.ok()) return unwritable(begin);
  absl::Status probe;
  absl::StatusOr<std::optional<std::string>> clean = QueryMeta(db, "clean_stop");
  if (!clean.ok()) probe = clean.status();
  // No mark at all: a new database, or one from before schema 4 (which kept no reservations).
  const bool was_clean = !clean.ok() || !clean->has_value() || **clean == "1";
  // After an unclean stop, steps up to a job's reservation may have been served: from now on its
  // served mark is the reservation (and a later clean stop keeps it).
  if (probe.ok() && !was_clean) {
    probe = Exec(db, "UPDATE jobs SET served_end = reserved_end WHERE reserved_end > served_end");
  }
  if (probe.ok()) probe = PutMeta(db, "clean_stop", "0");
  if (probe.ok() && database_id.empty()) {
    database_id = NewDatabaseId();
    probe = PutMeta(db, "database_id", database_id);
  }
  if (probe.ok()) probe = Exec(db, "COMMIT");
  if (!probe.ok()) {
    (void)Exec(db, "ROLLBACK");
    return unwritable(probe);
  }
  store->opened_after_clean_stop_ = was_clean;
  if (!was_clean) {
    spdlog::warn(
        "{}: the last stop was not clean; every job counts the steps it had reserved as served "
        "(UpdateJob refuses them without allow_rewrite)",
        db_path);
  }
  store->database_id_ = database_id;

  Identity now{database_id,
               has_jobs || (identity.has_value() && identity->database_id == database_id &&
                            identity->held_jobs)};
  store->identity_held_jobs_ = now.held_jobs;
  if (!identity.has_value() || identity->database_id != now.database_id ||
      identity->held_jobs != now.held_jobs) {
    RETURN_IF_ERROR(WriteIdentity(store->identity_path_, now));
  }

  if (sqlite3_prepare_v2(
          db,
          "INSERT INTO jobs (job_id, version, job, create_request_id, state, format) "
          "VALUES (?1, ?2, ?3, ?4, x'', 2) ON CONFLICT (job_id) DO UPDATE SET version = ?2, "
          "job = ?3, create_request_id = ?4, state = x'', format = 2",
          -1, &store->put_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "DELETE FROM jobs WHERE job_id = ?1", -1, &store->delete_, nullptr) !=
          SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "UPDATE jobs SET served_end = max(served_end, ?2), "
                         "reserved_end = max(reserved_end, ?3) WHERE job_id = ?1",
                         -1, &store->put_mark_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db,
                         "INSERT OR REPLACE INTO metric_reports (job_id, metric, seq, step, value, "
                         "next_step) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                         -1, &store->put_report_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "DELETE FROM metric_reports WHERE job_id = ?1 AND metric = ?2", -1,
                         &store->delete_reports_, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "DELETE FROM metric_reports WHERE job_id = ?1", -1,
                         &store->delete_job_reports_, nullptr) != SQLITE_OK) {
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
    sqlite3_finalize(put_mark_);
    sqlite3_finalize(put_report_);
    sqlite3_finalize(delete_reports_);
    sqlite3_finalize(delete_job_reports_);
    if (db_ != nullptr) sqlite3_close_v2(db_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);  // Releases the flock.
}

absl::Status SqliteJobStore::Put(const core::JobRecord& record) {
  // The row without its reports: O(spec), whatever the job's age.
  const std::string bytes = RecordToStoredJob(record, /*with_reports=*/false).SerializeAsString();
  absl::MutexLock lock(&mutex_);
  RETURN_IF_ERROR(ClearCleanStop());
  // The reports to write: those past what the table holds of the same history (see
  // store/report_rows.h), or, for a history the store did not write, all of them after its old
  // ones.
  const WrittenMetrics* written = nullptr;
  if (auto it = written_.find(record.job_id); it != written_.end()) written = &it->second;
  const ReportWrites plan = PlanReportWrites(record, written);
  // A job the store has neither written nor read since Open may hold rows of a record it replaces
  // (after LoadAll, which reads the whole table, a job without an entry has none).
  const bool unknown = written == nullptr && !table_known_;
  const bool transaction = !plan.writes.empty() || !plan.dropped.empty() || unknown;
  if (transaction) RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  absl::Status status;
  const auto failed = [&](absl::string_view what) {
    return SqliteError(db_, absl::StrCat(what, " ", record.job_id));
  };
  sqlite3_reset(put_);
  sqlite3_bind_text(put_, 1, record.job_id.data(), static_cast<int>(record.job_id.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(put_, 2, record.version);
  sqlite3_bind_blob(put_, 3, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(put_, 4, record.create_request_id.data(),
                    static_cast<int>(record.create_request_id.size()), SQLITE_TRANSIENT);
  if (sqlite3_step(put_) != SQLITE_DONE) status = failed("put");
  if (status.ok() && unknown) status = DeleteReports(record.job_id, nullptr);
  for (const std::string& metric : plan.dropped) {
    if (status.ok()) status = DeleteReports(record.job_id, &metric);
  }
  for (const ReportWrite& write : plan.writes) {
    if (status.ok() && write.replace && !unknown) {
      status = DeleteReports(record.job_id, write.metric);
    }
    for (size_t i = write.from; status.ok() && i < write.reports->size(); ++i) {
      const core::MetricHistory::Entry& entry = (*write.reports)[i];
      sqlite3_reset(put_report_);
      sqlite3_bind_text(put_report_, 1, record.job_id.data(),
                        static_cast<int>(record.job_id.size()), SQLITE_TRANSIENT);
      sqlite3_bind_text(put_report_, 2, write.metric->data(),
                        static_cast<int>(write.metric->size()), SQLITE_TRANSIENT);
      sqlite3_bind_int64(put_report_, 3, static_cast<int64_t>(i));
      sqlite3_bind_int64(put_report_, 4, entry.step);
      sqlite3_bind_double(put_report_, 5, entry.report.value);
      sqlite3_bind_int64(put_report_, 6, entry.report.next_step);
      if (sqlite3_step(put_report_) != SQLITE_DONE) status = failed("put reports of");
    }
  }
  // Committed (and, with sync full, on disk) when this returns: the row and its new reports
  // together, or, without reports to write, the row's single statement in autocommit mode.
  if (transaction && status.ok()) status = Exec(db_, "COMMIT");
  if (!status.ok()) {
    if (transaction) (void)Exec(db_, "ROLLBACK");
    return status;
  }
  NoteWritten({&record, 1}, {false});
  NoteHeldJobs();
  return absl::OkStatus();
}

absl::Status SqliteJobStore::DeleteReports(absl::string_view job_id, const std::string* metric) {
  sqlite3_stmt* stmt = metric == nullptr ? delete_job_reports_ : delete_reports_;
  sqlite3_reset(stmt);
  sqlite3_bind_text(stmt, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
  if (metric != nullptr) {
    sqlite3_bind_text(stmt, 2, metric->data(), static_cast<int>(metric->size()), SQLITE_TRANSIENT);
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return SqliteError(db_, absl::StrCat("delete reports of ", job_id));
  }
  return absl::OkStatus();
}

void SqliteJobStore::NoteWritten(std::span<const core::JobRecord> records,
                                 const std::vector<bool>& in_rows) {
  for (size_t i = 0; i < records.size(); ++i) {
    const core::JobRecord& record = records[i];
    // Reports the row itself held (written before schema 5) are written whole by the next Put;
    // a job without reports needs no entry (jobs without reports are most jobs).
    if (in_rows[i] || record.metric_reports.empty()) {
      if (auto it = written_.find(record.job_id); it != written_.end()) written_.erase(it);
      continue;
    }
    written_[record.job_id] = WrittenOf(record);
  }
}

absl::Status SqliteJobStore::ClearCleanStop() {
  if (!clean_stop_written_) return absl::OkStatus();
  RETURN_IF_ERROR(PutMeta(db_, "clean_stop", "0"));
  clean_stop_written_ = false;
  return absl::OkStatus();
}

void SqliteJobStore::NoteHeldJobs() {
  if (identity_held_jobs_) return;
  identity_held_jobs_ = true;  // Once: a directory that cannot take the file is told once.
  if (absl::Status status = WriteIdentity(identity_path_, Identity{database_id_, true});
      !status.ok()) {
    spdlog::error("{}; an emptied hpsched.db will not be recognized at the next start",
                  std::string(status.message()));
  }
}

absl::Status SqliteJobStore::PutServedMarks(std::span<const ServedMark> marks, bool clean_stop) {
  absl::MutexLock lock(&mutex_);
  if (marks.empty() && !clean_stop && !clean_stop_written_) return absl::OkStatus();
  RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  absl::Status status;
  for (const ServedMark& mark : marks) {
    sqlite3_reset(put_mark_);
    sqlite3_bind_text(put_mark_, 1, mark.job_id.data(), static_cast<int>(mark.job_id.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(put_mark_, 2, mark.served_through + 1);
    sqlite3_bind_int64(put_mark_, 3, std::max(mark.served_through, mark.reserved_through) + 1);
    if (sqlite3_step(put_mark_) != SQLITE_DONE) {
      status = SqliteError(db_, absl::StrCat("served marks of ", mark.job_id));
      break;
    }
  }
  if (status.ok() && (clean_stop || clean_stop_written_)) {
    status = PutMeta(db_, "clean_stop", clean_stop ? "1" : "0");
  }
  if (status.ok()) status = Exec(db_, "COMMIT");
  if (!status.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return status;
  }
  clean_stop_written_ = clean_stop;
  return absl::OkStatus();
}

absl::Status SqliteJobStore::Delete(absl::string_view job_id) {
  absl::MutexLock lock(&mutex_);
  RETURN_IF_ERROR(ClearCleanStop());
  RETURN_IF_ERROR(Exec(db_, "BEGIN IMMEDIATE"));
  sqlite3_reset(delete_);
  sqlite3_bind_text(delete_, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
  absl::Status status;
  if (sqlite3_step(delete_) != SQLITE_DONE) {
    status = SqliteError(db_, absl::StrCat("delete ", job_id));
  } else if (sqlite3_changes(db_) == 0) {
    status = absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  }
  if (status.ok()) status = DeleteReports(job_id, nullptr);
  if (status.ok()) status = Exec(db_, "COMMIT");
  if (!status.ok()) {
    (void)Exec(db_, "ROLLBACK");
    return status;
  }
  if (auto it = written_.find(job_id); it != written_.end()) written_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<core::JobRecord>> SqliteJobStore::LoadAll() {
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, PrepareSelect(db_, " ORDER BY job_id", "load"));
  ASSIGN_OR_RETURN(std::vector<core::JobRecord> records, ReadRows(db_, stmt));
  const std::vector<bool> in_rows = ReportsInRows(records);
  ASSIGN_OR_RETURN(sqlite3_stmt * reports,
                   PrepareReports(db_, " ORDER BY job_id, metric, seq", "load reports"));
  RETURN_IF_ERROR(AddReportRows(db_, reports, &records));
  NoteWritten(records, in_rows);
  table_known_ = true;
  return records;
}

absl::Status SqliteJobStore::LoadEach(absl::FunctionRef<absl::Status(core::JobRecord)> visit) {
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, PrepareSelect(db_, " ORDER BY job_id", "load"));
  // The report rows in the same order of job_id, read alongside the job rows (a merge join): each
  // job is visited with its reports, and nothing is held for more than one job at a time.
  absl::StatusOr<sqlite3_stmt*> reports =
      PrepareReports(db_, " ORDER BY job_id, metric, seq", "load reports");
  if (!reports.ok()) {
    sqlite3_finalize(stmt);
    return reports.status();
  }
  int report_step = sqlite3_step(*reports);
  absl::Status status = VisitRows(db_, stmt, [&](core::JobRecord record) -> absl::Status {
    const bool in_row = !record.metric_reports.empty();
    for (; report_step == SQLITE_ROW; report_step = sqlite3_step(*reports)) {
      const absl::string_view job_id = Column(*reports, 0);
      if (job_id > record.job_id) break;
      if (job_id < record.job_id) continue;  // Reports of a job without a row: none are written.
      core::MetricHistory& history = record.metric_reports[std::string(Column(*reports, 1))];
      const int64_t at = sqlite3_column_int64(*reports, 2);
      if (history.Find(at) == nullptr) {  // A step held twice keeps its first report.
        history.Add(at, core::MetricReport{sqlite3_column_double(*reports, 3),
                                           sqlite3_column_int64(*reports, 4)});
      }
    }
    if (report_step != SQLITE_ROW && report_step != SQLITE_DONE) {
      return absl::UnavailableError(absl::StrCat("sqlite: load reports: ", sqlite3_errmsg(db_)));
    }
    NoteWritten({&record, 1}, {in_row});
    return visit(std::move(record));
  });
  sqlite3_finalize(*reports);
  if (status.ok()) table_known_ = true;
  return status;
}

absl::StatusOr<core::JobRecord> SqliteJobStore::Get(absl::string_view job_id) {
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(sqlite3_stmt * stmt, PrepareSelect(db_, " WHERE job_id = ?1", "get"));
  sqlite3_bind_text(stmt, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
  ASSIGN_OR_RETURN(std::vector<core::JobRecord> records, ReadRows(db_, stmt));
  if (records.empty()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  RETURN_IF_ERROR(AddReportsOf(&records));
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
  ASSIGN_OR_RETURN(std::vector<core::JobRecord> records, ReadRows(db_, stmt));
  RETURN_IF_ERROR(AddReportsOf(&records));
  return records;
}

absl::Status SqliteJobStore::AddReportsOf(std::vector<core::JobRecord>* records) {
  const std::vector<bool> in_rows = ReportsInRows(*records);
  for (size_t i = 0; i < records->size(); ++i) {
    ASSIGN_OR_RETURN(sqlite3_stmt * stmt,
                     PrepareReports(db_, " WHERE job_id = ?1 ORDER BY metric, seq", "get reports"));
    const std::string& job_id = (*records)[i].job_id;
    sqlite3_bind_text(stmt, 1, job_id.data(), static_cast<int>(job_id.size()), SQLITE_TRANSIENT);
    std::vector<core::JobRecord> one;
    one.push_back(std::move((*records)[i]));
    const absl::Status status = AddReportRows(db_, stmt, &one);
    (*records)[i] = std::move(one.front());
    RETURN_IF_ERROR(status);
  }
  NoteWritten(*records, in_rows);
  return absl::OkStatus();
}

}  // namespace hpsched::store
