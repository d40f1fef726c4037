// The job table: idempotent creation, conflicts, listing, deletion, that a failed store write
// changes nothing, and the served-mark flusher: reservations ahead of reads, batched flushes, and
// a guard that holds across a crash.
#include "jobs/job_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "jobs/executor.h"
#include "store/memory_job_store.h"
#include "store/sqlite_job_store.h"
#include "test_specs.h"

namespace hpsched::jobs {
namespace {

core::JobSpec StepSpec(int64_t step_size) {
  core::JobSpec spec;
  spec.hyperparameters.push_back(
      {"lr", {0.1}, core::ScheduleSpec{"step", {{"step_size", step_size}}, {}}});
  return spec;
}

// A store whose writes can be made to fail, to check that the registry writes before it changes
// anything.
class FlakyStore final : public store::JobStore {
 public:
  absl::Status Put(const core::JobRecord& record) override {
    if (fail) return absl::UnavailableError("disk on fire");
    return inner.Put(record);
  }
  absl::Status Delete(absl::string_view id) override {
    if (fail) return absl::UnavailableError("disk on fire");
    return inner.Delete(id);
  }
  absl::StatusOr<std::vector<core::JobRecord>> LoadAll() override { return inner.LoadAll(); }
  absl::Status PutServedMarks(std::span<const store::ServedMark> marks, bool clean_stop) override {
    if (fail) return absl::UnavailableError("disk on fire");
    flushes.emplace_back(marks.begin(), marks.end());
    clean_stops += clean_stop ? 1 : 0;
    return inner.PutServedMarks(marks, clean_stop);
  }
  bool fail = false;
  // The marks of every PutServedMarks, one entry per transaction.
  std::vector<std::vector<store::ServedMark>> flushes;
  int clean_stops = 0;
  store::MemoryJobStore inner;
};

class JobRegistryTest : public ::testing::Test {
 protected:
  FlakyStore store_;
  FakeClock clock_{absl::FromUnixSeconds(1'800'000'000)};
  JobRegistry registry_{&store_, &clock_};
};

TEST_F(JobRegistryTest, CreateIsIdempotent) {
  auto first = registry_.Create("demo", StepSpec(10), "req-1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ((*first)->record.version, 1);
  EXPECT_EQ((*first)->record.create_time, absl::FromUnixSeconds(1'800'000'000));
  clock_.Advance(absl::Seconds(5));
  // Same spec, no request id: the existing job.
  auto again = registry_.Create("demo", StepSpec(10), "");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->get(), first->get());
  // A retry with the same request id returns the job even if the spec differs (the original request
  // won).
  auto retry = registry_.Create("demo", StepSpec(20), "req-1");
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ(retry->get(), first->get());
  // A different spec under the same id is a conflict.
  auto conflict = registry_.Create("demo", StepSpec(20), "req-2");
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry_.size(), 1u);
}

TEST_F(JobRegistryTest, RejectsBadIdsAndSpecs) {
  for (const char* id : {"", "Demo", "-demo", "a/b", "x y"}) {
    EXPECT_EQ(registry_.Create(id, StepSpec(10), "").status().code(),
              absl::StatusCode::kInvalidArgument)
        << id;
  }
  EXPECT_EQ(registry_.Create(std::string(64, 'a'), StepSpec(10), "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(registry_.Create(std::string(63, 'a'), StepSpec(10), "").ok());
  EXPECT_EQ(registry_.Create("demo", StepSpec(0), "").status().message(),
            "job.hyperparameters[0].schedule.step.step_size: must be > 0, got 0");
  EXPECT_EQ(registry_.Create("demo", StepSpec(10), std::string(129, 'r')).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(JobRegistryTest, FailedStoreWriteChangesNothing) {
  store_.fail = true;
  EXPECT_EQ(registry_.Create("demo", StepSpec(10), "").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(registry_.Get("demo").status().code(), absl::StatusCode::kNotFound);
  store_.fail = false;
  ASSERT_TRUE(registry_.Create("demo", StepSpec(10), "").ok());
  store_.fail = true;
  EXPECT_EQ(registry_.Delete("demo").code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(registry_.Get("demo").ok());
}

// The spec cost budget (core/spec_cost.h) applies to what clients send, not to what the server
// already accepted: a stored job over it (accepted before the budget existed) still loads and
// takes reports, while CreateJob refuses the same spec.
TEST_F(JobRegistryTest, AStoredJobOverTheCostBudgetStillLoads) {
  // 4 hyperparameters x 1,024 groups x 65 nodes (chained of 63 constants and a plateau).
  core::JobSpec spec = PlateauSpec();
  std::vector<core::ScheduleSpec> factors(
      63, core::ScheduleSpec{"constant", {{"factor", 0.5}, {"total_iters", int64_t{3}}}, {}});
  factors.push_back(spec.hyperparameters[0].schedule);
  spec.hyperparameters.clear();
  for (const char* name : {"a", "b", "c", "d"}) {
    spec.hyperparameters.push_back(
        {name, std::vector<double>(1024, 0.1), core::ScheduleSpec{"chained", {}, factors}});
  }
  EXPECT_EQ(registry_.Create("big", spec, "").status().message(),
            "job.hyperparameters: costs 266,240 node-groups, over the limit of 262,144 (schedule "
            "nodes x parameter groups)");
  core::JobRecord record;
  record.job_id = "big";
  record.spec = spec;
  record.version = 1;
  ASSERT_TRUE(store_.Put(record).ok());
  JobRegistry reloaded(&store_, &clock_);
  ASSERT_TRUE(reloaded.Load().ok());
  ASSERT_TRUE(reloaded.Get("big").ok());
  EXPECT_TRUE(reloaded.ReportMetrics("big", 9, {{"loss", 1.0}}, std::nullopt).ok());
}

TEST_F(JobRegistryTest, ListPagesInIdOrderAndReloads) {
  for (const char* id : {"c", "a", "e", "b", "d"})
    ASSERT_TRUE(registry_.Create(id, StepSpec(10), "").ok());
  JobPage page = registry_.List(2, "");
  ASSERT_EQ(page.jobs.size(), 2u);
  EXPECT_EQ(page.jobs[0]->record.job_id, "a");
  EXPECT_EQ(page.next_after, "b");
  page = registry_.List(2, page.next_after);
  EXPECT_EQ(page.jobs[0]->record.job_id, "c");
  page = registry_.List(2, page.next_after);
  ASSERT_EQ(page.jobs.size(), 1u);
  EXPECT_EQ(page.next_after, "");
  ASSERT_TRUE(registry_.Delete("c").ok());
  EXPECT_EQ(registry_.Delete("c").code(), absl::StatusCode::kNotFound);

  // A new registry over the same store sees the same jobs.
  JobRegistry reloaded(&store_, &clock_);
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ(reloaded.size(), 4u);
  EXPECT_EQ((*reloaded.Get("a"))->record, (*registry_.Get("a"))->record);
}

// --- UpdateJob and ReportMetrics ----------------------------------------------------------------

class Recorder final : public JobObserver {
 public:
  void OnJobEvent(const JobEvent& event) override {
    if (event.type == JobEvent::Type::kUnchanged) {
      ++unchanged;
    } else {
      events.push_back(event);
    }
  }
  std::vector<JobEvent> events;
  // Mutations that closed the job and ended without changing it.
  int unchanged = 0;
};

core::SegmentSpec Scale(int64_t at, double factor) {
  core::SegmentSpec s;
  s.effective_step = at;
  s.change = core::SegmentSpec::Change::kScale;
  s.scale = factor;
  return s;
}

double ValueAt(const Job& job, int64_t step) {
  double v = 0;
  job.plan->series()[0].node->Evaluate(step, std::span<double>(&v, 1));
  return v;
}

TEST_F(JobRegistryTest, UpdateBumpsVersionChecksEtagAndAppliesARequestOnce) {
  Recorder recorder;
  registry_.AddObserver(&recorder);
  auto created = registry_.Create("demo", StepSpec(10), "");
  ASSERT_TRUE(created.ok());
  const std::string etag1 = (*created)->record.etag;
  auto updated = registry_.Update("demo", {{"lr", Scale(100, 0.5)}}, etag1, "u-1", false);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ((*updated)->record.version, 2);
  EXPECT_NE((*updated)->record.etag, etag1);
  EXPECT_EQ((*updated)->record.spec.hyperparameters[0].segments.size(), 1u);
  EXPECT_EQ((*updated)->record.spec.hyperparameters[0].segments[0].version, 2);
  EXPECT_EQ(ValueAt(**updated, 99), 0.1 * std::pow(0.1, 9));
  EXPECT_EQ(ValueAt(**updated, 100), 0.1 * std::pow(0.1, 10) * 0.5);
  // The same request again: not applied twice, even with the now stale etag.
  auto retry = registry_.Update("demo", {{"lr", Scale(100, 0.5)}}, etag1, "u-1", false);
  ASSERT_TRUE(retry.ok());
  EXPECT_EQ((*retry)->record.version, 2);
  // A different request with the stale etag.
  EXPECT_EQ(
      registry_.Update("demo", {{"lr", Scale(200, 0.5)}}, etag1, "u-2", false).status().code(),
      absl::StatusCode::kAborted);
  ASSERT_EQ(recorder.events.size(), 1u);
  EXPECT_EQ(recorder.events[0].type, JobEvent::Type::kUpdated);
  EXPECT_EQ(recorder.events[0].effective_step, 100);
  // The retry and the stale etag each closed the job and reopened it unchanged: readers that met
  // it closing are told.
  EXPECT_EQ(recorder.unchanged, 2);
  // The state survives a reload: a retry is still recognized.
  JobRegistry reloaded(&store_, &clock_);
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ((*reloaded.Get("demo"))->record, (*registry_.Get("demo"))->record);
  EXPECT_EQ((*reloaded.Update("demo", {{"lr", Scale(100, 0.5)}}, "", "u-1", false))->record.version,
            2);
}

TEST_F(JobRegistryTest, UpdateRefusesToRewriteServedSteps) {
  auto created = registry_.Create("demo", StepSpec(10), "");
  ASSERT_TRUE(created.ok());
  registry_.MarkServed(**created, 150);
  auto refused = registry_.Update("demo", {{"lr", Scale(150, 0.5)}}, "", "", false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("updates[0].segment.effective_step: 150 would change values "
                                   "already served (up to step 150)"));
  EXPECT_TRUE(registry_.Update("demo", {{"lr", Scale(151, 0.5)}}, "", "", false).ok());
  // The served mark carries over to the new version of the job.
  EXPECT_EQ(registry_.Update("demo", {{"lr", Scale(100, 0.5)}}, "", "", false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(registry_.Update("demo", {{"lr", Scale(100, 0.5)}}, "", "", true).ok());
}

// --- The served-mark flusher --------------------------------------------------------------------

MATCHER_P3(IsMark, id, served, reserved, "") {
  return arg.job_id == id && arg.served_through == served && arg.reserved_through == reserved;
}

class ServedMarkFlusherTest : public JobRegistryTest {
 protected:
  void SetUp() override {
    registry_.AddObserver(&recorder_);
    registry_.StartServedMarkFlusher(&executor_, absl::Seconds(1), 1000);
  }
  std::shared_ptr<const Job> Pinned(const std::string& id) { return *registry_.Get(id); }

  Recorder recorder_;
  ManualExecutor executor_{&clock_};
};

TEST_F(ServedMarkFlusherTest, ReadsPastTheReservationWaitForOneFlushThatReservesAhead) {
  ASSERT_TRUE(registry_.Create("a", StepSpec(10), "").ok());
  ASSERT_TRUE(registry_.Create("b", StepSpec(10), "").ok());
  // Nothing reserved yet: the reads wait, and wake the flusher; they write nothing themselves.
  EXPECT_FALSE(registry_.MarkServed(*Pinned("a"), 10));
  EXPECT_FALSE(registry_.MarkServed(*Pinned("b"), 3));
  EXPECT_TRUE(store_.flushes.empty());
  EXPECT_EQ(executor_.RunDue(), 1);
  // One transaction for both, each reserving 1000 steps past what was asked.
  ASSERT_EQ(store_.flushes.size(), 1u);
  EXPECT_THAT(store_.flushes[0],
              ::testing::ElementsAre(IsMark("a", 10, 1010), IsMark("b", 3, 1003)));
  EXPECT_EQ(recorder_.unchanged, 2);  // The waiting readers are told to plan again.
  EXPECT_TRUE(registry_.MarkServed(*Pinned("a"), 10));
  EXPECT_TRUE(registry_.MarkServed(*Pinned("a"), 1010));
  EXPECT_FALSE(registry_.MarkServed(*Pinned("a"), 1011));
  EXPECT_EQ(executor_.RunDue(), 1);
  EXPECT_THAT(store_.flushes[1], ::testing::ElementsAre(IsMark("a", 1011, 2011)));
  // Reads inside the reservation go on without the store; the next tick writes their mark.
  EXPECT_TRUE(registry_.MarkServed(*Pinned("a"), 1500));
  EXPECT_TRUE(registry_.MarkServed(*Pinned("b"), 900));
  EXPECT_EQ(executor_.RunDue(), 0);
  EXPECT_EQ(store_.flushes.size(), 2u);
  executor_.Advance(absl::Seconds(1));
  ASSERT_EQ(store_.flushes.size(), 3u);
  EXPECT_THAT(store_.flushes[2],
              ::testing::ElementsAre(IsMark("a", 1500, 2500), IsMark("b", 900, 1900)));
  EXPECT_EQ(recorder_.unchanged, 3);  // Nobody waited for those.
  // No reads, no writes.
  executor_.Advance(absl::Seconds(5));
  EXPECT_EQ(store_.flushes.size(), 3u);
  EXPECT_EQ(store_.inner.Get("a")->served_through, 1500);
}

TEST_F(ServedMarkFlusherTest, AFailedFlushKeepsReadersWaitingUntilOneSucceeds) {
  ASSERT_TRUE(registry_.Create("a", StepSpec(10), "").ok());
  store_.fail = true;
  EXPECT_FALSE(registry_.MarkServed(*Pinned("a"), 20));
  executor_.RunDue();
  EXPECT_EQ(recorder_.unchanged, 0);
  EXPECT_FALSE(registry_.MarkServed(*Pinned("a"), 20));
  executor_.RunDue();
  store_.fail = false;
  executor_.Advance(absl::Seconds(1));  // The tick retries.
  EXPECT_EQ(recorder_.unchanged, 1);
  EXPECT_TRUE(registry_.MarkServed(*Pinned("a"), 20));
}

TEST_F(ServedMarkFlusherTest, AMutationCarriesTheReservationAndPersistsTheMark) {
  ASSERT_TRUE(registry_.Create("a", StepSpec(10), "").ok());
  EXPECT_FALSE(registry_.MarkServed(*Pinned("a"), 10));
  executor_.RunDue();
  EXPECT_TRUE(registry_.MarkServed(*Pinned("a"), 700));
  ASSERT_TRUE(registry_.Update("a", {{"lr", Scale(800, 0.5)}}, "", "", false).ok());
  EXPECT_EQ(store_.inner.Get("a")->served_through, 700);  // Written with the record.
  EXPECT_TRUE(registry_.MarkServed(*Pinned("a"), 1010));  // The new version keeps the reservation.
  EXPECT_FALSE(registry_.MarkServed(*Pinned("a"), 1011));
}

TEST_F(ServedMarkFlusherTest, TheShutdownWriteIsExactCleanAndOnce) {
  ASSERT_TRUE(registry_.Create("a", StepSpec(10), "").ok());
  EXPECT_FALSE(registry_.MarkServed(*Pinned("a"), 10));
  executor_.RunDue();
  EXPECT_TRUE(registry_.MarkServed(*Pinned("a"), 640));
  ASSERT_TRUE(registry_.PersistServedMarks().ok());
  ASSERT_EQ(store_.flushes.size(), 2u);
  EXPECT_THAT(store_.flushes[1], ::testing::ElementsAre(IsMark("a", 640, 1010)));
  EXPECT_EQ(store_.clean_stops, 1);
  ASSERT_TRUE(registry_.PersistServedMarks().ok());
  EXPECT_EQ(store_.clean_stops, 1);
  // The flusher has stopped: nothing is written after the clean-stop mark.
  EXPECT_FALSE(registry_.MarkServed(*Pinned("a"), 5000));
  executor_.Advance(absl::Seconds(3));
  EXPECT_EQ(store_.flushes.size(), 2u);
}

// A server's life over the SQLite store: reads within a reservation are never written before a
// crash, yet after it an update at a served step is refused.
TEST(ServedMarkCrashTest, TheGuardHoldsAcrossACrash) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("hpsched-registry-crash-", ::getpid());
  std::filesystem::remove_all(dir);
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  {
    auto store = store::SqliteJobStore::Open({dir.string(), store::SyncMode::kOff});
    ASSERT_TRUE(store.ok()) << store.status();
    ManualExecutor executor(&clock);
    JobRegistry registry(store->get(), &clock);
    ASSERT_TRUE(registry.Load().ok());
    registry.StartServedMarkFlusher(&executor, absl::Seconds(1), 1000);
    ASSERT_TRUE(registry.Create("a", StepSpec(10), "").ok());
    const auto job = *registry.Get("a");
    EXPECT_FALSE(registry.MarkServed(*job, 99));
    executor.RunDue();
    EXPECT_TRUE(registry.MarkServed(*job, 99));
    EXPECT_TRUE(registry.MarkServed(*job, 900));  // Served, never written: then the crash.
  }
  auto store = store::SqliteJobStore::Open({dir.string(), store::SyncMode::kOff});
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->opened_after_clean_stop());
  JobRegistry registry(store->get(), &clock);
  ASSERT_TRUE(registry.Load().ok());
  auto refused = registry.Update("a", {{"lr", Scale(900, 0.5)}}, "", "", false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              ::testing::HasSubstr("updates[0].segment.effective_step: 900 would change values "
                                   "already served (up to step 1099)"));
  EXPECT_TRUE(registry.Update("a", {{"lr", Scale(900, 0.5)}}, "", "", true).ok());
  EXPECT_TRUE(registry.Update("a", {{"lr", Scale(1100, 0.5)}}, "", "", false).ok());
  store->reset();
  std::filesystem::remove_all(dir);
}

TEST_F(JobRegistryTest, UpdateErrorsNameTheRequestFieldAndChangeNothing) {
  ASSERT_TRUE(registry_.Create("demo", StepSpec(10), "").ok());
  auto before = *registry_.Get("demo");
  auto unknown = registry_.Update("demo", {{"momentum", Scale(10, 0.5)}}, "", "", false);
  EXPECT_EQ(unknown.status().message(),
            "updates[0].hyperparameter: the job has no hyperparameter \"momentum\"");
  core::SegmentSpec bad;
  bad.effective_step = 10;
  bad.schedule = core::ScheduleSpec{"step", {{"step_size", int64_t{-1}}}, {}};
  auto invalid = registry_.Update("demo", {{"lr", Scale(5, 0.5)}, {"lr", bad}}, "", "", false);
  EXPECT_THAT(std::string(invalid.status().message()),
              ::testing::StartsWith("updates[1].segment.schedule.step.step_size: must be > 0"));
  store_.fail = true;
  EXPECT_EQ(registry_.Update("demo", {{"lr", Scale(5, 0.5)}}, "", "", false).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(registry_.Get("demo")->get(), before.get());
}

TEST_F(JobRegistryTest, ReportMetricsIsIdempotentAndReducesOnPlateau) {
  Recorder recorder;
  registry_.AddObserver(&recorder);
  ASSERT_TRUE(registry_.Create("p", PlateauSpec(), "").ok());
  auto first = registry_.ReportMetrics("p", 9, {{"loss", 1.0}}, std::nullopt);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->duplicate);
  auto again = registry_.ReportMetrics("p", 9, {{"loss", 1.0}}, std::nullopt);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->duplicate);
  auto conflict = registry_.ReportMetrics("p", 9, {{"loss", 2.0}}, std::nullopt);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(conflict.status().message()),
              ::testing::HasSubstr("metrics[\"loss\"]: step 9 was already reported with value 1"));
  // Worse: patience 0, so the report at step 19 reduces from step 20.
  auto worse = registry_.ReportMetrics("p", 19, {{"loss", 3.0}}, std::nullopt);
  ASSERT_TRUE(worse.ok());
  EXPECT_EQ(worse->reduction_steps, std::vector<int64_t>{20});
  EXPECT_EQ(ValueAt(*worse->job, 19), 1.0);
  EXPECT_EQ(ValueAt(*worse->job, 20), 0.1);
  ASSERT_EQ(recorder.events.size(), 2u);
  EXPECT_EQ(recorder.events[0].type, JobEvent::Type::kMetricsReported);
  EXPECT_EQ(recorder.events[1].type, JobEvent::Type::kPlateauReduced);
  EXPECT_EQ(recorder.events[1].effective_step, 20);
  EXPECT_EQ(recorder.unchanged, 2);  // The duplicate and the conflicting report.
  // Reports survive a reload, with the plateau state they imply.
  JobRegistry reloaded(&store_, &clock_);
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ(ValueAt(**reloaded.Get("p"), 20), 0.1);
  EXPECT_TRUE(reloaded.ReportMetrics("p", 19, {{"loss", 3.0}}, std::nullopt)->duplicate);
}

TEST_F(JobRegistryTest, ReportMetricsRejectsBadInputWithoutChange) {
  ASSERT_TRUE(registry_.Create("p", PlateauSpec(), "").ok());
  auto before = *registry_.Get("p");
  const auto code = [&](int64_t step, std::map<std::string, double> m,
                        std::optional<int64_t> next = std::nullopt) {
    return registry_.ReportMetrics("p", step, m, next).status();
  };
  EXPECT_EQ(code(9, {{"loss", std::nan("")}}).message(),
            "metrics[\"loss\"]: must be finite, got nan");
  EXPECT_EQ(code(9, {{"acc", 1.0}}).message(),
            "metrics[\"acc\"]: the job declares no such metric (job.metrics)");
  EXPECT_THAT(std::string(code(10, {{"loss", 1.0}}).message()),
              ::testing::HasSubstr("step: metric \"loss\" is reported every 10 steps"));
  EXPECT_THAT(std::string(code(9, {{"loss", 1.0}}, 20).message()),
              ::testing::StartsWith("next_step: must be unset"));
  EXPECT_EQ(code(-1, {{"loss", 1.0}}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(9, {}).message(), "metrics: must have at least one metric");
  EXPECT_EQ(registry_.ReportMetrics("nope", 9, {{"loss", 1.0}}, std::nullopt).status().code(),
            absl::StatusCode::kNotFound);
  store_.fail = true;
  EXPECT_EQ(code(9, {{"loss", 1.0}}).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(registry_.Get("p")->get(), before.get());
}

// lr (two groups) on a plateau reported every step, with cooldown and min_lr.
core::JobSpec BusyPlateauSpec() {
  core::JobSpec spec;
  spec.hyperparameters.push_back({"lr",
                                  {1.0, 0.5},
                                  core::ScheduleSpec{"reduce_on_plateau",
                                                     {{"metric", std::string("loss")},
                                                      {"patience", int64_t{3}},
                                                      {"cooldown", int64_t{2}},
                                                      {"factor", 0.8},
                                                      {"min_lr", std::vector<double>{1e-3, 1e-4}}},
                                                     {}}});
  spec.metrics.push_back(core::MetricSpec{"loss", 1, 0});
  return spec;
}

// A loss that falls with noise and stalls now and then: many reductions.
double Loss(int64_t step) {
  return 1.0 / (1.0 + 0.001 * static_cast<double>(step % 700)) +
         0.01 * std::sin(static_cast<double>(step) * 0.37);
}

// Every value of steps [0, end) of every series of `job`.
std::vector<double> Values(const Job& job, int64_t end) {
  std::vector<double> all;
  std::vector<double> values(static_cast<size_t>(end));
  for (const core::SeriesPlan& series : job.plan->series()) {
    series.node->Evaluate(0, values);
    all.insert(all.end(), values.begin(), values.end());
  }
  return all;
}

// The values of replaying every report of `record` in one compile (no carried state).
std::vector<double> ReplayValues(const core::JobRecord& record, int64_t end) {
  core::MetricLog log;
  for (const core::MetricSpec& metric : record.spec.metrics) {
    log[metric.name] = core::BuildTrack(metric, record.metric_reports.at(metric.name).ToMap());
  }
  auto plan = core::JobPlan::Compile(record.spec, "job", &log);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return Values(Job(record, *plan), end);
}

TEST(PlateauRestartTest, AJobWithManyReportsRestartsWithTheSameValues) {
  constexpr int64_t kReports = 5000;
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    absl::StrCat("hpsched-registry-plateau-", ::getpid());
  std::filesystem::remove_all(dir);
  FakeClock clock(absl::FromUnixSeconds(1'800'000'000));
  std::vector<double> before;
  std::vector<int64_t> reductions;
  {
    auto store = store::SqliteJobStore::Open({dir.string(), store::SyncMode::kOff});
    ASSERT_TRUE(store.ok()) << store.status();
    JobRegistry registry(store->get(), &clock);
    ASSERT_TRUE(registry.Load().ok());
    ASSERT_TRUE(registry.Create("p", BusyPlateauSpec(), "").ok());
    for (int64_t step = 0; step < kReports; ++step) {
      auto result = registry.ReportMetrics("p", step, {{"loss", Loss(step)}}, std::nullopt);
      ASSERT_TRUE(result.ok()) << result.status();
      reductions.insert(reductions.end(), result->reduction_steps.begin(),
                        result->reduction_steps.end());
    }
    const auto job = *registry.Get("p");
    before = Values(*job, kReports + 10);
    EXPECT_EQ(before, ReplayValues(job->record, kReports + 10));
    EXPECT_EQ(job->plan->reduction_steps(), reductions);
  }
  // Dozens of reductions, each from the step after a report, in both groups' values.
  EXPECT_GT(reductions.size(), 20u);
  auto store = store::SqliteJobStore::Open({dir.string(), store::SyncMode::kOff});
  ASSERT_TRUE(store.ok()) << store.status();
  JobRegistry registry(store->get(), &clock);
  ASSERT_TRUE(registry.Load().ok());
  const auto job = *registry.Get("p");
  EXPECT_EQ(job->record.metric_reports.at("loss").size(), static_cast<size_t>(kReports));
  EXPECT_EQ(Values(*job, kReports + 10), before);
  EXPECT_EQ(job->plan->reduction_steps(), reductions);
  // It goes on from there as if it had never stopped: a duplicate is one, the next report counts.
  EXPECT_TRUE(registry.ReportMetrics("p", 42, {{"loss", Loss(42)}}, std::nullopt)->duplicate);
  auto next = registry.ReportMetrics("p", kReports, {{"loss", 5.0}}, std::nullopt);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(Values(**registry.Get("p"), kReports + 10),
            ReplayValues((*registry.Get("p"))->record, kReports + 10));
  std::filesystem::remove_all(dir);
}

TEST_F(JobRegistryTest, AFailedReportWriteLeavesTheCarriedStateAsItWas) {
  ASSERT_TRUE(registry_.Create("p", BusyPlateauSpec(), "").ok());
  for (int64_t step = 0; step < 300; ++step) {
    if (step % 7 == 3) {
      // The write fails: the report is not taken, and the history and plateau state the next
      // report extends are those before it.
      store_.fail = true;
      EXPECT_EQ(registry_.ReportMetrics("p", step, {{"loss", 9.0}}, std::nullopt).status().code(),
                absl::StatusCode::kUnavailable);
      store_.fail = false;
    }
    ASSERT_TRUE(registry_.ReportMetrics("p", step, {{"loss", Loss(step)}}, std::nullopt).ok());
  }
  const auto job = *registry_.Get("p");
  EXPECT_EQ(Values(*job, 310), ReplayValues(job->record, 310));
  JobRegistry reloaded(&store_, &clock_);
  ASSERT_TRUE(reloaded.Load().ok());
  EXPECT_EQ(Values(**reloaded.Get("p"), 310), Values(*job, 310));
  EXPECT_EQ((*reloaded.Get("p"))->record, job->record);
}

}  // namespace
}  // namespace hpsched::jobs
