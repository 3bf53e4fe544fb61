/*
 * test_memory_layer.c - white-box tests of the memory layer (src/memory/)
 * and the platform helpers under it, below the budget core.
 *
 *   - block.h: the block word packs and unpacks every field, the check
 *     byte tells a block from anything else, and every block the memory
 *     layer hands out carries a valid word with its kind and the offset
 *     back to what was allocated, and a back-pointer slot it never writes;
 *     a small block's data, even a zero-byte one's, lies inside it;
 *   - sizeclass.h: every size maps to a class that serves it and is less
 *     than 1/8 larger above 128 bytes (at most 15 bytes larger below);
 *     classes are contiguous and ordered;
 *   - tcache.h: small blocks and 64-byte objects come back to the thread
 *     that freed them, within the per-class and per-thread bounds (not
 *     kept at all under AddressSanitizer); magazines of large blocks are
 *     per thread, reachable by evictions, and emptied at thread exit;
 *   - cache.h: room and cap bound what is kept, a fit restores the bound
 *     after the room shrank, a trim keeps at most what it is told;
 *   - memory.h: counters of live, physical and pinned bytes, resize in
 *     place, the self-check; the CUDA probe; the OS helpers;
 *   - os.h, platform/shard.h: thread indices are reused after a thread
 *     exits, and the thread shards it owned pass to the next holder.
 */
#define _DEFAULT_SOURCE /* mincore */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "memory/block.h"
#include "memory/cache.h"
#include "memory/memory.h"
#include "memory/sizeclass.h"
#include "memory/tcache.h"
#include "platform/cuda.h"
#include "platform/os.h"
#include "testsupport.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

static hmb__memory_t *memory_new(unsigned flags, size_t cache_bytes,
                                 int64_t room, void *pinned_base,
                                 size_t pinned_bytes,
                                 const hmb_backend_t *backend) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = (size_t)room;
  cfg.flags = flags;
  cfg.cache_bytes = cache_bytes;
  cfg.pinned_base = pinned_base;
  cfg.pinned_bytes = pinned_bytes;
  cfg.backend = backend;
  hmb__memory_t *m = NULL;
  assert_int_equal(hmb__memory_create(&cfg, room, &m), 0);
  assert_non_null(m);
  return m;
}

static hmb_memory_stats_t mstats(hmb__memory_t *m) {
  hmb_memory_stats_t st;
  hmb__memory_stats(m, &st);
  return st;
}

static void assert_memory_sound(hmb__memory_t *m) {
  char why[128] = "";
  if (hmb__memory_check(m, why, sizeof why) != 0)
    fail_msg("memory self-check: %s", why);
}

/* ---- block.h ------------------------------------------------------------- */

static void test_block_word_round_trip(void **state) {
  (void)state;
  const size_t offsets[] = {16, 64, 256, 4096, 65536, 0xFFFFFFu};
  const size_t aligns[] = {1, 16, 64, 4096, 65536};
  const unsigned kinds[] = {HMB__BLOCK_SMALL, HMB__BLOCK_LARGE,
                            HMB__BLOCK_PINNED, HMB__BLOCK_CUSTOM};
  const unsigned classes[] = {0, 1, 87, 447, HMB__BLOCK_NOCLASS};
  for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++)
    for (size_t k = 0; k < 4; k++)
      for (size_t c = 0; c < sizeof classes / sizeof classes[0]; c++)
        for (int pinned = 0; pinned < 2; pinned++)
          for (int huge = 0; huge < 2; huge++) {
            size_t al = aligns[(o + c) % 5];
            uint64_t w = hmb__block_word(offsets[o], kinds[k], pinned, huge,
                                         classes[c], al);
            assert_int_equal(hmb__block_align(w), al);
            assert_true(hmb__block_valid(w));
            assert_int_equal(hmb__block_offset(w), offsets[o]);
            assert_int_equal(hmb__block_kind_of(w), kinds[k]);
            assert_int_equal(hmb__block_pinned(w), pinned);
            assert_int_equal(hmb__block_huge(w), huge);
            assert_int_equal(hmb__block_class(w), classes[c]);
          }
  /* Anything without the check byte is not a block word. */
  assert_false(hmb__block_valid(0));
  assert_false(hmb__block_valid(UINT64_MAX));
  assert_false(hmb__block_valid(UINT64_C(0x00B7000000000000)));
  /* The prefix: max(16, alignment). */
  assert_int_equal(hmb__prefix_for(1), 16);
  assert_int_equal(hmb__prefix_for(16), 16);
  assert_int_equal(hmb__prefix_for(64), 64);
  assert_int_equal(hmb__prefix_for(4096), 4096);
  /* The slots sit right before the data. */
  uint64_t buf[4];
  void *data = &buf[2];
  assert_ptr_equal(hmb__block_word_at(data), &buf[0]);
  assert_ptr_equal((void *)hmb__block_backptr(data), (void *)&buf[1]);
  assert_ptr_equal((const void *)hmb__block_backptr_c(data), (void *)&buf[1]);
}

static int fail_alloc(void *ctx, size_t size, size_t align, int pp, void **ptr,
                      int *pinned) {
  (void)ctx;
  (void)pp;
  if (posix_memalign(ptr, align, size) != 0)
    return HMB_ENOMEM;
  *pinned = pp; /* it says pinned when asked */
  return 0;
}
static void plain_free(void *ctx, void *ptr, size_t size, int pinned) {
  (void)ctx;
  (void)size;
  (void)pinned;
  free(ptr);
}

/* Every block carries a valid word: its kind, the offset back to the start
 * of what was allocated, its alignment; the back-pointer slot is the
 * caller's and survives until the block is freed. */
