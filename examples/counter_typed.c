/* counter_typed.c - counter.c with the typed layer (rustyray/typed.h).
 *
 * Ray's Counter actor, declared once:
 *
 *     @ray.remote                          RAY_ACTOR(Counter, counter_t)
 *     class Counter:                       RAY_CONSTRUCTOR(Counter, (i64, start)) {...}
 *         def __init__(self, start): ...   RAY_METHOD(Counter, i64, incr, (i64, by)) {...}
 *         def incr(self, by): ...          RAY_METHOD(Counter, i64, get) {...}
 *         def get(self): ...
 *
 * The macros define the class table (filled before main: no method list to
 * keep), the handle type `Counter` and the typed calls Counter_new(start),
 * Counter_incr(handle, by), Counter_get(handle), and RAY_CALL(Counter_incr,
 * handle, x) for a value or a ref. Calling a method that does not exist, or
 * a method of another class on a Counter, does not compile.
 *
 * The same five parts as counter.c: 1,000 calls in submission order; a ref
 * argument; the handle passed to tasks; kill; a named actor.
 *
 * It checks every value and exits non-zero on a mismatch (example_counter_typed). */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "rustyray.h"
#include "rustyray/typed.h"

#define NUM_INCR 1000

#define EXPECT(cond)                                                        \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "counter_typed:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                              \
    }                                                                       \
  } while (0)

/* Wait (polling the program's own counter) until n destructors have run. */
static atomic_int g_ctors, g_dtors; /* constructor and destructor runs */
static void wait_dtors(int n) {
  uint64_t deadline = uv_hrtime() + 60 * (uint64_t)1000000000;
  for (; atomic_load(&g_dtors) < n; uv_sleep(1)) EXPECT(uv_hrtime() < deadline);
}

/* The value of an i64 result, released. */
static int64_t take(RAY_REF(i64) r) {
  int64_t v = 0;
  int rc = RAY_GET(r, RAY_TIMEOUT_INFINITE, &v);
  if (rc != RAY_OK) fprintf(stderr, "counter_typed: a call failed: %s\n", ray_err_name(rc));
  EXPECT(rc == RAY_OK && ray_ref_release(r.ref) == RAY_OK);
  return v;
}

/* ---- The Counter class ------------------------------------------------------ */

typedef struct counter_s {
  int64_t value;
  int64_t calls; /* methods run on this state one at a time: no lock needed */
} counter_t;

RAY_ACTOR(Counter, counter_t)

/* The layer allocates the state (zeroed) and frees it after the destructor. */
RAY_CONSTRUCTOR(Counter, (i64, start)) {
  self->value = start;
  atomic_fetch_add(&g_ctors, 1);
  return 0;
}

RAY_DESTRUCTOR(Counter) {
  atomic_fetch_add(&g_dtors, 1);
}

RAY_METHOD(Counter, i64, incr, (i64, by)) {
  self->calls++;
  return self->value += by;
}

RAY_METHOD(Counter, i64, get) {
  self->calls++;
  return self->value;
}

/* bump(counter, n): a task that calls the actor n times through the handle
 * it was given (borrowed for the task's run) and returns the last value. */
RAY_FUNCTION(i64, bump, (Counter, counter), (i64, n)) {
  RAY_REF(i64) last = {0};
  for (int64_t i = 0; i < n; i++) {
    ray_ref_release(last.ref);
    last = Counter_incr(counter, 1);
  }
  int64_t v = 0;
  int rc = RAY_GET(last, RAY_TIMEOUT_INFINITE, &v); /* a nested get: the pool keeps going */
  ray_ref_release(last.ref);
  return rc != RAY_OK ? ray_fail(RAY_CTX, rc, "bump: %s", ray_err_name(rc)) : v;
}

/* ---- The program ------------------------------------------------------------ */

