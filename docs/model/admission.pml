/*
 * admission.pml - a Promela model of hmb's budget ledger and admission
 * rules (release 0.2: the progress runner).
 *
 * What is modelled (src/core/admission.c and src/core/ledger.c; README.md
 * maps each C function to the inline or step here). Bytes are units:
 * LIMIT (default 2) is the pool limit, MAXLIVE (default 2) the most live
 * units a runner holds (its real need).
 *   - NR runner slots (default 3). In each, one runner after another (a
 *     task each), forever: created; start for its estimate (0, 1 or
 *     LIMIT+1: too small and too large), which may time out (-DTIMEOUTS)
 *     and then be retried (keeping its place) or given up (destroyed);
 *     running: allocate 1 or 2 real units (from spare on the hot path, or
 *     taking all spare and borrowing exactly the deficit), close buffers
 *     (the budget stays as spare, except what the runner holds beyond the
 *     limit, which goes back to the pool), try-free (all spare back),
 *     finish (stop running, spare back); then close the rest of its
 *     buffers (each close returns its units to the pool).
 *   - The ledger exactly as ledger.c books it (pool held, running,
 *     bor_runners, the progress runner, beyond_stopped, the two queues; per
 *     account held, spare, beyond, state, queued requests; per waiter need,
 *     local, result), and admission.c's decision, hmb__admit_next(), as the
 *     inline decide(), applied by dispatch() where hmb__dispatch_locked() is
 *     called. Each d_step is one critical section under the budget lock, or
 *     one lock-free step (which touches only the runner's own spare/live).
 *   - Every runner has the same priority, so both queues are in arrival
 *     order (the FIFO case of R1 and R2).
 *   Options:
 *   -DTIMEOUTS   every wait may give up (leave its queue, dispatch)
 *   -DCAP=n      the over-commit cap (HMB_POOL_CAP_OVERCOMMIT, n units)
 *   -DSTAGED     a start may be for a first piece (1 unit), then grows to
 *                the estimate (hmb_runner_start_partial, hmb_runner_grow)
 *   -DOUTLIVE    a stopped runner's buffers may outlive it: a closer
 *                process returns them later while the slot's next runner
 *                runs (the "stuck" over-commit of stopped runners)
 *   -DNEED       a need declared before start (caps the start), set-need
 *                while running (every later close trims to it), try-free 1
 *   -DCANCEL     a canceller may cancel any waiting or running runner
 *   -DALLOCFAIL  the physical allocation after a granted borrow may fail:
 *                hmb__ledger_unborrow(), then the spare put back
 *   -DPRESSURE   pressure handlers are registered: a progress borrow beyond
 *                the limit first has its thread run them (they may try-free
 *                any runner), then is decided again
 *   -DHELPER     runner slot 0 has a second thread that allocates 1 unit
 *                and closes its buffers: two requests of one runner at once,
 *                a close serving the runner's own queued borrow, races of a
 *                free or a granted allocation with finish
 *   -DNR=4, -DLIMIT=3 -DMAXLIVE=3: larger instances
 *
 * What is checked (spin -a; cc -DSAFETY; ./pan). check() runs at the end of
 * every step and computes everything from the accounts' and threads' own
 * states, not from the dispatcher's counters, so a drifting counter is
 * caught too:
 *   - I1 conservation: pool held == sum of the accounts' held; per account
 *     held == live + spare + what its threads carry (the own spare a borrow
 *     took, and its grant until made live), live <= held, beyond <= held;
 *   - running, bor_runners (runners with a borrow or grow queued), the
 *     queue length, nwait and beyond_stopped equal what the states say;
 *   - I2: every RUNNING runner with beyond > 0 is the progress runner (so
 *     at most one), and the progress runner is RUNNING;
 *   - I3: held - limit <= beyond of stopped accounts + beyond of the
 *     progress runner, and the progress runner's beyond <= the units its
 *     allocations hold now (live, and carried by a borrow in progress),
 *     except while one of its threads is between the lock-free and the
 *     locked part of giving spare back (a close, a failed borrow's put-back:
 *     the locked part returns the units beyond the limit); -DPEAK_I3 also:
 *     <= the most units its allocations have held at once;
 *   - I5 with -DCAP=n: held - limit <= n;
 *   - settled: after every step, admission has nothing left to do (every
 *     change that could let a waiter in was followed by a dispatch);
 *   - own spare first: no borrow waits while its runner has spare
 *     (runner.h: budget freed back to the runner serves its waiting
 *     borrows), except in the same window of a give-back;
 *   - no invalid end state: runners loop forever, so a reachable state in
 *     which every thread is blocked is a deadlock. Without -DTIMEOUTS no
 *     wait ever gives up: progress must come from the rules alone.
 * And where a rule is applied (rule_assert; -DNORULES leaves only the
 * invariants above): a start is granted only with no borrow or grow
 * waiting (R1), only the head start (R2), its request or, by R3, what is
 * available; a progress borrow its whole deficit, a progress grow what is
 * available (R5); any other borrow or grow only if it is the first of the
 * others and fits (R1, R5); only a progress borrow adds beyond (I4); R3
 * only with no runner running and for a head start that does not fit; R4
 * only when every running runner has a thread waiting to borrow or grow,
 * for a waiting runner that holds the most.
 *
 * Mutations (each must be caught; README.md has what SPIN reports):
 *   -DMUT=1  a borrow that does not fit is granted beyond the limit to a
 *            runner that is not the progress runner
 *   -DMUT=2  an idle start is granted its whole estimate
 *   -DMUT=3  no R4
 *   -DMUT=4  R4 counts requests instead of runners (with -DHELPER)
 *   -DMUT=5  a progress grow is granted its whole need (with -DSTAGED)
 *   -DMUT=6  finish leaves the progress role in place
 *   -DMUT=7  a queued borrow does not mark its runner's words (with
 *            -DHELPER: a close of the other thread keeps its unit as spare
 *            while the borrow waits)
 *   -DMUT=8  finish does not mark the words stopped (a close after it
 *            is not returned to the pool at once)
 */

