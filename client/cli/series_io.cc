#include "client/cli/series_io.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/local_preview.h"
#include "core/evaluator.h"
#include "core/job_plan.h"

namespace hpsched::cli {
namespace {

// Keys of the --json rows: "lr/0", or "value/0" for a preview.
std::vector<std::string> SeriesKeys(const google::protobuf::RepeatedPtrField<v1::Series>& series) {
  std::vector<std::string> keys;
  for (int i = 0; i < series.size(); ++i) {
    const v1::Series& s = series[i];
    keys.push_back(absl::StrCat(s.hyperparameter().empty() ? "value" : s.hyperparameter(), "/",
                                s.hyperparameter().empty() ? i : s.group()));
  }
  return keys;
}

}  // namespace

int ExitCode(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

void PrintLine(const Output& output, const std::string& line) {
  output.out->write(line.data(), static_cast<std::streamsize>(line.size()));
  output.out->put('\n');
}

void PrintMessage(const Output& output, const google::protobuf::Message& message) {
  PrintLine(output, output.json ? ToCompactJson(message) : ToJson(message));
}

void PrintRows(const Output& output, int64_t start,
               const google::protobuf::RepeatedPtrField<v1::Series>& series) {
  if (series.empty()) return;
  const std::vector<std::string> keys =
      output.json ? SeriesKeys(series) : std::vector<std::string>();
  std::vector<std::string> quoted;
  for (const auto& key : keys) quoted.push_back(JsonString(key));
  std::string line;
  for (int i = 0; i < series[0].values_size(); ++i) {
    if (output.json) {
      line = absl::StrCat("{\"step\":", start + i, ",\"values\":{");
      for (int s = 0; s < series.size(); ++s) {
        absl::StrAppend(&line, s == 0 ? "" : ",", quoted[s], ":", JsonNumber(series[s].values(i)));
      }
      line += "}}";
    } else {
      line = absl::StrCat(start + i);
      for (const auto& s : series) absl::StrAppendFormat(&line, "\t%.17g", s.values(i));
    }
    PrintLine(output, line);
  }
}

absl::StatusOr<SpecArgs> ParseSpecArgs(const SpecOptions& options) {
  SpecArgs args;
  if (options.schedule.empty()) return absl::InvalidArgumentError("--schedule: is required");
  if (auto s = ParseJsonArg("--schedule", options.schedule, &args.schedule); !s.ok()) return s;
  auto bases = ParseDoubles("--base", options.base);
  if (!bases.ok()) return bases.status();
  args.bases = *std::move(bases);
  auto range = ParseStepRange("--steps", options.steps);
  if (!range.ok()) return range.status();
  args.range = *range;
  if (!options.hyperparameter.empty()) args.hyperparameter = options.hyperparameter;
  return args;
}

absl::Status EvaluateSpec(client::Client* client, bool local, const SpecArgs& args,
                          const std::function<void(int64_t, const v1::PreviewResponse&)>& sink) {
  const int64_t groups = std::max<int64_t>(1, static_cast<int64_t>(args.bases.size()));
  const int64_t chunk =
      std::max<int64_t>(1, std::min(core::kMaxValuesPerQuery, core::kMaxValuesPerBatch / groups));
  v1::PreviewRequest request;
  *request.mutable_schedule() = args.schedule;
  request.mutable_base_values()->Add(args.bases.begin(), args.bases.end());
  request.set_hyperparameter(args.hyperparameter);
  for (int64_t offset = 0; offset < args.range.count; offset += chunk) {
    const int64_t start = args.range.start + offset;
    request.set_start_step(start);
    request.set_count(std::min(chunk, args.range.count - offset));
    auto response = local ? LocalPreview(request) : client->Preview(request);
    if (!response.ok()) return response.status();
    sink(start, *response);
  }
  return absl::OkStatus();
}

absl::Status ReadValues(client::Client* client, const std::string& job_id,
                        const std::vector<std::string>& hyperparameters, StepRange range,
                        const std::function<void(const v1::GetValuesResponse&)>& sink,
                        v1::PendingPolicy policy) {
  v1::GetValuesRequest request;
  request.set_job(client::ToJobName(job_id));
  request.set_pending_policy(policy);
  for (const auto& name : hyperparameters) request.add_hyperparameters(name);
  // The first chunk is small enough for the largest job (64 hyperparameters x 1024 groups); the
  // next ones fit the number of series it returned.
  int64_t chunk =
      std::max<int64_t>(1, core::kMaxValuesPerBatch /
                               static_cast<int64_t>(core::kMaxHyperparameters * core::kMaxGroups));
  for (int64_t offset = 0; offset < range.count;) {
    request.set_step(range.start + offset);
    request.set_count(std::min(chunk, range.count - offset));
    auto response = client->GetValues(request);
    if (!response.ok()) return response.status();
    sink(*response);
    offset += request.count();
    const int64_t series = std::max(1, response->series_size());
    chunk =
        std::max<int64_t>(1, std::min(core::kMaxValuesPerQuery, core::kMaxValuesPerBatch / series));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::cli
