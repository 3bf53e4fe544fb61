/*
 * storm_support.c - see storm_support.h.
 */
#define _POSIX_C_SOURCE 200809L
#include "storm_support.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "hmb.h"

uint64_t sts_mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t sts_stream(uint64_t seed, uint64_t round, uint64_t thread) {
  uint64_t s = sts_mix(sts_mix(sts_mix(seed) ^ round) ^ (thread + 1));
  return s ? s : 0x2545F4914F6CDD1Dull;
}

uint64_t sts_next(uint64_t *s) {
  uint64_t x = *s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

uint64_t sts_below(uint64_t *s, uint64_t n) {
  return n ? sts_next(s) % n : 0;
}

size_t sts_prefix(size_t align) {
  return align > 16 ? align : 16;
}

size_t sts_page(void) {
  static _Atomic size_t page; /* any thread may be the first */
  size_t p = atomic_load_explicit(&page, memory_order_relaxed);
  if (!p) {
    long v = sysconf(_SC_PAGESIZE);
    p = v > 0 ? (size_t)v : 4096;
    atomic_store_explicit(&page, p, memory_order_relaxed);
  }
  return p;
}

static size_t round_up(size_t v, size_t to) {
  return (v + to - 1) / to * to;
}

size_t sts_phys_stated(size_t size, size_t prefix) {
  size_t need = size + prefix;
  size_t rounding = need / 8 > 16 ? need / 8 : 16;
  return need + rounding + (need < STS_LARGE_MIN ? 0 : sts_page());
}

size_t sts_phys_bound(size_t size, size_t prefix) {
  size_t need = size + prefix;
  if (need < STS_LARGE_MIN) /* a zero-byte block gets one byte of room */
    return need + (size == 0) + (need <= 128 ? 15 : need / 8);
  size_t len = round_up(need, sts_page());
  return round_up(len + len / 8, sts_page());
}

/* gcc says so with __SANITIZE_*__, clang with __has_feature(). */
#if defined(__has_feature)
#define STS_HAS_FEATURE(x) __has_feature(x)
#else
#define STS_HAS_FEATURE(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || STS_HAS_FEATURE(address_sanitizer)
#define STS_ASAN 1
#else
#define STS_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__) || STS_HAS_FEATURE(thread_sanitizer)
#define STS_TSAN 1
#else
#define STS_TSAN 0
#endif

int sts_sanitized(void) {
  return STS_ASAN || STS_TSAN;
}

/* valgrind's client request is a no-op sequence when it is not running. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define STS_VALGRIND_H 1
#endif
#endif

int sts_under_valgrind(void) {
#ifdef STS_VALGRIND_H
  return RUNNING_ON_VALGRIND ? 1 : 0;
#else
  return 0;
#endif
}

int sts_asan(void) {
  return STS_ASAN;
}

uint64_t sts_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sts_failf(const char *prog, uint64_t seed, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s FAILED (seed %" PRIu64 "): ", prog, seed);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  fflush(stderr);
  va_end(ap);
  abort();
}

void sts_fail_at(const char *prog, uint64_t seed, int line, const char *cond,
                 const char *detail) {
  sts_failf(prog, seed, "line %d: %s (%s)", line, cond, detail);
}

void sts_check_rc(const char *prog, uint64_t seed, int line, int rc,
                  unsigned allowed, const char *what) {
  if (rc <= 0 && rc >= -31 && (allowed & (1u << -rc)))
    return;
  char d[128];
  snprintf(d, sizeof d, "%s returned %s", what, hmb_errname(rc));
  sts_fail_at(prog, seed, line, "status allowed", d);
}
