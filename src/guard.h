/* guard.h - the API entry guard: ray_shutdown frees the runtime only after
 * every thread that entered a public call has left it (see guard.c). */
#ifndef RAY_GUARD_H
#define RAY_GUARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "thread.h" /* RAY__TLS_FAST */

struct ray__runtime_s;

/* One per thread that ever entered the API; recycled when the thread ends,
 * never freed (a registry that shutdown scans). */
typedef struct ray__thread_rec_s {
  atomic_uint depth; /* public calls this thread is inside (nesting) */
  atomic_bool in_use;
  atomic_bool worker;             /* a scheduler worker's thread (ray__guard_close skips it) */
  struct ray__thread_rec_s *next; /* the registry, push-only */
  char pad_[64 - sizeof(atomic_uint) - 2 * sizeof(atomic_bool) - sizeof(void *)];
} ray__thread_rec_t;

typedef struct ray__api_guard_s {
  struct ray__runtime_s *rt; /* NULL: not initialised (or being torn down) */
  ray__thread_rec_t *rec;    /* NULL: nothing to leave */
} ray__api_guard_t;

extern _Thread_local ray__thread_rec_t *ray__guard_tls_rec RAY__TLS_FAST;
/* The running runtime, or NULL (runtime.c publishes it). */
extern _Atomic(struct ray__runtime_s *) ray__runtime_ptr;
extern atomic_bool ray__guard_fence; /* no membarrier: readers fence themselves */

ray__thread_rec_t *ray__guard_rec_slow(void);

/* Enter: count this thread in, then read the runtime pointer. The guard's
 * rt is NULL when no runtime is published; rec NULL when this thread could
 * not get a record (out of memory: the call then fails with ENOTINIT too). */
static inline ray__api_guard_t ray__api_enter(void) {
  ray__api_guard_t g = {NULL, ray__guard_tls_rec};
  if (g.rec == NULL && (g.rec = ray__guard_rec_slow()) == NULL) return g;
  /* Store depth, then load the pointer (Dekker's order against shutdown's
   * "store NULL, load depth"): shutdown's membarrier() orders the two on
   * every running thread, so here two plain accesses do; without it, a
   * sequentially consistent read-modify-write and load. */
  if (atomic_load_explicit(&ray__guard_fence, memory_order_relaxed)) {
    atomic_fetch_add(&g.rec->depth, 1);
    g.rt = atomic_load(&ray__runtime_ptr);
  } else {
    unsigned d = atomic_load_explicit(&g.rec->depth, memory_order_relaxed);
    atomic_store_explicit(&g.rec->depth, d + 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    g.rt = atomic_load_explicit(&ray__runtime_ptr, memory_order_acquire);
  }
  return g;
}

/* Leave (the guard's cleanup): release, so everything the call did happens
 * before shutdown's look at the depth. */
static inline void ray__api_leave(ray__api_guard_t *g) {
  if (g->rec == NULL) return;
  unsigned d = atomic_load_explicit(&g->rec->depth, memory_order_relaxed);
  atomic_store_explicit(&g->rec->depth, d - 1, memory_order_release);
}

/* Whether the calling thread is inside a public call (a callback or log
 * handler that runs during one): ray_shutdown must not free under it. */
static inline bool ray__api_inside(void) {
  return ray__guard_tls_rec != NULL &&
         atomic_load_explicit(&ray__guard_tls_rec->depth, memory_order_relaxed) > 0;
}

/* Once per process, before the first runtime: choose membarrier() or the
 * readers' fence. */
void ray__guard_setup(void);

/* A scheduler worker calls this as its thread starts: ray__guard_close
 * does not wait for it (its calls are over once the workers are joined). */
void ray__guard_mark_worker(void);

/* Shutdown's first wait, after it set the runtime's `stopping` flag with a
 * sequentially consistent store: make every thread's view of the flag
 * current (membarrier, or the readers' read-modify-write), then wait until
 * every thread other than the caller and the workers has left the public
 * call it was in. Afterwards those threads' calls see the flag, so none of
 * them queues work or touches a sub-system that shutdown is about to take
 * down (a call checks the flag after it entered the guard). */
void ray__guard_close(void);

/* Shutdown's last wait, after the runtime pointer was unpublished: make
 * every thread's view of it current, then wait until no thread (but the
 * caller) is inside a public call. The caller must not be inside one. */
void ray__guard_drain(void);

/* Enter the API for the rest of the enclosing block: `rt` is the running
 * runtime, or NULL (RAY__API_GUARD); RAY__API_ENTER returns RAY_ENOTINIT
 * from the enclosing function when there is none. Leaving is automatic on every return path
 * (cleanup attribute, DECISIONS.md). */
#define RAY__API_GUARD(rt)                                                                  \
  __attribute__((cleanup(ray__api_leave))) ray__api_guard_t ray__guard_ = ray__api_enter(); \
  struct ray__runtime_s *rt = ray__guard_.rt
#define RAY__API_ENTER(rt) \
  RAY__API_GUARD(rt);      \
  if (rt == NULL) return RAY_ENOTINIT

#endif /* RAY_GUARD_H */
