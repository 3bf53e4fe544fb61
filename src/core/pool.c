/*
 * pool.c - the global budget: admission, over-commit, borrowing, release.
 *
 * All budget state lives under one mutex. A request that cannot be granted
 * at once becomes a waiter on the requesting thread's stack, with its own
 * condition variable, linked into one of two queues:
 *   borrowers - running runners short of budget, FIFO;
 *   acquirers - runners starting, by priority (desc) then arrival (asc).
 * Grants are made by hmb__pool_dispatch_locked(), called after every change
 * that could allow one (release, a runner stopping, a waiter leaving, a new
 * waiter). The granting thread books the grant completely (pool and runner
 * counters, the runner's state for a start) before signalling, so a woken
 * waiter only reads its result. Dispatch rules, in order:
 *   1. the head borrower is granted if available >= need, or - when every
 *      running runner is a waiting borrower - beyond the limit;
 *   2. while any borrower waits, no acquirer is granted;
 *   3. the head acquirer is granted if available >= need, or - when no
 *      runner is running - beyond the limit; otherwise it blocks the queue.
 * Each over-limit grant is logged by the granted thread after it unlocks:
 * no callback ever runs under the pool lock.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "platform/os.h"

enum { HMB__OVER_NONE = 0, HMB__OVER_IDLE = 1, HMB__OVER_ALL_BORROWING = 2 };

void hmb_pool_config_init(hmb_pool_config_t *cfg) {
  if (cfg)
    memset(cfg, 0, sizeof *cfg);
}

int hmb_pool_create(const hmb_pool_config_t *cfg, hmb_pool_t **out) {
  if (out)
    *out = NULL;
  if (!cfg || !out || cfg->limit == 0 || cfg->limit > HMB_MAX_ALLOC ||
      cfg->max_request > HMB_MAX_ALLOC ||
      (cfg->alignment & (cfg->alignment - 1)) != 0 ||
      (cfg->backend && (!cfg->backend->alloc || !cfg->backend->free)) ||
      cfg->log_level < 0)
    return HMB_EINVAL;
  hmb_pool_t *p = calloc(1, sizeof *p);
  if (!p)
    return HMB_ENOMEM;
  if (pthread_mutex_init(&p->lock, NULL) != 0) {
    free(p);
    return HMB_ENOMEM;
  }
  if (hmb__os_cond_init(&p->idle_cond) != 0) {
    pthread_mutex_destroy(&p->lock);
    free(p);
    return HMB_ENOMEM;
  }
  int rc = hmb__memory_create(cfg, &p->mem);
  if (rc) {
    pthread_cond_destroy(&p->idle_cond);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return rc;
  }
  p->limit = (int64_t)cfg->limit;
  p->max_request =
      (int64_t)(cfg->max_request ? cfg->max_request : HMB_MAX_ALLOC);
  p->alignment = cfg->alignment >= 64 ? cfg->alignment : 64;
  p->log.fn = cfg->log_fn;
  p->log.user = cfg->log_user;
  p->log.level = cfg->log_level ? cfg->log_level : HMB_LOG_WARN;
  p->long_wait_ns = cfg->long_wait_ns ? cfg->long_wait_ns : 1000000000;
  p->next_runner_id = 1;
  const char *why = hmb__memory_region_failure(p->mem);
  if (why)
    hmb__log(&p->log, HMB_LOG_WARN,
             "pinned region unavailable, serving pageable memory: %s", why);
  *out = p;
  return 0;
}

size_t hmb_pool_limit(const hmb_pool_t *pool) {
  return pool ? (size_t)pool->limit : 0;
}

/* ---- queues ------------------------------------------------------------ */

static void hmb__unlink(hmb__waiter_t **head, hmb__waiter_t **tail,
                        hmb__waiter_t *w) {
  if (w->prev)
    w->prev->next = w->next;
  else
    *head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    *tail = w->prev;
  w->next = w->prev = NULL;
}

