/*
 * cache.h - the warm cache of large pageable blocks, inside the budget.
 *
 * Large blocks (their own mappings, HMB__LARGE_MIN bytes or more) are
 * expensive to get fresh: every page faults again. A freed one is kept,
 * mapped and warm, and handed to the next request of its size class
 * (eight classes per power of two, so a block is less than 1/8 larger than
 * the request it serves) instead of going back to the OS.
 *
 * Bound. The cache keeps blocks only in budget nobody holds: its owner (the
 * pool) sets the room (limit - held, never below 0) whenever a grant or a
 * return changes it, and the cached bytes never exceed min(room, extra
 * cap) when a block is kept (room is reserved by compare-and-swap before a
 * block is kept). A grant that shrinks the room is followed, before its
 * budget is used, by hmb__cache_fit(), which gives blocks back until the
 * bound holds again. So live blocks + cached blocks stay within the budget
 * plus the counted over-commit, cache included.
 *
 * Concurrency. A hit is served from the calling thread's magazine
 * (tcache.h: no lock shared by all threads), else from the shared depot
 * (one mutex, by class), else the OS maps a fresh block (a miss). A freed
 * block goes to the calling thread's magazine, else the depot, else the OS.
 * The OS is never called while a lock is held, except by a thread exit,
 * which releases its magazine under the tcache registry lock.
 */
#ifndef HMB_SRC_MEMORY_CACHE_H
#define HMB_SRC_MEMORY_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hmb__cache hmb__cache_t;

typedef struct hmb__cache_stats {
  int64_t cached;   /* bytes kept now */
  int64_t cap;      /* what may be kept now: min(room, extra cap) */
  int64_t huge;     /* cached bytes in mappings advised for huge pages */
  uint64_t hits;    /* blocks served from the cache */
  uint64_t misses;  /* blocks the OS had to map */
  uint64_t rejects; /* freed blocks given to the OS: no room */
  uint64_t trimmed; /* bytes given back by trims, fits and destroy */
} hmb__cache_stats_t;

/*
 * Create a cache. `extra_cap` (0: none) caps the cached bytes beyond the
 * room; `room` starts at `room0`; `huge` allows huge-page advice for fresh
 * mappings of 2 MiB or more. 0 or HMB_ENOMEM.
 */
int hmb__cache_create(size_t extra_cap, int64_t room0, int huge,
                      hmb__cache_t **out);

/* Give every cached block back (magazines included) and free the cache. */
void hmb__cache_destroy(hmb__cache_t *c);

/* The mapping length a request of `len` bytes gets (its class size). */
size_t hmb__cache_block_len(size_t len);

/*
 * A mapping of hmb__cache_block_len(len) bytes: cached (hit) or fresh. *cls
 * gets its class, *huge whether it was advised for huge pages. NULL if the
 * OS refuses. Thread-safe.
 */
void *hmb__cache_get(hmb__cache_t *c, size_t len, unsigned *cls, int *huge);

/* Take back a block from hmb__cache_get(): keep it or unmap it. */
void hmb__cache_put(hmb__cache_t *c, void *raw, unsigned cls, int huge);

/* Set the room (budget nobody holds); seq_cst, see hmb__cache_put(). */
void hmb__cache_set_room(hmb__cache_t *c, int64_t room);

/* Give blocks back until cached <= min(room, extra cap). Thread-safe. */
void hmb__cache_fit(hmb__cache_t *c);

/* Give blocks back until at most `keep` bytes remain cached. */
void hmb__cache_trim(hmb__cache_t *c, size_t keep);

/* Counter snapshot. Thread-safe, lock-free. */
void hmb__cache_stats(hmb__cache_t *c, hmb__cache_stats_t *out);

/* Hold the depot's lock across fork() (a process-wide cache's fork
 * handlers, memory.c): lock in prepare, unlock in the parent and child. */
void hmb__cache_fork_lock(hmb__cache_t *c);
void hmb__cache_fork_unlock(hmb__cache_t *c);

#endif /* HMB_SRC_MEMORY_CACHE_H */
