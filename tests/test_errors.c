/* test_errors.c - the RAY_E* table, ray_strerror/ray_err_name, and the
 * structured ray_error_t: constructor, accessors, cause chain, copy, format. */
#include "test_util.h"

typedef struct {
  int code;
  int value;
  const char *name;
  const char *msg;
} code_row_t;

#define ROW(name, val, msg) {RAY_##name, (val), #name, (msg)},
static const code_row_t k_rows[] = {RAY_ERRNO_MAP(ROW)};
#undef ROW
#define NROWS (sizeof k_rows / sizeof k_rows[0])

/* The codes the issue requires must exist (this fails to compile if not). */
static const int k_required[] = {RAY_EINVAL,     RAY_ENOMEM,     RAY_ENOTINIT,  RAY_EALREADY,
                                 RAY_ENOTFOUND,  RAY_ETYPE,      RAY_ETIMEDOUT, RAY_EBUSY,
                                 RAY_ETASK,      RAY_EDEPFAILED, RAY_ECANCELED, RAY_EACTORDIED,
                                 RAY_ESTOREFULL, RAY_ESHUTDOWN,  RAY_EDECODE,   RAY_ENAMEEXISTS};

/* Origin of an error without one: the header only says "may be NULL (no
 * origin)", so accept NULL or "". */
static void assert_no_origin(const ray_error_t *e) {
  const char *o = ray_error_origin(e);
  if (o != NULL) assert_string_equal(o, "");
}

/* ---- the table ---------------------------------------------------------- */

static void test_table_names_and_messages(void **state) {
  (void)state;
  rt_begin();
  assert_true(NROWS >= sizeof k_required / sizeof k_required[0]);
  assert_int_equal(RAY_OK, 0);
  for (size_t i = 0; i < NROWS; i++) {
    assert_int_equal(k_rows[i].code, k_rows[i].value);
    assert_true(k_rows[i].code < 0);
    assert_string_equal(ray_err_name(k_rows[i].code), k_rows[i].name);
    assert_string_equal(ray_strerror(k_rows[i].code), k_rows[i].msg);
    assert_true(strlen(k_rows[i].msg) > 0);
    for (size_t j = 0; j < i; j++) {
      assert_int_not_equal(k_rows[i].code, k_rows[j].code);
      assert_string_not_equal(k_rows[i].name, k_rows[j].name);
      assert_string_not_equal(k_rows[i].msg, k_rows[j].msg);
      assert_string_not_equal(ray_err_name(k_rows[i].code), ray_err_name(k_rows[j].code));
      assert_string_not_equal(ray_strerror(k_rows[i].code), ray_strerror(k_rows[j].code));
    }
  }
  /* Every required code is in the table. */
  for (size_t r = 0; r < sizeof k_required / sizeof k_required[0]; r++) {
    bool found = false;
    for (size_t i = 0; i < NROWS; i++) found = found || k_rows[i].code == k_required[r];
    assert_true(found);
  }
  /* Spot checks against the literal spelling. */
  assert_string_equal(ray_err_name(RAY_EINVAL), "EINVAL");
  assert_string_equal(ray_strerror(RAY_ENOMEM), "out of memory");
  assert_string_equal(ray_err_name(RAY_ENOTREADY), "ENOTREADY");
  rt_end();
}

static void test_table_zero_and_unknown(void **state) {
  (void)state;
  rt_begin();
  assert_string_equal(ray_strerror(0), "success");
  assert_string_equal(ray_err_name(0), "OK");
  int lowest = 0;
  for (size_t i = 0; i < NROWS; i++)
    if (k_rows[i].code < lowest) lowest = k_rows[i].code;
  const int unknown[] = {1, 2, 42, INT_MAX, INT_MIN, INT_MIN + 1, lowest - 1, -1000, -100000};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    const char *s = ray_strerror(unknown[i]);
    const char *n = ray_err_name(unknown[i]);
    assert_non_null(s);
    assert_non_null(n);
    assert_string_equal(s, "unknown error");
    assert_string_equal(n, "UNKNOWN");
  }
  rt_end();
}

/* ---- ray_error_new and accessors --------------------------------------- */

