// What the PostgreSQL store adds to the store contract: migrations applied once when stores start
// together, a newer schema refused or accepted by whether it is additive, reservations counted
// after an unclean stop (and not for a live store), clear errors without the password, and a
// restarted PostgreSQL: Unavailable while it is down, a reconnection by itself when it is back, and
// nothing acknowledged lost when it crashes under load.
//
// Runs where HPSCHED_POSTGRES_URL names a throwaway database and HPSCHED_PG_CLUSTER_DIR its cluster
// (ctest's postgres_job_store_test starts one with tests/lib/pg_cluster.py); skipped elsewhere.
#include "store/postgres_job_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/barrier.h"
#include "store/postgres_connection.h"
#include "store/postgres_migrations.h"

namespace hpsched::store {
namespace {

core::JobRecord Record(const std::string& id, int64_t version) {
  core::JobRecord r;
  r.job_id = id;
  core::HyperparameterSpec lr{"lr", {0.1}, {}};
  lr.schedule.kind = "constant";
  r.spec.hyperparameters = {lr};
  r.version = version;
  r.etag = absl::StrCat(version);
  r.create_time = absl::FromUnixSeconds(1'800'000'000);
  r.update_time = r.create_time + absl::Seconds(version);
  return r;
}

class PostgresJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* url = std::getenv("HPSCHED_POSTGRES_URL");
    const char* dir = std::getenv("HPSCHED_PG_CLUSTER_DIR");
    if (url == nullptr || dir == nullptr) {
      GTEST_SKIP() << "HPSCHED_POSTGRES_URL / HPSCHED_PG_CLUSTER_DIR not set (ctest runs this "
                      "through tests/lib/pg_cluster.py)";
    }
    url_ = url;
    cluster_dir_ = dir;
    Sql("DROP TABLE IF EXISTS jobs, meta, store_sessions, schema_migrations, replica_heads, "
        "replica_changes, replica_marks, replica_fences, replica_fence_acks, replica_leases, "
        "metric_reports "
        "CASCADE");
  }
  void TearDown() override {
    if (url_.empty()) return;
    Cluster("start");  // A test that stopped PostgreSQL leaves it running for the next.
    Sql("DROP TABLE IF EXISTS jobs, meta, store_sessions, schema_migrations, replica_heads, "
        "replica_changes, replica_marks, replica_fences, replica_fence_acks, replica_leases, "
        "metric_reports "
        "CASCADE");
  }

