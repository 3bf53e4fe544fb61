/**
 * @file hmb.hpp
 * @brief C++17 header-only wrapper over the hmb C API: RAII owners, an
 *        exception-based error model with non-throwing variants, a
 *        std::pmr::memory_resource and a standard allocator over a runner.
 *
 * @par Example
 * @code
 * #include <hmb.hpp>
 *
 * hmb::pool pool(hmb::pool_options(8ull << 30).cache_bytes(256u << 20));
 * hmb::runner task(pool, split_length);            // estimate
 * while (!task.start(std::chrono::seconds(30))) {  // false: timed out
 *   requeue_later();                               // nothing was taken
 * }
 * hmb::memory_resource mem(task);                  // charges the runner
 * std::pmr::vector<std::uint8_t> footer(&mem);
 * footer.resize(footer_size);                      // budget charged here
 * task.set_need(footer_size + projected_bytes);    // early release
 * hmb::buffer chunk = task.alloc(chunk_size);      // a refcounted handle
 * hmb::buffer view = chunk.slice(0, 4096);         // keeps chunk alive
 * consumer.push(chunk.release());                  // hand one ref over
 * task.finish();                                   // spare budget back
 * @endcode
 *
 * @par Error model
 * Calls that can fail for a reason the caller did not expect throw; calls
 * whose failure is a normal outcome report it in their return value:
 *   - **hmb::error** (a std::runtime_error) for every failed call that does
 *     not allocate: its code() is the HMB_E* code, call() names the C
 *     function that failed, what() reads
 *     "hmb_runner_start: operation cancelled (HMB_ECANCELED)".
 *   - **hmb::alloc_error** (a std::bad_alloc) for every failed allocation
 *     (runner::alloc(), runner::reserve(), hmb::allocate(),
 *     hmb::memory_resource, hmb::allocator), whatever its code: budget
 *     (HMB_ETIMEDOUT of a borrow, HMB_ELIMIT, HMB_ETOOBIG), state
 *     (HMB_ECANCELED, HMB_ESTATE) or memory (HMB_ENOMEM). The standard
 *     containers and std::pmr require a std::bad_alloc from an allocator
 *     that cannot allocate; code() tells a cancelled task from a full pool.
 *   - Both also derive from hmb::failure, so `catch (const hmb::failure &)`
 *     catches every exception of this header and still reads code().
 *   - A timed-out start, grow or wait is the normal retry path, not an
 *     error: runner::start(), runner::start_partial(), runner::grow(),
 *     runner::wait_idle() and task::wait_for() report it by returning false
 *     (or an empty optional) and throw only for other codes.
 *   - The calls of the hot and the retry paths also have a noexcept
 *     `try_` form that returns the code (pool::try_create(),
 *     runner::try_create(), try_start(), try_start_partial(), try_grow(),
 *     try_alloc(), try_finish(), buffer::try_slice(), task::try_wait()),
 *     and close() returns its code; anything else can be called through
 *     get() and the C API without exceptions.
 *   - Destructors never throw. A pool whose destroy fails (runners or
 *     buffers still alive: HMB_EBUSY) is deliberately leaked: the library
 *     has logged a leak report naming each remaining runner, and the pool
 *     stays valid for them. Call pool::close() first to check the code and
 *     retry after closing what is left.
 *   - Operations on an empty (default-constructed or moved-from) owner
 *     forward a NULL handle to the C API and so fail with HMB_EINVAL,
 *     except the observers the C API defines for NULL (size() is 0,
 *     state() is HMB_RUNNER_CLOSED, ...) and close(), which returns 0.
 *   - Built without exceptions (-fno-exceptions), every throwing call
 *     prints its message to stderr and aborts instead; the `try_` forms are
 *     the API to use there.
 *
 * @par Ownership
 * hmb::pool, hmb::runner, hmb::buffer, hmb::executor, hmb::task and
 * hmb::pressure_handler are move-only owners of one C handle (one
 * reference, for buffers and tasks): a moved-from owner is empty and safe
 * to destroy, get() returns the handle, release() hands it over without
 * closing it, and adopt() takes one over. hmb::runner_ref is the
 * non-owning, copyable view of a runner that functions and task bodies
 * take; an hmb::runner converts to it implicitly. Runners, buffers,
 * executors and pressure handlers must not outlive their pool: declare
 * the pool first, so that it is destroyed last.
 *
 * @par Thread-safety
 * Each wrapper call has the thread-safety of the C function it calls,
 * named in its documentation. An owner object itself is not synchronised:
 * do not move, assign or destroy it while another thread uses it.
 */
#ifndef HMB_HPP
#define HMB_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#if !defined(_MSVC_LANG) || _MSVC_LANG < 201703L
#error "hmb.hpp needs C++17 or later"
#endif
#endif

/*
 * In C++ a function named like a struct tag hides the tag (hmb_pool_stats,
 * hmb_runner_stats and hmb_executor_stats are both), which GCC's -Wshadow
 * reports in the C headers; the typedef names used everywhere are
 * unaffected, so the warning is silenced for the C headers only.
 */
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
#include "hmb.h"
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#if defined(__has_include)
#if __has_include(<memory_resource>)
#include <memory_resource>
#endif
#endif

/** 1 when std::pmr is available and hmb::memory_resource is defined. */
#if defined(__cpp_lib_memory_resource)
#define HMB_HPP_HAVE_PMR 1
#else
#define HMB_HPP_HAVE_PMR 0
#endif

/** 1 when exceptions are enabled; 0 turns every throw into an abort. */
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define HMB_HPP_EXCEPTIONS 1
#else
#define HMB_HPP_EXCEPTIONS 0
#endif

/** 1 when RTTI is enabled (memory_resource::is_equal across objects). */
#if defined(__cpp_rtti) || defined(__GXX_RTTI) || defined(_CPPRTTI)
#define HMB_HPP_RTTI 1
#else
#define HMB_HPP_RTTI 0
#endif

namespace hmb {

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * What every exception of this header carries: the HMB_E* code and the C
 * call that returned it. Not a std::exception itself, so that hmb::error
 * and hmb::alloc_error can each derive from exactly one standard exception
 * and still be caught together as `const hmb::failure &`.
 * @par Thread-safety
 * Immutable after construction.
 */
class failure {
public:
  /**
   * The code of the failure.
   * @return the code given at construction: the HMB_E* code (negative)
   *         the C call returned, or a task's positive status
   */
  int code() const noexcept {
    return code_;
  }
  /**
   * The C function that failed.
   * @return its name ("hmb_runner_start"), the static string given at
   *         construction ("hmb" when that was NULL); never NULL
   */
  const char *call() const noexcept {
    return call_;
  }
  /**
   * The message, formatted once at construction.
   * @return "<call>: <hmb_strerror(code)> (<hmb_errname(code)>)", stored
   *         in the object itself (at most 159 bytes): valid as long as the
   *         exception object is
   */
  const char *message() const noexcept {
    return text_;
  }

protected:
  /**
   * Fill the code, the call and the message (no allocation).
   * @param code the HMB_E* code (or a task's positive status)
   * @param call the C function that returned it, a static string (the
   *             object keeps the pointer); NULL reads "hmb"
   */
  failure(int code, const char *call) noexcept
      : code_(code), call_(call != nullptr ? call : "hmb") {
    std::snprintf(text_, sizeof text_, "%s: %s (%s)", call_, hmb_strerror(code),
                  hmb_errname(code));
  }
  /** Copies never allocate (exceptions are copied when thrown). */
  failure(const failure &) noexcept = default;
  /**
   * Copies never allocate.
   * @return `*this`
   */
  failure &operator=(const failure &) noexcept = default;
  /** Only as part of an hmb::error or hmb::alloc_error. */
  ~failure() = default;

private:
  int code_;
  const char *call_;
  char text_[160];
};

/**
 * A failed call that does not allocate: wrong state, bad argument, a
 * cancelled start, a pool still busy, an executor shutting down.
 * @par Thread-safety
 * Immutable after construction.
 */
class error : public std::runtime_error, public failure {
public:
  /**
   * @param code the HMB_E* code
   * @param call the C function that returned it (a static string)
   */
  error(int code, const char *call)
      : std::runtime_error(std::string()), failure(code, call) {}
  /**
   * The message (see hmb::failure::message()); never allocates.
   * @return message(), valid as long as the exception object is
   */
  const char *what() const noexcept override {
    return message();
  }
};

/**
 * A failed allocation, whatever the reason (see the error model in the
 * file comment); a std::bad_alloc so that the standard containers and
 * std::pmr treat it as one. Copying it never allocates.
 * @par Thread-safety
 * Immutable after construction.
 */
class alloc_error : public std::bad_alloc, public failure {
public:
  /**
   * @param code the HMB_E* code
   * @param call the C function that returned it (a static string)
   */
  alloc_error(int code, const char *call) noexcept : failure(code, call) {}
  /**
   * The message (see hmb::failure::message()); never allocates.
   * @return message(), valid as long as the exception object is
   */
  const char *what() const noexcept override {
    return message();
  }
};

namespace detail {

/** Report a failure of a call that does not allocate (see hmb::error). */
[[noreturn]] inline void raise(int code, const char *call) {
#if HMB_HPP_EXCEPTIONS
  throw error(code, call);
#else
  std::fprintf(stderr, "hmb: %s: %s (%s)\n", call, hmb_strerror(code),
               hmb_errname(code));
  std::abort();
#endif
}

/** Report a failed allocation (see hmb::alloc_error). */
[[noreturn]] inline void raise_alloc(int code, const char *call) {
#if HMB_HPP_EXCEPTIONS
  throw alloc_error(code, call);
#else
  std::fprintf(stderr, "hmb: %s: %s (%s)\n", call, hmb_strerror(code),
               hmb_errname(code));
  std::abort();
#endif
}

/** Throw hmb::error unless `rc` is 0. */
inline void check(int rc, const char *call) {
  if (rc != HMB_OK) {
    raise(rc, call);
  }
}

/** A C timeout (ns, -1 forever) from a duration. */
inline int64_t to_ns(std::chrono::nanoseconds d) noexcept {
  return static_cast<int64_t>(d.count());
}

} // namespace detail

// ---------------------------------------------------------------------------
// Timeouts and limits
// ---------------------------------------------------------------------------

/**
 * Largest single allocation or request (#HMB_MAX_ALLOC) as a typed
 * constant, for code built with -Wold-style-cast.
 */
inline constexpr std::size_t max_alloc = std::size_t{1} << 62;
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#endif
static_assert(max_alloc == HMB_MAX_ALLOC, "hmb::max_alloc is HMB_MAX_ALLOC");
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

/** Timeouts are durations; any std::chrono duration converts to this. */
using timeout = std::chrono::nanoseconds;

/** Wait without limit (#HMB_WAIT_FOREVER). */
inline constexpr timeout wait_forever{HMB_WAIT_FOREVER};

/** Do not wait at all (a timeout of 0). */
inline constexpr timeout no_wait{0};

// ---------------------------------------------------------------------------
// Buffers
// ---------------------------------------------------------------------------

/**
 * Owner of one reference to an hmb_buffer_t. Move-only: a copy would be a
 * hidden retain, so retain() is explicit and returns a new owner. The
 * destructor closes the reference (when it is the last one, the memory and
 * its budget go back and the buffer's close handler fires, all before the
 * destructor returns).
 * @par Thread-safety
 * As hmb/buffer.h: any thread holding a reference may retain, slice, read
 * and close; the owner object itself is not synchronised.
 */
class buffer {
public:
  /** An empty owner. */
  buffer() noexcept = default;
  buffer(const buffer &) = delete;
  buffer &operator=(const buffer &) = delete;
  /**
   * Take over `o`'s reference.
   * @param o the owner to take it from; `o` becomes empty
   */
  buffer(buffer &&o) noexcept : b_(std::exchange(o.b_, nullptr)) {}
  /**
   * Close the current reference (see close()), then take over `o`'s.
   * Assigning an owner to itself does nothing.
   * @param o the owner to take the reference from; `o` becomes empty
   * @return `*this`
   */
  buffer &operator=(buffer &&o) noexcept {
    if (this != &o) {
      close();
      b_ = std::exchange(o.b_, nullptr);
    }
    return *this;
  }
  /** Close the reference (errors are logged by the library, not thrown). */
  ~buffer() {
    close();
  }

