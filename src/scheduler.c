/* scheduler.c - the worker pool: per-worker queues with stealing, parking
 * without lost wake-ups, and nested blocking that never deadlocks.
 *
 * Queues: each worker owns a deque (a ray__lock_t, thread.h, and an
 * intrusive list). Work a
 * worker submits goes to its own tail and it pops its tail (LIFO: a task
 * that waits on the children it just submitted finds them first, which keeps
 * nesting shallow). Host threads push round-robin at the heads, so the
 * owner still takes host work oldest first. Idle workers steal from the
 * other queues' heads. ADR-002 has the measurements behind this choice.
 *
 * A worker is in one of four states: running a runnable, spinning (looking
 * for work before it parks: counted in `spinning`), idle (parked for want of
 * work: counted in `idle`, `can_help` set) or blocked (parked inside
 * ray_get/ray_wait: counted in `blocked`). Spares are workers started for
 * blocked ones; they retire after RAY__RETIRE_NS idle.
 *
 * The invariant that keeps the pool live (no queued runnable is ever left
 * with nobody to run it):
 *   (I1) every worker counted in nworkers has its queue scanned by the
 *        others: a worker's slot and nworkers are published before its
 *        thread starts, so its first push is already visible to every
 *        idle worker's re-check;
 *   (I2) a push is followed by a wake of an idle worker unless a worker is
 *        spinning (it will look) or none is idle (all others are running
 *        and will look when they finish, or blocked: see I3); a parking
 *        worker re-checks every queue after publishing `sleeping`, so a
 *        wake that finds nobody asleep is never needed;
 *   (I3) a worker that blocks first counts itself in `blocked`, then wakes
 *        an idle worker if there is one, else starts a spare: the CPU it
 *        gives up goes to someone who will look at the queues;
 *   (I4) a spare retires only if at least one other unblocked worker
 *        remains, decided under spawn_mu after it has left `idle`; the
 *        blocker increments `blocked` before it reads `idle`, the retiring
 *        spare decrements `idle` before it reads `blocked` (sequentially
 *        consistent), so they never both miss each other.
 * Together: while any worker is blocked, some unblocked worker exists, and
 * any queued runnable is either seen by a running or spinning worker or
 * causes a wake of an idle one.
 *
 * Nested blocking: a worker that blocks in ray_get/ray_wait first runs,
 * inline, the children the blocked task pushed that are still queued here
 * (LIFO: the ones it just submitted), up to a nesting depth. Nothing else
 * runs on its stack: unrelated work might wait on the blocked task's own
 * results and could then never return. Then I3 applies (at most
 * RAY__MAX_SPARES spares). A retired spare's struct is kept for the next
 * spare, so a thief still holding the pointer reads an empty queue, never
 * freed memory. Host threads push only to the base workers, so a spare's
 * queue holds only what it pushed itself and is empty when it retires.
 *
 * Layering: the pool sits below the store, the timeline and the runtime
 * (scripts/layers.txt) and calls none of them. Each worker's record of what
 * it ran belongs to the timeline: the worker holds only an opaque pointer,
 * made and freed through the functions the runtime passed to
 * ray__sched_start. The one timeout-to-deadline conversion, ray__sched_deadline,
 * lives here with the sleepers that take deadlines; the one bounded
 * condition wait is thread.c's ray__thread_cond_wait_until.
 *
 * Lock order: a worker's queue lock and a parker's mutex are leaves; a
 * push may happen under a shard lock. spawn_mu is taken alone (its condition
 * variable announces retirements to ray__sched_quiesce), except that
 * ray__sched_foreach calls its function under it (the timeline and metrics
 * take a record's mutex there). */
#include "scheduler.h"

#include <sched.h>

/* Only the layers below: the runtime, the timeline and the rest stay out. */
#include "alloc.h"
#include "guard.h"
#include "hook.h"
#include "rustyray.h"
#include "thread.h"

enum { RAY__MAX_NESTING = 64, RAY__MAX_SPARES = 1024, RAY__MAX_HOST_NESTING = 16 };
#define RAY__RETIRE_NS 20000000u

