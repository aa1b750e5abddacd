/* actor.h - the actor registry a runtime owns (see actor.c). */
#ifndef RAY_ACTOR_H
#define RAY_ACTOR_H

#include <stdatomic.h>
#include <stddef.h>
#include <uv.h>

#include "lock.h"

typedef struct ray__actor_s ray__actor_t;
struct ray__class_s;
struct ray__handle_ops_s;
struct ray__runtime_s;

typedef struct ray__actors_s {
  ray__rwlock_t lock; /* the id table, names, handles and the list of all */
  struct ray__actor_s **buckets;
  size_t mask;
  size_t count;
  struct ray__actor_s *all; /* every actor not yet freed (for shutdown) */
  uv_mutex_t classes_mu;
  struct ray__class_s *classes; /* one record per class table used */
  atomic_int alive;             /* actors created and not yet freed */
  /* How tasks hold the actor handles their arguments name (task.h): set
   * here, so the task layer calls into actors only through it. */
  const struct ray__handle_ops_s *handle_ops;
} ray__actors_t;

int ray__actors_init(ray__actors_t *reg);
/* After the workers have stopped (the thread calling ray_shutdown): fail
 * and finish every queued call, run every destructor still owed, here, and
 * drop the table's hold on every actor (each is freed with its last
 * reference). */
void ray__actors_shutdown(struct ray__runtime_s *rt);
void ray__actors_destroy(ray__actors_t *reg);

#endif /* RAY_ACTOR_H */
