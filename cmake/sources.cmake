# The library's sources, by layer (see docs/design.md, "Objects and files").
# Each layer includes only the layers below it:
#   platform  the OS and the CUDA runtime
#   memory    pageable blocks, the warm cache, the pinned region
#   core      the budget: ledger, admission rules, runners, buffers, pools
# HMB_CUDA_SOURCES holds the one file that implements src/platform/cuda.h.
set(HMB_SOURCES
    src/platform/os.c
    src/platform/lock.c
    src/memory/arena.c
    src/memory/tcache.c
    src/memory/cache.c
    src/memory/memory.c
    src/core/errors.c
    src/core/log.c
    src/core/buffer.c
    src/core/allocator.c
    src/core/admission.c
    src/core/ledger.c
    src/core/pressure.c
    src/core/runner.c
    src/core/pool.c
    src/core/lines.c
    src/core/describe.c
    src/core/check.c
    src/core/executor.c)
if(HMB_HAVE_CUDA)
  set(HMB_CUDA_SOURCES src/platform/cuda.c)
else()
  set(HMB_CUDA_SOURCES src/platform/cuda_none.c)
endif()
