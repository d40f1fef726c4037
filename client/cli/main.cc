// hpsched: the command-line client.
//
//   hpsched create JOB_ID --schedule JSON --base 0.1[,0.01...] [--hyperparameter lr] | --job
//   JOB_JSON hpsched get JOB_ID | list | delete JOB_ID hpsched values JOB_ID --steps 0:100
//   [--hyperparameter lr] hpsched preview --schedule JSON --base 0.1,0.01 --steps 0:100 [--local]
//
// values and preview print one line per step: the step, then one value per series (hyperparameter,
// group), tab-separated, with 17 significant digits. The other commands print JSON.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/json_io.h"
#include "client/client.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "service/proto_convert.h"

ABSL_FLAG(std::string, target, "localhost:50051", "Server address.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(std::string, schedule, "", "A Schedule as JSON, inline or @file.");
ABSL_FLAG(std::string, job, "", "A Job as JSON, inline or @file (create).");
ABSL_FLAG(std::string, base, "1", "Base values, one per parameter group: 0.1,0.01.");
ABSL_FLAG(std::string, hyperparameter, "lr", "Hyperparameter name (create); filter (values).");
ABSL_FLAG(std::string, steps, "0:100", "Steps START:END (END excluded), or a single STEP.");
ABSL_FLAG(bool, local, false,
          "preview: evaluate in-process with the server's core, no server needed.");
ABSL_FLAG(int, page_size, 100, "list: jobs per page.");

namespace {

namespace v1 = ::hpsched::v1;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "hpsched: %s\n", status.ToString().c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int Usage() {
  std::fprintf(stderr, "%s\n", absl::ProgramUsageMessage().data());
  return 2;
}

// Prints rows step \t value... for `series` that all start at `start`.
void PrintRows(int64_t start,
               const std::vector<const google::protobuf::RepeatedField<double>*>& series) {
  if (series.empty()) return;
  std::string line;
  for (int i = 0; i < series[0]->size(); ++i) {
    line = absl::StrCat(start + i);
    for (const auto* values : series) absl::StrAppendFormat(&line, "\t%.17g", values->Get(i));
    std::puts(line.c_str());
  }
}

absl::Status Preview(hpsched::Client* client, bool local) {
  v1::PreviewRequest request;
  if (absl::GetFlag(FLAGS_schedule).empty())
    return absl::InvalidArgumentError("--schedule: is required");
  if (auto s = hpsched::cli::ParseJsonArg("--schedule", absl::GetFlag(FLAGS_schedule),
                                          request.mutable_schedule());
      !s.ok()) {
    return s;
  }
  auto bases = hpsched::cli::ParseDoubles("--base", absl::GetFlag(FLAGS_base));
  if (!bases.ok()) return bases.status();
  auto range = hpsched::cli::ParseStepRange("--steps", absl::GetFlag(FLAGS_steps));
  if (!range.ok()) return range.status();
  request.mutable_base_values()->Add(bases->begin(), bases->end());

  // Long ranges go in chunks no larger than a server accepts.
  const int64_t chunk = hpsched::core::kMaxValuesPerBatch / std::max<int64_t>(1, bases->size());
  for (int64_t offset = 0; offset < range->count; offset += chunk) {
    const int64_t start = range->start + offset;
    const int64_t count = std::min(chunk, range->count - offset);
    v1::PreviewResponse response;
    if (local) {
      if (auto s = hpsched::core::CheckBaseValues(*bases, "--base"); !s.ok()) return s;
      if (auto s = hpsched::core::CheckStepRange(
              start, std::min(count, hpsched::core::kMaxValuesPerQuery), "--steps", "--steps");
          !s.ok()) {
        return s;
      }
      auto nodes = hpsched::core::CompileStandalone(
          hpsched::service::ScheduleFromProto(request.schedule()), *bases, "schedule");
      if (!nodes.ok()) return nodes.status();
      std::vector<hpsched::core::EvalQuery> queries;
      for (size_t g = 0; g < nodes->size(); ++g) {
        auto* values = response.add_series()->mutable_values();
        values->Resize(static_cast<int>(count), 0.0);
        queries.push_back(
            {(*nodes)[g].get(), start, std::span<double>(values->mutable_data(), count)});
      }
      hpsched::core::EvaluateBatch(queries);
    } else {
      request.set_start_step(start);
      request.set_count(count);
      auto remote = client->Preview(request);
      if (!remote.ok()) return remote.status();
      response = *std::move(remote);
    }
    std::vector<const google::protobuf::RepeatedField<double>*> series;
    for (const auto& s : response.series()) series.push_back(&s.values());
    PrintRows(start, series);
  }
  return absl::OkStatus();
}

absl::Status Values(hpsched::Client* client, const std::string& job_id, bool filter) {
  auto range = hpsched::cli::ParseStepRange("--steps", absl::GetFlag(FLAGS_steps));
  if (!range.ok()) return range.status();
  v1::GetValuesRequest request;
  request.set_job(hpsched::ToJobName(job_id));
  if (filter) request.add_hyperparameters(absl::GetFlag(FLAGS_hyperparameter));
  const int64_t chunk = hpsched::core::kMaxValuesPerQuery;
  for (int64_t offset = 0; offset < range->count; offset += chunk) {
    request.set_step(range->start + offset);
    request.set_count(std::min(chunk, range->count - offset));
    auto response = client->GetValues(request);
    if (!response.ok()) return response.status();
    std::vector<const google::protobuf::RepeatedField<double>*> series;
    for (const auto& s : response->series()) series.push_back(&s.values());
    PrintRows(request.step(), series);
  }
  return absl::OkStatus();
}

absl::Status Create(hpsched::Client* client, const std::string& job_id) {
  v1::Job job;
  if (!absl::GetFlag(FLAGS_job).empty()) {
    if (auto s = hpsched::cli::ParseJsonArg("--job", absl::GetFlag(FLAGS_job), &job); !s.ok())
      return s;
  } else {
    if (absl::GetFlag(FLAGS_schedule).empty()) {
      return absl::InvalidArgumentError("--schedule or --job: one is required");
    }
    auto* hp = job.add_hyperparameters();
    hp->set_name(absl::GetFlag(FLAGS_hyperparameter));
    auto bases = hpsched::cli::ParseDoubles("--base", absl::GetFlag(FLAGS_base));
    if (!bases.ok()) return bases.status();
    hp->mutable_base_values()->Add(bases->begin(), bases->end());
    if (auto s = hpsched::cli::ParseJsonArg("--schedule", absl::GetFlag(FLAGS_schedule),
                                            hp->mutable_schedule());
        !s.ok()) {
      return s;
    }
  }
  auto created = client->CreateJob(job_id, job);
  if (!created.ok()) return created.status();
  std::puts(hpsched::cli::ToJson(*created).c_str());
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "hpsched COMMAND [ARGS] [FLAGS]\n"
      "  create JOB_ID --schedule JSON --base 0.1[,...] [--hyperparameter lr] | --job JSON\n"
      "  get JOB_ID | list | delete JOB_ID\n"
      "  values JOB_ID --steps 0:100 [--hyperparameter NAME]\n"
      "  preview --schedule JSON --base 0.1,0.01 --steps 0:100 [--local]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) return Usage();
  const std::string command = args[1];
  const std::string id = args.size() > 2 ? args[2] : "";
  hpsched::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  hpsched::Client client(options);

  absl::Status status;
  if (command == "preview") {
    status = Preview(&client, absl::GetFlag(FLAGS_local));
  } else if (command == "list") {
    std::string token;
    do {
      auto page = client.ListJobs(absl::GetFlag(FLAGS_page_size), token);
      if (!page.ok()) return Fail(page.status());
      for (const auto& job : page->jobs()) std::puts(hpsched::cli::ToJson(job).c_str());
      token = page->next_page_token();
    } while (!token.empty());
  } else if (id.empty() || args.size() > 3) {
    return Usage();
  } else if (command == "create") {
    status = Create(&client, id);
  } else if (command == "get") {
    auto job = client.GetJob(id);
    if (job.ok()) std::puts(hpsched::cli::ToJson(*job).c_str());
    status = job.status();
  } else if (command == "delete") {
    status = client.DeleteJob(id);
  } else if (command == "values") {
    status = Values(&client, id,
                    !absl::GetFlag(FLAGS_hyperparameter).empty() &&
                        absl::GetFlag(FLAGS_hyperparameter) != "all");
  } else {
    return Usage();
  }
  return status.ok() ? 0 : Fail(status);
}
