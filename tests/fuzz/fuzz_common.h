// Helpers shared by the libFuzzer targets of tests/fuzz (see docs/testing.md).
//
// A broken invariant calls FUZZ_CHECK / Fail(), which prints what failed and aborts: libFuzzer then
// saves the input as crash-<sha1> and the run fails. The one exception is the "every value is
// finite" rule of the schedule fuzzer, whose handling is chosen by the environment
// (HPSCHED_FUZZ_NONFINITE, see NonFinitePolicy below), so that a known, reported non-finite case
// can be set aside while the fuzzer keeps looking for memory errors and mismatches.
#ifndef HPSCHED_TESTS_FUZZ_FUZZ_COMMON_H_
#define HPSCHED_TESTS_FUZZ_FUZZ_COMMON_H_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>

namespace hpsched::fuzz {

[[noreturn]] inline void Fail(const std::string& what) {
  std::fprintf(stderr, "\n==== hpsched fuzz invariant broken ====\n%s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

#define FUZZ_CHECK(cond, what)                                                          \
  do {                                                                                  \
    if (!(cond))                                                                        \
      ::hpsched::fuzz::Fail(std::string("FUZZ_CHECK(" #cond ") at ") + __FILE__ + ":" + \
                            std::to_string(__LINE__) + ": " + (what));                  \
  } while (false)

// Bit-for-bit equality of doubles, except that any NaN equals any NaN.
inline bool SameValue(double a, double b) {
  if (std::isnan(a) && std::isnan(b)) return true;
  uint64_t x;
  uint64_t y;
  std::memcpy(&x, &a, sizeof x);
  std::memcpy(&y, &b, sizeof y);
  return x == y;
}

// "%.17g" plus the raw bits: enough to reproduce any double.
inline std::string Describe(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g (0x%016llx)", v, static_cast<unsigned long long>(bits));
  return buf;
}

// FNV-1a over the input: the source of the fuzzer's derived choices (base values, extra steps), so
// that every input replays identically.
inline uint64_t Hash(const uint8_t* data, size_t size) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= data[i];
    h *= 1099511628211ull;
  }
  return h;
}

// A splitmix64 stream seeded by Hash().
class Derived {
 public:
  explicit Derived(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

// True when the first non-blank byte is '{': the input is tried as proto3 JSON first.
inline bool LooksLikeJson(const uint8_t* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    const char c = static_cast<char>(data[i]);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    return c == '{';
  }
  return false;
}

// What the schedule fuzzer does with a valid spec that evaluates to inf or NaN. Read once from
// HPSCHED_FUZZ_NONFINITE:
//   abort  (default) the rule "every valid spec gives finite values": a crash, input saved.
//   report print each new kind of finding once (spec JSON, base values, step, value) and go on; the
//   run stays green. ignore count nothing.
enum class NonFinitePolicy { kAbort, kReport, kIgnore };

inline NonFinitePolicy GetNonFinitePolicy() {
  static const NonFinitePolicy policy = [] {
    const char* env = std::getenv("HPSCHED_FUZZ_NONFINITE");
    if (env == nullptr || std::strcmp(env, "abort") == 0 || *env == '\0')
      return NonFinitePolicy::kAbort;
    if (std::strcmp(env, "report") == 0) return NonFinitePolicy::kReport;
    if (std::strcmp(env, "ignore") == 0) return NonFinitePolicy::kIgnore;
    std::fprintf(stderr, "HPSCHED_FUZZ_NONFINITE must be abort, report or ignore; got '%s'\n", env);
    std::exit(2);
  }();
  return policy;
}

// Reports (or aborts on) a non-finite value. `signature` groups findings (e.g.
// "cosine_annealing:inf"): in report mode only the first finding of each signature is printed, with
// everything needed to reproduce it. `details` is a callable returning the description, only called
// when it is printed.
template <typename Details>
void NonFinite(const std::string& signature, const Details& details) {
  switch (GetNonFinitePolicy()) {
    case NonFinitePolicy::kAbort:
      Fail(
          "valid spec gave a non-finite value (set HPSCHED_FUZZ_NONFINITE=report to continue past "
          "it)\n" +
          details());
    case NonFinitePolicy::kReport: {
      static std::set<std::string>* seen = new std::set<std::string>();
      if (seen->insert(signature).second) {
        std::fprintf(stderr, "\n==== hpsched NONFINITE #%zu [%s] ====\n%s\n", seen->size(),
                     signature.c_str(), details().c_str());
        std::fflush(stderr);
      }
      return;
    }
    case NonFinitePolicy::kIgnore:
      return;
  }
}

}  // namespace hpsched::fuzz

#endif  // HPSCHED_TESTS_FUZZ_FUZZ_COMMON_H_
