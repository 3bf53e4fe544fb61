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
 *
 * Spare lives in the shards' words (ledger_state.h), with the buffer
 * counts and the flags a free must see, plus `spare_over` for what does
 * not fit a word (under the lock only). Flag invariants, kept under the
 * lock (hmb_pool_check() checks them): HMB__SB_STOPPED is set in every
 * shard iff the state is returning; HMB__SB_QUEUED iff bor_queued > 0;
 * HMB__SB_TRIM iff hmb__acct_trim_due().
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
/* The account is gone (held 0, nothing queued): it leaves the registry
 * (the owner's last release; see hmb__ledger_destroy() for the release
 * that closes it in the destroy's hold). */
void hmb__ledger_close(hmb__ledger_t *L, hmb__acct_t *a);
/* Call fn(a, ctx) for every open account (the registry), oldest last,
 * under the budget lock: fn reads, and calls nothing that takes a lock. */
void hmb__ledger_walk(hmb__ledger_t *L, void (*fn)(hmb__acct_t *, void *),
                      void *ctx);
/* Accounts open (relaxed: a snapshot). */
static inline int32_t hmb__ledger_naccts(const hmb__ledger_t *L) {
  return atomic_load_explicit(&L->naccts, memory_order_relaxed);
}
/* The same, read under the budget lock. */
int32_t hmb__ledger_open_count(hmb__ledger_t *L);

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

/* Whether a credit of `bytes` may go into word `w` without the lock:
 * nothing due elsewhere (HMB__SB_DUE: not stopped, no borrow or grow
 * queued, nothing to repay or trim), and the spare field has room. */
static inline int hmb__sb_credit_ok(uint64_t w, int64_t bytes) {
  return (w & HMB__SB_DUE) == 0 &&
         bytes <= HMB__SB_SPARE_MAX - hmb__sb_spare(w);
}

/*
 * A root buffer of `bytes` (<= HMB__SB_SPARE_MAX: the quick paths' small
 * sizes) charged to `a` and counted in shard `shard` was freed, and
 * nothing else is due (no HMB__SB_DUE mark, and the spare field has
 * room): the bytes become the shard's spare and the buffer is uncounted,
 * in one CAS; 1. Else 0, and nothing changed (the caller goes
 * hmb__ledger_freed(), then hmb__ledger_uncount()). On 1 the runner may be
 * gone: this was the buffer's last access to it.
 *
 * seq_cst: the buffer count's decrement is the release of the runner's
 * lifetime (runner.h) and the free's side of the idle pairing
 * (hmb_runner_wait_idle()). The budget needs only the word's coherence:
 * whatever makes a free's bytes due elsewhere marks every shard's word
 * with an RMW under the lock (finish and destroy as they drain it, a
 * borrower before it reads it, a grant beyond the limit or above the
 * declared need), so this CAS either comes first in the word's order
 * (and the marker's later steps see the credit) or fails and sees the
 * mark.
 */
static inline int
hmb__ledger_freed_counted_small(hmb__acct_t *a, unsigned shard, int64_t bytes) {
  _Atomic uint64_t *p = &a->shard[shard].sb;
  uint64_t w = atomic_load_explicit(p, memory_order_relaxed), nw;
  do {
    /* The spare field is the word's top: it has room iff the add does
     * not carry out of the word. */
    if (HMB__UNLIKELY((w & HMB__SB_DUE) != 0 ||
                      __builtin_add_overflow(w, hmb__sb_of(bytes), &nw)))
      return 0;
  } while (!atomic_compare_exchange_weak_explicit(
      p, &w, nw - HMB__SB_BUF, memory_order_seq_cst, memory_order_relaxed));
  return 1;
}
/* The same for any size. */
static inline int hmb__ledger_freed_counted(hmb__acct_t *a, unsigned shard,
                                            int64_t bytes) {
  return bytes <= HMB__SB_SPARE_MAX &&
         hmb__ledger_freed_counted_small(a, shard, bytes);
}

/*
 * `bytes` charged to `a` were freed on shard `shard` (a close whose
 * combined step did not apply, or a shrink): kept as spare, or returned
 * (stopped), with a queued borrow of the same runner served, what is
 * beyond the limit repaid and the runner trimmed to its declared need.
 * The buffer count is not touched. Without the lock when the bytes
 * simply stay as spare.
 */
void hmb__ledger_freed_slow(hmb__ledger_t *L, hmb__acct_t *a, unsigned shard,
                            int64_t bytes);
/* Credit `bytes` to shard `shard`'s spare without the lock, if the word
 * takes it (hmb__sb_credit_ok()): 1, else 0 and nothing changed. Relaxed:
 * the word's coherence orders it (hmb__ledger_freed_counted()); a buffer
 * count's decrement that follows is seq_cst. */
