/* test_task_results.c - task results through the public API: results typed
 * at submission, several returns, every ray_return_* setter with its
 * errors, owned returns, returning refs (also of arguments), unset slots,
 * failing functions and their error objects, and dependency failure
 * through a deep DAG.
 *
 * Helpers and shared task functions are in tasks_util.h; functions run on
 * worker threads and record failed checks into g_errs (TC), asserted after
 * each runtime is shut down. */
#define _POSIX_C_SOURCE 200809L
#include "tasks_util.h"

/* ---- results ---------------------------------------------------------------------- */

static void test_results_typed_at_submission(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("typed", fn_typed, NULL, k_typed, 5);
  ray_ref_t out[5];
  memset(out, 0, sizeof out);
  assert_rc(ray_task_submit(f, NULL, 0, NULL, out), 0);
  rt_latch_wait(&g_started, 1);
  /* The task is running and has set nothing: the refs are typed already. */
  for (int i = 0; i < 5; i++) {
    assert_true(out[i].id != 0);
    for (int j = 0; j < i; j++) assert_true(out[i].id != out[j].id);
    assert_int_equal(out[i].type, k_typed[i]);
    ray_buf_t b;
    assert_rc(ray_get(out[i], 0, &b), RAY_ETIMEDOUT);
    ray_error_t *e = (ray_error_t *)1;
    assert_rc(ray_get_error(out[i], &e), RAY_ENOTREADY);
    assert_null(e);
  }
  bool ready[5];
  assert_int_equal(ray_wait(out, 5, 1, 0, ready), 0);
  /* A typed get with the wrong type fails at once, without waiting. */
  int64_t v;
  assert_rc(ray_get_i64(out[0], RAY_TIMEOUT_INFINITE, &v), RAY_ETYPE);
  char *s = NULL;
  assert_rc(ray_get_str(out[1], RAY_TIMEOUT_INFINITE, &s, NULL), RAY_ETYPE);
  rt_latch_signal(&g_go);
  assert_rc(ray_get_str(out[0], RAY_TIMEOUT_INFINITE, &s, NULL), 0);
  assert_string_equal(s, "typed");
  ray_free(s);
  assert_int_equal(rt_get_i64(out[1]), 5);
  ray_buf_t b;
  assert_rc(ray_get(out[2], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_USER + 3);
  assert_int_equal(b.size, 2);
  assert_memory_equal(b.data, "u3", 2);
  ray_buf_release(&b);
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(out[3], RAY_TIMEOUT_INFINITE, &m), 0);
  assert_int_equal(m.obj.type, MSGPACK_OBJECT_NIL);
  ray_msgpack_release(&m);
  double d = 0;
  assert_rc(ray_get_f64(out[4], RAY_TIMEOUT_INFINITE, &d), 0);
  assert_true(d == 1.25);
  for (int i = 0; i < 5; i++) rt_release(out[i]);
  t_end();
}

static int fn_squares(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  for (size_t i = 0; i < RAY_MAX_RETURNS; i++)
    TC(ray_return_i64(ctx, i, (int64_t)(i * i)) == 0, (int)i);
  TC(ray_return_i64(ctx, RAY_MAX_RETURNS, 0) == RAY_EINVAL, RAY_MAX_RETURNS);
  return 0;
}

static void test_multiple_returns(void **state) {
  (void)state;
  t_begin(2);
  uint32_t types[RAY_MAX_RETURNS];
  for (int i = 0; i < RAY_MAX_RETURNS; i++) types[i] = RAY_TYPE_I64;
  ray_function_t f = rt_register("squares", fn_squares, NULL, types, RAY_MAX_RETURNS);
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.num_returns = RAY_MAX_RETURNS; /* matches: fine */
  ray_ref_t out[RAY_MAX_RETURNS + 1];
  memset(out, 0, sizeof out);
  assert_rc(ray_task_submit(f, NULL, 0, &o, out), 0);
  assert_int_equal(out[RAY_MAX_RETURNS].id, 0); /* wrote exactly num_returns refs */
  for (int i = 0; i < RAY_MAX_RETURNS; i++) {
    assert_int_equal(rt_get_i64(out[i]), i * i);
    rt_release(out[i]);
  }
  /* A num_returns check that does not match. */
  o.num_returns = RAY_MAX_RETURNS - 1;
  assert_rc(ray_task_submit(f, NULL, 0, &o, out), RAY_EINVAL);
  o.num_returns = 1;
  assert_rc(ray_task_submit(f, NULL, 0, &o, out), RAY_EINVAL);
  assert_int_equal(rt_stats().objects, 0);
  t_end();
}

/* Every setter on every slot type; out-of-range slots; NULLs; replacement. */
static const uint32_t k_setters[] = {RAY_TYPE_I64,   RAY_TYPE_F64,     RAY_TYPE_STR,
                                     RAY_TYPE_BYTES, RAY_TYPE_MSGPACK, RAY_TYPE_USER + 1};
enum { NSET = 6 };

