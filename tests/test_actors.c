/* test_actors.c - actors through the public API: options, class validation
 * and method lookup, creation and calls before init, plain calls, results
 * typed at submission, per-submitter order with several host threads (also
 * behind a ref argument that is not ready yet), the max_concurrency limit,
 * fairness between actors, calls queued behind the constructor, and
 * constructor failure.
 *
 * The other actor programs: kill, handles and restarts in
 * test_actor_lifetime.c; actors with tasks and the store, the context
 * accessors, bad input and shutdown in test_actor_interop.c.
 *
 * The classes, their state and the helpers are in actors_util.h; methods
 * run on worker threads and record failed checks into g_errs (AC), asserted
 * after each runtime is shut down. */
#define _POSIX_C_SOURCE 200809L
#include "actors_util.h"

/* ---- class validation and method lookup ----------------------------------- */

static void test_opts_init(void **state) {
  (void)state;
  ray_actor_opts_init(NULL); /* no-op */
  ray_actor_opts_t o;
  rt_garbage(&o, sizeof o);
  ray_actor_opts_init(&o);
  assert_null(o.name);
  assert_false(o.get_if_exists);
  assert_int_equal(o.max_restarts, 0);
  assert_int_equal(o.max_task_retries, 0);
  assert_int_equal(o.max_concurrency, 1);
  assert_false(o.detached);
  assert_int_equal(o.node, RAY_NODE_ANY);
}

/* In one process `node` is this rank (0) or RAY_NODE_ANY; anything else is
 * refused. A static class descriptor is accepted (and NULL ignored). */
static void test_node_in_one_process(void **state) {
  (void)state;
  static ray_static_class_t s_counter = {&k_counter, NULL};
  ray_static_class_add(NULL);
  ray_static_class_add(&s_counter);
  ray_static_class_add(&s_counter); /* twice: a no-op */
  a_begin(1);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  ray_actor_t a = {0};
  o.node = 1;
  assert_rc(ray_actor_create(&k_counter, NULL, 0, &o, &a), RAY_EINVAL);
  o.node = RAY_NODE_ANY - 1;
  assert_rc(ray_actor_create(&k_counter, NULL, 0, &o, &a), RAY_EINVAL);
  assert_int_equal(a.id, 0);
  o.node = 0;
  a = mk(&k_counter, NULL, 0, &o);
  assert_int_equal(take_i64(add(a, 2)), 2);
  assert_rc(ray_actor_release(a), 0);
  a_end();
}

static void test_method_lookup(void **state) {
  (void)state;
  rt_no_runtime(); /* does not need the runtime */
  uint32_t id = 12345;
  assert_rc(ray_actor_method(&k_counter, "add", &id), 0);
  assert_int_equal(id, 0);
  assert_rc(ray_actor_method(&k_counter, "ticks", &id), 0);
  assert_int_equal(id, 12);
  assert_rc(ray_actor_method(&k_counter, "nope", &id), RAY_ENOTFOUND);
  assert_rc(ray_actor_method(&k_counter, "", &id), RAY_ENOTFOUND);
  assert_rc(ray_actor_method(&k_counter, "ADD", &id), RAY_ENOTFOUND);
  assert_rc(ray_actor_method(NULL, "add", &id), RAY_EINVAL);
  assert_rc(ray_actor_method(&k_counter, NULL, &id), RAY_EINVAL);
  assert_rc(ray_actor_method(&k_counter, "add", NULL), RAY_EINVAL);
  const ray_actor_class_t empty = {"Empty", NULL, NULL, NULL, 0};
  assert_rc(ray_actor_method(&empty, "add", &id), RAY_ENOTFOUND);
}

