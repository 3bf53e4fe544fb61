/*
 * tcache.c - the per-thread cache of tcache.h.
 *
 * Small blocks and objects are singly linked through their first word and
 * touched only by their owner thread, so the hit path is a few loads and
 * stores. Large-block magazines are reached by other threads only through
 * the registry (evictions), so each has a mutex that its owner takes,
 * uncontended, around a push or pop.
 *
 * The depot (tcache.h) is one mutex over per-class lists, reached only by
 * a thread whose cache of a class is empty (refill) or full (spill), a
 * batch at a time; it is a leaf lock, taken with no other held.
 *
 * Thread exit: the destructor (os.h's exit hook) marks the thread's cache
 * dead first, so frees that run later in the exit sequence bypass it, then
 * empties it while holding the registry lock: a warm cache being destroyed
 * on another thread either drains this magazine first or waits for the
 * release to finish.
 */
#include "memory/tcache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memory/block.h"
#include "memory/sizeclass.h"
#include "platform/os.h"

_Static_assert(HMB__TC_SMALL_MAX == (size_t)128 * 1024,
               "HMB__TC_NCLASSES follows HMB__TC_SMALL_MAX");

struct hmb__tcache {
  hmb__tc_front_t front; /* first: the owner-only hit path */
  pthread_mutex_t lock;  /* the magazine: large[] and nlarge */
  hmb__tc_large_t large[HMB__TC_LARGE];
  unsigned nlarge;
  hmb__tcache_t *next, *prev; /* registry */
};

enum { HMB__TC_NONE = 0, HMB__TC_LIVE = 1, HMB__TC_DEAD = 2 };

static _Thread_local hmb__tcache_t *hmb__tc
    __attribute__((tls_model("initial-exec")));
/* Eight classes per power of two from 128 bytes (sizeclass.h). */
#define HMB__CS_ROW(e)                                                         \
  9u << ((e)-3), 10u << ((e)-3), 11u << ((e)-3), 12u << ((e)-3),               \
      13u << ((e)-3), 14u << ((e)-3), 15u << ((e)-3), 16u << ((e)-3)
/* Multiples of 16 up to 128, then eight classes per power of two. */
#define HMB__CS_SMALL 16, 32, 48, 64, 80, 96, 112, 128
const uint32_t hmb__tc_class_size[HMB__TC_NCLASSES] = {
    HMB__CS_SMALL,   HMB__CS_ROW(7),  HMB__CS_ROW(8),  HMB__CS_ROW(9),
    HMB__CS_ROW(10), HMB__CS_ROW(11), HMB__CS_ROW(12), HMB__CS_ROW(13),
    HMB__CS_ROW(14), HMB__CS_ROW(15), HMB__CS_ROW(16)};
_Static_assert(sizeof hmb__tc_class_size / sizeof hmb__tc_class_size[0] ==
                   HMB__TC_NCLASSES,
               "one size per class kept");

_Thread_local hmb__tc_front_t *hmb__tc_front
    __attribute__((tls_model("initial-exec")));
static _Thread_local int hmb__tc_state
    __attribute__((tls_model("initial-exec")));

static pthread_mutex_t hmb__tc_registry = PTHREAD_MUTEX_INITIALIZER;
static hmb__tcache_t *hmb__tc_all;

/* The start of a pair's block, from its data word and the block word. */
static void *hmb__tc_pair_raw(const void *obj) {
  char *data = hmb__tcache_pair_data(obj);
  return data - hmb__block_offset(*hmb__block_word_at(data));
}

static void hmb__tc_exit(void *arg) {
  hmb__tcache_t *tc = arg;
  hmb__tc_state = HMB__TC_DEAD;
  hmb__tc = NULL;
  hmb__tc_front = NULL;
  pthread_mutex_lock(&hmb__tc_registry);
  if (tc->prev)
    tc->prev->next = tc->next;
  else
    hmb__tc_all = tc->next;
  if (tc->next)
    tc->next->prev = tc->prev;
  pthread_mutex_lock(&tc->lock);
  for (unsigned i = 0; i < tc->nlarge; i++)
    tc->large[i].release(tc->large[i].owner, &tc->large[i]);
  tc->nlarge = 0;
  pthread_mutex_unlock(&tc->lock);
  pthread_mutex_unlock(&hmb__tc_registry);
  for (unsigned k = 0; k < HMB__TC_NCLASSES; k++) {
    void *p = tc->front.small[k].head;
    while (p) {
      void *n = *(void **)p;
      free(p);
      p = n;
    }
  }
  while (tc->front.objs.head) {
    void *n = *(void **)tc->front.objs.head;
    free(tc->front.objs.head);
    tc->front.objs.head = n;
  }
  for (unsigned k = 0; k < HMB__TC_NCLASSES; k++) {
    void *obj = tc->front.pair[k];
    while (obj) {
      void *n = *(void **)obj;
      free(hmb__tc_pair_raw(obj));
      free(obj);
      obj = n;
    }
  }
  pthread_mutex_destroy(&tc->lock);
  free(tc);
}

