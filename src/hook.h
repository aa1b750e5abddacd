/* hook.h - the test hook: named points on slow paths where a test may pause
 * the thread that reaches them, to force an interleaving that load alone
 * makes only likely (testing.h installs it). With no hook installed a point
 * costs one relaxed load. Not for production use: the hook runs with
 * whatever locks the point's comment names held. */
#ifndef RAY_HOOK_H
#define RAY_HOOK_H

#include <stdatomic.h>
#include <stddef.h>

enum {
  /* Scheduler (scheduler.c); arg: the worker concerned. */
  RAY__AT_SPARE_STARTED = 1, /* spawning thread, spawn_mu held: the spare's
                                thread has just started */
  RAY__AT_BLOCK = 2,         /* a worker entering ray__sched_block_begin, no
                                lock held */
  RAY__AT_IDLE = 3,          /* a worker about to park idle, no lock held */
  RAY__AT_SPARE_START = 4,   /* spawning thread, spawn_mu held: the spare is
                                counted, its thread not yet created */
  /* Submission and shutdown; arg: NULL. */
  RAY__AT_SUBMIT_ADMITTED = 5, /* ray__task_submit, no lock held: the task
                                  passed its `stopping` check and is about
                                  to be queued */
  RAY__AT_CLOSE_WAIT = 6,      /* ray_shutdown, lifecycle lock held: about
                                  to wait for a thread still inside a public
                                  call (ray__guard_close) */
  RAY__AT_SCHED_FREED = 7,     /* ray_shutdown, lifecycle lock held: the
                                  worker queues are gone */
  /* Blocking calls (wait.c); arg: NULL. */
  RAY__AT_WAIT_PARK = 8, /* a host thread in ray_get/ray_wait about to park,
                            no lock held */
  RAY__AT_NOTIFIED = 9,  /* a completion waking a blocked call, the entry's
                            shard lock held: the waiter counts it, the
                            notifier has not let go of the node yet */
  RAY__AT_UNWATCH = 10   /* the woken call, no lock held: the notification
                            has not finished, so it takes its node off under
                            the shard lock */
};

typedef void (*ray__hook_fn)(int point, void *arg);

extern _Atomic(ray__hook_fn) ray__hook_installed;

/* Install fn (NULL: none). Between tests only, no runtime up. */
void ray__hook_set(ray__hook_fn fn);

static inline void ray__hook(int point, void *arg) {
  ray__hook_fn fn = atomic_load_explicit(&ray__hook_installed, memory_order_relaxed);
  if (fn != NULL) fn(point, arg);
}

#endif /* RAY_HOOK_H */