static void test_class_invalid(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = {777};
  const uint32_t zero_second[] = {RAY_TYPE_I64, 0};
  const uint32_t many[RAY_MAX_RETURNS + 1] = {
      RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64,
      RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64,
      RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64};
  ray_method_def_t m[2] = {{"get", m_get, rt_t_i64, 1}, {"add", m_add, rt_t_i64, 1}};
  ray_actor_class_t c = {"Bad", counter_ctor, counter_dtor, m, 2};

  assert_rc(ray_actor_create(NULL, NULL, 0, NULL, &a), RAY_EINVAL);
  assert_rc(ray_actor_create(&k_counter, NULL, 0, NULL, NULL), RAY_EINVAL);
  c.name = NULL;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  c.name = "";
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  c.name = "Bad";
  c.methods = NULL; /* num_methods 2 */
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  c.methods = m;
  m[1].name = NULL;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].name = "add";
  m[1].fn = NULL;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].fn = m_add;
  m[1].num_returns = 0;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].num_returns = RAY_MAX_RETURNS + 1;
  m[1].return_types = many;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].num_returns = 2;
  m[1].return_types = zero_second;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].num_returns = 1;
  m[1].return_types = NULL;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].return_types = rt_t_i64;
  /* Bad arguments, as for ray_task_submit. */
  ray_arg_t args[RAY_MAX_ARGS + 1];
  for (size_t i = 0; i < RAY_MAX_ARGS + 1; i++) args[i] = ray_arg_i64((int64_t)i);
  assert_rc(ray_actor_create(&k_counter, NULL, 1, NULL, &a), RAY_EINVAL);
  assert_rc(ray_actor_create(&k_counter, args, RAY_MAX_ARGS + 1, NULL, &a), RAY_EINVAL);
  ray_arg_t bad = ray_arg_str(NULL);
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_EINVAL);
  bad = ray_arg_i64(1);
  bad.kind = 99;
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_EINVAL);
  ray_ref_t unknown = {UINT64_MAX - 99, RAY_TYPE_I64};
  bad = ray_arg_ref(unknown);
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_ENOTFOUND);
  bad = ray_arg_ref(RAY_REF_NIL);
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_ENOTFOUND);
  ray_actor_t nobody = {UINT64_MAX - 7};
  bad = ray_arg_actor(nobody);
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_ENOTFOUND);
  assert_int_equal(a.id, 777); /* untouched by the failures */
  assert_int_equal(atomic_load(&g_ctors), 0);

  /* The same class, fixed, is fine; so are 16 returns, no constructor or
   * destructor, no methods, and max_concurrency 0 (means 1). */
  ray_method_def_t m16 = {"get", m_get, many, RAY_MAX_RETURNS};
  const ray_actor_class_t c16 = {"Sixteen", NULL, NULL, &m16, 1};
  const ray_actor_class_t none = {"NoMethods", NULL, NULL, NULL, 0};
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.max_concurrency = 0;
  ray_actor_t ok = mk(&c, NULL, 0, &o);
  ray_actor_t ok16 = mk(&c16, NULL, 0, NULL);
  ray_actor_t ok0 = mk(&none, NULL, 0, NULL);
  assert_true(ok.id != ok16.id && ok16.id != ok0.id);
  assert_int_equal(take_i64(add(ok, 3)), 3);
  ray_ref_t r16[RAY_MAX_RETURNS];
  assert_rc(ray_actor_call(ok0, "get", NULL, 0, NULL, r16), RAY_ENOTFOUND);
  assert_rc(ray_actor_release(ok), 0);
  assert_rc(ray_actor_release(ok16), 0);
  assert_rc(ray_actor_release(ok0), 0);
  a_end();
}

/* ---- before init, after shutdown ------------------------------------------ */

static void test_not_init(void **state) {
  (void)state;
  rt_no_runtime();
  ray_actor_t a = {1}, out = {0};
  ray_ref_t r;
  ray_arg_t arg = ray_arg_i64(1);
  assert_rc(ray_actor_create(&k_counter, NULL, 0, NULL, &out), RAY_ENOTINIT);
  assert_rc(ray_actor_call(a, "add", &arg, 1, NULL, &r), RAY_ENOTINIT);
  assert_rc(ray_actor_call_id(a, 0, &arg, 1, NULL, &r), RAY_ENOTINIT);
  assert_rc(ray_actor_kill(a, true), RAY_ENOTINIT);
  assert_rc(ray_actor_retain(a), RAY_ENOTINIT);
  assert_rc(ray_actor_release(a), RAY_ENOTINIT);
  assert_rc(ray_get_actor("x", &out), RAY_ENOTINIT);
  assert_rc(ray_actor_exit(NULL), RAY_EINVAL);
  assert_rc(ray_ctx_actor(NULL, &out), RAY_EINVAL);
  assert_rc(ray_ctx_arg_actor(NULL, 0, &out), RAY_EINVAL);

  /* A handle from a runtime that has shut down: ENOTINIT, then unknown to
   * the next runtime (handles are never reused). */
  a_begin(2);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.name = "old";
  ray_actor_t h1 = mk(&k_counter, NULL, 0, &o);
  assert_int_equal(take_i64(add(h1, 2)), 2);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 1); /* destroyed at shutdown */
  assert_rc(ray_actor_call(h1, "add", &arg, 1, NULL, &r), RAY_ENOTINIT);
  assert_rc(ray_actor_kill(h1, true), RAY_ENOTINIT);
  assert_rc(ray_actor_release(h1), RAY_ENOTINIT);
  a_begin(2);
  ray_actor_t h2 = mk_counter(0);
  assert_true(h2.id != h1.id);
  assert_rc(ray_actor_call(h1, "add", &arg, 1, NULL, &r), RAY_ENOTFOUND);
  assert_rc(ray_actor_kill(h1, true), RAY_ENOTFOUND);
  assert_rc(ray_actor_retain(h1), RAY_ENOTFOUND);
  assert_rc(ray_actor_release(h1), RAY_ENOTFOUND);
  assert_rc(ray_get_actor("old", &out), RAY_ENOTFOUND); /* names do not survive either */
  assert_rc(ray_actor_release(h2), 0);
  a_end();
}

