/*
 * test_buffer.c - refcounting, slices, close events and their order, the
 * buffer of size 0, and deep chains of slices.
 */
#include <stdint.h>
#include <string.h>

#include "testsupport.h"

typedef struct events {
  long refs[16];
  long count_at_event[16]; /* hmb_buffer_refcount() inside the handler */
  void *data_at_event[16];
  int n;
  hmb_pool_t *pool; /* when set, pool live bytes are recorded per event */
  int64_t pool_live[16];
  hmb_buffer_handler_t chain; /* previous handler to call, if any */
} events_t;

static void record(void *user, hmb_buffer_t *buf, long refs) {
  events_t *ev = user;
  if (ev->n < 16) {
    ev->refs[ev->n] = refs;
    ev->count_at_event[ev->n] = hmb_buffer_refcount(buf);
    ev->data_at_event[ev->n] = refs == 0 ? hmb_buffer_data(buf) : NULL;
    if (ev->pool) {
      hmb_pool_stats_t st;
      hmb_pool_stats(ev->pool, &st);
      ev->pool_live[ev->n] = st.live_bytes;
    }
    ev->n++;
  }
  hmb_buffer_handler_invoke(&ev->chain, buf, refs);
}

static void test_refcount_and_handler(void **state) {
  (void)state;
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 100, 0, &b), HMB_OK);
  assert_non_null(hmb_buffer_data(b));
  assert_int_equal(hmb_buffer_size(b), 100);
  assert_int_equal(hmb_buffer_is_pinned(b), 0);
  assert_int_equal(hmb_buffer_refcount(b), 1);
  assert_int_equal(((uintptr_t)hmb_buffer_data(b)) % 64, 0);
  memset(hmb_buffer_data(b), 0xab, 100);

  events_t ev = {0};
  hmb_buffer_handler_t h = {record, &ev}, prev = {0};
  assert_int_equal(hmb_buffer_set_handler(b, &h, &prev), HMB_OK);
  assert_null(prev.fn);
  assert_int_equal(hmb_buffer_retain(b), HMB_OK);
  assert_int_equal(hmb_buffer_retain(b), HMB_OK);
  assert_int_equal(hmb_buffer_refcount(b), 3);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  assert_int_equal(ev.n, 2);
  assert_int_equal(ev.refs[0], 2);
  assert_int_equal(ev.refs[1], 1);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  assert_int_equal(ev.n, 3);
  assert_int_equal(ev.refs[2], 0);
  assert_null(ev.data_at_event[2]); /* memory already returned */
  /* The count the handler reads is the one it is given, also at the last
   * close (made by the sole holder without a read-modify-write). */
  for (int i = 0; i < 3; i++)
    assert_int_equal(ev.count_at_event[i], ev.refs[i]);
}

static void test_set_handler_returns_previous_and_chains(void **state) {
  (void)state;
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 8, 0, &b), HMB_OK);
  events_t app = {0}, lib = {0};
  hmb_buffer_handler_t first = {record, &lib};
  assert_int_equal(hmb_buffer_set_handler(b, &first, NULL), HMB_OK);
  hmb_buffer_handler_t second = {record, &app};
  assert_int_equal(hmb_buffer_set_handler(b, &second, &app.chain), HMB_OK);
  assert_ptr_equal(app.chain.fn, record);
  assert_ptr_equal(app.chain.user, &lib);
  assert_int_equal(hmb_buffer_retain(b), HMB_OK);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  /* Both handlers saw both closes, in the same order. */
  assert_int_equal(app.n, 2);
  assert_int_equal(lib.n, 2);
  assert_int_equal(app.refs[1], 0);
  assert_int_equal(lib.refs[1], 0);

  /* Removing the handler: NULL installs none. */
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 8, 0, &b), HMB_OK);
  events_t gone = {0};
  hmb_buffer_handler_t h = {record, &gone};
  hmb_buffer_handler_t prev;
  assert_int_equal(hmb_buffer_set_handler(b, &h, NULL), HMB_OK);
  assert_int_equal(hmb_buffer_set_handler(b, NULL, &prev), HMB_OK);
  assert_ptr_equal(prev.user, &gone);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  assert_int_equal(gone.n, 0);
}

