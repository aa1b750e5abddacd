/* task.h - remote functions (function.c) and tasks: a task's header and
 * its kind's ops table (task.c), submission (submit.c) and the context its
 * body runs with (task_ctx.c). */
#ifndef RAY_TASK_H
#define RAY_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
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
  uv_mutex_t mu;  /* registration and lookup by name */
  uint32_t epoch; /* tells this runtime's handles from an earlier one's */
  atomic_uint count;
  ray__func_t **chunks[RAY__FUNC_CHUNKS];
} ray__registry_t;

int ray__function_registry_init(ray__registry_t *r);
void ray__function_registry_destroy(ray__registry_t *r);
/* Register every static descriptor (ray_static_function_add) with the
 * running runtime. Errors: as ray_function_register. */
int ray__function_add_statics(void);
/* The function behind a handle, or NULL (stale or bogus). */
ray__func_t *ray__function_get(ray__registry_t *r, ray_function_t fn);
/* How many functions are registered, and the i-th of them (i below that
 * count: registered functions never move or go while the runtime runs). */
unsigned ray__function_count(ray__registry_t *r);
ray__func_t *ray__function_at(ray__registry_t *r, unsigned i);
/* The function registered as `name`, or NULL. Takes the registry mutex. */
ray__func_t *ray__function_find(ray__registry_t *r, const char *name);

/* ---- Tasks (task.c, submit.c, task_ctx.c) ---- */

struct ray__task_s;
struct ray__task_end_s;

/* The kinds of task, for the timeline's label: a function call, an actor's
 * constructor, a method call. */
enum { RAY__TASK_FN = 0, RAY__TASK_CTOR = 1, RAY__TASK_METHOD = 2 };

/* What a kind of task does at each step of its life: task.c drives the
 * steps and supplies a function call's ops (ray__task_fn_ops); actor.c
 * supplies its constructors' and method calls' (and so task.c knows
 * nothing of actors). Like a runnable's run/drop, or libuv's
 * uv__work_submit(..., work, done). */
typedef struct ray__task_ops_s {
  uint8_t kind; /* RAY__TASK_* */
  bool counted; /* in tasks_submitted/finished/failed (ray_stats, ray__quiesce) */
  /* Submission succeeded, just before its guard on `deps` drops: the task
   * takes its place in its owner's order (a method call joins the mailbox).
   * It may fail the task's results (a dead actor); `ready` still comes,
   * unless it returns true: then it found the guard the only dependency
   * left, took it (deps 0) and did what `ready` would do, in the same
   * critical section (one actor-lock round trip per call instead of two).
   * NULL: nothing to do. */
  bool (*submitted)(struct ray__task_s *t);
  /* Every argument is resolved, maybe under an argument's shard lock (take
   * only queue locks, or the owner's leaf mutex, inside): get the task to a
   * worker (ray__task_push), now or when its owner admits it. */
  void (*ready)(struct ray__task_s *t);
  /* Run the body once, its arguments pinned, no lock held; returns the
   * body's code. Setting ctx->exit ends the owner (a method call). */
  int (*body)(struct ray__task_s *t, ray_task_ctx_t *ctx);
  /* The task ran, or will not run (see ray__task_end_t): let go of it
   * (ray__task_finish, unless its owner keeps it to run again). Returns the
   * next task to run inline on this worker, or NULL. Runs with no lock held. */
  struct ray__task_s *(*done)(struct ray__task_s *t, struct ray__task_end_s *end);
  /* ray_cancel found the task past PENDING (its `cancel` flag is set):
   * pass the request on where the flag cannot reach (a task sent to another
   * rank). The caller holds a reference on `t`. NULL: the flag is all. */
  void (*cancel)(struct ray__task_s *t);
} ray__task_ops_t;

extern const ray__task_ops_t ray__task_fn_ops;

/* How a task ended, for its ops' done. */
typedef struct ray__task_end_s {
  int code;          /* 0: it ran and its results are published; else why it
                        failed or did not run (its results failed already) */
  bool ran;          /* its body ran (else: cancelled, a dead owner, shutdown,
                        a failed or unreadable argument) */
  bool fatal;        /* its body ended its owner (ctx->exit): its results are
                        not settled, the owner fails or retries it */
  bool final;        /* with fatal: the owner ends for good (ctx->exit_final) */
  uint64_t cause_id; /* the failed argument that kept it from running (0: none) */
  ray_error_t *err;  /* the failure when it ran and failed (NULL: none, or
                        memory ran out); done takes it */
} ray__task_end_t;

/* How a task holds the actor handles its RAY_ARG_ACTOR arguments name:
 * actor.c's, which ray__actors_init puts in the runtime's actor registry. */
