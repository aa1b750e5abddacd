/* rustyray/typed/type.h - user value types: RAY_TYPE.
 *
 * RAY_TYPE(name, T, number, pack, unpack) makes a C type a kind: it defines
 * the same per-kind set as the built-in kinds (typed/kinds.h) over the
 * user's msgpack pack and unpack functions and the type tag
 * RAY_TYPE_USER + number. The support after it packs a value into a scratch
 * sbuffer for a call, decodes an argument passed by value (as bytes) or by
 * ref (its tag checked), and keeps the translation unit's list of decoders
 * that RAY_GET consults, filled before main(). */
#ifndef RUSTYRAY_TYPED_TYPE_H
#define RUSTYRAY_TYPED_TYPE_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

/* RAY_TYPE(name, T, number, pack, unpack) makes the C type T (a struct, or
 * any type that is not one of the built-in kinds' C types) the kind `name`:
 * usable as a parameter, a return, and with RAY_PUT / RAY_GET, with its own
 * type tag RAY_TYPE_USER + number.
 *   number  a decimal literal >= 0, unique in the program: the tag is how
 *           objects are told apart at run time (two types with one number
 *           in one file do not compile).
 *   pack    int pack(msgpack_packer *pk, const T *value): pack one msgpack
 *           value; return 0, non-zero on failure (RAY_EINVAL).
 *   unpack  int unpack(const msgpack_object *obj, T *out): fill *out from
 *           it; return 0, non-zero when obj is not a T (RAY_EDECODE). It
 *           must copy whatever it keeps: obj is freed after it returns.
 * Refs must not be packed inside a user type (use kind msgpack for that).
 * A declaration also registers the type's decoder for RAY_GET, before main.
 *
 * (The core accepts only built-in types as value arguments, so a user
 * value passed to a call travels as bytes and is decoded by the callee; a
 * ref keeps its tag and is checked.) */
