// What a reduce_on_plateau schedule has made of its metric's reports so far: torch's scheduler
// state after the last report it took, carried from one plan to the next so that a report costs
// O(1) amortized, never a replay of the whole history (core/kinds/reduce_on_plateau.cc).
#ifndef HPSCHED_CORE_PLATEAU_STATE_H_
#define HPSCHED_CORE_PLATEAU_STATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/shared_log.h"

namespace hpsched::core {

// The parameters of torch.optim.lr_scheduler.ReduceLROnPlateau, for one parameter group.
struct PlateauParams {
  bool maximize = false;
  bool relative = true;
  double factor = 0.1;
  int64_t patience = 10;
  double threshold = 1e-4;
  int64_t cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;

  bool operator==(const PlateauParams&) const = default;
};

// Immutable once a plan holds it; shared between plans (its reductions share their storage).
struct PlateauState {
  // What the state depends on besides the reports: a later compile resumes from it only when all
  // of these are the same (else it replays the track from the start).
  std::string metric;
  PlateauParams params;
  double base = 0;
  int64_t time_offset = 0;

  // How many reports of the metric's track it has taken (those before time_offset count, and
  // change nothing), and the step of the last one (-1 for none).
  size_t taken = 0;
  int64_t last_step = -1;
  // torch's state: the group's lr, best, num_bad_epochs, cooldown_counter.
  double lr = 0;
  double best = 0;
  int64_t num_bad_epochs = 0;
  int64_t cooldown_counter = 0;
  // Every reduction so far: (the schedule's local step from which the value holds, the value),
  // increasing. The value before the first is `base`.
  SharedLog<std::pair<int64_t, double>> reductions;
};

// The plateau states of one series, by key (the schedule's field path and time offset), sorted.
using PlateauStates = std::vector<std::pair<std::string, std::shared_ptr<const PlateauState>>>;

}  // namespace hpsched::core

#endif  // HPSCHED_CORE_PLATEAU_STATE_H_