  /**
   * Take over one reference the caller owns (from the C API).
   * @param b the buffer; NULL gives an empty owner
   * @return the owner of that reference, which closes it when destroyed
   *         (the caller must no longer close it itself)
   */
  static buffer adopt(hmb_buffer_t *b) noexcept {
    return buffer(b);
  }

  /**
   * A new owner of a new reference to `b` (hmb_buffer_retain()); the
   * caller keeps its own.
   * @param b a buffer the caller holds a reference to
   * @return the owner of the added reference
   * @throw hmb::error HMB_EINVAL (NULL), HMB_ESTATE (no reference left)
   */
  static buffer share(hmb_buffer_t *b) {
    detail::check(hmb_buffer_retain(b), "hmb_buffer_retain");
    return buffer(b);
  }

  /**
   * The handle, for the C API. Thread-safe.
   * @return the handle, still owned by this object (do not close it
   *         through the C API); NULL when empty
   */
  hmb_buffer_t *get() const noexcept {
    return b_;
  }
  /** Whether this owns a reference. */
  explicit operator bool() const noexcept {
    return b_ != nullptr;
  }

  /**
   * Hand the reference over without closing it (to the C API, a queue).
   * @return the handle; NULL when empty. The owner becomes empty.
   */
  hmb_buffer_t *release() noexcept {
    return std::exchange(b_, nullptr);
  }

  /**
   * Close the reference now (hmb_buffer_close()); the owner becomes empty
   * whatever the result.
   * @return 0 (also when empty), or #HMB_ESTATE (closed more often than
   *         retained, through the C API)
   */
  int close() noexcept {
    hmb_buffer_t *b = std::exchange(b_, nullptr);
    return b != nullptr ? hmb_buffer_close(b) : HMB_OK;
  }

  /**
   * Another reference to the same buffer (hmb_buffer_retain()).
   * @return the owner of the new reference; this owner keeps its own
   * @throw hmb::error HMB_EINVAL (empty), HMB_ESTATE (no reference left)
   */
  buffer retain() const {
    return share(b_);
  }

  /**
   * A slice viewing [offset, offset + length) that keeps this buffer alive
   * until its own last close (hmb_buffer_slice()).
   * @param offset first byte of the view
   * @param length bytes viewed (> 0); offset + length must not pass size()
   * @return the owner of the slice's one reference (the slice has its own
   *         count and no close handler); this buffer is unchanged
   * @throw hmb::error HMB_EINVAL (empty, length 0, range outside),
   *        HMB_ENOMEM (no memory for the handle), HMB_ESTATE
   */
  buffer slice(std::size_t offset, std::size_t length) const {
    hmb_buffer_t *s = nullptr;
    detail::check(hmb_buffer_slice(b_, offset, length, &s), "hmb_buffer_slice");
    return buffer(s);
  }

  /**
   * slice() without throwing.
   * @param offset first byte of the view
   * @param length bytes viewed (> 0)
   * @param out    receives the slice (its previous reference is closed);
   *               left empty on error
   * @return 0 or the code of hmb_buffer_slice()
   */
  int try_slice(std::size_t offset, std::size_t length,
                buffer &out) const noexcept {
    hmb_buffer_t *s = nullptr;
    int rc = hmb_buffer_slice(b_, offset, length, &s);
    out = buffer(s);
    return rc;
  }

  /**
   * The bytes (hmb_buffer_data()).
   * @return the first byte; NULL when empty or for a reservation (see
   *         runner_ops::reserve()). A buffer of size 0 has a distinct
   *         non-NULL pointer that must not be read or written.
   */
  void *data() const noexcept {
    return hmb_buffer_data(b_);
  }
  /**
   * The bytes as `T *` (no alignment check beyond the allocator's).
   * @tparam T the type the bytes are read as
   * @return data() converted to `T *`; NULL when data() is
   */
  template <class T> T *data_as() const noexcept {
    return static_cast<T *>(data());
  }
  /**
   * Length in bytes (hmb_buffer_size()).
   * @return the size (for a reservation, the bytes it reserves); 0 when
   *         empty
   */
  std::size_t size() const noexcept {
    return hmb_buffer_size(b_);
  }
  /**
   * Whether the bytes are CUDA pinned (hmb_buffer_is_pinned()).
   * @return true for page-locked host memory (a slice reports its
   *         parent's kind); false for pageable memory (also a pinned
   *         request served pageable) and when empty
   */
  bool is_pinned() const noexcept {
    return hmb_buffer_is_pinned(b_) != 0;
  }
  /**
   * Reference count (hmb_buffer_refcount()).
   * @return the count at the moment of the call (other threads may change
   *         it at once); 0 when empty
   */
  long refcount() const noexcept {
    return hmb_buffer_refcount(b_);
  }
  /**
   * The buffer a slice views (hmb_buffer_parent()).
   * @return the parent, not retained (the slice keeps it alive while this
   *         owner holds its reference); NULL for a buffer that is not a
   *         slice and when empty
   */
  hmb_buffer_t *parent() const noexcept {
    return hmb_buffer_parent(b_);
  }

  /**
   * Install a close-event handler (hmb_buffer_set_handler()); install it
   * before the buffer is shared between threads.
   * @param handler the new handler ({nullptr, nullptr} removes it)
   * @return the handler it replaces, for chaining
   * @throw hmb::error HMB_EINVAL (empty)
   */
  hmb_buffer_handler_t set_handler(const hmb_buffer_handler_t &handler) {
    hmb_buffer_handler_t previous{nullptr, nullptr};
    detail::check(hmb_buffer_set_handler(b_, &handler, &previous),
                  "hmb_buffer_set_handler");
    return previous;
  }

private:
  explicit buffer(hmb_buffer_t *b) noexcept : b_(b) {}
  hmb_buffer_t *b_ = nullptr;
};

/**
 * Allocate a buffer through any allocator (hmb_allocate()).
 * @param alloc the allocator (a runner's, the bound or the default one)
 * @param bytes bytes (0 is valid and charges nothing)
 * @param flags #HMB_ALLOC_PINNED or 0
 * @return the owner of the new buffer's one reference
 * @throw hmb::alloc_error with the allocator's code (#HMB_EINVAL for a
 *        NULL allocator or unknown flags, #HMB_ETOOBIG above
 *        #HMB_MAX_ALLOC)
 * @par Thread-safety
 * As hmb_allocate().
 */
inline buffer allocate(const hmb_allocator_t *alloc, std::size_t bytes,
                       unsigned flags = 0) {
  hmb_buffer_t *b = nullptr;
  int rc = hmb_allocate(alloc, bytes, flags, &b);
  if (rc != HMB_OK) {
    detail::raise_alloc(rc, "hmb_allocate");
  }
  return buffer::adopt(b);
}

/**
 * Allocate an aligned buffer (hmb_allocate_aligned()).
 * @param alloc     the allocator
 * @param bytes     bytes (0 is valid)
 * @param alignment a power of two <= #HMB_MAX_ALIGN (0: the default)
 * @param flags     #HMB_ALLOC_PINNED or 0
 * @return the owner of the new buffer's one reference, its data aligned
 *         to `alignment`
 * @throw hmb::alloc_error with the allocator's code (#HMB_EINVAL for a
 *        bad alignment too)
 * @par Thread-safety
 * As hmb_allocate().
 */
inline buffer allocate_aligned(const hmb_allocator_t *alloc, std::size_t bytes,
                               std::size_t alignment, unsigned flags = 0) {
  hmb_buffer_t *b = nullptr;
  int rc = hmb_allocate_aligned(alloc, bytes, alignment, flags, &b);
  if (rc != HMB_OK) {
    detail::raise_alloc(rc, "hmb_allocate_aligned");
  }
  return buffer::adopt(b);
}

/**
 * Physical memory counters of the default allocator.
 * @return a snapshot of the process-wide counters of
 *         hmb_default_allocator() (see hmb/stats.h)
 * @throw hmb::error (never in practice)
 * @par Thread-safety
 * Thread-safe.
 */
inline hmb_memory_stats_t default_memory_stats() {
  hmb_memory_stats_t s{};
  detail::check(hmb_default_memory_stats(&s), "hmb_default_memory_stats");
  return s;
}

// ---------------------------------------------------------------------------
// Pools
// ---------------------------------------------------------------------------

/**
 * Builder over hmb_pool_config_t: each setter returns `*this`. Fields
 * without a setter are reached through raw().
 * @par Thread-safety
 * A plain value.
 */
class pool_options {
public:
  /** All defaults; set limit() before creating a pool. */
  pool_options() noexcept {
    hmb_pool_config_init(&cfg_);
  }
  /**
   * All defaults and a budget.
   * @param bytes the budget, as limit()
   */
  explicit pool_options(std::size_t bytes) noexcept : pool_options() {
    cfg_.limit = bytes;
  }

