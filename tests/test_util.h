/* test_util.h - helpers shared by the cmocka test programs.
 *
 * Every test brackets its body with rt_begin() / rt_end(): rt_begin starts
 * counting outstanding allocations and starts the runtime; rt_end shuts it
 * down and asserts the shutdown was clean (no thread left, no allocation
 * left), the way libuv's MAKE_VALGRIND_HAPPY does.
 *
 * Only the main thread may call cmocka asserts: helper threads record what
 * they saw into a rt_errs_t (atomics) and the main thread checks it after
 * joining them (rt_errs_assert). Threads synchronise with rt_latch_t (a
 * counter + condition variable), never with sleeps. */
#ifndef RAY_TEST_UTIL_H
#define RAY_TEST_UTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

/* Standard headers first, then cmocka (its documented requirement). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <uv.h>

#include "testing.h" /* rustyray.h + the internal hooks (alloc.h) */

#include <cmocka.h>

/* ---- scale ------------------------------------------------------------- */

static inline bool rt_under_valgrind(void) {
  return getenv("RAY_TEST_UNDER_VALGRIND") != NULL;
}

/* `normal` iterations, or `slow` ones under valgrind. */
static inline int rt_iters(int normal, int slow) {
  return rt_under_valgrind() ? slow : normal;
}

/* ---- runtime bracket --------------------------------------------------- */

/* The configuration the tests use unless they need another one: defaults
 * with two workers (the dev machine has two cores; keeps thread churn low). */
static inline void rt_config(ray_config_t *cfg) {
  assert_int_equal(ray_config_init(cfg), 0);
  cfg->num_workers = 2;
}

static inline void rt_begin_cfg(const ray_config_t *cfg) {
  /* A previous test that failed half-way may have left the runtime up. */
  if (ray_is_initialized()) (void)ray_shutdown();
  ray__alloc_fail_after(0, false);
  ray__alloc_track(true);
  assert_int_equal(ray_init(cfg), 0);
  assert_true(ray_is_initialized());
}

static inline void rt_begin(void) {
  ray_config_t cfg;
  rt_config(&cfg);
  rt_begin_cfg(&cfg);
}

/* Shut down and check that every thread is gone (views may still be held,
 * so the allocation count is checked separately). */
static inline void rt_shutdown_clean(void) {
  ray__alloc_fail_after(0, false);
  assert_int_equal(ray_shutdown(), 0);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
}

static inline void rt_assert_no_leaks(void) {
  assert_int_equal(ray__alloc_outstanding(), 0);
}

static inline void rt_end(void) {
  rt_shutdown_clean();
  rt_assert_no_leaks();
}

static inline ray_stats_t rt_stats(void) {
  ray_stats_t s;
  memset(&s, 0xA5, sizeof s);
  assert_int_equal(ray_stats(&s), 0);
  return s;
}

/* Assert a call returned `want`, printing both codes' names when not. */
#define assert_rc(call, want)                                                                  \
  do {                                                                                         \
    int rc_ = (call);                                                                          \
    int want_ = (want);                                                                        \
    if (rc_ != want_) {                                                                        \
      print_error("%s:%d: %s returned %d (%s), expected %d (%s)\n", __FILE__, __LINE__, #call, \
                  rc_, ray_err_name(rc_), want_, ray_err_name(want_));                         \
      fail();                                                                                  \
    }                                                                                          \
  } while (0)

static inline bool rt_is_zero(const void *p, size_t n) {
  const unsigned char *c = (const unsigned char *)p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != 0) return false;
  return true;
}

static inline void rt_assert_buf_zeroed(const ray_buf_t *b) {
  assert_null(b->data);
  assert_int_equal(b->size, 0);
  assert_int_equal(b->type, 0);
  assert_null(b->priv_);
}

/* Fill with a recognisable non-zero pattern, to check a call zeroes it. */
static inline void rt_garbage(void *p, size_t n) {
  memset(p, 0x5A, n);
}

/* Deterministic payload: byte i of object `seed`. */
static inline unsigned char rt_pat(uint64_t seed, size_t i) {
  return (unsigned char)((seed * 131u + i * 7u + (i >> 8)) & 0xFF);
}

static inline void rt_fill(void *p, size_t n, uint64_t seed) {
  unsigned char *c = (unsigned char *)p;
  for (size_t i = 0; i < n; i++) c[i] = rt_pat(seed, i);
}

static inline bool rt_check(const void *p, size_t n, uint64_t seed) {
  const unsigned char *c = (const unsigned char *)p;
  for (size_t i = 0; i < n; i++)
    if (c[i] != rt_pat(seed, i)) return false;
  return true;
}

/* msgpack encoding of an int64, for ray__object_fulfil on I64 objects. */
static inline size_t rt_encode_i64(int64_t v, char *out, size_t cap) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_int64(&pk, v);
  size_t n = sb.size <= cap ? sb.size : 0;
  if (n) memcpy(out, sb.data, n);
  msgpack_sbuffer_destroy(&sb);
  return n;
}

/* ---- latch: counter + condition variable -------------------------------- */

