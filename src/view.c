/* view.c - handles for pinned views, so that releasing a view twice (through
 * one ray_buf_t, or through two copies of it) is a detected no-op instead
 * of a second unpin that frees an entry still in the store.
 *
 * Why a handle: a ray_buf_t is a plain struct the caller may copy, and two
 * copies are bit-identical, so the second release can only be told apart
 * by memory that outlives the view. The entry cannot be that memory (the
 * first release may free it), so each open view owns a slot here, and the
 * buf carries (slot, generation). Opening bumps the slot's generation to an
 * odd value; closing moves it on with one compare-and-swap from exactly the
 * buf's value, which only the first release of that opening can win. A
 * stale copy compares against a later generation and fails, whatever the
 * slot is doing now (free, or open for another view).
 *
 * Invariants: slots live in pages that are never freed (a stale copy may be
 * released at any time, even after ray_shutdown, and must find its slot),
 * so the table is as large as the most views ever open at once, a few
 * dozen bytes each, and is kept for the life of the process, like the id
 * counter. Pages come from plain malloc, not ray__malloc: they are not a
 * runtime's memory and must not count as its leak. Generations are 64-bit
 * and only grow: they never wrap in practice (one slot reopened 10^9 times
 * a second would take 292 years).
 *
 * Speed: ray_get and ray_buf_release are the hot path, so free slots live
 * on a thread-local list of up to CACHE (no atomics, no lock). Slots given
 * beyond that collect on a second list that goes to the global pool as one
 * batch of CACHE; a thread whose lists are empty takes one batch (or cuts a
 * new page into batches). Every pool operation is O(1) under its lock. A
 * thread's lists go back to the pool when the thread exits (thread.c's exit
 * hook, shared with the API guard's records), so threads that come and go
 * leak nothing.
 *
 * Locks: pool_mu is a leaf; it may be taken under a shard lock. */
#include "view.h"

#include <stdlib.h>
#include <uv.h>

#include "thread.h"

enum { PAGE_SLOTS = 1024, CACHE = RAY__VIEW_CACHE };

typedef struct page_s {
  struct page_s *next; /* every page, from `pages`: they stay reachable */
  ray__view_t slots[PAGE_SLOTS];
} page_t;

static uv_once_t pool_once = UV_ONCE_INIT;
static uv_mutex_t pool_mu;
static page_t *pages;             /* pool_mu */
static ray__view_t *pool_batches; /* pool_mu: lists of free slots, linked by `batch` */
_Thread_local ray__view_cache_t ray__view_cache RAY__TLS_FAST;

/* Hand a NULL-terminated list of free slots to the pool: O(1). */
static void give_batch(ray__view_t *head) {
  uv_mutex_lock(&pool_mu);
  head->batch = pool_batches;
  pool_batches = head;
  uv_mutex_unlock(&pool_mu);
}

/* At thread exit (thread.c): return the thread's free slots to the pool. */
static void cache_exit(ray__thread_exit_t *h) {
  (void)h;
  ray__view_cache_t *c = &ray__view_cache;
  if (c->head != NULL) give_batch(c->head);
  if (c->spill != NULL) give_batch(c->spill);
  c->head = c->spill = NULL;
  c->n = c->nspill = 0;
  c->keyed = false; /* a later destructor that takes or gives registers again */
}

static _Thread_local ray__thread_exit_t cache_exit_hook = {.fn = cache_exit};

static void pool_init(void) {
  /* uv_once cannot report failure; glibc's mutex init cannot fail. */
  if (uv_mutex_init(&pool_mu) != 0) abort();
}

/* Make sure the thread's lists go back to the pool when the thread exits
 * (if the hook cannot be registered, it is marked known anyway: no retry
 * per call; the lists then stay with the dead thread). */
static void cache_register(ray__view_cache_t *c) {
  uv_once(&pool_once, pool_init);
  (void)ray__thread_at_exit(&cache_exit_hook);
  c->keyed = true;
}

ray__view_t *ray__view_take_slow(void) {
  ray__view_cache_t *c = &ray__view_cache;
  if (!c->keyed) cache_register(c);
  if (c->spill != NULL) { /* our own overflow first: no lock */
    c->head = c->spill;
    c->n = c->nspill;
    c->spill = NULL;
    c->nspill = 0;
  } else {
    uv_mutex_lock(&pool_mu);
    if (pool_batches == NULL) {
      page_t *p = malloc(sizeof *p);
      if (p != NULL) {
        p->next = pages;
        pages = p;
        /* Cut the page into batches of CACHE slots. */
        for (unsigned i = 0; i < PAGE_SLOTS; i++) {
          ray__view_t *v = &p->slots[i];
          atomic_init(&v->gen, 0);
          v->e = NULL;
          v->next = (i + 1) % CACHE != 0 ? &p->slots[i + 1] : NULL;
          v->batch = NULL;
          if (i % CACHE == 0) {
            v->batch = pool_batches;
            pool_batches = v;
          }
        }
      }
    }
    ray__view_t *b = pool_batches;
    if (b != NULL) pool_batches = b->batch;
    uv_mutex_unlock(&pool_mu);
    if (b == NULL) return NULL;
    unsigned n = 0;
    for (ray__view_t *v = b; v != NULL; v = v->next) n++;
    c->head = b;
    c->n = n;
  }
  ray__view_t *v = c->head;
  c->head = v->next;
  c->n--;
  return v;
}

void ray__view_give_slow(ray__view_t *v) {
  ray__view_cache_t *c = &ray__view_cache;
  if (!c->keyed) cache_register(c); /* a thread that only releases keeps slots too */
  if (c->n < CACHE) {
    v->next = c->head;
    c->head = v;
    c->n++;
    return;
  }
  /* The list is full (a thread releasing views others opened, or a large
   * batch): collect the overflow, and hand it over CACHE slots at a time. */
  v->next = c->spill;
  c->spill = v;
  if (++c->nspill < CACHE) return;
  ray__view_t *b = c->spill;
  c->spill = NULL;
  c->nspill = 0;
  give_batch(b);
}
