/*
 * test_fork.c - fork() while other threads use hmb (README, "fork").
 *
 * Background threads keep every process-wide lock of the library busy: a
 * producer allocates buffers (64 B to 4 KiB, and 1 MiB ones from the warm
 * cache) that a consumer closes, so the thread caches spill to and refill
 * from the depot; a churn thread starts and joins short-lived threads that
 * allocate (the thread-index lock, the thread-cache registry, a thread
 * cache's exit), swaps the process-wide log sink, runs executor tasks with
 * handles (the completion stripes) and trims the pool (a walk of every
 * thread's magazine); two more allocate through the default allocator,
 * whose warm cache is process-wide. Meanwhile the main thread forks again
 * and again.
 * Each child uses only objects it makes itself (and the default
 * allocator): a new pool, a runner, the handle and pointer APIs at small
 * and large sizes, a thread of its own
 * and an executor (not under ThreadSanitizer, whose runtime refuses a
 * thread started after a multi-threaded fork), then checks that every
 * figure is back at rest and the pool's self-check holds. A child that
 * finds a lock held forever is killed after 10 s; the parent requires
 * every child to exit with 0.
 *
 * Under ThreadSanitizer (clang 14) a child can also wait forever inside
 * the sanitizer's runtime: a lock of its own (its metadata allocator's,
 * in aligned_alloc(), for one), held by a parent thread at the fork, is
 * not taken by the runtime's fork handlers (seen about once in 1,000
 * children, with the library's and without it in the stack). Before
 * killing a child past its deadline the parent asks gdb for its stack;
 * one whose innermost frame is in the sanitizer's runtime is reported and
 * counted apart (at most 3 are tolerated); any other, or any child when
 * gdb cannot tell, fails the test.
 *
 * Not under AddressSanitizer: its allocator (clang 14) takes no fork
 * handlers of its own, and a child's malloc then hangs now and then under
 * this load without hmb too (a plain program of the same threads and
 * sizes: 1 to 3 children in 300).
 *
 * Without the library's fork handlers a child deadlocks in a good share of
 * the runs (a lock another thread held at the fork stays held).
 *
 * Sizes: HMB_FORKS children (default 300; a quarter of it under
 * ThreadSanitizer).
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testsupport.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

/* ---- the parent's background load ---------------------------------------- */

#define RING 256

typedef struct load {
  hmb_pool_t *pool;
  atomic_int stop;
  hmb_buffer_t *_Atomic ring[RING];
  atomic_long produced, consumed, churned;
} load_t;

static void *producer(void *arg) {
  load_t *L = arg;
  hmb_runner_t *r = ts_started_runner(L->pool, 4 * MIB);
  unsigned i = 0;
  while (!atomic_load(&L->stop)) {
    size_t size = i % 97 == 0 ? 1 * MIB : (size_t)64 << (i % 7);
    hmb_buffer_t *b = NULL;
    if (hmb_runner_alloc(r, size, 0, &b) != HMB_OK) {
      i++;
      continue;
    }
    memset(hmb_buffer_data(b), (int)i, 64);
    hmb_buffer_t *old = atomic_exchange(&L->ring[i % RING], b);
    if (old) /* the consumer is behind: close it here */
      hmb_buffer_close(old);
    atomic_fetch_add(&L->produced, 1);
    i++;
  }
  for (unsigned k = 0; k < RING; k++) {
    hmb_buffer_t *b = atomic_exchange(&L->ring[k], NULL);
    if (b)
      hmb_buffer_close(b);
  }
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  return NULL;
}

/* The default allocator's warm cache is process-wide: the child may use
 * it. Twelve 1 MiB blocks closed together overflow the thread's magazine
 * (4 blocks) into that cache's depot (its lock). */
