// The client library's retry policy against a fake server: UNAVAILABLE is retried with backoff up
// to max_attempts, other errors are not, and CreateJob retries reuse one request_id. Several
// replicas: the target list and its errors, round-robin over three servers, and a caller that sees
// no error while one of them goes away mid-run.
#include "client/client.h"

#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hpsched::client {
namespace {

class FlakyService final : public v1::SchedulerService::CallbackService {
 public:
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request, v1::Job* response) override {
    const int call = ++calls;
    if (auto it = context->client_metadata().find("authorization");
        it != context->client_metadata().end()) {
      std::lock_guard<std::mutex> lock(mutex);
      authorization = std::string(it->second.data(), it->second.size());
    }
    auto* reactor = context->DefaultReactor();
    if (call <= failures) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "warming up"));
    } else if (request->name() == "jobs/missing") {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "job jobs/missing not found"));
    } else {
      response->set_name(request->name());
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

  grpc::ServerUnaryReactor* CreateJob(grpc::CallbackServerContext* context,
                                      const v1::CreateJobRequest* request,
                                      v1::Job* response) override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      request_ids.insert(request->request_id());
    }
    const int call = ++calls;
    auto* reactor = context->DefaultReactor();
    if (call <= failures) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "warming up"));
    } else {
      response->set_name("jobs/" + request->job_id());
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

  std::atomic<int> calls{0};
  int failures = 0;
  std::mutex mutex;
  std::set<std::string> request_ids;
  std::string authorization;
};

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  void TearDown() override { server_->Shutdown(); }

  Client MakeClient(int max_attempts, std::string token = "") {
    ClientOptions options;
    options.bearer_token = std::move(token);
    options.max_attempts = max_attempts;
    options.initial_backoff = absl::Milliseconds(1);
    options.max_backoff = absl::Milliseconds(4);
    return Client(server_->InProcessChannel(grpc::ChannelArguments()), options);
  }

  FlakyService service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(ClientTest, RetriesUnavailableUntilItSucceeds) {
  service_.failures = 2;
  Client client = MakeClient(5);
  auto job = client.GetJob("demo");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->name(), "jobs/demo");
  EXPECT_EQ(service_.calls.load(), 3);
}

TEST_F(ClientTest, SendsTheBearerToken) {
  Client client = MakeClient(1, "reader-token-0123456789");
  ASSERT_TRUE(client.GetJob("demo").ok());
  EXPECT_EQ(service_.authorization, "Bearer reader-token-0123456789");
}

TEST_F(ClientTest, GivesUpAfterMaxAttempts) {
  service_.failures = 10;
  Client client = MakeClient(3);
  auto job = client.GetJob("demo");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(job.status().message(), "warming up");
  EXPECT_EQ(service_.calls.load(), 3);
}

TEST_F(ClientTest, OtherErrorsAreNotRetried) {
  Client client = MakeClient(5);
  auto job = client.GetJob("missing");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(service_.calls.load(), 1);
}

TEST_F(ClientTest, CreateJobRetriesReuseOneRequestId) {
  service_.failures = 2;
  Client client = MakeClient(5);
  ASSERT_TRUE(client.CreateJob("demo", v1::Job()).ok());
  EXPECT_EQ(service_.calls.load(), 3);
  ASSERT_EQ(service_.request_ids.size(), 1u);
  EXPECT_FALSE(service_.request_ids.begin()->empty());
}

TEST(ClientDeadlineTest, NoServerGivesUnavailableWithinTheDeadline) {
  ClientOptions options;
  options.target = "127.0.0.1:1";  // Nothing listens on port 1.
  options.timeout = absl::Seconds(2);
  options.max_attempts = 3;
  options.initial_backoff = absl::Milliseconds(1);
  Client client(options);
  const absl::Status status = client.GetJob("demo").status();
  EXPECT_TRUE(status.code() == absl::StatusCode::kUnavailable ||
              status.code() == absl::StatusCode::kDeadlineExceeded)
      << status;
}

