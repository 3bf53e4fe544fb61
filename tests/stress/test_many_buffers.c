/*
 * test_many_buffers.c - more live buffers on one thread of one runner than
 * a shard's word counts (HMB__SB_BUFS_MAX, 2^21 - 1: core/ledger_state.h).
 * The buffers beyond it hold a runner reference of their own; every one is
 * still counted exactly, gives its budget back at its close, and keeps the
 * runner alive after its handle is destroyed, in any order of closes.
 * AddressSanitizer catches a runner freed too early. Its own executable:
 * two million allocations are too slow for valgrind's memcheck.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "testsupport.h"

#define WORD_BUFS ((size_t)(1u << 21) - 1) /* counted in the shard's word */
#define EXTRA ((size_t)1000)               /* beyond it */

static void check_counts(hmb_pool_t *pool, hmb_runner_t *r, size_t live,
                         int64_t held) {
  if (r) {
    hmb_runner_stats_t s = ts_runner_stats(r);
    assert_int_equal(s.live_buffers, (int64_t)live);
    assert_int_equal(s.live, (int64_t)live);
    assert_int_equal(s.held, held);
    assert_int_equal(s.spare, held - (int64_t)live);
  }
  hmb_pool_stats_t p = ts_pool_stats(pool);
  assert_int_equal(p.live_buffers, (int64_t)live);
  assert_int_equal(p.live_bytes, (int64_t)live);
  assert_int_equal(p.held, held);
  ts_check(pool, HMB_CHECK_QUIESCENT);
}

/* A pool, a runner started for `n` bytes, and `n` reservations of 1 byte
 * made on the calling thread (so in one shard). */
static hmb_buffer_t **many_reserved(size_t n, hmb_pool_t **pool,
                                    hmb_runner_t **r) {
  *pool = ts_pool(64u << 20, NULL, NULL);
  *r = ts_started_runner(*pool, n);
  hmb_buffer_t **b = calloc(n, sizeof *b);
  assert_non_null(b);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(hmb_runner_reserve(*r, 1, &b[i]), HMB_OK);
  return b;
}

static void test_buffers_beyond_a_shard_count(void **state) {
  (void)state;
  const size_t n = WORD_BUFS + EXTRA;
  hmb_pool_t *pool = NULL;
  hmb_runner_t *r = NULL;
  hmb_buffer_t **b = many_reserved(n, &pool, &r);
  check_counts(pool, r, n, (int64_t)n);

  /* Closes of buffers beyond the count: their bytes become spare. */
  for (size_t i = n - EXTRA / 2; i < n; i++)
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
  size_t live = n - EXTRA / 2;
  check_counts(pool, r, live, (int64_t)n);
  /* The count has room again: new buffers are counted as before. */
  for (size_t i = n - EXTRA / 2; i < n; i++)
    assert_int_equal(hmb_runner_reserve(r, 1, &b[i]), HMB_OK);
  check_counts(pool, r, n, (int64_t)n);
  for (size_t i = n - EXTRA / 2; i < n; i++)
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
  assert_int_equal(hmb_runner_wait_idle(r, 0), HMB_ETIMEDOUT);

  /* The handle goes while they are live: the runner outlives it, with
   * its budget returning as they close. */
  hmb_runner_destroy(r);
  assert_int_equal(ts_pool_stats(pool).runners, 1);
  check_counts(pool, NULL, live, (int64_t)live);
  /* Every buffer counted in the word first: the shard is released, and
   * the buffers that hold references keep the runner. */
  for (size_t i = 0; i < WORD_BUFS; i++)
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
  live -= WORD_BUFS;
  assert_int_equal(live, EXTRA - EXTRA / 2);
  assert_int_equal(ts_pool_stats(pool).runners, 1);
  check_counts(pool, NULL, live, (int64_t)live);
  for (size_t i = WORD_BUFS; i < n - EXTRA / 2; i++) {
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
    live--;
    assert_int_equal(ts_pool_stats(pool).runners, live ? 1 : 0);
  }
  free(b);
  ts_pool_done(pool);
}

/* The other order: the buffers with references close first, after the
 * handle; the word's last buffer frees the runner. */
static void test_buffers_beyond_a_shard_count_close_first(void **state) {
  (void)state;
  const size_t n = WORD_BUFS + EXTRA;
  hmb_pool_t *pool = NULL;
  hmb_runner_t *r = NULL;
  hmb_buffer_t **b = many_reserved(n, &pool, &r);
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(r, 0, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  hmb_runner_destroy(r);
  for (size_t i = n; i-- > WORD_BUFS;)
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
  check_counts(pool, NULL, WORD_BUFS, (int64_t)WORD_BUFS);
  assert_int_equal(ts_pool_stats(pool).runners, 1);
  for (size_t i = 0; i < WORD_BUFS; i++)
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
  assert_int_equal(ts_pool_stats(pool).runners, 0);
  free(b);
  ts_pool_done(pool);
}

/* Only the buffers with references are left when the handle goes: every
 * shard is empty at the destroy's seal, yet the runner must stay (the
 * destroy closes the account in its own hold only when nothing else holds
 * a reference: core/ledger.h), registered, until the last of them. */
static void test_destroy_with_only_referenced_buffers_left(void **state) {
  (void)state;
  const size_t n = WORD_BUFS + EXTRA;
  hmb_pool_t *pool = NULL;
  hmb_runner_t *r = NULL;
  hmb_buffer_t **b = many_reserved(n, &pool, &r);
  for (size_t i = 0; i < WORD_BUFS; i++)
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
  check_counts(pool, r, EXTRA, (int64_t)n);
  hmb_runner_destroy(r);
  assert_int_equal(ts_pool_stats(pool).runners, 1);
  check_counts(pool, NULL, EXTRA, (int64_t)EXTRA);
  for (size_t i = WORD_BUFS; i < n; i++) {
    assert_int_equal(hmb_buffer_close(b[i]), HMB_OK);
    assert_int_equal(ts_pool_stats(pool).runners, i + 1 < n ? 1 : 0);
  }
  check_counts(pool, NULL, 0, 0);
  free(b);
  ts_pool_done(pool);
}

int main(void) {
  ts_watchdog_arm("test_many_buffers", 240);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_buffers_beyond_a_shard_count),
      cmocka_unit_test(test_buffers_beyond_a_shard_count_close_first),
      cmocka_unit_test(test_destroy_with_only_referenced_buffers_left),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
