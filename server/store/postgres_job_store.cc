#include "store/postgres_job_store.h"

#include <algorithm>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "spdlog/spdlog.h"
#include "store/job_state.pb.h"
#include "store/postgres_migrations.h"
#include "store/postgres_reports.h"
#include "store/stored_job.h"

namespace hpsched::store {
namespace {

// The columns every read selects, in the order DecodeRow reads them.
constexpr absl::string_view kSelect = "SELECT job_id, version, job, served_end FROM jobs";

// The record of a kSelect row without its reports (`stored` is its row message).
absl::StatusOr<core::JobRecord> DecodeRow(const PgResult& rows, int row, StoredJob& stored) {
  const std::string job_id(rows.Bytes(row, 0));
  const int64_t version = rows.Int64(row, 1);
  const absl::string_view job = rows.Bytes(row, 2);
  stored.Clear();
  if (!stored.ParseFromArray(job.data(), static_cast<int>(job.size())) ||
      stored.job_id() != job_id || stored.version() != version) {
    return absl::DataLossError(absl::StrCat("stored job ", job_id, " does not parse"));
  }
  core::JobRecord record = StoredJobToRecord(stored);
  record.served_through = std::max<int64_t>(record.served_through, rows.Int64(row, 3) - 1);
  return record;
}

// Job rows a load fetches at a time.
constexpr int kLoadBatch = 500;

// A PostgreSQL array literal ({"a","b"}) of `items`, each quoted.
template <typename Range, typename Format>
std::string ArrayLiteral(const Range& items, Format format) {
  std::string text = "{";
  bool first = true;
  for (const auto& item : items) {
    if (!first) text += ',';
    first = false;
    text += '"';
    for (char c : format(item)) {
      if (c == '"' || c == '\\') text += '\\';
      text += c;
    }
    text += '"';
  }
  text += '}';
  return text;
}

std::string NewDatabaseId() {
  std::random_device random;
  return absl::StrFormat("%08x%08x%08x%08x", random(), random(), random(), random());
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresJobStore>> PostgresJobStore::Open(
    const PostgresOptions& options) {
  std::unique_ptr<PostgresJobStore> store(new PostgresJobStore());
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> connection, PgConnection::Connect(options.url));
  PgConnection& db = *connection;
  store->where_ = db.where();
  ASSIGN_OR_RETURN(store->migrations_applied_,
                   ApplyPgMigrations(db, PgMigrations(), options.migration_lock_timeout));

  // The database's identity: the first store to open it makes one.
  {
    const PgParam params[] = {PgParam::Text(NewDatabaseId())};
    RETURN_IF_ERROR(db.Exec("database id",
                            "INSERT INTO meta (key, value) VALUES ('database_id', $1) "
                            "ON CONFLICT (key) DO NOTHING",
                            params)
                        .status());
    ASSIGN_OR_RETURN(PgResult id,
                     db.Exec("database id", "SELECT value FROM meta WHERE key = 'database_id'"));
    if (id.rows() == 1) store->database_id_ = std::string(id.Bytes(0, 0));
  }

  // This store's session: its row becomes visible only once its lock is held (one transaction),
  // so no other store can take it for one that ended.
  RETURN_IF_ERROR(db.Begin("session"));
  absl::Status session = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(PgResult row, db.Exec("session",
                                           "INSERT INTO store_sessions DEFAULT VALUES "
                                           "RETURNING session_id"));
    store->session_id_ = row.Int32(0, 0);
    const PgParam params[] = {PgParam::Int(kSessionLockSpace), PgParam::Int(store->session_id_)};
    RETURN_IF_ERROR(
        db.Exec("session", "SELECT pg_advisory_lock($1::int, $2::int)", params).status());
    return db.Commit("session");
  }();
  if (!session.ok()) {
    db.Rollback();
    return session;
  }

