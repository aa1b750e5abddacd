/* pool.h - pooled blocks for the library's short-lived, cross-thread
 * allocations: task blocks (see pool.c). */
#ifndef RAY_POOL_H
#define RAY_POOL_H

#include <stddef.h>

/* A block of at least `size` bytes, 16-byte aligned, or NULL when out of
 * memory. Counts as one allocation for alloc.h's failure injection and
 * leak tracking, like ray__malloc. Thread-safe; no lock on the common path;
 * safe under any lock of the library (the depot's lock is a leaf). */
void *ray__pool_alloc(size_t size);
/* Give back a block from ray__pool_alloc (any thread; NULL is a no-op). */
void ray__pool_free(void *p);

#endif /* RAY_POOL_H */