static void *defaulter(void *arg) {
  load_t *L = arg;
  const hmb_allocator_t *a = hmb_default_allocator();
  while (!atomic_load(&L->stop)) {
    hmb_buffer_t *b[12] = {NULL};
    for (int i = 0; i < 12; i++)
      if (hmb_allocate(a, 1 * MIB, 0, &b[i]) == HMB_OK)
        memset(hmb_buffer_data(b[i]), i, 64);
    for (int i = 0; i < 12; i++)
      if (b[i])
        hmb_buffer_close(b[i]);
  }
  return NULL;
}

static void *consumer(void *arg) {
  load_t *L = arg;
  unsigned k = 0;
  while (!atomic_load(&L->stop)) {
    hmb_buffer_t *b = atomic_exchange(&L->ring[k++ % RING], NULL);
    if (b) {
      hmb_buffer_close(b);
      atomic_fetch_add(&L->consumed, 1);
    }
  }
  return NULL;
}

static void *short_lived(void *arg) {
  load_t *L = arg;
  hmb_runner_t *r = ts_started_runner(L->pool, 64 * KIB);
  void *p[16];
  for (int i = 0; i < 16; i++)
    if (hmb_ptr_alloc(hmb_runner_allocator(r), 256, 0, 0, &p[i]) != HMB_OK)
      p[i] = NULL;
  for (int i = 0; i < 16; i++)
    hmb_ptr_free(p[i]);
  hmb_runner_finish(r, 0, NULL);
  hmb_runner_destroy(r);
  return NULL;
}

static void quiet_sink(void *user, int level, const char *msg) {
  (void)user;
  (void)level;
  (void)msg;
}

static int empty_task(void *user, hmb_runner_t *r) {
  (void)user;
  void *p = NULL;
  if (hmb_ptr_alloc(hmb_runner_allocator(r), 128, 0, 0, &p) == HMB_OK)
    hmb_ptr_free(p);
  return 0;
}

static void *churn(void *arg) {
  load_t *L = arg;
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = 2;
  hmb_executor_t *ex = NULL;
  if (hmb_executor_create(L->pool, &ec, &ex) != HMB_OK)
    return (void *)1;
  while (!atomic_load(&L->stop)) {
    pthread_t th;
    if (pthread_create(&th, NULL, short_lived, L) == 0)
      pthread_join(th, NULL);
    hmb_set_log(quiet_sink, NULL, HMB_LOG_ERROR);
    hmb_set_log(NULL, NULL, 0);
    hmb_task_t *t[4];
    for (int i = 0; i < 4; i++) {
      hmb_task_desc_t d;
      hmb_task_desc_init(&d);
      d.estimate = 4 * KIB;
      d.run = empty_task;
      if (hmb_executor_submit(ex, &d, &t[i]) != HMB_OK)
        t[i] = NULL;
    }
    for (int i = 0; i < 4; i++)
      if (t[i]) {
        (void)hmb_task_wait(t[i], HMB_WAIT_FOREVER, NULL);
        hmb_task_release(t[i]);
      }
    hmb_pool_trim(L->pool, 0);
    atomic_fetch_add(&L->churned, 1);
  }
  hmb_executor_destroy(ex);
  return NULL;
}

/* ---- the child ----------------------------------------------------------- */

/* What a child checks fails with a distinct exit status (2 and up). */
#define CHILD_CHECK(cond, code)                                                \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "test_fork child: %s failed\n", #cond);                  \
      return (code);                                                           \
    }                                                                          \
  } while (0)

static void *child_thread(void *arg) {
  hmb_runner_t *r = arg;
  for (int i = 0; i < 200; i++) {
    hmb_buffer_t *b = NULL;
    if (hmb_runner_alloc(r, 64 + (size_t)i, 0, &b) != HMB_OK)
      return (void *)1;
    hmb_buffer_close(b);
  }
  return NULL;
}

