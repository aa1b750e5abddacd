/* test_tasks.c - remote functions through the public API: registration and
 * lookup, submission with every argument kind (inline and stored values, ref
 * arguments read zero-copy), results typed at submission, every ray_return_*
 * and argument accessor with their errors, failing functions and their error
 * objects, dependency failure through a deep DAG, retries, cancellation, bad
 * input at submit, and several host threads submitting at once.
 *
 * Nested tasks and shutdown with tasks in flight are in test_nested.c; the
 * out-of-memory paths of ray_task_submit are in test_oom.c.
 *
 * Functions run on worker threads, where cmocka must not be used: they
 * record failed checks into g_errs (TC) and every test asserts it after its
 * runtime is shut down (all tasks have then finished). Tasks that must stay
 * put while the main thread looks at something wait on a latch. */
#define _POSIX_C_SOURCE 200809L
#include <sched.h>

#include "test_util.h"

/* ---- shared state --------------------------------------------------------- */

static rt_errs_t g_errs;               /* checks made inside tasks */
static atomic_int g_calls;             /* invocations of fn_sum / the function under test */
static atomic_int g_blocks;            /* invocations of fn_block */
static rt_latch_t g_started;           /* signalled by tasks when they start */
static rt_latch_t g_go;                /* tasks wait on it */
static atomic_uint_fast64_t g_task_id; /* a task's id, recorded from inside it */

/* In a task: record a failed check. */
#define TC(cond, value) RT_CHECK(&g_errs, (cond), (value))

static void t_reset(void) {
  rt_errs_init(&g_errs);
  atomic_store(&g_calls, 0);
  atomic_store(&g_blocks, 0);
  atomic_store(&rt_frees, 0);
  atomic_store(&g_task_id, 0);
  rt_latch_init(&g_started);
  rt_latch_init(&g_go);
}

static void t_begin_cfg(unsigned workers, size_t inline_threshold) {
  t_reset();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = workers;
  cfg.inline_threshold = inline_threshold;
  rt_begin_cfg(&cfg);
}

static void t_begin(unsigned workers) {
  t_begin_cfg(workers, 1024);
}

/* Shut down cleanly (every task has finished), then check what the tasks saw. */
static void t_end(void) {
  rt_end();
  rt_errs_assert(&g_errs);
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
}

static size_t chain_len(const ray_error_t *e) {
  size_t n = 0;
  for (; e != NULL; e = ray_error_cause(e)) n++;
  return n;
}

static bool str_contains(const char *hay, const char *needle) {
  return hay != NULL && strstr(hay, needle) != NULL;
}

/* msgpack helpers: a packed value unpacked into `u` (both destroyed by the caller). */
typedef struct {
  msgpack_sbuffer sb;
  msgpack_unpacked u;
} mp_val_t;

static void mp_unpack(mp_val_t *v) {
  size_t off = 0;
  msgpack_unpacked_init(&v->u);
  assert_int_equal(msgpack_unpack_next(&v->u, v->sb.data, v->sb.size, &off),
                   MSGPACK_UNPACK_SUCCESS);
}

/* {"k": [1, "two", 3.5, nil, true]} */
static void mp_sample(mp_val_t *v) {
  msgpack_packer pk;
  msgpack_sbuffer_init(&v->sb);
  msgpack_packer_init(&pk, &v->sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str(&pk, 1);
  msgpack_pack_str_body(&pk, "k", 1);
  msgpack_pack_array(&pk, 5);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str(&pk, 3);
  msgpack_pack_str_body(&pk, "two", 3);
  msgpack_pack_double(&pk, 3.5);
  msgpack_pack_nil(&pk);
  msgpack_pack_true(&pk);
  mp_unpack(v);
}

/* A bin of n pattern bytes (larger than the inline threshold when n is). */
static void mp_bin(mp_val_t *v, size_t n, uint64_t seed) {
  msgpack_packer pk;
  unsigned char *tmp = malloc(n);
  assert_non_null(tmp);
  rt_fill(tmp, n, seed);
  msgpack_sbuffer_init(&v->sb);
  msgpack_packer_init(&pk, &v->sb, msgpack_sbuffer_write);
  msgpack_pack_bin(&pk, n);
  msgpack_pack_bin_body(&pk, tmp, n);
  free(tmp);
  mp_unpack(v);
}

static void mp_free(mp_val_t *v) {
  msgpack_unpacked_destroy(&v->u);
  msgpack_sbuffer_destroy(&v->sb);
}

/* ---- task functions used by many tests ------------------------------------ */

/* Sum of its i64 arguments (any number); one I64 result. */
static int fn_sum(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  int64_t s = 0;
  for (size_t i = 0; i < ray_ctx_nargs(ctx); i++) {
    int64_t v = 0;
    int rc = ray_ctx_arg_i64(ctx, i, &v);
    if (rc != 0) return ray_fail(ctx, rc, "argument %zu: %s", i, ray_err_name(rc));
    s += v;
  }
  return ray_return_i64(ctx, 0, s);
}

/* Signals g_started, waits for g_go, returns 1 (one I64 result). */
static int fn_block(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_blocks, 1);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  return ray_return_i64(ctx, 0, 1);
}

/* Fails with ETASK "root failure". */
static int fn_root_fail(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_store(&g_task_id, ray_ctx_task_id(ctx));
  return ray_fail(ctx, RAY_ETASK, "root failure");
}

/* Every accessor on argument i of `type`: only the matching one succeeds. */
static void check_accessors(ray_task_ctx_t *ctx, size_t i, uint32_t type) {
  int64_t v;
  double d;
  const char *s;
  size_t len;
  const void *p;
  size_t n;
  msgpack_object o;
  int tag = (int)(i * 10);
  TC(ray_ctx_arg_i64(ctx, i, &v) == (type == RAY_TYPE_I64 ? 0 : RAY_ETYPE), tag + 1);
  TC(ray_ctx_arg_f64(ctx, i, &d) == (type == RAY_TYPE_F64 ? 0 : RAY_ETYPE), tag + 2);
  TC(ray_ctx_arg_str(ctx, i, &s, &len) == (type == RAY_TYPE_STR ? 0 : RAY_ETYPE), tag + 3);
  TC(ray_ctx_arg_msgpack(ctx, i, &o) == (type == RAY_TYPE_MSGPACK ? 0 : RAY_ETYPE), tag + 4);
  if (type < RAY_TYPE_USER) /* a user tag through the bytes accessor: see the ref test */
    TC(ray_ctx_arg_bytes(ctx, i, &p, &n) == (type == RAY_TYPE_BYTES ? 0 : RAY_ETYPE), tag + 5);
}

/* Index i out of range for every accessor. */
static void check_out_of_range(ray_task_ctx_t *ctx, size_t i) {
  int64_t v;
  double d;
  const char *s;
  size_t len;
  const void *p;
  size_t n;
  msgpack_object o;
  ray_ref_t r;
  TC(ray_ctx_arg_type(ctx, i) == 0, (int)i);
  TC(ray_ctx_arg_i64(ctx, i, &v) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_f64(ctx, i, &d) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_str(ctx, i, &s, &len) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_bytes(ctx, i, &p, &n) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_msgpack(ctx, i, &o) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_ref(ctx, i, &r) == RAY_EINVAL, (int)i);
}

/* ---- registration ----------------------------------------------------------- */

static int fn_arg_is(ray_task_ctx_t *ctx, void *arg) {
  int64_t want = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &want) == 0, 0);
  return ray_return_i64(ctx, 0, (int64_t)(uintptr_t)arg == want ? 1 : 0);
}

