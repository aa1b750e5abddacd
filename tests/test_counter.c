/* test_counter.c - the per-thread task counters (src/counter.h): a fresh
 * counter sums to 0, adds from one thread and from many threads (more than
 * there are slots, so some share one) all arrive in the sum, and the task
 * counters ray_stats reports stay exact with submitters on several threads. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include "counter.h"

static void test_fresh_counter_is_zero(void **state) {
  (void)state;
  ray__counter_t c;
  ray__counter_init(&c);
  assert_int_equal(ray__counter_sum(&c), 0);
  ray__counter_add(&c, 3);
  ray__counter_add(&c, 4);
  assert_int_equal(ray__counter_sum(&c), 7);
}

enum { ADDERS = RAY__COUNTER_SLOTS + 4 }; /* some threads share a slot */

typedef struct {
  ray__counter_t c;
  int iters;
} adders_t;

static void adder(void *arg) {
  adders_t *a = arg;
  for (int i = 0; i < a->iters; i++) ray__counter_add(&a->c, 1);
}

static void test_many_threads_all_counted(void **state) {
  (void)state;
  adders_t *a = malloc(sizeof *a);
  assert_non_null(a);
  ray__counter_init(&a->c);
  a->iters = rt_iters(20000, 500);
  uv_thread_t t[ADDERS];
  for (int i = 0; i < ADDERS; i++) assert_int_equal(uv_thread_create(&t[i], adder, a), 0);
  for (int i = 0; i < ADDERS; i++) uv_thread_join(&t[i]);
  assert_int_equal(ray__counter_sum(&a->c), (uint64_t)ADDERS * (uint64_t)a->iters);
  free(a);
}

/* Through the runtime: tasks submitted from several host threads. */
enum { SUBMITTERS = 3 };

static int one_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_i64(ctx, 0, 1);
}

typedef struct {
  ray_function_t fn;
  int n;
} submit_ctx_t;

static void submitter(void *arg) {
  submit_ctx_t *s = arg;
  for (int i = 0; i < s->n; i++) {
    ray_ref_t ref;
    int64_t v = 0;
    if (ray_task_submit(s->fn, NULL, 0, NULL, &ref) != 0) abort();
    if (ray_get_i64(ref, RAY_TIMEOUT_INFINITE, &v) != 0 || v != 1) abort();
    if (ray_ref_release(ref) != 0) abort();
  }
}

static void test_stats_count_every_task(void **state) {
  (void)state;
  rt_begin();
  submit_ctx_t s = {.n = rt_iters(2000, 100)};
  assert_int_equal(
      ray_function_register("one_task", one_task, NULL, (uint32_t[]){RAY_TYPE_I64}, 1, &s.fn), 0);
  ray_stats_t before;
  assert_int_equal(ray_stats(&before), 0);
  uv_thread_t t[SUBMITTERS];
  for (int i = 0; i < SUBMITTERS; i++) assert_int_equal(uv_thread_create(&t[i], submitter, &s), 0);
  for (int i = 0; i < SUBMITTERS; i++) uv_thread_join(&t[i]);
  assert_int_equal(ray__quiesce(RAY_TIMEOUT_INFINITE), 0);
  ray_stats_t after;
  assert_int_equal(ray_stats(&after), 0);
  uint64_t n = (uint64_t)SUBMITTERS * (uint64_t)s.n;
  assert_int_equal(after.tasks_submitted - before.tasks_submitted, n);
  assert_int_equal(after.tasks_finished - before.tasks_finished, n);
  rt_end();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fresh_counter_is_zero),
      cmocka_unit_test(test_many_threads_all_counted),
      cmocka_unit_test(test_stats_count_every_task),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
