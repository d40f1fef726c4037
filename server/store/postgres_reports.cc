#include "store/postgres_reports.h"

#include <random>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "spdlog/spdlog.h"
#include "store/postgres_migrations.h"
#include "store/report_rows.h"
#include "store/stored_job.h"

namespace hpsched::store {
namespace {

// Rows a cursor fetch returns at most.
constexpr int kBatchRows = 2000;

uint64_t NewLogId() {
  std::random_device random;
  return (uint64_t{random()} << 32) ^ random();
}

std::string IntArray(const std::vector<int64_t>& items) {
  return absl::StrCat("{", absl::StrJoin(items, ","), "}");
}

// Doubles in text that parses back to the same bits (17 significant digits).
std::string DoubleArray(const std::vector<double>& items) {
  std::string text = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) text += ',';
    absl::StrAppendFormat(&text, "%.17g", items[i]);
  }
  return text + "}";
}

absl::Status Mismatch(absl::string_view job_id, absl::string_view metric, int64_t count,
                      int64_t held) {
  return absl::DataLossError(absl::StrCat("reports of job ", job_id, ", metric ", metric,
                                          ": the job's row counts ", count,
                                          " reports, metric_reports holds ", held, " of them"));
}

// Collects the rows of one job's reports as they arrive (in order of metric and seq), against
// the logs of its row, into histories that start from what is known.
class JobReports {
 public:
  // `known` of the job; the histories start from it where its log is the row's.
  JobReports(const StoredJob& row, const KnownReports& known) : row_(row) {
    for (const auto& [metric, log] : row.state().report_logs()) {
      Metric& m = metrics_[metric];
      m.log_id = log.log_id();
      m.count = log.count();
      auto k = known.find(metric);
      if (k != known.end() && k->second.log_id == log.log_id() &&
          static_cast<int64_t>(k->second.reports.size()) <= log.count()) {
        m.reports = k->second.reports;
      }
      m.next = static_cast<int64_t>(m.reports.size());
    }
  }

  // The seq from which the table's rows of `metric` are needed (count when none are).
  int64_t From(const std::string& metric) const { return metrics_.at(metric).next; }
  int64_t Count(const std::string& metric) const { return metrics_.at(metric).count; }

  // A row (metric, seq, step, value, next_step). Rows of metrics the row names no log of, or past
  // its count, are not the job's (none are written).
  absl::Status Add(absl::string_view metric, int64_t seq, int64_t step, double value,
                   int64_t next_step) {
    auto it = metrics_.find(metric);
    if (it == metrics_.end() || seq < it->second.next || seq >= it->second.count) {
      return absl::OkStatus();
    }
    Metric& m = it->second;
    if (seq != m.next) return Mismatch(row_.job_id(), metric, m.count, m.next);
    if (m.reports.Find(step) == nullptr) {  // A step held twice keeps its first report.
      m.reports.Add(step, core::MetricReport{value, next_step});
    }
    ++m.next;
    return absl::OkStatus();
  }

  // Moves the histories into `record` and `known`. DataLoss when a log lacks rows.
  absl::Status Finish(core::JobRecord* record, KnownReports* known) {
    known->clear();
    for (auto& [metric, m] : metrics_) {
      if (m.next != m.count) return Mismatch(row_.job_id(), metric, m.count, m.next);
      auto in_row = record->metric_reports.find(metric);
      if (in_row != record->metric_reports.end()) {
        // Reports the row itself held (before schema 3) are older: they come first, and the next
        // Put writes the whole history under a new log.
        for (size_t i = 0; i < m.reports.size(); ++i) {
          if (in_row->second.Find(m.reports[i].step) == nullptr) {
            in_row->second.Add(m.reports[i].step, m.reports[i].report);
          }
        }
        continue;
      }
      known->emplace(metric, KnownLog{m.log_id, m.reports});
      record->metric_reports.emplace(metric, std::move(m.reports));
    }
    return absl::OkStatus();
  }

 private:
  struct Metric {
    uint64_t log_id = 0;
    int64_t count = 0;
    int64_t next = 0;
    core::MetricHistory reports;
  };
  const StoredJob& row_;
  std::map<std::string, Metric, std::less<>> metrics_;
};

}  // namespace

