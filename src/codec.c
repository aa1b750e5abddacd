/* codec.c - the library's msgpack helpers (see codec.h): the growable
 * output buffer, the one encoding of scalar values (puts, task arguments and
 * returns all use it) and of error chains, the bounds check every decode of
 * untrusted bytes runs first, and the walk that finds refs inside a value.
 * No locks and no shared state: any thread may call any of it. */
#include "codec.h"

#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "alloc.h"
#include "error_internal.h"
#include "rustyray/actor.h"

static int mpbuf_write(void *data, const char *buf, size_t len) {
  ray__mpbuf_t *b = data;
  if (b->oom) return -1;
  if (len == 0) return 0; /* msgpack-c writes an empty str/bin body from a NULL pointer */
  if (b->size + len > b->cap) {
    size_t cap = b->cap * 2;
    while (cap < b->size + len) cap *= 2;
    char *p;
    if (b->data == b->small) {
      p = ray__malloc(cap);
      if (p != NULL) memcpy(p, b->small, b->size);
    } else {
      p = ray__realloc(b->data, cap);
    }
    if (p == NULL) {
      b->oom = 1;
      return -1;
    }
    b->data = p;
    b->cap = cap;
  }
  memcpy(b->data + b->size, buf, len);
  b->size += len;
  return 0;
}

void ray__mpbuf_init(ray__mpbuf_t *b, msgpack_packer *pk) {
  b->data = b->small;
  b->size = 0;
  b->cap = sizeof b->small;
  b->oom = 0;
  msgpack_packer_init(pk, b, mpbuf_write);
}

void ray__mpbuf_destroy(ray__mpbuf_t *b) {
  if (b->data != b->small) ray__free(b->data);
  b->data = b->small;
  b->size = 0;
  b->cap = sizeof b->small;
}

static void pack_str(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
  if (s == NULL)
    msgpack_pack_nil(pk);
  else
    pack_str(pk, s);
}

void ray__encode_i64(ray__mpbuf_t *b, int64_t v) {
  msgpack_packer pk;
  ray__mpbuf_init(b, &pk);
  msgpack_pack_int64(&pk, v);
}

void ray__encode_f64(ray__mpbuf_t *b, double v) {
  msgpack_packer pk;
  ray__mpbuf_init(b, &pk);
  msgpack_pack_double(&pk, v);
}

void ray__encode_str(ray__mpbuf_t *b, const char *s) {
  msgpack_packer pk;
  ray__mpbuf_init(b, &pk);
  pack_str(&pk, s);
}

int ray__encode_error(const ray_error_t *err, uint64_t cause_id, ray__mpbuf_t *out) {
  msgpack_packer pk;
  ray__mpbuf_init(out, &pk);
  size_t links = 0;
  for (const ray_error_t *e = err; e != NULL; e = e->cause) links++;
  msgpack_pack_array(&pk, 2);
  msgpack_pack_array(&pk, links);
  for (const ray_error_t *e = err; e != NULL; e = e->cause) {
    msgpack_pack_array(&pk, 5);
    msgpack_pack_int(&pk, e->code);
    pack_cstr(&pk, e->message);
    pack_cstr(&pk, e->origin);
    msgpack_pack_uint64(&pk, e->task_id);
    msgpack_pack_uint32(&pk, e->attempts);
  }
  msgpack_pack_uint64(&pk, cause_id);
  if (out->oom) {
    ray__mpbuf_destroy(out);
    return RAY_ENOMEM;
  }
  return 0;
}

/* A big-endian unsigned field (msgpack lengths, the ref ext body). */
static uint64_t get_be(const unsigned char *p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v = (v << 8) | p[i];
  return v;
}

/* What follows a header byte 0xc0..0xdf: kind 0 a body (of `body` bytes
 * plus the length in the `lenbytes` length field), 1 an array, 2 a map (of
 * `lenbytes` element counts), 3 never used. The msgpack spec's table. */
