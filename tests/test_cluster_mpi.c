/* test_cluster_mpi.c - cluster mode on MPI, run under mpirun (ctest label
 * "mpi": 1, 2 and 4 ranks, over shared memory and over TCP).
 *
 * Every rank calls ray_init in cluster mode. Ranks >= 1 call ray_serve and
 * exit with its code; rank 0, the driver, runs the cmocka group, whose
 * setup and teardown bracket one runtime (MPI starts once per process).
 * mpirun fails when any rank exits non-zero, so a worker rank that does not
 * stop cleanly fails the test too.
 *
 * With the argument "mismatch", rank 1 registers one function more than
 * the others; with "mismatch_types", ranks >= 1 register "inc" with another
 * return type: ray_init must fail on every rank with RAY_EINVAL, logging an
 * error that names the function. "observe" checks the timeline and metrics
 * per rank; "serve_in_init" checks ray_config_t.cluster_serve_in_init;
 * "small_store" pulls large results into a store too small for them;
 * "lost_peer" takes a rank as lost (RAY_ENODE); "host_mpi" and
 * "host_mpi_single" run on an MPI the host initialised; "spmd" makes every
 * rank a driver of actors on every rank, with a collective shutdown. */
#include "test_util.h"

#include <mpi.h>

/* ---- The functions every rank registers ---- */

static const uint32_t k_i64[] = {RAY_TYPE_I64};
static const uint32_t k_f64[] = {RAY_TYPE_F64};
static const uint32_t k_str[] = {RAY_TYPE_STR};
static const uint32_t k_bytes[] = {RAY_TYPE_BYTES};
static const uint32_t k_msgpack[] = {RAY_TYPE_MSGPACK};

/* The rank it runs on. */
static int fn_whoami(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_i64(ctx, 0, ray_rank());
}

/* The rank its own task id names, if a ref it puts names the same one;
 * else -1. */
static int fn_id_owner(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_ref_t r;
  int rc = ray_put_i64(1, &r);
  if (rc != 0) return rc;
  uint64_t put_owner = r.id >> 48, task_owner = ray_ctx_task_id(ctx) >> 48;
  ray_ref_release(r);
  return ray_return_i64(ctx, 0, put_owner == task_owner ? (int64_t)task_owner : -1);
}

/* Its argument back (registered once per type: echo_i64, echo_str, ...). */
static int fn_echo(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  switch (ray_ctx_arg_type(ctx, 0)) {
    case RAY_TYPE_I64: {
      int64_t v;
      int rc = ray_ctx_arg_i64(ctx, 0, &v);
      return rc != 0 ? rc : ray_return_i64(ctx, 0, v);
    }
    case RAY_TYPE_F64: {
      double v;
      int rc = ray_ctx_arg_f64(ctx, 0, &v);
      return rc != 0 ? rc : ray_return_f64(ctx, 0, v);
    }
    case RAY_TYPE_STR: { /* the view is not NUL-terminated */
      const char *s;
      size_t n;
      char copy[256];
      int rc = ray_ctx_arg_str(ctx, 0, &s, &n);
      if (rc != 0) return rc;
      if (n >= sizeof copy) return ray_fail(ctx, RAY_EINVAL, "string too long");
      memcpy(copy, s, n);
      copy[n] = '\0';
      return ray_return_str(ctx, 0, copy);
    }
    case RAY_TYPE_MSGPACK: {
      msgpack_object o;
      int rc = ray_ctx_arg_msgpack(ctx, 0, &o);
      return rc != 0 ? rc : ray_return_msgpack(ctx, 0, &o);
    }
    default: {
      const void *d;
      size_t n;
      int rc = ray_ctx_arg_bytes(ctx, 0, &d, &n);
      return rc != 0 ? rc : ray_return_bytes(ctx, 0, d, n);
    }
  }
}

/* Its i64 argument + 1. */
static int fn_inc(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t v;
  int rc = ray_ctx_arg_i64(ctx, 0, &v);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, v + 1);
}

/* The sum of its i64 arguments. */
static int fn_sum(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t s = 0;
  for (size_t i = 0; i < ray_ctx_nargs(ctx); i++) {
    int64_t v;
    int rc = ray_ctx_arg_i64(ctx, i, &v);
    if (rc != 0) return rc;
    s += v;
  }
  return ray_return_i64(ctx, 0, s);
}

/* Fails, saying where. */
static int fn_boom(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_fail(ctx, RAY_ETASK, "boom on rank %d", ray_rank());
}

/* Fails its first two attempts; then returns the attempt. */
static int fn_flaky(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  uint32_t a = ray_ctx_attempt(ctx);
  if (a < 3) return ray_fail(ctx, RAY_ETASK, "attempt %u fails", a);
  return ray_return_i64(ctx, 0, (int64_t)a);
}

static ray_function_t g_fib;

/* fib(n) by nested tasks on the rank it runs on, each got from inside. */
static int fn_fib(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t n;
  int rc = ray_ctx_arg_i64(ctx, 0, &n);
  if (rc != 0) return rc;
  if (n < 2) return ray_return_i64(ctx, 0, n);
  ray_ref_t r[2];
  for (int i = 0; i < 2; i++) {
    ray_arg_t a = ray_arg_i64(n - 1 - i);
    if ((rc = ray_task_submit(g_fib, &a, 1, NULL, &r[i])) != 0) return rc;
  }
  int64_t v[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    int g = ray_get_i64(r[i], RAY_TIMEOUT_INFINITE, &v[i]);
    ray_ref_release(r[i]);
    if (g != 0 && rc == 0) rc = g;
  }
  return rc != 0 ? rc : ray_return_i64(ctx, 0, v[0] + v[1]);
}

/* Puts a value on its rank and returns it read back. */
static int fn_put_get(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t v;
  int rc = ray_ctx_arg_i64(ctx, 0, &v);
  if (rc != 0) return rc;
  ray_ref_t r;
  if ((rc = ray_put_i64(v * 2, &r)) != 0) return rc;
  int64_t back = 0;
  rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &back);
  ray_ref_release(r);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, back);
}

/* Returns a msgpack value holding a ref of its rank, to 5. */
static int fn_leak_ref(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_ref_t r;
  int rc = ray_put_i64(5, &r);
  if (rc != 0) return rc;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 1);
  ray_msgpack_pack_ref(&pk, r);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  msgpack_unpack_next(&u, sb.data, sb.size, NULL);
  rc = ray_return_msgpack(ctx, 0, &u.data);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  ray_ref_release(r);
  return rc;
}

/* msgpack [refs..., ints...] into sb (initialised here). */
static void pack_refs(msgpack_sbuffer *sb, const ray_ref_t *refs, int nrefs, const int64_t *ints,
                      int nints) {
  msgpack_sbuffer_init(sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, (size_t)(nrefs + nints));
  for (int i = 0; i < nrefs; i++) ray_msgpack_pack_ref(&pk, refs[i]);
  for (int i = 0; i < nints; i++) msgpack_pack_int64(&pk, ints[i]);
}

/* Return [refs..., ints...] as the task's result 0 (which holds the refs). */
static int return_refs(ray_task_ctx_t *ctx, const ray_ref_t *refs, int nrefs, const int64_t *ints,
                       int nints) {
  msgpack_sbuffer sb;
  pack_refs(&sb, refs, nrefs, ints, nints);
  int rc = ray_return_msgpack_bytes(ctx, 0, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  return rc;
}

/* Element i of a msgpack array: a ref (RAY_TYPE_I64 ones), or an int. */
static int elem_ref(const msgpack_object *o, uint32_t i, ray_ref_t *out) {
  if (o->type != MSGPACK_OBJECT_ARRAY || i >= o->via.array.size) return RAY_EDECODE;
  return ray_msgpack_ref(&o->via.array.ptr[i], out);
}
static int64_t elem_int(const msgpack_object *o, uint32_t i) {
  if (o->type != MSGPACK_OBJECT_ARRAY || i >= o->via.array.size) return -1;
  const msgpack_object *e = &o->via.array.ptr[i];
  return e->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)e->via.u64 : e->via.i64;
}

/* A ref passed along ranks: arg 0 is [ref, value seen so far, hop ranks
 * left...]. With hops left it passes [ref, seen, rest...] on to the next
 * rank and returns what came back; at the last rank it reads the ref (a
 * proxy of another rank's object) and returns [ref, ref2, value, rank],
 * ref2 a put of value * 10 made there. */
static ray_function_t g_pass_ref;
static int fn_pass_ref(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  msgpack_object o;
  int rc = ray_ctx_arg_msgpack(ctx, 0, &o);
  ray_ref_t ref;
  if (rc == 0) rc = elem_ref(&o, 0, &ref);
  if (rc != 0) return rc;
  uint32_t n = o.via.array.size;
  msgpack_sbuffer sb;
  if (n > 2) { /* on to the next rank */
    ray_task_opts_t opt;
    ray_task_opts_init(&opt);
    opt.node = (int32_t)elem_int(&o, 2);
    /* [ref, seen, the hops after the next...] */
    int64_t tail[8];
    int ntail = 0;
    tail[ntail++] = elem_int(&o, 1);
    for (uint32_t i = 3; i < n && ntail < 8; i++) tail[ntail++] = elem_int(&o, i);
    pack_refs(&sb, &ref, 1, tail, ntail);
    ray_arg_t a = ray_arg_msgpack_bytes(sb.data, sb.size);
    ray_ref_t r;
    rc = ray_task_submit(g_pass_ref, &a, 1, &opt, &r);
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0) return rc;
    ray_buf_t b;
    rc = ray_get(r, RAY_TIMEOUT_INFINITE, &b);
    if (rc == 0) {
      rc = ray_return_msgpack_bytes(ctx, 0, b.data, b.size); /* the refs inside travel on */
      ray_buf_release(&b);
    }
    ray_ref_release(r);
    return rc;
  }
  int64_t v = -1;
  if ((rc = ray_get_i64(ref, RAY_TIMEOUT_INFINITE, &v)) != 0) return rc;
  ray_ref_t mine;
  if ((rc = ray_put_i64(v * 10, &mine)) != 0) return rc;
  ray_ref_t both[2] = {ref, mine};
  int64_t tail[2] = {v, ray_rank()};
  rc = return_refs(ctx, both, 2, tail, 2);
  ray_ref_release(mine); /* the result holds it */
  return rc;
}

/* arg 0 is [ref]: returns [a put of the ref's value + 1, made here]. */
static ray_function_t g_unwrap_inc;
static int fn_unwrap_inc(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  msgpack_object o;
  ray_ref_t ref, mine;
  int64_t v = 0;
  int rc = ray_ctx_arg_msgpack(ctx, 0, &o);
  if (rc == 0) rc = elem_ref(&o, 0, &ref);
  if (rc == 0) rc = ray_get_i64(ref, RAY_TIMEOUT_INFINITE, &v);
  if (rc == 0) rc = ray_put_i64(v + 1, &mine);
  if (rc != 0) return rc;
  rc = return_refs(ctx, &mine, 1, NULL, 0);
  ray_ref_release(mine);
  return rc;
}

/* Waits (up to 60 s, so a broken test cannot hang) until the driver opens
 * the gate; runs on the driver's rank, whose memory it shares. */
static atomic_bool g_gate_open;
static int fn_gate(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  for (int i = 0; i < 60000 && !atomic_load(&g_gate_open); i++) uv_sleep(1);
  return ray_return_i64(ctx, 0, atomic_load(&g_gate_open) ? 1 : 0);
}

/* Runs until cancelled (at most 60 s: then it returns 0, failing the test
 * that expected the cancel rather than hanging it). */
static int fn_until_cancelled(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  for (int i = 0; i < 60000; i++) {
    if (ray_task_is_cancelled(ctx))
      return ray_fail(ctx, RAY_ECANCELED, "stopped on rank %d", ray_rank());
    uv_sleep(1);
  }
  return ray_return_i64(ctx, 0, 0);
}

/* nap(ms): sleeps that long (1 ms at a time, less if cancelled), then
 * gives the rank it ran on. */
static int fn_nap(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t ms = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &ms);
  if (rc != 0) return rc;
  for (int64_t i = 0; i < ms && !ray_task_is_cancelled(ctx); i++) uv_sleep(1);
  return ray_return_i64(ctx, 0, ray_rank());
}

/* nap_wrapped(ms): [a ref to a nap(ms) submitted here], at once (the nap
 * is still pending when the answer goes). */
