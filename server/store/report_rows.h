// Which metric reports a Put must write, for a store that keeps them a row per report, keyed by
// (job_id, metric, seq) with seq the report's place in its metric's history (SQLite's and
// PostgreSQL's metric_reports tables). Only what a store has not written yet is written, so a
// report costs O(1) however many came before (issue 11); no database here, only the bookkeeping.
#ifndef HPSCHED_STORE_REPORT_ROWS_H_
#define HPSCHED_STORE_REPORT_ROWS_H_

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "core/job_record.h"

namespace hpsched::store {

// What a report table holds of one metric of a job: the first `count` reports of the history with
// `lineage` (core::MetricHistory::lineage: a history with the same lineage holds those reports as
// its first ones).
struct WrittenReports {
  uint64_t lineage = 0;
  size_t count = 0;
};
// A count that no history reaches: "the table holds reports of this metric, but not ones this
// process can tell" (a Put replaces them).
inline constexpr size_t kUnknownCount = std::numeric_limits<size_t>::max();

// Per metric of one job.
using WrittenMetrics = std::map<std::string, WrittenReports, std::less<>>;

// The reports of one metric to write: positions [from, reports->size()) of `*reports`, after
// deleting the metric's rows first when `replace`. Points into the record it was planned for.
struct ReportWrite {
  const std::string* metric = nullptr;
  const core::MetricHistory* reports = nullptr;
  size_t from = 0;
  bool replace = false;
};

struct ReportWrites {
  std::vector<ReportWrite> writes;
  // Metrics the table holds reports of that the record has none of: their rows go.
  std::vector<std::string> dropped;
};

// The writes that make a table holding `written` (null: nothing known of the job) hold exactly the
// reports of `record`: for each metric, the reports past those written when the record's history
// continues the written one (same lineage, at least as many), else all of them, replacing the old.
// O(metrics), whatever the number of reports.
ReportWrites PlanReportWrites(const core::JobRecord& record, const WrittenMetrics* written);

// What the table holds of `record` once the writes planned for it have committed.
WrittenMetrics WrittenOf(const core::JobRecord& record);

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_REPORT_ROWS_H_
