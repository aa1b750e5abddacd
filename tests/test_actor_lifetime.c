/* test_actor_lifetime.c - how actors end and come back, through the public
 * API: kill (also during the constructor and with a call waiting for its
 * argument), deaths racing submissions, handle release, detached and named
 * actors, killed named/detached actors being freed, restarts after an exit
 * or a fatal return, an exit without restarts, task retries of actor
 * calls, and kill with restarts.
 *
 * The classes, their state and the helpers are in actors_util.h; methods
 * run on worker threads and record failed checks into g_errs (AC), asserted
 * after each runtime is shut down. */
#define _POSIX_C_SOURCE 200809L
#include "actors_util.h"

/* ---- kill ---------------------------------------------------------------- */

static void test_kill(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.name = "victim";
  o.max_restarts = 3; /* no_restart = true ignores them */
  ray_arg_t init = ray_arg_i64(10);
  ray_actor_t a = mk(&k_counter, &init, 1, &o);
  assert_int_equal(take_i64(add(a, 5)), 15);
  ray_ref_t running = call0(a, "block");
  rt_latch_wait(&g_started, 1);
  ray_ref_t queued[4];
  for (int i = 0; i < 4; i++) queued[i] = add(a, 1);
  assert_rc(ray_actor_kill(a, true), 0); /* does not wait for the running call */
  /* The name is free at once, though a call still runs. */
  ray_actor_t found = {0};
  assert_rc(ray_get_actor("victim", &found), RAY_ENOTFOUND);
  ray_actor_t a2 = mk(&k_counter, &init, 1, &o);
  assert_true(a2.id != a.id);
  assert_rc(ray_get_actor("victim", &found), 0);
  assert_int_equal(found.id, a2.id);
  assert_rc(ray_actor_release(found), 0);
  /* Queued and future calls fail; the running one goes on. */
  for (int i = 0; i < 4; i++) take_fail(queued[i], RAY_EACTORDIED, "Counter.add");
  ray_ref_t later = add(a, 1);
  ray_error_t *e = expect_fail(later, RAY_EACTORDIED);
  assert_true(chain_has(ray_error_cause(e), RAY_EACTORDIED, "killed"));
  ray_error_free(e);
  assert_rc(ray_ref_release(later), 0);
  assert_true(is_pending(running));
  assert_int_equal(atomic_load(&g_dtors), 0); /* a call still runs */
  assert_rc(ray_actor_kill(a, true), 0);      /* killing again: 0 */
  assert_rc(ray_actor_kill(a, false), 0);
  rt_latch_signal(&g_go);
  assert_int_equal(take_i64(running), 15); /* finished, result ready */
  rt_latch_wait(&g_dtor_latch, 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
  assert_rc(ray_actor_kill(a, true), 0);
  /* The new actor of that name is unaffected. */
  assert_int_equal(take_i64(add(a2, 1)), 11);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(a2), 0);
  ray_actor_t nobody = {UINT64_MAX - 3};
  assert_rc(ray_actor_kill(nobody, true), RAY_ENOTFOUND);
  ray_actor_t zero = {0};
  assert_rc(ray_actor_kill(zero, true), RAY_ENOTFOUND);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 2); /* a2 at shutdown */
  assert_int_equal(atomic_load(&g_ctors), 2);
}

/* Killed while its constructor runs: the destructor still runs, once. */
static void test_kill_during_constructor(void **state) {
  (void)state;
  a_begin(2);
  atomic_store(&g_ctor_block, true);
  ray_actor_t a = mk_counter(1);
  rt_latch_wait(&g_ctor_started, 1);
  ray_ref_t r = add(a, 1);
  assert_rc(ray_actor_kill(a, true), 0);
  take_fail(r, RAY_EACTORDIED, "Counter.add");
  rt_latch_signal(&g_ctor_go);
  rt_latch_wait(&g_dtor_latch, 1);
  r = add(a, 1);
  take_fail(r, RAY_EACTORDIED, NULL);
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 1);
}

