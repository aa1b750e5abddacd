/* test_static.c - static function descriptors (ray_static_function_add):
 * registered by every ray_init, handles refreshed each time, a runtime
 * already running unaffected, and a bad descriptor making ray_init fail
 * cleanly.
 *
 * Descriptors cannot be removed, so this is its own program, and the test
 * that adds bad descriptors runs last: every ray_init after it fails. */
#include "test_util.h"

/* Returns the registration argument. */
static int fn_static(ray_task_ctx_t *ctx, void *arg) {
  return ray_return_i64(ctx, 0, (int64_t)(intptr_t)arg);
}

static ray_function_t g_handle_a;
static ray_static_function_t g_a = {"static-a",  fn_static, (void *)(intptr_t)77, rt_t_i64, 1,
                                    &g_handle_a, NULL};
static ray_static_function_t g_b = {"static-b", fn_static, (void *)(intptr_t)5, rt_t_i64, 1,
                                    NULL,       NULL};
static ray_function_t g_handle_late;
static ray_static_function_t g_late = {"static-late",  fn_static, (void *)(intptr_t)9, rt_t_i64, 1,
                                       &g_handle_late, NULL};

static int64_t call(ray_function_t f) {
  ray_ref_t r;
  assert_rc(ray_task_submit(f, NULL, 0, NULL, &r), 0);
  int64_t v = 0;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_rc(ray_ref_release(r), 0);
  return v;
}

static void test_static_registered_by_every_init(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  ray_static_function_add(NULL); /* no-op */
  ray_static_function_add(&g_a);
  ray_static_function_add(&g_a); /* the same descriptor again: no-op */
  ray_static_function_add(&g_b);
  assert_int_equal(g_handle_a.id, 0); /* nothing until ray_init */

  rt_begin();
  assert_true(g_handle_a.id != 0);
  ray_function_t f = {0};
  assert_rc(ray_function_lookup("static-a", &f), 0);
  assert_true(f.id == g_handle_a.id);
  const char *name = NULL;
  size_t nret = 0;
  assert_rc(ray_function_info(g_handle_a, &name, &nret), 0);
  assert_string_equal(name, "static-a");
  assert_int_equal(nret, 1);
  assert_int_equal(call(g_handle_a), 77);
  ray_function_t b = {0};
  assert_rc(ray_function_lookup("static-b", &b), 0); /* no handle pointer: by name */
  assert_int_equal(call(b), 5);
  /* Their names are taken. */
  ray_function_t dup = {0};
  assert_rc(ray_function_register("static-a", fn_static, NULL, rt_t_i64, 1, &dup), RAY_ENAMEEXISTS);
  ray_function_t first = g_handle_a;
  rt_end();

  /* The next runtime registers them again, with fresh handles. */
  rt_begin();
  assert_true(g_handle_a.id != 0 && g_handle_a.id != first.id);
  assert_rc(ray_function_info(first, NULL, NULL), RAY_ENOTFOUND);
  assert_int_equal(call(g_handle_a), 77);
  rt_end();
}

static void test_static_added_while_running(void **state) {
  (void)state;
  rt_begin();
  ray_static_function_add(&g_late);
  ray_function_t f = {0};
  assert_rc(ray_function_lookup("static-late", &f), RAY_ENOTFOUND); /* not this runtime */
  assert_int_equal(g_handle_late.id, 0);
  rt_end();
  rt_begin();
  assert_rc(ray_function_lookup("static-late", &f), 0);
  assert_true(f.id == g_handle_late.id);
  assert_int_equal(call(g_handle_late), 9);
  assert_int_equal(call(g_handle_a), 77);
  rt_end();
}

/* Must stay last: the bad descriptors stay. */
static void test_static_bad_descriptors_fail_init(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  static ray_static_function_t dup = {"static-a", fn_static, NULL, rt_t_i64, 1, NULL, NULL};
  ray_static_function_add(&dup);
  ray__alloc_track(true);
  ray_config_t cfg;
  rt_config(&cfg);
  assert_rc(ray_init(&cfg), RAY_ENAMEEXISTS);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray_ref_t r;
  assert_rc(ray_put("x", 1, &r), RAY_ENOTINIT);

  static ray_static_function_t malformed = {"static-bad", fn_static, NULL, rt_t_i64, 0, NULL, NULL};
  ray_static_function_add(&malformed);
  int rc = ray_init(&cfg);
  assert_true(rc == RAY_EINVAL || rc == RAY_ENAMEEXISTS);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
  assert_int_equal(ray__alloc_outstanding(), 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_static_registered_by_every_init),
    cmocka_unit_test(test_static_added_while_running),
    cmocka_unit_test(test_static_bad_descriptors_fail_init),
};

RT_MAIN(tests)