struct ray__worker_s {
  ray__sched_t *sched;
  atomic_uint index; /* slot in the array (moves when a spare retires): a hint */
  uv_thread_t thread;
  ray__parker_t park;
  ray__lock_t qmu;
  ray__runnable_t q; /* sentinel: q.next is the head (oldest), q.prev the tail */
  atomic_size_t qlen;
  atomic_bool can_help; /* parked, and would run work if woken */
  atomic_bool linger;   /* a spare kept from retiring by blocked workers (I4) */
  int depth;            /* nesting of helped runnables (owner thread only) */
  bool spare;           /* started for a blocked worker; may retire */
  bool started;         /* its thread was created and not yet joined (spawn_mu) */
  ray__worker_t *next_retired;
  struct ray__obs_s *obs; /* what ran here (the timeline's, made by rec_ops) */
};

static _Thread_local ray__worker_t *tls_worker RAY__TLS_FAST;

static _Thread_local ray__runnable_t *tls_running RAY__TLS_FAST; /* what this thread runs now */

/* Slots change under spawn_mu while thieves read them: atomic pointers. */
static inline ray__worker_t *slot_get(ray__sched_t *s, unsigned i) {
  return atomic_load_explicit(&s->workers[i], memory_order_acquire);
}

static inline void slot_set(ray__sched_t *s, unsigned i, ray__worker_t *w) {
  atomic_store_explicit(&s->workers[i], w, memory_order_release);
}
static _Thread_local ray__parker_t tls_parker;
static _Thread_local bool tls_parker_ready;

/* ---- Parking ---- */

static int parker_init(ray__parker_t *p) {
  atomic_init(&p->sleeping, 0);
  if (uv_mutex_init(&p->mu) != 0) return RAY_ENOMEM;
  if (uv_cond_init(&p->cv) != 0) {
    uv_mutex_destroy(&p->mu);
    return RAY_ENOMEM;
  }
  return 0;
}

static void parker_destroy(ray__parker_t *p) {
  uv_cond_destroy(&p->cv);
  uv_mutex_destroy(&p->mu);
}

void ray__parker_wake(ray__parker_t *p) {
  if (atomic_load(&p->sleeping)) {
    uv_mutex_lock(&p->mu);
    uv_cond_signal(&p->cv);
    uv_mutex_unlock(&p->mu);
  }
}

void ray__parker_sleep(ray__parker_t *p, bool (*done)(void *arg), void *arg, uint64_t deadline) {
  uv_mutex_lock(&p->mu);
  atomic_store(&p->sleeping, 1);
  if (!done(arg)) {
    if (deadline == UINT64_MAX) {
      uv_cond_wait(&p->cv, &p->mu);
    } else {
      uint64_t now = uv_hrtime();
      if (now < deadline) uv_cond_timedwait(&p->cv, &p->mu, deadline - now);
    }
  }
  atomic_store(&p->sleeping, 0);
  uv_mutex_unlock(&p->mu);
}

/* Saturating: a timeout whose deadline lies beyond RAY__DEADLINE_MAX ns of
 * uptime (292 years) is forever, never a product that wraps into the past.
 * The cap also keeps `deadline - now`, which the sleepers hand to
 * uv_cond_timedwait (it adds the clock again), far from overflowing. */
#define RAY__DEADLINE_MAX ((uint64_t)INT64_MAX)

uint64_t ray__sched_deadline(int64_t timeout_ms) {
  if (timeout_ms < 0) return UINT64_MAX;
  uint64_t now = uv_hrtime();
  if (now >= RAY__DEADLINE_MAX || (uint64_t)timeout_ms > (RAY__DEADLINE_MAX - now) / 1000000u)
    return UINT64_MAX;
  return now + (uint64_t)timeout_ms * 1000000u;
}

ray__parker_t *ray__parker_self(void) {
  if (tls_worker != NULL) return &tls_worker->park;
  if (!tls_parker_ready) {
    /* Host threads keep theirs for the thread's life: it owns no heap. */
    if (parker_init(&tls_parker) != 0) return NULL;
    tls_parker_ready = true;
  }
  return &tls_parker;
}

/* ---- Queues ---- */

