/* rustyray/typed/kinds.h - the built-in kinds i64, f64, str, bytes and
 * msgpack: per-kind encode/decode dispatch (private).
 *
 * A kind is a token naming a value type. The declarations reach everything
 * about a kind K by pasting K into a fixed set of names (listed below), so
 * a kind is defined by defining that set, as RAY_TYPE (typed/type.h) and
 * RAY_ACTOR (typed/actor.h) do for user types and classes. This file
 * defines it for the store's built-in type tags: the typed ref and
 * in-argument types, a value or a ref as a core ray_arg_t, a body
 * parameter decoded, a body's return stored, put and get - each a thin
 * static inline over the core call for that type. It also defines the
 * padding kind ray__ty_none of a declaration's unused slots. */
#ifndef RUSTYRAY_TYPED_KINDS_H
#define RUSTYRAY_TYPED_KINDS_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

/* For each kind K the declarations use these names (a user type or class
 * declaration defines the same set):
 *   ray_ref_K_t                RAY_REF(K)
 *   ray_in_K_t                 an argument of a typed submit: a value or a ref
 *   ray__ty_tag_K              its type tag
 *   ray__ty_sv_K               the plain-function (submit value) C type
 *   ray__ty_uv_K, _ur_K        the types a RAY_CALL slot takes besides the built-in
 *                              ones (placeholders for built-in kinds)
 *   ray__ty_inv_K, _inu_K, _inr_K   make a ray_in_K_t from those
 *   ray__ty_arg_K, _afin_K     make the core ray_arg_t (scratch ray__ty_asc_K)
 *   ray__ty_pt_K, _dec_K, _dfin_K   body parameter type, decode it (scratch _dsc_K)
 *   ray__ty_rt_K, _ret_K       body return type, store it as a result slot
 *   ray__ty_put_K              RAY_PUT */

/* An argument of a typed submit: a value or a ref. */
#define RAY__TY_IN_TYPE(kind, T) \
  typedef struct {               \
    ray_ref_t ref;               \
    int by_ref;                  \
    T v;                         \
  } ray_in_##kind##_t

/* Placeholders: types no argument ever has. */
typedef struct ray__ty_nouv_s {
  char unused;
} ray__ty_nouv;
typedef struct ray__ty_nour_s {
  char unused;
} ray__ty_nour;

/* The slot converters of a kind that has no extra slot types. */
#define RAY__TY_NO_SLOTS(kind)                                         \
  typedef ray__ty_nouv ray__ty_uv_##kind;                              \
  typedef ray__ty_nour ray__ty_ur_##kind;                              \
  static inline ray_in_##kind##_t ray__ty_inu_##kind(ray__ty_nouv x) { \
    ray_in_##kind##_t in;                                              \
    (void)x;                                                           \
    memset(&in, 0, sizeof in);                                         \
    return in;                                                         \
  }                                                                    \
  static inline ray_in_##kind##_t ray__ty_inr_##kind(ray__ty_nour x) { \
    ray_in_##kind##_t in;                                              \
    (void)x;                                                           \
    memset(&in, 0, sizeof in);                                         \
    return in;                                                         \
  }

/* The padding kind of unused slots. */
typedef struct {
  char unused;
} ray_in_ray__ty_none_t;
RAY__TY_NO_SLOTS(ray__ty_none)

/* Make an in-argument from a value / from a typed ref. */
#define RAY__TY_IN_FUNCS(kind, T)                                              \
  static inline ray_in_##kind##_t ray__ty_inv_##kind(T v) {                    \
    ray_in_##kind##_t in;                                                      \
    memset(&in, 0, sizeof in);                                                 \
    in.v = v;                                                                  \
    return in;                                                                 \
  }                                                                            \
  static inline ray_in_##kind##_t ray__ty_inref_##kind(ray_ref_##kind##_t r) { \
    ray_in_##kind##_t in;                                                      \
    memset(&in, 0, sizeof in);                                                 \
    in.ref = r.ref;                                                            \
    in.by_ref = 1;                                                             \
    return in;                                                                 \
  }

/* No-op scratch cleanup for kinds that need none. */
#define RAY__TY_NO_ASC(kind)                         \
  static inline void ray__ty_afin_##kind(char *sc) { \
    (void)sc;                                        \
  }
#define RAY__TY_NO_DSC(kind)                         \
  static inline void ray__ty_dfin_##kind(char *sc) { \
    (void)sc;                                        \
  }

