/* rustyray/task.h - remote functions: register, submit, run, cancel.
 *
 * Ray's @ray.remote function, in C. Register a function once with its
 * return types; submit it with value or ref arguments and get result refs
 * back at once, already typed. The task runs on a worker thread as soon as
 * every ref argument is ready (dependency counting, no polling), or on your
 * own thread if that thread waits for its result with no timeout while it
 * is still queued (ray_config_t.host_help, on by default). A task
 * whose ref argument failed does not run: its results fail with
 * RAY_EDEPFAILED, caused by the upstream error.
 *
 * Inside the function, a context gives the arguments (typed, zero-copy) and
 * takes the results (ray_return_*) or a structured failure (ray_fail).
 * Tasks may submit tasks and ray_get/ray_wait on them: a worker blocked in a
 * get runs other ready work meanwhile, so nested tasks never deadlock the
 * pool, whatever its size. */
#ifndef RUSTYRAY_TASK_H
#define RUSTYRAY_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "object.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits. */
#define RAY_MAX_ARGS 64
#define RAY_MAX_RETURNS 16

/* The context of one running task (or actor call). Valid only during the
 * call, and only on the thread running it. */
typedef struct ray_task_ctx_s ray_task_ctx_t;

/* A remote function. Return 0 on success. A non-zero return fails the task:
 * with the error set by ray_fail() if it was called, else with the returned
 * code (RAY_ETASK when it is not a RAY_E* code). `arg` is the pointer given
 * at registration. */
typedef int (*ray_task_fn)(ray_task_ctx_t *ctx, void *arg);

/* A registered function: a small value, valid for the runtime it was
 * registered in (a stale handle fails with RAY_ENOTFOUND). */
typedef struct ray_function_s {
  uint64_t id;
} ray_function_t;

/* Register `fn` under a unique `name` (copied), returning `num_returns`
 * values (1..RAY_MAX_RETURNS) of the types in return_types[] (each a
 * ray_type_t or user tag; RAY_TYPE_BYTES for untyped). Functions live until
 * ray_shutdown().
 * Errors: RAY_EINVAL (NULL name/fn/return_types/out, empty name, a 0 type,
 * num_returns out of range), RAY_ENAMEEXISTS, RAY_ENOTINIT, RAY_ENOMEM.
 * Never blocks; thread-safe. */
RAY_EXTERN int ray_function_register(const char *name, ray_task_fn fn, void *arg,
                                     const uint32_t *return_types, size_t num_returns,
                                     ray_function_t *out);

/* A function registered with every runtime at ray_init: a static
 * descriptor (the typed layer, rustyray/typed.h, declares one per remote
 * function and adds it from a constructor before main). */
typedef struct ray_static_function_s {
  const char *name;
  ray_task_fn fn;
  void *arg;
  const uint32_t *return_types;
  size_t num_returns;
  ray_function_t *handle;             /* set by each ray_init (may be NULL) */
  struct ray_static_function_s *next; /* private */
} ray_static_function_t;

/* Add `f` to the functions every later ray_init registers (a runtime
 * already running is not affected). `f` must stay valid for the process's
 * life; adding the same descriptor twice is a no-op. Does not need the
 * runtime; thread-safe. ray_init fails with RAY_ENAMEEXISTS if two
 * descriptors share a name and RAY_EINVAL if one is malformed. */
RAY_EXTERN void ray_static_function_add(ray_static_function_t *f);

/* Find a registered function by name. Errors: RAY_EINVAL, RAY_ENOTFOUND,
 * RAY_ENOTINIT. Thread-safe. */
RAY_EXTERN int ray_function_lookup(const char *name, ray_function_t *out);

/* The function's name (valid until shutdown) in *name and its number of
 * returns in *num_returns (either may be NULL).
 * Errors: RAY_ENOTFOUND (stale or bogus handle), RAY_ENOTINIT. */
RAY_EXTERN int ray_function_info(ray_function_t fn, const char **name, size_t *num_returns);

/* ---- Arguments ---------------------------------------------------------- */

enum {
  RAY_ARG_VALUE = 1,
  RAY_ARG_REF = 2,
  RAY_ARG_ACTOR = 3,        /* rustyray/actor.h */
  RAY_ARG_MSGPACK_BYTES = 4 /* ray_arg_msgpack_bytes */
};

