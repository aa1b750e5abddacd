/* scheduler.h - the worker pool and the thread parking it shares with blocking
 * calls (see scheduler.c). */
#ifndef RAY_SCHED_H
#define RAY_SCHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lock.h" /* ray__lock_t, ray__cpu_relax */

/* A thread's parking spot: a mutex and condition variable plus a flag that
 * says it is (about to be) asleep, so wakers skip the syscall otherwise.
 * Protocol (no lost wake-ups): the sleeper locks mu, sets `sleeping`,
 * re-checks its condition, then waits; a waker publishes its change first,
 * then reads `sleeping` and, when set, signals under mu. Both sides use
 * sequentially consistent atomics. */
typedef struct ray__parker_s {
  uv_mutex_t mu;
  uv_cond_t cv;
  atomic_int sleeping;
} ray__parker_t;

/* Wake `p` if it sleeps. Callable with a shard lock held (mu is a leaf). */
void ray__parker_wake(ray__parker_t *p);
/* Sleep until woken or `deadline` (uv_hrtime ns, UINT64_MAX: none), unless
 * done(arg) is already true once `sleeping` is published. */
void ray__parker_sleep(ray__parker_t *p, bool (*done)(void *arg), void *arg, uint64_t deadline);
/* The calling thread's parker: its worker's, or a thread-local one. */
ray__parker_t *ray__parker_self(void);

/* Absolute deadline (uv_hrtime ns) for a timeout: UINT64_MAX (none) for a
 * negative one, and for one so large the deadline would pass 2^63 ns of
 * uptime (saturates, never wraps). The one place a timeout becomes a
 * deadline: every blocking call, and every sleeper below, uses it. */
uint64_t ray__sched_deadline(int64_t timeout_ms);

/* Work for a worker: a task or an actor turn. Intrusive, so queueing never
 * allocates and never fails. */
typedef struct ray__runnable_s {
  struct ray__runnable_s *prev;
  struct ray__runnable_s *next;
  /* Run it (on a worker, no lock held). Owns the runnable from then on. */
  void (*run)(struct ray__runnable_s *r);
  /* Discard it without running (shutdown). */
  void (*drop)(struct ray__runnable_s *r);
  /* The runnable that was running on the pushing thread (NULL from host
   * threads): a blocked runnable may run its own children inline. */
  void *parent;
  /* The worker whose queue holds it, NULL when in none (written under that
   * queue's lock; a task starts with NULL). */
  _Atomic(struct ray__worker_s *) queue;
} ray__runnable_t;

typedef struct ray__worker_s ray__worker_t;

/* Each worker's record of what it ran belongs to the timeline
 * (timeline.h), a layer above: the scheduler only holds the pointer, made
 * with a worker's struct and freed with it through these functions, which
 * the runtime hands to ray__sched_start. */
struct ray__obs_s;
typedef struct ray__worker_rec_ops_s {
  struct ray__obs_s *(*make)(unsigned serial); /* NULL: out of memory */
  void (*free)(struct ray__obs_s *obs);
} ray__worker_rec_ops_t;

typedef struct ray__sched_s {
  /* Read on every push and steal, written only when workers start or retire. */
  _Atomic(ray__worker_t *) *workers; /* capacity max_workers; [0, nworkers) running */
  atomic_uint nworkers;
  unsigned base_workers; /* configured pool size */
  unsigned max_workers;  /* base + spares cap */
  uint64_t spin_ns;      /* an idle worker looks this long before it parks */
  int max_spinners;      /* idle workers that may look at once: CPUs - 1 */
  atomic_bool stop;
  uv_mutex_t spawn_mu; /* serialises spare creation and retirement */
  uv_cond_t spawn_cv;  /* (spawn_mu) a spare retired */
  atomic_uint serials; /* numbers worker structs (their records' serials) */
  ray__worker_rec_ops_t rec_ops;
  ray__worker_t *retired; /* spares whose threads have ended, or never
                             started (spawn_mu) */
  /* The workers' states change whenever a worker runs out of work; kept a
   * cache line away from the fields above, which every push reads (a
   * shared line cost a cache miss per push). */
  char pad_[64];
  atomic_int idle;            /* workers parked that could run work */
  atomic_int spinning;        /* workers looking for work before they park */
  atomic_int blocked;         /* workers parked inside a blocking call */
  atomic_int lingering;       /* spares kept from retiring by blocked workers */
  atomic_int quiesce_waiters; /* callers in ray__sched_quiesce */
  char pad_end_[64];          /* nor with what follows the struct */
} ray__sched_t;