  /**
   * The budget (required).
   * @param bytes the budget in bytes: > 0 and <= #HMB_MAX_ALLOC (the
   *              pool's creation fails with #HMB_EINVAL otherwise)
   * @return `*this`
   */
  pool_options &limit(std::size_t bytes) noexcept {
    cfg_.limit = bytes;
    return *this;
  }
  /**
   * Largest single request; larger ones fail with HMB_ETOOBIG.
   * @param bytes the largest start, grow or allocation ever accepted
   *              (<= #HMB_MAX_ALLOC); 0: #HMB_MAX_ALLOC
   * @return `*this`
   */
  pool_options &max_request(std::size_t bytes) noexcept {
    cfg_.max_request = bytes;
    return *this;
  }
  /**
   * Alignment of hmb_allocate() buffers; the pointer API (hmb::allocator,
   * hmb::memory_resource) takes its own.
   * @param bytes a power of two; 0 or less than 64: 64
   * @return `*this`
   */
  pool_options &alignment(std::size_t bytes) noexcept {
    cfg_.alignment = bytes;
    return *this;
  }
  /**
   * A custom physical backend. With one, the pinned, cache and huge-page
   * settings are ignored.
   * @param b the backend, whose vtable the pool's creation copies (what its
   *          ctx points to must outlive the pool); NULL: the built-in ones
   * @return `*this`
   */
  pool_options &backend(const hmb_backend_t *b) noexcept {
    cfg_.backend = b;
    return *this;
  }
  /**
   * A CUDA pinned region for #HMB_ALLOC_PINNED requests, made by the
   * pool's creation (which loads the CUDA runtime then). Without a
   * runtime, a device or room in the region, pinned requests are served
   * pageable and counted as fallbacks; they are charged either way.
   * @param bytes  size of the region; 0: no region
   * @param method an hmb_pinned_method_t: #HMB_PINNED_HOST_ALLOC
   *               (cudaHostAlloc of the whole region) or
   *               #HMB_PINNED_REGISTER (map, pre-touch, register); any
   *               other value makes the creation fail with #HMB_EINVAL
   * @return `*this`
   */
  pool_options &pinned(std::size_t bytes,
                       int method = HMB_PINNED_HOST_ALLOC) noexcept {
    cfg_.pinned_bytes = bytes;
    cfg_.pinned_method = method;
    return *this;
  }
  /**
   * Application-pinned memory used as the pinned region.
   * @param base  memory the application has already pinned (for example
   *              with cudaHostRegister); the pool never frees it, and it
   *              must outlive the pool. NULL: the pool makes its own of
   *              `bytes`, as pinned() does.
   * @param bytes its length
   * @return `*this`
   */
  pool_options &pinned_base(void *base, std::size_t bytes) noexcept {
    cfg_.pinned_base = base;
    cfg_.pinned_bytes = bytes;
    return *this;
  }
  /**
   * Extra cap of the warm cache, which always lives inside the budget.
   * @param bytes the most bytes the cache keeps; 0: no extra cap
   * @return `*this`
   */
  pool_options &cache_bytes(std::size_t bytes) noexcept {
    cfg_.cache_bytes = bytes;
    return *this;
  }
  /**
   * No warm cache: freed pageable blocks go straight back to the OS
   * (#HMB_POOL_NO_CACHE).
   * @return `*this`
   */
  pool_options &no_cache() noexcept {
    cfg_.flags |= HMB_POOL_NO_CACHE;
    return *this;
  }
  /**
   * No transparent huge pages for fresh mappings (#HMB_POOL_NO_HUGEPAGES).
   * @return `*this`
   */
  pool_options &no_hugepages() noexcept {
    cfg_.flags |= HMB_POOL_NO_HUGEPAGES;
    return *this;
  }
  /**
   * Enforce an over-commit cap (#HMB_POOL_CAP_OVERCOMMIT, invariant I5):
   * a request that would pass it fails at once with #HMB_ELIMIT, so
   * progress is no longer guaranteed.
   * @param bytes the most bytes the pool may hold beyond its limit; 0:
   *              never beyond
   * @return `*this`
   */
  pool_options &overcommit_cap(std::size_t bytes) noexcept {
    cfg_.flags |= HMB_POOL_CAP_OVERCOMMIT;
    cfg_.overcommit_cap = bytes;
    return *this;
  }
  /**
   * This pool's diagnostics sink.
   * @param fn    the sink, called from any thread using the pool, never
   *              under a library lock (so it must be thread-safe); NULL:
   *              the process-wide one (hmb_set_log())
   * @param user  passed to `fn` as its first argument; may be NULL
   * @param level the highest hmb_log_level_t passed to `fn`; 0:
   *              #HMB_LOG_WARN
   * @return `*this`
   */
  pool_options &log(hmb_log_fn fn, void *user,
                    int level = HMB_LOG_WARN) noexcept {
    cfg_.log_fn = fn;
    cfg_.log_user = user;
    cfg_.log_level = level;
    return *this;
  }
  /**
   * Waits longer than this are logged once.
   * @param t the threshold; 0: 1 s; negative (wait_forever): never
   * @return `*this`
   */
  pool_options &long_wait(timeout t) noexcept {
    cfg_.long_wait_ns = detail::to_ns(t);
    return *this;
  }
  /**
   * Pressure handlers (pool::on_pressure()) run for requests waiting this
   * long.
   * @param t the wait; 0: 100 ms; negative (wait_forever): never for a
   *          wait (they still run before a borrow goes beyond the limit)
   * @return `*this`
   */
  pool_options &pressure_wait(timeout t) noexcept {
    cfg_.pressure_wait_ns = detail::to_ns(t);
    return *this;
  }
  /**
   * A wait hook for an engine's deadlock detector.
   * @param fn   called on the waiting thread, with no library lock held,
   *             when it is about to block in the pool and when it stops
   *             waiting; must be thread-safe and must not wait for budget.
   *             NULL: none.
   * @param user passed to `fn` as its first argument; may be NULL
   * @return `*this`
   */
  pool_options &wait_hook(hmb_wait_hook_fn fn, void *user) noexcept {
    cfg_.wait_hook = fn;
    cfg_.wait_hook_user = user;
    return *this;
  }

  /**
   * The C configuration, for fields without a setter.
   * @return the configuration held by these options, modifiable
   */
  hmb_pool_config_t &raw() noexcept {
    return cfg_;
  }
  /**
   * The C configuration.
   * @return the configuration held by these options, as pool() and
   *         pool::try_create() take it
   */
  const hmb_pool_config_t &raw() const noexcept {
    return cfg_;
  }

private:
  hmb_pool_config_t cfg_;
};

/**
 * A registered pressure handler (hmb_pool_add_pressure_handler()) that
 * calls a C++ callable; removed by its destructor, after which no call of
 * it is running. Must be destroyed before its pool. Obtain one from
 * pool::on_pressure().
 * @par Thread-safety
 * The callable is called on the thread of the request that is short, with
 * no library lock held; it must be thread-safe and follow the rules of
 * hmb_pressure_fn. Exceptions it throws are caught and dropped (the C
 * library cannot carry them).
 */
class pressure_handler {
public:
  /** The callable's type. */
  using function = std::function<void(const hmb_pressure_t &)>;

  /** An empty registration. */
  pressure_handler() noexcept = default;
  pressure_handler(const pressure_handler &) = delete;
  pressure_handler &operator=(const pressure_handler &) = delete;
  /**
   * Take over `o`'s registration (the callable stays where it is, so the
   * registered handler keeps calling it).
   * @param o the registration to take over; `o` becomes empty
   */
  pressure_handler(pressure_handler &&o) noexcept
      : pool_(std::exchange(o.pool_, nullptr)), id_(o.id_),
        fn_(std::move(o.fn_)) {}
  /**
   * Remove the current registration (see remove()), then take over `o`'s.
   * Assigning a registration to itself does nothing.
   * @param o the registration to take over; `o` becomes empty
   * @return `*this`
   */
  pressure_handler &operator=(pressure_handler &&o) noexcept {
    if (this != &o) {
      remove();
      pool_ = std::exchange(o.pool_, nullptr);
      id_ = o.id_;
      fn_ = std::move(o.fn_);
    }
    return *this;
  }
  /** Remove the handler. */
  ~pressure_handler() {
    remove();
  }

  /**
   * Register `fn` on `pool`.
   * @param pool the pool to watch; it must outlive this registration
   * @param fn   the callable, called as `fn(event)` for each request that
   *             is short (see the class comment); kept by this object
   * @throw hmb::error HMB_EINVAL (NULL pool), HMB_ENOMEM (64 handlers)
   */
  pressure_handler(hmb_pool_t *pool, function fn)
      : fn_(std::make_unique<function>(std::move(fn))) {
    int id = 0;
    detail::check(
        hmb_pool_add_pressure_handler(pool, &trampoline, fn_.get(), &id),
        "hmb_pool_add_pressure_handler");
    pool_ = pool;
    id_ = id;
  }

  /** Whether a handler is registered. */
  explicit operator bool() const noexcept {
    return pool_ != nullptr;
  }
  /**
   * Its identifier in the pool.
   * @return the identifier hmb_pool_add_pressure_handler() gave (what
   *         hmb_pool_remove_pressure_handler() takes); meaningful only
   *         while a handler is registered
   */
  int id() const noexcept {
    return id_;
  }

  /**
   * Remove the handler now (hmb_pool_remove_pressure_handler()); not from
   * inside a pressure handler.
   * @return 0 (also when empty) or the C code
   */
  int remove() noexcept {
    int rc = HMB_OK;
    if (pool_ != nullptr) {
      rc = hmb_pool_remove_pressure_handler(pool_, id_);
      pool_ = nullptr;
    }
    fn_.reset();
    return rc;
  }

private:
  static void trampoline(void *user, hmb_pool_t *, const hmb_pressure_t *ev) {
    auto *fn = static_cast<function *>(user);
#if HMB_HPP_EXCEPTIONS
    try {
      (*fn)(*ev);
    } catch (...) {
      // Nothing can carry it through the C library; the request goes on.
    }
#else
    (*fn)(*ev);
#endif
  }

  hmb_pool_t *pool_ = nullptr;
  int id_ = 0;
  std::unique_ptr<function> fn_;
};

/**
 * Owner of an hmb_pool_t. Create it before, and destroy it after, every
 * runner, buffer and executor that uses it (declare it first).
 * @par Thread-safety
 * As hmb/pool.h: everything but destruction and close() is thread-safe.
 */
class pool {
public:
  /** An empty owner. */
  pool() noexcept = default;
  /**
   * Create a pool (hmb_pool_create()).
   * @param cfg the configuration (see hmb_pool_config_t: only the limit
   *            is required); not used after the call
   * @throw hmb::error HMB_EINVAL (a bad configuration), HMB_ENOTSUP,
   *        HMB_ENOMEM
   */
  explicit pool(const hmb_pool_config_t &cfg) {
    detail::check(hmb_pool_create(&cfg, &p_), "hmb_pool_create");
  }
  /**
   * Create a pool from options.
   * @param o the options; not used after the call
   * @throw hmb::error as pool(const hmb_pool_config_t &)
   */
  explicit pool(const pool_options &o) : pool(o.raw()) {}
  /**
   * Create a pool with a budget, all else default.
   * @param bytes the budget: > 0 and <= #HMB_MAX_ALLOC
   * @throw hmb::error HMB_EINVAL (a bad budget), HMB_ENOMEM
   */
  explicit pool(std::size_t bytes) : pool(pool_options(bytes)) {}

  pool(const pool &) = delete;
  pool &operator=(const pool &) = delete;
  /**
   * Take over `o`'s pool.
   * @param o the owner to take it from; `o` becomes empty
   */
  pool(pool &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  /**
   * Destroy the current pool (see ~pool(): a busy one is leaked), then
   * take over `o`'s. Assigning an owner to itself does nothing.
   * @param o the owner to take the pool from; `o` becomes empty
   * @return `*this`
   */
  pool &operator=(pool &&o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
    }
    return *this;
  }
  /**
   * Destroy the pool. If it is still busy (#HMB_EBUSY: runners or buffers
   * alive) the handle is leaked on purpose: the library has logged a leak
   * report, and the pool stays valid for what still uses it. Use close()
   * to see the code.
   */
  ~pool() {
    reset();
  }

