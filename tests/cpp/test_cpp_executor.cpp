/*
 * test_cpp_executor.cpp - the executor and task owners: lambdas as task
 * bodies (int or void, exceptions turned into statuses), completions,
 * captured state destroyed exactly once whether a task ran or was
 * cancelled in the queue, cancellation of running tasks, staged admission,
 * shutdown, moves, and buffers that outlive their task.
 */
#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "support.hpp"

namespace {

/* Counts live copies, so that a test sees every closure destroyed. */
struct counted {
  static std::atomic<int> &alive() {
    static std::atomic<int> n{0};
    return n;
  }
  counted() {
    alive()++;
  }
  counted(const counted &) {
    alive()++;
  }
  counted(counted &&) noexcept {
    alive()++;
  }
  counted &operator=(const counted &) = default;
  ~counted() {
    alive()--;
  }
};

void statuses_and_completions() {
  check::section("executor: bodies, statuses, completions, closures");
  hmb::pool p(hmb::pool_options(std::size_t{1} << 20)
                  .max_request(std::size_t{1} << 20));
  hmb::buffer escaped;
  {
    hmb::executor ex(p, hmb::executor_options().threads(2).name("cpp"));
    counted c;
    CHECK_EQ(counted::alive().load(), 1);
    std::atomic<int> done_calls{0};
    std::atomic<int> done_status{1};

    hmb::task t0 = ex.submit(
        [c](hmb::runner_ref r) {
          hmb::buffer b = r.alloc(1000);
          if (r.stats().live != 1000) {
            return 1;
          }
          if (hmb_runner_bound() != r.get()) {
            return 2; // the runner is bound to the worker
          }
          std::vector<int, hmb::allocator<int>> v(10); // charges it
          return r.stats().live == 1000 + 10 * int64_t{sizeof(int)} ? 0 : 3;
        },
        hmb::task_options(4096).name("t0"));
    hmb::task t1 = ex.submit([c](hmb::runner_ref) {});
    hmb::task t2 = ex.submit([c](hmb::runner_ref) { return 7; });
    hmb::task t3 = ex.submit([c](hmb::runner_ref) -> int {
      throw std::runtime_error("not an hmb error");
    });
    hmb::task t4 = ex.submit([c](hmb::runner_ref r) {
      (void)r.alloc(std::size_t{1} << 21); // above max_request: throws
      return 0;
    });
    hmb::task t5 = ex.submit([c](hmb::runner_ref) { return 0; },
                             [&done_calls, &done_status, c](int status) {
                               done_status = status;
                               done_calls++;
                             },
                             hmb::task_options(100).priority(5));
    hmb::task t6 =
        ex.submit([&escaped](hmb::runner_ref r) { escaped = r.alloc(2000); },
                  hmb::task_options(8192));

    CHECK_EQ(t0.wait(), 0);
    CHECK_EQ(t1.wait(), 0);
    CHECK_EQ(t2.wait(), 7);
    CHECK_EQ(t3.wait(), HMB_EFAILED);
    CHECK_EQ(t4.wait(), HMB_ETOOBIG);
    CHECK_EQ(t5.wait(), 0);
    CHECK_EQ(t6.wait(), 0);
    CHECK(t0.done());
    std::optional<int> st = t2.wait_for(hmb::no_wait);
    CHECK(st.has_value());
    CHECK_EQ(st.value_or(0), 7);
    CHECK_EQ(done_calls.load(), 1);
    CHECK_EQ(done_status.load(), 0);
    CHECK_EQ(counted::alive().load(), 1); // every closure is gone
    CHECK(!t0.cancel());                  // finished

    hmb_executor_stats_t s = ex.stats();
    CHECK_EQ(s.submitted, uint64_t{7});
    CHECK_EQ(s.completed, uint64_t{4});
    CHECK_EQ(s.failed, uint64_t{3});
    CHECK_EQ(s.cancelled, uint64_t{0});
    CHECK_EQ(s.queued, 0);
    CHECK_EQ(s.running, 0);

    // The buffer outlives its task: its budget is held until it closes.
    CHECK_EQ(escaped.size(), std::size_t{2000});
    hmb_pool_stats_t ps = p.stats();
    CHECK_EQ(ps.live_bytes, 2000);
    CHECK_EQ(ps.held, 2000);

    // Moves.
    hmb::task moved(std::move(t0));
    CHECK(!t0);
    CHECK(moved.done());
    CHECK_THROWS(hmb::error, (void)t0.wait(), err,
                 CHECK_EQ(err.code(), HMB_EINVAL));
    hmb_task_t *raw = moved.release();
    hmb::task back = hmb::task::adopt(raw);
    CHECK(back.get() == raw);
    hmb::executor ex2(std::move(ex));
    CHECK(!ex);
    CHECK_EQ(ex2.stats().submitted, uint64_t{7});

    // Shutdown: later submissions throw, and their closures are freed.
    ex2.shutdown(HMB_SHUTDOWN_DRAIN);
    CHECK_THROWS(hmb::error, (void)ex2.submit([c](hmb::runner_ref) {}), err,
                 CHECK_EQ(err.code(), HMB_ESHUTDOWN));
    CHECK_EQ(counted::alive().load(), 1);
    CHECK_THROWS(hmb::error, (void)ex.submit([c](hmb::runner_ref) {}), err,
                 CHECK_EQ(err.code(), HMB_EINVAL));
    CHECK_EQ(counted::alive().load(), 1);
  }
  CHECK_EQ(counted::alive().load(), 0);
  escaped = hmb::buffer();
  EXPECT_POOL_CLEAN(p);
}

void cancellation() {
  check::section("executor: cancel queued and running tasks");
  hmb::pool p(std::size_t{1} << 20);
  {
    hmb::executor ex(p, hmb::executor_options().threads(1));
    counted c;
    std::promise<void> started;
    std::future<void> started_f = started.get_future();
    hmb::task running = ex.submit([&started](hmb::runner_ref r) {
      started.set_value();
      while (!r.cancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return 0;
    });
    started_f.wait();
    std::atomic<int> queued_status{1};
    hmb::task queued =
        ex.submit([c](hmb::runner_ref) { return 0; },
                  [&queued_status](int s) { queued_status = s; });
    CHECK_EQ(counted::alive().load(), 2);
    CHECK(queued.cancel());
    // A queued task's completion fires on the cancelling thread, before
    // cancel returns, and its closure goes with it.
    CHECK_EQ(queued_status.load(), HMB_ECANCELED);
    CHECK_EQ(counted::alive().load(), 1);
    CHECK_EQ(queued.wait(), HMB_ECANCELED);
    CHECK(!running.wait_for(std::chrono::milliseconds(1)).has_value());
    CHECK(running.cancel());
    CHECK_EQ(running.wait(), HMB_ECANCELED);
    hmb_executor_stats_t s = ex.stats();
    CHECK_EQ(s.cancelled, uint64_t{2});
    CHECK_EQ(s.submitted, uint64_t{2});

    // Destroying the executor cancels what is queued; handles stay valid.
    std::promise<void> started2;
    std::future<void> started2_f = started2.get_future();
    hmb::task busy = ex.submit([&started2](hmb::runner_ref r) {
      started2.set_value();
      while (!r.cancelled()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    started2_f.wait();
    std::vector<hmb::task> waiting;
    for (int i = 0; i < 3; i++) {
      waiting.push_back(ex.submit([c](hmb::runner_ref) { return 0; }));
    }
    CHECK_EQ(counted::alive().load(), 4);
    ex.destroy();
    CHECK(!ex);
    CHECK_EQ(busy.wait(), HMB_ECANCELED);
    for (hmb::task &t : waiting) {
      CHECK_EQ(t.wait(), HMB_ECANCELED);
    }
    CHECK_EQ(counted::alive().load(), 1);
  }
  EXPECT_POOL_CLEAN(p);
}

void staged() {
  check::section("executor: staged admission from a body");
  hmb::pool p(std::size_t{1} << 20);
  {
    hmb::executor ex(p, hmb::executor_options().threads(2));
    hmb::task t = ex.submit(
        [](hmb::runner_ref r) {
          if (r.stats().held != 512) {
            return 1;
          }
          r.set_need(4096);
          if (!r.grow(4096)) {
            return 2;
          }
          return r.stats().held == 4096 ? 0 : 3;
        },
        hmb::task_options(std::size_t{1} << 19).staged(512));
    CHECK_EQ(t.wait(), 0);
  }
  EXPECT_POOL_CLEAN(p);
}

} // namespace

int main() {
  statuses_and_completions();
  cancellation();
  staged();
  return check::exit_status("test_cpp_executor");
}
