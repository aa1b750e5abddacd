/* test_spill.c - spilling to disk through the public API: spill directories
 * (given, default and removed at shutdown, missing at init or removed
 * after; their files after free and shutdown), damaged spill files
 * (RAY_EIO), task results spilled, tasks reading spilled arguments, an
 * unreferenced result freed, batch gets of spilled objects, and objects
 * of 90% of the store with tasks and restores racing the spiller.
 *
 * Helpers, task functions and their state are in memory_util.h; functions
 * run on worker threads and record failed checks into g_errs (TC), asserted
 * after each runtime is shut down. Nothing sleeps, and nothing asserts on
 * time. */
#define _POSIX_C_SOURCE 200809L
#include "memory_util.h"

/* ================================================================================
 * Spill directories
 * ================================================================================ */

/* A given directory: a file per spilled object, deleted when the object is
 * freed, and at shutdown for the objects still alive; the directory stays. */
static void test_spill_dir_given(void **state) {
  (void)state;
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  char copy[64];
  snprintf(copy, sizeof copy, "%s", dir);
  ray_config_t cfg;
  m_config(&cfg, 1 * MiB, 10000);
  cfg.spill_dir = copy;
  m_begin_cfg(&cfg);
  memset(copy, 'x', sizeof copy - 1); /* the runtime keeps its own copy */
  copy[sizeof copy - 1] = '\0';
  assert_int_equal(dir_count(dir, "", ""), 0);
  enum { N = 6 };
  ray_ref_t refs[N];
  for (int i = 0; i < N; i++) {
    refs[i] = put_pat(BIG_OBJ, (uint64_t)i);
    assert_int_equal(dir_count(dir, "", ""), i);
    assert_int_equal(dir_count(dir, "", ".seg"), i); /* nothing else there */
  }
  ray_stats_t s = rt_stats();
  assert_int_equal(s.spill_count, N - 1);
  assert_true(s.bytes_spilled == (N - 1) * BIG_OBJ);
  assert_true(s.bytes_spilled_total == (N - 1) * BIG_OBJ);
  /* Reading refs[0..N-2] back restores each (spilling the previous one);
   * a restored object keeps its file, so a second spill writes nothing. */
  for (int i = 0; i < N; i++) assert_pat(refs[i], BIG_OBJ, (uint64_t)i);
  assert_int_equal(dir_count(dir, "", ".seg"), N);
  assert_int_equal(rt_stats().restore_count, N);
  /* Each free deletes exactly its own file. */
  for (int i = 0; i < N; i++) {
    rt_release(refs[i]);
    assert_int_equal(dir_count(dir, "", ".seg"), N - 1 - i);
  }
  rt_assert_store_empty();
  /* Again, and shut down with objects still spilled (and a view held). */
  for (int i = 0; i < N; i++) refs[i] = put_pat(BIG_OBJ, 100 + (uint64_t)i);
  assert_int_equal(dir_count(dir, "", ".seg"), N - 1);
  ray_buf_t held;
  assert_rc(ray_get(refs[0], 0, &held), 0); /* restored, its file kept until free */
  assert_int_equal(dir_count(dir, "", ".seg"), N);
  rt_shutdown_clean();
  assert_true(is_dir(dir));
  assert_int_equal(dir_count(dir, "", ""), 0);
  assert_true(pat_check(held.data, BIG_OBJ, 100));
  ray_buf_release(&held);
  rt_assert_no_leaks();
  rt_errs_assert(&g_errs);
  m_latches_destroy();
  assert_int_equal(rmdir(dir), 0);
}

/* The default directory: made under the temp dir at the first spill,
 * removed at shutdown, a fresh one per runtime. TMPDIR points at a private
 * directory to watch it. The second run uses small objects, so the
 * background spiller works too, and only the end state is checked. */
