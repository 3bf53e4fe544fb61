/*
 * check.hpp - the C++ wrapper tests' assertion helper: each failed check
 * prints file:line, the expression and (for comparisons) both values, and
 * is counted; check_exit() prints the total and gives the exit status.
 * Checks may be made from several threads (the counter is atomic).
 */
#ifndef HMB_TESTS_CPP_CHECK_HPP
#define HMB_TESTS_CPP_CHECK_HPP

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>

#include <hmb.hpp>

namespace check {

inline std::atomic<int> &failures() {
  static std::atomic<int> n{0};
  return n;
}
inline std::atomic<long> &passes() {
  static std::atomic<long> n{0};
  return n;
}
inline std::mutex &out_lock() {
  static std::mutex m;
  return m;
}

inline void fail(const char *file, int line, const std::string &what) {
  failures().fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(out_lock());
  std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what.c_str());
}

template <class A, class B>
void equal(const char *file, int line, const char *ea, const char *eb,
           const A &a, const B &b) {
  if (a == b) {
    passes().fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::ostringstream os;
  os << ea << " == " << eb << " (" << a << " vs " << b << ")";
  fail(file, line, os.str());
}

/* Name a test section; printed so a failure can be placed. */
inline void section(const char *name) {
  std::lock_guard<std::mutex> g(out_lock());
  std::fprintf(stderr, "-- %s\n", name);
}

inline int exit_status(const char *program) {
  int n = failures().load();
  std::fprintf(stderr, "%s: %ld checks passed, %d failed\n", program,
               passes().load(), n);
  return n == 0 ? 0 : 1;
}

} // namespace check

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (cond) {                                                                \
      check::passes().fetch_add(1, std::memory_order_relaxed);                 \
    } else {                                                                   \
      check::fail(__FILE__, __LINE__, #cond);                                  \
    }                                                                          \
  } while (0)

#define CHECK_EQ(a, b) check::equal(__FILE__, __LINE__, #a, #b, (a), (b))

/* The statement throws E; `var` names the caught exception in `then`. */
#define CHECK_THROWS(E, stmt, var, then)                                       \
  do {                                                                         \
    bool thrown_ = false;                                                      \
    try {                                                                      \
      stmt;                                                                    \
    } catch (const E &var) {                                                   \
      thrown_ = true;                                                          \
      then;                                                                    \
    } catch (const std::exception &other_) {                                   \
      check::fail(__FILE__, __LINE__,                                          \
                  std::string(#stmt " threw another exception: ") +            \
                      other_.what());                                          \
      thrown_ = true;                                                          \
    }                                                                          \
    if (!thrown_) {                                                            \
      check::fail(__FILE__, __LINE__, #stmt " did not throw " #E);             \
    }                                                                          \
  } while (0)

#endif /* HMB_TESTS_CPP_CHECK_HPP */
