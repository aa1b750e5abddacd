/* test_nested.c - tasks that submit tasks and wait on them, and shutdown
 * with tasks queued, waiting on dependencies and running.
 *
 * Nested: recursive Fibonacci (one task per call, each getting or waiting
 * on its two children) with 1 and 2 workers; the same as a DAG of ref
 * arguments without any blocking; a task that waits on a task queued behind
 * it on the only worker; a waiting task whose worker runs other work that
 * waits on the first task's result (it must still finish); a chain of
 * 10,000 nested gets on one worker (no stack overflow, no deadlock), and
 * chains run again after the extra workers they needed retired; the
 * interleaving that once lost a wake-up, forced through the scheduler's
 * test hook; spares that cannot start for a while; a
 * cancelled child seen by its waiting parent.
 *
 * Shutdown: queued and waiting tasks fail with RAY_ESHUTDOWN (seen through
 * on_ready callbacks, recorded in atomics), the running one finishes (its
 * own calls into the runtime are refused cleanly), nothing hangs, nothing
 * leaks. Only the main thread asserts; tasks record into g_errs. */
#define _POSIX_C_SOURCE 200809L
#include <sched.h>

#include "test_util.h"

#include "internal.h" /* the scheduler's test hook and its counters */

static rt_errs_t g_errs;
static atomic_int g_calls;
static rt_latch_t g_started, g_go;

#define TC(cond, value) RT_CHECK(&g_errs, (cond), (value))

static void t_begin(unsigned workers) {
  rt_errs_init(&g_errs);
  atomic_store(&g_calls, 0);
  rt_latch_init(&g_started);
  rt_latch_init(&g_go);
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = workers;
  rt_begin_cfg(&cfg);
}

static void t_end(void) {
  rt_end();
  rt_errs_assert(&g_errs);
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
}

static int64_t fib_of(int n) {
  int64_t a = 0, b = 1;
  for (int i = 0; i < n; i++) {
    int64_t t = a + b;
    a = b;
    b = t;
  }
  return a;
}

static int fib_calls(int n) {
  return (int)(2 * fib_of(n + 1) - 1);
}

/* Sum of the i64 arguments. */
static int fn_sum(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  int64_t s = 0;
  for (size_t i = 0; i < ray_ctx_nargs(ctx); i++) {
    int64_t v = 0;
    int rc = ray_ctx_arg_i64(ctx, i, &v);
    if (rc != 0) return rc;
    s += v;
  }
  return ray_return_i64(ctx, 0, s);
}

/* ---- Fibonacci ------------------------------------------------------------ */

typedef struct {
  ray_function_t self;
  ray_function_t sum;
  int how; /* 0: get each child, 1: ray_wait both then get, 2: ray_get_batch */
} fib_t;

static int fn_fib(ray_task_ctx_t *ctx, void *arg) {
  const fib_t *c = arg;
  atomic_fetch_add(&g_calls, 1);
  int64_t n = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &n);
  if (rc != 0) return rc;
  if (n < 2) return ray_return_i64(ctx, 0, n);
  ray_arg_t a = ray_arg_i64(n - 1), b = ray_arg_i64(n - 2);
  ray_ref_t r[2];
  if ((rc = ray_task_submit(c->self, &a, 1, NULL, &r[0])) != 0)
    return ray_fail(ctx, rc, "submit fib(%lld)", (long long)(n - 1));
  if ((rc = ray_task_submit(c->self, &b, 1, NULL, &r[1])) != 0) {
    ray_ref_release(r[0]);
    return ray_fail(ctx, rc, "submit fib(%lld)", (long long)(n - 2));
  }
  int64_t x = 0, y = 0;
  if (c->how == 1) {
    bool ready[2] = {false, false};
    rc = ray_wait(r, 2, 2, RAY_TIMEOUT_INFINITE, ready);
    TC(rc == 2 && ready[0] && ready[1], rc);
  }
  if (c->how == 2) {
    ray_buf_t bufs[2];
    rc = ray_get_batch(r, 2, RAY_TIMEOUT_INFINITE, bufs);
    TC(rc == 0, rc);
    if (rc == 0) {
      ray_buf_release(&bufs[0]);
      ray_buf_release(&bufs[1]);
    }
  }
  int rc1 = ray_get_i64(r[0], RAY_TIMEOUT_INFINITE, &x);
  int rc2 = ray_get_i64(r[1], RAY_TIMEOUT_INFINITE, &y);
  TC(ray_ref_release(r[0]) == 0, 0);
  TC(ray_ref_release(r[1]) == 0, 0);
  if (rc1 != 0 || rc2 != 0) return ray_fail(ctx, rc1 ? rc1 : rc2, "child failed");
  return ray_return_i64(ctx, 0, x + y);
}

