/*
 * lines.h - the one-line log messages of the ledger (grants beyond the
 * limit, progress-runner changes, timeouts, long waits). They take plain
 * values, so that the text sits apart from the rules and the ledger without
 * this module depending on either; the ledger calls them after releasing
 * the budget lock.
 */
#ifndef HMB_SRC_CORE_LINES_H
#define HMB_SRC_CORE_LINES_H

#include <stdint.h>

#include "core/log.h"

/* A grant of `need` bytes to runner `id` (`kind`: "start", "borrow",
 * "grow"): a borrow beyond the limit is logged (warn for the runner's first
 * one, debug after), and so is a runner becoming the progress runner (info;
 * `idle`: because nothing was running). */
void hmb__line_grant(const hmb__logger_t *lg, uint64_t id, const char *name,
                     const char *kind, int64_t need, int64_t beyond_added,
                     int64_t beyond_total, int first_beyond,
                     int became_progress, int idle, int64_t limit);

/* A wait that timed out (debug: the normal retry path of a start). */
void hmb__line_timeout(const hmb__logger_t *lg, uint64_t id, const char *name,
                       const char *kind, int64_t need, int64_t timeout_ns);

/* A wait longer than the pool's long_wait_ns (warn), with `desc` (the
 * pool's description, or ""). */
void hmb__line_long_wait(const hmb__logger_t *lg, uint64_t id, const char *name,
                         const char *kind, int64_t need, uint64_t waited_ns,
                         int running, const char *desc);

#endif /* HMB_SRC_CORE_LINES_H */
