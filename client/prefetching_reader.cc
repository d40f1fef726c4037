#include "client/prefetching_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace hpsched {

PrefetchingReader::PrefetchingReader(Client* client, std::string job_id, int64_t window)
    : client_(client), job_name_(ToJobName(job_id)), window_(std::max<int64_t>(window, 1)) {}

absl::Status PrefetchingReader::Fetch(int64_t step) {
  v1::GetValuesRequest request;
  request.set_job(job_name_);
  request.set_step(step);
  request.set_count(window_);
  ++rpc_count_;
  auto response = client_->GetValues(request);
  if (!response.ok()) return response.status();
  window_values_ = *std::move(response);
  has_window_ = true;
  return absl::OkStatus();
}

absl::StatusOr<double> PrefetchingReader::Value(int64_t step, absl::string_view hyperparameter,
                                                int group) {
  const int64_t start = window_values_.start_step();
  if (!has_window_ || step < start || step >= start + window_) {
    if (absl::Status status = Fetch(step); !status.ok()) return status;
  }
  for (const v1::Series& series : window_values_.series()) {
    if (series.hyperparameter() == hyperparameter && series.group() == group) {
      return series.values(static_cast<int>(step - window_values_.start_step()));
    }
  }
  return absl::NotFoundError(absl::StrCat(job_name_, " has no hyperparameter \"", hyperparameter,
                                          "\" with parameter group ", group));
}

}  // namespace hpsched
