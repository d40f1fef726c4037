// Status propagation helpers shared by every layer.
#ifndef HPSCHED_CORE_STATUS_MACROS_H_
#define HPSCHED_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define HPSCHED_CONCAT_INNER_(a, b) a##b
#define HPSCHED_CONCAT_(a, b) HPSCHED_CONCAT_INNER_(a, b)

// Returns from the enclosing function with the status of `expr` if it is not OK.
#define RETURN_IF_ERROR(expr)                           \
  do {                                                  \
    if (absl::Status status_ = (expr); !status_.ok()) { \
      return status_;                                   \
    }                                                   \
  } while (false)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)   \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return std::move(tmp).status(); \
  lhs = std::move(*tmp)

// `ASSIGN_OR_RETURN(T x, StatusOrExpr());` assigns the value, or returns the error from the
// enclosing function.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(HPSCHED_CONCAT_(statusor_, __LINE__), lhs, expr)

#endif  // HPSCHED_CORE_STATUS_MACROS_H_
