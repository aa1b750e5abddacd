/* error.c - error codes (one X-macro table) and structured error objects.
 *
 * A ray_error_t owns its cause chain. Chains can be long (a failure at the
 * root of a deep DAG), so every walk over a chain is a loop, never recursion. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "error_internal.h"

const char *ray_strerror(int code) {
  switch (code) {
    case RAY_OK:
      return "success";
#define RAY__ERRNO_MSG(name, val, msg) \
  case RAY_##name:                     \
    return msg;
      RAY_ERRNO_MAP(RAY__ERRNO_MSG)
#undef RAY__ERRNO_MSG
    default:
      return "unknown error";
  }
}

const char *ray_err_name(int code) {
  switch (code) {
    case RAY_OK:
      return "OK";
#define RAY__ERRNO_NAME(name, val, msg) \
  case RAY_##name:                      \
    return #name;
      RAY_ERRNO_MAP(RAY__ERRNO_NAME)
#undef RAY__ERRNO_NAME
    default:
      return "UNKNOWN";
  }
}

bool ray__error_is_code(int code) {
  switch (code) {
#define RAY__ERRNO_CASE(name, val, msg) case RAY_##name:
    RAY_ERRNO_MAP(RAY__ERRNO_CASE)
#undef RAY__ERRNO_CASE
    return true;
    default:
      return false;
  }
}

int ray_error_new(ray_error_t **out, int code, const char *origin, const char *fmt, ...) {
  if (out == NULL) return RAY_EINVAL;
  *out = NULL;
  if (code >= 0) return RAY_EINVAL;
  ray_error_t *e = ray__calloc(1, sizeof *e);
  if (e == NULL) return RAY_ENOMEM;
  e->code = code;
  if (fmt == NULL) {
    e->message = ray__strdup(ray_strerror(code));
  } else {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    e->message = ray__malloc((size_t)n + 1);
    if (e->message != NULL) {
      va_start(ap, fmt);
      vsnprintf(e->message, (size_t)n + 1, fmt, ap);
      va_end(ap);
    }
  }
  if (e->message == NULL || (origin != NULL && (e->origin = ray__strdup(origin)) == NULL)) {
    ray_error_free(e);
    return RAY_ENOMEM;
  }
  *out = e;
  return 0;
}

int ray_error_set_cause(ray_error_t *err, ray_error_t *cause) {
  if (err == NULL || cause == NULL || err == cause) return RAY_EINVAL;
  ray_error_free(err->cause);
  err->cause = cause;
  return 0;
}

int ray_error_set_task_id(ray_error_t *err, uint64_t task_id) {
  if (err == NULL) return RAY_EINVAL;
  err->task_id = task_id;
  return 0;
}

int ray_error_set_attempts(ray_error_t *err, uint32_t attempts) {
  if (err == NULL) return RAY_EINVAL;
  err->attempts = attempts;
  return 0;
}

int ray_error_copy(const ray_error_t *err, ray_error_t **out) {
  if (out == NULL) return RAY_EINVAL;
  *out = NULL;
  if (err == NULL) return RAY_EINVAL;
  ray_error_t *head = NULL, **tail = &head;
  for (const ray_error_t *e = err; e != NULL; e = e->cause) {
    ray_error_t *c = ray__calloc(1, sizeof *c);
    if (c == NULL) goto oom;
    *tail = c;
    tail = &c->cause;
    c->code = e->code;
    c->attempts = e->attempts;
    c->task_id = e->task_id;
    if ((c->message = ray__strdup(e->message)) == NULL) goto oom;
    if (e->origin != NULL && (c->origin = ray__strdup(e->origin)) == NULL) goto oom;
  }
  *out = head;
  return 0;
oom:
  ray_error_free(head);
  return RAY_ENOMEM;
}

void ray_error_free(ray_error_t *err) {
  while (err != NULL) {
    ray_error_t *next = err->cause;
    ray__free(err->message);
    ray__free(err->origin);
    ray__free(err);
    err = next;
  }
}

int ray_error_code(const ray_error_t *err) {
  return err ? err->code : 0;
}
const char *ray_error_message(const ray_error_t *err) {
  return err ? err->message : "";
}
const char *ray_error_origin(const ray_error_t *err) {
  return err ? err->origin : NULL;
}
uint64_t ray_error_task_id(const ray_error_t *err) {
  return err ? err->task_id : 0;
}
uint32_t ray_error_attempts(const ray_error_t *err) {
  return err ? err->attempts : 0;
}
const ray_error_t *ray_error_cause(const ray_error_t *err) {
  return err ? err->cause : NULL;
}

int ray_error_format(const ray_error_t *err, char *buf, size_t len) {
  if (err == NULL || (buf == NULL && len > 0)) return RAY_EINVAL;
  size_t total = 0;
  int depth = 0;
  for (const ray_error_t *e = err; e != NULL; e = e->cause, depth++) {
    char attempts[32] = "";
    if (e->attempts > 0) snprintf(attempts, sizeof attempts, " attempts=%u", e->attempts);
    char *at = (buf != NULL && total < len) ? buf + total : NULL;
    size_t room = at ? len - total : 0;
    int n = snprintf(at, room, "%s%s: %s [origin=%s task=%llu%s]\n", depth ? "  caused by: " : "",
                     ray_err_name(e->code), e->message, e->origin ? e->origin : "-",
                     (unsigned long long)e->task_id, attempts);
    if (n < 0) return RAY_EINVAL;
    total += (size_t)n;
  }
  if (buf != NULL && len > 0 && total >= len) buf[len - 1] = '\0';
  return total > (size_t)INT32_MAX ? INT32_MAX : (int)total;
}
