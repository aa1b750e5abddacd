/* microbenchmark.c - rustyray_microbenchmark: librustyray's counterpart of
 * `ray microbenchmark`.
 *
 * Prints one line per case on stdout, exactly `case value unit` with a plain
 * number, so the figures can be compared with Ray's published ones and
 * parsed by scripts:
 *
 *   single_client_put_calls 6123456 ops/s
 *
 * The task cases count tasks per second (round trips for tasks_sync);
 * fib_25_nested counts every call of the recursion as one task (242,785).
 * The actor cases count method calls per second: 1_n_actor_calls_async
 * calls 4 actors round-robin from one host thread (4 whatever the machine);
 * the n_n cases run one host thread per CPU, each with its own actor, and
 * report the aggregate. single_client_get_object_containing_10k_refs counts
 * decodes of a msgpack array of 10,000 refs (each ref handed out, then
 * released). spill_put_gigabytes runs 1 GiB of 1 MiB objects through a
 * 64 MiB store of its own (the shared runtime is shut down and restored
 * around it) and prints several lines: put and read-back GB/s, the raw
 * write speed of the same disk measured in the same run, their ratio, and
 * the store's high-water mark (checked never to exceed the capacity). The
 * idle_runtime_cpu runs 100,000 tasks, lets the runtime sit idle for
 * 100 ms, then prints the process's CPU time over the next --seconds as a
 * percentage of one core (the cost of an idle runtime). The
 * opt-in soak_10m_tasks (run only when named in full) runs 10,000,000 tasks
 * and prints VmRSS after a warm-up and at the end.
 * In a build with the C++ API (RAY_WITH_CPP), cpp_tasks_async and
 * cpp_1_1_actor_calls_async (cpp_cases.cpp) do the work of
 * single_client_tasks_async and 1_1_actor_calls_async through <ray/api.h>;
 * each runs right after its C case, wherever that one runs, and also prints
 * X_cost_vs_c, the C case's rate in this run over its own: the C++ API's
 * cost per call relative to the C API's.
 * RAY_NUM_WORKERS sets the pool size, as for any program using the library.
 *
 * Everything else (the configuration, the case being warmed up) goes to
 * stderr.
 *
 * Usage: rustyray_microbenchmark [--seconds S] [--compare] [--list] [PREFIX...]
 *   --seconds S  how long each case is measured (default 1, or the
 *                environment variable RAY_BENCH_SECONDS); a warm-up of a
 *                tenth of that runs first, untimed.
 *   --compare    compare with oneTBB (see below) instead of the usual run.
 *   --list       print the case names and exit.
 *   PREFIX...    run only the cases whose name starts with one of these;
 *                opt-in cases (soak_10m_tasks) run only when named in full.
 *
 * --compare (built only when CMake found oneTBB; otherwise it says so and
 * exits 2) runs each case that has a counterpart written with oneTBB
 * (tbb_baseline.cpp: single_client_tasks_async, task_chain_100k,
 * single_client_tasks_sync, 1_1_actor_calls_async, n_n_actor_calls_async,
 * single_client_put_calls, single_client_get_calls, multi_client_put_calls)
 * in 5 rounds in this process, each round measuring ours then TBB's for
 * --seconds (after a tenth of warm-up), the order swapped every round, and
 * prints for each case X three lines:
 *
 *   X <median of ours> <unit>
 *   X_tbb <median of TBB's> <unit>
 *   X_vs_tbb <median of the per-round ratios ours/TBB> ratio
 *
 * and once each, ours only, fib_25_nested, single_client_wait_1k_refs and
 * single_client_get_object_containing_10k_refs (no counterpart: they show
 * that nothing else regressed). The C++ cases, when built, run 5 rounds
 * against their C case instead (the same interleaving; X and X_cost_vs_c,
 * the medians). The rounds go to stderr. TBB runs its tasks
 * in a task_arena of our worker count (RAY_NUM_WORKERS or the default), the
 * caller helping. About 90 s at the default 1 s (110 s with the C++ cases).
 *
 * Honesty rules this file keeps:
 * - every return code is checked; a failure aborts with a message, so a
 *   benchmark never silently measures an error path;
 * - each case releases everything it created and the store is checked empty
 *   (ray_stats) after it, so no case measures a store that only grows;
 * - every task case checks the values its tasks return (1 from the trivial
 *   task, 100000 at the end of the chain, fib(25) = 75025), so a case can
 *   never count tasks that failed or did not run;
 * - the malloc+memcpy baseline of single_client_put_gigabytes does what a
 *   copying put does (allocate, copy the whole buffer, free after each
 *   iteration as the release does), through calls the compiler cannot elide,
 *   and the two are interleaved iteration by iteration in the same run.
 *
 * Launched with RAY_CLUSTER=mpi under mpirun (a build with RAY_WITH_MPI),
 * it runs the cluster cases instead, each beside a raw MPI baseline in the
 * same run: remote_tasks_sync, remote_tasks_async, remote_get_1mib
 * (cluster_bench.c says how each is measured).
 *
 * Time comes from uv_hrtime() (monotonic, nanoseconds); the clock is read
 * once per batch of operations so reading it costs nothing measurable. */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rustyray.h"
#ifdef RAY_BENCH_HAVE_TBB
#include "tbb_baseline.h"
#endif
#ifdef RAY_BENCH_HAVE_MPI
#include "cluster_bench.h"
#endif
#ifdef RAY_BENCH_HAVE_CPP
#include "cpp_cases.h"
#endif

/* ---- Failure handling ---------------------------------------------------- */

static void die(const char *what, int rc, const char *file, int line) {
  fprintf(stderr, "rustyray_microbenchmark: %s:%d: %s failed: %d %s (%s)\n", file, line, what, rc,
          ray_err_name(rc), ray_strerror(rc));
  abort();
}