typedef struct {
  uv_mutex_t mu;
  uv_cond_t cv;
  long count;
} rt_latch_t;

static inline void rt_latch_init(rt_latch_t *l) {
  assert_int_equal(uv_mutex_init(&l->mu), 0);
  assert_int_equal(uv_cond_init(&l->cv), 0);
  l->count = 0;
}

static inline void rt_latch_destroy(rt_latch_t *l) {
  uv_cond_destroy(&l->cv);
  uv_mutex_destroy(&l->mu);
}

static inline void rt_latch_signal(rt_latch_t *l) {
  uv_mutex_lock(&l->mu);
  l->count++;
  uv_cond_broadcast(&l->cv);
  uv_mutex_unlock(&l->mu);
}

/* Block until the latch has been signalled at least n times in total. */
static inline void rt_latch_wait(rt_latch_t *l, long n) {
  uv_mutex_lock(&l->mu);
  while (l->count < n) uv_cond_wait(&l->cv, &l->mu);
  uv_mutex_unlock(&l->mu);
}

/* ---- errors seen by helper threads ------------------------------------- */

typedef struct {
  atomic_int failures;
  atomic_int first_line;
  atomic_int first_value;
} rt_errs_t;

static inline void rt_errs_init(rt_errs_t *e) {
  atomic_init(&e->failures, 0);
  atomic_init(&e->first_line, 0);
  atomic_init(&e->first_value, 0);
}

static inline void rt_errs_record(rt_errs_t *e, int line, int value) {
  if (atomic_fetch_add(&e->failures, 1) == 0) {
    atomic_store(&e->first_value, value);
    atomic_store(&e->first_line, line);
  }
}

/* In a helper thread: record (line, value) when cond is false. */
#define RT_CHECK(errs, cond, value)                              \
  do {                                                           \
    if (!(cond)) rt_errs_record((errs), __LINE__, (int)(value)); \
  } while (0)

/* In the main thread, after joining the helpers. */
static inline void rt_errs_assert(rt_errs_t *e) {
  int n = atomic_load(&e->failures);
  if (n != 0) {
    int v = atomic_load(&e->first_value);
    print_error("%d check(s) failed in helper threads; first at line %d, value %d (%s)\n", n,
                atomic_load(&e->first_line), v, ray_err_name(v));
    fail();
  }
}

/* ---- on_ready recorder -------------------------------------------------- */

/* The main thread's id, set by main() before running the tests. */
static uv_thread_t rt_main_thread;

typedef struct {
  atomic_int calls;
  atomic_int status;
  atomic_int on_main; /* callbacks that ran on the main thread */
  atomic_uint_fast64_t id;
  atomic_int get_rc; /* ray_get(ref, 0) inside the callback, if do_get */
  atomic_int get_ok; /* payload matched seed/size */
  bool do_get;
  uint64_t seed;
  size_t size;
  rt_latch_t *latch; /* signalled after recording, if set */
} rt_cb_rec_t;

static inline void rt_cb_rec_init(rt_cb_rec_t *r, rt_latch_t *latch) {
  atomic_init(&r->calls, 0);
  atomic_init(&r->status, 1);
  atomic_init(&r->on_main, 0);
  atomic_init(&r->id, 0);
  atomic_init(&r->get_rc, 1);
  atomic_init(&r->get_ok, 0);
  r->do_get = false;
  r->seed = 0;
  r->size = 0;
  r->latch = latch;
}

static inline void rt_cb_record(ray_ref_t ref, int status, void *arg) {
  rt_cb_rec_t *r = (rt_cb_rec_t *)arg;
  uv_thread_t self = uv_thread_self();
  if (uv_thread_equal(&self, &rt_main_thread)) atomic_fetch_add(&r->on_main, 1);
  atomic_store(&r->status, status);
  atomic_store(&r->id, ref.id);
  if (r->do_get) {
    ray_buf_t b;
    int rc = ray_get(ref, 0, &b);
    atomic_store(&r->get_rc, rc);
    if (rc == 0) {
      atomic_store(&r->get_ok, b.size == r->size && rt_check(b.data, b.size, r->seed));
      ray_buf_release(&b);
    }
  }
  atomic_fetch_add(&r->calls, 1);
  if (r->latch) rt_latch_signal(r->latch);
}

/* Before running: record the main thread; RAY_TEST_FILTER / RAY_TEST_SKIP
 * (cmocka glob patterns, e.g. "test_wait*") select tests to run or skip. */
static inline void rt_main_init(void) {
  rt_main_thread = uv_thread_self();
  const char *filter = getenv("RAY_TEST_FILTER");
  const char *skip = getenv("RAY_TEST_SKIP");
  if (filter != NULL && *filter != '\0') cmocka_set_test_filter(filter);
  if (skip != NULL && *skip != '\0') cmocka_set_skip_filter(skip);
}

/* main() of every test program. */
#define RT_MAIN(tests)                                \
  int main(void) {                                    \
    rt_main_init();                                   \
    return cmocka_run_group_tests(tests, NULL, NULL); \
  }

#endif /* RAY_TEST_UTIL_H */
