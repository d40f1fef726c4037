// Reading hpsched messages (Job, Schedule, ...) from JSON as people write them, for the C++ clients
// (the CLI, the toy trainer). Strict protobuf JSON (what grpcurl sends) is accepted unchanged; on
// top of it, the rules of docs/catalog.md "Specs as JSON" (the Python client implements the same):
//   1. A plain number where a per-group list (a repeated double) is expected is a list of one:
//      "max_lr": 0.1 is "max_lr": [0.1].
//   2. A key matches a field by its proto name ("t_max"), its JSON name ("tMax"), or the same
//      letters ignoring case and underscores ("T_max", "T_0", "T_mult", "eta_min", "etaMin"), which
//      covers PyTorch's, optax's and Keras's spellings; "schedulers" (PyTorch's SequentialLR and
//      ChainedScheduler) is "schedules". Two keys that name the same field are an error.
//   3. An enum value matches its name ignoring case, with or without the enum's prefix.
//   4. Errors name the field path from `root` ("schedule.cosine_annealing.t_maxx"), the rule, the
//      valid names, and "did you mean" for a near miss (edit distance); a value of the wrong type
//      names the path and the type it must be.
// Walks the message descriptors, so every kind and field of the API is covered without a list.
#ifndef HPSCHED_CODEC_SPEC_JSON_H_
#define HPSCHED_CODEC_SPEC_JSON_H_

#include <google/protobuf/message.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace hpsched::codec {

// Parses `json` into `message` (cleared first). InvalidArgument, starting with the field path under
// `root` (e.g. "schedule" or "job"), when the text is not JSON or does not fit the message.
absl::Status ParseSpecJson(absl::string_view json, absl::string_view root,
                           google::protobuf::Message* message);

// The edit distance (Levenshtein) of `a` and `b`; the "did you mean" of the errors.
int EditDistance(absl::string_view a, absl::string_view b);

}  // namespace hpsched::codec

#endif  // HPSCHED_CODEC_SPEC_JSON_H_
