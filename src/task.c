/* task.c - tasks: submission, dependency counting, running, results,
 * failures, retries and cancellation.
 *
 * A task is one allocation: the header, its arguments (small values copied
 * inline; large values, and msgpack values holding refs, put into the store
 * and passed as refs, as Ray does),
 * its result refs and its display name. Submission creates the result
 * entries pending (ids known at once, typed as registered, `producer`
 * pointing back here), takes a handle reference on every actor argument,
 * then registers a watch on every ref argument, which also takes the task's
 * reference on it. `deps` counts unresolved arguments plus one guard held
 * during submission; the notification that brings it to zero pushes a
 * function's task to a worker queue, and hands a constructor or method call
 * to its actor (actor.c admits calls in mailbox order). Nothing polls.
 *
 * Running: a task whose argument failed does not run; its results fail with
 * RAY_EDEPFAILED whose cause refers to the failed argument object (shared,
 * not copied: see codec.h). Otherwise ref arguments are pinned (zero-copy),
 * the function runs, and its results replace the pending entries. A failure
 * becomes a structured error in every result; with retry_on_error it first
 * runs again, up to max_retries times.
 *
 * Lifetime: `refs` counts the execution path (1) plus any ray_cancel in
 * flight, which claims the task under a result entry's shard lock (and a
 * dying actor's hold on a call it fails, actor.c); a task
 * completes or fails every result before it lets go, so a pending result
 * always points at a live task. State moves PENDING -> RUNNING or
 * PENDING -> CANCELED (one CAS decides), then DONE (task.h says when actor.c
 * sets it back to PENDING).
 *
 * Locks: dep_notify and alias_notify run under an argument's shard lock and
 * take only a worker queue's, the loop queue's or (ray__actor_call_ready)
 * the actor's mutex inside; user code (task functions, constructors,
 * methods) runs with no lock held. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "error_internal.h"
#include "hook.h"
#include "internal.h"

struct ray_task_ctx_s {
  ray__task_t *t;
  uint32_t attempt;
  bool exit; /* ray_actor_exit() was called */
  ray__entry_t *slots[RAY_MAX_RETURNS];
  uint64_t alias[RAY_MAX_RETURNS]; /* ray_return_ref: the source (one reference held) */
  ray_error_t *err;
  msgpack_zone *zone;
};

/* ---- Lifetime ---- */

void ray__task_hold(void *p) {
  atomic_fetch_add(&((ray__task_t *)p)->refs, 1);
}

void ray__task_unref(ray__task_t *t) {
  if (atomic_fetch_sub(&t->refs, 1) == 1) ray__free(t);
}

void ray__task_finish(ray__task_t *t) {
  atomic_store(&t->state, RAY__T_DONE);
  for (uint32_t i = 0; i < t->nargs; i++) {
    if (t->args[i].kind == RAY_ARG_REF)
      ray__store_release(&t->rt->store, t->args[i].ref_id);
    else if (t->args[i].kind == RAY_ARG_ACTOR)
      ray__actor_handle_release(t->rt, t->args[i].ref_id);
  }
  if (t->kind != RAY__TASK_CTOR) { /* counted once its arguments are let go, too */
    if (atomic_load(&t->fail_code) != 0)
      atomic_fetch_add_explicit(&t->rt->tasks_failed, 1, memory_order_relaxed);
    atomic_fetch_add(&t->rt->tasks_finished, 1); /* before ray__quiesce's look */
    ray__runtime_task_done(t->rt);
  }
  ray__task_unref(t);
}

/* ---- Results ---- */

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

/* ray_return_ref: the result shares the source object's value once it is
 * ready. Completion may come later, on the loop thread. */
typedef struct alias_s {
  ray__watch_t watch;
  ray__loop_item_t item;
  ray__runtime_t *rt;
  uint64_t result;
  uint64_t src; /* one reference held */
  int status;
} alias_t;

static void alias_finish(alias_t *a) {
  ray__store_t *st = &a->rt->store;
  ray_buf_t view;
  ray__entry_t *e = NULL;
  if (a->status == 0 && ray__store_pin_ready(st, a->src, &view) == 0)
    e = ray__entry_new_shared(st, &view); /* shares the source's payload */
  if (e == NULL) { /* the source failed (or memory ran out): fail, caused by it */
    ray_error_t *err = NULL;
    int code = a->status != 0 ? RAY_EDEPFAILED : RAY_ENOMEM;
    (void)ray_error_new(&err, code, NULL, "returned object %llu failed", (unsigned long long)a->src);
    ray__store_fail(st, a->result, code, err, a->status != 0 ? a->src : 0, true);
    ray_error_free(err);
  } else {
    e->id = a->result;
    ray__store_complete(st, e);
  }
  ray__store_release(st, a->src);
  ray__free(a);
}