/* ---- calls ------------------------------------------------------------------ */

static void test_call_basic(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t c = mk_counter(10);
  assert_int_equal(take_i64(add(c, 5)), 15);
  uint32_t id_add = 0, id_get = 0;
  assert_rc(ray_actor_method(&k_counter, "add", &id_add), 0);
  assert_rc(ray_actor_method(&k_counter, "get", &id_get), 0);
  ray_arg_t arg = ray_arg_i64(-3);
  ray_ref_t r;
  assert_rc(ray_actor_call_id(c, id_add, &arg, 1, NULL, &r), 0);
  assert_int_equal(take_i64(r), 12);
  ray_task_opts_t to;
  ray_task_opts_init(&to);
  to.num_returns = 1; /* a matching check */
  assert_rc(ray_actor_call_id(c, id_get, NULL, 0, &to, &r), 0);
  assert_int_equal(take_i64(r), 12);
  /* A ref argument. */
  ray_ref_t v;
  assert_rc(ray_put_i64(100, &v), 0);
  r = call1(c, "add", ray_arg_ref(v));
  assert_rc(ray_ref_release(v), 0); /* the call holds its own reference */
  assert_int_equal(take_i64(r), 112);
  /* Many calls in a row; each result is its prefix sum. */
  int n = rt_iters(1000, 100);
  ray_ref_t *refs = calloc((size_t)n, sizeof *refs);
  assert_non_null(refs);
  for (int i = 0; i < n; i++) refs[i] = add(c, 1);
  for (int i = 0; i < n; i++) assert_int_equal(take_i64(refs[i]), 113 + i);
  free(refs);
  assert_int_equal(atomic_load(&g_ctors), 1);
  assert_rc(ray_actor_release(c), 0);
  rt_latch_wait(&g_dtor_latch, 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 1);
}