static void test_slices(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 4096);
  hmb_buffer_t *b = NULL, *s1 = NULL, *s2 = NULL, *bad = NULL;
  assert_int_equal(hmb_runner_alloc(r, 1000, 0, &b), HMB_OK);
  unsigned char *d = hmb_buffer_data(b);
  for (int i = 0; i < 1000; i++)
    d[i] = (unsigned char)i;

  /* Out-of-range and degenerate slices are rejected and change nothing. */
  assert_int_equal(hmb_buffer_slice(b, 0, 1001, &bad), HMB_EINVAL);
  assert_null(bad);
  assert_int_equal(hmb_buffer_slice(b, 1000, 1, &bad), HMB_EINVAL);
  assert_int_equal(hmb_buffer_slice(b, 10, 0, &bad), HMB_EINVAL);
  assert_int_equal(hmb_buffer_slice(b, SIZE_MAX, 2, &bad), HMB_EINVAL);
  assert_int_equal(hmb_buffer_slice(b, 2, SIZE_MAX, &bad), HMB_EINVAL);
  assert_int_equal(hmb_buffer_refcount(b), 1);

  assert_int_equal(hmb_buffer_slice(b, 100, 200, &s1), HMB_OK);
  assert_int_equal(hmb_buffer_slice(s1, 50, 150, &s2), HMB_OK);
  assert_int_equal(hmb_buffer_size(s1), 200);
  assert_int_equal(((unsigned char *)hmb_buffer_data(s1))[0], 100);
  assert_int_equal(((unsigned char *)hmb_buffer_data(s2))[0], 150);
  assert_ptr_equal(hmb_buffer_parent(s2), s1);
  assert_ptr_equal(hmb_buffer_parent(s1), b);
  assert_null(hmb_buffer_parent(b));
  assert_int_equal(hmb_buffer_refcount(b), 2);

  events_t ev = {0};
  ev.pool = pool;
  hmb_buffer_handler_t h = {record, &ev};
  hmb_buffer_set_handler(b, &h, NULL);

  hmb_runner_stats_t rs;
  assert_int_equal(hmb_buffer_close(b), HMB_OK); /* slices keep it alive */
  hmb_runner_stats(r, &rs);
  assert_int_equal(rs.live, 1000);
  assert_int_equal(ev.n, 1);
  assert_int_equal(ev.refs[0], 1);
  assert_int_equal(hmb_buffer_close(s1), HMB_OK); /* s2 still holds s1 */
  hmb_runner_stats(r, &rs);
  assert_int_equal(rs.live, 1000);
  assert_int_equal(((unsigned char *)hmb_buffer_data(s2))[149],
                   (unsigned char)299);
  assert_int_equal(hmb_buffer_close(s2), HMB_OK); /* the last reference */
  hmb_runner_stats(r, &rs);
  assert_int_equal(rs.live, 0);
  assert_int_equal(ev.n, 2);
  assert_int_equal(ev.refs[1], 0);
  assert_int_equal(ev.pool_live[1], 0); /* budget back before the event */

  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

/* A close from inside the refs == 0 handler is an over-close. */
static int overclose_rc = 1;
static int retain_rc = 1;
static void close_again(void *user, hmb_buffer_t *buf, long refs) {
  (void)user;
  if (refs == 0) {
    overclose_rc = hmb_buffer_close(buf);
    retain_rc = hmb_buffer_retain(buf);
  }
}

static void test_overclose_detected(void **state) {
  (void)state;
  ts_log_t log = {0};
  hmb_set_log(ts_log_capture, &log, HMB_LOG_ERROR);
  hmb_pool_t *pool = ts_pool(4096, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 4096);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 64, 0, &b), HMB_OK);
  hmb_buffer_handler_t h = {close_again, NULL};
  hmb_buffer_set_handler(b, &h, NULL);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  assert_int_equal(overclose_rc, HMB_ESTATE);
  assert_int_equal(retain_rc, HMB_ESTATE);
  assert_true(ts_log_contains(&log, "closed more times than retained"));
  assert_true(ts_log_contains(&log, "after its last close"));
  /* Accounting was not disturbed by the extra close. */
  hmb_runner_stats_t rs;
  hmb_runner_stats(r, &rs);
  assert_int_equal(rs.live, 0);
  assert_int_equal(rs.held, 4096);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
  hmb_set_log(NULL, NULL, 0);
}

static void test_null_arguments(void **state) {
  (void)state;
  hmb_buffer_t *out = (hmb_buffer_t *)1;
  assert_int_equal(hmb_buffer_retain(NULL), HMB_EINVAL);
  assert_int_equal(hmb_buffer_close(NULL), HMB_EINVAL);
  assert_int_equal(hmb_buffer_slice(NULL, 0, 1, &out), HMB_EINVAL);
  assert_null(out);
  assert_int_equal(hmb_buffer_set_handler(NULL, NULL, NULL), HMB_EINVAL);
  assert_null(hmb_buffer_data(NULL));
  assert_int_equal(hmb_buffer_size(NULL), 0);
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 8, 0x80, &out),
                   HMB_EINVAL);
  assert_int_equal(hmb_allocate(hmb_default_allocator(), SIZE_MAX, 0, &out),
                   HMB_ETOOBIG);
  assert_int_equal(hmb_allocate(NULL, 8, 0, &out), HMB_EINVAL);
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 8, 0, NULL),
                   HMB_EINVAL);
}

