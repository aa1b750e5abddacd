/* test_actors.c - actors through the public API: class validation, method
 * lookup, creation and calls before/after init, results typed at
 * submission, per-submitter order with several host threads, the
 * max_concurrency limit, calls queued behind the constructor, constructor
 * failure, kill, handle release, detached and named actors, restarts and
 * task retries, ref arguments that are not ready yet, actor handles passed
 * to tasks and to other actors, data sharing through the store, the context
 * accessors, bad input, fairness between actors, calls submitted while
 * their actor dies, killed named/detached actors being freed, and shutdown
 * with calls queued or running.
 *
 * Methods run on worker threads, where cmocka must not be used: they record
 * failed checks into g_errs (AC) and every test asserts it after its runtime
 * is shut down. Calls and constructors that must stay put while the main
 * thread looks at something wait on a latch; nothing sleeps. */
#define _POSIX_C_SOURCE 200809L
#include <sched.h>

#include "test_util.h"

/* ---- shared state --------------------------------------------------------- */

static rt_errs_t g_errs;                    /* checks made on workers */
static atomic_int g_ctors;                  /* constructor runs (any class) */
static atomic_int g_dtors;                  /* Counter destructor runs */
static atomic_int g_relay_dtors;            /* Relay destructor runs */
static atomic_int g_runs;                   /* method runs counted by a test */
static atomic_int g_live;                   /* Conc.work calls running now */
static atomic_int g_max_live;               /* the most ever running at once */
static atomic_int g_ticks;                  /* Counter.tick calls */
static atomic_int g_flaky;                  /* Counter.flaky attempts */
static atomic_int g_flaky_exits;            /* attempts of flaky that end the actor */
static atomic_int g_fails;                  /* Counter.fail runs */
static atomic_bool g_ctor_block;            /* constructors wait for g_ctor_go */
static atomic_uint_fast64_t g_ctor_self;    /* ray_ctx_actor in the constructor */
static atomic_uintptr_t g_produce_ptr;      /* Relay.produce's buffer */
static atomic_uintptr_t g_consume_ptr;      /* the bytes Relay.consume read */
static atomic_uint_fast64_t g_expect_actor; /* the handle Counter.args expects */
static rt_latch_t g_started;                /* Counter.block / Conc.work(1): started */
static rt_latch_t g_go;                     /* ... and wait for this */
static rt_latch_t g_ctor_started;           /* a blocking constructor started */
static rt_latch_t g_ctor_go;                /* ... and waits for this */
static rt_latch_t g_dtor_latch;             /* signalled by each Counter destructor */
static ray_function_t g_task_add;           /* task_add, registered by the tests that use it */

/* On a worker: record a failed check. */
#define AC(cond, value) RT_CHECK(&g_errs, (cond), (value))

static const uint32_t T_I64_2[] = {RAY_TYPE_I64, RAY_TYPE_I64};
#define T_USER7 (RAY_TYPE_USER + 7)
static const uint32_t T_MIXED[] = {RAY_TYPE_I64,   RAY_TYPE_F64,     RAY_TYPE_STR,
                                   RAY_TYPE_BYTES, RAY_TYPE_MSGPACK, T_USER7};

