/* sched.c - the worker pool: a fixed set of threads fed by a ready queue.
 *
 * This is the foundation's pool: one mutex-protected FIFO and a condition
 * variable. The task scheduler (dependency counting, per-worker queues,
 * nested gets) builds on it. Jobs still queued at stop are dropped: the
 * layers above fail their work before stopping the pool. */
#include "sched.h"

#include "internal.h"

static void worker_main(void *arg) {
  ray__sched_t *s = arg;
  ray__thread_role = RAY__ROLE_WORKER;
  uv_mutex_lock(&s->mu);
  for (;;) {
    while (s->head == NULL && !s->stop) uv_cond_wait(&s->cv, &s->mu);
    if (s->stop) break;
    ray__job_t *j = s->head;
    s->head = j->next;
    if (s->head == NULL) s->tail = &s->head;
    uv_mutex_unlock(&s->mu);
    j->fn(j->arg);
    ray__free(j);
    uv_mutex_lock(&s->mu);
  }
  uv_mutex_unlock(&s->mu);
}

int ray__sched_start(ray__sched_t *s, unsigned n) {
  s->head = NULL;
  s->tail = &s->head;
  s->stop = false;
  s->nthreads = 0;
  s->threads = ray__calloc(n, sizeof *s->threads);
  if (s->threads == NULL) return RAY_ENOMEM;
  if (uv_mutex_init(&s->mu) != 0) goto fail_threads;
  if (uv_cond_init(&s->cv) != 0) goto fail_mu;
  for (unsigned i = 0; i < n; i++) {
    if (ray__thread_create(&s->threads[i], worker_main, s) != 0) {
      ray__sched_stop(s);
      return RAY_EIO;
    }
    s->nthreads++;
  }
  return 0;
fail_mu:
  uv_mutex_destroy(&s->mu);
fail_threads:
  ray__free(s->threads);
  s->threads = NULL;
  return RAY_ENOMEM;
}

int ray__sched_post(ray__sched_t *s, void (*fn)(void *arg), void *arg) {
  ray__job_t *j = ray__malloc(sizeof *j);
  if (j == NULL) return RAY_ENOMEM;
  j->next = NULL;
  j->fn = fn;
  j->arg = arg;
  uv_mutex_lock(&s->mu);
  if (s->stop) {
    uv_mutex_unlock(&s->mu);
    ray__free(j);
    return RAY_ESHUTDOWN;
  }
  *s->tail = j;
  s->tail = &j->next;
  uv_cond_signal(&s->cv);
  uv_mutex_unlock(&s->mu);
  return 0;
}

void ray__sched_stop(ray__sched_t *s) {
  uv_mutex_lock(&s->mu);
  s->stop = true;
  uv_cond_broadcast(&s->cv);
  uv_mutex_unlock(&s->mu);
  for (unsigned i = 0; i < s->nthreads; i++) ray__thread_join(&s->threads[i]);
  while (s->head != NULL) {
    ray__job_t *j = s->head;
    s->head = j->next;
    ray__free(j);
  }
  uv_cond_destroy(&s->cv);
  uv_mutex_destroy(&s->mu);
  ray__free(s->threads);
  s->threads = NULL;
  s->nthreads = 0;
}
