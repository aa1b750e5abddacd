/* error_handling.c - how tasks fail, retry, and how a failure travels.
 *
 * A failed task does not crash anything: its results become error objects
 * in the store, and whoever gets them receives the error's code and, from
 * ray_get_error(), a structured ray_error_t (code, message, origin, task id,
 * attempts, cause). The program shows:
 *   1. a function that returns a non-zero code;
 *   2. ray_fail(): a code and a formatted message chosen by the function;
 *   3. retries: max_retries with retry_on_error (Ray's retry_exceptions),
 *      a task that succeeds on its third attempt, one that runs out of
 *      attempts, and one that is not retried because retry_on_error is off;
 *   4. a result slot the function forgot to set (RAY_ENORESULT);
 *   5. a dependency failure chain: a task whose argument failed does not
 *      run, its result fails with RAY_EDEPFAILED caused by the upstream
 *      error, through any depth; ray_error_format prints the whole chain.
 *
 * It checks every value and return code and exits non-zero on a mismatch,
 * so it doubles as a test (example_error_handling). */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rustyray.h"

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                                \
  do {                                                                             \
    int check_rc_ = (call);                                                        \
    if (check_rc_ != RAY_OK) {                                                     \
      fprintf(stderr, "error_handling:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                   \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

#define EXPECT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "error_handling:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

#define EXPECT_CODE(call, code)                                                            \
  do {                                                                                     \
    int expect_rc_ = (call);                                                               \
    if (expect_rc_ != (code)) {                                                            \
      fprintf(stderr, "error_handling:%d: %s returned %s, expected %s\n", __LINE__, #call, \
              ray_err_name(expect_rc_), ray_err_name(code));                               \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

/* Get a failed ref's error, print it with ray_error_format (one line per
 * link of the chain, indented), and return it for checking (caller frees). */
static ray_error_t *show_error(ray_ref_t ref) {
  ray_error_t *err = NULL;
  CHECK(ray_get_error(ref, &err));
  EXPECT(err != NULL);
  int need = ray_error_format(err, NULL, 0); /* snprintf rules: ask the size first */
  EXPECT(need > 0);
  char *text = malloc((size_t)need + 1);
  EXPECT(text != NULL);
  EXPECT(ray_error_format(err, text, (size_t)need + 1) == need);
  char *line = text;
  for (char *nl; line != NULL; line = nl != NULL ? nl + 1 : NULL) {
    nl = strchr(line, '\n');
    if (nl != NULL) *nl = '\0';
    if (*line != '\0') printf("    | %s\n", line);
  }
  free(text);
  return err;
}

/* ---- The remote functions -------------------------------------------------- */

/* legacy_tool() returns a plain non-zero status, as old C code does. */
static int legacy_tool(ray_task_ctx_t *ctx, void *arg) {
  (void)ctx;
  (void)arg;
  return 3; /* not a RAY_E* code: the task fails with RAY_ETASK */
}

/* validate(x) -> i64 x, for 0 <= x <= 100. */
static int validate(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t x;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != RAY_OK) return ray_fail(ctx, rc, "argument 0 is not an i64");
  if (x < 0 || x > 100)
    return ray_fail(ctx, RAY_ETASK, "value %" PRId64 " is out of range [0, 100]", x);
  return ray_return_i64(ctx, 0, x);
}

/* flaky(k) -> i64 attempt: fails until its attempt number reaches k. */
static atomic_int g_flaky_runs;
static int flaky(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_flaky_runs, 1);
  int64_t k;
  int rc = ray_ctx_arg_i64(ctx, 0, &k);
  if (rc != RAY_OK) return rc;
  uint32_t attempt = ray_ctx_attempt(ctx);
  if ((int64_t)attempt < k)
    return ray_fail(ctx, RAY_EIO, "transient failure on attempt %" PRIu32, attempt);
  return ray_return_i64(ctx, 0, attempt);
}

/* two_results() -> (i64, i64), but it only sets the first. */
static int forgetful(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_i64(ctx, 0, 1);
}

/* add_one(x) -> i64 x + 1. */
static int add_one(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t x;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != RAY_OK) return rc;
  return ray_return_i64(ctx, 0, x + 1);
}

/* ---- The program ------------------------------------------------------------ */

int main(void) {
  CHECK(ray_init(NULL));
  const uint32_t t_i64[] = {RAY_TYPE_I64};
  const uint32_t t_i64x2[] = {RAY_TYPE_I64, RAY_TYPE_I64};
  ray_function_t f_legacy, f_validate, f_flaky, f_forgetful, f_add_one;
  CHECK(ray_function_register("legacy_tool", legacy_tool, NULL, t_i64, 1, &f_legacy));
  CHECK(ray_function_register("validate", validate, NULL, t_i64, 1, &f_validate));
  CHECK(ray_function_register("flaky", flaky, NULL, t_i64, 1, &f_flaky));
  CHECK(ray_function_register("forgetful", forgetful, NULL, t_i64x2, 2, &f_forgetful));
  CHECK(ray_function_register("add_one", add_one, NULL, t_i64, 1, &f_add_one));
  int64_t v = 0;
  ray_error_t *err;

  /* ---- 1. A non-zero return. */
  printf("== 1. a function returns a non-zero status\n");
  ray_ref_t r_legacy;
  CHECK(ray_task_submit(f_legacy, NULL, 0, NULL, &r_legacy));
  EXPECT_CODE(ray_get_i64(r_legacy, RAY_TIMEOUT_INFINITE, &v), RAY_ETASK);
  printf("  ray_get -> %s; the error object:\n", ray_err_name(RAY_ETASK));
  err = show_error(r_legacy);
  EXPECT(ray_error_code(err) == RAY_ETASK);
  EXPECT(strcmp(ray_error_origin(err), "legacy_tool") == 0);
  EXPECT(strstr(ray_error_message(err), "returned 3") != NULL);
  EXPECT(ray_error_task_id(err) != 0 && ray_error_attempts(err) == 1);
  ray_error_free(err);

  /* ---- 2. ray_fail with a message. */
  printf("\n== 2. ray_fail: a code and a message from the function\n");
  ray_arg_t a_bad = ray_arg_i64(500);
  ray_ref_t r_bad;
  CHECK(ray_task_submit(f_validate, &a_bad, 1, NULL, &r_bad));
  EXPECT_CODE(ray_get_i64(r_bad, RAY_TIMEOUT_INFINITE, &v), RAY_ETASK);
  err = show_error(r_bad);
  printf("  code %s, message \"%s\", origin \"%s\", task %" PRIu64 ", %" PRIu32 " attempt(s)\n",
         ray_err_name(ray_error_code(err)), ray_error_message(err), ray_error_origin(err),
         ray_error_task_id(err), ray_error_attempts(err));
  EXPECT(ray_error_code(err) == RAY_ETASK);
  EXPECT(strcmp(ray_error_message(err), "value 500 is out of range [0, 100]") == 0);
  EXPECT(strcmp(ray_error_origin(err), "validate") == 0);
  EXPECT(ray_error_cause(err) == NULL);
  ray_error_free(err);

  /* ---- 3. Retries. */
  printf("\n== 3. retries (max_retries with retry_on_error)\n");
  ray_task_opts_t opts;
  ray_task_opts_init(&opts);
  opts.max_retries = 3;
  opts.retry_on_error = true;
  ray_arg_t a3 = ray_arg_i64(3); /* succeeds on attempt 3 */
  ray_ref_t r_retry_ok;
  atomic_store(&g_flaky_runs, 0);
  CHECK(ray_task_submit(f_flaky, &a3, 1, &opts, &r_retry_ok));
  CHECK(ray_get_i64(r_retry_ok, RAY_TIMEOUT_INFINITE, &v));
  printf("  flaky(3), max_retries 3: succeeded on attempt %" PRId64 " (%d runs)\n", v,
         atomic_load(&g_flaky_runs));
  EXPECT(v == 3 && atomic_load(&g_flaky_runs) == 3);

  opts.max_retries = 2;
  ray_arg_t a10 = ray_arg_i64(10); /* would need 10 attempts */
  ray_ref_t r_retry_out;
  atomic_store(&g_flaky_runs, 0);
  CHECK(ray_task_submit(f_flaky, &a10, 1, &opts, &r_retry_out));
  EXPECT_CODE(ray_get_i64(r_retry_out, RAY_TIMEOUT_INFINITE, &v), RAY_EIO);
  printf("  flaky(10), max_retries 2: failed after %d runs; the last attempt's error:\n",
         atomic_load(&g_flaky_runs));
  err = show_error(r_retry_out);
  EXPECT(ray_error_code(err) == RAY_EIO && ray_error_attempts(err) == 3);
  EXPECT(strcmp(ray_error_message(err), "transient failure on attempt 3") == 0);
  EXPECT(atomic_load(&g_flaky_runs) == 3);
  ray_error_free(err);

  opts.max_retries = 5;
  opts.retry_on_error = false; /* Ray: max_retries alone covers system failures only */
  ray_ref_t r_no_retry;
  atomic_store(&g_flaky_runs, 0);
  CHECK(ray_task_submit(f_flaky, &a3, 1, &opts, &r_no_retry));
  EXPECT_CODE(ray_get_i64(r_no_retry, RAY_TIMEOUT_INFINITE, &v), RAY_EIO);
  err = NULL;
  CHECK(ray_get_error(r_no_retry, &err));
  printf("  flaky(3), max_retries 5 but retry_on_error off: %s after %" PRIu32 " attempt(s)\n",
         ray_err_name(ray_error_code(err)), ray_error_attempts(err));
  EXPECT(ray_error_attempts(err) == 1 && atomic_load(&g_flaky_runs) == 1);
  ray_error_free(err);

  /* ---- 4. A result slot left unset. */
  printf("\n== 4. a result the function did not set\n");
  ray_ref_t r_two[2];
  CHECK(ray_task_submit(f_forgetful, NULL, 0, NULL, r_two));
  CHECK(ray_get_i64(r_two[0], RAY_TIMEOUT_INFINITE, &v));
  printf("  slot 0 = %" PRId64 "; ", v);
  EXPECT(v == 1);
  EXPECT_CODE(ray_get_i64(r_two[1], RAY_TIMEOUT_INFINITE, &v), RAY_ENORESULT);
  printf("slot 1 -> %s:\n", ray_err_name(RAY_ENORESULT));
  err = show_error(r_two[1]);
  EXPECT(ray_error_code(err) == RAY_ENORESULT);
  ray_error_free(err);

  /* ---- 5. A dependency failure chain. */
  printf("\n== 5. a failure travels down the graph\n");
  printf("  validate(500) -> add_one -> add_one -> add_one, submitted at once\n");
  ray_ref_t chain[4];
  chain[0] = r_bad; /* validate(500) from part 2: failed */
  for (int i = 1; i < 4; i++) {
    ray_arg_t a = ray_arg_ref(chain[i - 1]);
    ray_task_opts_init(&opts);
    char name[32];
    snprintf(name, sizeof name, "add_one#%d", i);
    opts.name = name; /* copied at submission */
    CHECK(ray_task_submit(f_add_one, &a, 1, &opts, &chain[i]));
  }
  /* The caller may drop the upstream refs: a failed result keeps what its
   * error refers to alive. */
  CHECK(ray_ref_release(chain[1]));
  CHECK(ray_ref_release(chain[2]));
  EXPECT_CODE(ray_get_i64(chain[3], RAY_TIMEOUT_INFINITE, &v), RAY_EDEPFAILED);
  printf("  ray_get(last) -> %s; ray_error_format of its error:\n", ray_err_name(RAY_EDEPFAILED));
  err = show_error(chain[3]);
  /* Walk it: three dependency failures, then validate's own error. */
  const ray_error_t *e = err;
  const char *origins[] = {"add_one#3", "add_one#2", "add_one#1", "validate"};
  const int codes[] = {RAY_EDEPFAILED, RAY_EDEPFAILED, RAY_EDEPFAILED, RAY_ETASK};
  for (int i = 0; i < 4; i++, e = ray_error_cause(e)) {
    EXPECT(e != NULL);
    EXPECT(ray_error_code(e) == codes[i]);
    EXPECT(strcmp(ray_error_origin(e), origins[i]) == 0);
  }
  EXPECT(e == NULL);
  printf("  the chain has 4 links, outermost first, ending at validate's own error\n");
  ray_error_free(err);

  CHECK(ray_ref_release(r_legacy));
  CHECK(ray_ref_release(r_bad));
  CHECK(ray_ref_release(r_retry_ok));
  CHECK(ray_ref_release(r_retry_out));
  CHECK(ray_ref_release(r_no_retry));
  CHECK(ray_ref_release(r_two[0]));
  CHECK(ray_ref_release(r_two[1]));
  CHECK(ray_ref_release(chain[3]));
  CHECK(ray_shutdown());
  printf("\nshutdown: OK\n");
  return 0;
}
