/*
 * ledger_state.h - the layout of the budget ledger: runner accounts, their
 * shards, the pool-wide state, and how a grant is described.
 *
 * Only the ledger (ledger.c and the inline hot path of ledger.h) writes
 * these fields; admission.c reads them to decide, check.c and describe.c to
 * report. The layout has a header of its own so that the rules can read it
 * without depending on the ledger's functions.
 */
#ifndef HMB_SRC_CORE_LEDGER_STATE_H
#define HMB_SRC_CORE_LEDGER_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/log.h"
#include "hmb.h"
#include "platform/lock.h"
#include "platform/shard.h"
#include "platform/util.h"

/* ---- runner accounts ------------------------------------------------------
 */

/*
 * Internal runner states: one enum, no flags. Public states map as
 * CANCELLED_DONE -> HMB_RUNNER_CANCELLED. "Stopped" means any state after
 * RUNNING: freed budget then goes back to the pool ("returning").
 */
typedef enum hmb__rstate {
  HMB__R_CREATED = 0,
  HMB__R_WAITING,        /* in a start */
  HMB__R_RUNNING,        /* counted in `running`; may allocate */
  HMB__R_CANCELLED,      /* cancelled, not finished: keeps its budget */
  HMB__R_COMPLETED,      /* finished, status 0 (returning) */
  HMB__R_FAILED,         /* finished, nonzero status (returning) */
  HMB__R_CANCELLED_DONE, /* cancelled, then finished (returning) */
  HMB__R_CLOSED          /* handle destroyed (returning) */
} hmb__rstate_t;

static inline int hmb__rstate_returning(int s) {
  return s >= HMB__R_COMPLETED;
}

/*
 * A shard's word: the shard's spare budget, the root buffers counted in it
 * and four flags, in one atomic, so that an allocation covered by spare
 * takes the bytes and counts its buffer with one CAS, and the last close
 * of a buffer credits them and uncounts it with one more: no other locked
 * instruction on those paths, and no Dekker pairing of a store with a
 * later load (the flags a free must see are in the word it writes, and
 * whether freed bytes may simply stay as spare is the one test of them).
 *   bits 0-3    HMB__SB_SEALED: destroy sealed the shard (runner.h);
 *               HMB__SB_STOPPED: the account returns freed budget to the
 *               pool (set with the state, under the budget lock, never
 *               cleared); HMB__SB_QUEUED: a borrow or grow of the account
 *               is queued (set and cleared under the budget lock with
 *               bor_queued's 0 <-> 1); HMB__SB_TRIM: freed bytes are due
 *               back to the pool (hmb__acct_trim_due(); set and cleared
 *               under the budget lock whenever that changes).
 *   bits 4-24   the root buffers counted here (at most HMB__SB_BUFS_MAX;
 *               a buffer beyond it holds a runner reference instead:
 *               HMB__BUF_XREF, runner.h).
 *   bits 25-63  spare bytes (at most HMB__SB_SPARE_MAX; a credit under the
 *               budget lock that does not fit goes to the account's
 *               spare_over, and one without the lock takes the lock).
 * Writers: the ledger (ledger.c, and the inline hot path of ledger.h) is
 * the only code that changes the word; runner.c asks it to count and
 * uncount, and a destroy's drain seals it (ledger.c).
 */
#define HMB__SB_SEALED ((uint64_t)1)
#define HMB__SB_STOPPED ((uint64_t)2)
#define HMB__SB_QUEUED ((uint64_t)4)
#define HMB__SB_TRIM ((uint64_t)8)
/* What sends a free's credit through the lock. */
#define HMB__SB_DUE (HMB__SB_STOPPED | HMB__SB_QUEUED | HMB__SB_TRIM)
#define HMB__SB_BUF ((uint64_t)1 << 4) /* one root buffer */
#define HMB__SB_BUFS_MAX (((uint64_t)1 << 21) - 1)
#define HMB__SB_BUFS_MASK (HMB__SB_BUFS_MAX * HMB__SB_BUF)
#define HMB__SB_SPARE_SHIFT 25
#define HMB__SB_SPARE_MAX ((int64_t)(((uint64_t)1 << 39) - 1)) /* 512 GiB-1 */

static inline int64_t hmb__sb_spare(uint64_t w) {
  return (int64_t)(w >> HMB__SB_SPARE_SHIFT);
}
static inline int64_t hmb__sb_bufs(uint64_t w) {
  return (int64_t)((w & HMB__SB_BUFS_MASK) / HMB__SB_BUF);
}
/* `x` bytes as a spare field (x <= HMB__SB_SPARE_MAX). */
static inline uint64_t hmb__sb_of(int64_t x) {
  return (uint64_t)x << HMB__SB_SPARE_SHIFT;
}

/*
 * One per-thread shard of a runner, on its own cache line. Writers: `sb`
 * the ledger only (see above); `live` shard.h only (called by runner.c);
 * `owner` and `allocs` runner.c only. `sb` carries the budget and lifetime
 * protocols: every thread updates it with RMWs. `live` and `allocs` are
 * written only by the shard's owner (platform/shard.h), with plain stores;
 * other threads count in the runner's shared shard (core/runner.h). 64
 * bytes: one line.
 */
typedef struct hmb__rshard {
  _Alignas(64) _Atomic uint64_t sb; /* spare | buffers | flags (above) */
  hmb__owner_t owner;               /* who writes `live` and `allocs` */
  hmb__gauge_shard_t live;          /* this shard's part of the live gauge */
  _Atomic uint64_t allocs;          /* successful allocations counted here */
} hmb__rshard_t;

