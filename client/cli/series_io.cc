#include "client/cli/series_io.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
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

void RowPrinter::Print(int64_t start, const google::protobuf::RepeatedPtrField<v1::Series>& series,
                       std::optional<int64_t> provisional_from) {
  if (series.empty()) return;
  const std::vector<std::string> keys = SeriesKeys(series);
  if (!output_.json && !header_printed_) {
    PrintLine(output_, absl::StrCat("step\t", absl::StrJoin(keys, "\t")));
  }
  header_printed_ = true;
  std::vector<std::string> quoted;
  if (output_.json) {
    for (const auto& key : keys) quoted.push_back(JsonString(key));
  }
  std::string line;
  for (int i = 0; i < series[0].values_size(); ++i) {
    const bool provisional = provisional_from.has_value() && start + i >= *provisional_from;
    if (output_.json) {
      line = absl::StrCat("{\"step\":", start + i, ",\"values\":{");
      for (int s = 0; s < series.size(); ++s) {
        absl::StrAppend(&line, s == 0 ? "" : ",", quoted[s], ":", JsonNumber(series[s].values(i)));
      }
      line += provisional ? "},\"provisional\":true}" : "}}";
    } else {
      line = absl::StrCat(start + i);
      for (const auto& s : series) absl::StrAppend(&line, "\t", TextNumber(s.values(i)));
      if (provisional) line += "\tprovisional";
    }
    PrintLine(output_, line);
  }
}

absl::StatusOr<v1::PendingPolicy> ParsePendingPolicy(absl::string_view text) {
  if (text == "provisional_now") return v1::PENDING_POLICY_PROVISIONAL_NOW;
  if (text == "wait") return v1::PENDING_POLICY_UNSPECIFIED;
  if (text == "wait_then_provisional") return v1::PENDING_POLICY_WAIT_THEN_PROVISIONAL;
  return absl::InvalidArgumentError(absl::StrCat(
      "--pending_policy: must be provisional_now, wait or wait_then_provisional, got \"", text,
      "\""));
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
    if (!response.ok()) {
      if (response.status().code() == absl::StatusCode::kDeadlineExceeded &&
          policy == v1::PENDING_POLICY_UNSPECIFIED) {
        return absl::DeadlineExceededError(absl::StrCat(
            "steps from ", request.step(), ": ", response.status().message(),
            " (these values wait for metric reports; --pending_policy=provisional_now prints "
            "them at once, marked provisional)"));
      }
      return response.status();
    }
    sink(*response);
    offset += request.count();
    const int64_t series = std::max(1, response->series_size());
    chunk =
        std::max<int64_t>(1, std::min(core::kMaxValuesPerQuery, core::kMaxValuesPerBatch / series));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::cli