static void run_fib(unsigned workers, int how) {
  t_begin(workers);
  static fib_t c;
  c.how = how;
  c.self = rt_register("fib", fn_fib, &c, rt_t_i64, 1);
  int n = rt_iters(20, 12);
  ray_arg_t a = ray_arg_i64(n);
  ray_ref_t r = rt_submit(c.self, &a, 1, NULL);
  assert_int_equal(rt_get_i64(r), fib_of(n));
  assert_rc(ray_ref_release(r), 0);
  assert_int_equal(atomic_load(&g_calls), fib_calls(n));
  t_end();
}

static void test_fib_1_worker(void **state) {
  (void)state;
  run_fib(1, 0);
}

static void test_fib_2_workers(void **state) {
  (void)state;
  run_fib(2, 0);
}

static void test_fib_wait_1_worker(void **state) {
  (void)state;
  run_fib(1, 1);
}

static void test_fib_batch_2_workers(void **state) {
  (void)state;
  run_fib(2, 2);
}

/* The same recursion without blocking: each call returns the ref of a sum
 * task whose arguments are its children's results. */
static int fn_fib_refs(ray_task_ctx_t *ctx, void *arg) {
  const fib_t *c = arg;
  atomic_fetch_add(&g_calls, 1);
  int64_t n = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &n);
  if (rc != 0) return rc;
  if (n < 2) return ray_return_i64(ctx, 0, n);
  ray_arg_t a = ray_arg_i64(n - 1), b = ray_arg_i64(n - 2);
  ray_ref_t r[2], s;
  if ((rc = ray_task_submit(c->self, &a, 1, NULL, &r[0])) != 0) return rc;
  if ((rc = ray_task_submit(c->self, &b, 1, NULL, &r[1])) != 0) return rc;
  ray_arg_t refs[2] = {ray_arg_ref(r[0]), ray_arg_ref(r[1])};
  rc = ray_task_submit(c->sum, refs, 2, NULL, &s);
  TC(ray_ref_release(r[0]) == 0, 0);
  TC(ray_ref_release(r[1]) == 0, 0);
  if (rc != 0) return rc;
  rc = ray_return_ref(ctx, 0, s);
  TC(ray_ref_release(s) == 0, 0);
  return rc;
}

static void test_fib_refs_1_worker(void **state) {
  (void)state;
  t_begin(1);
  static fib_t c;
  c.self = rt_register("fib-refs", fn_fib_refs, &c, rt_t_i64, 1);
  c.sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  int n = rt_iters(18, 10);
  ray_arg_t a = ray_arg_i64(n);
  ray_ref_t r = rt_submit(c.self, &a, 1, NULL);
  assert_int_equal(rt_get_i64(r), fib_of(n));
  assert_rc(ray_ref_release(r), 0);
  t_end();
}

/* ---- waiting on work queued behind oneself ---------------------------------------- */

static atomic_uint_fast64_t g_behind;

/* Waits (get / wait / get_batch, by its argument) on the ref in g_behind,
 * which the host submits after this task started. */
