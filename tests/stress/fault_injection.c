/*
 * fault_injection.c - every physical allocation failure leaves exact books.
 *
 * The failing backend of tests/support fails the Nth physical allocation
 * (or, sticky, every one from the Nth on). Each scenario below is a whole
 * scan: runners start, allocate within their budget (hot path), borrow,
 * borrow beyond the limit under the all-borrowing rule, reserve, slice,
 * declare their real need, finish, and detach with live buffers. The test
 * runs the scenario for N = 1, 2, 3, ... until a run meets no failure. On
 * each failure it asserts HMB_ENOMEM, a NULL out-pointer, and that not one
 * counter moved: pool held/available/over-commit/live bytes/buffers and the
 * borrow and over-commit event counters, the runner's held/live/spare/
 * borrowed/borrows/allocations, and the backend's live blocks. The scenario
 * then unwinds and the pool must be back at rest with nothing leaked.
 * The same failures are also driven through the executor: a task whose
 * allocation fails reports HMB_ENOMEM through its handle and its callback.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "testsupport.h"

#include "core/internal.h"

typedef struct fi {
  hmb_pool_t *pool;
  ts_failing_backend_t fb;
  ts_log_t log;
  int failures; /* allocations that failed in this run */
  hmb_buffer_t *bufs[32];
  int nbufs;
} fi_t;

typedef struct snap {
  hmb_pool_stats_t ps;
  hmb_runner_stats_t rs;
  int64_t spare;
  long backend_live;
} snap_t;

static void take(fi_t *f, hmb_runner_t *r, snap_t *s) {
  assert_int_equal(hmb_pool_stats(f->pool, &s->ps), HMB_OK);
  assert_int_equal(hmb_runner_stats(r, &s->rs), HMB_OK);
  s->spare = atomic_load(&r->spare);
  s->backend_live = __atomic_load_n(&f->fb.live, __ATOMIC_SEQ_CST);
}

/* Nothing but peaks (and the time waited) may differ after a failure. */
static void assert_unchanged(const snap_t *a, const snap_t *b) {
  assert_int_equal(a->ps.held, b->ps.held);
  assert_int_equal(a->ps.available, b->ps.available);
  assert_int_equal(a->ps.overcommitted, b->ps.overcommitted);
  assert_int_equal(a->ps.live_bytes, b->ps.live_bytes);
  assert_int_equal(a->ps.live_buffers, b->ps.live_buffers);
  assert_int_equal(a->ps.running, b->ps.running);
  assert_int_equal(a->ps.borrow_waiters, b->ps.borrow_waiters);
  assert_int_equal(a->ps.borrows, b->ps.borrows);
  assert_int_equal(a->ps.borrow_overcommits, b->ps.borrow_overcommits);
  assert_int_equal(a->ps.overcommitted_total, b->ps.overcommitted_total);
  assert_int_equal(a->ps.acquires, b->ps.acquires);
  assert_int_equal(a->rs.held, b->rs.held);
  assert_int_equal(a->rs.live, b->rs.live);
  assert_int_equal(a->rs.live_buffers, b->rs.live_buffers);
  assert_int_equal(a->rs.borrowed, b->rs.borrowed);
  assert_int_equal(a->rs.borrows, b->rs.borrows);
  assert_int_equal(a->rs.allocations, b->rs.allocations);
  assert_int_equal(a->rs.state, b->rs.state);
  assert_int_equal(a->spare, b->spare);
  assert_int_equal(a->backend_live, b->backend_live);
}

/*
 * Allocate `n` bytes through `r`. Returns 1 on success (the buffer is kept
 * for the unwind), 0 after an injected failure (checked exhaustively).
 */