static void test_block_prefix_of_every_kind(void **state) {
  (void)state;
  enum { CAP = 1 << 20 };
  void *region = NULL;
  assert_int_equal(posix_memalign(&region, 4096, CAP), 0);
  hmb__memory_t *m = memory_new(0, 0, 64 << 20, region, CAP, NULL);
  hmb_backend_t be = {NULL, fail_alloc, plain_free};
  hmb__memory_t *mc = memory_new(0, 0, 64 << 20, NULL, 0, &be);
  struct {
    hmb__memory_t *m;
    size_t size, align;
    int pinned;
    unsigned kind;
  } cases[] = {
      {m, 100, 0, 0, HMB__BLOCK_SMALL},
      {m, 100, 4096, 0, HMB__BLOCK_SMALL},
      {m, 0, 16, 0, HMB__BLOCK_SMALL},
      {m, 0, 0, 0, HMB__BLOCK_SMALL},
      {m, 0, 4096, 0, HMB__BLOCK_SMALL},
      {m, 300 * KIB, 0, 0, HMB__BLOCK_LARGE},
      {m, 300 * KIB, 16384, 0, HMB__BLOCK_LARGE},
      {m, 5000, 0, 1, HMB__BLOCK_PINNED},
      {mc, 100, 0, 0, HMB__BLOCK_CUSTOM},
      {mc, 100, 512, 1, HMB__BLOCK_CUSTOM},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int pinned = -1;
    void *d = hmb__memory_alloc(cases[i].m, cases[i].size, cases[i].align,
                                cases[i].pinned, &pinned);
    assert_non_null(d);
    size_t align = cases[i].align ? cases[i].align : 64;
    if (cases[i].kind == HMB__BLOCK_PINNED && align < 256)
      align = 256;
    assert_int_equal((uintptr_t)d % align, 0);
    uint64_t w = *hmb__block_word_at(d);
    assert_true(hmb__block_valid(w));
    assert_int_equal(hmb__block_kind_of(w), cases[i].kind);
    assert_true(hmb__block_offset(w) >= hmb__prefix_for(align) ||
                cases[i].kind != HMB__BLOCK_LARGE);
    assert_true(hmb__block_offset(w) >= HMB__PREFIX_MIN);
    /* The data, and at least one byte of it (a zero-byte block too), lie
     * inside the malloc'd block, so the handle's data pointer is a
     * reference to it for a leak checker. */
    if (cases[i].kind == HMB__BLOCK_SMALL)
      assert_true(hmb__block_offset(w) + (cases[i].size ? cases[i].size : 1) <=
                  hmb__class_size(hmb__block_class(w)));
    assert_int_equal(hmb__block_pinned(w), pinned);
    assert_int_equal(hmb__memory_block_pinned(d), pinned);
    assert_int_equal(pinned, cases[i].pinned);
    if (cases[i].kind == HMB__BLOCK_PINNED)
      assert_true((char *)d > (char *)region &&
                  (char *)d < (char *)region + CAP);
    void *sentinel = &cases[i];
    *hmb__block_backptr(d) = sentinel;
    memset(d, 0x5a, cases[i].size);
    assert_ptr_equal(*hmb__block_backptr(d), sentinel);
    assert_int_equal(hmb__memory_free(cases[i].m, d, cases[i].size), 0);
  }
  /* Not a block: refused, nothing freed. */
  uint64_t junk[4] = {0, 0, 0, 0};
  assert_int_equal(hmb__memory_free(m, &junk[2], 8), HMB_EINVAL);
  assert_memory_sound(m);
  assert_memory_sound(mc);
  hmb__memory_destroy(m);
  hmb__memory_destroy(mc);
  free(region);
}

/* ---- sizeclass.h --------------------------------------------------------- */

static void check_size(size_t s) {
  unsigned k = hmb__class_of(s);
  size_t cs = hmb__class_size(k);
  if (cs < s)
    fail_msg("size %zu: class %u serves only %zu", s, k, cs);
  if (s > 128 && (cs - s) * 8 >= s)
    fail_msg("size %zu: class %u (%zu) is 1/8 larger or more", s, k, cs);
  if (s <= 128 && cs - s > 15)
    fail_msg("size %zu: class %u (%zu) more than 15 bytes larger", s, k, cs);
  if (k > 0 && hmb__class_size(k - 1) >= s)
    fail_msg("size %zu: class %u is not the smallest that serves it", s, k);
}

static void test_sizeclass_every_size_has_a_tight_class(void **state) {
  (void)state;
  for (size_t s = 1; s <= (1u << 20); s++)
    check_size(s);
  /* Beyond: powers of two and their neighbours, up to 2^62. */
  for (unsigned e = 20; e <= 62; e++) {
    size_t p = (size_t)1 << e;
    const size_t near[] = {
        p - 1,         p,         p + 1,         p + p / 16,
        p + p / 8 - 1, p + p / 8, p + p / 8 + 1, p + p / 2 + 3};
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++)
      if (near[i] <= ((size_t)1 << 62))
        check_size(near[i]);
  }
  /* Classes are contiguous and strictly ordered: each class's largest
   * size maps back to it, the next byte to the next class. */
  for (unsigned k = 0; k < 440; k++) {
    size_t cs = hmb__class_size(k);
    assert_int_equal(hmb__class_of(cs), k);
    assert_int_equal(hmb__class_of(cs + 1), k + 1);
    assert_true(hmb__class_size(k + 1) > cs);
  }
  assert_int_equal(hmb__class_of(0), 0);
  assert_int_equal(hmb__class_size(0), 16);
  assert_int_equal(hmb__class_of(HMB__TC_SMALL_MAX), 87);
  assert_true(hmb__class_of((size_t)1 << 62) < 448);
}

/* ---- tcache.h ------------------------------------------------------------ */

