/*
 * runner.c - one scan task's budget, and the allocator that charges it.
 *
 * The hot path of an allocation that fits the runner's spare: a state load
 * (acquire: pairs with the release store of the start grant, so the spare
 * it credited is visible), one CAS on the calling thread's shard of spare
 * (ledger.h), the physical block (memory.h), the handle (buffer.h), and the
 * usage counters of the same shard: an RMW of the buffer count, plain
 * stores of the rest, since the thread owns the shard (platform/shard.h;
 * a thread that does not counts in the shared shard, the full way). No
 * lock, and no cache line shared with another thread unless a live
 * thread's index collides with the owner's (thread indices modulo
 * HMB__SHARDS). Beyond the spare, the ledger borrows the deficit.
 *
 * The close of a root buffer reaches the runner through one hook
 * (hmb__runner_closed, or hmb__runner_freed from a slice's teardown): the
 * block goes back to the memory, the bytes to the ledger (spare while
 * running, the pool once stopped; at most one budget lock), and last the
 * shard's buffer count, which may free the runner (see core/runner.h for
 * the lifetime protocol).
 *
 * The common case of both is a quick path without a call (so without a
 * stack frame): everything is checked before anything is taken, and what
 * is rare (a gauge fold, the ledger's slow path, the runner's release) is
 * a tail call that does the rest (docs/design.md section 6).
 */
#include "core/runner.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/abi.h"
#include "core/buffer.h"
#include "core/log.h"
#include "memory/block.h"
#include "memory/memory.h"
#include "memory/sizeclass.h"
#include "memory/tcache.h"
#include "platform/os.h"

static int hmb__runner_allocate(void *ctx, size_t bytes, unsigned flags,
                                hmb_buffer_t **out);
static void hmb__runner_freed(void *owner, hmb_buffer_t *b);
static int hmb__runner_resize(void *owner, hmb_buffer_t *b, size_t bytes);
static int hmb__runner_closed(void *owner, hmb_buffer_t *b);

static const hmb__owner_ops_t hmb__runner_ops = {
    hmb__runner_freed, hmb__runner_resize, hmb__runner_closed};

static const char *const hmb__state_names[] = {
    "CREATED", "WAITING",   "RUNNING", "COMPLETED",
    "FAILED",  "CANCELLED", "CLOSED"};

const char *hmb_runner_state_name(int state) {
  if (state < 0 || state > HMB_RUNNER_CLOSED)
    return "UNKNOWN";
  return hmb__state_names[state];
}

/* The public state of an internal one. */
static int hmb__public_state(int s) {
  switch (s) {
  case HMB__R_CREATED:
    return HMB_RUNNER_CREATED;
  case HMB__R_WAITING:
    return HMB_RUNNER_WAITING;
  case HMB__R_RUNNING:
    return HMB_RUNNER_RUNNING;
  case HMB__R_COMPLETED:
    return HMB_RUNNER_COMPLETED;
  case HMB__R_FAILED:
    return HMB_RUNNER_FAILED;
  case HMB__R_CANCELLED:
  case HMB__R_CANCELLED_DONE:
    return HMB_RUNNER_CANCELLED;
  default:
    return HMB_RUNNER_CLOSED;
  }
}

void hmb_runner_config_init(hmb_runner_config_t *cfg) {
  if (cfg)
    memset(cfg, 0, sizeof *cfg);
}

/* ---- the home: idle waits ------------------------------------------------ */

int hmb__home_init(hmb__home_t *h) {
  if (pthread_mutex_init(&h->idle_mu, NULL) != 0)
    return HMB_ENOMEM;
  if (hmb__os_cond_init(&h->idle_cond) != 0) {
    pthread_mutex_destroy(&h->idle_mu);
    return HMB_ENOMEM;
  }
  atomic_init(&h->idle_waiters, 0);
  return 0;
}

void hmb__home_fini(hmb__home_t *h) {
  pthread_cond_destroy(&h->idle_cond);
  pthread_mutex_destroy(&h->idle_mu);
}

/* A runner's last buffer may have closed: wake hmb_runner_wait_idle(). */
static void hmb__home_idle_notify(hmb__home_t *h) {
  pthread_mutex_lock(&h->idle_mu);
  pthread_cond_broadcast(&h->idle_cond);
  pthread_mutex_unlock(&h->idle_mu);
}

/* ---- creation and lifetime ---------------------------------------------- */

/*
 * Runner objects are small blocks of the memory layer's thread caches, as
 * task objects are (a scan creates and frees one per split, an executor
 * one per task): the thread that frees one keeps it for its next create,
 * with no lock; caches that fill or run dry go through the depot in
 * batches. The object is placed on the first cache line of its block.
 */
#define HMB__RUNNER_BLOCK (sizeof(hmb_runner_t) + 63)

