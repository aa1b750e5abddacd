/* test_host_help.c - a host thread blocked with no deadline in ray_get,
 * ray_get_batch or ray_wait runs the task that produces what it waits for,
 * when that task is still queued (cfg.host_help, on by default), or the
 * actor method call its actor admitted, and nothing else: not unrelated
 * queued work, not the actor's next call, not a constructor, not for a
 * ray_wait that needs fewer than all its refs, not with a deadline, not
 * while
 * the timeline records runs, not with host_help off. And code run that way
 * is code the library runs: ray_init and ray_shutdown refuse it.
 *
 * Setup of every case: one worker, held inside fn_block (tasks_util.h) so
 * that anything submitted after it stays queued. Where the host must not
 * help, the test hook releases the worker when the host parks
 * (RAY__AT_WAIT_PARK), so the wait ends without a timeout or a sleep. */
#define _POSIX_C_SOURCE 200809L
#include "tasks_util.h"

enum { ON_HOST = 1, ON_WORKER = 2 };

/* Where the task `arg` names (an atomic_int) ran; returns 7. */
static int fn_where(ray_task_ctx_t *ctx, void *arg) {
  uv_thread_t self = uv_thread_self();
  atomic_store((atomic_int *)arg, uv_thread_equal(&self, &rt_main_thread) ? ON_HOST : ON_WORKER);
  return ray_return_i64(ctx, 0, 7);
}

static atomic_int g_b_ran, g_c_ran;
static ray_function_t g_fb, g_fc;

/* One worker, held in fn_block; B and C registered. */
static ray_ref_t begin_held(bool host_help, bool timeline) {
  t_reset();
  rt_main_thread = uv_thread_self();
  atomic_store(&g_b_ran, 0);
  atomic_store(&g_c_ran, 0);
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = 1;
  cfg.host_help = host_help;
  cfg.timeline = timeline;
  rt_begin_cfg(&cfg);
  g_fb = rt_register("where_b", fn_where, &g_b_ran, rt_t_i64, 1);
  g_fc = rt_register("where_c", fn_where, &g_c_ran, rt_t_i64, 1);
  ray_function_t fblock = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  ray_ref_t blk = rt_submit(fblock, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1); /* the worker is inside it */
  return blk;
}

static void end_held(ray_ref_t blk) {
  assert_int_equal(rt_get_i64(blk), 1);
  rt_release(blk);
  t_end();
}

/* Release the worker when the host parks instead of helping. */
static void release_on_park(int point, void *arg) {
  (void)arg;
  if (point == RAY__AT_WAIT_PARK) rt_latch_signal(&g_go);
}

static void test_get_runs_queued_producer(void **state) {
  (void)state;
  ray_ref_t blk = begin_held(true, false);
  ray_ref_t c = rt_submit(g_fc, NULL, 0, NULL); /* queued first, not waited for */
  ray_ref_t b = rt_submit(g_fb, NULL, 0, NULL);
  assert_int_equal(rt_get_i64(b), 7); /* the only worker is held: the host ran it */
  assert_int_equal(atomic_load(&g_b_ran), ON_HOST);
  assert_int_equal(atomic_load(&g_c_ran), 0); /* unrelated work stays queued */
  rt_latch_signal(&g_go);
  assert_rc(ray__quiesce(60000), 0);
  assert_int_equal(atomic_load(&g_c_ran), ON_WORKER);
  rt_release(b);
  rt_release(c);
  end_held(blk);
}

