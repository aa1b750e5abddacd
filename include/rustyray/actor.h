/* rustyray/actor.h - actors: stateful objects whose method calls return refs.
 *
 * Ray's @ray.remote class, in C. Describe a class once (constructor,
 * destructor, a method table with return types), create actors from it, and
 * call their methods; every call returns result refs at once, typed as the
 * method declares, and its results land in the object store like task
 * results. Method calls of one actor run one at a time (or up to
 * max_concurrency at once), in submission order, on the shared worker pool:
 * there is no thread per actor. A call whose turn has come may also run on
 * the host thread that waits for its result (ray_config_t.host_help). */
#ifndef RUSTYRAY_ACTOR_H
#define RUSTYRAY_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An actor handle: a small value, never reused. Each handle the library
 * gives you carries one reference (ray_actor_release drops it). */
typedef struct ray_actor_s {
  uint64_t id;
} ray_actor_t;

/* Constructor: reads its arguments from ctx (as a task does) and sets
 * *state. Return 0, or fail (non-zero / ray_fail): the actor dies and every
 * call fails with RAY_EACTORDIED caused by this error. */
typedef int (*ray_actor_ctor_fn)(ray_task_ctx_t *ctx, void **state);
/* Destructor: runs exactly once per successful construction (on kill,
 * release, restart or shutdown), with no internal lock held, on a worker
 * thread: kill and release only queue it, never run it on their caller's
 * thread. A restart's constructor runs after it has returned. Once
 * ray_shutdown() has begun, the destructors still owed run on the thread
 * calling ray_shutdown() (or on the caller of a kill or release that races
 * with it, or on a host thread that was running the actor's last call for
 * its own ray_get: ray_config_t.host_help). */
typedef void (*ray_actor_dtor_fn)(void *state);
/* A method: as a task function, with the actor's state. */
typedef int (*ray_method_fn)(ray_task_ctx_t *ctx, void *state);

typedef struct ray_method_def_s {
  const char *name;
  ray_method_fn fn;
  const uint32_t *return_types; /* num_returns type tags */
  size_t num_returns;           /* 1..RAY_MAX_RETURNS */
} ray_method_def_t;

/* A class: usually a static const table in the user's program. It must stay
 * valid and unchanged while the runtime runs. */
typedef struct ray_actor_class_s {
  const char *name;
  ray_actor_ctor_fn ctor; /* NULL: state is NULL */
  ray_actor_dtor_fn dtor; /* may be NULL */
  const ray_method_def_t *methods;
  size_t num_methods;
} ray_actor_class_t;

typedef struct ray_actor_opts_s {
  /* A unique name (copied) for ray_get_actor(); NULL: unnamed. In cluster
   * mode the name is the whole job's, kept on rank 0: creating the actor
   * then waits for rank 0's answer on other ranks (a round trip, at most
   * 30 s: RAY_ETIMEDOUT; RAY_ENODE if rank 0 was lost). */
  const char *name;
  /* With a name already taken: return that actor instead of RAY_ENAMEEXISTS. */
  bool get_if_exists;
  /* Times the constructor runs again after a fatal failure. Default 0. */
  uint32_t max_restarts;
  /* Times a call that was in flight when the actor died is retried after a
   * restart. Default 0. */
  uint32_t max_task_retries;
  /* Calls running at once. Default 1 (strictly one at a time). */
  uint32_t max_concurrency;
  /* Keep the actor after its last handle is released (until killed or
   * shutdown), as Ray's lifetime="detached". Named actors are kept too. */
  bool detached;
  /* Cluster mode: the rank the actor lives on (its home), or RAY_NODE_ANY
   * (ray_actor_opts_init's default: the ranks in turn, round-robin, this one
   * included, skipping lost ones). An actor on another rank
   * is created there from its class's name, so the class must be a static
   * descriptor there (ray_static_class_add) or known to that rank's
   * runtime already; calls from this rank go there and run in the order
   * they were made; kill, release, restarts, retries and max_concurrency
   * behave as in one process; refs and actor handles inside arguments and
   * results travel. A handle that reaches another rank (as an argument, or
   * inside a value) is a stub there, whose calls go to the home and run in
   * the order that rank made them; the actor lives until every rank's
   * handles are gone and their calls ran (the home counts them). Its class
   * must be known by name where a handle arrives (a static descriptor).
   * ray_ctx_actor in a remote actor's method gives the home's own handle
   * (another id than its maker's; it travels as well). Outside cluster
   * mode, or this rank: the actor is local. Errors: RAY_EINVAL (below
   * RAY_NODE_ANY or not a rank). */
  int node;
} ray_actor_opts_t;

