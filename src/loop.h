/* loop.h - the runtime's libuv event loop thread (see loop.c). */
#ifndef RAY_LOOP_H
#define RAY_LOOP_H

#include <stdbool.h>
#include <uv.h>

/* Work for the loop thread. `run` owns the item from then on. */
typedef struct ray__loop_item_s {
  struct ray__loop_item_s *next;
  void (*run)(struct ray__loop_item_s *item);
} ray__loop_item_t;

typedef struct ray__loop_s {
  uv_loop_t loop;
  uv_async_t wake;
  uv_thread_t thread;
  uv_mutex_t mu;     /* guards the queue, `inflight` and `stop`; a leaf lock */
  uv_cond_t idle_cv; /* (mu) inflight dropped to 0 */
  ray__loop_item_t *head;
  ray__loop_item_t **tail;
  unsigned long inflight; /* items posted and not yet done running */
  bool stop;
  /* Run on the loop thread when it stops, to close handles of its own. */
  void (*on_stop)(void *arg);
  void *on_stop_arg;
} ray__loop_t;

/* Start the loop thread. Errors: RAY_ENOMEM, RAY_EIO. */
int ray__loop_start(ray__loop_t *l);
/* Queue `item` to run on the loop thread. Never blocks beyond a leaf lock;
 * callable with a shard lock held. */
void ray__loop_post(ray__loop_t *l, ray__loop_item_t *item);
/* Wait until every item posted so far (and every item they posted) has
 * finished running, or `deadline` (uv_hrtime ns, UINT64_MAX: none) passes.
 * Returns 0 or RAY_ETIMEDOUT. Not from the loop thread (it would wait for
 * itself). For ray__quiesce. */
int ray__loop_quiesce(ray__loop_t *l, uint64_t deadline);
/* Set the stop hook (before any item that opens handles is posted). */
void ray__loop_on_stop(ray__loop_t *l, void (*fn)(void *arg), void *arg);
/* Run every queued item (including items they queue), then stop and join. */
void ray__loop_stop(ray__loop_t *l);

#endif /* RAY_LOOP_H */
