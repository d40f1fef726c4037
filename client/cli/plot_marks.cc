#include "client/cli/plot_marks.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace hpsched::cli {
namespace {

namespace v1 = ::hpsched::v1;

// Steps above this are outside any schedule (2^53).
constexpr double kStepLimit = 9007199254740992.0;

class MarkCollector {
 public:
  explicit MarkCollector(std::vector<Mark>* out) : out_(out) {}

  bool Full() const { return count_ >= kMaxMarks; }

  // A mark at `step` if it is in [lo, hi).
  void Add(double step, MarkKind kind, absl::string_view label, double lo, double hi) {
    if (!std::isfinite(step)) return;
    const double nearest = std::round(step);
    if (std::abs(step - nearest) < 1e-6) step = nearest;
    if (step < lo || step >= hi || Full()) return;
    out_->push_back(Mark{step, kind, std::string(label)});
    ++count_;
  }

  // Marks at offset + phase + k * period for k >= k_min, inside [lo, hi).
  void AddPeriodic(double offset, double phase, double period, double k_min, MarkKind kind,
                   absl::string_view label, double lo, double hi) {
    if (!(period > 0) || !std::isfinite(period) || !std::isfinite(phase)) return;
    double k = std::max(k_min, std::ceil((lo - offset - phase) / period - 1e-9));
    for (; !Full(); ++k) {
      const double step = offset + phase + k * period;
      if (step >= hi || step > kStepLimit) break;
      Add(step, kind, label, lo, hi);
    }
  }

