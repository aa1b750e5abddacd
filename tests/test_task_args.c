/* test_task_args.c - task arguments through the public API: every value
 * kind inline and stored (by the inline threshold), the most arguments a
 * task takes, ref arguments read zero-copy, ref arguments not ready yet at
 * submission, and arguments that do not decode as their accessor asks.
 *
 * Helpers and shared task functions are in tasks_util.h; functions run on
 * worker threads and record failed checks into g_errs (TC), asserted after
 * each runtime is shut down. */
#define _POSIX_C_SOURCE 200809L
#include "tasks_util.h"

/* ---- value arguments ---------------------------------------------------------- */

enum { K_NARGS = 11 };

typedef struct {
  int64_t i64;
  double f64;
  const char *str;
  const unsigned char *small;
  size_t small_n;
  const msgpack_object *mp;
  const unsigned char *big;
  size_t big_n;
  const char *bigstr;
  const msgpack_object *bigmp;
} kinds_t;

static const uint32_t k_kinds_types[K_NARGS] = {RAY_TYPE_I64,   RAY_TYPE_F64,     RAY_TYPE_STR,
                                                RAY_TYPE_BYTES, RAY_TYPE_MSGPACK, RAY_TYPE_BYTES,
                                                RAY_TYPE_STR,   RAY_TYPE_MSGPACK, RAY_TYPE_BYTES,
                                                RAY_TYPE_STR,   RAY_TYPE_F64};

static int fn_kinds(ray_task_ctx_t *ctx, void *arg) {
  const kinds_t *k = arg;
  atomic_fetch_add(&g_calls, 1);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  size_t n = ray_ctx_nargs(ctx);
  TC(n == K_NARGS, (int)n);
  if (n != K_NARGS) return RAY_EINVAL;
  for (size_t i = 0; i < n; i++) {
    TC(ray_ctx_arg_type(ctx, i) == k_kinds_types[i], (int)i);
    check_accessors(ctx, i, k_kinds_types[i]);
    ray_ref_t r = {7, 7};
    /* Passed by value, whether kept inline or stored as an object. */
    TC(ray_ctx_arg_ref(ctx, i, &r) == RAY_ETYPE, (int)i);
  }
  int64_t v = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &v) == 0 && v == k->i64, 0);
  double d = 0;
  TC(ray_ctx_arg_f64(ctx, 1, &d) == 0 && d == k->f64, 1);
  const char *s = NULL;
  size_t len = 0;
  TC(ray_ctx_arg_str(ctx, 2, &s, &len) == 0 && len == strlen(k->str) && memcmp(s, k->str, len) == 0,
     2);
  const void *p = NULL;
  size_t sz = 0;
  TC(ray_ctx_arg_bytes(ctx, 3, &p, &sz) == 0 && sz == k->small_n && memcmp(p, k->small, sz) == 0,
     3);
  msgpack_object o;
  TC(ray_ctx_arg_msgpack(ctx, 4, &o) == 0 && msgpack_object_equal(o, *k->mp), 4);
  TC(ray_ctx_arg_bytes(ctx, 5, &p, &sz) == 0 && sz == k->big_n && memcmp(p, k->big, sz) == 0, 5);
  TC(ray_ctx_arg_str(ctx, 6, &s, &len) == 0 && len == strlen(k->bigstr) &&
         memcmp(s, k->bigstr, len) == 0,
     6);
  TC(ray_ctx_arg_msgpack(ctx, 7, &o) == 0 && msgpack_object_equal(o, *k->bigmp), 7);
  TC(ray_ctx_arg_bytes(ctx, 8, &p, &sz) == 0 && sz == 0, 8);
  TC(ray_ctx_arg_str(ctx, 9, &s, &len) == 0 && len == 0, 9);
  TC(ray_ctx_arg_f64(ctx, 10, &d) == 0 && d == 0.0 && signbit(d), 10);
  /* Out of range, NULL outputs, NULL context. */
  check_out_of_range(ctx, n);
  check_out_of_range(ctx, SIZE_MAX);
  TC(ray_ctx_arg_i64(ctx, 0, NULL) == RAY_EINVAL, 100);
  TC(ray_ctx_arg_f64(ctx, 1, NULL) == RAY_EINVAL, 101);
  TC(ray_ctx_arg_str(ctx, 2, NULL, &len) == RAY_EINVAL, 102);
  TC(ray_ctx_arg_str(ctx, 2, &s, NULL) == RAY_EINVAL, 103);
  TC(ray_ctx_arg_bytes(ctx, 3, NULL, &sz) == RAY_EINVAL, 104);
  TC(ray_ctx_arg_bytes(ctx, 3, &p, NULL) == RAY_EINVAL, 105);
  TC(ray_ctx_arg_msgpack(ctx, 4, NULL) == RAY_EINVAL, 106);
  TC(ray_ctx_arg_ref(ctx, 0, NULL) == RAY_EINVAL, 107);
  TC(ray_ctx_arg_i64(NULL, 0, &v) == RAY_EINVAL, 110);
  TC(ray_ctx_arg_f64(NULL, 1, &d) == RAY_EINVAL, 111);
  TC(ray_ctx_arg_str(NULL, 2, &s, &len) == RAY_EINVAL, 112);
  TC(ray_ctx_arg_bytes(NULL, 3, &p, &sz) == RAY_EINVAL, 113);
  TC(ray_ctx_arg_msgpack(NULL, 4, &o) == RAY_EINVAL, 114);
  ray_ref_t r;
  TC(ray_ctx_arg_ref(NULL, 0, &r) == RAY_EINVAL, 115);
  TC(ray_ctx_arg_type(NULL, 0) == 0, 116);
  /* The context's own facts. */
  TC(ray_ctx_attempt(ctx) == 1, (int)ray_ctx_attempt(ctx));
  TC(ray_ctx_task_id(ctx) != 0, 120);
  TC(strcmp(ray_ctx_name(ctx), "kinds") == 0, 121);
  TC(!ray_task_is_cancelled(ctx), 122);
  return ray_return_i64(ctx, 0, (int64_t)n);
}