  std::unique_ptr<PostgresJobStore> Open() {
    auto store = PostgresJobStore::Open({url_});
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Runs `sql` on a connection of its own, as another tool would.
  void Sql(const std::string& sql) {
    auto db = PgConnection::Connect(url_);
    ASSERT_TRUE(db.ok()) << db.status();
    const absl::Status status = (*db)->Script("test", sql);
    EXPECT_TRUE(status.ok()) << status;
  }
  // The first column of the first row of the query `sql`, as text ("" when there is no row).
  std::string Query(const std::string& sql) {
    auto db = PgConnection::Connect(url_);
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return "";
    auto result = (*db)->Exec("test", absl::StrCat("SELECT (", sql, ")::text"));
    EXPECT_TRUE(result.ok()) << result.status();
    return !result.ok() || result->rows() == 0 ? "" : std::string(result->Bytes(0, 0));
  }

  // tests/lib/pg_cluster.py start|stop --dir <the cluster>: the same cluster, same port and data.
  void Cluster(const std::string& command, const std::string& mode = "") {
    const std::string line =
        absl::StrCat("/usr/bin/python3 ", HPSCHED_SOURCE_DIR, "/tests/lib/pg_cluster.py ", command,
                     " --dir ", cluster_dir_, mode, " > /dev/null");
    ASSERT_EQ(std::system(line.c_str()), 0) << line;
  }

  std::string url_;
  std::string cluster_dir_;
};

TEST_F(PostgresJobStoreTest, StoresStartingTogetherMigrateOnce) {
  constexpr int kStores = 4;
  absl::Barrier* start = new absl::Barrier(kStores);
  std::vector<absl::StatusOr<std::unique_ptr<PostgresJobStore>>> stores(kStores);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStores; ++i) {
    threads.emplace_back([&, i] {
      if (start->Block()) delete start;
      stores[i] = PostgresJobStore::Open({url_});
    });
  }
  for (std::thread& thread : threads) thread.join();
  int applied = 0;
  for (const auto& store : stores) {
    ASSERT_TRUE(store.ok()) << store.status();
    applied += (*store)->migrations_applied();
  }
  const int known = static_cast<int>(PgMigrations().size());
  EXPECT_EQ(applied, known);
  EXPECT_EQ(Query("SELECT count(*) FROM schema_migrations"), absl::StrCat(known));
  EXPECT_EQ(Query("SELECT max(version) FROM schema_migrations"), absl::StrCat(known));
  // One database identity for all, and a session each.
  for (const auto& store : stores) {
    EXPECT_EQ((*store)->database_id(), (*stores[0])->database_id());
    EXPECT_FALSE((*store)->database_id().empty());
  }
  EXPECT_EQ(Query("SELECT count(*) FROM store_sessions"), absl::StrCat(kStores));
  // A later start migrates nothing.
  EXPECT_EQ(Open()->migrations_applied(), 0);
}

TEST_F(PostgresJobStoreTest, ANewerSchemaRunsWhenAdditiveAndIsRefusedOtherwise) {
  ASSERT_NE(Open(), nullptr);
  const int next = static_cast<int>(PgMigrations().size()) + 1;
  Sql(absl::StrCat("INSERT INTO schema_migrations (version, name, additive) VALUES (", next,
                   ", 'a new table', true)"));
  auto additive = PostgresJobStore::Open({url_});
  EXPECT_TRUE(additive.ok()) << additive.status();
  Sql(absl::StrCat("INSERT INTO schema_migrations (version, name, additive) VALUES (", next + 1,
                   ", 'jobs rewritten', false)"));
  auto refused = PostgresJobStore::Open({url_});
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.status().message(),
                                absl::StrCat("whose migration ", next + 1, " (jobs rewritten)")))
      << refused.status();
}

TEST_F(PostgresJobStoreTest, AnUncleanStopCountsReservationsALiveStoreDoesNot) {
  std::unique_ptr<PostgresJobStore> first = Open();
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->Put(Record("a", 1)).ok());
  const ServedMark marks[] = {{"a", 10, 1000}};
  ASSERT_TRUE(first->PutServedMarks(marks, false).ok());

  // A second store while the first is alive: the first's session is not taken for ended.
  std::unique_ptr<PostgresJobStore> second = Open();
  ASSERT_NE(second, nullptr);
  EXPECT_TRUE(second->opened_after_clean_stop());
  EXPECT_EQ(second->Get("a")->served_through, 10);
  second->PutServedMarks({}, true).IgnoreError();
  second.reset();

  // The first ends without a clean stop (its connection closes, its session row stays).
  first.reset();
  std::unique_ptr<PostgresJobStore> after_crash = Open();
  ASSERT_NE(after_crash, nullptr);
  EXPECT_FALSE(after_crash->opened_after_clean_stop());
  EXPECT_EQ(after_crash->Get("a")->served_through, 1000);
  EXPECT_EQ(Query("SELECT count(*) FROM store_sessions"), "1");

  // A clean stop, then a reopen: exact, and the raised mark kept.
  ASSERT_TRUE(after_crash->PutServedMarks({}, true).ok());
  after_crash.reset();
  std::unique_ptr<PostgresJobStore> clean = Open();
  EXPECT_TRUE(clean->opened_after_clean_stop());
  EXPECT_EQ(clean->Get("a")->served_through, 1000);

  // A write after a clean stop makes the session unclean again.
  ASSERT_TRUE(clean->PutServedMarks({}, true).ok());
  ASSERT_TRUE(clean->Put(Record("b", 1)).ok());
  clean.reset();
  EXPECT_FALSE(Open()->opened_after_clean_stop());
}