static void test_spill_dir_default_removed(void **state) {
  (void)state;
  char tmp[64];
  make_tmpdir(tmp, sizeof tmp);
  env_save_t e;
  env_set(&e, "TMPDIR", tmp);
  char first[256] = "";
  for (int run = 0; run < 2; run++) {
    ray_config_t cfg;
    m_config(&cfg, 1 * MiB, 10000);
    m_begin_cfg(&cfg);
    size_t size = run == 0 ? BIG_OBJ : 64 * KiB;
    int n = run == 0 ? 4 : 48;
    ray_ref_t refs[48];
    refs[0] = put_pat(size, 0);
    assert_int_equal(dir_count(tmp, "", ""), 0); /* not before the first spill */
    for (int i = 1; i < n; i++) refs[i] = put_pat(size, (uint64_t)i);
    assert_true(rt_stats().spill_count > 0);
    assert_int_equal(dir_count(tmp, "", ""), 1);
    assert_int_equal(dir_count(tmp, "rustyray-spill-", ""), 1);
    char sub[256];
    assert_true(dir_find(tmp, "rustyray-spill-", sub, sizeof sub));
    assert_true(is_dir(sub));
    if (run == 0) {
      assert_int_equal(dir_count(sub, "", ".seg"), n - 1);
      snprintf(first, sizeof first, "%s", sub);
    } else {
      assert_true(strcmp(sub, first) != 0); /* a fresh one */
    }
    for (int i = 0; i < n; i++) assert_pat(refs[i], size, (uint64_t)i);
    for (int i = 0; i < n; i += 2) rt_release(refs[i]); /* half freed, half left */
    m_end();
    assert_int_equal(dir_count(tmp, "", ""), 0);
    assert_false(is_dir(sub));
  }
  env_restore(&e);
  assert_int_equal(rmdir(tmp), 0);
}

/* A damaged, truncated or deleted spill file: the get fails with RAY_EIO
 * (the checksum catches the damage: a wrong byte is never handed out), a
 * task taking the object fails instead of running, and the object can still
 * be released, which deletes its file. */
static void test_spill_file_damaged(void **state) {
  (void)state;
  char dir[64];
  make_tmpdir(dir, sizeof dir);
  ray_config_t cfg;
  m_config(&cfg, 1 * MiB, 10000);
  cfg.spill_dir = dir;
  m_begin_cfg(&cfg);
  ray_function_t fchk = rt_register("check", fn_check, NULL, rt_t_i64, 1);
  log_capture(true);
  for (int how = 0; how < 3; how++) {
    ray_ref_t x = put_pat(BIG_OBJ, 1), y = put_pat(BIG_OBJ, 2); /* x goes to disk */
    assert_int_equal(dir_count(dir, "", ".seg"), 1);
    char path[256];
    assert_true(dir_find(dir, "", path, sizeof path));
    if (how == 0) { /* one byte flipped */
      FILE *f = fopen(path, "r+b");
      assert_non_null(f);
      assert_int_equal(fseek(f, 12345, SEEK_SET), 0);
      int c = fgetc(f);
      assert_true(c != EOF);
      assert_int_equal(fseek(f, 12345, SEEK_SET), 0);
      assert_true(fputc(c ^ 0x10, f) != EOF);
      assert_int_equal(fclose(f), 0);
    } else if (how == 1) {
      assert_int_equal(truncate(path, 1000), 0);
    } else {
      assert_int_equal(unlink(path), 0);
    }
    uint64_t restores = rt_stats().restore_count;
    int logged = atomic_load(&g_log_errors);
    ray_buf_t b;
    rt_garbage(&b, sizeof b);
    assert_rc(ray_get(x, 0, &b), RAY_EIO);
    assert_true(atomic_load(&g_log_errors) > logged); /* and says so */
    rt_assert_buf_zeroed(&b);
    assert_rc(ray_get(x, 0, &b), RAY_EIO); /* and again */
    assert_int_equal(rt_stats().restore_count, restores);
    ray_arg_t a[2] = {ray_arg_ref(x), ray_arg_i64(1)};
    int calls = atomic_load(&g_calls);
    ray_ref_t r = rt_submit(fchk, a, 2, NULL);
    assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), RAY_EDEPFAILED);
    assert_int_equal(atomic_load(&g_calls), calls); /* it did not run */
    rt_release(r);
    assert_pat(y, BIG_OBJ, 2); /* the others are fine */
    assert_int_equal(rt_stats().objects, 2);
    const char *fence_name = how == 0 ? "fence0" : how == 1 ? "fence1" : "fence2";
    fence(rt_register(fence_name, fn_fence, NULL, rt_t_i64, 1), 2);
    rt_release(x);
    rt_release(y);
    assert_int_equal(dir_count(dir, "", ""), 0);
    rt_assert_store_empty();
  }
  m_end();
  log_capture(false);
  assert_int_equal(rmdir(dir), 0);
}

/* A spill directory that does not exist: nothing can be spilled, puts fail
 * with the store-full code, and no object is lost or damaged. */
