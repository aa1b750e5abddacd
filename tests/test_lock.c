/* test_lock.c - the spinning lock of the hot sections (src/lock.h): a fresh
 * lock is free, lock/unlock pairs repeat, mutual exclusion holds between
 * threads that fight for it (the contended path, which yields), and a thread
 * that waits for a held lock enters only once the holder lets go. The
 * reader-writer lock: readers share it, a writer excludes readers and
 * waits for those inside, and what either side wrote inside is seen by the
 * next to enter; writers and readers fighting keep a plain counter whole. */
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

/* ---- the reader-writer lock ---- */

typedef struct {
  ray__rwlock_t l;
  rt_latch_t in, out;
  int x; /* plain: written inside the lock only */
  int seen;
} rw_t;

static void reader_holds(void *arg) {
  rw_t *r = arg;
  ray__rwlock_rdlock(&r->l);
  rt_latch_signal(&r->in);   /* inside */
  rt_latch_wait(&r->out, 1); /* until told to leave */
  r->x = 1;                  /* the last thing before it leaves */
  ray__rwlock_rdunlock(&r->l);
}

static void writer_reads(void *arg) {
  rw_t *r = arg;
  rt_latch_signal(&r->in); /* about to wait for the reader */
  ray__rwlock_wrlock(&r->l);
  r->seen = r->x;
  r->x = 2;
  ray__rwlock_wrunlock(&r->l);
}

static void reader_reads(void *arg) {
  rw_t *r = arg;
  ray__rwlock_rdlock(&r->l);
  r->seen = r->x;
  ray__rwlock_rdunlock(&r->l);
}

static void test_rwlock_readers_share_writers_exclude(void **state) {
  (void)state;
  rw_t r = {.x = 0, .seen = -1};
  assert_int_equal(ray__rwlock_init(&r.l), 0);
  rt_latch_init(&r.in);
  rt_latch_init(&r.out);
  /* Two readers at once: a second would hang here if readers excluded. */
  uv_thread_t a, w;
  assert_int_equal(uv_thread_create(&a, reader_holds, &r), 0);
  rt_latch_wait(&r.in, 1);
  ray__rwlock_rdlock(&r.l);
  ray__rwlock_rdunlock(&r.l);
  /* A writer waits for the reader inside and sees what it wrote. */
  assert_int_equal(uv_thread_create(&w, writer_reads, &r), 0);
  rt_latch_wait(&r.in, 2);
  rt_latch_signal(&r.out);
  uv_thread_join(&a);
  uv_thread_join(&w);
  assert_int_equal(r.seen, 1);
  /* A reader after the writer sees the writer's write. */
  assert_int_equal(uv_thread_create(&a, reader_reads, &r), 0);
  uv_thread_join(&a);
  assert_int_equal(r.seen, 2);
  rt_latch_destroy(&r.in);
  rt_latch_destroy(&r.out);
  ray__rwlock_destroy(&r.l);
}

/* Writers update three plain fields with a yield in the middle; readers
 * check they agree and never go down. Both fight, so readers back off from
 * writers and writers wait readers out. */
typedef struct {
  ray__rwlock_t l;
  long counter, a, b; /* plain; equal whenever no writer is inside */
  atomic_int bad;
  int iters;
} rwfight_t;

static void rw_writer(void *arg) {
  rwfight_t *f = arg;
  for (int i = 0; i < f->iters; i++) {
    ray__rwlock_wrlock(&f->l);
    long c = f->counter;
    f->a = c + 1;
    sched_yield(); /* a reader or writer that got in now would see a torn update */
    f->b = c + 1;
    f->counter = c + 1;
    ray__rwlock_wrunlock(&f->l);
  }
}

static void rw_reader(void *arg) {
  rwfight_t *f = arg;
  long last = 0;
  for (int i = 0; i < f->iters * 4; i++) {
    ray__rwlock_rdlock(&f->l);
    long c = f->counter;
    if (c < last || f->a != c || f->b != c) atomic_fetch_add(&f->bad, 1);
    last = c;
    ray__rwlock_rdunlock(&f->l);
  }
}

static void test_rwlock_under_contention(void **state) {
  (void)state;
  rwfight_t f = {.counter = 0, .a = 0, .b = 0, .iters = rt_iters(2000, 200)};
  atomic_init(&f.bad, 0);
  assert_int_equal(ray__rwlock_init(&f.l), 0);
  uv_thread_t t[4];
  assert_int_equal(uv_thread_create(&t[0], rw_writer, &f), 0);
  assert_int_equal(uv_thread_create(&t[1], rw_writer, &f), 0);
  assert_int_equal(uv_thread_create(&t[2], rw_reader, &f), 0);
  assert_int_equal(uv_thread_create(&t[3], rw_reader, &f), 0);
  for (int i = 0; i < 4; i++) uv_thread_join(&t[i]);
  assert_int_equal(f.counter, 2L * f.iters); /* no increment lost */
  assert_int_equal(atomic_load(&f.bad), 0);
  ray__rwlock_destroy(&f.l);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fresh_lock_is_free),
      cmocka_unit_test(test_mutual_exclusion),
      cmocka_unit_test(test_waiter_enters_after_unlock),
      cmocka_unit_test(test_rwlock_readers_share_writers_exclude),
      cmocka_unit_test(test_rwlock_under_contention),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
