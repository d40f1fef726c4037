// The shared database of several replicas (store::SharedJobStore) in PostgreSQL, over the tables of
// PostgresJobStore (jobs) and of migration 2 (replica_*). Protocol: docs/replicas.md.
#ifndef HPSCHED_STORE_POSTGRES_SHARED_STORE_H_
#define HPSCHED_STORE_POSTGRES_SHARED_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "store/postgres_connection.h"
#include "store/postgres_reports.h"
#include "store/shared_job_store.h"

namespace hpsched::store {

// Thread-safe: four connections, each behind its own mutex, so the calls of one purpose never wait
// for another's: mutations (and fences taken by this replica), flushes, following (fences of
// others, leases, the change log) and listening (LISTEN hpsched_changes, hpsched_fences). Every
// write commits with synchronous_commit on (the connection's session setting). Connections lost are
// connected again by the next call (Unavailable meanwhile).
//
// Metric reports are rows of metric_reports (schema 3, store/postgres_reports.h): a mutation writes
// the job's row and only the reports the database does not hold yet, and a read of a job (a
// mutation's, a catch-up's) reads only the report rows past those this replica already holds, so
// a report costs O(1) in the database and on every replica, whatever the job's age.
class PostgresSharedStore final : public SharedJobStore {
 public:
  // Connects to `url` as replica `replica_id`. The schema must be migrated (PostgresJobStore::Open
  // does it). Errors as PgConnection::Connect.
  static absl::StatusOr<std::unique_ptr<PostgresSharedStore>> Open(absl::string_view url,
                                                                   std::string replica_id);

  const std::string& replica_id() const override { return replica_id_; }
  absl::StatusOr<Snapshot> LoadAllShared() override;
  absl::StatusOr<std::optional<SharedJob>> ReadJob(absl::string_view job_id) override;
  absl::StatusOr<int64_t> Mutate(absl::string_view job_id, const Fence* fence,
                                 const Decide& decide) override;
  absl::StatusOr<int64_t> OthersReserved(absl::string_view job_id) override;
  absl::StatusOr<Fence> AddFence(absl::string_view job_id, int64_t step,
                                 absl::Duration timeout) override;
  absl::StatusOr<bool> AwaitAcknowledgements(const Fence& fence, absl::Time deadline) override;
  absl::Status DropFence(const Fence& fence) override;
  absl::Status AcknowledgeFence(const Fence& fence, int64_t served_through) override;
  absl::StatusOr<std::vector<Fence>> PendingFences() override;
  absl::StatusOr<std::vector<GrantedMark>> PutReplicaMarks(
      std::span<const ReplicaMark> marks) override;
  absl::StatusOr<std::vector<Change>> ChangesSince(int64_t seq, size_t limit) override;
  absl::Status Retire(std::span<const ReplicaMark> exact_marks) override;
  absl::Status RenewLease(absl::Duration lease) override;
  absl::StatusOr<bool> WaitForAnnouncement(absl::Duration timeout) override;

 private:
  PostgresSharedStore() = default;
  // The job's row, its head revision and this replica's reservation, on `db` (one snapshot, or
  // under the job's lock), with its reports: those known_ holds and the rows after them. `stored`
  // becomes the row, `known` what the database holds of the reports.
  absl::StatusOr<std::optional<SharedJob>> Read(PgConnection& db, absl::string_view job_id,
                                                StoredJob* stored, KnownReports* known);

  std::string replica_id_;
  // What the database holds of each job's reports, as far as this replica wrote or read them
  // (store/postgres_reports.h): a report writes one row and a read of a changed job reads only the
  // report rows after these.
  PgKnownReports known_;
  absl::Mutex mutate_mutex_;
  std::unique_ptr<PgConnection> mutate_ ABSL_GUARDED_BY(mutate_mutex_);
  absl::Mutex flush_mutex_;
  std::unique_ptr<PgConnection> flush_ ABSL_GUARDED_BY(flush_mutex_);
  absl::Mutex follow_mutex_;
  std::unique_ptr<PgConnection> follow_ ABSL_GUARDED_BY(follow_mutex_);
  absl::Mutex listen_mutex_;
  std::unique_ptr<PgConnection> listen_ ABSL_GUARDED_BY(listen_mutex_);
};

}  // namespace hpsched::store

#endif  // HPSCHED_STORE_POSTGRES_SHARED_STORE_H_
