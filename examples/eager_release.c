/*
 * eager_release.c - closing each representation as soon as the next exists.
 *
 * A result often passes through three representations before it leaves a
 * task: the in-memory objects, a first serialization (a row encoding), and a
 * second one (a compact columnar frame). If all three stay alive until the
 * end, the task's peak is the sum of all three. Closing each as soon as the
 * next one has been built caps the peak at the largest adjacent pair.
 *
 * The program runs the same pipeline twice, each time under its own pool and
 * runner, and reads the peaks from the library's statistics (the runner's
 * peak_live and peak_held, the pool's peak_live_bytes):
 *   keep  - objects, rows and frame are all closed at the end;
 *   eager - objects are closed once the rows exist, rows once the frame does.
 * It checks that both runs produce the identical frame, that the keep peak is
 * objects + rows + frame and the eager peak max(objects + rows, rows +
 * frame), byte for byte, and prints "OK: eager_release".
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hmb.h"

enum { NRECORDS = 50000 };

/* Representation 1: the objects. */
typedef struct record {
  int64_t id;
  double price;
  int32_t quantity;
  char tag[12];
} record_t;

/* Representation 2: fixed-width rows, 8 + 8 + 4 + 12 bytes, no padding. */
enum { ROW_BYTES = 32 };

/* Representation 3: a columnar frame: ids as varint deltas, then prices,
 * then quantities as varints, then tags; followed by an 8-byte checksum. */

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static unsigned char *put_varint(unsigned char *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  *p++ = (unsigned char)v;
  return p;
}

static uint64_t fnv1a(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = UINT64_C(0xcbf29ce484222325);
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * UINT64_C(0x100000001b3);
  return h;
}

static void make_records(record_t *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    r[i].id = 1000000 + 3 * (int64_t)i + (int64_t)(i % 7);
    r[i].price = 0.25 * (double)(i % 4000);
    r[i].quantity = (int32_t)(i * 2654435761u % 1000);
    memset(r[i].tag, 0, sizeof r[i].tag);
    snprintf(r[i].tag, sizeof r[i].tag, "sku-%05zu", i % 100000);
  }
}

static void encode_rows(const record_t *r, size_t n, unsigned char *out) {
  for (size_t i = 0; i < n; i++, out += ROW_BYTES) {
    memcpy(out, &r[i].id, 8);
    memcpy(out + 8, &r[i].price, 8);
    memcpy(out + 16, &r[i].quantity, 4);
    memcpy(out + 20, r[i].tag, 12);
  }
}

/* The frame is built from the rows alone: the objects may be gone by now. */
static size_t frame_size(const unsigned char *rows, size_t n) {
  size_t size = 8; /* checksum */
  int64_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t id;
    int32_t q;
    memcpy(&id, rows + i * ROW_BYTES, 8);
    memcpy(&q, rows + i * ROW_BYTES + 16, 4);
    size +=
        varint_len((uint64_t)(id - prev)) + 8 + varint_len((uint32_t)q) + 12;
    prev = id;
  }
  return size;
}

static void encode_frame(const unsigned char *rows, size_t n,
                         unsigned char *out, size_t size) {
  unsigned char *p = out;
  int64_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t id;
    memcpy(&id, rows + i * ROW_BYTES, 8);
    p = put_varint(p, (uint64_t)(id - prev));
    prev = id;
  }
  for (size_t i = 0; i < n; i++, p += 8)
    memcpy(p, rows + i * ROW_BYTES + 8, 8);
  for (size_t i = 0; i < n; i++) {
    int32_t q;
    memcpy(&q, rows + i * ROW_BYTES + 16, 4);
    p = put_varint(p, (uint32_t)q);
  }
  for (size_t i = 0; i < n; i++, p += 12)
    memcpy(p, rows + i * ROW_BYTES + 20, 12);
  uint64_t sum = fnv1a(out, size - 8);
  memcpy(p, &sum, 8);
}

typedef struct run_result {
  size_t sizes[3]; /* objects, rows, frame */
  uint64_t frame_sum;
  hmb_runner_stats_t runner;
  hmb_pool_stats_t pool;
} run_result_t;

