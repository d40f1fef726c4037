// The SQLite store: exact round trips, survival across reopen, one process per directory (even
// without its LOCK file), schema versions, corrupt rows reported rather than loaded, served marks
// and their reservations across clean and unclean stops, and refusals at start: an unwritable
// database, a database found missing or emptied.
#include "store/sqlite_job_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "store/stored_job.h"

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

  // The single integer `sql` selects.
  int64_t QueryInt(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir_ / "hpsched.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    int64_t value = -1;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      value = sqlite3_column_int64(stmt, 0);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  }

  static core::JobRecord Record(const std::string& id, int64_t version) {
    core::JobRecord r;
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

// tests/store/testdata/schema2_main.db: written by the main branch of 2026-12-01 (schema 2, rows
// holding the v1.Job resource) through its hpsched CLI: three jobs, updates of every kind, metric
// reports for a reduce_on_plateau job, a served mark, then a graceful stop.
constexpr char kSchema2Fixture[] = HPSCHED_SOURCE_DIR "/tests/store/testdata/schema2_main.db";

absl::Time At(int64_t unix_nanos) { return absl::FromUnixNanos(unix_nanos); }

// What the fixture's jobs were created and updated with, field by field.
std::vector<core::JobRecord> Schema2FixtureRecords() {
  core::JobRecord announced;
  announced.job_id = "announced";
  announced.spec.hyperparameters = {
      core::HyperparameterSpec{"lr",
                               {0.5},
                               core::ScheduleSpec{"transformers",
                                                  {{"name", std::string("linear")},
                                                   {"num_warmup_steps", int64_t{10}},
                                                   {"num_training_steps", int64_t{100}}},
                                                  {}}}};
  announced.spec.metrics = {core::MetricSpec{"acc", 0, 7}};
  announced.version = 1;
  announced.etag = "1-bd575388aa95d06a";
  announced.create_time = announced.update_time = At(1796167861489222862);
  announced.create_request_id = "590f1b4a1713bd5b2cb52e603fddfb60";
  announced.metric_reports["acc"] = {{7, core::MetricReport{0.25, 20}}};

  core::JobRecord demo;
  demo.job_id = "demo";
  core::HyperparameterSpec lr{"lr", {0.1, 0.01}, {}};
  lr.schedule.kind = "sequential";
  lr.schedule.params["milestones"] = std::vector<int64_t>{5};
  lr.schedule.children = {
      core::ScheduleSpec{"linear", {{"start_factor", 0.1}, {"total_iters", int64_t{5}}}, {}},
      core::ScheduleSpec{"exponential", {{"gamma", 0.9}}, {}}};
  core::SegmentSpec anchored;
  anchored.effective_step = 50;
  anchored.schedule = core::ScheduleSpec{"cosine_annealing", {{"t_max", int64_t{20}}}, {}};
  anchored.anchor = true;
  anchored.version = 2;
  anchored.create_time_nanos = 1796167861565676442;
  core::SegmentSpec scaled;
  scaled.effective_step = 80;
  scaled.change = core::SegmentSpec::Change::kScale;
  scaled.scale = 0.5;
  scaled.version = 3;
  scaled.create_time_nanos = 1796167861600637135;
  core::SegmentSpec pinned;
  pinned.effective_step = 90;
  pinned.change = core::SegmentSpec::Change::kPin;
  pinned.pin = {0.001, 0.002};
  pinned.version = 4;
  pinned.create_time_nanos = 1796167861682934539;
  lr.segments = {anchored, scaled, pinned};
  demo.spec.hyperparameters = {lr};
  demo.version = 4;
  demo.etag = "4-cbb888373e6ce503";
  demo.create_time = At(1796167861353775240);
  demo.update_time = At(1796167861682934539);
  demo.create_request_id = "6a2d5d8c640fe3f5b16db07bbc99774e";
  demo.update_requests = {{"a41dd0a2d4999b76665fc7eabde94798", 2},
                          {"cfcbd246c594e28af38a6deeaba88c14", 3},
                          {"521b0f009fa40eecb739dfa6e8d84030", 4}};

  core::JobRecord live;
  live.job_id = "live";
  core::HyperparameterSpec plateau{
      "lr",
      {0.1},
      core::ScheduleSpec{"reduce_on_plateau",
                         {{"metric", std::string("val_loss")}, {"patience", int64_t{2}}},
                         {}}};
  core::SegmentSpec stepped;
  stepped.effective_step = 1000;
  stepped.schedule = core::ScheduleSpec{"step", {{"step_size", int64_t{10}}, {"gamma", 0.5}}, {}};
  stepped.global_time = true;
  stepped.version = 2;
  stepped.create_time_nanos = 1796167861745179885;
  plateau.segments = {stepped};
  live.spec.hyperparameters = {
      plateau, core::HyperparameterSpec{"momentum", {0.9}, core::ScheduleSpec{"constant", {}, {}}}};
  live.spec.labels = {{"team", "vision"}};
  live.spec.metrics = {core::MetricSpec{"val_loss", 100, -1}};
  live.version = 2;
  live.etag = "2-b979a9cef1e5bd58";
  live.create_time = At(1796167861416028437);
  live.update_time = At(1796167861745179885);
  live.create_request_id = "ac9fbe2bcd4470ef1021fd558123c0fc";
  live.metric_reports["val_loss"] = {{99, core::MetricReport{0.899, core::kNoNextReport}},
                                     {199, core::MetricReport{0.8199, core::kNoNextReport}},
                                     {299, core::MetricReport{0.8299, core::kNoNextReport}},
                                     {399, core::MetricReport{0.8399, core::kNoNextReport}}};
  live.update_requests = {{"ea7c395cbffd95382cd61befa23c4699", 2}};
  live.served_through = 299;
  return {announced, demo, live};
}

TEST_F(SqliteJobStoreTest, LoadsADatabaseWrittenByTheSchema2Release) {
  std::filesystem::create_directories(dir_);
  std::filesystem::copy_file(kSchema2Fixture, dir_ / "hpsched.db");
  const std::vector<core::JobRecord> expected = Schema2FixtureRecords();
  {
    auto store = Open();
    auto records = store->LoadAll();
    ASSERT_TRUE(records.ok()) << records.status();
    ASSERT_EQ(records->size(), 3u);
    for (size_t i = 0; i < expected.size(); ++i) {
      const core::JobRecord& got = (*records)[i];
      const core::JobRecord& want = expected[i];
      EXPECT_EQ(got.job_id, want.job_id);
      EXPECT_EQ(got.spec.hyperparameters, want.spec.hyperparameters) << want.job_id;
      EXPECT_EQ(got.spec.labels, want.spec.labels) << want.job_id;
      EXPECT_EQ(got.spec.metrics, want.spec.metrics) << want.job_id;
      EXPECT_EQ(got.version, want.version) << want.job_id;
      EXPECT_EQ(got.etag, want.etag) << want.job_id;
      EXPECT_EQ(got.create_time, want.create_time) << want.job_id;
      EXPECT_EQ(got.update_time, want.update_time) << want.job_id;
      EXPECT_EQ(got.create_request_id, want.create_request_id) << want.job_id;
      EXPECT_EQ(got.metric_reports, want.metric_reports) << want.job_id;
      EXPECT_EQ(got.update_requests, want.update_requests) << want.job_id;
      EXPECT_EQ(got.served_through, want.served_through) << want.job_id;
      EXPECT_EQ(got, want);
    }
    // A migrated row is rewritten in the store's own format by its next Put.
    ASSERT_TRUE(store->Put(expected[1]).ok());
  }
  auto store = Open();
  EXPECT_EQ(*store->LoadAll(), expected);
}

TEST_F(SqliteJobStoreTest, MigratesASchemaOneDatabase) {
  std::filesystem::create_directories(dir_);
  std::filesystem::copy_file(kSchema2Fixture, dir_ / "hpsched.db");
  // What schema 1 was: no state column.
  Sql("ALTER TABLE jobs DROP COLUMN state; PRAGMA user_version = 1;");
  auto store = Open();
  auto records = store->LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 3u);
  EXPECT_EQ((*records)[2].spec, Schema2FixtureRecords()[2].spec);
  EXPECT_EQ((*records)[2].served_through, -1);
  EXPECT_TRUE((*records)[2].metric_reports.empty());
  // And the migrated database takes the new state.
  ASSERT_TRUE(store->Put(Record("live", 2)).ok());
  EXPECT_EQ(*store->Get("live"), Record("live", 2));
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

TEST_F(SqliteJobStoreTest, DeletingTheLockFileDoesNotLetASecondStoreIn) {
  auto first = Open();
  ASSERT_TRUE(first->Put(Record("a", 1)).ok());
  ASSERT_TRUE(std::filesystem::remove(dir_ / "LOCK"));
  // The second store gets a new LOCK file of its own; the database itself stays locked.
  auto second = SqliteJobStore::Open({dir_.string(), SyncMode::kFull});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(second.status().message(),
            absl::StrCat("--data_dir: ", (dir_ / "hpsched.db").string(),
                         " is locked by another process (another hpsched-server on this "
                         "directory, even if its LOCK file was deleted)"));
  // WAL with the exclusive lock keeps its index in the process: no -shm file to share.
  EXPECT_FALSE(std::filesystem::exists(dir_ / "hpsched.db-shm"));
  ASSERT_TRUE(first->Put(Record("a", 2)).ok());
  first.reset();
  auto store = Open();
  EXPECT_EQ(*store->Get("a"), Record("a", 2));
}

TEST_F(SqliteJobStoreTest, ServedMarksCountTheirReservationsAfterAnUncleanStop) {
  core::JobRecord a = Record("a", 1);
  core::JobRecord b = Record("b", 1);
  a.served_through = b.served_through = -1;
  {
    auto store = Open();
    EXPECT_TRUE(store->opened_after_clean_stop());  // A new store.
    ASSERT_TRUE(store->Put(a).ok());
    ASSERT_TRUE(store->Put(b).ok());
    const ServedMark marks[] = {{"a", 10, 1010}, {"b", 5, 1005}, {"deleted-meanwhile", 1, 2}};
    ASSERT_TRUE(store->PutServedMarks(marks, false).ok());
    // Marks never go down.
    const ServedMark lower[] = {{"a", 3, 4}};
    ASSERT_TRUE(store->PutServedMarks(lower, false).ok());
  }  // Not stopped cleanly: as after a kill -9.
  {
    auto store = Open();
    EXPECT_FALSE(store->opened_after_clean_stop());
    auto records = store->LoadAll();
    ASSERT_TRUE(records.ok()) << records.status();
    ASSERT_EQ(records->size(), 2u);
    EXPECT_EQ((*records)[0].served_through, 1010);  // Up to the reservation may have been served.
    EXPECT_EQ((*records)[1].served_through, 1005);
    EXPECT_EQ(store->Get("deleted-meanwhile").status().code(), absl::StatusCode::kNotFound);
    // A clean stop with the exact mark of a: b keeps the bound it got from the crash.
    const ServedMark final_marks[] = {{"a", 1012, 1012}};
    ASSERT_TRUE(store->PutServedMarks(final_marks, true).ok());
  }
  {
    auto store = Open();
    EXPECT_TRUE(store->opened_after_clean_stop());
    EXPECT_EQ(store->Get("a")->served_through, 1012);
    EXPECT_EQ(store->Get("b")->served_through, 1005);
    const ServedMark marks[] = {{"a", 2000, 3000}};
    ASSERT_TRUE(store->PutServedMarks(marks, false).ok());
    ASSERT_TRUE(store->PutServedMarks({}, true).ok());
    // A write after the clean-stop mark undoes it.
    ASSERT_TRUE(store->Put(b).ok());
  }
  auto store = Open();
  EXPECT_FALSE(store->opened_after_clean_stop());
  EXPECT_EQ(store->Get("a")->served_through, 3000);
}

// Runs `open` in a child process as an unprivileged user when the test runs as root (permission
// bits do not stop root), and exits with the status code of the Open, its message on stderr.
void OpenAsUnprivileged(const std::function<absl::Status()>& open) {
  if (::getuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) std::exit(100);
  const absl::Status status = open();
  std::fprintf(stderr, "%s\n", std::string(status.message()).c_str());
  std::exit(static_cast<int>(status.code()));
}

TEST_F(SqliteJobStoreTest, AnUnwritableDatabaseIsRefusedAtOpen) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Put(Record("a", 1)).ok());
  }
  // The directory and LOCK stay writable: only the database is not.
  std::filesystem::permissions(dir_, std::filesystem::perms::all);
  std::filesystem::permissions(dir_ / "LOCK", std::filesystem::perms::all);
  std::filesystem::permissions(dir_ / "IDENTITY", std::filesystem::perms::all);
  std::filesystem::permissions(dir_ / "hpsched.db", std::filesystem::perms::owner_read |
                                                        std::filesystem::perms::group_read |
                                                        std::filesystem::perms::others_read);
  const std::string db = (dir_ / "hpsched.db").string();
  EXPECT_EXIT(OpenAsUnprivileged([&] {
                return SqliteJobStore::Open({dir_.string(), SyncMode::kFull}).status();
              }),
              ::testing::ExitedWithCode(static_cast<int>(absl::StatusCode::kFailedPrecondition)),
              "--data_dir: " + db + " is not writable \\(SQLite could open it only for reading\\)");
}