static int fn_waits_behind(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t how = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &how) == 0, 0);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, how + 1);
  ray_ref_t b = {atomic_load(&g_behind), RAY_TYPE_I64};
  int64_t v = 0;
  int rc;
  if (how == 1) {
    bool ready = false;
    rc = ray_wait(&b, 1, 1, RAY_TIMEOUT_INFINITE, &ready);
    TC(rc == 1 && ready, rc);
  } else if (how == 2) {
    ray_buf_t buf;
    rc = ray_get_batch(&b, 1, RAY_TIMEOUT_INFINITE, &buf);
    TC(rc == 0, rc);
    ray_buf_release(&buf);
  }
  rc = ray_get_i64(b, RAY_TIMEOUT_INFINITE, &v);
  if (rc != 0) return rc;
  return ray_return_i64(ctx, 0, v + 1);
}

static void test_wait_on_task_queued_behind(void **state) {
  (void)state;
  t_begin(1);
  ray_function_t f = rt_register("waits-behind", fn_waits_behind, NULL, rt_t_i64, 1);
  ray_function_t sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  for (int how = 0; how < 3; how++) {
    ray_arg_t a = ray_arg_i64(how);
    ray_ref_t w = rt_submit(f, &a, 1, NULL);
    rt_latch_wait(&g_started, how + 1);
    /* The only worker is busy with w: this one queues behind it. */
    ray_arg_t b = ray_arg_i64(41);
    ray_ref_t behind = rt_submit(sum, &b, 1, NULL);
    atomic_store(&g_behind, behind.id);
    rt_latch_signal(&g_go);
    assert_int_equal(rt_get_i64(w), 42);
    assert_int_equal(rt_get_i64(behind), 41);
    assert_rc(ray_ref_release(w), 0);
    assert_rc(ray_ref_release(behind), 0);
  }
  t_end();
}

/* A task waiting on an object (not a task) lets its worker run other
 * queued work meanwhile. If that other work waits on the first task's own
 * result, the first task must still be able to finish once its object is
 * ready: its frame must not be stuck under the second one on one stack.
 * 1 worker. The host's gets are bounded only to turn a deadlock into a
 * failure instead of a hang (the whole test takes microseconds). */
static int fn_get_object(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t id = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &id) == 0, 0);
  rt_latch_signal(&g_started);
  ray_ref_t p = {(uint64_t)id, RAY_TYPE_I64};
  int64_t v = 0;
  int rc = ray_get_i64(p, RAY_TIMEOUT_INFINITE, &v);
  if (rc != 0) return rc;
  return ray_return_i64(ctx, 0, v + 1);
}

static void test_get_on_task_below_on_stack(void **state) {
  (void)state;
  t_begin(1);
  ray_function_t f = rt_register("get-object", fn_get_object, NULL, rt_t_i64, 1);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  ray_arg_t a = ray_arg_i64((int64_t)p.id);
  ray_ref_t first = rt_submit(f, &a, 1, NULL); /* waits on p */
  rt_latch_wait(&g_started, 1);
  ray_arg_t b = ray_arg_i64((int64_t)first.id);
  ray_ref_t second = rt_submit(f, &b, 1, NULL); /* waits on first's result */
  rt_latch_wait(&g_started, 2);
  char enc[16];
  size_t n = rt_encode_i64(10, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p, enc, n), 0);
  int64_t v = 0;
  int rc = ray_get_i64(first, 10000, &v);
  if (rc == RAY_ETIMEDOUT) {
    print_error(
        "deadlock: the first task cannot finish while the task it helped run waits on "
        "its result\n");
  }
  assert_rc(rc, 0);
  assert_int_equal(v, 11);
  assert_rc(ray_get_i64(second, 10000, &v), 0);
  assert_int_equal(v, 12);
  assert_rc(ray_ref_release(first), 0);
  assert_rc(ray_ref_release(second), 0);
  assert_rc(ray_ref_release(p), 0);
  t_end();
}

