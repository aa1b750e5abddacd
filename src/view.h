/* view.h - handles for pinned views (ray_buf_t): a released view, or a copy
 * of one, is recognised and ignored (see view.c). */
#ifndef RAY_VIEW_H
#define RAY_VIEW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "guard.h" /* RAY__TLS_FAST */
#include "rustyray/object.h"

struct ray__entry_s;

/* One view slot. `gen` is odd while a view is open on the slot and even
 * while it is free; it only grows, so a ray_buf_t (slot, gen) names one
 * opening of one slot, never a later one. */
typedef struct ray__view_s {
  _Atomic uint64_t gen;
  struct ray__entry_s *e;    /* the pinned entry while open */
  struct ray__view_s *next;  /* free lists */
  struct ray__view_s *batch; /* the pool: the next batch (on a batch's first slot) */
} ray__view_t;

/* The calling thread's free slots (view.c). Initial-exec TLS: these are
 * touched twice per get, and the general-dynamic model would make each
 * touch a call into the dynamic linker when the library is shared. */
typedef struct ray__view_cache_s {
  ray__view_t *head; /* up to RAY__VIEW_CACHE free slots */
  unsigned n;
  ray__view_t *spill; /* slots given beyond that, handed to the pool as one batch */
  unsigned nspill;
  bool keyed; /* the thread-exit hook knows these lists */
} ray__view_cache_t;

extern _Thread_local ray__view_cache_t ray__view_cache RAY__TLS_FAST;

/* Slow paths: the list is empty / too long or not yet known to the hook. */
ray__view_t *ray__view_take_slow(void);
void ray__view_give_slow(ray__view_t *v);

enum { RAY__VIEW_CACHE = 64 };

/* A free slot for the calling thread, or NULL when out of memory. Cheap (a
 * thread-local list) and safe under a shard lock: the pool's lock, taken
 * when that list runs dry, is a leaf. */
static inline ray__view_t *ray__view_take(void) {
  ray__view_cache_t *c = &ray__view_cache;
  ray__view_t *v = c->head;
  if (v == NULL) return ray__view_take_slow();
  c->head = v->next;
  c->n--;
  return v;
}

/* Give back a slot (taken and not opened, or just closed). */
static inline void ray__view_give(ray__view_t *v) {
  ray__view_cache_t *c = &ray__view_cache;
  if (!c->keyed || c->n >= RAY__VIEW_CACHE) {
    ray__view_give_slow(v);
    return;
  }
  v->next = c->head;
  c->head = v;
  c->n++;
}

/* Open a view on entry `e` (the caller has added its `life` unit) and fill
 * *out with its payload. */
static inline void ray__view_open(ray__view_t *v, struct ray__entry_s *e, const void *data,
                                  size_t size, uint32_t type, ray_buf_t *out) {
  uint64_t g = atomic_load_explicit(&v->gen, memory_order_relaxed) + 1;
  v->e = e;
  atomic_store_explicit(&v->gen, g, memory_order_release);
  out->data = data;
  out->size = size;
  out->type = type;
  out->priv_ = v;
  out->gen_ = g;
}

/* Close the view *buf names, if it is still open, and zero *buf. Returns
 * the entry, whose `life` unit the caller now holds (unpin it, or keep it),
 * or NULL when *buf is zeroed, was released already, or is a copy of a view
 * released through another copy (nothing is touched but the slot's
 * generation). Thread-safe: of two copies closed at once, one wins. */
static inline struct ray__entry_s *ray__view_close(ray_buf_t *buf) {
  ray__view_t *v = (ray__view_t *)buf->priv_;
  uint64_t g = buf->gen_;
  buf->data = NULL;
  buf->size = 0;
  buf->type = 0;
  buf->priv_ = NULL;
  buf->gen_ = 0;
  if (v == NULL) return NULL;
  /* Only the first close of this opening finds `g` there. */
  if (!atomic_compare_exchange_strong_explicit(&v->gen, &g, g + 1, memory_order_acq_rel,
                                               memory_order_relaxed))
    return NULL;
  struct ray__entry_s *e = v->e;
  ray__view_give(v);
  return e;
}

/* The entry an open view pins. */
static inline struct ray__entry_s *ray__view_entry(const ray_buf_t *buf) {
  return ((const ray__view_t *)buf->priv_)->e;
}

#endif /* RAY_VIEW_H */