static void test_tcache_small_blocks_and_objects(void **state) {
  (void)state;
  hmb__tcache_t *tc = hmb__tcache();
  assert_non_null(tc);
  assert_ptr_equal(hmb__tcache(), tc); /* one per thread */
  const unsigned cls = hmb__class_of(1000);
  const size_t bytes = hmb__class_size(cls);
  void *q;
  while ((q = hmb__tcache_small_get(cls))) /* start empty */
    free(q);
  void *a = malloc(bytes), *b = malloc(bytes);
  int kept_a = hmb__tcache_small_put(cls, bytes, a);
  int kept_b = hmb__tcache_small_put(cls, bytes, b);
  if (ts_under_asan()) {
    assert_int_equal(kept_a, 0); /* straight back to malloc, for ASan */
    assert_int_equal(kept_b, 0);
    assert_null(hmb__tcache_small_get(cls));
    free(a);
    free(b);
  } else {
    assert_int_equal(kept_a, 1);
    assert_int_equal(kept_b, 1);
    assert_ptr_equal(hmb__tcache_small_get(cls), b); /* LIFO: warm */
    assert_ptr_equal(hmb__tcache_small_get(cls), a);
    assert_null(hmb__tcache_small_get(cls));
    free(a);
    free(b);
    /* At most HMB__TC_SMALL_COUNT of one class in the thread's cache: the
     * put beyond it moves a batch to the depot and keeps the block. */
    size_t d0;
    unsigned o0;
    hmb__tcache_depot_counts(&d0, &o0);
    void *p[HMB__TC_SMALL_COUNT + 1];
    for (unsigned i = 0; i <= HMB__TC_SMALL_COUNT; i++) {
      p[i] = malloc(bytes);
      assert_int_equal(hmb__tcache_small_put(cls, bytes, p[i]), 1);
      assert_true(hmb__tc_front->small[cls].count <= HMB__TC_SMALL_COUNT);
    }
    size_t d1;
    unsigned o1;
    hmb__tcache_depot_counts(&d1, &o1);
    assert_int_equal(d1 - d0, HMB__TC_BATCH * bytes);
    assert_int_equal(hmb__tc_front->small[cls].count,
                     HMB__TC_SMALL_COUNT + 1 - HMB__TC_BATCH);
    /* Every one comes back: the thread's cache, then the depot. */
    unsigned back = 0;
    while ((q = hmb__tcache_small_get(cls))) {
      int found = 0;
      for (unsigned i = 0; i <= HMB__TC_SMALL_COUNT && !found; i++)
        found = p[i] == q;
      assert_true(found);
      back++;
      free(q);
    }
    assert_int_equal(back, HMB__TC_SMALL_COUNT + 1);
    hmb__tcache_depot_counts(&d1, &o1);
    assert_int_equal(d1, d0);
    /* At most HMB__TC_SMALL_BYTES in all in the thread's cache, whatever
     * the classes, and HMB__TC_DEPOT_BYTES in the depot: the rest goes
     * back to malloc. */
    const unsigned big = hmb__class_of(100 * KIB);
    const size_t bigb = hmb__class_size(big);
    while ((q = hmb__tcache_small_get(big)))
      free(q);
    hmb__tcache_depot_counts(&d0, &o0);
    unsigned kept = 0, refused = 0;
    for (int i = 0; i < 40; i++) { /* 4 MiB */
      void *x = malloc(bigb);
      if (hmb__tcache_small_put(big, bigb, x))
        kept++;
      else {
        refused++;
        free(x);
      }
      assert_true(hmb__tc_front->small_bytes <= HMB__TC_SMALL_BYTES);
      hmb__tcache_depot_counts(&d1, &o1);
      assert_true(d1 <= HMB__TC_DEPOT_BYTES);
    }
    assert_true(refused > 0);
    assert_true(kept * bigb <= HMB__TC_SMALL_BYTES + HMB__TC_DEPOT_BYTES - d0);
    assert_true((kept + 1) * bigb + d0 >
                HMB__TC_DEPOT_BYTES); /* the depot was filled */
    back = 0;
    while ((q = hmb__tcache_small_get(big))) {
      back++;
      free(q);
    }
    assert_int_equal(back, kept);
    /* Beyond HMB__TC_SMALL_MAX nothing is kept. */
    const unsigned huge = hmb__class_of(200 * KIB);
    void *y = malloc(hmb__class_size(huge));
    assert_int_equal(hmb__tcache_small_put(huge, hmb__class_size(huge), y), 0);
    free(y);
  }
  /* 64-byte objects, 64-aligned, reused by the thread that freed them. */
  void *o1 = hmb__tcache_obj_get();
  assert_non_null(o1);
  assert_int_equal((uintptr_t)o1 % 64, 0);
  memset(o1, 1, HMB__TC_OBJ_SIZE);
  hmb__tcache_obj_put(o1);
  void *o2 = hmb__tcache_obj_get();
  assert_non_null(o2);
  assert_int_equal((uintptr_t)o2 % 64, 0);
  if (!ts_under_asan())
    assert_ptr_equal(o2, o1);
  hmb__tcache_obj_put(o2);
  /* Beyond HMB__TC_OBJS, a batch goes to the depot, and comes back from it
   * when the thread's cache is empty. */
  enum { NO = 2 * HMB__TC_OBJS + 7 };
  static void *objs[NO];
  for (unsigned i = 0; i < NO; i++)
    assert_non_null(objs[i] = hmb__tcache_obj_get());
  size_t db0;
  unsigned dn0;
  hmb__tcache_depot_counts(&db0, &dn0);
  unsigned n0 = ts_under_asan() ? 0 : hmb__tc_front->objs.count;
  for (unsigned i = 0; i < NO; i++)
    hmb__tcache_obj_put(objs[i]);
  size_t db1;
  unsigned dn1;
  hmb__tcache_depot_counts(&db1, &dn1);
  if (ts_under_asan()) {
    assert_int_equal(dn1, dn0); /* straight back to malloc */
  } else {
    /* None went back to malloc: the thread's cache and the depot. */
    assert_true(hmb__tc_front->objs.count <= HMB__TC_OBJS);
    assert_int_equal(hmb__tc_front->objs.count + (dn1 - dn0), n0 + NO);
  }
  /* They come back; the only others are what the thread's cache and the
   * depot held before. */
  static void *again[NO];
  unsigned foreign = 0;
  for (unsigned i = 0; i < NO; i++) {
    void *o = hmb__tcache_obj_get();
    assert_non_null(o);
    int found = 0;
    for (unsigned k = 0; k < NO && !found; k++)
      found = objs[k] == o;
    foreign += !found;
    again[i] = o;
  }
  if (!ts_under_asan())
    assert_true(foreign <= n0 + dn0);
  memcpy(objs, again, sizeof objs);
  for (unsigned i = 0; i < NO; i++)
    hmb__tcache_obj_put(objs[i]);
}

