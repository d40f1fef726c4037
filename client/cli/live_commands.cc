// report and watch: the commands of a running (plateau) job.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/cli/commands.h"
#include "client/cli/job_watcher.h"
#include "client/cli/series_io.h"

namespace hpsched::cli {

absl::Status Report(client::Client* client, const std::string& job_id, const ReportOptions& options,
                    const Output& output) {
  v1::ReportMetricsRequest request;
  request.set_job(client::ToJobName(job_id));
  if (options.step < 0) return absl::InvalidArgumentError("--step: is required");
  request.set_step(options.step);
  if (options.next_step != -2) request.set_next_step(options.next_step);
  for (absl::string_view item : absl::StrSplit(options.metric, ',', absl::SkipEmpty())) {
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
  PrintMessage(output, *response);
  return absl::OkStatus();
}

absl::Status Watch(client::Client* client, const std::string& job_id, const WatchOptions& options,
                   const Output& output) {
  if (options.count < 0) return absl::InvalidArgumentError("--count: must be >= 0");
  if (options.interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--interval: must be > 0");
  }
  PollingJobWatcher polling([client, job_id] { return client->GetJob(job_id); }, options.interval);
  StreamingJobWatcher streaming(
      [client, job_id](absl::Time deadline) { return client->WatchJob(job_id, deadline); });
  JobWatcher& watcher = options.poll ? static_cast<JobWatcher&>(polling) : streaming;
  return RunWatch(watcher, options.count, options.watch_timeout,
                  [&output](const WatchEvent& event) {
                    PrintLine(output, output.json ? WatchEventJson(event) : WatchEventText(event));
                    output.out->flush();
                  });
}

}  // namespace hpsched::cli
