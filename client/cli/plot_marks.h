// Vertical markers of a plot, derived from a schedule's parameters rather than from its curve (a
// curve cannot tell a restart from a steep fall, or a milestone between two equal values).
#ifndef HPSCHED_CLIENT_CLI_PLOT_MARKS_H_
#define HPSCHED_CLIENT_CLI_PLOT_MARKS_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "client/cli/plot_model.h"
#include "hpsched/v1/job.pb.h"
#include "hpsched/v1/schedule.pb.h"

namespace hpsched::cli {

// At most this many marks come from one schedule; periodic ones (step, cyclic, restarts with t_mult
// 1) stop there on long ranges.
inline constexpr int kMaxMarks = 2000;

// The marks of `schedule` at steps in [lo, hi), sorted by step, one per step (the first kind in
// MarkKind order wins). ScheduleMarksAt: the same for a schedule that starts at step `offset`.
// Walks the Schedule proto:
//   sequential: each milestone (kMilestone), and each child's marks shifted by its start and
//               restricted to its segment [milestones[i-1], milestones[i])
//   chained: every child's marks
//   multi_step: each milestone (kMilestone)
//   step: every multiple of step_size (kDecay)
//   cosine_annealing_warm_restarts: every restart t_0, t_0 + t_0 * t_mult, ... (kRestart)
//   cosine_annealing: every multiple of t_max, where the unclamped cosine turns (kPhase "t_max")
//   one_cycle: the end of each phase, "peak" (pct_start * N - 1), "valley" (three_phase,
//              2 * pct_start * N - 2) and "end" (N - 1, the value holds from there) (kPhase)
//   cyclic: the end of each half cycle, "peak" and "trough" (kPhase)
//   linear, constant, polynomial: "end" at total_iters, where the value stops changing (kPhase)
//   exponential, lambda: none.
// Defaults are PyTorch's, as in schedule.proto. A step within 1e-6 of an integer is that integer.
std::vector<Mark> ScheduleMarks(const hpsched::v1::Schedule& schedule, double lo, double hi);
std::vector<Mark> ScheduleMarksAt(const hpsched::v1::Schedule& schedule, double offset, double lo,
                                  double hi);

// The marks of a job's hyperparameter at steps in [lo, hi): those of `hp.schedule` until the first
// segment that replaced it, then those of each segment's schedule (offset by its effective_step on
// local time), each ending where the next segment that replaced it begins. A pinned segment has no
// marks; a scale segment keeps the marks of what it scales. Segments are applied in the order they
// were made, each replacing every earlier one from its effective_step on (job.proto).
std::vector<Mark> HyperparameterMarks(const hpsched::v1::Hyperparameter& hp, double lo, double hi);

// Marks that come from a job's history rather than its spec: `hpsched plot` reads the job's
// segments (Hyperparameter.segments, kUpdate) and plateau reductions
// (Hyperparameter.plateau_reductions, kPlateauReduction) as JobEvents and merges EventMarks with
// ScheduleMarks via MergeMarks.
struct JobEvent {
  int64_t step = 0;
  MarkKind kind = MarkKind::kUpdate;
  std::string detail;  // Drawn as the mark's label, e.g. "v3" or "x0.1".
};
std::vector<Mark> EventMarks(std::span<const JobEvent> events, double lo, double hi);

// `a` and `b` merged: sorted by step, one per step. A job's events (kUpdate, then
// kPlateauReduction) win over the marks of a schedule at the same step; among those, the first kind
// in MarkKind order.
std::vector<Mark> MergeMarks(std::vector<Mark> a, std::span<const Mark> b);

// The marks a renderer draws on a plot `columns` wide (pixels or terminal dots) over steps
// [x_lo, x_hi]: those in range, except schedule kinds with more marks than one per `min_spacing`
// columns on average (step_size 1 over a million steps), which are left out whole and counted in
// `hidden`. A job's events (updates, plateau reductions) are always drawn, however dense.
struct HiddenMarks {
  MarkKind kind;
  int count;
};
std::vector<Mark> DrawableMarks(std::span<const Mark> marks, double x_lo, double x_hi, int columns,
                                int min_spacing, std::vector<HiddenMarks>* hidden);

// A short name of the schedule for titles: "step", "sequential(linear, cosine_annealing)".
std::string ScheduleTitle(const hpsched::v1::Schedule& schedule);

}  // namespace hpsched::cli

#endif  // HPSCHED_CLIENT_CLI_PLOT_MARKS_H_