static void test_spill_dir_missing(void **state) {
  (void)state;
  ray_config_t cfg;
  m_config(&cfg, 1 * MiB, 50);
  /* A spill_dir that does not exist is refused at init (runtime.h)... */
  cfg.spill_dir = "/nonexistent-rustyray-test/spill";
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  assert_false(ray_is_initialized());
  /* ...and one that goes away after init makes every spill fail: puts then
   * find no room and fail as if nothing could be spilled. */
  char dir[] = "/tmp/rustyray_spill_gone_XXXXXX";
  assert_non_null(mkdtemp(dir));
  cfg.spill_dir = dir;
  m_begin_cfg(&cfg);
  assert_int_equal(rmdir(dir), 0);
  log_capture(true);
  ray_ref_t refs[8];
  int n = 0, rc = 0;
  for (; n < 8; n++) {
    rc = ray_put(scratch(200 * KiB, (uint64_t)n), 200 * KiB, &refs[n]);
    if (rc != 0) break;
  }
  assert_rc(rc, RAY_ESTOREFULL);
  assert_int_equal(n, 5);
  assert_true(atomic_load(&g_log_errors) > 0); /* "cannot create a spill file" */
  ray_stats_t s = rt_stats();
  assert_int_equal(s.spill_count, 0);
  assert_int_equal(s.bytes_spilled, 0);
  for (int i = 0; i < n; i++) assert_pat(refs[i], 200 * KiB, (uint64_t)i);
  for (int i = 0; i < n; i++) rt_release(refs[i]);
  rt_assert_store_empty();
  m_end();
  log_capture(false);
}

/* ================================================================================
 * Tasks and spilling
 * ================================================================================ */

/* Results of tasks (copied and owned) spilled by later ones, read back. */
static void test_task_results_spilled(void **state) {
  (void)state;
  const size_t cap = 2 * MiB, size = 256 * KiB;
  enum { N = 40 };
  m_begin(cap, 10000);
  ray_function_t fbig = rt_register("big", fn_big, NULL, rt_t_bytes, 1);
  ray_ref_t res[N];
  for (int i = 0; i < N; i++) {
    ray_arg_t a[3] = {ray_arg_i64(i), ray_arg_i64((int64_t)size), ray_arg_i64(i % 2)};
    res[i] = rt_submit(fbig, a, 3, NULL);
  }
  bool ready[N];
  assert_int_equal(ray_wait(res, N, N, RAY_TIMEOUT_INFINITE, ready), N);
  ray_stats_t s = rt_stats();
  assert_true(s.spill_count > 0);
  assert_true(s.bytes_in_memory_high_water <= cap);
  for (int i = 0; i < N; i++) assert_pat(res[i], size, (uint64_t)i);
  for (int i = N; i-- > 0;) assert_pat(res[i], size, (uint64_t)i);
  s = rt_stats();
  assert_true(s.restore_count > 0);
  assert_true(s.bytes_in_memory_high_water <= cap);
  for (int i = 0; i < N; i++) rt_release(res[i]);
  /* After the quiesce inside: a buffer the background spiller had in hand
   * is freed by the spiller, after the release returned. */
  rt_assert_store_empty();
  assert_int_equal(atomic_load(&g_calls), N / 2); /* each owned buffer freed once */
  m_end();
}

/* Tasks taking spilled objects as ref arguments read the right bytes; a set
 * of arguments larger than the store cannot all be pinned and the task
 * fails instead of waiting forever. */
