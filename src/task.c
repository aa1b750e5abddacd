/* task.c - a task's life: its header, dependency counting, running its
 * attempts (retries), failing its results, finishing it, cancellation.
 *
 * A task is one allocation (submit.c builds it): the header, its arguments,
 * its result refs and its display name. What its kind does at each step is
 * in its ops table (task.h): task.c drives the steps and supplies a
 * function call's ops; actor.c supplies a constructor's and a method
 * call's, so nothing here knows what an actor is. `deps` counts unresolved
 * arguments plus one guard held during submission; the notification that
 * brings it to zero calls ops->ready (a function call is pushed to a worker
 * queue; an actor admits its calls in mailbox order). Nothing polls.
 *
 * Running: a task whose argument failed does not run; its results fail with
 * RAY_EDEPFAILED whose cause refers to the failed argument object (shared,
 * not copied: see codec.h). Otherwise ref arguments are pinned (zero-copy),
 * ops->body runs, and its results replace the pending entries (task_ctx.c).
 * A failure becomes a structured error in every result; with retry_on_error
 * it first runs again, up to max_retries times. Either way ops->done lets go
 * of it, and may hand back the next task to run inline.
 *
 * Lifetime: `refs` counts the execution path (1) plus any ray_cancel in
 * flight, which claims the task under a result entry's shard lock (and an
 * owner's holds: a dying actor's on a call it fails); a task completes or
 * fails every result before it lets go, so a pending result always points
 * at a live task. State moves PENDING -> RUNNING or PENDING -> CANCELED (one
 * CAS decides), then DONE (task.h says when an owner sets it back to
 * PENDING).
 *
 * Locks: ray__task_dep_notify runs under an argument's shard lock and takes
 * inside only what ops->ready takes (a worker queue's lock, or an actor's
 * mutex); user code (task functions, constructors, methods) runs with no
 * lock held. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error_internal.h"
#include "hook.h"
#include "internal.h"
#include "pool.h"

static void task_run(ray__runnable_t *rn);
static void task_drop(ray__runnable_t *rn);

/* ---- Lifetime ---- */

void ray__task_init(ray__task_t *t, ray__runtime_t *rt, ray__func_t *fn, const ray__task_ops_t *ops,
                    void *owner) {
  memset(t, 0, sizeof *t);
  atomic_init(&t->rn.queue, NULL);
  t->rn.run = task_run;
  t->rn.drop = task_drop;
  t->rt = rt;
  t->fn = fn;
  t->ops = ops;
  t->owner = owner;
  t->task_id = ray__id_next();
  t->name = fn->name;
  atomic_init(&t->deps, 1); /* the submission guard */
  atomic_init(&t->state, RAY__T_PENDING);
  atomic_init(&t->refs, 1);
  atomic_init(&t->cancel, false);
  atomic_init(&t->dep_status, 0);
  atomic_init(&t->dep_failed, 0);
  atomic_init(&t->fail_code, 0);
}

void ray__task_hold(void *p) {
  atomic_fetch_add(&((ray__task_t *)p)->refs, 1);
}

void ray__task_unref(ray__task_t *t) {
  if (atomic_fetch_sub(&t->refs, 1) == 1) ray__pool_free(t);
}

void ray__task_finish(ray__task_t *t) {
  ray__runtime_t *rt = t->rt;
  atomic_store(&t->state, RAY__T_DONE);
  for (uint32_t i = 0; i < t->nargs; i++) {
    if (t->args[i].kind == RAY_ARG_REF)
      ray__store_release(&rt->store, t->args[i].ref_id);
    else if (t->args[i].kind == RAY_ARG_ACTOR)
      rt->actors.handle_ops->release(rt, t->args[i].ref_id);
  }
  if (t->ops->counted) { /* counted once its arguments are let go, too */
    if (atomic_load(&t->fail_code) != 0)
      atomic_fetch_add_explicit(&rt->tasks_failed, 1, memory_order_relaxed);
    ray__counter_add(&rt->tasks_finished, 1); /* before ray__quiesce's look */
    ray__stats_task_done(rt);
  }
  ray__task_unref(t);
}

/* ---- Dependencies ---- */

void ray__task_dep_resolved(ray__task_t *t) {
  if (atomic_fetch_sub(&t->deps, 1) == 1) t->ops->ready(t);
}

/* Under the argument's shard lock. */
void ray__task_dep_notify(ray__watch_t *w, int status) {
  ray__task_arg_t *a = (ray__task_arg_t *)w;
  ray__task_t *t = a->task;
  if (status != 0) {
    int none = 0;
    if (atomic_compare_exchange_strong(&t->dep_status, &none, status))
      atomic_store(&t->dep_failed, a->ref_id);
  }
  ray__task_dep_resolved(t);
}

void ray__task_push(ray__task_t *t) {
  ray__sched_push(&t->rt->sched, &t->rn);
}

/* ---- Failing ---- */

