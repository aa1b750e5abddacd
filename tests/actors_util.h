/* actors_util.h - what the actor test programs share: test_actors.c,
 * test_actor_lifetime.c and test_actor_interop.c.
 *
 * The actor classes the tests create (Counter, Broken, Order, Conc, Relay),
 * a task that calls an actor, the state their methods record into (reset by
 * a_begin, checked by a_end) and small helpers. Methods run on worker
 * threads, where cmocka must not be used: they record failed checks into
 * g_errs (AC) and every test asserts it after its runtime is shut down.
 * Calls and constructors that must stay put while the main thread looks at
 * something wait on a latch; nothing sleeps. Everything is static
 * (inline): each program has its own copy of the state. */
#ifndef RAY_ACTORS_UTIL_H
#define RAY_ACTORS_UTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <sched.h>

#include "test_util.h"

/* ---- shared state --------------------------------------------------------- */

static rt_errs_t g_errs;                     /* checks made on workers */
static atomic_int g_ctors;                   /* constructor runs (any class) */
static atomic_int g_dtors;                   /* Counter destructor runs */
static atomic_int g_relay_dtors;             /* Relay destructor runs */
static atomic_int g_runs;                    /* method runs counted by a test */
static atomic_int g_live;                    /* Conc.work calls running now */
static atomic_int g_max_live;                /* the most ever running at once */
static atomic_int g_ticks;                   /* Counter.tick calls */
static atomic_int g_flaky;                   /* Counter.flaky attempts */
static atomic_int g_flaky_exits;             /* attempts of flaky that end the actor */
static atomic_int g_fails;                   /* Counter.fail runs */
static atomic_bool g_ctor_block;             /* constructors wait for g_ctor_go */
static atomic_uint_fast64_t g_ctor_self;     /* ray_ctx_actor in the constructor */
static atomic_uint_fast64_t g_ctor_restarts; /* ray_ctx_actor_restarts in the constructor */
static atomic_uintptr_t g_produce_ptr;       /* Relay.produce's buffer */
static atomic_uintptr_t g_consume_ptr;       /* the bytes Relay.consume read */
static atomic_uint_fast64_t g_expect_actor;  /* the handle Counter.args expects */
static rt_latch_t g_started;                 /* Counter.block / Conc.work(1): started */
static rt_latch_t g_go;                      /* ... and wait for this */
static rt_latch_t g_ctor_started;            /* a blocking constructor started */
static rt_latch_t g_ctor_go;                 /* ... and waits for this */
static rt_latch_t g_dtor_latch;              /* signalled by each Counter destructor */
static ray_function_t g_task_add;            /* task_add, registered by the tests that use it */

/* On a worker: record a failed check. */
#define AC(cond, value) RT_CHECK(&g_errs, (cond), (value))

static const uint32_t T_I64_2[] = {RAY_TYPE_I64, RAY_TYPE_I64};
#define T_USER7 (RAY_TYPE_USER + 7)
static const uint32_t T_MIXED[] = {RAY_TYPE_I64,   RAY_TYPE_F64,     RAY_TYPE_STR,
                                   RAY_TYPE_BYTES, RAY_TYPE_MSGPACK, T_USER7};

static inline void a_reset(void) {
  rt_errs_init(&g_errs);
  atomic_store(&g_ctors, 0);
  atomic_store(&g_dtors, 0);
  atomic_store(&g_relay_dtors, 0);
  atomic_store(&g_runs, 0);
  atomic_store(&g_live, 0);
  atomic_store(&g_max_live, 0);
  atomic_store(&g_ticks, 0);
  atomic_store(&g_flaky, 0);
  atomic_store(&g_flaky_exits, 1);
  atomic_store(&g_fails, 0);
  atomic_store(&rt_frees, 0);
  atomic_store(&g_ctor_block, false);
  atomic_store(&g_ctor_self, 0);
  atomic_store(&g_ctor_restarts, 99);
  atomic_store(&g_produce_ptr, 0);
  atomic_store(&g_consume_ptr, 0);
  atomic_store(&g_expect_actor, 0);
  rt_latch_init(&g_started);
  rt_latch_init(&g_go);
  rt_latch_init(&g_ctor_started);
  rt_latch_init(&g_ctor_go);
  rt_latch_init(&g_dtor_latch);
  g_task_add.id = 0;
}

