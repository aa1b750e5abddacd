/* function.c - the registry of remote functions, one per runtime.
 *
 * A handle is (epoch << 32 | index + 1): the epoch changes with every
 * ray_init, so a handle kept across a shutdown fails cleanly with
 * RAY_ENOTFOUND instead of naming another function. Handles resolve
 * without a lock (ray__function_get); registration and lookup by name take
 * the registry mutex. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static atomic_uint next_epoch = 1;

/* Static descriptors (ray_static_function_add), registered by every ray_init. */
static uv_once_t statics_once = UV_ONCE_INIT;
static uv_mutex_t statics_mu;
static ray_static_function_t *statics;

static void statics_init(void) {
  if (uv_mutex_init(&statics_mu) != 0) abort(); /* uv_once cannot report it */
}

void ray_static_function_add(ray_static_function_t *f) {
  if (f == NULL) return;
  uv_once(&statics_once, statics_init);
  uv_mutex_lock(&statics_mu);
  ray_static_function_t *p = statics;
  while (p != NULL && p != f) p = p->next;
  if (p == NULL) {
    f->next = statics;
    statics = f;
  }
  uv_mutex_unlock(&statics_mu);
}

int ray__function_registry_init(ray__registry_t *r) {
  memset(r, 0, sizeof *r);
  if (uv_mutex_init(&r->mu) != 0) return RAY_ENOMEM;
  r->epoch = atomic_fetch_add(&next_epoch, 1);
  atomic_init(&r->count, 0);
  return 0;
}

void ray__function_registry_destroy(ray__registry_t *r) {
  unsigned n = atomic_load(&r->count);
  for (unsigned i = 0; i < n; i++) {
    ray__func_t *f = r->chunks[i / RAY__FUNC_CHUNK][i % RAY__FUNC_CHUNK];
    ray__free(f->name);
    ray__free(f);
  }
  for (unsigned c = 0; c < RAY__FUNC_CHUNKS; c++) ray__free(r->chunks[c]);
  uv_mutex_destroy(&r->mu);
}

ray__func_t *ray__function_get(ray__registry_t *r, ray_function_t fn) {
  if ((uint32_t)(fn.id >> 32) != r->epoch) return NULL;
  uint32_t idx = (uint32_t)fn.id;
  if (idx == 0 || idx > atomic_load_explicit(&r->count, memory_order_acquire)) return NULL;
  idx--;
  return r->chunks[idx / RAY__FUNC_CHUNK][idx % RAY__FUNC_CHUNK];
}

/* Registry mutex held. */
static ray__func_t *find_by_name(ray__registry_t *r, const char *name) {
  unsigned n = atomic_load(&r->count);
  for (unsigned i = 0; i < n; i++) {
    ray__func_t *f = r->chunks[i / RAY__FUNC_CHUNK][i % RAY__FUNC_CHUNK];
    if (strcmp(f->name, name) == 0) return f;
  }
  return NULL;
}

unsigned ray__function_count(ray__registry_t *r) {
  return atomic_load_explicit(&r->count, memory_order_acquire);
}

ray__func_t *ray__function_at(ray__registry_t *r, unsigned i) {
  return r->chunks[i / RAY__FUNC_CHUNK][i % RAY__FUNC_CHUNK];
}

ray__func_t *ray__function_find(ray__registry_t *r, const char *name) {
  uv_mutex_lock(&r->mu);
  ray__func_t *f = find_by_name(r, name);
  uv_mutex_unlock(&r->mu);
  return f;
}

int ray_function_register(const char *name, ray_task_fn fn, void *arg, const uint32_t *return_types,
                          size_t num_returns, ray_function_t *out) {
  if (name == NULL || *name == '\0' || fn == NULL || return_types == NULL || out == NULL ||
      num_returns == 0 || num_returns > RAY_MAX_RETURNS)
    return RAY_EINVAL;
  for (size_t i = 0; i < num_returns; i++)
    if (return_types[i] == 0) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  ray__registry_t *r = &rt->funcs;
  int rc = 0;
  uv_mutex_lock(&r->mu);
  unsigned n = atomic_load(&r->count);
  if (find_by_name(r, name) != NULL) {
    rc = RAY_ENAMEEXISTS;
    goto out;
  }
  if (n >= RAY__FUNC_CHUNK * RAY__FUNC_CHUNKS) {
    rc = RAY_ENOMEM;
    goto out;
  }
  ray__func_t ***chunk = &r->chunks[n / RAY__FUNC_CHUNK];
  if (*chunk == NULL && (*chunk = ray__calloc(RAY__FUNC_CHUNK, sizeof **chunk)) == NULL) {
    rc = RAY_ENOMEM;
    goto out;
  }
  ray__func_t *f = ray__calloc(1, sizeof *f);
  if (f == NULL || (f->name = ray__strdup(name)) == NULL) {
    ray__free(f);
    rc = RAY_ENOMEM;
    goto out;
  }
  f->fn = fn;
  f->arg = arg;
  f->nreturns = (uint32_t)num_returns;
  memcpy(f->types, return_types, num_returns * sizeof *return_types);
  f->id = ((uint64_t)r->epoch << 32) | (n + 1);
  (*chunk)[n % RAY__FUNC_CHUNK] = f;
  atomic_store_explicit(&r->count, n + 1, memory_order_release);
  out->id = f->id;
out:
  uv_mutex_unlock(&r->mu);
  return rc;
}

int ray_function_lookup(const char *name, ray_function_t *out) {
  if (name == NULL || out == NULL) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  uv_mutex_lock(&rt->funcs.mu);
  ray__func_t *f = find_by_name(&rt->funcs, name);
  if (f != NULL) out->id = f->id;
  uv_mutex_unlock(&rt->funcs.mu);
  return f != NULL ? 0 : RAY_ENOTFOUND;
}

int ray_function_info(ray_function_t fn, const char **name, size_t *num_returns) {
  RAY__API_ENTER(rt);
  ray__func_t *f = ray__function_get(&rt->funcs, fn);
  if (f == NULL) return RAY_ENOTFOUND;
  if (name != NULL) *name = f->name;
  if (num_returns != NULL) *num_returns = f->nreturns;
  return 0;
}

int ray__function_add_statics(void) {
  uv_once(&statics_once, statics_init);
  uv_mutex_lock(&statics_mu);
  int rc = 0;
  for (ray_static_function_t *f = statics; f != NULL && rc == 0; f = f->next) {
    ray_function_t h;
    rc = ray_function_register(f->name, f->fn, f->arg, f->return_types, f->num_returns, &h);
    if (rc == 0 && f->handle != NULL) *f->handle = h;
  }
  uv_mutex_unlock(&statics_mu);
  return rc;
}
