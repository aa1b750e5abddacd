/* mag.c - magazines (Bonwick's design, as in slab allocators and tbbmalloc):
 * each thread keeps a short free list per kind of item, so taking and giving
 * back an item is a few instructions with no atomics and no lock; lists move
 * between threads only as whole batches, through a depot under one lock.
 *
 * Why: items often die on another thread than the one that made them (a
 * task block is allocated by the submitting thread and freed by a worker; a
 * view slot is opened by one thread and released by another). Through
 * malloc, such a free takes the allocating arena's lock, which the other
 * thread is using: the profile of single_client_tasks_async showed three
 * quarters of its futex calls there (ADR-002). Here a thread that gives
 * more than it takes collects the surplus and hands it to the depot one
 * batch at a time, and a thread that takes more than it gives takes one
 * batch: one lock round trip per `batch` items, whatever the imbalance.
 *
 * Pages: items are cut from pages taken from plain malloc, never freed and
 * not counted as any runtime's allocation (alloc.h): a view slot must stay
 * readable after its view is released, even after ray_shutdown, and a pooled
 * block may be given back after the runtime that took it has gone (a view
 * released late frees its entry). So a kind keeps, for the life of the
 * process, the most items that were ever out at once: the high-water mark
 * of tasks in flight and of entries, as a slab allocator does. Every page
 * stays reachable from its kind, so valgrind counts none of it as leaked.
 *
 * A thread's magazines go back to the depot when the thread exits (thread.c's
 * exit hook), so threads that come and go strand nothing.
 *
 * Locks: depot_mu is a leaf, the only lock here; it may be taken under any
 * other lock of the library. */
#include "mag.h"

#include <stdlib.h>
#include <uv.h>

enum { PAGE_BATCHES = 8 }; /* batches cut from one page */

typedef struct page_s {
  struct page_s *next;
  void *pad_; /* items start 16-byte aligned */
} page_t;

static uv_once_t depot_once = UV_ONCE_INIT;
static uv_mutex_t depot_mu;

static void depot_init(void) {
  /* uv_once cannot report failure; glibc's mutex init cannot fail. */
  if (uv_mutex_init(&depot_mu) != 0) abort();
}

static void give_batch(ray__mag_kind_t *k, ray__mag_node_t *head) {
  uv_mutex_lock(&depot_mu);
  head->batch = k->batches;
  k->batches = head;
  uv_mutex_unlock(&depot_mu);
}

/* Cut a new page into batches onto the depot (depot_mu held). */
static void cut_page(ray__mag_kind_t *k) {
  size_t nitems = (size_t)k->batch * PAGE_BATCHES;
  page_t *p = malloc(sizeof *p + nitems * k->item);
  if (p == NULL) return;
  p->next = k->pages;
  k->pages = p;
  k->npages++;
  char *base = (char *)(p + 1);
  for (size_t i = 0; i < nitems; i++) {
    ray__mag_node_t *v = (ray__mag_node_t *)(base + i * k->item);
    if (k->init != NULL) k->init(v);
    v->next = (i + 1) % k->batch != 0 ? (ray__mag_node_t *)(base + (i + 1) * k->item) : NULL;
    v->batch = NULL;
    if (i % k->batch == 0) {
      v->batch = k->batches;
      k->batches = v;
    }
  }
}

/* Know the thread's magazines at its exit (if the hook cannot be registered,
 * mark them known anyway: no retry per call; they then stay with the dead
 * thread). */
static void key(ray__mag_t *m, ray__thread_exit_t *exit) {
  uv_once(&depot_once, depot_init);
  (void)ray__thread_at_exit(exit);
  m->keyed = true;
}

ray__mag_node_t *ray__mag_take_slow(ray__mag_kind_t *k, ray__mag_t *m, ray__thread_exit_t *exit) {
  if (!m->keyed) key(m, exit);
  if (m->spill != NULL) { /* our own overflow first: no lock */
    m->head = m->spill;
    m->n = m->nspill;
    m->spill = NULL;
    m->nspill = 0;
  } else {
    uv_mutex_lock(&depot_mu);
    if (k->batches == NULL) cut_page(k);
    ray__mag_node_t *b = k->batches;
    if (b != NULL) k->batches = b->batch;
    uv_mutex_unlock(&depot_mu);
    if (b == NULL) return NULL;
    m->head = b;
    m->n = k->batch; /* a batch may hold fewer (a flushed list): n is a bound */
  }
  ray__mag_node_t *v = m->head;
  m->head = v->next;
  m->n--;
  return v;
}

void ray__mag_give_slow(ray__mag_kind_t *k, ray__mag_t *m, ray__thread_exit_t *exit,
                        ray__mag_node_t *item) {
  if (!m->keyed) key(m, exit); /* a thread that only gives keeps items too */
  if (m->n < k->batch) {
    item->next = m->head;
    m->head = item;
    m->n++;
    return;
  }
  /* The list is full (a thread freeing what others made): collect the
   * overflow, and hand it over a batch at a time. In the order given, so
   * whoever takes the batch walks it as it was freed, usually the order
   * it was made in: addresses stay sequential for the prefetcher. */
  item->next = NULL;
  if (m->spill == NULL)
    m->spill = item;
  else
    m->spill_tail->next = item;
  m->spill_tail = item;
  if (++m->nspill < k->batch) return;
  ray__mag_node_t *b = m->spill;
  m->spill = NULL;
  m->nspill = 0;
  give_batch(k, b);
}

void ray__mag_flush(ray__mag_kind_t *k, ray__mag_t *m) {
  if (m->head != NULL) give_batch(k, m->head);
  if (m->spill != NULL) give_batch(k, m->spill);
  m->head = m->spill = NULL;
  m->n = m->nspill = 0;
  m->keyed = false; /* a later destructor that takes or gives registers again */
}

size_t ray__mag_pages(ray__mag_kind_t *k) {
  uv_once(&depot_once, depot_init);
  uv_mutex_lock(&depot_mu);
  size_t n = k->npages;
  uv_mutex_unlock(&depot_mu);
  return n;
}