static void test_results_typed_at_submission(void **state) {
  (void)state;
  a_begin(2);
  atomic_store(&g_ctor_block, true);
  ray_actor_t c = mk_counter(42);
  rt_latch_wait(&g_ctor_started, 1);
  ray_ref_t r[6];
  rt_garbage(r, sizeof r);
  assert_rc(ray_actor_call(c, "types", NULL, 0, NULL, r), 0);
  for (int i = 0; i < 6; i++) {
    assert_true(r[i].id != 0);
    assert_int_equal(r[i].type, T_MIXED[i]); /* typed while still pending */
    assert_true(is_pending(r[i]));
  }
  ray_ref_t one[2];
  ray_task_opts_t to;
  ray_task_opts_init(&to);
  to.num_returns = 1; /* wrong: types has 6 */
  assert_rc(ray_actor_call(c, "types", NULL, 0, &to, one), RAY_EINVAL);
  to.num_returns = 6;
  ray_ref_t r2[6];
  assert_rc(ray_actor_call(c, "types", NULL, 0, &to, r2), 0);
  rt_latch_signal(&g_ctor_go);

  int64_t i64 = 0;
  assert_rc(ray_get_i64(r[0], RAY_TIMEOUT_INFINITE, &i64), 0);
  assert_int_equal(i64, 42);
  double f = 0;
  assert_rc(ray_get_f64(r[1], RAY_TIMEOUT_INFINITE, &f), 0);
  assert_true(f == 2.5);
  char *s = NULL;
  size_t len = 0;
  assert_rc(ray_get_str(r[2], RAY_TIMEOUT_INFINITE, &s, &len), 0);
  assert_string_equal(s, "counter");
  assert_int_equal(len, 7);
  ray_free(s);
  ray_buf_t b;
  assert_rc(ray_get(r[3], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_BYTES);
  assert_int_equal(b.size, 3);
  assert_memory_equal(b.data, "raw", 3);
  ray_buf_release(&b);
  ray_msgpack_t mp;
  assert_rc(ray_get_msgpack(r[4], RAY_TIMEOUT_INFINITE, &mp), 0);
  assert_int_equal(mp.obj.type, MSGPACK_OBJECT_BOOLEAN);
  assert_true(mp.obj.via.boolean);
  ray_msgpack_release(&mp);
  assert_rc(ray_get(r[5], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.type, T_USER7);
  assert_memory_equal(b.data, "user", 4);
  ray_buf_release(&b);
  assert_rc(ray_get_i64(r[2], 0, &i64), RAY_ETYPE); /* typed gets check the tag */
  for (int i = 0; i < 6; i++) {
    assert_rc(ray_ref_release(r[i]), 0);
    assert_rc(ray_ref_release(r2[i]), 0);
  }
  assert_rc(ray_actor_release(c), 0);
  a_end();
}

/* ---- order ---------------------------------------------------------------- */

typedef struct {
  ray_actor_t actor;
  int tid;
  int n;
  uint32_t rec_id;
  rt_errs_t *errs;
} order_arg_t;

static void order_thread(void *p) {
  order_arg_t *a = p;
  ray_ref_t last = RAY_REF_NIL;
  for (int seq = 0; seq < a->n; seq++) {
    ray_arg_t args[2] = {ray_arg_i64(a->tid), ray_arg_i64(seq)};
    ray_ref_t tmp = RAY_REF_NIL;
    if (seq % 5 == 3) { /* some sequence numbers travel as ready refs */
      int rc = ray_put_i64(seq, &tmp);
      RT_CHECK(a->errs, rc == 0, rc);
      args[1] = ray_arg_ref(tmp);
    }
    ray_ref_t r = RAY_REF_NIL;
    int rc = (seq % 2) ? ray_actor_call_id(a->actor, a->rec_id, args, 2, NULL, &r)
                       : ray_actor_call(a->actor, "rec", args, 2, NULL, &r);
    RT_CHECK(a->errs, rc == 0, rc);
    if (tmp.id != 0) ray_ref_release(tmp);
    if (rc != 0) continue;
    if (last.id != 0) ray_ref_release(last);
    last = r;
  }
  int64_t v = -1;
  int rc = ray_get_i64(last, RAY_TIMEOUT_INFINITE, &v);
  RT_CHECK(a->errs, rc == 0 && v == a->n - 1, rc);
  ray_ref_release(last);
}

static void test_order_per_submitter(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t act = mk(&k_order, NULL, 0, NULL);
  rt_errs_t errs;
  rt_errs_init(&errs);
  order_arg_t args[ORDER_THREADS];
  uv_thread_t th[ORDER_THREADS];
  int n = rt_iters(3000, 200);
  for (int i = 0; i < ORDER_THREADS; i++) {
    args[i].actor = act;
    args[i].tid = i;
    args[i].n = n;
    args[i].errs = &errs;
    assert_rc(ray_actor_method(&k_order, "rec", &args[i].rec_id), 0);
    assert_int_equal(uv_thread_create(&th[i], order_thread, &args[i]), 0);
  }
  for (int i = 0; i < ORDER_THREADS; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
  rt_errs_assert(&errs);
  ray_ref_t st[2];
  assert_rc(ray_actor_call(act, "stats", NULL, 0, NULL, st), 0);
  assert_int_equal(take_i64(st[0]), 0); /* violations */
  assert_int_equal(take_i64(st[1]), (int64_t)n * ORDER_THREADS);
  assert_rc(ray_actor_release(act), 0);
  a_end();
}

/* A call waiting for its argument holds back the calls behind it (one
 * submitter's order), but not another actor's calls (1 worker: nothing
 * parks a worker while it waits). */
static void test_order_pending_ref_arg(void **state) {
  (void)state;
  a_begin(1);
  ray_actor_t a = mk_counter(0);
  ray_actor_t b = mk_counter(100);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  ray_ref_t r1 = call1(a, "add", ray_arg_ref(p)); /* waits for p */
  ray_ref_t r2 = add(a, 1);                       /* queued behind r1 */
  ray_ref_t r3 = call0(a, "get");
  /* Another actor's calls run meanwhile, on the only worker. */
  for (int i = 1; i <= 3; i++) assert_int_equal(take_i64(add(b, 1)), 100 + i);
  assert_true(is_pending(r1));
  assert_true(is_pending(r2));
  assert_true(is_pending(r3));
  /* The constructor waits for its ref arguments the same way. */
  ray_ref_t p2;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p2), 0);
  ray_arg_t carg = ray_arg_ref(p2);
  ray_actor_t c = mk(&k_counter, &carg, 1, NULL);
  ray_ref_t r4 = call0(c, "get");
  assert_int_equal(take_i64(add(b, 1)), 104);
  assert_true(is_pending(r4));

  char enc[16];
  size_t n = rt_encode_i64(7, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p, enc, n), 0);
  assert_int_equal(take_i64(r1), 7);
  assert_int_equal(take_i64(r2), 8);
  assert_int_equal(take_i64(r3), 8);
  n = rt_encode_i64(55, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p2, enc, n), 0);
  assert_int_equal(take_i64(r4), 55);
  assert_int_equal(atomic_load(&g_ctors), 3);
  assert_rc(ray_ref_release(p), 0);
  assert_rc(ray_ref_release(p2), 0);

  /* A failed argument fails the call (EDEPFAILED), not the actor. */
  ray_ref_t bad;
  ray_error_t *e = NULL;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &bad), 0);
  assert_rc(ray_error_new(&e, RAY_EIO, "producer", "disk on fire"), 0);
  assert_rc(ray__object_fail(bad, e), 0);
  ray_error_free(e);
  ray_ref_t r5 = call1(a, "add", ray_arg_ref(bad));
  e = expect_fail(r5, RAY_EDEPFAILED);
  assert_true(chain_has(e, RAY_EIO, "disk on fire"));
  ray_error_free(e);
  assert_rc(ray_ref_release(r5), 0);
  assert_int_equal(take_i64(add(a, 1)), 9);
  assert_rc(ray_ref_release(bad), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(b), 0);
  assert_rc(ray_actor_release(c), 0);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 3);
}