static void a_reset(void) {
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

static void a_begin(unsigned workers) {
  /* A test that failed half-way may have left its runtime up: shut it down
   * before the counters are reset, so its destructors do not count here. */
  if (ray_is_initialized()) (void)ray_shutdown();
  a_reset();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = workers;
  rt_begin_cfg(&cfg);
}

static void a_latches_destroy(void) {
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
  rt_latch_destroy(&g_ctor_started);
  rt_latch_destroy(&g_ctor_go);
  rt_latch_destroy(&g_dtor_latch);
}

/* Shut down cleanly (every call has finished), then check what workers saw. */
static void a_end(void) {
  rt_end();
  rt_errs_assert(&g_errs);
  a_latches_destroy();
}

/* Make g_started / g_go fresh for another round. No thread may be waiting
 * on them (every blocking call of the previous round has returned). */
static void reset_gate(void) {
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

static int counter_ctor(ray_task_ctx_t *ctx, void **state) {
  atomic_fetch_add(&g_ctors, 1);
  AC(ray_actor_exit(ctx) == RAY_EINVAL, 0); /* not in a method */
  ray_actor_t self = {0};
  int rc = ray_ctx_actor(ctx, &self);
  AC(rc == 0 && self.id != 0, rc);
  atomic_store(&g_ctor_self, self.id);
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

static void counter_dtor(void *state) {
  AC(state != NULL, 0);
  free(state);
  atomic_fetch_add(&g_dtors, 1);
  rt_latch_signal(&g_dtor_latch);
}

/* add(x: i64) -> value after adding. */
static int m_add(ray_task_ctx_t *ctx, void *state) {
  counter_t *c = state;
  int64_t x = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != 0) return ray_fail(ctx, rc, "add: the argument is not an i64");
  c->value += x;
  return ray_return_i64(ctx, 0, c->value);
}

static int m_get(ray_task_ctx_t *ctx, void *state) {
  return ray_return_i64(ctx, 0, ((counter_t *)state)->value);
}

/* Signal g_started, wait for g_go, return the value. */
static int m_block(ray_task_ctx_t *ctx, void *state) {
  atomic_fetch_add(&g_runs, 1);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  return ray_return_i64(ctx, 0, ((counter_t *)state)->value);
}

static int m_die(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  int rc = ray_actor_exit(ctx);
  AC(rc == 0, rc);
  AC(ray_return_i64(ctx, 0, 1) == 0, 0); /* discarded: the call fails */
  return 0;
}

static int m_die_rc(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  AC(ray_return_i64(ctx, 0, 1) == 0, 0);
  return RAY_EACTORDIED;
}

/* The first g_flaky_exits attempts end the actor; later ones return the value. */
static int m_flaky(ray_task_ctx_t *ctx, void *state) {
  int attempt = atomic_fetch_add(&g_flaky, 1) + 1;
  if (attempt <= atomic_load(&g_flaky_exits)) {
    AC(ray_actor_exit(ctx) == 0, 0);
    return 0;
  }
  return ray_return_i64(ctx, 0, ((counter_t *)state)->value);
}

static int m_self(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  ray_actor_t self = {0};
  int rc = ray_ctx_actor(ctx, &self);
  AC(rc == 0, rc);
  AC(ray_ctx_actor(ctx, NULL) == RAY_EINVAL, 0);
  return ray_return_i64(ctx, 0, (int64_t)self.id);
}

static int m_fail(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  atomic_fetch_add(&g_fails, 1);
  return ray_fail(ctx, RAY_ETASK, "bad %d", 7);
}

/* Six results of six types. */
static int m_types(ray_task_ctx_t *ctx, void *state) {
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
static int m_args(ray_task_ctx_t *ctx, void *state) {
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
static int m_actor_ref(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  ray_ref_t r = RAY_REF_NIL;
  int rc = ray_ctx_arg_ref(ctx, 0, &r);
  return ray_return_i64(ctx, 0, rc);
}

static int m_tick(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, atomic_fetch_add(&g_ticks, 1) + 1);
}

static int m_ticks(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, atomic_load(&g_ticks));
}

static const ray_method_def_t k_counter_methods[] = {
    {"add", m_add, rt_t_i64, 1},       {"get", m_get, rt_t_i64, 1},
    {"block", m_block, rt_t_i64, 1},   {"die", m_die, rt_t_i64, 1},
    {"die_rc", m_die_rc, rt_t_i64, 1}, {"flaky", m_flaky, rt_t_i64, 1},
    {"self", m_self, rt_t_i64, 1},     {"fail", m_fail, rt_t_i64, 1},
    {"types", m_types, T_MIXED, 6},    {"args", m_args, rt_t_i64, 1},
    {"noop", rt_fn_zero, rt_t_i64, 1}, {"tick", m_tick, rt_t_i64, 1},
    {"ticks", m_ticks, rt_t_i64, 1},   {"actor_ref", m_actor_ref, rt_t_i64, 1},
};
#define N_COUNTER_METHODS (sizeof k_counter_methods / sizeof k_counter_methods[0])

static const ray_actor_class_t k_counter = {"Counter", counter_ctor, counter_dtor,
                                            k_counter_methods, N_COUNTER_METHODS};

/* ---- class Broken: a constructor that fails ------------------------------- */
/* Broken(mode): 0 ray_fail(ETASK, "ctor boom 42"), 1 returns 7, 2 returns
 * RAY_EIO. Waits for g_ctor_go first when g_ctor_block is set. */

static int broken_ctor(ray_task_ctx_t *ctx, void **state) {
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

static int broken_get(ray_task_ctx_t *ctx, void *state) {
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

static int order_ctor(ray_task_ctx_t *ctx, void **state) {
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
static int order_rec(ray_task_ctx_t *ctx, void *state) {
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

static int order_stats(ray_task_ctx_t *ctx, void *state) {
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
static int conc_work(ray_task_ctx_t *ctx, void *state) {
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

static int relay_ctor(ray_task_ctx_t *ctx, void **state) {
  (void)ctx;
  atomic_fetch_add(&g_ctors, 1);
  relay_t *r = calloc(1, sizeof *r);
  if (r == NULL) return RAY_ENOMEM;
  *state = r;
  return 0;
}

static void relay_dtor(void *state) {
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
static int call_add_and_get(ray_task_ctx_t *ctx, ray_actor_t other, int64_t x) {
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
static int relay_call_other(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  ray_actor_t other;
  int64_t x = 0;
  int rc = ray_ctx_arg_actor(ctx, 0, &other);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &x);
  if (rc != 0) return ray_fail(ctx, rc, "call_other args");
  return call_add_and_get(ctx, other, x);
}

/* via_task(actor, x) -> task_add(actor, x), a task that calls the actor. */
static int relay_via_task(ray_task_ctx_t *ctx, void *state) {
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
static int relay_remember(ray_task_ctx_t *ctx, void *state) {
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
static int relay_use(ray_task_ctx_t *ctx, void *state) {
  relay_t *r = state;
  int64_t x = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != 0 || !r->has) return ray_fail(ctx, RAY_EINVAL, "use");
  return call_add_and_get(ctx, r->kept, x);
}

/* produce(size, seed) -> bytes, handed over without a copy. */
static int relay_produce(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  int64_t size = 0, seed = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &size);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &seed);
  if (rc != 0) return ray_fail(ctx, rc, "produce args");
  void *p = malloc((size_t)size);
  if (p == NULL) return RAY_ENOMEM;
  rt_fill(p, (size_t)size, (uint64_t)seed);
  atomic_store(&g_produce_ptr, (uintptr_t)p);
  rc = ray_return_owned(ctx, 0, p, (size_t)size, rt_count_free);
  if (rc != 0) free(p);
  return rc;
}

/* consume(bytes ref, seed) -> size; records where the bytes were read. */
static int relay_consume(ray_task_ctx_t *ctx, void *state) {
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
static int task_add(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t a;
  int64_t x = 0;
  int rc = ray_ctx_arg_actor(ctx, 0, &a);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &x);
  if (rc != 0) return ray_fail(ctx, rc, "task_add args");
  return call_add_and_get(ctx, a, x);
}

/* Not an actor method: the actor-only context calls refuse. */
static int task_probe(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t a = {0};
  AC(ray_actor_exit(ctx) == RAY_EINVAL, 0);
  AC(ray_ctx_actor(ctx, &a) == RAY_EINVAL, 0);
  return ray_return_i64(ctx, 0, 0);
}

static void reg_task_add(void) {
  assert_rc(ray_function_register("task_add", task_add, NULL, rt_t_i64, 1, &g_task_add), 0);
}

/* ---- helpers ---------------------------------------------------------------- */

static ray_actor_t mk(const ray_actor_class_t *cls, const ray_arg_t *args, size_t nargs,
                      const ray_actor_opts_t *opts) {
  ray_actor_t a = {0};
  assert_rc(ray_actor_create(cls, args, nargs, opts, &a), 0);
  assert_true(a.id != 0);
  return a;
}

static ray_actor_t mk_counter(int64_t initial) {
  ray_arg_t a = ray_arg_i64(initial);
  return mk(&k_counter, &a, 1, NULL);
}

static ray_ref_t call0(ray_actor_t a, const char *method) {
  ray_ref_t r = RAY_REF_NIL;
  assert_rc(ray_actor_call(a, method, NULL, 0, NULL, &r), 0);
  assert_true(r.id != 0);
  return r;
}

static ray_ref_t call1(ray_actor_t a, const char *method, ray_arg_t arg) {
  ray_ref_t r = RAY_REF_NIL;
  assert_rc(ray_actor_call(a, method, &arg, 1, NULL, &r), 0);
  assert_true(r.id != 0);
  return r;
}

static ray_ref_t add(ray_actor_t a, int64_t x) {
  return call1(a, "add", ray_arg_i64(x));
}

/* Wait for an i64 result and release the ref. */
static int64_t take_i64(ray_ref_t r) {
  int64_t v = INT64_MIN;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_rc(ray_ref_release(r), 0);
  return v;
}

/* Whether the error or one of its causes has `code` (and, when msg is not
 * NULL, a message containing msg). */
static bool chain_has(const ray_error_t *e, int code, const char *msg) {
  for (; e != NULL; e = ray_error_cause(e))
    if (ray_error_code(e) == code && (msg == NULL || strstr(ray_error_message(e), msg) != NULL))
      return true;
  return false;
}

/* Wait for `r` to fail with `code`; return its error (caller frees). */
static ray_error_t *expect_fail(ray_ref_t r, int code) {
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), code);
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(r, &e), 0);
  assert_non_null(e);
  assert_int_equal(ray_error_code(e), code);
  return e;
}

/* The same, checking the origin, then release the ref. */
static void take_fail(ray_ref_t r, int code, const char *origin) {
  ray_error_t *e = expect_fail(r, code);
  if (origin != NULL) assert_string_equal(ray_error_origin(e), origin);
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
}

static bool is_pending(ray_ref_t r) {
  ray_error_t *e = NULL;
  int rc = ray_get_error(r, &e);
  ray_error_free(e);
  return rc == RAY_ENOTREADY;
}

/* ---- class validation and method lookup ----------------------------------- */

static void test_opts_init(void **state) {
  (void)state;
  ray_actor_opts_init(NULL); /* no-op */
  ray_actor_opts_t o;
  rt_garbage(&o, sizeof o);
  ray_actor_opts_init(&o);
  assert_null(o.name);
  assert_false(o.get_if_exists);
  assert_int_equal(o.max_restarts, 0);
  assert_int_equal(o.max_task_retries, 0);
  assert_int_equal(o.max_concurrency, 1);
  assert_false(o.detached);
}

static void test_method_lookup(void **state) {
  (void)state;
  rt_no_runtime(); /* does not need the runtime */
  uint32_t id = 12345;
  assert_rc(ray_actor_method(&k_counter, "add", &id), 0);
  assert_int_equal(id, 0);
  assert_rc(ray_actor_method(&k_counter, "ticks", &id), 0);
  assert_int_equal(id, 12);
  assert_rc(ray_actor_method(&k_counter, "nope", &id), RAY_ENOTFOUND);
  assert_rc(ray_actor_method(&k_counter, "", &id), RAY_ENOTFOUND);
  assert_rc(ray_actor_method(&k_counter, "ADD", &id), RAY_ENOTFOUND);
  assert_rc(ray_actor_method(NULL, "add", &id), RAY_EINVAL);
  assert_rc(ray_actor_method(&k_counter, NULL, &id), RAY_EINVAL);
  assert_rc(ray_actor_method(&k_counter, "add", NULL), RAY_EINVAL);
  const ray_actor_class_t empty = {"Empty", NULL, NULL, NULL, 0};
  assert_rc(ray_actor_method(&empty, "add", &id), RAY_ENOTFOUND);
}

static void test_class_invalid(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = {777};
  const uint32_t zero_second[] = {RAY_TYPE_I64, 0};
  const uint32_t many[RAY_MAX_RETURNS + 1] = {
      RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64,
      RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64,
      RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64, RAY_TYPE_I64};
  ray_method_def_t m[2] = {{"get", m_get, rt_t_i64, 1}, {"add", m_add, rt_t_i64, 1}};
  ray_actor_class_t c = {"Bad", counter_ctor, counter_dtor, m, 2};

  assert_rc(ray_actor_create(NULL, NULL, 0, NULL, &a), RAY_EINVAL);
  assert_rc(ray_actor_create(&k_counter, NULL, 0, NULL, NULL), RAY_EINVAL);
  c.name = NULL;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  c.name = "";
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  c.name = "Bad";
  c.methods = NULL; /* num_methods 2 */
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  c.methods = m;
  m[1].name = NULL;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].name = "add";
  m[1].fn = NULL;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].fn = m_add;
  m[1].num_returns = 0;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].num_returns = RAY_MAX_RETURNS + 1;
  m[1].return_types = many;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].num_returns = 2;
  m[1].return_types = zero_second;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].num_returns = 1;
  m[1].return_types = NULL;
  assert_rc(ray_actor_create(&c, NULL, 0, NULL, &a), RAY_EINVAL);
  m[1].return_types = rt_t_i64;
  /* Bad arguments, as for ray_task_submit. */
  ray_arg_t args[RAY_MAX_ARGS + 1];
  for (size_t i = 0; i < RAY_MAX_ARGS + 1; i++) args[i] = ray_arg_i64((int64_t)i);
  assert_rc(ray_actor_create(&k_counter, NULL, 1, NULL, &a), RAY_EINVAL);
  assert_rc(ray_actor_create(&k_counter, args, RAY_MAX_ARGS + 1, NULL, &a), RAY_EINVAL);
  ray_arg_t bad = ray_arg_str(NULL);
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_EINVAL);
  bad = ray_arg_i64(1);
  bad.kind = 99;
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_EINVAL);
  ray_ref_t unknown = {UINT64_MAX - 99, RAY_TYPE_I64};
  bad = ray_arg_ref(unknown);
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_ENOTFOUND);
  bad = ray_arg_ref(RAY_REF_NIL);
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_ENOTFOUND);
  ray_actor_t nobody = {UINT64_MAX - 7};
  bad = ray_arg_actor(nobody);
  assert_rc(ray_actor_create(&k_counter, &bad, 1, NULL, &a), RAY_ENOTFOUND);
  assert_int_equal(a.id, 777); /* untouched by the failures */
  assert_int_equal(atomic_load(&g_ctors), 0);

  /* The same class, fixed, is fine; so are 16 returns, no constructor or
   * destructor, no methods, and max_concurrency 0 (means 1). */
  ray_method_def_t m16 = {"get", m_get, many, RAY_MAX_RETURNS};
  const ray_actor_class_t c16 = {"Sixteen", NULL, NULL, &m16, 1};
  const ray_actor_class_t none = {"NoMethods", NULL, NULL, NULL, 0};
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.max_concurrency = 0;
  ray_actor_t ok = mk(&c, NULL, 0, &o);
  ray_actor_t ok16 = mk(&c16, NULL, 0, NULL);
  ray_actor_t ok0 = mk(&none, NULL, 0, NULL);
  assert_true(ok.id != ok16.id && ok16.id != ok0.id);
  assert_int_equal(take_i64(add(ok, 3)), 3);
  ray_ref_t r16[RAY_MAX_RETURNS];
  assert_rc(ray_actor_call(ok0, "get", NULL, 0, NULL, r16), RAY_ENOTFOUND);
  assert_rc(ray_actor_release(ok), 0);
  assert_rc(ray_actor_release(ok16), 0);
  assert_rc(ray_actor_release(ok0), 0);
  a_end();
}

