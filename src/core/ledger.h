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

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/log.h"
#include "hmb.h"
#include "platform/shard.h"
#include "platform/util.h"

/* ---- runner accounts ------------------------------------------------------ */

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

static inline int hmb__rstate_returning(int s) { return s >= HMB__R_COMPLETED; }

/*
 * One per-thread shard of a runner, on its own cache line. Writers:
 * `spare` the ledger only; `live`, `bufs` and `allocs` runner.c only.
 */
typedef struct hmb__rshard {
  _Alignas(64) _Atomic int64_t spare; /* budget backing no live buffer */
  _Atomic int64_t live;    /* pending delta of the runner's live gauge */
  _Atomic int64_t bufs;    /* 2 x root buffers counted here, | 1 = sealed */
  _Atomic uint64_t allocs; /* successful allocations counted here */
} hmb__rshard_t;

typedef struct hmb__acct {
  hmb__rshard_t shard[HMB__SHARDS];
  /* --- written under the budget lock only; atomics for lock-free reads --- */
  _Alignas(64) _Atomic int64_t held;
  _Atomic int state;        /* hmb__rstate_t */
  _Atomic int64_t need;     /* declared need, -1: none */
  _Atomic int bor_queued;   /* its borrow requests in the queue */
  _Atomic int64_t beyond;   /* part of held granted beyond the limit */
  _Atomic int64_t peak_held;
  _Atomic uint64_t borrowed, borrows, returned_early, wait_ns, failed_wait_ns;
  _Atomic int64_t returned_at_finish;
  _Atomic int progress; /* 1 while the pool's progress runner */
  /* --- under the budget lock --- */
  int nwait;       /* its requests in the queues */
  uint64_t ticket; /* arrival of its first start: kept by retries */
  int heap_at;     /* index in the heap of holders, -1: not there */
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
int64_t hmb__acct_spare(const hmb__acct_t *a);

/* ---- the ledger ----------------------------------------------------------- */

typedef struct hmb__waiter hmb__waiter_t;
typedef struct hmb__pressure_set hmb__pressure_set_t;

/* Rules by which a grant was made (for counters, logs and the model). */
enum hmb__rule {
  HMB__RULE_WITHIN = 0, /* within the limit */
  HMB__RULE_IDLE,       /* R3: a start with nothing running */
  HMB__RULE_PROGRESS    /* R5: a borrow of the progress runner beyond it */
};

typedef struct hmb__ledger {
  pthread_mutex_t lock;
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
  _Atomic int32_t naccts; /* accounts open (heap capacity >= it) */
  uint64_t next_id;
  hmb_pool_stats_t ev; /* the event counters (uint64_t fields) */
  /* --- set at creation --- */
  void *mem;  /* hmb__memory_t *: told the room after every change */
  int64_t long_wait_ns, pressure_wait_ns;
  hmb_wait_hook_fn wait_hook;
  void *wait_hook_user;
  hmb__pressure_set_t *pressure; /* handlers (pool.c owns the set) */
  const hmb__logger_t *log;
  hmb_pool_t *pool;              /* passed to pressure handlers */
} hmb__ledger_t;

/* A grant as the requester sees it (for rollback and logs). */
typedef struct hmb__grant {
  int rule;             /* enum hmb__rule */
  int64_t bytes;        /* granted by the pool */
  int64_t local;        /* served from the runner's own spare instead */
  int64_t beyond;       /* bytes this grant added beyond the limit */
  int64_t prev_peak_held, prev_peak_over, prev_acct_peak; /* for rollback */
  int64_t peak_held_after, peak_over_after, acct_peak_after;
  uint64_t waited_ns;
  int became_progress; /* this request made its runner the progress runner */
  int first_beyond;    /* the runner's first grant beyond the limit */
} hmb__grant_t;

/* Initialise / tear down (pool.c). 0 or HMB_ENOMEM. */
int hmb__ledger_init(hmb__ledger_t *L, const hmb_pool_config_t *cfg,
                     void *mem, hmb__pressure_set_t *pressure,
                     const hmb__logger_t *logger, hmb_pool_t *pool);
void hmb__ledger_fini(hmb__ledger_t *L);

/* A new account (CREATED, holding nothing): id, heap room. 0/HMB_ENOMEM. */
int hmb__ledger_open(hmb__ledger_t *L, hmb__acct_t *a,
                     const hmb_runner_config_t *cfg);
/* The account is gone (held 0, nothing queued). */
void hmb__ledger_close(hmb__ledger_t *L, hmb__acct_t *a);

/* ---- requests (they may wait) ---------------------------------------------- */

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

/* ---- returns --------------------------------------------------------------- */

/*
 * A root buffer of `bytes` charged to `a` was freed, on shard `shard`: keep
 * the budget as spare (running) or return it (stopped), serve a queued
 * borrow of the same runner, trim to the declared need. Takes the budget
 * lock at most once, and not at all on the common path.
 */
void hmb__ledger_freed(hmb__ledger_t *L, hmb__acct_t *a, unsigned shard,
                       int64_t bytes);
/* Give back up to `max` spare bytes (try-free). Returns the bytes. */
int64_t hmb__ledger_try_free(hmb__ledger_t *L, hmb__acct_t *a, uint64_t max);
/* Declare the need and trim to it. Returns the bytes given back. */
int64_t hmb__ledger_set_need(hmb__ledger_t *L, hmb__acct_t *a, int64_t need);

/* ---- lifecycle ------------------------------------------------------------- */

/* Finish (RUNNING or CANCELLED). 0 or HMB_ESTATE. *returned: spare given. */
int hmb__ledger_finish(hmb__ledger_t *L, hmb__acct_t *a, int status,
                       int64_t *returned);
/* Cancel. 0 or HMB_ESTATE. */
int hmb__ledger_cancel(hmb__ledger_t *L, hmb__acct_t *a);
/* The handle is destroyed: stop, drain, CLOSED. Returns the state before. */
int hmb__ledger_destroy(hmb__ledger_t *L, hmb__acct_t *a);

/* ---- the pool -------------------------------------------------------------- */

/* Change the limit (pool.c has checked it); re-run admission. */
void hmb__ledger_set_limit(hmb__ledger_t *L, int64_t limit);
/* Budget counters into *out (the budget fields of hmb_pool_stats_t). */
void hmb__ledger_stats(hmb__ledger_t *L, hmb_pool_stats_t *out);

/* ---- the hot path ---------------------------------------------------------- */

/*
 * Take `b` bytes of spare from shard `s` (CAS: never below zero): 1 if
 * taken. Relaxed: spare is a budget count, not a publication; the state
 * check that guards allocation is an acquire load in runner.c.
 */
static inline int hmb__ledger_take_fast(hmb__acct_t *a, unsigned s,
                                        int64_t b) {
  _Atomic int64_t *sp = &a->shard[s].spare;
  int64_t v = atomic_load_explicit(sp, memory_order_relaxed);
  while (v >= b)
    if (atomic_compare_exchange_weak_explicit(sp, &v, v - b,
                                              memory_order_relaxed,
                                              memory_order_relaxed))
      return 1;
  return 0;
}

#endif /* HMB_SRC_CORE_LEDGER_H */