static int child_body(void) {
  hmb_set_log(quiet_sink, NULL, HMB_LOG_WARN);
  hmb_pool_config_t pc;
  hmb_pool_config_init(&pc);
  pc.limit = 32 * MIB;
  hmb_pool_t *pool = NULL;
  CHILD_CHECK(hmb_pool_create(&pc, &pool) == HMB_OK, 2);
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = 8 * MIB;
  hmb_runner_t *r = NULL;
  CHILD_CHECK(hmb_runner_create(pool, &rc, &r) == HMB_OK, 3);
  CHILD_CHECK(hmb_runner_start(r, HMB_WAIT_FOREVER) == HMB_OK, 4);
  /* More small buffers of one class than a thread cache keeps, so the
   * closes spill to the depot and the allocations refill from it. */
  static hmb_buffer_t *b[400];
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 400; i++) {
      size_t size = i % 50 == 0 ? 1 * MIB : 64;
      CHILD_CHECK(hmb_runner_alloc(r, size, 0, &b[i]) == HMB_OK, 5);
      memset(hmb_buffer_data(b[i]), i, 64);
    }
    for (int i = 0; i < 400; i++)
      hmb_buffer_close(b[i]);
  }
  hmb_buffer_t *db[8];
  for (int i = 0; i < 8; i++) /* the default allocator's cache */
    CHILD_CHECK(hmb_allocate(hmb_default_allocator(), 1 * MIB, 0, &db[i]) ==
                    HMB_OK,
                20);
  for (int i = 0; i < 8; i++)
    hmb_buffer_close(db[i]);
  void *p = NULL;
  CHILD_CHECK(hmb_ptr_alloc(hmb_runner_allocator(r), 3000, 64, 0, &p) == HMB_OK,
              6);
  CHILD_CHECK(hmb_ptr_free(p) == HMB_OK, 7);
  if (!ts_under_sanitizer()) {
    pthread_t th;
    void *ret = (void *)1;
    CHILD_CHECK(pthread_create(&th, NULL, child_thread, r) == 0, 8);
    pthread_join(th, &ret);
    CHILD_CHECK(ret == NULL, 9);
    hmb_executor_config_t ec;
    hmb_executor_config_init(&ec);
    ec.threads = 1;
    hmb_executor_t *ex = NULL;
    CHILD_CHECK(hmb_executor_create(pool, &ec, &ex) == HMB_OK, 10);
    hmb_task_desc_t d;
    hmb_task_desc_init(&d);
    d.estimate = 4 * KIB;
    d.run = empty_task;
    hmb_task_t *t = NULL;
    int st = -1;
    CHILD_CHECK(hmb_executor_submit(ex, &d, &t) == HMB_OK, 11);
    CHILD_CHECK(hmb_task_wait(t, HMB_WAIT_FOREVER, &st) == HMB_OK && st == 0,
                12);
    hmb_task_release(t);
    hmb_executor_destroy(ex);
  }
  hmb_pool_trim(pool, 0);
  CHILD_CHECK(hmb_runner_finish(r, 0, NULL) == HMB_OK, 13);
  hmb_runner_destroy(r);
  hmb_pool_stats_t ps;
  CHILD_CHECK(hmb_pool_stats(pool, &ps) == HMB_OK, 14);
  CHILD_CHECK(ps.held == 0 && ps.live_bytes == 0 && ps.live_buffers == 0, 15);
  hmb_memory_stats_t ms;
  CHILD_CHECK(hmb_pool_memory_stats(pool, &ms) == HMB_OK, 16);
  CHILD_CHECK(ms.pageable_live == 0 && ms.pinned_live == 0, 17);
  char report[512];
  CHILD_CHECK(hmb_pool_check(pool, HMB_CHECK_QUIESCENT, report,
                             sizeof report) == HMB_OK,
              18);
  CHILD_CHECK(hmb_pool_destroy(pool) == HMB_OK, 19);
  hmb_set_log(NULL, NULL, 0);
  return 0;
}

/* Whether child `pid`, past its deadline, is spinning in the sanitizer's
 * runtime: gdb's innermost frame of its one thread is there. */
