/* test_failed_objects.c - failed objects through the public API: a failed
 * object's error (copied out, formatted, with its edge cases, empty strings
 * and every code), misuse of the fulfil/fail test hooks, and a pending
 * object released before it is produced. */
#include "test_util.h"

/* ---- failed objects ------------------------------------------------------ */

static ray_error_t *make_chain(void) {
  ray_error_t *top = NULL, *mid = NULL, *leaf = NULL;
  assert_rc(ray_error_new(&top, RAY_EDEPFAILED, "consumer", NULL), 0);
  assert_rc(ray_error_new(&mid, RAY_ETASK, "producer", "boom %d", 42), 0);
  assert_rc(ray_error_new(&leaf, RAY_EIO, NULL, "disk read failed"), 0);
  assert_rc(ray_error_set_task_id(top, 7), 0);
  assert_rc(ray_error_set_task_id(mid, 3), 0);
  assert_rc(ray_error_set_attempts(mid, 2), 0);
  assert_rc(ray_error_set_attempts(top, 1), 0);
  assert_rc(ray_error_set_cause(mid, leaf), 0);
  assert_rc(ray_error_set_cause(top, mid), 0);
  return top;
}

static void assert_same_error(const ray_error_t *a, const ray_error_t *b) {
  size_t depth = 0;
  while (a != NULL || b != NULL) {
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ray_error_code(a), ray_error_code(b));
    assert_string_equal(ray_error_message(a), ray_error_message(b));
    const char *oa = ray_error_origin(a), *ob = ray_error_origin(b);
    assert_string_equal(oa ? oa : "", ob ? ob : "");
    assert_true(ray_error_task_id(a) == ray_error_task_id(b));
    assert_int_equal(ray_error_attempts(a), ray_error_attempts(b));
    a = ray_error_cause(a);
    b = ray_error_cause(b);
    depth++;
  }
  assert_true(depth > 0);
}

static void assert_same_format(const ray_error_t *a, const ray_error_t *b) {
  int na = ray_error_format(a, NULL, 0), nb = ray_error_format(b, NULL, 0);
  assert_true(na > 0);
  assert_int_equal(na, nb);
  char *sa = malloc((size_t)na + 1), *sb = malloc((size_t)nb + 1);
  assert_non_null(sa);
  assert_non_null(sb);
  assert_int_equal(ray_error_format(a, sa, (size_t)na + 1), na);
  assert_int_equal(ray_error_format(b, sb, (size_t)nb + 1), nb);
  assert_string_equal(sa, sb);
  free(sa);
  free(sb);
}

