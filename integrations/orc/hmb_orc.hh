/**
 * @file hmb_orc.hh
 * @brief Apache ORC's `orc::MemoryPool` on hmb: every buffer an ORC reader
 *        or writer allocates is charged to a scan task's budget.
 *
 * ORC takes one `orc::MemoryPool&` per reader (`ReaderOptions::
 * setMemoryPool()`) or writer (`WriterOptions::setMemoryPool()`) and calls
 * `malloc(size)` / `free(ptr)` on it for its stream buffers, decompression
 * buffers, dictionaries and the column vectors of every row batch. Two
 * flavours are provided here:
 *
 *   - hmb_orc::TaskPool charges one runner given at construction (one pool
 *     object per scan task, next to its reader), or any hmb allocator
 *     (hmb_default_allocator() for no budget at all).
 *   - hmb_orc::BoundPool charges whatever runner the *calling thread* has
 *     bound with hmb_runner_bind() at the moment of each malloc (one pool
 *     object for the whole process; hmb's executor binds each task's runner
 *     to its worker for the task's call). What a thread with no runner bound
 *     gets is chosen at construction: the default allocator, or a failure.
 *
 * `malloc` is hmb_ptr_alloc() and `free` is hmb_ptr_free(): the library
 * finds a pointer's buffer handle itself, so the adapter keeps no map and
 * adds no header of its own. A free goes to the runner that paid for the
 * block, on whichever thread it happens (ORC may destroy a reader on another
 * thread than the one that read with it).
 *
 * @par Failures are exceptions
 * ORC never checks what `malloc` returns, so a failed allocation never
 * returns NULL: it throws hmb_orc::Error (a `std::bad_alloc`) carrying the
 * hmb code (#HMB_ECANCELED once the task's runner was cancelled,
 * #HMB_ETIMEDOUT for a borrow past the runner's borrow_timeout_ns,
 * #HMB_ELIMIT under an over-commit cap, #HMB_ENOMEM when physical memory ran
 * out, #HMB_ESTATE for a runner that is not running or an unbound thread in
 * hmb_orc::Unbound::kFail mode) and its hmb_strerror() text. ORC holds its
 * buffers in RAII objects, so the exception unwinds the reader and every
 * block it had is freed on the way; the caller catches it where it runs the
 * scan, then finishes the runner. `free` never throws: ORC calls it from
 * destructors. A pointer hmb does not recognise is reported through hmb's
 * log and counted (Counters::free_errors); nothing is freed.
 *
 * @par What an allocation costs (as hmb/allocator.h states it)
 * Blocks below 256 KiB come from the C library's malloc with a 16-byte
 * prefix in front of the data (the adapter asks for the default 16-byte
 * alignment); the buffer handle is 64 bytes from a per-thread cache. Larger
 * blocks are whole-page mappings with the same prefix inside their first
 * page. The budget is charged the requested size only. A zero-byte request
 * (about a quarter of ORC's calls: empty DataBuffers) charges nothing and
 * still returns a distinct pointer, a prefix-only block. The adapter itself
 * adds one virtual call, plus a few relaxed atomic increments on the pool
 * object when its counters are enabled (off by default: a BoundPool shared
 * by every scan thread would otherwise put one shared cache line back on a
 * path that hmb keeps free of them).
 *
 * @par Threads
 * Both pools are thread-safe: any number of threads may call malloc and
 * free at once, which is what a BoundPool shared by every scan thread sees.
 */
#ifndef HMB_ORC_HH
#define HMB_ORC_HH

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>

#include <orc/MemoryPool.hh>

#include "hmb.h"

namespace hmb_orc {

/**
 * The exception every failed allocation becomes. A `std::bad_alloc`, so
 * code that already handles running out of memory handles this too.
 */
class Error : public std::bad_alloc {
public:
  /**
   * @param code  the hmb status code (negative)
   * @param bytes the size asked for
   * @param where a short static name of the pool ("TaskPool", "BoundPool")
   */
  Error(int code, std::uint64_t bytes, const char *where) noexcept;

