// job_json_fuzzer: a whole job as a client sends it, in proto3 JSON (what grpcurl, buf curl and the
// CLI send).
//
// Input: JSON, parsed as an hpsched.v1.CreateJobRequest (its `job`), or failing that as an
// hpsched.v1.Job.
//
// Checks:
//   * the spec (codec::JobSpecFromProto) either compiles (core::JobPlan::Compile) or is rejected
//   with
//     InvalidArgument naming a field under "job";
//   * a compiled plan has one series per (hyperparameter, base value), in spec order, each with a
//   node, and
//     Select() of all names gives every series;
//   * for a valid spec, the stored form round-trips: codec::JobToProto(record) -> binary
//   serialization -> parse ->
//     JobSpecFromProto gives an equal JobSpec, and so does the JSON form (MessageToJsonString ->
//     JsonStringToMessage), and the re-parsed spec compiles again;
//   * a CreateJobRequest's job_id that JobIdFromName accepts round-trips through JobName.
#include <google/protobuf/util/json_util.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "codec/proto_convert.h"
#include "core/job_plan.h"
#include "core/job_record.h"
#include "core/schedule_spec.h"
#include "fuzz_common.h"
#include "hpsched/v1/job.pb.h"
#include "hpsched/v1/scheduler_service.pb.h"

namespace hpsched::fuzz {
namespace {

std::string Json(const google::protobuf::Message& message) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json);
  return json;
}

void CheckRoundTrip(const core::JobSpec& spec, const std::string& input) {
  core::JobRecord record;
  record.job_id = "fuzz";
  record.spec = spec;
  record.version = 1;
  record.etag = "etag";
  record.create_time = absl::FromUnixSeconds(1700000000);
  record.update_time = record.create_time;

  hpsched::v1::Job stored;
  codec::JobToProto(record, &stored);
  std::string bytes;
  FUZZ_CHECK(stored.SerializeToString(&bytes), "Job does not serialize");
  hpsched::v1::Job parsed;
  FUZZ_CHECK(parsed.ParseFromString(bytes), "serialized Job does not parse");
  const core::JobSpec from_binary = codec::JobSpecFromProto(parsed);
  if (!(from_binary == spec)) {
    Fail(absl::StrCat("binary round trip changed the spec\ninput: ", input,
                      "\nJobToProto: ", Json(stored), "\nre-parsed: ", Json(parsed)));
  }

  const std::string json = Json(stored);
  hpsched::v1::Job from_json_proto;
  const auto parse_status = google::protobuf::util::JsonStringToMessage(json, &from_json_proto);
  FUZZ_CHECK(parse_status.ok(), absl::StrCat("JSON of JobToProto does not parse: ",
                                             parse_status.ToString(), "\njson: ", json));
  if (!(codec::JobSpecFromProto(from_json_proto) == spec)) {
    Fail(absl::StrCat("JSON round trip changed the spec\ninput: ", input, "\nJobToProto: ", json,
                      "\nre-parsed: ", Json(from_json_proto)));
  }
  FUZZ_CHECK(core::JobPlan::Compile(from_binary, "job").ok(),
             absl::StrCat("round-tripped spec no longer compiles\ninput: ", input));
}

}  // namespace
}  // namespace hpsched::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hpsched::fuzz;  // NOLINT
  if (size > 64 * 1024 || !LooksLikeJson(data, size)) return -1;
  const std::string input(reinterpret_cast<const char*>(data), size);
  hpsched::v1::CreateJobRequest request;
  hpsched::v1::Job job;
  if (google::protobuf::util::JsonStringToMessage(input, &request).ok()) {
    job = request.job();
    auto id = hpsched::codec::JobIdFromName(request.job_id(), "job_id");
    if (id.ok()) {
      auto again = hpsched::codec::JobIdFromName(hpsched::codec::JobName(*id), "job_id");
      FUZZ_CHECK(again.ok() && *again == *id, absl::StrCat("job id does not round-trip: ", *id));
    } else {
      FUZZ_CHECK(id.status().code() == absl::StatusCode::kInvalidArgument, id.status().ToString());
      FUZZ_CHECK(absl::StartsWith(id.status().message(), "job_id"), id.status().ToString());
    }
  } else if (!google::protobuf::util::JsonStringToMessage(input, &job).ok()) {
    return -1;
  }
  const hpsched::core::JobSpec spec = hpsched::codec::JobSpecFromProto(job);
  auto plan = hpsched::core::JobPlan::Compile(spec, "job");
  if (!plan.ok()) {
    FUZZ_CHECK(plan.status().code() == absl::StatusCode::kInvalidArgument,
               plan.status().ToString());
    FUZZ_CHECK(absl::StartsWith(plan.status().message(), "job."), plan.status().ToString());
    return 0;
  }
  size_t expected = 0;
  std::vector<std::string> names;
  for (const auto& hp : spec.hyperparameters) {
    expected += hp.base_values.size();
    names.push_back(hp.name);
  }
  const auto& series = (*plan)->series();
  FUZZ_CHECK(series.size() == expected,
             absl::StrCat(series.size(), " series, expected ", expected));
  size_t i = 0;
  for (const auto& hp : spec.hyperparameters) {
    for (size_t g = 0; g < hp.base_values.size(); ++g, ++i) {
      FUZZ_CHECK(series[i].hyperparameter == hp.name && series[i].group == static_cast<int>(g) &&
                     series[i].node != nullptr,
                 absl::StrCat("series ", i, " is not ", hp.name, "[", g, "]"));
    }
  }
  hpsched::core::SeriesSelection all;
  const absl::Status selected = (*plan)->Select(names, "names", &all);
  FUZZ_CHECK(selected.ok() && all.size() == series.size(), "Select(every name) misses series");
  CheckRoundTrip(spec, input);
  return 0;
}
