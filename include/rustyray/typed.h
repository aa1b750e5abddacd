/* rustyray/typed.h - the typed layer: declare remote functions, actors and
 * value types once; call them with plain values or typed refs; get typed
 * refs back, all checked by the compiler.
 *
 * Ray's C++ API has RAY_REMOTE, ray::Task(f).Remote(args) and ObjectRef<T>.
 * This header is the C11 equivalent: macros over the core API (task.h,
 * actor.h, object.h), with no code generator and no compiler extension
 * except one, GCC's constructor attribute, isolated in RAY_TYPED_AT_STARTUP.
 * Everything it defines is static (or static inline) in the translation
 * unit that uses it; it adds no symbol to the library.
 *
 *     RAY_FUNCTION(i64, add, (i64, a), (i64, b)) { return a + b; }
 *
 *     RAY_REF(i64) three = add(1, 2);               // submit with values
 *     RAY_REF(i64) five = RAY_CALL(add, three, 2);  // a value or a ref per argument
 *     int64_t v;
 *     int rc = RAY_GET(five, RAY_TIMEOUT_INFINITE, &v);  // v == 5
 *
 * ---- Kinds ----------------------------------------------------------------
 *
 * A declaration names the kind of every parameter and return value with one
 * token. Built-in kinds (the store's type tags), and the C types they take:
 *
 *   kind     submit value            body parameter   body returns            RAY_GET into
 *   i64      any integer type        int64_t          int64_t                 int64_t *
 *   f64      any floating type       double           double                  double *
 *   str      char *, const char *    const char *     char * (malloc'd; the   char ** (free
 *                                    (NUL-terminated)  layer frees it)          with ray_free)
 *   bytes    ray_bytes_t             ray_bytes_t      ray_bytes_t (copied,    ray_buf_t *
 *                                    (zero-copy view)  or handed over with     (a view)
 *                                                      RAY_BYTES_OWNED)
 *   msgpack  msgpack_object [*]      msgpack_object   msgpack_sbuffer (packed ray_msgpack_t *
 *                                    (zero-copy)       value; the layer frees)
 *
 * A user type declared with RAY_TYPE(name, ...) is the kind `name` (its C
 * type for everything), and an actor class declared with RAY_ACTOR(Class,
 * ...) is the kind `Class` for parameters (a handle passed to a task or
 * method). Views and pointers a body receives are valid until it returns.
 *
 * ---- Typed refs and errors ------------------------------------------------
 *
 * RAY_REF(kind) is a distinct type per kind (16 bytes, the size of a
 * ray_ref_t, no allocation): a ref of the wrong kind passed to a call, or
 * read into the wrong C type, does not compile. `.ref` is the untyped
 * ray_ref_t, for the core API (ray_ref_release(r.ref), ray_wait, ...). The
 * caller owns one reference on every typed ref a call returns, as with the
 * core API.
 *
 * A typed call never returns an int: when it fails (runtime not started,
 * bad argument, out of memory, a failed input ref or handle, ...) it
 * returns a *failed ref*: `.ref.id` is 0 and RAY_STATUS(ref) gives the
 * negative RAY_E* code (like the Linux kernel's ERR_PTR). A failed ref
 * holds no reference (releasing it is a harmless RAY_ENOTFOUND); RAY_GET on
 * it returns its code; passing it to another typed call makes that call
 * fail with the same code without submitting anything. So a chain of calls
 * can be checked once, where its result is read - as in Ray, where errors
 * surface at get. Failed actor handles work the same way.
 *
 * ---- Declarations ---------------------------------------------------------
 *
 *   RAY_TYPE(name, T, number, pack, unpack)        a user value type
 *   RAY_FUNCTION(ret, f, (kind, param)...) {...}   a remote function
 *   RAY_ACTOR(Class, State)                        an actor class ...
 *   RAY_CONSTRUCTOR(Class, (kind, param)...) {...} ... its constructor, or
 *   RAY_DEFAULT_CONSTRUCTOR(Class)                     one with no parameters
 *   RAY_METHOD(Class, ret, m, (kind, param)...) {...}   ... a method
 *   RAY_DESTRUCTOR(Class) {...}                    ... its destructor (optional)
 *
 * `ret` is a kind, or a parenthesised list of (kind, name) pairs for several
 * returns: RAY_FUNCTION(((f64, sum), (i64, count)), stats, (bytes, data)).
 * Every declaration registers itself before main() (RAY_TYPED_AT_STARTUP):
 * there is no list to keep by hand, and every ray_init() sees them all.
 * Put each declaration in one .c file (their names are registered in the
 * runtime and must be unique); calling a function from another file means
 * exposing a plain C function that calls it.
 *
 * ---- Calls ----------------------------------------------------------------
 *
 *   f(v1, v2)                     plain values, checked like any C call
 *                                 (C's implicit conversions apply: 1.5 for
 *                                 an i64 becomes 1; RAY_CALL refuses it)
 *   RAY_CALL(f, x1, x2)           each x a plain value or a RAY_REF of the
 *                                 parameter's kind (a _Generic per argument,
 *                                 with no default: anything else fails to
 *                                 compile, and so does a wrong count)
 *   RAY_CALL_OPTS(&opts, f, ...)  the same with ray_task_opts_t (functions,
 *                                 methods) or ray_actor_opts_t (Class_new)
 *   Class_new(...)                create an actor: a Class handle
 *   Class_m(handle, ...)          call method m: typed refs
 *
 * ---- Values -----------------------------------------------------------------
 *
 *   RAY_PUT(kind, value)             a typed ref to a new object
 *   RAY_GET(ref, timeout_ms, &out)   decode into out's C type (_Generic on it)
 *   RAY_STATUS(ref or handle)        0, or the code a failed one carries
 *   RAY_REF_CAST(kind, raw)          a typed ref for a ray_ref_t, tag checked
 *   RAY_ACTOR_GET(Class, name)       a named actor's handle, class checked
 *   RAY_ACTOR_CAST(Class, raw)       a typed handle for a ray_actor_t
 *   RAY_CTX                          the running body's ray_task_ctx_t
 *   RAY_BYTES(p, n), RAY_BYTES_OWNED(p, n, free_fn), ray_str_format(fmt, ...)
 *
 * Thread safety: everything here may be called from any thread, tasks and
 * actor methods included, as the core calls it wraps. Nothing blocks except
 * RAY_GET (up to its timeout).
 *
 * Limits: RAY_TYPED_MAX_PARAMS (8) parameters per function and constructor,
 * 7 per method; RAY_TYPED_MAX_RETURNS (8) returns; RAY_TYPED_MAX_METHODS
 * (64, definable before the include) methods per class.
 *
 * Private: every name starting ray__ty_ or RAY__TY_, and the names with a
 * double underscore a declaration defines (f__submit, Class__class, ...). */
#ifndef RUSTYRAY_TYPED_H
#define RUSTYRAY_TYPED_H

#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.h"
#include "object.h"
#include "runtime.h"
#include "task.h"

/* C11 only (_Generic): in C++ this header declares nothing, so rustyray.h
 * can include it for both languages; C++ code uses the core API. */
#ifndef __cplusplus

/* RAY_TYPED_AT_STARTUP(fn) { ... } defines a static function that runs
 * before main() (and when a shared object holding it is loaded). It is the
 * typed layer's only use of a compiler extension, GCC's (and Clang's)
 * constructor attribute: a compiler without it can define this macro before
 * including the header, with any mechanism that runs code at load time. */
#ifndef RAY_TYPED_AT_STARTUP
#if defined(__GNUC__) || defined(__clang__)
#define RAY_TYPED_AT_STARTUP(fn)                     \
  static void fn(void) __attribute__((constructor)); \
  static void fn(void)
#else
#error "rustyray/typed.h: define RAY_TYPED_AT_STARTUP(fn) to run fn before main()"
#endif
#endif

/* Most parameters of a function or constructor (a method has one fewer: its
 * handle takes a slot). Most returns of a function or method. */
#define RAY_TYPED_MAX_PARAMS 8
#define RAY_TYPED_MAX_RETURNS 8
/* Most methods per actor class (one is used internally). Define it before
 * the first include of rustyray.h / rustyray/typed.h to change it. */
#ifndef RAY_TYPED_MAX_METHODS
#define RAY_TYPED_MAX_METHODS 64
#endif

/* ---- Values ------------------------------------------------------------- */

/* Bytes: a pointer, a size, and (for a body's return only) who frees them.
 * As a submit value the bytes are copied before the call returns (free_fn
 * is ignored). As a body parameter it is a zero-copy view into the store,
 * valid until the body returns. As a body return: with free_fn NULL the
 * bytes are copied (they must stay valid until the body returns: static
 * data, say); with free_fn set they are handed to the store without a copy
 * and free_fn(data) runs once when the object is freed (also if the task
 * fails first). */
typedef struct ray_bytes_s {
  const void *data;
  size_t size;
  void (*free_fn)(void *);
} ray_bytes_t;

/* A ray_bytes_t to be copied / to be handed over to the store. */
#define RAY_BYTES(data, size) ((ray_bytes_t){(data), (size), NULL})
#define RAY_BYTES_OWNED(data, size, free_fn) ((ray_bytes_t){(data), (size), (free_fn)})