/* The same with the public API only, on 2 workers: the first task waits on
 * a task running on the other worker; its own worker runs a task that waits
 * on the first task's result; then the other worker's task finishes. */
static int fn_block1(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  return ray_return_i64(ctx, 0, 1);
}

static void test_get_on_task_below_on_stack_2_workers(void **state) {
  (void)state;
  t_begin(2);
  ray_function_t get = rt_register("get-object", fn_get_object, NULL, rt_t_i64, 1);
  ray_function_t block = rt_register("block", fn_block1, NULL, rt_t_i64, 1);
  ray_ref_t l = rt_submit(block, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  ray_arg_t a = ray_arg_i64((int64_t)l.id);
  ray_ref_t first = rt_submit(get, &a, 1, NULL); /* the other worker: waits on l */
  rt_latch_wait(&g_started, 2);
  ray_arg_t b = ray_arg_i64((int64_t)first.id);
  ray_ref_t second = rt_submit(get, &b, 1, NULL); /* only first's worker is free to run it */
  rt_latch_wait(&g_started, 3);
  rt_latch_signal(&g_go);
  int64_t v = 0;
  int rc = ray_get_i64(first, 10000, &v);
  if (rc == RAY_ETIMEDOUT) {
    print_error(
        "deadlock: the first task cannot finish while the task it helped run waits on "
        "its result\n");
  }
  assert_rc(rc, 0);
  assert_int_equal(v, 2);
  assert_rc(ray_get_i64(second, 10000, &v), 0);
  assert_int_equal(v, 3);
  assert_rc(ray_ref_release(first), 0);
  assert_rc(ray_ref_release(second), 0);
  assert_rc(ray_ref_release(l), 0);
  t_end();
}

/* A timed get inside a task returns (the worker is not lost). */
static int fn_timed_get(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_ref_t p = {atomic_load(&g_behind), RAY_TYPE_BYTES};
  ray_buf_t b;
  TC(ray_get(p, 0, &b) == RAY_ETIMEDOUT, 0);
  TC(ray_get(p, 5, &b) == RAY_ETIMEDOUT, 1);
  bool ready = true;
  TC(ray_wait(&p, 1, 1, 5, &ready) == 0 && !ready, 2);
  /* Shutting down from a worker is refused. */
  TC(ray_shutdown() == RAY_EBUSY, 3);
  return ray_return_i64(ctx, 0, 7);
}

static void test_timed_get_in_task(void **state) {
  (void)state;
  t_begin(1);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  atomic_store(&g_behind, p.id);
  ray_function_t f = rt_register("timed", fn_timed_get, NULL, rt_t_i64, 1);
  ray_ref_t r = rt_submit(f, NULL, 0, NULL);
  assert_int_equal(rt_get_i64(r), 7);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(p), 0);
  t_end();
}

/* ---- a deep chain of nested gets -------------------------------------------------- */

static int fn_chain(ray_task_ctx_t *ctx, void *arg) {
  const ray_function_t *self = arg;
  int64_t n = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &n);
  if (rc != 0) return rc;
  if (n == 0) return ray_return_i64(ctx, 0, 0);
  ray_arg_t a = ray_arg_i64(n - 1);
  ray_ref_t r;
  if ((rc = ray_task_submit(*self, &a, 1, NULL, &r)) != 0) return ray_fail(ctx, rc, "submit");
  int64_t v = -1;
  rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
  TC(ray_ref_release(r) == 0, 0);
  if (rc != 0) return rc;
  return ray_return_i64(ctx, 0, v + 1);
}

static void run_chain(unsigned workers, int depth) {
  t_begin(workers);
  static ray_function_t self;
  self = rt_register("chain", fn_chain, &self, rt_t_i64, 1);
  ray_arg_t a = ray_arg_i64(depth);
  ray_ref_t r = rt_submit(self, &a, 1, NULL);
  assert_int_equal(rt_get_i64(r), depth);
  assert_rc(ray_ref_release(r), 0);
  t_end();
}