typedef struct mag_thread {
  hmb__cache_t *cache;
  size_t len;
  void *raw;
  int put_done;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int may_exit;
} mag_thread_t;

/* Takes a block from the cache, gives it back (into its own magazine),
 * then waits until told to exit. */
static void *mag_main(void *arg) {
  mag_thread_t *t = arg;
  unsigned cls;
  int huge;
  t->raw = hmb__cache_get(t->cache, t->len, &cls, &huge);
  hmb__cache_put(t->cache, t->raw, cls, huge);
  pthread_mutex_lock(&t->mu);
  t->put_done = 1;
  pthread_cond_broadcast(&t->cv);
  while (!t->may_exit)
    pthread_cond_wait(&t->cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
  return NULL;
}

static void mag_start(mag_thread_t *t, pthread_t *th, hmb__cache_t *c,
                      size_t len) {
  memset(t, 0, sizeof *t);
  t->cache = c;
  t->len = len;
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  pthread_create(th, NULL, mag_main, t);
  pthread_mutex_lock(&t->mu);
  while (!t->put_done)
    pthread_cond_wait(&t->cv, &t->mu);
  pthread_mutex_unlock(&t->mu);
}

static void mag_stop(mag_thread_t *t, pthread_t th) {
  pthread_mutex_lock(&t->mu);
  t->may_exit = 1;
  pthread_cond_broadcast(&t->cv);
  pthread_mutex_unlock(&t->mu);
  pthread_join(th, NULL);
  pthread_cond_destroy(&t->cv);
  pthread_mutex_destroy(&t->mu);
}

static void test_tcache_magazines_are_per_thread(void **state) {
  (void)state;
  hmb__cache_t *c = NULL;
  assert_int_equal(hmb__cache_create(0, 64 << 20, 0, &c), 0);
  const size_t len = 300 * KIB;
  const size_t blen = hmb__cache_block_len(len);
  /* A block kept in another thread's magazine is not a hit here... */
  mag_thread_t t;
  pthread_t th;
  mag_start(&t, &th, c, len);
  hmb__cache_stats_t cs;
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, (int64_t)blen);
  unsigned cls;
  int huge;
  void *mine = hmb__cache_get(c, len, &cls, &huge);
  assert_ptr_not_equal(mine, t.raw);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.misses, 2);
  assert_int_equal(cs.hits, 0);
  /* ... but a block of this thread's magazine is (the warmest first). */
  hmb__cache_put(c, mine, cls, huge);
  assert_ptr_equal(hmb__cache_get(c, len, &cls, &huge), mine);
  hmb__cache_put(c, mine, cls, huge);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.hits, 1);
  assert_int_equal(cs.cached, (int64_t)(2 * blen));
  /* An eviction reaches the other thread's magazine too. */
  hmb__cache_trim(c, blen);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, (int64_t)blen);
  hmb__cache_trim(c, 0);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, 0);
  assert_int_equal(cs.trimmed, (uint64_t)(2 * blen));
  mag_stop(&t, th);
  /* A thread that exits gives its magazine back. */
  mag_start(&t, &th, c, len);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, (int64_t)blen);
  mag_stop(&t, th);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, 0);
  assert_int_equal(cs.trimmed, (uint64_t)(3 * blen));
  hmb__cache_destroy(c);
}

/* ---- cache.h ------------------------------------------------------------- */

static void test_cache_block_len(void **state) {
  (void)state;
  const size_t page = hmb__os_page_size();
  for (size_t s = HMB__LARGE_MIN; s < (64u << 20); s = s * 17 / 16 + 4097) {
    size_t bl = hmb__cache_block_len(s);
    assert_true(bl >= s);
    assert_int_equal(bl % page, 0);
    assert_true((bl - s) * 8 < s + 8 * page);       /* a class, then a page */
    assert_int_equal(hmb__cache_block_len(bl), bl); /* idempotent */
  }
}

/* The room and the extra cap bound what is kept; a fit restores the bound
 * after the room shrank; a trim keeps at most what it is told. */