  /**
   * Create a pool without throwing.
   * @param cfg the configuration
   * @param out receives the pool on success (its previous pool is
   *            destroyed as by ~pool())
   * @return 0 or the code of hmb_pool_create()
   */
  static int try_create(const hmb_pool_config_t &cfg, pool &out) noexcept {
    hmb_pool_t *p = nullptr;
    int rc = hmb_pool_create(&cfg, &p);
    if (rc == HMB_OK) {
      out = adopt(p);
    }
    return rc;
  }
  /**
   * Take over a handle the caller owns.
   * @param p the pool (from hmb_pool_create()); NULL gives an empty owner
   * @return the owner of `p`, which destroys it (see ~pool())
   */
  static pool adopt(hmb_pool_t *p) noexcept {
    pool o;
    o.p_ = p;
    return o;
  }

  /**
   * The handle, for the C API.
   * @return the handle, still owned by this object; NULL when empty
   */
  hmb_pool_t *get() const noexcept {
    return p_;
  }
  /** Whether this owns a pool. */
  explicit operator bool() const noexcept {
    return p_ != nullptr;
  }
  /**
   * Give up ownership without destroying the pool.
   * @return the handle, now the caller's to destroy with
   *         hmb_pool_destroy(); NULL when empty. The owner becomes empty.
   */
  hmb_pool_t *release() noexcept {
    return std::exchange(p_, nullptr);
  }

  /**
   * Destroy the pool now (hmb_pool_destroy()). On 0 the owner becomes
   * empty; on #HMB_EBUSY (or #HMB_ESTATE) it keeps the pool, which stays
   * fully usable, so the caller can close what is left and call again.
   * @return 0 (also when empty), #HMB_EBUSY, #HMB_ESTATE
   * @par Thread-safety
   * Must not race with other calls on the pool.
   */
  int close() noexcept {
    if (p_ == nullptr) {
      return HMB_OK;
    }
    int rc = hmb_pool_destroy(p_);
    if (rc == HMB_OK) {
      p_ = nullptr;
    }
    return rc;
  }

