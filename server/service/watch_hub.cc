#include "service/watch_hub.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/util/time_util.h>

#include <deque>
#include <iterator>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "codec/proto_convert.h"
#include "service/status_convert.h"

namespace hpsched::service {
namespace {

namespace v1 = ::hpsched::v1;

// An event as one WatchJobResponse: its small fields serialized here, then field 2 (the job) as
// `job_bytes`, shared. Protobuf parsers accept fields in any order, so the job may come last.
std::shared_ptr<const WatchEvent> MakeEvent(v1::JobEventType type, int64_t effective_step,
                                            absl::Time time, const grpc::Slice& job_bytes) {
  v1::WatchJobResponse head;
  head.set_type(type);
  head.set_effective_step(effective_step);
  *head.mutable_event_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
  std::string prefix = head.SerializeAsString();
  // Field 2, length-delimited: the tag, then the length as a varint.
  uint8_t header[1 + 5];  // A varint32 takes at most 5 bytes.
  header[0] = (2 << 3) | 2;
  uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(
      static_cast<uint32_t>(job_bytes.size()), header + 1);
  prefix.append(reinterpret_cast<const char*>(header), static_cast<size_t>(end - header));
  const grpc::Slice slices[] = {grpc::Slice(prefix), job_bytes};
  auto event = std::make_shared<WatchEvent>();
  event->bytes = grpc::ByteBuffer(slices, 2);
  event->size = prefix.size() + job_bytes.size();
  return event;
}

grpc::Slice SerializeJob(const v1::Job& job) { return grpc::Slice(job.SerializeAsString()); }

}  // namespace

// One stream. Writes go out one at a time from a queue; the last event (a delete, a close or an
// overflow) finishes the stream once it is written.
class WatchHub::Watch final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // `snapshot`: the job the stream starts from (see SendSnapshot).
  Watch(WatchHub* hub, std::shared_ptr<const jobs::Job> snapshot, uint64_t sequence,
        size_t max_bytes)
      : hub_(hub),
        job_id_(snapshot->record.job_id),
        sequence_(sequence),
        max_bytes_(max_bytes),
        snapshot_(std::move(snapshot)) {}

  const std::string& job_id() const { return job_id_; }
  uint64_t sequence() const { return sequence_; }

  // Whether `event`, the first change sent after the watch's registration, is the one its
  // snapshot already holds (published before the registration, told after it). Only the first
  // event can be: called once, under the hub's lock, which then forgets the snapshot.
  bool HeldBySnapshot(const jobs::JobEvent& event) {
    const bool held = event.job != nullptr && event.job == snapshot_;
    snapshot_ = nullptr;
    return held;
  }
  bool snapshot_pending() const { return snapshot_ != nullptr; }

  // Sends the snapshot ahead of whatever was pushed since the registration; nothing is written
  // before it.
  void SendSnapshot(std::shared_ptr<const WatchEvent> snapshot) {
    absl::MutexLock lock(&mutex_);
    ready_ = true;
    queued_bytes_ += snapshot->size;
    queue_.push_front(std::move(snapshot));
    PumpLocked();
  }

