/*
 * ledger.c - the budget ledger (see ledger.h): grants, returns, waits and
 * runner state transitions, all under the budget lock.
 *
 * A request that cannot be granted at once becomes a waiter on the
 * requesting thread's stack, linked into one of two queues (borrows and
 * grows; starts: each by priority, then arrival). hmb__dispatch_locked()
 * asks admission.c for the next step after every change that could allow
 * one (a return, a runner stopping, a waiter leaving or arriving, a limit
 * change) and applies it. The thread that grants books the grant
 * completely (pool and account, the state and spare of a start) before
 * signalling, so a woken waiter only reads its result.
 *
 * What the requesting thread does outside the lock, in this order: the
 * pressure handlers when admission asks for them (then admission is asked
 * again), the wait hook's BEGIN before it first sleeps and END after, the
 * warm cache's fit when its grant shrank the room (before the budget is
 * used), and its log lines. No user code and no OS call runs under the
 * budget lock.
 *
 * Memory orders. Fields written under the lock are also atomics so that
 * the hot path and stats can read them without it; those reads are relaxed
 * snapshots. What a lock-free free must not miss is in the word it
 * writes (ledger_state.h): finish and destroy mark every shard's word
 * stopped as they drain its spare, a borrower marks the words queued
 * before it reads them, and whatever makes the runner hold beyond the
 * limit or above its declared need marks them trim, each with RMWs under
 * the lock; a free credits its word with a CAS that fails on any mark. By
 * the coherence of the one word, either the credit comes first (and the
 * drain or the borrower takes it) or the free sees the mark and takes the
 * lock. No budget is stranded in a stopped runner, and no borrow waits
 * while its runner has spare. (A grant beyond the limit or above the need
 * marks the words a few steps after it changed held: a free in between
 * keeps its bytes as spare; the grant is for an allocation of another
 * thread of the runner, whose close finds the mark and settles it.)
 */
#include "core/ledger.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/admission.h"
#include "core/lines.h"
#include "core/pressure.h"
#include "memory/memory.h"
#include "platform/os.h"

/* ---- small helpers
 * ----------------------------------------------------------- */

static int64_t hmb__limit(const hmb__ledger_t *L) {
  return atomic_load_explicit(&L->limit, memory_order_relaxed);
}
static int64_t hmb__over(const hmb__ledger_t *L) {
  int64_t o = L->held - hmb__limit(L);
  return o > 0 ? o : 0;
}
/* Relaxed store of a field written only under the lock. */
#define HMB__SET(field, v)                                                     \
  atomic_store_explicit(&(field), (v), memory_order_relaxed)
#define HMB__GET(field) atomic_load_explicit(&(field), memory_order_relaxed)

int64_t hmb__acct_spare(const hmb__acct_t *a) {
  int64_t s = HMB__GET(a->spare_over);
  for (unsigned i = 0; i < HMB__SHARDS; i++)
    s += hmb__sb_spare(
        atomic_load_explicit(&a->shard[i].sb, memory_order_relaxed));
  return s;
}

/* Take every shard's spare and mark the shard `mark` (HMB__SB_STOPPED, with
 * HMB__SB_SEALED for a destroy), in one RMW each, and the spare that sat
 * outside the words: the account is returning (every caller has stored a
 * returning state). A word already marked and empty is left alone (only
 * its frees' slow paths, under the lock, write its spare field then).
 * Relaxed for the stopped mark: the lock orders it against the other
 * locked writers, and the word's coherence against the frees (file
 * comment). A seal is acq_rel: it pairs with the closers' decrements
 * (runner.h). *empty (sealing only) is increased by the shards this call
 * sealed with no buffer counted: their references are the sealer's to
 * release. */
static int64_t hmb__spare_take_all(hmb__acct_t *a, uint64_t mark,
                                   unsigned *empty) {
  int64_t s = 0;
  memory_order ok =
      (mark & HMB__SB_SEALED) ? memory_order_acq_rel : memory_order_relaxed;
  for (unsigned i = 0; i < HMB__SHARDS; i++) {
    _Atomic uint64_t *p = &a->shard[i].sb;
    uint64_t w = atomic_load_explicit(p, memory_order_relaxed);
    while ((w & mark) != mark || hmb__sb_spare(w) != 0)
      if (atomic_compare_exchange_weak_explicit(
              p, &w, (w - hmb__sb_of(hmb__sb_spare(w))) | mark, ok,
              memory_order_relaxed)) {
        s += hmb__sb_spare(w);
        if ((mark & ~w & HMB__SB_SEALED) && hmb__sb_bufs(w) == 0)
          ++*empty;
        break;
      }
  }
  s += HMB__GET(a->spare_over);
  HMB__SET(a->spare_over, 0);
  return s;
}

/* Take up to `max` spare bytes, shard by shard (CAS: never below zero);
 * lock-free, so not what sits outside the words. */
static int64_t hmb__spare_take_words(hmb__acct_t *a, int64_t max) {
  int64_t t = 0;
  for (unsigned i = 0; i < HMB__SHARDS && t < max; i++) {
    _Atomic uint64_t *p = &a->shard[i].sb;
    uint64_t w = atomic_load_explicit(p, memory_order_relaxed);
    for (;;) {
      int64_t v = hmb__sb_spare(w);
      int64_t x = v < max - t ? v : max - t;
      if (x <= 0)
        break;
      if (atomic_compare_exchange_weak_explicit(p, &w, w - hmb__sb_of(x),
                                                memory_order_relaxed,
                                                memory_order_relaxed)) {
        t += x;
        break;
      }
    }
  }
  return t;
}

/* The same, under the lock: the words first, then spare_over. */
static int64_t hmb__spare_take_upto(hmb__acct_t *a, int64_t max) {
  int64_t t = hmb__spare_take_words(a, max);
  int64_t o = HMB__GET(a->spare_over);
  if (t < max && o > 0) {
    int64_t x = o < max - t ? o : max - t;
    HMB__SET(a->spare_over, o - x);
    t += x;
  }
  return t;
}

/* Credit `x` bytes of spare to shard `shard`, under the lock, of an
 * account that is not returning (so no free can strand it): into the
 * shard's word when its field has room, else into spare_over. Relaxed, as
 * hmb__spare_take_all(). */
static void hmb__spare_give(hmb__acct_t *a, unsigned shard, int64_t x) {
  if (x <= 0)
    return;
  _Atomic uint64_t *p = &a->shard[shard].sb;
  uint64_t w = atomic_load_explicit(p, memory_order_relaxed);
  while (x <= HMB__SB_SPARE_MAX - hmb__sb_spare(w))
    if (atomic_compare_exchange_weak_explicit(p, &w, w + hmb__sb_of(x),
                                              memory_order_relaxed,
                                              memory_order_relaxed))
      return;
  HMB__SET(a->spare_over, HMB__GET(a->spare_over) + x);
}

