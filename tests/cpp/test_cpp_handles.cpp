/*
 * test_cpp_handles.cpp - the owners of hmb.hpp: pools, runners and buffers
 * give everything back when they go out of scope; moved-from owners are
 * empty and safe to destroy; release/adopt/share hand references over
 * exactly; slices keep their parent alive; close handlers installed
 * through the C API still fire; a busy pool is reported by close() and
 * leaked (not freed under its users) by the destructor; pressure handlers
 * run C++ callables and are removed by their owner.
 */
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "support.hpp"

namespace {

void pool_lifetime_and_moves() {
  check::section("pool: create, move, try_create, errors");
  hmb::pool p(std::size_t{1} << 20);
  CHECK(static_cast<bool>(p));
  hmb_pool_t *raw = p.get();
  CHECK_EQ(p.limit(), std::size_t{1} << 20);
  CHECK_EQ(p.stats().limit, int64_t{1} << 20);
  CHECK_EQ(p.stats().held, 0);

  hmb::pool q(std::move(p));
  CHECK(!p);
  CHECK(p.get() == nullptr);
  CHECK(q.get() == raw);
  CHECK_EQ(p.close(), 0); // empty: nothing to do
  CHECK_EQ(p.limit(), std::size_t{0});
  CHECK_THROWS(hmb::error, (void)p.stats(), err, {
    CHECK_EQ(err.code(), HMB_EINVAL);
    CHECK_EQ(std::string(err.call()), "hmb_pool_stats");
  });

  // Move-assigning onto a live pool destroys the one it held (a leak would
  // be reported by LeakSanitizer in the sanitizer builds).
  hmb::pool s(std::size_t{4096});
  CHECK_EQ(s.limit(), std::size_t{4096});
  s = std::move(q);
  CHECK(!q);
  CHECK(s.get() == raw);
  CHECK_EQ(s.limit(), std::size_t{1} << 20);

  s.set_limit(std::size_t{1} << 19);
  CHECK_EQ(s.limit(), std::size_t{1} << 19);
  CHECK_EQ(s.stats().limit_changes, uint64_t{1});
  CHECK(!s.describe().empty());
  CHECK_EQ(s.check(), std::string());
  EXPECT_POOL_CLEAN(s);

  // Non-throwing creation; the owner is untouched on error.
  hmb_pool_config_t cfg;
  hmb_pool_config_init(&cfg); // limit 0: invalid
  hmb::pool t;
  CHECK_EQ(hmb::pool::try_create(cfg, t), HMB_EINVAL);
  CHECK(!t);
  cfg.limit = 8192;
  CHECK_EQ(hmb::pool::try_create(cfg, t), 0);
  CHECK(static_cast<bool>(t));
  CHECK_EQ(t.limit(), std::size_t{8192});
  EXPECT_POOL_CLEAN(t);

  CHECK_THROWS(hmb::error, hmb::pool bad{hmb::pool_options()}, err, {
    CHECK_EQ(err.code(), HMB_EINVAL);
    CHECK_EQ(std::string(err.call()), "hmb_pool_create");
  });

  // release() and adopt() hand the handle over without destroying it.
  hmb::pool u(std::size_t{4096});
  hmb_pool_t *h = u.release();
  CHECK(!u);
  hmb::pool v = hmb::pool::adopt(h);
  CHECK(v.get() == h);
  EXPECT_POOL_CLEAN(v);
}

void runner_lifecycle() {
  check::section("runner: start, alloc, set_need, try_free, finish");
  hmb::pool p(std::size_t{1} << 20);
  {
    hmb::runner r(p, hmb::runner_options(4096).name("split-0").priority(3));
    CHECK_EQ(r.state(), HMB_RUNNER_CREATED);
    CHECK_EQ(p.stats().runners, 1);
    CHECK(r.start(hmb::no_wait));
    CHECK_EQ(r.state(), HMB_RUNNER_RUNNING);
    CHECK_EQ(std::string(r.state_name()), "RUNNING");
    hmb_runner_stats_t s = r.stats();
    CHECK_EQ(s.held, 4096);
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.spare, 4096);
    CHECK_EQ(s.estimate, 4096);
    CHECK_EQ(s.priority, 3);
    CHECK(r.allocator() != nullptr);
    {
      hmb::buffer b = r.alloc(1000);
      CHECK(static_cast<bool>(b));
      CHECK_EQ(b.size(), std::size_t{1000});
      CHECK(b.data() != nullptr);
      CHECK_EQ(b.refcount(), 1L);
      CHECK(b.parent() == nullptr);
      std::memset(b.data(), 0x5a, b.size());
      s = r.stats();
      CHECK_EQ(s.live, 1000);
      CHECK_EQ(s.live_buffers, 1);
      CHECK_EQ(s.allocations, uint64_t{1});
      CHECK_EQ(s.held, 4096);
      hmb_pool_stats_t ps = p.stats();
      CHECK_EQ(ps.held, 4096);
      CHECK_EQ(ps.live_bytes, 1000);
      CHECK_EQ(ps.live_buffers, 1);
      CHECK_EQ(ps.running, 1);
    }
    // Closed by the destructor; a running runner keeps the budget.
    s = r.stats();
    CHECK_EQ(s.live, 0);
    CHECK_EQ(s.live_buffers, 0);
    CHECK_EQ(s.held, 4096);

    // Early release: trim to max(live, need).
    CHECK_EQ(r.set_need(1000), std::size_t{3096});
    s = r.stats();
    CHECK_EQ(s.held, 1000);
    CHECK_EQ(s.real_need, 1000);
    CHECK_EQ(r.try_free(), std::size_t{1000});
    CHECK_EQ(r.stats().held, 0);
    CHECK_EQ(p.stats().released_early, uint64_t{4096});
    CHECK_EQ(r.finish(), std::size_t{0});
    CHECK_EQ(r.state(), HMB_RUNNER_COMPLETED);
  }
  EXPECT_POOL_CLEAN(p);
}

