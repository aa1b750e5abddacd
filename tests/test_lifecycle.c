/* test_lifecycle.c - configuration, environment overrides, init validation,
 * double init, calls before init and after shutdown, re-init, stats, version,
 * shutdown from the wrong thread, shutdown and init from code the library
 * runs (a destructor during shutdown, a task), calls from other threads
 * racing with shutdown, and the thread-exit hooks that hand per-thread state
 * back. */
#include "test_util.h"

#include <sched.h>

#include "thread.h" /* ray__thread_at_exit */

static const char *const k_env_vars[] = {"RAY_NUM_WORKERS",      "RAY_NUM_SHARDS",
                                         "RAY_INLINE_THRESHOLD", "RAY_OBJECT_STORE_MEMORY",
                                         "RAY_WORKER_SPIN_US",   "RAY_WAIT_SPIN_US"};

static void clear_env(void) {
  for (size_t i = 0; i < sizeof k_env_vars / sizeof k_env_vars[0]; i++)
    assert_int_equal(unsetenv(k_env_vars[i]), 0);
}

static void set_env(const char *name, const char *value) {
  assert_int_equal(setenv(name, value, 1), 0);
}

/* After a failed ray_init: nothing running, nothing allocated. */
static void assert_not_running_clean(void) {
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray_ref_t r;
  assert_rc(ray_put("x", 1, &r), RAY_ENOTINIT);
  ray_stats_t s;
  assert_rc(ray_stats(&s), RAY_ENOTINIT);
}

static void init_expect(const ray_config_t *cfg, int want) {
  if (ray_is_initialized()) (void)ray_shutdown();
  ray__alloc_track(true);
  assert_rc(ray_init(cfg), want);
  if (want != 0) assert_not_running_clean();
}

/* ---- configuration ------------------------------------------------------ */

static void test_config_defaults(void **state) {
  (void)state;
  clear_env();
  ray_config_t cfg;
  memset(&cfg, 0xFF, sizeof cfg);
  assert_rc(ray_config_init(&cfg), 0);
  /* "the number of CPUs": accept libuv's two ways of counting them. */
  uv_cpu_info_t *cpus = NULL;
  int ncpu = 0;
  assert_int_equal(uv_cpu_info(&cpus, &ncpu), 0);
  uv_free_cpu_info(cpus, ncpu);
  unsigned par = uv_available_parallelism();
  assert_true(cfg.num_workers == (unsigned)ncpu || cfg.num_workers == par);
  assert_in_range(cfg.num_workers, 1, 1024);
  assert_int_equal(cfg.num_shards, 64);
  assert_int_equal(cfg.inline_threshold, 1024);
  assert_true(cfg.object_store_memory > 0);
  assert_true(cfg.object_store_memory <= uv_get_total_memory());
  assert_int_equal(cfg.worker_spin_us, 50);
  assert_int_equal(cfg.wait_spin_us, 20);

  /* ray_init(NULL) with a clean environment runs on exactly these. */
  rt_begin_cfg(NULL);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.num_workers, cfg.num_workers);
  assert_int_equal(s.num_shards, 64);
  rt_end();

  assert_rc(ray_config_init(NULL), RAY_EINVAL);
}

static void test_config_env_overrides(void **state) {
  (void)state;
  clear_env();
  ray_config_t def;
  assert_rc(ray_config_init(&def), 0);
  set_env("RAY_NUM_WORKERS", "3");
  set_env("RAY_NUM_SHARDS", "16");
  set_env("RAY_INLINE_THRESHOLD", "100");
  set_env("RAY_OBJECT_STORE_MEMORY", "123456789");
  set_env("RAY_WORKER_SPIN_US", "0");
  set_env("RAY_WAIT_SPIN_US", "1000000");
  ray_config_t cfg;
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.num_workers, 3);
  assert_int_equal(cfg.num_shards, 16);
  assert_int_equal(cfg.inline_threshold, 100);
  assert_true(cfg.object_store_memory == 123456789u);
  assert_int_equal(cfg.worker_spin_us, 0);
  assert_int_equal(cfg.wait_spin_us, 1000000);

  /* One variable alone changes one field. */
  clear_env();
  set_env("RAY_NUM_SHARDS", "256");
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.num_shards, 256);
  assert_int_equal(cfg.num_workers, def.num_workers);
  assert_int_equal(cfg.inline_threshold, def.inline_threshold);
  assert_true(cfg.object_store_memory == def.object_store_memory);

  /* ray_init(NULL) applies the environment. */
  clear_env();
  set_env("RAY_NUM_WORKERS", "3");
  set_env("RAY_NUM_SHARDS", "8");
  rt_begin_cfg(NULL);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.num_workers, 3);
  assert_int_equal(s.num_shards, 8);
  rt_end();

  /* The caller's fields win over the environment. */
  ray_config_t mine;
  assert_rc(ray_config_init(&mine), 0);
  assert_int_equal(mine.num_workers, 3);
  mine.num_workers = 1;
  mine.num_shards = 2;
  rt_begin_cfg(&mine);
  s = rt_stats();
  assert_int_equal(s.num_workers, 1);
  assert_int_equal(s.num_shards, 2);
  rt_end();
  clear_env();
}

static void test_config_env_invalid(void **state) {
  (void)state;
  clear_env();
  ray_config_t def;
  assert_rc(ray_config_init(&def), 0);

  const char *bad_numbers[] = {"abc", "12abc", "-3", "0x", "99999999999999999999999999"};
  for (size_t v = 0; v < sizeof k_env_vars / sizeof k_env_vars[0]; v++) {
    for (size_t b = 0; b < sizeof bad_numbers / sizeof bad_numbers[0]; b++) {
      clear_env();
      set_env(k_env_vars[v], bad_numbers[b]);
      /* A valid variable set alongside is still applied. */
      const char *other = v == 1 ? "RAY_NUM_WORKERS" : "RAY_NUM_SHARDS";
      set_env(other, "4");
      ray_config_t cfg;
      int rc = ray_config_init(&cfg);
      if (rc != RAY_EINVAL) {
        print_error("%s=%s: ray_config_init returned %d (%s)\n", k_env_vars[v], bad_numbers[b], rc,
                    ray_err_name(rc));
        fail();
      }
      /* The bad field holds its default. */
      switch (v) {
        case 0:
          assert_int_equal(cfg.num_workers, def.num_workers);
          break;
        case 1:
          assert_int_equal(cfg.num_shards, def.num_shards);
          break;
        case 2:
          assert_int_equal(cfg.inline_threshold, def.inline_threshold);
          break;
        case 4:
          assert_int_equal(cfg.worker_spin_us, def.worker_spin_us);
          break;
        case 5:
          assert_int_equal(cfg.wait_spin_us, def.wait_spin_us);
          break;
        default:
          assert_true(cfg.object_store_memory == def.object_store_memory);
          break;
      }
      if (v == 1)
        assert_int_equal(cfg.num_workers, 4);
      else
        assert_int_equal(cfg.num_shards, 4);

      /* ray_init(NULL) refuses a bad environment and leaves nothing behind. */
      init_expect(NULL, RAY_EINVAL);
    }
  }
  clear_env();
}

