#include "store/legacy_row.h"

#include "absl/strings/str_cat.h"
#include "codec/proto_convert.h"
#include "hpsched/v1/job.pb.h"

namespace hpsched::store {

absl::StatusOr<core::JobRecord> DecodeLegacyJob(absl::string_view job_id, int64_t version,
                                                absl::string_view job_bytes,
                                                absl::string_view create_request_id) {
  hpsched::v1::Job job;
  if (!job.ParseFromArray(job_bytes.data(), static_cast<int>(job_bytes.size())) ||
      job.name() != codec::JobName(job_id) || job.version() != version) {
    return absl::DataLossError(absl::StrCat("stored job ", job_id, " does not parse"));
  }
  core::JobRecord record;
  record.job_id = std::string(job_id);
  record.spec = codec::JobSpecFromProto(job, /*with_history=*/true);
  record.version = job.version();
  record.etag = job.etag();
  record.create_time = absl::FromUnixSeconds(job.create_time().seconds()) +
                       absl::Nanoseconds(job.create_time().nanos());
  record.update_time = absl::FromUnixSeconds(job.update_time().seconds()) +
                       absl::Nanoseconds(job.update_time().nanos());
  record.create_request_id = std::string(create_request_id);
  return record;
}

}  // namespace hpsched::store