KnownReports PgKnownReports::Get(absl::string_view job_id) const {
  absl::MutexLock lock(&mutex_);
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? KnownReports() : it->second;
}

void PgKnownReports::Set(absl::string_view job_id, KnownReports known) {
  absl::MutexLock lock(&mutex_);
  if (known.empty()) {
    if (auto it = jobs_.find(job_id); it != jobs_.end()) jobs_.erase(it);
    return;
  }
  jobs_.insert_or_assign(std::string(job_id), std::move(known));
}

void PgKnownReports::Forget(absl::string_view job_id) { Set(job_id, {}); }

absl::Status ReadReports(PgConnection& db, const StoredJob& row, KnownReports* known,
                         core::JobRecord* record) {
  JobReports reports(row, *known);
  std::vector<std::string> metrics;
  std::vector<int64_t> from, to;
  for (const auto& [metric, log] : row.state().report_logs()) {
    if (reports.From(metric) < log.count()) {
      metrics.push_back(metric);
      from.push_back(reports.From(metric));
      to.push_back(log.count());
    }
  }
  if (!metrics.empty()) {
    const PgParam params[] = {PgParam::Text(row.job_id()), PgParam::Text(PgTextArray(metrics)),
                              PgParam::Text(IntArray(from)), PgParam::Text(IntArray(to))};
    ASSIGN_OR_RETURN(PgResult rows,
                     db.Exec(absl::StrCat("reports of ", row.job_id()),
                             "SELECT r.metric, r.seq, r.step, r.value, r.next_step FROM "
                             "unnest($2::text[], $3::bigint[], $4::bigint[]) AS w(metric, lo, hi) "
                             "JOIN metric_reports r ON r.job_id = $1 AND r.metric = w.metric "
                             "AND r.seq >= w.lo AND r.seq < w.hi ORDER BY r.metric, r.seq",
                             params));
    for (int i = 0; i < rows.rows(); ++i) {
      RETURN_IF_ERROR(reports.Add(rows.Bytes(i, 0), rows.Int64(i, 1), rows.Int64(i, 2),
                                  rows.Double(i, 3), rows.Int64(i, 4)));
    }
  }
  return reports.Finish(record, known);
}

