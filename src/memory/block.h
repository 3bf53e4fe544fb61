/*
 * block.h - the prefix every block carries in front of its data.
 *
 * The memory layer hands the core `data` pointers. Right before each one
 * sits a prefix of at least HMB__PREFIX_MIN bytes:
 *
 *   data - 16   block word: where the block came from (kind), how far its
 *               data lies from the start of what was allocated (offset),
 *               its size class, flags, and a check byte;
 *   data - 8    back-pointer slot: written by the core with the buffer
 *               handle, so that a plain pointer finds its handle in O(1)
 *               without a lock (hmb_ptr_buffer()).
 *
 * The prefix is max(16, alignment) bytes (256 or more in the pinned
 * region), which is what keeps `data` aligned; its cost is stated in
 * hmb/allocator.h and in the physical bound of hmb/stats.h. The memory layer
 * writes the block word; the core writes the back-pointer slot; nobody else
 * writes either.
 */
#ifndef HMB_SRC_MEMORY_BLOCK_H
#define HMB_SRC_MEMORY_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#define HMB__PREFIX_MIN ((size_t)16)

/* Where a block came from. */
enum hmb__block_kind {
  HMB__BLOCK_SMALL = 1,  /* malloc (below the mapping threshold) */
  HMB__BLOCK_LARGE = 2,  /* its own mapping */
  HMB__BLOCK_PINNED = 3, /* the pinned region's sub-allocator */
  HMB__BLOCK_CUSTOM = 4  /* a custom hmb_backend_t */
};

#define HMB__BLOCK_CHECK UINT64_C(0xB7)
#define HMB__BLOCK_NOCLASS 0xFFFFu

/* The block word, packed: offset (24 bits) | log2 of the data alignment
 * asked for (5) | kind (4, from bit 32) | pinned (1) | huge (1) | class (16,
 * from bit 40) | check byte (8). Offsets are below a prefix of at most
 * 2 x HMB_MAX_ALIGN, well under 2^24. */
static inline uint64_t hmb__block_word(size_t offset, unsigned kind, int pinned,
                                       int huge, unsigned cls, size_t align) {
  return (uint64_t)(offset & 0xFFFFFFu) |
         ((uint64_t)(__builtin_ctzll((unsigned long long)align) & 31) << 24) |
         ((uint64_t)kind << 32) | ((uint64_t)(pinned != 0) << 36) |
         ((uint64_t)(huge != 0) << 37) | ((uint64_t)(cls & 0xFFFFu) << 40) |
         (HMB__BLOCK_CHECK << 56);
}

/* The same for a small block, whose offset (< 2^24) and class (< 2^16)
 * need no masking. */
static inline uint64_t hmb__block_word_small(size_t offset, unsigned cls,
                                             size_t align) {
  return (uint64_t)offset |
         ((uint64_t)__builtin_ctzll((unsigned long long)align) << 24) |
         ((uint64_t)HMB__BLOCK_SMALL << 32) | ((uint64_t)cls << 40) |
         (HMB__BLOCK_CHECK << 56);
}

static inline uint64_t *hmb__block_word_at(void *data) {
  return (uint64_t *)data - 2;
}
static inline void **hmb__block_backptr(void *data) {
  return (void **)data - 1;
}
static inline void *const *hmb__block_backptr_c(const void *data) {
  return (void *const *)data - 1;
}
static inline size_t hmb__block_offset(uint64_t w) {
  return (size_t)(w & 0xFFFFFFu);
}
/* The data alignment the block was asked for. */
static inline size_t hmb__block_align(uint64_t w) {
  return (size_t)1 << ((w >> 24) & 31u);
}
static inline unsigned hmb__block_kind_of(uint64_t w) {
  return (unsigned)((w >> 32) & 0xFu);
}
static inline int hmb__block_pinned(uint64_t w) {
  return (int)((w >> 36) & 1u);
}
static inline int hmb__block_huge(uint64_t w) {
  return (int)((w >> 37) & 1u);
}
static inline unsigned hmb__block_class(uint64_t w) {
  return (unsigned)((w >> 40) & 0xFFFFu);
}
static inline int hmb__block_valid(uint64_t w) {
  return (w >> 56) == HMB__BLOCK_CHECK;
}

/* The prefix for an alignment (a power of two). */
/* A valid word of a small block (one comparison for both). */
static inline int hmb__block_valid_small(uint64_t w) {
  const uint64_t mask = (UINT64_C(0xFF) << 56) | (UINT64_C(0xF) << 32);
  return (w & mask) ==
         ((HMB__BLOCK_CHECK << 56) | ((uint64_t)HMB__BLOCK_SMALL << 32));
}

static inline size_t hmb__prefix_for(size_t align) {
  return align > HMB__PREFIX_MIN ? align : HMB__PREFIX_MIN;
}

/* The bytes a small block of `size` data bytes after a prefix of `a` needs:
 * a zero-byte block gets one byte of room, so that its data pointer lies
 * inside it. (A pointer one past a block's end is no reference to it for a
 * leak checker: a cached zero-byte block, which only its handle's data
 * pointer reaches, would be reported as lost.) */
static inline size_t hmb__small_need(size_t size, size_t a) {
  return size + a + (size == 0);
}

#endif /* HMB_SRC_MEMORY_BLOCK_H */