/* ---- before init, after shutdown ------------------------------------------ */

static void test_not_init(void **state) {
  (void)state;
  rt_no_runtime();
  ray_actor_t a = {1}, out = {0};
  ray_ref_t r;
  ray_arg_t arg = ray_arg_i64(1);
  assert_rc(ray_actor_create(&k_counter, NULL, 0, NULL, &out), RAY_ENOTINIT);
  assert_rc(ray_actor_call(a, "add", &arg, 1, NULL, &r), RAY_ENOTINIT);
  assert_rc(ray_actor_call_id(a, 0, &arg, 1, NULL, &r), RAY_ENOTINIT);
  assert_rc(ray_actor_kill(a, true), RAY_ENOTINIT);
  assert_rc(ray_actor_retain(a), RAY_ENOTINIT);
  assert_rc(ray_actor_release(a), RAY_ENOTINIT);
  assert_rc(ray_get_actor("x", &out), RAY_ENOTINIT);
  assert_rc(ray_actor_exit(NULL), RAY_EINVAL);
  assert_rc(ray_ctx_actor(NULL, &out), RAY_EINVAL);
  assert_rc(ray_ctx_arg_actor(NULL, 0, &out), RAY_EINVAL);

  /* A handle from a runtime that has shut down: ENOTINIT, then unknown to
   * the next runtime (handles are never reused). */
  a_begin(2);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.name = "old";
  ray_actor_t h1 = mk(&k_counter, NULL, 0, &o);
  assert_int_equal(take_i64(add(h1, 2)), 2);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 1); /* destroyed at shutdown */
  assert_rc(ray_actor_call(h1, "add", &arg, 1, NULL, &r), RAY_ENOTINIT);
  assert_rc(ray_actor_kill(h1, true), RAY_ENOTINIT);
  assert_rc(ray_actor_release(h1), RAY_ENOTINIT);
  a_begin(2);
  ray_actor_t h2 = mk_counter(0);
  assert_true(h2.id != h1.id);
  assert_rc(ray_actor_call(h1, "add", &arg, 1, NULL, &r), RAY_ENOTFOUND);
  assert_rc(ray_actor_kill(h1, true), RAY_ENOTFOUND);
  assert_rc(ray_actor_retain(h1), RAY_ENOTFOUND);
  assert_rc(ray_actor_release(h1), RAY_ENOTFOUND);
  assert_rc(ray_get_actor("old", &out), RAY_ENOTFOUND); /* names do not survive either */
  assert_rc(ray_actor_release(h2), 0);
  a_end();
}

/* ---- calls ------------------------------------------------------------------ */

