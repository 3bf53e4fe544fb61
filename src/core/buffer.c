/*
 * buffer.c - refcounted buffers, slices and close events.
 *
 * Reference counting follows kref: retain is a relaxed increment; the
 * decrement is acquire-release, so every write made through any reference
 * happens-before the teardown by the thread that drops the count to zero.
 * (kref uses a release decrement plus an acquire fence on the last one; the
 * single acq_rel RMW costs the same on x86 and, unlike a standalone fence,
 * is understood by ThreadSanitizer.)
 *
 * Teardown order of a root buffer at zero: block back to its memory, bytes
 * back to the owning runner (budget released at this exact moment), then the
 * user handler with refs == 0, then the handle itself. A slice at zero first
 * drops its reference on the parent (which may free the parent's memory),
 * then calls its own handler, then frees its handle.
 *
 * Over-close: a decrement that finds the count already at zero is undone
 * and reported (HMB_ESTATE), so accounting never goes wrong through a handle
 * that is still alive. Handles are checked against a magic number in debug
 * builds to catch wild pointers early.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define HMB__BUF_MAGIC 0x484d4242u /* "HMBB" */
#define HMB__BUF_DEAD 0xdeadbeefu

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

/* A handle with one reference, no handler, no memory owner or runner. */
static void hmb__buffer_init(hmb_buffer_t *b, void *data, size_t size,
                             int pinned, hmb_buffer_t *parent) {
  atomic_init(&b->refs, 1);
  b->magic = HMB__BUF_MAGIC;
  b->pinned = pinned;
  b->data = data;
  b->size = size;
  b->parent = parent;
  b->mem = NULL;
  b->owner = NULL;
  b->handler.fn = NULL;
  b->handler.user = NULL;
}

int hmb__buffer_create(hmb__memory_t *mem, size_t bytes, unsigned flags,
                       hmb_runner_t *owner, hmb_buffer_t **out) {
  hmb_buffer_t *b = malloc(sizeof *b);
  if (!b)
    return HMB_ENOMEM;
  void *data = NULL;
  int pinned = 0;
  if (mem && hmb__memory_alloc(mem, bytes, (flags & HMB_ALLOC_PINNED) != 0,
                               &data, &pinned) != 0) {
    free(b);
    return HMB_ENOMEM;
  }
  hmb__buffer_init(b, data, bytes, pinned, NULL);
  b->mem = mem;
  b->owner = owner;
  *out = b;
  return 0;
}

void *hmb_buffer_data(const hmb_buffer_t *buf) {
  return buf ? buf->data : NULL;
}

size_t hmb_buffer_size(const hmb_buffer_t *buf) {
  return buf ? buf->size : 0;
}

int hmb_buffer_is_pinned(const hmb_buffer_t *buf) {
  return buf ? buf->pinned : 0;
}

long hmb_buffer_refcount(const hmb_buffer_t *buf) {
  return buf ? atomic_load_explicit(&buf->refs, memory_order_relaxed) : 0;
}

hmb_buffer_t *hmb_buffer_parent(const hmb_buffer_t *buf) {
  return buf ? buf->parent : NULL;
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
    hmb_buffer_t *parent = b->parent;
    void *data = b->data;
    b->data = NULL;
    b->parent = ended;
    ended = b;
    if (!parent) { /* a root: its memory and budget go back now */
      if (b->mem && /* NULL for a budget-only reservation */
          hmb__memory_free(b->mem, data, b->size, b->pinned) != 0)
        hmb__log(NULL, HMB_LOG_ERROR,
                 "pinned block %p (%zu bytes) is not a live block of the "
                 "region: not freed",
                 data, b->size);
      if (b->owner)
        hmb__runner_buffer_freed(b->owner, (int64_t)b->size);
      break;
    }
    hmb_buffer_handler_t ph = parent->handler;
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
    hmb_buffer_t *next = ended->parent;
    hmb_buffer_handler_t h = ended->handler;
    ended->parent = NULL;
    if (h.fn)
      h.fn(h.user, ended, 0);
    ended->magic = HMB__BUF_DEAD;
    free(ended);
    ended = next;
  }
}

int hmb_buffer_close(hmb_buffer_t *buf) {
  if (!buf)
    return HMB_EINVAL;
  HMB__CHECK_MAGIC(buf);
  /* Copied before the decrement: once our reference is dropped, another
   * thread's final close may free the handle at any moment. */
  hmb_buffer_handler_t h = buf->handler;
  long old = atomic_fetch_sub_explicit(&buf->refs, 1, memory_order_acq_rel);
  if (HMB__UNLIKELY(old <= 0)) {
    atomic_fetch_add_explicit(&buf->refs, 1, memory_order_relaxed);
    hmb__log(NULL, HMB_LOG_ERROR,
             "buffer %p closed more times than retained (refs %ld)",
             (void *)buf, old);
    return HMB_ESTATE;
  }
  if (old > 1) {
    if (h.fn)
      h.fn(h.user, buf, old - 1);
    return 0;
  }
  hmb__buffer_teardown(buf);
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
  hmb_buffer_t *s = malloc(sizeof *s);
  if (!s)
    return HMB_ENOMEM;
  int rc = hmb_buffer_retain(buf);
  if (rc) {
    free(s);
    return rc;
  }
  hmb__buffer_init(s, buf->data ? (char *)buf->data + offset : NULL, length,
                   buf->pinned, buf);
  *out = s;
  return 0;
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