static void test_error_new_fields(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, "producer", "boom %d %s %.2f", 42, "x", 1.5), 0);
  assert_non_null(e);
  assert_int_equal(ray_error_code(e), RAY_ETASK);
  assert_string_equal(ray_error_message(e), "boom 42 x 1.50");
  assert_string_equal(ray_error_origin(e), "producer");
  assert_int_equal(ray_error_task_id(e), 0);
  assert_int_equal(ray_error_attempts(e), 0);
  assert_null(ray_error_cause(e));
  ray_error_free(e);

  /* Actor-style origin. */
  assert_rc(ray_error_new(&e, RAY_EACTORDIED, "Counter.incr", "%s", "gone"), 0);
  assert_string_equal(ray_error_origin(e), "Counter.incr");
  assert_string_equal(ray_error_message(e), "gone");
  ray_error_free(e);
  rt_end();
}

static void test_error_new_defaults(void **state) {
  (void)state;
  rt_begin();
  /* fmt NULL: the code's message; origin NULL: no origin. Every code. */
  for (size_t i = 0; i < NROWS; i++) {
    ray_error_t *e = NULL;
    assert_rc(ray_error_new(&e, k_rows[i].code, NULL, NULL), 0);
    assert_non_null(e);
    assert_int_equal(ray_error_code(e), k_rows[i].code);
    assert_string_equal(ray_error_message(e), k_rows[i].msg);
    assert_no_origin(e);
    assert_null(ray_error_cause(e));
    ray_error_free(e);
  }
  /* An empty format gives an empty message. */
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_EIO, "f", "%s", ""), 0);
  assert_string_equal(ray_error_message(e), "");
  ray_error_free(e);
  rt_end();
}

static void test_error_new_invalid(void **state) {
  (void)state;
  rt_begin();
  assert_rc(ray_error_new(NULL, RAY_ETASK, "f", "x"), RAY_EINVAL);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, 0, "f", "x"), RAY_EINVAL);
  assert_null(e);
  assert_rc(ray_error_new(&e, 1, "f", "x"), RAY_EINVAL);
  assert_null(e);
  assert_rc(ray_error_new(&e, INT_MAX, NULL, NULL), RAY_EINVAL);
  assert_null(e);
  rt_end();
}

static void test_error_long_message(void **state) {
  (void)state;
  rt_begin();
  size_t n = 100000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  rt_fill(big, n, 3);
  for (size_t i = 0; i < n; i++) big[i] = (char)('a' + (unsigned char)big[i] % 26);
  big[n] = '\0';
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, big, "<%s>", big), 0);
  assert_int_equal(strlen(ray_error_message(e)), n + 2);
  assert_int_equal(memcmp(ray_error_message(e) + 1, big, n), 0);
  assert_string_equal(ray_error_origin(e), big);
  int len = ray_error_format(e, NULL, 0);
  assert_true(len > (int)(2 * n));
  ray_error_free(e);
  free(big);
  rt_end();
}

static void test_error_setters(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, "f", "m"), 0);
  assert_rc(ray_error_set_task_id(e, 7), 0);
  assert_int_equal(ray_error_task_id(e), 7);
  assert_rc(ray_error_set_task_id(e, UINT64_MAX), 0);
  assert_true(ray_error_task_id(e) == UINT64_MAX);
  assert_rc(ray_error_set_attempts(e, 3), 0);
  assert_int_equal(ray_error_attempts(e), 3);
  assert_rc(ray_error_set_attempts(e, UINT32_MAX), 0);
  assert_true(ray_error_attempts(e) == UINT32_MAX);
  /* Setters leave the rest alone. */
  assert_int_equal(ray_error_code(e), RAY_ETASK);
  assert_string_equal(ray_error_message(e), "m");
  assert_string_equal(ray_error_origin(e), "f");
  assert_rc(ray_error_set_task_id(NULL, 1), RAY_EINVAL);
  assert_rc(ray_error_set_attempts(NULL, 1), RAY_EINVAL);
  ray_error_free(e);
  rt_end();
}

static void test_error_null_accessors(void **state) {
  (void)state;
  rt_begin();
  assert_int_equal(ray_error_code(NULL), 0);
  assert_non_null(ray_error_message(NULL));
  assert_string_equal(ray_error_message(NULL), "");
  /* "0 / \"\" / NULL": the header does not say which of "" and NULL the
   * origin gives (an error may have no origin, i.e. NULL); accept both. */
  assert_no_origin(NULL);
  assert_int_equal(ray_error_task_id(NULL), 0);
  assert_int_equal(ray_error_attempts(NULL), 0);
  assert_null(ray_error_cause(NULL));
  ray_error_free(NULL); /* no-op */
  rt_end();
}

/* ---- cause chain ------------------------------------------------------- */