static inline void a_begin(unsigned workers) {
  /* A test that failed half-way may have left its runtime up: shut it down
   * before the counters are reset, so its destructors do not count here. */
  if (ray_is_initialized()) (void)ray_shutdown();
  a_reset();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = workers;
  rt_begin_cfg(&cfg);
}

static inline void a_latches_destroy(void) {
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
  rt_latch_destroy(&g_ctor_started);
  rt_latch_destroy(&g_ctor_go);
  rt_latch_destroy(&g_dtor_latch);
}

/* Shut down cleanly (every call has finished), then check what workers saw. */
static inline void a_end(void) {
  rt_end();
  rt_errs_assert(&g_errs);
  a_latches_destroy();
}

/* Make g_started / g_go fresh for another round. No thread may be waiting
 * on them (every blocking call of the previous round has returned). */
static inline void reset_gate(void) {
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
  rt_latch_init(&g_started);
  rt_latch_init(&g_go);
}

/* ---- class Counter -------------------------------------------------------- */
/* Counter(initial = 0 [, extra: i64 added to initial [, bytes: 4096 bytes of
 * pattern 9]]). Its state is reset by a restart (the constructor runs again
 * with the original arguments). */

typedef struct {
  int64_t value;
} counter_t;

enum { CTR_BYTES = 4096, CTR_SEED = 9 };

static inline int counter_ctor(ray_task_ctx_t *ctx, void **state) {
  atomic_fetch_add(&g_ctors, 1);
  AC(ray_actor_exit(ctx) == RAY_EINVAL, 0); /* not in a method */
  uint32_t idx;
  AC(ray_ctx_method_index(ctx, &idx) == RAY_EINVAL, 0);
  ray_actor_t self = {0};
  int rc = ray_ctx_actor(ctx, &self);
  AC(rc == 0 && self.id != 0, rc);
  atomic_store(&g_ctor_self, self.id);
  uint32_t restarts = 99;
  AC(ray_ctx_actor_restarts(ctx, &restarts) == 0, 0);
  atomic_store(&g_ctor_restarts, restarts);
  if (atomic_load(&g_ctor_block)) {
    rt_latch_signal(&g_ctor_started);
    rt_latch_wait(&g_ctor_go, 1);
  }
  int64_t init = 0, extra = 0;
  size_t n = ray_ctx_nargs(ctx);
  if (n >= 1 && (rc = ray_ctx_arg_i64(ctx, 0, &init)) != 0)
    return ray_fail(ctx, rc, "Counter: bad initial value");
  if (n >= 2 && (rc = ray_ctx_arg_i64(ctx, 1, &extra)) != 0)
    return ray_fail(ctx, rc, "Counter: bad extra value");
  if (n >= 3) {
    const void *d = NULL;
    size_t sz = 0;
    rc = ray_ctx_arg_bytes(ctx, 2, &d, &sz);
    AC(rc == 0 && sz == CTR_BYTES && rt_check(d, sz, CTR_SEED), rc);
  }
  counter_t *c = malloc(sizeof *c);
  if (c == NULL) return RAY_ENOMEM;
  c->value = init + extra;
  *state = c;
  return 0;
}

static inline void counter_dtor(void *state) {
  AC(state != NULL, 0);
  free(state);
  atomic_fetch_add(&g_dtors, 1);
  rt_latch_signal(&g_dtor_latch);
}

/* add(x: i64) -> value after adding. */
static inline int m_add(ray_task_ctx_t *ctx, void *state) {
  counter_t *c = state;
  int64_t x = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != 0) return ray_fail(ctx, rc, "add: the argument is not an i64");
  c->value += x;
  return ray_return_i64(ctx, 0, c->value);
}

static inline int m_get(ray_task_ctx_t *ctx, void *state) {
  return ray_return_i64(ctx, 0, ((counter_t *)state)->value);
}

/* Signal g_started, wait for g_go, return the value. */
static inline int m_block(ray_task_ctx_t *ctx, void *state) {
  atomic_fetch_add(&g_runs, 1);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  return ray_return_i64(ctx, 0, ((counter_t *)state)->value);
}

static inline int m_die(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  int rc = ray_actor_exit(ctx);
  AC(rc == 0, rc);
  AC(ray_return_i64(ctx, 0, 1) == 0, 0); /* discarded: the call fails */
  return 0;
}

