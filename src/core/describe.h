/*
 * describe.h - the text the core writes: hmb_pool_describe(), the log
 * lines of grants, timeouts and long waits, and the leak report. Kept apart
 * from the rules (admission.c) and the ledger (ledger.c), which only call
 * these with what happened, after releasing the budget lock.
 */
#ifndef HMB_SRC_CORE_DESCRIBE_H
#define HMB_SRC_CORE_DESCRIBE_H

#include <stdint.h>

#include "core/ledger.h"

/* A grant of `need` to `a` (`kind` "start", "borrow", "grow"): logs
 * borrows beyond the limit (warn, once per runner; debug after) and
 * progress-runner changes (info). */
void hmb__log_grant(const hmb__ledger_t *L, const hmb__acct_t *a,
                    const char *kind, int64_t need, const hmb__grant_t *g);
/* A wait that timed out (debug: the normal retry path of a start). */
void hmb__log_timeout(const hmb__ledger_t *L, const hmb__acct_t *a,
                      const char *kind, int64_t need, int64_t timeout_ns);
/* A wait longer than long_wait_ns (warn, once per request). */
void hmb__log_long_wait(const hmb__ledger_t *L, const hmb__acct_t *a,
                        const char *kind, int64_t need, uint64_t waited_ns,
                        int running);
/* The pool is being destroyed with runners left: one line each. Returns
 * the number of runners reported. */
int hmb__log_leaks(hmb_pool_t *pool);

#endif /* HMB_SRC_CORE_DESCRIBE_H */
