/*
 * log.c - diagnostics sink (see log.h).
 *
 * The process-wide sink by default prints errors to stderr and drops the
 * rest. Messages are formatted into a stack buffer (one line, truncated at
 * 512 bytes, control characters replaced) only if they pass the level
 * filter.
 */
#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "platform/os.h"

/*
 * The process-wide sink. The function and its user pointer change together
 * under `mu` (installation is rare; a message copies both under it, then
 * calls the sink outside it). The level is also kept atomically so that the
 * filter, which runs for every candidate message, takes no lock.
 */
typedef struct hmb__global_log {
  pthread_mutex_t mu;
  hmb_log_fn fn;
  void *user;
  _Atomic int level; /* 0 reads as HMB_LOG_ERROR */
} hmb__global_log_t;

static hmb__global_log_t hmb__glog = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL, 0};

/* Fork (hmb__os_fork_guard()): the child finds the sink's lock free. */
__attribute__((constructor)) static void hmb__glog_fork_guard(void) {
  (void)hmb__os_fork_guard(&hmb__glog.mu);
}

void hmb_set_log(hmb_log_fn fn, void *user, int max_level) {
  if (fn && max_level <= 0)
    max_level = HMB_LOG_WARN;
  pthread_mutex_lock(&hmb__glog.mu);
  hmb__glog.fn = fn;
  hmb__glog.user = user;
  atomic_store_explicit(&hmb__glog.level, fn ? max_level : HMB_LOG_ERROR,
                        memory_order_relaxed); /* read under mu or as a hint */
  pthread_mutex_unlock(&hmb__glog.mu);
}

int hmb__log_enabled(const hmb__logger_t *lg, int level) {
  if (lg && lg->fn)
    return level <= lg->level;
  int max = atomic_load_explicit(&hmb__glog.level, memory_order_relaxed);
  return level <= (max > 0 ? max : HMB_LOG_ERROR);
}

static void hmb__log_stderr(void *user, int level, const char *msg) {
  static const char *const names[] = {"log", "error", "warn", "info", "debug"};
  (void)user;
  fprintf(stderr, "hmb %s: %s\n",
          (level >= HMB_LOG_ERROR && level <= HMB_LOG_DEBUG) ? names[level]
                                                             : "log",
          msg);
}

void hmb__log(const hmb__logger_t *lg, int level, const char *fmt, ...) {
  if (!hmb__log_enabled(lg, level))
    return;
  hmb_log_fn fn;
  void *user;
  if (lg && lg->fn) {
    fn = lg->fn;
    user = lg->user;
  } else {
    /* The level is checked again with the sink it belongs to: a sink
     * installed meanwhile never sees a message above its own level. */
    pthread_mutex_lock(&hmb__glog.mu);
    fn = hmb__glog.fn;
    user = hmb__glog.user;
    int max = atomic_load_explicit(&hmb__glog.level, memory_order_relaxed);
    pthread_mutex_unlock(&hmb__glog.mu);
    if (level > (max > 0 ? max : HMB_LOG_ERROR))
      return;
    if (!fn)
      fn = hmb__log_stderr;
  }
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *c = msg; *c; c++) /* one line, whatever the arguments held */
    if ((unsigned char)*c < 0x20 || *c == 0x7f)
      *c = '?';
  fn(user, level, msg);
}

void hmb__text_clean(char *dst, size_t len, const char *src) {
  if (!len)
    return;
  size_t i = 0;
  for (; src && src[i] && i + 1 < len; i++) {
    unsigned char c = (unsigned char)src[i];
    dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
  }
  dst[i] = '\0';
}
