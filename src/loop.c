/* loop.c - the runtime's libuv event loop, on its own thread.
 *
 * Other threads hand it work through a mutex-protected queue and a
 * uv_async_t wake-up (libuv coalesces wake-ups, so the loop drains the whole
 * queue each time). It delivers ray_ref_on_ready callbacks (object.c),
 * completes results a task returned with ray_return_ref once their source
 * is ready (task_ctx.c), and runs the metrics endpoint with its timers
 * (metrics.c). Waits with a timeout park on their own condition variables
 * and spilling has its own thread (memory.c): neither uses the loop.
 *
 * Stop: ray__loop_stop sets `stop` and wakes the loop, which drains the
 * queue until it is empty (items queued meanwhile included), runs the stop
 * hook (the endpoint closes its handles), closes its wake-up handle and
 * returns from uv_run once no handle is left.
 *
 * Quiet: `inflight` counts items posted and not yet done running (an item
 * leaves it after its run returns, so what the run let go of is gone), for
 * ray__loop_quiesce, the tests' hook ray__quiesce.
 *
 * Locks: `mu` guards the queue, `inflight` and `stop` and is a leaf; items
 * run with no lock held. */
#include "loop.h"

#include "internal.h"

static void drain(uv_async_t *handle) {
  ray__loop_t *l = handle->data;
  for (;;) {
    uv_mutex_lock(&l->mu);
    ray__loop_item_t *it = l->head;
    l->head = NULL;
    l->tail = &l->head;
    bool stop = l->stop;
    uv_mutex_unlock(&l->mu);
    if (it == NULL) {
      if (stop) {
        if (l->on_stop != NULL) l->on_stop(l->on_stop_arg);
        l->on_stop = NULL;
        uv_close((uv_handle_t *)&l->wake, NULL);
      }
      return;
    }
    unsigned long done = 0;
    while (it != NULL) {
      ray__loop_item_t *next = it->next;
      it->run(it); /* no lock held: may run user code */
      it = next;
      done++;
    }
    uv_mutex_lock(&l->mu);
    l->inflight -= done;
    if (l->inflight == 0) uv_cond_broadcast(&l->idle_cv);
    uv_mutex_unlock(&l->mu);
  }
}

static void loop_main(void *arg) {
  ray__loop_t *l = arg;
  ray__thread_role = RAY__ROLE_LOOP;
  uv_run(&l->loop, UV_RUN_DEFAULT);
}

void ray__loop_on_stop(ray__loop_t *l, void (*fn)(void *arg), void *arg) {
  uv_mutex_lock(&l->mu);
  l->on_stop = fn;
  l->on_stop_arg = arg;
  uv_mutex_unlock(&l->mu);
}

int ray__loop_start(ray__loop_t *l) {
  l->on_stop = NULL;
  l->on_stop_arg = NULL;
  l->head = NULL;
  l->tail = &l->head;
  l->inflight = 0;
  l->stop = false;
  if (uv_mutex_init(&l->mu) != 0) return RAY_ENOMEM;
  if (uv_cond_init(&l->idle_cv) != 0) {
    uv_mutex_destroy(&l->mu);
    return RAY_ENOMEM;
  }
  if (uv_loop_init(&l->loop) != 0) goto fail_mu;
  l->wake.data = l;
  if (uv_async_init(&l->loop, &l->wake, drain) != 0) goto fail_loop;
  if (ray__thread_create(&l->thread, loop_main, l) != 0) {
    uv_close((uv_handle_t *)&l->wake, NULL);
    uv_run(&l->loop, UV_RUN_DEFAULT);
    goto fail_loop;
  }
  return 0;
fail_loop:
  uv_loop_close(&l->loop);
fail_mu:
  uv_cond_destroy(&l->idle_cv);
  uv_mutex_destroy(&l->mu);
  return RAY_EIO;
}

void ray__loop_post(ray__loop_t *l, ray__loop_item_t *item) {
  item->next = NULL;
  uv_mutex_lock(&l->mu);
  *l->tail = item;
  l->tail = &item->next;
  l->inflight++;
  uv_mutex_unlock(&l->mu);
  uv_async_send(&l->wake);
}

void ray__loop_stop(ray__loop_t *l) {
  uv_mutex_lock(&l->mu);
  l->stop = true;
  uv_mutex_unlock(&l->mu);
  uv_async_send(&l->wake);
  ray__thread_join(&l->thread);
  uv_loop_close(&l->loop);
  uv_cond_destroy(&l->idle_cv);
  uv_mutex_destroy(&l->mu);
}

int ray__loop_quiesce(ray__loop_t *l, uint64_t deadline) {
  int rc = 0;
  uv_mutex_lock(&l->mu);
  while (rc == 0 && l->inflight > 0)
    rc = ray__thread_cond_wait_until(&l->idle_cv, &l->mu, deadline);
  uv_mutex_unlock(&l->mu);
  return rc;
}