TEST_F(SqliteJobStoreTest, AnEmptiedDatabaseIsRefusedUnlessAccepted) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Put(Record("a", 1)).ok());
  }
  const std::string db = (dir_ / "hpsched.db").string();
  std::filesystem::resize_file(db, 0);
  auto refused = SqliteJobStore::Open({dir_.string(), SyncMode::kFull});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(
      absl::StartsWith(refused.status().message(),
                       absl::StrCat("--data_dir: ", db, " is empty (0 bytes), but ",
                                    (dir_ / "IDENTITY").string(), " records that database ")))
      << refused.status();
  EXPECT_TRUE(absl::EndsWith(refused.status().message(),
                             ", which held jobs, was here: restore hpsched.db (with its -wal file) "
                             "from a backup, or start with --accept_empty_store to begin with an "
                             "empty store"))
      << refused.status();
  EXPECT_EQ(std::filesystem::file_size(db), 0u);  // Refused without writing to it.
  std::filesystem::remove(db);
  EXPECT_NE(SqliteJobStore::Open({dir_.string(), SyncMode::kFull})
                .status()
                .message()
                .find(db + " is missing, but "),
            std::string::npos);

  // Accepted: a new database, which IDENTITY names from now on.
  auto accepted = SqliteJobStore::Open({dir_.string(), SyncMode::kFull, true});
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_TRUE((*accepted)->LoadAll()->empty());
  accepted->reset();
  EXPECT_TRUE(Open() != nullptr);
}