static ray_function_t g_nap_wrapped, g_nap;
static int fn_nap_wrapped(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t ms = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &ms);
  if (rc != 0) return rc;
  ray_arg_t a = ray_arg_i64(ms);
  ray_ref_t nap;
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = ray_rank();
  if ((rc = ray_task_submit(g_nap, &a, 1, &o, &nap)) != 0) return rc;
  rc = return_refs(ctx, &nap, 1, NULL, 0);
  ray_ref_release(nap);
  return rc;
}

static ray_function_t g_hop, g_big, g_whoami;

/* hop(k): 0 gives the rank it runs on; otherwise it places hop(k - 1) on
 * the next rank (wrapping to 0) and returns what that gave. */
static int fn_hop(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t k;
  int rc = ray_ctx_arg_i64(ctx, 0, &k);
  if (rc != 0) return rc;
  if (k == 0) return ray_return_i64(ctx, 0, ray_rank());
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = (ray_rank() + 1) % ray_num_ranks();
  ray_arg_t a = ray_arg_i64(k - 1);
  ray_ref_t r;
  if ((rc = ray_task_submit(g_hop, &a, 1, &o, &r)) != 0) return rc;
  int64_t v = -1;
  rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
  ray_ref_release(r);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, v);
}

/* big(n): n bytes of pattern, made where it runs. */
static int fn_big(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t n;
  int rc = ray_ctx_arg_i64(ctx, 0, &n);
  if (rc != 0) return rc;
  unsigned char *p = malloc((size_t)n + 1);
  if (p == NULL) return ray_fail(ctx, RAY_ENOMEM, "no memory");
  for (int64_t i = 0; i < n; i++) p[i] = rt_pat(7, (size_t)i);
  rc = ray_return_bytes(ctx, 0, p, (size_t)n);
  free(p);
  return rc;
}

/* fetch_big(n): places big(n) on the next rank and checks every byte. */
static int fn_fetch_big(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t n;
  int rc = ray_ctx_arg_i64(ctx, 0, &n);
  if (rc != 0) return rc;
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = (ray_rank() + 1) % ray_num_ranks();
  ray_arg_t a = ray_arg_i64(n);
  ray_ref_t r;
  if ((rc = ray_task_submit(g_big, &a, 1, &o, &r)) != 0) return rc;
  ray_buf_t b;
  rc = ray_get(r, RAY_TIMEOUT_INFINITE, &b);
  int64_t bad = 0;
  if (rc == 0) {
    bad = (int64_t)b.size != n;
    for (size_t i = 0; !bad && i < b.size; i++)
      bad = ((const unsigned char *)b.data)[i] != rt_pat(7, i);
    ray_buf_release(&b);
  }
  ray_ref_release(r);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, bad ? -1 : n);
}

/* The rank a task placed with RAY_NODE_ANY from inside this one ran on. */
static int fn_nested_any(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_ref_t r;
  int rc = ray_task_submit(g_whoami, NULL, 0, NULL, &r);
  if (rc != 0) return rc;
  int64_t v = -1;
  rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
  ray_ref_release(r);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, v);
}

/* check_big(bytes): the size of its argument if every byte is big's
 * pattern, else -1. */
static int fn_check_big(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *data;
  size_t size;
  int rc = ray_ctx_arg_bytes(ctx, 0, &data, &size);
  if (rc != 0) return rc;
  for (size_t i = 0; i < size; i++)
    if (((const unsigned char *)data)[i] != rt_pat(7, i)) return ray_return_i64(ctx, 0, -1);
  return ray_return_i64(ctx, 0, (int64_t)size);
}

/* send_big(n): puts n bytes of big's pattern here and has check_big read
 * them on rank 0, as an argument (pulled there); gives check_big's answer,
 * or fails with its code. */
static int fn_send_big(ray_task_ctx_t *ctx, void *arg);

static ray_function_t g_check_big, g_nested_any, g_fetch_big, g_until_cancelled, g_echo_i64,
    g_echo_f64, g_echo_str, g_echo_bytes, g_echo_msgpack;
static ray_function_t g_gate, g_inc, g_sum, g_boom, g_flaky, g_put_get, g_leak_ref;

#define STATIC_FN(var, name, fn, types, handle) \
  static ray_static_function_t var = {name, fn, NULL, types, 1, handle, NULL}
STATIC_FN(s_whoami, "whoami", fn_whoami, k_i64, &g_whoami);
STATIC_FN(s_pass_ref, "pass_ref", fn_pass_ref, k_msgpack, &g_pass_ref);
STATIC_FN(s_unwrap_inc, "unwrap_inc", fn_unwrap_inc, k_msgpack, &g_unwrap_inc);
STATIC_FN(s_nap_wrapped, "nap_wrapped", fn_nap_wrapped, k_msgpack, &g_nap_wrapped);
STATIC_FN(s_echo_i64, "echo_i64", fn_echo, k_i64, &g_echo_i64);
STATIC_FN(s_echo_f64, "echo_f64", fn_echo, k_f64, &g_echo_f64);
STATIC_FN(s_echo_str, "echo_str", fn_echo, k_str, &g_echo_str);
STATIC_FN(s_echo_bytes, "echo_bytes", fn_echo, k_bytes, &g_echo_bytes);
STATIC_FN(s_echo_msgpack, "echo_msgpack", fn_echo, k_msgpack, &g_echo_msgpack);
STATIC_FN(s_inc, "inc", fn_inc, k_i64, &g_inc);
STATIC_FN(s_sum, "sum", fn_sum, k_i64, &g_sum);
STATIC_FN(s_boom, "boom", fn_boom, k_i64, &g_boom);
STATIC_FN(s_flaky, "flaky", fn_flaky, k_i64, &g_flaky);
STATIC_FN(s_fib, "fib", fn_fib, k_i64, &g_fib);
STATIC_FN(s_put_get, "put_get", fn_put_get, k_i64, &g_put_get);
STATIC_FN(s_gate, "gate", fn_gate, k_i64, &g_gate);
STATIC_FN(s_hop, "hop", fn_hop, k_i64, &g_hop);
STATIC_FN(s_nested_any, "nested_any", fn_nested_any, k_i64, &g_nested_any);
STATIC_FN(s_big, "big", fn_big, k_bytes, &g_big);
STATIC_FN(s_fetch_big, "fetch_big", fn_fetch_big, k_i64, &g_fetch_big);
STATIC_FN(s_check_big, "check_big", fn_check_big, k_i64, &g_check_big);
/* Put n (argument 0) bytes of big's pattern here, as *obj. */
static int put_big(ray_task_ctx_t *ctx, ray_ref_t *obj) {
  int64_t n;
  int rc = ray_ctx_arg_i64(ctx, 0, &n);
  if (rc != 0) return rc;
  unsigned char *p = malloc((size_t)n);
  if (p == NULL) return ray_fail(ctx, RAY_ENOMEM, "no memory");
  for (int64_t i = 0; i < n; i++) p[i] = rt_pat(7, (size_t)i);
  rc = ray_put(p, (size_t)n, obj);
  free(p);
  return rc;
}

static int fn_send_big(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_ref_t obj, r;
  int rc = put_big(ctx, &obj);
  if (rc != 0) return rc;
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = 0;
  ray_arg_t a = ray_arg_ref(obj);
  rc = ray_task_submit(g_check_big, &a, 1, &o, &r);
  ray_ref_release(obj);
  if (rc != 0) return rc;
  int64_t v = -1;
  rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
  char why[512] = "";
  ray_error_t *err = NULL;
  if (rc != 0 && ray_get_error(r, &err) == 0 && err != NULL)
    snprintf(why, sizeof why, "%s", ray_error_message(err));
  ray_error_free(err);
  ray_ref_release(r);
  return rc != 0 ? ray_fail(ctx, rc, "check_big: %s", why) : ray_return_i64(ctx, 0, v);
}

/* put_big_ref(n): puts n bytes of big's pattern here and returns [its ref]
 * (an object this rank owns, which the caller borrows). */
static int fn_put_big_ref(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_ref_t obj;
  int rc = put_big(ctx, &obj);
  if (rc != 0) return rc;
  rc = return_refs(ctx, &obj, 1, NULL, 0);
  ray_ref_release(obj); /* the result holds it */
  return rc;
}

static ray_function_t g_id_owner, g_send_big, g_put_big_ref;
STATIC_FN(s_put_big_ref, "put_big_ref", fn_put_big_ref, k_msgpack, &g_put_big_ref);
STATIC_FN(s_id_owner, "id_owner", fn_id_owner, k_i64, &g_id_owner);
STATIC_FN(s_nap, "nap", fn_nap, k_i64, &g_nap);
STATIC_FN(s_send_big, "send_big", fn_send_big, k_i64, &g_send_big);
STATIC_FN(s_until_cancelled, "until_cancelled", fn_until_cancelled, k_i64, &g_until_cancelled);
STATIC_FN(s_leak_ref, "leak_ref", fn_leak_ref, k_msgpack, &g_leak_ref);
static ray_function_t g_extra;
STATIC_FN(s_extra, "only_on_rank_1", fn_inc, k_i64, &g_extra);

/* ---- An actor class every rank knows (a static class descriptor) ---- */

/* Counter(start): add(x) -> the new value, whoami() -> its rank, quit()
 * ends it (ray_actor_exit: restarts if it has restarts left), meet() waits
 * (bounded) until two calls are inside it at once, 1 if they were. */
typedef struct {
  int64_t v;
  atomic_int inside;
} rcounter_t;

static int rc_ctor(ray_task_ctx_t *ctx, void **state) {
  int64_t start = 0;
  if (ray_ctx_nargs(ctx) > 0) {
    int rc = ray_ctx_arg_i64(ctx, 0, &start);
    if (rc != 0) return ray_fail(ctx, rc, "Counter: a bad start");
  }
  rcounter_t *c = calloc(1, sizeof *c);
  if (c == NULL) return RAY_ENOMEM;
  c->v = start;
  *state = c;
  return 0;
}

static int rc_add(ray_task_ctx_t *ctx, void *state) {
  rcounter_t *c = state;
  int64_t x;
  int rc = ray_ctx_arg_i64(ctx, 0, &x);
  if (rc != 0) return rc;
  c->v += x;
  return ray_return_i64(ctx, 0, c->v);
}

static int rc_whoami(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, ray_rank());
}

static int rc_quit(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  int rc = ray_actor_exit(ctx);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, 0);
}

static int rc_meet(ray_task_ctx_t *ctx, void *state) {
  rcounter_t *c = state;
  atomic_fetch_add(&c->inside, 1);
  uint64_t end = uv_hrtime() + 60ull * 1000 * 1000 * 1000; /* bounds a failure only */
  while (atomic_load(&c->inside) < 2 && uv_hrtime() < end) sched_yield();
  return ray_return_i64(ctx, 0, atomic_load(&c->inside) >= 2);
}

static const ray_method_def_t k_rc_methods[] = {{"add", rc_add, k_i64, 1},
                                                {"whoami", rc_whoami, k_i64, 1},
                                                {"quit", rc_quit, k_i64, 1},
                                                {"meet", rc_meet, k_i64, 1}};
static const ray_actor_class_t k_rcounter = {"RCounter", rc_ctor, free, k_rc_methods, 4};
static ray_static_class_t s_rcounter = {&k_rcounter, NULL};
/* A class only the driver knows: its actors cannot be made elsewhere. */
static const ray_actor_class_t k_driver_only = {"DriverOnly", rc_ctor, free, k_rc_methods, 4};

/* How many actors live on the rank it runs on. */
static int fn_actors_alive(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_stats_t st;
  int rc = ray_stats(&st);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, (int64_t)st.actors_alive);
}
static ray_function_t g_actors_alive;
STATIC_FN(s_actors_alive, "actors_alive", fn_actors_alive, k_i64, &g_actors_alive);

/* Call add(x) on `a` from inside a task, return the new value as the
 * task's result, and let the handle go. */
static int add_and_let_go(ray_task_ctx_t *ctx, ray_actor_t a, int64_t x) {
  ray_arg_t arg = ray_arg_i64(x);
  ray_ref_t r;
  int64_t v = -1;
  int rc = ray_actor_call(a, "add", &arg, 1, NULL, &r);
  if (rc == 0) {
    rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
    ray_ref_release(r);
  }
  ray_actor_release(a);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, v);
}

/* Handles that travel. Arg 0 a handle passed as one, or [a handle] (a
 * value naming it): add(1), or add(10) for the value's, on it from where
 * this runs, and the new value. */