/* CHECK(call): the call must return 0. */
#define CHECK(call)                                                \
  do {                                                             \
    int check_rc_ = (call);                                        \
    if (check_rc_ != 0) die(#call, check_rc_, __FILE__, __LINE__); \
  } while (0)

/* EXPECT(cond): a condition the measurement relies on. */
#define EXPECT(cond)                                                                               \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "rustyray_microbenchmark: %s:%d: expected %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* ---- Measurement --------------------------------------------------------- */

static double g_seconds = 1.0; /* measured duration of each case */

/* One batch of a case's operation: performs some number of operations and
 * returns how many. */
typedef uint64_t (*batch_fn)(void *ctx);

/* One measurement of a case (its setup, measure(), its teardown): the rate. */
typedef double (*rate_fn)(void);

/* Run `fn` for a warm-up of g_seconds/10, then for g_seconds, and return the
 * operations per second of the timed part. */
static double measure(batch_fn fn, void *ctx) {
  uint64_t warm_ns = (uint64_t)(g_seconds * 1e8);
  uint64_t run_ns = (uint64_t)(g_seconds * 1e9);
  uint64_t start = uv_hrtime();
  while (uv_hrtime() - start < warm_ns) fn(ctx);

  uint64_t ops = 0, now;
  start = uv_hrtime();
  do {
    ops += fn(ctx);
    now = uv_hrtime();
  } while (now - start < run_ns);
  return (double)ops * 1e9 / (double)(now - start);
}

/* ---- Host threads: one client per CPU, all at once ---------------------- */

static unsigned num_cpus(void) {
  unsigned n = uv_available_parallelism();
  return n ? n : 1;
}

typedef struct {
  uv_barrier_t *barrier;
  uint64_t run_ns;
  batch_fn fn;
  void *ctx;
  uint64_t ops;
  uint64_t start, end;
} bench_client_t;

static void bench_client_run(void *arg) {
  bench_client_t *c = arg;
  uv_barrier_wait(c->barrier);
  uint64_t t0 = uv_hrtime();
  while (uv_hrtime() - t0 < c->run_ns / 10) c->fn(c->ctx);
  uv_barrier_wait(c->barrier);
  uint64_t ops = 0, now;
  c->start = uv_hrtime();
  do {
    ops += c->fn(c->ctx);
    now = uv_hrtime();
  } while (now - c->start < c->run_ns);
  c->end = now;
  c->ops = ops;
}

/* Run fn(ctxs[i]) on n host threads at once (warm-up, then g_seconds) and
 * return the aggregate operations per second, over the span from the first
 * start to the last end. */
static double measure_clients(unsigned n, batch_fn fn, void **ctxs) {
  uv_barrier_t barrier;
  CHECK(uv_barrier_init(&barrier, n));
  bench_client_t *clients = calloc(n, sizeof *clients);
  uv_thread_t *threads = calloc(n, sizeof *threads);
  EXPECT(clients != NULL && threads != NULL);
  for (unsigned i = 0; i < n; i++) {
    clients[i].barrier = &barrier;
    clients[i].run_ns = (uint64_t)(g_seconds * 1e9);
    clients[i].fn = fn;
    clients[i].ctx = ctxs[i];
    CHECK(uv_thread_create(&threads[i], bench_client_run, &clients[i]));
  }
  uint64_t ops = 0, start = UINT64_MAX, end = 0;
  for (unsigned i = 0; i < n; i++) {
    CHECK(uv_thread_join(&threads[i]));
    ops += clients[i].ops;
    if (clients[i].start < start) start = clients[i].start;
    if (clients[i].end > end) end = clients[i].end;
  }
  uv_barrier_destroy(&barrier);
  free(clients);
  free(threads);
  return (double)ops * 1e9 / (double)(end - start);
}

static void report(const char *name, double value, const char *unit) {
  if (value >= 100.0)
    printf("%s %.0f %s\n", name, value, unit);
  else
    printf("%s %.2f %s\n", name, value, unit);
  fflush(stdout);
}

/* After every case: nothing it created may still be in the store, and no
 * actor it created may still be alive. A task
 * lets go of its argument refs just after it publishes its result, so the
 * last few may still be on their way out when the host has its answer: give
 * the store up to a second to drain before calling it a leak. */
static void expect_store_empty(const char *name) {
  ray_stats_t st;
  uint64_t deadline = uv_hrtime() + 1000000000u;
  for (;;) {
    CHECK(ray_stats(&st));
    if ((st.objects == 0 && st.bytes_in_memory == 0 && st.actors_alive == 0) ||
        uv_hrtime() > deadline)
      break;
    uv_sleep(1);
  }
  if (st.objects != 0 || st.bytes_in_memory != 0 || st.actors_alive != 0) {
    fprintf(stderr,
            "rustyray_microbenchmark: %s left %llu objects / %llu bytes in the store, %llu "
            "actors alive\n",
            name, (unsigned long long)st.objects, (unsigned long long)st.bytes_in_memory,
            (unsigned long long)st.actors_alive);
    abort();
  }
}

#define SMALL_BATCH 256 /* operations per clock read for the fast cases */

/* ---- single_client_put_calls: put a small value and release it ----------- */

static uint64_t put_small_batch(void *ctx) {
  (void)ctx;
  for (int64_t i = 0; i < SMALL_BATCH; i++) {
    ray_ref_t ref;
    CHECK(ray_put(&i, sizeof i, &ref));
    CHECK(ray_ref_release(ref));
  }
  return SMALL_BATCH;
}

static double rate_put_calls(void) {
  return measure(put_small_batch, NULL);
}

/* ---- single_client_get_calls: get + buf_release of one ready object ------ */

static uint64_t get_small_batch(void *ctx) {
  ray_ref_t ref = *(ray_ref_t *)ctx;
  for (int i = 0; i < SMALL_BATCH; i++) {
    ray_buf_t buf;
    CHECK(ray_get(ref, RAY_TIMEOUT_INFINITE, &buf));
    if (buf.size != sizeof(int64_t)) die("ray_get size", (int)buf.size, __FILE__, __LINE__);
    ray_buf_release(&buf);
  }
  return SMALL_BATCH;
}

static double rate_get_calls(void) {
  int64_t value = 42;
  ray_ref_t ref;
  CHECK(ray_put(&value, sizeof value, &ref));
  ray_buf_t buf;
  CHECK(ray_get(ref, 0, &buf));
  EXPECT(buf.size == sizeof value && memcmp(buf.data, &value, sizeof value) == 0);
  ray_buf_release(&buf);
  double rate = measure(get_small_batch, &ref);
  CHECK(ray_ref_release(ref));
  return rate;
}

/* ---- multi_client_put_calls: one putting thread per core ----------------- */

static double rate_multi_put_calls(void) {
  unsigned n = num_cpus();
  void **ctxs = calloc(n, sizeof *ctxs); /* put_small_batch takes no context */
  EXPECT(ctxs != NULL);
  double rate = measure_clients(n, put_small_batch, ctxs);
  free(ctxs);
  return rate;
}

/* ---- single_client_put_gigabytes: 100 MiB copying put vs malloc+memcpy ---- */

#define BIG_SIZE ((size_t)100 << 20)

/* Called through volatile pointers so the compiler can neither elide the
 * malloc/memcpy/free of the baseline nor turn them into something cheaper. */
static void *(*volatile g_malloc)(size_t) = malloc;
static void *(*volatile g_memcpy)(void *, const void *, size_t) = memcpy;
static void (*volatile g_free)(void *) = free;
static volatile unsigned char g_sink;

static void case_put_gigabytes(const char *name) {
  unsigned char *src = malloc(BIG_SIZE);
  EXPECT(src != NULL);
  for (size_t i = 0; i < BIG_SIZE; i++) src[i] = (unsigned char)(i * 131u + (i >> 20));

  /* Check once, outside the timing, that the put really stores the bytes. */
  ray_ref_t ref;
  CHECK(ray_put(src, BIG_SIZE, &ref));
  ray_buf_t buf;
  CHECK(ray_get(ref, 0, &buf));
  EXPECT(buf.size == BIG_SIZE && memcmp(buf.data, src, BIG_SIZE) == 0);
  ray_buf_release(&buf);
  CHECK(ray_ref_release(ref));

  /* Interleave the two, one iteration each, so both see the same machine
   * state; a tenth of the time is an untimed warm-up. */
  uint64_t put_ns = 0, copy_ns = 0, puts = 0, copies = 0;
  uint64_t warm_ns = (uint64_t)(g_seconds * 1e8), run_ns = (uint64_t)(g_seconds * 1e9);
  uint64_t begin = uv_hrtime();
  bool warm = true;
  for (;;) {
    uint64_t t0 = uv_hrtime();
    CHECK(ray_put(src, BIG_SIZE, &ref));
    CHECK(ray_ref_release(ref));
    uint64_t t1 = uv_hrtime();
    unsigned char *copy = g_malloc(BIG_SIZE);
    EXPECT(copy != NULL);
    g_memcpy(copy, src, BIG_SIZE);
    g_sink = copy[BIG_SIZE / 2];
    g_free(copy);
    uint64_t t2 = uv_hrtime();
    if (warm) {
      if (t2 - begin >= warm_ns) {
        warm = false;
        begin = t2;
      }
      continue;
    }
    put_ns += t1 - t0;
    copy_ns += t2 - t1;
    puts++;
    copies++;
    if (t2 - begin >= run_ns) break;
  }
  free(src);

  double put_gbs = (double)puts * (double)BIG_SIZE / (double)put_ns;
  double copy_gbs = (double)copies * (double)BIG_SIZE / (double)copy_ns;
  report(name, put_gbs, "GB/s");
  report("single_client_put_gigabytes_malloc_memcpy", copy_gbs, "GB/s");
  report("single_client_put_gigabytes_vs_memcpy", put_gbs / copy_gbs, "ratio");
}

/* ---- single_client_put_owned: hand a buffer over without a copy ---------- */

#define OWNED_SIZE ((size_t)1 << 20)

static atomic_ullong g_owned_freed;

static void count_free(void *p, void *arg) {
  (void)arg;
  (void)p;
  atomic_fetch_add_explicit(&g_owned_freed, 1, memory_order_relaxed);
}

typedef struct {
  unsigned char *data;
  uint64_t puts;
} owned_ctx_t;

static uint64_t put_owned_batch(void *arg) {
  owned_ctx_t *ctx = arg;
  for (int i = 0; i < SMALL_BATCH; i++) {
    ray_ref_t ref;
    CHECK(ray_put_owned(ctx->data, OWNED_SIZE, count_free, NULL, &ref));
    CHECK(ray_ref_release(ref));
  }
  ctx->puts += SMALL_BATCH;
  return SMALL_BATCH;
}

/* The same caller buffer is handed over again and again; free_fn counts
 * instead of freeing, so this measures the store's hand-off alone, and the
 * count proves free_fn ran exactly once per put. */
static double rate_put_owned(void) {
  owned_ctx_t ctx = {malloc(OWNED_SIZE), 0};
  EXPECT(ctx.data != NULL);
  memset(ctx.data, 0x5a, OWNED_SIZE);
  atomic_store(&g_owned_freed, 0);

  ray_ref_t ref;
  CHECK(ray_put_owned(ctx.data, OWNED_SIZE, count_free, NULL, &ref));
  ray_buf_t buf;
  CHECK(ray_get(ref, 0, &buf));
  EXPECT(buf.data == ctx.data && buf.size == OWNED_SIZE); /* zero-copy */
  ray_buf_release(&buf);
  CHECK(ray_ref_release(ref));
  ctx.puts = 1;

  double rate = measure(put_owned_batch, &ctx);
  EXPECT(atomic_load(&g_owned_freed) == ctx.puts);
  free(ctx.data);
  return rate;
}

/* ---- single_client_get_batch_1k: get_batch of 1000 ready refs ----------- */

#define N_REFS 1000

typedef struct {
  ray_ref_t refs[N_REFS];
  ray_buf_t bufs[N_REFS];
  bool ready[N_REFS];
} refs_ctx_t;

static refs_ctx_t *make_refs(void) {
  refs_ctx_t *ctx = calloc(1, sizeof *ctx);
  EXPECT(ctx != NULL);
  for (int64_t i = 0; i < N_REFS; i++) CHECK(ray_put(&i, sizeof i, &ctx->refs[i]));
  return ctx;
}

static void free_refs(refs_ctx_t *ctx) {
  for (int i = 0; i < N_REFS; i++) CHECK(ray_ref_release(ctx->refs[i]));
  free(ctx);
}

static uint64_t get_batch_once(void *arg) {
  refs_ctx_t *ctx = arg;
  CHECK(ray_get_batch(ctx->refs, N_REFS, RAY_TIMEOUT_INFINITE, ctx->bufs));
  for (int i = 0; i < N_REFS; i++) ray_buf_release(&ctx->bufs[i]);
  return 1;
}

static double rate_get_batch_1k(void) {
  refs_ctx_t *ctx = make_refs();
  CHECK(ray_get_batch(ctx->refs, N_REFS, 0, ctx->bufs));
  for (int64_t i = 0; i < N_REFS; i++) {
    EXPECT(ctx->bufs[i].size == sizeof i && memcmp(ctx->bufs[i].data, &i, sizeof i) == 0);
    ray_buf_release(&ctx->bufs[i]);
  }
  double rate = measure(get_batch_once, ctx);
  free_refs(ctx);
  return rate;
}

/* ---- single_client_wait_1k_refs: wait on 1000 ready refs ----------------- */

static uint64_t wait_once(void *arg) {
  refs_ctx_t *ctx = arg;
  int n = ray_wait(ctx->refs, N_REFS, N_REFS, RAY_TIMEOUT_INFINITE, ctx->ready);
  if (n != N_REFS) die("ray_wait", n, __FILE__, __LINE__);
  return 1;
}

static double rate_wait_1k(void) {
  refs_ctx_t *ctx = make_refs();
  memset(ctx->ready, 0, sizeof ctx->ready);
  wait_once(ctx);
  for (int i = 0; i < N_REFS; i++) EXPECT(ctx->ready[i]);
  double rate = measure(wait_once, ctx);
  free_refs(ctx);
  return rate;
}

/* ---- Tasks ----------------------------------------------------------------
 *
 * Three registered functions, registered once after ray_init (names are
 * unique per runtime):
 *   bench_noop  ()        -> i64 1              the trivial task
 *   bench_inc   (i64 ref) -> i64 (its arg + 1)  a link of task_chain_100k
 *   bench_fib   (i64 n)   -> i64 fib(n)         one task per call, nested gets
 * Inside a task a failing call fails the task with ray_fail (the host then
 * aborts with the formatted error chain), so no error is swallowed there
 * either. */

static ray_function_t g_noop_fn, g_inc_fn, g_fib_fn;

/* Abort with the error chain of a failed task result. */
static void die_task(const char *what, ray_ref_t ref, int rc, const char *file, int line) {
  ray_error_t *err = NULL;
  char text[2048] = "";
  if (ray_get_error(ref, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  fprintf(stderr, "rustyray_microbenchmark: %s:%d: %s failed: %d %s\n%s\n", file, line, what, rc,
          ray_err_name(rc), text);
  abort();
}

/* GET_I64(ref, out): a task result must be an i64; on failure print why. */
#define GET_I64(ref, out)                                                                    \
  do {                                                                                       \
    int get_rc_ = ray_get_i64((ref), RAY_TIMEOUT_INFINITE, (out));                           \
    if (get_rc_ != 0) die_task("ray_get_i64(" #ref ")", (ref), get_rc_, __FILE__, __LINE__); \
  } while (0)

static int noop_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int rc = ray_return_i64(ctx, 0, 1);
  return rc != 0 ? ray_fail(ctx, rc, "ray_return_i64: %s", ray_err_name(rc)) : 0;
}

static int inc_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t v;
  int rc = ray_ctx_arg_i64(ctx, 0, &v);
  if (rc != 0) return ray_fail(ctx, rc, "ray_ctx_arg_i64: %s", ray_err_name(rc));
  rc = ray_return_i64(ctx, 0, v + 1);
  return rc != 0 ? ray_fail(ctx, rc, "ray_return_i64: %s", ray_err_name(rc)) : 0;
}

static int fib_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t n;
  int rc = ray_ctx_arg_i64(ctx, 0, &n);
  if (rc != 0) return ray_fail(ctx, rc, "ray_ctx_arg_i64: %s", ray_err_name(rc));
  int64_t result = n;
  if (n >= 2) {
    ray_arg_t a1 = ray_arg_i64(n - 1), a2 = ray_arg_i64(n - 2);
    ray_ref_t r1, r2;
    if ((rc = ray_task_submit(g_fib_fn, &a1, 1, NULL, &r1)) != 0)
      return ray_fail(ctx, rc, "submit fib(%lld): %s", (long long)(n - 1), ray_err_name(rc));
    if ((rc = ray_task_submit(g_fib_fn, &a2, 1, NULL, &r2)) != 0) {
      (void)ray_ref_release(r1);
      return ray_fail(ctx, rc, "submit fib(%lld): %s", (long long)(n - 2), ray_err_name(rc));
    }
    int64_t f1 = 0, f2 = 0;
    int rc1 = ray_get_i64(r1, RAY_TIMEOUT_INFINITE, &f1);
    int rc2 = ray_get_i64(r2, RAY_TIMEOUT_INFINITE, &f2);
    int rr1 = ray_ref_release(r1), rr2 = ray_ref_release(r2);
    if (rc1 != 0 || rc2 != 0)
      return ray_fail(ctx, RAY_EDEPFAILED, "fib(%lld): children returned %s / %s", (long long)n,
                      ray_err_name(rc1), ray_err_name(rc2));
    if (rr1 != 0 || rr2 != 0)
      return ray_fail(ctx, RAY_ETASK, "ray_ref_release: %s / %s", ray_err_name(rr1),
                      ray_err_name(rr2));
    result = f1 + f2;
  }
  rc = ray_return_i64(ctx, 0, result);
  return rc != 0 ? ray_fail(ctx, rc, "ray_return_i64: %s", ray_err_name(rc)) : 0;
}

static void register_functions(void) {
  const uint32_t i64[1] = {RAY_TYPE_I64};
  CHECK(ray_function_register("bench_noop", noop_task, NULL, i64, 1, &g_noop_fn));
  CHECK(ray_function_register("bench_inc", inc_task, NULL, i64, 1, &g_inc_fn));
  CHECK(ray_function_register("bench_fib", fib_task, NULL, i64, 1, &g_fib_fn));
}

/* ---- single_client_tasks_sync: submit one trivial task, get it, release --- */

#define SYNC_BATCH 64

static uint64_t tasks_sync_batch(void *ctx) {
  (void)ctx;
  for (int i = 0; i < SYNC_BATCH; i++) {
    ray_ref_t ref;
    int64_t v = 0;
    CHECK(ray_task_submit(g_noop_fn, NULL, 0, NULL, &ref));
    GET_I64(ref, &v);
    EXPECT(v == 1);
    CHECK(ray_ref_release(ref));
  }
  return SYNC_BATCH;
}

static double rate_tasks_sync(void) {
  return measure(tasks_sync_batch, NULL);
}

/* ---- single_client_tasks_async: submit 100,000, then get each ------------ */

#define ASYNC_TASKS 100000

static uint64_t tasks_async_batch(void *arg) {
  ray_ref_t *refs = arg;
  for (int i = 0; i < ASYNC_TASKS; i++) CHECK(ray_task_submit(g_noop_fn, NULL, 0, NULL, &refs[i]));
  for (int i = 0; i < ASYNC_TASKS; i++) {
    int64_t v = 0;
    GET_I64(refs[i], &v);
    EXPECT(v == 1);
    CHECK(ray_ref_release(refs[i]));
  }
  return ASYNC_TASKS;
}

static double rate_tasks_async(void) {
  ray_ref_t *refs = malloc(ASYNC_TASKS * sizeof *refs);
  EXPECT(refs != NULL);
  double rate = measure(tasks_async_batch, refs);
  free(refs);
  return rate;
}

/* ---- multi_client_tasks_async: one submitting host thread per core ------- */

static double rate_multi_tasks_async(void) {
  unsigned n = num_cpus();
  void **ctxs = calloc(n, sizeof *ctxs);
  EXPECT(ctxs != NULL);
  for (unsigned i = 0; i < n; i++) {
    ctxs[i] = malloc(ASYNC_TASKS * sizeof(ray_ref_t));
    EXPECT(ctxs[i] != NULL);
  }
  double rate = measure_clients(n, tasks_async_batch, ctxs);
  for (unsigned i = 0; i < n; i++) free(ctxs[i]);
  free(ctxs);
  return rate;
}

/* ---- single_client_tasks_and_get_batch: submit 1000, ray_get_batch ------- */

#define GB_TASKS 1000

typedef struct {
  ray_ref_t refs[GB_TASKS];
  ray_buf_t bufs[GB_TASKS];
} gb_ctx_t;

static uint64_t tasks_get_batch_once(void *arg) {
  gb_ctx_t *ctx = arg;
  for (int i = 0; i < GB_TASKS; i++)
    CHECK(ray_task_submit(g_noop_fn, NULL, 0, NULL, &ctx->refs[i]));
  int rc = ray_get_batch(ctx->refs, GB_TASKS, RAY_TIMEOUT_INFINITE, ctx->bufs);
  if (rc != 0) { /* name the first failed task, with its error chain */
    for (int i = 0; i < GB_TASKS; i++) {
      int64_t v;
      int one = ray_get_i64(ctx->refs[i], 0, &v);
      if (one != 0 && one != RAY_ETIMEDOUT)
        die_task("ray_get_batch", ctx->refs[i], one, __FILE__, __LINE__);
    }
    die("ray_get_batch", rc, __FILE__, __LINE__);
  }
  for (int i = 0; i < GB_TASKS; i++) {
    /* msgpack positive fixint 1: the value the noop task returned */
    EXPECT(ctx->bufs[i].type == RAY_TYPE_I64 && ctx->bufs[i].size == 1 &&
           ((const unsigned char *)ctx->bufs[i].data)[0] == 1);
    ray_buf_release(&ctx->bufs[i]);
    CHECK(ray_ref_release(ctx->refs[i]));
  }
  return GB_TASKS;
}

static double rate_tasks_and_get_batch(void) {
  gb_ctx_t *ctx = calloc(1, sizeof *ctx);
  EXPECT(ctx != NULL);
  double rate = measure(tasks_get_batch_once, ctx);
  free(ctx);
  return rate;
}

/* ---- task_chain_100k: each task takes the previous result as a ref ------- */

#define CHAIN_TASKS 100000

static uint64_t chain_once(void *arg) {
  (void)arg;
  ray_arg_t a = ray_arg_i64(0);
  ray_ref_t prev;
  CHECK(ray_task_submit(g_inc_fn, &a, 1, NULL, &prev));
  for (int i = 1; i < CHAIN_TASKS; i++) {
    ray_ref_t next;
    a = ray_arg_ref(prev);
    CHECK(ray_task_submit(g_inc_fn, &a, 1, NULL, &next));
    CHECK(ray_ref_release(prev)); /* the task holds its own reference */
    prev = next;
  }
  int64_t v = 0;
  GET_I64(prev, &v);
  EXPECT(v == CHAIN_TASKS);
  CHECK(ray_ref_release(prev));
  return CHAIN_TASKS;
}

static double rate_task_chain(void) {
  return measure(chain_once, NULL);
}

/* ---- fib_25_nested: recursive fib(25), one task per call ------------------ */

#define FIB_N 25
#define FIB_VALUE 75025   /* fib(25) */
#define FIB_TASKS 242785u /* calls of the recursion: 2 * fib(26) - 1 */

static uint64_t fib_once(void *arg) {
  (void)arg;
  ray_arg_t a = ray_arg_i64(FIB_N);
  ray_ref_t ref;
  int64_t v = 0;
  CHECK(ray_task_submit(g_fib_fn, &a, 1, NULL, &ref));
  GET_I64(ref, &v);
  EXPECT(v == FIB_VALUE);
  CHECK(ray_ref_release(ref));
  return FIB_TASKS;
}

static double rate_fib_nested(void) {
  return measure(fib_once, NULL);
}

/* ---- Actors ----------------------------------------------------------------
 *
 * One class, BenchCounter, whose state is a counter:
 *   inc     ()          -> i64 (the counter after incrementing it)
 *   inc_arg (16 bytes)  -> i64 (the same, after checking the argument)
 *   read    ()          -> i64 (the counter)
 * Method ids are resolved once (ray_actor_method) and the loops call
 * ray_actor_call_id. With max_concurrency 1 the calls of one submitter run
 * in order, so every result is checked to be exactly the previous one + 1;
 * with max_concurrency 16 (the counter is atomic) each result must lie in
 * range, and at the end of every case `read` must return exactly the number
 * of calls made, so no case can count a call that did not run. */

typedef struct {
  atomic_llong count;
} counter_state_t;

static int counter_ctor(ray_task_ctx_t *ctx, void **state) {
  counter_state_t *s = malloc(sizeof *s);
  if (s == NULL) return ray_fail(ctx, RAY_ENOMEM, "BenchCounter: out of memory");
  atomic_init(&s->count, 0);
  *state = s;
  return 0;
}

static void counter_dtor(void *state) {
  free(state);
}

static int counter_return(ray_task_ctx_t *ctx, int64_t v) {
  int rc = ray_return_i64(ctx, 0, v);
  return rc != 0 ? ray_fail(ctx, rc, "ray_return_i64: %s", ray_err_name(rc)) : 0;
}

static int counter_inc(ray_task_ctx_t *ctx, void *state) {
  counter_state_t *s = state;
  return counter_return(ctx, atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed) + 1);
}

