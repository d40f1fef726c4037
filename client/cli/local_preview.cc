#include "client/cli/local_preview.h"

#include <span>
#include <vector>

#include "core/evaluator.h"
#include "core/job_plan.h"
#include "service/proto_convert.h"

namespace hpsched::cli {

absl::StatusOr<v1::PreviewResponse> LocalPreview(const v1::PreviewRequest& request) {
  const std::vector<double> bases(request.base_values().begin(), request.base_values().end());
  if (auto s = core::CheckBaseValues(bases, "--base"); !s.ok()) return s;
  auto nodes = core::CompileStandalone(service::ScheduleFromProto(request.schedule()), bases,
                                       "schedule", request.hyperparameter());
  if (!nodes.ok()) return nodes.status();
  const int64_t start = request.start_step();
  const int64_t count = request.count();
  if (auto s = core::CheckStepRange(start, count, "--steps", "--steps"); !s.ok()) return s;
  v1::PreviewResponse response;
  std::vector<core::EvalQuery> queries;
  for (size_t g = 0; g < nodes->size(); ++g) {
    v1::Series* series = response.add_series();
    series->set_group(static_cast<int>(g));
    auto* values = series->mutable_values();
    values->Resize(static_cast<int>(count), 0.0);
    queries.push_back({(*nodes)[g].get(), start, std::span<double>(values->mutable_data(), count)});
  }
  core::EvaluateBatch(queries);
  return response;
}

}  // namespace hpsched::cli