static void test_call_basic(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t c = mk_counter(10);
  assert_int_equal(take_i64(add(c, 5)), 15);
  uint32_t id_add = 0, id_get = 0;
  assert_rc(ray_actor_method(&k_counter, "add", &id_add), 0);
  assert_rc(ray_actor_method(&k_counter, "get", &id_get), 0);
  ray_arg_t arg = ray_arg_i64(-3);
  ray_ref_t r;
  assert_rc(ray_actor_call_id(c, id_add, &arg, 1, NULL, &r), 0);
  assert_int_equal(take_i64(r), 12);
  ray_task_opts_t to;
  ray_task_opts_init(&to);
  to.num_returns = 1; /* a matching check */
  assert_rc(ray_actor_call_id(c, id_get, NULL, 0, &to, &r), 0);
  assert_int_equal(take_i64(r), 12);
  /* A ref argument. */
  ray_ref_t v;
  assert_rc(ray_put_i64(100, &v), 0);
  r = call1(c, "add", ray_arg_ref(v));
  assert_rc(ray_ref_release(v), 0); /* the call holds its own reference */
  assert_int_equal(take_i64(r), 112);
  /* Many calls in a row; each result is its prefix sum. */
  int n = rt_iters(1000, 100);
  ray_ref_t *refs = calloc((size_t)n, sizeof *refs);
  assert_non_null(refs);
  for (int i = 0; i < n; i++) refs[i] = add(c, 1);
  for (int i = 0; i < n; i++) assert_int_equal(take_i64(refs[i]), 113 + i);
  free(refs);
  assert_int_equal(atomic_load(&g_ctors), 1);
  assert_rc(ray_actor_release(c), 0);
  rt_latch_wait(&g_dtor_latch, 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 1);
}

static void test_results_typed_at_submission(void **state) {
  (void)state;
  a_begin(2);
  atomic_store(&g_ctor_block, true);
  ray_actor_t c = mk_counter(42);
  rt_latch_wait(&g_ctor_started, 1);
  ray_ref_t r[6];
  rt_garbage(r, sizeof r);
  assert_rc(ray_actor_call(c, "types", NULL, 0, NULL, r), 0);
  for (int i = 0; i < 6; i++) {
    assert_true(r[i].id != 0);
    assert_int_equal(r[i].type, T_MIXED[i]); /* typed while still pending */
    assert_true(is_pending(r[i]));
  }
  ray_ref_t one[2];
  ray_task_opts_t to;
  ray_task_opts_init(&to);
  to.num_returns = 1; /* wrong: types has 6 */
  assert_rc(ray_actor_call(c, "types", NULL, 0, &to, one), RAY_EINVAL);
  to.num_returns = 6;
  ray_ref_t r2[6];
  assert_rc(ray_actor_call(c, "types", NULL, 0, &to, r2), 0);
  rt_latch_signal(&g_ctor_go);

  int64_t i64 = 0;
  assert_rc(ray_get_i64(r[0], RAY_TIMEOUT_INFINITE, &i64), 0);
  assert_int_equal(i64, 42);
  double f = 0;
  assert_rc(ray_get_f64(r[1], RAY_TIMEOUT_INFINITE, &f), 0);
  assert_true(f == 2.5);
  char *s = NULL;
  size_t len = 0;
  assert_rc(ray_get_str(r[2], RAY_TIMEOUT_INFINITE, &s, &len), 0);
  assert_string_equal(s, "counter");
  assert_int_equal(len, 7);
  ray_free(s);
  ray_buf_t b;
  assert_rc(ray_get(r[3], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_BYTES);
  assert_int_equal(b.size, 3);
  assert_memory_equal(b.data, "raw", 3);
  ray_buf_release(&b);
  ray_msgpack_t mp;
  assert_rc(ray_get_msgpack(r[4], RAY_TIMEOUT_INFINITE, &mp), 0);
  assert_int_equal(mp.obj.type, MSGPACK_OBJECT_BOOLEAN);
  assert_true(mp.obj.via.boolean);
  ray_msgpack_release(&mp);
  assert_rc(ray_get(r[5], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.type, T_USER7);
  assert_memory_equal(b.data, "user", 4);
  ray_buf_release(&b);
  assert_rc(ray_get_i64(r[2], 0, &i64), RAY_ETYPE); /* typed gets check the tag */
  for (int i = 0; i < 6; i++) {
    assert_rc(ray_ref_release(r[i]), 0);
    assert_rc(ray_ref_release(r2[i]), 0);
  }
  assert_rc(ray_actor_release(c), 0);
  a_end();
}

/* ---- order ---------------------------------------------------------------- */

typedef struct {
  ray_actor_t actor;
  int tid;
  int n;
  uint32_t rec_id;
  rt_errs_t *errs;
} order_arg_t;

static void order_thread(void *p) {
  order_arg_t *a = p;
  ray_ref_t last = RAY_REF_NIL;
  for (int seq = 0; seq < a->n; seq++) {
    ray_arg_t args[2] = {ray_arg_i64(a->tid), ray_arg_i64(seq)};
    ray_ref_t tmp = RAY_REF_NIL;
    if (seq % 5 == 3) { /* some sequence numbers travel as ready refs */
      int rc = ray_put_i64(seq, &tmp);
      RT_CHECK(a->errs, rc == 0, rc);
      args[1] = ray_arg_ref(tmp);
    }
    ray_ref_t r = RAY_REF_NIL;
    int rc = (seq % 2) ? ray_actor_call_id(a->actor, a->rec_id, args, 2, NULL, &r)
                       : ray_actor_call(a->actor, "rec", args, 2, NULL, &r);
    RT_CHECK(a->errs, rc == 0, rc);
    if (tmp.id != 0) ray_ref_release(tmp);
    if (rc != 0) continue;
    if (last.id != 0) ray_ref_release(last);
    last = r;
  }
  int64_t v = -1;
  int rc = ray_get_i64(last, RAY_TIMEOUT_INFINITE, &v);
  RT_CHECK(a->errs, rc == 0 && v == a->n - 1, rc);
  ray_ref_release(last);
}

static void test_order_per_submitter(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t act = mk(&k_order, NULL, 0, NULL);
  rt_errs_t errs;
  rt_errs_init(&errs);
  order_arg_t args[ORDER_THREADS];
  uv_thread_t th[ORDER_THREADS];
  int n = rt_iters(3000, 200);
  for (int i = 0; i < ORDER_THREADS; i++) {
    args[i].actor = act;
    args[i].tid = i;
    args[i].n = n;
    args[i].errs = &errs;
    assert_rc(ray_actor_method(&k_order, "rec", &args[i].rec_id), 0);
    assert_int_equal(uv_thread_create(&th[i], order_thread, &args[i]), 0);
  }
  for (int i = 0; i < ORDER_THREADS; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
  rt_errs_assert(&errs);
  ray_ref_t st[2];
  assert_rc(ray_actor_call(act, "stats", NULL, 0, NULL, st), 0);
  assert_int_equal(take_i64(st[0]), 0); /* violations */
  assert_int_equal(take_i64(st[1]), (int64_t)n * ORDER_THREADS);
  assert_rc(ray_actor_release(act), 0);
  a_end();
}

/* A call waiting for its argument holds back the calls behind it (one
 * submitter's order), but not another actor's calls (1 worker: nothing
 * parks a worker while it waits). */
static void test_order_pending_ref_arg(void **state) {
  (void)state;
  a_begin(1);
  ray_actor_t a = mk_counter(0);
  ray_actor_t b = mk_counter(100);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  ray_ref_t r1 = call1(a, "add", ray_arg_ref(p)); /* waits for p */
  ray_ref_t r2 = add(a, 1);                       /* queued behind r1 */
  ray_ref_t r3 = call0(a, "get");
  /* Another actor's calls run meanwhile, on the only worker. */
  for (int i = 1; i <= 3; i++) assert_int_equal(take_i64(add(b, 1)), 100 + i);
  assert_true(is_pending(r1));
  assert_true(is_pending(r2));
  assert_true(is_pending(r3));
  /* The constructor waits for its ref arguments the same way. */
  ray_ref_t p2;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p2), 0);
  ray_arg_t carg = ray_arg_ref(p2);
  ray_actor_t c = mk(&k_counter, &carg, 1, NULL);
  ray_ref_t r4 = call0(c, "get");
  assert_int_equal(take_i64(add(b, 1)), 104);
  assert_true(is_pending(r4));

  char enc[16];
  size_t n = rt_encode_i64(7, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p, enc, n), 0);
  assert_int_equal(take_i64(r1), 7);
  assert_int_equal(take_i64(r2), 8);
  assert_int_equal(take_i64(r3), 8);
  n = rt_encode_i64(55, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p2, enc, n), 0);
  assert_int_equal(take_i64(r4), 55);
  assert_int_equal(atomic_load(&g_ctors), 3);
  assert_rc(ray_ref_release(p), 0);
  assert_rc(ray_ref_release(p2), 0);

  /* A failed argument fails the call (EDEPFAILED), not the actor. */
  ray_ref_t bad;
  ray_error_t *e = NULL;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &bad), 0);
  assert_rc(ray_error_new(&e, RAY_EIO, "producer", "disk on fire"), 0);
  assert_rc(ray__object_fail(bad, e), 0);
  ray_error_free(e);
  ray_ref_t r5 = call1(a, "add", ray_arg_ref(bad));
  e = expect_fail(r5, RAY_EDEPFAILED);
  assert_true(chain_has(e, RAY_EIO, "disk on fire"));
  ray_error_free(e);
  assert_rc(ray_ref_release(r5), 0);
  assert_int_equal(take_i64(add(a, 1)), 9);
  assert_rc(ray_ref_release(bad), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(b), 0);
  assert_rc(ray_actor_release(c), 0);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 3);
}

