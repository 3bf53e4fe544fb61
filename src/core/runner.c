/*
 * runner.c - one scan task's budget, and the allocator that charges it.
 *
 * Budget of a runner is split in three atomics:
 *   held  - budget taken from the pool and not yet returned;
 *   live  - bytes of buffers allocated and not yet freed;
 *   spare - the part of held that backs no live buffer and may be handed out.
 * Invariant at every instant: held - live >= spare >= 0. Every operation
 * keeps it by ordering its steps:
 *   allocate  spare -= b (CAS, only if spare >= b), then live += b;
 *   borrow    take all spare, pool grants d (held += d), then live += b;
 *   free      live -= b, then spare += b (running) or held -= b (returning);
 *   give back take t from spare (CAS), then held -= t, then pool release.
 * The allocation fast path is one CAS on spare plus counter updates: no lock.
 *
 * `returning` says where freed budget goes: 0 - back into spare for reuse
 * (running, or cancelled and not yet finished); 1 - straight to the pool
 * (finished or destroyed). A free that raced with the switch to 1 (it added
 * to spare after finish drained it) sees the flag afterwards and drains
 * again; with sequentially consistent operations on both sides one of the
 * two always sees the other, so no budget is stranded in a finished runner.
 *
 * Lifetime: the handle and every live root buffer each hold a reference;
 * the last one unlinks the runner from its pool and frees it. State
 * transitions happen under the pool lock so that the pool's running count
 * and the deadlock rules always agree with runner states.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/os.h"

static int hmb__runner_allocate(void *ctx, size_t bytes, unsigned flags,
                                hmb_buffer_t **out);

const char *hmb_runner_state_name(int state) {
  static const char *const names[] = {"CREATED",   "WAITING", "RUNNING",
                                      "COMPLETED", "FAILED",  "CANCELLED",
                                      "CLOSED"};
  if (state < 0 || state > HMB_RUNNER_CLOSED)
    return "UNKNOWN";
  return names[state];
}

int hmb_runner_create(hmb_pool_t *pool, const hmb_runner_config_t *cfg,
                      hmb_runner_t **out) {
  if (out)
    *out = NULL;
  if (!pool || !cfg || !out || cfg->borrow_timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  if (cfg->estimate > (size_t)pool->max_request)
    return HMB_ETOOBIG;
  size_t sz = (sizeof(hmb_runner_t) + 63) & ~(size_t)63;
  hmb_runner_t *r = aligned_alloc(64, sz);
  if (!r)
    return HMB_ENOMEM;
  memset(r, 0, sizeof *r);
  r->vtable.ctx = r;
  r->vtable.allocate = hmb__runner_allocate;
  r->vtable.name = "runner";
  r->pool = pool;
  r->estimate = (int64_t)cfg->estimate;
  r->priority = cfg->priority;
  r->borrow_timeout_ns =
      cfg->borrow_timeout_ns > 0 ? cfg->borrow_timeout_ns : HMB_WAIT_FOREVER;
  if (cfg->name) {
    strncpy(r->name, cfg->name, sizeof r->name - 1);
    r->name[sizeof r->name - 1] = '\0';
  }
  atomic_init(&r->state, HMB_RUNNER_CREATED);
  atomic_init(&r->refs, 1);
  atomic_init(&r->real_need, -1);

  pthread_mutex_lock(&pool->lock);
  r->id = pool->next_runner_id++;
  r->next = pool->runners;
  if (pool->runners)
    pool->runners->prev = r;
  pool->runners = r;
  pool->nrunners++;
  pthread_mutex_unlock(&pool->lock);
  *out = r;
  return 0;
}

static void hmb__runner_unref(hmb_runner_t *r) {
  if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
    return;
  hmb_pool_t *p = r->pool;
  pthread_mutex_lock(&p->lock);
  if (r->prev)
    r->prev->next = r->next;
  else
    p->runners = r->next;
  if (r->next)
    r->next->prev = r->prev;
  p->nrunners--;
  pthread_mutex_unlock(&p->lock);
  free(r);
}

/* Return all spare budget to the pool; the caller holds the pool lock. */
static int64_t hmb__runner_drain_locked(hmb_runner_t *r) {
  int64_t x = atomic_exchange(&r->spare, 0);
  if (x > 0) {
    atomic_fetch_sub(&r->held, x);
    r->pool->held -= x;
  }
  return x;
}