static void alias_run(ray__loop_item_t *item) {
  alias_finish((alias_t *)((char *)item - offsetof(alias_t, item)));
}

/* Under the source's shard lock: hand over to the loop thread. */
static void alias_notify(ray__watch_t *w, int status) {
  alias_t *a = (alias_t *)w;
  a->status = status;
  ray__loop_post(&a->rt->loop, &a->item);
}

/* Takes over the reference on src the context held. */
static void alias_start(ray__runtime_t *rt, uint64_t result, uint64_t src) {
  alias_t *a = ray__malloc(sizeof *a);
  if (a == NULL) {
    ray__store_fail(&rt->store, result, RAY_ENOMEM, NULL, 0, true);
    ray__store_release(&rt->store, src);
    return;
  }
  *a = (alias_t){.watch = {.fn = alias_notify},
                 .item = {.run = alias_run},
                 .rt = rt,
                 .result = result,
                 .src = src};
  int status = 0;
  int rc = ray__store_watch(&rt->store, src, &a->watch, false, &status);
  if (rc == 1 || rc < 0) {
    a->status = rc < 0 ? rc : status;
    alias_finish(a);
  }
}

/* Drop what the function set (a failed attempt, or a failure after it). */
static void discard_slots(ray_task_ctx_t *ctx) {
  ray__store_t *st = &ctx->t->rt->store;
  for (uint32_t i = 0; i < ctx->t->nreturns; i++) {
    if (ctx->slots[i] != NULL) ray__store_drop(st, ctx->slots[i]);
    if (ctx->alias[i] != 0) ray__store_release(st, ctx->alias[i]);
    ctx->slots[i] = NULL;
    ctx->alias[i] = 0;
  }
}

static void publish(ray_task_ctx_t *ctx) {
  ray__task_t *t = ctx->t;
  ray__store_t *st = &t->rt->store;
  for (uint32_t i = 0; i < t->nreturns; i++) {
    if (ctx->slots[i] != NULL) {
      ctx->slots[i]->id = t->returns[i].id;
      ray__store_complete(st, ctx->slots[i]);
    } else if (ctx->alias[i] != 0) {
      ray__store_clear_producer(st, t->returns[i].id); /* the task is about to go */
      alias_start(t->rt, t->returns[i].id, ctx->alias[i]);
    } else {
      ray_error_t *err = NULL;
      if (ray_error_new(&err, RAY_ENORESULT, t->name, "result slot %u was not set", i) == 0)
        ray_error_set_task_id(err, t->task_id);
      ray__store_fail(st, t->returns[i].id, RAY_ENORESULT, err, 0, true);
      ray_error_free(err);
    }
    ctx->slots[i] = NULL;
    ctx->alias[i] = 0;
  }
}

/* ---- Running ---- */

