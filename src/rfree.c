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
 * Locks: homes_mu (a leaf) guards the list of every home and the spare
 * list; it is taken when a thread gets or gives back its home, and by
 * ray__rfree_drain_all. */
#include "rfree.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"
#include "thread.h"

#define CLOSED ((void *)(uintptr_t)1)

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

static void free_list(void *b) {
  while (b != NULL) {
    void *next = *(void **)b;
    ray__free(b);
    b = next;
  }
}

/* The thread ends: close its inbox, free what it holds, give the home to
 * the next new thread. */
static void home_exit(ray__thread_exit_t *h) {
  (void)h;
  ray__rfree_home_t *home = tls_home;
  if (home == NULL) return;
  tls_home = NULL;
  void *list = atomic_exchange(&home->head, CLOSED);
  free_list(list);
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
  if (home == NULL || home == tls_home) {
    ray__free(block);
    return;
  }
  void *h = atomic_load_explicit(&home->head, memory_order_relaxed);
  for (;;) {
    if (h == CLOSED) {
      ray__free(block);
      return;
    }
    *(void **)block = h;
    if (atomic_compare_exchange_weak_explicit(&home->head, &h, block, memory_order_release,
                                              memory_order_relaxed))
      return;
  }
}

void ray__rfree_drain(void) {
  ray__rfree_home_t *home = tls_home;
  if (home == NULL || atomic_load_explicit(&home->head, memory_order_relaxed) == NULL) return;
  free_list(atomic_exchange_explicit(&home->head, NULL, memory_order_acquire));
}

void ray__rfree_drain_all(void) {
  uv_once(&homes_once, homes_init);
  uv_mutex_lock(&homes_mu);
  for (ray__rfree_home_t *home = all_homes; home != NULL; home = home->next_all) {
    void *h = atomic_load(&home->head);
    while (h != NULL && h != CLOSED && !atomic_compare_exchange_weak(&home->head, &h, NULL)) {
    }
    if (h != NULL && h != CLOSED) free_list(h);
  }
  uv_mutex_unlock(&homes_mu);
}
