/* fuzz_msgpack_refs.c - the decoding of msgpack values that may carry refs
 * (ext type RAY_MSGPACK_EXT_REF = 82): ray__mp_decode (what ray_get_msgpack
 * and the typed gets run on stored bytes) and ray__mp_collect_refs (the
 * inner-ref scan of ray_put_msgpack, ray_get_msgpack, msgpack task arguments
 * and ray_return_msgpack), then a trip through the store.
 *
 * What it checks, beyond "no crash, no UB, no leak":
 *   - a refused input is RAY_EDECODE (never RAY_ENOMEM: msgpack-c must not
 *     be asked for memory out of proportion to the input), and the same
 *     bytes stored opaquely (ray_put_typed, RAY_TYPE_MSGPACK) are refused
 *     by ray_get_msgpack the same way; ray__decode_i64/f64 accept exactly
 *     an integer fitting int64 / a float;
 *   - the scan finds the same refs, in document order, as an independent
 *     recursive walk here, and refuses (RAY_EDECODE, nothing handed out) a
 *     ref ext that is not 12 bytes or has id 0;
 *   - through the store: every ref id in the input is rewritten (id mod 4)
 *     to one of three live objects (bytes, an int, a msgpack value that
 *     itself holds a ref) or to a released one. ray_put_msgpack then fails
 *     with RAY_ENOTFOUND when a ref is dead, and otherwise ray_get_msgpack
 *     gives back the same value and the same refs; the same for the bytes
 *     stored opaquely; the value wrapped in arrays to the deepest nesting
 *     the decoder reads back still makes the trip, and one level more is
 *     refused at put (RAY_EINVAL) instead of stored unreadable;
 *   - after releasing everything the store is empty and the library holds
 *     no allocation the input made (nothing retained twice or dropped early).
 * The runtime starts once, at the first input (one worker, spilling off),
 * and stops at exit. */
#define _POSIX_C_SOURCE 200809L

#include <stdbool.h>
#include <string.h>

#include "alloc.h"
#include "codec.h"
#include "fuzz.h"
#include "rustyray.h"

/* ---- the independent ref walk (recursion is fine: msgpack-c's unpacker
 * refuses nesting deeper than its 32-level stack) ---- */

typedef struct walk_s {
  ray_ref_t *refs; /* refs and actor handles (type RAY_TYPE_ACTOR), in document order */
  size_t n, cap;
  const msgpack_object **exts; /* where each well-formed ref or actor ext is */
  size_t nactors;              /* the actor handles among them */
  bool malformed;
  size_t depth; /* the most containers nested */
} walk_t;

static uint64_t be(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = (v << 8) | p[i];
  return v;
}

static void walk(const msgpack_object *o, size_t nesting, walk_t *w) {
  if (o->type == MSGPACK_OBJECT_ARRAY || o->type == MSGPACK_OBJECT_MAP)
    if (nesting + 1 > w->depth) w->depth = nesting + 1;
  switch (o->type) {
    case MSGPACK_OBJECT_ARRAY:
      for (uint32_t i = 0; i < o->via.array.size; i++) walk(&o->via.array.ptr[i], nesting + 1, w);
      break;
    case MSGPACK_OBJECT_MAP:
      for (uint32_t i = 0; i < o->via.map.size; i++) {
        walk(&o->via.map.ptr[i].key, nesting + 1, w);
        walk(&o->via.map.ptr[i].val, nesting + 1, w);
      }
      break;
    case MSGPACK_OBJECT_EXT: {
      bool ref = o->via.ext.type == RAY_MSGPACK_EXT_REF;
      bool actor = o->via.ext.type == RAY_MSGPACK_EXT_ACTOR;
      if (!ref && !actor) break;
      const unsigned char *body = (const unsigned char *)o->via.ext.ptr;
      /* A ref names an object (never of the handles' type); a handle, an actor. */
      if (o->via.ext.size != (ref ? 12u : 8u) || be(body, 8) == 0 ||
          (ref && be(body + 8, 4) == RAY_TYPE_ACTOR)) {
        w->malformed = true;
        break;
      }
      if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 8;
        w->refs = realloc(w->refs, w->cap * sizeof *w->refs);
        w->exts = realloc(w->exts, w->cap * sizeof *w->exts);
        FUZZ_CHECK(w->refs != NULL && w->exts != NULL);
      }
      w->exts[w->n] = o;
      w->refs[w->n++] = (ray_ref_t){be(body, 8), ref ? (uint32_t)be(body + 8, 4) : RAY_TYPE_ACTOR};
      w->nactors += actor;
      break;
    }
    default:
      break;
  }
}

static void walk_free(walk_t *w) {
  free(w->refs);
  free(w->exts);
}

/* ---- the runtime ---- */

static void stop_runtime(void) {
  (void)ray_shutdown();
}

