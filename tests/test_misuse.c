/* test_misuse.c - every caller mistake in the public API gets a documented
 * code (or is a documented no-op), never a crash, a hang or a corrupted
 * store: releasing a ref twice, ids never issued, releasing a view twice
 * (through one ray_buf_t or two copies of it, before and after the object
 * and the runtime are gone), refs, actors and functions of a previous
 * runtime, duplicated refs in one batch, absurd sizes and counts, garbage
 * timeouts (huge ones wait, negative ones mean forever), calls on killed
 * and released actors, NULL pointers, wrong types, and configuration
 * mistakes (RAY_METRICS_PORT=-1 from the environment, a spill directory
 * that is not a usable directory).
 *
 * Tests that need a call to be blocked before acting (a get with a huge
 * timeout, a put waiting for memory) look at the store itself (the entry's
 * watchers, the store's memory waiters) rather than sleeping; they stop
 * looking as soon as the blocked call has returned, so a broken library
 * fails the assertion instead of hanging the test. Helper threads record
 * into atomics; only the main thread asserts. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

#include "internal.h"  /* the store, to see that a call is blocked */
#include "scheduler.h" /* ray__sched_deadline */

/* Refs that were never issued: ids start at RAY__ID_BLOCK (0 is nil), and
 * one far beyond anything the counter will reach. */
static const ray_ref_t k_forged[] = {{1, RAY_TYPE_BYTES},
                                     {RAY__ID_BLOCK - 1, RAY_TYPE_BYTES},
                                     {UINT64_MAX, RAY_TYPE_BYTES},
                                     {UINT64_MAX - 4096, 0}};
#define N_FORGED (sizeof k_forged / sizeof k_forged[0])

/* ---- references ------------------------------------------------------------ */

static void test_ref_release_twice(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t keep = rt_put_bytes(64, 1);
  ray_ref_t r = rt_put_bytes(64, 2);
  assert_rc(ray_ref_release(r), 0);
  /* The second release finds nothing: a code, no effect on other objects. */
  assert_rc(ray_ref_release(r), RAY_ENOTFOUND);
  assert_rc(ray_ref_release(r), RAY_ENOTFOUND);
  assert_rc(ray_ref_retain(r), RAY_ENOTFOUND);
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), RAY_ENOTFOUND);
  rt_assert_buf_zeroed(&b);
  rt_assert_bytes(keep, 64, 1);
  /* The same through the batch calls: each position is one release. */
  ray_ref_t two[2] = {keep, keep};
  assert_rc(ray_ref_retain(keep), 0);
  assert_rc(ray_ref_release_batch(two, 2), 0); /* the last reference went */
  assert_rc(ray_ref_release_batch(two, 2), RAY_ENOTFOUND);
  assert_rc(ray_ref_release(keep), RAY_ENOTFOUND);
  rt_assert_store_empty();
  rt_end();
}

static void ignore_cb(ray_ref_t ref, int status, void *arg) {
  (void)ref;
  (void)status;
  atomic_fetch_add((atomic_int *)arg, 1);
}

static void test_forged_refs(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t real = rt_put_bytes(16, 3);
  atomic_int calls;
  atomic_init(&calls, 0);
  for (size_t i = 0; i < N_FORGED; i++) {
    ray_ref_t f = k_forged[i];
    assert_rc(ray_ref_retain(f), RAY_ENOTFOUND);
    assert_rc(ray_ref_release(f), RAY_ENOTFOUND);
    ray_buf_t b;
    assert_rc(ray_get(f, 0, &b), RAY_ENOTFOUND);
    assert_rc(ray_get(f, 1000, &b), RAY_ENOTFOUND); /* never waits for it */
    assert_rc(ray_get(f, RAY_TIMEOUT_INFINITE, &b), RAY_ENOTFOUND);
    rt_assert_buf_zeroed(&b);
    int64_t v;
    assert_rc(ray_get_i64((ray_ref_t){f.id, 0}, -1, &v), RAY_ENOTFOUND);
    ray_error_t *err = NULL;
    assert_rc(ray_get_error(f, &err), RAY_ENOTFOUND);
    assert_null(err);
    assert_rc(ray_cancel(f), RAY_ENOTFOUND);
    assert_rc(ray_ref_on_ready(f, ignore_cb, &calls), RAY_ENOTFOUND);
    ray_ref_t pair[2] = {real, f};
    bool ready[2] = {true, true};
    assert_rc(ray_wait(pair, 2, 1, RAY_TIMEOUT_INFINITE, ready), RAY_ENOTFOUND);
    ray_buf_t bufs[2];
    assert_rc(ray_get_batch(pair, 2, RAY_TIMEOUT_INFINITE, bufs), RAY_ENOTFOUND);
    rt_assert_buf_zeroed(&bufs[0]);
    rt_assert_buf_zeroed(&bufs[1]);
    /* All or nothing: the real ref is not retained by a failed batch. */
    assert_rc(ray_ref_retain_batch(pair, 2), RAY_ENOTFOUND);
    /* Releasing releases the known ones and reports the unknown one. */
    assert_rc(ray_ref_retain(real), 0);
    assert_rc(ray_ref_release_batch(pair, 2), RAY_ENOTFOUND);
    /* An actor handle or a function handle with that id is unknown too. */
    assert_rc(ray_actor_release((ray_actor_t){f.id}), RAY_ENOTFOUND);
    assert_rc(ray_actor_kill((ray_actor_t){f.id}, true), RAY_ENOTFOUND);
    assert_rc(ray_function_info((ray_function_t){f.id}, NULL, NULL), RAY_ENOTFOUND);
  }
  rt_assert_bytes(real, 16, 3);
  assert_rc(ray_ref_release(real), 0);
  rt_assert_store_empty();
  rt_end();
  assert_int_equal(atomic_load(&calls), 0); /* a failed registration never calls back */
}

/* ---- views --------------------------------------------------------------- */

