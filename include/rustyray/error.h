/* rustyray/error.h - error codes and structured error objects.
 *
 * Every fallible function returns 0 (RAY_OK) or one negative RAY_E* code from
 * the table below. Codes are stable: new ones are only ever appended.
 *
 * A failed task or actor call stores a ray_error_t in the object store in
 * place of its result (flagged in the entry's metadata, never a marker inside
 * the payload). ray_get() on such a ref returns the error's code and
 * ray_get_error() returns the error object itself. */
#ifndef RUSTYRAY_ERROR_H
#define RUSTYRAY_ERROR_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message). The one table every code, name and message comes from. */
#define RAY_ERRNO_MAP(X)                            \
  X(EINVAL, -1, "invalid argument")                 \
  X(ENOMEM, -2, "out of memory")                    \
  X(ENOTINIT, -3, "runtime not initialized")        \
  X(EALREADY, -4, "runtime already initialized")    \
  X(ENOTFOUND, -5, "unknown or released reference") \
  X(ETYPE, -6, "type mismatch")                     \
  X(ETIMEDOUT, -7, "timed out")                     \
  X(EBUSY, -8, "resource busy")                     \
  X(ETASK, -9, "task failed")                       \
  X(EDEPFAILED, -10, "dependency failed")           \
  X(ECANCELED, -11, "canceled")                     \
  X(EACTORDIED, -12, "actor died")                  \
  X(ESTOREFULL, -13, "object store full")           \
  X(ESHUTDOWN, -14, "runtime shut down")            \
  X(EDECODE, -15, "decode error")                   \
  X(ENAMEEXISTS, -16, "name already exists")        \
  X(ENOTREADY, -17, "object not ready yet")         \
  X(EIO, -18, "input/output error")                 \
  X(EFINISHED, -19, "already finished")             \
  X(ENORESULT, -20, "result not set by the task")   \
  X(ENOTSUP, -21, "not supported")                  \
  X(ENODE, -22, "rank lost")

typedef enum {
  RAY_OK = 0,
#define RAY__ERRNO_ENUM(name, val, msg) RAY_##name = (val),
  RAY_ERRNO_MAP(RAY__ERRNO_ENUM)
#undef RAY__ERRNO_ENUM
} ray_errno_t;

/* A static English message for `code` ("success" for 0, "unknown error" for a
 * value not in the table). Never returns NULL; thread-safe. */
RAY_EXTERN const char *ray_strerror(int code);

/* The code's symbolic name without prefix ("OK", "EINVAL", ...; "UNKNOWN" for
 * a value not in the table). Never returns NULL; thread-safe. */
RAY_EXTERN const char *ray_err_name(int code);

/* A structured error: code, message, origin (function name, or
 * "Class.method"), task id, number of attempts, and an optional cause.
 * Opaque; read it through the accessors. An error owns its whole cause chain. */
typedef struct ray_error_s ray_error_t;

/* Create an error. `code` must be a negative RAY_E* value; `origin` may be
 * NULL (no origin); `fmt` is a printf format (NULL: the code's message).
 * On success *out owns a new error (free with ray_error_free).
 * Errors: RAY_EINVAL (out NULL, code >= 0), RAY_ENOMEM.
 * Does not need the runtime. Never blocks; thread-safe. */
RAY_EXTERN int ray_error_new(ray_error_t **out, int code, const char *origin, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Attach `cause` as the cause of `err`; `err` takes ownership of `cause` and
 * frees any cause it had before. Errors: RAY_EINVAL (err or cause NULL, or
 * err == cause). Never blocks; not thread-safe on the same error. */
RAY_EXTERN int ray_error_set_cause(ray_error_t *err, ray_error_t *cause);

/* Set the task id / attempts recorded in `err`. Errors: RAY_EINVAL (err NULL). */
RAY_EXTERN int ray_error_set_task_id(ray_error_t *err, uint64_t task_id);
RAY_EXTERN int ray_error_set_attempts(ray_error_t *err, uint32_t attempts);

/* Deep copy of `err` and its cause chain. Errors: RAY_EINVAL, RAY_ENOMEM. */
RAY_EXTERN int ray_error_copy(const ray_error_t *err, ray_error_t **out);

/* Free `err` and its whole cause chain. NULL is a no-op. */
RAY_EXTERN void ray_error_free(ray_error_t *err);

/* Accessors. For a NULL error: code, task id and attempts 0, message "",
 * origin NULL (as for an error without origin), cause NULL. The strings live
 * as long as the error. */
RAY_EXTERN int ray_error_code(const ray_error_t *err);
RAY_EXTERN const char *ray_error_message(const ray_error_t *err);
RAY_EXTERN const char *ray_error_origin(const ray_error_t *err);
RAY_EXTERN uint64_t ray_error_task_id(const ray_error_t *err);
RAY_EXTERN uint32_t ray_error_attempts(const ray_error_t *err);
/* The cause, owned by `err` (NULL when there is none). */
RAY_EXTERN const ray_error_t *ray_error_cause(const ray_error_t *err);

/* Format the whole chain, one line per error, outermost first:
 *   "EDEPFAILED: dependency failed [origin=consumer task=7]\n  caused by: ETASK: ..."
 * Writes at most `len` bytes including the terminating NUL (snprintf rules)
 * and returns the length the full text needs, excluding the NUL, or
 * RAY_EINVAL (err NULL, or buf NULL with len > 0). Never blocks; thread-safe. */
RAY_EXTERN int ray_error_format(const ray_error_t *err, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* RUSTYRAY_ERROR_H */