static void test_batch_and_wait_run_queued_producers(void **state) {
  (void)state;
  ray_ref_t blk = begin_held(true, false);
  ray_ref_t r[2] = {rt_submit(g_fb, NULL, 0, NULL), rt_submit(g_fc, NULL, 0, NULL)};
  ray_buf_t bufs[2];
  assert_rc(ray_get_batch(r, 2, RAY_TIMEOUT_INFINITE, bufs), 0);
  ray_buf_release(&bufs[0]);
  ray_buf_release(&bufs[1]);
  assert_int_equal(atomic_load(&g_b_ran), ON_HOST);
  assert_int_equal(atomic_load(&g_c_ran), ON_HOST);
  rt_release(r[0]);
  rt_release(r[1]);
  atomic_store(&g_b_ran, 0);
  ray_ref_t w = rt_submit(g_fb, NULL, 0, NULL);
  bool ready = false;
  assert_int_equal(ray_wait(&w, 1, 1, RAY_TIMEOUT_INFINITE, &ready), 1);
  assert_true(ready);
  assert_int_equal(atomic_load(&g_b_ran), ON_HOST);
  rt_release(w);
  rt_latch_signal(&g_go);
  end_held(blk);
}

/* Get r's i64 while the worker is held: the hook releases the worker when
 * the host parks, so the wait ends either way. */
static int64_t get_releasing_on_park(ray_ref_t r, int64_t timeout_ms) {
  ray__hook_set(release_on_park);
  int64_t v = 0;
  int rc = ray_get_i64(r, timeout_ms, &v);
  ray__hook_set(NULL);
  assert_rc(rc, 0);
  rt_release(r);
  return v;
}

/* The host parks and the worker, once released, runs B. */
static void expect_no_help(int64_t timeout_ms) {
  assert_int_equal(get_releasing_on_park(rt_submit(g_fb, NULL, 0, NULL), timeout_ms), 7);
  assert_int_equal(atomic_load(&g_b_ran), ON_WORKER);
}

static void test_no_help_when_off(void **state) {
  (void)state;
  ray_ref_t blk = begin_held(false, false);
  expect_no_help(RAY_TIMEOUT_INFINITE);
  end_held(blk);
}

static void test_no_help_with_deadline(void **state) {
  (void)state;
  ray_ref_t blk = begin_held(true, false);
  expect_no_help(600000); /* a deadline: a run could overshoot it */
  end_held(blk);
}

/* A ray_wait that needs fewer than all its refs may end without the
 * producer it could run: the host leaves it to the workers. */
static void test_no_help_for_partial_wait(void **state) {
  (void)state;
  ray_ref_t blk = begin_held(true, false);
  ray_ref_t r[2];
  r[0] = rt_submit(g_fb, NULL, 0, NULL); /* queued: the only worker is held */
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &r[1]), 0); /* never completes */
  bool ready[2] = {false, false};
  ray__hook_set(release_on_park);
  int n = ray_wait(r, 2, 1, RAY_TIMEOUT_INFINITE, ready);
  ray__hook_set(NULL);
  assert_int_equal(n, 1);
  assert_true(ready[0]);
  assert_false(ready[1]);
  assert_int_equal(atomic_load(&g_b_ran), ON_WORKER);
  rt_release(r[0]);
  rt_release(r[1]);
  end_held(blk);
}

static void test_no_help_while_recording(void **state) {
  (void)state;
  ray_ref_t blk = begin_held(true, true); /* the timeline records runs per worker */
  expect_no_help(RAY_TIMEOUT_INFINITE);
  end_held(blk);
}

/* An actor's method call is helped once its actor admitted it (its turn
 * in the actor's order has come), and only that call: the next goes to the
 * workers. A call whose actor is still being constructed is not admitted,
 * and a constructor is never helped. */
static atomic_int g_m_ran[3];

static int m_where(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  int64_t i = -1;
  int rc = ray_ctx_arg_i64(ctx, 0, &i);
  if (rc != 0 || i < 0 || i > 2) return rc != 0 ? rc : RAY_EINVAL;
  uv_thread_t self = uv_thread_self();
  atomic_store(&g_m_ran[i], uv_thread_equal(&self, &rt_main_thread) ? ON_HOST : ON_WORKER);
  return ray_return_i64(ctx, 0, 5 + i);
}

static const ray_method_def_t k_where_methods[] = {{"where", m_where, rt_t_i64, 1}};
static const ray_actor_class_t k_where_class = {"Where", NULL, NULL, k_where_methods, 1};