  /**
   * Budget counters (hmb_pool_stats()).
   * @return a snapshot (see hmb/stats.h for which fields are exact)
   * @throw hmb::error HMB_EINVAL (empty)
   */
  hmb_pool_stats_t stats() const {
    hmb_pool_stats_t s{};
    detail::check(hmb_pool_stats(p_, &s), "hmb_pool_stats");
    return s;
  }
  /**
   * Physical memory counters (hmb_pool_memory_stats()). Lock-free.
   * @return a snapshot of the pool's counters (see hmb/stats.h)
   * @throw hmb::error HMB_EINVAL (empty)
   */
  hmb_memory_stats_t memory_stats() const {
    hmb_memory_stats_t s{};
    detail::check(hmb_pool_memory_stats(p_, &s), "hmb_pool_memory_stats");
    return s;
  }
  /**
   * The current limit (hmb_pool_limit()). Lock-free.
   * @return the limit in bytes; 0 when empty
   */
  std::size_t limit() const noexcept {
    return hmb_pool_limit(p_);
  }
  /**
   * Change the limit (hmb_pool_set_limit()). Growing admits waiters at
   * once; shrinking takes no budget away from the runners that hold it,
   * and every later grant respects the new limit.
   * @param bytes the new limit: > 0 and <= #HMB_MAX_ALLOC
   * @throw hmb::error HMB_EINVAL (empty, or a bad limit)
   */
  void set_limit(std::size_t bytes) {
    detail::check(hmb_pool_set_limit(p_, bytes), "hmb_pool_set_limit");
  }
  /**
   * Give cached (warm) blocks back to the OS (hmb_pool_trim()).
   * @param keep_bytes cached bytes to keep; 0: give every one back
   * @throw hmb::error HMB_EINVAL (empty)
   */
  void trim(std::size_t keep_bytes = 0) {
    detail::check(hmb_pool_trim(p_, keep_bytes), "hmb_pool_trim");
  }
  /**
   * The pool's description for an error report (hmb_pool_describe()).
   * @param top how many runners to list (0: 5; at most 32 are listed)
   * @return the description (budget, waiters, the progress runner and the
   *         runners holding the most), at most 4095 characters
   * @throw hmb::error HMB_EINVAL (empty)
   */
  std::string describe(int top = 0) const {
    std::string s(4096, '\0');
    int n = hmb_pool_describe(p_, top, &s[0], s.size());
    if (n < 0) {
      detail::raise(n, "hmb_pool_describe");
    }
    s.resize(std::min(static_cast<std::size_t>(n), s.size() - 1));
    return s;
  }
  /**
   * The library's self-check (hmb_pool_check()).
   * @param flags #HMB_CHECK_QUIESCENT when the caller knows no call on the
   *              pool, its runners or their buffers is in flight (the
   *              invariants that hold only at rest are checked too)
   * @return "" when every invariant holds, else the first broken one
   * @throw hmb::error HMB_EINVAL
   */
  std::string check(unsigned flags = 0) const {
    char text[512] = {0};
    int rc = hmb_pool_check(p_, flags, text, sizeof text);
    if (rc == HMB_OK) {
      return std::string();
    }
    if (rc != HMB_EFAILED) {
      detail::raise(rc, "hmb_pool_check");
    }
    return text[0] != '\0' ? std::string(text) : std::string("broken");
  }
  /**
   * Register a pressure handler that calls `fn(const hmb_pressure_t &)`.
   * Keep the returned object alive as long as the handler should run.
   * @param fn the callable (see hmb::pressure_handler for its rules)
   * @return the registration; destroying it (or its remove()) removes
   *         the handler
   * @throw hmb::error HMB_EINVAL (empty), HMB_ENOMEM (64 handlers)
   */
  pressure_handler on_pressure(pressure_handler::function fn) const {
    return pressure_handler(p_, std::move(fn));
  }

private:
  void reset() noexcept {
    if (p_ != nullptr) {
      // On HMB_EBUSY the pool is leaked on purpose (see ~pool()).
      (void)hmb_pool_destroy(p_);
      p_ = nullptr;
    }
  }
  hmb_pool_t *p_ = nullptr;
};

// ---------------------------------------------------------------------------
// Runners
// ---------------------------------------------------------------------------

/**
 * Builder over hmb_runner_config_t; the name is kept as a std::string and
 * copied by the library at creation.
 * @par Thread-safety
 * A plain value.
 */
class runner_options {
public:
  /** All defaults (estimate 0). */
  runner_options() noexcept {
    hmb_runner_config_init(&cfg_);
  }
  /**
   * All defaults and an estimate.
   * @param bytes the estimate, as estimate()
   */
  explicit runner_options(std::size_t bytes) noexcept : runner_options() {
    cfg_.estimate = bytes;
  }
  /**
   * The budget start() acquires.
   * @param bytes the estimate (0 is valid); above the pool's max_request
   *              the runner's creation fails with #HMB_ETOOBIG
   * @return `*this`
   */
  runner_options &estimate(std::size_t bytes) noexcept {
    cfg_.estimate = bytes;
    return *this;
  }
  /**
   * Start priority.
   * @param p the priority: higher is served first, equal ones in arrival
   *          order (default 0)
   * @return `*this`
   */
  runner_options &priority(int p) noexcept {
    cfg_.priority = p;
    return *this;
  }
  /**
   * Longest wait of one borrow or grow; a borrow that waits longer fails
   * with #HMB_ETIMEDOUT. Cancel always interrupts.
   * @param t the wait; 0 (the default) or wait_forever: no limit (the
   *          admission rules guarantee progress)
   * @return `*this`
   */
  runner_options &borrow_timeout(timeout t) noexcept {
    cfg_.borrow_timeout_ns = detail::to_ns(t);
    return *this;
  }
  /**
   * Name for diagnostics.
   * @param n the name; the library copies at most 31 bytes of it, with
   *          control characters replaced by '?'. Empty: none.
   * @return `*this`
   */
  runner_options &name(std::string n) {
    name_ = std::move(n);
    return *this;
  }
  /**
   * The C configuration.
   * @return a copy whose name points into these options: valid while they
   *         live unchanged
   */
  hmb_runner_config_t raw() const noexcept {
    hmb_runner_config_t c = cfg_;
    c.name = name_.empty() ? nullptr : name_.c_str();
    return c;
  }

private:
  hmb_runner_config_t cfg_;
  std::string name_;
};

class runner;
class runner_ref;

/**
 * The operations of a runner, shared by the owner (hmb::runner) and the
 * view (hmb::runner_ref). Each calls the C function it names; see
 * hmb/runner.h for states, budget rules and thread-safety.
 * @tparam Self the derived class, whose get() gives the runner's handle
 *              (NULL when empty)
 */
template <class Self> class runner_ops {
public:
  /** Whether this refers to a runner. */
  explicit operator bool() const noexcept {
    return handle() != nullptr;
  }

  /**
   * hmb_runner_start() without throwing.
   * @param t longest wait (no_wait: do not wait, and do not sleep;
   *          wait_forever: no limit)
   * @return 0, #HMB_ETIMEDOUT (retry later), #HMB_ECANCELED, #HMB_ESTATE,
   *         #HMB_EINVAL, #HMB_ETOOBIG
   * @par Thread-safety
   * Lifecycle call; may run concurrently with cancel().
   */
  int try_start(timeout t = wait_forever) noexcept {
    return hmb_runner_start(handle(), detail::to_ns(t));
  }
  /**
   * Acquire the estimate and enter RUNNING (hmb_runner_start()).
   * @param t longest wait (no_wait: do not wait, and do not sleep;
   *          wait_forever: no limit)
   * @return true when running; false when it timed out, in which case
   *         nothing was taken, the runner is CREATED again and keeps its
   *         place in the pool's queue: call start() again later
   * @throw hmb::error for any other code (HMB_ECANCELED, HMB_ESTATE, ...)
   * @par Thread-safety
   * Lifecycle call; may run concurrently with cancel().
   */
  bool start(timeout t = wait_forever) {
    return timed(try_start(t), "hmb_runner_start");
  }
  /**
   * hmb_runner_start_partial() without throwing.
   * @param bytes budget to acquire (0 is valid: it still waits its turn);
   *              at most the need declared by set_need() before start
   * @param t     longest wait (no_wait: do not wait, and do not sleep;
   *              wait_forever: no limit)
   * @return the codes of try_start(); on every error nothing was taken
   */
  int try_start_partial(std::size_t bytes, timeout t = wait_forever) noexcept {
    return hmb_runner_start_partial(handle(), bytes, detail::to_ns(t));
  }
  /**
   * Staged admission of a first piece (hmb_runner_start_partial()); when
   * nothing is running the pool grants what is available instead and the
   * runner becomes the progress runner.
   * @param bytes budget to acquire (0 is valid: it still waits its turn);
   *              at most the need declared by set_need() before start
   * @param t     longest wait (no_wait: do not wait, and do not sleep;
   *              wait_forever: no limit)
   * @return true when running, false when it timed out (as start():
   *         nothing was taken, call it again later)
   * @throw hmb::error for any other code (HMB_ECANCELED, HMB_ESTATE,
   *        HMB_ETOOBIG, HMB_EINVAL)
   */
  bool start_partial(std::size_t bytes, timeout t = wait_forever) {
    return timed(try_start_partial(bytes, t), "hmb_runner_start_partial");
  }
  /**
   * hmb_runner_grow() without throwing. Thread-safe.
   * @param bytes the budget to hold (holding it already: 0 at once)
   * @param t     longest wait (no_wait: do not wait; wait_forever: no
   *              limit)
   * @return 0 (granted; the progress runner may hold less), #HMB_ETIMEDOUT
   *         or #HMB_ECANCELED (nothing taken), #HMB_ESTATE (not RUNNING),
   *         #HMB_ETOOBIG (above the pool's max_request), #HMB_EINVAL
   */
  int try_grow(std::size_t bytes, timeout t = wait_forever) noexcept {
    return hmb_runner_grow(handle(), bytes, detail::to_ns(t));
  }
  /**
   * Reserve budget up to `bytes` (hmb_runner_grow()). The progress runner
   * may come back holding less (see hmb/runner.h).
   * @param bytes the budget to hold (holding it already: true at once)
   * @param t     longest wait (no_wait: do not wait; wait_forever: no
   *              limit)
   * @return true when granted, false when it timed out (nothing taken)
   * @throw hmb::error HMB_ECANCELED, HMB_ESTATE, HMB_ETOOBIG, HMB_EINVAL
   * @par Thread-safety
   * Thread-safe.
   */
  bool grow(std::size_t bytes, timeout t = wait_forever) {
    return timed(try_grow(bytes, t), "hmb_runner_grow");
  }
  /**
   * Declare the real need (hmb_runner_set_need()): the early release.
   * @param need the real need in bytes: held is trimmed to max(live, need)
   *             now and whenever closes free budget while running (a later
   *             call replaces it); above held it returns nothing (grow()
   *             reserves it); declared before start, it caps what start
   *             acquires
   * @return the bytes returned to the pool now
   * @throw hmb::error HMB_EINVAL, HMB_ETOOBIG, HMB_ESTATE
   * @par Thread-safety
   * Thread-safe.
   */
  std::size_t set_need(std::size_t need) {
    std::size_t returned = 0;
    detail::check(hmb_runner_set_need(handle(), need, &returned),
                  "hmb_runner_set_need");
    return returned;
  }
  /**
   * Return up to `max_bytes` of spare budget (hmb_runner_try_free(); the
   * name is the C API's, this call does throw on a NULL runner).
   * @param max_bytes most bytes to return (the default: all the spare);
   *                  the spare left is max(0, spare - max_bytes)
   * @return the bytes returned; 0 when there was no spare budget (in any
   *         state)
   * @throw hmb::error HMB_EINVAL (empty)
   * @par Thread-safety
   * Thread-safe.
   */
  std::size_t
  try_free(std::size_t max_bytes = std::numeric_limits<std::size_t>::max()) {
    std::size_t returned = 0;
    detail::check(hmb_runner_try_free(handle(), max_bytes, &returned),
                  "hmb_runner_try_free");
    return returned;
  }
  /**
   * Finish the task (hmb_runner_finish()): 0 gives COMPLETED, anything
   * else FAILED (a cancelled runner stays CANCELLED). From now on every
   * closed buffer returns its bytes to the pool.
   * @param status 0 for success (COMPLETED); anything else gives FAILED
   * @return the spare budget returned
   * @throw hmb::error HMB_ESTATE (wrong state, second finish, a borrow
   *        still waiting), HMB_EINVAL
   * @par Thread-safety
   * Lifecycle call.
   */
  std::size_t finish(int status = 0) {
    std::size_t returned = 0;
    detail::check(hmb_runner_finish(handle(), status, &returned),
                  "hmb_runner_finish");
    return returned;
  }
  /**
   * hmb_runner_finish() without throwing.
   * @param status   0 for success (COMPLETED); anything else gives FAILED
   * @param returned receives the spare budget returned; may be NULL
   * @return 0, #HMB_ESTATE (wrong state, second finish, a borrow still
   *         waiting; nothing changes), #HMB_EINVAL (empty)
   */
  int try_finish(int status = 0, std::size_t *returned = nullptr) noexcept {
    return hmb_runner_finish(handle(), status, returned);
  }
  /**
   * Cancel (hmb_runner_cancel()); idempotent.
   * @return true when the runner is (now) cancelled, false when it had
   *         already finished (#HMB_ESTATE: too late to cancel)
   * @throw hmb::error HMB_EINVAL (empty)
   * @par Thread-safety
   * Thread-safe; meant to come from another thread.
   */
  bool cancel() {
    int rc = hmb_runner_cancel(handle());
    if (rc == HMB_ESTATE) {
      return false;
    }
    detail::check(rc, "hmb_runner_cancel");
    return true;
  }
  /**
   * Whether cancel() was called (hmb_runner_is_cancelled()). Lock-free.
   * @return true once the runner is cancelled (through any view or the C
   *         API); false before and when empty
   */
  bool cancelled() const noexcept {
    return hmb_runner_is_cancelled(handle()) != 0;
  }
  /**
   * The current state (hmb_runner_state()). Lock-free.
   * @return a snapshot of the state; #HMB_RUNNER_CLOSED when empty
   */
  hmb_runner_state_t state() const noexcept {
    return static_cast<hmb_runner_state_t>(hmb_runner_state(handle()));
  }
  /**
   * The current state's name (hmb_runner_state_name()).
   * @return a static string ("RUNNING"; "CLOSED" when empty); never NULL
   */
  const char *state_name() const noexcept {
    return hmb_runner_state_name(hmb_runner_state(handle()));
  }
  /**
   * Wait until no buffer of the runner is live (hmb_runner_wait_idle()).
   * @param t longest wait (no_wait: just look; wait_forever: no limit)
   * @return true when idle, false on timeout
   * @throw hmb::error HMB_EINVAL (empty)
   * @par Thread-safety
   * Thread-safe.
   */
  bool wait_idle(timeout t = wait_forever) {
    return timed(hmb_runner_wait_idle(handle(), detail::to_ns(t)),
                 "hmb_runner_wait_idle");
  }
  /**
   * Counters (hmb_runner_stats()).
   * @return a snapshot of the runner's counters (see hmb/stats.h for
   *         which fields are exact)
   * @throw hmb::error HMB_EINVAL (empty)
   * @par Thread-safety
   * Thread-safe, lock-free.
   */
  hmb_runner_stats_t stats() const {
    hmb_runner_stats_t s{};
    detail::check(hmb_runner_stats(handle(), &s), "hmb_runner_stats");
    return s;
  }
  /**
   * The runner's allocator (hmb_runner_allocator()), for code that takes
   * an hmb_allocator_t.
   * @return the vtable, valid until the runner's handle is destroyed
   *         (allocations through it succeed only while RUNNING); NULL when
   *         empty
   */
  const hmb_allocator_t *allocator() const noexcept {
    return hmb_runner_allocator(handle());
  }
  /**
   * Allocate without throwing (hmb_runner_alloc()).
   * @param bytes bytes (0 is valid)
   * @param out   receives the buffer (its previous reference is closed);
   *              left empty on error
   * @param flags #HMB_ALLOC_PINNED or 0
   * @return 0 or the allocator's code
   * @par Thread-safety
   * Thread-safe.
   */
  int try_alloc(std::size_t bytes, buffer &out, unsigned flags = 0) noexcept {
    hmb_buffer_t *b = nullptr;
    int rc = hmb_runner_alloc(handle(), bytes, flags, &b);
    out = buffer::adopt(b);
    return rc;
  }
  /**
   * Allocate a buffer charged to this runner (hmb_runner_alloc()); beyond
   * the budget held it borrows exactly the deficit, which may wait.
   * @param bytes bytes (0 is valid and charges nothing)
   * @param flags #HMB_ALLOC_PINNED or 0
   * @return the owner of the new buffer's one reference; its budget comes
   *         back when its last reference closes
   * @throw hmb::alloc_error HMB_ESTATE (not running), HMB_ECANCELED,
   *        HMB_ETIMEDOUT (borrow timeout), HMB_ELIMIT, HMB_ETOOBIG,
   *        HMB_ENOMEM, HMB_EINVAL
   * @par Thread-safety
   * Thread-safe.
   */
  buffer alloc(std::size_t bytes, unsigned flags = 0) {
    hmb_buffer_t *b = nullptr;
    int rc = hmb_runner_alloc(handle(), bytes, flags, &b);
    if (rc != HMB_OK) {
      detail::raise_alloc(rc, "hmb_runner_alloc");
    }
    return buffer::adopt(b);
  }
  /**
   * Reserve budget with no memory behind it (hmb_runner_reserve()); the
   * budget comes back when the returned handle closes.
   * @param bytes bytes of budget to reserve (> 0)
   * @return the reservation: a buffer whose data() is NULL and whose
   *         size() is `bytes`, charged like an allocation
   * @throw hmb::alloc_error as alloc(); HMB_EINVAL for 0 bytes
   * @par Thread-safety
   * Thread-safe.
   */
  buffer reserve(std::size_t bytes) {
    hmb_buffer_t *b = nullptr;
    int rc = hmb_runner_reserve(handle(), bytes, &b);
    if (rc != HMB_OK) {
      detail::raise_alloc(rc, "hmb_runner_reserve");
    }
    return buffer::adopt(b);
  }

protected:
  /** Only as the base of hmb::runner and hmb::runner_ref. */
  runner_ops() noexcept = default;
  /** Only as the base of hmb::runner and hmb::runner_ref. */
  ~runner_ops() = default;
  /** Copied with a view (hmb::runner itself is move-only). */
  runner_ops(const runner_ops &) noexcept = default;
  /**
   * Assigned with a view.
   * @return `*this`
   */
  runner_ops &operator=(const runner_ops &) noexcept = default;

private:
  hmb_runner_t *handle() const noexcept {
    return static_cast<const Self *>(this)->get();
  }
  static bool timed(int rc, const char *call) {
    if (rc == HMB_ETIMEDOUT) {
      return false;
    }
    detail::check(rc, call);
    return true;
  }
};

/**
 * Owner of an hmb_runner_t; the destructor calls hmb_runner_destroy()
 * (finishing a RUNNING runner as COMPLETED; live buffers stay valid and
 * return their budget when closed).
 * @par Thread-safety
 * As hmb/runner.h; destruction must not race with calls on the runner.
 */
class runner : public runner_ops<runner> {
public:
  /** An empty owner. */
  runner() noexcept = default;
  /**
   * Create a runner (hmb_runner_create()) in the CREATED state; it holds
   * no budget until start().
   * @param p   the pool it takes budget from; must outlive the runner
   * @param cfg its configuration (the name is copied); not used after the
   *            call
   * @throw hmb::error HMB_EINVAL (NULL pool, a bad configuration),
   *        HMB_ETOOBIG (estimate above the pool's max_request),
   *        HMB_ENOTSUP, HMB_ENOMEM
   */
  runner(hmb_pool_t *p, const hmb_runner_config_t &cfg) {
    detail::check(hmb_runner_create(p, &cfg, &r_), "hmb_runner_create");
  }
  /**
   * Create a runner from options.
   * @param p the pool it takes budget from; must outlive the runner
   * @param o the options; not used after the call
   * @throw hmb::error as runner(hmb_pool_t *, const hmb_runner_config_t &)
   */
  runner(hmb_pool_t *p, const runner_options &o) : runner(p, o.raw()) {}
  /**
   * Create a runner from options.
   * @param p the pool it takes budget from; must outlive the runner
   * @param o the options; not used after the call
   * @throw hmb::error as runner(hmb_pool_t *, const hmb_runner_config_t &)
   *        (HMB_EINVAL for an empty pool)
   */
  runner(const pool &p, const runner_options &o) : runner(p.get(), o.raw()) {}
  /**
   * Create a runner with an estimate, all else default.
   * @param p        the pool it takes budget from; must outlive the runner
   * @param estimate the budget start() acquires (0 is valid)
   * @throw hmb::error as runner(hmb_pool_t *, const hmb_runner_config_t &)
   *        (HMB_EINVAL for an empty pool)
   */
  runner(const pool &p, std::size_t estimate)
      : runner(p.get(), runner_options(estimate).raw()) {}

