/* object.c - the public object API: put, get, wait, refs, on_ready, and the
 * produce/fail hooks the tests use (testing.h; tasks and actors complete
 * their results through the store directly, task.c).
 *
 * Fast paths take one shard lock (or one per shard touched, for batches).
 * A put reserves memory first and may wait for it (memory.c); a get of a
 * spilled object reads it back first. Only a caller that must wait for an
 * object goes to wait.c, bracketed by ray__wait_blocking_enter/leave so shutdown
 * knows when it has left. on_ready callbacks run on the loop thread. */
#include <string.h>

#include "codec.h"
#include "error_internal.h"
#include "internal.h"
#include "testing.h"
#include "wait.h"

#define RT_OR_RETURN(rt) RAY__API_ENTER(rt)

/* The most elements an array argument can hold: a larger count would make
 * an array of ray_buf_t (the largest element) exceed PTRDIFF_MAX bytes, so
 * it can only be a mistake, and `n * size` for it could wrap. Checked before
 * any element is read. */
#define MAX_COUNT ((size_t)PTRDIFF_MAX / sizeof(ray_buf_t))

/* ---- Put ---- */

static int put_entry(ray__runtime_t *rt, ray__entry_t *e, ray_ref_t *out) {
  e->id = ray__id_next();
  ray__store_insert(&rt->store, e);
  out->id = e->id;
  out->type = e->type;
  return 0;
}

int ray_put_typed(const void *data, size_t size, uint32_t type, ray_ref_t *out) {
  if (out == NULL || (data == NULL && size > 0) || type == 0) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  ray__entry_t *e = ray__entry_new(&rt->store, size, type, RAY__READY);
  if (e == NULL) return ray__entry_error();
  if (size > 0) memcpy(e->data, data, size);
  return put_entry(rt, e, out);
}

int ray_put(const void *data, size_t size, ray_ref_t *out) {
  return ray_put_typed(data, size, RAY_TYPE_BYTES, out);
}

/* Hand a heap block to the store (no copy). On failure the caller keeps it. */
static int put_owned_typed(ray__runtime_t *rt, void *data, size_t size, ray_free_fn free_fn,
                           void *arg, uint32_t type, ray_ref_t *out) {
  ray__entry_t *e = ray__entry_new_owned(&rt->store, data, size, free_fn, arg, type, true);
  if (e == NULL) return ray__entry_error();
  return put_entry(rt, e, out);
}

int ray_put_owned(void *data, size_t size, ray_free_fn free_fn, void *arg, ray_ref_t *out) {
  if (out == NULL || (data == NULL && size > 0)) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  return put_owned_typed(rt, data, size, free_fn, arg, RAY_TYPE_BYTES, out);
}

int ray_put_batch(const void *const *data, const size_t *sizes, size_t n, ray_ref_t *out) {
  if (n == 0) return 0;
  if (data == NULL || sizes == NULL || out == NULL || n > MAX_COUNT) return RAY_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (data[i] == NULL && sizes[i] > 0) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  ray__entry_t **es = ray__malloc(n * sizeof *es);
  if (es == NULL) return RAY_ENOMEM;
  size_t made = 0;
  int rc = 0;
  for (; made < n; made++) {
    es[made] = ray__entry_new(&rt->store, sizes[made], RAY_TYPE_BYTES, RAY__READY);
    if (es[made] == NULL) {
      rc = ray__entry_error();
      break;
    }
    if (sizes[made] > 0) memcpy(es[made]->data, data[made], sizes[made]);
    es[made]->id = ray__id_next();
  }
  if (rc == 0) rc = ray__store_insert_batch(&rt->store, es, n);
  if (rc == 0) {
    for (size_t i = 0; i < n; i++) out[i] = (ray_ref_t){es[i]->id, es[i]->type};
  } else {
    for (size_t i = 0; i < made; i++) ray__mem_entry_free(es[i]);
  }
  ray__free(es);
  return rc;
}

/* The free_fn of an encoder's heap block handed to the store. */
static void free_payload(void *data, void *arg) {
  (void)arg;
  ray__free(data);
}

/* Put an encoded value that contains `refs` (retained here, for the object,
 * until it is freed): one still in the encoder's small buffer, or within the
 * inline threshold, is copied; a larger heap block is handed over without a
 * copy. Destroys `b`. */
