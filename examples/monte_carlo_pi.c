/* monte_carlo_pi.c - estimate pi with independent sampling tasks.
 *
 * Ray's classic first program: throw random points at the unit square and
 * count how many land inside the quarter circle; the fraction tends to
 * pi / 4. Here:
 *
 *     sample(seed 1, n) --+
 *     sample(seed 2, n) --+--> estimate(hits..., n) -> pi (f64)
 *     ...                 |
 *     sample(seed T, n) --+
 *
 * Each sample task has its own seed, so the tasks share nothing and the
 * result is reproducible: the program re-counts one task's points on the
 * host and checks it gets the very same number of hits. The reduce task
 * takes every task's result as a ref argument: it starts only when all of
 * them are ready, and nothing polls. Meanwhile the host watches the tasks
 * finish with ray_wait.
 *
 * Checks: the estimate is within 0.01 of pi (about 75 standard deviations
 * at the default size, 10 under valgrind: it never fails by chance, and the
 * seeds are fixed anyway), the reduce agrees with the sum of the hits, and
 * one task re-counted on the host agrees exactly. Exits non-zero on a
 * mismatch (ctest runs it as example_monte_carlo_pi).
 *
 * Usage: monte_carlo_pi [samples per task]. Default 10,000,000 per task over
 * 16 tasks; 200,000 per task under valgrind or with RAY_EXAMPLE_SMALL set.
 * With RAY_TIMELINE=trace.json in the environment it also writes a timeline
 * you can open in https://ui.perfetto.dev or chrome://tracing.
 *
 * The same binary runs as an MPI job (docs/cluster.md), unchanged:
 *   RAY_CLUSTER=mpi mpirun -np 4 ./monte_carlo_pi
 * The functions are registered before ray_init (static descriptors), so
 * every rank has them; the other ranks serve inside ray_init, and the
 * tasks the driver cannot keep up with run there. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rustyray.h"

#define NUM_TASKS 16
#define PI 3.14159265358979323846

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                                \
  do {                                                                             \
    int check_rc_ = (call);                                                        \
    if (check_rc_ != RAY_OK) {                                                     \
      fprintf(stderr, "monte_carlo_pi:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                   \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

#define EXPECT(cond)                                                         \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "monte_carlo_pi:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                               \
    }                                                                        \
  } while (0)

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

/* |x| and sqrt(x) without libm (the examples link only the library). */
static double abs_d(double x) {
  return x < 0 ? -x : x;
}

static double sqrt_d(double x) {
  double r = x > 1 ? x : 1;
  for (int i = 0; i < 100; i++) r = 0.5 * (r + x / r); /* Newton: converges from above */
  return r;
}

/* ---- Sampling ------------------------------------------------------------- */

/* splitmix64: small, fast, and good enough for this; one stream per seed. */
static uint64_t next_u64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* A double in [0, 1) from the top 53 bits. */
static double next_unit(uint64_t *state) {
  return (double)(next_u64(state) >> 11) * (1.0 / 9007199254740992.0);
}

/* Points out of n inside the quarter circle, for one seed. The same code
 * runs in the tasks and on the host for the cross-check. */
static int64_t count_hits(uint64_t seed, int64_t n) {
  uint64_t state = seed * 0xD1B54A32D192ED03ull; /* spread small seeds apart */
  int64_t hits = 0;
  for (int64_t i = 0; i < n; i++) {
    double x = next_unit(&state), y = next_unit(&state);
    hits += x * x + y * y < 1.0;
  }
  return hits;
}

/* ---- The remote functions ------------------------------------------------- */

/* sample(seed, n) -> i64 hits */
static int sample(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t seed, n;
  TRY(ctx, ray_ctx_arg_i64(ctx, 0, &seed));
  TRY(ctx, ray_ctx_arg_i64(ctx, 1, &n));
  if (n <= 0) return ray_fail(ctx, RAY_EINVAL, "sample: n = %" PRId64, n);
  TRY(ctx, ray_return_i64(ctx, 0, count_hits((uint64_t)seed, n)));
  return 0;
}

/* estimate(hits_1, ..., hits_T, n) -> f64: 4 * sum(hits) / (T * n).
 * The hits arrive as ref arguments, already resolved. */
static int estimate(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  size_t nargs = ray_ctx_nargs(ctx);
  if (nargs < 2) return ray_fail(ctx, RAY_EINVAL, "estimate: no samples");
  int64_t n, total = 0;
  TRY(ctx, ray_ctx_arg_i64(ctx, nargs - 1, &n));
  for (size_t i = 0; i + 1 < nargs; i++) {
    int64_t h;
    TRY(ctx, ray_ctx_arg_i64(ctx, i, &h));
    total += h;
  }
  double samples = (double)n * (double)(nargs - 1);
  TRY(ctx, ray_return_f64(ctx, 0, 4.0 * (double)total / samples));
  return 0;
}

/* ---- The program ------------------------------------------------------------ */

/* Valgrind preloads its own libraries into the program it runs. */
static bool under_valgrind(void) {
  const char *p = getenv("LD_PRELOAD");
  return p != NULL && strstr(p, "vgpreload") != NULL;
}