static inline int m_die_rc(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  AC(ray_return_i64(ctx, 0, 1) == 0, 0);
  return RAY_EACTORDIED;
}

/* An intended exit: for good, whatever restarts are left (a later
 * ray_actor_exit does not undo it). */
static inline int m_exit_final(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  AC(ray_actor_exit_no_restart(NULL) == RAY_EINVAL, 0);
  int rc = ray_actor_exit_no_restart(ctx);
  AC(rc == 0, rc);
  AC(ray_actor_exit(ctx) == 0, 0);
  AC(ray_return_i64(ctx, 0, 1) == 0, 0); /* discarded: the call fails */
  return 0;
}

static const ray_actor_class_t k_counter;

/* The actor's restart count. */
static inline int m_restarts(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  uint32_t n = 99;
  AC(ray_ctx_actor_restarts(ctx, NULL) == RAY_EINVAL, 0);
  AC(ray_ctx_actor_restarts(NULL, &n) == RAY_EINVAL, 0);
  int rc = ray_ctx_actor_restarts(ctx, &n);
  AC(rc == 0, rc);
  /* Its own index, as ray_actor_method gives it. */
  uint32_t idx = 0, want = 1;
  AC(ray_ctx_method_index(ctx, NULL) == RAY_EINVAL, 0);
  AC(ray_ctx_method_index(NULL, &idx) == RAY_EINVAL, 0);
  AC(ray_ctx_method_index(ctx, &idx) == 0, 0);
  AC(ray_actor_method(&k_counter, "restarts", &want) == 0 && idx == want, 0);
  return ray_return_i64(ctx, 0, n);
}

/* The first g_flaky_exits attempts end the actor; later ones return the value. */
static inline int m_flaky(ray_task_ctx_t *ctx, void *state) {
  int attempt = atomic_fetch_add(&g_flaky, 1) + 1;
  if (attempt <= atomic_load(&g_flaky_exits)) {
    AC(ray_actor_exit(ctx) == 0, 0);
    return 0;
  }
  return ray_return_i64(ctx, 0, ((counter_t *)state)->value);
}

static inline int m_self(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  ray_actor_t self = {0};
  int rc = ray_ctx_actor(ctx, &self);
  AC(rc == 0, rc);
  AC(ray_ctx_actor(ctx, NULL) == RAY_EINVAL, 0);
  return ray_return_i64(ctx, 0, (int64_t)self.id);
}

static inline int m_fail(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  atomic_fetch_add(&g_fails, 1);
  return ray_fail(ctx, RAY_ETASK, "bad %d", 7);
}

/* Six results of six types. */
static inline int m_types(ray_task_ctx_t *ctx, void *state) {
  counter_t *c = state;
  int rc = 0;
  rc |= ray_return_i64(ctx, 0, c->value);
  rc |= ray_return_f64(ctx, 1, 2.5);
  rc |= ray_return_str(ctx, 2, "counter");
  rc |= ray_return_bytes(ctx, 3, "raw", 3);
  msgpack_object o;
  memset(&o, 0, sizeof o);
  o.type = MSGPACK_OBJECT_BOOLEAN;
  o.via.boolean = true;
  rc |= ray_return_msgpack(ctx, 4, &o);
  rc |= ray_return_bytes(ctx, 5, "user", 4);
  AC(rc == 0, rc);
  /* A slot of another type refuses a typed setter. */
  AC(ray_return_i64(ctx, 2, 1) == RAY_ETYPE, 0);
  return 0;
}