static void test_failed_object(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *src = make_chain();
  ray_ref_t r, ri;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &ri), 0);
  assert_rc(ray__object_fail(r, src), 0);
  assert_rc(ray__object_fail(ri, src), 0);

  /* ray_get returns the error's own code; the view is zeroed. */
  ray_buf_t b;
  rt_garbage(&b, sizeof b);
  assert_rc(ray_get(r, 0, &b), RAY_EDEPFAILED);
  rt_assert_buf_zeroed(&b);
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), RAY_EDEPFAILED);
  int64_t v;
  assert_rc(ray_get_i64(ri, 0, &v), RAY_EDEPFAILED);

  /* The error survives the store round trip, chain intact. */
  ray_error_t *got = NULL;
  assert_rc(ray_get_error(r, &got), 0);
  assert_non_null(got);
  assert_ptr_not_equal(got, src);
  assert_same_error(src, got);
  assert_same_format(src, got);
  assert_int_equal(ray_error_code(got), RAY_EDEPFAILED);
  assert_string_equal(ray_error_message(ray_error_cause(got)), "boom 42");
  assert_int_equal(ray_error_attempts(ray_error_cause(got)), 2);
  assert_true(ray_error_task_id(got) == 7);
  /* Each call returns a new, independent copy. */
  ray_error_t *again = NULL;
  assert_rc(ray_get_error(r, &again), 0);
  assert_ptr_not_equal(again, got);
  ray_error_free(got);
  assert_same_error(src, again);
  ray_error_free(again);
  assert_rc(ray_get_error(ri, &got), 0);
  assert_same_error(src, got);
  ray_error_free(got);
  ray_error_free(src); /* fail() copied it */
  assert_rc(ray_get_error(r, &got), 0);
  assert_int_equal(ray_error_code(got), RAY_EDEPFAILED);
  ray_error_free(got);

  /* get_error on a ready object: 0 and NULL. */
  ray_ref_t ok = rt_put_bytes(3, 3);
  got = (ray_error_t *)&got; /* non-NULL sentinel */
  assert_rc(ray_get_error(ok, &got), 0);
  assert_null(got);
  ray_ref_t oki;
  assert_rc(ray_put_i64(1, &oki), 0);
  got = (ray_error_t *)&got;
  assert_rc(ray_get_error(oki, &got), 0);
  assert_null(got);
  /* Pending: RAY_ENOTREADY. */
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  got = NULL;
  assert_rc(ray_get_error(p, &got), RAY_ENOTREADY);
  assert_null(got);
  assert_rc(ray_get_error(p, NULL), RAY_EINVAL);

  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(ri), 0);
  assert_rc(ray_ref_release(ok), 0);
  assert_rc(ray_ref_release(oki), 0);
  assert_rc(ray_ref_release(p), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_failed_error_edge_cases(void **state) {
  (void)state;
  rt_begin();
  /* Long chain. */
  size_t depth = 1000;
  ray_error_t *chain = NULL;
  for (size_t i = 0; i < depth; i++) {
    ray_error_t *e = NULL;
    assert_rc(ray_error_new(&e, RAY_ETASK, i % 3 ? "f" : NULL, "link %zu", i), 0);
    assert_rc(ray_error_set_task_id(e, i * 1000003u), 0);
    if (chain) assert_rc(ray_error_set_cause(e, chain), 0);
    chain = e;
  }
  ray_ref_t r;
  assert_rc(ray__object_create_pending(RAY_TYPE_STR, &r), 0);
  assert_rc(ray__object_fail(r, chain), 0);
  ray_error_t *got = NULL;
  assert_rc(ray_get_error(r, &got), 0);
  assert_same_error(chain, got);
  ray_error_free(got);
  ray_error_free(chain);
  char *s = NULL;
  assert_rc(ray_get_str(r, 0, &s, NULL), RAY_ETASK);
  assert_null(s);
  assert_rc(ray_ref_release(r), 0);

  /* Long message and origin; an error without origin; every code. */
  size_t n = 50000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'm', n);
  big[n] = '\0';
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ESTOREFULL, big, "%s", big), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
  assert_rc(ray__object_fail(r, e), 0);
  assert_rc(ray_get_error(r, &got), 0);
  assert_same_error(e, got);
  ray_error_free(got);
  ray_error_free(e);
  free(big);
  assert_rc(ray_ref_release(r), 0);

  rt_assert_store_empty();
  rt_end();
}

/* Empty message and origin survive the round trip. */
static void test_failed_empty_strings(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *e = NULL, *c = NULL, *got = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, "", "%s", ""), 0);
  assert_rc(ray_error_new(&c, RAY_EIO, NULL, "%s", ""), 0);
  assert_rc(ray_error_set_cause(e, c), 0);
  ray_ref_t r;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
  assert_rc(ray__object_fail(r, e), 0);
  assert_rc(ray_get_error(r, &got), 0);
  assert_same_error(e, got);
  assert_string_equal(ray_error_message(got), "");
  assert_string_equal(ray_error_message(ray_error_cause(got)), "");
  ray_error_free(got);
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  rt_assert_store_empty();
  rt_end();
}

/* Any code can be an object's error, including the ones the store uses
 * internally (RAY_ENOTREADY, RAY_ENOTFOUND, RAY_ETIMEDOUT): ray_get returns
 * it and does not mistake the failed object for a pending or missing one. */
static void test_failed_with_every_code(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *e = NULL, *got = NULL;
  ray_ref_t r;
  const int codes[] = {RAY_EINVAL,  RAY_ENOMEM,    RAY_ETIMEDOUT, RAY_ECANCELED, RAY_ESHUTDOWN,
                       RAY_EDECODE, RAY_ENOTFOUND, RAY_EIO,       RAY_ENOTREADY};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    assert_rc(ray_error_new(&e, codes[i], NULL, NULL), 0);
    assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
    assert_rc(ray__object_fail(r, e), 0);
    ray_buf_t b;
    int rc0 = ray_get(r, 0, &b), rc1 = ray_get(r, 10, &b);
    assert_rc(ray_get_error(r, &got), 0);
    assert_same_error(e, got);
    ray_error_free(got);
    ray_error_free(e);
    assert_rc(ray_ref_release(r), 0);
    assert_rc(rc0, codes[i]); /* after the frees: a failure leaks nothing */
    assert_rc(rc1, codes[i]);
  }
  rt_assert_store_empty();
  rt_end();
}

