/*
 * internal.h - object layouts and cross-file functions of the budget layer.
 *
 * Who owns what:
 *   - The pool lock (hmb_pool.lock) protects the budget (held, waiter queues,
 *     running count, event counters), the runner list, and every runner
 *     state transition. It is the innermost library lock: nothing is
 *     acquired while holding it, and no user code runs under it.
 *   - Each runner keeps its hot-path counters in atomics (spare, live, held)
 *     so that allocating within held budget never takes the pool lock.
 *   - Buffers are reference counted with atomics only.
 *
 * Runner budget invariant (see runner.c): held - live >= spare >= 0 at every
 * instant, where spare is the part of held not backing a live buffer.
 */
#ifndef HMB_SRC_INTERNAL_H
#define HMB_SRC_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hmb.h"
#include "memory/memory.h"
#include "platform/util.h"


/* ---- diagnostics (log.c) ---------------------------------------------- */

typedef struct hmb__logger {
  hmb_log_fn fn; /* NULL: the process-wide sink */
  void *user;
  int level;
} hmb__logger_t;

/* Format and emit one message if `level` passes the logger's filter. */
void hmb__log(const hmb__logger_t *lg, int level, const char *fmt, ...)
    HMB__PRINTF(3, 4);
int hmb__log_enabled(const hmb__logger_t *lg, int level);


/* ---- pool (pool.c) ---------------------------------------------------- */

typedef enum hmb__wait_kind {
  HMB__WAIT_START,
  HMB__WAIT_BORROW
} hmb__wait_kind_t;

/* A request waiting for budget; lives on the waiting thread's stack. */
typedef struct hmb__waiter {
  struct hmb__waiter *next, *prev;
  pthread_cond_t cond;
  hmb_runner_t *runner;
  int64_t need;
  uint64_t seq; /* arrival order */
  int priority;
  int kind;       /* hmb__wait_kind_t */
  int result;     /* 1: pending, 0: granted, or HMB_ETIMEDOUT/HMB_ECANCELED */
  int overcommit; /* granted beyond the limit (and by which rule) */
  int local;      /* borrow served from its own runner's spare */
  /* At the grant, for its log line: bytes beyond the limit it added, pool
   * held after it, runners running. */
  int64_t over_bytes, held_after;
  int32_t running_at_grant;
} hmb__waiter_t;

struct hmb_pool {
  pthread_mutex_t lock;
  pthread_cond_t idle_cond; /* runners' live count reached 0 */
  int64_t limit;
  int64_t max_request;
  size_t alignment;
  hmb__logger_t log;
  int64_t long_wait_ns;
  hmb__memory_t *mem;

  /* --- under lock --- */
  int64_t held;
  int64_t peak_held;
  int64_t peak_over;
  int32_t running;
  int32_t acq_waiters, bor_waiters;
  int32_t bor_runners; /* distinct runners with a queued borrow */
  hmb__waiter_t *acq_head, *acq_tail; /* sorted: priority desc, seq asc */
  hmb__waiter_t *bor_head, *bor_tail; /* FIFO */
  uint64_t seq;
  hmb_runner_t *runners; /* every runner not yet freed */
  int32_t nrunners;
  uint64_t next_runner_id;
  hmb_pool_stats_t ev; /* event counters (the u64 fields) */

  /* --- lock-free --- */
  _Atomic int64_t live_bytes, peak_live, live_buffers;
  _Atomic int64_t released_early;
};

/* How a request was granted (filled by hmb__pool_wait_grant()). */
typedef struct hmb__grant {
  int overcommit;     /* beyond the limit, and by which rule (0: within) */
  int64_t over_bytes; /* bytes this grant added beyond the limit */
  int local;          /* a borrow served from the runner's own spare */
} hmb__grant_t;

/* Release `bytes` of budget held by a runner; wakes borrowers first. */
void hmb__pool_release(hmb_pool_t *pool, int64_t bytes);