/* ---- concurrency ------------------------------------------------------------ */

typedef struct {
  ray_actor_t actor;
  int n;
  rt_errs_t *errs;
} conc_arg_t;

static void conc_thread(void *p) {
  conc_arg_t *a = p;
  ray_ref_t *refs = calloc((size_t)a->n, sizeof *refs);
  RT_CHECK(a->errs, refs != NULL, 0);
  if (refs == NULL) return;
  for (int i = 0; i < a->n; i++) {
    ray_arg_t arg = ray_arg_i64(0);
    int rc = ray_actor_call(a->actor, "work", &arg, 1, NULL, &refs[i]);
    RT_CHECK(a->errs, rc == 0, rc);
  }
  for (int i = 0; i < a->n; i++) {
    int64_t v = 0;
    int rc = ray_get_i64(refs[i], RAY_TIMEOUT_INFINITE, &v);
    RT_CHECK(a->errs, rc == 0, rc);
    ray_ref_release(refs[i]);
  }
  free(refs);
}

/* Calls from 3 host threads at once; returns the live maximum seen. */
static int conc_storm(ray_actor_t actor, int n) {
  atomic_store(&g_max_live, 0);
  rt_errs_t errs;
  rt_errs_init(&errs);
  conc_arg_t arg = {actor, n, &errs};
  uv_thread_t th[3];
  for (int i = 0; i < 3; i++) assert_int_equal(uv_thread_create(&th[i], conc_thread, &arg), 0);
  for (int i = 0; i < 3; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
  rt_errs_assert(&errs);
  return atomic_load(&g_max_live);
}

static void test_max_concurrency_1(void **state) {
  (void)state;
  a_begin(4);
  ray_actor_t other = mk_counter(0);
  for (int variant = 0; variant < 2; variant++) {
    ray_actor_opts_t o;
    ray_actor_opts_init(&o);
    if (variant == 1) o.max_concurrency = 0; /* means 1 */
    ray_actor_t c = mk(&k_conc, NULL, 0, variant == 0 ? NULL : &o);
    atomic_store(&g_runs, 0);
    atomic_store(&g_max_live, 0);
    reset_gate();
    /* One call blocks; those behind it must not start, though 3 workers idle. */
    ray_ref_t first = call1(c, "work", ray_arg_i64(1));
    rt_latch_wait(&g_started, 1);
    ray_ref_t more[8];
    for (int i = 0; i < 8; i++) more[i] = call1(c, "work", ray_arg_i64(0));
    assert_int_equal(take_i64(add(other, 1)), variant + 1); /* the pool is free */
    assert_int_equal(atomic_load(&g_runs), 1);
    for (int i = 0; i < 8; i++) assert_true(is_pending(more[i]));
    rt_latch_signal(&g_go);
    assert_int_equal(take_i64(first), 1);
    for (int i = 0; i < 8; i++) assert_int_equal(take_i64(more[i]), 1);
    assert_int_equal(atomic_load(&g_max_live), 1);
    /* Many calls from several host threads: still one at a time. */
    assert_int_equal(conc_storm(c, rt_iters(2000, 100)), 1);
    assert_rc(ray_actor_release(c), 0);
  }
  assert_rc(ray_actor_release(other), 0);
  a_end();
}

static void test_max_concurrency_4(void **state) {
  (void)state;
  /* More workers than the limit, so the limit is what holds calls back. */
  a_begin(6);
  ray_actor_t other = mk_counter(0);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.max_concurrency = 4;
  ray_actor_t c = mk(&k_conc, NULL, 0, &o);
  ray_ref_t r[8];
  for (int i = 0; i < 8; i++) r[i] = call1(c, "work", ray_arg_i64(1));
  rt_latch_wait(&g_started, 4);                 /* four run at once */
  assert_int_equal(take_i64(add(other, 1)), 1); /* two workers are still free */
  assert_int_equal(atomic_load(&g_runs), 4);    /* and the fifth call waits */
  assert_int_equal(atomic_load(&g_max_live), 4);
  rt_latch_signal(&g_go);
  for (int i = 0; i < 8; i++) {
    int64_t live = take_i64(r[i]);
    assert_true(live >= 1 && live <= 4);
  }
  assert_int_equal(atomic_load(&g_max_live), 4);
  int m = conc_storm(c, rt_iters(2000, 100));
  assert_true(m >= 1 && m <= 4);
  assert_rc(ray_actor_release(c), 0);
  assert_rc(ray_actor_release(other), 0);
  a_end();
}

/* A long mailbox does not starve another actor (1 worker: bounded batches). */
static void test_fairness_between_actors(void **state) {
  (void)state;
  a_begin(1);
  ray_actor_t a = mk_counter(0);
  ray_actor_t b = mk_counter(0);
  ray_ref_t blk = call0(a, "block");
  rt_latch_wait(&g_started, 1); /* the only worker is busy */
  int n = rt_iters(5000, 1000);
  ray_ref_t *refs = calloc((size_t)n, sizeof *refs);
  assert_non_null(refs);
  for (int i = 0; i < n; i++) refs[i] = call0(a, "tick");
  ray_ref_t rb = call0(b, "ticks"); /* how many of a's ran before b's turn */
  rt_latch_signal(&g_go);
  int64_t seen = take_i64(rb);
  for (int i = 0; i < n; i++) assert_int_equal(take_i64(refs[i]), i + 1);
  free(refs);
  assert_int_equal(take_i64(blk), 0);
  if (seen >= n)
    print_error("actor b ran only after all %d queued calls of actor a (saw %lld)\n", n,
                (long long)seen);
  assert_true(seen < n);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(b), 0);
  a_end();
}

/* ---- constructor ------------------------------------------------------------ */