  // The sessions of stores that ended without a clean stop: their locks are free.
  const PgParam self[] = {PgParam::Int(store->session_id_)};
  ASSIGN_OR_RETURN(PgResult others,
                   db.Exec("sessions",
                           "SELECT session_id FROM store_sessions WHERE session_id <> $1::int "
                           "ORDER BY session_id",
                           self));
  std::vector<int32_t> ended;
  for (int i = 0; i < others.rows(); ++i) {
    const int32_t id = others.Int32(i, 0);
    const PgParam params[] = {PgParam::Int(kSessionLockSpace), PgParam::Int(id)};
    ASSIGN_OR_RETURN(PgResult taken,
                     db.Exec("sessions", "SELECT pg_try_advisory_lock($1::int, $2::int)", params));
    if (taken.Bool(0, 0)) ended.push_back(id);
  }
  if (!ended.empty()) {
    // Steps up to a job's reservation may have been served by a store that ended: from now on they
    // count as served (and a later clean stop keeps it).
    const std::string ids = ArrayLiteral(ended, [](int32_t id) { return absl::StrCat(id); });
    const PgParam params[] = {PgParam::Text(ids)};
    absl::Status raised = db.Begin("unclean stop");
    if (raised.ok()) {
      raised = db.Exec("unclean stop",
                       "UPDATE jobs SET served_end = reserved_end WHERE reserved_end > served_end")
                   .status();
    }
    if (raised.ok()) {
      raised = db.Exec("unclean stop",
                       "DELETE FROM store_sessions WHERE session_id = ANY($1::int[])", params)
                   .status();
    }
    if (raised.ok()) raised = db.Commit("unclean stop");
    if (!raised.ok()) {
      db.Rollback();
      return raised;
    }
    for (int32_t id : ended) {
      const PgParam unlock[] = {PgParam::Int(kSessionLockSpace), PgParam::Int(id)};
      RETURN_IF_ERROR(
          db.Exec("sessions", "SELECT pg_advisory_unlock($1::int, $2::int)", unlock).status());
    }
    store->opened_after_clean_stop_ = false;
    spdlog::warn(
        "postgres {}: {} store session(s) ended without a clean stop; every job counts the steps "
        "it had reserved as served (UpdateJob refuses them without allow_rewrite)",
        store->where_, ended.size());
  }

  PostgresJobStore* raw = store.get();
  db.set_on_connect([raw](PgConnection& c) { return raw->RegisterSession(c); });
  {
    absl::MutexLock lock(&store->mutex_);
    store->connection_ = std::move(connection);
  }
  spdlog::info("postgres {}: database {}, schema {}, store session {}", store->where_,
               store->database_id_, PgMigrations().size(), store->session_id_);
  return store;
}

PostgresJobStore::~PostgresJobStore() {
  absl::MutexLock lock(&mutex_);
  connection_.reset();  // Releases the session lock; the row stays unless the stop was clean.
}

absl::Status PostgresJobStore::RegisterSession(PgConnection& connection)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  // Runs inside a call of this store (mutex_ held), when the connection was lost and is back. Lock
  // first, then the row (another store may have taken this session for ended and deleted it).
  const PgParam lock[] = {PgParam::Int(kSessionLockSpace), PgParam::Int(session_id_)};
  RETURN_IF_ERROR(
      connection.Exec("session", "SELECT pg_advisory_lock($1::int, $2::int)", lock).status());
  if (clean_stop_written_) return absl::OkStatus();
  const PgParam id[] = {PgParam::Int(session_id_)};
  RETURN_IF_ERROR(connection
                      .Exec("session",
                            "INSERT INTO store_sessions (session_id) VALUES ($1::int) "
                            "ON CONFLICT (session_id) DO NOTHING",
                            id)
                      .status());
  spdlog::info("postgres {}: connected again (store session {})", where_, session_id_);
  return absl::OkStatus();
}

absl::Status PostgresJobStore::ClearCleanStop() {
  if (!clean_stop_written_) return absl::OkStatus();
  const PgParam id[] = {PgParam::Int(session_id_)};
  RETURN_IF_ERROR(connection_
                      ->Exec("session",
                             "INSERT INTO store_sessions (session_id) VALUES ($1::int) "
                             "ON CONFLICT (session_id) DO NOTHING",
                             id)
                      .status());
  clean_stop_written_ = false;
  return absl::OkStatus();
}