TEST_F(PostgresJobStoreTest, RunInTransactionCommitsOrRollsBackWhole) {
  std::unique_ptr<PostgresJobStore> store = Open();
  ASSERT_NE(store, nullptr);
  Sql("CREATE TABLE side (n BIGINT)");
  const absl::Status failed = store->RunInTransaction("test", [](PgConnection& db) {
    const PgParam n[] = {PgParam::Int(1)};
    if (absl::Status s = db.Exec("side", "INSERT INTO side VALUES ($1::bigint)", n).status();
        !s.ok()) {
      return s;
    }
    return absl::AbortedError("changed my mind");
  });
  EXPECT_EQ(failed, absl::AbortedError("changed my mind"));
  EXPECT_EQ(Query("SELECT count(*) FROM side"), "0");
  ASSERT_TRUE(
      store
          ->RunInTransaction("test",
                             [](PgConnection& db) {
                               return db.Exec("side", "INSERT INTO side VALUES (2)").status();
                             })
          .ok());
  EXPECT_EQ(Query("SELECT sum(n) FROM side"), "2");
  // The store's own calls go on on the same connection.
  ASSERT_TRUE(store->Put(Record("a", 1)).ok());
  EXPECT_EQ(*store->Get("a"), Record("a", 1));
  Sql("DROP TABLE side");
}

TEST_F(PostgresJobStoreTest, StartErrorsAreClearAndNeverShowThePassword) {
  auto empty = PostgresJobStore::Open({""});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(empty.status().message(), "--postgres_url: must be set"));

  auto garbage = PostgresJobStore::Open({"postgresql://u:topsecret@host:notaport:x/db?bad=1"});
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kInvalidArgument) << garbage.status();
  EXPECT_FALSE(absl::StrContains(garbage.status().message(), "topsecret"));

  // The right server with the wrong password, and a port nobody listens on.
  const std::string port = Query("SELECT current_setting('port')");
  auto wrong = PostgresJobStore::Open(
      {absl::StrCat("postgresql://hpsched:topsecret@127.0.0.1:", port, "/hpsched")});
  ASSERT_EQ(wrong.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StartsWith(
      wrong.status().message(),
      absl::StrCat("postgres hpsched@127.0.0.1:", port, "/hpsched: cannot connect: ")))
      << wrong.status();
  EXPECT_TRUE(absl::StrContains(wrong.status().message(), "password authentication failed"));
  EXPECT_FALSE(absl::StrContains(wrong.status().message(), "topsecret"));
  auto nobody = PostgresJobStore::Open({"postgresql://hpsched:topsecret@127.0.0.1:1/hpsched"});
  ASSERT_EQ(nobody.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(absl::StrContains(nobody.status().message(), "topsecret"));
}

TEST_F(PostgresJobStoreTest, UnavailableWhileDownReconnectsByItselfWhenBack) {
  std::unique_ptr<PostgresJobStore> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put(Record("a", 1)).ok());
  const int session = store->session_id();

  Cluster("stop");
  const absl::Status put = store->Put(Record("b", 1));
  EXPECT_EQ(put.code(), absl::StatusCode::kUnavailable) << put;
  EXPECT_TRUE(absl::StartsWith(put.message(), absl::StrCat("postgres ", store->where(), ": ")))
      << put;
  const std::string password = url_.substr(url_.find(':', 14) + 1, 24);
  EXPECT_FALSE(absl::StrContains(put.message(), password));
  EXPECT_EQ(store->Get("a").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->LoadAll().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->Delete("a").code(), absl::StatusCode::kUnavailable);
  const ServedMark marks[] = {{"a", 5, 50}};
  EXPECT_EQ(store->PutServedMarks(marks, false).code(), absl::StatusCode::kUnavailable);

  Cluster("start");
  // The next call connects again: nothing to do but call.
  ASSERT_TRUE(store->Put(Record("b", 1)).ok());
  EXPECT_EQ(*store->LoadAll(), (std::vector<core::JobRecord>{Record("a", 1), Record("b", 1)}));
  // The session is registered again (row and lock), so a crash from here on is seen as unclean.
  EXPECT_EQ(Query(absl::StrCat("SELECT count(*) FROM store_sessions WHERE session_id = ", session)),
            "1");
  EXPECT_EQ(Query(absl::StrCat("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
                               "classid = ",
                               PostgresJobStore::kSessionLockSpace, " AND objid = ", session)),
            "1");

  // Restarted while idle: the connection's loss is noticed by one call, the next one works.
  Cluster("stop");
  Cluster("start");
  bool recovered = false;
  for (int call = 0; call < 2 && !recovered; ++call) {
    absl::StatusOr<core::JobRecord> a = store->Get("a");
    if (a.ok()) {
      recovered = true;
      EXPECT_EQ(*a, Record("a", 1));
    } else {
      EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable) << a.status();
    }
  }
  EXPECT_TRUE(recovered);
}

