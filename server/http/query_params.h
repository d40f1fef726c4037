// URL query parameters into a request message, as grpc-gateway reads them: a parameter names a
// field by its proto name or its JSON name ("page_size" or "pageSize"), a dotted path reaches into
// singular message fields ("a.b"), a repeated field takes one parameter per element, enums take
// their name or number, bools "true"/"false" (or 1/0).
#ifndef HPSCHED_HTTP_QUERY_PARAMS_H_
#define HPSCHED_HTTP_QUERY_PARAMS_H_

#include <google/protobuf/message.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace hpsched::http {

// Applies every parameter to `message`. InvalidArgument naming the parameter and the rule
// ("query parameter step: must be an integer, got \"x\"", "query parameter stp: no such field
// of hpsched.v1.GetValuesRequest") at the first one that does not fit; the message may then be
// partly set.
absl::Status ApplyQueryParams(const std::vector<std::pair<std::string, std::string>>& params,
                              google::protobuf::Message* message);

}  // namespace hpsched::http

#endif  // HPSCHED_HTTP_QUERY_PARAMS_H_
