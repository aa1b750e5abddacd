/* wait.c - blocking until store entries complete: notification, never
 * polling.
 *
 * A blocking call registers watch nodes on the pending entries (store.c) and
 * waits on a waiter: two counters and the calling thread's parker. A
 * completion bumps the counters and wakes the parker, under the entry's
 * shard lock. The caller spins briefly first (cfg.wait_spin_us: a hand-off
 * from another core is often faster than a futex sleep and wake), then
 * parks. On a worker, it
 * first runs its own queued children inline (ray__sched_help), and before
 * parking gives its CPU to another worker (ray__sched_block_begin wakes an
 * idle one or starts a spare; ray__sched_block_end when it wakes), so
 * nested gets never deadlock the pool.
 *
 * A wait holds a reference on every pending object it waits on, released
 * after its last look, so a concurrent release never frees them under it.
 *
 * Lifetime rule: the waiter and its nodes live on the caller's stack, so
 * before returning the caller makes sure no notifier will touch them: a
 * node whose notification has finished (its `fired` flag, stored last) is
 * off the entry's list already; any other is taken off under its shard
 * lock, under which notifiers run (node_release).
 *
 * The blocked-caller count: a public call brackets its parking path with
 * ray__wait_blocking_enter/leave, and ray_shutdown, having set `stopping` through
 * ray__wait_blocking_stop (under the count's lock, so no caller starts to park
 * after it), waits in ray__wait_blocking_drain until every parked caller has
 * left before it frees the store. Lock order: blocked_mu is a leaf (taken
 * under the lifecycle lock by shutdown, alone by callers). */
#include "wait.h"

#include <sched.h>
#include <stdlib.h>

#include "hook.h"
#include "internal.h"

/* Back-off between attempts to start a spare after one failed. */
#define RAY__SPAWN_RETRY_MIN_NS 1000000u
#define RAY__SPAWN_RETRY_MAX_NS 100000000u

typedef struct waiter_s {
  ray__parker_t *park;
  atomic_size_t done;   /* nodes notified (and pre-counted completions) */
  atomic_size_t failed; /* of which failed or released */
  size_t need;
  bool stop_on_fail;
  uint64_t spin_ns; /* spin this long before parking (cfg.wait_spin_us) */
  /* A host thread with no deadline runs the producers of what it waits for
   * when they are still queued (rt->run_producer): the nodes to try, from
   * help_next on; help_next == nhelp once none is left to try. */
  ray__runtime_t *rt;
  const struct wait_node_s *help;
  size_t nhelp, help_next;
} waiter_t;

typedef struct wait_node_s {
  ray__watch_t watch;
  waiter_t *w;
  uint64_t id;
  atomic_bool fired; /* node_notify is done with the node and its waiter */
} wait_node_t;

/* ---- The blocked-caller count ---- */

/* Callers parked in a blocking call, across runtimes (the count outlives
 * each of them), and the shutdowns waiting for it to reach zero. No lock on
 * a caller's path: a caller counts itself, then reads `stopping`; shutdown
 * sets `stopping`, then (drain) counts itself a drainer and reads the count;
 * all sequentially consistent, so either the caller sees `stopping` and
 * leaves, or the drainer sees it counted and waits for it. A leaver that
 * brings the count to zero reads `drainers` after its decrement and wakes
 * them under blocked_mu (a leaf), which the drainer holds while it checks
 * the count: no lost wake-up. */
static uv_once_t blocked_once = UV_ONCE_INIT;
static uv_mutex_t blocked_mu;
static uv_cond_t blocked_cv;
static atomic_uint blocked;
static atomic_uint drainers;

static void blocked_init(void) {
  /* uv_once cannot report failure; glibc's init of these cannot fail. */
  if (uv_mutex_init(&blocked_mu) != 0 || uv_cond_init(&blocked_cv) != 0) abort();
}

int ray__wait_blocking_enter(ray__runtime_t *rt) {
  atomic_fetch_add(&blocked, 1);
  if (ray__rt() == rt && !atomic_load(&rt->stopping)) return 0;
  ray__wait_blocking_leave();
  return RAY_ESHUTDOWN;
}

void ray__wait_blocking_leave(void) {
  if (atomic_fetch_sub(&blocked, 1) == 1 && atomic_load(&drainers) > 0) {
    uv_once(&blocked_once, blocked_init);
    uv_mutex_lock(&blocked_mu);
    uv_cond_broadcast(&blocked_cv);
    uv_mutex_unlock(&blocked_mu);
  }
}

