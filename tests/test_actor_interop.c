/* test_actor_interop.c - actors with the rest of the API: actor handles
 * passed to tasks and to other actors (also held at shutdown), data shared
 * through the store, the context accessors, method failures, call options,
 * bad input to ray_actor_call, and shutdown with live actors and with calls
 * queued or running.
 *
 * The classes, their state and the helpers are in actors_util.h; methods
 * run on worker threads and record failed checks into g_errs (AC), asserted
 * after each runtime is shut down. */
#define _POSIX_C_SOURCE 200809L
#include "actors_util.h"

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

/* ---- actor handles inside values (RAY_MSGPACK_EXT_ACTOR) ------------------ */

/* [handle, n] packed into `sb` (msgpack-c's buffer). */
static void pack_handle_value(msgpack_sbuffer *sb, ray_actor_t a, int64_t n) {
  msgpack_sbuffer_init(sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  assert_rc(ray_msgpack_pack_actor(&pk, a), 0);
  msgpack_pack_int64(&pk, n);
}

/* Task: call add(n) on the actor inside argument 0 ([handle, n]) and
 * return what the call returned. */
static int t_add_via_value(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  msgpack_object o;
  int rc = ray_ctx_arg_msgpack(ctx, 0, &o);
  AC(rc == 0 && o.type == MSGPACK_OBJECT_ARRAY && o.via.array.size == 2, rc);
  ray_actor_t a;
  AC((rc = ray_msgpack_actor(&o.via.array.ptr[0], &a)) == 0, rc);
  ray_arg_t n = ray_arg_i64(o.via.array.ptr[1].via.i64);
  ray_ref_t r;
  AC((rc = ray_actor_call(a, "add", &n, 1, NULL, &r)) == 0, rc);
  int64_t v = 0;
  rc = ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v);
  ray_ref_release(r);
  AC(rc == 0, rc);
  return ray_return_i64(ctx, 0, v);
}

/* Task: return argument 0 as it is (a result holding what it holds); with
 * argument 1 true, first check that a value naming a released handle is
 * refused. */
static int t_echo_value(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  msgpack_object o;
  int rc = ray_ctx_arg_msgpack(ctx, 0, &o);
  AC(rc == 0, rc);
  int64_t bad = 0;
  AC(ray_ctx_arg_i64(ctx, 1, &bad) == 0, 0);
  if (bad != 0) {
    msgpack_sbuffer sb;
    pack_handle_value(&sb, (ray_actor_t){(uint64_t)bad}, 1);
    AC(ray_return_msgpack_bytes(ctx, 0, sb.data, sb.size) == RAY_ENOTFOUND, 0);
    msgpack_sbuffer_destroy(&sb);
  }
  return ray_return_msgpack(ctx, 0, &o);
}

/* Wait for `r` to succeed (keeping it). */
static void wait_ok(ray_ref_t r) {
  ray_buf_t b;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), 0);
  ray_buf_release(&b);
}

/* Handles inside values keep their actor alive: a put, an argument, a
 * result; the last of them to go lets the actor go. */
