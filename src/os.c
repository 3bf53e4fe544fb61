/*
 * os.c - POSIX implementation of os.h: aligned pageable memory, the
 * monotonic clock, and condition variables that wait on it (so that
 * timeouts are immune to wall-clock changes).
 */
#define _POSIX_C_SOURCE 200809L
#include "os.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

void *hmb__os_alloc(size_t size, size_t align) {
  void *p = NULL;
  if (posix_memalign(&p, align, size) != 0)
    return NULL;
  return p;
}

void hmb__os_free(void *ptr, size_t size) {
  (void)size;
  free(ptr);
}

uint64_t hmb__os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hmb__os_cond_init(pthread_cond_t *cond) {
  pthread_condattr_t attr;
  int rc = pthread_condattr_init(&attr);
  if (rc)
    return rc;
  rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (!rc)
    rc = pthread_cond_init(cond, &attr);
  pthread_condattr_destroy(&attr);
  return rc;
}

int hmb__os_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu,
                            uint64_t deadline_ns) {
  if (deadline_ns == UINT64_MAX)
    return pthread_cond_wait(cond, mu);
  struct timespec ts;
  ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
  ts.tv_nsec = (long)(deadline_ns % 1000000000u);
  int rc = pthread_cond_timedwait(cond, mu, &ts);
  return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

uint64_t hmb__os_deadline(int64_t timeout_ns) {
  if (timeout_ns < 0)
    return UINT64_MAX;
  uint64_t now = hmb__os_now_ns();
  uint64_t t = (uint64_t)timeout_ns;
  return (UINT64_MAX - now < t) ? UINT64_MAX - 1 : now + t;
}