static void test_register_before_init(void **state) {
  (void)state;
  rt_no_runtime();
  ray_function_t f = {0};
  assert_rc(ray_function_register("f", fn_sum, NULL, rt_t_i64, 1, &f), RAY_ENOTINIT);
  assert_rc(ray_function_lookup("f", &f), RAY_ENOTINIT);
  f.id = 1;
  assert_rc(ray_function_info(f, NULL, NULL), RAY_ENOTINIT);
  ray_ref_t out;
  assert_rc(ray_task_submit(f, NULL, 0, NULL, &out), RAY_ENOTINIT);
  ray_ref_t r = {1, RAY_TYPE_I64};
  assert_rc(ray_cancel(r), RAY_ENOTINIT);
  ray_task_opts_init(NULL); /* no-op */
  ray_task_opts_t o;
  memset(&o, 0xA5, sizeof o);
  ray_task_opts_init(&o);
  assert_int_equal(o.num_returns, 0);
  assert_int_equal(o.max_retries, 0);
  assert_false(o.retry_on_error);
  assert_null(o.name);
}

static void test_register_invalid(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = {0};
  const uint32_t two[] = {RAY_TYPE_I64, 0};
  uint32_t many[RAY_MAX_RETURNS + 1];
  for (size_t i = 0; i <= RAY_MAX_RETURNS; i++) many[i] = RAY_TYPE_BYTES;
  assert_rc(ray_function_register(NULL, fn_sum, NULL, rt_t_i64, 1, &f), RAY_EINVAL);
  assert_rc(ray_function_register("", fn_sum, NULL, rt_t_i64, 1, &f), RAY_EINVAL);
  assert_rc(ray_function_register("f", NULL, NULL, rt_t_i64, 1, &f), RAY_EINVAL);
  assert_rc(ray_function_register("f", fn_sum, NULL, NULL, 1, &f), RAY_EINVAL);
  assert_rc(ray_function_register("f", fn_sum, NULL, rt_t_i64, 1, NULL), RAY_EINVAL);
  assert_rc(ray_function_register("f", fn_sum, NULL, rt_t_i64, 0, &f), RAY_EINVAL);
  assert_rc(ray_function_register("f", fn_sum, NULL, many, RAY_MAX_RETURNS + 1, &f), RAY_EINVAL);
  assert_rc(ray_function_register("f", fn_sum, NULL, two, 2, &f), RAY_EINVAL); /* a 0 type */
  assert_int_equal(f.id, 0);
  /* None of the failed calls registered anything. */
  assert_rc(ray_function_lookup("f", &f), RAY_ENOTFOUND);
  /* The limits themselves are fine. */
  ray_function_t g = rt_register("f", fn_sum, NULL, many, RAY_MAX_RETURNS);
  size_t nret = 0;
  assert_rc(ray_function_info(g, NULL, &nret), 0);
  assert_int_equal(nret, RAY_MAX_RETURNS);
  const uint32_t user[] = {RAY_TYPE_USER + 77};
  rt_register("user-typed", fn_sum, NULL, user, 1);
  t_end();
}

static void test_register_lookup_info(void **state) {
  (void)state;
  t_begin(2);
  char name[] = "copied-name";
  uint32_t types[] = {RAY_TYPE_I64, RAY_TYPE_STR};
  ray_function_t f = rt_register(name, fn_sum, NULL, types, 2);
  /* Name and return types were copied. */
  name[0] = 'X';
  types[0] = RAY_TYPE_F64;
  ray_function_t found = {0};
  assert_rc(ray_function_lookup("copied-name", &found), 0);
  assert_true(found.id == f.id);
  assert_rc(ray_function_lookup(name, &found), RAY_ENOTFOUND);
  const char *n = NULL;
  size_t nret = 0;
  assert_rc(ray_function_info(f, &n, &nret), 0);
  assert_string_equal(n, "copied-name");
  assert_ptr_not_equal(n, name);
  assert_int_equal(nret, 2);
  assert_rc(ray_function_info(f, NULL, NULL), 0);
  assert_rc(ray_function_info(f, &n, NULL), 0);
  assert_rc(ray_function_info(f, NULL, &nret), 0);
  ray_ref_t out[2];
  assert_rc(ray_task_submit(f, NULL, 0, NULL, out), 0);
  assert_int_equal(out[0].type, RAY_TYPE_I64); /* as registered, not as changed after */
  assert_int_equal(out[1].type, RAY_TYPE_STR);
  assert_int_equal(rt_get_i64(out[0]), 0);
  rt_release(out[0]);
  rt_release(out[1]);

  /* Duplicates. */
  ray_function_t dup = {0};
  assert_rc(ray_function_register("copied-name", fn_block, NULL, rt_t_i64, 1, &dup),
            RAY_ENAMEEXISTS);
  assert_int_equal(dup.id, 0);
  assert_rc(ray_function_register("copied-name", fn_sum, NULL, types, 2, &dup), RAY_ENAMEEXISTS);
  /* Names are case-sensitive and exact. */
  rt_register("Copied-name", fn_sum, NULL, rt_t_i64, 1);
  rt_register("copied-name ", fn_sum, NULL, rt_t_i64, 1);

  /* Lookup errors. */
  assert_rc(ray_function_lookup(NULL, &found), RAY_EINVAL);
  assert_rc(ray_function_lookup("copied-name", NULL), RAY_EINVAL);
  assert_rc(ray_function_lookup("nope", &found), RAY_ENOTFOUND);
  assert_rc(ray_function_lookup("", &found), RAY_ENOTFOUND);

  /* Bogus handles. */
  ray_function_t bogus = {0};
  assert_rc(ray_function_info(bogus, &n, &nret), RAY_ENOTFOUND);
  bogus.id = (f.id & ~(uint64_t)UINT32_MAX) | 9999; /* this runtime, no such index */
  assert_rc(ray_function_info(bogus, &n, &nret), RAY_ENOTFOUND);
  bogus.id = f.id + ((uint64_t)1 << 32); /* another runtime's */
  assert_rc(ray_function_info(bogus, &n, &nret), RAY_ENOTFOUND);
  assert_rc(ray_task_submit(bogus, NULL, 0, NULL, out), RAY_ENOTFOUND);

  /* The registration argument reaches the function. */
  static int anchor;
  ray_function_t a = rt_register("arg-is", fn_arg_is, &anchor, rt_t_i64, 1);
  ray_arg_t arg = ray_arg_i64((int64_t)(uintptr_t)&anchor);
  ray_ref_t r = rt_submit(a, &arg, 1, NULL);
  assert_int_equal(rt_get_i64(r), 1);
  rt_release(r);
  t_end();
}

/* More functions than one registry chunk holds. */
static void test_register_many(void **state) {
  (void)state;
  t_begin(2);
  enum { N = 600 };
  static ray_function_t fs[N];
  char name[32];
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "fn-%d", i);
    fs[i] = rt_register(name, fn_sum, NULL, rt_t_i64, 1);
    for (int j = 0; j < i; j += 97) assert_true(fs[j].id != fs[i].id);
  }
  for (int i = 0; i < N; i++) {
    snprintf(name, sizeof name, "fn-%d", i);
    ray_function_t f = {0};
    assert_rc(ray_function_lookup(name, &f), 0);
    assert_true(f.id == fs[i].id);
    const char *n = NULL;
    assert_rc(ray_function_info(fs[i], &n, NULL), 0);
    assert_string_equal(n, name);
  }
  ray_arg_t args[2] = {ray_arg_i64(40), ray_arg_i64(2)};
  ray_ref_t r = rt_submit(fs[N - 1], args, 2, NULL);
  assert_int_equal(rt_get_i64(r), 42);
  rt_release(r);
  t_end();
}

