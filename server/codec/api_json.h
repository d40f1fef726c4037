// The protobuf JSON mapping of the API messages, as the HTTP front end (server/http/) reads request
// bodies and writes responses: google::protobuf::util's parser and printer with one set of options,
// so every HTTP route speaks the same JSON as grpc-gateway (lowerCamelCase names on output, proto
// or JSON names accepted on input, int64 as strings, enums by name, unpopulated fields printed).
//
// Strict on input, unlike spec_json.h's forgiving reader for people typing specs: a body is what a
// program sent, and an unknown field there is a bug to report, not to guess at.
#ifndef HPSCHED_CODEC_API_JSON_H_
#define HPSCHED_CODEC_API_JSON_H_

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hpsched::codec {

// Parses `json` into `message` (merged into what it holds: a route sets path and query fields
// first, and a body that sets them too wins). InvalidArgument "<what>: <the parser's reason>" for
// text that is not JSON or does not fit the message (an unknown field, a string for a number, an
// unknown enum name); the reason names the field.
absl::Status MergeApiJson(absl::string_view json, absl::string_view what,
                          google::protobuf::Message* message);

// The message as JSON. Never fails for messages of the generated pool (Internal otherwise).
absl::Status PrintApiJson(const google::protobuf::Message& message, std::string* json);

}  // namespace hpsched::codec

#endif  // HPSCHED_CODEC_API_JSON_H_
