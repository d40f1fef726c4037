#include "core/expression.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/expression_ast.h"
#include "core/expression_interval.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// The hand-written reference computations below must round every operation
// separately, like the evaluator (and Python) do: forbid fused multiply-add.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace hpsched::core {
namespace {

using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

uint64_t Bits(double v) { return std::bit_cast<uint64_t>(v); }

// Equal bit for bit, or both NaN (NaN sign/payload bits are not meaningful:
// the evaluator returns the canonical quiet NaN).
bool SameValue(double a, double b) {
  return Bits(a) == Bits(b) || (std::isnan(a) && std::isnan(b));
}

// Compiles `text` over "step" and fails the test on error.
Expression MustCompile(std::string_view text, std::string_view variable = "step") {
  absl::StatusOr<Expression> e = Expression::Compile(text, variable);
  EXPECT_TRUE(e.ok()) << "'" << text << "': " << e.status();
  if (!e.ok()) return Expression::Compile("0", "step").value();
  return *std::move(e);
}

double Eval(std::string_view text, double step = 0.0) { return MustCompile(text).Evaluate(step); }

// Returns the error message of compiling `text` over "step"; "" on success.
std::string CompileError(std::string_view text, std::string_view variable = "step") {
  absl::StatusOr<Expression> e = Expression::Compile(text, variable);
  if (e.ok()) return "";
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << e.status();
  EXPECT_FALSE(e.status().message().empty());
  return std::string(e.status().message());
}

// Span evaluation must agree bit for bit with scalar evaluation.
void ExpectSpanMatchesScalar(const Expression& e, const std::vector<double>& xs) {
  std::vector<double> out(xs.size(), -12345.0);
  e.Evaluate(xs, out);
  for (size_t i = 0; i < xs.size(); ++i) {
    const double scalar = e.Evaluate(xs[i]);
    ASSERT_EQ(Bits(out[i]), Bits(scalar))
        << "'" << e.text() << "' at x=" << xs[i] << " (index " << i << " of " << xs.size()
        << "): span " << out[i] << " vs scalar " << scalar;
  }
}

TEST(ExpressionTest, PrecedenceAndAssociativity) {
  EXPECT_EQ(Eval("2**3**2"), 512.0);
  EXPECT_EQ(Eval("2^3^2"), 512.0);
  EXPECT_EQ(Eval("(2**3)**2"), 64.0);
  EXPECT_EQ(Eval("-2**2"), -4.0);
  EXPECT_EQ(Eval("(-2)**2"), 4.0);
  EXPECT_EQ(Eval("2^-1"), 0.5);
  EXPECT_EQ(Eval("2**-1"), 0.5);
  EXPECT_EQ(Eval("2**-2**2"), 0.0625);  // 2 ** (-(2 ** 2)), as in Python.
  EXPECT_EQ(Eval("-step**2", 3.0), -9.0);
  EXPECT_EQ(Eval("1 - 2 - 3"), -4.0);
  EXPECT_EQ(Eval("8/4/2"), 1.0);
  EXPECT_EQ(Eval("2 + 3 * 4"), 14.0);
  EXPECT_EQ(Eval("(2 + 3) * 4"), 20.0);
  EXPECT_EQ(Eval("2 * 3 ** 2"), 18.0);
  EXPECT_EQ(Eval("-3 * -2"), 6.0);
  EXPECT_EQ(Eval("--3"), 3.0);
  EXPECT_EQ(Eval("+-+3"), -3.0);
  EXPECT_EQ(Eval("10 - -step", 2.0), 12.0);
  EXPECT_EQ(Eval("1 + 2 < 4"), 1.0);  // Comparison binds looser than arithmetic.
}

TEST(ExpressionTest, ComparisonsAndLogic) {
  struct Case {
    const char* text;
    double step;
    double want;
  };
  const Case cases[] = {
      {"step < 3", 2, 1},
      {"step < 3", 3, 0},
      {"step <= 3", 3, 1},
      {"step <= 3", 4, 0},
      {"step > 3", 4, 1},
      {"step > 3", 3, 0},
      {"step >= 3", 3, 1},
      {"step >= 3", 2, 0},
      {"step == 3", 3, 1},
      {"step == 3", 2, 0},
      {"step != 3", 2, 1},
      {"step != 3", 3, 0},
      {"step < 3 + 1", 3.5, 1},
      {"1 && step", 2, 1},
      {"1 && step", 0, 0},
      {"0 || step", 0, 0},
      {"0 || step", -5, 1},
      {"!step", 0, 1},
      {"!step", 7, 0},
      {"!!step", 7, 1},
      {"step > 1 && step < 5", 3, 1},
      {"step > 1 && step < 5", 6, 0},
      {"step < 1 || step > 5", 3, 0},
      {"step < 1 || step > 5", 6, 1},
      {"1 || 0 && 0", 0, 1},  // && binds tighter than ||.
      {"0.5 && 2", 0, 1},     // Logical results are 1.0/0.0.
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Eval(c.text, c.step), c.want) << c.text << " at step=" << c.step;
  }
  // NaN compares false (except !=) and is truthy, as in Python/C.
  EXPECT_EQ(Eval("step < 1", kNaN), 0.0);
  EXPECT_EQ(Eval("step == step", kNaN), 0.0);
  EXPECT_EQ(Eval("step != step", kNaN), 1.0);
  EXPECT_EQ(Eval("!step", kNaN), 0.0);
  EXPECT_EQ(Eval("step ? 1 : 2", kNaN), 1.0);
}

TEST(ExpressionTest, Conditional) {
  EXPECT_EQ(Eval("step < 10 ? step : 10", 4), 4.0);
  EXPECT_EQ(Eval("step < 10 ? step : 10", 40), 10.0);
  // Right-associative: a ? b : (c ? d : e).
  const Expression e = MustCompile("step < 1 ? 10 : step < 2 ? 20 : 30");
  EXPECT_EQ(e.Evaluate(0.5), 10.0);
  EXPECT_EQ(e.Evaluate(1.5), 20.0);
  EXPECT_EQ(e.Evaluate(2.5), 30.0);
  // Nested in the middle arm.
  EXPECT_EQ(Eval("step > 0 ? step > 5 ? 2 : 1 : 0", 3), 1.0);
  // Lowest precedence: the whole arithmetic is the condition / arms.
  EXPECT_EQ(Eval("step - 1 ? 2 + 3 : 4 * 5", 1), 20.0);
  EXPECT_EQ(Eval("step - 1 ? 2 + 3 : 4 * 5", 2), 5.0);
  // Selects, never blends: the other arm's inf/NaN must not leak.
  const Expression guarded = MustCompile("step > 0 ? 1 / step : 0");
  EXPECT_EQ(Bits(guarded.Evaluate(0.0)), Bits(0.0));
  EXPECT_EQ(guarded.Evaluate(4.0), 0.25);
  const Expression nan_arm = MustCompile("step > 0 ? log(-1) : step");
  EXPECT_EQ(nan_arm.Evaluate(-3.0), -3.0);
  EXPECT_TRUE(std::isnan(nan_arm.Evaluate(3.0)));
  EXPECT_EQ(Eval("step ? 1e308 * 10 : -0.0", 0.0), 0.0);
  EXPECT_TRUE(std::signbit(Eval("step ? 1e308 * 10 : -0.0", 0.0)));
  // Constant conditions fold to the chosen arm.
  EXPECT_EQ(Eval("1 ? step : 1 / 0", 7), 7.0);
  EXPECT_EQ(Eval("0 ? 1 / 0 : step", 7), 7.0);
}