static int put_encoded(ray__mpbuf_t *b, uint32_t type, const ray_ref_t *refs, size_t nrefs,
                       ray_ref_t *out) {
  int rc = 0;
  RAY__API_GUARD(rt);
  uint64_t *inner = NULL;
  ray__entry_t *e = NULL;
  if (rt == NULL) {
    rc = RAY_ENOTINIT;
    goto out;
  }
  if (b->oom) {
    rc = RAY_ENOMEM;
    goto out;
  }
  ray__store_t *st = &rt->store;
  uint32_t nobj, nact;
  if ((rc = ray__store_hold_inner(st, refs, nrefs, &inner, &nobj, &nact)) != 0) goto out;
  if (b->data == b->small || b->size <= st->inline_threshold) {
    if ((e = ray__entry_new(st, b->size, type, RAY__READY)) != NULL)
      memcpy(e->data, b->data, b->size);
  } else if ((e = ray__entry_new_owned(st, b->data, b->size, free_payload, NULL, type, true)) !=
             NULL) {
    b->data = b->small; /* handed over */
  }
  if (e == NULL) {
    rc = ray__entry_error();
    ray__store_unhold_inner(st, inner, nobj, nact);
    inner = NULL;
    goto out;
  }
  e->inner = inner;
  e->ninner = nobj;
  e->nactors = nact;
  inner = NULL;
  put_entry(rt, e, out);
out:
  ray__free(inner);
  ray__mpbuf_destroy(b);
  return rc;
}

int ray_put_i64(int64_t value, ray_ref_t *out) {
  if (out == NULL) return RAY_EINVAL;
  ray__mpbuf_t b;
  ray__encode_i64(&b, value);
  return put_encoded(&b, RAY_TYPE_I64, NULL, 0, out);
}

int ray_put_f64(double value, ray_ref_t *out) {
  if (out == NULL) return RAY_EINVAL;
  ray__mpbuf_t b;
  ray__encode_f64(&b, value);
  return put_encoded(&b, RAY_TYPE_F64, NULL, 0, out);
}

int ray_put_str(const char *s, ray_ref_t *out) {
  if (out == NULL || s == NULL) return RAY_EINVAL;
  if (!ray_is_initialized()) return RAY_ENOTINIT; /* early; put_encoded enters */
  ray__mpbuf_t b;
  ray__encode_str(&b, s);
  return put_encoded(&b, RAY_TYPE_STR, NULL, 0, out);
}

int ray_put_msgpack(const msgpack_object *obj, ray_ref_t *out) {
  if (out == NULL || obj == NULL) return RAY_EINVAL;
  if (!ray_is_initialized()) return RAY_ENOTINIT; /* early; put_encoded enters */
  ray_ref_t *refs;
  size_t nrefs;
  int rc = ray__mp_collect_refs(obj, &refs, &nrefs);
  if (rc != 0) return rc;
  ray__mpbuf_t b;
  msgpack_packer pk;
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_object(&pk, *obj);
  rc = put_encoded(&b, RAY_TYPE_MSGPACK, refs, nrefs, out);
  ray__free(refs);
  return rc;
}

int ray_put_msgpack_bytes(const void *data, size_t size, ray_ref_t *out) {
  if (out == NULL || (data == NULL && size > 0)) return RAY_EINVAL;
  if (!ray_is_initialized()) return RAY_ENOTINIT; /* early; ray_put_msgpack enters */
  size_t held;
  if (ray__mp_scan(data, size, &held) != 0) return RAY_EDECODE;
  if (held == 0) return ray_put_typed(data, size, RAY_TYPE_MSGPACK, out); /* nothing to hold */
  msgpack_unpacked u;
  int rc = ray__mp_decode(data, size, &u);
  if (rc != 0) return rc;
  rc = ray_put_msgpack(&u.data, out);
  msgpack_unpacked_destroy(&u);
  return rc;
}

/* ---- Get ---- */

static const ray_buf_t zero_buf;

