/* task.h - remote functions and tasks (see function.c and task.c), and the
 * actor hooks the task layer calls (actor.c). */
#ifndef RAY_TASK_H
#define RAY_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "rustyray/task.h"
#include "scheduler.h"
#include "store.h"

struct ray__runtime_s;

/* ---- Function registry (function.c) ---- */

typedef struct ray__func_s {
  uint64_t id;
  char *name;
  ray_task_fn fn;
  void *arg;
  uint32_t nreturns;
  uint32_t types[RAY_MAX_RETURNS];
} ray__func_t;

enum { RAY__FUNC_CHUNK = 256, RAY__FUNC_CHUNKS = 256 };

/* Handles resolve without a lock: chunks never move, and an index is
 * published (count, release) only after its slot is filled. */
typedef struct ray__registry_s {
  uv_mutex_t mu; /* registration and lookup by name */
  uint32_t epoch; /* tells this runtime's handles from an earlier one's */
  atomic_uint count;
  ray__func_t **chunks[RAY__FUNC_CHUNKS];
} ray__registry_t;

int ray__registry_init(ray__registry_t *r);
void ray__registry_destroy(ray__registry_t *r);
/* Register every static descriptor (ray_static_function_add) with the
 * running runtime. Errors: as ray_function_register. */
int ray__registry_add_statics(void);
/* The function behind a handle, or NULL (stale or bogus). */
ray__func_t *ray__registry_get(ray__registry_t *r, ray_function_t fn);

/* ---- Tasks (task.c) ---- */

struct ray__actor_s;

/* What a task runs: a function, an actor's constructor, or a method. */
enum { RAY__TASK_FN = 0, RAY__TASK_CTOR = 1, RAY__TASK_METHOD = 2 };

/* Task states: PENDING -> RUNNING, or PENDING -> CANCELED (cancelled, or a
 * call failed because its actor died); one CAS decides. Then DONE
 * (ray__task_finish). Back to PENDING only in actor.c: a call retried after
 * its actor restarts, and the kept constructor run again. */
enum { RAY__T_PENDING, RAY__T_RUNNING, RAY__T_CANCELED, RAY__T_DONE };

typedef struct ray__task_arg_s {
  ray__watch_t watch; /* dependency watch (ref args) */
  struct ray__task_s *task;
  uint32_t kind;    /* RAY_ARG_VALUE, RAY_ARG_REF or RAY_ARG_ACTOR, as stored */
  uint32_t type;
  bool by_value;    /* the caller passed a value (maybe stored as a ref) */
  uint64_t ref_id;  /* REF: the object (one reference held); ACTOR: the handle id (held) */
  const void *data; /* the bytes: inline, or the pinned view while running */
  size_t size;
  ray_buf_t view;
} ray__task_arg_t;

typedef struct ray__task_s {
  ray__runnable_t rn;           /* rn.next also links an actor's mailbox */
  struct ray__runtime_s *rt;
  ray__func_t *fn;
  struct ray__actor_s *actor;   /* CTOR and METHOD (one actor reference held) */
  uint64_t task_id;
  const char *name;
  atomic_int deps;              /* unresolved ref args + 1 while submitting */
  atomic_int state;
  atomic_int refs;              /* the execution path + cancellers in flight
                                   + a dying actor's hold (actor.c) */
  atomic_bool cancel;
  atomic_int dep_status;        /* the first failed argument's code */
  atomic_uint_fast64_t dep_failed; /* and its object id */
  uint8_t kind;
  bool ready;                   /* METHOD: dependencies resolved (actor mutex) */
  bool admitted;                /* METHOD: counted in the actor's running calls */
  uint32_t retries_left;        /* METHOD: retries after an actor death */
  struct ray__task_s *kill_next; /* METHOD: in a dying actor's list of failed calls */
  bool kill_ready;              /* METHOD: was ready (not waiting for arguments) then */
  bool kill_cancelled;          /* METHOD: cancelled before (its results failed already) */
  uint32_t nargs;
  uint32_t nreturns;
  uint32_t max_retries;
  bool retry_on_error;
  atomic_int fail_code;          /* its results failed with this code (0: not failed) */
  ray_ref_t *returns;
  ray__task_arg_t args[];
} ray__task_t;

/* Submit a task: a function call (actor NULL), an actor's constructor or a
 * method call. See ray_task_submit for the contract; *out_task (when not
 * NULL) receives the task for a constructor, which the actor keeps. */
int ray__task_submit(struct ray__runtime_s *rt, ray__func_t *fn, struct ray__actor_s *actor,
                     uint8_t kind, const ray_arg_t *args, size_t nargs,
                     const ray_task_opts_t *opts, ray_ref_t *out_refs, ray__task_t **out_task);

/* Fail every result of `t` with a new error (code, origin = t's name,
 * formatted message); cause_id, when not 0, is a failed object the error
 * continues with (shared by reference); `cause`, when not NULL, is copied in
 * as the error's cause. Out of memory, the results still fail (code only). */
void ray__task_fail(ray__task_t *t, int code, uint64_t cause_id, const ray_error_t *cause,
                    const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* Mark `t` DONE, release its argument references (objects and actor
 * handles), count it finished (not a constructor: ray_stats, ray__quiesce)
 * and drop the execution path's reference. */
void ray__task_finish(ray__task_t *t);
/* Add a reference (void *: the store's claim_producer hook) / drop one,
 * freeing the task with the last. */
void ray__task_hold(void *t);
void ray__task_unref(ray__task_t *t);

/* ---- Actors (actor.c), as the task layer sees them ---- */

/* A method call joins its actor's mailbox (at submission, in order). */
void ray__actor_enqueue(ray__task_t *t);
/* A method call's (or the constructor's) arguments are all resolved. */
void ray__actor_call_ready(ray__task_t *t);
/* A method call has run, or will not (cancelled, failed arguments,
 * shutdown); fatal: it ended its actor. Returns the next call of this actor
 * to run inline on this worker, or NULL. Finishes `t`, unless it is retried
 * after the restart (then it goes back to the head of the mailbox). */
ray__task_t *ray__actor_call_done(ray__task_t *t, bool fatal);
/* The constructor has run, or cannot: err NULL on success (state set),
 * else why not (taken over). */
void ray__actor_ctor_done(ray__task_t *ctor, ray_error_t *err);
/* Run the class's constructor (storing the actor's state); the state a
 * method runs with. */
int ray__actor_construct(struct ray__actor_s *a, ray_task_ctx_t *ctx);
void *ray__actor_state(struct ray__actor_s *a);
uint64_t ray__actor_id(struct ray__actor_s *a);
/* Handle references held by tasks that take an actor argument. */
int ray__actor_handle_retain(struct ray__runtime_s *rt, uint64_t id);
void ray__actor_handle_release(struct ray__runtime_s *rt, uint64_t id);

#endif /* RAY_TASK_H */
