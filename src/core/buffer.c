/*
 * buffer.c - refcounted buffers, slices and close events.
 *
 * Reference counting follows kref: retain is a relaxed increment; the
 * decrement is acquire-release, so every write made through any reference
 * happens-before the teardown by the thread that drops the count to zero.
 * A close that finds the count at 1 (the caller's reference is the only
 * one) reads it with acquire and stores 0 instead (the common last close
 * of a buffer used by one thread: no locked instruction).
 * (kref uses a release decrement plus an acquire fence on the last one; the
 * single acq_rel RMW costs the same on x86 and, unlike a standalone fence,
 * is understood by ThreadSanitizer.)
 *
 * Teardown of a root at zero: its owner's hook (block back to its memory,
 * bytes back to the budget at this exact moment), then the user handler
 * with refs == 0, then the handle itself. A slice at zero first drops its
 * reference on the parent (which may end the parent too), then calls its
 * own handler, then frees its handle.
 *
 * Over-close: a decrement that finds the count already at zero is undone
 * and reported (HMB_ESTATE), so accounting never goes wrong through a handle
 * that is still alive. Debug builds check the handle's magic number to catch
 * wild pointers early; sanitizer builds give handles straight back to
 * malloc so that a use after the last close is reported.
 */
#include "core/buffer.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "memory/block.h"
#include "memory/tcache.h"
#include "platform/util.h"

_Static_assert(sizeof(struct hmb_buffer) <= HMB__TC_OBJ_SIZE &&
                   _Alignof(struct hmb_buffer) <= HMB__TC_OBJ_SIZE,
               "a buffer handle fits the memory layer's 64-byte objects");

#ifndef NDEBUG
#define HMB__CHECK_MAGIC(b)                                                    \
  do {                                                                         \
    if ((b)->magic != HMB__BUF_MAGIC) {                                        \
      fprintf(stderr, "hmb: buffer %p is not a live buffer handle\n",          \
              (const void *)(b));                                              \
      abort();                                                                 \
    }                                                                          \
  } while (0)
#else
#define HMB__CHECK_MAGIC(b) ((void)0)
#endif

static hmb_buffer_t *hmb__handle_new(void *data, size_t size, unsigned flags) {
  hmb_buffer_t *b = hmb__tcache_obj_get();
  if (b)
    hmb__buffer_fill(b, data, size, flags, 0, NULL, NULL);
  return b;
}

static void hmb__handle_free(hmb_buffer_t *b) {
  b->magic = HMB__BUF_DEAD;
  hmb__tcache_obj_put(b);
}

void hmb__buffer_discard(hmb_buffer_t *b) {
  hmb__handle_free(b);
}

void *hmb_buffer_data(const hmb_buffer_t *buf) {
  return buf ? buf->data : NULL;
}

size_t hmb_buffer_size(const hmb_buffer_t *buf) {
  return buf ? buf->size : 0;
}

int hmb_buffer_is_pinned(const hmb_buffer_t *buf) {
  return buf ? (buf->flags & HMB__BUF_PINNED) != 0 : 0;
}

long hmb_buffer_refcount(const hmb_buffer_t *buf) {
  return buf ? atomic_load_explicit(&buf->refs, memory_order_relaxed) : 0;
}

hmb_buffer_t *hmb_buffer_parent(const hmb_buffer_t *buf) {
  return buf && (buf->flags & HMB__BUF_SLICE) ? buf->u.parent : NULL;
}

int hmb_buffer_retain(hmb_buffer_t *buf) {
  if (!buf)
    return HMB_EINVAL;
  HMB__CHECK_MAGIC(buf);
  long old = atomic_fetch_add_explicit(&buf->refs, 1, memory_order_relaxed);
  if (HMB__UNLIKELY(old <= 0)) {
    atomic_fetch_sub_explicit(&buf->refs, 1, memory_order_relaxed);
    hmb__log(NULL, HMB_LOG_ERROR,
             "retain of buffer %p after its last close (refs %ld)", (void *)buf,
             old);
    return HMB_ESTATE;
  }
  return 0;
}

/*
 * The last reference of `b` is gone. A slice's end drops a reference on its
 * parent, which may end the parent too, and so on up a chain of slices: the
 * walk is a loop (a deep chain cannot exhaust the stack). Handles that end
 * are linked through their (no longer needed) parent field in reverse, so
 * their handlers fire afterwards in the order nested closes would give: the
 * outermost ancestor first, after its memory and budget are returned, and
 * the slice closed by the caller last.
 */
static void hmb__buffer_teardown(hmb_buffer_t *b) {
  hmb_buffer_t *ended = NULL;
  for (;;) {
    int slice = (b->flags & HMB__BUF_SLICE) != 0;
    hmb_buffer_t *parent = slice ? b->u.parent : NULL;
    if (!slice) { /* a root: its memory and budget go back now */
      b->u.root.ops->freed(b->u.root.owner, b);
      b->data = NULL;
      b->u.parent = ended;
      ended = b;
      break;
    }
    b->data = NULL;
    b->u.parent = ended;
    ended = b;
    hmb_buffer_handler_t ph = parent->handler;
    /* acq_rel: pairs with the other holders' decrements (hmb_buffer_close()),
     * so the parent's last close sees every write made through them. */
    long old =
        atomic_fetch_sub_explicit(&parent->refs, 1, memory_order_acq_rel);
    if (HMB__UNLIKELY(old <= 0)) { /* the parent was over-closed */
      atomic_fetch_add_explicit(&parent->refs, 1, memory_order_relaxed);
      hmb__log(NULL, HMB_LOG_ERROR,
               "buffer %p closed more times than retained (refs %ld)",
               (void *)parent, old);
      break;
    }
    if (old > 1) { /* the parent lives on: it just sees one close */
      if (ph.fn)
        ph.fn(ph.user, parent, old - 1);
      break;
    }
    b = parent;
  }
  while (ended) {
    hmb_buffer_t *next = ended->u.parent;
    hmb_buffer_handler_t h = ended->handler;
    ended->u.parent = NULL;
    ended->flags = (uint16_t)(ended->flags & ~HMB__BUF_SLICE);
    if (h.fn)
      h.fn(h.user, ended, 0);
    hmb__handle_free(ended);
    ended = next;
  }
}