static int fi_alloc(fi_t *f, hmb_runner_t *r, size_t n) {
  snap_t before, after;
  take(f, r, &before);
  long fails = __atomic_load_n(&f->fb.failures, __ATOMIC_SEQ_CST);
  hmb_buffer_t *b = (hmb_buffer_t *)&b; /* must come back NULL on error */
  int rc = hmb_runner_alloc(r, n, 0, &b);
  take(f, r, &after);
  if (rc == HMB_ENOMEM) {
    assert_null(b);
    assert_int_equal(__atomic_load_n(&f->fb.failures, __ATOMIC_SEQ_CST),
                     fails + 1);
    assert_unchanged(&before, &after);
    f->failures++;
    return 0;
  }
  assert_int_equal(rc, HMB_OK);
  assert_non_null(b);
  assert_int_equal(hmb_buffer_size(b), n);
  memset(hmb_buffer_data(b), 0x5a, n);
  /* Success: live grew by n, held covers it, the backend has one more. */
  assert_int_equal(after.rs.live, before.rs.live + (int64_t)n);
  assert_true(after.rs.held >= after.rs.live);
  assert_int_equal(after.backend_live, before.backend_live + 1);
  assert_true(f->nbufs < 32);
  f->bufs[f->nbufs++] = b;
  return 1;
}

static void close_all(fi_t *f) {
  while (f->nbufs)
    assert_int_equal(hmb_buffer_close(f->bufs[--f->nbufs]), HMB_OK);
}

static hmb_runner_t *start(fi_t *f, size_t estimate, const char *name) {
  hmb_runner_config_t rc = {0};
  rc.estimate = estimate;
  rc.name = name;
  rc.borrow_timeout_ns = 2000000000; /* never reached: bounded just in case */
  hmb_runner_t *r = NULL;
  assert_int_equal(hmb_runner_create(f->pool, &rc, &r), HMB_OK);
  assert_int_equal(hmb_runner_start(r, 0), HMB_OK);
  return r;
}

/*
 * The scan scenario. Returns when done or at the first injected failure
 * (like a reader that gives up on HMB_ENOMEM), leaving the unwind to the
 * caller through f->bufs and the runners array.
 */
static void scenario_scan(fi_t *f, hmb_runner_t **rs, int *nr) {
  hmb_runner_t *a = start(f, 4096, "scan-a");
  rs[(*nr)++] = a;
  /* Hot path: within the estimate. */
  if (!fi_alloc(f, a, 1000) || !fi_alloc(f, a, 2000))
    return;
  /* A slice keeps its parent alive; no physical allocation. */
  hmb_buffer_t *s = NULL;
  assert_int_equal(hmb_buffer_slice(f->bufs[0], 10, 100, &s), HMB_OK);
  f->bufs[f->nbufs++] = s;
  /* A reservation takes budget but no memory. */
  hmb_buffer_t *res = NULL;
  assert_int_equal(hmb_runner_reserve(a, 500, &res), HMB_OK);
  f->bufs[f->nbufs++] = res;
  /* Spare is 596: this borrows 1404 from the pool (limit 8192). */
  if (!fi_alloc(f, a, 2000))
    return;
  hmb_runner_t *b = start(f, 1000, "scan-b");
  rs[(*nr)++] = b;
  if (!fi_alloc(f, b, 600))
    return;
  /* The early release: b's real need is what it has; 400 go back. */
  size_t ret = 0;
  assert_int_equal(hmb_runner_set_need(b, 600, &ret), HMB_OK);
  assert_int_equal(ret, 400);
  /* b finishes with its buffer still live (handed to a consumer). */
  assert_int_equal(hmb_runner_finish(b, 0, &ret), HMB_OK);
  assert_int_equal(ret, 0);
  hmb_runner_destroy(b);
  rs[--(*nr)] = NULL;
  /* a is the only running runner: a borrow beyond the limit is granted by
   * the all-borrowing rule (held 5500 + 600 of b; this asks 4000 more). */
  if (!fi_alloc(f, a, 4000))
    return;
  hmb_pool_stats_t ps;
  assert_int_equal(hmb_pool_stats(f->pool, &ps), HMB_OK);
  assert_int_equal(ps.borrow_overcommits, 1);
  assert_true(ps.held > ps.limit);
  /* Small ones on the hot path again after closing a big one. */
  assert_int_equal(hmb_buffer_close(f->bufs[--f->nbufs]), HMB_OK);
  for (int i = 0; i < 4; i++)
    if (!fi_alloc(f, a, 512))
      return;
  assert_int_equal(hmb_runner_finish(a, 0, NULL), HMB_OK);
}