static int fn_setters(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  msgpack_object nil;
  memset(&nil, 0, sizeof nil);
  nil.type = MSGPACK_OBJECT_NIL;
  for (size_t s = 0; s < NSET; s++) {
    uint32_t t = k_setters[s];
    int tag = (int)(s * 10);
    TC(ray_return_i64(ctx, s, 1) == (t == RAY_TYPE_I64 ? 0 : RAY_ETYPE), tag + 1);
    TC(ray_return_f64(ctx, s, 1.0) == (t == RAY_TYPE_F64 ? 0 : RAY_ETYPE), tag + 2);
    TC(ray_return_str(ctx, s, "x") == (t == RAY_TYPE_STR ? 0 : RAY_ETYPE), tag + 3);
    TC(ray_return_msgpack(ctx, s, &nil) == (t == RAY_TYPE_MSGPACK ? 0 : RAY_ETYPE), tag + 4);
    /* Bytes go to any slot (already in the slot type's encoding). */
    TC(ray_return_bytes(ctx, s, "x", 1) == 0, tag + 5);
  }
  const size_t bad[] = {NSET, NSET + 1, RAY_MAX_RETURNS, SIZE_MAX};
  ray_ref_t some = {1, RAY_TYPE_I64};
  char buf[4] = "abc";
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    size_t s = bad[k];
    int tag = 100 + (int)k * 10;
    TC(ray_return_i64(ctx, s, 1) == RAY_EINVAL, tag + 1);
    TC(ray_return_f64(ctx, s, 1.0) == RAY_EINVAL, tag + 2);
    TC(ray_return_str(ctx, s, "x") == RAY_EINVAL, tag + 3);
    TC(ray_return_msgpack(ctx, s, &nil) == RAY_EINVAL, tag + 4);
    TC(ray_return_bytes(ctx, s, "x", 1) == RAY_EINVAL, tag + 5);
    TC(ray_return_owned(ctx, s, buf, 3, NULL, NULL) == RAY_EINVAL, tag + 6);
    TC(ray_return_ref(ctx, s, some) == RAY_EINVAL, tag + 7);
  }
  TC(ray_return_i64(NULL, 0, 1) == RAY_EINVAL, 201);
  TC(ray_return_f64(NULL, 1, 1.0) == RAY_EINVAL, 202);
  TC(ray_return_str(NULL, 2, "x") == RAY_EINVAL, 203);
  TC(ray_return_bytes(NULL, 3, "x", 1) == RAY_EINVAL, 204);
  TC(ray_return_msgpack(NULL, 4, &nil) == RAY_EINVAL, 205);
  TC(ray_return_owned(NULL, 3, buf, 3, NULL, NULL) == RAY_EINVAL, 206);
  TC(ray_return_ref(NULL, 0, some) == RAY_EINVAL, 207);
  TC(ray_return_str(ctx, 2, NULL) == RAY_EINVAL, 210);
  TC(ray_return_msgpack(ctx, 4, NULL) == RAY_EINVAL, 211);
  TC(ray_return_bytes(ctx, 3, NULL, 1) == RAY_EINVAL, 212);
  TC(ray_return_owned(ctx, 3, NULL, 1, rt_count_free, NULL) == RAY_EINVAL, 213);
  TC(ray_fail(NULL, RAY_ETASK, "x") == RAY_EINVAL, 214);
  /* Not failures: they do not fail the task. */
  TC(ray_fail(ctx, 0, "x") == RAY_EINVAL, 215);
  TC(ray_fail(ctx, 5, "x") == RAY_EINVAL, 216);

  /* The final values; each replaces what the matrix above set. */
  TC(ray_return_i64(ctx, 0, 7) == 0, 300);
  TC(ray_return_i64(ctx, 0, -8) == 0, 301); /* set again: replaces */
  char enc[16];
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_double(&pk, 2.5);
  TC(sb.size <= sizeof enc, 302);
  memcpy(enc, sb.data, sb.size < sizeof enc ? sb.size : sizeof enc);
  TC(ray_return_bytes(ctx, 1, enc, sb.size) == 0, 303); /* pre-encoded f64 */
  msgpack_sbuffer_destroy(&sb);
  TC(ray_return_str(ctx, 2, "") == 0, 304);
  TC(ray_return_bytes(ctx, 3, NULL, 0) == 0, 305); /* empty */
  msgpack_object items[2];
  memset(items, 0, sizeof items);
  items[0].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  items[0].via.u64 = 1;
  items[1].type = MSGPACK_OBJECT_STR;
  items[1].via.str.ptr = "a";
  items[1].via.str.size = 1;
  msgpack_object arr;
  memset(&arr, 0, sizeof arr);
  arr.type = MSGPACK_OBJECT_ARRAY;
  arr.via.array.size = 2;
  arr.via.array.ptr = items;
  TC(ray_return_msgpack(ctx, 4, &arr) == 0, 306);
  TC(ray_return_bytes(ctx, 5, "user", 4) == 0, 307);
  return 0;
}