/* Every kind of value argument, inline and (above the inline threshold)
 * stored as an object; `stored` is how many of the 11 the library must put
 * into the store. */
static void run_value_args(size_t threshold, uint64_t stored) {
  t_begin_cfg(2, threshold);
  unsigned char small[10], small_copy[10];
  rt_fill(small, sizeof small, 3);
  memcpy(small_copy, small, sizeof small);
  enum { BIG = 5000, BIGSTR = 3000 };
  unsigned char *big = malloc(BIG), *big_copy = malloc(BIG);
  char *bigstr = malloc(BIGSTR + 1), *bigstr_copy = malloc(BIGSTR + 1);
  assert_non_null(big);
  assert_non_null(big_copy);
  assert_non_null(bigstr);
  assert_non_null(bigstr_copy);
  rt_fill(big, BIG, 5);
  memcpy(big_copy, big, BIG);
  for (size_t i = 0; i < BIGSTR; i++) bigstr[i] = (char)('a' + i % 26);
  bigstr[BIGSTR] = '\0';
  memcpy(bigstr_copy, bigstr, BIGSTR + 1);
  char str[] = "h\xc3\xa9llo";
  mp_val_t mp, mp_expect, bigmp, bigmp_expect;
  mp_sample(&mp);
  mp_sample(&mp_expect);
  mp_bin(&bigmp, 4000, 9);
  mp_bin(&bigmp_expect, 4000, 9);

  kinds_t k = {
      INT64_MIN, -2.5, "h\xc3\xa9llo", small_copy,          sizeof small, &mp_expect.u.data,
      big_copy,  BIG,  bigstr_copy,    &bigmp_expect.u.data};
  ray_function_t f = rt_register("kinds", fn_kinds, &k, rt_t_i64, 1);
  ray_arg_t args[K_NARGS] = {ray_arg_i64(INT64_MIN),
                             ray_arg_f64(-2.5),
                             ray_arg_str(str),
                             ray_arg_bytes(small, sizeof small),
                             ray_arg_msgpack(&mp.u.data),
                             ray_arg_bytes(big, BIG),
                             ray_arg_str(bigstr),
                             ray_arg_msgpack(&bigmp.u.data),
                             ray_arg_bytes(NULL, 0),
                             ray_arg_str(""),
                             ray_arg_f64(-0.0)};
  ray_stats_t s0 = rt_stats();
  ray_ref_t r = rt_submit(f, args, K_NARGS, NULL);
  assert_int_equal(r.type, RAY_TYPE_I64);
  rt_latch_wait(&g_started, 1);
  /* The task is running and holds its arguments: the result plus the
   * values above the inline threshold are in the store. */
  ray_stats_t s1 = rt_stats();
  assert_int_equal(s1.objects - s0.objects, 1 + stored);
  /* Values were copied at submission: the caller's memory may change. */
  memset(small, 0, sizeof small);
  memset(big, 0, BIG);
  memset(bigstr, 'Z', BIGSTR);
  str[0] = 'X';
  mp_free(&mp);
  mp_free(&bigmp);
  rt_latch_signal(&g_go);
  assert_int_equal(rt_get_i64(r), K_NARGS);
  rt_release(r);
  t_end();
  assert_int_equal(atomic_load(&g_calls), 1);
  mp_free(&mp_expect);
  mp_free(&bigmp_expect);
  free(big);
  free(big_copy);
  free(bigstr);
  free(bigstr_copy);
}