/* A malloc'd, NUL-terminated, printf-formatted string (for bodies that
 * return kind str), or NULL when out of memory. Thread-safe. */
static inline char *ray_str_format(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *s = (char *)malloc((size_t)n + 1);
  if (s == NULL) return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* ---- Typed refs ----------------------------------------------------------- */

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
#define RAY__TY_REF_TYPE(kind, get_type, tag)  \
  typedef union ray_ref_##kind##_u {        \
    ray_ref_t ref;                          \
    ray__ty_status_t ray__ty_st_;                 \
    get_type *ray__ty_p_;                      \
    char (*ray__ty_tag_)[tag];                 \
  } ray_ref_##kind##_t

/* An argument of a typed submit: a value or a ref. */
#define RAY__TY_IN_TYPE(kind, T) \
  typedef struct {            \
    ray_ref_t ref;            \
    int by_ref;               \
    T v;                      \
  } ray_in_##kind##_t

/* ---- The running body's context ------------------------------------------- */

/* The ray_task_ctx_t of the task, method or constructor whose body is
 * running on this thread (NULL elsewhere), for the core calls that take one:
 *     return ray_fail(RAY_CTX, RAY_EINVAL, "n = %d", n), 0;
 * A body that calls ray_fail fails whatever it returns. The slot belongs to
 * the .c file of the declaration: a helper in another file called by the
 * body sees NULL there, so pass it RAY_CTX as an argument. */
#define RAY_CTX ((ray_task_ctx_t *)*ray__ty_ctx_slot())

/* One slot per translation unit: bodies and their wrappers live in the same
 * one. Wrappers save and restore it, so nested bodies (a blocked worker runs
 * its children inline) see their own. */
static inline ray_task_ctx_t **ray__ty_ctx_slot(void) {
  static _Thread_local ray_task_ctx_t *slot;
  return &slot;
}
static inline ray_task_ctx_t *ray__ty_ctx_enter(ray_task_ctx_t *ctx) {
  ray_task_ctx_t **slot = ray__ty_ctx_slot();
  ray_task_ctx_t *prev = *slot;
  *slot = ctx;
  return prev;
}
static inline void ray__ty_ctx_leave(ray_task_ctx_t *prev) {
  *ray__ty_ctx_slot() = prev;
}

/* A failed argument decode fails the task with a message naming it. */
static inline int ray__ty_arg_fail(ray_task_ctx_t *ctx, int rc, const char *fn, const char *arg) {
  return ray_fail(ctx, rc, "%s: argument '%s': %s (%s)", fn, arg, ray_err_name(rc),
                  ray_strerror(rc));
}

/* ---- Built-in kinds -------------------------------------------------------- */

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

/* Placeholders: types no argument ever has. */
typedef struct ray__ty_nouv_s {
  char unused;
} ray__ty_nouv;
typedef struct ray__ty_nour_s {
  char unused;
} ray__ty_nour;

/* The slot converters of a kind that has no extra slot types. */
#define RAY__TY_NO_SLOTS(kind)                                                  \
  typedef ray__ty_nouv ray__ty_uv_##kind;                                          \
  typedef ray__ty_nour ray__ty_ur_##kind;                                          \
  static inline ray_in_##kind##_t ray__ty_inu_##kind(ray__ty_nouv x) {             \
    ray_in_##kind##_t in;                                                    \
    (void)x;                                                                 \
    memset(&in, 0, sizeof in);                                               \
    return in;                                                               \
  }                                                                          \
  static inline ray_in_##kind##_t ray__ty_inr_##kind(ray__ty_nour x) {             \
    ray_in_##kind##_t in;                                                    \
    (void)x;                                                                 \
    memset(&in, 0, sizeof in);                                               \
    return in;                                                               \
  }

/* The padding kind of unused slots. */
typedef struct {
  char unused;
} ray_in_ray__ty_none_t;
RAY__TY_NO_SLOTS(ray__ty_none)

/* Make an in-argument from a value / from a typed ref. */
#define RAY__TY_IN_FUNCS(kind, T)                                                  \
  static inline ray_in_##kind##_t ray__ty_inv_##kind(T v) {                        \
    ray_in_##kind##_t in;                                                       \
    memset(&in, 0, sizeof in);                                                  \
    in.v = v;                                                                   \
    return in;                                                                  \
  }                                                                             \
  static inline ray_in_##kind##_t ray__ty_inref_##kind(ray_ref_##kind##_t r) {     \
    ray_in_##kind##_t in;                                                       \
    memset(&in, 0, sizeof in);                                                  \
    in.ref = r.ref;                                                             \
    in.by_ref = 1;                                                              \
    return in;                                                                  \
  }

/* No-op scratch cleanup for kinds that need none. */
#define RAY__TY_NO_ASC(kind)                              \
  static inline void ray__ty_afin_##kind(char *sc) {      \
    (void)sc;                                          \
  }
#define RAY__TY_NO_DSC(kind)                              \
  static inline void ray__ty_dfin_##kind(char *sc) {      \
    (void)sc;                                          \
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
static inline int ray__ty_dec_str(ray_task_ctx_t *ctx, size_t i, const char **out, ray__ty_dsc_str *sc) {
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
  return ray_ctx_arg_bytes(ctx, i, &out->data, &out->size);
}
static inline int ray__ty_ret_bytes(ray_task_ctx_t *ctx, size_t slot, ray_bytes_t v) {
  if (v.data == NULL && v.size > 0) return RAY_EINVAL;
  if (v.free_fn == NULL) return ray_return_bytes(ctx, slot, v.data, v.size);
  int rc = ray_return_owned(ctx, slot, (void *)(uintptr_t)v.data, v.size, v.free_fn);
  if (rc != 0) v.free_fn((void *)(uintptr_t)v.data); /* ours since the body returned it */
  return rc;
}
/* RAY_PUT(bytes, RAY_BYTES_OWNED(...)) hands the buffer over (on failure
 * the caller keeps it, as with ray_put_owned); RAY_BYTES copies. */