/* A ref argument (a failed one fails the call with its own code). */
static inline int ray__ty_arg_ref(ray_ref_t ref, ray_arg_t *a) {
  if (ref.id == 0) return ray__ty_ref_code(ref);
  *a = ray_arg_ref(ref);
  return 0;
}

/* -- i64 */
enum { ray__ty_tag_i64 = RAY_TYPE_I64 };
RAY__TY_REF_TYPE(i64, int64_t, RAY_TYPE_I64);
RAY__TY_IN_TYPE(i64, int64_t);
RAY__TY_NO_SLOTS(i64)
RAY__TY_IN_FUNCS(i64, int64_t)
typedef int64_t ray__ty_sv_i64;
typedef int64_t ray__ty_pt_i64;
typedef int64_t ray__ty_rt_i64;
typedef char ray__ty_asc_i64;
typedef char ray__ty_dsc_i64;
RAY__TY_NO_ASC(i64)
RAY__TY_NO_DSC(i64)
static inline int ray__ty_arg_i64(const ray_in_i64_t *in, ray_arg_t *a, char *sc) {
  (void)sc;
  if (in->by_ref) return ray__ty_arg_ref(in->ref, a);
  *a = ray_arg_i64(in->v);
  return 0;
}
static inline int ray__ty_dec_i64(ray_task_ctx_t *ctx, size_t i, int64_t *out, char *sc) {
  (void)sc;
  return ray_ctx_arg_i64(ctx, i, out);
}
static inline int ray__ty_ret_i64(ray_task_ctx_t *ctx, size_t slot, int64_t v) {
  return ray_return_i64(ctx, slot, v);
}
static inline ray_ref_i64_t ray__ty_put_i64(int64_t v) {
  ray_ref_i64_t r;
  int rc = ray_put_i64(v, &r.ref);
  if (rc != 0) r.ref = ray__ty_ref_fail(rc);
  return r;
}
static inline int ray__ty_get_i64(ray_ref_i64_t r, int64_t timeout_ms, int64_t *out) {
  if (r.ref.id == 0) return ray__ty_ref_code(r.ref);
  return ray_get_i64(r.ref, timeout_ms, out);
}

/* -- f64 */
enum { ray__ty_tag_f64 = RAY_TYPE_F64 };
RAY__TY_REF_TYPE(f64, double, RAY_TYPE_F64);
RAY__TY_IN_TYPE(f64, double);
RAY__TY_NO_SLOTS(f64)
RAY__TY_IN_FUNCS(f64, double)
typedef double ray__ty_sv_f64;
typedef double ray__ty_pt_f64;
typedef double ray__ty_rt_f64;
typedef char ray__ty_asc_f64;
typedef char ray__ty_dsc_f64;
RAY__TY_NO_ASC(f64)
RAY__TY_NO_DSC(f64)
static inline int ray__ty_arg_f64(const ray_in_f64_t *in, ray_arg_t *a, char *sc) {
  (void)sc;
  if (in->by_ref) return ray__ty_arg_ref(in->ref, a);
  *a = ray_arg_f64(in->v);
  return 0;
}
static inline int ray__ty_dec_f64(ray_task_ctx_t *ctx, size_t i, double *out, char *sc) {
  (void)sc;
  return ray_ctx_arg_f64(ctx, i, out);
}
static inline int ray__ty_ret_f64(ray_task_ctx_t *ctx, size_t slot, double v) {
  return ray_return_f64(ctx, slot, v);
}
static inline ray_ref_f64_t ray__ty_put_f64(double v) {
  ray_ref_f64_t r;
  int rc = ray_put_f64(v, &r.ref);
  if (rc != 0) r.ref = ray__ty_ref_fail(rc);
  return r;
}
static inline int ray__ty_get_f64(ray_ref_f64_t r, int64_t timeout_ms, double *out) {
  if (r.ref.id == 0) return ray__ty_ref_code(r.ref);
  return ray_get_f64(r.ref, timeout_ms, out);
}

/* -- str: bodies get a NUL-terminated copy (small ones on the stack), and
 * return a malloc'd string the layer frees (NULL: RAY_ENORESULT). */
