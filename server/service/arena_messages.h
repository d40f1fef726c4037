// A message allocator for callback-API unary methods: each call's request and response live on
// one protobuf Arena whose first block is inside the call's holder, so a small call's messages
// (a GetValues of a few values: the request, the response, its Series and their strings) cost one
// allocation in all, and a large one a few arena blocks, instead of one malloc and free per
// message, string and repeated field.
//
// The holder is also where the call's bookkeeping lives when the method is kept out of gRPC's
// interceptors (service/call_note.h): given a CallObserver, the allocator tells it of each call's
// start and end, and the handler reaches the call's CallNote from its request (CallNoteOf).
//
// Register with the generated service's SetMessageAllocatorFor_<Method>(&allocator). The allocator
// is thread-safe and must outlive the server's calls (a member of the service). The holder is
// freed when gRPC releases it, after the call's reactor is done: a parked call's response stays
// valid until it is answered.
#ifndef HPSCHED_SERVICE_ARENA_MESSAGES_H_
#define HPSCHED_SERVICE_ARENA_MESSAGES_H_

#include <google/protobuf/arena.h>
#include <google/protobuf/message_lite.h>
#include <grpcpp/support/message_allocator.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>

#include "service/call_note.h"

namespace hpsched::service {

namespace arena_messages_internal {

// Enough for a small call's request and response; larger responses take more arena blocks.
inline constexpr size_t kInlineBytes = 2048;

// Standard layout, so that the block is found from its arena (offsetof): the handler has its
// request, the request has its arena, and the note is beside it.
struct CallBlock {
  CallNote note;
  alignas(google::protobuf::Arena) unsigned char arena[sizeof(google::protobuf::Arena)];
  alignas(std::max_align_t) char initial_block[kInlineBytes];

  google::protobuf::Arena* arena_ptr() {
    return std::launder(reinterpret_cast<google::protobuf::Arena*>(arena));
  }
  static CallBlock* Of(google::protobuf::Arena* arena_ptr) {
    static_assert(std::is_standard_layout_v<CallBlock>);
    return reinterpret_cast<CallBlock*>(reinterpret_cast<unsigned char*>(arena_ptr) -
                                        offsetof(CallBlock, arena));
  }
};

}  // namespace arena_messages_internal

// The note of the call whose request or response `message` is. The message must be one an
// ArenaMessageAllocator made, or on no arena at all (then: null): a message on another arena has
// no note beside it.
inline CallNote* CallNoteOf(const google::protobuf::MessageLite& message) {
  google::protobuf::Arena* arena = message.GetArena();
  if (arena == nullptr) return nullptr;
  return &arena_messages_internal::CallBlock::Of(arena)->note;
}

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  // `observer` null: no bookkeeping.
  explicit ArenaMessageAllocator(CallObserver* observer = nullptr) : observer_(observer) {}

  grpc::MessageHolder<Request, Response>* AllocateMessages() override {
    return new Holder(observer_);
  }

 private:
  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    explicit Holder(CallObserver* observer) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block_.initial_block;
      options.initial_block_size = sizeof(block_.initial_block);
      google::protobuf::Arena* arena = new (block_.arena) google::protobuf::Arena(options);
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(arena));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(arena));
      // Taken even without an observer, so that no context is left behind on the thread.
      block_.note.call = TakeCallHandoff();
      if (observer != nullptr) {
        observer->CallStarted();
        block_.note.observer = observer;
        block_.note.started = SteadyNanos();
      }
    }
    ~Holder() override { block_.arena_ptr()->~Arena(); }

    void Release() override {
      block_.note.Released();
      delete this;
    }

   private:
    arena_messages_internal::CallBlock block_;
  };

  CallObserver* const observer_;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_ARENA_MESSAGES_H_