static void test_error_set_cause(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *top = NULL, *mid = NULL, *leaf = NULL;
  assert_rc(ray_error_new(&top, RAY_EDEPFAILED, "consumer", NULL), 0);
  assert_rc(ray_error_new(&mid, RAY_ETASK, "producer", "boom"), 0);
  assert_rc(ray_error_new(&leaf, RAY_EIO, NULL, "disk"), 0);
  assert_rc(ray_error_set_cause(mid, leaf), 0);
  assert_rc(ray_error_set_cause(top, mid), 0);
  assert_ptr_equal(ray_error_cause(top), mid);
  assert_ptr_equal(ray_error_cause(mid), leaf);
  assert_null(ray_error_cause(leaf));
  assert_int_equal(ray_error_code(ray_error_cause(ray_error_cause(top))), RAY_EIO);

  /* Replacing a cause frees the old chain (mid and leaf): the leak check
   * at the end proves it. */
  ray_error_t *other = NULL;
  assert_rc(ray_error_new(&other, RAY_ECANCELED, "c", "cancel"), 0);
  assert_rc(ray_error_set_cause(top, other), 0);
  assert_ptr_equal(ray_error_cause(top), other);
  assert_int_equal(ray_error_code(ray_error_cause(top)), RAY_ECANCELED);
  assert_null(ray_error_cause(other));

  /* Invalid calls: the caller keeps whatever it passed. */
  ray_error_t *spare = NULL;
  assert_rc(ray_error_new(&spare, RAY_EIO, NULL, NULL), 0);
  assert_rc(ray_error_set_cause(NULL, spare), RAY_EINVAL);
  assert_rc(ray_error_set_cause(top, NULL), RAY_EINVAL);
  assert_rc(ray_error_set_cause(spare, spare), RAY_EINVAL);
  assert_null(ray_error_cause(spare));
  assert_ptr_equal(ray_error_cause(top), other); /* unchanged by the failed call */
  ray_error_free(spare);

  ray_error_free(top);
  rt_end();
}

/* ---- copy -------------------------------------------------------------- */

static ray_error_t *make_chain3(void) {
  ray_error_t *top = NULL, *mid = NULL, *leaf = NULL;
  assert_rc(ray_error_new(&top, RAY_EDEPFAILED, "consumer", NULL), 0);
  assert_rc(ray_error_new(&mid, RAY_ETASK, "producer", "boom %d", 42), 0);
  assert_rc(ray_error_new(&leaf, RAY_EIO, NULL, "disk read failed"), 0);
  assert_rc(ray_error_set_task_id(top, 7), 0);
  assert_rc(ray_error_set_task_id(mid, 3), 0);
  assert_rc(ray_error_set_attempts(mid, 2), 0);
  assert_rc(ray_error_set_cause(mid, leaf), 0);
  assert_rc(ray_error_set_cause(top, mid), 0);
  return top;
}