static hmb_runner_t *hmb__runner_obj_new(void) {
  unsigned cls = hmb__class_of(HMB__RUNNER_BLOCK);
  /* The front is made if need be: a thread that only creates has none. */
  void *raw = hmb__tcache_front() ? hmb__tcache_small_get(cls) : NULL;
  if (!raw && !(raw = malloc(hmb__class_size(cls))))
    return NULL;
  hmb_runner_t *r = (hmb_runner_t *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
  memset(r, 0, sizeof *r);
  r->raw = raw;
  return r;
}

static void hmb__runner_obj_free(hmb_runner_t *r) {
  unsigned cls = hmb__class_of(HMB__RUNNER_BLOCK);
  void *raw = r->raw;
  if (!hmb__tcache_small_put(cls, hmb__class_size(cls), raw))
    free(raw);
}

/*
 * Make a runner from a checked configuration; with `start` >= 0, start it
 * for `start` bytes in the same hold of the budget lock when admission
 * grants that at once (*started = 1). Opening its account registers it.
 */
static int hmb__runner_make(hmb_pool_t *pool, const hmb_runner_config_t *cfg,
                            int64_t start, hmb_runner_t **out, int *started) {
  hmb__home_t *home = hmb__home_of(pool);
  hmb_runner_t *r = hmb__runner_obj_new();
  if (!r)
    return HMB_ENOMEM;
  r->vtable.ctx = r;
  r->vtable.allocate = hmb__runner_allocate;
  r->vtable.allocate_aligned = hmb__runner_allocate_aligned;
  r->vtable.name = "runner";
  r->home = home;
  r->ledger = &home->ledger;
  r->mem = home->mem;
  r->pool_top = &home->usage;
  atomic_init(&r->shards_open, (int64_t)HMB__SHARDS + 1);
  hmb__text_clean(r->acct.name, sizeof r->acct.name, cfg->name);
  int fit = 0;
  int rc = start < 0 ? hmb__ledger_open(r->ledger, &r->acct, cfg)
                     : hmb__ledger_open_start(r->ledger, &r->acct, cfg, start,
                                              started, &fit);
  if (rc) {
    hmb__runner_obj_free(r);
    return rc;
  }
  if (fit) /* the start shrank the cache's room: fit it before any use */
    hmb__memory_fit_room(r->mem);
  *out = r;
  return 0;
}

int hmb_runner_create_sized(hmb_pool_t *pool, const hmb_runner_config_t *ucfg,
                            size_t cfg_size, hmb_runner_t **out) {
  if (out)
    *out = NULL;
  if (!pool || !ucfg || !out)
    return HMB_EINVAL;
  hmb_runner_config_t cfg;
  int rc = hmb__abi_in(&cfg, sizeof cfg, ucfg, cfg_size, sizeof cfg);
  if (rc)
    return rc;
  if (cfg.borrow_timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  if (cfg.estimate > (size_t)hmb__home_of(pool)->ledger.max_request)
    return HMB_ETOOBIG;
  return hmb__runner_make(pool, &cfg, -1, out, NULL);
}

int hmb__runner_create_started(hmb_pool_t *pool, const hmb_runner_config_t *cfg,
                               size_t start, hmb_runner_t **out, int *started) {
  *out = NULL;
  *started = 0;
  if (cfg->borrow_timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  int64_t max = hmb__home_of(pool)->ledger.max_request;
  if (cfg->estimate > (size_t)max || start > (size_t)max)
    return HMB_ETOOBIG;
  return hmb__runner_make(pool, cfg, (int64_t)start, out, started);
}

int(hmb_runner_create)(hmb_pool_t *pool, const hmb_runner_config_t *cfg,
                       hmb_runner_t **out) {
  return hmb_runner_create_sized(pool, cfg, sizeof(hmb_runner_config_t), out);
}

_Static_assert(sizeof(hmb__rshard_t) == 64,
               "a runner's thread shard is one cache line");
_Static_assert(HMB__TC_SMALL_MAX <= (size_t)HMB__SB_SPARE_MAX,
               "the quick paths' sizes fit a shard's spare field");

/* The live gauge of slot `i`: a thread shard, or HMB__SHARD_SHARED. */
static hmb__gauge_shard_t *hmb__runner_gauge(hmb_runner_t *r, unsigned i) {
  return i < HMB__SHARDS ? &r->acct.shard[i].live : &r->live_shared;
}

/* `n` of the HMB__SHARDS + 1 references are released; the last frees
 * (`closed`: the destroy that released them closed the account too). */
static void hmb__runner_release_n(hmb_runner_t *r, int n, int closed) {
  /* acq_rel: every access of the releasers happens-before the free. */
  if (atomic_fetch_sub_explicit(&r->shards_open, n, memory_order_acq_rel) != n)
    return;
  /* Fold what the shards still hold into the pool's usage gauge, so that
   * its total stays the sum over the runners that are left. */
  for (unsigned i = 0; i <= HMB__SHARD_SHARED; i++) {
    int64_t d = hmb__gauge_unfolded(hmb__runner_gauge(r, i));
    if (d)
      atomic_fetch_add_explicit(&r->pool_top->total, d, memory_order_relaxed);
  }
  if (!closed)
    hmb__ledger_close(r->ledger, &r->acct);
  hmb__runner_obj_free(r);
}

/* Detach the handle of a runner the ledger has moved to CLOSED and sealed
 * (`before`: its state before; `empty`: the shards the seal found with no
 * buffer; `closed`: the ledger took it out of the registry as well):
 * release those shards with the handle's own reference, in one step. */
static void hmb__runner_detach(hmb_runner_t *r, int before, unsigned empty,
                               int closed) {
  if (!closed) {
    int64_t nbuf = hmb__runner_buffers(r);
    if (nbuf > 0)
      hmb__log(&r->home->log, HMB_LOG_DEBUG,
               "runner #%" PRIu64 " '%s' %s detached with %" PRId64
               " live buffer(s), %" PRId64 " bytes; their budget returns as "
               "they close",
               r->acct.id, r->acct.name,
               hmb_runner_state_name(hmb__public_state(before)), nbuf,
               hmb__runner_live(r));
  }
  hmb__runner_release_n(r, 1 + (int)empty, closed);
}

void hmb_runner_destroy(hmb_runner_t *r) {
  if (!r)
    return;
  unsigned empty;
  int closed;
  int before = hmb__ledger_destroy(r->ledger, &r->acct, &empty, &r->shards_open,
                                   &closed);
  hmb__runner_detach(r, before, empty, closed);
}

int hmb__runner_finish_destroy(hmb_runner_t *r, int status) {
  int finished = 0, closed;
  unsigned empty;
  int before = hmb__ledger_finish_destroy(
      r->ledger, &r->acct, status, &finished, &empty, &r->shards_open, &closed);
  hmb__runner_detach(r, before, empty, closed);
  return finished;
}

/* ---- usage counters --------------------------------------------------------
 */

int64_t hmb__runner_live(const hmb_runner_t *r) {
  int64_t v = hmb__gauge_value(&r->live_shared);
  for (unsigned i = 0; i < HMB__SHARDS; i++)
    v += hmb__gauge_value(&r->acct.shard[i].live);
  return v;
}

int64_t hmb__runner_buffers(const hmb_runner_t *r) {
  int64_t n = atomic_load_explicit(&r->xrefs, memory_order_relaxed);
  for (unsigned i = 0; i < HMB__SHARDS; i++)
    n += hmb__ledger_counted(&r->acct, i, memory_order_relaxed);
  return n;
}

/* The same, seq_cst: the waiter's side of the idle pairing (see unbuf). */
static int64_t hmb__runner_buffers_sc(const hmb_runner_t *r) {
  int64_t n = atomic_load_explicit(&r->xrefs, memory_order_seq_cst);
  for (unsigned i = 0; i < HMB__SHARDS; i++)
    n += hmb__ledger_counted(&r->acct, i, memory_order_seq_cst);
  return n;
}

uint64_t hmb__runner_allocations(const hmb_runner_t *r) {
  uint64_t n = atomic_load_explicit(&r->allocs_shared, memory_order_relaxed);
  for (unsigned i = 0; i < HMB__SHARDS; i++)
    n += atomic_load_explicit(&r->acct.shard[i].allocs, memory_order_relaxed);
  return n;
}

int64_t hmb__runner_peak_live(const hmb_runner_t *r) {
  int64_t p = atomic_load_explicit(&r->live_top.peak, memory_order_relaxed);
  int64_t l = hmb__runner_live(r);
  if (p < l)
    p = l;
  /* live <= held at every instant, so the true peak is within peak held:
   * a recorded peak above it is the fold error (stats.h), corrected. */
  int64_t ph = atomic_load_explicit(&r->acct.peak_held, memory_order_relaxed);
  return p < ph ? p : ph;
}

/* ---- allocation ---------------------------------------------------------- */

static int hmb__not_running(const hmb_runner_t *r) {
  int s = hmb__acct_state(&r->acct);
  return s == HMB__R_CANCELLED || s == HMB__R_CANCELLED_DONE ? HMB_ECANCELED
                                                             : HMB_ESTATE;
}

/* Charge `b` bytes to the runner on shard `sh`: spare, else a borrow. */
static int hmb__runner_charge(hmb_runner_t *r, unsigned sh, int64_t b,
                              hmb__grant_t *g) {
  if (HMB__LIKELY(hmb__ledger_take_fast(&r->acct, sh, b))) {
    g->bytes = 0;
    g->local = b;
    g->waited_ns = 0;
    return 0;
  }
  return hmb__ledger_borrow(r->ledger, &r->acct, sh, b, g);
}

/* Undo the charge of `b` bytes on shard `sh`: the grant of a borrow (`g`),
 * or, for NULL, the spare the fast path took. */
static void hmb__runner_uncharge(hmb_runner_t *r, unsigned sh, int64_t b,
                                 const hmb__grant_t *g) {
  hmb__grant_t fast;
  if (!g) {
    memset(&fast, 0, sizeof fast);
    fast.local = b;
    g = &fast;
  }
  hmb__ledger_unborrow(r->ledger, &r->acct, sh, b, g);
}

/* Gauges that an update left to fold (hmb__runner_fold()): of the memory's
 * and the runner's thread shard `sh`, or of the runner's shared shard. */
enum { HMB__FOLD_MEM = 1, HMB__FOLD_LIVE = 2, HMB__FOLD_SHARED = 4 };

/* Fold what `which` names, for shard `sh`. Returns 0 (a tail call:
 * hmb__tail_zero()). */
static __attribute__((noinline)) int hmb__runner_fold(hmb_runner_t *r,
                                                      unsigned sh, int which) {
  if (which & HMB__FOLD_MEM) /* asked for by a quick path's owned count */
    hmb__memory_fold(r->mem,
                     hmb__memory_shard_of(hmb__os_thread_index_plus1()));
  if (which & HMB__FOLD_LIVE)
    hmb__gauge_fold(&r->acct.shard[sh].live, &r->live_top, r->pool_top);
  if (which & HMB__FOLD_SHARED)
    hmb__gauge_fold(&r->live_shared, &r->live_top, r->pool_top);
  return hmb__tail_zero();
}

/*
 * Whether the calling thread (`me`, its index + 1; `sh` its shard) owns the
 * runner's thread shard `sh`, claiming it when it is free and the thread
 * owns (or now claims) its own shard of the memory's counters
 * (hmb__memory_shard_of(me)): the runner's is taken only with the
 * memory's, so owning the runner's shard implies owning the thread's
 * memory shard (each is kept for the thread's life, and both pass to the
 * next holder of its index), and the quick paths check one owner word for
 * both.
 */
static __attribute__((noinline)) int
hmb__runner_shard_claim(hmb_runner_t *r, unsigned sh, unsigned me) {
  return hmb__memory_shard_mine(r->mem, hmb__memory_shard_of(me), me) &&
         hmb__shard_mine(&r->acct.shard[sh].owner, sh,
                         (me - 1u) & (HMB__SHARDS - 1u), me);
}
/* Whether it owns the runner's thread shard `sh` (and so the memory's),
 * without claiming: the quick paths' one check. */
static inline __attribute__((always_inline)) int
hmb__runner_shard_is_mine(hmb_runner_t *r, unsigned sh, unsigned me) {
  return hmb__shard_is_mine(&r->acct.shard[sh].owner, me);
}
static inline __attribute__((always_inline)) int
hmb__runner_shard_mine(hmb_runner_t *r, unsigned sh, unsigned me) {
  return HMB__LIKELY(hmb__runner_shard_is_mine(r, sh, me)) ||
         hmb__runner_shard_claim(r, sh, me);
}

/* Count the usage of a new root of `b` bytes in shard `sh` (the
 * caller's; the buffer itself is counted in its word): live bytes and
 * allocations in that thread shard when `mine` (the caller owns it; a
 * constant where the caller checked), else in the shared shard. Returns
 * the fold it needs (HMB__FOLD_LIVE or HMB__FOLD_SHARED), or 0. Relaxed:
 * counts; the runner's lifetime is ordered by the acq_rel decrement of the
 * closer (runner.h), which also orders the owner's plain stores before the
 * final fold (hmb__runner_release_n()). */
static inline __attribute__((always_inline)) int
hmb__runner_count_new(hmb_runner_t *r, unsigned sh, int mine, int64_t b) {
  hmb__rshard_t *s = &r->acct.shard[sh];
  if (mine) {
    hmb__own_inc(&s->allocs);
    return hmb__gauge_up_nofold(&s->live, b, 1) ? HMB__FOLD_LIVE : 0;
  }
  atomic_fetch_add_explicit(&r->allocs_shared, 1, memory_order_relaxed);
  return hmb__gauge_up_nofold(&r->live_shared, b, 0) ? HMB__FOLD_SHARED : 0;
}

/*
 * Charge `bytes` and create the buffer, with memory (aligned to `align`;
 * 0: the pool's) or without (a reservation). The budget is taken first, so
 * live <= held holds before the buffer exists; a failure undoes it. Inlined
 * into each caller, so that `with_memory` and `align` are constants there.
 */
static inline __attribute__((always_inline)) int
hmb__runner_new(hmb_runner_t *r, size_t bytes, size_t align, unsigned flags,
                int with_memory, hmb_buffer_t **out) {
  /* Acquire: pairs with the release store of the start grant (ledger.c),
   * so the spare it credited is visible. */
  if (HMB__UNLIKELY(
          atomic_load_explicit(&r->acct.state, memory_order_acquire) !=
          HMB__R_RUNNING))
    return hmb__not_running(r);
  /* Unsigned: a size beyond INT64_MAX is refused too, whatever the caller
   * checked (max_request is positive). */
  if (HMB__UNLIKELY(bytes > (size_t)r->ledger->max_request))
    return HMB_ETOOBIG;
  /* The thread's shard, looked up once: the handle keeps it for the close
   * (hmb__runner_freed). */
  unsigned sh = hmb__shard_index();
  int64_t b = (int64_t)bytes;
  hmb__grant_t g;
  const hmb__grant_t *gp = NULL; /* NULL: taken from spare (no grant) */
  if (HMB__UNLIKELY(!hmb__ledger_take_fast(&r->acct, sh, b))) {
    int rc = hmb__ledger_borrow(r->ledger, &r->acct, sh, b, &g);
    if (HMB__UNLIKELY(rc))
      return rc;
    gp = &g;
  }
  void *data = NULL;
  unsigned bflags = 0;
  hmb_buffer_t *buf;
  hmb__small_probe_t p;
  if (with_memory && !(flags & HMB_ALLOC_PINNED) &&
      hmb__memory_small_class(r->mem, bytes, align, &p) &&
      hmb__memory_small_pair(&p)) {
    /* A handle kept with its block (the quick path's hit, taken here when
     * the quick path could not run, so that pairs do not pile up). */
    unsigned msh;
    int mine = hmb__memory_own_shard(r->mem, 1, &msh), mfold;
    buf = hmb__memory_pair_take(r->mem, bytes, &p, msh, mine, &mfold);
    if (HMB__UNLIKELY(mfold))
      hmb__memory_fold(r->mem, hmb__memory_slot(msh, mine));
    hmb__buffer_root_init_pair(buf, bytes, 0, sh, r, &hmb__runner_ops);
    goto counted;
  }
  if (with_memory) {
    int pinned = 0;
    data = hmb__memory_alloc(r->mem, bytes, align,
                             (flags & HMB_ALLOC_PINNED) != 0, &pinned);
    if (HMB__UNLIKELY(!data)) {
      hmb__runner_uncharge(r, sh, b, gp);
      return HMB_ENOMEM;
    }
    bflags = pinned ? HMB__BUF_PINNED : 0;
  } else {
    bflags = HMB__BUF_RESERVATION;
  }
  buf = hmb__buffer_root(data, bytes, bflags, sh, r, &hmb__runner_ops);
  if (HMB__UNLIKELY(!buf)) {
    if (data)
      hmb__memory_free(r->mem, data, bytes);
    hmb__runner_uncharge(r, sh, b, gp);
    return HMB_ENOMEM;
  }
counted:
  if (HMB__UNLIKELY(!hmb__ledger_count(&r->acct, sh))) {
    /* The shard's count is full: the buffer holds a runner reference of
     * its own (runner.h). Relaxed: the handle's reference, held by the
     * caller, keeps the runner alive meanwhile. */
    atomic_fetch_add_explicit(&r->shards_open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->xrefs, 1, memory_order_relaxed);
    buf->flags = (uint16_t)(buf->flags | HMB__BUF_XREF);
  }
  int fold = hmb__runner_count_new(
      r, sh, hmb__runner_shard_mine(r, sh, hmb__os_thread_index_plus1()), b);
  if (HMB__UNLIKELY(fold))
    hmb__runner_fold(r, sh, fold);
  *out = buf;
  return 0;
}

/*
 * The common case of hmb__runner_new(): a pageable block of a size the
 * calling thread's cache holds, a handle in that cache, and bytes the
 * shard's spare covers. Every condition is checked before anything is
 * taken, so it does all or nothing (NULL: nothing changed; the caller goes
 * the full way, which checks again). It makes no call, so that an entry
 * point with it inline needs no stack frame on a hit. `bflags`: the
 * handle's flags (0, or HMB__BUF_PTR for the pointer API). *fold: the
 * gauges to fold (HMB__FOLD_*, for hmb__runner_fold()).
 */
static inline __attribute__((always_inline)) hmb_buffer_t *
hmb__runner_new_quick(hmb_runner_t *r, size_t bytes, size_t align,
                      unsigned bflags, int *fold) {
  hmb__small_probe_t p;
  /* The thread's index + 1 (0: none assigned yet) and its shard. */
  unsigned me = hmb__os_thread_index_plus1();
  unsigned sh = (me - 1u) & (HMB__SHARDS - 1u);
  /* Acquire: pairs with the release store of the start grant, so the
   * spare it credited is visible. max_request <= HMB_MAX_ALLOC, so the
   * unsigned compare also rejects what is beyond HMB_MAX_ALLOC. The thread
   * owns its shard of the runner's counters, and so of the memory's (a
   * thread without an index matches no owner; the full path, which its
   * first allocation on the runner takes, claims the shards). */
  if (HMB__UNLIKELY(
          atomic_load_explicit(&r->acct.state, memory_order_acquire) !=
              HMB__R_RUNNING ||
          bytes > (size_t)r->ledger->max_request ||
          !hmb__runner_shard_is_mine(r, sh, me) ||
          !hmb__memory_small_class(r->mem, bytes, align, &p)))
    return NULL;
  int mem_fold;
  hmb_buffer_t *buf;
  int pair = hmb__memory_small_pair_quick(&p);
  if (HMB__LIKELY(pair > 0)) {
    /* A handle with its block, placed for this alignment: one pop. */
    if (HMB__UNLIKELY(!hmb__ledger_take_counted(&r->acct, sh, (int64_t)bytes)))
      return NULL;
    buf = hmb__memory_pair_take(r->mem, bytes, &p, hmb__memory_shard_of(me), 1,
                                &mem_fold);
    hmb__buffer_root_init_pair(buf, bytes, bflags, sh, r, &hmb__runner_ops);
  } else {
    /* A head pair of another alignment: the full path splits it (a call,
     * which would give this path a frame). */
    if (HMB__UNLIKELY(pair < 0 || !hmb__memory_small_block(&p) ||
                      !hmb__tcache_obj_ready(p.f) ||
                      !hmb__ledger_take_counted(&r->acct, sh, (int64_t)bytes)))
      return NULL;
    void *data = hmb__memory_small_take(r->mem, bytes, &p,
                                        hmb__memory_shard_of(me), 1, &mem_fold);
    buf = hmb__tcache_obj_pop(p.f);
    hmb__buffer_root_init_block(buf, data, bytes, bflags, sh, r,
                                &hmb__runner_ops);
  }
  *fold = (mem_fold ? HMB__FOLD_MEM : 0) |
          hmb__runner_count_new(r, sh, 1, (int64_t)bytes);
  return buf;
}

static __attribute__((noinline)) int
hmb__runner_allocate_full(hmb_runner_t *r, size_t bytes, size_t align,
                          unsigned flags, hmb_buffer_t **out) {
  return hmb__runner_new(r, bytes, align, flags, 1, out);
}

/* The quick path of an allocation entry point, inline: on a hit it returns
 * (a tail call when a gauge must be folded); else the entry point goes on
 * to its full path. */
#define HMB__RUNNER_ALLOC_QUICK(r, bytes, align, flags, out)                   \
  do {                                                                         \
    if (HMB__LIKELY((flags) == 0)) {                                           \
      int fold_;                                                               \
      hmb_buffer_t *b_ =                                                       \
          hmb__runner_new_quick((r), (bytes), (align), 0, &fold_);             \
      if (HMB__LIKELY(b_ != NULL)) {                                           \
        *(out) = b_;                                                           \
        return HMB__UNLIKELY(fold_) ? hmb__runner_fold((r), b_->shard, fold_)  \
                                    : 0;                                       \
      }                                                                        \
    }                                                                          \
  } while (0)

static int hmb__runner_allocate(void *ctx, size_t bytes, unsigned flags,
                                hmb_buffer_t **out) {
  HMB__RUNNER_ALLOC_QUICK((hmb_runner_t *)ctx, bytes, 0, flags, out);
  return hmb__runner_allocate_full(ctx, bytes, 0, flags, out);
}

int hmb__runner_allocate_aligned(void *ctx, size_t bytes, size_t align,
                                 unsigned flags, hmb_buffer_t **out) {
  HMB__RUNNER_ALLOC_QUICK((hmb_runner_t *)ctx, bytes, align, flags, out);
  return hmb__runner_allocate_full(ctx, bytes, align, flags, out);
}

static __attribute__((noinline)) int hmb__runner_ptr_alloc_full(hmb_runner_t *r,
                                                                size_t bytes,
                                                                size_t align,
                                                                void **out) {
  *out = NULL;
  if (bytes > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  hmb_buffer_t *b = NULL;
  int rc = hmb__runner_new(r, bytes, align, 0, 1, &b);
  if (rc)
    return rc;
  hmb__buffer_mark_ptr(b);
  *out = b->data;
  return 0;
}

/* A runner's allocator, or the bound allocator with a runner bound, is
 * served here with the quick path inline (no second call, no frame on a
 * hit); the checks are those hmb_allocate_aligned() would make, so the
 * result is the same. */
int hmb_ptr_alloc(const hmb_allocator_t *alloc, size_t bytes, size_t alignment,
                  unsigned flags, void **out) {
  if (HMB__LIKELY(alloc != NULL && out != NULL && flags == 0 &&
                  alignment <= HMB_MAX_ALIGN && /* first: see allocator.c */
                  (alignment & (alignment - 1)) == 0)) {
    hmb_runner_t *r =
        alloc->allocate_aligned == hmb__runner_allocate_aligned  ? alloc->ctx
        : alloc->allocate_aligned == hmb__bound_allocate_aligned ? hmb__bound
                                                                 : NULL;
    if (HMB__LIKELY(r != NULL)) {
      size_t align = alignment ? alignment : 16;
      int fold;
      hmb_buffer_t *b =
          hmb__runner_new_quick(r, bytes, align, HMB__BUF_PTR, &fold);
      if (HMB__LIKELY(b != NULL)) {
        *out = b->data;
        return HMB__UNLIKELY(fold) ? hmb__runner_fold(r, b->shard, fold) : 0;
      }
      return hmb__runner_ptr_alloc_full(r, bytes, align, out);
    }
  }
  return hmb__ptr_alloc_any(alloc, bytes, alignment, flags, out);
}

/* Uncount a root of `bytes` counted in shard `sh`: from that thread shard
 * when `mine` (the closing thread owns it), else from the shared shard.
 * Returns the fold it needs, as hmb__runner_count_new(). */
static inline __attribute__((always_inline)) int
hmb__runner_count_gone(hmb_runner_t *r, unsigned sh, int mine, int64_t bytes) {
  if (mine)
    return hmb__gauge_down_nofold(&r->acct.shard[sh].live, bytes, 1)
               ? HMB__FOLD_LIVE
               : 0;
  return hmb__gauge_down_nofold(&r->live_shared, bytes, 0) ? HMB__FOLD_SHARED
                                                           : 0;
}

/* What a dropped buffer count asks for (hmb__runner_unbuf()): the
 * runner's release (the shard's last buffer after the seal) or a wake of
 * hmb_runner_wait_idle(). */
enum { HMB__UNBUF_RELEASE = 1, HMB__UNBUF_NOTIFY = 2 };
static __attribute__((noinline)) int
hmb__runner_unbuf_act(hmb_runner_t *r, hmb__home_t *h, int act) {
  if (act == HMB__UNBUF_RELEASE)
    hmb__runner_release_n(r, 1, 0);
  else
    hmb__home_idle_notify(h);
  return hmb__tail_zero();
}

/* Whether a waiter of hmb_runner_wait_idle() must be woken after a buffer
 * count dropped (no runner access: it may be gone). seq_cst: pairs with
 * the waiter's increment (hmb_runner_wait_idle()), which is followed by
 * its count of buffers (one of the two sees the other). */
static inline int hmb__home_idle_due(hmb__home_t *h) {
  return atomic_load_explicit(&h->idle_waiters, memory_order_seq_cst) != 0;
}

/*
 * Drop shard `sh`'s buffer count: the last access to the runner (runner.h).
 * Returns what must follow (HMB__UNBUF_*), or 0. `*h` is read before the
 * drop, since the runner may be gone after it.
 */
static inline int hmb__runner_unbuf(hmb_runner_t *r, unsigned sh,
                                    hmb__home_t **h) {
  *h = r->home;
  uint64_t old = hmb__ledger_uncount(&r->acct, sh);
  if (old & HMB__SB_SEALED)
    return hmb__sb_bufs(old) == 1 ? HMB__UNBUF_RELEASE : 0;
  return hmb__home_idle_due(*h) ? HMB__UNBUF_NOTIFY : 0;
}

/* Drop the reference of a buffer counted by one (HMB__BUF_XREF): the last
 * access to the runner, as hmb__runner_unbuf(). */
static void hmb__runner_unxref(hmb_runner_t *r) {
  hmb__home_t *h = r->home;
  /* seq_cst: the idle pairing, as the shard count's decrement. */
  atomic_fetch_sub_explicit(&r->xrefs, 1, memory_order_seq_cst);
  int notify = hmb__home_idle_due(h);
  hmb__runner_release_n(r, 1, 0);
  if (notify)
    hmb__home_idle_notify(h);
}

/* The budget and the buffer count of a root's close, after its live
 * gauge: in one step when nothing else is due, else the ledger's full
 * return, then the count (`xref`: the buffer's own reference). */
static void hmb__runner_settle(hmb_runner_t *r, unsigned sh, int64_t bytes,
                               int xref) {
  hmb__home_t *h = r->home;
  if (HMB__LIKELY(!xref) && hmb__ledger_freed_counted(&r->acct, sh, bytes)) {
    if (HMB__UNLIKELY(hmb__home_idle_due(h)))
      hmb__home_idle_notify(h);
    return;
  }
  hmb__ledger_freed(r->ledger, &r->acct, sh, bytes);
  if (xref) {
    hmb__runner_unxref(r);
    return;
  }
  int act = hmb__runner_unbuf(r, sh, &h);
  if (HMB__UNLIKELY(act))
    hmb__runner_unbuf_act(r, h, act);
}

/* The rest of a root's close after its block went back: the live gauge,
 * the budget, the buffer count. */
static void hmb__runner_gone(hmb_runner_t *r, unsigned sh, int64_t bytes,
                             int xref) {
  int fold = hmb__runner_count_gone(
      r, sh, hmb__runner_shard_is_mine(r, sh, hmb__os_thread_index_plus1()),
      bytes);
  if (HMB__UNLIKELY(fold))
    hmb__runner_fold(r, sh, fold);
  hmb__runner_settle(r, sh, bytes, xref);
}

static void hmb__runner_freed(void *owner, hmb_buffer_t *b) {
  hmb_runner_t *r = owner;
  /* The shard the buffer was counted in at its allocation (no second
   * thread-index lookup): its spare goes back where it was taken,
   * whichever thread closes it, and its live bytes too when the closer owns
   * that shard (else to the shared one); the memory layer counts the free
   * in the closer's own memory shard or its shared one. */
  unsigned sh = b->shard;
  if (b->data && hmb__memory_free(r->mem, b->data, b->size) != 0)
    hmb__log(&r->home->log, HMB_LOG_ERROR,
             "buffer %p: block %p (%zu bytes) is not a live block of the "
             "pool's memory: not freed",
             (void *)b, b->data, b->size);
  hmb__runner_gone(r, sh, (int64_t)b->size, (b->flags & HMB__BUF_XREF) != 0);
}

/* The close of a root's last reference that hmb__runner_close_root()
 * began: the folds `fold` asks for, then the budget and the buffer count
 * (`tried`: the combined step was tried and did not apply). Returns 0. */
static __attribute__((noinline)) int
hmb__runner_closed_rest(hmb_runner_t *r, unsigned sh, int64_t bytes, int fold,
                        int tried) {
  if (fold)
    hmb__runner_fold(r, sh, fold);
  if (!tried) {
    hmb__runner_settle(r, sh, bytes, 0);
    return hmb__tail_zero();
  }
  hmb__ledger_freed(r->ledger, &r->acct, sh, bytes);
  hmb__home_t *h;
  int act = hmb__runner_unbuf(r, sh, &h);
  if (act)
    hmb__runner_unbuf_act(r, h, act);
  return hmb__tail_zero();
}

/* The full way of a root's last close (hmb__runner_close_root()): a
 * function of its own, so that the quick path's every exit is a return or
 * a tail call. */
static __attribute__((noinline)) int hmb__runner_close_full(hmb_runner_t *r,
                                                            hmb_buffer_t *b) {
  hmb__runner_freed(r, b);
  return hmb__buffer_root_end(b);
}

/*
 * A root's last close (hmb_buffer_close() through the `closed` hook, and
 * hmb_ptr_free() inline). The common case, a small
 * block the calling thread's cache has room for and its handle, no close
 * handler, counted in its shard, and the bytes kept as spare, makes no
 * call but tail calls; the rest is hmb__runner_freed() then
 * hmb__buffer_root_end(). `has_block`: the caller knows b->data is not
 * NULL (a pointer's handle). The order is theirs: block, live gauge,
 * budget with the buffer count; the handle goes back once its fields are
 * read (no handler to see it).
 */
static inline __attribute__((always_inline)) int
hmb__runner_close_root(hmb_runner_t *r, hmb_buffer_t *b, int has_block) {
  hmb__small_probe_t p;
  unsigned sh = b->shard;
  unsigned me = hmb__os_thread_index_plus1();
  /* The closing thread owns the allocation's shard of the runner's
   * counters, and so its own shard of the memory's (it allocated the
   * buffer, or took over that thread's index): a close on another thread
   * goes the full way, counting in the shared shards. */
  int pair = 0;
  if (HMB__LIKELY((has_block || b->data != NULL) && b->handler.fn == NULL &&
                  (b->flags & HMB__BUF_XREF) == 0 &&
                  hmb__runner_shard_is_mine(r, sh, me) &&
                  hmb__memory_small_kept(b->data, &p) &&
                  ((pair = hmb__tcache_pair_room(p.f, p.bytes)) ||
                   (hmb__tcache_small_room(p.f, p.cls, p.bytes) &&
                    hmb__tcache_obj_room(p.f))))) {
    int64_t bytes = (int64_t)b->size;
    unsigned msh = hmb__memory_shard_of(me);
    int fold;
    if (HMB__LIKELY(pair)) {
      /* The handle stays with its block, for the next allocation. */
      hmb__buffer_root_end_pair(b);
      fold = hmb__memory_pair_put(r->mem, b->size, &p, msh, 1, b);
    } else {
      fold = hmb__memory_small_put(r->mem, b->size, &p, msh, 1);
      hmb__buffer_root_end_quick(p.f, b);
    }
    fold = (fold ? HMB__FOLD_MEM : 0) | hmb__runner_count_gone(r, sh, 1, bytes);
    if (HMB__UNLIKELY(fold))
      return hmb__runner_closed_rest(r, sh, bytes, fold, 0);
    hmb__home_t *h = r->home; /* the runner may be gone after the step */
    if (HMB__UNLIKELY(!hmb__ledger_freed_counted_small(&r->acct, sh, bytes)))
      return hmb__runner_closed_rest(r, sh, bytes, 0, 1);
    if (HMB__UNLIKELY(hmb__home_idle_due(h)))
      return hmb__runner_unbuf_act(r, h, HMB__UNBUF_NOTIFY);
    return 0;
  }
  return hmb__runner_close_full(r, b);
}

static int hmb__runner_closed(void *owner, hmb_buffer_t *b) {
  return hmb__runner_close_root(owner, b, 0);
}

/* A runner's block whose handle has no other reference is closed here with
 * the close's quick path inline; the rest (other owners, shared handles,
 * foreign pointers) as hmb_buffer_close() of its handle (allocator.c). */
int hmb_ptr_free(void *ptr) {
  if (!ptr)
    return 0;
  hmb_buffer_t *b = hmb__ptr_buffer(ptr);
  if (HMB__LIKELY(b != NULL && b->u.root.ops == &hmb__runner_ops &&
                  hmb__buffer_drop_sole_root(b)))
    return hmb__runner_close_root(b->u.root.owner, b, 1); /* data == ptr */
  return hmb__ptr_free_any(ptr);
}

static int hmb__runner_resize(void *owner, hmb_buffer_t *b, size_t bytes) {
  hmb_runner_t *r = owner;
  if (bytes > (size_t)r->ledger->max_request)
    return HMB_ETOOBIG;
  unsigned sh = hmb__shard_index();
  int64_t delta = (int64_t)bytes - (int64_t)b->size;
  hmb__grant_t g;
  memset(&g, 0, sizeof g);
  if (delta > 0) {
    /* Acquire: as in hmb__runner_new() (the start grant's release). */
    if (atomic_load_explicit(&r->acct.state, memory_order_acquire) !=
        HMB__R_RUNNING)
      return hmb__not_running(r);
    int rc = hmb__runner_charge(r, sh, delta, &g);
    if (rc)
      return rc;
  }
  if (!hmb__memory_resize_in_place(r->mem, b->data, b->size, bytes)) {
    int pinned = 0;
    /* The block keeps the alignment it was asked with. */
    void *nd =
        hmb__memory_alloc(r->mem, bytes, hmb__memory_block_align(b->data),
                          (b->flags & HMB__BUF_PINNED) != 0, &pinned);
    if (!nd) {
      if (delta > 0)
        hmb__ledger_unborrow(r->ledger, &r->acct, sh, delta, &g);
      return HMB_ENOMEM;
    }
    memcpy(nd, b->data, bytes < b->size ? bytes : b->size);
    hmb__memory_free(r->mem, b->data, b->size);
    b->data = nd;
    *hmb__block_backptr(nd) = b;
    b->flags = (uint16_t)((b->flags & ~HMB__BUF_PINNED) |
                          (pinned ? HMB__BUF_PINNED : 0));
  }
  b->size = bytes;
  hmb__gauge_add(&r->live_shared, &r->live_top, r->pool_top, delta, 0);
  if (delta < 0)
    hmb__ledger_freed(r->ledger, &r->acct, sh, -delta);
  return 0;
}

const hmb_allocator_t *hmb_runner_allocator(hmb_runner_t *r) {
  return r ? &r->vtable : NULL;
}

static __attribute__((noinline)) int
hmb__runner_alloc_checked(hmb_runner_t *r, size_t bytes, unsigned flags,
                          hmb_buffer_t **out) {
  if (out)
    *out = NULL;
  if (!r || !out || (flags & ~(unsigned)HMB_ALLOC_PINNED))
    return HMB_EINVAL;
  if (bytes > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  return hmb__runner_new(r, bytes, 0, flags, 1, out);
}

int hmb_runner_alloc(hmb_runner_t *r, size_t bytes, unsigned flags,
                     hmb_buffer_t **out) {
  if (HMB__LIKELY(r != NULL && out != NULL))
    HMB__RUNNER_ALLOC_QUICK(r, bytes, 0, flags, out);
  return hmb__runner_alloc_checked(r, bytes, flags, out);
}

int hmb_runner_reserve(hmb_runner_t *r, size_t bytes, hmb_buffer_t **out) {
  if (out)
    *out = NULL;
  if (!r || !out || bytes == 0)
    return HMB_EINVAL;
  if (bytes > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  return hmb__runner_new(r, bytes, 0, 0, 0, out);
}

/* ---- budget calls ---------------------------------------------------------
 */

int hmb_runner_start(hmb_runner_t *r, int64_t timeout_ns) {
  if (!r)
    return HMB_EINVAL;
  return hmb_runner_start_partial(r, (size_t)r->acct.estimate, timeout_ns);
}

int hmb_runner_start_partial(hmb_runner_t *r, size_t bytes,
                             int64_t timeout_ns) {
  if (!r || timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  if (bytes > (size_t)r->ledger->max_request)
    return HMB_ETOOBIG;
  return hmb__ledger_start(r->ledger, &r->acct, (int64_t)bytes, timeout_ns);
}

int hmb_runner_grow(hmb_runner_t *r, size_t bytes, int64_t timeout_ns) {
  if (!r || timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  if (bytes > (size_t)r->ledger->max_request)
    return HMB_ETOOBIG;
  return hmb__ledger_grow(r->ledger, &r->acct, (int64_t)bytes, timeout_ns);
}

int hmb_runner_try_free(hmb_runner_t *r, size_t max_bytes, size_t *returned) {
  if (returned)
    *returned = 0;
  if (!r)
    return HMB_EINVAL;
  if (hmb__acct_state(&r->acct) == HMB__R_CLOSED)
    return HMB_ESTATE;
  int64_t t = hmb__ledger_try_free(r->ledger, &r->acct, (uint64_t)max_bytes);
  if (returned)
    *returned = (size_t)t;
  return 0;
}

int hmb_runner_set_need(hmb_runner_t *r, size_t need, size_t *returned) {
  if (returned)
    *returned = 0;
  if (!r)
    return HMB_EINVAL;
  if (need > HMB_MAX_ALLOC)
    return HMB_ETOOBIG;
  if (hmb__acct_state(&r->acct) == HMB__R_CLOSED)
    return HMB_ESTATE;
  int64_t t = hmb__ledger_set_need(r->ledger, &r->acct, (int64_t)need);
  if (returned)
    *returned = (size_t)t;
  return 0;
}

int hmb_runner_finish(hmb_runner_t *r, int status, size_t *returned) {
  if (returned)
    *returned = 0;
  if (!r)
    return HMB_EINVAL;
  int64_t x = 0;
  int rc = hmb__ledger_finish(r->ledger, &r->acct, status, &x);
  if (returned)
    *returned = (size_t)x;
  return rc;
}

int hmb_runner_cancel(hmb_runner_t *r) {
  if (!r)
    return HMB_EINVAL;
  return hmb__ledger_cancel(r->ledger, &r->acct);
}

int hmb_runner_is_cancelled(const hmb_runner_t *r) {
  if (!r)
    return 0;
  int s = hmb__acct_state(&r->acct);
  return s == HMB__R_CANCELLED || s == HMB__R_CANCELLED_DONE;
}

int hmb_runner_state(const hmb_runner_t *r) {
  return r ? hmb__public_state(hmb__acct_state(&r->acct)) : HMB_RUNNER_CLOSED;
}

int hmb_runner_wait_idle(hmb_runner_t *r, int64_t timeout_ns) {
  if (!r || timeout_ns < HMB_WAIT_FOREVER)
    return HMB_EINVAL;
  hmb__home_t *p = r->home;
  uint64_t deadline = hmb__os_deadline(timeout_ns);
  int rc = 0;
  /* seq_cst: pairs with the closers' decrement then read of idle_waiters
   * (one of the two sees the other). */
  atomic_fetch_add_explicit(&p->idle_waiters, 1, memory_order_seq_cst);
  pthread_mutex_lock(&p->idle_mu);
  while (hmb__runner_buffers_sc(r) > 0) {
    if (hmb__os_cond_wait_until(&p->idle_cond, &p->idle_mu, deadline) != 0 &&
        hmb__runner_buffers_sc(r) > 0) {
      rc = HMB_ETIMEDOUT;
      break;
    }
  }
  pthread_mutex_unlock(&p->idle_mu);
  atomic_fetch_sub_explicit(&p->idle_waiters, 1, memory_order_relaxed);
  return rc;
}

int hmb_runner_stats_sized(const hmb_runner_t *r, hmb_runner_stats_t *out,
                           size_t out_size) {
  if (!r || !out)
    return HMB_EINVAL;
  hmb_runner_stats_t st;
  memset(&st, 0, sizeof st);
  const hmb__acct_t *a = &r->acct;
  st.state = hmb__public_state(hmb__acct_state(a));
  st.priority = a->priority;
  st.id = a->id;
  st.estimate = a->estimate;
  st.real_need = atomic_load_explicit(&a->need, memory_order_relaxed);
  st.held = atomic_load_explicit(&a->held, memory_order_relaxed);
  st.peak_held = atomic_load_explicit(&a->peak_held, memory_order_relaxed);
  st.live = hmb__runner_live(r);
  st.peak_live = hmb__runner_peak_live(r);
  st.live_buffers = hmb__runner_buffers(r);
  st.borrowed = atomic_load_explicit(&a->borrowed, memory_order_relaxed);
  st.borrows = atomic_load_explicit(&a->borrows, memory_order_relaxed);
  st.allocations = hmb__runner_allocations(r);
  st.returned_early =
      atomic_load_explicit(&a->returned_early, memory_order_relaxed);
  st.returned_at_finish =
      atomic_load_explicit(&a->returned_at_finish, memory_order_relaxed);
  st.wait_ns = atomic_load_explicit(&a->wait_ns, memory_order_relaxed);
  st.spare = hmb__acct_spare(a);
  st.beyond = atomic_load_explicit(&a->beyond, memory_order_relaxed);
  st.progress = atomic_load_explicit(&a->progress, memory_order_relaxed);
  st.failed_wait_ns =
      atomic_load_explicit(&a->failed_wait_ns, memory_order_relaxed);
  return hmb__abi_out(out, out_size, &st, sizeof st,
                      offsetof(hmb_runner_stats_t, spare));
}

int(hmb_runner_stats)(const hmb_runner_t *r, hmb_runner_stats_t *out) {
  return hmb_runner_stats_sized(r, out, sizeof(hmb_runner_stats_t));
}

/* ---- thread binding --------------------------------------------------------
 */

_Thread_local hmb_runner_t *hmb__bound
    __attribute__((tls_model("initial-exec")));

hmb_runner_t *hmb_runner_bind(hmb_runner_t *r) {
  hmb_runner_t *prev = hmb__bound;
  hmb__bound = r;
  return prev;
}

hmb_runner_t *hmb_runner_bound(void) {
  return hmb__bound;
}

/* ---- the bound allocator ------------------------------------------------- */

int hmb__bound_allocate_aligned(void *ctx, size_t bytes, size_t align,
                                unsigned flags, hmb_buffer_t **out) {
  hmb_runner_t *r = hmb__bound;
  if (r)
    return hmb__runner_new(r, bytes, align, flags, 1, out);
  if (ctx) /* HMB_UNBOUND_FAIL */
    return HMB_ESTATE;
  return hmb_allocate_aligned(hmb_default_allocator(), bytes, align, flags,
                              out);
}

static int hmb__bound_allocate(void *ctx, size_t bytes, unsigned flags,
                               hmb_buffer_t **out) {
  return hmb__bound_allocate_aligned(ctx, bytes, 0, flags, out);
}

static int hmb__fail_tag; /* the FAIL mode's ctx: any non-NULL address */

static const hmb_allocator_t hmb__bound_allocators[2] = {
    {NULL, hmb__bound_allocate, "bound", hmb__bound_allocate_aligned},
    {&hmb__fail_tag, hmb__bound_allocate, "bound-or-fail",
     hmb__bound_allocate_aligned}};

const hmb_allocator_t *hmb_bound_allocator(int mode) {
  if (mode != HMB_UNBOUND_DEFAULT && mode != HMB_UNBOUND_FAIL)
    return NULL;
  return &hmb__bound_allocators[mode];
}
