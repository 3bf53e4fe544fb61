/*
 * pool.h (core) - the pool object: a home for runners (core/runner.h: the
 * ledger with the registry of runners, the memory, the log, idle waits, the
 * usage gauge), plus the pressure handlers and the destroy guard.
 *
 * Writers: the ledger owns its fields, the registry of runners among them
 * (ledger.c); runner.c the idle state and usage gauge; pool.c the rest.
 * Lock order: the budget lock (ledger), then leaf locks (idle, pressure
 * set, memory layer).
 */
#ifndef HMB_SRC_CORE_POOL_H
#define HMB_SRC_CORE_POOL_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/pressure.h"
#include "core/runner.h"

struct hmb_pool {
  hmb__home_t home; /* first: what runners see (hmb__home_of()) */
  size_t alignment;
  hmb__pressure_set_t *pressure;
  _Atomic int destroying; /* a destroy is in progress (re-entry guard) */
};

#endif /* HMB_SRC_CORE_POOL_H */