static void hmb__remove_locked(hmb_pool_t *p, hmb__waiter_t *w) {
  if (w->kind == HMB__WAIT_BORROW) {
    hmb__unlink(&p->bor_head, &p->bor_tail, w);
    p->bor_waiters--;
  } else {
    hmb__unlink(&p->acq_head, &p->acq_tail, w);
    p->acq_waiters--;
  }
  /* A runner's queued requests are all of one kind (start xor borrow). */
  if (--w->runner->nwait == 0 && w->kind == HMB__WAIT_BORROW)
    p->bor_runners--;
  if (w->kind == HMB__WAIT_BORROW)
    atomic_fetch_sub(&w->runner->bor_queued, 1);
}

static void hmb__enqueue_locked(hmb_pool_t *p, hmb__waiter_t *w) {
  if (w->kind == HMB__WAIT_START) {
    /* A retried start keeps the place of its first attempt. */
    if (w->runner->ticket == 0)
      w->runner->ticket = ++p->seq;
    w->seq = w->runner->ticket;
  } else {
    w->seq = ++p->seq;
  }
  w->next = w->prev = NULL;
  if (w->kind == HMB__WAIT_BORROW) {
    w->prev = p->bor_tail;
    if (p->bor_tail)
      p->bor_tail->next = w;
    else
      p->bor_head = w;
    p->bor_tail = w;
    p->bor_waiters++;
  } else {
    /* Walk back past lower priorities and later arrivals (a retry may be
     * older than requests already waiting). */
    hmb__waiter_t *at = p->acq_tail;
    while (at && (at->priority < w->priority ||
                  (at->priority == w->priority && at->seq > w->seq)))
      at = at->prev;
    w->prev = at;
    w->next = at ? at->next : p->acq_head;
    if (w->next)
      w->next->prev = w;
    else
      p->acq_tail = w;
    if (at)
      at->next = w;
    else
      p->acq_head = w;
    p->acq_waiters++;
  }
  if (w->runner->nwait++ == 0 && w->kind == HMB__WAIT_BORROW)
    p->bor_runners++;
  if (w->kind == HMB__WAIT_BORROW)
    atomic_fetch_add(&w->runner->bor_queued, 1); /* before the spare check */
}

/* Leave the queue with `result` (not a grant); wake the waiter. */
static void hmb__reject_locked(hmb_pool_t *p, hmb__waiter_t *w, int result) {
  hmb__remove_locked(p, w);
  if (w->kind == HMB__WAIT_START)
    atomic_store(&w->runner->state, HMB_RUNNER_CREATED);
  w->result = result;
  pthread_cond_signal(&w->cond);
}

/* Would granting `w` overflow the 64-bit budget counters? */
static int hmb__too_big_locked(const hmb_pool_t *p, const hmb__waiter_t *w) {
  return w->need > INT64_MAX - p->held;
}

/*
 * Serve a queued borrow from its own runner's spare: budget freed back to
 * the runner while it waited covers it, so the pool is not involved (no
 * booking, no counters). 1 if served.
 */
static int hmb__serve_own_locked(hmb_pool_t *p, hmb__waiter_t *w) {
  _Atomic int64_t *spare = &w->runner->spare;
  int64_t s = atomic_load(spare);
  while (s >= w->need)
    if (atomic_compare_exchange_weak(spare, &s, s - w->need)) {
      hmb__remove_locked(p, w);
      w->local = 1;
      w->result = 0;
      pthread_cond_signal(&w->cond);
      return 1;
    }
  return 0;
}

void hmb__pool_serve_own_borrows(hmb_pool_t *p, hmb_runner_t *r) {
  int served = 0;
  pthread_mutex_lock(&p->lock);
  hmb__waiter_t *next;
  for (hmb__waiter_t *w = p->bor_head; w; w = next) {
    next = w->next;
    if (w->runner == r)
      served |= hmb__serve_own_locked(p, w);
  }
  if (served)
    hmb__pool_dispatch_locked(p); /* fewer borrowers may admit others */
  pthread_mutex_unlock(&p->lock);
}