/* ---- concurrency ------------------------------------------------------------ */

typedef struct {
  ray_actor_t actor;
  int n;
  rt_errs_t *errs;
} conc_arg_t;

static void conc_thread(void *p) {
  conc_arg_t *a = p;
  ray_ref_t *refs = calloc((size_t)a->n, sizeof *refs);
  RT_CHECK(a->errs, refs != NULL, 0);
  if (refs == NULL) return;
  for (int i = 0; i < a->n; i++) {
    ray_arg_t arg = ray_arg_i64(0);
    int rc = ray_actor_call(a->actor, "work", &arg, 1, NULL, &refs[i]);
    RT_CHECK(a->errs, rc == 0, rc);
  }
  for (int i = 0; i < a->n; i++) {
    int64_t v = 0;
    int rc = ray_get_i64(refs[i], RAY_TIMEOUT_INFINITE, &v);
    RT_CHECK(a->errs, rc == 0, rc);
    ray_ref_release(refs[i]);
  }
  free(refs);
}

/* Calls from 3 host threads at once; returns the live maximum seen. */
static int conc_storm(ray_actor_t actor, int n) {
  atomic_store(&g_max_live, 0);
  rt_errs_t errs;
  rt_errs_init(&errs);
  conc_arg_t arg = {actor, n, &errs};
  uv_thread_t th[3];
  for (int i = 0; i < 3; i++) assert_int_equal(uv_thread_create(&th[i], conc_thread, &arg), 0);
  for (int i = 0; i < 3; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
  rt_errs_assert(&errs);
  return atomic_load(&g_max_live);
}

static void test_max_concurrency_1(void **state) {
  (void)state;
  a_begin(4);
  ray_actor_t other = mk_counter(0);
  for (int variant = 0; variant < 2; variant++) {
    ray_actor_opts_t o;
    ray_actor_opts_init(&o);
    if (variant == 1) o.max_concurrency = 0; /* means 1 */
    ray_actor_t c = mk(&k_conc, NULL, 0, variant == 0 ? NULL : &o);
    atomic_store(&g_runs, 0);
    atomic_store(&g_max_live, 0);
    reset_gate();
    /* One call blocks; those behind it must not start, though 3 workers idle. */
    ray_ref_t first = call1(c, "work", ray_arg_i64(1));
    rt_latch_wait(&g_started, 1);
    ray_ref_t more[8];
    for (int i = 0; i < 8; i++) more[i] = call1(c, "work", ray_arg_i64(0));
    assert_int_equal(take_i64(add(other, 1)), variant + 1); /* the pool is free */
    assert_int_equal(atomic_load(&g_runs), 1);
    for (int i = 0; i < 8; i++) assert_true(is_pending(more[i]));
    rt_latch_signal(&g_go);
    assert_int_equal(take_i64(first), 1);
    for (int i = 0; i < 8; i++) assert_int_equal(take_i64(more[i]), 1);
    assert_int_equal(atomic_load(&g_max_live), 1);
    /* Many calls from several host threads: still one at a time. */
    assert_int_equal(conc_storm(c, rt_iters(2000, 100)), 1);
    assert_rc(ray_actor_release(c), 0);
  }
  assert_rc(ray_actor_release(other), 0);
  a_end();
}

static void test_max_concurrency_4(void **state) {
  (void)state;
  /* More workers than the limit, so the limit is what holds calls back. */
  a_begin(6);
  ray_actor_t other = mk_counter(0);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.max_concurrency = 4;
  ray_actor_t c = mk(&k_conc, NULL, 0, &o);
  ray_ref_t r[8];
  for (int i = 0; i < 8; i++) r[i] = call1(c, "work", ray_arg_i64(1));
  rt_latch_wait(&g_started, 4);                 /* four run at once */
  assert_int_equal(take_i64(add(other, 1)), 1); /* two workers are still free */
  assert_int_equal(atomic_load(&g_runs), 4);    /* and the fifth call waits */
  assert_int_equal(atomic_load(&g_max_live), 4);
  rt_latch_signal(&g_go);
  for (int i = 0; i < 8; i++) {
    int64_t live = take_i64(r[i]);
    assert_true(live >= 1 && live <= 4);
  }
  assert_int_equal(atomic_load(&g_max_live), 4);
  int m = conc_storm(c, rt_iters(2000, 100));
  assert_true(m >= 1 && m <= 4);
  assert_rc(ray_actor_release(c), 0);
  assert_rc(ray_actor_release(other), 0);
  a_end();
}

/* A long mailbox does not starve another actor (1 worker: bounded batches). */
static void test_fairness_between_actors(void **state) {
  (void)state;
  a_begin(1);
  ray_actor_t a = mk_counter(0);
  ray_actor_t b = mk_counter(0);
  ray_ref_t blk = call0(a, "block");
  rt_latch_wait(&g_started, 1); /* the only worker is busy */
  int n = rt_iters(5000, 1000);
  ray_ref_t *refs = calloc((size_t)n, sizeof *refs);
  assert_non_null(refs);
  for (int i = 0; i < n; i++) refs[i] = call0(a, "tick");
  ray_ref_t rb = call0(b, "ticks"); /* how many of a's ran before b's turn */
  rt_latch_signal(&g_go);
  int64_t seen = take_i64(rb);
  for (int i = 0; i < n; i++) assert_int_equal(take_i64(refs[i]), i + 1);
  free(refs);
  assert_int_equal(take_i64(blk), 0);
  if (seen >= n)
    print_error("actor b ran only after all %d queued calls of actor a (saw %lld)\n", n,
                (long long)seen);
  assert_true(seen < n);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(b), 0);
  a_end();
}