static int fn_call_handle(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t a;
  int64_t x = 1;
  int rc = ray_ctx_arg_actor(ctx, 0, &a);
  if (rc == RAY_ETYPE) { /* the value's */
    msgpack_object o;
    x = 10;
    rc = ray_ctx_arg_msgpack(ctx, 0, &o);
    if (rc == 0 && (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 1)) rc = RAY_EDECODE;
    if (rc == 0) rc = ray_msgpack_actor(&o.via.array.ptr[0], &a);
  }
  if (rc == 0) rc = ray_actor_retain(a); /* add_and_let_go lets it go */
  return rc != 0 ? rc : add_and_let_go(ctx, a, x);
}
static ray_function_t g_call_handle;
STATIC_FN(s_call_handle, "call_handle", fn_call_handle, k_i64, &g_call_handle);

/* Arg 0 a handle: returns [the handle] (the result holds it). */
static int fn_wrap_handle(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t a;
  int rc = ray_ctx_arg_actor(ctx, 0, &a);
  if (rc != 0) return rc;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 1);
  rc = ray_msgpack_pack_actor(&pk, a);
  if (rc == 0) rc = ray_return_msgpack_bytes(ctx, 0, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  return rc;
}
static ray_function_t g_wrap_handle;
STATIC_FN(s_wrap_handle, "wrap_handle", fn_wrap_handle, k_msgpack, &g_wrap_handle);

/* The job's named actor "shared", from wherever this runs: add(1) and the
 * new value. */
static int fn_named_add(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t a;
  int rc = ray_get_actor("shared", &a);
  if (rc != 0) return ray_fail(ctx, rc, "ray_get_actor on rank %d", ray_rank());
  return add_and_let_go(ctx, a, 1);
}

/* Make "shared" here (argument: get_if_exists): -17 for RAY_ENAMEEXISTS,
 * else add(10) on what it got and the new value. */
static int fn_named_make(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t get_if_exists;
  int rc = ray_ctx_arg_i64(ctx, 0, &get_if_exists);
  if (rc != 0) return rc;
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.name = "shared";
  o.get_if_exists = get_if_exists != 0;
  ray_actor_t a;
  rc = ray_actor_create(&k_rcounter, NULL, 0, &o, &a);
  if (rc == RAY_ENAMEEXISTS) return ray_return_i64(ctx, 0, -17);
  if (rc != 0) return rc;
  return add_and_let_go(ctx, a, 10);
}

/* Kill "shared" for good from here. */
static int fn_named_kill(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_actor_t a;
  int rc = ray_get_actor("shared", &a);
  if (rc == 0) rc = ray_actor_kill(a, true);
  if (rc == 0) rc = ray_actor_release(a);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, 0);
}
/* The objects in the store of the rank it runs on, its own result's
 * pending entry not counted. */
static int fn_objects_here(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  ray_stats_t st;
  int rc = ray_stats(&st);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, (int64_t)st.objects - 1);
}
static ray_function_t g_objects_here;
STATIC_FN(s_objects_here, "objects_here", fn_objects_here, k_i64, &g_objects_here);
static ray_function_t g_named_add, g_named_make, g_named_kill;
STATIC_FN(s_named_add, "named_add", fn_named_add, k_i64, &g_named_add);
STATIC_FN(s_named_make, "named_make", fn_named_make, k_i64, &g_named_make);
STATIC_FN(s_named_kill, "named_kill", fn_named_kill, k_i64, &g_named_kill);

static void add_statics(void) {
  ray_static_function_t *all[] = {
      &s_whoami,       &s_echo_i64,    &s_echo_f64,     &s_echo_str,     &s_echo_bytes,
      &s_echo_msgpack, &s_inc,         &s_sum,          &s_boom,         &s_flaky,
      &s_fib,          &s_put_get,     &s_leak_ref,     &s_gate,         &s_until_cancelled,
      &s_hop,          &s_big,         &s_fetch_big,    &s_nested_any,   &s_check_big,
      &s_id_owner,     &s_nap,         &s_send_big,     &s_actors_alive, &s_named_add,
      &s_named_make,   &s_named_kill,  &s_objects_here, &s_pass_ref,     &s_unwrap_inc,
      &s_call_handle,  &s_wrap_handle, &s_nap_wrapped,  &s_put_big_ref};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ray_static_function_add(all[i]);
  ray_static_class_add(&s_rcounter);
}

/* ---- Helpers (driver) ---- */

/* `normal` iterations, or `slow` ones under valgrind or a sanitizer (the
 * CMake test sets RAY_TEST_SANITIZER there): those runs check memory and
 * races, not scale, and a 10,000-link chain through 4 TSan-instrumented
 * ranks on 2 cores takes minutes. */
static int iters(int normal, int slow) {
  return rt_under_valgrind() || getenv("RAY_TEST_SANITIZER") != NULL ? slow : normal;
}

static int g_ranks;

static ray_ref_t submit_on(ray_function_t f, const ray_arg_t *args, size_t n, int node) {
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = node;
  ray_ref_t r;
  assert_rc(ray_task_submit(f, args, n, &o, &r), 0);
  return r;
}

static int64_t get_i64(ray_ref_t r) {
  int64_t v = -1;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_rc(ray_ref_release(r), 0);
  return v;
}

/* ---- Tests (rank 0) ---- */

static void test_ranks(void **state) {
  (void)state;
  assert_int_equal(ray_rank(), 0);
  assert_true(g_ranks >= 1);
  assert_int_equal(ray_num_ranks(), g_ranks);
  assert_rc(ray_serve(), RAY_EINVAL); /* the driver does not serve */
  assert_rc(ray_init(NULL), RAY_EALREADY);
}

/* A task placed on a rank runs there. */
static void test_task_runs_where_placed(void **state) {
  (void)state;
  ray_stats_t before = rt_stats();
  for (int r = 0; r < g_ranks; r++) assert_int_equal(get_i64(submit_on(g_whoami, NULL, 0, r)), r);
  /* Counted: one task to each other rank, its message and its answer. */
  ray_stats_t after = rt_stats();
  assert_int_equal(after.remote_tasks_sent - before.remote_tasks_sent, (uint64_t)(g_ranks - 1));
  assert_int_equal(after.remote_tasks_received, 0); /* nobody sends the driver tasks */
  assert_true(g_ranks == 1 || after.remote_bytes_sent > before.remote_bytes_sent);
  assert_true(g_ranks == 1 || after.remote_bytes_received > before.remote_bytes_received);
  /* RAY_NODE_ANY with an idle pool: here. */
  assert_int_equal(get_i64(submit_on(g_whoami, NULL, 0, RAY_NODE_ANY)), 0);
}

/* Every kind of value goes to a rank and back intact. */
static void test_values_round_trip(void **state) {
  (void)state;
  int node = g_ranks - 1;
  ray_arg_t a = ray_arg_i64(-1234567890123LL);
  assert_int_equal(get_i64(submit_on(g_echo_i64, &a, 1, node)), -1234567890123LL);
  a = ray_arg_f64(2.5);
  ray_ref_t r = submit_on(g_echo_f64, &a, 1, node);
  double d = 0;
  assert_rc(ray_get_f64(r, RAY_TIMEOUT_INFINITE, &d), 0);
  assert_true(d == 2.5);
  assert_rc(ray_ref_release(r), 0);
  a = ray_arg_str("hello, rank");
  r = submit_on(g_echo_str, &a, 1, node);
  char *s = NULL;
  size_t slen = 0;
  assert_rc(ray_get_str(r, RAY_TIMEOUT_INFINITE, &s, &slen), 0);
  assert_int_equal(slen, 11);
  assert_string_equal(s, "hello, rank");
  ray_free(s);
  assert_rc(ray_ref_release(r), 0);
  /* Bytes, small and large (above the inline threshold: stored, then sent). */
  size_t sizes[] = {0, 7, 4096, 3u << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    unsigned char *p = malloc(n + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++) p[i] = rt_pat(k, i);
    a = ray_arg_bytes(p, n);
    r = submit_on(g_echo_bytes, &a, 1, node);
    ray_buf_t b;
    assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), 0);
    assert_int_equal(b.size, n);
    assert_int_equal(b.type, RAY_TYPE_BYTES);
    assert_true(n == 0 || memcmp(b.data, p, n) == 0);
    ray_buf_release(&b);
    assert_rc(ray_ref_release(r), 0);
    free(p);
  }
  /* A msgpack value without refs. */
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_int(&pk, 42);
  msgpack_pack_str_with_body(&pk, "x", 1);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
  a = ray_arg_msgpack(&u.data);
  r = submit_on(g_echo_msgpack, &a, 1, node);
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_MSGPACK);
  assert_int_equal(b.size, sb.size);
  assert_memory_equal(b.data, sb.data, sb.size);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(r), 0);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
}

/* A ref argument is resolved at its owner and its value sent along. */
static void test_ref_argument(void **state) {
  (void)state;
  ray_ref_t p;
  assert_rc(ray_put_i64(41, &p), 0);
  ray_arg_t a = ray_arg_ref(p);
  ray_ref_t r = submit_on(g_inc, &a, 1, g_ranks - 1);
  assert_rc(ray_ref_release(p), 0); /* the task holds its own */
  assert_int_equal(get_i64(r), 42);
}

/* A chain of tasks spread over every rank, each taking the last result. */
static void test_chain_across_ranks(void **state) {
  (void)state;
  int n = iters(10000, 500);
  ray_arg_t a = ray_arg_i64(0);
  ray_ref_t prev = submit_on(g_inc, &a, 1, 0);
  for (int i = 1; i < n; i++) {
    a = ray_arg_ref(prev);
    ray_ref_t next = submit_on(g_inc, &a, 1, i % g_ranks);
    assert_rc(ray_ref_release(prev), 0);
    prev = next;
  }
  assert_int_equal(get_i64(prev), n);
}

/* Fan-out over every rank, then fan-in through one task taking 64 refs. */
static void test_fan_out_fan_in(void **state) {
  (void)state;
  int n = iters(10000, 500);
  ray_ref_t *refs = malloc((size_t)n * sizeof *refs);
  assert_non_null(refs);
  for (int i = 0; i < n; i++) {
    ray_arg_t a = ray_arg_i64(i);
    refs[i] = submit_on(g_inc, &a, 1, i % g_ranks);
  }
  int64_t total = 0;
  for (int i = 0; i < n; i += 64) { /* fan-in: 64 refs a task, on the ranks in turn */
    ray_arg_t args[64];
    int k = 0;
    for (; k < 64 && i + k < n; k++) args[k] = ray_arg_ref(refs[i + k]);
    total += get_i64(submit_on(g_sum, args, (size_t)k, (i / 64) % g_ranks));
  }
  assert_int_equal(total, (int64_t)n * (n + 1) / 2);
  for (int i = 0; i < n; i++) assert_rc(ray_ref_release(refs[i]), 0);
  free(refs);
}

/* A failure on another rank arrives whole; a task depending on it fails
 * with the cause chain, wherever it was placed. */
static void test_failure_across_ranks(void **state) {
  (void)state;
  int node = g_ranks - 1;
  ray_ref_t bad = submit_on(g_boom, NULL, 0, node);
  int64_t v;
  assert_rc(ray_get_i64(bad, RAY_TIMEOUT_INFINITE, &v), RAY_ETASK);
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(bad, &e), 0);
  assert_int_equal(ray_error_code(e), RAY_ETASK);
  char want[64];
  snprintf(want, sizeof want, "boom on rank %d", node);
  assert_string_equal(ray_error_message(e), want);
  assert_string_equal(ray_error_origin(e), "boom");
  assert_true(ray_error_task_id(e) != 0);
  assert_int_equal(ray_error_attempts(e), 1);
  ray_error_free(e);
  ray_arg_t a = ray_arg_ref(bad);
  ray_ref_t dep = submit_on(g_inc, &a, 1, g_ranks > 1 ? 1 : 0);
  assert_rc(ray_get_i64(dep, RAY_TIMEOUT_INFINITE, &v), RAY_EDEPFAILED);
  assert_rc(ray_get_error(dep, &e), 0);
  assert_int_equal(ray_error_code(e), RAY_EDEPFAILED);
  const ray_error_t *cause = ray_error_cause(e);
  assert_non_null(cause);
  assert_int_equal(ray_error_code(cause), RAY_ETASK);
  assert_string_equal(ray_error_message(cause), want);
  ray_error_free(e);
  assert_rc(ray_ref_release(dep), 0);
  assert_rc(ray_ref_release(bad), 0);
}