#define RAY_TYPE(name, T, number, pack, unpack)                                                \
  enum {                                                                                       \
    ray__ty_user_tag_##number = RAY_TYPE_USER + (number),                                      \
    ray__ty_tag_##name = RAY_TYPE_USER + (number)                                              \
  };                                                                                           \
  RAY__TY_REF_TYPE(name, T, RAY_TYPE_USER + (number));                                         \
  RAY__TY_IN_TYPE(name, T);                                                                    \
  typedef T ray__ty_sv_##name;                                                                 \
  typedef T ray__ty_uv_##name;                                                                 \
  typedef ray_ref_##name##_t ray__ty_ur_##name;                                                \
  typedef T ray__ty_pt_##name;                                                                 \
  typedef T ray__ty_rt_##name;                                                                 \
  typedef msgpack_sbuffer ray__ty_asc_##name;                                                  \
  typedef ray__ty_udsc_t ray__ty_dsc_##name;                                                   \
  static inline int ray__ty_packv_##name(msgpack_packer *pk, const void *v) {                  \
    return (pack)(pk, (const T *)v);                                                           \
  }                                                                                            \
  static inline int ray__ty_unpackv_##name(const msgpack_object *obj, void *out) {             \
    return (unpack)(obj, (T *)out);                                                            \
  }                                                                                            \
  static inline ray_in_##name##_t ray__ty_inv_##name(T v) {                                    \
    ray_in_##name##_t in;                                                                      \
    memset(&in, 0, sizeof in);                                                                 \
    in.v = v;                                                                                  \
    return in;                                                                                 \
  }                                                                                            \
  static inline ray_in_##name##_t ray__ty_inu_##name(T v) {                                    \
    return ray__ty_inv_##name(v);                                                              \
  }                                                                                            \
  static inline ray_in_##name##_t ray__ty_inr_##name(ray_ref_##name##_t r) {                   \
    ray_in_##name##_t in;                                                                      \
    memset(&in, 0, sizeof in);                                                                 \
    in.ref = r.ref;                                                                            \
    in.by_ref = 1;                                                                             \
    return in;                                                                                 \
  }                                                                                            \
  static inline int ray__ty_arg_##name(const ray_in_##name##_t *in, ray_arg_t *a,              \
                                       msgpack_sbuffer *sb) {                                  \
    if (in->by_ref) return ray__ty_arg_ref(in->ref, a);                                        \
    return ray__ty_arg_user(ray__ty_packv_##name, &in->v, a, sb);                              \
  }                                                                                            \
  static inline void ray__ty_afin_##name(msgpack_sbuffer *sb) {                                \
    msgpack_sbuffer_destroy(sb);                                                               \
  }                                                                                            \
  static inline int ray__ty_dec_##name(ray_task_ctx_t *ctx, size_t i, T *out,                  \
                                       ray__ty_udsc_t *sc) {                                   \
    return ray__ty_dec_user(ctx, i, (uint32_t)ray__ty_tag_##name, ray__ty_unpackv_##name, out, \
                            sc);                                                               \
  }                                                                                            \
  static inline void ray__ty_dfin_##name(ray__ty_udsc_t *sc) {                                 \
    ray__ty_dec_user_fin(sc);                                                                  \
  }                                                                                            \
  static inline int ray__ty_ret_##name(ray_task_ctx_t *ctx, size_t slot, T v) {                \
    return ray__ty_ret_user(ctx, slot, ray__ty_packv_##name, &v);                              \
  }                                                                                            \
  static inline ray_ref_##name##_t ray__ty_put_##name(T v) {                                   \
    ray_ref_##name##_t r;                                                                      \
    r.ref = ray__ty_put_user(ray__ty_packv_##name, &v, (uint32_t)ray__ty_tag_##name);          \
    return r;                                                                                  \
  }                                                                                            \
  static ray__ty_tdesc_t ray__ty_tdesc_##name = {(uint32_t)ray__ty_tag_##name,                 \
                                                 ray__ty_unpackv_##name, NULL};                \
  RAY_TYPED_AT_STARTUP(ray__ty_register_type_##name) {                                         \
    (void)ray__ty_inu_##name;                                                                  \
    (void)ray__ty_inr_##name;                                                                  \
    (void)ray__ty_arg_##name;                                                                  \
    (void)ray__ty_afin_##name;                                                                 \
    (void)ray__ty_dec_##name;                                                                  \
    (void)ray__ty_dfin_##name;                                                                 \
    (void)ray__ty_ret_##name;                                                                  \
    (void)ray__ty_put_##name;                                                                  \
    ray__ty_tdesc_add(&ray__ty_tdesc_##name);                                                  \
  }

/* The user types declared in this translation unit, for RAY_GET. */
typedef struct ray__ty_tdesc_s {
  uint32_t tag;
  int (*unpack)(const msgpack_object *obj, void *out);
  struct ray__ty_tdesc_s *next;
} ray__ty_tdesc_t;

static inline ray__ty_tdesc_t **ray__ty_tdescs(void) {
  static ray__ty_tdesc_t *head;
  return &head;
}
static inline void ray__ty_tdesc_add(ray__ty_tdesc_t *d) {
  d->next = *ray__ty_tdescs();
  *ray__ty_tdescs() = d;
}
static inline const ray__ty_tdesc_t *ray__ty_tdesc_find(uint32_t tag) {
  const ray__ty_tdesc_t *d = *ray__ty_tdescs();
  while (d != NULL && d->tag != tag) d = d->next;
  return d;
}

/* Pack `v` into *sb (initialised here; freed by the caller, also on error). */
static inline int ray__ty_pack_user(int (*pack)(msgpack_packer *, const void *), const void *v,
                                    msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  return pack(&pk, v) == 0 ? 0 : RAY_EINVAL;
}
static inline int ray__ty_unpack_user(int (*unpack)(const msgpack_object *, void *),
                                      const void *data, size_t size, void *out,
                                      msgpack_unpacked *u) {
  size_t off = 0;
  if (msgpack_unpack_next(u, (const char *)data, size, &off) != MSGPACK_UNPACK_SUCCESS ||
      off != size)
    return RAY_EDECODE;
  return unpack(&u->data, out) == 0 ? 0 : RAY_EDECODE;
}
static inline int ray__ty_arg_user(int (*pack)(msgpack_packer *, const void *), const void *v,
                                   ray_arg_t *a, msgpack_sbuffer *sb) {
  int rc = ray__ty_pack_user(pack, v, sb);
  if (rc != 0) {
    msgpack_sbuffer_destroy(sb);
    memset(sb, 0, sizeof *sb);
    return rc;
  }
  *a = ray_arg_bytes(sb->data, sb->size);
  return 0;
}

/* Decoding scratch: the unpacked value (its zone) and, for a ref argument,
 * the pinned view it was read from; both live until the body returns. */
typedef struct ray__ty_udsc_s {
  msgpack_unpacked u;
  ray_buf_t buf;
  int have_u;
} ray__ty_udsc_t;

static inline void ray__ty_dec_user_fin(ray__ty_udsc_t *sc) {
  if (sc->have_u) msgpack_unpacked_destroy(&sc->u);
  sc->have_u = 0;
  ray_buf_release(&sc->buf);
}
static inline int ray__ty_dec_user(ray_task_ctx_t *ctx, size_t i, uint32_t tag,
                                   int (*unpack)(const msgpack_object *, void *), void *out,
                                   ray__ty_udsc_t *sc) {
  const void *data = NULL;
  size_t size = 0;
  int rc;
  uint32_t type = ray_ctx_arg_type(ctx, i);
  if (type == RAY_TYPE_BYTES) { /* passed by value */
    rc = ray_ctx_arg_bytes(ctx, i, &data, &size);
  } else if (type == tag) { /* passed by ref: resolved, so ready */
    ray_ref_t ref;
    rc = ray_ctx_arg_ref(ctx, i, &ref);
    if (rc == 0) rc = ray_get(ref, 0, &sc->buf);
    data = sc->buf.data;
    size = sc->buf.size;
  } else {
    rc = i < ray_ctx_nargs(ctx) ? RAY_ETYPE : RAY_EINVAL;
  }
  if (rc == 0) {
    msgpack_unpacked_init(&sc->u);
    sc->have_u = 1;
    rc = ray__ty_unpack_user(unpack, data, size, out, &sc->u);
  }
  if (rc != 0) ray__ty_dec_user_fin(sc);
  return rc;
}
static inline int ray__ty_ret_user(ray_task_ctx_t *ctx, size_t slot,
                                   int (*pack)(msgpack_packer *, const void *), const void *v) {
  msgpack_sbuffer sb;
  int rc = ray__ty_pack_user(pack, v, &sb);
  if (rc == 0) rc = ray_return_bytes(ctx, slot, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  return rc;
}
static inline ray_ref_t ray__ty_put_user(int (*pack)(msgpack_packer *, const void *), const void *v,
                                         uint32_t tag) {
  msgpack_sbuffer sb;
  ray_ref_t r;
  int rc = ray__ty_pack_user(pack, v, &sb);
  if (rc == 0) rc = ray_put_typed(sb.data, sb.size, tag, &r);
  msgpack_sbuffer_destroy(&sb);
  return rc == 0 ? r : ray__ty_ref_fail(rc);
}

/* RAY_GET of a user type: the ref, and the tag the compiler knows for it. */
typedef struct {
  ray_ref_t ref;
  uint32_t tag;
} ray__ty_uref_t;

static inline ray__ty_uref_t ray__ty_uref(ray_ref_t ref, size_t tag, size_t type_check) {
  ray__ty_uref_t u;
  (void)type_check;
  u.ref = ref;
  u.tag = (uint32_t)tag;
  return u;
}
static inline int ray__ty_get_user(ray__ty_uref_t u, int64_t timeout_ms, void *out) {
  if (u.ref.id == 0) return ray__ty_ref_code(u.ref);
  const ray__ty_tdesc_t *d = ray__ty_tdesc_find(u.tag);
  if (d == NULL || u.ref.type != u.tag) return RAY_ETYPE;
  ray_buf_t buf;
  int rc = ray_get(u.ref, timeout_ms, &buf);
  if (rc != 0) return rc;
  if (buf.type != u.tag) {
    rc = RAY_ETYPE;
  } else {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    rc = ray__ty_unpack_user(d->unpack, buf.data, buf.size, out, &up);
    msgpack_unpacked_destroy(&up);
  }
  ray_buf_release(&buf);
  return rc;
}

#endif /* RUSTYRAY_TYPED_TYPE_H */
