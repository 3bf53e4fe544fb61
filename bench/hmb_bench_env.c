/*
 * hmb_bench_env.c - what the bench records about where it ran, and the
 * small OS services of its command line: output-path checks, running a
 * helper program without a shell, and a progress ticker.
 *
 *   environment  build type, compiler, git commit (taken when the bench was
 *                configured), sanitizers, library version, host name, date
 *                and the machine's load before the run. A 1-minute load
 *                above half the online CPUs makes timings unreliable: the
 *                bench prints a warning and the JSON keeps it.
 *   outputs      every output file is opened for writing before a run
 *                starts (and a new one removed again), so an unwritable
 *                path is a usage error, not a lost run.
 *   programs     gnuplot is found on PATH and run with posix_spawn and an
 *                argument vector: no shell ever sees a file name.
 *   ticker       a thread that shows the elapsed time of a long phase that
 *                has no progress of its own (the microbenchmarks).
 *
 * Main thread only, except the ticker's own thread.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_compat.h"
#include "hmb.h"
#include "hmb_bench.h"
#include "hmb_bench_build.h" /* generated: commit, sanitizers, usage text */

extern char **environ;

#ifndef HMB_BENCH_BUILD_TYPE
#define HMB_BENCH_BUILD_TYPE ""
#endif

/* ---- clock ------------------------------------------------------------- */

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(uint64_t ns) {
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000u);
  ts.tv_nsec = (long)(ns % 1000000000u);
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* ---- environment ----------------------------------------------------- */

static void bench_copy(char *dst, size_t len, const char *src) {
  snprintf(dst, len, "%s", src ? src : "");
}

/* The compiler that built this file, e.g. "gcc 12.2.0" or "clang 14.0.6". */
static void bench_compiler(char *buf, size_t len) {
#if defined(__clang__)
  snprintf(buf, len, "clang %s", __clang_version__);
#elif defined(__GNUC__)
  snprintf(buf, len, "gcc %s", __VERSION__);
#else
  snprintf(buf, len, "unknown C compiler");
#endif
  size_t n = strlen(buf);
  while (n > 0 && buf[n - 1] == ' ')
    buf[--n] = '\0';
}

void bench_env_collect(bench_env_t *e) {
  memset(e, 0, sizeof *e);
  bench_copy(e->build_type, sizeof e->build_type,
             HMB_BENCH_BUILD_TYPE[0] ? HMB_BENCH_BUILD_TYPE : "none");
  bench_compiler(e->compiler, sizeof e->compiler);
  bench_copy(e->git_commit, sizeof e->git_commit, HMB_BENCH_GIT_COMMIT);
  bench_copy(e->sanitizers, sizeof e->sanitizers, HMB_BENCH_SANITIZE);
  bench_copy(e->library, sizeof e->library, bench_hmb_library_version());
  if (gethostname(e->host, sizeof e->host) != 0)
    bench_copy(e->host, sizeof e->host, "unknown");
  e->host[sizeof e->host - 1] = '\0';
  time_t now = time(NULL);
  struct tm tm;
  if (gmtime_r(&now, &tm))
    strftime(e->date, sizeof e->date, "%Y-%m-%dT%H:%M:%SZ", &tm);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  e->cpus = cpus > 0 ? (int)cpus : 1;
  e->load1 = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f) {
    if (fscanf(f, "%lf", &e->load1) != 1)
      e->load1 = -1;
    fclose(f);
  }
  if (e->load1 > 0.5 * e->cpus)
    snprintf(e->load_warning, sizeof e->load_warning,
             "the machine is busy before the run (1-minute load %.2f on %d "
             "online CPUs, above half of them): timings may be unreliable",
             e->load1, e->cpus);
}

void bench_env_warn(const bench_env_t *e) {
  if (e->load_warning[0])
    fprintf(stderr, "hmb_bench: warning: %s\n", e->load_warning);
}

void bench_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", f);
    else if (c == '\t')
      fputs("\\t", f);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

