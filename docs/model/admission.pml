/*
 * admission.pml - a Promela model of the pool's admission protocol.
 *
 * What is modelled (src/pool.c, src/runner.c; see README.md for the map):
 *   - NR runners, each one scan task after another, forever: start (acquire
 *     its estimate; may time out and retry), run (allocate within its spare
 *     budget, or borrow exactly the deficit and wait; the borrow may time
 *     out), free buffers (the budget stays with the running runner), give
 *     unused budget back early (try-free), finish (the over-claim goes back
 *     at once), then close its remaining buffers (each close returns its
 *     bytes to the pool).
 *   - One dispatcher, run after every change as the C code does under the
 *     pool lock, with the C rules in the C order:
 *       1. the head borrower is granted if it fits, or - when every running
 *          runner is waiting to borrow (counted in runners) - beyond the
 *          limit;
 *       2. while a borrower waits, no acquirer is granted;
 *       3. the head acquirer is granted if it fits, or - when no runner is
 *          running - beyond the limit; otherwise it blocks the queue.
 *   Bytes are abstracted to small units; estimates include one larger than
 *   the limit so that the idle over-commit path is exercised.
 *
 * What is checked (spin -a; cc -DSAFETY; ./pan):
 *   - no invalid end state: the runners loop forever, so any state in which
 *     every process is blocked is a deadlock and is reported. Waits block
 *     until granted (no timeouts: the C default for borrows, and the worst
 *     case for starts), so progress must come from the rules alone. With
 *     -DTIMEOUTS both waits may also give up at any moment (the executor's
 *     retry path), which adds interleavings for the assertions;
 *   - assertions at every grant (the over-commit bound), written against
 *     the runners' own states, not the dispatcher's counters:
 *       a start is granted beyond the limit only if no runner is running;
 *       a borrow is granted beyond the limit only if every running runner
 *       is waiting to borrow;
 *   - assertions after every step: budget conservation (pool held == sum of
 *     runner held), live <= held for every runner, the running and
 *     borrowing counters equal what the runner states say, and the pool is
 *     never over-committed by more than what those two rules allow.
 */

#ifndef NR
#define NR 3 /* runners */
#endif
#define LIMIT 4   /* pool limit, in units */
#define MAXLIVE 3 /* live units a runner may hold (bounds the state space) */

/* runner states */
mtype = { CREATED, WAIT_START, RUNNING, BORROWING, FINISHED };

mtype st[NR];
byte held_r[NR]; /* budget held by the runner */
byte live[NR];   /* units of its live buffers */
byte need[NR];   /* the request it waits for */
bool granted[NR];

byte held;        /* pool: budget held by all runners */
byte running;     /* runners RUNNING or BORROWING */
byte bor_runners; /* runners waiting to borrow */
chan bq = [NR] of { byte }; /* borrowers, FIFO */
chan aq = [NR] of { byte }; /* acquirers, arrival order */

/* ---- properties ---------------------------------------------------------- */

/* Counters agree with the runner states; budget is conserved. */
inline check_books() {
  d_step {
    k_ = 0; sum_ = 0; run_ = 0; bor_ = 0;
    do
    :: k_ < NR ->
      assert(live[k_] <= held_r[k_]);
      sum_ = sum_ + held_r[k_];
      if
      :: st[k_] == RUNNING -> run_++
      :: st[k_] == BORROWING -> run_++; bor_++
      :: else -> skip
      fi;
      k_++
    :: else -> break
    od;
    assert(held == sum_);
    assert(running == run_);
    assert(bor_runners == bor_);
    k_ = 0; sum_ = 0; run_ = 0; bor_ = 0
  }
}

/* Over-commit bound, from the runner states only. */
inline assert_may_overcommit_start() {
  k = 0;
  do
  :: k < NR -> assert(st[k] != RUNNING && st[k] != BORROWING); k++
  :: else -> break
  od
}

inline assert_may_overcommit_borrow() {
  k = 0;
  do
  :: k < NR -> assert(st[k] != RUNNING); k++ /* running => borrowing */
  :: else -> break
  od
}

/* ---- the dispatcher: hmb__pool_dispatch_locked() ------------------------- */

inline grant_borrow(w) {
  bq?w;
  held = held + need[w];
  held_r[w] = held_r[w] + need[w];
  bor_runners--; /* one borrow per runner here: it stops waiting */
  st[w] = RUNNING;
  need[w] = 0;
  granted[w] = true
}