  /** The hmb status code, e.g. #HMB_ECANCELED. */
  int code() const noexcept {
    return code_;
  }
  /** The size of the allocation that failed. */
  std::uint64_t bytes() const noexcept {
    return bytes_;
  }
  /**
   * "hmb_orc TaskPool: malloc(1048576) failed: HMB_ECANCELED (operation
   * cancelled)": the hmb code's name and its hmb_strerror() text.
   */
  const char *what() const noexcept override {
    return msg_;
  }

private:
  int code_;
  std::uint64_t bytes_;
  char msg_[160];
};

/** What a BoundPool does on a thread with no runner bound. */
enum class Unbound {
  /** Allocate from hmb_default_allocator(): memory without a budget. */
  kDefault = HMB_UNBOUND_DEFAULT,
  /** Throw hmb_orc::Error with #HMB_ESTATE. */
  kFail = HMB_UNBOUND_FAIL
};

/**
 * Counters of one pool object, kept only when enabled at construction (a
 * snapshot; exact when no call is in flight).
 */
struct Counters {
  std::uint64_t mallocs = 0;      /**< successful malloc calls */
  std::uint64_t zero_mallocs = 0; /**< of those, malloc(0) */
  std::uint64_t bytes = 0;        /**< bytes asked for by them, summed */
  std::uint64_t frees = 0;        /**< free calls with a non-NULL pointer */
  std::uint64_t failures = 0;     /**< malloc calls that threw */
  std::uint64_t free_errors = 0;  /**< frees hmb refused (foreign pointers) */
};

/**
 * The part both flavours share: malloc/free through hmb's pointer API and
 * the counters. Not used directly.
 */
class PoolBase : public orc::MemoryPool {
public:
  ~PoolBase() override;
  PoolBase(const PoolBase &) = delete;
  PoolBase &operator=(const PoolBase &) = delete;

  /**
   * Allocate `size` bytes (0 is valid) from the allocator this pool charges.
   * @throws hmb_orc::Error on any failure; never returns NULL
   * @par Thread-safety
   * Thread-safe.
   */
  char *malloc(std::uint64_t size) override;

  /**
   * Free a block of this or any other hmb-backed pool (hmb_ptr_free()).
   * NULL is a no-op. Never throws.
   * @par Thread-safety
   * Thread-safe; any thread may free any block.
   */
  void free(char *p) override;

  /** A snapshot of the counters (all zero unless enabled). Thread-safe. */
  Counters counters() const noexcept;

  /** Whether this pool keeps counters. */
  bool counting() const noexcept {
    return count_;
  }

protected:
  PoolBase(const char *name, bool count) noexcept
      : name_(name), count_(count) {}
  /** The allocator this call charges (may depend on the calling thread). */
  virtual const hmb_allocator_t *allocator() const noexcept = 0;

private:
  const char *name_;
  bool count_;
  std::atomic<std::uint64_t> mallocs_{0};
  std::atomic<std::uint64_t> zero_mallocs_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> frees_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::atomic<std::uint64_t> free_errors_{0};
};

/**
 * Per-task flavour: every malloc charges the runner (or allocator) given at
 * construction. Create one next to each reader, pass it to
 * `ReaderOptions::setMemoryPool()`, and destroy it after the reader, its
 * row readers and its batches (ORC keeps a reference to it).
 */
class TaskPool final : public PoolBase {
public:
  /**
   * Charge `runner`: its allocations succeed only while it is RUNNING
   * (a cancelled runner makes every later malloc throw #HMB_ECANCELED).
   * The runner must outlive this pool's mallocs; blocks may be freed after
   * the runner is destroyed.
   * @param runner the runner to charge
   * @param count  keep Counters
   */
  explicit TaskPool(hmb_runner_t *runner, bool count = false) noexcept;
  /**
   * Charge any allocator, e.g. hmb_default_allocator() (no budget).
   * @param alloc the allocator (must outlive the pool)
   * @param count keep Counters
   */
  explicit TaskPool(const hmb_allocator_t *alloc, bool count = false) noexcept;

  /** The runner given at construction, or NULL. */
  hmb_runner_t *runner() const noexcept {
    return runner_;
  }

protected:
  const hmb_allocator_t *allocator() const noexcept override {
    return alloc_;
  }

private:
  hmb_runner_t *runner_;
  const hmb_allocator_t *alloc_;
};

/**
 * Thread-bound flavour: every malloc charges the runner the calling thread
 * has bound (hmb_runner_bind(), or hmb_orc::ScopedBind), through
 * hmb_bound_allocator(). One object serves every thread and every reader.
 */
class BoundPool final : public PoolBase {
public:
  /**
   * @param unbound what a thread with no runner bound gets
   * @param count   keep Counters (one set shared by every thread)
   */
  explicit BoundPool(Unbound unbound = Unbound::kDefault,
                     bool count = false) noexcept;

  /** The unbound behaviour chosen at construction. */
  Unbound unbound() const noexcept {
    return unbound_;
  }

protected:
  const hmb_allocator_t *allocator() const noexcept override {
    return alloc_;
  }

private:
  Unbound unbound_;
  const hmb_allocator_t *alloc_;
};

/**
 * Bind a runner to the calling thread for a scope, restoring the previous
 * binding at its end (bindings nest). Not needed inside hmb executor tasks,
 * which run with their runner bound.
 */
class ScopedBind {
public:
  explicit ScopedBind(hmb_runner_t *runner) noexcept
      : previous_(hmb_runner_bind(runner)) {}
  ~ScopedBind() {
    hmb_runner_bind(previous_);
  }
  ScopedBind(const ScopedBind &) = delete;
  ScopedBind &operator=(const ScopedBind &) = delete;

private:
  hmb_runner_t *previous_;
};

} // namespace hmb_orc

#endif // HMB_ORC_HH