static int stuck_in_sanitizer_runtime(pid_t pid) {
  char cmd[128], line[512];
  snprintf(cmd, sizeof cmd, "gdb -nx -batch -p %d -ex bt 2>/dev/null",
           (int)pid);
  FILE *f = popen(cmd, "r");
  if (!f)
    return 0;
  int in_runtime = 0, seen = 0;
  while (fgets(line, sizeof line, f)) {
    if (!seen && strncmp(line, "#0 ", 3) == 0) {
      seen = 1;
      in_runtime = strstr(line, "__sanitizer::") != NULL ||
                   strstr(line, "__tsan::") != NULL;
      fprintf(stderr, "test_fork: child %d, innermost frame: %s", (int)pid,
              line);
    }
  }
  pclose(f);
  return in_runtime;
}

/* Wait for child `pid` at most `seconds`; past it, classify and kill it.
 * Returns its wait status; *runtime: it was spinning in the sanitizer's
 * runtime. */
static int wait_child(pid_t pid, int seconds, int *runtime) {
  *runtime = 0;
  int ws = 0;
  const struct timespec tick = {0, 1000000};
  for (long waited = 0;; waited++) {
    pid_t got = waitpid(pid, &ws, WNOHANG);
    assert_true(got >= 0);
    if (got == pid)
      return ws;
    if (waited >= (long)seconds * 1000)
      break;
    nanosleep(&tick, NULL);
  }
  if (ts_under_sanitizer())
    *runtime = stuck_in_sanitizer_runtime(pid);
  kill(pid, SIGKILL);
  assert_int_equal(waitpid(pid, &ws, 0), pid);
  return ws;
}

static void test_fork_while_threads_use_the_library(void **state) {
  (void)state;
  if (ts_under_asan()) {
    fprintf(stderr, "test_fork: not run under AddressSanitizer (its "
                    "allocator is not fork-safe; see the file comment)\n");
    skip();
  }
  long forks = ts_env_long("HMB_FORKS", 300);
  ts_watchdog_arm("fork", 240);
  load_t L;
  memset(&L, 0, sizeof L);
  L.pool = ts_pool(64 * MIB, NULL, NULL);
  pthread_t th[5];
  assert_int_equal(pthread_create(&th[0], NULL, producer, &L), 0);
  assert_int_equal(pthread_create(&th[1], NULL, consumer, &L), 0);
  assert_int_equal(pthread_create(&th[2], NULL, churn, &L), 0);
  assert_int_equal(pthread_create(&th[3], NULL, defaulter, &L), 0);
  assert_int_equal(pthread_create(&th[4], NULL, defaulter, &L), 0);
  while (atomic_load(&L.churned) == 0) /* every kind of work has begun */
    sched_yield();
  long hung = 0, failed = 0, runtime_hung = 0;
  for (long i = 0; i < forks; i++) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
      _exit(child_body());
    int runtime = 0;
    int ws = wait_child(pid, 10, &runtime);
    if (runtime)
      runtime_hung++;
    else if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL)
      hung++;
    else if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
      failed++;
      fprintf(stderr, "test_fork: child %ld: %s %d\n", i,
              WIFEXITED(ws) ? "exit status" : "signal",
              WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
    }
  }
  atomic_store(&L.stop, 1);
  void *ret[5];
  for (int i = 0; i < 5; i++)
    assert_int_equal(pthread_join(th[i], &ret[i]), 0);
  assert_null(ret[2]);
  fprintf(stderr,
          "test_fork: %ld children, %ld hung, %ld failed, %ld stuck in the "
          "sanitizer's runtime; parent: %ld buffers produced, %ld closed "
          "by the consumer, %ld churn rounds\n",
          forks, hung, failed, runtime_hung, atomic_load(&L.produced),
          atomic_load(&L.consumed), atomic_load(&L.churned));
  assert_int_equal(hung, 0);
  assert_int_equal(failed, 0);
  assert_true(runtime_hung <= 3);
  ts_pool_done(L.pool);
  ts_watchdog_disarm();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fork_while_threads_use_the_library),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