/* Set (`on`) or clear the mark `bit` in every shard's word of `a`, under
 * the lock: HMB__SB_QUEUED as its bor_queued turns 0 -> 1 or 1 -> 0,
 * HMB__SB_TRIM as hmb__acct_trim_due() changes. Relaxed: the word's
 * coherence is what the frees rely on (file comment). */
static void hmb__sb_mark(hmb__acct_t *a, uint64_t bit, int on) {
  for (unsigned i = 0; i < HMB__SHARDS; i++) {
    if (on)
      atomic_fetch_or_explicit(&a->shard[i].sb, bit, memory_order_relaxed);
    else
      atomic_fetch_and_explicit(&a->shard[i].sb, ~bit, memory_order_relaxed);
  }
}

/* Re-mark HMB__SB_TRIM after a change of a's held, beyond, need or state
 * (under the lock): RMWs only when hmb__acct_trim_due() changed. */
static inline void hmb__trim_mark_locked(hmb__acct_t *a) {
  int due = hmb__acct_trim_due(a);
  if (due != a->trim_marked) {
    a->trim_marked = due;
    hmb__sb_mark(a, HMB__SB_TRIM, due);
  }
}

static void hmb__ev_add(uint64_t *c, uint64_t v) {
  *c = hmb__sat_add(*c, v);
}
static void hmb__acct_count(_Atomic uint64_t *c, uint64_t v) {
  HMB__SET(*c, hmb__sat_add(HMB__GET(*c), v));
}

/* ---- the heap of holders (describe's top-K without a walk) ----------------
 */

static int64_t hmb__hkey(const hmb__acct_t *a) {
  return HMB__GET(a->held);
}

static void hmb__heap_swap(hmb__ledger_t *L, int i, int j) {
  hmb__acct_t *t = L->heap[i];
  L->heap[i] = L->heap[j];
  L->heap[j] = t;
  L->heap[i]->heap_at = i;
  L->heap[j]->heap_at = j;
}

static void hmb__heap_sift(hmb__ledger_t *L, int i) {
  while (i > 0 && hmb__hkey(L->heap[(i - 1) / 2]) < hmb__hkey(L->heap[i])) {
    hmb__heap_swap(L, i, (i - 1) / 2);
    i = (i - 1) / 2;
  }
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < L->nheap && hmb__hkey(L->heap[l]) > hmb__hkey(L->heap[m]))
      m = l;
    if (r < L->nheap && hmb__hkey(L->heap[r]) > hmb__hkey(L->heap[m]))
      m = r;
    if (m == i)
      return;
    hmb__heap_swap(L, i, m);
    i = m;
  }
}

/* Keep `a` in the heap exactly while it holds budget. Never allocates:
 * hmb__ledger_open() made room for every account. */
static void hmb__heap_update(hmb__ledger_t *L, hmb__acct_t *a) {
  int64_t h = hmb__hkey(a);
  if (a->heap_at < 0) {
    if (h <= 0)
      return;
    a->heap_at = L->nheap;
    L->heap[L->nheap++] = a;
    hmb__heap_sift(L, a->heap_at);
    return;
  }
  int i = a->heap_at;
  if (h > 0) {
    hmb__heap_sift(L, i);
    return;
  }
  L->nheap--;
  if (i != L->nheap) {
    L->heap[i] = L->heap[L->nheap];
    L->heap[i]->heap_at = i;
    hmb__heap_sift(L, i);
  }
  a->heap_at = -1;
}

/* ---- held, beyond and the cache's room -------------------------------------
 */

static void hmb__room_locked(hmb__ledger_t *L) {
  int64_t room = hmb__limit(L) - L->held;
  hmb__memory_set_room(L->mem, room > 0 ? room : 0);
}

static int hmb__acct_running(const hmb__acct_t *a) {
  return hmb__acct_state(a) == HMB__R_RUNNING;
}

/* Return `x` bytes of `a`'s held budget to the pool: beyond is repaid
 * first, then what a lowered limit left above it. */
static void hmb__held_sub(hmb__ledger_t *L, hmb__acct_t *a, int64_t x) {
  if (x <= 0)
    return;
  L->held -= x;
  HMB__SET(a->held, HMB__GET(a->held) - x);
  int64_t b = HMB__GET(a->beyond);
  int64_t r1 = x < b ? x : b;
  if (r1 > 0) {
    HMB__SET(a->beyond, b - r1);
    if (!hmb__acct_running(a))
      L->beyond_stopped -= r1;
  }
  int64_t r2 = x - r1 < L->limit_debt ? x - r1 : L->limit_debt;
  L->limit_debt -= r2;
  hmb__trim_mark_locked(a);
  hmb__heap_update(L, a);
  hmb__room_locked(L);
}

/* ---- queues
 * ------------------------------------------------------------------ */

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

static void hmb__remove_locked(hmb__ledger_t *L, hmb__waiter_t *w) {
  hmb__acct_t *a = w->acct;
  if (w->kind == HMB_REQUEST_START) {
    hmb__unlink(&L->acq_head, &L->acq_tail, w);
    L->acq_waiters--;
  } else {
    hmb__unlink(&L->bor_head, &L->bor_tail, w);
    L->bor_waiters--;
    if (--a->bor_queued == 0)
      hmb__sb_mark(a, HMB__SB_QUEUED, 0);
  }
  /* A runner's queued requests are all of one kind (a start xor borrows
   * and grows): the lifecycle calls cannot overlap. */
  if (--a->nwait == 0) {
    if (w->kind == HMB_REQUEST_START)
      L->acq_runners--;
    else
      L->bor_runners--;
  }
}

/* Insert `w` after the last waiter of at least its priority and no later
 * sequence number: each queue is ordered by priority (higher first), then
 * arrival. Equal priorities (the default) make it a FIFO; the walk starts
 * at the tail, so a FIFO insert is O(1). */
static void hmb__insert_ordered(hmb__waiter_t **head, hmb__waiter_t **tail,
                                hmb__waiter_t *w) {
  hmb__waiter_t *at = *tail;
  while (at && (at->priority < w->priority ||
                (at->priority == w->priority && at->seq > w->seq)))
    at = at->prev;
  w->prev = at;
  w->next = at ? at->next : *head;
  if (w->next)
    w->next->prev = w;
  else
    *tail = w;
  if (at)
    at->next = w;
  else
    *head = w;
}

