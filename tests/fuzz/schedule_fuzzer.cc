// schedule_fuzzer: a Schedule as the server receives it, through validation and the evaluation
// core.
//
// Input: a serialized hpsched.v1.Schedule, or its proto3 JSON when the first non-blank byte is '{'
// (JSON that does not parse is then tried as binary). The schedule is converted
// (codec::ScheduleFromProto) and compiled (core::CompileStandalone) for 1 to 3 parameter groups
// whose base values are derived from a hash of the input and, as in Preview, pass
// core::CheckBaseValues first, and for a hyperparameter name derived from the same hash: "lr",
// a momentum name ("momentum", "beta1", which cyclic and one_cycle drive inversely) or another
// ("weight_decay", "dropout").
//
// Checks:
//   * an invalid spec is rejected with InvalidArgument naming a field under "schedule";
//   * a valid spec is evaluated over spans at step 0, around the steps its parameters name
//   (milestones, periods,
//     total_steps, ... shifted by the enclosing sequential milestones; the last of them always), at
//     a derived random step and at 2^53 - 64 (the span ends at the last valid step, 2^53 - 1); for
//     every value:
//       - it is finite (the rule; see HPSCHED_FUZZ_NONFINITE in fuzz_common.h),
//       - |value| <= Node::max_abs(), the bound the kind proved when it compiled (chained relies
//         on it to prove its product finite),
//       - the batched value (core::EvaluateBatch over the span) equals the one-at-a-time value
//         (Node::Evaluate over a span of 1) bit for bit,
//       - every slot of the span is written and evaluation is deterministic (two runs over buffers
//       pre-filled with
//         different garbage agree bit for bit).
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "codec/proto_convert.h"
#include "core/evaluator.h"
#include "core/job_plan.h"
#include "core/node.h"
#include "fuzz_common.h"
#include "hpsched/v1/schedule.pb.h"

