// hpsched: the command-line client.
//
//   hpsched create JOB_ID --schedule JSON --base 0.1[,0.01...] [--hyperparameter lr] | --job JSON
//   hpsched get JOB_ID | list | delete JOB_ID
//   hpsched values JOB_ID --steps 0:100 [--hyperparameter lr|all]
//   hpsched preview --schedule JSON --base 0.1,0.01 --steps 0:100 [--local] [--hyperparameter lr]
//   hpsched plot JOB_ID --steps 0:1000 [--hyperparameter NAME[,NAME]] [--svg FILE] [--log]
//   hpsched plot --schedule JSON --base 0.1,0.01 --steps 0:300 [--local] [--svg FILE] [--log]
//   hpsched health [--service NAME]
//   hpsched update JOB_ID --from STEP (--schedule JSON [--global_time] [--anchor] | --scale F |
//                  --pin V[,V...]) [--hyperparameter lr] [--etag E] [--allow_rewrite]
//   hpsched report JOB_ID --step STEP --metric name=value[,name=value] [--next_step N]
//   hpsched watch JOB_ID [--count N] [--watch_timeout 30s] [--poll --interval 1s]
//
// Output without --json: values and preview print one line per step: the step, then one value per
// series (hyperparameter, group), tab-separated, with 17 significant digits. create and get print
// the Job as indented JSON, list one such Job per job, delete nothing. plot draws braille curves on
// the terminal, or writes an SVG with --svg. health prints the serving status. watch prints a line
// per event: "TIME initial|modified|deleted jobs/ID version=V etag=E", a modified one from the
// stream followed by "change=updated|plateau_reduced effective_step=S". update prints the Job,
// report the ReportMetricsResponse.
//
// With --json, every command prints JSON on stdout and errors go to stderr as one JSON object
// {"code":"NOT_FOUND","message":"..."}, with the same exit codes:
//   values, preview  one object per line (JSON Lines): {"step":N,"values":{"lr/0":v,"lr/1":v}};
//                    keys are "HYPERPARAMETER/GROUP", "value/GROUP" for preview; numbers are the
//                    shortest text that reads back as the same double, null if not finite
//   create, get,     the Job on one line (protobuf JSON mapping, proto field names)
//   update
//   report           the ReportMetricsResponse on one line
//   list             one Job per line (JSON Lines)
//   delete           {}
//   health           {"status":"SERVING"}
//   watch            one event per line: {"event":"initial","time":"...","job":{...}}, modified
//                    ones with "change" and "effective_step";
//                    {"event":"deleted","time":"...","name":"jobs/ID"}
//   plot             one object: title, subtitle, x_min, x_max, log_y, and per panel the y label,
//                    the series with their points [[step,value],...] (every step for ranges of up
//                    to 4096 steps; beyond, the first, lowest, highest and last of each of 4096
//                    buckets) and the marks [{"step":5,"kind":"milestone","label":"milestone"}]
//
// Exit codes: 0 success; 2 invalid arguments (usage, flag values hpsched checks, INVALID_ARGUMENT
// from the server); 1 any other error (and a flag Abseil cannot parse, with Abseil's message).
// health exits 0 when SERVING and 1 otherwise, whatever the reason (a container HEALTHCHECK must
// not see 2). watch exits 0 when the job is deleted, after --count changes, or at the end of
// --watch_timeout without --count; DEADLINE_EXCEEDED (1) when --count changes do not come within
// --watch_timeout.
#include <grpcpp/create_channel.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/cli/downsample.h"
#include "client/cli/health.h"
#include "client/cli/job_watcher.h"
#include "client/cli/json_io.h"
#include "client/cli/plot_marks.h"
#include "client/cli/plot_model.h"
#include "client/cli/svg_plot.h"
#include "client/cli/terminal_plot.h"
#include "client/client.h"
#include "codec/proto_convert.h"
#include "core/evaluator.h"
#include "core/job_plan.h"

ABSL_FLAG(std::string, target, "localhost:50051", "Server address.");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(10), "Deadline of each call.");
ABSL_FLAG(std::string, token_file, "",
          "File holding a bearer token for servers with auth (the HPSCHED_TOKEN environment "
          "variable works too; "
          "a token is never taken from the command line, where other users could read it).");
