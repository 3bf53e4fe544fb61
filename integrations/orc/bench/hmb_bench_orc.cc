/*
 * hmb_bench_orc.cc - a real columnar reader under hmb: Apache ORC scans of
 * ORC files written by ORC's own writer, one runner per split, compared
 * across budget policies, each in a process of its own.
 *
 *   hmb_bench_orc [options]        every policy, --repeat times, then the
 *                                  tight-limit table
 *   hmb_bench_orc --micro          cost of one malloc/free through the pools
 *   hmb_bench_orc --child --policy NAME [...]
 *                                  one scan in this process (what the parent
 *                                  runs per policy; prints a RESULT line)
 *
 * The scan: every file is cut into byte-range splits (--split-size); each
 * split is one task on an hmb executor with --threads workers, estimate =
 * split length. The task opens an ORC reader on its file, selects every
 * third column and its range (RowReaderOptions::include/range), and decodes
 * every batch into a value checksum. Policies differ only in where ORC's
 * memory comes from and how the budget is held:
 *   orc        ORC's own default pool (std::malloc): no hmb in the read path
 *   unlimited  hmb's default allocator through the adapter: no budget
 *   virtual    the runner reserves its estimate (hmb_runner_reserve) until
 *              the split is consumed; memory from the default allocator, so
 *              the budget is not bound to memory (today's design)
 *   bound      every buffer through the runner's adapter (hmb_orc::TaskPool):
 *              the estimate is held, borrows cover more, spare goes back at
 *              finish
 *   early      bound + hmb_runner_set_need() once the reader knows its
 *              stripes and projection
 *   staged     admitted for the first piece only (the file tail, capped at
 *              256 KiB), then set-need + hmb_runner_grow() to the real need
 * The real need of a split = the selected columns' stream lengths of the
 * stripes that start in it + the file tail + their stripe footers.
 *
 * Checks (any failure: exit status 1): every task completes; every scan's
 * checksum equals the reference scan through ORC's default pool; each pool
 * is at rest at the end (held 0, live 0, no runner, destroyed); hmb/pool.h
 * invariant I3 for buffers that do not outlive their task: peak held <=
 * limit + the largest peak live of one task; and in the tight-limit table
 * (limit = one stripe, half a stripe, 64 KiB) every scan finishes within
 * --timeout-s. Timings never decide the exit status. Exit status 2: usage.
 */
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <orc/OrcFile.hh>

#include "hmb_orc.hh"
#include "orc_dataset.hh"

namespace {

namespace data = hmb_orc_data;

const std::uint64_t kKiB = 1024, kMiB = 1024 * 1024;

// ---- options -------------------------------------------------------------

enum Policy { kOrc, kUnlimited, kVirtual, kBound, kEarly, kStaged, kNPolicies };
const char *const kPolicyNames[kNPolicies] = {"orc",   "unlimited", "virtual",
                                              "bound", "early",     "staged"};

bool budgeted(int p) {
  return p == kVirtual || p == kBound || p == kEarly || p == kStaged;
}

struct Options {
  std::string data_dir;
  data::Spec spec;
  std::uint64_t split = 16 * kMiB;
  int threads = 4;
  std::uint64_t limit = 0;   // 0: 2 x the largest stripe
  std::uint64_t initial = 0; // staged first piece; 0: the file tail, <= cap
  std::uint64_t initial_cap = 256 * kKiB;
  std::uint64_t batch_rows = 8192;
  int repeat = 3;
  unsigned policies = (1u << kNPolicies) - 1;
  bool tight = true;
  std::vector<std::string> tight_limits = {"stripe", "half", "64K"};
  bool bound_pool = false; // BoundPool instead of a TaskPool per task
  int arenas = 0;          // glibc malloc arenas of a scan; 0: glibc's default
  double timeout_s = 600;
  bool quick = false, quiet = false, micro = false;
  std::string csv, json;
  // child mode
  bool child = false, generate = false;
  int policy = -1;
  std::string expect;
};

void usage(FILE *f) {
  std::fprintf(
      f,
      "usage: hmb_bench_orc [options]       every policy, then the tight-limit "
      "table\n"
      "       hmb_bench_orc --micro         malloc/free cost through the "
      "pools\n"
      "\n"
      "data (generated once by ORC's writer, reused when its manifest "
      "matches):\n"
      "  --data-dir DIR      cache directory [$HMB_ORC_DATA, else "
      "build-orc-data]\n"
      "  --files N           files [8]\n"
      "  --file-size SIZE    target size of one file [48M]\n"
      "  --columns N         columns: bigint, double, string, int, ... [24]\n"
      "  --stripe-size SIZE  ORC writer stripe size [10M]\n"
      "  --seed N            generator seed [42]\n"
      "scan:\n"
      "  --split-size SIZE   byte range of one split = one task [16M]\n"
      "  --threads N         executor workers [4]\n"
      "  --limit SIZE        pool limit of the budgeted policies [2 x the "
      "largest stripe]\n"
      "  --initial SIZE      staged: first piece [the file tail, at most "
      "256K]\n"
      "  --batch-rows N      rows per ORC batch [8192]\n"
      "  --policies LIST     subset of "
      "orc,unlimited,virtual,bound,early,staged\n"
      "  --pool task|bound   adapter of the bound policies: a TaskPool per "
      "task "
      "or\n"
      "                      one BoundPool for all threads [task]\n"
      "  --repeat N          runs per policy, in rotating order; medians [3]\n"
      "  --tight-limits LIST tight-limit table: stripe,half or sizes "
      "[stripe,half,64K]\n"
      "  --no-tight          skip the tight-limit table\n"
      "  --timeout-s F       longest run of one scan before it counts as stuck "
      "[600]\n"
      "  --arenas N          glibc malloc arenas per scan process "
      "(M_ARENA_MAX); "
      "0: glibc's\n"
      "                      default, one per thread up to 8 x cores [0]\n"
      "output:\n"
      "  --csv FILE, --json FILE   every run and the medians\n"
      "  --quick             small data (2 files of 8M, 1M stripes, 2M "
      "splits), "
      "one repeat\n"
      "  --quiet             only the tables\n"
      "  --micro             ns per malloc+free through ORC's pool and the "
      "adapters\n"
      "SIZE takes a K, M or G suffix (binary); a bare number is bytes.\n");
}

bool parse_size(const char *s, std::uint64_t *out) {
  char *end;
  errno = 0;
  double v = std::strtod(s, &end);
  if (errno || end == s || !(v >= 0))
    return false;
  double mul = 1;
  if (*end == 'K' || *end == 'k')
    mul = kKiB, end++;
  else if (*end == 'M' || *end == 'm')
    mul = kMiB, end++;
  else if (*end == 'G' || *end == 'g')
    mul = 1024.0 * kMiB, end++;
  if (*end == 'i' && end[1] == 'B')
    end += 2;
  if (*end)
    return false;
  *out = static_cast<std::uint64_t>(v * mul);
  return true;
}

bool parse_int(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = std::strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi)
    return false;
  *out = v;
  return true;
}

