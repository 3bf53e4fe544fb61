/*
 * os.h - the few platform services the library needs (POSIX here): whole-
 * page mappings (with transparent huge pages where the kernel offers them),
 * parallel pre-touch, a small per-thread index, thread-exit hooks, a
 * monotonic clock, and condition-variable deadlines. Everything platform-
 * specific outside CUDA lives behind these functions; this layer includes
 * nothing from the memory layer or the budget core.
 */
#ifndef HMB_SRC_OS_H
#define HMB_SRC_OS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Size of a transparent huge page on the platforms we know (x86_64,
 * aarch64 with 4 KiB base pages). */
#define HMB__OS_HUGE_PAGE ((size_t)2 << 20)

/* The OS page size in bytes (a power of two); cached after the first call. */
size_t hmb__os_page_size(void);
/* `v` rounded up to a multiple of `to` (a power of two). */
static inline size_t hmb__os_round_up(size_t v, size_t to) {
  return (v + to - 1) & ~(to - 1);
}

/*
 * Map `size` bytes (rounded up to whole pages) of anonymous read-write
 * memory aligned to `align` (a power of two; at least the page size is
 * always given). NULL on failure. hmb__os_unmap() takes the same size.
 * Thread-safe; the pages are not touched.
 */
void *hmb__os_map(size_t size, size_t align);
void hmb__os_unmap(void *ptr, size_t size);

/*
 * Map `size` bytes for a large block: like hmb__os_map() with the base on a
 * huge-page boundary, and advised for transparent huge pages (madvise
 * MADV_HUGEPAGE) when `huge` is set and size >= HMB__OS_HUGE_PAGE. The
 * length is not rounded beyond a base page, so the kernel backs the last
 * partial huge page with base pages. *advised (may be NULL) tells whether
 * the advice was accepted (0 where the kernel has no THP, or THP is
 * "never"). NULL on failure.
 */
void *hmb__os_map_large(size_t size, int huge, int *advised);

/*
 * Grow or shrink a mapping made by hmb__os_map_large() to `new_size`,
 * keeping its contents (Linux mremap, possibly moving it). NULL when the
 * platform cannot (the caller then copies) or the kernel refuses; the old
 * mapping is then untouched.
 */
void *hmb__os_remap(void *ptr, size_t old_size, size_t new_size);

/*
 * A small number for the calling thread, fixed for its life: lets
 * per-thread shards of a counter sit on different cache lines without any
 * registration. Assigned at first use: the smallest number an exited
 * thread gave back, else the next new one (0, 1, 2, ...), so the numbers
 * in use stay as few as the threads alive. A thread gives its number back
 * when it exits (a key destructor), and keeps HMB__OS_TINDEX_EXITED - 1
 * for whatever it still does afterwards in its exit sequence. The hand-over
 * goes through a mutex: everything the exited thread did happens before
 * the next holder of its number gets it (platform/shard.h's owned shards
 * rely on it). Lock-free after the first call, which takes that mutex.
 */
#define HMB__OS_TINDEX_EXITED 0xfffffffeu /* index + 1 after the exit */
extern _Thread_local unsigned hmb__os_tindex
    __attribute__((tls_model("initial-exec")));
unsigned hmb__os_thread_index_slow(void);
static inline unsigned hmb__os_thread_index(void) {
  unsigned i = hmb__os_tindex;
  return i ? i - 1 : hmb__os_thread_index_slow();
}
/* The same without a call: index + 1, or 0 while none is assigned yet. */
static inline unsigned hmb__os_thread_index_plus1(void) {
  return hmb__os_tindex;
}

/*
 * Run `fn(arg)` when the calling thread exits (one registration per
 * thread; a second call replaces `arg`). 0, or nonzero if no key could be
 * made (the caller then cleans up without it).
 */
int hmb__os_at_thread_exit(void (*fn)(void *), void *arg);

/*
 * Fork handlers (pthread_atfork()): `prepare` runs in the thread that calls
 * fork() just before it, `parent` and `child` just after it in the parent
 * and the child. Each module that keeps a process-wide lock registers, from
 * a constructor, a prepare that takes it and handlers that release it, so
 * that the child of a multi-threaded process finds every such lock free and
 * what it guards consistent. 0, or nonzero if they could not be registered.
 */
int hmb__os_on_fork(void (*prepare)(void), void (*parent)(void),
                    void (*child)(void));
/* The common case: a process-wide mutex that the child only needs free.
 * It is held across fork() with the others registered so (at most 8),
 * taken in the order of registration. 0, or nonzero if it could not be
 * registered. Call from a constructor. */
int hmb__os_fork_guard(pthread_mutex_t *mu);

/*
 * Write one byte in every page of [ptr, ptr + size) so that the OS backs
 * the range with physical pages now, using up to `threads` threads (0: one
 * per online CPU, at most 16). Falls back to the calling thread alone if
 * threads cannot be started. Thread-safe for disjoint ranges.
 */
void hmb__os_touch(void *ptr, size_t size, int threads);

/* Number of online CPUs (at least 1). */
int hmb__os_cpus(void);

/* Monotonic time in nanoseconds. */
uint64_t hmb__os_now_ns(void);

/* Initialise a condition variable that waits on the monotonic clock. */
int hmb__os_cond_init(pthread_cond_t *cond);

/*
 * Wait on `cond` until signalled or until the monotonic time `deadline_ns`
 * (UINT64_MAX: no deadline). Returns 0 or ETIMEDOUT (spurious wake-ups may
 * return 0: callers re-check their predicate).
 */
int hmb__os_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu,
                            uint64_t deadline_ns);

/* Deadline for a relative timeout (<0: UINT64_MAX, i.e. none). */
uint64_t hmb__os_deadline(int64_t timeout_ns);

#endif /* HMB_SRC_OS_H */