static inline ray_ref_bytes_t ray__ty_put_bytes(ray_bytes_t v) {
  ray_ref_bytes_t r;
  int rc = v.free_fn != NULL
               ? ray_put_owned((void *)(uintptr_t)v.data, v.size, v.free_fn, &r.ref)
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
  if (v != NULL) in.v = *v;
  else in.by_ref = 1; /* in.ref is nil: the call fails with RAY_ENOTFOUND */
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
static inline int ray__ty_dec_msgpack(ray_task_ctx_t *ctx, size_t i, msgpack_object *out, char *sc) {
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

/* ---- User types -------------------------------------------------------------- */

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
#define RAY_TYPE(name, T, number, pack, unpack)                                                 \
  enum {                                                                                        \
    ray__ty_user_tag_##number = RAY_TYPE_USER + (number),                                          \
    ray__ty_tag_##name = RAY_TYPE_USER + (number)                                                  \
  };                                                                                            \
  RAY__TY_REF_TYPE(name, T, RAY_TYPE_USER + (number));                                             \
  RAY__TY_IN_TYPE(name, T);                                                                        \
  typedef T ray__ty_sv_##name;                                                                     \
  typedef T ray__ty_uv_##name;                                                                     \
  typedef ray_ref_##name##_t ray__ty_ur_##name;                                                    \
  typedef T ray__ty_pt_##name;                                                                     \
  typedef T ray__ty_rt_##name;                                                                     \
  typedef msgpack_sbuffer ray__ty_asc_##name;                                                      \
  typedef ray__ty_udsc_t ray__ty_dsc_##name;                                                          \
  static inline int ray__ty_packv_##name(msgpack_packer *pk, const void *v) {                      \
    return (pack)(pk, (const T *)v);                                                            \
  }                                                                                             \
  static inline int ray__ty_unpackv_##name(const msgpack_object *obj, void *out) {                 \
    return (unpack)(obj, (T *)out);                                                             \
  }                                                                                             \
  static inline ray_in_##name##_t ray__ty_inv_##name(T v) {                                        \
    ray_in_##name##_t in;                                                                       \
    memset(&in, 0, sizeof in);                                                                  \
    in.v = v;                                                                                   \
    return in;                                                                                  \
  }                                                                                             \
  static inline ray_in_##name##_t ray__ty_inu_##name(T v) {                                        \
    return ray__ty_inv_##name(v);                                                                  \
  }                                                                                             \
  static inline ray_in_##name##_t ray__ty_inr_##name(ray_ref_##name##_t r) {                       \
    ray_in_##name##_t in;                                                                       \
    memset(&in, 0, sizeof in);                                                                  \
    in.ref = r.ref;                                                                             \
    in.by_ref = 1;                                                                              \
    return in;                                                                                  \
  }                                                                                             \
  static inline int ray__ty_arg_##name(const ray_in_##name##_t *in, ray_arg_t *a,                  \
                                    msgpack_sbuffer *sb) {                                      \
    if (in->by_ref) return ray__ty_arg_ref(in->ref, a);                                            \
    return ray__ty_arg_user(ray__ty_packv_##name, &in->v, a, sb);                                     \
  }                                                                                             \
  static inline void ray__ty_afin_##name(msgpack_sbuffer *sb) {                                    \
    msgpack_sbuffer_destroy(sb);                                                                \
  }                                                                                             \
  static inline int ray__ty_dec_##name(ray_task_ctx_t *ctx, size_t i, T *out, ray__ty_udsc_t *sc) {   \
    return ray__ty_dec_user(ctx, i, (uint32_t)ray__ty_tag_##name, ray__ty_unpackv_##name, out, sc);      \
  }                                                                                             \
  static inline void ray__ty_dfin_##name(ray__ty_udsc_t *sc) {                                        \
    ray__ty_dec_user_fin(sc);                                                                      \
  }                                                                                             \
  static inline int ray__ty_ret_##name(ray_task_ctx_t *ctx, size_t slot, T v) {                    \
    return ray__ty_ret_user(ctx, slot, ray__ty_packv_##name, &v);                                     \
  }                                                                                             \
  static inline ray_ref_##name##_t ray__ty_put_##name(T v) {                                       \
    ray_ref_##name##_t r;                                                                       \
    r.ref = ray__ty_put_user(ray__ty_packv_##name, &v, (uint32_t)ray__ty_tag_##name);                    \
    return r;                                                                                   \
  }                                                                                             \
  static ray__ty_tdesc_t ray__ty_tdesc_##name = {(uint32_t)ray__ty_tag_##name, ray__ty_unpackv_##name,      \
                                           NULL};                                               \
  RAY_TYPED_AT_STARTUP(ray__ty_register_type_##name) {                                             \
    (void)ray__ty_inu_##name;                                                                      \
    (void)ray__ty_inr_##name;                                                                      \
    (void)ray__ty_arg_##name;                                                                      \
    (void)ray__ty_afin_##name;                                                                     \
    (void)ray__ty_dec_##name;                                                                      \
    (void)ray__ty_dfin_##name;                                                                     \
    (void)ray__ty_ret_##name;                                                                      \
    (void)ray__ty_put_##name;                                                                      \
    ray__ty_tdesc_add(&ray__ty_tdesc_##name);                                                         \
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
static inline int ray__ty_unpack_user(int (*unpack)(const msgpack_object *, void *), const void *data,
                                   size_t size, void *out, msgpack_unpacked *u) {
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

/* ---- Put and get ------------------------------------------------------------- */

/* Put `value` (the kind's submit value type: int64_t, double, const char *,
 * ray_bytes_t, const msgpack_object *, or the user type T) into the store
 * and return RAY_REF(kind), or a failed ref (RAY_STATUS): the errors of
 * the core put it calls. Never blocks; thread-safe. */
#define RAY_PUT(kind, value) ray__ty_put_##kind(value)

/* Wait up to timeout_ms for the typed ref `ref` and decode it into *out,
 * chosen by _Generic on the type of `out`: int64_t *, double *, char **
 * (a copy: free it with ray_free), ray_buf_t * (a zero-copy view: release
 * it with ray_buf_release), ray_msgpack_t * (release with
 * ray_msgpack_release), or T * for a user type. `out` must point to the
 * C type of the ref's kind, or it does not compile.
 * Returns 0, a failed ref's own code, or the errors of the core typed gets:
 * RAY_ETYPE (the object's tag is not the kind's: checked before decoding),
 * RAY_EDECODE, RAY_ETIMEDOUT, RAY_ENOTFOUND, RAY_ENOTINIT, or a failed
 * task's code. Blocks up to timeout_ms; thread-safe. */
#define RAY_GET(ref, timeout_ms, out) RAY__TY_GET_(ref, timeout_ms, out)
#define RAY__TY_GET_(r_, t_, o_)                                                                   \
  _Generic((o_), int64_t *: ray__ty_get_i64, double *: ray__ty_get_f64, char **: ray__ty_get_str,         \
           ray_buf_t *: ray__ty_get_bytes, ray_msgpack_t *: ray__ty_get_msgpack,                       \
           default: ray__ty_get_user)(                                                              \
      _Generic((o_), int64_t *: (r_), double *: (r_), char **: (r_), ray_buf_t *: (r_),          \
               ray_msgpack_t *: (r_),                                                            \
               default: ray__ty_uref((r_).ref, sizeof *(r_).ray__ty_tag_,                              \
                                  sizeof((o_) - (r_).ray__ty_p_))),                                 \
      (t_), (o_))

/* ---- Preprocessor toolkit (private) ----------------------------------------- */

#define RAY__TY_CAT(a, b) RAY__TY_CAT_(a, b)
#define RAY__TY_CAT_(a, b) a##b
#define RAY__TY_STRIP(...) __VA_ARGS__
/* m args, with args expanded first; one per nesting level, since a macro
 * cannot expand inside its own expansion. */
#define RAY__TY_APPLY_A(m, args) m args
#define RAY__TY_APPLY_S(m, args) m args
#define RAY__TY_APPLY_M(m, args) m args
#define RAY__TY_APPLY_I(m, args) m args
#define RAY__TY_APPLY_C(m, args) m args
/* RAY__TY_IS_PAREN(x): 1 when x is parenthesised, else 0. */
#define RAY__TY_IS_PAREN(x) RAY__TY_IS_PAREN_CHECK(RAY__TY_IS_PAREN_PROBE x)
#define RAY__TY_IS_PAREN_PROBE(...) ~, 1
#define RAY__TY_IS_PAREN_CHECK(...) RAY__TY_IS_PAREN_CHECK_(__VA_ARGS__, 0, ~)
#define RAY__TY_IS_PAREN_CHECK_(a, b, ...) b
#define RAY__TY_IF(c) RAY__TY_CAT(RAY__TY_IF_, c)
#define RAY__TY_IF_0(t, f) f
#define RAY__TY_IF_1(t, f) t
/* Pick the single-return or the several-returns form for return spec R. */
#define RAY__TY_RSEL(R, single, several) RAY__TY_IF(RAY__TY_IS_PAREN(R))(several, single)
/* Counting: RAY__TY_NARGS(a, b, c) is 3 (1 to 24 arguments). */
#define RAY__TY_NARGS(...) RAY__TY_NARGS_(__VA_ARGS__, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, ~)
#define RAY__TY_NARGS_(a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23, a24, n, ...) n
/* RAY__TY_DEC1_n is n - 1. */
#define RAY__TY_DEC1_1 0
#define RAY__TY_DEC1_2 1
#define RAY__TY_DEC1_3 2
#define RAY__TY_DEC1_4 3
#define RAY__TY_DEC1_5 4
#define RAY__TY_DEC1_6 5
#define RAY__TY_DEC1_7 6
#define RAY__TY_DEC1_8 7
#define RAY__TY_DEC1_9 8
#define RAY__TY_DEC1_10 9
#define RAY__TY_DEC1_11 10
#define RAY__TY_DEC1_12 11
#define RAY__TY_DEC1_13 12
#define RAY__TY_DEC1_14 13
#define RAY__TY_DEC1_15 14
#define RAY__TY_DEC1_16 15
#define RAY__TY_DEC1_17 16
#define RAY__TY_DEC1_18 17
#define RAY__TY_DEC1_19 18
#define RAY__TY_DEC1_20 19
#define RAY__TY_DEC1_21 20
#define RAY__TY_DEC1_22 21
#define RAY__TY_DEC1_23 22
#define RAY__TY_DEC1_24 23
/* RAY__TY_DEC2_n is n - 2. */
#define RAY__TY_DEC2_2 0
#define RAY__TY_DEC2_3 1
#define RAY__TY_DEC2_4 2
#define RAY__TY_DEC2_5 3
#define RAY__TY_DEC2_6 4
#define RAY__TY_DEC2_7 5
#define RAY__TY_DEC2_8 6
#define RAY__TY_DEC2_9 7
#define RAY__TY_DEC2_10 8
#define RAY__TY_DEC2_11 9
#define RAY__TY_DEC2_12 10
#define RAY__TY_DEC2_13 11
#define RAY__TY_DEC2_14 12
#define RAY__TY_DEC2_15 13
#define RAY__TY_DEC2_16 14
#define RAY__TY_DEC2_17 15
#define RAY__TY_DEC2_18 16
#define RAY__TY_DEC2_19 17
#define RAY__TY_DEC2_20 18
#define RAY__TY_DEC2_21 19
#define RAY__TY_DEC2_22 20
#define RAY__TY_DEC2_23 21
#define RAY__TY_DEC2_24 22
/* RAY__TY_DEC3_n is n - 3. */
#define RAY__TY_DEC3_3 0
#define RAY__TY_DEC3_4 1
#define RAY__TY_DEC3_5 2
#define RAY__TY_DEC3_6 3
#define RAY__TY_DEC3_7 4
#define RAY__TY_DEC3_8 5
#define RAY__TY_DEC3_9 6
#define RAY__TY_DEC3_10 7
#define RAY__TY_DEC3_11 8
#define RAY__TY_DEC3_12 9
#define RAY__TY_DEC3_13 10
#define RAY__TY_DEC3_14 11
#define RAY__TY_DEC3_15 12
#define RAY__TY_DEC3_16 13
#define RAY__TY_DEC3_17 14
#define RAY__TY_DEC3_18 15
#define RAY__TY_DEC3_19 16
#define RAY__TY_DEC3_20 17
#define RAY__TY_DEC3_21 18
#define RAY__TY_DEC3_22 19
#define RAY__TY_DEC3_23 20
#define RAY__TY_DEC3_24 21
/* RAY__TY_MAP_n(M, c, x1, ..., xn, ...): M(c, 1, x1) ... M(c, n, xn); the rest is ignored. */
#define RAY__TY_MAP_0(M, c, ...) 
#define RAY__TY_MAP_1(M, c, x1, ...) M(c, 1, x1)
#define RAY__TY_MAP_2(M, c, x1, x2, ...) M(c, 1, x1) M(c, 2, x2)
#define RAY__TY_MAP_3(M, c, x1, x2, x3, ...) M(c, 1, x1) M(c, 2, x2) M(c, 3, x3)
#define RAY__TY_MAP_4(M, c, x1, x2, x3, x4, ...) M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4)
#define RAY__TY_MAP_5(M, c, x1, x2, x3, x4, x5, ...) M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4) M(c, 5, x5)
#define RAY__TY_MAP_6(M, c, x1, x2, x3, x4, x5, x6, ...) M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4) M(c, 5, x5) M(c, 6, x6)
#define RAY__TY_MAP_7(M, c, x1, x2, x3, x4, x5, x6, x7, ...) M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4) M(c, 5, x5) M(c, 6, x6) M(c, 7, x7)
#define RAY__TY_MAP_8(M, c, x1, x2, x3, x4, x5, x6, x7, x8, ...) M(c, 1, x1) M(c, 2, x2) M(c, 3, x3) M(c, 4, x4) M(c, 5, x5) M(c, 6, x6) M(c, 7, x7) M(c, 8, x8)
/* RAY__TY_MAPC_n(M, c, z, x1, ..., xn, ...): M(c, 1, x1), ..., M(c, n, xn), or z when n is 0. */
#define RAY__TY_MAPC_0(M, c, z, ...) z
#define RAY__TY_MAPC_1(M, c, z, x1, ...) M(c, 1, x1)
#define RAY__TY_MAPC_2(M, c, z, x1, x2, ...) M(c, 1, x1), M(c, 2, x2)
#define RAY__TY_MAPC_3(M, c, z, x1, x2, x3, ...) M(c, 1, x1), M(c, 2, x2), M(c, 3, x3)
#define RAY__TY_MAPC_4(M, c, z, x1, x2, x3, x4, ...) M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4)
#define RAY__TY_MAPC_5(M, c, z, x1, x2, x3, x4, x5, ...) M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4), M(c, 5, x5)
#define RAY__TY_MAPC_6(M, c, z, x1, x2, x3, x4, x5, x6, ...) M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4), M(c, 5, x5), M(c, 6, x6)
#define RAY__TY_MAPC_7(M, c, z, x1, x2, x3, x4, x5, x6, x7, ...) M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4), M(c, 5, x5), M(c, 6, x6), M(c, 7, x7)
#define RAY__TY_MAPC_8(M, c, z, x1, x2, x3, x4, x5, x6, x7, x8, ...) M(c, 1, x1), M(c, 2, x2), M(c, 3, x3), M(c, 4, x4), M(c, 5, x5), M(c, 6, x6), M(c, 7, x7), M(c, 8, x8)
/* RAY__TY_CALL_n(opts, f, a1, ..., an): the typed submit with each argument converted. */
#define RAY__TY_CALL_0(o, f) f##__submit(o)
#define RAY__TY_CALL_1(o, f, a1) f##__submit(o, RAY__TY_IN(f, 1, a1))
#define RAY__TY_CALL_2(o, f, a1, a2) f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2))
#define RAY__TY_CALL_3(o, f, a1, a2, a3) f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3))
#define RAY__TY_CALL_4(o, f, a1, a2, a3, a4) f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), RAY__TY_IN(f, 4, a4))
#define RAY__TY_CALL_5(o, f, a1, a2, a3, a4, a5) f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), RAY__TY_IN(f, 4, a4), RAY__TY_IN(f, 5, a5))
#define RAY__TY_CALL_6(o, f, a1, a2, a3, a4, a5, a6) f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), RAY__TY_IN(f, 4, a4), RAY__TY_IN(f, 5, a5), RAY__TY_IN(f, 6, a6))
#define RAY__TY_CALL_7(o, f, a1, a2, a3, a4, a5, a6, a7) f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), RAY__TY_IN(f, 4, a4), RAY__TY_IN(f, 5, a5), RAY__TY_IN(f, 6, a6), RAY__TY_IN(f, 7, a7))
#define RAY__TY_CALL_8(o, f, a1, a2, a3, a4, a5, a6, a7, a8) f##__submit(o, RAY__TY_IN(f, 1, a1), RAY__TY_IN(f, 2, a2), RAY__TY_IN(f, 3, a3), RAY__TY_IN(f, 4, a4), RAY__TY_IN(f, 5, a5), RAY__TY_IN(f, 6, a6), RAY__TY_IN(f, 7, a7), RAY__TY_IN(f, 8, a8))
/* Padding for the argument slots of a declaration: one (kind, name) per slot. */
#define RAY__TY_PADS (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), (ray__ty_none, ray__ty_pad), ~
/* RAY__TY_EACH(W, c, n, (item...)): W(c, i, kind, name) for the first n items,
 * each a (kind, name) pair; RAY__TY_EACHC separates them with commas and gives
 * z when n is 0. */
#define RAY__TY_EACH(W, c, n, group) \
  RAY__TY_APPLY_M(RAY__TY_CAT(RAY__TY_MAP_, n), (RAY__TY_ITEM, (W, c), RAY__TY_STRIP group))
#define RAY__TY_EACHC(W, c, z, n, group) \
  RAY__TY_APPLY_M(RAY__TY_CAT(RAY__TY_MAPC_, n), (RAY__TY_ITEM, (W, c), z, RAY__TY_STRIP group))
#define RAY__TY_ITEM(wc, i, p) RAY__TY_APPLY_I(RAY__TY_ITEM_, (RAY__TY_STRIP wc, i, RAY__TY_STRIP p))
#define RAY__TY_ITEM_(W, c, i, kind, name) W(c, i, kind, name)

/* Per-parameter pieces (W(c, i, kind, name); i counts from 1). */
/* the body's parameter list */
#define RAY__TY_W_BPARAM(c, i, K, n) ray__ty_pt_##K n
#define RAY__TY_W_BPARAMC(c, i, K, n) , ray__ty_pt_##K n
/* the wrapper: declare, decode, pass to the body, clean up */
#define RAY__TY_W_DECL(c, i, K, n)              \
  ray__ty_pt_##K ray__ty_a##i;                     \
  ray__ty_dsc_##K ray__ty_s##i;                    \
  memset(&ray__ty_a##i, 0, sizeof ray__ty_a##i);   \
  memset(&ray__ty_s##i, 0, sizeof ray__ty_s##i);
#define RAY__TY_W_DEC(c, i, K, n)                                                \
  if (ray__ty_rc == 0) {                                                         \
    ray__ty_rc = ray__ty_dec_##K(ray__ty_ctx, i - 1, &ray__ty_a##i, &ray__ty_s##i);          \
    if (ray__ty_rc == 0)                                                         \
      ray__ty_ok = i;                                                            \
    else                                                                      \
      ray__ty_bad = #n;                                                          \
  }
#define RAY__TY_W_CARG(c, i, K, n) ray__ty_a##i
#define RAY__TY_W_CARGC(c, i, K, n) , ray__ty_a##i
#define RAY__TY_W_FIN(c, i, K, n) \
  if (ray__ty_ok >= i) ray__ty_dfin_##K(&ray__ty_s##i);
/* the typed submit: its parameters, the core arguments it builds */
#define RAY__TY_W_SPARAM(c, i, K, n) , ray_in_##K##_t ray__ty_a##i
#define RAY__TY_W_SDECL(c, i, K, n) \
  ray__ty_asc_##K ray__ty_s##i;        \
  memset(&ray__ty_s##i, 0, sizeof ray__ty_s##i);
#define RAY__TY_W_SBUILD(c, i, K, n)                                             \
  if (ray__ty_rc == 0) {                                                         \
    ray__ty_rc = ray__ty_arg_##K(&ray__ty_a##i, &ray__ty_args[i - 1], &ray__ty_s##i);        \
    if (ray__ty_rc == 0) ray__ty_built = i;                                         \
  }
#define RAY__TY_W_SFIN(c, i, K, n) \
  if (ray__ty_built >= i) ray__ty_afin_##K(&ray__ty_s##i);
/* the plain-value function */
#define RAY__TY_W_PPARAM(c, i, K, n) ray__ty_sv_##K ray__ty_v##i
#define RAY__TY_W_PPARAMC(c, i, K, n) , ray__ty_sv_##K ray__ty_v##i
#define RAY__TY_W_PARG(c, i, K, n) , ray__ty_inv_##K(ray__ty_v##i)
/* RAY_CALL slot i of declaration c: the extra types it takes (a user
 * type's value and ref, a class handle) and their converters. */
#define RAY__TY_W_SLOT(c, i, K, n)                                               \
  typedef ray__ty_uv_##K c##__uv##i;                                             \
  typedef ray__ty_ur_##K c##__ur##i;                                             \
  static inline ray_in_##K##_t c##__inu##i(c##__uv##i ray__ty_x) {               \
    return ray__ty_inu_##K(ray__ty_x);                                              \
  }                                                                           \
  static inline ray_in_##K##_t c##__inr##i(c##__ur##i ray__ty_x) {               \
    return ray__ty_inr_##K(ray__ty_x);                                              \
  }

/* Mark the slot converters used (Clang warns about unused static inline
 * functions of the main file; a (void) reference in a used function is a use). */
#define RAY__TY_W_SLOTUSE(c, i, K, n) \
  (void)c##__inu##i;               \
  (void)c##__inr##i;

/* Per-return pieces: one return `R` (a kind), or several `((kind, name)...)`. */
#define RAY__TY_NRETS(R) RAY__TY_NARGS(RAY__TY_STRIP R)
#define RAY__TY_S_TYPES(f, R)               \
  typedef ray__ty_rt_##R f##__result;       \
  typedef ray_ref_##R##_t f##__refs;
#define RAY__TY_M_TYPES(f, R)                                                      \
  typedef struct {                                                              \
    RAY__TY_EACH(RAY__TY_W_RFIELD, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~))               \
  } f##__result;                                                                \
  typedef struct {                                                              \
    RAY__TY_EACH(RAY__TY_W_RREF, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~))                 \
  } f##__refs;
#define RAY__TY_W_RFIELD(c, i, K, n) ray__ty_rt_##K n;
#define RAY__TY_W_RREF(c, i, K, n) ray_ref_##K##_t n;
#define RAY__TY_S_TAGS(R) (uint32_t) ray__ty_tag_##R
#define RAY__TY_M_TAGS(R) RAY__TY_EACH(RAY__TY_W_RTAG, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~))
#define RAY__TY_W_RTAG(c, i, K, n) (uint32_t) ray__ty_tag_##K,
/* in the wrapper: store the body's result(s); every one is consumed */
#define RAY__TY_S_SET(R) ray__ty_rc = ray__ty_ret_##R(ray__ty_ctx, 0, ray__ty_res);
#define RAY__TY_M_SET(R)                                                           \
  {                                                                             \
    int ray__ty_r2;                                                                \
    RAY__TY_EACH(RAY__TY_W_RSET, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~))                 \
  }
#define RAY__TY_W_RSET(c, i, K, n)                                 \
  ray__ty_r2 = ray__ty_ret_##K(ray__ty_ctx, i - 1, ray__ty_res.n);          \
  if (ray__ty_rc == 0) ray__ty_rc = ray__ty_r2;
/* in the typed submit: the typed refs, or failed ones */
#define RAY__TY_S_REFS(R) ray__ty_refs.ref = ray__ty_rc == 0 ? ray__ty_out[0] : ray__ty_ref_fail(ray__ty_rc);
#define RAY__TY_M_REFS(R)                                                          \
  {                                                                             \
    ray_ref_t ray__ty_f = ray__ty_ref_fail(ray__ty_rc);                                  \
    RAY__TY_EACH(RAY__TY_W_RREFSET, ~, RAY__TY_NRETS(R), (RAY__TY_STRIP R, ~))              \
  }
#define RAY__TY_W_RREFSET(c, i, K, n) ray__ty_refs.n.ref = ray__ty_rc == 0 ? ray__ty_out[i - 1] : ray__ty_f;

/* ---- Remote functions ---------------------------------------------------------- */

/* RAY_FUNCTION(ret, f, (kind, param)...) { body }
 *
 * Declares the remote function f, whose body follows as a C function body:
 * it receives each param as its kind's C type and returns ret's (for
 * several returns, RAY_RESULT(f), a struct with a field per name). It may
 * call ray_fail(RAY_CTX, ...) and the rest of the core API, and submit and
 * get other tasks (nested gets never deadlock the pool). The macro defines:
 *   - the body, as a static function;
 *   - a wrapper that decodes the arguments (a failure fails the task with
 *     a message naming the argument), runs the body and stores its results;
 *   - a static descriptor named "f", registered before main() for every
 *     later ray_init (ray_init fails with RAY_ENAMEEXISTS if two functions
 *     share a name);
 *   - the typed submit: RAY_CALL(f, ...) / RAY_CALL_OPTS(&opts, f, ...)
 *     (ray_task_opts_t: num_returns, max_retries, retry_on_error, name),
 *     and the plain function `RAY_REFS(f) f(values...)`.
 * Up to RAY_TYPED_MAX_PARAMS params; a function of no params is
 * RAY_FUNCTION(ret, f). A submit returns at once (never blocks) with the
 * result ref(s), each failed with the submit's code when it fails: the
 * errors of ray_task_submit, RAY_ENOTINIT before ray_init, a failed ref or
 * handle argument's own code, RAY_EINVAL for a user value that does not
 * pack, a NULL string or NULL bytes of non-zero size, RAY_ENOTFOUND for a
 * NULL msgpack_object pointer. Thread-safe, from host threads, tasks and
 * actors. */
#define RAY_FUNCTION(...) \
  RAY__TY_APPLY_A(RAY__TY_FUNCTION_, (RAY__TY_CAT(RAY__TY_DEC2_, RAY__TY_NARGS(__VA_ARGS__)), __VA_ARGS__, RAY__TY_PADS))
#define RAY__TY_FUNCTION_(n, R, f, ...)                                                        \
  RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_TYPES, RAY__TY_M_TYPES), (f, R))                            \
  RAY__TY_EACH(RAY__TY_W_SLOT, f, 8, (__VA_ARGS__))                                               \
  static f##__result f##__body(RAY__TY_EACHC(RAY__TY_W_BPARAM, ~, void, n, (__VA_ARGS__)));        \
  static ray_function_t f##__fn;                                                            \
  static const uint32_t f##__rtypes[] = {                                                   \
      RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_TAGS, RAY__TY_M_TAGS), (R))};                           \
  static int f##__wrap(ray_task_ctx_t *ray__ty_ctx, void *ray__ty_arg) {                          \
    int ray__ty_rc = 0, ray__ty_ok = 0;                                                           \
    const char *ray__ty_bad = "";                                                              \
    (void)ray__ty_arg;                                                                         \
    (void)ray__ty_ok;                                                                          \
    (void)ray__ty_bad;                                                                         \
    RAY__TY_EACH(RAY__TY_W_DECL, ~, n, (__VA_ARGS__))                                             \
    RAY__TY_EACH(RAY__TY_W_DEC, ~, n, (__VA_ARGS__))                                              \
    if (ray__ty_rc == 0) {                                                                     \
      ray_task_ctx_t *ray__ty_prev = ray__ty_ctx_enter(ray__ty_ctx);                                 \
      f##__result ray__ty_res = f##__body(RAY__TY_EACHC(RAY__TY_W_CARG, ~, , n, (__VA_ARGS__)));     \
      ray__ty_ctx_leave(ray__ty_prev);                                                            \
      RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_SET, RAY__TY_M_SET), (R))                               \
    } else {                                                                                \
      ray__ty_rc = ray__ty_arg_fail(ray__ty_ctx, ray__ty_rc, #f, ray__ty_bad);                             \
    }                                                                                       \
    RAY__TY_EACH(RAY__TY_W_FIN, ~, n, (__VA_ARGS__))                                              \
    return ray__ty_rc;                                                                         \
  }                                                                                         \
  static inline f##__refs f##__submit(                                                      \
      const ray_task_opts_t *ray__ty_opts RAY__TY_EACH(RAY__TY_W_SPARAM, ~, n, (__VA_ARGS__))) {     \
    ray_arg_t ray__ty_args[n + 1];                                                             \
    ray_ref_t ray__ty_out[sizeof f##__rtypes / sizeof f##__rtypes[0]];                         \
    int ray__ty_rc = 0, ray__ty_built = 0;                                                        \
    f##__refs ray__ty_refs;                                                                    \
    (void)ray__ty_built;                                                                       \
    RAY__TY_EACH(RAY__TY_W_SDECL, ~, n, (__VA_ARGS__))                                            \
    RAY__TY_EACH(RAY__TY_W_SBUILD, ~, n, (__VA_ARGS__))                                           \
    if (ray__ty_rc == 0) ray__ty_rc = ray_task_submit(f##__fn, n > 0 ? ray__ty_args : NULL, n, ray__ty_opts, ray__ty_out); \
    RAY__TY_EACH(RAY__TY_W_SFIN, ~, n, (__VA_ARGS__))                                             \
    RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_REFS, RAY__TY_M_REFS), (R))                               \
    return ray__ty_refs;                                                                       \
  }                                                                                         \
  static inline f##__refs f(RAY__TY_EACHC(RAY__TY_W_PPARAM, ~, void, n, (__VA_ARGS__))) {         \
    return f##__submit(NULL RAY__TY_EACH(RAY__TY_W_PARG, ~, n, (__VA_ARGS__)));                   \
  }                                                                                         \
  static ray_static_function_t f##__desc = {                                                \
      #f, f##__wrap, NULL, f##__rtypes, sizeof f##__rtypes / sizeof f##__rtypes[0],         \
      &f##__fn, NULL};                                                                      \
  RAY_TYPED_AT_STARTUP(f##__register) {                                                     \
    (void)f;                                                                                \
    RAY__TY_EACH(RAY__TY_W_SLOTUSE, f, 8, (__VA_ARGS__))                                          \
    ray_static_function_add(&f##__desc);                                                    \
  }                                                                                         \
  static f##__result f##__body(RAY__TY_EACHC(RAY__TY_W_BPARAM, ~, void, n, (__VA_ARGS__)))

/* ---- Actors ---------------------------------------------------------------------- */

/* RAY_ACTOR(Class, State)
 *
 * Declares the actor class Class whose state is a State (a complete type),
 * and defines:
 *   - `Class`, the handle type of its actors: a small value, distinct per
 *     class, so a method of another class does not compile on it. `.actor`
 *     is the ray_actor_t for the core API (ray_actor_release, ray_actor_kill,
 *     ray_arg_actor ...); RAY_STATUS(handle) is 0 or the code a failed
 *     creation returned. The caller owns one handle reference, as in the
 *     core API.
 *   - the class table, named "Class", filled before main() by the
 *     RAY_METHODs that follow (no list kept by hand);
 *   - the kind `Class`, so handles can be parameters of functions and
 *     methods (passed with ray_arg_actor: the callee borrows the handle for
 *     the call; it must retain it to keep it);
 *   - RAY_ACTOR_GET(Class, name) and RAY_ACTOR_CAST(Class, raw).
 * The layer allocates the state (zeroed, with calloc) before the
 * constructor body runs and frees it (with free) after the destructor body,
 * if any. A class needs exactly one RAY_CONSTRUCTOR or
 * RAY_DEFAULT_CONSTRUCTOR (the link fails without it), and may have any
 * number of RAY_METHODs (up to RAY_TYPED_MAX_METHODS - 1) and one
 * RAY_DESTRUCTOR. Declare the class's parts in one .c file. */
#define RAY_ACTOR(Class, State)                                                               \
  typedef State Class##__state;                                                               \
  typedef union Class {                                                                       \
    ray_actor_t actor;                                                                        \
    ray__ty_status_t ray__ty_st_;                                                                   \
  } Class;                                                                                    \
  typedef struct {                                                                            \
    Class v;                                                                                  \
  } ray_in_##Class##_t;                                                                       \
  typedef Class ray__ty_sv_##Class;                                                              \
  typedef Class ray__ty_uv_##Class;                                                              \
  typedef ray__ty_nour ray__ty_ur_##Class;                                                          \
  typedef Class ray__ty_pt_##Class;                                                              \
  typedef char ray__ty_asc_##Class;                                                              \
  typedef char ray__ty_dsc_##Class;                                                              \
  static inline ray_in_##Class##_t ray__ty_inv_##Class(Class h) {                                \
    ray_in_##Class##_t in;                                                                    \
    in.v = h;                                                                                 \
    return in;                                                                                \
  }                                                                                           \
  static inline ray_in_##Class##_t ray__ty_inu_##Class(Class h) {                                \
    return ray__ty_inv_##Class(h);                                                               \
  }                                                                                           \
  static inline ray_in_##Class##_t ray__ty_inr_##Class(ray__ty_nour x) {                            \
    ray_in_##Class##_t in;                                                                    \
    (void)x;                                                                                  \
    memset(&in, 0, sizeof in);                                                                \
    return in;                                                                                \
  }                                                                                           \
  static inline int ray__ty_arg_##Class(const ray_in_##Class##_t *in, ray_arg_t *a, char *sc) {  \
    (void)sc;                                                                                 \
    return ray__ty_arg_actor(in->v.ray__ty_st_, a);                                                 \
  }                                                                                           \
  static inline void ray__ty_afin_##Class(char *sc) {                                            \
    (void)sc;                                                                                 \
  }                                                                                           \
  static inline int ray__ty_dec_##Class(ray_task_ctx_t *ctx, size_t i, Class *out, char *sc) {   \
    (void)sc;                                                                                 \
    return ray__ty_dec_actor(ctx, i, &out->ray__ty_st_);                                            \
  }                                                                                           \
  static inline void ray__ty_dfin_##Class(char *sc) {                                            \
    (void)sc;                                                                                 \
  }                                                                                           \
  static ray_method_def_t Class##__methods[RAY_TYPED_MAX_METHODS];                            \
  static void (*Class##__user_dtor)(Class##__state * self);                                   \
  static int Class##__ctor(ray_task_ctx_t *ray__ty_ctx, void **ray__ty_state);                      \
  static void Class##__dtor(void *ray__ty_state) {                                               \
    if (Class##__user_dtor != NULL) Class##__user_dtor((Class##__state *)ray__ty_state);         \
    free(ray__ty_state);                                                                         \
  }                                                                                           \
  static ray_actor_class_t Class##__class = {#Class, Class##__ctor, Class##__dtor,            \
                                             Class##__methods, 0};                            \
  static char Class##__marker[64];                                                            \
  static inline Class Class##__cast(ray_actor_t ray__ty_raw);                                    \
  static inline Class Class##__get(const char *ray__ty_name);                                    \
  RAY_TYPED_AT_STARTUP(Class##__register) {                                                   \
    (void)ray__ty_inv_##Class;                                                                   \
    (void)ray__ty_inu_##Class;                                                                   \
    (void)ray__ty_inr_##Class;                                                                   \
    (void)ray__ty_arg_##Class;                                                                   \
    (void)ray__ty_afin_##Class;                                                                  \
    (void)ray__ty_dec_##Class;                                                                   \
    (void)ray__ty_dfin_##Class;                                                                  \
    (void)Class##__cast;                                                                      \
    (void)Class##__get;                                                                       \
    ray__ty_class_marker(&Class##__class, Class##__methods, Class##__marker,                     \
                      sizeof Class##__marker);                                                \
  }                                                                                           \
  static inline Class Class##__cast(ray_actor_t ray__ty_raw) {                                   \
    Class ray__ty_h;                                                                             \
    ray__ty_h.ray__ty_st_ = ray__ty_actor_check(ray__ty_raw, Class##__marker);                            \
    return ray__ty_h;                                                                            \
  }                                                                                           \
  static inline Class Class##__get(const char *ray__ty_name) {                                   \
    Class ray__ty_h;                                                                             \
    ray__ty_h.ray__ty_st_ = ray__ty_actor_lookup(ray__ty_name, Class##__marker);                          \
    return ray__ty_h;                                                                            \
  }

/* RAY_CONSTRUCTOR(Class, (kind, param)...) { body }
 *
 * The constructor of Class. Its body gets `self` (a Class's State *, zeroed)
 * and the params, and returns 0, or a negative RAY_E* code to fail (say
 * `return ray_fail(RAY_CTX, RAY_EINVAL, "...")`): the actor then dies, its
 * calls fail with RAY_EACTORDIED caused by that error, and the state is
 * freed without running the destructor body. Defines the typed creation:
 * `Class Class_new(values...)`, RAY_CALL(Class_new, ...) and
 * RAY_CALL_OPTS(&actor_opts, Class_new, ...) (ray_actor_opts_t: name,
 * get_if_exists, max_restarts, max_concurrency, detached ...). Creation
 * returns the handle at once; the constructor runs on the pool when its
 * ref arguments are ready, and calls queue behind it. A failed creation
 * returns a failed handle (RAY_STATUS): the errors of ray_actor_create. */
#define RAY_CONSTRUCTOR(...) \
  RAY__TY_APPLY_A(RAY__TY_CONSTRUCTOR_, (RAY__TY_CAT(RAY__TY_DEC1_, RAY__TY_NARGS(__VA_ARGS__)), __VA_ARGS__, RAY__TY_PADS))
#define RAY__TY_CONSTRUCTOR_(n, Class, ...)                                                      \
  RAY__TY_EACH(RAY__TY_W_SLOT, Class##_new, 8, (__VA_ARGS__))                                       \
  static int Class##__ctor_body(Class##__state *self RAY__TY_EACH(RAY__TY_W_BPARAMC, ~, n, (__VA_ARGS__))); \
  static inline Class Class##_new__submit(                                                    \
      const ray_actor_opts_t *ray__ty_opts RAY__TY_EACH(RAY__TY_W_SPARAM, ~, n, (__VA_ARGS__))) {      \
    ray_arg_t ray__ty_args[n + 1];                                                               \
    int ray__ty_rc = 0, ray__ty_built = 0;                                                          \
    ray_actor_t ray__ty_raw = {0};                                                               \
    Class ray__ty_h;                                                                             \
    (void)ray__ty_built;                                                                         \
    RAY__TY_EACH(RAY__TY_W_SDECL, ~, n, (__VA_ARGS__))                                              \
    RAY__TY_EACH(RAY__TY_W_SBUILD, ~, n, (__VA_ARGS__))                                             \
    if (ray__ty_rc == 0)                                                                         \
      ray__ty_rc = ray_actor_create(&Class##__class, n > 0 ? ray__ty_args : NULL, n, ray__ty_opts, &ray__ty_raw); \
    RAY__TY_EACH(RAY__TY_W_SFIN, ~, n, (__VA_ARGS__))                                               \
    ray__ty_h.ray__ty_st_ = ray__ty_rc == 0 ? ray__ty_status_ok(ray__ty_raw.id) : ray__ty_status_fail(ray__ty_rc); \
    return ray__ty_h;                                                                            \
  }                                                                                           \
  static inline Class Class##_new(RAY__TY_EACHC(RAY__TY_W_PPARAM, ~, void, n, (__VA_ARGS__))) {     \
    return Class##_new__submit(NULL RAY__TY_EACH(RAY__TY_W_PARG, ~, n, (__VA_ARGS__)));             \
  }                                                                                           \
  static int Class##__ctor(ray_task_ctx_t *ray__ty_ctx, void **ray__ty_state) {                     \
    int ray__ty_rc = 0, ray__ty_ok = 0;                                                             \
    const char *ray__ty_bad = "";                                                                \
    Class##__state *ray__ty_self = (Class##__state *)calloc(1, sizeof *ray__ty_self);               \
    (void)ray__ty_ok;                                                                            \
    (void)ray__ty_bad;                                                                           \
    (void)Class##_new;                                                                        \
    RAY__TY_EACH(RAY__TY_W_SLOTUSE, Class##_new, 8, (__VA_ARGS__))                                  \
    if (ray__ty_self == NULL) return ray_fail(ray__ty_ctx, RAY_ENOMEM, "%s: no memory", #Class);    \
    RAY__TY_EACH(RAY__TY_W_DECL, ~, n, (__VA_ARGS__))                                               \
    RAY__TY_EACH(RAY__TY_W_DEC, ~, n, (__VA_ARGS__))                                                \
    if (ray__ty_rc == 0) {                                                                       \
      ray_task_ctx_t *ray__ty_prev = ray__ty_ctx_enter(ray__ty_ctx);                                   \
      ray__ty_rc = Class##__ctor_body(ray__ty_self RAY__TY_EACH(RAY__TY_W_CARGC, ~, n, (__VA_ARGS__)));   \
      ray__ty_ctx_leave(ray__ty_prev);                                                              \
    } else {                                                                                  \
      ray__ty_rc = ray__ty_arg_fail(ray__ty_ctx, ray__ty_rc, #Class ".__init__", ray__ty_bad);               \
    }                                                                                         \
    RAY__TY_EACH(RAY__TY_W_FIN, ~, n, (__VA_ARGS__))                                                \
    if (ray__ty_rc != 0) {                                                                       \
      free(ray__ty_self);                                                                        \
      return ray__ty_rc;                                                                         \
    }                                                                                         \
    *ray__ty_state = ray__ty_self;                                                                  \
    return 0;                                                                                 \
  }                                                                                           \
  static int Class##__ctor_body(Class##__state *self RAY__TY_EACH(RAY__TY_W_BPARAMC, ~, n, (__VA_ARGS__)))

/* RAY_DEFAULT_CONSTRUCTOR(Class): a constructor with no parameters that
 * leaves the state zeroed (Ray's class without __init__), in place of a
 * RAY_CONSTRUCTOR. Class_new() then takes no arguments. */
#define RAY_DEFAULT_CONSTRUCTOR(Class) \
  RAY_CONSTRUCTOR(Class) {             \
    (void)self;                        \
    return 0;                          \
  }

/* RAY_METHOD(Class, ret, m, (kind, param)...) { body }
 *
 * The method m of Class. Its body gets `self` (the actor's State *) and the
 * params, and returns as a function body does; calls of one actor run one
 * at a time (unless max_concurrency > 1), in submission order per caller,
 * so the body owns *self while it runs. Defines the typed call
 * `RAY_REFS(Class_m) Class_m(Class handle, values...)`, RAY_CALL(Class_m,
 * handle, ...) and RAY_CALL_OPTS(&task_opts, Class_m, handle, ...), which
 * call by method index (resolved before main). A call returns at once; a
 * failed handle or argument gives failed refs (RAY_STATUS), as do the
 * errors of ray_actor_call_id; a call to a dead actor gives refs that fail
 * with RAY_EACTORDIED. Up to RAY_TYPED_MAX_PARAMS - 1 params. */
#define RAY_METHOD(...) \
  RAY__TY_APPLY_A(RAY__TY_METHOD_, (RAY__TY_CAT(RAY__TY_DEC3_, RAY__TY_NARGS(__VA_ARGS__)), __VA_ARGS__, RAY__TY_PADS))
#define RAY__TY_METHOD_(n, Class, R, m, ...)                                                     \
  RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_TYPES, RAY__TY_M_TYPES), (Class##_##m, R))                    \
  RAY__TY_EACH(RAY__TY_W_SLOT, Class##_##m, 8, ((Class, ray__ty_self), __VA_ARGS__))                   \
  static Class##_##m##__result Class##_##m##__body(                                           \
      Class##__state *self RAY__TY_EACH(RAY__TY_W_BPARAMC, ~, n, (__VA_ARGS__)));                   \
  static const uint32_t Class##_##m##__rtypes[] = {                                           \
      RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_TAGS, RAY__TY_M_TAGS), (R))};                             \
  static uint32_t Class##_##m##__id = UINT32_MAX;                                             \
  static int Class##_##m##__wrap(ray_task_ctx_t *ray__ty_ctx, void *ray__ty_state) {                \
    int ray__ty_rc = 0, ray__ty_ok = 0;                                                             \
    const char *ray__ty_bad = "";                                                                \
    (void)ray__ty_ok;                                                                            \
    (void)ray__ty_bad;                                                                           \
    RAY__TY_EACH(RAY__TY_W_DECL, ~, n, (__VA_ARGS__))                                               \
    RAY__TY_EACH(RAY__TY_W_DEC, ~, n, (__VA_ARGS__))                                                \
    if (ray__ty_rc == 0) {                                                                       \
      ray_task_ctx_t *ray__ty_prev = ray__ty_ctx_enter(ray__ty_ctx);                                   \
      Class##_##m##__result ray__ty_res = Class##_##m##__body(                                   \
          (Class##__state *)ray__ty_state RAY__TY_EACH(RAY__TY_W_CARGC, ~, n, (__VA_ARGS__)));         \
      ray__ty_ctx_leave(ray__ty_prev);                                                              \
      RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_SET, RAY__TY_M_SET), (R))                                 \
    } else {                                                                                  \
      ray__ty_rc = ray__ty_arg_fail(ray__ty_ctx, ray__ty_rc, #Class "." #m, ray__ty_bad);                    \
    }                                                                                         \
    RAY__TY_EACH(RAY__TY_W_FIN, ~, n, (__VA_ARGS__))                                                \
    return ray__ty_rc;                                                                           \
  }                                                                                           \
  static inline Class##_##m##__refs Class##_##m##__submit(                                    \
      const ray_task_opts_t *ray__ty_opts,                                                       \
      ray_in_##Class##_t ray__ty_h RAY__TY_EACH(RAY__TY_W_SPARAM, ~, n, (__VA_ARGS__))) {              \
    ray_arg_t ray__ty_args[n + 1];                                                               \
    ray_ref_t ray__ty_out[sizeof Class##_##m##__rtypes / sizeof Class##_##m##__rtypes[0]];       \
    int ray__ty_rc = ray__ty_status_code(ray__ty_h.v.ray__ty_st_), ray__ty_built = 0;                        \
    Class##_##m##__refs ray__ty_refs;                                                            \
    (void)ray__ty_built;                                                                         \
    RAY__TY_EACH(RAY__TY_W_SDECL, ~, n, (__VA_ARGS__))                                              \
    RAY__TY_EACH(RAY__TY_W_SBUILD, ~, n, (__VA_ARGS__))                                             \
    if (ray__ty_rc == 0)                                                                         \
      ray__ty_rc = ray__ty_method_call(ray__ty_h.v.ray__ty_st_, Class##_##m##__id, n > 0 ? ray__ty_args : NULL, n, \
                                 ray__ty_opts, ray__ty_out);                                        \
    RAY__TY_EACH(RAY__TY_W_SFIN, ~, n, (__VA_ARGS__))                                               \
    RAY__TY_APPLY_S(RAY__TY_RSEL(R, RAY__TY_S_REFS, RAY__TY_M_REFS), (R))                                 \
    return ray__ty_refs;                                                                         \
  }                                                                                           \
  static inline Class##_##m##__refs Class##_##m(                                              \
      Class ray__ty_h RAY__TY_EACH(RAY__TY_W_PPARAMC, ~, n, (__VA_ARGS__))) {                          \
    return Class##_##m##__submit(NULL,                                                        \
                                 ray__ty_inv_##Class(ray__ty_h) RAY__TY_EACH(RAY__TY_W_PARG, ~, n, (__VA_ARGS__))); \
  }                                                                                           \
  RAY_TYPED_AT_STARTUP(Class##_##m##__register) {                                             \
    (void)Class##_##m;                                                                        \
    RAY__TY_EACH(RAY__TY_W_SLOTUSE, Class##_##m, 8, ((Class, ray__ty_self), __VA_ARGS__))              \
    Class##_##m##__id = ray__ty_class_add(                                                       \
        &Class##__class, Class##__methods, #m, Class##_##m##__wrap, Class##_##m##__rtypes,    \
        sizeof Class##_##m##__rtypes / sizeof Class##_##m##__rtypes[0]);                      \
  }                                                                                           \
  static Class##_##m##__result Class##_##m##__body(                                           \
      Class##__state *self RAY__TY_EACH(RAY__TY_W_BPARAMC, ~, n, (__VA_ARGS__)))

/* RAY_DESTRUCTOR(Class) { body }
 *
 * Optional: a body run with `self` once per successful construction (on
 * kill, last handle release, restart or shutdown; on a worker or the thread
 * calling ray_shutdown), before the layer frees the state. */
#define RAY_DESTRUCTOR(Class)                                         \
  static void Class##__dtor_body(Class##__state *self);               \
  RAY_TYPED_AT_STARTUP(Class##__dtor_register) {                      \
    Class##__user_dtor = Class##__dtor_body;                          \
  }                                                                   \
  static void Class##__dtor_body(Class##__state *self)

/* A typed handle for the actor named `name` (ray_get_actor: a new handle
 * reference the caller owns), checked to be of Class: a failed handle with
 * RAY_ENOTFOUND (no such actor), RAY_ETYPE (another class: its reference
 * is released), or ray_get_actor's errors. The check submits one no-op
 * call to the actor. Never blocks; thread-safe. */
#define RAY_ACTOR_GET(Class, name) Class##__get(name)

/* A typed handle for the untyped handle `raw` (the same reference, none
 * added), checked as RAY_ACTOR_GET does: e.g. for ray_ctx_actor(RAY_CTX,
 * &raw) inside a method. */
#define RAY_ACTOR_CAST(Class, raw) Class##__cast(raw)

/* The actor support the declarations use. */
static inline int ray__ty_arg_actor(ray__ty_status_t h, ray_arg_t *a) {
  ray_actor_t raw;
  if (h.id == 0) return ray__ty_status_code(h);
  raw.id = h.id;
  *a = ray_arg_actor(raw);
  return 0;
}
static inline int ray__ty_dec_actor(ray_task_ctx_t *ctx, size_t i, ray__ty_status_t *out) {
  ray_actor_t raw;
  int rc = ray_ctx_arg_actor(ctx, i, &raw);
  *out = rc == 0 ? ray__ty_status_ok(raw.id) : ray__ty_status_fail(rc);
  return rc;
}
static inline int ray__ty_method_call(ray__ty_status_t h, uint32_t method, const ray_arg_t *args,
                                   size_t nargs, const ray_task_opts_t *opts, ray_ref_t *out) {
  ray_actor_t raw;
  if (method == UINT32_MAX) return RAY_EINVAL; /* the class table was full */
  raw.id = h.id;
  return ray_actor_call_id(raw, method, args, nargs, opts, out);
}
/* Append a method to a class table before main(); its index, or UINT32_MAX
 * when the table is full (its calls then fail with RAY_EINVAL). */
static inline uint32_t ray__ty_class_add(ray_actor_class_t *cls, ray_method_def_t *table,
                                      const char *name, ray_method_fn fn, const uint32_t *types,
                                      size_t ntypes) {
  if (cls->num_methods >= RAY_TYPED_MAX_METHODS) return UINT32_MAX;
  table[cls->num_methods].name = name;
  table[cls->num_methods].fn = fn;
  table[cls->num_methods].return_types = types;
  table[cls->num_methods].num_returns = ntypes;
  return (uint32_t)cls->num_methods++;
}
/* Every typed class has a no-op method whose name holds the address of its
 * table: the core resolves method names in an actor's own class, so a call
 * by that name succeeds exactly on actors of this class. */
static inline int ray__ty_marker_fn(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, 0);
}
static inline void ray__ty_class_marker(ray_actor_class_t *cls, ray_method_def_t *table, char *name,
                                     size_t size) {
  static const uint32_t types[1] = {RAY_TYPE_I64};
  snprintf(name, size, "ray.typed.class@%p", (void *)cls);
  (void)ray__ty_class_add(cls, table, name, ray__ty_marker_fn, types, 1);
}
static inline ray__ty_status_t ray__ty_actor_check(ray_actor_t raw, const char *marker) {
  ray_ref_t r;
  int rc;
  if (raw.id == 0) return ray__ty_status_fail(RAY_ENOTFOUND);
  if ((rc = ray_actor_retain(raw)) != 0) return ray__ty_status_fail(rc);
  rc = ray_actor_call(raw, marker, NULL, 0, NULL, &r);
  (void)ray_actor_release(raw);
  if (rc == RAY_ENOTFOUND) return ray__ty_status_fail(RAY_ETYPE); /* it exists: another class */
  if (rc != 0) return ray__ty_status_fail(rc);
  (void)ray_ref_release(r);
  return ray__ty_status_ok(raw.id);
}
static inline ray__ty_status_t ray__ty_actor_lookup(const char *name, const char *marker) {
  ray_actor_t raw;
  int rc = ray_get_actor(name, &raw);
  if (rc != 0) return ray__ty_status_fail(rc);
  ray__ty_status_t st = ray__ty_actor_check(raw, marker);
  if (st.id == 0) (void)ray_actor_release(raw);
  return st;
}