enum { ray__ty_tag_str = RAY_TYPE_STR };
RAY__TY_REF_TYPE(str, char *, RAY_TYPE_STR);
RAY__TY_IN_TYPE(str, const char *);
RAY__TY_NO_SLOTS(str)
RAY__TY_IN_FUNCS(str, const char *)
typedef const char *ray__ty_sv_str;
typedef const char *ray__ty_pt_str;
typedef char *ray__ty_rt_str;
typedef char ray__ty_asc_str;
RAY__TY_NO_ASC(str)
typedef struct {
  char *heap;
  char small[64];
} ray__ty_dsc_str;
static inline int ray__ty_arg_str(const ray_in_str_t *in, ray_arg_t *a, char *sc) {
  (void)sc;
  if (in->by_ref) return ray__ty_arg_ref(in->ref, a);
  if (in->v == NULL) return RAY_EINVAL;
  *a = ray_arg_str(in->v);
  return 0;
}
static inline int ray__ty_dec_str(ray_task_ctx_t *ctx, size_t i, const char **out,
                                  ray__ty_dsc_str *sc) {
  const char *s;
  size_t len;
  int rc = ray_ctx_arg_str(ctx, i, &s, &len);
  if (rc != 0) return rc;
  char *buf = sc->small;
  if (len >= sizeof sc->small && (buf = sc->heap = (char *)malloc(len + 1)) == NULL)
    return RAY_ENOMEM;
  if (len > 0) memcpy(buf, s, len);
  buf[len] = '\0';
  *out = buf;
  return 0;
}
static inline void ray__ty_dfin_str(ray__ty_dsc_str *sc) {
  free(sc->heap);
}
static inline int ray__ty_ret_str(ray_task_ctx_t *ctx, size_t slot, char *v) {
  if (v == NULL) return RAY_ENORESULT;
  int rc = ray_return_str(ctx, slot, v);
  free(v);
  return rc;
}
static inline ray_ref_str_t ray__ty_put_str(const char *v) {
  ray_ref_str_t r;
  int rc = ray_put_str(v, &r.ref);
  if (rc != 0) r.ref = ray__ty_ref_fail(rc);
  return r;
}
static inline int ray__ty_get_str(ray_ref_str_t r, int64_t timeout_ms, char **out) {
  if (r.ref.id == 0) {
    if (out != NULL) *out = NULL;
    return ray__ty_ref_code(r.ref);
  }
  return ray_get_str(r.ref, timeout_ms, out, NULL);
}

/* -- bytes */
enum { ray__ty_tag_bytes = RAY_TYPE_BYTES };
RAY__TY_REF_TYPE(bytes, ray_buf_t, RAY_TYPE_BYTES);
RAY__TY_IN_TYPE(bytes, ray_bytes_t);
RAY__TY_NO_SLOTS(bytes)
RAY__TY_IN_FUNCS(bytes, ray_bytes_t)
typedef ray_bytes_t ray__ty_sv_bytes;
typedef ray_bytes_t ray__ty_pt_bytes;
typedef ray_bytes_t ray__ty_rt_bytes;
typedef char ray__ty_asc_bytes;
typedef char ray__ty_dsc_bytes;
RAY__TY_NO_ASC(bytes)
RAY__TY_NO_DSC(bytes)
static inline int ray__ty_arg_bytes(const ray_in_bytes_t *in, ray_arg_t *a, char *sc) {
  (void)sc;
  if (in->by_ref) return ray__ty_arg_ref(in->ref, a);
  if (in->v.data == NULL && in->v.size > 0) return RAY_EINVAL;
  *a = ray_arg_bytes(in->v.data, in->v.size);
  return 0;
}
static inline int ray__ty_dec_bytes(ray_task_ctx_t *ctx, size_t i, ray_bytes_t *out, char *sc) {
  (void)sc;
  out->free_fn = NULL;
  out->free_arg = NULL;
  return ray_ctx_arg_bytes(ctx, i, &out->data, &out->size);
}
static inline int ray__ty_ret_bytes(ray_task_ctx_t *ctx, size_t slot, ray_bytes_t v) {
  if (v.data == NULL && v.size > 0) return RAY_EINVAL;
  if (v.free_fn == NULL) return ray_return_bytes(ctx, slot, v.data, v.size);
  int rc = ray_return_owned(ctx, slot, (void *)(uintptr_t)v.data, v.size, v.free_fn, v.free_arg);
  if (rc != 0)
    v.free_fn((void *)(uintptr_t)v.data, v.free_arg); /* ours since the body returned it */
  return rc;
}
/* RAY_PUT(bytes, RAY_BYTES_OWNED(...)) hands the buffer over (on failure
 * the caller keeps it, as with ray_put_owned); RAY_BYTES copies. */