static void assert_same_chain(const ray_error_t *a, const ray_error_t *b) {
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

static void test_error_copy(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *orig = make_chain3();
  ray_error_t *cp = NULL;
  assert_rc(ray_error_copy(orig, &cp), 0);
  assert_non_null(cp);
  assert_ptr_not_equal(cp, orig);
  assert_ptr_not_equal(ray_error_cause(cp), ray_error_cause(orig));
  assert_ptr_not_equal(ray_error_message(cp), ray_error_message(orig));
  assert_same_chain(orig, cp);
  assert_int_equal(ray_error_attempts(ray_error_cause(cp)), 2);

  /* Same formatted text. */
  char a[512], b[512];
  int la = ray_error_format(orig, a, sizeof a);
  int lb = ray_error_format(cp, b, sizeof b);
  assert_true(la > 0);
  assert_int_equal(la, lb);
  assert_string_equal(a, b);

  /* The copy is independent: freeing (and changing) the original leaves it. */
  assert_rc(ray_error_set_task_id(orig, 99), 0);
  assert_int_equal(ray_error_task_id(cp), 7);
  ray_error_free(orig);
  assert_int_equal(ray_error_code(cp), RAY_EDEPFAILED);
  assert_string_equal(ray_error_message(ray_error_cause(cp)), "boom 42");
  assert_string_equal(ray_error_message(ray_error_cause(ray_error_cause(cp))), "disk read failed");

  /* Copy of a copy of a single error. */
  ray_error_t *one = NULL, *one_cp = NULL;
  assert_rc(ray_error_new(&one, RAY_EBUSY, NULL, NULL), 0);
  assert_rc(ray_error_copy(one, &one_cp), 0);
  assert_same_chain(one, one_cp);
  ray_error_free(one);
  ray_error_free(one_cp);

  /* Invalid. */
  ray_error_t *none = NULL;
  assert_rc(ray_error_copy(NULL, &none), RAY_EINVAL);
  assert_null(none);
  assert_rc(ray_error_copy(cp, NULL), RAY_EINVAL);
  ray_error_free(cp);
  rt_end();
}

/* ---- format ------------------------------------------------------------ */

/* Split `s` into lines (a trailing newline does not make an empty line). */
static size_t split_lines(char *s, char **lines, size_t max) {
  size_t n = 0;
  char *p = s;
  while (*p != '\0' && n < max) {
    lines[n++] = p;
    char *nl = strchr(p, '\n');
    if (nl == NULL) break;
    *nl = '\0';
    p = nl + 1;
  }
  return n;
}

static void assert_prefix(const char *s, const char *prefix) {
  if (strncmp(s, prefix, strlen(prefix)) != 0) {
    print_error("line \"%s\" does not start with \"%s\"\n", s, prefix);
    fail();
  }
}

static void test_error_format_chain(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *e = make_chain3();
  char buf[1024];
  int n = ray_error_format(e, buf, sizeof buf);
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(buf));
  char *lines[8];
  size_t nl = split_lines(buf, lines, 8);
  assert_int_equal(nl, 3);
  assert_prefix(lines[0], "EDEPFAILED: dependency failed [origin=consumer task=7");
  assert_prefix(lines[1], "  caused by: ETASK: boom 42 [origin=producer task=3");
  assert_prefix(lines[2], "  caused by: EIO: disk read failed");

  /* A single error: one line. */
  ray_error_t *one = NULL;
  assert_rc(ray_error_new(&one, RAY_ETIMEDOUT, "waiter", NULL), 0);
  n = ray_error_format(one, buf, sizeof buf);
  assert_int_equal((size_t)n, strlen(buf));
  nl = split_lines(buf, lines, 8);
  assert_int_equal(nl, 1);
  assert_prefix(lines[0], "ETIMEDOUT: timed out [origin=waiter");
  ray_error_free(one);
  ray_error_free(e);
  rt_end();
}

static void test_error_format_truncation(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *e = make_chain3();
  int n = ray_error_format(e, NULL, 0); /* size query */
  assert_true(n > 20);
  char *full = malloc((size_t)n + 1);
  assert_non_null(full);
  assert_int_equal(ray_error_format(e, full, (size_t)n + 1), n);
  assert_int_equal(strlen(full), (size_t)n);

  size_t cap = (size_t)n + 64;
  char *buf = malloc(cap);
  assert_non_null(buf);
  const size_t lens[] = {0, 1, 2, 10, (size_t)n - 1, (size_t)n, (size_t)n + 1, (size_t)n + 50};
  for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
    size_t len = lens[k];
    memset(buf, 'X', cap);
    assert_int_equal(ray_error_format(e, buf, len), n);
    if (len == 0) {
      assert_int_equal(buf[0], 'X'); /* nothing written */
      continue;
    }
    size_t w = len - 1 < (size_t)n ? len - 1 : (size_t)n;
    assert_int_equal(memcmp(buf, full, w), 0);
    assert_int_equal(buf[w], '\0');
    for (size_t i = len; i < cap; i++) assert_int_equal(buf[i], 'X'); /* no overrun */
  }
  free(buf);
  free(full);
  ray_error_free(e);
  rt_end();
}

static void test_error_format_invalid(void **state) {
  (void)state;
  rt_begin();
  char buf[16] = "unchanged";
  assert_rc(ray_error_format(NULL, buf, sizeof buf), RAY_EINVAL);
  assert_rc(ray_error_format(NULL, NULL, 0), RAY_EINVAL);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_EIO, NULL, NULL), 0);
  assert_rc(ray_error_format(e, NULL, 5), RAY_EINVAL);
  assert_string_equal(buf, "unchanged");
  ray_error_free(e);
  rt_end();
}

