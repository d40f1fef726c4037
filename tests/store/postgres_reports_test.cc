// Metric reports in PostgreSQL (schema 3, store/postgres_reports.h): a report writes one row of
// metric_reports whatever the job's age, through the single-server store and through the replicas'
// shared store; a replica reads only the rows it lacks; migration 3 moves the reports that rows of
// schema 2 held into the table, losing nothing, and refuses while a server of schema 2 is
// connected.
//
// Runs where HPSCHED_POSTGRES_URL names a throwaway database (ctest's postgres_reports starts one
// with tests/lib/pg_cluster.py); skipped elsewhere.
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "store/job_state.pb.h"
#include "store/postgres_connection.h"
#include "store/postgres_job_store.h"
#include "store/postgres_migrations.h"
#include "store/postgres_shared_store.h"
#include "store/stored_job.h"

namespace hpsched::store {
namespace {

constexpr const char* kTables =
    "DROP TABLE IF EXISTS jobs, meta, store_sessions, schema_migrations, replica_heads, "
    "replica_changes, replica_marks, replica_fences, replica_fence_acks, replica_leases, "
    "metric_reports CASCADE";

// A job with two metrics; val_loss holds `reports` reports.
core::JobRecord Record(const std::string& id, int reports) {
  core::JobRecord r;
  r.job_id = id;
  core::HyperparameterSpec lr{"lr", {0.1}, {}};
  lr.schedule.kind = "constant";
  r.spec.hyperparameters = {lr};
  r.spec.metrics = {core::MetricSpec{"val_loss", 1, 0}, core::MetricSpec{"acc", 0, 7}};
  r.version = 1;
  r.etag = "1";
  r.create_time = absl::FromUnixSeconds(1'800'000'000);
  r.update_time = r.create_time;
  core::MetricHistory& loss = r.metric_reports["val_loss"];
  for (int k = 0; k < reports; ++k) {
    // Values that need all 17 digits to come back bit for bit.
    loss.Add(k, core::MetricReport{1.0 / (3.0 + k), core::kNoNextReport});
  }
  r.metric_reports["acc"] = {{7, core::MetricReport{0.9, 20}}};
  return r;
}

class PostgresReportsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("HPSCHED_POSTGRES_URL");
    if (url == nullptr) {
      GTEST_SKIP() << "HPSCHED_POSTGRES_URL not set (ctest runs this through "
                      "tests/lib/pg_cluster.py)";
    }
    url_ = url;
    Sql(kTables);
  }
  void TearDown() override {
    if (!url_.empty()) Sql(kTables);
  }