static void start_runtime_once(void) {
  static bool started;
  if (started) return;
  ray_config_t cfg;
  FUZZ_CHECK(ray_config_init(&cfg) == 0);
  cfg.num_workers = 1;
  cfg.num_shards = 4;
  cfg.object_store_memory = 64u << 20;
  cfg.enable_spilling = false;
  FUZZ_CHECK(ray_init(&cfg) == 0);
  atexit(stop_runtime);
  started = true;
}

/* The bytes msgpack-c packs `o` into (heap, caller frees). */
static char *pack(const msgpack_object *o, size_t *size) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  FUZZ_CHECK(msgpack_pack_object(&pk, *o) == 0);
  *size = sb.size;
  return msgpack_sbuffer_release(&sb);
}

static bool refs_equal(const ray_ref_t *a, const ray_ref_t *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i].id != b[i].id || a[i].type != b[i].type) return false;
  return true;
}

static void check_scalar_decoders(const uint8_t *data, size_t size, const msgpack_object *o) {
  int64_t i = 0;
  double d = 0;
  bool is_i64 = o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
                (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX);
  bool is_f64 = o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64;
  FUZZ_CHECK(ray__decode_i64(data, size, &i) == (is_i64 ? 0 : RAY_EDECODE));
  if (is_i64) FUZZ_CHECK(i == o->via.i64);
  FUZZ_CHECK(ray__decode_f64(data, size, &d) == (is_f64 ? 0 : RAY_EDECODE));
}

/* Put `obj` (with ray_put_msgpack, or its bytes as they are with
 * ray_put_typed) and get it back: the same value, the same refs. */
static void check_put_get(const msgpack_object *obj, const void *bytes, size_t size,
                          const walk_t *w, int want_put, int want_get) {
  ray_ref_t ref = {0, 0};
  int rc = bytes != NULL ? ray_put_typed(bytes, size, RAY_TYPE_MSGPACK, &ref)
                         : ray_put_msgpack(obj, &ref);
  if (bytes != NULL) { /* opaque bytes: stored as they are, refs checked at get */
    FUZZ_CHECK(rc == 0);
  } else {
    FUZZ_CHECK(rc == want_put);
    if (rc != 0) return;
  }
  ray_msgpack_t m;
  rc = ray_get_msgpack(ref, 0, &m);
  FUZZ_CHECK(rc == want_get);
  if (rc == 0) {
    /* The refs only: handles are the object's to hold, not listed. */
    ray_ref_t *only = malloc((w->n + 1) * sizeof *only);
    FUZZ_CHECK(only != NULL);
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
      if (w->refs[i].type != RAY_TYPE_ACTOR) only[k++] = w->refs[i];
    FUZZ_CHECK(m.nrefs == k && refs_equal(m.refs, only, k));
    free(only);
    size_t n1, n2;
    char *a = pack(obj, &n1);
    char *b = pack(&m.obj, &n2);
    FUZZ_CHECK(n1 == n2 && memcmp(a, b, n1) == 0);
    free(a);
    free(b);
    if (m.nrefs > 0) FUZZ_CHECK(ray_ref_release_batch(m.refs, m.nrefs) == 0);
    ray_msgpack_release(&m);
  }
  FUZZ_CHECK(ray_ref_release(ref) == 0);
}

/* Rewrite every ref of the value in `buf` (decoded zero-copy into *obj) to
 * a live or a released object, then take it through the store: as a value,
 * as opaque bytes, and wrapped in arrays up to (and one past) the deepest
 * nesting the decoder reads back. */