static void hmb__enqueue_locked(hmb__ledger_t *L, hmb__waiter_t *w) {
  hmb__acct_t *a = w->acct;
  w->next = w->prev = NULL;
  if (w->kind == HMB_REQUEST_START) {
    if (a->ticket == 0) /* a retried start keeps its first place */
      a->ticket = ++L->seq;
    w->seq = a->ticket;
    hmb__insert_ordered(&L->acq_head, &L->acq_tail, w);
    L->acq_waiters++;
  } else {
    /* R1: borrows and grows by the runner's priority, then arrival, so a
     * reader that gives the split its consumer needs next the highest
     * priority has that split's grows served first. */
    w->seq = ++L->seq;
    hmb__insert_ordered(&L->bor_head, &L->bor_tail, w);
    L->bor_waiters++;
    /* Marked before the borrow reads its spare (serve_own, right after):
     * a free either credited first or sees the mark (file comment). */
    if (a->bor_queued++ == 0)
      hmb__sb_mark(a, HMB__SB_QUEUED, 1);
  }
  if (a->nwait++ == 0) {
    if (w->kind == HMB_REQUEST_START)
      L->acq_runners++;
    else
      L->bor_runners++;
  }
}

static void hmb__wake(hmb__waiter_t *w, int result) {
  w->result = result;
  if (w->cond_ready)
    hmb__cond_signal(&w->cond);
}

/* ---- grants
 * ------------------------------------------------------------------ */

static void hmb__stop_running_locked(hmb__ledger_t *L, hmb__acct_t *a,
                                     int new_state) {
  if (hmb__acct_state(a) == HMB__R_RUNNING) {
    L->running--;
    L->beyond_stopped += HMB__GET(a->beyond);
    if (L->progress == a) {
      L->progress = NULL;
      HMB__SET(a->progress, 0);
    }
  }
  /* Relaxed: frees learn that the account stopped from their shards'
   * words, which the caller marks next, in this hold of the lock
   * (hmb__spare_take_all(); a cancel does not stop the returns). */
  atomic_store_explicit(&a->state, new_state, memory_order_relaxed);
  hmb__trim_mark_locked(a);
}

static void hmb__make_progress_locked(hmb__ledger_t *L, hmb__acct_t *a) {
  L->progress = a;
  HMB__SET(a->progress, 1);
  hmb__ev_add(&L->ev.progress_grants, 1);
  for (hmb__waiter_t *w = L->bor_head; w; w = w->next)
    if (w->acct == a) {
      w->g.became_progress = 1; /* its thread logs it */
      break;
    }
}

static void hmb__serve_own_locked(hmb__ledger_t *L, hmb__acct_t *a);

/* Grant `w` (out of the queues: the dispatch took it out, or a start
 * booked at once was never in) `bytes` by `rule`, and wake it. */
static void hmb__grant_locked(hmb__ledger_t *L, hmb__waiter_t *w, int64_t bytes,
                              int rule) {
  hmb__acct_t *a = w->acct;
  hmb__grant_t *g = &w->g;
  int64_t over_before = hmb__over(L);
  g->prev_peak_held = L->peak_held;
  g->prev_peak_over = L->peak_over;
  g->prev_acct_peak = HMB__GET(a->peak_held);
  L->held += bytes;
  if (L->held > L->peak_held)
    L->peak_held = L->held;
  int64_t over_after = hmb__over(L);
  if (over_after > L->peak_over)
    L->peak_over = over_after;
  int64_t h = HMB__GET(a->held) + bytes;
  HMB__SET(a->held, h);
  if (h > HMB__GET(a->peak_held))
    HMB__SET(a->peak_held, h);
  int64_t beyond = over_after - over_before;
  g->rule = rule;
  g->bytes = bytes;
  g->beyond = beyond;
  g->peak_held_after = L->peak_held;
  g->peak_over_after = L->peak_over;
  g->acct_peak_after = HMB__GET(a->peak_held);
  if (beyond > 0) {
    g->first_beyond = HMB__GET(a->beyond) == 0;
    HMB__SET(a->beyond, HMB__GET(a->beyond) + beyond);
    hmb__ev_add(&L->ev.overcommitted_total, (uint64_t)beyond);
  }
  hmb__heap_update(L, a);
  hmb__room_locked(L);
  w->fit_room = bytes > 0;
  switch (w->kind) {
  case HMB_REQUEST_START:
    hmb__ev_add(&L->ev.acquires, 1);
    L->running++;
    /* Spare before the state: an allocation that sees RUNNING (acquire
     * load in runner.c) sees the spare too (this release store). */
    hmb__spare_give(a, w->shard, bytes);
    atomic_store_explicit(&a->state, HMB__R_RUNNING, memory_order_release);
    if (rule == HMB__RULE_IDLE) {
      hmb__ev_add(&L->ev.acquire_overcommits, 1);
      L->progress = a;
      HMB__SET(a->progress, 1);
      hmb__ev_add(&L->ev.progress_grants, 1);
      g->became_progress = 1;
    }
    break;
  case HMB_REQUEST_BORROW:
    hmb__ev_add(&L->ev.borrows, 1);
    if (beyond > 0)
      hmb__ev_add(&L->ev.borrow_overcommits, 1);
    hmb__acct_count(&a->borrows, 1);
    hmb__acct_count(&a->borrowed, (uint64_t)bytes);
    break;
  default: /* grow */
    hmb__ev_add(&L->ev.grows, 1);
    hmb__spare_give(a, w->shard, bytes);
    /* Borrows of other threads of the runner waiting meanwhile are served
     * from the grown spare (runner.h); the runner's held is unchanged. */
    hmb__serve_own_locked(L, a);
    break;
  }
  hmb__trim_mark_locked(a); /* held, beyond and perhaps the state changed */
  hmb__wake(w, 0);
}

static void hmb__reject_locked(hmb__ledger_t *L, hmb__waiter_t *w, int code) {
  hmb__remove_locked(L, w);
  if (w->kind == HMB_REQUEST_START)
    atomic_store_explicit(&w->acct->state, HMB__R_CREATED,
                          memory_order_relaxed);
  if (code == HMB_ELIMIT)
    hmb__ev_add(&L->ev.limit_rejects, 1);
  hmb__wake(w, code);
}

static int hmb__pressure_armed(const hmb__ledger_t *L) {
  return L->pressure && hmb__pressure_count(L->pressure) > 0;
}

static void hmb__dispatch_locked(hmb__ledger_t *L) {
  if (hmb__admit_none_queued(L))
    return;
  int armed = hmb__pressure_armed(L);
  for (;;) {
    hmb__decision_t d;
    hmb__admit_next(L, armed, &d);
    switch (d.act) {
    case HMB__ACT_GRANT:
      hmb__remove_locked(L, d.w);
      hmb__grant_locked(L, d.w, d.bytes, d.rule);
      break;
    case HMB__ACT_REJECT:
      hmb__reject_locked(L, d.w, d.code);
      break;
    case HMB__ACT_PRESSURE:
      d.w->pressure = HMB__PRESSURE_DUE;
      if (d.w->cond_ready)
        hmb__cond_signal(&d.w->cond);
      break;
    case HMB__ACT_PROGRESS:
      hmb__make_progress_locked(L, d.a);
      break;
    default:
      return;
    }
  }
}