int ray_get(ray_ref_t ref, int64_t timeout_ms, ray_buf_t *out) {
  if (out == NULL) return RAY_EINVAL;
  *out = zero_buf;
  RT_OR_RETURN(rt);
  if (ref.id == 0) return RAY_ENOTFOUND;
  uint64_t deadline = 0;
  int rc = ray__store_pin(&rt->store, ref.id, out);
  if (rc == 1 || rc == 2) deadline = ray__sched_deadline(timeout_ms);
  if (rc == 2) /* spilled, or an evicted copy of another rank's */
    rc = ray__store_pin_ready_until(&rt->store, ref.id, out, deadline);
  if (rc != 1) return rc;
  if (timeout_ms == 0) return RAY_ETIMEDOUT;
  if ((rc = ray__wait_blocking_enter(rt)) != 0) return rc;
  /* A blocked get holds what it waits on: a concurrent release of the
   * caller's ref cannot free it before it is produced and pinned. */
  rc = ray__store_retain(&rt->store, ref.id);
  if (rc == 0) {
    rc = ray__wait_one(rt, ref.id, timeout_ms);
    if (rc == 0) rc = ray__store_pin_ready_until(&rt->store, ref.id, out, deadline);
    ray__store_release(&rt->store, ref.id);
  }
  ray__wait_blocking_leave();
  return rc;
}

void ray_buf_release(ray_buf_t *buf) {
  if (buf == NULL || buf->priv_ == NULL) return;
  /* A view outlives its runtime: without one, its entry is detached from
   * the freed store and the store is not touched (the guard keeps a racing
   * ray_shutdown from freeing it while we look). */
  RAY__API_GUARD(rt);
  ray__entry_t *e = ray__view_close(buf); /* NULL: released already (a copy) */
  if (e != NULL) ray__mem_entry_unpin_view(e, rt != NULL);
}

int ray_get_batch(const ray_ref_t *refs, size_t n, int64_t timeout_ms, ray_buf_t *out) {
  if (n == 0) return 0;
  if (refs == NULL || out == NULL || n > MAX_COUNT) return RAY_EINVAL;
  for (size_t i = 0; i < n; i++) out[i] = zero_buf;
  RT_OR_RETURN(rt);
  for (size_t i = 0; i < n; i++)
    if (refs[i].id == 0) return RAY_ENOTFOUND;
  ray__store_t *st = &rt->store;
  ray__groups_t g;
  int rc = ray__groups_make(st, refs, n, &g);
  if (rc != 0) return rc;
  int *codes = ray__malloc(n * sizeof *codes);
  int8_t *states = ray__malloc(n * sizeof *states);
  if (codes == NULL || states == NULL) {
    rc = RAY_ENOMEM;
    goto out;
  }
  /* One pass pins what is ready; only when something is missing, wait. */
  bool blocked = false;
  uint64_t deadline = 0; /* for restores, set at the first */
  for (int pass = 0;; pass++) {
    size_t pinned = ray__store_pin_batch(st, refs, &g, states, codes, out);
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = codes[i];
    if (rc != 0 || pinned == n) break;
    /* Spilled ones: restore, then pin them in the next pass. Evicted
     * copies of other ranks' objects are all asked for first (a restore
     * with deadline 0 asks and returns RAY_ETIMEDOUT), then waited for. */
    bool restored = false;
    for (int round = deadline == 0 ? 0 : 1; round < 2 && rc == 0; round++) {
      if (round == 1 && deadline == 0) deadline = ray__sched_deadline(timeout_ms);
      for (size_t i = 0; i < n && rc == 0; i++) {
        if (states[i] == RAY__READY && out[i].priv_ == NULL) {
          rc = ray__spill_restore(st, refs[i].id, round == 0 ? 0 : deadline);
          if (round == 0 && rc == RAY_ETIMEDOUT) rc = 0;
          restored = true;
        }
      }
    }
    if (rc != 0) break;
    if (restored) {
      pass--; /* not a wait: pass again */
      continue;
    }
    if (pass > 0 || timeout_ms == 0) {
      rc = RAY_ETIMEDOUT;
      break;
    }
    if (!blocked) {
      if ((rc = ray__wait_blocking_enter(rt)) != 0) break;
      /* Hold them all until pinned: a concurrent release cannot free one. */
      if ((rc = ray__store_retain_batch(st, refs, n)) != 0) {
        ray__wait_blocking_leave();
        break;
      }
      blocked = true;
    }
    rc = ray__wait_many(rt, refs, n, &g, states, n, true, timeout_ms);
    if (rc != 0 && rc != RAY_ETIMEDOUT) break;
    /* Second pass: pin the rest, report a failure, or time out. */
  }
  if (rc != 0)
    for (size_t i = 0; i < n; i++) ray_buf_release(&out[i]);
  if (blocked) {
    ray__store_release_batch(st, refs, n);
    ray__wait_blocking_leave();
  }
out:
  ray__free(codes);
  ray__free(states);
  ray__groups_free(&g);
  return rc;
}

