// Every golden case of every reference library (tests/golden/*_golden.json), evaluated by the core
// directly: point by point at 1e-12 relative, and the batched span evaluation equal to
// one-at-a-time evaluation bit for bit.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "codec/proto_convert.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "golden/golden_util.h"

namespace hpsched {
namespace {

class GoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    files_ = new std::vector<golden::GoldenFile>(testing::LoadAllGoldens());
  }
  // Every case of every file, with the file's source.
  template <typename F>
  static void ForEachCase(F&& f) {
    for (const auto& file : *files_) {
      for (const auto& c : file.cases()) {
        SCOPED_TRACE(c.name() + ": " + c.reference() + " [" + file.source().substr(0, 60) + "]");
        f(c);
      }
    }
  }
  static std::vector<golden::GoldenFile>* files_;
};
std::vector<golden::GoldenFile>* GoldenTest::files_ = nullptr;

double EvaluateOne(const core::Node& node, int64_t step) {
  double value = 0;
  core::EvalQuery query{&node, step, std::span<double>(&value, 1)};
  core::EvaluateBatch(std::span<const core::EvalQuery>(&query, 1));
  return value;
}

TEST_F(GoldenTest, CoreMatchesReferenceLibraries) {
  int points = 0;
  ForEachCase([&](const golden::GoldenCase& c) {
    const std::vector<double> bases(c.base_values().begin(), c.base_values().end());
    auto nodes = core::CompileStandalone(codec::ScheduleFromProto(c.schedule()), bases, "schedule",
                                         testing::Hyperparameter(c));
    ASSERT_TRUE(nodes.ok()) << nodes.status();
    for (const auto& point : c.points()) {
      ASSERT_EQ(point.values_size(), static_cast<int>(bases.size()));
      for (size_t g = 0; g < bases.size(); ++g) {
        const double actual = EvaluateOne(*(*nodes)[g], point.step());
        EXPECT_TRUE(testing::GoldenClose(point.values(g), actual, testing::Scale(c)))
            << "step " << point.step() << " group " << g << ": reference " << point.values(g)
            << ", hpsched " << actual;
        ++points;
      }
    }
  });
  EXPECT_GT(points, 1000);
}

TEST_F(GoldenTest, BatchedEqualsOneAtATimeBitForBit) {
  ForEachCase([&](const golden::GoldenCase& c) {
    const std::vector<double> bases(c.base_values().begin(), c.base_values().end());
    auto nodes = core::CompileStandalone(codec::ScheduleFromProto(c.schedule()), bases, "schedule",
                                         testing::Hyperparameter(c));
    ASSERT_TRUE(nodes.ok()) << nodes.status();
    // Spans that start before, on and after every sampled step, across milestones and restarts.
    for (const auto& point : c.points()) {
      const int64_t start = std::max<int64_t>(0, point.step() - 37);
      std::vector<double> span(300);
      core::EvalQuery query{(*nodes)[0].get(), start, span};
      core::EvaluateBatch(std::span<const core::EvalQuery>(&query, 1));
      for (size_t i = 0; i < span.size(); i += 13) {
        const double one = EvaluateOne(*(*nodes)[0], start + static_cast<int64_t>(i));
        ASSERT_EQ(one, span[i]) << "step " << start + static_cast<int64_t>(i);
      }
    }
  });
}

}  // namespace
}  // namespace hpsched