static void check_store_trip(unsigned char *buf, size_t size, const msgpack_object *obj,
                             walk_t *w) {
  ray_ref_t live[3], dead;
  static const char bytes[] = "payload";
  FUZZ_CHECK(ray_put(bytes, sizeof bytes, &live[0]) == 0);
  FUZZ_CHECK(ray_put_i64(42, &live[1]) == 0);
  /* A value holding a ref itself: its refs are released with it. */
  {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    FUZZ_CHECK(ray_msgpack_pack_ref(&pk, live[0]) == 0);
    msgpack_unpacked u;
    FUZZ_CHECK(ray__mp_decode(sb.data, sb.size, &u) == 0);
    FUZZ_CHECK(ray_put_msgpack(&u.data, &live[2]) == 0);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
  }
  FUZZ_CHECK(ray_put_i64(7, &dead) == 0);
  FUZZ_CHECK(ray_ref_release(dead) == 0);

  bool any_dead = false;
  for (size_t i = 0; i < w->n; i++) {
    if (w->refs[i].type == RAY_TYPE_ACTOR) { /* no actor lives here: an unknown handle */
      const unsigned char *at = (const unsigned char *)w->exts[i]->via.ext.ptr;
      FUZZ_CHECK(at >= buf && at + 8 <= buf + size);
      unsigned char *body = buf + (at - buf);
      memset(body, 0, 8);
      body[7] = 1;
      w->refs[i].id = 1;
      continue;
    }
    unsigned m = (unsigned)(w->refs[i].id % 4);
    uint64_t id = m == 0 ? dead.id : live[m - 1].id;
    any_dead |= m == 0;
    const unsigned char *at = (const unsigned char *)w->exts[i]->via.ext.ptr;
    FUZZ_CHECK(at >= buf && at + 12 <= buf + size); /* msgpack-c decodes zero-copy */
    unsigned char *body = buf + (at - buf);
    for (int k = 7; k >= 0; k--, id >>= 8) body[k] = (unsigned char)(id & 0xff);
    w->refs[i].id = be(body, 8);
  }
  /* A put holds every ref and handle (an unknown one refuses it); a get
   * retains the refs only. */
  int want_get = any_dead ? RAY_ENOTFOUND : 0;
  int want = any_dead || w->nactors > 0 ? RAY_ENOTFOUND : 0;
  check_put_get(obj, NULL, 0, w, want, want);
  check_put_get(obj, buf, size, w, want, want_get);

  /* Wrapped: as deep as can be read back, then one level more. */
  FUZZ_CHECK(w->depth <= RAY__MP_MAX_DEPTH);
  msgpack_object wrap[RAY__MP_MAX_DEPTH + 1];
  size_t levels = RAY__MP_MAX_DEPTH + 1 - w->depth;
  const msgpack_object *inner = obj;
  for (size_t i = 0; i < levels; i++) {
    wrap[i].type = MSGPACK_OBJECT_ARRAY;
    wrap[i].via.array.size = 1;
    wrap[i].via.array.ptr = (msgpack_object *)inner;
    inner = &wrap[i];
  }
  ray_ref_t ref;
  FUZZ_CHECK(ray_put_msgpack(&wrap[levels - 1], &ref) == RAY_EINVAL);
  if (levels >= 2) check_put_get(&wrap[levels - 2], NULL, 0, w, want, want);

  for (int i = 0; i < 3; i++) FUZZ_CHECK(ray_ref_release(live[i]) == 0);
  ray_stats_t st;
  FUZZ_CHECK(ray_stats(&st) == 0);
  FUZZ_CHECK(st.objects == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  start_runtime_once();
  ray__alloc_track(true); /* resets the count: this input's blocks only */

  msgpack_unpacked u;
  int rc = ray__mp_decode(data, size, &u);
  if (rc != 0) {
    FUZZ_CHECK(rc == RAY_EDECODE);
    int64_t i;
    double d;
    FUZZ_CHECK(ray__decode_i64(data, size, &i) == RAY_EDECODE);
    FUZZ_CHECK(ray__decode_f64(data, size, &d) == RAY_EDECODE);
    /* The same bytes stored opaquely: refused at get, the same way. */
    ray_ref_t ref;
    ray_msgpack_t m;
    FUZZ_CHECK(ray_put_typed(data, size, RAY_TYPE_MSGPACK, &ref) == 0);
    FUZZ_CHECK(ray_get_msgpack(ref, 0, &m) == RAY_EDECODE);
    FUZZ_CHECK(ray_ref_release(ref) == 0);
    FUZZ_CHECK(ray__alloc_outstanding() == 0);
    return 0;
  }
  check_scalar_decoders(data, size, &u.data);

  walk_t w = {0};
  walk(&u.data, 0, &w);
  ray_ref_t *refs = NULL;
  size_t n = 0;
  rc = ray__mp_collect_refs(&u.data, &refs, &n);
  msgpack_unpacked_destroy(&u);
  if (w.malformed) {
    FUZZ_CHECK(rc == RAY_EDECODE && refs == NULL && n == 0);
    ray_ref_t ref;
    ray_msgpack_t m;
    FUZZ_CHECK(ray_put_typed(data, size, RAY_TYPE_MSGPACK, &ref) == 0);
    FUZZ_CHECK(ray_get_msgpack(ref, 0, &m) == RAY_EDECODE);
    FUZZ_CHECK(ray_ref_release(ref) == 0);
  } else {
    FUZZ_CHECK(rc == 0 && n == w.n && refs_equal(refs, w.refs, n));
    FUZZ_CHECK((n == 0) == (refs == NULL));
  }
  ray__free(refs);
  walk_free(&w);

  if (rc == 0) {
    /* Decode a private copy so the refs can be rewritten in place. */
    unsigned char *buf = malloc(size);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data, size);
    FUZZ_CHECK(ray__mp_decode(buf, size, &u) == 0);
    memset(&w, 0, sizeof w);
    walk(&u.data, 0, &w);
    check_store_trip(buf, size, &u.data, &w);
    walk_free(&w);
    msgpack_unpacked_destroy(&u);
    free(buf);
  }
  FUZZ_CHECK(ray__alloc_outstanding() == 0);
  return 0;
}
