/* counter.c - the per-thread slots of counter.h's counters. */
#include "counter.h"

_Thread_local unsigned ray__counter_tls_slot RAY__TLS_FAST;

static atomic_uint next_slot;

unsigned ray__counter_take_slot(void) {
  unsigned s = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) % RAY__COUNTER_SLOTS;
  ray__counter_tls_slot = s + 1;
  return s + 1;
}