#ifndef NR
#define NR 3 /* runner slots */
#endif
#ifdef HELPER
#define NT (NR + 1) /* threads: one per slot, + slot 0's helper */
#define HT NR       /* the helper's thread id */
#else
#define NT NR
#endif
#ifndef MUT
#define MUT 0
#endif
#define MAXR 4      /* array sizes (NR <= 4) */
#define MAXT 6
#ifndef LIMIT
#define LIMIT 2     /* pool limit, in units */
#endif
#ifndef MAXLIVE
#define MAXLIVE 2   /* live units a runner may hold: its real need */
#endif
#define NONE 255

/* Account states (ledger.h hmb__rstate_t); >= RETURNING: stopped, freed
 * budget goes back to the pool (COMPLETED, FAILED, CANCELLED_DONE, CLOSED). */
#define CREATED 0
#define WAITING 1
#define RUNNING 2
#define CANCELLED 3
#define RETURNING 4

/* Request kinds (hmb_request_kind_t); KNONE: the thread is not in a wait. */
#define KNONE 0
#define KSTART 1
#define KBORROW 2
#define KGROW 3

/* Wait results: PEND (queued, HMB__PENDING), OK (0), ELIMIT, ECANCELED. */
#define PEND 0
#define OK 1
#define ELIMIT 2
#define ECANCELED 3

/* Grant rules (enum hmb__rule) and decisions (enum hmb__action). */
#define WITHIN 0
#define IDLE 1
#define PROG 2
#define A_NONE 0
#define A_GRANT 1
#define A_REJECT 2
#define A_PROGRESS 3
#define A_PRESSURE 4

/* Pressure state of a waiter (enum hmb__pressure_state). */
#define P_NONE 0
#define P_DUE 1
#define P_DONE 2

/* The rules checked where they are applied (at a grant, when a runner is
 * made the progress runner): -DNORULES leaves only the invariants of
 * check(), to see which of them a mutation breaks. */
#ifdef NORULES
#define rule_assert(x) skip
#else
#define rule_assert(x) assert(x)
#endif

/* The runner of a thread. */
#ifdef HELPER
#define RUN(t) ((t) == HT -> 0 : (t))
#else
#define RUN(t) (t)
#endif

/* ---- runner accounts (hmb__acct_t) ---------------------------------------- */
byte st[MAXR];      /* state */
byte held_r[MAXR];  /* held */
byte spare[MAXR];   /* spare (all shards) */
byte live[MAXR];    /* live units of its buffers */
byte beyond[MAXR];  /* part of held granted beyond the limit */
byte nwait[MAXR];   /* its requests in the queues (== bor_queued here) */
/* The marks in its shards' words (core/ledger_state.h) that a lock-free
 * free or put-back reads in the word it writes: HMB__SB_STOPPED (set by
 * finish and destroy as they drain the spare) and HMB__SB_QUEUED (set
 * while a borrow or grow of it is queued). The third, HMB__SB_TRIM, stands
 * for "beyond > 0, or held > a declared need while running", and the C
 * code re-marks it in every critical section that changes those, so the
 * model reads the condition itself where C reads the mark. */
bit fstop[MAXR];
bit fqueued[MAXR];
#ifdef NEED
byte dneed[MAXR];   /* declared need, NONE: none */
#endif
#ifdef PEAK_I3
byte most[MAXR];    /* peak of REAL(r) (for the I3 check only) */
#define FORGET_MOST(r) most[r] = 0
#else
#define FORGET_MOST(r) skip
#endif
/* Start tickets: runners holding one, oldest first (a retried start keeps
 * its place; one priority level, so arrival order is the queue order). */
byte tord[MAXR];
byte ntord;
#ifdef OUTLIVE
#define GHELD(i) gheld[i]
#define GBEY(i) gbeyond[i]
/* A stopped account whose buffers outlive it (the slot's previous runner):
 * held == live, returned one unit per close by the closer process. */
byte gheld[MAXR];
byte gbeyond[MAXR];
#else
#define GHELD(i) 0
#define GBEY(i) 0
#endif

/* ---- threads (a waiter, hmb__waiter_t, lives on the thread) -------------- */
byte wk[MAXT];      /* kind of the request it waits in, KNONE: none */
byte wneed[MAXT];   /* units still wanted from the pool */
byte wlocal[MAXT];  /* a borrow: units it carries (own spare, then grant) */
byte wres[MAXT];    /* result */
#ifdef PRESSURE
byte wpress[MAXT];  /* P_NONE, P_DUE (its thread must run the handlers) */
#endif
byte tl[MAXT];      /* live units of the buffers this thread owns */
#ifdef ALLOCFAIL
byte gbytes[MAXT];  /* the grant (hmb__grant_t bytes, beyond) */
byte gbey[MAXT];
#endif
/* The thread found a mark (or beyond, or the need exceeded) and carries
 * fx[t] freed units to the locked part of its give-back: GB_FREE (a close:
 * hmb__ledger_freed_slow()) or GB_PUT (the put-back of a failed borrow: the
 * locked part of hmb__spare_put_back()). */
#define GB_FREE 1
#define GB_PUT 2
byte flk[MAXT];
byte fx[MAXT];
#ifdef HELPER
#define GIVING(r) (flk[r] != 0 || ((r) == 0 && flk[HT] != 0))
#else
#define GIVING(r) (flk[r] != 0)
#endif

/* ---- the ledger (hmb__ledger_t): counters as the dispatcher keeps them -- */
byte held;
byte running;
byte bor_runners;
byte progress = NONE;
byte beyond_stopped;
byte bq[MAXT];      /* borrows and grows, FIFO: thread ids */
byte nbq;

/* ---- scratch of the critical sections (not part of the state) ---------- */
/* Reset to 0 at the end of every step, so they could be stored too: pass
 * -DNOHIDDEN for a breadth-first search (pan refuses hidden variables). */
#ifdef NOHIDDEN
#define HIDDEN
#else
#define HIDDEN hidden
#endif
HIDDEN byte d_act, d_t, d_r, d_b, d_rule, d_code, d_i, d_u, d_x, d_y, d_m;
HIDDEN byte d_done;
HIDDEN byte c_i, c_sum, c_run, c_bor, c_sb, c_bp, c_over, c_n, c_c, c_q, c_x;

/* The units r's allocations hold: live, plus what its threads carry for
 * an allocation in progress (own spare taken by a borrow, and its grant). */