static void test_task_reads_spilled_args(void **state) {
  (void)state;
  const size_t cap = 1 * MiB;
  m_begin(cap, 50);
  ray_function_t fchk = rt_register("check", fn_check, NULL, rt_t_i64, 1);
  ray_ref_t a = put_pat(256 * KiB, 1);
  ray_ref_t four[4];
  for (int i = 0; i < 4; i++) four[i] = put_pat(200 * KiB, 10 + (uint64_t)i);
  ray_ref_t filler[48];
  for (int i = 0; i < 48; i++) filler[i] = put_pat(64 * KiB, 100 + (uint64_t)i);
  ray_stats_t s = rt_stats();
  assert_true(s.spill_count > 0);
  uint64_t restores = s.restore_count;
  assert_int_equal(restores, 0);

  ray_arg_t args[8] = {ray_arg_ref(a), ray_arg_i64(1)};
  ray_ref_t r = rt_submit(fchk, args, 2, NULL);
  assert_int_equal(rt_get_i64(r), 1);
  rt_release(r);
  assert_true(rt_stats().restore_count >= 1);

  /* Four spilled arguments at once (800 KiB of 1 MiB). */
  for (int i = 0; i < 4; i++) {
    args[2 * i] = ray_arg_ref(four[i]);
    args[2 * i + 1] = ray_arg_i64(10 + i);
  }
  r = rt_submit(fchk, args, 8, NULL);
  assert_int_equal(rt_get_i64(r), 4);
  rt_release(r);

  /* Many tasks reading the same spilled object at once. */
  for (int i = 0; i < 48; i++) rt_release(filler[i]);
  for (int i = 0; i < 48; i++) filler[i] = put_pat(64 * KiB, 200 + (uint64_t)i);
  ray_ref_t many[32];
  args[0] = ray_arg_ref(a);
  args[1] = ray_arg_i64(1);
  for (int i = 0; i < 32; i++) many[i] = rt_submit(fchk, args, 2, NULL);
  for (int i = 0; i < 32; i++) {
    assert_int_equal(rt_get_i64(many[i]), 1);
    rt_release(many[i]);
  }

  /* Arguments that together exceed the store: the task fails. */
  ray_ref_t six[6];
  for (int i = 0; i < 6; i++) six[i] = put_pat(200 * KiB, 20 + (uint64_t)i);
  ray_arg_t args12[12];
  for (int i = 0; i < 6; i++) {
    args12[2 * i] = ray_arg_ref(six[i]);
    args12[2 * i + 1] = ray_arg_i64(20 + i);
  }
  int calls_before = atomic_load(&g_calls);
  r = rt_submit(fchk, args12, 12, NULL);
  ray_buf_t b;
  int rc = ray_get(r, RAY_TIMEOUT_INFINITE, &b);
  if (rc == 0) ray_buf_release(&b);
  assert_true(rc != 0 && rc != RAY_ETIMEDOUT);           /* RAY_EDEPFAILED today ("unreadable") */
  assert_int_equal(atomic_load(&g_calls), calls_before); /* it did not run */
  rt_release(r);
  for (int i = 0; i < 6; i++) assert_pat(six[i], 200 * KiB, 20 + (uint64_t)i); /* intact */

  for (int i = 0; i < 6; i++) rt_release(six[i]);
  for (int i = 0; i < 48; i++) rt_release(filler[i]);
  for (int i = 0; i < 4; i++) rt_release(four[i]);
  rt_release(a);
  fence(rt_register("fence", fn_fence, NULL, rt_t_i64, 1), 2);
  rt_assert_store_empty();
  m_end();
}

/* A pending result nobody references is freed as soon as it is produced;
 * a task holds its ref arguments until it finishes. */
static void test_task_unreferenced_result_freed(void **state) {
  (void)state;
  ray_config_t cfg;
  m_config(&cfg, 4 * MiB, 10000);
  cfg.num_workers = 1;
  m_begin_cfg(&cfg);
  ray_function_t fblock = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  ray_function_t fbig = rt_register("big", fn_big, NULL, rt_t_bytes, 1);
  ray_function_t fchk = rt_register("check", fn_check, NULL, rt_t_i64, 1);
  ray_ref_t blk = rt_submit(fblock, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  ray_arg_t a[3] = {ray_arg_i64(5), ray_arg_i64(512 * 1024), ray_arg_i64(1)};
  ray_ref_t big = rt_submit(fbig, a, 3, NULL);
  ray_ref_t arg = put_pat(300 * KiB, 6);
  ray_arg_t ca[2] = {ray_arg_ref(arg), ray_arg_i64(6)};
  ray_ref_t chk = rt_submit(fchk, ca, 2, NULL);
  rt_release(big);
  rt_release(arg); /* the task holds it */
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 3); /* blk, the argument, chk */
  rt_latch_signal(&g_go);
  assert_int_equal(rt_get_i64(chk), 1);
  assert_int_equal(rt_get_i64(blk), 1);
  rt_release(chk);
  rt_release(blk);
  assert_rc(ray__quiesce(60000), 0);          /* big has run too */
  assert_int_equal(atomic_load(&g_calls), 2); /* fn_check ran; big's buffer was freed */
  rt_assert_store_empty();
  m_end();
}

/* ray_get_batch of spilled objects that together nearly fill the store. */
static void test_get_batch_spilled(void **state) {
  (void)state;
  const size_t cap = 1 * MiB, size = 180 * KiB;
  m_begin(cap, 10000);
  ray_ref_t refs[5];
  for (int i = 0; i < 5; i++) refs[i] = put_pat(size, (uint64_t)i);
  ray_ref_t filler[48];
  for (int i = 0; i < 48; i++) filler[i] = put_pat(64 * KiB, 100 + (uint64_t)i);
  /* ray_wait never reads a payload: spilled objects are ready as they are. */
  bool ready[5];
  assert_int_equal(ray_wait(refs, 5, 5, 0, ready), 5);
  assert_int_equal(rt_stats().restore_count, 0);
  ray_buf_t bufs[5];
  assert_rc(ray_get_batch(refs, 5, 0, bufs), 0);
  for (int i = 0; i < 5; i++) {
    assert_true(bufs[i].size == size);
    assert_true(pat_check(bufs[i].data, size, (uint64_t)i));
  }
  assert_true(rt_stats().restore_count >= 5);
  for (int i = 0; i < 5; i++) ray_buf_release(&bufs[i]);
  for (int i = 0; i < 48; i++) rt_release(filler[i]);
  for (int i = 0; i < 5; i++) rt_release(refs[i]);
  rt_assert_store_empty();
  m_end();
}

