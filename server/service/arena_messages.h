// A message allocator for callback-API unary methods: each call's request and response live on
// one protobuf Arena whose first block is inside the call's holder, so a small call's messages
// (a GetValues of a few values: the request, the response, its Series and their strings) cost one
// allocation in all, and a large one a few arena blocks, instead of one malloc and free per
// message, string and repeated field.
//
// Register with the generated service's SetMessageAllocatorFor_<Method>(&allocator). The allocator
// is stateless and thread-safe, and must outlive the server's calls (a member of the service). The
// holder is freed when gRPC releases it, after the call's reactor is done: a parked call's
// response stays valid until it is answered.
#ifndef HPSCHED_SERVICE_ARENA_MESSAGES_H_
#define HPSCHED_SERVICE_ARENA_MESSAGES_H_

#include <google/protobuf/arena.h>
#include <grpcpp/support/message_allocator.h>

#include <cstddef>

namespace hpsched::service {

template <typename Request, typename Response>
class ArenaMessageAllocator final : public grpc::MessageAllocator<Request, Response> {
 public:
  grpc::MessageHolder<Request, Response>* AllocateMessages() override { return new Holder; }

 private:
  // Enough for a small call's request and response; larger responses take more arena blocks.
  static constexpr size_t kInlineBytes = 2048;

  class Holder final : public grpc::MessageHolder<Request, Response> {
   public:
    Holder() : arena_(Options(initial_block_)) {
      this->set_request(google::protobuf::Arena::CreateMessage<Request>(&arena_));
      this->set_response(google::protobuf::Arena::CreateMessage<Response>(&arena_));
    }
    void Release() override { delete this; }

   private:
    static google::protobuf::ArenaOptions Options(char* block) {
      google::protobuf::ArenaOptions options;
      options.initial_block = block;
      options.initial_block_size = kInlineBytes;
      return options;
    }

    alignas(std::max_align_t) char initial_block_[kInlineBytes];
    google::protobuf::Arena arena_;  // After initial_block_: destroyed first.
  };
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_ARENA_MESSAGES_H_