TEST_F(PostgresJobStoreTest, ACrashOfPostgresUnderLoadLosesNothingAcknowledged) {
  std::unique_ptr<PostgresJobStore> store = Open();
  ASSERT_NE(store, nullptr);
  constexpr int kWriters = 3;
  constexpr int kJobs = 4;
  // Bounded: the writers stop when told, after at most this many Puts each.
  constexpr int kMaxPutsPerWriter = 100000;
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0};
  // acknowledged[w][j]: the highest version of job w-j whose Put returned OK (written by writer w
  // only, read after the joins); acked_puts[w]: how many of writer w's Puts were acknowledged.
  std::vector<std::vector<int64_t>> acknowledged(kWriters, std::vector<int64_t>(kJobs, 0));
  std::vector<std::atomic<int>> acked_puts(kWriters);
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 1; i <= kMaxPutsPerWriter && !stop.load(); ++i) {
        const int j = i % kJobs;
        const int64_t version = i;
        const absl::Status status = store->Put(Record(absl::StrCat("w", w, "-", j), version));
        if (status.ok()) {
          acknowledged[w][j] = version;
          ++acked_puts[w];
        } else {
          EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
          ++failures;
          std::this_thread::sleep_for(std::chrono::milliseconds(5));  // Pace the retries.
        }
      }
    });
  }
  const auto wait_for_puts = [&](int beyond) {
    // Every writer acknowledges `beyond` more Puts than it had (a liveness bound, not a speed
    // check).
    std::vector<int> start(kWriters);
    for (int w = 0; w < kWriters; ++w) start[w] = acked_puts[w].load();
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    for (int w = 0; w < kWriters; ++w) {
      while (acked_puts[w].load() < start[w] + beyond && absl::Now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      EXPECT_GE(acked_puts[w].load(), start[w] + beyond) << "writer " << w;
    }
  };
  wait_for_puts(kJobs);  // Every job exists.
  // Crash PostgreSQL (immediate: no checkpoint, recovery from the WAL) while they write.
  Cluster("stop", " --mode immediate");
  Cluster("start");
  wait_for_puts(10);  // They write again.
  stop = true;
  for (std::thread& writer : writers) writer.join();
  EXPECT_GT(failures.load(), 0) << "the crash did not happen while the writers wrote";

  std::unique_ptr<PostgresJobStore> reopened = Open();
  auto all = reopened->LoadAll();
  ASSERT_TRUE(all.ok()) << all.status();
  std::map<std::string, int64_t> stored;
  for (const core::JobRecord& r : *all) stored[r.job_id] = r.version;
  for (int w = 0; w < kWriters; ++w) {
    for (int j = 0; j < kJobs; ++j) {
      const std::string id = absl::StrCat("w", w, "-", j);
      // Each writer's Puts of a job are in order: the stored version is at least the last
      // acknowledged one (a Put cut off during its commit may have landed too).
      EXPECT_GE(stored[id], acknowledged[w][j]) << id;
      EXPECT_GT(acknowledged[w][j], 0) << id;
    }
  }
}

}  // namespace
}  // namespace hpsched::store