#define TRY(call)                                                              \
  do {                                                                         \
    rc = (call);                                                               \
    if (rc != 0) {                                                             \
      fprintf(stderr, "%s: %s\n", #call, hmb_errname(rc));                     \
      goto out;                                                                \
    }                                                                          \
  } while (0)

/* One run of the pipeline; `eager` closes each stage as soon as it can. */
static int run(int eager, run_result_t *res) {
  memset(res, 0, sizeof *res);
  hmb_pool_t *pool = NULL;
  hmb_runner_t *runner = NULL;
  hmb_buffer_t *objects = NULL, *rows = NULL, *frame = NULL;
  int rc;
  hmb_pool_config_t pcfg;
  hmb_pool_config_init(&pcfg);
  pcfg.limit = 64 << 20;
  TRY(hmb_pool_create(&pcfg, &pool));
  /* Estimate: just the objects. Everything beyond is borrowed as needed, so
   * peak_held shows what the task really had to hold. */
  hmb_runner_config_t rcfg = {0};
  rcfg.estimate = NRECORDS * sizeof(record_t);
  rcfg.name = eager ? "eager" : "keep";
  TRY(hmb_runner_create(pool, &rcfg, &runner));
  TRY(hmb_runner_start(runner, HMB_WAIT_FOREVER));
  const hmb_allocator_t *alloc = hmb_runner_allocator(runner);

  /* 1. objects */
  TRY(hmb_allocate(alloc, NRECORDS * sizeof(record_t), 0, &objects));
  make_records(hmb_buffer_data(objects), NRECORDS);
  /* 2. first serialization */
  TRY(hmb_allocate(alloc, (size_t)NRECORDS * ROW_BYTES, 0, &rows));
  encode_rows(hmb_buffer_data(objects), NRECORDS, hmb_buffer_data(rows));
  if (eager) { /* the rows exist: the objects are no longer needed */
    hmb_buffer_close(objects);
    objects = NULL;
  }
  /* 3. second serialization */
  size_t fsize = frame_size(hmb_buffer_data(rows), NRECORDS);
  TRY(hmb_allocate(alloc, fsize, 0, &frame));
  encode_frame(hmb_buffer_data(rows), NRECORDS, hmb_buffer_data(frame), fsize);
  if (eager) { /* the frame exists: the rows are no longer needed */
    hmb_buffer_close(rows);
    rows = NULL;
  }

  res->sizes[0] = NRECORDS * sizeof(record_t);
  res->sizes[1] = (size_t)NRECORDS * ROW_BYTES;
  res->sizes[2] = fsize;
  res->frame_sum = fnv1a(hmb_buffer_data(frame), fsize);
  /* The frame is what leaves the task; here the task simply ends. */
out:
  if (objects)
    hmb_buffer_close(objects);
  if (rows)
    hmb_buffer_close(rows);
  if (frame)
    hmb_buffer_close(frame);
  if (runner) {
    hmb_runner_stats(runner, &res->runner);
    hmb_runner_destroy(runner);
  }
  if (pool) {
    hmb_pool_stats(pool, &res->pool);
    if (hmb_pool_destroy(pool) != 0 && rc == 0)
      rc = HMB_EBUSY;
  }
  return rc;
}

static int failures;
#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "check failed: %s\n", #cond);                            \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static void report(const char *label, const run_result_t *r) {
  printf("%-6s runner peak live %9" PRId64 "  peak held %9" PRId64
         "  borrowed %9" PRId64 "  pool peak live %9" PRId64 "\n",
         label, r->runner.peak_live, r->runner.peak_held, r->runner.borrowed,
         r->pool.peak_live_bytes);
}

int main(void) {
  run_result_t keep, eager;
  if (run(0, &keep) != 0 || run(1, &eager) != 0)
    return 1;
  int64_t a = (int64_t)keep.sizes[0], b = (int64_t)keep.sizes[1],
          c = (int64_t)keep.sizes[2];
  printf("objects %" PRId64 " bytes, rows %" PRId64 " bytes, frame %" PRId64
         " bytes\n",
         a, b, c);
  report("keep", &keep);
  report("eager", &eager);

  int64_t keep_peak = a + b + c;
  int64_t eager_peak = a + b > b + c ? a + b : b + c;
  EXPECT(keep.frame_sum == eager.frame_sum); /* same result either way */
  EXPECT(eager.sizes[2] == keep.sizes[2]);
  EXPECT(keep.runner.peak_live == keep_peak);
  EXPECT(keep.pool.peak_live_bytes == keep_peak);
  EXPECT(eager.runner.peak_live == eager_peak);
  EXPECT(eager.pool.peak_live_bytes == eager_peak);
  /* Freed budget stays with a running runner and is reused, so the budget it
   * had to hold follows the live peak exactly. */
  EXPECT(keep.runner.peak_held == keep_peak);
  EXPECT(eager.runner.peak_held == eager_peak);
  EXPECT(keep.runner.borrowed == (uint64_t)(keep_peak - a));
  EXPECT(eager.runner.borrowed == (uint64_t)(eager_peak - a));

  double drop = 100.0 * (double)(keep_peak - eager_peak) / (double)keep_peak;
  printf("eager release lowers the peak from %" PRId64 " to %" PRId64
         " bytes (-%.1f%%)\n",
         keep_peak, eager_peak, drop);
  if (failures) {
    fprintf(stderr, "FAILED: eager_release (%d checks)\n", failures);
    return 1;
  }
  printf("OK: eager_release\n");
  return 0;
}
