// core::FlatMap (core/flat_map.h): std::map's order and answers, one pointer, no block when empty.
#include "core/flat_map.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace hpsched::core {
namespace {

using Map = FlatMap<std::string, std::string>;

std::vector<std::pair<std::string, std::string>> Entries(const Map& map) {
  return {map.begin(), map.end()};
}

TEST(FlatMapTest, EmptyIsOnePointerAndFindsNothing) {
  static_assert(sizeof(Map) == sizeof(void*));
  const Map map;
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.size(), 0u);
  EXPECT_EQ(map.begin(), map.end());
  EXPECT_EQ(map.find("a"), map.end());
  EXPECT_FALSE(map.contains(absl::string_view("a")));
  EXPECT_EQ(map.count("a"), 0u);
  EXPECT_THROW(map.at("a"), std::out_of_range);
  EXPECT_EQ(map, Map());
}

TEST(FlatMapTest, KeepsKeyOrderWhateverTheInsertionOrder) {
  Map map;
  map["team"] = "nlp";
  map["owner"] = "ana";
  EXPECT_TRUE(map.emplace("project", "x").second);
  EXPECT_TRUE(map.try_emplace("a", "first").second);
  map.insert({"zeta", "last"});
  EXPECT_EQ(
      Entries(map),
      (std::vector<std::pair<std::string, std::string>>{
          {"a", "first"}, {"owner", "ana"}, {"project", "x"}, {"team", "nlp"}, {"zeta", "last"}}));
}

TEST(FlatMapTest, AnExistingKeyIsNotReplacedByEmplaceOrInsert) {
  Map map{{"k", "one"}};
  auto [it, inserted] = map.emplace("k", "two");
  EXPECT_FALSE(inserted);
  EXPECT_EQ(it->second, "one");
  EXPECT_FALSE(map.insert({"k", "three"}).second);
  EXPECT_FALSE(map.try_emplace("k", "four").second);
  EXPECT_EQ(map.at("k"), "one");
  map["k"] = "five";  // operator[] assigns, as std::map's does.
  EXPECT_EQ(map.at("k"), "five");
  EXPECT_EQ(map.size(), 1u);
}

TEST(FlatMapTest, MissingNamesAreNotFoundBetweenAndAroundPresentOnes) {
  const Map map{{"b", "1"}, {"d", "2"}, {"f", "3"}};
  for (absl::string_view missing : {"", "a", "c", "e", "g", "bb", "B"}) {
    EXPECT_EQ(map.find(missing), map.end()) << missing;
    EXPECT_FALSE(map.contains(missing)) << missing;
  }
  EXPECT_EQ(map.find(absl::string_view("d"))->second, "2");
  EXPECT_EQ(map.lower_bound("c")->first, "d");
  EXPECT_EQ(map.lower_bound("g"), map.end());
}

TEST(FlatMapTest, EraseByKeyAndIteratorAndFreesTheLastEntry) {
  Map map{{"a", "1"}, {"b", "2"}, {"c", "3"}};
  EXPECT_EQ(map.erase("x"), 0u);
  EXPECT_EQ(map.erase("b"), 1u);
  EXPECT_EQ(Entries(map),
            (std::vector<std::pair<std::string, std::string>>{{"a", "1"}, {"c", "3"}}));
  auto next = map.erase(map.find("a"));
  EXPECT_EQ(next->first, "c");
  map.erase(map.begin());
  EXPECT_TRUE(map.empty());
  EXPECT_EQ(map.begin(), map.end());
  map["again"] = "ok";
  EXPECT_EQ(map.at("again"), "ok");
}

TEST(FlatMapTest, CopiesAndMovesAreIndependentAndEqual) {
  Map a{{"x", "1"}, {"y", "2"}};
  Map b = a;
  EXPECT_EQ(a, b);
  b["x"] = "changed";
  EXPECT_EQ(a.at("x"), "1");
  EXPECT_NE(a, b);
  Map c = std::move(b);
  EXPECT_TRUE(b.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty, by contract.
  EXPECT_EQ(c.at("x"), "changed");
  c = a;
  EXPECT_EQ(c, a);
  c = Map();
  EXPECT_TRUE(c.empty());
  Map self = a;
  self = *&self;
  EXPECT_EQ(self, a);
}

TEST(FlatMapTest, ManyEntriesMatchStdMapOnARandomSequence) {
  // Values that own memory (shared_ptr) so that moves within the block are exercised.
  FlatMap<std::string, std::shared_ptr<int>> flat;
  std::map<std::string, int, std::less<>> reference;
  std::mt19937 random(11);
  for (int i = 0; i < 5000; ++i) {
    const std::string key = "key-" + std::to_string(random() % 300);
    switch (random() % 4) {
      case 0:
      case 1:
        flat[key] = std::make_shared<int>(i);
        reference[key] = i;
        break;
      case 2:
        EXPECT_EQ(flat.erase(key), reference.erase(key));
        break;
      default: {
        auto found = flat.find(key);
        auto expected = reference.find(key);
        ASSERT_EQ(found == flat.end(), expected == reference.end()) << key;
        if (found != flat.end()) EXPECT_EQ(*found->second, expected->second);
      }
    }
    ASSERT_EQ(flat.size(), reference.size());
  }
  auto expected = reference.begin();
  for (const auto& [key, value] : flat) {
    ASSERT_NE(expected, reference.end());
    EXPECT_EQ(key, expected->first);
    EXPECT_EQ(*value, expected->second);
    ++expected;
  }
  EXPECT_EQ(expected, reference.end());
}

TEST(FlatMapTest, BuildsFromAnotherMapsRange) {
  const std::map<std::string, std::string> source{{"b", "2"}, {"a", "1"}};
  const Map map(source.begin(), source.end());
  EXPECT_EQ(Entries(map),
            (std::vector<std::pair<std::string, std::string>>{{"a", "1"}, {"b", "2"}}));
  Map more;
  more.insert(source.begin(), source.end());
  EXPECT_EQ(more, map);
}

}  // namespace
}  // namespace hpsched::core