absl::StatusOr<KnownReports> WriteReports(PgConnection& db, const core::JobRecord& record,
                                          const StoredJob* old_row, const KnownReports& known,
                                          StoredJob* new_row) {
  // What the table holds, as far as this process can tell: a log it knows all the rows of, by
  // the lineage of the history it knows them as; any other log, as rows it cannot tell.
  WrittenMetrics written;
  std::map<std::string, uint64_t, std::less<>> old_logs;
  if (old_row != nullptr) {
    for (const auto& [metric, log] : old_row->state().report_logs()) {
      old_logs.emplace(metric, log.log_id());
      auto k = known.find(metric);
      const bool whole = k != known.end() && k->second.log_id == log.log_id() &&
                         static_cast<int64_t>(k->second.reports.size()) == log.count();
      written.emplace(metric, whole ? WrittenReports{k->second.reports.lineage(),
                                                     static_cast<size_t>(log.count())}
                                    : WrittenReports{0, kUnknownCount});
    }
  }
  const ReportWrites plan = PlanReportWrites(record, old_row != nullptr ? &written : nullptr);
  const std::string what = absl::StrCat("put reports of ", record.job_id);
  std::set<std::string, std::less<>> renewed;
  std::vector<std::string> metrics;
  std::vector<int64_t> seqs, steps, next_steps;
  std::vector<double> values;
  for (const ReportWrite& write : plan.writes) {
    if (write.replace) renewed.insert(*write.metric);
    for (size_t i = write.from; i < write.reports->size(); ++i) {
      const core::MetricHistory::Entry& entry = (*write.reports)[i];
      metrics.push_back(*write.metric);
      seqs.push_back(static_cast<int64_t>(i));
      steps.push_back(entry.step);
      values.push_back(entry.report.value);
      next_steps.push_back(entry.report.next_step);
    }
  }
  // The rows of replaced and dropped metrics go first (a replaced history may be shorter).
  std::vector<std::string> deleted(renewed.begin(), renewed.end());
  deleted.insert(deleted.end(), plan.dropped.begin(), plan.dropped.end());
  if (!deleted.empty()) {
    const PgParam params[] = {PgParam::Text(record.job_id), PgParam::Text(PgTextArray(deleted))};
    RETURN_IF_ERROR(db.Exec(what,
                            "DELETE FROM metric_reports WHERE job_id = $1 "
                            "AND metric = ANY($2::text[])",
                            params)
                        .status());
  }
  if (!metrics.empty()) {
    // One statement whatever the number of rows: one report is one row.
    const PgParam params[] = {
        PgParam::Text(record.job_id),       PgParam::Text(PgTextArray(metrics)),
        PgParam::Text(IntArray(seqs)),      PgParam::Text(IntArray(steps)),
        PgParam::Text(DoubleArray(values)), PgParam::Text(IntArray(next_steps))};
    RETURN_IF_ERROR(db.Exec(what,
                            "INSERT INTO metric_reports (job_id, metric, seq, step, value, "
                            "next_step) SELECT $1, * FROM unnest($2::text[], $3::bigint[], "
                            "$4::bigint[], $5::float8[], $6::bigint[])",
                            params)
                        .status());
  }
  KnownReports now;
  auto* logs = new_row->mutable_state()->mutable_report_logs();
  logs->clear();
  for (const auto& [metric, reports] : record.metric_reports) {
    auto old = old_logs.find(metric);
    const bool kept = old != old_logs.end() && !renewed.contains(metric) &&
                      written.at(metric).count != kUnknownCount;
    const uint64_t log_id = kept ? old->second : NewLogId();
    ReportLog& log = (*logs)[metric];
    log.set_log_id(log_id);
    log.set_count(static_cast<int64_t>(reports.size()));
    now.emplace(metric, KnownLog{log_id, reports});
  }
  return now;
}

absl::Status DeleteReports(PgConnection& db, absl::string_view job_id) {
  const PgParam params[] = {PgParam::Text(job_id)};
  return db
      .Exec(absl::StrCat("delete reports of ", job_id),
            "DELETE FROM metric_reports WHERE job_id = $1", params)
      .status();
}

absl::StatusOr<PgReportScan> PgReportScan::Open(PgConnection& db) {
  RETURN_IF_ERROR(db.Script("load reports",
                            "DECLARE hpsched_report_scan NO SCROLL CURSOR FOR "
                            "SELECT job_id, metric, seq, step, value, next_step FROM "
                            "metric_reports ORDER BY job_id, metric, seq"));
  return PgReportScan(&db);
}

absl::StatusOr<bool> PgReportScan::Ready() {
  if (batch_.has_value() && next_ < batch_->rows()) return true;
  if (done_) return false;
  ASSIGN_OR_RETURN(
      PgResult rows,
      db_->Exec("load reports", absl::StrCat("FETCH ", kBatchRows, " FROM hpsched_report_scan")));
  done_ = rows.rows() < kBatchRows;
  batch_.emplace(std::move(rows));
  next_ = 0;
  return batch_->rows() > 0;
}

absl::Status PgReportScan::AddTo(const StoredJob& row, core::JobRecord* record,
                                 KnownReports* known) {
  JobReports reports(row, {});
  while (true) {
    ASSIGN_OR_RETURN(bool ready, Ready());
    if (!ready) break;
    const absl::string_view job_id = batch_->Bytes(next_, 0);
    if (job_id > row.job_id()) break;
    if (job_id == row.job_id()) {
      RETURN_IF_ERROR(reports.Add(batch_->Bytes(next_, 1), batch_->Int64(next_, 2),
                                  batch_->Int64(next_, 3), batch_->Double(next_, 4),
                                  batch_->Int64(next_, 5)));
    }
    ++next_;
  }
  return reports.Finish(record, known);
}