TEST_F(SqliteJobStoreTest, DatabasesThatHeldNoJobOrWereEmptiedByDeletesOpen) {
  Open().reset();
  std::filesystem::remove(dir_ / "hpsched.db");
  {
    auto store = Open();  // It never held a job: nothing is lost.
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put(Record("a", 1)).ok());
    ASSERT_TRUE(store->Delete("a").ok());
  }
  auto store = Open();  // Emptied by the API: the same database.
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->LoadAll()->empty());
}

TEST_F(SqliteJobStoreTest, UnwritableDirectoryIsAClearError) {
  auto store = SqliteJobStore::Open({"/proc/hpsched-cannot-be-here", SyncMode::kFull});
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(store.status().message().find("--data_dir"), std::string::npos);
}

// (The store holds SQLite's exclusive lock while open: the checks below read the database between
// opens.)
TEST_F(SqliteJobStoreTest, AReportWritesOneRowNotTheHistory) {
  core::JobRecord record = Record("a", 1);
  {
    auto store = Open();
    ASSERT_TRUE(store->Put(record).ok());
  }
  const int64_t row_bytes = QueryInt("SELECT length(job) FROM jobs WHERE job_id = 'a'");
  EXPECT_GT(row_bytes, 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 3);
  {
    // 2,000 more reports, a Put each, as the registry writes them: the row stays the same size and
    // each Put adds one row to metric_reports.
    auto store = Open();
    ASSERT_TRUE(store->Put(record).ok());
    for (int64_t k = 2; k < 2002; ++k) {
      record.metric_reports["val_loss"].Add(k * 100 + 99, core::MetricReport{1.0 / k});
      ASSERT_TRUE(store->Put(record).ok());
    }
  }
  EXPECT_EQ(QueryInt("SELECT length(job) FROM jobs WHERE job_id = 'a'"), row_bytes);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 2003);
  core::JobRecord next;
  {
    auto store = Open();
    auto records = store->LoadAll();
    ASSERT_TRUE(records.ok()) << records.status();
    ASSERT_EQ(records->size(), 1u);
    EXPECT_EQ((*records)[0], record);
    // The reports keep the order they were added in.
    const core::MetricHistory& loaded = (*records)[0].metric_reports.at("val_loss");
    ASSERT_EQ(loaded.size(), 2002u);
    EXPECT_EQ(loaded[2001].step, 200199);
    // A loaded history continues where it stopped: one more report, one more row.
    next = (*records)[0];
    next.metric_reports["val_loss"].Add(200299, core::MetricReport{0.5});
    ASSERT_TRUE(store->Put(next).ok());
    EXPECT_EQ(*store->Get("a"), next);
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 2004);
}

