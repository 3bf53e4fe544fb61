/*
 * test_cpp_errors.cpp - the error model of hmb.hpp: the exception types,
 * their codes and messages; a timed-out start or grow returns false and
 * can be retried without an exception; the try_ forms return the codes;
 * wrong states, cancellation, the over-commit cap and max_request throw
 * the right code and leave every counter as it was.
 */
#include <chrono>
#include <memory_resource>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace {

std::string expected_message(const char *call, int code) {
  return std::string(call) + ": " + hmb_strerror(code) + " (" +
         hmb_errname(code) + ")";
}

void exception_types() {
  check::section("exceptions: types, codes, messages");
  hmb::error e(HMB_ESTATE, "hmb_runner_finish");
  CHECK_EQ(e.code(), HMB_ESTATE);
  CHECK_EQ(std::string(e.call()), "hmb_runner_finish");
  CHECK_EQ(std::string(e.what()),
           expected_message("hmb_runner_finish", HMB_ESTATE));
  CHECK_EQ(std::string(e.message()), std::string(e.what()));

  hmb::alloc_error a(HMB_ELIMIT, "hmb_ptr_alloc");
  hmb::alloc_error copy = a; // copying never allocates
  CHECK_EQ(copy.code(), HMB_ELIMIT);
  CHECK_EQ(std::string(copy.what()),
           expected_message("hmb_ptr_alloc", HMB_ELIMIT));

  // Each is caught as its standard base, and both as hmb::failure.
  CHECK_THROWS(
      std::runtime_error, throw hmb::error(HMB_EBUSY, "x"), err,
      CHECK_EQ(std::string(err.what()), expected_message("x", HMB_EBUSY)));
  CHECK_THROWS(
      std::bad_alloc, throw hmb::alloc_error(HMB_ENOMEM, "y"), err,
      CHECK_EQ(std::string(err.what()), expected_message("y", HMB_ENOMEM)));
  int codes = 0;
  for (int i = 0; i < 2; i++) {
    try {
      if (i == 0) {
        throw hmb::error(HMB_EINVAL, "a");
      }
      throw hmb::alloc_error(HMB_ETOOBIG, "b");
    } catch (const hmb::failure &f) {
      codes += f.code();
    }
  }
  CHECK_EQ(codes, HMB_EINVAL + HMB_ETOOBIG);
  try {
    throw hmb::alloc_error(HMB_ECANCELED, "c");
  } catch (const std::exception &ex) {
    // One std::exception base: not ambiguous.
    CHECK_EQ(std::string(ex.what()), expected_message("c", HMB_ECANCELED));
  }
}

void start_timeout_is_not_an_exception() {
  check::section("start: a timeout returns false and may be retried");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner a(p, std::size_t{1} << 20);
  CHECK(a.start(hmb::no_wait));
  hmb::runner b(p, 4096);
  bool started = true;
  try {
    started = b.start(hmb::no_wait);
  } catch (...) {
    check::fail(__FILE__, __LINE__, "a timed-out start threw");
  }
  CHECK(!started);
  CHECK_EQ(b.state(), HMB_RUNNER_CREATED);
  CHECK_EQ(b.stats().held, 0);
  CHECK_EQ(p.stats().held, int64_t{1} << 20);
  CHECK_EQ(b.try_start(hmb::no_wait), HMB_ETIMEDOUT);
  CHECK(!b.start(std::chrono::milliseconds(20))); // a real, short wait
  CHECK(p.stats().acquire_timeouts >= 1);
  CHECK_EQ(b.try_start_partial(100, hmb::no_wait), HMB_ETIMEDOUT);
  CHECK(!b.start_partial(100, hmb::no_wait));
  CHECK_EQ(b.state(), HMB_RUNNER_CREATED);

  CHECK_EQ(a.finish(), std::size_t{1} << 20);
  CHECK(b.start(hmb::no_wait)); // the retry succeeds
  CHECK_EQ(b.stats().held, 4096);
  CHECK_EQ(b.state(), HMB_RUNNER_RUNNING);

  // A second start is a caller bug: it throws.
  CHECK_THROWS(hmb::error, (void)b.start(), err, {
    CHECK_EQ(err.code(), HMB_ESTATE);
    CHECK_EQ(std::string(err.call()), "hmb_runner_start");
    CHECK_EQ(std::string(err.what()),
             expected_message("hmb_runner_start", HMB_ESTATE));
  });
  CHECK_EQ(b.try_start(), HMB_ESTATE);
  CHECK_EQ(b.finish(7), std::size_t{4096});
  CHECK_EQ(b.state(), HMB_RUNNER_FAILED);
  CHECK_THROWS(hmb::error, (void)b.finish(), err,
               CHECK_EQ(err.code(), HMB_ESTATE));
  CHECK_EQ(b.try_finish(), HMB_ESTATE);
  CHECK(!b.cancel()); // already finished: too late, not an exception
  a.destroy();
  b.destroy();
  EXPECT_POOL_CLEAN(p);
}