void ray__wait_blocking_stop(ray__runtime_t *rt) {
  atomic_store(&rt->stopping, true);
}

void ray__wait_blocking_drain(void) {
  uv_once(&blocked_once, blocked_init);
  uv_mutex_lock(&blocked_mu);
  atomic_fetch_add(&drainers, 1);
  while (atomic_load(&blocked) > 0) uv_cond_wait(&blocked_cv, &blocked_mu);
  atomic_fetch_sub(&drainers, 1);
  uv_mutex_unlock(&blocked_mu);
}

/* ---- Waiting for entries ---- */

/* Runs under the entry's shard lock, which has already taken the node off
 * the entry's list. Its last touch of the node or the waiter is `fired`:
 * from then on the caller may return without the lock (node_release). */
static void node_notify(ray__watch_t *watch, int status) {
  wait_node_t *node = (wait_node_t *)watch;
  waiter_t *w = node->w;
  if (status != 0) atomic_fetch_add(&w->failed, 1);
  atomic_fetch_add(&w->done, 1);
  ray__parker_wake(w->park);
  ray__hook(RAY__AT_NOTIFIED, NULL);
  atomic_store_explicit(&node->fired, true, memory_order_release);
}

/* The caller is done with a registered node: if its notification has
 * finished (it usually has, or is a few instructions from it, when the
 * wait was satisfied), the node is off the entry's list and nobody touches
 * it again: no lock. Otherwise take it off under the shard lock, which also
 * waits out a notification in progress. This saves the lock round trip
 * that would otherwise meet the notifier still holding the lock. */
static void node_release(ray__store_t *st, wait_node_t *node) {
  for (int i = 0; i < 64; i++) {
    if (atomic_load_explicit(&node->fired, memory_order_acquire)) return;
    ray__cpu_relax();
  }
  ray__hook(RAY__AT_UNWATCH, NULL);
  ray__store_unwatch(st, node->id, &node->watch);
}

static bool satisfied(const waiter_t *w) {
  return atomic_load(&w->done) >= w->need || (w->stop_on_fail && atomic_load(&w->failed) > 0);
}

static bool sleep_done(void *arg) {
  return satisfied(arg);
}

/* On a host thread with no deadline (a run could overshoot one): run the
 * producer of one of the objects waited for, if it is still queued, rather
 * than wait for a worker to take it (TBB's wait does work the same way).
 * Each node is tried until one runs; a node whose producer is running,
 * waiting for its own arguments or done is passed over for good, so a wait
 * makes at most one try per node plus one per run. */
static bool help_producer(waiter_t *w) {
  if (w->rt->run_producer == NULL) return false;
  while (w->help_next < w->nhelp) {
    const wait_node_t *node = &w->help[w->help_next];
    if (!node->watch.helpable || atomic_load_explicit(&node->fired, memory_order_acquire)) {
      w->help_next++;
      continue;
    }
    if (w->rt->run_producer(w->rt, node->id)) return true;
    w->help_next++;
  }
  return false;
}

/* Wait for the waiter's condition: help, spin, then park; repeat. */
static int wait_for(waiter_t *w, uint64_t deadline) {
  ray__worker_t *wk = ray__worker_self();
  uint64_t backoff_ns = RAY__SPAWN_RETRY_MIN_NS;
  for (;;) {
    if (satisfied(w)) return 0;
    if (wk != NULL && ray__sched_help(wk)) continue;
    if (wk == NULL && deadline == UINT64_MAX && help_producer(w)) continue;
    uint64_t now = uv_hrtime();
    if (now >= deadline) return RAY_ETIMEDOUT;
    uint64_t until = now + w->spin_ns;
    bool again = false;
    for (unsigned i = 1; !again; i++) {
      if (satisfied(w)) return 0;
      ray__cpu_relax();
      if ((i & 63) == 0) {
        if (wk != NULL && ray__sched_can_help(wk))
          again = true; /* a child of ours is queued: run it */
        else if (uv_hrtime() >= until)
          break;
        else
          sched_yield();
      }
    }
    if (again) continue;
    if (wk == NULL) {
      ray__hook(RAY__AT_WAIT_PARK, NULL);
      ray__parker_sleep(w->park, sleep_done, w, deadline);
      continue;
    }
    /* A worker gives its CPU away before it parks (scheduler.c, I3). If no
     * spare could start (thread creation failed, or the cap of spares), it
     * retries after a back-off: nothing announces that a thread could be
     * created again (ADR-002, "When no spare can start"). */
    uint64_t park_until = deadline;
    if (!ray__sched_block_begin(wk)) {
      uint64_t retry = uv_hrtime() + backoff_ns;
      if (retry < park_until) park_until = retry;
      if (backoff_ns < RAY__SPAWN_RETRY_MAX_NS) backoff_ns *= 2;
    } else {
      backoff_ns = RAY__SPAWN_RETRY_MIN_NS;
    }
    ray__parker_sleep(w->park, sleep_done, w, park_until);
    ray__sched_block_end(wk);
  }
}

