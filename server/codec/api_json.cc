#include "codec/api_json.h"

#include <google/protobuf/util/json_util.h>

#include <memory>

#include "absl/strings/str_cat.h"

namespace hpsched::codec {

absl::Status MergeApiJson(absl::string_view json, absl::string_view what,
                          google::protobuf::Message* message) {
  // JsonStringToMessage clears the message; parse into a scratch copy and merge it, so fields the
  // route set from the path and the query survive a body that leaves them out.
  std::unique_ptr<google::protobuf::Message> parsed(message->New());
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  options.case_insensitive_enum_parsing = false;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), parsed.get(), options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", status.message().as_string()));
  }
  message->MergeFrom(*parsed);
  return absl::OkStatus();
}

absl::Status PrintApiJson(const google::protobuf::Message& message, std::string* json) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.always_print_enums_as_ints = false;
  options.preserve_proto_field_names = false;
  json->clear();
  const auto status = google::protobuf::util::MessageToJsonString(message, json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("cannot print ", message.GetTypeName(),
                                            " as JSON: ", status.message().as_string()));
  }
  return absl::OkStatus();
}

}  // namespace hpsched::codec
