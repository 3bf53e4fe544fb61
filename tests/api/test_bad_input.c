/*
 * test_bad_input.c - every public function against invalid input and state.
 *
 * One table row per bad call: NULL handles and out-pointers, zero sizes
 * where they are invalid (reservations, slices; a 0-byte allocation is
 * valid since 0.2), sizes beyond HMB_MAX_ALLOC or the pool's max_request,
 * offsets that overflow, unknown flags and modes, bad alignments, timeouts
 * below HMB_WAIT_FOREVER, struct sizes below the first release's or with
 * unknown nonzero bytes, foreign pointers, and calls in the wrong state
 * (start twice, allocate or grow before start or after finish or cancel,
 * finish twice, cancel after finish, submit after shutdown). Each row
 * states the documented result. Around every row the
 * test takes a full snapshot of a live fixture (a pool with a running, a
 * created, a finished and a cancelled runner, a live buffer and slice, an
 * executor with a finished task) and asserts that not one counter moved and
 * that no out-pointer was left dangling: a rejected call changes nothing.
 */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "testsupport.h"

typedef struct fx {
  hmb_pool_t *pool;
  ts_failing_backend_t fb;
  ts_log_t log;
  hmb_runner_t *run;  /* RUNNING, holds `buf` and its slice */
  hmb_runner_t *made; /* CREATED */
  hmb_runner_t *done; /* COMPLETED */
  hmb_runner_t *canc; /* CANCELLED */
  hmb_buffer_t *buf, *slice;
  hmb_executor_t *ex, *ex_down; /* ex_down is shut down */
  hmb_task_t *task;             /* finished */
} fx_t;

static fx_t F;

typedef struct snap {
  hmb_pool_stats_t ps;
  hmb_memory_stats_t ms, dms;
  hmb_runner_stats_t rs[4];
  long refs, slice_refs, backend_live;
  hmb_executor_stats_t es;
} snap_t;

static void take(snap_t *s) {
  memset(s, 0, sizeof *s);
  assert_int_equal(hmb_pool_stats(F.pool, &s->ps), HMB_OK);
  assert_int_equal(hmb_pool_memory_stats(F.pool, &s->ms), HMB_OK);
  assert_int_equal(hmb_default_memory_stats(&s->dms), HMB_OK);
  hmb_runner_t *rs[4] = {F.run, F.made, F.done, F.canc};
  for (int i = 0; i < 4; i++) {
    assert_int_equal(hmb_runner_stats(rs[i], &s->rs[i]), HMB_OK);
    s->rs[i].wait_ns = 0; /* time, not state */
    s->rs[i].failed_wait_ns = 0;
  }
  s->refs = hmb_buffer_refcount(F.buf);
  s->slice_refs = hmb_buffer_refcount(F.slice);
  s->backend_live = F.fb.live;
  assert_int_equal(hmb_executor_stats(F.ex, &s->es), HMB_OK);
}

static void assert_same(const snap_t *a, const snap_t *b, const char *row) {
  /* Peaks and event counters included: compare the structs whole. */
  if (memcmp(&a->ps, &b->ps, sizeof a->ps) != 0 ||
      a->ms.pageable_live != b->ms.pageable_live ||
      a->ms.pinned_live != b->ms.pinned_live ||
      a->dms.pageable_live != b->dms.pageable_live ||
      memcmp(a->rs, b->rs, sizeof a->rs) != 0 || a->refs != b->refs ||
      a->slice_refs != b->slice_refs || a->backend_live != b->backend_live ||
      a->es.queued != b->es.queued || a->es.running != b->es.running ||
      a->es.submitted != b->es.submitted ||
      a->es.completed != b->es.completed ||
      a->es.cancelled != b->es.cancelled ||
      a->es.finishing != b->es.finishing) {
    fprintf(stderr, "row '%s' changed the state\n", row);
    fail();
  }
}

static int nop_task(void *user, hmb_runner_t *r) {
  (void)user;
  (void)r;
  return 0;
}

static int setup(void **state) {
  (void)state;
  memset(&F, 0, sizeof F);
  ts_failing_backend_init(&F.fb, 0, 0);
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 10000;
  cfg.max_request = 4000;
  cfg.backend = &F.fb.vtable;
  cfg.log_fn = ts_log_capture;
  cfg.log_user = &F.log;
  cfg.log_level = HMB_LOG_DEBUG;
  assert_int_equal(hmb_pool_create(&cfg, &F.pool), HMB_OK);
  F.run = ts_started_runner(F.pool, 1000);
  assert_int_equal(hmb_runner_alloc(F.run, 100, 0, &F.buf), HMB_OK);
  memset(hmb_buffer_data(F.buf), 0, 100);
  assert_int_equal(hmb_buffer_slice(F.buf, 10, 20, &F.slice), HMB_OK);
  hmb_runner_config_t rc = {0};
  rc.estimate = 10;
  assert_int_equal(hmb_runner_create(F.pool, &rc, &F.made), HMB_OK);
  F.done = ts_started_runner(F.pool, 10);
  assert_int_equal(hmb_runner_finish(F.done, 0, NULL), HMB_OK);
  F.canc = ts_started_runner(F.pool, 10);
  assert_int_equal(hmb_runner_cancel(F.canc), HMB_OK);

  hmb_executor_config_t ec = {0};
  ec.threads = 1;
  assert_int_equal(hmb_executor_create(F.pool, &ec, &F.ex), HMB_OK);
  hmb_task_desc_t td = {0};
  td.run = nop_task;
  assert_int_equal(hmb_executor_submit(F.ex, &td, &F.task), HMB_OK);
  int st = 1;
  assert_int_equal(hmb_task_wait(F.task, HMB_WAIT_FOREVER, &st), HMB_OK);
  assert_int_equal(st, 0);
  assert_int_equal(hmb_executor_create(F.pool, &ec, &F.ex_down), HMB_OK);
  assert_int_equal(hmb_executor_shutdown(F.ex_down, HMB_SHUTDOWN_DRAIN),
                   HMB_OK);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  hmb_task_release(F.task);
  hmb_executor_destroy(F.ex_down);
  hmb_executor_destroy(F.ex);
  assert_int_equal(hmb_buffer_close(F.slice), HMB_OK);
  assert_int_equal(hmb_buffer_close(F.buf), HMB_OK);
  hmb_runner_destroy(F.run);
  hmb_runner_destroy(F.made);
  hmb_runner_destroy(F.done);
  hmb_runner_destroy(F.canc);
  ts_assert_pool_idle(F.pool);
  assert_int_equal(F.fb.live, 0);
  assert_int_equal(hmb_pool_destroy(F.pool), HMB_OK);
  return 0;
}

