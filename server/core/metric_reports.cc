#include "core/metric_reports.h"

#include <optional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/node.h"

namespace hpsched::core {

bool IsMetricName(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!absl::ascii_isalpha(name[0]) && name[0] != '_') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '_' && c != '.' && c != '/' && c != '-') return false;
  }
  return true;
}

MetricHistory::MetricHistory(
    std::initializer_list<std::pair<const int64_t, MetricReport>> reports) {
  for (const auto& [step, report] : reports) Add(step, report);
}

MetricHistory::MetricHistory(const MetricReports& reports) {
  for (const auto& [step, report] : reports) Add(step, report);
}

const MetricReport* MetricHistory::Find(int64_t step) const {
  const std::optional<size_t> at = log_.Find(step);
  return at.has_value() ? &log_[*at].report : nullptr;
}

void MetricHistory::Add(int64_t step, const MetricReport& report) {
  log_.Append(Entry{step, report}, step);
}

MetricReports MetricHistory::ToMap() const {
  MetricReports reports;
  for (size_t i = 0; i < log_.size(); ++i) reports.emplace(log_[i].step, log_[i].report);
  return reports;
}

bool MetricHistory::operator==(const MetricHistory& other) const {
  if (size() != other.size()) return false;
  for (size_t i = 0; i < log_.size(); ++i) {
    const MetricReport* found = other.Find(log_[i].step);
    if (found == nullptr || !(*found == log_[i].report)) return false;
  }
  return true;
}

MetricTrack BuildTrack(const MetricSpec& spec, const MetricReports& reports) {
  MetricTrack track;
  if (spec.every_steps > 0) {
    // Expected at every_steps - 1, 2 * every_steps - 1, ...: walk them while they are present.
    int64_t expected = spec.every_steps - 1;
    // Stored steps all follow the cadence (CheckReportStep), so the map's order is the walk's.
    for (auto it = reports.begin(); expected < kStepLimit; expected += spec.every_steps, ++it) {
      if (it == reports.end() || it->first != expected) break;
      track.reports.Append({it->first, it->second.value});
    }
    track.pending_step = expected < kStepLimit ? expected : kNeverPending;
    return track;
  }
  int64_t expected = spec.first_step;
  while (true) {
    auto it = reports.find(expected);
    if (it == reports.end()) break;
    track.reports.Append({it->first, it->second.value});
    if (it->second.next_step == kNoNextReport) {
      expected = kNeverPending;
      break;
    }
    expected = it->second.next_step;
  }
  track.pending_step = expected;
  return track;
}

MetricTrack BuildTrack(const MetricSpec& spec, const MetricHistory& reports) {
  MetricTrack track;
  track.pending_step = spec.every_steps > 0 ? spec.every_steps - 1 : spec.first_step;
  ExtendTrack(spec, reports, &track);
  return track;
}

void ExtendTrack(const MetricSpec& spec, const MetricHistory& reports, MetricTrack* track) {
  while (track->pending_step != kNeverPending) {
    const int64_t expected = track->pending_step;
    const MetricReport* report = reports.Find(expected);
    if (report == nullptr) return;
    track->reports.Append({expected, report->value});
    if (spec.every_steps > 0) {
      // kStepLimit - expected > every_steps: the next expected step is below the limit.
      track->pending_step =
          kStepLimit - expected > spec.every_steps ? expected + spec.every_steps : kNeverPending;
    } else {
      track->pending_step = report->next_step == kNoNextReport ? kNeverPending : report->next_step;
    }
  }
}

absl::Status CheckMetricSpecs(std::span<const MetricSpec> specs, absl::string_view path) {
  if (specs.size() > kMaxMetrics) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": must have at most ", kMaxMetrics, " metrics, got ", specs.size()));
  }
  std::set<absl::string_view> names;
  for (size_t i = 0; i < specs.size(); ++i) {
    const MetricSpec& spec = specs[i];
    const std::string at = absl::StrCat(path, "[", i, "]");
    if (!IsMetricName(spec.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(at,
                       ".name: must match [A-Za-z_][A-Za-z0-9_./-]* and be 1 to 63 "
                       "characters, got \"",
                       absl::CHexEscape(spec.name.substr(0, 64)), "\""));
    }
    if (!names.insert(spec.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ".name: must be unique, \"", spec.name, "\" appears twice"));
    }
    if (spec.every_steps == 0 && spec.first_step == -1) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ": a cadence is required: every_steps (>= 1) or first_step (>= 0)"));
    }
    if (spec.every_steps < 0 || spec.every_steps > kMaxEverySteps) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ".every_steps: must be between 1 and 2^40, got ", spec.every_steps));
    }
    if (spec.every_steps == 0 && (spec.first_step < 0 || spec.first_step >= kStepLimit)) {
      return absl::InvalidArgumentError(
          absl::StrCat(at, ".first_step: must be >= 0 and < 2^53, got ", spec.first_step));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckReportStep(const MetricSpec& spec, const MetricReports& reports, int64_t step,
                             absl::string_view field) {
  if (spec.every_steps > 0) {
    if ((step + 1) % spec.every_steps != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": metric \"", spec.name, "\" is reported every ", spec.every_steps,
          " steps, at the steps s with (s + 1) % ", spec.every_steps, " == 0; got ", step));
    }
    return absl::OkStatus();
  }
  // Announced: the first step, or a step a previous report announced.
  if (step == spec.first_step) return absl::OkStatus();
  for (const auto& [at, report] : reports) {
    if (report.next_step == step) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(field, ": metric \"", spec.name, "\" is not expected at step ", step,
                   " (its first report is at step ", spec.first_step,
                   ", later ones at the steps earlier reports announce)"));
}

absl::Status CheckReportStep(const MetricSpec& spec, const MetricTrack& track, int64_t step,
                             absl::string_view field) {
  if (spec.every_steps == 0 && (step == spec.first_step || step == track.pending_step)) {
    return absl::OkStatus();
  }
  // The cadence alone, or the error for a step no report announced.
  return CheckReportStep(spec, MetricReports(), step, field);
}

}  // namespace hpsched::core
