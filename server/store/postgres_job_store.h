// A JobStore in PostgreSQL: one row per job in a database that several hpsched-server processes
// may share (docs/operations.md, PostgreSQL store).
#ifndef HPSCHED_STORE_POSTGRES_JOB_STORE_H_
#define HPSCHED_STORE_POSTGRES_JOB_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "store/job_store.h"
#include "store/postgres_connection.h"
#include "store/postgres_migrations.h"
#include "store/postgres_reports.h"

namespace hpsched::store {

struct PostgresOptions {
  // libpq URI or key=value string (--postgres_url, HPSCHED_POSTGRES_URL). It may hold the
  // password: the store never logs it or puts it in a Status.
  std::string url;
  // How long Open waits for the migration lock while another replica migrates.
  absl::Duration migration_lock_timeout = absl::Seconds(60);
};

// Thread-safe: one connection behind a mutex, so calls are serialized.
//
// Durability: a successful Put, Delete or PutServedMarks has committed, with synchronous_commit on
// for the session (the server has flushed its WAL, whatever the database default says). On error
// nothing is acknowledged; when the connection is lost during a commit the outcome is unknown and
// the change may or may not be in the database (the caller has not acknowledged it; whatever reads
// the database next sees the truth).
//
// Connection loss: the call that notices it fails with Unavailable; the next call connects again
// (so a restarted PostgreSQL is picked up by itself). Messages name "user@host:port/db", never the
// password.
//
// Schema: PgMigrations() applied by Open under an advisory lock (store/postgres_migrations.h).
//
// Metric reports (schema 3 on) are rows of metric_reports, not part of the job's row: a Put writes
// the row (O(spec)) and only the reports the table does not hold yet, so a report costs O(1)
// whatever the job's age (store/postgres_reports.h). A Put, Delete, Get, List or load is one
// transaction; a Put locks the job's row (FOR UPDATE), so writers of one job serialize.
//
// Served marks and clean stops, with several stores (replicas) on one database: every open store
// has a row in store_sessions and holds the advisory lock (kSessionLockSpace, its session_id) on
// its connection. A clean stop (PutServedMarks with clean_stop) deletes its row in the transaction
// of its final marks; a later write puts the row back. Open looks at the other rows: one whose lock
// it can take belongs to a store that ended without a clean stop (its connection is gone), and then
// every job counts the steps up to its reservation as served (served_end = reserved_end) and those
// rows are deleted. Raising the marks is always safe (UpdateJob refuses more); it is skipped only
// when no store ended uncleanly.
class PostgresJobStore final : public JobStore {
 public:
  // The advisory-lock space (first key of pg_advisory_lock(int, int)) of store sessions.
  static constexpr int kSessionLockSpace = kPgSessionLockSpace;

  // Connects, migrates and registers this store's session. InvalidArgument when the URL is empty
  // or does not parse; Unavailable when the database cannot be reached; FailedPrecondition when
  // its schema is newer in a way this build cannot run with.
  static absl::StatusOr<std::unique_ptr<PostgresJobStore>> Open(const PostgresOptions& options);
  ~PostgresJobStore() override;

  absl::Status Put(const core::JobRecord& record) override;
  absl::Status Delete(absl::string_view job_id) override;
  // DataLoss naming the job when a row does not parse or its reports are not all in
  // metric_reports (LoadAll, LoadEach, Get, List).
  absl::StatusOr<std::vector<core::JobRecord>> LoadAll() override;
  // Row by row, the reports merged in by job id (one snapshot, the store's lock held throughout).
  absl::Status LoadEach(absl::FunctionRef<absl::Status(core::JobRecord)> visit) override;
  absl::StatusOr<core::JobRecord> Get(absl::string_view job_id) override;
  absl::StatusOr<std::vector<core::JobRecord>> List(size_t page_size,
                                                    absl::string_view after) override;
  // One statement for all marks (plus the session row with `clean_stop`), in one transaction.
  absl::Status PutServedMarks(std::span<const ServedMark> marks, bool clean_stop) override;

  // Runs `body` on the store's connection inside one transaction, serialized with the store's own
  // calls (for what must commit together with the store's rows: a change log, a row lock held
  // while deciding). Commits when `body` returns OK; rolls back and returns its error otherwise.
  // Unavailable when the connection is lost (the outcome of a lost commit is unknown, as for Put).
  // `body` must not call this store.
  absl::Status RunInTransaction(absl::string_view what,
                                absl::FunctionRef<absl::Status(PgConnection&)> body);

  // Whether no store on this database had ended without a clean stop when this one opened.
  bool opened_after_clean_stop() const { return opened_after_clean_stop_; }
  // How many migrations this Open applied (0 when the schema was current).
  int migrations_applied() const { return migrations_applied_; }
  int session_id() const { return session_id_; }
  // The database's random identity (meta.database_id), made by the first store that opened it.
  const std::string& database_id() const { return database_id_; }
  // "user@host:port/db", for messages.
  const std::string& where() const { return where_; }

 private:
  PostgresJobStore() = default;
  // Registers the session (row and lock) on the current connection; on reconnection too.
  absl::Status RegisterSession(PgConnection& connection);
  // Before a write after a clean stop: the session row comes back.
  absl::Status ClearCleanStop() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  absl::StatusOr<std::vector<core::JobRecord>> Select(absl::string_view what,
                                                      absl::string_view rest,
                                                      std::span<const PgParam> params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  bool opened_after_clean_stop_ = true;
  int migrations_applied_ = 0;
  std::string database_id_;
  std::string where_;
  absl::Mutex mutex_;
  std::unique_ptr<PgConnection> connection_ ABSL_GUARDED_BY(mutex_);
  // Set once by Open; read by RegisterSession, which runs with mutex_ held or before publication.
  int session_id_ = 0;
  // What the database holds of each job's reports, as far as this store wrote or read them: a Put
  // writes only the reports past these (store/postgres_reports.h).
  PgKnownReports known_;
  // Set by PutServedMarks(clean_stop) until the next write: the session row is deleted.
  bool clean_stop_written_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_POSTGRES_JOB_STORE_H_