void runner_moves() {
  check::section("runner: moves, release/adopt, views, destroy");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner a(p, 512);
  hmb_runner_t *raw = a.get();
  hmb::runner b(std::move(a));
  CHECK(!a);
  CHECK(a.get() == nullptr);
  CHECK_EQ(a.state(), HMB_RUNNER_CLOSED);
  CHECK(!a.cancelled());
  CHECK(a.allocator() == nullptr);
  CHECK_EQ(a.try_start(), HMB_EINVAL);
  CHECK_THROWS(hmb::error, (void)a.stats(), err,
               CHECK_EQ(err.code(), HMB_EINVAL));
  CHECK_THROWS(hmb::alloc_error, (void)a.alloc(1), err,
               CHECK_EQ(err.code(), HMB_EINVAL));
  CHECK(b.get() == raw);
  CHECK(b.start());

  hmb::runner c(p, 256); // CREATED; destroyed by the assignment
  CHECK_EQ(p.stats().runners, 2);
  c = std::move(b);
  CHECK(!b);
  CHECK(c.get() == raw);
  CHECK_EQ(p.stats().runners, 1);
  CHECK_EQ(c.state(), HMB_RUNNER_RUNNING);

  hmb::runner_ref v = c; // a view; copying it does not own anything
  hmb::runner_ref w = v;
  CHECK(w.get() == raw);
  CHECK_EQ(w.stats().held, 512);

  hmb_runner_t *h = c.release();
  CHECK(!c);
  hmb::runner d = hmb::runner::adopt(h);
  CHECK(d.get() == raw);

  // Destroying a running runner finishes it; its budget comes back.
  d.destroy();
  CHECK(!d);
  d.destroy(); // twice: a no-op
  CHECK_EQ(p.stats().runners, 0);
  CHECK_EQ(p.stats().held, 0);

  // Non-throwing creation.
  hmb_runner_config_t cfg;
  hmb_runner_config_init(&cfg);
  cfg.estimate = 100;
  hmb::runner e;
  CHECK_EQ(hmb::runner::try_create(p.get(), cfg, e), 0);
  CHECK_EQ(e.stats().estimate, 100);
  CHECK_EQ(hmb::runner::try_create(nullptr, cfg, e), HMB_EINVAL);
  CHECK(static_cast<bool>(e)); // untouched on error
  e = hmb::runner();
  EXPECT_POOL_CLEAN(p);
}

