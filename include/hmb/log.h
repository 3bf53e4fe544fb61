/*
 * hmb/log.h - diagnostics sink.
 *
 * The library reports noteworthy events (over-commit, deadlock-prevention
 * grants, long waits, leaks, misuse) through a callback the application
 * installs per pool (hmb_pool_config_t.log_fn) or process-wide
 * (hmb_set_log()). Messages are one line, without a trailing newline.
 * Callbacks are never called while a library lock is held.
 */
#ifndef HMB_LOG_H
#define HMB_LOG_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Severity of a diagnostic message; lower is more severe. */
typedef enum hmb_log_level {
  HMB_LOG_ERROR = 1, /* misuse or leaks: something is wrong */
  HMB_LOG_WARN = 2,  /* over-commit (idle start or deadlock prevention),
                        long waits, timeouts */
  HMB_LOG_INFO = 3,  /* lifecycle */
  HMB_LOG_DEBUG = 4  /* per-operation detail */
} hmb_log_level_t;

/*
 * Log callback: `user` is the pointer given at installation. Must be
 * thread-safe: it is called from any thread using the library.
 */
typedef void (*hmb_log_fn)(void *user, int level, const char *message);

/*
 * Install the process-wide sink used by objects that have no pool (the
 * default allocator, buffers without a runner) and by pools configured
 * without a sink. `fn` NULL restores the default: messages at
 * HMB_LOG_ERROR go to stderr, others are dropped. Messages above
 * `max_level` (0: HMB_LOG_WARN) are not formatted at all.
 * Thread-safe, but not meant to race with heavy logging: install it at
 * start-up.
 */
HMB_API void hmb_set_log(hmb_log_fn fn, void *user, int max_level);

#ifdef __cplusplus
}
#endif

#endif /* HMB_LOG_H */
