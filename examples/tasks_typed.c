/* tasks_typed.c - tasks.c with the typed layer (rustyray/typed.h).
 *
 * The same task graph as tasks.c, submitted in one go before any of it runs:
 *
 *                  load(1000)                 the numbers 1..1000 (bytes)
 *                 /          \
 *     stats(data)              scale(data, 2.0)
 *     -> sum, count              -> data' (bytes)
 *          |      \                   |
 *          |       \              total(data')
 *          |        combine(sum, count, total')  -> "mean 500.5, ..." (str)
 *     larger(sum, total')   -> the larger of the two (f64)
 *
 * Each function is declared once with its C signature: RAY_FUNCTION defines
 * its registration (before main: no ray_function_register calls), the
 * decoding of its arguments and a typed submit. RAY_CALL takes a plain
 * value or a typed ref per argument and returns typed refs, so a ref of the
 * wrong kind, a value of the wrong type or a wrong argument count does not
 * compile. (tasks.c's `larger` returns one of its argument objects with
 * ray_return_ref; a typed body returns a value, so here it is a new one.)
 *
 * It checks every value and exits non-zero on a mismatch (example_tasks_typed). */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rustyray.h"
#include "rustyray/typed.h"

/* The free callback (ray_free_fn) of a malloc'd buffer handed to the store
 * without a copy; this program needs no arg. */
static void free_buffer(void *data, void *arg) {
  (void)arg;
  free(data);
}

#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      fprintf(stderr, "tasks_typed:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                            \
    }                                                                     \
  } while (0)

