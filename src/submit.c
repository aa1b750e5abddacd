/* submit.c - submitting a task: from the caller's arguments to a task
 * waiting on its dependencies (ray_task_submit, and ray__task_submit for
 * any kind of task: actor.c submits constructors and method calls).
 *
 * Submission is a few steps over one record per argument (arg_rec_t), each
 * undone in reverse order when a later one fails, so a failed submission
 * leaves nothing behind and nobody has seen the task:
 *   validate      the options and every argument, before anything is made;
 *   store_values  encode each value; a small one is copied inline into the
 *                 task, a large one (and a msgpack value holding refs, which
 *                 the stored object must hold) is put into the store and
 *                 passed as a ref, as Ray does;
 *   build         one allocation: header, arguments, result refs, name and
 *                 the inline values;
 *   make_results  the result entries, pending (ids known at once, typed as
 *                 registered, `producer` pointing back at the task);
 *   hold_actors   a handle reference on every actor argument;
 *   watch_deps    a watch on every ref argument, which also takes the
 *                 task's reference on it (one already complete counts down
 *                 at once);
 *   hand_off      hand the refs out, let the kind's ops place the task
 *                 (a method call joins its mailbox), then drop the guard
 *                 on `deps`: the last resolution calls ops->ready.
 * `deps` holds one guard from build until hand_off, so no dependency that
 * resolves meanwhile can run the task early.
 *
 * Locks: none held across the steps; ray__store_watch may call
 * ray__task_dep_notify under a shard lock (task.c). */
#include <string.h>

#include "codec.h"
#include "hook.h"
#include "internal.h"
#include "pool.h"

#define ALIGN8(n) (((n) + 7) & ~(size_t)7)

/* One argument on its way into the task. */
typedef struct arg_rec_s {
  const ray_arg_t *in;
  ray__mpbuf_t enc; /* its encoding, when have_enc */
  bool have_enc;
  const void *data; /* a value's bytes (inline ones are copied from here) */
  size_t size;
  uint64_t stored; /* a value put into the store: the ref, ours to release */
} arg_rec_t;

/* A submission in progress: what the steps made so far, for undoing. */
typedef struct submit_s {
  ray__runtime_t *rt;
  ray__func_t *f;
  const ray__task_ops_t *ops;
  void *owner;
  const ray_task_opts_t *opts;
  bool encoded_ok; /* RAY__ARG_ENCODED, RAY__ARG_STORED allowed: a task from another rank */
  size_t nargs;
  size_t inline_bytes; /* room the inline values take in the task */
  ray__task_t *t;
  uint32_t made;  /* result entries made */
  size_t held;    /* arguments gone through by hold_actors */
  size_t watched; /* arguments gone through by watch_deps */
  arg_rec_t rec[RAY_MAX_ARGS];
} submit_t;

/* ---- validate ---- */