 private:
  std::vector<Mark>* out_;
  int count_ = 0;
};

void Collect(const v1::Schedule& schedule, double offset, double lo, double hi,
             MarkCollector* marks) {
  if (lo >= hi || marks->Full()) return;
  switch (schedule.kind_case()) {
    case v1::Schedule::kSequential: {
      const auto& seq = schedule.sequential();
      for (int i = 0; i < seq.schedules_size(); ++i) {
        const double start = i == 0 ? 0 : static_cast<double>(seq.milestones(i - 1));
        const double end =
            i < seq.milestones_size() ? static_cast<double>(seq.milestones(i)) : kStepLimit;
        if (i > 0) marks->Add(offset + start, MarkKind::kMilestone, "milestone", lo, hi);
        Collect(seq.schedules(i), offset + start, std::max(lo, offset + start),
                std::min(hi, offset + end), marks);
      }
      break;
    }
    case v1::Schedule::kChained:
      for (const auto& child : schedule.chained().schedules())
        Collect(child, offset, lo, hi, marks);
      break;
    case v1::Schedule::kMultiStep:
      for (const int64_t m : schedule.multi_step().milestones()) {
        marks->Add(offset + static_cast<double>(m), MarkKind::kMilestone, "milestone", lo, hi);
      }
      break;
    case v1::Schedule::kStep:
      marks->AddPeriodic(offset, 0, static_cast<double>(schedule.step().step_size()), 1,
                         MarkKind::kDecay, "decay", lo, hi);
      break;
    case v1::Schedule::kCosineAnnealing:
      marks->AddPeriodic(offset, 0, static_cast<double>(schedule.cosine_annealing().t_max()), 1,
                         MarkKind::kPhase, "t_max", lo, hi);
      break;
    case v1::Schedule::kCosineAnnealingWarmRestarts: {
      const auto& cawr = schedule.cosine_annealing_warm_restarts();
      const int64_t t_0 = cawr.t_0();
      const int64_t t_mult = cawr.has_t_mult() ? cawr.t_mult() : 1;
      if (t_0 <= 0 || t_mult < 1) break;
      if (t_mult == 1) {
        marks->AddPeriodic(offset, 0, static_cast<double>(t_0), 1, MarkKind::kRestart, "restart",
                           lo, hi);
        break;
      }
      double boundary = static_cast<double>(t_0);
      double length = static_cast<double>(t_0) * static_cast<double>(t_mult);
      while (offset + boundary < hi && boundary <= kStepLimit && !marks->Full()) {
        marks->Add(offset + boundary, MarkKind::kRestart, "restart", lo, hi);
        boundary += length;
        length *= static_cast<double>(t_mult);
      }
      break;
    }
    case v1::Schedule::kOneCycle: {
      const auto& oc = schedule.one_cycle();
      double n = 0;
      if (oc.has_total_steps()) {
        n = static_cast<double>(oc.total_steps());
      } else if (oc.has_epochs() && oc.has_steps_per_epoch()) {
        n = static_cast<double>(oc.epochs()) * static_cast<double>(oc.steps_per_epoch());
      }
      if (!(n > 1)) break;
      const double pct = oc.has_pct_start() ? oc.pct_start() : 0.3;
      marks->Add(offset + pct * n - 1, MarkKind::kPhase, "peak", lo, hi);
      if (oc.three_phase()) {
        marks->Add(offset + 2 * pct * n - 2, MarkKind::kPhase, "valley", lo, hi);
      }
      marks->Add(offset + n - 1, MarkKind::kPhase, "end", lo, hi);
      break;
    }
    case v1::Schedule::kCyclic: {
      const auto& cyc = schedule.cyclic();
      const double up = cyc.has_step_size_up() ? cyc.step_size_up() : 2000.0;
      const double down = cyc.has_step_size_down() ? cyc.step_size_down() : up;
      if (!(up > 0) || !(down > 0)) break;
      // Peaks and troughs alternate; interleave them so a long range is capped evenly.
      const double total = up + down;
      double k = std::max(0.0, std::floor((lo - offset) / total));
      for (; !marks->Full() && offset + k * total < hi && k * total <= kStepLimit; ++k) {
        marks->Add(offset + k * total + up, MarkKind::kPhase, "peak", lo, hi);
        marks->Add(offset + (k + 1) * total, MarkKind::kPhase, "trough", lo, hi);
      }
      break;
    }
    case v1::Schedule::kLinear:
      marks->Add(offset + static_cast<double>(schedule.linear().has_total_iters()
                                                  ? schedule.linear().total_iters()
                                                  : 5),
                 MarkKind::kPhase, "end", lo, hi);
      break;
    case v1::Schedule::kConstant: {
      const int64_t total =
          schedule.constant().has_total_iters() ? schedule.constant().total_iters() : 5;
      if (total > 0)
        marks->Add(offset + static_cast<double>(total), MarkKind::kPhase, "end", lo, hi);
      break;
    }
    case v1::Schedule::kPolynomial:
      marks->Add(offset + static_cast<double>(schedule.polynomial().has_total_iters()
                                                  ? schedule.polynomial().total_iters()
                                                  : 5),
                 MarkKind::kPhase, "end", lo, hi);
      break;
    default:  // exponential, lambda, unset: nothing to mark.
      break;
  }
}

bool IsJobEvent(MarkKind kind) {
  return kind == MarkKind::kUpdate || kind == MarkKind::kPlateauReduction;
}

// Events of a job first, then the schedule's kinds in MarkKind order.
int Precedence(MarkKind kind) {
  return IsJobEvent(kind) ? static_cast<int>(kind) - 100 : static_cast<int>(kind);
}

}  // namespace

std::vector<Mark> MergeMarks(std::vector<Mark> a, std::span<const Mark> b) {
  a.insert(a.end(), b.begin(), b.end());
  std::stable_sort(a.begin(), a.end(), [](const Mark& x, const Mark& y) {
    if (x.step != y.step) return x.step < y.step;
    return Precedence(x.kind) < Precedence(y.kind);
  });
  a.erase(std::unique(a.begin(), a.end(),
                      [](const Mark& x, const Mark& y) { return x.step == y.step; }),
          a.end());
  return a;
}

std::vector<Mark> ScheduleMarks(const v1::Schedule& schedule, double lo, double hi) {
  return ScheduleMarksAt(schedule, 0, lo, hi);
}

std::vector<Mark> ScheduleMarksAt(const v1::Schedule& schedule, double offset, double lo,
                                  double hi) {
  std::vector<Mark> marks;
  MarkCollector collector(&marks);
  Collect(schedule, offset, lo, hi, &collector);
  return MergeMarks(std::move(marks), {});
}

