// hpsched: the command-line client.
//
// The commands and their arguments: kUsage below (also `hpsched --help`). Each command lives in
// the file of its family (jobs_commands.cc, values_commands.cc, live_commands.cc, plot_command.cc);
// this file only turns the flags into their option structs, dispatches and prints errors.
//
// Output without --json: values and preview print a header line ("step\tlr/0\tlr/1"), then one
// line per step: the step, then one value per series (hyperparameter, group), tab-separated, each
// the shortest text that reads back as the same double, "\tprovisional" at the end of a row whose
// values wait for metric reports. create and get print the Job as indented JSON, list a table (ID,
// HYPERPARAMETERS, VERSION, LABELS, UPDATED), delete "deleted jobs/ID", plot --svg FILE "wrote
// FILE". plot draws braille curves on
// the terminal, or writes an SVG with --svg. health prints the serving status. watch prints a line
// per event: "TIME initial|modified|deleted jobs/ID version=V etag=E", a modified one from the
// stream followed by "change=updated|plateau_reduced effective_step=S". update prints the Job,
// report the ReportMetricsResponse.
//
// With --json, every command prints JSON on stdout and errors go to stderr as one JSON object
// {"code":"NOT_FOUND","message":"..."}, with the same exit codes:
//   values, preview  one object per line (JSON Lines): {"step":N,"values":{"lr/0":v,"lr/1":v}}
//                    (and "provisional":true on a row whose values wait for metric reports);
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

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/marshalling.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"
#include "client/cli/health.h"
#include "client/cli/json_io.h"
#include "client/client.h"
#include "codec/spec_json.h"

ABSL_FLAG(std::string, target, "",
          "Server address HOST:PORT, a comma-separated list of replicas, or dns:///NAME:PORT "
          "(every address record a replica); calls go round-robin (default: the HPSCHED_TARGET "
          "environment variable, else localhost:50051).");
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
ABSL_FLAG(std::string, filter, "",
          "list: only the jobs that match, e.g. 'labels.team = \"vision\" AND id:\"exp-*\"' "
          "(terms labels.KEY = \"V\", id = \"ID\", id:\"PREFIX*\", joined by AND).");
ABSL_FLAG(std::vector<std::string>, label, {},
          "list: only the jobs with these labels, KEY=VALUE[,KEY=VALUE] (ANDed with --filter).");
ABSL_FLAG(std::string, pending_policy, "provisional_now",
          "values: values that wait for metric reports are printed at once, marked provisional "
          "(provisional_now), waited for until --timeout (wait), or waited for and then printed "
          "provisional (wait_then_provisional).");
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

namespace cli = ::hpsched::cli;
namespace client = ::hpsched::client;

constexpr char kUsage[] =
    "hpsched COMMAND [ARGS] [FLAGS]\n"
    "  create JOB_ID --schedule JSON --base 0.1[,...] [--hyperparameter lr] | --job JSON\n"
    "  get JOB_ID | delete JOB_ID\n"
    "  list [--label KEY=VALUE,...] [--filter 'labels.team = \"vision\" AND id:\"exp-*\"']\n"
    "  update JOB_ID --from STEP (--schedule JSON [--global_time] [--anchor] | --scale F |\n"
    "         --pin V[,...]) [--hyperparameter lr] [--etag E] [--allow_rewrite]\n"
    "  report JOB_ID --step STEP --metric name=value[,...] [--next_step N]\n"
    "  values JOB_ID --steps 0:100 [--hyperparameter NAME|all]\n"
    "         [--pending_policy provisional_now|wait|wait_then_provisional]\n"
    "  preview --schedule JSON --base 0.1,0.01 --steps 0:100 [--local]\n"
    "  plot JOB_ID --steps 0:1000 [--hyperparameter NAME,...] [--svg FILE] [--log]\n"
    "  plot --schedule JSON --base 0.1,0.01 --steps 0:300 [--local] [--svg FILE] [--log]\n"
    "  health [--service NAME]\n"
    "  watch JOB_ID [--count N] [--watch_timeout 30s] [--poll --interval 1s]\n"
    "Every command takes --json (JSON output, JSON errors on stderr) and --target HOST:PORT\n"
    "(default: $HPSCHED_TARGET, else localhost:50051). hpsched --help lists every flag.";