  runner(const runner &) = delete;
  runner &operator=(const runner &) = delete;
  /**
   * Take over `o`'s runner (views of it stay valid: they hold the handle).
   * @param o the owner to take it from; `o` becomes empty
   */
  runner(runner &&o) noexcept
      : runner_ops<runner>(), r_(std::exchange(o.r_, nullptr)) {}
  /**
   * Destroy the current runner (see destroy()), then take over `o`'s.
   * Assigning an owner to itself does nothing.
   * @param o the owner to take the runner from; `o` becomes empty
   * @return `*this`
   */
  runner &operator=(runner &&o) noexcept {
    if (this != &o) {
      destroy();
      r_ = std::exchange(o.r_, nullptr);
    }
    return *this;
  }
  /** hmb_runner_destroy(). */
  ~runner() {
    destroy();
  }

  /**
   * Create a runner without throwing.
   * @param p   the pool
   * @param cfg the configuration
   * @param out receives the runner on success (its previous runner is
   *            destroyed); left as it was on error
   * @return 0 or the code of hmb_runner_create()
   */
  static int try_create(hmb_pool_t *p, const hmb_runner_config_t &cfg,
                        runner &out) noexcept {
    hmb_runner_t *r = nullptr;
    int rc = hmb_runner_create(p, &cfg, &r);
    if (rc == HMB_OK) {
      out = adopt(r);
    }
    return rc;
  }
  /**
   * Take over a handle the caller owns.
   * @param r the runner (from hmb_runner_create()); NULL gives an empty
   *          owner
   * @return the owner of `r`, which destroys it (hmb_runner_destroy())
   */
  static runner adopt(hmb_runner_t *r) noexcept {
    runner o;
    o.r_ = r;
    return o;
  }

  /**
   * The handle, for the C API.
   * @return the handle, still owned by this object; NULL when empty
   */
  hmb_runner_t *get() const noexcept {
    return r_;
  }
  /**
   * Give up ownership without destroying the runner.
   * @return the handle, now the caller's to destroy with
   *         hmb_runner_destroy(); NULL when empty. The owner becomes empty.
   */
  hmb_runner_t *release() noexcept {
    return std::exchange(r_, nullptr);
  }
  /** Destroy now (hmb_runner_destroy()); the owner becomes empty. */
  void destroy() noexcept {
    if (r_ != nullptr) {
      hmb_runner_destroy(std::exchange(r_, nullptr));
    }
  }

private:
  hmb_runner_t *r_ = nullptr;
};

/**
 * A non-owning, copyable view of a runner: what task bodies receive and
 * what functions that only use a runner take. It must not outlive the
 * runner's handle.
 * @par Thread-safety
 * As hmb/runner.h.
 */
class runner_ref : public runner_ops<runner_ref> {
public:
  /** An empty view. */
  runner_ref() noexcept = default;
  /**
   * A view of a C handle.
   * @param r the runner viewed, not owned; NULL gives an empty view
   */
  runner_ref(hmb_runner_t *r) noexcept : r_(r) {}
  /**
   * A view of an owned runner.
   * @param r the owner; the view keeps its handle (not the owner), so it
   *          stays valid across a move of `r` until the handle is
   *          destroyed. An empty owner gives an empty view.
   */
  runner_ref(const runner &r) noexcept : r_(r.get()) {}
  /**
   * The handle viewed.
   * @return the handle (not owned by the view); NULL when empty
   */
  hmb_runner_t *get() const noexcept {
    return r_;
  }

private:
  hmb_runner_t *r_ = nullptr;
};

/**
 * The runner bound to the calling thread (hmb_runner_bound()), as a view;
 * empty when none is bound.
 * @return the view; empty when the calling thread has no runner bound
 *         (see hmb::bind_scope)
 * @par Thread-safety
 * Reads only the calling thread's binding.
 */
inline runner_ref bound_runner() noexcept {
  return runner_ref(hmb_runner_bound());
}

/**
 * Binds a runner to the calling thread for a scope (hmb_runner_bind()), so
 * that hmb_bound_allocator() (and a default-constructed hmb::allocator or
 * hmb::memory_resource) charges it; the destructor restores the binding
 * that was in force before. Scopes nest; destroy them on the thread that
 * made them, in reverse order (which automatic variables do). The binding
 * holds no reference: the runner must outlive the scope.
 * @par Thread-safety
 * Affects only the calling thread.
 */
class bind_scope {
public:
  /**
   * Bind `r` to the calling thread until the scope ends.
   * @param r the runner to bind; it must outlive the scope. An empty view
   *          unbinds for the scope.
   */
  explicit bind_scope(runner_ref r) noexcept
      : prev_(hmb_runner_bind(r.get())) {}
  bind_scope(const bind_scope &) = delete;
  bind_scope &operator=(const bind_scope &) = delete;
  /** Restore the previous binding. */
  ~bind_scope() {
    (void)hmb_runner_bind(prev_);
  }
  /**
   * The binding this scope replaced.
   * @return a view of the runner bound before this scope, which the
   *         destructor binds again; empty if none was
   */
  runner_ref previous() const noexcept {
    return runner_ref(prev_);
  }

private:
  hmb_runner_t *prev_;
};

// ---------------------------------------------------------------------------
// Standard allocator and memory resource
// ---------------------------------------------------------------------------

/**
 * A standard allocator (rebindable; for std::vector, std::basic_string,
 * node containers) over any hmb allocator, through the pointer API
 * (hmb_ptr_alloc() with alignof(T), hmb_ptr_free()).
 *
 * - A default-constructed one uses hmb_bound_allocator(HMB_UNBOUND_DEFAULT):
 *   each allocation charges the runner bound to the allocating thread
 *   (see hmb::bind_scope), or no budget when none is.
 * - Two allocators compare equal when they use the same hmb allocator (the
 *   flags are not compared: any hmb pointer can be freed by any of them).
 * - It propagates on move assignment and swap (a container keeps charging
 *   the runner it was built for), not on copy assignment.
 * - allocate() throws hmb::alloc_error (a std::bad_alloc) on any failure,
 *   std::bad_array_new_length when n * sizeof(T) overflows.
 * - Frees need no runner: memory may be freed after its runner's handle is
 *   destroyed. Allocating through a runner's allocator after destroy is
 *   not allowed (the vtable is gone).
 * @tparam T the element type
 * @par Thread-safety
 * As hmb_ptr_alloc() / hmb_ptr_free(): thread-safe.
 */
template <class T> class allocator {
public:
  /** The element type. */
  using value_type = T;
  /** Containers keep the allocator they were built with when moved into. */
  using propagate_on_container_move_assignment = std::true_type;
  /** Swapped with the contents. */
  using propagate_on_container_swap = std::true_type;
  /** A copy-assigned container keeps its own allocator. */
  using propagate_on_container_copy_assignment = std::false_type;
  /** Two allocators may differ. */
  using is_always_equal = std::false_type;

  /** The thread-bound allocator (see the class comment). */
  allocator() noexcept
      : a_(hmb_bound_allocator(HMB_UNBOUND_DEFAULT)), flags_(0) {}
  /**
   * Over any hmb allocator.
   * @param a     the hmb allocator (a runner's, hmb_default_allocator(),
   *              hmb_bound_allocator() or the application's own); it must
   *              stay valid while allocations are made through it. NULL
   *              fails every allocation with #HMB_EINVAL.
   * @param flags the flags of every allocation (#HMB_ALLOC_PINNED or 0)
   */
  explicit allocator(const hmb_allocator_t *a, unsigned flags = 0) noexcept
      : a_(a), flags_(flags) {}
  /**
   * Over a runner's allocator; the runner's handle must outlive the
   * allocations (frees need no runner).
   * @param r     the runner charged; its allocator() is taken now (an
   *              empty view gives a NULL one, which fails every
   *              allocation)
   * @param flags the flags of every allocation (#HMB_ALLOC_PINNED or 0)
   */
  explicit allocator(runner_ref r, unsigned flags = 0) noexcept
      : a_(r.allocator()), flags_(flags) {}
  /**
   * Rebinding copy: the same hmb allocator and flags for another type.
   * @tparam U the element type of `o`
   * @param o  the allocator copied
   */
  template <class U>
  allocator(const allocator<U> &o) noexcept
      : a_(o.c_allocator()), flags_(o.flags()) {}

  /**
   * Allocate room for `n` objects of T (hmb_ptr_alloc()), charged to the
   * allocator's runner if it has one.
   * @param n the number of objects (0 is valid and charges nothing)
   * @return the storage, uninitialised, aligned to at least alignof(T) and
   *         16; free it with deallocate() of any hmb::allocator
   * @throw std::bad_array_new_length when `n` is above max_size();
   *        hmb::alloc_error with the allocator's code otherwise
   *        (#HMB_EINVAL for a NULL allocator or an alignof(T) above
   *        #HMB_MAX_ALIGN)
   */
  T *allocate(std::size_t n) {
    if (n > max_size()) {
#if HMB_HPP_EXCEPTIONS
      throw std::bad_array_new_length();
#else
      detail::raise_alloc(HMB_ETOOBIG, "hmb::allocator::allocate");
#endif
    }
    void *p = nullptr;
    int rc = hmb_ptr_alloc(a_, n * sizeof(T), align(), flags_, &p);
    if (rc != HMB_OK) {
      detail::raise_alloc(rc, "hmb_ptr_alloc");
    }
    return static_cast<T *>(p);
  }
  /**
   * Free what allocate() returned (hmb_ptr_free(), from any thread): the
   * memory and its budget go back when the block's last reference closes
   * (at once, unless it was retained through hmb_ptr_buffer()). The count
   * is not needed.
   * @param p storage from allocate() of any hmb::allocator; NULL does
   *          nothing
   */
  void deallocate(T *p, std::size_t) noexcept {
    (void)hmb_ptr_free(p);
  }
  /**
   * The most objects one allocation may hold.
   * @return max_alloc / sizeof(T)
   */
  std::size_t max_size() const noexcept {
    return max_alloc / sizeof(T);
  }

  /**
   * The hmb allocator used.
   * @return the vtable every allocation goes through (what equality
   *         compares); may be NULL
   */
  const hmb_allocator_t *c_allocator() const noexcept {
    return a_;
  }
  /**
   * The allocation flags used.
   * @return the flags passed with every allocation (#HMB_ALLOC_PINNED or
   *         0)
   */
  unsigned flags() const noexcept {
    return flags_;
  }

private:
  static constexpr std::size_t align() noexcept {
    // 0 asks for the pointer API's default of 16.
    return alignof(T) > 16 ? alignof(T) : 0;
  }
  const hmb_allocator_t *a_;
  unsigned flags_;
};

/**
 * Equal when both use the same hmb allocator: memory from one may be
 * freed by the other.
 * @tparam T the element type of `a`
 * @tparam U the element type of `b`
 * @param a  one allocator
 * @param b  the other
 * @return true when their c_allocator() are the same (the flags are not
 *         compared)
 */
template <class T, class U>
bool operator==(const allocator<T> &a, const allocator<U> &b) noexcept {
  return a.c_allocator() == b.c_allocator();
}
/**
 * Not equal when they use different hmb allocators.
 * @tparam T the element type of `a`
 * @tparam U the element type of `b`
 * @param a  one allocator
 * @param b  the other
 * @return `!(a == b)`
 */
template <class T, class U>
bool operator!=(const allocator<T> &a, const allocator<U> &b) noexcept {
  return !(a == b);
}

#if HMB_HPP_HAVE_PMR || defined(HMB_HPP_DOXYGEN)
/**
 * A std::pmr::memory_resource over any hmb allocator, through the pointer
 * API: do_allocate() is hmb_ptr_alloc() with the alignment as given (at
 * most #HMB_MAX_ALIGN), do_deallocate() is hmb_ptr_free().
 *
 * - do_allocate() throws hmb::alloc_error (a std::bad_alloc, as
 *   std::pmr::memory_resource requires) with the hmb code on any failure.
 * - is_equal() is true for the same object and, with RTTI, for another
 *   hmb::memory_resource over the same hmb allocator (memory from one may
 *   be freed by the other); false for every other resource.
 * - A default-constructed resource uses
 *   hmb_bound_allocator(HMB_UNBOUND_DEFAULT), like hmb::allocator.
 * - It holds no state but the allocator pointer: containers may free
 *   through it after the runner's handle is destroyed, and the resource
 *   must simply outlive the containers that point to it.
 * @par Thread-safety
 * Thread-safe (hmb_ptr_alloc() and hmb_ptr_free() are).
 */
class memory_resource : public std::pmr::memory_resource {
public:
  /** The thread-bound allocator (see hmb::allocator). */
  memory_resource() noexcept
      : a_(hmb_bound_allocator(HMB_UNBOUND_DEFAULT)), flags_(0) {}
  /**
   * Over any hmb allocator.
   * @param a     the hmb allocator (a runner's, hmb_default_allocator(),
   *              hmb_bound_allocator() or the application's own); it must
   *              stay valid while allocations are made through it. NULL
   *              fails every allocation with #HMB_EINVAL.
   * @param flags the flags of every allocation (#HMB_ALLOC_PINNED or 0)
   */
  explicit memory_resource(const hmb_allocator_t *a,
                           unsigned flags = 0) noexcept
      : a_(a), flags_(flags) {}
  /**
   * Over a runner's allocator; the runner's handle must outlive the
   * allocations (frees need no runner).
   * @param r     the runner charged; its allocator() is taken now (an
   *              empty view gives a NULL one, which fails every
   *              allocation)
   * @param flags the flags of every allocation (#HMB_ALLOC_PINNED or 0)
   */
  explicit memory_resource(runner_ref r, unsigned flags = 0) noexcept
      : a_(r.allocator()), flags_(flags) {}