/* One argument, built with the ray_arg_* helpers below (no allocation).
 * Value arguments point at caller memory that must stay valid until
 * ray_task_submit() returns; it copies them (small values inline in the task,
 * large ones into the object store). Ref arguments are retained by the task
 * until it finishes. */
typedef struct ray_arg_s {
  uint32_t kind; /* RAY_ARG_VALUE or RAY_ARG_REF */
  uint32_t type; /* the value's ray_type_t */
  union {
    int64_t i64;
    double f64;
    struct {
      const void *data;
      size_t size;
    } bytes;
    const char *str;
    const msgpack_object *msgpack;
    ray_ref_t ref;
  } u;
} ray_arg_t;

static inline ray_arg_t ray_arg_i64(int64_t v) {
  ray_arg_t a;
  a.kind = RAY_ARG_VALUE;
  a.type = RAY_TYPE_I64;
  a.u.i64 = v;
  return a;
}
static inline ray_arg_t ray_arg_f64(double v) {
  ray_arg_t a;
  a.kind = RAY_ARG_VALUE;
  a.type = RAY_TYPE_F64;
  a.u.f64 = v;
  return a;
}
/* `s` is NUL-terminated. */
static inline ray_arg_t ray_arg_str(const char *s) {
  ray_arg_t a;
  a.kind = RAY_ARG_VALUE;
  a.type = RAY_TYPE_STR;
  a.u.str = s;
  return a;
}
static inline ray_arg_t ray_arg_bytes(const void *data, size_t size) {
  ray_arg_t a;
  a.kind = RAY_ARG_VALUE;
  a.type = RAY_TYPE_BYTES;
  a.u.bytes.data = data;
  a.u.bytes.size = size;
  return a;
}
static inline ray_arg_t ray_arg_msgpack(const msgpack_object *obj) {
  ray_arg_t a;
  a.kind = RAY_ARG_VALUE;
  a.type = RAY_TYPE_MSGPACK;
  a.u.msgpack = obj;
  return a;
}
/* A msgpack value already encoded (by msgpack-c++, say: the C++ API):
 * `size` bytes holding exactly one value, which the task receives as a
 * RAY_TYPE_MSGPACK value argument; refs inside it are held as for
 * ray_arg_msgpack. Submission fails with RAY_EDECODE if the bytes are not
 * one valid msgpack value. */
static inline ray_arg_t ray_arg_msgpack_bytes(const void *data, size_t size) {
  ray_arg_t a;
  a.kind = RAY_ARG_MSGPACK_BYTES;
  a.type = RAY_TYPE_MSGPACK;
  a.u.bytes.data = data;
  a.u.bytes.size = size;
  return a;
}
/* The task receives the object's value (resolved before it runs, read
 * zero-copy); ray_ctx_arg_ref() gives the ref itself. */
static inline ray_arg_t ray_arg_ref(ray_ref_t ref) {
  ray_arg_t a;
  a.kind = RAY_ARG_REF;
  a.type = ref.type;
  a.u.ref = ref;
  return a;
}

/* ---- Submission --------------------------------------------------------- */

typedef struct ray_task_opts_s {
  /* When non-zero, must equal the registered number of returns (a check). */
  size_t num_returns;
  /* Times a failed task is run again (with retry_on_error). Default 0. */
  uint32_t max_retries;
  /* Retry when the function fails (Ray's retry_exceptions). Default false. */
  bool retry_on_error;
  /* Display name for errors and the timeline (copied); NULL: the function's. */
  const char *name;
  /* Cluster mode (docs/cluster.md): the rank to run the task on, or
   * RAY_NODE_ANY (ray_task_opts_init's default): from a host thread, this
   * rank while its workers keep up (fewer than two tasks a worker waiting
   * or running), else the least loaded rank, decided at submission; from
   * inside a task, the rank it runs on. Options zeroed by hand have 0:
   * rank 0. Below RAY_NODE_ANY or at
   * or above ray_num_ranks() is RAY_EINVAL; in a single process only 0 and
   * RAY_NODE_ANY are valid. A task placed on another rank gets its
   * arguments' values sent there; refs and actor handles inside them (and
   * inside its results), and actor handle arguments, travel and are
   * counted across ranks (borrowing). */
  int node;
} ray_task_opts_t;

