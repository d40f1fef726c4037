// The job table: idempotent creation, conflicts, listing, deletion, and that a failed store write
// changes nothing.
#include "jobs/job_registry.h"

#include <gtest/gtest.h>

#include "store/memory_job_store.h"

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
  absl::Status Put(const store::JobRecord& record) override {
    if (fail) return absl::UnavailableError("disk on fire");
    return inner.Put(record);
  }
  absl::Status Delete(absl::string_view id) override {
    if (fail) return absl::UnavailableError("disk on fire");
    return inner.Delete(id);
  }
  absl::StatusOr<std::vector<store::JobRecord>> LoadAll() override { return inner.LoadAll(); }
  bool fail = false;
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

}  // namespace
}  // namespace hpsched::jobs
