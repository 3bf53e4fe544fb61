/*
 * app.c - the parent project's own program: it uses hmb through hmb::hmb.
 *
 * In a Debug build of the parent it must be compiled without optimisation:
 * if hmb had overridden the parent's build type or flags, this fails to
 * compile. Prints "parent OK: hmb <version>".
 */
#include <stdio.h>
#include <string.h>

#include <hmb.h>

#if defined(PARENT_EXPECT_NO_OPTIMIZE) && defined(__OPTIMIZE__)
#error "the parent's Debug build was compiled with optimisation"
#endif

int main(void) {
  if (hmb_version() != HMB_VERSION_NUMBER ||
      strcmp(hmb_version_string(), HMB_VERSION_STRING) != 0) {
    fprintf(stderr, "parent: headers %s, library %s\n", HMB_VERSION_STRING,
            hmb_version_string());
    return 1;
  }
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = 1 << 20;
  hmb_pool_t *pool = NULL;
  int rc = hmb_pool_create(&cfg, &pool);
  if (rc) {
    fprintf(stderr, "parent: hmb_pool_create: %s\n", hmb_strerror(rc));
    return 1;
  }
  if (hmb_pool_destroy(pool) != 0)
    return 1;
  printf("parent OK: hmb %s\n", hmb_version_string());
  return 0;
}
