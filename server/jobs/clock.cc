#include "jobs/clock.h"

namespace hpsched::jobs {

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mutex_);
  return now_;
}

void FakeClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mutex_);
  now_ += d;
}

}  // namespace hpsched::jobs