void buffer_moves() {
  check::section("buffer: moves, retain, release/adopt/share, reserve");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner r(p, 8192);
  CHECK(r.start());
  {
    hmb::buffer a = r.alloc(100);
    hmb_buffer_t *raw = a.get();
    hmb::buffer b(std::move(a));
    CHECK(!a);
    CHECK(a.data() == nullptr);
    CHECK_EQ(a.size(), std::size_t{0});
    CHECK_EQ(a.refcount(), 0L);
    CHECK_EQ(a.close(), 0);
    CHECK_THROWS(hmb::error, (void)a.retain(), err,
                 CHECK_EQ(err.code(), HMB_EINVAL));
    CHECK_THROWS(hmb::error, (void)a.slice(0, 1), err,
                 CHECK_EQ(err.code(), HMB_EINVAL));
    CHECK(b.get() == raw);
    CHECK_EQ(b.refcount(), 1L);

    hmb::buffer c = b.retain();
    CHECK(c.get() == raw);
    CHECK_EQ(b.refcount(), 2L);
    CHECK_EQ(r.stats().live, 100);
    CHECK_EQ(r.stats().live_buffers, 1);

    b = std::move(c); // closes b's reference, takes c's
    CHECK(!c);
    CHECK_EQ(b.refcount(), 1L);
    CHECK_EQ(r.stats().live, 100);

    hmb_buffer_t *h = b.release();
    CHECK(!b);
    CHECK_EQ(r.stats().live, 100); // released, not closed
    hmb::buffer d = hmb::buffer::adopt(h);
    CHECK_EQ(d.refcount(), 1L);
    hmb::buffer e = hmb::buffer::share(h);
    CHECK_EQ(d.refcount(), 2L);
    CHECK_EQ(e.close(), 0);
    CHECK_EQ(e.close(), 0); // empty now
    CHECK_EQ(d.refcount(), 1L);
    d = hmb::buffer();
    CHECK_EQ(r.stats().live, 0);
    CHECK_EQ(r.stats().live_buffers, 0);

    // A reservation: budget without memory.
    hmb::buffer res = r.reserve(5000);
    CHECK(res.data() == nullptr);
    CHECK_EQ(res.size(), std::size_t{5000});
    CHECK_EQ(r.stats().live, 5000);
    CHECK_THROWS(hmb::alloc_error, (void)r.reserve(0), err,
                 CHECK_EQ(err.code(), HMB_EINVAL));
    CHECK_EQ(res.close(), 0);
    CHECK_EQ(r.stats().live, 0);

    // Through any allocator vtable, and aligned.
    hmb::buffer f = hmb::allocate(r.allocator(), 64);
    hmb::buffer g = hmb::allocate_aligned(r.allocator(), 64, 4096);
    CHECK_EQ(reinterpret_cast<std::uintptr_t>(g.data()) % 4096, 0u);
    CHECK_EQ(r.stats().live, 128);
    hmb::buffer un = hmb::allocate(hmb_default_allocator(), 32);
    CHECK_EQ(r.stats().live, 128); // the default allocator charges nothing
    CHECK_EQ(un.size(), std::size_t{32});
    CHECK_THROWS(hmb::alloc_error,
                 (void)hmb::allocate_aligned(r.allocator(), 8, 3), err,
                 CHECK_EQ(err.code(), HMB_EINVAL));

    // try_alloc fills an owner and closes what it held.
    CHECK_EQ(r.try_alloc(10, f), 0);
    CHECK_EQ(f.size(), std::size_t{10});
    CHECK_EQ(r.stats().live, 74);
  }
  CHECK_EQ(r.stats().live, 0);
  CHECK_EQ(r.finish(), std::size_t{8192});
  r.destroy();
  EXPECT_POOL_CLEAN(p);
}

