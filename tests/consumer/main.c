/*
 * main.c - a small program built against an installed hmb, out of tree.
 *
 * It uses only the public API through <hmb.h>: if a header is missing from
 * the install, a symbol is not exported from the shared library, or the
 * package files point at the wrong place, building or running this fails.
 * It also checks that the library it loaded is the version of the headers
 * it was compiled with, and that a pool asking for pinned memory works on
 * any machine (pinned where CUDA is usable, pageable otherwise, with the
 * reason printed on a line "pinned: ...").
 * Prints "consumer OK: hmb <version>" and exits 0 when every check passes.
 */
#include <stdio.h>
#include <string.h>

#include <hmb.h>

static int failures;
#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "check failed: %s\n", #cond);                            \
      failures++;                                                              \
    }                                                                          \
  } while (0)

/* A pool with a small pinned region: it is created whatever the machine;
 * a pinned request is served pinned or, without CUDA, pageable. */
static void check_pinned(void) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 << 20;
  cfg.pinned_bytes = 1 << 20;
  hmb_pool_t *pool = NULL;
  EXPECT(hmb_pool_create(&cfg, &pool) == 0);
  if (!pool)
    return;
  hmb_runner_config_t rcfg = {0};
  rcfg.estimate = 4096;
  hmb_runner_t *runner = NULL;
  hmb_buffer_t *buf = NULL;
  EXPECT(hmb_runner_create(pool, &rcfg, &runner) == 0);
  EXPECT(hmb_runner_start(runner, HMB_WAIT_FOREVER) == 0);
  EXPECT(hmb_allocate(hmb_runner_allocator(runner), 4096, HMB_ALLOC_PINNED,
                      &buf) == 0);
  hmb_memory_stats_t ms;
  EXPECT(hmb_pool_memory_stats(pool, &ms) == 0);
  if (buf && hmb_buffer_is_pinned(buf)) {
    printf("pinned: yes\n");
  } else {
    EXPECT(ms.pinned_reason != NULL && ms.pinned_reason[0] != '\0');
    printf("pinned: no: %s\n", ms.pinned_reason ? ms.pinned_reason : "?");
  }
  EXPECT(hmb_buffer_close(buf) == 0);
  EXPECT(hmb_runner_finish(runner, 0, NULL) == 0);
  hmb_runner_destroy(runner);
  EXPECT(hmb_pool_destroy(pool) == 0);
}

int main(void) {
  EXPECT(strcmp(hmb_errname(HMB_ETIMEDOUT), "HMB_ETIMEDOUT") == 0);
  EXPECT(strcmp(hmb_strerror(HMB_OK), "success") == 0);
  /* The loaded library is the one these headers describe. */
  EXPECT(hmb_version() == HMB_VERSION_NUMBER);
  EXPECT(strcmp(hmb_version_string(), HMB_VERSION_STRING) == 0);

  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 << 20;
  hmb_pool_t *pool = NULL;
  EXPECT(hmb_pool_create(&cfg, &pool) == 0);
  if (!pool)
    return 1;

  hmb_runner_config_t rcfg = {0};
  rcfg.estimate = 4096;
  hmb_runner_t *runner = NULL;
  EXPECT(hmb_runner_create(pool, &rcfg, &runner) == 0);
  EXPECT(hmb_runner_start(runner, HMB_WAIT_FOREVER) == 0);
  hmb_buffer_t *buf = NULL;
  EXPECT(hmb_allocate(hmb_runner_allocator(runner), 8192, 0, &buf) == 0);
  if (buf)
    memset(hmb_buffer_data(buf), 1, hmb_buffer_size(buf));

  hmb_runner_stats_t rs;
  EXPECT(hmb_runner_stats(runner, &rs) == 0);
  EXPECT(rs.live == 8192 && rs.borrowed == 4096);
  EXPECT(hmb_runner_finish(runner, 0, NULL) == 0);
  EXPECT(hmb_buffer_close(buf) == 0);
  hmb_runner_destroy(runner);

  hmb_pool_stats_t ps;
  EXPECT(hmb_pool_stats(pool, &ps) == 0);
  EXPECT(ps.held == 0 && ps.peak_live_bytes == 8192);
  EXPECT(hmb_pool_destroy(pool) == 0);

  check_pinned();

  if (failures)
    return 1;
  printf("consumer OK: hmb %s (library %s)\n", HMB_VERSION_STRING,
         hmb_version_string());
  return 0;
}
