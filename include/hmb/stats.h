/**
 * @file hmb/stats.h
 * @brief Snapshots of pool, memory and runner counters, and what each
 *        figure guarantees.
 *
 * Snapshots are plain structs filled by hmb_pool_stats(),
 * hmb_pool_memory_stats(), hmb_runner_stats() and
 * hmb_default_memory_stats(). Those are macros that pass the struct size the
 * caller was compiled with, so fields are only ever appended and an older
 * binary never has bytes written past its struct. (Struct tags that would
 * share a name with the function filling them end in _s, so C++ can use
 * both.)
 *
 * @par Exactness
 * The allocation path writes no cache line shared between threads: each
 * runner keeps its counters in a few per-thread shards, and the memory layer
 * does the same. A thread shard is written only by the thread that owns it
 * (the first of its index to allocate there, with plain stores); a thread
 * whose index collides with a live owner's, or that closes a buffer
 * allocated by another thread, counts in the object's one shared shard
 * instead. A snapshot adds all the shards up. Hence:
 *   - **Budget figures** of the pool (`limit`, `held`, `available`,
 *     `overcommitted`, `beyond_*`, waiters, `running`, event counters,
 *     `peak_held`, `peak_overcommitted`) are read together under the budget
 *     lock: exact and mutually consistent at every instant.
 *   - **Current usage figures** (`live_bytes`, `live_buffers` of pools and
 *     runners; `pageable_live`, `pageable_physical`, `pinned_live` of the
 *     memory layer; `allocations`) are exact whenever no allocation or
 *     close is in flight; while some run, each is off by at most the bytes
 *     (or buffers) of the operations that run while the snapshot is taken
 *     (a snapshot adds up the shards one after another).
 *   - **Usage peaks** (`peak_live_bytes`, runner `peak_live`,
 *     `pageable_peak`, `pinned_peak`) are exact when one thread does all the
 *     allocating and closing: of the runner, for its `peak_live`; of the
 *     whole pool, for `pageable_peak` and `pinned_peak`, and for
 *     `peak_live_bytes` when, besides, its runners take turns: each one
 *     destroyed, its buffers closed, before the next allocates (that is
 *     when a runner's last changes are folded). Otherwise (several
 *     threads, also taking turns, or several runners of one thread) each
 *     shard (a thread's part of a runner or memory object) folds its
 *     changes into the shared peak only when they could set a new peak, as
 *     the shared figures stood at its last fold, or have drifted by
 *     #HMB_STATS_PEAK_STEP, so a recorded peak is within
 *     (S - 1) x #HMB_STATS_PEAK_STEP of the true one, S being the shards
 *     with changes not yet folded (at most one per thread and runner, plus
 *     each object's shared shard). Live
 * bytes never exceed held budget, so a runner's or pool's peak live is also
 * reported no higher than its peak held.
 *   - **Cumulative counters** (uint64_t): the pool's event counters
 *     (hmb_pool_stats_t) and a runner's budget counters saturate at
 *     UINT64_MAX instead of wrapping; the counts of events and allocations
 *     of the memory layer and of a runner's allocations are plain 64-bit
 *     sums, which a program would need centuries at a billion events a
 *     second to wrap.
 * All of them are exact once no allocation is in flight, peaks excepted as
 * just said.
 *
 * @par The physical bound (built-in backends)
 * Every live block occupies more than its requested size s: its prefix P
 * (max(16, alignment), hmb/allocator.h) and its size-class rounding (blocks
 * are kept and reused by class: fewer than max(16, (s + P) / 8) bytes; at
 * most 16 for s = 0, whose block has one byte of room after P), plus,
 * for a block of 256 KiB or more (its own mapping), less than one page. Call
 * R the sum of these extras over the live blocks: `pageable_physical -
 * pageable_live` reports it exactly, and
 *   R < (B x P + live bytes) / 8 + B x (P + 16) + (mapped blocks) x page,
 * with B the live blocks. The warm cache keeps whole blocks, C bytes, only
 * in budget nobody holds: C <= max(0, limit - held) after every put, and a
 * grant that shrinks that room has the cache give blocks back before its
 * budget is used. Since live bytes <= held <= limit + over-commit
 * (hmb/pool.h, I3):
 *   pageable memory the pool holds (live blocks + cached blocks)
 *     = pageable_physical + cached_bytes <= max(limit, held) + R,
 *   i.e. at most the limit, plus the counted over-commit, plus R.
 * With huge pages a mapping starts on a 2 MiB boundary but is not
 * lengthened, so the kernel backs its last partial 2 MiB with base pages and
 * the bound holds as is. Outside it: malloc's own chunk headers (8 to 24
 * bytes a small block) and free lists, the thread cache's small blocks
 * (at most 512 KiB a thread, freed blocks below 128 KiB kept for reuse by
 * the thread that freed them), and the depot that passes such blocks from
 * a thread whose cache is full to one whose cache is empty (at most 2 MiB
 * in the whole process, shared by every pool).
 */
