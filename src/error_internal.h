/* error_internal.h - the layout of ray_error_t, shared by error.c and the
 * codec. A chain is a singly linked list through `cause`. */
#ifndef RAY_ERROR_INTERNAL_H
#define RAY_ERROR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "rustyray/error.h"

struct ray_error_s {
  int code;
  uint32_t attempts;
  uint64_t task_id;
  char *message; /* never NULL */
  char *origin;  /* NULL: no origin */
  struct ray_error_s *cause;
};

/* Whether `code` is one of the RAY_E* codes. */
bool ray__error_is_code(int code);

#endif /* RAY_ERROR_INTERNAL_H */
