/* alloc.c - the allocation wrapper (see alloc.h for why it exists).
 *
 * Invariant: when neither hook is armed, each call costs one relaxed atomic
 * load on a read-mostly cache line on top of the libc call. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Bit 0: failure injection armed; bit 1: tracking on. */
static atomic_int hooks;
static atomic_long fail_countdown;
static atomic_bool fail_sticky;
static atomic_bool fail_fired;
static atomic_long outstanding;

enum { HOOK_FAIL = 1, HOOK_TRACK = 2 };

/* Whether this allocation must fail (failure injection). */
static bool should_fail(void) {
  if (atomic_load_explicit(&fail_fired, memory_order_relaxed) &&
      atomic_load_explicit(&fail_sticky, memory_order_relaxed))
    return true;
  long left = atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
  if (left == 1) {
    atomic_store(&fail_fired, true);
    return true;
  }
  return false;
}

static void *track(void *p) {
  if (p != NULL && (atomic_load_explicit(&hooks, memory_order_relaxed) & HOOK_TRACK))
    atomic_fetch_add_explicit(&outstanding, 1, memory_order_relaxed);
  return p;
}

void *ray__malloc(size_t size) {
  if (atomic_load_explicit(&hooks, memory_order_relaxed) & HOOK_FAIL) {
    if (should_fail()) return NULL;
  }
  return track(malloc(size == 0 ? 1 : size));
}

void *ray__calloc(size_t count, size_t size) {
  if (atomic_load_explicit(&hooks, memory_order_relaxed) & HOOK_FAIL) {
    if (should_fail()) return NULL;
  }
  if (count == 0 || size == 0) count = size = 1;
  return track(calloc(count, size));
}

void *ray__realloc(void *ptr, size_t size) {
  if (ptr == NULL) return ray__malloc(size);
  if (atomic_load_explicit(&hooks, memory_order_relaxed) & HOOK_FAIL) {
    if (should_fail()) return NULL;
  }
  /* A moved block is still one allocation: the count does not change. */
  return realloc(ptr, size == 0 ? 1 : size);
}

void ray__free(void *ptr) {
  if (ptr == NULL) return;
  if (atomic_load_explicit(&hooks, memory_order_relaxed) & HOOK_TRACK)
    atomic_fetch_sub_explicit(&outstanding, 1, memory_order_relaxed);
  free(ptr);
}

bool ray__alloc_inject(void) {
  return (atomic_load_explicit(&hooks, memory_order_relaxed) & HOOK_FAIL) && should_fail();
}

void ray__alloc_count(long n) {
  if (atomic_load_explicit(&hooks, memory_order_relaxed) & HOOK_TRACK)
    atomic_fetch_add_explicit(&outstanding, n, memory_order_relaxed);
}

char *ray__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = ray__malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

void ray__alloc_fail_after(long n, bool sticky) {
  atomic_store(&fail_fired, false);
  atomic_store(&fail_sticky, sticky);
  atomic_store(&fail_countdown, n > 0 ? n : 0);
  if (n > 0)
    atomic_fetch_or(&hooks, HOOK_FAIL);
  else
    atomic_fetch_and(&hooks, ~HOOK_FAIL);
}

bool ray__alloc_failed(void) {
  return atomic_load(&fail_fired);
}

void ray__alloc_track(bool on) {
  if (on) {
    atomic_store(&outstanding, 0);
    atomic_fetch_or(&hooks, HOOK_TRACK);
  } else {
    atomic_fetch_and(&hooks, ~HOOK_TRACK);
  }
}

long ray__alloc_outstanding(void) {
  return atomic_load(&outstanding);
}