/* Retries happen where the task runs; only the outcome travels. */
static void test_retries_remote(void **state) {
  (void)state;
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = g_ranks - 1;
  o.max_retries = 2;
  o.retry_on_error = true;
  ray_ref_t r;
  assert_rc(ray_task_submit(g_flaky, NULL, 0, &o, &r), 0);
  assert_int_equal(get_i64(r), 3);
  o.max_retries = 1; /* one retry is not enough */
  assert_rc(ray_task_submit(g_flaky, NULL, 0, &o, &r), 0);
  ray_error_t *e = NULL;
  int64_t v;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), RAY_ETASK);
  assert_rc(ray_get_error(r, &e), 0);
  assert_int_equal(ray_error_attempts(e), 2);
  assert_string_equal(ray_error_message(e), "attempt 2 fails");
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
}

/* A remote task still waiting here for its argument can be cancelled: it
 * is never sent. (The argument is the gate's result, which cannot complete
 * before the test opens the gate.) */
static void test_cancel_before_sent(void **state) {
  (void)state;
  atomic_store(&g_gate_open, false);
  ray_ref_t gate = submit_on(g_gate, NULL, 0, 0);
  ray_arg_t a = ray_arg_ref(gate);
  ray_ref_t r = submit_on(g_inc, &a, 1, g_ranks - 1);
  assert_rc(ray_cancel(r), 0);
  int64_t v;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), RAY_ECANCELED);
  assert_rc(ray_ref_release(r), 0);
  atomic_store(&g_gate_open, true);
  assert_int_equal(get_i64(gate), 1);
}

/* A task already sent is cancelled where it runs: queued there, it never
 * runs; running, it sees ray_task_is_cancelled. Either way its result
 * fails with RAY_ECANCELED; a finished one cannot be cancelled. */
static void test_cancel_after_sent(void **state) {
  (void)state;
  for (int r = 0; r < g_ranks; r++) {
    ray_ref_t refs[3];
    uint64_t sent = rt_stats().remote_tasks_sent;
    for (int i = 0; i < 3; i++) refs[i] = submit_on(g_until_cancelled, NULL, 0, r);
    /* Cancel only once all three went (ray_stats counts them as they are
     * handed to the transport), so this is the path of a sent task. */
    for (int i = 0; r != 0 && i < 60000 && rt_stats().remote_tasks_sent < sent + 3; i++)
      uv_sleep(1);
    if (r != 0) assert_int_equal(rt_stats().remote_tasks_sent, sent + 3);
    for (int i = 0; i < 3; i++) assert_rc(ray_cancel(refs[i]), 0);
    for (int i = 0; i < 3; i++) {
      int64_t v;
      assert_rc(ray_get_i64(refs[i], RAY_TIMEOUT_INFINITE, &v), RAY_ECANCELED);
      assert_rc(ray_cancel(refs[i]), RAY_EFINISHED);
      assert_rc(ray_ref_release(refs[i]), 0);
    }
  }
}

/* A task cancelled while its rank still pulls its large argument is never
 * run there (or, if it was already running, is stopped): RAY_ECANCELED
 * either way, never its 60 s run to the end. */
static void test_cancel_while_pulling_args(void **state) {
  (void)state;
  size_t n = (size_t)iters(64, 8) << 20;
  unsigned char *p = calloc(1, n);
  assert_non_null(p);
  ray_ref_t big;
  assert_rc(ray_put(p, n, &big), 0);
  free(p);
  int node = g_ranks > 1 ? 1 : 0;
  uint64_t sent = rt_stats().remote_tasks_sent;
  ray_arg_t a = ray_arg_ref(big);
  ray_ref_t r = submit_on(g_until_cancelled, &a, 1, node);
  for (int i = 0; node != 0 && i < 60000 && rt_stats().remote_tasks_sent == sent; i++) uv_sleep(1);
  assert_rc(ray_cancel(r), 0);
  int64_t v;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), RAY_ECANCELED);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(big), 0);
}

/* Ids name their owner (ADR-006): the refs and tasks a rank makes carry
 * its rank in their top 16 bits; the driver's, 0. */
static void test_ids_carry_their_owner(void **state) {
  (void)state;
  ray_ref_t mine;
  assert_rc(ray_put_i64(1, &mine), 0);
  assert_int_equal(mine.id >> 48, 0);
  assert_rc(ray_ref_release(mine), 0);
  for (int r = 0; r < g_ranks; r++) assert_int_equal(get_i64(submit_on(g_id_owner, NULL, 0, r)), r);
}

/* Every rank places work on the others, rank 0 included, and gets it:
 * a chain of hops around the ranks twice, and 1 MiB results (above MPI's
 * eager sizes) from each rank's neighbour. */
static void test_ranks_place_work_on_each_other(void **state) {
  (void)state;
  for (int r = 0; r < g_ranks; r++) {
    ray_arg_t a = ray_arg_i64(2 * g_ranks);
    assert_int_equal(get_i64(submit_on(g_hop, &a, 1, r)), r); /* 2n hops: back where it began */
    a = ray_arg_i64(1 << 20);
    assert_int_equal(get_i64(submit_on(g_fetch_big, &a, 1, r)), 1 << 20);
  }
}

/* A 64 MiB object made on one rank and read on another, byte for byte,
 * both ways: a result (big on rank 1, read by a task on rank 0) and an
 * argument (put on rank 0, read by a task on rank 1). Smaller under
 * valgrind and the sanitizers. */
static void test_64mib_across_ranks(void **state) {
  (void)state;
  int64_t n = (int64_t)iters(64, 8) << 20;
  int other = g_ranks > 1 ? 1 : 0;
  ray_arg_t a = ray_arg_i64(n);
  assert_int_equal(get_i64(submit_on(g_fetch_big, &a, 1, 0)), n); /* big runs on rank 1 */
  unsigned char *p = malloc((size_t)n);
  assert_non_null(p);
  for (int64_t i = 0; i < n; i++) p[i] = rt_pat(7, (size_t)i);
  ray_ref_t obj;
  assert_rc(ray_put(p, (size_t)n, &obj), 0);
  free(p);
  a = ray_arg_ref(obj);
  assert_int_equal(get_i64(submit_on(g_check_big, &a, 1, other)), n);
  assert_rc(ray_ref_release(obj), 0);
}

/* A large value is pulled in chunks of at most the reader's chunk size
 * (256 MiB by default; here an odd size, so the last chunk is short), each
 * landing where it belongs: a result (rank 1's, read here) and an argument
 * (rank 1's, read by a task here). */
static void test_pull_in_chunks(void **state) {
  (void)state;
  size_t old = ray__cluster_set_pull_chunk((1u << 20) + 13);
  int64_t n = ((int64_t)5 << 20) + 7;
  ray_arg_t sa = ray_arg_i64(n);
  assert_int_equal(get_i64(submit_on(g_send_big, &sa, 1, g_ranks > 1 ? 1 : 0)), n);
  ray_arg_t a = ray_arg_i64(n);
  ray_ref_t r = submit_on(g_big, &a, 1, g_ranks > 1 ? 1 : 0);
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(b.size, (size_t)n);
  for (size_t i = 0; i < b.size; i++)
    if (((const unsigned char *)b.data)[i] != rt_pat(7, i)) fail_msg("byte %zu differs", i);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(r), 0);
  ray__cluster_set_pull_chunk(old);
}

/* RAY_NODE_ANY: here while the pool keeps up; once this rank has two tasks
 * a worker (gates that cannot finish until opened), the next go to other
 * ranks; from inside a task, always where it runs, even a task a waiting
 * host thread runs itself. */
static void test_any_spreads_when_busy(void **state) {
  (void)state;
  atomic_store(&g_gate_open, false);
  ray_ref_t gates[4];
  for (int i = 0; i < 4; i++) gates[i] = submit_on(g_gate, NULL, 0, 0);
  uint64_t sent = rt_stats().remote_tasks_sent;
  ray_ref_t any[6];
  for (int i = 0; i < 6; i++) any[i] = submit_on(g_whoami, NULL, 0, RAY_NODE_ANY);
  /* Some went elsewhere, and went while both workers here are held by the
   * gates: sending waits for no worker (ray_stats counts them as sent). */
  for (int i = 0; i < 60000 && rt_stats().remote_tasks_sent == sent; i++) uv_sleep(1);
  assert_true(rt_stats().remote_tasks_sent > sent);
  /* Queued behind the gates, this one runs on this thread while it waits
   * for it (host help): inside a task all the same, its nested work stays
   * here, busy as this rank is. */
  assert_int_equal(get_i64(submit_on(g_nested_any, NULL, 0, 0)), 0);
  atomic_store(&g_gate_open, true);
  int elsewhere = 0;
  for (int i = 0; i < 6; i++) elsewhere += get_i64(any[i]) != 0;
  assert_true(elsewhere >= 1);
  for (int i = 0; i < 4; i++) assert_int_equal(get_i64(gates[i]), 1);
  for (int r = 0; r < g_ranks; r++)
    assert_int_equal(get_i64(submit_on(g_nested_any, NULL, 0, r)), r);
}

/* Remote tasks submit nested tasks on their rank and get them there. */
static void test_nested_and_gets_inside_remote_tasks(void **state) {
  (void)state;
  int n = iters(15, 8);
  int64_t want[] = {0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610};
  for (int r = 0; r < g_ranks; r++) {
    ray_arg_t a = ray_arg_i64(n);
    assert_int_equal(get_i64(submit_on(g_fib, &a, 1, r)), want[n]);
    a = ray_arg_i64(21);
    assert_int_equal(get_i64(submit_on(g_put_get, &a, 1, r)), 42);
  }
}

/* A function only this rank registered (after ray_init) fails remotely
 * with the target's RAY_ENOTFOUND. */
static void test_function_missing_on_target(void **state) {
  (void)state;
  ray_function_t f;
  assert_rc(ray_function_register("driver_only", fn_inc, NULL, k_i64, 1, &f), 0);
  ray_arg_t a = ray_arg_i64(1);
  ray_ref_t r = submit_on(f, &a, 1, 1);
  int64_t v;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), RAY_ENOTFOUND);
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(r, &e), 0);
  assert_string_equal(ray_error_message(e), "function driver_only is not registered here (rank 1)");
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  assert_int_equal(get_i64(submit_on(f, &a, 1, 0)), 2); /* here it runs */
}

static void test_bad_node(void **state) {
  (void)state;
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  int bad[] = {g_ranks, g_ranks + 1, -2, INT_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    o.node = bad[i];
    ray_ref_t r;
    assert_rc(ray_task_submit(g_whoami, NULL, 0, &o, &r), RAY_EINVAL);
  }
}

/* Work still in flight when the driver stops: every rank still ends clean
 * (the group's teardown shuts down; mpirun checks every exit code). */
static void test_work_in_flight_at_shutdown(void **state) {
  (void)state;
  for (int i = 0; i < 200; i++) {
    ray_arg_t a = ray_arg_i64(12);
    ray_ref_t r = submit_on(g_fib, &a, 1, i % g_ranks);
    assert_rc(ray_ref_release(r), 0);
  }
}

static int group_setup(void **state) {
  (void)state;
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  ray_stats_t s = rt_stats();
  (void)s;
  assert_rc(ray_shutdown(), 0);
  assert_int_equal(ray__threads_alive(), 0);
  assert_int_equal(ray__alloc_outstanding(), 0);
  return 0;
}

/* "mismatch": rank 1 has a function more; "mismatch_types": the ranks
 * other than 0 register "inc" with another return type. */
static int run_mismatch(int rank, bool types) {
  if (!types && rank == 1) ray_static_function_add(&s_extra);
  if (types && rank != 0) s_inc.return_types = k_f64;
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.num_workers = 1;
  int rc = ray_init(&cfg);
  if (rc != RAY_EINVAL) {
    fprintf(stderr, "rank %d: ray_init returned %s, not RAY_EINVAL\n", rank, ray_err_name(rc));
    return 1;
  }
  if (ray_is_initialized() || ray__threads_alive() != 0) return 3;
  return 0;
}

/* ---- Actors on other ranks ---- */

static ray_actor_t make_counter_on(int node, int64_t start, uint32_t restarts,
                                   uint32_t concurrency) {
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.node = node;
  o.max_restarts = restarts;
  o.max_concurrency = concurrency;
  ray_arg_t a = ray_arg_i64(start);
  ray_actor_t c;
  assert_rc(ray_actor_create(&k_rcounter, &a, 1, &o, &c), 0);
  return c;
}

static ray_ref_t call1(ray_actor_t a, const char *m, ray_arg_t arg, size_t nargs) {
  ray_ref_t r;
  assert_rc(ray_actor_call(a, m, &arg, nargs, NULL, &r), 0);
  return r;
}

