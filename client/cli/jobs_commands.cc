// create, get, list, delete, update: a Job in, the Job out (indented JSON, or one line with
// --json); list prints a table.
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/cli/commands.h"
#include "client/cli/json_io.h"
#include "client/cli/series_io.h"

namespace hpsched::cli {

absl::Status Create(client::Client* client, const std::string& job_id, const CreateOptions& options,
                    const Output& output) {
  v1::Job job;
  if (!options.job.empty()) {
    if (auto s = ParseJsonArg("--job", options.job, &job); !s.ok()) return s;
  } else {
    if (options.schedule.empty()) {
      return absl::InvalidArgumentError("--schedule or --job: one is required");
    }
    auto* hp = job.add_hyperparameters();
    hp->set_name(options.hyperparameter.empty() ? "lr" : options.hyperparameter);
    auto bases = ParseDoubles("--base", options.base);
    if (!bases.ok()) return bases.status();
    hp->mutable_base_values()->Add(bases->begin(), bases->end());
    if (auto s = ParseJsonArg("--schedule", options.schedule, hp->mutable_schedule()); !s.ok()) {
      return s;
    }
  }
  auto created = client->CreateJob(job_id, job);
  if (!created.ok()) return created.status();
  PrintMessage(output, *created);
  return absl::OkStatus();
}

absl::Status Get(client::Client* client, const std::string& job_id, const Output& output) {
  auto job = client->GetJob(job_id);
  if (!job.ok()) return job.status();
  PrintMessage(output, *job);
  return absl::OkStatus();
}

namespace {

// The filter of `options`: --filter and each --label key=value, joined by AND.
absl::StatusOr<std::string> ListFilter(const ListOptions& options) {
  std::vector<std::string> terms;
  if (!options.filter.empty()) terms.push_back(options.filter);
  for (const std::string& label : options.labels) {
    const size_t eq = label.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--label: must be KEY=VALUE, got \"", label, "\""));
    }
    terms.push_back(
        absl::StrCat("labels.", label.substr(0, eq), " = ", JsonString(label.substr(eq + 1))));
  }
  return absl::StrJoin(terms, " AND ");
}

std::string UpdateTime(const v1::Job& job) {
  if (!job.has_update_time()) return "-";
  const absl::Time t = absl::FromUnixSeconds(job.update_time().seconds());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// The jobs as a table with a header, columns padded to their widest cell.
void PrintJobTable(const Output& output, const std::vector<v1::Job>& jobs) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "HYPERPARAMETERS", "VERSION", "LABELS", "UPDATED"}};
  for (const v1::Job& job : jobs) {
    std::vector<std::string> names;
    for (const auto& hp : job.hyperparameters()) names.push_back(hp.name());
    // A protobuf map has no order: sort the labels.
    std::map<std::string, std::string> labels(job.labels().begin(), job.labels().end());
    std::vector<std::string> label_text;
    for (const auto& [key, value] : labels) label_text.push_back(absl::StrCat(key, "=", value));
    rows.push_back({std::string(absl::StripPrefix(job.name(), "jobs/")),
                    names.empty() ? "-" : absl::StrJoin(names, ","), absl::StrCat(job.version()),
                    label_text.empty() ? "-" : absl::StrJoin(label_text, ","), UpdateTime(job)});
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line += std::string(widths[c] - row[c].size() + 2, ' ');
    }
    PrintLine(output, line);
  }
}

}  // namespace

absl::Status List(client::Client* client, const ListOptions& options, const Output& output) {
  auto filter = ListFilter(options);
  if (!filter.ok()) return filter.status();
  std::vector<v1::Job> jobs;
  std::string token;
  do {
    auto page = client->ListJobs(options.page_size, token, *filter);
    if (!page.ok()) return page.status();
    for (const auto& job : page->jobs()) {
      if (output.json) {
        PrintMessage(output, job);  // JSON Lines as the pages come.
      } else {
        jobs.push_back(job);
      }
    }
    token = page->next_page_token();
  } while (!token.empty());
  if (!output.json) PrintJobTable(output, jobs);
  return absl::OkStatus();
}

absl::Status Delete(client::Client* client, const std::string& job_id, const Output& output) {
  if (auto s = client->DeleteJob(job_id); !s.ok()) return s;
  PrintLine(output, output.json ? "{}" : absl::StrCat("deleted ", client::ToJobName(job_id)));
  return absl::OkStatus();
}

namespace {

// The segment's change: exactly one of a new schedule, a scale factor or pinned values.
absl::Status FillSegmentChange(const UpdateOptions& options, v1::Segment* segment) {
  const int given = !options.schedule.empty() + !options.scale.empty() + !options.pin.empty();
  if (given != 1) {
    return absl::InvalidArgumentError("--schedule, --scale or --pin: give exactly one");
  }
  if (!options.schedule.empty()) {
    if (auto s = ParseJsonArg("--schedule", options.schedule, segment->mutable_schedule());
        !s.ok()) {
      return s;
    }
    segment->set_time(options.global_time ? v1::SEGMENT_TIME_GLOBAL : v1::SEGMENT_TIME_LOCAL);
    segment->set_anchor(options.anchor);
  } else if (!options.scale.empty()) {
    auto scale = ParseDoubles("--scale", options.scale);
    if (!scale.ok()) return scale.status();
    if (scale->size() != 1) return absl::InvalidArgumentError("--scale: one factor");
    segment->set_scale(scale->front());
  } else {
    auto pin = ParseDoubles("--pin", options.pin);
    if (!pin.ok()) return pin.status();
    segment->mutable_pin()->mutable_values()->Add(pin->begin(), pin->end());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Update(client::Client* client, const std::string& job_id, const UpdateOptions& options,
                    const Output& output) {
  v1::UpdateJobRequest request;
  request.set_name(job_id);
  request.set_etag(options.etag);
  request.set_allow_rewrite(options.allow_rewrite);
  auto* update = request.add_updates();
  update->set_hyperparameter(options.hyperparameter.empty() ? "lr" : options.hyperparameter);
  v1::Segment* segment = update->mutable_segment();
  if (options.from < 0) return absl::InvalidArgumentError("--from: is required");
  segment->set_effective_step(options.from);
  if (auto s = FillSegmentChange(options, segment); !s.ok()) return s;
  auto job = client->UpdateJob(request);
  if (!job.ok()) return job.status();
  PrintMessage(output, *job);
  return absl::OkStatus();
}

}  // namespace hpsched::cli