static void test_register_stale_after_reinit(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t old = rt_register("stale", fn_sum, NULL, rt_t_i64, 1);
  ray_function_t old2 = rt_register("stale-2", fn_sum, NULL, rt_t_i64, 1);
  t_end();
  ray_ref_t out;
  assert_rc(ray_function_info(old, NULL, NULL), RAY_ENOTINIT);
  assert_rc(ray_task_submit(old, NULL, 0, NULL, &out), RAY_ENOTINIT);

  t_begin(2);
  /* Functions live until shutdown: the new runtime knows none of them. */
  ray_function_t f = {0};
  assert_rc(ray_function_lookup("stale", &f), RAY_ENOTFOUND);
  assert_rc(ray_function_info(old, NULL, NULL), RAY_ENOTFOUND);
  assert_rc(ray_task_submit(old, NULL, 0, NULL, &out), RAY_ENOTFOUND);
  /* Registered again (at the same index): the old handle still does not resolve. */
  ray_function_t fresh = rt_register("stale", fn_block, NULL, rt_t_i64, 1);
  assert_true(fresh.id != old.id);
  rt_register("other", fn_sum, NULL, rt_t_i64, 1);
  assert_rc(ray_function_info(old, NULL, NULL), RAY_ENOTFOUND);
  assert_rc(ray_function_info(old2, NULL, NULL), RAY_ENOTFOUND);
  assert_rc(ray_task_submit(old, NULL, 0, NULL, &out), RAY_ENOTFOUND);
  assert_rc(ray_task_submit(old2, NULL, 0, NULL, &out), RAY_ENOTFOUND);
  assert_int_equal(rt_stats().objects, 0); /* nothing was created */
  assert_rc(ray_function_lookup("stale", &f), 0);
  assert_true(f.id == fresh.id);
  t_end();
}

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

/* ---- results ---------------------------------------------------------------------- */

static const uint32_t k_typed[] = {RAY_TYPE_STR, RAY_TYPE_I64, RAY_TYPE_USER + 3, RAY_TYPE_MSGPACK,
                                   RAY_TYPE_F64};

static int fn_typed(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  msgpack_object nil;
  memset(&nil, 0, sizeof nil);
  nil.type = MSGPACK_OBJECT_NIL;
  TC(ray_return_str(ctx, 0, "typed") == 0, 0);
  TC(ray_return_i64(ctx, 1, 5) == 0, 1);
  TC(ray_return_bytes(ctx, 2, "u3", 2) == 0, 2);
  TC(ray_return_msgpack(ctx, 3, &nil) == 0, 3);
  TC(ray_return_f64(ctx, 4, 1.25) == 0, 4);
  return 0;
}

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
    TC(ray_return_owned(ctx, s, buf, 3, NULL) == RAY_EINVAL, tag + 6);
    TC(ray_return_ref(ctx, s, some) == RAY_EINVAL, tag + 7);
  }
  TC(ray_return_i64(NULL, 0, 1) == RAY_EINVAL, 201);
  TC(ray_return_f64(NULL, 1, 1.0) == RAY_EINVAL, 202);
  TC(ray_return_str(NULL, 2, "x") == RAY_EINVAL, 203);
  TC(ray_return_bytes(NULL, 3, "x", 1) == RAY_EINVAL, 204);
  TC(ray_return_msgpack(NULL, 4, &nil) == RAY_EINVAL, 205);
  TC(ray_return_owned(NULL, 3, buf, 3, NULL) == RAY_EINVAL, 206);
  TC(ray_return_ref(NULL, 0, some) == RAY_EINVAL, 207);
  TC(ray_return_str(ctx, 2, NULL) == RAY_EINVAL, 210);
  TC(ray_return_msgpack(ctx, 4, NULL) == RAY_EINVAL, 211);
  TC(ray_return_bytes(ctx, 3, NULL, 1) == RAY_EINVAL, 212);
  TC(ray_return_owned(ctx, 3, NULL, 1, rt_count_free) == RAY_EINVAL, 213);
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

/* ray_return_owned: no copy, free_fn exactly once (on replacement, on a
 * later failure, or when the object is freed); on error the caller keeps it. */
static void *_Atomic g_owned_ptr;

static void *owned(size_t n, uint64_t seed) {
  void *p = malloc(n ? n : 1);
  if (p != NULL) rt_fill(p, n, seed);
  return p;
}

static int fn_owned(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  void *a = owned(5000, 1);
  TC(a != NULL, 0);
  atomic_store(&g_owned_ptr, a);
  TC(ray_return_owned(ctx, 0, a, 5000, rt_count_free) == 0, 1);
  /* Replaced by a copy: freed at once. */
  void *b = owned(100, 2);
  TC(ray_return_owned(ctx, 1, b, 100, rt_count_free) == 0, 2);
  TC(atomic_load(&rt_frees) == 0, 3);
  TC(ray_return_bytes(ctx, 1, "replaced", 8) == 0, 4);
  TC(atomic_load(&rt_frees) == 1, atomic_load(&rt_frees));
  /* Refused: the buffer stays ours. */
  void *c = owned(10, 3);
  TC(ray_return_owned(ctx, 4, c, 10, rt_count_free) == RAY_EINVAL, 5);
  TC(atomic_load(&rt_frees) == 1, 6);
  TC(rt_check(c, 10, 3), 7);
  free(c);
  /* Any slot type takes owned bytes (already in its encoding). */
  void *d = owned(12, 4);
  TC(ray_return_owned(ctx, 2, d, 12, rt_count_free) == 0, 8);
  void *e = owned(0, 0);
  TC(ray_return_owned(ctx, 3, e, 0, rt_count_free) == 0, 9); /* empty, still owned */
  return 0;
}

static int fn_owned_then_fail(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  TC(ray_return_owned(ctx, 0, owned(3000, 5), 3000, rt_count_free) == 0, 0);
  TC(ray_return_owned(ctx, 1, owned(10, 6), 10, rt_count_free) == 0, 1);
  return ray_fail(ctx, RAY_ETASK, "failed after handing over");
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

static ray_ref_t pending_bytes(void) {
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  return p;
}

static void ret_ref_submit(ray_function_t f, ray_ref_t src, int mode, ray_ref_t out[2]) {
  ray_arg_t a[2] = {ray_arg_i64((int64_t)src.id), ray_arg_i64(mode)};
  assert_rc(ray_task_submit(f, a, 2, NULL, out), 0);
  /* The marker is published with (or after) the alias: the task is done. */
  assert_int_equal(rt_get_i64(out[1]), 1);
}

static ray_error_t *upstream_error(void) {
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_EIO, "upstream", "src broke %d", 9), 0);
  return e;
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

/* ---- retries ------------------------------------------------------------------------ */

/* Arguments: the attempt that succeeds (0: none) and how to fail:
 * 0 ray_fail, 1 return 5, 2 hand over an owned buffer then ray_fail. */