/* Fail every result of `t` with `err` (see ray__store_fail), or
 * with just `code` when err is NULL. cause_id, when not 0, is a failed
 * object the error continues with; each result holds a reference on it. */
static void fail_results(ray__task_t *t, const ray_error_t *err, int code, uint64_t cause_id) {
  atomic_store(&t->fail_code, err != NULL ? err->code : code); /* a canceller may write it */
  for (uint32_t i = 0; i < t->nreturns; i++)
    ray__store_fail(&t->rt->store, t->returns[i].id, code, err, cause_id, true);
}

void ray__task_fail(ray__task_t *t, int code, uint64_t cause_id, const ray_error_t *cause,
                    const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ray_error_t *err = NULL, *copy = NULL;
  if (ray_error_new(&err, code, t->name, "%s", msg) == 0) {
    ray_error_set_task_id(err, t->task_id);
    if (cause != NULL && ray_error_copy(cause, &copy) == 0) ray_error_set_cause(err, copy);
  }
  fail_results(t, err, code, cause_id);
  ray_error_free(err);
}

/* ---- Running ---- */

/* The error a failed attempt leaves. NULL only when memory ran out. */
static ray_error_t *attempt_error(ray_task_ctx_t *ctx, int rc) {
  ray__task_t *t = ctx->t;
  ray_error_t *err = ctx->err;
  ctx->err = NULL;
  if (err == NULL) {
    if (rc < 0 && ray__error_is_code(rc))
      ray_error_new(&err, rc, t->name, "%s returned %s", t->name, ray_err_name(rc));
    else
      ray_error_new(&err, RAY_ETASK, t->name, "%s returned %d", t->name, rc);
  }
  if (err != NULL) {
    ray_error_set_task_id(err, t->task_id);
    ray_error_set_attempts(err, ctx->attempt);
  }
  return err;
}

/* Time one run for the timeline and the latency histogram. */
static void record_run(ray__task_t *t, uint64_t started, int outcome) {
  if (started == 0) return;
  ray__worker_t *w = ray__worker_self();
  if (w == NULL) return;
  ray__span_t s;
  s.name = t->fn->name;
  s.task_id = t->task_id;
  s.start = started;
  s.end = uv_hrtime();
  s.outcome = outcome;
  s.kind = t->ops->kind;
  uint64_t ids[RAY_MAX_ARGS + RAY_MAX_RETURNS];
  s.nargs = 0;
  for (uint32_t i = 0; i < t->nargs; i++)
    if (t->args[i].kind == RAY_ARG_REF) ids[s.nargs++] = t->args[i].ref_id;
  s.nresults = t->nreturns;
  for (uint32_t i = 0; i < t->nreturns; i++) ids[s.nargs + i] = t->returns[i].id;
  s.ids = ids;
  ray__timeline_obs_record(ray__worker_obs(w), &s, t->rt->cfg.timeline);
}

/* The task will not run: the runtime is stopping (code RAY_ESHUTDOWN), an
 * argument failed (RAY_EDEPFAILED: object cause_id, with dep_code) or could
 * not be read (RAY_EDEPFAILED, dep_code 0). Fail its results saying which,
 * and hand it to its ops' done (a constructor, without results, tells its
 * actor why). */
ray__task_t *ray__task_not_run(ray__task_t *t, int code, uint64_t cause_id, int dep_code) {
  if (code == RAY_ESHUTDOWN)
    ray__task_fail(t, code, 0, NULL, "runtime shut down before %s ran", t->name);
  else if (dep_code != 0)
    ray__task_fail(t, code, cause_id, NULL, "an argument of %s failed (object %llu: %s)", t->name,
                   (unsigned long long)cause_id, ray_err_name(dep_code));
  else
    ray__task_fail(t, code, 0, NULL, "an argument of %s is unreadable", t->name);
  ray__task_end_t end = {.code = code, .cause_id = cause_id};
  return t->ops->done(t, &end);
}

void ray__task_unpin_args(ray__task_t *t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (t->args[i].kind == RAY_ARG_REF) ray_buf_release(&t->args[i].view);
}

uint32_t ray__task_pin_args(ray__task_t *t, uint64_t deadline, int *code) {
  uint32_t pinned = 0;
  *code = 0;
  for (; pinned < t->nargs; pinned++) {
    ray__task_arg_t *a = &t->args[pinned];
    if (a->kind != RAY_ARG_REF || a->view.priv_ != NULL) continue; /* pinned already */
    if ((*code = ray__store_pin_ready_until(&t->rt->store, a->ref_id, &a->view, deadline)) != 0)
      break;
    a->data = a->view.data;
    a->size = a->view.size;
    a->type = a->view.type;
  }
  return pinned;
}

/* Run the body, again while a failure may be retried, and settle the
 * results. Fills in *end. */