absl::Status MoveReportsOutOfRows(PgConnection& db) {
  // Servers of schema 2 still connected would go on writing reports into rows (and reading none
  // from the table): each open store holds its session's advisory lock.
  ASSIGN_OR_RETURN(PgResult sessions,
                   db.Exec("migration 3", "SELECT session_id FROM store_sessions ORDER BY 1"));
  std::vector<int32_t> live;
  for (int i = 0; i < sessions.rows(); ++i) {
    const PgParam params[] = {PgParam::Int(kPgSessionLockSpace),
                              PgParam::Int(sessions.Int32(i, 0))};
    ASSIGN_OR_RETURN(
        PgResult taken,
        db.Exec("migration 3", "SELECT pg_try_advisory_lock($1::int, $2::int)", params));
    if (!taken.Bool(0, 0)) {
      live.push_back(sessions.Int32(i, 0));
      continue;
    }
    RETURN_IF_ERROR(
        db.Exec("migration 3", "SELECT pg_advisory_unlock($1::int, $2::int)", params).status());
  }
  if (!live.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "postgres ", db.where(),
        ": schema migration 3 (metric reports in a table of their own) is not additive, and store "
        "session(s) ",
        absl::StrJoin(live, ", "),
        " of a server of the older release are still connected: stop every hpsched-server of the "
        "older release, then start this one (docs/operations.md, Schema migrations)"));
  }
  RETURN_IF_ERROR(db.Script("migration 3",
                            "DECLARE hpsched_migrate_rows NO SCROLL CURSOR FOR "
                            "SELECT job_id, job FROM jobs ORDER BY job_id"));
  int64_t moved_jobs = 0, moved_reports = 0;
  while (true) {
    ASSIGN_OR_RETURN(PgResult rows,
                     db.Exec("migration 3",
                             absl::StrCat("FETCH ", kBatchRows / 4, " FROM hpsched_migrate_rows")));
    for (int i = 0; i < rows.rows(); ++i) {
      const absl::string_view bytes = rows.Bytes(i, 1);
      StoredJob stored;
      if (!stored.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
        // Left as it is: loading it reports DataLoss naming the job, as before.
        spdlog::warn("postgres migration 3: the row of job {} does not parse; left as it is",
                     std::string(rows.Bytes(i, 0)));
        continue;
      }
      if (stored.state().metrics().empty()) continue;
      const core::JobRecord record = StoredJobToRecord(stored);
      stored.mutable_state()->clear_metrics();
      ASSIGN_OR_RETURN(KnownReports written, WriteReports(db, record, nullptr, {}, &stored));
      const std::string job = stored.SerializeAsString();
      const PgParam params[] = {PgParam::Text(stored.job_id()), PgParam::Bytes(job)};
      RETURN_IF_ERROR(
          db.Exec("migration 3", "UPDATE jobs SET job = $2 WHERE job_id = $1", params).status());
      ++moved_jobs;
      for (const auto& [metric, log] : written) moved_reports += log.reports.size();
    }
    if (rows.rows() < kBatchRows / 4) break;
  }
  RETURN_IF_ERROR(db.Script("migration 3", "CLOSE hpsched_migrate_rows"));
  spdlog::info("postgres migration 3: moved {} metric reports of {} jobs into metric_reports",
               moved_reports, moved_jobs);
  return absl::OkStatus();
}

absl::Status PutJobRow(PgConnection& db, absl::string_view what, const core::JobRecord& record,
                       const StoredJob& row) {
  const std::string bytes = row.SerializeAsString();
  const PgParam params[] = {PgParam::Text(record.job_id), PgParam::Int(record.version),
                            PgParam::Bytes(bytes), PgParam::Text(record.create_request_id)};
  return db
      .Exec(what,
            "INSERT INTO jobs (job_id, version, job, create_request_id) "
            "VALUES ($1, $2::bigint, $3, $4) ON CONFLICT (job_id) DO UPDATE SET "
            "version = EXCLUDED.version, job = EXCLUDED.job, "
            "create_request_id = EXCLUDED.create_request_id",
            params)
      .status();
}

}  // namespace hpsched::store
