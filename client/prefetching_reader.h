// Reads a job's values step by step with one GetValues per `window` steps, dropping prefetched
// values that a change of the job made stale.
#ifndef HPSCHED_CLIENT_PREFETCHING_READER_H_
#define HPSCHED_CLIENT_PREFETCHING_READER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "client/client.h"

namespace hpsched::client {

struct PrefetchOptions {
  // Steps fetched per GetValues (>= 1).
  int64_t window = 64;
  // Follow the job with WatchJob and drop prefetched values from the effective step of every
  // update or plateau reduction on. Without it, a change made with allow_rewrite inside the window
  // is seen only at the next fetch.
  bool watch = true;
  // How long Value() keeps waiting for the metric reports a step depends on (reduce_on_plateau)
  // before it gives up with DEADLINE_EXCEEDED.
  absl::Duration max_wait = absl::Hours(1);
};

// Value() is for one trainer loop (not thread-safe); the watch runs on its own thread. Values are
// served from the last window fetched as long as they are final and not stale; a step outside it
// fetches [step, step + window). A trainer that moves forward one step at a time makes one RPC per
// `window` steps. Provisional values (waiting for metric reports) are never cached: a step whose
// value is provisional is asked for alone, and the call waits on the server until it is final.
class PrefetchingReader {
 public:
  // `client` must outlive the reader.
  PrefetchingReader(Client* client, std::string job_id, PrefetchOptions options);
  PrefetchingReader(Client* client, std::string job_id, int64_t window)
      : PrefetchingReader(client, std::move(job_id), PrefetchOptions{.window = window}) {}
  ~PrefetchingReader();

  // The value of `hyperparameter` for parameter group `group` at `step`. Errors: the server's;
  // NotFound when the job has no such hyperparameter or group.
  absl::StatusOr<double> Value(int64_t step, absl::string_view hyperparameter = "lr",
                               int group = 0);

  // How many GetValues calls the reader has made.
  int64_t rpc_count() const { return rpc_count_; }
  // How many times a change of the job dropped prefetched values.
  int64_t invalidations() const { return invalidations_.load(); }

 private:
  absl::Status Fetch(int64_t step, int64_t count, v1::PendingPolicy policy);
  void WatchLoop();

  Client* const client_;
  const std::string job_name_;
  const PrefetchOptions options_;
  v1::GetValuesResponse window_values_;
  // The cached values are usable for [window_values_.start_step(), usable_end_).
  int64_t usable_end_ = 0;
  int64_t rpc_count_ = 0;
  // The smallest effective step of the changes the watch saw since Value() last looked.
  std::atomic<int64_t> stale_from_;
  std::atomic<int64_t> invalidations_{0};
  // The job version of the cached values (GetValuesResponse.version).
  std::atomic<int64_t> cached_version_{0};
  std::atomic<bool> stopping_{false};
  absl::Mutex stream_mutex_;
  WatchStream* stream_ ABSL_GUARDED_BY(stream_mutex_) = nullptr;
  std::thread watcher_;
};

}  // namespace hpsched::client

#endif  // HPSCHED_CLIENT_PREFETCHING_READER_H_
