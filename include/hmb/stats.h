/*
 * hmb/stats.h - snapshots of pool, memory and runner counters.
 *
 * Snapshots are plain structs filled by hmb_pool_stats(),
 * hmb_pool_memory_stats() and hmb_runner_stats(). Budget fields of the pool
 * are read under the pool lock and are mutually consistent; atomic counters
 * (live bytes, per-runner fields) are each exact but may be a few
 * nanoseconds apart from one another under concurrent use. Peaks are exact:
 * they are maintained by compare-and-swap at every change, never estimated.
 *
 * Fields are only ever appended; callers must not depend on the struct size.
 */
#ifndef HMB_STATS_H
#define HMB_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Budget state of a pool. All byte counts are bytes of budget. */
typedef struct hmb_pool_stats {
  int64_t limit;              /* configured limit */
  int64_t available;          /* limit - held; negative while over-committed */
  int64_t held;               /* budget held by runners now */
  int64_t peak_held;          /* highest `held` ever */
  int64_t overcommitted;      /* max(0, held - limit) now */
  int64_t peak_overcommitted; /* highest `overcommitted` ever */
  int64_t live_bytes;         /* bytes of live runner buffers now */
  int64_t peak_live_bytes;    /* highest `live_bytes` ever */
  int64_t live_buffers;       /* live runner buffers (roots, not slices) */
  int32_t runners;            /* runner handles or detached runners alive */
  int32_t running;            /* runners in the RUNNING state */
  int32_t acquire_waiters;    /* runners waiting in hmb_runner_start() */
  int32_t borrow_waiters;     /* running runners waiting to borrow */
  uint64_t acquires;          /* start requests granted */
  uint64_t acquire_timeouts;  /* start requests that timed out */
  uint64_t acquire_cancels;   /* start requests cancelled while waiting */
  uint64_t acquire_overcommits; /* starts granted beyond the limit */
  uint64_t borrows;             /* borrow requests granted */
  uint64_t borrow_waits;        /* borrow requests that had to wait */
  uint64_t borrow_overcommits;  /* borrows granted by the all-waiting rule */
  uint64_t borrow_timeouts;     /* borrow requests that timed out */
  uint64_t borrow_cancels;      /* borrow requests cancelled while waiting */
  uint64_t overcommitted_total; /* bytes granted beyond the limit, summed */
  uint64_t released_early;      /* bytes returned by try-free / set-need */
} hmb_pool_stats_t;

/* Physical memory of a pool (or of the default allocator). */
typedef struct hmb_memory_stats {
  int64_t pageable_live;     /* bytes of live pageable blocks */
  int64_t pageable_peak;     /* highest pageable_live */
  int64_t pinned_live;       /* bytes of live blocks in the pinned region */
  int64_t pinned_peak;       /* highest pinned_live */
  int64_t pinned_capacity;   /* size of the pinned region (0 if none) */
  int64_t cached_bytes;      /* freed pageable bytes kept warm for reuse */
  int64_t cache_cap;         /* configured cap of the warm cache */
  uint64_t cache_hits;       /* allocations served from the warm cache */
  uint64_t cache_misses;     /* cacheable allocations that went to the OS */
  uint64_t pinned_fallbacks; /* HMB_ALLOC_PINNED requests served pageable */
  /* Why pinned memory is not available ("" when it is); static storage. */
  const char *pinned_reason;
  /*
   * Bytes the live pageable blocks really occupy: pageable_live plus the
   * warm cache's size-class rounding (below 1/8 of each cached-class block).
   * Physical pageable memory of the pool = pageable_physical + cached_bytes.
   */
  int64_t pageable_physical;
  uint64_t pinned_full_fallbacks; /* fallbacks because the region was full */
  uint64_t cache_rejects;   /* freed blocks sent to the OS: cache at its cap */
  uint64_t cache_trimmed;   /* bytes given back to the OS by trims */
  uint64_t pinned_setup_ns; /* time taken to create the pinned region */
} hmb_memory_stats_t;

/* Runner states (see hmb/runner.h for the transitions). */
typedef enum hmb_runner_state {
  HMB_RUNNER_CREATED = 0,   /* created, holds no budget */
  HMB_RUNNER_WAITING = 1,   /* in hmb_runner_start(), waiting for budget */
  HMB_RUNNER_RUNNING = 2,   /* holds its budget; may allocate and borrow */
  HMB_RUNNER_COMPLETED = 3, /* finished with status 0 */
  HMB_RUNNER_FAILED = 4,    /* finished with a nonzero status */
  HMB_RUNNER_CANCELLED = 5, /* cancelled */
  HMB_RUNNER_CLOSED = 6     /* handle destroyed; buffers may still be live */
} hmb_runner_state_t;

/* One runner's budget and usage. */
typedef struct hmb_runner_stats {
  int32_t state;              /* an hmb_runner_state_t */
  int32_t priority;           /* start priority from the configuration */
  uint64_t id;                /* unique per pool, in creation order */
  int64_t estimate;           /* budget asked for at start */
  int64_t real_need;          /* last value declared by set-need, or -1 */
  int64_t held;               /* budget held now */
  int64_t peak_held;          /* highest `held` ever */
  int64_t live;               /* bytes of live buffers now */
  int64_t peak_live;          /* highest `live` ever */
  int64_t live_buffers;       /* live buffers (roots) */
  int64_t borrowed;           /* bytes borrowed beyond held, summed */
  uint64_t borrows;           /* borrow requests granted */
  uint64_t allocations;       /* successful allocations */
  int64_t returned_early;     /* bytes returned by try-free / set-need */
  int64_t returned_at_finish; /* over-claim returned by finish */
  uint64_t wait_ns; /* time spent waiting for budget (start + borrow) */
} hmb_runner_stats_t;

#ifdef __cplusplus
}
#endif

#endif /* HMB_STATS_H */
