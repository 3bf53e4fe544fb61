/*
 * storm_support.h - helpers shared by the storm fuzzer (tests/fuzz/storm.c),
 * the physical-bound tests (tests/stress/physical_*.c) and the stress
 * programs (tests/stress/stress_*.c): seeded random numbers, the per-block
 * physical bound, sanitizer detection, time, the seeded failure report.
 *
 * The physical bound. hmb/stats.h says what a pool's pageable memory may
 * occupy beyond the bytes it charges: per live block of size s its prefix P
 * (max(16, alignment)), its size-class rounding (fewer than max(16,
 * (s + P) / 8) bytes) and, for a block of its own mapping, less than one
 * page. Two per-block figures are given here, both checked:
 *   - sts_phys_stated(): that statement, the most the block may occupy;
 *   - sts_phys_bound():  the classes as they are (memory/sizeclass.h:
 *     multiples of 16 up to 128 bytes, then eight classes per power of
 *     two), then the page rounding of the class: at most the stated term.
 */
#ifndef HMB_STORM_SUPPORT_H
#define HMB_STORM_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/* Blocks below this (data + prefix) come from malloc (hmb/allocator.h). */
#define STS_LARGE_MIN ((size_t)256 * 1024)

/* splitmix64 step: a well-mixed 64-bit value from a counter. */
uint64_t sts_mix(uint64_t x);
/* Seed of one stream: a seed, a round and a thread number. */
uint64_t sts_stream(uint64_t seed, uint64_t round, uint64_t thread);
/* xorshift64* step (state must not be 0; sts_stream never gives 0). */
uint64_t sts_next(uint64_t *state);
/* Uniform in [0, n) (0 for n == 0). */
uint64_t sts_below(uint64_t *state, uint64_t n);

/* The prefix of a block whose data is aligned to `align`. */
size_t sts_prefix(size_t align);
/* The base page size. */
size_t sts_page(void);
/* Physical bytes of a block as hmb/stats.h states them (see above). */
size_t sts_phys_stated(size_t size, size_t prefix);
/* Physical bytes of a block, class rounding included (see above). */
size_t sts_phys_bound(size_t size, size_t prefix);

/* 1 when built with AddressSanitizer or ThreadSanitizer. */
int sts_sanitized(void);
/* Whether it runs under AddressSanitizer. */
int sts_asan(void);
/* Whether it runs under valgrind (0 where valgrind.h was not installed). */
int sts_under_valgrind(void);
/* Monotonic clock in ns. */
uint64_t sts_now_ns(void);

/*
 * The stress programs' failure report: "<prog> FAILED (seed N): ", the
 * message, a newline; then abort (so the seed reproduces the run).
 */
void sts_failf(const char *prog, uint64_t seed, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
/* The same for a failed condition at `line` and what was seen. */
void sts_fail_at(const char *prog, uint64_t seed, int line, const char *cond,
                 const char *detail) __attribute__((noreturn));
/* `rc` must be 0 (bit 0 of `allowed`) or an HMB_E* code whose bit -rc is
 * set in `allowed`; else a failure at `line` naming `what` and the code. */
void sts_check_rc(const char *prog, uint64_t seed, int line, int rc,
                  unsigned allowed, const char *what);
/* Fail at this line unless `ok`; `text` is the condition as written (a
 * caller's macro stringifies it itself, before its macros expand). */
#define STS_CHECK(prog, seed, ok, text, detail)                                \
  do {                                                                         \
    if (!(ok))                                                                 \
      sts_fail_at((prog), (seed), __LINE__, (text), (detail));                 \
  } while (0)

#endif /* HMB_STORM_SUPPORT_H */