static void test_chain_10000_nested_gets_1_worker(void **state) {
  (void)state;
  run_chain(1, rt_iters(10000, 1000));
}

/* Twice in one runtime, letting the extra workers the first chain needed
 * go idle and retire in between (waiting on the worker count itself), so
 * the second chain runs on reused ones. */
static void test_chain_twice_after_retirement(void **state) {
  (void)state;
  t_begin(1);
  static ray_function_t self;
  self = rt_register("chain", fn_chain, &self, rt_t_i64, 1);
  const int depth = rt_iters(3000, 500);
  for (int round = 0; round < 2; round++) {
    ray_arg_t a = ray_arg_i64(depth);
    ray_ref_t r = rt_submit(self, &a, 1, NULL);
    assert_int_equal(rt_get_i64(r), depth);
    assert_rc(ray_ref_release(r), 0);
    /* Nobody is blocked any more, so every spare retires (ADR-002). */
    assert_rc(ray__quiesce(60000), 0);
    assert_int_equal(rt_stats().num_workers, 1);
  }
  t_end();
}

static void test_chain_nested_gets_2_workers(void **state) {
  (void)state;
  run_chain(2, rt_iters(3000, 300));
}

/* The lost wake-up of ADR-002 ("A spare started late"), forced: every time
 * a spare starts, the thread that started it is held (with spawn_mu) until
 * the new spare has run its stolen part of the chain up to a block, or gone
 * idle. Before the fix the spare was counted only after that point, so an
 * idle worker woken by the spare's pushes could not see its queue, and the
 * spare, finding that worker counted idle, parked too: the chain hung with
 * its next link queued. Now the spare is counted before its thread starts
 * and a blocking worker wakes the idle one. */
static uv_mutex_t g_hook_mu;
static uv_cond_t g_hook_cv;
static ray__worker_t *g_new_spare;
static bool g_spare_moved;
static atomic_int g_spares_held;

static void late_spare_hook(int point, void *arg) {
  ray__worker_t *w = arg;
  uv_mutex_lock(&g_hook_mu);
  if (point == RAY__AT_SPARE_START) { /* before its thread can run */
    g_new_spare = w;
    g_spare_moved = false;
  } else if (point == RAY__AT_SPARE_STARTED) {
    while (!g_spare_moved) uv_cond_wait(&g_hook_cv, &g_hook_mu);
    g_new_spare = NULL;
    /* ...and until no worker is spinning: a spinner would find the spare's
     * work by chance. Spinning ends within RAY__SPIN_NS (it finds work or
     * parks), so this is a wait on the state itself, never a timeout. */
    ray__sched_t *sc = &ray__rt()->sched;
    while (atomic_load(&sc->spinning) > 0) sched_yield();
    atomic_fetch_add(&g_spares_held, 1);
  } else if (w == g_new_spare) { /* its first block, or it found nothing to do */
    g_spare_moved = true;
    uv_cond_broadcast(&g_hook_cv);
  }
  uv_mutex_unlock(&g_hook_mu);
}

static void test_chain_spare_started_late(void **state) {
  (void)state;
  assert_int_equal(uv_mutex_init(&g_hook_mu), 0);
  assert_int_equal(uv_cond_init(&g_hook_cv), 0);
  atomic_store(&g_spares_held, 0);
  ray__hook_set(late_spare_hook);
  run_chain(2, rt_iters(2000, 300));
  ray__hook_set(NULL);
  assert_true(atomic_load(&g_spares_held) > 0); /* the interleaving happened */
  uv_cond_destroy(&g_hook_cv);
  uv_mutex_destroy(&g_hook_mu);
}

/* No spare can start for a while (thread creation fails): the blocked
 * workers retry with a back-off and the chain still finishes. */
