// `chained` over a kind of each library (transformers, keras, optax, timm, deepspeed, megatron) and
// a PyTorch kind: every catalog kind states a bound, so chained accepts it, and the value is the
// product of the children's values. The reference numbers are tests/golden/chained_golden.json
// (gen_chained_golden.py: each library's own values times torch's, as ChainedScheduler multiplies).
#include <gtest/gtest.h>

#include <set>
#include <span>
#include <string>
#include <vector>

#include "codec/proto_convert.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "golden/golden_util.h"

namespace hpsched::core {
namespace {

double ValueAt(const Node& node, int64_t step) {
  double value = 0;
  EvalQuery query{&node, step, std::span<double>(&value, 1)};
  EvaluateBatch(std::span<const EvalQuery>(&query, 1));
  return value;
}

TEST(CatalogChainedTest, ChainedAcceptsALibraryKind) {
  // The spec of the issue answered `kind "transformers" states no bound`; now it reaches the
  // transformers rules (HF's linear schedule requires num_warmup_steps), and with them it compiles.
  ScheduleSpec linear{"transformers", {}, {}};
  linear.params["name"] = std::string("linear");
  linear.params["num_training_steps"] = int64_t{100};
  ScheduleSpec exponential{"exponential", {}, {}};
  exponential.params["gamma"] = 0.99;
  EXPECT_EQ(CompileStandalone(ScheduleSpec{"chained", {}, {linear, exponential}},
                              std::vector<double>{0.1}, "schedule")
                .status()
                .message(),
            "schedule.chained.schedules[0].transformers.num_warmup_steps: is required");
  linear.params["num_warmup_steps"] = int64_t{10};
  const ScheduleSpec chained{"chained", {}, {linear, exponential}};
  auto nodes = CompileStandalone(chained, std::vector<double>{0.1}, "schedule");
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  auto alone = CompileStandalone(linear, std::vector<double>{1.0}, "schedule");
  auto torch = CompileStandalone(exponential, std::vector<double>{1.0}, "schedule");
  ASSERT_TRUE(alone.ok() && torch.ok());
  for (int64_t step : {0, 1, 10, 50, 99, 100, 1000}) {
    EXPECT_EQ(ValueAt(*(*nodes)[0], step),
              0.1 * ValueAt(*(*alone)[0], step) * ValueAt(*(*torch)[0], step))
        << "step " << step;
  }
}

TEST(CatalogChainedTest, MatchesTheReferenceLibrariesForEveryLibrary) {
  const golden::GoldenFile file = testing::LoadGolden("chained_golden.json");
  std::set<std::string> libraries;
  for (const golden::GoldenCase& c : file.cases()) {
    SCOPED_TRACE(c.name() + ": " + c.reference());
    const ScheduleSpec spec = codec::ScheduleFromProto(c.schedule());
    ASSERT_EQ(spec.kind, "chained");
    ASSERT_EQ(spec.children.size(), 2u);
    libraries.insert(spec.children[0].kind.str());
    const std::vector<double> bases(c.base_values().begin(), c.base_values().end());
    auto nodes = CompileStandalone(spec, bases, "schedule");
    ASSERT_TRUE(nodes.ok()) << nodes.status();
    for (const golden::GoldenPoint& point : c.points()) {
      for (size_t g = 0; g < bases.size(); ++g) {
        const double actual = ValueAt(*(*nodes)[g], point.step());
        EXPECT_TRUE(testing::GoldenClose(point.values(g), actual, testing::Scale(c)))
            << "step " << point.step() << " group " << g << ": reference " << point.values(g)
            << ", hpsched " << actual;
        EXPECT_LE(std::fabs(actual), (*nodes)[g]->max_abs());
      }
    }
  }
  EXPECT_EQ(libraries, (std::set<std::string>{"transformers", "keras", "optax", "timm", "deepspeed",
                                              "megatron"}));
}

}  // namespace
}  // namespace hpsched::core
