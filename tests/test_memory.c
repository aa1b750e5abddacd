/* test_memory.c - memory management through the public API: configuration
 * validation (calls and environment), batch retain/release, the ray_stats
 * counters, and churn (1,000,000 put/get/release cycles, churn while
 * spilling, and 1,000,000 tasks end with an empty store).
 *
 * The other memory programs: the store's capacity and the store-full code
 * in test_capacity.c; spill directories and tasks with spilled objects in
 * test_spill.c; refs inside objects and the out-of-memory runs of the
 * msgpack-with-refs paths in test_nested_refs.c.
 *
 * Helpers, task functions and their state are in memory_util.h; functions
 * run on worker threads and record failed checks into g_errs (TC), asserted
 * after each runtime is shut down. Nothing sleeps, and nothing asserts on
 * time. */
#define _POSIX_C_SOURCE 200809L
#include "memory_util.h"

/* ================================================================================
 * Configuration
 * ================================================================================ */

static void test_config_validation(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  ray_config_t cfg;
  assert_rc(ray_config_init(&cfg), 0);
  assert_true(cfg.object_store_memory > 0);
  assert_true(cfg.enable_spilling);
  assert_null(cfg.spill_dir);
  assert_true(cfg.store_full_timeout_ms >= 0);

  rt_config(&cfg);
  cfg.object_store_memory = 0;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  rt_config(&cfg);
  cfg.store_full_timeout_ms = -1;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  rt_config(&cfg);
  cfg.store_full_timeout_ms = INT64_MIN;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  rt_config(&cfg);
  cfg.spill_dir = "";
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);

  /* The edges that are valid: capacity 1 byte, a zero wait. */
  ray__alloc_track(true);
  rt_config(&cfg);
  cfg.object_store_memory = 1;
  cfg.store_full_timeout_ms = 0;
  assert_rc(ray_init(&cfg), 0);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.object_store_memory, 1);
  ray_ref_t r, r2, tmp;
  assert_rc(ray_put("x", 1, &r), 0);
  assert_rc(ray_put("yz", 2, &tmp), RAY_ESTOREFULL); /* larger than the store */
  assert_rc(ray_put("y", 1, &tmp), RAY_ESTOREFULL);  /* full, inline: cannot spill */
  assert_rc(ray_put(NULL, 0, &r2), 0);               /* empty objects take no memory */
  rt_release(r);
  rt_release(r2);
  rt_assert_store_empty();
  rt_end();
}

static void test_config_env(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  ray_config_t cfg;
  env_save_t e;
  static const char *const bad_spilling[] = {"2", "-1", "yes", "01x", "true", "10"};
  for (size_t i = 0; i < sizeof bad_spilling / sizeof bad_spilling[0]; i++) {
    env_set(&e, "RAY_ENABLE_SPILLING", bad_spilling[i]);
    int rc = ray_config_init(&cfg);
    if (rc != RAY_EINVAL) print_error("RAY_ENABLE_SPILLING=%s\n", bad_spilling[i]);
    assert_rc(rc, RAY_EINVAL);
    assert_true(cfg.enable_spilling); /* the default stays */
    assert_rc(ray_init(NULL), RAY_EINVAL);
    env_restore(&e);
  }
  assert_false(ray_is_initialized());

  env_set(&e, "RAY_ENABLE_SPILLING", "0");
  assert_rc(ray_config_init(&cfg), 0);
  assert_false(cfg.enable_spilling);
  env_restore(&e);
  env_set(&e, "RAY_ENABLE_SPILLING", "1");
  assert_rc(ray_config_init(&cfg), 0);
  assert_true(cfg.enable_spilling);
  env_restore(&e);

  env_set(&e, "RAY_OBJECT_STORE_MEMORY", "0");
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  env_restore(&e);
  env_set(&e, "RAY_OBJECT_STORE_MEMORY", "12345");
  assert_rc(ray_config_init(&cfg), 0);
  assert_true(cfg.object_store_memory == 12345);
  env_restore(&e);

  env_set(&e, "RAY_STORE_FULL_TIMEOUT_MS", "-5");
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  env_restore(&e);
  env_set(&e, "RAY_STORE_FULL_TIMEOUT_MS", "77");
  assert_rc(ray_config_init(&cfg), 0);
  assert_true(cfg.store_full_timeout_ms == 77);
  env_restore(&e);

  char dir[64];
  make_tmpdir(dir, sizeof dir);
  env_set(&e, "RAY_SPILL_DIR", dir);
  assert_rc(ray_config_init(&cfg), 0);
  assert_non_null(cfg.spill_dir);
  assert_string_equal(cfg.spill_dir, dir);
  /* And it is used (objects of 60% of the store: see test_spill_dir_given). */
  cfg.num_workers = 2;
  cfg.object_store_memory = 1 * MiB;
  m_begin_cfg(&cfg);
  env_restore(&e);
  ray_ref_t refs[3];
  for (int i = 0; i < 3; i++) refs[i] = put_pat(BIG_OBJ, (uint64_t)i);
  assert_int_equal(rt_stats().spill_count, 2);
  assert_int_equal(dir_count(dir, "", ".seg"), 2);
  for (int i = 0; i < 3; i++) assert_pat(refs[i], BIG_OBJ, (uint64_t)i);
  for (int i = 0; i < 3; i++) rt_release(refs[i]);
  assert_int_equal(dir_count(dir, "", ""), 0);
  m_end();
  assert_int_equal(rmdir(dir), 0);
}