#ifdef HELPER
#define REAL(r) (live[r] + wlocal[r] + (r == 0 -> wlocal[HT] : 0))
#else
#define REAL(r) (live[r] + wlocal[r])
#endif
inline note_real(r) {
#ifdef PEAK_I3
  if
  :: REAL(r) > most[r] -> most[r] = REAL(r)
  :: else -> skip
  fi
#else
  skip
#endif
}

/* ---- queues (hmb__enqueue_locked, hmb__remove_locked) ------------------- */

inline tord_remove(r) {
  d_i = 0;
  do
  :: d_i < ntord && tord[d_i] != r -> d_i++
  :: else -> break
  od;
  if
  :: d_i < ntord ->
    do
    :: d_i + 1 < ntord -> tord[d_i] = tord[d_i + 1]; d_i++
    :: else -> break
    od;
    ntord--;
    tord[ntord] = 0
  :: else -> skip
  fi;
  d_i = 0
}

/* A start of `n` units for runner (and thread) r. */
inline enqueue_start(r, n) {
  d_i = 0;
  do
  :: d_i < ntord && tord[d_i] != r -> d_i++
  :: else -> break
  od;
  if
  :: d_i == ntord -> tord[ntord] = r; ntord++ /* first try: a ticket */
  :: else -> skip /* a retry keeps its place */
  fi;
  d_i = 0;
  st[r] = WAITING;
  wk[r] = KSTART;
  wneed[r] = n;
  wlocal[r] = 0;
  wres[r] = PEND;
  nwait[r]++
}

/* A borrow or grow of thread t: appended (first come, first served). */
inline enqueue_bor(t, kind, n, loc) {
  wk[t] = kind;
  wneed[t] = n;
  wlocal[t] = loc;
  wres[t] = PEND;
#ifdef ALLOCFAIL
  gbytes[t] = 0;
  gbey[t] = 0;
#endif
#ifdef PRESSURE
  wpress[t] = P_NONE;
#endif
  bq[nbq] = t;
  nbq++;
  nwait[RUN(t)]++;
  if
  :: nwait[RUN(t)] == 1 ->
    bor_runners++;
#if MUT != 7
    fqueued[RUN(t)] = 1; /* before the borrow reads its spare */
#endif
    skip
  :: else -> skip
  fi
}

/* Out of its queue (the caller sets wres, or clears the wait). */
inline remove_locked(t) {
  if
  :: wk[t] != KSTART ->
    d_i = 0;
    do
    :: d_i < nbq && bq[d_i] != t -> d_i++
    :: else -> break
    od;
    assert(d_i < nbq);
    do
    :: d_i + 1 < nbq -> bq[d_i] = bq[d_i + 1]; d_i++
    :: else -> break
    od;
    nbq--;
    bq[nbq] = 0;
    d_i = 0;
    nwait[RUN(t)]--;
    if
    :: nwait[RUN(t)] == 0 -> bor_runners--; fqueued[RUN(t)] = 0
    :: else -> skip
    fi
  :: else ->
    nwait[RUN(t)]--
  fi
}

/* ---- admission.c: hmb__admit_next() --------------------------------------- */

/* The head start: the oldest ticket whose runner is queued; NONE if none. */
inline head_start() {
  d_u = NONE;
  d_i = 0;
  do
  :: d_i < ntord && d_u == NONE ->
    if
    :: wk[tord[d_i]] == KSTART && wres[tord[d_i]] == PEND -> d_u = tord[d_i]
    :: else -> skip
    fi;
    d_i++
  :: else -> break
  od
}

/* A borrow of the progress runner that goes beyond the limit: after one
 * round of pressure handlers (-DPRESSURE: handlers are registered). */
inline beyond_step() {
#ifdef PRESSURE
  if
  :: wpress[d_u] == P_DUE -> /* its thread is running the handlers */
    d_act = A_NONE; d_t = NONE
  :: wpress[d_u] == P_NONE -> d_act = A_PRESSURE
  :: else -> d_b = wneed[d_u]; d_rule = PROG
  fi
#else
  d_b = wneed[d_u]; d_rule = PROG
#endif
}

/* Decide the next step into d_act (thread d_t, units d_b, rule d_rule,
 * code d_code; runner d_r for A_PROGRESS). Reads only. */
inline decide() {
  d_act = A_NONE; d_t = NONE; d_r = NONE; d_b = 0; d_rule = WITHIN;
  d_code = 0;
  /* 1. R5: the first request of the progress runner. */
  if
  :: progress != NONE ->
    d_i = 0;
    do
    :: d_i < nbq && d_act == A_NONE ->
      d_u = bq[d_i];
      if
      :: RUN(d_u) == progress ->
        d_t = d_u;
        d_act = A_GRANT;
        if
        :: wk[d_u] == KGROW -> /* a reservation: never beyond */
          d_b = (held >= LIMIT -> 0 :
                 (LIMIT - held < wneed[d_u] -> LIMIT - held : wneed[d_u]));
#if MUT == 5
          d_b = wneed[d_u];
#endif
        :: wk[d_u] == KBORROW && held + wneed[d_u] <= LIMIT ->
          d_b = wneed[d_u]
        :: else -> /* beyond the limit: real units of a real allocation */
#ifdef CAP
          if
          :: held + wneed[d_u] > LIMIT + CAP ->
            d_act = A_REJECT; d_code = ELIMIT
          :: else -> beyond_step()
          fi
#else
          beyond_step()
#endif
        fi
      :: else -> skip
      fi;
      d_i++
    :: else -> break
    od
  :: else -> skip
  fi;
  /* 2. R1: the head of the other borrows and grows, if it fits. */
  if
  :: d_act == A_NONE ->
    d_i = 0;
    do
    :: d_i < nbq && RUN(bq[d_i]) == progress -> d_i++
    :: else -> break
    od;
    if
    :: d_i < nbq && held + wneed[bq[d_i]] <= LIMIT ->
      d_act = A_GRANT; d_t = bq[d_i]; d_b = wneed[d_t]
#if MUT == 1
    :: d_i < nbq && wk[bq[d_i]] == KBORROW -> /* any borrow beyond */
      d_act = A_GRANT; d_t = bq[d_i]; d_b = wneed[d_t]; d_rule = PROG
#endif
    :: else -> skip
    fi
  :: else -> skip
  fi;
  /* 3. R4: every running runner waits to borrow or grow. */
#if MUT != 3
  if
  :: d_act == A_NONE && progress == NONE && running > 0 &&
#if MUT == 4
     nbq >= running -> /* requests, not runners */
#else
     bor_runners >= running ->
#endif
    d_act = A_PROGRESS;
    d_m = 0;
    d_i = 0;
    do
    :: d_i < nbq ->
      if
      :: d_r == NONE || held_r[RUN(bq[d_i])] > d_m ->
        d_r = RUN(bq[d_i]); d_m = held_r[d_r]
      :: else -> skip
      fi;
      d_i++
    :: else -> break
    od
  :: else -> skip
  fi;
#endif
  /* 4. R1: while a borrow or grow waits, no start. 5. R2/R3. */
  if
  :: d_act == A_NONE && nbq == 0 ->
    head_start();
    if
    :: d_u != NONE && held + wneed[d_u] <= LIMIT ->
      d_act = A_GRANT; d_t = d_u; d_b = wneed[d_u]
    :: d_u != NONE && held + wneed[d_u] > LIMIT && running == 0 ->
      d_act = A_GRANT; d_t = d_u; d_rule = IDLE;
      d_b = (held >= LIMIT -> 0 : LIMIT - held);
#if MUT == 2
      d_b = wneed[d_u];
#endif
    :: else -> skip /* it waits, and the starts behind it */
    fi
  :: else -> skip
  fi;
  d_i = 0; d_u = 0; d_m = 0
}