static void test_cache_room_and_fit(void **state) {
  (void)state;
  const size_t len = 300 * KIB;
  const int64_t blen = (int64_t)hmb__cache_block_len(len);
  hmb__cache_t *c = NULL;
  assert_int_equal(hmb__cache_create(0, 5 * blen, 1, &c), 0);
  enum { N = 12 };
  void *raw[N];
  unsigned cls[N];
  int huge[N];
  for (int i = 0; i < N; i++) {
    raw[i] = hmb__cache_get(c, len, &cls[i], &huge[i]);
    assert_non_null(raw[i]);
    memset(raw[i], i, len);
  }
  hmb__cache_stats_t cs;
  for (int i = 0; i < N; i++) {
    hmb__cache_put(c, raw[i], cls[i], huge[i]);
    hmb__cache_stats(c, &cs);
    assert_true(cs.cached <= cs.cap);
    assert_int_equal(cs.cap, 5 * blen);
  }
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, 5 * blen); /* the room, in whole blocks */
  assert_int_equal(cs.rejects, N - 5);
  assert_int_equal(cs.misses, N);
  /* The room shrinks (a grant): nothing is given back until the fit. */
  hmb__cache_set_room(c, 2 * blen + 1);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cap, 2 * blen + 1);
  assert_int_equal(cs.cached, 5 * blen);
  hmb__cache_fit(c);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, 2 * blen);
  assert_int_equal(cs.trimmed, (uint64_t)(3 * blen));
  /* A room below 0 is 0. */
  hmb__cache_set_room(c, -5);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cap, 0);
  hmb__cache_fit(c);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, 0);
  /* With room again, blocks are kept and handed out as hits. */
  hmb__cache_set_room(c, 64 * blen);
  void *x = hmb__cache_get(c, len, &cls[0], &huge[0]);
  hmb__cache_put(c, x, cls[0], huge[0]);
  void *y = hmb__cache_get(c, len - 4096, &cls[1], &huge[1]); /* same class */
  assert_ptr_equal(x, y);
  assert_int_equal(cls[0], cls[1]);
  hmb__cache_put(c, y, cls[1], huge[1]);
  hmb__cache_trim(c, (size_t)blen - 1);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cached, 0);
  hmb__cache_fit(NULL); /* no cache: no-ops */
  hmb__cache_trim(NULL, 0);
  hmb__cache_destroy(c);
  hmb__cache_destroy(NULL);
  /* The extra cap. */
  assert_int_equal(hmb__cache_create((size_t)blen, 64 * blen, 0, &c), 0);
  void *a = hmb__cache_get(c, len, &cls[0], &huge[0]);
  void *b = hmb__cache_get(c, len, &cls[1], &huge[1]);
  hmb__cache_put(c, a, cls[0], huge[0]);
  hmb__cache_put(c, b, cls[1], huge[1]);
  hmb__cache_stats(c, &cs);
  assert_int_equal(cs.cap, blen);
  assert_int_equal(cs.cached, blen);
  assert_int_equal(cs.rejects, 1);
  hmb__cache_destroy(c); /* gives the kept block back (ASan/valgrind) */
}

/* ---- memory.h ------------------------------------------------------------ */

static void test_memory_counters_and_resize_in_place(void **state) {
  (void)state;
  hmb__memory_t *m = memory_new(0, 0, 64 << 20, NULL, 0, NULL);
  int pinned;
  void *s = hmb__memory_alloc(m, 1000, 0, 0, &pinned);
  void *l = hmb__memory_alloc(m, 300 * KIB, 0, 0, &pinned);
  hmb_memory_stats_t st = mstats(m);
  assert_int_equal(st.pageable_live, 1000 + 300 * KIB);
  size_t small_bytes = hmb__class_size(hmb__class_of(1000 + 64));
  size_t large_bytes = hmb__cache_block_len(
      (300 * KIB + 64 + hmb__os_page_size() - 1) & ~(hmb__os_page_size() - 1));
  assert_int_equal(st.pageable_physical, (int64_t)(small_bytes + large_bytes));
  assert_int_equal(st.pageable_peak, st.pageable_live);
  /* In place only while a fresh allocation of the new size would get the
   * same block; counters follow the size. */
  assert_int_equal(hmb__class_size(hmb__class_of(1050 + 64)), small_bytes);
  assert_int_equal(hmb__memory_resize_in_place(m, s, 1000, 1050), 1);
  assert_int_equal(mstats(m).pageable_live, 1050 + 300 * KIB);
  /* A shrink to a smaller class would keep the larger block: refused, the
   * caller moves the data to a block of the right class. */
  assert_true(hmb__class_size(hmb__class_of(10 + 64)) < small_bytes);
  assert_int_equal(hmb__memory_resize_in_place(m, s, 1050, 10), 0);
  assert_int_equal(hmb__memory_resize_in_place(m, s, 1050, 100000), 0);
  assert_int_equal(mstats(m).pageable_live, 1050 + 300 * KIB);
  size_t pg = hmb__os_page_size();
  size_t grown = 300 * KIB + pg; /* one page more */
  int same =
      hmb__cache_block_len((grown + 64 + pg - 1) & ~(pg - 1)) == large_bytes;
  assert_true(same); /* classes step by a quarter power of two */
  assert_int_equal(hmb__memory_resize_in_place(m, l, 300 * KIB, grown), 1);
  size_t lsize = grown;
  assert_int_equal(hmb__memory_resize_in_place(m, l, lsize, 4 * MIB), 0);
  assert_int_equal(hmb__memory_resize_in_place(m, l, lsize, 20 * KIB), 0);
  assert_int_equal(mstats(m).pageable_live, (int64_t)(1050 + lsize));
  assert_int_equal(mstats(m).pageable_physical,
                   (int64_t)(small_bytes + large_bytes)); /* unchanged */
  assert_int_equal(hmb__memory_free(m, s, 1050), 0);
  assert_int_equal(hmb__memory_free(m, l, lsize), 0);
  st = mstats(m);
  assert_int_equal(st.pageable_live, 0);
  assert_int_equal(st.pageable_physical, 0);
  assert_int_equal(st.cached_bytes, (int64_t)large_bytes);
  assert_memory_sound(m);
  hmb__memory_trim(m, 0);
  assert_int_equal(mstats(m).cached_bytes, 0);
  hmb__memory_destroy(m);
  hmb__memory_destroy(NULL);
}

