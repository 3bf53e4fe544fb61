/*
 * ledger.h - the budget ledger: the one owner of every budget counter.
 *
 * The ledger (ledger.c, plus the inline hot path below) is the only code
 * that writes budget state:
 *   - the pool's held budget, limit, peaks, running count, progress runner,
 *     waiter queues, the heap of holders and the event counters;
 *   - each runner's account: held, spare (sharded), beyond, state, declared
 *     need, and its budget counters (borrowed, returned, waits).
 * Everything else (runner.c, buffer.c, pool.c, describe.c, check.c) asks
 * the ledger to change them, or reads them. The admission rules themselves
 * (which waiter is served, and how) are decided by admission.c from a
 * read-only view of the ledger; ledger.c applies the decisions.
 *
 * Locks: one budget mutex per pool (`lock`), the innermost library lock:
 * nothing else is taken while it is held, and no user code runs under it.
 * Readers that want a consistent picture take it; single fields that the
 * hot path needs are atomics, read lock-free.
 *
 * Runner invariants kept here (hmb/runner.h R-I1..R-I3):
 *   held - live >= sum(spare) >= 0 at every instant, held == live +
 *   sum(spare) at rest, 0 <= beyond <= held.
 * Every step is ordered to keep them: an allocation takes spare (CAS, only
 * if enough) before live grows; a borrow is granted (held grows) before
 * live grows; a free shrinks live before spare grows or held shrinks; a
 * give-back takes spare before held shrinks.
 */
#ifndef HMB_SRC_CORE_LEDGER_H
#define HMB_SRC_CORE_LEDGER_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/ledger_state.h"

int64_t hmb__acct_spare(const hmb__acct_t *a);

/* Initialise / tear down (pool.c). 0 or HMB_ENOMEM. */
int hmb__ledger_init(hmb__ledger_t *L, const hmb_pool_config_t *cfg, void *mem,
                     hmb__pressure_set_t *pressure, const hmb__logger_t *logger,
                     hmb_pool_t *pool,
                     int (*describe)(hmb_pool_t *, int, char *, size_t));
void hmb__ledger_fini(hmb__ledger_t *L);

/* A new account (CREATED, holding nothing): id, heap room. 0/HMB_ENOMEM. */
int hmb__ledger_open(hmb__ledger_t *L, hmb__acct_t *a,
                     const hmb_runner_config_t *cfg);
/*
 * hmb__ledger_open(), then, in the same hold of the budget lock, a start of
 * `bytes` when admission grants it at once (hmb__admit_start_at_once()):
 * booked exactly as hmb__ledger_start() books such a start, *started = 1.
 * Otherwise the account stays CREATED, *started = 0, and nothing else
 * changed. *fit: the grant shrank the cache's room; the caller calls
 * hmb__memory_fit_room() before the budget is used (no lock held).
 */
int hmb__ledger_open_start(hmb__ledger_t *L, hmb__acct_t *a,
                           const hmb_runner_config_t *cfg, int64_t bytes,
                           int *started, int *fit);
/* The account is gone (held 0, nothing queued). */
void hmb__ledger_close(hmb__ledger_t *L, hmb__acct_t *a);

/* ---- requests (they may wait) ----------------------------------------------
 */

/* Start: acquire min(bytes, declared need); rules R2/R3. */
int hmb__ledger_start(hmb__ledger_t *L, hmb__acct_t *a, int64_t bytes,
                      int64_t timeout_ns);
/*
 * The slow path of an allocation of `bytes`: take all spare, borrow the
 * deficit (R1, R4, R5). On success the bytes are charged (the caller makes
 * them live); on failure nothing changed. *g tells how, for rollback.
 */
int hmb__ledger_borrow(hmb__ledger_t *L, hmb__acct_t *a, unsigned shard,
                       int64_t bytes, hmb__grant_t *g);
/* Undo a successful borrow whose physical allocation failed. */
void hmb__ledger_unborrow(hmb__ledger_t *L, hmb__acct_t *a, unsigned shard,
                          int64_t bytes, const hmb__grant_t *g);
/* Grow held to `bytes` (staged admission). */
int hmb__ledger_grow(hmb__ledger_t *L, hmb__acct_t *a, int64_t bytes,
                     int64_t timeout_ns);

/* ---- returns ---------------------------------------------------------------
 */

/*
 * A root buffer of `bytes` charged to `a` was freed, on shard `shard`: keep
 * the budget as spare (running) or return it (stopped), serve a queued
 * borrow of the same runner, trim to the declared need. Takes the budget
 * lock at most once, and not at all on the common path (inline below).
 */
