#include "golden/golden_util.h"

#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace hpsched::testing {

golden::GoldenFile LoadGolden(const std::string& file) {
  const std::string path = std::string(HPSCHED_SOURCE_DIR) + "/tests/golden/" + file;
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream buffer;
  buffer << in.rdbuf();
  golden::GoldenFile golden;
  const auto status = google::protobuf::util::JsonStringToMessage(buffer.str(), &golden);
  EXPECT_TRUE(status.ok()) << path << ": " << status.ToString();
  EXPECT_GT(golden.cases_size(), 0) << path;
  return golden;
}

std::vector<golden::GoldenFile> LoadAllGoldens() {
  std::vector<std::string> names;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(HPSCHED_SOURCE_DIR) + "/tests/golden")) {
    const std::string name = entry.path().filename().string();
    if (name.ends_with("_golden.json")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  EXPECT_FALSE(names.empty());
  std::vector<golden::GoldenFile> files;
  for (const auto& name : names) files.push_back(LoadGolden(name));
  return files;
}

bool GoldenClose(double expected, double actual, double scale) {
  if (expected == actual) return true;
  const double diff = std::fabs(expected - actual);
  return diff <= 1e-12 * std::max(std::fabs(expected), std::fabs(actual)) || diff <= 1e-15 * scale;
}

double Scale(const golden::GoldenCase& c) {
  double scale = 1e-300;
  for (double b : c.base_values()) scale = std::max(scale, std::fabs(b));
  return scale;
}

std::string Hyperparameter(const golden::GoldenCase& c) {
  return c.hyperparameter().empty() ? "lr" : c.hyperparameter();
}

}  // namespace hpsched::testing