static void hmb__runner_drain(hmb_runner_t *r) {
  pthread_mutex_lock(&r->pool->lock);
  if (hmb__runner_drain_locked(r) > 0)
    hmb__pool_dispatch_locked(r->pool);
  pthread_mutex_unlock(&r->pool->lock);
}

static int64_t hmb__runner_trim_to_need(hmb_runner_t *r, int64_t need);

/* `bytes` of held budget no longer back a live buffer: keep or return. */
static void hmb__runner_give(hmb_runner_t *r, int64_t bytes) {
  if (bytes <= 0)
    return;
  if (!atomic_load(&r->returning)) {
    atomic_fetch_add(&r->spare, bytes);
    if (atomic_load(&r->returning)) {
      hmb__runner_drain(r); /* raced with finish/destroy */
      return;
    }
    /* A borrow of this runner still queued is served from what came back
     * (the borrower checks spare after queueing: one of the two sees it). */
    if (atomic_load(&r->bor_queued) > 0)
      hmb__pool_serve_own_borrows(r->pool, r);
    /* A declared need stays in force while running: give back the excess
     * (a cancelled runner keeps its budget until finish or destroy). */
    int64_t need = atomic_load_explicit(&r->real_need, memory_order_relaxed);
    if (need >= 0 && atomic_load(&r->state) == HMB_RUNNER_RUNNING)
      hmb__runner_trim_to_need(r, need);
    return;
  }
  atomic_fetch_sub(&r->held, bytes);
  hmb__pool_release(r->pool, bytes);
}

/* Take up to `max` bytes of spare budget (CAS: never below zero). */
static int64_t hmb__runner_take_spare(hmb_runner_t *r, int64_t max) {
  int64_t s = atomic_load_explicit(&r->spare, memory_order_relaxed);
  for (;;) {
    int64_t t = s < max ? s : max;
    if (t <= 0)
      return 0;
    if (atomic_compare_exchange_weak(&r->spare, &s, s - t))
      return t;
  }
}

void hmb__runner_buffer_freed(hmb_runner_t *r, int64_t bytes) {
  hmb_pool_t *p = r->pool;
  atomic_fetch_sub_explicit(&p->live_bytes, bytes, memory_order_relaxed);
  atomic_fetch_sub_explicit(&p->live_buffers, 1, memory_order_relaxed);
  atomic_fetch_sub(&r->live, bytes);
  hmb__runner_give(r, bytes);
  if (atomic_fetch_sub(&r->live_buffers, 1) == 1 &&
      atomic_load(&r->idle_waiters) > 0) {
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->idle_cond);
    pthread_mutex_unlock(&p->lock);
  }
  hmb__runner_unref(r);
}