/* RAY_GET, printing the error chain of a failed result (never expected). */
#define GET(r, out)                                               \
  do {                                                            \
    int get_rc_ = RAY_GET((r), RAY_TIMEOUT_INFINITE, (out));      \
    if (get_rc_ != RAY_OK) fail_with_chain(#r, (r).ref, get_rc_); \
  } while (0)

static void fail_with_chain(const char *what, ray_ref_t ref, int rc) {
  ray_error_t *err = NULL;
  char text[2048] = "(no error object)";
  if (ray_get_error(ref, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  fprintf(stderr, "tasks_typed: %s failed with %s:\n%s\n", what, ray_err_name(rc), text);
  exit(1);
}

/* ---- The remote functions -------------------------------------------------- */

static atomic_int g_runs; /* how many task bodies ran, for the summary */

/* load(n) -> bytes: the doubles 1..n, handed to the store without a copy. */
RAY_FUNCTION(bytes, load, (i64, n)) {
  atomic_fetch_add(&g_runs, 1);
  double *xs = n > 0 && n <= 1000000 ? malloc((size_t)n * sizeof *xs) : NULL;
  if (xs == NULL) return ray_fail(RAY_CTX, RAY_EINVAL, "load: n = %" PRId64, n), RAY_BYTES(NULL, 0);
  for (int64_t i = 0; i < n; i++) xs[i] = (double)(i + 1);
  return RAY_BYTES_OWNED(xs, (size_t)n * sizeof *xs, free_buffer, NULL);
}

/* stats(data) -> (f64 sum, i64 count): two returns. */
RAY_FUNCTION(((f64, sum), (i64, count)), stats, (bytes, data)) {
  atomic_fetch_add(&g_runs, 1);
  const double *xs = data.data;
  RAY_RESULT(stats) r = {0, (int64_t)(data.size / sizeof *xs)};
  for (int64_t i = 0; i < r.count; i++) r.sum += xs[i];
  return r;
}

/* scale(data, factor) -> bytes: every value times factor. */
RAY_FUNCTION(bytes, scale, (bytes, data), (f64, factor)) {
  atomic_fetch_add(&g_runs, 1);
  const double *xs = data.data;
  double *ys = malloc(data.size > 0 ? data.size : 1);
  if (ys == NULL) return ray_fail(RAY_CTX, RAY_ENOMEM, "scale: no memory"), RAY_BYTES(NULL, 0);
  for (size_t i = 0; i < data.size / sizeof *xs; i++) ys[i] = xs[i] * factor;
  return RAY_BYTES_OWNED(ys, data.size, free_buffer, NULL);
}

/* total(data) -> f64. */
RAY_FUNCTION(f64, total, (bytes, data)) {
  atomic_fetch_add(&g_runs, 1);
  const double *xs = data.data;
  double sum = 0;
  for (size_t i = 0; i < data.size / sizeof *xs; i++) sum += xs[i];
  return sum;
}

/* combine(sum, count, scaled_total) -> str (a malloc'd string the layer frees). */
RAY_FUNCTION(str, combine, (f64, sum), (i64, count), (f64, scaled)) {
  atomic_fetch_add(&g_runs, 1);
  if (count == 0) return ray_fail(RAY_CTX, RAY_EINVAL, "combine: no data"), NULL;
  return ray_str_format("mean %.1f, scaled total %.0f (%" PRId64 " values)", sum / count, scaled,
                        count);
}

/* larger(a, b) -> f64. */
RAY_FUNCTION(f64, larger, (f64, a), (f64, b)) {
  atomic_fetch_add(&g_runs, 1);
  return a >= b ? a : b;
}

/* ---- The program ------------------------------------------------------------ */

int main(void) {
  EXPECT(ray_init(NULL) == RAY_OK);

  /* 1. Every RAY_FUNCTION registered itself, by name, before main. */
  printf("== registered before main (name, returns)\n");
  const char *names[] = {"load", "stats", "scale", "total", "combine", "larger"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    ray_function_t fn;
    size_t nret = 0;
    EXPECT(ray_function_lookup(names[i], &fn) == RAY_OK);
    EXPECT(ray_function_info(fn, NULL, &nret) == RAY_OK);
    printf("  %-8s %zu return(s)\n", names[i], nret);
  }

  /* 2. Submit the whole graph: values or refs per argument, typed refs back. */
  printf("\n== submit the graph (no waiting)\n");
  RAY_REF(bytes) data = load(1000);
  RAY_REFS(stats) sc = RAY_CALL(stats, data);
  RAY_REF(bytes) scaled = RAY_CALL(scale, data, 2.0);
  RAY_REF(f64) scaled_total = RAY_CALL(total, scaled);
  ray_task_opts_t opts;
  ray_task_opts_init(&opts);
  opts.name = "combine[summary]"; /* a display name for errors and logs */
  RAY_REF(str) summary = RAY_CALL_OPTS(&opts, combine, sc.sum, sc.count, scaled_total);
  RAY_REF(f64) big = RAY_CALL(larger, sc.sum, scaled_total);
  printf("  typed at submission: data %s, sum %s, count %s, summary %s\n",
         data.ref.type == RAY_TYPE_BYTES ? "bytes" : "?",
         sc.sum.ref.type == RAY_TYPE_F64 ? "f64" : "?",
         sc.count.ref.type == RAY_TYPE_I64 ? "i64" : "?",
         summary.ref.type == RAY_TYPE_STR ? "str" : "?");
  /* The intermediate ref can go now: the tasks hold their own. */
  EXPECT(ray_ref_release(scaled.ref) == RAY_OK);

  /* 3. Get the results, each into its own C type. */
  printf("\n== get the results\n");
  char *text = NULL;
  GET(summary, &text);
  printf("  summary = \"%s\"\n", text);
  EXPECT(strcmp(text, "mean 500.5, scaled total 1001000 (1000 values)") == 0);
  ray_free(text);
  double sum = 0, st = 0, mx = 0;
  int64_t count = 0;
  GET(sc.sum, &sum);
  GET(sc.count, &count);
  GET(scaled_total, &st);
  GET(big, &mx);
  printf("  sum = %.0f, count = %" PRId64 ", scaled total = %.0f, larger = %.0f\n", sum, count, st,
         mx);
  EXPECT(sum == 500500.0 && count == 1000 && st == 1001000.0 && mx == 1001000.0);
  ray_buf_t view; /* the data itself, zero-copy: the buffer `load` handed over */
  GET(data, &view);
  const double *xs = view.data;
  printf("  data: %zu doubles, first %.0f, last %.0f\n", view.size / sizeof *xs, xs[0], xs[999]);
  EXPECT(view.size == 1000 * sizeof *xs && xs[0] == 1.0 && xs[999] == 1000.0);
  ray_buf_release(&view);

  /* 4. Release everything; the store ends empty. */
  const ray_ref_t all[] = {data.ref,         sc.sum.ref,  sc.count.ref,
                           scaled_total.ref, summary.ref, big.ref};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) EXPECT(ray_ref_release(all[i]) == RAY_OK);
  printf("\n%d task bodies ran (one per task, no retries)\n", atomic_load(&g_runs));
  EXPECT(atomic_load(&g_runs) == 6);
  EXPECT(ray_shutdown() == RAY_OK);
  printf("shutdown: OK\n");
  return 0;
}