int main(int argc, char **argv) {
  int64_t per_task = 10000000;
  if (under_valgrind() || getenv("RAY_EXAMPLE_SMALL") != NULL) per_task = 200000;
  if (argc > 1) {
    char *end;
    per_task = strtoll(argv[1], &end, 10);
    if (*end != '\0' || per_task < 1000 || per_task > ((int64_t)1 << 40)) {
      fprintf(stderr, "usage: %s [samples per task (>= 1000)]\n", argv[0]);
      return 2;
    }
  }

  /* The functions, registered by every ray_init from here on (in cluster
   * mode on every rank, before the ranks compare their registrations). */
  static const uint32_t t_i64[] = {RAY_TYPE_I64};
  static const uint32_t t_f64[] = {RAY_TYPE_F64};
  static ray_function_t f_sample, f_estimate;
  static ray_static_function_t s_sample = {"sample", sample, NULL, t_i64, 1, &f_sample, NULL};
  static ray_static_function_t s_estimate = {"estimate", estimate,    NULL, t_f64,
                                             1,          &f_estimate, NULL};
  ray_static_function_add(&s_sample);
  ray_static_function_add(&s_estimate);

  CHECK(ray_init(NULL)); /* RAY_* environment variables apply, RAY_TIMELINE too */
  ray_stats_t st;
  CHECK(ray_stats(&st));
  printf("%d tasks x %" PRId64 " samples on %" PRIu64 " workers\n", NUM_TASKS, per_task,
         st.num_workers);

  /* 1. Map: one task per seed, submitted without waiting. */
  double t0 = now_s();
  ray_ref_t hits[NUM_TASKS];
  for (int i = 0; i < NUM_TASKS; i++) {
    ray_arg_t a[] = {ray_arg_i64(i + 1), ray_arg_i64(per_task)};
    CHECK(ray_task_submit(f_sample, a, 2, NULL, &hits[i]));
  }

  /* 2. Reduce: submitted at once too; it runs when every hit count exists. */
  ray_arg_t ra[NUM_TASKS + 1];
  for (int i = 0; i < NUM_TASKS; i++) ra[i] = ray_arg_ref(hits[i]);
  ra[NUM_TASKS] = ray_arg_i64(per_task);
  ray_ref_t pi_ref;
  CHECK(ray_task_submit(f_estimate, ra, NUM_TASKS + 1, NULL, &pi_ref));

  /* 3. Watch the samples finish: ray_wait returns as soon as `want` of them
   *    are ready, so the host sees progress without polling. */
  printf("\n== progress (ray_wait)\n");
  for (size_t want = NUM_TASKS / 4; want <= NUM_TASKS; want += NUM_TASKS / 4) {
    bool ready[NUM_TASKS];
    int got = ray_wait(hits, NUM_TASKS, want, RAY_TIMEOUT_INFINITE, ready);
    EXPECT(got == (int)want);
    printf("  %2zu of %d sample tasks done\n", want, NUM_TASKS);
  }

  double pi = 0;
  CHECK(ray_get_f64(pi_ref, RAY_TIMEOUT_INFINITE, &pi));
  double took = now_s() - t0;

  /* 4. Check. */
  int64_t total = 0;
  for (int i = 0; i < NUM_TASKS; i++) {
    int64_t h;
    CHECK(ray_get_i64(hits[i], 0, &h)); /* ready: a poll is enough */
    EXPECT(h > 0 && h <= per_task);
    total += h;
  }
  double samples = (double)per_task * NUM_TASKS;
  EXPECT(pi == 4.0 * (double)total / samples);
  int64_t first;
  CHECK(ray_get_i64(hits[0], 0, &first));
  EXPECT(count_hits(1, per_task) == first); /* same seed, same points, same hits */
  printf("\n== result\n");
  printf("  %" PRId64 " of %.0f points inside the quarter circle\n", total, samples);
  printf("  pi ~= %.6f (error %.6f; one standard deviation is %.6f)\n", pi, pi - PI,
         4.0 * sqrt_d(PI / 4 * (1 - PI / 4) / samples));
  printf("  %.3f s, %.1f million samples per second\n", took, samples / took / 1e6);
  EXPECT(abs_d(pi - PI) < 0.01);
  printf("  task 1 re-counted on the host: %" PRId64 " hits, the same\n", first);
  if (ray_num_ranks() > 1) { /* cluster mode: where the work went */
    CHECK(ray_stats(&st));
    printf("  %" PRIu64 " of %d tasks ran on the %d other ranks\n", st.remote_tasks_sent,
           NUM_TASKS + 1, ray_num_ranks() - 1);
  }

  CHECK(ray_ref_release_batch(hits, NUM_TASKS));
  CHECK(ray_ref_release(pi_ref));
  CHECK(ray_shutdown()); /* writes the timeline when RAY_TIMELINE is set */
  const char *tl = getenv("RAY_TIMELINE");
  if (tl != NULL && *tl != '\0') printf("timeline written to %s\n", tl);
  printf("shutdown: OK\n");
  return 0;
}