std::vector<std::string> split_list(const std::string &s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ','))
    if (!x.empty())
      v.push_back(x);
  return v;
}

int policy_of(const std::string &name) {
  for (int p = 0; p < kNPolicies; p++)
    if (name == kPolicyNames[p])
      return p;
  return -1;
}

std::string size_arg(std::uint64_t v) {
  return std::to_string(v);
}

// Returns 0, or 2 for a usage error (message printed).
int parse_options(int argc, char **argv, Options *o) {
  enum {
    O_DATA = 256,
    O_FILES,
    O_FILE_SIZE,
    O_COLUMNS,
    O_STRIPE,
    O_SEED,
    O_SPLIT,
    O_THREADS,
    O_LIMIT,
    O_INITIAL,
    O_BATCH,
    O_POLICIES,
    O_POOL,
    O_REPEAT,
    O_TIGHT,
    O_NO_TIGHT,
    O_TIMEOUT,
    O_CSV,
    O_JSON,
    O_QUICK,
    O_QUIET,
    O_MICRO,
    O_CHILD,
    O_GENERATE,
    O_POLICY,
    O_EXPECT,
    O_ARENAS,
    O_HELP
  };
  static const struct option longs[] = {
      {"data-dir", required_argument, nullptr, O_DATA},
      {"files", required_argument, nullptr, O_FILES},
      {"file-size", required_argument, nullptr, O_FILE_SIZE},
      {"columns", required_argument, nullptr, O_COLUMNS},
      {"stripe-size", required_argument, nullptr, O_STRIPE},
      {"seed", required_argument, nullptr, O_SEED},
      {"split-size", required_argument, nullptr, O_SPLIT},
      {"threads", required_argument, nullptr, O_THREADS},
      {"limit", required_argument, nullptr, O_LIMIT},
      {"initial", required_argument, nullptr, O_INITIAL},
      {"batch-rows", required_argument, nullptr, O_BATCH},
      {"policies", required_argument, nullptr, O_POLICIES},
      {"pool", required_argument, nullptr, O_POOL},
      {"repeat", required_argument, nullptr, O_REPEAT},
      {"tight-limits", required_argument, nullptr, O_TIGHT},
      {"no-tight", no_argument, nullptr, O_NO_TIGHT},
      {"timeout-s", required_argument, nullptr, O_TIMEOUT},
      {"csv", required_argument, nullptr, O_CSV},
      {"json", required_argument, nullptr, O_JSON},
      {"quick", no_argument, nullptr, O_QUICK},
      {"quiet", no_argument, nullptr, O_QUIET},
      {"micro", no_argument, nullptr, O_MICRO},
      {"child", no_argument, nullptr, O_CHILD},
      {"generate", no_argument, nullptr, O_GENERATE},
      {"policy", required_argument, nullptr, O_POLICY},
      {"expect", required_argument, nullptr, O_EXPECT},
      {"arenas", required_argument, nullptr, O_ARENAS},
      {"help", no_argument, nullptr, O_HELP},
      {nullptr, 0, nullptr, 0}};
  const char *env = std::getenv("HMB_ORC_DATA");
  o->data_dir = env && *env ? env : "build-orc-data";
  // --quick first, so that explicit options override what it sets.
  for (int i = 1; i < argc; i++)
    if (std::strcmp(argv[i], "--quick") == 0) {
      o->quick = true;
      o->spec.files = 2;
      o->spec.file_bytes = 8 * kMiB;
      o->spec.stripe_bytes = 1 * kMiB;
      o->split = 2 * kMiB;
      o->repeat = 1;
      o->timeout_s = 120;
    }
  bool have_repeat = false;
  int c;
  long v;
  std::uint64_t sz;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", longs, nullptr)) != -1) {
    const char *a = optarg;
    bool ok = true;
    switch (c) {
    case O_DATA:
      o->data_dir = a;
      break;
    case O_FILES:
      ok = parse_int(a, 1, 4096, &v);
      o->spec.files = static_cast<int>(v);
      break;
    case O_FILE_SIZE:
      ok = parse_size(a, &sz) && sz >= 64 * kKiB;
      o->spec.file_bytes = sz;
      break;
    case O_COLUMNS:
      ok = parse_int(a, 3, 1000, &v);
      o->spec.columns = static_cast<int>(v);
      break;
    case O_STRIPE:
      ok = parse_size(a, &sz) && sz >= 64 * kKiB;
      o->spec.stripe_bytes = sz;
      break;
    case O_SEED:
      ok = parse_int(a, 0, 1L << 40, &v);
      o->spec.seed = static_cast<std::uint64_t>(v);
      break;
    case O_SPLIT:
      ok = parse_size(a, &sz) && sz >= 4 * kKiB;
      o->split = sz;
      break;
    case O_THREADS:
      ok = parse_int(a, 1, 256, &v);
      o->threads = static_cast<int>(v);
      break;
    case O_LIMIT:
      ok = parse_size(a, &sz) && sz > 0;
      o->limit = sz;
      break;
    case O_INITIAL:
      ok = parse_size(a, &sz);
      o->initial = sz;
      break;
    case O_BATCH:
      ok = parse_int(a, 1, 1 << 22, &v);
      o->batch_rows = static_cast<std::uint64_t>(v);
      break;
    case O_POLICIES: {
      o->policies = 0;
      for (const std::string &n : split_list(a)) {
        int p = policy_of(n);
        if (p < 0)
          ok = false;
        else
          o->policies |= 1u << p;
      }
      ok = ok && o->policies != 0;
      break;
    }
    case O_POOL:
      ok = !std::strcmp(a, "task") || !std::strcmp(a, "bound");
      o->bound_pool = !std::strcmp(a, "bound");
      break;
    case O_REPEAT:
      ok = parse_int(a, 1, 1000, &v);
      o->repeat = static_cast<int>(v);
      have_repeat = true;
      break;
    case O_TIGHT:
      o->tight_limits = split_list(a);
      for (const std::string &t : o->tight_limits)
        ok = ok && (t == "stripe" || t == "half" || parse_size(t.c_str(), &sz));
      break;
    case O_NO_TIGHT:
      o->tight = false;
      break;
    case O_TIMEOUT: {
      char *end;
      o->timeout_s = std::strtod(a, &end);
      ok = *end == 0 && o->timeout_s > 0;
      break;
    }
    case O_CSV:
      o->csv = a;
      break;
    case O_JSON:
      o->json = a;
      break;
    case O_QUICK:
      break;
    case O_QUIET:
      o->quiet = true;
      break;
    case O_MICRO:
      o->micro = true;
      break;
    case O_CHILD:
      o->child = true;
      break;
    case O_GENERATE:
      o->generate = true;
      break;
    case O_POLICY:
      o->policy = policy_of(a);
      ok = o->policy >= 0;
      break;
    case O_EXPECT:
      o->expect = a;
      break;
    case 'h':
    case O_ARENAS:
      ok = parse_int(a, 0, 1024, &v);
      o->arenas = static_cast<int>(v);
      break;
    case O_HELP:
      usage(stdout);
      std::exit(0);
    default:
      std::fprintf(stderr, "hmb_bench_orc: unknown option %s\n",
                   argv[optind - 1]);
      usage(stderr);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "hmb_bench_orc: bad option value: %s\n", a ? a : "");
      return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "hmb_bench_orc: unexpected argument %s\n",
                 argv[optind]);
    return 2;
  }
  if (o->child && !o->generate && o->policy < 0) {
    std::fprintf(stderr,
                 "hmb_bench_orc: --child needs --policy or --generate\n");
    return 2;
  }
  (void)have_repeat;
  return 0;
}