static inline ray_ref_bytes_t ray__ty_put_bytes(ray_bytes_t v) {
  ray_ref_bytes_t r;
  int rc = v.free_fn != NULL
               ? ray_put_owned((void *)(uintptr_t)v.data, v.size, v.free_fn, v.free_arg, &r.ref)
               : ray_put(v.data, v.size, &r.ref);
  if (rc != 0) r.ref = ray__ty_ref_fail(rc);
  return r;
}
static inline int ray__ty_get_bytes(ray_ref_bytes_t r, int64_t timeout_ms, ray_buf_t *out) {
  if (r.ref.id == 0) {
    if (out != NULL) memset(out, 0, sizeof *out);
    return ray__ty_ref_code(r.ref);
  }
  if (r.ref.type != RAY_TYPE_BYTES) {
    if (out != NULL) memset(out, 0, sizeof *out);
    return RAY_ETYPE;
  }
  return ray_get(r.ref, timeout_ms, out);
}

/* -- msgpack: arguments are msgpack_objects (refs inside them are kept
 * alive by the call, as ray_put_msgpack does); a body returns the value
 * packed in a msgpack_sbuffer, which the layer frees. */
enum { ray__ty_tag_msgpack = RAY_TYPE_MSGPACK };
RAY__TY_REF_TYPE(msgpack, ray_msgpack_t, RAY_TYPE_MSGPACK);
RAY__TY_IN_TYPE(msgpack, msgpack_object);
RAY__TY_NO_SLOTS(msgpack)
typedef const msgpack_object *ray__ty_sv_msgpack;
typedef msgpack_object ray__ty_pt_msgpack;
typedef msgpack_sbuffer ray__ty_rt_msgpack;
typedef char ray__ty_asc_msgpack;
typedef char ray__ty_dsc_msgpack;
RAY__TY_NO_ASC(msgpack)
RAY__TY_NO_DSC(msgpack)
static inline ray_in_msgpack_t ray__ty_inv_msgpack_value(msgpack_object v) {
  ray_in_msgpack_t in;
  memset(&in, 0, sizeof in);
  in.v = v;
  return in;
}
static inline ray_in_msgpack_t ray__ty_inv_msgpack(const msgpack_object *v) {
  ray_in_msgpack_t in;
  memset(&in, 0, sizeof in);
  if (v != NULL)
    in.v = *v;
  else
    in.by_ref = 1; /* in.ref is nil: the call fails with RAY_ENOTFOUND */
  return in;
}
static inline ray_in_msgpack_t ray__ty_inref_msgpack(ray_ref_msgpack_t r) {
  ray_in_msgpack_t in;
  memset(&in, 0, sizeof in);
  in.ref = r.ref;
  in.by_ref = 1;
  return in;
}
static inline int ray__ty_arg_msgpack(const ray_in_msgpack_t *in, ray_arg_t *a, char *sc) {
  (void)sc;
  if (in->by_ref) return ray__ty_arg_ref(in->ref, a);
  *a = ray_arg_msgpack(&in->v);
  return 0;
}
static inline int ray__ty_dec_msgpack(ray_task_ctx_t *ctx, size_t i, msgpack_object *out,
                                      char *sc) {
  (void)sc;
  return ray_ctx_arg_msgpack(ctx, i, out);
}
static inline int ray__ty_ret_msgpack(ray_task_ctx_t *ctx, size_t slot, msgpack_sbuffer v) {
  if (v.data == NULL || v.size == 0) return RAY_ENORESULT;
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  int rc = RAY_EDECODE;
  if (msgpack_unpack_next(&u, v.data, v.size, &off) == MSGPACK_UNPACK_SUCCESS && off == v.size)
    rc = ray_return_msgpack(ctx, slot, &u.data);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&v);
  return rc;
}
static inline ray_ref_msgpack_t ray__ty_put_msgpack(const msgpack_object *v) {
  ray_ref_msgpack_t r;
  int rc = ray_put_msgpack(v, &r.ref);
  if (rc != 0) r.ref = ray__ty_ref_fail(rc);
  return r;
}
static inline int ray__ty_get_msgpack(ray_ref_msgpack_t r, int64_t timeout_ms, ray_msgpack_t *out) {
  if (r.ref.id == 0) {
    if (out != NULL) memset(out, 0, sizeof *out);
    return ray__ty_ref_code(r.ref);
  }
  return ray_get_msgpack(r.ref, timeout_ms, out);
}

#endif /* RUSTYRAY_TYPED_KINDS_H */