int hmb_runner_start(hmb_runner_t *r, int64_t timeout_ns) {
  if (!r || timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  hmb__grant_t g;
  return hmb__pool_wait_grant(r->pool, r, HMB__WAIT_START, r->estimate,
                              r->priority, timeout_ns, &g);
}

/* Undo the budget side of an allocation whose physical part failed. */
static void hmb__runner_rollback(hmb_runner_t *r, int64_t bytes,
                                 int64_t borrowed, const hmb__grant_t *g) {
  if (borrowed > 0) {
    atomic_fetch_sub(&r->held, borrowed);
    atomic_fetch_sub(&r->borrowed, borrowed);
    atomic_fetch_sub(&r->borrows, 1);
    hmb__pool_unborrow(r->pool, borrowed, g);
  }
  hmb__runner_give(r, bytes - borrowed);
}

/*
 * Slow path: spare does not cover `bytes`. Take what spare there is and
 * borrow exactly the rest from the pool.
 */
static int hmb__runner_borrow(hmb_runner_t *r, int64_t bytes, int64_t *borrowed,
                              hmb__grant_t *g) {
  int64_t s = atomic_exchange(&r->spare, 0);
  if (s >= bytes) { /* spare grew meanwhile */
    hmb__runner_give(r, s - bytes);
    return 0;
  }
  int64_t d = bytes - s;
  int rc = hmb__pool_wait_grant(r->pool, r, HMB__WAIT_BORROW, d, r->priority,
                                r->borrow_timeout_ns, g);
  if (rc) {
    hmb__runner_give(r, s);
    return rc;
  }
  if (g->local)
    return 0; /* its own freed budget covered it: nothing was borrowed */
  atomic_fetch_add_explicit(&r->borrowed, d, memory_order_relaxed);
  atomic_fetch_add_explicit(&r->borrows, 1, memory_order_relaxed);
  *borrowed = d;
  return 0;
}

/*
 * Charge `bytes` to the runner and create the buffer (with memory from the
 * pool's backends, or none for a reservation). The budget is reserved first
 * (fast path: one CAS on spare), so live <= held holds before the buffer
 * exists; a failed physical allocation undoes the charge.
 */
static int hmb__runner_charge(hmb_runner_t *r, size_t bytes, unsigned flags,
                              int with_memory, hmb_buffer_t **out) {
  hmb_pool_t *p = r->pool;
  int64_t b = (int64_t)bytes;
  if (HMB__UNLIKELY(atomic_load_explicit(&r->state, memory_order_acquire) !=
                    HMB_RUNNER_RUNNING))
    return atomic_load(&r->cancelled) ? HMB_ECANCELED : HMB_ESTATE;
  if (HMB__UNLIKELY(b > p->max_request))
    return HMB_ETOOBIG;

  int64_t borrowed = 0;
  hmb__grant_t g = {0, 0, 0};
  int64_t s = atomic_load_explicit(&r->spare, memory_order_relaxed);
  for (;;) {
    if (s < b) {
      int rc = hmb__runner_borrow(r, b, &borrowed, &g);
      if (rc)
        return rc;
      break;
    }
    if (atomic_compare_exchange_weak_explicit(
            &r->spare, &s, s - b, memory_order_relaxed, memory_order_relaxed))
      break;
  }

  atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
  if (HMB__UNLIKELY(hmb__buffer_create(with_memory ? p->mem : NULL, bytes,
                                       flags, r, out) != 0)) {
    atomic_fetch_sub_explicit(&r->refs, 1, memory_order_relaxed);
    hmb__runner_rollback(r, b, borrowed, &g);
    return HMB_ENOMEM;
  }
  int64_t live = atomic_fetch_add(&r->live, b) + b;
  hmb__peak_update(&r->peak_live, live);
  atomic_fetch_add_explicit(&r->live_buffers, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&r->allocations, 1, memory_order_relaxed);
  int64_t pl =
      atomic_fetch_add_explicit(&p->live_bytes, b, memory_order_relaxed) + b;
  hmb__peak_update(&p->peak_live, pl);
  atomic_fetch_add_explicit(&p->live_buffers, 1, memory_order_relaxed);
  return 0;
}

static int hmb__runner_allocate(void *ctx, size_t bytes, unsigned flags,
                                hmb_buffer_t **out) {
  return hmb__runner_charge(ctx, bytes, flags, 1, out);
}

int hmb_runner_reserve(hmb_runner_t *r, size_t bytes, hmb_buffer_t **out) {
  if (out)
    *out = NULL;
  if (!r || !out || bytes == 0)
    return HMB_EINVAL;
  if (bytes > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  return hmb__runner_charge(r, bytes, 0, 0, out);
}

const hmb_allocator_t *hmb_runner_allocator(hmb_runner_t *r) {
  return r ? &r->vtable : NULL;
}

int hmb_runner_alloc(hmb_runner_t *r, size_t bytes, unsigned flags,
                     hmb_buffer_t **out) {
  if (!r) {
    if (out)
      *out = NULL;
    return HMB_EINVAL;
  }
  return hmb_allocate(&r->vtable, bytes, flags, out);
}

/*
 * Give back up to `max` spare bytes to the pool now (an early release: by
 * try-free, or by a trim to the declared need). The caller holds the pool
 * lock, so concurrent early releases see each other's held.
 */
static int64_t hmb__runner_release_early_locked(hmb_runner_t *r, int64_t max) {
  hmb_pool_t *p = r->pool;
  int64_t t = max > 0 ? hmb__runner_take_spare(r, max) : 0;
  if (t > 0) {
    atomic_fetch_sub(&r->held, t);
    atomic_fetch_add_explicit(&r->returned_early, t, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->released_early, t, memory_order_relaxed);
    p->held -= t;
    hmb__pool_dispatch_locked(p);
  }
  return t;
}

int hmb_runner_try_free(hmb_runner_t *r, size_t max_bytes, size_t *returned) {
  if (returned)
    *returned = 0;
  if (!r)
    return HMB_EINVAL;
  if (atomic_load(&r->state) == HMB_RUNNER_CLOSED)
    return HMB_ESTATE;
  int64_t max =
      max_bytes > HMB_MAX_ALLOC ? (int64_t)HMB_MAX_ALLOC : (int64_t)max_bytes;
  pthread_mutex_lock(&r->pool->lock);
  int64_t t = hmb__runner_release_early_locked(r, max);
  pthread_mutex_unlock(&r->pool->lock);
  if (returned)
    *returned = (size_t)t;
  return 0;
}

/* held - max(live, need): what a trim to `need` would give back. */
static int64_t hmb__runner_excess(hmb_runner_t *r, int64_t need) {
  int64_t live = atomic_load(&r->live);
  return atomic_load(&r->held) - (live > need ? live : need);
}

/*
 * Trim held budget to max(live, need): give back the spare above it. The
 * decision reads held, so concurrent trims are serialised by the pool lock
 * (each sees the held the previous one left); a lock-free look first keeps
 * closes that have nothing to give back off the lock.
 */
static int64_t hmb__runner_trim_to_need(hmb_runner_t *r, int64_t need) {
  if (hmb__runner_excess(r, need) <= 0)
    return 0;
  pthread_mutex_lock(&r->pool->lock);
  int64_t t = hmb__runner_release_early_locked(r, hmb__runner_excess(r, need));
  pthread_mutex_unlock(&r->pool->lock);
  return t;
}

int hmb_runner_set_need(hmb_runner_t *r, size_t need, size_t *returned) {
  if (returned)
    *returned = 0;
  if (!r)
    return HMB_EINVAL;
  if (need > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  if (atomic_load(&r->state) == HMB_RUNNER_CLOSED)
    return HMB_ESTATE;
  atomic_store(&r->real_need, (int64_t)need);
  int64_t t = hmb__runner_trim_to_need(r, (int64_t)need);
  if (returned)
    *returned = (size_t)t;
  return 0;
}

/* Stop running (if running); the caller holds the pool lock. */
static void hmb__runner_stop_locked(hmb_runner_t *r, int new_state) {
  if (atomic_load(&r->state) == HMB_RUNNER_RUNNING)
    r->pool->running--;
  atomic_store(&r->state, new_state);
}

int hmb_runner_finish(hmb_runner_t *r, int status, size_t *returned) {
  if (returned)
    *returned = 0;
  if (!r)
    return HMB_EINVAL;
  hmb_pool_t *p = r->pool;
  pthread_mutex_lock(&p->lock);
  int st = atomic_load(&r->state);
  if ((st != HMB_RUNNER_RUNNING && st != HMB_RUNNER_CANCELLED) ||
      atomic_load(&r->returning) || r->nwait) {
    pthread_mutex_unlock(&p->lock);
    return HMB_ESTATE;
  }
  if (st == HMB_RUNNER_RUNNING)
    hmb__runner_stop_locked(r, status == 0 ? HMB_RUNNER_COMPLETED
                                           : HMB_RUNNER_FAILED);
  atomic_store(&r->returning, 1);
  int64_t x = hmb__runner_drain_locked(r);
  atomic_fetch_add_explicit(&r->returned_at_finish, x, memory_order_relaxed);
  hmb__pool_dispatch_locked(p);
  pthread_mutex_unlock(&p->lock);
  if (returned)
    *returned = (size_t)x;
  return 0;
}

int hmb_runner_cancel(hmb_runner_t *r) {
  if (!r)
    return HMB_EINVAL;
  hmb_pool_t *p = r->pool;
  pthread_mutex_lock(&p->lock);
  int st = atomic_load(&r->state);
  if (st == HMB_RUNNER_COMPLETED || st == HMB_RUNNER_FAILED ||
      st == HMB_RUNNER_CLOSED) {
    pthread_mutex_unlock(&p->lock);
    return HMB_ESTATE;
  }
  if (!atomic_load(&r->cancelled)) {
    atomic_store(&r->cancelled, 1);
    hmb__runner_stop_locked(r, HMB_RUNNER_CANCELLED);
    hmb__pool_cancel_runner_locked(p, r); /* wakes all; re-runs admission */
  }
  pthread_mutex_unlock(&p->lock);
  return 0;
}

int hmb_runner_is_cancelled(const hmb_runner_t *r) {
  return r ? atomic_load(&r->cancelled) : 0;
}

int hmb_runner_state(const hmb_runner_t *r) {
  return r ? atomic_load(&r->state) : HMB_RUNNER_CLOSED;
}

int hmb_runner_wait_idle(hmb_runner_t *r, int64_t timeout_ns) {
  if (!r || timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  hmb_pool_t *p = r->pool;
  uint64_t deadline = hmb__os_deadline(timeout_ns);
  int rc = 0;
  atomic_fetch_add(&r->idle_waiters, 1);
  pthread_mutex_lock(&p->lock);
  while (atomic_load(&r->live_buffers) > 0) {
    if (hmb__os_cond_wait_until(&p->idle_cond, &p->lock, deadline) != 0 &&
        atomic_load(&r->live_buffers) > 0) {
      rc = HMB_ETIMEDOUT;
      break;
    }
  }
  pthread_mutex_unlock(&p->lock);
  atomic_fetch_sub(&r->idle_waiters, 1);
  return rc;
}

void hmb_runner_destroy(hmb_runner_t *r) {
  if (!r)
    return;
  hmb_pool_t *p = r->pool;
  pthread_mutex_lock(&p->lock);
  if (r->nwait) /* misuse (a call in flight); never leave it queued */
    hmb__pool_cancel_runner_locked(p, r);
  int st = atomic_load(&r->state);
  if (st == HMB_RUNNER_RUNNING)
    hmb__runner_stop_locked(r, HMB_RUNNER_COMPLETED);
  atomic_store(&r->returning, 1);
  hmb__runner_drain_locked(r);
  atomic_store(&r->state, HMB_RUNNER_CLOSED);
  r->closed = 1;
  hmb__pool_dispatch_locked(p);
  int64_t live = atomic_load(&r->live);
  int64_t nbuf = atomic_load(&r->live_buffers);
  pthread_mutex_unlock(&p->lock);
  if (nbuf > 0)
    hmb__log(&p->log, HMB_LOG_DEBUG,
             "runner #%" PRIu64 " '%s' detached with %" PRId64
             " live buffer(s), %" PRId64 " bytes; their budget returns as "
             "they close",
             r->id, r->name, nbuf, live);
  hmb__runner_unref(r);
}

int hmb_runner_stats(const hmb_runner_t *r, hmb_runner_stats_t *out) {
  if (!r || !out)
    return HMB_EINVAL;
  memset(out, 0, sizeof *out);
  out->state = atomic_load(&r->state);
  out->priority = r->priority;
  out->id = r->id;
  out->estimate = r->estimate;
  out->real_need = atomic_load(&r->real_need);
  out->live = atomic_load(&r->live);
  out->held = atomic_load(&r->held);
  out->peak_held = atomic_load(&r->peak_held);
  out->peak_live = atomic_load(&r->peak_live);
  out->live_buffers = atomic_load(&r->live_buffers);
  out->borrowed = atomic_load(&r->borrowed);
  out->borrows = atomic_load(&r->borrows);
  out->allocations = atomic_load(&r->allocations);
  out->returned_early = atomic_load(&r->returned_early);
  out->returned_at_finish = atomic_load(&r->returned_at_finish);
  out->wait_ns = atomic_load(&r->wait_ns);
  return 0;
}