#define ACTOR_ARG_SIZE 16
static const unsigned char g_actor_arg[ACTOR_ARG_SIZE] = {'r', 'u', 's', 't', 'y', 'r', 'a', 'y',
                                                          0,   1,   2,   3,   4,   5,   6,   7};

static int counter_inc_arg(ray_task_ctx_t *ctx, void *state) {
  counter_state_t *s = state;
  const void *data;
  size_t size;
  int rc = ray_ctx_arg_bytes(ctx, 0, &data, &size);
  if (rc != 0) return ray_fail(ctx, rc, "ray_ctx_arg_bytes: %s", ray_err_name(rc));
  if (size != ACTOR_ARG_SIZE || memcmp(data, g_actor_arg, ACTOR_ARG_SIZE) != 0)
    return ray_fail(ctx, RAY_EINVAL, "inc_arg: got %zu bytes, not the 16 sent", size);
  return counter_return(ctx, atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed) + 1);
}

static int counter_read(ray_task_ctx_t *ctx, void *state) {
  counter_state_t *s = state;
  return counter_return(ctx, atomic_load_explicit(&s->count, memory_order_relaxed));
}

static const uint32_t k_i64_return[1] = {RAY_TYPE_I64};
static const ray_method_def_t k_counter_methods[] = {
    {"inc", counter_inc, k_i64_return, 1},
    {"inc_arg", counter_inc_arg, k_i64_return, 1},
    {"read", counter_read, k_i64_return, 1},
};
static const ray_actor_class_t k_counter_class = {
    "BenchCounter", counter_ctor, counter_dtor, k_counter_methods,
    sizeof k_counter_methods / sizeof k_counter_methods[0]};