static void test_buf_release_twice(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t r = rt_put_bytes(200, 4);
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  ray_buf_release(&b);
  rt_assert_buf_zeroed(&b);
  ray_buf_release(&b); /* zeroed: a no-op */
  ray_buf_release(NULL);
  ray_buf_t zero = {0};
  ray_buf_release(&zero);
  rt_assert_bytes(r, 200, 4);
  assert_rc(ray_ref_release(r), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_buf_release_two_copies(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t r = rt_put_bytes(200, 5);
  ray_buf_t b, copy;
  assert_rc(ray_get(r, 0, &b), 0);
  copy = b;
  ray_buf_release(&b);
  ray_buf_release(&copy); /* the view is gone: the copy is a no-op */
  rt_assert_buf_zeroed(&copy);
  /* The object is intact: its one reference still works and frees it. */
  rt_assert_bytes(r, 200, 5);
  ray_ref_t other = rt_put_bytes(100, 6);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(r), RAY_ENOTFOUND);
  rt_assert_bytes(other, 100, 6);
  assert_rc(ray_ref_release(other), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_buf_copy_after_reuse(void **state) {
  (void)state;
  rt_begin();
  /* A stale copy must not release a view opened later (whatever the library
   * reuses underneath), nor a view of another object. */
  ray_ref_t r = rt_put_bytes(200, 7);
  ray_ref_t s = rt_put_bytes(50, 8);
  for (int round = 0; round < 100; round++) {
    ray_buf_t b, stale, fresh, other;
    assert_rc(ray_get(r, 0, &b), 0);
    stale = b;
    ray_buf_release(&b);
    assert_rc(ray_get(r, 0, &fresh), 0);
    assert_rc(ray_get(s, 0, &other), 0);
    ray_buf_release(&stale);                   /* a no-op: fresh and other stay pinned */
    assert_rc(ray_ref_release(r), 0);          /* the object leaves the store... */
    assert_true(rt_check(fresh.data, 200, 7)); /* ...its view keeps the payload */
    assert_true(rt_check(other.data, 50, 8));
    ray_buf_release(&fresh);
    ray_buf_release(&other);
    r = rt_put_bytes(200, 7);
  }
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(s), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_buf_copies_outlive_object_and_runtime(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t r = rt_put_bytes(200, 9);
  ray_ref_t big;
  char large[4096];
  rt_fill(large, sizeof large, 10);
  assert_rc(ray_put(large, sizeof large, &big), 0); /* not inline */
  ray_buf_t b1, b2, c1, c2;
  assert_rc(ray_get(r, 0, &b1), 0);
  assert_rc(ray_get(big, 0, &b2), 0);
  c1 = b1;
  c2 = b2;
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(big), 0);
  ray_buf_release(&b1); /* the last holder: the payload goes */
  ray_buf_release(&c1); /* a no-op, not a second free */
  rt_shutdown_clean();
  assert_true(rt_check(b2.data, sizeof large, 10)); /* valid across shutdown */
  ray_buf_release(&b2);
  ray_buf_release(&c2);
  ray_buf_release(&b2);
  rt_assert_no_leaks();
}

typedef struct {
  ray_buf_t buf;
  rt_latch_t *go;
} racer_t;

static void release_racer(void *arg) {
  racer_t *r = arg;
  rt_latch_wait(r->go, 1);
  ray_buf_release(&r->buf);
}

static void test_buf_copies_released_concurrently(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t r = rt_put_bytes(200, 11);
  int rounds = rt_iters(200, 20);
  for (int i = 0; i < rounds; i++) {
    rt_latch_t go;
    rt_latch_init(&go);
    racer_t a = {.go = &go}, b = {.go = &go};
    assert_rc(ray_get(r, 0, &a.buf), 0);
    b.buf = a.buf;
    uv_thread_t ta, tb;
    assert_int_equal(uv_thread_create(&ta, release_racer, &a), 0);
    assert_int_equal(uv_thread_create(&tb, release_racer, &b), 0);
    rt_latch_signal(&go);
    uv_thread_join(&ta);
    uv_thread_join(&tb);
    rt_latch_destroy(&go);
  }
  rt_assert_bytes(r, 200, 11); /* one release per view happened, no more */
  assert_rc(ray_ref_release(r), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_msgpack_release_copies(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t inner = rt_put_bytes(8, 12);
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_str(&pk, 5);
  msgpack_pack_str_body(&pk, "hello", 5);
  assert_rc(ray_msgpack_pack_ref(&pk, inner), 0);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
  ray_ref_t outer;
  assert_rc(ray_put_msgpack(&u.data, &outer), 0);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);

  ray_msgpack_t m, copy;
  assert_rc(ray_get_msgpack(outer, 0, &m), 0);
  assert_int_equal(m.nrefs, 1);
  assert_rc(ray_ref_release_batch(m.refs, m.nrefs), 0);
  copy = m;
  ray_msgpack_release(&m);
  ray_msgpack_release(&copy); /* a no-op: the zone and the view are not freed twice */
  ray_msgpack_release(&m);
  ray_msgpack_release(NULL);
  assert_rc(ray_ref_release(outer), 0);
  assert_rc(ray_ref_release(inner), 0);
  rt_assert_store_empty();
  rt_end();
}

/* ---- previous runtimes ------------------------------------------------------ */

static int box_get(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, 42);
}

static const ray_method_def_t k_box_methods_real[] = {{"get", box_get, rt_t_i64, 1}};
static const ray_actor_class_t k_box = {"Box", NULL, NULL, k_box_methods_real, 1};

static void test_stale_handles_after_reinit(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t old_ref = rt_put_bytes(32, 13);
  ray_ref_t old_pending;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &old_pending), 0);
  ray_function_t old_fn;
  assert_rc(ray_function_register("misuse.rt_fn_inc", rt_fn_inc, NULL, rt_t_i64, 1, &old_fn), 0);
  ray_actor_t old_actor;
  ray_actor_opts_t ao;
  ray_actor_opts_init(&ao);
  ao.name = "misuse.box";
  assert_rc(ray_actor_create(&k_box, NULL, 0, &ao, &old_actor), 0);
  rt_end();

  /* Between runtimes: not initialised. */
  assert_rc(ray_ref_release(old_ref), RAY_ENOTINIT);
  assert_rc(ray_actor_release(old_actor), RAY_ENOTINIT);

  rt_begin();
  /* The new runtime issues fresh ids: fill it with objects, actors and
   * functions, then check none of them answers to an old handle. */
  enum { N = 3000 };
  ray_ref_t *fresh = malloc(N * sizeof *fresh);
  assert_non_null(fresh);
  for (int i = 0; i < N; i++) {
    fresh[i] = rt_put_bytes(8, (uint64_t)i);
    assert_true(fresh[i].id != old_ref.id && fresh[i].id != old_pending.id);
  }
  ray_function_t new_fn;
  assert_rc(ray_function_register("misuse.rt_fn_inc", rt_fn_inc, NULL, rt_t_i64, 1, &new_fn), 0);
  assert_true(new_fn.id != old_fn.id);
  ray_actor_t new_actor;
  assert_rc(ray_actor_create(&k_box, NULL, 0, &ao, &new_actor), 0);
  assert_true(new_actor.id != old_actor.id);

  ray_buf_t b;
  assert_rc(ray_get(old_ref, 0, &b), RAY_ENOTFOUND);
  assert_rc(ray_get(old_pending, RAY_TIMEOUT_INFINITE, &b), RAY_ENOTFOUND);
  assert_rc(ray_ref_retain(old_ref), RAY_ENOTFOUND);
  assert_rc(ray_ref_release(old_ref), RAY_ENOTFOUND);
  bool ready[1];
  assert_rc(ray_wait(&old_pending, 1, 1, RAY_TIMEOUT_INFINITE, ready), RAY_ENOTFOUND);
  ray_ref_t out;
  ray_arg_t arg = ray_arg_i64(1);
  assert_rc(ray_task_submit(old_fn, &arg, 1, NULL, &out), RAY_ENOTFOUND);
  assert_rc(ray_function_info(old_fn, NULL, NULL), RAY_ENOTFOUND);
  assert_rc(ray_actor_call(old_actor, "get", NULL, 0, NULL, &out), RAY_ENOTFOUND);
  assert_rc(ray_actor_kill(old_actor, true), RAY_ENOTFOUND);
  assert_rc(ray_actor_release(old_actor), RAY_ENOTFOUND);
  /* The new ones work. */
  int64_t v = 0;
  assert_rc(ray_task_submit(new_fn, &arg, 1, NULL, &out), 0);
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 2);
  assert_rc(ray_ref_release(out), 0);
  assert_rc(ray_actor_call(new_actor, "get", NULL, 0, NULL, &out), 0);
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 42);
  assert_rc(ray_ref_release(out), 0);
  assert_rc(ray_actor_kill(new_actor, true), 0);
  assert_rc(ray_actor_release(new_actor), 0);
  assert_rc(ray_ref_release_batch(fresh, N), 0);
  free(fresh);
  rt_end();
}

