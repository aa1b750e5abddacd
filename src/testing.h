/* testing.h - the internal hooks the test programs use: produce objects by
 * hand (create a pending object with its id assigned up front, fulfil it,
 * fail it), count threads and make their creation fail, wait until the
 * runtime is quiet, run a function on a worker, plus the allocation hooks
 * (alloc.h) and the test hook (hook.h). The library itself does not use the
 * object functions (tasks complete their results through the store, task.c).
 * Not public API; the test programs link the static library and include this
 * header. */
#ifndef RAY_TESTING_H
#define RAY_TESTING_H

#include "rustyray.h"
#include "alloc.h"
#include "hook.h" /* ray__hook_set and its points */
#include "pool.h" /* ray__pool_alloc, ray__pool_free */

/* Create a pending object of `type` (its producer has not finished); *out
 * carries one reference. Errors: RAY_EINVAL, RAY_ENOTINIT, RAY_ENOMEM. */
int ray__object_create_pending(uint32_t type, ray_ref_t *out);

/* Make a pending object ready with a copy of data[0..size). Wakes every
 * waiter and queues its ray_ref_on_ready callbacks (they run on the loop
 * thread). If nobody references the object any more the value is dropped
 * and 0 is returned. May block for memory as a put does (object.h).
 * Errors: RAY_EINVAL (data NULL with size > 0), RAY_ENOTFOUND (a nil ref),
 * RAY_EBUSY (already ready or failed), RAY_ENOTINIT, RAY_ENOMEM,
 * RAY_ESTOREFULL, RAY_ESHUTDOWN. */
int ray__object_fulfil(ray_ref_t ref, const void *data, size_t size);

/* Fail a pending object with a copy of `err` (stored msgpack-encoded, with
 * the error flag set in the entry's metadata). Errors: as fulfil, and
 * RAY_EINVAL for err NULL. */
int ray__object_fail(ray_ref_t ref, const ray_error_t *err);

/* Number of threads the library has started and not yet joined (workers,
 * spares, the loop and the spiller, across runtimes). 0 after a clean
 * shutdown. */
int ray__threads_alive(void);

/* Make the next n thread creations of the library fail (as if the system
 * refused them); n <= 0 disarms. */
void ray__thread_fail_next(int n);
/* Make the next n thread-exit hook registrations (any thread's) fail, as
 * if the system had no thread-specific key left; n <= 0 disarms. */
void ray__thread_at_exit_fail_next(int n);

/* Wait until the runtime is quiet, or the timeout passes: every task and
 * actor call submitted so far has finished and let go of its arguments
 * (ray_stats' tasks_finished has caught up with tasks_submitted), every
 * spare worker has retired (spares kept by workers still blocked in
 * ray_get/ray_wait cannot), every worker is parked idle with nothing queued
 * (actor constructors, teardowns and posted destructors done), the loop
 * thread has run every item posted to it (ray_ref_on_ready callbacks, with
 * the reference each held let go; results of ray_return_ref), and the
 * background spiller is parked with no batch in flight (its deferred frees
 * done). Tests call it instead of
 * polling before they assert on ray_stats or on freed buffers; it never
 * asserts that background work has *not* happened.
 * Returns 0, RAY_ETIMEDOUT or RAY_ENOTINIT. Host threads only. */
int ray__quiesce(int64_t timeout_ms);

/* Pages cut so far for the pooled blocks of `size` bytes' class (0 for
 * sizes above the largest class): how many blocks the pool keeps. */
size_t ray__pool_pages(size_t size);

/* Slabs alive (slab.h), every thread's: those holding blocks, the empty
 * ones threads keep, and orphans whose blocks are not all back. */
size_t ray__slab_count(void);
/* Run fn(arg) on a worker thread of the running runtime (if shutdown drops
 * it unrun, fn never runs). Errors: RAY_EINVAL (fn NULL), RAY_ENOTINIT,
 * RAY_ESHUTDOWN, RAY_ENOMEM. */
int ray__runtime_worker_post(void (*fn)(void *arg), void *arg);

/* Cluster mode: the largest chunk this rank's pulls of large values
 * (results it owns, arguments of tasks it runs) ask for from now on (0 or above 256 MiB: 256 MiB,
 * the default); returns the previous one. Lets the tests take a value in many chunks. */
size_t ray__cluster_set_pull_chunk(size_t bytes);
/* Cluster mode: act as if MPI had failed a message with `rank` (the
 * communication thread takes it as lost at its next turn, as when MPI
 * reports it: ADR-006's fail-stop model). The peer itself goes on, so the
 * shutdown still works. Errors: RAY_ENOTINIT, RAY_ESHUTDOWN, RAY_EINVAL
 * (not in cluster mode, this rank, or out of range). */
int ray__cluster_lose_rank(int rank);

#endif /* RAY_TESTING_H */