/* A reader keeps many small buffers live at once: 100 blocks of 64 bytes
 * freed together all stay in the thread's cache, and the next 100
 * allocations of that size are served from it (the very same blocks,
 * last freed first), not from malloc. */
static void test_many_live_small_blocks_come_back_from_the_cache(void **state) {
  (void)state;
  hmb__memory_t *m = memory_new(0, 0, 64 << 20, NULL, 0, NULL);
  enum { N = 100 };
  void *p[N];
  int pinned;
  /* Start from an empty class: what earlier tests left goes to malloc. */
  void *q;
  unsigned cls = 0;
  p[0] = hmb__memory_alloc(m, 64, 0, 0, &pinned);
  cls = hmb__block_class(*hmb__block_word_at(p[0]));
  assert_int_equal(hmb__memory_free(m, p[0], 64), 0);
  while ((q = hmb__tcache_small_get(cls)))
    free(q);
  for (int i = 0; i < N; i++)
    p[i] = hmb__memory_alloc(m, 64, 0, 0, &pinned);
  for (int i = 0; i < N; i++)
    assert_int_equal(hmb__memory_free(m, p[i], 64), 0);
  assert_int_equal(mstats(m).pageable_live, 0);
  if (ts_under_asan()) { /* the cache keeps nothing under ASan (tcache.h) */
    assert_null(hmb__tcache_small_get(cls));
    assert_memory_sound(m);
    hmb__memory_destroy(m);
    return;
  }
  for (int i = N - 1; i >= 0; i--) {
    void *d = hmb__memory_alloc(m, 64, 0, 0, &pinned);
    assert_ptr_equal(d, p[i]); /* LIFO from the thread's cache */
  }
  assert_int_equal(mstats(m).pageable_live, 64 * N);
  for (int i = 0; i < N; i++)
    assert_int_equal(hmb__memory_free(m, p[i], 64), 0);
  assert_memory_sound(m);
  hmb__memory_destroy(m);
}

/* A scan thread allocates, a consumer frees: the consumer's cache fills,
 * its overflow goes to the depot in batches, and the allocating thread's
 * next allocations are served from there instead of from malloc. */
typedef struct xfree {
  hmb__memory_t *m;
  void **p;
  int n;
} xfree_t;

static void *xfree_main(void *arg) {
  xfree_t *x = arg;
  for (int i = 0; i < x->n; i++)
    assert_int_equal(hmb__memory_free(x->m, x->p[i], 64), 0);
  return NULL; /* the thread's own cache goes back to malloc as it exits */
}

static void
test_blocks_freed_on_another_thread_come_back_through_the_depot(void **state) {
  (void)state;
  hmb__memory_t *m = memory_new(0, 0, 64 << 20, NULL, 0, NULL);
  enum { N = 400 };
  static void *p[N];
  int pinned;
  p[0] = hmb__memory_alloc(m, 64, 0, 0, &pinned);
  unsigned cls = hmb__block_class(*hmb__block_word_at(p[0]));
  assert_int_equal(hmb__memory_free(m, p[0], 64), 0);
  void *q;
  while ((q = hmb__tcache_small_get(cls))) /* this class: empty here and */
    free(q);                               /* in the depot */
  static void *praw[N]; /* the blocks' starts (what the caches keep) */
  for (int i = 0; i < N; i++) {
    p[i] = hmb__memory_alloc(m, 64, 0, 0, &pinned);
    praw[i] = (char *)p[i] - hmb__block_offset(*hmb__block_word_at(p[i]));
  }
  size_t d0;
  unsigned o0;
  hmb__tcache_depot_counts(&d0, &o0);
  xfree_t x = {m, p, N};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, xfree_main, &x), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(mstats(m).pageable_live, 0);
  size_t d1;
  unsigned o1;
  hmb__tcache_depot_counts(&d1, &o1);
  size_t bytes = hmb__class_size(cls);
  if (ts_under_asan()) { /* nothing is kept under ASan */
    assert_int_equal(d1, d0);
    assert_memory_sound(m);
    hmb__memory_destroy(m);
    return;
  }
  /* The consumer moved a batch each time its cache of the class was full,
   * so it kept between HMB__TC_SMALL_COUNT - HMB__TC_BATCH + 1 and
   * HMB__TC_SMALL_COUNT, and the depot has the rest. */
  size_t moved = (d1 - d0) / bytes;
  assert_int_equal((d1 - d0) % bytes, 0);
  assert_int_equal(moved % HMB__TC_BATCH, 0);
  assert_true(moved >= N - HMB__TC_SMALL_COUNT);
  assert_true(moved <= N - (HMB__TC_SMALL_COUNT - HMB__TC_BATCH + 1));
  /* Every block the depot gave back is one the consumer freed. */
  static void *r[N];
  unsigned ours = 0;
  for (unsigned i = 0; i < moved; i++) {
    r[i] = hmb__memory_alloc(m, 64, 0, 0, &pinned);
    void *raw = (char *)r[i] - hmb__block_offset(*hmb__block_word_at(r[i]));
    for (int k = 0; k < N; k++) {
      if (praw[k] == raw) {
        ours++;
        break;
      }
    }
  }
  assert_int_equal(ours, moved);
  hmb__tcache_depot_counts(&d1, &o1);
  assert_int_equal(d1, d0);
  for (unsigned i = 0; i < moved; i++)
    assert_int_equal(hmb__memory_free(m, r[i], 64), 0);
  assert_memory_sound(m);
  hmb__memory_destroy(m);
}