/* ---- ledger.c: applying a decision ---------------------------------------- */

/* hmb__grant_locked(): book pool and account; beyond is the over-commit
 * this grant adds; a start runs, a grow's units become spare; wake. */
inline grant(t, b, rule) {
  /* The rules as pool.h states them, whatever way decide() found t. */
  d_x = (held >= LIMIT -> 0 : LIMIT - held); /* what is available */
  if
  :: wk[t] == KSTART ->
    rule_assert(nbq == 0);              /* R1: no borrow or grow waits */
    head_start();
    rule_assert(d_u == t);              /* R2: the head start, in order */
    d_u = 0;
    if
    :: rule == IDLE -> /* R3: a head start that does not fit gets what
                        * is available */
      rule_assert(held + wneed[t] > LIMIT && b == d_x)
    :: else ->
      rule_assert(rule == WITHIN && b == wneed[t] && b <= d_x)
    fi
  :: wk[t] != KSTART && RUN(t) == progress -> /* R5 */
    if
    :: wk[t] == KBORROW -> rule_assert(b == wneed[t])   /* at once */
    :: else -> rule_assert(b == (wneed[t] < d_x -> wneed[t] : d_x)) /* available */
    fi
  :: else -> /* R1: the first of the others, within the limit (R5) */
    rule_assert(rule == WITHIN && b == wneed[t] && b <= d_x);
    d_i = 0;
    do
    :: RUN(bq[d_i]) == progress -> d_i++
    :: else -> break
    od;
    rule_assert(bq[d_i] == t);
    d_i = 0
  fi;
  d_x = (held > LIMIT -> held - LIMIT : 0);
  held = held + b;
  held_r[RUN(t)] = held_r[RUN(t)] + b;
  d_y = (held > LIMIT -> held - LIMIT : 0);
  if
  :: d_y > d_x ->
    /* I4/R5: only a borrow of the progress runner goes beyond the limit */
    rule_assert(wk[t] == KBORROW && rule == PROG && RUN(t) == progress);
    beyond[RUN(t)] = beyond[RUN(t)] + d_y - d_x
  :: else -> skip
  fi;
#ifdef ALLOCFAIL
  if
  :: wk[t] == KBORROW -> gbytes[t] = b; gbey[t] = d_y - d_x
  :: else -> skip
  fi;
#endif
  remove_locked(t);
  if
  :: wk[t] == KSTART ->
    running++;
    spare[t] = spare[t] + b;
    st[t] = RUNNING;
    tord_remove(t);
    if
    :: rule == IDLE ->
      /* R3: only when no runner is running (from the states) */
      d_i = 0;
      do
      :: d_i < NR -> rule_assert(d_i == t || st[d_i] != RUNNING); d_i++
      :: else -> break
      od;
      d_i = 0;
      progress = t
    :: else -> skip
    fi
  :: wk[t] == KBORROW ->
    wlocal[t] = wlocal[t] + b /* carried until it is made live */
  :: else -> /* a grow: its units become spare, which serves the borrows
              * other threads of the runner have queued (runner.h) */
    spare[RUN(t)] = spare[RUN(t)] + b;
    serve_own(RUN(t))
  fi;
  note_real(RUN(t));
  wneed[t] = 0;
  wres[t] = OK;
  d_x = 0; d_y = 0
}

/* hmb__reject_locked() */
inline reject(t, code) {
  remove_locked(t);
  if
  :: wk[t] == KSTART -> st[t] = CREATED
  :: else -> skip
  fi;
  wneed[t] = 0;
  wres[t] = code
}

/* hmb__make_progress_locked(), with R4's precondition from the states:
 * every RUNNING runner has a thread waiting to borrow or grow. */
inline make_progress(r) {
  d_i = 0;
  do
  :: d_i < NR ->
    if
    :: st[d_i] == RUNNING ->
      d_y = ((wk[d_i] == KBORROW || wk[d_i] == KGROW) && wres[d_i] == PEND);
#ifdef HELPER
      d_y = d_y || (d_i == 0 && (wk[HT] == KBORROW || wk[HT] == KGROW) &&
                    wres[HT] == PEND);
#endif
      rule_assert(d_y); /* R4: it waits to borrow or grow */
      d_y = 0
    :: else -> skip
    fi;
    d_i++
  :: else -> break
  od;
  /* ... and it is a waiting runner that holds the most */
  d_i = 0;
  do
  :: d_i < nbq -> rule_assert(held_r[RUN(bq[d_i])] <= held_r[r]); d_i++
  :: else -> break
  od;
  d_i = 0;
  progress = r
}

/* hmb__dispatch_locked() */
inline dispatch() {
  d_done = 0;
  do
  :: d_done -> break
  :: else ->
    decide();
    if
    :: d_act == A_GRANT -> grant(d_t, d_b, d_rule)
    :: d_act == A_REJECT -> reject(d_t, d_code)
    :: d_act == A_PROGRESS -> make_progress(d_r)
#ifdef PRESSURE
    :: d_act == A_PRESSURE -> wpress[d_t] = P_DUE
#endif
    :: else -> d_done = 1
    fi
  od;
  d_done = 0; d_act = 0; d_t = 0; d_r = 0; d_b = 0; d_rule = 0; d_code = 0
}

