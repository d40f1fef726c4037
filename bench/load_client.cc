// The RPC benchmark's load client (bench/rpc_bench.py): drives any unary method of any gRPC server
// with one pre-serialized request, over several connections from one thread (a CompletionQueue),
// and prints one JSON object: calls/s, response bytes, every status code seen, and latency
// percentiles.
//
//   closed loop (no --rate): connections x concurrency calls always in flight, for saturation;
//   open loop (--rate=R):    R calls/s sent on a fixed schedule whatever the answers do; a call's
//   latency counts
//                            from when it was due, so a client or server that falls behind shows in
//                            the tail (no coordinated omission).
//
// Latencies are of the calls that finish inside the measured window (after --warmup, for
// --duration); status codes are counted over every call, warm-up included, so no error is ever
// unseen.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, target, "", "host:port of the server.");
ABSL_FLAG(std::string, method, "", "The full method name, \"/package.Service/Method\".");
ABSL_FLAG(std::string, request_file, "", "The serialized request message (no gRPC framing).");
ABSL_FLAG(int, connections, 8, "HTTP/2 connections (one channel each).");
ABSL_FLAG(int, concurrency, 64, "Closed loop: calls in flight per connection.");
ABSL_FLAG(double, rate, 0,
          "Open loop: calls per second over all connections; 0 means closed loop.");