/* Pin a ready object after checking its type tag. */
static int get_typed(ray_ref_t ref, int64_t timeout_ms, uint32_t type, ray_buf_t *buf) {
  if (ref.id != 0 && ref.type != 0 && ref.type != type) return RAY_ETYPE;
  int rc = ray_get(ref, timeout_ms, buf);
  if (rc == 0 && buf->type != type) {
    ray_buf_release(buf);
    rc = RAY_ETYPE;
  }
  return rc;
}

/* A scalar's encoding is at most 9 bytes (msgpack int64, float64). */
enum { SCALAR_MAX = 16 };

/* The fast path of the scalar getters: copy a ready, small payload under
 * the shard lock, with no view to open and close. Returns 0 (copied), 1
 * (not here: pending, spilled, larger, or a failed object whose code is 1
 * or 2; the caller takes the full path, which sorts these out), or an
 * error to return as it is. */
static int copy_scalar(ray_ref_t ref, uint32_t type, unsigned char *buf, size_t *size) {
  if (ref.id == 0) return 1; /* the full path reports it */
  RT_OR_RETURN(rt);
  uint32_t got = 0;
  int rc = ray__store_copy_small(&rt->store, ref.id, buf, SCALAR_MAX, size, &got);
  if (rc == 1 || rc == 2) return 1;
  if (rc == 0 && got != type) return RAY_ETYPE;
  return rc;
}

/* ray_get_i64 and ray_get_f64: the fast path, else pin and decode. */
static int get_scalar(ray_ref_t ref, int64_t timeout_ms, uint32_t type,
                      int (*decode)(const void *data, size_t size, void *out), void *out) {
  if (ref.id != 0 && ref.type != 0 && ref.type != type) return RAY_ETYPE;
  unsigned char small[SCALAR_MAX];
  size_t size = 0;
  int rc = copy_scalar(ref, type, small, &size);
  if (rc == 0) return decode(small, size, out);
  if (rc != 1) return rc;
  ray_buf_t buf;
  if ((rc = get_typed(ref, timeout_ms, type, &buf)) != 0) return rc;
  rc = decode(buf.data, buf.size, out);
  ray_buf_release(&buf);
  return rc;
}

static int decode_i64(const void *data, size_t size, void *out) {
  return ray__decode_i64(data, size, out);
}

static int decode_f64(const void *data, size_t size, void *out) {
  return ray__decode_f64(data, size, out);
}

int ray_get_i64(ray_ref_t ref, int64_t timeout_ms, int64_t *out) {
  if (out == NULL) return RAY_EINVAL;
  return get_scalar(ref, timeout_ms, RAY_TYPE_I64, decode_i64, out);
}

int ray_get_f64(ray_ref_t ref, int64_t timeout_ms, double *out) {
  if (out == NULL) return RAY_EINVAL;
  return get_scalar(ref, timeout_ms, RAY_TYPE_F64, decode_f64, out);
}

int ray_get_str(ray_ref_t ref, int64_t timeout_ms, char **out, size_t *len) {
  if (out == NULL) return RAY_EINVAL;
  *out = NULL;
  ray_buf_t buf;
  int rc = get_typed(ref, timeout_ms, RAY_TYPE_STR, &buf);
  if (rc != 0) return rc;
  msgpack_unpacked u;
  rc = ray__mp_decode(buf.data, buf.size, &u);
  if (rc == 0 && u.data.type != MSGPACK_OBJECT_STR) rc = RAY_EDECODE;
  if (rc == 0) {
    size_t n = u.data.via.str.size;
    char *s = ray__malloc(n + 1);
    if (s == NULL) {
      rc = RAY_ENOMEM;
    } else {
      if (n > 0) memcpy(s, u.data.via.str.ptr, n); /* ptr is NULL for "" */
      s[n] = '\0';
      *out = s;
      if (len != NULL) *len = n;
    }
  }
  msgpack_unpacked_destroy(&u);
  ray_buf_release(&buf);
  return rc;
}

