/* task_ctx.c - the context a task's body runs with: its arguments
 * (ray_ctx_arg_*), the results it sets (ray_return_*, ray_fail), and what
 * becomes of those results once an attempt ends (publishing them, or
 * dropping them for a retry or a failure).
 *
 * A context lives on the running worker's stack for one run (task.c) and is
 * used by the body on that thread only, so nothing here locks. A result
 * slot holds a ready entry not yet in the table (`slots`), or a reference
 * on the object a ray_return_ref shares (`alias`); setting a slot again
 * drops what it held. Publishing completes each pending result with its
 * slot; an aliased result completes later, on the loop thread, when its
 * source is ready (a watch: nothing polls).
 *
 * Locks: alias_notify runs under the source's shard lock and takes only the
 * loop queue's inside. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "error_internal.h"
#include "internal.h"

/* ---- Results of an attempt ---- */

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
    (void)ray_error_new(&err, code, NULL, "returned object %llu failed",
                        (unsigned long long)a->src);
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

/* Empty slot i: drop what it holds. */
static void slot_clear(ray_task_ctx_t *ctx, size_t i) {
  ray__store_t *st = &ctx->t->rt->store;
  if (ctx->slots[i] != NULL) ray__store_drop(st, ctx->slots[i]);
  if (ctx->alias[i] != 0) ray__store_release(st, ctx->alias[i]);
  if (ctx->small & (1u << i)) ray__mem_release(st, ctx->small_size[i]);
  ctx->slots[i] = NULL;
  ctx->alias[i] = 0;
  ctx->small &= ~(1u << i);
}

void ray__task_ctx_discard(ray_task_ctx_t *ctx) {
  for (uint32_t i = 0; i < ctx->t->nreturns; i++) slot_clear(ctx, i);
}

