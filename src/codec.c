/* codec.c - msgpack encoding helpers (see codec.h). */
#include "codec.h"

#include <string.h>

#include "alloc.h"
#include "error_internal.h"

static int mpbuf_write(void *data, const char *buf, size_t len) {
  ray__mpbuf_t *b = data;
  if (b->oom) return -1;
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

char *ray__mpbuf_steal(ray__mpbuf_t *b) {
  char *p = b->data;
  if (p == b->small) {
    p = ray__malloc(b->size);
    if (p != NULL) memcpy(p, b->small, b->size);
  }
  b->data = b->small;
  b->size = 0;
  b->cap = sizeof b->small;
  return p;
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
  if (s == NULL) {
    msgpack_pack_nil(pk);
    return;
  }
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

int ray__error_encode(const ray_error_t *err, uint64_t cause_id, ray__mpbuf_t *out) {
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

int ray__mp_decode(const void *data, size_t size, msgpack_unpacked *out) {
  size_t off = 0;
  msgpack_unpacked_init(out);
  msgpack_unpack_return r = msgpack_unpack_next(out, data, size, &off);
  if (r == MSGPACK_UNPACK_SUCCESS && off == size) return 0;
  msgpack_unpacked_destroy(out);
  msgpack_unpacked_init(out);
  return r == MSGPACK_UNPACK_NOMEM_ERROR ? RAY_ENOMEM : RAY_EDECODE;
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

int ray__error_decode(const void *data, size_t size, ray_error_t **out, uint64_t *cause_id) {
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