int ray_get_msgpack(ray_ref_t ref, int64_t timeout_ms, ray_msgpack_t *out) {
  if (out == NULL) return RAY_EINVAL;
  memset(out, 0, sizeof *out);
  RAY__API_ENTER(rt);
  ray_buf_t buf;
  int rc = get_typed(ref, timeout_ms, RAY_TYPE_MSGPACK, &buf);
  if (rc != 0) return rc;
  msgpack_unpacked u;
  if ((rc = ray__mp_decode(buf.data, buf.size, &u)) != 0) {
    ray_buf_release(&buf);
    return rc;
  }
  out->obj = u.data;
  out->zone_ = u.zone; /* ours now: freed by ray_msgpack_release */
  out->buf_ = buf;
  /* The refs inside: one reference each for the caller. The object holds
   * its own on them, so they are all known. */
  if ((rc = ray__mp_collect_refs(&out->obj, &out->refs, &out->nrefs)) == 0 && out->nrefs > 0) {
    size_t n = 0; /* the refs only: handles are held by the object (rustyray/actor.h) */
    for (size_t i = 0; i < out->nrefs; i++)
      if (out->refs[i].type != RAY_TYPE_ACTOR) out->refs[n++] = out->refs[i];
    out->nrefs = n;
    rc = ray__store_retain_batch(&rt->store, out->refs, out->nrefs);
  }
  if (rc != 0) {
    ray_msgpack_release(out);
    return rc;
  }
  return 0;
}

void ray_msgpack_release(ray_msgpack_t *m) {
  if (m == NULL) return;
  /* The view decides: a value released already, or a copy of one released
   * through another copy, owns nothing any more (its zone and refs array
   * went with the first release). */
  ray__entry_t *e = ray__view_close(&m->buf_);
  if (e != NULL) {
    ray__free(m->refs);
    if (m->zone_ != NULL) msgpack_zone_free(m->zone_);
    ray__mem_entry_unpin(e);
  }
  memset(m, 0, sizeof *m);
}

int ray_get_error(ray_ref_t ref, ray_error_t **out) {
  if (out == NULL) return RAY_EINVAL;
  *out = NULL;
  RT_OR_RETURN(rt);
  if (ref.id == 0) return RAY_ENOTFOUND;
  /* Follow the chain across objects: a dependency failure refers to the
   * upstream failed object instead of copying its error. */
  ray_error_t *head = NULL, **tail = &head;
  uint64_t id = ref.id;
  int rc = 0;
  for (bool first = true; id != 0 && rc == 0; first = false) {
    ray_buf_t buf = zero_buf;
    int state;
    rc = ray__store_pin_any(&rt->store, id, &buf, &state);
    if (rc != 0) break;
    if (state != RAY__FAILED) {
      /* The first: ready (no error) or pending; further ones are always failed. */
      if (state == RAY__PENDING) rc = RAY_ENOTREADY;
      if (state != RAY__PENDING) ray_buf_release(&buf);
      if (!first && rc == 0) rc = RAY_EDECODE;
      break;
    }
    ray__entry_t *e = ray__view_entry(&buf);
    ray_error_t *part = NULL;
    uint64_t next = 0;
    if (buf.size == 0) /* failed in place (shutdown): only a code */
      rc = ray_error_new(&part, e->err_code, NULL, NULL);
    else
      rc = ray__decode_error(buf.data, buf.size, &part, &next);
    ray_buf_release(&buf);
    if (rc != 0) break;
    *tail = part;
    while (*tail != NULL) tail = &(*tail)->cause;
    id = next;
  }
  if (rc != 0) {
    ray_error_free(head);
    return rc;
  }
  *out = head;
  return 0;
}

/* ---- Wait ---- */

int ray_wait(const ray_ref_t *refs, size_t n, size_t num_returns, int64_t timeout_ms, bool *ready) {
  if (refs == NULL || ready == NULL || n == 0 || n > MAX_COUNT || num_returns == 0 ||
      num_returns > n)
    return RAY_EINVAL;
  memset(ready, 0, n * sizeof *ready);
  RT_OR_RETURN(rt);
  for (size_t i = 0; i < n; i++)
    if (refs[i].id == 0) return RAY_ENOTFOUND;
  ray__groups_t g;
  int rc = ray__groups_make(&rt->store, refs, n, &g);
  if (rc != 0) return rc;
  int8_t *states = ray__malloc(n * sizeof *states);
  if (states == NULL) {
    ray__groups_free(&g);
    return RAY_ENOMEM;
  }
  ray__store_states(&rt->store, refs, &g, states);
  size_t complete = 0;
  for (size_t i = 0; i < n; i++) complete += states[i] > 0; /* READY or FAILED */
  if (complete >= num_returns || timeout_ms == 0) {
    rc = ray__wait_many(rt, refs, n, &g, states, num_returns, false, 0); /* no wait */
  } else if ((rc = ray__wait_blocking_enter(rt)) == 0) {
    rc = ray__wait_many(rt, refs, n, &g, states, num_returns, false, timeout_ms);
    ray__wait_blocking_leave();
  }
  if (rc == 0 || rc == RAY_ETIMEDOUT) {
    size_t flagged = 0;
    for (size_t i = 0; i < n && flagged < num_returns; i++) {
      if (states[i] != RAY__PENDING) {
        ready[i] = true;
        flagged++;
      }
    }
    rc = (int)flagged;
  }
  ray__free(states);
  ray__groups_free(&g);
  return rc;
}

