// expression_fuzzer: the lambda schedule's expression language (core::Expression), from raw bytes.
//
// Input: the expression text, any bytes (NUL and non-ASCII included), compiled over the variable
// "step".
//
// Checks:
//   * Compile never crashes or hangs; an error is InvalidArgument with a message;
//   * a compiled expression evaluated over spans (Evaluate(span, span)) gives, for every input, the
//   value of the
//     scalar Evaluate(double) bit for bit (any NaN equals any NaN), over inputs that cross the
//     64-lane chunks: steps 0..199, steps just below 2^53, special values (-0, -1, 0.5, NaN, +-inf,
//     the extremes of the double range) and doubles derived from the input's hash;
//   * in-place evaluation (out aliasing x) gives the same values;
//   * spans of every length from 1 to 130 starting anywhere in the inputs agree with the full span;
//   * the range analysis (Expression::Range) is sound: over the steps (StepDomain()) and over the
//     reals in [-1000, 1000], when it accepts the expression, every input of that domain gives a
//     finite value inside the range it returned (the lambda kind relies on this for "every valid
//     spec gives finite values"); when it rejects, the error is InvalidArgument naming a column;
//   * the compiled program respects the documented limits (stack slots <= kMaxStack, instructions
//   <= 4 * kMaxLength)
//     and keeps its text and variable.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/expression.h"
#include "core/node.h"
#include "fuzz_common.h"

namespace hpsched::fuzz {
namespace {

using core::Expression;

std::vector<double> Inputs(Derived& d) {
  std::vector<double> x;
  for (int i = 0; i < 200; ++i) x.push_back(i);
  for (int i = 64; i >= 1; --i) x.push_back(static_cast<double>(core::kStepLimit - i));
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (double v : {-0.0, -1.0, 0.5, -0.5, 1e-300, std::numeric_limits<double>::quiet_NaN(), kInf,
                   -kInf, std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(),
                   std::numeric_limits<double>::denorm_min(), 9007199254740993.0, 1e16, 1e300}) {
    x.push_back(v);
  }
  // Derived: random steps in [0, 2^53) and random bit patterns (any double, NaNs with payloads
  // included).
  for (int i = 0; i < 24; ++i) x.push_back(static_cast<double>(d.Next() % (uint64_t{1} << 53)));
  for (int i = 0; i < 16; ++i) {
    const uint64_t bits = d.Next();
    double v;
    std::memcpy(&v, &bits, sizeof v);
    x.push_back(v);
  }
  return x;
}

std::string Where(const Expression& e, double x) {
  return absl::StrCat("expression: \"", e.text(), "\"\nx: ", Describe(x));
}

}  // namespace
}  // namespace hpsched::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hpsched::fuzz;  // NOLINT
  using hpsched::core::Expression;
  if (size > 4096) return -1;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Expression> compiled = Expression::Compile(text, "step");
  if (!compiled.ok()) {
    FUZZ_CHECK(compiled.status().code() == absl::StatusCode::kInvalidArgument,
               compiled.status().ToString());
    FUZZ_CHECK(!compiled.status().message().empty(), "error without a message");
    return 0;
  }
  const Expression& e = *compiled;
  FUZZ_CHECK(size <= Expression::kMaxLength, absl::StrCat("accepted ", size, " bytes"));
  FUZZ_CHECK(e.text() == text, "text() differs from the source");
  FUZZ_CHECK(e.variable() == "step", "variable() differs");
  FUZZ_CHECK(e.stack_slots() >= 0 && e.stack_slots() <= Expression::kMaxStack,
             absl::StrCat("stack_slots ", e.stack_slots()));
  FUZZ_CHECK(e.instruction_count() <= 4 * Expression::kMaxLength,
             absl::StrCat("instruction_count ", e.instruction_count()));

  Derived d(Hash(data, size));
  const std::vector<double> x = Inputs(d);
  std::vector<double> out(x.size(), std::numeric_limits<double>::signaling_NaN());
  e.Evaluate(x, out);
  for (size_t i = 0; i < x.size(); ++i) {
    const double scalar = e.Evaluate(x[i]);
    if (!SameValue(out[i], scalar)) {
      Fail(absl::StrCat("span != scalar\n", Where(e, x[i]), "\nspan: ", Describe(out[i]),
                        "\nscalar: ", Describe(scalar), "\nindex in span: ", i));
    }
  }
  // The range analysis, over the steps and over a real interval.
  const hpsched::core::Domain domains[] = {hpsched::core::StepDomain(), {{-1000.0, 1000.0}, false}};
  for (const hpsched::core::Domain& domain : domains) {
    const absl::StatusOr<hpsched::core::Interval> range = e.Range(domain);
    if (!range.ok()) {
      FUZZ_CHECK(range.status().code() == absl::StatusCode::kInvalidArgument,
                 range.status().ToString());
      FUZZ_CHECK(range.status().message().find(" at column ") != std::string_view::npos,
                 range.status().ToString());
      continue;
    }
    for (size_t i = 0; i < x.size(); ++i) {
      const bool in_domain =
          domain.range.contains(x[i]) && (!domain.integers || std::floor(x[i]) == x[i]);
      if (!in_domain) continue;
      if (!std::isfinite(out[i]) || !range->contains(out[i])) {
        Fail(absl::StrCat("Range() accepted the expression, but a value is not finite or outside ",
                          range->ToString(), "\n", Where(e, x[i]), "\nvalue: ", Describe(out[i]),
                          "\ndomain: ", domain.range.ToString(),
                          domain.integers ? " (integers)" : " (reals)"));
      }
    }
  }
  // In place: out is x.
  std::vector<double> in_place = x;
  e.Evaluate(in_place, in_place);
  for (size_t i = 0; i < x.size(); ++i) {
    if (!SameValue(out[i], in_place[i])) {
      Fail(absl::StrCat("in-place != out-of-place\n", Where(e, x[i]), "\nout-of-place: ",
                        Describe(out[i]), "\nin-place: ", Describe(in_place[i])));
    }
  }
  // Sub-spans of every length 1..130 (a few per length), each at a derived offset.
  std::vector<double> part(130);
  for (size_t length = 1; length <= 130; ++length) {
    const size_t offset = d.Next() % (x.size() - length + 1);
    std::span<double> p(part.data(), length);
    e.Evaluate(std::span<const double>(x).subspan(offset, length), p);
    for (size_t i = 0; i < length; ++i) {
      if (!SameValue(out[offset + i], p[i])) {
        Fail(absl::StrCat("sub-span [", offset, ", ", offset + length, ") differs\n",
                          Where(e, x[offset + i]), "\nfull span: ", Describe(out[offset + i]),
                          "\nsub-span: ", Describe(p[i])));
      }
    }
  }
  // Mismatched sizes compute only the common prefix, never out of bounds.
  std::vector<double> shorter(x.size() / 2);
  e.Evaluate(x, shorter);
  return 0;
}
