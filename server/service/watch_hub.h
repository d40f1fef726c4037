// WatchJob streams: each watch gets the job on subscribe, then every change the registry reports.
#ifndef HPSCHED_SERVICE_WATCH_HUB_H_
#define HPSCHED_SERVICE_WATCH_HUB_H_

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "hpsched/v1/scheduler_service.pb.h"
#include "jobs/job_registry.h"

namespace hpsched::service {

// Most events queued for one slow watcher before its stream is ended with RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxQueuedEvents = 1024;

class WatchHub final : public jobs::JobObserver {
 public:
  explicit WatchHub(size_t max_watches) : max_watches_(max_watches) {}
  ~WatchHub() override;

  // Starts a stream for `job` that first sends its snapshot. RESOURCE_EXHAUSTED when
  // max_watches streams are open, UNAVAILABLE after Close.
  grpc::ServerWriteReactor<hpsched::v1::WatchJobResponse>* Start(
      std::shared_ptr<const jobs::Job> job);
  // A stream that only finishes with `status`.
  static grpc::ServerWriteReactor<hpsched::v1::WatchJobResponse>* Fail(const grpc::Status& status);

  void OnJobEvent(const jobs::JobEvent& event) override;

  // Ends every stream with OK and refuses new ones (graceful shutdown).
  void Close();

  size_t size() const;

 private:
  class Watch;
  void Remove(Watch* watch);

  const size_t max_watches_;
  mutable absl::Mutex mutex_;
  std::multimap<std::string, Watch*> watches_ ABSL_GUARDED_BY(mutex_);
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_WATCH_HUB_H_
