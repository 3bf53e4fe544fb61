/*
 * check.c - the library's self-check (hmb_pool_check()): the invariants of
 * hmb/pool.h and hmb/runner.h, verified against the ledger and the runners
 * themselves, so that tests and fuzzers need no private fields.
 *
 * It holds the budget lock for the whole walk of the registry (the
 * ledger's open accounts): everything written under that lock is then
 * stable, and no runner can be freed (its account is closed, under the
 * lock, before its object is). Lock-free fields (spare, usage) move meanwhile;
 * only what holds for any interleaving is checked unless the caller says
 * the pool is quiescent.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "core/admission.h"
#include "core/pool.h"
#include "core/runner.h"

typedef struct hmb__check {
  char *buf;
  size_t len;
  int bad;
} hmb__check_t;

static void hmb__fail(hmb__check_t *c, const char *fmt, ...) HMB__PRINTF(2, 3);
static void hmb__fail(hmb__check_t *c, const char *fmt, ...) {
  if (c->bad++)
    return; /* the first one is reported */
  if (c->buf && c->len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->buf, c->len, fmt, ap);
    va_end(ap);
  }
}

static int64_t hmb__get(const _Atomic int64_t *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

/* The heap of holders: ordered, indexed, members exactly those holding. */
static void hmb__check_heap(hmb__check_t *c, const hmb__ledger_t *L) {
  for (int i = 0; i < L->nheap; i++) {
    const hmb__acct_t *a = L->heap[i];
    if (a->heap_at != i)
      hmb__fail(c, "heap: runner #%" PRIu64 " at %d says %d", a->id, i,
                a->heap_at);
    if (hmb__get(&a->held) <= 0)
      hmb__fail(c, "heap: runner #%" PRIu64 " holds nothing", a->id);
    if (i > 0 && hmb__get(&L->heap[(i - 1) / 2]->held) < hmb__get(&a->held))
      hmb__fail(c, "heap: not ordered at %d", i);
  }
}

int hmb_pool_check(hmb_pool_t *p, unsigned flags, char *buf, size_t len) {
  if (!p || (!buf && len) || (flags & ~(unsigned)HMB_CHECK_QUIESCENT))
    return HMB_EINVAL;
  if (len)
    buf[0] = '\0';
  hmb__check_t c = {buf, len, 0};
  int rest = (flags & HMB_CHECK_QUIESCENT) != 0;
  hmb__ledger_t *L = &p->home.ledger;
  hmb__lock(&L->lock);
  int64_t limit = atomic_load_explicit(&L->limit, memory_order_relaxed);
  int64_t sum_held = 0, sum_beyond_stopped = 0, sum_live = 0;
  int32_t running = 0, progress = 0, in_heap = 0;
  int32_t listed = 0;
  for (hmb__acct_t *a = L->accts; a; a = a->reg_next) {
    hmb_runner_t *r = hmb__runner_of(a);
    listed++;
    int st = hmb__acct_state(a);
    int64_t held = hmb__get(&a->held), beyond = hmb__get(&a->beyond);
    sum_held += held;
    if (held < 0)
      hmb__fail(&c, "runner #%" PRIu64 ": held %" PRId64 " < 0", a->id, held);
    if (beyond < 0 || beyond > held)
      hmb__fail(&c,
                "runner #%" PRIu64 ": beyond %" PRId64
                " outside [0, held %" PRId64 "] (R-I3)",
                a->id, beyond, held);
    /* The marks a lock-free free relies on (ledger.h): under the lock,
     * stopped iff the state is returning, queued iff a borrow or grow of
     * the runner is queued, trim iff its freed bytes are due back to the
     * pool (beyond the limit, or above the declared need while running). */
    if (hmb__get(&a->spare_over) < 0)
      hmb__fail(&c, "runner #%" PRIu64 ": spare_over < 0", a->id);
    for (unsigned i = 0; i < HMB__SHARDS; i++) {
      uint64_t w = atomic_load_explicit(&a->shard[i].sb, memory_order_relaxed);
      if (((w & HMB__SB_STOPPED) != 0) != hmb__rstate_returning(st))
        hmb__fail(&c,
                  "runner #%" PRIu64 ": shard %u is%s marked stopped in "
                  "state %d",
                  a->id, i, (w & HMB__SB_STOPPED) ? "" : " not", st);
      if (((w & HMB__SB_TRIM) != 0) != hmb__acct_trim_due(a))
        hmb__fail(&c,
                  "runner #%" PRIu64 ": shard %u is%s marked trim with "
                  "held %" PRId64 ", beyond %" PRId64 ", need %" PRId64,
                  a->id, i, (w & HMB__SB_TRIM) ? "" : " not", held, beyond,
                  hmb__get(&a->need));
      if (((w & HMB__SB_QUEUED) != 0) != (a->bor_queued > 0))
        hmb__fail(&c,
                  "runner #%" PRIu64 ": shard %u is%s marked queued with %d "
                  "borrow(s) queued",
                  a->id, i, (w & HMB__SB_QUEUED) ? "" : " not", a->bor_queued);
    }
    if (st == HMB__R_RUNNING) {
      running++;
      if (beyond > 0 && L->progress != a)
        hmb__fail(&c,
                  "runner #%" PRIu64 " is running, not the progress runner, "
                  "and holds %" PRId64 " beyond the limit (I2)",
                  a->id, beyond);
    } else {
      sum_beyond_stopped += beyond;
    }
    if (atomic_load_explicit(&a->progress, memory_order_relaxed)) {
      progress++;
      if (L->progress != a || st != HMB__R_RUNNING)
        hmb__fail(&c, "runner #%" PRIu64 " flagged progress wrongly", a->id);
    }
    if ((a->heap_at >= 0) != (held > 0))
      hmb__fail(&c, "runner #%" PRIu64 ": in the heap %d, held %" PRId64, a->id,
                a->heap_at >= 0, held);
    in_heap += a->heap_at >= 0;
    if (rest) {
      int64_t live = hmb__runner_live(r), spare = hmb__acct_spare(a);
      sum_live += live;
      /* S-I1: a runner shard is owned only by a thread whose own shard it
       * is and that owns its own memory shard (the quick paths count in
       * both on one owner check). At rest only: the claim's two CAS are
       * relaxed, so a walk in flight could see them in either order. */
      for (unsigned i = 0; i < HMB__SHARDS; i++) {
        unsigned o =
            atomic_load_explicit(&a->shard[i].owner, memory_order_relaxed);
        unsigned me = o - 1u; /* the owner's index + 1 */
        if (o != 0 &&
            (((me - 1u) & (HMB__SHARDS - 1u)) != i ||
             !hmb__memory_shard_is_mine(r->mem, hmb__memory_shard_of(me), me)))
          hmb__fail(&c,
                    "runner #%" PRIu64 ": shard %u is owned by thread index "
                    "%u, whose shard it is not or which does not own its "
                    "memory shard (S-I1)",
                    a->id, i, me - 1u);
      }
      if (live < 0 || live > held)
        hmb__fail(&c,
                  "runner #%" PRIu64 ": live %" PRId64
                  " outside [0, held %" PRId64 "] (R-I1)",
                  a->id, live, held);
      if (st == HMB__R_RUNNING && beyond > live)
        hmb__fail(&c,
                  "runner #%" PRIu64 ": beyond %" PRId64 " > live %" PRId64
                  " at rest (I3: the progress runner holds beyond the limit "
                  "only what is live)",
                  a->id, beyond, live);
      if (held != live + spare)
        hmb__fail(&c,
                  "runner #%" PRIu64 ": held %" PRId64 " != live %" PRId64
                  " + spare %" PRId64 " at rest (R-I2)",
                  a->id, held, live, spare);
      if (hmb__runner_buffers(r) < 0)
        hmb__fail(&c, "runner #%" PRIu64 ": negative buffer count", a->id);
      if (a->nwait)
        hmb__fail(&c, "runner #%" PRIu64 ": requests queued at rest", a->id);
    }
  }
  if (sum_held != L->held)
    hmb__fail(&c, "pool held %" PRId64 " != sum of runners %" PRId64 " (I1)",
              L->held, sum_held);
  if (sum_beyond_stopped != L->beyond_stopped)
    hmb__fail(&c, "beyond of stopped runners %" PRId64 " != ledger %" PRId64,
              sum_beyond_stopped, L->beyond_stopped);
  int64_t over = L->held > limit ? L->held - limit : 0;
  int64_t beyond_p = L->progress ? hmb__get(&L->progress->beyond) : 0;
  if (over > L->beyond_stopped + beyond_p + L->limit_debt)
    hmb__fail(&c,
              "over-commit %" PRId64 " > stopped runners' beyond %" PRId64
              " + the progress runner's %" PRId64
              " + lowered-limit debt %" PRId64 " (I3)",
              over, L->beyond_stopped, beyond_p, L->limit_debt);
  if (L->cap >= 0 && over > L->cap + L->limit_debt)
    hmb__fail(&c,
              "over-commit %" PRId64 " > cap %" PRId64
              " + lowered-limit debt %" PRId64 " (I5)",
              over, L->cap, L->limit_debt);
  if (progress > 1 || (L->progress && progress != 1))
    hmb__fail(&c, "%d runners flagged progress (I2)", (int)progress);
  if (running != L->running)
    hmb__fail(&c, "running %d != runners in RUNNING %d", (int)L->running,
              (int)running);
  if (L->peak_held < L->held || L->peak_over < over)
    hmb__fail(&c, "a peak below its value");
  if (in_heap != L->nheap)
    hmb__fail(&c, "heap holds %d, runners in it %d", (int)L->nheap,
              (int)in_heap);
  hmb__check_heap(&c, L);
  int aw = 0, bw = 0;
  for (hmb__waiter_t *w = L->acq_head; w; w = w->next)
    aw++;
  for (hmb__waiter_t *w = L->bor_head; w; w = w->next)
    bw++;
  if (aw != L->acq_waiters || bw != L->bor_waiters)
    hmb__fail(&c, "queue lengths %d/%d != counts %d/%d", aw, bw,
              (int)L->acq_waiters, (int)L->bor_waiters);
  if (rest && (aw || bw))
    hmb__fail(&c, "requests queued at rest");
  if (listed != hmb__ledger_naccts(L))
    hmb__fail(&c, "registry lists %d runners, counts %d", (int)listed,
              (int)hmb__ledger_naccts(L));
  hmb__unlock(&L->lock);
  if (rest && !c.bad) {
    char why[128];
    if (hmb__memory_check(p->home.mem, why, sizeof why) != 0)
      hmb__fail(&c, "%s", why);
  }
  (void)sum_live;
  return c.bad ? HMB_EFAILED : 0;
}