TEST(ChannelTargetTest, ListsBecomeOneTargetOfAddresses) {
  EXPECT_EQ(*ChannelTarget("localhost:50051"), "localhost:50051");
  EXPECT_EQ(*ChannelTarget("dns:///hpsched.example:50051"), "dns:///hpsched.example:50051");
  EXPECT_EQ(*ChannelTarget(" 127.0.0.1:1, 127.0.0.2:2 "), "ipv4:127.0.0.1:1,127.0.0.2:2");
  EXPECT_EQ(*ChannelTarget("[::1]:7,[::2]:8"), "ipv6:[::1]:7,[::2]:8");
  EXPECT_EQ(ChannelTarget("127.0.0.1:1,,127.0.0.2:2").status().message(),
            "--target: \"127.0.0.1:1,,127.0.0.2:2\" has an empty address in its list");
  EXPECT_EQ(ChannelTarget("127.0.0.1:1,127.0.0.2").status().message(),
            "--target: \"127.0.0.2\" must be HOST:PORT (a list needs every port)");
  EXPECT_EQ(ChannelTarget("127.0.0.1:1,127.0.0.2:0").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChannelTarget("127.0.0.1:1,[::1]:2").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChannelTarget("").status().message(), "--target: must not be empty");
  // A client with a bad target answers its error on every call, without crashing.
  ClientOptions options;
  options.target = "127.0.0.1:1,";
  Client client(options);
  EXPECT_EQ(client.GetJob("a").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ChannelTargetTest, TheServiceConfigRetriesWhatIsSafeToRepeat) {
  ClientOptions options;
  const std::string config = ServiceConfigJson(options);
  EXPECT_TRUE(absl::StrContains(config, R"({"loadBalancingConfig":[{"round_robin":{}}])"));
  for (const char* method : {"GetValues", "GetJob", "CreateJob", "UpdateJob", "ReportMetrics"}) {
    EXPECT_TRUE(absl::StrContains(config, absl::StrCat(R"("method":")", method, R"(")"))) << method;
  }
  EXPECT_FALSE(absl::StrContains(config, "DeleteJob"));
  EXPECT_FALSE(absl::StrContains(config, "WatchJob"));
  EXPECT_TRUE(absl::StrContains(config, R"("retryableStatusCodes":["UNAVAILABLE"])"));
  options.max_attempts = 1;
  EXPECT_EQ(ServiceConfigJson(options), R"({"loadBalancingConfig":[{"round_robin":{}}]})");
}

// A replica: answers GetJob with a label naming itself.
class NamedService final : public v1::SchedulerService::CallbackService {
 public:
  explicit NamedService(std::string name) : name_(std::move(name)) {}
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request, v1::Job* response) override {
    ++calls;
    response->set_name(request->name());
    (*response->mutable_labels())["replica"] = name_;
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  std::atomic<int> calls{0};

 private:
  std::string name_;
};

TEST(ReplicasTest, RoundRobinAndNoErrorWhenOneReplicaGoesAway) {
  constexpr int kReplicas = 3;
  std::vector<std::unique_ptr<NamedService>> services;
  std::vector<std::unique_ptr<grpc::Server>> servers;
  std::vector<std::string> addresses;
  for (int i = 0; i < kReplicas; ++i) {
    services.push_back(std::make_unique<NamedService>(absl::StrCat("r", i)));
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(services.back().get());
    servers.push_back(builder.BuildAndStart());
    ASSERT_NE(servers.back(), nullptr);
    addresses.push_back(absl::StrCat("127.0.0.1:", port));
  }
  ClientOptions options;
  options.target = absl::StrJoin(addresses, ",");
  options.timeout = absl::Seconds(20);  // Liveness only.
  Client client(options);

  // Round-robin: once every replica is connected, consecutive calls visit all of them.
  std::set<std::string> seen;
  for (int call = 0; call < 300 && seen.size() < kReplicas; ++call) {
    auto job = client.GetJob("a");
    ASSERT_TRUE(job.ok()) << job.status();
    seen.insert(job->labels().at("replica"));
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kReplicas));

  // Calls from two threads while replica r0 goes away: none fails.
  std::atomic<int> errors{0};
  std::atomic<int> done{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 2; ++t) {
    callers.emplace_back([&] {
      for (int call = 0; call < 300; ++call) {
        auto job = client.GetJob("a");
        if (!job.ok()) {
          ++errors;
          ADD_FAILURE() << job.status();
        }
        ++done;
      }
    });
  }
  while (done.load() < 100) std::this_thread::yield();
  servers[0]->Shutdown(std::chrono::system_clock::now());  // Cancels what it has in flight.
  const int r0_calls = services[0]->calls.load();
  const int others_before = services[1]->calls.load() + services[2]->calls.load();
  for (std::thread& caller : callers) caller.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(done.load(), 600);
  // After it went away, r0 answered nothing more and the others answered the rest.
  EXPECT_EQ(services[0]->calls.load(), r0_calls);
  EXPECT_GT(services[1]->calls.load() + services[2]->calls.load(), others_before);
  for (int i = 1; i < kReplicas; ++i) servers[i]->Shutdown();
}

}  // namespace
}  // namespace hpsched::client