static hmb__tcache_t *hmb__tcache_make(void) {
  if (hmb__tc_state != HMB__TC_NONE)
    return NULL; /* exiting, or an earlier attempt failed */
  hmb__tcache_t *tc = calloc(1, sizeof *tc);
  if (!tc || pthread_mutex_init(&tc->lock, NULL) != 0) {
    free(tc);
    hmb__tc_state = HMB__TC_DEAD;
    return NULL;
  }
  if (hmb__os_at_thread_exit(hmb__tc_exit, tc) != 0) {
    pthread_mutex_destroy(&tc->lock);
    free(tc);
    hmb__tc_state = HMB__TC_DEAD;
    return NULL;
  }
  pthread_mutex_lock(&hmb__tc_registry);
  tc->next = hmb__tc_all;
  if (hmb__tc_all)
    hmb__tc_all->prev = tc;
  hmb__tc_all = tc;
  pthread_mutex_unlock(&hmb__tc_registry);
  hmb__tc = tc;
  hmb__tc_front = &tc->front;
  hmb__tc_state = HMB__TC_LIVE;
  return tc;
}

hmb__tcache_t *hmb__tcache(void) {
  hmb__tcache_t *tc = hmb__tc;
  return tc ? tc : hmb__tcache_make();
}

hmb__tc_front_t *hmb__tcache_front_slow(void) {
  hmb__tcache_t *tc = hmb__tcache();
  return tc ? &tc->front : NULL;
}

void hmb__tcache_pair_split(hmb__tc_front_t *f, unsigned cls) {
  void *obj = f->pair[cls];
  size_t bytes = hmb__tcache_class_size(cls);
  void *raw = hmb__tc_pair_raw(obj);
  hmb__tcache_pair_pop(f, cls, obj, bytes);
  if (f->small[cls].count < HMB__TC_SMALL_COUNT)
    hmb__tcache_small_push(f, cls, raw, bytes); /* within small_bytes */
  else
    free(raw);
  if (f->objs.count < HMB__TC_OBJS)
    hmb__tcache_obj_push(f, obj);
  else
    free(obj);
}

/* ---- the depot ---------------------------------------------------------- */

static struct {
  pthread_mutex_t lock;
  hmb__tc_small_t small[HMB__TC_NCLASSES];
  size_t bytes; /* of all small[] */
  hmb__tc_small_t objs;
} hmb__depot = {.lock = PTHREAD_MUTEX_INITIALIZER};

/*
 * Fork (hmb__os_on_fork()): the registry, every magazine and the depot are
 * held across fork(), in the order the rest of this file takes them
 * (registry, then a magazine; the depot alone). In the child only the
 * calling thread exists: the magazines of the others are released to
 * their warm caches (a release takes no lock: tcache.h), so that what
 * those caches count as cached stays exact and no mapping is left behind;
 * the calling thread keeps its own.
 */
