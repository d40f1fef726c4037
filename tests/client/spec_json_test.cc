// codec/spec_json.h, the JSON reader of the C++ clients: strict protobuf JSON unchanged, a plain
// number for a per-group list, PyTorch's spellings, and errors that name the field path, the valid
// names and the near miss (exact strings: these are what a user reads).
#include "codec/spec_json.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "hpsched/v1/scheduler_service.pb.h"

namespace hpsched::codec {
namespace {

v1::Schedule Parse(const std::string& json) {
  v1::Schedule schedule;
  const absl::Status status = ParseSpecJson(json, "schedule", &schedule);
  EXPECT_TRUE(status.ok()) << json << ": " << status;
  return schedule;
}

std::string Error(const std::string& json) {
  v1::Schedule schedule;
  const absl::Status status = ParseSpecJson(json, "schedule", &schedule);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << json;
  return std::string(status.message());
}

TEST(SpecJsonTest, APlainNumberIsAPerGroupListOfOne) {
  const v1::Schedule s = Parse(R"({"one_cycle":{"max_lr":0.1,"total_steps":100}})");
  ASSERT_EQ(s.one_cycle().max_lr_size(), 1);
  EXPECT_EQ(s.one_cycle().max_lr(0), 0.1);
  EXPECT_EQ(s.one_cycle().total_steps(), 100);
  // The list form is unchanged, and so are numbers as strings (protobuf JSON).
  const v1::Schedule list = Parse(R"({"cyclic":{"base_lr":[0.01,"0.02"],"max_lr":"0.1"}})");
  ASSERT_EQ(list.cyclic().base_lr_size(), 2);
  EXPECT_EQ(list.cyclic().base_lr(1), 0.02);
  EXPECT_EQ(list.cyclic().max_lr(0), 0.1);
}

TEST(SpecJsonTest, PlainNumbersInAJobAndInItsBaseValues) {
  v1::Job job;
  ASSERT_TRUE(ParseSpecJson(R"({"hyperparameters":[{"name":"lr","base_values":0.1,
      "schedule":{"reduce_on_plateau":{"metric":"loss","min_lr":0.001}}}],
      "metrics":[{"name":"loss","every_steps":10}]})",
                            "job", &job)
                  .ok());
  EXPECT_EQ(job.hyperparameters(0).base_values_size(), 1);
  EXPECT_EQ(job.hyperparameters(0).schedule().reduce_on_plateau().min_lr(0), 0.001);
}

TEST(SpecJsonTest, PyTorchSpellingsAreAccepted) {
  EXPECT_EQ(
      Parse(R"({"cosine_annealing":{"T_max":20,"eta_min":0.001}})").cosine_annealing().t_max(), 20);
  const v1::Schedule warm = Parse(R"({"cosine_annealing_warm_restarts":{"T_0":10,"T_mult":2}})");
  EXPECT_EQ(warm.cosine_annealing_warm_restarts().t_0(), 10);
  EXPECT_EQ(warm.cosine_annealing_warm_restarts().t_mult(), 2);
  // JSON names (camelCase) and SequentialLR's "schedulers".
  const v1::Schedule seq = Parse(
      R"({"sequential":{"schedulers":[{"linear":{"startFactor":0.1}},{"step":{"stepSize":3}}],
          "milestones":[5]}})");
  ASSERT_EQ(seq.sequential().schedules_size(), 2);
  EXPECT_EQ(seq.sequential().schedules(0).linear().start_factor(), 0.1);
  EXPECT_EQ(seq.sequential().schedules(1).step().step_size(), 3);
}

TEST(SpecJsonTest, StrictProtobufJsonReadsBackTheSame) {
  v1::Schedule want;
  auto* seq = want.mutable_sequential();
  seq->add_schedules()->mutable_linear()->set_start_factor(0.25);
  auto* oc = seq->add_schedules()->mutable_one_cycle();
  oc->add_max_lr(0.1);
  oc->add_max_lr(0.2);
  oc->set_total_steps(1000);
  oc->set_anneal_strategy("linear");
  seq->add_milestones(10);
  std::string json;
  ASSERT_TRUE(google::protobuf::util::MessageToJsonString(want, &json).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(Parse(json), want)) << json;
}

TEST(SpecJsonTest, AMisspelledKindNamesThePathAndTheNearMiss) {
  const std::string message = Error(R"({"cosine_anealing":{"T_max":20}})");
  EXPECT_EQ(message.substr(0, message.find(" (valid: ")),
            "schedule.cosine_anealing: is not a field of hpsched.v1.Schedule; did you mean "
            "\"cosine_annealing\"?");
  EXPECT_NE(message.find("(valid: chained, constant, cosine_annealing, "), std::string::npos)
      << message;
}