void slices_keep_parent() {
  check::section("buffer: slices keep the parent alive");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner r(p, 4096);
  CHECK(r.start());
  hmb::buffer parent = r.alloc(1000);
  auto *bytes = parent.data_as<unsigned char>();
  for (int i = 0; i < 1000; i++) {
    bytes[i] = static_cast<unsigned char>(i % 251);
  }
  hmb::buffer s = parent.slice(100, 50);
  CHECK_EQ(s.size(), std::size_t{50});
  CHECK(s.parent() == parent.get());
  CHECK(s.data_as<unsigned char>() == bytes + 100);
  CHECK_EQ(parent.refcount(), 2L); // the slice holds one
  hmb::buffer s2 = s.slice(10, 5);
  CHECK(s2.parent() == s.get());
  CHECK(s2.data_as<unsigned char>() == bytes + 110);
  CHECK_THROWS(hmb::error, (void)parent.slice(990, 20), err,
               CHECK_EQ(err.code(), HMB_EINVAL));
  CHECK_THROWS(hmb::error, (void)parent.slice(0, 0), err,
               CHECK_EQ(err.code(), HMB_EINVAL));

  CHECK_EQ(parent.close(), 0);
  CHECK_EQ(r.stats().live, 1000); // the slices keep it
  CHECK_EQ(r.stats().live_buffers, 1);
  CHECK_EQ(static_cast<int>(s.data_as<unsigned char>()[0]), 100);
  CHECK_EQ(static_cast<int>(s.data_as<unsigned char>()[49]), 149);
  CHECK_EQ(s.close(), 0);
  CHECK_EQ(r.stats().live, 1000); // s2 keeps s, which keeps the parent
  CHECK_EQ(static_cast<int>(s2.data_as<unsigned char>()[4]), 114);
  CHECK_EQ(s2.close(), 0);
  CHECK_EQ(r.stats().live, 0);
  CHECK_EQ(r.stats().live_buffers, 0);
  r.destroy();
  EXPECT_POOL_CLEAN(p);
}

struct close_record {
  std::vector<long> refs;
  int64_t live_at_zero = -1;
  hmb_runner_t *runner = nullptr;
  int chained = 0;
  hmb_buffer_handler_t previous{nullptr, nullptr};
};

void on_close(void *user, hmb_buffer_t *, long refs) {
  auto *rec = static_cast<close_record *>(user);
  rec->refs.push_back(refs);
  if (refs == 0) {
    hmb_runner_stats_t s{};
    if (hmb_runner_stats(rec->runner, &s) == 0) {
      rec->live_at_zero = s.live;
    }
  }
}

void on_close_chained(void *user, hmb_buffer_t *buf, long refs) {
  auto *rec = static_cast<close_record *>(user);
  rec->chained++;
  hmb_buffer_handler_invoke(&rec->previous, buf, refs);
}

void close_handlers() {
  check::section("buffer: close handlers through the C API");
  hmb::pool p(std::size_t{1} << 20);
  hmb::runner r(p, 4096);
  CHECK(r.start());
  close_record rec;
  rec.runner = r.get();
  {
    hmb::buffer b = r.alloc(300);
    hmb_buffer_handler_t h{&on_close, &rec};
    CHECK_EQ(hmb_buffer_set_handler(b.get(), &h, nullptr), 0);
    hmb::buffer extra = b.retain();
    extra = hmb::buffer(); // close one of two references
    CHECK_EQ(rec.refs.size(), std::size_t{1});
  } // the destructor closes the last
  CHECK_EQ(rec.refs.size(), std::size_t{2});
  if (rec.refs.size() == 2) {
    CHECK_EQ(rec.refs[0], 1L);
    CHECK_EQ(rec.refs[1], 0L);
  }
  CHECK_EQ(rec.live_at_zero, 0); // budget given back before the handler

  // Chaining: the wrapper's set_handler() returns the C handler it replaces.
  close_record rec2;
  rec2.runner = r.get();
  {
    hmb::buffer b = r.alloc(10);
    hmb_buffer_handler_t first{&on_close, &rec2};
    CHECK_EQ(hmb_buffer_set_handler(b.get(), &first, nullptr), 0);
    rec2.previous = b.set_handler({&on_close_chained, &rec2});
    CHECK(rec2.previous.fn == &on_close);
    CHECK(rec2.previous.user == &rec2);
  }
  CHECK_EQ(rec2.chained, 1);
  CHECK_EQ(rec2.refs.size(), std::size_t{1});
  CHECK_EQ(rec2.live_at_zero, 0);
  r.destroy();
  EXPECT_POOL_CLEAN(p);
}