/* ================================================================================
 * Batch retain / release
 * ================================================================================ */

/* Objects spread over several shards (ids come in blocks of 1024 per shard). */
static void spread_refs(ray_ref_t *out, int n) {
  enum { SPAN = 4100 };
  static ray_ref_t all[SPAN];
  for (int i = 0; i < SPAN; i++) assert_rc(ray_put(&i, sizeof i, &all[i]), 0);
  bool keep[SPAN] = {false};
  for (int i = 0; i < n; i++) {
    int k = (int)((long)i * (SPAN - 1) / (n > 1 ? n - 1 : 1));
    keep[k] = true;
    out[i] = all[k];
  }
  for (int i = 0; i < SPAN; i++)
    if (!keep[i]) rt_release(all[i]);
}

static void test_retain_batch_all_or_nothing(void **state) {
  (void)state;
  m_begin(64 * MiB, 1000);
  enum { N = 9 };
  ray_ref_t unknown = {UINT64_MAX - 3, RAY_TYPE_BYTES};
  for (int pos = 0; pos <= N; pos++) {
    for (int kind = 0; kind < 2; kind++) {
      ray_ref_t refs[N];
      spread_refs(refs, N);
      ray_ref_t bad = unknown;
      if (kind == 1) { /* a released id next to a known one (same shard) */
        ray_ref_t tmp;
        assert_rc(ray_put("r", 1, &tmp), 0);
        rt_release(tmp);
        bad = tmp;
      }
      ray_ref_t set[N + 2];
      int k = 0;
      for (int i = 0; i < N; i++) {
        if (i == pos) set[k++] = bad;
        set[k++] = refs[i];
      }
      if (pos == N) set[k++] = bad;
      set[k++] = refs[0]; /* a duplicate */
      assert_int_equal(k, N + 2);
      assert_rc(ray_ref_retain_batch(set, (size_t)k), RAY_ENOTFOUND);
      /* Nothing was retained: one release frees each. */
      ray_stats_t s = rt_stats();
      assert_int_equal(s.objects, N);
      for (int i = 0; i < N; i++) {
        rt_release(refs[i]);
        assert_gone(refs[i]);
      }
      rt_assert_store_empty();
    }
  }
  /* Success retains every one, duplicates counted. */
  ray_ref_t refs[N];
  spread_refs(refs, N);
  ray_ref_t set[N + 1];
  memcpy(set, refs, sizeof refs);
  set[N] = refs[3];
  assert_rc(ray_ref_retain_batch(set, N + 1), 0);
  assert_rc(ray_ref_release_batch(refs, N), 0); /* one left each, two on refs[3] */
  assert_int_equal(rt_stats().objects, N);
  assert_rc(ray_ref_release_batch(refs, N), 0);
  assert_int_equal(rt_stats().objects, 1);
  rt_release(refs[3]);
  rt_assert_store_empty();
  m_end();
}

