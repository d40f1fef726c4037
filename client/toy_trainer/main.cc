// toy-trainer: the tutorial's loop with the learning rate from hpsched.
//
// Trains Linear(1,1) with Adam on synthetic data, one optimizer step per epoch. Each epoch prints
// "Epoch NN - LR: X.XXXXX" (the learning rate in effect after that epoch's scheduler step, i.e. the
// job's value for step NN) and then the loss, exactly like the PyTorch loop with
// StepLR(step_size=10, gamma=0.5) by default.
#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/prefetching_reader.h"
#include "client/toy_trainer/toy_model.h"
#include "codec/spec_json.h"

ABSL_FLAG(std::string, target, "localhost:50051",
          "hpsched server: HOST:PORT, a comma-separated list of replicas, or dns:///NAME:PORT.");
ABSL_FLAG(std::string, job, "",
          "Use this existing job (its \"lr\", group 0) instead of creating one.");
ABSL_FLAG(std::string, job_id, "toy-trainer", "Id of the job to create.");
ABSL_FLAG(std::string, schedule, R"({"step": {"step_size": 10, "gamma": 0.5}})",
          "The lr schedule of the job to create, as Schedule JSON.");
ABSL_FLAG(double, lr, 0.1, "Base learning rate of the job to create (Adam's lr).");
ABSL_FLAG(int, epochs, 30, "Epochs to train; one optimizer step each.");
ABSL_FLAG(int, window, 16, "Steps fetched per GetValues.");

namespace {

int Fail(absl::string_view what, const absl::Status& status) {
  std::fprintf(stderr, "toy-trainer: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
               status.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("toy-trainer [--target HOST:PORT] [--schedule JSON | --job JOB_ID]");
  absl::ParseCommandLine(argc, argv);

  hpsched::client::ClientOptions options;
  options.target = absl::GetFlag(FLAGS_target);
  hpsched::client::Client client(options);

  std::string job_id = absl::GetFlag(FLAGS_job);
  if (job_id.empty()) {
    hpsched::v1::Job job;
    auto* hp = job.add_hyperparameters();
    hp->set_name("lr");
    hp->add_base_values(absl::GetFlag(FLAGS_lr));
    // The JSON rules of the CLI (codec/spec_json.h): "max_lr": 0.1, "T_max", errors with paths.
    const absl::Status parsed = hpsched::codec::ParseSpecJson(absl::GetFlag(FLAGS_schedule),
                                                              "schedule", hp->mutable_schedule());
    if (!parsed.ok()) return Fail("--schedule", parsed);
    job_id = absl::GetFlag(FLAGS_job_id);
    auto created = client.CreateJob(job_id, job);
    if (!created.ok()) return Fail("CreateJob", created.status());
    std::printf("job %s (version %lld)\n", created->name().c_str(),
                static_cast<long long>(created->version()));
  }

  hpsched::client::PrefetchingReader reader(&client, job_id, absl::GetFlag(FLAGS_window));
  const auto data = hpsched::toy::MakeData(64, /*seed=*/42);
  hpsched::toy::Linear model = hpsched::toy::Linear::Init(/*seed=*/7);
  hpsched::toy::Adam adam;
  const double initial_loss = hpsched::toy::MseLoss(model, data).loss;
  double loss = initial_loss;
  for (int epoch = 0; epoch < absl::GetFlag(FLAGS_epochs); ++epoch) {
    // The optimizer step of epoch e (0-based) uses the value for step e ...
    auto lr = reader.Value(epoch);
    if (!lr.ok()) return Fail("GetValues", lr.status());
    const auto grads = hpsched::toy::MseLoss(model, data);
    adam.Step(grads, *lr, &model);
    loss = hpsched::toy::MseLoss(model, data).loss;
    // ... and after the scheduler step, step e + 1 is in effect: that is what PyTorch's loop
    // prints.
    auto next = reader.Value(epoch + 1);
    if (!next.ok()) return Fail("GetValues", next.status());
    std::printf("Epoch %02d - LR: %.5f\n", epoch + 1, *next);
    std::printf("         loss: %.6f\n", loss);
  }
  std::printf("loss %.6f -> %.6f (w=%.4f, b=%.4f; data: y = 2x - 1); %lld GetValues calls\n",
              initial_loss, loss, model.w, model.b, static_cast<long long>(reader.rpc_count()));
  return loss < initial_loss ? 0 : 1;
}
