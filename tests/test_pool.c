/* test_pool.c - pooled blocks (src/pool.c over the magazines of src/mag.c):
 * every size class and the large fallback, alignment, reuse on one thread,
 * blocks freed on another thread than the one that took them, threads that
 * come and go stranding nothing (their magazines go back at exit), failure
 * injection and leak tracking counting pooled blocks like allocations. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include <stdint.h>

static const size_t k_sizes[] = {0, 1, 100, 112, 113, 240, 241, 1000, 2032, 2033, 100000};

static void test_sizes_and_alignment(void **state) {
  (void)state;
  ray__alloc_track(true);
  for (size_t i = 0; i < sizeof k_sizes / sizeof *k_sizes; i++) {
    size_t n = k_sizes[i];
    unsigned char *p = ray__pool_alloc(n);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xC3, n); /* the whole block is ours */
    assert_int_equal(ray__alloc_outstanding(), 1);
    ray__pool_free(p);
    assert_int_equal(ray__alloc_outstanding(), 0);
  }
  ray__pool_free(NULL); /* a no-op */
  ray__alloc_track(false);
  /* Classes above the largest are not pooled. */
  assert_int_equal(ray__pool_pages(100000), 0);
}

static void test_reuse_on_one_thread(void **state) {
  (void)state;
  void *a = ray__pool_alloc(150);
  assert_non_null(a);
  ray__pool_free(a);
  void *b = ray__pool_alloc(200); /* same class: the block just given back */
  assert_ptr_equal(a, b);
  ray__pool_free(b);
}

/* ---- blocks made on one thread, freed on another ---- */

enum { CROSS = 1000 };

typedef struct {
  void *blocks[CROSS];
} cross_t;

static void cross_free(void *arg) {
  cross_t *c = arg;
  for (int i = 0; i < CROSS; i++) {
    unsigned char *p = c->blocks[i];
    assert_int_equal(p[0], (unsigned char)i); /* what the maker wrote */
    ray__pool_free(p);
  }
}

static void test_freed_on_another_thread(void **state) {
  (void)state;
  ray__alloc_track(true);
  cross_t *c = calloc(1, sizeof *c);
  assert_non_null(c);
  for (int i = 0; i < CROSS; i++) {
    unsigned char *p = ray__pool_alloc(64);
    assert_non_null(p);
    p[0] = (unsigned char)i;
    c->blocks[i] = p;
  }
  assert_int_equal(ray__alloc_outstanding(), CROSS);
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, cross_free, c), 0);
  assert_int_equal(uv_thread_join(&t), 0);
  assert_int_equal(ray__alloc_outstanding(), 0);
  /* The freeing thread's surplus came back: taking as many again cuts at
   * most the page the freeing thread's own list did not return. */
  size_t pages = ray__pool_pages(64);
  for (int i = 0; i < CROSS; i++) assert_non_null(c->blocks[i] = ray__pool_alloc(64));
  assert_true(ray__pool_pages(64) <= pages + 1);
  for (int i = 0; i < CROSS; i++) ray__pool_free(c->blocks[i]);
  free(c);
  ray__alloc_track(false);
}

/* ---- threads that come and go ---- */

enum { PER_THREAD = 100, THREADS = 50 };

static void churn(void *arg) {
  (void)arg;
  void *b[PER_THREAD];
  for (int i = 0; i < PER_THREAD; i++) assert_non_null(b[i] = ray__pool_alloc(300));
  for (int i = 0; i < PER_THREAD; i++) ray__pool_free(b[i]);
}

static void test_threads_strand_nothing(void **state) {
  (void)state;
  size_t before = ray__pool_pages(300);
  for (int i = 0; i < THREADS; i++) {
    uv_thread_t t;
    assert_int_equal(uv_thread_create(&t, churn, NULL), 0);
    assert_int_equal(uv_thread_join(&t), 0);
  }
  /* Each thread's blocks went back at its exit, so the next one reused
   * them: one page (256 blocks) covers them all. Without the exit hook, 50
   * threads would strand 5,000 blocks, 20 pages. */
  assert_true(ray__pool_pages(300) <= before + 1);
}

/* ---- failure injection and tracking ---- */

static void test_injected_failures(void **state) {
  (void)state;
  ray__alloc_fail_after(1, false);
  assert_null(ray__pool_alloc(64));
  assert_true(ray__alloc_failed());
  ray__alloc_fail_after(1, false);
  assert_null(ray__pool_alloc(100000)); /* the large fallback too */
  assert_true(ray__alloc_failed());
  ray__alloc_fail_after(2, false); /* the second allocation fails */
  void *p = ray__pool_alloc(64);
  assert_non_null(p);
  assert_null(ray__pool_alloc(64));
  ray__alloc_fail_after(0, false);
  void *q = ray__pool_alloc(64);
  assert_non_null(q);
  ray__pool_free(p);
  ray__pool_free(q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sizes_and_alignment),     cmocka_unit_test(test_reuse_on_one_thread),
      cmocka_unit_test(test_freed_on_another_thread), cmocka_unit_test(test_threads_strand_nothing),
      cmocka_unit_test(test_injected_failures),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