static void test_init_bad_env_values(void **state) {
  (void)state;
  /* Parseable numbers that ray_init's validation rejects. */
  clear_env();
  set_env("RAY_NUM_WORKERS", "0");
  init_expect(NULL, RAY_EINVAL);
  clear_env();
  set_env("RAY_NUM_WORKERS", "1025");
  init_expect(NULL, RAY_EINVAL);
  clear_env();
  set_env("RAY_NUM_SHARDS", "3");
  init_expect(NULL, RAY_EINVAL);
  clear_env();
  set_env("RAY_NUM_SHARDS", "8192");
  init_expect(NULL, RAY_EINVAL);
  clear_env();
  set_env("RAY_OBJECT_STORE_MEMORY", "0");
  init_expect(NULL, RAY_EINVAL);
  clear_env();
  set_env("RAY_WORKER_SPIN_US", "1000001");
  init_expect(NULL, RAY_EINVAL);
  clear_env();
  set_env("RAY_WAIT_SPIN_US", "1000001");
  init_expect(NULL, RAY_EINVAL);
  clear_env();
  /* And a good one still starts. */
  rt_begin_cfg(NULL);
  rt_end();
}

/* ---- init validation ----------------------------------------------------- */

static void test_init_validation(void **state) {
  (void)state;
  clear_env();
  ray_config_t cfg;

  const unsigned bad_workers[] = {0, 1025, 100000, UINT_MAX};
  for (size_t i = 0; i < sizeof bad_workers / sizeof bad_workers[0]; i++) {
    rt_config(&cfg);
    cfg.num_workers = bad_workers[i];
    init_expect(&cfg, RAY_EINVAL);
  }
  const unsigned bad_shards[] = {0, 3, 5, 6, 7, 12, 100, 1000, 4095, 4097, 8192, UINT_MAX};
  for (size_t i = 0; i < sizeof bad_shards / sizeof bad_shards[0]; i++) {
    rt_config(&cfg);
    cfg.num_shards = bad_shards[i];
    init_expect(&cfg, RAY_EINVAL);
  }
  rt_config(&cfg);
  cfg.object_store_memory = 0;
  init_expect(&cfg, RAY_EINVAL);
  rt_config(&cfg);
  cfg.worker_spin_us = 1000001;
  init_expect(&cfg, RAY_EINVAL);
  rt_config(&cfg);
  cfg.wait_spin_us = UINT32_MAX;
  init_expect(&cfg, RAY_EINVAL);

  /* After all those, a valid init works. */
  rt_config(&cfg);
  rt_begin_cfg(&cfg);
  rt_end();
}

/* ---- spin settings -------------------------------------------------------- */

static ray_function_t g_tree_fn;

/* tree(n): 1 + two children tree(n - 1), each awaited: nested gets. */
static int fn_tree(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t n = 0;
  if (ray_ctx_arg_i64(ctx, 0, &n) != 0) return ray_fail(ctx, RAY_EINVAL, "arg");
  int64_t total = 1;
  if (n > 0) {
    ray_arg_t a = ray_arg_i64(n - 1);
    ray_ref_t r[2];
    for (int i = 0; i < 2; i++)
      if (ray_task_submit(g_tree_fn, &a, 1, NULL, &r[i]) != 0) return ray_fail(ctx, RAY_ETASK, "s");
    for (int i = 0; i < 2; i++) {
      int64_t v = 0;
      int rc = ray_get_i64(r[i], RAY_TIMEOUT_INFINITE, &v);
      (void)ray_ref_release(r[i]);
      if (rc != 0) return ray_fail(ctx, rc, "get");
      total += v;
    }
  }
  return ray_return_i64(ctx, 0, total);
}

/* No spinning at all (every idle worker and every waiter parks at once):
 * tasks, nested gets and waits still complete, as they do with the
 * defaults. */
static void test_spin_settings_zero(void **state) {
  (void)state;
  clear_env();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = 2;
  cfg.worker_spin_us = 0;
  cfg.wait_spin_us = 0;
  rt_begin_cfg(&cfg);
  g_tree_fn = rt_register("tree", fn_tree, NULL, rt_t_i64, 1);
  for (int round = 0; round < 20; round++) {
    ray_arg_t a = ray_arg_i64(6);
    ray_ref_t r = rt_submit(g_tree_fn, &a, 1, NULL);
    assert_int_equal(rt_get_i64(r), 127); /* 2^7 - 1 calls */
    bool ready = false;
    assert_int_equal(ray_wait(&r, 1, 1, RAY_TIMEOUT_INFINITE, &ready), 1);
    assert_true(ready);
    assert_rc(ray_ref_release(r), 0);
  }
  rt_end();
}

static void put_get_some(size_t count, size_t max_size) {
  ray_ref_t *refs = calloc(count, sizeof *refs);
  unsigned char *data = malloc(max_size);
  assert_non_null(refs);
  assert_non_null(data);
  for (size_t i = 0; i < count; i++) {
    size_t sz = (i * 37) % (max_size + 1);
    rt_fill(data, sz, i);
    assert_rc(ray_put(data, sz, &refs[i]), 0);
  }
  for (size_t i = 0; i < count; i++) {
    ray_buf_t b;
    size_t sz = (i * 37) % (max_size + 1);
    assert_rc(ray_get(refs[i], 0, &b), 0);
    assert_int_equal(b.size, sz);
    assert_true(rt_check(b.data, sz, i));
    ray_buf_release(&b);
  }
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, count);
  for (size_t i = 0; i < count; i++) assert_rc(ray_ref_release(refs[i]), 0);
  s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  free(refs);
  free(data);
}