/*
 * Book a start that admission grants at once (hmb__admit_start_at_once()):
 * granted without a trip through the queue, exactly as the dispatch would book
 * it (ticket, counters, peaks, spare, state RUNNING), without asking admission
 * for the steps it is known not to take. `w` is filled as for a wait.
 */
static void hmb__start_now_locked(hmb__ledger_t *L, hmb__waiter_t *w) {
  /* Both queues are empty, so queueing it and taking it out again would
   * leave them and their counts as they are: only its ticket is drawn. */
  hmb__acct_t *a = w->acct;
  if (a->ticket == 0)
    a->ticket = ++L->seq;
  w->seq = a->ticket;
  hmb__grant_locked(L, w, w->need, HMB__RULE_WITHIN);
}

/*
 * Serve queued borrows of `a` from its own spare (budget that reached it
 * while they waited: freed by another of its threads, grown, or put back
 * by a failed request), partly if need be.
 */
static void hmb__serve_own_locked(hmb__ledger_t *L, hmb__acct_t *a) {
  hmb__waiter_t *next;
  for (hmb__waiter_t *w = L->bor_head; w; w = next) {
    next = w->next;
    if (w->acct != a || w->kind != HMB_REQUEST_BORROW)
      continue;
    int64_t t = hmb__spare_take_upto(a, w->need);
    w->need -= t;
    w->local += t;
    if (w->need == 0) {
      hmb__remove_locked(L, w);
      hmb__wake(w, 0);
    }
  }
}

/* ---- waiting ----------------------------------------------------------------
 */

static const char *hmb__kind_name(int kind) {
  return kind == HMB_REQUEST_START    ? "start"
         : kind == HMB_REQUEST_BORROW ? "borrow"
                                      : "grow";
}

static void hmb__hook(hmb__ledger_t *L, hmb__waiter_t *w, int phase,
                      int64_t bytes, int result, uint64_t waited) {
  hmb_wait_event_t ev;
  ev.phase = phase;
  ev.request = w->kind;
  ev.runner_id = w->acct->id;
  ev.runner_name = w->acct->name;
  ev.bytes = (size_t)bytes;
  ev.result = result;
  ev.waited_ns = (int64_t)waited;
  L->wait_hook(L->wait_hook_user, &ev);
}

static void hmb__pressure(hmb__ledger_t *L, hmb__waiter_t *w, int kind,
                          uint64_t waited) {
  hmb_pressure_t ev;
  ev.kind = kind;
  ev.request = w->kind;
  ev.runner_id = w->acct->id;
  ev.runner_name = w->acct->name;
  hmb__lock(&L->lock);
  int64_t avail = hmb__limit(L) - L->held;
  ev.wanted = (size_t)(w->need - (avail > 0 ? avail : 0) > 0
                           ? w->need - (avail > 0 ? avail : 0)
                           : 0);
  ev.held = L->held;
  ev.limit = hmb__limit(L);
  hmb__ev_add(&L->ev.pressure_calls, 1);
  hmb__unlock(&L->lock);
  ev.waited_ns = (int64_t)waited;
  hmb__pressure_run(L->pressure, L->pool, &ev);
}

/*
 * Queue a request of `need` bytes for `a` and wait for it (see the file
 * comment for what runs outside the lock). `local` is what a borrow already
 * took from spare. On success *g says how it was granted; on failure nothing
 * was granted.
 */