static int fn_flaky(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int calls = atomic_fetch_add(&g_calls, 1) + 1;
  int64_t ok_on = 0, how = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &ok_on) == 0, 0);
  TC(ray_ctx_arg_i64(ctx, 1, &how) == 0, 1);
  uint32_t attempt = ray_ctx_attempt(ctx);
  TC(attempt == (uint32_t)calls, (int)attempt);
  uint64_t id = ray_ctx_task_id(ctx);
  if (attempt == 1) atomic_store(&g_task_id, id);
  TC(id == atomic_load(&g_task_id), 2); /* the same task, attempt after attempt */
  if (ok_on != 0 && attempt == (uint32_t)ok_on) return ray_return_i64(ctx, 0, attempt);
  if (how == 1) return 5;
  if (how == 2) TC(ray_return_owned(ctx, 0, owned(64, attempt), 64, rt_count_free) == 0, 3);
  return ray_fail(ctx, RAY_ETASK, "attempt %u failed", attempt);
}

static ray_ref_t flaky(ray_function_t f, int ok_on, int how, uint32_t max_retries, bool retry) {
  atomic_store(&g_calls, 0);
  atomic_store(&rt_frees, 0);
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.max_retries = max_retries;
  o.retry_on_error = retry;
  ray_arg_t a[2] = {ray_arg_i64(ok_on), ray_arg_i64(how)};
  return rt_submit(f, a, 2, &o);
}

static void assert_final_error(ray_ref_t r, int code, uint32_t attempts, const char *msg) {
  rt_assert_fails(r, code);
  ray_error_t *e = rt_get_error(r);
  assert_int_equal(ray_error_code(e), code);
  assert_int_equal(ray_error_attempts(e), attempts);
  assert_string_equal(ray_error_origin(e), "flaky");
  assert_true(ray_error_task_id(e) == atomic_load(&g_task_id));
  if (msg != NULL) assert_string_equal(ray_error_message(e), msg);
  ray_error_free(e);
}

static void test_retries(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("flaky", fn_flaky, NULL, rt_t_i64, 1);
  ray_ref_t r;

  /* Succeeds on the 3rd attempt. */
  r = flaky(f, 3, 0, 5, true);
  assert_int_equal(rt_get_i64(r), 3);
  assert_int_equal(atomic_load(&g_calls), 3);
  rt_release(r);
  /* A non-zero return is retried the same way. */
  r = flaky(f, 3, 1, 5, true);
  assert_int_equal(rt_get_i64(r), 3);
  assert_int_equal(atomic_load(&g_calls), 3);
  rt_release(r);
  /* Exactly max_retries retries: 1 + 3 attempts. */
  r = flaky(f, 4, 0, 3, true);
  assert_int_equal(rt_get_i64(r), 4);
  assert_int_equal(atomic_load(&g_calls), 4);
  rt_release(r);
  r = flaky(f, 5, 0, 3, true);
  assert_final_error(r, RAY_ETASK, 4, "attempt 4 failed");
  assert_int_equal(atomic_load(&g_calls), 4);
  rt_release(r);
  /* Never succeeds: attempts == max_retries + 1, the last attempt's error. */
  r = flaky(f, 0, 0, 2, true);
  assert_final_error(r, RAY_ETASK, 3, "attempt 3 failed");
  assert_int_equal(atomic_load(&g_calls), 3);
  rt_release(r);
  r = flaky(f, 0, 1, 2, true);
  assert_final_error(r, RAY_ETASK, 3, NULL);
  rt_release(r);
  /* Without retry_on_error, max_retries does not rerun a failed function. */
  r = flaky(f, 2, 0, 3, false);
  assert_final_error(r, RAY_ETASK, 1, "attempt 1 failed");
  assert_int_equal(atomic_load(&g_calls), 1);
  rt_release(r);
  /* retry_on_error with no retries: one attempt. */
  r = flaky(f, 2, 0, 0, true);
  assert_final_error(r, RAY_ETASK, 1, "attempt 1 failed");
  assert_int_equal(atomic_load(&g_calls), 1);
  rt_release(r);
  /* Results a failed attempt set are dropped (owned buffers freed once). */
  r = flaky(f, 3, 2, 5, true);
  assert_int_equal(rt_get_i64(r), 3);
  assert_int_equal(atomic_load(&rt_frees), 2);
  rt_release(r);
  r = flaky(f, 0, 2, 1, true);
  assert_final_error(r, RAY_ETASK, 2, "attempt 2 failed");
  assert_int_equal(atomic_load(&rt_frees), 2);
  rt_release(r);
  t_end();
}

/* A task whose dependency failed is not retried: it never runs. */
static void test_no_retry_on_dep_failure(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("flaky", fn_flaky, NULL, rt_t_i64, 1);
  ray_function_t root = rt_register("root", fn_root_fail, NULL, rt_t_i64, 1);
  ray_ref_t bad = rt_submit(root, NULL, 0, NULL);
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.max_retries = 5;
  o.retry_on_error = true;
  ray_arg_t a[2] = {ray_arg_ref(bad), ray_arg_i64(0)};
  ray_ref_t r = rt_submit(f, a, 2, &o);
  rt_assert_fails(r, RAY_EDEPFAILED);
  rt_release(bad);
  rt_release(r);
  t_end();
  assert_int_equal(atomic_load(&g_calls), 0);
}

/* ---- cancellation --------------------------------------------------------------------- */

typedef struct {
  ray_ref_t ref;
  atomic_int rc;
} getter_t;

static void getter(void *p) {
  getter_t *g = p;
  ray_buf_t b;
  atomic_store(&g->rc, ray_get(g->ref, RAY_TIMEOUT_INFINITE, &b));
  ray_buf_release(&b);
}

static void test_cancel_waiting_on_dependency(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  ray_arg_t a[2] = {ray_arg_ref(p), ray_arg_i64(1)};
  ray_ref_t t = rt_submit(sum, a, 2, NULL);
  ray_arg_t b = ray_arg_ref(t);
  ray_ref_t dep = rt_submit(sum, &b, 1, NULL);
  /* A host thread waiting on the dependent is woken by the cancellation. */
  getter_t g = {dep, 1};
  uv_thread_t th;
  assert_int_equal(uv_thread_create(&th, getter, &g), 0);
  assert_rc(ray_cancel(t), 0);
  assert_int_equal(uv_thread_join(&th), 0);
  assert_rc(atomic_load(&g.rc), RAY_EDEPFAILED);
  /* Failed at once, without running. */
  ray_buf_t v;
  assert_rc(ray_get(t, 0, &v), RAY_ECANCELED);
  ray_error_t *e = rt_get_error(t);
  assert_int_equal(ray_error_code(e), RAY_ECANCELED);
  assert_string_equal(ray_error_origin(e), "sum");
  assert_true(ray_error_task_id(e) != 0);
  ray_error_free(e);
  /* Its dependent fails, caused by the cancellation. */
  rt_assert_fails(dep, RAY_EDEPFAILED);
  e = rt_get_error(dep);
  assert_int_equal(ray_error_code(e), RAY_EDEPFAILED);
  assert_non_null(ray_error_cause(e));
  assert_int_equal(ray_error_code(ray_error_cause(e)), RAY_ECANCELED);
  ray_error_free(e);
  /* Cancelling again, or the finished dependent: nothing to do. */
  assert_rc(ray_cancel(t), RAY_EFINISHED);
  assert_rc(ray_cancel(dep), RAY_EFINISHED);
  /* The dependency completing later does not run it. */
  char enc[16];
  size_t n = rt_encode_i64(5, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p, enc, n), 0);
  assert_rc(ray_get(t, 0, &v), RAY_ECANCELED);
  ray_arg_t c[2] = {ray_arg_ref(p), ray_arg_i64(1)};
  ray_ref_t later = rt_submit(sum, c, 2, NULL); /* the dependency itself is fine */
  assert_int_equal(rt_get_i64(later), 6);
  rt_release(later);
  rt_release(p);
  rt_release(t);
  rt_release(dep);
  t_end();
  assert_int_equal(atomic_load(&g_calls), 1); /* only `later` ran */
}