static void test_value_args(void **state) {
  (void)state;
  /* bytes 5000, str 3000 and bin 4000 are above 1024. */
  run_value_args(1024, 3);
}

static void test_value_args_all_stored(void **state) {
  (void)state;
  /* Threshold 0: every non-empty value is stored (only the empty bytes stay inline). */
  run_value_args(0, K_NARGS - 1);
}

/* Exactly RAY_MAX_ARGS arguments. */
static void test_max_args(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_arg_t args[RAY_MAX_ARGS];
  int64_t want = 0;
  for (int i = 0; i < RAY_MAX_ARGS; i++) {
    args[i] = ray_arg_i64(i * 1000003LL);
    want += i * 1000003LL;
  }
  ray_ref_t r = rt_submit(f, args, RAY_MAX_ARGS, NULL);
  assert_int_equal(rt_get_i64(r), want);
  rt_release(r);
  /* No arguments at all, args NULL. */
  r = rt_submit(f, NULL, 0, NULL);
  assert_int_equal(rt_get_i64(r), 0);
  rt_release(r);
  t_end();
}

/* ---- ref arguments -------------------------------------------------------------- */

typedef struct {
  ray_ref_t refs[8];
  uint32_t types[8];
  const void *small_view, *big_view;
  const char *str_view;
  size_t str_view_size;
  const msgpack_object *mp;
  atomic_uint_fast64_t kept;
} refargs_t;

static int fn_refs(ray_task_ctx_t *ctx, void *arg) {
  refargs_t *x = arg;
  size_t n = ray_ctx_nargs(ctx);
  TC(n == 8, (int)n);
  if (n != 8) return RAY_EINVAL;
  for (size_t i = 0; i < n; i++) {
    ray_ref_t r = RAY_REF_NIL;
    TC(ray_ctx_arg_ref(ctx, i, &r) == 0, (int)i);
    TC(r.id == x->refs[i].id, (int)i);
    /* The object's own tag, even when the caller's ref said otherwise (7). */
    TC(r.type == x->types[i], (int)i);
    TC(ray_ctx_arg_type(ctx, i) == x->types[i], (int)i);
    check_accessors(ctx, i, x->types[i]);
  }
  const void *p = NULL;
  size_t sz = 0;
  /* Zero-copy: the task reads the very bytes the store holds. */
  TC(ray_ctx_arg_bytes(ctx, 0, &p, &sz) == 0 && p == x->small_view && sz == 10 &&
         rt_check(p, sz, 1),
     20);
  TC(ray_ctx_arg_bytes(ctx, 1, &p, &sz) == 0 && p == x->big_view && sz == 5000 &&
         rt_check(p, sz, 2),
     21);
  TC(ray_ctx_arg_bytes(ctx, 7, &p, &sz) == 0 && p == x->small_view, 27);
  int64_t v = 0;
  TC(ray_ctx_arg_i64(ctx, 2, &v) == 0 && v == -7, 22);
  const char *s = NULL;
  size_t len = 0;
  TC(ray_ctx_arg_str(ctx, 3, &s, &len) == 0 && len == 7 && memcmp(s, "ref str", 7) == 0, 23);
  TC(s >= x->str_view && s + len <= x->str_view + x->str_view_size, 230);
  double d = 0;
  TC(ray_ctx_arg_f64(ctx, 4, &d) == 0 && d == 0.25, 24);
  msgpack_object o;
  TC(ray_ctx_arg_msgpack(ctx, 5, &o) == 0 && msgpack_object_equal(o, *x->mp), 25);
  /* A user-typed argument: read through its ref. */
  ray_ref_t u;
  TC(ray_ctx_arg_ref(ctx, 6, &u) == 0, 26);
  ray_buf_t b;
  TC(ray_get(u, 0, &b) == 0 && b.type == RAY_TYPE_USER + 1 && b.size == 12 &&
         memcmp(b.data, "user-payload", 12) == 0,
     260);
  ray_buf_release(&b);
  /* The ref is borrowed; retaining it keeps the object beyond the call. */
  ray_ref_t big;
  TC(ray_ctx_arg_ref(ctx, 1, &big) == 0, 28);
  TC(ray_ref_retain(big) == 0, 29);
  atomic_store(&x->kept, big.id);
  check_out_of_range(ctx, n);
  return ray_return_i64(ctx, 0, 42);
}