static int waiter_init(waiter_t *w, ray__runtime_t *rt, size_t need, bool stop_on_fail) {
  w->spin_ns = (uint64_t)rt->cfg.wait_spin_us * 1000u;
  w->rt = rt;
  w->help = NULL;
  w->nhelp = w->help_next = 0;
  w->park = ray__parker_self();
  if (w->park == NULL) return RAY_ENOMEM;
  atomic_init(&w->done, 0);
  atomic_init(&w->failed, 0);
  w->need = need;
  w->stop_on_fail = stop_on_fail;
  return 0;
}

int ray__wait_one(ray__runtime_t *rt, uint64_t id, int64_t timeout_ms) {
  waiter_t w;
  int rc = waiter_init(&w, rt, 1, false);
  if (rc != 0) return rc;
  wait_node_t node = {.watch = {.fn = node_notify}, .w = &w, .id = id};
  atomic_init(&node.fired, false);
  int status;
  rc = ray__store_watch(&rt->store, id, &node.watch, false, &status); /* the caller holds it */
  if (rc < 0) return rc;
  if (rc == 1) return 0; /* completed in the meantime */
  w.help = &node;
  w.nhelp = 1;
  rc = wait_for(&w, ray__sched_deadline(timeout_ms));
  node_release(&rt->store, &node);
  return rc;
}

int ray__wait_many(ray__runtime_t *rt, const ray_ref_t *refs, size_t n, const ray__groups_t *g,
                   int8_t *states, size_t need, bool stop_on_fail, int64_t timeout_ms) {
  size_t complete = 0, failed = 0, pending = 0;
  for (size_t i = 0; i < n; i++) {
    if (states[i] < 0) return RAY_ENOTFOUND;
    if (states[i] == RAY__PENDING)
      pending++;
    else
      complete++;
    if (states[i] == RAY__FAILED) failed++;
  }
  if (complete >= need || (stop_on_fail && failed > 0)) return 0;
  if (timeout_ms == 0) return RAY_ETIMEDOUT;

  waiter_t w;
  int rc = waiter_init(&w, rt, need, stop_on_fail);
  if (rc != 0) return rc;
  wait_node_t *nodes = ray__malloc(pending * sizeof *nodes);
  ray_ref_t *held = ray__malloc(pending * sizeof *held); /* what the wait holds */
  if (nodes == NULL || held == NULL) {
    ray__free(nodes);
    ray__free(held);
    return RAY_ENOMEM;
  }
  size_t nheld = 0;
  atomic_store(&w.done, complete);
  atomic_store(&w.failed, failed);
  size_t registered = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (states[i] != RAY__PENDING) continue;
    wait_node_t *node = &nodes[registered];
    *node = (wait_node_t){.watch = {.fn = node_notify}, .w = &w, .id = refs[i].id};
    atomic_init(&node->fired, false);
    int status;
    int r = ray__store_watch(&rt->store, refs[i].id, &node->watch, true, &status);
    if (r >= 0) held[nheld++] = refs[i];
    if (r == 0) {
      registered++;
    } else if (r == 1) { /* completed since the caller's pass */
      if (status != 0) atomic_fetch_add(&w.failed, 1);
      atomic_fetch_add(&w.done, 1);
    } else {
      rc = r;
    }
  }
  /* Help only a wait that needs every object (ray_get_batch, ray_wait for
   * all): one that needs fewer may end without the producer it would run,
   * and that producer may need what this thread holds. */
  w.help = nodes;
  w.nhelp = need >= n ? registered : 0;
  if (rc == 0) rc = wait_for(&w, ray__sched_deadline(timeout_ms));
  for (size_t k = 0; k < registered; k++) node_release(&rt->store, &nodes[k]);
  ray__free(nodes);
  ray__store_states(&rt->store, refs, g, states); /* while still holding them */
  ray__store_release_batch(&rt->store, held, nheld);
  ray__free(held);
  for (size_t i = 0; i < n; i++)
    if (states[i] < 0) return RAY_ENOTFOUND;
  return rc;
}
