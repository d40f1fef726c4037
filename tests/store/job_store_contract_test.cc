// The contract every JobStore keeps (store/job_store.h), run against each implementation: put, get,
// delete, list, load all, the live state of a job, concurrent writers, and a reopened store. A new
// store adds a fixture below and one line to StoreTypes. The PostgreSQL cases run where
// HPSCHED_POSTGRES_URL names a throwaway database (ctest's job_store_contract_postgres starts one
// with tests/lib/pg_cluster.py); elsewhere they are skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "store/job_store.h"
#include "store/memory_job_store.h"
#include "store/postgres_connection.h"
#include "store/postgres_job_store.h"
#include "store/sqlite_job_store.h"

namespace hpsched::store {
namespace {

// How a store type is made and reopened. Reopen ends the current store and opens it again over the
// same durable state; a store without durable state (memory) keeps the same instance.
class MemoryStoreFactory {
 public:
  JobStore* Open() {
    store_ = std::make_unique<MemoryJobStore>();
    return store_.get();
  }
  JobStore* Reopen() { return store_.get(); }
  void Clean() {}

 private:
  std::unique_ptr<MemoryJobStore> store_;
};

class SqliteStoreFactory {
 public:
  JobStore* Open() {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("hpsched-contract-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    return Reopen();
  }
  JobStore* Reopen() {
    store_.reset();  // Releases the directory's lock first.
    auto store = SqliteJobStore::Open({dir_.string(), SyncMode::kOff});
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = store.ok() ? *std::move(store) : nullptr;
    return store_.get();
  }
  void Clean() {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

 private:
  std::filesystem::path dir_;
  std::unique_ptr<SqliteJobStore> store_;
};

// Each test begins with an empty database: the store's tables are dropped before and after.
class PostgresStoreFactory {
 public:
  JobStore* Open() {
    const char* url = std::getenv("HPSCHED_POSTGRES_URL");
    if (url == nullptr || *url == '\0') return nullptr;
    url_ = url;
    DropTables();
    return Reopen();
  }
  JobStore* Reopen() {
    store_.reset();
    auto store = PostgresJobStore::Open({url_});
    EXPECT_TRUE(store.ok()) << store.status();
    store_ = store.ok() ? *std::move(store) : nullptr;
    return store_.get();
  }
  void Clean() {
    store_.reset();
    if (!url_.empty()) DropTables();
  }

 private:
  void DropTables() {
    auto db = PgConnection::Connect(url_);
    ASSERT_TRUE(db.ok()) << db.status();
    ASSERT_TRUE(
        (*db)
            ->Script("drop",
                     "DROP TABLE IF EXISTS jobs, meta, store_sessions, "
                     "schema_migrations, replica_heads, replica_changes, replica_marks, "
                     "replica_fences, replica_fence_acks, replica_leases, metric_reports CASCADE")
            .ok());
  }

  std::string url_;
  std::unique_ptr<PostgresJobStore> store_;
};

// A job with every kind of schedule parameter; `version` shows in etag and update_time.
core::JobRecord ContractRecord(const std::string& id, int64_t version) {
  core::JobRecord r;
  r.job_id = id;
  core::HyperparameterSpec lr{"lr", {0.1, 0.01}, {}};
  lr.schedule.kind = "sequential";
  lr.schedule.params["milestones"] = std::vector<int64_t>{5};
  lr.schedule.params["flag"] = true;
  lr.schedule.params["factors"] = std::vector<double>{0.5, 0.25};
  lr.schedule.children = {
      core::ScheduleSpec{"linear", {{"start_factor", 0.1}, {"total_iters", int64_t{5}}}, {}},
      core::ScheduleSpec{"lambda", {{"expression", std::string("0.9 ** step")}}, {}}};
  r.spec.hyperparameters = {lr};
  r.spec.labels = {{"team", "vision"}};
  r.spec.metrics = {core::MetricSpec{"val_loss", 100, -1}, core::MetricSpec{"acc", 0, 7}};
  r.version = version;
  r.etag = absl::StrCat(version, "-", id);
  r.create_time = absl::FromUnixNanos(1'800'000'000'123'456'789);
  r.update_time = r.create_time + absl::Nanoseconds(version);
  r.create_request_id = "req-" + id;
  return r;
}

template <typename Factory>
class JobStoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = factory_.Open();
    if (store_ == nullptr && std::is_same_v<Factory, PostgresStoreFactory>) {
      GTEST_SKIP() << "HPSCHED_POSTGRES_URL is not set (ctest runs these as "
                      "job_store_contract_postgres)";
    }
  }
  void TearDown() override { factory_.Clean(); }
  void Reopen() { store_ = factory_.Reopen(); }