absl::Status PostgresJobStore::Put(const core::JobRecord& record) {
  // The row without its reports: O(spec), whatever the job's age; the reports not written yet go
  // to metric_reports (store/postgres_reports.h).
  StoredJob row = RecordToStoredJob(record, /*with_reports=*/false);
  const std::string what = absl::StrCat("put ", record.job_id);
  absl::MutexLock lock(&mutex_);
  RETURN_IF_ERROR(ClearCleanStop());
  PgConnection& db = *connection_;
  KnownReports now;
  RETURN_IF_ERROR(db.Begin(what));
  absl::Status status = [&]() -> absl::Status {
    const PgParam id[] = {PgParam::Text(record.job_id)};
    // The row as the database holds it, locked: its logs say which reports are written.
    ASSIGN_OR_RETURN(PgResult old,
                     db.Exec(what, "SELECT job FROM jobs WHERE job_id = $1 FOR UPDATE", id));
    std::optional<StoredJob> old_row;
    if (old.rows() == 1) {
      old_row.emplace();
      const absl::string_view bytes = old.Bytes(0, 0);
      if (!old_row->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        // A row that does not parse names no logs: its reports, if any, go.
        old_row->Clear();
        RETURN_IF_ERROR(DeleteReports(db, record.job_id));
      }
    }
    ASSIGN_OR_RETURN(now, WriteReports(db, record, old_row ? &*old_row : nullptr,
                                       known_.Get(record.job_id), &row));
    RETURN_IF_ERROR(PutJobRow(db, what, record, row));
    // Committed (WAL flushed) when this returns: the row and its new reports together.
    return db.Commit(what);
  }();
  if (!status.ok()) {
    db.Rollback();
    return status;
  }
  known_.Set(record.job_id, std::move(now));
  return absl::OkStatus();
}

