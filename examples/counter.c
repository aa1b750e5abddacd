/* counter.c - Ray's Counter actor, in C.
 *
 * An actor is a stateful object whose method calls return ObjectRefs:
 *
 *     @ray.remote                            static const ray_actor_class_t
 *     class Counter:                           k_counter = {"Counter",
 *         def __init__(self, start): ...         counter_ctor, counter_dtor,
 *         def incr(self, by): ...                k_methods, 2};
 *         def get(self): ...
 *
 * The program shows:
 *   1. create a Counter and call incr 1,000 times from the host without
 *      waiting: calls from one submitter run one at a time, in submission
 *      order, so the i-th call returns exactly start + i;
 *   2. a method id resolved once (ray_actor_method + ray_actor_call_id), for
 *      hot loops that should not look the name up on every call;
 *   3. an actor handle passed to a task (ray_arg_actor): the task calls the
 *      actor and gets the results, inside the pool, without deadlocking it;
 *   4. kill: the destructor runs exactly once, and every later call fails
 *      with RAY_EACTORDIED (a structured error naming class and method);
 *   5. a named actor: found from anywhere with ray_get_actor, unique
 *      (RAY_ENAMEEXISTS, or the same actor with get_if_exists), kept after
 *      its creator's handle is released, and its name free again once it
 *      is killed.
 *
 * It checks every value and return code and exits non-zero on a mismatch,
 * so it doubles as a test (example_counter). */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rustyray.h"