/* ---- constructor ------------------------------------------------------------ */

static void test_calls_queue_behind_constructor(void **state) {
  (void)state;
  a_begin(2);
  atomic_store(&g_ctor_block, true);
  ray_actor_t c = mk_counter(5);
  rt_latch_wait(&g_ctor_started, 1);
  ray_ref_t r[3] = {add(c, 1), add(c, 2), call0(c, "get")};
  bool ready[3] = {true, true, true};
  assert_int_equal(ray_wait(r, 3, 1, 0, ready), 0);
  for (int i = 0; i < 3; i++) {
    assert_false(ready[i]);
    assert_true(is_pending(r[i]));
  }
  ray_buf_t b;
  assert_rc(ray_get(r[0], 0, &b), RAY_ETIMEDOUT);
  rt_latch_signal(&g_ctor_go);
  assert_int_equal(take_i64(r[0]), 6);
  assert_int_equal(take_i64(r[1]), 8);
  assert_int_equal(take_i64(r[2]), 8);
  assert_int_equal(atomic_load(&g_ctor_self), c.id);
  assert_rc(ray_actor_release(c), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
}

static void check_ctor_failure(int64_t mode, int want_code, const char *want_msg) {
  a_begin(2);
  atomic_store(&g_ctor_block, true);
  ray_arg_t arg = ray_arg_i64(mode);
  ray_actor_t a = mk(&k_broken, &arg, 1, NULL);
  rt_latch_wait(&g_ctor_started, 1);
  ray_ref_t before = call0(a, "get"); /* queued behind the constructor */
  rt_latch_signal(&g_ctor_go);
  ray_error_t *e = expect_fail(before, RAY_EACTORDIED);
  assert_string_equal(ray_error_origin(e), "Broken.get");
  assert_true(chain_has(ray_error_cause(e), want_code, want_msg));
  ray_error_free(e);
  assert_rc(ray_ref_release(before), 0);
  /* Calls after the death are accepted and fail the same way. */
  for (int i = 0; i < 3; i++) {
    ray_ref_t after = call0(a, "get");
    e = expect_fail(after, RAY_EACTORDIED);
    assert_true(chain_has(e, want_code, want_msg));
    ray_error_free(e);
    assert_rc(ray_ref_release(after), 0);
  }
  assert_rc(ray_actor_kill(a, true), 0); /* dead already: 0 */
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_int_equal(atomic_load(&g_runs), 0);  /* no method ran */
  assert_int_equal(atomic_load(&g_dtors), 0); /* nothing was constructed */
  assert_int_equal(atomic_load(&g_ctors), 1);
}

static void test_constructor_failure(void **state) {
  (void)state;
  check_ctor_failure(0, RAY_ETASK, "ctor boom 42");
  check_ctor_failure(1, RAY_ETASK, NULL);
  check_ctor_failure(2, RAY_EIO, NULL);
}

static void test_constructor_bad_args(void **state) {
  (void)state;
  a_begin(2);
  /* A constructor whose argument failed never runs. */
  ray_ref_t bad;
  ray_error_t *e = NULL;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &bad), 0);
  assert_rc(ray_error_new(&e, RAY_EIO, "producer", "no data"), 0);
  assert_rc(ray__object_fail(bad, e), 0);
  ray_error_free(e);
  ray_arg_t arg = ray_arg_ref(bad);
  ray_actor_t a = mk(&k_counter, &arg, 1, NULL);
  assert_rc(ray_ref_release(bad), 0);
  ray_ref_t r = add(a, 1);
  e = expect_fail(r, RAY_EACTORDIED);
  assert_true(chain_has(e, RAY_EDEPFAILED, NULL));
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  /* A constructor that rejects its argument's type. */
  arg = ray_arg_str("ten");
  ray_actor_t b = mk(&k_counter, &arg, 1, NULL);
  r = add(b, 1);
  e = expect_fail(r, RAY_EACTORDIED);
  assert_true(chain_has(e, RAY_ETYPE, "bad initial value"));
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(b), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 1); /* only b's ran */
  assert_int_equal(atomic_load(&g_dtors), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_opts_init),
      cmocka_unit_test(test_node_in_one_process),
      cmocka_unit_test(test_method_lookup),
      cmocka_unit_test(test_class_invalid),
      cmocka_unit_test(test_not_init),
      cmocka_unit_test(test_call_basic),
      cmocka_unit_test(test_results_typed_at_submission),
      cmocka_unit_test(test_order_per_submitter),
      cmocka_unit_test(test_order_pending_ref_arg),
      cmocka_unit_test(test_max_concurrency_1),
      cmocka_unit_test(test_max_concurrency_4),
      cmocka_unit_test(test_fairness_between_actors),
      cmocka_unit_test(test_calls_queue_behind_constructor),
      cmocka_unit_test(test_constructor_failure),
      cmocka_unit_test(test_constructor_bad_args),
  };
  rt_main_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
