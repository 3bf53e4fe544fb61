/*
 * pressure.c - the pressure handler set (see pressure.h).
 *
 * Each slot has an id, the handler, and a count of calls in progress. A
 * run copies the live slots under the mutex, raising their counts, calls
 * them without it, then lowers the counts and wakes a waiting removal. A
 * removed slot is marked dead at once (no new call starts) and is reused
 * only after its count drops to zero.
 */
#include "core/pressure.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "hmb/errors.h"

typedef struct hmb__pslot {
  int id; /* 0: free */
  int live;
  int calls; /* calls in progress */
  hmb_pressure_fn fn;
  void *user;
} hmb__pslot_t;

struct hmb__pressure_set {
  pthread_mutex_t mu;
  pthread_cond_t idle;
  hmb__pslot_t slot[HMB__PRESSURE_MAX];
  int next_id;
  _Atomic int count; /* live handlers */
};

int hmb__pressure_create(hmb__pressure_set_t **out) {
  hmb__pressure_set_t *s = calloc(1, sizeof *s);
  if (!s)
    return HMB_ENOMEM;
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    free(s);
    return HMB_ENOMEM;
  }
  if (pthread_cond_init(&s->idle, NULL) != 0) {
    pthread_mutex_destroy(&s->mu);
    free(s);
    return HMB_ENOMEM;
  }
  s->next_id = 1;
  *out = s;
  return 0;
}

void hmb__pressure_destroy(hmb__pressure_set_t *set) {
  if (!set)
    return;
  pthread_cond_destroy(&set->idle);
  pthread_mutex_destroy(&set->mu);
  free(set);
}

int hmb__pressure_count(const hmb__pressure_set_t *set) {
  /* Relaxed: admission only needs a hint; a handler added concurrently is
   * seen by the next decision. */
  return atomic_load_explicit(&set->count, memory_order_relaxed);
}

int hmb__pressure_add(hmb__pressure_set_t *set, hmb_pressure_fn fn, void *user,
                      int *id) {
  int rc = HMB_ENOMEM;
  pthread_mutex_lock(&set->mu);
  for (int i = 0; i < HMB__PRESSURE_MAX; i++) {
    hmb__pslot_t *s = &set->slot[i];
    if (s->id == 0) {
      s->id = set->next_id++;
      s->live = 1;
      s->calls = 0;
      s->fn = fn;
      s->user = user;
      if (id)
        *id = s->id;
      atomic_fetch_add_explicit(&set->count, 1, memory_order_relaxed);
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&set->mu);
  return rc;
}

int hmb__pressure_remove(hmb__pressure_set_t *set, int id) {
  int rc = HMB_EINVAL;
  pthread_mutex_lock(&set->mu);
  for (int i = 0; i < HMB__PRESSURE_MAX; i++) {
    hmb__pslot_t *s = &set->slot[i];
    if (s->id == id && id != 0 && s->live) {
      s->live = 0;
      atomic_fetch_sub_explicit(&set->count, 1, memory_order_relaxed);
      while (s->calls > 0)
        pthread_cond_wait(&set->idle, &set->mu);
      s->id = 0;
      rc = 0;
      break;
    }
  }
  pthread_mutex_unlock(&set->mu);
  return rc;
}

void hmb__pressure_run(hmb__pressure_set_t *set, hmb_pool_t *pool,
                       const hmb_pressure_t *ev) {
  int idx[HMB__PRESSURE_MAX];
  hmb__pslot_t copy[HMB__PRESSURE_MAX];
  int n = 0;
  pthread_mutex_lock(&set->mu);
  for (int i = 0; i < HMB__PRESSURE_MAX; i++)
    if (set->slot[i].id && set->slot[i].live) {
      set->slot[i].calls++;
      idx[n] = i;
      copy[n++] = set->slot[i];
    }
  pthread_mutex_unlock(&set->mu);
  for (int k = 0; k < n; k++)
    copy[k].fn(copy[k].user, pool, ev);
  if (n == 0)
    return;
  pthread_mutex_lock(&set->mu);
  for (int k = 0; k < n; k++)
    set->slot[idx[k]].calls--;
  pthread_cond_broadcast(&set->idle);
  pthread_mutex_unlock(&set->mu);
}
