/* bench_typed.c - the typed layer's cases of rustyray_microbenchmark.
 *
 * Two cases mirror the core ones of microbenchmark.c, with the typed calls
 * (rustyray/typed.h) in place of the core API, so the two figures side by
 * side are the typed layer's overhead:
 *
 *   typed_tasks_async            as single_client_tasks_async: submit 100,000
 *                                trivial tasks (typed_bench_noop() -> 1),
 *                                then RAY_GET each (checking it is 1) and
 *                                release it;
 *   typed_1_1_actor_calls_async  as 1_1_actor_calls_async: one actor
 *                                (max_concurrency 1), 10,000 calls of
 *                                TypedBenchCounter_inc(actor), then RAY_GET
 *                                each, checking it is exactly the previous
 *                                result + 1 (calls run in order); at the end
 *                                read() must equal the number of calls made.
 *
 * Output: one line per case on stdout, `case value unit`, as the rest of the
 * benchmark. The same honesty rules: every return code and value is checked
 * (a failure aborts with a message), a tenth of the time is an untimed
 * warm-up, and the store must be empty and no actor alive after each case.
 *
 * The runtime must be running (the benchmark's main starts it); the typed
 * function and class register themselves before main, so every ray_init
 * sees them. Entry point: bench_typed_run(), below. */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rustyray.h"
#include "rustyray/typed.h"

/* Run the typed cases for which selected(name) is true (every case when
 * selected is NULL), each measured for `seconds` after a warm-up of a
 * tenth of that. Aborts on any failure. */
void bench_typed_run(double seconds, bool (*selected)(const char *name));
/* The case names, NULL-terminated (for --list). */
extern const char *const bench_typed_cases[];

const char *const bench_typed_cases[] = {"typed_tasks_async", "typed_1_1_actor_calls_async", NULL};

/* ---- Failure handling ------------------------------------------------------ */

static void die(const char *what, int rc, int line) {
  fprintf(stderr, "rustyray_microbenchmark: bench_typed.c:%d: %s failed: %d %s (%s)\n", line, what,
          rc, ray_err_name(rc), ray_strerror(rc));
  abort();
}

#define EXPECT(cond)                                                                        \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      fprintf(stderr, "rustyray_microbenchmark: bench_typed.c:%d: expected %s\n", __LINE__, \
              #cond);                                                                       \
      abort();                                                                              \
    }                                                                                       \
  } while (0)

