/*
 * memory_state.h - the layout of a memory object.
 *
 * Only the memory layer (memory.c, and the inline hot path of memory.h)
 * reads or writes these fields; the layout has a header of its own so that
 * the hot path can be inlined into the core's allocation path without a
 * call (as core/ledger_state.h does for the ledger).
 */
#ifndef HMB_SRC_MEMORY_MEMORY_STATE_H
#define HMB_SRC_MEMORY_MEMORY_STATE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hmb/backend.h"
#include "platform/shard.h"

struct hmb__arena;
struct hmb__cache;

/* Thread shards of a memory object (a power of two), indexed by thread
 * index + 1 modulo HMB__MSHARDS (memory.h): more than a runner's (HMB__SHARDS),
 * since one memory object serves every thread of its pool for the pool's life,
 * and a shard once claimed stays its thread's (platform/shard.h). Thread
 * indices are reused smallest first (os.h), so live threads collide only beyond
 * HMB__MSHARDS of them. The shared shard is index HMB__MSHARD_SHARED. */
#define HMB__MSHARDS 64u
#define HMB__MSHARD_SHARED HMB__MSHARDS

/* One shard of a memory object (platform/shard.h: a thread shard, written
 * only by its owner, or the shared one): the hot fields (live and physical
 * pageable bytes, the owner) on its first line. */
typedef struct hmb__mshard {
  _Alignas(64) hmb__gauge_shard_t live; /* this shard's part of live bytes */
  _Atomic int64_t phys;                 /* physical bytes, summed on read */
  hmb__owner_t owner;                   /* unused in the shared shard */
  hmb__gauge_shard_t pinned;            /* this shard's part of pinned bytes */
} hmb__mshard_t;

struct hmb__memory {
  /* First, so that the hot paths index it without an offset. */
  hmb__mshard_t shard[HMB__MSHARDS + 1]; /* + HMB__MSHARD_SHARED */
  hmb_backend_t custom;                  /* custom.alloc == NULL: built-in */
  size_t align;                          /* default data alignment */
  int huge;                              /* huge-page advice allowed */
  const char *pinned_reason; /* static storage; "" when the region works */
  struct hmb__arena *arena;  /* NULL: no pinned region */
  void *region;
  size_t region_size;
  int region_method;
  int region_owned;  /* 1: made by cuda.h and freed with the object */
  int region_failed; /* 1: a region was asked for and could not be made */
  uint64_t setup_ns;
  size_t pinned_capacity;   /* usable bytes of the region; fixed at creation */
  struct hmb__cache *cache; /* NULL: no warm cache */
  _Alignas(64) hmb__gauge_top_t live_top;
  hmb__gauge_top_t pinned_top;
  _Atomic int64_t huge_live; /* live bytes of advised mappings */
  _Atomic uint64_t fallbacks, full_fallbacks;
};

#endif /* HMB_SRC_MEMORY_MEMORY_STATE_H */