ABSL_FLAG(bool, tls, false, "Connect with TLS (implied by --tls_ca, --tls_cert, --tls_key).");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA certificates to verify the server (default: the system roots).");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate chain, for mutual TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM client private key, for mutual TLS.");
ABSL_FLAG(std::string, schedule, "", "A Schedule as JSON, inline or @file.");
ABSL_FLAG(std::string, job, "", "A Job as JSON, inline or @file (create).");
ABSL_FLAG(std::string, base, "1", "Base values, one per parameter group: 0.1,0.01.");
ABSL_FLAG(std::string, hyperparameter, "",
          "create: the hyperparameter's name (default lr). values: the one to print (default lr; "
          "'all' for every one). plot JOB_ID: those to draw, comma-separated (default: all). "
          "preview, plot --schedule: the one the schedule is for (default lr; cyclic and one_cycle "
          "give the momentum curve for momentum and beta1).");
ABSL_FLAG(std::string, steps, "0:100", "Steps START:END (END excluded), or a single STEP.");
ABSL_FLAG(bool, local, false,
          "preview, plot: evaluate in-process with the server's core, no server needed.");
ABSL_FLAG(int, page_size, 100, "list: jobs per page.");
ABSL_FLAG(bool, json, false,
          "Machine-readable output: JSON on stdout, errors as a JSON object on stderr.");
ABSL_FLAG(std::string, svg, "", "plot: write an SVG to this file (--svg=- for stdout).");
ABSL_FLAG(int, width, 0,
          "plot: width in pixels for --svg (default 900), in characters on the terminal "
          "(default: the terminal's width, or 80).");
ABSL_FLAG(int, height, 0,
          "plot: height in pixels for --svg (default 560), in rows of each chart on the terminal "
          "(default 16).");
ABSL_FLAG(bool, log, false, "plot: logarithmic value axis (values <= 0 are left out).");
ABSL_FLAG(std::string, title, "",
          "plot: the title (default: the job's name or the schedule's kind).");
ABSL_FLAG(std::string, color, "auto", "plot: ANSI colours on the terminal: auto, always or never.");
ABSL_FLAG(std::string, service, "",
          "health: the service to check, e.g. hpsched.v1.SchedulerService (default: the server).");
ABSL_FLAG(int64_t, from, -1, "update: the step the change takes effect at.");
ABSL_FLAG(std::string, scale, "", "update: scale the values from --from on by this factor.");
ABSL_FLAG(std::string, pin, "", "update: pin the values from --from on: one, or one per group.");
ABSL_FLAG(bool, global_time, false,
          "update: the new --schedule sees global steps (default: local).");
ABSL_FLAG(bool, anchor, false,
          "update: the new --schedule starts from the value the old one had at --from.");
ABSL_FLAG(std::string, etag, "", "update: fail with ABORTED unless the job still has this etag.");
ABSL_FLAG(bool, allow_rewrite, false, "update: allow changing steps already served.");
ABSL_FLAG(int64_t, step, -1, "report: the step after which the metrics were measured.");
ABSL_FLAG(std::string, metric, "", "report: metric values, name=value[,name=value].");
ABSL_FLAG(int64_t, next_step, -2,
          "report: for announced metrics, the step of the next report (-1: none follows).");
ABSL_FLAG(bool, poll, false,
          "watch: poll GetJob every --interval instead of following the WatchJob stream.");
ABSL_FLAG(absl::Duration, interval, absl::Seconds(1), "watch --poll: time between two polls.");
ABSL_FLAG(int, count, 0, "watch: exit after this many changes (0: no limit).");
ABSL_FLAG(absl::Duration, watch_timeout, absl::ZeroDuration(),
          "watch: stop after this long (0: never). With --count, failing if the changes have not "
          "all come.");