// The data set's own directory under the cache: one per Spec.
std::string dataset_dir(const Options &o) {
  char b[160];
  std::snprintf(b, sizeof b,
                "/f%d-c%d-%" PRIu64 "k-st%" PRIu64 "k-zstd-s%" PRIu64,
                o.spec.files, o.spec.columns, o.spec.file_bytes / kKiB,
                o.spec.stripe_bytes / kKiB, o.spec.seed);
  return o.data_dir + b;
}

double now_s() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) +
         static_cast<double>(ts.tv_nsec) * 1e-9;
}

double cpu_s() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

long maxrss_kib() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

// VmHWM: this process image's own peak RSS (ru_maxrss also remembers the
// parent's size at fork; the parent is kept small, so both agree).
long hwm_kib() {
  FILE *f = std::fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  char line[256];
  long v = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %ld", &v) == 1)
      break;
  std::fclose(f);
  return v;
}

std::string hex(std::uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016" PRIx64, v);
  return b;
}

// ---- child: one scan --------------------------------------------------------

struct Task {
  const Options *o = nullptr;
  int policy = 0;
  data::Split split;
  std::string path;
  const std::vector<int> *projection = nullptr;
  hmb_orc::BoundPool *shared = nullptr;
  hmb_orc::TaskPool *unbudgeted = nullptr;
  // results
  data::Checksum sum;
  std::uint64_t file_bytes = 0;
  std::uint64_t need = 0;
  std::uint64_t mallocs = 0, zero_mallocs = 0;
  hmb_runner_stats_t rs{};
  std::int64_t live_at_end = -1;
  std::string error;
  int rc = 0;
};

int scan_task(void *user, hmb_runner_t *runner) {
  Task *t = static_cast<Task *>(user);
  hmb_buffer_t *reservation = nullptr;
  int rc = 0;
  try {
    if (t->policy == kVirtual) {
      rc = hmb_runner_reserve(runner, t->split.length, &reservation);
      if (rc != 0)
        throw hmb_orc::Error(rc, t->split.length, "reserve");
    }
    // Declared before the reader: ORC holds a reference to it.
    hmb_orc::TaskPool own(runner, true);
    orc::MemoryPool *pool;
    switch (t->policy) {
    case kOrc:
      pool = orc::getDefaultPool();
      break;
    case kUnlimited:
    case kVirtual:
      pool = t->unbudgeted;
      break;
    default:
      pool = t->shared ? static_cast<orc::MemoryPool *>(t->shared) : &own;
      break;
    }
    {
      auto in =
          std::make_unique<data::CountingInput>(orc::readLocalFile(t->path));
      data::CountingInput *counter = in.get();
      orc::ReaderOptions ro;
      ro.setMemoryPool(*pool);
      std::unique_ptr<orc::Reader> reader =
          orc::createReader(std::move(in), ro);
      orc::RowReaderOptions rro;
      rro.include(std::list<std::uint64_t>(t->projection->begin(),
                                           t->projection->end()));
      rro.range(t->split.offset, t->split.length);
      std::unique_ptr<orc::RowReader> rr = reader->createRowReader(rro);
      data::Need need = data::split_need(*reader, t->split, *t->projection);
      t->need = need.total();
      if (t->policy == kEarly || t->policy == kStaged) {
        rc = hmb_runner_set_need(runner, t->need, nullptr);
        if (rc == 0 && t->policy == kStaged)
          rc = hmb_runner_grow(runner, t->need, HMB_WAIT_FOREVER);
        if (rc != 0)
          throw hmb_orc::Error(rc, t->need, "set-need/grow");
      }
      std::unique_ptr<orc::ColumnVectorBatch> batch =
          rr->createRowBatch(t->o->batch_rows);
      t->sum = data::Checksum(t->o->spec.columns);
      while (rr->next(*batch))
        data::checksum_batch(*batch, *t->projection,
                             static_cast<std::uint64_t>(t->split.file),
                             rr->getRowNumber(), &t->sum);
      t->file_bytes = counter->bytes();
    }
    // Everything ORC allocated is freed by now.
    hmb_orc::Counters c = t->policy == kUnlimited || t->policy == kVirtual
                              ? hmb_orc::Counters{}
                              : own.counters();
    t->mallocs = c.mallocs;
    t->zero_mallocs = c.zero_mallocs;
  } catch (const hmb_orc::Error &e) {
    t->error = e.what();
    rc = e.code();
  } catch (const std::exception &e) {
    t->error = e.what();
    rc = HMB_EFAILED;
  }
  if (reservation)
    hmb_buffer_close(reservation); // the split's data is consumed
  hmb_runner_stats(runner, &t->rs);
  t->live_at_end = t->rs.live;
  t->rc = rc;
  return rc;
}

