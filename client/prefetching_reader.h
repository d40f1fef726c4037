// Reads a job's values step by step with one GetValues per `window` steps.
#ifndef HPSCHED_CLIENT_PREFETCHING_READER_H_
#define HPSCHED_CLIENT_PREFETCHING_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"

namespace hpsched {

// Not thread-safe: one reader per trainer loop. Values are served from the last window fetched; a
// step outside it fetches [step, step + window). A trainer that moves forward one step at a time
// makes one RPC per `window` steps.
class PrefetchingReader {
 public:
  // `client` must outlive the reader. `window` >= 1.
  PrefetchingReader(Client* client, std::string job_id, int64_t window);

  // The value of `hyperparameter` for parameter group `group` at `step`. Errors: the server's;
  // NotFound when the job has no such hyperparameter or group.
  absl::StatusOr<double> Value(int64_t step, absl::string_view hyperparameter = "lr",
                               int group = 0);

  // How many GetValues calls the reader has made.
  int64_t rpc_count() const { return rpc_count_; }

 private:
  absl::Status Fetch(int64_t step);

  Client* const client_;
  const std::string job_name_;
  const int64_t window_;
  v1::GetValuesResponse window_values_;
  bool has_window_ = false;
  int64_t rpc_count_ = 0;
};

}  // namespace hpsched

#endif  // HPSCHED_CLIENT_PREFETCHING_READER_H_