TEST(ExpressionTest, EveryFunction) {
  const double xs[] = {-2.5, -1.0, -0.5, 0.0, 0.3, 1.0, 2.5, 10.0, 1e6};
  struct Case {
    const char* text;
    std::function<double(double)> ref;
  };
  const Case cases[] = {
      {"abs(step)", [](double x) { return std::fabs(x); }},
      {"floor(step)", [](double x) { return std::floor(x); }},
      {"ceil(step)", [](double x) { return std::ceil(x); }},
      {"exp(step)", [](double x) { return std::exp(x); }},
      {"log(step)", [](double x) { return std::log(x); }},
      {"sqrt(step)", [](double x) { return std::sqrt(x); }},
      {"sin(step)", [](double x) { return std::sin(x); }},
      {"cos(step)", [](double x) { return std::cos(x); }},
      {"pow(step, 3)", [](double x) { return std::pow(x, 3.0); }},
      {"pow(2, step)", [](double x) { return std::pow(2.0, x); }},
      {"pow(step, step)", [](double x) { return std::pow(x, x); }},
      {"step ** 0.5", [](double x) { return std::pow(x, 0.5); }},
      {"min(step, 1)", [](double x) { return 1.0 < x ? 1.0 : x; }},
      {"max(step, 1)", [](double x) { return 1.0 > x ? 1.0 : x; }},
      {"min(3, step, 0.5 * step)",
       [](double x) {
         double m = 3.0;
         if (x < m) m = x;
         if (0.5 * x < m) m = 0.5 * x;
         return m;
       }},
      {"max(-1, step, 2, -step)",
       [](double x) {
         double m = -1.0;
         if (x > m) m = x;
         if (2.0 > m) m = 2.0;
         if (-x > m) m = -x;
         return m;
       }},
  };
  for (const Case& c : cases) {
    const Expression e = MustCompile(c.text);
    for (double x : xs) {
      const double want = c.ref(x);
      const double got = e.Evaluate(x);
      EXPECT_TRUE(SameValue(got, want)) << c.text << " at " << x << ": " << got << " vs " << want;
    }
    ExpectSpanMatchesScalar(e, std::vector<double>(std::begin(xs), std::end(xs)));
  }
  EXPECT_EQ(Eval("abs(-3)"), 3.0);
  EXPECT_EQ(Eval("floor(-2.5)"), -3.0);
  EXPECT_EQ(Eval("ceil(-2.5)"), -2.0);
  EXPECT_EQ(Eval("sqrt(16)"), 4.0);
  EXPECT_EQ(Eval("log(e)"), std::log(std::numbers::e));
  EXPECT_EQ(Eval("exp(0)"), 1.0);
  EXPECT_EQ(Eval("sin(0)"), 0.0);
  EXPECT_EQ(Eval("cos(0)"), 1.0);
  EXPECT_EQ(Eval("pow(2, 10)"), 1024.0);
  EXPECT_EQ(Eval(" min ( 4 , 2 , 3 ) "), 2.0);
  EXPECT_EQ(Eval("max(4, 2, 3)"), 4.0);
}

TEST(ExpressionTest, MinMaxFollowPython) {
  // Python: min(0.0, -0.0) is 0.0 and min(-0.0, 0.0) is -0.0 (first wins).
  EXPECT_FALSE(std::signbit(Eval("min(0.0, -0.0)")));
  EXPECT_TRUE(std::signbit(Eval("min(-0.0, 0.0)")));
  EXPECT_FALSE(std::signbit(Eval("max(0.0, -0.0)")));
  EXPECT_TRUE(std::signbit(Eval("max(-0.0, 0.0)")));
  EXPECT_FALSE(std::signbit(Eval("min(step, -0.0)", 0.0)));
  EXPECT_TRUE(std::signbit(Eval("min(-0.0, step)", 0.0)));
  // min(nan, 1) is nan, min(1, nan) is 1 in Python.
  EXPECT_TRUE(std::isnan(Eval("min(step, 1)", kNaN)));
  EXPECT_EQ(Eval("min(1, step)", kNaN), 1.0);
  EXPECT_TRUE(std::isnan(Eval("max(step, 1)", kNaN)));
  EXPECT_EQ(Eval("max(1, step)", kNaN), 1.0);
}

TEST(ExpressionTest, ConstantsAndNumbers) {
  EXPECT_EQ(Eval("pi"), std::numbers::pi);
  EXPECT_EQ(Eval("e"), std::numbers::e);
  EXPECT_EQ(Eval("2 * pi"), 2 * std::numbers::pi);
  EXPECT_EQ(Eval("1"), 1.0);
  EXPECT_EQ(Eval("0.5"), 0.5);
  EXPECT_EQ(Eval(".5"), 0.5);
  EXPECT_EQ(Eval("5."), 5.0);
  EXPECT_EQ(Eval("1e-3"), 1e-3);
  EXPECT_EQ(Eval("1E3"), 1e3);
  EXPECT_EQ(Eval("2.5E+4"), 2.5e4);
  EXPECT_EQ(Eval("2.e2"), 200.0);
  EXPECT_EQ(Eval(".25e-2"), 0.25e-2);
  EXPECT_EQ(Eval("007"), 7.0);
  EXPECT_EQ(Eval("0.1"), 0.1);
  EXPECT_EQ(Eval("0.1 + 0.2"), 0.1 + 0.2);  // 0.30000000000000004, unchanged.
  EXPECT_EQ(Eval("1.7976931348623157e308"), std::numeric_limits<double>::max());
  EXPECT_EQ(Eval("5e-324"), std::numeric_limits<double>::denorm_min());
  // Underflow to zero is accepted (Python gives 0.0 too).
  EXPECT_EQ(Eval("1e-400"), 0.0);
  EXPECT_EQ(Eval("0.000001e-320"), 0.0);
  // Correct rounding of long literals.
  EXPECT_EQ(Eval("3.14159265358979323846264338327950288"), std::numbers::pi);
  // Whitespace is free.
  EXPECT_EQ(Eval(" \t1\n+\r2 \f*\v3 "), 7.0);
  EXPECT_EQ(Eval("step", 42.0), 42.0);
}

TEST(ExpressionTest, OtherVariableNames) {
  absl::StatusOr<Expression> e = Expression::Compile("epoch_2 * 2", "epoch_2");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->Evaluate(3.0), 6.0);
  EXPECT_EQ(e->text(), "epoch_2 * 2");
  EXPECT_EQ(e->variable(), "epoch_2");
  // "step" is then an unknown name.
  EXPECT_THAT(CompileError("step", "epoch"), HasSubstr("unknown name 'step' at column 1"));

  EXPECT_THAT(CompileError("1", ""), HasSubstr("invalid variable name"));
  EXPECT_THAT(CompileError("1", "2x"), HasSubstr("invalid variable name"));
  EXPECT_THAT(CompileError("1", "a b"), HasSubstr("invalid variable name"));
  EXPECT_THAT(CompileError("1", std::string("a\0b", 3)), HasSubstr("invalid variable name"));
  EXPECT_THAT(CompileError("1", "pi"), HasSubstr("variable name 'pi' is reserved"));
  EXPECT_THAT(CompileError("1", "e"), HasSubstr("reserved"));
  EXPECT_THAT(CompileError("1", "min"), HasSubstr("reserved"));
}

TEST(ExpressionTest, MatchesHandWrittenCpp) {
  constexpr double kPi = std::numbers::pi;
  constexpr double kE = std::numbers::e;
  struct Case {
    const char* text;
    double (*ref)(double);
  };
  const Case cases[] = {
      {"min(1.0, (step + 1) / 100)", [](double x) { return std::min(1.0, (x + 1) / 100); }},
      {"0.5 * (1 + cos(pi * step / 1000))",
       [](double x) { return 0.5 * (1 + std::cos(kPi * x / 1000)); }},
      {"0.95 ** floor(step / 10)", [](double x) { return std::pow(0.95, std::floor(x / 10)); }},
      {"step < 100 ? (step + 1) / 100 : max(0.01, 1 - (step - 100) / 900)",
       [](double x) { return x < 100 ? (x + 1) / 100 : std::max(0.01, 1 - (x - 100) / 900); }},
      {"1 / sqrt(max(step, 1))", [](double x) { return 1 / std::sqrt(std::max(x, 1.0)); }},
      {"exp(-0.001 * step) * abs(sin(step / 7))",
       [](double x) { return std::exp(-0.001 * x) * std::fabs(std::sin(x / 7)); }},
      {"log(step + e) ** -0.5", [](double x) { return std::pow(std::log(x + kE), -0.5); }},
      {"step * 0.1 * 3", [](double x) { return x * 0.1 * 3; }},  // Not x * 0.3.
      {"step * (0.1 * 3)", [](double x) { return x * (0.1 * 3); }},
      {"1 - 0.9 * step / 1000 + 0.1", [](double x) { return 1 - 0.9 * x / 1000 + 0.1; }},
      {"(step + 1e16) - 1e16", [](double x) { return (x + 1e16) - 1e16; }},
      {"step / 3 * 3", [](double x) { return x / 3 * 3; }},
      {"2 ** (step / 100) - 1", [](double x) { return std::pow(2.0, x / 100) - 1; }},
      {"step >= 500 && step < 800 ? 0.1 : step >= 800 ? 0.01 : 1",
       [](double x) { return x >= 500 && x < 800 ? 0.1
                             : x >= 800          ? 0.01
                                                 : 1; }},
      {"ceil(step / 3) * 3 - step", [](double x) { return std::ceil(x / 3) * 3 - x; }},
      {"-step ** 2 + step", [](double x) { return -std::pow(x, 2.0) + x; }},
  };
  std::vector<double> xs;
  for (int i = -50; i <= 2000; ++i) xs.push_back(i);
  for (int i = 0; i < 200; ++i) xs.push_back(i * 0.37 - 11.0);
  xs.push_back(1e9);
  xs.push_back(0.5);
  for (const Case& c : cases) {
    const Expression e = MustCompile(c.text);
    std::vector<double> out(xs.size());
    e.Evaluate(xs, out);
    for (size_t i = 0; i < xs.size(); ++i) {
      const double want = c.ref(xs[i]);
      ASSERT_TRUE(SameValue(out[i], want)) << c.text << " at " << xs[i];
      ASSERT_TRUE(SameValue(e.Evaluate(xs[i]), want)) << c.text << " at " << xs[i];
    }
  }
}