/* hmb__held_sub(): return x units of r's held; beyond is repaid first. */
inline held_sub(r, x) {
  held = held - x;
  held_r[r] = held_r[r] - x;
  d_x = (x < beyond[r] -> x : beyond[r]);
  beyond[r] = beyond[r] - d_x;
  if
  :: st[r] != RUNNING -> beyond_stopped = beyond_stopped - d_x
  :: else -> skip
  fi;
  d_x = 0
}

/* hmb__stop_running_locked() */
inline stop_running(r, s) {
  if
  :: st[r] == RUNNING ->
    running--;
    beyond_stopped = beyond_stopped + beyond[r];
#if MUT != 6
    if
    :: progress == r -> progress = NONE
    :: else -> skip
    fi
#endif
  :: else -> skip
  fi;
  st[r] = s
}

/* hmb__serve_own_locked(): serve r's queued borrows from its spare, partly
 * if need be (every caller dispatches afterwards: a borrow served partly
 * wants less and may fit now). */
inline serve_own(r) {
  d_m = 0;
  do
  :: d_m < nbq ->
    d_u = bq[d_m];
    if
    :: RUN(d_u) == r && wk[d_u] == KBORROW ->
      d_y = (spare[r] < wneed[d_u] -> spare[r] : wneed[d_u]);
      spare[r] = spare[r] - d_y;
      wneed[d_u] = wneed[d_u] - d_y;
      wlocal[d_u] = wlocal[d_u] + d_y;
      note_real(r);
      if
      :: wneed[d_u] == 0 ->
        remove_locked(d_u); /* shifts bq: d_m stays */
        wres[d_u] = OK
      :: else -> d_m++
      fi
    :: else -> d_m++
    fi
  :: else -> break
  od;
  d_m = 0; d_u = 0; d_y = 0
}

/* hmb__beyond_back_locked(): spare up to r's beyond goes back to the pool
 * (the progress runner holds beyond the limit only what is live). */
inline beyond_back(r) {
  d_t = (spare[r] < beyond[r] -> spare[r] : beyond[r]);
  spare[r] = spare[r] - d_t;
  held_sub(r, d_t);
  d_t = 0
}

/* hmb__spare_put_back(), the lock-free part: x units of spare back after a
 * failed borrow (the own spare it took), with one CAS on the word unless
 * it is marked (stopped, a borrow or grow queued, trim); then the units
 * are carried to the locked part,
 * give_back_end() (GB_PUT: no trim to the need). */
inline put_back(t, r, x) {
  if
  :: x > 0 ->
    if
    :: (fstop[r] || fqueued[r] || beyond[r] > 0
#ifdef NEED
        || (dneed[r] != NONE && st[r] == RUNNING && held_r[r] > dneed[r])
#endif
       ) -> flk[t] = GB_PUT; fx[t] = x
    :: else -> spare[r] = spare[r] + x
    fi
  :: else -> skip
  fi
}

/* ---- the checks (after every step) ---------------------------------------- */

inline check() {
  c_sum = 0; c_run = 0; c_bor = 0; c_sb = 0; c_bp = 0; c_n = 0;
  c_i = 0;
  do
  :: c_i < NR ->
    c_sum = c_sum + held_r[c_i];
    assert(live[c_i] <= held_r[c_i]);
    assert(beyond[c_i] <= held_r[c_i]);
    /* what its threads carry, its queued requests, whether it waits */
    c_c = wlocal[c_i] + fx[c_i];
    c_q = (wk[c_i] != KNONE && wres[c_i] == PEND -> 1 : 0);
    c_x = (wk[c_i] >= KBORROW && wres[c_i] == PEND -> 1 : 0);
    c_n = c_n + (wk[c_i] >= KBORROW && wres[c_i] == PEND -> 1 : 0);
#ifdef HELPER
    if
    :: c_i == 0 ->
      c_c = c_c + wlocal[HT] + fx[HT];
      c_q = c_q + (wk[HT] != KNONE && wres[HT] == PEND -> 1 : 0);
      c_x = c_x + (wk[HT] >= KBORROW && wres[HT] == PEND -> 1 : 0);
      c_n = c_n + (wk[HT] >= KBORROW && wres[HT] == PEND -> 1 : 0);
      assert(live[0] == tl[0] + tl[HT])
    :: else -> assert(live[c_i] == tl[c_i])
    fi;
#else
    assert(live[c_i] == tl[c_i]);
#endif
    assert(held_r[c_i] == live[c_i] + spare[c_i] + c_c);
    assert(nwait[c_i] == c_q);
    /* own spare first: a queued borrow is served by its runner's spare
     * (runner.h) at once: spare grows lock-free only in words not marked
     * queued, and under the lock only before a serve */
    c_q = (wk[c_i] == KBORROW && wres[c_i] == PEND -> 1 : 0);
#ifdef HELPER
    c_q = c_q + (c_i == 0 && wk[HT] == KBORROW && wres[HT] == PEND -> 1 : 0);
#endif
    assert(c_q == 0 || spare[c_i] == 0);
    /* nothing stranded: a stopped runner keeps no spare (a lock-free
     * credit goes only into words not marked stopped) */
    assert(st[c_i] < RETURNING || spare[c_i] == 0);
    if
    :: st[c_i] == RUNNING ->
      c_run++;
      /* I2: only the progress runner is beyond the limit */
      assert(beyond[c_i] == 0 || progress == c_i)
    :: else ->
      c_sb = c_sb + beyond[c_i];
      assert(c_x == 0) /* only running runners borrow or grow */
    fi;
    c_bor = c_bor + (c_x > 0 -> 1 : 0);
    c_i++
  :: else -> break
  od;
#ifdef OUTLIVE
  c_i = 0;
  do
  :: c_i < NR ->
    c_sum = c_sum + gheld[c_i];
    c_sb = c_sb + gbeyond[c_i];
    assert(gbeyond[c_i] <= gheld[c_i]);
    c_i++
  :: else -> break
  od;
#endif
  /* I1 and the dispatcher's counters against the states */
  assert(held == c_sum);
  assert(running == c_run);
  assert(bor_runners == c_bor);
  assert(nbq == c_n);
  assert(beyond_stopped == c_sb);
  /* the progress runner */
  if
  :: progress != NONE ->
    assert(st[progress] == RUNNING);
    c_bp = beyond[progress];
    /* what its allocations hold now (hmb_pool_check() at rest: live) */
    assert(c_bp <= REAL(progress) || GIVING(progress));
#ifdef PEAK_I3
    assert(c_bp <= most[progress]); /* the most they have held */
#endif
    skip
  :: else -> skip
  fi;
  /* I3: the over-commit bound */
  c_over = (held > LIMIT -> held - LIMIT : 0);
  assert(c_over <= c_sb + c_bp);
#ifdef CAP
  assert(c_over <= CAP); /* I5 */
#endif
  /* in a replayed trail (spin -t), the ledger after each step (trail.py
   * shows it): per runner st(ate) h(eld) l(ive) s(pare) b(eyond) and its
   * main thread's wait w(kind)/(units wanted); the helper's live units and
   * wait; the stopped accounts of -DOUTLIVE (held/beyond) */
  printf("MSC: held=%d prog=%d bs=%d q=%d | r0 %d h%d l%d s%d b%d w%d/%d | r1 %d h%d l%d s%d b%d w%d/%d | r2 %d h%d l%d s%d b%d w%d/%d | r3 %d h%d l%d s%d b%d w%d/%d | helper l%d w%d/%d | stopped %d/%d %d/%d %d/%d\n",
    held, progress, beyond_stopped, nbq,
    st[0], held_r[0], live[0], spare[0], beyond[0], wk[0], wneed[0],
    st[1], held_r[1], live[1], spare[1], beyond[1], wk[1], wneed[1],
    st[2], held_r[2], live[2], spare[2], beyond[2], wk[2], wneed[2],
    st[3], held_r[3], live[3], spare[3], beyond[3], (NR > 3 -> wk[3] : 0),
    (NR > 3 -> wneed[3] : 0),
    (NT > NR -> tl[NR] : 0), (NT > NR -> wk[NR] : 0), (NT > NR -> wneed[NR] : 0),
    GHELD(0), GBEY(0), GHELD(1), GBEY(1),
    GHELD(2), GBEY(2));
  /* settled: nothing left for admission to do */
  decide();
  assert(d_act == A_NONE);
  d_act = 0; d_t = 0; d_r = 0; d_b = 0; d_rule = 0; d_code = 0;
  c_i = 0; c_sum = 0; c_run = 0; c_bor = 0; c_sb = 0; c_bp = 0; c_over = 0;
  c_n = 0; c_c = 0; c_q = 0; c_x = 0
}

