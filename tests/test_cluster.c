/* test_cluster.c - cluster mode's API in a single process (no mpirun):
 * ray_rank, ray_num_ranks, ray_serve, the `node` placement field and the
 * cluster settings, and RAY_CLUSTER_MPI refused by a library built without
 * MPI (test_cluster_mpi.c runs the real thing under mpirun). */
#include "test_util.h"

static int fn_one(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_i64(ctx, 0, 1);
}

static const uint32_t k_i64[] = {RAY_TYPE_I64};

static void test_rank_without_runtime(void **state) {
  (void)state;
  assert_false(ray_is_initialized());
  assert_int_equal(ray_rank(), 0);
  assert_int_equal(ray_num_ranks(), 1);
  assert_rc(ray_serve(), RAY_ENOTINIT);
}

static void test_single_process_is_rank_0_of_1(void **state) {
  (void)state;
  rt_begin();
  assert_int_equal(ray_rank(), 0);
  assert_int_equal(ray_num_ranks(), 1);
  assert_rc(ray_serve(), RAY_EINVAL); /* not in cluster mode */
  rt_end();
}

static void test_defaults(void **state) {
  (void)state;
  ray_config_t cfg;
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.cluster, RAY_CLUSTER_NONE);
  assert_null(cfg.mpi_comm);
  assert_int_equal(cfg.cluster_spin_us, 1000);
  assert_int_equal(cfg.cluster_poll_us, 200);
  assert_false(cfg.cluster_serve_in_init);
  ray_task_opts_t o;
  memset(&o, 0x5A, sizeof o);
  ray_task_opts_init(&o);
  assert_int_equal(o.node, RAY_NODE_ANY);
}

static void test_bad_settings(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.cluster = 7;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  rt_config(&cfg);
  cfg.cluster_poll_us = 0;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  rt_config(&cfg);
  cfg.cluster_poll_us = 1000001;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  rt_config(&cfg);
  cfg.cluster_spin_us = 1000001;
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
}

/* test_environment's teardown: a failed assertion must not leave its
 * variables to the tests after it. */
static int unset_cluster_env(void **state) {
  (void)state;
  unsetenv("RAY_CLUSTER");
  unsetenv("RAY_CLUSTER_SPIN_US");
  unsetenv("RAY_CLUSTER_POLL_US");
  unsetenv("RAY_CLUSTER_SERVE_IN_INIT");
  unsetenv("RAY_CLUSTER_SPMD");
  return 0;
}

