/* rustyray/typed/value.h - the values a program hands the typed layer and
 * gets back from it.
 *
 * ray_bytes_t (the C type of kind bytes) with RAY_BYTES and
 * RAY_BYTES_OWNED, ray_str_format for bodies that return kind str, and the
 * two store operations on typed refs: RAY_PUT (a value in, a typed ref out)
 * and RAY_GET (a typed ref in, decoded by a _Generic on the type of the
 * output pointer). RAY_PUT and RAY_GET expand to the per-kind functions of
 * typed/kinds.h and typed/type.h. */
#ifndef RUSTYRAY_TYPED_VALUE_H
#define RUSTYRAY_TYPED_VALUE_H

#ifndef RUSTYRAY_TYPED_H
#error "include <rustyray/typed.h>, not one of its parts in rustyray/typed/"
#endif

/* Bytes: a pointer, a size, and (for a body's return or a RAY_PUT only)
 * who frees them. As a submit value the bytes are copied before the call
 * returns (free_fn and free_arg are ignored). As a body parameter it is a
 * zero-copy view into the store, valid until the body returns. As a body
 * return: with free_fn NULL the bytes are copied (they must stay valid until
 * the body returns: static data, say); with free_fn set they are handed to
 * the store without a copy and free_fn(data, free_arg) runs once when the
 * object is freed (also if the task fails first; ray_free_fn, object.h). */
typedef struct ray_bytes_s {
  const void *data;
  size_t size;
  ray_free_fn free_fn;
  void *free_arg;
} ray_bytes_t;

/* A ray_bytes_t to be copied / to be handed over to the store. */
#define RAY_BYTES(data, size) ((ray_bytes_t){(data), (size), NULL, NULL})
#define RAY_BYTES_OWNED(data, size, free_fn, arg) ((ray_bytes_t){(data), (size), (free_fn), (arg)})

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
#define RAY__TY_GET_(r_, t_, o_) \
  _Generic((o_), int64_t *: ray__ty_get_i64, double *: ray__ty_get_f64, char **: ray__ty_get_str,         \
           ray_buf_t *: ray__ty_get_bytes, ray_msgpack_t *: ray__ty_get_msgpack,                       \
           default: ray__ty_get_user)(                                                              \
      _Generic((o_), int64_t *: (r_), double *: (r_), char **: (r_), ray_buf_t *: (r_),          \
               ray_msgpack_t *: (r_),                                                            \
               default: ray__ty_uref((r_).ref, sizeof *(r_).ray__ty_tag_,                              \
                                  sizeof((o_) - (r_).ray__ty_p_))),                                 \
      (t_), (o_))

#endif /* RUSTYRAY_TYPED_VALUE_H */