/* ---- the steps of a thread ------------------------------------------------ */

/* The hot path: the allocation is covered by spare (CAS), made live. */
inline alloc_fast(t, r, a) {
  spare[r] = spare[r] - a;
  live[r] = live[r] + a;
  tl[t] = tl[t] + a;
  note_real(r);
  check()
}

/* hmb__ledger_borrow() + hmb__wait() up to the first sleep: take all
 * spare, queue the deficit, serve from own spare, dispatch. */
inline borrow_begin(t, r, a) {
  d_t = spare[r];
  spare[r] = 0;
  enqueue_bor(t, KBORROW, a - d_t, d_t);
  d_t = 0;
  serve_own(r);
  dispatch();
  check()
}

/* The thread has left its wait (hmb__wait returned). */
inline end_wait(t) {
  wk[t] = KNONE; wres[t] = PEND; wneed[t] = 0; wlocal[t] = 0;
#ifdef ALLOCFAIL
  gbytes[t] = 0; gbey[t] = 0;
#endif
#ifdef PRESSURE
  wpress[t] = P_NONE;
#endif
  skip
}

/* The end of a borrow wait: granted (made live), or failed (own spare
 * back); -DALLOCFAIL: granted but the physical allocation fails. */
inline borrow_end(t, r, a) {
  do
  :: d_step { wres[t] == OK ->
      assert(wlocal[t] == a);
      live[r] = live[r] + a;
      tl[t] = tl[t] + a;
      end_wait(t);
      check() };
    break
#ifdef ALLOCFAIL
  :: d_step { wres[t] == OK && gbytes[t] > 0 ->
      /* hmb__ledger_unborrow(): the grant's units back; of its beyond,
       * what is still there (a return of another thread may have repaid
       * some), from beyond_stopped too if the runner stopped meanwhile */
      held = held - gbytes[t];
      held_r[r] = held_r[r] - gbytes[t];
      d_t = (beyond[r] < gbey[t] -> beyond[r] : gbey[t]);
      beyond[r] = beyond[r] - d_t;
      if
      :: st[r] != RUNNING -> beyond_stopped = beyond_stopped - d_t
      :: else -> skip
      fi;
      d_t = 0;
      wlocal[t] = wlocal[t] - gbytes[t];
      gbytes[t] = 0; gbey[t] = 0;
      wres[t] = ELIMIT; /* now only a failure to clean up */
      dispatch();
      check() };
    d_step { put_back(t, r, wlocal[t]);
      end_wait(t);
      check() };
    break
#endif
  :: d_step { wres[t] == ELIMIT || wres[t] == ECANCELED ->
      put_back(t, r, wlocal[t]);
      end_wait(t);
      check() };
    break
#ifdef PRESSURE
  /* Asked to run the pressure handlers (outside the lock): they may give
   * back any runner's spare (try-free), or free nothing; then the request
   * is decided again; the thread goes back to its wait. */
  :: d_step { wres[t] == PEND && wpress[t] == P_DUE -> pressure_done(t) }
  :: d_step { wres[t] == PEND && wpress[t] == P_DUE && spare[0] > 0 ->
      try_free(0, MAXLIVE + LIMIT) };
    d_step { pressure_done(t) }
  :: d_step { wres[t] == PEND && wpress[t] == P_DUE && spare[1] > 0 ->
      try_free(1, MAXLIVE + LIMIT) };
    d_step { pressure_done(t) }
  :: d_step { NR > 2 && wres[t] == PEND && wpress[t] == P_DUE &&
              spare[2] > 0 -> try_free(2, MAXLIVE + LIMIT) };
    d_step { pressure_done(t) }
#endif
#ifdef TIMEOUTS
  :: d_step { (wres[t] == PEND
#ifdef PRESSURE
               && wpress[t] != P_DUE /* not while running the handlers */
#endif
              ) -> /* timed out: leave, dispatch */
      remove_locked(t);
      dispatch();
      put_back(t, r, wlocal[t]);
      end_wait(t);
      check() };
    break
#endif
  od
}