int main(void) {
  EXPECT(ray_init(NULL) == RAY_OK);

  /* 1. Create a counter and increment it from the host without waiting. */
  printf("== Counter(start=100): %d incr calls, no waiting in between\n", NUM_INCR);
  Counter counter = Counter_new(100);
  EXPECT(RAY_STATUS(counter) == RAY_OK);
  static RAY_REF(i64) refs[NUM_INCR];
  for (int i = 0; i < NUM_INCR; i++) refs[i] = Counter_incr(counter, 1);
  int in_order = 0; /* one submitter: call i saw exactly 100 + i + 1 */
  for (int i = 0; i < NUM_INCR; i++) in_order += take(refs[i]) == 100 + i + 1;
  printf("  %d of %d calls returned start + their position (in order)\n", in_order, NUM_INCR);
  EXPECT(in_order == NUM_INCR && take(Counter_get(counter)) == 100 + NUM_INCR);

  /* 2. A ref argument: the call waits for it without holding a worker. */
  RAY_REF(i64) ten = RAY_PUT(i64, 10);
  for (int i = 0; i < 5; i++) take(RAY_CALL(Counter_incr, counter, ten));
  EXPECT(ray_ref_release(ten.ref) == RAY_OK);
  int64_t value = take(Counter_get(counter));
  printf("  5 x incr(ref to 10) -> %" PRId64 "\n", value);
  EXPECT(value == 100 + NUM_INCR + 50);

  /* 3. The handle as a task argument: two tasks call the same actor. */
  printf("\n== two tasks call the counter through its handle\n");
  RAY_REF(i64) b1 = bump(counter, 250), b2 = RAY_CALL(bump, counter, 250);
  int64_t v1 = take(b1), v2 = take(b2);
  value = take(Counter_get(counter));
  printf("  the tasks saw %" PRId64 " and %" PRId64 "; get() = %" PRId64 "\n", v1, v2, value);
  EXPECT(value == 100 + NUM_INCR + 50 + 500);
  EXPECT((v1 == value || v2 == value) && v1 <= value && v2 <= value);

  /* 4. Kill: the destructor runs once, later calls fail with RAY_EACTORDIED. */
  printf("\n== kill the counter\n");
  EXPECT(ray_actor_kill(counter.actor, true) == RAY_OK);
  wait_dtors(1);
  RAY_REF(i64) r = Counter_incr(counter, 1); /* accepted: the ref fails */
  int64_t dead;
  EXPECT(RAY_GET(r, RAY_TIMEOUT_INFINITE, &dead) == RAY_EACTORDIED);
  ray_error_t *err = NULL;
  char text[1024];
  EXPECT(ray_get_error(r.ref, &err) == RAY_OK && ray_error_code(err) == RAY_EACTORDIED);
  ray_error_format(err, text, sizeof text);
  printf("  destructor ran %d time(s); incr() after kill: %s", atomic_load(&g_dtors), text);
  ray_error_free(err);
  EXPECT(ray_ref_release(r.ref) == RAY_OK && ray_actor_release(counter.actor) == RAY_OK);
  /* The bump tasks held handle references until they finished: once those
   * are gone too, the handle is unknown and calls fail at once. */
  while ((r = Counter_get(counter)).ref.id != 0) ray_ref_release(r.ref), uv_sleep(1);
  printf("  after its last handle is released: %s\n", ray_err_name(RAY_STATUS(r)));
  EXPECT(RAY_STATUS(r) == RAY_ENOTFOUND && atomic_load(&g_dtors) == 1);

  /* 5. A named actor: found by name, checked to be a Counter. */
  printf("\n== a named actor: \"global_counter\"\n");
  ray_actor_opts_t opts;
  ray_actor_opts_init(&opts);
  opts.name = "global_counter";
  Counter named = RAY_CALL_OPTS(&opts, Counter_new, 0);
  Counter dup = RAY_CALL_OPTS(&opts, Counter_new, 0);
  printf("  creating a second \"global_counter\": %s\n", ray_err_name(RAY_STATUS(dup)));
  EXPECT(RAY_STATUS(named) == RAY_OK && RAY_STATUS(dup) == RAY_ENAMEEXISTS);
  opts.get_if_exists = true;
  dup = RAY_CALL_OPTS(&opts, Counter_new, 0);
  EXPECT(dup.actor.id == named.actor.id && ray_actor_release(dup.actor) == RAY_OK);
  EXPECT(take(Counter_incr(named, 1)) == 1);
  EXPECT(ray_actor_release(named.actor) == RAY_OK); /* named: kept */
  for (int round = 0; round < 3; round++) {
    Counter found = RAY_ACTOR_GET(Counter, "global_counter");
    int64_t v = take(Counter_incr(found, 10));
    printf("  RAY_ACTOR_GET -> actor %" PRIu64 ", incr(10) -> %" PRId64 "\n", found.actor.id, v);
    EXPECT(found.actor.id == named.actor.id && v == 1 + 10 * (round + 1));
    EXPECT(ray_actor_release(found.actor) == RAY_OK);
  }
  Counter found = RAY_ACTOR_GET(Counter, "global_counter");
  EXPECT(ray_actor_kill(found.actor, true) == RAY_OK && ray_actor_release(found.actor) == RAY_OK);
  found = RAY_ACTOR_GET(Counter, "global_counter");
  printf("  killed: RAY_ACTOR_GET -> %s\n", ray_err_name(RAY_STATUS(found)));
  EXPECT(RAY_STATUS(found) == RAY_ENOTFOUND);
  wait_dtors(2);
  opts.get_if_exists = false; /* the name is free again at once */
  named = RAY_CALL_OPTS(&opts, Counter_new, 0);
  EXPECT(take(Counter_get(named)) == 0 && ray_actor_release(named.actor) == RAY_OK);

  EXPECT(ray_shutdown() == RAY_OK);
  printf("\nshutdown: %d constructions, %d destructions (exactly one each)\n",
         atomic_load(&g_ctors), atomic_load(&g_dtors));
  EXPECT(atomic_load(&g_ctors) == 3 && atomic_load(&g_dtors) == 3);
  return 0;
}
