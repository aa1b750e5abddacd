/* internal.h - the runtime struct every subsystem hangs off, and the
 * helpers shared between subsystems. Not public API.
 *
 * The tree (docs/architecture.md has the full source map, and
 * scripts/layers.txt lists which file may call which): runtime.c
 * (lifecycle, config) owns a store (store.c, with memory.c for capacity,
 * spilling and the spiller thread, view.c for views), a loop thread
 * (loop.c), a worker pool (scheduler.c), the function registry
 * (function.c), the actor registry (actor.c) and the metrics endpoint
 * (metrics.c, http.c); submit.c submits tasks, task.c runs them (through
 * each kind's ops: actor.c's for constructors and calls), task_ctx.c is
 * the context their bodies use; object.c and
 * wait.c are the public object API over the store; stats.c reads the
 * counters; guard.c is the API entry guard; error.c and codec.c are the
 * error objects and msgpack helpers; timeline.c and log.c are
 * observability, hook.c the test hooks; thread.c and alloc.c are the
 * thread and allocation wrappers. */
#ifndef RAY_INTERNAL_H
#define RAY_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "actor.h"
#include "alloc.h"
#include "counter.h"
#include "guard.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "rustyray.h"
#include "scheduler.h"
#include "store.h"
#include "task.h"
#include "thread.h"
#include "timeline.h"
#include "wait.h"

typedef struct ray__runtime_s {
  ray_config_t cfg;
  ray__store_t store;
  ray__loop_t loop;
  ray__sched_t sched;
  ray__registry_t funcs;
  ray__actors_t actors;
  ray__metrics_t metrics;
  bool metrics_on;     /* the endpoint runs */
  bool record_runs;    /* timeline or metrics: time every run */
  char *timeline_path; /* our copy of cfg.timeline_path */
  atomic_bool stopping;
  /* Task counters: submitters and workers bump them, each thread its own
   * slot (counter.h). */
  ray__counter_t tasks_submitted;
  ray__counter_t tasks_finished;
  atomic_uint_fast64_t tasks_failed;
  atomic_int quiet_waiters; /* callers in ray__quiesce: finishers signal */
  char pad2_[64];
  uv_mutex_t quiet_mu; /* with quiet_cv: a task finished (ray__quiesce) */
  uv_cond_t quiet_cv;
  /* For a host thread blocked on object `id` with no deadline: run its
   * producer here if still queued (ray__task_run_producer, handed down to
   * wait.c, which sits below the task layer); NULL when cfg.host_help is
   * off or runs are recorded. */
  bool (*run_producer)(struct ray__runtime_s *rt, uint64_t id);
  /* Cluster mode (cluster.c): this rank, the number of ranks (0 and 1 in a
   * single process), the ops of a function call placed on another rank
   * (NULL in a single process), and the cluster's state. The first three
   * are set on the communication thread while the runtime is already
   * published (ray_init starts the cluster last), ops first: atomics. */
  atomic_int rank;
  atomic_int nranks;
  _Atomic(const struct ray__task_ops_s *) remote_fn_ops;
  /* Cluster mode: the rank a RAY_NODE_ANY task goes to (cluster.c's
   * placement; NULL in a single process). */
  _Atomic(int (*)(struct ray__runtime_s *rt)) place_any;
  struct ray__cluster_s *cluster;
  /* cluster.c counts, stats.c reads (ray_stats). */
  atomic_uint_fast64_t remote_tasks_sent;
  atomic_uint_fast64_t remote_tasks_received;
  atomic_uint_fast64_t remote_bytes_sent;
  atomic_uint_fast64_t remote_bytes_received;
} ray__runtime_t;

/* A task or actor call has finished (after tasks_finished was bumped):
 * wakes ray__quiesce callers, if any (stats.c). */
void ray__stats_task_done(ray__runtime_t *rt);

/* The running runtime, or NULL: ray__runtime_ptr, declared in guard.h. */

static inline ray__runtime_t *ray__rt(void) {
  return atomic_load_explicit(&ray__runtime_ptr, memory_order_acquire);
}

/* ray__wait_blocking_enter/leave (the blocked-caller count): wait.h.
 * Thread creation and join, the thread's role: thread.h. */

#endif /* RAY_INTERNAL_H */