static void run_scan(long fail_at, int sticky, int *failed) {
  fi_t f;
  memset(&f, 0, sizeof f);
  ts_failing_backend_init(&f.fb, fail_at, sticky);
  f.pool = ts_pool(8192, &f.fb.vtable, &f.log);
  hmb_runner_t *rs[4] = {0};
  int nr = 0;
  scenario_scan(&f, rs, &nr);
  *failed = f.failures;
  /* Unwind in the order a reader would: runners first, then buffers. */
  for (int i = 0; i < nr; i++)
    hmb_runner_destroy(rs[i]);
  close_all(&f);
  ts_assert_pool_idle(f.pool);
  hmb_pool_stats_t ps;
  assert_int_equal(hmb_pool_stats(f.pool, &ps), HMB_OK);
  assert_int_equal(ps.runners, 0);
  assert_int_equal(f.fb.live, 0);
  assert_int_equal(hmb_pool_destroy(f.pool), HMB_OK);
}

static void loop_until_success(int sticky) {
  int runs = 0;
  for (long n = 1; n < 1000; n++) {
    int failed = 0;
    run_scan(n, sticky, &failed);
    runs++;
    if (!failed)
      break;
    assert_int_equal(failed, 1); /* the scenario stops at its first one */
  }
  /* The scenario makes 9 physical allocations: N = 1..9 fail, 10 runs. */
  fprintf(stderr, "fault_injection: %s: %d runs\n",
          sticky ? "sticky" : "single", runs);
  assert_int_equal(runs, 10);
}

static void test_scan_fail_nth(void **state) {
  (void)state;
  loop_until_success(0);
}

static void test_scan_fail_from_nth(void **state) {
  (void)state;
  loop_until_success(1);
}

/*
 * A failed allocation that borrowed beyond the limit must undo the
 * over-commit too, and a pool-wide failure must leave a runner that can
 * still allocate once memory is back.
 */
static void test_overcommit_borrow_rollback(void **state) {
  (void)state;
  fi_t f;
  memset(&f, 0, sizeof f);
  ts_failing_backend_init(&f.fb, 1, 1); /* every allocation fails */
  f.pool = ts_pool(1000, &f.fb.vtable, &f.log);
  hmb_runner_t *a = start(&f, 800, "alone");
  for (int i = 0; i < 3; i++)
    assert_int_equal(fi_alloc(&f, a, 5000), 0); /* 4200 beyond, undone */
  hmb_pool_stats_t ps;
  assert_int_equal(hmb_pool_stats(f.pool, &ps), HMB_OK);
  assert_int_equal(ps.held, 800);
  assert_int_equal(ps.borrow_overcommits, 0);
  assert_int_equal(ps.overcommitted_total, 0);
  assert_int_equal(ps.overcommitted, 0);
  assert_true(ps.peak_overcommitted > 0); /* peaks record what happened */
  /* Memory is back: the same request now succeeds, beyond the limit. */
  f.fb.fail_at = 0;
  assert_int_equal(fi_alloc(&f, a, 5000), 1);
  assert_int_equal(hmb_pool_stats(f.pool, &ps), HMB_OK);
  assert_int_equal(ps.held, 5000);
  assert_int_equal(ps.borrow_overcommits, 1);
  assert_int_equal(ps.overcommitted_total, 4000);
  close_all(&f);
  hmb_runner_destroy(a);
  ts_assert_pool_idle(f.pool);
  assert_int_equal(hmb_pool_destroy(f.pool), HMB_OK);
}

/* After a failed allocation, finish returns the restored spare exactly. */
static void test_failure_then_finish(void **state) {
  (void)state;
  fi_t f;
  memset(&f, 0, sizeof f);
  ts_failing_backend_init(&f.fb, 2, 0);
  f.pool = ts_pool(1000, &f.fb.vtable, &f.log);
  hmb_runner_t *a = start(&f, 600, "finisher");
  assert_int_equal(fi_alloc(&f, a, 100), 1);
  assert_int_equal(fi_alloc(&f, a, 100), 0); /* the 2nd fails, spare kept */
  size_t ret = 0;
  assert_int_equal(hmb_runner_finish(a, 0, &ret), HMB_OK);
  assert_int_equal(ret, 500);
  hmb_pool_stats_t ps;
  assert_int_equal(hmb_pool_stats(f.pool, &ps), HMB_OK);
  assert_int_equal(ps.held, 100);
  close_all(&f);
  assert_int_equal(hmb_pool_stats(f.pool, &ps), HMB_OK);
  assert_int_equal(ps.held, 0);
  hmb_runner_destroy(a);
  ts_assert_pool_idle(f.pool);
  assert_int_equal(hmb_pool_destroy(f.pool), HMB_OK);
}

