// create, get, list, delete, update: a Job in, the Job out (indented JSON, or one line with
// --json).
#include "absl/strings/str_cat.h"
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

absl::Status List(client::Client* client, int page_size, const Output& output) {
  std::string token;
  do {
    auto page = client->ListJobs(page_size, token);
    if (!page.ok()) return page.status();
    for (const auto& job : page->jobs()) PrintMessage(output, job);
    token = page->next_page_token();
  } while (!token.empty());
  return absl::OkStatus();
}

absl::Status Delete(client::Client* client, const std::string& job_id, const Output& output) {
  if (auto s = client->DeleteJob(job_id); !s.ok()) return s;
  if (output.json) PrintLine(output, "{}");
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