static void test_default_allocator_memory_stats(void **state) {
  (void)state;
  hmb_memory_stats_t before, during, after;
  assert_int_equal(hmb_default_memory_stats(&before), HMB_OK);
  hmb_buffer_t *b = NULL;
  assert_int_equal(
      hmb_allocate(hmb_default_allocator(), 12345, HMB_ALLOC_PINNED, &b),
      HMB_OK);
  assert_int_equal(hmb_buffer_is_pinned(b), 0); /* no pinned default memory */
  hmb_default_memory_stats(&during);
  assert_int_equal(during.pageable_live - before.pageable_live, 12345);
  assert_int_equal(during.pinned_fallbacks - before.pinned_fallbacks, 1);
  assert_non_null(during.pinned_reason);
  hmb_buffer_close(b);
  hmb_default_memory_stats(&after);
  assert_int_equal(after.pageable_live, before.pageable_live);
  assert_int_equal(hmb_default_memory_stats(NULL), HMB_EINVAL);
}

/* A buffer of size 0 is a buffer: counted, closable, with a distinct
 * non-NULL data pointer; it cannot be sliced (a slice has length > 0). */
static void test_zero_size_buffer(void **state) {
  (void)state;
  hmb_buffer_t *a = NULL, *b = NULL, *s = (hmb_buffer_t *)1;
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 0, 0, &a), HMB_OK);
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 0, 0, &b), HMB_OK);
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(hmb_buffer_size(a), 0);
  assert_non_null(hmb_buffer_data(a));
  assert_non_null(hmb_buffer_data(b));
  assert_ptr_not_equal(hmb_buffer_data(a), hmb_buffer_data(b));
  assert_int_equal(hmb_buffer_refcount(a), 1);
  assert_int_equal(hmb_buffer_slice(a, 0, 1, &s), HMB_EINVAL);
  assert_null(s);
  assert_int_equal(hmb_buffer_slice(a, 0, 0, &s), HMB_EINVAL);
  events_t ev = {0};
  hmb_buffer_handler_t h = {record, &ev};
  assert_int_equal(hmb_buffer_set_handler(a, &h, NULL), HMB_OK);
  assert_int_equal(hmb_buffer_retain(a), HMB_OK);
  assert_int_equal(hmb_buffer_close(a), HMB_OK);
  assert_int_equal(hmb_buffer_close(a), HMB_OK);
  assert_int_equal(ev.n, 2);
  assert_int_equal(ev.refs[1], 0);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
}

static int order_log[8];
static int order_n;
static void note_order(void *user, hmb_buffer_t *buf, long refs) {
  (void)buf;
  if (refs == 0 && order_n < 8)
    order_log[order_n++] = (int)(intptr_t)user;
}

/* One close ending a chain: root first (memory back), the slice last. */
static void test_chain_teardown_order(void **state) {
  (void)state;
  hmb_buffer_t *root = NULL, *mid = NULL, *leaf = NULL;
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 64, 0, &root), HMB_OK);
  assert_int_equal(hmb_buffer_slice(root, 8, 32, &mid), HMB_OK);
  assert_int_equal(hmb_buffer_slice(mid, 8, 8, &leaf), HMB_OK);
  hmb_buffer_handler_t h;
  for (int i = 0; i < 3; i++) {
    h.fn = note_order;
    h.user = (void *)(intptr_t)(i + 1);
    hmb_buffer_set_handler(i == 0 ? root : i == 1 ? mid : leaf, &h, NULL);
  }
  order_n = 0;
  hmb_buffer_close(root);
  hmb_buffer_close(mid);
  assert_int_equal(order_n, 0); /* leaf keeps both alive */
  hmb_buffer_close(leaf);
  assert_int_equal(order_n, 3);
  assert_int_equal(order_log[0], 1);
  assert_int_equal(order_log[1], 2);
  assert_int_equal(order_log[2], 3);
}

/* A very deep chain of slices of slices ends without deep recursion. */
static void test_deep_slice_chain(void **state) {
  (void)state;
  hmb_pool_t *pool = ts_pool(1 << 20, NULL, NULL);
  hmb_runner_t *r = ts_started_runner(pool, 4096);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_runner_alloc(r, 4096, 0, &b), HMB_OK);
  long depth = ts_env_long("HMB_SLICE_DEPTH", 200000);
  for (long i = 0; i < depth; i++) {
    hmb_buffer_t *s = NULL;
    assert_int_equal(hmb_buffer_slice(b, 0, 4096, &s), HMB_OK);
    hmb_buffer_close(b); /* the slice keeps it alive */
    b = s;
  }
  hmb_runner_stats_t rs;
  hmb_runner_stats(r, &rs);
  assert_int_equal(rs.live, 4096);
  hmb_buffer_close(b); /* ends the whole chain */
  hmb_runner_stats(r, &rs);
  assert_int_equal(rs.live, 0);
  hmb_runner_destroy(r);
  ts_assert_pool_idle(pool);
  assert_int_equal(hmb_pool_destroy(pool), HMB_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refcount_and_handler),
      cmocka_unit_test(test_set_handler_returns_previous_and_chains),
      cmocka_unit_test(test_slices),
      cmocka_unit_test(test_overclose_detected),
      cmocka_unit_test(test_null_arguments),
      cmocka_unit_test(test_default_allocator_memory_stats),
      cmocka_unit_test(test_zero_size_buffer),
      cmocka_unit_test(test_chain_teardown_order),
      cmocka_unit_test(test_deep_slice_chain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
