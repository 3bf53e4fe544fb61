/**
 * @file hmb/log.h
 * @brief Diagnostics sink.
 *
 * The library reports noteworthy events (over-commit, deadlock-prevention
 * grants, long waits, leaks, misuse) through a callback the application
 * installs per pool (hmb_pool_config_t.log_fn) or process-wide
 * (hmb_set_log()). Messages are one line, without a trailing newline (text
 * that comes from the caller, such as runner names, has its control
 * characters replaced). Callbacks are never called while a library lock is
 * held, and may call back into hmb; a destroy re-entered from a sink during
 * the same object's destroy is refused (#HMB_ESTATE), never run twice.
 */
#ifndef HMB_LOG_H
#define HMB_LOG_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Severity of a diagnostic message; lower is more severe. */
typedef enum hmb_log_level {
  HMB_LOG_ERROR = 1, /**< misuse or leaks: something is wrong */
  HMB_LOG_WARN = 2,  /**< borrows beyond the limit, long waits */
  HMB_LOG_INFO = 3,  /**< lifecycle, progress-runner changes */
  HMB_LOG_DEBUG = 4  /**< per-operation detail, start timeouts (the normal
                          retry path) */
} hmb_log_level_t;

/**
 * Log callback. Must be thread-safe: it is called from any thread using the
 * library.
 * @param user    the pointer given at installation
 * @param level   an hmb_log_level_t
 * @param message one line, NUL-terminated, valid during the call
 */
typedef void (*hmb_log_fn)(void *user, int level, const char *message);

/**
 * Install the process-wide sink used by objects that have no pool (the
 * default allocator, buffers without a runner) and by pools configured
 * without a sink.
 * @param fn        the sink; NULL restores the default (messages at
 *                  #HMB_LOG_ERROR go to stderr, others are dropped)
 * @param user      passed to `fn`
 * @param max_level messages above it are not formatted at all
 *                  (0: #HMB_LOG_WARN)
 * @par Thread-safety
 * Thread-safe, but not meant to race with heavy logging: install it at
 * start-up.
 */
HMB_API void hmb_set_log(hmb_log_fn fn, void *user, int max_level);

#ifdef __cplusplus
}
#endif

#endif /* HMB_LOG_H */
