// What the values, preview and plot commands share: reading a job's values or a spec's values in
// chunks within the server's limits, and printing rows of values.
#ifndef HPSCHED_CLIENT_CLI_SERIES_IO_H_
#define HPSCHED_CLIENT_CLI_SERIES_IO_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/cli/commands.h"
#include "client/cli/json_io.h"
#include "client/client.h"

namespace hpsched::cli {

// Writes `line` and a newline to `output.out`.
void PrintLine(const Output& output, const std::string& line);

// Prints a message as indented JSON, or on one line with --json.
void PrintMessage(const Output& output, const google::protobuf::Message& message);

// Prints the rows of values and preview, chunk after chunk. Text: a header line naming the columns
// ("step\tlr/0\tlr/1\tmomentum/0", "value/G" for a preview) before the first row, then per step
// the step and one value per series, tab-separated, each the shortest text that reads back as the
// same double ("0.1", not "0.10000000000000001"), and "\tprovisional" at the end of a row whose
// values may still change (they wait for metric reports). --json: {"step":N,"values":{KEY:v,...}}
// per step, with "provisional":true on such rows.
class RowPrinter {
 public:
  explicit RowPrinter(Output output) : output_(output) {}
  // Rows for `series`, which all start at `start`; the rows from `provisional_from` on (when set)
  // are provisional.
  void Print(int64_t start, const google::protobuf::RepeatedPtrField<v1::Series>& series,
             std::optional<int64_t> provisional_from = std::nullopt);

 private:
  Output output_;
  bool header_printed_ = false;
};

// The schedule, base values, steps and hyperparameter of a SpecOptions, parsed.
struct SpecArgs {
  v1::Schedule schedule;
  std::vector<double> bases;
  StepRange range;
  std::string hyperparameter = "lr";
};
// --pending_policy: "provisional_now", "wait" or "wait_then_provisional". InvalidArgument
// otherwise.
absl::StatusOr<v1::PendingPolicy> ParsePendingPolicy(absl::string_view text);

absl::StatusOr<SpecArgs> ParseSpecArgs(const SpecOptions& options);

// Evaluates a spec over its steps, in chunks no larger than a server accepts, with Preview or
// in-process (`local`); calls `sink` with the first step and the series of each chunk.
absl::Status EvaluateSpec(client::Client* client, bool local, const SpecArgs& args,
                          const std::function<void(int64_t, const v1::PreviewResponse&)>& sink);

// Reads a job's values over `range` in chunks within the server's limits (at most
// kMaxValuesPerQuery steps and kMaxValuesPerBatch values per response); calls `sink` per chunk.
// `policy` says what to do with values that wait for metric reports (values --pending_policy; plot
// draws what is known now).
absl::Status ReadValues(client::Client* client, const std::string& job_id,
                        const std::vector<std::string>& hyperparameters, StepRange range,
                        const std::function<void(const v1::GetValuesResponse&)>& sink,
                        v1::PendingPolicy policy = v1::PENDING_POLICY_UNSPECIFIED);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_SERIES_IO_H_
