/* parallel_mergesort.c - nested tasks sorting 10,000,000 integers.
 *
 * A divide-and-conquer workload, the way Ray's docs sort with nested
 * remote functions:
 *
 *     sort(data, 0, n)                     each task that is still too big
 *       +-- sort(data, 0, n/2)             submits two child tasks for its
 *       |     +-- sort(data, 0, n/4)       halves, waits for both (a nested
 *       |     +-- ...                      ray_get_batch inside a task), and
 *       +-- sort(data, n/2, n)             merges them; below the cutoff a
 *             +-- ...                      task sorts its slice with qsort.
 *
 * Nothing is copied needlessly: the input goes into the store without a
 * copy (ray_put_owned) and every task reads it through the same ref,
 * zero-copy; each task hands its sorted buffer to the store without a copy
 * (ray_return_owned), and its parent reads both halves zero-copy and merges
 * them into a new buffer. The only copies are the leaves' slices (qsort
 * sorts in place, and the input is shared and immutable) and the merges.
 *
 * The program sorts a copy of the same data with one qsort call on the
 * calling thread, then runs the task tree twice, on a runtime of one worker
 * and on one of every CPU; it checks that each result is sorted and
 * identical to qsort's, and prints the three times and their ratios, all
 * measured in the same run. The one-worker run separates what the algorithm
 * gains or loses against qsort (merging cache-sized sorted runs, the copies)
 * from what the parallelism adds; with W cores expect the latter to be
 * somewhat below W.
 *
 * As an MPI job (RAY_CLUSTER=mpi mpirun -np 4 ./parallel_mergesort; see
 * docs/cluster.md) the same binary runs the tree once, on every CPU of rank
 * 0: MPI starts once per process, and nested tasks stay on their parent's
 * rank unless placed.
 *
 * Usage: parallel_mergesort [count]. Default 10,000,000; 200,000 when run
 * under valgrind or with RAY_EXAMPLE_SMALL set, and 1,000,000 in a
 * ThreadSanitizer build, so the checked builds stay quick. It exits
 * non-zero on any mismatch (ctest runs it as example_parallel_mergesort). */
/* clock_gettime and strtoll need POSIX. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rustyray.h"

/* The free callback (ray_free_fn) of a malloc'd buffer handed to the store
 * without a copy; this program needs no arg. */