static void test_actor_handles_inside_values(void **state) {
  (void)state;
  a_begin(2);
  static const uint32_t t_i64[1] = {RAY_TYPE_I64}, t_mp[1] = {RAY_TYPE_MSGPACK};
  ray_function_t f_add, f_echo;
  assert_rc(ray_function_register("add_via_value", t_add_via_value, NULL, t_i64, 1, &f_add), 0);
  assert_rc(ray_function_register("echo_value", t_echo_value, NULL, t_mp, 1, &f_echo), 0);
  ray_actor_t a = mk_counter(0);
  msgpack_sbuffer sb;
  pack_handle_value(&sb, a, 7);
  ray_ref_t v;
  assert_rc(ray_put_msgpack_bytes(sb.data, sb.size, &v), 0);
  /* Ours goes: the object's hold keeps the actor. */
  assert_rc(ray_actor_release(a), 0);
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(v, RAY_TIMEOUT_INFINITE, &m), 0);
  assert_int_equal(m.nrefs, 0); /* handles are not listed as refs */
  ray_actor_t inside;
  assert_rc(ray_msgpack_actor(&m.obj.via.array.ptr[0], &inside), 0);
  assert_true(inside.id == a.id);
  assert_rc(ray_msgpack_actor(&m.obj.via.array.ptr[1], &inside), RAY_ETYPE);
  ray_msgpack_release(&m);
  /* As an argument, by ref, by value and as encoded bytes. */
  ray_arg_t args[2] = {ray_arg_ref(v), ray_arg_i64(0)};
  ray_ref_t r;
  assert_rc(ray_task_submit(f_add, args, 1, NULL, &r), 0);
  assert_int_equal(take_i64(r), 7);
  args[0] = ray_arg_msgpack_bytes(sb.data, sb.size);
  assert_rc(ray_task_submit(f_add, args, 1, NULL, &r), 0);
  assert_int_equal(take_i64(r), 14);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
  args[0] = ray_arg_msgpack(&u.data);
  assert_rc(ray_task_submit(f_add, args, 1, NULL, &r), 0);
  assert_int_equal(take_i64(r), 21);
  /* In a result: the put goes, the result holds the actor. */
  args[0] = ray_arg_ref(v);
  assert_rc(ray_task_submit(f_echo, args, 2, NULL, &r), 0);
  wait_ok(r);
  assert_rc(ray_ref_release(v), 0);
  args[0] = ray_arg_ref(r);
  args[1] = ray_arg_i64(0);
  ray_ref_t r2;
  assert_rc(ray_task_submit(f_add, args, 1, NULL, &r2), 0);
  assert_int_equal(take_i64(r2), 28);
  assert_int_equal(atomic_load(&g_dtors), 0); /* held by r: it cannot have gone */
  /* The last holder goes: the actor is destroyed. */
  assert_rc(ray_ref_release(r), 0);
  rt_latch_wait(&g_dtor_latch, 1);
  /* Its handle is unknown now: values naming it are refused everywhere. */
  ray_ref_t none = RAY_REF_NIL;
  assert_rc(ray_put_msgpack_bytes(sb.data, sb.size, &none), RAY_ENOTFOUND);
  assert_rc(ray_put_msgpack(&u.data, &none), RAY_ENOTFOUND);
  assert_true(none.id == 0);
  args[0] = ray_arg_msgpack_bytes(sb.data, sb.size);
  assert_rc(ray_task_submit(f_add, args, 1, NULL, &none), RAY_ENOTFOUND);
  args[0] = ray_arg_msgpack(&u.data);
  assert_rc(ray_task_submit(f_add, args, 1, NULL, &none), RAY_ENOTFOUND);
  /* ... and in a result (the task checks its own ray_return_msgpack_bytes). */
  ray_actor_t live = mk_counter(0);
  msgpack_sbuffer sb2;
  pack_handle_value(&sb2, live, 1);
  args[0] = ray_arg_msgpack_bytes(sb2.data, sb2.size);
  args[1] = ray_arg_i64((int64_t)a.id);
  assert_rc(ray_task_submit(f_echo, args, 2, NULL, &r), 0);
  wait_ok(r);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_actor_release(live), 0);
  msgpack_sbuffer_destroy(&sb2);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  a_end();
  assert_int_equal(atomic_load(&g_dtors), atomic_load(&g_ctors)); /* the second's, if it ran */
}

/* The codec of the handle ext: bad input. */
static void test_actor_ext_codec(void **state) {
  (void)state;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  assert_rc(ray_msgpack_pack_actor(NULL, (ray_actor_t){1}), RAY_EINVAL);
  assert_rc(ray_msgpack_pack_actor(&pk, (ray_actor_t){0}), RAY_EINVAL);
  assert_int_equal(sb.size, 0);
  ray_actor_t out;
  assert_rc(ray_msgpack_actor(NULL, &out), RAY_EINVAL);
  msgpack_object o = {.type = MSGPACK_OBJECT_POSITIVE_INTEGER};
  assert_rc(ray_msgpack_actor(&o, NULL), RAY_EINVAL);
  assert_rc(ray_msgpack_actor(&o, &out), RAY_ETYPE);
  static const char seven[7] = {0}, zero[8] = {0};
  o.type = MSGPACK_OBJECT_EXT;
  o.via.ext.type = RAY_MSGPACK_EXT_ACTOR;
  o.via.ext.ptr = seven;
  o.via.ext.size = 7;
  assert_rc(ray_msgpack_actor(&o, &out), RAY_EDECODE);
  o.via.ext.ptr = zero;
  o.via.ext.size = 8;
  assert_rc(ray_msgpack_actor(&o, &out), RAY_EDECODE);
  o.via.ext.type = RAY_MSGPACK_EXT_REF;
  assert_rc(ray_msgpack_actor(&o, &out), RAY_ETYPE);
  /* A malformed handle inside a value is refused by the puts. */
  a_begin(1);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_ext(&pk, 7, RAY_MSGPACK_EXT_ACTOR);
  msgpack_pack_ext_body(&pk, seven, 7);
  ray_ref_t none = RAY_REF_NIL;
  assert_rc(ray_put_msgpack_bytes(sb.data, sb.size, &none), RAY_EDECODE);
  a_end();
  msgpack_sbuffer_destroy(&sb);
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
  /* The counter is constructed (a call of it has run): only then is its
   * destructor owed. Its constructor may still be queued otherwise, and
   * shutdown drops a constructor that never ran (no destructor either). */
  assert_int_equal(take_i64(call0(b, "get")), 0);
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
      cmocka_unit_test(test_actor_handles_as_arguments),
      cmocka_unit_test(test_handle_held_at_shutdown),
      cmocka_unit_test(test_actor_handles_inside_values),
      cmocka_unit_test(test_actor_ext_codec),
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