#ifdef PRESSURE
inline pressure_done(t) {
  wpress[t] = P_DONE;
  dispatch();
  check()
}
#endif

/* A close of one unit of thread t's buffers of runner r. Lock-free:
 * hmb__ledger_freed_counted(), one CAS that makes the unit spare (and
 * uncounts the buffer), unless the word is marked (queued, stopped, or
 * trim: the runner holds beyond the limit or exceeds a declared need);
 * then the unit is carried
 * (pend = GB_FREE, fx) to the locked part, give_back_end(). Marked
 * stopped: returned to the pool at once (under the lock). */
inline free_begin(t, r, pend) {
  live[r]--;
  tl[t]--;
  if
  :: fstop[r] ->
    held_sub(r, 1);
    dispatch()
  :: else ->
    if
    :: fqueued[r] || beyond[r] > 0 -> pend = GB_FREE; fx[t] = 1
#ifdef NEED
    :: !fqueued[r] && beyond[r] == 0 && dneed[r] != NONE &&
       st[r] == RUNNING && held_r[r] > dneed[r] -> pend = GB_FREE; fx[t] = 1
#endif
    :: else -> spare[r]++
    fi
  fi;
  check()
}

/* The locked part of a give-back of the fx[t] units thread t carries:
 * hmb__ledger_freed_slow() after a close (GB_FREE), the locked part of
 * hmb__spare_put_back() after a failed borrow (GB_PUT). Stopped
 * meanwhile: the units go back to the pool. Else: they become spare, own
 * borrows are served, spare beyond the limit goes back to the pool, and
 * (a close only) the runner is trimmed to its declared need; then
 * dispatch. */
inline give_back_end(t, r) {
  if
  :: st[r] >= RETURNING ->
    held_sub(r, fx[t])
  :: else ->
    spare[r] = spare[r] + fx[t];
    serve_own(r);
    beyond_back(r)
#ifdef NEED
    ;
    if
    :: flk[t] == GB_FREE && dneed[r] != NONE && st[r] == RUNNING &&
       held_r[r] > dneed[r] ->
      d_t = held_r[r] - dneed[r];
      d_t = (d_t < spare[r] -> d_t : spare[r]);
      spare[r] = spare[r] - d_t;
      held_sub(r, d_t);
      d_t = 0
    :: else -> skip
    fi
#endif
  fi;
  fx[t] = 0;
  flk[t] = 0;
  dispatch();
  check()
}

/* hmb__ledger_try_free(): up to x units of spare back. */
inline try_free(r, x) {
  d_t = (x < spare[r] -> x : spare[r]);
  spare[r] = spare[r] - d_t;
  held_sub(r, d_t);
  d_t = 0;
  dispatch();
  check()
}

/* ---- a runner slot: one runner (task) after another ----------------------- */

