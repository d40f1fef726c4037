// The registry's replica mode over an in-memory shared database (fake_shared_store.h), without
// processes: changes reach the other replica through its catch-up, the served-step guard counts
// the other replicas (exact marks after a fence, reservations of those that do not answer), a
// fenced replica parks its reads at the fence until it holds the change, plateau decisions and
// duplicate reports are recognized whichever replica receives them, and a create race has one
// winner. Protocol: docs/replicas.md.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_shared_store.h"
#include "jobs/executor.h"
#include "jobs/job_registry.h"
#include "jobs/replica_sync.h"
#include "store/memory_job_store.h"
#include "test_specs.h"

namespace hpsched::jobs {
namespace {

using ::testing::HasSubstr;

// A constant lr of 0.1 (a step schedule that never steps in these tests).
core::JobSpec StepSpec() {
  core::JobSpec spec;
  spec.hyperparameters.push_back(
      {"lr", {0.1}, core::ScheduleSpec{"step", {{"step_size", int64_t{1'000'000'000}}}, {}}});
  return spec;
}

core::SegmentSpec Scale(int64_t at, double factor) {
  core::SegmentSpec s;
  s.effective_step = at;
  s.change = core::SegmentSpec::Change::kScale;
  s.scale = factor;
  return s;
}

double ValueAt(const Job& job, int64_t step) {
  double value = 0;
  job.plan->series()[0].node->Evaluate(step, std::span<double>(&value, 1));
  return value;
}

// One replica: its registry over its view of the shared database, its flusher on a manual
// executor (reserving `kReserve` steps ahead), and its follower driven by hand.
struct Replica {
  static constexpr int64_t kReserve = 1000;
  Replica(testing::FakeSharedDatabase* db, std::string id)
      : shared(db, std::move(id)), registry(&unused, &clock) {
    registry.UseSharedStore(&shared, absl::Seconds(1));
    EXPECT_TRUE(registry.Load().ok());
    registry.StartServedMarkFlusher(&executor, absl::Seconds(1), kReserve);
  }
  // What GetValues does for steps up to `last`: true when it may serve now; otherwise it runs the
  // flush a waiting read asks for and tries once more.
  bool Read(absl::string_view job_id, int64_t last) {
    auto job = registry.Get(job_id);
    if (!job.ok()) return false;
    if (registry.MarkServed(**job, last)) return true;
    executor.RunDue();
    job = registry.Get(job_id);
    return job.ok() && registry.MarkServed(**job, last);
  }
  absl::Status CatchUp() { return sync.CatchUp(); }

  FakeClock clock{absl::FromUnixSeconds(1'800'000'000)};
  ManualExecutor executor{&clock};
  store::MemoryJobStore unused;
  testing::FakeSharedStore shared;
  JobRegistry registry;
  ReplicaSync sync{&registry, &shared, ReplicaSyncOptions{}, nullptr};
};

class ReplicaRegistryTest : public ::testing::Test {
 protected:
  ReplicaRegistryTest() {
    // While an update through one replica waits, the others' listeners answer its fence.
    db_.on_fence = [this] {
      EXPECT_TRUE(a_.sync.AcknowledgeFences().ok());
      EXPECT_TRUE(b_.sync.AcknowledgeFences().ok());
    };
  }
  testing::FakeSharedDatabase db_;
  Replica a_{&db_, "a"};
  Replica b_{&db_, "b"};
};

TEST_F(ReplicaRegistryTest, ChangesReachTheOtherReplica) {
  ASSERT_TRUE(a_.registry.Create("demo", StepSpec(), "c-1").ok());
  EXPECT_FALSE(b_.registry.Get("demo").ok());
  ASSERT_TRUE(b_.CatchUp().ok());
  ASSERT_TRUE(b_.registry.Get("demo").ok());
  EXPECT_EQ((*b_.registry.Get("demo"))->record.version, 1);
  ASSERT_TRUE(a_.registry.Update("demo", {{"lr", Scale(5000, 0.5)}}, "", "u-1", false).ok());
  ASSERT_TRUE(b_.CatchUp().ok());
  const auto job = *b_.registry.Get("demo");
  EXPECT_EQ(job->record.version, 2);
  EXPECT_EQ(job->record.etag, (*a_.registry.Get("demo"))->record.etag);
  EXPECT_DOUBLE_EQ(ValueAt(*job, 5000), 0.05);
  EXPECT_DOUBLE_EQ(ValueAt(*job, 4999), 0.1);
  // The request_id is remembered across replicas: a retry through B changes nothing.
  auto retry = b_.registry.Update("demo", {{"lr", Scale(5000, 0.5)}}, "", "u-1", false);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ((*retry)->record.version, 2);
  // A stale etag through either replica.
  EXPECT_EQ(
      b_.registry.Update("demo", {{"lr", Scale(6000, 0.5)}}, "1-0", "", false).status().code(),
      absl::StatusCode::kAborted);
  ASSERT_TRUE(b_.registry.Delete("demo").ok());
  ASSERT_TRUE(a_.CatchUp().ok());
  EXPECT_EQ(a_.registry.Get("demo").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ReplicaRegistryTest, AnUpdateAtAStepAnotherReplicaServedIsRefused) {
  ASSERT_TRUE(a_.registry.Create("demo", StepSpec(), "").ok());
  ASSERT_TRUE(b_.CatchUp().ok());
  ASSERT_TRUE(b_.Read("demo", 500));  // B serves up to 500 and reserves up to 1500.
  auto refused = a_.registry.Update("demo", {{"lr", Scale(300, 0.5)}}, "", "", false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("updates[0].segment.effective_step: 300 would change values already "
                        "served (up to step 500)"));
  // The refused update's fence goes with B's next catch-up.
  ASSERT_TRUE(b_.CatchUp().ok());
  // B's exact mark (500) decided, not its reservation: step 600 is free.
  auto later = a_.registry.Update("demo", {{"lr", Scale(600, 0.5)}}, "", "", false);
  ASSERT_TRUE(later.ok()) << later.status();
  // Until B holds the change, it parks reads from the fence on; steps before it are unchanged.
  EXPECT_TRUE(b_.Read("demo", 599));
  EXPECT_FALSE(b_.Read("demo", 600));
  ASSERT_TRUE(b_.CatchUp().ok());
  EXPECT_TRUE(b_.Read("demo", 700));
  EXPECT_DOUBLE_EQ(ValueAt(**b_.registry.Get("demo"), 700), 0.05);
  // With allow_rewrite the served step may change.
  EXPECT_TRUE(a_.registry.Update("demo", {{"lr", Scale(300, 0.5)}}, "", "", true).ok());
}

TEST_F(ReplicaRegistryTest, AReplicaThatDoesNotAnswerCountsItsReservationAsServed) {
  ASSERT_TRUE(a_.registry.Create("demo", StepSpec(), "").ok());
  ASSERT_TRUE(b_.CatchUp().ok());
  ASSERT_TRUE(b_.Read("demo", 500));
  db_.silent.insert("b");
  auto refused = a_.registry.Update("demo", {{"lr", Scale(600, 0.5)}}, "", "", false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("(up to step 1500)"));
  // A rewrite needs the answer of every replica whose lease is live...
  auto rewrite = a_.registry.Update("demo", {{"lr", Scale(600, 0.5)}}, "", "", true);
  EXPECT_EQ(rewrite.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(rewrite.status().message()), HasSubstr("replica b did not report"));
  // ...and goes ahead once its lease has run out. Past its reservation, no answer is needed.
  db_.expired_leases.insert("b");
  EXPECT_TRUE(a_.registry.Update("demo", {{"lr", Scale(600, 0.5)}}, "", "", true).ok());
  EXPECT_TRUE(a_.registry.Update("demo", {{"lr", Scale(1501, 0.5)}}, "", "", false).ok());
  EXPECT_TRUE(db_.fences.empty());
}

TEST_F(ReplicaRegistryTest, AReplicaBehindIsNotGrantedANewReservation) {
  ASSERT_TRUE(a_.registry.Create("demo", StepSpec(), "").ok());
  ASSERT_TRUE(b_.CatchUp().ok());
  ASSERT_TRUE(b_.Read("demo", 10));  // Reserved up to 1010.
  // A changes the job from step 2000, ahead of everything B reserved: no fence is needed.
  ASSERT_TRUE(a_.registry.Update("demo", {{"lr", Scale(2000, 0.5)}}, "", "", false).ok());
  EXPECT_TRUE(db_.fences.empty());
  // B has not caught up: it serves what it reserved, but no reservation past it is granted for
  // the old revision.
  EXPECT_TRUE(b_.Read("demo", 1000));
  EXPECT_FALSE(b_.Read("demo", 2500));
  ASSERT_TRUE(b_.CatchUp().ok());
  EXPECT_TRUE(b_.Read("demo", 2500));
  EXPECT_DOUBLE_EQ(ValueAt(**b_.registry.Get("demo"), 2500), 0.05);
}

TEST_F(ReplicaRegistryTest, PlateauDecisionsAndDuplicatesWhicheverReplicaReceives) {
  ASSERT_TRUE(a_.registry.Create("p", PlateauSpec(), "").ok());
  ASSERT_TRUE(b_.CatchUp().ok());
  ASSERT_TRUE(b_.registry.ReportMetrics("p", 9, {{"loss", 1.0}}, std::nullopt).ok());
  // A has not caught up; the database decides: the same report is a duplicate...
  auto again = a_.registry.ReportMetrics("p", 9, {{"loss", 1.0}}, std::nullopt);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  // ...a different value for the step a conflict...
  auto conflict = a_.registry.ReportMetrics("p", 9, {{"loss", 2.0}}, std::nullopt);
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kFailedPrecondition);
  // ...and a worse loss at 19 (patience 0) reduces from step 20, by torch's ReduceLROnPlateau
  // rule (factor 0.1), decided once.
  auto worse = a_.registry.ReportMetrics("p", 19, {{"loss", 3.0}}, std::nullopt);
  ASSERT_TRUE(worse.ok());
  EXPECT_EQ(worse->reduction_steps, std::vector<int64_t>{20});
  auto repeat = b_.registry.ReportMetrics("p", 19, {{"loss", 3.0}}, std::nullopt);
  ASSERT_TRUE(repeat.ok());
  EXPECT_TRUE(repeat->duplicate);
  EXPECT_DOUBLE_EQ(ValueAt(**b_.registry.Get("p"), 20), 0.1);
  EXPECT_DOUBLE_EQ(ValueAt(**a_.registry.Get("p"), 20), 0.1);
}

TEST_F(ReplicaRegistryTest, TwoCreatesOfOneIdHaveOneWinner) {
  ASSERT_TRUE(a_.registry.Create("demo", StepSpec(), "from-a").ok());
  // B has not caught up: its create meets A's row and answers as a repeated create.
  auto same = b_.registry.Create("demo", StepSpec(), "from-b");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ((*same)->record.create_request_id, "from-a");
  core::JobSpec other = StepSpec();
  other.hyperparameters[0].base_values = {0.2};
  EXPECT_EQ(b_.registry.Create("demo", other, "").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(db_.log.size(), 1u);
}

TEST_F(ReplicaRegistryTest, WithoutTheDatabaseReadsGoOnAndMutationsAreUnavailable) {
  ASSERT_TRUE(a_.registry.Create("demo", StepSpec(), "").ok());
  ASSERT_TRUE(a_.Read("demo", 100));
  db_.down = true;
  EXPECT_TRUE(a_.Read("demo", 900));  // Within the reservation.
  EXPECT_EQ(a_.registry.Update("demo", {{"lr", Scale(5000, 0.5)}}, "", "", false).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(a_.registry.ReportMetrics("demo", 9, {{"loss", 1.0}}, std::nullopt).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(a_.CatchUp().code(), absl::StatusCode::kUnavailable);
  // Without a lease, only steps already served.
  a_.registry.SetLeaseValid(false);
  EXPECT_TRUE(a_.Read("demo", 900));
  EXPECT_FALSE(a_.Read("demo", 901));
  db_.down = false;
  ASSERT_TRUE(a_.CatchUp().ok());
  a_.registry.SetLeaseValid(true);
  EXPECT_TRUE(a_.Read("demo", 901));
  EXPECT_TRUE(a_.registry.Update("demo", {{"lr", Scale(5000, 0.5)}}, "", "", false).ok());
}

}  // namespace
}  // namespace hpsched::jobs
