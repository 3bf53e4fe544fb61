/*
 * allocator.c - the allocator entry points, the pointer-style API, and the
 * default and thread-bound allocators.
 *
 * hmb_allocate() validates arguments once for every implementation, so an
 * implementation only sees a non-NULL out, bytes in [0, HMB_MAX_ALLOC] and
 * known flags. The default allocator charges no budget: it is the "no
 * limit" baseline and the allocator of code that runs outside any task.
 *
 * (The thread-bound allocator is runner.c's: it charges runners. So are
 * hmb_ptr_alloc() and hmb_ptr_free(), which have a runner's quick paths
 * inline and come back here for everything else.)
 *
 * Pointers. Every block of the built-in allocators carries the prefix of
 * memory/block.h, whose back-pointer slot holds its handle, so a pointer
 * finds its handle in O(1) without a lock. An allocator without
 * allocate_aligned is asked for the size plus room to align, and the pointer
 * is the data of a slice placed inside it, with a prefix of the same shape
 * written into the bytes before it (kind HMB__BLOCK_INNER); closing the
 * slice closes the whole block.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/abi.h"
#include "core/buffer.h"
#include "core/log.h"
#include "core/runner.h"
#include "hmb/allocator.h"
#include "memory/block.h"
#include "memory/memory.h"
#include "platform/shard.h"

/* The prefix written inside a generic allocator's buffer. */
#define HMB__BLOCK_INNER 5u