static void test_return_setters(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("setters", fn_setters, NULL, k_setters, NSET);
  ray_ref_t out[NSET];
  assert_rc(ray_task_submit(f, NULL, 0, NULL, out), 0);
  assert_int_equal(rt_get_i64(out[0]), -8);
  double d = 0;
  assert_rc(ray_get_f64(out[1], RAY_TIMEOUT_INFINITE, &d), 0);
  assert_true(d == 2.5);
  char *s = NULL;
  size_t len = 99;
  assert_rc(ray_get_str(out[2], RAY_TIMEOUT_INFINITE, &s, &len), 0);
  assert_string_equal(s, "");
  assert_int_equal(len, 0);
  ray_free(s);
  ray_buf_t b;
  assert_rc(ray_get(out[3], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.size, 0);
  assert_int_equal(b.type, RAY_TYPE_BYTES);
  ray_buf_release(&b);
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(out[4], RAY_TIMEOUT_INFINITE, &m), 0);
  assert_int_equal(m.obj.type, MSGPACK_OBJECT_ARRAY);
  assert_int_equal(m.obj.via.array.size, 2);
  assert_int_equal(m.obj.via.array.ptr[0].via.u64, 1);
  assert_int_equal(m.obj.via.array.ptr[1].via.str.size, 1);
  ray_msgpack_release(&m);
  assert_rc(ray_get(out[5], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_USER + 1);
  assert_int_equal(b.size, 4);
  assert_memory_equal(b.data, "user", 4);
  ray_buf_release(&b);
  for (int i = 0; i < NSET; i++) rt_release(out[i]);
  t_end();
}

/* Small results (up to 16 bytes) complete the pending entry in place;
 * larger ones come in an entry of their own. A slot may move between the
 * two, and whatever it held last is the result: nothing of the others
 * stays counted in the store. */
static const uint32_t k_two_bytes[2] = {RAY_TYPE_BYTES, RAY_TYPE_BYTES};

static int fn_small_large(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  char big[100];
  memset(big, 'L', sizeof big);
  /* Slot 0: small, then large, then small again (16 bytes: the limit). */
  TC(ray_return_bytes(ctx, 0, "first", 5) == 0, 0);
  TC(ray_return_bytes(ctx, 0, big, sizeof big) == 0, 1);
  TC(ray_return_bytes(ctx, 0, "sixteen bytes!!!", 16) == 0, 2);
  /* Slot 1: large, then small, then 17 bytes (one past the limit). */
  TC(ray_return_bytes(ctx, 1, big, sizeof big) == 0, 3);
  TC(ray_return_bytes(ctx, 1, "x", 1) == 0, 4);
  TC(ray_return_bytes(ctx, 1, "seventeen bytes!!", 17) == 0, 5);
  return 0;
}

static int fn_small_then_fail(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  TC(ray_return_i64(ctx, 0, 7) == 0, 0);
  return ray_fail(ctx, RAY_ETASK, "failed after a small result");
}

static void expect_bytes(ray_ref_t r, const char *want, size_t n) {
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.size, n);
  assert_int_equal(b.type, RAY_TYPE_BYTES);
  assert_memory_equal(b.data, want, n);
  ray_buf_release(&b);
}

static void expect_store_empty(void) {
  assert_rc(ray__quiesce(RAY_TIMEOUT_INFINITE), 0);
  ray_stats_t st = rt_stats();
  assert_int_equal(st.objects, 0);
  assert_int_equal(st.bytes_in_memory, 0);
}

static void test_small_results_in_place(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("small_large", fn_small_large, NULL, k_two_bytes, 2);
  ray_ref_t out[2];
  assert_rc(ray_task_submit(f, NULL, 0, NULL, out), 0);
  expect_bytes(out[0], "sixteen bytes!!!", 16);
  expect_bytes(out[1], "seventeen bytes!!", 17);
  rt_release(out[0]);
  rt_release(out[1]);
  expect_store_empty();

  /* A small result then a failure: the result is the error, and the bytes
   * reserved for the small result are given back. */
  ray_function_t g = rt_register("small_fail", fn_small_then_fail, NULL, rt_t_i64, 1);
  ray_ref_t r = rt_submit(g, NULL, 0, NULL);
  int64_t v = 0;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), RAY_ETASK);
  rt_release(r);
  expect_store_empty();

  /* The result released before the task publishes it: the small result
   * lands nowhere and its reservation is given back. */
  ray_function_t h = rt_register("small_block", fn_block, NULL, rt_t_i64, 1);
  r = rt_submit(h, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  rt_release(r);
  rt_latch_signal(&g_go);
  expect_store_empty();
  t_end();
}

/* ray_return_owned: no copy, free_fn exactly once (on replacement, on a
 * later failure, or when the object is freed); on error the caller keeps it. */
static void *_Atomic g_owned_ptr;

static int fn_owned(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  void *a = owned(5000, 1);
  TC(a != NULL, 0);
  atomic_store(&g_owned_ptr, a);
  TC(ray_return_owned(ctx, 0, a, 5000, rt_count_free, NULL) == 0, 1);
  /* Replaced by a copy: freed at once. */
  void *b = owned(100, 2);
  TC(ray_return_owned(ctx, 1, b, 100, rt_count_free, NULL) == 0, 2);
  TC(atomic_load(&rt_frees) == 0, 3);
  TC(ray_return_bytes(ctx, 1, "replaced", 8) == 0, 4);
  TC(atomic_load(&rt_frees) == 1, atomic_load(&rt_frees));
  /* Refused: the buffer stays ours. */
  void *c = owned(10, 3);
  TC(ray_return_owned(ctx, 4, c, 10, rt_count_free, NULL) == RAY_EINVAL, 5);
  TC(atomic_load(&rt_frees) == 1, 6);
  TC(rt_check(c, 10, 3), 7);
  free(c);
  /* Any slot type takes owned bytes (already in its encoding). */
  void *d = owned(12, 4);
  TC(ray_return_owned(ctx, 2, d, 12, rt_count_free, NULL) == 0, 8);
  void *e = owned(0, 0);
  TC(ray_return_owned(ctx, 3, e, 0, rt_count_free, NULL) == 0, 9); /* empty, still owned */
  return 0;
}

static int fn_owned_then_fail(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  TC(ray_return_owned(ctx, 0, owned(3000, 5), 3000, rt_count_free, NULL) == 0, 0);
  TC(ray_return_owned(ctx, 1, owned(10, 6), 10, rt_count_free, NULL) == 0, 1);
  return ray_fail(ctx, RAY_ETASK, "failed after handing over");
}