static void q_insert(ray__runnable_t *after, ray__runnable_t *r) {
  r->prev = after;
  r->next = after->next;
  after->next->prev = r;
  after->next = r;
}

static ray__runnable_t *q_remove(ray__runnable_t *r) {
  r->prev->next = r->next;
  r->next->prev = r->prev;
  r->next = r->prev = NULL;
  atomic_store_explicit(&r->queue, NULL, memory_order_relaxed);
  return r;
}

/* Pop from the tail (owner) or the head (thieves). */
static ray__runnable_t *q_pop(ray__worker_t *w, bool tail) {
  if (atomic_load_explicit(&w->qlen, memory_order_relaxed) == 0) return NULL;
  ray__runnable_t *r = NULL;
  ray__lock(&w->qmu);
  ray__runnable_t *end = tail ? w->q.prev : w->q.next;
  if (end != &w->q) {
    r = q_remove(end);
    atomic_fetch_sub(&w->qlen, 1);
  }
  ray__unlock(&w->qmu);
  return r;
}

static ray__runnable_t *find_work(ray__worker_t *w) {
  ray__runnable_t *r = q_pop(w, true);
  if (r != NULL) return r;
  ray__sched_t *s = w->sched;
  unsigned n = atomic_load_explicit(&s->nworkers, memory_order_acquire);
  for (unsigned k = 1; k < n; k++) {
    ray__worker_t *v = slot_get(s, (atomic_load_explicit(&w->index, memory_order_relaxed) + k) % n);
    if ((r = q_pop(v, false)) != NULL) return r;
  }
  return NULL;
}

/* Whether any queue has work (a cheap hint). */
static bool has_work(ray__sched_t *s) {
  unsigned n = atomic_load_explicit(&s->nworkers, memory_order_acquire);
  for (unsigned i = 0; i < n; i++)
    if (atomic_load(&slot_get(s, i)->qlen) > 0) return true;
  return false;
}

/* After a push: wake one parked worker that can run it, unless a spinning
 * worker will find it anyway. */
static void wake_for_work(ray__sched_t *s, ray__worker_t *target) {
  if (atomic_load(&s->spinning) > 0 || atomic_load(&s->idle) == 0) return;
  if (atomic_load(&target->can_help) && atomic_load(&target->park.sleeping)) {
    ray__parker_wake(&target->park);
    return;
  }
  unsigned n = atomic_load_explicit(&s->nworkers, memory_order_acquire);
  for (unsigned i = 0; i < n; i++) {
    ray__worker_t *w = slot_get(s, i);
    if (atomic_load(&w->can_help) && atomic_load(&w->park.sleeping)) {
      ray__parker_wake(&w->park);
      return;
    }
  }
}

/* Host threads hand their submissions to the base workers in turn, each
 * thread with its own cursor (a shared one was an atomic add on a line
 * every push and every worker touched). A thread's cursor starts where the
 * previous thread's did plus one, so host threads submitting at the same
 * pace do not all start at worker 0 and stay on one queue together. */
static atomic_uint next_host_start;
static _Thread_local unsigned tls_next_rr RAY__TLS_FAST;
static _Thread_local bool tls_next_rr_set RAY__TLS_FAST;

static unsigned host_next(const ray__sched_t *s) {
  if (!tls_next_rr_set) {
    tls_next_rr = atomic_fetch_add_explicit(&next_host_start, 1, memory_order_relaxed);
    tls_next_rr_set = true;
  }
  unsigned i = tls_next_rr;
  if (i >= s->base_workers) i %= s->base_workers; /* a new thread, or fewer workers */
  tls_next_rr = i + 1;
  return i;
}

static void push(ray__sched_t *s, ray__runnable_t *r, bool yield) {
  ray__worker_t *w = tls_worker;
  bool own = w != NULL && w->sched == s;
  if (!own) /* base workers only: see the retirement rule above */
    w = slot_get(s, host_next(s));
  r->parent = own && !yield ? tls_running : NULL;
  ray__lock(&w->qmu);
  atomic_store_explicit(&r->queue, w, memory_order_relaxed);
  /* Own: at the tail (next to run), unless yielding; host: at the head. */
  q_insert(own && !yield ? w->q.prev : &w->q, r);
  atomic_fetch_add(&w->qlen, 1);
  ray__unlock(&w->qmu);
  wake_for_work(s, w);
}

