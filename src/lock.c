/* lock.c - the contended path of ray__lock (lock.h). */
#include "lock.h"

#include <sched.h>

void ray__lock_wait(ray__lock_t *l) {
  for (;;) {
    /* Read until it looks free (no cache-line ping-pong while it is held),
     * then try to take it. */
    for (unsigned i = 1; atomic_load_explicit(&l->held, memory_order_relaxed) != 0; i++) {
      ray__cpu_relax();
      if (i % RAY__LOCK_SPINS == 0) sched_yield();
    }
    if (atomic_exchange_explicit(&l->held, 1, memory_order_acquire) == 0) return;
  }
}