typedef struct ray__handle_ops_s {
  int (*retain)(struct ray__runtime_s *rt, uint64_t id); /* RAY_ENOTFOUND */
  void (*release)(struct ray__runtime_s *rt, uint64_t id);
} ray__handle_ops_t;

/* Task states: PENDING -> RUNNING, or PENDING -> CANCELED (cancelled, or a
 * call failed because its actor died); one CAS decides. Then DONE
 * (ray__task_finish). Back to PENDING only by an owner: a call retried
 * after its actor restarts, and the kept constructor run again (actor.c). */
enum { RAY__T_PENDING, RAY__T_RUNNING, RAY__T_CANCELED, RAY__T_DONE };

typedef struct ray__task_arg_s {
  ray__watch_t watch; /* dependency watch (ref args) */
  struct ray__task_s *task;
  uint32_t kind; /* RAY_ARG_VALUE, RAY_ARG_REF or RAY_ARG_ACTOR, as stored */
  uint32_t type;
  bool by_value;    /* the caller passed a value (maybe stored as a ref) */
  uint64_t ref_id;  /* REF: the object (one reference held); ACTOR: the handle id (held) */
  const void *data; /* the bytes: inline, or the pinned view while running */
  size_t size;
  ray_buf_t view;
} ray__task_arg_t;

typedef struct ray__task_s {
  ray__runnable_t rn; /* rn.next also links an actor's mailbox */
  struct ray__runtime_s *rt;
  ray__func_t *fn;
  const ray__task_ops_t *ops; /* what its kind does */
  void *owner;                /* the ops' (an actor: one reference held) */
  uint64_t task_id;
  const char *name;
  atomic_int deps; /* unresolved ref args + 1 while submitting */
  atomic_int state;
  atomic_int refs; /* the execution path + cancellers in flight
                      + an owner's holds (a dying actor's) */
  atomic_bool cancel;
  atomic_int dep_status;           /* the first failed argument's code */
  atomic_uint_fast64_t dep_failed; /* and its object id */
  /* The owner's bookkeeping for a method call (actor.c, its mutex): */
  bool ready;                    /* dependencies resolved */
  bool admitted;                 /* counted in the actor's running calls */
  uint32_t retries_left;         /* retries after an actor death */
  struct ray__task_s *kill_next; /* in a dying actor's list of failed calls */
  bool kill_ready;               /* was ready (not waiting for arguments) then */
  bool kill_cancelled;           /* cancelled before (its results failed already) */
  int32_t node;                  /* cluster mode: the rank it runs on (RAY_NODE_ANY: here) */
  uint32_t nargs;
  uint32_t nreturns;
  uint32_t max_retries;
  bool retry_on_error;
  atomic_int fail_code; /* its results failed with this code (0: not failed) */
  ray_ref_t *returns;
  ray__task_arg_t args[];
} ray__task_t;

/* The context a body runs with (task_ctx.c: the ray_ctx_* and ray_return_*
 * accessors; task.c runs attempts with it; actor.c's ray_actor_exit sets
 * `exit`). One per run, on the running worker's stack. */
/* A result slot holds one of: an entry (slots[i]), a ref it aliases
 * (alias[i]), or up to RAY__SMALL_RESULT bytes to complete the pending
 * entry with in place (bit i of `small`: its bytes reserved from the
 * store's capacity), or nothing yet. Everything before `small_data` starts
 * zeroed (ray__task_ctx_init); small_data[i] is read only while its bit is
 * set. */
struct ray_task_ctx_s {
  ray__task_t *t;
  uint32_t attempt;
  bool exit;       /* end the owner (ray_actor_exit, or a method's RAY_EACTORDIED) */
  bool exit_final; /* with exit: for good, no restart (ray_actor_exit_no_restart) */
  ray__entry_t *slots[RAY_MAX_RETURNS];
  uint64_t alias[RAY_MAX_RETURNS]; /* ray_return_ref: the source (one reference held) */
  ray_error_t *err;
  msgpack_zone *zone;
  uint32_t small; /* bit i: slot i holds small_data[i] */
  uint8_t small_size[RAY_MAX_RETURNS];
  unsigned char small_data[RAY_MAX_RETURNS][RAY__SMALL_RESULT];
};

/* A fresh context for running `t`. */
static inline void ray__task_ctx_init(ray_task_ctx_t *ctx, ray__task_t *t) {
  memset(ctx, 0, offsetof(ray_task_ctx_t, small_data));
  ctx->t = t;
}

/* A host thread waiting on object `id` (no deadline, and needing every
 * object it waits for): if the task that produces it is a remote
 * function's, or an actor's method call its actor has admitted, and still
 * queued, run it on this thread (ray__sched_run_queued) and return true.
 * Whatever that task needs, the waiter needed anyway, so this adds no
 * deadlock a program could not already have; nothing else runs on the
 * caller's thread (a helped call's actor hands its next call to the
 * workers). Never a constructor. The runtime hands it to wait.c
 * (ray__runtime_t.run_producer). */
