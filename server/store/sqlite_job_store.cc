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
#include "hpsched/v1/job.pb.h"
#include "service/proto_convert.h"
#include "store/job_state.pb.h"

namespace hpsched::store {
namespace {

// Schema migrations: kMigrations[i] takes the database from user_version i to i + 1. Append, never
// edit.
//
// A row holds a job as the serialized hpsched.v1.Job resource (spec, version, etag, times), whose
// protobuf encoding is forward and backward compatible, plus what the resource does not carry.
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
};
static_assert(std::size(kMigrations) == SqliteJobStore::kSchemaVersion);

JobState StateToProto(const JobRecord& record) {
  JobState state;
  for (const auto& [name, reports] : record.metric_reports) {
    MetricHistory& history = (*state.mutable_metrics())[name];
    for (const auto& [step, report] : reports) {
      MetricPoint* point = history.add_points();
      point->set_step(step);
      point->set_value(report.value);
      point->set_next_step(report.next_step);
    }
  }
  for (const auto& [request_id, version] : record.update_requests) {
    RememberedRequest* r = state.add_update_requests();
    r->set_request_id(request_id);
    r->set_version(version);
  }
  state.set_served_end(record.served_through + 1);
  return state;
}

void StateFromProto(const JobState& state, JobRecord* record) {
  for (const auto& [name, history] : state.metrics()) {
    core::MetricReports& reports = record->metric_reports[name];
    for (const MetricPoint& point : history.points()) {
      reports[point.step()] = core::MetricReport{point.value(), point.next_step()};
    }
  }
  for (const RememberedRequest& r : state.update_requests()) {
    record->update_requests.emplace_back(r.request_id(), r.version());
  }
  record->served_through = state.served_end() - 1;
}

absl::Status SqliteError(sqlite3* db, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("sqlite: ", what, ": ", sqlite3_errmsg(db)));
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
          "INSERT INTO jobs (job_id, version, job, create_request_id, state) "
          "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (job_id) DO UPDATE SET version = ?2, job = ?3, "
          "create_request_id = ?4, state = ?5",
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

absl::Status SqliteJobStore::Put(const JobRecord& record) {
  hpsched::v1::Job job;
  service::JobToProto(record, &job);
  const std::string bytes = job.SerializeAsString();
  const std::string state = StateToProto(record).SerializeAsString();
  absl::MutexLock lock(&mutex_);
  sqlite3_reset(put_);
  sqlite3_bind_text(put_, 1, record.job_id.data(), static_cast<int>(record.job_id.size()),
                    SQLITE_TRANSIENT);
  sqlite3_bind_int64(put_, 2, record.version);
  sqlite3_bind_blob(put_, 3, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  sqlite3_bind_text(put_, 4, record.create_request_id.data(),
                    static_cast<int>(record.create_request_id.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(put_, 5, state.data(), static_cast<int>(state.size()), SQLITE_TRANSIENT);
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

absl::StatusOr<std::vector<JobRecord>> SqliteJobStore::LoadAll() {
  absl::MutexLock lock(&mutex_);
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(
          db_, "SELECT job_id, version, job, create_request_id, state FROM jobs ORDER BY job_id",
          -1, &stmt, nullptr) != SQLITE_OK) {
    return SqliteError(db_, "load");
  }
  std::vector<JobRecord> records;
  absl::Status status;
  int step;
  while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
    JobRecord record;
    record.job_id.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)),
                         sqlite3_column_bytes(stmt, 0));
    hpsched::v1::Job job;
    if (!job.ParseFromArray(sqlite3_column_blob(stmt, 2), sqlite3_column_bytes(stmt, 2)) ||
        job.name() != service::JobName(record.job_id) ||
        job.version() != sqlite3_column_int64(stmt, 1)) {
      status = absl::DataLossError(absl::StrCat("stored job ", record.job_id, " does not parse"));
      break;
    }
    JobState state;
    if (!state.ParseFromArray(sqlite3_column_blob(stmt, 4), sqlite3_column_bytes(stmt, 4))) {
      status =
          absl::DataLossError(absl::StrCat("stored state of ", record.job_id, " does not parse"));
      break;
    }
    StateFromProto(state, &record);
    record.spec = service::JobSpecFromProto(job, /*with_history=*/true);
    record.version = job.version();
    record.etag = job.etag();
    record.create_time = absl::FromUnixSeconds(job.create_time().seconds()) +
                         absl::Nanoseconds(job.create_time().nanos());
    record.update_time = absl::FromUnixSeconds(job.update_time().seconds()) +
                         absl::Nanoseconds(job.update_time().nanos());
    record.create_request_id.assign(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 3)),
                                    sqlite3_column_bytes(stmt, 3));
    records.push_back(std::move(record));
  }
  if (status.ok() && step != SQLITE_DONE) status = SqliteError(db_, "load");
  sqlite3_finalize(stmt);
  if (!status.ok()) return status;
  return records;
}

}  // namespace hpsched::store