constexpr const char* kCommands[] = {"create", "get",     "list", "delete", "update", "report",
                                     "values", "preview", "plot", "health", "watch"};

int Fail(const absl::Status& status) {
  if (absl::GetFlag(FLAGS_json)) {
    std::fprintf(stderr, "%s\n", cli::StatusToJson(status).c_str());
  } else {
    std::fprintf(stderr, "hpsched: %s\n", status.ToString().c_str());
  }
  return cli::ExitCode(status);
}

// The reason first ("unknown command \"x\"; did you mean \"values\"?"), then the usage.
int UsageWithReason(const std::string& reason) {
  if (absl::GetFlag(FLAGS_json)) {
    std::fprintf(stderr, "%s\n",
                 cli::StatusToJson(absl::InvalidArgumentError(absl::StrCat(
                                       reason, "; usage: ", absl::ProgramUsageMessage())))
                     .c_str());
  } else {
    std::fprintf(stderr, "hpsched: %s\n%s\n", reason.c_str(), absl::ProgramUsageMessage().data());
  }
  return 2;
}

std::string UnknownCommand(const std::string& command) {
  std::string nearest;
  int best = 3;  // At most two edits away.
  for (const char* known : kCommands) {
    const int d = hpsched::codec::EditDistance(command, known);
    if (d < best) {
      best = d;
      nearest = known;
    }
  }
  return absl::StrCat("unknown command \"", command, "\"",
                      nearest.empty() ? "" : absl::StrCat("; did you mean \"", nearest, "\"?"));
}