/* ray_task_opts_t.node: let the runtime choose. */
#define RAY_NODE_ANY (-1)

/* Fill `opts` with the defaults. NULL is a no-op. */
RAY_EXTERN void ray_task_opts_init(ray_task_opts_t *opts);

/* Submit fn(args[0..nargs)) and return at once. out_refs must have room for
 * the function's number of returns; each receives a ref (owned by the
 * caller) typed as registered, pending until the task finishes.
 * Errors: RAY_EINVAL (NULL out_refs, args NULL with nargs > 0, nargs >
 * RAY_MAX_ARGS, a malformed argument, opts->num_returns mismatch, an
 * invalid opts->node),
 * RAY_ENOTFOUND (stale function, or a nil/unknown/released ref argument),
 * RAY_ENOTINIT, RAY_ESHUTDOWN (shutting down), RAY_ENOMEM, RAY_ESTOREFULL (a
 * large value argument does not fit the store). On error no task exists and
 * no ref is returned. Blocks only when the store is full (see object.h);
 * thread-safe; callable from tasks and actors. */
RAY_EXTERN int ray_task_submit(ray_function_t fn, const ray_arg_t *args, size_t nargs,
                               const ray_task_opts_t *opts, ray_ref_t *out_refs);

/* Cancel the task producing `ref`. A task that has not started never runs:
 * its results fail with RAY_ECANCELED (and its dependents with that as the
 * cause). A running task sees ray_task_is_cancelled() become true and may
 * stop early (cooperative, like Ray's non-force cancel); its results are
 * whatever it produces. In cluster mode the same holds for a task placed
 * on another rank: the request follows it there (docs/cluster.md).
 * Returns 0 when the task was pending or running.
 * Errors: RAY_EFINISHED (the object is already ready or failed, or was not
 * produced by a task), RAY_ENOTFOUND, RAY_ENOTINIT. Never blocks. */
RAY_EXTERN int ray_cancel(ray_ref_t ref);

/* ---- Inside a task ------------------------------------------------------ */

/* Number of arguments. */
RAY_EXTERN size_t ray_ctx_nargs(const ray_task_ctx_t *ctx);
/* Type tag of argument i (0 when ctx is NULL or i out of range). */
RAY_EXTERN uint32_t ray_ctx_arg_type(const ray_task_ctx_t *ctx, size_t i);

/* Typed argument accessors. Errors: RAY_EINVAL (NULL ctx/out, i out of
 * range), RAY_ETYPE (the argument has another type), RAY_EDECODE.
 * Views are zero-copy and valid until the function returns. */
RAY_EXTERN int ray_ctx_arg_i64(ray_task_ctx_t *ctx, size_t i, int64_t *out);
RAY_EXTERN int ray_ctx_arg_f64(ray_task_ctx_t *ctx, size_t i, double *out);
/* The string's bytes (not NUL-terminated) and length. */
RAY_EXTERN int ray_ctx_arg_str(ray_task_ctx_t *ctx, size_t i, const char **s, size_t *len);
RAY_EXTERN int ray_ctx_arg_bytes(ray_task_ctx_t *ctx, size_t i, const void **data, size_t *size);
/* Argument i's payload whatever its type, zero-copy: a typed value's
 * encoding (msgpack), raw bytes for RAY_TYPE_BYTES; its type in *type (may
 * be NULL). For decoders other than the ones above (the C++ API's).
 * Errors: RAY_EINVAL (data or size NULL, ctx NULL, i out of range),
 * RAY_ETYPE (an actor handle: it has no payload). */
RAY_EXTERN int ray_ctx_arg_raw(ray_task_ctx_t *ctx, size_t i, const void **data, size_t *size,
                               uint32_t *type);
RAY_EXTERN int ray_ctx_arg_msgpack(ray_task_ctx_t *ctx, size_t i, msgpack_object *out);
/* The ref an argument was passed as (borrowed: retain it to keep it beyond
 * the call). Errors: RAY_ETYPE when the argument was passed by value. */