/* ---- through the executor ---------------------------------------------- */

enum { EX_TASKS = 6, EX_ALLOCS = 4 };

typedef struct ex_task {
  fi_t *f;
  int status; /* from the callback */
  int callbacks;
  int ret;            /* what the function returned */
  int enomem;         /* allocations that failed */
  hmb_buffer_t *kept; /* handed to the consumer (closed by the test) */
} ex_task_t;

/*
 * A scan task: allocations within the estimate, then beyond it (borrows).
 * At the first HMB_ENOMEM it checks that its runner's books did not move,
 * closes what it has and returns the error, like a reader that gives up.
 * A task that succeeds hands its first buffer to the consumer.
 */
static int ex_run(void *user, hmb_runner_t *r) {
  ex_task_t *t = user;
  static const size_t sizes[EX_ALLOCS] = {600, 300, 900, 2500};
  hmb_buffer_t *bufs[EX_ALLOCS];
  int n = 0, rc = 0;
  for (int i = 0; i < EX_ALLOCS; i++) {
    hmb_runner_stats_t before, after;
    assert_int_equal(hmb_runner_stats(r, &before), HMB_OK);
    int64_t spare = atomic_load(&r->spare);
    hmb_buffer_t *b = (hmb_buffer_t *)&b;
    rc = hmb_runner_alloc(r, sizes[i], 0, &b);
    if (rc == HMB_ENOMEM) {
      assert_null(b);
      assert_int_equal(hmb_runner_stats(r, &after), HMB_OK);
      assert_int_equal(after.held, before.held);
      assert_int_equal(after.live, before.live);
      assert_int_equal(after.live_buffers, before.live_buffers);
      assert_int_equal(after.allocations, before.allocations);
      assert_int_equal(after.borrowed, before.borrowed);
      assert_int_equal(atomic_load(&r->spare), spare);
      t->enomem++;
      break;
    }
    assert_int_equal(rc, HMB_OK);
    memset(hmb_buffer_data(b), 0x3c, sizes[i]);
    bufs[n++] = b;
  }
  int first = rc == 0 ? 1 : 0; /* keep bufs[0] when the task succeeds */
  if (rc == 0 && n > 0)
    t->kept = bufs[0];
  for (int i = first; i < n; i++)
    assert_int_equal(hmb_buffer_close(bufs[i]), HMB_OK);
  t->ret = rc;
  return rc;
}

static void ex_done(void *user, hmb_task_t *task, int status) {
  ex_task_t *t = user;
  (void)task;
  t->status = status;
  t->callbacks++;
}