/* Queued calls waiting on an argument that never arrives, then killed. */
static void test_kill_call_waiting_for_arg(void **state) {
  (void)state;
  a_begin(1);
  ray_actor_t a = mk_counter(0);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  ray_ref_t r1 = call1(a, "add", ray_arg_ref(p));
  ray_ref_t r2 = add(a, 1);
  assert_rc(ray_actor_kill(a, true), 0);
  take_fail(r1, RAY_EACTORDIED, NULL);
  take_fail(r2, RAY_EACTORDIED, NULL);
  rt_latch_wait(&g_dtor_latch, 1);
  /* A second such call, whose argument arrives after the kill. */
  ray_ref_t p2;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p2), 0);
  ray_ref_t r3 = call1(a, "add", ray_arg_ref(p2));
  char enc[16];
  size_t n = rt_encode_i64(1, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p2, enc, n), 0);
  take_fail(r3, RAY_EACTORDIED, NULL);
  assert_rc(ray_ref_release(p2), 0);
  assert_rc(ray_actor_release(a), 0);
  a_end(); /* p never arrives: shutdown fails it */
  assert_int_equal(atomic_load(&g_dtors), 1);
}

/* Calls submitted while the actor ends itself on a worker, and kills from
 * another host thread while calls are being submitted: every call after the
 * end fails with RAY_EACTORDIED, nothing is finished twice. */
typedef struct {
  ray_actor_t actor;
  rt_latch_t *ready;
  int rc;
} killer_arg_t;

static void killer_thread(void *p) {
  killer_arg_t *k = p;
  rt_latch_wait(k->ready, 1);
  k->rc = ray_actor_kill(k->actor, true);
}

static void test_death_races_submission(void **state) {
  (void)state;
  a_begin(2);
  int iters = rt_iters(300, 30);
  enum { CALLS = 16 };
  for (int i = 0; i < iters; i++) {
    ray_actor_t a = mk_counter(0);
    ray_ref_t d = call0(a, "die");
    ray_ref_t q[CALLS];
    for (int j = 0; j < CALLS; j++) q[j] = add(a, 1);
    take_fail(d, RAY_EACTORDIED, "Counter.die");
    for (int j = 0; j < CALLS; j++) take_fail(q[j], RAY_EACTORDIED, "Counter.add");
    assert_rc(ray_actor_release(a), 0);
  }
  for (int i = 0; i < iters; i++) {
    ray_actor_t a = mk_counter(0);
    rt_latch_t go;
    rt_latch_init(&go);
    killer_arg_t k = {a, &go, 1};
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, killer_thread, &k), 0);
    ray_ref_t q[CALLS];
    for (int j = 0; j < CALLS; j++) {
      if (j == CALLS / 4) rt_latch_signal(&go);
      q[j] = add(a, 1);
    }
    assert_int_equal(uv_thread_join(&th), 0);
    assert_rc(k.rc, 0);
    /* A prefix ran (values 1, 2, ...); everything after it failed. */
    int64_t expect = 1;
    bool dead = false;
    for (int j = 0; j < CALLS; j++) {
      ray_buf_t b;
      int rc = ray_get(q[j], RAY_TIMEOUT_INFINITE, &b);
      if (rc == 0) {
        ray_buf_release(&b);
        assert_false(dead);
        assert_int_equal(take_i64(q[j]), expect++);
      } else {
        assert_rc(rc, RAY_EACTORDIED);
        dead = true;
        assert_rc(ray_ref_release(q[j]), 0);
      }
    }
    rt_latch_destroy(&go);
    assert_rc(ray_actor_release(a), 0);
  }
  a_end();
  /* Once per successful construction (a kill may come before it). */
  assert_int_equal(atomic_load(&g_dtors), atomic_load(&g_ctors));
  assert_true(atomic_load(&g_ctors) >= iters);
}

/* ---- handles -------------------------------------------------------------- */