/* The error a failed attempt leaves. NULL only when memory ran out. */
static ray_error_t *attempt_error(ray_task_ctx_t *ctx, int rc) {
  ray__task_t *t = ctx->t;
  ray_error_t *err = ctx->err;
  ctx->err = NULL;
  if (err == NULL) {
    if (rc < 0 && ray__is_error_code(rc))
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
  s.kind = t->kind;
  uint64_t ids[RAY_MAX_ARGS + RAY_MAX_RETURNS];
  s.nargs = 0;
  for (uint32_t i = 0; i < t->nargs; i++)
    if (t->args[i].kind == RAY_ARG_REF) ids[s.nargs++] = t->args[i].ref_id;
  s.nresults = t->nreturns;
  for (uint32_t i = 0; i < t->nreturns; i++) ids[s.nargs + i] = t->returns[i].id;
  s.ids = ids;
  ray__obs_record(ray__worker_obs(w), &s, t->rt->cfg.timeline);
}

/* Let go of a task after it ran, or instead of running it. Method calls go
 * back to their actor, which may hand over its next call to run inline. */
static ray__task_t *end_task(ray__task_t *t, bool fatal) {
  if (t->kind == RAY__TASK_METHOD) return ray__actor_call_done(t, fatal);
  ray__task_finish(t);
  return NULL;
}

/* A constructor that cannot run (shutdown, a failed argument). */
static void ctor_cannot_run(ray__task_t *t, int code, uint64_t cause_id) {
  ray_error_t *err = NULL;
  ray_error_new(&err, code, t->name, "%s could not run: %s%s", t->name, ray_err_name(code),
                cause_id ? " (an argument failed)" : "");
  if (err != NULL) ray_error_set_task_id(err, t->task_id);
  ray__actor_ctor_done(t, err); /* takes err; a NULL err still means failure */
}

static void unpin_args(ray__task_t *t, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (t->args[i].kind == RAY_ARG_REF) ray_buf_release(&t->args[i].view);
}

/* Run one task; returns the next one to run inline (an actor's next call). */
static ray__task_t *run_one(ray__task_t *t) {
  ray__runtime_t *rt = t->rt;
  int expected = RAY__T_PENDING;
  if (!atomic_compare_exchange_strong(&t->state, &expected, RAY__T_RUNNING))
    return end_task(t, false); /* cancelled, or its actor died: results failed already */
  if (atomic_load(&rt->stopping)) {
    if (t->kind == RAY__TASK_CTOR) {
      ctor_cannot_run(t, RAY_ESHUTDOWN, 0);
      return NULL;
    }
    ray__task_fail(t, RAY_ESHUTDOWN, 0, NULL, "runtime shut down before %s ran", t->name);
    return end_task(t, false);
  }
  int dep = atomic_load(&t->dep_status);
  if (dep != 0) {
    uint64_t failed = atomic_load(&t->dep_failed);
    if (t->kind == RAY__TASK_CTOR) {
      ctor_cannot_run(t, RAY_EDEPFAILED, failed);
      return NULL;
    }
    ray__task_fail(t, RAY_EDEPFAILED, failed, NULL, "an argument of %s failed (object %llu: %s)",
                   t->name, (unsigned long long)failed, ray_err_name(dep));
    return end_task(t, false);
  }
  uint32_t pinned = 0;
  for (; pinned < t->nargs; pinned++) {
    ray__task_arg_t *a = &t->args[pinned];
    if (a->kind != RAY_ARG_REF) continue;
    int rc = ray__store_pin_ready(&rt->store, a->ref_id, &a->view); /* restores spilled ones */
    if (rc != 0) break;
    a->data = a->view.data;
    a->size = a->view.size;
    a->type = a->view.type;
  }
  if (pinned < t->nargs) {
    unpin_args(t, pinned);
    if (t->kind == RAY__TASK_CTOR) {
      ctor_cannot_run(t, RAY_EDEPFAILED, 0);
      return NULL;
    }
    ray__task_fail(t, RAY_EDEPFAILED, 0, NULL, "an argument of %s is unreadable", t->name);
    return end_task(t, false);
  }

  ray_task_ctx_t ctx;
  memset(&ctx, 0, sizeof ctx);
  ctx.t = t;
  bool fatal = false;
  uint64_t started = rt->record_runs ? uv_hrtime() : 0;
  if (t->kind == RAY__TASK_CTOR) {
    ctx.attempt = 1;
    int rc = ray__actor_construct(t->actor, &ctx);
    ray_error_t *err = rc == 0 && ctx.err == NULL ? NULL : attempt_error(&ctx, rc);
    if (ctx.zone != NULL) msgpack_zone_free(ctx.zone);
    unpin_args(t, pinned);
    if (err == NULL && (rc != 0 || ctx.err != NULL)) ray_error_new(&err, RAY_ENOMEM, NULL, NULL);
    record_run(t, started, err != NULL ? err->code : 0);
    ray__actor_ctor_done(t, err);
    return NULL;
  }
  void *fn_arg = t->kind == RAY__TASK_METHOD ? ray__actor_state(t->actor) : t->fn->arg;
  for (ctx.attempt = 1;; ctx.attempt++) {
    int rc = t->fn->fn(&ctx, fn_arg);
    if (t->kind == RAY__TASK_METHOD && (ctx.exit || rc == RAY_EACTORDIED)) {
      discard_slots(&ctx); /* the actor layer fails or retries this call */
      ray_error_free(ctx.err);
      ctx.err = NULL;
      fatal = true;
      break;
    }
    if (rc == 0 && ctx.err == NULL) {
      publish(&ctx);
      break;
    }
    discard_slots(&ctx);
    ray_error_t *err = attempt_error(&ctx, rc);
    if (t->retry_on_error && ctx.attempt <= t->max_retries && !atomic_load(&t->cancel) &&
        !atomic_load(&rt->stopping)) {
      ray_error_free(err);
      continue;
    }
    fail_results(t, err, RAY_ENOMEM, 0);
    ray_error_free(err);
    break;
  }
  if (ctx.zone != NULL) msgpack_zone_free(ctx.zone);
  unpin_args(t, pinned);
  record_run(t, started, fatal ? RAY_EACTORDIED : atomic_load(&t->fail_code));
  return end_task(t, fatal);
}

static void task_run(ray__runnable_t *rn) {
  for (ray__task_t *t = (ray__task_t *)rn; t != NULL;) t = run_one(t);
}

static void task_drop(ray__runnable_t *rn) {
  ray__task_t *t = (ray__task_t *)rn;
  if (t->kind == RAY__TASK_CTOR) {
    ctor_cannot_run(t, RAY_ESHUTDOWN, 0);
    return;
  }
  ray__task_fail(t, RAY_ESHUTDOWN, 0, NULL, "runtime shut down before %s ran", t->name);
  (void)end_task(t, false); /* the runtime is stopping: no next call comes back */
}

/* Under the argument's shard lock. */
static void dep_notify(ray__watch_t *w, int status) {
  ray__task_arg_t *a = (ray__task_arg_t *)w;
  ray__task_t *t = a->task;
  if (status != 0) {
    int none = 0;
    if (atomic_compare_exchange_strong(&t->dep_status, &none, status))
      atomic_store(&t->dep_failed, a->ref_id);
  }
  if (atomic_fetch_sub(&t->deps, 1) == 1) {
    if (t->kind == RAY__TASK_FN)
      ray__sched_push(&t->rt->sched, &t->rn);
    else
      ray__actor_call_ready(t);
  }
}

/* ---- Submission ---- */

/* Encode a value argument of a msgpack-encoded type (not BYTES: the caller
 * uses those bytes as they are). Errors: RAY_EINVAL, RAY_ENOMEM. */
static int encode_value(const ray_arg_t *a, ray__mpbuf_t *b) {
  switch (a->type) {
    case RAY_TYPE_I64:
      ray__encode_i64(b, a->u.i64);
      break;
    case RAY_TYPE_F64:
      ray__encode_f64(b, a->u.f64);
      break;
    case RAY_TYPE_STR:
      ray__encode_str(b, a->u.str);
      break;
    case RAY_TYPE_MSGPACK: {
      msgpack_packer pk;
      ray__mpbuf_init(b, &pk);
      msgpack_pack_object(&pk, *a->u.msgpack);
      break;
    }
    default:
      return RAY_EINVAL;
  }
  if (b->oom) {
    ray__mpbuf_destroy(b);
    return RAY_ENOMEM;
  }
  return 0;
}

static int check_arg(const ray_arg_t *a) {
  if (a->kind == RAY_ARG_REF) return a->u.ref.id == 0 ? RAY_ENOTFOUND : 0;
  if (a->kind == RAY_ARG_ACTOR) return a->u.i64 == 0 ? RAY_ENOTFOUND : 0;
  if (a->kind != RAY_ARG_VALUE) return RAY_EINVAL;
  switch (a->type) {
    case RAY_TYPE_I64:
    case RAY_TYPE_F64:
      return 0;
    case RAY_TYPE_STR:
      return a->u.str != NULL ? 0 : RAY_EINVAL;
    case RAY_TYPE_MSGPACK:
      return a->u.msgpack != NULL ? 0 : RAY_EINVAL;
    case RAY_TYPE_BYTES:
      return a->u.bytes.data != NULL || a->u.bytes.size == 0 ? 0 : RAY_EINVAL;
    default:
      return RAY_EINVAL;
  }
}

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

int ray__task_submit(ray__runtime_t *rt, ray__func_t *f, struct ray__actor_s *actor, uint8_t kind,
                     const ray_arg_t *args, size_t nargs, const ray_task_opts_t *opts,
                     ray_ref_t *out_refs, ray__task_t **out_task) {
  ray_task_opts_t defaults;
  if (opts == NULL) {
    ray_task_opts_init(&defaults);
    opts = &defaults;
  }
  if (opts->num_returns != 0 && opts->num_returns != f->nreturns) return RAY_EINVAL;
  if (atomic_load(&rt->stopping)) return RAY_ESHUTDOWN;
  for (size_t i = 0; i < nargs; i++) {
    int rc = check_arg(&args[i]);
    if (rc != 0) return rc;
  }
  ray__store_t *st = &rt->store;

  /* Values: encode; keep small ones inline, put large ones into the store. */
  ray__mpbuf_t enc[RAY_MAX_ARGS];
  const void *vdata[RAY_MAX_ARGS];
  size_t vsize[RAY_MAX_ARGS];
  uint64_t stored[RAY_MAX_ARGS] = {0}; /* refs from large values (ours to release) */
  bool have_enc[RAY_MAX_ARGS] = {false};
  size_t inline_bytes = 0, nenc = 0;
  int rc = 0;
  for (size_t i = 0; i < nargs; i++) {
    stored[i] = 0;
    if (args[i].kind != RAY_ARG_VALUE) continue;
    if (args[i].type == RAY_TYPE_MSGPACK) { /* refs inside: the object must hold them */
      ray_ref_t *inner;
      size_t ninner;
      if ((rc = ray__mp_collect_refs(args[i].u.msgpack, &inner, &ninner)) != 0) goto fail_values;
      ray__free(inner);
      if (ninner > 0) {
        ray_ref_t r;
        if ((rc = ray_put_msgpack(args[i].u.msgpack, &r)) != 0) goto fail_values;
        stored[i] = r.id;
        continue;
      }
    }
    if (args[i].type == RAY_TYPE_BYTES) {
      vdata[i] = args[i].u.bytes.data;
      vsize[i] = args[i].u.bytes.size;
    } else {
      if ((rc = encode_value(&args[i], &enc[i])) != 0) goto fail_values;
      have_enc[i] = true;
      nenc = i + 1;
      vdata[i] = enc[i].data;
      vsize[i] = enc[i].size;
    }
    if (vsize[i] > st->inline_threshold) {
      ray_ref_t r;
      if ((rc = ray_put_typed(vdata[i], vsize[i], args[i].type, &r)) != 0) goto fail_values;
      stored[i] = r.id;
    } else {
      inline_bytes += ALIGN8(vsize[i]);
    }
  }

  size_t namelen = opts->name != NULL ? strlen(opts->name) + 1 : 0;
  size_t size = sizeof(ray__task_t) + nargs * sizeof(ray__task_arg_t) +
                f->nreturns * sizeof(ray_ref_t) + ALIGN8(namelen) + inline_bytes;
  ray__task_t *t = ray__malloc(size);
  if (t == NULL) {
    rc = RAY_ENOMEM;
    goto fail_values;
  }
  memset(t, 0, sizeof *t);
  t->rn.run = task_run;
  t->rn.drop = task_drop;
  t->rt = rt;
  t->fn = f;
  t->actor = actor;
  t->kind = kind;
  t->task_id = ray__id_next();
  atomic_init(&t->deps, 1); /* the submission guard */
  atomic_init(&t->state, RAY__T_PENDING);
  atomic_init(&t->refs, 1);
  atomic_init(&t->cancel, false);
  atomic_init(&t->dep_status, 0);
  atomic_init(&t->dep_failed, 0);
  t->nargs = (uint32_t)nargs;
  t->nreturns = f->nreturns;
  t->max_retries = opts->max_retries;
  t->retry_on_error = opts->retry_on_error;
  t->returns = (ray_ref_t *)&t->args[nargs];
  char *p = (char *)&t->returns[f->nreturns];
  t->name = f->name;
  if (namelen > 0) {
    memcpy(p, opts->name, namelen);
    t->name = p;
    p += ALIGN8(namelen);
  }
  for (size_t i = 0; i < nargs; i++) {
    ray__task_arg_t *a = &t->args[i];
    memset(a, 0, sizeof *a);
    a->watch.fn = dep_notify;
    a->task = t;
    a->type = args[i].type;
    a->by_value = args[i].kind == RAY_ARG_VALUE;
    if (args[i].kind == RAY_ARG_ACTOR) {
      a->kind = RAY_ARG_ACTOR;
      a->ref_id = (uint64_t)args[i].u.i64;
    } else if (args[i].kind == RAY_ARG_REF || stored[i] != 0) {
      a->kind = RAY_ARG_REF;
      a->ref_id = args[i].kind == RAY_ARG_REF ? args[i].u.ref.id : stored[i];
    } else {
      a->kind = RAY_ARG_VALUE;
      if (vsize[i] > 0) memcpy(p, vdata[i], vsize[i]);
      a->data = p;
      a->size = vsize[i];
      p += ALIGN8(vsize[i]);
    }
  }
  for (size_t i = 0; i < nenc; i++)
    if (have_enc[i]) ray__mpbuf_destroy(&enc[i]);
  nenc = 0;

  /* Results: pending entries, typed as registered, pointing back here. */
  uint32_t made = 0;
  for (; made < f->nreturns; made++) {
    ray__entry_t *e = ray__entry_new(st, 0, f->types[made], RAY__PENDING);
    if (e == NULL) {
      rc = ray__entry_error();
      goto fail_results;
    }
    e->producer = t;
    e->id = ray__id_next();
    ray__store_insert(st, e);
    t->returns[made] = (ray_ref_t){e->id, e->type};
  }

  /* Actor arguments: the task holds a handle reference on each. */
  size_t held = 0;
  for (; held < nargs; held++) {
    if (t->args[held].kind != RAY_ARG_ACTOR) continue;
    if ((rc = ray__actor_handle_retain(rt, t->args[held].ref_id)) != 0) goto fail_actors;
  }

  /* Dependencies: each watch also takes the task's reference. */
  size_t watched = 0;
  for (; watched < nargs; watched++) {
    ray__task_arg_t *a = &t->args[watched];
    if (a->kind != RAY_ARG_REF) continue;
    atomic_fetch_add(&t->deps, 1);
    int status = 0;
    int r = ray__store_watch(st, a->ref_id, &a->watch, true, &status);
    if (r == 1) { /* already complete: count it down now */
      dep_notify(&a->watch, status);
    } else if (r < 0) {
      atomic_fetch_sub(&t->deps, 1);
      rc = r;
      goto fail_deps;
    }
  }
  for (size_t i = 0; i < nargs; i++)
    if (stored[i] != 0) ray__store_release(st, stored[i]); /* the task holds its own */
  if (f->nreturns > 0) memcpy(out_refs, t->returns, f->nreturns * sizeof *out_refs);
  if (kind != RAY__TASK_CTOR)
    atomic_fetch_add_explicit(&rt->tasks_submitted, 1, memory_order_relaxed);
  if (out_task != NULL) *out_task = t;
  ray__hook(RAY__AT_SUBMIT_ADMITTED, NULL);
  if (kind == RAY__TASK_METHOD) ray__actor_enqueue(t); /* in submission order */
  if (atomic_fetch_sub(&t->deps, 1) == 1) {
    if (kind == RAY__TASK_FN)
      ray__sched_push(&rt->sched, &t->rn);
    else
      ray__actor_call_ready(t);
  }
  return 0;

fail_deps:
  /* Nobody has seen the task: the guard kept it from running. */
  for (size_t i = 0; i < watched; i++) {
    ray__task_arg_t *a = &t->args[i];
    if (a->kind != RAY_ARG_REF) continue;
    ray__store_unwatch(st, a->ref_id, &a->watch);
    ray__store_release(st, a->ref_id);
  }
fail_actors:
  for (size_t i = 0; i < held; i++)
    if (t->args[i].kind == RAY_ARG_ACTOR) ray__actor_handle_release(rt, t->args[i].ref_id);
fail_results:
  for (uint32_t i = 0; i < made; i++) ray__store_release(st, t->returns[i].id);
  ray__free(t);
fail_values:
  for (size_t i = 0; i < nargs; i++)
    if (stored[i] != 0) ray__store_release(st, stored[i]);
  for (size_t i = 0; i < nenc; i++)
    if (have_enc[i]) ray__mpbuf_destroy(&enc[i]);
  return rc;
}

void ray_task_opts_init(ray_task_opts_t *opts) {
  if (opts == NULL) return;
  memset(opts, 0, sizeof *opts);
}

int ray_task_submit(ray_function_t fn, const ray_arg_t *args, size_t nargs,
                    const ray_task_opts_t *opts, ray_ref_t *out_refs) {
  if (out_refs == NULL || (args == NULL && nargs > 0) || nargs > RAY_MAX_ARGS) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  ray__func_t *f = ray__registry_get(&rt->funcs, fn);
  if (f == NULL) return RAY_ENOTFOUND;
  return ray__task_submit(rt, f, NULL, RAY__TASK_FN, args, nargs, opts, out_refs, NULL);
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
  ray__task_unref(t);
  return 0;
}

/* ---- The context ---- */

static ray__task_arg_t *arg_at(ray_task_ctx_t *ctx, size_t i) {
  if (ctx == NULL || i >= ctx->t->nargs) return NULL;
  return &ctx->t->args[i];
}

size_t ray_ctx_nargs(const ray_task_ctx_t *ctx) {
  return ctx != NULL ? ctx->t->nargs : 0;
}

uint32_t ray_ctx_arg_type(const ray_task_ctx_t *ctx, size_t i) {
  return ctx != NULL && i < ctx->t->nargs ? ctx->t->args[i].type : 0;
}

/* Argument i, which must have `type`. */
static int typed_arg(ray_task_ctx_t *ctx, size_t i, uint32_t type, ray__task_arg_t **out) {
  ray__task_arg_t *a = arg_at(ctx, i);
  if (a == NULL) return RAY_EINVAL;
  if (a->type != type) return RAY_ETYPE;
  *out = a;
  return 0;
}

/* Decode argument i, which must have `type`, into *u. */
static int arg_decode(ray_task_ctx_t *ctx, size_t i, uint32_t type, msgpack_unpacked *u) {
  ray__task_arg_t *a;
  int rc = typed_arg(ctx, i, type, &a);
  return rc != 0 ? rc : ray__mp_decode(a->data, a->size, u);
}

int ray_ctx_arg_i64(ray_task_ctx_t *ctx, size_t i, int64_t *out) {
  if (out == NULL) return RAY_EINVAL;
  ray__task_arg_t *a;
  int rc = typed_arg(ctx, i, RAY_TYPE_I64, &a);
  return rc != 0 ? rc : ray__decode_i64(a->data, a->size, out);
}

int ray_ctx_arg_f64(ray_task_ctx_t *ctx, size_t i, double *out) {
  if (out == NULL) return RAY_EINVAL;
  ray__task_arg_t *a;
  int rc = typed_arg(ctx, i, RAY_TYPE_F64, &a);
  return rc != 0 ? rc : ray__decode_f64(a->data, a->size, out);
}

int ray_ctx_arg_str(ray_task_ctx_t *ctx, size_t i, const char **s, size_t *len) {
  if (s == NULL || len == NULL) return RAY_EINVAL;
  msgpack_unpacked u;
  int rc = arg_decode(ctx, i, RAY_TYPE_STR, &u);
  if (rc != 0) return rc;
  if (u.data.type == MSGPACK_OBJECT_STR) {
    *s = u.data.via.str.ptr; /* points into the argument's bytes */
    *len = u.data.via.str.size;
  } else {
    rc = RAY_EDECODE;
  }
  msgpack_unpacked_destroy(&u);
  return rc;
}

int ray_ctx_arg_bytes(ray_task_ctx_t *ctx, size_t i, const void **data, size_t *size) {
  if (data == NULL || size == NULL) return RAY_EINVAL;
  ray__task_arg_t *a;
  int rc = typed_arg(ctx, i, RAY_TYPE_BYTES, &a);
  if (rc != 0) return rc;
  *data = a->data;
  *size = a->size;
  return 0;
}

int ray_ctx_arg_msgpack(ray_task_ctx_t *ctx, size_t i, msgpack_object *out) {
  if (out == NULL) return RAY_EINVAL;
  ray__task_arg_t *a;
  int rc = typed_arg(ctx, i, RAY_TYPE_MSGPACK, &a);
  if (rc != 0) return rc;
  if (ray__mp_check(a->data, a->size) != 0) return RAY_EDECODE; /* maybe a caller's bytes */
  if (ctx->zone == NULL && (ctx->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE)) == NULL)
    return RAY_ENOMEM;
  size_t off = 0;
  msgpack_unpack_return r = msgpack_unpack(a->data, a->size, &off, ctx->zone, out);
  if (r == MSGPACK_UNPACK_SUCCESS && off == a->size) return 0;
  return r == MSGPACK_UNPACK_NOMEM_ERROR ? RAY_ENOMEM : RAY_EDECODE;
}

