// A reduce_on_plateau plan compiled report by report, each compile resuming from the previous
// plan's plateau states (what the registry does on every ReportMetrics), gives exactly the plan of
// replaying every report from the start (a compile without a previous plan): values bit for bit,
// reductions, provisional steps. Randomized over modes, threshold modes, patience, cooldown,
// min_lr, eps, groups, where the plateau sits (top level, after a `sequential` milestone, in an
// UpdateJob segment) and the order the reports arrive in (gaps filled late).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <random>
#include <set>

#include "core/job_plan.h"
#include "core/metric_reports.h"
#include "core/shared_log.h"

namespace hpsched::core {
namespace {

constexpr int64_t kEvery = 5;

ScheduleSpec Plateau(std::mt19937_64& random, size_t groups) {
  std::uniform_int_distribution<int> coin(0, 1);
  std::uniform_int_distribution<int64_t> small(0, 3);
  std::uniform_real_distribution<double> unit(0, 1);
  ScheduleSpec spec{"reduce_on_plateau", {{"metric", std::string("loss")}}, {}};
  spec.params["mode"] = std::string(coin(random) ? "min" : "max");
  spec.params["threshold_mode"] = std::string(coin(random) ? "rel" : "abs");
  spec.params["threshold"] = coin(random) ? 1e-4 : 0.05 * unit(random);
  spec.params["patience"] = small(random);
  spec.params["cooldown"] = small(random);
  spec.params["factor"] = 0.1 + 0.85 * unit(random);
  // Per group min_lr, or one for all; eps large enough, now and then, to stop reductions.
  if (coin(random)) {
    std::vector<double> min_lr;
    for (size_t g = 0; g < groups; ++g) min_lr.push_back(coin(random) ? 0.0 : 1e-3 * unit(random));
    spec.params["min_lr"] = min_lr;
  } else {
    spec.params["min_lr"] = std::vector<double>{1e-4};
  }
  spec.params["eps"] = coin(random) ? 1e-8 : 1e-3;
  return spec;
}

JobSpec RandomJob(std::mt19937_64& random) {
  std::uniform_int_distribution<size_t> groups_of(1, 3);
  std::uniform_int_distribution<int> where(0, 2);
  const size_t groups = groups_of(random);
  std::vector<double> bases;
  for (size_t g = 0; g < groups; ++g) bases.push_back(0.1 * static_cast<double>(g + 1));
  JobSpec spec;
  HyperparameterSpec hp{"lr", bases, Plateau(random, groups), {}};
  switch (where(random)) {
    case 0:
      break;  // At the top.
    case 1:   // After a warmup: reports before step 40 are not its own.
      hp.schedule = ScheduleSpec{
          "sequential",
          {{"milestones", std::vector<int64_t>{40}}},
          {ScheduleSpec{"linear", {{"start_factor", 0.5}, {"total_iters", int64_t{40}}}, {}},
           Plateau(random, groups)}};
      break;
    case 2: {  // A second plateau from step 100 on, on local time, as an UpdateJob segment.
      SegmentSpec segment;
      segment.effective_step = 100;
      segment.change = SegmentSpec::Change::kSchedule;
      segment.schedule = Plateau(random, groups);
      hp.segments.push_back(std::move(segment));
      break;
    }
  }
  spec.hyperparameters.push_back(std::move(hp));
  spec.metrics.push_back(MetricSpec{"loss", kEvery, 0});
  return spec;
}

// `n` cadence steps in the order they arrive: mostly in order, some swapped (a gap filled late).
std::vector<int64_t> ArrivalOrder(std::mt19937_64& random, size_t n) {
  std::vector<int64_t> steps;
  for (size_t i = 0; i < n; ++i) steps.push_back(static_cast<int64_t>(i + 1) * kEvery - 1);
  std::uniform_int_distribution<size_t> at(0, n - 1), span(1, 6);
  for (size_t swaps = n / 8; swaps > 0; --swaps) {
    const size_t i = at(random);
    std::swap(steps[i], steps[std::min(n - 1, i + span(random))]);
  }
  return steps;
}

std::shared_ptr<const JobPlan> MustCompile(const JobSpec& spec, const MetricLog& log,
                                           const JobPlan* previous) {
  auto plan = JobPlan::Compile(spec, "job", &log, JobPlan::Budgets::kAccepted, previous);
  EXPECT_TRUE(plan.ok()) << plan.status();
  return plan.ok() ? *plan : nullptr;
}

// Every value of steps [0, end) of every series, as bits.
std::vector<uint64_t> Bits(const JobPlan& plan, int64_t end) {
  std::vector<uint64_t> bits;
  std::vector<double> values(static_cast<size_t>(end));
  for (const SeriesPlan& series : plan.series()) {
    series.node->Evaluate(0, values);
    for (double v : values) bits.push_back(std::bit_cast<uint64_t>(v));
  }
  return bits;
}

TEST(PlateauIncrementalTest, ResumedCompilesEqualFullReplays) {
  std::mt19937_64 random(20261202);
  std::normal_distribution<double> noise(0, 0.05);
  constexpr int kJobs = 60;
  constexpr size_t kReports = 120;
  const int64_t end = static_cast<int64_t>(kReports) * kEvery + 20;
  int reductions_seen = 0;
  for (int j = 0; j < kJobs; ++j) {
    const JobSpec spec = RandomJob(random);
    SCOPED_TRACE(testing::Message() << "job " << j);
    MetricHistory history;
    MetricReports reports;
    MetricTrack track = BuildTrack(spec.metrics[0], history);
    std::shared_ptr<const JobPlan> plan = MustCompile(spec, {{"loss", track}}, nullptr);
    ASSERT_NE(plan, nullptr);
    double loss = 1.0;
    for (int64_t step : ArrivalOrder(random, kReports)) {
      // A loss that falls, stalls and rises: plateaus in both modes.
      loss = std::max(0.01, loss * (1 + noise(random)) - 0.004);
      const MetricReport report{loss};
      history.Add(step, report);
      reports.emplace(step, report);
      ExtendTrack(spec.metrics[0], history, &track);
      const MetricLog log = {{"loss", track}};
      std::shared_ptr<const JobPlan> next = MustCompile(spec, log, plan.get());
      const MetricLog replay_log = {{"loss", BuildTrack(spec.metrics[0], reports)}};
      std::shared_ptr<const JobPlan> replay = MustCompile(spec, replay_log, nullptr);
      ASSERT_NE(next, nullptr);
      ASSERT_NE(replay, nullptr);
      ASSERT_EQ(Bits(*next, end), Bits(*replay, end)) << "after the report at step " << step;
      ASSERT_EQ(next->reduction_steps(), replay->reduction_steps());
      for (size_t i = 0; i < next->series().size(); ++i) {
        ASSERT_EQ(next->series()[i].reduction_steps(), replay->series()[i].reduction_steps());
        ASSERT_EQ(next->series()[i].dependences(), replay->series()[i].dependences());
      }
      std::vector<size_t> all(next->series().size());
      for (size_t i = 0; i < all.size(); ++i) all[i] = i;
      ASSERT_EQ(next->ProvisionalFrom(all), replay->ProvisionalFrom(all));
      ASSERT_EQ(track.pending_step, replay_log.at("loss").pending_step);
      // The reductions this report brought are those the replay has and the previous plan had not.
      // And they are new: every plateau resumed, none replayed what it had taken.
      std::vector<int64_t> added;
      const std::vector<int64_t> before = plan->reduction_steps();
      for (int64_t s : next->new_reduction_steps()) {
        ASSERT_FALSE(plan->HasReductionAt(s)) << s;
        added.push_back(s);
      }
      std::vector<int64_t> expected;
      const std::vector<int64_t> after = replay->reduction_steps();
      std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                          std::back_inserter(expected));
      ASSERT_EQ(added, expected);
      reductions_seen += static_cast<int>(expected.size());
      plan = std::move(next);
    }
  }
  // The random jobs did reduce, often.
  EXPECT_GT(reductions_seen, kJobs);
}

TEST(PlateauIncrementalTest, AReportThatTakesNothingSharesTheState) {
  std::mt19937_64 random(7);
  JobSpec spec = RandomJob(random);
  spec.hyperparameters[0].schedule = Plateau(random, spec.hyperparameters[0].base_values.size());
  spec.hyperparameters[0].segments.clear();
  MetricHistory history;
  MetricTrack track = BuildTrack(spec.metrics[0], history);
  auto first = MustCompile(spec, {{"loss", track}}, nullptr);
  history.Add(4, MetricReport{1.0});
  ExtendTrack(spec.metrics[0], history, &track);
  auto second = MustCompile(spec, {{"loss", track}}, first.get());
  // Step 14 arrives before 9: the track waits at 9, so the plateau takes nothing new.
  history.Add(14, MetricReport{1.0});
  ExtendTrack(spec.metrics[0], history, &track);
  EXPECT_EQ(track.pending_step, 9);
  auto third = MustCompile(spec, {{"loss", track}}, second.get());
  ASSERT_FALSE(second->series()[0].plateaus().empty());
  EXPECT_EQ(third->series()[0].plateaus()[0].second, second->series()[0].plateaus()[0].second);
  EXPECT_NE(second->series()[0].plateaus()[0].second, first->series()[0].plateaus()[0].second);
  EXPECT_EQ(second->series()[0].plateaus()[0].second->taken, 1u);
}

TEST(SharedLogTest, VersionsShareStorageAndBranchWithoutDisturbingEachOther) {
  SharedLog<int64_t> a;
  for (int64_t i = 0; i < 1000; ++i) a.Append(i * 3, i);
  SharedLog<int64_t> b = a;  // O(1): same storage.
  EXPECT_EQ(b.lineage(), a.lineage());
  b.Append(-1, 5000);  // In place: a does not see it.
  EXPECT_EQ(a.size(), 1000u);
  EXPECT_EQ(b.size(), 1001u);
  EXPECT_FALSE(a.Find(5000).has_value());
  EXPECT_EQ(b.Find(5000), 1000u);
  // a again: b took position 1000, so a continues in a storage of its own.
  a.Append(-2, 6000);
  EXPECT_NE(a.lineage(), b.lineage());
  EXPECT_EQ(a[1000], -2);
  EXPECT_EQ(b[1000], -1);
  EXPECT_FALSE(a.Find(5000).has_value());
  EXPECT_FALSE(b.Find(6000).has_value());
  for (int64_t i = 0; i < 1000; ++i) {
    ASSERT_EQ(a[static_cast<size_t>(i)], i * 3);
    ASSERT_EQ(b[static_cast<size_t>(i)], i * 3);
    ASSERT_EQ(a.Find(i), static_cast<size_t>(i));
  }
}

TEST(MetricHistoryTest, EqualityIsBySteps) {
  MetricHistory a{{9, MetricReport{1.0}}, {19, MetricReport{2.0}}};
  MetricHistory b;
  b.Add(19, MetricReport{2.0});
  b.Add(9, MetricReport{1.0});
  EXPECT_EQ(a, b);
  b.Add(29, MetricReport{3.0});
  EXPECT_FALSE(a == b);
  EXPECT_EQ(b.ToMap().size(), 3u);
  ASSERT_NE(b.Find(9), nullptr);
  EXPECT_EQ(b.Find(9)->value, 1.0);
  EXPECT_EQ(b.Find(10), nullptr);
}

}  // namespace
}  // namespace hpsched::core
