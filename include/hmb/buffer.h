/**
 * @file hmb/buffer.h
 * @brief Refcounted host buffers with slices and close events.
 *
 * A buffer is a span of host memory (pageable or pinned) with a reference
 * count. It starts with one reference; hmb_buffer_retain() adds one and
 * hmb_buffer_close() drops one. The close that drops the last reference
 * returns the memory to its backend and then, in this order:
 *   1. gives the bytes back to the runner that allocated the buffer (if any),
 *      so its budget is released at exactly this moment;
 *   2. calls the buffer's close-event handler with a count of 0;
 *   3. frees the buffer handle itself.
 * Every earlier close calls the handler with the new (positive) count.
 *
 * A slice is a buffer of its own (own count, own handler) that views a range
 * of another buffer and holds one reference on it until the slice's last
 * close. The parent's memory therefore lives until its own references and
 * all slices are closed; the budget comes back at that very close.
 *
 * The runner's accounting does not use the handler slot: an application
 * replacing the handler can never break budget accounting.
 *
 * A buffer of size 0 is valid: its data is a distinct non-NULL pointer that
 * must not be read or written, and it charges no budget.
 */
#ifndef HMB_BUFFER_H
#define HMB_BUFFER_H

#include <stddef.h>

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque buffer handle. */
typedef struct hmb_buffer hmb_buffer_t;

/**
 * Close-event handler: called on every close of `buf` with the reference
 * count after that close. When `refs` is 0, the memory has already been
 * returned (hmb_buffer_data() is NULL) and the handle is freed right after
 * the handler returns, so the handler must not keep `buf`.
 * When `refs` > 0 other threads may close the remaining references at the
 * same time, so the handler must not dereference `buf` unless it knows it
 * still holds a reference; use it as an identity.
 * Called on the thread that closed the buffer, never under a library lock.
 * It may allocate, retain or close other buffers, and call the previous
 * handler to chain (see hmb_buffer_handler_invoke()).
 * @param user the handler's user pointer
 * @param buf  the buffer closed (an identity; see above)
 * @param refs the reference count after this close
 */
typedef void (*hmb_buffer_event_fn)(void *user, hmb_buffer_t *buf, long refs);

/** A handler and its user pointer. fn == NULL means "no handler". */
typedef struct hmb_buffer_handler {
  /** The function called on each close; NULL: no handler. */
  hmb_buffer_event_fn fn;
  /** Passed to fn as its first argument; may be NULL. */
  void *user;
} hmb_buffer_handler_t;

/**
 * Start of the buffer's bytes.
 * @param buf the buffer
 * @return its data; NULL for NULL, for a reservation, and once the last
 *         reference is closed
 * @par Thread-safety
 * Thread-safe while the caller holds a reference.
 */
HMB_API void *hmb_buffer_data(const hmb_buffer_t *buf);

/**
 * Length in bytes.
 * @param buf the buffer
 * @return its size; 0 for NULL
 * @par Thread-safety
 * Thread-safe while the caller holds a reference.
 */
HMB_API size_t hmb_buffer_size(const hmb_buffer_t *buf);

/**
 * Whether the bytes are CUDA pinned (page-locked) host memory. A slice
 * reports its parent's kind.
 * @param buf the buffer
 * @return 1 if pinned, 0 if pageable (or NULL)
 * @par Thread-safety
 * Thread-safe while referenced.
 */
HMB_API int hmb_buffer_is_pinned(const hmb_buffer_t *buf);

/**
 * Current reference count (a snapshot: other threads may change it).
 * @param buf the buffer
 * @return the count; 0 for NULL
 * @par Thread-safety
 * Thread-safe while the caller holds a reference.
 */
HMB_API long hmb_buffer_refcount(const hmb_buffer_t *buf);

/**
 * Add a reference.
 * @param buf the buffer
 * @return 0, #HMB_EINVAL for NULL, #HMB_ESTATE if the buffer has no
 *         reference left (a retain after the last close is a use-after-free
 *         bug: it is detected while the handle is still alive, e.g. from a
 *         handler)
 * @par Thread-safety
 * Thread-safe; the caller must already hold a reference.
 */
HMB_API int hmb_buffer_retain(hmb_buffer_t *buf);

/**
 * Drop a reference. The last close frees the memory, releases its budget and
 * fires the handler (see the file comment). Closing more times than retained
 * is a caller bug: when detectable (the handle is still alive, e.g. a close
 * from inside the refs == 0 handler) it returns #HMB_ESTATE, changes nothing
 * and logs an error (process-wide sink, stderr by default); once the handle
 * is freed AddressSanitizer reports the use-after-free, and debug builds
 * abort on a pointer whose handle check fails.
 * @param buf the buffer
 * @return 0, #HMB_ESTATE (over-close), #HMB_EINVAL (NULL)
 * @par Thread-safety
 * Thread-safe: any thread holding a reference may close it.
 */
HMB_API int hmb_buffer_close(hmb_buffer_t *buf);

/**
 * Create a slice viewing [offset, offset + length) of `buf`. The slice starts
 * with one reference, has no handler, and retains `buf` until its last close.
 * @param buf    the buffer viewed
 * @param offset first byte of the view
 * @param length bytes viewed (> 0)
 * @param out    receives the slice; NULL on error
 * @return 0, #HMB_EINVAL (NULL arguments, length 0, or a range outside the
 *         buffer, including offset + length overflowing), #HMB_ENOMEM (no
 *         memory for the handle), #HMB_ESTATE (`buf` already fully closed).
 *         On error `buf` is unchanged.
 * @par Thread-safety
 * Thread-safe; the caller must hold a reference to `buf`.
 */
HMB_API int hmb_buffer_slice(hmb_buffer_t *buf, size_t offset, size_t length,
                             hmb_buffer_t **out);

/**
 * The buffer a slice views.
 * @param buf the buffer
 * @return the parent, or NULL for a buffer that is not a slice
 * @par Thread-safety
 * Thread-safe while referenced.
 */
HMB_API hmb_buffer_t *hmb_buffer_parent(const hmb_buffer_t *buf);

/**
 * Install a close-event handler and return the one it replaces. To chain,
 * keep `previous` and call it from the new handler with
 * hmb_buffer_handler_invoke().
 * @param buf      the buffer
 * @param handler  the new handler; NULL (or fn == NULL) removes it
 * @param previous receives the handler replaced; may be NULL
 * @return 0 or #HMB_EINVAL (NULL `buf`)
 * @par Thread-safety
 * Not synchronised with concurrent closes of the same buffer: install
 * handlers before the buffer is shared between threads (or while the caller
 * otherwise knows no other thread closes it).
 */
HMB_API int hmb_buffer_set_handler(hmb_buffer_t *buf,
                                   const hmb_buffer_handler_t *handler,
                                   hmb_buffer_handler_t *previous);

/**
 * Call `handler` if it is non-NULL and has a function; for chaining from
 * inside a handler.
 * @param handler the handler to call; may be NULL
 * @param buf     passed on
 * @param refs    passed on
 * @par Thread-safety
 * Thread-safe (it only calls the function).
 */
HMB_API void hmb_buffer_handler_invoke(const hmb_buffer_handler_t *handler,
                                       hmb_buffer_t *buf, long refs);

#ifdef __cplusplus
}
#endif

#endif /* HMB_BUFFER_H */
