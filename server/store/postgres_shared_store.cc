#include "store/postgres_shared_store.h"

#include <poll.h>

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "libpq-fe.h"
#include "store/stored_job.h"

namespace hpsched::store {
namespace {

constexpr absl::string_view kChannelChanges = "hpsched_changes";
constexpr absl::string_view kChannelFences = "hpsched_fences";

// Rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(PgConnection& db) : db_(db) {}
  ~Transaction() {
    if (db_.in_transaction()) db_.Rollback();
  }
  absl::Status Begin(absl::string_view what) { return db_.Begin(what); }
  absl::Status Commit(absl::string_view what) { return db_.Commit(what); }

 private:
  PgConnection& db_;
};

// Columns: job (bytea), revision, own reservation.
constexpr absl::string_view kSelectJob =
    "SELECT j.job, coalesce(h.revision, 0)::bigint, coalesce(m.reserved, -1)::bigint "
    "FROM jobs j LEFT JOIN replica_heads h ON h.job_id = j.job_id "
    "LEFT JOIN replica_marks m ON m.job_id = j.job_id AND m.replica_id = $1";

// The job of a kSelectJob row without its reports (`stored` is its row message).
absl::StatusOr<SharedJob> DecodeJob(const PgResult& rows, int row, StoredJob& stored) {
  const absl::string_view bytes = rows.Bytes(row, 0);
  stored.Clear();
  if (!stored.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("a stored job does not parse");
  }
  SharedJob job;
  job.record = StoredJobToRecord(stored);
  job.revision = rows.Int64(row, 1);
  job.record.served_through = rows.Int64(row, 2);
  return job;
}

// Job rows a load fetches at a time.
constexpr int kLoadBatch = 500;

}  // namespace

absl::StatusOr<std::unique_ptr<PostgresSharedStore>> PostgresSharedStore::Open(
    absl::string_view url, std::string replica_id) {
  auto store = absl::WrapUnique(new PostgresSharedStore());
  store->replica_id_ = std::move(replica_id);
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> mutate, PgConnection::Connect(url));
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> flush, PgConnection::Connect(url));
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> follow, PgConnection::Connect(url));
  const auto listen = [](PgConnection& db) {
    return db.Script("listen",
                     absl::StrCat("LISTEN ", kChannelChanges, "; LISTEN ", kChannelFences));
  };
  ASSIGN_OR_RETURN(std::unique_ptr<PgConnection> listener, PgConnection::Connect(url, listen));
  absl::MutexLock a(&store->mutate_mutex_), b(&store->flush_mutex_), c(&store->follow_mutex_),
      d(&store->listen_mutex_);
  store->mutate_ = std::move(mutate);
  store->flush_ = std::move(flush);
  store->follow_ = std::move(follow);
  store->listen_ = std::move(listener);
  return store;
}

absl::StatusOr<std::optional<SharedJob>> PostgresSharedStore::Read(PgConnection& db,
                                                                   absl::string_view job_id,
                                                                   StoredJob* stored,
                                                                   KnownReports* known) {
  const PgParam params[] = {PgParam::Text(replica_id_), PgParam::Text(job_id)};
  ASSIGN_OR_RETURN(PgResult rows,
                   db.Exec(absl::StrCat("read ", job_id),
                           absl::StrCat(kSelectJob, " WHERE j.job_id = $2"), params));
  if (rows.rows() == 0) {
    known_.Forget(job_id);
    return std::nullopt;
  }
  auto job = DecodeJob(rows, 0, *stored);
  if (!job.ok()) return absl::DataLossError(absl::StrCat("stored job ", job_id, " does not parse"));
  // The reports this replica knows are taken as they are; only the rows after them are read.
  *known = known_.Get(job_id);
  RETURN_IF_ERROR(ReadReports(db, *stored, known, &job->record));
  known_.Set(job_id, *known);
  return *std::move(job);
}