static void test_init_valid_edges(void **state) {
  (void)state;
  clear_env();
  ray_config_t cfg;
  const unsigned shards[] = {1, 2, 4096};
  for (size_t i = 0; i < sizeof shards / sizeof shards[0]; i++) {
    rt_config(&cfg);
    cfg.num_shards = shards[i];
    rt_begin_cfg(&cfg);
    assert_int_equal(rt_stats().num_shards, shards[i]);
    put_get_some(300, 3000);
    rt_end();
  }
  rt_config(&cfg);
  cfg.num_workers = 1;
  rt_begin_cfg(&cfg);
  assert_int_equal(rt_stats().num_workers, 1);
  rt_end();

  /* Inline threshold extremes: everything out of line, everything inline. */
  const size_t thresholds[] = {0, 1, 1 << 20};
  for (size_t i = 0; i < sizeof thresholds / sizeof thresholds[0]; i++) {
    rt_config(&cfg);
    cfg.inline_threshold = thresholds[i];
    rt_begin_cfg(&cfg);
    put_get_some(100, 5000);
    rt_end();
  }
  /* A small object_store_memory is accepted (enforced by a later issue). */
  rt_config(&cfg);
  cfg.object_store_memory = 1;
  rt_begin_cfg(&cfg);
  rt_end();
}

static void test_double_init(void **state) {
  (void)state;
  clear_env();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = 1;
  rt_begin_cfg(&cfg);
  ray_ref_t r;
  assert_rc(ray_put_i64(5, &r), 0);
  assert_rc(ray_init(NULL), RAY_EALREADY);
  ray_config_t other;
  rt_config(&other);
  other.num_workers = 3;
  assert_rc(ray_init(&other), RAY_EALREADY);
  /* The running runtime is untouched. */
  assert_true(ray_is_initialized());
  ray_stats_t s = rt_stats();
  assert_int_equal(s.num_workers, 1);
  assert_int_equal(s.objects, 1);
  int64_t v = 0;
  assert_rc(ray_get_i64(r, 0, &v), 0);
  assert_int_equal(v, 5);
  assert_rc(ray_ref_release(r), 0);
  rt_end();
  /* Double shutdown. */
  assert_rc(ray_shutdown(), RAY_ENOTINIT);
  assert_int_equal(ray__alloc_outstanding(), 0);
}

typedef struct {
  rt_latch_t *gate;
  atomic_int *ok;
  atomic_int *already;
  atomic_int *other;
} init_thread_arg_t;

static void init_thread(void *arg) {
  init_thread_arg_t *a = (init_thread_arg_t *)arg;
  rt_latch_wait(a->gate, 1);
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) {
    atomic_fetch_add(a->other, 1);
    return;
  }
  cfg.num_workers = 1;
  int rc = ray_init(&cfg);
  if (rc == 0)
    atomic_fetch_add(a->ok, 1);
  else if (rc == RAY_EALREADY)
    atomic_fetch_add(a->already, 1);
  else
    atomic_fetch_add(a->other, 1);
}

