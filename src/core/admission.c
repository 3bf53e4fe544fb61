/*
 * admission.c - the admission rules (see admission.h and hmb/pool.h).
 *
 * Pure functions of the ledger: nothing here writes, locks or calls out,
 * so the rules can be read (and compared with the SPIN model in
 * docs/model/) in one place. Every field read here is under the budget
 * lock, which the caller holds.
 */
#include "core/admission.h"

#include "hmb/errors.h"

static int64_t hmb__avail(const hmb__ledger_t *L) {
  return atomic_load_explicit(&L->limit, memory_order_relaxed) - L->held;
}

/* Granting `need` more would overflow the 64-bit counters. */
static int hmb__too_big(const hmb__ledger_t *L, int64_t need) {
  return need > INT64_MAX - L->held;
}

static void hmb__decide(hmb__decision_t *d, int act, hmb__waiter_t *w,
                        int64_t bytes, int rule, int code) {
  d->act = act;
  d->w = w;
  d->a = w ? w->acct : NULL;
  d->bytes = bytes;
  d->rule = rule;
  d->code = code;
}

/* R5: the next request of the progress runner that can be decided. */
static int hmb__progress_step(const hmb__ledger_t *L, int armed,
                              hmb__decision_t *d) {
  int64_t avail = hmb__avail(L);
  for (hmb__waiter_t *w = L->bor_head; w; w = w->next) {
    if (w->acct != L->progress)
      continue;
    if (hmb__too_big(L, w->need)) {
      hmb__decide(d, HMB__ACT_REJECT, w, 0, 0, HMB_ETOOBIG);
      return 1;
    }
    if (w->kind == HMB_REQUEST_GROW) { /* a reservation: never beyond */
      int64_t b = avail < 0 ? 0 : (avail < w->need ? avail : w->need);
      hmb__decide(d, HMB__ACT_GRANT, w, b, HMB__RULE_WITHIN, 0);
      return 1;
    }
    if (avail >= w->need) {
      hmb__decide(d, HMB__ACT_GRANT, w, w->need, HMB__RULE_WITHIN, 0);
      return 1;
    }
    int64_t over = L->held + w->need -
                   atomic_load_explicit(&L->limit, memory_order_relaxed);
    if (L->cap >= 0 && over > L->cap) {
      hmb__decide(d, HMB__ACT_REJECT, w, 0, 0, HMB_ELIMIT);
      return 1;
    }
    if (w->pressure == HMB__PRESSURE_DUE)
      continue; /* its thread is running the handlers */
    if (armed && w->pressure == HMB__PRESSURE_NONE) {
      hmb__decide(d, HMB__ACT_PRESSURE, w, 0, 0, 0);
      return 1;
    }
    hmb__decide(d, HMB__ACT_GRANT, w, w->need, HMB__RULE_PROGRESS, 0);
    return 1;
  }
  return 0;
}

/* R4: the waiting borrower that holds the most (on a tie, the first in the
 * queue's order: higher priority, then earlier). */
static hmb__acct_t *hmb__progress_candidate(const hmb__ledger_t *L) {
  hmb__acct_t *best = NULL;
  int64_t most = -1;
  for (hmb__waiter_t *w = L->bor_head; w; w = w->next) {
    int64_t h = atomic_load_explicit(&w->acct->held, memory_order_relaxed);
    if (h > most) {
      most = h;
      best = w->acct;
    }
  }
  return best;
}

void hmb__admit_next(const hmb__ledger_t *L, int pressure_armed,
                     hmb__decision_t *d) {
  hmb__decide(d, HMB__ACT_NONE, NULL, 0, 0, 0);
  if (L->progress && hmb__progress_step(L, pressure_armed, d))
    return;

  /* R1: the head of the other borrows and grows (by priority, then
   * arrival: the queue's order). */
  hmb__waiter_t *w = L->bor_head;
  while (w && w->acct == L->progress)
    w = w->next;
  if (w) {
    if (hmb__too_big(L, w->need)) {
      hmb__decide(d, HMB__ACT_REJECT, w, 0, 0, HMB_ETOOBIG);
      return;
    }
    if (hmb__avail(L) >= w->need) {
      hmb__decide(d, HMB__ACT_GRANT, w, w->need, HMB__RULE_WITHIN, 0);
      return;
    }
  }

  /* R4: every running runner waits to borrow or grow (runners, not
   * requests: several threads of one runner count once). */
  if (!L->progress && L->running > 0 && L->bor_runners >= L->running) {
    d->act = HMB__ACT_PROGRESS;
    d->a = hmb__progress_candidate(L);
    return;
  }
  if (L->bor_head)
    return; /* R1: borrowers first */

  /* R2/R3: the head start blocks those behind it. */
  w = L->acq_head;
  if (!w)
    return;
  if (hmb__too_big(L, w->need)) {
    hmb__decide(d, HMB__ACT_REJECT, w, 0, 0, HMB_ETOOBIG);
    return;
  }
  int64_t avail = hmb__avail(L);
  if (avail >= w->need)
    hmb__decide(d, HMB__ACT_GRANT, w, w->need, HMB__RULE_WITHIN, 0);
  else if (L->running == 0)
    hmb__decide(d, HMB__ACT_GRANT, w, avail > 0 ? avail : 0, HMB__RULE_IDLE, 0);
}

int hmb__admit_start_at_once(const hmb__ledger_t *L, int64_t need) {
  /* A borrow or grow waiting is served first (R1), and a start waiting is
   * ahead of this one (R2): neither may be passed. */
  if (L->bor_head || L->acq_head)
    return 0;
  /* The dispatch would reject it (too big) or grant it by R3 (not fit). */
  return !hmb__too_big(L, need) && hmb__avail(L) >= need;
}