// Values computed by CPython 3.11 (float.hex) with the equivalent Python
// lambda, e.g. `lambda step: min(1.0, (step + 1) / 100)`.
TEST(ExpressionTest, MatchesPythonGoldenValues) {
  const double steps[] = {0, 1, 7, 99, 100, 123, 999, 5000};
  struct Case {
    const char* text;
    double want[8];
  };
  const Case cases[] = {
      {"min(1.0, (step + 1) / 100)",
       {0x1.47ae147ae147bp-7, 0x1.47ae147ae147bp-6, 0x1.47ae147ae147bp-4, 0x1.0000000000000p+0,
        0x1.0000000000000p+0, 0x1.0000000000000p+0, 0x1.0000000000000p+0, 0x1.0000000000000p+0}},
      {"0.5 * (1 + cos(pi * step / 1000))",
       {0x1.0000000000000p+0, 0x1.ffffad3534100p-1, 0x1.fff02757f6eb6p-1, 0x1.f3b7c13fc89fep-1,
        0x1.f378709a22a80p-1, 0x1.ed1fc09408221p-1, 0x1.4b2b2fc020000p-19, 0x0.0p+0}},
      {"0.95 ** floor(step / 10)",
       {0x1.0000000000000p+0, 0x1.0000000000000p+0, 0x1.0000000000000p+0, 0x1.42b00cf62e561p-1,
        0x1.328da5e9df383p-1, 0x1.14aa13d126416p-1, 0x1.986de4656a63dp-8, 0x1.ffe597066a1a6p-38}},
      {"step < 100 ? (step + 1) / 100 : max(0.01, 1 - (step - 100) / 900)",
       {0x1.47ae147ae147bp-7, 0x1.47ae147ae147bp-6, 0x1.47ae147ae147bp-4, 0x1.0000000000000p+0,
        0x1.0000000000000p+0, 0x1.f2ea61d950c84p-1, 0x1.47ae147ae147bp-7, 0x1.47ae147ae147bp-7}},
      {"1 / sqrt(max(step, 1))",
       {0x1.0000000000000p+0, 0x1.0000000000000p+0, 0x1.83091e6a7f7e6p-2, 0x1.9ba9da6c73588p-4,
        0x1.999999999999ap-4, 0x1.7152e9f44f01fp-4, 0x1.032ef3f5dc32cp-5, 0x1.cf68d4fff04ddp-7}},
      {"exp(-0.001 * step) * abs(sin(step / 7))",
       {0x0.0p+0, 0x1.23492ed863401p-3, 0x1.abd3ed8575e0dp-1, 0x1.cfbb96171a923p-1,
        0x1.ca2cbc197d94fp-1, 0x1.b17dba509e1f7p-1, 0x1.6f4fafbd02b7ap-2, 0x1.920012ba91521p-8}},
      {"log(step + e) ** -0.5",
       {0x1.0000000000000p+0, 0x1.bec7d686b97c8p-1, 0x1.5386d37c8a898p-1, 0x1.dc4b4e3cf7c59p-2,
        0x1.dbca79613e831p-2, 0x1.d1bdc0ab167c6p-2, 0x1.85901648ce0cap-2, 0x1.5edcfc52d23aap-2}},
  };
  for (const Case& c : cases) {
    const Expression e = MustCompile(c.text);
    double out[8];
    e.Evaluate(steps, out);
    for (int i = 0; i < 8; ++i) {
      EXPECT_EQ(Bits(out[i]), Bits(c.want[i])) << c.text << " at step " << steps[i];
    }
  }
}

TEST(ExpressionTest, SpanMatchesScalarAtChunkBoundaries) {
  const char* texts[] = {
      "step",
      "3.5",
      "-step",
      "min(1.0, (step + 1) / 100)",
      "step < 10 ? sin(step) : 1 / step",
      "0.5 * (1 + cos(pi * step / 1000))",
      "max(step, -step, 2 * step - 3) ** 0.5 + floor(step / 7) * ceil(step / 3)",
      "(step > 3 && step < 50) || !step ? exp(-step) : log(abs(step))",
      "pow(step, 2) - step ** 2 + (step == 3)",
  };
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> dist(-100.0, 1000.0);
  for (const char* text : texts) {
    absl::StatusOr<Expression> e = Expression::Compile(text, "step");
    ASSERT_TRUE(e.ok()) << text << ": " << e.status();
    for (size_t n : {0, 1, 2, 63, 64, 65, 127, 128, 129, 1000}) {
      std::vector<double> xs(n);
      for (size_t i = 0; i < n; ++i) xs[i] = i % 5 == 0 ? static_cast<double>(i) : dist(rng);
      if (n > 3) {
        xs[1] = kNaN;
        xs[2] = kInf;
        xs[3] = -kInf;
      }
      ExpectSpanMatchesScalar(*e, xs);
      // In-place evaluation gives the same values.
      std::vector<double> expected(n);
      e->Evaluate(xs, expected);
      std::vector<double> inplace = xs;
      e->Evaluate(inplace, inplace);
      for (size_t i = 0; i < n; ++i) ASSERT_EQ(Bits(inplace[i]), Bits(expected[i])) << text;
    }
  }
  // Mismatched sizes never write out of bounds.
  const Expression e = MustCompile("step + 1");
  std::vector<double> xs = {1, 2, 3};
  std::vector<double> out = {0, 0};
  e.Evaluate(xs, out);
  EXPECT_EQ(out, (std::vector<double>{2, 3}));
  e.Evaluate(std::span<const double>(xs).first(1), out);
  EXPECT_EQ(out, (std::vector<double>{2, 3}));
}

TEST(ExpressionTest, ManySlotsUseTheLargeStack) {
  // Right-nested products keep one pending slot per level.
  std::string text = "1";
  for (int i = 0; i < 30; ++i) text = absl::StrCat("(step + ", i, ") * (", text, ")");
  const Expression e = MustCompile(text);
  EXPECT_GT(e.stack_slots(), 16);
  auto ref = [](double x) {
    double v = 1;
    for (int i = 0; i < 30; ++i) v = (x + i) * v;
    return v;
  };
  std::vector<double> xs;
  for (int i = 0; i < 300; ++i) xs.push_back(i * 0.01 - 1);
  ExpectSpanMatchesScalar(e, xs);
  for (double x : xs) EXPECT_EQ(Bits(e.Evaluate(x)), Bits(ref(x))) << x;
}

TEST(ExpressionTest, CopyAndMove) {
  absl::StatusOr<Expression> compiled = Expression::Compile("step * 2 + 1", "step");
  ASSERT_TRUE(compiled.ok());
  Expression a = *compiled;
  Expression b = a;
  Expression c = std::move(a);
  Expression d = MustCompile("0");
  d = c;
  EXPECT_EQ(b.Evaluate(3.0), 7.0);
  EXPECT_EQ(c.Evaluate(3.0), 7.0);
  EXPECT_EQ(d.Evaluate(3.0), 7.0);
  EXPECT_EQ(d.text(), "step * 2 + 1");
  std::vector<Expression> v;
  for (int i = 0; i < 10; ++i) v.push_back(MustCompile(absl::StrCat("step + ", i)));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(v[i].Evaluate(1.0), 1.0 + i);
}