static void test_calls_queue_behind_constructor(void **state) {
  (void)state;
  a_begin(2);
  atomic_store(&g_ctor_block, true);
  ray_actor_t c = mk_counter(5);
  rt_latch_wait(&g_ctor_started, 1);
  ray_ref_t r[3] = {add(c, 1), add(c, 2), call0(c, "get")};
  bool ready[3] = {true, true, true};
  assert_int_equal(ray_wait(r, 3, 1, 0, ready), 0);
  for (int i = 0; i < 3; i++) {
    assert_false(ready[i]);
    assert_true(is_pending(r[i]));
  }
  ray_buf_t b;
  assert_rc(ray_get(r[0], 0, &b), RAY_ETIMEDOUT);
  rt_latch_signal(&g_ctor_go);
  assert_int_equal(take_i64(r[0]), 6);
  assert_int_equal(take_i64(r[1]), 8);
  assert_int_equal(take_i64(r[2]), 8);
  assert_int_equal(atomic_load(&g_ctor_self), c.id);
  assert_rc(ray_actor_release(c), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
}

static void check_ctor_failure(int64_t mode, int want_code, const char *want_msg) {
  a_begin(2);
  atomic_store(&g_ctor_block, true);
  ray_arg_t arg = ray_arg_i64(mode);
  ray_actor_t a = mk(&k_broken, &arg, 1, NULL);
  rt_latch_wait(&g_ctor_started, 1);
  ray_ref_t before = call0(a, "get"); /* queued behind the constructor */
  rt_latch_signal(&g_ctor_go);
  ray_error_t *e = expect_fail(before, RAY_EACTORDIED);
  assert_string_equal(ray_error_origin(e), "Broken.get");
  assert_true(chain_has(ray_error_cause(e), want_code, want_msg));
  ray_error_free(e);
  assert_rc(ray_ref_release(before), 0);
  /* Calls after the death are accepted and fail the same way. */
  for (int i = 0; i < 3; i++) {
    ray_ref_t after = call0(a, "get");
    e = expect_fail(after, RAY_EACTORDIED);
    assert_true(chain_has(e, want_code, want_msg));
    ray_error_free(e);
    assert_rc(ray_ref_release(after), 0);
  }
  assert_rc(ray_actor_kill(a, true), 0); /* dead already: 0 */
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_int_equal(atomic_load(&g_runs), 0);  /* no method ran */
  assert_int_equal(atomic_load(&g_dtors), 0); /* nothing was constructed */
  assert_int_equal(atomic_load(&g_ctors), 1);
}

static void test_constructor_failure(void **state) {
  (void)state;
  check_ctor_failure(0, RAY_ETASK, "ctor boom 42");
  check_ctor_failure(1, RAY_ETASK, NULL);
  check_ctor_failure(2, RAY_EIO, NULL);
}

static void test_constructor_bad_args(void **state) {
  (void)state;
  a_begin(2);
  /* A constructor whose argument failed never runs. */
  ray_ref_t bad;
  ray_error_t *e = NULL;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &bad), 0);
  assert_rc(ray_error_new(&e, RAY_EIO, "producer", "no data"), 0);
  assert_rc(ray__object_fail(bad, e), 0);
  ray_error_free(e);
  ray_arg_t arg = ray_arg_ref(bad);
  ray_actor_t a = mk(&k_counter, &arg, 1, NULL);
  assert_rc(ray_ref_release(bad), 0);
  ray_ref_t r = add(a, 1);
  e = expect_fail(r, RAY_EACTORDIED);
  assert_true(chain_has(e, RAY_EDEPFAILED, NULL));
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  /* A constructor that rejects its argument's type. */
  arg = ray_arg_str("ten");
  ray_actor_t b = mk(&k_counter, &arg, 1, NULL);
  r = add(b, 1);
  e = expect_fail(r, RAY_EACTORDIED);
  assert_true(chain_has(e, RAY_ETYPE, "bad initial value"));
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(b), 0);
  a_end();
  assert_int_equal(atomic_load(&g_ctors), 1); /* only b's ran */
  assert_int_equal(atomic_load(&g_dtors), 0);
}

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

/* ---- actors, tasks and the store ----------------------------------------- */

static void test_actor_handles_as_arguments(void **state) {
  (void)state;
  a_begin(1); /* nested gets must not deadlock a one-worker pool */
  reg_task_add();
  ray_actor_t b = mk_counter(0);
  ray_actor_t r = mk(&k_relay, NULL, 0, NULL);
  /* A task calling an actor. */
  ray_arg_t targs[2] = {ray_arg_actor(b), ray_arg_i64(10)};
  ray_ref_t t;
  assert_rc(ray_task_submit(g_task_add, targs, 2, NULL, &t), 0);
  assert_int_equal(take_i64(t), 10);
  /* An actor calling an actor and waiting for it inside its method. */
  ray_arg_t cargs[2] = {ray_arg_actor(b), ray_arg_i64(5)};
  ray_ref_t c;
  assert_rc(ray_actor_call(r, "call_other", cargs, 2, NULL, &c), 0);
  assert_int_equal(take_i64(c), 15);
  /* An actor calling a task that calls back into another actor. */
  cargs[1] = ray_arg_i64(3);
  assert_rc(ray_actor_call(r, "via_task", cargs, 2, NULL, &c), 0);
  assert_int_equal(take_i64(c), 18);
  /* Many in flight at once, from both paths. */
  int n = rt_iters(50, 10);
  ray_ref_t *refs = calloc((size_t)n * 2, sizeof *refs);
  assert_non_null(refs);
  cargs[1] = ray_arg_i64(1);
  for (int i = 0; i < n; i++) {
    assert_rc(ray_actor_call(r, "call_other", cargs, 2, NULL, &refs[2 * i]), 0);
    targs[1] = ray_arg_i64(1);
    assert_rc(ray_task_submit(g_task_add, targs, 2, NULL, &refs[2 * i + 1]), 0);
  }
  int64_t maxv = 0;
  for (int i = 0; i < 2 * n; i++) {
    int64_t v = take_i64(refs[i]);
    if (v > maxv) maxv = v;
  }
  free(refs);
  assert_int_equal(maxv, 18 + 2 * n);
  assert_int_equal(take_i64(call0(b, "get")), 18 + 2 * n);
  /* An actor keeps a handle it was given; ours goes, the actor lives on. */
  ray_arg_t keep = ray_arg_actor(b);
  assert_rc(ray_actor_call(r, "remember", &keep, 1, NULL, &c), 0);
  assert_int_equal(take_i64(c), 0);
  assert_rc(ray_actor_release(b), 0);
  c = call1(r, "use", ray_arg_i64(1));
  assert_int_equal(take_i64(c), 19 + 2 * n);
  assert_int_equal(atomic_load(&g_dtors), 0);
  /* Releasing the relay releases its handle: both are destroyed. */
  assert_rc(ray_actor_release(r), 0);
  rt_latch_wait(&g_dtor_latch, 1);
  assert_int_equal(atomic_load(&g_relay_dtors), 1);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 1);
  assert_int_equal(atomic_load(&g_relay_dtors), 1);
}

/* A relay still holding a handle at shutdown releases it in its destructor. */
static void test_handle_held_at_shutdown(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t b = mk_counter(0);
  ray_actor_t r = mk(&k_relay, NULL, 0, NULL);
  ray_arg_t keep = ray_arg_actor(b);
  ray_ref_t c;
  assert_rc(ray_actor_call(r, "remember", &keep, 1, NULL, &c), 0);
  assert_int_equal(take_i64(c), 0);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 1);
  assert_int_equal(atomic_load(&g_relay_dtors), 1);
}

