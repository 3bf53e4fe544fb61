/*
 * cuda.c - the cuda.h contract over the CUDA runtime, loaded at run time.
 * This is the only file of the library that calls CUDA.
 *
 * The library has no link-time dependency on libcudart and needs no CUDA
 * header to build: the first probe (a pool created with pinned memory, or a
 * pinned-memory check) opens the runtime with dlopen, trying the versioned
 * names first (libcudart.so.13, .12, .11, then the development link
 * libcudart.so) unless the environment variable HMB_CUDART names the one to
 * use (a file name or a path; ignored in set-user-ID programs). The few
 * functions needed are resolved with dlsym into the table below, whose
 * prototypes are declared here: CUDA runtime calls take plain pointers and
 * flags and return an int error code (cudaError_t, 0 on success).
 * bench/bench_gpu.c checks these declarations against the toolkit's headers
 * wherever the toolkit is installed.
 *
 * The probe runs once per process (pthread_once): it loads the runtime,
 * asks for the device count and makes one small pinned allocation, which
 * also creates the runtime's context, so a machine without the runtime,
 * without a driver or without a GPU is recognised here, once, and every
 * later pinned request falls back to pageable memory without calling CUDA
 * again. The reason is formatted into static storage on that single call and
 * never changes afterwards. The runtime is never unloaded: its state lives
 * until the process exits, as it would if it were linked.
 *
 * Regions are allocated "portable" so that they count as pinned for every
 * device and context of the process.
 */
#define _GNU_SOURCE /* secure_getenv */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmb/errors.h"
#include "platform/cuda.h"
#include "platform/os.h"
#include "platform/util.h"

/* ---- what we use of the CUDA runtime API ---------------------------------
 * Values from the runtime's documented API (driver_types.h); they are part
 * of its ABI and have not changed since CUDA 4. */
enum {
  HMB__CUDA_SUCCESS = 0,
  HMB__CUDA_HOST_ALLOC_PORTABLE = 1,    /* cudaHostAllocPortable */
  HMB__CUDA_HOST_REGISTER_PORTABLE = 1, /* cudaHostRegisterPortable */
  HMB__CUDA_MEMORY_TYPE_HOST = 1,       /* cudaMemoryTypeHost */
  HMB__CUDA_MIN_RUNTIME = 11000         /* 11.0: the layout below */
};

/*
 * struct cudaPointerAttributes as of CUDA 11 (type, device, two pointers;
 * CUDA 13 appends reserved words). The runtime writes its own, possibly
 * longer, version: the spare words leave room for that.
 */
typedef struct hmb__cuda_ptr_attrs {
  int type; /* enum cudaMemoryType */
  int device;
  void *device_pointer;
  void *host_pointer;
  long spare[32];
} hmb__cuda_ptr_attrs_t;

/* X(return type, function, parameters): every symbol resolved by dlsym. */
#define HMB__CUDART_FUNCS(X)                                                   \
  X(int, cudaRuntimeGetVersion, (int *version))                                \
  X(int, cudaDriverGetVersion, (int *version))                                 \
  X(int, cudaGetDeviceCount, (int *count))                                     \
  X(int, cudaHostAlloc, (void **ptr, size_t size, unsigned int flags))         \
  X(int, cudaFreeHost, (void *ptr))                                            \
  X(int, cudaHostRegister, (void *ptr, size_t size, unsigned int flags))       \
  X(int, cudaHostUnregister, (void *ptr))                                      \
  X(int, cudaPointerGetAttributes,                                             \
    (hmb__cuda_ptr_attrs_t * attrs, const void *ptr))                          \
  X(const char *, cudaGetErrorString, (int error))                             \
  X(const char *, cudaGetErrorName, (int error))                               \
  X(int, cudaGetLastError, (void))

/* The resolved functions; written once, inside the probe's pthread_once. */
static struct hmb__cudart {
#define HMB__CUDART_MEMBER(ret, name, params) ret(*name) params;
  HMB__CUDART_FUNCS(HMB__CUDART_MEMBER)
#undef HMB__CUDART_MEMBER
} hmb__rt;

/* dlsym returns an object pointer; it is copied into a function pointer
 * byte for byte, the way POSIX prescribes for dlsym. */
_Static_assert(sizeof(void *) == sizeof(int (*)(void)),
               "function and object pointers differ in size");

/* snprintf for reasons: a text longer than its buffer is cut at the end
 * (never overflows), which is all a reason needs. */
static void hmb__say(char *buf, size_t len, const char *fmt, ...)
    HMB__PRINTF(3, 4);
static void hmb__say(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  (void)n;
}

static pthread_once_t hmb__probe_once = PTHREAD_ONCE_INIT;
static int hmb__probe_ok;
static char hmb__probe_reason[512];
static char hmb__runtime_name[512];
/* What hmb__cuda_runtime() returns: "" until the probe has finished, then
 * hmb__runtime_name (published with release order, read with acquire). */
static _Atomic(const char *) hmb__runtime_text = "";