absl::StatusOr<SharedJobStore::Snapshot> PostgresSharedStore::LoadAllShared() {
  absl::MutexLock lock(&follow_mutex_);
  PgConnection& db = *follow_;
  Transaction tx(db);
  RETURN_IF_ERROR(tx.Begin("load"));
  RETURN_IF_ERROR(db.Script("load", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"));
  Snapshot snapshot;
  ASSIGN_OR_RETURN(PgResult seq,
                   db.Exec("load", "SELECT coalesce(max(seq), 0)::bigint FROM replica_changes"));
  // Changes may commit out of the order of their numbers: follow from a little before the newest
  // (the catch-up applies a change it already holds as a no-op).
  snapshot.seq = std::max<int64_t>(0, seq.Int64(0, 0) - 1000);
  // The job rows and the report rows through two cursors in order of job_id (a merge join): each
  // job is read with its reports, a batch of rows at a time.
  const PgParam params[] = {PgParam::Text(replica_id_)};
  RETURN_IF_ERROR(db.Exec("load",
                          absl::StrCat("DECLARE hpsched_shared_scan NO SCROLL CURSOR FOR ",
                                       kSelectJob, " ORDER BY j.job_id"),
                          params)
                      .status());
  ASSIGN_OR_RETURN(PgReportScan reports, PgReportScan::Open(db));
  StoredJob stored;
  while (true) {
    ASSIGN_OR_RETURN(PgResult rows, db.Exec("load", absl::StrCat("FETCH ", kLoadBatch,
                                                                 " FROM hpsched_shared_scan")));
    for (int i = 0; i < rows.rows(); ++i) {
      ASSIGN_OR_RETURN(SharedJob job, DecodeJob(rows, i, stored));
      KnownReports known;
      RETURN_IF_ERROR(reports.AddTo(stored, &job.record, &known));
      known_.Set(job.record.job_id, std::move(known));
      snapshot.jobs.push_back(std::move(job));
    }
    if (rows.rows() < kLoadBatch) break;
  }
  RETURN_IF_ERROR(tx.Commit("load"));
  return snapshot;
}

absl::StatusOr<std::optional<SharedJob>> PostgresSharedStore::ReadJob(absl::string_view job_id) {
  absl::MutexLock lock(&follow_mutex_);
  PgConnection& db = *follow_;
  // The row and its reports in one snapshot.
  Transaction tx(db);
  RETURN_IF_ERROR(tx.Begin("read"));
  RETURN_IF_ERROR(db.Script("read", "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"));
  StoredJob stored;
  KnownReports known;
  ASSIGN_OR_RETURN(std::optional<SharedJob> job, Read(db, job_id, &stored, &known));
  RETURN_IF_ERROR(tx.Commit("read"));
  return job;
}

absl::StatusOr<int64_t> PostgresSharedStore::Mutate(absl::string_view job_id, const Fence* fence,
                                                    const Decide& decide) {
  absl::MutexLock lock(&mutate_mutex_);
  PgConnection& db = *mutate_;
  const std::string what = absl::StrCat("mutate ", job_id);
  Transaction tx(db);
  RETURN_IF_ERROR(tx.Begin(what));
  const PgParam id[] = {PgParam::Text(job_id)};
  // The job's lock: every mutation of it, fence and flush serializes here.
  RETURN_IF_ERROR(db.Exec(what,
                          "INSERT INTO replica_heads (job_id, revision) VALUES ($1, 0) "
                          "ON CONFLICT (job_id) DO NOTHING",
                          id)
                      .status());
  RETURN_IF_ERROR(
      db.Exec(what, "SELECT revision FROM replica_heads WHERE job_id = $1 FOR UPDATE", id)
          .status());
  OthersServed others;
  if (fence != nullptr) {
    // Locked, so an expiry cannot delete it between this check and the commit.
    const PgParam f[] = {PgParam::Int(fence->id)};
    ASSIGN_OR_RETURN(
        PgResult held,
        db.Exec(what, "SELECT 1 FROM replica_fences WHERE id = $1::bigint FOR UPDATE", f));
    if (held.rows() == 0) {
      return absl::UnavailableError(
          absl::StrCat("the update of jobs/", job_id, " waited past its fence's deadline; retry"));
    }
    const PgParam p[] = {PgParam::Text(job_id), PgParam::Text(replica_id_),
                         PgParam::Int(fence->id)};
    ASSIGN_OR_RETURN(PgResult rows,
                     db.Exec(what,
                             "SELECT m.replica_id, m.reserved, a.served, "
                             "coalesce(l.lease_until > now(), false) FROM replica_marks m "
                             "LEFT JOIN replica_fence_acks a ON a.fence_id = $3::bigint "
                             "AND a.replica_id = m.replica_id "
                             "LEFT JOIN replica_leases l ON l.replica_id = m.replica_id "
                             "WHERE m.job_id = $1 AND m.replica_id <> $2",
                             p));
    for (int i = 0; i < rows.rows(); ++i) {
      const int64_t reserved = rows.Int64(i, 1);
      if (!rows.IsNull(i, 2)) {
        others.served_through = std::max(others.served_through, rows.Int64(i, 2));
        continue;
      }
      others.served_through = std::max(others.served_through, reserved);
      if (reserved >= fence->step && rows.Bool(i, 3)) {
        others.unacknowledged_live.emplace_back(rows.Bytes(i, 0));
      }
    }
  } else {
    const PgParam p[] = {PgParam::Text(job_id), PgParam::Text(replica_id_)};
    ASSIGN_OR_RETURN(PgResult rows,
                     db.Exec(what,
                             "SELECT coalesce(max(reserved), -1)::bigint FROM replica_marks "
                             "WHERE job_id = $1 AND replica_id <> $2",
                             p));
    others.served_through = rows.Int64(0, 0);
  }
  StoredJob old_row;
  KnownReports known;
  ASSIGN_OR_RETURN(std::optional<SharedJob> current, Read(db, job_id, &old_row, &known));
  ASSIGN_OR_RETURN(MutationDecision decision, decide(current, others));
  if (decision.action == MutationDecision::Action::kNone) return 0;
  ASSIGN_OR_RETURN(
      PgResult logged,
      db.Exec(what, "INSERT INTO replica_changes (job_id) VALUES ($1) RETURNING seq", id));
  const int64_t seq = logged.Int64(0, 0);
  if (decision.action == MutationDecision::Action::kDelete) {
    RETURN_IF_ERROR(db.Exec(what, "DELETE FROM jobs WHERE job_id = $1", id).status());
    RETURN_IF_ERROR(db.Exec(what, "DELETE FROM replica_marks WHERE job_id = $1", id).status());
    RETURN_IF_ERROR(DeleteReports(db, job_id));
  } else {
    const core::JobRecord& record = decision.record;
    // The row without its reports, and only the reports the database does not hold yet (the
    // ones `current` was read with, under this lock): one report, one row.
    StoredJob row = RecordToStoredJob(record, /*with_reports=*/false);
    ASSIGN_OR_RETURN(
        known, WriteReports(db, record, current.has_value() ? &old_row : nullptr, known, &row));
    RETURN_IF_ERROR(PutJobRow(db, what, record, row));
  }
  const PgParam head[] = {PgParam::Text(job_id), PgParam::Int(seq)};
  RETURN_IF_ERROR(
      db.Exec(what, "UPDATE replica_heads SET revision = $2::bigint WHERE job_id = $1", head)
          .status());
  if (fence != nullptr) {
    const PgParam f[] = {PgParam::Int(fence->id)};
    RETURN_IF_ERROR(db.Exec(what, "DELETE FROM replica_fences WHERE id = $1::bigint", f).status());
    RETURN_IF_ERROR(
        db.Exec(what, "DELETE FROM replica_fence_acks WHERE fence_id = $1::bigint", f).status());
  }
  // Delivered at commit, in commit order, to every listening replica.
  const PgParam n[] = {PgParam::Int(seq)};
  RETURN_IF_ERROR(
      db.Exec(what, absl::StrCat("SELECT pg_notify('", kChannelChanges, "', $1)"), n).status());
  RETURN_IF_ERROR(tx.Commit(what));
  known_.Set(job_id, decision.action == MutationDecision::Action::kDelete ? KnownReports()
                                                                          : std::move(known));
  return seq;
}

absl::StatusOr<int64_t> PostgresSharedStore::OthersReserved(absl::string_view job_id) {
  absl::MutexLock lock(&mutate_mutex_);
  const PgParam p[] = {PgParam::Text(job_id), PgParam::Text(replica_id_)};
  ASSIGN_OR_RETURN(PgResult rows,
                   mutate_->Exec("others' reservations",
                                 "SELECT coalesce(max(reserved), -1)::bigint FROM replica_marks "
                                 "WHERE job_id = $1 AND replica_id <> $2",
                                 p));
  return rows.Int64(0, 0);
}

absl::StatusOr<Fence> PostgresSharedStore::AddFence(absl::string_view job_id, int64_t step,
                                                    absl::Duration timeout) {
  absl::MutexLock lock(&mutate_mutex_);
  PgConnection& db = *mutate_;
  const std::string what = absl::StrCat("fence ", job_id);
  Transaction tx(db);
  RETURN_IF_ERROR(tx.Begin(what));
  const PgParam id[] = {PgParam::Text(job_id)};
  RETURN_IF_ERROR(db.Exec(what,
                          "INSERT INTO replica_heads (job_id, revision) VALUES ($1, 0) "
                          "ON CONFLICT (job_id) DO NOTHING",
                          id)
                      .status());
  // Ordered against every flush of the job (which takes the head FOR SHARE).
  RETURN_IF_ERROR(
      db.Exec(what, "SELECT revision FROM replica_heads WHERE job_id = $1 FOR UPDATE", id)
          .status());
  const PgParam p[] = {PgParam::Text(job_id), PgParam::Int(step),
                       PgParam::Int(absl::ToInt64Milliseconds(timeout) * 2 + 1000)};
  ASSIGN_OR_RETURN(PgResult rows,
                   db.Exec(what,
                           "INSERT INTO replica_fences (job_id, step, deadline) VALUES "
                           "($1, $2::bigint, now() + $3::bigint * interval '1 millisecond') "
                           "RETURNING id",
                           p));
  Fence fence{rows.Int64(0, 0), std::string(job_id), step};
  const PgParam n[] = {PgParam::Int(fence.id)};
  RETURN_IF_ERROR(
      db.Exec(what, absl::StrCat("SELECT pg_notify('", kChannelFences, "', $1)"), n).status());
  RETURN_IF_ERROR(tx.Commit(what));
  return fence;
}

absl::StatusOr<bool> PostgresSharedStore::AwaitAcknowledgements(const Fence& fence,
                                                                absl::Time deadline) {
  absl::MutexLock lock(&mutate_mutex_);
  const PgParam p[] = {PgParam::Text(fence.job_id), PgParam::Text(replica_id_),
                       PgParam::Int(fence.id), PgParam::Int(fence.step)};
  absl::Duration pause = absl::Microseconds(500);
  while (true) {
    ASSIGN_OR_RETURN(
        PgResult rows,
        mutate_->Exec("fence answers",
                      "SELECT count(*)::bigint FROM replica_marks m "
                      "JOIN replica_leases l ON l.replica_id = m.replica_id "
                      "AND l.lease_until > now() "
                      "WHERE m.job_id = $1 AND m.replica_id <> $2 AND m.reserved >= $4::bigint "
                      "AND NOT EXISTS (SELECT 1 FROM replica_fence_acks a "
                      "WHERE a.fence_id = $3::bigint AND a.replica_id = m.replica_id)",
                      p));
    if (rows.Int64(0, 0) == 0) return true;
    if (absl::Now() + pause > deadline) return false;
    absl::SleepFor(pause);  // A bounded poll on the updating call's own thread.
    pause = std::min(pause * 2, absl::Milliseconds(10));
  }
}

absl::Status PostgresSharedStore::DropFence(const Fence& fence) {
  absl::MutexLock lock(&mutate_mutex_);
  PgConnection& db = *mutate_;
  Transaction tx(db);
  RETURN_IF_ERROR(tx.Begin("drop fence"));
  const PgParam f[] = {PgParam::Int(fence.id)};
  RETURN_IF_ERROR(
      db.Exec("drop fence", "DELETE FROM replica_fences WHERE id = $1::bigint", f).status());
  RETURN_IF_ERROR(
      db.Exec("drop fence", "DELETE FROM replica_fence_acks WHERE fence_id = $1::bigint", f)
          .status());
  // Fenced replicas lift it on their next catch-up, which this makes happen now.
  RETURN_IF_ERROR(
      db.Exec("drop fence", absl::StrCat("SELECT pg_notify('", kChannelFences, "', $1)"), f)
          .status());
  return tx.Commit("drop fence");
}

absl::Status PostgresSharedStore::AcknowledgeFence(const Fence& fence, int64_t served) {
  absl::MutexLock lock(&follow_mutex_);
  PgConnection& db = *follow_;
  Transaction tx(db);
  RETURN_IF_ERROR(tx.Begin("acknowledge fence"));
  const PgParam m[] = {PgParam::Text(fence.job_id), PgParam::Text(replica_id_),
                       PgParam::Int(served)};
  RETURN_IF_ERROR(db.Exec("acknowledge fence",
                          "INSERT INTO replica_marks (job_id, replica_id, served, reserved) "
                          "VALUES ($1, $2, $3::bigint, $3::bigint) "
                          "ON CONFLICT (job_id, replica_id) DO UPDATE SET "
                          "served = GREATEST(replica_marks.served, EXCLUDED.served)",
                          m)
                      .status());
  const PgParam a[] = {PgParam::Int(fence.id), PgParam::Text(replica_id_), PgParam::Int(served)};
  RETURN_IF_ERROR(db.Exec("acknowledge fence",
                          "INSERT INTO replica_fence_acks (fence_id, replica_id, served) "
                          "SELECT $1::bigint, $2, $3::bigint WHERE EXISTS "
                          "(SELECT 1 FROM replica_fences WHERE id = $1::bigint) "
                          "ON CONFLICT DO NOTHING",
                          a)
                      .status());
  return tx.Commit("acknowledge fence");
}

absl::StatusOr<std::vector<Fence>> PostgresSharedStore::PendingFences() {
  absl::MutexLock lock(&follow_mutex_);
  PgConnection& db = *follow_;
  // An expired fence's taker finds it gone and does not commit (Mutate locks it first).
  RETURN_IF_ERROR(
      db.Exec("expire fences", "DELETE FROM replica_fences WHERE deadline < now()").status());
  ASSIGN_OR_RETURN(PgResult rows,
                   db.Exec("fences", "SELECT id, job_id, step FROM replica_fences ORDER BY id"));
  std::vector<Fence> fences;
  for (int i = 0; i < rows.rows(); ++i) {
    fences.push_back(Fence{rows.Int64(i, 0), std::string(rows.Bytes(i, 1)), rows.Int64(i, 2)});
  }
  return fences;
}

absl::StatusOr<std::vector<GrantedMark>> PostgresSharedStore::PutReplicaMarks(
    std::span<const ReplicaMark> marks) {
  absl::MutexLock lock(&flush_mutex_);
  PgConnection& db = *flush_;
  Transaction tx(db);
  RETURN_IF_ERROR(tx.Begin("flush marks"));
  std::vector<std::string> ids;
  for (const ReplicaMark& mark : marks) ids.push_back(mark.job_id);
  const PgParam array[] = {PgParam::Text(PgTextArray(ids))};
  // R2: the heads FOR SHARE (in id order), then the pending fences, under those locks.
  ASSIGN_OR_RETURN(PgResult heads,
                   db.Exec("flush marks",
                           "SELECT job_id, revision FROM replica_heads WHERE job_id = "
                           "ANY($1::text[]) ORDER BY job_id FOR SHARE",
                           array));
  std::map<std::string, int64_t, std::less<>> revisions;
  for (int i = 0; i < heads.rows(); ++i) {
    revisions.emplace(std::string(heads.Bytes(i, 0)), heads.Int64(i, 1));
  }
  ASSIGN_OR_RETURN(PgResult fences,
                   db.Exec("flush marks",
                           "SELECT job_id, min(step)::bigint FROM replica_fences WHERE job_id = "
                           "ANY($1::text[]) GROUP BY job_id",
                           array));
  std::map<std::string, int64_t, std::less<>> lowest;
  for (int i = 0; i < fences.rows(); ++i) {
    lowest.emplace(std::string(fences.Bytes(i, 0)), fences.Int64(i, 1));
  }
  std::vector<GrantedMark> granted;
  for (const ReplicaMark& mark : marks) {
    GrantedMark g{mark.job_id, mark.reserved_through, false};
    auto head = revisions.find(mark.job_id);
    g.behind = head != revisions.end() && head->second > mark.revision;
    if (auto fence = lowest.find(mark.job_id); fence != lowest.end()) {
      g.reserved_through = std::min(g.reserved_through, fence->second - 1);
    }
    // Behind: the mark is written, the reservation stays what it was.
    const int64_t reserve = g.behind ? -1 : g.reserved_through;
    const PgParam p[] = {PgParam::Text(mark.job_id), PgParam::Text(replica_id_),
                         PgParam::Int(mark.served_through), PgParam::Int(reserve)};
    ASSIGN_OR_RETURN(PgResult row,
                     db.Exec("flush marks",
                             "INSERT INTO replica_marks (job_id, replica_id, served, reserved) "
                             "VALUES ($1, $2, $3::bigint, GREATEST($3::bigint, $4::bigint)) "
                             "ON CONFLICT (job_id, replica_id) DO UPDATE SET "
                             "served = GREATEST(replica_marks.served, EXCLUDED.served), "
                             "reserved = GREATEST(replica_marks.reserved, $4::bigint) "
                             "RETURNING reserved",
                             p));
    g.reserved_through = row.Int64(0, 0);
    granted.push_back(std::move(g));
  }
  RETURN_IF_ERROR(tx.Commit("flush marks"));
  return granted;
}

absl::StatusOr<std::vector<Change>> PostgresSharedStore::ChangesSince(int64_t seq, size_t limit) {
  absl::MutexLock lock(&follow_mutex_);
  const PgParam p[] = {PgParam::Int(seq), PgParam::Int(static_cast<int64_t>(limit))};
  ASSIGN_OR_RETURN(PgResult rows,
                   follow_->Exec("changes",
                                 "SELECT seq, job_id FROM replica_changes WHERE seq > $1::bigint "
                                 "ORDER BY seq LIMIT $2::bigint",
                                 p));
  std::vector<Change> changes;
  for (int i = 0; i < rows.rows(); ++i) {
    changes.push_back(Change{rows.Int64(i, 0), std::string(rows.Bytes(i, 1))});
  }
  return changes;
}

absl::Status PostgresSharedStore::Retire(std::span<const ReplicaMark> marks) {
  absl::MutexLock lock(&flush_mutex_);
  PgConnection& db = *flush_;
  Transaction tx(db);
  RETURN_IF_ERROR(tx.Begin("retire"));
  for (const ReplicaMark& mark : marks) {
    const PgParam p[] = {PgParam::Text(mark.job_id), PgParam::Text(replica_id_),
                         PgParam::Int(mark.served_through)};
    RETURN_IF_ERROR(db.Exec("retire",
                            "UPDATE replica_marks SET served = GREATEST(served, $3::bigint), "
                            "reserved = GREATEST(served, $3::bigint) "
                            "WHERE job_id = $1 AND replica_id = $2",
                            p)
                        .status());
  }
  const PgParam r[] = {PgParam::Text(replica_id_)};
  RETURN_IF_ERROR(
      db.Exec("retire", "DELETE FROM replica_leases WHERE replica_id = $1", r).status());
  return tx.Commit("retire");
}

absl::Status PostgresSharedStore::RenewLease(absl::Duration lease) {
  absl::MutexLock lock(&follow_mutex_);
  const PgParam p[] = {PgParam::Text(replica_id_), PgParam::Int(absl::ToInt64Milliseconds(lease))};
  return follow_
      ->Exec("lease",
             "INSERT INTO replica_leases (replica_id, lease_until) VALUES "
             "($1, now() + $2::bigint * interval '1 millisecond') ON CONFLICT (replica_id) "
             "DO UPDATE SET lease_until = EXCLUDED.lease_until",
             p)
      .status();
}

absl::StatusOr<bool> PostgresSharedStore::WaitForAnnouncement(absl::Duration timeout) {
  absl::MutexLock lock(&listen_mutex_);
  PgConnection& db = *listen_;
  RETURN_IF_ERROR(db.EnsureConnected());  // Listens again after a reconnection.
  pg_conn* conn = db.raw();
  const auto drain = [&] {
    bool any = false;
    while (PGnotify* notify = PQnotifies(conn)) {
      any = true;
      PQfreemem(notify);
    }
    return any;
  };
  if (PQconsumeInput(conn) == 0) {
    return absl::UnavailableError(
        absl::StrCat("postgres ", db.where(), ": listening connection lost"));
  }
  if (drain()) return true;
  pollfd fd{PQsocket(conn), POLLIN, 0};
  const int ready = poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready <= 0) return false;
  if (PQconsumeInput(conn) == 0) {
    return absl::UnavailableError(
        absl::StrCat("postgres ", db.where(), ": listening connection lost"));
  }
  return drain();
}

}  // namespace hpsched::store