  /**
   * The hmb allocator used.
   * @return the vtable every allocation goes through (what equality
   *         compares); may be NULL
   */
  const hmb_allocator_t *c_allocator() const noexcept {
    return a_;
  }
  /**
   * The allocation flags used.
   * @return the flags passed with every allocation (#HMB_ALLOC_PINNED or
   *         0)
   */
  unsigned flags() const noexcept {
    return flags_;
  }

protected:
  /**
   * hmb_ptr_alloc(), charged to the allocator's runner if it has one.
   * @param bytes     bytes (0 is valid and charges nothing)
   * @param alignment a power of two <= #HMB_MAX_ALIGN (0: 16)
   * @return the block
   * @throw hmb::alloc_error with the allocator's code (#HMB_EINVAL for a
   *        NULL allocator or a bad alignment)
   */
  void *do_allocate(std::size_t bytes, std::size_t alignment) override {
    void *p = nullptr;
    int rc = hmb_ptr_alloc(a_, bytes, alignment, flags_, &p);
    if (rc != HMB_OK) {
      detail::raise_alloc(rc, "hmb_ptr_alloc");
    }
    return p;
  }
  /**
   * hmb_ptr_free(), from any thread: the memory and its budget go back
   * when the block's last reference closes (at once, unless it was
   * retained through hmb_ptr_buffer()). The size and alignment are not
   * needed.
   * @param p a block from do_allocate() of any hmb::memory_resource (or
   *          hmb::allocator); NULL does nothing
   */
  void do_deallocate(void *p, std::size_t, std::size_t) override {
    (void)hmb_ptr_free(p);
  }
  /**
   * Whether memory from one resource may be freed by the other.
   * @param other the resource compared
   * @return true for this very object and, with RTTI, for an
   *         hmb::memory_resource over the same hmb allocator; false
   *         otherwise
   */
  bool
  do_is_equal(const std::pmr::memory_resource &other) const noexcept override {
    if (this == &other) {
      return true;
    }
#if HMB_HPP_RTTI
    const auto *o = dynamic_cast<const memory_resource *>(&other);
    return o != nullptr && o->a_ == a_;
#else
    return false;
#endif
  }

private:
  const hmb_allocator_t *a_;
  unsigned flags_;
};
#endif

// ---------------------------------------------------------------------------
// Executor and tasks
// ---------------------------------------------------------------------------

/**
 * Owner of one reference to an hmb_task_t (from executor::submit()); the
 * destructor releases it (the task itself goes on running). Valid after
 * its executor is destroyed.
 * @par Thread-safety
 * As hmb/executor.h: wait, cancel and done are thread-safe; never wait on
 * a task from its own body.
 */
class task {
public:
  /** An empty owner. */
  task() noexcept = default;
  task(const task &) = delete;
  task &operator=(const task &) = delete;
  /**
   * Take over `o`'s reference.
   * @param o the owner to take it from; `o` becomes empty
   */
  task(task &&o) noexcept : t_(std::exchange(o.t_, nullptr)) {}
  /**
   * Release the current reference (the task goes on), then take over
   * `o`'s. Assigning an owner to itself does nothing.
   * @param o the owner to take the reference from; `o` becomes empty
   * @return `*this`
   */
  task &operator=(task &&o) noexcept {
    if (this != &o) {
      reset();
      t_ = std::exchange(o.t_, nullptr);
    }
    return *this;
  }
  /** hmb_task_release(). */
  ~task() {
    reset();
  }

  /**
   * Take over a reference the caller owns.
   * @param t the task (from hmb_executor_submit()); NULL gives an empty
   *          owner
   * @return the owner of that reference, which releases it
   *         (hmb_task_release())
   */
  static task adopt(hmb_task_t *t) noexcept {
    task o;
    o.t_ = t;
    return o;
  }
  /**
   * The handle, for the C API.
   * @return the handle, still owned by this object; NULL when empty
   */
  hmb_task_t *get() const noexcept {
    return t_;
  }
  /** Whether this owns a reference. */
  explicit operator bool() const noexcept {
    return t_ != nullptr;
  }
  /**
   * Give up the reference without releasing it.
   * @return the handle, whose reference is now the caller's to drop with
   *         hmb_task_release(); NULL when empty. The owner becomes empty.
   */
  hmb_task_t *release() noexcept {
    return std::exchange(t_, nullptr);
  }

