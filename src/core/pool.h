/*
 * pool.h (core) - the pool object: the ledger, the memory, the runner
 * registry, idle waits, the pressure handlers and the usage gauge.
 *
 * Writers: the ledger owns its fields (ledger.c); pool.c owns the registry,
 * the idle wait state and the destroy guard; runner.c folds its usage into
 * `usage` (through shard.h). Lock order: registry lock, then the budget lock
 * (ledger), then leaf locks (idle, pressure set, memory layer).
 */
#ifndef HMB_SRC_CORE_POOL_H
#define HMB_SRC_CORE_POOL_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/ledger.h"
#include "core/log.h"
#include "core/pressure.h"
#include "memory/memory.h"
#include "platform/shard.h"

struct hmb_pool {
  hmb__ledger_t ledger;
  hmb__memory_t *mem;
  hmb__logger_t log;
  size_t alignment;
  hmb__pressure_set_t *pressure;
  /* the registry of runners not yet freed */
  pthread_mutex_t reg_lock;
  hmb_runner_t *runners;
  int32_t nrunners;
  /* hmb_runner_wait_idle() */
  pthread_mutex_t idle_mu;
  pthread_cond_t idle_cond;
  _Atomic int idle_waiters;
  _Atomic int destroying; /* a destroy is in progress (re-entry guard) */
  _Alignas(64) hmb__gauge_top_t usage; /* live bytes of all runners */
};

/* Registry (pool.c). */
void hmb__pool_register(hmb_pool_t *p, hmb_runner_t *r);
void hmb__pool_unregister(hmb_pool_t *p, hmb_runner_t *r);
/* A runner's last buffer may have closed: wake hmb_runner_wait_idle(). */
void hmb__pool_idle_notify(hmb_pool_t *p);

#endif /* HMB_SRC_CORE_POOL_H */