/* ---- Calls -------------------------------------------------------------------------- */

/* RAY_CALL(f, args...): submit the declared function f, create an actor
 * (f = Class_new) or call a method (f = Class_m, the handle first), with
 * each argument a plain value or a typed ref of the parameter's kind, and
 * return RAY_REFS(f) (a Class handle for Class_new). Each argument goes
 * through a _Generic with no default branch: a value or ref of another kind
 * is a compile error ("incompatible type for argument"), as is a type that
 * is no kind's ("not compatible with any association"), a wrong number of
 * arguments ("too few/many arguments to function 'f__submit'") and a
 * handle of another class. Arguments are evaluated once each. Values are
 * copied before the call returns; refs are retained by the call. Errors,
 * blocking and thread safety as for the declaration's submit. */
#define RAY_CALL(...)                                                                 \
  RAY__TY_APPLY_C(RAY__TY_CAT(RAY__TY_CALL_, RAY__TY_CAT(RAY__TY_DEC1_, RAY__TY_NARGS(__VA_ARGS__))), \
               (NULL, __VA_ARGS__))

/* RAY_CALL_OPTS(opts, f, args...): RAY_CALL with options: a
 * const ray_task_opts_t * for functions and methods, a
 * const ray_actor_opts_t * for Class_new (NULL: the defaults). */