static void test_chain_spare_start_fails(void **state) {
  (void)state;
  t_begin(1);
  static ray_function_t self;
  self = rt_register("chain", fn_chain, &self, rt_t_i64, 1);
  ray__thread_fail_next(5); /* the first five spares */
  const int depth = rt_iters(1000, 300);
  ray_arg_t a = ray_arg_i64(depth);
  ray_ref_t r = rt_submit(self, &a, 1, NULL);
  assert_int_equal(rt_get_i64(r), depth);
  ray__thread_fail_next(0);
  assert_rc(ray_ref_release(r), 0);
  t_end();
}

/* ---- a cancelled child seen by its waiting parent ------------------------------------- */

static atomic_uint_fast64_t g_child;

static int fn_parent(ray_task_ctx_t *ctx, void *arg) {
  const ray_function_t *sum = arg;
  ray_ref_t p = {atomic_load(&g_behind), RAY_TYPE_I64};
  ray_arg_t a = ray_arg_ref(p);
  ray_ref_t child;
  int rc = ray_task_submit(*sum, &a, 1, NULL, &child);
  if (rc != 0) return rc;
  atomic_store(&g_child, child.id);
  rt_latch_signal(&g_started);
  int64_t v;
  rc = ray_get_i64(child, RAY_TIMEOUT_INFINITE, &v);
  TC(rc == RAY_ECANCELED, rc);
  TC(ray_ref_release(child) == 0, 0);
  return rc;
}

static void test_cancel_child_of_waiting_parent(void **state) {
  (void)state;
  t_begin(1);
  static ray_function_t sum;
  sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_function_t parent = rt_register("parent", fn_parent, &sum, rt_t_i64, 1);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  atomic_store(&g_behind, p.id);
  ray_ref_t r = rt_submit(parent, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  ray_ref_t child = {atomic_load(&g_child), RAY_TYPE_I64};
  assert_rc(ray_cancel(child), 0);
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), RAY_ECANCELED);
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(r, &e), 0);
  assert_int_equal(ray_error_code(e), RAY_ECANCELED);
  assert_string_equal(ray_error_origin(e), "parent");
  ray_error_free(e);
  char enc[16];
  size_t n = rt_encode_i64(1, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p, enc, n), 0);
  assert_rc(ray_ref_release(p), 0);
  assert_rc(ray_ref_release(r), 0);
  t_end();
  assert_int_equal(atomic_load(&g_calls), 0);
}

/* ---- shutdown with tasks in flight ------------------------------------------------------ */

static atomic_int g_submit_rc, g_get_rc, g_done;
static atomic_uint_fast64_t g_never; /* a pending object nobody completes */

static int fn_running(ray_task_ctx_t *ctx, void *arg) {
  const ray_function_t *sum = arg;
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1); /* released by an on_ready callback the shutdown fires */
  ray_arg_t a = ray_arg_i64(1);
  ray_ref_t r;
  atomic_store(&g_submit_rc, ray_task_submit(*sum, &a, 1, NULL, &r));
  ray_ref_t never = {atomic_load(&g_never), RAY_TYPE_BYTES};
  ray_buf_t b;
  atomic_store(&g_get_rc, ray_get(never, RAY_TIMEOUT_INFINITE, &b));
  atomic_store(&g_done, 1);
  return ray_return_i64(ctx, 0, 1);
}

static void release_go(ray_ref_t ref, int status, void *arg) {
  (void)ref;
  (void)arg;
  (void)status;
  rt_latch_signal(&g_go);
}

/* A task returning a ref to a pending object only it references; its
 * second result says it has finished. */
static int fn_alias_never(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_ref_t p;
  int rc = ray__object_create_pending(RAY_TYPE_I64, &p);
  if (rc != 0) return rc;
  rc = ray_return_ref(ctx, 0, p);
  TC(ray_ref_release(p) == 0, 0);
  if (rc != 0) return rc;
  return ray_return_i64(ctx, 1, 1);
}