#ifndef HMB_STATS_H
#define HMB_STATS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Drift after which a thread folds its usage changes into shared peaks. */
#define HMB_STATS_PEAK_STEP ((int64_t)1024 * 1024)
/** Most shards of one runner (S above is at most this, and at most the
 *  threads using the runner, plus one): a runner's recorded `peak_live` is
 *  within (HMB_STATS_SHARDS - 1) x #HMB_STATS_PEAK_STEP of the true one. */
#define HMB_STATS_SHARDS 5
/** Most shards of a pool's memory layer (S above is at most this, and at
 *  most the threads that allocate from the pool, plus one):
 *  `pageable_peak` and `pinned_peak` are within (S - 1) x
 *  #HMB_STATS_PEAK_STEP of the true ones. A memory layer serves every
 *  thread of its pool for the pool's life, so it has a shard for each of
 *  up to HMB_STATS_MEMORY_SHARDS - 1 live threads (thread indices are
 *  reused once a thread exits). */
#define HMB_STATS_MEMORY_SHARDS 65

/** Budget state of a pool. All byte counts are bytes of budget. */
typedef struct hmb_pool_stats_s {
  int64_t limit;         /**< current limit */
  int64_t available;     /**< limit - held; negative while over-committed */
  int64_t held;          /**< budget held by runners now */
  int64_t peak_held;     /**< highest `held` ever */
  int64_t overcommitted; /**< max(0, held - limit) now */
  int64_t peak_overcommitted;   /**< highest `overcommitted` ever */
  int64_t live_bytes;           /**< bytes of live runner buffers now */
  int64_t peak_live_bytes;      /**< highest `live_bytes` (see Exactness) */
  int64_t live_buffers;         /**< live runner buffers (roots, not slices) */
  int32_t runners;              /**< runner handles or detached runners alive */
  int32_t running;              /**< runners in the RUNNING state */
  int32_t acquire_waiters;      /**< runners waiting in a start */
  int32_t borrow_waiters;       /**< runners waiting to borrow or grow */
  uint64_t acquires;            /**< starts granted */
  uint64_t acquire_timeouts;    /**< starts that timed out */
  uint64_t acquire_cancels;     /**< starts cancelled while waiting */
  uint64_t acquire_overcommits; /**< starts granted by R3 (idle progress) */
  uint64_t borrows;             /**< borrows granted (and kept) */
  uint64_t borrow_waits;        /**< borrows that had to wait */
  uint64_t borrow_overcommits;  /**< borrows granted beyond the limit */
  uint64_t borrow_timeouts;     /**< borrows and grows that timed out */
  uint64_t borrow_cancels;      /**< borrows and grows cancelled waiting */
  uint64_t overcommitted_total; /**< bytes granted beyond the limit, summed */
  uint64_t released_early;      /**< bytes returned by try-free / set-need */
  /* ---- appended in 0.2 ---- */
  uint64_t progress_runner; /**< id of the progress runner; 0 if none */
  int64_t beyond_running;   /**< `beyond` of the progress runner */
  int64_t beyond_stopped;   /**< `beyond` still held by stopped runners */
  int64_t overcommit_cap;   /**< the cap (hmb/pool.h, I5), or -1 if none */
  uint64_t limit_rejects;   /**< requests failed with HMB_ELIMIT */
  uint64_t progress_grants; /**< times a runner became the progress runner */
  uint64_t grows;           /**< grows granted (fully or partly) */
  uint64_t pressure_calls;  /**< pressure handler rounds run */
  uint64_t limit_changes;   /**< hmb_pool_set_limit() calls */
} hmb_pool_stats_t;