int hmb_allocate(const hmb_allocator_t *alloc, size_t bytes, unsigned flags,
                 hmb_buffer_t **out) {
  if (out)
    *out = NULL;
  if (!alloc || !alloc->allocate || !out ||
      (flags & ~(unsigned)HMB_ALLOC_PINNED))
    return HMB_EINVAL;
  if (bytes > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  return alloc->allocate(alloc->ctx, bytes, flags, out);
}

/* A slice of `outer` at `align` with an inner prefix: the generic path. */
static int hmb__inner_view(hmb_buffer_t *outer, size_t bytes, size_t align,
                           hmb_buffer_t **out) {
  if (!outer->data) { /* a reservation has no bytes to place a prefix in */
    hmb_buffer_close(outer);
    return HMB_ENOTSUP;
  }
  uintptr_t base = (uintptr_t)outer->data;
  uintptr_t p = (base + HMB__PREFIX_MIN + align - 1) & ~(uintptr_t)(align - 1);
  hmb_buffer_t *s = hmb__buffer_view(outer, (size_t)(p - base), bytes);
  hmb_buffer_close(outer); /* the view holds it now */
  if (!s)
    return HMB_ENOMEM;
  void *data = (void *)p;
  *hmb__block_word_at(data) =
      hmb__block_word((size_t)(p - base), HMB__BLOCK_INNER,
                      (s->flags & HMB__BUF_PINNED) != 0, 0, 0, align);
  *hmb__block_backptr(data) = s;
  *out = s;
  return 0;
}

int hmb_allocate_aligned(const hmb_allocator_t *alloc, size_t bytes,
                         size_t alignment, unsigned flags, hmb_buffer_t **out) {
  if (out)
    *out = NULL;
  if (!alloc || !alloc->allocate || !out ||
      (flags & ~(unsigned)HMB_ALLOC_PINNED) ||
      /* a power of two, or 0 (the default), in this order: tested as
       * nonzero && pow2, clang rewrites it as a population count, which
       * costs 20 instructions without POPCNT */
      alignment > HMB_MAX_ALIGN || (alignment & (alignment - 1)) != 0)
    return HMB_EINVAL;
  if (bytes > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  if (alloc->allocate_aligned)
    return alloc->allocate_aligned(alloc->ctx, bytes, alignment, flags, out);
  if (alignment == 0) /* the allocator's own default */
    return alloc->allocate(alloc->ctx, bytes, flags, out);
  size_t a = alignment > HMB__PREFIX_MIN ? alignment : HMB__PREFIX_MIN;
  if (bytes > HMB_MAX_ALLOC - a - HMB__PREFIX_MIN)
    return HMB_ETOOBIG;
  hmb_buffer_t *outer = NULL;
  int rc =
      alloc->allocate(alloc->ctx, bytes + a + HMB__PREFIX_MIN, flags, &outer);
  if (rc)
    return rc;
  return hmb__inner_view(outer, bytes, a, out);
}

/* ---- pointers
 * ---------------------------------------------------------------- */

hmb_buffer_t *hmb_ptr_buffer(const void *ptr) {
  return hmb__ptr_buffer(ptr);
}

size_t hmb_ptr_size(const void *ptr) {
  hmb_buffer_t *b = hmb__ptr_buffer(ptr);
  return b ? b->size : 0;
}

/* hmb_ptr_alloc() through any allocator (runner.c defines hmb_ptr_alloc(),
 * with a runner's quick path inline, and calls this for the rest). */
int hmb__ptr_alloc_any(const hmb_allocator_t *alloc, size_t bytes,
                       size_t alignment, unsigned flags, void **out) {
  if (out)
    *out = NULL;
  if (!out)
    return HMB_EINVAL;
  hmb_buffer_t *b = NULL;
  int rc =
      hmb_allocate_aligned(alloc, bytes, alignment ? alignment : 16, flags, &b);
  if (rc)
    return rc;
  if (!b->data) { /* an implementation that made a reservation */
    hmb_buffer_close(b);
    return HMB_ENOTSUP;
  }
  hmb__buffer_mark_ptr(b);
  *out = b->data;
  return 0;
}

/* hmb_ptr_free() of what runner.c's does not close itself: `ptr` is not
 * NULL. */
int hmb__ptr_free_any(void *ptr) {
  hmb_buffer_t *b = hmb__ptr_buffer(ptr);
  if (HMB__UNLIKELY(!b)) {
    hmb__log(NULL, HMB_LOG_ERROR,
             "hmb_ptr_free(%p): not a block of hmb_ptr_alloc(); not freed",
             ptr);
    return HMB_EINVAL;
  }
  return hmb_buffer_close(b);
}

int hmb_ptr_realloc(void **pp, size_t bytes) {
  if (!pp)
    return HMB_EINVAL;
  if (!*pp)
    return hmb_ptr_alloc(hmb_default_allocator(), bytes, 16, 0, pp);
  if (bytes > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  hmb_buffer_t *b = hmb_ptr_buffer(*pp);
  if (!b)
    return HMB_EINVAL;
  /* Acquire: pairs with the acq_rel decrement of a close of another
   * reference, so what that thread did with the buffer happens before the
   * resize writes to it. */
  if (atomic_load_explicit(&b->refs, memory_order_acquire) != 1)
    return HMB_EBUSY;
  if (!(b->flags & HMB__BUF_SLICE)) {
    int rc = b->u.root.ops->resize(b->u.root.owner, b, bytes);
    if (rc == 0)
      *pp = b->data;
    return rc;
  }
  /* A view inside a generic allocator's buffer: resize the whole block and
   * place the view again at its alignment. */
  hmb_buffer_t *outer = b->u.parent;
  /* Acquire: as for b->refs above (the closes of outer's other refs). */
  if ((outer->flags & HMB__BUF_SLICE) ||
      atomic_load_explicit(&outer->refs, memory_order_acquire) != 1)
    return HMB_ENOTSUP;
  size_t align = hmb__block_align(*hmb__block_word_at(*pp));
  size_t old_off = (size_t)((char *)*pp - (char *)outer->data);
  size_t keep = bytes < b->size ? bytes : b->size;
  if (bytes > HMB_MAX_ALLOC - align - HMB__PREFIX_MIN)
    return HMB_ETOOBIG;
  int rc = outer->u.root.ops->resize(outer->u.root.owner, outer,
                                     bytes + align + HMB__PREFIX_MIN);
  if (rc)
    return rc;
  uintptr_t base = (uintptr_t)outer->data;
  uintptr_t p = (base + HMB__PREFIX_MIN + align - 1) & ~(uintptr_t)(align - 1);
  if ((size_t)(p - base) != old_off)
    memmove((void *)p, (char *)outer->data + old_off, keep);
  b->data = (void *)p;
  b->size = bytes;
  *hmb__block_word_at(b->data) =
      hmb__block_word((size_t)(p - base), HMB__BLOCK_INNER,
                      (b->flags & HMB__BUF_PINNED) != 0, 0, 0, align);
  *hmb__block_backptr(b->data) = b;
  *pp = b->data;
  return 0;
}

/* ---- the default allocator ------------------------------------------------
 */

static void hmb__default_freed(void *owner, hmb_buffer_t *b) {
  if (hmb__memory_free(owner, b->data, b->size) != 0)
    hmb__log(NULL, HMB_LOG_ERROR,
             "buffer %p: block %p is not a live block of the default "
             "allocator: not freed",
             (void *)b, b->data);
}

static int hmb__default_resize(void *owner, hmb_buffer_t *b, size_t bytes) {
  if (hmb__memory_resize_in_place(owner, b->data, b->size, bytes)) {
    b->size = bytes;
    return 0;
  }
  int pinned = 0;
  void *nd = hmb__memory_alloc(owner, bytes, hmb__memory_block_align(b->data),
                               0, &pinned);
  if (!nd)
    return HMB_ENOMEM;
  memcpy(nd, b->data, bytes < b->size ? bytes : b->size);
  hmb__memory_free(owner, b->data, b->size);
  b->data = nd;
  b->size = bytes;
  *hmb__block_backptr(nd) = b;
  return 0;
}

static int hmb__default_closed(void *owner, hmb_buffer_t *b) {
  hmb__default_freed(owner, b);
  return hmb__buffer_root_end(b);
}

static const hmb__owner_ops_t hmb__default_ops = {
    hmb__default_freed, hmb__default_resize, hmb__default_closed};

static int hmb__default_allocate_aligned(void *ctx, size_t bytes, size_t align,
                                         unsigned flags, hmb_buffer_t **out) {
  (void)ctx;
  hmb__memory_t *mem = hmb__memory_default();
  int pinned = 0;
  void *data = hmb__memory_alloc(mem, bytes, align,
                                 (flags & HMB_ALLOC_PINNED) != 0, &pinned);
  if (!data)
    return HMB_ENOMEM;
  hmb_buffer_t *b = hmb__buffer_root(data, bytes, pinned ? HMB__BUF_PINNED : 0,
                                     0, mem, &hmb__default_ops);
  if (!b) {
    hmb__memory_free(mem, data, bytes);
    return HMB_ENOMEM;
  }
  *out = b;
  return 0;
}

static int hmb__default_allocate(void *ctx, size_t bytes, unsigned flags,
                                 hmb_buffer_t **out) {
  return hmb__default_allocate_aligned(ctx, bytes, 0, flags, out);
}

static const hmb_allocator_t hmb__default_allocator = {
    NULL, hmb__default_allocate, "default", hmb__default_allocate_aligned};

const hmb_allocator_t *hmb_default_allocator(void) {
  return &hmb__default_allocator;
}

int hmb_default_memory_stats_sized(hmb_memory_stats_t *out, size_t out_size) {
  if (!out)
    return HMB_EINVAL;
  hmb_memory_stats_t st;
  hmb__memory_stats(hmb__memory_default(), &st);
  return hmb__abi_out(out, out_size, &st, sizeof st,
                      offsetof(hmb_memory_stats_t, huge_bytes));
}

int(hmb_default_memory_stats)(hmb_memory_stats_t *out) {
  return hmb_default_memory_stats_sized(out, sizeof(hmb_memory_stats_t));
}
