/*
 * hmb_orc.cc - orc::MemoryPool on hmb's pointer API.
 *
 * Everything a block needs (its owner, its size, its budget) lives in the
 * buffer handle hmb puts behind every pointer of hmb_ptr_alloc(), so the
 * pools here are stateless apart from optional counters: malloc picks an
 * allocator (fixed, or the calling thread's bound runner) and free hands the
 * pointer back to hmb, which returns the bytes to whichever runner paid for
 * them. Nothing here takes a lock.
 *
 * Invariants: malloc either returns a block of at least `size` bytes or
 * throws Error and changes nothing (hmb's failed allocations change no
 * budget counter, hmb/pool.h I6); free never throws.
 */
#include "hmb_orc.hh"

#include <cstdio>

namespace hmb_orc {

Error::Error(int code, std::uint64_t bytes, const char *where) noexcept
    : code_(code), bytes_(bytes) {
  std::snprintf(msg_, sizeof msg_, "hmb_orc %s: malloc(%llu) failed: %s (%s)",
                where, static_cast<unsigned long long>(bytes),
                hmb_errname(code), hmb_strerror(code));
}

PoolBase::~PoolBase() = default;

char *PoolBase::malloc(std::uint64_t size) {
  void *p = nullptr;
  int rc;
  // size_t may be narrower than ORC's uint64_t on 32-bit targets: a size
  // that does not fit can never be served.
  if (size > static_cast<std::uint64_t>(SIZE_MAX))
    rc = HMB_ETOOBIG;
  else
    rc = hmb_ptr_alloc(allocator(), static_cast<size_t>(size), 0, 0, &p);
  if (rc != 0) {
    if (count_)
      failures_.fetch_add(1, std::memory_order_relaxed);
    throw Error(rc, size, name_);
  }
  if (count_) {
    mallocs_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(size, std::memory_order_relaxed);
    if (size == 0)
      zero_mallocs_.fetch_add(1, std::memory_order_relaxed);
  }
  return static_cast<char *>(p);
}

void PoolBase::free(char *p) {
  if (p == nullptr)
    return;
  // hmb logs a foreign pointer itself; the count makes it visible to tests.
  int rc = hmb_ptr_free(p);
  if (count_) {
    frees_.fetch_add(1, std::memory_order_relaxed);
    if (rc != 0)
      free_errors_.fetch_add(1, std::memory_order_relaxed);
  }
}

Counters PoolBase::counters() const noexcept {
  Counters c;
  c.mallocs = mallocs_.load(std::memory_order_relaxed);
  c.zero_mallocs = zero_mallocs_.load(std::memory_order_relaxed);
  c.bytes = bytes_.load(std::memory_order_relaxed);
  c.frees = frees_.load(std::memory_order_relaxed);
  c.failures = failures_.load(std::memory_order_relaxed);
  c.free_errors = free_errors_.load(std::memory_order_relaxed);
  return c;
}

TaskPool::TaskPool(hmb_runner_t *runner, bool count) noexcept
    : PoolBase("TaskPool", count), runner_(runner),
      alloc_(hmb_runner_allocator(runner)) {}

TaskPool::TaskPool(const hmb_allocator_t *alloc, bool count) noexcept
    : PoolBase("TaskPool", count), runner_(nullptr), alloc_(alloc) {}

BoundPool::BoundPool(Unbound unbound, bool count) noexcept
    : PoolBase("BoundPool", count), unbound_(unbound),
      alloc_(hmb_bound_allocator(static_cast<int>(unbound))) {}

} // namespace hmb_orc