/* Names tried in order when HMB_CUDART is not set. */
static const char *const hmb__cudart_names[] = {
    "libcudart.so.13", "libcudart.so.12", "libcudart.so.11", "libcudart.so"};
enum { HMB__CUDART_NNAMES = 4 };

/* Resolve every function of HMB__CUDART_FUNCS in `h`; 0, or -1 with the
 * missing symbol named in why[]. */
static int hmb__cudart_resolve(void *h, const char *lib, char *why,
                               size_t len) {
  struct hmb__cudart rt;
#define HMB__CUDART_RESOLVE(ret, name, params)                                 \
  {                                                                            \
    dlerror();                                                                 \
    void *p = dlsym(h, #name);                                                 \
    if (!p) {                                                                  \
      const char *e = dlerror();                                               \
      hmb__say(why, len, "%s has no %s (%s)", lib, #name,                      \
               e ? e : "symbol is NULL");                                      \
      return -1;                                                               \
    }                                                                          \
    memcpy(&rt.name, &p, sizeof p);                                            \
  }
  HMB__CUDART_FUNCS(HMB__CUDART_RESOLVE)
#undef HMB__CUDART_RESOLVE
  hmb__rt = rt;
  return 0;
}

/* "13.0" from the runtime's 13000. */
static void hmb__cuda_version_text(int v, char *buf, size_t len) {
  hmb__say(buf, len, "%d.%d", v / 1000, (v % 1000) / 10);
}

/*
 * Open the runtime: 0 with hmb__rt filled and hmb__runtime_name set, or -1
 * with the reason in hmb__probe_reason (and in hmb__runtime_name).
 */
static int hmb__cudart_load(void) {
  const char *names[HMB__CUDART_NNAMES];
  int n = 0;
#if defined(__GLIBC__)
  /* Ignored in set-user-ID programs, like LD_LIBRARY_PATH. */
  const char *env = secure_getenv("HMB_CUDART");
#else
  const char *env = getenv("HMB_CUDART");
#endif
  if (env && *env) {
    names[n++] = env;
  } else {
    for (int i = 0; i < HMB__CUDART_NNAMES; i++)
      names[n++] = hmb__cudart_names[i];
  }

  char tried[256] = "";
  char failure[384] = ""; /* the first failure other than "no such file" */
  for (int i = 0; i < n; i++) {
    size_t used = strlen(tried);
    hmb__say(tried + used, sizeof tried - used, "%s%s", i ? ", " : "",
             names[i]);
    void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char *e = dlerror();
      if (e && !strstr(e, "No such file") && !failure[0])
        hmb__say(failure, sizeof failure, "%s", e);
      continue;
    }
    char why[384];
    if (hmb__cudart_resolve(h, names[i], why, sizeof why) != 0) {
      if (!failure[0])
        hmb__say(failure, sizeof failure, "%s", why);
      dlclose(h); /* nothing of it was called */
      continue;
    }
    int v = 0;
    if (hmb__rt.cudaRuntimeGetVersion(&v) != HMB__CUDA_SUCCESS ||
        v < HMB__CUDA_MIN_RUNTIME) {
      char vt[32];
      hmb__cuda_version_text(v, vt, sizeof vt);
      hmb__say(hmb__probe_reason, sizeof hmb__probe_reason,
               "%s is CUDA runtime %s; hmb needs 11.0 or newer", names[i], vt);
      hmb__say(hmb__runtime_name, sizeof hmb__runtime_name, "%s",
               hmb__probe_reason);
      return -1; /* it was called into: it stays loaded */
    }
    hmb__say(hmb__runtime_name, sizeof hmb__runtime_name, "%s", names[i]);
    return 0;
  }
  if (failure[0])
    hmb__say(hmb__probe_reason, sizeof hmb__probe_reason,
             "libcudart could not be loaded: %s (tried %s)", failure, tried);
  else
    hmb__say(hmb__probe_reason, sizeof hmb__probe_reason,
             "libcudart not found (tried %s)", tried);
  hmb__say(hmb__runtime_name, sizeof hmb__runtime_name, "%s",
           hmb__probe_reason);
  return -1;
}

/* "cudaErrorX: text" of a runtime error code, for reasons. */
static void hmb__cuda_error_text(int e, char *buf, size_t len) {
  const char *name = hmb__rt.cudaGetErrorName(e);
  const char *text = hmb__rt.cudaGetErrorString(e);
  hmb__say(buf, len, "%s (%s, %d)", text ? text : "unknown error",
           name ? name : "?", e);
  hmb__rt.cudaGetLastError(); /* reset the runtime's last-error slot */
}

