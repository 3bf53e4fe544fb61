/*
 * describe.h - the pool's description (hmb_pool_describe(), in hmb/pool.h)
 * and its leak report: text about the pool as a whole, above the ledger and
 * the runners it reads. The ledger's own lines are in lines.h.
 */
#ifndef HMB_SRC_CORE_DESCRIBE_H
#define HMB_SRC_CORE_DESCRIBE_H

#include "hmb/pool.h"

/* The pool is being destroyed with runners left: one line each. Returns
 * the number of runners reported. */
int hmb__log_leaks(hmb_pool_t *pool);

#endif /* HMB_SRC_CORE_DESCRIBE_H */
