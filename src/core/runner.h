/*
 * runner.h (core) - the runner object: an account in the ledger, an
 * allocator, and the usage counters of its buffers.
 *
 * Writers: runner.c owns `live_top`, `shards_open` and the usage fields of
 * the account's shards (live, bufs, allocs); the ledger owns the budget
 * fields; pool.c owns the registry links.
 *
 * Lifetime. The handle and every live root buffer keep the runner alive.
 * Each shard counts the root buffers allocated on it (2 per buffer, so the
 * low bit can mark the shard sealed); a buffer's last close decrements the
 * shard it was counted in, as its very last access to the runner. Destroy
 * seals every shard: a shard found empty when sealed, or emptied after, is
 * released once, and so is the handle; the last release of the
 * HMB__SHARDS + 1 frees the runner. Allocation therefore writes only its
 * own shard's line, never a count shared by all threads.
 */
#ifndef HMB_SRC_CORE_RUNNER_H
#define HMB_SRC_CORE_RUNNER_H

#include "core/ledger.h"
#include "platform/shard.h"

struct hmb_runner {
  hmb__acct_t acct;       /* first: its shards start the object's lines */
  hmb_allocator_t vtable; /* the vtable's ctx is the runner */
  hmb_pool_t *pool;
  hmb__ledger_t *ledger;
  void *mem;                  /* hmb__memory_t *, the pool's */
  hmb__gauge_top_t *pool_top; /* the pool's usage gauge (outer top) */
  _Alignas(64) hmb__gauge_top_t live_top; /* this runner's live bytes */
  _Atomic int shards_open; /* shards not yet released, + 1 for the handle */
  hmb_runner_t *next, *prev; /* the pool's registry (pool.c writes them) */
};

/* Exact usage figures, adding the shards up (relaxed reads). */
int64_t hmb__runner_live(const hmb_runner_t *r);
int64_t hmb__runner_buffers(const hmb_runner_t *r);
uint64_t hmb__runner_allocations(const hmb_runner_t *r);
int64_t hmb__runner_peak_live(const hmb_runner_t *r);

#endif /* HMB_SRC_CORE_RUNNER_H */
