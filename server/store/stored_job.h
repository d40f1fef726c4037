// The store's row message (hpsched.store.StoredJob, store/job_state.proto) to and from the domain
// record. No API messages: the rows do not change when the API does.
#ifndef HPSCHED_STORE_STORED_JOB_H_
#define HPSCHED_STORE_STORED_JOB_H_

#include "core/job_record.h"
#include "store/job_state.pb.h"

namespace hpsched::store {

// The whole record. StoredJobToRecord(RecordToStoredJob(r)) == r for every record. Without
// `with_reports`, the state holds no metric reports: a store that keeps them apart (the SQLite
// store's metric_reports table, written a report at a time) adds them when it reads the row.
StoredJob RecordToStoredJob(const core::JobRecord& record, bool with_reports = true);
core::JobRecord StoredJobToRecord(const StoredJob& stored);

// The live part alone (metric reports, UpdateJob request ids, the served mark).
JobState StateToProto(const core::JobRecord& record, bool with_reports = true);
// Adds `state` to `record` (whose live part is empty).
void StateFromProto(const JobState& state, core::JobRecord* record);

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_STORED_JOB_H_