/** Physical memory of a pool (or of the default allocator). */
typedef struct hmb_memory_stats {
  int64_t pageable_live;     /**< requested bytes of live pageable blocks */
  int64_t pageable_peak;     /**< highest pageable_live (see Exactness) */
  int64_t pinned_live;       /**< bytes of live blocks in the pinned region */
  int64_t pinned_peak;       /**< highest pinned_live */
  int64_t pinned_capacity;   /**< size of the pinned region (0 if none) */
  int64_t cached_bytes;      /**< freed pageable bytes kept warm for reuse */
  int64_t cache_cap;         /**< what the cache may keep now: the budget
                                  nobody holds, capped by cache_bytes */
  uint64_t cache_hits;       /**< allocations served from the warm cache */
  uint64_t cache_misses;     /**< cacheable allocations that went to the OS */
  uint64_t pinned_fallbacks; /**< #HMB_ALLOC_PINNED requests served pageable */
  /** Why pinned memory is not available ("" when it is); static storage. */
  const char *pinned_reason;
  /**
   * What the live pageable blocks really occupy: requested bytes plus each
   * block's prefix and its page rounding (hmb/allocator.h).
   */
  int64_t pageable_physical;
  uint64_t pinned_full_fallbacks; /**< fallbacks: the region was full */
  uint64_t cache_rejects;         /**< freed blocks sent to the OS: no room */
  uint64_t cache_trimmed;         /**< bytes given back by trims and grants */
  uint64_t pinned_setup_ns;       /**< time taken to create the pinned region */
  /* ---- appended in 0.2 ---- */
  int64_t huge_bytes; /**< live or cached bytes in mappings advised for
                           transparent huge pages */
  /**
   * The CUDA runtime in use ("libcudart.so.13"), or why none is; "" while
   * the pool has never needed one (a build with HMB_WITH_CUDA=OFF says so
   * from the start); static storage.
   */
  const char *cuda_runtime;
} hmb_memory_stats_t;

/** Runner states (see hmb/runner.h for the transitions). */
typedef enum hmb_runner_state {
  HMB_RUNNER_CREATED = 0,   /**< created, holds no budget */
  HMB_RUNNER_WAITING = 1,   /**< in a start, waiting for budget */
  HMB_RUNNER_RUNNING = 2,   /**< holds budget; may allocate and borrow */
  HMB_RUNNER_COMPLETED = 3, /**< finished with status 0 */
  HMB_RUNNER_FAILED = 4,    /**< finished with a nonzero status */
  HMB_RUNNER_CANCELLED = 5, /**< cancelled (finished or not) */
  HMB_RUNNER_CLOSED = 6     /**< handle destroyed; buffers may still be live */
} hmb_runner_state_t;

/** One runner's budget and usage. */
typedef struct hmb_runner_stats_s {
  int32_t state;              /**< an hmb_runner_state_t */
  int32_t priority;           /**< start priority from the configuration */
  uint64_t id;                /**< unique per pool, in creation order */
  int64_t estimate;           /**< budget asked for by start */
  int64_t real_need;          /**< last value declared by set-need, or -1 */
  int64_t held;               /**< budget held now */
  int64_t peak_held;          /**< highest `held` ever */
  int64_t live;               /**< bytes of live buffers now */
  int64_t peak_live;          /**< highest `live` (see Exactness) */
  int64_t live_buffers;       /**< live buffers (roots) */
  uint64_t borrowed;          /**< bytes borrowed beyond held, summed */
  uint64_t borrows;           /**< borrows granted (and kept) */
  uint64_t allocations;       /**< successful allocations */
  uint64_t returned_early;    /**< bytes returned by try-free / set-need */
  int64_t returned_at_finish; /**< spare returned by finish */
  /** Time spent in waits for budget that ended in a grant it kept. */
  uint64_t wait_ns;
  /* ---- appended in 0.2 ---- */
  int64_t spare;           /**< held budget backing no live buffer */
  int64_t beyond;          /**< part of held granted beyond the limit */
  int32_t progress;        /**< 1 while this is the pool's progress runner */
  int32_t reserved0;       /**< zero */
  uint64_t failed_wait_ns; /**< time spent in waits that ended in an error */
} hmb_runner_stats_t;

#ifdef __cplusplus
}
#endif

#endif /* HMB_STATS_H */