RAY_EXTERN int ray_ctx_arg_ref(ray_task_ctx_t *ctx, size_t i, ray_ref_t *out);

/* Set result slot `slot` (0-based). Setting a slot again replaces the value.
 * Errors: RAY_EINVAL (NULL ctx, slot out of range, NULL data with size > 0,
 * a msgpack value nested too deep: see ray_put_msgpack),
 * RAY_ETYPE (the slot was registered with another type; RAY_TYPE_BYTES slots
 * take bytes, any other type takes its own typed setter or bytes already in
 * that encoding via ray_return_bytes), RAY_ENOMEM, RAY_ESTOREFULL,
 * RAY_ESHUTDOWN.
 *
 * May block: the value's bytes are reserved from object_store_memory when
 * the setter is called, as a put's are (object.h, "Memory"). When the store
 * is full the setter spills least recently used objects to disk, then waits
 * for other objects to be freed, at most store_full_timeout_ms (ray_config_t;
 * 0: no wait), holding its worker meanwhile (unlike ray_get, it does not
 * wake or start another worker in its place). Then it fails with RAY_ESTOREFULL (at once for
 * a value larger than the whole store), or with RAY_ESHUTDOWN when the
 * runtime shuts down during the wait. This applies to ray_return_owned too;
 * ray_return_ref reserves nothing and never blocks. Call them only from the
 * running function, with its own ctx. */
RAY_EXTERN int ray_return_i64(ray_task_ctx_t *ctx, size_t slot, int64_t v);
RAY_EXTERN int ray_return_f64(ray_task_ctx_t *ctx, size_t slot, double v);
RAY_EXTERN int ray_return_str(ray_task_ctx_t *ctx, size_t slot, const char *s);
RAY_EXTERN int ray_return_bytes(ray_task_ctx_t *ctx, size_t slot, const void *data, size_t size);
RAY_EXTERN int ray_return_msgpack(ray_task_ctx_t *ctx, size_t slot, const msgpack_object *obj);
/* As ray_return_msgpack for a value already encoded: `size` bytes holding
 * exactly one msgpack value (refs inside held by the result). Errors also:
 * RAY_EINVAL (data NULL with size > 0), RAY_EDECODE (not one valid msgpack
 * value). */
RAY_EXTERN int ray_return_msgpack_bytes(ray_task_ctx_t *ctx, size_t slot, const void *data,
                                        size_t size);
/* Hand `data` over without a copy; free_fn(data, arg) runs once when the
 * object is freed or spilled to disk (also when the task fails after this
 * call), with no internal lock held (ray_free_fn, object.h). On error the
 * caller keeps the buffer. */
RAY_EXTERN int ray_return_owned(ray_task_ctx_t *ctx, size_t slot, void *data, size_t size,
                                ray_free_fn free_fn, void *arg);
/* The result is the value of the existing object `ref` (shared, no copy; it
 * may still be pending: the result becomes ready when it does, and fails
 * with it). Errors also: RAY_ENOTFOUND, RAY_ETYPE (type tags differ). */
RAY_EXTERN int ray_return_ref(ray_task_ctx_t *ctx, size_t slot, ray_ref_t ref);

/* Record a structured failure (code < 0, printf-style message); the task
 * fails when the function returns, whatever it returns. Returns `code` so
 * a function can `return ray_fail(ctx, RAY_ETASK, "bad input %d", x);`.
 * RAY_EINVAL for a NULL ctx or code >= 0. */
RAY_EXTERN int ray_fail(ray_task_ctx_t *ctx, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The running task's id, display name, and attempt number (1 on the first run). */
RAY_EXTERN uint64_t ray_ctx_task_id(const ray_task_ctx_t *ctx);
RAY_EXTERN const char *ray_ctx_name(const ray_task_ctx_t *ctx);
RAY_EXTERN uint32_t ray_ctx_attempt(const ray_task_ctx_t *ctx);
/* Whether ray_cancel() was called on this task. */
RAY_EXTERN bool ray_task_is_cancelled(const ray_task_ctx_t *ctx);

#ifdef __cplusplus
}
#endif
#endif /* RUSTYRAY_TASK_H */
