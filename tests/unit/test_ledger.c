/*
 * test_ledger.c - the budget ledger's own books (white-box: the fields
 * that hmb_pool_check() reads but no public figure shows).
 *
 * Covered: a borrow that is undone (its memory could not be had) after the
 * limit was lowered under it repays the debt the lower limit left, as any
 * other return of budget does; a stale debt would make the self-check's
 * over-commit and cap tests lenient by that much.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "testsupport.h"

#define KIB ((size_t)1024)

/* A backend that lowers the pool's limit, then fails: the borrow that led
 * to the call is undone after the limit moved under it. */
typedef struct lowering {
  hmb_backend_t vtable;
  hmb_pool_t *pool;
  size_t lower_to; /* 0: allocate normally */
} lowering_t;

static int lowering_alloc(void *ctx, size_t size, size_t align,
                          int prefer_pinned, void **ptr, int *pinned) {
  lowering_t *l = ctx;
  (void)prefer_pinned;
  *pinned = 0;
  if (l->lower_to) {
    assert_int_equal(hmb_pool_set_limit(l->pool, l->lower_to), HMB_OK);
    l->lower_to = 0;
    return HMB_ENOMEM;
  }
  return posix_memalign(ptr, align, size) == 0 ? HMB_OK : HMB_ENOMEM;
}

static void lowering_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)ctx;
  (void)size;
  (void)pinned;
  free(ptr);
}

static void test_undone_borrow_repays_the_limit_debt(void **state) {
  (void)state;
  lowering_t l;
  memset(&l, 0, sizeof l);
  l.vtable.ctx = &l;
  l.vtable.alloc = lowering_alloc;
  l.vtable.free = lowering_free;
  l.pool = ts_pool(100 * KIB, &l.vtable, NULL);
  hmb__ledger_t *L = &((hmb__home_t *)(void *)l.pool)->ledger;
  hmb_runner_t *r = ts_started_runner(l.pool, 50 * KIB);
  hmb_buffer_t *a = NULL, *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 50 * KIB, 0, &a), HMB_OK);
  /* Borrows 40 KiB within the limit (held 90 KiB); the backend lowers the
   * limit to 60 KiB (30 KiB of held above it: the debt) and fails. */
  l.lower_to = 60 * KIB;
  assert_int_equal(hmb_runner_alloc(r, 40 * KIB, 0, &b), HMB_ENOMEM);
  assert_null(b);
  hmb_pool_stats_t ps = ts_pool_stats(l.pool);
  assert_int_equal(ps.held, (int64_t)(50 * KIB)); /* the borrow is undone */
  assert_int_equal(ps.limit, (int64_t)(60 * KIB));
  /* Nothing is above the limit any more, so nothing is owed. */
  assert_int_equal(L->limit_debt, 0);
  char report[512];
  assert_int_equal(
      hmb_pool_check(l.pool, HMB_CHECK_QUIESCENT, report, sizeof report),
      HMB_OK);
  hmb_buffer_close(a);
  assert_int_equal(hmb_runner_finish(r, 0, NULL), HMB_OK);
  hmb_runner_destroy(r);
  ts_pool_done(l.pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_undone_borrow_repays_the_limit_debt),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