static void test_concurrent_init(void **state) {
  (void)state;
  clear_env();
  int rounds = rt_iters(10, 2);
  for (int round = 0; round < rounds; round++) {
    if (ray_is_initialized()) (void)ray_shutdown();
    ray__alloc_track(true);
    rt_latch_t gate;
    rt_latch_init(&gate);
    atomic_int ok, already, other;
    atomic_init(&ok, 0);
    atomic_init(&already, 0);
    atomic_init(&other, 0);
    init_thread_arg_t a = {&gate, &ok, &already, &other};
    uv_thread_t th[4];
    for (int i = 0; i < 4; i++) assert_int_equal(uv_thread_create(&th[i], init_thread, &a), 0);
    rt_latch_signal(&gate);
    for (int i = 0; i < 4; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
    rt_latch_destroy(&gate);
    assert_int_equal(atomic_load(&ok), 1);
    assert_int_equal(atomic_load(&already), 3);
    assert_int_equal(atomic_load(&other), 0);
    assert_true(ray_is_initialized());
    assert_int_equal(rt_stats().num_workers, 1);
    rt_end();
  }
}

/* ---- calls without a runtime -------------------------------------------- */

static atomic_int g_post_runs;
static void post_fn(void *arg) {
  (void)arg;
  atomic_fetch_add(&g_post_runs, 1);
}

/* Every call that needs the runtime returns RAY_ENOTINIT, with valid
 * arguments so that no other error applies. `r` is some ref (stale or
 * made up). */
static void assert_all_enotinit(ray_ref_t r) {
  ray_ref_t out = RAY_REF_NIL;
  atomic_store(&rt_frees, 0);
  atomic_store(&g_post_runs, 0);

  assert_rc(ray_put("abc", 3, &out), RAY_ENOTINIT);
  assert_rc(ray_put(NULL, 0, &out), RAY_ENOTINIT);
  assert_rc(ray_put_typed("abc", 3, RAY_TYPE_USER, &out), RAY_ENOTINIT);
  void *owned = malloc(16);
  assert_non_null(owned);
  assert_rc(ray_put_owned(owned, 16, rt_count_free, NULL, &out), RAY_ENOTINIT);
  assert_int_equal(atomic_load(&rt_frees), 0); /* caller keeps it */
  free(owned);
  const void *datas[2] = {"a", "bc"};
  size_t sizes[2] = {1, 2};
  ray_ref_t outs[2];
  assert_rc(ray_put_batch(datas, sizes, 2, outs), RAY_ENOTINIT);
  assert_rc(ray_put_i64(1, &out), RAY_ENOTINIT);
  assert_rc(ray_put_f64(1.5, &out), RAY_ENOTINIT);
  assert_rc(ray_put_str("s", &out), RAY_ENOTINIT);
  msgpack_object mo;
  memset(&mo, 0, sizeof mo);
  mo.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  mo.via.u64 = 7;
  assert_rc(ray_put_msgpack(&mo, &out), RAY_ENOTINIT);

  ray_buf_t b;
  rt_garbage(&b, sizeof b);
  assert_rc(ray_get(r, 0, &b), RAY_ENOTINIT);
  rt_assert_buf_zeroed(&b);
  rt_garbage(&b, sizeof b);
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), RAY_ENOTINIT);
  rt_assert_buf_zeroed(&b);
  ray_buf_t bs[2];
  ray_ref_t rs[2] = {r, r};
  rt_garbage(bs, sizeof bs);
  assert_rc(ray_get_batch(rs, 2, 0, bs), RAY_ENOTINIT);
  assert_true(rt_is_zero(bs, sizeof bs));
  int64_t i64;
  double f64;
  char *s = NULL;
  size_t len;
  ray_msgpack_t m;
  /* Typed gets with a ref of their own type (a ref's tag may be checked
   * before the runtime is). */
  ray_ref_t ri = {r.id, RAY_TYPE_I64}, rf = {r.id, RAY_TYPE_F64};
  ray_ref_t rs2 = {r.id, RAY_TYPE_STR}, rm = {r.id, RAY_TYPE_MSGPACK};
  assert_rc(ray_get_i64(ri, 0, &i64), RAY_ENOTINIT);
  assert_rc(ray_get_f64(rf, 0, &f64), RAY_ENOTINIT);
  assert_rc(ray_get_str(rs2, 0, &s, &len), RAY_ENOTINIT);
  assert_null(s);
  memset(&m, 0, sizeof m);
  assert_rc(ray_get_msgpack(rm, 0, &m), RAY_ENOTINIT);
  ray_msgpack_release(&m);
  ray_error_t *err = NULL;
  assert_rc(ray_get_error(r, &err), RAY_ENOTINIT);
  assert_null(err);
  bool ready[1] = {false};
  assert_rc(ray_wait(&r, 1, 1, 0, ready), RAY_ENOTINIT);
  assert_rc(ray_wait(&r, 1, 1, RAY_TIMEOUT_INFINITE, ready), RAY_ENOTINIT);
  assert_false(ready[0]);
  assert_rc(ray_ref_retain(r), RAY_ENOTINIT);
  assert_rc(ray_ref_release(r), RAY_ENOTINIT);
  rt_cb_rec_t rec;
  rt_cb_rec_init(&rec, NULL);
  assert_rc(ray_ref_on_ready(r, rt_cb_record, &rec), RAY_ENOTINIT);
  ray_stats_t st;
  assert_rc(ray_stats(&st), RAY_ENOTINIT);
  assert_rc(ray_shutdown(), RAY_ENOTINIT);

  /* Internal interface. */
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &out), RAY_ENOTINIT);
  assert_rc(ray__object_fulfil(r, "x", 1), RAY_ENOTINIT);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, NULL, NULL), 0);
  assert_rc(ray__object_fail(r, e), RAY_ENOTINIT);
  ray_error_free(e);
  assert_rc(ray__runtime_worker_post(post_fn, NULL), RAY_ENOTINIT);

  /* The no-runtime calls still work. */
  ray_buf_release(NULL);
  ray_buf_t zero;
  memset(&zero, 0, sizeof zero);
  ray_buf_release(&zero);
  ray_msgpack_release(NULL);
  memset(&m, 0, sizeof m);
  ray_msgpack_release(&m);
  ray_free(NULL);
  ray_error_free(NULL);

  assert_int_equal(atomic_load(&rec.calls), 0);
  assert_int_equal(atomic_load(&g_post_runs), 0);
  assert_int_equal(atomic_load(&rt_frees), 0);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
}

static void test_calls_before_init(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  ray__alloc_track(true);
  ray_ref_t made_up = {1, RAY_TYPE_BYTES};
  assert_all_enotinit(made_up);
  assert_all_enotinit(RAY_REF_NIL);
  assert_int_equal(ray__alloc_outstanding(), 0);
}

static void test_calls_after_shutdown(void **state) {
  (void)state;
  clear_env();
  rt_begin();
  ray_ref_t ready, pending, kept;
  assert_rc(ray_put("hello", 5, &ready), 0);
  assert_rc(ray_put_i64(9, &kept), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &pending), 0);
  assert_rc(ray_ref_release(ready), 0);
  rt_end(); /* kept and pending are still referenced: shutdown frees them */
  assert_all_enotinit(ready);
  assert_all_enotinit(kept);
  assert_all_enotinit(pending);
  assert_int_equal(ray__alloc_outstanding(), 0);
}

/* ---- re-init ------------------------------------------------------------ */

static void test_reinit_repeatedly(void **state) {
  (void)state;
  clear_env();
  int rounds = rt_iters(20, 4);
  ray_ref_t prev = RAY_REF_NIL;
  uint64_t *ids = calloc((size_t)rounds * 2, sizeof *ids);
  assert_non_null(ids);
  size_t nids = 0;
  for (int round = 0; round < rounds; round++) {
    assert_false(ray_is_initialized());
    rt_begin();
    ray_stats_t s = rt_stats();
    assert_int_equal(s.objects, 0);
    assert_int_equal(s.objects_created, 0);
    assert_int_equal(s.objects_freed, 0);
    assert_int_equal(s.bytes_in_memory, 0);
    ray_ref_t r, p;
    assert_rc(ray_put_i64(round, &r), 0);
    assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
    int64_t v = -1;
    assert_rc(ray_get_i64(r, 0, &v), 0);
    assert_int_equal(v, round);
    /* Ids are never reused, not even across runtimes. */
    for (size_t i = 0; i < nids; i++) {
      assert_true(ids[i] != r.id);
      assert_true(ids[i] != p.id);
    }
    ids[nids++] = r.id;
    ids[nids++] = p.id;
    /* A ref from the previous runtime is unknown here. */
    if (round > 0) {
      ray_buf_t b;
      assert_rc(ray_get(prev, 0, &b), RAY_ENOTFOUND);
      assert_rc(ray_ref_retain(prev), RAY_ENOTFOUND);
      assert_rc(ray_ref_release(prev), RAY_ENOTFOUND);
    }
    s = rt_stats();
    assert_int_equal(s.objects, 2);
    assert_int_equal(s.objects_created, 2);
    if (round % 2) assert_rc(ray_ref_release(r), 0); /* half the time keep it */
    prev = r;
    rt_end();
  }
  free(ids);
}