/* Book a grant completely, then wake the waiter. */
static void hmb__grant_locked(hmb_pool_t *p, hmb__waiter_t *w, int over) {
  hmb_runner_t *r = w->runner;
  int64_t before_over = p->held > p->limit ? p->held - p->limit : 0;
  p->held += w->need;
  if (p->held > p->peak_held)
    p->peak_held = p->held;
  int64_t now_over = p->held > p->limit ? p->held - p->limit : 0;
  if (now_over > p->peak_over)
    p->peak_over = now_over;
  w->overcommit = over;
  w->over_bytes = now_over - before_over;
  w->held_after = p->held;
  w->running_at_grant = p->running;
  if (over) {
    p->ev.overcommitted_total += (uint64_t)(now_over - before_over);
    if (w->kind == HMB__WAIT_BORROW)
      p->ev.borrow_overcommits++;
    else
      p->ev.acquire_overcommits++;
  }
  int64_t h = atomic_fetch_add(&r->held, w->need) + w->need;
  hmb__peak_update(&r->peak_held, h);
  if (w->kind == HMB__WAIT_START) {
    p->ev.acquires++;
    p->running++;
    atomic_fetch_add(&r->spare, w->need);
    atomic_store_explicit(&r->state, HMB_RUNNER_RUNNING, memory_order_release);
  } else {
    p->ev.borrows++;
  }
  hmb__remove_locked(p, w);
  w->result = 0;
  pthread_cond_signal(&w->cond);
}

void hmb__pool_dispatch_locked(hmb_pool_t *p) {
  hmb__waiter_t *w;
  while ((w = p->bor_head) != NULL) {
    if (hmb__too_big_locked(p, w))
      hmb__reject_locked(p, w, HMB_ETOOBIG);
    else if (p->limit - p->held >= w->need)
      hmb__grant_locked(p, w, HMB__OVER_NONE);
    else if (p->bor_runners >= p->running) /* runners, not requests */
      hmb__grant_locked(p, w, HMB__OVER_ALL_BORROWING);
    else
      break;
  }
  if (p->bor_head)
    return; /* borrowers come first: no admission while one waits */
  while ((w = p->acq_head) != NULL) {
    if (hmb__too_big_locked(p, w))
      hmb__reject_locked(p, w, HMB_ETOOBIG);
    else if (p->limit - p->held >= w->need)
      hmb__grant_locked(p, w, HMB__OVER_NONE);
    else if (p->running == 0)
      hmb__grant_locked(p, w, HMB__OVER_IDLE);
    else
      break; /* head-of-line: a large head is never bypassed */
  }
}

void hmb__pool_cancel_runner_locked(hmb_pool_t *p, hmb_runner_t *r) {
  /* Remove them all before dispatching: a grant must never reach one. */
  hmb__waiter_t *heads[2] = {p->bor_head, p->acq_head};
  for (int q = 0; q < 2; q++) {
    hmb__waiter_t *next;
    for (hmb__waiter_t *w = heads[q]; w; w = next) {
      next = w->next;
      if (w->runner != r)
        continue;
      if (w->kind == HMB__WAIT_BORROW)
        p->ev.borrow_cancels++;
      else
        p->ev.acquire_cancels++;
      hmb__remove_locked(p, w);
      w->result = HMB_ECANCELED;
      pthread_cond_signal(&w->cond);
    }
  }
  hmb__pool_dispatch_locked(p);
}

void hmb__pool_release(hmb_pool_t *p, int64_t bytes) {
  if (bytes <= 0)
    return;
  pthread_mutex_lock(&p->lock);
  p->held -= bytes;
  hmb__pool_dispatch_locked(p);
  pthread_mutex_unlock(&p->lock);
}

void hmb__pool_unborrow(hmb_pool_t *p, int64_t bytes, const hmb__grant_t *g) {
  pthread_mutex_lock(&p->lock);
  p->held -= bytes;
  p->ev.borrows--;
  if (g->overcommit) { /* undo exactly what this grant added */
    p->ev.borrow_overcommits--;
    p->ev.overcommitted_total -= (uint64_t)g->over_bytes;
  }
  hmb__pool_dispatch_locked(p);
  pthread_mutex_unlock(&p->lock);
}

/* ---- waiting ------------------------------------------------------------ */

static const char *hmb__kind_name(int kind) {
  return kind == HMB__WAIT_BORROW ? "borrow" : "start";
}