namespace hpsched::fuzz {
namespace {

using core::kStepLimit;

// Base values the groups are given: mostly ordinary learning rates, sometimes values at the edges
// of what core::CheckBaseValues accepts (+-1e150, the smallest subnormal) and one it rejects
// (DBL_MAX).
constexpr double kBases[] = {
    0.1,
    1.0,
    0.01,
    0.003,
    0.5,
    1e-4,
    2.0,
    0.0,
    -0.1,
    1e-8,
    100.0,
    3.0,
    1e150,
    -1e150,
    std::numeric_limits<double>::denorm_min(),
    std::numeric_limits<double>::max(),
};
static_assert(std::size(kBases) == 16);

// The hyperparameter names a schedule is compiled for: kinds that drive more than one
// hyperparameter (PyTorch's CyclicLR and OneCycleLR) give another curve under a momentum name.
constexpr const char* kHyperparameters[] = {"lr", "momentum", "beta1", "weight_decay", "dropout"};

const char* DeriveHyperparameter(Derived& d) {
  return kHyperparameters[d.Next() % std::size(kHyperparameters)];
}

std::vector<double> DeriveBases(Derived& d) {
  std::vector<double> bases(1 + d.Next() % 3);
  for (double& b : bases) b = kBases[d.Next() % 16];
  return bases;
}

void AddPoint(int64_t offset, int64_t value, std::vector<int64_t>* points) {
  if (value < 0 || value >= kStepLimit) return;
  const int64_t p = offset + value;  // Both < 2^53: no overflow.
  if (p < kStepLimit) points->push_back(p);
}

// The steps a spec's parameters name: every integer parameter, the integer part of every real
// parameter, the phase ends of one_cycle, on the global time line (children of sequential start at
// their milestone).
void CollectPoints(const core::ScheduleSpec& spec, int64_t offset, std::vector<int64_t>* points) {
  for (const auto& [name, value] : spec.params) {
    if (const auto* v = std::get_if<int64_t>(&value)) {
      AddPoint(offset, *v, points);
    } else if (const auto* list = std::get_if<std::vector<int64_t>>(&value)) {
      for (size_t i = 0; i < list->size() && i < 64; ++i) AddPoint(offset, (*list)[i], points);
      if (list->size() > 64) AddPoint(offset, list->back(), points);
    } else if (const auto* x = std::get_if<double>(&value)) {
      if (*x >= 1 && *x < 4.0 * kStepLimit) {
        AddPoint(offset, static_cast<int64_t>(*x), points);
        AddPoint(offset, static_cast<int64_t>(*x * 2), points);
      }
    }
  }
  const auto total = spec.params.find("total_steps");
  const auto pct = spec.params.find("pct_start");
  if (total != spec.params.end() && pct != spec.params.end()) {
    const auto* n = std::get_if<int64_t>(&total->second);
    const auto* f = std::get_if<double>(&pct->second);
    if (n != nullptr && f != nullptr && *n > 0 && *n<kStepLimit&& * f> 0 && *f <= 1) {
      AddPoint(offset, static_cast<int64_t>(*f * static_cast<double>(*n)), points);
      AddPoint(offset, static_cast<int64_t>(2 * *f * static_cast<double>(*n)), points);
    }
  }
  std::vector<int64_t> milestones;
  if (spec.kind == "sequential") {
    if (const auto it = spec.params.find("milestones"); it != spec.params.end()) {
      if (const auto* m = std::get_if<std::vector<int64_t>>(&it->second)) milestones = *m;
    }
  }
  for (size_t i = 0; i < spec.children.size(); ++i) {
    int64_t child_offset = offset;
    if (i > 0 && i - 1 < milestones.size()) {
      const int64_t m = milestones[i - 1];
      if (m < 0 || m >= kStepLimit || offset + m >= kStepLimit) continue;
      child_offset = offset + m;
    }
    CollectPoints(spec.children[i], child_offset, points);
  }
}

std::string KindTree(const core::ScheduleSpec& spec, int depth = 0) {
  std::string out = spec.kind.empty() ? "?" : spec.kind.str();
  if (!spec.children.empty() && depth < 3) {
    std::vector<std::string> children;
    for (const auto& child : spec.children) children.push_back(KindTree(child, depth + 1));
    std::sort(children.begin(), children.end());
    children.erase(std::unique(children.begin(), children.end()), children.end());
    absl::StrAppend(&out, "(", absl::StrJoin(children, ","), ")");
  }
  return out;
}

// Whether a base value is one of the edges of kBases (|b| >= 1e100, or subnormal): findings are
// grouped apart from those with ordinary base values.
bool ExtremeBase(const std::vector<double>& bases) {
  for (double b : bases) {
    if (std::fabs(b) >= 1e100 || (b != 0 && std::fabs(b) < std::numeric_limits<double>::min()))
      return true;
  }
  return false;
}

struct Window {
  int64_t start;
  size_t length;
};

Window Around(int64_t point, size_t length, size_t before) {
  int64_t start = std::max<int64_t>(0, point - static_cast<int64_t>(before));
  start = std::min<int64_t>(start, kStepLimit - static_cast<int64_t>(length));
  return {start, length};
}

std::vector<Window> Windows(const core::ScheduleSpec& spec, Derived& d) {
  std::vector<int64_t> points;
  CollectPoints(spec, 0, &points);
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  std::vector<Window> windows;
  windows.push_back({0, 300});  // Crosses the 64-lane and 256-step chunks of lambda and chained.
  if (!points.empty())
    windows.push_back(Around(points.back(), 300, 150));  // The last milestone's region.
  // Up to 6 more of the named steps, picked by the input's hash.
  for (int i = 0; i < 6 && !points.empty(); ++i) {
    windows.push_back(Around(points[d.Next() % points.size()], 70, 5));
  }
  windows.push_back({static_cast<int64_t>(d.Next() % static_cast<uint64_t>(kStepLimit - 70)), 70});
  windows.push_back({kStepLimit - 64, 64});  // Ends at 2^53 - 1, the last valid step.
  return windows;
}

std::string SpecDescription(const hpsched::v1::Schedule& proto, const std::vector<double>& bases,
                            const char* hyperparameter) {
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(proto, &json);
  std::vector<std::string> b;
  for (double v : bases) b.push_back(Describe(v));
  return absl::StrCat("hyperparameter: ", hyperparameter, "\nschedule: ", json, "\nbase_values: [",
                      absl::StrJoin(b, ", "), "]");
}

void CheckNode(const core::Node& node, const Window& w, const hpsched::v1::Schedule& proto,
               const core::ScheduleSpec& spec, const std::vector<double>& bases,
               const char* hyperparameter, size_t group) {
  std::vector<double> batched(w.length, std::numeric_limits<double>::signaling_NaN());
  std::vector<double> again(w.length, -12345.678);
  const core::EvalQuery queries[] = {{&node, w.start, std::span<double>(batched)},
                                     {&node, w.start, std::span<double>(again)}};
  FUZZ_CHECK(core::CheckStepRange(w.start, static_cast<int64_t>(w.length), "step", "count").ok(),
             absl::StrCat("bad window ", w.start, "+", w.length));
  core::EvaluateBatch(queries);
  for (size_t i = 0; i < w.length; ++i) {
    const int64_t step = w.start + static_cast<int64_t>(i);
    double single = 0;
    node.Evaluate(step, std::span<double>(&single, 1));
    auto where = [&] {
      return absl::StrCat(SpecDescription(proto, bases, hyperparameter), "\ngroup: ", group,
                          "\nstep: ", step, "\nspan: [", w.start, ", ",
                          w.start + static_cast<int64_t>(w.length), ")");
    };
    if (!SameValue(batched[i], again[i])) {
      Fail(absl::StrCat("unwritten or nondeterministic value\n", where(), "\nfirst run: ",
                        Describe(batched[i]), "\nsecond run: ", Describe(again[i])));
    }
    if (!SameValue(batched[i], single)) {
      Fail(absl::StrCat("batched != one-at-a-time\n", where(), "\nbatched: ", Describe(batched[i]),
                        "\none-at-a-time: ", Describe(single)));
    }
    if (std::isfinite(batched[i]) && !(std::fabs(batched[i]) <= node.max_abs())) {
      Fail(absl::StrCat("value outside the node's proven bound\n", where(), "\nvalue: ",
                        Describe(batched[i]), "\nmax_abs: ", Describe(node.max_abs())));
    }
    if (!std::isfinite(batched[i]) && GetNonFinitePolicy() != NonFinitePolicy::kIgnore) {
      NonFinite(absl::StrCat(KindTree(spec), ":", std::isnan(batched[i]) ? "nan" : "inf",
                             ExtremeBase(bases) ? ":extreme-base" : ""),
                [&] { return absl::StrCat(where(), "\nvalue: ", Describe(batched[i])); });
    }
  }
}

}  // namespace
}  // namespace hpsched::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hpsched::fuzz;  // NOLINT
  if (size > 64 * 1024) return -1;
  hpsched::v1::Schedule proto;
  bool parsed = false;
  if (LooksLikeJson(data, size)) {
    parsed = google::protobuf::util::JsonStringToMessage(
                 std::string(reinterpret_cast<const char*>(data), size), &proto)
                 .ok();
  }
  if (!parsed) {
    proto.Clear();
    if (!proto.ParseFromArray(data, static_cast<int>(size))) return -1;
  }
  const hpsched::core::ScheduleSpec spec = hpsched::codec::ScheduleFromProto(proto);
  Derived d(Hash(data, size));
  const std::vector<double> bases = DeriveBases(d);
  const char* hyperparameter = DeriveHyperparameter(d);
  // As Preview and the CLI do: base values are checked before the schedule.
  if (const absl::Status status = hpsched::core::CheckBaseValues(bases, "base_values");
      !status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, status.ToString());
    return 0;
  }
  auto nodes = hpsched::core::CompileStandalone(spec, bases, "schedule", hyperparameter);
  if (!nodes.ok()) {
    FUZZ_CHECK(nodes.status().code() == absl::StatusCode::kInvalidArgument,
               nodes.status().ToString());
    FUZZ_CHECK(absl::StartsWith(nodes.status().message(), "schedule"), nodes.status().ToString());
    return 0;
  }
  FUZZ_CHECK(nodes->size() == bases.size(), "one node per base value");
  const std::vector<Window> windows = Windows(spec, d);
  for (size_t g = 0; g < nodes->size(); ++g) {
    for (const Window& w : windows)
      CheckNode(*(*nodes)[g], w, proto, spec, bases, hyperparameter, g);
  }
  return 0;
}