static ray_ref_t call_where(ray_actor_t a, int64_t i) {
  ray_arg_t arg = ray_arg_i64(i);
  ray_ref_t r;
  assert_rc(ray_actor_call(a, "where", &arg, 1, NULL, &r), 0);
  return r;
}

/* One worker; the actor, constructed (or not yet: `constructed` false,
 * then the worker is held first, so the constructor stays queued). */
static ray_ref_t begin_actor(bool constructed, ray_actor_t *a) {
  t_reset();
  rt_main_thread = uv_thread_self();
  for (int i = 0; i < 3; i++) atomic_store(&g_m_ran[i], 0);
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = 1;
  rt_begin_cfg(&cfg);
  if (constructed) {
    assert_rc(ray_actor_create(&k_where_class, NULL, 0, NULL, a), 0);
    assert_rc(ray__quiesce(60000), 0);
  }
  ray_function_t fblock = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  ray_ref_t blk = rt_submit(fblock, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  if (!constructed) assert_rc(ray_actor_create(&k_where_class, NULL, 0, NULL, a), 0);
  return blk;
}

static void test_actor_call_helped_alone(void **state) {
  (void)state;
  ray_actor_t a;
  ray_ref_t blk = begin_actor(true, &a);
  ray_ref_t r0 = call_where(a, 0);     /* admitted, queued behind the held worker */
  ray_ref_t r1 = call_where(a, 1);     /* in the mailbox until r0's call is done */
  assert_int_equal(rt_get_i64(r0), 5); /* the only worker is held: the host ran it */
  assert_int_equal(atomic_load(&g_m_ran[0]), ON_HOST);
  assert_int_equal(atomic_load(&g_m_ran[1]), 0); /* the next call was not run inline */
  rt_latch_signal(&g_go);
  int64_t v = 0;
  assert_rc(ray_get_i64(r1, 600000, &v), 0); /* a deadline: no help; a worker runs it */
  assert_int_equal(v, 6);
  assert_int_equal(atomic_load(&g_m_ran[1]), ON_WORKER);
  rt_release(r0);
  rt_release(r1);
  assert_rc(ray_actor_release(a), 0);
  end_held(blk);
}

static void test_actor_constructor_not_helped(void **state) {
  (void)state;
  ray_actor_t a;
  ray_ref_t blk = begin_actor(false, &a); /* the constructor is queued */
  ray_ref_t r = call_where(a, 2);         /* not admitted before it ran */
  assert_int_equal(get_releasing_on_park(r, RAY_TIMEOUT_INFINITE), 7);
  assert_int_equal(atomic_load(&g_m_ran[2]), ON_WORKER);
  assert_rc(ray_actor_release(a), 0);
  end_held(blk);
}

/* Code the host runs while it waits is code the library runs. */
static int fn_lifecycle(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  uv_thread_t self = uv_thread_self();
  TC(uv_thread_equal(&self, &rt_main_thread), 0); /* the host ran it */
  TC(ray_shutdown() == RAY_EBUSY, 1);
  TC(ray_init(NULL) == RAY_EBUSY, 2);
  return ray_return_i64(ctx, 0, 3);
}

static void test_lifecycle_refused_in_helped_task(void **state) {
  (void)state;
  ray_ref_t blk = begin_held(true, false);
  ray_function_t f = rt_register("lifecycle", fn_lifecycle, NULL, rt_t_i64, 1);
  ray_ref_t r = rt_submit(f, NULL, 0, NULL);
  assert_int_equal(rt_get_i64(r), 3);
  rt_release(r);
  rt_latch_signal(&g_go);
  end_held(blk);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_get_runs_queued_producer),
      cmocka_unit_test(test_batch_and_wait_run_queued_producers),
      cmocka_unit_test(test_no_help_when_off),
      cmocka_unit_test(test_no_help_with_deadline),
      cmocka_unit_test(test_no_help_for_partial_wait),
      cmocka_unit_test(test_no_help_while_recording),
      cmocka_unit_test(test_actor_call_helped_alone),
      cmocka_unit_test(test_actor_constructor_not_helped),
      cmocka_unit_test(test_lifecycle_refused_in_helped_task),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
