/*
 * columnar_reader.c - scan threads reading columnar files under one budget.
 *
 * The shape of a Parquet/ORC scan on a GPU query engine, in miniature:
 *
 *   1. The program writes its own input into a temporary directory: a few
 *      files in a simple columnar layout (below) whose footer lists every
 *      column chunk's offset, size, row count and checksum.
 *   2. Each file is cut into byte-range splits of SPLIT_BYTES, as a query
 *      planner does. A split owns the row groups that start inside it.
 *   3. NSCAN scan threads take splits from a shared list. Per split:
 *        - a runner is created with the split length as its estimate and
 *          started (this waits until the pool grants that much budget);
 *        - the footer is read through the runner's allocator. It usually lies
 *          outside the split, and a short last split is smaller than the
 *          footer: the runner then borrows the difference from the pool;
 *        - the reader prunes columns (reads NPROJ of NCOLS), computes what it
 *          really needs and declares it with hmb_runner_set_need(): the
 *          over-claimed budget goes back to the pool at once, so another
 *          split can start while this one is still reading;
 *        - each column chunk is read into a buffer from the runner and handed
 *          to the consumer thread through a bounded queue; the runner is
 *          finished and destroyed without waiting for the consumer.
 *   4. The consumer thread checks every buffer (size, checksum, values) and
 *      closes it; that close returns the buffer's budget to the pool.
 *
 * At the end it prints each split's figures and the pool's peaks against the
 * budget, checks that every projected chunk arrived exactly once and intact,
 * that held budget never exceeded the limit and that all of it came back,
 * and prints "OK: columnar_reader".
 *
 * File layout (integers in host byte order: written and read on one machine):
 *   column chunks  rows * 8 bytes each (int64 values), row group by row group
 *   footer         header: u32 magic "HCFT", u32 ncols, u32 nrowgroups,
 *                          u32 metadata length
 *                  one 40-byte entry per chunk: u32 column, u32 row group,
 *                          u64 offset, u64 size, u64 rows, u64 checksum
 *                  key/value metadata (schema text, writer properties)
 *   tail           u64 footer length, u64 footer checksum, "HMBCOL01"
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hmb.h"

enum {
  NFILES = 3,
  NCOLS = 8,
  MAX_RG = 8,
  NPROJ = 3,
  NSCAN = 4,
  MAX_SPLITS = 32,
  MAX_ROWS = 4096,
  QUEUE_MAX = 8, /* chunks waiting for the consumer, at most */
  SPLIT_BYTES = 256 * 1024,
  POOL_LIMIT = 768 * 1024,
  HEADER_BYTES = 16,
  ENTRY_BYTES = 40,
  TAIL_BYTES = 24
};
#define FOOTER_MAGIC UINT32_C(0x54464348) /* "HCFT" */
static const char tail_magic[8] = {'H', 'M', 'B', 'C', 'O', 'L', '0', '1'};

/* The columns the query reads; the others are pruned. */
static const int projection[NPROJ] = {1, 4, 6};

/* ---- the data set: deterministic, so the consumer can check every value */

static int rowgroups_of(int file) {
  return 5 + file;
}

static uint64_t rows_of(int file, int rg) {
  return 2000 + 333 * (uint64_t)((file * 7 + rg * 3) % 5) + 17 * (uint64_t)file;
}

static size_t metadata_bytes(int file) {
  return 40000 + 6000 * (size_t)file;
}