/* Objects of 90% of the store: only one fits at a time. Gets, a batch get,
 * tasks and restores racing the background spiller all still get there; a
 * batch of two cannot be pinned at once and fails with the store-full code. */
/* The scalar getters copy a small ready value under the shard lock; a
 * spilled one is not in memory to copy, so they restore it first, as
 * ray_get does. With inline_threshold 0 even an i64 has its own block and
 * is a spill candidate. */
static void test_scalar_get_spilled(void **state) {
  (void)state;
  ray_config_t cfg;
  m_config(&cfg, 1 * MiB, 10000);
  cfg.inline_threshold = 0;
  m_begin_cfg(&cfg);
  ray_ref_t i, f;
  assert_rc(ray_put_i64(-123456789, &i), 0);
  assert_rc(ray_put_f64(2.5, &f), 0);
  ray_ref_t big[2];
  for (int k = 0; k < 2; k++) big[k] = put_pat(BIG_OBJ, (uint64_t)k); /* the second spills */
  assert_true(rt_stats().spill_count >= 1);
  assert_true(rt_stats().bytes_spilled >= 9); /* the scalars went first (least recently used) */
  uint64_t restores = rt_stats().restore_count;
  int64_t v = 0;
  double d = 0;
  assert_rc(ray_get_i64(i, 0, &v), 0);
  assert_rc(ray_get_f64(f, 0, &d), 0);
  assert_true(v == -123456789);
  assert_true(d == 2.5);
  assert_true(rt_stats().restore_count >= restores + 2);
  assert_rc(ray_get_i64(i, 0, &v), 0); /* in memory again: the fast path */
  assert_true(v == -123456789);
  assert_rc(ray_ref_release(i), 0);
  assert_rc(ray_ref_release(f), 0);
  for (int k = 0; k < 2; k++) assert_rc(ray_ref_release(big[k]), 0);
  rt_end();
}

static void test_objects_near_capacity(void **state) {
  (void)state;
  const size_t cap = 1 * MiB, size = cap / 10 * 9;
  m_begin(cap, 50);
  ray_function_t fchk = rt_register("check", fn_check, NULL, rt_t_i64, 1);
  ray_ref_t refs[4];
  for (int i = 0; i < 4; i++) refs[i] = put_pat(size, (uint64_t)i);
  for (int round = 0; round < 3; round++)
    for (int i = 0; i < 4; i++)
      assert_pat(refs[(i + round) % 4], size, (uint64_t)((i + round) % 4));
  ray_buf_t one;
  assert_rc(ray_get_batch(&refs[1], 1, 0, &one), 0);
  assert_true(pat_check(one.data, size, 1));
  ray_buf_release(&one);
  ray_buf_t two[2];
  assert_rc(ray_get_batch(refs, 2, 0, two), RAY_ESTOREFULL);
  rt_assert_buf_zeroed(&two[0]);
  rt_assert_buf_zeroed(&two[1]);
  for (int i = 0; i < 4; i++) {
    ray_arg_t a[2] = {ray_arg_ref(refs[i]), ray_arg_i64(i)};
    ray_ref_t r = rt_submit(fchk, a, 2, NULL);
    assert_int_equal(rt_get_i64(r), 1);
    rt_release(r);
  }
  ray_stats_t s = rt_stats();
  assert_true(s.bytes_in_memory_high_water <= cap);
  assert_true(s.restore_count >= 12);
  for (int i = 0; i < 4; i++) rt_release(refs[i]);
  fence(rt_register("fence", fn_fence, NULL, rt_t_i64, 1), 2);
  rt_assert_store_empty();
  m_end();
}

int main(void) {
  rt_main_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spill_dir_given),
      cmocka_unit_test(test_spill_dir_default_removed),
      cmocka_unit_test(test_spill_file_damaged),
      cmocka_unit_test(test_spill_dir_missing),
      cmocka_unit_test(test_task_results_spilled),
      cmocka_unit_test(test_task_reads_spilled_args),
      cmocka_unit_test(test_task_unreferenced_result_freed),
      cmocka_unit_test(test_get_batch_spilled),
      cmocka_unit_test(test_scalar_get_spilled),
      cmocka_unit_test(test_objects_near_capacity),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(g_scratch);
  return rc;
}
