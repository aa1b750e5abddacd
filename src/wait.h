/* wait.h - blocking until store entries complete, and the count of callers
 * parked in such a wait that shutdown waits for (see wait.c). */
#ifndef RAY_WAIT_H
#define RAY_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rustyray/object.h"
#include "scheduler.h"
#include "store.h"

struct ray__runtime_s;

/* Bracket the slow (parking) path of a blocking call: shutdown waits until
 * every such caller has left before it frees the store. Enter counts the
 * caller, then re-checks that `rt` is still the running runtime and not
 * stopping (RAY_ESHUTDOWN otherwise, uncounted), so a caller that loaded
 * `rt` just before shutdown began never parks on a runtime being torn
 * down. No lock on this path (wait.c has the ordering argument). Nothing
 * may touch the runtime after ray__wait_blocking_leave. The counter outlives
 * every runtime. */
int ray__wait_blocking_enter(struct ray__runtime_s *rt);
void ray__wait_blocking_leave(void);
/* Shutdown's side: set rt->stopping (no caller parks once this returns:
 * one that counted itself before sees it, or is waited for); later, once
 * every pending object has been failed, wait until every parked caller has
 * left (blocks). */
void ray__wait_blocking_stop(struct ray__runtime_s *rt);
void ray__wait_blocking_drain(void);

/* Wait until `ref` (pending when called; the caller holds a reference on
 * it) completes. Returns 0 (it did), RAY_ETIMEDOUT, RAY_ENOTFOUND,
 * RAY_ESHUTDOWN. */
int ray__wait_one(struct ray__runtime_s *rt, uint64_t id, int64_t timeout_ms);

/* Wait until `need` of refs[0..n) are complete (or, stop_on_fail, one has
 * failed) or the timeout passes. `states` holds their states (RAY__PENDING,
 * READY, FAILED, -1 unknown) from a pass the caller just made, and is
 * refreshed on return. It holds a reference on each pending one while it
 * waits (so a concurrent release cannot free it). Returns 0, RAY_ETIMEDOUT,
 * RAY_ENOTFOUND, RAY_ENOMEM, RAY_ESHUTDOWN. */
int ray__wait_many(struct ray__runtime_s *rt, const ray_ref_t *refs, size_t n,
                   const ray__groups_t *g, int8_t *states, size_t need, bool stop_on_fail,
                   int64_t timeout_ms);

#endif /* RAY_WAIT_H */