typedef struct hmb__acct {
  hmb__rshard_t shard[HMB__SHARDS];
  /* --- written under the budget lock only; atomics for lock-free reads --- */
  _Alignas(64) _Atomic int64_t held;
  _Atomic int state;          /* hmb__rstate_t */
  _Atomic int64_t need;       /* declared need, -1: none */
  _Atomic int64_t spare_over; /* spare that did not fit a shard's word */
  _Atomic int64_t beyond;     /* part of held granted beyond the limit */
  _Atomic int64_t peak_held;
  _Atomic uint64_t borrowed, borrows, returned_early, wait_ns, failed_wait_ns;
  _Atomic int64_t returned_at_finish;
  _Atomic int progress; /* 1 while the pool's progress runner */
  /* --- under the budget lock --- */
  int nwait;       /* its requests in the queues */
  int bor_queued;  /* its borrows and grows among them (HMB__SB_QUEUED) */
  int trim_marked; /* its words are marked HMB__SB_TRIM */
  uint64_t ticket; /* arrival of its first start: kept by retries */
  int heap_at;     /* index in the heap of holders, -1: not there */
  struct hmb__acct *reg_next, *reg_prev; /* the ledger's open accounts */
  /* --- fixed at creation --- */
  uint64_t id;
  int64_t estimate;
  int priority;
  int64_t borrow_timeout_ns;
  char name[32];
} hmb__acct_t;

/* Lock-free reads. Relaxed: each is a snapshot of one field; callers that
 * need agreement between fields take the budget lock. */
static inline int hmb__acct_state(const hmb__acct_t *a) {
  return atomic_load_explicit(&a->state, memory_order_relaxed);
}

/* Whether bytes freed by `a` are due back to the pool rather than kept as
 * spare: it holds beyond the limit (they repay it), or more than its
 * declared need while running (they trim it). Under the budget lock: the
 * ledger marks the words HMB__SB_TRIM by it, hmb_pool_check() checks. */
static inline int hmb__acct_trim_due(const hmb__acct_t *a) {
  int64_t need = atomic_load_explicit(&a->need, memory_order_relaxed);
  return atomic_load_explicit(&a->beyond, memory_order_relaxed) > 0 ||
         (need >= 0 && hmb__acct_state(a) == HMB__R_RUNNING &&
          atomic_load_explicit(&a->held, memory_order_relaxed) > need);
}

/* ---- the ledger -----------------------------------------------------------
 */

typedef struct hmb__waiter hmb__waiter_t;
typedef struct hmb__pressure_set hmb__pressure_set_t;

/* Rules by which a grant was made (for counters, logs and the model). */
enum hmb__rule {
  HMB__RULE_WITHIN = 0, /* within the limit */
  HMB__RULE_IDLE,       /* R3: a start with nothing running */
  HMB__RULE_PROGRESS    /* R5: a borrow of the progress runner beyond it */
};

typedef struct hmb__ledger {
  hmb__lock_t lock;
  _Atomic int64_t limit; /* written under the lock; read lock-free too */
  int64_t max_request;
  int64_t cap; /* over-commit cap, -1: none */
  /* --- under the lock --- */
  int64_t held, peak_held, peak_over;
  int32_t running;
  hmb__acct_t *progress;
  int64_t beyond_stopped; /* sum of `beyond` of stopped accounts */
  int64_t limit_debt;     /* held a lowered limit left above itself */
  hmb__waiter_t *acq_head, *acq_tail; /* priority desc, then ticket asc */
  hmb__waiter_t *bor_head, *bor_tail; /* FIFO: borrows and grows */
  int32_t acq_waiters, bor_waiters;
  int32_t acq_runners, bor_runners; /* distinct runners with a request */
  uint64_t seq;
  hmb__acct_t **heap; /* max-heap of accounts with held > 0 */
  int32_t nheap, capheap;
  /* The open accounts: the pool's registry of runners (opened with their
   * runner; closed with its last release, or by the destroy that knows its
   * release is the last: ledger.h; walked by stats, describe, the
   * self-check and the leak report). naccts: how many, read lock-free
   * too; the heap's capacity is >= it. */
  hmb__acct_t *accts;
  _Atomic int32_t naccts;
  uint64_t next_id;
  hmb_pool_stats_t ev; /* the event counters (uint64_t fields) */
  /* --- set at creation --- */
  void *mem; /* hmb__memory_t *: told the room after every change */
  int64_t long_wait_ns, pressure_wait_ns;
  hmb_wait_hook_fn wait_hook;
  void *wait_hook_user;
  hmb__pressure_set_t *pressure; /* handlers (pool.c owns the set) */
  const hmb__logger_t *log;
  hmb_pool_t *pool; /* passed to pressure handlers and `describe` */
  /* The pool's description for long-wait lines (hmb_pool_describe(): the
   * ledger does not know the runners' usage, so the pool tells it how). */
  int (*describe)(hmb_pool_t *pool, int top, char *buf, size_t len);
} hmb__ledger_t;

/* A grant as the requester sees it (for rollback and logs). */
typedef struct hmb__grant {
  int rule;       /* enum hmb__rule */
  int64_t bytes;  /* granted by the pool */
  int64_t local;  /* served from the runner's own spare instead */
  int64_t beyond; /* bytes this grant added beyond the limit */
  int64_t prev_peak_held, prev_peak_over, prev_acct_peak; /* for rollback */
  int64_t peak_held_after, peak_over_after, acct_peak_after;
  uint64_t waited_ns;
  int became_progress; /* this request made its runner the progress runner */
  int first_beyond;    /* the runner's first grant beyond the limit */
} hmb__grant_t;

#endif /* HMB_SRC_CORE_LEDGER_STATE_H */