static void test_data_sharing_through_store(void **state) {
  (void)state;
  a_begin(2);
  const size_t size = (size_t)4 << 20;
  ray_actor_t p = mk(&k_relay, NULL, 0, NULL);
  ray_actor_t c = mk(&k_relay, NULL, 0, NULL);
  ray_arg_t pargs[2] = {ray_arg_i64((int64_t)size), ray_arg_i64(77)};
  ray_ref_t data;
  assert_rc(ray_actor_call(p, "produce", pargs, 2, NULL, &data), 0);
  assert_int_equal(data.type, RAY_TYPE_BYTES);
  ray_arg_t cargs[2] = {ray_arg_ref(data), ray_arg_i64(77)};
  ray_ref_t got;
  assert_rc(ray_actor_call(c, "consume", cargs, 2, NULL, &got), 0);
  assert_int_equal(take_i64(got), (int64_t)size);
  uintptr_t produced = atomic_load(&g_produce_ptr);
  assert_true(produced != 0);
  assert_true(atomic_load(&g_consume_ptr) == produced); /* read in place */
  ray_buf_t b;
  assert_rc(ray_get(data, 0, &b), 0);
  assert_true((uintptr_t)b.data == produced);
  assert_int_equal(b.size, size);
  ray_buf_release(&b);
  /* Again after our reference is gone: the call holds its own. */
  atomic_store(&g_consume_ptr, 0);
  assert_rc(ray_actor_call(c, "consume", cargs, 2, NULL, &got), 0);
  assert_rc(ray_ref_release(data), 0);
  assert_int_equal(take_i64(got), (int64_t)size);
  assert_true(atomic_load(&g_consume_ptr) == produced);
  assert_rc(ray_actor_release(p), 0);
  assert_rc(ray_actor_release(c), 0);
  a_end();
  assert_int_equal(atomic_load(&rt_frees), 1);
}

/* ---- context and bad input --------------------------------------------------- */

static void test_ctx(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_counter(0);
  assert_int_equal(take_i64(call0(a, "self")), (int64_t)a.id);
  assert_int_equal(atomic_load(&g_ctor_self), a.id);
  ray_function_t probe;
  assert_rc(ray_function_register("probe", task_probe, NULL, rt_t_i64, 1, &probe), 0);
  ray_ref_t r;
  assert_rc(ray_task_submit(probe, NULL, 0, NULL, &r), 0);
  assert_int_equal(take_i64(r), 0);
  ray_actor_t out;
  assert_rc(ray_actor_exit(NULL), RAY_EINVAL);
  assert_rc(ray_ctx_actor(NULL, &out), RAY_EINVAL);
  /* Argument accessors: right and wrong types. */
  ray_actor_t b = mk_counter(0);
  atomic_store(&g_expect_actor, b.id);
  ray_arg_t args[3] = {ray_arg_i64(7), ray_arg_str("s"), ray_arg_actor(b)};
  assert_rc(ray_actor_call(a, "args", args, 3, NULL, &r), 0);
  assert_int_equal(take_i64(r), 1);
  /* A method given the wrong type fails with it (its own choice of code). */
  take_fail(call1(a, "add", ray_arg_str("one")), RAY_ETYPE, "Counter.add");
  take_fail(call1(a, "add", ray_arg_actor(b)), RAY_ETYPE, "Counter.add");
  assert_int_equal(take_i64(call0(a, "get")), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_actor_release(b), 0);
  a_end();
}

static void test_method_failure(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_counter(4);
  ray_ref_t r = call0(a, "fail");
  ray_error_t *e = expect_fail(r, RAY_ETASK);
  assert_string_equal(ray_error_origin(e), "Counter.fail");
  assert_non_null(strstr(ray_error_message(e), "bad 7"));
  assert_true(ray_error_task_id(e) != 0);
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  /* A failing method does not end the actor. */
  assert_int_equal(take_i64(add(a, 1)), 5);
  assert_int_equal(atomic_load(&g_dtors), 0);
  assert_rc(ray_actor_release(a), 0);
  a_end();
}

/* The header: "opts: only num_returns (a check) is used" for actor calls. */
static void test_call_opts_only_num_returns(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_counter(4);
  ray_ref_t r;
  ray_error_t *e;
  ray_task_opts_t to;
  ray_task_opts_init(&to);
  to.max_retries = 3;
  to.retry_on_error = true;
  to.name = "renamed";
  atomic_store(&g_fails, 0);
  assert_rc(ray_actor_call(a, "fail", NULL, 0, &to, &r), 0);
  e = expect_fail(r, RAY_ETASK);
  const char *origin = ray_error_origin(e);
  bool origin_ok = strcmp(origin, "Counter.fail") == 0;
  if (!origin_ok) print_error("call opts: error origin is \"%s\", not Counter.fail\n", origin);
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  int fails = atomic_load(&g_fails);
  if (fails != 1) print_error("call opts: the failing method ran %d times, not once\n", fails);
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_true(origin_ok);
  assert_int_equal(fails, 1);
}

/* ray_ctx_arg_ref on an actor argument: it was not passed as a ref. */
static void test_ctx_arg_ref_of_actor(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_counter(0);
  ray_arg_t self = ray_arg_actor(a);
  ray_ref_t r;
  assert_rc(ray_actor_call(a, "actor_ref", &self, 1, NULL, &r), 0);
  int64_t rc = take_i64(r);
  assert_rc(ray_actor_release(a), 0);
  a_end();
  assert_rc((int)rc, RAY_ETYPE);
}

