/* task.h - remote functions and tasks (see function.c and task.c). */
#ifndef RAY_TASK_H
#define RAY_TASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "rustyray/task.h"
#include "scheduler.h"
#include "store.h"

struct ray__runtime_s;

/* ---- Function registry (function.c) ---- */

typedef struct ray__func_s {
  uint64_t id;
  char *name;
  ray_task_fn fn;
  void *arg;
  uint32_t nreturns;
  uint32_t types[RAY_MAX_RETURNS];
} ray__func_t;

enum { RAY__FUNC_CHUNK = 256, RAY__FUNC_CHUNKS = 256 };

/* Handles resolve without a lock: chunks never move, and an index is
 * published (count, release) only after its slot is filled. */
typedef struct ray__registry_s {
  uv_mutex_t mu; /* registration and lookup by name */
  uint32_t epoch; /* tells this runtime's handles from an earlier one's */
  atomic_uint count;
  ray__func_t **chunks[RAY__FUNC_CHUNKS];
} ray__registry_t;

int ray__registry_init(ray__registry_t *r);
void ray__registry_destroy(ray__registry_t *r);
/* The function behind a handle, or NULL (stale or bogus). */
ray__func_t *ray__registry_get(ray__registry_t *r, ray_function_t fn);

/* ---- Tasks (task.c) ---- */

/* Submit a task running `fn` (shared by the public submit and actor calls
 * later). See ray_task_submit for the contract. */
int ray__task_submit(struct ray__runtime_s *rt, ray__func_t *fn, const ray_arg_t *args,
                     size_t nargs, const ray_task_opts_t *opts, ray_ref_t *out_refs);

#endif /* RAY_TASK_H */
