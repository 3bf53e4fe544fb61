/*
 * util.h - compiler hints and small atomic helpers shared by every layer.
 *
 * Nothing here calls the OS or knows about budgets; it sits at the bottom
 * of the tree so that the memory layer and the budget core can both use it
 * without including each other.
 */
#ifndef HMB_SRC_PLATFORM_UTIL_H
#define HMB_SRC_PLATFORM_UTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define HMB__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HMB__LIKELY(x) __builtin_expect(!!(x), 1)
#define HMB__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define HMB__PRINTF(f, a)
#define HMB__LIKELY(x) (x)
#define HMB__UNLIKELY(x) (x)
#endif

/* 0, as a value the optimizer cannot know: a slow-path helper that always
 * returns 0 returns this, so that its callers' `return helper(...)` stays a
 * tail call. Knowing the constant, clang calls the helper as a plain call
 * and returns 0 itself, and that call costs the caller a frame (its
 * callee-saved registers saved and restored on every path, the quick one
 * included). Emits no instruction. */
static inline int hmb__tail_zero(void) {
  int z = 0;
#if defined(__GNUC__)
  __asm__("" : "+r"(z));
#endif
  return z;
}

/* floor(log2(v)), v > 0. */
static inline unsigned hmb__log2_floor(size_t v) {
  return (unsigned)(63 - __builtin_clzll((unsigned long long)v));
}

/* Raise *peak to at least `value` (CAS loop: exact under races). Relaxed:
 * a peak orders nothing; readers only want the highest value written. */
static inline void hmb__peak_update(_Atomic int64_t *peak, int64_t value) {
  int64_t p = atomic_load_explicit(peak, memory_order_relaxed);
  while (value > p &&
         !atomic_compare_exchange_weak_explicit(
             peak, &p, value, memory_order_relaxed, memory_order_relaxed)) {
  }
}

#endif /* HMB_SRC_PLATFORM_UTIL_H */