static int hmb__wait(hmb__ledger_t *L, hmb__acct_t *a, int kind, int64_t need,
                     int64_t local, unsigned shard, int64_t timeout_ns,
                     hmb__grant_t *g) {
  hmb__waiter_t w;
  memset(&w, 0, sizeof w);
  w.acct = a;
  w.kind = kind;
  w.need = need;
  w.local = local;
  w.shard = shard;
  w.priority = a->priority;
  w.result = HMB__PENDING;
  /* The clock is read only once the request cannot be decided at once. */
  uint64_t t0 = 0, deadline = UINT64_MAX, long_at = UINT64_MAX,
           press_at = UINT64_MAX;
  int began = 0, long_logged = 0, queued = 0;

  hmb__lock(&L->lock);
  int st = hmb__acct_state(a);
  if (st == HMB__R_CANCELLED || st == HMB__R_CANCELLED_DONE) {
    w.result = HMB_ECANCELED;
  } else if (kind == HMB_REQUEST_START ? st != HMB__R_CREATED
                                       : st != HMB__R_RUNNING) {
    w.result = HMB_ESTATE;
  } else {
    queued = 1;
    if (kind == HMB_REQUEST_START && hmb__admit_start_at_once(L, need)) {
      hmb__start_now_locked(L, &w);
    } else {
      if (kind == HMB_REQUEST_START)
        atomic_store_explicit(&a->state, HMB__R_WAITING, memory_order_relaxed);
      hmb__enqueue_locked(L, &w);
      /* A borrow re-checks its own spare after queueing (see the file
       * comment: one of it and a concurrent free sees the other). */
      if (kind == HMB_REQUEST_BORROW)
        hmb__serve_own_locked(L, a);
      hmb__dispatch_locked(L);
      if (w.result == HMB__PENDING && kind == HMB_REQUEST_BORROW)
        hmb__ev_add(&L->ev.borrow_waits, 1);
    }
  }
  if (w.result == HMB__PENDING) {
    t0 = hmb__os_now_ns();
    deadline = hmb__os_deadline(timeout_ns);
    if (L->long_wait_ns > 0)
      long_at = t0 + (uint64_t)L->long_wait_ns;
    if (L->pressure_wait_ns > 0)
      press_at = t0 + (uint64_t)L->pressure_wait_ns;
  }
  while (w.result == HMB__PENDING) {
    if (w.pressure == HMB__PRESSURE_DUE) {
      hmb__unlock(&L->lock);
      hmb__pressure(L, &w, HMB_PRESSURE_OVERCOMMIT, hmb__os_now_ns() - t0);
      hmb__lock(&L->lock);
      w.pressure = HMB__PRESSURE_DONE;
      hmb__dispatch_locked(L);
      continue;
    }
    if (timeout_ns == 0) { /* do not wait: and do not sleep */
      hmb__remove_locked(L, &w);
      w.result = HMB_ETIMEDOUT;
      break;
    }
    if (!began) {
      began = 1;
      if (L->wait_hook) {
        hmb__unlock(&L->lock);
        hmb__hook(L, &w, HMB_WAIT_BEGIN, need, 0, 0);
        hmb__lock(&L->lock);
        continue; /* it may have been decided meanwhile */
      }
    }
    if (!w.cond_ready) {
      if (hmb__cond_init(&w.cond) != 0) {
        hmb__remove_locked(L, &w);
        w.result = HMB_ENOMEM;
        break;
      }
      w.cond_ready = 1;
    }
    uint64_t until = deadline;
    if (!long_logged && long_at < until)
      until = long_at;
    if (press_at < until && hmb__pressure_armed(L))
      until = press_at;
    hmb__cond_wait_until(&w.cond, &L->lock, until);
    if (w.result != HMB__PENDING)
      break;
    uint64_t now = hmb__os_now_ns();
    if (now >= deadline) {
      hmb__remove_locked(L, &w);
      w.result = HMB_ETIMEDOUT;
      break;
    }
    if (!long_logged && now >= long_at) {
      long_logged = 1;
      int running = L->running;
      hmb__unlock(&L->lock);
      char desc[768] = "";
      if (hmb__log_enabled(L->log, HMB_LOG_WARN) && L->describe)
        L->describe(L->pool, 3, desc, sizeof desc);
      hmb__line_long_wait(L->log, a->id, a->name, hmb__kind_name(kind), need,
                          now - t0, running, desc);
      hmb__lock(&L->lock);
    }
    if (press_at != UINT64_MAX && now >= press_at && hmb__pressure_armed(L)) {
      press_at = UINT64_MAX; /* once per request */
      hmb__unlock(&L->lock);
      hmb__pressure(L, &w, HMB_PRESSURE_WAIT, now - t0);
      hmb__lock(&L->lock);
      hmb__dispatch_locked(L);
    }
  }
  uint64_t waited = t0 ? hmb__os_now_ns() - t0 : 0;
  if (w.result == HMB_ETIMEDOUT || w.result == HMB_ECANCELED) {
    if (w.result == HMB_ETIMEDOUT) {
      if (kind == HMB_REQUEST_START)
        hmb__ev_add(&L->ev.acquire_timeouts, 1);
      else
        hmb__ev_add(&L->ev.borrow_timeouts, 1);
    }
    if (kind == HMB_REQUEST_START && hmb__acct_state(a) == HMB__R_WAITING)
      atomic_store_explicit(&a->state, HMB__R_CREATED, memory_order_relaxed);
    if (w.result == HMB_ETIMEDOUT)
      hmb__dispatch_locked(L); /* its leaving may let others in */
  }
  if (w.result == 0) {
    hmb__acct_count(&a->wait_ns, waited);
    w.g.waited_ns = waited;
  } else if (queued) { /* a refusal at the door waited for nothing */
    hmb__acct_count(&a->failed_wait_ns, waited);
  }
  hmb__unlock(&L->lock);
  if (w.cond_ready)
    hmb__cond_fini(&w.cond);
  if (began && L->wait_hook)
    hmb__hook(L, &w, HMB_WAIT_END, need, w.result, waited);
  if (w.result == 0 && w.fit_room)
    hmb__memory_fit_room(L->mem);
  *g = w.g;
  g->local = w.local;
  if (w.result == 0 && (g->became_progress || g->beyond > 0))
    hmb__line_grant(L->log, a->id, a->name, hmb__kind_name(kind), need,
                    g->beyond, HMB__GET(a->beyond), g->first_beyond,
                    g->became_progress, g->rule == HMB__RULE_IDLE,
                    hmb__limit(L));
  else if (w.result == HMB_ETIMEDOUT)
    hmb__line_timeout(L->log, a->id, a->name, hmb__kind_name(kind), need,
                      timeout_ns);
  return w.result;
}

/* ---- requests
 * ----------------------------------------------------------------- */

int hmb__ledger_start(hmb__ledger_t *L, hmb__acct_t *a, int64_t bytes,
                      int64_t timeout_ns) {
  int64_t need = HMB__GET(a->need);
  if (need >= 0 && need < bytes)
    bytes = need;
  hmb__grant_t g;
  return hmb__wait(L, a, HMB_REQUEST_START, bytes, 0, hmb__shard_index(),
                   timeout_ns, &g);
}

/* Budget beyond the limit that no live buffer needs goes back at once: the
 * progress runner holds beyond the limit only what is live (I3), and the
 * over-commit ends as soon as it can. */
static void hmb__beyond_back_locked(hmb__ledger_t *L, hmb__acct_t *a) {
  int64_t beyond = HMB__GET(a->beyond);
  int64_t tb = beyond > 0 ? hmb__spare_take_upto(a, beyond) : 0;
  if (tb > 0)
    hmb__held_sub(L, a, tb);
}

/* Put spare back after a failure: no trim to the need (a failure changes
 * nothing), but never strand it in a runner that stopped meanwhile, nor
 * keep it beyond the limit (closes while the request waited, a pressure
 * handler's for instance, may have left the progress runner with nothing
 * live beyond the limit). */
static void hmb__spare_put_back(hmb__ledger_t *L, hmb__acct_t *a,
                                unsigned shard, int64_t x) {
  if (x <= 0)
    return;
  /* Without the lock when the word takes it (no HMB__SB_DUE mark: not
   * stopped, no borrow queued, nothing beyond the limit or above the need;
   * file comment). */
  if (hmb__ledger_credit_quick(a, shard, x))
    return;
  hmb__lock(&L->lock);
  if (hmb__rstate_returning(hmb__acct_state(a))) {
    hmb__held_sub(L, a, x);
  } else {
    hmb__spare_give(a, shard, x);
    hmb__serve_own_locked(L, a);
    hmb__beyond_back_locked(L, a);
  }
  hmb__dispatch_locked(L);
  hmb__unlock(&L->lock);
}

int hmb__ledger_borrow(hmb__ledger_t *L, hmb__acct_t *a, unsigned shard,
                       int64_t bytes, hmb__grant_t *g) {
  memset(g, 0, sizeof *g);
  /* Only what this allocation needs: spare taken beyond it would be out of
   * every shard for a moment, and another thread of the runner could then
   * borrow (as the progress runner: beyond the limit) budget its runner
   * holds. Lock-free, so only the words: spare outside them serves the
   * borrow once it is queued (hmb__serve_own_locked()). */
  int64_t s = hmb__spare_take_words(a, bytes);
  if (s >= bytes) { /* the spare sat in other shards */
    g->local = bytes;
    return 0;
  }
  int rc = hmb__wait(L, a, HMB_REQUEST_BORROW, bytes - s, s, shard,
                     a->borrow_timeout_ns, g);
  if (rc != 0) {
    hmb__spare_put_back(L, a, shard, g->local);
    g->local = 0;
  }
  return rc;
}