void ray__sched_push(ray__sched_t *s, ray__runnable_t *r) {
  push(s, r, false);
}

void ray__sched_yield(ray__sched_t *s, ray__runnable_t *r) {
  push(s, r, true);
}

/* ---- Workers ---- */

ray__worker_t *ray__worker_self(void) {
  return tls_worker;
}

bool ray__sched_running_here(void) {
  return tls_running != NULL;
}

static bool idle_done(void *arg) {
  ray__worker_t *w = arg;
  return atomic_load(&w->sched->stop) || has_work(w->sched);
}

static bool linger_done(void *arg) {
  ray__worker_t *w = arg;
  return idle_done(w) || !atomic_load(&w->linger);
}

/* Spin up to the configured spin_ns for work to appear; yields the CPU now
 * and then so a spinner never starves the thread that would produce the
 * work. */
static bool spin_for_work(ray__worker_t *w) {
  uint64_t until = uv_hrtime() + w->sched->spin_ns;
  for (unsigned i = 1;; i++) {
    if (idle_done(w)) return true;
    ray__cpu_relax();
    if ((i & 63) == 0) {
      if (uv_hrtime() >= until) return false;
      sched_yield();
    }
  }
}

/* Take an idle spare out of the array (its thread then ends), unless that
 * would leave blocked workers with nobody unblocked (I4): then it lingers.
 * The caller has left `idle` already. */
static bool retire(ray__worker_t *w) {
  ray__sched_t *s = w->sched;
  bool done = false;
  uv_mutex_lock(&s->spawn_mu);
  unsigned n = atomic_load(&s->nworkers);
  /* Linger first, then read `blocked`: ray__sched_block_end decrements
   * `blocked` before it reads `lingering`, so a blocked worker that leaves
   * meanwhile either is not counted here or sees us and wakes us. */
  if (!atomic_exchange(&w->linger, true)) atomic_fetch_add(&s->lingering, 1);
  int others_unblocked = (int)n - 1 - atomic_load(&s->blocked);
  if (others_unblocked >= 1 && atomic_exchange(&w->linger, false))
    atomic_fetch_sub(&s->lingering, 1);
  if (others_unblocked >= 1 && !atomic_load(&s->stop) && atomic_load(&w->qlen) == 0 &&
      !has_work(s)) {
    for (unsigned i = s->base_workers; i < n; i++) {
      if (slot_get(s, i) != w) continue;
      ray__worker_t *last = slot_get(s, n - 1);
      slot_set(s, i, last);
      atomic_store_explicit(&last->index, i, memory_order_relaxed);
      atomic_store_explicit(&s->nworkers, n - 1, memory_order_release);
      w->next_retired = s->retired;
      s->retired = w;
      done = true;
      uv_cond_broadcast(&s->spawn_cv); /* ray__sched_quiesce */
      break;
    }
  }
  uv_mutex_unlock(&s->spawn_mu);
  return done;
}

static void worker_main(void *arg) {
  ray__worker_t *w = arg;
  ray__sched_t *s = w->sched;
  tls_worker = w;
  ray__thread_role = RAY__ROLE_WORKER;
  ray__guard_mark_worker();
  for (;;) {
    ray__runnable_t *r = find_work(w);
    if (r != NULL) {
      /* More work than runners awake: bring in a parked worker. */
      if (atomic_load(&s->idle) > 0 && atomic_load(&s->spinning) == 0 && has_work(s))
        wake_for_work(s, w);
      tls_running = r;
      r->run(r);
      tls_running = NULL;
      continue;
    }
    if (atomic_load(&s->stop)) break;
    /* At most max_spinners look at once (a core is left to the host
     * thread that submits); the others park straight away. */
    if (atomic_fetch_add(&s->spinning, 1) < s->max_spinners) {
      bool found = spin_for_work(w);
      atomic_fetch_sub(&s->spinning, 1);
      if (found) continue;
    } else {
      atomic_fetch_sub(&s->spinning, 1);
    }
    atomic_store(&w->can_help, true);
    atomic_fetch_add(&s->idle, 1);
    ray__hook(RAY__AT_IDLE, w);
    if (atomic_load(&s->quiesce_waiters) > 0) { /* after idle++: see ray__sched_quiesce */
      uv_mutex_lock(&s->spawn_mu);
      uv_cond_broadcast(&s->spawn_cv);
      uv_mutex_unlock(&s->spawn_mu);
    }
    /* A lingering spare sleeps until work comes or blocked workers leave
     * (ray__sched_block_end); any other spare wakes to retire. */
    bool lingering = w->spare && atomic_load(&w->linger);
    uint64_t deadline = w->spare && !lingering ? uv_hrtime() + RAY__RETIRE_NS : UINT64_MAX;
    ray__parker_sleep(&w->park, lingering ? linger_done : idle_done, w, deadline);
    atomic_store(&w->can_help, false);
    atomic_fetch_sub(&s->idle, 1);
    if (deadline != UINT64_MAX && uv_hrtime() >= deadline && retire(w)) break;
  }
  tls_worker = NULL;
}

