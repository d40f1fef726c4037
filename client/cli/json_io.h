// JSON in and out of the CLI: the protobuf JSON mapping of hpsched messages.
#ifndef HPSCHED_CLIENT_CLI_JSON_IO_H_
#define HPSCHED_CLIENT_CLI_JSON_IO_H_

#include <google/protobuf/message.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace hpsched::cli {

// `text` is inline JSON, or "@path" / a path of an existing file holding it. Parses into `message`
// with the rules of codec/spec_json.h (a plain number for a per-group list, PyTorch's spellings of
// field names, errors with the field path from the flag's name: "schedule.cosine_annealing.x").
// InvalidArgument naming `flag` for an unreadable file.
absl::Status ParseJsonArg(absl::string_view flag, absl::string_view text,
                          google::protobuf::Message* message);

// The message as indented JSON, proto field names preserved.
std::string ToJson(const google::protobuf::Message& message);
// The message as JSON on one line, proto field names preserved (the --json output).
std::string ToCompactJson(const google::protobuf::Message& message);

// A JSON number: the shortest text that reads back as `value` ("0.1", "1e-05", "3"); `null` for NaN
// and infinities, which JSON cannot represent.
std::string JsonNumber(double value);
// The same shortest round-trip text for the text output; "nan", "inf" and "-inf" if not finite.
std::string TextNumber(double value);
// A JSON string literal: `text` quoted, with quotes, backslashes and control characters escaped.
std::string JsonString(absl::string_view text);
// An error as a JSON object on one line: {"code":"NOT_FOUND","message":"..."} (--json errors).
std::string StatusToJson(const absl::Status& status);

// "0.1,0.01" -> {0.1, 0.01}. InvalidArgument naming `flag`.
absl::StatusOr<std::vector<double>> ParseDoubles(absl::string_view flag, absl::string_view text);

// "A:B" -> steps [A, B); "A" -> [A, A + 1). InvalidArgument naming `flag`.
struct StepRange {
  int64_t start = 0;
  int64_t count = 1;
};
absl::StatusOr<StepRange> ParseStepRange(absl::string_view flag, absl::string_view text);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_JSON_IO_H_