inline grant_start(w) {
  aq?w;
  held = held + need[w];
  held_r[w] = held_r[w] + need[w];
  running++;
  st[w] = RUNNING;
  need[w] = 0;
  granted[w] = true
}

inline dispatch() {
  do
  :: nempty(bq) ->
    bq?<w>;
    if
    :: held + need[w] <= LIMIT -> grant_borrow(w)
    :: held + need[w] > LIMIT && bor_runners >= running ->
      assert_may_overcommit_borrow();
      grant_borrow(w)
    :: else -> break
    fi
  :: empty(bq) -> break
  od;
  if
  :: nempty(bq) -> skip /* borrowers first */
  :: empty(bq) ->
    do
    :: nempty(aq) ->
      aq?<w>;
      if
      :: held + need[w] <= LIMIT -> grant_start(w)
      :: held + need[w] > LIMIT && running == 0 ->
        assert_may_overcommit_start();
        grant_start(w)
      :: else -> break /* head-of-line */
      fi
    :: empty(aq) -> break
    od
  fi;
  w = 0;
  k = 0
}

/* ---- a runner: one task after another ------------------------------------ */

proctype runner(byte me) {
  byte a, s;
  byte w, k;               /* dispatcher scratch */
  byte k_, sum_, run_, bor_; /* check_books scratch */

  do
  :: /* hmb_runner_start(): queue the estimate and dispatch */
    atomic {
      if
      :: need[me] = 1
      :: need[me] = 2
      :: need[me] = LIMIT + 1 /* only fits by the idle over-commit */
      fi;
      st[me] = WAIT_START;
      aq!me;
      dispatch()
    };
    if
    :: atomic { granted[me] -> granted[me] = false }
#ifdef TIMEOUTS
    :: atomic { /* timed out: leave the queue; nothing was taken */
        !granted[me] && st[me] == WAIT_START ->
        aq??eval(me);
        need[me] = 0;
        st[me] = CREATED;
        dispatch()
      };
      goto next
#endif
    fi;
    check_books();

    /* RUNNING: allocate, borrow, free, give back, until finish. */
    do
    :: atomic { /* allocate a in {1,2}; the hot path if spare covers it */
        live[me] < MAXLIVE ->
        if
        :: a = 1
        :: live[me] + 2 <= MAXLIVE -> a = 2
        fi;
        s = held_r[me] - live[me];
        if
        :: s >= a -> live[me] = live[me] + a; a = 0; s = 0
        :: else -> /* borrow exactly the deficit */
          need[me] = a - s;
          s = 0;
          st[me] = BORROWING;
          bor_runners++;
          bq!me;
          dispatch()
        fi
      };
      if
      :: a == 0 -> skip
      :: a > 0 ->
        if
        :: atomic { granted[me] -> granted[me] = false;
                    live[me] = live[me] + a; a = 0 }
#ifdef TIMEOUTS
        :: atomic { /* borrow timed out: its spare stays */
            !granted[me] && st[me] == BORROWING ->
            bq??eval(me);
            bor_runners--;
            need[me] = 0;
            st[me] = RUNNING;
            a = 0;
            dispatch()
          }
#endif
        fi
      fi;
      check_books()
    :: atomic { /* close a buffer while running: budget stays as spare */
        live[me] > 0 -> live[me]--
      };
      check_books()
    :: atomic { /* try-free / set-need: give the spare back now */
        held_r[me] > live[me] ->
        held = held - (held_r[me] - live[me]);
        held_r[me] = live[me];
        dispatch()
      };
      check_books()
    :: atomic { /* hmb_runner_finish(): over-claim back, stop running */
        running--;
        st[me] = FINISHED;
        held = held - (held_r[me] - live[me]);
        held_r[me] = live[me];
        dispatch()
      };
      break
    od;
    check_books();

    /* Finished: each close returns its bytes to the pool at once. */
    do
    :: atomic {
        live[me] > 0 ->
        live[me]--;
        held_r[me]--;
        held--;
        dispatch()
      }
    :: atomic { live[me] == 0 -> st[me] = CREATED; break }
    od;
    check_books();
next:
    skip
  od
}

init {
  byte i;
  atomic {
    i = 0;
    do
    :: i < NR -> st[i] = CREATED; run runner(i); i++
    :: else -> break
    od
  }
}