static ray__worker_t *worker_new(ray__sched_t *s, unsigned index) {
  ray__worker_t *w = ray__calloc(1, sizeof *w);
  if (w == NULL) return NULL;
  w->sched = s;
  atomic_init(&w->index, index);
  w->q.next = w->q.prev = &w->q;
  atomic_init(&w->qlen, 0);
  atomic_init(&w->can_help, false);
  ray__lock_init(&w->qmu);
  if (parker_init(&w->park) != 0) goto fail;
  if ((w->obs = s->rec_ops.make(atomic_fetch_add(&s->serials, 1))) == NULL) {
    parker_destroy(&w->park);
    goto fail;
  }
  return w;
fail:
  ray__free(w);
  return NULL;
}

static void worker_free(ray__worker_t *w) {
  w->sched->rec_ops.free(w->obs);
  parker_destroy(&w->park);
  ray__free(w);
}

/* Create and start worker number nworkers (spawn_mu held, or at start).
 * A spare reuses a retired struct when there is one. */
static int worker_add(ray__sched_t *s, bool spare) {
  unsigned n = atomic_load(&s->nworkers);
  ray__worker_t *w = s->retired;
  if (w != NULL) {
    s->retired = w->next_retired;
    if (w->started) ray__thread_join(&w->thread); /* it has left worker_main */
    w->started = false;
    atomic_store(&w->index, n);
  } else if ((w = worker_new(s, n)) == NULL) {
    return RAY_ENOMEM;
  }
  w->spare = spare;
  w->depth = 0;
  atomic_store(&w->linger, false);
  /* I1: counted before its thread runs, so whatever it pushes is seen by
   * every other worker's scan (an idle worker woken by its first push
   * re-checks queues [0, nworkers)). */
  slot_set(s, n, w);
  atomic_store(&s->nworkers, n + 1);
  if (spare) ray__hook(RAY__AT_SPARE_START, w);
  if (ray__thread_create(&w->thread, worker_main, w) != 0) {
    atomic_store(&s->nworkers, n);
    /* A thief may have loaded the pointer meanwhile: keep the struct (its
     * queue is empty) on the retired list rather than free it. */
    w->next_retired = s->retired;
    s->retired = w;
    return RAY_EIO;
  }
  w->started = true;
  if (spare) ray__hook(RAY__AT_SPARE_STARTED, w);
  return 0;
}

