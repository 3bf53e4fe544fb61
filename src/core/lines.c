/*
 * lines.c - the ledger's log lines (see lines.h).
 */
#include "core/lines.h"

#include <inttypes.h>

void hmb__line_grant(const hmb__logger_t *lg, uint64_t id, const char *name,
                     const char *kind, int64_t need, int64_t beyond_added,
                     int64_t beyond_total, int first_beyond,
                     int became_progress, int idle, int64_t limit) {
  if (became_progress)
    hmb__log(lg, HMB_LOG_INFO,
             "runner #%" PRIu64 " '%s' is now the progress runner (%s); until "
             "it stops running it alone may be granted budget beyond the "
             "limit of %" PRId64,
             id, name,
             idle ? "no runner was running"
                  : "every running runner waited to borrow",
             limit);
  if (beyond_added <= 0)
    return;
  hmb__log(lg, first_beyond ? HMB_LOG_WARN : HMB_LOG_DEBUG,
           "over-commit: progress runner #%" PRIu64 " '%s' was granted a %s "
           "of %" PRId64 " bytes, %" PRId64 " of them beyond the limit of "
           "%" PRId64 " (it now holds %" PRId64 " beyond)",
           id, name, kind, need, beyond_added, limit, beyond_total);
}

void hmb__line_timeout(const hmb__logger_t *lg, uint64_t id, const char *name,
                       const char *kind, int64_t need, int64_t timeout_ns) {
  hmb__log(lg, HMB_LOG_DEBUG,
           "timeout: runner #%" PRIu64 " '%s' could not %s %" PRId64
           " bytes within %" PRId64 " us",
           id, name, kind, need, timeout_ns / 1000);
}

void hmb__line_long_wait(const hmb__logger_t *lg, uint64_t id, const char *name,
                         const char *kind, int64_t need, uint64_t waited_ns,
                         int running, const char *desc) {
  hmb__log(lg, HMB_LOG_WARN,
           "runner #%" PRIu64 " '%s' has waited %" PRIu64 " ms to %s %" PRId64
           " bytes (%d running); %s",
           id, name, waited_ns / 1000000u, kind, need, running, desc);
}
