/*
 * sizeclass.h - the size classes shared by the thread cache and the warm
 * cache: multiples of 16 up to 128 bytes, then eight classes per power of
 * two, so a class is less than 1/8 larger than any size it serves (above
 * 128 bytes; below, at most 15 bytes larger). Pure functions.
 */
#ifndef HMB_SRC_MEMORY_SIZECLASS_H
#define HMB_SRC_MEMORY_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#include "platform/util.h"

/* Class of a size (sizes up to 2^62). */
static inline unsigned hmb__class_of(size_t s) {
  if (s <= 128)
    return s <= 16 ? 0u : (unsigned)((s + 15) / 16 - 1);
  unsigned e = hmb__log2_floor(s - 1); /* s in (2^e, 2^(e+1)] */
  size_t step = (size_t)1 << (e - 3);
  unsigned m = (unsigned)((s + step - 1) >> (e - 3)); /* 9 .. 16 */
  return 8u + (e - 7u) * 8u + (m - 9u);
}

/* Size of a class: the largest size it serves. */
static inline size_t hmb__class_size(unsigned k) {
  if (k < 8)
    return (size_t)(k + 1) * 16;
  unsigned j = k - 8, e = 7 + j / 8;
  return (size_t)(9 + j % 8) << (e - 3);
}

#endif /* HMB_SRC_MEMORY_SIZECLASS_H */