int ray_ctx_arg_ref(ray_task_ctx_t *ctx, size_t i, ray_ref_t *out) {
  if (out == NULL) return RAY_EINVAL;
  ray__task_arg_t *a = arg_at(ctx, i);
  if (a == NULL) return RAY_EINVAL;
  if (a->by_value || a->kind != RAY_ARG_REF) return RAY_ETYPE;
  *out = (ray_ref_t){a->ref_id, a->type};
  return 0;
}

/* Install `e` (NULL: nothing yet) in a checked slot, dropping the value or
 * ref alias it held. Never fails. */
static int set_slot(ray_task_ctx_t *ctx, size_t slot, ray__entry_t *e) {
  ray__store_t *st = &ctx->t->rt->store;
  if (ctx->slots[slot] != NULL) ray__store_drop(st, ctx->slots[slot]);
  if (ctx->alias[slot] != 0) ray__store_release(st, ctx->alias[slot]);
  ctx->alias[slot] = 0;
  ctx->slots[slot] = e;
  return 0;
}

/* Validate a setter: slot in range and registered with `type` (0: any
 * type, for bytes, owned buffers and refs). */
static int slot_check(ray_task_ctx_t *ctx, size_t slot, uint32_t type) {
  if (ctx == NULL || slot >= ctx->t->nreturns) return RAY_EINVAL;
  uint32_t want = ctx->t->fn->types[slot];
  if (type != 0 && want != type) return RAY_ETYPE;
  return 0;
}