static void test_ref_args_zero_copy(void **state) {
  (void)state;
  t_begin(2);
  static refargs_t x;
  memset(&x, 0, sizeof x);
  atomic_init(&x.kept, 0);
  unsigned char buf[5000];
  rt_fill(buf, 10, 1);
  assert_rc(ray_put(buf, 10, &x.refs[0]), 0);
  rt_fill(buf, 5000, 2);
  assert_rc(ray_put(buf, 5000, &x.refs[1]), 0);
  assert_rc(ray_put_i64(-7, &x.refs[2]), 0);
  assert_rc(ray_put_str("ref str", &x.refs[3]), 0);
  assert_rc(ray_put_f64(0.25, &x.refs[4]), 0);
  mp_val_t mp;
  mp_sample(&mp);
  x.mp = &mp.u.data;
  assert_rc(ray_put_msgpack(&mp.u.data, &x.refs[5]), 0);
  assert_rc(ray_put_typed("user-payload", 12, RAY_TYPE_USER + 1, &x.refs[6]), 0);
  /* A ref whose tag the caller got wrong: the object's tag decides. */
  x.refs[7] = (ray_ref_t){x.refs[0].id, RAY_TYPE_I64};
  const uint32_t types[8] = {RAY_TYPE_BYTES, RAY_TYPE_BYTES,   RAY_TYPE_I64,      RAY_TYPE_STR,
                             RAY_TYPE_F64,   RAY_TYPE_MSGPACK, RAY_TYPE_USER + 1, RAY_TYPE_BYTES};
  memcpy(x.types, types, sizeof types);
  ray_buf_t vs, vb, vstr;
  assert_rc(ray_get(x.refs[0], 0, &vs), 0);
  assert_rc(ray_get(x.refs[1], 0, &vb), 0);
  assert_rc(ray_get(x.refs[3], 0, &vstr), 0);
  x.small_view = vs.data;
  x.big_view = vb.data;
  x.str_view = vstr.data;
  x.str_view_size = vstr.size;

  ray_function_t f = rt_register("refs", fn_refs, &x, rt_t_i64, 1);
  ray_arg_t args[8];
  for (int i = 0; i < 8; i++) args[i] = ray_arg_ref(x.refs[i]);
  ray_ref_t r = rt_submit(f, args, 8, NULL);
  assert_int_equal(rt_get_i64(r), 42);
  rt_release(r);
  ray_buf_release(&vs);
  ray_buf_release(&vb);
  ray_buf_release(&vstr);
  for (int i = 0; i < 7; i++) rt_release(x.refs[i]);
  /* The big object lives on through the reference the task took. */
  ray_ref_t kept = {atomic_load(&x.kept), RAY_TYPE_BYTES};
  assert_true(kept.id == x.refs[1].id);
  ray_buf_t b;
  assert_rc(ray_get(kept, 0, &b), 0);
  assert_true(b.size == 5000 && rt_check(b.data, b.size, 2));
  ray_buf_release(&b);
  rt_release(kept);
  mp_free(&mp);
  t_end();
}