static void test_memory_room_is_the_caches(void **state) {
  (void)state;
  hmb__memory_t *m = memory_new(0, 0, 8 << 20, NULL, 0, NULL);
  assert_int_equal(mstats(m).cache_cap, 8 << 20);
  int pinned;
  void *p[8];
  for (int i = 0; i < 8; i++)
    p[i] = hmb__memory_alloc(m, 300 * KIB, 0, 0, &pinned);
  for (int i = 0; i < 8; i++)
    hmb__memory_free(m, p[i], 300 * KIB);
  int64_t cached = mstats(m).cached_bytes;
  assert_true(cached >= (int64_t)(8 * 300 * KIB));
  hmb__memory_set_room(m, 1 << 20);
  assert_int_equal(mstats(m).cache_cap, 1 << 20);
  assert_int_equal(mstats(m).cached_bytes, cached); /* until the fit */
  hmb__memory_fit_room(m);
  assert_true(mstats(m).cached_bytes <= (1 << 20));
  hmb__memory_destroy(m);
  /* No cache (custom backend, or the flag): room and fit are no-ops. */
  m = memory_new(HMB_POOL_NO_CACHE, 0, 8 << 20, NULL, 0, NULL);
  hmb__memory_set_room(m, 0);
  hmb__memory_fit_room(m);
  assert_int_equal(mstats(m).cache_cap, 0);
  hmb__memory_destroy(m);
}

/* ---- the CUDA probe ------------------------------------------------------ */

static void test_cuda_probe_decided_once(void **state) {
  (void)state;
  const char *r1 = NULL, *r2 = NULL;
  int ok = hmb__cuda_probe(&r1);
  assert_int_equal(hmb__cuda_probe(&r2), ok);
  assert_ptr_equal(r1, r2);
  assert_non_null(r1);
  fprintf(stderr, "cuda built=%d usable=%d reason='%s'\n", hmb__cuda_built(),
          ok, r1);
  if (!hmb__cuda_built()) {
    assert_int_equal(ok, 0);
    assert_string_equal(r1, "built without CUDA support (HMB_WITH_CUDA=OFF)");
    assert_int_equal(hmb__cuda_is_pinned(&ok), HMB_ENOTSUP);
    char why[128] = "";
    void *base = NULL;
    assert_int_equal(hmb__cuda_region_create(4096, 0, &base, why, sizeof why),
                     HMB_ENOTSUP);
    assert_string_equal(why, r1);
  }
  if (ok)
    assert_string_equal(r1, "");
  else
    assert_true(strlen(r1) > 10);
}

/* ---- the OS helpers ------------------------------------------------------ */

typedef struct tix {
  unsigned idx[2];
} tix_t;

static void *tix_main(void *arg) {
  tix_t *t = arg;
  t->idx[0] = hmb__os_thread_index();
  t->idx[1] = hmb__os_thread_index();
  return NULL;
}

static void test_os_helpers(void **state) {
  (void)state;
  size_t page = hmb__os_page_size();
  assert_true(page >= 4096 && (page & (page - 1)) == 0);
  assert_int_equal(hmb__os_page_size(), page);
  assert_true(hmb__os_cpus() >= 1);
  /* Over-aligned mappings. */
  for (size_t al = page; al <= (4u << 20); al *= 4) {
    size_t n = (1 << 20) + 1;
    char *p = hmb__os_map(n, al);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % al, 0);
    memset(p, 1, n);
    hmb__os_unmap(p, n);
  }
  assert_null(hmb__os_map(0, page));
  assert_null(hmb__os_map(SIZE_MAX, page));
  /* Large mappings start on a huge-page boundary from 2 MiB. */
  int advised = -1;
  char *h = hmb__os_map_large(4 << 20, 1, &advised);
  assert_non_null(h);
  assert_int_equal((uintptr_t)h % HMB__OS_HUGE_PAGE, 0);
  assert_true(advised == 0 || advised == 1);
  memset(h, 3, 4 << 20);
  char *h2 = hmb__os_remap(h, 4 << 20, 6 << 20);
  if (h2) { /* Linux: grown, contents kept */
    assert_int_equal(h2[(4 << 20) - 1], 3);
    h = h2;
    hmb__os_unmap(h, 6 << 20);
  } else {
    hmb__os_unmap(h, 4 << 20);
  }
  advised = -1;
  h = hmb__os_map_large(300 * KIB, 1, &advised);
  assert_non_null(h);
  assert_int_equal(advised, 0); /* too small to advise */
  hmb__os_unmap(h, 300 * KIB);
  /* Parallel pre-touch makes every page resident. */
  size_t len = 8 << 20;
  char *p = hmb__os_map(len, page);
  assert_non_null(p);
  hmb__os_touch(p, len, 4);
  size_t pages = len / page;
  unsigned char *vec = malloc(pages);
  assert_non_null(vec);
  assert_int_equal(mincore(p, len, vec), 0);
  size_t resident = 0;
  for (size_t i = 0; i < pages; i++)
    resident += vec[i] & 1;
  assert_int_equal(resident, pages);
  free(vec);
  hmb__os_unmap(p, len);
  /* Thread indices: fixed for a thread, distinct between live threads. */
  unsigned mine = hmb__os_thread_index();
  assert_int_equal(hmb__os_thread_index(), mine);
  tix_t t;
  pthread_t th;
  pthread_create(&th, NULL, tix_main, &t);
  pthread_join(th, NULL);
  assert_int_equal(t.idx[0], t.idx[1]);
  assert_int_not_equal(t.idx[0], mine);
  /* The clock is monotonic; deadlines: < 0 means none. */
  uint64_t a = hmb__os_now_ns(), b = hmb__os_now_ns();
  assert_true(b >= a);
  assert_int_equal(hmb__os_deadline(-1), UINT64_MAX);
  assert_true(hmb__os_deadline(1000) >= b);
}

/*
 * os.h and platform/shard.h: a thread's index passes to a later thread only
 * after it exited, and what the index owned passes with it. Threads run
 * one after another get the same index (the smallest free one), so indices
 * stay as few as the threads alive; a thread shard of a memory object
 * claimed by one of them is owned by the next, which counts the frees of
 * the first one's blocks in it (plain stores), while a thread alive at the
 * same time gets another index and owns nothing of that shard. Counters
 * stay exact throughout.
 */
