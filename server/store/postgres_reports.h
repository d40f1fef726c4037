// Metric reports in PostgreSQL (schema 3 on), shared by the single-server store and the replicas'
// shared store: a row per report in metric_reports(job_id, metric, seq, step, value, next_step),
// and in the job's row, per metric, the log of rows that holds its reports and how many
// (hpsched.store.ReportLog in JobState.report_logs). A log is only ever appended to (under the
// job's lock: a row lock, or the replicas' head lock); a history that does not continue it is
// written whole under a new log id. So a report writes one row, and a process that knows the first
// n rows of a log reads only the rows after them, whatever the job's age (issue 11).
#ifndef HPSCHED_STORE_POSTGRES_REPORTS_H_
#define HPSCHED_STORE_POSTGRES_REPORTS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/job_record.h"
#include "store/job_state.pb.h"
#include "store/postgres_connection.h"

namespace hpsched::store {

// What this process knows the database holds of one metric of a job: the first reports.size()
// rows of log `log_id`. Logs are append-only, so this stays true until the job's row names another
// log (it never has to be invalidated, only forgotten to save memory).
struct KnownLog {
  uint64_t log_id = 0;
  core::MetricHistory reports;
};
using KnownReports = std::map<std::string, KnownLog, std::less<>>;

// KnownReports per job. Thread-safe. A history held here shares its storage with the job's
// records (core::SharedLog), so it costs a few words per metric.
class PgKnownReports {
 public:
  // What is known of `job_id` (empty for nothing).
  KnownReports Get(absl::string_view job_id) const;
  // Replaces what is known of `job_id`; an empty `known` forgets it.
  void Set(absl::string_view job_id, KnownReports known);
  void Forget(absl::string_view job_id);

 private:
  mutable absl::Mutex mutex_;
  std::map<std::string, KnownReports, std::less<>> jobs_ ABSL_GUARDED_BY(mutex_);
};

// Adds the reports `row` names (its report_logs) to `record` (decoded from `row`), taking those
// `known` holds from it and reading only the rows after them on `db`; `known` becomes what the
// database holds. The row and the reports must be read in one snapshot (a REPEATABLE READ
// transaction, or under the job's lock). DataLoss naming the job and metric when the table holds
// other rows than the log counts. Reports the row itself holds (a row written before schema 3)
// come first.
absl::Status ReadReports(PgConnection& db, const StoredJob& row, KnownReports* known,
                         core::JobRecord* record);

// Writes, on `db` inside the caller's transaction, what makes the database hold exactly the
// reports of `record`: the reports past the ones a log holds where `record`'s history continues it
// (what `known` says and `old_row` confirms), every report under a new log otherwise, and deletes
// the rows of metrics `record` has not. `old_row` is the job's row as the database holds it now,
// read under the job's lock in the same transaction (null for none). Sets `new_row`'s report_logs.
// Returns what the database holds once the transaction commits. O(reports written).
absl::StatusOr<KnownReports> WriteReports(PgConnection& db, const core::JobRecord& record,
                                          const StoredJob* old_row, const KnownReports& known,
                                          StoredJob* new_row);

// Deletes every report of `job_id` (with the job, in the caller's transaction).
absl::Status DeleteReports(PgConnection& db, absl::string_view job_id);

// Inserts or replaces the jobs row of `record`, holding `row` (its JobState with the report logs
// WriteReports set), in the transaction open on `db`.
absl::Status PutJobRow(PgConnection& db, absl::string_view what, const core::JobRecord& record,
                       const StoredJob& row);

// The report rows of every job in order of job_id, read through a cursor a batch at a time, for a
// load that reads the job rows in the same order (a merge join, as SQLite's LoadEach): nothing is
// held for more than a batch of rows. Open and use inside one REPEATABLE READ transaction (the
// job rows' snapshot); the cursor closes with it.
class PgReportScan {
 public:
  // Declares the cursor. Errors as PgConnection::Exec.
  static absl::StatusOr<PgReportScan> Open(PgConnection& db);

  // Adds the reports of `row`'s job to `record` (decoded from `row`), passing over the rows of
  // jobs before it (rows without a job row are never written); `known` becomes what the database
  // holds of the job. Calls come in order of job_id. DataLoss as ReadReports.
  absl::Status AddTo(const StoredJob& row, core::JobRecord* record, KnownReports* known);

 private:
  explicit PgReportScan(PgConnection* db) : db_(db) {}
  // Fetches the next batch when the current one is used up; false at the end.
  absl::StatusOr<bool> Ready();

  PgConnection* db_;
  std::optional<PgResult> batch_;
  int next_ = 0;
  bool done_ = false;
};

// Schema migration 3: every report held in a job's row (JobState.metrics) moves to metric_reports
// under a new log, and the row is rewritten without it. Refuses (FailedPrecondition, naming them)
// while store sessions of another server are live: a server of schema 2 would go on writing
// reports into rows.
absl::Status MoveReportsOutOfRows(PgConnection& db);

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_POSTGRES_REPORTS_H_