/* A ref argument that is pending at submission: the task waits for it
 * without occupying a worker (1 worker: independent work still runs). */
static void test_ref_arg_pending(void **state) {
  (void)state;
  t_begin(1);
  ray_function_t f = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  ray_arg_t a[2] = {ray_arg_ref(p), ray_arg_i64(1)};
  ray_ref_t r = rt_submit(f, a, 2, NULL);
  ray_ref_t r2 = rt_submit(f, a, 2, NULL); /* two tasks on one dependency */
  ray_arg_t b[2] = {ray_arg_i64(2), ray_arg_i64(3)};
  ray_ref_t q = rt_submit(f, b, 2, NULL);
  assert_int_equal(rt_get_i64(q), 5);
  ray_buf_t v;
  assert_rc(ray_get(r, 0, &v), RAY_ETIMEDOUT);
  assert_int_equal(atomic_load(&g_calls), 1);
  /* The host may drop its reference: the tasks hold theirs. */
  char enc[16];
  size_t n = rt_encode_i64(41, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p, enc, n), 0);
  rt_release(p);
  assert_int_equal(rt_get_i64(r), 42);
  assert_int_equal(rt_get_i64(r2), 42);
  rt_release(r);
  rt_release(r2);
  rt_release(q);
  t_end();
}

/* Ref arguments tagged with a type whose payload is not a valid encoding
 * of it: the typed accessors fail with RAY_EDECODE (the tag still decides
 * which accessor applies). */
static int fn_decode(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t v;
  double d;
  const char *s;
  size_t len;
  msgpack_object o;
  TC(ray_ctx_arg_i64(ctx, 0, &v) == RAY_EDECODE, 0);
  TC(ray_ctx_arg_i64(ctx, 1, &v) == RAY_EDECODE, 1);
  TC(ray_ctx_arg_f64(ctx, 2, &d) == RAY_EDECODE, 2);
  TC(ray_ctx_arg_str(ctx, 3, &s, &len) == RAY_EDECODE, 3);
  TC(ray_ctx_arg_msgpack(ctx, 4, &o) == RAY_EDECODE, 4);
  TC(ray_ctx_arg_i64(ctx, 5, &v) == RAY_EDECODE, 5); /* uint64 above INT64_MAX */
  TC(ray_ctx_arg_str(ctx, 0, &s, &len) == RAY_ETYPE, 6);
  TC(ray_ctx_arg_type(ctx, 0) == RAY_TYPE_I64, 7);
  return ray_return_i64(ctx, 0, 1);
}