static int return_copy(ray_task_ctx_t *ctx, size_t slot, const void *data, size_t size) {
  ray__entry_t *e = ray__entry_new(&ctx->t->rt->store, size, ctx->t->fn->types[slot], RAY__READY);
  if (e == NULL) return ray__entry_error();
  if (size > 0) memcpy(e->data, data, size);
  return set_slot(ctx, slot, e);
}

static int return_encoded(ray_task_ctx_t *ctx, size_t slot, ray__mpbuf_t *b) {
  int rc = b->oom ? RAY_ENOMEM : return_copy(ctx, slot, b->data, b->size);
  ray__mpbuf_destroy(b);
  return rc;
}

int ray_return_i64(ray_task_ctx_t *ctx, size_t slot, int64_t v) {
  int rc = slot_check(ctx, slot, RAY_TYPE_I64);
  if (rc != 0) return rc;
  ray__mpbuf_t b;
  ray__encode_i64(&b, v);
  return return_encoded(ctx, slot, &b);
}

int ray_return_f64(ray_task_ctx_t *ctx, size_t slot, double v) {
  int rc = slot_check(ctx, slot, RAY_TYPE_F64);
  if (rc != 0) return rc;
  ray__mpbuf_t b;
  ray__encode_f64(&b, v);
  return return_encoded(ctx, slot, &b);
}

