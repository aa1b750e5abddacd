/* pool.c - pooled blocks: size classes of magazines (mag.h) for the blocks
 * that are made on one thread and freed on another many times a second:
 * task blocks, made by the submitter and freed by the worker that ran the
 * task. Through malloc each such free contends for the allocating thread's
 * arena lock; here it is a thread-local push, and blocks move between
 * threads a batch at a time (mag.c). In single_client_tasks_async the
 * futex calls fell from about 8,000 to about 550 a second (ADR-002).
 *
 * Store entries stay with malloc: pooled, they measured slower (the time
 * in ray__store_pin and ray__store_complete went to cache misses on the
 * entries' headers; why their reuse order costs more than malloc's is not
 * settled, ADR-002), and small task results no longer need an entry of
 * their own (ray__store_complete_small).
 *
 * A block is a magazine item: a 16-byte node, then the caller's bytes. While
 * the block is out, the node's first word holds its class, so a free needs
 * no size. Sizes above the largest class go to ray__malloc with the same
 * header (class BIG). Blocks of a class stay with the process (mag.c: the
 * high-water mark of blocks out at once is kept); larger ones are freed.
 *
 * Checking: a free block's bytes are poisoned for AddressSanitizer and made
 * inaccessible for valgrind's memcheck, so a use after free is still caught
 * although the memory stays mapped. Leaks are caught by alloc.h's tracking,
 * which counts pooled blocks out and back like allocations. */
#include "pool.h"

#include <stdint.h>

#include "testing.h" /* ray__pool_pages */
#include "alloc.h"
#include "guard.h" /* RAY__TLS_FAST */
#include "mag.h"
#include "poison.h"

enum { NCLASS = 5, BATCH = 32, HDR = sizeof(ray__mag_node_t), BIG = NCLASS };

/* Item sizes, header included: 128 B to 2 KiB (a task with a few
 * arguments; an entry with up to 1 KiB of inline payload). */
static ray__mag_kind_t kinds[NCLASS] = {
    RAY__MAG_KIND(128, BATCH, NULL),  RAY__MAG_KIND(256, BATCH, NULL),
    RAY__MAG_KIND(512, BATCH, NULL),  RAY__MAG_KIND(1024, BATCH, NULL),
    RAY__MAG_KIND(2048, BATCH, NULL),
};

static _Thread_local ray__mag_t mags[NCLASS] RAY__TLS_FAST;

static void pool_exit(ray__thread_exit_t *h) {
  (void)h;
  for (unsigned c = 0; c < NCLASS; c++) ray__mag_flush(&kinds[c], &mags[c]);
}

static _Thread_local ray__thread_exit_t exit_hook RAY__TLS_FAST = {.fn = pool_exit};

static inline unsigned class_of(size_t size) {
  size_t need = size + HDR;
  unsigned c = 0;
  while (c < NCLASS && kinds[c].item < need) c++;
  return c;
}

void *ray__pool_alloc(size_t size) {
  unsigned c = class_of(size);
  ray__mag_node_t *n;
  if (c == BIG) {
    if (size > SIZE_MAX - HDR || (n = ray__malloc(size + HDR)) == NULL) return NULL;
  } else {
    if (ray__alloc_inject()) return NULL;
    if ((n = ray__mag_take(&kinds[c], &mags[c], &exit_hook)) == NULL) return NULL;
    ray__alloc_count(1);
    RAY__UNPOISON(n + 1, kinds[c].item - HDR);
  }
  n->next = (ray__mag_node_t *)(uintptr_t)c;
  return n + 1;
}

void ray__pool_free(void *p) {
  if (p == NULL) return;
  ray__mag_node_t *n = (ray__mag_node_t *)p - 1;
  unsigned c = (unsigned)(uintptr_t)n->next;
  if (c == BIG) {
    ray__free(n);
    return;
  }
  RAY__POISON(p, kinds[c].item - HDR);
  ray__alloc_count(-1);
  ray__mag_give(&kinds[c], &mags[c], &exit_hook, n);
}

size_t ray__pool_pages(size_t size) {
  unsigned c = class_of(size);
  return c == BIG ? 0 : ray__mag_pages(&kinds[c]);
}