ABSL_FLAG(absl::Duration, warmup, absl::Seconds(1), "Load before the measured window.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "The measured window.");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(10), "Each call's deadline.");
ABSL_FLAG(
    int, max_in_flight, 20000,
    "Open loop: a due call is skipped (and counted as \"skipped\") while this many are in flight.");

namespace {

using Clock = std::chrono::steady_clock;

struct Call {
  grpc::ClientContext context;
  grpc::ByteBuffer response;
  grpc::Status status;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> reader;
  Clock::time_point due;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

int64_t Percentile(const std::vector<int64_t>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t index = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(index, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string target = absl::GetFlag(FLAGS_target);
  const std::string method = absl::GetFlag(FLAGS_method);
  const int connections = absl::GetFlag(FLAGS_connections);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const double rate = absl::GetFlag(FLAGS_rate);
  const int max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
  if (target.empty() || method.empty() || absl::GetFlag(FLAGS_request_file).empty() ||
      connections < 1 || concurrency < 1 || rate < 0) {
    std::fprintf(
        stderr,
        "load_client: --target, --method and --request_file are required; --connections and "
        "--concurrency must be >= 1, --rate >= 0\n");
    return 2;
  }
  std::ifstream in(absl::GetFlag(FLAGS_request_file), std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "load_client: cannot read --request_file=%s\n",
                 absl::GetFlag(FLAGS_request_file).c_str());
    return 2;
  }
  std::stringstream bytes;
  bytes << in.rdbuf();
  const std::string request_bytes = bytes.str();
  grpc::Slice slice(request_bytes);
  const grpc::ByteBuffer request(&slice, 1);

  std::vector<std::unique_ptr<grpc::GenericStub>> stubs;
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments args;
    // One TCP connection per channel: no subchannel sharing between them.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("hpsched.bench.connection", i);
    auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::fprintf(stderr, "load_client: cannot connect to %s\n", target.c_str());
      return 1;
    }
    stubs.push_back(std::make_unique<grpc::GenericStub>(channel));
  }

  grpc::CompletionQueue cq;
  const absl::Duration deadline = absl::GetFlag(FLAGS_deadline);
  int next_stub = 0;
  int in_flight = 0;
  auto send = [&](Clock::time_point due) {
    auto* call = new Call;
    call->due = due;
    call->context.set_deadline(std::chrono::system_clock::now() +
                               absl::ToChronoNanoseconds(deadline));
    call->reader = stubs[next_stub]->PrepareUnaryCall(&call->context, method, request, &cq);
    next_stub = (next_stub + 1) % connections;
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
    ++in_flight;
  };

  const Clock::time_point begin = Clock::now();
  const Clock::time_point window_start =
      begin + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_warmup));
  const Clock::time_point window_end =
      window_start + absl::ToChronoNanoseconds(absl::GetFlag(FLAGS_duration));
  std::array<int64_t, 17> codes{};
  int64_t measured = 0, response_bytes = 0, skipped = 0;
  std::vector<int64_t> latencies_ns;
  latencies_ns.reserve(1 << 20);

  const bool open_loop = rate > 0;
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / (open_loop ? rate : 1)));
  Clock::time_point next_due = begin;
  if (!open_loop) {
    for (int i = 0; i < connections * concurrency; ++i) send(Clock::now());
  }
  while (true) {
    Clock::time_point now = Clock::now();
    if (open_loop) {
      while (next_due <= now && next_due < window_end) {
        if (in_flight < max_in_flight) {
          send(next_due);
        } else if (next_due >= window_start) {
          ++skipped;
        }
        next_due += interval;
      }
    }
    if (in_flight == 0 && (now >= window_end || (open_loop && next_due >= window_end))) break;
    void* tag = nullptr;
    bool ok = false;
    const Clock::time_point wake =
        open_loop && next_due < window_end ? next_due : now + std::chrono::seconds(1);
    const auto got = cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + (wake - now));
    if (got == grpc::CompletionQueue::SHUTDOWN) break;
    if (got != grpc::CompletionQueue::GOT_EVENT) continue;
    auto* call = static_cast<Call*>(tag);
    --in_flight;
    const Clock::time_point done = Clock::now();
    const int code = static_cast<int>(call->status.error_code());
    ++codes[static_cast<size_t>(code >= 0 && code < 17 ? code : 2)];
    if (done >= window_start && done < window_end) {
      ++measured;
      latencies_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(done - call->due).count());
      if (call->status.ok()) response_bytes += static_cast<int64_t>(call->response.Length());
    }
    delete call;
    if (!open_loop && done < window_end) send(done);
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }

  std::sort(latencies_ns.begin(), latencies_ns.end());
  static constexpr std::array<const char*, 17> kNames = {"OK",
                                                         "CANCELLED",
                                                         "UNKNOWN",
                                                         "INVALID_ARGUMENT",
                                                         "DEADLINE_EXCEEDED",
                                                         "NOT_FOUND",
                                                         "ALREADY_EXISTS",
                                                         "PERMISSION_DENIED",
                                                         "RESOURCE_EXHAUSTED",
                                                         "FAILED_PRECONDITION",
                                                         "ABORTED",
                                                         "OUT_OF_RANGE",
                                                         "UNIMPLEMENTED",
                                                         "INTERNAL",
                                                         "UNAVAILABLE",
                                                         "DATA_LOSS",
                                                         "UNAUTHENTICATED"};
  std::vector<std::string> code_fields;
  for (size_t i = 0; i < codes.size(); ++i) {
    if (codes[i] != 0) code_fields.push_back(absl::StrCat("\"", kNames[i], "\": ", codes[i]));
  }
  const double window = Seconds(window_end - window_start);
  auto us = [&](double q) { return static_cast<double>(Percentile(latencies_ns, q)) / 1000.0; };
  std::printf(
      "{\"mode\": \"%s\", \"rate\": %.1f, \"calls\": %lld, \"seconds\": %.3f, \"calls_per_s\": "
      "%.1f, "
      "\"response_bytes\": %lld, \"skipped\": %lld, \"codes\": {%s}, \"p50_us\": %.1f, \"p90_us\": "
      "%.1f, "
      "\"p99_us\": %.1f, \"p999_us\": %.1f}\n",
      open_loop ? "open" : "closed", rate, static_cast<long long>(measured), window,
      static_cast<double>(measured) / window, static_cast<long long>(response_bytes),
      static_cast<long long>(skipped), absl::StrJoin(code_fields, ", ").c_str(), us(0.5), us(0.9),
      us(0.99), us(0.999));
  return 0;
}