static void test_release(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_counter(0);
  /* Counting: two retains, three releases. */
  assert_rc(ray_actor_retain(a), 0);
  assert_rc(ray_actor_retain(a), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_int_equal(take_i64(add(a, 1)), 1);
  assert_int_equal(atomic_load(&g_dtors), 0);
  /* The last release with calls queued: they run, then the destructor. */
  ray_ref_t blk = call0(a, "block");
  rt_latch_wait(&g_started, 1);
  ray_ref_t q[5];
  for (int i = 0; i < 5; i++) q[i] = add(a, 1);
  assert_rc(ray_actor_release(a), 0);
  ray_ref_t r;
  ray_arg_t arg = ray_arg_i64(1);
  assert_rc(ray_actor_call(a, "add", &arg, 1, NULL, &r), RAY_ENOTFOUND);
  assert_rc(ray_actor_call_id(a, 0, &arg, 1, NULL, &r), RAY_ENOTFOUND);
  assert_rc(ray_actor_retain(a), RAY_ENOTFOUND);
  assert_rc(ray_actor_release(a), RAY_ENOTFOUND);
  assert_rc(ray_actor_kill(a, true), RAY_ENOTFOUND);
  ray_arg_t pass = ray_arg_actor(a);
  assert_rc(ray_actor_create(&k_counter, &pass, 1, NULL, &(ray_actor_t){0}), RAY_ENOTFOUND);
  assert_int_equal(atomic_load(&g_dtors), 0); /* a call still runs */
  rt_latch_signal(&g_go);
  assert_int_equal(take_i64(blk), 1);
  for (int i = 0; i < 5; i++) assert_int_equal(take_i64(q[i]), 2 + i);
  rt_latch_wait(&g_dtor_latch, 1);
  assert_int_equal(atomic_load(&g_dtors), 1);

  /* Released while the constructor runs: the queued call still runs. */
  atomic_store(&g_ctor_block, true);
  ray_actor_t b = mk_counter(50);
  rt_latch_wait(&g_ctor_started, 1);
  r = add(b, 1);
  assert_rc(ray_actor_release(b), 0);
  assert_rc(ray_actor_call(b, "get", NULL, 0, NULL, &r), RAY_ENOTFOUND);
  rt_latch_signal(&g_ctor_go);
  assert_int_equal(take_i64(r), 51);
  rt_latch_wait(&g_dtor_latch, 2);

  /* The same, many times, without a latch: the constructor finishing and
   * the call finishing race on two workers. */
  atomic_store(&g_ctor_block, false);
  int iters = rt_iters(300, 30);
  for (int i = 0; i < iters; i++) {
    ray_actor_t x = mk_counter(i);
    r = add(x, 1);
    assert_rc(ray_actor_release(x), 0);
    assert_int_equal(take_i64(r), i + 1);
  }
  rt_latch_wait(&g_dtor_latch, 2 + iters);

  /* The only handle left is held by the actor's own queued call. */
  reset_gate();
  ray_actor_t c = mk_counter(0);
  ray_ref_t blk2 = call0(c, "block");
  rt_latch_wait(&g_started, 1);
  ray_arg_t self = ray_arg_actor(c);
  ray_ref_t ar;
  assert_rc(ray_actor_call(c, "actor_ref", &self, 1, NULL, &ar), 0);
  assert_rc(ray_actor_release(c), 0);
  assert_int_equal(atomic_load(&g_dtors), 2 + iters);
  rt_latch_signal(&g_go);
  assert_int_equal(take_i64(blk2), 0);
  (void)take_i64(ar); /* its value: test_ctx_arg_ref_of_actor */
  rt_latch_wait(&g_dtor_latch, 3 + iters);
  assert_int_equal(atomic_load(&g_dtors), 3 + iters);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 3 + iters);
}

static void test_detached(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.detached = true;
  /* Unnamed: survives the release of its last handle until killed. */
  ray_actor_t a = mk(&k_counter, NULL, 0, &o);
  ray_ref_t r = add(a, 3);
  assert_rc(ray_actor_release(a), 0);
  assert_int_equal(take_i64(r), 3);
  assert_int_equal(atomic_load(&g_dtors), 0);
  assert_int_equal(take_i64(add(a, 1)), 4); /* the id still works: it was kept */
  assert_rc(ray_actor_kill(a, true), 0);
  rt_latch_wait(&g_dtor_latch, 1);
  /* Named and detached: found again by name after the release. */
  o.name = "keeper";
  ray_actor_t b = mk(&k_counter, NULL, 0, &o);
  assert_int_equal(take_i64(add(b, 7)), 7);
  assert_rc(ray_actor_release(b), 0);
  ray_actor_t b2 = {0};
  assert_rc(ray_get_actor("keeper", &b2), 0);
  assert_int_equal(b2.id, b.id);
  assert_int_equal(take_i64(add(b2, 1)), 8);
  assert_rc(ray_actor_release(b2), 0);
  /* Detached, never released: destroyed at shutdown. */
  o.name = NULL;
  ray_actor_t c = mk(&k_counter, NULL, 0, &o);
  assert_int_equal(take_i64(add(c, 1)), 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 3);
}

