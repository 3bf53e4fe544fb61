/*
 * test_cpp_threads.cpp - the wrapper from several threads (for
 * ThreadSanitizer as much as for the counts): two threads allocating
 * through one pmr resource over one runner; two threads each binding its
 * own runner and allocating through default-constructed allocators; slices
 * of one buffer retained and closed on other threads than the one that
 * allocated it. Every count is checked against the runners' statistics.
 */
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory_resource>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

/* Both threads start their loops together, so that they do overlap. */
class start_line {
public:
  void arrive_and_wait() {
    waiting_.fetch_add(1);
    while (waiting_.load() < 2) {
      std::this_thread::yield();
    }
  }

private:
  std::atomic<int> waiting_{0};
};

long env_long(const char *name, long def) {
  const char *v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtol(v, nullptr, 10) : def;
}

void shared_resource(long iters) {
  check::section("threads: two threads, one pmr resource, one runner");
  hmb::pool p(std::size_t{1} << 22);
  hmb::runner r(p, std::size_t{1} << 22);
  CHECK(r.start());
  hmb::memory_resource mem(r);
  std::atomic<long> sum{0};
  start_line line;
  auto work = [&](int seed) {
    line.arrive_and_wait();
    long local = 0;
    for (long i = 0; i < iters; i++) {
      std::pmr::vector<int> v(&mem); // one allocation of exactly n ints
      std::size_t n = static_cast<std::size_t>((i * 7 + seed) % 100 + 1);
      v.resize(n, seed);
      local += static_cast<long>(v.size());
    }
    sum.fetch_add(local);
  };
  std::thread t1(work, 1);
  std::thread t2(work, 2);
  t1.join();
  t2.join();
  hmb_runner_stats_t s = r.stats();
  CHECK_EQ(s.allocations, static_cast<uint64_t>(2 * iters));
  CHECK_EQ(s.live, 0);
  CHECK_EQ(s.live_buffers, 0);
  // The live bytes never pass 1 KiB, far below what the runner holds, so
  // no allocation may borrow and the pool never goes beyond its limit
  // (hmb/pool.h, I4), however the two threads interleave.
  CHECK_EQ(s.held, int64_t{1} << 22);
  CHECK_EQ(s.borrows, uint64_t{0});
  CHECK_EQ(p.stats().peak_overcommitted, 0);
  CHECK(s.peak_live > 0);
  CHECK(sum.load() > 0);
  r.destroy();
  EXPECT_POOL_CLEAN(p);
}

void bound_per_thread(long iters) {
  check::section("threads: each thread binds its own runner");
  hmb::pool p(std::size_t{1} << 22);
  hmb::runner r1(p, std::size_t{1} << 21);
  hmb::runner r2(p, std::size_t{1} << 21);
  CHECK(r1.start());
  CHECK(r2.start());
  std::atomic<int> wrong_binding{0};
  start_line line;
  auto work = [&](hmb::runner_ref mine) {
    hmb::bind_scope scope(mine);
    line.arrive_and_wait();
    for (long i = 0; i < iters; i++) {
      std::vector<long, hmb::allocator<long>> v; // the bound runner
      v.reserve(static_cast<std::size_t>(i % 64 + 1));
      if (hmb_runner_bound() != mine.get()) {
        wrong_binding++;
      }
    }
  };
  std::thread t1(work, hmb::runner_ref(r1));
  std::thread t2(work, hmb::runner_ref(r2));
  t1.join();
  t2.join();
  CHECK_EQ(wrong_binding.load(), 0);
  CHECK(hmb_runner_bound() == nullptr); // this thread's binding untouched
  hmb_runner_stats_t s1 = r1.stats();
  hmb_runner_stats_t s2 = r2.stats();
  CHECK_EQ(s1.allocations, static_cast<uint64_t>(iters));
  CHECK_EQ(s2.allocations, static_cast<uint64_t>(iters));
  CHECK_EQ(s1.live, 0);
  CHECK_EQ(s2.live, 0);
  r1.destroy();
  r2.destroy();
  EXPECT_POOL_CLEAN(p);
}

void slices_across_threads(long iters) {
  check::section("threads: slices retained and closed on other threads");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner r(p, std::size_t{1} << 16);
  CHECK(r.start());
  hmb::buffer parent = r.alloc(4096);
  auto *bytes = parent.data_as<unsigned char>();
  for (int i = 0; i < 4096; i++) {
    bytes[i] = static_cast<unsigned char>(i & 0xff);
  }
  std::atomic<long> bad{0};
  start_line line;
  auto work = [&](std::size_t offset) {
    line.arrive_and_wait();
    for (long i = 0; i < iters; i++) {
      hmb::buffer s = parent.slice(offset, 16);
      hmb::buffer again = s.retain();
      if (std::size_t{again.data_as<unsigned char>()[0]} != (offset & 0xff)) {
        bad++;
      }
    } // both closed here, on this thread
  };
  std::thread t1(work, std::size_t{0});
  std::thread t2(work, std::size_t{1000});
  t1.join();
  t2.join();
  CHECK_EQ(bad.load(), 0L);
  CHECK_EQ(parent.refcount(), 1L);
  CHECK_EQ(r.stats().live, 4096);

  // The last reference closed on another thread returns the budget.
  std::thread closer([b = std::move(parent)]() mutable { b = hmb::buffer(); });
  closer.join();
  CHECK_EQ(r.stats().live, 0);
  CHECK_EQ(r.stats().live_buffers, 0);
  r.destroy();
  EXPECT_POOL_CLEAN(p);
}

} // namespace

int main() {
  long iters = env_long("HMB_CPP_THREAD_ITERS", 20000);
  shared_resource(iters);
  bound_per_thread(iters);
  slices_across_threads(iters / 4);
  return check::exit_status("test_cpp_threads");
}
