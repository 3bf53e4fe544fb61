/*
 * pool.c - the pool's public face: creation and destruction, stats, limit
 * changes, pressure handler registration.
 *
 * Budget state lives in the ledger (ledger.c); this file never writes it.
 * The runners' registry (the ledger's open accounts, walked under the
 * budget lock) lets stats add up per-runner usage, and the leak report
 * name every runner left.
 *
 * Destroy re-entry. A log sink, pressure handler or wait hook may call back
 * into hmb; one that calls hmb_pool_destroy() on the pool being destroyed
 * gets HMB_ESTATE instead of freeing the pool under its caller. The outer
 * destroy looks again after its leak report, so a sink that closed what was
 * left does not leave the pool behind.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/abi.h"
#include "core/describe.h"
#include "core/pool.h"
#include "core/runner.h"
#include "platform/os.h"

void hmb_pool_config_init(hmb_pool_config_t *cfg) {
  if (cfg)
    memset(cfg, 0, sizeof *cfg);
}

static int hmb__pool_config_ok(const hmb_pool_config_t *c) {
  unsigned known =
      HMB_POOL_CAP_OVERCOMMIT | HMB_POOL_NO_CACHE | HMB_POOL_NO_HUGEPAGES;
  return c->limit > 0 && c->limit <= HMB_MAX_ALLOC &&
         c->max_request <= HMB_MAX_ALLOC &&
         (c->alignment & (c->alignment - 1)) == 0 &&
         c->alignment <= HMB_MAX_ALIGN &&
         (!c->backend || (c->backend->alloc && c->backend->free)) &&
         c->log_level >= 0 && (c->flags & ~known) == 0 &&
         (!c->pinned_base || c->pinned_bytes > 0);
}

int hmb_pool_create_sized(const hmb_pool_config_t *ucfg, size_t cfg_size,
                          hmb_pool_t **out) {
  if (out)
    *out = NULL;
  if (!ucfg || !out)
    return HMB_EINVAL;
  hmb_pool_config_t cfg;
  int rc = hmb__abi_in(&cfg, sizeof cfg, ucfg, cfg_size,
                       offsetof(hmb_pool_config_t, flags));
  if (rc)
    return rc;
  if (!hmb__pool_config_ok(&cfg))
    return HMB_EINVAL;
  hmb_pool_t *p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
  if (!p)
    return HMB_ENOMEM;
  memset(p, 0, sizeof *p);
  hmb__home_t *h = &p->home;
  p->alignment = cfg.alignment >= 64 ? cfg.alignment : 64;
  h->log.fn = cfg.log_fn;
  h->log.user = cfg.log_user;
  h->log.level = cfg.log_level ? cfg.log_level : HMB_LOG_WARN;
  if (hmb__home_init(h) != 0)
    goto fail0;
  if (hmb__pressure_create(&p->pressure) != 0)
    goto fail1;
  rc = hmb__memory_create(&cfg, (int64_t)cfg.limit, &h->mem);
  if (rc)
    goto fail2;
  if (hmb__ledger_init(&h->ledger, &cfg, h->mem, p->pressure, &h->log, p,
                       hmb_pool_describe) != 0) {
    hmb__memory_destroy(h->mem);
    goto fail2;
  }
  const char *why = hmb__memory_region_failure(h->mem);
  if (why)
    hmb__log(&h->log, HMB_LOG_WARN,
             "pinned region unavailable, serving pageable memory: %s", why);
  *out = p;
  return 0;
fail2:
  hmb__pressure_destroy(p->pressure);
fail1:
  hmb__home_fini(h);
fail0:
  free(p);
  return rc ? rc : HMB_ENOMEM;
}

int(hmb_pool_create)(const hmb_pool_config_t *cfg, hmb_pool_t **out) {
  return hmb_pool_create_sized(cfg, sizeof(hmb_pool_config_t), out);
}

/* ---- destroy
 * ----------------------------------------------------------------- */