TEST(ExpressionTest, ConstantFoldingKeepsRounding) {
  const Expression folded = MustCompile("pi * 2 / 3");
  EXPECT_EQ(folded.instruction_count(), 0u);
  EXPECT_EQ(Bits(folded.Evaluate(0)), Bits(std::numbers::pi * 2 / 3));
  // Not reassociated: (step * 2) / 3 stays two operations.
  const Expression e = MustCompile("step * 2 / 3");
  EXPECT_EQ(e.instruction_count(), 2u);
  EXPECT_EQ(Bits(e.Evaluate(0.1)), Bits(0.1 * 2 / 3));
  EXPECT_EQ(Bits(Eval("1 / 3 + step", 0.7)), Bits(1.0 / 3 + 0.7));
  EXPECT_EQ(Bits(Eval("sin(1) * step", 0.7)), Bits(std::sin(1.0) * 0.7));
}

TEST(ExpressionTest, NaNResultsAreCanonical) {
  const uint64_t canonical = Bits(kNaN);
  EXPECT_EQ(Bits(Eval("log(-1)")), canonical);  // Folded constant.
  EXPECT_EQ(Bits(Eval("-log(-1)")), canonical);
  EXPECT_EQ(Bits(Eval("step / step", 0.0)), canonical);
  EXPECT_EQ(Bits(Eval("-(step / step)", 0.0)), canonical);
  EXPECT_EQ(Bits(Eval("cos(step) + -step", kNaN)), canonical);
  EXPECT_EQ(Bits(Eval("-step", kNaN)), canonical);
  // The bare variable passes its input through untouched.
  EXPECT_EQ(Bits(Eval("step", -kNaN)), Bits(-kNaN));
}

TEST(ExpressionTest, IeeeResultsWherePythonWouldRaise) {
  EXPECT_EQ(Eval("1 / step", 0.0), kInf);
  EXPECT_EQ(Eval("-1 / step", 0.0), -kInf);
  EXPECT_TRUE(std::isnan(Eval("step / step", 0.0)));
  EXPECT_EQ(Eval("log(step)", 0.0), -kInf);
  EXPECT_TRUE(std::isnan(Eval("sqrt(step)", -1.0)));
  EXPECT_TRUE(std::isnan(Eval("step ** (1 / 3)", -8.0)));
  EXPECT_EQ(Eval("step ** 3", -2.0), -8.0);
  EXPECT_EQ(Eval("10 ** step", 400.0), kInf);
  EXPECT_EQ(Eval("1e308 * 10"), kInf);  // Folded: same as evaluated.
}

// ----- errors ----------------------------------------------------------------

TEST(ExpressionErrorTest, EmptyAndTrailingGarbage) {
  EXPECT_EQ(CompileError(""), "empty expression");
  EXPECT_EQ(CompileError("  \t\n "), "empty expression");
  EXPECT_EQ(CompileError("1 2"), "unexpected number '2' at column 3");
  EXPECT_EQ(CompileError("step step"), "unexpected name 'step' at column 6");
  EXPECT_EQ(CompileError("step + 1)"), "unexpected ')' at column 9");
  EXPECT_EQ(CompileError("(step + 1))"), "unexpected ')' at column 11");
  EXPECT_EQ(CompileError("1 + 2 ,"), "unexpected ',' at column 7");
  EXPECT_EQ(CompileError("min(1, 2) 3"), "unexpected number '3' at column 11");
  EXPECT_THAT(CompileError("2(3)"), HasSubstr("unexpected '(' at column 2"));
}

TEST(ExpressionErrorTest, UnbalancedParens) {
  EXPECT_EQ(CompileError("(step + 1"), "unclosed '(' at column 1");
  EXPECT_EQ(CompileError("((step) + 1"), "unclosed '(' at column 1");
  EXPECT_EQ(CompileError("1 + (2 * (3)"), "unclosed '(' at column 5");
  EXPECT_EQ(CompileError("min(1, 2"), "unclosed '(' at column 4");
  EXPECT_EQ(CompileError(")"), "unexpected ')' at column 1");
  EXPECT_EQ(CompileError("()"), "unexpected ')' at column 2");
  EXPECT_EQ(CompileError("(1))"), "unexpected ')' at column 4");
  EXPECT_EQ(CompileError("(1 2)"), "unexpected number '2' at column 4");
}

TEST(ExpressionErrorTest, UnknownNamesAndFunctions) {
  EXPECT_THAT(CompileError("stp"), HasSubstr("unknown name 'stp' at column 1"));
  EXPECT_THAT(CompileError("2 * x + 1"), HasSubstr("unknown name 'x' at column 5"));
  EXPECT_THAT(CompileError("inf"), HasSubstr("unknown name 'inf' at column 1"));
  EXPECT_THAT(CompileError("nan"), HasSubstr("unknown name 'nan' at column 1"));
  EXPECT_THAT(CompileError("PI"), HasSubstr("unknown name 'PI' at column 1"));
  EXPECT_EQ(CompileError("foo(1)"), "unknown function 'foo' at column 1");
  EXPECT_EQ(CompileError("1 + tan(step)"), "unknown function 'tan' at column 5");
  EXPECT_EQ(CompileError("math.floor(1)"),
            "unknown name 'math' at column 1 (known names: "
            "'step', 'pi', 'e')");
  EXPECT_EQ(CompileError("step(2)"), "'step' at column 1 is not a function");
  EXPECT_EQ(CompileError("pi (2)"), "'pi' at column 1 is not a function");
  EXPECT_EQ(CompileError("sin + 1"), "expected '(' after function 'sin' at column 1");
  EXPECT_EQ(CompileError("min"), "expected '(' after function 'min' at column 1");
}

TEST(ExpressionErrorTest, WrongArity) {
  EXPECT_EQ(CompileError("min(1)"), "'min' needs at least 2 arguments at column 1, got 1");
  EXPECT_EQ(CompileError("1 + max()"), "'max' needs at least 2 arguments at column 5, got 0");
  EXPECT_EQ(CompileError("pow(2)"), "'pow' needs exactly 2 arguments at column 1, got 1");
  EXPECT_EQ(CompileError("pow(2, 3, 4)"), "'pow' needs exactly 2 arguments at column 1, got 3");
  EXPECT_EQ(CompileError("sqrt()"), "'sqrt' needs exactly 1 argument at column 1, got 0");
  EXPECT_EQ(CompileError("abs(1, 2)"), "'abs' needs exactly 1 argument at column 1, got 2");
  EXPECT_EQ(CompileError("cos(1,)"), "unexpected ')' at column 7");
  EXPECT_EQ(CompileError("min(1,,2)"), "unexpected ',' at column 7");
  EXPECT_EQ(CompileError("min(1 2)"), "unexpected number '2' at column 7");
}

TEST(ExpressionErrorTest, BareOperators) {
  EXPECT_EQ(CompileError("+"), "unexpected end of expression at column 2");
  EXPECT_EQ(CompileError("-"), "unexpected end of expression at column 2");
  EXPECT_EQ(CompileError("*"), "unexpected '*' at column 1");
  EXPECT_EQ(CompileError("**"), "unexpected '**' at column 1");
  EXPECT_EQ(CompileError("/ 2"), "unexpected '/' at column 1");
  EXPECT_EQ(CompileError("step *"), "unexpected end of expression at column 7");
  EXPECT_EQ(CompileError("step + * 2"), "unexpected '*' at column 8");
  EXPECT_EQ(CompileError("step ** "), "unexpected end of expression at column 9");
  EXPECT_EQ(CompileError("step < "), "unexpected end of expression at column 8");
  EXPECT_EQ(CompileError("< 1"), "unexpected '<' at column 1");
  EXPECT_EQ(CompileError("?"), "unexpected '?' at column 1");
  EXPECT_EQ(CompileError(":"), "unexpected ':' at column 1");
  EXPECT_EQ(CompileError("step ? 1"), "missing ':' for '?' at column 6");
  EXPECT_EQ(CompileError("step ? 1 , 2"),
            "unexpected ',' at column 10 (expected ':' for '?' at column 6)");
  EXPECT_EQ(CompileError("step ? : 2"), "unexpected ':' at column 8");
  EXPECT_EQ(CompileError("step ? 1 :"), "unexpected end of expression at column 11");
  EXPECT_EQ(CompileError("step && || 1"), "unexpected '||' at column 9");
  EXPECT_EQ(CompileError("!"), "unexpected end of expression at column 2");
  EXPECT_EQ(CompileError("step = 1"), "unexpected character '=' at column 6 (did you mean '=='?)");
  EXPECT_EQ(CompileError("step & 1"), "unexpected character '&' at column 6 (did you mean '&&'?)");
  EXPECT_EQ(CompileError("step | 1"), "unexpected character '|' at column 6 (did you mean '||'?)");
  EXPECT_EQ(CompileError("step // 2"), "unexpected '/' at column 7");
  EXPECT_EQ(CompileError("step % 2"), "unexpected character '%' at column 6");
  EXPECT_EQ(CompileError("step ++"), "unexpected end of expression at column 8");
  EXPECT_THAT(CompileError("1 < step < 3"),
              HasSubstr("comparisons cannot be chained ('<' at column 10)"));
  EXPECT_THAT(CompileError("1 == step != 3"), HasSubstr("chained ('!=' at column 11)"));
}

