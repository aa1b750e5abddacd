/* actor.h - the actor registry a runtime owns (see actor.c). */
#ifndef RAY_ACTOR_H
#define RAY_ACTOR_H

#include <stdatomic.h>
#include <stddef.h>
#include <uv.h>

#include "lock.h"
#include "rustyray/actor.h"

typedef struct ray__actor_s ray__actor_t;
struct ray__class_s;
struct ray__handle_ops_s;
struct ray__runtime_s;

/* Actors on other ranks (cluster mode): how this rank creates, calls, kills
 * and lets go of them, through cluster.c, which sets it when the cluster
 * starts (NULL in one process), so the actor layer never calls up. A
 * remote actor is a stub here: its id, home rank and the sequence number of
 * its next call (0 is the constructor); each call is numbered at
 * submission, and the home rank runs them in that order. */
struct ray__func_s;
/* What another rank needs to call an actor: its id (which names the rank
 * that made it, its owner), its home rank and its class's name. */
enum { RAY__CLASS_NAME_MAX = 128 };
typedef struct ray__actor_info_s {
  uint64_t id;
  int home;
  char cls[RAY__CLASS_NAME_MAX];
} ray__actor_info_t;
typedef struct ray__actor_remote_s {
  /* RAY_NODE_ANY: the rank a new actor lives on (round-robin over the
   * ranks not lost; may be this one). */
  int (*place)(struct ray__runtime_s *rt);
  /* Send the constructor of actor `id` (class `cls`, its ctor function
   * `ctor`) to `home` with `args`, as call 0. */
  int (*create)(struct ray__runtime_s *rt, uint64_t id, int home,
                const struct ray_actor_class_s *cls, struct ray__func_s *ctor,
                const ray_arg_t *args, size_t nargs, const struct ray_actor_opts_s *opts);
  /* Send call `seq` of method `index` (its function `m`: returns and
   * types) from the stub's life `serial` (0: the stub that made it; else
   * one adopted here, whose calls are numbered from 0); out_refs receive
   * its results. */
  int (*call)(struct ray__runtime_s *rt, uint64_t id, int home, uint64_t serial, uint64_t seq,
              uint32_t index, struct ray__func_s *m, const ray_arg_t *args, size_t nargs,
              ray_ref_t *out_refs);
  void (*kill)(struct ray__runtime_s *rt, uint64_t id, int home, bool no_restart);
  /* The last handle of the stub's life `serial` here went: that life ends
   * at the home after its `ncalls` calls (the constructor included) have
   * run there. */
  void (*drop)(struct ray__runtime_s *rt, uint64_t id, int home, uint64_t serial, uint64_t ncalls);
  /* A stub was adopted by name (ray_get_actor): its life `serial` begins
   * at the home. */
  void (*adopted)(struct ray__runtime_s *rt, uint64_t id, int home, uint64_t serial);
  /* The job's names (a registry on rank 0): claim `name` for `in` (with
   * the name taken: RAY_ENAMEEXISTS, and *taken says whose), find one, and
   * free the names of actor `id`. They wait for rank 0's answer (at most
   * 30 s: RAY_ETIMEDOUT). */
  int (*name_put)(struct ray__runtime_s *rt, const char *name, const ray__actor_info_t *in,
                  ray__actor_info_t *taken);
  int (*name_get)(struct ray__runtime_s *rt, const char *name, ray__actor_info_t *out);
  void (*name_del)(struct ray__runtime_s *rt, uint64_t id);
} ray__actor_remote_t;

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
  _Atomic(const ray__actor_remote_t *) remote; /* cluster mode (ray__actors_set_remote) */
} ray__actors_t;

int ray__actors_init(ray__actors_t *reg);
/* Set (or clear, NULL) the remote actors' operations. */
void ray__actors_set_remote(ray__actors_t *reg, const ray__actor_remote_t *ops);

/* For a rank running actors for another (cluster.c): the class named
 * `name` (known here, or a static descriptor), or NULL; and the
 * constructor and method calls with arguments that may be
 * RAY__ARG_ENCODED or RAY__ARG_STORED (task.h), as ray_actor_create and
 * ray_actor_call_id otherwise. */
const struct ray_actor_class_s *ray__actors_class_named(struct ray__runtime_s *rt,
                                                        const char *name);
int ray__actors_create_encoded(struct ray__runtime_s *rt, const struct ray_actor_class_s *cls,
                               const ray_arg_t *args, size_t nargs,
                               const struct ray_actor_opts_s *opts, ray_actor_t *out);
int ray__actors_call_encoded(struct ray__runtime_s *rt, ray_actor_t actor, uint32_t index,
                             const ray_arg_t *args, size_t nargs, ray_ref_t *out_refs);
/* What another rank needs to call actor `id` (a handle this rank holds):
 * its home (this rank for a local actor) and class. Errors: RAY_ENOTFOUND. */
int ray__actors_info(struct ray__runtime_s *rt, uint64_t id, ray__actor_info_t *out);
/* A handle on the actor `in` names, which came from another rank: one more
 * on it if this rank knows it (*made 0), else a new stub (a life of its
 * own: *made its serial, which its home must hear of). Errors:
 * RAY_ENOTFOUND (a class this rank does not know), RAY_ENOMEM. */
int ray__actors_adopt(struct ray__runtime_s *rt, const ray__actor_info_t *in, ray_actor_t *out,
                      uint64_t *made);
/* After the workers have stopped (the thread calling ray_shutdown): fail
 * and finish every queued call, run every destructor still owed, here, and
 * drop the table's hold on every actor (each is freed with its last
 * reference). */
void ray__actors_shutdown(struct ray__runtime_s *rt);
void ray__actors_destroy(ray__actors_t *reg);

#endif /* RAY_ACTOR_H */
