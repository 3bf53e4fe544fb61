/*
 * test_orc_adapter.cc - the ORC adapter against real ORC files.
 *
 * Files are written by ORC's own writer into a temporary directory, with a
 * checksum of every value written. Each test reads them back through one
 * way of providing memory (ORC's default pool, the per-task TaskPool, the
 * thread-bound BoundPool; whole files and 16-split scans on an hmb
 * executor), compares the value checksums with what was written, and checks
 * that every byte of budget came back: pool held 0, live 0, no runner left,
 * hmb_pool_destroy() returning 0. Cancelled and failing scans must unwind
 * the reader through the adapter's exception and return their budget too.
 *
 * Environment: HMB_ORC_TEST_ROWS (rows per file, default 40000; smaller
 * under sanitizers is fine), HMB_ORC_TEST_DIR (where the temporary
 * directory is made; default $TMPDIR or /tmp), HMB_ORC_TEST_KEEP=1 (keep
 * the files).
 */
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <orc/OrcFile.hh>

#include "hmb_orc.hh"
#include "orc_dataset.hh"

namespace {

namespace data = hmb_orc_data;

// ---- a small harness: a failed CHECK throws, the test runner reports ----

struct CheckFailed {
  std::string what;
};

[[noreturn]] void fail(const char *file, int line, const std::string &msg) {
  throw CheckFailed{std::string(file) + ":" + std::to_string(line) + ": " +
                    msg};
}

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      fail(__FILE__, __LINE__, "CHECK(" #cond ") failed");                     \
  } while (0)

#define CHECK_EQ(a, b)                                                         \
  do {                                                                         \
    const long long va_ = static_cast<long long>(a);                           \
    const long long vb_ = static_cast<long long>(b);                           \
    if (va_ != vb_)                                                            \
      fail(__FILE__, __LINE__,                                                 \
           std::string("CHECK_EQ(" #a ", " #b "): ") + std::to_string(va_) +   \
               " != " + std::to_string(vb_));                                  \
  } while (0)

#define CHECK_OK(expr)                                                         \
  do {                                                                         \
    const int rc_ = (expr);                                                    \
    if (rc_ != 0)                                                              \
      fail(__FILE__, __LINE__,                                                 \
           std::string(#expr " returned ") + hmb_errname(rc_));                \
  } while (0)

// Run `fn` on a new thread; a CHECK failure or exception there is rethrown
// on the caller's thread after the join.
template <class Fn> void on_thread(Fn fn) {
  std::exception_ptr err;
  std::thread t([&] {
    try {
      fn();
    } catch (...) {
      err = std::current_exception();
    }
  });
  t.join();
  if (err)
    std::rethrow_exception(err);
}

// ---- the data set ---------------------------------------------------------

struct Fixture {
  std::string dir;
  data::Spec spec;
  std::vector<data::FileInfo> files;
  std::vector<data::Checksum> written; // all columns, per file
  std::vector<int> all_columns;
  std::vector<int> projection;
};

Fixture *fx;

std::string env_or(const char *name, const char *def) {
  const char *v = std::getenv(name);
  return v && *v ? v : def;
}

void make_fixture() {
  fx = new Fixture;
  std::string base =
      env_or("HMB_ORC_TEST_DIR", env_or("TMPDIR", "/tmp").c_str());
  std::string tmpl = base + "/hmb-orc-test-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    throw std::runtime_error("mkdtemp failed in " + base);
  fx->dir = buf.data();
  fx->spec.files = 2;
  fx->spec.columns = 24;
  fx->spec.rows =
      std::strtoull(env_or("HMB_ORC_TEST_ROWS", "40000").c_str(), nullptr, 10);
  fx->spec.stripe_bytes = 256 << 10; // several stripes per file
  fx->spec.block_bytes = 64 << 10;
  for (int c = 0; c < fx->spec.columns; c++)
    fx->all_columns.push_back(c);
  fx->projection = data::every_third(fx->spec.columns);
  for (int i = 0; i < fx->spec.files; i++) {
    data::Checksum w;
    std::string path = fx->dir + "/f" + std::to_string(i) + ".orc";
    fx->files.push_back(data::write_file(path, fx->spec, i, nullptr, &w));
    fx->written.push_back(w);
    std::printf("  wrote %s: %llu rows, %llu bytes, %llu stripes, %llu nulls\n",
                path.c_str(),
                static_cast<unsigned long long>(fx->files.back().rows),
                static_cast<unsigned long long>(fx->files.back().bytes),
                static_cast<unsigned long long>(fx->files.back().stripes),
                static_cast<unsigned long long>(w.nulls));
  }
}

void drop_fixture() {
  if (env_or("HMB_ORC_TEST_KEEP", "0") != "1") {
    for (const data::FileInfo &f : fx->files)
      std::remove(f.path.c_str());
    rmdir(fx->dir.c_str());
  }
  delete fx;
}

// The written checksum restricted to some columns.
data::Checksum expected(int file, const std::vector<int> &cols) {
  const data::Checksum &w = fx->written[static_cast<size_t>(file)];
  data::Checksum e(fx->spec.columns);
  for (int c : cols)
    e.column[static_cast<size_t>(c)] = w.column[static_cast<size_t>(c)];
  e.rows = w.rows;
  return e;
}

// Null counts are per selection; compare sums and rows only for subsets.
bool same_values(const data::Checksum &a, const data::Checksum &b) {
  return a.column == b.column && a.rows == b.rows;
}

// Scan one split (or the whole file) through `pool`; returns its checksum.
struct ScanOptions {
  const std::vector<int> *columns = nullptr;
  bool whole = true;
  data::Split split;
  std::function<void(std::uint64_t)> on_read;
  std::function<void(std::uint64_t batch)> after_batch;
  hmb_runner_t *runner_for_need = nullptr; // set-need once the need is known
};

data::Checksum scan(int file, orc::MemoryPool &pool, const ScanOptions &o) {
  auto in = std::make_unique<data::CountingInput>(
      orc::readLocalFile(fx->files[static_cast<size_t>(file)].path));
  in->on_read = o.on_read;
  orc::ReaderOptions ro;
  ro.setMemoryPool(pool);
  std::unique_ptr<orc::Reader> reader = orc::createReader(std::move(in), ro);
  orc::RowReaderOptions rro;
  std::list<std::uint64_t> inc(o.columns->begin(), o.columns->end());
  rro.include(inc);
  if (!o.whole)
    rro.range(o.split.offset, o.split.length);
  std::unique_ptr<orc::RowReader> rr = reader->createRowReader(rro);
  if (o.runner_for_need) {
    data::Split s = o.split;
    if (o.whole) {
      s.offset = 0;
      s.length = fx->files[static_cast<size_t>(file)].bytes;
    }
    data::Need need = data::split_need(*reader, s, *o.columns);
    CHECK_OK(hmb_runner_set_need(o.runner_for_need, need.total(), nullptr));
  }
  std::unique_ptr<orc::ColumnVectorBatch> batch = rr->createRowBatch(4096);
  data::Checksum sum(fx->spec.columns);
  std::uint64_t n = 0;
  while (rr->next(*batch)) {
    data::checksum_batch(*batch, *o.columns, static_cast<std::uint64_t>(file),
                         rr->getRowNumber(), &sum);
    if (o.after_batch)
      o.after_batch(++n);
  }
  return sum;
}

hmb_pool_t *make_pool(size_t limit, unsigned flags = 0, size_t cap = 0) {
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  cfg.limit = limit;
  cfg.flags = flags;
  cfg.overcommit_cap = cap;
  hmb_pool_t *pool = nullptr;
  CHECK_OK(hmb_pool_create(&cfg, &pool));
  return pool;
}

hmb_runner_t *start_runner(hmb_pool_t *pool, size_t estimate) {
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = estimate;
  rc.name = "orc-test";
  hmb_runner_t *r = nullptr;
  CHECK_OK(hmb_runner_create(pool, &rc, &r));
  CHECK_OK(hmb_runner_start(r, HMB_WAIT_FOREVER));
  return r;
}

// Every byte of budget is back, nothing is alive, and the pool goes away.
void check_at_rest_and_destroy(hmb_pool_t *pool) {
  hmb_pool_stats_t st;
  CHECK_OK(hmb_pool_stats(pool, &st));
  CHECK_EQ(st.held, 0);
  CHECK_EQ(st.live_bytes, 0);
  CHECK_EQ(st.live_buffers, 0);
  CHECK_EQ(st.runners, 0);
  CHECK_EQ(st.running, 0);
  char msg[256];
  if (hmb_pool_check(pool, HMB_CHECK_QUIESCENT, msg, sizeof msg) != 0)
    fail(__FILE__, __LINE__, std::string("hmb_pool_check: ") + msg);
  CHECK_OK(hmb_pool_destroy(pool));
}

void check_counters_balanced(const hmb_orc::PoolBase &p) {
  hmb_orc::Counters c = p.counters();
  CHECK(c.mallocs > 0);
  CHECK_EQ(c.frees, c.mallocs);
  CHECK_EQ(c.free_errors, 0);
}

// ---- tests -------------------------------------------------------------

// The files hold what was written: ORC's own pool, every column.
void test_default_pool() {
  ScanOptions o;
  o.columns = &fx->all_columns;
  for (int f = 0; f < fx->spec.files; f++) {
    CHECK(fx->files[static_cast<size_t>(f)].stripes >= 3);
    CHECK(fx->written[static_cast<size_t>(f)].nulls > 0);
    data::Checksum got = scan(f, *orc::getDefaultPool(), o);
    CHECK(got == fx->written[static_cast<size_t>(f)]);
    // The checksum sees every value: one changed column sum must differ.
    data::Checksum wrong = got;
    wrong.column[5] ^= 1;
    CHECK(wrong != fx->written[static_cast<size_t>(f)]);
  }
}

// Per-task pool on a runner: same values, all budget back.
void test_task_pool() {
  hmb_pool_t *pool = make_pool(64u << 20);
  for (int f = 0; f < fx->spec.files; f++) {
    hmb_runner_t *r =
        start_runner(pool, fx->files[static_cast<size_t>(f)].bytes);
    hmb_runner_stats_t rs;
    {
      hmb_orc::TaskPool tp(r, true);
      ScanOptions o;
      o.columns = &fx->all_columns;
      std::int64_t live_mid = -1;
      o.after_batch = [&](std::uint64_t n) {
        if (n == 1) {
          CHECK_OK(hmb_runner_stats(r, &rs));
          live_mid = rs.live;
        }
      };
      data::Checksum got = scan(f, tp, o);
      CHECK(got == fx->written[static_cast<size_t>(f)]);
      CHECK(live_mid > 0); // the reader's buffers were charged to the runner
      check_counters_balanced(tp);
      hmb_orc::Counters c = tp.counters();
      CHECK(c.zero_mallocs > 0); // ORC asks for empty buffers; they work
      CHECK_EQ(c.failures, 0);
    }
    CHECK_OK(hmb_runner_stats(r, &rs));
    CHECK_EQ(rs.live, 0);
    CHECK_EQ(rs.live_buffers, 0);
    CHECK(rs.peak_live > 0);
    CHECK(rs.allocations > 0);
    CHECK_OK(hmb_runner_finish(r, 0, nullptr));
    hmb_runner_destroy(r);
  }
  check_at_rest_and_destroy(pool);
}

// malloc(0): distinct pointers, no charge; a stopped runner throws ESTATE.
void test_zero_and_state() {
  hmb_pool_t *pool = make_pool(1u << 20);
  hmb_runner_t *r = start_runner(pool, 0);
  {
    hmb_orc::TaskPool tp(r, true);
    char *a = tp.malloc(0);
    char *b = tp.malloc(0);
    CHECK(a != nullptr && b != nullptr && a != b);
    CHECK_EQ(hmb_ptr_size(a), 0);
    char *c = tp.malloc(1000);
    std::memset(c, 0x5a, 1000);
    hmb_runner_stats_t rs;
    CHECK_OK(hmb_runner_stats(r, &rs));
    CHECK_EQ(rs.live, 1000); // zero-byte blocks charge nothing
    CHECK(hmb_ptr_buffer(c) != nullptr);
    tp.free(a);
    tp.free(b);
    tp.free(c);
    tp.free(nullptr);
    CHECK_OK(hmb_runner_stats(r, &rs));
    CHECK_EQ(rs.live, 0);
    CHECK_OK(hmb_runner_finish(r, 0, nullptr));
    bool threw = false;
    try {
      (void)tp.malloc(16);
    } catch (const hmb_orc::Error &e) {
      threw = true;
      CHECK_EQ(e.code(), HMB_ESTATE);
      CHECK_EQ(e.bytes(), 16);
      CHECK(std::strstr(e.what(), "HMB_ESTATE") != nullptr);
      CHECK(std::strstr(e.what(), hmb_strerror(HMB_ESTATE)) != nullptr);
    }
    CHECK(threw);
    CHECK_EQ(tp.counters().failures, 1);
    check_counters_balanced(tp);
  }
  hmb_runner_destroy(r);
  check_at_rest_and_destroy(pool);
}

// Thread-bound pool: a bound runner is charged; an unbound thread fails (or
// uses the default allocator); blocks freed on another thread go home.
void test_bound_pool() {
  hmb_pool_t *pool = make_pool(64u << 20);
  hmb_orc::BoundPool strict(hmb_orc::Unbound::kFail, true);
  ScanOptions o;
  o.columns = &fx->all_columns;

  bool threw = false;
  try {
    (void)scan(0, strict, o);
  } catch (const hmb_orc::Error &e) {
    threw = true;
    CHECK_EQ(e.code(), HMB_ESTATE);
    CHECK(std::strstr(e.what(), hmb_strerror(HMB_ESTATE)) != nullptr);
  }
  CHECK(threw);

  for (int f = 0; f < fx->spec.files; f++) {
    hmb_runner_t *r = start_runner(pool, 1u << 20);
    data::Checksum got;
    on_thread([&] {
      hmb_orc::ScopedBind bind(r);
      CHECK(hmb_runner_bound() == r);
      got = scan(f, strict, o);
    });
    CHECK(hmb_runner_bound() == nullptr);
    CHECK(got == fx->written[static_cast<size_t>(f)]);
    hmb_runner_stats_t rs;
    CHECK_OK(hmb_runner_stats(r, &rs));
    CHECK(rs.peak_live > 0);
    CHECK_EQ(rs.live, 0);
    CHECK_OK(hmb_runner_finish(r, 0, nullptr));
    hmb_runner_destroy(r);
  }

  // Reader opened on a bound thread, destroyed on an unbound one after the
  // runner has finished: the frees still reach the runner's budget.
  {
    hmb_runner_t *r = start_runner(pool, 0);
    std::unique_ptr<orc::Reader> reader;
    std::unique_ptr<orc::RowReader> rr;
    std::unique_ptr<orc::ColumnVectorBatch> batch;
    on_thread([&] {
      hmb_orc::ScopedBind bind(r);
      orc::ReaderOptions ro;
      ro.setMemoryPool(strict);
      reader = orc::createReader(orc::readLocalFile(fx->files[0].path), ro);
      rr = reader->createRowReader(orc::RowReaderOptions());
      batch = rr->createRowBatch(1024);
      CHECK(rr->next(*batch));
    });
    hmb_runner_stats_t rs;
    CHECK_OK(hmb_runner_stats(r, &rs));
    CHECK(rs.live > 0);
    CHECK_OK(hmb_runner_finish(r, 0, nullptr));
    hmb_pool_stats_t ps;
    CHECK_OK(hmb_pool_stats(pool, &ps));
    CHECK_EQ(ps.held, rs.live); // after finish only live buffers hold budget
    batch.reset();
    rr.reset();
    reader.reset();
    CHECK_OK(hmb_pool_stats(pool, &ps));
    CHECK_EQ(ps.held, 0);
    CHECK_EQ(ps.live_bytes, 0);
    hmb_runner_destroy(r);
  }
  check_counters_balanced(strict);

  // Unbound with the default fallback: works, charges no pool.
  {
    hmb_orc::BoundPool lenient(hmb_orc::Unbound::kDefault, true);
    hmb_memory_stats_t before, after;
    CHECK_OK(hmb_default_memory_stats(&before));
    data::Checksum got = scan(1, lenient, o);
    CHECK(got == fx->written[1]);
    CHECK_OK(hmb_default_memory_stats(&after));
    CHECK_EQ(after.pageable_live, before.pageable_live);
    CHECK(after.pageable_peak > 0);
    check_counters_balanced(lenient);
  }
  check_at_rest_and_destroy(pool);
}

// Splits on an executor under a small budget, per-task and thread-bound:
// the splits add up to the whole files; invariant I3 holds.
struct SplitJob {
  int file;
  data::Split split;
  orc::MemoryPool *shared; // BoundPool, or NULL for a TaskPool per task
  data::Checksum sum;
  std::int64_t peak_live = 0;
  std::string error;
};

int split_task(void *user, hmb_runner_t *runner) {
  auto *job = static_cast<SplitJob *>(user);
  try {
    hmb_orc::TaskPool own(runner, true);
    orc::MemoryPool &pool = job->shared ? *job->shared : own;
    ScanOptions o;
    o.columns = &fx->projection;
    o.whole = false;
    o.split = job->split;
    o.runner_for_need = runner;
    job->sum = scan(job->file, pool, o);
    if (!job->shared && own.counters().free_errors != 0)
      job->error = "free errors";
  } catch (const hmb_orc::Error &e) {
    job->error = e.what();
    return e.code();
  } catch (const std::exception &e) {
    job->error = e.what();
    return HMB_EFAILED;
  } catch (const CheckFailed &e) {
    job->error = e.what;
    return HMB_EFAILED;
  }
  hmb_runner_stats_t rs;
  if (hmb_runner_stats(runner, &rs) == 0)
    job->peak_live = rs.peak_live;
  return 0;
}

void run_splits(orc::MemoryPool *shared, size_t limit) {
  hmb_pool_t *pool = make_pool(limit);
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = 3;
  ec.acquire_timeout_ns = 50 * 1000 * 1000;
  hmb_executor_t *ex = nullptr;
  CHECK_OK(hmb_executor_create(pool, &ec, &ex));
  std::vector<data::Split> splits = data::make_splits(fx->files, 96 << 10);
  CHECK(splits.size() >= 8);
  std::vector<SplitJob> jobs(splits.size());
  std::vector<hmb_task_t *> tasks(splits.size());
  for (size_t i = 0; i < splits.size(); i++) {
    jobs[i].file = splits[i].file;
    jobs[i].split = splits[i];
    jobs[i].shared = shared;
    hmb_task_desc_t d;
    hmb_task_desc_init(&d);
    d.estimate = splits[i].length;
    d.run = split_task;
    d.user = &jobs[i];
    d.name = "orc-split";
    CHECK_OK(hmb_executor_submit(ex, &d, &tasks[i]));
  }
  std::int64_t max_peak = 0;
  for (size_t i = 0; i < splits.size(); i++) {
    int status = -100;
    CHECK_OK(hmb_task_wait(tasks[i], 120ll * 1000 * 1000 * 1000, &status));
    hmb_task_release(tasks[i]);
    if (status != 0)
      fail(__FILE__, __LINE__, "split task failed: " + jobs[i].error);
    if (jobs[i].peak_live > max_peak)
      max_peak = jobs[i].peak_live;
  }
  hmb_executor_destroy(ex);
  for (int f = 0; f < fx->spec.files; f++) {
    data::Checksum sum(fx->spec.columns);
    for (const SplitJob &j : jobs)
      if (j.file == f)
        sum.add(j.sum);
    CHECK(same_values(sum, expected(f, fx->projection)));
  }
  hmb_pool_stats_t ps;
  CHECK_OK(hmb_pool_stats(pool, &ps));
  CHECK(max_peak > 0);
  // hmb/pool.h I3, buffers not outliving their tasks.
  CHECK(ps.peak_held <= ps.limit + max_peak);
  check_at_rest_and_destroy(pool);
}

void test_splits_task_pool() {
  run_splits(nullptr, 1u << 20);
}

void test_splits_bound_pool() {
  hmb_orc::BoundPool bound(hmb_orc::Unbound::kFail, true);
  run_splits(&bound, 1u << 20);
  check_counters_balanced(bound);
}

// Cancel from another thread mid-scan: the next allocation throws, the
// reader unwinds, the task finishes, all budget comes back.
void test_cancel_other_thread() {
  hmb_pool_t *pool = make_pool(64u << 20);
  hmb_runner_t *r = start_runner(pool, 4u << 20);
  std::mutex mu;
  std::condition_variable cv;
  int phase = 0; // 1: first batch read; 2: cancelled
  int code = 0;
  std::uint64_t rows = 0;
  bool completed = false;
  std::string other;
  std::thread scanner([&] {
    try {
      hmb_orc::TaskPool tp(r, true);
      ScanOptions o;
      o.columns = &fx->all_columns;
      o.after_batch = [&](std::uint64_t n) {
        rows = n * 4096;
        if (n == 1) {
          std::unique_lock<std::mutex> lk(mu);
          phase = 1;
          cv.notify_all();
          cv.wait(lk, [&] { return phase == 2; });
        }
      };
      (void)scan(0, tp, o);
      completed = true;
    } catch (const hmb_orc::Error &e) {
      code = e.code();
    } catch (const std::exception &e) {
      other = e.what();
    }
  });
  {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return phase == 1; });
    CHECK_OK(hmb_runner_cancel(r));
    phase = 2;
    cv.notify_all();
  }
  scanner.join();
  CHECK(other.empty());
  CHECK(!completed);
  CHECK_EQ(code, HMB_ECANCELED);
  CHECK(rows < fx->files[0].rows);
  CHECK(hmb_runner_is_cancelled(r));
  CHECK_EQ(hmb_runner_state(r), HMB_RUNNER_CANCELLED);
  hmb_runner_stats_t rs;
  CHECK_OK(hmb_runner_stats(r, &rs));
  CHECK_EQ(rs.live, 0); // the unwinding freed every block
  CHECK_OK(hmb_runner_finish(r, HMB_ECANCELED, nullptr));
  hmb_runner_destroy(r);
  check_at_rest_and_destroy(pool);
}

// Executor tasks cancelled two ways: by hmb_task_cancel() from the main
// thread while the task reads, and by the task itself once a byte threshold
// of file reads is passed. Both end with HMB_ECANCELED and give all back.
struct CancelJob {
  std::atomic<int> batches{0};
  std::atomic<bool> release{false};
  std::uint64_t threshold = 0; // 0: wait to be cancelled from outside
  int code = 0;
  bool completed = false;
};

int cancel_task(void *user, hmb_runner_t *runner) {
  auto *job = static_cast<CancelJob *>(user);
  try {
    hmb_orc::TaskPool tp(runner);
    ScanOptions o;
    o.columns = &fx->all_columns;
    if (job->threshold) {
      o.on_read = [job, runner](std::uint64_t total) {
        if (total >= job->threshold)
          hmb_runner_cancel(runner);
      };
    } else {
      o.after_batch = [job](std::uint64_t) {
        job->batches.fetch_add(1);
        while (!job->release.load())
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
      };
    }
    (void)scan(1, tp, o);
    job->completed = true;
  } catch (const hmb_orc::Error &e) {
    job->code = e.code();
    return e.code();
  }
  return 0;
}

void test_cancel_executor() {
  hmb_pool_t *pool = make_pool(8u << 20);
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = 2;
  hmb_executor_t *ex = nullptr;
  CHECK_OK(hmb_executor_create(pool, &ec, &ex));
  CancelJob outside, threshold;
  threshold.threshold = fx->files[1].bytes / 4;
  hmb_task_t *t1 = nullptr, *t2 = nullptr;
  hmb_task_desc_t d;
  hmb_task_desc_init(&d);
  d.estimate = 1u << 20;
  d.run = cancel_task;
  d.user = &outside;
  CHECK_OK(hmb_executor_submit(ex, &d, &t1));
  d.user = &threshold;
  CHECK_OK(hmb_executor_submit(ex, &d, &t2));
  while (outside.batches.load() == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK_OK(hmb_task_cancel(t1));
  outside.release.store(true);
  int s1 = 0, s2 = 0;
  CHECK_OK(hmb_task_wait(t1, 60ll * 1000 * 1000 * 1000, &s1));
  CHECK_OK(hmb_task_wait(t2, 60ll * 1000 * 1000 * 1000, &s2));
  hmb_task_release(t1);
  hmb_task_release(t2);
  CHECK_EQ(s1, HMB_ECANCELED);
  CHECK_EQ(s2, HMB_ECANCELED);
  CHECK_EQ(outside.code, HMB_ECANCELED);
  CHECK_EQ(threshold.code, HMB_ECANCELED);
  CHECK(!outside.completed && !threshold.completed);
  hmb_executor_stats_t es;
  CHECK_OK(hmb_executor_stats(ex, &es));
  CHECK_EQ(es.cancelled, 2);
  hmb_executor_destroy(ex);
  check_at_rest_and_destroy(pool);
}

// A pool that may never go beyond its limit (cap 0) and is too small for
// the scan: the failure reaches ORC as an exception with HMB_ELIMIT and
// hmb's text, and every byte comes back after the unwinding.
void test_limit_error() {
  hmb_pool_t *pool = make_pool(64u << 10, HMB_POOL_CAP_OVERCOMMIT, 0);
  hmb_runner_t *r = start_runner(pool, 0);
  int code = 0;
  std::string what;
  {
    hmb_orc::TaskPool tp(r, true);
    ScanOptions o;
    o.columns = &fx->all_columns;
    try {
      (void)scan(0, tp, o);
    } catch (const std::bad_alloc &e) { // the adapter's Error is a bad_alloc
      const auto *he = dynamic_cast<const hmb_orc::Error *>(&e);
      CHECK(he != nullptr);
      code = he->code();
      what = e.what();
    }
    CHECK(tp.counters().failures >= 1);
    check_counters_balanced(tp);
  }
  CHECK_EQ(code, HMB_ELIMIT);
  CHECK(what.find("HMB_ELIMIT") != std::string::npos);
  CHECK(what.find(hmb_strerror(HMB_ELIMIT)) != std::string::npos);
  hmb_pool_stats_t ps;
  CHECK_OK(hmb_pool_stats(pool, &ps));
  CHECK(ps.peak_held <= ps.limit); // the cap held
  CHECK(ps.limit_rejects >= 1);
  CHECK_OK(hmb_runner_finish(r, code, nullptr));
  hmb_runner_destroy(r);
  check_at_rest_and_destroy(pool);
}

// ORC's writer through a runner: the file reads back equal, budget returns.
void test_writer_task_pool() {
  hmb_pool_t *pool = make_pool(64u << 20);
  hmb_runner_t *r = start_runner(pool, 8u << 20);
  std::string path = fx->dir + "/written-through-hmb.orc";
  data::Checksum w;
  data::FileInfo fi;
  {
    hmb_orc::TaskPool tp(r, true);
    fi = data::write_file(path, fx->spec, 0, &tp, &w);
    check_counters_balanced(tp);
    hmb_runner_stats_t rs;
    CHECK_OK(hmb_runner_stats(r, &rs));
    CHECK(rs.peak_live > 0);
    CHECK_EQ(rs.live, 0);
  }
  CHECK(w == fx->written[0]);
  CHECK_EQ(fi.bytes, fx->files[0].bytes);
  CHECK_OK(hmb_runner_finish(r, 0, nullptr));
  hmb_runner_destroy(r);
  check_at_rest_and_destroy(pool);
  // Read the new file with ORC's default pool (file id 0 as written).
  data::FileInfo saved = fx->files[0];
  fx->files[0] = fi;
  ScanOptions o;
  o.columns = &fx->all_columns;
  data::Checksum got = scan(0, *orc::getDefaultPool(), o);
  fx->files[0] = saved;
  std::remove(path.c_str());
  CHECK(got == w);
}

struct Test {
  const char *name;
  void (*fn)();
};

const Test kTests[] = {
    {"default_pool", test_default_pool},
    {"task_pool", test_task_pool},
    {"zero_and_state", test_zero_and_state},
    {"bound_pool", test_bound_pool},
    {"splits_task_pool", test_splits_task_pool},
    {"splits_bound_pool", test_splits_bound_pool},
    {"cancel_other_thread", test_cancel_other_thread},
    {"cancel_executor", test_cancel_executor},
    {"limit_error", test_limit_error},
    {"writer_task_pool", test_writer_task_pool},
};

} // namespace

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : nullptr;
  int failed = 0, run = 0;
  try {
    make_fixture();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "fixture: %s\n", e.what());
    return 1;
  }
  for (const Test &t : kTests) {
    if (only && std::strcmp(only, t.name) != 0)
      continue;
    run++;
    try {
      t.fn();
      std::printf("[ OK ] %s\n", t.name);
    } catch (const CheckFailed &e) {
      failed++;
      std::printf("[FAIL] %s: %s\n", t.name, e.what.c_str());
    } catch (const std::exception &e) {
      failed++;
      std::printf("[FAIL] %s: exception: %s\n", t.name, e.what());
    }
    std::fflush(stdout);
  }
  std::printf("%d of %d tests passed (data in %s)\n", run - failed, run,
              fx->dir.c_str());
  drop_fixture();
  return failed || run == 0 ? 1 : 0;
}
