#include "client/cli/local_preview.h"

#include <algorithm>
#include <span>
#include <vector>

#include "codec/proto_convert.h"
#include "core/evaluator.h"
#include "core/preview.h"

namespace hpsched::cli {

absl::StatusOr<v1::PreviewResponse> LocalPreview(const v1::PreviewRequest& request) {
  const core::PreviewFields fields{"schedule", "--base", "--steps", "--steps"};
  auto preview = core::CompiledPreview::Compile(
      codec::ScheduleFromProto(request.schedule()),
      std::vector<double>(request.base_values().begin(), request.base_values().end()),
      request.hyperparameter(), fields);
  if (!preview.ok()) return preview.status();
  const int64_t start = request.start_step();
  const int64_t count = request.count();
  if (auto s = core::CheckStepRange(start, count, fields.start, fields.count); !s.ok()) return s;
  v1::PreviewResponse response;
  for (size_t g = 0; g < preview->groups(); ++g) {
    v1::Series* series = response.add_series();
    series->set_group(static_cast<int>(g));
    series->mutable_values()->Resize(static_cast<int>(count), 0.0);
  }
  // The server caps one response at kMaxValuesPerBatch values; the CLI has no response to cap, so
  // it evaluates a wide preview (many groups) in slices of steps that each stay within the cap.
  const int64_t slice =
      std::max<int64_t>(1, core::kMaxValuesPerBatch / static_cast<int64_t>(preview->groups()));
  for (int64_t offset = 0; offset < count; offset += slice) {
    const int64_t n = std::min(slice, count - offset);
    auto out = [&](size_t g, int64_t) {
      return std::span<double>(
          response.mutable_series(static_cast<int>(g))->mutable_values()->mutable_data() + offset,
          static_cast<size_t>(n));
    };
    if (auto s = preview->Evaluate(start + offset, n, core::DefaultEvaluator(), out, fields);
        !s.ok())
      return s;
  }
  return response;
}

}  // namespace hpsched::cli