  std::unique_ptr<PostgresJobStore> Open() {
    auto store = PostgresJobStore::Open({url_});
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::unique_ptr<PgConnection> Connect() {
    auto db = PgConnection::Connect(url_);
    EXPECT_TRUE(db.ok()) << db.status();
    return db.ok() ? *std::move(db) : nullptr;
  }
  void Sql(const std::string& sql) {
    const absl::Status status = Connect()->Script("test", sql);
    EXPECT_TRUE(status.ok()) << status;
  }
  // The first column of the first row of `sql`, as text ("" when there is no row).
  std::string Query(const std::string& sql) {
    auto result = Connect()->Exec("test", absl::StrCat("SELECT (", sql, ")::text"));
    EXPECT_TRUE(result.ok()) << result.status();
    return !result.ok() || result->rows() == 0 ? "" : std::string(result->Bytes(0, 0));
  }
  int64_t QueryInt(const std::string& sql) { return std::stoll(Query(sql)); }

  // Rows of `table` that the transaction which last wrote `job_id`'s row in `by` (jobs or
  // replica_heads) inserted or updated: every tuple it wrote carries its id as xmin.
  int64_t WrittenBy(const std::string& table, const std::string& by, const std::string& job_id) {
    const std::string xid =
        Query(absl::StrCat("SELECT xmin FROM ", by, " WHERE job_id = '", job_id, "'"));
    EXPECT_FALSE(xid.empty());
    return QueryInt(
        absl::StrCat("SELECT count(*) FROM ", table, " WHERE xmin::text = '", xid, "'"));
  }

  std::string url_;
};

TEST_F(PostgresReportsTest, AReportWritesOneRowWhateverTheHistory) {
  core::JobRecord record = Record("a", 1'000);
  {
    auto store = Open();
    ASSERT_TRUE(store->Put(record).ok());
    EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 1'001);
    const int64_t row_bytes = QueryInt("SELECT length(job) FROM jobs WHERE job_id = 'a'");
    // The 1,001st and 1,002nd reports: each Put writes the job's row and one report row, nothing
    // else (no history rewritten, deleted or re-inserted), and the row does not grow.
    for (int k = 1'000; k < 1'002; ++k) {
      record.metric_reports["val_loss"].Add(k, core::MetricReport{1.0 / (3.0 + k)});
      ASSERT_TRUE(store->Put(record).ok());
      EXPECT_EQ(WrittenBy("metric_reports", "jobs", "a"), 1) << k;
      EXPECT_EQ(WrittenBy("jobs", "jobs", "a"), 1) << k;
      EXPECT_EQ(QueryInt("SELECT length(job) FROM jobs WHERE job_id = 'a'"), row_bytes);
    }
    EXPECT_EQ(*store->Get("a"), record);
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 1'003);
  {
    // A store that loaded the job goes on from it: one more report, one more row.
    auto store = Open();
    auto loaded = store->LoadAll();
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    ASSERT_EQ(loaded->size(), 1u);
    EXPECT_EQ((*loaded)[0], record);
    const core::MetricHistory& loss = (*loaded)[0].metric_reports.at("val_loss");
    ASSERT_EQ(loss.size(), 1'002u);
    EXPECT_EQ(loss[1'001].step, 1'001);  // In the order they were added.
    core::JobRecord next = (*loaded)[0];
    next.metric_reports["val_loss"].Add(5'000, core::MetricReport{0.5});
    ASSERT_TRUE(store->Put(next).ok());
    EXPECT_EQ(WrittenBy("metric_reports", "jobs", "a"), 1);
    record = next;
  }
  {
    // A history that does not continue the stored one (fewer reports, a metric gone) replaces it;
    // a Delete takes the reports with the job.
    auto store = Open();
    EXPECT_EQ(*store->Get("a"), record);
    core::JobRecord other = Record("a", 2);
    other.metric_reports.erase("acc");
    ASSERT_TRUE(store->Put(other).ok());
    EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 2);
    EXPECT_EQ(*store->Get("a"), other);
    EXPECT_EQ((*Open()->LoadAll())[0], other);
    ASSERT_TRUE(store->Delete("a").ok());
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports"), 0);
}

TEST_F(PostgresReportsTest, AReplicaWritesOneRowPerReportAndReadsOnlyTheRowsItLacks) {
  ASSERT_NE(Open(), nullptr);  // Migrates.
  auto r1 = PostgresSharedStore::Open(url_, "r1");
  auto r2 = PostgresSharedStore::Open(url_, "r2");
  ASSERT_TRUE(r1.ok() && r2.ok());
  // A report through `replica`: appends (step, value) to the job as the database holds it.
  const auto report = [](PostgresSharedStore& replica, int64_t step, double value) {
    return replica.Mutate(
        "a", nullptr,
        [&](const std::optional<SharedJob>& current,
            const OthersServed&) -> absl::StatusOr<MutationDecision> {
          if (!current.has_value()) return absl::NotFoundError("a");
          MutationDecision decision{MutationDecision::Action::kPut, current->record};
          core::MetricHistory& loss = decision.record.metric_reports["val_loss"];
          if (loss.Find(step) != nullptr) return MutationDecision{};  // A duplicate.
          loss.Add(step, core::MetricReport{value});
          return decision;
        });
  };
  core::JobRecord record = Record("a", 1'000);
  ASSERT_TRUE((*r1)
                  ->Mutate("a", nullptr,
                           [&](const std::optional<SharedJob>&,
                               const OthersServed&) -> absl::StatusOr<MutationDecision> {
                             return MutationDecision{MutationDecision::Action::kPut, record};
                           })
                  .ok());
  // Through r1, which wrote the history: the row, one report row, one change, one head.
  ASSERT_TRUE(report(**r1, 1'000, 0.125).ok());
  EXPECT_EQ(WrittenBy("metric_reports", "replica_heads", "a"), 1);
  EXPECT_EQ(WrittenBy("jobs", "replica_heads", "a"), 1);
  EXPECT_EQ(WrittenBy("replica_changes", "replica_heads", "a"), 1);
  // Through r2, which holds nothing yet: it reads the history once, and writes one row.
  ASSERT_TRUE(report(**r2, 1'001, 0.25).ok());
  EXPECT_EQ(WrittenBy("metric_reports", "replica_heads", "a"), 1);
  // Back through r1, which lacks r2's report: it reads that row, writes its own.
  ASSERT_TRUE(report(**r1, 1'002, 0.375).ok());
  EXPECT_EQ(WrittenBy("metric_reports", "replica_heads", "a"), 1);
  // A report r1 recorded, arriving again at r2, is a duplicate there: nothing is written.
  auto duplicate = report(**r2, 1'002, 0.375);
  ASSERT_TRUE(duplicate.ok()) << duplicate.status();
  EXPECT_EQ(*duplicate, 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 1'004);

  // Both replicas, and a fresh load, see the same reports in the same order.
  record.metric_reports["val_loss"].Add(1'000, core::MetricReport{0.125});
  record.metric_reports["val_loss"].Add(1'001, core::MetricReport{0.25});
  record.metric_reports["val_loss"].Add(1'002, core::MetricReport{0.375});
  for (PostgresSharedStore* replica : {r1->get(), r2->get()}) {
    auto job = replica->ReadJob("a");
    ASSERT_TRUE(job.ok() && job->has_value()) << job.status();
    EXPECT_EQ((*job)->record.metric_reports, record.metric_reports);
  }
  auto r3 = PostgresSharedStore::Open(url_, "r3");
  ASSERT_TRUE(r3.ok());
  auto snapshot = (*r3)->LoadAllShared();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  ASSERT_EQ(snapshot->jobs.size(), 1u);
  EXPECT_EQ(snapshot->jobs[0].record.metric_reports, record.metric_reports);
  EXPECT_EQ(snapshot->jobs[0].record.metric_reports.at("val_loss")[1'002].step, 1'002);

  // A delete through any replica takes the reports along.
  ASSERT_TRUE((*r3)
                  ->Mutate("a", nullptr,
                           [](const std::optional<SharedJob>&,
                              const OthersServed&) -> absl::StatusOr<MutationDecision> {
                             return MutationDecision{MutationDecision::Action::kDelete, {}};
                           })
                  .ok());
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports"), 0);
  auto gone = (*r1)->ReadJob("a");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

TEST_F(PostgresReportsTest, MigrationThreeMovesTheReportsOfRowsIntoTheTableLosingNothing) {
  // A database of schema 2, written as a server of schema 2 wrote it: each row's StoredJob holds
  // the job's whole report history.
  auto db = Connect();
  auto applied = ApplyPgMigrations(*db, PgMigrations().first(2), absl::Seconds(10));
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_EQ(*applied, 2);
  std::vector<core::JobRecord> records = {Record("a", 1'500), Record("b", 0), Record("c", 1)};
  records[1].metric_reports.clear();  // A job without reports.
  records[2].served_through = 40;
  for (const core::JobRecord& r : records) {
    const std::string bytes = RecordToStoredJob(r, /*with_reports=*/true).SerializeAsString();
    const PgParam params[] = {PgParam::Text(r.job_id), PgParam::Int(r.version),
                              PgParam::Bytes(bytes), PgParam::Text(r.create_request_id)};
    ASSERT_TRUE(db->Exec("schema 2 put",
                         "INSERT INTO jobs (job_id, version, job, create_request_id) "
                         "VALUES ($1, $2::bigint, $3, $4)",
                         params)
                    .ok());
  }
  const int64_t old_bytes = QueryInt("SELECT length(job) FROM jobs WHERE job_id = 'a'");

  // A server of schema 2 still connected (its session row and lock): the migration waits for it.
  Sql("INSERT INTO store_sessions (session_id) VALUES (77)");
  auto old_server = Connect();
  const PgParam lock[] = {PgParam::Int(kPgSessionLockSpace), PgParam::Int(77)};
  ASSERT_TRUE(old_server->Exec("lock", "SELECT pg_advisory_lock($1::int, $2::int)", lock).ok());
  auto refused = PostgresJobStore::Open({url_});
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition) << refused.status();
  EXPECT_TRUE(absl::StrContains(refused.status().message(),
                                "schema migration 3 (metric reports in a table of their own) is "
                                "not additive, and store session(s) 77 of a server of the older "
                                "release are still connected"))
      << refused.status();
  EXPECT_EQ(Query("SELECT max(version) FROM schema_migrations"), "2");  // Rolled back whole.
  EXPECT_EQ(QueryInt("SELECT length(job) FROM jobs WHERE job_id = 'a'"), old_bytes);
  old_server.reset();  // It stops (uncleanly: its session row stays, its lock goes).

  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->migrations_applied(), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports"), 1'503);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 1'501);
  EXPECT_LT(QueryInt("SELECT length(job) FROM jobs WHERE job_id = 'a'"), old_bytes / 10);
  auto loaded = store->LoadAll();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, records);
  // Every report came back bit for bit, in the order it was added.
  const core::MetricHistory& loss = (*loaded)[0].metric_reports.at("val_loss");
  for (size_t k = 0; k < loss.size(); ++k) {
    ASSERT_EQ(loss[k].step, static_cast<int64_t>(k));
    ASSERT_EQ(loss[k].report.value, 1.0 / (3.0 + static_cast<double>(k)));
  }
  // And the migrated history goes on a row at a time.
  core::JobRecord next = (*loaded)[0];
  next.metric_reports["val_loss"].Add(1'500, core::MetricReport{0.5});
  ASSERT_TRUE(store->Put(next).ok());
  EXPECT_EQ(WrittenBy("metric_reports", "jobs", "a"), 1);
}

}  // namespace
}  // namespace hpsched::store