TEST(ExpressionErrorTest, BadBytes) {
  EXPECT_EQ(CompileError(std::string("step\0+1", 7)),
            "unexpected byte 0x00 at column 5 (only printable ASCII is allowed)");
  EXPECT_EQ(CompileError(std::string("\0", 1)),
            "unexpected byte 0x00 at column 1 (only printable ASCII is allowed)");
  EXPECT_EQ(CompileError("step \xC3\xA9"),
            "unexpected byte 0xC3 at column 6 (only printable ASCII is allowed)");
  EXPECT_EQ(CompileError("\xFF"),
            "unexpected byte 0xFF at column 1 (only printable ASCII is allowed)");
  EXPECT_EQ(CompileError("1 +\x7F"),
            "unexpected byte 0x7F at column 4 (only printable ASCII is allowed)");
  EXPECT_EQ(CompileError("\x1B[31m"),
            "unexpected byte 0x1B at column 1 (only printable ASCII is allowed)");
  EXPECT_EQ(CompileError("step $"), "unexpected character '$' at column 6");
  EXPECT_EQ(CompileError("\"step\""), "unexpected character '\"' at column 1");
  EXPECT_EQ(CompileError("step;"), "unexpected character ';' at column 5");
  EXPECT_EQ(CompileError("[1]"), "unexpected character '[' at column 1");
}

TEST(ExpressionErrorTest, BadNumbers) {
  EXPECT_EQ(CompileError("1e999"),
            "number '1e999' at column 1 is out of range (not a finite double)");
  EXPECT_EQ(CompileError("-1e999"),
            "number '1e999' at column 2 is out of range (not a finite double)");
  EXPECT_THAT(CompileError("1.8e308"), HasSubstr("out of range"));
  EXPECT_THAT(CompileError("0.0001e313"), HasSubstr("out of range"));
  EXPECT_EQ(CompileError("100000000000000000000e-10000000000000000000000000"), "");
  EXPECT_THAT(CompileError(std::string(400, '9')), HasSubstr("out of range"));
  EXPECT_EQ(CompileError("1e"), "malformed number '1e' at column 1");
  EXPECT_EQ(CompileError("1e+"), "malformed number '1e' at column 1");
  EXPECT_EQ(CompileError("2 * 1.5e-x"), "malformed number '1.5e' at column 5");
  EXPECT_EQ(CompileError("1x"), "malformed number '1x' at column 1");
  EXPECT_EQ(CompileError("1.2.3"), "malformed number '1.2.3' at column 1");
  EXPECT_EQ(CompileError("0x10"), "malformed number '0x10' at column 1");
  EXPECT_EQ(CompileError("1_000"), "malformed number '1_000' at column 1");
  EXPECT_EQ(CompileError("1e5e5"), "malformed number '1e5e5' at column 1");
  EXPECT_EQ(CompileError("."), "unexpected character '.' at column 1");
  EXPECT_EQ(CompileError("step.5"), "unexpected number '.5' at column 5");
  EXPECT_THAT(CompileError(std::string(200, '7') + "x"), HasSubstr("'7777"));
}

TEST(ExpressionErrorTest, TooLong) {
  // "step" + "+1" * 510 is exactly 1024 characters and compiles.
  std::string max_text = "step";
  while (max_text.size() < Expression::kMaxLength) max_text += "+1";
  ASSERT_EQ(max_text.size(), Expression::kMaxLength);
  const Expression e = MustCompile(max_text);
  EXPECT_EQ(e.Evaluate(1.0), 511.0);
  EXPECT_EQ(CompileError(max_text + " "), "longer than 1024 characters (got 1025)");
  EXPECT_EQ(CompileError(std::string(2000, '1')), "longer than 1024 characters (got 2000)");
  EXPECT_EQ(CompileError(std::string(10000, '(')), "longer than 1024 characters (got 10000)");
}

TEST(ExpressionErrorTest, TooDeep) {
  auto nested = [](int depth) {
    return std::string(depth, '(') + "step" + std::string(depth, ')');
  };
  EXPECT_EQ(MustCompile(nested(Expression::kMaxNesting)).Evaluate(5.0), 5.0);
  EXPECT_EQ(CompileError(nested(Expression::kMaxNesting + 1)),
            "nesting deeper than 64 at column 65");
  EXPECT_EQ(CompileError(std::string(1000, '(')), "nesting deeper than 64 at column 65");
  EXPECT_THAT(CompileError(std::string(1000, '-') + "1"), HasSubstr("nesting deeper than 64"));
  EXPECT_THAT(CompileError(std::string(1000, '!') + "1"), HasSubstr("nesting deeper than 64"));
  std::string powers = "2";
  for (int i = 0; i < 200; ++i) powers += "**2";
  EXPECT_THAT(CompileError(powers), HasSubstr("nesting deeper than 64"));
  std::string calls;
  for (int i = 0; i < 200; ++i) calls += "sin(";
  EXPECT_THAT(CompileError(calls), HasSubstr("nesting deeper than 64"));
  std::string conditionals;
  for (int i = 0; i < 100; ++i) conditionals += "step?1:";
  conditionals += "0";
  EXPECT_THAT(CompileError(conditionals), HasSubstr("nesting deeper than 64"));
  // Within the limits, deep right-nesting works.
  std::string chain;
  for (int i = 0; i < 60; ++i) absl::StrAppend(&chain, "step>", i, "?");
  chain += "-1";
  for (int i = 59; i >= 0; --i) absl::StrAppend(&chain, ":", i);
  const Expression c = MustCompile(chain);
  EXPECT_EQ(c.Evaluate(0), 0.0);
  EXPECT_EQ(c.Evaluate(10.5), 11.0);
  EXPECT_EQ(c.Evaluate(100), -1.0);
  ExpectSpanMatchesScalar(c, {0, 1, 2, 10.5, 30, 59, 60, 61, 100});
  // Left-leaning chains do not nest at all.
  std::string sum = "step";
  for (int i = 0; i < 300; ++i) sum += "-1";
  EXPECT_EQ(MustCompile(sum).Evaluate(300), 0.0);
}

TEST(ExpressionErrorTest, TooManyStackSlots) {
  // Each level keeps five computed values pending (||, &&, ==, +, *).
  std::string text;
  for (int i = 0; i < 14; ++i) text += "-step||-step&&-step==-step+-step*(";
  text += "step" + std::string(14, ')');
  ASSERT_LE(text.size(), Expression::kMaxLength);
  EXPECT_THAT(CompileError(text),
              HasSubstr("expression is too complex: needs more than 64 evaluation stack slots"));
}

// ----- robustness ------------------------------------------------------------

void CompileAndEvaluateAnything(const std::string& text, int* compiled) {
  absl::StatusOr<Expression> e = Expression::Compile(text, "step");
  if (!e.ok()) {
    ASSERT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << text;
    ASSERT_FALSE(e.status().message().empty()) << text;
    return;
  }
  ++*compiled;
  ASSERT_EQ(e->text(), text);
  ASSERT_LE(e->stack_slots(), Expression::kMaxStack);
  static const std::vector<double> xs = [] {
    std::vector<double> v = {0.0, -0.0, 1.0, -1.0, 0.5, 3.0, 1e300, -1e300, kInf, -kInf, kNaN};
    for (int i = 0; i < 60; ++i) v.push_back(i * 1.7 - 20);
    return v;
  }();
  ExpectSpanMatchesScalar(*e, xs);
}

TEST(ExpressionFuzzTest, RandomTokenStrings) {
  const char* pieces[] = {
      "step", "1",     "2",    "0", ".5", "1e3", "1e999",  "pi",   "e",    "+",    "-",    "*",
      "**",   "^",     "/",    "(", ")",  "(",   ")",      "<",    "<=",   ">",    ">=",   "==",
      "!=",   "&&",    "||",   "!", "?",  ":",   ",",      " ",    "min(", "max(", "pow(", "sin(",
      "log(", "sqrt(", "abs(", "x", "1.", "e-",  "floor(", "exp(", "cos(", "ceil("};
  std::mt19937 rng(12345);
  std::uniform_int_distribution<size_t> pick(0, std::size(pieces) - 1);
  std::uniform_int_distribution<int> length(1, 8);
  int compiled = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) text += pieces[pick(rng)];
    CompileAndEvaluateAnything(text, &compiled);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(compiled, 500);  // Plenty of inputs are valid and got evaluated.
}