int hmb__pool_wait_grant(hmb_pool_t *p, hmb_runner_t *r, int kind, int64_t need,
                         int priority, int64_t timeout_ns, hmb__grant_t *g) {
  hmb__waiter_t w;
  memset(&w, 0, sizeof w);
  w.runner = r;
  w.need = need;
  w.priority = priority;
  w.kind = kind;
  w.result = 1;
  memset(g, 0, sizeof *g);
  if (hmb__os_cond_init(&w.cond) != 0)
    return HMB_ENOMEM;

  uint64_t start = hmb__os_now_ns();
  uint64_t deadline = hmb__os_deadline(timeout_ns);
  int64_t running_at_wait = 0;
  int logged_long = 0;

  pthread_mutex_lock(&p->lock);
  int state = atomic_load(&r->state);
  if (atomic_load(&r->cancelled)) {
    w.result = HMB_ECANCELED;
  } else if (kind == HMB__WAIT_START && state != HMB_RUNNER_CREATED) {
    w.result = HMB_ESTATE;
  } else if (kind == HMB__WAIT_BORROW && state != HMB_RUNNER_RUNNING) {
    w.result = HMB_ESTATE;
  } else {
    if (kind == HMB__WAIT_START)
      atomic_store(&r->state, HMB_RUNNER_WAITING);
    hmb__enqueue_locked(p, &w);
    if (kind == HMB__WAIT_START && need == 0)
      hmb__grant_locked(p, &w, HMB__OVER_NONE); /* 0 bytes: at once */
    else if (kind != HMB__WAIT_BORROW || !hmb__serve_own_locked(p, &w))
      hmb__pool_dispatch_locked(p);
    if (w.result == 1 && kind == HMB__WAIT_BORROW)
      p->ev.borrow_waits++;
    while (w.result == 1) {
      uint64_t until = deadline;
      if (!logged_long && p->long_wait_ns > 0) {
        uint64_t lw = start + (uint64_t)p->long_wait_ns;
        if (lw < until)
          until = lw;
      }
      int trc = hmb__os_cond_wait_until(&w.cond, &p->lock, until);
      if (w.result != 1)
        break;
      if (trc == 0)
        continue; /* signalled or spurious: re-check */
      if (until == deadline) {
        /* Timed out: leave the queue; nothing was taken. */
        hmb__remove_locked(p, &w);
        w.result = HMB_ETIMEDOUT;
        if (kind == HMB__WAIT_START) {
          p->ev.acquire_timeouts++;
          atomic_store(&r->state, HMB_RUNNER_CREATED);
        } else {
          p->ev.borrow_timeouts++;
        }
        hmb__pool_dispatch_locked(p);
        break;
      }
      /* Long wait: report once, outside the lock, and keep waiting. */
      logged_long = 1;
      running_at_wait = p->running;
      pthread_mutex_unlock(&p->lock);
      char desc[768];
      hmb_pool_describe(p, 3, desc, sizeof desc);
      hmb__log(&p->log, HMB_LOG_WARN,
               "runner #%" PRIu64 " '%s' has waited %" PRId64
               " ms to %s %" PRId64 " bytes (%" PRId64 " running); %s",
               r->id, r->name, (int64_t)((hmb__os_now_ns() - start) / 1000000u),
               hmb__kind_name(kind), need, running_at_wait, desc);
      pthread_mutex_lock(&p->lock);
    }
  }
  pthread_mutex_unlock(&p->lock);
  pthread_cond_destroy(&w.cond);

  uint64_t waited = hmb__os_now_ns() - start;
  atomic_fetch_add_explicit(&r->wait_ns, waited, memory_order_relaxed);
  g->local = w.local;
  g->over_bytes = w.over_bytes;
  if (w.result == 0 && w.overcommit) {
    g->overcommit = w.overcommit;
    if (w.overcommit == HMB__OVER_IDLE)
      hmb__log(&p->log, HMB_LOG_WARN,
               "over-commit: runner #%" PRIu64 " '%s' started with %" PRId64
               " bytes, %" PRId64 " beyond the limit, because no runner was "
               "running (held %" PRId64 " of limit %" PRId64 ")",
               r->id, r->name, need, w.over_bytes, w.held_after, p->limit);
    else
      hmb__log(&p->log, HMB_LOG_WARN,
               "deadlock prevention: runner #%" PRIu64 " '%s' borrowed %" PRId64
               " bytes, %" PRId64 " beyond the limit, because every running "
               "runner (%d) was waiting to borrow (held %" PRId64
               " of limit %" PRId64 ")",
               r->id, r->name, need, w.over_bytes, (int)w.running_at_grant,
               w.held_after, p->limit);
  } else if (w.result == HMB_ETIMEDOUT &&
             hmb__log_enabled(&p->log, HMB_LOG_WARN)) {
    char desc[768];
    hmb_pool_describe(p, 3, desc, sizeof desc);
    hmb__log(&p->log, HMB_LOG_WARN,
             "timeout: runner #%" PRIu64 " '%s' could not %s %" PRId64
             " bytes within %" PRId64 " %s; %s",
             r->id, r->name, hmb__kind_name(kind), need,
             timeout_ns >= 1000000 ? timeout_ns / 1000000 : timeout_ns / 1000,
             timeout_ns >= 1000000 ? "ms" : "us", desc);
  }
  return w.result;
}