static uint32_t g_m_inc, g_m_inc_arg, g_m_read; /* resolved once in main() */

static ray_actor_t counter_create(uint32_t max_concurrency) {
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.max_concurrency = max_concurrency;
  ray_actor_t a;
  CHECK(ray_actor_create(&k_counter_class, NULL, 0, &o, &a));
  return a;
}

/* `read` must return exactly the calls made; then drop the handle (the actor
 * is destroyed once its mailbox is empty, checked by expect_store_empty). */
static void counter_finish(ray_actor_t a, int64_t calls) {
  ray_ref_t ref;
  int64_t v = -1;
  CHECK(ray_actor_call_id(a, g_m_read, NULL, 0, NULL, &ref));
  GET_I64(ref, &v);
  CHECK(ray_ref_release(ref));
  if (v != calls) {
    fprintf(stderr, "rustyray_microbenchmark: actor counted %lld calls, %lld were made\n",
            (long long)v, (long long)calls);
    abort();
  }
  CHECK(ray_actor_release(a));
}

/* ---- 1_1_actor_calls_sync: call, get, release; repeat -------------------- */

typedef struct {
  ray_actor_t actor;
  int64_t calls;
} actor_sync_t;

static uint64_t actor_sync_batch(void *arg) {
  actor_sync_t *c = arg;
  for (int i = 0; i < SYNC_BATCH; i++) {
    ray_ref_t ref;
    int64_t v = 0;
    CHECK(ray_actor_call_id(c->actor, g_m_inc, NULL, 0, NULL, &ref));
    GET_I64(ref, &v);
    EXPECT(v == ++c->calls);
    CHECK(ray_ref_release(ref));
  }
  return SYNC_BATCH;
}

static double rate_actor_sync(void) {
  actor_sync_t c = {counter_create(1), 0};
  double rate = measure(actor_sync_batch, &c);
  counter_finish(c.actor, c.calls);
  return rate;
}

/* ---- Asynchronous calls: submit a batch, then get every result ----------- */

#define ACTOR_ASYNC_CALLS 10000 /* calls submitted before the first get */
#define ONE_N_ACTORS 4          /* actors of 1_n_actor_calls_async */

typedef struct {
  ray_actor_t actors[ONE_N_ACTORS];
  int64_t calls[ONE_N_ACTORS]; /* calls made to each actor */
  size_t nactors;              /* calls go round-robin over them */
  bool ordered;                /* max_concurrency 1: results in call order */
  uint32_t method;
  const ray_arg_t *args;
  size_t nargs;
  ray_ref_t *refs; /* ACTOR_ASYNC_CALLS */
} actor_async_t;

static uint64_t actor_async_batch(void *arg) {
  actor_async_t *c = arg;
  for (size_t i = 0; i < ACTOR_ASYNC_CALLS; i++)
    CHECK(ray_actor_call_id(c->actors[i % c->nactors], c->method, c->args, c->nargs, NULL,
                            &c->refs[i]));
  int64_t base[ONE_N_ACTORS];
  memcpy(base, c->calls, sizeof base);
  for (size_t i = 0; i < ACTOR_ASYNC_CALLS; i++) {
    size_t a = i % c->nactors;
    int64_t v = 0;
    GET_I64(c->refs[i], &v);
    c->calls[a]++;
    if (c->ordered)
      EXPECT(v == c->calls[a]);
    else
      EXPECT(v > base[a] && v <= base[a] + ACTOR_ASYNC_CALLS);
    CHECK(ray_ref_release(c->refs[i]));
  }
  return ACTOR_ASYNC_CALLS;
}

static actor_async_t *actor_async_new(size_t nactors, uint32_t max_concurrency, uint32_t method,
                                      const ray_arg_t *args, size_t nargs) {
  actor_async_t *c = calloc(1, sizeof *c);
  EXPECT(c != NULL && nactors >= 1 && nactors <= ONE_N_ACTORS);
  c->refs = malloc(ACTOR_ASYNC_CALLS * sizeof *c->refs);
  EXPECT(c->refs != NULL);
  for (size_t a = 0; a < nactors; a++) c->actors[a] = counter_create(max_concurrency);
  c->nactors = nactors;
  c->ordered = max_concurrency <= 1;
  c->method = method;
  c->args = args;
  c->nargs = nargs;
  return c;
}

static void actor_async_free(actor_async_t *c) {
  for (size_t a = 0; a < c->nactors; a++) counter_finish(c->actors[a], c->calls[a]);
  free(c->refs);
  free(c);
}

static double rate_actor_async(void) {
  actor_async_t *c = actor_async_new(1, 1, g_m_inc, NULL, 0);
  double rate = measure(actor_async_batch, c);
  actor_async_free(c);
  return rate;
}

static double rate_actor_concurrent(void) {
  actor_async_t *c = actor_async_new(1, 16, g_m_inc, NULL, 0);
  double rate = measure(actor_async_batch, c);
  actor_async_free(c);
  return rate;
}

/* 1_n: one host thread, ONE_N_ACTORS (4, whatever the machine) actors,
 * calls round-robin over them. */