/* Queued behind a running task on the only worker. */
static void test_cancel_queued(void **state) {
  (void)state;
  t_begin(1);
  ray_function_t block = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_ref_t b = rt_submit(block, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  ray_arg_t a[2] = {ray_arg_i64(1), ray_arg_i64(2)};
  ray_ref_t q = rt_submit(sum, a, 2, NULL);
  ray_ref_t q2 = rt_submit(sum, a, 2, NULL);
  assert_rc(ray_cancel(q), 0);
  ray_buf_t v;
  assert_rc(ray_get(q, 0, &v), RAY_ECANCELED);
  rt_latch_signal(&g_go);
  assert_int_equal(rt_get_i64(b), 1);
  assert_int_equal(rt_get_i64(q2), 3);
  assert_rc(ray_get(q, 0, &v), RAY_ECANCELED);
  rt_release(b);
  rt_release(q);
  rt_release(q2);
  t_end();
  assert_int_equal(atomic_load(&g_calls), 1);
}

/* Any result ref names the task: all results fail. */
static void test_cancel_multi_return(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("typed", fn_typed, NULL, k_typed, 5);
  ray_ref_t p = pending_bytes();
  ray_arg_t a = ray_arg_ref(p);
  ray_ref_t out[5];
  assert_rc(ray_task_submit(f, &a, 1, NULL, out), 0);
  assert_rc(ray_cancel(out[3]), 0);
  for (int i = 0; i < 5; i++) {
    ray_buf_t v;
    assert_rc(ray_get(out[i], 0, &v), RAY_ECANCELED);
    assert_rc(ray_cancel(out[i]), RAY_EFINISHED);
    rt_release(out[i]);
  }
  assert_rc(ray__object_fulfil(p, "x", 1), 0);
  rt_release(p);
  rt_latch_signal(&g_go); /* so a wrongly started task cannot hang the shutdown */
  t_end();
  assert_int_equal(atomic_load(&g_calls), 0); /* never ran */
}

/* Running: cooperative. The task loops until it sees the cancellation. */
static int fn_spin(ray_task_ctx_t *ctx, void *arg) {
  int64_t fail = (int64_t)(intptr_t)arg;
  atomic_fetch_add(&g_calls, 1);
  TC(!ray_task_is_cancelled(ctx), 0);
  rt_latch_signal(&g_started);
  while (!ray_task_is_cancelled(ctx)) sched_yield();
  rt_latch_signal(&g_started); /* saw it */
  rt_latch_wait(&g_go, 1);
  TC(ray_task_is_cancelled(ctx), 1);
  if (fail) return ray_fail(ctx, RAY_ETASK, "stopped");
  return ray_return_i64(ctx, 0, 99);
}

static void test_cancel_running(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("spin", fn_spin, (void *)(intptr_t)0, rt_t_i64, 1);
  ray_ref_t r = rt_submit(f, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  assert_rc(ray_cancel(r), 0);
  rt_latch_wait(&g_started, 2);
  /* Still running (its result pending): cancelling again is fine. */
  assert_rc(ray_cancel(r), 0);
  ray_buf_t v;
  assert_rc(ray_get(r, 0, &v), RAY_ETIMEDOUT);
  rt_latch_signal(&g_go);
  /* Its results are whatever it produces. */
  assert_int_equal(rt_get_i64(r), 99);
  assert_rc(ray_cancel(r), RAY_EFINISHED);
  rt_release(r);
  assert_rc(ray_cancel(r), RAY_ENOTFOUND);
  t_end();
}

/* A cancelled running task that fails is not retried. */
static void test_cancel_running_no_retry(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("spin", fn_spin, (void *)(intptr_t)1, rt_t_i64, 1);
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.max_retries = 3;
  o.retry_on_error = true;
  ray_ref_t r = rt_submit(f, NULL, 0, &o);
  rt_latch_wait(&g_started, 1);
  assert_rc(ray_cancel(r), 0);
  rt_latch_signal(&g_go);
  rt_assert_fails(r, RAY_ETASK);
  ray_error_t *e = rt_get_error(r);
  assert_string_equal(ray_error_message(e), "stopped");
  assert_int_equal(ray_error_attempts(e), 1);
  ray_error_free(e);
  rt_release(r);
  t_end();
  assert_int_equal(atomic_load(&g_calls), 1);
}

static void test_cancel_errors(void **state) {
  (void)state;
  rt_no_runtime();
  ray_ref_t some = {12345, RAY_TYPE_I64};
  assert_rc(ray_cancel(some), RAY_ENOTINIT);
  t_begin(2);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_arg_t a = ray_arg_i64(4);
  ray_ref_t done = rt_submit(sum, &a, 1, NULL);
  assert_int_equal(rt_get_i64(done), 4);
  assert_rc(ray_cancel(done), RAY_EFINISHED);
  ray_ref_t put;
  assert_rc(ray_put_i64(1, &put), 0);
  assert_rc(ray_cancel(put), RAY_EFINISHED);
  ray_ref_t pend = pending_bytes(); /* pending, but no task produces it */
  assert_rc(ray_cancel(pend), RAY_EFINISHED);
  ray_buf_t v;
  assert_rc(ray_get(pend, 0, &v), RAY_ETIMEDOUT); /* untouched */
  ray_ref_t failed = pending_bytes();
  ray_error_t *up = upstream_error();
  assert_rc(ray__object_fail(failed, up), 0);
  ray_error_free(up);
  assert_rc(ray_cancel(failed), RAY_EFINISHED);
  assert_rc(ray_cancel(RAY_REF_NIL), RAY_ENOTFOUND);
  ray_ref_t unknown = {UINT64_MAX - 3, RAY_TYPE_I64};
  assert_rc(ray_cancel(unknown), RAY_ENOTFOUND);
  rt_release(done);
  assert_rc(ray_cancel(done), RAY_ENOTFOUND);
  /* A failed task's result. */
  ray_function_t root = rt_register("root", fn_root_fail, NULL, rt_t_i64, 1);
  ray_ref_t rf = rt_submit(root, NULL, 0, NULL);
  rt_assert_fails(rf, RAY_ETASK);
  assert_rc(ray_cancel(rf), RAY_EFINISHED);
  rt_release(rf);
  rt_release(put);
  rt_release(pend);
  rt_release(failed);
  t_end();
}

/* ---- bad input at submission ------------------------------------------------------------ */

static void assert_untouched(const ray_ref_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    assert_true(out[i].id == 0x5A5A5A5A5A5A5A5AULL);
    assert_true(out[i].type == 0x5A5A5A5Au);
  }
}

static void test_submit_invalid(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  const uint32_t two[] = {RAY_TYPE_I64, RAY_TYPE_I64};
  ray_function_t f2 = rt_register("two", fn_sum, NULL, two, 2);
  ray_ref_t out[2];
  ray_arg_t args[RAY_MAX_ARGS + 1];
  for (int i = 0; i <= RAY_MAX_ARGS; i++) args[i] = ray_arg_i64(i);
  ray_stats_t s0 = rt_stats();

  rt_garbage(out, sizeof out);
  assert_rc(ray_task_submit(sum, args, 1, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_task_submit(sum, NULL, 1, NULL, out), RAY_EINVAL);
  assert_rc(ray_task_submit(sum, args, RAY_MAX_ARGS + 1, NULL, out), RAY_EINVAL);
  assert_rc(ray_task_submit(sum, args, SIZE_MAX, NULL, out), RAY_EINVAL);
  assert_untouched(out, 2);

  /* Malformed arguments. */
  ray_arg_t bad[9];
  for (int i = 0; i < 9; i++) bad[i] = ray_arg_i64(1);
  bad[0].kind = 0;
  bad[1].kind = 7;
  bad[2].type = 0;             /* a value of no type */
  bad[3].type = RAY_TYPE_USER; /* no helper builds user-typed values */
  bad[4] = ray_arg_str(NULL);
  bad[5] = ray_arg_msgpack(NULL);
  bad[6] = ray_arg_bytes(NULL, 5);
  bad[7] = ray_arg_i64(1);
  bad[7].type = 99;
  bad[8] = ray_arg_i64(1);
  bad[8].kind = 0x100;
  for (int i = 0; i < 9; i++) {
    ray_arg_t a[3] = {ray_arg_i64(1), bad[i], ray_arg_i64(2)};
    int rc = ray_task_submit(sum, a, 3, NULL, out);
    if (rc != RAY_EINVAL) {
      print_error("malformed argument %d: %d (%s)\n", i, rc, ray_err_name(rc));
      fail();
    }
  }
  assert_untouched(out, 2);

  /* The num_returns check. */
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.num_returns = 1;
  assert_rc(ray_task_submit(f2, NULL, 0, &o, out), RAY_EINVAL);
  o.num_returns = 3;
  assert_rc(ray_task_submit(f2, NULL, 0, &o, out), RAY_EINVAL);
  assert_untouched(out, 2);

  /* Unknown functions. */
  ray_function_t none = {0};
  assert_rc(ray_task_submit(none, NULL, 0, NULL, out), RAY_ENOTFOUND);
  none.id = sum.id + 1000;
  assert_rc(ray_task_submit(none, NULL, 0, NULL, out), RAY_ENOTFOUND);

  /* Nil, unknown and released ref arguments. */
  ray_arg_t nil = ray_arg_ref(RAY_REF_NIL);
  assert_rc(ray_task_submit(sum, &nil, 1, NULL, out), RAY_ENOTFOUND);
  ray_ref_t unknown = {UINT64_MAX - 1, RAY_TYPE_I64};
  ray_arg_t unk = ray_arg_ref(unknown);
  assert_rc(ray_task_submit(sum, &unk, 1, NULL, out), RAY_ENOTFOUND);
  assert_untouched(out, 2);

  /* Nothing is left behind (a failed ref check may have made and freed
   * the result entries on the way: objects_created is not compared). */
  ray_stats_t s1 = rt_stats();
  assert_int_equal(s1.objects, s0.objects);
  assert_int_equal(s1.bytes_in_memory, s0.bytes_in_memory);
  t_end();
}

/* A released ref among good arguments: RAY_ENOTFOUND, and the good ones
 * (a ref and a value stored as an object) are left exactly as they were. */
static void test_submit_released_ref(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  const uint32_t three[] = {RAY_TYPE_I64, RAY_TYPE_STR, RAY_TYPE_BYTES};
  ray_function_t f3 = rt_register("three", fn_sum, NULL, three, 3);
  ray_ref_t good, gone, pend;
  assert_rc(ray_put_i64(5, &good), 0);
  assert_rc(ray_put_i64(6, &gone), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &pend), 0);
  rt_release(gone);
  unsigned char big[4000];
  rt_fill(big, sizeof big, 8);
  ray_stats_t s0 = rt_stats();
  assert_int_equal(s0.objects, 2);
  ray_arg_t a[5] = {ray_arg_ref(good), ray_arg_bytes(big, sizeof big), ray_arg_ref(pend),
                    ray_arg_i64(1), ray_arg_ref(gone)};
  ray_ref_t out[3];
  rt_garbage(out, sizeof out);
  assert_rc(ray_task_submit(sum, a, 5, NULL, out), RAY_ENOTFOUND);
  assert_rc(ray_task_submit(f3, a, 5, NULL, out), RAY_ENOTFOUND);
  /* First, last, alone. */
  ray_arg_t first[2] = {ray_arg_ref(gone), ray_arg_ref(good)};
  assert_rc(ray_task_submit(sum, first, 2, NULL, out), RAY_ENOTFOUND);
  assert_rc(ray_task_submit(sum, &a[4], 1, NULL, out), RAY_ENOTFOUND);
  assert_untouched(out, 3);
  ray_stats_t s1 = rt_stats();
  assert_int_equal(s1.objects, s0.objects);
  assert_int_equal(s1.bytes_in_memory, s0.bytes_in_memory);
  /* The good refs hold exactly the caller's reference: one release frees each. */
  rt_release(good);
  rt_release(pend);
  assert_int_equal(rt_stats().objects, 0);
  ray_buf_t b;
  assert_rc(ray_get(good, 0, &b), RAY_ENOTFOUND);
  assert_rc(ray_get(pend, 0, &b), RAY_ENOTFOUND);
  t_end();
}

/* ---- more edges ------------------------------------------------------------------------ */

/* Retried attempts read the same pinned ref arguments. */
static const void *_Atomic g_view;

static int fn_flaky_ref(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  const void *p = NULL;
  size_t n = 0;
  TC(ray_ctx_arg_bytes(ctx, 0, &p, &n) == 0 && p == atomic_load(&g_view) && n == 2000 &&
         rt_check(p, n, 44),
     (int)ray_ctx_attempt(ctx));
  if (ray_ctx_attempt(ctx) < 3) return ray_fail(ctx, RAY_ETASK, "again");
  return ray_return_i64(ctx, 0, (int64_t)ray_ctx_attempt(ctx));
}

static void test_retry_ref_args(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("flaky-ref", fn_flaky_ref, NULL, rt_t_i64, 1);
  unsigned char data[2000];
  rt_fill(data, sizeof data, 44);
  ray_ref_t src;
  assert_rc(ray_put(data, sizeof data, &src), 0);
  ray_buf_t v;
  assert_rc(ray_get(src, 0, &v), 0);
  atomic_store(&g_view, v.data);
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.max_retries = 4;
  o.retry_on_error = true;
  ray_arg_t a = ray_arg_ref(src);
  ray_ref_t r = rt_submit(f, &a, 1, &o);
  rt_release(src);
  assert_int_equal(rt_get_i64(r), 3);
  assert_int_equal(atomic_load(&g_calls), 3);
  rt_release(r);
  ray_buf_release(&v);
  t_end();
}

/* The same ref many times over: one dependency per argument. */
static void test_same_ref_many_args(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  ray_arg_t args[RAY_MAX_ARGS];
  for (int i = 0; i < RAY_MAX_ARGS; i++) args[i] = ray_arg_ref(p);
  ray_ref_t r1 = rt_submit(sum, args, RAY_MAX_ARGS, NULL);
  ray_ref_t r2 = rt_submit(sum, args, 2, NULL);
  rt_release(p); /* the tasks hold RAY_MAX_ARGS + 2 references */
  char enc[16];
  size_t n = rt_encode_i64(3, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p, enc, n), 0);
  assert_int_equal(rt_get_i64(r1), 3 * RAY_MAX_ARGS);
  assert_int_equal(rt_get_i64(r2), 6);
  /* A ready object many times over. */
  ray_ref_t q;
  assert_rc(ray_put_i64(-1, &q), 0);
  for (int i = 0; i < RAY_MAX_ARGS; i++) args[i] = ray_arg_ref(q);
  ray_ref_t r3 = rt_submit(sum, args, RAY_MAX_ARGS, NULL);
  assert_int_equal(rt_get_i64(r3), -RAY_MAX_ARGS);
  rt_release(q);
  rt_release(r1);
  rt_release(r2);
  rt_release(r3);
  t_end();
}

