/* rfree.c - inboxes of blocks freed by other threads (see rfree.h).
 *
 * A home's `head` is the inbox, a lock-free stack: NULL (empty), a block
 * (its first word the next one), or CLOSED (the thread has ended: free
 * directly). Pushers compare-and-swap; the owner, ray__rfree_drain_all and
 * the thread-exit hook take the whole list with one exchange, so each
 * block is freed exactly once. Homes are never freed: a block may name its
 * home after the thread ended; an ended thread's home goes on `spare` for
 * the next new thread, reopened (NULL) by it. They come from plain malloc, as
 * mag.c's pages do: process-lifetime structures, outside alloc.h's leak
 * tracking and failure injection (a test's thread would otherwise count as
 * a leak the first time it frees an entry).
 *
 * An inbox block's first word is the next block's address, its bit 0 set
 * when the block itself is small (blocks are 16-byte aligned), so a drain
 * knows which ones go back to a slab (slab.h). Small blocks count as freed
 * for alloc.h's tracking when they are handed back, not when their slot is
 * free again, so a leak check after shutdown does not depend on another
 * thread draining its inbox.
 *
 * Locks: homes_mu (a leaf) guards the list of every home and the spare
 * list; it is taken when a thread gets or gives back its home, and by
 * ray__rfree_drain_all. */
#include "rfree.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "slab.h"
#include "thread.h"

#define CLOSED ((void *)(uintptr_t)1)
#define SMALL_BIT ((uintptr_t)1) /* in an inbox link: this block is small */

struct ray__rfree_home_s {
  _Atomic(void *) head;
  ray__rfree_home_t *next_all;   /* every home (homes_mu) */
  ray__rfree_home_t *next_spare; /* homes of ended threads (homes_mu) */
};

static uv_once_t homes_once = UV_ONCE_INIT;
static uv_mutex_t homes_mu;
static ray__rfree_home_t *all_homes, *spare_homes;

static _Thread_local ray__rfree_home_t *tls_home RAY__TLS_FAST;

static void homes_init(void) {
  if (uv_mutex_init(&homes_mu) != 0) abort(); /* uv_once cannot report it */
}

/* Hand `block` to the inbox of `home` (not the calling thread's), `tag`
 * in its link: false when that home is closed. Acquire on CLOSED: what the
 * thread did before it closed (ray__slab_exit_begin) happened before. */
static bool push_remote(ray__rfree_home_t *home, void *block, uintptr_t tag) {
  void *h = atomic_load_explicit(&home->head, memory_order_acquire);
  for (;;) {
    if (h == CLOSED) return false;
    *(uintptr_t *)block = (uintptr_t)h | tag;
    if (atomic_compare_exchange_weak_explicit(&home->head, &h, block, memory_order_release,
                                              memory_order_acquire))
      return true;
  }
}

/* The blocks of an inbox that the calling thread took: small ones back to
 * their slab, the others freed. `home` is the inbox's when the caller is
 * not its thread (ray__rfree_drain_all): small blocks go back into it (only
 * their own thread may touch its slabs; they were counted as freed when
 * they were handed back). */
static void take_list(void *b, ray__rfree_home_t *home) {
  while (b != NULL) {
    uintptr_t link = *(uintptr_t *)b;
    if (!(link & SMALL_BIT))
      ray__free(b);
    else if (home == NULL || !push_remote(home, b, SMALL_BIT))
      ray__slab_free(b);
    b = (void *)(link & ~SMALL_BIT);
  }
}

/* The thread ends: close its inbox, free what it holds, give the home to
 * the next new thread. */
static void home_exit(ray__thread_exit_t *h) {
  (void)h;
  ray__rfree_home_t *home = tls_home;
  if (home == NULL) return;
  tls_home = NULL;
  ray__slab_exit_begin();
  take_list(atomic_exchange(&home->head, CLOSED), NULL);
  ray__slab_exit_end();
  uv_mutex_lock(&homes_mu);
  home->next_spare = spare_homes;
  spare_homes = home;
  uv_mutex_unlock(&homes_mu);
}

static _Thread_local ray__thread_exit_t exit_hook RAY__TLS_FAST = {.fn = home_exit};

ray__rfree_home_t *ray__rfree_home(void) {
  ray__rfree_home_t *home = tls_home;
  if (home != NULL) return home;
  uv_once(&homes_once, homes_init);
  if (ray__thread_at_exit(&exit_hook) != 0) return NULL; /* nobody would close it */
  uv_mutex_lock(&homes_mu);
  home = spare_homes;
  if (home != NULL) {
    spare_homes = home->next_spare;
  } else if ((home = malloc(sizeof *home)) != NULL) { /* plain malloc: kept, never counted */
    home->next_all = all_homes;
    all_homes = home;
  }
  if (home != NULL) atomic_store(&home->head, NULL); /* open for this thread */
  uv_mutex_unlock(&homes_mu);
  tls_home = home;
  return home;
}

void ray__rfree(ray__rfree_home_t *home, void *block) {
  if (block == NULL) return;
  if (home == NULL || home == tls_home || !push_remote(home, block, 0)) ray__free(block);
}

void *ray__rfree_alloc_small(void) {
  if (ray__rfree_home() == NULL || ray__alloc_inject()) return NULL;
  void *b = ray__slab_alloc();
  if (b != NULL) ray__alloc_count(1);
  return b;
}

void ray__rfree_small(ray__rfree_home_t *home, void *block) {
  if (block == NULL) return;
  ray__alloc_count(-1);
  if (home == NULL || home == tls_home || !push_remote(home, block, SMALL_BIT))
    ray__slab_free(block);
}

void ray__rfree_trim(void) {
  ray__slab_trim();
}

void ray__rfree_drain(void) {
  ray__rfree_home_t *home = tls_home;
  if (home == NULL || atomic_load_explicit(&home->head, memory_order_relaxed) == NULL) return;
  take_list(atomic_exchange_explicit(&home->head, NULL, memory_order_acquire), NULL);
}

void ray__rfree_drain_all(void) {
  uv_once(&homes_once, homes_init);
  uv_mutex_lock(&homes_mu);
  for (ray__rfree_home_t *home = all_homes; home != NULL; home = home->next_all) {
    void *h = atomic_load(&home->head);
    while (h != NULL && h != CLOSED && !atomic_compare_exchange_weak(&home->head, &h, NULL)) {
    }
    if (h != NULL && h != CLOSED) take_list(h, home == tls_home ? NULL : home);
  }
  uv_mutex_unlock(&homes_mu);
}