std::vector<Mark> HyperparameterMarks(const v1::Hyperparameter& hp, double lo, double hi) {
  // The pieces of the hyperparameter's timeline: from `start` on it follows `schedule` (none for
  // pinned values) started at `offset`.
  struct Piece {
    double start;
    const v1::Schedule* schedule;
    double offset;
  };
  std::vector<Piece> pieces = {{0, &hp.schedule(), 0}};
  for (const v1::Segment& segment : hp.segments()) {
    const double at = static_cast<double>(segment.effective_step());
    if (segment.change_case() == v1::Segment::kScale) continue;  // Scales what was there.
    while (!pieces.empty() && pieces.back().start >= at) pieces.pop_back();
    if (segment.has_schedule()) {
      const double offset = segment.time() == v1::SEGMENT_TIME_GLOBAL ? 0 : at;
      pieces.push_back({at, &segment.schedule(), offset});
    } else {
      pieces.push_back({at, nullptr, 0});
    }
  }
  std::vector<Mark> marks;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].schedule == nullptr) continue;
    const double end = i + 1 < pieces.size() ? pieces[i + 1].start : kStepLimit;
    const double piece_lo = std::max(lo, pieces[i].start);
    const double piece_hi = std::min(hi, end);
    if (piece_lo >= piece_hi) continue;
    std::vector<Mark> piece =
        ScheduleMarksAt(*pieces[i].schedule, pieces[i].offset, piece_lo, piece_hi);
    marks.insert(marks.end(), piece.begin(), piece.end());
  }
  return MergeMarks(std::move(marks), {});
}

std::vector<Mark> EventMarks(std::span<const JobEvent> events, double lo, double hi) {
  std::vector<Mark> marks;
  for (const JobEvent& e : events) {
    const double step = static_cast<double>(e.step);
    if (step < lo || step >= hi) continue;
    marks.push_back(
        Mark{step, e.kind, e.detail.empty() ? std::string(MarkKindName(e.kind)) : e.detail});
  }
  return MergeMarks(std::move(marks), {});
}

std::vector<Mark> DrawableMarks(std::span<const Mark> marks, double x_lo, double x_hi, int columns,
                                int min_spacing, std::vector<HiddenMarks>* hidden) {
  constexpr int kKinds = static_cast<int>(MarkKind::kPlateauReduction) + 1;
  int counts[kKinds] = {};
  for (const Mark& m : marks) {
    if (m.step >= x_lo && m.step <= x_hi) ++counts[static_cast<int>(m.kind)];
  }
  const int limit = std::max(1, columns / std::max(1, min_spacing));
  std::vector<Mark> out;
  auto dense = [&](MarkKind kind) {
    return !IsJobEvent(kind) && counts[static_cast<int>(kind)] > limit;
  };
  for (const Mark& m : marks) {
    if (m.step >= x_lo && m.step <= x_hi && !dense(m.kind)) out.push_back(m);
  }
  if (hidden != nullptr) {
    hidden->clear();
    for (int k = 0; k < kKinds; ++k) {
      if (dense(static_cast<MarkKind>(k))) {
        hidden->push_back(HiddenMarks{static_cast<MarkKind>(k), counts[k]});
      }
    }
  }
  return out;
}

std::string ScheduleTitle(const v1::Schedule& schedule) {
  const auto* field = v1::Schedule::descriptor()->FindFieldByNumber(schedule.kind_case());
  if (field == nullptr) return "schedule";
  const google::protobuf::RepeatedPtrField<v1::Schedule>* children = nullptr;
  if (schedule.has_sequential()) children = &schedule.sequential().schedules();
  if (schedule.has_chained()) children = &schedule.chained().schedules();
  if (children == nullptr) return field->name();
  std::vector<std::string> names;
  for (const auto& child : *children) names.push_back(ScheduleTitle(child));
  return absl::StrCat(field->name(), "(", absl::StrJoin(names, ", "), ")");
}

}  // namespace hpsched::cli