static void test_fulfil_fail_misuse(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t p;
  assert_rc(ray__object_create_pending(0, &p), RAY_EINVAL);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, NULL), RAY_EINVAL);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_true(p.id != 0);
  assert_rc(ray__object_fulfil(p, NULL, 3), RAY_EINVAL);
  assert_rc(ray__object_fail(p, NULL), RAY_EINVAL);
  assert_rc(ray__object_fulfil(p, "one", 3), 0);
  assert_rc(ray__object_fulfil(p, "two", 3), RAY_EBUSY);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, NULL, NULL), 0);
  assert_rc(ray__object_fail(p, e), RAY_EBUSY);
  ray_buf_t b;
  assert_rc(ray_get(p, 0, &b), 0);
  assert_memory_equal(b.data, "one", 3); /* unchanged */
  ray_buf_release(&b);
  ray_error_t *got = NULL;
  assert_rc(ray_get_error(p, &got), 0);
  assert_null(got);
  assert_rc(ray_ref_release(p), 0);

  ray_ref_t q;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &q), 0);
  assert_rc(ray__object_fail(q, e), 0);
  assert_rc(ray__object_fulfil(q, "x", 1), RAY_EBUSY);
  assert_rc(ray__object_fail(q, e), RAY_EBUSY);
  assert_rc(ray_get(q, 0, &b), RAY_ETASK);
  assert_rc(ray_ref_release(q), 0);

  /* Ready puts are not pending: fulfilling them is EBUSY. */
  ray_ref_t r = rt_put_bytes(2, 2);
  assert_rc(ray__object_fulfil(r, "zz", 2), RAY_EBUSY);
  rt_assert_bytes(r, 2, 2);
  assert_rc(ray_ref_release(r), 0);
  ray_error_free(e);

  /* Fulfil with an empty value. */
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray__object_fulfil(p, NULL, 0), 0);
  assert_rc(ray_get(p, 0, &b), 0);
  assert_int_equal(b.size, 0);
  assert_int_equal(b.type, RAY_TYPE_BYTES);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(p), 0);
  /* Fulfil with a big value. */
  unsigned char *big = malloc(300000);
  assert_non_null(big);
  rt_fill(big, 300000, 12);
  assert_rc(ray__object_create_pending(RAY_TYPE_USER + 1, &p), 0);
  assert_int_equal(p.type, RAY_TYPE_USER + 1);
  assert_rc(ray__object_fulfil(p, big, 300000), 0);
  free(big);
  assert_rc(ray_get(p, 0, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_USER + 1);
  assert_true(b.size == 300000 && rt_check(b.data, 300000, 12));
  ray_buf_release(&b);
  assert_rc(ray_ref_release(p), 0);
  rt_assert_store_empty();
  rt_end();
}

/* A pending object nobody references any more: producing it drops the value. */
static void test_pending_released_then_produced(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t p, q;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &q), 0);
  assert_rc(ray_ref_release(p), 0);
  assert_rc(ray_ref_release(q), 0);
  assert_rc(ray__object_fulfil(p, "dropped", 7), 0);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, NULL, NULL), 0);
  assert_rc(ray__object_fail(q, e), 0);
  ray_error_free(e);
  ray_buf_t b;
  assert_rc(ray_get(p, 0, &b), RAY_ENOTFOUND);
  assert_rc(ray_get(q, 0, &b), RAY_ENOTFOUND);
  rt_assert_store_empty();
  rt_end();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_failed_object),
    cmocka_unit_test(test_failed_error_edge_cases),
    cmocka_unit_test(test_failed_empty_strings),
    cmocka_unit_test(test_failed_with_every_code),
    cmocka_unit_test(test_fulfil_fail_misuse),
    cmocka_unit_test(test_pending_released_then_produced),
};

RT_MAIN(tests)