/* args(i64, str, actor): the accessors with right and wrong types. */
static inline int m_args(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  int64_t i = 0;
  const char *s = NULL;
  size_t len = 0;
  const void *d = NULL;
  size_t sz = 0;
  double f = 0;
  ray_actor_t a = {0};
  ray_ref_t r = RAY_REF_NIL;
  AC(ray_ctx_nargs(ctx) == 3, ray_ctx_nargs(ctx));
  AC(ray_ctx_arg_type(ctx, 0) == RAY_TYPE_I64, ray_ctx_arg_type(ctx, 0));
  AC(ray_ctx_arg_type(ctx, 1) == RAY_TYPE_STR, ray_ctx_arg_type(ctx, 1));
  AC(ray_ctx_arg_type(ctx, 2) == RAY_TYPE_ACTOR, ray_ctx_arg_type(ctx, 2));
  AC(ray_ctx_arg_type(ctx, 3) == 0, ray_ctx_arg_type(ctx, 3));
  int rc = ray_ctx_arg_i64(ctx, 0, &i);
  AC(rc == 0 && i == 7, rc);
  rc = ray_ctx_arg_str(ctx, 1, &s, &len);
  AC(rc == 0 && len == 1 && s[0] == 's', rc);
  rc = ray_ctx_arg_actor(ctx, 2, &a);
  AC(rc == 0 && a.id == atomic_load(&g_expect_actor), rc);
  /* Wrong types. */
  AC(ray_ctx_arg_i64(ctx, 1, &i) == RAY_ETYPE, 0);
  AC(ray_ctx_arg_str(ctx, 0, &s, &len) == RAY_ETYPE, 0);
  AC(ray_ctx_arg_f64(ctx, 0, &f) == RAY_ETYPE, 0);
  AC(ray_ctx_arg_bytes(ctx, 1, &d, &sz) == RAY_ETYPE, 0);
  AC(ray_ctx_arg_actor(ctx, 0, &a) == RAY_ETYPE, 0);
  AC(ray_ctx_arg_actor(ctx, 1, &a) == RAY_ETYPE, 0);
  AC(ray_ctx_arg_i64(ctx, 2, &i) == RAY_ETYPE, 0);
  AC(ray_ctx_arg_bytes(ctx, 2, &d, &sz) == RAY_ETYPE, 0);
  AC(ray_ctx_arg_str(ctx, 2, &s, &len) == RAY_ETYPE, 0);
  /* Out of range and NULL outputs. */
  AC(ray_ctx_arg_actor(ctx, 3, &a) == RAY_EINVAL, 0);
  AC(ray_ctx_arg_actor(ctx, 2, NULL) == RAY_EINVAL, 0);
  AC(ray_ctx_arg_actor(NULL, 2, &a) == RAY_EINVAL, 0);
  AC(ray_ctx_arg_i64(ctx, 3, &i) == RAY_EINVAL, 0);
  /* Value arguments have no ref. */
  AC(ray_ctx_arg_ref(ctx, 0, &r) == RAY_ETYPE, 0);
  return ray_return_i64(ctx, 0, 1);
}

/* args_actor_ref(actor): an actor argument is not a ref either. */
static inline int m_actor_ref(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  ray_ref_t r = RAY_REF_NIL;
  int rc = ray_ctx_arg_ref(ctx, 0, &r);
  return ray_return_i64(ctx, 0, rc);
}

static inline int m_tick(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, atomic_fetch_add(&g_ticks, 1) + 1);
}

static inline int m_ticks(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, atomic_load(&g_ticks));
}

static const ray_method_def_t k_counter_methods[] = {
    {"add", m_add, rt_t_i64, 1},
    {"get", m_get, rt_t_i64, 1},
    {"block", m_block, rt_t_i64, 1},
    {"die", m_die, rt_t_i64, 1},
    {"die_rc", m_die_rc, rt_t_i64, 1},
    {"flaky", m_flaky, rt_t_i64, 1},
    {"self", m_self, rt_t_i64, 1},
    {"fail", m_fail, rt_t_i64, 1},
    {"types", m_types, T_MIXED, 6},
    {"args", m_args, rt_t_i64, 1},
    {"noop", rt_fn_zero, rt_t_i64, 1},
    {"tick", m_tick, rt_t_i64, 1},
    {"ticks", m_ticks, rt_t_i64, 1},
    {"actor_ref", m_actor_ref, rt_t_i64, 1},
    {"exit_final", m_exit_final, rt_t_i64, 1},
    {"restarts", m_restarts, rt_t_i64, 1},
};
#define N_COUNTER_METHODS (sizeof k_counter_methods / sizeof k_counter_methods[0])

static const ray_actor_class_t k_counter = {"Counter", counter_ctor, counter_dtor,
                                            k_counter_methods, N_COUNTER_METHODS};

/* ---- class Broken: a constructor that fails ------------------------------- */
/* Broken(mode): 0 ray_fail(ETASK, "ctor boom 42"), 1 returns 7, 2 returns
 * RAY_EIO. Waits for g_ctor_go first when g_ctor_block is set. */

