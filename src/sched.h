/* sched.h - the worker pool (see sched.c). */
#ifndef RAY_SCHED_H
#define RAY_SCHED_H

#include <stdbool.h>
#include <uv.h>

typedef struct ray__job_s {
  struct ray__job_s *next;
  void (*fn)(void *arg);
  void *arg;
} ray__job_t;

typedef struct ray__sched_s {
  uv_thread_t *threads;
  unsigned nthreads;
  uv_mutex_t mu; /* guards the queue and `stop` */
  uv_cond_t cv;
  ray__job_t *head;
  ray__job_t **tail;
  bool stop;
} ray__sched_t;

/* Start n worker threads. Errors: RAY_ENOMEM, RAY_EIO. */
int ray__sched_start(ray__sched_t *s, unsigned n);
/* Queue fn(arg) for a worker. Errors: RAY_ENOMEM, RAY_ESHUTDOWN. */
int ray__sched_post(ray__sched_t *s, void (*fn)(void *arg), void *arg);
/* Let running jobs finish, drop queued ones, join every worker. */
void ray__sched_stop(ray__sched_t *s);

#endif /* RAY_SCHED_H */
