/* test_actor_destructor.c - where an actor's destructor runs: on a worker
 * thread, never on the thread that called ray_actor_kill() or released the
 * last handle (include/rustyray/actor.h), for a kill, the release of the
 * last handle, and a kill that restarts the actor (destructor, then the
 * constructor again, in that order); at shutdown, on the thread calling
 * ray_shutdown().
 *
 * The destructor records the thread it ran on into atomics (cmocka is not
 * thread-safe); the main thread waits for it with ray__quiesce (a posted
 * destructor is queued work, so the runtime is not quiet until it ran),
 * never with a sleep. */
#define _POSIX_C_SOURCE 200809L

#include "test_util.h"

#include "scheduler.h" /* ray__worker_self: whether the calling thread is a worker */

enum { QUIESCE_MS = 60000 };

static rt_errs_t g_errs;         /* checks made on workers */
static atomic_int g_ctors;       /* constructor runs */
static atomic_int g_dtors;       /* destructor runs */
static atomic_int g_dtor_main;   /* ... on the main thread (the test's caller) */
static atomic_int g_dtor_worker; /* ... on a worker thread */
static atomic_int g_dtors_seen;  /* destructor runs the latest constructor saw */

#define AC(cond, value) RT_CHECK(&g_errs, (cond), (value))

typedef struct {
  int64_t value;
} box_t;

static int box_ctor(ray_task_ctx_t *ctx, void **state) {
  (void)ctx;
  /* Ordered after the destructor of the previous construction (restart). */
  atomic_store(&g_dtors_seen, atomic_load(&g_dtors));
  atomic_fetch_add(&g_ctors, 1);
  box_t *b = malloc(sizeof *b);
  if (b == NULL) return RAY_ENOMEM;
  b->value = 0;
  *state = b;
  return 0;
}

static void box_dtor(void *state) {
  AC(state != NULL, 0);
  free(state);
  uv_thread_t self = uv_thread_self();
  if (uv_thread_equal(&self, &rt_main_thread)) atomic_fetch_add(&g_dtor_main, 1);
  if (ray__worker_self() != NULL) atomic_fetch_add(&g_dtor_worker, 1);
  atomic_fetch_add(&g_dtors, 1);
}

/* add(x: i64) -> the value after adding. */
static int box_add(ray_task_ctx_t *ctx, void *state) {
  box_t *b = state;
  int64_t x = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != 0) return rc;
  b->value += x;
  return ray_return_i64(ctx, 0, b->value);
}

static const uint32_t T_I64[] = {RAY_TYPE_I64};
static const ray_method_def_t k_box_methods[] = {{"add", box_add, T_I64, 1}};
static const ray_actor_class_t k_box = {"Box", box_ctor, box_dtor, k_box_methods, 1};

static void d_begin(void) {
  /* A test that failed half-way may have left its runtime up: shut it down
   * before the counters are reset, so its destructors do not count here. */
  if (ray_is_initialized()) (void)ray_shutdown();
  rt_errs_init(&g_errs);
  atomic_store(&g_ctors, 0);
  atomic_store(&g_dtors, 0);
  atomic_store(&g_dtor_main, 0);
  atomic_store(&g_dtor_worker, 0);
  atomic_store(&g_dtors_seen, -1);
  rt_begin();
}

static void d_end(void) {
  rt_end();
  rt_errs_assert(&g_errs);
}

static ray_actor_t make_box(uint32_t max_restarts) {
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.max_restarts = max_restarts;
  ray_actor_t a = {0};
  assert_rc(ray_actor_create(&k_box, NULL, 0, &o, &a), 0);
  return a;
}

/* Call add(x) and return its result (the constructor has run by then). */
static int64_t add(ray_actor_t a, int64_t x) {
  ray_arg_t arg = ray_arg_i64(x);
  ray_ref_t r;
  assert_rc(ray_actor_call(a, "add", &arg, 1, NULL, &r), 0);
  int64_t v = 0;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_rc(ray_ref_release(r), 0);
  return v;
}

