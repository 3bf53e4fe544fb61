/*
 * minimal.c - the smallest complete use of hmb.
 *
 * One pool (the budget every scan task shares), one runner (one scan task),
 * one buffer allocated through the runner, a slice of it, and an early
 * return of unused budget with try-free. Every call returns 0 or a negative
 * HMB_E* code; CHECK prints the code's name and message and stops.
 * The program checks the pool's counters at each step and prints
 * "OK: minimal" when they are all as expected.
 */
#include <stdio.h>
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

int main(void) {
  /* 1. The pool: one per process, sized to the host memory scans may use. */
  hmb_pool_config_t pcfg;
  hmb_pool_config_init(&pcfg); /* all zero: defaults everywhere */
  pcfg.limit = 1 << 20;        /* 1 MiB of budget */
  hmb_pool_t *pool;
  CHECK(hmb_pool_create(&pcfg, &pool));

  /* 2. A runner per scan task, created with its estimate (for a file split:
   *    the split length). Start waits until the pool grants the estimate. */
  hmb_runner_config_t rcfg = {0};
  rcfg.estimate = 256 << 10; /* 256 KiB */
  rcfg.name = "split-0";
  hmb_runner_t *runner;
  CHECK(hmb_runner_create(pool, &rcfg, &runner));
  CHECK(hmb_runner_start(runner, HMB_WAIT_FOREVER));

  /* 3. The runner is the task's allocator. A reader would take
   *    hmb_runner_allocator(runner) and call hmb_allocate() through it;
   *    hmb_runner_alloc() is the shorthand. 64 KiB come out of the 256. */
  hmb_buffer_t *buf;
  CHECK(hmb_runner_alloc(runner, 64 << 10, 0, &buf));
  memset(hmb_buffer_data(buf), 'x', hmb_buffer_size(buf));

  /* 4. A slice views part of a buffer and keeps the whole buffer alive:
   *    closing the parent's own reference frees nothing yet. */
  hmb_buffer_t *head;
  CHECK(hmb_buffer_slice(buf, 0, 1024, &head));
  CHECK(hmb_buffer_close(buf));
  EXPECT(((const char *)hmb_buffer_data(head))[1023] == 'x');

  /* 5. The task now knows it needs no more memory: give the unused
   *    192 KiB back to the pool at once, so other tasks can start. */
  size_t returned;
  CHECK(hmb_runner_try_free(runner, HMB_MAX_ALLOC, &returned));
  hmb_pool_stats_t st;
  CHECK(hmb_pool_stats(pool, &st));
  printf("try-free returned %zu bytes; pool holds %lld of %lld, %lld live\n",
         returned, (long long)st.held, (long long)st.limit,
         (long long)st.live_bytes);
  EXPECT(returned == 192 << 10 && st.held == 64 << 10);
  EXPECT(st.live_bytes == 64 << 10);

  /* 6. Finish the task. The slice still pins the 64 KiB buffer; its budget
   *    goes back to the pool exactly when the last reference is closed. */
  CHECK(hmb_runner_finish(runner, 0, NULL));
  CHECK(hmb_buffer_close(head));
  CHECK(hmb_pool_stats(pool, &st));
  EXPECT(st.held == 0 && st.live_bytes == 0);

  hmb_runner_destroy(runner);
  CHECK(hmb_pool_destroy(pool)); /* HMB_EBUSY if anything were still alive */
  printf("OK: minimal\n");
  return 0;
}
