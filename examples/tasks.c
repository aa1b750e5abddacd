/* tasks.c - remote functions and a small task graph.
 *
 * Ray's @ray.remote functions, in C. The program registers five functions,
 * each with its return types, and submits this graph in one go, before any
 * of it has run:
 *
 *                  load(1000)                 the numbers 1..1000 (bytes)
 *                 /          \
 *     stats(data)              scale(data, 2.0)
 *     -> sum, count              -> data' (bytes)
 *     (two returns)                   |
 *          |      \               total(data')
 *          |       \                  |
 *          |        combine(sum, count, total')  -> "mean 500.5, ..." (str)
 *          |
 *     larger(sum, total') -> whichever ref is larger (ray_return_ref)
 *
 * Every arrow is an ObjectRef passed as an argument (ray_arg_ref): a task
 * starts only when all its ref arguments are ready, and it reads them
 * zero-copy. Result refs come back from ray_task_submit at once, typed as
 * the function was registered, so `combine`'s result is known to be a
 * string before anything has run.
 *
 * It checks every value and return code and exits non-zero on a mismatch,
 * so it doubles as a test (ctest runs it as example_tasks). */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rustyray.h"

/* The free callback (ray_free_fn) of a malloc'd buffer handed to the store
 * without a copy; this program needs no arg. */
