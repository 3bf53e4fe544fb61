/*
 * join_pressure.c - a hash join under one budget, kept within the limit by
 * a pressure handler.
 *
 * The build side of a join scans its table on the executor; its buffers
 * are finished (their tasks are done) but stay with the join until the
 * probe side has been matched against them. The probe side then scans its
 * own table under the same pool. With the budget full of finished build
 * buffers, nothing runs when the first probe task starts, so it becomes the
 * pool's progress runner: without help its allocations would go beyond the
 * limit (bounded by its real need, hmb/pool.h I3, but beyond).
 *
 * The join registers a pressure handler. Before a borrow would go beyond
 * the limit, the library calls it with the bytes wanted; the join spills
 * that many build buffers (here: checksums them into a "spill file" and
 * closes them), and the borrow is then served within the limit. The program
 * checks that the probe side ran with no over-commit at all, that the build
 * side's spilled bytes were checksummed correctly, and that every byte of
 * budget came back. It prints "OK: join_pressure" when all checks pass.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmb.h"

#define CHECK(call)                                                            \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ != 0) {                                                            \
      fprintf(stderr, "%s: %s (%s)\n", #call, hmb_errname(rc_),                \
              hmb_strerror(rc_));                                              \
      return 1;                                                                \
    }                                                                          \
  } while (0)
#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "check failed: %s\n", #cond);                            \
      return 1;                                                                \
    }                                                                          \
  } while (0)

enum { BUILD_TASKS = 8, PROBE_TASKS = 4, CHUNKS = 4 };
#define CHUNK ((size_t)64 << 10)
#define LIMIT                                                                  \
  ((size_t)BUILD_TASKS * CHUNKS * CHUNK) /* the build side fills it */

/* The join's state: the build side's finished buffers, and what was spilled. */
typedef struct join {
  pthread_mutex_t mu;
  hmb_buffer_t *build[BUILD_TASKS * CHUNKS];
  int nbuild;
  uint64_t spilled_bytes, spilled_sum, expected_sum;
  int pressure_calls;
} join_t;

static uint64_t checksum(const unsigned char *p, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i += 64)
    s = s * 31 + p[i];
  return s;
}

/* A scan task: reads CHUNKS chunks (fills them with its table's bytes). */
typedef struct scan {
  join_t *join;
  int side; /* 0 build, 1 probe */
  int id;
} scan_t;

static int scan_task(void *user, hmb_runner_t *runner) {
  scan_t *s = user;
  const hmb_allocator_t *alloc = hmb_runner_allocator(runner);
  hmb_buffer_t *chunk[CHUNKS];
  for (int i = 0; i < CHUNKS; i++) {
    int rc = hmb_allocate(alloc, CHUNK, 0, &chunk[i]);
    if (rc)
      return rc;
    memset(hmb_buffer_data(chunk[i]), (unsigned char)(s->side * 100 + s->id),
           CHUNK);
  }
  join_t *j = s->join;
  for (int i = 0; i < CHUNKS; i++) {
    if (s->side == 0) { /* build: the join keeps the buffers */
      pthread_mutex_lock(&j->mu);
      j->expected_sum += checksum(hmb_buffer_data(chunk[i]), CHUNK);
      j->build[j->nbuild++] = chunk[i];
      pthread_mutex_unlock(&j->mu);
    } else { /* probe: matched against the build side, then dropped */
      hmb_buffer_close(chunk[i]);
    }
  }
  return 0;
}

/* Pressure: spill build buffers until `wanted` bytes are free. */
static void spill(void *user, hmb_pool_t *pool, const hmb_pressure_t *ev) {
  (void)pool;
  join_t *j = user;
  pthread_mutex_lock(&j->mu);
  j->pressure_calls++;
  size_t freed = 0;
  while (freed < ev->wanted && j->nbuild > 0) {
    hmb_buffer_t *b = j->build[--j->nbuild];
    j->spilled_sum += checksum(hmb_buffer_data(b), hmb_buffer_size(b));
    j->spilled_bytes += hmb_buffer_size(b);
    freed += hmb_buffer_size(b);
    hmb_buffer_close(b); /* its budget goes back now */
  }
  pthread_mutex_unlock(&j->mu);
}