void hmb__ledger_unborrow(hmb__ledger_t *L, hmb__acct_t *a, unsigned shard,
                          int64_t bytes, const hmb__grant_t *g) {
  (void)bytes;
  if (g->bytes > 0) {
    hmb__lock(&L->lock);
    L->held -= g->bytes;
    HMB__SET(a->held, HMB__GET(a->held) - g->bytes);
    /* What of this grant's beyond is still there: a try-free may have
     * repaid part of it meanwhile, and a cancel may have moved it to the
     * stopped runners' sum. */
    int64_t rb =
        HMB__GET(a->beyond) < g->beyond ? HMB__GET(a->beyond) : g->beyond;
    HMB__SET(a->beyond, HMB__GET(a->beyond) - rb);
    if (!hmb__acct_running(a))
      L->beyond_stopped -= rb;
    /* The rest repays what a limit lowered since left above itself, as
     * any return does (hmb__held_sub()). */
    int64_t rd = g->bytes - rb < L->limit_debt ? g->bytes - rb : L->limit_debt;
    L->limit_debt -= rd;
    /* Undo exactly what the grant did, peaks included when nothing has
     * raised them since. */
    if (L->peak_held == g->peak_held_after)
      L->peak_held = g->prev_peak_held;
    if (L->peak_over == g->peak_over_after)
      L->peak_over = g->prev_peak_over;
    if (HMB__GET(a->peak_held) == g->acct_peak_after)
      HMB__SET(a->peak_held, g->prev_acct_peak);
    L->ev.borrows--;
    if (g->beyond > 0) {
      L->ev.borrow_overcommits--;
      L->ev.overcommitted_total -= (uint64_t)g->beyond;
    }
    HMB__SET(a->borrows, HMB__GET(a->borrows) - 1);
    HMB__SET(a->borrowed, HMB__GET(a->borrowed) - (uint64_t)g->bytes);
    HMB__SET(a->wait_ns, HMB__GET(a->wait_ns) - g->waited_ns);
    hmb__trim_mark_locked(a);
    hmb__heap_update(L, a);
    hmb__room_locked(L);
    hmb__dispatch_locked(L);
    hmb__unlock(&L->lock);
  } else if (g->waited_ns) {
    hmb__lock(&L->lock);
    HMB__SET(a->wait_ns, HMB__GET(a->wait_ns) - g->waited_ns);
    hmb__unlock(&L->lock);
  }
  hmb__spare_put_back(L, a, shard, g->local);
}

int hmb__ledger_grow(hmb__ledger_t *L, hmb__acct_t *a, int64_t bytes,
                     int64_t timeout_ns) {
  hmb__lock(&L->lock);
  int st = hmb__acct_state(a);
  int64_t held = HMB__GET(a->held);
  hmb__unlock(&L->lock);
  if (st == HMB__R_CANCELLED || st == HMB__R_CANCELLED_DONE)
    return HMB_ECANCELED;
  if (st != HMB__R_RUNNING)
    return HMB_ESTATE;
  if (held >= bytes)
    return 0;
  /* The deficit is decided when it is queued; a concurrent return of
   * spare to the pool may leave the runner holding less than `bytes`. */
  hmb__grant_t g;
  return hmb__wait(L, a, HMB_REQUEST_GROW, bytes - held, 0, hmb__shard_index(),
                   timeout_ns, &g);
}

/* ---- returns
 * ------------------------------------------------------------------ */

void hmb__ledger_freed_slow(hmb__ledger_t *L, hmb__acct_t *a, unsigned shard,
                            int64_t bytes) {
  hmb__lock(&L->lock);
  if (hmb__rstate_returning(hmb__acct_state(a))) { /* straight back */
    hmb__held_sub(L, a, bytes);
  } else {
    hmb__spare_give(a, shard, bytes);
    hmb__serve_own_locked(L, a);
    hmb__beyond_back_locked(L, a);
    int64_t need = HMB__GET(a->need);
    if (need >= 0 && hmb__acct_state(a) == HMB__R_RUNNING) {
      int64_t excess = HMB__GET(a->held) - need;
      int64_t t = excess > 0 ? hmb__spare_take_upto(a, excess) : 0;
      if (t > 0) {
        hmb__held_sub(L, a, t);
        hmb__acct_count(&a->returned_early, (uint64_t)t);
        hmb__ev_add(&L->ev.released_early, (uint64_t)t);
      }
    }
  }
  hmb__dispatch_locked(L);
  hmb__unlock(&L->lock);
}

int64_t hmb__ledger_try_free(hmb__ledger_t *L, hmb__acct_t *a, uint64_t max) {
  int64_t m = max > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max;
  hmb__lock(&L->lock);
  int64_t t = hmb__spare_take_upto(a, m);
  if (t > 0) {
    hmb__held_sub(L, a, t);
    hmb__acct_count(&a->returned_early, (uint64_t)t);
    hmb__ev_add(&L->ev.released_early, (uint64_t)t);
    hmb__dispatch_locked(L);
  }
  hmb__unlock(&L->lock);
  return t;
}

int64_t hmb__ledger_set_need(hmb__ledger_t *L, hmb__acct_t *a, int64_t need) {
  hmb__lock(&L->lock);
  HMB__SET(a->need, need);
  int64_t t = 0;
  int changed = 0;
  /* A start already queued asks for no more than the need. */
  for (hmb__waiter_t *w = L->acq_head; w; w = w->next)
    if (w->acct == a && w->need > need) {
      w->need = need;
      changed = 1;
    }
  int64_t excess = HMB__GET(a->held) - need;
  if (excess > 0)
    t = hmb__spare_take_upto(a, excess);
  if (t > 0) {
    hmb__held_sub(L, a, t);
    hmb__acct_count(&a->returned_early, (uint64_t)t);
    hmb__ev_add(&L->ev.released_early, (uint64_t)t);
    changed = 1;
  }
  hmb__trim_mark_locked(a); /* the need changed */
  if (changed)
    hmb__dispatch_locked(L);
  hmb__unlock(&L->lock);
  return t;
}

/* ---- lifecycle
 * ------------------------------------------------------------------ */

/* Fail every queued request of `a` with `code` (cancel, destroy). */
static void hmb__reject_all_locked(hmb__ledger_t *L, hmb__acct_t *a, int code) {
  hmb__waiter_t *heads[2] = {L->bor_head, L->acq_head};
  for (int q = 0; q < 2; q++) {
    hmb__waiter_t *next;
    for (hmb__waiter_t *w = heads[q]; w; w = next) {
      next = w->next;
      if (w->acct != a)
        continue;
      if (w->kind == HMB_REQUEST_START)
        hmb__ev_add(&L->ev.acquire_cancels, 1);
      else
        hmb__ev_add(&L->ev.borrow_cancels, 1);
      hmb__remove_locked(L, w);
      hmb__wake(w, code);
    }
  }
}