static inline int broken_ctor(ray_task_ctx_t *ctx, void **state) {
  (void)state;
  atomic_fetch_add(&g_ctors, 1);
  if (atomic_load(&g_ctor_block)) {
    rt_latch_signal(&g_ctor_started);
    rt_latch_wait(&g_ctor_go, 1);
  }
  int64_t mode = 0;
  AC(ray_ctx_arg_i64(ctx, 0, &mode) == 0, 0);
  if (mode == 0) return ray_fail(ctx, RAY_ETASK, "ctor boom %d", 42);
  if (mode == 1) return 7;
  return RAY_EIO;
}

static inline int broken_get(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  atomic_fetch_add(&g_runs, 1); /* must never run */
  return ray_return_i64(ctx, 0, 0);
}

static const ray_method_def_t k_broken_methods[] = {{"get", broken_get, rt_t_i64, 1}};
static const ray_actor_class_t k_broken = {"Broken", broken_ctor, counter_dtor, k_broken_methods,
                                           1};

/* ---- class Order: per-submitter order ------------------------------------- */

enum { ORDER_THREADS = 4 };

typedef struct {
  int64_t last[ORDER_THREADS]; /* plain: calls run one at a time */
  int64_t violations;
  int64_t count;
} order_t;

static inline int order_ctor(ray_task_ctx_t *ctx, void **state) {
  (void)ctx;
  order_t *o = malloc(sizeof *o);
  if (o == NULL) return RAY_ENOMEM;
  for (int i = 0; i < ORDER_THREADS; i++) o->last[i] = -1;
  o->violations = 0;
  o->count = 0;
  *state = o;
  return 0;
}

/* rec(thread, seq): seq must follow the thread's previous one exactly. */
static inline int order_rec(ray_task_ctx_t *ctx, void *state) {
  order_t *o = state;
  int64_t th = -1, seq = -1;
  int rc = ray_ctx_arg_i64(ctx, 0, &th);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &seq);
  AC(rc == 0 && th >= 0 && th < ORDER_THREADS, rc);
  if (rc != 0 || th < 0 || th >= ORDER_THREADS) return ray_fail(ctx, RAY_EINVAL, "bad args");
  if (seq != o->last[th] + 1) o->violations++;
  o->last[th] = seq;
  o->count++;
  return ray_return_i64(ctx, 0, seq);
}

static inline int order_stats(ray_task_ctx_t *ctx, void *state) {
  order_t *o = state;
  int rc = ray_return_i64(ctx, 0, o->violations);
  if (rc == 0) rc = ray_return_i64(ctx, 1, o->count);
  return rc;
}

static const ray_method_def_t k_order_methods[] = {{"rec", order_rec, rt_t_i64, 1},
                                                   {"stats", order_stats, T_I64_2, 2}};
static const ray_actor_class_t k_order = {"Order", order_ctor, free, k_order_methods, 2};

/* ---- class Conc: the concurrency limit ------------------------------------ */

/* work(block: i64): count live calls; block on g_go when asked. */
static inline int conc_work(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  atomic_fetch_add(&g_runs, 1);
  int live = atomic_fetch_add(&g_live, 1) + 1;
  int m = atomic_load(&g_max_live);
  while (live > m && !atomic_compare_exchange_weak(&g_max_live, &m, live)) {
  }
  int64_t block = 0;
  AC(ray_ctx_arg_i64(ctx, 0, &block) == 0, 0);
  if (block) {
    rt_latch_signal(&g_started);
    rt_latch_wait(&g_go, 1);
  } else {
    sched_yield(); /* widen the window in which another call could overlap */
  }
  atomic_fetch_sub(&g_live, 1);
  return ray_return_i64(ctx, 0, live);
}

static const ray_method_def_t k_conc_methods[] = {{"work", conc_work, rt_t_i64, 1}};
static const ray_actor_class_t k_conc = {"Conc", NULL, NULL, k_conc_methods, 1};

/* ---- class Relay: actors and tasks calling actors, sharing data ----------- */

typedef struct {
  ray_actor_t kept; /* a retained handle (remember) */
  bool has;
} relay_t;

static inline int relay_ctor(ray_task_ctx_t *ctx, void **state) {
  (void)ctx;
  atomic_fetch_add(&g_ctors, 1);
  relay_t *r = calloc(1, sizeof *r);
  if (r == NULL) return RAY_ENOMEM;
  *state = r;
  return 0;
}