TEST_F(SqliteJobStoreTest, APutReplacesReportsOfAnotherHistoryAndADeleteRemovesThem) {
  core::JobRecord record = Record("a", 1);
  core::JobRecord other = Record("a", 2);
  {
    auto store = Open();
    ASSERT_TRUE(store->Put(record).ok());
    // A record whose history is not the one written (fewer reports, other values, a metric gone).
    other.metric_reports.erase("acc");
    other.metric_reports["val_loss"] = {{99, core::MetricReport{0.75, core::kNoNextReport}}};
    ASSERT_TRUE(store->Put(other).ok());
    EXPECT_EQ(*store->Get("a"), other);
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 1);
  {
    // The history written first, again, with one more report: all of it is written again.
    auto store = Open();
    ASSERT_TRUE(store->Put(other).ok());
    record.metric_reports["val_loss"].Add(299, core::MetricReport{0.125});
    ASSERT_TRUE(store->Put(record).ok());
    EXPECT_EQ(*store->Get("a"), record);
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 4);
  {
    auto store = Open();
    EXPECT_EQ((*store->LoadAll())[0], record);
    ASSERT_TRUE(store->Delete("a").ok());
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports"), 0);
  EXPECT_TRUE(Open()->LoadAll()->empty());
}

TEST_F(SqliteJobStoreTest, ReportsARowOfSchema4HeldMoveToTheTableOnTheNextPut) {
  const core::JobRecord record = Record("a", 1);
  {
    auto store = Open();
    ASSERT_TRUE(store->Put(record).ok());
  }
  // The row as schema 4 wrote it: every report inside the StoredJob, no metric_reports rows.
  const std::string bytes = RecordToStoredJob(record).SerializeAsString();
  std::string hex;
  for (unsigned char c : bytes) absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
  Sql(absl::StrCat("DELETE FROM metric_reports; UPDATE jobs SET job = x'", hex,
                   "' WHERE job_id = 'a'"));
  auto store = Open();
  auto records = store->LoadAll();
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0], record);
  core::JobRecord next = (*records)[0];
  next.metric_reports["val_loss"].Add(299, core::MetricReport{0.125});
  ASSERT_TRUE(store->Put(next).ok());
  store.reset();
  EXPECT_EQ(QueryInt("SELECT count(*) FROM metric_reports WHERE job_id = 'a'"), 4);
  EXPECT_EQ((*Open()->LoadAll())[0], next);
}

}  // namespace
}  // namespace hpsched::store
