// What the service reports about its work, for whoever exports metrics (server/metrics).
// Implementations must be thread-safe and cheap: they are called on the GetValues path.
#ifndef HPSCHED_SERVICE_SERVICE_METRICS_H_
#define HPSCHED_SERVICE_SERVICE_METRICS_H_

#include <cstddef>
#include <cstdint>

namespace hpsched::service {

class ServiceMetrics {
 public:
  virtual ~ServiceMetrics() = default;
  // `count` values were returned by GetValues, BatchGetValues or Preview.
  virtual void ValuesServed(int64_t count) = 0;
  // The number of jobs after a mutation.
  virtual void JobCount(size_t jobs) = 0;
};

}  // namespace hpsched::service

#endif  // HPSCHED_SERVICE_SERVICE_METRICS_H_