int ray_return_str(ray_task_ctx_t *ctx, size_t slot, const char *s) {
  if (s == NULL) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, RAY_TYPE_STR);
  if (rc != 0) return rc;
  ray__mpbuf_t b;
  ray__encode_str(&b, s);
  return return_encoded(ctx, slot, &b);
}

int ray_return_msgpack(ray_task_ctx_t *ctx, size_t slot, const msgpack_object *obj) {
  if (obj == NULL) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, RAY_TYPE_MSGPACK);
  if (rc != 0) return rc;
  ray_ref_t *refs;
  size_t nrefs;
  if ((rc = ray__mp_collect_refs(obj, &refs, &nrefs)) != 0) return rc;
  ray__store_t *st = &ctx->t->rt->store;
  uint64_t *inner = NULL;
  if (nrefs > 0) { /* the result holds the refs inside it */
    if ((inner = ray__malloc(nrefs * sizeof *inner)) == NULL) {
      ray__free(refs);
      return RAY_ENOMEM;
    }
    for (size_t i = 0; i < nrefs; i++) inner[i] = refs[i].id;
    if ((rc = ray__store_retain_batch(st, refs, nrefs)) != 0) {
      ray__free(inner);
      ray__free(refs);
      return rc;
    }
  }
  ray__mpbuf_t b;
  msgpack_packer pk;
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_object(&pk, *obj);
  rc = return_encoded(ctx, slot, &b);
  if (rc == 0) {
    ctx->slots[slot]->inner = inner;
    ctx->slots[slot]->ninner = (uint32_t)nrefs;
  } else {
    if (nrefs > 0) ray__store_release_batch(st, refs, nrefs);
    ray__free(inner);
  }
  ray__free(refs);
  return rc;
}