static void attempts(ray__task_t *t, ray_task_ctx_t *ctx, ray__task_end_t *end) {
  ray__runtime_t *rt = t->rt;
  for (ctx->attempt = 1;; ctx->attempt++) {
    int rc = t->ops->body(t, ctx);
    if (ctx->exit) { /* the owner fails or retries this call */
      ray__task_ctx_discard(ctx);
      ray_error_free(ctx->err);
      ctx->err = NULL;
      end->fatal = true;
      end->final = ctx->exit_final;
      return;
    }
    if (rc == 0 && ctx->err == NULL) {
      ray__task_ctx_publish(ctx);
      return;
    }
    ray__task_ctx_discard(ctx);
    ray_error_t *err = attempt_error(ctx, rc);
    if (t->retry_on_error && ctx->attempt <= t->max_retries && !atomic_load(&t->cancel) &&
        !atomic_load(&rt->stopping)) {
      ray_error_free(err);
      continue;
    }
    fail_results(t, err, RAY_ENOMEM, 0);
    end->code = err != NULL ? err->code : RAY_ENOMEM;
    end->err = err;
    return;
  }
}

/* Run one task; returns the next one to run inline (from its ops' done). */
static ray__task_t *run_one(ray__task_t *t) {
  ray__runtime_t *rt = t->rt;
  int expected = RAY__T_PENDING;
  if (!atomic_compare_exchange_strong(&t->state, &expected, RAY__T_RUNNING)) {
    /* Cancelled, or its owner died: its results failed already. */
    ray__task_end_t end = {.code = atomic_load(&t->fail_code)};
    return t->ops->done(t, &end);
  }
  if (atomic_load(&rt->stopping)) return ray__task_not_run(t, RAY_ESHUTDOWN, 0, 0);
  int dep = atomic_load(&t->dep_status);
  if (dep != 0) return ray__task_not_run(t, RAY_EDEPFAILED, atomic_load(&t->dep_failed), dep);
  int why;
  uint32_t pinned = ray__task_pin_args(t, UINT64_MAX, &why);
  if (pinned < t->nargs) {
    ray__task_unpin_args(t, pinned);
    return ray__task_not_run(t, RAY_EDEPFAILED, 0, 0);
  }

  ray_task_ctx_t ctx;
  ray__task_ctx_init(&ctx, t);
  ray__task_end_t end = {.ran = true};
  uint64_t started = rt->record_runs ? uv_hrtime() : 0;
  attempts(t, &ctx, &end);
  if (ctx.zone != NULL) msgpack_zone_free(ctx.zone);
  ray__task_unpin_args(t, pinned);
  record_run(t, started, end.fatal ? RAY_EACTORDIED : end.code);
  return t->ops->done(t, &end);
}

static void task_run(ray__runnable_t *rn) {
  for (ray__task_t *t = (ray__task_t *)rn; t != NULL;) t = run_one(t);
}

static void task_drop(ray__runnable_t *rn) {
  (void)ray__task_not_run((ray__task_t *)rn, RAY_ESHUTDOWN, 0,
                          0); /* stopping: nothing comes back */
}

/* ---- A function call's ops ---- */

static int fn_body(ray__task_t *t, ray_task_ctx_t *ctx) {
  return t->fn->fn(ctx, t->fn->arg);
}

static ray__task_t *fn_done(ray__task_t *t, ray__task_end_t *end) {
  ray_error_free(end->err);
  ray__task_finish(t);
  return NULL;
}

const ray__task_ops_t ray__task_fn_ops = {
    .kind = RAY__TASK_FN,
    .counted = true,
    .ready = ray__task_push,
    .body = fn_body,
    .done = fn_done,
};

/* ---- A host waiting on a result runs its producer ---- */

bool ray__task_run_producer(ray__runtime_t *rt, uint64_t id) {
  void *p;
  if (ray__store_claim_producer(&rt->store, id, ray__task_hold, &p) != 0) return false;
  ray__task_t *t = p;
  /* A remote function's task, or a method call (queued only once its actor
   * admitted it: its turn in the actor's order has come); never a
   * constructor. */
  bool ran = t->ops->kind != RAY__TASK_CTOR && ray__sched_run_queued(&rt->sched, &t->rn);
  ray__task_unref(t);
  return ran;
}

/* ---- Cancellation ---- */

int ray_cancel(ray_ref_t ref) {
  RAY__API_ENTER(rt);
  if (ref.id == 0) return RAY_ENOTFOUND;
  void *p;
  int rc = ray__store_claim_producer(&rt->store, ref.id, ray__task_hold, &p);
  if (rc != 0) return rc;
  ray__task_t *t = p;
  atomic_store(&t->cancel, true);
  int expected = RAY__T_PENDING;
  if (atomic_compare_exchange_strong(&t->state, &expected, RAY__T_CANCELED))
    ray__task_fail(t, RAY_ECANCELED, 0, NULL, "%s was cancelled before it ran", t->name);
  else if (t->ops->cancel != NULL)
    t->ops->cancel(t);
  ray__task_unref(t);
  return 0;
}
