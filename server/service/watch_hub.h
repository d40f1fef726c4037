// WatchJob streams: each watch gets the job on subscribe, then every change the registry reports.
// The registry tells changes under its write lock; the hub only queues them there and builds and
// sends the messages on the injected executor, in the order of the changes.
//
// Memory: each event is serialized once and its bytes are shared by every stream it goes to (the
// method is served raw: streams write grpc::ByteBuffers whose slices are reference-counted), and
// the serialized job is shared by every snapshot of that job version. A stream holds at most
// max_queue_bytes of events not yet written (or one event, if larger); beyond that it fell behind
// and ends with RESOURCE_EXHAUSTED, and the client reconnects for a fresh snapshot.
//
// Who waits for whom (issue 11: 10^4 streams on one job): the hub's lock guards only its tables
// and is held for pointer work; no job is serialized and no stream is written under it. So the
// registry's writer, whose OnJobEvent takes that lock, never waits for a serialization or for a
// fan-out to 10^4 streams, and a stream that does not read only fills its own bounded queue.
#ifndef HPSCHED_SERVICE_WATCH_HUB_H_
#define HPSCHED_SERVICE_WATCH_HUB_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "hpsched/v1/scheduler_service.pb.h"
#include "jobs/clock.h"
#include "jobs/executor.h"
#include "jobs/job_registry.h"

namespace hpsched::service {

// Most events queued for one slow watcher before its stream is ended with RESOURCE_EXHAUSTED (the
// byte bound, max_queue_bytes, usually ends it first).
inline constexpr size_t kMaxQueuedEvents = 1024;

// One WatchJobResponse, serialized once; shared by the streams it is written to.
struct WatchEvent {
  grpc::ByteBuffer bytes;
  size_t size = 0;
};

class WatchHub final : public jobs::JobObserver {
 public:
  // `clock` (event times) and `executor` must outlive the hub; the executor must drop or have run
  // its tasks before the hub is destroyed.
  WatchHub(size_t max_watches, size_t max_queue_bytes, const jobs::Clock* clock,
           jobs::Executor* executor)
      : max_watches_(max_watches),
        max_queue_bytes_(max_queue_bytes),
        clock_(clock),
        delivery_(executor, [this] { Deliver(); }) {}
  ~WatchHub() override;

  // Starts a stream for job `job_id` of `registry` (the registry this hub observes) that first
  // sends the job as it is, then every change after it: the watch is registered while the
  // registry publishes no change (JobRegistry::GetSubscribed), so no change falls between the
  // snapshot and the events. NOT_FOUND without the job, RESOURCE_EXHAUSTED when max_watches
  // streams are open, UNAVAILABLE after Close.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Start(const jobs::JobRegistry& registry,
                                                    absl::string_view job_id);
  // A stream that only finishes with `status`.
  static grpc::ServerWriteReactor<grpc::ByteBuffer>* Fail(const grpc::Status& status);

  // Queues the change and schedules its delivery; builds no message (called under the registry's
  // lock).
  void OnJobEvent(const jobs::JobEvent& event) override;

  // Ends every stream with OK and refuses new ones (graceful shutdown).
  void Close();

  size_t size() const;
  // The open streams of job `job_id`.
  size_t WatchersOf(const std::string& job_id) const;

 private:
  class Watch;
  // A change as the registry told it, numbered in order.
  struct Queued {
    jobs::JobEvent event;
    absl::Time time;
    uint64_t sequence;
  };
  // The serialized job of one version, shared by its snapshots and its event.
  struct SerializedJob {
    std::shared_ptr<const jobs::Job> job;
    grpc::Slice bytes;
  };
  void Remove(Watch* watch);
  // Sends the queued changes, oldest first, to the watches registered before each: takes the
  // targets under mutex_, then serializes and writes without it.
  void Deliver() ABSL_LOCKS_EXCLUDED(mutex_);
  // The cached bytes of exactly `job` (this version), if any.
  std::optional<grpc::Slice> CachedBytesLocked(const jobs::Job& job) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Caches `bytes` as `job`'s while the job is watched, unless a later version is cached.
  void CacheBytesLocked(const std::shared_ptr<const jobs::Job>& job, const grpc::Slice& bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);

  const size_t max_watches_;
  const size_t max_queue_bytes_;
  const jobs::Clock* const clock_;
  // Held for the whole of a Deliver (which runs on the executor, possibly on more than one thread
  // in tests): events reach each stream in order. Taken before mutex_, never under it.
  absl::Mutex deliver_mutex_ ABSL_ACQUIRED_BEFORE(mutex_);
  mutable absl::Mutex mutex_;
  // Shared with Deliver while it writes outside mutex_; a stream's reactor holds itself until
  // OnDone.
  std::multimap<std::string, std::shared_ptr<Watch>> watches_ ABSL_GUARDED_BY(mutex_);
  bool closed_ ABSL_GUARDED_BY(mutex_) = false;
  // Numbers watches and changes alike: a change goes to the watches numbered below it (those that
  // existed when the registry made it), as when changes were sent under the registry's lock.
  uint64_t next_sequence_ ABSL_GUARDED_BY(mutex_) = 0;
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mutex_);
  // Per watched job, the last version serialized; dropped when its last watch ends.
  std::map<std::string, SerializedJob> serialized_ ABSL_GUARDED_BY(mutex_);
  // Runs Deliver once for any number of queued changes.
  jobs::CoalescedTask delivery_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_WATCH_HUB_H_