static inline int hmb__ledger_credit_quick(hmb__acct_t *a, unsigned shard,
                                           int64_t bytes) {
  _Atomic uint64_t *p = &a->shard[shard].sb;
  uint64_t w = atomic_load_explicit(p, memory_order_relaxed);
  while (hmb__sb_credit_ok(w, bytes))
    if (atomic_compare_exchange_weak_explicit(p, &w, w + hmb__sb_of(bytes),
                                              memory_order_relaxed,
                                              memory_order_relaxed))
      return 1;
  return 0;
}
static inline void hmb__ledger_freed(hmb__ledger_t *L, hmb__acct_t *a,
                                     unsigned shard, int64_t bytes) {
  if (HMB__UNLIKELY(!hmb__ledger_credit_quick(a, shard, bytes)))
    hmb__ledger_freed_slow(L, a, shard, bytes);
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
/*
 * The handle is destroyed: stop, drain, seal every shard, CLOSED. Returns
 * the state before. *empty: the shards sealed with no buffer counted (their
 * references are the caller's to release, with the handle's; runner.h).
 * `refs`: the owner's count of references (runner.h: the handle, each
 * shard not yet released, each buffer with a reference of its own). When
 * it equals those the caller releases (1 + *empty), that release is the
 * last: the account is closed in the same hold (*closed = 1) and the
 * caller does not call hmb__ledger_close(). Else *closed = 0.
 */
int hmb__ledger_destroy(hmb__ledger_t *L, hmb__acct_t *a, unsigned *empty,
                        const _Atomic int64_t *refs, int *closed);
/*
 * Finish, then destroy, in one hold of the budget lock (one dispatch).
 * *finished: what finish returned (0 or HMB_ESTATE; destroy happens
 * either way). Returns the state before the destroy; *empty, `refs` and
 * *closed as hmb__ledger_destroy(). The finish's drain seals in the same pass.
 */
int hmb__ledger_finish_destroy(hmb__ledger_t *L, hmb__acct_t *a, int status,
                               int *finished, unsigned *empty,
                               const _Atomic int64_t *refs, int *closed);

/* ---- the pool --------------------------------------------------------------
 */

/* Change the limit (pool.c has checked it); re-run admission. */
void hmb__ledger_set_limit(hmb__ledger_t *L, int64_t limit);
/* Budget counters into *out (the budget fields of hmb_pool_stats_t), and,
 * when `fn` is not NULL, fn(a, ctx) for every open account in the same
 * hold (as hmb__ledger_walk()): one snapshot of both. */
void hmb__ledger_stats(hmb__ledger_t *L, hmb_pool_stats_t *out,
                       void (*fn)(hmb__acct_t *, void *), void *ctx);

/* ---- the hot path ----------------------------------------------------------
 */

/*
 * Take `b` bytes of spare from shard `s` (CAS: never below zero): 1 if
 * taken. Relaxed: spare is a budget count, not a publication; the state
 * check that guards allocation is an acquire load in runner.c.
 */
static inline int hmb__ledger_take_fast(hmb__acct_t *a, unsigned s, int64_t b) {
  _Atomic uint64_t *p = &a->shard[s].sb;
  uint64_t w = atomic_load_explicit(p, memory_order_relaxed);
  while (hmb__sb_spare(w) >= b)
    if (atomic_compare_exchange_weak_explicit(p, &w, w - hmb__sb_of(b),
                                              memory_order_relaxed,
                                              memory_order_relaxed))
      return 1;
  return 0;
}

/* The same for `b` <= HMB__SB_SPARE_MAX (the quick paths' small sizes),
 * and count a root buffer in shard `s`, in the one CAS: 1 if done (the
 * spare covers `b` and the count has room), else 0 and nothing changed.
 * Relaxed, as hmb__ledger_take_fast(). */
static inline int hmb__ledger_take_counted(hmb__acct_t *a, unsigned s,
                                           int64_t b) {
  _Atomic uint64_t *p = &a->shard[s].sb;
  const uint64_t take = hmb__sb_of(b);
  uint64_t w = atomic_load_explicit(p, memory_order_relaxed);
  /* The spare field is the word's top, so the word compares as it does. */
  while (w >= take && (w & HMB__SB_BUFS_MASK) != HMB__SB_BUFS_MASK)
    if (atomic_compare_exchange_weak_explicit(p, &w, w - take + HMB__SB_BUF,
                                              memory_order_relaxed,
                                              memory_order_relaxed))
      return 1;
  return 0;
}

/* Count a root buffer in shard `s`: 1, or 0 when the shard's count is
 * full (the runner then holds a reference for the buffer instead:
 * runner.h). Relaxed: the runner's lifetime is ordered by the closer's
 * decrement (runner.h). */
static inline int hmb__ledger_count(hmb__acct_t *a, unsigned s) {
  _Atomic uint64_t *p = &a->shard[s].sb;
  uint64_t w = atomic_load_explicit(p, memory_order_relaxed);
  while ((w & HMB__SB_BUFS_MASK) != HMB__SB_BUFS_MASK)
    if (atomic_compare_exchange_weak_explicit(
            p, &w, w + HMB__SB_BUF, memory_order_relaxed, memory_order_relaxed))
      return 1;
  return 0;
}

/* Uncount a root buffer from shard `s`; returns the word before. seq_cst,
 * as hmb__ledger_freed_counted(): the buffer's last access to the runner. */
static inline uint64_t hmb__ledger_uncount(hmb__acct_t *a, unsigned s) {
  return atomic_fetch_sub_explicit(&a->shard[s].sb, HMB__SB_BUF,
                                   memory_order_seq_cst);
}

/* Root buffers counted in shard `s` (a snapshot; `order`: relaxed, or
 * seq_cst for the waiter's side of the idle pairing). */
static inline int64_t hmb__ledger_counted(const hmb__acct_t *a, unsigned s,
                                          memory_order order) {
  return hmb__sb_bufs(atomic_load_explicit(&a->shard[s].sb, order));
}

#endif /* HMB_SRC_CORE_LEDGER_H */
