#include "store/report_rows.h"

namespace hpsched::store {

ReportWrites PlanReportWrites(const core::JobRecord& record, const WrittenMetrics* written) {
  ReportWrites plan;
  for (const auto& [metric, reports] : record.metric_reports) {
    const WrittenReports* had = nullptr;
    if (written != nullptr) {
      if (auto w = written->find(metric); w != written->end()) had = &w->second;
    }
    if (had != nullptr && had->lineage == reports.lineage() && had->count <= reports.size()) {
      if (had->count < reports.size())
        plan.writes.push_back({&metric, &reports, had->count, false});
    } else if (had != nullptr || !reports.empty()) {
      plan.writes.push_back({&metric, &reports, 0, true});
    }
  }
  if (written != nullptr) {
    for (const auto& [metric, w] : *written) {
      if (!record.metric_reports.contains(metric)) plan.dropped.push_back(metric);
    }
  }
  return plan;
}

WrittenMetrics WrittenOf(const core::JobRecord& record) {
  WrittenMetrics written;
  for (const auto& [metric, reports] : record.metric_reports) {
    written.emplace(metric, WrittenReports{reports.lineage(), reports.size()});
  }
  return written;
}

}  // namespace hpsched::store
