/* counter.h - a counter that many threads bump at a high rate (tasks
 * submitted and finished): one slot per thread, each on its own cache line,
 * summed when read. One shared atomic made every task move that line
 * between the cores of the host and the workers (ADR-002, issue 12). The
 * bottom layer: counter.c calls no other file of the library. */
#ifndef RAY_COUNTER_H
#define RAY_COUNTER_H

#include <stdatomic.h>
#include <stdint.h>

#include "thread.h" /* RAY__TLS_FAST */

/* Threads share a slot only beyond this many (slots are handed out in
 * turn, modulo this). */
enum { RAY__COUNTER_SLOTS = 16 };

typedef struct ray__counter_s {
  struct {
    atomic_uint_fast64_t n;
    char pad_[64 - sizeof(atomic_uint_fast64_t)];
  } slot[RAY__COUNTER_SLOTS];
} ray__counter_t;

/* The calling thread's slot + 1 (0: not yet given one). */
extern _Thread_local unsigned ray__counter_tls_slot RAY__TLS_FAST;
/* Give the calling thread its slot; returns it + 1. */
unsigned ray__counter_take_slot(void);

static inline void ray__counter_init(ray__counter_t *c) {
  for (unsigned i = 0; i < RAY__COUNTER_SLOTS; i++) atomic_init(&c->slot[i].n, 0);
}

/* Add n: sequentially consistent, as an atomic_fetch_add on one shared
 * counter would be, so a reader's later seq_cst loads order with it. */
static inline void ray__counter_add(ray__counter_t *c, uint64_t n) {
  unsigned s = ray__counter_tls_slot;
  if (s == 0) s = ray__counter_take_slot();
  atomic_fetch_add(&c->slot[s - 1].n, n);
}

/* Subtract n (release: what the thread did before is visible to whoever
 * sees the slot drop). */
static inline void ray__counter_sub(ray__counter_t *c, uint64_t n) {
  unsigned s = ray__counter_tls_slot;
  if (s == 0) s = ray__counter_take_slot();
  atomic_fetch_sub_explicit(&c->slot[s - 1].n, n, memory_order_release);
}

/* The sum of every slot (sequentially consistent loads, one slot after the
 * other): every add that happened before the call is in it; adds made
 * while it reads may or may not be. */
static inline uint64_t ray__counter_sum(ray__counter_t *c) {
  uint64_t sum = 0;
  for (unsigned i = 0; i < RAY__COUNTER_SLOTS; i++) sum += atomic_load(&c->slot[i].n);
  return sum;
}

#endif /* RAY_COUNTER_H */
