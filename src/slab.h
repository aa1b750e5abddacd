/* slab.h - a thread's slabs of small blocks: the memory behind rfree.h's
 * small blocks (store entry headers with a small payload).
 *
 * A slab is a 64-byte header and 64 slots of RAY__SLAB_BLOCK bytes, aligned
 * to 16 KiB (so a block finds its slab by masking its address). The thread
 * that made a slab owns it and alone allocates from it and frees into it,
 * with no lock and no atomic operation: a free bit per slot, the lowest
 * free slot first, so blocks are reused in address order within a slab
 * (a free list reuses the last block freed first, which after a while
 * scatters a burst of allocations over memory: measured, ADR-002). Blocks
 * that other threads free reach the owner through rfree.h's inboxes.
 *
 * When the owner ends, its slabs are orphaned (ray__slab_exit_begin and
 * _end, run by rfree.c's thread-exit hook): each keeps a count of its
 * blocks still out, which any thread then decrements (ray__slab_free); the
 * last one frees the slab. A slab whose blocks are all free stays with its
 * thread until ray__slab_trim or the thread's end: a thread keeps the most
 * slabs it had in use at once, as pool.c keeps its high-water mark (freeing
 * them as they emptied cost page faults and aligned allocations on every
 * burst of tasks: measured, ADR-002).
 *
 * Free slots are poisoned (poison.h). The bottom layer: slab.c calls no
 * other file. */
#ifndef RAY_SLAB_H
#define RAY_SLAB_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes in a block, 16-byte aligned: a store entry's header with 16 bytes
 * of payload. Three cache lines, line-aligned: a power of two would put
 * every entry's first line in a quarter of the cache's sets (with 256-byte
 * slots single_client_get_object_containing_10k_refs ran at 0.75x). */
enum { RAY__SLAB_BLOCK = 192 };

/* A block from one of the calling thread's slabs, or NULL when out of
 * memory. */
void *ray__slab_alloc(void);
/* Free `block`. The caller is the thread that allocated it, or the block's
 * slab has been orphaned (its thread is in or past ray__slab_exit_begin,
 * and that happened before this call). */
void ray__slab_free(void *block);
/* Free the calling thread's slabs whose blocks are all free. */
void ray__slab_trim(void);
/* The calling thread ends: orphan its slabs (begin), then, after the
 * thread freed what it still had to (its inbox, rfree.c), drop its own hold
 * on each (end). */
void ray__slab_exit_begin(void);
void ray__slab_exit_end(void);

#endif /* RAY_SLAB_H */
