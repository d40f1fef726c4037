// The SQLite store: exact round trips, survival across reopen, one process per directory, schema
// versions, and corrupt rows reported rather than loaded.
#include "store/sqlite_job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace hpsched::store {
namespace {

class SqliteJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("hpsched-sqlite-test-", ::getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<SqliteJobStore> Open() {
    auto store = SqliteJobStore::Open({dir_.string(), SyncMode::kFull});
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Runs SQL directly on the database, as another tool would.
  void Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "hpsched.db").c_str(), &db), SQLITE_OK);
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error ? error : "");
    sqlite3_free(error);
    sqlite3_close(db);
  }

  static JobRecord Record(const std::string& id, int64_t version) {
    JobRecord r;
    r.job_id = id;
    core::HyperparameterSpec lr{"lr", {0.1, 0.01}, {}};
    lr.schedule.kind = "sequential";
    lr.schedule.params["milestones"] = std::vector<int64_t>{5};
    lr.schedule.children = {
        core::ScheduleSpec{"linear", {{"start_factor", 0.1}, {"total_iters", int64_t{5}}}, {}},
        core::ScheduleSpec{"lambda", {{"expression", std::string("0.9 ** step")}}, {}}};
    core::HyperparameterSpec momentum{"momentum", {0.9}, core::ScheduleSpec{"constant", {}, {}}};
    r.spec.hyperparameters = {lr, momentum};
    r.spec.labels = {{"team", "vision"}};
    r.version = version;
    r.etag = absl::StrCat(version, "-abc");
    r.create_time = absl::FromUnixNanos(1'800'000'000'123'456'789);
    r.update_time = r.create_time + absl::Seconds(version);
    r.create_request_id = "req-" + id;
    // Live-job state: a history of segments, declared metrics, reports, remembered update requests
    // and the served-step mark.
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
    scaled.version = 3;
    core::SegmentSpec pinned;
    pinned.effective_step = 300;
    pinned.change = core::SegmentSpec::Change::kPin;
    pinned.pin = {0.001, 0.002};
    pinned.global_time = false;
    pinned.version = 4;
    r.spec.hyperparameters[0].segments = {anchored, scaled, pinned};
    r.spec.metrics = {core::MetricSpec{"val_loss", 100, -1}, core::MetricSpec{"acc", 0, 7}};
    r.metric_reports["val_loss"] = {{99, core::MetricReport{0.5, core::kNoNextReport}},
                                    {199, core::MetricReport{0.25, core::kNoNextReport}}};
    r.metric_reports["acc"] = {{7, core::MetricReport{0.9, 20}}};
    r.update_requests = {{"u-1", 2}, {"u-2", 3}};
    r.served_through = 41;
    return r;
  }

  std::filesystem::path dir_;
};

TEST_F(SqliteJobStoreTest, RoundTripsExactlyAndSurvivesReopen) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Put(Record("b", 1)).ok());
    ASSERT_TRUE(store->Put(Record("a", 1)).ok());
    ASSERT_TRUE(store->Put(Record("a", 2)).ok());  // Replaces.
    ASSERT_TRUE(store->Put(Record("c", 1)).ok());
    ASSERT_TRUE(store->Delete("c").ok());
    EXPECT_EQ(store->Delete("c").code(), absl::StatusCode::kNotFound);
  }
  auto store = Open();
  auto records = store->LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0], Record("a", 2));
  EXPECT_EQ((*records)[1], Record("b", 1));
}

TEST_F(SqliteJobStoreTest, OneProcessPerDirectory) {
  auto first = Open();
  auto second = SqliteJobStore::Open({dir_.string(), SyncMode::kFull});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another hpsched-server"), std::string::npos);
  first.reset();
  EXPECT_TRUE(SqliteJobStore::Open({dir_.string(), SyncMode::kFull}).ok());
}

TEST_F(SqliteJobStoreTest, MigratesASchemaOneDatabase) {
  {
    auto store = Open();
    JobRecord old = Record("a", 1);
    old.spec.hyperparameters[0].segments.clear();
    old.spec.metrics.clear();
    old.metric_reports.clear();
    old.update_requests.clear();
    old.served_through = -1;
    ASSERT_TRUE(store->Put(old).ok());
  }
  // What schema 1 was: no state column.
  Sql("ALTER TABLE jobs DROP COLUMN state; PRAGMA user_version = 1;");
  auto store = Open();
  auto records = store->LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].served_through, -1);
  EXPECT_TRUE((*records)[0].metric_reports.empty());
  // And the migrated database takes the new state.
  ASSERT_TRUE(store->Put(Record("a", 2)).ok());
  EXPECT_EQ((*store->LoadAll())[0], Record("a", 2));
}

TEST_F(SqliteJobStoreTest, SchemaIsVersioned) {
  Open().reset();
  Sql("PRAGMA user_version = 99");
  auto store = SqliteJobStore::Open({dir_.string(), SyncMode::kFull});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("schema version 99"), std::string::npos);
}

TEST_F(SqliteJobStoreTest, WalModeAndSyncSettings) {
  for (SyncMode mode : {SyncMode::kFull, SyncMode::kNormal, SyncMode::kOff}) {
    auto store = SqliteJobStore::Open({dir_.string(), mode});
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Put(Record("x", 1)).ok());
  }
  EXPECT_TRUE(std::filesystem::exists(dir_ / "hpsched.db"));
  EXPECT_EQ(*SqliteJobStore::ParseSyncMode("normal"), SyncMode::kNormal);
  EXPECT_EQ(SqliteJobStore::ParseSyncMode("fsync").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteJobStoreTest, CorruptRowsAreReportedNotLoaded) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Put(Record("a", 1)).ok());
  }
  Sql("UPDATE jobs SET job = x'0badc0de' WHERE job_id = 'a'");
  auto store = Open();
  auto records = store->LoadAll();
  EXPECT_EQ(records.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(records.status().message().find("stored job a"), std::string::npos);
}

TEST_F(SqliteJobStoreTest, UnwritableDirectoryIsAClearError) {
  auto store = SqliteJobStore::Open({"/proc/hpsched-cannot-be-here", SyncMode::kFull});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(store.status().message().find("--data_dir"), std::string::npos);
}

}  // namespace
}  // namespace hpsched::store
