/* rustyray.h - librustyray, Ray Core's programming model in one process.
 *
 * This umbrella header is the whole public API: anything not declared in it
 * (or in the rustyray/ headers it includes) is private and may change
 * without notice.
 *
 * Conventions: every public name starts with ray_ / RAY_; every fallible
 * function returns 0 (RAY_OK) or a negative RAY_E* code (rustyray/error.h);
 * outputs go through pointer parameters.
 *
 * What holds for every function unless its own comment says otherwise:
 *
 * - Thread-safe: callable from any thread at once, including from task
 *   bodies, actor methods and callbacks the library runs. The exceptions
 *   say so: ray_init/ray_shutdown (host threads only, RAY_EBUSY from the
 *   library's own threads), the ray_ctx_* and ray_return_* calls (the
 *   running body's own context, on its thread, while it runs), and a
 *   ray_error_t, a ray_buf_t or a ray_msgpack_t, which one thread uses at
 *   a time like any plain C value.
 * - Non-blocking: returns without waiting for other threads' work. The
 *   calls that wait say so and every such wait is bounded: the gets and
 *   ray_wait (their timeout_ms), puts and ray_return_* while the store is
 *   full (the config's store_full_timeout_ms), ray_init (until the metrics
 *   endpoint is bound) and ray_shutdown (until the calls in flight leave
 *   and the library's threads are joined).
 * - Before ray_init and after ray_shutdown: RAY_ENOTINIT. A call racing
 *   ray_shutdown on another thread either completes on the live runtime or
 *   fails with RAY_ESHUTDOWN or RAY_ENOTINIT; it never touches freed memory.
 * - NULL where a pointer is required, and counts or sizes no call can
 *   take: RAY_EINVAL, before anything is changed.
 * - A ray_ref_t or ray_actor_t the library gives you carries one reference
 *   that you release (ray_ref_release, ray_actor_release). */
#ifndef RUSTYRAY_H
#define RUSTYRAY_H

#include "rustyray/version.h"
#include "rustyray/error.h"
#include "rustyray/runtime.h"
#include "rustyray/object.h"
#include "rustyray/msgpack.h"
#include "rustyray/task.h"
#include "rustyray/actor.h"
#include "rustyray/log.h"
#include "rustyray/typed.h"

#endif /* RUSTYRAY_H */