static void test_environment(void **state) {
  (void)state;
  ray_config_t cfg;
  assert_int_equal(setenv("RAY_CLUSTER", "mpi", 1), 0);
  assert_int_equal(setenv("RAY_CLUSTER_SPIN_US", "7", 1), 0);
  assert_int_equal(setenv("RAY_CLUSTER_POLL_US", "900", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.cluster, RAY_CLUSTER_MPI);
  assert_int_equal(cfg.cluster_spin_us, 7);
  assert_int_equal(cfg.cluster_poll_us, 900);
  assert_true(cfg.cluster_serve_in_init); /* set by the environment alone: serve in ray_init */
  assert_int_equal(setenv("RAY_CLUSTER_SERVE_IN_INIT", "0", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.cluster, RAY_CLUSTER_MPI);
  assert_false(cfg.cluster_serve_in_init);
  assert_int_equal(setenv("RAY_CLUSTER_SERVE_IN_INIT", "2", 1), 0);
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  assert_true(cfg.cluster_serve_in_init); /* RAY_CLUSTER's, the bad variable ignored */
  assert_int_equal(unsetenv("RAY_CLUSTER_SERVE_IN_INIT"), 0);
  assert_int_equal(setenv("RAY_CLUSTER", "none", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.cluster, RAY_CLUSTER_NONE);
  assert_false(cfg.cluster_serve_in_init);
  assert_int_equal(setenv("RAY_CLUSTER_SERVE_IN_INIT", "1", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_true(cfg.cluster_serve_in_init);
  assert_int_equal(unsetenv("RAY_CLUSTER_SERVE_IN_INIT"), 0);
  assert_false(cfg.cluster_spmd); /* the default */
  assert_int_equal(setenv("RAY_CLUSTER_SPMD", "1", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_true(cfg.cluster_spmd);
  assert_int_equal(setenv("RAY_CLUSTER_SPMD", "2", 1), 0);
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  assert_false(cfg.cluster_spmd);
  assert_int_equal(unsetenv("RAY_CLUSTER_SPMD"), 0);
  assert_int_equal(setenv("RAY_CLUSTER", "tcp", 1), 0);
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  assert_int_equal(cfg.cluster, RAY_CLUSTER_NONE); /* the default kept */
  assert_int_equal(setenv("RAY_CLUSTER", "none", 1), 0);
  assert_int_equal(setenv("RAY_CLUSTER_POLL_US", "0", 1), 0);
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  assert_int_equal(cfg.cluster_poll_us, 200);
  assert_int_equal(unsetenv("RAY_CLUSTER"), 0);
  assert_int_equal(unsetenv("RAY_CLUSTER_SPIN_US"), 0);
  assert_int_equal(unsetenv("RAY_CLUSTER_POLL_US"), 0);
}

/* cluster_serve_in_init changes nothing outside cluster mode: ray_init
 * returns and the runtime runs here. */
static void test_serve_in_init_in_one_process(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.cluster_serve_in_init = true;
  assert_rc(ray_init(&cfg), 0);
  assert_int_equal(ray_rank(), 0);
  ray_ref_t r;
  int64_t v = 0;
  assert_rc(ray_put_i64(5, &r), 0);
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 5);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_serve(), RAY_EINVAL);
  assert_rc(ray_shutdown(), 0);
}

/* In one process, node 0 and RAY_NODE_ANY run here; any other is invalid
 * and nothing is left behind. */
static void test_node_placement_in_one_process(void **state) {
  (void)state;
  rt_begin();
  ray_function_t f;
  assert_rc(ray_function_register("one", fn_one, NULL, k_i64, 1, &f), 0);
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  int nodes[] = {RAY_NODE_ANY, 0};
  for (size_t i = 0; i < 2; i++) {
    o.node = nodes[i];
    ray_ref_t r;
    assert_rc(ray_task_submit(f, NULL, 0, &o, &r), 0);
    int64_t v = 0;
    assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
    assert_int_equal(v, 1);
    assert_rc(ray_ref_release(r), 0);
  }
  int bad[] = {1, 2, -2, INT_MIN, INT_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o.node = bad[i];
    ray_ref_t r = {0, 0};
    assert_rc(ray_task_submit(f, NULL, 0, &o, &r), RAY_EINVAL);
  }
  ray_stats_t s = rt_stats();
  assert_int_equal(s.tasks_submitted, 2);
  assert_int_equal(s.objects, 0);
  rt_end();
}

#ifndef RAY_TEST_WITH_MPI
/* A library built without MPI refuses cluster mode, leaving nothing. */
static void test_mpi_refused_without_mpi(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.cluster = RAY_CLUSTER_MPI;
  ray__alloc_track(true);
  assert_rc(ray_init(&cfg), RAY_ENOTSUP);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
  rt_assert_no_leaks();
  assert_int_equal(ray_num_ranks(), 1);
  /* And the runtime starts normally afterwards. */
  rt_begin();
  rt_end();
}
#endif

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rank_without_runtime),
      cmocka_unit_test(test_single_process_is_rank_0_of_1),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_bad_settings),
      cmocka_unit_test_teardown(test_environment, unset_cluster_env),
      cmocka_unit_test(test_serve_in_init_in_one_process),
      cmocka_unit_test(test_node_placement_in_one_process),
#ifndef RAY_TEST_WITH_MPI
      cmocka_unit_test(test_mpi_refused_without_mpi),
#endif
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