/* ---- inspection --------------------------------------------------------- */

int hmb_pool_stats(hmb_pool_t *p, hmb_pool_stats_t *out) {
  if (!p || !out)
    return HMB_EINVAL;
  pthread_mutex_lock(&p->lock);
  *out = p->ev;
  out->limit = p->limit;
  out->held = p->held;
  out->available = p->limit - p->held;
  out->peak_held = p->peak_held;
  out->overcommitted = p->held > p->limit ? p->held - p->limit : 0;
  out->peak_overcommitted = p->peak_over;
  out->runners = p->nrunners;
  out->running = p->running;
  out->acquire_waiters = p->acq_waiters;
  out->borrow_waiters = p->bor_waiters;
  pthread_mutex_unlock(&p->lock);
  out->live_bytes = atomic_load(&p->live_bytes);
  out->peak_live_bytes = atomic_load(&p->peak_live);
  out->live_buffers = atomic_load(&p->live_buffers);
  out->released_early = (uint64_t)atomic_load(&p->released_early);
  return 0;
}

int hmb_pool_memory_stats(hmb_pool_t *p, hmb_memory_stats_t *out) {
  if (!p || !out)
    return HMB_EINVAL;
  hmb__memory_stats(p->mem, out);
  return 0;
}

int hmb_pool_trim(hmb_pool_t *p, size_t keep_bytes) {
  if (!p)
    return HMB_EINVAL;
  hmb__memory_trim(p->mem, keep_bytes);
  return 0;
}

typedef struct hmb__runner_line {
  uint64_t id;
  char name[32];
  int state;
  int64_t held, live, peak_live;
} hmb__runner_line_t;

enum { HMB__DESCRIBE_MAX = 32 };

/* Copy the `top` runners by held budget (descending) under the lock. */
static int hmb__top_runners_locked(hmb_pool_t *p, hmb__runner_line_t *lines,
                                   int top) {
  int n = 0;
  for (hmb_runner_t *r = p->runners; r; r = r->next) {
    hmb__runner_line_t l;
    l.id = r->id;
    memcpy(l.name, r->name, sizeof l.name);
    l.state = atomic_load(&r->state);
    l.held = atomic_load(&r->held);
    l.live = atomic_load(&r->live);
    l.peak_live = atomic_load(&r->peak_live);
    int at = n < top ? n++ : top;
    while (at > 0 && lines[at - 1].held < l.held) {
      if (at < top)
        lines[at] = lines[at - 1];
      at--;
    }
    if (at < top)
      lines[at] = l;
  }
  return n;
}