static int run_side(hmb_executor_t *ex, join_t *j, int side, int n) {
  scan_t s[BUILD_TASKS];
  hmb_task_t *t[BUILD_TASKS];
  for (int i = 0; i < n; i++) {
    s[i] = (scan_t){j, side, i};
    hmb_task_desc_t d;
    hmb_task_desc_init(&d);
    d.estimate = CHUNKS * CHUNK;
    d.run = scan_task;
    d.user = &s[i];
    d.name = side ? "probe" : "build";
    CHECK(hmb_executor_submit(ex, &d, &t[i]));
  }
  for (int i = 0; i < n; i++) {
    int status = -1;
    CHECK(hmb_task_wait(t[i], HMB_WAIT_FOREVER, &status));
    hmb_task_release(t[i]);
    CHECK(status);
  }
  return 0;
}

int main(void) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = LIMIT;
  hmb_pool_t *pool;
  CHECK(hmb_pool_create(&cfg, &pool));
  hmb_executor_config_t ecfg;
  hmb_executor_config_init(&ecfg);
  ecfg.threads = 2;
  hmb_executor_t *ex;
  CHECK(hmb_executor_create(pool, &ecfg, &ex));

  join_t j;
  memset(&j, 0, sizeof j);
  pthread_mutex_init(&j.mu, NULL);

  /* The build side fills the budget; its buffers outlive its tasks. */
  if (run_side(ex, &j, 0, BUILD_TASKS))
    return 1;
  hmb_pool_stats_t st;
  CHECK(hmb_pool_stats(pool, &st));
  EXPECT(st.held == (int64_t)LIMIT);
  EXPECT(st.running == 0);
  int64_t over_after_build = st.peak_overcommitted;

  /* The probe side scans at a full pool, with the join ready to spill. */
  int id;
  CHECK(hmb_pool_add_pressure_handler(pool, spill, &j, &id));
  if (run_side(ex, &j, 1, PROBE_TASKS))
    return 1;
  CHECK(hmb_pool_remove_pressure_handler(pool, id));
  CHECK(hmb_pool_stats(pool, &st));
  printf("build side: %d tasks, %zu KiB kept; probe side: %d tasks, %zu KiB "
         "read at a full pool\n",
         BUILD_TASKS, LIMIT >> 10, PROBE_TASKS,
         (size_t)PROBE_TASKS * CHUNKS * CHUNK >> 10);
  printf("pressure calls %d, build bytes spilled %" PRIu64 " KiB, "
         "borrows beyond the limit %" PRIu64 ", peak over-commit %" PRId64 "\n",
         j.pressure_calls, j.spilled_bytes >> 10, st.borrow_overcommits,
         st.peak_overcommitted);
  EXPECT(j.pressure_calls > 0);
  EXPECT(j.spilled_bytes >= (uint64_t)CHUNKS * CHUNK);
  EXPECT(st.borrow_overcommits == 0);
  EXPECT(st.peak_overcommitted == over_after_build);
  EXPECT(st.peak_held <= (int64_t)LIMIT);

  /* The join finishes with what was not spilled. */
  for (int i = 0; i < j.nbuild; i++) {
    j.spilled_sum += checksum(hmb_buffer_data(j.build[i]), CHUNK);
    hmb_buffer_close(j.build[i]);
  }
  EXPECT(j.spilled_sum == j.expected_sum); /* every build byte accounted */
  hmb_executor_destroy(ex);
  CHECK(hmb_pool_stats(pool, &st));
  EXPECT(st.held == 0 && st.live_bytes == 0);
  char why[256];
  CHECK(hmb_pool_check(pool, HMB_CHECK_QUIESCENT, why, sizeof why));
  CHECK(hmb_pool_destroy(pool));
  pthread_mutex_destroy(&j.mu);
  printf("OK: join_pressure\n");
  return 0;
}