/* A long chain: built, copied, formatted and freed without trouble. */
static void test_error_deep_chain(void **state) {
  (void)state;
  rt_begin();
  size_t depth = (size_t)rt_iters(20000, 2000);
  ray_error_t *chain = NULL;
  for (size_t i = 0; i < depth; i++) {
    ray_error_t *e = NULL;
    assert_rc(ray_error_new(&e, i % 2 ? RAY_ETASK : RAY_EDEPFAILED, "f", "link %zu", depth - 1 - i),
              0);
    if (chain != NULL) assert_rc(ray_error_set_cause(e, chain), 0);
    chain = e;
  }
  ray_error_t *cp = NULL;
  assert_rc(ray_error_copy(chain, &cp), 0);
  size_t count = 0;
  for (const ray_error_t *p = cp; p != NULL; p = ray_error_cause(p)) {
    char want[32];
    snprintf(want, sizeof want, "link %zu", count);
    assert_string_equal(ray_error_message(p), want);
    count++;
  }
  assert_int_equal(count, depth);
  int n = ray_error_format(chain, NULL, 0);
  assert_true(n > (int)(depth * 20));
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(ray_error_format(cp, buf, (size_t)n + 1), n);
  size_t newlines = 0;
  for (char *p = buf; *p; p++) newlines += *p == '\n';
  assert_true(newlines == depth - 1 || newlines == depth);
  free(buf);
  ray_error_free(chain);
  ray_error_free(cp);
  rt_end();
}

/* The error API does not need the runtime. */
static void test_error_without_runtime(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  ray__alloc_track(true);
  assert_false(ray_is_initialized());
  ray_error_t *e = make_chain3();
  ray_error_t *cp = NULL;
  assert_rc(ray_error_copy(e, &cp), 0);
  char buf[256];
  assert_true(ray_error_format(cp, buf, sizeof buf) > 0);
  assert_string_equal(ray_strerror(RAY_ETASK), "task failed");
  assert_string_equal(ray_err_name(RAY_ETASK), "ETASK");
  ray_error_free(e);
  ray_error_free(cp);
  assert_int_equal(ray__alloc_outstanding(), 0);
  assert_int_equal(ray__threads_alive(), 0);
}

/* Errors may be created and freed from many threads at once. */
typedef struct {
  rt_errs_t *errs;
  int iters;
} err_thread_arg_t;

static void err_thread(void *arg) {
  err_thread_arg_t *a = (err_thread_arg_t *)arg;
  for (int i = 0; i < a->iters; i++) {
    ray_error_t *e = NULL, *c = NULL, *cp = NULL;
    int rc = ray_error_new(&e, RAY_ETASK, "t", "%d", i);
    RT_CHECK(a->errs, rc == 0, rc);
    rc = ray_error_new(&c, RAY_EIO, NULL, NULL);
    RT_CHECK(a->errs, rc == 0, rc);
    rc = ray_error_set_cause(e, c);
    RT_CHECK(a->errs, rc == 0, rc);
    rc = ray_error_copy(e, &cp);
    RT_CHECK(a->errs, rc == 0, rc);
    char want[16], buf[128];
    snprintf(want, sizeof want, "%d", i);
    RT_CHECK(a->errs, strcmp(ray_error_message(cp), want) == 0, i);
    RT_CHECK(a->errs, ray_error_format(cp, buf, sizeof buf) > 0, i);
    ray_error_free(e);
    ray_error_free(cp);
  }
}

static void test_error_threads(void **state) {
  (void)state;
  rt_begin();
  rt_errs_t errs;
  rt_errs_init(&errs);
  err_thread_arg_t a = {&errs, rt_iters(2000, 200)};
  uv_thread_t th[4];
  for (int i = 0; i < 4; i++) assert_int_equal(uv_thread_create(&th[i], err_thread, &a), 0);
  for (int i = 0; i < 4; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
  rt_errs_assert(&errs);
  rt_end();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table_names_and_messages),
    cmocka_unit_test(test_table_zero_and_unknown),
    cmocka_unit_test(test_error_new_fields),
    cmocka_unit_test(test_error_new_defaults),
    cmocka_unit_test(test_error_new_invalid),
    cmocka_unit_test(test_error_long_message),
    cmocka_unit_test(test_error_setters),
    cmocka_unit_test(test_error_null_accessors),
    cmocka_unit_test(test_error_set_cause),
    cmocka_unit_test(test_error_copy),
    cmocka_unit_test(test_error_format_chain),
    cmocka_unit_test(test_error_format_truncation),
    cmocka_unit_test(test_error_format_invalid),
    cmocka_unit_test(test_error_deep_chain),
    cmocka_unit_test(test_error_without_runtime),
    cmocka_unit_test(test_error_threads),
};

RT_MAIN(tests)