static void expect_code(ray_ref_t r, int code) {
  int64_t v;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), code);
  assert_rc(ray_ref_release(r), 0);
}

/* Every rank's actors: the number living on `rank`, once it is `want`
 * (bounded: 60 s; an actor goes once its calls have run). */
static bool actors_on_rank_become(int rank, int64_t want) {
  for (int i = 0; i < 6000; i++) {
    if (get_i64(submit_on(g_actors_alive, NULL, 0, rank)) == want) return true;
    uv_sleep(10);
  }
  return false;
}

/* An actor lives where it is put; calls from the driver run there, in the
 * order they were made (each result is the running sum). */
static void test_remote_actor_calls_in_order(void **state) {
  (void)state;
  for (int home = 0; home < g_ranks; home++) {
    ray_actor_t c = make_counter_on(home, 100, 0, 1);
    assert_int_equal(get_i64(call1(c, "whoami", ray_arg_i64(0), 0)), home);
    int n = iters(10000, 300);
    ray_ref_t *rs = malloc((size_t)n * sizeof *rs);
    assert_non_null(rs);
    for (int i = 0; i < n; i++) rs[i] = call1(c, "add", ray_arg_i64(1), 1);
    for (int i = 0; i < n; i++) assert_int_equal(get_i64(rs[i]), 100 + i + 1);
    free(rs);
    assert_rc(ray_actor_release(c), 0);
  }
}

/* A call waiting for its argument does not let a later call overtake it. */
static void test_remote_actor_order_with_pending_args(void **state) {
  (void)state;
  int home = g_ranks - 1;
  ray_actor_t c = make_counter_on(home, 0, 0, 1);
  int n = iters(20, 10);
  int64_t want = n == 20 ? 6765 : 55; /* fib(n) */
  ray_arg_t fa = ray_arg_i64(n);
  ray_ref_t slow = submit_on(g_fib, &fa, 1, 0);
  ray_ref_t r1 = call1(c, "add", ray_arg_ref(slow), 1);
  ray_ref_t r2 = call1(c, "add", ray_arg_i64(1), 1);
  assert_int_equal(get_i64(r1), want);
  assert_int_equal(get_i64(r2), want + 1);
  assert_rc(ray_ref_release(slow), 0);
  assert_rc(ray_actor_release(c), 0);
}

/* Exit with a restart left: the actor comes back on its rank with its
 * constructor's state; kill for good: calls fail. */
static void test_remote_actor_restart_and_kill(void **state) {
  (void)state;
  int home = g_ranks - 1;
  ray_actor_t c = make_counter_on(home, 10, 1, 1);
  assert_int_equal(get_i64(call1(c, "add", ray_arg_i64(5), 1)), 15);
  expect_code(call1(c, "quit", ray_arg_i64(0), 0), RAY_EACTORDIED);
  assert_int_equal(get_i64(call1(c, "add", ray_arg_i64(1), 1)), 11); /* restarted */
  assert_int_equal(get_i64(call1(c, "whoami", ray_arg_i64(0), 0)), home);
  assert_rc(ray_actor_kill(c, false), 0); /* no restart left: for good */
  expect_code(call1(c, "add", ray_arg_i64(1), 1), RAY_EACTORDIED);
  assert_rc(ray_actor_release(c), 0);

  ray_actor_t k = make_counter_on(home, 0, 5, 1);
  assert_int_equal(get_i64(call1(k, "add", ray_arg_i64(2), 1)), 2);
  assert_rc(ray_actor_kill(k, true), 0); /* no_restart: restarts left do not matter */
  expect_code(call1(k, "add", ray_arg_i64(1), 1), RAY_EACTORDIED);
  assert_rc(ray_actor_release(k), 0);
  assert_true(actors_on_rank_become(home, 0));
}

/* max_concurrency 2 on another rank: two calls run at once. */
static void test_remote_actor_concurrency(void **state) {
  (void)state;
  ray_actor_t c = make_counter_on(g_ranks - 1, 0, 0, 2);
  ray_ref_t a = call1(c, "meet", ray_arg_i64(0), 0);
  ray_ref_t b = call1(c, "meet", ray_arg_i64(0), 0);
  assert_int_equal(get_i64(a), 1);
  assert_int_equal(get_i64(b), 1);
  assert_rc(ray_actor_release(c), 0);
}

/* Releasing the last handle lets the actor go on its rank once the calls
 * made before have run; they all answer. */
static void test_remote_actor_release(void **state) {
  (void)state;
  int home = g_ranks - 1;
  assert_true(actors_on_rank_become(home, 0));
  ray_actor_t c = make_counter_on(home, 0, 0, 1);
  ray_ref_t rs[50];
  for (int i = 0; i < 50; i++) rs[i] = call1(c, "add", ray_arg_i64(1), 1);
  assert_rc(ray_actor_release(c), 0);
  for (int i = 0; i < 50; i++) assert_int_equal(get_i64(rs[i]), i + 1);
  assert_true(actors_on_rank_become(home, 0));
  ray_ref_t r;
  ray_arg_t one = ray_arg_i64(1);
  assert_rc(ray_actor_call(c, "add", &one, 1, NULL, &r), RAY_ENOTFOUND); /* the handle is gone */
}

/* What cannot be done fails the call, and the calls after it still run:
 * a class the home rank does not know, an argument holding an actor
 * handle (cannot travel yet), a bad node. */
static void test_remote_actor_errors(void **state) {
  (void)state;
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.node = g_ranks;
  ray_actor_t c;
  assert_rc(ray_actor_create(&k_rcounter, NULL, 0, &o, &c), RAY_EINVAL);
  o.node = RAY_NODE_ANY - 1;
  assert_rc(ray_actor_create(&k_rcounter, NULL, 0, &o, &c), RAY_EINVAL);
  if (g_ranks < 2) return;
  int home = g_ranks - 1;
  o.node = home;
  assert_rc(ray_actor_create(&k_driver_only, NULL, 0, &o, &c), 0);
  expect_code(call1(c, "add", ray_arg_i64(1), 1), RAY_EACTORDIED);
  assert_rc(ray_actor_release(c), 0);
  ray_actor_t k = make_counter_on(home, 0, 0, 1);
  ray_actor_t other = make_counter_on(0, 0, 0, 1);
  /* A handle travels to the home (as an argument): "add" wants an i64. */
  expect_code(call1(k, "add", ray_arg_actor(other), 1), RAY_ETYPE);
  assert_int_equal(get_i64(call1(k, "add", ray_arg_i64(3), 1)), 3);
  assert_rc(ray_actor_release(other), 0);
  assert_rc(ray_actor_release(k), 0);
  assert_true(actors_on_rank_become(home, 0));
}

/* Let go of a decoded value and the refs it handed out. */
static void release_msgpack(ray_msgpack_t *m) {
  assert_rc(ray_ref_release_batch(m->refs, m->nrefs), 0);
  ray_msgpack_release(m);
}

/* Whether every rank's store empties (bounded: 60 s; values held for
 * pulls and results are let go just after the answers are read). */
static bool every_store_empties(void) {
  for (int r = 0; r < g_ranks; r++) {
    bool empty = false;
    for (int i = 0; i < 6000 && !empty; i++) {
      empty =
          r == 0 ? rt_stats().objects == 0 : get_i64(submit_on(g_objects_here, NULL, 0, r)) == 0;
      if (!empty) uv_sleep(10);
    }
    if (!empty) return false;
  }
  return true;
}

/* Refs churned across ranks: puts passed to tasks on every rank, results
 * passed on to tasks on the next, small and large values, all let go: every
 * rank's store ends empty. */
static void test_refs_churned_across_ranks(void **state) {
  (void)state;
  int n = iters(100000, 2000), window = 256;
  ray_ref_t *last = calloc((size_t)window, sizeof *last);
  assert_non_null(last);
  for (int i = 0; i < n; i++) {
    ray_ref_t put;
    assert_rc(ray_put_i64(i, &put), 0);
    ray_arg_t a = ray_arg_ref(put);
    ray_ref_t r1 = submit_on(g_inc, &a, 1, i % g_ranks);
    assert_rc(ray_ref_release(put), 0);
    a = ray_arg_ref(r1);
    ray_ref_t r2 = submit_on(g_inc, &a, 1, (i + 1) % g_ranks); /* a result passed on */
    assert_rc(ray_ref_release(r1), 0);
    int slot = i % window;
    if (last[slot].id != 0) assert_int_equal(get_i64(last[slot]), i - window + 2);
    last[slot] = r2;
  }
  for (int i = n - window; i < n; i++) {
    int slot = i % window;
    if (i >= 0 && last[slot].id != 0) assert_int_equal(get_i64(last[slot]), i + 2);
  }
  free(last);
  /* Nested refs: [a put] to a task on the next rank, which reads it (a
   * proxy there) and returns [a put of its own]; that result passed on to
   * the rank after, which does the same; we read the last ref. A window of
   * them in flight: one at a time waits on every round trip. */
  int nested = iters(10000, 500);
  ray_ref_t *pending = calloc((size_t)window, sizeof *pending);
  assert_non_null(pending);
  for (int i = 0; i < nested + window; i++) {
    int slot = i % window;
    if (pending[slot].id != 0) { /* issued `window` steps ago, for i - window */
      ray_msgpack_t m;
      assert_rc(ray_get_msgpack(pending[slot], RAY_TIMEOUT_INFINITE, &m), 0);
      ray_ref_t last_ref;
      assert_rc(elem_ref(&m.obj, 0, &last_ref), 0);
      int64_t v = -1;
      assert_rc(ray_get_i64(last_ref, RAY_TIMEOUT_INFINITE, &v), 0);
      assert_int_equal(v, i - window + 2);
      release_msgpack(&m);
      assert_rc(ray_ref_release(pending[slot]), 0);
      pending[slot].id = 0;
    }
    if (i >= nested) continue;
    ray_ref_t put;
    assert_rc(ray_put_i64(i, &put), 0);
    msgpack_sbuffer sb;
    pack_refs(&sb, &put, 1, NULL, 0);
    ray_arg_t a = ray_arg_msgpack_bytes(sb.data, sb.size);
    ray_ref_t r1 = submit_on(g_unwrap_inc, &a, 1, (i + 1) % g_ranks);
    msgpack_sbuffer_destroy(&sb);
    assert_rc(ray_ref_release(put), 0);
    a = ray_arg_ref(r1); /* its value, [a ref made there], passed on */
    pending[slot] = submit_on(g_unwrap_inc, &a, 1, (i + 2) % g_ranks);
    assert_rc(ray_ref_release(r1), 0);
  }
  free(pending);
  /* Large ones (pulled both ways), fewer. */
  for (int i = 0; i < iters(20, 4); i++) {
    ray_arg_t sz = ray_arg_i64(256 * 1024);
    ray_ref_t big = submit_on(g_big, &sz, 1, (i + 1) % g_ranks);
    ray_arg_t b = ray_arg_ref(big);
    ray_ref_t checked = submit_on(g_check_big, &b, 1, i % g_ranks);
    assert_rc(ray_ref_release(big), 0);
    assert_int_equal(get_i64(checked), 256 * 1024);
  }
  assert_true(every_store_empties());
}

/* A ref inside an argument, or inside a result, travels: the executor
 * borrows ours and gives it back; a ref made there is read here. */
static void test_refs_in_values_travel(void **state) {
  (void)state;
  ray_ref_t inner;
  assert_rc(ray_put_i64(1, &inner), 0);
  msgpack_sbuffer sb;
  pack_refs(&sb, &inner, 1, NULL, 0);
  ray_arg_t a = ray_arg_msgpack_bytes(sb.data, sb.size);
  ray_ref_t r = submit_on(g_echo_msgpack, &a, 1, 1);
  msgpack_sbuffer_destroy(&sb);
  assert_rc(ray_ref_release(inner), 0); /* the task holds it, then its result */
  ray_msgpack_t u;
  ray_buf_t b;
  assert_rc(ray_get_msgpack(r, RAY_TIMEOUT_INFINITE, &u), 0);
  ray_ref_t back;
  assert_rc(elem_ref(&u.obj, 0, &back), 0);
  assert_int_equal(back.id, inner.id); /* ours again: no proxy of our own object */
  int64_t v = 0;
  assert_rc(ray_get_i64(back, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 1);
  release_msgpack(&u);
  assert_rc(ray_ref_release(r), 0);
  r = submit_on(g_leak_ref, NULL, 0, 1); /* [a ref rank 1 made, to 5] */
  assert_rc(ray_get_msgpack(r, RAY_TIMEOUT_INFINITE, &u), 0);
  ray_ref_t theirs;
  assert_rc(elem_ref(&u.obj, 0, &theirs), 0);
  assert_rc(ray_get_i64(theirs, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 5);
  assert_rc(ray_ref_retain(theirs), 0); /* kept beyond the value that named it */
  release_msgpack(&u);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_get(theirs, 0, &b), 0);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(theirs), 0);
  assert_rc(ray_get(theirs, 0, &b), RAY_ENOTFOUND); /* released: unknown here */
  assert_true(every_store_empties());
}

