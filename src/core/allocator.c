/*
 * allocator.c - the allocator vtable entry point and the default allocator.
 *
 * hmb_allocate() validates arguments once for every implementation, so an
 * implementation only sees a non-NULL out, bytes in (0, HMB_MAX_ALLOC] and
 * known flags. The default allocator charges no budget: it is the "no limit"
 * baseline and the allocator of code that runs outside any scan task.
 */
#include "internal.h"

int hmb_allocate(const hmb_allocator_t *alloc, size_t bytes, unsigned flags,
                 hmb_buffer_t **out) {
  if (out)
    *out = NULL;
  if (!alloc || !alloc->allocate || !out || bytes == 0 ||
      (flags & ~(unsigned)HMB_ALLOC_PINNED))
    return HMB_EINVAL;
  if (bytes > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  return alloc->allocate(alloc->ctx, bytes, flags, out);
}

static int hmb__default_allocate(void *ctx, size_t bytes, unsigned flags,
                                 hmb_buffer_t **out) {
  (void)ctx;
  return hmb__buffer_create(hmb__memory_default(), bytes, flags, NULL, out);
}

static const hmb_allocator_t hmb__default_allocator = {
    NULL, hmb__default_allocate, "default"};

const hmb_allocator_t *hmb_default_allocator(void) {
  return &hmb__default_allocator;
}

int hmb_default_memory_stats(hmb_memory_stats_t *out) {
  if (!out)
    return HMB_EINVAL;
  hmb__memory_stats(hmb__memory_default(), out);
  return 0;
}