  static core::JobRecord Record(const std::string& id, int64_t version) {
    return ContractRecord(id, version);
  }

  Factory factory_;
  JobStore* store_ = nullptr;
};

using StoreTypes = ::testing::Types<MemoryStoreFactory, SqliteStoreFactory, PostgresStoreFactory>;
// Test names say the store: JobStoreContractTest/Postgres.PutGetReplaceDelete.
struct StoreNames {
  template <typename Factory>
  static std::string GetName(int) {
    if (std::is_same_v<Factory, MemoryStoreFactory>) return "Memory";
    if (std::is_same_v<Factory, SqliteStoreFactory>) return "Sqlite";
    return "Postgres";
  }
};
TYPED_TEST_SUITE(JobStoreContractTest, StoreTypes, StoreNames);

TYPED_TEST(JobStoreContractTest, PutGetReplaceDelete) {
  JobStore& store = *this->store_;
  EXPECT_EQ(store.Get("a").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store.Put(this->Record("a", 1)).ok());
  EXPECT_EQ(*store.Get("a"), this->Record("a", 1));
  ASSERT_TRUE(store.Put(this->Record("a", 2)).ok());
  EXPECT_EQ(*store.Get("a"), this->Record("a", 2));
  ASSERT_TRUE(store.Delete("a").ok());
  EXPECT_EQ(store.Get("a").status().code(), absl::StatusCode::kNotFound);
  const absl::Status again = store.Delete("a");
  EXPECT_EQ(again.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(again.message(), "job a not found");
}

TYPED_TEST(JobStoreContractTest, LoadAllAndListGoInJobIdOrder) {
  JobStore& store = *this->store_;
  for (const char* id : {"c", "a", "e", "b", "d"}) ASSERT_TRUE(store.Put(this->Record(id, 1)).ok());
  auto all = store.LoadAll();
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> ids;
  for (const core::JobRecord& r : *all) ids.push_back(r.job_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b", "c", "d", "e"}));

  std::vector<std::string> paged;
  std::string after;
  for (int pages = 0; pages < 10; ++pages) {
    auto page = store.List(2, after);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    EXPECT_LE(page->size(), 2u);
    for (const core::JobRecord& r : *page) {
      EXPECT_EQ(r, this->Record(r.job_id, 1));
      paged.push_back(r.job_id);
    }
    after = page->back().job_id;
  }
  EXPECT_EQ(paged, ids);
  EXPECT_EQ(store.List(0, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store.List(10, "e")->empty());
}

// LoadEach (the start's streaming load) visits exactly what LoadAll returns, in order, and stops at
// the visitor's first error.
TYPED_TEST(JobStoreContractTest, LoadEachVisitsWhatLoadAllReturnsAndStopsAtAnError) {
  JobStore& store = *this->store_;
  for (const char* id : {"c", "a", "b"}) {
    core::JobRecord record = this->Record(id, 3);
    // Reports too: a store may keep them apart from the job's row (SQLite's metric_reports), and
    // the streaming load must still give each job its own, in the order they were added.
    if (id[0] != 'b') {
      record.metric_reports["loss"] = {
          {4, core::MetricReport{0.5, core::kNoNextReport}},
          {9, core::MetricReport{id[0] == 'a' ? 0.25 : 0.75, core::kNoNextReport}}};
    }
    ASSERT_TRUE(store.Put(record).ok());
  }
  std::vector<core::JobRecord> visited;
  ASSERT_TRUE(store
                  .LoadEach([&](core::JobRecord record) {
                    visited.push_back(std::move(record));
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(visited, *store.LoadAll());
  ASSERT_EQ(visited.size(), 3u);
  EXPECT_EQ(visited[0].job_id, "a");
  ASSERT_EQ(visited[0].metric_reports.size(), 1u);
  EXPECT_EQ(visited[0].metric_reports.at("loss").Find(9)->value, 0.25);
  EXPECT_TRUE(visited[1].metric_reports.empty());
  EXPECT_EQ(visited[2].metric_reports.at("loss").Find(9)->value, 0.75);

  std::vector<std::string> before_error;
  const absl::Status stopped = store.LoadEach([&](core::JobRecord record) {
    before_error.push_back(record.job_id);
    return record.job_id == "b" ? absl::InternalError("stop at b") : absl::OkStatus();
  });
  EXPECT_EQ(stopped, absl::InternalError("stop at b"));
  EXPECT_EQ(before_error, (std::vector<std::string>{"a", "b"}));
}

TYPED_TEST(JobStoreContractTest, LiveStateRoundTrips) {
  core::JobRecord r = this->Record("live", 4);
  core::SegmentSpec anchored;
  anchored.effective_step = 100;
  anchored.schedule = core::ScheduleSpec{"cosine_annealing", {{"t_max", int64_t{50}}}, {}};
  anchored.anchor = true;
  anchored.version = 2;
  anchored.create_time_nanos = 1'800'000'001'000'000'000;
  core::SegmentSpec scaled;
  scaled.effective_step = 200;
  scaled.change = core::SegmentSpec::Change::kScale;
  scaled.scale = 0.5;
  scaled.global_time = true;
  scaled.version = 3;
  core::SegmentSpec pinned;
  pinned.effective_step = 300;
  pinned.change = core::SegmentSpec::Change::kPin;
  pinned.pin = {0.001, 0.002};
  pinned.version = 4;
  r.spec.hyperparameters[0].segments = {anchored, scaled, pinned};
  r.metric_reports["val_loss"] = {{99, core::MetricReport{0.5, core::kNoNextReport}},
                                  {199, core::MetricReport{0.25, core::kNoNextReport}}};
  r.metric_reports["acc"] = {{7, core::MetricReport{0.9, 20}}};
  r.update_requests = {{"u-1", 2}, {"u-2", 3}, {"u-3", 4}};
  r.served_through = 41;
  ASSERT_TRUE(this->store_->Put(r).ok());
  EXPECT_EQ(*this->store_->Get("live"), r);
  this->Reopen();
  EXPECT_EQ(*this->store_->Get("live"), r);
  EXPECT_EQ(*this->store_->LoadAll(), std::vector<core::JobRecord>{r});
}

TYPED_TEST(JobStoreContractTest, ServedMarksRiseAndSurviveACleanStopExactly) {
  core::JobRecord r = this->Record("a", 1);
  r.served_through = 5;
  ASSERT_TRUE(this->store_->Put(r).ok());
  const ServedMark marks[] = {{"a", 40, 1040}, {"not-stored", 7, 8}};
  ASSERT_TRUE(this->store_->PutServedMarks(marks, false).ok());
  const ServedMark lower[] = {{"a", 20, 30}};
  ASSERT_TRUE(this->store_->PutServedMarks(lower, true).ok());
  EXPECT_EQ(this->store_->Get("not-stored").status().code(), absl::StatusCode::kNotFound);
  this->Reopen();
  // After a clean stop, the highest mark written, exactly; and the rest of the job unchanged.
  core::JobRecord loaded = *this->store_->Get("a");
  EXPECT_EQ(loaded.served_through, 40);
  loaded.served_through = r.served_through;
  EXPECT_EQ(loaded, r);
  EXPECT_EQ(this->store_->LoadAll()->at(0).served_through, 40);
}

TYPED_TEST(JobStoreContractTest, ConcurrentWritersLoseNothing) {
  constexpr int kThreads = 4;
  constexpr int kJobsPerThread = 10;
  JobStore* store = this->store_;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([store, t] {
      for (int j = 0; j < kJobsPerThread; ++j) {
        const std::string id = absl::StrCat("t", t, "-", j);
        for (int64_t version = 1; version <= 3; ++version) {
          EXPECT_TRUE(store->Put(ContractRecord(id, version)).ok());
        }
        if (j % 2 == 1) {
          EXPECT_TRUE(store->Delete(id).ok());
        }
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  auto all = store->LoadAll();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), static_cast<size_t>(kThreads * kJobsPerThread / 2));
  for (const core::JobRecord& r : *all) EXPECT_EQ(r, this->Record(r.job_id, 3));
}

TYPED_TEST(JobStoreContractTest, AReopenedStoreHoldsWhatWasAcknowledged) {
  ASSERT_TRUE(this->store_->Put(this->Record("a", 1)).ok());
  ASSERT_TRUE(this->store_->Put(this->Record("b", 1)).ok());
  ASSERT_TRUE(this->store_->Put(this->Record("a", 2)).ok());
  ASSERT_TRUE(this->store_->Delete("b").ok());
  this->Reopen();
  ASSERT_NE(this->store_, nullptr);
  EXPECT_EQ(*this->store_->LoadAll(), std::vector<core::JobRecord>{this->Record("a", 2)});
  EXPECT_EQ(this->store_->Get("b").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(this->store_->Put(this->Record("c", 1)).ok());
  EXPECT_EQ(this->store_->List(10, "a")->size(), 1u);
}

}  // namespace
}  // namespace hpsched::store