/* ---- duplicates in one call ------------------------------------------------- */

static void test_duplicate_refs(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t a = rt_put_bytes(40, 14);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);

  /* ray_wait: each position is answered on its own. */
  ray_ref_t aap[3] = {a, a, p};
  bool ready[3];
  assert_rc(ray_wait(aap, 3, 3, 0, ready), 2);
  assert_true(ready[0] && ready[1] && !ready[2]);
  assert_rc(ray_wait(aap, 3, 1, 0, ready), 1);
  assert_true(ready[0] && !ready[1] && !ready[2]);
  ray_ref_t pp[2] = {p, p};
  assert_rc(ray_wait(pp, 2, 2, 0, ready), 0);
  assert_false(ready[0] || ready[1]);

  /* ray_get_batch: each position gets its own view. */
  ray_ref_t aa[2] = {a, a};
  ray_buf_t bufs[3];
  assert_rc(ray_get_batch(aa, 2, 0, bufs), 0);
  assert_ptr_equal(bufs[0].data, bufs[1].data);
  ray_buf_release(&bufs[0]);
  assert_true(rt_check(bufs[1].data, 40, 14)); /* still pinned by its own view */
  ray_buf_release(&bufs[1]);
  assert_rc(ray_get_batch(aap, 3, 0, bufs), RAY_ETIMEDOUT);
  for (int i = 0; i < 3; i++) rt_assert_buf_zeroed(&bufs[i]);

  /* Retain and release batches: one reference per position. */
  assert_rc(ray_ref_retain_batch(aa, 2), 0);
  assert_rc(ray_ref_release_batch(aa, 2), 0);
  rt_assert_bytes(a, 40, 14);

  /* A blocking wait on duplicates of one pending ref is woken by it. */
  char v = 'x';
  assert_rc(ray__object_fulfil(p, &v, 1), 0);
  assert_rc(ray_wait(pp, 2, 2, RAY_TIMEOUT_INFINITE, ready), 2);
  assert_rc(ray_get_batch(pp, 2, RAY_TIMEOUT_INFINITE, bufs), 0);
  ray_buf_release(&bufs[0]);
  ray_buf_release(&bufs[1]);
  assert_rc(ray_ref_release(a), 0);
  assert_rc(ray_ref_release(p), 0);
  rt_assert_store_empty();
  rt_end();
}

/* ---- sizes and counts --------------------------------------------------------- */

static void test_absurd_sizes(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.object_store_memory = 64u << 20;
  cfg.enable_spilling = false;
  cfg.store_full_timeout_ms = 0;
  rt_begin_cfg(&cfg);
  char small[16] = {0};
  ray_ref_t r = RAY_REF_NIL;
  /* Larger than the whole store: at once, nothing read from `small`. */
  assert_rc(ray_put(small, SIZE_MAX, &r), RAY_ESTOREFULL);
  assert_rc(ray_put(small, SIZE_MAX / 2 + 1, &r), RAY_ESTOREFULL);
  assert_rc(ray_put_typed(small, (size_t)INT64_MAX, RAY_TYPE_BYTES, &r), RAY_ESTOREFULL);
  assert_rc(ray_put_owned(small, SIZE_MAX, rt_count_free, NULL, &r), RAY_ESTOREFULL);
  const void *datas[1] = {small};
  size_t sizes[1] = {SIZE_MAX};
  assert_rc(ray_put_batch(datas, sizes, 1, &r), RAY_ESTOREFULL);
  assert_int_equal(r.id, 0);

  /* Counts no array can have: rejected before any element is read. */
  ray_ref_t refs[2] = {rt_put_bytes(8, 15), rt_put_bytes(8, 16)};
  ray_buf_t bufs[2];
  bool ready[2];
  assert_rc(ray_put_batch(datas, sizes, SIZE_MAX, refs), RAY_EINVAL);
  assert_rc(ray_get_batch(refs, SIZE_MAX, 0, bufs), RAY_EINVAL);
  assert_rc(ray_wait(refs, SIZE_MAX, 1, 0, ready), RAY_EINVAL);
  assert_rc(ray_ref_retain_batch(refs, SIZE_MAX), RAY_EINVAL);
  assert_rc(ray_ref_release_batch(refs, SIZE_MAX), RAY_EINVAL);
  assert_rc(ray_ref_retain_batch(refs, SIZE_MAX / 2), RAY_EINVAL);
  /* ray_wait's num_returns: 1..n. */
  assert_rc(ray_wait(refs, 2, 3, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 2, SIZE_MAX, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 2, 0, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 0, 0, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 0, 1, 0, ready), RAY_EINVAL);
  /* n == 0 is a no-op for the batches. */
  assert_rc(ray_get_batch(refs, 0, 0, bufs), 0);
  assert_rc(ray_put_batch(datas, sizes, 0, refs), 0);
  assert_rc(ray_ref_retain_batch(refs, 0), 0);
  assert_rc(ray_ref_release_batch(refs, 0), 0);
  assert_rc(ray_get_batch(NULL, 0, 0, NULL), 0);
  /* Task submission limits. */
  ray_function_t fn;
  assert_rc(ray_function_register("misuse.rt_fn_inc", rt_fn_inc, NULL, rt_t_i64, 1, &fn), 0);
  ray_arg_t arg = ray_arg_i64(1);
  ray_ref_t out[2];
  assert_rc(ray_task_submit(fn, &arg, RAY_MAX_ARGS + 1, NULL, out), RAY_EINVAL);
  assert_rc(ray_task_submit(fn, &arg, SIZE_MAX, NULL, out), RAY_EINVAL);
  ray_task_opts_t topts;
  ray_task_opts_init(&topts);
  topts.num_returns = SIZE_MAX;
  assert_rc(ray_task_submit(fn, &arg, 1, &topts, out), RAY_EINVAL);
  ray_arg_t huge = ray_arg_bytes(small, SIZE_MAX);
  assert_rc(ray_task_submit(fn, &huge, 1, NULL, out), RAY_ESTOREFULL);
  char ebuf[8];
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, NULL, "x"), 0);
  assert_true(ray_error_format(e, ebuf, 0) > 0);
  assert_true(ray_error_format(e, ebuf, sizeof ebuf) > 0);
  ray_error_free(e);
  assert_rc(ray_ref_release_batch(refs, 2), 0);
  rt_assert_store_empty();
  rt_end();
}