static void hmb__tc_fork_prepare(void) {
  pthread_mutex_lock(&hmb__tc_registry);
  for (hmb__tcache_t *tc = hmb__tc_all; tc; tc = tc->next)
    pthread_mutex_lock(&tc->lock);
  pthread_mutex_lock(&hmb__depot.lock);
}
static void hmb__tc_fork_parent(void) {
  pthread_mutex_unlock(&hmb__depot.lock);
  for (hmb__tcache_t *tc = hmb__tc_all; tc; tc = tc->next)
    pthread_mutex_unlock(&tc->lock);
  pthread_mutex_unlock(&hmb__tc_registry);
}
static void hmb__tc_fork_child(void) {
  pthread_mutex_unlock(&hmb__depot.lock);
  for (hmb__tcache_t *tc = hmb__tc_all; tc; tc = tc->next) {
    if (tc != hmb__tc) {
      for (unsigned i = 0; i < tc->nlarge; i++)
        tc->large[i].release(tc->large[i].owner, &tc->large[i]);
      tc->nlarge = 0;
    }
    pthread_mutex_unlock(&tc->lock);
  }
  pthread_mutex_unlock(&hmb__tc_registry);
}
__attribute__((constructor)) static void hmb__tc_fork_register(void) {
  (void)hmb__os_on_fork(hmb__tc_fork_prepare, hmb__tc_fork_parent,
                        hmb__tc_fork_child);
}

/* Take the first min(max, count) nodes off `c`; returns the first (NULL:
 * none taken), *n how many and *last the n-th. */
static void *hmb__chain_take(hmb__tc_small_t *c, unsigned max, unsigned *n,
                             void **last) {
  unsigned k = c->count < max ? c->count : max;
  *n = k;
  if (k == 0)
    return NULL;
  void *first = c->head, *p = first;
  for (unsigned i = 1; i < k; i++)
    p = *(void **)p;
  c->head = *(void **)p;
  c->count -= k;
  *last = p;
  return first;
}

/* Put the n nodes first .. last in front of `c`. */
static void hmb__chain_put(hmb__tc_small_t *c, void *first, void *last,
                           unsigned n) {
  if (n == 0)
    return;
  *(void **)last = c->head;
  c->head = first;
  c->count += n;
}

/* From the depot's chain `d` (under its lock): one node for the caller and
 * up to `room` more in front of the thread's chain `mine`. Returns the
 * caller's node, or NULL; *moved: the nodes given to `mine`. */
static void *hmb__depot_take(hmb__tc_small_t *d, unsigned room,
                             hmb__tc_small_t *mine, unsigned *moved) {
  if (room > HMB__TC_BATCH - 1)
    room = HMB__TC_BATCH - 1;
  unsigned n;
  void *last;
  void *first = hmb__chain_take(d, room + 1, &n, &last);
  *moved = n ? n - 1 : 0;
  if (n > 1)
    hmb__chain_put(mine, *(void **)first, last, n - 1);
  return first;
}

/* To the depot's chain `d` (under its lock): up to min(HMB__TC_BATCH,
 * room) of the thread's chain `mine`; returns how many. */
static unsigned hmb__depot_give(hmb__tc_small_t *d, size_t room,
                                hmb__tc_small_t *mine) {
  unsigned n;
  void *last;
  void *first = hmb__chain_take(
      mine, room < HMB__TC_BATCH ? (unsigned)room : HMB__TC_BATCH, &n, &last);
  hmb__chain_put(d, first, last, n);
  return n;
}

void *hmb__tcache_small_refill(hmb__tc_front_t *f, unsigned cls) {
  size_t bytes = hmb__tcache_class_size(cls);
  hmb__tc_small_t *s = &f->small[cls];
  /* What the thread's cache has room for, besides the one returned. */
  unsigned room = HMB__TC_SMALL_COUNT - s->count;
  size_t broom = (HMB__TC_SMALL_BYTES - f->small_bytes) / bytes;
  if (broom < room)
    room = (unsigned)broom;
  unsigned moved;
  pthread_mutex_lock(&hmb__depot.lock);
  void *first = hmb__depot_take(&hmb__depot.small[cls], room, s, &moved);
  if (first)
    hmb__depot.bytes -= (size_t)(moved + 1) * bytes;
  pthread_mutex_unlock(&hmb__depot.lock);
  f->small_bytes += (size_t)moved * bytes;
  return first;
}

int hmb__tcache_small_spill(hmb__tc_front_t *f, unsigned cls, size_t bytes,
                            void *raw) {
  hmb__tc_small_t *s = &f->small[cls];
  pthread_mutex_lock(&hmb__depot.lock);
  size_t droom = (HMB__TC_DEPOT_BYTES - hmb__depot.bytes) / bytes;
  unsigned n = hmb__depot_give(&hmb__depot.small[cls], droom, s);
  hmb__depot.bytes += (size_t)n * bytes;
  f->small_bytes -= (size_t)n * bytes;
  int kept = 1;
  if (hmb__tcache_small_room(f, cls, bytes)) {
    hmb__tcache_small_push(f, cls, raw, bytes);
  } else if (droom > n) { /* the thread's room is in other classes */
    hmb__chain_put(&hmb__depot.small[cls], raw, raw, 1);
    hmb__depot.bytes += bytes;
  } else {
    kept = 0;
  }
  pthread_mutex_unlock(&hmb__depot.lock);
  return kept;
}