static int check_arg(const ray_arg_t *a, bool encoded_ok) {
  if (a->kind == RAY_ARG_REF) return a->u.ref.id == 0 ? RAY_ENOTFOUND : 0;
  if (a->kind == RAY_ARG_ACTOR) return a->u.i64 == 0 ? RAY_ENOTFOUND : 0;
  if (a->kind == RAY__ARG_STORED) /* never a caller's */
    return encoded_ok && a->u.ref.id != 0 ? 0 : RAY_EINVAL;
  if (a->kind == RAY__ARG_ENCODED) /* never a caller's */
    return encoded_ok && a->type != 0 && (a->u.bytes.data != NULL || a->u.bytes.size == 0)
               ? 0
               : RAY_EINVAL;
  if (a->kind == RAY_ARG_MSGPACK_BYTES)
    return a->type == RAY_TYPE_MSGPACK && (a->u.bytes.data != NULL || a->u.bytes.size == 0)
               ? 0
               : RAY_EINVAL;
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

/* Errors: RAY_EINVAL (num_returns, an argument), RAY_ENOTFOUND (a null ref
 * or actor), RAY_ESHUTDOWN. */
static int validate(submit_t *s, const ray_arg_t *args) {
  if (s->opts->num_returns != 0 && s->opts->num_returns != s->f->nreturns) return RAY_EINVAL;
  if (atomic_load(&s->rt->stopping)) return RAY_ESHUTDOWN;
  for (size_t i = 0; i < s->nargs; i++) {
    int rc = check_arg(&args[i], s->encoded_ok);
    if (rc != 0) return rc;
    s->rec[i] = (arg_rec_t){.in = &args[i]};
  }
  return 0;
}

/* ---- store_values ---- */

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

/* One value argument: inline (r->data, r->size), or stored (r->stored).
 * Errors: as encode_value, ray__mp_collect_refs and the puts. */
static int store_value(submit_t *s, arg_rec_t *r) {
  const ray_arg_t *a = r->in;
  ray_ref_t ref;
  int rc;
  if (a->type == RAY_TYPE_MSGPACK &&
      a->kind == RAY_ARG_VALUE) { /* refs inside: held by an object */
    ray_ref_t *inner;
    size_t ninner;
    if ((rc = ray__mp_collect_refs(a->u.msgpack, &inner, &ninner)) != 0) return rc;
    ray__free(inner);
    if (ninner > 0) {
      if ((rc = ray_put_msgpack(a->u.msgpack, &ref)) != 0) return rc;
      r->stored = ref.id;
      return 0;
    }
  }
  size_t held = 0;
  if (a->kind == RAY_ARG_MSGPACK_BYTES &&
      ray__mp_scan(a->u.bytes.data, a->u.bytes.size, &held) != 0)
    return RAY_EDECODE;
  /* Another rank's (cluster mode): its refs travelled (the cluster holds
   * them until the task does); bytes that do not decode go to the function
   * as they came, which reports them as it would locally. */
  if (a->kind == RAY__ARG_ENCODED && a->type == RAY_TYPE_MSGPACK &&
      ray__mp_scan(a->u.bytes.data, a->u.bytes.size, &held) != 0)
    held = 0;
  if (held > 0) { /* refs or handles inside: held by an object */
    msgpack_unpacked u;
    if ((rc = ray__mp_decode(a->u.bytes.data, a->u.bytes.size, &u)) != 0) return rc;
    ray_ref_t *inner;
    size_t ninner;
    rc = ray__mp_collect_refs(&u.data, &inner, &ninner);
    ray__free(inner);
    if (rc == 0 && ninner > 0 && (rc = ray_put_msgpack(&u.data, &ref)) == 0) r->stored = ref.id;
    msgpack_unpacked_destroy(&u);
    if (rc != 0 || r->stored != 0) return rc;
  }
  if (a->type == RAY_TYPE_BYTES || a->kind == RAY__ARG_ENCODED ||
      a->kind == RAY_ARG_MSGPACK_BYTES) {
    r->data = a->u.bytes.data;
    r->size = a->u.bytes.size;
  } else {
    if ((rc = encode_value(a, &r->enc)) != 0) return rc;
    r->have_enc = true;
    r->data = r->enc.data;
    r->size = r->enc.size;
  }
  if (r->size > s->rt->store.inline_threshold) {
    if ((rc = ray_put_typed(r->data, r->size, a->type, &ref)) != 0) return rc;
    r->stored = ref.id;
  } else {
    s->inline_bytes += ALIGN8(r->size);
  }
  return 0;
}

static int store_values(submit_t *s) {
  for (size_t i = 0; i < s->nargs; i++) {
    uint32_t kind = s->rec[i].in->kind;
    if (kind != RAY_ARG_VALUE && kind != RAY__ARG_ENCODED && kind != RAY_ARG_MSGPACK_BYTES)
      continue;
    int rc = store_value(s, &s->rec[i]);
    if (rc != 0) return rc;
  }
  return 0;
}

/* The encodings are copied into the task (or stored) once it is built. */
static void drop_encodings(submit_t *s) {
  for (size_t i = 0; i < s->nargs; i++) {
    if (s->rec[i].have_enc) ray__mpbuf_destroy(&s->rec[i].enc);
    s->rec[i].have_enc = false;
  }
}

/* Undo store_values: the submission's own references on stored values (on
 * success the task holds its own, taken by its watch). */
static void release_stored(submit_t *s) {
  for (size_t i = 0; i < s->nargs; i++)
    if (s->rec[i].stored != 0) ray__store_release(&s->rt->store, s->rec[i].stored);
}

/* ---- build ---- */

/* Errors: RAY_ENOMEM. */
static int build(submit_t *s) {
  const ray_task_opts_t *opts = s->opts;
  size_t nargs = s->nargs;
  uint32_t nreturns = s->f->nreturns;
  size_t namelen = opts->name != NULL ? strlen(opts->name) + 1 : 0;
  size_t size = sizeof(ray__task_t) + nargs * sizeof(ray__task_arg_t) +
                nreturns * sizeof(ray_ref_t) + ALIGN8(namelen) + s->inline_bytes;
  ray__task_t *t = ray__pool_alloc(size);
  if (t == NULL) return RAY_ENOMEM;
  ray__task_init(t, s->rt, s->f, s->ops, s->owner);
  t->nargs = (uint32_t)nargs;
  t->nreturns = nreturns;
  t->max_retries = opts->max_retries;
  t->retry_on_error = opts->retry_on_error;
  t->node = opts->node;
  t->returns = (ray_ref_t *)&t->args[nargs];
  char *p = (char *)&t->returns[nreturns];
  if (namelen > 0) {
    memcpy(p, opts->name, namelen);
    t->name = p;
    p += ALIGN8(namelen);
  }
  for (size_t i = 0; i < nargs; i++) {
    const arg_rec_t *r = &s->rec[i];
    ray__task_arg_t *a = &t->args[i];
    memset(a, 0, sizeof *a);
    a->watch.fn = ray__task_dep_notify;
    a->task = t;
    a->type = r->in->type;
    a->by_value = r->in->kind == RAY_ARG_VALUE || r->in->kind == RAY__ARG_ENCODED ||
                  r->in->kind == RAY__ARG_STORED || r->in->kind == RAY_ARG_MSGPACK_BYTES;
    if (r->in->kind == RAY_ARG_ACTOR) {
      a->kind = RAY_ARG_ACTOR;
      a->ref_id = (uint64_t)r->in->u.i64;
    } else if (r->in->kind == RAY_ARG_REF || r->in->kind == RAY__ARG_STORED || r->stored != 0) {
      a->kind = RAY_ARG_REF;
      a->ref_id = r->stored != 0 ? r->stored : r->in->u.ref.id;
    } else {
      a->kind = RAY_ARG_VALUE;
      if (r->size > 0) memcpy(p, r->data, r->size);
      a->data = p;
      a->size = r->size;
      p += ALIGN8(r->size);
    }
  }
  s->t = t;
  return 0;
}

/* ---- make_results ---- */

/* Errors: as ray__entry_new. */
static int make_results(submit_t *s) {
  ray__store_t *st = &s->rt->store;
  ray__task_t *t = s->t;
  for (; s->made < s->f->nreturns; s->made++) {
    ray__entry_t *e = ray__entry_new(st, 0, s->f->types[s->made], RAY__PENDING);
    if (e == NULL) return ray__entry_error();
    e->producer = t;
    if (t->ops->kind != RAY__TASK_CTOR) e->flags |= RAY__F_HELPABLE; /* wait.c may run it */
    e->id = ray__id_next();
    ray__store_insert(st, e);
    t->returns[s->made] = (ray_ref_t){e->id, e->type};
  }
  return 0;
}

/* ---- hold_actors ---- */

/* Errors: RAY_ENOTFOUND (a handle already released). */
static int hold_actors(submit_t *s) {
  const ray__handle_ops_t *h = s->rt->actors.handle_ops;
  ray__task_t *t = s->t;
  for (; s->held < s->nargs; s->held++) {
    if (t->args[s->held].kind != RAY_ARG_ACTOR) continue;
    int rc = h->retain(s->rt, t->args[s->held].ref_id);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- watch_deps ---- */

/* Errors: as ray__store_watch (RAY_ENOTFOUND: a released ref). */
static int watch_deps(submit_t *s) {
  ray__task_t *t = s->t;
  for (; s->watched < s->nargs; s->watched++) {
    ray__task_arg_t *a = &t->args[s->watched];
    if (a->kind != RAY_ARG_REF) continue;
    atomic_fetch_add(&t->deps, 1);
    int status = 0;
    int r = ray__store_watch(&s->rt->store, a->ref_id, &a->watch, true, &status);
    if (r == 1) { /* already complete: count it down now */
      ray__task_dep_notify(&a->watch, status);
    } else if (r < 0) {
      atomic_fetch_sub(&t->deps, 1);
      return r;
    }
  }
  return 0;
}

/* ---- hand_off ---- */

/* Never fails: from here on the task is out. */
static void hand_off(submit_t *s, ray_ref_t *out_refs, ray__task_t **out_task) {
  ray__task_t *t = s->t;
  release_stored(s); /* the task holds its own */
  if (t->nreturns > 0) memcpy(out_refs, t->returns, t->nreturns * sizeof *out_refs);
  if (t->ops->counted) ray__counter_add(&s->rt->tasks_submitted, 1);
  if (out_task != NULL) *out_task = t;
  ray__hook(RAY__AT_SUBMIT_ADMITTED, NULL);
  /* In submission order; it may take the guard itself (task.h). */
  if (t->ops->submitted != NULL && t->ops->submitted(t)) return;
  ray__task_dep_resolved(t); /* the submission guard */
}

/* ---- Undo ---- */

/* Undo whatever the steps made, latest first. Nobody has seen the task:
 * the guard on `deps` kept it from running. */
static void undo(submit_t *s) {
  ray__runtime_t *rt = s->rt;
  ray__store_t *st = &rt->store;
  ray__task_t *t = s->t;
  if (t != NULL) {
    for (size_t i = 0; i < s->watched; i++) {
      ray__task_arg_t *a = &t->args[i];
      if (a->kind != RAY_ARG_REF) continue;
      ray__store_unwatch(st, a->ref_id, &a->watch);
      ray__store_release(st, a->ref_id);
    }
    for (size_t i = 0; i < s->held; i++)
      if (t->args[i].kind == RAY_ARG_ACTOR) rt->actors.handle_ops->release(rt, t->args[i].ref_id);
    for (uint32_t i = 0; i < s->made; i++) ray__store_release(st, t->returns[i].id);
    ray__pool_free(t);
  }
  release_stored(s);
  drop_encodings(s);
}

static int submit(ray__runtime_t *rt, ray__func_t *f, const ray__task_ops_t *ops, void *owner,
                  const ray_arg_t *args, size_t nargs, const ray_task_opts_t *opts, bool encoded_ok,
                  ray_ref_t *out_refs, ray__task_t **out_task) {
  ray_task_opts_t defaults;
  if (opts == NULL) {
    ray_task_opts_init(&defaults);
    opts = &defaults;
  }
  submit_t s;
  s.rt = rt;
  s.f = f;
  s.ops = ops;
  s.owner = owner;
  s.opts = opts;
  s.encoded_ok = encoded_ok;
  s.nargs = nargs;
  s.inline_bytes = 0;
  s.t = NULL;
  s.made = 0;
  s.held = 0;
  s.watched = 0;
  int rc = validate(&s, args);
  if (rc != 0) return rc; /* nothing made yet */
  if ((rc = store_values(&s)) != 0 || (rc = build(&s)) != 0) goto fail;
  drop_encodings(&s);
  if ((rc = make_results(&s)) != 0 || (rc = hold_actors(&s)) != 0 || (rc = watch_deps(&s)) != 0)
    goto fail;
  hand_off(&s, out_refs, out_task);
  return 0;
fail:
  undo(&s);
  return rc;
}

int ray__task_submit(ray__runtime_t *rt, ray__func_t *f, const ray__task_ops_t *ops, void *owner,
                     const ray_arg_t *args, size_t nargs, const ray_task_opts_t *opts,
                     ray_ref_t *out_refs, ray__task_t **out_task) {
  return submit(rt, f, ops, owner, args, nargs, opts, false, out_refs, out_task);
}

int ray__task_submit_ex(ray__runtime_t *rt, ray__func_t *f, const ray__task_ops_t *ops, void *owner,
                        const ray_arg_t *args, size_t nargs, const ray_task_opts_t *opts,
                        bool encoded_ok, ray_ref_t *out_refs, ray__task_t **out_task) {
  return submit(rt, f, ops, owner, args, nargs, opts, encoded_ok, out_refs, out_task);
}

int ray__task_submit_encoded(ray__runtime_t *rt, ray__func_t *f, const ray_arg_t *args,
                             size_t nargs, const ray_task_opts_t *opts, ray_ref_t *out_refs) {
  return submit(rt, f, &ray__task_fn_ops, NULL, args, nargs, opts, true, out_refs, NULL);
}

void ray_task_opts_init(ray_task_opts_t *opts) {
  if (opts == NULL) return;
  memset(opts, 0, sizeof *opts);
  opts->node = RAY_NODE_ANY;
}

int ray_task_submit(ray_function_t fn, const ray_arg_t *args, size_t nargs,
                    const ray_task_opts_t *opts, ray_ref_t *out_refs) {
  if (out_refs == NULL || (args == NULL && nargs > 0) || nargs > RAY_MAX_ARGS) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  ray__func_t *f = ray__function_get(&rt->funcs, fn);
  if (f == NULL) return RAY_ENOTFOUND;
  /* Placement: here, or another rank's (cluster.c's ops send it there). */
  const ray__task_ops_t *ops = &ray__task_fn_ops;
  int node = opts != NULL ? opts->node : RAY_NODE_ANY;
  if (node < RAY_NODE_ANY || node >= atomic_load_explicit(&rt->nranks, memory_order_acquire))
    return RAY_EINVAL;
  ray_task_opts_t placed;
  int (*place_any)(struct ray__runtime_s *) =
      atomic_load_explicit(&rt->place_any, memory_order_relaxed);
  if (node == RAY_NODE_ANY && place_any != NULL) { /* cluster mode: the runtime chooses */
    if (opts != NULL)
      placed = *opts;
    else
      ray_task_opts_init(&placed);
    placed.node = node = place_any(rt);
    opts = &placed;
  }
  if (node != RAY_NODE_ANY && node != atomic_load_explicit(&rt->rank, memory_order_relaxed))
    ops = atomic_load_explicit(&rt->remote_fn_ops, memory_order_relaxed); /* set before nranks */
  return ray__task_submit(rt, f, ops, NULL, args, nargs, opts, out_refs, NULL);
}