/* A ref passed through 3 ranks and back (Ray's borrowing): the last reads
 * it, and the answer names it and a ref made there, which we read; then
 * every store empties. */
static void test_ref_through_three_ranks_and_back(void **state) {
  (void)state;
  ray_ref_t x;
  assert_rc(ray_put_i64(41, &x), 0);
  int64_t hops[4] = {0, 1 % g_ranks, 2 % g_ranks, 3 % g_ranks}; /* seen, then the ranks */
  msgpack_sbuffer sb;
  pack_refs(&sb, &x, 1, hops, 4);
  ray_arg_t a = ray_arg_msgpack_bytes(sb.data, sb.size);
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = (int32_t)hops[1];
  /* [x, seen, hops after the first...] */
  msgpack_sbuffer_destroy(&sb);
  int64_t rest[3] = {0, hops[2], hops[3]};
  pack_refs(&sb, &x, 1, rest, 3);
  a = ray_arg_msgpack_bytes(sb.data, sb.size);
  ray_ref_t r;
  assert_rc(ray_task_submit(g_pass_ref, &a, 1, &o, &r), 0);
  msgpack_sbuffer_destroy(&sb);
  assert_rc(ray_ref_release(x), 0); /* only the borrowers keep it now */
  ray_msgpack_t u;
  assert_rc(ray_get_msgpack(r, RAY_TIMEOUT_INFINITE, &u), 0);
  ray_ref_t back, made;
  assert_rc(elem_ref(&u.obj, 0, &back), 0);
  assert_rc(elem_ref(&u.obj, 1, &made), 0);
  assert_int_equal(back.id, x.id);
  assert_int_equal(elem_int(&u.obj, 2), 41);      /* read on the last rank */
  assert_int_equal(elem_int(&u.obj, 3), hops[3]); /* which it was */
  int64_t v = 0;
  assert_rc(ray_get_i64(back, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 41);
  assert_rc(ray_get_i64(made, RAY_TIMEOUT_INFINITE, &v), 0); /* made on the last rank */
  assert_int_equal(v, 410);
  release_msgpack(&u);
  assert_rc(ray_ref_release(r), 0);
  assert_true(every_store_empties());
}

/* Every rank's actors (stubs included) become want[rank] (bounded). */
static bool actors_everywhere_become(const int64_t *want) {
  for (int r = 0; r < g_ranks; r++)
    if (!actors_on_rank_become(r, want[r])) return false;
  return true;
}

/* Actor handles travel (as arguments, and inside values), and the actor
 * lives as long as any rank holds one: here an actor on the last rank and
 * one on this rank, each called from tasks on every rank through a handle
 * passed there; then kept only by a value made on another rank (ours let
 * go), read there and here, and called; once that goes too, every actor
 * and stub is gone everywhere. */
static void test_actor_handles_travel(void **state) {
  (void)state;
  int64_t before[8] = {0}; /* what earlier tests keep (named actors live until killed) */
  assert_true(g_ranks <= 8);
  for (int r = 0; r < g_ranks; r++) before[r] = get_i64(submit_on(g_actors_alive, NULL, 0, r));
  for (int pass = 0; pass < 2; pass++) {
    int home = pass == 0 ? g_ranks - 1 : 0;
    ray_actor_t a = make_counter_on(home, 0, 0, 1);
    int64_t want = 0;
    for (int r = 0; r < g_ranks; r++) { /* one at a time: each sees the one before */
      ray_arg_t h = ray_arg_actor(a);
      assert_int_equal(get_i64(submit_on(g_call_handle, &h, 1, r)), ++want);
    }
    ray_arg_t h = ray_arg_actor(a);
    ray_ref_t wrapped = submit_on(g_wrap_handle, &h, 1, 1 % g_ranks);
    ray_msgpack_t m;
    assert_rc(ray_get_msgpack(wrapped, RAY_TIMEOUT_INFINITE, &m), 0); /* landed here */
    ray_msgpack_release(&m);
    assert_rc(ray_actor_release(a), 0); /* only the value holds it now */
    for (int r = 0; r < g_ranks; r++) {
      ray_arg_t w = ray_arg_ref(wrapped); /* its value, naming the handle, goes to rank r */
      want += 10;
      assert_int_equal(get_i64(submit_on(g_call_handle, &w, 1, r)), want);
    }
    /* Read here: the handle is ours again (or a stub of it), and works. */
    assert_rc(ray_get_msgpack(wrapped, RAY_TIMEOUT_INFINITE, &m), 0);
    ray_actor_t again;
    assert_rc(ray_msgpack_actor(&m.obj.via.array.ptr[0], &again), 0);
    assert_int_equal(again.id, a.id);
    assert_int_equal(get_i64(call1(again, "add", ray_arg_i64(100), 1)), want + 100);
    ray_msgpack_release(&m);
    assert_rc(ray_ref_release(wrapped), 0);
    assert_true(actors_everywhere_become(before)); /* the actor, and every stub of it */
  }
  /* A handle that reached another rank and went unused there, maybe while
   * the actor's constructor still waited for its argument at the owner:
   * the actor still goes once every handle has. */
  ray_arg_t slow = ray_arg_i64(300);
  ray_ref_t napped = submit_on(g_nap, &slow, 1, 0);
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.node = g_ranks - 1;
  ray_arg_t ca = ray_arg_ref(napped);
  ray_actor_t late;
  assert_rc(ray_actor_create(&k_rcounter, &ca, 1, &o, &late), 0);
  assert_rc(ray_ref_release(napped), 0);
  ray_arg_t h = ray_arg_actor(late);
  ray_ref_t unused = submit_on(g_wrap_handle, &h, 1, 1 % g_ranks);
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(unused, RAY_TIMEOUT_INFINITE, &m), 0);
  ray_msgpack_release(&m);
  assert_rc(ray_ref_release(unused), 0);
  /* Made by now (a call's answer comes after its constructor ran), then let go. */
  assert_int_equal(get_i64(call1(late, "whoami", ray_arg_i64(0), 0)), g_ranks - 1);
  assert_rc(ray_actor_release(late), 0);
  assert_true(actors_everywhere_become(before));
  assert_true(every_store_empties());
}

/* One name for the whole job (rank 0's registry): a named actor found and
 * called from every rank, the name refused elsewhere (or shared with
 * get_if_exists), and a kill from another rank frees it. */
static void test_named_actor_from_every_rank(void **state) {
  (void)state;
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.node = g_ranks - 1;
  o.name = "shared";
  ray_actor_t a;
  assert_rc(ray_actor_create(&k_rcounter, NULL, 0, &o, &a), 0);
  ray_actor_t again;
  assert_rc(ray_actor_create(&k_rcounter, NULL, 0, &o, &again), RAY_ENAMEEXISTS);
  for (int r = 0; r < g_ranks; r++) /* one at a time: each sees the one before */
    assert_int_equal(get_i64(submit_on(g_named_add, NULL, 0, r)), r + 1);
  int other = g_ranks > 1 ? 1 : 0;
  ray_arg_t no = ray_arg_i64(0), yes = ray_arg_i64(1);
  assert_int_equal(get_i64(submit_on(g_named_make, &no, 1, other)), -17);
  assert_int_equal(get_i64(submit_on(g_named_make, &yes, 1, other)), g_ranks + 10);
  ray_actor_t found;
  assert_rc(ray_get_actor("shared", &found), 0);
  assert_int_equal(get_i64(call1(found, "add", ray_arg_i64(1), 1)), g_ranks + 11);
  assert_rc(ray_actor_release(found), 0);
  /* Killed from another rank: the name is free at once, everywhere. */
  assert_int_equal(get_i64(submit_on(g_named_kill, NULL, 0, other)), 0);
  assert_rc(ray_get_actor("shared", &found), RAY_ENOTFOUND);
  /* The kill went from rank `other` to the home, our calls from here:
   * nothing orders the two, so a call may still get in first; the actor
   * dies once the kill lands (bounded: 60 s). */
  int code = 0;
  for (int i = 0; i < 6000 && code != RAY_EACTORDIED; i++) {
    ray_ref_t r = call1(a, "add", ray_arg_i64(1), 1);
    int64_t v;
    code = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
    assert_rc(ray_ref_release(r), 0);
    assert_true(code == 0 || code == RAY_EACTORDIED);
    if (code == 0) uv_sleep(10);
  }
  assert_int_equal(code, RAY_EACTORDIED);
  assert_rc(ray_actor_release(a), 0);
  o.node = 0;
  assert_rc(ray_actor_create(&k_rcounter, NULL, 0, &o, &a), 0); /* the name, taken anew */
  assert_int_equal(get_i64(submit_on(g_named_add, NULL, 0, other)), 1);
  assert_rc(ray_actor_kill(a, true), 0);
  assert_rc(ray_actor_release(a), 0);
  assert_rc(ray_get_actor("shared", &found), RAY_ENOTFOUND);
  assert_rc(ray_get_actor("nobody", &found), RAY_ENOTFOUND);
}

/* The modes' driver: a whoami task placed on every rank answers its rank
 * (without cmocka: these modes run outside the group). */
static bool whoami_everywhere(void) {
  for (int r = 0; r < ray_num_ranks(); r++) {
    ray_task_opts_t o;
    ray_task_opts_init(&o);
    o.node = r;
    ray_ref_t ref;
    int64_t v = -1;
    if (ray_task_submit(g_whoami, NULL, 0, &o, &ref) != 0) return false;
    int rc = ray_get_i64(ref, RAY_TIMEOUT_INFINITE, &v);
    ray_ref_release(ref);
    if (rc != 0 || v != r) return false;
  }
  return true;
}

/* "observe": every rank records a timeline and serves metrics on
 * RAY_TEST_METRICS_BASE + its rank; rank 0 runs a task on every rank; each
 * rank checks its metrics port, and after the shutdown, that its timeline
 * file names its rank as the process. */