/* Results released before their tasks ran: the tasks still run, and what
 * they hand over is freed once. */
static int fn_owned_one(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  void *p = owned(100, 7);
  TC(p != NULL, 0);
  atomic_fetch_add(&g_calls, 1);
  int rc = ray_return_owned(ctx, 0, p, 100, rt_count_free);
  TC(rc == 0, rc);
  if (rc != 0) rt_count_free(p);
  return rc;
}

static void test_fire_and_forget(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t f = rt_register("owned-one", fn_owned_one, NULL, rt_t_bytes, 1);
  const int n = rt_iters(2000, 200);
  for (int i = 0; i < n; i++) rt_release(rt_submit(f, NULL, 0, NULL));
  assert_rc(ray__quiesce(60000), 0); /* every run finished */
  t_end();
  assert_int_equal(atomic_load(&g_calls), n);
  assert_int_equal(atomic_load(&rt_frees), n);
}

/* Submitting from an on_ready callback (the loop thread). */
typedef struct {
  ray_function_t sum;
  atomic_uint_fast64_t id;
  atomic_int rc;
  rt_latch_t done;
} cb_submit_t;

static void cb_submit(ray_ref_t ref, int status, void *arg) {
  cb_submit_t *c = arg;
  ray_arg_t a[2] = {ray_arg_ref(ref), ray_arg_i64(status == 0 ? 1 : 1000)};
  ray_ref_t r = RAY_REF_NIL;
  atomic_store(&c->rc, ray_task_submit(c->sum, a, 2, NULL, &r));
  atomic_store(&c->id, r.id);
  rt_latch_signal(&c->done);
}