/* Runs EX_TASKS tasks on `threads` workers; returns the failures seen. */
static int run_executor(long fail_at, int sticky, int threads) {
  fi_t f;
  memset(&f, 0, sizeof f);
  ts_failing_backend_init(&f.fb, fail_at, sticky);
  f.pool = ts_pool(8192, &f.fb.vtable, &f.log);
  hmb_executor_config_t ec = {0};
  ec.threads = threads;
  ec.acquire_timeout_ns = 1000000;
  hmb_executor_t *ex = NULL;
  assert_int_equal(hmb_executor_create(f.pool, &ec, &ex), HMB_OK);
  ex_task_t tasks[EX_TASKS];
  hmb_task_t *h[EX_TASKS];
  memset(tasks, 0, sizeof tasks);
  for (int i = 0; i < EX_TASKS; i++) {
    tasks[i].f = &f;
    tasks[i].status = 1;
    hmb_task_desc_t d = {0};
    d.estimate = 1000 + 500 * (size_t)i;
    d.priority = i % 3;
    d.run = ex_run;
    d.user = &tasks[i];
    d.done = ex_done;
    d.name = "fi-task";
    assert_int_equal(hmb_executor_submit(ex, &d, &h[i]), HMB_OK);
  }
  int failures = 0, enomem_tasks = 0;
  for (int i = 0; i < EX_TASKS; i++) {
    int st = 1;
    assert_int_equal(hmb_task_wait(h[i], 10 * 1000000000LL, &st), HMB_OK);
    assert_int_equal(hmb_task_done(h[i]), 1);
    /* The handle and the callback report what the function returned. */
    assert_int_equal(tasks[i].callbacks, 1);
    assert_int_equal(st, tasks[i].status);
    assert_int_equal(st, tasks[i].ret);
    assert_true(st == HMB_OK || st == HMB_ENOMEM);
    assert_int_equal(st == HMB_ENOMEM, tasks[i].enomem == 1);
    assert_int_equal(st == HMB_OK, tasks[i].kept != NULL);
    failures += tasks[i].enomem;
    enomem_tasks += st == HMB_ENOMEM;
    hmb_task_release(h[i]);
  }
  hmb_executor_stats_t es;
  assert_int_equal(hmb_executor_stats(ex, &es), HMB_OK);
  assert_int_equal(es.submitted, EX_TASKS);
  assert_int_equal(es.failed, (uint64_t)enomem_tasks);
  assert_int_equal(es.completed, (uint64_t)(EX_TASKS - enomem_tasks));
  assert_int_equal(es.cancelled, 0);
  assert_int_equal(failures,
                   (int)__atomic_load_n(&f.fb.failures, __ATOMIC_SEQ_CST));
  hmb_executor_destroy(ex);
  /* Every runner is finished: the pool holds exactly the kept buffers. */
  hmb_pool_stats_t ps;
  assert_int_equal(hmb_pool_stats(f.pool, &ps), HMB_OK);
  int64_t kept = 0;
  for (int i = 0; i < EX_TASKS; i++)
    kept += tasks[i].kept ? 600 : 0;
  assert_int_equal(ps.running, 0);
  assert_int_equal(ps.held, kept);
  assert_int_equal(ps.live_bytes, kept);
  assert_int_equal(__atomic_load_n(&f.fb.live, __ATOMIC_SEQ_CST),
                   (long)(EX_TASKS - enomem_tasks));
  for (int i = 0; i < EX_TASKS; i++)
    if (tasks[i].kept)
      assert_int_equal(hmb_buffer_close(tasks[i].kept), HMB_OK);
  ts_assert_pool_idle(f.pool);
  assert_int_equal(hmb_pool_stats(f.pool, &ps), HMB_OK);
  assert_int_equal(ps.runners, 0);
  assert_int_equal(f.fb.live, 0);
  assert_int_equal(hmb_pool_destroy(f.pool), HMB_OK);
  return failures;
}

/*
 * Tasks on the executor whose allocations fail report HMB_ENOMEM through
 * their handle and their callback, and leak no budget: the Nth allocation
 * fails (one task fails, whichever worker made it), every allocation from
 * the Nth fails, or none does.
 */
static void test_executor_enomem(void **state) {
  (void)state;
  ts_watchdog_arm("fault_injection executor", 60);
  /* The tasks make EX_TASKS * EX_ALLOCS allocations in all. */
  for (long n = 1; n <= EX_TASKS * EX_ALLOCS; n += 3) {
    assert_int_equal(run_executor(n, 0, 1 + (int)(n % 3)), 1);
  }
  assert_int_equal(run_executor(EX_TASKS * EX_ALLOCS + 1, 0, 2), 0);
  /* Sticky from the start: every task fails at its first allocation. */
  assert_int_equal(run_executor(1, 1, 3), EX_TASKS);
  /* Sticky from the 5th: at least one task fails, and so do all later. */
  int f = run_executor(5, 1, 2);
  assert_true(f >= 1 && f <= EX_TASKS);
  ts_watchdog_disarm();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scan_fail_nth),
      cmocka_unit_test(test_scan_fail_from_nth),
      cmocka_unit_test(test_overcommit_borrow_rollback),
      cmocka_unit_test(test_failure_then_finish),
      cmocka_unit_test(test_executor_enomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