static void free_buffer(void *data, void *arg) {
  (void)arg;
  free(data);
}

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                                    \
  do {                                                                                 \
    int check_rc_ = (call);                                                            \
    if (check_rc_ != RAY_OK) {                                                         \
      fprintf(stderr, "parallel_mergesort:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                       \
      exit(1);                                                                         \
    }                                                                                  \
  } while (0)

#define EXPECT(cond)                                                             \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "parallel_mergesort:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

/* Inside a task: a failing call fails the task with a message saying which. */
#define TRY(ctx, call)                                                         \
  do {                                                                         \
    int try_rc_ = (call);                                                      \
    if (try_rc_ != RAY_OK)                                                     \
      return ray_fail((ctx), try_rc_, "%s: %s", #call, ray_err_name(try_rc_)); \
  } while (0)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Sorting helpers --------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void merge(const int64_t *a, size_t na, const int64_t *b, size_t nb, int64_t *out) {
  size_t i = 0, j = 0, k = 0;
  while (i < na && j < nb) out[k++] = b[j] < a[i] ? b[j++] : a[i++]; /* stable: a first */
  while (i < na) out[k++] = a[i++];
  while (j < nb) out[k++] = b[j++];
}

/* A deterministic pseudo-random sequence (splitmix64) over the whole int64
 * range, negatives included. */
static uint64_t splitmix64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* ---- The remote function --------------------------------------------------------- */

static ray_function_t g_sort; /* sort's own handle: it submits itself */
static int sort_task(ray_task_ctx_t *ctx, void *arg);
/* Registered by every ray_init (in cluster mode on every rank). */
static const uint32_t t_bytes[] = {RAY_TYPE_BYTES};
static ray_static_function_t s_sort = {"sort", sort_task, NULL, t_bytes, 1, &g_sort, NULL};
static int64_t g_cutoff; /* slices at most this long are sorted directly */

/* sort(data, lo, hi) -> bytes: the int64s data[lo..hi), sorted. */
static int sort_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *bytes;
  size_t size;
  int64_t lo, hi;
  TRY(ctx, ray_ctx_arg_bytes(ctx, 0, &bytes, &size)); /* the whole input, zero-copy */
  TRY(ctx, ray_ctx_arg_i64(ctx, 1, &lo));
  TRY(ctx, ray_ctx_arg_i64(ctx, 2, &hi));
  const int64_t *data = bytes;
  if (lo < 0 || hi < lo || (size_t)hi > size / sizeof *data)
    return ray_fail(ctx, RAY_EINVAL, "sort: bad slice [%" PRId64 ", %" PRId64 ")", lo, hi);
  size_t n = (size_t)(hi - lo);
  int64_t *out = malloc(n > 0 ? n * sizeof *out : 1);
  if (out == NULL) return ray_fail(ctx, RAY_ENOMEM, "sort: no memory for %zu values", n);

  if ((int64_t)n <= g_cutoff) {
    memcpy(out, data + lo, n * sizeof *out);
    qsort(out, n, sizeof *out, cmp_i64);
  } else {
    /* Two child tasks over the same input ref (the ref we were given,
     * borrowed: each child holds its own reference while it runs). */
    ray_ref_t input;
    int64_t mid = lo + (int64_t)n / 2;
    ray_ref_t halves[2];
    int rc = ray_ctx_arg_ref(ctx, 0, &input);
    ray_arg_t left[] = {ray_arg_ref(input), ray_arg_i64(lo), ray_arg_i64(mid)};
    ray_arg_t right[] = {ray_arg_ref(input), ray_arg_i64(mid), ray_arg_i64(hi)};
    if (rc == 0) rc = ray_task_submit(g_sort, left, 3, NULL, &halves[0]);
    if (rc == 0 && (rc = ray_task_submit(g_sort, right, 3, NULL, &halves[1])) != 0)
      ray_ref_release(halves[0]);
    if (rc != 0) {
      free(out);
      return ray_fail(ctx, rc, "sort: cannot submit the halves: %s", ray_err_name(rc));
    }
    /* A nested get: this worker runs the children it just queued itself
     * while it waits, and the pool never deadlocks, whatever its size. */
    ray_buf_t v[2];
    rc = ray_get_batch(halves, 2, RAY_TIMEOUT_INFINITE, v);
    ray_ref_release_batch(halves, 2); /* the views keep the payloads */
    if (rc != 0) {
      free(out);
      return ray_fail(ctx, rc, "sort: a half failed: %s", ray_err_name(rc));
    }
    merge(v[0].data, v[0].size / sizeof *out, v[1].data, v[1].size / sizeof *out, out);
    ray_buf_release(&v[0]);
    ray_buf_release(&v[1]);
  }
  int rc = ray_return_owned(ctx, 0, out, n * sizeof *out, free_buffer, NULL);
  if (rc != 0) free(out); /* on error the buffer is still ours */
  TRY(ctx, rc);
  return 0;
}

/* ---- The program ------------------------------------------------------------ */

/* Sort `src` (n values) with the nested tasks on the running runtime,
 * check the result against `want` (qsort's), shut the runtime down and
 * return the time from submission to result. */
static double run_sort(const int64_t *src, const int64_t *want, int64_t n) {
  ray_stats_t st;
  CHECK(ray_stats(&st));
  unsigned workers = (unsigned)st.num_workers;

  /* The store takes the buffer as it is (no copy) and frees it when the
   * last reference goes. */
  size_t bytes = (size_t)n * sizeof(int64_t);
  int64_t *data = malloc(bytes);
  EXPECT(data != NULL);
  memcpy(data, src, bytes);
  double t0 = now_s();
  ray_ref_t input, sorted;
  CHECK(ray_put_owned(data, bytes, free_buffer, NULL, &input));
  ray_arg_t args[] = {ray_arg_ref(input), ray_arg_i64(0), ray_arg_i64(n)};
  CHECK(ray_task_submit(g_sort, args, 3, NULL, &sorted));
  CHECK(ray_ref_release(input)); /* the task holds its own reference */
  ray_buf_t view;
  int rc = ray_get(sorted, RAY_TIMEOUT_INFINITE, &view);
  double took = now_s() - t0;
  if (rc != RAY_OK) {
    ray_error_t *err = NULL;
    char text[2048] = "(no error object)";
    if (ray_get_error(sorted, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
    ray_error_free(err);
    fprintf(stderr, "parallel_mergesort: sort failed with %s:\n%s\n", ray_err_name(rc), text);
    exit(1);
  }
  CHECK(ray_stats(&st));
  /* A binary tree of tasks: at least ceil(n / cutoff) leaves and one fewer
   * inner tasks. */
  int64_t leaves_min = (n + g_cutoff - 1) / g_cutoff;
  EXPECT(st.tasks_submitted >= (uint64_t)(2 * leaves_min - 1));

  /* Check: sorted, and the very same values as qsort's result. */
  const int64_t *out = view.data;
  EXPECT(view.size == bytes);
  for (int64_t i = 1; i < n; i++) EXPECT(out[i - 1] <= out[i]);
  EXPECT(memcmp(out, want, bytes) == 0);
  printf("  %u worker(s): %.3f s, %" PRIu64 " tasks, %" PRIu64
         " threads at the end (spares included); sorted and identical to qsort's result\n",
         workers, took, st.tasks_submitted, st.num_workers);
  ray_buf_release(&view);
  CHECK(ray_ref_release(sorted));
  CHECK(ray_shutdown());
  return took;
}

/* Valgrind preloads its own libraries into the program it runs. */
static bool under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p != NULL && strstr(p, "vgpreload") != NULL;
}

/* ThreadSanitizer builds check for races, not speed: a smaller input. */
#if defined(__SANITIZE_THREAD__)
#define RAY_EXAMPLE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RAY_EXAMPLE_TSAN 1
#endif
#endif

int main(int argc, char **argv) {
  int64_t n = 10 * 1000 * 1000;
#ifdef RAY_EXAMPLE_TSAN
  n = 1000 * 1000;
#endif
  if (under_valgrind() || getenv("RAY_EXAMPLE_SMALL") != NULL) n = 200 * 1000;
  if (argc > 1) {
    char *end;
    n = strtoll(argv[1], &end, 10);
    if (*end != '\0' || n < 1 || n > ((int64_t)1 << 32)) {
      fprintf(stderr, "usage: %s [count (1..2^32)]\n", argv[0]);
      return 2;
    }
  }
  ray_config_t cfg;
  CHECK(ray_config_init(&cfg));
  unsigned cpus = cfg.num_workers;
  /* As an MPI job (RAY_CLUSTER=mpi; docs/cluster.md) a process starts its
   * runtime once: one run, on every CPU. Otherwise the first run has one
   * worker. ray_init comes first: in cluster mode only rank 0 goes on. */
  bool cluster = cfg.cluster != RAY_CLUSTER_NONE;
  ray_static_function_add(&s_sort);
  cfg.num_workers = cluster ? cpus : 1;
  CHECK(ray_init(&cfg));
  /* About 16 leaves per worker: enough to keep every worker busy, few
   * enough that task overhead is noise next to sorting. */
  g_cutoff = n / (16 * (int64_t)cpus);
  if (g_cutoff < 4096) g_cutoff = 4096;
  printf("sorting %" PRId64 " int64 values (%.0f MB), leaves of <= %" PRId64 " values\n", n,
         (double)n * 8 / 1e6, g_cutoff);

  /* The input, generated once; a copy sorted by qsort is the reference. */
  size_t bytes = (size_t)n * sizeof(int64_t);
  int64_t *data = malloc(bytes), *baseline = malloc(bytes);
  EXPECT(data != NULL && baseline != NULL);
  uint64_t seed = 2024;
  for (int64_t i = 0; i < n; i++) data[i] = (int64_t)splitmix64(&seed);
  memcpy(baseline, data, bytes);

  printf("\n== qsort, one call on this thread\n");
  double t0 = now_s();
  qsort(baseline, (size_t)n, sizeof *baseline, cmp_i64);
  double t_qsort = now_s() - t0;
  printf("  %.3f s\n", t_qsort);

  /* The same task tree twice: on one worker (what the algorithm alone
   * gains or loses against qsort) and on every CPU (what parallelism adds). */
  printf("\n== mergesort as nested tasks\n");
  if (cluster) { /* the one run, on every CPU */
    double t_all = run_sort(data, baseline, n);
    printf("\nqsort %.3f s; mergesort tasks %.3f s on %u workers\n", t_qsort, t_all, cpus);
    printf("speed: %.2fx qsort\n", t_qsort / t_all);
  } else {
    double t_one = run_sort(data, baseline, n), t_all = t_one;
    if (cpus > 1) {
      cfg.num_workers = cpus;
      CHECK(ray_init(&cfg));
      t_all = run_sort(data, baseline, n);
    }
    printf("\nqsort %.3f s; mergesort tasks %.3f s on 1 worker, %.3f s on %u workers\n", t_qsort,
           t_one, t_all, cpus);
    printf("speed: %.2fx qsort (%.2fx from the algorithm on one worker, %.2fx from %u workers)\n",
           t_qsort / t_all, t_qsort / t_one, t_one / t_all, cpus);
  }
  free(data);
  free(baseline);
  printf("OK\n");
  return 0;
}