/* The work of finish under the lock: 0 or HMB_ESTATE, as finish. `mark`
 * and *empty: as hmb__spare_take_all() (a finish before a destroy seals in
 * the same pass). */
static int hmb__finish_locked(hmb__ledger_t *L, hmb__acct_t *a, int status,
                              int64_t *returned, uint64_t mark,
                              unsigned *empty) {
  int st = hmb__acct_state(a);
  if ((st != HMB__R_RUNNING && st != HMB__R_CANCELLED) || a->nwait)
    return HMB_ESTATE;
  hmb__stop_running_locked(L, a,
                           st == HMB__R_CANCELLED ? HMB__R_CANCELLED_DONE
                           : status == 0          ? HMB__R_COMPLETED
                                                  : HMB__R_FAILED);
  int64_t x = hmb__spare_take_all(a, mark, empty);
  hmb__held_sub(L, a, x);
  HMB__SET(a->returned_at_finish, HMB__GET(a->returned_at_finish) + x);
  *returned = x;
  return 0;
}

/* The account leaves the registry (its owner's last release is done or
 * is the caller's). Closed twice (a misuse: a reference taken while it was
 * destroyed), it is left as it is: the other runners stay listed. */
static void hmb__close_locked(hmb__ledger_t *L, hmb__acct_t *a) {
  if (!a->reg_prev && L->accts != a)
    return;
  if (a->reg_prev)
    a->reg_prev->reg_next = a->reg_next;
  else
    L->accts = a->reg_next;
  if (a->reg_next)
    a->reg_next->reg_prev = a->reg_prev;
  a->reg_next = a->reg_prev = NULL;
  atomic_fetch_sub_explicit(&L->naccts, 1, memory_order_relaxed);
}

/* The work of destroy under the lock, but the dispatch: every shard is
 * sealed, and *empty is as hmb__spare_take_all(). `sealed`: a finish in
 * this hold drained and sealed every shard already (no credit can have
 * reached a word since: each is marked stopped), so nothing is left to
 * take. Returns whether it closed the account too (hmb__ledger_destroy()). */
static int hmb__destroy_locked(hmb__ledger_t *L, hmb__acct_t *a,
                               unsigned *empty, int sealed,
                               const _Atomic int64_t *refs) {
  if (a->nwait) /* misuse (a call in flight): never leave it queued */
    hmb__reject_all_locked(L, a, HMB_ECANCELED);
  hmb__stop_running_locked(L, a, HMB__R_CLOSED);
  if (!sealed)
    hmb__held_sub(
        L, a, hmb__spare_take_all(a, HMB__SB_STOPPED | HMB__SB_SEALED, empty));
  /* Every shard is sealed, so no shard has been released yet but those
   * the caller releases (ledger.h); when its references are all that is
   * left, no other release can come and its release is the last one.
   * Acquire: pairs with the acq_rel decrement of any earlier release (a
   * buffer's own reference), whose accesses come before the free. */
  if (atomic_load_explicit(refs, memory_order_acquire) != 1 + (int64_t)*empty)
    return 0;
  hmb__close_locked(L, a);
  return 1;
}

int hmb__ledger_finish(hmb__ledger_t *L, hmb__acct_t *a, int status,
                       int64_t *returned) {
  int64_t x = 0;
  hmb__lock(&L->lock);
  int rc = hmb__finish_locked(L, a, status, &x, HMB__SB_STOPPED, NULL);
  if (rc == 0)
    hmb__dispatch_locked(L);
  hmb__unlock(&L->lock);
  *returned = x;
  return rc;
}

int hmb__ledger_cancel(hmb__ledger_t *L, hmb__acct_t *a) {
  hmb__lock(&L->lock);
  int st = hmb__acct_state(a);
  int rc = 0;
  if (st == HMB__R_COMPLETED || st == HMB__R_FAILED ||
      st == HMB__R_CANCELLED_DONE || st == HMB__R_CLOSED) {
    rc = HMB_ESTATE;
  } else if (st != HMB__R_CANCELLED) {
    hmb__reject_all_locked(L, a, HMB_ECANCELED);
    hmb__stop_running_locked(L, a, HMB__R_CANCELLED);
    hmb__dispatch_locked(L);
  }
  hmb__unlock(&L->lock);
  return rc;
}

int hmb__ledger_destroy(hmb__ledger_t *L, hmb__acct_t *a, unsigned *empty,
                        const _Atomic int64_t *refs, int *closed) {
  *empty = 0;
  hmb__lock(&L->lock);
  int st = hmb__acct_state(a);
  *closed = hmb__destroy_locked(L, a, empty, 0, refs);
  hmb__dispatch_locked(L);
  hmb__unlock(&L->lock);
  return st;
}

int hmb__ledger_finish_destroy(hmb__ledger_t *L, hmb__acct_t *a, int status,
                               int *finished, unsigned *empty,
                               const _Atomic int64_t *refs, int *closed) {
  int64_t x = 0;
  *empty = 0;
  hmb__lock(&L->lock);
  /* The finish's drain seals too: one RMW per shard for both. */
  *finished = hmb__finish_locked(L, a, status, &x,
                                 HMB__SB_STOPPED | HMB__SB_SEALED, empty);
  int st = hmb__acct_state(a);
  *closed = hmb__destroy_locked(L, a, empty, *finished == 0, refs);
  /* One dispatch for both: neither step adds a request, and every grant
   * the first one's returns allow is still allowed after the second. */
  hmb__dispatch_locked(L);
  hmb__unlock(&L->lock);
  return st;
}

/* ---- the pool
 * ------------------------------------------------------------------ */

int hmb__ledger_init(hmb__ledger_t *L, const hmb_pool_config_t *cfg, void *mem,
                     hmb__pressure_set_t *pressure, const hmb__logger_t *logger,
                     hmb_pool_t *pool,
                     int (*describe)(hmb_pool_t *, int, char *, size_t)) {
  memset(L, 0, sizeof *L);
  if (hmb__lock_init(&L->lock) != 0)
    return HMB_ENOMEM;
  atomic_init(&L->limit, (int64_t)cfg->limit);
  L->max_request =
      (int64_t)(cfg->max_request ? cfg->max_request : HMB_MAX_ALLOC);
  L->cap = (cfg->flags & HMB_POOL_CAP_OVERCOMMIT)
               ? (cfg->overcommit_cap > (size_t)INT64_MAX
                      ? INT64_MAX
                      : (int64_t)cfg->overcommit_cap)
               : -1;
  L->next_id = 1;
  L->mem = mem;
  L->long_wait_ns = cfg->long_wait_ns ? cfg->long_wait_ns : 1000000000;
  L->pressure_wait_ns =
      cfg->pressure_wait_ns ? cfg->pressure_wait_ns : 100000000;
  L->wait_hook = cfg->wait_hook;
  L->wait_hook_user = cfg->wait_hook_user;
  L->pressure = pressure;
  L->log = logger;
  L->pool = pool;
  L->describe = describe;
  return 0;
}