int ray__sched_start(ray__sched_t *s, unsigned n, uint64_t spin_ns,
                     const ray__worker_rec_ops_t *rec_ops) {
  s->rec_ops = *rec_ops;
  s->spin_ns = spin_ns;
  unsigned cpus = uv_available_parallelism();
  s->max_spinners = cpus > 1 ? (int)cpus - 1 : 1;
  atomic_init(&s->nworkers, 0);
  atomic_init(&s->idle, 0);
  atomic_init(&s->spinning, 0);
  atomic_init(&s->blocked, 0);
  atomic_init(&s->lingering, 0);
  atomic_init(&s->quiesce_waiters, 0);
  atomic_init(&s->serials, 0);
  atomic_init(&s->stop, false);
  s->base_workers = n;
  s->max_workers = n + RAY__MAX_SPARES;
  s->workers = ray__calloc(s->max_workers, sizeof *s->workers);
  if (s->workers == NULL) return RAY_ENOMEM;
  if (uv_mutex_init(&s->spawn_mu) != 0) {
    ray__free(s->workers);
    return RAY_ENOMEM;
  }
  if (uv_cond_init(&s->spawn_cv) != 0) {
    uv_mutex_destroy(&s->spawn_mu);
    ray__free(s->workers);
    return RAY_ENOMEM;
  }
  /* Workers may steal from any slot below nworkers, so slots fill in order. */
  s->retired = NULL;
  for (unsigned i = 0; i < n; i++) {
    int rc = worker_add(s, false);
    if (rc != 0) {
      ray__sched_join(s); /* undo: the workers started so far */
      ray__sched_free(s);
      return rc;
    }
  }
  return 0;
}

void ray__sched_join(ray__sched_t *s) {
  uv_mutex_lock(&s->spawn_mu); /* no spare starts from now on */
  atomic_store(&s->stop, true);
  uv_mutex_unlock(&s->spawn_mu);
  unsigned n = atomic_load(&s->nworkers);
  for (unsigned i = 0; i < n; i++) {
    ray__parker_t *p = &slot_get(s, i)->park;
    uv_mutex_lock(&p->mu);
    uv_cond_broadcast(&p->cv);
    uv_mutex_unlock(&p->mu);
  }
  for (unsigned i = 0; i < n; i++) ray__thread_join(&slot_get(s, i)->thread);
  for (unsigned i = 0; i < n; i++) {
    ray__worker_t *w = slot_get(s, i);
    ray__runnable_t *r;
    while ((r = q_pop(w, false)) != NULL) r->drop(r);
  }
  for (ray__worker_t *w = s->retired; w != NULL; w = w->next_retired) {
    if (w->started) ray__thread_join(&w->thread); /* their threads have left */
    w->started = false;
  }
}

void ray__sched_free(ray__sched_t *s) {
  unsigned n = atomic_load(&s->nworkers);
  for (unsigned i = 0; i < n; i++) worker_free(slot_get(s, i));
  while (s->retired != NULL) {
    ray__worker_t *w = s->retired;
    s->retired = w->next_retired;
    worker_free(w);
  }
  uv_cond_destroy(&s->spawn_cv);
  uv_mutex_destroy(&s->spawn_mu);
  ray__free(s->workers);
  s->workers = NULL;
  atomic_store(&s->nworkers, 0);
}

/* ---- Nested blocking ---- */

/* The blocked runnable's newest queued child on this worker, popped. */
static ray__runnable_t *pop_child(ray__worker_t *w) {
  ray__runnable_t *cur = tls_running;
  if (cur == NULL || atomic_load_explicit(&w->qlen, memory_order_relaxed) == 0) return NULL;
  ray__runnable_t *r = NULL;
  ray__lock(&w->qmu);
  ray__runnable_t *tail = w->q.prev;
  if (tail != &w->q && tail->parent == cur) {
    r = q_remove(tail);
    atomic_fetch_sub(&w->qlen, 1);
  }
  ray__unlock(&w->qmu);
  return r;
}

bool ray__sched_can_help(ray__worker_t *w) {
  if (w->depth >= RAY__MAX_NESTING || tls_running == NULL || atomic_load(&w->qlen) == 0)
    return false;
  ray__lock(&w->qmu);
  bool yes = w->q.prev != &w->q && w->q.prev->parent == tls_running;
  ray__unlock(&w->qmu);
  return yes;
}

bool ray__sched_help(ray__worker_t *w) {
  if (w->depth >= RAY__MAX_NESTING || atomic_load(&w->sched->stop)) return false;
  ray__runnable_t *r = pop_child(w);
  if (r == NULL) return false;
  ray__runnable_t *outer = tls_running;
  w->depth++;
  tls_running = r;
  r->run(r);
  tls_running = outer;
  w->depth--;
  return true;
}

static _Thread_local int tls_host_depth; /* runs on this host thread's stack */