  // Queues `event`; with `finish`, the stream ends with `status` after it (or at once without an
  // event). A stream that already holds events and would hold more than max_bytes, or more than
  // kMaxQueuedEvents, fell behind: its unsent events are dropped and it ends with
  // RESOURCE_EXHAUSTED once the write in flight (if any) completes.
  void Push(std::shared_ptr<const WatchEvent> event, bool finish,
            grpc::Status status = grpc::Status::OK) {
    absl::MutexLock lock(&mutex_);
    if (finishing_) return;
    if (event != nullptr) {
      if (!queue_.empty() &&
          (queued_bytes_ + event->size > max_bytes_ || queue_.size() >= kMaxQueuedEvents)) {
        finishing_ = true;
        final_status_ = grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            absl::StrCat("the watcher fell behind: its unread events would hold more than ",
                         max_bytes_, " bytes or ", kMaxQueuedEvents,
                         " events (--max_watch_queue_bytes); reconnect for a fresh snapshot"));
        DropUnsentLocked();
      } else {
        queued_bytes_ += event->size;
        queue_.push_back(std::move(event));
      }
    }
    if (finish && !finishing_) {
      finishing_ = true;
      final_status_ = status;
    }
    PumpLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mutex_);
    writing_ = false;
    if (!ok) {
      // The client went away; OnCancel or OnDone follows.
      queue_.clear();
      queued_bytes_ = 0;
      if (!finished_) {
        finishing_ = true;
        final_status_ = grpc::Status(grpc::StatusCode::CANCELLED, "write failed");
      }
    } else {
      queued_bytes_ -= queue_.front()->size;
      queue_.pop_front();
    }
    PumpLocked();
  }

  void OnCancel() override {
    hub_->Remove(this);
    absl::MutexLock lock(&mutex_);
    DropUnsentLocked();
    if (!finishing_) {
      finishing_ = true;
      final_status_ = grpc::Status::CANCELLED;
    }
    PumpLocked();
  }

  void OnDone() override {
    hub_->Remove(this);
    // Deliver may still hold the stream (a Push now finds it finished and does nothing); the last
    // holder deletes it.
    std::shared_ptr<Watch> self = std::move(self_);
  }

  // The reactor's own reference, dropped in OnDone.
  void Hold(std::shared_ptr<Watch> self) { self_ = std::move(self); }

 private:
  // Keeps only the event being written (gRPC holds it until OnWriteDone).
  void DropUnsentLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    while (queue_.size() > (writing_ ? 1u : 0u)) {
      queued_bytes_ -= queue_.back()->size;
      queue_.pop_back();
    }
  }

  void PumpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_) {
    if (!ready_ || writing_ || finished_) return;
    if (!queue_.empty()) {
      writing_ = true;
      StartWrite(&queue_.front()->bytes);
    } else if (finishing_) {
      finished_ = true;
      Finish(final_status_);
    }
  }

  WatchHub* const hub_;
  const std::string job_id_;
  const uint64_t sequence_;
  const size_t max_bytes_;
  // Until the first change is sent: the job of the snapshot (guarded by the hub's mutex_).
  std::shared_ptr<const jobs::Job> snapshot_;
  absl::Mutex mutex_;
  // Whether the snapshot is queued: nothing is written before it.
  bool ready_ ABSL_GUARDED_BY(mutex_) = false;
  // The events not yet written; the first is in flight while writing_.
  std::deque<std::shared_ptr<const WatchEvent>> queue_ ABSL_GUARDED_BY(mutex_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mutex_) = 0;
  bool writing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finishing_ ABSL_GUARDED_BY(mutex_) = false;
  bool finished_ ABSL_GUARDED_BY(mutex_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mutex_);
  std::shared_ptr<Watch> self_;
};

