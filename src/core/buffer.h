/*
 * buffer.h (core) - the buffer handle and the one hook to its owner.
 *
 * A handle is 64 bytes, taken from the memory layer's per-thread object
 * cache. A root buffer (allocated memory, or a budget-only reservation)
 * knows its owner through one hook, called exactly once, at its last close:
 * the owner gives the block back to its memory and the bytes back to its
 * budget (a runner), or just the block (the default allocator). A slice
 * knows only the buffer it views.
 *
 * buffer.c writes every field of a handle; owners only read `data`, `size`,
 * `flags` and `shard` inside their hooks (and set them once at creation
 * through hmb__buffer_root()).
 */
#ifndef HMB_SRC_CORE_BUFFER_H
#define HMB_SRC_CORE_BUFFER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hmb/buffer.h"
#include "hmb/errors.h"
#include "memory/block.h"
#include "memory/tcache.h"
#include "platform/util.h"

#define HMB__BUF_MAGIC 0x484d4242u /* "HMBB" */
#define HMB__BUF_DEAD 0xdeadbeefu  /* a handle after its last close */

enum hmb__buf_flags {
  HMB__BUF_PINNED = 1u << 0,
  HMB__BUF_SLICE = 1u << 1,
  HMB__BUF_RESERVATION = 1u << 2, /* budget only: no memory */
  HMB__BUF_PTR = 1u << 3,         /* made by hmb_ptr_alloc() */
  HMB__BUF_XREF = 1u << 4         /* counted by a runner reference, not in
                                     its shard (core/runner.h) */
};

typedef struct hmb__owner_ops {
  /* The root's last reference is gone: free its block (if any) and give
   * its bytes back. Called before the close handler. */
  void (*freed)(void *owner, hmb_buffer_t *b);
  /* Resize the root's block to `bytes`, charging only the difference, and
   * update b->data / b->size. 0 or an HMB_E* code (nothing changed). */
  int (*resize)(void *owner, hmb_buffer_t *b, size_t bytes);
  /* The root's last close by hmb_buffer_close(): `freed`, then
   * hmb__buffer_root_end() (an owner may do both in one pass). Returns 0. */
  int (*closed)(void *owner, hmb_buffer_t *b);
} hmb__owner_ops_t;

struct hmb_buffer {
  _Atomic long refs;
  uint32_t magic;
  uint16_t flags;
  uint16_t shard; /* the owner's shard this root was counted in */
  void *data;
  size_t size;
  union {
    struct {
      void *owner; /* NULL: no owner (never for a root made here) */
      const hmb__owner_ops_t *ops;
    } root;
    hmb_buffer_t *parent; /* a slice: the buffer it views (retained) */
  } u;
  hmb_buffer_handler_t handler;
};

/* Fill a handle `b` just taken from the object cache, with one reference
 * (a root's owner and ops, or NULL for a slice, whose caller sets its
 * parent); not the block's back-pointer slot. */
static inline void hmb__buffer_fill(hmb_buffer_t *b, void *data, size_t size,
                                    unsigned flags, unsigned shard, void *owner,
                                    const hmb__owner_ops_t *ops) {
  atomic_init(&b->refs, 1);
  b->magic = HMB__BUF_MAGIC;
  b->flags = (uint16_t)flags;
  b->shard = (uint16_t)shard;
  b->data = data;
  b->size = size;
  b->u.root.owner = owner;
  b->u.root.ops = ops;
  b->handler.fn = NULL;
  b->handler.user = NULL;
}

/* The same for a root over a block of the memory layer (`data` not NULL),
 * and its back-pointer slot. */
static inline void hmb__buffer_root_init_block(hmb_buffer_t *b, void *data,
                                               size_t size, unsigned flags,
                                               unsigned shard, void *owner,
                                               const hmb__owner_ops_t *ops) {
  hmb__buffer_fill(b, data, size, flags, shard, owner, ops);
  *hmb__block_backptr(data) = b;
}

/* A pair of the thread cache (tcache.h) is a handle kept with its block:
 * the cache's data word is the handle's `data`. */
_Static_assert(offsetof(hmb_buffer_t, data) ==
                   HMB__TC_PAIR_DATA * sizeof(void *),
               "a pair's data word is the handle's data");
_Static_assert(sizeof(hmb_buffer_t) <= HMB__TC_OBJ_SIZE,
               "a handle fits a thread-cache object");

/* Fill a handle taken as a pair (hmb__memory_pair_take()) as a root over
 * the block it was kept with: `data`, the block word and the back-pointer
 * slot are already those of that block (the slot points at `b`). A pair is
 * only made by a close without a handler (hmb__buffer_root_end_pair()). */
static inline void hmb__buffer_root_init_pair(hmb_buffer_t *b, size_t size,
                                              unsigned flags, unsigned shard,
                                              void *owner,
                                              const hmb__owner_ops_t *ops) {
  atomic_init(&b->refs, 1);
  b->magic = HMB__BUF_MAGIC;
  b->flags = (uint16_t)flags;
  b->shard = (uint16_t)shard;
  b->size = size;
  b->u.root.owner = owner;
  b->u.root.ops = ops;
  b->handler.fn = NULL; /* NULL already, unless a closed handle was misused */
  b->handler.user = NULL;
}