/* A class every later ray_init knows by name, for actors created on this
 * rank by another (ray_actor_opts_t.node): a static descriptor, as
 * ray_static_function_t is for functions. `c->cls` must stay valid for the
 * process's life; adding the same descriptor twice is a no-op. Does not need
 * the runtime; thread-safe. */
typedef struct ray_static_class_s {
  const ray_actor_class_t *cls;
  struct ray_static_class_s *next; /* private */
} ray_static_class_t;
RAY_EXTERN void ray_static_class_add(ray_static_class_t *c);

/* Fill `opts` with the defaults. NULL is a no-op. */
RAY_EXTERN void ray_actor_opts_init(ray_actor_opts_t *opts);

/* Resolve a method name to its index in the class's table, once, for
 * ray_actor_call_id(). Does not need the runtime.
 * Errors: RAY_EINVAL (NULL argument), RAY_ENOTFOUND. */
RAY_EXTERN int ray_actor_method(const ray_actor_class_t *cls, const char *name, uint32_t *out);

/* Create an actor and return at once (in cluster mode a named one waits
 * for rank 0: see `name`); the constructor runs on the worker
 * pool when its ref arguments are ready, and calls made meanwhile queue
 * behind it. *out receives a handle reference.
 * Errors: RAY_EINVAL (NULL cls/out, a malformed class: no name, a method
 * without name or fn, bad return counts or types; bad args as for
 * ray_task_submit; max_concurrency 0 after ray_actor_opts_init is fine and
 * means 1, an invalid `node`), RAY_ENAMEEXISTS, RAY_ENOTFOUND (a ref
 * argument), RAY_ENOTINIT, RAY_ESHUTDOWN, RAY_ENOMEM; named in cluster mode
 * also RAY_ETIMEDOUT, RAY_ENODE. Never blocks but for that; thread-safe. */
RAY_EXTERN int ray_actor_create(const ray_actor_class_t *cls, const ray_arg_t *args, size_t nargs,
                                const ray_actor_opts_t *opts, ray_actor_t *out);

/* Call `method` and return at once; out_refs receives its results (pending,
 * typed as declared). Ref arguments are resolved before the method runs,
 * without holding a worker. Calls to a dead actor succeed and return refs
 * that fail with RAY_EACTORDIED. opts: only num_returns (a check) is used.
 * Errors: RAY_EINVAL (NULL method/out_refs, bad args), RAY_ENOTFOUND
 * (unknown method, or a released/unknown actor handle), RAY_ENOTINIT,
 * RAY_ESHUTDOWN, RAY_ENOMEM. Never blocks; thread-safe. */
RAY_EXTERN int ray_actor_call(ray_actor_t actor, const char *method, const ray_arg_t *args,
                              size_t nargs, const ray_task_opts_t *opts, ray_ref_t *out_refs);
/* The same with a method index from ray_actor_method() (RAY_ENOTFOUND when
 * out of range). */
RAY_EXTERN int ray_actor_call_id(ray_actor_t actor, uint32_t method, const ray_arg_t *args,
                                 size_t nargs, const ray_task_opts_t *opts, ray_ref_t *out_refs);

/* Kill the actor: a running call finishes; queued and future calls fail
 * with RAY_EACTORDIED; the destructor runs once, later, on a worker (see
 * ray_actor_dtor_fn); the name is freed at once.
 * With no_restart false and restarts left, an actor that is alive restarts
 * instead (destructor, then constructor; queued calls continue); one whose
 * constructor has not finished yet, or that is already restarting, dies for
 * good. A queued call that ray_cancel failed earlier keeps RAY_ECANCELED.
 * Errors: RAY_ENOTFOUND, RAY_ENOTINIT. Killing a dead actor returns 0.
 * Never blocks and never runs user code; thread-safe. */
RAY_EXTERN int ray_actor_kill(ray_actor_t actor, bool no_restart);

/* Handle references. An unnamed, non-detached actor is destroyed (its
 * destructor runs once, on a worker: see ray_actor_dtor_fn) when its last
 * handle is released and its queued calls have run; its handle id is
 * unknown from the release on.
 * Errors: RAY_ENOTFOUND, RAY_ENOTINIT. Never block and never run user
 * code; thread-safe. */
RAY_EXTERN int ray_actor_retain(ray_actor_t actor);
RAY_EXTERN int ray_actor_release(ray_actor_t actor);

/* Find a named actor; *out receives a new handle reference. In cluster
 * mode it asks rank 0's registry (a round trip from other ranks, at most
 * 30 s) and the handle may be of an actor on any rank (its class must be
 * a static descriptor here: ray_static_class_add).
 * Errors: RAY_EINVAL, RAY_ENOTFOUND, RAY_ENOTINIT; in cluster mode also
 * RAY_ETIMEDOUT, RAY_ENODE (rank 0 lost), RAY_ENOMEM. */