TEST(SpecJsonTest, AnUnknownFieldNamesThePathTheValidNamesAndTheNearMiss) {
  EXPECT_EQ(Error(R"({"cosine_annealing":{"t_maxx":20}})"),
            "schedule.cosine_annealing.t_maxx: is not a field of "
            "hpsched.v1.CosineAnnealingSchedule; did you mean \"t_max\"? (valid: eta_min, t_max)");
  // Far from every name: no guess.
  EXPECT_EQ(Error(R"({"step":{"period":20}})"),
            "schedule.step.period: is not a field of hpsched.v1.StepSchedule (valid: gamma, "
            "step_size)");
}

TEST(SpecJsonTest, PathsGoThroughListsAndJobs) {
  EXPECT_EQ(
      Error(R"({"sequential":{"schedules":[{"step":{"step_size":2}},{"linear":{"iters":3}}]}})"),
      "schedule.sequential.schedules[1].linear.iters: is not a field of "
      "hpsched.v1.LinearSchedule (valid: end_factor, start_factor, total_iters)");
  v1::Job job;
  const absl::Status status = ParseSpecJson(
      R"({"hyperparameters":[{"name":"lr","base_values":[1],"schedule":{"step":{"step_size":"ten"}}}]})",
      "job", &job);
  EXPECT_EQ(status.message(),
            "job.hyperparameters[0].schedule.step.step_size: must be an integer, got the string "
            "\"ten\"");
}

TEST(SpecJsonTest, TypeErrorsNameThePathAndTheType) {
  EXPECT_EQ(Error(R"({"step":{"step_size":10,"gamma":"half"}})"),
            "schedule.step.gamma: must be a number, got the string \"half\"");
  EXPECT_EQ(Error(R"({"step":{"step_size":2.5}})"),
            "schedule.step.step_size: must be an integer, got the number 2.5");
  EXPECT_EQ(Error(R"({"one_cycle":{"max_lr":{"lr":0.1}}})"),
            "schedule.one_cycle.max_lr: must be a number or a list of numbers (one per parameter "
            "group), got an object; strict protobuf JSON clients such as grpcurl need the list "
            "form, e.g. [0.1]");
  EXPECT_EQ(Error(R"({"multi_step":{"milestones":30}})"),
            "schedule.multi_step.milestones: must be a list, got the number 30");
  EXPECT_EQ(Error(R"({"step":7})"),
            "schedule.step: must be an object (hpsched.v1.StepSchedule), got the number 7");
}

// A JSON number is a double: exact up to 2^53 (the step limit, as in the optax golden case
// polynomial_far_transition), refused beyond rather than rounded; strings keep their digits.
TEST(SpecJsonTest, IntegersBeyondTwoToThe53MustBeStrings) {
  EXPECT_EQ(Error(R"({"cosine_annealing":{"t_max":9007199254740994}})"),
            "schedule.cosine_annealing.t_max: must be at most 2^53 in magnitude as a JSON number "
            "(beyond, numbers lose digits); write larger integers as strings, e.g. "
            "\"9007199254740993\"");
  EXPECT_EQ(
      Parse(R"({"cosine_annealing":{"t_max":"9007199254740993"}})").cosine_annealing().t_max(),
      9007199254740993);
  EXPECT_EQ(Parse(R"({"cosine_annealing":{"t_max":9007199254740992}})").cosine_annealing().t_max(),
            9007199254740992);
}

TEST(SpecJsonTest, TwoKeysForOneFieldAndTwoKindsAreErrors) {
  EXPECT_EQ(Error(R"({"cosine_annealing":{"T_max":20,"t_max":30}})"),
            "schedule.cosine_annealing.t_max: names the field t_max a second time");
  EXPECT_EQ(Error(R"({"step":{"step_size":1},"exponential":{"gamma":0.9}})"),
            "schedule: sets both exponential and step (kind: set exactly one)");
}

TEST(SpecJsonTest, EnumsByNameIgnoringCaseAndPrefix) {
  v1::UpdateJobRequest request;
  ASSERT_TRUE(ParseSpecJson(R"({"updates":[{"hyperparameter":"lr","segment":{"effective_step":5,
      "scale":0.5,"time":"global"}}]})",
                            "request", &request)
                  .ok());
  EXPECT_EQ(request.updates(0).segment().time(), v1::SEGMENT_TIME_GLOBAL);
  const absl::Status status =
      ParseSpecJson(R"({"updates":[{"segment":{"time":"globl"}}]})", "request", &request);
  EXPECT_EQ(
      status.message(),
      "request.updates[0].segment.time: \"globl\" is not a value of hpsched.v1.SegmentTime; "
      "did you mean \"SEGMENT_TIME_GLOBAL\"? (valid: SEGMENT_TIME_GLOBAL, SEGMENT_TIME_LOCAL, "
      "SEGMENT_TIME_UNSPECIFIED)");
}

TEST(SpecJsonTest, NotJson) {
  EXPECT_EQ(Error("{\"step\":").substr(0, 29), "schedule: is not valid JSON: ");
}

TEST(SpecJsonTest, EditDistance) {
  EXPECT_EQ(EditDistance("cosine_anealing", "cosine_annealing"), 1);
  EXPECT_EQ(EditDistance("", "abc"), 3);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
}

}  // namespace
}  // namespace hpsched::codec