/*
 * Wait for `need` bytes for `runner` (kind START or BORROW). On success the
 * grant is already booked: pool held, runner held (and for START the state
 * RUNNING, running count, spare). A borrow may instead be served from the
 * runner's own spare (g->local: nothing is booked). Returns 0,
 * HMB_ETIMEDOUT, HMB_ECANCELED, HMB_ESTATE or HMB_ETOOBIG (granting it would
 * overflow the pool's counters). *g says how it was granted.
 */
int hmb__pool_wait_grant(hmb_pool_t *pool, hmb_runner_t *runner, int kind,
                         int64_t need, int priority, int64_t timeout_ns,
                         hmb__grant_t *g);

/* Undo a borrow grant whose physical allocation failed (under the lock). */
void hmb__pool_unborrow(hmb_pool_t *pool, int64_t bytes, const hmb__grant_t *g);

/* Serve `runner`'s queued borrows from its spare (takes the pool lock). */
void hmb__pool_serve_own_borrows(hmb_pool_t *pool, hmb_runner_t *runner);

/* Grant/queue bookkeeping called by runner.c with the lock held. */
void hmb__pool_dispatch_locked(hmb_pool_t *pool);
/*
 * Cancel every queued request of `runner` (several threads may borrow for
 * one runner at once), then re-run admission.
 */
void hmb__pool_cancel_runner_locked(hmb_pool_t *pool, hmb_runner_t *runner);

/* ---- runner (runner.c) ------------------------------------------------ */

struct hmb_runner {
  hmb_allocator_t vtable; /* first: &runner->vtable == runner */
  hmb_pool_t *pool;
  int64_t estimate;
  int priority;
  int64_t borrow_timeout_ns;
  uint64_t id;
  char name[32];

  /* hot path: each on its own line to keep allocation threads apart */
  _Alignas(64) _Atomic int64_t spare; /* held - live not yet handed out */
  _Alignas(64) _Atomic int64_t live;
  _Atomic int64_t held;
  _Atomic int64_t peak_live, peak_held;
  _Atomic int64_t live_buffers;
  _Atomic uint64_t allocations;

  _Atomic int state;     /* hmb_runner_state_t; transitions under pool lock */
  _Atomic int returning; /* 1: freed budget goes back to the pool */
  _Atomic int cancelled;
  _Atomic int idle_waiters;
  _Atomic int bor_queued; /* its borrow requests now queued */
  _Atomic long refs;      /* handle + live root buffers */

  _Atomic int64_t borrowed, returned_early, returned_at_finish, real_need;
  _Atomic uint64_t borrows, wait_ns;

  /* --- under pool lock --- */
  int nwait;       /* its requests now queued */
  uint64_t ticket; /* arrival order of its first start attempt; kept on
                     retries so a timed-out start keeps its place */
  hmb_runner_t *next, *prev; /* pool list */
  int closed;                /* handle destroyed */
};

/* A root buffer allocated through `runner` has been freed: account it. */
void hmb__runner_buffer_freed(hmb_runner_t *runner, int64_t bytes);

/* ---- buffer (buffer.c) ------------------------------------------------ */

struct hmb_buffer {
  _Atomic long refs;
  uint32_t magic;
  int pinned;
  void *data;
  size_t size;
  hmb_buffer_t *parent; /* slices: the buffer viewed (retained) */
  hmb__memory_t *mem;   /* roots: where the block goes back */
  hmb_runner_t *owner;  /* roots: runner charged, or NULL */
  hmb_buffer_handler_t handler;
};

/*
 * Allocate a root buffer of `bytes` from `mem` (NULL: no memory, a
 * reservation), owned by `owner` (may be NULL). Budget is not touched here.
 * 0 or HMB_ENOMEM.
 */
int hmb__buffer_create(hmb__memory_t *mem, size_t bytes, unsigned flags,
                       hmb_runner_t *owner, hmb_buffer_t **out);

#endif /* HMB_SRC_INTERNAL_H */