struct Result {
  std::map<std::string, std::string> kv;
  double num(const std::string &k) const {
    auto it = kv.find(k);
    return it == kv.end() ? NAN : std::strtod(it->second.c_str(), nullptr);
  }
  std::string str(const std::string &k) const {
    auto it = kv.find(k);
    return it == kv.end() ? "" : it->second;
  }
  template <class T> void put(const std::string &k, T v) {
    std::ostringstream s;
    s.precision(9);
    s << v;
    kv[k] = s.str();
  }
  std::string line() const {
    std::string s = "RESULT";
    for (const auto &p : kv)
      s += " " + p.first + "=" + p.second;
    return s;
  }
};

std::vector<data::FileInfo> load_files(const Options &o, bool *generated) {
  return data::ensure_dataset(dataset_dir(o), o.spec, generated,
                              [&](const std::string &m) {
                                if (!o.quiet)
                                  std::fprintf(stderr, "  %s\n", m.c_str());
                              });
}

int child_generate(const Options &o) {
  bool generated = false;
  double t0 = now_s();
  std::vector<data::FileInfo> files = load_files(o, &generated);
  std::uint64_t max_stripe = 0, bytes = 0, rows = 0, stripes = 0;
  // A cached file must also open as the ORC file its manifest describes;
  // if one does not, the data set is written again (once).
  for (int attempt = 0;; attempt++) {
    try {
      max_stripe = bytes = rows = stripes = 0;
      for (const data::FileInfo &f : files) {
        std::unique_ptr<orc::Reader> r =
            orc::createReader(orc::readLocalFile(f.path), orc::ReaderOptions());
        if (r->getNumberOfRows() != f.rows ||
            r->getNumberOfStripes() != f.stripes)
          throw std::runtime_error(f.path + " does not match the manifest");
        for (std::uint64_t i = 0; i < r->getNumberOfStripes(); i++)
          max_stripe = std::max(max_stripe, r->getStripe(i)->getLength());
        bytes += f.bytes;
        rows += f.rows;
        stripes += f.stripes;
      }
      break;
    } catch (const std::exception &e) {
      if (attempt > 0 || generated)
        throw;
      std::fprintf(stderr,
                   "  cached data set unusable (%s): writing it again\n",
                   e.what());
      std::remove((dataset_dir(o) + "/manifest.txt").c_str());
      files = load_files(o, &generated);
    }
  }
  Result res;
  res.put("generated", generated ? 1 : 0);
  res.put("gen_s", now_s() - t0);
  res.put("files", files.size());
  res.put("bytes", bytes);
  res.put("rows", rows);
  res.put("stripes", stripes);
  res.put("max_stripe", max_stripe);
  res.put("dir", dataset_dir(o));
  std::printf("%s\n", res.line().c_str());
  return 0;
}

