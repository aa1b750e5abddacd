/* alloc.h - the one allocation wrapper every internal allocation goes through.
 *
 * Why: SQLite-style out-of-memory testing. A test arms ray__alloc_fail_after(n)
 * and the n-th allocation from then on fails, so every error path that
 * follows an allocation can be driven and checked. Tracking mode counts the
 * outstanding allocations so a test can assert a clean shutdown freed every
 * byte. Both hooks cost one relaxed atomic load when off.
 *
 * msgpack-c's own unpack zones use malloc directly and are not counted. */
#ifndef RAY_ALLOC_H
#define RAY_ALLOC_H

#include <stdbool.h>
#include <stddef.h>

void *ray__malloc(size_t size);
void *ray__calloc(size_t count, size_t size);
void *ray__realloc(void *ptr, size_t size);
void ray__free(void *ptr);
char *ray__strdup(const char *s);

/* For allocators built on these (pool.c): whether the allocation being made
 * must fail (failure injection: counts as one allocation), and count `n`
 * blocks handed out (n > 0) or back (n < 0) while tracking, so their leaks
 * show in ray__alloc_outstanding like ray__malloc's. One relaxed load when
 * the hooks are off. */
bool ray__alloc_inject(void);
void ray__alloc_count(long n);

/* Test hooks (not public API). */

/* Make the n-th allocation from now fail (n >= 1), and every one after it
 * until re-armed when `sticky`; n <= 0 disarms. */
void ray__alloc_fail_after(long n, bool sticky);
/* Whether an armed failure has fired since the last ray__alloc_fail_after(). */
bool ray__alloc_failed(void);
/* Start (true) or stop counting outstanding allocations; starting resets the
 * count to zero. */
void ray__alloc_track(bool on);
/* Allocations made while tracking minus the ones freed. */
long ray__alloc_outstanding(void);

#endif /* RAY_ALLOC_H */
