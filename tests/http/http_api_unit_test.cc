// The HTTP front end's pieces that need no server: query parameters into request messages, the
// gRPC-code-to-HTTP-status table (grpc-gateway's), Grpc-Timeout, the error body, and the assets
// compiled in from server/web/ (compared with the files themselves).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "hpsched/v1/scheduler_service.pb.h"
#include "http/json_api.h"
#include "http/query_params.h"
#include "web/web_assets.h"

namespace hpsched::http {
namespace {

using Params = std::vector<std::pair<std::string, std::string>>;

TEST(QueryParams, FillFieldsByProtoOrJsonNameRepeatedAndEnums) {
  hpsched::v1::GetValuesRequest request;
  ASSERT_TRUE(ApplyQueryParams({{"step", "12"},
                                {"count", "3"},
                                {"hyperparameters", "lr"},
                                {"hyperparameters", "momentum"},
                                {"pendingPolicy", "PENDING_POLICY_PROVISIONAL_NOW"}},
                               &request)
                  .ok());
  EXPECT_EQ(request.step(), 12);
  EXPECT_EQ(request.count(), 3);
  ASSERT_EQ(request.hyperparameters_size(), 2);
  EXPECT_EQ(request.hyperparameters(1), "momentum");
  EXPECT_EQ(request.pending_policy(), hpsched::v1::PENDING_POLICY_PROVISIONAL_NOW);

  hpsched::v1::GetValuesRequest by_number;
  ASSERT_TRUE(ApplyQueryParams({{"pending_policy", "1"}}, &by_number).ok());
  EXPECT_EQ(by_number.pending_policy(), hpsched::v1::PENDING_POLICY_WAIT_THEN_PROVISIONAL);
}

TEST(QueryParams, ErrorsNameTheParameterAndTheRule) {
  hpsched::v1::GetValuesRequest request;
  EXPECT_EQ(ApplyQueryParams({{"step", "ten"}}, &request).message(),
            "query parameter step: must be an integer, got \"ten\"");
  EXPECT_EQ(ApplyQueryParams({{"step", "99999999999999999999"}}, &request).message(),
            "query parameter step: must be an integer, got \"99999999999999999999\"");
  EXPECT_EQ(ApplyQueryParams({{"stepp", "1"}}, &request).message(),
            "query parameter stepp: no such field of hpsched.v1.GetValuesRequest");
  EXPECT_EQ(
      ApplyQueryParams({{"pending_policy", "7"}}, &request).message(),
      "query parameter pending_policy: must be a value of hpsched.v1.PendingPolicy, got \"7\"");
  EXPECT_EQ(ApplyQueryParams({{"step.x", "1"}}, &request).message(),
            "query parameter step.x: step is not a singular message field");
  hpsched::v1::ListJobsRequest list;
  EXPECT_EQ(ApplyQueryParams({{"page_size", "3000000000"}}, &list).message(),
            "query parameter page_size: must be a 32-bit integer, got \"3000000000\"");
  hpsched::v1::UpdateJobRequest update;
  EXPECT_EQ(ApplyQueryParams({{"allow_rewrite", "yes"}}, &update).message(),
            "query parameter allow_rewrite: must be true or false, got \"yes\"");
  EXPECT_EQ(ApplyQueryParams({{"updates", "x"}}, &update).message(),
            "query parameter updates: a message field; send it in a request body instead");
  hpsched::v1::ReportMetricsRequest report;
  EXPECT_EQ(ApplyQueryParams({{"metrics", "x"}}, &report).message(),
            "query parameter metrics: a map field; send it in a request body instead");
}

// grpc-gateway's runtime.HTTPStatusFromCode, code by code.
TEST(StatusMapping, AsGrpcGateway) {
  const std::pair<int, int> table[] = {{0, 200},  {1, 499},  {2, 500},  {3, 400},  {4, 504},
                                       {5, 404},  {6, 409},  {7, 403},  {8, 429},  {9, 400},
                                       {10, 409}, {11, 400}, {12, 501}, {13, 500}, {14, 503},
                                       {15, 500}, {16, 401}};
  for (const auto& [code, status] : table) EXPECT_EQ(HttpStatusFromCode(code), status) << code;
}

TEST(StatusMapping, ErrorBodyIsGoogleRpcStatusJson) {
  EXPECT_EQ(StatusJson(5, "job jobs/x not found \"quoted\""),
            R"({"code":5,"message":"job jobs/x not found \"quoted\"","details":[]})");
  const ApiReply reply = ErrorReply(absl::PermissionDeniedError("no"));
  EXPECT_EQ(reply.http_status, 403);
  EXPECT_EQ(reply.body, R"({"code":7,"message":"no","details":[]})");
}

TEST(GrpcTimeout, ParsesEveryUnitAndRejectsTheRest) {
  EXPECT_EQ(*ParseGrpcTimeout("3S"), absl::Seconds(3));
  EXPECT_EQ(*ParseGrpcTimeout("250m"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseGrpcTimeout("2H"), absl::Hours(2));
  EXPECT_EQ(*ParseGrpcTimeout("1M"), absl::Minutes(1));
  EXPECT_EQ(*ParseGrpcTimeout("7u"), absl::Microseconds(7));
  EXPECT_EQ(*ParseGrpcTimeout("9n"), absl::Nanoseconds(9));
  for (const char* bad : {"", "S", "3", "3s", "-1S", "1234567890S", "x1S"}) {
    EXPECT_FALSE(ParseGrpcTimeout(bad).ok()) << bad;
  }
}

TEST(WebAssets, EveryFileUnderServerWebIsCompiledInByteForByte) {
  const web::Asset* index = web::FindAsset("/index.html");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  std::ifstream in(std::string(HPSCHED_SOURCE_DIR) + "/server/web/index.html", std::ios::binary);
  std::stringstream file;
  file << in.rdbuf();
  EXPECT_EQ(index->body, file.str());
  EXPECT_EQ(web::FindAsset("/"), nullptr);
  EXPECT_EQ(web::FindAsset("index.html"), nullptr);
  EXPECT_EQ(web::FindAsset("/web_assets.h"), nullptr);
  ASSERT_GE(web::AssetCount(), 1u);
  for (size_t i = 0; i < web::AssetCount(); ++i) {
    const web::Asset* asset = web::AssetAt(i);
    EXPECT_EQ(web::FindAsset(asset->path), asset) << asset->path;
    if (i > 0) EXPECT_LT(web::AssetAt(i - 1)->path, asset->path);
  }
  EXPECT_EQ(web::AssetAt(web::AssetCount()), nullptr);
}

}  // namespace
}  // namespace hpsched::http