bool KnownCommand(const std::string& command) {
  for (const char* known : kCommands) {
    if (command == known) return true;
  }
  return false;
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

absl::StatusOr<std::string> ReadWholeFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Target, deadline, token and TLS settings from the flags.
absl::StatusOr<client::ClientOptions> ClientOptionsFromFlags() {
  client::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  if (options.target.empty()) {
    const char* env = std::getenv("HPSCHED_TARGET");
    options.target = env != nullptr && *env != '\0' ? env : "localhost:50051";
  }
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

// health: 0 when SERVING, 1 otherwise (never 2: Docker reserves it).
int Health(const client::ClientOptions& options) {
  // The credentials every other command uses (health is open to callers without a token).
  auto opened = client::OpenChannel(options);
  if (!opened.ok()) {
    Fail(opened.status());
    return 1;
  }
  auto channel = *std::move(opened);
  auto status =
      cli::CheckHealth(channel, absl::GetFlag(FLAGS_service), absl::GetFlag(FLAGS_timeout));
  if (!status.ok()) {
    Fail(status.status());
    return 1;
  }
  std::string line = absl::GetFlag(FLAGS_json)
                         ? absl::StrCat("{\"status\":", cli::JsonString(*status), "}")
                         : *status;
  std::fprintf(stdout, "%s\n", line.c_str());
  return *status == "SERVING" ? 0 : 1;
}

cli::SpecOptions SpecOptionsFromFlags() {
  return {.schedule = absl::GetFlag(FLAGS_schedule),
          .base = absl::GetFlag(FLAGS_base),
          .steps = absl::GetFlag(FLAGS_steps),
          .hyperparameter = absl::GetFlag(FLAGS_hyperparameter),
          .local = absl::GetFlag(FLAGS_local)};
}

cli::CreateOptions CreateOptionsFromFlags() {
  return {.job = absl::GetFlag(FLAGS_job),
          .schedule = absl::GetFlag(FLAGS_schedule),
          .base = absl::GetFlag(FLAGS_base),
          .hyperparameter = absl::GetFlag(FLAGS_hyperparameter)};
}

cli::UpdateOptions UpdateOptionsFromFlags() {
  return {.from = absl::GetFlag(FLAGS_from),
          .schedule = absl::GetFlag(FLAGS_schedule),
          .scale = absl::GetFlag(FLAGS_scale),
          .pin = absl::GetFlag(FLAGS_pin),
          .global_time = absl::GetFlag(FLAGS_global_time),
          .anchor = absl::GetFlag(FLAGS_anchor),
          .etag = absl::GetFlag(FLAGS_etag),
          .allow_rewrite = absl::GetFlag(FLAGS_allow_rewrite),
          .hyperparameter = absl::GetFlag(FLAGS_hyperparameter)};
}

cli::PlotOptions PlotOptionsFromFlags() {
  return {.spec = SpecOptionsFromFlags(),
          .svg = absl::GetFlag(FLAGS_svg),
          .width = absl::GetFlag(FLAGS_width),
          .height = absl::GetFlag(FLAGS_height),
          .log = absl::GetFlag(FLAGS_log),
          .title = absl::GetFlag(FLAGS_title),
          .color = absl::GetFlag(FLAGS_color)};
}

// The command that takes a JOB_ID; nullopt for an unknown command (the caller prints usage).
std::optional<absl::Status> RunJobCommand(const std::string& command, client::Client* client,
                                          const std::string& id, const cli::Output& output) {
  if (command == "create") return cli::Create(client, id, CreateOptionsFromFlags(), output);
  if (command == "get") return cli::Get(client, id, output);
  if (command == "delete") return cli::Delete(client, id, output);
  if (command == "values") {
    return cli::Values(client, id,
                       {.steps = absl::GetFlag(FLAGS_steps),
                        .hyperparameter = absl::GetFlag(FLAGS_hyperparameter),
                        .pending_policy = absl::GetFlag(FLAGS_pending_policy)},
                       output);
  }
  if (command == "update") return cli::Update(client, id, UpdateOptionsFromFlags(), output);
  if (command == "report") {
    return cli::Report(client, id,
                       {.step = absl::GetFlag(FLAGS_step),
                        .metric = absl::GetFlag(FLAGS_metric),
                        .next_step = absl::GetFlag(FLAGS_next_step)},
                       output);
  }
  if (command == "watch") {
    return cli::Watch(client, id,
                      {.poll = absl::GetFlag(FLAGS_poll),
                       .interval = absl::GetFlag(FLAGS_interval),
                       .count = absl::GetFlag(FLAGS_count),
                       .watch_timeout = absl::GetFlag(FLAGS_watch_timeout)},
                      output);
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(kUsage);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) return Usage();
  const std::string command = args[1];
  if (!KnownCommand(command)) return UsageWithReason(UnknownCommand(command));
  const std::string id = args.size() > 2 ? args[2] : "";
  auto client_options = ClientOptionsFromFlags();
  if (!client_options.ok()) return Fail(client_options.status());
  const client::ClientOptions& options = *client_options;
  client::Client client(options);
  const cli::Output output{.out = &std::cout, .json = absl::GetFlag(FLAGS_json)};

  absl::Status status;
  if (command == "health") {
    if (args.size() > 2) {
      Usage();
      return 1;
    }
    return Health(options);
  } else if (command == "preview") {
    status = cli::Preview(&client, SpecOptionsFromFlags(), output);
  } else if (command == "list") {
    status = cli::List(&client,
                       {.page_size = absl::GetFlag(FLAGS_page_size),
                        .filter = absl::GetFlag(FLAGS_filter),
                        .labels = absl::GetFlag(FLAGS_label)},
                       output);
  } else if (command == "plot") {
    if (args.size() > 3) return Usage();
    status = cli::Plot(&client, id, PlotOptionsFromFlags(), output);
  } else if (id.empty()) {
    return UsageWithReason(absl::StrCat(command, ": needs a JOB_ID"));
  } else if (args.size() > 3) {
    return UsageWithReason(absl::StrCat(command, ": takes one JOB_ID, got \"", args[3], "\" too"));
  } else {
    std::optional<absl::Status> result = RunJobCommand(command, &client, id, output);
    if (!result.has_value()) return Usage();
    status = *std::move(result);
  }
  return status.ok() ? 0 : Fail(status);
}