static void test_named(void **state) {
  (void)state;
  a_begin(2);
  char name[16];
  snprintf(name, sizeof name, "%s", "alpha");
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.name = name;
  ray_arg_t init = ray_arg_i64(1);
  ray_actor_t a = mk(&k_counter, &init, 1, &o);
  memset(name, 'x', 5); /* the name was copied */
  ray_actor_t g = {0};
  assert_rc(ray_get_actor("alpha", &g), 0);
  assert_int_equal(g.id, a.id);
  assert_rc(ray_get_actor("xxxxx", &g), RAY_ENOTFOUND);
  assert_rc(ray_get_actor("", &g), RAY_ENOTFOUND);
  assert_rc(ray_get_actor(NULL, &g), RAY_EINVAL);
  assert_rc(ray_get_actor("alpha", NULL), RAY_EINVAL);
  /* Duplicate: refused, or the existing one with get_if_exists. */
  o.name = "alpha";
  ray_actor_t dup = {4242};
  assert_rc(ray_actor_create(&k_counter, &init, 1, &o, &dup), RAY_ENAMEEXISTS);
  assert_int_equal(dup.id, 4242);
  o.get_if_exists = true;
  ray_actor_t same = mk(&k_counter, &init, 1, &o);
  assert_int_equal(same.id, a.id);
  /* get_if_exists with a free name creates. */
  o.name = "beta";
  ray_actor_t beta = mk(&k_counter, &init, 1, &o);
  assert_true(beta.id != a.id);
  /* One state behind every handle. */
  assert_int_equal(take_i64(add(a, 1)), 2);
  assert_int_equal(take_i64(add(g, 1)), 3);
  assert_int_equal(take_i64(add(same, 1)), 4);
  /* Named actors are kept when every handle is released. */
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(g), 0);
  assert_rc(ray_actor_release(same), 0);
  assert_rc(ray_get_actor("alpha", &g), 0);
  assert_int_equal(g.id, a.id);
  assert_int_equal(take_i64(add(g, 1)), 5);
  assert_int_equal(atomic_load(&g_dtors), 0);
  /* Kill frees the name; a new actor takes it. */
  assert_rc(ray_actor_kill(g, true), 0);
  assert_rc(ray_get_actor("alpha", &g), RAY_ENOTFOUND);
  o.name = "alpha";
  o.get_if_exists = false;
  ray_actor_t a2 = mk(&k_counter, &init, 1, &o);
  assert_true(a2.id != a.id);
  assert_int_equal(take_i64(add(a2, 1)), 2);
  ray_ref_t r;
  ray_arg_t one = ray_arg_i64(1);
  assert_rc(ray_actor_call(a, "add", &one, 1, NULL, &r), 0); /* old id: dead */
  take_fail(r, RAY_EACTORDIED, NULL);
  rt_latch_wait(&g_dtor_latch, 1);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(a2), 0);
  assert_int_equal(take_i64(add(beta, 1)), 2);
  assert_rc(ray_actor_release(beta), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 3); /* get_if_exists made no second alpha */
  assert_int_equal(atomic_load(&g_dtors), 3);
}

/* A killed named (or detached) actor whose handles are all released is
 * freed, not kept until shutdown: creating and killing them in a loop must
 * not grow the runtime. */
static void test_killed_kept_actors_are_freed(void **state) {
  (void)state;
  a_begin(2);
  int iters = rt_iters(200, 20);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  for (int i = 0; i < iters; i++) {
    o.name = (i % 2) ? "again" : NULL;
    o.detached = (i % 2) == 0;
    ray_actor_t a = mk(&k_counter, NULL, 0, &o);
    assert_int_equal(take_i64(add(a, 1)), 1); /* constructed, idle */
    assert_rc(ray_actor_kill(a, true), 0);
    assert_rc(ray_actor_release(a), 0);
  }
  rt_latch_wait(&g_dtor_latch, iters);
  /* A few may still be held by their last call finishing on a worker. */
  uint64_t alive = rt_stats().actors_alive;
  if (alive >= (uint64_t)iters / 2)
    print_error("%llu of %d killed and released actors are still allocated\n",
                (unsigned long long)alive, iters);
  a_end();
  assert_true(alive < (uint64_t)iters / 2);
}

/* ---- restarts ------------------------------------------------------------- */

/* Counter(10, ref 5, stored bytes) with the given restart options. */
static ray_actor_t mk_restartable(uint32_t restarts, uint32_t retries) {
  ray_ref_t extra;
  assert_rc(ray_put_i64(5, &extra), 0);
  unsigned char *big = malloc(CTR_BYTES);
  assert_non_null(big);
  rt_fill(big, CTR_BYTES, CTR_SEED);
  ray_arg_t args[3] = {ray_arg_i64(10), ray_arg_ref(extra), ray_arg_bytes(big, CTR_BYTES)};
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.max_restarts = restarts;
  o.max_task_retries = retries;
  ray_actor_t a = mk(&k_counter, args, 3, &o);
  free(big);                            /* copied at creation */
  assert_rc(ray_ref_release(extra), 0); /* the actor keeps its own */
  return a;
}