static int run_observe(int rank) {
  const char *base_s = getenv("RAY_TEST_METRICS_BASE");
  int base = base_s != NULL ? atoi(base_s) : 0;
  if (base <= 0) return 2;
  char path[256];
  snprintf(path, sizeof path, "%s/test_cluster_mpi_timeline.%d.json",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp", rank);
  remove(path);
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.num_workers = 1;
  cfg.timeline = true;
  cfg.timeline_path = path;
  cfg.metrics_port = base;
  int rc = ray_init(&cfg);
  if (rc != 0) {
    fprintf(stderr, "rank %d: ray_init: %s\n", rank, ray_err_name(rc));
    return 1;
  }
  if (ray_metrics_port() != base + rank) {
    fprintf(stderr, "rank %d: metrics on %d, not %d\n", rank, ray_metrics_port(), base + rank);
    return 3;
  }
  if (rank == 0) {
    if (!whoami_everywhere()) return 4;
    if (ray_shutdown() != 0) return 5;
  } else if (ray_serve() != 0) {
    return 5;
  }
  /* The file: a span ran here (the whoami task), every event with pid = rank. */
  FILE *f = fopen(path, "r");
  if (f == NULL) return 6;
  static char text[1 << 16];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  remove(path);
  char want[64], name[64];
  snprintf(want, sizeof want, "\"pid\":%d,", rank);
  snprintf(name, sizeof name, "\"name\":\"rustyray rank %d\"", rank);
  if (strstr(text, "\"name\":\"whoami\"") == NULL || strstr(text, want) == NULL ||
      strstr(text, name) == NULL) {
    fprintf(stderr, "rank %d: the timeline lacks %s, %s or the whoami span\n", rank, want, name);
    return 7;
  }
  for (const char *p = strstr(text, "\"pid\":"); p != NULL; p = strstr(p + 1, "\"pid\":"))
    if (atoi(p + 6) != rank) return 8;
  return 0;
}

/* "serve_in_init": ranks other than 0 must never return from ray_init;
 * they exit from inside it after the driver's shutdown, with everything
 * shut down and freed (checked at exit). Rank 0 runs a task on each. */
static void check_clean_at_exit(void) {
  if (ray_is_initialized() || ray__threads_alive() != 0 || ray__alloc_outstanding() != 0) {
    fprintf(stderr, "rank %d: not clean at exit\n", ray_rank());
    _Exit(6);
  }
}

static int run_serve_in_init(int rank) {
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.cluster_serve_in_init = true;
  cfg.num_workers = 1;
  ray__alloc_track(true);
  if (rank != 0 && atexit(check_clean_at_exit) != 0) return 2;
  int rc = ray_init(&cfg);
  if (rc != 0) {
    fprintf(stderr, "rank %d: ray_init: %s\n", rank, ray_err_name(rc));
    return 1;
  }
  if (ray_rank() != 0) {
    fprintf(stderr, "rank %d: ray_init returned\n", ray_rank());
    return 9;
  }
  if (!whoami_everywhere()) return 4;
  return ray_shutdown() == 0 ? 0 : 5;
}

/* "spmd": every rank a driver (ray_config_t.cluster_spmd). Each rank puts
 * an actor on every rank (its own included), calls each of them in order,
 * places a task on every rank, then all shut down together; every process
 * ends with nothing leaked. */
static int spmd_calls(int rank, int nranks) {
  int n = iters(2000, 100);
  for (int home = 0; home < nranks; home++) {
    ray_actor_opts_t o;
    ray_actor_opts_init(&o);
    o.node = home;
    ray_arg_t start = ray_arg_i64(rank * 1000000);
    ray_actor_t c;
    int rc = ray_actor_create(&k_rcounter, &start, 1, &o, &c);
    if (rc != 0) return rc;
    ray_ref_t *rs = malloc((size_t)n * sizeof *rs);
    if (rs == NULL) return RAY_ENOMEM;
    ray_arg_t one = ray_arg_i64(1);
    for (int i = 0; i < n && rc == 0; i++) rc = ray_actor_call(c, "add", &one, 1, NULL, &rs[i]);
    for (int i = 0; i < n && rc == 0; i++) {
      int64_t v = -1;
      rc = ray_get_i64(rs[i], RAY_TIMEOUT_INFINITE, &v);
      if (rc == 0 && v != rank * 1000000 + i + 1) rc = RAY_EINVAL; /* out of order */
    }
    for (int i = 0; i < n; i++) ray_ref_release(rs[i]);
    free(rs);
    ray_ref_t w;
    ray_arg_t none = ray_arg_i64(0);
    int64_t where = -1;
    if (rc == 0) rc = ray_actor_call(c, "whoami", &none, 0, NULL, &w);
    if (rc == 0) rc = ray_get_i64(w, RAY_TIMEOUT_INFINITE, &where);
    if (rc == 0) ray_ref_release(w);
    if (rc == 0 && where != home) rc = RAY_EINVAL;
    ray_actor_release(c);
    ray_task_opts_t to;
    ray_task_opts_init(&to);
    to.node = home;
    if (rc == 0) rc = ray_task_submit(g_whoami, NULL, 0, &to, &w);
    if (rc == 0) rc = ray_get_i64(w, RAY_TIMEOUT_INFINITE, &where);
    if (rc == 0) ray_ref_release(w);
    if (rc == 0 && where != home) rc = RAY_EINVAL;
    if (rc != 0) {
      fprintf(stderr, "rank %d: with rank %d: %s\n", rank, home, ray_err_name(rc));
      return rc;
    }
  }
  return 0;
}

static int run_spmd(int rank) {
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.cluster_spmd = true;
  cfg.cluster_serve_in_init = true; /* ignored: every rank returns from ray_init */
  cfg.num_workers = 2;
  ray__alloc_track(true);
  int rc = ray_init(&cfg);
  if (rc != 0) {
    fprintf(stderr, "rank %d: ray_init: %s\n", rank, ray_err_name(rc));
    return 1;
  }
  int nranks = ray_num_ranks();
  rc = spmd_calls(ray_rank(), nranks);
  int src = ray_shutdown();
  if (src != 0) {
    fprintf(stderr, "rank %d: ray_shutdown: %s\n", rank, ray_err_name(src));
    return 5;
  }
  if (ray_is_initialized() || ray__threads_alive() != 0 || ray__alloc_outstanding() != 0) {
    fprintf(stderr, "rank %d: not clean after the collective shutdown\n", rank);
    return 6;
  }
  return rc == 0 ? 0 : 4;
}

/* "small_store": rank 0's store holds 4 MiB, and ranks >= 1 have one
 * worker each (so rank 1 answers in the order it was asked). A pulled
 * result is reserved through rank 0's store: larger than the store, it
 * fails with RAY_ESTOREFULL; with no room now, a worker waits for room
 * while the communication thread goes on serving; and the reservation
 * spills as any put does. */
static int check_big(ray_ref_t r, int64_t n) {
  ray_buf_t b;
  int rc = ray_get(r, RAY_TIMEOUT_INFINITE, &b);
  if (rc != 0) return rc;
  bool same = (int64_t)b.size == n;
  for (size_t i = 0; same && i < b.size; i++)
    same = ((const unsigned char *)b.data)[i] == rt_pat(7, i);
  ray_buf_release(&b);
  return same ? 0 : RAY_EDECODE;
}

static int small_store_driver(void) {
  int64_t mib = 1 << 20;
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = 1;
  /* 1. Larger than the store: RAY_ESTOREFULL, saying what could not come. */
  ray_arg_t a = ray_arg_i64(8 * mib);
  ray_ref_t r;
  if (ray_task_submit(g_big, &a, 1, &o, &r) != 0) return 10;
  ray_buf_t b;
  if (ray_get(r, RAY_TIMEOUT_INFINITE, &b) != RAY_ESTOREFULL) return 11;
  ray_error_t *err = NULL;
  char text[1024] = "";
  if (ray_get_error(r, &err) != 0 || err == NULL) return 12;
  ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  if (strstr(text, "could not be fetched from rank 1") == NULL) {
    fprintf(stderr, "the error says: %s\n", text);
    return 13;
  }
  ray_ref_release(r);
  /* 2. No room now (all but 24 KiB held in views, not spillable): a large
   *    result's pull and a small result (inside its answer) wait for room
   *    on a worker. Rank 1 answers whoami after them (one worker, in
   *    order), so once whoami's answer is here theirs came first and they
   *    wait: the communication thread served on meanwhile. */
  unsigned char *p = malloc((size_t)(3 * mib));
  if (p == NULL) return 2;
  memset(p, 0x5A, (size_t)(3 * mib));
  ray_ref_t held, held2;
  ray_buf_t view, view2;
  if (ray_put(p, (size_t)(3 * mib), &held) != 0 || ray_get(held, 0, &view) != 0) return 14;
  if (ray_put(p, 1000 * 1024, &held2) != 0 || ray_get(held2, 0, &view2) != 0) return 14;
  a = ray_arg_i64(2 * mib);
  ray_arg_t a_small = ray_arg_i64(40 * 1024);
  ray_ref_t big, small, who;
  if (ray_task_submit(g_big, &a, 1, &o, &big) != 0) return 15;
  if (ray_task_submit(g_big, &a_small, 1, &o, &small) != 0) return 15;
  if (ray_task_submit(g_whoami, NULL, 0, &o, &who) != 0) return 15;
  int64_t v = -1;
  if (ray_get_i64(who, RAY_TIMEOUT_INFINITE, &v) != 0 || v != 1) return 16;
  ray_ref_release(who);
  ray_buf_release(&view); /* room: the waiting results go on */
  ray_buf_release(&view2);
  ray_ref_release(held);
  ray_ref_release(held2);
  if (check_big(big, 2 * mib) != 0) return 17;
  if (check_big(small, 40 * 1024) != 0) return 24;
  ray_ref_release(big);
  ray_ref_release(small);
  /* 3. An argument pulled here is reserved the same way: 8 MiB from rank 1
   *    for a task here cannot come, and the task is refused. */
  a = ray_arg_i64(8 * mib);
  if (ray_task_submit(g_send_big, &a, 1, &o, &r) != 0) return 25;
  if (ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v) != RAY_ESTOREFULL) return 26;
  if (ray_get_error(r, &err) != 0 || err == NULL) return 27;
  ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  if (strstr(text, "an argument of check_big could not be fetched from its owner") == NULL) {
    fprintf(stderr, "the error says: %s\n", text);
    return 28;
  }
  ray_ref_release(r);
  a = ray_arg_i64(2 * mib);
  /* 4. The reservation spills: 3 MiB put (unpinned), a 2 MiB pull. */
  if (ray_put(p, (size_t)(3 * mib), &held) != 0) return 18;
  if (ray_task_submit(g_big, &a, 1, &o, &big) != 0) return 19;
  if (check_big(big, 2 * mib) != 0) return 20;
  ray_ref_release(big);
  ray_stats_t st;
  if (ray_stats(&st) != 0 || st.spill_count < 1) return 21;
  if (ray_get(held, RAY_TIMEOUT_INFINITE, &view) != 0) return 22; /* restored */
  bool same = view.size == (size_t)(3 * mib) && memcmp(view.data, p, view.size) == 0;
  ray_buf_release(&view);
  ray_ref_release(held);
  if (!same) return 23;
  /* 5. A pulled copy is a cache: a 2 MiB object rank 1 owns, read here,
   *    then a 3 MiB put, which has room only once the copy is evicted (a
   *    put evicts copies before it spills); a task on rank 1 taking it as
   *    an argument has it asked of rank 1 again, whose reservation spills
   *    the put; read here, and the put read back. */
  if (ray_stats(&st) != 0) return 30;
  uint64_t evicted = st.evict_count, refetched = st.refetch_count;
  if (ray_task_submit(g_put_big_ref, &a, 1, &o, &r) != 0) return 31;
  ray_msgpack_t m;
  if (ray_get_msgpack(r, RAY_TIMEOUT_INFINITE, &m) != 0) return 32;
  ray_ref_t theirs = m.nrefs == 1 ? m.refs[0] : RAY_REF_NIL; /* one reference of ours */
  if (theirs.id >> 48 != 1) return 33;            /* owned by rank 1 (ids carry their owner) */
  if (check_big(theirs, 2 * mib) != 0) return 34; /* pulled here */
  if (ray_put(p, (size_t)(3 * mib), &held) != 0) return 35;
  if (ray_stats(&st) != 0 || st.evict_count <= evicted) return 36;
  /* A task on rank 1 taking the evicted copy as its argument: sent once
   * the copy is back (asked for again, awaited on a worker here). */
  ray_arg_t ta = ray_arg_ref(theirs);
  ray_ref_t r2;
  if (ray_task_submit(g_check_big, &ta, 1, &o, &r2) != 0) return 42;
  if (ray_get_i64(r2, RAY_TIMEOUT_INFINITE, &v) != 0 || v != 2 * mib) return 43;
  ray_ref_release(r2);
  if (ray_stats(&st) != 0 || st.refetch_count <= refetched) return 38;
  if (check_big(theirs, 2 * mib) != 0) return 37;
  if (ray_get(held, RAY_TIMEOUT_INFINITE, &view) != 0) return 39;
  same = view.size == (size_t)(3 * mib) && memcmp(view.data, p, view.size) == 0;
  ray_buf_release(&view);
  if (ray_ref_release_batch(m.refs, m.nrefs) != 0) return 41; /* the proxy goes */
  ray_msgpack_release(&m);
  ray_ref_release(r);
  ray_ref_release(held);
  free(p);
  return same ? 0 : 40;
}

/* A mode run as one job: every rank starts with `cfg`, the others serve,
 * rank 0 runs `driver` (0: passed, else the step that failed), then stops
 * the job and checks nothing is left. */
static int run_driven(int rank, const ray_config_t *cfg, int (*driver)(void), const char *mode) {
  ray__alloc_track(true);
  int rc = ray_init(cfg);
  if (rc != 0) {
    fprintf(stderr, "rank %d: ray_init: %s\n", rank, ray_err_name(rc));
    return 1;
  }
  if (rank != 0) return ray_serve() == 0 ? 0 : 5;
  rc = driver();
  if (rc != 0) fprintf(stderr, "%s: step failed with %d\n", mode, rc);
  if (ray_shutdown() != 0) return 5;
  if (rc == 0 && (ray__threads_alive() != 0 || ray__alloc_outstanding() != 0)) return 6;
  return rc;
}

