/* test_tasks.c - remote functions through the public API: registration and
 * lookup, bad input at submit, the remaining edges (tasks submitting from
 * on_ready callbacks, owned returns that fail, task statistics...), and
 * several host threads submitting at once.
 *
 * The other task programs: arguments in test_task_args.c, results and
 * failures in test_task_results.c, retries and cancellation in
 * test_retries_cancel.c; nested tasks and shutdown with tasks in flight in
 * test_nested.c; the out-of-memory paths of ray_task_submit in test_oom.c.
 *
 * Helpers and shared task functions are in tasks_util.h; functions run on
 * worker threads and record failed checks into g_errs (TC), asserted after
 * each runtime is shut down. */
#define _POSIX_C_SOURCE 200809L
#include "tasks_util.h"

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
  int rc = ray_return_owned(ctx, 0, p, 100, rt_count_free, NULL);
  TC(rc == 0, rc);
  if (rc != 0) rt_count_free(p, NULL);
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
  assert_rc(ray__quiesce(60000), 0); /* every task has finished */
  s = rt_stats();
  assert_int_equal(s.tasks_submitted, 8);
  assert_int_equal(s.tasks_finished, 8);
  assert_int_equal(s.tasks_failed, 4); /* 2 failed, 1 dependent, 1 cancelled */
  rt_release(b);
  for (int i = 0; i < 3; i++) rt_release(ok[i]);
  for (int i = 0; i < 2; i++) rt_release(bad[i]);
  rt_release(dep);
  rt_release(c);
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
