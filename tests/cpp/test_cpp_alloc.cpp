/*
 * test_cpp_alloc.cpp - standard containers over a runner: the pmr resource
 * with std::pmr::vector and std::pmr::string, the standard allocator with
 * std::vector, std::list and std::basic_string (sizes charged while alive,
 * returned after, growth reallocating through the runner, propagation on
 * move), and bind_scope nesting with the bound allocator.
 */
#include <cstdint>
#include <list>
#include <memory_resource>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

namespace {

void pmr_vector_and_string() {
  check::section("pmr: vector and string charge the runner");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner r(p, std::size_t{1} << 20);
  CHECK(r.start());
  hmb::memory_resource mem(r);
  CHECK(mem.c_allocator() == r.allocator());
  {
    std::pmr::vector<int> v(&mem);
    v.reserve(1000);
    hmb_runner_stats_t s = r.stats();
    CHECK_EQ(s.live, int64_t{1000 * sizeof(int)});
    CHECK_EQ(s.live_buffers, 1);
    CHECK_EQ(s.allocations, uint64_t{1});
    CHECK_EQ(p.stats().live_bytes, int64_t{1000 * sizeof(int)});
    for (int i = 0; i < 1000; i++) {
      v.push_back(i);
    }
    CHECK_EQ(r.stats().allocations, uint64_t{1}); // reserved: no regrowth
    CHECK_EQ(v[999], 999);

    // A string's growth policy is the library's: compare with what it
    // really asked for, through a recording resource over ours.
    support::recording_resource rec(&mem);
    {
      std::pmr::string str(&rec);
      str.assign(300, 'x');
      str += std::string(700, 'y');
      CHECK(rec.outstanding() >= 1001);
      CHECK_EQ(rec.blocks(), std::size_t{1});
      s = r.stats();
      CHECK_EQ(s.live, int64_t(1000 * sizeof(int) + rec.outstanding()));
      CHECK_EQ(s.live_buffers, 2);
      CHECK_EQ(str.size(), std::size_t{1000});
    }
    CHECK_EQ(rec.outstanding(), std::size_t{0});
    CHECK_EQ(r.stats().live, int64_t{1000 * sizeof(int)});
  }
  hmb_runner_stats_t s = r.stats();
  CHECK_EQ(s.live, 0);
  CHECK_EQ(s.live_buffers, 0);
  CHECK_EQ(s.held, int64_t{1} << 20); // running: the budget stays
  CHECK_EQ(p.stats().live_bytes, 0);

  // Alignment as given, up to HMB_MAX_ALIGN.
  void *a = mem.allocate(100, 4096);
  CHECK_EQ(reinterpret_cast<std::uintptr_t>(a) % 4096, 0u);
  CHECK_EQ(hmb_ptr_size(a), std::size_t{100});
  CHECK_EQ(r.stats().live, 100);
  mem.deallocate(a, 100, 4096);
  void *one = mem.allocate(1, 1);
  CHECK(one != nullptr);
  mem.deallocate(one, 1, 1);
  CHECK_THROWS(hmb::alloc_error, (void)mem.allocate(8, HMB_MAX_ALIGN * 2), err,
               CHECK_EQ(err.code(), HMB_EINVAL));
  CHECK_EQ(r.stats().live, 0);

  // Equality: same object, or another hmb resource over the same allocator.
  hmb::memory_resource same(r.allocator());
  hmb::memory_resource other(hmb_default_allocator());
  CHECK(mem.is_equal(mem));
  CHECK(mem.is_equal(same));
  CHECK(!mem.is_equal(other));
  CHECK(!mem.is_equal(*std::pmr::new_delete_resource()));
  CHECK(mem == same);
  CHECK(mem != other);

  // A pmr container may free after the runner's handle is gone.
  std::pmr::vector<char> outlives(&mem);
  outlives.resize(4000);
  CHECK_EQ(r.finish(), std::size_t{(1 << 20) - 4000});
  r.destroy();
  CHECK_EQ(p.stats().held, 4000);
  CHECK_EQ(p.stats().runners, 1); // detached, kept by the vector
  outlives = std::pmr::vector<char>(&mem);
  CHECK_EQ(p.stats().held, 0);
  EXPECT_POOL_CLEAN(p);
}

void standard_allocator() {
  check::section("allocator<T>: vector growth, list nodes, strings");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner r(p, std::size_t{1} << 19);
  hmb::runner r2(p, std::size_t{1} << 18);
  CHECK(r.start());
  CHECK(r2.start());
  {
    using vec = std::vector<int, hmb::allocator<int>>;
    vec v{hmb::allocator<int>(r)};
    std::size_t cap = 0;
    uint64_t growths = 0;
    for (int i = 0; i < 10000; i++) {
      v.push_back(i);
      if (v.capacity() != cap) {
        cap = v.capacity();
        growths++;
        // The old block is already freed: only the new one is live.
        hmb_runner_stats_t s = r.stats();
        CHECK_EQ(s.live, int64_t(cap * sizeof(int)));
        CHECK_EQ(s.live_buffers, 1);
      }
    }
    CHECK(growths > 1);
    CHECK_EQ(r.stats().allocations, growths);
    CHECK_EQ(r.stats().live, int64_t(v.capacity() * sizeof(int)));
    CHECK_EQ(v[9999], 9999);
    v.shrink_to_fit();
    CHECK_EQ(r.stats().live, int64_t(v.capacity() * sizeof(int)));
    CHECK_EQ(r2.stats().live, 0);

    // Rebinding: list nodes are allocated through the same runner.
    std::list<int, hmb::allocator<int>> l{hmb::allocator<int>(r2)};
    for (int i = 0; i < 10; i++) {
      l.push_back(i);
    }
    CHECK_EQ(r2.stats().live_buffers, 10);
    CHECK(r2.stats().live >= int64_t(10 * sizeof(int)));
    l.clear();
    CHECK_EQ(r2.stats().live_buffers, 0);
    CHECK_EQ(r2.stats().live, 0);

    // basic_string with the allocator (past the small-string buffer).
    using str =
        std::basic_string<char, std::char_traits<char>, hmb::allocator<char>>;
    str s(500, 'z', hmb::allocator<char>(r2));
    CHECK_EQ(r2.stats().live_buffers, 1);
    CHECK(r2.stats().live >= 501);
    s.clear();
    s.shrink_to_fit();
    CHECK_EQ(r2.stats().live, 0);

    // Equality by allocator, across value types.
    CHECK(hmb::allocator<int>(r) == hmb::allocator<long>(r));
    CHECK(hmb::allocator<int>(r) != hmb::allocator<int>(r2));
    CHECK(hmb::allocator<int>(r) == v.get_allocator());

    // Move assignment carries the allocator: the storage stays charged to
    // the runner that allocated it.
    vec w{hmb::allocator<int>(r2)};
    w.push_back(1);
    int64_t r_live = r.stats().live;
    w = std::move(v);
    CHECK(w.get_allocator() == hmb::allocator<int>(r));
    CHECK_EQ(r.stats().live, r_live);
    CHECK_EQ(r2.stats().live, 0); // w's old block was freed
    CHECK_EQ(w.size(), std::size_t{10000});
  }
  CHECK_EQ(r.stats().live, 0);
  CHECK_EQ(r2.stats().live, 0);
  CHECK_EQ(p.stats().live_bytes, 0);
  r.destroy();
  r2.destroy();
  EXPECT_POOL_CLEAN(p);
}

void bind_scopes() {
  check::section("bind_scope: nesting, restore, bound allocators");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner a(p, 8192);
  hmb::runner b(p, 8192);
  CHECK(a.start());
  CHECK(b.start());
  hmb::memory_resource strict(hmb_bound_allocator(HMB_UNBOUND_FAIL));
  CHECK(hmb::bound_runner().get() == nullptr);
  CHECK_THROWS(hmb::alloc_error, (void)strict.allocate(64), err,
               CHECK_EQ(err.code(), HMB_ESTATE));
  void *in_b = nullptr;
  {
    hmb::bind_scope outer(a);
    CHECK(outer.previous().get() == nullptr);
    CHECK(hmb_runner_bound() == a.get());
    void *x = strict.allocate(100);
    CHECK_EQ(a.stats().live, 100);
    {
      hmb::bind_scope inner(b);
      CHECK(inner.previous().get() == a.get());
      CHECK(hmb::bound_runner().get() == b.get());
      in_b = strict.allocate(200);
      CHECK_EQ(b.stats().live, 200);
      CHECK_EQ(a.stats().live, 100);
      {
        hmb::bind_scope none(nullptr); // unbinds for the scope
        CHECK(hmb_runner_bound() == nullptr);
        CHECK_THROWS(hmb::alloc_error, (void)strict.allocate(1), err,
                     CHECK_EQ(err.code(), HMB_ESTATE));
      }
      CHECK(hmb_runner_bound() == b.get());
      // A default-constructed allocator charges the bound runner too.
      std::vector<int, hmb::allocator<int>> v;
      v.resize(50);
      CHECK_EQ(b.stats().live, int64_t(200 + 50 * sizeof(int)));
    }
    CHECK(hmb_runner_bound() == a.get()); // restored
    strict.deallocate(in_b, 200);         // frees go to the block's own runner
    CHECK_EQ(b.stats().live, 0);
    CHECK_EQ(a.stats().live, 100);
    strict.deallocate(x, 100);
    CHECK_EQ(a.stats().live, 0);

    // A default-constructed resource is the lenient bound allocator.
    hmb::memory_resource lenient;
    std::pmr::vector<int> pv(&lenient);
    pv.resize(10);
    CHECK_EQ(a.stats().live, int64_t(10 * sizeof(int)));
  }
  CHECK(hmb_runner_bound() == nullptr);
  CHECK_EQ(a.stats().live, 0);
  {
    // Unbound: the lenient allocator charges nobody.
    hmb::memory_resource lenient;
    std::pmr::vector<int> pv(&lenient);
    pv.resize(10);
    CHECK_EQ(a.stats().live, 0);
    CHECK_EQ(b.stats().live, 0);
    CHECK_EQ(p.stats().live_bytes, 0);
  }
  a.destroy();
  b.destroy();
  EXPECT_POOL_CLEAN(p);
}

} // namespace

int main() {
  pmr_vector_and_string();
  standard_allocator();
  bind_scopes();
  return check::exit_status("test_cpp_alloc");
}
