/* view.h - handles for pinned views (ray_buf_t): a released view, or a copy
 * of one, is recognised and ignored (see view.c). */
#ifndef RAY_VIEW_H
#define RAY_VIEW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "guard.h" /* RAY__TLS_FAST */
#include "mag.h"
#include "rustyray/object.h"

struct ray__entry_s;

/* One view slot. `gen` is odd while a view is open on the slot and even
 * while it is free; it only grows, so a ray_buf_t (slot, gen) names one
 * opening of one slot, never a later one. Slots are magazine items
 * (mag.h): the node first. */
typedef struct ray__view_s {
  ray__mag_node_t node; /* free lists */
  _Atomic uint64_t gen;
  struct ray__entry_s *e; /* the pinned entry while open */
} ray__view_t;

enum { RAY__VIEW_BATCH = 64 };

/* The slots' kind, and the calling thread's magazine of them (view.c).
 * Initial-exec TLS: these are touched twice per get, and the
 * general-dynamic model would make each touch a call into the dynamic
 * linker when the library is shared. */
extern ray__mag_kind_t ray__view_kind;
extern _Thread_local ray__mag_t ray__view_mag RAY__TLS_FAST;
extern _Thread_local ray__thread_exit_t ray__view_exit RAY__TLS_FAST;

/* A free slot for the calling thread, or NULL when out of memory. Cheap (a
 * thread-local list) and safe under a shard lock: the depot's lock, taken
 * when that list runs dry, is a leaf. */
static inline ray__view_t *ray__view_take(void) {
  return (ray__view_t *)ray__mag_take(&ray__view_kind, &ray__view_mag, &ray__view_exit);
}

/* Give back a slot (taken and not opened, or just closed). */
static inline void ray__view_give(ray__view_t *v) {
  ray__mag_give(&ray__view_kind, &ray__view_mag, &ray__view_exit, &v->node);
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