void grow_timeout() {
  check::section("grow: a timeout returns false; staged admission");
  hmb::pool p(std::size_t{1} << 16);
  hmb::runner a(p, std::size_t{1} << 16);
  CHECK(a.start());
  hmb::runner b(p, std::size_t{1} << 16);
  CHECK(b.start_partial(0, hmb::no_wait)); // a first piece of 0 fits
  CHECK_EQ(b.stats().held, 0);
  CHECK(!b.grow(1000, hmb::no_wait));
  CHECK_EQ(b.try_grow(1000, hmb::no_wait), HMB_ETIMEDOUT);
  CHECK_EQ(b.stats().held, 0);
  CHECK(p.stats().borrow_timeouts >= 1);
  CHECK_EQ(a.finish(), std::size_t{1} << 16);
  CHECK(b.grow(1000, hmb::no_wait));
  CHECK_EQ(b.stats().held, 1000);
  CHECK(b.grow(500)); // holds that much already
  CHECK_EQ(b.stats().held, 1000);
  CHECK_THROWS(hmb::error, (void)b.set_need(hmb::max_alloc + 1), err,
               CHECK_EQ(err.code(), HMB_ETOOBIG));
  CHECK_EQ(b.stats().held, 1000);

  // wait_idle: false while a buffer is live, true once it is closed.
  hmb::buffer x = b.alloc(10);
  CHECK(!b.wait_idle(hmb::no_wait));
  x = hmb::buffer();
  CHECK(b.wait_idle(hmb::no_wait));
  a.destroy();
  b.destroy();
  EXPECT_POOL_CLEAN(p);
}