static void test_release_batch_unknown(void **state) {
  (void)state;
  m_begin(64 * MiB, 1000);
  enum { N = 9 };
  ray_ref_t unknown = {UINT64_MAX - 3, RAY_TYPE_BYTES};
  for (int pos = 0; pos <= N; pos += 3) {
    ray_ref_t refs[N];
    spread_refs(refs, N);
    assert_rc(ray_ref_retain_batch(refs, N), 0); /* two references each */
    ray_ref_t set[N + 1];
    int k = 0;
    for (int i = 0; i < N; i++) {
      if (i == pos) set[k++] = unknown;
      set[k++] = refs[i];
    }
    if (pos == N) set[k++] = unknown;
    assert_rc(ray_ref_release_batch(set, (size_t)k), RAY_ENOTFOUND);
    assert_int_equal(rt_stats().objects, N); /* one reference left each */
    assert_rc(ray_ref_release_batch(set, (size_t)k), RAY_ENOTFOUND);
    for (int i = 0; i < N; i++) assert_gone(refs[i]);
    rt_assert_store_empty();
  }
  /* Duplicates release twice. */
  ray_ref_t a = put_pat(10, 1);
  assert_rc(ray_ref_retain(a), 0);
  ray_ref_t two[3] = {a, a, unknown};
  assert_rc(ray_ref_release_batch(two, 3), RAY_ENOTFOUND);
  assert_gone(a);
  assert_rc(ray_ref_release_batch(two, 2), RAY_ENOTFOUND);
  assert_rc(ray_ref_release_batch(NULL, 0), 0);
  assert_rc(ray_ref_release_batch(NULL, 1), RAY_EINVAL);
  assert_rc(ray_ref_retain_batch(NULL, 0), 0);
  assert_rc(ray_ref_retain_batch(NULL, 1), RAY_EINVAL);
  rt_assert_store_empty();
  m_end();
}

/* ================================================================================
 * Statistics
 * ================================================================================ */

static int counter_ctor(ray_task_ctx_t *ctx, void **state) {
  (void)ctx;
  *state = calloc(1, sizeof(int64_t));
  return *state != NULL ? 0 : RAY_ENOMEM;
}

static int m_bump(ray_task_ctx_t *ctx, void *state) {
  int64_t *v = state;
  return ray_return_i64(ctx, 0, ++*v);
}

static int m_fail(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_fail(ctx, RAY_ETASK, "method fails");
}

static const ray_method_def_t k_counter_methods[] = {{"bump", m_bump, rt_t_i64, 1},
                                                     {"fail", m_fail, rt_t_i64, 1}};
static const ray_actor_class_t k_counter = {"MemCounter", counter_ctor, free, k_counter_methods, 2};