void ray__task_ctx_publish(ray_task_ctx_t *ctx) {
  ray__task_t *t = ctx->t;
  ray__store_t *st = &t->rt->store;
  for (uint32_t i = 0; i < t->nreturns; i++) {
    if (ctx->small & (1u << i)) {
      ray__store_complete_small(st, t->returns[i].id, ctx->small_data[i], ctx->small_size[i]);
      ctx->small &= ~(1u << i);
    } else if (ctx->slots[i] != NULL) {
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

int ray_ctx_arg_raw(ray_task_ctx_t *ctx, size_t i, const void **data, size_t *size,
                    uint32_t *type) {
  if (data == NULL || size == NULL) return RAY_EINVAL;
  ray__task_arg_t *a = arg_at(ctx, i);
  if (a == NULL) return RAY_EINVAL;
  if (a->kind == RAY_ARG_ACTOR) return RAY_ETYPE;
  *data = a->data;
  *size = a->size;
  if (type != NULL) *type = a->type;
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
  slot_clear(ctx, slot);
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

/* A copy of the result for `slot`. A small one (and `small_ok`: nothing
 * but bytes to store) stays in the context, its bytes reserved now, and
 * completes the pending entry in place at publish time: no entry made here
 * and freed there. */
static int return_copy(ray_task_ctx_t *ctx, size_t slot, const void *data, size_t size,
                       bool small_ok) {
  ray__store_t *st = &ctx->t->rt->store;
  if (small_ok && size <= RAY__SMALL_RESULT) {
    int rc = ray__mem_reserve(st, size);
    if (rc != 0) return rc;
    slot_clear(ctx, slot);
    if (size > 0) memcpy(ctx->small_data[slot], data, size);
    ctx->small_size[slot] = (uint8_t)size;
    ctx->small |= 1u << slot;
    return 0;
  }
  ray__entry_t *e = ray__entry_new(st, size, ctx->t->fn->types[slot], RAY__READY);
  if (e == NULL) return ray__entry_error();
  if (size > 0) memcpy(e->data, data, size);
  return set_slot(ctx, slot, e);
}

static int return_encoded(ray_task_ctx_t *ctx, size_t slot, ray__mpbuf_t *b, bool small_ok) {
  int rc = b->oom ? RAY_ENOMEM : return_copy(ctx, slot, b->data, b->size, small_ok);
  ray__mpbuf_destroy(b);
  return rc;
}

int ray_return_i64(ray_task_ctx_t *ctx, size_t slot, int64_t v) {
  int rc = slot_check(ctx, slot, RAY_TYPE_I64);
  if (rc != 0) return rc;
  ray__mpbuf_t b;
  ray__encode_i64(&b, v);
  return return_encoded(ctx, slot, &b, true);
}

int ray_return_f64(ray_task_ctx_t *ctx, size_t slot, double v) {
  int rc = slot_check(ctx, slot, RAY_TYPE_F64);
  if (rc != 0) return rc;
  ray__mpbuf_t b;
  ray__encode_f64(&b, v);
  return return_encoded(ctx, slot, &b, true);
}

int ray_return_str(ray_task_ctx_t *ctx, size_t slot, const char *s) {
  if (s == NULL) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, RAY_TYPE_STR);
  if (rc != 0) return rc;
  ray__mpbuf_t b;
  ray__encode_str(&b, s);
  return return_encoded(ctx, slot, &b, true);
}

int ray_return_msgpack_bytes(ray_task_ctx_t *ctx, size_t slot, const void *data, size_t size) {
  if (data == NULL && size > 0) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, RAY_TYPE_MSGPACK);
  if (rc != 0) return rc;
  size_t held;
  if (ray__mp_scan(data, size, &held) != 0) return RAY_EDECODE;
  if (held == 0) return return_copy(ctx, slot, data, size, true); /* nothing to hold */
  msgpack_unpacked u;
  if ((rc = ray__mp_decode(data, size, &u)) != 0) return rc;
  rc = ray_return_msgpack(ctx, slot, &u.data);
  msgpack_unpacked_destroy(&u);
  return rc;
}

int ray_return_msgpack(ray_task_ctx_t *ctx, size_t slot, const msgpack_object *obj) {
  if (obj == NULL) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, RAY_TYPE_MSGPACK);
  if (rc != 0) return rc;
  ray_ref_t *refs;
  size_t nrefs;
  if ((rc = ray__mp_collect_refs(obj, &refs, &nrefs)) != 0) return rc;
  ray__store_t *st = &ctx->t->rt->store;
  uint64_t *inner = NULL; /* the result holds the refs and handles inside it */
  uint32_t nobj, nact;
  rc = ray__store_hold_inner(st, refs, nrefs, &inner, &nobj, &nact);
  ray__free(refs);
  if (rc != 0) return rc;
  ray__mpbuf_t b;
  msgpack_packer pk;
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_object(&pk, *obj);
  rc = return_encoded(ctx, slot, &b, nrefs == 0);
  if (rc == 0 && nrefs > 0) {
    ctx->slots[slot]->inner = inner;
    ctx->slots[slot]->ninner = nobj;
    ctx->slots[slot]->nactors = nact;
  } else {
    ray__store_unhold_inner(st, inner, nobj, nact);
  }
  return rc;
}

int ray_return_bytes(ray_task_ctx_t *ctx, size_t slot, const void *data, size_t size) {
  if (data == NULL && size > 0) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, 0);
  if (rc != 0) return rc;
  return return_copy(ctx, slot, data, size, true);
}

int ray_return_owned(ray_task_ctx_t *ctx, size_t slot, void *data, size_t size, ray_free_fn free_fn,
                     void *arg) {
  if (data == NULL && size > 0) return RAY_EINVAL;
  int rc = slot_check(ctx, slot, 0);
  if (rc != 0) return rc;
  ray__entry_t *e = ray__entry_new_owned(&ctx->t->rt->store, data, size, free_fn, arg,
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
  if (!ray__error_is_code(code)) code = RAY_ETASK; /* as for a function returning it */
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
