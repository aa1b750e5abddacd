/* rfree.h - frees handed back to the thread that allocated: a block that
 * another thread frees goes to the allocating thread's inbox (one
 * compare-and-swap), and that thread frees it on its own malloc arena the
 * next time it allocates (ray__rfree_drain). Without it, the workers that
 * drop the last reference to a result the host allocated free it into the
 * host's arena while the host allocates the next one: in a task chain that
 * was 840,000 futex calls on glibc's arena lock per 2.3 M tasks (ADR-002,
 * issue 12). Used for store entries (memory.c, store.c).
 *
 * A thread's home lives as long as the process (homes of ended threads are
 * reused by new ones): an entry may outlive the thread that made it. When
 * a thread ends, its home is closed (its inbox freed); a free to a closed
 * home is an ordinary free. rfree.c calls alloc.c, slab.c and thread.c
 * only.
 *
 * Small blocks (RAY__RFREE_SMALL bytes: a store entry's header with a small
 * payload) come from the thread's slabs (slab.h) instead of malloc: no
 * lock, no atomic operation, reused in address order, and handed back to
 * their slab by their own thread (glibc's malloc keeps 7 blocks a size per
 * thread; past that each malloc and free took the arena lock: 380
 * instructions and four locked exchanges a task, ADR-002). */
#ifndef RAY_RFREE_H
#define RAY_RFREE_H

#include <stddef.h>

#include "slab.h"

enum { RAY__RFREE_SMALL = RAY__SLAB_BLOCK }; /* bytes in a small block */

typedef struct ray__rfree_home_s ray__rfree_home_t;

/* The calling thread's home, made on first use; NULL when out of memory or
 * no thread-exit hook can be had (blocks then carry no home and are freed
 * directly; ray__rfree_alloc_small fails). */
ray__rfree_home_t *ray__rfree_home(void);
/* Free `block` (from ray__malloc, at least 8 bytes: its first word becomes
 * the inbox link) that the thread of `home` allocated: at once when the
 * caller is that thread, when home is NULL or closed; else into its inbox.
 * Any thread; lock-free. */
void ray__rfree(ray__rfree_home_t *home, void *block);
/* A small block (RAY__RFREE_SMALL bytes, 16-byte aligned) from the calling
 * thread's slabs; NULL when out of memory. Counts as one allocation for
 * alloc.h's tracking and failure injection, as ray__malloc does. */
void *ray__rfree_alloc_small(void);
/* ray__rfree for a block from ray__rfree_alloc_small, `home` the calling
 * thread's home then (never NULL: the allocation made it): back to its
 * slab at once when the caller is that thread, or when the home is closed
 * (the slab is an orphan then); else into the home's inbox. Any thread;
 * lock-free. */
void ray__rfree_small(ray__rfree_home_t *home, void *block);
/* Free the calling thread's slabs that hold no block (ray_shutdown does, for
 * its caller; a thread's slabs go when it ends). */
void ray__rfree_trim(void);
/* Take what other threads handed back to the calling thread: small blocks
 * back to its slabs, the others freed (cheap when nothing waits: one
 * load). */
void ray__rfree_drain(void);
/* Empty every inbox of every thread now (ray_shutdown: allocations are all
 * back once the runtime is gone). Any thread. Blocks from ray__malloc are
 * freed; small blocks of another live thread go back into its inbox (only
 * that thread may touch its slabs; they counted as freed already). */
void ray__rfree_drain_all(void);

#endif /* RAY_RFREE_H */
