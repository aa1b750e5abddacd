/* slab.c - a thread's slabs of small blocks (see slab.h).
 *
 * The owner keeps its slabs on two lists: `avail` (a free slot or more; the
 * head is where blocks come from) and `full` (none; kept only so the exit
 * can find them). A slab moves between them as its last slot goes or its
 * first comes back. Every field of a slab but `orphan_live` is the owner's
 * alone; once orphaned (owner NULL), only `orphan_live` changes, with
 * atomic operations, and whoever brings it to 0 frees the slab.
 *
 * Slabs come from plain posix_memalign, like mag.c's pages: alloc.h's
 * failure injection and leak tracking count the blocks (rfree.c does),
 * not the slabs that hold them. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign */
#include "slab.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "testing.h" /* ray__slab_count */
#include "poison.h"
#include "thread.h" /* RAY__TLS_FAST */

enum {
  SLAB_SIZE = 16384,
  SLOTS = 64,
  HEADER = 64, /* the slab's header, then its slots */
};

#define ALL_FREE (~(uint64_t)0)

typedef struct slabs_s slabs_t;
typedef struct slab_s slab_t;

struct slab_s {
  uint64_t free;           /* bit i set: slot i is free (owner) */
  slab_t *prev, *next;     /* on avail or full; the exit's orphan list (owner) */
  slabs_t *owner;          /* NULL once orphaned */
  atomic_uint orphan_live; /* once orphaned: blocks out, + 1 until the exit ends */
};

_Static_assert(sizeof(slab_t) <= HEADER, "a slab's header fits before its slots");
_Static_assert(HEADER + SLOTS * RAY__SLAB_BLOCK <= SLAB_SIZE, "the slots fit the slab");

/* A thread's slabs. */
struct slabs_s {
  slab_t *avail, *full;
  slab_t *orphans; /* between exit_begin and exit_end */
};

static _Thread_local slabs_t tls_slabs RAY__TLS_FAST;
static atomic_size_t slab_count; /* slabs alive, every thread's */

static inline slab_t *slab_of(const void *block) {
  return (slab_t *)((uintptr_t)block & ~(uintptr_t)(SLAB_SIZE - 1));
}

static void unlink_slab(slab_t **list, slab_t *s) {
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    *list = s->next;
  if (s->next != NULL) s->next->prev = s->prev;
  s->prev = s->next = NULL;
}

static void push_slab(slab_t **list, slab_t *s) {
  s->prev = NULL;
  s->next = *list;
  if (*list != NULL) (*list)->prev = s;
  *list = s;
}

static void slab_destroy(slab_t *s) {
  RAY__UNPOISON((char *)s + HEADER, SLOTS * RAY__SLAB_BLOCK);
  free(s);
  atomic_fetch_sub_explicit(&slab_count, 1, memory_order_relaxed);
}

static slab_t *slab_new(slabs_t *t) {
  void *p;
  if (posix_memalign(&p, SLAB_SIZE, HEADER + SLOTS * RAY__SLAB_BLOCK) != 0) return NULL;
  slab_t *s = p;
  atomic_fetch_add_explicit(&slab_count, 1, memory_order_relaxed);
  s->free = ALL_FREE;
  s->owner = t;
  atomic_init(&s->orphan_live, 0);
  RAY__POISON((char *)s + HEADER, SLOTS * RAY__SLAB_BLOCK);
  push_slab(&t->avail, s);
  return s;
}

void *ray__slab_alloc(void) {
  slabs_t *t = &tls_slabs;
  slab_t *s = t->avail;
  if (s == NULL && (s = slab_new(t)) == NULL) return NULL;
  unsigned i = (unsigned)__builtin_ctzll(s->free);
  s->free &= s->free - 1;
  if (s->free == 0) {
    unlink_slab(&t->avail, s);
    push_slab(&t->full, s);
  }
  void *block = (char *)s + HEADER + (size_t)i * RAY__SLAB_BLOCK;
  RAY__UNPOISON(block, RAY__SLAB_BLOCK);
  return block;
}

void ray__slab_free(void *block) {
  if (block == NULL) return;
  slab_t *s = slab_of(block);
  unsigned i = (unsigned)(((uintptr_t)block - (uintptr_t)s - HEADER) / RAY__SLAB_BLOCK);
  RAY__POISON(block, RAY__SLAB_BLOCK);
  slabs_t *t = &tls_slabs;
  if (s->owner != t) { /* orphaned: its thread has ended (slab.h) */
    if (atomic_fetch_sub_explicit(&s->orphan_live, 1, memory_order_acq_rel) == 1) slab_destroy(s);
    return;
  }
  if (s->free == 0) {
    unlink_slab(&t->full, s);
    push_slab(&t->avail, s);
  }
  s->free |= (uint64_t)1 << i;
}

void ray__slab_trim(void) {
  slabs_t *t = &tls_slabs;
  for (slab_t *s = t->avail, *next; s != NULL; s = next) {
    next = s->next;
    if (s->free != ALL_FREE) continue;
    unlink_slab(&t->avail, s);
    slab_destroy(s);
  }
}

/* Orphan every slab on `list` that still has blocks out onto t->orphans;
 * destroy the others. */
static void orphan_list(slabs_t *t, slab_t *list) {
  for (slab_t *s = list, *next; s != NULL; s = next) {
    next = s->next;
    unsigned out = (unsigned)(SLOTS - __builtin_popcountll(s->free));
    if (out == 0) {
      slab_destroy(s);
      continue;
    }
    s->owner = NULL;
    atomic_store_explicit(&s->orphan_live, out + 1, memory_order_relaxed);
    s->prev = NULL;
    s->next = t->orphans;
    t->orphans = s;
  }
}

void ray__slab_exit_begin(void) {
  slabs_t *t = &tls_slabs;
  orphan_list(t, t->avail);
  orphan_list(t, t->full);
  t->avail = t->full = NULL;
}

void ray__slab_exit_end(void) {
  slabs_t *t = &tls_slabs;
  slab_t *s = t->orphans;
  t->orphans = NULL;
  while (s != NULL) {
    slab_t *next = s->next;
    if (atomic_fetch_sub_explicit(&s->orphan_live, 1, memory_order_acq_rel) == 1) slab_destroy(s);
    s = next;
  }
}

size_t ray__slab_count(void) {
  return atomic_load_explicit(&slab_count, memory_order_relaxed);
}