proctype runner(byte me) {
  byte e;   /* its estimate: what start (or grow, staged) asks for */
  byte a;   /* the allocation being made */

  do
  :: /* a new runner: CREATED, holding nothing */
    if
    :: e = 0       /* too small: every unit is borrowed */
    :: e = 1       /* too small */
    :: e = LIMIT + 1 /* too large: more than the limit */
    fi;
#ifdef NEED
    if
    :: skip
    :: dneed[me] = 1 /* declared before start: caps what start asks */
    fi;
#endif
start:
    /* hmb__ledger_start() + hmb__wait(): queue the start, dispatch */
    if
    :: d_step { true ->
#ifdef NEED
        d_b = (dneed[me] != NONE && dneed[me] < e -> dneed[me] : e);
        enqueue_start(me, d_b); /* a declared need caps the start */
        d_b = 0;
#else
        enqueue_start(me, e);
#endif
#ifndef STAGED
        e = 0; /* not needed any more */
#endif
        dispatch(); check() }
#ifdef STAGED
    :: d_step { e > 1 -> enqueue_start(me, 1); dispatch(); check() }
       /* a first piece; grows to e later */
#endif
    fi;
    if
    :: d_step { wres[me] == OK ->
        wk[me] = KNONE; wres[me] = PEND; wneed[me] = 0; check() }
    :: d_step { wres[me] == ECANCELED ->
        wk[me] = KNONE; wres[me] = PEND; wneed[me] = 0; check() }
#ifdef TIMEOUTS
    :: d_step { wres[me] == PEND -> /* timed out: leave, dispatch */
        remove_locked(me);
        wk[me] = KNONE; wneed[me] = 0;
        if
        :: st[me] == WAITING -> st[me] = CREATED
        :: else -> skip
        fi;
        dispatch();
        check() };
      if
      :: goto start /* retried: keeps its ticket */
      :: d_step { /* given up: the runner is destroyed */
          tord_remove(me);
          st[me] = CREATED;
#ifdef NEED
          dneed[me] = NONE;
#endif
          FORGET_MOST(me);
          check() };
        goto next
      fi
#endif
    fi;

    /* RUNNING (or CANCELLED): until finish */
    do
    :: d_step { !flk[me] && st[me] == RUNNING && live[me] + 1 <= MAXLIVE &&
                spare[me] >= 1 -> alloc_fast(me, me, 1) }
    :: d_step { !flk[me] && st[me] == RUNNING && live[me] + 2 <= MAXLIVE &&
                spare[me] >= 2 -> alloc_fast(me, me, 2) }
    :: d_step { !flk[me] && st[me] == RUNNING && live[me] + 1 <= MAXLIVE &&
                spare[me] < 1 -> a = 1; borrow_begin(me, me, 1) };
      borrow_end(me, me, a);
      a = 0
    :: d_step { !flk[me] && st[me] == RUNNING && live[me] + 2 <= MAXLIVE &&
                spare[me] < 2 -> a = 2; borrow_begin(me, me, 2) };
      borrow_end(me, me, a);
      a = 0
    :: d_step { !flk[me] && tl[me] > 0 -> free_begin(me, me, flk[me]) }
    :: d_step { flk[me] -> give_back_end(me, me) }
    :: d_step { !flk[me] && spare[me] > 0 -> try_free(me, MAXLIVE + LIMIT) }
#ifdef NEED
    :: d_step { !flk[me] && spare[me] > 1 -> try_free(me, 1) }
    :: d_step { !flk[me] && st[me] == RUNNING -> /* set-need to the live units */
        dneed[me] = live[me];
        d_t = (held_r[me] > live[me] -> held_r[me] - live[me] : 0);
        d_t = (d_t < spare[me] -> d_t : spare[me]);
        spare[me] = spare[me] - d_t;
        held_sub(me, d_t);
        d_t = 0;
        dispatch();
        check() }
#endif
#ifdef STAGED
    :: d_step { !flk[me] && st[me] == RUNNING && held_r[me] < e -> /* grow */
        enqueue_bor(me, KGROW, e - held_r[me], 0);
        dispatch();
        check() };
      if
      :: d_step { wres[me] == OK || wres[me] == ECANCELED ->
          end_wait(me); check() }
#ifdef TIMEOUTS
      :: d_step { wres[me] == PEND ->
          remove_locked(me); end_wait(me);
          dispatch(); check() }
#endif
      fi
#endif
    :: d_step { !flk[me] && nwait[me] == 0 &&
                (st[me] == RUNNING || st[me] == CANCELLED) ->
        /* hmb__ledger_finish(): stop running, spare back, dispatch */
        stop_running(me, RETURNING);
#if MUT != 8
        fstop[me] = 1; /* with the drain (hmb__spare_take_all()) */
#endif
        d_t = spare[me];
        spare[me] = 0;
        held_sub(me, d_t);
        d_t = 0;
        dispatch();
        check() };
      break
    od;

    /* Stopped: each close returns its units to the pool. */
    do
    :: d_step { tl[me] > 0 -> free_begin(me, me, flk[me]); assert(!flk[me]) }
#ifdef OUTLIVE
    :: d_step { (tl[me] > 0 && gheld[me] == 0
#ifdef HELPER
                 && (me != 0 || (tl[HT] == 0 && wk[HT] == KNONE && !flk[HT]))
#endif
                ) -> /* its buffers outlive it: the next runner starts now */
        assert(held_r[me] == live[me] && spare[me] == 0);
        gheld[me] = held_r[me];
        gbeyond[me] = beyond[me];
        held_r[me] = 0; beyond[me] = 0; live[me] = 0; tl[me] = 0;
        st[me] = CREATED;
        fstop[me] = 0; /* the next runner's words */
        tord_remove(me);
#ifdef NEED
        dneed[me] = NONE;
#endif
        FORGET_MOST(me);
        check() };
      break
#endif
    :: d_step { (tl[me] == 0 && held_r[me] == 0
#ifdef HELPER
                 && (me != 0 || (tl[HT] == 0 && wk[HT] == KNONE && !flk[HT]))
#endif
                ) -> /* the runner is gone; the slot takes the next one */
        assert(live[me] == 0 && beyond[me] == 0 && spare[me] == 0);
        st[me] = CREATED;
        fstop[me] = 0; /* the next runner's words */
        tord_remove(me);
#ifdef NEED
        dneed[me] = NONE;
#endif
        FORGET_MOST(me);
        check() };
      break
    od;
next:
    skip
  od
}

#ifdef HELPER
/* The second thread of runner slot 0: allocates 1 unit and closes its own
 * buffers while the runner runs; closes the rest after it stops. */
proctype helper() {
  byte a;
end:
  do
  :: d_step { !flk[HT] && st[0] == RUNNING && live[0] + 1 <= MAXLIVE &&
              spare[0] >= 1 -> alloc_fast(HT, 0, 1) }
  :: d_step { !flk[HT] && st[0] == RUNNING && live[0] + 1 <= MAXLIVE &&
              spare[0] < 1 -> a = 1; borrow_begin(HT, 0, 1) };
    borrow_end(HT, 0, a);
    a = 0
  :: d_step { !flk[HT] && tl[HT] > 0 -> free_begin(HT, 0, flk[HT]) }
  :: d_step { flk[HT] -> give_back_end(HT, 0) }
  od
}
#endif

#ifdef CANCEL
/* hmb__ledger_cancel() from another thread: fail every queued request of
 * the runner, stop it running (it keeps its budget until finish). */
inline cancel(r) {
  d_u = 0;
  do
  :: d_u < NT ->
    if
    :: RUN(d_u) == r && wk[d_u] != KNONE && wres[d_u] == PEND ->
      remove_locked(d_u);
      wres[d_u] = ECANCELED
    :: else -> skip
    fi;
    d_u++
  :: else -> break
  od;
  d_u = 0;
  stop_running(r, CANCELLED);
  dispatch();
  check()
}

active proctype canceller() {
end:
  do
  :: d_step { st[0] == WAITING || st[0] == RUNNING -> cancel(0) }
  :: d_step { st[1] == WAITING || st[1] == RUNNING -> cancel(1) }
  :: d_step { NR > 2 && (st[2] == WAITING || st[2] == RUNNING) -> cancel(2) }
  :: d_step { NR > 3 && (st[3] == WAITING || st[3] == RUNNING) -> cancel(3) }
  od
}
#endif

#ifdef OUTLIVE
/* Whoever holds the buffers that outlived their runner closes them, one
 * unit at a time: held_sub() of a stopped account, dispatch. */
inline ghost_close(r) {
  gheld[r]--;
  held--;
  if
  :: gbeyond[r] > 0 -> gbeyond[r]--; beyond_stopped--
  :: else -> skip
  fi;
  dispatch();
  check()
}

active proctype closer() {
end:
  do
  :: d_step { gheld[0] > 0 -> ghost_close(0) }
  :: d_step { gheld[1] > 0 -> ghost_close(1) }
  :: d_step { NR > 2 && gheld[2] > 0 -> ghost_close(2) }
  :: d_step { NR > 3 && gheld[3] > 0 -> ghost_close(3) }
  od
}
#endif

init {
  byte i;
  atomic {
    i = 0;
    do
    :: i < NR -> run runner(i); i++
    :: else -> break
    od;
#ifdef HELPER
    run helper();
#endif
    i = 0
  }
}