static double rate_actor_1_n(void) {
  actor_async_t *c = actor_async_new(ONE_N_ACTORS, 1, g_m_inc, NULL, 0);
  double rate = measure(actor_async_batch, c);
  actor_async_free(c);
  return rate;
}

static double rate_n_n(uint32_t method, const ray_arg_t *args, size_t nargs) {
  unsigned n = num_cpus();
  void **ctxs = calloc(n, sizeof *ctxs);
  EXPECT(ctxs != NULL);
  for (unsigned i = 0; i < n; i++) ctxs[i] = actor_async_new(1, 1, method, args, nargs);
  double rate = measure_clients(n, actor_async_batch, ctxs);
  for (unsigned i = 0; i < n; i++) actor_async_free(ctxs[i]);
  free(ctxs);
  return rate;
}

static double rate_actor_n_n(void) {
  return rate_n_n(g_m_inc, NULL, 0);
}

/* Each call carries a 16-byte value argument (copied into the call at
 * submission), which the method checks byte for byte. */
static double rate_actor_n_n_arg(void) {
  ray_arg_t a = ray_arg_bytes(g_actor_arg, ACTOR_ARG_SIZE);
  return rate_n_n(g_m_inc_arg, &a, 1);
}

/* ---- single_client_get_object_containing_10k_refs ------------------------
 *
 * 10,000 small objects, and one msgpack array holding a ref to each (the
 * host's own refs to the small objects are dropped: the outer object keeps
 * them alive). Timed: ray_get_msgpack of the outer object (which hands out
 * the 10,000 refs, each retained for the caller), ray_ref_release_batch of
 * those refs, ray_msgpack_release. */

#define N_INNER_REFS 10000

static uint64_t get_10k_refs_once(void *arg) {
  ray_ref_t outer = *(ray_ref_t *)arg;
  ray_msgpack_t m;
  CHECK(ray_get_msgpack(outer, RAY_TIMEOUT_INFINITE, &m));
  if (m.nrefs != N_INNER_REFS) die("ray_get_msgpack nrefs", (int)m.nrefs, __FILE__, __LINE__);
  CHECK(ray_ref_release_batch(m.refs, m.nrefs));
  ray_msgpack_release(&m);
  return 1;
}

static double rate_get_10k_refs(void) {
  ray_ref_t *inner = malloc(N_INNER_REFS * sizeof *inner);
  EXPECT(inner != NULL);
  for (int64_t i = 0; i < N_INNER_REFS; i++) CHECK(ray_put(&i, sizeof i, &inner[i]));

  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  CHECK(msgpack_pack_array(&pk, N_INNER_REFS));
  for (size_t i = 0; i < N_INNER_REFS; i++) CHECK(ray_msgpack_pack_ref(&pk, inner[i]));
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  EXPECT(msgpack_unpack_next(&u, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS);
  ray_ref_t outer;
  CHECK(ray_put_msgpack(&u.data, &outer));
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  CHECK(ray_ref_release_batch(inner, N_INNER_REFS)); /* the outer object holds them now */

  /* Check once, outside the timing: the decoded value hands out the same
   * refs in order, and each still reads back its value. */
  ray_msgpack_t m;
  CHECK(ray_get_msgpack(outer, 0, &m));
  EXPECT(m.obj.type == MSGPACK_OBJECT_ARRAY && m.obj.via.array.size == N_INNER_REFS);
  EXPECT(m.nrefs == N_INNER_REFS);
  for (int64_t i = 0; i < N_INNER_REFS; i++) {
    ray_ref_t r;
    CHECK(ray_msgpack_ref(&m.obj.via.array.ptr[i], &r));
    EXPECT(r.id == inner[i].id && m.refs[i].id == inner[i].id);
    ray_buf_t b;
    CHECK(ray_get(m.refs[i], 0, &b));
    EXPECT(b.size == sizeof i && memcmp(b.data, &i, sizeof i) == 0);
    ray_buf_release(&b);
  }
  CHECK(ray_ref_release_batch(m.refs, m.nrefs));
  ray_msgpack_release(&m);
  free(inner);

  double rate = measure(get_10k_refs_once, &outer);
  CHECK(ray_ref_release(outer)); /* frees the outer object and the 10,000 */
  return rate;
}

/* ---- spill_put_gigabytes: 1 GiB of 1 MiB objects through a 64 MiB store ----
 *
 * Its own runtime: the shared one is shut down and a new one started with
 * object_store_memory = 64 MiB and spilling into a fresh directory of ours
 * under the system temp dir; the shared runtime is restored after.
 * Put phase: 1024 copying puts of one pre-filled 1 MiB buffer whose first
 * word is the object's index (so every object differs), every ref kept, so
 * at least 960 MiB must go to disk. Get phase: get each object back (in put
 * order, so the oldest, spilled first, are restored), check its index word,
 * four pattern bytes and, for three of them, the whole payload; release.
 * The baseline writes 1 GiB in 1 MiB chunks to one file in the same
 * directory with uv_fs_write (plain write(2), no fsync: the page cache, as
 * the store's spill writes): an untimed one first, then once before and once
 * after the spill phases; the faster of the two is reported and used for
 * the ratio (the harsher comparison). The store's
 * high-water mark must never exceed the 64 MiB capacity (abort otherwise),
 * and the spill directory must be empty after the shutdown. */

#define SPILL_OBJ_SIZE ((size_t)1 << 20)
#define SPILL_OBJECTS 1024 /* 1 GiB */
#define SPILL_STORE_MEMORY ((uint64_t)64 << 20)

static ray_config_t g_cfg; /* the shared runtime's configuration */

static unsigned char spill_pattern(size_t j) {
  return (unsigned char)(j * 131u + (j >> 11));
}

static void uv_check(const char *what, int rc, const char *path) {
  if (rc < 0) {
    fprintf(stderr, "rustyray_microbenchmark: %s %s: %s\n", what, path, uv_strerror(rc));
    abort();
  }
}

/* Write SPILL_OBJECTS chunks of `src` (index word varied) to `dir`/raw, close
 * it, unlink it; return GB/s (1e9 bytes) of the write + close. */
static double raw_disk_write(const char *dir, unsigned char *src) {
  char path[1200];
  snprintf(path, sizeof path, "%s/raw_write.bin", dir);
  uv_fs_t req;
  uint64_t t0 = uv_hrtime();
  int fd = uv_fs_open(NULL, &req, path, UV_FS_O_WRONLY | UV_FS_O_CREAT | UV_FS_O_TRUNC, 0600, NULL);
  uv_fs_req_cleanup(&req);
  uv_check("open", fd, path);
  for (uint64_t i = 0; i < SPILL_OBJECTS; i++) {
    memcpy(src, &i, sizeof i);
    size_t done = 0;
    while (done < SPILL_OBJ_SIZE) {
      uv_buf_t b = uv_buf_init((char *)src + done, (unsigned)(SPILL_OBJ_SIZE - done));
      int w = uv_fs_write(NULL, &req, fd, &b, 1, -1, NULL);
      uv_fs_req_cleanup(&req);
      uv_check("write", w, path);
      EXPECT(w > 0);
      done += (size_t)w;
    }
  }
  uv_check("close", uv_fs_close(NULL, &req, fd, NULL), path);
  uv_fs_req_cleanup(&req);
  uint64_t t1 = uv_hrtime();
  uv_check("unlink", uv_fs_unlink(NULL, &req, path, NULL), path);
  uv_fs_req_cleanup(&req);
  return (double)SPILL_OBJECTS * (double)SPILL_OBJ_SIZE / (double)(t1 - t0);
}

static void case_spill_gigabytes(const char *name) {
  /* A directory of ours, so the baseline writes to the same disk. */
  char tmp[1024];
  size_t len = sizeof tmp;
  uv_check("uv_os_tmpdir", uv_os_tmpdir(tmp, &len), "");
  char tmpl[1100];
  snprintf(tmpl, sizeof tmpl, "%s/rustyray-bench-spill-XXXXXX", tmp);
  uv_fs_t req;
  uv_check("mkdtemp", uv_fs_mkdtemp(NULL, &req, tmpl, NULL), tmpl);
  char dir[1100];
  snprintf(dir, sizeof dir, "%s", req.path);
  uv_fs_req_cleanup(&req);

  unsigned char *src = malloc(SPILL_OBJ_SIZE);
  ray_ref_t *refs = malloc(SPILL_OBJECTS * sizeof *refs);
  EXPECT(src != NULL && refs != NULL);
  for (size_t j = 0; j < SPILL_OBJ_SIZE; j++) src[j] = spill_pattern(j);

  /* Untimed first: on a VM the first write of fresh page-cache memory pays
   * for the host backing it (0.4 GB/s against 6 GB/s measured here), which
   * is not the disk's speed; then the timed baseline. */
  (void)raw_disk_write(dir, src);
  double raw1 = raw_disk_write(dir, src);

  CHECK(ray_shutdown());
  ray_config_t cfg = g_cfg;
  cfg.object_store_memory = SPILL_STORE_MEMORY;
  cfg.enable_spilling = true;
  cfg.spill_dir = dir;
  CHECK(ray_init(&cfg));

  uint64_t t0 = uv_hrtime();
  for (uint64_t i = 0; i < SPILL_OBJECTS; i++) {
    memcpy(src, &i, sizeof i);
    CHECK(ray_put(src, SPILL_OBJ_SIZE, &refs[i]));
  }
  uint64_t t1 = uv_hrtime();
  ray_stats_t mid;
  CHECK(ray_stats(&mid));

  static const size_t probes[] = {8, 4097, SPILL_OBJ_SIZE / 2 + 3, SPILL_OBJ_SIZE - 1};
  for (uint64_t i = 0; i < SPILL_OBJECTS; i++) {
    ray_buf_t b;
    CHECK(ray_get(refs[i], RAY_TIMEOUT_INFINITE, &b));
    const unsigned char *p = b.data;
    uint64_t idx;
    EXPECT(b.size == SPILL_OBJ_SIZE);
    memcpy(&idx, p, sizeof idx);
    EXPECT(idx == i);
    for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++)
      EXPECT(p[probes[k]] == spill_pattern(probes[k]));
    if (i == 0 || i == SPILL_OBJECTS / 2 || i == SPILL_OBJECTS - 1)
      EXPECT(memcmp(p + 8, src + 8, SPILL_OBJ_SIZE - 8) == 0);
    ray_buf_release(&b);
    CHECK(ray_ref_release(refs[i]));
  }
  uint64_t t2 = uv_hrtime();

  expect_store_empty(name);
  ray_stats_t st;
  CHECK(ray_stats(&st));
  EXPECT(st.bytes_spilled == 0); /* every spilled copy freed with its object */
  EXPECT(st.object_store_memory == SPILL_STORE_MEMORY);
  if (st.bytes_in_memory_high_water > SPILL_STORE_MEMORY) {
    fprintf(stderr, "rustyray_microbenchmark: %s: high-water %llu bytes > capacity %llu\n", name,
            (unsigned long long)st.bytes_in_memory_high_water,
            (unsigned long long)SPILL_STORE_MEMORY);
    abort();
  }
  /* Everything beyond the capacity went to disk and came back from it. */
  EXPECT(st.bytes_spilled_total >= (uint64_t)SPILL_OBJECTS * SPILL_OBJ_SIZE - SPILL_STORE_MEMORY);
  EXPECT(st.restore_count >= SPILL_OBJECTS - SPILL_STORE_MEMORY / SPILL_OBJ_SIZE);
  fprintf(stderr,
          "# %s: after the puts %llu MiB in memory, %llu MiB on disk; in all %llu spilled "
          "(%llu MiB), %llu restored\n",
          name, (unsigned long long)(mid.bytes_in_memory >> 20),
          (unsigned long long)(mid.bytes_spilled >> 20), (unsigned long long)st.spill_count,
          (unsigned long long)(st.bytes_spilled_total >> 20), (unsigned long long)st.restore_count);
  CHECK(ray_shutdown());

  double raw2 = raw_disk_write(dir, src);
  /* The spill files are gone: the directory is empty, so it can be removed. */
  uv_check("rmdir (spill files left?)", uv_fs_rmdir(NULL, &req, dir, NULL), dir);
  uv_fs_req_cleanup(&req);
  free(refs);
  free(src);

  CHECK(ray_init(&g_cfg)); /* restore the shared runtime */
  register_functions();

  double bytes = (double)SPILL_OBJECTS * (double)SPILL_OBJ_SIZE;
  double put_gbs = bytes / (double)(t1 - t0), get_gbs = bytes / (double)(t2 - t1);
  double raw = raw1 > raw2 ? raw1 : raw2;
  fprintf(stderr, "# %s: raw disk write %.2f GB/s before, %.2f GB/s after\n", name, raw1, raw2);
  report(name, put_gbs, "GB/s");
  report("spill_get_gigabytes", get_gbs, "GB/s");
  report("raw_disk_write_gigabytes", raw, "GB/s");
  report("spill_put_vs_raw_disk", put_gbs / raw, "ratio");
  report("spill_store_high_water", (double)st.bytes_in_memory_high_water, "bytes");
  report("spill_store_capacity", (double)SPILL_STORE_MEMORY, "bytes");
}

