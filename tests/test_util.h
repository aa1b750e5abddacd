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
 * counter + condition variable), never with sleeps.
 *
 * It also holds what many programs would otherwise copy: the calls that
 * must succeed (rt_register, rt_submit, rt_get_i64, rt_release, rt_put_bytes
 * / rt_assert_bytes...), one-element type lists (rt_t_i64...), a counting
 * free function (rt_count_free) and tiny task functions (rt_fn_zero,
 * rt_fn_one, rt_fn_inc). Everything here is static (inline), so a program
 * pays only for what it uses. */
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

/* ---- calls most tests make ---------------------------------------------- */

/* One-element return/argument type lists, for ray_function_register and
 * method definitions. */
static const uint32_t rt_t_i64[] = {RAY_TYPE_I64};
static const uint32_t rt_t_bytes[] = {RAY_TYPE_BYTES};
static const uint32_t rt_t_msgpack[] = {RAY_TYPE_MSGPACK};

/* rt_config() with `workers` workers, then rt_begin_cfg(). */
static inline void rt_begin_workers(unsigned workers) {
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = workers;
  rt_begin_cfg(&cfg);
}

/* For tests of calls made without a runtime: shut down whatever a test that
 * failed half-way left running, and check none is. */
static inline void rt_no_runtime(void) {
  if (ray_is_initialized()) (void)ray_shutdown();
  assert_false(ray_is_initialized());
}

/* Register a function that must be accepted; returns its handle. */
static inline ray_function_t rt_register(const char *name, ray_task_fn fn, void *arg,
                                         const uint32_t *types, size_t num_returns) {
  ray_function_t f = {0};
  assert_rc(ray_function_register(name, fn, arg, types, num_returns, &f), 0);
  assert_true(f.id != 0);
  return f;
}

/* Submit a task that must be accepted; returns its first result's ref. */
static inline ray_ref_t rt_submit(ray_function_t f, const ray_arg_t *args, size_t nargs,
                                  const ray_task_opts_t *opts) {
  ray_ref_t r = RAY_REF_NIL;
  assert_rc(ray_task_submit(f, args, nargs, opts, &r), 0);
  assert_true(r.id != 0);
  return r;
}

/* Wait for an I64 ref that must succeed; returns its value. */
static inline int64_t rt_get_i64(ray_ref_t r) {
  int64_t v = INT64_MIN + 1;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  return v;
}

/* Release a reference that must be held. */
static inline void rt_release(ray_ref_t r) {
  assert_rc(ray_ref_release(r), 0);
}

/* The error object of a failed ref (the caller frees it). */
static inline ray_error_t *rt_get_error(ray_ref_t r) {
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(r, &e), 0);
  assert_non_null(e);
  return e;
}

/* Wait for a ref to fail with `code` (and the view to stay zeroed). */
static inline void rt_assert_fails(ray_ref_t r, int code) {
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), code);
  rt_assert_buf_zeroed(&b);
}

/* Put `size` bytes of pattern `seed` (rt_fill) as a BYTES object. */
static inline ray_ref_t rt_put_bytes(size_t size, uint64_t seed) {
  unsigned char *p = (unsigned char *)malloc(size ? size : 1);
  assert_non_null(p);
  rt_fill(p, size, seed);
  ray_ref_t r = RAY_REF_NIL;
  assert_rc(ray_put(p, size, &r), 0);
  free(p);
  assert_true(r.id != 0);
  assert_int_equal(r.type, RAY_TYPE_BYTES);
  return r;
}

/* A ready ref holds `size` bytes of pattern `seed`; the view is released
 * (and zeroed by the release). */
static inline void rt_assert_bytes(ray_ref_t r, size_t size, uint64_t seed) {
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  assert_int_equal(b.size, size);
  assert_true(rt_check(b.data, size, seed));
  ray_buf_release(&b);
  rt_assert_buf_zeroed(&b);
}

/* No object left: nothing in memory or spilled, every object created was
 * freed. The background spiller may still be letting go of a batch it took
 * out of memory (it frees payloads after releasing its lock), so this waits
 * for it through the documented hook first. */
static inline void rt_assert_store_empty(void) {
  assert_rc(ray__quiesce(60000), 0);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  assert_int_equal(s.bytes_spilled, 0);
  assert_true(s.objects_created == s.objects_freed);
}

/* A ref that was never issued (far beyond anything the id counter reaches). */
static inline ray_ref_t rt_unknown_ref(void) {
  ray_ref_t r = {UINT64_MAX - 12345, RAY_TYPE_BYTES};
  return r;
}

/* A pending object of `type`, failed by its "producer" with `code`/`msg`. */
static inline ray_ref_t rt_make_failed(uint32_t type, int code, const char *msg) {
  ray_ref_t r;
  ray_error_t *e = NULL;
  assert_rc(ray__object_create_pending(type, &r), 0);
  assert_rc(ray_error_new(&e, code, "producer", "%s", msg), 0);
  assert_rc(ray__object_fail(r, e), 0);
  ray_error_free(e);
  return r;
}

/* ---- a counting free function ------------------------------------------ */

/* Calls of rt_count_free so far; a test resets it before counting. */
static atomic_int rt_frees;
/* The buffer and the arg of its latest call. */
static void *_Atomic rt_freed_data, *_Atomic rt_freed_arg;

/* A free_fn for ray_put_owned / ray_return_owned: frees and counts. */
static inline void rt_count_free(void *p, void *arg) {
  atomic_store(&rt_freed_data, p);
  atomic_store(&rt_freed_arg, arg);
  atomic_fetch_add(&rt_frees, 1);
  free(p);
}

/* ---- small task functions (also usable as actor methods) ----------------- */

/* Returns I64 0. */
static inline int rt_fn_zero(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_i64(ctx, 0, 0);
}

/* Returns I64 1. */
static inline int rt_fn_one(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_i64(ctx, 0, 1);
}

/* Returns its I64 argument 0 plus one (the argument's code if it has none). */
static inline int rt_fn_inc(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t v = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &v);
  if (rc != 0) return rc;
  return ray_return_i64(ctx, 0, v + 1);
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