static void no_free(void *p, void *arg) {
  (void)arg;
  (void)p;
}

static void test_capacity_near_int64_max(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.object_store_memory = (uint64_t)INT64_MAX;
  cfg.enable_spilling = false;
  cfg.store_full_timeout_ms = 0;
  rt_begin_cfg(&cfg);
  /* Accounting near INT64_MAX: an owned buffer is counted at its stated
   * size and never read while nobody gets it, so the store can be filled
   * to the brim without the memory. No sum on the way may overflow. */
  char small[16] = {0};
  ray_ref_t big, r;
  assert_rc(ray_put_owned(small, (size_t)INT64_MAX - 100, no_free, NULL, &big), 0);
  assert_rc(ray_put(small, 200, &r), RAY_ESTOREFULL); /* 100 bytes left */
  assert_rc(ray_put_owned(small, (size_t)INT64_MAX, no_free, NULL, &r), RAY_ESTOREFULL);
  assert_rc(ray_put(small, SIZE_MAX, &r), RAY_ESTOREFULL);
  assert_rc(ray_put(small, 16, &r), 0); /* fits exactly what is left */
  assert_rc(ray_ref_release(r), 0);
  ray_stats_t s = rt_stats();
  assert_true(s.bytes_in_memory_high_water <= cfg.object_store_memory);
  assert_rc(ray_ref_release(big), 0);
  r = rt_put_bytes(16, 17);
  rt_assert_bytes(r, 16, 17);
  assert_rc(ray_ref_release(r), 0);
  rt_end();
}

/* ---- timeouts ------------------------------------------------------------------ */

static void test_deadline_saturates(void **state) {
  (void)state;
  uint64_t now = uv_hrtime();
  assert_true(ray__sched_deadline(-1) == UINT64_MAX);
  assert_true(ray__sched_deadline(-2) == UINT64_MAX);
  assert_true(ray__sched_deadline(INT64_MIN) == UINT64_MAX);
  /* Huge timeouts lie far ahead (or are forever), never in the past. */
  const int64_t huge[] = {
      INT64_MAX,     INT64_MAX / 1000,         (int64_t)18446744073709LL, (int64_t)18446744073710LL,
      (int64_t)2e13, (int64_t)9223372036854LL, (int64_t)9223372036855LL};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    uint64_t d = ray__sched_deadline(huge[i]);
    assert_true(d > now + (uint64_t)1e18 / 2);
  }
  /* Ordinary ones are exact. */
  uint64_t d = ray__sched_deadline(1000);
  assert_true(d >= now + 1000000000u && d <= uv_hrtime() + 1000000000u);
  assert_true(ray__sched_deadline(0) <= uv_hrtime());
}

/* A blocking call on a helper thread; the main thread completes what it
 * waits on once it is seen blocked. */
enum { OP_GET, OP_GET_BATCH, OP_WAIT, OP_GET_I64 };

typedef struct {
  int op;
  ray_ref_t ref;
  int64_t timeout;
  atomic_int rc;
  atomic_bool done;
} blocker_t;

static void blocker_run(void *arg) {
  blocker_t *b = arg;
  int rc;
  ray_buf_t buf;
  switch (b->op) {
    case OP_GET:
      rc = ray_get(b->ref, b->timeout, &buf);
      if (rc == 0) ray_buf_release(&buf);
      break;
    case OP_GET_BATCH: {
      ray_ref_t two[2] = {b->ref, b->ref};
      ray_buf_t bufs[2];
      rc = ray_get_batch(two, 2, b->timeout, bufs);
      if (rc == 0) {
        ray_buf_release(&bufs[0]);
        ray_buf_release(&bufs[1]);
      }
      break;
    }
    case OP_WAIT: {
      bool ready[1];
      rc = ray_wait(&b->ref, 1, 1, b->timeout, ready);
      if (rc == 1 && ready[0]) rc = 0; /* flagged it: success */
      break;
    }
    default: {
      int64_t v;
      rc = ray_get_i64(b->ref, b->timeout, &v);
      if (rc == 0 && v != 7) rc = RAY_EDECODE;
      break;
    }
  }
  atomic_store(&b->rc, rc);
  atomic_store(&b->done, true);
}

/* Whether the pending entry `id` has a watcher registered (a blocked call). */
static bool has_watcher(uint64_t id) {
  ray__store_t *st = &ray__rt()->store;
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = ray__shard_find(st, sh, id);
  bool w = e != NULL && e->watchers != NULL;
  ray__unlock(&sh->mu);
  return w;
}

static void test_garbage_timeouts_wait(void **state) {
  (void)state;
  rt_begin();
  const int64_t timeouts[] = {
      INT64_MAX, (int64_t)18446744073710LL, (int64_t)2e13, INT64_MAX / 1000000, -1, -2, INT64_MIN};
  const int ops[] = {OP_GET, OP_GET_BATCH, OP_WAIT, OP_GET_I64};
  for (size_t t = 0; t < sizeof timeouts / sizeof timeouts[0]; t++) {
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
      ray_ref_t p;
      uint32_t type = ops[o] == OP_GET_I64 ? RAY_TYPE_I64 : RAY_TYPE_BYTES;
      assert_rc(ray__object_create_pending(type, &p), 0);
      blocker_t b = {.op = ops[o], .ref = p, .timeout = timeouts[t]};
      atomic_init(&b.rc, 1);
      atomic_init(&b.done, false);
      uv_thread_t th;
      assert_int_equal(uv_thread_create(&th, blocker_run, &b), 0);
      /* Wait until it blocks on p, or has returned (a bug: then it must
       * not have timed out, which the assertion below catches). */
      while (!atomic_load(&b.done) && !has_watcher(p.id)) sched_yield();
      char enc[16];
      size_t n = rt_encode_i64(7, enc, sizeof enc);
      assert_rc(ray__object_fulfil(p, enc, n), 0);
      uv_thread_join(&th);
      if (atomic_load(&b.rc) != 0)
        print_error("timeout %lld op %d: %s\n", (long long)timeouts[t], ops[o],
                    ray_err_name(atomic_load(&b.rc)));
      assert_int_equal(atomic_load(&b.rc), 0);
      assert_rc(ray_ref_release(p), 0);
    }
  }
  rt_assert_store_empty();
  rt_end();
}

typedef struct {
  size_t size;
  atomic_int rc;
  atomic_bool done;
  ray_ref_t out;
} putter_t;

static void putter_run(void *arg) {
  putter_t *p = arg;
  char *data = calloc(1, p->size);
  int rc = data ? ray_put(data, p->size, &p->out) : RAY_ENOMEM;
  free(data);
  atomic_store(&p->rc, rc);
  atomic_store(&p->done, true);
}