enum { NQ = 5, NW = 4 };

static void test_shutdown_queued_waiting_running(void **state) {
  (void)state;
  t_begin(1);
  atomic_store(&g_submit_rc, 1);
  atomic_store(&g_get_rc, 1);
  atomic_store(&g_done, 0);
  static ray_function_t sum;
  sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_function_t running = rt_register("running", fn_running, &sum, rt_t_i64, 1);
  const uint32_t two[] = {RAY_TYPE_I64, RAY_TYPE_I64};
  ray_function_t alias = {0};
  assert_rc(ray_function_register("alias-never", fn_alias_never, NULL, two, 2, &alias), 0);
  /* Fires when the shutdown fails pending objects: lets the running task go on. */
  ray_ref_t gate, never, dep;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &gate), 0);
  assert_rc(ray_ref_on_ready(gate, release_go, NULL), 0);
  assert_rc(ray_ref_release(gate), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &never), 0);
  atomic_store(&g_never, never.id);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &dep), 0);

  rt_latch_t cb_latch;
  rt_latch_init(&cb_latch);
  static rt_cb_rec_t rec_run, rec_q[NQ], rec_w[NW], rec_alias;
  /* Pending at shutdown through ray_return_ref (its task has finished). */
  ray_ref_t al[2];
  assert_rc(ray_task_submit(alias, NULL, 0, NULL, al), 0);
  assert_int_equal(rt_get_i64(al[1]), 1);
  rt_cb_rec_init(&rec_alias, &cb_latch);
  assert_rc(ray_ref_on_ready(al[0], rt_cb_record, &rec_alias), 0);
  assert_rc(ray_ref_release(al[1]), 0);
  rt_cb_rec_init(&rec_run, &cb_latch);
  ray_ref_t run = rt_submit(running, NULL, 0, NULL);
  assert_rc(ray_ref_on_ready(run, rt_cb_record, &rec_run), 0);
  rt_latch_wait(&g_started, 1);

  /* Queued behind the running task on the only worker. */
  ray_ref_t q[NQ];
  for (int i = 0; i < NQ; i++) {
    ray_arg_t a = ray_arg_i64(i);
    q[i] = rt_submit(sum, &a, 1, NULL);
    rt_cb_rec_init(&rec_q[i], &cb_latch);
    assert_rc(ray_ref_on_ready(q[i], rt_cb_record, &rec_q[i]), 0);
  }
  /* Waiting on a dependency that never completes, or on a queued task. */
  ray_ref_t w[NW];
  for (int i = 0; i < NW; i++) {
    ray_arg_t a[2] = {ray_arg_ref(i == NW - 1 ? q[0] : dep), ray_arg_i64(i)};
    w[i] = rt_submit(sum, a, 2, NULL);
    rt_cb_rec_init(&rec_w[i], &cb_latch);
    assert_rc(ray_ref_on_ready(w[i], rt_cb_record, &rec_w[i]), 0);
  }
  /* The host keeps some refs and drops others: shutdown frees both. */
  for (int i = 0; i < NQ; i += 2) assert_rc(ray_ref_release(q[i]), 0);
  assert_rc(ray_ref_release(dep), 0);

  rt_shutdown_clean();
  rt_assert_no_leaks();
  rt_errs_assert(&g_errs);

  /* The running task finished; its calls during shutdown were refused. */
  assert_int_equal(atomic_load(&g_done), 1);
  assert_rc(atomic_load(&g_submit_rc), RAY_ESHUTDOWN);
  assert_rc(atomic_load(&g_get_rc), RAY_ESHUTDOWN);
  assert_int_equal(atomic_load(&rec_run.calls), 1);
  int st = atomic_load(&rec_run.status);
  assert_true(st == 0 || st == RAY_ESHUTDOWN);
  /* Queued and waiting tasks never ran and failed with RAY_ESHUTDOWN. */
  assert_int_equal(atomic_load(&g_calls), 0);
  for (int i = 0; i < NQ; i++) {
    assert_int_equal(atomic_load(&rec_q[i].calls), 1);
    assert_rc(atomic_load(&rec_q[i].status), RAY_ESHUTDOWN);
    assert_int_equal(atomic_load(&rec_q[i].on_main), 0);
  }
  for (int i = 0; i < NW; i++) {
    assert_int_equal(atomic_load(&rec_w[i].calls), 1);
    assert_rc(atomic_load(&rec_w[i].status), RAY_ESHUTDOWN);
  }
  assert_int_equal(atomic_load(&rec_alias.calls), 1);
  assert_rc(atomic_load(&rec_alias.status), RAY_ESHUTDOWN);
  rt_latch_destroy(&cb_latch);
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
}