/* GET_I64(ref, out): the typed get must succeed; the error chain if not. */
#define GET_I64(r, out)                                                         \
  do {                                                                          \
    int get_rc_ = RAY_GET((r), RAY_TIMEOUT_INFINITE, (out));                    \
    if (get_rc_ != 0) die_chain("RAY_GET(" #r ")", (r).ref, get_rc_, __LINE__); \
  } while (0)

static void die_chain(const char *what, ray_ref_t ref, int rc, int line) {
  ray_error_t *err = NULL;
  char text[2048] = "";
  if (ray_get_error(ref, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  fprintf(stderr, "%s\n", text);
  die(what, rc, line);
}

/* ---- Measurement (as microbenchmark.c's) ----------------------------------- */

typedef uint64_t (*batch_fn)(void *ctx);

static double measure(double seconds, batch_fn fn, void *ctx) {
  uint64_t warm_ns = (uint64_t)(seconds * 1e8), run_ns = (uint64_t)(seconds * 1e9);
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
  printf("%s %.0f %s\n", name, value, unit);
  fflush(stdout);
}

/* Nothing left in the store and no actor alive (a task drops its argument
 * refs just after publishing its result: allow a second to drain). */
static void expect_store_empty(const char *name) {
  ray_stats_t st;
  uint64_t deadline = uv_hrtime() + 1000000000u;
  for (;;) {
    int rc = ray_stats(&st);
    if (rc != 0) die("ray_stats", rc, __LINE__);
    if ((st.objects == 0 && st.bytes_in_memory == 0 && st.actors_alive == 0) ||
        uv_hrtime() > deadline)
      break;
    uv_sleep(1);
  }
  if (st.objects != 0 || st.bytes_in_memory != 0 || st.actors_alive != 0) {
    fprintf(stderr,
            "rustyray_microbenchmark: %s left %llu objects / %llu bytes, %llu actors alive\n", name,
            (unsigned long long)st.objects, (unsigned long long)st.bytes_in_memory,
            (unsigned long long)st.actors_alive);
    abort();
  }
}

/* ---- typed_tasks_async ------------------------------------------------------- */

RAY_FUNCTION(i64, typed_bench_noop) {
  return 1;
}

#define ASYNC_TASKS 100000

static uint64_t tasks_async_batch(void *arg) {
  RAY_REF(i64) *refs = arg;
  for (int i = 0; i < ASYNC_TASKS; i++) refs[i] = typed_bench_noop();
  for (int i = 0; i < ASYNC_TASKS; i++) {
    int64_t v = 0;
    GET_I64(refs[i], &v);
    EXPECT(v == 1);
    int rc = ray_ref_release(refs[i].ref);
    if (rc != 0) die("ray_ref_release", rc, __LINE__);
  }
  return ASYNC_TASKS;
}

static void case_tasks_async(const char *name, double seconds) {
  RAY_REF(i64) *refs = malloc(ASYNC_TASKS * sizeof *refs);
  EXPECT(refs != NULL);
  report(name, measure(seconds, tasks_async_batch, refs), "tasks/s");
  free(refs);
}

/* ---- typed_1_1_actor_calls_async --------------------------------------------- */

typedef struct {
  atomic_llong count; /* as the core case's counter: an atomic */
} bench_counter_t;

RAY_ACTOR(TypedBenchCounter, bench_counter_t)
RAY_DEFAULT_CONSTRUCTOR(TypedBenchCounter)

RAY_METHOD(TypedBenchCounter, i64, inc) {
  return atomic_fetch_add_explicit(&self->count, 1, memory_order_relaxed) + 1;
}

RAY_METHOD(TypedBenchCounter, i64, read) {
  return atomic_load_explicit(&self->count, memory_order_relaxed);
}

#define ACTOR_ASYNC_CALLS 10000

typedef struct {
  TypedBenchCounter actor;
  int64_t calls;
  RAY_REF(i64) * refs;
} actor_async_t;

static uint64_t actor_async_batch(void *arg) {
  actor_async_t *c = arg;
  for (int i = 0; i < ACTOR_ASYNC_CALLS; i++) c->refs[i] = TypedBenchCounter_inc(c->actor);
  for (int i = 0; i < ACTOR_ASYNC_CALLS; i++) {
    int64_t v = 0;
    GET_I64(c->refs[i], &v);
    EXPECT(v == ++c->calls);
    int rc = ray_ref_release(c->refs[i].ref);
    if (rc != 0) die("ray_ref_release", rc, __LINE__);
  }
  return ACTOR_ASYNC_CALLS;
}

static void case_actor_async(const char *name, double seconds) {
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.max_concurrency = 1;
  actor_async_t c = {RAY_CALL_OPTS(&o, TypedBenchCounter_new), 0, NULL};
  int rc = RAY_STATUS(c.actor);
  if (rc != 0) die("TypedBenchCounter_new", rc, __LINE__);
  c.refs = malloc(ACTOR_ASYNC_CALLS * sizeof *c.refs);
  EXPECT(c.refs != NULL);
  report(name, measure(seconds, actor_async_batch, &c), "calls/s");
  /* read() must return exactly the calls made; then drop the handle. */
  RAY_REF(i64) r = TypedBenchCounter_read(c.actor);
  int64_t v = -1;
  GET_I64(r, &v);
  EXPECT(v == c.calls);
  if ((rc = ray_ref_release(r.ref)) != 0) die("ray_ref_release", rc, __LINE__);
  if ((rc = ray_actor_release(c.actor.actor)) != 0) die("ray_actor_release", rc, __LINE__);
  free(c.refs);
}

/* ---- Entry point -------------------------------------------------------------- */

void bench_typed_run(double seconds, bool (*selected)(const char *name)) {
  static const struct {
    const char *name;
    void (*run)(const char *name, double seconds);
  } cases[] = {{"typed_tasks_async", case_tasks_async},
               {"typed_1_1_actor_calls_async", case_actor_async}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (selected != NULL && !selected(cases[i].name)) continue;
    cases[i].run(cases[i].name, seconds);
    expect_store_empty(cases[i].name);
  }
}