void hmb__ledger_freed_slow(hmb__ledger_t *L, hmb__acct_t *a, unsigned shard,
                            int64_t bytes, int added);
/*
 * The common path of it, without a call: -1 when done (the bytes are spare
 * and nothing else is due), else the `added` argument that
 * hmb__ledger_freed_slow() must now be called with (1: the spare was
 * credited).
 */
static inline int hmb__ledger_freed_quick(hmb__acct_t *a, unsigned shard,
                                          int64_t bytes) {
  /* seq_cst: the free side of the two Dekker pairings of ledger.c (with
   * the state store of finish/destroy, and with a borrower's bor_queued). */
  int st = atomic_load_explicit(&a->state, memory_order_seq_cst);
  if (HMB__UNLIKELY(hmb__rstate_returning(st)))
    return 0;
  atomic_fetch_add_explicit(&a->shard[shard].spare, bytes,
                            memory_order_seq_cst);
  st = atomic_load_explicit(&a->state, memory_order_seq_cst);
  int64_t need = atomic_load_explicit(&a->need, memory_order_relaxed);
  if (HMB__LIKELY(
          !hmb__rstate_returning(st) &&
          atomic_load_explicit(&a->bor_queued, memory_order_seq_cst) == 0 &&
          atomic_load_explicit(&a->beyond, memory_order_relaxed) == 0 &&
          (need < 0 || st != HMB__R_RUNNING ||
           atomic_load_explicit(&a->held, memory_order_relaxed) <= need)))
    return -1;
  return 1;
}

static inline void hmb__ledger_freed(hmb__ledger_t *L, hmb__acct_t *a,
                                     unsigned shard, int64_t bytes) {
  int added = hmb__ledger_freed_quick(a, shard, bytes);
  if (HMB__UNLIKELY(added >= 0))
    hmb__ledger_freed_slow(L, a, shard, bytes, added);
}
/* Give back up to `max` spare bytes (try-free). Returns the bytes. */
int64_t hmb__ledger_try_free(hmb__ledger_t *L, hmb__acct_t *a, uint64_t max);
/* Declare the need and trim to it. Returns the bytes given back. */
int64_t hmb__ledger_set_need(hmb__ledger_t *L, hmb__acct_t *a, int64_t need);

/* ---- lifecycle -------------------------------------------------------------
 */

/* Finish (RUNNING or CANCELLED). 0 or HMB_ESTATE. *returned: spare given. */
int hmb__ledger_finish(hmb__ledger_t *L, hmb__acct_t *a, int status,
                       int64_t *returned);
/* Cancel. 0 or HMB_ESTATE. */
int hmb__ledger_cancel(hmb__ledger_t *L, hmb__acct_t *a);
/* The handle is destroyed: stop, drain, CLOSED. Returns the state before. */
int hmb__ledger_destroy(hmb__ledger_t *L, hmb__acct_t *a);
/*
 * Finish, then destroy, in one hold of the budget lock (one dispatch).
 * *finished: what finish returned (0 or HMB_ESTATE; destroy happens
 * either way). Returns the state before the destroy.
 */
int hmb__ledger_finish_destroy(hmb__ledger_t *L, hmb__acct_t *a, int status,
                               int *finished);

/* ---- the pool --------------------------------------------------------------
 */

/* Change the limit (pool.c has checked it); re-run admission. */
void hmb__ledger_set_limit(hmb__ledger_t *L, int64_t limit);
/* Budget counters into *out (the budget fields of hmb_pool_stats_t). */
void hmb__ledger_stats(hmb__ledger_t *L, hmb_pool_stats_t *out);

/* ---- the hot path ----------------------------------------------------------
 */

/*
 * Take `b` bytes of spare from shard `s` (CAS: never below zero): 1 if
 * taken. Relaxed: spare is a budget count, not a publication; the state
 * check that guards allocation is an acquire load in runner.c.
 */
static inline int hmb__ledger_take_fast(hmb__acct_t *a, unsigned s, int64_t b) {
  _Atomic int64_t *sp = &a->shard[s].spare;
  int64_t v = atomic_load_explicit(sp, memory_order_relaxed);
  while (v >= b)
    if (atomic_compare_exchange_weak_explicit(
            sp, &v, v - b, memory_order_relaxed, memory_order_relaxed))
      return 1;
  return 0;
}

#endif /* HMB_SRC_CORE_LEDGER_H */
