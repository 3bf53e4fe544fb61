/*
 * describe.c - the pool's description and its leak report (see describe.h);
 * the ledger's own log lines are in lines.c.
 *
 * hmb_pool_describe() costs O(top log top) under the budget lock whatever
 * the number of runners: the ledger keeps the runners that hold budget in a
 * max-heap, and the top ones are found by a best-first walk of it (a small
 * frontier of heap positions, largest first). Formatting happens after the
 * lock is released.
 */
#include "core/describe.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/runner.h"

enum { HMB__DESCRIBE_MAX = 32 };

typedef struct hmb__line {
  uint64_t id;
  char name[32];
  int state;
  int progress;
  int64_t held, live, peak_live, beyond;
} hmb__line_t;

static void hmb__line_of(hmb__line_t *l, hmb__acct_t *a) {
  hmb_runner_t *r = hmb__runner_of(a);
  l->id = a->id;
  memcpy(l->name, a->name, sizeof l->name);
  l->state = hmb_runner_state(r);
  l->progress = atomic_load_explicit(&a->progress, memory_order_relaxed);
  l->held = atomic_load_explicit(&a->held, memory_order_relaxed);
  l->beyond = atomic_load_explicit(&a->beyond, memory_order_relaxed);
  l->live = hmb__runner_live(r);
  l->peak_live = hmb__runner_peak_live(r);
}

/* The `top` largest holders, largest first, by a best-first walk. */
static int hmb__top_locked(const hmb__ledger_t *L, hmb__line_t *lines,
                           int top) {
  int frontier[2 * HMB__DESCRIBE_MAX + 2];
  int nf = 0, n = 0;
  if (L->nheap > 0)
    frontier[nf++] = 0;
  while (nf > 0 && n < top) {
    int best = 0;
    for (int i = 1; i < nf; i++)
      if (atomic_load_explicit(&L->heap[frontier[i]]->held,
                               memory_order_relaxed) >
          atomic_load_explicit(&L->heap[frontier[best]]->held,
                               memory_order_relaxed))
        best = i;
    int at = frontier[best];
    frontier[best] = frontier[--nf];
    hmb__line_of(&lines[n++], L->heap[at]);
    for (int c = 2 * at + 1; c <= 2 * at + 2; c++)
      if (c < L->nheap)
        frontier[nf++] = c;
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
  hmb__line_t lines[HMB__DESCRIBE_MAX];
  hmb__home_t *h = hmb__home_of(p);
  hmb__ledger_t *L = &h->ledger;
  hmb__lock(&L->lock);
  int nr = hmb__ledger_naccts(L);
  int64_t held = L->held;
  int64_t limit = atomic_load_explicit(&L->limit, memory_order_relaxed);
  int running = L->running, aw = L->acq_waiters, bw = L->bor_runners;
  uint64_t prog = L->progress ? L->progress->id : 0;
  int n = hmb__top_locked(L, lines, top);
  hmb__unlock(&L->lock);

  char tmp[4096];
  int w = snprintf(tmp, sizeof tmp,
                   "pool: held %" PRId64 " of limit %" PRId64
                   " (available %" PRId64 ", over-committed %" PRId64
                   "), %d runners, %d running, %d waiting to start, "
                   "%d waiting to borrow, progress runner #%" PRIu64,
                   held, limit, limit - held, held > limit ? held - limit : 0,
                   nr, running, aw, bw, prog);
  for (int i = 0; i < n && w >= 0 && (size_t)w < sizeof tmp; i++)
    w += snprintf(tmp + w, sizeof tmp - (size_t)w,
                  "; #%" PRIu64 " '%s' %s%s held %" PRId64 " (beyond %" PRId64
                  ") live %" PRId64 " peak live %" PRId64,
                  lines[i].id, lines[i].name,
                  hmb_runner_state_name(lines[i].state),
                  lines[i].progress ? " (progress)" : "", lines[i].held,
                  lines[i].beyond, lines[i].live, lines[i].peak_live);
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

typedef struct hmb__leak {
  uint64_t id;
  char name[32];
  int state;
  int64_t held, live, buffers;
} hmb__leak_t;

typedef struct hmb__leaks {
  hmb__leak_t lk[HMB__DESCRIBE_MAX];
  int n, nr;
  int64_t bufs, bytes;
} hmb__leaks_t;

static void hmb__leak_add(hmb__acct_t *a, void *ctx) {
  hmb__leaks_t *s = ctx;
  hmb_runner_t *r = hmb__runner_of(a);
  int64_t b = hmb__runner_buffers(r), l = hmb__runner_live(r);
  s->bufs += b;
  s->bytes += l;
  s->nr++;
  if (s->n < HMB__DESCRIBE_MAX) {
    hmb__leak_t *k = &s->lk[s->n++];
    k->id = a->id;
    memcpy(k->name, a->name, sizeof k->name);
    k->state = hmb_runner_state(r);
    k->held = atomic_load_explicit(&a->held, memory_order_relaxed);
    k->live = l;
    k->buffers = b;
  }
}

int hmb__log_leaks(hmb_pool_t *p) {
  hmb__leaks_t s;
  memset(&s, 0, sizeof s);
  hmb__home_t *h = hmb__home_of(p);
  hmb__ledger_walk(&h->ledger, hmb__leak_add, &s);
  const hmb__leak_t *lk = s.lk;
  int n = s.n, nr = s.nr;
  int64_t bufs = s.bufs, bytes = s.bytes;
  char desc[1024];
  hmb_pool_describe(p, 1, desc, sizeof desc);
  char *cut = strstr(desc, "; #"); /* the pool part only */
  if (cut)
    *cut = '\0';
  hmb__log(&h->log, HMB_LOG_ERROR,
           "leak: pool destroyed with %d runner(s) and %" PRId64
           " live buffer(s) (%" PRId64 " bytes) still alive; nothing was "
           "destroyed; %s",
           nr, bufs, bytes, desc);
  for (int i = 0; i < n; i++)
    hmb__log(&h->log, HMB_LOG_ERROR,
             "leak: runner #%" PRIu64 " '%s' %s%s holds %" PRId64
             " bytes of budget, %" PRId64 " live bytes in %" PRId64
             " buffer(s)",
             lk[i].id, lk[i].name, hmb_runner_state_name(lk[i].state),
             lk[i].state == HMB_RUNNER_CLOSED ? " (handle destroyed)" : "",
             lk[i].held, lk[i].live, lk[i].buffers);
  if (nr > n)
    hmb__log(&h->log, HMB_LOG_ERROR, "leak: ... and %d more runner(s)", nr - n);
  return nr;
}