static const struct {
  unsigned char kind, lenbytes, body;
} mp_hdr[32] = {{0, 0, 0}, {3, 0, 0}, {0, 0, 0}, {0, 0, 0}, /* nil, unused, false, true */
                {0, 1, 0}, {0, 2, 0}, {0, 4, 0},            /* bin 8/16/32 */
                {0, 1, 1}, {0, 2, 1}, {0, 4, 1},            /* ext 8/16/32 (+ type) */
                {0, 0, 4}, {0, 0, 8},                       /* float 32/64 */
                {0, 0, 1}, {0, 0, 2}, {0, 0, 4}, {0, 0, 8}, /* uint 8..64 */
                {0, 0, 1}, {0, 0, 2}, {0, 0, 4}, {0, 0, 8}, /* int 8..64 */
                {0, 0, 2}, {0, 0, 3}, {0, 0, 5}, {0, 0, 9}, {0, 0, 17}, /* fixext 1..16 (+ type) */
                {0, 1, 0}, {0, 2, 0}, {0, 4, 0},                        /* str 8/16/32 */
                {1, 2, 0}, {1, 4, 0}, {2, 2, 0}, {2, 4, 0}};            /* array 16/32, map 16/32 */

int ray__mp_check(const void *data, size_t size) {
  size_t held;
  return ray__mp_scan(data, size, &held);
}

/* See codec.h. A pass over the headers only: string, binary and ext
 * bodies are skipped (an ext's first body byte is its type). */
int ray__mp_scan(const void *data, size_t size, size_t *held) {
  const unsigned char *p = data;
  *held = 0;
  uint64_t want[RAY__MP_MAX_DEPTH + 1]; /* values still to read per open level */
  int open = 0;
  size_t off = 0;
  want[0] = 1;
  while (open > 0 || want[0] > 0) {
    if (off >= size) return RAY_EDECODE;
    unsigned c = p[off++], kind = 0, lenbytes = 0;
    uint64_t n = 0; /* body bytes, or elements of a container */
    if (c >= 0x80 && c <= 0x8f)
      kind = 2, n = c & 0x0f; /* fixmap */
    else if (c >= 0x90 && c <= 0x9f)
      kind = 1, n = c & 0x0f; /* fixarray */
    else if (c >= 0xa0 && c <= 0xbf)
      n = c & 0x1f; /* fixstr */
    else if (c >= 0xc0 && c <= 0xdf)
      kind = mp_hdr[c - 0xc0].kind, lenbytes = mp_hdr[c - 0xc0].lenbytes, n = mp_hdr[c - 0xc0].body;
    /* else a positive or negative fixint: the byte is the value */
    if (kind == 3 || lenbytes > size - off) return RAY_EDECODE;
    n += get_be(p + off, (int)lenbytes);
    off += lenbytes;
    want[open]--;
    if (kind == 0) {
      if (n > size - off) return RAY_EDECODE;
      bool ext = (c >= 0xc7 && c <= 0xc9) || (c >= 0xd4 && c <= 0xd8); /* n >= 1: the type */
      if (ext && (p[off] == RAY_MSGPACK_EXT_REF || p[off] == RAY_MSGPACK_EXT_ACTOR)) (*held)++;
      off += (size_t)n;
    } else {
      if (open == RAY__MP_MAX_DEPTH) return RAY_EDECODE; /* even an empty one */
      if (kind == 2) n *= 2;                             /* keys and values; n < 2^33 */
      if (n > size - off) return RAY_EDECODE;            /* each element takes a byte at least */
      if (n > 0) want[++open] = n;
    }
    while (open > 0 && want[open] == 0) open--;
  }
  return off == size ? 0 : RAY_EDECODE;
}

int ray__mp_decode(const void *data, size_t size, msgpack_unpacked *out) {
  size_t off = 0;
  msgpack_unpacked_init(out);
  if (ray__mp_check(data, size) != 0) return RAY_EDECODE;
  msgpack_unpack_return r = msgpack_unpack_next(out, data, size, &off);
  if (r == MSGPACK_UNPACK_SUCCESS && off == size) return 0;
  msgpack_unpacked_destroy(out);
  msgpack_unpacked_init(out);
  return r == MSGPACK_UNPACK_NOMEM_ERROR ? RAY_ENOMEM : RAY_EDECODE;
}

int ray__decode_i64(const void *data, size_t size, int64_t *out) {
  msgpack_unpacked u;
  int rc = ray__mp_decode(data, size, &u);
  if (rc != 0) return rc;
  if (u.data.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
    *out = u.data.via.i64;
  else if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER && u.data.via.u64 <= INT64_MAX)
    *out = (int64_t)u.data.via.u64;
  else
    rc = RAY_EDECODE;
  msgpack_unpacked_destroy(&u);
  return rc;
}

