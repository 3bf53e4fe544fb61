/*
 * physical_findings.c - where the pool's physical memory left the bound
 * hmb/stats.h states; kept as regression tests (each failed before its fix;
 * physical_bound.c checks the bound under load).
 *
 *   - stats.h once stated "pageable memory ... <= live_bytes + C + B x
 *     max(16, alignment) + page rounding". Blocks come in size classes (up
 *     to 1/8 larger than the request), a rounding that statement left out:
 *     one block of 2 MiB occupies 2.25 MiB. stats.h now states the class
 *     rounding R, and the test checks that term.
 *   - hmb_ptr_realloc() shrinking a block in place kept all of it while
 *     the runner is charged (and live_bytes counts) only the new size: a
 *     task can hold any amount of physical memory with a budget of a few
 *     bytes (here 64 blocks of 2 MiB shrunk to 1 byte: 144 MiB on a 4 MiB
 *     pool).
 */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "hmb.h"
#include "storm_support.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static hmb_pool_t *pool_of(size_t limit) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  hmb_pool_t *pool = NULL;
  assert_int_equal(hmb_pool_create(&cfg, &pool), 0);
  return pool;
}

static hmb_runner_t *started(hmb_pool_t *pool, size_t estimate) {
  hmb_runner_config_t c;
  hmb_runner_config_init(&c);
  c.estimate = estimate;
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(pool, &c, &r), 0);
  assert_int_equal(hmb_runner_start(r, 0), 0);
  return r;
}

/* The stated bound of hmb/stats.h for what is live now: live + C + R, with
 * R < (B x P + live) / 8 + B x (P + 16) + (mapped blocks) x page. Every
 * block here is mapped (256 KiB or more), so B counts them too. */
static int64_t stated_rhs(const hmb_pool_stats_t *st,
                          const hmb_memory_stats_t *ms, size_t prefix) {
  int64_t b = st->live_buffers, p = (int64_t)prefix;
  return st->live_bytes + ms->cached_bytes + (b * p + st->live_bytes) / 8 +
         b * (p + 16) + b * (int64_t)sts_page();
}

static void one_block_within_the_stated_term(void **state) {
  (void)state;
  hmb_pool_t *pool = pool_of(8 * MIB);
  hmb_runner_t *r = started(pool, 4 * MIB);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 2 * MIB, 0, &b), 0);
  hmb_pool_stats_t st;
  hmb_memory_stats_t ms;
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  int64_t rhs = stated_rhs(&st, &ms, 64);
  print_message(
      "a 2 MiB block: pageable_physical %" PRId64 " (+ cached %" PRId64
      "); the stated bound %" PRId64 "; with the class rounding %zu\n",
      ms.pageable_physical, ms.cached_bytes, rhs, sts_phys_bound(2 * MIB, 64));
  assert_true(ms.pageable_physical <= (int64_t)sts_phys_bound(2 * MIB, 64));
  assert_true(ms.pageable_physical + ms.cached_bytes <= rhs);
  assert_int_equal(hmb_buffer_close(b), 0);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

static void shrinking_realloc_keeps_the_bound(void **state) {
  (void)state;
  size_t limit = 4 * MIB;
  hmb_pool_t *pool = pool_of(limit);
  hmb_runner_t *r = started(pool, limit);
  void *p[64];
  int n = 0;
  for (; n < 64; n++) {
    assert_int_equal(
        hmb_ptr_alloc(hmb_runner_allocator(r), 2 * MIB, 0, 0, &p[n]), 0);
    assert_int_equal(hmb_ptr_realloc(&p[n], 1), 0);
  }
  hmb_pool_stats_t st;
  hmb_memory_stats_t ms;
  assert_int_equal(hmb_pool_stats(pool, &st), 0);
  assert_int_equal(hmb_pool_memory_stats(pool, &ms), 0);
  int64_t over = st.held > st.limit ? st.held - st.limit : 0;
  int64_t rhs =
      st.limit + over + st.live_buffers * (int64_t)(sts_phys_bound(1, 16) - 1);
  print_message("64 blocks of 2 MiB shrunk to 1 byte: live %" PRId64
                " bytes, held %" PRId64 " of %" PRId64
                ", pageable_physical %" PRId64
                " (%.1f x the limit); the bound %" PRId64 "\n",
                st.live_bytes, st.held, st.limit, ms.pageable_physical,
                (double)ms.pageable_physical / (double)st.limit, rhs);
  assert_true(ms.pageable_physical + ms.cached_bytes <= rhs);
  for (int i = 0; i < n; i++)
    assert_int_equal(hmb_ptr_free(p[i]), 0);
  hmb_runner_destroy(r);
  assert_int_equal(hmb_pool_destroy(pool), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(one_block_within_the_stated_term),
      cmocka_unit_test(shrinking_realloc_keeps_the_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