absl::Status PostgresJobStore::Delete(absl::string_view job_id) {
  const PgParam params[] = {PgParam::Text(job_id)};
  const std::string what = absl::StrCat("delete ", job_id);
  absl::MutexLock lock(&mutex_);
  RETURN_IF_ERROR(ClearCleanStop());
  PgConnection& db = *connection_;
  RETURN_IF_ERROR(db.Begin(what));
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(PgResult result, db.Exec(what, "DELETE FROM jobs WHERE job_id = $1", params));
    if (result.affected() == 0) {
      return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
    }
    RETURN_IF_ERROR(DeleteReports(db, job_id));
    return db.Commit(what);
  }();
  if (!status.ok()) {
    db.Rollback();
    return status;
  }
  known_.Forget(job_id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<core::JobRecord>> PostgresJobStore::Select(
    absl::string_view what, absl::string_view rest, std::span<const PgParam> params) {
  PgConnection& db = *connection_;
  // The rows and their reports in one snapshot.
  RETURN_IF_ERROR(db.Begin(what));
  absl::StatusOr<std::vector<core::JobRecord>> result =
      [&]() -> absl::StatusOr<std::vector<core::JobRecord>> {
    RETURN_IF_ERROR(db.Script(what, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"));
    ASSIGN_OR_RETURN(PgResult rows, db.Exec(what, absl::StrCat(kSelect, rest), params));
    std::vector<core::JobRecord> records;
    records.reserve(rows.rows());
    StoredJob stored;
    for (int i = 0; i < rows.rows(); ++i) {
      ASSIGN_OR_RETURN(core::JobRecord record, DecodeRow(rows, i, stored));
      KnownReports known = known_.Get(record.job_id);
      RETURN_IF_ERROR(ReadReports(db, stored, &known, &record));
      known_.Set(record.job_id, std::move(known));
      records.push_back(std::move(record));
    }
    RETURN_IF_ERROR(db.Commit(what));
    return records;
  }();
  if (!result.ok()) db.Rollback();
  return result;
}

absl::StatusOr<std::vector<core::JobRecord>> PostgresJobStore::LoadAll() {
  std::vector<core::JobRecord> records;
  RETURN_IF_ERROR(LoadEach([&](core::JobRecord record) {
    records.push_back(std::move(record));
    return absl::OkStatus();
  }));
  return records;
}

absl::Status PostgresJobStore::LoadEach(absl::FunctionRef<absl::Status(core::JobRecord)> visit) {
  absl::MutexLock lock(&mutex_);
  PgConnection& db = *connection_;
  RETURN_IF_ERROR(db.Begin("load"));
  absl::Status status = [&]() -> absl::Status {
    // Two cursors in one snapshot, both in order of job_id, read side by side (a merge join):
    // each job is visited with its reports, and nothing is held for more than a batch of rows.
    RETURN_IF_ERROR(db.Script("load", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"));
    RETURN_IF_ERROR(db.Script("load", absl::StrCat("DECLARE hpsched_job_scan NO SCROLL CURSOR FOR ",
                                                   kSelect, " ORDER BY job_id")));
    ASSIGN_OR_RETURN(PgReportScan reports, PgReportScan::Open(db));
    StoredJob stored;
    while (true) {
      ASSIGN_OR_RETURN(PgResult rows, db.Exec("load", absl::StrCat("FETCH ", kLoadBatch,
                                                                   " FROM hpsched_job_scan")));
      for (int i = 0; i < rows.rows(); ++i) {
        ASSIGN_OR_RETURN(core::JobRecord record, DecodeRow(rows, i, stored));
        KnownReports known;
        RETURN_IF_ERROR(reports.AddTo(stored, &record, &known));
        known_.Set(record.job_id, std::move(known));
        RETURN_IF_ERROR(visit(std::move(record)));
      }
      if (rows.rows() < kLoadBatch) break;
    }
    return db.Commit("load");
  }();
  if (!status.ok()) db.Rollback();
  return status;
}

absl::StatusOr<core::JobRecord> PostgresJobStore::Get(absl::string_view job_id) {
  const PgParam params[] = {PgParam::Text(job_id)};
  absl::MutexLock lock(&mutex_);
  ASSIGN_OR_RETURN(std::vector<core::JobRecord> records,
                   Select(absl::StrCat("get ", job_id), " WHERE job_id = $1", params));
  if (records.empty()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  return std::move(records.front());
}

absl::StatusOr<std::vector<core::JobRecord>> PostgresJobStore::List(size_t page_size,
                                                                    absl::string_view after) {
  if (page_size == 0) return absl::InvalidArgumentError("page_size: must be > 0");
  const PgParam params[] = {
      PgParam::Text(after),
      PgParam::Int(static_cast<int64_t>(std::min<size_t>(page_size, size_t{1} << 62)))};
  absl::MutexLock lock(&mutex_);
  return Select("list", " WHERE job_id > $1 ORDER BY job_id LIMIT $2::bigint", params);
}

absl::Status PostgresJobStore::RunInTransaction(
    absl::string_view what, absl::FunctionRef<absl::Status(PgConnection&)> body) {
  absl::MutexLock lock(&mutex_);
  RETURN_IF_ERROR(ClearCleanStop());
  PgConnection& db = *connection_;
  RETURN_IF_ERROR(db.Begin(what));
  absl::Status status = body(db);
  if (status.ok()) status = db.Commit(what);
  if (!status.ok()) db.Rollback();
  return status;
}

absl::Status PostgresJobStore::PutServedMarks(std::span<const ServedMark> marks, bool clean_stop) {
  absl::MutexLock lock(&mutex_);
  if (marks.empty() && !clean_stop && !clean_stop_written_) return absl::OkStatus();
  PgConnection& db = *connection_;
  RETURN_IF_ERROR(db.Begin("served marks"));
  absl::Status status;
  if (!marks.empty()) {
    const PgParam params[] = {
        PgParam::Text(ArrayLiteral(marks, [](const ServedMark& m) { return m.job_id; })),
        PgParam::Text(ArrayLiteral(
            marks, [](const ServedMark& m) { return absl::StrCat(m.served_through + 1); })),
        PgParam::Text(ArrayLiteral(marks, [](const ServedMark& m) {
          return absl::StrCat(std::max(m.served_through, m.reserved_through) + 1);
        }))};
    // A mark never lowers what is stored; a job listed twice counts its highest mark.
    status = db.Exec("served marks",
                     "UPDATE jobs AS j SET served_end = GREATEST(j.served_end, m.s), "
                     "reserved_end = GREATEST(j.reserved_end, m.r) "
                     "FROM (SELECT id, max(s) AS s, max(r) AS r FROM "
                     "unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(id, s, r) GROUP BY id) "
                     "AS m WHERE j.job_id = m.id",
                     params)
                 .status();
  }
  const PgParam id[] = {PgParam::Int(session_id_)};
  if (status.ok() && clean_stop) {
    status =
        db.Exec("clean stop", "DELETE FROM store_sessions WHERE session_id = $1::int", id).status();
  } else if (status.ok() && clean_stop_written_) {
    status = db.Exec("session",
                     "INSERT INTO store_sessions (session_id) VALUES ($1::int) "
                     "ON CONFLICT (session_id) DO NOTHING",
                     id)
                 .status();
  }
  if (status.ok()) status = db.Commit("served marks");
  if (!status.ok()) {
    db.Rollback();
    return status;
  }
  clean_stop_written_ = clean_stop;
  return absl::OkStatus();
}

}  // namespace hpsched::store