static void test_store_full_timeout_huge(void **state) {
  (void)state;
  const int64_t timeouts[] = {INT64_MAX, (int64_t)18446744073710LL, (int64_t)2e13};
  for (size_t t = 0; t < sizeof timeouts / sizeof timeouts[0]; t++) {
    ray_config_t cfg;
    rt_config(&cfg);
    cfg.object_store_memory = 1u << 20;
    cfg.enable_spilling = false;
    cfg.store_full_timeout_ms = timeouts[t];
    cfg.num_shards = 1;
    rt_begin_cfg(&cfg);
    enum { SZ = 256 << 10 };
    char *data = calloc(1, SZ);
    assert_non_null(data);
    ray_ref_t full[4];
    for (int i = 0; i < 4; i++) assert_rc(ray_put(data, SZ, &full[i]), 0);
    free(data);
    /* The store is full: a put waits for memory (as long as it is told). */
    putter_t p = {.size = SZ};
    atomic_init(&p.rc, 1);
    atomic_init(&p.done, false);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, putter_run, &p), 0);
    ray__store_t *st = &ray__rt()->store;
    while (!atomic_load(&p.done) && atomic_load(&st->mem_waiters) == 0) sched_yield();
    assert_rc(ray_ref_release(full[0]), 0); /* room: the put goes through */
    uv_thread_join(&th);
    assert_int_equal(atomic_load(&p.rc), 0);
    assert_rc(ray_ref_release(p.out), 0);
    assert_rc(ray_ref_release_batch(&full[1], 3), 0);
    rt_end();
  }
}

static void test_negative_store_full_timeout_rejected(void **state) {
  (void)state;
  ray_config_t cfg;
  assert_rc(ray_config_init(&cfg), 0);
  const int64_t bad[] = {-1, -2, INT64_MIN};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cfg.store_full_timeout_ms = bad[i];
    assert_rc(ray_init(&cfg), RAY_EINVAL);
    assert_false(ray_is_initialized());
  }
  assert_int_equal(ray__threads_alive(), 0);
}

/* ---- actors ------------------------------------------------------------------- */

static void test_actor_misuse(void **state) {
  (void)state;
  rt_begin();
  ray_actor_t a;
  assert_rc(ray_actor_create(&k_box, NULL, 0, NULL, &a), 0);
  ray_ref_t out;
  assert_rc(ray_actor_call(a, "nope", NULL, 0, NULL, &out), RAY_ENOTFOUND);
  assert_rc(ray_actor_call_id(a, UINT32_MAX, NULL, 0, NULL, &out), RAY_ENOTFOUND);
  assert_rc(ray_actor_call_id(a, 1, NULL, 0, NULL, &out), RAY_ENOTFOUND);
  /* Kill twice: the second is a no-op. */
  assert_rc(ray_actor_kill(a, true), 0);
  assert_rc(ray_actor_kill(a, true), 0);
  assert_rc(ray_actor_kill(a, false), 0);
  /* Calls on a killed actor return refs that fail with RAY_EACTORDIED. */
  assert_rc(ray_actor_call(a, "get", NULL, 0, NULL, &out), 0);
  int64_t v;
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &v), RAY_EACTORDIED);
  assert_rc(ray_ref_release(out), 0);
  /* Release: the handle is unknown from then on. */
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(a), RAY_ENOTFOUND);
  assert_rc(ray_actor_retain(a), RAY_ENOTFOUND);
  assert_rc(ray_actor_kill(a, true), RAY_ENOTFOUND);
  assert_rc(ray_actor_call(a, "get", NULL, 0, NULL, &out), RAY_ENOTFOUND);
  assert_rc(ray_actor_call_id(a, 0, NULL, 0, NULL, &out), RAY_ENOTFOUND);

  /* A released live actor: unknown too; a second release is a code. */
  ray_actor_t b;
  assert_rc(ray_actor_create(&k_box, NULL, 0, NULL, &b), 0);
  assert_rc(ray_actor_release(b), 0);
  assert_rc(ray_actor_release(b), RAY_ENOTFOUND);
  assert_rc(ray_actor_call(b, "get", NULL, 0, NULL, &out), RAY_ENOTFOUND);
  assert_rc(ray_actor_kill(b, true), RAY_ENOTFOUND);

  /* A named actor: found until killed; a kill frees the name at once. */
  ray_actor_opts_t ao;
  ray_actor_opts_init(&ao);
  ao.name = "misuse.named";
  ray_actor_t n, found;
  assert_rc(ray_actor_create(&k_box, NULL, 0, &ao, &n), 0);
  assert_rc(ray_get_actor("misuse.named", &found), 0);
  assert_int_equal(found.id, n.id);
  assert_rc(ray_actor_release(found), 0);
  assert_rc(ray_actor_kill(n, true), 0);
  assert_rc(ray_get_actor("misuse.named", &found), RAY_ENOTFOUND);
  assert_rc(ray_actor_kill(n, true), 0);
  assert_rc(ray_actor_release(n), 0);
  assert_rc(ray_actor_release(n), RAY_ENOTFOUND);
  /* A named actor's handles released too often: a code, the actor stays. */
  ray_actor_t k;
  ao.name = "misuse.kept";
  assert_rc(ray_actor_create(&k_box, NULL, 0, &ao, &k), 0);
  assert_rc(ray_actor_release(k), 0);
  assert_rc(ray_actor_release(k), RAY_ENOTFOUND);
  assert_rc(ray_get_actor("misuse.kept", &found), 0);
  assert_rc(ray_actor_call(found, "get", NULL, 0, NULL, &out), 0);
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 42);
  assert_rc(ray_ref_release(out), 0);
  assert_rc(ray_actor_kill(found, true), 0);
  assert_rc(ray_actor_release(found), 0);
  rt_end();
}

/* ---- NULL pointers ------------------------------------------------------------ */