// A random expression tree with an independent reference evaluator, used for
// differential testing of the compiler and evaluator.
class RandomExpression {
 public:
  explicit RandomExpression(std::mt19937* rng) : rng_(*rng) {}

  // Returns the text of a random expression and sets *ref to a function that
  // evaluates it the straightforward way (tree walking).
  std::string Generate(int depth, std::function<double(double)>* ref) {
    const int choice = depth <= 0 ? Uniform(0, 1) : Uniform(0, 8);
    switch (choice) {
      case 0: {  // Leaf: the variable.
        *ref = [](double x) { return x; };
        return Space() + "step" + Space();
      }
      case 1: {  // Leaf: a literal or constant.
        static const std::pair<const char*, double> kLeaves[] = {{"0", 0.0},
                                                                 {"1", 1.0},
                                                                 {"2", 2.0},
                                                                 {"0.5", 0.5},
                                                                 {".25", 0.25},
                                                                 {"3e2", 3e2},
                                                                 {"1e-3", 1e-3},
                                                                 {"7.", 7.0},
                                                                 {"pi", std::numbers::pi},
                                                                 {"e", std::numbers::e},
                                                                 {"0.1", 0.1},
                                                                 {"1000", 1000.0}};
        const auto& leaf = kLeaves[Uniform(0, std::size(kLeaves) - 1)];
        const double v = leaf.second;
        *ref = [v](double) { return v; };
        return Space() + leaf.first + Space();
      }
      case 2:
      case 3:
      case 4: {  // Binary operator.
        static const char* kOps[] = {"+",  "-", "*",  "/",  "**", "^",  "<",
                                     "<=", ">", ">=", "==", "!=", "&&", "||"};
        const int op = Uniform(0, std::size(kOps) - 1);
        std::function<double(double)> a, b;
        const std::string ta = Generate(depth - 1, &a);
        const std::string tb = Generate(depth - 1, &b);
        *ref = [op, a, b](double x) {
          const double u = a(x), v = b(x);
          switch (op) {
            case 0:
              return u + v;
            case 1:
              return u - v;
            case 2:
              return u * v;
            case 3:
              return u / v;
            case 4:
            case 5:
              return std::pow(u, v);
            case 6:
              return u < v ? 1.0 : 0.0;
            case 7:
              return u <= v ? 1.0 : 0.0;
            case 8:
              return u > v ? 1.0 : 0.0;
            case 9:
              return u >= v ? 1.0 : 0.0;
            case 10:
              return u == v ? 1.0 : 0.0;
            case 11:
              return u != v ? 1.0 : 0.0;
            case 12:
              return u != 0 && v != 0 ? 1.0 : 0.0;
            default:
              return u != 0 || v != 0 ? 1.0 : 0.0;
          }
        };
        return "(" + ta + ")" + kOps[op] + "(" + tb + ")";
      }
      case 5: {  // Prefix operator.
        static const char* kOps[] = {"-", "+", "!"};
        const int op = Uniform(0, 2);
        std::function<double(double)> a;
        const std::string ta = Generate(depth - 1, &a);
        *ref = [op, a](double x) {
          const double u = a(x);
          return op == 0 ? -u : op == 1 ? u : (u == 0 ? 1.0 : 0.0);
        };
        return std::string(kOps[op]) + "(" + ta + ")";
      }
      case 6: {  // Unary function.
        static const std::pair<const char*, double (*)(double)> kFns[] = {
            {"abs", [](double u) { return std::fabs(u); }},
            {"floor", [](double u) { return std::floor(u); }},
            {"ceil", [](double u) { return std::ceil(u); }},
            {"exp", [](double u) { return std::exp(u); }},
            {"log", [](double u) { return std::log(u); }},
            {"sqrt", [](double u) { return std::sqrt(u); }},
            {"sin", [](double u) { return std::sin(u); }},
            {"cos", [](double u) { return std::cos(u); }}};
        const auto& fn = kFns[Uniform(0, std::size(kFns) - 1)];
        std::function<double(double)> a;
        const std::string ta = Generate(depth - 1, &a);
        auto* f = fn.second;
        *ref = [f, a](double x) { return f(a(x)); };
        return std::string(fn.first) + "(" + ta + ")";
      }
      case 7: {  // min / max / pow call.
        const int which = Uniform(0, 2);
        const int n = which == 2 ? 2 : Uniform(2, 4);
        std::vector<std::function<double(double)>> args(n);
        std::string text = which == 0 ? "min(" : which == 1 ? "max(" : "pow(";
        for (int i = 0; i < n; ++i) {
          if (i > 0) text += ",";
          text += Generate(depth - 1, &args[i]);
        }
        *ref = [which, args](double x) {
          if (which == 2) return std::pow(args[0](x), args[1](x));
          double m = args[0](x);
          for (size_t i = 1; i < args.size(); ++i) {
            const double v = args[i](x);
            if (which == 0 ? v < m : v > m) m = v;
          }
          return m;
        };
        return text + ")";
      }
      default: {  // Conditional.
        std::function<double(double)> c, a, b;
        const std::string tc = Generate(depth - 1, &c);
        const std::string ta = Generate(depth - 1, &a);
        const std::string tb = Generate(depth - 1, &b);
        *ref = [c, a, b](double x) { return c(x) != 0 ? a(x) : b(x); };
        return "(" + tc + ")?(" + ta + "):(" + tb + ")";
      }
    }
  }

 private:
  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  std::string Space() { return Uniform(0, 3) == 0 ? " " : ""; }

  std::mt19937& rng_;
};

TEST(ExpressionFuzzTest, RandomValidExpressionsMatchTreeWalker) {
  std::mt19937 rng(2024);
  RandomExpression gen(&rng);
  const std::vector<double> xs = {0.0,  -0.0, 1.0,  -1.0, 0.5,  2.0,   3.7,
                                  -2.5, 10.0, 99.0, 1e6,  kInf, -kInf, kNaN};
  int evaluated = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::function<double(double)> ref;
    const std::string text = gen.Generate(1 + iter % 5, &ref);
    if (text.size() > Expression::kMaxLength) continue;
    absl::StatusOr<Expression> e = Expression::Compile(text, "step");
    ASSERT_TRUE(e.ok()) << text << ": " << e.status();
    ++evaluated;
    std::vector<double> out(xs.size());
    e->Evaluate(xs, out);
    for (size_t i = 0; i < xs.size(); ++i) {
      const double want = ref(xs[i]);
      ASSERT_TRUE(SameValue(out[i], want))
          << text << " at " << xs[i] << ": " << out[i] << " vs " << want;
    }
    ExpectSpanMatchesScalar(*e, xs);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(evaluated, 2500);
}

TEST(ExpressionFuzzTest, MutatedValidExpressions) {
  std::mt19937 rng(31337);
  RandomExpression gen(&rng);
  // Includes a NUL and a non-ASCII byte.
  const std::string alphabet = std::string("0123456789.e+-*/^()<>=!&|?:, stpmin") + '\0' + '\xff';
  int compiled = 0;
  for (int iter = 0; iter < 5000; ++iter) {
    std::function<double(double)> ref;
    std::string text = gen.Generate(1 + iter % 4, &ref);
    const int mutations = 1 + iter % 3;
    for (int m = 0; m < mutations && !text.empty(); ++m) {
      const size_t pos = std::uniform_int_distribution<size_t>(0, text.size() - 1)(rng);
      const char c = alphabet[std::uniform_int_distribution<size_t>(0, alphabet.size() - 1)(rng)];
      switch (std::uniform_int_distribution<int>(0, 2)(rng)) {
        case 0:
          text.erase(pos, 1);
          break;
        case 1:
          text.insert(text.begin() + pos, c);
          break;
        default:
          text[pos] = c;
          break;
      }
    }
    CompileAndEvaluateAnything(text, &compiled);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(compiled, 200);
}

TEST(ExpressionFuzzTest, RandomCharacterStrings) {
  const std::string alphabet = "0123456789.eE+-*/^()<>=!&|?:, stepimnaxlogcsqrw\t";
  std::mt19937 rng(777);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> length(0, 16);
  int compiled = 0;
  for (int iter = 0; iter < 30000; ++iter) {
    std::string text;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) text += alphabet[pick(rng)];
    CompileAndEvaluateAnything(text, &compiled);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(compiled, 100);
}

TEST(ExpressionFuzzTest, RandomBytes) {
  std::mt19937 rng(99);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> length(0, 40);
  int compiled = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text;
    const int n = length(rng);
    for (int i = 0; i < n; ++i) text += static_cast<char>(byte(rng));
    CompileAndEvaluateAnything(text, &compiled);
    if (HasFatalFailure()) return;
  }
  // Long random inputs, including over-long ones.
  std::uniform_int_distribution<int> long_length(900, 1100);
  const std::string deep_alphabet = "((((--!!step**^2+1)*,min(max(?:";
  std::uniform_int_distribution<size_t> pick(0, deep_alphabet.size() - 1);
  for (int iter = 0; iter < 300; ++iter) {
    std::string text;
    const int n = long_length(rng);
    for (int i = 0; i < n; ++i) text += deep_alphabet[pick(rng)];
    CompileAndEvaluateAnything(text, &compiled);
    if (HasFatalFailure()) return;
  }
}