bool ray__task_run_producer(struct ray__runtime_s *rt, uint64_t id);

/* ---- submit.c ---- */

/* An argument kind of the library's own, which only
 * ray__task_submit_encoded accepts (a caller's is RAY_EINVAL): a value
 * already in its type's encoding (u.bytes), as it arrives from another
 * rank, stored as it is (a RAY_TYPE_BYTES value is the same thing). */
enum { RAY__ARG_ENCODED = 0x100 };
/* The other internal kind: a value that arrived from another rank and was
 * stored here as it came (u.ref, ready, a reference the caller keeps): the
 * task gets it as a value argument, as the owner passed it. */
enum { RAY__ARG_STORED = 0x101 };

/* Submit a task of the kind `ops` describes, for `owner` (an actor, taken
 * over on success; NULL for a function call). See ray_task_submit for the
 * contract; *out_task (when not NULL) receives the task, which the owner
 * may keep (an actor's constructor). */
int ray__task_submit(struct ray__runtime_s *rt, ray__func_t *fn, const ray__task_ops_t *ops,
                     void *owner, const ray_arg_t *args, size_t nargs, const ray_task_opts_t *opts,
                     ray_ref_t *out_refs, ray__task_t **out_task);
/* The same, taking RAY__ARG_ENCODED and RAY__ARG_STORED arguments too when
 * `encoded_ok` (a constructor or call that came from another rank). */
int ray__task_submit_ex(struct ray__runtime_s *rt, ray__func_t *fn, const ray__task_ops_t *ops,
                        void *owner, const ray_arg_t *args, size_t nargs,
                        const ray_task_opts_t *opts, bool encoded_ok, ray_ref_t *out_refs,
                        ray__task_t **out_task);

/* A function call whose arguments may be RAY__ARG_ENCODED (a task that
 * came from another rank: cluster.c), as ray__task_submit otherwise. */
int ray__task_submit_encoded(struct ray__runtime_s *rt, ray__func_t *fn, const ray_arg_t *args,
                             size_t nargs, const ray_task_opts_t *opts, ray_ref_t *out_refs);

/* ---- task.c: the lifecycle ---- */

/* Fill in the header of a freshly allocated task (the runnable, the
 * counters, a new task id; PENDING, one reference, the submission guard in
 * `deps`). */
void ray__task_init(ray__task_t *t, struct ray__runtime_s *rt, ray__func_t *fn,
                    const ray__task_ops_t *ops, void *owner);
/* A ref argument's watch (ray__store_watch), under its shard lock: count it
 * resolved (noting a failure). */
void ray__task_dep_notify(ray__watch_t *w, int status);
/* One argument (or the submission guard) is resolved: the last one hands
 * the task to its ops' ready. */
void ray__task_dep_resolved(ray__task_t *t);
/* Queue the task on a worker (a function call's ready; the constructor's). */
void ray__task_push(ray__task_t *t);

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
/* The task will not run: the runtime is stopping (code RAY_ESHUTDOWN), an
 * argument failed (RAY_EDEPFAILED: object cause_id, with dep_code) or could
 * not be read (RAY_EDEPFAILED, dep_code 0). Fails its results saying which
 * and returns what its ops' done returns. */
ray__task_t *ray__task_not_run(ray__task_t *t, int code, uint64_t cause_id, int dep_code);
/* Pin every ref argument not pinned yet (restoring spilled ones, fetching
 * evicted copies of other ranks' objects again, waiting for those up to
 * `deadline`: ray__store_pin_ready_until), pointing each argument's data
 * and size at its view. Returns how many arguments were gone through: all
 * of them, or the one that failed (its code in *code); unpin that many
 * with ray__task_unpin_args. */
uint32_t ray__task_pin_args(ray__task_t *t, uint64_t deadline, int *code);
void ray__task_unpin_args(ray__task_t *t, uint32_t n);
/* Mark `t` DONE, release its argument references (objects and actor
 * handles), count it finished (a counted kind: ray_stats, ray__quiesce)
 * and drop the execution path's reference. */
void ray__task_finish(ray__task_t *t);
/* Add a reference (void *: the store's claim_producer hook) / drop one,
 * freeing the task with the last. */
void ray__task_hold(void *t);
void ray__task_unref(ray__task_t *t);

/* ---- task_ctx.c: an attempt's results ---- */

/* Complete the results with what the body set (an unset slot fails with
 * RAY_ENORESULT). */
void ray__task_ctx_publish(ray_task_ctx_t *ctx);
/* Drop what the body set (a failed attempt, or a failure after it). */
void ray__task_ctx_discard(ray_task_ctx_t *ctx);

#endif /* RAY_TASK_H */
