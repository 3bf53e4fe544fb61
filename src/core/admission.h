/*
 * admission.h - the admission rules, as a pure decision over the ledger.
 *
 * hmb__admit_next() reads the ledger (under its lock, which the caller
 * holds) and says what the next step is: grant a waiter (how many bytes, by
 * which rule), refuse one, ask one to run the pressure handlers first, or
 * make a runner the progress runner. It changes nothing; ledger.c applies
 * the decision and asks again until there is nothing to do. The rules are
 * those of hmb/pool.h (R1-R5), in this order:
 *   1. R5: requests of the progress runner: its borrows are granted at once
 *      (beyond the limit if need be, after one round of pressure handlers,
 *      and only within the cap); its grows get what is available;
 *   2. R1: the head of the other borrows and grows, if it fits;
 *   3. R4: with no progress runner, when every running runner waits to
 *      borrow or grow, the waiting one that holds the most becomes it;
 *   4. R1: while any borrow or grow waits, no start is granted;
 *   5. R2/R3: the head start, if it fits; else, when nothing runs, what is
 *      available (it becomes the progress runner); else it waits, and so do
 *      the starts behind it.
 */
#ifndef HMB_SRC_CORE_ADMISSION_H
#define HMB_SRC_CORE_ADMISSION_H

#include <pthread.h>
#include <stdint.h>

#include "core/ledger_state.h"

enum hmb__wait_result { HMB__PENDING = 1 };

enum hmb__pressure_state {
  HMB__PRESSURE_NONE = 0, /* not asked yet */
  HMB__PRESSURE_DUE = 1,  /* the waiter's thread must run the handlers */
  HMB__PRESSURE_DONE = 2  /* ran; it may now go beyond the limit */
};

/* A request waiting for budget; lives on the requesting thread's stack. */
struct hmb__waiter {
  hmb__waiter_t *next, *prev;
  hmb__cond_t cond;
  int cond_ready; /* cond initialised (before the thread first sleeps) */
  hmb__acct_t *acct;
  int kind;       /* hmb_request_kind_t */
  int64_t need;   /* bytes still wanted from the pool */
  int64_t local;  /* a borrow: bytes served from its own runner's spare */
  unsigned shard; /* the requesting thread's shard (spare is credited) */
  int priority;
  uint64_t seq;   /* arrival (a start: its runner's first arrival) */
  int result;     /* HMB__PENDING, 0 granted, or an HMB_E* code */
  int pressure;   /* enum hmb__pressure_state */
  int fit_room;   /* the grant shrank the cache's room: fit it first */
  hmb__grant_t g; /* filled by the grant */
};

enum hmb__action {
  HMB__ACT_NONE = 0,
  HMB__ACT_GRANT,    /* grant `w` `bytes` by `rule` */
  HMB__ACT_REJECT,   /* fail `w` with `code` */
  HMB__ACT_PRESSURE, /* `w` must run the pressure handlers first */
  HMB__ACT_PROGRESS  /* make `a` the progress runner */
};

typedef struct hmb__decision {
  int act;
  hmb__waiter_t *w;
  hmb__acct_t *a;
  int64_t bytes;
  int rule;
  int code;
} hmb__decision_t;

/*
 * The next step of admission. `pressure_armed`: pressure handlers are
 * registered. The caller holds the budget lock.
 */
void hmb__admit_next(const hmb__ledger_t *L, int pressure_armed,
                     hmb__decision_t *d);

/*
 * Whether admission has nothing to decide: no request is queued. Then
 * hmb__admit_next() takes no step (every rule serves a queued request; R4
 * needs a waiting borrower), so the dispatch may stop before asking it.
 * The caller holds the budget lock.
 */
static inline int hmb__admit_none_queued(const hmb__ledger_t *L) {
  return !L->bor_head && !L->acq_head;
}

/*
 * Whether a start of `need` bytes arriving now is granted at once within
 * the limit, and is the only step admission takes: 1 exactly when both
 * queues are empty and it fits. hmb__admit_next() with it queued would
 * then grant it (R2, rule WITHIN) and, after the grant, take no step (no
 * borrower waits: no R5, R1 or R4 step; no other start). The caller holds
 * the budget lock.
 */
int hmb__admit_start_at_once(const hmb__ledger_t *L, int64_t need);

#endif /* HMB_SRC_CORE_ADMISSION_H */