typedef struct own_step {
  hmb__memory_t *m;
  void *keep;           /* a block allocated by one thread, freed by another */
  unsigned idx;         /* the thread's index */
  int owned, owned_new; /* its shard was owned by it before / after */
  pthread_barrier_t *hold; /* non-NULL: wait here while alive */
} own_step_t;

static void *own_main(void *arg) {
  own_step_t *o = arg;
  o->idx = hmb__os_thread_index();
  unsigned me = o->idx + 1, sh = hmb__memory_shard_of(me);
  o->owned = hmb__memory_shard_is_mine(o->m, sh, me);
  if (o->keep) { /* free the block the thread before allocated */
    assert_int_equal(hmb__memory_free(o->m, o->keep, 100), 0);
    o->keep = NULL;
  } else {
    int pinned = 1;
    o->keep = hmb__memory_alloc(o->m, 100, 0, 0, &pinned);
    assert_non_null(o->keep);
  }
  o->owned_new = hmb__memory_shard_is_mine(o->m, sh, me);
  if (o->hold) {
    pthread_barrier_wait(o->hold);
    pthread_barrier_wait(o->hold);
  }
  return NULL;
}

static void own_run(own_step_t *o) {
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, own_main, o), 0);
  assert_int_equal(pthread_join(th, NULL), 0);
}

static void test_thread_index_and_shards_pass_to_the_next_thread(void **state) {
  (void)state;
  hmb__memory_t *m = memory_new(0, 0, 1 << 30, NULL, 0, NULL);
  own_step_t a = {.m = m};
  own_run(&a); /* allocates, claims its shard, exits */
  assert_true(a.owned_new);
  unsigned sh = hmb__memory_shard_of(a.idx + 1);
  assert_int_equal(atomic_load(&m->shard[sh].owner), a.idx + 2);
  assert_int_equal(mstats(m).pageable_live, 100);
  own_step_t b = {.m = m, .keep = a.keep};
  own_run(&b); /* the same index, and the shard with it: frees a's block */
  assert_int_equal(b.idx, a.idx);
  assert_true(b.owned && b.owned_new);
  assert_int_equal(mstats(m).pageable_live, 0);
  assert_int_equal(mstats(m).pageable_physical, 0);
  /* The free went to the owned thread shard, not the shared one. */
  assert_int_equal(hmb__gauge_value(&m->shard[sh].live), 0);
  assert_int_equal(hmb__gauge_value(&m->shard[HMB__MSHARD_SHARED].live), 0);
  /* Many threads one after another: one index for all of them. */
  for (int i = 0; i < 64; i++) {
    own_step_t c = {.m = m};
    own_run(&c);
    assert_int_equal(c.idx, a.idx);
    assert_true(c.owned && c.owned_new);
    own_step_t d = {.m = m, .keep = c.keep};
    own_run(&d);
    assert_int_equal(d.idx, a.idx);
  }
  /* A thread alive meanwhile gets another index; given a block of the
   * first one's shard to free, it does not own that shard, so the free is
   * counted in the shared shard and the sums stay exact. */
  pthread_barrier_t hold;
  pthread_barrier_init(&hold, NULL, 2);
  own_step_t e = {.m = m, .hold = &hold};
  pthread_t te;
  assert_int_equal(pthread_create(&te, NULL, own_main, &e), 0);
  pthread_barrier_wait(&hold); /* e allocated and is alive */
  own_step_t f = {.m = m};
  own_run(&f); /* allocates on its own index */
  assert_int_not_equal(f.idx, e.idx);
  /* This test's thread frees e's block: it owns no shard of this object,
   * so the free counts in the shared shard */
  int64_t shared0 = hmb__gauge_value(&m->shard[HMB__MSHARD_SHARED].live);
  assert_int_equal(hmb__memory_free(m, e.keep, 100), 0);
  assert_int_equal(hmb__gauge_value(&m->shard[HMB__MSHARD_SHARED].live),
                   shared0 - 100);
  assert_int_equal(mstats(m).pageable_live, 100); /* f's block */
  pthread_barrier_wait(&hold);
  assert_int_equal(pthread_join(te, NULL), 0);
  pthread_barrier_destroy(&hold);
  own_step_t h = {.m = m, .keep = f.keep};
  own_run(&h);
  assert_int_equal(mstats(m).pageable_live, 0);
  assert_int_equal(mstats(m).pageable_physical, 0);
  assert_memory_sound(m);
  hmb__memory_destroy(m);
}

int main(void) {
  ts_watchdog_arm("test_memory_layer", 120);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_block_word_round_trip),
      cmocka_unit_test(test_block_prefix_of_every_kind),
      cmocka_unit_test(test_sizeclass_every_size_has_a_tight_class),
      cmocka_unit_test(test_tcache_small_blocks_and_objects),
      cmocka_unit_test(test_tcache_magazines_are_per_thread),
      cmocka_unit_test(test_cache_block_len),
      cmocka_unit_test(test_cache_room_and_fit),
      cmocka_unit_test(test_memory_counters_and_resize_in_place),
      cmocka_unit_test(test_many_live_small_blocks_come_back_from_the_cache),
      cmocka_unit_test(
          test_blocks_freed_on_another_thread_come_back_through_the_depot),
      cmocka_unit_test(test_memory_room_is_the_caches),
      cmocka_unit_test(test_cuda_probe_decided_once),
      cmocka_unit_test(test_os_helpers),
      cmocka_unit_test(test_thread_index_and_shards_pass_to_the_next_thread),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  ts_watchdog_disarm();
  return rc;
}