static void test_null_arguments(void **state) {
  (void)state;
  /* Without a runtime: argument checks that need none come first. */
  assert_rc(ray_config_init(NULL), RAY_EINVAL);
  assert_rc(ray_error_new(NULL, RAY_ETASK, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_error_set_cause(NULL, NULL), RAY_EINVAL);
  assert_rc(ray_error_set_task_id(NULL, 1), RAY_EINVAL);
  assert_rc(ray_error_set_attempts(NULL, 1), RAY_EINVAL);
  ray_error_t *e = NULL;
  assert_rc(ray_error_copy(NULL, &e), RAY_EINVAL);
  assert_rc(ray_error_new(&e, RAY_ETASK, NULL, NULL), 0);
  assert_rc(ray_error_copy(e, NULL), RAY_EINVAL);
  assert_rc(ray_error_set_cause(e, e), RAY_EINVAL);
  assert_rc(ray_error_set_cause(e, NULL), RAY_EINVAL);
  assert_rc(ray_error_format(e, NULL, 10), RAY_EINVAL);
  assert_true(ray_error_format(e, NULL, 0) > 0);
  assert_rc(ray_error_format(NULL, NULL, 0), RAY_EINVAL);
  ray_error_free(e);
  ray_error_free(NULL);
  assert_int_equal(ray_error_code(NULL), 0);
  assert_string_equal(ray_error_message(NULL), "");
  assert_null(ray_error_origin(NULL)); /* no origin */
  assert_int_equal(ray_error_task_id(NULL), 0);
  assert_int_equal(ray_error_attempts(NULL), 0);
  assert_null(ray_error_cause(NULL));
  assert_non_null(ray_strerror(INT32_MIN));
  assert_non_null(ray_err_name(INT32_MAX));
  ray_free(NULL);
  ray_task_opts_init(NULL);
  ray_actor_opts_init(NULL);
  ray_buf_release(NULL);
  ray_msgpack_release(NULL);
  uint32_t idx;
  assert_rc(ray_actor_method(NULL, "get", &idx), RAY_EINVAL);
  assert_rc(ray_actor_method(&k_box, NULL, &idx), RAY_EINVAL);
  assert_rc(ray_actor_method(&k_box, "get", NULL), RAY_EINVAL);
  assert_rc(ray_msgpack_pack_ref(NULL, (ray_ref_t){5000, 1}), RAY_EINVAL);
  assert_rc(ray_msgpack_ref(NULL, &(ray_ref_t){0, 0}), RAY_EINVAL);
  msgpack_object nil = {.type = MSGPACK_OBJECT_NIL};
  assert_rc(ray_msgpack_ref(&nil, NULL), RAY_EINVAL);
  assert_rc(ray_stats(NULL), RAY_EINVAL);
  assert_rc(ray_put(NULL, 1, NULL), RAY_EINVAL);

  rt_begin();
  char d[4] = "abc";
  ray_ref_t r = rt_put_bytes(4, 18);
  /* Puts. */
  assert_rc(ray_put(d, 3, NULL), RAY_EINVAL);
  assert_rc(ray_put(NULL, 3, &r), RAY_EINVAL);
  assert_rc(ray_put_typed(d, 3, RAY_TYPE_BYTES, NULL), RAY_EINVAL);
  assert_rc(ray_put_typed(NULL, 3, RAY_TYPE_BYTES, &r), RAY_EINVAL);
  assert_rc(ray_put_owned(d, 3, NULL, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_put_owned(NULL, 3, NULL, NULL, &r), RAY_EINVAL);
  const void *datas[2] = {d, NULL};
  size_t sizes[2] = {3, 3};
  ray_ref_t outs[2];
  assert_rc(ray_put_batch(NULL, sizes, 2, outs), RAY_EINVAL);
  assert_rc(ray_put_batch(datas, NULL, 2, outs), RAY_EINVAL);
  assert_rc(ray_put_batch(datas, sizes, 2, NULL), RAY_EINVAL);
  assert_rc(ray_put_batch(datas, sizes, 2, outs), RAY_EINVAL); /* datas[1] NULL */
  assert_rc(ray_put_i64(1, NULL), RAY_EINVAL);
  assert_rc(ray_put_f64(1.0, NULL), RAY_EINVAL);
  assert_rc(ray_put_str(NULL, &r), RAY_EINVAL);
  assert_rc(ray_put_str("x", NULL), RAY_EINVAL);
  assert_rc(ray_put_msgpack(NULL, &r), RAY_EINVAL);
  assert_rc(ray_put_msgpack(&nil, NULL), RAY_EINVAL);
  assert_rc(ray_put_msgpack_bytes(NULL, 1, &r), RAY_EINVAL);
  assert_rc(ray_put_msgpack_bytes(d, 1, NULL), RAY_EINVAL);
  /* Gets. */
  assert_rc(ray_get(r, 0, NULL), RAY_EINVAL);
  ray_buf_t bufs[1];
  assert_rc(ray_get_batch(NULL, 1, 0, bufs), RAY_EINVAL);
  assert_rc(ray_get_batch(&r, 1, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_i64(r, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_f64(r, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_str(r, 0, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_get_msgpack(r, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_error(r, NULL), RAY_EINVAL);
  bool ready[1];
  assert_rc(ray_wait(NULL, 1, 1, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(&r, 1, 1, 0, NULL), RAY_EINVAL);
  assert_rc(ray_ref_retain_batch(NULL, 1), RAY_EINVAL);
  assert_rc(ray_ref_release_batch(NULL, 1), RAY_EINVAL);
  assert_rc(ray_ref_on_ready(r, NULL, NULL), RAY_EINVAL);
  /* Runtime. */
  assert_rc(ray_timeline_dump(NULL), RAY_EINVAL);
  assert_rc(ray_metrics_text(NULL, 10), RAY_EINVAL);
  assert_true(ray_metrics_text(NULL, 0) >= 0);
  /* Functions and tasks. */
  ray_function_t fn;
  assert_rc(ray_function_register(NULL, rt_fn_zero, NULL, rt_t_i64, 1, &fn), RAY_EINVAL);
  assert_rc(ray_function_register("misuse.noop", NULL, NULL, rt_t_i64, 1, &fn), RAY_EINVAL);
  assert_rc(ray_function_register("misuse.noop", rt_fn_zero, NULL, NULL, 1, &fn), RAY_EINVAL);
  assert_rc(ray_function_register("misuse.noop", rt_fn_zero, NULL, rt_t_i64, 1, NULL), RAY_EINVAL);
  assert_rc(ray_function_register("", rt_fn_zero, NULL, rt_t_i64, 1, &fn), RAY_EINVAL);
  assert_rc(ray_function_register("misuse.noop", rt_fn_zero, NULL, rt_t_i64, 1, &fn), 0);
  assert_rc(ray_function_lookup(NULL, &fn), RAY_EINVAL);
  assert_rc(ray_function_lookup("misuse.noop", NULL), RAY_EINVAL);
  assert_rc(ray_function_info(fn, NULL, NULL), 0);
  ray_ref_t out;
  assert_rc(ray_task_submit(fn, NULL, 1, NULL, &out), RAY_EINVAL);
  assert_rc(ray_task_submit(fn, NULL, 0, NULL, NULL), RAY_EINVAL);
  ray_arg_t bad_str = ray_arg_str(NULL);
  assert_rc(ray_task_submit(fn, &bad_str, 1, NULL, &out), RAY_EINVAL);
  ray_arg_t bad_bytes = ray_arg_bytes(NULL, 5);
  assert_rc(ray_task_submit(fn, &bad_bytes, 1, NULL, &out), RAY_EINVAL);
  ray_arg_t bad_mp = ray_arg_msgpack(NULL);
  assert_rc(ray_task_submit(fn, &bad_mp, 1, NULL, &out), RAY_EINVAL);
  ray_arg_t bad_kind = ray_arg_i64(1);
  bad_kind.kind = 99;
  assert_rc(ray_task_submit(fn, &bad_kind, 1, NULL, &out), RAY_EINVAL);
  ray_arg_t nil_ref = ray_arg_ref(RAY_REF_NIL);
  assert_rc(ray_task_submit(fn, &nil_ref, 1, NULL, &out), RAY_ENOTFOUND);
  /* Context accessors outside a task. */
  int64_t v;
  double f;
  const char *s;
  size_t len;
  const void *p;
  msgpack_object mo;
  ray_ref_t rr;
  ray_actor_t ah;
  assert_int_equal(ray_ctx_nargs(NULL), 0);
  assert_int_equal(ray_ctx_arg_type(NULL, 0), 0);
  assert_rc(ray_ctx_arg_i64(NULL, 0, &v), RAY_EINVAL);
  assert_rc(ray_ctx_arg_f64(NULL, 0, &f), RAY_EINVAL);
  assert_rc(ray_ctx_arg_str(NULL, 0, &s, &len), RAY_EINVAL);
  assert_rc(ray_ctx_arg_bytes(NULL, 0, &p, &len), RAY_EINVAL);
  assert_rc(ray_ctx_arg_msgpack(NULL, 0, &mo), RAY_EINVAL);
  assert_rc(ray_ctx_arg_ref(NULL, 0, &rr), RAY_EINVAL);
  assert_rc(ray_ctx_arg_actor(NULL, 0, &ah), RAY_EINVAL);
  assert_rc(ray_return_i64(NULL, 0, 1), RAY_EINVAL);
  assert_rc(ray_return_f64(NULL, 0, 1.0), RAY_EINVAL);
  assert_rc(ray_return_str(NULL, 0, "x"), RAY_EINVAL);
  assert_rc(ray_return_bytes(NULL, 0, d, 1), RAY_EINVAL);
  assert_rc(ray_return_msgpack(NULL, 0, &nil), RAY_EINVAL);
  assert_rc(ray_return_owned(NULL, 0, d, 1, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_return_ref(NULL, 0, r), RAY_EINVAL);
  assert_rc(ray_fail(NULL, RAY_ETASK, "x"), RAY_EINVAL);
  assert_rc(ray_actor_exit(NULL), RAY_EINVAL);
  assert_rc(ray_ctx_actor(NULL, &ah), RAY_EINVAL);
  assert_int_equal(ray_ctx_task_id(NULL), 0);
  assert_non_null(ray_ctx_name(NULL));
  assert_int_equal(ray_ctx_attempt(NULL), 0);
  assert_false(ray_task_is_cancelled(NULL));
  /* Actors. */
  ray_actor_t a;
  assert_rc(ray_actor_create(NULL, NULL, 0, NULL, &a), RAY_EINVAL);
  assert_rc(ray_actor_create(&k_box, NULL, 0, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_actor_create(&k_box, NULL, 1, NULL, &a), RAY_EINVAL);
  ray_actor_class_t bad_cls = {"Bad", NULL, NULL, NULL, 1};
  assert_rc(ray_actor_create(&bad_cls, NULL, 0, NULL, &a), RAY_EINVAL);
  ray_actor_class_t unnamed = {NULL, NULL, NULL, k_box_methods_real, 1};
  assert_rc(ray_actor_create(&unnamed, NULL, 0, NULL, &a), RAY_EINVAL);
  assert_rc(ray_actor_create(&k_box, NULL, 0, NULL, &a), 0);
  assert_rc(ray_actor_call(a, NULL, NULL, 0, NULL, &out), RAY_EINVAL);
  assert_rc(ray_actor_call(a, "get", NULL, 0, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_actor_call(a, "get", NULL, 1, NULL, &out), RAY_EINVAL);
  assert_rc(ray_actor_call_id(a, 0, NULL, 0, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_get_actor(NULL, &ah), RAY_EINVAL);
  assert_rc(ray_get_actor("x", NULL), RAY_EINVAL);
  assert_rc(ray_actor_release(a), 0);
  /* Logging. */
  assert_rc(ray_log_set_level(-1), RAY_EINVAL);
  assert_rc(ray_log_set_level(99), RAY_EINVAL);
  ray_log_set_handler(NULL, NULL);
  assert_rc(ray_ref_release(r), 0);
  rt_end();
}

/* ---- wrong types -------------------------------------------------------------- */

static atomic_int g_ctx_rc[8];

static int typed_probe(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  double f;
  const char *s;
  size_t len;
  int64_t v;
  ray_actor_t ah;
  atomic_store(&g_ctx_rc[0], ray_ctx_arg_f64(ctx, 0, &f));       /* an i64 */
  atomic_store(&g_ctx_rc[1], ray_ctx_arg_str(ctx, 0, &s, &len)); /* an i64 */
  atomic_store(&g_ctx_rc[2], ray_ctx_arg_i64(ctx, 1, &v));       /* a str */
  atomic_store(&g_ctx_rc[3], ray_ctx_arg_i64(ctx, SIZE_MAX, &v));
  atomic_store(&g_ctx_rc[4], ray_ctx_arg_actor(ctx, 0, &ah));
  atomic_store(&g_ctx_rc[5], ray_return_f64(ctx, 0, 1.5)); /* an i64 slot */
  atomic_store(&g_ctx_rc[6], ray_return_i64(ctx, SIZE_MAX, 1));
  atomic_store(&g_ctx_rc[7], ray_fail(ctx, 5, "positive code"));
  return ray_return_i64(ctx, 0, 3);
}

static void test_wrong_types(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t i, f, s, b;
  assert_rc(ray_put_i64(7, &i), 0);
  assert_rc(ray_put_f64(1.5, &f), 0);
  assert_rc(ray_put_str("seven", &s), 0);
  b = rt_put_bytes(8, 19);
  int64_t v;
  double d;
  char *str = NULL;
  ray_msgpack_t m;
  assert_rc(ray_get_f64(i, 0, &d), RAY_ETYPE);
  assert_rc(ray_get_i64(f, 0, &v), RAY_ETYPE);
  assert_rc(ray_get_i64(s, 0, &v), RAY_ETYPE);
  assert_rc(ray_get_str(i, 0, &str, NULL), RAY_ETYPE);
  assert_null(str);
  assert_rc(ray_get_msgpack(b, 0, &m), RAY_ETYPE);
  assert_rc(ray_get_i64(b, 0, &v), RAY_ETYPE);
  /* A ref whose type tag lies: checked against the object's own tag. */
  assert_rc(ray_get_i64((ray_ref_t){f.id, RAY_TYPE_I64}, 0, &v), RAY_ETYPE);
  assert_rc(ray_get_f64((ray_ref_t){f.id, 0}, 0, &d), 0);
  assert_true(d == 1.5);
  /* Bytes tagged i64 that are no msgpack integer: a decode error. */
  ray_ref_t liar;
  assert_rc(ray_put_typed("\xc1", 1, RAY_TYPE_I64, &liar), 0);
  assert_rc(ray_get_i64(liar, 0, &v), RAY_EDECODE);
  assert_rc(ray_put_typed("x", 1, 0, &liar), RAY_EINVAL);
  /* Inside a task. */
  ray_function_t fn;
  assert_rc(ray_function_register("misuse.typed_probe", typed_probe, NULL, rt_t_i64, 1, &fn), 0);
  ray_arg_t args[2] = {ray_arg_i64(1), ray_arg_str("two")};
  ray_ref_t out;
  assert_rc(ray_task_submit(fn, args, 2, NULL, &out), 0);
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 3);
  assert_int_equal(atomic_load(&g_ctx_rc[0]), RAY_ETYPE);
  assert_int_equal(atomic_load(&g_ctx_rc[1]), RAY_ETYPE);
  assert_int_equal(atomic_load(&g_ctx_rc[2]), RAY_ETYPE);
  assert_int_equal(atomic_load(&g_ctx_rc[3]), RAY_EINVAL);
  assert_int_equal(atomic_load(&g_ctx_rc[4]), RAY_ETYPE);
  assert_int_equal(atomic_load(&g_ctx_rc[5]), RAY_ETYPE);
  assert_int_equal(atomic_load(&g_ctx_rc[6]), RAY_EINVAL);
  assert_int_equal(atomic_load(&g_ctx_rc[7]), RAY_EINVAL);
  assert_rc(ray_ref_release(out), 0);
  ray_ref_t all[5] = {i, f, s, b, liar};
  assert_rc(ray_ref_release_batch(all, 5), 0);
  rt_assert_store_empty();
  rt_end();
}

/* ---- configuration -------------------------------------------------------------- */

static void test_metrics_port_env(void **state) {
  (void)state;
  ray_config_t cfg;
  assert_int_equal(setenv("RAY_METRICS_PORT", "-1", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.metrics_port, -1);
  assert_int_equal(setenv("RAY_METRICS_PORT", "0", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.metrics_port, 0);
  assert_int_equal(setenv("RAY_METRICS_PORT", "65535", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.metrics_port, 65535);
  const char *bad[] = {"-2", "65536", "-", "--1",  "-1x",
                       " 1", "abc",   "",  "-0x1", "99999999999999999999"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(setenv("RAY_METRICS_PORT", bad[i], 1), 0);
    int rc = ray_config_init(&cfg);
    if (*bad[i] != '\0') assert_rc(rc, RAY_EINVAL);
    assert_int_equal(cfg.metrics_port, 0); /* the default for that field */
  }
  /* -1 from the environment starts the endpoint on a free port. */
  assert_int_equal(setenv("RAY_METRICS_PORT", "-1", 1), 0);
  ray__alloc_track(true);
  assert_rc(ray_init(NULL), 0);
  assert_true(ray_metrics_port() > 0);
  unsetenv("RAY_METRICS_PORT");
  rt_end();
}

static void test_env_store_memory_range(void **state) {
  (void)state;
  ray_config_t cfg;
  /* Beyond what ray_init accepts: rejected already when read. */
  assert_int_equal(setenv("RAY_OBJECT_STORE_MEMORY", "18446744073709551615", 1), 0);
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  assert_int_equal(setenv("RAY_OBJECT_STORE_MEMORY", "9223372036854775807", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.object_store_memory, (uint64_t)INT64_MAX);
  unsetenv("RAY_OBJECT_STORE_MEMORY");
}

static void test_spill_dir_checked(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  char dir[] = "/tmp/rustyray_misuse_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char missing[64], file[64];
  snprintf(missing, sizeof missing, "%s/missing", dir);
  snprintf(file, sizeof file, "%s/file", dir);
  FILE *fp = fopen(file, "w");
  assert_non_null(fp);
  fclose(fp);

  cfg.spill_dir = missing;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  assert_false(ray_is_initialized());
  cfg.spill_dir = file;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  cfg.spill_dir = "";
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  if (geteuid() != 0) { /* root may write anywhere */
    char ro[64];
    snprintf(ro, sizeof ro, "%s/ro", dir);
    assert_int_equal(mkdir(ro, 0500), 0);
    cfg.spill_dir = ro;
    assert_rc(ray_init(&cfg), RAY_EINVAL);
    rmdir(ro);
  }
  /* Spilling off: the directory is never used, so it is not checked. */
  cfg.spill_dir = missing;
  cfg.enable_spilling = false;
  rt_begin_cfg(&cfg);
  rt_end();
  /* An existing directory works. */
  cfg.spill_dir = dir;
  cfg.enable_spilling = true;
  rt_begin_cfg(&cfg);
  rt_end();
  /* The same through the environment. */
  assert_int_equal(setenv("RAY_SPILL_DIR", missing, 1), 0);
  assert_rc(ray_init(NULL), RAY_EINVAL);
  assert_false(ray_is_initialized());
  unsetenv("RAY_SPILL_DIR");
  assert_int_equal(unlink(file), 0);
  assert_int_equal(rmdir(dir), 0);
  assert_int_equal(ray__threads_alive(), 0);
}

static void test_calls_without_runtime(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  ray_ref_t r = {5000, RAY_TYPE_BYTES};
  ray_buf_t b;
  bool ready[1];
  assert_rc(ray_put("x", 1, &r), RAY_ENOTINIT);
  assert_rc(ray_get(r, -1, &b), RAY_ENOTINIT);
  assert_rc(ray_wait(&r, 1, 1, -1, ready), RAY_ENOTINIT);
  assert_rc(ray_ref_release(r), RAY_ENOTINIT);
  assert_rc(ray_actor_kill((ray_actor_t){5000}, true), RAY_ENOTINIT);
  assert_rc(ray_shutdown(), RAY_ENOTINIT);
  assert_rc(ray_shutdown(), RAY_ENOTINIT);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ref_release_twice),
      cmocka_unit_test(test_forged_refs),
      cmocka_unit_test(test_buf_release_twice),
      cmocka_unit_test(test_buf_release_two_copies),
      cmocka_unit_test(test_buf_copy_after_reuse),
      cmocka_unit_test(test_buf_copies_outlive_object_and_runtime),
      cmocka_unit_test(test_buf_copies_released_concurrently),
      cmocka_unit_test(test_msgpack_release_copies),
      cmocka_unit_test(test_stale_handles_after_reinit),
      cmocka_unit_test(test_duplicate_refs),
      cmocka_unit_test(test_absurd_sizes),
      cmocka_unit_test(test_capacity_near_int64_max),
      cmocka_unit_test(test_deadline_saturates),
      cmocka_unit_test(test_garbage_timeouts_wait),
      cmocka_unit_test(test_store_full_timeout_huge),
      cmocka_unit_test(test_negative_store_full_timeout_rejected),
      cmocka_unit_test(test_actor_misuse),
      cmocka_unit_test(test_null_arguments),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_metrics_port_env),
      cmocka_unit_test(test_env_store_memory_range),
      cmocka_unit_test(test_spill_dir_checked),
      cmocka_unit_test(test_calls_without_runtime),
  };
  rt_main_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
