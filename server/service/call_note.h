// The server's bookkeeping of a call (its metrics, the rapid-reset guard) for the two methods it
// keeps out of gRPC's interceptors: GetValues and BatchGetValues, the calls trainers make every
// step. An interceptor costs a count-1 GetValues about 9k instructions of gRPC's hook machinery
// whatever it does (about 14% of the call, bench/README.md), so for these two the call's message
// holder (service/arena_messages.h) tells a CallObserver when the call starts, and the handler
// tells it through the holder's CallNote how the call was answered.
#ifndef HPSCHED_SERVICE_CALL_NOTE_H_
#define HPSCHED_SERVICE_CALL_NOTE_H_

#include <grpcpp/support/status.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace hpsched::service {

// The methods whose calls a CallObserver follows instead of an interceptor, by gRPC's full name.
inline constexpr std::array<absl::string_view, 2> kObservedMethods = {
    "/hpsched.v1.SchedulerService/GetValues",
    "/hpsched.v1.SchedulerService/BatchGetValues",
};

struct CallNote;

// One method's observer. Thread-safe: its calls run on any of gRPC's threads.
class CallObserver {
 public:
  virtual ~CallObserver() = default;
  // A call arrived (its request is about to be parsed).
  virtual void CallStarted() = 0;
  // The call was answered with `code`, `nanos` after CallStarted. `note.reached_handler` false:
  // it ended before its handler ran (it was reset before its request arrived, or its request did
  // not parse), and `code` is UNIMPLEMENTED, what gRPC's callback API answers then.
  virtual void CallEnded(const CallNote& note, grpc::StatusCode code, int64_t nanos) = 0;
};

// The call whose request gRPC is about to parse on this thread, as the server's interceptor
// factory saw it: gRPC asks the factory about every call just before it allocates the call's
// messages, in the same function on the same thread (grpc::Server's CallbackCallTag::Run, 1.51),
// so the factory leaves the call here and the call's message holder takes it at once.
struct CallHandoff {
  // The call's peer ("ipv4:127.0.0.1:5000"), taken while the call is new: gRPC reports a reset
  // call's peer as "unknown" by the time it releases the call. Empty: not taken.
  std::string peer;
  // The call got an interceptor (which then does the reset guard's count of it).
  bool intercepted = false;
};
inline thread_local CallHandoff next_call_handoff;

// Takes what the factory left for this thread's next call (and clears it).
inline CallHandoff TakeCallHandoff() {
  CallHandoff handoff = std::move(next_call_handoff);
  next_call_handoff = CallHandoff();
  return handoff;
}

inline int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A call's note, in its message holder. The holder sets the observer and the start; the handler
// marks the call as reached and notes its answer (Noted) just before it finishes it, so the call is
// counted before its status is sent, as an interceptor would. The holder tells the observer of a
// call nobody answered when gRPC releases it.
struct CallNote {
  CallObserver* observer = nullptr;
  int64_t started = 0;
  CallHandoff call;
  bool reached_handler = false;
  bool answered = false;

  void Answer(grpc::StatusCode code) {
    answered = true;
    if (observer != nullptr) observer->CallEnded(*this, code, SteadyNanos() - started);
  }
  // At release: the call's end if it was not answered.
  void Released() {
    if (!answered) Answer(grpc::StatusCode::UNIMPLEMENTED);
  }
};

// Notes `status` as the call's answer (when there is a note) and returns it, for
// reactor->Finish(Noted(note, status)).
inline grpc::Status Noted(CallNote* note, grpc::Status status) {
  if (note != nullptr) note->Answer(status.error_code());
  return status;
}

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_CALL_NOTE_H_