/* The same for any root: the back-pointer slot of `data` if there is one
 * (NULL: a reservation). */
static inline void hmb__buffer_root_init(hmb_buffer_t *b, void *data,
                                         size_t size, unsigned flags,
                                         unsigned shard, void *owner,
                                         const hmb__owner_ops_t *ops) {
  if (data)
    hmb__buffer_root_init_block(b, data, size, flags, shard, owner, ops);
  else
    hmb__buffer_fill(b, data, size, flags, shard, owner, ops);
}

/*
 * A new root handle with one reference over `data` (NULL for a reservation)
 * of `size` bytes, owned through `ops`. When `data` comes from the memory
 * layer its back-pointer slot is set, so hmb_ptr_buffer() finds the handle.
 * NULL if no handle could be had. (Inline: it is on the allocation path.)
 */
static inline hmb_buffer_t *hmb__buffer_root(void *data, size_t size,
                                             unsigned flags, unsigned shard,
                                             void *owner,
                                             const hmb__owner_ops_t *ops) {
  hmb_buffer_t *b = hmb__tcache_obj_get();
  if (HMB__UNLIKELY(!b))
    return NULL;
  hmb__buffer_root_init(b, data, size, flags, shard, owner, ops);
  return b;
}

/* The end of a root whose owner's `freed` has run: its close handler (with
 * refs 0 and data NULL), then the handle goes. Returns 0. */
int hmb__buffer_root_end(hmb_buffer_t *b);

/* The same for a root without a handler, when the calling thread's object
 * cache `f` has room (hmb__tcache_obj_room()): no call. */
static inline void hmb__buffer_root_end_quick(hmb__tc_front_t *f,
                                              hmb_buffer_t *b) {
  b->data = NULL;
  b->magic = HMB__BUF_DEAD;
  hmb__tcache_obj_push(f, b);
}

/* The same, the handle kept with its block as a pair in `f` after
 * hmb__tcache_pair_room() (the block's gauges counted by the caller, with
 * hmb__memory_pair_put(), which pushes it): `data` stays, for the next
 * allocation of the class to reuse with the block. */
static inline void hmb__buffer_root_end_pair(hmb_buffer_t *b) {
  b->magic = HMB__BUF_DEAD;
}

/*
 * The common close (hmb_buffer_close()): when `b` is a root and the
 * caller's reference is its only one, drop it and return 1; the caller
 * then calls its owner's `closed` hook. Else 0, nothing changed. No
 * read-modify-write: with one reference, the caller's, no other thread may
 * touch the count (a retain needs a reference of its own). Acquire: pairs
 * with the acq_rel decrement that left the count at 1, so every write made
 * through that reference happens-before the teardown, as the decrement of
 * a shared close does for the last holder.
 */
static inline int hmb__buffer_drop_sole_root(hmb_buffer_t *b) {
  if (HMB__UNLIKELY((b->flags & HMB__BUF_SLICE) != 0 ||
                    atomic_load_explicit(&b->refs, memory_order_acquire) != 1))
    return 0;
  atomic_store_explicit(&b->refs, 0, memory_order_relaxed);
  return 1;
}

/* The handle of a block of hmb_ptr_alloc(), or NULL (not ours, or the
 * data of a handle-API buffer). Inline: hmb_ptr_free()'s path. */
static inline hmb_buffer_t *hmb__ptr_buffer(const void *ptr) {
  if (HMB__UNLIKELY(!ptr || ((uintptr_t)ptr & (HMB__PREFIX_MIN - 1)) != 0))
    return NULL;
  uint64_t w = *hmb__block_word_at((void *)(uintptr_t)ptr);
  if (HMB__UNLIKELY(!hmb__block_valid(w)))
    return NULL;
  hmb_buffer_t *b = *hmb__block_backptr_c(ptr);
  if (HMB__UNLIKELY(!b || ((uintptr_t)b & 63u) != 0 ||
                    b->magic != HMB__BUF_MAGIC || b->data != ptr ||
                    !(b->flags & HMB__BUF_PTR)))
    return NULL;
  return b;
}

/* Mark a handle just made, not yet shared, as a block of hmb_ptr_alloc():
 * only such blocks are found by hmb_ptr_buffer(). */
static inline void hmb__buffer_mark_ptr(hmb_buffer_t *b) {
  b->flags = (uint16_t)(b->flags | HMB__BUF_PTR);
}

/* Give an unused root handle back (its creation was rolled back). */
void hmb__buffer_discard(hmb_buffer_t *b);

/*
 * A slice of [offset, offset + length) of `parent` (length 0 allowed),
 * retaining it: the pointer API's view of an over-allocated buffer. NULL if
 * no handle could be had or the parent is closed.
 */
hmb_buffer_t *hmb__buffer_view(hmb_buffer_t *parent, size_t offset,
                               size_t length);

#endif /* HMB_SRC_CORE_BUFFER_H */