bool ray__sched_run_queued(ray__sched_t *s, ray__runnable_t *r) {
  if (tls_worker != NULL || tls_host_depth >= RAY__MAX_HOST_NESTING || atomic_load(&s->stop))
    return false;
  ray__worker_t *w = atomic_load_explicit(&r->queue, memory_order_acquire);
  if (w == NULL) return false;
  bool taken = false;
  ray__lock(&w->qmu);
  if (atomic_load_explicit(&r->queue, memory_order_relaxed) == w) { /* still there */
    q_remove(r);
    atomic_fetch_sub(&w->qlen, 1);
    taken = true;
  }
  ray__unlock(&w->qmu);
  if (!taken) return false;
  ray__runnable_t *outer = tls_running;
  tls_host_depth++;
  tls_running = r;
  r->run(r);
  tls_running = outer;
  tls_host_depth--;
  return true;
}

/* Returns false when no worker is idle and none could be started. */
static bool spawn_spare(ray__sched_t *s) {
  uv_mutex_lock(&s->spawn_mu);
  bool ok = true;
  if (!atomic_load(&s->stop) && atomic_load(&s->idle) == 0)
    ok = atomic_load(&s->nworkers) < s->max_workers && worker_add(s, true) == 0;
  uv_mutex_unlock(&s->spawn_mu);
  return ok;
}

bool ray__sched_block_begin(ray__worker_t *w) {
  ray__sched_t *s = w->sched;
  ray__hook(RAY__AT_BLOCK, w);
  atomic_fetch_add(&s->blocked, 1); /* I3, I4: before reading idle */
  if (atomic_load(&s->idle) > 0) {
    /* Our CPU goes to an idle worker: wake one, so whatever is queued (our
     * own children past the nesting limit among them) has a looker. */
    wake_for_work(s, w);
    return true;
  }
  return spawn_spare(s);
}

void ray__sched_block_end(ray__worker_t *w) {
  ray__sched_t *s = w->sched;
  atomic_fetch_sub(&s->blocked, 1);
  if (atomic_load(&s->lingering) == 0) return;
  /* Spares kept only for blocked workers may retire now: wake them. */
  uv_mutex_lock(&s->spawn_mu);
  unsigned n = atomic_load(&s->nworkers);
  for (unsigned i = s->base_workers; i < n; i++) {
    ray__worker_t *v = slot_get(s, i);
    if (atomic_exchange(&v->linger, false)) {
      atomic_fetch_sub(&s->lingering, 1);
      ray__parker_wake(&v->park);
    }
  }
  uv_mutex_unlock(&s->spawn_mu);
}

/* Quiet: back to the base workers, every one of them parked idle, nothing
 * queued. The waiter counts itself before it looks and a worker going idle
 * bumps `idle` before it looks at the waiters (both sequentially
 * consistent), so one of the two sees the other. */
int ray__sched_quiesce(ray__sched_t *s, uint64_t deadline) {
  int rc = 0;
  uv_mutex_lock(&s->spawn_mu);
  atomic_fetch_add(&s->quiesce_waiters, 1);
  while (rc == 0 && (atomic_load(&s->nworkers) > s->base_workers ||
                     (unsigned)atomic_load(&s->idle) < atomic_load(&s->nworkers) || has_work(s)))
    rc = ray__thread_cond_wait_until(&s->spawn_cv, &s->spawn_mu, deadline);
  atomic_fetch_sub(&s->quiesce_waiters, 1);
  uv_mutex_unlock(&s->spawn_mu);
  return rc;
}

struct ray__obs_s *ray__worker_obs(ray__worker_t *w) {
  return w->obs;
}

void ray__sched_foreach(ray__sched_t *s, void (*fn)(struct ray__obs_s *obs, void *arg), void *arg) {
  uv_mutex_lock(&s->spawn_mu); /* membership of the array and the retired list */
  unsigned n = atomic_load(&s->nworkers);
  for (unsigned i = 0; i < n; i++) fn(slot_get(s, i)->obs, arg);
  for (ray__worker_t *w = s->retired; w != NULL; w = w->next_retired) fn(w->obs, arg);
  uv_mutex_unlock(&s->spawn_mu);
}