int ray_return_bytes(ray_task_ctx_t *ctx, size_t slot, const void *data, size_t size) {
  if (data == NULL && size > 0) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, 0);
  if (rc != 0) return rc;
  return return_copy(ctx, slot, data, size);
}

int ray_return_owned(ray_task_ctx_t *ctx, size_t slot, void *data, size_t size,
                     void (*free_fn)(void *)) {
  if (data == NULL && size > 0) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, 0);
  if (rc != 0) return rc;
  ray__entry_t *e = ray__entry_new_owned(&ctx->t->rt->store, data, size, free_fn, data,
                                         ctx->t->fn->types[slot], true);
  if (e == NULL) return ray__entry_error();
  return set_slot(ctx, slot, e);
}

int ray_return_ref(ray_task_ctx_t *ctx, size_t slot, ray_ref_t ref) {
  int rc = slot_check(ctx, slot, 0);
  if (rc != 0) return rc;
  if (ref.id == 0) return RAY_ENOTFOUND;
  if (ref.type != ctx->t->fn->types[slot]) return RAY_ETYPE;
  ray__store_t *st = &ctx->t->rt->store;
  if ((rc = ray__store_retain(st, ref.id)) != 0) return rc;
  set_slot(ctx, slot, NULL);
  ctx->alias[slot] = ref.id;
  return 0;
}