/* ---- soak_10m_tasks (opt-in): 10,000,000 trivial tasks, RSS flat ----------
 *
 * Batches of 10,000: submit, then get (checking the value) and release each.
 * A warm-up of 100,000 tasks first; then VmRSS (from /proc/self/status) is
 * read, the 10,000,000 tasks run, and VmRSS is read again. */

#define SOAK_TASKS 10000000
#define SOAK_BATCH 10000
#define SOAK_WARMUP_BATCHES 10

static uint64_t rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f != NULL) {
    char line[256];
    while (fgets(line, sizeof line, f) != NULL) {
      unsigned long long kib;
      if (strncmp(line, "VmRSS:", 6) == 0 && sscanf(line + 6, "%llu", &kib) == 1) {
        fclose(f);
        return kib;
      }
    }
    fclose(f);
  }
  size_t rss; /* not Linux: libuv's figure */
  uv_check("uv_resident_set_memory", uv_resident_set_memory(&rss), "");
  return rss / 1024;
}

static void soak_batch(ray_ref_t *refs) {
  for (int i = 0; i < SOAK_BATCH; i++) CHECK(ray_task_submit(g_noop_fn, NULL, 0, NULL, &refs[i]));
  for (int i = 0; i < SOAK_BATCH; i++) {
    int64_t v = 0;
    GET_I64(refs[i], &v);
    EXPECT(v == 1);
    CHECK(ray_ref_release(refs[i]));
  }
}

static void case_soak(const char *name) {
  ray_ref_t *refs = malloc(SOAK_BATCH * sizeof *refs);
  EXPECT(refs != NULL);
  for (int b = 0; b < SOAK_WARMUP_BATCHES; b++) soak_batch(refs);
  uint64_t rss_start = rss_kib();
  uint64_t t0 = uv_hrtime();
  for (int b = 1; b <= SOAK_TASKS / SOAK_BATCH; b++) {
    soak_batch(refs);
    if (b % 100 == 0)
      fprintf(stderr, "# %s: %d tasks, VmRSS %llu KiB\n", name, b * SOAK_BATCH,
              (unsigned long long)rss_kib());
  }
  uint64_t t1 = uv_hrtime();
  uint64_t rss_end = rss_kib();
  free(refs);
  ray_stats_t st;
  CHECK(ray_stats(&st));
  EXPECT(st.tasks_failed == 0);
  report(name, (double)SOAK_TASKS * 1e9 / (double)(t1 - t0), "tasks/s");
  printf("soak_10m_tasks_rss_start %llu KiB\n", (unsigned long long)rss_start);
  printf("soak_10m_tasks_rss_end %llu KiB\n", (unsigned long long)rss_end);
  printf("soak_10m_tasks_rss_growth %.3f ratio\n", (double)rss_end / (double)rss_start);
  fflush(stdout);
}

/* ---- idle_runtime_cpu: what an idle runtime costs ------------------------- */