void busy_pool() {
  check::section("pool: close() on a busy pool, destructor leaks it");
  support::log_capture log;
  hmb::pool p(hmb::pool_options(std::size_t{1} << 16)
                  .log(&support::log_capture::sink, &log, HMB_LOG_ERROR));
  hmb::buffer b;
  {
    hmb::runner r(p, 1000);
    CHECK(r.start());
    b = r.alloc(600);
    CHECK_EQ(r.finish(), std::size_t{400});
  } // destroyed: detached, the buffer keeps its budget
  hmb_pool_stats_t s = p.stats();
  CHECK_EQ(s.runners, 1);
  CHECK_EQ(s.held, 600);
  CHECK_EQ(s.live_bytes, 600);
  CHECK_EQ(p.close(), HMB_EBUSY);
  CHECK(static_cast<bool>(p)); // still owned and usable
  CHECK(log.errors() >= 1);
  CHECK_EQ(p.stats().held, 600);
  b = hmb::buffer();
  EXPECT_POOL_CLEAN(p);

  // The destructor cannot report EBUSY: it leaves the pool alive for the
  // buffer that still uses it. Here the test still has the raw handle and
  // destroys it once the buffer is closed.
  support::log_capture log2;
  hmb_pool_t *raw = nullptr;
  hmb::buffer survivor;
  {
    hmb::pool q(hmb::pool_options(std::size_t{1} << 16)
                    .log(&support::log_capture::sink, &log2, HMB_LOG_ERROR));
    raw = q.get();
    hmb::runner r(q, 1000);
    CHECK(r.start());
    survivor = r.alloc(10);
  } // ~runner, then ~pool: HMB_EBUSY, leaked
  CHECK(log2.errors() >= 1);
  hmb_pool_stats_t qs{};
  CHECK_EQ(hmb_pool_stats(raw, &qs), 0);
  CHECK_EQ(qs.runners, 1);
  CHECK_EQ(qs.held, 10);
  CHECK_EQ(survivor.data() != nullptr, true);
  survivor = hmb::buffer();
  CHECK_EQ(hmb_pool_stats(raw, &qs), 0);
  CHECK_EQ(qs.held, 0);
  CHECK_EQ(hmb_pool_destroy(raw), 0);
}

void pressure_handlers() {
  check::section("pool: pressure handlers run C++ callables");
  hmb::pool p(std::size_t{1} << 16);
  hmb::buffer finished_output;
  {
    hmb::runner a(p, std::size_t{1} << 16);
    CHECK(a.start());
    finished_output = a.alloc(std::size_t{1} << 16);
    CHECK_EQ(a.finish(), std::size_t{0});
  } // the buffer holds the whole budget; nothing runs
  int calls = 0;
  hmb_pressure_t seen{};
  hmb::pressure_handler h = p.on_pressure([&](const hmb_pressure_t &ev) {
    calls++;
    seen = ev;
    finished_output = hmb::buffer(); // flush: frees the budget
  });
  CHECK(static_cast<bool>(h));
  {
    hmb::runner b(p, 4096);
    CHECK(b.start()); // nothing runs: admitted with what is available (0)
    CHECK_EQ(b.stats().held, 0);
    hmb::buffer x = b.alloc(1000); // a borrow beyond the limit: pressure
    CHECK_EQ(calls, 1);
    CHECK_EQ(seen.kind, HMB_PRESSURE_OVERCOMMIT);
    CHECK_EQ(seen.request, HMB_REQUEST_BORROW);
    CHECK_EQ(seen.wanted, std::size_t{1000});
    CHECK(!finished_output);
    CHECK_EQ(p.stats().peak_overcommitted, 0); // served within the limit
    CHECK_EQ(b.stats().live, 1000);
  }
  // Moved, then removed: it no longer runs.
  hmb::pressure_handler moved(std::move(h));
  CHECK(!h);
  CHECK(static_cast<bool>(moved));
  CHECK_EQ(moved.remove(), 0);
  CHECK(!moved);
  {
    hmb::runner a(p, std::size_t{1} << 16);
    CHECK(a.start());
    finished_output = a.alloc(std::size_t{1} << 16);
    CHECK_EQ(a.finish(), std::size_t{0});
  }
  {
    hmb::runner b(p, 0);
    CHECK(b.start());
    hmb::buffer x = b.alloc(1000); // over-commits: no handler frees it
    CHECK_EQ(calls, 1);
    CHECK(p.stats().peak_overcommitted >= 1000);
  }
  finished_output = hmb::buffer();
  EXPECT_POOL_CLEAN(p);
}

void wait_hook(void *, const hmb_wait_event_t *) {}

