/*
 * runner.h (core) - the runner object: an account in the ledger, an
 * allocator, and the usage counters of its buffers.
 *
 * Writers: runner.c owns `shards_open`, `xrefs` and the usage fields of
 * the account's shards and of the shared shard (owner, allocs; the live
 * gauges and `live_top` through platform/shard.h, its only writer); the
 * ledger owns the budget fields and each shard's word (spare, buffer
 * count, flags: core/ledger_state.h), which runner.c asks it to count
 * and uncount (a destroy's drain seals it), and the registry links of
 * the account. The thread that owns
 * a shard (platform/shard.h, claimed at its first allocation) counts its
 * buffers' live bytes and allocations there with plain stores, and so do
 * its closes of those buffers; any other thread counts them in the shared
 * shard with RMWs.
 *
 * Lifetime. The handle and every live root buffer keep the runner alive.
 * Each shard's word counts the root buffers allocated on it; a buffer's
 * last close decrements the shard it was counted in, as its very last
 * access to the runner (with the credit of its bytes, in one CAS, when
 * nothing else is due). Destroy seals every shard, under the budget lock
 * with the drain that stops it (one CAS per shard): a shard found empty
 * when sealed, or emptied after, is released once, and so is the handle;
 * the last release of the HMB__SHARDS + 1 closes the account (it leaves
 * the registry) and frees the runner; a destroy that finds every shard
 * empty and no other reference closes it in its own hold of the budget
 * lock (hmb__ledger_destroy()), before that last release. A buffer
 * allocated while its shard's count is full (HMB__SB_BUFS_MAX) holds a
 * reference of its own instead (HMB__BUF_XREF, counted in `xrefs`),
 * released by its last close. Allocation therefore writes only its own
 * shard's line, never a count shared by all threads.
 */
#ifndef HMB_SRC_CORE_RUNNER_H
#define HMB_SRC_CORE_RUNNER_H

#include <pthread.h>

#include "core/ledger.h"
#include "core/log.h"
#include "memory/memory.h"
#include "platform/shard.h"

/*
 * What a pool gives its runners: the budget ledger (whose open accounts are
 * the registry of runners not yet freed: hmb__ledger_walk(), under the
 * budget lock), the memory, the log and the idle-wait state. A pool *is* a
 * home: struct hmb_pool starts with one (core/pool.h), so a runner finds it
 * from its pool pointer without calling up into pool.c. runner.c writes the
 * idle fields and the usage gauge.
 */
typedef struct hmb__home {
  hmb__ledger_t ledger;
  hmb__memory_t *mem;
  hmb__logger_t log;
  pthread_mutex_t idle_mu; /* hmb_runner_wait_idle() */
  pthread_cond_t idle_cond;
  _Atomic int idle_waiters;
  _Alignas(64) hmb__gauge_top_t usage; /* live bytes of all its runners */
} hmb__home_t;

static inline hmb__home_t *hmb__home_of(hmb_pool_t *pool) {
  return (hmb__home_t *)(void *)pool; /* its first member */
}

/* The idle state of a home (runner.c). 0 or HMB_ENOMEM. */
int hmb__home_init(hmb__home_t *h);
void hmb__home_fini(hmb__home_t *h);

struct hmb_runner {
  hmb__acct_t acct;       /* first: its shards start the object's lines */
  hmb_allocator_t vtable; /* the vtable's ctx is the runner */
  hmb__home_t *home;      /* its pool's */
  hmb__ledger_t *ledger;
  hmb__memory_t *mem;
  hmb__gauge_top_t *pool_top; /* the pool's usage gauge (outer top) */
  _Alignas(64) hmb__gauge_top_t live_top; /* this runner's live bytes */
  /* The shared shard of the usage counters (platform/shard.h): what
   * threads that do not own the shard of their index count, with RMWs. */
  _Alignas(64) hmb__gauge_shard_t live_shared;
  _Atomic uint64_t allocs_shared;
  /* Shards not yet released, + 1 for the handle, + the buffers counted by
   * a reference of their own (`xrefs` of them: HMB__BUF_XREF). */
  _Atomic int64_t shards_open;
  _Atomic int64_t xrefs;
  void *raw; /* the block the object lies in (runner.c) */
};

/* The runner of an account of the registry (the account is its first
 * member). */
static inline hmb_runner_t *hmb__runner_of(hmb__acct_t *a) {
  return (hmb_runner_t *)(void *)a;
}

/*
 * hmb_runner_create() from a configuration already in this release's
 * layout, then, in the same hold of the budget lock, a start
 * of `start` bytes when admission grants it at once (*started = 1: RUNNING,
 * booked as hmb_runner_start() books it). Otherwise (*started = 0) the
 * runner is CREATED and nothing else changed. For the executor.
 */
int hmb__runner_create_started(hmb_pool_t *pool, const hmb_runner_config_t *cfg,
                               size_t start, hmb_runner_t **out, int *started);
/*
 * hmb_runner_finish(r, status, NULL), then hmb_runner_destroy(r), with one
 * hold of the budget lock. Returns what finish returns (destroy happens
 * either way). For the executor.
 */
int hmb__runner_finish_destroy(hmb_runner_t *r, int status);

/*
 * The pointer API. runner.c defines hmb_ptr_alloc() and hmb_ptr_free(), so
 * that a runner's quick paths are inline in them (one call, one frame);
 * what is not a runner's common case goes to allocator.c:
 * hmb__ptr_alloc_any() for any allocator, as hmb_ptr_alloc();
 * hmb__ptr_free_any() for any non-NULL pointer, as hmb_ptr_free().
 */
int hmb__ptr_alloc_any(const hmb_allocator_t *alloc, size_t bytes,
                       size_t alignment, unsigned flags, void **out);
int hmb__ptr_free_any(void *ptr);

/* The allocate_aligned entries of a runner's allocator and of the bound
 * allocator: allocator.c tells those allocators apart by them. */
int hmb__runner_allocate_aligned(void *ctx, size_t bytes, size_t align,
                                 unsigned flags, hmb_buffer_t **out);
int hmb__bound_allocate_aligned(void *ctx, size_t bytes, size_t align,
                                unsigned flags, hmb_buffer_t **out);

/* The runner bound to the calling thread (hmb_runner_bind(); runner.c is
 * its only writer), for reading without a call. */
extern _Thread_local hmb_runner_t *hmb__bound
    __attribute__((tls_model("initial-exec")));

/* Exact usage figures, adding the shards up (relaxed reads). */
int64_t hmb__runner_live(const hmb_runner_t *r);
int64_t hmb__runner_buffers(const hmb_runner_t *r);
uint64_t hmb__runner_allocations(const hmb_runner_t *r);
int64_t hmb__runner_peak_live(const hmb_runner_t *r);

#endif /* HMB_SRC_CORE_RUNNER_H */