int hmb_pool_describe(hmb_pool_t *p, int top, char *buf, size_t len) {
  if (!p || (!buf && len) || top < 0)
    return HMB_EINVAL;
  if (top == 0)
    top = 5;
  if (top > HMB__DESCRIBE_MAX)
    top = HMB__DESCRIBE_MAX;
  hmb__runner_line_t lines[HMB__DESCRIBE_MAX];
  pthread_mutex_lock(&p->lock);
  int64_t held = p->held, limit = p->limit;
  int running = p->running, nr = p->nrunners;
  int aw = p->acq_waiters, bw = p->bor_waiters;
  int n = hmb__top_runners_locked(p, lines, top);
  pthread_mutex_unlock(&p->lock);

  char tmp[4096];
  int w = snprintf(tmp, sizeof tmp,
                   "pool: held %" PRId64 " of limit %" PRId64
                   " (available %" PRId64 ", over-committed %" PRId64
                   "), %d runners, %d running, %d waiting to start, "
                   "%d waiting to borrow",
                   held, limit, limit - held, held > limit ? held - limit : 0,
                   nr, running, aw, bw);
  for (int i = 0; i < n && w >= 0 && (size_t)w < sizeof tmp; i++)
    w += snprintf(tmp + w, sizeof tmp - (size_t)w,
                  "; #%" PRIu64 " '%s' %s held %" PRId64 " live %" PRId64
                  " peak live %" PRId64,
                  lines[i].id, lines[i].name,
                  hmb_runner_state_name(lines[i].state), lines[i].held,
                  lines[i].live, lines[i].peak_live);
  if (w < 0)
    return HMB_EINVAL;
  if ((size_t)w >= sizeof tmp)
    w = (int)sizeof tmp - 1;
  if (len) {
    size_t c = (size_t)w < len ? (size_t)w : len - 1;
    memcpy(buf, tmp, c);
    buf[c] = '\0';
  }
  return w;
}

typedef struct hmb__runner_leak {
  uint64_t id;
  char name[32];
  int state;
  int64_t held, live, buffers;
} hmb__runner_leak_t;

int hmb_pool_destroy(hmb_pool_t *p) {
  if (!p)
    return 0;
  pthread_mutex_lock(&p->lock);
  int nr = p->nrunners;
  pthread_mutex_unlock(&p->lock);
  if (nr > 0) {
    /* One line for the pool, then one per runner still alive (a single
     * line would be cut at the sink's length limit). */
    char desc[2048];
    hmb_pool_describe(p, 1, desc, sizeof desc);
    char *cut = strstr(desc, "; #"); /* the pool part only */
    if (cut)
      *cut = '\0';
    hmb__log(&p->log, HMB_LOG_ERROR,
             "leak: pool destroyed with %d runner(s) and %" PRId64
             " live buffer(s) (%" PRId64 " bytes) still alive; nothing was "
             "destroyed; %s",
             nr, (int64_t)atomic_load(&p->live_buffers),
             (int64_t)atomic_load(&p->live_bytes), desc);
    hmb__runner_leak_t lk[HMB__DESCRIBE_MAX];
    int n = 0;
    pthread_mutex_lock(&p->lock);
    for (hmb_runner_t *r = p->runners; r && n < HMB__DESCRIBE_MAX;
         r = r->next, n++) {
      lk[n].id = r->id;
      memcpy(lk[n].name, r->name, sizeof lk[n].name);
      lk[n].state = atomic_load(&r->state);
      lk[n].held = atomic_load(&r->held);
      lk[n].live = atomic_load(&r->live);
      lk[n].buffers = atomic_load(&r->live_buffers);
    }
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < n; i++)
      hmb__log(&p->log, HMB_LOG_ERROR,
               "leak: runner #%" PRIu64 " '%s' %s%s holds %" PRId64
               " bytes of budget, %" PRId64 " live bytes in %" PRId64
               " buffer(s)",
               lk[i].id, lk[i].name, hmb_runner_state_name(lk[i].state),
               lk[i].state == HMB_RUNNER_CLOSED ? " (handle destroyed)" : "",
               lk[i].held, lk[i].live, lk[i].buffers);
    if (nr > n)
      hmb__log(&p->log, HMB_LOG_ERROR, "leak: ... and %d more runner(s)",
               nr - n);
    return HMB_EBUSY;
  }
  hmb__memory_destroy(p->mem);
  pthread_cond_destroy(&p->idle_cond);
  pthread_mutex_destroy(&p->lock);
  free(p);
  return 0;
}
