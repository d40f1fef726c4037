#include "client/cli/json_io.h"

#include <google/protobuf/util/json_util.h>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "codec/spec_json.h"

namespace hpsched::cli {

absl::Status ParseJsonArg(absl::string_view flag, absl::string_view text,
                          google::protobuf::Message* message) {
  std::string json(text);
  std::string path;
  if (!text.empty() && text[0] == '@') {
    path = std::string(text.substr(1));
  } else if (!text.empty() && text[0] != '{' &&
             std::filesystem::is_regular_file(std::string(text))) {
    path = std::string(text);
  }
  if (!path.empty()) {
    std::ifstream in(path);
    if (!in) return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", path));
    std::stringstream buffer;
    buffer << in.rdbuf();
    json = buffer.str();
  }
  // The root of the error paths: "schedule" for --schedule, "job" for --job.
  return codec::ParseSpecJson(json, absl::StripPrefix(flag, "--"), message);
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string ToCompactJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "null";
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  return std::string(buffer, result.ptr);
}

std::string TextNumber(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  return JsonNumber(value);
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string StatusToJson(const absl::Status& status) {
  return absl::StrCat("{\"code\":", JsonString(absl::StatusCodeToString(status.code())),
                      ",\"message\":", JsonString(status.message()), "}");
}

absl::StatusOr<std::vector<double>> ParseDoubles(absl::string_view flag, absl::string_view text) {
  std::vector<double> values;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    double v = 0;
    if (!absl::SimpleAtod(part, &v)) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": \"", part, "\" is not a number"));
    }
    values.push_back(v);
  }
  return values;
}

absl::StatusOr<StepRange> ParseStepRange(absl::string_view flag, absl::string_view text) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  StepRange range;
  int64_t end = 0;
  if (parts.size() == 1 && absl::SimpleAtoi(parts[0], &range.start)) {
    range.count = 1;
    return range;
  }
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &range.start) ||
      !absl::SimpleAtoi(parts[1], &end) || end <= range.start) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": must be START:END with END > START (steps [START, END)), got \"", text, "\""));
  }
  range.count = end - range.start;
  return range;
}

}  // namespace hpsched::cli
