/*
 * test_cpp_noexcept.cpp - hmb.hpp built with -fno-exceptions and -fno-rtti
 * (this file's compile options): the header compiles, the try_ forms and
 * close() report every code without exceptions, and the allocator, the pmr
 * resource (equality by identity without RTTI), bind_scope and the
 * executor work on their success paths.
 */
#include <memory_resource>
#include <vector>

#include "support.hpp"

#if HMB_HPP_EXCEPTIONS || HMB_HPP_RTTI
#error "this test must be built with -fno-exceptions -fno-rtti"
#endif

namespace {

void try_forms() {
  check::section("no exceptions: try_ forms");
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg);
  hmb::pool p;
  CHECK_EQ(hmb::pool::try_create(cfg, p), HMB_EINVAL);
  cfg.limit = std::size_t{1} << 16;
  CHECK_EQ(hmb::pool::try_create(cfg, p), 0);

  hmb_runner_config_t rc;
  hmb_runner_config_init(&rc);
  rc.estimate = std::size_t{1} << 16;
  hmb::runner a;
  hmb::runner b;
  CHECK_EQ(hmb::runner::try_create(p.get(), rc, a), 0);
  rc.estimate = 100;
  CHECK_EQ(hmb::runner::try_create(p.get(), rc, b), 0);
  CHECK_EQ(a.try_start(hmb::no_wait), 0);
  CHECK_EQ(b.try_start(hmb::no_wait), HMB_ETIMEDOUT); // retry later
  CHECK_EQ(a.try_start(), HMB_ESTATE);

  hmb::buffer buf;
  CHECK_EQ(a.try_alloc(1000, buf), 0);
  CHECK_EQ(buf.size(), std::size_t{1000});
  hmb::buffer sl;
  CHECK_EQ(buf.try_slice(10, 20, sl), 0);
  CHECK_EQ(sl.size(), std::size_t{20});
  CHECK_EQ(buf.refcount(), 2L);
  CHECK_EQ(buf.try_slice(0, 0, sl), HMB_EINVAL);
  CHECK(!sl); // the previous slice was closed
  CHECK_EQ(buf.refcount(), 1L);
  CHECK_EQ(a.try_grow(std::size_t{1} << 15, hmb::no_wait), 0); // holds it
  std::size_t returned = 1;
  CHECK_EQ(a.try_finish(0, &returned), 0);
  CHECK_EQ(returned, std::size_t{(1 << 16) - 1000});
  CHECK_EQ(a.try_finish(), HMB_ESTATE);
  CHECK_EQ(b.try_start(hmb::no_wait), 0);
  CHECK_EQ(b.try_alloc(std::size_t{1} << 17, buf), 0); // progress: borrows
  CHECK_EQ(buf.close(), 0);
  CHECK_EQ(b.try_finish(), 0);

  a.destroy();
  b.destroy();
  EXPECT_POOL_CLEAN(p);
}

void success_paths() {
  check::section("no exceptions: allocator, resource, bind_scope, executor");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner r(p, std::size_t{1} << 18);
  CHECK(r.start());
  {
    hmb::memory_resource mem(r);
    hmb::memory_resource same(r.allocator());
    CHECK(mem.is_equal(mem));
    CHECK(!mem.is_equal(same)); // identity only without RTTI
    std::pmr::vector<int> v(&mem);
    v.resize(100);
    std::vector<int, hmb::allocator<int>> w{hmb::allocator<int>(r)};
    w.resize(50);
    CHECK_EQ(r.stats().live, int64_t((100 + 50) * sizeof(int)));
    hmb::bind_scope scope(r);
    std::vector<int, hmb::allocator<int>> bound(25);
    CHECK_EQ(r.stats().live, int64_t((100 + 50 + 25) * sizeof(int)));
  }
  CHECK_EQ(r.stats().live, 0);
  r.destroy();
  {
    hmb::executor ex(p, hmb::executor_options().threads(1));
    hmb::task t = ex.submit([](hmb::runner_ref tr) {
      hmb::buffer b;
      return tr.try_alloc(64, b) == 0 && b.size() == 64 ? 5 : 1;
    });
    int status = 0;
    CHECK_EQ(t.try_wait(hmb::wait_forever, &status), 0);
    CHECK_EQ(status, 5);
  }
  EXPECT_POOL_CLEAN(p);
}

} // namespace

int main() {
  try_forms();
  success_paths();
  return check::exit_status("test_cpp_noexcept");
}