static void free_buffer(void *data, void *arg) {
  (void)arg;
  free(data);
}

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                                                \
  do {                                                                                             \
    int check_rc_ = (call);                                                                        \
    if (check_rc_ != RAY_OK) {                                                                     \
      fprintf(stderr, "tasks:%d: %s returned %s (%s)\n", __LINE__, #call, ray_err_name(check_rc_), \
              ray_strerror(check_rc_));                                                            \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

#define EXPECT(cond)                                                \
  do {                                                              \
    if (!(cond)) {                                                  \
      fprintf(stderr, "tasks:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                      \
    }                                                               \
  } while (0)

/* Inside a task: a failing call fails the task with a message saying which. */
#define TRY(ctx, call)                                                         \
  do {                                                                         \
    int try_rc_ = (call);                                                      \
    if (try_rc_ != RAY_OK)                                                     \
      return ray_fail((ctx), try_rc_, "%s: %s", #call, ray_err_name(try_rc_)); \
  } while (0)

/* Print a failed result's error chain and exit (should never happen here). */
static void fail_with_chain(const char *what, ray_ref_t ref, int rc) {
  ray_error_t *err = NULL;
  char text[2048] = "(no error object)";
  if (ray_get_error(ref, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  fprintf(stderr, "tasks: %s failed with %s:\n%s\n", what, ray_err_name(rc), text);
  exit(1);
}

/* ---- The remote functions -------------------------------------------------- */

static atomic_int g_runs; /* how many task bodies ran, for the summary */

/* load(n) -> bytes: the doubles 1..n. The buffer is handed to the store
 * without a copy (ray_return_owned); the store frees it with free(). */
static int load(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_runs, 1);
  int64_t n;
  TRY(ctx, ray_ctx_arg_i64(ctx, 0, &n));
  if (n <= 0 || n > 1000000) return ray_fail(ctx, RAY_EINVAL, "load: n = %" PRId64, n);
  double *xs = malloc((size_t)n * sizeof *xs);
  if (xs == NULL) return ray_fail(ctx, RAY_ENOMEM, "load: no memory for %" PRId64, n);
  for (int64_t i = 0; i < n; i++) xs[i] = (double)(i + 1);
  int rc = ray_return_owned(ctx, 0, xs, (size_t)n * sizeof *xs, free_buffer, NULL);
  if (rc != RAY_OK) free(xs); /* on error the buffer is still ours */
  TRY(ctx, rc);
  return 0;
}

/* The doubles of a bytes argument, read zero-copy from the store. */
static int arg_doubles(ray_task_ctx_t *ctx, size_t i, const double **xs, size_t *n) {
  const void *data;
  size_t size;
  int rc = ray_ctx_arg_bytes(ctx, i, &data, &size);
  if (rc != RAY_OK) return rc;
  if (size % sizeof(double) != 0) return RAY_EDECODE;
  *xs = data;
  *n = size / sizeof(double);
  return 0;
}

/* stats(data) -> (f64 sum, i64 count): two return slots. */
static int stats(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_runs, 1);
  const double *xs;
  size_t n;
  TRY(ctx, arg_doubles(ctx, 0, &xs, &n));
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += xs[i];
  TRY(ctx, ray_return_f64(ctx, 0, sum));
  TRY(ctx, ray_return_i64(ctx, 1, (int64_t)n));
  return 0;
}

/* scale(data, factor) -> bytes: every value times factor. */
static int scale(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_runs, 1);
  const double *xs;
  size_t n;
  double factor;
  TRY(ctx, arg_doubles(ctx, 0, &xs, &n));
  TRY(ctx, ray_ctx_arg_f64(ctx, 1, &factor));
  double *ys = malloc(n * sizeof *ys);
  if (ys == NULL) return ray_fail(ctx, RAY_ENOMEM, "scale: no memory");
  for (size_t i = 0; i < n; i++) ys[i] = xs[i] * factor;
  int rc = ray_return_owned(ctx, 0, ys, n * sizeof *ys, free_buffer, NULL);
  if (rc != RAY_OK) free(ys);
  TRY(ctx, rc);
  return 0;
}

/* total(data) -> f64. */
static int total(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_runs, 1);
  const double *xs;
  size_t n;
  TRY(ctx, arg_doubles(ctx, 0, &xs, &n));
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += xs[i];
  TRY(ctx, ray_return_f64(ctx, 0, sum));
  return 0;
}

/* combine(sum, count, scaled_total) -> str. */
static int combine(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_runs, 1);
  double sum, scaled;
  int64_t count;
  TRY(ctx, ray_ctx_arg_f64(ctx, 0, &sum));
  TRY(ctx, ray_ctx_arg_i64(ctx, 1, &count));
  TRY(ctx, ray_ctx_arg_f64(ctx, 2, &scaled));
  if (count == 0) return ray_fail(ctx, RAY_EINVAL, "combine: no data");
  char text[128];
  snprintf(text, sizeof text, "mean %.1f, scaled total %.0f (%" PRId64 " values)", sum / count,
           scaled, count);
  TRY(ctx, ray_return_str(ctx, 0, text));
  return 0;
}

/* larger(a, b) -> the larger of two f64 objects, returned as the existing
 * object itself (ray_return_ref: shared, not copied). */
static int larger(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_runs, 1);
  double a, b;
  ray_ref_t ra, rb;
  TRY(ctx, ray_ctx_arg_f64(ctx, 0, &a));
  TRY(ctx, ray_ctx_arg_f64(ctx, 1, &b));
  TRY(ctx, ray_ctx_arg_ref(ctx, 0, &ra)); /* the refs they were passed as */
  TRY(ctx, ray_ctx_arg_ref(ctx, 1, &rb));
  TRY(ctx, ray_return_ref(ctx, 0, a >= b ? ra : rb));
  return 0;
}

/* ---- The program ------------------------------------------------------------ */

static const char *type_name(uint32_t type) {
  switch (type) {
    case RAY_TYPE_BYTES:
      return "bytes";
    case RAY_TYPE_I64:
      return "i64";
    case RAY_TYPE_F64:
      return "f64";
    case RAY_TYPE_STR:
      return "str";
    case RAY_TYPE_MSGPACK:
      return "msgpack";
    default:
      return "user";
  }
}

int main(void) {
  CHECK(ray_init(NULL));
  ray_stats_t rs;
  CHECK(ray_stats(&rs));
  printf("runtime started: %" PRIu64 " worker threads\n", rs.num_workers);

  /* 1. Register the functions with their return types. */
  printf("\n== register functions (name, returns)\n");
  const uint32_t t_bytes[] = {RAY_TYPE_BYTES};
  const uint32_t t_stats[] = {RAY_TYPE_F64, RAY_TYPE_I64};
  const uint32_t t_f64[] = {RAY_TYPE_F64};
  const uint32_t t_str[] = {RAY_TYPE_STR};
  ray_function_t f_load, f_stats, f_scale, f_total, f_combine, f_larger;
  CHECK(ray_function_register("load", load, NULL, t_bytes, 1, &f_load));
  CHECK(ray_function_register("stats", stats, NULL, t_stats, 2, &f_stats));
  CHECK(ray_function_register("scale", scale, NULL, t_bytes, 1, &f_scale));
  CHECK(ray_function_register("total", total, NULL, t_f64, 1, &f_total));
  CHECK(ray_function_register("combine", combine, NULL, t_str, 1, &f_combine));
  CHECK(ray_function_register("larger", larger, NULL, t_f64, 1, &f_larger));
  const ray_function_t all[] = {f_load, f_stats, f_scale, f_total, f_combine, f_larger};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    const char *name;
    size_t nret;
    CHECK(ray_function_info(all[i], &name, &nret));
    printf("  %-8s %zu return(s)\n", name, nret);
  }
  /* Functions are found by name too (for logs, and later for other processes). */
  ray_function_t found;
  CHECK(ray_function_lookup("combine", &found));
  EXPECT(found.id == f_combine.id);
  int dup = ray_function_register("combine", combine, NULL, t_str, 1, &found);
  printf("lookup(\"combine\") finds the same handle; registering \"combine\" again: %s\n",
         ray_err_name(dup));
  EXPECT(dup == RAY_ENAMEEXISTS);

  /* 2. Submit the whole graph. Nothing waits here: each call returns at once
   *    with result refs, and each task runs when its ref arguments are ready. */
  printf("\n== submit the graph (no waiting)\n");
  ray_arg_t a_load[] = {ray_arg_i64(1000)};
  ray_ref_t data;
  CHECK(ray_task_submit(f_load, a_load, 1, NULL, &data));

  ray_arg_t a_stats[] = {ray_arg_ref(data)};
  ray_ref_t sum_count[2]; /* two returns: sum and count */
  ray_task_opts_t opts;
  ray_task_opts_init(&opts);
  opts.num_returns = 2; /* optional: a check against the registration */
  CHECK(ray_task_submit(f_stats, a_stats, 1, &opts, sum_count));

  ray_arg_t a_scale[] = {ray_arg_ref(data), ray_arg_f64(2.0)};
  ray_ref_t scaled;
  CHECK(ray_task_submit(f_scale, a_scale, 2, NULL, &scaled));

  ray_arg_t a_total[] = {ray_arg_ref(scaled)};
  ray_ref_t scaled_total;
  CHECK(ray_task_submit(f_total, a_total, 1, NULL, &scaled_total));

  ray_arg_t a_combine[] = {ray_arg_ref(sum_count[0]), ray_arg_ref(sum_count[1]),
                           ray_arg_ref(scaled_total)};
  ray_ref_t summary;
  ray_task_opts_init(&opts);
  opts.name = "combine[summary]"; /* a display name for errors and logs */
  CHECK(ray_task_submit(f_combine, a_combine, 3, &opts, &summary));

  ray_arg_t a_larger[] = {ray_arg_ref(sum_count[0]), ray_arg_ref(scaled_total)};
  ray_ref_t big;
  CHECK(ray_task_submit(f_larger, a_larger, 2, NULL, &big));

  const struct {
    const char *what;
    ray_ref_t ref;
    uint32_t want;
  } results[] = {
      {"load -> data", data, RAY_TYPE_BYTES},
      {"stats -> sum", sum_count[0], RAY_TYPE_F64},
      {"stats -> count", sum_count[1], RAY_TYPE_I64},
      {"scale -> data'", scaled, RAY_TYPE_BYTES},
      {"total -> total'", scaled_total, RAY_TYPE_F64},
      {"combine -> summary", summary, RAY_TYPE_STR},
      {"larger -> max", big, RAY_TYPE_F64},
  };
  for (size_t i = 0; i < sizeof results / sizeof results[0]; i++) {
    printf("  %-20s ref %-6" PRIu64 " typed %s at submission\n", results[i].what, results[i].ref.id,
           type_name(results[i].ref.type));
    EXPECT(results[i].ref.type == results[i].want);
  }

  /* The caller's refs to the intermediate results can go now: each task
   * holds its own reference to its arguments until it finishes. */
  CHECK(ray_ref_release(scaled));

  /* 3. Get the results. */
  printf("\n== get the results\n");
  char *text = NULL;
  size_t len = 0;
  int rc = ray_get_str(summary, RAY_TIMEOUT_INFINITE, &text, &len);
  if (rc != RAY_OK) fail_with_chain("combine", summary, rc);
  printf("  summary = \"%s\"\n", text);
  EXPECT(strcmp(text, "mean 500.5, scaled total 1001000 (1000 values)") == 0);
  ray_free(text);

  double sum = 0, st = 0, mx = 0;
  int64_t count = 0;
  if ((rc = ray_get_f64(sum_count[0], RAY_TIMEOUT_INFINITE, &sum)) != RAY_OK)
    fail_with_chain("stats", sum_count[0], rc);
  CHECK(ray_get_i64(sum_count[1], RAY_TIMEOUT_INFINITE, &count));
  CHECK(ray_get_f64(scaled_total, RAY_TIMEOUT_INFINITE, &st));
  printf("  sum = %.0f, count = %" PRId64 ", scaled total = %.0f\n", sum, count, st);
  EXPECT(sum == 500500.0 && count == 1000 && st == 1001000.0);

  if ((rc = ray_get_f64(big, RAY_TIMEOUT_INFINITE, &mx)) != RAY_OK)
    fail_with_chain("larger", big, rc);
  printf("  larger(sum, scaled total) = %.0f (the scaled total's object, shared)\n", mx);
  EXPECT(mx == 1001000.0);

  /* The data itself, zero-copy: a view into the buffer `load` handed over. */
  ray_buf_t view;
  CHECK(ray_get(data, RAY_TIMEOUT_INFINITE, &view));
  const double *xs = view.data;
  printf("  data: %zu doubles, first %.0f, last %.0f\n", view.size / sizeof(double), xs[0],
         xs[view.size / sizeof(double) - 1]);
  EXPECT(view.size == 1000 * sizeof(double) && xs[0] == 1.0 && xs[999] == 1000.0);
  ray_buf_release(&view);

  /* 4. Release everything; the store ends empty. */
  CHECK(ray_ref_release(data));
  CHECK(ray_ref_release(sum_count[0]));
  CHECK(ray_ref_release(sum_count[1]));
  CHECK(ray_ref_release(scaled_total));
  CHECK(ray_ref_release(summary));
  CHECK(ray_ref_release(big));
  printf("\n%d task bodies ran (one per task, no retries)\n", atomic_load(&g_runs));
  EXPECT(atomic_load(&g_runs) == 6);

  CHECK(ray_shutdown());
  printf("shutdown: OK\n");
  return 0;
}
