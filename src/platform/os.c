/*
 * os.c - POSIX implementation of os.h: page-granular mappings with any
 * power-of-two alignment (huge-page aligned and advised for large blocks),
 * remapping, parallel pre-touch, the per-thread index and exit hook, the
 * monotonic clock, and condition variables that wait on it (so that
 * timeouts are immune to wall-clock changes).
 *
 * Over-aligned mappings are made by mapping size + align and unmapping the
 * unaligned head and the tail, so the block always starts on `align` and
 * occupies exactly round_up(size, page) mapped bytes: hmb__os_unmap() can
 * then give back the same range from (ptr, size) alone.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, mremap, MADV_HUGEPAGE on glibc */
#include "platform/os.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

size_t hmb__os_page_size(void) {
  static size_t page; /* benign race: every thread stores the same value */
  size_t p = __atomic_load_n(&page, __ATOMIC_RELAXED);
  if (p == 0) {
    long v = sysconf(_SC_PAGESIZE);
    p = (v > 0 && (v & (v - 1)) == 0) ? (size_t)v : 4096;
    __atomic_store_n(&page, p, __ATOMIC_RELAXED);
  }
  return p;
}

int hmb__os_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

void *hmb__os_map(size_t size, size_t align) {
  size_t page = hmb__os_page_size();
  if (size == 0 || size > SIZE_MAX / 2)
    return NULL;
  size_t len = hmb__os_round_up(size, page);
  if (align <= page) {
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
  }
  /* Over-map, then give back the unaligned head and the tail. */
  size_t total = len + align;
  char *raw = mmap(NULL, total, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED)
    return NULL;
  char *start = (char *)hmb__os_round_up((size_t)(uintptr_t)raw, align);
  size_t head = (size_t)(start - raw);
  size_t tail = total - head - len;
  if (head)
    munmap(raw, head);
  if (tail)
    munmap(start + len, tail);
  return start;
}

void hmb__os_unmap(void *ptr, size_t size) {
  if (ptr)
    munmap(ptr, hmb__os_round_up(size, hmb__os_page_size()));
}

void *hmb__os_map_large(size_t size, int huge, int *advised) {
  if (advised)
    *advised = 0;
  if (!huge || size < HMB__OS_HUGE_PAGE)
    return hmb__os_map(size, hmb__os_page_size());
  /* On a huge-page boundary so that every whole 2 MiB of the block can be
   * one huge page; the length stays page-rounded (see os.h). */
  void *p = hmb__os_map(size, HMB__OS_HUGE_PAGE);
#ifdef MADV_HUGEPAGE
  if (p && madvise(p, size, MADV_HUGEPAGE) == 0 && advised)
    *advised = 1;
#endif
  return p;
}

void *hmb__os_remap(void *ptr, size_t old_size, size_t new_size) {
#if defined(__linux__) && defined(MREMAP_MAYMOVE)
  size_t page = hmb__os_page_size();
  void *p = mremap(ptr, hmb__os_round_up(old_size, page),
                   hmb__os_round_up(new_size, page), MREMAP_MAYMOVE);
  return p == MAP_FAILED ? NULL : p;
#else
  (void)ptr;
  (void)old_size;
  (void)new_size;
  return NULL;
#endif
}

/* ---- threads ------------------------------------------------------------ */

_Thread_local unsigned hmb__os_tindex
    __attribute__((tls_model("initial-exec")));

/* Numbers given back by exited threads: a stack under its mutex, in a
 * growing array. An allocation failure only means a number is not reused. */
static pthread_mutex_t hmb__tindex_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned *hmb__tindex_free;
static size_t hmb__tindex_nfree, hmb__tindex_cap;
static unsigned hmb__tindex_next;
static pthread_once_t hmb__tindex_once = PTHREAD_ONCE_INIT;
static pthread_key_t hmb__tindex_key;
static int hmb__tindex_key_ok;

