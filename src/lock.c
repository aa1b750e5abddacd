/* lock.c - the contended paths of ray__lock and ray__rwlock (lock.h). */
#include "lock.h"

#include <sched.h>

/* One pause of a waiter, the i-th (from 1): a spin hint, and every
 * RAY__LOCK_SPINS pauses a yield so a preempted holder gets to run. */
static void backoff(unsigned i) {
  ray__cpu_relax();
  if (i % RAY__LOCK_SPINS == 0) sched_yield();
}

void ray__lock_wait(ray__lock_t *l) {
  for (;;) {
    /* Read until it looks free (no cache-line ping-pong while it is held),
     * then try to take it. */
    for (unsigned i = 1; atomic_load_explicit(&l->held, memory_order_relaxed) != 0; i++) backoff(i);
    if (atomic_exchange_explicit(&l->held, 1, memory_order_acquire) == 0) return;
  }
}

int ray__rwlock_init(ray__rwlock_t *l) {
  ray__counter_init(&l->readers);
  atomic_init(&l->writer, false);
  return uv_mutex_init(&l->wmu);
}

void ray__rwlock_destroy(ray__rwlock_t *l) {
  uv_mutex_destroy(&l->wmu);
}

void ray__rwlock_rdwait(ray__rwlock_t *l) {
  for (;;) {
    ray__counter_sub(&l->readers, 1); /* not in after all: let the writer go */
    for (unsigned i = 1; atomic_load_explicit(&l->writer, memory_order_relaxed); i++) backoff(i);
    ray__counter_add(&l->readers, 1);
    if (!atomic_load(&l->writer)) return;
  }
}

void ray__rwlock_wrlock(ray__rwlock_t *l) {
  uv_mutex_lock(&l->wmu);
  atomic_store(&l->writer, true);
  for (unsigned i = 1; ray__counter_sum(&l->readers) != 0; i++) backoff(i);
}

void ray__rwlock_wrunlock(ray__rwlock_t *l) {
  atomic_store_explicit(&l->writer, false, memory_order_release);
  uv_mutex_unlock(&l->wmu);
}
