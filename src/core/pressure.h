/*
 * pressure.h - the set of pressure handlers of a pool (hmb/pool.h).
 *
 * Handlers are added and removed at any time and called, with no library
 * lock held, by the thread whose request is short. A removal waits until
 * no call of the handler is running, so its user data may be freed once
 * hmb_pool_remove_pressure_handler() returns.
 *
 * Lock: one mutex per set, a leaf held only to copy the handlers or to
 * change a count; never while a handler runs.
 */
#ifndef HMB_SRC_CORE_PRESSURE_H
#define HMB_SRC_CORE_PRESSURE_H

#include "hmb/pool.h"

typedef struct hmb__pressure_set hmb__pressure_set_t;

#define HMB__PRESSURE_MAX 64

/* 0 or HMB_ENOMEM. */
int hmb__pressure_create(hmb__pressure_set_t **out);
void hmb__pressure_destroy(hmb__pressure_set_t *set);

/* Handlers registered now (a relaxed snapshot: a hint for admission). */
int hmb__pressure_count(const hmb__pressure_set_t *set);

/* 0, HMB_ENOMEM (full). */
int hmb__pressure_add(hmb__pressure_set_t *set, hmb_pressure_fn fn, void *user,
                      int *id);
/* 0, HMB_EINVAL (unknown id). Waits for running calls of it. */
int hmb__pressure_remove(hmb__pressure_set_t *set, int id);

/* Call every handler with `ev`, in registration order. */
void hmb__pressure_run(hmb__pressure_set_t *set, hmb_pool_t *pool,
                       const hmb_pressure_t *ev);

#endif /* HMB_SRC_CORE_PRESSURE_H */
