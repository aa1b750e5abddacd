/* mag.h - magazines: per-thread free lists of fixed-size items over a shared
 * depot, the one mechanism behind the view slots (view.c) and the pooled
 * blocks of tasks and store entries (pool.c). See mag.c for why. */
#ifndef RAY_MAG_H
#define RAY_MAG_H

#include <stdbool.h>
#include <stddef.h>

#include "thread.h"

/* The link every item starts with: `next` chains a free list, `batch`
 * chains the depot's batches (on a batch's first item). Only a free item's
 * links are in use; the owner of an item taken from a magazine may use the
 * whole of it (pool.c keeps the links out of the block it hands out). */
typedef struct ray__mag_node_s {
  struct ray__mag_node_s *next;
  struct ray__mag_node_s *batch;
} ray__mag_node_t;

/* One kind of item: its size and the depot of free batches, shared by all
 * threads. Items live in pages that are never freed (an item may be given
 * back at any time, even after ray_shutdown, and view slots must stay
 * readable forever), so a kind holds the most items ever out at once, for
 * the life of the process. Define with RAY__MAG_KIND; statically
 * initialised, no setup call. */
typedef struct ray__mag_kind_s {
  size_t item;    /* bytes per item, the node first; a multiple of 16 */
  unsigned batch; /* items per batch, and per thread's list */
  /* Called once on each item as its page is cut (NULL: none). */
  void (*init)(ray__mag_node_t *item);
  ray__mag_node_t *batches; /* the depot (under mag.c's lock) */
  void *pages;              /* every page, so they stay reachable */
  size_t npages;
} ray__mag_kind_t;

#define RAY__MAG_KIND(size, per_batch, init_fn)                                              \
  {                                                                                          \
    .item = (size), .batch = (per_batch), .init = (init_fn), .batches = NULL, .pages = NULL, \
    .npages = 0                                                                              \
  }

/* A thread's magazine of one kind: up to kind->batch free items, and the
 * items given beyond that, which go to the depot as one batch. Lives in
 * the thread's thread-local storage, zero-initialised. */
typedef struct ray__mag_s {
  ray__mag_node_t *head;
  unsigned n;
  ray__mag_node_t *spill; /* oldest first */
  ray__mag_node_t *spill_tail;
  unsigned nspill;
  bool keyed; /* its thread-exit hook is registered */
} ray__mag_t;

/* Slow paths of the inline take/give below: the list is empty (refill it
 * from the depot, cutting a new page when the depot is empty; NULL when
 * out of memory), or full or not yet known to the thread-exit hook. `exit`
 * is the thread-local hook that hands the thread's magazines back
 * (ray__mag_flush) when the thread ends: registered on first use. */
ray__mag_node_t *ray__mag_take_slow(ray__mag_kind_t *k, ray__mag_t *m, ray__thread_exit_t *exit);
void ray__mag_give_slow(ray__mag_kind_t *k, ray__mag_t *m, ray__thread_exit_t *exit,
                        ray__mag_node_t *item);
/* Hand every item of `m` to the depot (at thread exit). */
void ray__mag_flush(ray__mag_kind_t *k, ray__mag_t *m);
/* Pages cut so far for kind `k` (tests: ray__pool_pages). */
size_t ray__mag_pages(ray__mag_kind_t *k);

/* A free item for the calling thread, or NULL when out of memory. O(1), no
 * lock unless the list is empty; the depot's lock is a leaf, so this is
 * safe under any lock of the library. */
static inline ray__mag_node_t *ray__mag_take(ray__mag_kind_t *k, ray__mag_t *m,
                                             ray__thread_exit_t *exit) {
  ray__mag_node_t *v = m->head;
  if (v == NULL) return ray__mag_take_slow(k, m, exit);
  m->head = v->next;
  m->n--; /* n >= 1 while head is set: it bounds the list's length */
  return v;
}

/* Give back an item taken from this kind (by any thread). */
static inline void ray__mag_give(ray__mag_kind_t *k, ray__mag_t *m, ray__thread_exit_t *exit,
                                 ray__mag_node_t *item) {
  if (!m->keyed || m->n >= k->batch) {
    ray__mag_give_slow(k, m, exit, item);
    return;
  }
  item->next = m->head;
  m->head = item;
  m->n++;
}

#endif /* RAY_MAG_H */