namespace {

namespace v1 = ::hpsched::v1;
namespace cli = ::hpsched::cli;

// Buckets of the plot data: ranges up to this many steps are kept exactly.
constexpr int kPlotBuckets = 4096;
// Longest range plot reads (it reads every step, so spikes are never missed).
constexpr int64_t kMaxPlotSteps = 10'000'000;

int ExitCode(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int Fail(const absl::Status& status) {
  if (absl::GetFlag(FLAGS_json)) {
    std::fprintf(stderr, "%s\n", cli::StatusToJson(status).c_str());
  } else {
    std::fprintf(stderr, "hpsched: %s\n", status.ToString().c_str());
  }
  return ExitCode(status);
}

int Usage() {
  if (absl::GetFlag(FLAGS_json)) {
    std::fprintf(stderr, "%s\n",
                 cli::StatusToJson(absl::InvalidArgumentError(
                                       absl::StrCat("usage: ", absl::ProgramUsageMessage())))
                     .c_str());
  } else {
    std::fprintf(stderr, "%s\n", absl::ProgramUsageMessage().data());
  }
  return 2;
}

void PrintLine(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
}

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

// Prints rows for `series` that all start at `start`: step \t value... or, with --json,
// {"step":N,"values":{KEY:value,...}}.
void PrintRows(int64_t start, const google::protobuf::RepeatedPtrField<v1::Series>& series) {
  if (series.empty()) return;
  const bool json = absl::GetFlag(FLAGS_json);
  const std::vector<std::string> keys = json ? SeriesKeys(series) : std::vector<std::string>();
  std::vector<std::string> quoted;
  for (const auto& key : keys) quoted.push_back(cli::JsonString(key));
  std::string line;
  for (int i = 0; i < series[0].values_size(); ++i) {
    if (json) {
      line = absl::StrCat("{\"step\":", start + i, ",\"values\":{");
      for (int s = 0; s < series.size(); ++s) {
        absl::StrAppend(&line, s == 0 ? "" : ",", quoted[s], ":",
                        cli::JsonNumber(series[s].values(i)));
      }
      line += "}}";
    } else {
      line = absl::StrCat(start + i);
      for (const auto& s : series) absl::StrAppendFormat(&line, "\t%.17g", s.values(i));
    }
    PrintLine(line);
  }
}

// The schedule, base values, steps and hyperparameter of --schedule, --base, --steps and
// --hyperparameter.
struct SpecArgs {
  v1::Schedule schedule;
  std::vector<double> bases;
  cli::StepRange range;
  std::string hyperparameter = "lr";
};

absl::StatusOr<SpecArgs> ParseSpecArgs() {
  SpecArgs args;
  if (absl::GetFlag(FLAGS_schedule).empty()) {
    return absl::InvalidArgumentError("--schedule: is required");
  }
  if (auto s = cli::ParseJsonArg("--schedule", absl::GetFlag(FLAGS_schedule), &args.schedule);
      !s.ok()) {
    return s;
  }
  auto bases = cli::ParseDoubles("--base", absl::GetFlag(FLAGS_base));
  if (!bases.ok()) return bases.status();
  args.bases = *std::move(bases);
  auto range = cli::ParseStepRange("--steps", absl::GetFlag(FLAGS_steps));
  if (!range.ok()) return range.status();
  args.range = *range;
  if (!absl::GetFlag(FLAGS_hyperparameter).empty()) {
    args.hyperparameter = absl::GetFlag(FLAGS_hyperparameter);
  }
  return args;
}

// Evaluates a spec over its steps, in chunks no larger than a server accepts, with Preview or
// in-process (`local`); calls `sink` with the first step and the series of each chunk.
absl::Status EvaluateSpec(hpsched::Client* client, bool local, const SpecArgs& args,
                          const std::function<void(int64_t, const v1::PreviewResponse&)>& sink) {
  const int64_t groups = std::max<int64_t>(1, static_cast<int64_t>(args.bases.size()));
  const int64_t chunk = std::max<int64_t>(
      1, std::min(hpsched::core::kMaxValuesPerQuery, hpsched::core::kMaxValuesPerBatch / groups));
  std::vector<hpsched::core::NodePtr> nodes;
  if (local) {
    if (auto s = hpsched::core::CheckBaseValues(args.bases, "--base"); !s.ok()) return s;
    auto compiled =
        hpsched::core::CompileStandalone(hpsched::codec::ScheduleFromProto(args.schedule),
                                         args.bases, "schedule", args.hyperparameter);
    if (!compiled.ok()) return compiled.status();
    nodes = *std::move(compiled);
  }
  v1::PreviewRequest request;
  *request.mutable_schedule() = args.schedule;
  request.mutable_base_values()->Add(args.bases.begin(), args.bases.end());
  request.set_hyperparameter(args.hyperparameter);
  for (int64_t offset = 0; offset < args.range.count; offset += chunk) {
    const int64_t start = args.range.start + offset;
    const int64_t count = std::min(chunk, args.range.count - offset);
    v1::PreviewResponse response;
    if (local) {
      if (auto s = hpsched::core::CheckStepRange(start, count, "--steps", "--steps"); !s.ok()) {
        return s;
      }
      std::vector<hpsched::core::EvalQuery> queries;
      for (size_t g = 0; g < nodes.size(); ++g) {
        v1::Series* series = response.add_series();
        series->set_group(static_cast<int>(g));
        auto* values = series->mutable_values();
        values->Resize(static_cast<int>(count), 0.0);
        queries.push_back(
            {nodes[g].get(), start, std::span<double>(values->mutable_data(), count)});
      }
      hpsched::core::EvaluateBatch(queries);
    } else {
      request.set_start_step(start);
      request.set_count(count);
      auto remote = client->Preview(request);
      if (!remote.ok()) return remote.status();
      response = *std::move(remote);
    }
    sink(start, response);
  }
  return absl::OkStatus();
}

absl::Status Preview(hpsched::Client* client, bool local) {
  auto args = ParseSpecArgs();
  if (!args.ok()) return args.status();
  return EvaluateSpec(client, local, *args, [](int64_t start, const v1::PreviewResponse& response) {
    PrintRows(start, response.series());
  });
}

// Reads a job's values over `range` in chunks within the server's limits (at most
// kMaxValuesPerQuery steps and kMaxValuesPerBatch values per response); calls `sink` per chunk.
// Reads a job's values in chunks. `policy` says what to do with values that wait for metric
// reports: `values` waits for them (the default policy), `plot` draws what is known now.
absl::Status ReadValues(hpsched::Client* client, const std::string& job_id,
                        const std::vector<std::string>& hyperparameters, cli::StepRange range,
                        const std::function<void(const v1::GetValuesResponse&)>& sink,
                        v1::PendingPolicy policy = v1::PENDING_POLICY_UNSPECIFIED) {
  v1::GetValuesRequest request;
  request.set_job(hpsched::ToJobName(job_id));
  request.set_pending_policy(policy);
  for (const auto& name : hyperparameters) request.add_hyperparameters(name);
  // The first chunk is small enough for the largest job (64 hyperparameters x 1024 groups); the
  // next ones fit the number of series it returned.
  int64_t chunk = std::max<int64_t>(
      1, hpsched::core::kMaxValuesPerBatch /
             static_cast<int64_t>(hpsched::core::kMaxHyperparameters * hpsched::core::kMaxGroups));
  for (int64_t offset = 0; offset < range.count;) {
    request.set_step(range.start + offset);
    request.set_count(std::min(chunk, range.count - offset));
    auto response = client->GetValues(request);
    if (!response.ok()) return response.status();
    sink(*response);
    offset += request.count();
    const int64_t series = std::max(1, response->series_size());
    chunk = std::max<int64_t>(
        1, std::min(hpsched::core::kMaxValuesPerQuery, hpsched::core::kMaxValuesPerBatch / series));
  }
  return absl::OkStatus();
}

absl::Status Values(hpsched::Client* client, const std::string& job_id) {
  auto range = cli::ParseStepRange("--steps", absl::GetFlag(FLAGS_steps));
  if (!range.ok()) return range.status();
  std::string name = absl::GetFlag(FLAGS_hyperparameter);
  if (name.empty()) name = "lr";
  std::vector<std::string> filter;
  if (name != "all") filter.push_back(name);
  return ReadValues(client, job_id, filter, *range, [](const v1::GetValuesResponse& response) {
    PrintRows(response.start_step(), response.series());
  });
}

absl::Status Create(hpsched::Client* client, const std::string& job_id) {
  v1::Job job;
  if (!absl::GetFlag(FLAGS_job).empty()) {
    if (auto s = cli::ParseJsonArg("--job", absl::GetFlag(FLAGS_job), &job); !s.ok()) return s;
  } else {
    if (absl::GetFlag(FLAGS_schedule).empty()) {
      return absl::InvalidArgumentError("--schedule or --job: one is required");
    }
    auto* hp = job.add_hyperparameters();
    const std::string name = absl::GetFlag(FLAGS_hyperparameter);
    hp->set_name(name.empty() ? "lr" : name);
    auto bases = cli::ParseDoubles("--base", absl::GetFlag(FLAGS_base));
    if (!bases.ok()) return bases.status();
    hp->mutable_base_values()->Add(bases->begin(), bases->end());
    if (auto s =
            cli::ParseJsonArg("--schedule", absl::GetFlag(FLAGS_schedule), hp->mutable_schedule());
        !s.ok()) {
      return s;
    }
  }
  auto created = client->CreateJob(job_id, job);
  if (!created.ok()) return created.status();
  PrintLine(absl::GetFlag(FLAGS_json) ? cli::ToCompactJson(*created) : cli::ToJson(*created));
  return absl::OkStatus();
}

absl::Status Update(hpsched::Client* client, const std::string& job_id) {
  v1::UpdateJobRequest request;
  request.set_name(job_id);
  request.set_etag(absl::GetFlag(FLAGS_etag));
  request.set_allow_rewrite(absl::GetFlag(FLAGS_allow_rewrite));
  auto* update = request.add_updates();
  const std::string name = absl::GetFlag(FLAGS_hyperparameter);
  update->set_hyperparameter(name.empty() ? "lr" : name);
  v1::Segment* segment = update->mutable_segment();
  if (absl::GetFlag(FLAGS_from) < 0) return absl::InvalidArgumentError("--from: is required");
  segment->set_effective_step(absl::GetFlag(FLAGS_from));
  const int given = !absl::GetFlag(FLAGS_schedule).empty() + !absl::GetFlag(FLAGS_scale).empty() +
                    !absl::GetFlag(FLAGS_pin).empty();
  if (given != 1) {
    return absl::InvalidArgumentError("--schedule, --scale or --pin: give exactly one");
  }
  if (!absl::GetFlag(FLAGS_schedule).empty()) {
    if (auto s = cli::ParseJsonArg("--schedule", absl::GetFlag(FLAGS_schedule),
                                   segment->mutable_schedule());
        !s.ok()) {
      return s;
    }
    segment->set_time(absl::GetFlag(FLAGS_global_time) ? v1::SEGMENT_TIME_GLOBAL
                                                       : v1::SEGMENT_TIME_LOCAL);
    segment->set_anchor(absl::GetFlag(FLAGS_anchor));
  } else if (!absl::GetFlag(FLAGS_scale).empty()) {
    auto scale = cli::ParseDoubles("--scale", absl::GetFlag(FLAGS_scale));
    if (!scale.ok()) return scale.status();
    if (scale->size() != 1) return absl::InvalidArgumentError("--scale: one factor");
    segment->set_scale(scale->front());
  } else {
    auto pin = cli::ParseDoubles("--pin", absl::GetFlag(FLAGS_pin));
    if (!pin.ok()) return pin.status();
    segment->mutable_pin()->mutable_values()->Add(pin->begin(), pin->end());
  }
  auto job = client->UpdateJob(request);
  if (!job.ok()) return job.status();
  PrintLine(absl::GetFlag(FLAGS_json) ? cli::ToCompactJson(*job) : cli::ToJson(*job));
  return absl::OkStatus();
}

absl::Status Report(hpsched::Client* client, const std::string& job_id) {
  v1::ReportMetricsRequest request;
  request.set_job(hpsched::ToJobName(job_id));
  if (absl::GetFlag(FLAGS_step) < 0) return absl::InvalidArgumentError("--step: is required");
  request.set_step(absl::GetFlag(FLAGS_step));
  if (absl::GetFlag(FLAGS_next_step) != -2) request.set_next_step(absl::GetFlag(FLAGS_next_step));
  for (absl::string_view item :
       absl::StrSplit(absl::GetFlag(FLAGS_metric), ',', absl::SkipEmpty())) {
    const std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    double value = 0;
    if (kv.first.empty() || !absl::SimpleAtod(kv.second, &value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metric: expected name=value[,name=value], got \"", item, "\""));
    }
    (*request.mutable_metrics())[kv.first] = value;
  }
  auto response = client->ReportMetrics(request);
  if (!response.ok()) return response.status();
  PrintLine(absl::GetFlag(FLAGS_json) ? cli::ToCompactJson(*response) : cli::ToJson(*response));
  return absl::OkStatus();
}

absl::Status Get(hpsched::Client* client, const std::string& job_id) {
  auto job = client->GetJob(job_id);
  if (!job.ok()) return job.status();
  PrintLine(absl::GetFlag(FLAGS_json) ? cli::ToCompactJson(*job) : cli::ToJson(*job));
  return absl::OkStatus();
}

absl::Status List(hpsched::Client* client) {
  std::string token;
  do {
    auto page = client->ListJobs(absl::GetFlag(FLAGS_page_size), token);
    if (!page.ok()) return page.status();
    for (const auto& job : page->jobs()) {
      PrintLine(absl::GetFlag(FLAGS_json) ? cli::ToCompactJson(job) : cli::ToJson(job));
    }
    token = page->next_page_token();
  } while (!token.empty());
  return absl::OkStatus();
}

absl::Status Delete(hpsched::Client* client, const std::string& job_id) {
  if (auto s = client->DeleteJob(job_id); !s.ok()) return s;
  if (absl::GetFlag(FLAGS_json)) PrintLine("{}");
  return absl::OkStatus();
}

// health: 0 when SERVING, 1 otherwise (never 2: Docker reserves it).
absl::StatusOr<std::string> ReadWholeFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Target, deadline, token and TLS settings from the flags.
absl::StatusOr<hpsched::ClientOptions> ClientOptionsFromFlags() {
  hpsched::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  options.timeout = absl::GetFlag(FLAGS_timeout);
  if (const std::string path = absl::GetFlag(FLAGS_token_file); !path.empty()) {
    auto token = ReadWholeFile("--token_file", path);
    if (!token.ok()) return token.status();
    options.bearer_token = std::string(absl::StripAsciiWhitespace(*token));
  } else if (const char* token = std::getenv("HPSCHED_TOKEN"); token != nullptr) {
    options.bearer_token = token;
  }
  const std::pair<const char*, std::string*> files[] = {{"--tls_ca", &options.tls_ca_pem},
                                                        {"--tls_cert", &options.tls_cert_pem},
                                                        {"--tls_key", &options.tls_key_pem}};
  const std::string paths[] = {absl::GetFlag(FLAGS_tls_ca), absl::GetFlag(FLAGS_tls_cert),
                               absl::GetFlag(FLAGS_tls_key)};
  options.use_tls = absl::GetFlag(FLAGS_tls);
  for (size_t i = 0; i < 3; ++i) {
    if (paths[i].empty()) continue;
    auto pem = ReadWholeFile(files[i].first, paths[i]);
    if (!pem.ok()) return pem.status();
    *files[i].second = *std::move(pem);
    options.use_tls = true;
  }
  return options;
}

int Health(const hpsched::ClientOptions& options) {
  // The credentials every other command uses (health is open to callers without a token).
  auto channel = grpc::CreateChannel(options.target, hpsched::ChannelCredentials(options));
  auto status =
      cli::CheckHealth(channel, absl::GetFlag(FLAGS_service), absl::GetFlag(FLAGS_timeout));
  if (!status.ok()) {
    Fail(status.status());
    return 1;
  }
  PrintLine(absl::GetFlag(FLAGS_json) ? absl::StrCat("{\"status\":", cli::JsonString(*status), "}")
                                      : *status);
  return *status == "SERVING" ? 0 : 1;
}

absl::Status Watch(hpsched::Client* client, const std::string& job_id) {
  if (absl::GetFlag(FLAGS_count) < 0) return absl::InvalidArgumentError("--count: must be >= 0");
  if (absl::GetFlag(FLAGS_interval) <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--interval: must be > 0");
  }
  cli::PollingJobWatcher polling([client, job_id] { return client->GetJob(job_id); },
                                 absl::GetFlag(FLAGS_interval));
  cli::StreamingJobWatcher streaming(
      [client, job_id](absl::Time deadline) { return client->WatchJob(job_id, deadline); });
  cli::JobWatcher& watcher =
      absl::GetFlag(FLAGS_poll) ? static_cast<cli::JobWatcher&>(polling) : streaming;
  const bool json = absl::GetFlag(FLAGS_json);
  return cli::RunWatch(watcher, absl::GetFlag(FLAGS_count), absl::GetFlag(FLAGS_watch_timeout),
                       [json](const cli::WatchEvent& event) {
                         PrintLine(json ? cli::WatchEventJson(event) : cli::WatchEventText(event));
                         std::fflush(stdout);
                       });
}

// Events of the job's history that become marks: the effective step of every UpdateJob segment and
// every plateau reduction.
std::vector<cli::JobEvent> JobHistoryEvents(const v1::Job& job) {
  std::vector<cli::JobEvent> events;
  for (const v1::Hyperparameter& hp : job.hyperparameters()) {
    for (const v1::Segment& segment : hp.segments()) {
      events.push_back(cli::JobEvent{segment.effective_step(), cli::MarkKind::kUpdate});
    }
    for (int64_t step : hp.plateau_reductions()) {
      events.push_back(cli::JobEvent{step, cli::MarkKind::kPlateauReduction});
    }
  }
  return events;
}

absl::StatusOr<cli::PlotModel> JobPlot(hpsched::Client* client, const std::string& job_id,
                                       cli::StepRange range) {
  auto job = client->GetJob(job_id);
  if (!job.ok()) return job.status();
  std::vector<std::string> names;
  const std::string filter = absl::GetFlag(FLAGS_hyperparameter);
  if (!filter.empty() && filter != "all") {
    names = absl::StrSplit(filter, ',', absl::SkipEmpty());
  }
  cli::PlotModel model;
  model.title = absl::GetFlag(FLAGS_title).empty() ? job->name() : absl::GetFlag(FLAGS_title);
  model.subtitle = absl::StrCat("steps ", range.start, ":", range.start + range.count, ", version ",
                                job->version());
  model.x_min = static_cast<double>(range.start);
  model.x_max = static_cast<double>(range.start + range.count - 1);
  const double lo = model.x_min;
  const double hi = static_cast<double>(range.start + range.count);
  const std::vector<cli::Mark> event_marks = cli::EventMarks(JobHistoryEvents(*job), lo, hi);
  std::vector<cli::M4Reducer> reducers;
  for (const auto& hp : job->hyperparameters()) {
    if (!names.empty() && std::find(names.begin(), names.end(), hp.name()) == names.end()) {
      continue;
    }
    cli::PlotPanel panel;
    panel.y_label = hp.name();
    for (int g = 0; g < hp.base_values_size(); ++g) {
      panel.series.push_back({absl::StrCat(hp.name(), " group ", g), hp.name(), g, {}});
      reducers.emplace_back(model.x_min, model.x_max, kPlotBuckets);
    }
    panel.marks = cli::MergeMarks(cli::ScheduleMarks(hp.schedule(), lo, hi), event_marks);
    model.panels.push_back(std::move(panel));
  }
  // GetValues returns the series in the job's order of hyperparameters, then groups: the order of
  // the panels and their series. Unknown names are the server's INVALID_ARGUMENT.
  auto status = ReadValues(
      client, job_id, names, range,
      [&](const v1::GetValuesResponse& r) {
        for (int s = 0; s < r.series_size() && s < static_cast<int>(reducers.size()); ++s) {
          for (int i = 0; i < r.series(s).values_size(); ++i) {
            reducers[s].Add(static_cast<double>(r.start_step() + i), r.series(s).values(i));
          }
        }
      },
      v1::PENDING_POLICY_PROVISIONAL_NOW);  // A running plateau job: draw what is known now.
  if (!status.ok()) return status;
  size_t s = 0;
  for (auto& panel : model.panels) {
    for (auto& series : panel.series) series.points = reducers[s++].Points();
  }
  return model;
}

absl::StatusOr<cli::PlotModel> SpecPlot(hpsched::Client* client, bool local) {
  auto args = ParseSpecArgs();
  if (!args.ok()) return args.status();
  if (args->range.count > kMaxPlotSteps) {
    return absl::InvalidArgumentError(
        absl::StrCat("--steps: plot reads every step, at most ", kMaxPlotSteps));
  }
  cli::PlotModel model;
  model.title = absl::GetFlag(FLAGS_title).empty() ? cli::ScheduleTitle(args->schedule)
                                                   : absl::GetFlag(FLAGS_title);
  std::vector<double> bases = args->bases;
  if (bases.empty()) bases.push_back(1.0);  // What Preview does.
  std::vector<std::string> base_text;
  for (double b : bases) base_text.push_back(absl::StrFormat("%g", b));
  model.subtitle =
      absl::StrCat("steps ", args->range.start, ":", args->range.start + args->range.count,
                   ", base ", absl::StrJoin(base_text, ", "), local ? " (local)" : "");
  model.x_min = static_cast<double>(args->range.start);
  model.x_max = static_cast<double>(args->range.start + args->range.count - 1);
  cli::PlotPanel panel;
  panel.y_label = "value";
  std::vector<cli::M4Reducer> reducers;
  for (size_t g = 0; g < bases.size(); ++g) {
    panel.series.push_back(
        {absl::StrCat("group ", g, " (base ", base_text[g], ")"), "", static_cast<int>(g), {}});
    reducers.emplace_back(model.x_min, model.x_max, kPlotBuckets);
  }
  panel.marks = cli::ScheduleMarks(args->schedule, model.x_min, model.x_max + 1);
  auto status =
      EvaluateSpec(client, local, *args, [&](int64_t start, const v1::PreviewResponse& response) {
        for (int s = 0; s < response.series_size() && s < static_cast<int>(reducers.size()); ++s) {
          for (int i = 0; i < response.series(s).values_size(); ++i) {
            reducers[s].Add(static_cast<double>(start + i), response.series(s).values(i));
          }
        }
      });
  if (!status.ok()) return status;
  for (size_t g = 0; g < reducers.size(); ++g) panel.series[g].points = reducers[g].Points();
  model.panels.push_back(std::move(panel));
  return model;
}

int TerminalWidth() {
  winsize size{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  int columns = 0;
  if (const char* env = std::getenv("COLUMNS");
      env != nullptr && absl::SimpleAtoi(env, &columns) && columns > 0) {
    return columns;
  }
  return 80;
}

absl::StatusOr<bool> UseColor() {
  const std::string mode = absl::GetFlag(FLAGS_color);
  if (mode == "always") return true;
  if (mode == "never") return false;
  if (mode != "auto") {
    return absl::InvalidArgumentError(
        absl::StrCat("--color: must be auto, always or never, got \"", mode, "\""));
  }
  const char* term = std::getenv("TERM");
  return isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr &&
         !(term != nullptr && std::string(term) == "dumb");
}

absl::Status Plot(hpsched::Client* client, const std::string& job_id) {
  const int width = absl::GetFlag(FLAGS_width);
  const int height = absl::GetFlag(FLAGS_height);
  if (width < 0 || height < 0) {
    return absl::InvalidArgumentError("--width, --height: must be >= 0 (0: the default)");
  }
  auto color = UseColor();
  if (!color.ok()) return color.status();
  absl::StatusOr<cli::PlotModel> model;
  if (!job_id.empty()) {
    if (!absl::GetFlag(FLAGS_schedule).empty()) {
      return absl::InvalidArgumentError("plot: give a JOB_ID or --schedule, not both");
    }
    auto range = cli::ParseStepRange("--steps", absl::GetFlag(FLAGS_steps));
    if (!range.ok()) return range.status();
    if (range->count > kMaxPlotSteps) {
      return absl::InvalidArgumentError(
          absl::StrCat("--steps: plot reads every step, at most ", kMaxPlotSteps));
    }
    model = JobPlot(client, job_id, *range);
  } else {
    model = SpecPlot(client, absl::GetFlag(FLAGS_local));
  }
  if (!model.ok()) return model.status();
  model->log_y = absl::GetFlag(FLAGS_log);

  const std::string svg_path = absl::GetFlag(FLAGS_svg);
  if (!svg_path.empty()) {
    cli::SvgOptions options;
    if (width > 0) options.width = width;
    if (height > 0) options.height = height;
    const std::string svg = cli::RenderSvg(*model, options);
    if (svg_path == "-") {
      std::fwrite(svg.data(), 1, svg.size(), stdout);
    } else {
      std::ofstream out(svg_path, std::ios::binary | std::ios::trunc);
      out << svg;
      out.close();
      if (!out) {
        return absl::FailedPreconditionError(absl::StrCat("--svg: cannot write ", svg_path));
      }
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    PrintLine(cli::PlotToJson(*model));
  } else if (svg_path.empty()) {
    cli::TerminalOptions options;
    options.width = width > 0 ? width : std::clamp(TerminalWidth(), 20, 400);
    if (height > 0) options.height = height;
    options.color = *color;
    const std::string text = cli::RenderTerminal(*model, options);
    std::fwrite(text.data(), 1, text.size(), stdout);
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "hpsched COMMAND [ARGS] [FLAGS]\n"
      "  create JOB_ID --schedule JSON --base 0.1[,...] [--hyperparameter lr] | --job JSON\n"
      "  get JOB_ID | list | delete JOB_ID\n"
      "  update JOB_ID --from STEP (--schedule JSON [--global_time] [--anchor] | --scale F |\n"
      "         --pin V[,...]) [--hyperparameter lr] [--etag E] [--allow_rewrite]\n"
      "  report JOB_ID --step STEP --metric name=value[,...] [--next_step N]\n"
      "  values JOB_ID --steps 0:100 [--hyperparameter NAME|all]\n"
      "  preview --schedule JSON --base 0.1,0.01 --steps 0:100 [--local]\n"
      "  plot JOB_ID --steps 0:1000 [--hyperparameter NAME,...] [--svg FILE] [--log]\n"
      "  plot --schedule JSON --base 0.1,0.01 --steps 0:300 [--local] [--svg FILE] [--log]\n"
      "  health [--service NAME]\n"
      "  watch JOB_ID [--count N] [--watch_timeout 30s] [--poll --interval 1s]\n"
      "Every command takes --json (JSON output, JSON errors on stderr) and --target HOST:PORT.");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) return Usage();
  const std::string command = args[1];
  const std::string id = args.size() > 2 ? args[2] : "";
  auto client_options = ClientOptionsFromFlags();
  if (!client_options.ok()) return Fail(client_options.status());
  const hpsched::ClientOptions& options = *client_options;
  hpsched::Client client(options);

  absl::Status status;
  if (command == "health") {
    if (args.size() > 2) {
      Usage();
      return 1;
    }
    return Health(options);
  } else if (command == "preview") {
    status = Preview(&client, absl::GetFlag(FLAGS_local));
  } else if (command == "list") {
    status = List(&client);
  } else if (command == "plot") {
    if (args.size() > 3) return Usage();
    status = Plot(&client, id);
  } else if (id.empty() || args.size() > 3) {
    return Usage();
  } else if (command == "create") {
    status = Create(&client, id);
  } else if (command == "get") {
    status = Get(&client, id);
  } else if (command == "delete") {
    status = Delete(&client, id);
  } else if (command == "values") {
    status = Values(&client, id);
  } else if (command == "update") {
    status = Update(&client, id);
  } else if (command == "report") {
    status = Report(&client, id);
  } else if (command == "watch") {
    status = Watch(&client, id);
  } else {
    return Usage();
  }
  return status.ok() ? 0 : Fail(status);
}
