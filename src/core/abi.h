/*
 * abi.h - struct sizes that travel with calls (hmb/pool.h: the _sized
 * functions and their macros).
 *
 * A caller compiled against older headers passes a smaller struct; one
 * compiled against newer headers a larger one. Inputs are copied up to the
 * smaller of the two sizes (the rest keeps its zero default), and a larger
 * input is accepted only if every byte this library does not know is zero.
 * Outputs are written up to the caller's size. The first release that
 * carried sizes is the floor: anything smaller is not one of our structs.
 */
#ifndef HMB_SRC_CORE_ABI_H
#define HMB_SRC_CORE_ABI_H

#include <stddef.h>
#include <string.h>

#include "hmb/errors.h"

/* Copy an input struct of `src_size` bytes into `dst` (`dst_size` bytes,
 * zeroed first). `min_size`: the first sized release's size. */
static inline int hmb__abi_in(void *dst, size_t dst_size, const void *src,
                              size_t src_size, size_t min_size) {
  memset(dst, 0, dst_size);
  if (src_size < min_size)
    return HMB_EINVAL;
  if (src_size > dst_size) {
    const unsigned char *extra = (const unsigned char *)src + dst_size;
    for (size_t i = 0; i < src_size - dst_size; i++)
      if (extra[i])
        return HMB_ENOTSUP;
  }
  memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
  return 0;
}

/* Write an output struct: `src_size` bytes made here, `dst_size` asked. */
static inline int hmb__abi_out(void *dst, size_t dst_size, const void *src,
                               size_t src_size, size_t min_size) {
  if (dst_size < min_size)
    return HMB_EINVAL;
  memcpy(dst, src, dst_size < src_size ? dst_size : src_size);
  if (dst_size > src_size)
    memset((char *)dst + src_size, 0, dst_size - src_size);
  return 0;
}

#endif /* HMB_SRC_CORE_ABI_H */