// ---------------------------------------------------------------------------
// Range analysis (Expression::Range).
// ---------------------------------------------------------------------------

// The range over the steps, or the analysis' error message.
absl::StatusOr<Interval> StepRange(std::string_view text) {
  return MustCompile(text).Range(StepDomain());
}

std::string RangeError(std::string_view text) {
  const absl::StatusOr<Interval> r = StepRange(text);
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return std::string(r.status().message());
}

// The steps every analyzed expression is checked at.
std::vector<double> CheckSteps() {
  std::vector<double> steps;
  for (int i = 0; i < 300; ++i) steps.push_back(i);
  for (double s : {999.0, 1000.0, 1001.0, 1e6, 2147483648.0, 1e12, 4503599627370496.0,
                   9007199254740990.0, 9007199254740991.0}) {
    steps.push_back(s);
  }
  return steps;
}

// Range() accepted `e`: every value at the check steps is finite and inside the range.
void ExpectWithin(const Expression& e, Interval range) {
  for (double step : CheckSteps()) {
    const double v = e.Evaluate(step);
    ASSERT_TRUE(std::isfinite(v)) << e.text() << " at " << step << " = " << v;
    ASSERT_TRUE(range.contains(v))
        << e.text() << " at " << step << " = " << v << " outside " << range.ToString();
  }
}

// Range() accepts `text` over the steps, and its values are inside the range.
void ExpectAccepted(const char* text) {
  SCOPED_TRACE(text);
  const absl::StatusOr<Interval> r = StepRange(text);
  ASSERT_TRUE(r.ok()) << r.status();
  ExpectWithin(MustCompile(text), *r);
}