/* The runtime is loaded: is there a driver, a device, working pinning? */
static void hmb__probe_check(void) {
  char rv[32], dv[48], err[256];
  int v = 0, d = 0;
  hmb__rt.cudaRuntimeGetVersion(&v);
  hmb__cuda_version_text(v, rv, sizeof rv);
  if (hmb__rt.cudaDriverGetVersion(&d) != HMB__CUDA_SUCCESS || d == 0)
    hmb__say(dv, sizeof dv, "no CUDA driver is installed");
  else {
    char t[32];
    hmb__cuda_version_text(d, t, sizeof t);
    hmb__say(dv, sizeof dv, "the driver supports CUDA %s", t);
  }

  int n = 0;
  int e = hmb__rt.cudaGetDeviceCount(&n);
  if (e != HMB__CUDA_SUCCESS) {
    hmb__cuda_error_text(e, err, sizeof err);
    hmb__say(hmb__probe_reason, sizeof hmb__probe_reason,
             "cudaGetDeviceCount failed: %s; %s is CUDA runtime %s and %s", err,
             hmb__runtime_name, rv, dv);
    return;
  }
  if (n <= 0) {
    hmb__say(hmb__probe_reason, sizeof hmb__probe_reason,
             "no CUDA device visible (cudaGetDeviceCount returned 0; %s is "
             "CUDA runtime %s and %s)",
             hmb__runtime_name, rv, dv);
    return;
  }
  void *p = NULL;
  e = hmb__rt.cudaHostAlloc(&p, 4096, HMB__CUDA_HOST_ALLOC_PORTABLE);
  if (e != HMB__CUDA_SUCCESS) {
    hmb__cuda_error_text(e, err, sizeof err);
    hmb__say(hmb__probe_reason, sizeof hmb__probe_reason,
             "CUDA pinned allocation does not work: cudaHostAlloc of 4096 "
             "bytes failed: %s",
             err);
    return;
  }
  hmb__rt.cudaFreeHost(p);
  hmb__probe_reason[0] = '\0';
  hmb__probe_ok = 1;
}

static void hmb__probe_run(void) {
  if (hmb__cudart_load() == 0)
    hmb__probe_check();
  /* Release: pairs with the acquire load in hmb__cuda_runtime(), which may
   * run on another thread without the once: the text is complete. */
  atomic_store_explicit(&hmb__runtime_text, hmb__runtime_name,
                        memory_order_release);
}

int hmb__cuda_built(void) {
  return 1;
}

int hmb__cuda_probe(const char **reason) {
  pthread_once(&hmb__probe_once, hmb__probe_run);
  if (reason)
    *reason = hmb__probe_reason;
  return hmb__probe_ok;
}

const char *hmb__cuda_runtime(void) {
  /* Acquire: pairs with the release store in hmb__probe_run(). */
  return atomic_load_explicit(&hmb__runtime_text, memory_order_acquire);
}

int hmb__cuda_region_create(size_t size, int method, void **base, char *why,
                            size_t why_len) {
  const char *r;
  if (!hmb__cuda_probe(&r)) {
    hmb__say(why, why_len, "%s", r);
    return HMB_ENOTSUP;
  }
  char err[256];
  if (method == 0) {
    void *p = NULL;
    int e = hmb__rt.cudaHostAlloc(&p, size, HMB__CUDA_HOST_ALLOC_PORTABLE);
    if (e != HMB__CUDA_SUCCESS) {
      hmb__cuda_error_text(e, err, sizeof err);
      hmb__say(why, why_len, "cudaHostAlloc of %zu bytes failed: %s", size,
               err);
      return HMB_ENOMEM;
    }
    *base = p;
    return 0;
  }
  /* Map, fault every page in from several threads, then pin in one call:
   * pinning already-resident pages is much cheaper than letting the driver
   * fault them in one by one. */
  void *p = hmb__os_map(size, hmb__os_page_size());
  if (!p) {
    hmb__say(why, why_len, "mapping %zu bytes for the pinned region failed",
             size);
    return HMB_ENOMEM;
  }
  hmb__os_touch(p, size, 0);
  int e = hmb__rt.cudaHostRegister(p, size, HMB__CUDA_HOST_REGISTER_PORTABLE);
  if (e != HMB__CUDA_SUCCESS) {
    hmb__cuda_error_text(e, err, sizeof err);
    hmb__say(why, why_len, "cudaHostRegister of %zu bytes failed: %s", size,
             err);
    hmb__os_unmap(p, size);
    return HMB_ENOMEM;
  }
  *base = p;
  return 0;
}

void hmb__cuda_region_destroy(void *base, size_t size, int method) {
  if (!base)
    return;
  /* A region exists only after a successful probe: the table is filled. */
  if (method == 0) {
    hmb__rt.cudaFreeHost(base);
  } else {
    hmb__rt.cudaHostUnregister(base);
    hmb__os_unmap(base, size);
  }
}

int hmb__cuda_is_pinned(const void *ptr) {
  if (!hmb__cuda_probe(NULL))
    return HMB_ENOTSUP;
  hmb__cuda_ptr_attrs_t a;
  memset(&a, 0, sizeof a);
  int e = hmb__rt.cudaPointerGetAttributes(&a, ptr);
  if (e != HMB__CUDA_SUCCESS) {
    hmb__rt.cudaGetLastError();
    return 0;
  }
  return a.type == HMB__CUDA_MEMORY_TYPE_HOST ? 1 : 0;
}
