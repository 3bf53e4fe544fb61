/*
 * support.hpp - fixtures shared by the C++ wrapper tests: a thread-safe log
 * capture for pool sinks, a pmr resource that records what passes through
 * it, and the end-of-test check that a pool got everything back.
 */
#ifndef HMB_TESTS_CPP_SUPPORT_HPP
#define HMB_TESTS_CPP_SUPPORT_HPP

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include "check.hpp"

namespace support {

/* Collects a pool's log lines; pass with pool_options::log(). */
class log_capture {
public:
  static void sink(void *user, int level, const char *message) {
    auto *self = static_cast<log_capture *>(user);
    std::lock_guard<std::mutex> g(self->m_);
    self->lines_.emplace_back(std::to_string(level) + " " + message);
    if (level == HMB_LOG_ERROR) {
      self->errors_++;
    }
  }
  int errors() {
    std::lock_guard<std::mutex> g(m_);
    return errors_;
  }
  bool contains(const std::string &needle) {
    std::lock_guard<std::mutex> g(m_);
    for (const std::string &l : lines_) {
      if (l.find(needle) != std::string::npos) {
        return true;
      }
    }
    return false;
  }

private:
  std::mutex m_;
  std::vector<std::string> lines_;
  int errors_ = 0;
};

#if HMB_HPP_HAVE_PMR
/* Forwards to an upstream resource and keeps the bytes it has out now, so
 * that a test can compare a runner's live bytes with what a container
 * really asked for, whatever the standard library's growth policy. */
class recording_resource : public std::pmr::memory_resource {
public:
  explicit recording_resource(std::pmr::memory_resource *up) : up_(up) {}
  std::size_t outstanding() const {
    return bytes_;
  }
  std::size_t blocks() const {
    return blocks_;
  }

protected:
  void *do_allocate(std::size_t bytes, std::size_t align) override {
    void *p = up_->allocate(bytes, align);
    bytes_ += bytes;
    blocks_++;
    return p;
  }
  void do_deallocate(void *p, std::size_t bytes, std::size_t align) override {
    up_->deallocate(p, bytes, align);
    bytes_ -= bytes;
    blocks_--;
  }
  bool do_is_equal(const std::pmr::memory_resource &o) const noexcept override {
    return this == &o;
  }

private:
  std::pmr::memory_resource *up_;
  std::size_t bytes_ = 0;
  std::size_t blocks_ = 0;
};
#endif

/* Everything came back: no budget held, nothing live, no runner left, the
 * self-check (at rest) passes, and the pool destroys cleanly (the owner is then
 * empty). */
#define EXPECT_POOL_CLEAN(p)                                                   \
  do {                                                                         \
    hmb_pool_stats_t clean_ = (p).stats();                                     \
    CHECK_EQ(clean_.held, 0);                                                  \
    CHECK_EQ(clean_.live_bytes, 0);                                            \
    CHECK_EQ(clean_.live_buffers, 0);                                          \
    CHECK_EQ(clean_.runners, 0);                                               \
    CHECK_EQ((p).check(HMB_CHECK_QUIESCENT), std::string());                   \
    CHECK_EQ((p).close(), 0);                                                  \
    CHECK(!(p));                                                               \
  } while (0)

} // namespace support

#endif /* HMB_TESTS_CPP_SUPPORT_HPP */