static uint64_t value_at(int file, int col, int rg, uint64_t row) {
  uint64_t z = ((uint64_t)file << 56) ^ ((uint64_t)col << 48) ^
               ((uint64_t)rg << 40) ^ row;
  z += UINT64_C(0x9e3779b97f4a7c15); /* splitmix64 finaliser */
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static uint64_t checksum(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a */
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * UINT64_C(0x100000001b3);
  return h;
}

static void put_u32(unsigned char *p, uint32_t v) {
  memcpy(p, &v, sizeof v);
}
static void put_u64(unsigned char *p, uint64_t v) {
  memcpy(p, &v, sizeof v);
}
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

static char dir_path[256];

static void file_path(char *out, size_t len, int file) {
  snprintf(out, len, "%s/part-%d.hcol", dir_path, file);
}

/* ---- writing the input (plain malloc: this is not part of the scan) ---- */

static int write_file(int file) {
  char path[300];
  file_path(path, sizeof path, file);
  FILE *fp = fopen(path, "wb");
  if (!fp)
    return -1;
  int nrg = rowgroups_of(file);
  size_t meta = metadata_bytes(file);
  size_t flen = HEADER_BYTES + (size_t)nrg * NCOLS * ENTRY_BYTES + meta;
  unsigned char *footer = malloc(flen);
  uint64_t *values = malloc(8 * MAX_ROWS);
  int ok = footer && values;
  uint64_t off = 0;
  for (int rg = 0; ok && rg < nrg; rg++) {
    uint64_t rows = rows_of(file, rg);
    for (int col = 0; ok && col < NCOLS; col++) {
      for (uint64_t i = 0; i < rows; i++)
        values[i] = value_at(file, col, rg, i);
      size_t size = (size_t)rows * 8;
      unsigned char *e =
          footer + HEADER_BYTES + ((size_t)rg * NCOLS + col) * ENTRY_BYTES;
      put_u32(e, (uint32_t)col);
      put_u32(e + 4, (uint32_t)rg);
      put_u64(e + 8, off);
      put_u64(e + 16, size);
      put_u64(e + 24, rows);
      put_u64(e + 32, checksum(values, size));
      ok = fwrite(values, 1, size, fp) == size;
      off += size;
    }
  }
  if (ok) {
    put_u32(footer, FOOTER_MAGIC);
    put_u32(footer + 4, NCOLS);
    put_u32(footer + 8, (uint32_t)nrg);
    put_u32(footer + 12, (uint32_t)meta);
    unsigned char *m = footer + flen - meta;
    for (size_t i = 0; i < meta; i++)
      m[i] =
          (unsigned char)"schema: c0..c7 int64; writer: hmb example; "[i % 44];
    unsigned char tail[TAIL_BYTES];
    put_u64(tail, flen);
    put_u64(tail + 8, checksum(footer, flen));
    memcpy(tail + 16, tail_magic, sizeof tail_magic);
    ok = fwrite(footer, 1, flen, fp) == flen &&
         fwrite(tail, 1, sizeof tail, fp) == sizeof tail;
  }
  free(values);
  free(footer);
  return (fclose(fp) == 0 && ok) ? 0 : -1;
}

/* ---- the consumer: checks and closes what the scan threads hand over ---- */

typedef struct item {
  struct item *next;
  hmb_buffer_t *buf; /* one reference, owned by whoever holds the item */
  int file, rg, col;
  uint64_t rows, sum; /* from the footer */
} item_t;

/*
 * The hand-over queue is bounded. Buffers waiting in it still hold budget;
 * a scan thread that finds it full waits while its runner is still running.
 * Unbounded, the scan threads could finish every running split while the
 * budget sits in the queue, and the pool would then admit the next split
 * beyond the limit (it guarantees progress whenever nothing runs). With at
 * most QUEUE_MAX chunks (about 27 KiB each) queued, the budget never has to
 * be exceeded, and the example checks that it was not.
 */
static struct {
  pthread_mutex_t mu;
  pthread_cond_t nonempty, nonfull;
  item_t *head, *tail;
  int count;
  int done; /* every scan thread has finished */
} queue = {PTHREAD_MUTEX_INITIALIZER,
           PTHREAD_COND_INITIALIZER,
           PTHREAD_COND_INITIALIZER,
           NULL,
           NULL,
           0,
           0};

static int seen[NFILES][MAX_RG][NCOLS]; /* written by the consumer only */
static long consumed_bad;
static uint64_t consumed_bytes;

static void hand_over(item_t *it) {
  pthread_mutex_lock(&queue.mu);
  while (queue.count >= QUEUE_MAX)
    pthread_cond_wait(&queue.nonfull, &queue.mu);
  it->next = NULL;
  if (queue.tail)
    queue.tail->next = it;
  else
    queue.head = it;
  queue.tail = it;
  queue.count++;
  pthread_cond_signal(&queue.nonempty);
  pthread_mutex_unlock(&queue.mu);
}

static void *consumer_main(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&queue.mu);
    while (!queue.head && !queue.done)
      pthread_cond_wait(&queue.nonempty, &queue.mu);
    item_t *it = queue.head;
    if (it) {
      queue.head = it->next;
      if (!queue.head)
        queue.tail = NULL;
      queue.count--;
      pthread_cond_signal(&queue.nonfull);
    }
    pthread_mutex_unlock(&queue.mu);
    if (!it)
      return NULL;

    const unsigned char *data = hmb_buffer_data(it->buf);
    size_t size = hmb_buffer_size(it->buf);
    int good = size == it->rows * 8 && checksum(data, size) == it->sum;
    for (uint64_t i = 0; good && i < it->rows; i++)
      good = get_u64(data + 8 * i) == value_at(it->file, it->col, it->rg, i);
    if (!good) {
      fprintf(stderr, "bad chunk: file %d row group %d column %d\n", it->file,
              it->rg, it->col);
      consumed_bad++;
    }
    seen[it->file][it->rg][it->col]++;
    consumed_bytes += size;
    /* The last reference: memory is freed and the budget released now. */
    hmb_buffer_close(it->buf);
    free(it);
  }
}

