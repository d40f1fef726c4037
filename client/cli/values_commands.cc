// values and preview: a header, then one row per step, the step then one value per series.
#include "client/cli/commands.h"
#include "client/cli/json_io.h"
#include "client/cli/series_io.h"

namespace hpsched::cli {

absl::Status Values(client::Client* client, const std::string& job_id, const ValuesOptions& options,
                    const Output& output) {
  auto range = ParseStepRange("--steps", options.steps);
  if (!range.ok()) return range.status();
  const std::string name = options.hyperparameter.empty() ? "lr" : options.hyperparameter;
  std::vector<std::string> filter;
  if (name != "all") filter.push_back(name);
  auto policy = ParsePendingPolicy(options.pending_policy);
  if (!policy.ok()) return policy.status();
  RowPrinter rows(output);
  return ReadValues(
      client, job_id, filter, *range,
      [&rows](const v1::GetValuesResponse& response) {
        rows.Print(response.start_step(), response.series(),
                   response.has_provisional_from()
                       ? std::optional<int64_t>(response.provisional_from())
                       : std::nullopt);
      },
      *policy);
}

absl::Status Preview(client::Client* client, const SpecOptions& options, const Output& output) {
  auto args = ParseSpecArgs(options);
  if (!args.ok()) return args.status();
  RowPrinter rows(output);
  return EvaluateSpec(client, options.local, *args,
                      [&rows](int64_t start, const v1::PreviewResponse& response) {
                        rows.Print(start, response.series());
                      });
}

}  // namespace hpsched::cli
