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
 * RAY_NUM_WORKERS sets the pool size, as for any program using the library.
 *
 * Everything else (the configuration, the case being warmed up) goes to
 * stderr.
 *
 * Usage: rustyray_microbenchmark [--seconds S] [--list] [PREFIX...]
 *   --seconds S  how long each case is measured (default 1, or the
 *                environment variable RAY_BENCH_SECONDS); a warm-up of a
 *                tenth of that runs first, untimed.
 *   --list       print the case names and exit.
 *   PREFIX...    run only the cases whose name starts with one of these.
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

static void report(const char *name, double value, const char *unit) {
  if (value >= 100.0)
    printf("%s %.0f %s\n", name, value, unit);
  else
    printf("%s %.2f %s\n", name, value, unit);
  fflush(stdout);
}

/* After every case: nothing it created may still be in the store. A task
 * lets go of its argument refs just after it publishes its result, so the
 * last few may still be on their way out when the host has its answer: give
 * the store up to a second to drain before calling it a leak. */
static void expect_store_empty(const char *name) {
  ray_stats_t st;
  uint64_t deadline = uv_hrtime() + 1000000000u;
  for (;;) {
    CHECK(ray_stats(&st));
    if ((st.objects == 0 && st.bytes_in_memory == 0) || uv_hrtime() > deadline) break;
    uv_sleep(1);
  }
  if (st.objects != 0 || st.bytes_in_memory != 0) {
    fprintf(stderr, "rustyray_microbenchmark: %s left %llu objects / %llu bytes in the store\n",
            name, (unsigned long long)st.objects, (unsigned long long)st.bytes_in_memory);
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

static void case_put_calls(const char *name) {
  report(name, measure(put_small_batch, NULL), "ops/s");
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

static void case_get_calls(const char *name) {
  int64_t value = 42;
  ray_ref_t ref;
  CHECK(ray_put(&value, sizeof value, &ref));
  ray_buf_t buf;
  CHECK(ray_get(ref, 0, &buf));
  EXPECT(buf.size == sizeof value && memcmp(buf.data, &value, sizeof value) == 0);
  ray_buf_release(&buf);
  report(name, measure(get_small_batch, &ref), "ops/s");
  CHECK(ray_ref_release(ref));
}

/* ---- multi_client_put_calls: one putting thread per core ----------------- */

typedef struct {
  uv_barrier_t *barrier;
  uint64_t run_ns;
  uint64_t ops;
  uint64_t start, end;
} client_t;

static void put_client(void *arg) {
  client_t *c = arg;
  uv_barrier_wait(c->barrier);
  /* Warm-up (untimed) then the timed run, both against the same deadline
   * scheme as measure(). */
  uint64_t t0 = uv_hrtime();
  while (uv_hrtime() - t0 < c->run_ns / 10) put_small_batch(NULL);
  uv_barrier_wait(c->barrier);
  uint64_t ops = 0, now;
  c->start = uv_hrtime();
  do {
    ops += put_small_batch(NULL);
    now = uv_hrtime();
  } while (now - c->start < c->run_ns);
  c->end = now;
  c->ops = ops;
}

static unsigned num_cpus(void) {
  unsigned n = uv_available_parallelism();
  return n ? n : 1;
}

static void case_multi_put_calls(const char *name) {
  unsigned n = num_cpus();
  uv_barrier_t barrier;
  CHECK(uv_barrier_init(&barrier, n));
  client_t *clients = calloc(n, sizeof *clients);
  uv_thread_t *threads = calloc(n, sizeof *threads);
  EXPECT(clients != NULL && threads != NULL);
  for (unsigned i = 0; i < n; i++) {
    clients[i].barrier = &barrier;
    clients[i].run_ns = (uint64_t)(g_seconds * 1e9);
    CHECK(uv_thread_create(&threads[i], put_client, &clients[i]));
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
  /* Aggregate over the whole span from the first start to the last end. */
  report(name, (double)ops * 1e9 / (double)(end - start), "ops/s");
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

static void count_free(void *p) {
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
    CHECK(ray_put_owned(ctx->data, OWNED_SIZE, count_free, &ref));
    CHECK(ray_ref_release(ref));
  }
  ctx->puts += SMALL_BATCH;
  return SMALL_BATCH;
}

/* The same caller buffer is handed over again and again; free_fn counts
 * instead of freeing, so this measures the store's hand-off alone, and the
 * count proves free_fn ran exactly once per put. */
static void case_put_owned(const char *name) {
  owned_ctx_t ctx = {malloc(OWNED_SIZE), 0};
  EXPECT(ctx.data != NULL);
  memset(ctx.data, 0x5a, OWNED_SIZE);
  atomic_store(&g_owned_freed, 0);

  ray_ref_t ref;
  CHECK(ray_put_owned(ctx.data, OWNED_SIZE, count_free, &ref));
  ray_buf_t buf;
  CHECK(ray_get(ref, 0, &buf));
  EXPECT(buf.data == ctx.data && buf.size == OWNED_SIZE); /* zero-copy */
  ray_buf_release(&buf);
  CHECK(ray_ref_release(ref));
  ctx.puts = 1;

  double rate = measure(put_owned_batch, &ctx);
  EXPECT(atomic_load(&g_owned_freed) == ctx.puts);
  free(ctx.data);
  report(name, rate, "ops/s");
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

static void case_get_batch_1k(const char *name) {
  refs_ctx_t *ctx = make_refs();
  CHECK(ray_get_batch(ctx->refs, N_REFS, 0, ctx->bufs));
  for (int64_t i = 0; i < N_REFS; i++) {
    EXPECT(ctx->bufs[i].size == sizeof i && memcmp(ctx->bufs[i].data, &i, sizeof i) == 0);
    ray_buf_release(&ctx->bufs[i]);
  }
  report(name, measure(get_batch_once, ctx), "batches/s");
  free_refs(ctx);
}

/* ---- single_client_wait_1k_refs: wait on 1000 ready refs ----------------- */

static uint64_t wait_once(void *arg) {
  refs_ctx_t *ctx = arg;
  int n = ray_wait(ctx->refs, N_REFS, N_REFS, RAY_TIMEOUT_INFINITE, ctx->ready);
  if (n != N_REFS) die("ray_wait", n, __FILE__, __LINE__);
  return 1;
}

static void case_wait_1k(const char *name) {
  refs_ctx_t *ctx = make_refs();
  memset(ctx->ready, 0, sizeof ctx->ready);
  wait_once(ctx);
  for (int i = 0; i < N_REFS; i++) EXPECT(ctx->ready[i]);
  report(name, measure(wait_once, ctx), "calls/s");
  free_refs(ctx);
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

static void case_tasks_sync(const char *name) {
  report(name, measure(tasks_sync_batch, NULL), "round_trips/s");
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

static void case_tasks_async(const char *name) {
  ray_ref_t *refs = malloc(ASYNC_TASKS * sizeof *refs);
  EXPECT(refs != NULL);
  report(name, measure(tasks_async_batch, refs), "tasks/s");
  free(refs);
}

/* ---- multi_client_tasks_async: one submitting host thread per core ------- */

typedef struct {
  uv_barrier_t *barrier;
  uint64_t run_ns;
  uint64_t ops;
  uint64_t start, end;
  ray_ref_t *refs;
} task_client_t;

static void tasks_client(void *arg) {
  task_client_t *c = arg;
  uv_barrier_wait(c->barrier);
  uint64_t t0 = uv_hrtime();
  while (uv_hrtime() - t0 < c->run_ns / 10) tasks_async_batch(c->refs);
  uv_barrier_wait(c->barrier);
  uint64_t ops = 0, now;
  c->start = uv_hrtime();
  do {
    ops += tasks_async_batch(c->refs);
    now = uv_hrtime();
  } while (now - c->start < c->run_ns);
  c->end = now;
  c->ops = ops;
}

static void case_multi_tasks_async(const char *name) {
  unsigned n = num_cpus();
  uv_barrier_t barrier;
  CHECK(uv_barrier_init(&barrier, n));
  task_client_t *clients = calloc(n, sizeof *clients);
  uv_thread_t *threads = calloc(n, sizeof *threads);
  EXPECT(clients != NULL && threads != NULL);
  for (unsigned i = 0; i < n; i++) {
    clients[i].barrier = &barrier;
    clients[i].run_ns = (uint64_t)(g_seconds * 1e9);
    clients[i].refs = malloc(ASYNC_TASKS * sizeof(ray_ref_t));
    EXPECT(clients[i].refs != NULL);
    CHECK(uv_thread_create(&threads[i], tasks_client, &clients[i]));
  }
  uint64_t ops = 0, start = UINT64_MAX, end = 0;
  for (unsigned i = 0; i < n; i++) {
    CHECK(uv_thread_join(&threads[i]));
    ops += clients[i].ops;
    if (clients[i].start < start) start = clients[i].start;
    if (clients[i].end > end) end = clients[i].end;
    free(clients[i].refs);
  }
  uv_barrier_destroy(&barrier);
  free(clients);
  free(threads);
  report(name, (double)ops * 1e9 / (double)(end - start), "tasks/s");
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

static void case_tasks_and_get_batch(const char *name) {
  gb_ctx_t *ctx = calloc(1, sizeof *ctx);
  EXPECT(ctx != NULL);
  report(name, measure(tasks_get_batch_once, ctx), "tasks/s");
  free(ctx);
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

static void case_task_chain(const char *name) {
  report(name, measure(chain_once, NULL), "tasks/s");
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

static void case_fib_nested(const char *name) {
  report(name, measure(fib_once, NULL), "tasks/s");
}

/* ---- Driver --------------------------------------------------------------- */

typedef struct {
  const char *name;
  void (*run)(const char *name);
} bench_case_t;

static const bench_case_t g_cases[] = {
    {"single_client_put_calls", case_put_calls},
    {"single_client_get_calls", case_get_calls},
    {"multi_client_put_calls", case_multi_put_calls},
    {"single_client_put_gigabytes", case_put_gigabytes},
    {"single_client_put_owned", case_put_owned},
    {"single_client_get_batch_1k", case_get_batch_1k},
    {"single_client_wait_1k_refs", case_wait_1k},
    {"single_client_tasks_sync", case_tasks_sync},
    {"single_client_tasks_async", case_tasks_async},
    {"multi_client_tasks_async", case_multi_tasks_async},
    {"single_client_tasks_and_get_batch", case_tasks_and_get_batch},
    {"task_chain_100k", case_task_chain},
    {"fib_25_nested", case_fib_nested},
};
#define N_CASES (sizeof g_cases / sizeof g_cases[0])

static void usage(FILE *f) {
  fprintf(f,
          "usage: rustyray_microbenchmark [--seconds S] [--list] [PREFIX...]\n"
          "  --seconds S  measure each case for S seconds (default 1, env RAY_BENCH_SECONDS)\n"
          "  --list       print the case names and exit\n"
          "  PREFIX...    run only the cases whose name starts with one of these\n");
}

static bool parse_seconds(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v > 0.0) || v > 3600.0) return false;
  *out = v;
  return true;
}

static bool selected(const char *name, char **prefixes, int nprefixes) {
  if (nprefixes == 0) return true;
  for (int i = 0; i < nprefixes; i++)
    if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
  return false;
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
    } else if (strcmp(argv[i], "--list") == 0) {
      for (size_t c = 0; c < N_CASES; c++) printf("%s\n", g_cases[c].name);
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

  /* A prefix that selects nothing is a typo: say so instead of printing nothing. */
  for (int p = 0; p < nprefixes; p++) {
    bool any = false;
    for (size_t c = 0; c < N_CASES; c++)
      if (strncmp(g_cases[c].name, prefixes[p], strlen(prefixes[p])) == 0) any = true;
    if (!any) {
      fprintf(stderr, "rustyray_microbenchmark: no case starts with '%s' (see --list)\n",
              prefixes[p]);
      return 2;
    }
  }

  if (ray_version_hex() != RAY_VERSION_HEX) {
    fprintf(stderr, "rustyray_microbenchmark: built against %d.%d.%d, running %s\n",
            RAY_VERSION_MAJOR, RAY_VERSION_MINOR, RAY_VERSION_PATCH, ray_version());
    return 2;
  }

  ray_config_t cfg;
  CHECK(ray_config_init(&cfg));
  CHECK(ray_init(&cfg));
  register_functions();
  ray_stats_t st;
  CHECK(ray_stats(&st));
  fprintf(stderr, "# rustyray %s, %u cpus, %llu workers, %llu shards, %.3g s per case\n",
          ray_version(), num_cpus(), (unsigned long long)st.num_workers,
          (unsigned long long)st.num_shards, g_seconds);

  for (size_t c = 0; c < N_CASES; c++) {
    if (!selected(g_cases[c].name, prefixes, nprefixes)) continue;
    g_cases[c].run(g_cases[c].name);
    expect_store_empty(g_cases[c].name);
  }

  CHECK(ray_shutdown());
  free(prefixes);
  return 0;
}