static void hmb__tindex_exit(void *arg) {
  unsigned i = (unsigned)(uintptr_t)arg - 1u;
  /* From here on the thread owns no shard and claims none. */
  hmb__os_tindex = HMB__OS_TINDEX_EXITED;
  pthread_mutex_lock(&hmb__tindex_mu);
  if (hmb__tindex_nfree == hmb__tindex_cap) {
    size_t cap = hmb__tindex_cap ? 2 * hmb__tindex_cap : 64;
    unsigned *a = realloc(hmb__tindex_free, cap * sizeof *a);
    if (a) {
      hmb__tindex_free = a;
      hmb__tindex_cap = cap;
    }
  }
  if (hmb__tindex_nfree < hmb__tindex_cap)
    hmb__tindex_free[hmb__tindex_nfree++] = i;
  pthread_mutex_unlock(&hmb__tindex_mu);
}

/* Fork: the child finds the numbers' stack free and whole. The numbers of
 * the parent's other threads stay taken in the child (those threads do not
 * exist there, so nothing gives them back). */
__attribute__((constructor)) static void hmb__tindex_fork_guard(void) {
  (void)hmb__os_fork_guard(&hmb__tindex_mu);
}

int hmb__os_on_fork(void (*prepare)(void), void (*parent)(void),
                    void (*child)(void)) {
  return pthread_atfork(prepare, parent, child);
}

/* The mutexes of hmb__os_fork_guard(). Written by constructors only, which
 * run one at a time (the program's start, or dlopen() under the loader's
 * lock), before any thread can fork through hmb's code. */
#define HMB__FORK_GUARDS 8u
static pthread_mutex_t *hmb__fork_guards[HMB__FORK_GUARDS];
static unsigned hmb__fork_nguards;

static void hmb__fork_guards_lock(void) {
  for (unsigned i = 0; i < hmb__fork_nguards; i++)
    pthread_mutex_lock(hmb__fork_guards[i]);
}
static void hmb__fork_guards_unlock(void) {
  for (unsigned i = hmb__fork_nguards; i-- > 0;)
    pthread_mutex_unlock(hmb__fork_guards[i]);
}

int hmb__os_fork_guard(pthread_mutex_t *mu) {
  if (hmb__fork_nguards == HMB__FORK_GUARDS)
    return -1;
  if (hmb__fork_nguards == 0 &&
      hmb__os_on_fork(hmb__fork_guards_lock, hmb__fork_guards_unlock,
                      hmb__fork_guards_unlock) != 0)
    return -1;
  hmb__fork_guards[hmb__fork_nguards++] = mu;
  return 0;
}

static void hmb__tindex_init(void) {
  hmb__tindex_key_ok =
      pthread_key_create(&hmb__tindex_key, hmb__tindex_exit) == 0;
}

unsigned hmb__os_thread_index_slow(void) {
  if (hmb__os_tindex == HMB__OS_TINDEX_EXITED)
    return HMB__OS_TINDEX_EXITED - 1u; /* in its exit sequence */
  pthread_once(&hmb__tindex_once, hmb__tindex_init);
  /* The mutex is the hand-over: the last holder's stores to what it owned
   * happen before this thread's first load of them. */
  pthread_mutex_lock(&hmb__tindex_mu);
  unsigned i;
  int reused = 0;
  if (hmb__tindex_nfree > 0) {
    /* The smallest: keeps the numbers in use dense, so the shards that
     * threads alive at the same time use stay distinct. */
    size_t k = 0;
    for (size_t j = 1; j < hmb__tindex_nfree; j++)
      if (hmb__tindex_free[j] < hmb__tindex_free[k])
        k = j;
    i = hmb__tindex_free[k];
    hmb__tindex_free[k] = hmb__tindex_free[--hmb__tindex_nfree];
    reused = 1;
  } else {
    i = hmb__tindex_next++;
  }
  /* Only a number that will be given back at exit may be reused: without
   * the key (or if it cannot be set) the number stays this thread's. */
  if (!hmb__tindex_key_ok ||
      pthread_setspecific(hmb__tindex_key, (void *)(uintptr_t)(i + 1u)) != 0) {
    if (reused) { /* put it back; take a new number, never given back */
      hmb__tindex_free[hmb__tindex_nfree++] = i;
      i = hmb__tindex_next++;
    }
  }
  pthread_mutex_unlock(&hmb__tindex_mu);
  hmb__os_tindex = i + 1;
  return i;
}

static pthread_once_t hmb__exit_once = PTHREAD_ONCE_INIT;
static pthread_key_t hmb__exit_key;
static int hmb__exit_key_ok;
typedef void (*hmb__exit_fn_t)(void *);
static _Atomic(hmb__exit_fn_t) hmb__exit_fn;