static void test_call_invalid(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_counter(0);
  ray_ref_t r[2];
  ray_arg_t one = ray_arg_i64(1);
  ray_arg_t args[RAY_MAX_ARGS + 1];
  for (size_t i = 0; i < RAY_MAX_ARGS + 1; i++) args[i] = ray_arg_i64(1);
  assert_rc(ray_actor_call(a, "add", &one, 1, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_actor_call_id(a, 0, &one, 1, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_actor_call(a, NULL, &one, 1, NULL, r), RAY_EINVAL);
  assert_rc(ray_actor_call(a, "add", NULL, 1, NULL, r), RAY_EINVAL);
  assert_rc(ray_actor_call(a, "add", args, RAY_MAX_ARGS + 1, NULL, r), RAY_EINVAL);
  ray_arg_t bad = ray_arg_str(NULL);
  assert_rc(ray_actor_call(a, "add", &bad, 1, NULL, r), RAY_EINVAL);
  bad = ray_arg_i64(1);
  bad.type = RAY_TYPE_ACTOR; /* a value cannot claim to be an actor */
  assert_rc(ray_actor_call(a, "add", &bad, 1, NULL, r), RAY_EINVAL);
  ray_task_opts_t to;
  ray_task_opts_init(&to);
  to.num_returns = 2;
  assert_rc(ray_actor_call(a, "add", &one, 1, &to, r), RAY_EINVAL);
  /* Unknown method, index, actor; unknown or released arguments. */
  assert_rc(ray_actor_call(a, "nope", &one, 1, NULL, r), RAY_ENOTFOUND);
  assert_rc(ray_actor_call(a, "", &one, 1, NULL, r), RAY_ENOTFOUND);
  assert_rc(ray_actor_call_id(a, (uint32_t)N_COUNTER_METHODS, &one, 1, NULL, r), RAY_ENOTFOUND);
  assert_rc(ray_actor_call_id(a, UINT32_MAX, &one, 1, NULL, r), RAY_ENOTFOUND);
  ray_actor_t nobody = {UINT64_MAX - 5}, zero = {0};
  assert_rc(ray_actor_call(nobody, "add", &one, 1, NULL, r), RAY_ENOTFOUND);
  assert_rc(ray_actor_call(zero, "add", &one, 1, NULL, r), RAY_ENOTFOUND);
  assert_rc(ray_actor_retain(nobody), RAY_ENOTFOUND);
  assert_rc(ray_actor_release(nobody), RAY_ENOTFOUND);
  assert_rc(ray_actor_release(zero), RAY_ENOTFOUND);
  ray_ref_t gone;
  assert_rc(ray_put_i64(1, &gone), 0);
  assert_rc(ray_ref_release(gone), 0);
  bad = ray_arg_ref(gone);
  assert_rc(ray_actor_call(a, "add", &bad, 1, NULL, r), RAY_ENOTFOUND);
  bad = ray_arg_ref(RAY_REF_NIL);
  assert_rc(ray_actor_call(a, "add", &bad, 1, NULL, r), RAY_ENOTFOUND);
  bad = ray_arg_actor(nobody);
  assert_rc(ray_actor_call(a, "add", &bad, 1, NULL, r), RAY_ENOTFOUND);
  bad = ray_arg_actor(zero);
  assert_rc(ray_actor_call(a, "add", &bad, 1, NULL, r), RAY_ENOTFOUND);
  ray_function_t f;
  assert_rc(ray_function_register("task_add", task_add, NULL, rt_t_i64, 1, &f), 0);
  ray_arg_t targs[2] = {ray_arg_actor(nobody), ray_arg_i64(1)};
  assert_rc(ray_task_submit(f, targs, 2, NULL, r), RAY_ENOTFOUND);
  /* None of that reached the actor. */
  assert_int_equal(take_i64(call0(a, "get")), 0);
  assert_rc(ray_actor_release(a), 0);
  a_end();
}

/* ---- shutdown ------------------------------------------------------------- */

static void test_shutdown_live_actors(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.name = "live";
  ray_actor_t a = mk(&k_counter, NULL, 0, &o);
  o.name = NULL;
  o.detached = true;
  ray_actor_t b = mk(&k_counter, NULL, 0, &o);
  ray_actor_t c = mk_counter(0);
  assert_int_equal(take_i64(add(a, 1)), 1);
  assert_int_equal(take_i64(add(b, 1)), 1);
  assert_int_equal(take_i64(add(c, 1)), 1);
  assert_rc(ray_actor_retain(c), 0); /* two handles left unreleased */
  a_end();
  assert_int_equal(atomic_load(&g_dtors), 3);
}

static void test_shutdown_queued_calls(void **state) {
  (void)state;
  a_begin(1);
  rt_cb_rec_t rec[6];
  for (int i = 0; i < 6; i++) rt_cb_rec_init(&rec[i], NULL);
  /* a: a call waiting for an argument that never comes, calls behind it. */
  ray_actor_t a = mk_counter(0);
  assert_int_equal(take_i64(add(a, 1)), 1);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  ray_ref_t r[6];
  r[0] = call1(a, "add", ray_arg_ref(p));
  r[1] = add(a, 1);
  r[2] = add(a, 1);
  /* b: its constructor waits for an argument that never comes. */
  ray_arg_t carg = ray_arg_ref(p);
  ray_actor_t b = mk(&k_counter, &carg, 1, NULL);
  r[3] = call0(b, "get");
  r[4] = call0(b, "get");
  /* c: released with calls queued behind a pending one. */
  ray_actor_t c = mk_counter(0);
  assert_int_equal(take_i64(add(c, 0)), 0);
  r[5] = call1(c, "add", ray_arg_ref(p));
  assert_rc(ray_actor_release(c), 0);
  for (int i = 0; i < 6; i++) assert_rc(ray_ref_on_ready(r[i], rt_cb_record, &rec[i]), 0);
  for (int i = 0; i < 6; i++) assert_true(is_pending(r[i]));
  a_end();
  for (int i = 0; i < 6; i++) {
    assert_int_equal(atomic_load(&rec[i].calls), 1);
    assert_int_equal(atomic_load(&rec[i].status), RAY_ESHUTDOWN);
  }
  assert_int_equal(atomic_load(&g_ctors), 2); /* b's never ran */
  assert_int_equal(atomic_load(&g_dtors), 2); /* a and c, once each */
}

typedef struct {
  atomic_int rc;
} shut_arg_t;

static void shutdown_thread(void *p) {
  shut_arg_t *s = p;
  atomic_store(&s->rc, ray_shutdown());
}

/* Shutdown while a call runs: it finishes, the queued ones fail, the
 * destructor runs once. */
static void test_shutdown_with_running_call(void **state) {
  (void)state;
  a_begin(2);
  ray_actor_t a = mk_counter(9);
  ray_ref_t blk = call0(a, "block");
  rt_latch_wait(&g_started, 1);
  ray_ref_t q[3] = {add(a, 1), add(a, 2), add(a, 3)};
  rt_cb_rec_t rec[4];
  for (int i = 0; i < 4; i++) rt_cb_rec_init(&rec[i], NULL);
  assert_rc(ray_ref_on_ready(blk, rt_cb_record, &rec[0]), 0);
  for (int i = 0; i < 3; i++) assert_rc(ray_ref_on_ready(q[i], rt_cb_record, &rec[i + 1]), 0);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p), 0);
  rt_latch_t begun;
  rt_latch_init(&begun);
  rt_cb_rec_t prec;
  rt_cb_rec_init(&prec, &begun);
  assert_rc(ray_ref_on_ready(p, rt_cb_record, &prec), 0);
  shut_arg_t s;
  atomic_init(&s.rc, 1);
  uv_thread_t th;
  assert_int_equal(uv_thread_create(&th, shutdown_thread, &s), 0);
  /* Shutdown has begun once it fails p; the call is still running then. */
  rt_latch_wait(&begun, 1);
  assert_int_equal(atomic_load(&prec.status), RAY_ESHUTDOWN);
  assert_int_equal(atomic_load(&g_dtors), 0);
  rt_latch_signal(&g_go);
  assert_int_equal(uv_thread_join(&th), 0);
  assert_rc(atomic_load(&s.rc), 0);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
  rt_assert_no_leaks();
  rt_errs_assert(&g_errs);
  a_latches_destroy();
  rt_latch_destroy(&begun);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(atomic_load(&rec[i].calls), 1);
    assert_int_equal(atomic_load(&rec[i].status), RAY_ESHUTDOWN);
  }
  assert_int_equal(atomic_load(&g_runs), 1);
  assert_int_equal(atomic_load(&g_dtors), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_opts_init),
      cmocka_unit_test(test_method_lookup),
      cmocka_unit_test(test_class_invalid),
      cmocka_unit_test(test_not_init),
      cmocka_unit_test(test_call_basic),
      cmocka_unit_test(test_results_typed_at_submission),
      cmocka_unit_test(test_order_per_submitter),
      cmocka_unit_test(test_order_pending_ref_arg),
      cmocka_unit_test(test_max_concurrency_1),
      cmocka_unit_test(test_max_concurrency_4),
      cmocka_unit_test(test_fairness_between_actors),
      cmocka_unit_test(test_calls_queue_behind_constructor),
      cmocka_unit_test(test_constructor_failure),
      cmocka_unit_test(test_constructor_bad_args),
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
      cmocka_unit_test(test_task_retries),
      cmocka_unit_test(test_kill_restart),
      cmocka_unit_test(test_actor_handles_as_arguments),
      cmocka_unit_test(test_handle_held_at_shutdown),
      cmocka_unit_test(test_data_sharing_through_store),
      cmocka_unit_test(test_ctx),
      cmocka_unit_test(test_method_failure),
      cmocka_unit_test(test_call_opts_only_num_returns),
      cmocka_unit_test(test_ctx_arg_ref_of_actor),
      cmocka_unit_test(test_call_invalid),
      cmocka_unit_test(test_shutdown_live_actors),
      cmocka_unit_test(test_shutdown_queued_calls),
      cmocka_unit_test(test_shutdown_with_running_call),
  };
  rt_main_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