static uint64_t process_cpu_ns(void) {
  uv_rusage_t ru;
  CHECK(uv_getrusage(&ru));
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/* Run some tasks (every worker busy, then looking for more), let the
 * runtime go idle for 100 ms, then measure the whole process's CPU time
 * for --seconds while this thread sleeps: percent of one core. The workers
 * spin for worker_spin_us and then park, so this should be near 0. */
static void case_idle_cpu(const char *name) {
  ray_ref_t *refs = malloc(ASYNC_TASKS * sizeof *refs);
  EXPECT(refs != NULL);
  (void)tasks_async_batch(refs);
  free(refs);
  uv_sleep(100);
  uint64_t cpu0 = process_cpu_ns(), t0 = uv_hrtime();
  uv_sleep((unsigned)(g_seconds * 1000.0));
  uint64_t cpu1 = process_cpu_ns(), t1 = uv_hrtime();
  report(name, 100.0 * (double)(cpu1 - cpu0) / (double)(t1 - t0), "percent_of_a_core");
}

/* ---- The typed layer's cases (bench_typed.c) ------------------------------- */

void bench_typed_run(double seconds, bool (*selected)(const char *name));
static const char *g_typed_name;

static bool is_typed_name(const char *n) {
  return strcmp(n, g_typed_name) == 0;
}

static void case_typed(const char *name) {
  g_typed_name = name;
  bench_typed_run(g_seconds, is_typed_name);
}

/* ---- The C++ API's cases (cpp_cases.cpp) ---------------------------------
 *
 * cpp_tasks_async and cpp_1_1_actor_calls_async do the work of
 * single_client_tasks_async and 1_1_actor_calls_async through <ray/api.h>
 * (cpp_cases.h says how), timed by the same measure(). Each runs right
 * after its C case and wherever that case runs (by default, under a prefix
 * that selects the C case or its own name, under --compare), and prints
 *
 *   cpp_X <rate> <unit>
 *   cpp_X_cost_vs_c <the C case's rate / the C++ rate> ratio
 *
 * the second being what one call costs through the C++ API over what it
 * costs through the C API (issue 14's budget: at most 1.3). The C rate is
 * the C case's figure in this run (its line just above; when the C case
 * was not selected, it is measured once first, on stderr). Under --compare
 * each runs COMPARE_ROUNDS rounds against a fresh C measurement, the order
 * swapped every round, and prints the median rate and the median of the
 * per-round ratios. Built with the C++ API's target (RAY_BENCH_HAVE_CPP). */

#ifdef RAY_BENCH_HAVE_CPP
static double rate_cpp_tasks_async(void) {
  void *ctx = cpp_bench_tasks_new(ASYNC_TASKS);
  double rate = measure(cpp_bench_tasks_batch, ctx);
  cpp_bench_tasks_free(ctx);
  return rate;
}

static double rate_cpp_actor_async(void) {
  void *ctx = cpp_bench_actor_new(ACTOR_ASYNC_CALLS);
  double rate = measure(cpp_bench_actor_batch, ctx);
  cpp_bench_actor_free(ctx);
  return rate;
}

static const struct {
  const char *name;   /* the C++ case, in g_cases */
  const char *c_case; /* the C case it mirrors, in g_cases */
  rate_fn cpp, c;
  const char *unit;
} g_cpp_cases[] = {
    {"cpp_tasks_async", "single_client_tasks_async", rate_cpp_tasks_async, rate_tasks_async,
     "tasks/s"},
    {"cpp_1_1_actor_calls_async", "1_1_actor_calls_async", rate_cpp_actor_async, rate_actor_async,
     "calls/s"},
};
#define N_CPP_CASES (sizeof g_cpp_cases / sizeof g_cpp_cases[0])
static double g_cpp_c_rate[N_CPP_CASES]; /* each C case's figure in this run; 0 before */

static void case_cpp(const char *name); /* below, beside --compare */
#endif

/* The C case a C++ case mirrors; NULL for every other case. */
static const char *cpp_twin(const char *name) {
#ifdef RAY_BENCH_HAVE_CPP
  for (size_t i = 0; i < N_CPP_CASES; i++)
    if (strcmp(g_cpp_cases[i].name, name) == 0) return g_cpp_cases[i].c_case;
#else
  (void)name;
#endif
  return NULL;
}

/* Keep a C case's figure for its C++ case's ratio. */
static void note_c_rate(const char *name, double rate) {
#ifdef RAY_BENCH_HAVE_CPP
  for (size_t i = 0; i < N_CPP_CASES; i++)
    if (strcmp(g_cpp_cases[i].c_case, name) == 0) g_cpp_c_rate[i] = rate;
#else
  (void)name;
  (void)rate;
#endif
}

/* ---- Driver --------------------------------------------------------------- */

/* A case either measures one rate (setup, measure(), teardown) that the
 * driver reports in `unit`, or prints its own lines (`run`). */
typedef struct {
  const char *name;
  rate_fn rate;
  const char *unit;
  void (*run)(const char *name);
  bool opt_in; /* runs only when named in full on the command line */
} bench_case_t;

static const bench_case_t g_cases[] = {
    {"single_client_put_calls", rate_put_calls, "ops/s", NULL, false},
    {"single_client_get_calls", rate_get_calls, "ops/s", NULL, false},
    {"multi_client_put_calls", rate_multi_put_calls, "ops/s", NULL, false},
    {"single_client_put_gigabytes", NULL, NULL, case_put_gigabytes, false},
    {"single_client_put_owned", rate_put_owned, "ops/s", NULL, false},
    {"single_client_get_batch_1k", rate_get_batch_1k, "batches/s", NULL, false},
    {"single_client_wait_1k_refs", rate_wait_1k, "calls/s", NULL, false},
    {"single_client_tasks_sync", rate_tasks_sync, "round_trips/s", NULL, false},
    {"single_client_tasks_async", rate_tasks_async, "tasks/s", NULL, false},
#ifdef RAY_BENCH_HAVE_CPP
    {"cpp_tasks_async", NULL, NULL, case_cpp, false},
#endif
    {"typed_tasks_async", NULL, NULL, case_typed, false},
    {"multi_client_tasks_async", rate_multi_tasks_async, "tasks/s", NULL, false},
    {"single_client_tasks_and_get_batch", rate_tasks_and_get_batch, "tasks/s", NULL, false},
    {"task_chain_100k", rate_task_chain, "tasks/s", NULL, false},
    {"fib_25_nested", rate_fib_nested, "tasks/s", NULL, false},
    {"1_1_actor_calls_sync", rate_actor_sync, "calls/s", NULL, false},
    {"1_1_actor_calls_async", rate_actor_async, "calls/s", NULL, false},
#ifdef RAY_BENCH_HAVE_CPP
    {"cpp_1_1_actor_calls_async", NULL, NULL, case_cpp, false},
#endif
    {"typed_1_1_actor_calls_async", NULL, NULL, case_typed, false},
    {"1_1_actor_calls_concurrent", rate_actor_concurrent, "calls/s", NULL, false},
    {"1_n_actor_calls_async", rate_actor_1_n, "calls/s", NULL, false},
    {"n_n_actor_calls_async", rate_actor_n_n, "calls/s", NULL, false},
    {"n_n_actor_calls_with_arg_async", rate_actor_n_n_arg, "calls/s", NULL, false},
    {"single_client_get_object_containing_10k_refs", rate_get_10k_refs, "gets/s", NULL, false},
    {"spill_put_gigabytes", NULL, NULL, case_spill_gigabytes, false},
    {"idle_runtime_cpu", NULL, NULL, case_idle_cpu, false},
    {"soak_10m_tasks", NULL, NULL, case_soak, true},
};
#define N_CASES (sizeof g_cases / sizeof g_cases[0])

/* Run one case in full and check that it left the store empty. */
static void run_case(const bench_case_t *c) {
  if (c->rate != NULL) {
    double rate = c->rate();
    report(c->name, rate, c->unit);
    note_c_rate(c->name, rate);
  } else {
    c->run(c->name);
  }
  expect_store_empty(c->name);
}

/* The case named `name` (one of g_cases). */
static const bench_case_t *case_named(const char *name) {
  for (size_t c = 0; c < N_CASES; c++)
    if (strcmp(g_cases[c].name, name) == 0) return &g_cases[c];
  fprintf(stderr, "rustyray_microbenchmark: no case %s\n", name);
  abort();
}

/* ---- --compare: each case against the same work written with oneTBB -------
 *
 * The TBB side is bench/tbb_baseline.cpp (built only when CMake finds
 * oneTBB); each of its functions runs one round of g_seconds (after a tenth
 * of that as warm-up) with the same sizes as our case and checks its own
 * results. COMPARE_ROUNDS rounds, each measuring ours then TBB's, the order
 * swapped every round; the medians and the median of the per-round ratios
 * ours/TBB are printed. Three cases with no TBB counterpart run once, so a
 * comparison run also shows that nothing else regressed. */

#define COMPARE_ROUNDS 5

static const char *const g_compare_also[] = {
    "fib_25_nested",
    "single_client_wait_1k_refs",
    "single_client_get_object_containing_10k_refs",
};

#ifdef RAY_BENCH_HAVE_TBB
static double tbb_tasks_async(void) {
  return tbb_baseline_tasks_async(g_seconds, ASYNC_TASKS);
}
static double tbb_task_chain(void) {
  return tbb_baseline_task_chain(g_seconds, CHAIN_TASKS);
}
static double tbb_tasks_sync(void) {
  return tbb_baseline_tasks_sync(g_seconds);
}
static double tbb_actor_1_1(void) {
  return tbb_baseline_actor_calls_async(g_seconds, 1, ACTOR_ASYNC_CALLS);
}
static double tbb_actor_n_n(void) {
  return tbb_baseline_actor_calls_async(g_seconds, num_cpus(), ACTOR_ASYNC_CALLS);
}
static double tbb_put_calls(void) {
  return tbb_baseline_put_calls(g_seconds, 1);
}
static double tbb_get_calls(void) {
  return tbb_baseline_get_calls(g_seconds);
}
static double tbb_multi_put_calls(void) {
  return tbb_baseline_put_calls(g_seconds, num_cpus());
}

static const struct {
  const char *name; /* our case, in g_cases */
  rate_fn tbb;
} g_compare[] = {
    {"single_client_tasks_async", tbb_tasks_async}, {"task_chain_100k", tbb_task_chain},
    {"single_client_tasks_sync", tbb_tasks_sync},   {"1_1_actor_calls_async", tbb_actor_1_1},
    {"n_n_actor_calls_async", tbb_actor_n_n},       {"single_client_put_calls", tbb_put_calls},
    {"single_client_get_calls", tbb_get_calls},     {"multi_client_put_calls", tbb_multi_put_calls},
};
#define N_COMPARE (sizeof g_compare / sizeof g_compare[0])

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void compare_case(const bench_case_t *c, rate_fn tbb) {
  double ours[COMPARE_ROUNDS], theirs[COMPARE_ROUNDS], ratio[COMPARE_ROUNDS];
  for (int r = 0; r < COMPARE_ROUNDS; r++) {
    bool ours_first = r % 2 == 0;
    if (!ours_first) theirs[r] = tbb();
    ours[r] = c->rate();
    expect_store_empty(c->name);
    if (ours_first) theirs[r] = tbb();
    ratio[r] = ours[r] / theirs[r];
    fprintf(stderr, "# %s round %d/%d (%s first): ours %.4g, tbb %.4g, ratio %.3f\n", c->name,
            r + 1, COMPARE_ROUNDS, ours_first ? "ours" : "tbb", ours[r], theirs[r], ratio[r]);
  }
  char name[128];
  report(c->name, median(ours, COMPARE_ROUNDS), c->unit);
  snprintf(name, sizeof name, "%s_tbb", c->name);
  report(name, median(theirs, COMPARE_ROUNDS), c->unit);
  snprintf(name, sizeof name, "%s_vs_tbb", c->name);
  report(name, median(ratio, COMPARE_ROUNDS), "ratio");
}
#endif

/* The TBB counterpart of a case, or NULL. */
static rate_fn tbb_counterpart(const char *name) {
#ifdef RAY_BENCH_HAVE_TBB
  for (size_t i = 0; i < N_COMPARE; i++)
    if (strcmp(g_compare[i].name, name) == 0) return g_compare[i].tbb;
#else
  (void)name;
#endif
  return NULL;
}

/* Whether a case takes part in the compare mode (a C++ case: with its C case). */
static bool in_compare(const bench_case_t *c) {
  if (tbb_counterpart(c->name) != NULL) return true;
  const char *twin = cpp_twin(c->name);
  if (twin != NULL && in_compare(case_named(twin))) return true;
  for (size_t i = 0; i < sizeof g_compare_also / sizeof g_compare_also[0]; i++)
    if (strcmp(g_compare_also[i], c->name) == 0) return true;
  return false;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: rustyray_microbenchmark [--seconds S] [--compare] [--list] [PREFIX...]\n"
          "  --seconds S  measure each case for S seconds (default 1, env RAY_BENCH_SECONDS)\n"
          "  --compare    run the cases that have a oneTBB counterpart against it, %d rounds\n"
          "               each, interleaved; print ours, X_tbb and X_vs_tbb (median ratio)\n"
          "  --list       print the case names and exit\n"
          "  PREFIX...    run only the cases whose name starts with one of these\n"
          "Opt-in cases (soak_10m_tasks, 10,000,000 tasks) never run by default or by\n"
          "prefix: only when named in full.\n",
          COMPARE_ROUNDS);
}