void options_and_stats() {
  check::section("builders fill the C structs; memory stats, trim");
  hmb_backend_t backend{};
  int dummy = 0;
  hmb::pool_options o(1000);
  o.max_request(500)
      .alignment(128)
      .backend(&backend)
      .pinned(4096, HMB_PINNED_REGISTER)
      .cache_bytes(2048)
      .no_cache()
      .no_hugepages()
      .overcommit_cap(77)
      .log(&support::log_capture::sink, &dummy, HMB_LOG_INFO)
      .long_wait(std::chrono::milliseconds(5))
      .pressure_wait(std::chrono::microseconds(7))
      .wait_hook(&wait_hook, &dummy);
  const hmb_pool_config_t &c = o.raw();
  CHECK_EQ(c.limit, std::size_t{1000});
  CHECK_EQ(c.max_request, std::size_t{500});
  CHECK_EQ(c.alignment, std::size_t{128});
  CHECK(c.backend == &backend);
  CHECK_EQ(c.pinned_bytes, std::size_t{4096});
  CHECK_EQ(c.pinned_method, static_cast<int>(HMB_PINNED_REGISTER));
  CHECK_EQ(c.cache_bytes, std::size_t{2048});
  CHECK_EQ(c.flags, unsigned{HMB_POOL_NO_CACHE | HMB_POOL_NO_HUGEPAGES |
                             HMB_POOL_CAP_OVERCOMMIT});
  CHECK_EQ(c.overcommit_cap, std::size_t{77});
  CHECK(c.log_fn == &support::log_capture::sink);
  CHECK(c.log_user == &dummy);
  CHECK_EQ(c.log_level, static_cast<int>(HMB_LOG_INFO));
  CHECK_EQ(c.long_wait_ns, int64_t{5000000});
  CHECK_EQ(c.pressure_wait_ns, int64_t{7000});
  CHECK(c.wait_hook == &wait_hook);
  CHECK(c.wait_hook_user == &dummy);
  o.pinned_base(&dummy, 64);
  CHECK(o.raw().pinned_base == &dummy);
  CHECK_EQ(o.raw().pinned_bytes, std::size_t{64});

  hmb::runner_options ro(123);
  ro.priority(-2).borrow_timeout(std::chrono::seconds(1)).name("scan");
  hmb_runner_config_t rc = ro.raw();
  CHECK_EQ(rc.estimate, std::size_t{123});
  CHECK_EQ(rc.priority, -2);
  CHECK_EQ(rc.borrow_timeout_ns, int64_t{1000000000});
  CHECK_EQ(std::string(rc.name), "scan");
  CHECK(hmb::runner_options().raw().name == nullptr);

  hmb::executor_options eo;
  eo.threads(3).acquire_timeout(hmb::wait_forever).name("ex");
  hmb_executor_config_t ec = eo.raw();
  CHECK_EQ(ec.threads, 3);
  CHECK_EQ(ec.acquire_timeout_ns, HMB_WAIT_FOREVER);
  CHECK_EQ(std::string(ec.name), "ex");

  // A pool without its warm cache; pinned requests fall back to pageable.
  hmb::pool p(hmb::pool_options(std::size_t{1} << 20).no_cache());
  hmb::runner r(p, hmb::runner_options(8192).name("scan"));
  CHECK(r.start());
  {
    hmb::buffer b = r.alloc(1000, HMB_ALLOC_PINNED);
    CHECK(!b.is_pinned()); // no pinned region in this pool
    hmb_memory_stats_t m = p.memory_stats();
    CHECK_EQ(m.pinned_fallbacks, uint64_t{1});
    CHECK_EQ(m.pageable_live, 1000);
    CHECK(m.pinned_reason != nullptr);
    CHECK_EQ(r.stats().live, 1000);
  }
  CHECK_EQ(p.memory_stats().pageable_live, 0);
  CHECK_EQ(p.memory_stats().cached_bytes, 0); // no cache
  p.trim();
  hmb_memory_stats_t d = hmb::default_memory_stats();
  CHECK(d.pageable_live >= 0);
  r.destroy();
  EXPECT_POOL_CLEAN(p);
}

} // namespace

int main() {
  pool_lifetime_and_moves();
  runner_lifecycle();
  runner_moves();
  buffer_moves();
  slices_keep_parent();
  close_handlers();
  busy_pool();
  pressure_handlers();
  options_and_stats();
  return check::exit_status("test_cpp_handles");
}
