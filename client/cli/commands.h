// The hpsched commands, one function per command, each over an option struct (main.cc turns the
// flags into these), a client and an Output. A command returns OK or the error main.cc prints
// (exit code 2 for INVALID_ARGUMENT, 1 otherwise); what it prints goes to `Output::out` only, so
// the commands run in tests against an in-process server. Output formats: see the comment in
// main.cc.
#ifndef HPSCHED_CLIENT_CLI_COMMANDS_H_
#define HPSCHED_CLIENT_CLI_COMMANDS_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace hpsched::cli {

// Where a command prints, and how (--json).
struct Output {
  std::ostream* out;
  bool json = false;
};

// The exit code of a failed command: 2 for INVALID_ARGUMENT, 1 for any other error.
int ExitCode(const absl::Status& status);

// --schedule, --base, --steps, --hyperparameter, --local: a spec evaluated by preview and plot.
struct SpecOptions {
  std::string schedule;
  std::string base = "1";
  std::string steps = "0:100";
  std::string hyperparameter;
  bool local = false;
};

// jobs_commands.cc: create, get, list, delete, update.
struct CreateOptions {
  std::string job;  // A Job as JSON (inline or @file); else schedule, base, hyperparameter.
  std::string schedule;
  std::string base = "1";
  std::string hyperparameter;
};
absl::Status Create(client::Client* client, const std::string& job_id, const CreateOptions& options,
                    const Output& output);
absl::Status Get(client::Client* client, const std::string& job_id, const Output& output);
// list: a table (id, hyperparameters, version, labels, update time) or, with --json, one Job per
// line. `filter` is ListJobsRequest.filter; each of `labels` ("key=value") adds
// `labels.key = "value"` to it, joined by AND.
struct ListOptions {
  int page_size = 100;
  std::string filter;
  std::vector<std::string> labels;
};
absl::Status List(client::Client* client, const ListOptions& options, const Output& output);
absl::Status Delete(client::Client* client, const std::string& job_id, const Output& output);

struct UpdateOptions {
  int64_t from = -1;
  std::string schedule;
  std::string scale;
  std::string pin;
  bool global_time = false;
  bool anchor = false;
  std::string etag;
  bool allow_rewrite = false;
  std::string hyperparameter;
};
absl::Status Update(client::Client* client, const std::string& job_id, const UpdateOptions& options,
                    const Output& output);

// values_commands.cc: values, preview.
struct ValuesOptions {
  std::string steps = "0:100";
  std::string hyperparameter;  // Default lr; "all" for every one.
  // What to do with values that wait for metric reports (reduce_on_plateau): "provisional_now"
  // prints them at once, marked provisional; "wait" waits for the reports (DEADLINE_EXCEEDED at
  // --timeout); "wait_then_provisional" waits, then prints them marked provisional.
  std::string pending_policy = "provisional_now";
};
absl::Status Values(client::Client* client, const std::string& job_id, const ValuesOptions& options,
                    const Output& output);
absl::Status Preview(client::Client* client, const SpecOptions& options, const Output& output);

// live_commands.cc: report, watch.
struct ReportOptions {
  int64_t step = -1;
  std::string metric;
  int64_t next_step = -2;  // -2: not given.
};
absl::Status Report(client::Client* client, const std::string& job_id, const ReportOptions& options,
                    const Output& output);

struct WatchOptions {
  bool poll = false;
  absl::Duration interval = absl::Seconds(1);
  int count = 0;
  absl::Duration watch_timeout = absl::ZeroDuration();
};
absl::Status Watch(client::Client* client, const std::string& job_id, const WatchOptions& options,
                   const Output& output);

// plot_command.cc: plot JOB_ID (job_id non-empty) or plot --schedule.
struct PlotOptions {
  SpecOptions spec;
  std::string svg;
  int width = 0;
  int height = 0;
  bool log = false;
  std::string title;
  std::string color = "auto";
};
absl::Status Plot(client::Client* client, const std::string& job_id, const PlotOptions& options,
                  const Output& output);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_COMMANDS_H_