int child_scan(const Options &o) {
  const int policy = o.policy;
  std::vector<data::FileInfo> files = load_files(o, nullptr);
  std::vector<data::Split> splits = data::make_splits(files, o.split);
  const std::vector<int> projection = data::every_third(o.spec.columns);

  // The staged first piece per file: its tail, as a planner that has read
  // the footers knows it (capped), or a fixed size.
  std::vector<std::uint64_t> initial(files.size(), o.initial);
  if (policy == kStaged && o.initial == 0)
    for (size_t f = 0; f < files.size(); f++) {
      std::unique_ptr<orc::Reader> r = orc::createReader(
          orc::readLocalFile(files[f].path), orc::ReaderOptions());
      initial[f] = std::min(o.initial_cap, data::tail_bytes(*r));
    }

  const bool has_budget = budgeted(policy);
  std::uint64_t limit = o.limit;
  if (has_budget && limit == 0) // run by hand without --limit: the default
    for (const data::FileInfo &f : files) {
      std::unique_ptr<orc::Reader> r =
          orc::createReader(orc::readLocalFile(f.path), orc::ReaderOptions());
      for (std::uint64_t i = 0; i < r->getNumberOfStripes(); i++)
        limit = std::max(limit, 2 * r->getStripe(i)->getLength());
    }
  hmb_pool_config_t pc;
  hmb_pool_config_init(&pc);
  pc.limit = has_budget ? limit : HMB_MAX_ALLOC;
  hmb_pool_t *pool = nullptr;
  int rc = hmb_pool_create(&pc, &pool);
  if (rc != 0) {
    std::fprintf(stderr, "hmb_pool_create: %s\n", hmb_strerror(rc));
    return 1;
  }
  hmb_executor_config_t ec;
  hmb_executor_config_init(&ec);
  ec.threads = o.threads;
  ec.acquire_timeout_ns = 100 * 1000 * 1000;
  ec.name = "orc-scan";
  hmb_executor_t *ex = nullptr;
  rc = hmb_executor_create(pool, &ec, &ex);
  if (rc != 0) {
    std::fprintf(stderr, "hmb_executor_create: %s\n", hmb_strerror(rc));
    return 1;
  }
  hmb_orc::BoundPool shared(hmb_orc::Unbound::kFail);
  hmb_orc::TaskPool unbudgeted(hmb_default_allocator());
  hmb_memory_stats_t dm0;
  hmb_default_memory_stats(&dm0);

  std::vector<Task> tasks(splits.size());
  std::vector<hmb_task_t *> handles(splits.size(), nullptr);
  const double c0 = cpu_s(), t0 = now_s();
  for (size_t i = 0; i < splits.size(); i++) {
    Task &t = tasks[i];
    t.o = &o;
    t.policy = policy;
    t.split = splits[i];
    t.path = files[static_cast<size_t>(splits[i].file)].path;
    t.projection = &projection;
    t.shared = o.bound_pool ? &shared : nullptr;
    t.unbudgeted = &unbudgeted;
    hmb_task_desc_t d;
    hmb_task_desc_init(&d);
    d.estimate = splits[i].length;
    d.priority = -static_cast<int>(i); // admission in split order
    d.run = scan_task;
    d.user = &t;
    d.name = "orc-split";
    if (policy == kStaged) {
      d.staged = 1;
      d.initial = initial[static_cast<size_t>(splits[i].file)];
    }
    rc = hmb_executor_submit(ex, &d, &handles[i]);
    if (rc != 0) {
      std::fprintf(stderr, "hmb_executor_submit: %s\n", hmb_strerror(rc));
      return 1;
    }
  }
  int failed = 0, stuck = 0;
  const double deadline = t0 + o.timeout_s;
  for (size_t i = 0; i < splits.size(); i++) {
    int status = 0;
    double left = std::max(0.0, deadline - now_s());
    rc = hmb_task_wait(handles[i], static_cast<std::int64_t>(left * 1e9),
                       &status);
    if (rc != 0) {
      stuck++;
      continue;
    }
    if (status != 0) {
      failed++;
      if (failed <= 3)
        std::fprintf(stderr, "split %zu (file %d at %" PRIu64 "): %s: %s\n", i,
                     splits[i].file, splits[i].offset, hmb_errname(status),
                     tasks[i].error.c_str());
    }
  }
  const double wall = now_s() - t0, cpu = cpu_s() - c0;
  if (stuck) {
    // Not finishing within the timeout is the failure this reports; the
    // process exits without tearing down the executor it cannot trust.
    char desc[1024];
    hmb_pool_describe(pool, 8, desc, sizeof desc);
    std::fprintf(stderr, "%d tasks did not finish within %.0f s: %s\n", stuck,
                 o.timeout_s, desc);
    std::fflush(stderr);
    _exit(3);
  }
  hmb_executor_stats_t es;
  hmb_executor_stats(ex, &es);
  for (hmb_task_t *h : handles)
    hmb_task_release(h);
  hmb_executor_destroy(ex);

  hmb_pool_stats_t ps;
  hmb_pool_stats(pool, &ps);
  data::Checksum sum(o.spec.columns);
  std::uint64_t file_bytes = 0, need = 0, estimate = 0, mallocs = 0, zero = 0;
  std::int64_t max_peak_live = 0, max_need = 0, live_left = 0;
  std::uint64_t borrowed = 0, returned_early = 0;
  for (const Task &t : tasks) {
    sum.add(t.sum);
    file_bytes += t.file_bytes;
    need += t.need;
    estimate += t.split.length;
    mallocs += t.mallocs;
    zero += t.zero_mallocs;
    max_peak_live = std::max(max_peak_live, t.rs.peak_live);
    max_need = std::max(max_need, static_cast<std::int64_t>(t.need));
    live_left += t.live_at_end > 0 ? t.live_at_end : 0;
    borrowed += t.rs.borrowed;
    returned_early += t.rs.returned_early;
  }
  // At rest: nothing held, nothing live, every runner gone, pool destroyed.
  char why[256] = "";
  bool at_rest = ps.held == 0 && ps.live_bytes == 0 && ps.live_buffers == 0 &&
                 ps.runners == 0 && live_left == 0;
  if (hmb_pool_check(pool, HMB_CHECK_QUIESCENT, why, sizeof why) != 0)
    at_rest = false;
  hmb_memory_stats_t dm1;
  hmb_default_memory_stats(&dm1);
  if (dm1.pageable_live != dm0.pageable_live)
    at_rest = false;
  int destroyed = hmb_pool_destroy(pool);
  if (destroyed != 0)
    at_rest = false;
  // hmb/pool.h I3 with buffers that do not outlive their tasks.
  const std::int64_t i3_bound = ps.limit + max_peak_live;
  const bool i3_ok = !has_budget || ps.peak_held <= i3_bound;

  Result r;
  r.put("policy", kPolicyNames[policy]);
  r.put("limit", has_budget ? limit : 0);
  r.put("threads", o.threads);
  r.put("splits", splits.size());
  r.put("failed", failed);
  r.put("digest", hex(sum.digest()));
  r.put("rows", sum.rows);
  r.put("decoded", sum.decoded);
  r.put("file_bytes", file_bytes);
  r.put("estimate", estimate);
  r.put("need", need);
  r.put("max_need", max_need);
  r.put("wall_s", wall);
  r.put("cpu_s", cpu);
  r.put("maxrss_kib", maxrss_kib());
  r.put("hwm_kib", hwm_kib());
  r.put("peak_held", ps.peak_held);
  r.put("peak_live", ps.peak_live_bytes);
  r.put("peak_over", ps.peak_overcommitted);
  r.put("max_task_peak_live", max_peak_live);
  r.put("i3_bound", i3_bound);
  r.put("i3_ok", i3_ok ? 1 : 0);
  r.put("at_rest", at_rest ? 1 : 0);
  r.put("borrows", ps.borrows);
  r.put("borrow_overcommits", ps.borrow_overcommits);
  r.put("acquire_overcommits", ps.acquire_overcommits);
  r.put("borrowed", borrowed);
  r.put("released_early", ps.released_early);
  r.put("returned_early", returned_early);
  r.put("grows", ps.grows);
  r.put("requeues", es.requeues);
  r.put("wait_s", static_cast<double>(es.wait_ns_total) * 1e-9);
  r.put("mallocs", mallocs);
  r.put("zero_mallocs", zero);
  r.put("default_peak", dm1.pageable_peak);
  // ORC's memory at its peak, where hmb sees it: the runners' live bytes,
  // or the default allocator's peak for the policies that read outside the
  // budget (-1: ORC's own pool, not seen).
  r.put("mem_peak", policy == kOrc ? -1
                    : policy == kUnlimited || policy == kVirtual
                        ? dm1.pageable_peak
                        : ps.peak_live_bytes);
  std::printf("%s\n", r.line().c_str());
  if (!at_rest)
    std::fprintf(stderr,
                 "pool not at rest after the scan (held %" PRId64
                 ", live %" PRId64 ", runners %d, destroy %s) %s\n",
                 ps.held, ps.live_bytes, ps.runners, hmb_errname(destroyed),
                 why);
  if (!i3_ok)
    std::fprintf(stderr,
                 "I3 broken: peak held %" PRId64 " > limit %" PRId64
                 " + largest task peak live %" PRId64 "\n",
                 ps.peak_held, ps.limit, max_peak_live);
  bool digest_ok = o.expect.empty() || o.expect == hex(sum.digest());
  if (!digest_ok)
    std::fprintf(stderr, "checksum %s differs from the expected %s\n",
                 hex(sum.digest()).c_str(), o.expect.c_str());
  return failed || !at_rest || !i3_ok || !digest_ok ? 1 : 0;
}

// ---- parent: one child per run -----------------------------------------

struct ChildRun {
  int status = -1; // exit status; 124 timed out; -1 did not start
  Result result;
  double wall = 0;
};

std::vector<std::string> base_child_args(const Options &o) {
  std::vector<std::string> a = {"--child",
                                "--data-dir",
                                o.data_dir,
                                "--files",
                                std::to_string(o.spec.files),
                                "--file-size",
                                size_arg(o.spec.file_bytes),
                                "--columns",
                                std::to_string(o.spec.columns),
                                "--stripe-size",
                                size_arg(o.spec.stripe_bytes),
                                "--seed",
                                std::to_string(o.spec.seed),
                                "--split-size",
                                size_arg(o.split),
                                "--threads",
                                std::to_string(o.threads),
                                "--batch-rows",
                                std::to_string(o.batch_rows),
                                "--initial",
                                size_arg(o.initial),
                                "--pool",
                                o.bound_pool ? "bound" : "task",
                                "--arenas",
                                std::to_string(o.arenas),
                                "--timeout-s",
                                std::to_string(o.timeout_s)};
  if (o.quiet)
    a.push_back("--quiet");
  return a;
}