static void test_submit_from_callback(void **state) {
  (void)state;
  t_begin(2);
  static cb_submit_t c;
  c.sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  atomic_init(&c.id, 0);
  atomic_init(&c.rc, 1);
  rt_latch_init(&c.done);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  assert_rc(ray_ref_on_ready(p, cb_submit, &c), 0);
  char enc[16];
  size_t n = rt_encode_i64(41, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p, enc, n), 0);
  rt_release(p);
  rt_latch_wait(&c.done, 1);
  assert_rc(atomic_load(&c.rc), 0);
  ray_ref_t r = {atomic_load(&c.id), RAY_TYPE_I64};
  assert_int_equal(rt_get_i64(r), 42);
  rt_release(r);
  t_end();
  rt_latch_destroy(&c.done);
}

/* Cancelling while tasks start, run and finish, and while their
 * dependencies complete: every result is either the function's value (it
 * ran) or RAY_ECANCELED (it never ran), and every cancel returns 0 or
 * RAY_EFINISHED. */
typedef struct {
  ray_ref_t *refs;
  ray_ref_t *deps;
  int n;
  rt_errs_t *errs;
} race_t;

static void canceller(void *p) {
  race_t *r = p;
  for (int i = r->n - 1; i >= 0; i--) {
    int rc = ray_cancel(r->refs[i]);
    RT_CHECK(r->errs, rc == 0 || rc == RAY_EFINISHED, rc);
  }
}

static void fulfiller(void *p) {
  race_t *r = p;
  char enc[16];
  for (int i = 0; i < r->n; i++) {
    if (r->deps[i].id == 0) continue;
    size_t n = rt_encode_i64(i, enc, sizeof enc);
    int rc = ray__object_fulfil(r->deps[i], enc, n);
    RT_CHECK(r->errs, rc == 0, rc);
  }
}

static void test_cancel_race(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  const int n = rt_iters(3000, 300);
  ray_ref_t *refs = calloc((size_t)n, sizeof *refs);
  ray_ref_t *deps = calloc((size_t)n, sizeof *deps);
  assert_non_null(refs);
  assert_non_null(deps);
  for (int i = 0; i < n; i++) {
    if (i % 2) { /* half wait on a dependency completed during the race */
      assert_rc(ray__object_create_pending(RAY_TYPE_I64, &deps[i]), 0);
      ray_arg_t a = ray_arg_ref(deps[i]);
      refs[i] = rt_submit(sum, &a, 1, NULL);
    } else {
      ray_arg_t a = ray_arg_i64(i);
      refs[i] = rt_submit(sum, &a, 1, NULL);
    }
  }
  rt_errs_t errs;
  rt_errs_init(&errs);
  race_t r = {refs, deps, n, &errs};
  uv_thread_t tc, tf;
  assert_int_equal(uv_thread_create(&tc, canceller, &r), 0);
  assert_int_equal(uv_thread_create(&tf, fulfiller, &r), 0);
  int values = 0, cancelled = 0;
  for (int i = 0; i < n; i++) {
    int64_t v = -1;
    int rc = ray_get_i64(refs[i], RAY_TIMEOUT_INFINITE, &v);
    if (rc == 0) {
      assert_int_equal(v, i);
      values++;
    } else {
      assert_rc(rc, RAY_ECANCELED);
      cancelled++;
    }
  }
  assert_int_equal(uv_thread_join(&tc), 0);
  assert_int_equal(uv_thread_join(&tf), 0);
  rt_errs_assert(&errs);
  for (int i = 0; i < n; i++) {
    rt_release(refs[i]);
    if (deps[i].id != 0) rt_release(deps[i]);
  }
  t_end();
  assert_int_equal(values + cancelled, n);
  assert_int_equal(atomic_load(&g_calls), values); /* ran exactly when not cancelled */
  print_message("[  RACE    ] %d ran, %d cancelled\n", values, cancelled);
  free(refs);
  free(deps);
}

/* The task counters of ray_stats. 1 worker, so the order is known: a task
 * has finished once the worker has gone on to the next one. */
