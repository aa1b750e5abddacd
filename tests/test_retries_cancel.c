/* test_retries_cancel.c - task retries and cancellation through the public
 * API: retried failures and their limits, then cancelling tasks that are
 * queued, waiting on a dependency, running (cooperatively) or finished.
 *
 * Helpers and shared task functions are in tasks_util.h; functions run on
 * worker threads and record failed checks into g_errs (TC), asserted after
 * each runtime is shut down. */
#define _POSIX_C_SOURCE 200809L
#include "tasks_util.h"

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
  if (how == 2) TC(ray_return_owned(ctx, 0, owned(64, attempt), 64, rt_count_free, NULL) == 0, 3);
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

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_retries),
    cmocka_unit_test(test_no_retry_on_dep_failure),
    cmocka_unit_test(test_cancel_waiting_on_dependency),
    cmocka_unit_test(test_cancel_queued),
    cmocka_unit_test(test_cancel_multi_return),
    cmocka_unit_test(test_cancel_running),
    cmocka_unit_test(test_cancel_running_no_retry),
    cmocka_unit_test(test_cancel_errors),
};

RT_MAIN(tests)