static bool parse_seconds(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v > 0.0) || v > 3600.0) return false;
  *out = v;
  return true;
}

static bool g_compare_mode; /* --compare */

#ifdef RAY_BENCH_HAVE_CPP
/* A C++ case (the section "The C++ API's cases" above): its rate, then its
 * per-call cost over its C case's. */
static void case_cpp(const char *name) {
  size_t k = 0;
  while (k < N_CPP_CASES && strcmp(g_cpp_cases[k].name, name) != 0) k++;
  EXPECT(k < N_CPP_CASES);
  const char *c_case = g_cpp_cases[k].c_case, *unit = g_cpp_cases[k].unit;
  char cost_name[128];
  snprintf(cost_name, sizeof cost_name, "%s_cost_vs_c", name);
#ifdef RAY_BENCH_HAVE_TBB
  if (g_compare_mode) {
    double cpp[COMPARE_ROUNDS], c[COMPARE_ROUNDS], cost[COMPARE_ROUNDS];
    for (int r = 0; r < COMPARE_ROUNDS; r++) {
      bool cpp_first = r % 2 == 0;
      if (!cpp_first) {
        c[r] = g_cpp_cases[k].c();
        expect_store_empty(c_case);
      }
      cpp[r] = g_cpp_cases[k].cpp();
      expect_store_empty(name);
      if (cpp_first) {
        c[r] = g_cpp_cases[k].c();
        expect_store_empty(c_case);
      }
      cost[r] = c[r] / cpp[r];
      fprintf(stderr, "# %s round %d/%d (%s first): C++ %.4g, C %.4g, C++/C cost per call %.3f\n",
              name, r + 1, COMPARE_ROUNDS, cpp_first ? "C++" : "C", cpp[r], c[r], cost[r]);
    }
    report(name, median(cpp, COMPARE_ROUNDS), unit);
    report(cost_name, median(cost, COMPARE_ROUNDS), "ratio");
    return;
  }
#endif
  double c_rate = g_cpp_c_rate[k];
  if (c_rate == 0) {
    c_rate = g_cpp_cases[k].c();
    expect_store_empty(c_case);
    fprintf(stderr, "# %s: %s was not selected, measured for the ratio: %.0f %s\n", name, c_case,
            c_rate, unit);
  }
  double rate = g_cpp_cases[k].cpp();
  report(name, rate, unit);
  report(cost_name, c_rate / rate, "ratio");
}
#endif

static bool selected(const bench_case_t *c, char **prefixes, int nprefixes) {
  if (g_compare_mode && !in_compare(c)) return false;
  if (c->opt_in) {
    for (int i = 0; i < nprefixes; i++)
      if (strcmp(c->name, prefixes[i]) == 0) return true;
    return false;
  }
  if (nprefixes == 0) return true;
  for (int i = 0; i < nprefixes; i++)
    if (strncmp(c->name, prefixes[i], strlen(prefixes[i])) == 0) return true;
  /* A C++ case runs wherever its C case does. */
  const char *twin = cpp_twin(c->name);
  return twin != NULL && selected(case_named(twin), prefixes, nprefixes);
}

int main(int argc, char **argv) {
  const char *env = getenv("RAY_BENCH_SECONDS");
  if (env && *env && !parse_seconds(env, &g_seconds)) {
    fprintf(stderr, "rustyray_microbenchmark: bad RAY_BENCH_SECONDS '%s'\n", env);
    return 2;
  }

  char **prefixes = calloc((size_t)argc, sizeof *prefixes);
  EXPECT(prefixes != NULL);
  int nprefixes = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 || strcmp(argv[i], "-s") == 0) {
      if (i + 1 >= argc || !parse_seconds(argv[i + 1], &g_seconds)) {
        fprintf(stderr, "rustyray_microbenchmark: --seconds needs a number in (0, 3600]\n");
        return 2;
      }
      i++;
    } else if (strncmp(argv[i], "--seconds=", 10) == 0) {
      if (!parse_seconds(argv[i] + 10, &g_seconds)) {
        fprintf(stderr, "rustyray_microbenchmark: --seconds needs a number in (0, 3600]\n");
        return 2;
      }
    } else if (strcmp(argv[i], "--compare") == 0) {
#ifndef RAY_BENCH_HAVE_TBB
      fprintf(stderr,
              "rustyray_microbenchmark: --compare needs oneTBB, which was not found when this "
              "was built (Debian: apt-get install libtbb-dev, then reconfigure)\n");
      free(prefixes);
      return 2;
#endif
      g_compare_mode = true;
    } else if (strcmp(argv[i], "--list") == 0) {
      for (size_t c = 0; c < N_CASES; c++) printf("%s\n", g_cases[c].name);
      for (size_t c = 0; c < N_CASES; c++)
        if (g_cases[c].opt_in)
          fprintf(stderr, "# %s is opt-in: it runs only when named in full\n", g_cases[c].name);
      free(prefixes);
      return 0;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      free(prefixes);
      return 0;
    } else if (argv[i][0] == '-') {
      usage(stderr);
      return 2;
    } else {
      prefixes[nprefixes++] = argv[i];
    }
  }

  /* Launched in cluster mode (RAY_CLUSTER=mpi, under mpirun): the cluster
   * cases only (cluster_bench.c), on every rank. */
  const char *cluster = getenv("RAY_CLUSTER");
  if (cluster != NULL && strcmp(cluster, "mpi") == 0) {
#ifdef RAY_BENCH_HAVE_MPI
    int code = cluster_bench_run(g_seconds, prefixes, nprefixes);
    free(prefixes);
    return code;
#else
    fprintf(stderr, "rustyray_microbenchmark: RAY_CLUSTER=mpi needs a build with RAY_WITH_MPI\n");
    free(prefixes);
    return 2;
#endif
  }

  /* A prefix that selects nothing is a typo: say so instead of printing nothing. */
  for (int p = 0; p < nprefixes; p++) {
    bool any = false;
    const char *opt_in = NULL;
    for (size_t c = 0; c < N_CASES; c++) {
      if (strncmp(g_cases[c].name, prefixes[p], strlen(prefixes[p])) != 0) continue;
      if (selected(&g_cases[c], &prefixes[p], 1))
        any = true;
      else if (g_cases[c].opt_in && (!g_compare_mode || in_compare(&g_cases[c])))
        opt_in = g_cases[c].name;
    }
    if (!any) {
      if (opt_in != NULL)
        fprintf(stderr,
                "rustyray_microbenchmark: '%s' only matches %s, which is opt-in: "
                "name it in full\n",
                prefixes[p], opt_in);
      else
        fprintf(stderr, "rustyray_microbenchmark: no %scase starts with '%s' (see --list)\n",
                g_compare_mode ? "compared " : "", prefixes[p]);
      return 2;
    }
  }

  if (ray_version_hex() != RAY_VERSION_HEX) {
    fprintf(stderr, "rustyray_microbenchmark: built against %d.%d.%d, running %s\n",
            RAY_VERSION_MAJOR, RAY_VERSION_MINOR, RAY_VERSION_PATCH, ray_version());
    return 2;
  }

  CHECK(ray_actor_method(&k_counter_class, "inc", &g_m_inc));
  CHECK(ray_actor_method(&k_counter_class, "inc_arg", &g_m_inc_arg));
  CHECK(ray_actor_method(&k_counter_class, "read", &g_m_read));

  CHECK(ray_config_init(&g_cfg));
  CHECK(ray_init(&g_cfg));
  register_functions();
  ray_stats_t st;
  CHECK(ray_stats(&st));
  fprintf(stderr, "# rustyray %s, %u cpus, %llu workers, %llu shards, %.3g s per case\n",
          ray_version(), num_cpus(), (unsigned long long)st.num_workers,
          (unsigned long long)st.num_shards, g_seconds);

#ifdef RAY_BENCH_HAVE_TBB
  if (g_compare_mode) { /* TBB runs its tasks on as many threads as we do */
    tbb_baseline_init((unsigned)st.num_workers);
    fprintf(stderr, "# against %s, %d rounds per case\n", tbb_baseline_describe(), COMPARE_ROUNDS);
  }
#endif

  for (size_t c = 0; c < N_CASES; c++) {
    if (!selected(&g_cases[c], prefixes, nprefixes)) continue;
#ifdef RAY_BENCH_HAVE_TBB
    rate_fn tbb = g_compare_mode ? tbb_counterpart(g_cases[c].name) : NULL;
    if (tbb != NULL) {
      compare_case(&g_cases[c], tbb);
      continue;
    }
#endif
    run_case(&g_cases[c]);
  }

  CHECK(ray_shutdown());
  free(prefixes);
  return 0;
}