#define RAY_CALL_OPTS(...) \
  RAY__TY_APPLY_C(RAY__TY_CAT(RAY__TY_CALL_, RAY__TY_CAT(RAY__TY_DEC2_, RAY__TY_NARGS(__VA_ARGS__))), (__VA_ARGS__))

/* Argument i of a call of f: a _Generic over the built-in kinds' values and
 * refs and the slot's own types (a user type's value and ref, a class
 * handle), with no default branch. (A _Static_assert with a message would
 * need the argument inside a struct declaration, where Clang rejects
 * compound literals such as RAY_BYTES(...).) */
#define RAY__TY_IN(f, i, x) RAY__TY_IN_CONV(f, i, x)
#define RAY__TY_IN_CONV(f, i, x) \
  _Generic((x), RAY__TY_IN_BUILTIN, f##__uv##i: f##__inu##i, f##__ur##i: f##__inr##i)(x)
#define RAY__TY_IN_BUILTIN                                                                        \
  _Bool: ray__ty_inv_i64, char: ray__ty_inv_i64, signed char: ray__ty_inv_i64,                          \
  unsigned char: ray__ty_inv_i64, short: ray__ty_inv_i64, unsigned short: ray__ty_inv_i64,              \
  int: ray__ty_inv_i64, unsigned: ray__ty_inv_i64, long: ray__ty_inv_i64, unsigned long: ray__ty_inv_i64,  \
  long long: ray__ty_inv_i64, unsigned long long: ray__ty_inv_i64, float: ray__ty_inv_f64,              \
  double: ray__ty_inv_f64, long double: ray__ty_inv_f64, char *: ray__ty_inv_str,                       \
  const char *: ray__ty_inv_str, ray_bytes_t: ray__ty_inv_bytes,                                     \
  msgpack_object: ray__ty_inv_msgpack_value, msgpack_object *: ray__ty_inv_msgpack,                  \
  const msgpack_object *: ray__ty_inv_msgpack, ray_ref_i64_t: ray__ty_inref_i64,                     \
  ray_ref_f64_t: ray__ty_inref_f64, ray_ref_str_t: ray__ty_inref_str,                                \
  ray_ref_bytes_t: ray__ty_inref_bytes, ray_ref_msgpack_t: ray__ty_inref_msgpack
#endif /* !__cplusplus */
#endif /* RUSTYRAY_TYPED_H */