static inline void relay_dtor(void *state) {
  relay_t *r = state;
  atomic_fetch_add(&g_relay_dtors, 1);
  if (r->has) {
    /* At shutdown the kept actor may have been torn down already. */
    int rc = ray_actor_release(r->kept);
    AC(rc == 0 || rc == RAY_ENOTFOUND, rc);
  }
  free(r);
}

/* Call other.add(x) and wait for it inside this method. */
static inline int call_add_and_get(ray_task_ctx_t *ctx, ray_actor_t other, int64_t x) {
  ray_arg_t a = ray_arg_i64(x);
  ray_ref_t r;
  int rc = ray_actor_call(other, "add", &a, 1, NULL, &r);
  if (rc != 0) return ray_fail(ctx, rc, "call add");
  int64_t v = 0;
  rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
  ray_ref_release(r);
  if (rc != 0) return ray_fail(ctx, rc, "get add");
  return ray_return_i64(ctx, 0, v);
}

/* call_other(actor, x) -> actor.add(x), fetched inside the method. */
static inline int relay_call_other(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  ray_actor_t other;
  int64_t x = 0;
  int rc = ray_ctx_arg_actor(ctx, 0, &other);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &x);
  if (rc != 0) return ray_fail(ctx, rc, "call_other args");
  return call_add_and_get(ctx, other, x);
}

/* via_task(actor, x) -> task_add(actor, x), a task that calls the actor. */
static inline int relay_via_task(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  ray_actor_t other;
  int64_t x = 0;
  int rc = ray_ctx_arg_actor(ctx, 0, &other);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &x);
  if (rc != 0) return ray_fail(ctx, rc, "via_task args");
  ray_arg_t args[2] = {ray_arg_actor(other), ray_arg_i64(x)};
  ray_ref_t r;
  if ((rc = ray_task_submit(g_task_add, args, 2, NULL, &r)) != 0)
    return ray_fail(ctx, rc, "submit task_add");
  int64_t v = 0;
  rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
  ray_ref_release(r);
  if (rc != 0) return ray_fail(ctx, rc, "get task_add");
  return ray_return_i64(ctx, 0, v);
}

/* remember(actor): keep a handle beyond the call. */
static inline int relay_remember(ray_task_ctx_t *ctx, void *state) {
  relay_t *r = state;
  ray_actor_t other;
  int rc = ray_ctx_arg_actor(ctx, 0, &other);
  if (rc == 0) rc = ray_actor_retain(other);
  if (rc != 0) return ray_fail(ctx, rc, "remember");
  if (r->has) ray_actor_release(r->kept);
  r->kept = other;
  r->has = true;
  return ray_return_i64(ctx, 0, 0);
}

/* use(x) -> kept.add(x). */
static inline int relay_use(ray_task_ctx_t *ctx, void *state) {
  relay_t *r = state;
  int64_t x = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != 0 || !r->has) return ray_fail(ctx, RAY_EINVAL, "use");
  return call_add_and_get(ctx, r->kept, x);
}

/* produce(size, seed) -> bytes, handed over without a copy. */
static inline int relay_produce(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  int64_t size = 0, seed = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &size);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &seed);
  if (rc != 0) return ray_fail(ctx, rc, "produce args");
  void *p = malloc((size_t)size);
  if (p == NULL) return RAY_ENOMEM;
  rt_fill(p, (size_t)size, (uint64_t)seed);
  atomic_store(&g_produce_ptr, (uintptr_t)p);
  rc = ray_return_owned(ctx, 0, p, (size_t)size, rt_count_free, NULL);
  if (rc != 0) free(p);
  return rc;
}

/* consume(bytes ref, seed) -> size; records where the bytes were read. */
static inline int relay_consume(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  const void *d = NULL;
  size_t size = 0;
  int64_t seed = 0;
  int rc = ray_ctx_arg_bytes(ctx, 0, &d, &size);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &seed);
  if (rc != 0) return ray_fail(ctx, rc, "consume args");
  ray_ref_t r = RAY_REF_NIL;
  rc = ray_ctx_arg_ref(ctx, 0, &r);
  AC(rc == 0 && r.id != 0 && r.type == RAY_TYPE_BYTES, rc);
  AC(rt_check(d, size, (uint64_t)seed), 0);
  atomic_store(&g_consume_ptr, (uintptr_t)d);
  return ray_return_i64(ctx, 0, (int64_t)size);
}