static void test_stats_counters(void **state) {
  (void)state;
  ray_config_t cfg;
  m_config(&cfg, 64 * MiB, 1000);
  cfg.num_workers = 1;
  m_begin_cfg(&cfg);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  assert_int_equal(s.objects_created, 0);
  assert_int_equal(s.objects_freed, 0);
  assert_int_equal(s.bytes_in_memory_high_water, 0);
  assert_int_equal(s.bytes_spilled, 0);
  assert_int_equal(s.bytes_spilled_total, 0);
  assert_int_equal(s.spill_count, 0);
  assert_int_equal(s.restore_count, 0);
  assert_int_equal(s.tasks_submitted, 0);
  assert_int_equal(s.tasks_finished, 0);
  assert_int_equal(s.tasks_failed, 0);
  assert_int_equal(s.actors_alive, 0);
  assert_true(s.object_store_memory == 64 * MiB);
  assert_int_equal(s.num_workers, 1);

  /* Objects and bytes. */
  ray_ref_t r1 = put_pat(5000, 1), r2 = put_pat(10, 2);
  s = rt_stats();
  assert_int_equal(s.objects, 2);
  assert_int_equal(s.bytes_in_memory, 5010);
  assert_int_equal(s.objects_created, 2);
  assert_true(s.bytes_in_memory_high_water >= 5010);
  rt_release(r1);
  s = rt_stats();
  assert_int_equal(s.objects, 1);
  assert_int_equal(s.bytes_in_memory, 10);
  assert_int_equal(s.objects_freed, 1);
  rt_release(r2);

  /* Tasks: a known mix on one worker. */
  ray_function_t fblock = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  ray_function_t finc = rt_register("inc", rt_fn_inc, NULL, rt_t_i64, 1);
  ray_function_t ffail = rt_register("fail", fn_fail, NULL, rt_t_i64, 1);
  ray_ref_t blk = rt_submit(fblock, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  ray_ref_t ok[5], bad[3];
  for (int i = 0; i < 5; i++) {
    ray_arg_t a = ray_arg_i64(i);
    ok[i] = rt_submit(finc, &a, 1, NULL);
  }
  for (int i = 0; i < 3; i++) bad[i] = rt_submit(ffail, NULL, 0, NULL);
  ray_arg_t d = ray_arg_ref(bad[0]);
  ray_ref_t dep = rt_submit(finc, &d, 1, NULL);
  ray_arg_t c0 = ray_arg_i64(0);
  ray_ref_t cancelled = rt_submit(finc, &c0, 1, NULL);
  assert_rc(ray_cancel(cancelled), 0);
  ray_ref_t none;
  assert_rc(ray_task_submit(finc, NULL, RAY_MAX_ARGS + 1, NULL, &none), RAY_EINVAL);
  /* Actor calls count as tasks; constructors do not. */
  ray_actor_t act[3];
  for (int i = 0; i < 3; i++) assert_rc(ray_actor_create(&k_counter, NULL, 0, NULL, &act[i]), 0);
  assert_int_equal(rt_stats().actors_alive, 3);
  ray_ref_t calls[4];
  for (int i = 0; i < 3; i++)
    assert_rc(ray_actor_call(act[i], "bump", NULL, 0, NULL, &calls[i]), 0);
  assert_rc(ray_actor_call(act[0], "fail", NULL, 0, NULL, &calls[3]), 0);
  s = rt_stats();
  assert_int_equal(s.tasks_submitted, 1 + 5 + 3 + 1 + 1 + 4);
  assert_int_equal(s.tasks_finished, 0);
  assert_int_equal(s.tasks_failed, 0);
  rt_latch_signal(&g_go);
  assert_int_equal(rt_get_i64(blk), 1);
  for (int i = 0; i < 5; i++) assert_int_equal(rt_get_i64(ok[i]), i + 1);
  ray_buf_t b;
  for (int i = 0; i < 3; i++) assert_rc(ray_get(bad[i], RAY_TIMEOUT_INFINITE, &b), RAY_ETASK);
  assert_rc(ray_get(dep, RAY_TIMEOUT_INFINITE, &b), RAY_EDEPFAILED);
  assert_rc(ray_get(cancelled, RAY_TIMEOUT_INFINITE, &b), RAY_ECANCELED);
  for (int i = 0; i < 3; i++) assert_int_equal(rt_get_i64(calls[i]), 1);
  assert_rc(ray_get(calls[3], RAY_TIMEOUT_INFINITE, &b), RAY_ETASK);
  assert_rc(ray__quiesce(60000), 0); /* every task has finished */
  s = rt_stats();
  const uint64_t total = 1 + 5 + 3 + 1 + 1 + 4;
  assert_int_equal(s.tasks_submitted, total);
  assert_int_equal(s.tasks_finished, total);
  assert_int_equal(s.tasks_failed, 3 + 1 + 1 + 1); /* failed, dependent, cancelled, method */
  assert_int_equal(s.actors_alive, 3);

  /* Actors: released (idle) and killed ones are no longer alive. */
  assert_rc(ray_actor_release(act[1]), 0);
  assert_rc(ray__quiesce(60000), 0); /* its destructor runs on a worker */
  assert_int_equal(rt_stats().actors_alive, 2);
  assert_rc(ray_actor_kill(act[2], true), 0);
  /* (A killed actor whose handle is still held is still counted here; see
   * the report: not asserted either way.) */
  assert_rc(ray_actor_release(act[2]), 0);
  assert_rc(ray__quiesce(60000), 0);
  assert_int_equal(rt_stats().actors_alive, 1);

  rt_release(blk);
  for (int i = 0; i < 5; i++) rt_release(ok[i]);
  for (int i = 0; i < 3; i++) rt_release(bad[i]);
  rt_release(dep);
  rt_release(cancelled);
  for (int i = 0; i < 4; i++) rt_release(calls[i]);
  rt_assert_store_empty();
  assert_rc(ray_stats(NULL), RAY_EINVAL);
  m_end();
  ray_stats_t z;
  assert_rc(ray_stats(&z), RAY_ENOTINIT);
  (void)act[0];
}

/* ================================================================================
 * Churn
 * ================================================================================ */

/* 1,000,000 put/get/release cycles over a ring of 16 live objects of mixed
 * sizes (inline and not) end with an empty store. */
static void test_churn_put_get(void **state) {
  (void)state;
  m_begin(64 * MiB, 1000);
  const int n = rt_iters(1000000, 100000);
  static const size_t sizes[] = {0, 8, 100, 1024, 1025, 4000, 64, 16};
  enum { RING = 16 };
  ray_ref_t ring[RING];
  size_t rsize[RING];
  int rval[RING];
  unsigned char buf[4000];
  for (int i = 0; i < RING; i++) ring[i].id = 0;
  for (int i = 0; i < n; i++) {
    int slot = i % RING;
    if (ring[slot].id != 0) rt_release(ring[slot]);
    size_t size = sizes[i % 8];
    memset(buf, i & 0xFF, size);
    if (size >= sizeof i) memcpy(buf, &i, sizeof i);
    assert_rc(ray_put(buf, size, &ring[slot]), 0);
    rsize[slot] = size;
    rval[slot] = i;
    int k = (i * 7) % RING;
    if (ring[k].id == 0) continue;
    ray_buf_t b;
    int rc = ray_get(ring[k], 0, &b);
    bool ok = rc == 0 && b.size == rsize[k];
    if (ok && b.size >= sizeof i) {
      int got;
      memcpy(&got, b.data, sizeof got);
      ok = got == rval[k] && ((const unsigned char *)b.data)[b.size - 1] == (rval[k] & 0xFF);
    }
    if (!ok) {
      print_error("cycle %d: get rc %d size %zu want %zu\n", i, rc, b.size, rsize[k]);
      fail();
    }
    ray_buf_release(&b);
  }
  for (int i = 0; i < RING; i++) rt_release(ring[i]);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  assert_true(s.objects_created == (uint64_t)n);
  assert_true(s.objects_freed == (uint64_t)n);
  m_end();
}

/* With spilling: a window of 32 live objects (2.5x the store) churned. */
static void test_churn_spilling(void **state) {
  (void)state;
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  ray_config_t cfg;
  m_config(&cfg, 1 * MiB, 10000);
  cfg.spill_dir = dir;
  m_begin_cfg(&cfg);
  const int n = rt_iters(20000, 2000);
  enum { WIN = 32 };
  obj_t win[WIN];
  memset(win, 0, sizeof win);
  uint64_t rng = 99;
  for (int i = 0; i < n; i++) {
    int slot = i % WIN;
    if (win[slot].ref.id != 0) rt_release(win[slot].ref);
    rng = mix64(rng);
    win[slot].size = 32 * KiB + (size_t)(rng % (96 * KiB));
    win[slot].seed = (uint64_t)i;
    win[slot].ref = put_pat(win[slot].size, win[slot].seed);
    int k = (int)(mix64(rng) % WIN);
    if (win[k].ref.id != 0) assert_pat(win[k].ref, win[k].size, win[k].seed);
  }
  ray_stats_t s = rt_stats();
  assert_true(s.spill_count > 0);
  assert_true(s.restore_count > 0);
  assert_true(s.bytes_in_memory_high_water <= 1 * MiB);
  for (int i = 0; i < WIN; i++) rt_release(win[i].ref);
  rt_assert_store_empty();
  /* The spiller may still be finishing a batch of objects freed meanwhile:
   * the files are checked once it has been joined. */
  m_end();
  assert_int_equal(dir_count(dir, "", ""), 0);
  assert_int_equal(rmdir(dir), 0);
}

/* 1,000,000 tasks (in windows of 1,000; every 8th takes the previous
 * result as a ref argument) end with an empty store. */
static void test_churn_tasks(void **state) {
  (void)state;
  m_begin(64 * MiB, 1000);
  ray_function_t finc = rt_register("inc", rt_fn_inc, NULL, rt_t_i64, 1);
  ray_function_t ffence = rt_register("fence", fn_fence, NULL, rt_t_i64, 1);
  const int n = rt_iters(1000000, 100000);
  enum { WIN = 1000 };
  ray_ref_t res[WIN];
  for (int base = 0; base < n; base += WIN) {
    int m = n - base < WIN ? n - base : WIN;
    for (int j = 0; j < m; j++) {
      ray_arg_t a = (j % 8 == 7) ? ray_arg_ref(res[j - 1]) : ray_arg_i64(base + j);
      res[j] = rt_submit(finc, &a, 1, NULL);
    }
    for (int j = 0; j < m; j++) {
      int64_t want = base + j + 1; /* inc(res[j-1]) = base + j + 1 as well */
      int64_t v = rt_get_i64(res[j]);
      if (v != want) {
        print_error("task %d: %lld, want %lld\n", base + j, (long long)v, (long long)want);
        fail();
      }
    }
    assert_rc(ray_ref_release_batch(res, (size_t)m), 0);
  }
  fence(ffence, 2);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  assert_true(s.tasks_submitted == (uint64_t)n + 2);
  assert_true(s.tasks_finished >= (uint64_t)n);
  assert_int_equal(s.tasks_failed, 0);
  m_end();
}

int main(void) {
  rt_main_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_validation),
      cmocka_unit_test(test_config_env),
      cmocka_unit_test(test_retain_batch_all_or_nothing),
      cmocka_unit_test(test_release_batch_unknown),
      cmocka_unit_test(test_stats_counters),
      cmocka_unit_test(test_churn_put_get),
      cmocka_unit_test(test_churn_spilling),
      cmocka_unit_test(test_churn_tasks),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(g_scratch);
  return rc;
}