/* Objects: the same, without a byte count. */
static void *hmb__obj_refill(hmb__tc_front_t *f) {
  unsigned moved;
  pthread_mutex_lock(&hmb__depot.lock);
  void *first = hmb__depot_take(&hmb__depot.objs, HMB__TC_OBJS - f->objs.count,
                                &f->objs, &moved);
  pthread_mutex_unlock(&hmb__depot.lock);
  return first;
}

static int hmb__obj_spill(hmb__tc_front_t *f, void *obj) {
  pthread_mutex_lock(&hmb__depot.lock);
  unsigned n = hmb__depot_give(
      &hmb__depot.objs, HMB__TC_DEPOT_OBJS - hmb__depot.objs.count, &f->objs);
  pthread_mutex_unlock(&hmb__depot.lock);
  if (n == 0)
    return 0;
  hmb__tcache_obj_push(f, obj);
  return 1;
}

void hmb__tcache_depot_counts(size_t *small_bytes, unsigned *objs) {
  pthread_mutex_lock(&hmb__depot.lock);
  *small_bytes = hmb__depot.bytes;
  *objs = hmb__depot.objs.count;
  pthread_mutex_unlock(&hmb__depot.lock);
}

/* ---- objects ------------------------------------------------------------ */

void *hmb__tcache_obj_get_slow(void) {
  hmb__tc_front_t *f = HMB__TC_KEEP_SMALL ? hmb__tcache_front() : NULL;
  if (f &&
      f->objs.head) /* the cache was just made: it is empty, but be exact */
    return hmb__tcache_obj_get();
  void *obj = f ? hmb__obj_refill(f) : NULL;
  return obj ? obj : aligned_alloc(HMB__TC_OBJ_SIZE, HMB__TC_OBJ_SIZE);
}

void hmb__tcache_obj_put_slow(void *obj) {
  hmb__tc_front_t *f = HMB__TC_KEEP_SMALL ? hmb__tcache_front() : NULL;
  if (f && f->objs.count < HMB__TC_OBJS) {
    hmb__tcache_obj_put(obj);
    return;
  }
  if (!f || !hmb__obj_spill(f, obj))
    free(obj);
}

/* ---- large blocks ------------------------------------------------------- */

int hmb__tcache_large_get(hmb__tcache_t *tc, const void *owner, unsigned cls,
                          hmb__tc_large_t *out) {
  int found = 0;
  pthread_mutex_lock(&tc->lock);
  for (unsigned i = tc->nlarge; i-- > 0;) { /* the warmest first */
    if (tc->large[i].owner == owner && tc->large[i].cls == cls) {
      *out = tc->large[i];
      tc->large[i] = tc->large[--tc->nlarge];
      found = 1;
      break;
    }
  }
  pthread_mutex_unlock(&tc->lock);
  return found;
}

int hmb__tcache_large_put(hmb__tcache_t *tc, const hmb__tc_large_t *e) {
  int kept = 0;
  pthread_mutex_lock(&tc->lock);
  if (tc->nlarge < HMB__TC_LARGE) {
    tc->large[tc->nlarge++] = *e;
    kept = 1;
  }
  pthread_mutex_unlock(&tc->lock);
  return kept;
}

int hmb__tcache_large_take_any(const void *owner, hmb__tc_large_t *out) {
  int found = 0;
  pthread_mutex_lock(&hmb__tc_registry);
  for (hmb__tcache_t *tc = hmb__tc_all; tc && !found; tc = tc->next) {
    pthread_mutex_lock(&tc->lock);
    for (unsigned i = 0; i < tc->nlarge; i++) {
      if (tc->large[i].owner == owner) {
        *out = tc->large[i];
        tc->large[i] = tc->large[--tc->nlarge];
        found = 1;
        break;
      }
    }
    pthread_mutex_unlock(&tc->lock);
  }
  pthread_mutex_unlock(&hmb__tc_registry);
  return found;
}
