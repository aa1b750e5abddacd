/* rustyray/typed/ref.h - typed refs and the failed-ref error scheme.
 *
 * RAY_REF(kind) is a union per kind over the untyped ray_ref_t, so a ref of
 * the wrong kind does not compile; RAY_REFS and RAY_RESULT name what a
 * declaration returns; RAY_STATUS reads a ref's or a handle's code and
 * RAY_REF_CAST types an untyped ref. Invariant: a typed ref or handle whose
 * id is 0 is failed, and its second word holds RAY__TY_FAILED | -code, so
 * the code travels with the value through a chain of calls without an
 * allocation; a zeroed one reads as RAY_ENOTFOUND. */
#ifndef RUSTYRAY_TYPED_REF_H
#define RUSTYRAY_TYPED_REF_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

/* The typed ref type of a kind: RAY_REF(i64), RAY_REF(point), ... Its
 * `.ref` member is the ray_ref_t for the core API. Zero-initialise one
 * (`RAY_REF(i64) r = {0};`) for "no ref yet". */
#define RAY_REF(kind) ray_ref_##kind##_t

/* What a declared function or method `f` returns: RAY_REFS(f) is its call's
 * result (a RAY_REF, or for several returns a struct with one RAY_REF per
 * named return), RAY_RESULT(f) its body's (the kind's C type, or a struct
 * with one field per named return). For a method, f is Class_method. */
#define RAY_RESULT(f) f##__result
#define RAY_REFS(f) f##__refs

/* 0 when `x` (a typed ref or an actor handle) is live, else the negative
 * RAY_E* code it failed with (RAY_ENOTFOUND for a zeroed one). Never
 * blocks; does not look at the runtime. */
#define RAY_STATUS(x) ray__ty_status_code((x).ray__ty_st_)

/* A typed ref for an existing untyped ref (the same reference, no retain):
 * a failed ref with RAY_ETYPE when raw's type tag is not the kind's, or
 * RAY_ENOTFOUND when raw is nil. */
#define RAY_REF_CAST(kind, raw) \
  ((RAY_REF(kind)){.ref = ray__ty_ref_cast((raw), (uint32_t)ray__ty_tag_##kind)})

/* Private: the (id, code) view shared by typed refs and handles. */
typedef struct ray__ty_status_s {
  uint64_t id;
  uint32_t code;
} ray__ty_status_t;

#define RAY__TY_FAILED 0x80000000u

static inline ray__ty_status_t ray__ty_status_fail(int rc) {
  ray__ty_status_t st;
  st.id = 0;
  st.code = RAY__TY_FAILED | (uint32_t)(rc < 0 && rc > -65536 ? -rc : -RAY_EINVAL);
  return st;
}
static inline ray__ty_status_t ray__ty_status_ok(uint64_t id) {
  ray__ty_status_t st;
  st.id = id;
  st.code = 0;
  return st;
}
static inline int ray__ty_status_code(ray__ty_status_t st) {
  if (st.id != 0) return 0;
  return (st.code & RAY__TY_FAILED) != 0 ? -(int)(st.code & 0xFFFFu) : RAY_ENOTFOUND;
}
static inline ray_ref_t ray__ty_ref_fail(int rc) {
  ray__ty_status_t st = ray__ty_status_fail(rc);
  ray_ref_t r;
  r.id = 0;
  r.type = st.code;
  return r;
}
static inline int ray__ty_ref_code(ray_ref_t r) {
  ray__ty_status_t st;
  st.id = r.id;
  st.code = r.type;
  return ray__ty_status_code(st);
}
static inline ray_ref_t ray__ty_ref_cast(ray_ref_t raw, uint32_t tag) {
  if (raw.id == 0) return ray__ty_ref_fail(RAY_ENOTFOUND);
  return raw.type == tag ? raw : ray__ty_ref_fail(RAY_ETYPE);
}

/* A typed ref: the ref, its (id, code) view, and two members that exist only
 * for the compiler: the pointer type RAY_GET must be given, and the kind's
 * type tag as an array size (sizeof *r.ray__ty_tag_). */
#define RAY__TY_REF_TYPE(kind, get_type, tag) \
  typedef union ray_ref_##kind##_u {          \
    ray_ref_t ref;                            \
    ray__ty_status_t ray__ty_st_;             \
    get_type *ray__ty_p_;                     \
    char (*ray__ty_tag_)[tag];                \
  } ray_ref_##kind##_t

#endif /* RUSTYRAY_TYPED_REF_H */