/* ---- References ---- */

int ray_ref_retain(ray_ref_t ref) {
  RT_OR_RETURN(rt);
  if (ref.id == 0) return RAY_ENOTFOUND;
  return ray__store_retain(&rt->store, ref.id);
}

int ray_ref_release(ray_ref_t ref) {
  RT_OR_RETURN(rt);
  if (ref.id == 0) return RAY_ENOTFOUND;
  return ray__store_release(&rt->store, ref.id);
}

int ray_ref_retain_batch(const ray_ref_t *refs, size_t n) {
  if (n == 0) return 0;
  if (refs == NULL || n > MAX_COUNT) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  return ray__store_retain_batch(&rt->store, refs, n);
}

int ray_ref_release_batch(const ray_ref_t *refs, size_t n) {
  if (n == 0) return 0;
  if (refs == NULL || n > MAX_COUNT) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  return ray__store_release_batch(&rt->store, refs, n);
}

/* ---- on_ready ---- */

typedef struct on_ready_s {
  ray__watch_t watch;
  ray__loop_item_t item;
  ray__runtime_t *rt;
  ray_ref_t ref;
  ray_ready_cb cb;
  void *arg;
  int status;
} on_ready_t;

static void on_ready_run(ray__loop_item_t *item) {
  on_ready_t *n = (on_ready_t *)((char *)item - offsetof(on_ready_t, item));
  n->cb(n->ref, n->status, n->arg);
  ray__store_release(&n->rt->store, n->ref.id); /* the registration's reference */
  ray__free(n);
}

/* Runs under the entry's shard lock: only queues the callback. */
static void on_ready_notify(ray__watch_t *watch, int status) {
  on_ready_t *n = (on_ready_t *)watch;
  n->status = status;
  ray__loop_post(&n->rt->loop, &n->item);
}

int ray_ref_on_ready(ray_ref_t ref, ray_ready_cb cb, void *arg) {
  if (cb == NULL) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  if (ref.id == 0) return RAY_ENOTFOUND;
  on_ready_t *n = ray__malloc(sizeof *n);
  if (n == NULL) return RAY_ENOMEM;
  *n = (on_ready_t){.watch = {.fn = on_ready_notify},
                    .item = {.run = on_ready_run},
                    .rt = rt,
                    .ref = ref,
                    .cb = cb,
                    .arg = arg};
  int status;
  int rc = ray__store_watch(&rt->store, ref.id, &n->watch, true, &status);
  if (rc == 1) {
    on_ready_notify(&n->watch, status);
    rc = 0;
  } else if (rc != 0) {
    ray__free(n);
  }
  return rc;
}

/* ---- Producing objects by hand (testing.h: tests only) ---- */

int ray__object_create_pending(uint32_t type, ray_ref_t *out) {
  if (out == NULL || type == 0) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  ray__entry_t *e = ray__entry_new(&rt->store, 0, type, RAY__PENDING);
  if (e == NULL) return ray__entry_error();
  return put_entry(rt, e, out);
}

int ray__object_fulfil(ray_ref_t ref, const void *data, size_t size) {
  if (data == NULL && size > 0) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  if (ref.id == 0) return RAY_ENOTFOUND;
  ray__entry_t *e = ray__entry_new(&rt->store, size, 0, RAY__READY);
  if (e == NULL) return ray__entry_error();
  if (size > 0) memcpy(e->data, data, size);
  e->id = ref.id;
  return ray__store_complete(&rt->store, e);
}

int ray__object_fail(ray_ref_t ref, const ray_error_t *err) {
  if (err == NULL) return RAY_EINVAL;
  RT_OR_RETURN(rt);
  if (ref.id == 0) return RAY_ENOTFOUND;
  /* Not must_land: a test that runs out of memory here sees it pending. */
  return ray__store_fail(&rt->store, ref.id, err->code, err, 0, false);
}