static void check_restart(const char *fatal_method) {
  a_begin(2);
  ray_actor_t a = mk_restartable(1, 0);
  assert_int_equal(take_i64(add(a, 100)), 115);
  /* Everything queues behind a blocked call, then the fatal one. */
  ray_ref_t blk = call0(a, "block");
  rt_latch_wait(&g_started, 1);
  ray_ref_t die = call0(a, fatal_method);
  ray_ref_t q1 = add(a, 1);
  ray_ref_t q2 = add(a, 2);
  rt_latch_signal(&g_go);
  assert_int_equal(take_i64(blk), 115);
  char origin[64];
  snprintf(origin, sizeof origin, "Counter.%s", fatal_method);
  take_fail(die, RAY_EACTORDIED, origin);
  /* Restarted with the original arguments: the state is reset. */
  assert_int_equal(take_i64(q1), 16);
  assert_int_equal(take_i64(q2), 18);
  assert_int_equal(atomic_load(&g_ctors), 2);
  assert_int_equal(atomic_load(&g_dtors), 1);
  /* The second end is final. */
  die = call0(a, fatal_method);
  ray_ref_t q3 = add(a, 1);
  take_fail(die, RAY_EACTORDIED, origin);
  take_fail(q3, RAY_EACTORDIED, "Counter.add");
  rt_latch_wait(&g_dtor_latch, 2);
  ray_ref_t q4 = add(a, 1);
  take_fail(q4, RAY_EACTORDIED, NULL);
  assert_rc(ray_actor_kill(a, false), 0);
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 2);
  assert_int_equal(atomic_load(&g_dtors), 2);
}

static void test_restart_exit(void **state) {
  (void)state;
  check_restart("die");
}

static void test_restart_fatal_return(void **state) {
  (void)state;
  check_restart("die_rc");
}

static void test_exit_without_restarts(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_counter(3);
  ray_ref_t d = call0(a, "die");
  ray_ref_t q = add(a, 1);
  take_fail(d, RAY_EACTORDIED, "Counter.die");
  ray_error_t *e = expect_fail(q, RAY_EACTORDIED);
  assert_true(chain_has(ray_error_cause(e), RAY_EACTORDIED, "exited"));
  ray_error_free(e);
  assert_rc(ray_ref_release(q), 0);
  rt_latch_wait(&g_dtor_latch, 1);
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
}

/* ray_actor_exit_no_restart: an intended exit never restarts, whatever
 * max_restarts says, and retries do not bring its call back. */
static void test_exit_no_restart(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_restartable(5, 5);
  assert_int_equal(take_i64(call0(a, "restarts")), 0);
  assert_int_equal(atomic_load(&g_ctor_restarts), 0);
  ray_ref_t d = call0(a, "exit_final");
  ray_ref_t q = add(a, 1);
  take_fail(d, RAY_EACTORDIED, "Counter.exit_final");
  ray_error_t *e = expect_fail(q, RAY_EACTORDIED);
  assert_true(chain_has(ray_error_cause(e), RAY_EACTORDIED, "exited"));
  ray_error_free(e);
  assert_rc(ray_ref_release(q), 0);
  rt_latch_wait(&g_dtor_latch, 1);
  take_fail(add(a, 1), RAY_EACTORDIED, NULL);
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
}

/* ray_ctx_actor_restarts counts restarts, by exit and by kill, in the
 * constructor and in methods. */
static void test_restart_count(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_restartable(2, 0);
  assert_int_equal(take_i64(call0(a, "restarts")), 0);
  take_fail(call0(a, "die"), RAY_EACTORDIED, "Counter.die");
  assert_int_equal(take_i64(call0(a, "restarts")), 1);
  assert_int_equal(atomic_load(&g_ctor_restarts), 1);
  assert_rc(ray_actor_kill(a, false), 0);
  assert_int_equal(take_i64(call0(a, "restarts")), 2);
  assert_int_equal(atomic_load(&g_ctor_restarts), 2);
  assert_int_equal(atomic_load(&g_ctors), 3);
  /* Outside an actor's task. */
  uint32_t n;
  assert_rc(ray_ctx_actor_restarts(NULL, &n), RAY_EINVAL);
  assert_rc(ray_actor_exit_no_restart(NULL), RAY_EINVAL);
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 3);
}