RAY_EXTERN int ray_get_actor(const char *name, ray_actor_t *out);

/* From inside a method: end the actor after this call returns (Ray's
 * exit_actor). The call's results fail with RAY_EACTORDIED; with restarts
 * left the actor restarts, else it is dead for good. Returning
 * RAY_EACTORDIED from a method does the same.
 * Errors: RAY_EINVAL (NULL ctx, or not in an actor method). */
RAY_EXTERN int ray_actor_exit(ray_task_ctx_t *ctx);

/* From inside a method: end the actor for good after this call returns,
 * whatever restarts it has left (Ray's intended exit, the C++ API's
 * ray::ExitActor). The call's results and the calls queued behind it fail
 * with RAY_EACTORDIED; the destructor runs once, later, as on a kill; the
 * name is freed. A later ray_actor_exit() in the same call does not undo it.
 * Errors: RAY_EINVAL (NULL ctx, or not in an actor method). */
RAY_EXTERN int ray_actor_exit_no_restart(ray_task_ctx_t *ctx);

/* How many times the current actor has been restarted (by a fatal call,
 * ray_actor_exit, or ray_actor_kill with no_restart false): 0 in its first
 * life; a restarted constructor sees the new count. Ray's
 * WasCurrentActorRestarted() is this count != 0.
 * Errors: RAY_EINVAL (NULL, or not in an actor method or constructor). */
RAY_EXTERN int ray_ctx_actor_restarts(ray_task_ctx_t *ctx, uint32_t *out);

/* The index of the running method in its class's table (as
 * ray_actor_method gives it): for one function serving several methods.
 * Errors: RAY_EINVAL (NULL, or not in an actor method). */
RAY_EXTERN int ray_ctx_method_index(ray_task_ctx_t *ctx, uint32_t *out);

/* The actor running the current method (borrowed handle).
 * Errors: RAY_EINVAL (NULL, or not in an actor method or constructor). */
RAY_EXTERN int ray_ctx_actor(ray_task_ctx_t *ctx, ray_actor_t *out);

/* Pass an actor handle as an argument: the task or call holds a handle
 * reference until it finishes; the function reads it with
 * ray_ctx_arg_actor() (borrowed: retain it to keep it). */
static inline ray_arg_t ray_arg_actor(ray_actor_t actor) {
  ray_arg_t a;
  a.kind = RAY_ARG_ACTOR;
  a.type = RAY_TYPE_ACTOR;
  a.u.i64 = (int64_t)actor.id;
  return a;
}
/* Errors: RAY_EINVAL (NULL, index out of range), RAY_ETYPE (not an actor). */
RAY_EXTERN int ray_ctx_arg_actor(ray_task_ctx_t *ctx, size_t i, ray_actor_t *out);

/* Actor handles inside values: a msgpack value may contain handles,
 * encoded as msgpack ext values of this type (8 bytes: the id,
 * big-endian), as it may contain refs (RAY_MSGPACK_EXT_REF). An object
 * holds a handle reference on every actor inside it until the object is
 * freed, and so does a task argument holding one; so the actor lives at
 * least as long as the value, wherever it goes (a result, an argument,
 * inside another object). ray_put_msgpack, ray_put_msgpack_bytes,
 * ray_arg_msgpack, ray_arg_msgpack_bytes, ray_return_msgpack and
 * ray_return_msgpack_bytes fail with RAY_ENOTFOUND for an unknown or
 * released handle inside the value. A reader that keeps a handle beyond the
 * value retains it (ray_actor_retain). An actor whose own constructor
 * arguments hold a value naming it is kept until shutdown (a cycle). In
 * cluster mode values holding handles travel between ranks (ray_actor_opts_t.node). */
#define RAY_MSGPACK_EXT_ACTOR 83

/* Write `actor` into a msgpack value being packed. Does not need the
 * runtime and takes no reference (the value's object takes its own).
 * Errors: RAY_EINVAL (pk NULL, a zero handle), RAY_ENOMEM (the packer's
 * write failed). */
RAY_EXTERN int ray_msgpack_pack_actor(msgpack_packer *pk, ray_actor_t actor);
/* Read an actor handle out of a decoded msgpack value (borrowed: retain it
 * to keep it beyond the value). Errors: RAY_EINVAL (NULL), RAY_ETYPE (not an
 * actor ext), RAY_EDECODE (a malformed one: not 8 bytes, id 0). */
RAY_EXTERN int ray_msgpack_actor(const msgpack_object *obj, ray_actor_t *out);

#ifdef __cplusplus
}
#endif
#endif /* RUSTYRAY_ACTOR_H */
