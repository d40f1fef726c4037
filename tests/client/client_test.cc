// The client library's retry policy against a fake server: UNAVAILABLE is retried with backoff up
// to max_attempts, other errors are not, and CreateJob retries reuse one request_id.
#include "client/client.h"

#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>

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

}  // namespace
}  // namespace hpsched::client
