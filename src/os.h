/*
 * os.h - the few platform services the library needs (POSIX here): aligned
 * pageable memory, a monotonic clock, and condition-variable deadlines.
 * Everything platform-specific outside CUDA lives behind these functions.
 */
#ifndef HMB_SRC_OS_H
#define HMB_SRC_OS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Aligned pageable block (align: power of two >= sizeof(void *)). NULL on
 * failure. */
void *hmb__os_alloc(size_t size, size_t align);
void hmb__os_free(void *ptr, size_t size);

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