static void test_task_stats(void **state) {
  (void)state;
  t_begin(1);
  ray_function_t block = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_function_t root = rt_register("root", fn_root_fail, NULL, rt_t_i64, 1);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.tasks_submitted, 0);
  assert_int_equal(s.tasks_finished, 0);
  assert_int_equal(s.tasks_failed, 0);
  ray_ref_t b = rt_submit(block, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  ray_ref_t ok[3], bad[2];
  for (int i = 0; i < 3; i++) {
    ray_arg_t a = ray_arg_i64(i);
    ok[i] = rt_submit(sum, &a, 1, NULL);
  }
  for (int i = 0; i < 2; i++) bad[i] = rt_submit(root, NULL, 0, NULL);
  ray_arg_t d = ray_arg_ref(bad[0]);
  ray_ref_t dep = rt_submit(sum, &d, 1, NULL);
  ray_ref_t c = rt_submit(sum, NULL, 0, NULL);
  assert_rc(ray_cancel(c), 0);
  /* Failed submissions are not counted. */
  ray_ref_t none;
  assert_rc(ray_task_submit(sum, NULL, RAY_MAX_ARGS + 1, NULL, &none), RAY_EINVAL);
  s = rt_stats();
  assert_int_equal(s.tasks_submitted, 8);
  assert_int_equal(s.tasks_finished, 0);
  rt_latch_signal(&g_go);
  assert_int_equal(rt_get_i64(b), 1);
  for (int i = 0; i < 3; i++) assert_int_equal(rt_get_i64(ok[i]), i);
  for (int i = 0; i < 2; i++) rt_assert_fails(bad[i], RAY_ETASK);
  rt_assert_fails(dep, RAY_EDEPFAILED);
  rt_assert_fails(c, RAY_ECANCELED);
  ray_ref_t barrier1 = rt_submit(sum, NULL, 0, NULL);
  assert_int_equal(rt_get_i64(barrier1), 0);
  ray_ref_t barrier2 = rt_submit(sum, NULL, 0, NULL);
  assert_int_equal(rt_get_i64(barrier2), 0);
  s = rt_stats();
  assert_int_equal(s.tasks_submitted, 10);
  assert_true(s.tasks_finished == 9 || s.tasks_finished == 10);
  assert_int_equal(s.tasks_failed, 4); /* 2 failed, 1 dependent, 1 cancelled */
  rt_release(b);
  for (int i = 0; i < 3; i++) rt_release(ok[i]);
  for (int i = 0; i < 2; i++) rt_release(bad[i]);
  rt_release(dep);
  rt_release(c);
  rt_release(barrier1);
  rt_release(barrier2);
  t_end();
}

/* ---- several host threads at once ----------------------------------------------------- */

typedef struct {
  int tid;
  int iters;
  ray_function_t sum;
  atomic_int *registered;
  rt_errs_t *errs;
} host_t;

static void host_thread(void *p) {
  host_t *h = p;
  rt_errs_t *errs = h->errs;
  /* Everyone registers the same name: one wins. */
  ray_function_t mine = {0};
  int rc = ray_function_register("race", fn_sum, NULL, rt_t_i64, 1, &mine);
  if (rc == 0)
    atomic_fetch_add(h->registered, 1);
  else
    RT_CHECK(errs, rc == RAY_ENAMEEXISTS, rc);
  const int64_t base = (int64_t)h->tid * 1000000;
  for (int i = 0; i < h->iters; i++) {
    ray_arg_t a[2] = {ray_arg_i64(i), ray_arg_i64(base)};
    ray_ref_t r = RAY_REF_NIL, r2 = RAY_REF_NIL;
    rc = ray_task_submit(h->sum, a, 2, NULL, &r);
    RT_CHECK(errs, rc == 0, rc);
    if (rc != 0) return;
    ray_arg_t b[2] = {ray_arg_ref(r), ray_arg_i64(1)};
    rc = ray_task_submit(h->sum, b, 2, NULL, &r2);
    RT_CHECK(errs, rc == 0, rc);
    if (rc != 0) return;
    int64_t v = 0;
    rc = ray_get_i64(r2, RAY_TIMEOUT_INFINITE, &v);
    RT_CHECK(errs, rc == 0 && v == base + i + 1, rc ? rc : (int)(v - base));
    rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
    RT_CHECK(errs, rc == 0 && v == base + i, rc ? rc : (int)(v - base));
    RT_CHECK(errs, ray_ref_release(r) == 0, 0);
    RT_CHECK(errs, ray_ref_release(r2) == 0, 0);
    if (i % 16 == 0) { /* a batch, waited for and fetched at once */
      enum { NB = 8 };
      ray_ref_t rs[NB];
      for (int k = 0; k < NB; k++) {
        ray_arg_t c = ray_arg_i64(base + k);
        rc = ray_task_submit(h->sum, &c, 1, NULL, &rs[k]);
        RT_CHECK(errs, rc == 0, rc);
        if (rc != 0) return;
      }
      bool ready[NB];
      rc = ray_wait(rs, NB, NB, RAY_TIMEOUT_INFINITE, ready);
      RT_CHECK(errs, rc == NB, rc);
      ray_buf_t bufs[NB];
      rc = ray_get_batch(rs, NB, RAY_TIMEOUT_INFINITE, bufs);
      RT_CHECK(errs, rc == 0, rc);
      if (rc == 0)
        for (int k = 0; k < NB; k++) ray_buf_release(&bufs[k]);
      for (int k = 0; k < NB; k++) RT_CHECK(errs, ray_ref_release(rs[k]) == 0, k);
    }
  }
}

static void test_host_threads(void **state) {
  (void)state;
  t_begin(2);
  enum { NT = 4 };
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  atomic_int registered;
  atomic_init(&registered, 0);
  rt_errs_t errs;
  rt_errs_init(&errs);
  host_t hs[NT];
  uv_thread_t th[NT];
  for (int i = 0; i < NT; i++) {
    hs[i] = (host_t){i + 1, rt_iters(400, 30), sum, &registered, &errs};
    assert_int_equal(uv_thread_create(&th[i], host_thread, &hs[i]), 0);
  }
  for (int i = 0; i < NT; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
  rt_errs_assert(&errs);
  assert_int_equal(atomic_load(&registered), 1);
  ray_function_t f = {0};
  assert_rc(ray_function_lookup("race", &f), 0);
  ray_stats_t st = rt_stats();
  assert_int_equal(st.objects_created, st.objects_freed + st.objects);
  t_end();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_register_before_init),
    cmocka_unit_test(test_register_invalid),
    cmocka_unit_test(test_register_lookup_info),
    cmocka_unit_test(test_register_many),
    cmocka_unit_test(test_register_stale_after_reinit),
    cmocka_unit_test(test_value_args),
    cmocka_unit_test(test_value_args_all_stored),
    cmocka_unit_test(test_max_args),
    cmocka_unit_test(test_ref_args_zero_copy),
    cmocka_unit_test(test_ref_arg_pending),
    cmocka_unit_test(test_arg_decode_errors),
    cmocka_unit_test(test_results_typed_at_submission),
    cmocka_unit_test(test_multiple_returns),
    cmocka_unit_test(test_return_setters),
    cmocka_unit_test(test_return_owned),
    cmocka_unit_test(test_return_ref),
    cmocka_unit_test(test_return_ref_of_argument),
    cmocka_unit_test(test_cancel_alias_after_task_finished),
    cmocka_unit_test(test_unset_slot),
    cmocka_unit_test(test_failures),
    cmocka_unit_test(test_display_name),
    cmocka_unit_test(test_dep_failure_chain_depth_50),
    cmocka_unit_test(test_dep_failure_dag_depth_50),
    cmocka_unit_test(test_retries),
    cmocka_unit_test(test_no_retry_on_dep_failure),
    cmocka_unit_test(test_cancel_waiting_on_dependency),
    cmocka_unit_test(test_cancel_queued),
    cmocka_unit_test(test_cancel_multi_return),
    cmocka_unit_test(test_cancel_running),
    cmocka_unit_test(test_cancel_running_no_retry),
    cmocka_unit_test(test_cancel_errors),
    cmocka_unit_test(test_submit_invalid),
    cmocka_unit_test(test_submit_released_ref),
    cmocka_unit_test(test_retry_ref_args),
    cmocka_unit_test(test_same_ref_many_args),
    cmocka_unit_test(test_fire_and_forget),
    cmocka_unit_test(test_submit_from_callback),
    cmocka_unit_test(test_cancel_race),
    cmocka_unit_test(test_task_stats),
    cmocka_unit_test(test_host_threads),
};

RT_MAIN(tests)