static void test_is_initialized(void **state) {
  (void)state;
  clear_env();
  if (ray_is_initialized()) (void)ray_shutdown();
  assert_false(ray_is_initialized());
  rt_begin();
  assert_true(ray_is_initialized());
  assert_true(ray_is_initialized());
  rt_end();
  assert_false(ray_is_initialized());
}

/* ---- stats ---------------------------------------------------------------- */

static void test_stats(void **state) {
  (void)state;
  clear_env();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = 2;
  cfg.num_shards = 32;
  rt_begin_cfg(&cfg);
  assert_rc(ray_stats(NULL), RAY_EINVAL);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  assert_int_equal(s.objects_created, 0);
  assert_int_equal(s.objects_freed, 0);
  assert_int_equal(s.num_workers, 2);
  assert_int_equal(s.num_shards, 32);

  char data[5000];
  rt_fill(data, sizeof data, 1);
  ray_ref_t a, b, c;
  assert_rc(ray_put(data, 100, &a), 0);
  assert_rc(ray_put(data, 5000, &b), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &c), 0);
  s = rt_stats();
  assert_int_equal(s.objects, 3);
  assert_int_equal(s.bytes_in_memory, 5100);
  assert_int_equal(s.objects_created, 3);
  assert_int_equal(s.objects_freed, 0);
  assert_rc(ray__object_fulfil(c, data, 10), 0);
  s = rt_stats();
  assert_int_equal(s.bytes_in_memory, 5110);
  assert_rc(ray_ref_release(b), 0);
  s = rt_stats();
  assert_int_equal(s.objects, 2);
  assert_int_equal(s.bytes_in_memory, 110);
  assert_int_equal(s.objects_freed, 1);
  assert_rc(ray_ref_release(a), 0);
  assert_rc(ray_ref_release(c), 0);
  s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  assert_int_equal(s.objects_created, 3);
  assert_int_equal(s.objects_freed, 3);
  rt_end();
}

static void test_version(void **state) {
  (void)state;
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", RAY_VERSION_MAJOR, RAY_VERSION_MINOR, RAY_VERSION_PATCH);
  assert_string_equal(ray_version(), want);
  assert_int_equal(ray_version_hex(), RAY_VERSION_HEX);
  assert_int_equal(RAY_VERSION_HEX,
                   (RAY_VERSION_MAJOR << 16) | (RAY_VERSION_MINOR << 8) | RAY_VERSION_PATCH);
  rt_begin();
  assert_string_equal(ray_version(), want); /* same while running */
  rt_end();
}

/* ---- shutdown from the runtime's own threads ----------------------------- */

typedef struct {
  atomic_int rc;
  atomic_int on_main;
  rt_latch_t latch;
} shut_ctx_t;

static void shutdown_on_worker(void *arg) {
  shut_ctx_t *c = (shut_ctx_t *)arg;
  uv_thread_t self = uv_thread_self();
  atomic_store(&c->on_main, uv_thread_equal(&self, &rt_main_thread));
  atomic_store(&c->rc, ray_shutdown());
  rt_latch_signal(&c->latch);
}

static void test_shutdown_from_worker_is_busy(void **state) {
  (void)state;
  clear_env();
  rt_begin();
  shut_ctx_t c;
  atomic_init(&c.rc, 1);
  atomic_init(&c.on_main, 1);
  rt_latch_init(&c.latch);
  assert_rc(ray__runtime_worker_post(shutdown_on_worker, &c), 0);
  rt_latch_wait(&c.latch, 1);
  assert_int_equal(atomic_load(&c.rc), RAY_EBUSY);
  assert_int_equal(atomic_load(&c.on_main), 0);
  assert_true(ray_is_initialized());
  ray_ref_t r;
  assert_rc(ray_put("ok", 2, &r), 0); /* still works */
  assert_rc(ray_ref_release(r), 0);
  rt_end();
  rt_latch_destroy(&c.latch);
}

static void shutdown_on_loop(ray_ref_t ref, int status, void *arg) {
  (void)ref;
  (void)status;
  shutdown_on_worker(arg);
}

static void test_shutdown_from_loop_is_busy(void **state) {
  (void)state;
  clear_env();
  rt_begin();
  shut_ctx_t c;
  atomic_init(&c.rc, 1);
  atomic_init(&c.on_main, 1);
  rt_latch_init(&c.latch);
  ray_ref_t r;
  assert_rc(ray_put("x", 1, &r), 0);
  assert_rc(ray_ref_on_ready(r, shutdown_on_loop, &c), 0);
  rt_latch_wait(&c.latch, 1);
  assert_int_equal(atomic_load(&c.rc), RAY_EBUSY);
  assert_int_equal(atomic_load(&c.on_main), 0);
  assert_true(ray_is_initialized());
  assert_rc(ray_ref_release(r), 0);
  rt_end();
  rt_latch_destroy(&c.latch);
}

/* Shutdown with everything still in use: pending, ready, failed, owned,
 * retained refs and pending callbacks. It frees every byte. */
static void test_shutdown_frees_everything(void **state) {
  (void)state;
  clear_env();
  rt_begin();
  atomic_store(&rt_frees, 0);
  char data[4000];
  rt_fill(data, sizeof data, 9);
  ray_ref_t r;
  for (int i = 0; i < 200; i++) {
    assert_rc(ray_put(data, (size_t)(i * 19) % sizeof data, &r), 0);
    if (i % 3 == 0) assert_rc(ray_ref_retain(r), 0);
  }
  assert_rc(ray_put_str("a string", &r), 0);
  assert_rc(ray_put_f64(2.5, &r), 0);
  void *owned = malloc(3000);
  assert_non_null(owned);
  assert_rc(ray_put_owned(owned, 3000, rt_count_free, NULL, &r), 0);
  rt_cb_rec_t rec;
  rt_cb_rec_init(&rec, NULL);
  for (int i = 0; i < 20; i++) {
    assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
    assert_rc(ray_ref_on_ready(r, rt_cb_record, &rec), 0);
  }
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, "f", "failed"), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &r), 0);
  assert_rc(ray__object_fail(r, e), 0);
  ray_error_free(e);
  assert_int_equal(rt_stats().objects, 200 + 3 + 20 + 1);
  rt_end();
  assert_int_equal(atomic_load(&rt_frees), 1);
  assert_int_equal(atomic_load(&rec.calls), 20);
  assert_int_equal(atomic_load(&rec.status), RAY_ESHUTDOWN);
  assert_int_equal(atomic_load(&rec.on_main), 0);
}