static void test_arg_decode_errors(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("decode", fn_decode, NULL, rt_t_i64, 1);
  ray_ref_t bad[6];
  assert_rc(ray_put_typed("\xc1", 1, RAY_TYPE_I64, &bad[0]), 0);
  assert_rc(ray_put_typed("\xa2hi", 3, RAY_TYPE_I64, &bad[1]), 0);
  assert_rc(ray_put_typed("\xa2hi", 3, RAY_TYPE_F64, &bad[2]), 0);
  assert_rc(ray_put_typed("\x07", 1, RAY_TYPE_STR, &bad[3]), 0);
  assert_rc(ray_put_typed("\x92\x01", 2, RAY_TYPE_MSGPACK, &bad[4]), 0);
  assert_rc(ray_put_typed("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, RAY_TYPE_I64, &bad[5]), 0);
  ray_arg_t a[6];
  for (int i = 0; i < 6; i++) a[i] = ray_arg_ref(bad[i]);
  ray_ref_t r = rt_submit(f, a, 6, NULL);
  assert_int_equal(rt_get_i64(r), 1);
  rt_release(r);
  for (int i = 0; i < 6; i++) rt_release(bad[i]);
  t_end();
}

/* ---- pre-encoded msgpack (the C++ API's path) ---------------------------------- */

/* echo_raw(x): its argument's payload back as a msgpack result, through
 * ray_ctx_arg_raw and ray_return_msgpack_bytes; checks their error paths. */
static int fn_echo_raw(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *data = NULL;
  size_t size = 0;
  uint32_t type = 0;
  TC(ray_ctx_arg_raw(ctx, 0, NULL, &size, NULL) == RAY_EINVAL, 0);
  TC(ray_ctx_arg_raw(ctx, 0, &data, NULL, NULL) == RAY_EINVAL, 0);
  TC(ray_ctx_arg_raw(ctx, 1, &data, &size, NULL) == RAY_EINVAL, 0); /* one argument */
  TC(ray_ctx_arg_raw(NULL, 0, &data, &size, NULL) == RAY_EINVAL, 0);
  int rc = ray_ctx_arg_raw(ctx, 0, &data, &size, &type);
  TC(rc == 0 && type == RAY_TYPE_MSGPACK, rc);
  if (rc != 0) return rc;
  TC(ray_return_msgpack_bytes(ctx, 0, NULL, 1) == RAY_EINVAL, 0);
  TC(ray_return_msgpack_bytes(ctx, 0, "\xc1", 1) == RAY_EDECODE, 0);
  TC(ray_return_msgpack_bytes(ctx, 0, "\x01\x02", 2) == RAY_EDECODE, 0); /* trailing */
  TC(ray_return_msgpack_bytes(ctx, 1, data, size) == RAY_EINVAL, 0);     /* one result */
  return ray_return_msgpack_bytes(ctx, 0, data, size);
}

/* A value encoded elsewhere goes in as an argument and back as a result
 * byte for byte, a ref inside it held all the way; bad bytes are refused
 * at submission. */
static void test_msgpack_bytes_in_and_out(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("echo_raw", fn_echo_raw, NULL, rt_t_msgpack, 1);
  ray_ref_t inner;
  assert_rc(ray_put_i64(99, &inner), 0);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_str(&pk, 3);
  msgpack_pack_str_body(&pk, "abc", 3);
  assert_rc(ray_msgpack_pack_ref(&pk, inner), 0);
  ray_arg_t a = ray_arg_msgpack_bytes(sb.data, sb.size);
  ray_ref_t r = rt_submit(f, &a, 1, NULL);
  rt_release(inner); /* the argument, then the result, hold it */
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_MSGPACK);
  assert_int_equal(b.size, sb.size);
  assert_memory_equal(b.data, sb.data, sb.size);
  ray_buf_release(&b);
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(r, 0, &m), 0);
  assert_int_equal(m.nrefs, 1);
  int64_t v = 0;
  assert_rc(ray_get_i64(m.refs[0], 0, &v), 0);
  assert_int_equal(v, 99);
  assert_rc(ray_ref_release_batch(m.refs, m.nrefs), 0);
  ray_msgpack_release(&m);
  rt_release(r);
  /* Refused before anything runs. */
  ray_ref_t out = RAY_REF_NIL;
  a = ray_arg_msgpack_bytes("\xc1", 1);
  assert_rc(ray_task_submit(f, &a, 1, NULL, &out), RAY_EDECODE);
  a = ray_arg_msgpack_bytes("\x92\x01", 2);
  assert_rc(ray_task_submit(f, &a, 1, NULL, &out), RAY_EDECODE);
  a = ray_arg_msgpack_bytes(NULL, 3);
  assert_rc(ray_task_submit(f, &a, 1, NULL, &out), RAY_EINVAL);
  /* inner is gone once the task has let go of its argument, which may
   * come after its result is readable: wait for that through the hook. */
  assert_rc(ray__quiesce(60000), 0);
  a = ray_arg_msgpack_bytes(sb.data, sb.size);
  assert_rc(ray_task_submit(f, &a, 1, NULL, &out), RAY_ENOTFOUND);
  msgpack_sbuffer_destroy(&sb);
  assert_int_equal(rt_stats().objects, 0);
  t_end();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_value_args),
    cmocka_unit_test(test_value_args_all_stored),
    cmocka_unit_test(test_max_args),
    cmocka_unit_test(test_ref_args_zero_copy),
    cmocka_unit_test(test_ref_arg_pending),
    cmocka_unit_test(test_arg_decode_errors),
    cmocka_unit_test(test_msgpack_bytes_in_and_out),
};

RT_MAIN(tests)