TEST(ExpressionRangeTest, CommonLambdasAreAccepted) {
  for (const char* text :
       {"0.95 ** step", "1/(step+1)", "min(1, (step+1)/1000)", "max(0, 1 - step/1000) ** 0.9",
        "(step + 1) ** -0.5", "1 / sqrt(step + 1)",
        "step < 100 ? (step + 1) / 100 : 0.5 * (1 + "
        "cos(pi * (step - 100) / 900))",
        "0.5 ** floor(step / 30)", "exp(-step / 1000)", "log(step + 1)", "sqrt(step)", "step ** 2",
        "(step - 5) ** 2", "(step - 5) ** 3", "sin(step) + cos(step)", "abs(step - 10) / 10",
        "min(1, step / 100) * 0.5 ** floor(step / 1000)", "1 - step / (step + 1)",
        // The expressions of the goldens, docs and end-to-end tests.
        "(step < 20) * 1 + (step >= 20) * 0.1", "0.9 ^ step", "0.99 ^ step ^ 0.5",
        "1 / sqrt(max(step, 1))", "abs(1 - step / 50) ^ 2 * 0.9 ^ ceil(step / 7)",
        "exp(-0.01 * step) / (1 + log(step + 1))",
        "max(0.1, pow(e, -step / 200)) * (1 + 0.1 * sin(step / 5))",
        "min(1, (step + 1) / 50) * 0.99 ** step",
        "step < 10 ? (step + 1) / 10 : 0.5 * (1 + cos(pi * (step - 10) / 90))",
        "step <= 10 ? 0.1 : step > 20 ? 1 : 0.5",
        "step == 0 ? 0.5 : step != 1 ? 1 / (1 + pi / e * log(step)) : 0.75"}) {
    ExpectAccepted(text);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(*StepRange("0.95 ** step"), (Interval{0, 1}));
  EXPECT_EQ(*StepRange("min(1, (step+1)/1000)"), (Interval{0.001, 1}));
  EXPECT_EQ(*StepRange("step"), (Interval{0, 9007199254740991.0}));
  EXPECT_EQ(*StepRange("2.5"), (Interval{2.5, 2.5}));
}

TEST(ExpressionRangeTest, RejectsEveryNonFiniteOperation) {
  EXPECT_EQ(RangeError("1/step"),
            "'/' at column 2 may divide by zero: the divisor's range [0, 9.0072e+15] contains 0");
  EXPECT_EQ(RangeError("log(step)"),
            "'log' at column 1 may take the log of a value <= 0: the argument's range "
            "[0, 9.0072e+15] is not > 0");
  EXPECT_EQ(RangeError("sqrt(step-1)"),
            "'sqrt' at column 1 may take the square root of a negative value: the argument's "
            "range [-1, 9.0072e+15] has negative values");
  EXPECT_EQ(RangeError("exp(step)"),
            "'exp' at column 1 may overflow: the argument's range [0, 9.0072e+15] goes above "
            "709.78");
  EXPECT_EQ(RangeError("(1 - step/1000) ** 0.9"),
            "'**' at column 17 may be NaN: the base's range [-9.0072e+12, 1] has negative values "
            "and the exponent (range [0.9, 0.9]) is not a constant integer (clamp the base, e.g. "
            "max(0, ...) ** y)");
  EXPECT_THAT(RangeError("2 ** step"), HasSubstr("'**' at column 3 may overflow"));
  EXPECT_THAT(RangeError("pow(1.01, step)"), HasSubstr("'pow' at column 1 may overflow"));
  EXPECT_THAT(RangeError("step ** -1"), HasSubstr("may divide by zero (0 to a negative power)"));
  EXPECT_THAT(RangeError("(step - 3) ** -1"), HasSubstr("may divide by zero"));
  EXPECT_THAT(RangeError("step * step * step * step * step * step * step * step * step * step * "
                         "step * step * step * step * step * step * step * step * step * step"),
              HasSubstr("may overflow: the operands' ranges are"));
  EXPECT_THAT(RangeError("1e300 + 1e300 * step"), HasSubstr("'*' at column 15 may overflow"));
  // Intermediate results count, even when a later operation would hide them.
  EXPECT_THAT(RangeError("min(1, exp(step))"), HasSubstr("'exp' at column 8 may overflow"));
  EXPECT_THAT(RangeError("0 * (1/step)"), HasSubstr("may divide by zero"));
  // Constants too.
  EXPECT_THAT(RangeError("1/0 + step"), HasSubstr("'/' at column 2 may divide by zero"));
  EXPECT_THAT(RangeError("log(0)"), HasSubstr("'log' at column 1"));
  EXPECT_THAT(RangeError("(-8) ** (1/3)"), HasSubstr("may be NaN"));
  EXPECT_THAT(RangeError("1 ? 1/0 : 1"), HasSubstr("may divide by zero"));
  // Conservative: no integer makes step - 0.5 zero, but the interval [-0.5, ...] contains it.
  EXPECT_THAT(RangeError("1/(step - 0.5)"), HasSubstr("may divide by zero"));
}

TEST(ExpressionRangeTest, ConditionalsAreAnalyzedWhereSelected) {
  for (const char* text :
       {"step < 1 ? 1 : 1/step", "step == 0 ? 1 : 1/step", "step != 0 ? 1/step : 1",
        "step >= 1 ? log(step) : 0", "1 <= step ? 1/step : 2", "0 < step ? 1/step : 2",
        "step > 0 && step < 10 ? 1/step : 1", "step < 1 || step > 5 ? 1 : 1/step",
        "!(step < 1) ? 1/step : 3", "(step < 1) ? 3 : sqrt(step - 1)", "step < 0 ? 1/0 : 1",
        "0 ? 1/0 : 1", "step < 10.5 ? 1 : 1/(step - 10.5)",
        "step > 100 ? exp(-step) : step < 10 ? 1 : 1/(step - 9)",
        "step < 700 ? exp(step) : exp(700)"}) {
    ExpectAccepted(text);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(*StepRange("step < 0 ? 1/0 : 1"), (Interval{1, 1}));
  EXPECT_EQ(*StepRange("step < 1 ? 5 : 1/step"), (Interval{1.1102230246251568e-16, 5}));
  // Only comparisons of the variable with a constant refine: here the divisor is analyzed over
  // every step.
  EXPECT_THAT(RangeError("step - 1 < 0 ? 1 : 1/step"), HasSubstr("may divide by zero"));
  EXPECT_THAT(RangeError("step < 2 ? 1 : 1/(step - 2)"), HasSubstr("may divide by zero"));
  EXPECT_THAT(RangeError("step < 1 || step > 5 ? 1/step : 1"), HasSubstr("may divide by zero"));
  // The condition itself is analyzed.
  EXPECT_THAT(RangeError("exp(step) > 1 ? 1 : 0"), HasSubstr("'exp' at column 1"));
}

TEST(ExpressionRangeTest, OtherDomains) {
  const Expression e = MustCompile("1 / x", "x");
  EXPECT_THAT(e.Range({{-1, 1}, false}).status().message(), HasSubstr("may divide by zero"));
  EXPECT_EQ(*e.Range({{1, 4}, false}), (Interval{0.25, 1}));
  EXPECT_TRUE(e.Range({Interval::Empty(), false})->empty());
  EXPECT_THAT(e.Range({{0, kInf}, false}).status().message(), HasSubstr("is not finite"));
  // Real domains refine with the nearest doubles, integer domains with the nearest integers.
  const Expression g = MustCompile("x < 1 ? 1 : 1/(x - 1)", "x");
  EXPECT_THAT(g.Range({{0, 10}, false}).status().message(), HasSubstr("may divide by zero"));
  const Expression h = MustCompile("x <= 1 ? 1 : 1/(x - 1)", "x");
  EXPECT_TRUE(h.Range({{0, 10}, false}).ok());
  EXPECT_EQ(*h.Range({{0, 10}, true}), (Interval{1.0 / 9, 1}));
}

// Range() is sound: for random expressions it accepts, every value at the check steps is finite
// and inside the range it gives.
TEST(ExpressionRangeTest, RandomExpressionsStayInTheirRange) {
  std::mt19937 rng(4242);
  RandomExpression gen(&rng);
  const std::vector<double> steps = CheckSteps();
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::function<double(double)> ref;
    const std::string text = gen.Generate(1 + iter % 6, &ref);
    absl::StatusOr<Expression> e = Expression::Compile(text, "step");
    if (!e.ok()) continue;
    const absl::StatusOr<Interval> r = e->Range(StepDomain());
    if (!r.ok()) {
      EXPECT_THAT(r.status().message(), HasSubstr(" at column ")) << text;
      continue;
    }
    ++accepted;
    ExpectWithin(*e, *r);
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(accepted, 3000);
}

// ----- the pieces: syntax tree and interval operations -------------------------

std::string Tree(std::string_view text) {
  absl::StatusOr<expression_internal::Ast> ast = expression_internal::Parse(text, "step", nullptr);
  if (!ast.ok()) return std::string(ast.status().message());
  return ast->ToString();
}

TEST(ExpressionAstTest, ShapeFollowsPrecedenceAndAssociativity) {
  EXPECT_EQ(Tree("step"), "x");
  EXPECT_EQ(Tree("1 + 2 * step"), "(+ 1 (* 2 x))");
  EXPECT_EQ(Tree("step - 1 - 2"), "(- (- x 1) 2)");
  EXPECT_EQ(Tree("2 ** 3 ** step"), "(** 2 (** 3 x))");
  EXPECT_EQ(Tree("-2 ^ -step"), "(neg (** 2 (neg x)))");
  EXPECT_EQ(Tree("!step || step < 1 && step >= 2"), "(|| (! x) (&& (< x 1) (>= x 2)))");
  EXPECT_EQ(Tree("step ? 1 : step ? 2 : 3"), "(? x 1 (? x 2 3))");
}

TEST(ExpressionAstTest, ParenthesesAndUnaryPlusLeaveNoNode) {
  EXPECT_EQ(Tree("((+step))"), "x");
  EXPECT_EQ(Tree("+(1)"), "1");
}

TEST(ExpressionAstTest, CallsBecomeOperations) {
  EXPECT_EQ(Tree("min(step, 1, 2)"), "(min (min x 1) 2)");
  EXPECT_EQ(Tree("max(1, step)"), "(max 1 x)");
  EXPECT_EQ(Tree("pow(step, 2)"), "(** x 2)");
  EXPECT_EQ(Tree("sqrt(abs(step))"), "(sqrt (abs x))");
  EXPECT_EQ(Tree("pi"), "3.1415926535897931");
  EXPECT_EQ(Tree("e"), "2.7182818284590451");
}

TEST(ExpressionAstTest, ParseErrorsAreTheCompilersErrors) {
  EXPECT_EQ(Tree("1 +"), "unexpected end of expression at column 4");
  EXPECT_EQ(Tree(""), "empty expression");
  EXPECT_EQ(Tree("pow(1)"), "'pow' needs exactly 2 arguments at column 1, got 1");
}

TEST(ExpressionAstTest, OperationsKeepTheirTokenForErrors) {
  absl::StatusOr<expression_internal::Ast> ast =
      expression_internal::Parse("1 + sqrt(step)", "step", nullptr);
  ASSERT_TRUE(ast.ok());
  const expression_internal::Node& plus = ast->node(ast->root());
  EXPECT_EQ(plus.pos, 2u);
  EXPECT_EQ(plus.len, 1u);
  const expression_internal::Node& sqrt = ast->node(plus.b);
  EXPECT_EQ(sqrt.pos, 4u);
  EXPECT_EQ(sqrt.len, 4u);
}

TEST(ExpressionIntervalTest, CorrectlyRoundedOpsUseTheCorners) {
  using expression_internal::Op;
  using expression_internal::RangeBinary;
  EXPECT_EQ(RangeBinary(Op::kSub, {0, 1}, {2, 3}).range, (Interval{-3, -1}));
  EXPECT_EQ(RangeBinary(Op::kMul, {-2, 1}, {-3, 4}).range, (Interval{-8, 6}));
  EXPECT_EQ(RangeBinary(Op::kDiv, {1, 2}, {4, 8}).range, (Interval{0.125, 0.5}));
  EXPECT_EQ(RangeBinary(Op::kMin, {0, 5}, {1, 2}).range, (Interval{0, 2}));
  EXPECT_EQ(RangeBinary(Op::kLt, {0, 1}, {2, 3}).range, Interval::Point(1.0));
  EXPECT_EQ(RangeBinary(Op::kLt, {0, 2}, {2, 3}).range, (Interval{0, 1}));
}

TEST(ExpressionIntervalTest, UnsafeOpsExplainWhy) {
  using expression_internal::Op;
  EXPECT_EQ(expression_internal::RangeBinary(Op::kDiv, {1, 2}, {0, 1}).error,
            "may divide by zero: the divisor's range [0, 1] contains 0");
  EXPECT_EQ(expression_internal::RangeUnary(Op::kLog, {0, 10}).error,
            "may take the log of a value <= 0: the argument's range [0, 10] is not > 0");
  EXPECT_EQ(expression_internal::RangeUnary(Op::kExp, {0, 1000}).error,
            "may overflow: the argument's range [0, 1000] goes above 709.78");
}

TEST(ExpressionIntervalTest, FaithfulOpsAreWidenedButNotAcrossOne) {
  using expression_internal::Op;
  const Interval r = expression_internal::RangeBinary(Op::kPow, {0.95, 0.95}, {0, 100}).range;
  EXPECT_EQ(r.hi, 1.0);
  EXPECT_LT(r.lo, std::pow(0.95, 100));
  EXPECT_GT(r.lo, 0.0);
}

TEST(ExpressionIntervalTest, RefineSplitsADomainAtAConstant) {
  using expression_internal::Op;
  using expression_internal::Refine;
  const Domain steps{{0, 1000}, true};
  EXPECT_EQ(Refine(steps, Op::kLt, 100), (Interval{0, 99}));
  EXPECT_EQ(Refine(steps, Op::kGe, 99.5), (Interval{100, 1000}));
  EXPECT_TRUE(Refine(steps, Op::kEq, 0.5).empty());
  EXPECT_EQ(Refine(steps, Op::kNe, 0), (Interval{1, 1000}));
  EXPECT_EQ(Refine({{0, 1}, false}, Op::kLt, 1).hi, std::nextafter(1.0, 0.0));
}

}  // namespace
}  // namespace hpsched::core