/* ---- the table ---------------------------------------------------------- */

/* Ordinary memory: no pointer into it is a block of the library. */
static _Alignas(64) unsigned char plain_memory[256];

/* A sentinel: every out-pointer starts here and must come back NULL. */
static char junk;
#define JUNK ((void *)&junk)

static hmb_buffer_t *ob;
static hmb_runner_t *orun;
static hmb_pool_t *opool;
static hmb_executor_t *oex;
static hmb_task_t *otask;
static size_t oret;
static hmb_pool_stats_t ops;
static hmb_memory_stats_t oms;
static hmb_runner_stats_t ors;
static hmb_executor_stats_t oes;
static char text[64];

static int bad_alloc_fn(void *ctx, size_t bytes, unsigned flags,
                        hmb_buffer_t **out) {
  (void)ctx, (void)bytes, (void)flags, (void)out;
  fail_msg("an allocator must not be called with bad arguments");
  return 0;
}
static const hmb_allocator_t null_fn_alloc = {NULL, NULL, "no-fn", NULL};
static const hmb_allocator_t never_alloc = {NULL, bad_alloc_fn, "never", NULL};

/* An implementation that records what it is asked and allocates nothing. */
static size_t refusing_bytes = 777;
static int refusing_fn(void *ctx, size_t bytes, unsigned flags,
                       hmb_buffer_t **out) {
  (void)ctx, (void)flags;
  refusing_bytes = bytes;
  *out = NULL;
  return HMB_ENOTSUP;
}
static const hmb_allocator_t refusing_alloc = {NULL, refusing_fn, "refusing",
                                               NULL};

static hmb_pool_config_t pool_cfg(size_t limit) {
  hmb_pool_config_t c;
  hmb_pool_config_init(&c);
  c.limit = limit;
  return c;
}

