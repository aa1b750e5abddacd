/* test_lock.c - the spinning lock of the hot sections (src/lock.h): a fresh
 * lock is free, lock/unlock pairs repeat, mutual exclusion holds between
 * threads that fight for it (the contended path, which yields), and a thread
 * that waits for a held lock enters only once the holder lets go. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <sched.h>

#include "lock.h"

static void test_fresh_lock_is_free(void **state) {
  (void)state;
  ray__lock_t l;
  ray__lock_init(&l);
  for (int i = 0; i < 3; i++) { /* a held lock would hang here: ctest's timeout */
    ray__lock(&l);
    assert_int_equal(atomic_load(&l.held), 1);
    ray__unlock(&l);
    assert_int_equal(atomic_load(&l.held), 0);
  }
}

/* ---- mutual exclusion under contention ---- */

enum { FIGHTERS = 4 };

typedef struct {
  ray__lock_t lock;
  long counter;      /* plain: only the lock keeps the increments whole */
  atomic_int inside; /* threads inside the section at once */
  atomic_int overlaps;
  int iters;
} fight_t;

static void fighter(void *arg) {
  fight_t *f = arg;
  for (int i = 0; i < f->iters; i++) {
    ray__lock(&f->lock);
    if (atomic_fetch_add(&f->inside, 1) != 0) atomic_fetch_add(&f->overlaps, 1);
    f->counter++;
    atomic_fetch_sub(&f->inside, 1);
    ray__unlock(&f->lock);
  }
}

static void test_mutual_exclusion(void **state) {
  (void)state;
  fight_t f = {.iters = rt_iters(200000, 5000)};
  ray__lock_init(&f.lock);
  uv_thread_t t[FIGHTERS];
  for (int i = 0; i < FIGHTERS; i++) assert_int_equal(uv_thread_create(&t[i], fighter, &f), 0);
  for (int i = 0; i < FIGHTERS; i++) uv_thread_join(&t[i]);
  assert_int_equal(atomic_load(&f.overlaps), 0);
  assert_int_equal(f.counter, (long)FIGHTERS * f.iters);
  assert_int_equal(atomic_load(&f.lock.held), 0);
}

/* ---- a waiter enters only after the holder unlocks ---- */

typedef struct {
  ray__lock_t lock;
  atomic_bool trying;
  atomic_bool entered;
} waiter_t;

static void waiter(void *arg) {
  waiter_t *w = arg;
  atomic_store(&w->trying, true);
  ray__lock(&w->lock);
  atomic_store(&w->entered, true);
  ray__unlock(&w->lock);
}

static void test_waiter_enters_after_unlock(void **state) {
  (void)state;
  waiter_t w;
  ray__lock_init(&w.lock);
  atomic_init(&w.trying, false);
  atomic_init(&w.entered, false);
  ray__lock(&w.lock);
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, waiter, &w), 0);
  while (!atomic_load(&w.trying)) sched_yield();
  for (int i = 0; i < 100; i++) { /* it spins and yields meanwhile: never inside */
    sched_yield();
    assert_false(atomic_load(&w.entered));
  }
  ray__unlock(&w.lock);
  uv_thread_join(&t);
  assert_true(atomic_load(&w.entered));
  assert_int_equal(atomic_load(&w.lock.held), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fresh_lock_is_free),
      cmocka_unit_test(test_mutual_exclusion),
      cmocka_unit_test(test_waiter_enters_after_unlock),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