/* ---- shutdown and init from inside the library's own calls -------------- */

static atomic_int g_dtor_shutdown_rc, g_dtor_init_rc, g_dtor_calls;

static void dtor_calls_lifecycle(void *state) {
  (void)state;
  atomic_fetch_add(&g_dtor_calls, 1);
  atomic_store(&g_dtor_shutdown_rc, ray_shutdown());
  atomic_store(&g_dtor_init_rc, ray_init(NULL));
}

static const ray_method_def_t k_noop_methods[] = {{"noop", rt_fn_one, rt_t_i64, 1}};

/* An actor destructor that runs during ray_shutdown (on the caller's
 * thread, inside the shutdown) and calls ray_shutdown and ray_init: both
 * refuse with RAY_EBUSY instead of deadlocking on the lifecycle lock. */
static void test_lifecycle_from_destructor_during_shutdown(void **state) {
  (void)state;
  clear_env();
  rt_begin();
  atomic_store(&g_dtor_calls, 0);
  atomic_store(&g_dtor_shutdown_rc, 1);
  atomic_store(&g_dtor_init_rc, 1);
  static const ray_actor_class_t cls = {"lifecycle-dtor", NULL, dtor_calls_lifecycle,
                                        k_noop_methods, 1};
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.detached = true; /* kept until shutdown */
  ray_actor_t a;
  assert_rc(ray_actor_create(&cls, NULL, 0, &o, &a), 0);
  ray_ref_t r;
  assert_rc(ray_actor_call(a, "noop", NULL, 0, NULL, &r), 0);
  int64_t v = 0;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_actor_release(a), 0);
  rt_end();
  assert_int_equal(atomic_load(&g_dtor_calls), 1);
  assert_rc(atomic_load(&g_dtor_shutdown_rc), RAY_EBUSY);
  assert_rc(atomic_load(&g_dtor_init_rc), RAY_EBUSY);
}

/* A task calling ray_init gets RAY_EBUSY (a library thread). */
static int fn_init_in_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_i64(ctx, 0, ray_init(NULL));
}

static void test_init_from_task_is_busy(void **state) {
  (void)state;
  clear_env();
  rt_begin();
  ray_function_t f;
  assert_rc(ray_function_register("init-in-task", fn_init_in_task, NULL, rt_t_i64, 1, &f), 0);
  ray_ref_t r;
  assert_rc(ray_task_submit(f, NULL, 0, NULL, &r), 0);
  int64_t v = 0;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_rc((int)v, RAY_EBUSY);
  assert_rc(ray_ref_release(r), 0);
  rt_end();
}

/* A callback that runs inside a public call on the caller's own thread:
 * the free function of an owned buffer runs inside the ray_ref_release that
 * drops the last reference. ray_shutdown there would free the runtime under
 * that call: RAY_EBUSY. */
static atomic_int g_free_shutdown_rc;

static void free_calls_shutdown(void *p, void *arg) {
  (void)arg;
  atomic_store(&g_free_shutdown_rc, ray_shutdown());
  free(p);
}

static void test_shutdown_from_free_fn_is_busy(void **state) {
  (void)state;
  clear_env();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.enable_spilling = false;
  rt_begin_cfg(&cfg);
  atomic_store(&g_free_shutdown_rc, 1);
  void *p = malloc(64);
  assert_non_null(p);
  ray_ref_t r;
  assert_rc(ray_put_owned(p, 64, free_calls_shutdown, NULL, &r), 0);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(atomic_load(&g_free_shutdown_rc), RAY_EBUSY);
  assert_true(ray_is_initialized());
  rt_end();
}

/* ---- calls racing with shutdown ------------------------------------------ */

/* Threads keep submitting tasks, calling an actor, putting and getting
 * while the main thread shuts the runtime down. Every call returns 0 or a
 * documented code (never a crash: ASan, TSan and valgrind run this too). */
typedef struct racer_s {
  uv_thread_t th;
  ray_function_t fn;
  ray_actor_t actor;
  atomic_int *go;
  atomic_long ops;
  atomic_int bad_rc;
} racer_t;

static bool race_rc_ok(int rc) {
  return rc == 0 || rc == RAY_ENOTINIT || rc == RAY_ESHUTDOWN || rc == RAY_ENOTFOUND ||
         rc == RAY_EACTORDIED;
}

static void racer_main(void *arg) {
  racer_t *rc_ = arg;
  while (atomic_load(rc_->go) == 0) {
  }
  for (long i = 0;; i++) {
    ray_ref_t r;
    int rc;
    switch (i % 4) {
      case 0:
        rc = ray_task_submit(rc_->fn, NULL, 0, NULL, &r);
        break;
      case 1:
        rc = ray_actor_call(rc_->actor, "noop", NULL, 0, NULL, &r);
        break;
      case 2:
        rc = ray_put("racing", 6, &r);
        break;
      default:
        rc = ray_put_i64(i, &r);
        break;
    }
    if (rc == 0) {
      int64_t v;
      ray_buf_t b;
      int g = i % 4 == 2 ? ray_get(r, 0, &b) : ray_get_i64(r, 1, &v);
      if (g == 0 && i % 4 == 2) ray_buf_release(&b);
      if (!race_rc_ok(g) && g != RAY_ETIMEDOUT) atomic_store(&rc_->bad_rc, g);
      int rel = ray_ref_release(r);
      if (!race_rc_ok(rel)) atomic_store(&rc_->bad_rc, rel);
    } else if (!race_rc_ok(rc)) {
      atomic_store(&rc_->bad_rc, rc);
    }
    atomic_fetch_add(&rc_->ops, 1);
    if (rc == RAY_ENOTINIT) break; /* the runtime is gone */
  }
}

