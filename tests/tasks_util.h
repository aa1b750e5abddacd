/* tasks_util.h - what the remote-function test programs share: test_tasks.c,
 * test_task_args.c, test_task_results.c and test_retries_cancel.c.
 *
 * State: the counters and latches the task functions use (reset by t_begin,
 * checked by t_end), the msgpack helpers and the task functions several of
 * the programs register. Functions run on worker threads, where cmocka must
 * not be used: they record failed checks into g_errs (TC) and every test
 * asserts it after its runtime is shut down (all tasks have then finished).
 * Tasks that must stay put while the main thread looks at something wait on
 * a latch (g_started / g_go). Everything is static (inline): each program
 * has its own copy of the state. */
#ifndef RAY_TASKS_UTIL_H
#define RAY_TASKS_UTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <sched.h>

#include "test_util.h"

/* ---- shared state --------------------------------------------------------- */

static rt_errs_t g_errs;               /* checks made inside tasks */
static atomic_int g_calls;             /* invocations of fn_sum / the function under test */
static atomic_int g_blocks;            /* invocations of fn_block */
static rt_latch_t g_started;           /* signalled by tasks when they start */
static rt_latch_t g_go;                /* tasks wait on it */
static atomic_uint_fast64_t g_task_id; /* a task's id, recorded from inside it */

/* In a task: record a failed check. */
#define TC(cond, value) RT_CHECK(&g_errs, (cond), (value))

static inline void t_reset(void) {
  rt_errs_init(&g_errs);
  atomic_store(&g_calls, 0);
  atomic_store(&g_blocks, 0);
  atomic_store(&rt_frees, 0);
  atomic_store(&g_task_id, 0);
  rt_latch_init(&g_started);
  rt_latch_init(&g_go);
}

static inline void t_begin_cfg(unsigned workers, size_t inline_threshold) {
  t_reset();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.num_workers = workers;
  cfg.inline_threshold = inline_threshold;
  rt_begin_cfg(&cfg);
}

static inline void t_begin(unsigned workers) {
  t_begin_cfg(workers, 1024);
}

/* Shut down cleanly (every task has finished), then check what the tasks saw. */
static inline void t_end(void) {
  rt_end();
  rt_errs_assert(&g_errs);
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
}

static inline size_t chain_len(const ray_error_t *e) {
  size_t n = 0;
  for (; e != NULL; e = ray_error_cause(e)) n++;
  return n;
}

static inline bool str_contains(const char *hay, const char *needle) {
  return hay != NULL && strstr(hay, needle) != NULL;
}

/* msgpack helpers: a packed value unpacked into `u` (both destroyed by the caller). */
typedef struct {
  msgpack_sbuffer sb;
  msgpack_unpacked u;
} mp_val_t;

static inline void mp_unpack(mp_val_t *v) {
  size_t off = 0;
  msgpack_unpacked_init(&v->u);
  assert_int_equal(msgpack_unpack_next(&v->u, v->sb.data, v->sb.size, &off),
                   MSGPACK_UNPACK_SUCCESS);
}

/* {"k": [1, "two", 3.5, nil, true]} */
static inline void mp_sample(mp_val_t *v) {
  msgpack_packer pk;
  msgpack_sbuffer_init(&v->sb);
  msgpack_packer_init(&pk, &v->sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str(&pk, 1);
  msgpack_pack_str_body(&pk, "k", 1);
  msgpack_pack_array(&pk, 5);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str(&pk, 3);
  msgpack_pack_str_body(&pk, "two", 3);
  msgpack_pack_double(&pk, 3.5);
  msgpack_pack_nil(&pk);
  msgpack_pack_true(&pk);
  mp_unpack(v);
}

/* A bin of n pattern bytes (larger than the inline threshold when n is). */
static inline void mp_bin(mp_val_t *v, size_t n, uint64_t seed) {
  msgpack_packer pk;
  unsigned char *tmp = malloc(n);
  assert_non_null(tmp);
  rt_fill(tmp, n, seed);
  msgpack_sbuffer_init(&v->sb);
  msgpack_packer_init(&pk, &v->sb, msgpack_sbuffer_write);
  msgpack_pack_bin(&pk, n);
  msgpack_pack_bin_body(&pk, tmp, n);
  free(tmp);
  mp_unpack(v);
}

static inline void mp_free(mp_val_t *v) {
  msgpack_unpacked_destroy(&v->u);
  msgpack_sbuffer_destroy(&v->sb);
}

/* ---- task functions used by many tests ------------------------------------ */

/* Sum of its i64 arguments (any number); one I64 result. */
static inline int fn_sum(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  int64_t s = 0;
  for (size_t i = 0; i < ray_ctx_nargs(ctx); i++) {
    int64_t v = 0;
    int rc = ray_ctx_arg_i64(ctx, i, &v);
    if (rc != 0) return ray_fail(ctx, rc, "argument %zu: %s", i, ray_err_name(rc));
    s += v;
  }
  return ray_return_i64(ctx, 0, s);
}

/* Signals g_started, waits for g_go, returns 1 (one I64 result). */
static inline int fn_block(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_blocks, 1);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  return ray_return_i64(ctx, 0, 1);
}

