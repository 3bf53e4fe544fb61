/*
 * main.c - a small program built against an installed hmb, out of tree.
 *
 * It uses only the public API through <hmb.h>: if a header is missing from
 * the install, a symbol is not exported from the shared library, or the
 * package files point at the wrong place, building or running this fails.
 * It also checks that the library it loaded is the version of the headers
 * it was compiled with.
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

  if (failures)
    return 1;
  printf("consumer OK: hmb %s (library %s)\n", HMB_VERSION_STRING,
         hmb_version_string());
  return 0;
}