static void test_calls_racing_shutdown(void **state) {
  (void)state;
  clear_env();
  enum { RACERS = 3 };
  const int rounds = rt_iters(20, 3);
  for (int round = 0; round < rounds; round++) {
    rt_begin();
    ray_function_t f;
    assert_rc(ray_function_register("race-one", rt_fn_one, NULL, rt_t_i64, 1, &f), 0);
    static const ray_actor_class_t cls = {"race-actor", NULL, NULL, k_noop_methods, 1};
    ray_actor_t a;
    assert_rc(ray_actor_create(&cls, NULL, 0, NULL, &a), 0);
    atomic_int go;
    atomic_init(&go, 0);
    racer_t racers[RACERS];
    for (int i = 0; i < RACERS; i++) {
      racers[i].fn = f;
      racers[i].actor = a;
      racers[i].go = &go;
      atomic_init(&racers[i].ops, 0);
      atomic_init(&racers[i].bad_rc, 0);
      assert_int_equal(uv_thread_create(&racers[i].th, racer_main, &racers[i]), 0);
    }
    atomic_store(&go, 1);
    /* Let every racer get going (wait on their progress, not on a clock). */
    for (int i = 0; i < RACERS; i++)
      while (atomic_load(&racers[i].ops) < 100 + round * 50) sched_yield();
    assert_rc(ray_shutdown(), 0);
    for (int i = 0; i < RACERS; i++) {
      assert_int_equal(uv_thread_join(&racers[i].th), 0);
      assert_rc(atomic_load(&racers[i].bad_rc), 0);
    }
    assert_int_equal(ray__threads_alive(), 0);
    rt_assert_no_leaks();
  }
}

/* A submission that passed its `stopping` check just before ray_shutdown
 * set the flag, held there by the test hook until shutdown reaches one of
 * two points: shutdown must wait for it (RAY__AT_CLOSE_WAIT) before it
 * drains and frees the worker queues. Before the fix shutdown went on, and
 * the held call queued its task only after the queues were freed
 * (RAY__AT_SCHED_FREED): uv_mutex_lock on a destroyed mutex aborted, one
 * run in three under load in test_calls_racing_shutdown. */
enum { HELD_IDLE, HELD_ARMED, HELD_WAITING, HELD_RELEASED };
static atomic_int g_held;
static atomic_int g_released_at;

static void hold_admitted_hook(int point, void *arg) {
  (void)arg;
  if (point == RAY__AT_SUBMIT_ADMITTED) {
    int armed = HELD_ARMED;
    if (!atomic_compare_exchange_strong(&g_held, &armed, HELD_WAITING)) return;
    while (atomic_load(&g_held) != HELD_RELEASED) sched_yield();
  } else if (point == RAY__AT_CLOSE_WAIT || point == RAY__AT_SCHED_FREED) {
    int waiting = HELD_WAITING;
    if (atomic_compare_exchange_strong(&g_held, &waiting, HELD_RELEASED))
      atomic_store(&g_released_at, point);
  }
}

typedef struct {
  ray_function_t fn;
  bool actor_call;
  ray_actor_t actor;
  int rc;
  uv_thread_t th;
} held_t;

static void held_main(void *arg) {
  held_t *h = arg;
  ray_ref_t r = RAY_REF_NIL;
  atomic_store(&g_held, HELD_ARMED);
  if (!h->actor_call)
    h->rc = ray_task_submit(h->fn, NULL, 0, NULL, &r);
  else
    h->rc = ray_actor_call(h->actor, "noop", NULL, 0, NULL, &r);
}

static void run_held_submission(bool actor_call) {
  clear_env();
  rt_begin();
  held_t h = {.actor_call = actor_call, .rc = -1};
  assert_rc(ray_function_register("held-one", rt_fn_one, NULL, rt_t_i64, 1, &h.fn), 0);
  if (actor_call) {
    static const ray_actor_class_t cls = {"held-actor", NULL, NULL, k_noop_methods, 1};
    assert_rc(ray_actor_create(&cls, NULL, 0, NULL, &h.actor), 0);
    assert_rc(ray__quiesce(10000), 0); /* constructed: the call goes to the queue */
  }
  atomic_store(&g_held, HELD_IDLE);
  atomic_store(&g_released_at, 0);
  ray__hook_set(hold_admitted_hook);
  assert_int_equal(uv_thread_create(&h.th, held_main, &h), 0);
  while (atomic_load(&g_held) != HELD_WAITING) sched_yield();
  assert_rc(ray_shutdown(), 0);
  assert_int_equal(uv_thread_join(&h.th), 0);
  ray__hook_set(NULL);
  assert_int_equal(atomic_load(&g_released_at), RAY__AT_CLOSE_WAIT);
  assert_rc(h.rc, 0); /* admitted before the flag; its result failed or dropped */
  assert_int_equal(ray__threads_alive(), 0);
  rt_assert_no_leaks();
}

static void test_submission_held_across_shutdown(void **state) {
  (void)state;
  run_held_submission(false);
}

static void test_actor_call_held_across_shutdown(void **state) {
  (void)state;
  run_held_submission(true);
}

/* ---- thread exit (thread.c) ---------------------------------------------- */

static atomic_int g_exit_first, g_exit_twice, g_exit_api_fail;
static _Thread_local ray__thread_exit_t t_exit_first, t_exit_twice;

/* A put, a get and the releases: takes the thread's guard record and a
 * view slot, both handed back by their own exit hooks. Returns the first
 * failing code, or 0. */
static int use_api(void) {
  ray_ref_t r;
  ray_buf_t b;
  int rc = ray_put("x", 1, &r);
  if (rc != 0) return rc;
  rc = ray_get(r, 0, &b);
  if (rc == 0) ray_buf_release(&b);
  int rc2 = ray_ref_release(r);
  return rc != 0 ? rc : rc2;
}

static void on_exit_twice(ray__thread_exit_t *h) {
  (void)h;
  atomic_fetch_add(&g_exit_twice, 1);
}

/* Registered before the thread's first public call, so it runs after the
 * guard's and the view cache's hooks: its calls take a record and a slot
 * again (hooks registering again), and registering itself again makes it
 * run in the system's next round too. */
