// The one place where protobuf messages become domain types and back (Arrow Flight's
// FromProto/ToProto).
#ifndef HPSCHED_CODEC_PROTO_CONVERT_H_
#define HPSCHED_CODEC_PROTO_CONVERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/job_plan.h"
#include "core/job_record.h"
#include "core/schedule_spec.h"
#include "hpsched/v1/job.pb.h"
#include "hpsched/v1/schedule.pb.h"

namespace hpsched::codec {

// Converts a Schedule generically, by reflection: the set oneof field names the kind, every set
// field of its message becomes a parameter under its proto name, and repeated Schedule fields
// become children. So a new kind needs no code here. Never fails on a well-formed message: an unset
// oneof gives an empty kind, which the core rejects.
core::ScheduleSpec ScheduleFromProto(const hpsched::v1::Schedule& proto);
// The inverse of ScheduleFromProto.
void ScheduleToProto(const core::ScheduleSpec& spec, hpsched::v1::Schedule* proto);

// The spec part of a Job (hyperparameters, labels, metrics). Output-only fields (the segments of
// hyperparameters) are ignored unless `with_history`, which the store uses to restore a job.
core::JobSpec JobSpecFromProto(const hpsched::v1::Job& proto, bool with_history = false);
// One segment of an UpdateJob; output-only fields are ignored.
core::SegmentSpec SegmentFromProto(const hpsched::v1::Segment& proto);
// The Job resource of a record, without what only its compiled plan knows (the form the fuzzers
// round-trip).
void JobToProto(const core::JobRecord& record, hpsched::v1::Job* proto);
// The Job resource as the API shows it: the record's, plus what its compiled plan knows (each
// hyperparameter's plateau reductions).
void JobToProto(const core::JobRecord& record, const core::JobPlan& plan, hpsched::v1::Job* proto);

// "jobs/{job_id}".
std::string JobName(absl::string_view job_id);
// The job_id of "jobs/{job_id}" (a bare job_id is accepted too). InvalidArgument naming `field`
// when it is empty or not a valid id.
absl::StatusOr<std::string> JobIdFromName(absl::string_view name, absl::string_view field);

}  // namespace hpsched::codec

#endif  // HPSCHED_CODEC_PROTO_CONVERT_H_
