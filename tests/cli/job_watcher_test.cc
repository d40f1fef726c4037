// `hpsched watch`'s logic: the polling watcher over a fake GetJob and a fake clock, and RunWatch's
// stopping rules (deleted, --count, --watch_timeout).
#include "client/cli/job_watcher.h"

#include <deque>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace hpsched::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Job MakeJob(int64_t version, const std::string& etag) {
  v1::Job job;
  job.set_name("jobs/demo");
  job.set_version(version);
  job.set_etag(etag);
  return job;
}

// A server whose GetJob answers from a script, one answer per poll (the last one repeats), on a
// clock that only moves when the watcher sleeps.
struct FakeServer {
  std::deque<absl::StatusOr<v1::Job>> answers;
  absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  std::vector<absl::Duration> sleeps;
  int polls = 0;

  PollingJobWatcher::GetJobFn GetJob() {
    return [this]() -> absl::StatusOr<v1::Job> {
      ++polls;
      absl::StatusOr<v1::Job> answer = answers.front();
      if (answers.size() > 1) answers.pop_front();
      return answer;
    };
  }
  WatchClock Clock() {
    WatchClock clock;
    clock.now = [this] { return now; };
    clock.sleep = [this](absl::Duration d) {
      sleeps.push_back(d);
      now += d;
    };
    return clock;
  }
};

std::vector<std::string> RunFake(FakeServer& server, int count, absl::Duration timeout,
                                 absl::Status* status) {
  PollingJobWatcher watcher(server.GetJob(), absl::Seconds(1), server.Clock());
  std::vector<std::string> events;
  *status = RunWatch(
      watcher, count, timeout,
      [&](const WatchEvent& e) {
        events.push_back(absl::StrCat(WatchEventTypeName(e.type), " v", e.job.version()));
      },
      [&server] { return server.now; });
  return events;
}

TEST(PollingJobWatcherTest, InitialThenChangesThenDeleted) {
  FakeServer server;
  server.answers = {MakeJob(1, "a"), MakeJob(1, "a"), MakeJob(2, "b"),
                    MakeJob(2, "b"), MakeJob(2, "c"), absl::NotFoundError("jobs/demo not found")};
  absl::Status status;
  const auto events = RunFake(server, 0, absl::ZeroDuration(), &status);
  EXPECT_TRUE(status.ok()) << status;
  // An unchanged poll prints nothing; a new etag under the same version is a change (re-created).
  EXPECT_THAT(events, ElementsAre("initial v1", "modified v2", "modified v2", "deleted v2"));
  EXPECT_EQ(server.polls, 6);
  // One interval between two polls, none before the first.
  EXPECT_EQ(server.sleeps.size(), 5u);
  for (absl::Duration d : server.sleeps) EXPECT_EQ(d, absl::Seconds(1));
}

TEST(PollingJobWatcherTest, CountStopsAfterThatManyChanges) {
  FakeServer server;
  server.answers = {MakeJob(1, "a"), MakeJob(2, "b"), MakeJob(3, "c"), MakeJob(4, "d")};
  absl::Status status;
  EXPECT_THAT(RunFake(server, 2, absl::ZeroDuration(), &status),
              ElementsAre("initial v1", "modified v2", "modified v3"));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(server.polls, 3);
}

TEST(PollingJobWatcherTest, DeletedEndsTheWatchBeforeTheCount) {
  FakeServer server;
  server.answers = {MakeJob(1, "a"), absl::NotFoundError("gone")};
  absl::Status status;
  EXPECT_THAT(RunFake(server, 5, absl::ZeroDuration(), &status),
              ElementsAre("initial v1", "deleted v1"));
  EXPECT_TRUE(status.ok()) << status;
}

TEST(PollingJobWatcherTest, TimeoutWithoutTheChangesIsDeadlineExceeded) {
  FakeServer server;
  server.answers = {MakeJob(1, "a")};
  absl::Status status;
  EXPECT_THAT(RunFake(server, 1, absl::Seconds(5), &status), ElementsAre("initial v1"));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(status.message(), HasSubstr("0 of 1 changes within 5s"));
  EXPECT_LE(server.polls, 6);
}

TEST(PollingJobWatcherTest, TimeoutWithoutCountIsTheNormalEnd) {
  FakeServer server;
  server.answers = {MakeJob(1, "a"), MakeJob(1, "a"), MakeJob(2, "b")};
  absl::Status status;
  EXPECT_THAT(RunFake(server, 0, absl::Seconds(10), &status),
              ElementsAre("initial v1", "modified v2"));
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(server.now, absl::FromUnixSeconds(1'700'000'010));
}

TEST(PollingJobWatcherTest, MissingJobAndServerErrorsAreErrors) {
  FakeServer missing;
  missing.answers = {absl::NotFoundError("jobs/demo not found")};
  absl::Status status;
  EXPECT_THAT(RunFake(missing, 0, absl::ZeroDuration(), &status), testing::IsEmpty());
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);

  FakeServer flaky;
  flaky.answers = {MakeJob(1, "a"), absl::UnavailableError("down")};
  EXPECT_THAT(RunFake(flaky, 0, absl::ZeroDuration(), &status), ElementsAre("initial v1"));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
}

TEST(PollingJobWatcherTest, NoEventsAfterDeleted) {
  FakeServer server;
  server.answers = {MakeJob(1, "a"), absl::NotFoundError("gone")};
  PollingJobWatcher watcher(server.GetJob(), absl::Seconds(1), server.Clock());
  EXPECT_EQ(watcher.Next(absl::InfiniteFuture())->type, WatchEventType::kInitial);
  EXPECT_EQ(watcher.Next(absl::InfiniteFuture())->type, WatchEventType::kDeleted);
  EXPECT_EQ(watcher.Next(absl::InfiniteFuture()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(WatchEventFormatTest, TextAndJsonLines) {
  WatchEvent event{WatchEventType::kModified, MakeJob(3, "e3"), absl::FromUnixSeconds(0)};
  EXPECT_EQ(WatchEventText(event), "1970-01-01T00:00:00Z modified jobs/demo version=3 etag=e3");
  const std::string json = WatchEventJson(event);
  EXPECT_THAT(json, HasSubstr("{\"event\":\"modified\",\"time\":\"1970-01-01T00:00:00Z\","
                              "\"job\":{\"name\":\"jobs/demo\""));
  EXPECT_THAT(json, HasSubstr("\"version\":\"3\""));
  EXPECT_EQ(json.find('\n'), std::string::npos);
  event.type = WatchEventType::kDeleted;
  EXPECT_EQ(WatchEventJson(event),
            "{\"event\":\"deleted\",\"time\":\"1970-01-01T00:00:00Z\",\"name\":\"jobs/demo\"}");
}

}  // namespace
}  // namespace hpsched::cli
