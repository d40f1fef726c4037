// The cost budget of a spec, checked before anything is compiled (issue 10, item 1): the attack
// (a Preview of a `chained` tree of 64 x 64 x 4 `constant` leaves with 1,024 base values) is
// refused naming the limit and its cost; a just-legal large spec compiles, sharing what does not
// depend on the group, and gives the values of a small equivalent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/compile_cache.h"
#include "core/evaluator.h"
#include "core/expression.h"
#include "core/job_plan.h"
#include "core/kind_registry.h"
#include "core/preview.h"
#include "core/spec_cost.h"

namespace hpsched::core {
namespace {

using ::testing::HasSubstr;

// PyTorch ConstantLR: `factor` before step total_iters, 1 from there on.
ScheduleSpec Constant(double factor, int64_t total_iters) {
  return ScheduleSpec{"constant", {{"factor", factor}, {"total_iters", total_iters}}, {}};
}

ScheduleSpec Chained(std::vector<ScheduleSpec> children) {
  return ScheduleSpec{"chained", {}, std::move(children)};
}

// chained(width x chained(leaves x constant(0.5, total_iters = 1 + (i mod 8)))): nodes =
// 1 + width + width x leaves.
ScheduleSpec Tree(int width, int leaves) {
  std::vector<ScheduleSpec> middles;
  for (int m = 0; m < width; ++m) {
    std::vector<ScheduleSpec> constants;
    for (int i = 0; i < leaves; ++i) constants.push_back(Constant(0.5, 1 + (m * leaves + i) % 8));
    middles.push_back(Chained(std::move(constants)));
  }
  return Chained(std::move(middles));
}

// The attack: 64 x 64 x 4 leaves under three levels of chained.
ScheduleSpec Attack() {
  std::vector<ScheduleSpec> top;
  for (int a = 0; a < 64; ++a) {
    std::vector<ScheduleSpec> middle;
    for (int b = 0; b < 64; ++b) {
      middle.push_back(Chained(std::vector<ScheduleSpec>(4, Constant(0.5, 1))));
    }
    top.push_back(Chained(std::move(middle)));
  }
  return Chained(std::move(top));
}

std::vector<double> Bases(size_t n) {
  std::vector<double> bases;
  for (size_t g = 0; g < n; ++g) bases.push_back(0.1 * static_cast<double>(g + 1));
  return bases;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

TEST(PlanCostTest, TheAttackIsRefusedBeforeCompilingNamingTheLimitAndItsCost) {
  // 1 + 64 + 4,096 + 16,384 = 20,545 nodes x 1,024 groups.
  const ScheduleSpec attack = Attack();
  const auto start = std::chrono::steady_clock::now();
  auto preview = CompiledPreview::Compile(attack, Bases(1024), "lr");
  std::printf("attack preview refused in %.6f s\n", Seconds(start));
  ASSERT_FALSE(preview.ok());
  EXPECT_EQ(preview.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(preview.status().message(),
            "schedule: costs 21,038,080 node-groups, over the limit of 262,144 (schedule nodes x "
            "parameter groups)");
  // The same through CreateJob/UpdateJob's validation, summed over the job.
  JobSpec job;
  job.hyperparameters.push_back({"lr", Bases(1024), attack});
  auto plan = JobPlan::Compile(job, "job");
  EXPECT_EQ(plan.status().message(),
            "job.hyperparameters: costs 21,038,080 node-groups, over the limit of 262,144 "
            "(schedule nodes x parameter groups)");
}

TEST(PlanCostTest, TheBudgetCountsEveryHyperparameterAndSegment) {
  // 64 hyperparameters x 1,024 groups x 4 nodes is exactly the limit; one segment more is over.
  JobSpec job;
  const ScheduleSpec small = Chained({Constant(0.5, 2), Constant(0.5, 3), Constant(0.5, 4)});
  for (int h = 0; h < 64; ++h)
    job.hyperparameters.push_back({absl::StrCat("hp", h), Bases(1024), small});
  SpecCost cost;
  for (const HyperparameterSpec& hp : job.hyperparameters) AddHyperparameterCost(hp, &cost);
  EXPECT_EQ(cost.node_groups, kMaxNodeGroups);
  EXPECT_TRUE(CheckSpecCost(cost, "job.hyperparameters").ok());
  SegmentSpec pin;
  pin.effective_step = 10;
  pin.change = SegmentSpec::Change::kPin;
  pin.pin = {0.01};
  job.hyperparameters[5].segments.push_back(pin);
  EXPECT_EQ(JobPlan::Compile(job, "job").status().message(),
            "job.hyperparameters: costs 263,168 node-groups, over the limit of 262,144 (schedule "
            "nodes x parameter groups)");
}

TEST(PlanCostTest, AJustLegalLargeSpecCompilesOnceAndGivesTheValuesOfASmallEquivalent) {
  // 1 + 15 + 15 x 16 = 256 nodes x 1,024 groups = 262,144 node-groups: the limit.
  const ScheduleSpec tree = Tree(15, 16);
  const std::vector<double> bases = Bases(1024);
  SpecCost cost;
  AddScheduleCost(tree, 1024, &cost);
  ASSERT_EQ(cost.node_groups, kMaxNodeGroups);
  auto start = std::chrono::steady_clock::now();
  auto preview = CompiledPreview::Compile(tree, bases, "lr");
  std::printf("just-legal preview (256 nodes x 1,024 groups) compiled in %.6f s\n", Seconds(start));
  ASSERT_TRUE(preview.ok()) << preview.status();
  JobSpec job;
  job.hyperparameters.push_back({"lr", bases, tree});
  start = std::chrono::steady_clock::now();
  auto plan = JobPlan::Compile(job, "job");
  std::printf("just-legal job compiled in %.6f s\n", Seconds(start));
  ASSERT_TRUE(plan.ok()) << plan.status();

  // The small equivalent: ConstantLR's 0.5 applies to leaf i while step < 1 + (i mod 8), so the
  // product at step t is b x 0.5^(leaves with total_iters > t) (powers of two: exact).
  std::vector<int> active(10, 0);
  for (int i = 0; i < 240; ++i) {
    for (int t = 0; t < 10; ++t) active[t] += t < 1 + i % 8 ? 1 : 0;
  }
  for (size_t g : {size_t{0}, size_t{1}, size_t{511}, size_t{1023}}) {
    std::vector<double> out(10);
    EvalQuery query{(*plan)->series()[g].node.get(), 0, out};
    EvaluateBatch(std::span<const EvalQuery>(&query, 1));
    // The same schedule for this group alone (no sharing) agrees bit for bit.
    auto alone = CompiledPreview::Compile(tree, {bases[g]}, "lr");
    ASSERT_TRUE(alone.ok());
    std::vector<double> single(10);
    ASSERT_TRUE(alone
                    ->Evaluate(0, 10, ScalarEvaluator(),
                               [&](size_t, int64_t) { return std::span<double>(single); })
                    .ok());
    for (int t = 0; t < 10; ++t) {
      EXPECT_EQ(out[t], std::ldexp(bases[g], -active[t])) << "group " << g << " step " << t;
      EXPECT_EQ(out[t], single[t]);
    }
  }
}

TEST(PlanCostTest, GroupsShareTheSubtreesThatDoNotDependOnTheGroup) {
  // Under chained every child has base value 1: 1,024 groups compile the 16 subtrees (and their
  // 240 leaves) once, and only the root once per group.
  const ScheduleSpec tree = Tree(15, 16);
  CompileCache cache;
  for (int g = 0; g < 1024; ++g) {
    CompileContext context;
    context.path = "schedule";
    context.base = 0.1 * (g + 1);
    context.group = g;
    context.num_groups = 1024;
    context.cache = &cache;
    ASSERT_TRUE(CompileSchedule(tree, context).ok());
  }
  EXPECT_EQ(cache.compiled(), 255 + 1024);  // Each subtree once, the root per group.
  EXPECT_EQ(cache.shared(), 15 * 1023);
  // A child that reads a per-group value is compiled for every group.
  ScheduleSpec per_group = Chained({ScheduleSpec{"cyclic",
                                                 {{"base_lr", std::vector<double>{0.1, 0.2}},
                                                  {"max_lr", std::vector<double>{1.0, 2.0}},
                                                  {"step_size_up", 10.0}},
                                                 {}},
                                    Constant(0.5, 3)});
  const std::vector<double> ones = {1.0, 1.0};
  auto nodes = CompileStandalone(per_group, ones, "schedule");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  std::vector<double> a(3), b(3);
  (*nodes)[0]->Evaluate(5, a);
  (*nodes)[1]->Evaluate(5, b);
  EXPECT_NE(a, b);  // Group 1 got its own max_lr.
}

// x + x + ... within the expression length limit.
std::string LongExpression() {
  std::string text = "step";
  while (text.size() + 7 <= Expression::kMaxLength) text += "*1+step";
  return text;
}

// A shared subtree costs what it costs unshared: the evaluation budget (steps x step_cost) must not
// shrink because groups share what they compiled (the wrapper forwards step_cost()).
TEST(PlanCostTest, ASharedSubtreeKeepsItsStepCost) {
  const ScheduleSpec tree = Tree(15, 16);
  CompileContext alone;
  alone.path = "schedule";
  alone.base = 0.2;
  auto unshared = CompileSchedule(tree, alone);
  ASSERT_TRUE(unshared.ok()) << unshared.status();
  CompileCache cache;
  NodePtr last;
  for (int g = 0; g < 2; ++g) {
    CompileContext context;
    context.path = "schedule";
    context.base = 0.1 * (g + 1);
    context.group = g;
    context.num_groups = 2;
    context.cache = &cache;
    auto node = CompileSchedule(tree, context);
    ASSERT_TRUE(node.ok()) << node.status();
    last = *std::move(node);
  }
  ASSERT_GT(cache.shared(), 0);
  // chained: 1 + its 15 children, each a chained of 1 + 16 constants.
  EXPECT_EQ((*unshared)->step_cost(), 1 + 15 * 17);
  EXPECT_EQ(last->step_cost(), (*unshared)->step_cost());
}

TEST(PlanCostTest, ExpressionOperationsCountPerGroup) {
  const ScheduleSpec lambda{"lambda", {{"expression", LongExpression()}}, {}};
  SpecCost one;
  AddScheduleCost(lambda, 1, &one);
  ASSERT_GT(one.expression_op_groups, 0);
  // Enough hyperparameters of 1,024 groups to pass the limit.
  const int64_t per_hp = one.expression_op_groups * 1024;
  JobSpec job;
  for (int64_t h = 0; h * per_hp <= kMaxExpressionOpGroups; ++h) {
    job.hyperparameters.push_back({absl::StrCat("hp", h), Bases(1024), lambda});
  }
  auto plan = JobPlan::Compile(job, "job");
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("job.hyperparameters: costs "));
  EXPECT_THAT(plan.status().message(),
              HasSubstr("expression operation-groups, over the limit of 4,194,304 (expression "
                        "operations x parameter groups)"));
  job.hyperparameters.pop_back();
  EXPECT_TRUE(JobPlan::Compile(job, "job").ok());
}

TEST(PlanCostTest, TheMultiplicativeWorkBudgetIsTheJobs) {
  // total_iters far over any budget: the error states this schedule's share.
  const ScheduleSpec multiplicative{
      "multiplicative",
      {{"lr_lambda", std::string("0.5 + 0 * step")}, {"total_iters", int64_t{1} << 40}},
      {}};
  JobSpec one;
  one.hyperparameters.push_back({"lr", {0.1}, multiplicative});
  const std::string alone = std::string(JobPlan::Compile(one, "job").status().message());
  EXPECT_THAT(alone, HasSubstr("for this lr_lambda and 1 parameter group)"));
  JobSpec two = one;
  two.hyperparameters.push_back({"momentum", {0.9}, multiplicative});
  const std::string shared = std::string(JobPlan::Compile(two, "job").status().message());
  EXPECT_THAT(shared, HasSubstr("whose budget the job's 2 multiplicative schedules x parameter "
                                "groups share"));
  // Half the steps each.
  auto limit = [](const std::string& message) {
    const size_t at = message.find("must be <= ") + 11;
    return std::stoll(message.substr(at));
  };
  EXPECT_EQ(limit(shared), limit(alone) / 2);
}

}  // namespace
}  // namespace hpsched::core