/* ---- the scan threads ---------------------------------------------------- */

typedef struct split {
  int file, index;
  uint64_t start, len;
  /* results */
  int status;
  int footer_outside; /* the footer is not entirely inside this split */
  int owned;          /* row groups starting in this split */
  size_t need, returned_early, returned_at_finish;
  hmb_runner_stats_t stats;
} split_t;

static split_t splits[MAX_SPLITS];
static int nsplits;
static _Atomic int next_split;
static _Atomic int running_now, running_peak;
static hmb_pool_t *pool;

static int read_at(int fd, void *dst, size_t len, uint64_t off) {
  unsigned char *p = dst;
  while (len > 0) {
    ssize_t n = pread(fd, p, len, (off_t)off);
    if (n <= 0)
      return HMB_EFAILED;
    p += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return 0;
}

#define TRY(call)                                                              \
  do {                                                                         \
    rc = (call);                                                               \
    if (rc != 0) {                                                             \
      fprintf(stderr, "split %d of file %d: %s: %s\n", sp->index, sp->file,    \
              #call, hmb_errname(rc));                                         \
      goto out;                                                                \
    }                                                                          \
  } while (0)

/* Read one split with buffers from `alloc` (the runner's allocator). */
static int read_split(split_t *sp, hmb_runner_t *runner,
                      const hmb_allocator_t *alloc) {
  char path[300];
  file_path(path, sizeof path, sp->file);
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return HMB_EFAILED;
  hmb_buffer_t *footer = NULL;
  int rc;
  struct stat st;
  unsigned char tail[TAIL_BYTES]; /* 24 bytes: not worth a budget */
  TRY(fstat(fd, &st) == 0 ? 0 : HMB_EFAILED);
  uint64_t fsize = (uint64_t)st.st_size;
  TRY(read_at(fd, tail, sizeof tail, fsize - TAIL_BYTES));
  TRY(memcmp(tail + 16, tail_magic, 8) == 0 ? 0 : HMB_EFAILED);
  uint64_t flen = get_u64(tail), foff = fsize - TAIL_BYTES - flen;
  sp->footer_outside = foff < sp->start || foff + flen > sp->start + sp->len;

  /* The footer comes from the runner like every other buffer. For a short
   * split it is larger than the estimate: the runner borrows the rest. */
  TRY(hmb_allocate(alloc, flen, 0, &footer));
  const unsigned char *f = hmb_buffer_data(footer);
  TRY(read_at(fd, hmb_buffer_data(footer), flen, foff));
  TRY(checksum(f, flen) == get_u64(tail + 8) ? 0 : HMB_EFAILED);
  TRY(get_u32(f) == FOOTER_MAGIC && get_u32(f + 4) == NCOLS ? 0 : HMB_EFAILED);
  int nrg = (int)get_u32(f + 8);
  TRY(nrg > 0 && nrg <= MAX_RG ? 0 : HMB_EFAILED);
#define ENTRY(rg, col)                                                         \
  (f + HEADER_BYTES + ((size_t)(rg)*NCOLS + (size_t)(col)) * ENTRY_BYTES)

  /* Prune: the real need is the footer plus the projected chunks of the
   * row groups this split owns. Declare it; the over-claim goes back now. */
  int own[MAX_RG];
  size_t need = flen;
  for (int rg = 0; rg < nrg; rg++) {
    uint64_t start = get_u64(ENTRY(rg, 0) + 8);
    own[rg] = start >= sp->start && start < sp->start + sp->len;
    sp->owned += own[rg];
    for (int p = 0; own[rg] && p < NPROJ; p++)
      need += (size_t)get_u64(ENTRY(rg, projection[p]) + 16);
  }
  sp->need = need;
  TRY(hmb_runner_set_need(runner, need, &sp->returned_early));

  /* Read each projected chunk into its own buffer; the consumer closes it. */
  for (int rg = 0; rg < nrg; rg++) {
    for (int p = 0; own[rg] && p < NPROJ; p++) {
      const unsigned char *e = ENTRY(rg, projection[p]);
      item_t *it = calloc(1, sizeof *it);
      TRY(it ? 0 : HMB_ENOMEM);
      it->file = sp->file;
      it->rg = rg;
      it->col = projection[p];
      it->rows = get_u64(e + 24);
      it->sum = get_u64(e + 32);
      rc = hmb_allocate(alloc, (size_t)get_u64(e + 16), 0, &it->buf);
      if (rc == 0)
        rc = read_at(fd, hmb_buffer_data(it->buf), (size_t)get_u64(e + 16),
                     get_u64(e + 8));
      if (rc != 0) {
        if (it->buf)
          hmb_buffer_close(it->buf);
        free(it);
        TRY(rc);
      }
      hand_over(it);
    }
  }
#undef ENTRY
  rc = 0;
out:
  if (footer)
    hmb_buffer_close(footer); /* done with the metadata */
  close(fd);
  return rc;
}

static int scan_split(split_t *sp) {
  char name[32];
  snprintf(name, sizeof name, "file%d/split%d", sp->file, sp->index);
  hmb_runner_config_t cfg = {0};
  cfg.estimate = (size_t)sp->len; /* all a planner knows before reading */
  cfg.name = name;
  hmb_runner_t *runner;
  int rc = hmb_runner_create(pool, &cfg, &runner);
  if (rc)
    return rc;
  rc = hmb_runner_start(runner, HMB_WAIT_FOREVER);
  if (rc == 0) {
    int now = atomic_fetch_add(&running_now, 1) + 1;
    int peak = atomic_load(&running_peak);
    while (now > peak &&
           !atomic_compare_exchange_weak(&running_peak, &peak, now)) {
    }
    rc = read_split(sp, runner, hmb_runner_allocator(runner));
    atomic_fetch_sub(&running_now, 1);
    /* Finish without waiting for the consumer: unused budget goes back now,
     * and each buffer still queued returns its part when it is closed. */
    int frc = hmb_runner_finish(runner, rc, &sp->returned_at_finish);
    if (rc == 0)
      rc = frc;
  }
  hmb_runner_stats(runner, &sp->stats);
  hmb_runner_destroy(runner); /* buffers in the queue stay valid */
  return rc;
}

static void *scan_main(void *arg) {
  (void)arg;
  int i;
  while ((i = atomic_fetch_add(&next_split, 1)) < nsplits)
    splits[i].status = scan_split(&splits[i]);
  return NULL;
}

/* ---- main ------------------------------------------------------------------
 */

static int failures;
#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "check failed: %s\n", #cond);                            \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static void log_to_stderr(void *user, int level, const char *msg) {
  (void)user;
  fprintf(stderr, "hmb[%d]: %s\n", level, msg);
}

static void remove_input(void) {
  char path[300];
  for (int f = 0; f < NFILES; f++) {
    file_path(path, sizeof path, f);
    unlink(path);
  }
  rmdir(dir_path);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir_path, sizeof dir_path, "%s/hmb-columnar-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir_path)) {
    perror("mkdtemp");
    return 1;
  }
  uint64_t total_bytes = 0;
  for (int f = 0; f < NFILES; f++) {
    char path[300];
    struct stat st;
    file_path(path, sizeof path, f);
    if (write_file(f) != 0 || stat(path, &st) != 0) {
      fprintf(stderr, "cannot write %s\n", path);
      remove_input();
      return 1;
    }
    /* Plan the splits of this file. */
    for (uint64_t s = 0; s < (uint64_t)st.st_size; s += SPLIT_BYTES) {
      split_t *sp = &splits[nsplits];
      sp->file = f;
      sp->index = (int)(s / SPLIT_BYTES);
      sp->start = s;
      sp->len = (uint64_t)st.st_size - s < SPLIT_BYTES
                    ? (uint64_t)st.st_size - s
                    : SPLIT_BYTES;
      nsplits++;
    }
    total_bytes += (uint64_t)st.st_size;
  }
  printf("input: %d files, %" PRIu64 " bytes, %d splits of up to %d bytes in "
         "%s\n",
         NFILES, total_bytes, nsplits, SPLIT_BYTES, dir_path);

  /* One pool for the whole scan: a budget of three splits for four scan
   * threads, so admission, early release and borrowing all take part. */
  hmb_pool_config_t pcfg;
  hmb_pool_config_init(&pcfg);
  pcfg.limit = POOL_LIMIT;
  pcfg.log_fn = log_to_stderr;
  pcfg.log_level = HMB_LOG_WARN;
  int rc = hmb_pool_create(&pcfg, &pool);
  if (rc) {
    fprintf(stderr, "hmb_pool_create: %s\n", hmb_strerror(rc));
    remove_input();
    return 1;
  }

  pthread_t consumer, scan[NSCAN];
  pthread_create(&consumer, NULL, consumer_main, NULL);
  for (int i = 0; i < NSCAN; i++)
    pthread_create(&scan[i], NULL, scan_main, NULL);
  for (int i = 0; i < NSCAN; i++)
    pthread_join(scan[i], NULL);
  pthread_mutex_lock(&queue.mu);
  queue.done = 1;
  pthread_cond_broadcast(&queue.nonempty);
  pthread_mutex_unlock(&queue.mu);
  pthread_join(consumer, NULL);

  printf("%-15s %-15s %-7s %3s %9s %9s %9s %9s %9s\n", "split", "bytes",
         "footer", "rgs", "estimate", "need", "early", "borrowed", "peak-live");
  int borrowed_for_footer = 0, released = 0;
  for (int i = 0; i < nsplits; i++) {
    split_t *sp = &splits[i];
    char range[32];
    snprintf(range, sizeof range, "%" PRIu64 "+%" PRIu64, sp->start, sp->len);
    printf("file%d/split%-4d %-15s %-7s %3d %9" PRId64 " %9zu %9zu %9" PRId64
           " %9" PRId64 "\n",
           sp->file, sp->index, range,
           sp->footer_outside ? "outside" : "inside", sp->owned,
           sp->stats.estimate, sp->need, sp->returned_early, sp->stats.borrowed,
           sp->stats.peak_live);
    EXPECT(sp->status == 0);
    EXPECT(sp->stats.state == HMB_RUNNER_COMPLETED);
    EXPECT(sp->stats.peak_live <= sp->stats.peak_held);
    /* A runner never has more live than its footer plus its chunks (less
     * when the consumer closes early chunks before the last is read). */
    EXPECT(sp->stats.peak_live <= (int64_t)sp->need);
    borrowed_for_footer += sp->stats.borrowed > 0 && sp->owned == 0;
    released += sp->returned_early > 0;
  }

  hmb_pool_stats_t ps;
  hmb_memory_stats_t ms;
  hmb_pool_stats(pool, &ps);
  hmb_pool_memory_stats(pool, &ms);
  printf("budget %" PRId64 " bytes: peak held %" PRId64 ", peak live %" PRId64
         " (physical peak %" PRId64 "), peak over-commit %" PRId64 "\n",
         ps.limit, ps.peak_held, ps.peak_live_bytes, ms.pageable_peak,
         ps.peak_overcommitted);
  printf("starts %" PRIu64 " (over-committed %" PRIu64 "), borrows %" PRIu64
         " (waited %" PRIu64 "), released early %" PRIu64
         " bytes, at most %d splits running at once\n",
         ps.acquires, ps.acquire_overcommits, ps.borrows, ps.borrow_waits,
         ps.released_early, atomic_load(&running_peak));

  /* Every projected chunk exactly once, intact; nothing else was read. */
  uint64_t expect_bytes = 0;
  for (int f = 0; f < NFILES; f++)
    for (int rg = 0; rg < rowgroups_of(f); rg++)
      for (int c = 0; c < NCOLS; c++) {
        int projected =
            c == projection[0] || c == projection[1] || c == projection[2];
        EXPECT(seen[f][rg][c] == (projected ? 1 : 0));
        expect_bytes += projected ? rows_of(f, rg) * 8 : 0;
      }
  EXPECT(consumed_bad == 0);
  EXPECT(consumed_bytes == expect_bytes);
  /* The budget did its job: live bytes never exceeded held budget, and held
   * budget never exceeded the limit (the bounded queue sees to that). */
  EXPECT(ps.peak_live_bytes <= ps.peak_held);
  EXPECT(ps.peak_held <= ps.limit);
  EXPECT(ps.peak_overcommitted == 0);
  /* The mechanisms this example is about all took part. */
  EXPECT(borrowed_for_footer > 0); /* a short split borrowed for its footer */
  EXPECT(released > 0 && ps.released_early > 0); /* set-need released */
  EXPECT(ps.borrows > 0);
  /* Everything came back. */
  EXPECT(ps.held == 0 && ps.live_bytes == 0 && ps.live_buffers == 0);
  EXPECT(ps.runners == 0 && ps.running == 0);
  EXPECT(hmb_pool_destroy(pool) == 0);
  remove_input();

  if (failures) {
    fprintf(stderr, "FAILED: columnar_reader (%d checks)\n", failures);
    return 1;
  }
  printf("OK: columnar_reader (%" PRIu64 " bytes checked in %d splits)\n",
         consumed_bytes, nsplits);
  return 0;
}
