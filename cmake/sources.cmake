# The library's sources, by layer (see docs/design.md, "Objects and files").
# HMB_CUDA_SOURCES holds the one file that implements src/platform/cuda.h.
set(HMB_SOURCES
    src/platform/os.c
    src/memory/arena.c
    src/memory/cache.c
    src/memory/memory.c
    src/core/errors.c
    src/core/log.c
    src/core/buffer.c
    src/core/allocator.c
    src/core/pool.c
    src/core/runner.c
    src/core/executor.c)
if(HMB_HAVE_CUDA)
  set(HMB_CUDA_SOURCES src/platform/cuda.c)
else()
  set(HMB_CUDA_SOURCES src/platform/cuda_none.c)
endif()