int ray_fail(ray_task_ctx_t *ctx, int code, const char *fmt, ...) {
  if (ctx == NULL || code >= 0) return RAY_EINVAL;
  if (!ray__is_error_code(code)) code = RAY_ETASK; /* as for a function returning it */
  char msg[1024];
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
  }
  ray_error_t *err = NULL;
  if (ray_error_new(&err, code, ctx->t->name, fmt != NULL ? "%s" : NULL, msg) == 0) {
    ray_error_free(ctx->err);
    ctx->err = err;
  } else if (ctx->err == NULL) {
    /* Out of memory: the failure still stands, with the code alone. */
    ray_error_new(&ctx->err, code, NULL, NULL);
  }
  return code;
}

uint64_t ray_ctx_task_id(const ray_task_ctx_t *ctx) {
  return ctx != NULL ? ctx->t->task_id : 0;
}

const char *ray_ctx_name(const ray_task_ctx_t *ctx) {
  return ctx != NULL ? ctx->t->name : "";
}

uint32_t ray_ctx_attempt(const ray_task_ctx_t *ctx) {
  return ctx != NULL ? ctx->attempt : 0;
}

bool ray_task_is_cancelled(const ray_task_ctx_t *ctx) {
  return ctx != NULL && atomic_load(&ctx->t->cancel);
}

int ray_ctx_arg_actor(ray_task_ctx_t *ctx, size_t i, ray_actor_t *out) {
  if (out == NULL) return RAY_EINVAL;
  ray__task_arg_t *a = arg_at(ctx, i);
  if (a == NULL) return RAY_EINVAL;
  if (a->kind != RAY_ARG_ACTOR) return RAY_ETYPE;
  out->id = a->ref_id;
  return 0;
}

int ray_actor_exit(ray_task_ctx_t *ctx) {
  if (ctx == NULL || ctx->t->kind != RAY__TASK_METHOD) return RAY_EINVAL;
  ctx->exit = true;
  return 0;
}

int ray_ctx_actor(ray_task_ctx_t *ctx, ray_actor_t *out) {
  if (ctx == NULL || out == NULL || ctx->t->actor == NULL) return RAY_EINVAL;
  out->id = ray__actor_id(ctx->t->actor);
  return 0;
}