void cancelled_runner() {
  check::section("cancel: allocations throw HMB_ECANCELED");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner r(p, 4096);
  CHECK(r.start());
  hmb::buffer kept = r.alloc(100);
  hmb::buffer out = r.alloc(1);
  CHECK(r.cancel());
  CHECK(r.cancel()); // idempotent
  CHECK(r.cancelled());
  CHECK_EQ(r.state(), HMB_RUNNER_CANCELLED);
  CHECK_THROWS(hmb::alloc_error, (void)r.alloc(10), err, {
    CHECK_EQ(err.code(), HMB_ECANCELED);
    CHECK_EQ(std::string(err.what()),
             expected_message("hmb_runner_alloc", HMB_ECANCELED));
  });
  CHECK_EQ(r.try_alloc(10, out), HMB_ECANCELED);
  CHECK(!out); // what it held was closed; nothing new
  hmb::memory_resource mem(r);
  std::pmr::vector<int> v(&mem);
  CHECK_THROWS(std::bad_alloc, v.push_back(1), err, {
    const auto *f = dynamic_cast<const hmb::failure *>(&err);
    CHECK(f != nullptr);
    CHECK_EQ(f != nullptr ? f->code() : 0, HMB_ECANCELED);
  });
  CHECK(v.empty());
  hmb_runner_stats_t s = r.stats();
  CHECK_EQ(s.live, 100); // failures changed nothing
  CHECK_EQ(s.held, 4096);
  CHECK_EQ(s.allocations, uint64_t{2});
  kept = hmb::buffer();
  CHECK_EQ(r.finish(), std::size_t{4096});
  CHECK_EQ(r.state(), HMB_RUNNER_CANCELLED);

  // Cancelled before start, and while waiting in start on another thread.
  hmb::runner c(p, 10);
  CHECK(c.cancel());
  CHECK_THROWS(hmb::error, (void)c.start(), err, {
    CHECK_EQ(err.code(), HMB_ECANCELED);
    CHECK_EQ(std::string(err.call()), "hmb_runner_start");
  });
  hmb::runner holder(p, std::size_t{1} << 20);
  CHECK(holder.start());
  hmb::runner waiter(p, 4096);
  int rc = 1;
  std::thread t([&] { rc = waiter.try_start(hmb::wait_forever); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(waiter.cancel());
  t.join();
  CHECK_EQ(rc, HMB_ECANCELED);
  CHECK_EQ(waiter.stats().held, 0);
  r.destroy();
  c.destroy();
  holder.destroy();
  waiter.destroy();
  EXPECT_POOL_CLEAN(p);
}

void overcommit_cap_and_max_request() {
  check::section("limits: the over-commit cap and max_request");
  hmb::pool p(hmb::pool_options(std::size_t{1} << 16)
                  .overcommit_cap(0)
                  .max_request(std::size_t{1} << 20));
  hmb::runner r(p, hmb::runner_options(std::size_t{1} << 16)
                       .borrow_timeout(std::chrono::seconds(5)));
  CHECK(r.start());
  CHECK_EQ(p.stats().overcommit_cap, 0);
  // The progress runner's borrow would go beyond the limit: refused.
  CHECK_THROWS(hmb::alloc_error, (void)r.alloc(std::size_t{1} << 17), err, {
    CHECK_EQ(err.code(), HMB_ELIMIT);
    CHECK_EQ(std::string(err.call()), "hmb_runner_alloc");
  });
  hmb::buffer none;
  CHECK_EQ(r.try_alloc(std::size_t{1} << 17, none), HMB_ELIMIT);
  hmb::memory_resource mem(r);
  CHECK_THROWS(
      std::bad_alloc, (void)mem.allocate(std::size_t{1} << 17), err,
      CHECK_EQ(dynamic_cast<const hmb::failure &>(err).code(), HMB_ELIMIT));
  hmb_runner_stats_t s = r.stats();
  CHECK_EQ(s.live, 0);
  CHECK_EQ(s.held, int64_t{1} << 16);
  CHECK_EQ(s.allocations, uint64_t{0});
  hmb_pool_stats_t ps = p.stats();
  CHECK_EQ(ps.held, int64_t{1} << 16);
  CHECK_EQ(ps.limit_rejects, uint64_t{3});
  CHECK_EQ(ps.peak_overcommitted, 0);

  // Within the held budget it still works.
  hmb::buffer b = r.alloc(std::size_t{1} << 16);
  CHECK_EQ(r.stats().live, int64_t{1} << 16);
  b = hmb::buffer();

  // Larger than max_request: can never succeed.
  CHECK_THROWS(hmb::alloc_error, (void)r.alloc(std::size_t{1} << 21), err,
               CHECK_EQ(err.code(), HMB_ETOOBIG));
  CHECK_THROWS(hmb::error, hmb::runner big(p, std::size_t{1} << 21), err,
               CHECK_EQ(err.code(), HMB_ETOOBIG));
  hmb::allocator<int> al(r);
  CHECK_THROWS(std::bad_array_new_length, (void)al.allocate(al.max_size() + 1),
               err, (void)err);
  CHECK_THROWS(hmb::alloc_error,
               (void)al.allocate((std::size_t{1} << 21) / sizeof(int)), err,
               CHECK_EQ(err.code(), HMB_ETOOBIG));
  CHECK_EQ(r.stats().live, 0);
  r.destroy();
  EXPECT_POOL_CLEAN(p);
}

} // namespace

int main() {
  exception_types();
  start_timeout_is_not_an_exception();
  grow_timeout();
  cancelled_runner();
  overcommit_cap_and_max_request();
  return check::exit_status("test_cpp_errors");
}
