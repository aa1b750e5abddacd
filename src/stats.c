/* stats.c - the runtime's counters read together: ray_stats gathers them
 * from the store, its memory, the scheduler and the runtime's task
 * counters; ray__quiesce (for tests) waits until they settle.
 *
 * ray_stats is a snapshot, not an atomic one: each shard's counts are read
 * under that shard's lock (ray__store_counts: objects, created and freed
 * agree per shard),
 * everything else with one atomic load each (a task count: the sum of its
 * per-thread slots, counter.h), so figures from different
 * subsystems may be a few operations apart under load.
 *
 * Quiet: a task or actor call that finishes bumps tasks_finished, then
 * calls ray__stats_task_done, which wakes ray__quiesce callers (only when
 * some are waiting: the common case costs one load). ray__quiesce then
 * waits for the loop thread's queue (ray__loop_quiesce; a callback there
 * may submit tasks, and then it waits for those again), then for the
 * scheduler (ray__sched_quiesce) and the spiller (ray__spiller_quiesce).
 *
 * This file sits above the store, memory and scheduler and below the task
 * and actor systems, which report into it. Lock order: quiet_mu is taken
 * alone here (the store takes its shard locks itself). */
#include <string.h>

#include "internal.h"
#include "testing.h"

int ray_stats(ray_stats_t *out) {
  if (out == NULL) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  memset(out, 0, sizeof *out);
  ray__store_t *st = &rt->store;
  ray__store_counts(st, &out->objects, &out->objects_created, &out->objects_freed);
  out->bytes_in_memory = ray__mem_used(st);
  out->object_store_memory = st->capacity;
  out->bytes_in_memory_high_water = (uint64_t)atomic_load(&st->high_water);
  int64_t disk = atomic_load(&st->bytes_on_disk);
  out->bytes_spilled = disk > 0 ? (uint64_t)disk : 0;
  out->bytes_spilled_total = atomic_load(&st->spilled_bytes_total);
  out->spill_count = atomic_load(&st->spill_count);
  out->restore_count = atomic_load(&st->restore_count);
  out->tasks_submitted = ray__counter_sum(&rt->tasks_submitted);
  out->tasks_finished = ray__counter_sum(&rt->tasks_finished);
  out->tasks_failed = atomic_load(&rt->tasks_failed);
  out->actors_alive = (uint64_t)atomic_load(&rt->actors.alive);
  out->remote_tasks_sent = atomic_load(&rt->remote_tasks_sent);
  out->remote_tasks_received = atomic_load(&rt->remote_tasks_received);
  out->remote_bytes_sent = atomic_load(&rt->remote_bytes_sent);
  out->remote_bytes_received = atomic_load(&rt->remote_bytes_received);
  out->evict_count = atomic_load(&st->evict_count);
  out->refetch_count = atomic_load(&st->refetch_count);
  out->num_workers = atomic_load(&rt->sched.nworkers);
  out->num_shards = st->nshards;
  return 0;
}

void ray__stats_task_done(ray__runtime_t *rt) {
  /* Sequentially consistent with the waiter's increment of quiet_waiters
   * and its read of tasks_finished: one of the two sees the other. */
  if (atomic_load(&rt->quiet_waiters) == 0) return;
  uv_mutex_lock(&rt->quiet_mu);
  uv_cond_broadcast(&rt->quiet_cv);
  uv_mutex_unlock(&rt->quiet_mu);
}

/* Every submitted task and actor call has finished (and let go of its
 * arguments), or the deadline passed. */
static int tasks_quiesce(ray__runtime_t *rt, uint64_t deadline) {
  int rc = 0;
  uv_mutex_lock(&rt->quiet_mu);
  atomic_fetch_add(&rt->quiet_waiters, 1);
  while (rc == 0 && ray__counter_sum(&rt->tasks_finished) < ray__counter_sum(&rt->tasks_submitted))
    rc = ray__thread_cond_wait_until(&rt->quiet_cv, &rt->quiet_mu, deadline);
  atomic_fetch_sub(&rt->quiet_waiters, 1);
  uv_mutex_unlock(&rt->quiet_mu);
  return rc;
}

int ray__quiesce(int64_t timeout_ms) {
  RAY__API_ENTER(rt);
  uint64_t deadline = ray__sched_deadline(timeout_ms);
  int rc;
  /* Tasks, then the loop's callbacks (which may submit more tasks: then
   * again), then the workers and the spiller. */
  for (;;) {
    if ((rc = tasks_quiesce(rt, deadline)) != 0) break;
    uint64_t submitted = ray__counter_sum(&rt->tasks_submitted);
    if ((rc = ray__loop_quiesce(&rt->loop, deadline)) != 0) break;
    if (ray__counter_sum(&rt->tasks_submitted) == submitted) break;
  }
  if (rc == 0) rc = ray__sched_quiesce(&rt->sched, deadline);
  if (rc == 0) rc = ray__spiller_quiesce(&rt->store, deadline);
  return rc;
}