void hmb__ledger_fini(hmb__ledger_t *L) {
  free(L->heap);
  hmb__lock_fini(&L->lock);
}

/* Fill a new account (CREATED, holding nothing) from its configuration. */
static void hmb__acct_init(hmb__acct_t *a, const hmb_runner_config_t *cfg) {
  a->heap_at = -1;
  atomic_init(&a->state, HMB__R_CREATED);
  atomic_init(&a->need, -1);
  a->estimate = (int64_t)cfg->estimate;
  a->priority = cfg->priority;
  a->borrow_timeout_ns =
      cfg->borrow_timeout_ns > 0 ? cfg->borrow_timeout_ns : HMB_WAIT_FOREVER;
}

/* Room in the heap and an id for a new account. 0 or HMB_ENOMEM. */
static int hmb__open_locked(hmb__ledger_t *L, hmb__acct_t *a) {
  if (atomic_load_explicit(&L->naccts, memory_order_relaxed) >= L->capheap) {
    int32_t cap = L->capheap ? L->capheap * 2 : 64;
    hmb__acct_t **h = realloc(L->heap, (size_t)cap * sizeof *h);
    if (!h)
      return HMB_ENOMEM;
    L->heap = h;
    L->capheap = cap;
  }
  /* Relaxed: the count only bounds the heap; its capacity grows under
   * the lock before the count does, and never shrinks. */
  atomic_fetch_add_explicit(&L->naccts, 1, memory_order_relaxed);
  a->id = L->next_id++;
  a->reg_prev = NULL;
  a->reg_next = L->accts;
  if (L->accts)
    L->accts->reg_prev = a;
  L->accts = a;
  return 0;
}

int hmb__ledger_open(hmb__ledger_t *L, hmb__acct_t *a,
                     const hmb_runner_config_t *cfg) {
  hmb__acct_init(a, cfg);
  hmb__lock(&L->lock);
  int rc = hmb__open_locked(L, a);
  hmb__unlock(&L->lock);
  return rc;
}

int hmb__ledger_open_start(hmb__ledger_t *L, hmb__acct_t *a,
                           const hmb_runner_config_t *cfg, int64_t bytes,
                           int *started, int *fit) {
  *started = *fit = 0;
  hmb__acct_init(a, cfg);
  /* The waiter only carries the booking: it is never queued, never sleeps
   * (no condition variable) and its grant record is not read, so only the
   * fields the booking reads are set (no memset of the whole record, a
   * tenth of the at-once start). */
  hmb__waiter_t w;
  w.next = w.prev = NULL;
  w.cond_ready = 0;
  w.acct = a;
  w.kind = HMB_REQUEST_START;
  w.need = bytes;
  w.local = 0;
  w.shard = hmb__shard_index();
  w.priority = a->priority;
  w.seq = 0;
  w.result = HMB__PENDING;
  w.pressure = 0;
  w.fit_room = 0;
  hmb__lock(&L->lock);
  int rc = hmb__open_locked(L, a);
  if (rc == 0 && hmb__admit_start_at_once(L, bytes)) {
    hmb__start_now_locked(L, &w);
    *started = 1;
    *fit = w.fit_room;
  }
  hmb__unlock(&L->lock);
  return rc;
}

void hmb__ledger_close(hmb__ledger_t *L, hmb__acct_t *a) {
  /* A runner is freed only once it holds nothing, so it is not in the heap
   * (hmb_pool_check() verifies membership iff held > 0): only the registry
   * changes. */
  hmb__lock(&L->lock);
  hmb__close_locked(L, a);
  hmb__unlock(&L->lock);
}

int32_t hmb__ledger_open_count(hmb__ledger_t *L) {
  hmb__lock(&L->lock);
  int32_t n = hmb__ledger_naccts(L);
  hmb__unlock(&L->lock);
  return n;
}

/* fn(a, ctx) for every open account; the lock is held. */
static void hmb__walk_locked(hmb__ledger_t *L,
                             void (*fn)(hmb__acct_t *, void *), void *ctx) {
  for (hmb__acct_t *a = L->accts; a; a = a->reg_next)
    fn(a, ctx);
}

void hmb__ledger_walk(hmb__ledger_t *L, void (*fn)(hmb__acct_t *, void *),
                      void *ctx) {
  hmb__lock(&L->lock);
  hmb__walk_locked(L, fn, ctx);
  hmb__unlock(&L->lock);
}

void hmb__ledger_set_limit(hmb__ledger_t *L, int64_t limit) {
  hmb__lock(&L->lock);
  int64_t over_before = hmb__over(L);
  int64_t old = hmb__limit(L);
  atomic_store_explicit(&L->limit, limit, memory_order_relaxed);
  int64_t over_after = hmb__over(L);
  if (over_after > over_before) /* a shrink: held above the new limit */
    L->limit_debt += over_after - over_before;
  else if (limit > old) /* a growth pays the debt first */
    L->limit_debt =
        L->limit_debt > limit - old ? L->limit_debt - (limit - old) : 0;
  if (over_after > L->peak_over)
    L->peak_over = over_after;
  hmb__ev_add(&L->ev.limit_changes, 1);
  hmb__room_locked(L);
  hmb__dispatch_locked(L);
  hmb__unlock(&L->lock);
  hmb__memory_fit_room(L->mem);
}

void hmb__ledger_stats(hmb__ledger_t *L, hmb_pool_stats_t *out,
                       void (*fn)(hmb__acct_t *, void *), void *ctx) {
  hmb__lock(&L->lock);
  if (fn)
    hmb__walk_locked(L, fn, ctx);
  *out = L->ev;
  int64_t limit = hmb__limit(L);
  out->limit = limit;
  out->held = L->held;
  out->available = limit - L->held;
  out->peak_held = L->peak_held;
  out->overcommitted = hmb__over(L);
  out->peak_overcommitted = L->peak_over;
  out->running = L->running;
  out->acquire_waiters = L->acq_waiters;
  out->borrow_waiters = L->bor_runners; /* runners, as stats.h says */
  out->progress_runner = L->progress ? L->progress->id : 0;
  out->beyond_running = L->progress ? HMB__GET(L->progress->beyond) : 0;
  out->beyond_stopped = L->beyond_stopped;
  out->overcommit_cap = L->cap;
  hmb__unlock(&L->lock);
}