#define NUM_INCR 1000

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                         \
  do {                                                                      \
    int check_rc_ = (call);                                                 \
    if (check_rc_ != RAY_OK) {                                              \
      fprintf(stderr, "counter:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));            \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

#define EXPECT(cond)                                                  \
  do {                                                                \
    if (!(cond)) {                                                    \
      fprintf(stderr, "counter:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                        \
    }                                                                 \
  } while (0)

#define EXPECT_CODE(call, code)                                                     \
  do {                                                                              \
    int expect_rc_ = (call);                                                        \
    if (expect_rc_ != (code)) {                                                     \
      fprintf(stderr, "counter:%d: %s returned %s, expected %s\n", __LINE__, #call, \
              ray_err_name(expect_rc_), ray_err_name(code));                        \
      exit(1);                                                                      \
    }                                                                               \
  } while (0)

/* Wait (polling the program's own flag, not the library) until cond holds. */
#define WAIT_UNTIL(cond)                                                            \
  do {                                                                              \
    uint64_t wait_deadline_ = uv_hrtime() + 60 * (uint64_t)1000000000;              \
    while (!(cond)) {                                                               \
      if (uv_hrtime() > wait_deadline_) {                                           \
        fprintf(stderr, "counter:%d: timed out waiting for %s\n", __LINE__, #cond); \
        exit(1);                                                                    \
      }                                                                             \
      uv_sleep(1);                                                                  \
    }                                                                               \
  } while (0)

/* Inside a task or method: a failing call fails it with a message saying which. */
#define TRY(ctx, call)                                                         \
  do {                                                                         \
    int try_rc_ = (call);                                                      \
    if (try_rc_ != RAY_OK)                                                     \
      return ray_fail((ctx), try_rc_, "%s: %s", #call, ray_err_name(try_rc_)); \
  } while (0)

/* Get an i64 result, printing the error chain if it failed. */
static int64_t get_i64(const char *what, ray_ref_t ref) {
  int64_t v = 0;
  int rc = ray_get_i64(ref, RAY_TIMEOUT_INFINITE, &v);
  if (rc != RAY_OK) {
    ray_error_t *err = NULL;
    char text[2048] = "(no error object)";
    if (ray_get_error(ref, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
    ray_error_free(err);
    fprintf(stderr, "counter: %s failed with %s:\n%s\n", what, ray_err_name(rc), text);
    exit(1);
  }
  return v;
}

/* ---- The Counter class ------------------------------------------------------ */

typedef struct counter_s {
  int64_t value;
  int64_t calls; /* methods run on this state: plain fields, no lock needed */
} counter_t;

static atomic_int g_ctors, g_dtors; /* constructor and destructor runs */

/* Counter(start): the constructor reads its arguments like a task does. */
static int counter_ctor(ray_task_ctx_t *ctx, void **state) {
  int64_t start = 0;
  if (ray_ctx_nargs(ctx) > 0) TRY(ctx, ray_ctx_arg_i64(ctx, 0, &start));
  counter_t *c = calloc(1, sizeof *c);
  if (c == NULL) return ray_fail(ctx, RAY_ENOMEM, "Counter: no memory");
  c->value = start;
  *state = c;
  atomic_fetch_add(&g_ctors, 1);
  return 0;
}

static void counter_dtor(void *state) {
  free(state);
  atomic_fetch_add(&g_dtors, 1);
}

/* incr(by = 1) -> i64: the new value. */
static int counter_incr(ray_task_ctx_t *ctx, void *state) {
  counter_t *c = state;
  int64_t by = 1;
  if (ray_ctx_nargs(ctx) > 0) TRY(ctx, ray_ctx_arg_i64(ctx, 0, &by));
  c->value += by;
  c->calls++;
  return ray_return_i64(ctx, 0, c->value);
}

/* get() -> i64: the current value. */
static int counter_get(ray_task_ctx_t *ctx, void *state) {
  counter_t *c = state;
  c->calls++;
  return ray_return_i64(ctx, 0, c->value);
}

static const uint32_t k_i64[] = {RAY_TYPE_I64};
static const ray_method_def_t k_counter_methods[] = {
    {"incr", counter_incr, k_i64, 1},
    {"get", counter_get, k_i64, 1},
};
static const ray_actor_class_t k_counter = {"Counter", counter_ctor, counter_dtor,
                                            k_counter_methods, 2};

/* ---- A task that uses an actor ---------------------------------------------- */

/* bump(counter, n) -> i64: calls counter.incr() n times and returns the
 * value after the last one. The handle is borrowed for the task's run. */
static int bump(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t counter;
  int64_t n;
  TRY(ctx, ray_ctx_arg_actor(ctx, 0, &counter));
  TRY(ctx, ray_ctx_arg_i64(ctx, 1, &n));
  ray_ref_t last = RAY_REF_NIL;
  for (int64_t i = 0; i < n; i++) {
    if (last.id != 0) TRY(ctx, ray_ref_release(last));
    TRY(ctx, ray_actor_call(counter, "incr", NULL, 0, NULL, &last));
  }
  int64_t v = 0;
  int rc = ray_get_i64(last, RAY_TIMEOUT_INFINITE, &v); /* a nested get: the pool keeps going */
  ray_ref_release(last);
  TRY(ctx, rc);
  return ray_return_i64(ctx, 0, v);
}

/* Whether nobody holds a handle to `a` any more (an unnamed actor then
 * leaves the table: its id is unknown). Probes with a retain it undoes. */
static bool handle_gone(ray_actor_t a) {
  int rc = ray_actor_retain(a);
  if (rc == RAY_OK) CHECK(ray_actor_release(a));
  return rc == RAY_ENOTFOUND;
}

/* ---- The program ------------------------------------------------------------ */

int main(void) {
  CHECK(ray_init(NULL));
  ray_stats_t rs;
  CHECK(ray_stats(&rs));
  printf("runtime started: %" PRIu64 " worker threads\n", rs.num_workers);

  /* 1. Create a counter and increment it from the host without waiting. */
  printf("\n== Counter(start=100): %d incr calls, no waiting in between\n", NUM_INCR);
  ray_arg_t start = ray_arg_i64(100);
  ray_actor_t counter;
  CHECK(ray_actor_create(&k_counter, &start, 1, NULL, &counter));
  printf("  created actor %" PRIu64 " (the constructor runs on the pool; calls queue behind it)\n",
         counter.id);

  ray_ref_t *refs = malloc(NUM_INCR * sizeof *refs);
  EXPECT(refs != NULL);
  for (int i = 0; i < NUM_INCR; i++)
    CHECK(ray_actor_call(counter, "incr", NULL, 0, NULL, &refs[i]));
  printf("  submitted %d calls; each returned a ref at once, typed %s\n", NUM_INCR,
         refs[0].type == RAY_TYPE_I64 ? "i64" : "?");
  EXPECT(refs[0].type == RAY_TYPE_I64);
  /* One submitter: the calls ran in order, so call i saw exactly 100 + i + 1. */
  int in_order = 0;
  for (int i = 0; i < NUM_INCR; i++) {
    int64_t v = get_i64("incr", refs[i]);
    if (v == 100 + i + 1) in_order++;
    CHECK(ray_ref_release(refs[i]));
  }
  printf("  results: %d of %d calls returned exactly start + their position (submission order)\n",
         in_order, NUM_INCR);
  EXPECT(in_order == NUM_INCR);
  free(refs);

  ray_ref_t r;
  CHECK(ray_actor_call(counter, "get", NULL, 0, NULL, &r));
  int64_t value = get_i64("get", r);
  CHECK(ray_ref_release(r));
  printf("  get() = %" PRId64 "\n", value);
  EXPECT(value == 100 + NUM_INCR);

  /* 2. Method ids: resolve the name once, call by index. */
  printf("\n== method ids: resolve \"incr\" once, then call by index\n");
  uint32_t incr_id;
  CHECK(ray_actor_method(&k_counter, "incr", &incr_id));
  ray_arg_t by = ray_arg_i64(10);
  for (int i = 0; i < 5; i++) {
    CHECK(ray_actor_call_id(counter, incr_id, &by, 1, NULL, &r));
    if (i < 4) CHECK(ray_ref_release(r)); /* results we don't need: freed when produced */
  }
  value = get_i64("incr(10)", r);
  CHECK(ray_ref_release(r));
  printf("  \"incr\" is method %u; 5 x incr(10) -> %" PRId64 "\n", incr_id, value);
  EXPECT(value == 100 + NUM_INCR + 50);
  EXPECT_CODE(ray_actor_method(&k_counter, "decr", &incr_id), RAY_ENOTFOUND);
  EXPECT_CODE(ray_actor_call(counter, "decr", NULL, 0, NULL, &r), RAY_ENOTFOUND);
  printf("  unknown method \"decr\": %s\n", ray_err_name(RAY_ENOTFOUND));

  /* 3. The handle as a task argument: two tasks call the same actor. */
  printf("\n== two tasks call the counter through its handle (ray_arg_actor)\n");
  const uint32_t t_i64[] = {RAY_TYPE_I64};
  ray_function_t f_bump;
  CHECK(ray_function_register("bump", bump, NULL, t_i64, 1, &f_bump));
  ray_arg_t bump_args[] = {ray_arg_actor(counter), ray_arg_i64(250)};
  ray_ref_t b1, b2;
  CHECK(ray_task_submit(f_bump, bump_args, 2, NULL, &b1));
  CHECK(ray_task_submit(f_bump, bump_args, 2, NULL, &b2));
  int64_t v1 = get_i64("bump", b1), v2 = get_i64("bump", b2);
  CHECK(ray_ref_release(b1));
  CHECK(ray_ref_release(b2));
  CHECK(ray_actor_call(counter, "get", NULL, 0, NULL, &r));
  value = get_i64("get", r);
  CHECK(ray_ref_release(r));
  printf("  the tasks saw %" PRId64 " and %" PRId64 " after their last call; get() = %" PRId64 "\n",
         v1, v2, value);
  /* Each task's calls run in its own submission order; the two tasks' calls
   * may interleave. Whichever task's last call ran last saw the final value. */
  EXPECT(value == 100 + NUM_INCR + 50 + 500);
  EXPECT((v1 == value || v2 == value) && v1 <= value && v2 <= value);

  /* 4. Kill: the destructor runs once, later calls fail with RAY_EACTORDIED. */
  printf("\n== kill the counter\n");
  CHECK(ray_actor_kill(counter, true));
  WAIT_UNTIL(atomic_load(&g_dtors) == 1); /* once no call of it runs any more */
  printf("  destructor ran %d time(s) for %d construction(s)\n", atomic_load(&g_dtors),
         atomic_load(&g_ctors));
  CHECK(ray_actor_call(counter, "incr", NULL, 0, NULL, &r)); /* accepted: the ref fails */
  int64_t dead_value;
  EXPECT_CODE(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &dead_value), RAY_EACTORDIED);
  ray_error_t *err = NULL;
  CHECK(ray_get_error(r, &err));
  EXPECT(err != NULL && ray_error_code(err) == RAY_EACTORDIED);
  char text[1024];
  ray_error_format(err, text, sizeof text);
  printf("  incr() after kill: %s", text);
  if (text[0] != '\0' && text[strlen(text) - 1] != '\n') printf("\n");
  ray_error_free(err);
  CHECK(ray_ref_release(r));
  CHECK(ray_actor_kill(counter, true)); /* killing a dead actor again is fine */
  CHECK(ray_actor_release(counter));
  /* The bump tasks held handle references too, until they finished (just
   * after their results were published): wait for those to go. */
  WAIT_UNTIL(handle_gone(counter));
  EXPECT_CODE(ray_actor_call(counter, "get", NULL, 0, NULL, &r), RAY_ENOTFOUND);
  printf("  after its last handle is released, the handle is unknown: %s\n",
         ray_err_name(RAY_ENOTFOUND));
  EXPECT(atomic_load(&g_dtors) == 1);

  /* 5. A named actor: anyone can find it by name. */
  printf("\n== a named actor: \"global_counter\"\n");
  ray_actor_opts_t opts;
  ray_actor_opts_init(&opts);
  opts.name = "global_counter";
  ray_actor_t named;
  CHECK(ray_actor_create(&k_counter, NULL, 0, &opts, &named));
  ray_actor_t dup;
  EXPECT_CODE(ray_actor_create(&k_counter, NULL, 0, &opts, &dup), RAY_ENAMEEXISTS);
  printf("  creating a second \"global_counter\": %s\n", ray_err_name(RAY_ENAMEEXISTS));
  opts.get_if_exists = true;
  CHECK(ray_actor_create(&k_counter, NULL, 0, &opts, &dup));
  printf("  ... with get_if_exists: the same actor (%" PRIu64 " == %" PRIu64 ")\n", dup.id,
         named.id);
  EXPECT(dup.id == named.id);
  CHECK(ray_actor_release(dup));

  /* The creator lets go of its handle: a named actor is kept (as detached). */
  CHECK(ray_actor_call(named, "incr", NULL, 0, NULL, &r));
  EXPECT(get_i64("incr", r) == 1);
  CHECK(ray_ref_release(r));
  CHECK(ray_actor_release(named));

  /* Somewhere else in the program: look it up, use it, let go. */
  for (int round = 0; round < 3; round++) {
    ray_actor_t found;
    CHECK(ray_get_actor("global_counter", &found));
    ray_arg_t ten = ray_arg_i64(10);
    CHECK(ray_actor_call(found, "incr", &ten, 1, NULL, &r));
    int64_t v = get_i64("incr", r);
    CHECK(ray_ref_release(r));
    printf("  ray_get_actor(\"global_counter\") -> actor %" PRIu64 ", incr(10) -> %" PRId64 "\n",
           found.id, v);
    EXPECT(found.id == named.id && v == 1 + 10 * (round + 1));
    CHECK(ray_actor_release(found));
  }

  ray_actor_t found;
  CHECK(ray_get_actor("global_counter", &found));
  CHECK(ray_actor_kill(found, true));
  CHECK(ray_actor_release(found));
  EXPECT_CODE(ray_get_actor("global_counter", &found), RAY_ENOTFOUND);
  printf("  killed: ray_get_actor(\"global_counter\") -> %s\n", ray_err_name(RAY_ENOTFOUND));
  WAIT_UNTIL(atomic_load(&g_dtors) == 2);

  /* The name is free again at once. */
  opts.get_if_exists = false;
  CHECK(ray_actor_create(&k_counter, NULL, 0, &opts, &named));
  CHECK(ray_actor_call(named, "get", NULL, 0, NULL, &r));
  value = get_i64("get", r);
  CHECK(ray_ref_release(r));
  printf("  a new \"global_counter\" (actor %" PRIu64 ") starts at %" PRId64 "\n", named.id, value);
  EXPECT(value == 0);
  CHECK(ray_actor_release(named)); /* named: kept until shutdown, which destroys it */

  CHECK(ray_stats(&rs));
  printf("\nactors alive before shutdown: %" PRIu64 "; tasks and calls submitted: %" PRIu64
         ", failed: %" PRIu64 "\n",
         rs.actors_alive, rs.tasks_submitted, rs.tasks_failed);
  CHECK(ray_shutdown());
  printf("shutdown: %d constructions, %d destructions (exactly one each)\n", atomic_load(&g_ctors),
         atomic_load(&g_dtors));
  EXPECT(atomic_load(&g_ctors) == 3 && atomic_load(&g_dtors) == 3);
  return 0;
}