/* Fails with ETASK "root failure". */
static inline int fn_root_fail(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_store(&g_task_id, ray_ctx_task_id(ctx));
  return ray_fail(ctx, RAY_ETASK, "root failure");
}

/* Every accessor on argument i of `type`: only the matching one succeeds. */
static inline void check_accessors(ray_task_ctx_t *ctx, size_t i, uint32_t type) {
  int64_t v;
  double d;
  const char *s;
  size_t len;
  const void *p;
  size_t n;
  msgpack_object o;
  int tag = (int)(i * 10);
  TC(ray_ctx_arg_i64(ctx, i, &v) == (type == RAY_TYPE_I64 ? 0 : RAY_ETYPE), tag + 1);
  TC(ray_ctx_arg_f64(ctx, i, &d) == (type == RAY_TYPE_F64 ? 0 : RAY_ETYPE), tag + 2);
  TC(ray_ctx_arg_str(ctx, i, &s, &len) == (type == RAY_TYPE_STR ? 0 : RAY_ETYPE), tag + 3);
  TC(ray_ctx_arg_msgpack(ctx, i, &o) == (type == RAY_TYPE_MSGPACK ? 0 : RAY_ETYPE), tag + 4);
  if (type < RAY_TYPE_USER) /* a user tag through the bytes accessor: see the ref test */
    TC(ray_ctx_arg_bytes(ctx, i, &p, &n) == (type == RAY_TYPE_BYTES ? 0 : RAY_ETYPE), tag + 5);
}

/* Index i out of range for every accessor. */
static inline void check_out_of_range(ray_task_ctx_t *ctx, size_t i) {
  int64_t v;
  double d;
  const char *s;
  size_t len;
  const void *p;
  size_t n;
  msgpack_object o;
  ray_ref_t r;
  TC(ray_ctx_arg_type(ctx, i) == 0, (int)i);
  TC(ray_ctx_arg_i64(ctx, i, &v) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_f64(ctx, i, &d) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_str(ctx, i, &s, &len) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_bytes(ctx, i, &p, &n) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_msgpack(ctx, i, &o) == RAY_EINVAL, (int)i);
  TC(ray_ctx_arg_ref(ctx, i, &r) == RAY_EINVAL, (int)i);
}

static const uint32_t k_typed[] = {RAY_TYPE_STR, RAY_TYPE_I64, RAY_TYPE_USER + 3, RAY_TYPE_MSGPACK,
                                   RAY_TYPE_F64};

static inline int fn_typed(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  msgpack_object nil;
  memset(&nil, 0, sizeof nil);
  nil.type = MSGPACK_OBJECT_NIL;
  TC(ray_return_str(ctx, 0, "typed") == 0, 0);
  TC(ray_return_i64(ctx, 1, 5) == 0, 1);
  TC(ray_return_bytes(ctx, 2, "u3", 2) == 0, 2);
  TC(ray_return_msgpack(ctx, 3, &nil) == 0, 3);
  TC(ray_return_f64(ctx, 4, 1.25) == 0, 4);
  return 0;
}

static inline void *owned(size_t n, uint64_t seed) {
  void *p = malloc(n ? n : 1);
  if (p != NULL) rt_fill(p, n, seed);
  return p;
}

static inline ray_ref_t pending_bytes(void) {
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  return p;
}

static inline ray_error_t *upstream_error(void) {
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_EIO, "upstream", "src broke %d", 9), 0);
  return e;
}

#endif /* RAY_TASKS_UTIL_H */