  /**
   * hmb_task_wait() without throwing; never from the task's own body or
   * completion.
   * @param t      longest wait (no_wait: just look; wait_forever: no
   *               limit)
   * @param status receives the task's status when it has finished (as
   *               wait() returns it); may be NULL
   * @return 0 when it has finished (its completion has returned),
   *         #HMB_ETIMEDOUT, #HMB_EINVAL (empty, or a timeout below
   *         wait_forever)
   */
  int try_wait(timeout t, int *status) noexcept {
    return hmb_task_wait(t_, detail::to_ns(t), status);
  }
  /**
   * Wait for the task to finish.
   * @return its status: 0, the body's nonzero return, #HMB_ECANCELED,
   *         #HMB_EFAILED (the body threw), or an executor error
   * @throw hmb::error HMB_EINVAL (empty)
   */
  int wait() {
    int status = 0;
    detail::check(try_wait(wait_forever, &status), "hmb_task_wait");
    return status;
  }
  /**
   * Wait at most `t` for the task to finish.
   * @param t longest wait (no_wait: just look; wait_forever: no limit)
   * @return the status (as wait()), or nothing if it has not finished
   * @throw hmb::error HMB_EINVAL (empty, or a timeout below wait_forever)
   */
  std::optional<int> wait_for(timeout t) {
    int status = 0;
    int rc = try_wait(t, &status);
    if (rc == HMB_ETIMEDOUT) {
      return std::nullopt;
    }
    detail::check(rc, "hmb_task_wait");
    return status;
  }
  /**
   * Whether it has finished (hmb_task_done()). Lock-free.
   * @return true once its completion has returned; false before and when
   *         empty
   */
  bool done() const noexcept {
    return hmb_task_done(t_) != 0;
  }
  /**
   * Cancel (hmb_task_cancel()).
   * @return true when the task will end with #HMB_ECANCELED, false when
   *         it had already finished (#HMB_ESTATE)
   * @throw hmb::error HMB_EINVAL (empty)
   */
  bool cancel() {
    int rc = hmb_task_cancel(t_);
    if (rc == HMB_ESTATE) {
      return false;
    }
    detail::check(rc, "hmb_task_cancel");
    return true;
  }

private:
  void reset() noexcept {
    if (t_ != nullptr) {
      hmb_task_release(std::exchange(t_, nullptr));
    }
  }
  hmb_task_t *t_ = nullptr;
};

/**
 * Builder over hmb_task_desc_t for executor::submit() (the body and the
 * completion are given to submit()).
 * @par Thread-safety
 * A plain value.
 */
class task_options {
public:
  /** All defaults (estimate 0). */
  task_options() noexcept = default;
  /**
   * All defaults and an estimate.
   * @param bytes the estimate, as estimate()
   */
  explicit task_options(std::size_t bytes) noexcept : estimate_(bytes) {}
  /**
   * The budget acquired before the body runs.
   * @param bytes the estimate (0 is valid); above the pool's max_request
   *              submit() fails with #HMB_ETOOBIG
   * @return `*this`
   */
  task_options &estimate(std::size_t bytes) noexcept {
    estimate_ = bytes;
    return *this;
  }
  /**
   * The task's priority in the queue.
   * @param p the priority: higher runs first, equal ones in submission
   *          order (default 0)
   * @return `*this`
   */
  task_options &priority(int p) noexcept {
    priority_ = p;
    return *this;
  }
  /**
   * The runner's borrow timeout (see runner_options::borrow_timeout()).
   * @param t the longest wait of one borrow or grow; 0 (the default) or
   *          wait_forever: no limit
   * @return `*this`
   */
  task_options &borrow_timeout(timeout t) noexcept {
    borrow_timeout_ = t;
    return *this;
  }
  /**
   * Staged admission: the body grows to its real need itself, with
   * runner_ops::set_need() and runner_ops::grow() (served before new
   * admissions).
   * @param initial the budget acquired before the body runs (0 is valid);
   *                above the pool's max_request submit() fails with
   *                #HMB_ETOOBIG
   * @return `*this`
   */
  task_options &staged(std::size_t initial) noexcept {
    staged_ = true;
    initial_ = initial;
    return *this;
  }
  /**
   * The runner's name, for diagnostics.
   * @param n the name (copied into the runner at most 31 bytes); empty:
   *          none
   * @return `*this`
   */
  task_options &name(std::string n) {
    name_ = std::move(n);
    return *this;
  }

private:
  friend class executor;
  std::size_t estimate_ = 0;
  int priority_ = 0;
  timeout borrow_timeout_{0};
  bool staged_ = false;
  std::size_t initial_ = 0;
  std::string name_;
};

/**
 * Builder over hmb_executor_config_t.
 * @par Thread-safety
 * A plain value.
 */
class executor_options {
public:
  /** All defaults. */
  executor_options() noexcept {
    hmb_executor_config_init(&cfg_);
  }
  /**
   * Worker threads.
   * @param n the number of workers, at most 4096; 0: 20 (a negative
   *          number or more than 4096 makes the creation fail with
   *          #HMB_EINVAL)
   * @return `*this`
   */
  executor_options &threads(int n) noexcept {
    cfg_.threads = n;
    return *this;
  }
  /**
   * Longest wait of one admission attempt, after which the task goes back
   * in line at its place (never failed for lack of budget).
   * @param t the wait; 0: 30 s; wait_forever: no limit (no requeues)
   * @return `*this`
   */
  executor_options &acquire_timeout(timeout t) noexcept {
    cfg_.acquire_timeout_ns = detail::to_ns(t);
    return *this;
  }
  /**
   * Name for diagnostics.
   * @param n the name (copied at creation, at most 31 bytes); empty: none
   * @return `*this`
   */
  executor_options &name(std::string n) {
    name_ = std::move(n);
    return *this;
  }
  /**
   * The C configuration.
   * @return a copy whose name points into these options: valid while they
   *         live unchanged
   */
  hmb_executor_config_t raw() const noexcept {
    hmb_executor_config_t c = cfg_;
    c.name = name_.empty() ? nullptr : name_.c_str();
    return c;
  }

private:
  hmb_executor_config_t cfg_;
  std::string name_;
};

namespace detail {

/** A submitted body and completion; freed by the completion callback. */
template <class Body, class Done> struct task_closure {
  Body body;
  Done done;
  std::string name;

  static int run(void *user, hmb_runner_t *r) noexcept {
    auto *self = static_cast<task_closure *>(user);
#if HMB_HPP_EXCEPTIONS
    try {
      return self->invoke(runner_ref(r));
    } catch (const failure &f) {
      return f.code() != 0 ? f.code() : HMB_EFAILED;
    } catch (...) {
      return HMB_EFAILED;
    }
#else
    return self->invoke(runner_ref(r));
#endif
  }

  static void finished(void *user, hmb_task_t *, int status) noexcept {
    std::unique_ptr<task_closure> self(static_cast<task_closure *>(user));
#if HMB_HPP_EXCEPTIONS
    try {
      self->done(status);
    } catch (...) {
      // Nothing can carry it through the C library.
    }
#else
    self->done(status);
#endif
    // `self` (and what the body captured) is destroyed here.
  }

  int invoke(runner_ref r) {
    using result = std::invoke_result_t<Body &, runner_ref>;
    if constexpr (std::is_void_v<result>) {
      std::invoke(body, r);
      return 0;
    } else {
      return static_cast<int>(std::invoke(body, r));
    }
  }
};

/** The completion of a submit() without one. */
struct no_done {
  void operator()(int) const noexcept {}
};

} // namespace detail

/**
 * Owner of an hmb_executor_t. Destroy it before its pool (declare the pool
 * first); the destructor cancels what is queued and running and waits
 * (hmb_executor_destroy()), call shutdown(HMB_SHUTDOWN_DRAIN) first to run
 * the queue instead.
 * @par Thread-safety
 * As hmb/executor.h: submit, shutdown and stats are thread-safe (submit
 * also from inside tasks); destruction must not race with other calls.
 */
class executor {
public:
  /** An empty owner. */
  executor() noexcept = default;
  /**
   * Create an executor and start its workers (hmb_executor_create()).
   * @param p the pool its tasks take budget from; must outlive the
   *          executor
   * @param o the options; not used after the call
   * @throw hmb::error HMB_EINVAL (NULL pool, bad options), HMB_ENOTSUP,
   *        HMB_ENOMEM (also when threads cannot start; none is left
   *        running)
   */
  explicit executor(hmb_pool_t *p,
                    const executor_options &o = executor_options()) {
    hmb_executor_config_t cfg = o.raw();
    detail::check(hmb_executor_create(p, &cfg, &e_), "hmb_executor_create");
  }
  /**
   * Create an executor over an owned pool and start its workers.
   * @param p the pool its tasks take budget from; must outlive the
   *          executor
   * @param o the options; not used after the call
   * @throw hmb::error as executor(hmb_pool_t *, const executor_options &)
   *        (HMB_EINVAL for an empty pool)
   */
  explicit executor(const pool &p,
                    const executor_options &o = executor_options())
      : executor(p.get(), o) {}

  executor(const executor &) = delete;
  executor &operator=(const executor &) = delete;
  /**
   * Take over `o`'s executor.
   * @param o the owner to take it from; `o` becomes empty
   */
  executor(executor &&o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  /**
   * Destroy the current executor (see ~executor(): its tasks are
   * cancelled and waited for), then take over `o`'s. Assigning an owner
   * to itself does nothing.
   * @param o the owner to take the executor from; `o` becomes empty
   * @return `*this`
   */
  executor &operator=(executor &&o) noexcept {
    if (this != &o) {
      destroy();
      e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
  }
  /** hmb_executor_destroy(). */
  ~executor() {
    destroy();
  }

  /**
   * The handle, for the C API.
   * @return the handle, still owned by this object; NULL when empty
   */
  hmb_executor_t *get() const noexcept {
    return e_;
  }
  /** Whether this owns an executor. */
  explicit operator bool() const noexcept {
    return e_ != nullptr;
  }
  /** Destroy now (see ~executor()); the owner becomes empty. */
  void destroy() noexcept {
    if (e_ != nullptr) {
      hmb_executor_destroy(std::exchange(e_, nullptr));
    }
  }

  /**
   * Queue a task whose body is `body(hmb::runner_ref)`, returning void or
   * an int status (0: success). The body runs on a worker with a RUNNING
   * runner that is also bound to the worker thread (so a
   * default-constructed hmb::allocator charges it). An exception escaping
   * the body becomes the task's status: an hmb::failure's code, or
   * #HMB_EFAILED for anything else. `done(int status)` runs exactly once
   * when the task ends, then the body and `done` are destroyed (on a
   * worker, or on the thread that cancels a queued task).
   * @tparam Body a callable as `body(hmb::runner_ref)`
   * @tparam Done a callable as `done(int)`
   * @param body the task body, moved or copied into the task
   * @param done the completion, moved or copied into the task; called on
   *             a worker (or the cancelling thread) with the status that
   *             task::wait() returns; exceptions it throws are dropped
   * @param o    the estimate, priority, borrow timeout, staging and name
   * @return the owner of one reference to the task: releasing it does not
   *         cancel the task
   * @throw hmb::error HMB_EINVAL, HMB_ETOOBIG, HMB_ESHUTDOWN, HMB_ENOMEM
   *        (then the body never runs and `done` is never called)
   */
  template <
      class Body, class Done,
      std::enable_if_t<std::is_invocable_v<std::decay_t<Done> &, int>, int> = 0>
  task submit(Body &&body, Done &&done,
              const task_options &o = task_options()) {
    using closure =
        detail::task_closure<std::decay_t<Body>, std::decay_t<Done>>;
    static_assert(std::is_invocable_v<std::decay_t<Body> &, runner_ref>,
                  "a task body is called as body(hmb::runner_ref)");
    auto c = std::unique_ptr<closure>(new closure{
        std::forward<Body>(body), std::forward<Done>(done), o.name_});
    hmb_task_desc_t d;
    hmb_task_desc_init(&d);
    d.estimate = o.estimate_;
    d.priority = o.priority_;
    d.run = &closure::run;
    d.user = c.get();
    d.done = &closure::finished;
    d.name = c->name.empty() ? nullptr : c->name.c_str();
    d.borrow_timeout_ns = detail::to_ns(o.borrow_timeout_);
    d.staged = o.staged_ ? 1 : 0;
    d.initial = o.initial_;
    hmb_task_t *t = nullptr;
    detail::check(hmb_executor_submit(e_, &d, &t), "hmb_executor_submit");
    c.release(); // owned by the task now: freed by closure::finished
    return task::adopt(t);
  }

  /**
   * Queue a task without a completion (see the other overload).
   * @tparam Body a callable as `body(hmb::runner_ref)`, returning void or
   *              an int status
   * @param body the task body, moved or copied into the task
   * @param o    the estimate, priority, borrow timeout, staging and name
   * @return the owner of one reference to the task
   * @throw hmb::error as the other overload (then the body never runs)
   */
  template <class Body>
  task submit(Body &&body, const task_options &o = task_options()) {
    return submit(std::forward<Body>(body), detail::no_done(), o);
  }

  /**
   * Stop accepting tasks; run (#HMB_SHUTDOWN_DRAIN) or cancel
   * (#HMB_SHUTDOWN_CANCEL) the queue; join the workers. Idempotent; a
   * cancel after a drain cancels what the drain has not run yet.
   * @param mode #HMB_SHUTDOWN_DRAIN (run every queued task, then stop) or
   *             #HMB_SHUTDOWN_CANCEL (cancel queued and running tasks)
   * @throw hmb::error HMB_EINVAL (empty, an unknown mode), HMB_ESTATE
   *        (from one of its own tasks or completions)
   */
  void shutdown(int mode = HMB_SHUTDOWN_DRAIN) {
    detail::check(hmb_executor_shutdown(e_, mode), "hmb_executor_shutdown");
  }
  /**
   * Counters (hmb_executor_stats()).
   * @return a snapshot, read together under the executor's lock
   * @throw hmb::error HMB_EINVAL (empty)
   */
  hmb_executor_stats_t stats() const {
    hmb_executor_stats_t s{};
    detail::check(hmb_executor_stats(e_, &s), "hmb_executor_stats");
    return s;
  }

private:
  hmb_executor_t *e_ = nullptr;
};

} // namespace hmb

#endif // HMB_HPP