int ray__decode_f64(const void *data, size_t size, double *out) {
  msgpack_unpacked u;
  int rc = ray__mp_decode(data, size, &u);
  if (rc != 0) return rc;
  if (u.data.type == MSGPACK_OBJECT_FLOAT64 || u.data.type == MSGPACK_OBJECT_FLOAT32)
    *out = u.data.via.f64;
  else
    rc = RAY_EDECODE;
  msgpack_unpacked_destroy(&u);
  return rc;
}

/* A NUL-terminated copy of a msgpack str (NULL for nil). */
static int copy_str(const msgpack_object *o, char **out) {
  *out = NULL;
  if (o->type == MSGPACK_OBJECT_NIL) return 0;
  if (o->type != MSGPACK_OBJECT_STR) return RAY_EDECODE;
  char *s = ray__malloc(o->via.str.size + 1);
  if (s == NULL) return RAY_ENOMEM;
  if (o->via.str.size > 0) memcpy(s, o->via.str.ptr, o->via.str.size); /* NULL for "" */
  s[o->via.str.size] = '\0';
  *out = s;
  return 0;
}

int ray__decode_error(const void *data, size_t size, ray_error_t **out, uint64_t *cause_id) {
  msgpack_unpacked u;
  int rc = ray__mp_decode(data, size, &u);
  if (rc != 0) return rc;
  ray_error_t *head = NULL, **tail = &head;
  const msgpack_object *outer = &u.data;
  if (outer->type != MSGPACK_OBJECT_ARRAY || outer->via.array.size != 2 ||
      outer->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    rc = RAY_EDECODE;
    goto done;
  }
  *cause_id = outer->via.array.ptr[1].via.u64;
  const msgpack_object *top = &outer->via.array.ptr[0];
  if (top->type != MSGPACK_OBJECT_ARRAY || top->via.array.size == 0) {
    rc = RAY_EDECODE;
    goto done;
  }
  for (uint32_t i = 0; i < top->via.array.size; i++) {
    const msgpack_object *l = &top->via.array.ptr[i];
    if (l->type != MSGPACK_OBJECT_ARRAY || l->via.array.size != 5 ||
        l->via.array.ptr[0].type != MSGPACK_OBJECT_NEGATIVE_INTEGER ||
        l->via.array.ptr[0].via.i64 < INT_MIN || /* codes are negative ints */
        l->via.array.ptr[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        l->via.array.ptr[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        l->via.array.ptr[4].via.u64 > UINT32_MAX) {
      rc = RAY_EDECODE;
      goto done;
    }
    ray_error_t *e = ray__calloc(1, sizeof *e);
    if (e == NULL) {
      rc = RAY_ENOMEM;
      goto done;
    }
    *tail = e;
    tail = &e->cause;
    e->code = (int)l->via.array.ptr[0].via.i64;
    e->task_id = l->via.array.ptr[3].via.u64;
    e->attempts = (uint32_t)l->via.array.ptr[4].via.u64;
    if ((rc = copy_str(&l->via.array.ptr[1], &e->message)) != 0) goto done;
    if ((rc = copy_str(&l->via.array.ptr[2], &e->origin)) != 0) goto done;
    if (e->message == NULL && (e->message = ray__strdup("")) == NULL) {
      rc = RAY_ENOMEM;
      goto done;
    }
  }
done:
  msgpack_unpacked_destroy(&u);
  if (rc != 0) {
    ray_error_free(head);
    return rc;
  }
  *out = head;
  return 0;
}

/* ---- Refs inside msgpack values ---- */

static void put_be(unsigned char *p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) {
    p[i] = (unsigned char)(v & 0xff);
    v >>= 8;
  }
}

int ray_msgpack_pack_ref(msgpack_packer *pk, ray_ref_t ref) {
  if (pk == NULL || ref.id == 0 || ref.type == RAY_TYPE_ACTOR) return RAY_EINVAL;
  unsigned char body[12];
  put_be(body, ref.id, 8);
  put_be(body + 8, ref.type, 4);
  if (msgpack_pack_ext(pk, sizeof body, RAY_MSGPACK_EXT_REF) != 0 ||
      msgpack_pack_ext_body(pk, body, sizeof body) != 0)
    return RAY_ENOMEM;
  return 0;
}

int ray_msgpack_ref(const msgpack_object *obj, ray_ref_t *out) {
  if (obj == NULL || out == NULL) return RAY_EINVAL;
  if (obj->type != MSGPACK_OBJECT_EXT || obj->via.ext.type != RAY_MSGPACK_EXT_REF) return RAY_ETYPE;
  if (obj->via.ext.size != 12) return RAY_EDECODE;
  const unsigned char *p = (const unsigned char *)obj->via.ext.ptr;
  out->id = get_be(p, 8);
  out->type = (uint32_t)get_be(p + 8, 4);
  /* No object has the actor handles' type: such a ref is forged. */
  return out->id != 0 && out->type != RAY_TYPE_ACTOR ? 0 : RAY_EDECODE;
}

int ray_msgpack_pack_actor(msgpack_packer *pk, ray_actor_t actor) {
  if (pk == NULL || actor.id == 0) return RAY_EINVAL;
  unsigned char body[8];
  put_be(body, actor.id, 8);
  if (msgpack_pack_ext(pk, sizeof body, RAY_MSGPACK_EXT_ACTOR) != 0 ||
      msgpack_pack_ext_body(pk, body, sizeof body) != 0)
    return RAY_ENOMEM;
  return 0;
}

int ray_msgpack_actor(const msgpack_object *obj, ray_actor_t *out) {
  if (obj == NULL || out == NULL) return RAY_EINVAL;
  if (obj->type != MSGPACK_OBJECT_EXT || obj->via.ext.type != RAY_MSGPACK_EXT_ACTOR)
    return RAY_ETYPE;
  if (obj->via.ext.size != 8) return RAY_EDECODE;
  out->id = get_be((const unsigned char *)obj->via.ext.ptr, 8);
  return out->id != 0 ? 0 : RAY_EDECODE;
}

/* A value still to visit, and how many containers enclose it. */
typedef struct mp_visit_s {
  const msgpack_object *o;
  size_t nesting;
} mp_visit_t;

int ray__mp_collect_refs(const msgpack_object *obj, ray_ref_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  size_t cap = 0, depth = 0, stack_cap = 64;
  mp_visit_t *stack = ray__malloc(stack_cap * sizeof *stack);
  if (stack == NULL) return RAY_ENOMEM;
  int rc = 0;
  stack[depth++] = (mp_visit_t){obj, 0};
  while (depth > 0 && rc == 0) {
    mp_visit_t v = stack[--depth];
    const msgpack_object *o = v.o;
    bool container = o->type == MSGPACK_OBJECT_ARRAY || o->type == MSGPACK_OBJECT_MAP;
    if (container && v.nesting == RAY__MP_MAX_DEPTH) { /* could never be read back */
      rc = RAY_EINVAL;
      break;
    }
    size_t kids = o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size
                  : o->type == MSGPACK_OBJECT_MAP ? 2 * (size_t)o->via.map.size
                                                  : 0;
    bool is_ref = o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == RAY_MSGPACK_EXT_REF;
    bool is_actor = o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == RAY_MSGPACK_EXT_ACTOR;
    if (is_ref || is_actor) {
      ray_ref_t r;
      ray_actor_t a;
      if (is_ref && (rc = ray_msgpack_ref(o, &r)) != 0) break;
      if (is_actor) {
        if ((rc = ray_msgpack_actor(o, &a)) != 0) break;
        r = (ray_ref_t){a.id, RAY_TYPE_ACTOR};
      }
      if (*n == cap) {
        size_t ncap = cap ? cap * 2 : 16;
        ray_ref_t *p = ray__realloc(*out, ncap * sizeof *p);
        if (p == NULL) {
          rc = RAY_ENOMEM;
          break;
        }
        *out = p;
        cap = ncap;
      }
      (*out)[(*n)++] = r;
    }
    if (kids == 0) continue;
    if (depth + kids > stack_cap) {
      size_t ncap = stack_cap;
      while (depth + kids > ncap) ncap *= 2;
      mp_visit_t *p = ray__realloc(stack, ncap * sizeof *p);
      if (p == NULL) {
        rc = RAY_ENOMEM;
        break;
      }
      stack = p;
      stack_cap = ncap;
    }
    /* Push children last-first so they pop in document order. */
    for (size_t k = kids; k > 0; k--) {
      size_t i = k - 1;
      stack[depth++] = (mp_visit_t){o->type == MSGPACK_OBJECT_ARRAY ? &o->via.array.ptr[i]
                                    : (i % 2 == 0)                  ? &o->via.map.ptr[i / 2].key
                                                                    : &o->via.map.ptr[i / 2].val,
                                    v.nesting + 1};
    }
  }
  ray__free(stack);
  if (rc != 0) {
    ray__free(*out);
    *out = NULL;
    *n = 0;
  }
  return rc;
}
