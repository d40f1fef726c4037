// One WatchJob call over the in-process channel, read with gRPC's callback API into a small queue
// that the server-sent-events writer drains with a timeout (its heartbeat). No thread blocks in
// gRPC: the HTTP thread that owns the stream waits on the queue only.
//
// Flow control: at most `max_queued` events wait here; beyond that no read is started until the
// writer takes one, so a slow HTTP client backs the call up to the service, whose per-stream byte
// bound (--max_watch_queue_bytes) ends it with RESOURCE_EXHAUSTED.
//
// Lifetime: the destructor cancels the call and waits for gRPC's OnDone, so the reactor never
// is destroyed before gRPC is done with it. Cancel() may be called from any thread (the listener's
// shutdown); everything else belongs to the owning thread.
#ifndef HPSCHED_HTTP_EVENT_STREAM_H_
#define HPSCHED_HTTP_EVENT_STREAM_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/client_callback.h>

#include <deque>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hpsched/v1/scheduler_service.grpc.pb.h"

namespace hpsched::http {

class EventStream final : public grpc::ClientReadReactor<hpsched::v1::WatchJobResponse> {
 public:
  // Starts the call on `stub` with `context` (its metadata already set).
  EventStream(hpsched::v1::SchedulerService::Stub* stub,
              std::unique_ptr<grpc::ClientContext> context,
              const hpsched::v1::WatchJobRequest& request, size_t max_queued);
  ~EventStream() override;

  enum class Next {
    kEvent,    // *event holds the next event.
    kTimeout,  // Nothing within the timeout: time for a heartbeat.
    kEnd,      // The call ended with *status (CANCELLED with "shutting down" after Cancel()).
  };
  Next Wait(absl::Duration timeout, hpsched::v1::WatchJobResponse* event, grpc::Status* status);

  // Ends the stream soon: Wait returns kEnd. Thread-safe, idempotent.
  void Cancel();

  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  std::unique_ptr<grpc::ClientContext> context_;
  const size_t max_queued_;
  // The buffer of the read in flight (no read is in flight while paused_).
  hpsched::v1::WatchJobResponse incoming_;

  absl::Mutex mutex_;
  std::deque<hpsched::v1::WatchJobResponse> queue_ ABSL_GUARDED_BY(mutex_);
  // The queue was full when a read finished, so no read is in flight.
  bool paused_ ABSL_GUARDED_BY(mutex_) = false;
  // A read failed: the call is over, its status follows in OnDone.
  bool read_ended_ ABSL_GUARDED_BY(mutex_) = false;
  // The hold (AddHold) that keeps OnDone from running while a paused stream may start a read.
  bool hold_released_ ABSL_GUARDED_BY(mutex_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mutex_) = false;
  bool done_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace hpsched::http

#endif  // HPSCHED_HTTP_EVENT_STREAM_H_
