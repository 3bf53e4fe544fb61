/**
 * @file hmb.h
 * @brief host memory budget: the umbrella header.
 *
 * hmb bounds how much host memory the scan threads of a columnar reader may
 * hold, and binds that budget to the real allocations:
 *   hmb/errors.h    status codes and hmb_strerror()
 *   hmb/buffer.h    refcounted buffers, slices, close events
 *   hmb/allocator.h the host allocator a reader codes against: handles and
 *                   pointers, default and thread-bound allocators
 *   hmb/backend.h   custom physical backends
 *   hmb/pool.h      the global budget and its admission rules
 *   hmb/runner.h    one scan task's budget; an allocator itself
 *   hmb/executor.h  a memory-bounded thread pool for scan tasks
 *   hmb/stats.h     counter snapshots
 *   hmb/log.h       diagnostics sink
 *
 * Every call is thread-safe as its comment states. Calls from signal
 * handlers are not supported. After fork() the child may make and use
 * pools, runners, buffers and executors of its own, and the default
 * allocator, but none made before the fork (another thread of the parent
 * may have held their locks).
 */
#ifndef HMB_H
#define HMB_H

#include "hmb/allocator.h"
#include "hmb/backend.h"
#include "hmb/buffer.h"
#include "hmb/errors.h"
#include "hmb/executor.h"
#include "hmb/export.h"
#include "hmb/log.h"
#include "hmb/pool.h"
#include "hmb/runner.h"
#include "hmb/stats.h"
#include "hmb/version.h"

#endif /* HMB_H */