/* Start n worker threads, which look for work for spin_ns before they park
 * when idle; every worker struct gets a record from rec_ops->make (copied).
 * Errors: RAY_ENOMEM, RAY_EIO. */
int ray__sched_start(ray__sched_t *s, unsigned n, uint64_t spin_ns,
                     const ray__worker_rec_ops_t *rec_ops);
/* Queue a runnable: on the calling worker's own queue, or round-robin from
 * host threads. Wakes a parked worker when one is available. Never fails. */
void ray__sched_push(ray__sched_t *s, ray__runnable_t *r);
/* Queue a runnable behind everything already queued on the calling worker
 * (its turn is over: others go first), or as ray__sched_push from host
 * threads. */
void ray__sched_yield(ray__sched_t *s, ray__runnable_t *r);
/* Stop: let running work finish, join every worker (spares too), then drop
 * whatever is still queued; ray__sched_free then frees the workers (their
 * records can be read in between). */
void ray__sched_join(ray__sched_t *s);
void ray__sched_free(ray__sched_t *s);

/* The worker the calling thread is, or NULL on host and loop threads. */
ray__worker_t *ray__worker_self(void);

/* Whether the calling thread is running something the scheduler runs (a
 * task or method, on a worker, or on a host thread that helps while it
 * waits). */
bool ray__sched_running_here(void);

/* For blocking calls on a worker: run inline one queued child of the
 * runnable that is blocking (one it pushed, still at the tail of this
 * worker's queue), below a nesting limit. Only its own children: they
 * cannot be waiting on the blocked frame beneath them, which other work
 * could (and would then deadlock on this one stack). Returns whether it ran
 * one. */
bool ray__sched_help(ray__worker_t *w);
/* Whether ray__sched_help would find a child to run now (a cheap hint). */
bool ray__sched_can_help(ray__worker_t *w);
/* For a host thread (not a worker): if `r` is still in a worker's queue,
 * take it off and run it here, below a nesting limit (16 runs on one host
 * stack). Returns whether it ran. The caller keeps `r`'s memory alive (a
 * hold on its task) across the call. A host waiting for the object `r`
 * produces runs it rather than wait for a worker to: see wait.c. */
bool ray__sched_run_queued(ray__sched_t *s, ray__runnable_t *r);
/* A worker is about to park inside a blocking call (Ray releases a blocked
 * worker's CPU): it is counted blocked, and an idle worker is woken, or if
 * none is idle a spare worker starts, so ready work never waits behind
 * blocked workers (scheduler.c, invariant I3). Returns false when no spare
 * could be started (thread creation failed, or the cap): the caller parks
 * with a bounded back-off and calls it again. Every call is paired with
 * ray__sched_block_end once the caller is awake again. */
bool ray__sched_block_begin(ray__worker_t *w);
void ray__sched_block_end(ray__worker_t *w);

/* Wait until every spare has retired (the pool is back to its base size),
 * every worker is parked idle and nothing is queued (so work a worker does
 * after a task counts finished, such as an actor constructor's last steps,
 * is over), or `deadline` (uv_hrtime ns; UINT64_MAX: none) passes. Spares
 * kept by blocked workers do not retire while those stay blocked. Returns 0
 * or RAY_ETIMEDOUT. */
int ray__sched_quiesce(ray__sched_t *s, uint64_t deadline);

/* The worker's record of what it ran (never NULL). */
struct ray__obs_s *ray__worker_obs(ray__worker_t *w);
/* Call fn on every worker's record (retired spares too), membership
 * frozen meanwhile. */
void ray__sched_foreach(ray__sched_t *s, void (*fn)(struct ray__obs_s *obs, void *arg), void *arg);

#endif /* RAY_SCHED_H */