/* A task blocked in a nested get when the shutdown starts wakes and finishes. */
static int fn_blocked_parent(ray_task_ctx_t *ctx, void *arg) {
  const ray_function_t *sum = arg;
  ray_ref_t p = {atomic_load(&g_never), RAY_TYPE_I64};
  ray_arg_t a = ray_arg_ref(p);
  ray_ref_t child;
  int rc = ray_task_submit(*sum, &a, 1, NULL, &child);
  TC(rc == 0, rc);
  if (rc != 0) return rc;
  rt_latch_signal(&g_started);
  int64_t v;
  atomic_store(&g_get_rc, ray_get_i64(child, RAY_TIMEOUT_INFINITE, &v));
  (void)ray_ref_release(child); /* the store is still up: fine either way */
  atomic_store(&g_done, 1);
  return ray_return_i64(ctx, 0, 1);
}

static void test_shutdown_nested_get(void **state) {
  (void)state;
  t_begin(2);
  atomic_store(&g_get_rc, 1);
  atomic_store(&g_done, 0);
  static ray_function_t sum;
  sum = rt_register("sum", fn_sum, NULL, rt_t_i64, 1);
  ray_function_t parent = rt_register("blocked-parent", fn_blocked_parent, &sum, rt_t_i64, 1);
  ray_ref_t never;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &never), 0);
  atomic_store(&g_never, never.id);
  /* Their refs are kept: shutdown frees them. */
  ray_ref_t r0 = rt_submit(parent, NULL, 0, NULL), r1 = rt_submit(parent, NULL, 0, NULL);
  assert_true(r0.id != 0 && r1.id != 0);
  rt_latch_wait(&g_started, 2);
  rt_shutdown_clean();
  rt_assert_no_leaks();
  rt_errs_assert(&g_errs);
  assert_int_equal(atomic_load(&g_done), 1);
  assert_rc(atomic_load(&g_get_rc), RAY_ESHUTDOWN);
  assert_int_equal(atomic_load(&g_calls), 0);
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fib_1_worker),
    cmocka_unit_test(test_fib_2_workers),
    cmocka_unit_test(test_fib_wait_1_worker),
    cmocka_unit_test(test_fib_batch_2_workers),
    cmocka_unit_test(test_fib_refs_1_worker),
    cmocka_unit_test(test_wait_on_task_queued_behind),
    cmocka_unit_test(test_get_on_task_below_on_stack),
    cmocka_unit_test(test_get_on_task_below_on_stack_2_workers),
    cmocka_unit_test(test_timed_get_in_task),
    cmocka_unit_test(test_chain_10000_nested_gets_1_worker),
    cmocka_unit_test(test_chain_nested_gets_2_workers),
    cmocka_unit_test(test_chain_twice_after_retirement),
    cmocka_unit_test(test_chain_spare_started_late),
    cmocka_unit_test(test_chain_spare_start_fails),
    cmocka_unit_test(test_cancel_child_of_waiting_parent),
    cmocka_unit_test(test_shutdown_queued_waiting_running),
    cmocka_unit_test(test_shutdown_nested_get),
};

RT_MAIN(tests)
