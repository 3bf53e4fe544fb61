/*
 * log.h - the core's diagnostics: a logger per pool, the process-wide sink,
 * and one-line text.
 *
 * A logger is a (function, user, level) triple copied into each pool; a
 * pool without its own function uses the process-wide sink. Messages are
 * formatted only if they pass the level filter, and the sink is called with
 * no library lock held: callers must not log while holding one.
 */
#ifndef HMB_SRC_CORE_LOG_H
#define HMB_SRC_CORE_LOG_H

#include <stddef.h>

#include "hmb/log.h"
#include "platform/util.h"

typedef struct hmb__logger {
  hmb_log_fn fn; /* NULL: the process-wide sink */
  void *user;
  int level;
} hmb__logger_t;

/* Format and emit one message if `level` passes the logger's filter. */
void hmb__log(const hmb__logger_t *lg, int level, const char *fmt, ...)
    HMB__PRINTF(3, 4);
int hmb__log_enabled(const hmb__logger_t *lg, int level);

/*
 * Copy caller-supplied text (a runner name) into dst[0..len), NUL-terminated
 * and truncated, with every control character replaced by '?', so that a
 * log message stays one line.
 */
void hmb__text_clean(char *dst, size_t len, const char *src);

#endif /* HMB_SRC_CORE_LOG_H */