static const ray_method_def_t k_relay_methods[] = {
    {"call_other", relay_call_other, rt_t_i64, 1}, {"via_task", relay_via_task, rt_t_i64, 1},
    {"remember", relay_remember, rt_t_i64, 1},     {"use", relay_use, rt_t_i64, 1},
    {"produce", relay_produce, rt_t_bytes, 1},     {"consume", relay_consume, rt_t_i64, 1},
};
static const ray_actor_class_t k_relay = {"Relay", relay_ctor, relay_dtor, k_relay_methods, 6};

/* ---- tasks ---------------------------------------------------------------- */

/* task_add(actor, x) -> actor.add(x), waited for inside the task. */
static inline int task_add(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t a;
  int64_t x = 0;
  int rc = ray_ctx_arg_actor(ctx, 0, &a);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &x);
  if (rc != 0) return ray_fail(ctx, rc, "task_add args");
  return call_add_and_get(ctx, a, x);
}

/* Not an actor method: the actor-only context calls refuse. */
static inline int task_probe(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t a = {0};
  AC(ray_actor_exit(ctx) == RAY_EINVAL, 0);
  AC(ray_ctx_actor(ctx, &a) == RAY_EINVAL, 0);
  return ray_return_i64(ctx, 0, 0);
}

static inline void reg_task_add(void) {
  assert_rc(ray_function_register("task_add", task_add, NULL, rt_t_i64, 1, &g_task_add), 0);
}

/* ---- helpers ---------------------------------------------------------------- */

static inline ray_actor_t mk(const ray_actor_class_t *cls, const ray_arg_t *args, size_t nargs,
                             const ray_actor_opts_t *opts) {
  ray_actor_t a = {0};
  assert_rc(ray_actor_create(cls, args, nargs, opts, &a), 0);
  assert_true(a.id != 0);
  return a;
}

static inline ray_actor_t mk_counter(int64_t initial) {
  ray_arg_t a = ray_arg_i64(initial);
  return mk(&k_counter, &a, 1, NULL);
}

static inline ray_ref_t call0(ray_actor_t a, const char *method) {
  ray_ref_t r = RAY_REF_NIL;
  assert_rc(ray_actor_call(a, method, NULL, 0, NULL, &r), 0);
  assert_true(r.id != 0);
  return r;
}

static inline ray_ref_t call1(ray_actor_t a, const char *method, ray_arg_t arg) {
  ray_ref_t r = RAY_REF_NIL;
  assert_rc(ray_actor_call(a, method, &arg, 1, NULL, &r), 0);
  assert_true(r.id != 0);
  return r;
}

static inline ray_ref_t add(ray_actor_t a, int64_t x) {
  return call1(a, "add", ray_arg_i64(x));
}

/* Wait for an i64 result and release the ref. */
static inline int64_t take_i64(ray_ref_t r) {
  int64_t v = INT64_MIN;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_rc(ray_ref_release(r), 0);
  return v;
}

/* Whether the error or one of its causes has `code` (and, when msg is not
 * NULL, a message containing msg). */
static inline bool chain_has(const ray_error_t *e, int code, const char *msg) {
  for (; e != NULL; e = ray_error_cause(e))
    if (ray_error_code(e) == code && (msg == NULL || strstr(ray_error_message(e), msg) != NULL))
      return true;
  return false;
}

/* Wait for `r` to fail with `code`; return its error (caller frees). */
static inline ray_error_t *expect_fail(ray_ref_t r, int code) {
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), code);
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(r, &e), 0);
  assert_non_null(e);
  assert_int_equal(ray_error_code(e), code);
  return e;
}

/* The same, checking the origin, then release the ref. */
static inline void take_fail(ray_ref_t r, int code, const char *origin) {
  ray_error_t *e = expect_fail(r, code);
  if (origin != NULL) assert_string_equal(ray_error_origin(e), origin);
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
}

static inline bool is_pending(ray_ref_t r) {
  ray_error_t *e = NULL;
  int rc = ray_get_error(r, &e);
  ray_error_free(e);
  return rc == RAY_ENOTREADY;
}

#endif /* RAY_ACTORS_UTIL_H */