int hmb__buffer_root_end(hmb_buffer_t *b) {
  b->data = NULL;
  hmb_buffer_handler_t h = b->handler;
  if (h.fn) {
    b->u.parent = NULL;
    h.fn(h.user, b, 0);
  }
  hmb__handle_free(b);
  return 0;
}

/* A close after its decrement found `old` references: a slice's last, an
 * over-close, or one that leaves the buffer alive (`h`: its handler as read
 * before the decrement). */
static __attribute__((noinline)) int
hmb__buffer_closed_at(hmb_buffer_t *buf, long old, hmb_buffer_handler_t h) {
  if (HMB__LIKELY(old == 1)) {
    /* A root: what the teardown walk does for one, without the walk, by
     * its owner (freed, then hmb__buffer_root_end()). */
    if (HMB__LIKELY(!(buf->flags & HMB__BUF_SLICE)))
      return buf->u.root.ops->closed(buf->u.root.owner, buf);
    hmb__buffer_teardown(buf);
    return 0;
  }
  if (HMB__UNLIKELY(old <= 0)) {
    atomic_fetch_add_explicit(&buf->refs, 1, memory_order_relaxed);
    hmb__log(NULL, HMB_LOG_ERROR,
             "buffer %p closed more times than retained (refs %ld)",
             (void *)buf, old);
    return HMB_ESTATE;
  }
  if (h.fn)
    h.fn(h.user, buf, old - 1);
  return 0;
}

int hmb_buffer_close(hmb_buffer_t *buf) {
  if (!buf)
    return HMB_EINVAL;
  HMB__CHECK_MAGIC(buf);
  /* The common close, a root's last reference, goes to its owner in a tail
   * call (its `closed` hook: freed, then hmb__buffer_root_end()). */
  if (HMB__LIKELY(hmb__buffer_drop_sole_root(buf)))
    return buf->u.root.ops->closed(buf->u.root.owner, buf);
  /* Copied before the decrement: once our reference is dropped, another
   * thread's final close may free the handle at any moment. */
  hmb_buffer_handler_t h = buf->handler;
  /* A slice's sole holder drops its reference without a read-modify-write
   * too (see hmb__buffer_drop_sole_root()). */
  long old;
  if (atomic_load_explicit(&buf->refs, memory_order_acquire) == 1) {
    atomic_store_explicit(&buf->refs, 0, memory_order_relaxed);
    old = 1;
  } else {
    old = atomic_fetch_sub_explicit(&buf->refs, 1, memory_order_acq_rel);
  }
  if (HMB__LIKELY(old == 1 && !(buf->flags & HMB__BUF_SLICE)))
    return buf->u.root.ops->closed(buf->u.root.owner, buf);
  return hmb__buffer_closed_at(buf, old, h);
}

/* A slice handle over `buf` (retained); 0 or an HMB_E* code. */
static int hmb__slice_new(hmb_buffer_t *buf, size_t offset, size_t length,
                          hmb_buffer_t **out) {
  hmb_buffer_t *s =
      hmb__handle_new(buf->data ? (char *)buf->data + offset : NULL, length,
                      HMB__BUF_SLICE | (buf->flags & HMB__BUF_PINNED));
  if (!s)
    return HMB_ENOMEM;
  int rc = hmb_buffer_retain(buf);
  if (rc) {
    hmb__handle_free(s);
    return rc;
  }
  s->u.parent = buf;
  *out = s;
  return 0;
}

int hmb_buffer_slice(hmb_buffer_t *buf, size_t offset, size_t length,
                     hmb_buffer_t **out) {
  if (out)
    *out = NULL;
  if (!buf || !out || length == 0 || offset > buf->size ||
      length > buf->size - offset)
    return HMB_EINVAL;
  HMB__CHECK_MAGIC(buf);
  return hmb__slice_new(buf, offset, length, out);
}

hmb_buffer_t *hmb__buffer_view(hmb_buffer_t *parent, size_t offset,
                               size_t length) {
  hmb_buffer_t *s = NULL;
  return hmb__slice_new(parent, offset, length, &s) == 0 ? s : NULL;
}

int hmb_buffer_set_handler(hmb_buffer_t *buf,
                           const hmb_buffer_handler_t *handler,
                           hmb_buffer_handler_t *previous) {
  if (!buf)
    return HMB_EINVAL;
  HMB__CHECK_MAGIC(buf);
  if (previous)
    *previous = buf->handler;
  if (handler)
    buf->handler = *handler;
  else
    buf->handler = (hmb_buffer_handler_t){NULL, NULL};
  return 0;
}

void hmb_buffer_handler_invoke(const hmb_buffer_handler_t *handler,
                               hmb_buffer_t *buf, long refs) {
  if (handler && handler->fn)
    handler->fn(handler->user, buf, refs);
}