static int r_pool_create_null_cfg(void) {
  return hmb_pool_create(NULL, &opool);
}
static int r_pool_create_null_out(void) {
  hmb_pool_config_t c = pool_cfg(10);
  return hmb_pool_create(&c, NULL);
}
static int r_pool_create_zero_limit(void) {
  hmb_pool_config_t c = pool_cfg(0);
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_huge_limit(void) {
  hmb_pool_config_t c = pool_cfg(HMB_MAX_ALLOC + 1);
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_max_limit(void) {
  hmb_pool_config_t c = pool_cfg(SIZE_MAX);
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_huge_max_request(void) {
  hmb_pool_config_t c = pool_cfg(10);
  c.max_request = SIZE_MAX;
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_bad_alignment(void) {
  hmb_pool_config_t c = pool_cfg(10);
  c.alignment = 96;
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_half_backend(void) {
  hmb_backend_t be = F.fb.vtable;
  be.free = NULL;
  hmb_pool_config_t c = pool_cfg(10);
  c.backend = &be;
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_bad_level(void) {
  hmb_pool_config_t c = pool_cfg(10);
  c.log_level = -1;
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_bad_pinned_method(void) {
  hmb_pool_config_t c = pool_cfg(10);
  c.pinned_method = 7;
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_unknown_flag(void) {
  hmb_pool_config_t c = pool_cfg(10);
  c.flags = 1u << 9;
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_too_aligned(void) {
  hmb_pool_config_t c = pool_cfg(10);
  c.alignment = HMB_MAX_ALIGN * 2;
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_base_without_bytes(void) {
  hmb_pool_config_t c = pool_cfg(10);
  c.pinned_base = plain_memory;
  return hmb_pool_create(&c, &opool);
}
static int r_pool_create_sized_too_small(void) {
  hmb_pool_config_t c = pool_cfg(10);
  return hmb_pool_create_sized(&c, offsetof(hmb_pool_config_t, flags) - 1,
                               &opool);
}
static int r_pool_create_sized_unknown_field(void) {
  struct {
    hmb_pool_config_t c;
    unsigned char extra[8];
  } x;
  memset(&x, 0, sizeof x);
  x.c.limit = 10;
  x.extra[7] = 0x80;
  return hmb_pool_create_sized(&x.c, sizeof x, &opool);
}
static int r_pool_set_limit_null(void) {
  return hmb_pool_set_limit(NULL, 10);
}
static int r_pool_set_limit_zero(void) {
  return hmb_pool_set_limit(F.pool, 0);
}
static int r_pool_set_limit_huge(void) {
  return hmb_pool_set_limit(F.pool, HMB_MAX_ALLOC + 1);
}
static void nop_pressure(void *u, hmb_pool_t *p, const hmb_pressure_t *e) {
  (void)u, (void)p, (void)e;
}
static int opressure = 5;
static int r_pressure_add_null_pool(void) {
  return hmb_pool_add_pressure_handler(NULL, nop_pressure, NULL, &opressure);
}
static int r_pressure_add_null_fn(void) {
  return hmb_pool_add_pressure_handler(F.pool, NULL, NULL, &opressure);
}
static int r_pressure_remove_unknown(void) {
  return hmb_pool_remove_pressure_handler(F.pool, 12345);
}
static int r_pressure_remove_null(void) {
  return hmb_pool_remove_pressure_handler(NULL, 1);
}
static int r_pool_check_null(void) {
  return hmb_pool_check(NULL, 0, text, sizeof text);
}
static int r_pool_check_bad_flags(void) {
  return hmb_pool_check(F.pool, 0x10u, text, sizeof text);
}
static int r_pool_check_null_buf(void) {
  return hmb_pool_check(F.pool, 0, NULL, 4);
}
static int r_pool_stats_too_small(void) {
  return hmb_pool_stats_sized(F.pool, &ops,
                              offsetof(hmb_pool_stats_t, progress_runner) - 1);
}
static int r_pool_memory_stats_too_small(void) {
  return hmb_pool_memory_stats_sized(
      F.pool, &oms, offsetof(hmb_memory_stats_t, huge_bytes) - 1);
}
static int r_default_memory_stats_too_small(void) {
  return hmb_default_memory_stats_sized(&oms, 8);
}
static int r_pool_destroy_busy(void) {
  return hmb_pool_destroy(F.pool);
}
static int r_pool_stats_null(void) {
  return hmb_pool_stats(NULL, &ops);
}
static int r_pool_stats_null_out(void) {
  return hmb_pool_stats(F.pool, NULL);
}
static int r_pool_memory_stats_null(void) {
  return hmb_pool_memory_stats(NULL, &oms);
}
static int r_pool_memory_stats_null_out(void) {
  return hmb_pool_memory_stats(F.pool, NULL);
}
static int r_pool_trim_null(void) {
  return hmb_pool_trim(NULL, 0);
}
static int r_pool_describe_null(void) {
  return hmb_pool_describe(NULL, 0, text, sizeof text);
}
static int r_pool_describe_neg_top(void) {
  return hmb_pool_describe(F.pool, -1, text, sizeof text);
}
static int r_pool_describe_null_buf(void) {
  return hmb_pool_describe(F.pool, 0, NULL, 8);
}
static int r_default_memory_stats_null(void) {
  return hmb_default_memory_stats(NULL);
}

static int r_allocate_null_alloc(void) {
  return hmb_allocate(NULL, 8, 0, &ob);
}
static int r_allocate_null_fn(void) {
  return hmb_allocate(&null_fn_alloc, 8, 0, &ob);
}
static int r_allocate_null_out(void) {
  return hmb_allocate(&never_alloc, 8, 0, NULL);
}
/* 0 bytes is valid since 0.2 (HMB_EINVAL in 0.1): passed on to the
 * implementation, whose answer is returned. */
static int r_allocate_zero_is_passed_on(void) {
  refusing_bytes = 777;
  int rc = hmb_allocate(&refusing_alloc, 0, 0, &ob);
  return rc == HMB_ENOTSUP && refusing_bytes == 0 ? HMB_OK : HMB_EFAILED;
}
static int r_allocate_aligned_bad_alignment(void) {
  return hmb_allocate_aligned(&never_alloc, 8, 24, 0, &ob);
}
static int r_allocate_aligned_too_aligned(void) {
  return hmb_allocate_aligned(&never_alloc, 8, HMB_MAX_ALIGN * 2, 0, &ob);
}
static int r_allocate_aligned_bad_flags(void) {
  return hmb_allocate_aligned(&never_alloc, 8, 64, 0x40u, &ob);
}
static int r_allocate_aligned_huge(void) {
  return hmb_allocate_aligned(&never_alloc, HMB_MAX_ALLOC + 1, 64, 0, &ob);
}
static void *optr;
static int r_ptr_alloc_null_alloc(void) {
  return hmb_ptr_alloc(NULL, 8, 16, 0, &optr);
}
static int r_ptr_alloc_null_out(void) {
  return hmb_ptr_alloc(&never_alloc, 8, 16, 0, NULL);
}
static int r_ptr_alloc_bad_alignment(void) {
  return hmb_ptr_alloc(&never_alloc, 8, 48, 0, &optr);
}
static int r_ptr_alloc_huge(void) {
  return hmb_ptr_alloc(&never_alloc, SIZE_MAX, 16, 0, &optr);
}
static int r_ptr_realloc_null(void) {
  return hmb_ptr_realloc(NULL, 8);
}
static int r_ptr_realloc_foreign(void) {
  void *p = plain_memory + 64;
  int rc = hmb_ptr_realloc(&p, 8);
  return p == plain_memory + 64 ? rc : HMB_EFAILED;
}
static int r_ptr_free_foreign(void) {
  return hmb_ptr_free(plain_memory + 128);
}
static int r_ptr_free_inside_a_buffer(void) {
  /* F.buf's data is zeroed at setup: no block word 64 bytes in. */
  return hmb_ptr_free((char *)hmb_buffer_data(F.buf) + 64);
}
static int r_allocate_bad_flags(void) {
  return hmb_allocate(&never_alloc, 8, 0x80u, &ob);
}
static int r_allocate_huge(void) {
  return hmb_allocate(&never_alloc, HMB_MAX_ALLOC + 1, 0, &ob);
}
static int r_allocate_size_max(void) {
  return hmb_allocate(hmb_default_allocator(), SIZE_MAX, 0, &ob);
}

static int r_buffer_retain_null(void) {
  return hmb_buffer_retain(NULL);
}
static int r_buffer_close_null(void) {
  return hmb_buffer_close(NULL);
}
static int r_buffer_slice_null(void) {
  return hmb_buffer_slice(NULL, 0, 1, &ob);
}
static int r_buffer_slice_null_out(void) {
  return hmb_buffer_slice(F.buf, 0, 1, NULL);
}
static int r_buffer_slice_zero(void) {
  return hmb_buffer_slice(F.buf, 0, 0, &ob);
}
static int r_buffer_slice_past_end(void) {
  return hmb_buffer_slice(F.buf, 100, 1, &ob);
}
static int r_buffer_slice_too_long(void) {
  return hmb_buffer_slice(F.buf, 50, 51, &ob);
}
static int r_buffer_slice_overflow(void) {
  return hmb_buffer_slice(F.buf, SIZE_MAX, 2, &ob);
}
static int r_buffer_slice_overflow2(void) {
  return hmb_buffer_slice(F.buf, 2, SIZE_MAX, &ob);
}
static int r_slice_of_slice_too_long(void) {
  return hmb_buffer_slice(F.slice, 0, 21, &ob);
}
static int r_buffer_set_handler_null(void) {
  return hmb_buffer_set_handler(NULL, NULL, NULL);
}

static int r_runner_create_null_pool(void) {
  hmb_runner_config_t c = {0};
  return hmb_runner_create(NULL, &c, &orun);
}
static int r_runner_create_null_cfg(void) {
  return hmb_runner_create(F.pool, NULL, &orun);
}
static int r_runner_create_null_out(void) {
  hmb_runner_config_t c = {0};
  return hmb_runner_create(F.pool, &c, NULL);
}
static int r_runner_create_bad_timeout(void) {
  hmb_runner_config_t c = {0};
  c.borrow_timeout_ns = -2;
  return hmb_runner_create(F.pool, &c, &orun);
}
static int r_runner_create_too_big(void) {
  hmb_runner_config_t c = {0};
  c.estimate = 4001; /* max_request 4000 */
  return hmb_runner_create(F.pool, &c, &orun);
}
static int r_runner_create_size_max(void) {
  hmb_runner_config_t c = {0};
  c.estimate = SIZE_MAX;
  return hmb_runner_create(F.pool, &c, &orun);
}
static int r_runner_start_null(void) {
  return hmb_runner_start(NULL, 0);
}
static int r_runner_start_bad_timeout(void) {
  return hmb_runner_start(F.made, -2);
}
static int r_runner_start_running(void) {
  return hmb_runner_start(F.run, 0);
}
static int r_runner_start_finished(void) {
  return hmb_runner_start(F.done, 0);
}
static int r_runner_start_cancelled(void) {
  return hmb_runner_start(F.canc, 0);
}
static int r_runner_alloc_null(void) {
  return hmb_runner_alloc(NULL, 8, 0, &ob);
}
/* 0 bytes is valid since 0.2, but not in the wrong state. */
static int r_runner_alloc_zero_created(void) {
  return hmb_runner_alloc(F.made, 0, 0, &ob);
}
static int r_runner_alloc_zero_finished(void) {
  return hmb_runner_alloc(F.done, 0, 0, &ob);
}
static int r_runner_alloc_null_out(void) {
  return hmb_runner_alloc(F.run, 8, 0, NULL);
}
static int r_runner_alloc_bad_flags(void) {
  return hmb_runner_alloc(F.run, 8, 0x100u, &ob);
}
static int r_runner_alloc_above_max_request(void) {
  return hmb_runner_alloc(F.run, 4001, 0, &ob);
}
static int r_runner_alloc_size_max(void) {
  return hmb_runner_alloc(F.run, SIZE_MAX, 0, &ob);
}
static int r_runner_alloc_created(void) {
  return hmb_runner_alloc(F.made, 8, 0, &ob);
}
static int r_runner_alloc_finished(void) {
  return hmb_runner_alloc(F.done, 8, 0, &ob);
}
static int r_runner_alloc_cancelled(void) {
  return hmb_runner_alloc(F.canc, 8, 0, &ob);
}
static int r_runner_reserve_null(void) {
  return hmb_runner_reserve(NULL, 8, &ob);
}
static int r_runner_reserve_zero(void) {
  return hmb_runner_reserve(F.run, 0, &ob);
}
static int r_runner_reserve_null_out(void) {
  return hmb_runner_reserve(F.run, 8, NULL);
}
static int r_runner_reserve_size_max(void) {
  return hmb_runner_reserve(F.run, SIZE_MAX, &ob);
}
static int r_runner_reserve_finished(void) {
  return hmb_runner_reserve(F.done, 8, &ob);
}
static int r_runner_reserve_cancelled(void) {
  return hmb_runner_reserve(F.canc, 8, &ob);
}
static int r_runner_start_partial_null(void) {
  return hmb_runner_start_partial(NULL, 8, 0);
}
static int r_runner_start_partial_bad_timeout(void) {
  return hmb_runner_start_partial(F.made, 8, -7);
}
static int r_runner_start_partial_too_big(void) {
  return hmb_runner_start_partial(F.made, 4001, 0);
}
static int r_runner_start_partial_running(void) {
  return hmb_runner_start_partial(F.run, 8, 0);
}
static int r_runner_grow_null(void) {
  return hmb_runner_grow(NULL, 8, 0);
}
static int r_runner_grow_bad_timeout(void) {
  return hmb_runner_grow(F.run, 8000, -3);
}
static int r_runner_grow_too_big(void) {
  return hmb_runner_grow(F.run, 4001, 0);
}
static int r_runner_grow_created(void) {
  return hmb_runner_grow(F.made, 100, 0);
}
static int r_runner_grow_finished(void) {
  return hmb_runner_grow(F.done, 100, 0);
}
static int r_runner_grow_cancelled(void) {
  return hmb_runner_grow(F.canc, 100, 0);
}
static int r_runner_try_free_null(void) {
  return hmb_runner_try_free(NULL, 8, &oret);
}
static int r_runner_set_need_null(void) {
  return hmb_runner_set_need(NULL, 8, &oret);
}
static int r_runner_set_need_huge(void) {
  return hmb_runner_set_need(F.run, SIZE_MAX, &oret);
}
static int r_runner_finish_null(void) {
  return hmb_runner_finish(NULL, 0, &oret);
}
static int r_runner_finish_created(void) {
  return hmb_runner_finish(F.made, 0, &oret);
}
static int r_runner_finish_twice(void) {
  return hmb_runner_finish(F.done, 0, &oret);
}
static int r_runner_cancel_null(void) {
  return hmb_runner_cancel(NULL);
}
static int r_runner_cancel_finished(void) {
  return hmb_runner_cancel(F.done);
}
static int r_runner_wait_idle_null(void) {
  return hmb_runner_wait_idle(NULL, 0);
}
static int r_runner_wait_idle_bad_timeout(void) {
  return hmb_runner_wait_idle(F.run, -2);
}
static int r_runner_wait_idle_busy(void) {
  return hmb_runner_wait_idle(F.run, 0); /* F.buf is live */
}
static int r_runner_stats_null(void) {
  return hmb_runner_stats(NULL, &ors);
}
static int r_runner_stats_null_out(void) {
  return hmb_runner_stats(F.run, NULL);
}
static int r_runner_stats_too_small(void) {
  return hmb_runner_stats_sized(F.run, &ors,
                                offsetof(hmb_runner_stats_t, spare) - 1);
}
static int r_runner_create_sized_too_small(void) {
  hmb_runner_config_t c = {0};
  return hmb_runner_create_sized(F.pool, &c, sizeof c - 1, &orun);
}
static int r_runner_create_sized_unknown_field(void) {
  struct {
    hmb_runner_config_t c;
    unsigned char extra[8];
  } x;
  memset(&x, 0, sizeof x);
  x.extra[2] = 1;
  return hmb_runner_create_sized(F.pool, &x.c, sizeof x, &orun);
}

static int r_executor_create_null_pool(void) {
  return hmb_executor_create(NULL, NULL, &oex);
}
static int r_executor_create_null_out(void) {
  return hmb_executor_create(F.pool, NULL, NULL);
}
static int r_executor_create_neg_threads(void) {
  hmb_executor_config_t c = {0};
  c.threads = -1;
  return hmb_executor_create(F.pool, &c, &oex);
}
static int r_executor_create_many_threads(void) {
  hmb_executor_config_t c = {0};
  c.threads = 4097;
  return hmb_executor_create(F.pool, &c, &oex);
}
static int r_executor_create_bad_timeout(void) {
  hmb_executor_config_t c = {0};
  c.threads = 1;
  c.acquire_timeout_ns = -2;
  return hmb_executor_create(F.pool, &c, &oex);
}
static int r_submit_null_ex(void) {
  hmb_task_desc_t d = {0};
  d.run = nop_task;
  return hmb_executor_submit(NULL, &d, &otask);
}
static int r_submit_null_desc(void) {
  return hmb_executor_submit(F.ex, NULL, &otask);
}
static int r_submit_null_run(void) {
  hmb_task_desc_t d = {0};
  return hmb_executor_submit(F.ex, &d, &otask);
}
static int r_submit_bad_timeout(void) {
  hmb_task_desc_t d = {0};
  d.run = nop_task;
  d.borrow_timeout_ns = -5;
  return hmb_executor_submit(F.ex, &d, &otask);
}
static int r_submit_too_big(void) {
  hmb_task_desc_t d = {0};
  d.run = nop_task;
  d.estimate = 4001;
  return hmb_executor_submit(F.ex, &d, &otask);
}
static int r_submit_after_shutdown(void) {
  hmb_task_desc_t d = {0};
  d.run = nop_task;
  return hmb_executor_submit(F.ex_down, &d, &otask);
}
static int r_task_wait_null(void) {
  return hmb_task_wait(NULL, 0, NULL);
}
static int r_task_wait_bad_timeout(void) {
  return hmb_task_wait(F.task, -2, NULL);
}
static int r_task_cancel_null(void) {
  return hmb_task_cancel(NULL);
}
static int r_task_cancel_finished(void) {
  return hmb_task_cancel(F.task);
}
static int r_executor_shutdown_null(void) {
  return hmb_executor_shutdown(NULL, HMB_SHUTDOWN_DRAIN);
}
static int r_executor_shutdown_bad_mode(void) {
  return hmb_executor_shutdown(F.ex, 7);
}
static int r_executor_stats_null(void) {
  return hmb_executor_stats(NULL, &oes);
}
static int r_executor_stats_null_out(void) {
  return hmb_executor_stats(F.ex, NULL);
}
static int r_executor_stats_too_small(void) {
  return hmb_executor_stats_sized(
      F.ex, &oes, offsetof(hmb_executor_stats_t, finishing) - 1);
}
static int r_executor_create_sized_too_small(void) {
  hmb_executor_config_t c = {0};
  return hmb_executor_create_sized(F.pool, &c, sizeof c - 1, &oex);
}
static int r_executor_create_sized_unknown_field(void) {
  struct {
    hmb_executor_config_t c;
    unsigned char extra[8];
  } x;
  memset(&x, 0, sizeof x);
  x.c.threads = 1;
  x.extra[0] = 1;
  return hmb_executor_create_sized(F.pool, &x.c, sizeof x, &oex);
}
static int r_submit_sized_too_small(void) {
  hmb_task_desc_t d = {0};
  d.run = nop_task;
  return hmb_executor_submit_sized(
      F.ex, &d, offsetof(hmb_task_desc_t, staged) - 1, &otask);
}
static int r_submit_sized_unknown_field(void) {
  struct {
    hmb_task_desc_t d;
    unsigned char extra[8];
  } x;
  memset(&x, 0, sizeof x);
  x.d.run = nop_task;
  x.extra[5] = 2;
  return hmb_executor_submit_sized(F.ex, &x.d, sizeof x, &otask);
}
static int r_submit_staged_initial_too_big(void) {
  hmb_task_desc_t d = {0};
  d.run = nop_task;
  d.staged = 1;
  d.initial = 4001;
  return hmb_executor_submit(F.ex, &d, &otask);
}

/* Calls with no status: they must be no-ops (or neutral values) for NULL. */
static int r_void_calls(void) {
  hmb_pool_config_init(NULL);
  hmb_pool_destroy(NULL);
  hmb_runner_destroy(NULL);
  hmb_task_release(NULL);
  hmb_executor_destroy(NULL);
  hmb_buffer_handler_invoke(NULL, F.buf, 1);
  hmb_buffer_handler_t empty = {NULL, NULL};
  hmb_buffer_handler_invoke(&empty, F.buf, 1);
  int bad = 0;
  bad |= hmb_pool_destroy(NULL) != 0;
  bad |= hmb_pool_limit(NULL) != 0;
  bad |= hmb_runner_allocator(NULL) != NULL;
  bad |= hmb_runner_is_cancelled(NULL) != 0;
  bad |= hmb_runner_state(NULL) != HMB_RUNNER_CLOSED;
  bad |= strcmp(hmb_runner_state_name(-1), "UNKNOWN") != 0;
  bad |= strcmp(hmb_runner_state_name(99), "UNKNOWN") != 0;
  bad |= strcmp(hmb_strerror(1), "unknown error") != 0;
  bad |= strcmp(hmb_strerror(INT_MIN), "unknown error") != 0;
  bad |= strcmp(hmb_errname(INT_MAX), "HMB_UNKNOWN") != 0;
  bad |= hmb_buffer_data(NULL) != NULL;
  bad |= hmb_buffer_size(NULL) != 0;
  bad |= hmb_buffer_is_pinned(NULL) != 0;
  bad |= hmb_buffer_refcount(NULL) != 0;
  bad |= hmb_buffer_parent(NULL) != NULL;
  bad |= hmb_task_done(NULL) != 0;
  bad |= hmb_bound_allocator(7) != NULL;
  bad |= hmb_ptr_buffer(NULL) != NULL;
  bad |= hmb_ptr_size(NULL) != 0;
  bad |= hmb_ptr_free(NULL) != 0;
  bad |= hmb_ptr_buffer(plain_memory + 3) != NULL; /* misaligned */
  hmb_runner_config_init(NULL);
  hmb_executor_config_init(NULL);
  hmb_task_desc_init(NULL);
  return bad ? HMB_EINVAL : HMB_OK;
}

typedef struct row {
  const char *name;
  int (*call)(void);
  int expect;
} row_t;

#define ROW(fn, code)                                                          \
  { #fn, fn, code }

static const row_t rows[] = {
    ROW(r_pool_create_null_cfg, HMB_EINVAL),
    ROW(r_pool_create_null_out, HMB_EINVAL),
    ROW(r_pool_create_zero_limit, HMB_EINVAL),
    ROW(r_pool_create_huge_limit, HMB_EINVAL),
    ROW(r_pool_create_max_limit, HMB_EINVAL),
    ROW(r_pool_create_huge_max_request, HMB_EINVAL),
    ROW(r_pool_create_bad_alignment, HMB_EINVAL),
    ROW(r_pool_create_half_backend, HMB_EINVAL),
    ROW(r_pool_create_bad_level, HMB_EINVAL),
    ROW(r_pool_create_bad_pinned_method, HMB_EINVAL),
    ROW(r_pool_create_unknown_flag, HMB_EINVAL),
    ROW(r_pool_create_too_aligned, HMB_EINVAL),
    ROW(r_pool_create_base_without_bytes, HMB_EINVAL),
    ROW(r_pool_create_sized_too_small, HMB_EINVAL),
    ROW(r_pool_create_sized_unknown_field, HMB_ENOTSUP),
    ROW(r_pool_set_limit_null, HMB_EINVAL),
    ROW(r_pool_set_limit_zero, HMB_EINVAL),
    ROW(r_pool_set_limit_huge, HMB_EINVAL),
    ROW(r_pressure_add_null_pool, HMB_EINVAL),
    ROW(r_pressure_add_null_fn, HMB_EINVAL),
    ROW(r_pressure_remove_unknown, HMB_EINVAL),
    ROW(r_pressure_remove_null, HMB_EINVAL),
    ROW(r_pool_check_null, HMB_EINVAL),
    ROW(r_pool_check_bad_flags, HMB_EINVAL),
    ROW(r_pool_check_null_buf, HMB_EINVAL),
    ROW(r_pool_stats_too_small, HMB_EINVAL),
    ROW(r_pool_memory_stats_too_small, HMB_EINVAL),
    ROW(r_default_memory_stats_too_small, HMB_EINVAL),
    ROW(r_pool_destroy_busy, HMB_EBUSY),
    ROW(r_pool_stats_null, HMB_EINVAL),
    ROW(r_pool_stats_null_out, HMB_EINVAL),
    ROW(r_pool_memory_stats_null, HMB_EINVAL),
    ROW(r_pool_memory_stats_null_out, HMB_EINVAL),
    ROW(r_pool_trim_null, HMB_EINVAL),
    ROW(r_pool_describe_null, HMB_EINVAL),
    ROW(r_pool_describe_neg_top, HMB_EINVAL),
    ROW(r_pool_describe_null_buf, HMB_EINVAL),
    ROW(r_default_memory_stats_null, HMB_EINVAL),
    ROW(r_allocate_null_alloc, HMB_EINVAL),
    ROW(r_allocate_null_fn, HMB_EINVAL),
    ROW(r_allocate_null_out, HMB_EINVAL),
    ROW(r_allocate_zero_is_passed_on, HMB_OK),
    ROW(r_allocate_bad_flags, HMB_EINVAL),
    ROW(r_allocate_huge, HMB_ETOOBIG),
    ROW(r_allocate_size_max, HMB_ETOOBIG),
    ROW(r_allocate_aligned_bad_alignment, HMB_EINVAL),
    ROW(r_allocate_aligned_too_aligned, HMB_EINVAL),
    ROW(r_allocate_aligned_bad_flags, HMB_EINVAL),
    ROW(r_allocate_aligned_huge, HMB_ETOOBIG),
    ROW(r_ptr_alloc_null_alloc, HMB_EINVAL),
    ROW(r_ptr_alloc_null_out, HMB_EINVAL),
    ROW(r_ptr_alloc_bad_alignment, HMB_EINVAL),
    ROW(r_ptr_alloc_huge, HMB_ETOOBIG),
    ROW(r_ptr_realloc_null, HMB_EINVAL),
    ROW(r_ptr_realloc_foreign, HMB_EINVAL),
    ROW(r_ptr_free_foreign, HMB_EINVAL),
    ROW(r_ptr_free_inside_a_buffer, HMB_EINVAL),
    ROW(r_buffer_retain_null, HMB_EINVAL),
    ROW(r_buffer_close_null, HMB_EINVAL),
    ROW(r_buffer_slice_null, HMB_EINVAL),
    ROW(r_buffer_slice_null_out, HMB_EINVAL),
    ROW(r_buffer_slice_zero, HMB_EINVAL),
    ROW(r_buffer_slice_past_end, HMB_EINVAL),
    ROW(r_buffer_slice_too_long, HMB_EINVAL),
    ROW(r_buffer_slice_overflow, HMB_EINVAL),
    ROW(r_buffer_slice_overflow2, HMB_EINVAL),
    ROW(r_slice_of_slice_too_long, HMB_EINVAL),
    ROW(r_buffer_set_handler_null, HMB_EINVAL),
    ROW(r_runner_create_null_pool, HMB_EINVAL),
    ROW(r_runner_create_null_cfg, HMB_EINVAL),
    ROW(r_runner_create_null_out, HMB_EINVAL),
    ROW(r_runner_create_bad_timeout, HMB_EINVAL),
    ROW(r_runner_create_too_big, HMB_ETOOBIG),
    ROW(r_runner_create_size_max, HMB_ETOOBIG),
    ROW(r_runner_start_null, HMB_EINVAL),
    ROW(r_runner_start_bad_timeout, HMB_EINVAL),
    ROW(r_runner_start_running, HMB_ESTATE),
    ROW(r_runner_start_finished, HMB_ESTATE),
    ROW(r_runner_start_cancelled, HMB_ECANCELED),
    ROW(r_runner_alloc_null, HMB_EINVAL),
    ROW(r_runner_alloc_zero_created, HMB_ESTATE),
    ROW(r_runner_alloc_zero_finished, HMB_ESTATE),
    ROW(r_runner_alloc_null_out, HMB_EINVAL),
    ROW(r_runner_alloc_bad_flags, HMB_EINVAL),
    ROW(r_runner_alloc_above_max_request, HMB_ETOOBIG),
    ROW(r_runner_alloc_size_max, HMB_ETOOBIG),
    ROW(r_runner_alloc_created, HMB_ESTATE),
    ROW(r_runner_alloc_finished, HMB_ESTATE),
    ROW(r_runner_alloc_cancelled, HMB_ECANCELED),
    ROW(r_runner_reserve_null, HMB_EINVAL),
    ROW(r_runner_reserve_zero, HMB_EINVAL),
    ROW(r_runner_reserve_null_out, HMB_EINVAL),
    ROW(r_runner_reserve_size_max, HMB_ETOOBIG),
    ROW(r_runner_reserve_finished, HMB_ESTATE),
    ROW(r_runner_reserve_cancelled, HMB_ECANCELED),
    ROW(r_runner_start_partial_null, HMB_EINVAL),
    ROW(r_runner_start_partial_bad_timeout, HMB_EINVAL),
    ROW(r_runner_start_partial_too_big, HMB_ETOOBIG),
    ROW(r_runner_start_partial_running, HMB_ESTATE),
    ROW(r_runner_grow_null, HMB_EINVAL),
    ROW(r_runner_grow_bad_timeout, HMB_EINVAL),
    ROW(r_runner_grow_too_big, HMB_ETOOBIG),
    ROW(r_runner_grow_created, HMB_ESTATE),
    ROW(r_runner_grow_finished, HMB_ESTATE),
    ROW(r_runner_grow_cancelled, HMB_ECANCELED),
    ROW(r_runner_try_free_null, HMB_EINVAL),
    ROW(r_runner_set_need_null, HMB_EINVAL),
    ROW(r_runner_set_need_huge, HMB_ETOOBIG),
    ROW(r_runner_finish_null, HMB_EINVAL),
    ROW(r_runner_finish_created, HMB_ESTATE),
    ROW(r_runner_finish_twice, HMB_ESTATE),
    ROW(r_runner_cancel_null, HMB_EINVAL),
    ROW(r_runner_cancel_finished, HMB_ESTATE),
    ROW(r_runner_wait_idle_null, HMB_EINVAL),
    ROW(r_runner_wait_idle_bad_timeout, HMB_EINVAL),
    ROW(r_runner_wait_idle_busy, HMB_ETIMEDOUT),
    ROW(r_runner_stats_null, HMB_EINVAL),
    ROW(r_runner_stats_null_out, HMB_EINVAL),
    ROW(r_runner_stats_too_small, HMB_EINVAL),
    ROW(r_runner_create_sized_too_small, HMB_EINVAL),
    ROW(r_runner_create_sized_unknown_field, HMB_ENOTSUP),
    ROW(r_executor_create_null_pool, HMB_EINVAL),
    ROW(r_executor_create_null_out, HMB_EINVAL),
    ROW(r_executor_create_neg_threads, HMB_EINVAL),
    ROW(r_executor_create_many_threads, HMB_EINVAL),
    ROW(r_executor_create_bad_timeout, HMB_EINVAL),
    ROW(r_submit_null_ex, HMB_EINVAL),
    ROW(r_submit_null_desc, HMB_EINVAL),
    ROW(r_submit_null_run, HMB_EINVAL),
    ROW(r_submit_bad_timeout, HMB_EINVAL),
    ROW(r_submit_too_big, HMB_ETOOBIG),
    ROW(r_submit_after_shutdown, HMB_ESHUTDOWN),
    ROW(r_task_wait_null, HMB_EINVAL),
    ROW(r_task_wait_bad_timeout, HMB_EINVAL),
    ROW(r_task_cancel_null, HMB_EINVAL),
    ROW(r_task_cancel_finished, HMB_ESTATE),
    ROW(r_executor_shutdown_null, HMB_EINVAL),
    ROW(r_executor_shutdown_bad_mode, HMB_EINVAL),
    ROW(r_executor_stats_null, HMB_EINVAL),
    ROW(r_executor_stats_null_out, HMB_EINVAL),
    ROW(r_executor_stats_too_small, HMB_EINVAL),
    ROW(r_executor_create_sized_too_small, HMB_EINVAL),
    ROW(r_executor_create_sized_unknown_field, HMB_ENOTSUP),
    ROW(r_submit_sized_too_small, HMB_EINVAL),
    ROW(r_submit_sized_unknown_field, HMB_ENOTSUP),
    ROW(r_submit_staged_initial_too_big, HMB_ETOOBIG),
    ROW(r_void_calls, HMB_OK),
};

static void test_table(void **state) {
  (void)state;
  int failures = 0;
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const row_t *row = &rows[i];
    snap_t before, after;
    take(&before);
    ob = JUNK;
    orun = JUNK;
    opool = JUNK;
    oex = JUNK;
    otask = JUNK;
    optr = JUNK;
    oret = 777;
    int rc = row->call();
    take(&after);
    if (rc != row->expect) {
      fprintf(stderr, "%s: got %s, documented %s\n", row->name, hmb_errname(rc),
              hmb_errname(row->expect));
      failures++;
    }
    /* Out-pointers are NULL (or untouched when NULL itself was bad). */
    if ((ob != JUNK && ob != NULL) || (orun != JUNK && orun != NULL) ||
        (opool != JUNK && opool != NULL) || (oex != JUNK && oex != NULL) ||
        (otask != JUNK && otask != NULL) || (optr != JUNK && optr != NULL) ||
        (oret != 777 && oret != 0)) {
      fprintf(stderr, "%s: an out-parameter was not cleared\n", row->name);
      failures++;
    }
    assert_same(&before, &after, row->name);
  }
  assert_int_equal(failures, 0);
  /* Only the busy destroy logs (the leak report). */
  assert_true(ts_log_contains(&F.log, "leak: pool destroyed with 4 runner"));
}

/* Outputs that must be reset to NULL on error are reset, not left alone. */
static void test_outputs_cleared(void **state) {
  (void)state;
  ob = JUNK;
  assert_int_equal(hmb_runner_alloc(F.done, 8, 0, &ob), HMB_ESTATE);
  assert_null(ob);
  ob = JUNK;
  assert_int_equal(hmb_buffer_slice(F.buf, 0, 0, &ob), HMB_EINVAL);
  assert_null(ob);
  orun = JUNK;
  hmb_runner_config_t c = {0};
  c.estimate = 4001;
  assert_int_equal(hmb_runner_create(F.pool, &c, &orun), HMB_ETOOBIG);
  assert_null(orun);
  oret = 777;
  assert_int_equal(hmb_runner_finish(F.done, 0, &oret), HMB_ESTATE);
  assert_int_equal(oret, 0);
  otask = JUNK;
  hmb_task_desc_t d = {0};
  d.run = nop_task;
  assert_int_equal(hmb_executor_submit(F.ex_down, &d, &otask), HMB_ESHUTDOWN);
  assert_null(otask);
}

/* describe with no buffer reports the length it needs, like snprintf. */
static void test_describe_sizes(void **state) {
  (void)state;
  int need = hmb_pool_describe(F.pool, 0, NULL, 0);
  assert_true(need > 0);
  char small[8];
  assert_int_equal(hmb_pool_describe(F.pool, 0, small, sizeof small), need);
  assert_int_equal(strlen(small), sizeof small - 1);
  char big[2048];
  assert_int_equal(hmb_pool_describe(F.pool, 0, big, sizeof big), need);
  assert_int_equal((int)strlen(big), need);
  assert_memory_equal(small, big, sizeof small - 1);
}

/* Misuse of a buffer's count from inside its last handler: detected. */
typedef struct late {
  int retain_rc, close_rc;
  int calls;
} late_t;

static void late_handler(void *user, hmb_buffer_t *b, long refs) {
  late_t *l = user;
  l->calls++;
  if (refs == 0) {
    l->retain_rc = hmb_buffer_retain(b);
    l->close_rc = hmb_buffer_close(b);
  }
}

static void test_use_after_last_close(void **state) {
  (void)state;
  ts_log_t glog;
  memset(&glog, 0, sizeof glog);
  hmb_set_log(ts_log_capture, &glog, HMB_LOG_DEBUG);
  hmb_buffer_t *b = NULL;
  assert_int_equal(hmb_allocate(hmb_default_allocator(), 64, 0, &b), HMB_OK);
  late_t l = {1, 1, 0};
  hmb_buffer_handler_t h = {late_handler, &l};
  assert_int_equal(hmb_buffer_set_handler(b, &h, NULL), HMB_OK);
  assert_int_equal(hmb_buffer_close(b), HMB_OK);
  hmb_set_log(NULL, NULL, 0);
  assert_int_equal(l.calls, 1);
  assert_int_equal(l.retain_rc, HMB_ESTATE);
  assert_int_equal(l.close_rc, HMB_ESTATE);
  assert_true(ts_log_contains(&glog, "after its last close"));
  assert_true(ts_log_contains(&glog, "closed more times than retained"));
  hmb_memory_stats_t ms;
  assert_int_equal(hmb_default_memory_stats(&ms), HMB_OK);
  assert_int_equal(ms.pageable_live, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_outputs_cleared),
      cmocka_unit_test(test_describe_sizes),
      cmocka_unit_test(test_use_after_last_close),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
