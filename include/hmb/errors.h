/**
 * @file hmb/errors.h
 * @brief The one list of status codes.
 *
 * Every fallible call returns an int: 0 on success, one of the negative
 * HMB_E* codes below on failure. Results come back through out-parameters.
 * Codes are distinct where callers react differently: running out of time
 * (retry later), being cancelled (stop), calling in the wrong state (a bug in
 * the caller), and a failed physical allocation (memory, not budget, ran out).
 *
 * The numeric values are part of the ABI and never change once released; new
 * codes are only appended.
 */
#ifndef HMB_ERRORS_H
#define HMB_ERRORS_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** X(name, value, message): the single source of codes and their text. */
#define HMB_ERRNO_MAP(X)                                                       \
  X(OK, 0, "success")                                                          \
  X(EINVAL, -1, "invalid argument")                                            \
  X(ENOMEM, -2, "physical memory allocation failed")                           \
  X(ETIMEDOUT, -3, "timed out waiting for budget")                             \
  X(ECANCELED, -4, "operation cancelled")                                      \
  X(ESTATE, -5, "operation not valid in the current state")                    \
  X(ETOOBIG, -6,                                                               \
    "request can never be satisfied (larger than the pool allows)")            \
  X(EBUSY, -7, "resource still in use")                                        \
  X(ENOTSUP, -8, "not supported by this build or machine")                     \
  X(ESHUTDOWN, -9, "executor is shutting down")                                \
  X(EFAILED, -10, "task failed")                                               \
  X(ELIMIT, -11, "request would exceed the pool's over-commit cap")

/** Status codes. #HMB_OK is 0; every error is negative. */
typedef enum hmb_status {
#define HMB__ERRNO_ENUM(name, value, msg) HMB_##name = (value),
  HMB_ERRNO_MAP(HMB__ERRNO_ENUM)
#undef HMB__ERRNO_ENUM
} hmb_status_t;

/**
 * Human-readable message for a status code.
 * @param status a status code
 * @return a static string; "unknown error" for an unknown code; never NULL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API const char *hmb_strerror(int status);

/**
 * The code's symbolic name ("HMB_ETIMEDOUT").
 * @param status a status code
 * @return a static string; "HMB_UNKNOWN" for an unknown code; never NULL
 * @par Thread-safety
 * Thread-safe.
 */
HMB_API const char *hmb_errname(int status);

#ifdef __cplusplus
}
#endif

#endif /* HMB_ERRORS_H */