static int run_small_store(int rank) {
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.num_workers = rank == 0 ? 2 : 1;
  if (rank == 0) {
    cfg.object_store_memory = 4u << 20;
    cfg.enable_spilling = true;
    cfg.store_full_timeout_ms = 60000; /* the wait in step 2 ends when room is made */
  }
  return run_driven(rank, &cfg, small_store_driver, "small_store");
}

/* "lost_peer" (3 ranks): rank 0 takes rank 1 as lost, as when MPI
 * reports a failed message (the test hook; rank 1 itself goes on, so the
 * job still ends cleanly). A task in flight there fails with RAY_ENODE
 * (its nap outlasts the loss: 5 s), one placed there afterwards too, a
 * proxy of a rank-1 object still pending there fails with it, rank 2
 * still works, and RAY_NODE_ANY never picks rank 1. */
static int lost_peer_driver(void) {
  if (ray_num_ranks() != 3) return 2;
  if (ray__cluster_lose_rank(0) != RAY_EINVAL || ray__cluster_lose_rank(3) != RAY_EINVAL ||
      ray__cluster_lose_rank(-1) != RAY_EINVAL)
    return 10;
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = 1;
  ray_arg_t a = ray_arg_i64(5000);
  ray_ref_t napping, later, elsewhere;
  ray_stats_t st;
  if (ray_stats(&st) != 0) return 11;
  uint64_t sent = st.remote_tasks_sent;
  if (ray_task_submit(g_nap, &a, 1, &o, &napping) != 0) return 11;
  /* Sent (ray_stats counts it once it went): in flight when the loss comes. */
  for (int i = 0; i < 60000 && ray_stats(&st) == 0 && st.remote_tasks_sent == sent; i++)
    uv_sleep(1);
  if (st.remote_tasks_sent == sent) return 11;
  /* A proxy here of an object on rank 1 still pending there (a nap it
   * made): its value never comes once rank 1 is lost. */
  ray_ref_t wrapped, theirs;
  ray_msgpack_t m;
  if (ray_task_submit(g_nap_wrapped, &a, 1, &o, &wrapped) != 0) return 22;
  if (ray_get_msgpack(wrapped, RAY_TIMEOUT_INFINITE, &m) != 0) return 22;
  if (m.obj.type != MSGPACK_OBJECT_ARRAY || m.obj.via.array.size != 1 ||
      ray_msgpack_ref(&m.obj.via.array.ptr[0], &theirs) != 0 || theirs.id >> 48 != 1)
    return 23;
  if (ray_ref_release_batch(m.refs, m.nrefs) != 0) return 23;
  ray_msgpack_release(&m);
  if (ray__cluster_lose_rank(1) != 0) return 12;
  int64_t w = -1;
  if (ray_get_i64(theirs, RAY_TIMEOUT_INFINITE, &w) != RAY_ENODE) return 24;
  ray_ref_release(wrapped);
  int64_t v = -1;
  if (ray_get_i64(napping, RAY_TIMEOUT_INFINITE, &v) != RAY_ENODE) return 13;
  ray_error_t *err = NULL;
  char text[1024] = "";
  if (ray_get_error(napping, &err) != 0 || err == NULL) return 14;
  ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  if (strstr(text, "rank 1, where nap ran, was lost") == NULL) {
    fprintf(stderr, "the error says: %s\n", text);
    return 15;
  }
  ray_ref_release(napping);
  if (ray_task_submit(g_whoami, NULL, 0, &o, &later) != 0) return 16;
  if (ray_get_i64(later, RAY_TIMEOUT_INFINITE, &v) != RAY_ENODE) return 17;
  if (ray_get_error(later, &err) != 0 || err == NULL) return 14;
  ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  if (strstr(text, "placed on rank 1, which was lost") == NULL) {
    fprintf(stderr, "the error says: %s\n", text);
    return 17;
  }
  ray_ref_release(later);
  o.node = 2;
  if (ray_task_submit(g_whoami, NULL, 0, &o, &elsewhere) != 0) return 18;
  if (ray_get_i64(elsewhere, RAY_TIMEOUT_INFINITE, &v) != 0 || v != 2) return 19;
  ray_ref_release(elsewhere);
  /* RAY_NODE_ANY with this rank busy (its two workers napping, more
   * queued): the spill-over goes to rank 2, never to the lost rank 1. */
  enum { N = 12 };
  ray_ref_t any[N];
  a = ray_arg_i64(200);
  for (int i = 0; i < N; i++)
    if (ray_task_submit(g_nap, &a, 1, NULL, &any[i]) != 0) return 20;
  for (int i = 0; i < N; i++) {
    if (ray_get_i64(any[i], RAY_TIMEOUT_INFINITE, &v) != 0 || v == 1) return 21;
    ray_ref_release(any[i]);
  }
  return 0;
}

static int run_lost_peer(int rank) {
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.num_workers = 2;
  return run_driven(rank, &cfg, lost_peer_driver, "lost_peer");
}

/* "host_mpi" (3 ranks): the host initialises MPI itself and gives the
 * library a communicator of its own making: world ranks 0 and 1 form one
 * cluster, world rank 2 another of one rank. The library works on those
 * ranks only, its messages never meet the host's (a host barrier on the
 * same communicator while it runs), and it leaves MPI initialised for the
 * host, which finalises it. "host_mpi_single": a host MPI without
 * MPI_THREAD_MULTIPLE is refused with RAY_ENOTSUP. */
static int run_host_mpi(bool single) {
  int provided = 0;
  int err =
      single ? MPI_Init(NULL, NULL) : MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
  if (err != MPI_SUCCESS) return 2;
  MPI_Query_thread(&provided);
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.num_workers = 1;
  if (single) {
    if (provided >= MPI_THREAD_MULTIPLE) return 2; /* this MPI gives more: nothing to test */
    int rc = ray_init(&cfg);
    if (rc != RAY_ENOTSUP || ray_is_initialized()) {
      fprintf(stderr, "ray_init on an MPI_THREAD_SINGLE host: %s\n", ray_err_name(rc));
      return 3;
    }
    return MPI_Finalize() == MPI_SUCCESS ? 0 : 4;
  }
  if (provided < MPI_THREAD_MULTIPLE) return 2;
  int world = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &world);
  MPI_Comm sub;
  if (MPI_Comm_split(MPI_COMM_WORLD, world < 2 ? 0 : 1, world, &sub) != MPI_SUCCESS) return 2;
  cfg.mpi_comm = &sub;
  int rc = ray_init(&cfg);
  if (rc != 0) {
    fprintf(stderr, "world rank %d: ray_init: %s\n", world, ray_err_name(rc));
    return 1;
  }
  if (ray_num_ranks() != (world < 2 ? 2 : 1) || ray_rank() != (world < 2 ? world : 0)) return 5;
  if (MPI_Barrier(sub) != MPI_SUCCESS) return 6; /* the host's, beside the library's traffic */
  if (ray_rank() == 0) {
    if (!whoami_everywhere()) return 7;
    if (ray_shutdown() != 0) return 8;
  } else if (ray_serve() != 0) {
    return 8;
  }
  int finalized = 1;
  MPI_Finalized(&finalized);
  if (finalized) return 9; /* the host's MPI is the host's to end */
  int one = 1, sum = 0;
  if (MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD) != MPI_SUCCESS || sum != 3)
    return 10;
  MPI_Comm_free(&sub);
  return MPI_Finalize() == MPI_SUCCESS ? 0 : 11;
}

static char g_log_hit[256];
static const char *g_log_want;
static void capture_log(int level, const char *msg, void *arg) {
  (void)arg;
  if (level == RAY_LOG_ERROR && strstr(msg, g_log_want) != NULL)
    snprintf(g_log_hit, sizeof g_log_hit, "%s", msg);
}

int main(int argc, char **argv) {
  /* The rank before ray_init: from the launcher's environment. */
  const char *env_rank = getenv("OMPI_COMM_WORLD_RANK");
  int rank = env_rank != NULL ? atoi(env_rank) : 0;
  add_statics();
  if (argc > 1 && strcmp(argv[1], "observe") == 0) return run_observe(rank);
  if (argc > 1 && strcmp(argv[1], "serve_in_init") == 0) return run_serve_in_init(rank);
  if (argc > 1 && strcmp(argv[1], "spmd") == 0) return run_spmd(rank);
  if (argc > 1 && strcmp(argv[1], "small_store") == 0) return run_small_store(rank);
  if (argc > 1 && strcmp(argv[1], "lost_peer") == 0) return run_lost_peer(rank);
  if (argc > 1 && strncmp(argv[1], "host_mpi", 8) == 0)
    return run_host_mpi(strcmp(argv[1], "host_mpi_single") == 0);
  if (argc > 1 && strncmp(argv[1], "mismatch", 8) == 0) {
    bool types = strcmp(argv[1], "mismatch_types") == 0;
    g_log_want = types ? "function inc is" : "function only_on_rank_1 is";
    ray_log_set_handler(capture_log, NULL);
    int rc = run_mismatch(rank, types);
    if (rc == 0 && g_log_hit[0] == '\0') {
      fprintf(stderr, "rank %d: no error with \"%s\" was logged\n", rank, g_log_want);
      rc = 4;
    }
    return rc;
  }
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.num_workers = 2;
  ray__alloc_track(true);
  int rc = ray_init(&cfg);
  if (rc != 0) {
    fprintf(stderr, "rank %d: ray_init: %s\n", rank, ray_err_name(rc));
    return 1;
  }
  if (ray_rank() != 0) {
    if (ray_shutdown() != RAY_EBUSY) return 5; /* only the driver stops the job */
    rc = ray_serve();
    if (rc != 0) {
      fprintf(stderr, "rank %d: ray_serve: %s\n", ray_rank(), ray_err_name(rc));
      return 1;
    }
    if (ray_is_initialized() || ray__threads_alive() != 0 || ray__alloc_outstanding() != 0) {
      fprintf(stderr, "rank %d: not clean after ray_serve\n", rank);
      return 6;
    }
    return 0;
  }
  g_ranks = ray_num_ranks();
  /* Tests that need a rank 1 are left out with one rank; the one that
   * leaves work in flight goes last (the teardown shuts down). */
  const struct CMUnitTest all[] = {
      cmocka_unit_test(test_ranks),
      cmocka_unit_test(test_task_runs_where_placed),
      cmocka_unit_test(test_values_round_trip),
      cmocka_unit_test(test_ref_argument),
      cmocka_unit_test(test_chain_across_ranks),
      cmocka_unit_test(test_fan_out_fan_in),
      cmocka_unit_test(test_failure_across_ranks),
      cmocka_unit_test(test_retries_remote),
      cmocka_unit_test(test_cancel_before_sent),
      cmocka_unit_test(test_cancel_after_sent),
      cmocka_unit_test(test_cancel_while_pulling_args),
      cmocka_unit_test(test_nested_and_gets_inside_remote_tasks),
      cmocka_unit_test(test_ranks_place_work_on_each_other),
      cmocka_unit_test(test_ids_carry_their_owner),
      cmocka_unit_test(test_64mib_across_ranks),
      cmocka_unit_test(test_pull_in_chunks),
      cmocka_unit_test(test_bad_node),
      cmocka_unit_test(test_remote_actor_calls_in_order),
      cmocka_unit_test(test_remote_actor_order_with_pending_args),
      cmocka_unit_test(test_remote_actor_restart_and_kill),
      cmocka_unit_test(test_remote_actor_concurrency),
      cmocka_unit_test(test_remote_actor_release),
      cmocka_unit_test(test_remote_actor_errors),
      cmocka_unit_test(test_named_actor_from_every_rank),
      cmocka_unit_test(test_refs_churned_across_ranks),
      cmocka_unit_test(test_ref_through_three_ranks_and_back),
      cmocka_unit_test(test_actor_handles_travel),
      cmocka_unit_test(test_any_spreads_when_busy),      /* needs rank 1 */
      cmocka_unit_test(test_refs_in_values_travel),      /* needs rank 1 */
      cmocka_unit_test(test_function_missing_on_target), /* needs rank 1 */
      cmocka_unit_test(test_work_in_flight_at_shutdown),
  };
  enum { N_ALL = sizeof all / sizeof all[0], N_NEED_TWO = 3 };
  struct CMUnitTest chosen[N_ALL];
  size_t n = 0;
  for (size_t i = 0; i < N_ALL; i++)
    if (g_ranks >= 2 || i < N_ALL - 1 - N_NEED_TWO || i == N_ALL - 1) chosen[n++] = all[i];
  return _cmocka_run_group_tests("test_cluster_mpi", chosen, n, group_setup, group_teardown);
}