/* Every destructor so far ran on a worker, none on the main thread. */
static void assert_dtors_on_workers(int n) {
  assert_int_equal(atomic_load(&g_dtors), n);
  assert_int_equal(atomic_load(&g_dtor_worker), n);
  assert_int_equal(atomic_load(&g_dtor_main), 0);
}

static void test_kill_runs_destructor_on_worker(void **state) {
  (void)state;
  d_begin();
  ray_actor_t a = make_box(0);
  assert_int_equal(add(a, 5), 5);
  assert_rc(ray_actor_kill(a, true), 0);
  assert_rc(ray__quiesce(QUIESCE_MS), 0);
  assert_dtors_on_workers(1);
  /* Dead: a call fails, the destructor does not run again. */
  ray_arg_t arg = ray_arg_i64(1);
  ray_ref_t r;
  assert_rc(ray_actor_call(a, "add", &arg, 1, NULL, &r), 0);
  int64_t v = 0;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), RAY_EACTORDIED);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray__quiesce(QUIESCE_MS), 0);
  assert_dtors_on_workers(1);
  assert_int_equal(rt_stats().actors_alive, 0);
  d_end();
  assert_int_equal(atomic_load(&g_dtors), 1);
}

static void test_release_runs_destructor_on_worker(void **state) {
  (void)state;
  d_begin();
  ray_actor_t a = make_box(0);
  assert_int_equal(add(a, 2), 2);
  assert_rc(ray_actor_retain(a), 0);
  assert_rc(ray_actor_release(a), 0); /* not the last handle */
  assert_rc(ray__quiesce(QUIESCE_MS), 0);
  assert_int_equal(atomic_load(&g_dtors), 0);
  assert_int_equal(add(a, 3), 5);
  assert_rc(ray_actor_release(a), 0); /* the last one */
  assert_rc(ray__quiesce(QUIESCE_MS), 0);
  assert_dtors_on_workers(1);
  assert_int_equal(rt_stats().actors_alive, 0);
  d_end();
  assert_int_equal(atomic_load(&g_dtors), 1);
}

static void test_kill_restart_runs_destructor_on_worker(void **state) {
  (void)state;
  d_begin();
  ray_actor_t a = make_box(1);
  assert_int_equal(add(a, 7), 7);
  assert_rc(ray_actor_kill(a, false), 0); /* restarts: destructor, then constructor */
  /* The restarted actor has a fresh state: the constructor ran again. */
  assert_int_equal(add(a, 1), 1);
  assert_rc(ray__quiesce(QUIESCE_MS), 0);
  assert_int_equal(atomic_load(&g_ctors), 2);
  assert_int_equal(atomic_load(&g_dtors_seen), 1); /* the old state was gone first */
  assert_dtors_on_workers(1);
  /* No restart left: the kill is final. */
  assert_rc(ray_actor_kill(a, false), 0);
  assert_rc(ray__quiesce(QUIESCE_MS), 0);
  assert_dtors_on_workers(2);
  assert_int_equal(atomic_load(&g_ctors), 2);
  assert_rc(ray_actor_release(a), 0);
  d_end();
  assert_int_equal(atomic_load(&g_dtors), 2);
}

/* At shutdown the workers have stopped: the thread calling ray_shutdown()
 * runs the destructors still owed (the header says so). */
static void test_shutdown_runs_destructor_on_caller(void **state) {
  (void)state;
  d_begin();
  ray_actor_t a = make_box(0);
  assert_int_equal(add(a, 1), 1);
  (void)a; /* never released: destroyed by the shutdown */
  d_end();
  assert_int_equal(atomic_load(&g_dtors), 1);
  assert_int_equal(atomic_load(&g_dtor_main), 1);
  assert_int_equal(atomic_load(&g_dtor_worker), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kill_runs_destructor_on_worker),
      cmocka_unit_test(test_release_runs_destructor_on_worker),
      cmocka_unit_test(test_kill_restart_runs_destructor_on_worker),
      cmocka_unit_test(test_shutdown_runs_destructor_on_caller),
  };
  rt_main_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