static void on_exit_first(ray__thread_exit_t *h) {
  int rc = use_api();
  if (rc != 0) atomic_store(&g_exit_api_fail, rc);
  if (atomic_fetch_add(&g_exit_first, 1) == 0 && ray__thread_at_exit(h) != 0)
    atomic_store(&g_exit_api_fail, -1);
}

static void exit_thread_main(void *arg) {
  atomic_int *fail = arg;
  t_exit_first.fn = on_exit_first;
  t_exit_twice.fn = on_exit_twice;
  int rc = ray__thread_at_exit(&t_exit_first);
  if (rc == 0) rc = ray__thread_at_exit(&t_exit_twice);
  if (rc == 0) rc = ray__thread_at_exit(&t_exit_twice); /* armed: a no-op */
  if (rc == 0) rc = use_api();
  atomic_store(fail, rc);
}

static void test_thread_exit_hooks(void **state) {
  (void)state;
  clear_env();
  rt_begin();
  for (int round = 0; round < 2; round++) { /* the second thread reuses what the first gave back */
    atomic_store(&g_exit_first, 0);
    atomic_store(&g_exit_twice, 0);
    atomic_store(&g_exit_api_fail, 0);
    atomic_int fail = -1;
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, exit_thread_main, &fail), 0);
    assert_int_equal(uv_thread_join(&th), 0); /* every hook has run once join returns */
    assert_rc(atomic_load(&fail), 0);
    assert_int_equal(atomic_load(&g_exit_first), 2);
    assert_int_equal(atomic_load(&g_exit_twice), 1);
    assert_rc(atomic_load(&g_exit_api_fail), 0);
  }
  rt_end();
}

/* The free function of a spilled owned buffer runs on the spiller thread:
 * 7 x 128 KiB fit in the 1 MiB store without a put having to spill, but
 * pass the spiller's high mark (80%), so the background spiller alone spills
 * down to its low mark (60%) and frees the buffers it took. There (and in
 * the final release on the caller's thread) ray_shutdown is RAY_EBUSY and
 * ray_init fails: the spiller's role refuses them (before, the spiller
 * counted as a host thread, and ray_shutdown from it went on to join its
 * own thread: a hang); inside a release the API guard does. */
enum { SPILL_BUFS = 7, SPILL_BUF_SIZE = 128 * 1024 };
static atomic_int g_spill_free_calls;
static atomic_int g_spill_free_bad;
static atomic_int g_spill_free_on_spiller;

static void free_calls_lifecycle(void *p, void *arg) {
  (void)arg;
  /* ray_init may also say the runtime is up (inside a put or a release on
   * the caller's thread); it must never start one or succeed. */
  int rc1 = ray_shutdown(), rc2 = ray_init(NULL);
  if (rc1 != RAY_EBUSY || rc2 == 0) atomic_fetch_add(&g_spill_free_bad, 1);
  atomic_fetch_add(&g_spill_free_calls, 1);
  if (ray__thread_role == RAY__ROLE_SPILLER) atomic_fetch_add(&g_spill_free_on_spiller, 1);
  free(p);
}

static void test_lifecycle_from_spilled_free_fn_is_busy(void **state) {
  (void)state;
  clear_env();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.object_store_memory = 1024 * 1024;
  cfg.store_full_timeout_ms = 10000;
  rt_begin_cfg(&cfg);
  atomic_store(&g_spill_free_calls, 0);
  atomic_store(&g_spill_free_bad, 0);
  atomic_store(&g_spill_free_on_spiller, 0);
  ray_ref_t refs[SPILL_BUFS];
  for (int i = 0; i < SPILL_BUFS; i++) {
    void *p = calloc(1, SPILL_BUF_SIZE);
    assert_non_null(p);
    assert_rc(ray_put_owned(p, SPILL_BUF_SIZE, free_calls_lifecycle, NULL, &refs[i]), 0);
  }
  /* One more reservation sees the store past the high mark and kicks the
   * spiller (the kick is checked as a put reserves). */
  static const char more[65536]; /* more than a shard keeps in hand */
  ray_ref_t extra;
  assert_rc(ray_put(more, sizeof more, &extra), 0);
  assert_rc(ray__quiesce(60000), 0); /* the spiller's deferred frees are done */
  assert_true(atomic_load(&g_spill_free_on_spiller) > 0);
  assert_true(rt_stats().spill_count > 0);
  assert_true(atomic_load(&g_spill_free_calls) > 0); /* ...by the spiller, nobody else */
  assert_rc(ray_ref_release_batch(refs, SPILL_BUFS), 0);
  assert_rc(ray_ref_release(extra), 0);
  assert_int_equal(atomic_load(&g_spill_free_calls), SPILL_BUFS);
  assert_int_equal(atomic_load(&g_spill_free_bad), 0);
  rt_end();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_calls_before_init),
    cmocka_unit_test(test_config_defaults),
    cmocka_unit_test(test_config_env_overrides),
    cmocka_unit_test(test_config_env_invalid),
    cmocka_unit_test(test_spin_settings_zero),
    cmocka_unit_test(test_init_bad_env_values),
    cmocka_unit_test(test_init_validation),
    cmocka_unit_test(test_init_valid_edges),
    cmocka_unit_test(test_double_init),
    cmocka_unit_test(test_concurrent_init),
    cmocka_unit_test(test_calls_after_shutdown),
    cmocka_unit_test(test_reinit_repeatedly),
    cmocka_unit_test(test_is_initialized),
    cmocka_unit_test(test_stats),
    cmocka_unit_test(test_version),
    cmocka_unit_test(test_shutdown_from_worker_is_busy),
    cmocka_unit_test(test_shutdown_from_loop_is_busy),
    cmocka_unit_test(test_shutdown_frees_everything),
    cmocka_unit_test(test_lifecycle_from_destructor_during_shutdown),
    cmocka_unit_test(test_init_from_task_is_busy),
    cmocka_unit_test(test_shutdown_from_free_fn_is_busy),
    cmocka_unit_test(test_lifecycle_from_spilled_free_fn_is_busy),
    cmocka_unit_test(test_calls_racing_shutdown),
    cmocka_unit_test(test_submission_held_across_shutdown),
    cmocka_unit_test(test_actor_call_held_across_shutdown),
    cmocka_unit_test(test_thread_exit_hooks),
};

RT_MAIN(tests)