/* The task's arg is the free_fn's arg: it arrives with the exact buffer. */
static int fn_owned_arg(ray_task_ctx_t *ctx, void *arg) {
  void *p = owned(4000, 8);
  TC(p != NULL, 0);
  atomic_store(&g_owned_ptr, p);
  TC(ray_return_owned(ctx, 0, p, 4000, rt_count_free, arg) == 0, 1);
  return 0;
}

static void test_return_owned_free_gets_arg(void **state) {
  (void)state;
  static int pool; /* stands for a caller's allocator */
  t_begin(2);
  atomic_store(&rt_frees, 0);
  ray_function_t f = rt_register("owned-arg", fn_owned_arg, &pool, rt_t_bytes, 1);
  ray_ref_t out;
  assert_rc(ray_task_submit(f, NULL, 0, NULL, &out), 0);
  ray_buf_t b;
  assert_rc(ray_get(out, RAY_TIMEOUT_INFINITE, &b), 0);
  assert_ptr_equal(b.data, atomic_load(&g_owned_ptr));
  ray_buf_release(&b);
  rt_release(out);
  t_end();
  assert_int_equal(atomic_load(&rt_frees), 1);
  assert_ptr_equal(atomic_load(&rt_freed_data), atomic_load(&g_owned_ptr));
  assert_ptr_equal(atomic_load(&rt_freed_arg), &pool);
}

static void test_return_owned(void **state) {
  (void)state;
  t_begin(2);
  const uint32_t types[] = {RAY_TYPE_BYTES, RAY_TYPE_BYTES, RAY_TYPE_USER + 2, RAY_TYPE_BYTES};
  ray_function_t f = rt_register("owned", fn_owned, NULL, types, 4);
  ray_ref_t out[4];
  assert_rc(ray_task_submit(f, NULL, 0, NULL, out), 0);
  ray_buf_t b, b1;
  assert_rc(ray_get(out[0], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_ptr_equal(b.data, atomic_load(&g_owned_ptr)); /* no copy */
  assert_true(b.size == 5000 && rt_check(b.data, b.size, 1));
  assert_rc(ray_get(out[1], RAY_TIMEOUT_INFINITE, &b1), 0);
  assert_true(b1.size == 8 && memcmp(b1.data, "replaced", 8) == 0);
  ray_buf_release(&b1);
  ray_buf_t b2;
  assert_rc(ray_get(out[2], RAY_TIMEOUT_INFINITE, &b2), 0);
  assert_int_equal(b2.type, RAY_TYPE_USER + 2);
  assert_true(b2.size == 12 && rt_check(b2.data, 12, 4));
  ray_buf_release(&b2);
  assert_rc(ray_get(out[3], RAY_TIMEOUT_INFINITE, &b2), 0);
  assert_int_equal(b2.size, 0);
  ray_buf_release(&b2);
  assert_int_equal(atomic_load(&rt_frees), 1);
  rt_release(out[1]);
  rt_release(out[2]);
  assert_int_equal(atomic_load(&rt_frees), 2);
  rt_release(out[3]);
  assert_int_equal(atomic_load(&rt_frees), 3);
  /* A view keeps the owned buffer after its ref is gone. */
  rt_release(out[0]);
  assert_int_equal(atomic_load(&rt_frees), 3);
  assert_true(rt_check(b.data, 5000, 1));
  ray_buf_release(&b);
  assert_int_equal(atomic_load(&rt_frees), 4);

  /* Handed over, then the task failed: freed once, with the attempt. */
  atomic_store(&rt_frees, 0);
  ray_function_t g = rt_register("owned-fail", fn_owned_then_fail, NULL, types, 2);
  ray_ref_t fo[2];
  assert_rc(ray_task_submit(g, NULL, 0, NULL, fo), 0);
  rt_assert_fails(fo[0], RAY_ETASK);
  rt_assert_fails(fo[1], RAY_ETASK);
  assert_int_equal(atomic_load(&rt_frees), 2);
  rt_release(fo[0]);
  rt_release(fo[1]);
  t_end();
  assert_int_equal(atomic_load(&rt_frees), 2);
}

/* ray_return_ref: the result shares another object's value. Arguments:
 * the source id (i64; not a ref argument, so the task does not wait for it),
 * and a mode: 0 return it, 1 return it then replace it with bytes, 2 return
 * it then fail. Results: [BYTES alias, I64 marker]. */
static int fn_ret_ref(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t id = 0, mode = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &id) == 0, 0);
  TC(ray_ctx_arg_i64(ctx, 1, &mode) == 0, 1);
  ray_ref_t src = {(uint64_t)id, RAY_TYPE_BYTES};
  ray_ref_t wrong = {(uint64_t)id, RAY_TYPE_I64};
  ray_ref_t unknown = {UINT64_MAX - 77, RAY_TYPE_BYTES};
  TC(ray_return_ref(ctx, 0, wrong) == RAY_ETYPE, 2);
  TC(ray_return_ref(ctx, 1, src) == RAY_ETYPE, 3); /* slot 1 is I64 */
  TC(ray_return_ref(ctx, 0, RAY_REF_NIL) == RAY_ENOTFOUND, 4);
  TC(ray_return_ref(ctx, 0, unknown) == RAY_ENOTFOUND, 5);
  TC(ray_return_ref(ctx, 2, src) == RAY_EINVAL, 6);
  TC(ray_return_ref(NULL, 0, src) == RAY_EINVAL, 7);
  TC(ray_return_ref(ctx, 0, src) == 0, 8);
  TC(ray_return_ref(ctx, 0, src) == 0, 9); /* again: replaces, no extra reference */
  if (mode == 1) TC(ray_return_bytes(ctx, 0, "z", 1) == 0, 10);
  TC(ray_return_i64(ctx, 1, 1) == 0, 11);
  if (mode == 2) return ray_fail(ctx, RAY_ETASK, "failed after ray_return_ref");
  return 0;
}