static void hmb__exit_run(void *arg) {
  /* Acquire pairs with the release store below: the function is complete. */
  hmb__exit_fn_t fn = atomic_load_explicit(&hmb__exit_fn, memory_order_acquire);
  if (fn)
    fn(arg);
}

static void hmb__exit_init(void) {
  hmb__exit_key_ok = pthread_key_create(&hmb__exit_key, hmb__exit_run) == 0;
}

int hmb__os_at_thread_exit(void (*fn)(void *), void *arg) {
  pthread_once(&hmb__exit_once, hmb__exit_init);
  if (!hmb__exit_key_ok)
    return -1;
  /* One client (the memory layer) passes the same function every time.
   * Release: pairs with the acquire load in hmb__exit_run(). */
  atomic_store_explicit(&hmb__exit_fn, fn, memory_order_release);
  return pthread_setspecific(hmb__exit_key, arg);
}

/* ---- parallel pre-touch ------------------------------------------------ */

typedef struct hmb__touch_job {
  char *begin, *end;
  size_t page;
  pthread_t thread;
  int started;
} hmb__touch_job_t;

static void *hmb__touch_main(void *arg) {
  hmb__touch_job_t *j = arg;
  for (volatile char *c = j->begin; c < j->end; c += j->page)
    *c = 0;
  return NULL;
}

enum { HMB__TOUCH_MAX_THREADS = 16 };

void hmb__os_touch(void *ptr, size_t size, int threads) {
  if (!ptr || size == 0)
    return;
  size_t page = hmb__os_page_size();
  size_t pages = (size + page - 1) / page;
  if (threads <= 0)
    threads = hmb__os_cpus();
  if (threads > HMB__TOUCH_MAX_THREADS)
    threads = HMB__TOUCH_MAX_THREADS;
  if ((size_t)threads > pages)
    threads = (int)pages;
  hmb__touch_job_t jobs[HMB__TOUCH_MAX_THREADS];
  size_t per = pages / (size_t)threads, extra = pages % (size_t)threads;
  char *at = ptr, *end = (char *)ptr + size;
  for (int i = 0; i < threads; i++) {
    size_t n = per + ((size_t)i < extra ? 1 : 0);
    jobs[i].begin = at;
    at = (i == threads - 1) ? end : at + n * page;
    jobs[i].end = at;
    jobs[i].page = page;
    jobs[i].started = 0;
  }
  /* Job 0 runs on the calling thread; the others on their own threads. */
  for (int i = 1; i < threads; i++)
    jobs[i].started =
        pthread_create(&jobs[i].thread, NULL, hmb__touch_main, &jobs[i]) == 0;
  hmb__touch_main(&jobs[0]);
  for (int i = 1; i < threads; i++) {
    if (jobs[i].started)
      pthread_join(jobs[i].thread, NULL);
    else
      hmb__touch_main(&jobs[i]);
  }
}

/* ---- time -------------------------------------------------------------- */

uint64_t hmb__os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int hmb__os_cond_init(pthread_cond_t *cond) {
  pthread_condattr_t attr;
  int rc = pthread_condattr_init(&attr);
  if (rc)
    return rc;
  rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  if (!rc)
    rc = pthread_cond_init(cond, &attr);
  pthread_condattr_destroy(&attr);
  return rc;
}

int hmb__os_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *mu,
                            uint64_t deadline_ns) {
  if (deadline_ns == UINT64_MAX)
    return pthread_cond_wait(cond, mu);
  struct timespec ts;
  ts.tv_sec = (time_t)(deadline_ns / 1000000000u);
  ts.tv_nsec = (long)(deadline_ns % 1000000000u);
  int rc = pthread_cond_timedwait(cond, mu, &ts);
  return rc == ETIMEDOUT ? ETIMEDOUT : 0;
}

uint64_t hmb__os_deadline(int64_t timeout_ns) {
  if (timeout_ns < 0)
    return UINT64_MAX;
  uint64_t now = hmb__os_now_ns();
  uint64_t t = (uint64_t)timeout_ns;
  return (UINT64_MAX - now < t) ? UINT64_MAX - 1 : now + t;
}