namespace {

// A reactor that finishes at once with a status.
class FailedWatch final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit FailedWatch(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

WatchHub::~WatchHub() { Close(); }

grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchHub::Fail(const grpc::Status& status) {
  return new FailedWatch(status);
}

std::optional<grpc::Slice> WatchHub::CachedBytesLocked(const jobs::Job& job) const {
  auto cached = serialized_.find(job.record.job_id);
  if (cached == serialized_.end() || cached->second.job.get() != &job) return std::nullopt;
  return cached->second.bytes;
}

void WatchHub::CacheBytesLocked(const std::shared_ptr<const jobs::Job>& job,
                                const grpc::Slice& bytes) {
  // An entry lives while the job has watches (Remove and Deliver drop it with the last one).
  if (!watches_.contains(job->record.job_id)) return;
  SerializedJob& cached = serialized_[job->record.job_id];
  if (cached.job != nullptr && cached.job->record.version > job->record.version) return;
  cached = SerializedJob{job, bytes};
}

namespace {

grpc::Slice JobBytes(const jobs::Job& job) {
  v1::Job proto;
  codec::JobToProto(job.record, *job.plan, &proto);
  return SerializeJob(proto);
}

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchHub::Start(const jobs::JobRegistry& registry,
                                                            absl::string_view job_id) {
  std::shared_ptr<Watch> watch;
  std::optional<grpc::Slice> bytes;
  grpc::Status refused;
  // Registered while the registry publishes no change (pointer work only, under both locks):
  // every change after the snapshot's job is told to the hub after the registration, so it goes
  // to this watch (see HeldBySnapshot for the one the snapshot may already hold).
  absl::StatusOr<std::shared_ptr<const jobs::Job>> job =
      registry.GetSubscribed(job_id, [&](const std::shared_ptr<const jobs::Job>& found) {
        absl::MutexLock lock(&mutex_);
        if (closed_) {
          refused = grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
          return;
        }
        if (watches_.size() >= max_watches_) {
          refused = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 absl::StrCat("the server holds its maximum of ", max_watches_,
                                              " watch streams; retry later"));
          return;
        }
        watch = std::make_shared<Watch>(this, found, next_sequence_++, max_queue_bytes_);
        watch->Hold(watch);
        watches_.emplace(found->record.job_id, watch);
        bytes = CachedBytesLocked(*found);
      });
  if (!job.ok()) return Fail(ToGrpcStatus(job.status()));
  if (watch == nullptr) return Fail(refused);
  // Serialized outside the locks; events pushed meanwhile wait behind the snapshot.
  if (!bytes.has_value()) {
    bytes = JobBytes(**job);
    absl::MutexLock lock(&mutex_);
    CacheBytesLocked(*job, *bytes);
  }
  watch->SendSnapshot(MakeEvent(v1::JOB_EVENT_TYPE_SNAPSHOT, 0, clock_->Now(), *bytes));
  return watch.get();
}

void WatchHub::OnJobEvent(const jobs::JobEvent& event) {
  absl::MutexLock lock(&mutex_);
  if (closed_ || !watches_.contains(event.job_id)) return;
  queue_.push_back(Queued{event, clock_->Now(), next_sequence_++});
  delivery_.Trigger();
}

void WatchHub::Deliver() {
  absl::MutexLock deliver_lock(&deliver_mutex_);
  std::deque<Queued> queue;
  {
    absl::MutexLock lock(&mutex_);
    queue.swap(queue_);
  }
  std::vector<std::shared_ptr<Watch>> targets;
  for (const Queued& queued : queue) {
    const jobs::JobEvent& event = queued.event;
    v1::JobEventType type;
    switch (event.type) {
      case jobs::JobEvent::Type::kUpdated:
        type = v1::JOB_EVENT_TYPE_UPDATED;
        break;
      case jobs::JobEvent::Type::kPlateauReduced:
        type = v1::JOB_EVENT_TYPE_PLATEAU_REDUCED;
        break;
      case jobs::JobEvent::Type::kDeleted:
        type = v1::JOB_EVENT_TYPE_DELETED;
        break;
      default:
        continue;  // Changes of no value (reports that reduce nothing) are not events for watchers.
    }
    const bool last = event.type == jobs::JobEvent::Type::kDeleted;
    targets.clear();
    std::optional<grpc::Slice> job_bytes;
    {
      absl::MutexLock lock(&mutex_);
      if (closed_) return;
      auto [begin, end] = watches_.equal_range(event.job_id);
      for (auto it = begin; it != end;) {
        if (it->second->sequence() > queued.sequence ||
            (it->second->snapshot_pending() && it->second->HeldBySnapshot(event))) {
          ++it;
          continue;
        }
        targets.push_back(it->second);
        it = last ? watches_.erase(it) : std::next(it);
      }
      if (last || !watches_.contains(event.job_id)) serialized_.erase(event.job_id);
      if (event.job != nullptr) job_bytes = CachedBytesLocked(*event.job);
    }
    if (targets.empty()) continue;
    // Serialized once, outside every lock, and shared by every stream it goes to.
    if (!job_bytes.has_value()) {
      if (event.job != nullptr) {
        job_bytes = JobBytes(*event.job);
        absl::MutexLock lock(&mutex_);
        CacheBytesLocked(event.job, *job_bytes);
      } else {
        v1::Job proto;
        proto.set_name(codec::JobName(event.job_id));
        job_bytes = SerializeJob(proto);
      }
    }
    const std::shared_ptr<const WatchEvent> message =
        MakeEvent(type, event.effective_step, queued.time, *job_bytes);
    for (const std::shared_ptr<Watch>& watch : targets) watch->Push(message, last);
  }
}

void WatchHub::Close() {
  absl::MutexLock lock(&mutex_);
  closed_ = true;
  queue_.clear();
  for (auto& [job_id, watch] : watches_) watch->Push(nullptr, true);
  watches_.clear();
  serialized_.clear();
}

void WatchHub::Remove(Watch* watch) {
  absl::MutexLock lock(&mutex_);
  auto [begin, end] = watches_.equal_range(watch->job_id());
  for (auto it = begin; it != end; ++it) {
    if (it->second.get() == watch) {
      watches_.erase(it);
      if (!watches_.contains(watch->job_id())) serialized_.erase(watch->job_id());
      return;
    }
  }
}

size_t WatchHub::WatchersOf(const std::string& job_id) const {
  absl::MutexLock lock(&mutex_);
  return watches_.count(job_id);
}

size_t WatchHub::size() const {
  absl::MutexLock lock(&mutex_);
  return watches_.size();
}

}  // namespace hpsched::service
