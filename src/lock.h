/* lock.h - the lock for short, hot critical sections (a store shard, a
 * worker's deque, an actor's mailbox), and the CPU's spin hint every
 * spinner uses. The bottom layer: lock.c calls no other file of the library.
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

#endif /* RAY_LOCK_H */
