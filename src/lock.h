/* lock.h - the lock for short, hot critical sections (a store shard, a
 * worker's deque, an actor's mailbox), and the CPU's spin hint every
 * spinner uses, and a reader-writer lock for read-mostly tables. lock.c
 * calls counter.c only (a reader's slot).
 *
 * Why not a libuv mutex: these sections are a few dozen instructions taken
 * millions of times a second by the host and the workers at once. A pthread
 * mutex sleeps on a futex when contended, and every unlock after that wakes
 * it with a syscall: with tasks handed from the host to the workers that
 * was 0.67 futex calls per task, a third of the run in the kernel (ADR-002,
 * issue 12). Every other lock of the library is a libuv mutex. */
#ifndef RAY_LOCK_H
#define RAY_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "counter.h"

/* One pause in a spin loop (the CPU's spin hint), for every spinner: the
 * lock below, idle workers, blocking calls, a woken call waiting out its
 * notifier. */
static inline void ray__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* The lock. It never sleeps in the kernel: a contended lock spins, and
 * yields the CPU every RAY__LOCK_SPINS pauses so that a holder that was
 * preempted gets to run (the machine may have fewer cores than threads).
 * Not fair, not recursive; never hold it across a wait or a condition
 * variable (a holder may take a leaf mutex and signal, as waking a parked
 * worker does). Zero-initialised (ray__lock_init) means unlocked; there is
 * nothing to destroy. Acquire on lock, release on unlock. */
typedef struct ray__lock_s {
  atomic_uint held;
} ray__lock_t;

enum { RAY__LOCK_SPINS = 8 };

static inline void ray__lock_init(ray__lock_t *l) {
  atomic_init(&l->held, 0);
}
/* The contended path (lock.c). */
void ray__lock_wait(ray__lock_t *l);
static inline void ray__lock(ray__lock_t *l) {
  if (atomic_exchange_explicit(&l->held, 1, memory_order_acquire) != 0) ray__lock_wait(l);
}
static inline void ray__unlock(ray__lock_t *l) {
  atomic_store_explicit(&l->held, 0, memory_order_release);
}

/* A reader-writer lock for a read-mostly table that several threads read
 * at a high rate (the actor registry: a lookup per method call). A reader
 * counts itself in its own thread's slot (counter.h), so readers on
 * different cores do not pass one cache line between them, as they do on
 * a pthread rwlock's reader count; a writer raises `writer`, then waits
 * until every slot reads zero. Readers back off while a writer is in, so
 * writers (rare: creating, naming, releasing actors) are not starved. Both
 * sides spin and yield; neither may block while holding it. */
typedef struct ray__rwlock_s {
  ray__counter_t readers;
  atomic_bool writer;
  uv_mutex_t wmu; /* one writer at a time */
} ray__rwlock_t;

/* 0, or a libuv error (the mutex). */
int ray__rwlock_init(ray__rwlock_t *l);
void ray__rwlock_destroy(ray__rwlock_t *l);
/* The contended paths (lock.c). */
void ray__rwlock_rdwait(ray__rwlock_t *l);
void ray__rwlock_wrlock(ray__rwlock_t *l);
void ray__rwlock_wrunlock(ray__rwlock_t *l);

/* Count in, then look for a writer (Dekker's order against the writer's
 * "raise the flag, then read the slots": both sequentially consistent). */
static inline void ray__rwlock_rdlock(ray__rwlock_t *l) {
  ray__counter_add(&l->readers, 1);
  if (atomic_load(&l->writer)) ray__rwlock_rdwait(l);
}
static inline void ray__rwlock_rdunlock(ray__rwlock_t *l) {
  ray__counter_sub(&l->readers, 1);
}

#endif /* RAY_LOCK_H */