int hmb_pool_destroy(hmb_pool_t *p) {
  if (!p)
    return 0;
  int expect = 0;
  /* acq_rel: a nested call from a sink of the same thread sees the flag;
   * the acquire pairs with the release store that clears it (EBUSY). */
  if (!atomic_compare_exchange_strong_explicit(&p->destroying, &expect, 1,
                                               memory_order_acq_rel,
                                               memory_order_acquire)) {
    hmb__log(&p->home.log, HMB_LOG_ERROR,
             "hmb_pool_destroy() re-entered while the same pool is being "
             "destroyed: refused");
    return HMB_ESTATE;
  }
  hmb__home_t *h = &p->home;
  /* Under the budget lock: a last release that closes its runner on
   * another thread meanwhile (a misuse) is then either seen or done. */
  if (hmb__ledger_open_count(&h->ledger) > 0) {
    hmb__log_leaks(p);
    /* a sink may have closed what was left */
    if (hmb__ledger_open_count(&h->ledger) > 0) {
      /* Release: pairs with the next destroy's acquire CAS. */
      atomic_store_explicit(&p->destroying, 0, memory_order_release);
      return HMB_EBUSY;
    }
  }
  hmb__ledger_fini(&h->ledger);
  hmb__memory_destroy(h->mem);
  hmb__pressure_destroy(p->pressure);
  hmb__home_fini(h);
  free(p);
  return 0;
}

/* ---- limit, pressure
 * ----------------------------------------------------------- */

size_t hmb_pool_limit(const hmb_pool_t *p) {
  return p ? (size_t)atomic_load_explicit(&p->home.ledger.limit,
                                          memory_order_relaxed)
           : 0;
}

int hmb_pool_set_limit(hmb_pool_t *p, size_t limit) {
  if (!p || limit == 0 || limit > HMB_MAX_ALLOC)
    return HMB_EINVAL;
  hmb__ledger_set_limit(&p->home.ledger, (int64_t)limit);
  return 0;
}

int hmb_pool_add_pressure_handler(hmb_pool_t *p, hmb_pressure_fn fn, void *user,
                                  int *id) {
  if (id)
    *id = 0;
  if (!p || !fn)
    return HMB_EINVAL;
  return hmb__pressure_add(p->pressure, fn, user, id);
}

int hmb_pool_remove_pressure_handler(hmb_pool_t *p, int id) {
  if (!p)
    return HMB_EINVAL;
  return hmb__pressure_remove(p->pressure, id);
}

/* ---- stats
 * ----------------------------------------------------------------------- */

typedef struct hmb__usage_sum {
  int64_t live, buffers;
  int32_t runners;
} hmb__usage_sum_t;

static void hmb__usage_add(hmb__acct_t *a, void *ctx) {
  hmb__usage_sum_t *u = ctx;
  const hmb_runner_t *r = hmb__runner_of(a);
  u->live += hmb__runner_live(r);
  u->buffers += hmb__runner_buffers(r);
  u->runners++;
}

int hmb_pool_stats_sized(hmb_pool_t *p, hmb_pool_stats_t *out,
                         size_t out_size) {
  if (!p || !out)
    return HMB_EINVAL;
  hmb_pool_stats_t st;
  /* Usage: the runners' own counters, added up (stats.h: exact at rest),
   * in the hold that reads the budget counters. */
  hmb__home_t *h = &p->home;
  hmb__usage_sum_t u = {0, 0, 0};
  hmb__ledger_stats(&h->ledger, &st, hmb__usage_add, &u);
  int64_t live = u.live;
  st.runners = u.runners;
  st.live_bytes = live;
  st.live_buffers = u.buffers;
  int64_t peak = atomic_load_explicit(&h->usage.peak, memory_order_relaxed);
  if (peak < live)
    peak = live;
  /* live <= held at every instant: the true peak is within peak_held. */
  st.peak_live_bytes = peak < st.peak_held ? peak : st.peak_held;
  return hmb__abi_out(out, out_size, &st, sizeof st,
                      offsetof(hmb_pool_stats_t, progress_runner));
}

int(hmb_pool_stats)(hmb_pool_t *p, hmb_pool_stats_t *out) {
  return hmb_pool_stats_sized(p, out, sizeof(hmb_pool_stats_t));
}

int hmb_pool_memory_stats_sized(hmb_pool_t *p, hmb_memory_stats_t *out,
                                size_t out_size) {
  if (!p || !out)
    return HMB_EINVAL;
  hmb_memory_stats_t st;
  hmb__memory_stats(p->home.mem, &st);
  return hmb__abi_out(out, out_size, &st, sizeof st,
                      offsetof(hmb_memory_stats_t, huge_bytes));
}

int(hmb_pool_memory_stats)(hmb_pool_t *p, hmb_memory_stats_t *out) {
  return hmb_pool_memory_stats_sized(p, out, sizeof(hmb_memory_stats_t));
}

int hmb_pool_trim(hmb_pool_t *p, size_t keep_bytes) {
  if (!p)
    return HMB_EINVAL;
  hmb__memory_trim(p->home.mem, keep_bytes);
  return 0;
}