static void test_task_retries(void **state) {
  (void)state;
  a_begin(2);
  /* Retried after the restart, first in line. */
  ray_actor_t a = mk_restartable(1, 1);
  assert_int_equal(take_i64(add(a, 1)), 16);
  ray_ref_t f = call0(a, "flaky");
  ray_ref_t q = add(a, 2);
  assert_int_equal(take_i64(f), 15); /* the second attempt saw the new state */
  assert_int_equal(take_i64(q), 17);
  assert_int_equal(atomic_load(&g_flaky), 2);
  assert_int_equal(atomic_load(&g_ctors), 2);
  assert_int_equal(atomic_load(&g_dtors), 1);
  assert_rc(ray_actor_release(a), 0);
  rt_latch_wait(&g_dtor_latch, 2);

  /* Restarts but no retries: the call fails, the actor goes on. */
  atomic_store(&g_flaky, 0);
  ray_actor_t b = mk_restartable(1, 0);
  f = call0(b, "flaky");
  q = call0(b, "get");
  take_fail(f, RAY_EACTORDIED, "Counter.flaky");
  assert_int_equal(take_i64(q), 15);
  assert_int_equal(atomic_load(&g_flaky), 1);
  assert_rc(ray_actor_release(b), 0);
  rt_latch_wait(&g_dtor_latch, 4);

  /* Retries outlast the restarts: dead for good after the second exit. */
  atomic_store(&g_flaky, 0);
  atomic_store(&g_flaky_exits, 100);
  ray_actor_t c = mk_restartable(1, 5);
  f = call0(c, "flaky");
  q = call0(c, "get");
  take_fail(f, RAY_EACTORDIED, NULL);
  take_fail(q, RAY_EACTORDIED, NULL);
  assert_int_equal(atomic_load(&g_flaky), 2);
  rt_latch_wait(&g_dtor_latch, 6);
  assert_rc(ray_actor_release(c), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 6);
  assert_int_equal(atomic_load(&g_dtors), 6);
}

static void test_kill_restart(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_restartable(1, 0);
  assert_int_equal(take_i64(add(a, 100)), 115);
  /* With a call running: it finishes; the queued one runs after the restart. */
  ray_ref_t blk = call0(a, "block");
  rt_latch_wait(&g_started, 1);
  ray_ref_t q = add(a, 1);
  assert_rc(ray_actor_kill(a, false), 0);
  assert_int_equal(atomic_load(&g_dtors), 0);
  rt_latch_signal(&g_go);
  assert_int_equal(take_i64(blk), 115);
  assert_int_equal(take_i64(q), 16);
  assert_int_equal(atomic_load(&g_ctors), 2);
  assert_int_equal(atomic_load(&g_dtors), 1);
  /* No restart left: kill(no_restart = false) kills. */
  assert_rc(ray_actor_kill(a, false), 0);
  take_fail(add(a, 1), RAY_EACTORDIED, NULL);
  rt_latch_wait(&g_dtor_latch, 2);
  assert_rc(ray_actor_release(a), 0);
  /* no_restart = true ignores restarts left. */
  ray_actor_t b = mk_restartable(3, 0);
  assert_int_equal(take_i64(call0(b, "get")), 15);
  assert_rc(ray_actor_kill(b, true), 0);
  take_fail(call0(b, "get"), RAY_EACTORDIED, NULL);
  rt_latch_wait(&g_dtor_latch, 3);
  assert_rc(ray_actor_release(b), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 3);
  assert_int_equal(atomic_load(&g_dtors), 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kill),
      cmocka_unit_test(test_kill_during_constructor),
      cmocka_unit_test(test_kill_call_waiting_for_arg),
      cmocka_unit_test(test_death_races_submission),
      cmocka_unit_test(test_release),
      cmocka_unit_test(test_detached),
      cmocka_unit_test(test_named),
      cmocka_unit_test(test_killed_kept_actors_are_freed),
      cmocka_unit_test(test_restart_exit),
      cmocka_unit_test(test_restart_fatal_return),
      cmocka_unit_test(test_exit_without_restarts),
      cmocka_unit_test(test_exit_no_restart),
      cmocka_unit_test(test_restart_count),
      cmocka_unit_test(test_task_retries),
      cmocka_unit_test(test_kill_restart),
  };
  rt_main_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