void bench_env_json(FILE *f, const bench_env_t *e) {
  fprintf(f, "\"build\": {\"type\": ");
  bench_json_str(f, e->build_type);
  fprintf(f, ", \"compiler\": ");
  bench_json_str(f, e->compiler);
  fprintf(f, ", \"git_commit\": ");
  bench_json_str(f, e->git_commit);
  fprintf(f, ", \"sanitizers\": ");
  bench_json_str(f, e->sanitizers);
  fprintf(f, ", \"library_version\": ");
  bench_json_str(f, e->library);
  fprintf(f, ", \"headers_version\": ");
  bench_json_str(f, BENCH_HMB_VERSION);
  fprintf(f, "},\n  \"host\": {\"name\": ");
  bench_json_str(f, e->host);
  fprintf(f, ", \"online_cpus\": %d, \"loadavg_1min\": ", e->cpus);
  if (e->load1 >= 0)
    fprintf(f, "%.2f", e->load1);
  else
    fprintf(f, "null");
  fprintf(f, ", \"load_warning\": ");
  if (e->load_warning[0])
    bench_json_str(f, e->load_warning);
  else
    fprintf(f, "null");
  fprintf(f, "},\n  \"date\": ");
  bench_json_str(f, e->date);
}

const char *bench_usage_text(void) {
  return hmb_bench_usage;
}

/* ---- output paths ---------------------------------------------------- */

int bench_output_check(const char *option, const char *path) {
  if (!path || !*path) {
    fprintf(stderr, "hmb_bench: %s: the file name is empty\n", option);
    return -1;
  }
  /* Really open it (the only test that agrees with the later fopen for
   * every user, mount and file system): an existing file is opened for
   * writing without being truncated; a new one is created, then removed. */
  struct stat st;
  const char *why = NULL;
  if (stat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      why = "it is a directory";
    } else {
      int fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0)
        why = strerror(errno);
      else
        close(fd);
    }
  } else {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) {
      int e = errno;
      why = strerror(e);
      if (e == ENOENT) { /* say which part is missing */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir)
          *slash = '\0';
        if (slash && stat(dir, &st) != 0)
          why = "its directory does not exist";
      }
    } else {
      close(fd);
      unlink(path);
    }
  }
  if (why) {
    fprintf(stderr, "hmb_bench: cannot write %s '%s': %s\n", option, path, why);
    return -1;
  }
  return 0;
}

/* ---- helper programs, without a shell -------------------------------- */

int bench_find_program(const char *name, char *out, size_t len) {
  const char *path = getenv("PATH");
  if (!path || !*path)
    path = "/usr/bin:/bin";
  while (*path) {
    size_t n = strcspn(path, ":");
    char cand[4096];
    if (n == 0) /* an empty entry is the current directory */
      snprintf(cand, sizeof cand, "./%s", name);
    else
      snprintf(cand, sizeof cand, "%.*s/%s", (int)n, path, name);
    struct stat st;
    if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) &&
        access(cand, X_OK) == 0) {
      snprintf(out, len, "%s", cand);
      return 1;
    }
    path += n;
    if (*path == ':')
      path++;
  }
  return 0;
}

int bench_run_program(const char *path, char *const argv[]) {
  pid_t pid;
  int rc = posix_spawn(&pid, path, NULL, NULL, argv, environ);
  if (rc != 0) {
    fprintf(stderr, "hmb_bench: cannot run %s: %s\n", path, strerror(rc));
    return -1;
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) {
      fprintf(stderr, "hmb_bench: waiting for %s: %s\n", path, strerror(errno));
      return -1;
    }
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  fprintf(stderr, "hmb_bench: %s was killed by signal %d\n", path,
          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return -1;
}

/* ---- progress ticker ------------------------------------------------- */

static struct {
  pthread_t thread;
  atomic_int stop;
  int running;
  const char *label;
  uint64_t t0;
} bench_ticker;

static void *bench_ticker_main(void *arg) {
  (void)arg;
  uint64_t last = bench_ticker.t0; /* the first line after one second */
  while (!atomic_load(&bench_ticker.stop)) {
    bench_sleep_ns(100000000); /* 0.1 s: a prompt stop */
    uint64_t now = bench_now_ns();
    if (now - last >= 1000000000u) {
      fprintf(stderr, "\r\033[K  %s: %.0f s elapsed", bench_ticker.label,
              (double)(now - bench_ticker.t0) / 1e9);
      last = now;
    }
  }
  fprintf(stderr, "\r\033[K");
  return NULL;
}

void bench_ticker_start(const char *label) {
  bench_ticker.label = label;
  bench_ticker.t0 = bench_now_ns();
  atomic_store(&bench_ticker.stop, 0);
  bench_ticker.running =
      pthread_create(&bench_ticker.thread, NULL, bench_ticker_main, NULL) == 0;
}

void bench_ticker_stop(void) {
  if (!bench_ticker.running)
    return;
  atomic_store(&bench_ticker.stop, 1);
  pthread_join(bench_ticker.thread, NULL);
  bench_ticker.running = 0;
}