static void ret_ref_submit(ray_function_t f, ray_ref_t src, int mode, ray_ref_t out[2]) {
  ray_arg_t a[2] = {ray_arg_i64((int64_t)src.id), ray_arg_i64(mode)};
  assert_rc(ray_task_submit(f, a, 2, NULL, out), 0);
  /* The marker is published with (or after) the alias: the task is done. */
  assert_int_equal(rt_get_i64(out[1]), 1);
}

static void assert_upstream_cause(ray_ref_t r) {
  ray_error_t *e = rt_get_error(r);
  assert_int_equal(ray_error_code(e), RAY_EDEPFAILED);
  const ray_error_t *c = ray_error_cause(e);
  assert_non_null(c);
  assert_int_equal(ray_error_code(c), RAY_EIO);
  assert_string_equal(ray_error_origin(c), "upstream");
  assert_string_equal(ray_error_message(c), "src broke 9");
  assert_null(ray_error_cause(c));
  ray_error_free(e);
}

static void test_return_ref(void **state) {
  (void)state;
  t_begin(2);
  const uint32_t types[] = {RAY_TYPE_BYTES, RAY_TYPE_I64};
  ray_function_t f = rt_register("ret-ref", fn_ret_ref, NULL, types, 2);
  unsigned char data[3000];
  rt_fill(data, sizeof data, 12);
  ray_ref_t out[2];
  ray_buf_t b, bs;

  /* Pending source, made ready after the task finished: shared, no copy. */
  ray_ref_t src = pending_bytes();
  ret_ref_submit(f, src, 0, out);
  assert_rc(ray_get(out[0], 0, &b), RAY_ETIMEDOUT);
  assert_rc(ray__object_fulfil(src, data, sizeof data), 0);
  assert_rc(ray_get(out[0], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_rc(ray_get(src, 0, &bs), 0);
  assert_ptr_equal(b.data, bs.data);
  assert_true(b.size == sizeof data && rt_check(b.data, b.size, 12));
  assert_int_equal(b.type, RAY_TYPE_BYTES);
  ray_buf_release(&b);
  ray_buf_release(&bs);
  rt_release(src);
  rt_release(out[0]);
  rt_release(out[1]);

  /* Pending source whose only other reference is dropped before it is
   * fulfilled: the result holds its own. */
  src = pending_bytes();
  ret_ref_submit(f, src, 0, out);
  ray_ref_t src_id = src;
  rt_release(src);
  assert_rc(ray__object_fulfil(src_id, data, 100), 0);
  assert_rc(ray_get(out[0], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_true(b.size == 100 && rt_check(b.data, b.size, 12));
  ray_buf_release(&b);
  rt_release(out[0]);
  rt_release(out[1]);

  /* Ready source. */
  assert_rc(ray_put(data, sizeof data, &src), 0);
  ret_ref_submit(f, src, 0, out);
  assert_rc(ray_get(out[0], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_rc(ray_get(src, 0, &bs), 0);
  assert_ptr_equal(b.data, bs.data);
  ray_buf_release(&b);
  ray_buf_release(&bs);
  rt_release(src);
  rt_release(out[0]);
  rt_release(out[1]);

  /* Source that fails after the task finished: the result fails, caused by it. */
  src = pending_bytes();
  ret_ref_submit(f, src, 0, out);
  ray_error_t *up = upstream_error();
  assert_rc(ray__object_fail(src, up), 0);
  rt_assert_fails(out[0], RAY_EDEPFAILED);
  assert_upstream_cause(out[0]);
  rt_release(src);
  rt_release(out[0]);
  rt_release(out[1]);

  /* Source failed before the task ran. */
  src = pending_bytes();
  assert_rc(ray__object_fail(src, up), 0);
  ret_ref_submit(f, src, 0, out);
  rt_assert_fails(out[0], RAY_EDEPFAILED);
  rt_release(src); /* the failed result keeps its cause alive */
  assert_upstream_cause(out[0]);
  rt_release(out[0]);
  rt_release(out[1]);
  ray_error_free(up);

  /* Returned, then replaced by a value: the source is not kept. */
  assert_rc(ray_put(data, 10, &src), 0);
  ret_ref_submit(f, src, 1, out);
  assert_rc(ray_get(out[0], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_true(b.size == 1 && memcmp(b.data, "z", 1) == 0);
  ray_buf_release(&b);
  rt_release(src);
  assert_rc(ray_get(src, 0, &b), RAY_ENOTFOUND);
  rt_release(out[0]);
  rt_release(out[1]);

  /* Returned, then the task failed: the source is not kept either. */
  assert_rc(ray_put(data, 10, &src), 0);
  ray_arg_t a[2] = {ray_arg_i64((int64_t)src.id), ray_arg_i64(2)};
  assert_rc(ray_task_submit(f, a, 2, NULL, out), 0);
  rt_assert_fails(out[0], RAY_ETASK);
  rt_assert_fails(out[1], RAY_ETASK);
  rt_release(src);
  assert_rc(ray_get(src, 0, &b), RAY_ENOTFOUND);
  rt_release(out[0]);
  rt_release(out[1]);
  t_end();
}

/* A result that is still pending through ray_return_ref after its task has
 * finished (and let go of its memory): cancelling it names no running or
 * pending task. 1 worker: the second task runs only once the first one has
 * completely finished. */
static void test_cancel_alias_after_task_finished(void **state) {
  (void)state;
  t_begin(1);
  const uint32_t types[] = {RAY_TYPE_BYTES, RAY_TYPE_I64};
  ray_function_t f = rt_register("ret-ref", fn_ret_ref, NULL, types, 2);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_ref_t src = pending_bytes();
  ray_ref_t out[2];
  ret_ref_submit(f, src, 0, out);
  ray_arg_t a = ray_arg_i64(1);
  ray_ref_t after = rt_submit(sum, &a, 1, NULL);
  assert_int_equal(rt_get_i64(after), 1); /* the ret-ref task is gone by now */
  ray_buf_t b;
  assert_rc(ray_get(out[0], 0, &b), RAY_ETIMEDOUT); /* still pending */
  assert_rc(ray_cancel(out[0]), RAY_EFINISHED);
  assert_rc(ray_cancel(out[1]), RAY_EFINISHED);
  /* The alias is unaffected and completes with its source. */
  assert_rc(ray__object_fulfil(src, "abc", 3), 0);
  assert_rc(ray_get(out[0], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_true(b.size == 3 && memcmp(b.data, "abc", 3) == 0);
  ray_buf_release(&b);
  rt_release(src);
  rt_release(out[0]);
  rt_release(out[1]);
  rt_release(after);
  t_end();
}

/* Returning one's own ref argument (a pass-through). */
static int fn_passthrough(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_ref_t r;
  int rc = ray_ctx_arg_ref(ctx, 0, &r);
  if (rc == RAY_ETYPE) return 0; /* passed by value: set nothing */
  TC(rc == 0, rc);
  return ray_return_ref(ctx, 0, r);
}

static void test_return_ref_of_argument(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("pass", fn_passthrough, NULL, rt_t_bytes, 1);
  unsigned char data[2000];
  rt_fill(data, sizeof data, 21);
  ray_ref_t src;
  assert_rc(ray_put(data, sizeof data, &src), 0);
  ray_arg_t a = ray_arg_ref(src);
  ray_ref_t r = rt_submit(f, &a, 1, NULL);
  rt_release(src);
  /* A pass-through of a pass-through. */
  ray_arg_t a2 = ray_arg_ref(r);
  ray_ref_t r2 = rt_submit(f, &a2, 1, NULL);
  ray_buf_t b, b2;
  assert_rc(ray_get(r2, RAY_TIMEOUT_INFINITE, &b2), 0);
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), 0);
  assert_ptr_equal(b.data, b2.data);
  assert_true(b.size == sizeof data && rt_check(b.data, b.size, 21));
  ray_buf_release(&b);
  ray_buf_release(&b2);
  rt_release(r);
  rt_release(r2);
  /* By value, there is no ref to return. */
  ray_arg_t v = ray_arg_bytes(data, 10);
  r = rt_submit(f, &v, 1, NULL);
  rt_assert_fails(r, RAY_ENORESULT);
  rt_release(r);
  t_end();
}

/* ---- unset slots and failures ------------------------------------------------------ */

static int fn_partial(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_store(&g_task_id, ray_ctx_task_id(ctx));
  int64_t mode = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &mode) == 0, 0);
  if (mode == 1) return ray_return_i64(ctx, 0, 3);
  return 0; /* mode 0: sets nothing */
}

static void test_unset_slot(void **state) {
  (void)state;
  t_begin(2);
  const uint32_t types[] = {RAY_TYPE_I64, RAY_TYPE_STR};
  ray_function_t f = rt_register("partial", fn_partial, NULL, types, 2);
  for (int mode = 0; mode < 2; mode++) {
    ray_arg_t a = ray_arg_i64(mode);
    ray_ref_t out[2];
    assert_rc(ray_task_submit(f, &a, 1, NULL, out), 0);
    if (mode == 1)
      assert_int_equal(rt_get_i64(out[0]), 3);
    else
      rt_assert_fails(out[0], RAY_ENORESULT);
    rt_assert_fails(out[1], RAY_ENORESULT);
    ray_error_t *e = rt_get_error(out[1]);
    assert_int_equal(ray_error_code(e), RAY_ENORESULT);
    assert_string_equal(ray_error_origin(e), "partial");
    assert_true(ray_error_task_id(e) == atomic_load(&g_task_id));
    assert_true(strlen(ray_error_message(e)) > 0);
    assert_null(ray_error_cause(e));
    ray_error_free(e);
    rt_release(out[0]);
    rt_release(out[1]);
  }
  t_end();
}

/* Failing in every way. Argument: the mode. Results: [I64, STR, BYTES]. */
static atomic_uint_fast64_t g_fail_ids[8];

static int fn_failer(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t mode = -1;
  TC(ray_ctx_arg_i64(ctx, 0, &mode) == 0, 0);
  if (mode < 0 || mode >= 8) return RAY_EINVAL;
  atomic_store(&g_fail_ids[mode], ray_ctx_task_id(ctx));
  switch (mode) {
    case 0:
      return 7; /* not a RAY_E* code */
    case 1:
      return RAY_EIO;
    case 2:
      return -12345; /* negative, but not a RAY_E* code either */
    case 3:
      ray_fail(ctx, RAY_ETASK, "bad input %d", 42);
      return 0; /* fails anyway */
    case 4:
      return ray_fail(ctx, RAY_EIO, "disk %s", "gone");
    case 5:
      TC(ray_return_i64(ctx, 0, 1) == 0, 5);
      TC(ray_return_str(ctx, 1, "s") == 0, 6);
      return ray_fail(ctx, RAY_ETASK, "after setting results");
    case 6: {
      char longmsg[3000];
      memset(longmsg, 'm', sizeof longmsg - 1);
      longmsg[sizeof longmsg - 1] = '\0';
      return ray_fail(ctx, RAY_ETASK, "%s", longmsg);
    }
    default:
      return 0;
  }
}

static void test_failures(void **state) {
  (void)state;
  t_begin(2);
  const uint32_t types[] = {RAY_TYPE_I64, RAY_TYPE_STR, RAY_TYPE_BYTES};
  ray_function_t f = rt_register("failer", fn_failer, NULL, types, 3);
  const int codes[7] = {RAY_ETASK, RAY_EIO, RAY_ETASK, RAY_ETASK, RAY_EIO, RAY_ETASK, RAY_ETASK};
  const char *msgs[7] = {NULL, NULL, NULL, "bad input 42", "disk gone", "after setting results",
                         NULL};
  for (int mode = 0; mode < 7; mode++) {
    ray_arg_t a = ray_arg_i64(mode);
    ray_ref_t out[3];
    assert_rc(ray_task_submit(f, &a, 1, NULL, out), 0);
    for (int i = 0; i < 3; i++) {
      rt_assert_fails(out[i], codes[mode]);
      ray_error_t *e = rt_get_error(out[i]);
      assert_int_equal(ray_error_code(e), codes[mode]);
      assert_string_equal(ray_error_origin(e), "failer");
      assert_true(ray_error_task_id(e) == atomic_load(&g_fail_ids[mode]));
      assert_int_equal(ray_error_attempts(e), 1);
      assert_null(ray_error_cause(e));
      if (msgs[mode] != NULL) assert_string_equal(ray_error_message(e), msgs[mode]);
      if (mode == 6) assert_true(strlen(ray_error_message(e)) > 0);
      int need = ray_error_format(e, NULL, 0);
      assert_true(need > 0);
      char *text = malloc((size_t)need + 1);
      assert_non_null(text);
      assert_int_equal(ray_error_format(e, text, (size_t)need + 1), need);
      assert_true(str_contains(text, "failer"));
      assert_true(str_contains(text, ray_err_name(codes[mode])));
      free(text);
      ray_error_free(e);
    }
    /* A dependent fails with EDEPFAILED, caused by this error. */
    ray_function_t sum = {0};
    if (ray_function_lookup("sum", &sum) != 0) sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
    ray_arg_t d = ray_arg_ref(out[0]);
    ray_ref_t dep = rt_submit(sum, &d, 1, NULL);
    rt_assert_fails(dep, RAY_EDEPFAILED);
    ray_error_t *e = rt_get_error(dep);
    assert_int_equal(ray_error_code(e), RAY_EDEPFAILED);
    assert_string_equal(ray_error_origin(e), "sum");
    assert_true(ray_error_task_id(e) != 0);
    assert_true(ray_error_task_id(e) != atomic_load(&g_fail_ids[mode]));
    const ray_error_t *c = ray_error_cause(e);
    assert_non_null(c);
    assert_int_equal(ray_error_code(c), codes[mode]);
    assert_string_equal(ray_error_origin(c), "failer");
    assert_true(ray_error_task_id(c) == atomic_load(&g_fail_ids[mode]));
    ray_error_free(e);
    rt_release(dep);
    for (int i = 0; i < 3; i++) rt_release(out[i]);
  }
  assert_int_equal(atomic_load(&g_calls), 0); /* no dependent ever ran */
  t_end();
}

/* A display name from the options: in the context and in errors. */
static int fn_named(ray_task_ctx_t *ctx, void *arg) {
  const char *want = arg;
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  TC(strcmp(ray_ctx_name(ctx), want) == 0, 0);
  return ray_fail(ctx, RAY_ETASK, "named failure");
}

static void test_display_name(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("named", fn_named, "my display name", rt_t_i64, 1);
  char name[] = "my display name";
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.name = name;
  ray_ref_t r = rt_submit(f, NULL, 0, &o);
  rt_latch_wait(&g_started, 1);
  memset(name, 'x', sizeof name - 1); /* copied at submission */
  rt_latch_signal(&g_go);
  rt_assert_fails(r, RAY_ETASK);
  ray_error_t *e = rt_get_error(r);
  assert_string_equal(ray_error_origin(e), "my display name");
  assert_string_equal(ray_error_message(e), "named failure");
  ray_error_free(e);
  rt_release(r);
  const char *n = NULL;
  assert_rc(ray_function_info(f, &n, NULL), 0);
  assert_string_equal(n, "named"); /* the function keeps its own */

  /* Without a display name: the function's. */
  ray_function_t g = rt_register("plain", fn_named, "plain", rt_t_i64, 1);
  r = rt_submit(g, NULL, 0, NULL);
  rt_assert_fails(r, RAY_ETASK);
  e = rt_get_error(r);
  assert_string_equal(ray_error_origin(e), "plain");
  ray_error_free(e);
  rt_release(r);
  t_end();
}

/* ---- dependency failure through a deep DAG ------------------------------------------- */

enum { DAG_DEPTH = 50 };

/* Walk the chain: EDEPFAILED links from `top_origin` tasks down to the root. */
static void assert_dep_chain(ray_ref_t last, size_t want_len, const char *root_msg,
                             uint64_t root_id) {
  ray_error_t *e = rt_get_error(last);
  assert_int_equal(chain_len(e), want_len);
  uint64_t ids[DAG_DEPTH + 2];
  size_t k = 0;
  for (const ray_error_t *c = e; c != NULL; c = ray_error_cause(c), k++) {
    ids[k] = ray_error_task_id(c);
    assert_true(ids[k] != 0);
    for (size_t j = 0; j < k; j++) assert_true(ids[j] != ids[k]);
    if (ray_error_cause(c) != NULL) {
      assert_int_equal(ray_error_code(c), RAY_EDEPFAILED);
      assert_string_equal(ray_error_origin(c), "sum");
    } else {
      assert_int_equal(ray_error_code(c), RAY_ETASK);
      assert_string_equal(ray_error_origin(c), "root");
      assert_string_equal(ray_error_message(c), root_msg);
      assert_int_equal(ray_error_attempts(c), 1);
      assert_true(ray_error_task_id(c) == root_id);
    }
  }
  /* The formatted chain shows every link, outermost first. */
  int need = ray_error_format(e, NULL, 0);
  assert_true(need > 0);
  char *text = malloc((size_t)need + 1);
  assert_non_null(text);
  assert_int_equal(ray_error_format(e, text, (size_t)need + 1), need);
  size_t lines = 0;
  for (const char *p = text; (p = strstr(p, "caused by")) != NULL; p++) lines++;
  assert_int_equal(lines, want_len - 1);
  assert_true(strncmp(text, "EDEPFAILED", 10) == 0);
  assert_true(str_contains(text, root_msg));
  free(text);
  ray_error_free(e);
}

static void test_dep_failure_chain_depth_50(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t root = rt_register("root", fn_root_fail, NULL, rt_t_i64, 1);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_ref_t prev = rt_submit(root, NULL, 0, NULL);
  for (int i = 0; i < DAG_DEPTH; i++) {
    ray_arg_t a[2] = {ray_arg_i64(i), ray_arg_ref(prev)};
    ray_ref_t next = rt_submit(sum, a, 2, NULL);
    rt_release(prev); /* only the tasks (and then the errors) keep it */
    prev = next;
  }
  rt_assert_fails(prev, RAY_EDEPFAILED);
  assert_dep_chain(prev, DAG_DEPTH + 1, "root failure", atomic_load(&g_task_id));
  rt_release(prev);
  assert_int_equal(atomic_load(&g_calls), 0);
  t_end();
  assert_int_equal(atomic_load(&g_calls), 0);
}

/* Width 2: every node takes both nodes of the level above; one root fails,
 * the other succeeds, so every failure leads back to the one root. */
static void test_dep_failure_dag_depth_50(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t root = rt_register("root", fn_root_fail, NULL, rt_t_i64, 1);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_ref_t lvl[2];
  lvl[0] = rt_submit(root, NULL, 0, NULL);
  ray_arg_t one = ray_arg_i64(1);
  lvl[1] = rt_submit(sum, &one, 1, NULL);
  for (int i = 1; i < DAG_DEPTH; i++) {
    ray_arg_t a[3] = {ray_arg_ref(lvl[0]), ray_arg_ref(lvl[1]), ray_arg_i64(i)};
    ray_arg_t b[2] = {ray_arg_ref(lvl[1]), ray_arg_ref(lvl[0])};
    ray_ref_t n0 = rt_submit(sum, a, 3, NULL);
    ray_ref_t n1 = rt_submit(sum, b, 2, NULL);
    rt_release(lvl[0]);
    rt_release(lvl[1]);
    lvl[0] = n0;
    lvl[1] = n1;
  }
  ray_arg_t a[2] = {ray_arg_ref(lvl[0]), ray_arg_ref(lvl[1])};
  ray_ref_t last = rt_submit(sum, a, 2, NULL);
  rt_release(lvl[0]);
  rt_release(lvl[1]);
  rt_assert_fails(last, RAY_EDEPFAILED);
  /* last, 49 levels, the root. */
  assert_dep_chain(last, DAG_DEPTH + 1, "root failure", atomic_load(&g_task_id));
  rt_release(last);
  t_end();
  assert_int_equal(atomic_load(&g_calls), 1); /* only the succeeding root */
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_results_typed_at_submission),
    cmocka_unit_test(test_multiple_returns),
    cmocka_unit_test(test_return_setters),
    cmocka_unit_test(test_small_results_in_place),
    cmocka_unit_test(test_return_owned),
    cmocka_unit_test(test_return_owned_free_gets_arg),
    cmocka_unit_test(test_return_ref),
    cmocka_unit_test(test_return_ref_of_argument),
    cmocka_unit_test(test_cancel_alias_after_task_finished),
    cmocka_unit_test(test_unset_slot),
    cmocka_unit_test(test_failures),
    cmocka_unit_test(test_display_name),
    cmocka_unit_test(test_dep_failure_chain_depth_50),
    cmocka_unit_test(test_dep_failure_dag_depth_50),
};

RT_MAIN(tests)