ChildRun run_child(const std::vector<std::string> &args, double timeout_s) {
  ChildRun cr;
  int fds[2];
  if (pipe(fds) != 0)
    return cr;
  std::fflush(stdout);
  std::fflush(stderr);
  const double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return cr;
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char *> argv;
    static char self[] = "hmb_bench_orc";
    argv.push_back(self);
    for (const std::string &s : args)
      argv.push_back(const_cast<char *>(s.c_str()));
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  bool killed = false;
  for (;;) {
    struct pollfd pfd = {fds[0], POLLIN, 0};
    int n = poll(&pfd, 1, 200);
    if (n > 0) {
      char buf[4096];
      ssize_t k = read(fds[0], buf, sizeof buf);
      if (k <= 0)
        break;
      out.append(buf, static_cast<size_t>(k));
    }
    if (!killed && now_s() - t0 > timeout_s) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  cr.wall = now_s() - t0;
  cr.status = killed          ? 124
              : WIFEXITED(st) ? WEXITSTATUS(st)
                              : 128 + WTERMSIG(st);
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("RESULT ", 0) != 0)
      continue;
    std::istringstream ls(line.substr(7));
    std::string kv;
    while (ls >> kv) {
      size_t eq = kv.find('=');
      if (eq != std::string::npos)
        cr.result.kv[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  return cr;
}

double median(std::vector<double> v) {
  if (v.empty())
    return NAN;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Row {
  std::string table; // "policies" or "tight"
  std::string policy;
  std::string limit_name;
  std::uint64_t limit = 0;
  std::vector<Result> runs;
  double med(const std::string &k) const {
    std::vector<double> v;
    for (const Result &r : runs)
      v.push_back(r.num(k));
    return median(v);
  }
};

const char *const kFields[] = {"wall_s",
                               "cpu_s",
                               "maxrss_kib",
                               "hwm_kib",
                               "peak_held",
                               "peak_live",
                               "peak_over",
                               "max_task_peak_live",
                               "i3_bound",
                               "decoded",
                               "file_bytes",
                               "rows",
                               "need",
                               "estimate",
                               "borrows",
                               "borrow_overcommits",
                               "acquire_overcommits",
                               "released_early",
                               "grows",
                               "requeues",
                               "wait_s",
                               "mallocs",
                               "zero_mallocs",
                               "default_peak"};

double mib(double b) {
  return b / static_cast<double>(kMiB);
}

void print_table(const std::vector<Row> &rows, const char *title) {
  std::printf("\n%s\n", title);
  std::printf("%-10s %9s %7s %8s %8s %6s %7s %9s %9s %8s %8s %9s %8s %7s\n",
              "policy", "limit", "wall_s", "dec_MB/s", "file_MB/s", "cpu_s",
              "rss_MiB", "peak_held", "peak_live", "mem_peak", "over",
              "I3_bound", "requeues", "borrows");
  std::printf("%-10s %9s %7s %8s %8s %6s %7s %9s %9s %8s %8s %9s %8s %7s\n", "",
              "MiB", "", "", "", "", "", "MiB", "MiB", "MiB", "MiB", "MiB", "",
              "");
  for (const Row &r : rows) {
    const double wall = r.med("wall_s");
    char lim[32];
    if (r.limit == 0)
      std::snprintf(lim, sizeof lim, "inf");
    else if (r.limit < kMiB)
      std::snprintf(lim, sizeof lim, "%.0fK",
                    static_cast<double>(r.limit) / kKiB);
    else
      std::snprintf(lim, sizeof lim, "%.2f", mib(static_cast<double>(r.limit)));
    bool budget = budgeted(policy_of(r.policy));
    char mem[32];
    if (r.med("mem_peak") >= 0)
      std::snprintf(mem, sizeof mem, "%.1f", mib(r.med("mem_peak")));
    else
      std::snprintf(mem, sizeof mem, "-");
    char i3[32];
    if (budget)
      std::snprintf(i3, sizeof i3, "%.1f", mib(r.med("i3_bound")));
    else
      std::snprintf(i3, sizeof i3, "-");
    std::printf("%-10s %9s %7.2f %8.1f %8.1f %6.2f %7.1f %9.1f %9.1f %8s %8.1f "
                "%9s %8.0f %7.0f\n",
                r.policy.c_str(), lim, wall, r.med("decoded") / wall / 1e6,
                r.med("file_bytes") / wall / 1e6, r.med("cpu_s"),
                r.med("maxrss_kib") / 1024, mib(r.med("peak_held")),
                mib(r.med("peak_live")), mem, mib(r.med("peak_over")), i3,
                r.med("requeues"), r.med("borrows"));
  }
}

void write_csv(const std::string &path, const std::vector<Row> &rows) {
  FILE *f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return;
  }
  std::fprintf(f, "table,policy,limit_name,limit_bytes,run");
  for (const char *k : kFields)
    std::fprintf(f, ",%s", k);
  std::fprintf(f, ",digest,i3_ok,at_rest\n");
  for (const Row &r : rows) {
    for (size_t i = 0; i <= r.runs.size(); i++) {
      bool med = i == r.runs.size();
      std::fprintf(f, "%s,%s,%s,%" PRIu64 ",%s", r.table.c_str(),
                   r.policy.c_str(), r.limit_name.c_str(), r.limit,
                   med ? "median" : std::to_string(i).c_str());
      for (const char *k : kFields)
        std::fprintf(f, ",%.9g", med ? r.med(k) : r.runs[i].num(k));
      if (med)
        std::fprintf(f, ",,,\n");
      else
        std::fprintf(f, ",%s,%s,%s\n", r.runs[i].str("digest").c_str(),
                     r.runs[i].str("i3_ok").c_str(),
                     r.runs[i].str("at_rest").c_str());
    }
  }
  std::fclose(f);
}

// One "name": value pair; a missing figure (a failed run) is null.
void json_num(FILE *f, const char *sep, const char *name, double v) {
  if (std::isfinite(v))
    std::fprintf(f, "%s\"%s\": %.9g", sep, name, v);
  else
    std::fprintf(f, "%s\"%s\": null", sep, name);
}

void write_json(const std::string &path, const Options &o, const Result &gen,
                const std::vector<Row> &rows, bool ok) {
  FILE *f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return;
  }
  std::fprintf(f, "{\n  \"bench\": \"hmb_bench_orc\",\n  \"ok\": %s,\n",
               ok ? "true" : "false");
  std::fprintf(f,
               "  \"data\": {\"files\": %d, \"columns\": %d, \"bytes\": %s, "
               "\"rows\": %s, "
               "\"stripes\": %s, \"max_stripe\": %s, \"stripe_size\": %" PRIu64
               ", \"compression\": \"zstd\"},\n",
               o.spec.files, o.spec.columns, gen.str("bytes").c_str(),
               gen.str("rows").c_str(), gen.str("stripes").c_str(),
               gen.str("max_stripe").c_str(), o.spec.stripe_bytes);
  std::fprintf(f,
               "  \"scan\": {\"threads\": %d, \"split_size\": %" PRIu64
               ", \"limit\": %" PRIu64 ", \"batch_rows\": %" PRIu64
               ", \"repeat\": %d, \"malloc_arenas\": %d, \"pool\": \"%s\", "
               "\"projection\": \"every third column\"},\n",
               o.threads, o.split, o.limit, o.batch_rows, o.repeat, o.arenas,
               o.bound_pool ? "bound" : "task");
  std::fprintf(f, "  \"rows\": [\n");
  for (size_t i = 0; i < rows.size(); i++) {
    const Row &r = rows[i];
    std::fprintf(
        f,
        "    {\"table\": \"%s\", \"policy\": \"%s\", \"limit_name\": \"%s\", "
        "\"limit\": %" PRIu64 ", \"median\": {",
        r.table.c_str(), r.policy.c_str(), r.limit_name.c_str(), r.limit);
    for (size_t k = 0; k < sizeof kFields / sizeof *kFields; k++)
      json_num(f, k ? ", " : "", kFields[k], r.med(kFields[k]));
    std::fprintf(f, "}, \"runs\": [");
    for (size_t j = 0; j < r.runs.size(); j++) {
      std::fprintf(f, "%s{", j ? ", " : "");
      for (size_t k = 0; k < sizeof kFields / sizeof *kFields; k++)
        json_num(f, k ? ", " : "", kFields[k], r.runs[j].num(kFields[k]));
      std::fprintf(f, ", \"digest\": \"%s\"}", r.runs[j].str("digest").c_str());
    }
    std::fprintf(f, "]}%s\n", i + 1 < rows.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
}

bool g_quiet = false;

// Progress on stderr, unless --quiet.
__attribute__((format(printf, 1, 2))) void say(const char *fmt, ...) {
  if (g_quiet)
    return;
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  va_end(ap);
  std::fflush(stderr);
}

int parent(Options &o) {
  bool ok = true;
  g_quiet = o.quiet;
  // 1. The data set, in a child (the parent stays small: a forked child's
  // ru_maxrss starts at the parent's size).
  std::vector<std::string> ga = base_child_args(o);
  ga.push_back("--generate");
  say("data: %s\n", dataset_dir(o).c_str());
  ChildRun gen = run_child(ga, 3600);
  if (gen.status != 0 || gen.result.kv.empty()) {
    std::fprintf(stderr, "data set generation failed (exit %d)\n", gen.status);
    return 1;
  }
  const std::uint64_t max_stripe =
      static_cast<std::uint64_t>(gen.result.num("max_stripe"));
  if (o.limit == 0)
    o.limit = 2 * max_stripe;
  say("data: %s files, %.1f MiB, %s rows, %s stripes (largest %.2f MiB), %s in "
      "%.1f s\n",
      gen.result.str("files").c_str(), mib(gen.result.num("bytes")),
      gen.result.str("rows").c_str(), gen.result.str("stripes").c_str(),
      mib(static_cast<double>(max_stripe)),
      gen.result.num("generated") > 0 ? "generated" : "reused",
      gen.result.num("gen_s"));
  std::printf("ORC scan: %d files x %.1f MiB target, %d columns "
              "(bigint/double/string/int), "
              "ZSTD, stripes of %.1f MiB (largest %.2f MiB)\n",
              o.spec.files, mib(static_cast<double>(o.spec.file_bytes)),
              o.spec.columns, mib(static_cast<double>(o.spec.stripe_bytes)),
              mib(static_cast<double>(max_stripe)));
  std::printf("  splits of %.1f MiB, projection: every third column, %d "
              "threads, batches of "
              "%" PRIu64 " rows; limit %.2f MiB (budgeted policies)\n",
              mib(static_cast<double>(o.split)), o.threads, o.batch_rows,
              mib(static_cast<double>(o.limit)));
  if (o.arenas > 0)
    std::printf("  glibc malloc arenas per scan process: %d\n", o.arenas);

  // 2. The reference: ORC's default pool, once.
  std::vector<std::string> ra = base_child_args(o);
  ra.insert(ra.end(), {"--policy", "orc", "--limit", size_arg(o.limit)});
  ChildRun ref = run_child(ra, o.timeout_s + 60);
  const std::string digest = ref.result.str("digest");
  if (ref.status != 0 || digest.empty()) {
    std::fprintf(stderr,
                 "reference scan through ORC's default pool failed (exit %d)\n",
                 ref.status);
    return 1;
  }
  say("reference (ORC's default pool): checksum %s, %s rows, %.1f MB decoded\n",
      digest.c_str(), ref.result.str("rows").c_str(),
      ref.result.num("decoded") / 1e6);

  auto run_policy = [&](const std::string &table, int p,
                        const std::string &limit_name, std::uint64_t limit,
                        Row *row) {
    std::vector<std::string> a = base_child_args(o);
    // Unbudgeted policies ignore the limit; they are given the default one.
    a.insert(a.end(), {"--policy", kPolicyNames[p], "--limit",
                       size_arg(limit ? limit : o.limit), "--expect", digest});
    ChildRun cr = run_child(a, o.timeout_s + 60);
    bool good = cr.status == 0 && cr.result.str("digest") == digest &&
                cr.result.str("i3_ok") == "1" &&
                cr.result.str("at_rest") == "1" &&
                cr.result.str("failed") == "0";
    if (!good) {
      ok = false;
      std::fprintf(
          stderr,
          "FAILED: %s %s limit %s: exit %d%s, checksum %s (expected %s), I3 "
          "%s, at rest "
          "%s, failed tasks %s\n",
          table.c_str(), kPolicyNames[p], limit_name.c_str(), cr.status,
          cr.status == 124 ? " (did not finish: stuck?)" : "",
          cr.result.str("digest").c_str(), digest.c_str(),
          cr.result.str("i3_ok").c_str(), cr.result.str("at_rest").c_str(),
          cr.result.str("failed").c_str());
    }
    say("  %-6s %-9s limit %-7s %6.2f s%s\n", table.c_str(), kPolicyNames[p],
        limit_name.c_str(), cr.result.num("wall_s"), good ? "" : "  FAILED");
    if (!cr.result.kv.empty())
      row->runs.push_back(cr.result);
  };

  // 3. Every policy, --repeat times, the order rotating across repeats.
  std::vector<int> pols;
  for (int p = 0; p < kNPolicies; p++)
    if (o.policies & (1u << p))
      pols.push_back(p);
  std::vector<Row> rows(pols.size());
  for (size_t i = 0; i < pols.size(); i++) {
    rows[i].table = "policies";
    rows[i].policy = kPolicyNames[pols[i]];
    rows[i].limit_name = budgeted(pols[i]) ? "default" : "none";
    rows[i].limit = budgeted(pols[i]) ? o.limit : 0;
  }
  for (int rep = 0; rep < o.repeat; rep++)
    for (size_t k = 0; k < pols.size(); k++) {
      size_t i = (k + static_cast<size_t>(rep)) % pols.size();
      run_policy("run", pols[i], rows[i].limit_name, rows[i].limit, &rows[i]);
    }

  // 4. Tight limits: every scan must finish, with correct data, within I3.
  std::vector<Row> tight;
  if (o.tight) {
    for (const std::string &t : o.tight_limits) {
      std::uint64_t lim = 0;
      if (t == "stripe")
        lim = max_stripe;
      else if (t == "half")
        lim = max_stripe / 2;
      else
        parse_size(t.c_str(), &lim);
      for (int p : {kVirtual, kBound, kEarly, kStaged}) {
        Row r;
        r.table = "tight";
        r.policy = kPolicyNames[p];
        r.limit_name = t;
        r.limit = lim;
        run_policy("tight", p, t, lim, &r);
        tight.push_back(r);
      }
    }
  }

  char title[256];
  std::snprintf(title, sizeof title,
                "policies (median of %d runs, each in its own process; limit "
                "%.2f MiB = 2 x the "
                "largest stripe unless --limit)",
                o.repeat, mib(static_cast<double>(o.limit)));
  print_table(rows, title);
  if (o.tight)
    print_table(
        tight,
        "tight limits (one run each; every scan must finish with the reference "
        "checksum and peak_held <= I3_bound = limit + largest task peak live)");
  std::printf("dec_MB/s: bytes of values decoded (8 per number, string "
              "lengths) per second; "
              "file_MB/s: bytes ORC read from the files; MB = 10^6 bytes\n");
  std::printf("checks: %s\n",
              ok ? "all held (checksums equal the reference, pools at rest, I3)"
                 : "FAILED (see above)");

  std::vector<Row> all = rows;
  all.insert(all.end(), tight.begin(), tight.end());
  if (!o.csv.empty())
    write_csv(o.csv, all);
  if (!o.json.empty())
    write_json(o.json, o, gen.result, all, ok);
  return ok ? 0 : 1;
}

// ---- micro: what one malloc/free costs -------------------------------

int micro(const Options &o) {
  (void)o;
  hmb_pool_config_t pc;
  hmb_pool_config_init(&pc);
  pc.limit = 1u << 30;
  hmb_pool_t *pool = nullptr;
  if (hmb_pool_create(&pc, &pool) != 0)
    return 1;
  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = 64 * kMiB;
  hmb_runner_t *runner = nullptr;
  if (hmb_runner_create(pool, &rc, &runner) != 0 ||
      hmb_runner_start(runner, 0) != 0)
    return 1;
  hmb_orc::TaskPool def(hmb_default_allocator());
  hmb_orc::TaskPool task(runner);
  hmb_orc::BoundPool bound(hmb_orc::Unbound::kFail);
  struct Case {
    const char *name;
    orc::MemoryPool *pool;
    bool bind;
  } cases[] = {{"orc default pool", orc::getDefaultPool(), false},
               {"TaskPool(default allocator)", &def, false},
               {"TaskPool(runner)", &task, false},
               {"BoundPool(bound runner)", &bound, true}};
  const std::uint64_t sizes[] = {0, 64, 4096, 65536, 262144, 1 << 20};
  std::printf("ns per malloc+free pair, by size in bytes (1 thread, 64 blocks "
              "live at a time, "
              "the first byte of each written; median of 5 runs)\n");
  std::printf("%-30s", "size");
  for (std::uint64_t s : sizes)
    std::printf(" %9" PRIu64, s);
  std::printf("\n");
  volatile char sink = 0;
  for (const Case &c : cases) {
    hmb_orc::ScopedBind bind(c.bind ? runner : nullptr);
    std::printf("%-30s", c.name);
    for (std::uint64_t s : sizes) {
      std::vector<double> t;
      const int iters = s >= 262144 ? 200 : 4000;
      for (int rep = 0; rep < 6; rep++) {
        char *blocks[64];
        double t0 = now_s();
        for (int it = 0; it < iters / 64 + 1; it++) {
          for (char *&b : blocks) {
            b = c.pool->malloc(s);
            if (s)
              b[0] = 1;
          }
          for (char *b : blocks) {
            if (s)
              sink = static_cast<char>(sink + b[0]);
            c.pool->free(b);
          }
        }
        double dt = now_s() - t0;
        if (rep > 0) // the first is the warm-up
          t.push_back(dt * 1e9 / ((iters / 64 + 1) * 64.0));
      }
      std::printf(" %9.0f", median(t));
    }
    std::printf("\n");
  }
  (void)sink;
  hmb_runner_finish(runner, 0, nullptr);
  hmb_runner_destroy(runner);
  return hmb_pool_destroy(pool) == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  int rc = parse_options(argc, argv, &o);
  if (rc != 0)
    return rc;
#ifdef M_ARENA_MAX
  // Before any thread starts. By default every worker keeps its freed small
  // blocks in an arena of its own, and a scan's peak RSS counts them all.
  if (o.arenas > 0)
    mallopt(M_ARENA_MAX, o.arenas);
#endif
  try {
    if (o.micro)
      return micro(o);
    if (o.child)
      return o.generate ? child_generate(o) : child_scan(o);
    return parent(o);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "hmb_bench_orc: %s\n", e.what());
    return 1;
  }
}
