/* test_oom.c - out-of-memory, the way SQLite tests it.
 *
 * For each operation, for N = 1, 2, ...: start a runtime, build a baseline
 * (ready objects, pending objects, a failed one), arm the allocator to fail
 * its N-th allocation from now, run the operation, disarm. Until the
 * operation succeeds without the injected failure firing, every run must
 * fail with RAY_ENOMEM and leave the store as it was: same object and byte
 * counts, the baseline still readable, pending objects still completable,
 * callbacks of failed registrations never run, owned buffers still the
 * caller's. Every run ends with a clean shutdown: no thread, no allocation
 * left. An operation may also succeed although the failure fired (a failed
 * hash-table growth is harmless); then its result must be right.
 *
 * Tasks: ray_task_submit (value arguments, ref arguments, several returns)
 * runs through the same driver, with both workers held by latched tasks so
 * the submitted task cannot run (and allocate) while the failure is armed.
 * A task's own run (its ray_return_* calls, its failure) is driven
 * separately, in test_oom_task_run. */
#include "test_util.h"

#define OOM_MAX_N 1000
#define NPENDING 6
#define NBATCH 40

typedef struct octx {
  /* Baseline, made before arming. */
  ray_ref_t small, big, i64, str, failed;
  ray_ref_t pending[NPENDING];
  ray_ref_t ready_many[NBATCH];
  /* Operation outputs. */
  ray_ref_t out[NBATCH];
  ray_ref_t *many; /* put_many */
  size_t nmany;
  ray_buf_t buf;
  ray_buf_t bufs[NBATCH];
  bool ready[NBATCH + NPENDING];
  int64_t v;
  char *s;
  size_t slen;
  ray_msgpack_t m;
  ray_error_t *err;
  void *owned;
  rt_cb_rec_t rec;
  rt_latch_t latch;
  int cb_expected;         /* callbacks that must have run by the end of the run */
  uint64_t created_anyway; /* objects a failed op made (and released) */
  /* Tasks. */
  ray_function_t fn;
  ray_ref_t blockers[2];
  ray_ref_t args[4];
  ray_ref_t res[3];
  rt_latch_t started, go;
} octx_t;

typedef struct {
  const char *name;
  unsigned num_shards; /* 0: the default */
  void (*prepare)(octx_t *);
  int (*op)(octx_t *);
  int expect; /* the operation's result when it succeeds */
  void (*after_ok)(octx_t *);
  void (*after_fail)(octx_t *);
} oom_case_t;

static size_t big_size(void) {
  return 5000;
}
static size_t batch_size(size_t i) {
  return i % 4 == 0 ? 0 : i % 4 == 1 ? 12 : i % 4 == 2 ? 3000 : 64;
}

static ray_error_t *make_chain(void) {
  ray_error_t *top = NULL, *mid = NULL, *leaf = NULL;
  assert_rc(ray_error_new(&top, RAY_EDEPFAILED, "consumer", NULL), 0);
  assert_rc(ray_error_new(&mid, RAY_ETASK, "producer", "boom %d", 42), 0);
  assert_rc(ray_error_new(&leaf, RAY_EIO, NULL, "disk read failed"), 0);
  assert_rc(ray_error_set_task_id(top, 7), 0);
  assert_rc(ray_error_set_attempts(mid, 2), 0);
  assert_rc(ray_error_set_cause(mid, leaf), 0);
  assert_rc(ray_error_set_cause(top, mid), 0);
  return top;
}

static void assert_chain(const ray_error_t *e) {
  assert_non_null(e);
  assert_int_equal(ray_error_code(e), RAY_EDEPFAILED);
  assert_string_equal(ray_error_origin(e), "consumer");
  assert_true(ray_error_task_id(e) == 7);
  const ray_error_t *mid = ray_error_cause(e);
  assert_non_null(mid);
  assert_int_equal(ray_error_code(mid), RAY_ETASK);
  assert_string_equal(ray_error_message(mid), "boom 42");
  assert_int_equal(ray_error_attempts(mid), 2);
  const ray_error_t *leaf = ray_error_cause(mid);
  assert_non_null(leaf);
  assert_int_equal(ray_error_code(leaf), RAY_EIO);
  assert_string_equal(ray_error_message(leaf), "disk read failed");
  assert_null(ray_error_cause(leaf));
}

/* ---- baseline ----------------------------------------------------------- */

static void baseline_make(octx_t *x) {
  unsigned char buf[5000];
  rt_fill(buf, 10, 1);
  assert_rc(ray_put(buf, 10, &x->small), 0);
  rt_fill(buf, big_size(), 2);
  assert_rc(ray_put(buf, big_size(), &x->big), 0);
  assert_rc(ray_put_i64(-42, &x->i64), 0);
  assert_rc(ray_put_str("baseline string", &x->str), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &x->failed), 0);
  ray_error_t *e = make_chain();
  assert_rc(ray__object_fail(x->failed, e), 0);
  ray_error_free(e);
  for (size_t i = 0; i < NPENDING; i++)
    assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &x->pending[i]), 0);
}

static void baseline_check(octx_t *x) {
  ray_buf_t b;
  assert_rc(ray_get(x->small, 0, &b), 0);
  assert_true(b.size == 10 && rt_check(b.data, 10, 1));
  ray_buf_release(&b);
  assert_rc(ray_get(x->big, 0, &b), 0);
  assert_true(b.size == big_size() && rt_check(b.data, big_size(), 2));
  ray_buf_release(&b);
  int64_t v = 0;
  assert_rc(ray_get_i64(x->i64, 0, &v), 0);
  assert_int_equal(v, -42);
  char *s = NULL;
  assert_rc(ray_get_str(x->str, 0, &s, NULL), 0);
  assert_string_equal(s, "baseline string");
  ray_free(s);
  assert_rc(ray_get(x->failed, 0, &b), RAY_EDEPFAILED);
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(x->failed, &e), 0);
  assert_chain(e);
  ray_error_free(e);
}

/* Completing the pending objects after the operation proves no waiter or
 * watch node of a failed call was left behind (ASan would catch a dangling
 * one) and that they still work. */
static void complete_pending(octx_t *x) {
  for (size_t i = 0; i < NPENDING; i++) {
    ray_buf_t b;
    int rc = ray_get(x->pending[i], 0, &b);
    if (rc == 0) { /* an operation fulfilled it */
      ray_buf_release(&b);
      continue;
    }
    if (rc == RAY_EDEPFAILED) continue; /* an operation failed it */
    assert_rc(rc, RAY_ETIMEDOUT);
    assert_rc(ray__object_fulfil(x->pending[i], "p", 1), 0);
    assert_rc(ray_get(x->pending[i], 0, &b), 0);
    assert_true(b.size == 1 && memcmp(b.data, "p", 1) == 0);
    ray_buf_release(&b);
  }
}

static void baseline_release(octx_t *x) {
  assert_rc(ray_ref_release(x->small), 0);
  assert_rc(ray_ref_release(x->big), 0);
  assert_rc(ray_ref_release(x->i64), 0);
  assert_rc(ray_ref_release(x->str), 0);
  assert_rc(ray_ref_release(x->failed), 0);
  for (size_t i = 0; i < NPENDING; i++) assert_rc(ray_ref_release(x->pending[i]), 0);
}

/* ---- the driver ----------------------------------------------------------- */

static void run_case(const oom_case_t *c) {
  bool converged = false;
  long n;
  long fired_runs = 0;
  for (n = 1; n <= OOM_MAX_N && !converged; n++) {
    octx_t *x = calloc(1, sizeof *x);
    assert_non_null(x);
    rt_latch_init(&x->latch);
    rt_cb_rec_init(&x->rec, &x->latch);
    atomic_store(&rt_frees, 0);
    ray_config_t cfg;
    rt_config(&cfg);
    if (c->num_shards) cfg.num_shards = c->num_shards;
    rt_begin_cfg(&cfg);
    baseline_make(x);
    if (c->prepare) c->prepare(x);
    ray_stats_t before = rt_stats();

    ray__alloc_fail_after(n, false);
    int rc = c->op(x);
    bool fired = ray__alloc_failed();
    ray__alloc_fail_after(0, false);

    if (rc == c->expect) {
      converged = !fired;
      if (c->after_ok) c->after_ok(x);
    } else {
      if (rc != RAY_ENOMEM || !fired) {
        print_error("%s: N=%ld returned %d (%s), injected failure %s\n", c->name, n, rc,
                    ray_err_name(rc), fired ? "fired" : "did not fire");
        fail();
      }
      fired_runs++;
      ray_stats_t after = rt_stats();
      if (after.objects != before.objects || after.bytes_in_memory != before.bytes_in_memory ||
          after.objects_created != before.objects_created + x->created_anyway) {
        print_error(
            "%s: N=%ld: store changed by a failed call: objects %llu -> %llu, bytes "
            "%llu -> %llu, created %llu -> %llu\n",
            c->name, n, (unsigned long long)before.objects, (unsigned long long)after.objects,
            (unsigned long long)before.bytes_in_memory, (unsigned long long)after.bytes_in_memory,
            (unsigned long long)before.objects_created, (unsigned long long)after.objects_created);
        fail();
      }
      if (c->after_fail) c->after_fail(x);
    }
    baseline_check(x);
    complete_pending(x);
    baseline_release(x);
    rt_end();
    /* Callbacks: exactly the successful registrations ran, exactly once. */
    assert_int_equal(atomic_load(&x->rec.calls), x->cb_expected);
    if (x->cb_expected) assert_int_equal(atomic_load(&x->rec.on_main), 0);
    rt_latch_destroy(&x->latch);
    free(x);
  }
  if (!converged) {
    print_error("%s did not converge within %d injected failures\n", c->name, OOM_MAX_N);
    fail();
  }
  print_message("[   OOM    ] %-22s %ld allocation points, %ld ENOMEM runs\n", c->name, n - 1,
                fired_runs);
}

/* ---- put ------------------------------------------------------------------ */

static int op_put_small(octx_t *x) {
  return ray_put("0123456789abcdef", 16, &x->out[0]);
}
static int op_put_big(octx_t *x) {
  unsigned char buf[70000];
  rt_fill(buf, sizeof buf, 77);
  return ray_put(buf, sizeof buf, &x->out[0]);
}
static void ok_put_small(octx_t *x) {
  ray_buf_t b;
  assert_rc(ray_get(x->out[0], 0, &b), 0);
  assert_true(b.size == 16 && memcmp(b.data, "0123456789abcdef", 16) == 0);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(x->out[0]), 0);
}
static void ok_put_big(octx_t *x) {
  ray_buf_t b;
  assert_rc(ray_get(x->out[0], 0, &b), 0);
  assert_true(b.size == 70000 && rt_check(b.data, 70000, 77));
  ray_buf_release(&b);
  assert_rc(ray_ref_release(x->out[0]), 0);
}

/* Many puts into one shard: drives hash-table growth into the failures. */
static size_t many_count(void) {
  return (size_t)rt_iters(300, 60);
}
static int op_put_many(octx_t *x) {
  size_t n = many_count();
  x->many = calloc(n, sizeof *x->many);
  if (x->many == NULL) return -1000;
  for (size_t i = 0; i < n; i++) {
    int64_t v = (int64_t)i;
    int rc = ray_put(&v, sizeof v, &x->many[i]);
    if (rc != 0) { /* undo, so the store must be as before */
      for (size_t j = 0; j < i; j++) (void)ray_ref_release(x->many[j]);
      x->created_anyway = i;
      free(x->many);
      x->many = NULL;
      return rc;
    }
  }
  x->nmany = n;
  return 0;
}
static void ok_put_many(octx_t *x) {
  for (size_t i = 0; i < x->nmany; i++) {
    ray_buf_t b;
    assert_rc(ray_get(x->many[i], 0, &b), 0);
    int64_t v;
    assert_int_equal(b.size, sizeof v);
    memcpy(&v, b.data, sizeof v);
    assert_int_equal(v, (int64_t)i);
    ray_buf_release(&b);
    assert_rc(ray_ref_release(x->many[i]), 0);
  }
  free(x->many);
}

static int op_put_owned(octx_t *x) {
  x->owned = malloc(6000);
  if (x->owned == NULL) return -1000;
  rt_fill(x->owned, 6000, 66);
  return ray_put_owned(x->owned, 6000, rt_count_free, NULL, &x->out[0]);
}
static void ok_put_owned(octx_t *x) {
  ray_buf_t b;
  assert_rc(ray_get(x->out[0], 0, &b), 0);
  assert_ptr_equal(b.data, x->owned);
  ray_buf_release(&b);
  assert_int_equal(atomic_load(&rt_frees), 0);
  assert_rc(ray_ref_release(x->out[0]), 0);
  assert_int_equal(atomic_load(&rt_frees), 1);
}
static void fail_put_owned(octx_t *x) {
  assert_int_equal(atomic_load(&rt_frees), 0); /* still the caller's */
  assert_true(rt_check(x->owned, 6000, 66));
  free(x->owned);
}

static int op_put_batch(octx_t *x) {
  const void *data[NBATCH];
  size_t sizes[NBATCH];
  static unsigned char mem[NBATCH][3000];
  for (size_t i = 0; i < NBATCH; i++) {
    sizes[i] = batch_size(i);
    rt_fill(mem[i], sizes[i], i + 500);
    data[i] = mem[i];
  }
  return ray_put_batch(data, sizes, NBATCH, x->out);
}
static void ok_put_batch(octx_t *x) {
  for (size_t i = 0; i < NBATCH; i++) {
    ray_buf_t b;
    assert_rc(ray_get(x->out[i], 0, &b), 0);
    assert_true(b.size == batch_size(i) && rt_check(b.data, b.size, i + 500));
    ray_buf_release(&b);
    assert_rc(ray_ref_release(x->out[i]), 0);
  }
}

static int op_put_i64(octx_t *x) {
  return ray_put_i64(INT64_MIN, &x->out[0]);
}
static void ok_put_i64(octx_t *x) {
  int64_t v = 0;
  assert_rc(ray_get_i64(x->out[0], 0, &v), 0);
  assert_true(v == INT64_MIN);
  assert_rc(ray_ref_release(x->out[0]), 0);
}

static int op_put_f64(octx_t *x) {
  return ray_put_f64(-2.75, &x->out[0]);
}
static void ok_put_f64(octx_t *x) {
  double d = 0;
  assert_rc(ray_get_f64(x->out[0], 0, &d), 0);
  assert_true(d == -2.75);
  assert_rc(ray_ref_release(x->out[0]), 0);
}

static char g_long_str[3001];
static int op_put_str(octx_t *x) {
  return ray_put_str(g_long_str, &x->out[0]);
}
static void ok_put_str(octx_t *x) {
  char *s = NULL;
  size_t len = 0;
  assert_rc(ray_get_str(x->out[0], 0, &s, &len), 0);
  assert_int_equal(len, 3000);
  assert_string_equal(s, g_long_str);
  ray_free(s);
  assert_rc(ray_ref_release(x->out[0]), 0);
}

/* {"k": [1, "two", 3.5]} */
static msgpack_sbuffer g_mp_sb;
static msgpack_unpacked g_mp;
static void mp_init(void) {
  msgpack_packer pk;
  msgpack_sbuffer_init(&g_mp_sb);
  msgpack_packer_init(&pk, &g_mp_sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str(&pk, 1);
  msgpack_pack_str_body(&pk, "k", 1);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str(&pk, 3);
  msgpack_pack_str_body(&pk, "two", 3);
  msgpack_pack_double(&pk, 3.5);
  msgpack_unpacked_init(&g_mp);
  size_t off = 0;
  assert_int_equal(msgpack_unpack_next(&g_mp, g_mp_sb.data, g_mp_sb.size, &off),
                   MSGPACK_UNPACK_SUCCESS);
}
static void mp_destroy(void) {
  msgpack_unpacked_destroy(&g_mp);
  msgpack_sbuffer_destroy(&g_mp_sb);
}
static int op_put_msgpack(octx_t *x) {
  return ray_put_msgpack(&g_mp.data, &x->out[0]);
}
static void ok_put_msgpack(octx_t *x) {
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(x->out[0], 0, &m), 0);
  assert_true(msgpack_object_equal(g_mp.data, m.obj));
  ray_msgpack_release(&m);
  assert_rc(ray_ref_release(x->out[0]), 0);
}

static void fail_nothing_out(octx_t *x) {
  (void)x;
}

/* ---- get -------------------------------------------------------------------- */

static int op_get_big(octx_t *x) {
  return ray_get(x->big, 0, &x->buf);
}
static void ok_get_big(octx_t *x) {
  assert_true(x->buf.size == big_size() && rt_check(x->buf.data, big_size(), 2));
  ray_buf_release(&x->buf);
}
static void fail_get(octx_t *x) {
  rt_assert_buf_zeroed(&x->buf);
}

/* A get that has to wait (and times out). */
static int op_get_pending(octx_t *x) {
  return ray_get(x->pending[0], 10, &x->buf);
}

static int op_get_i64(octx_t *x) {
  return ray_get_i64(x->i64, 0, &x->v);
}
static void ok_get_i64(octx_t *x) {
  assert_int_equal(x->v, -42);
}

static int op_get_str(octx_t *x) {
  return ray_get_str(x->str, 0, &x->s, &x->slen);
}
static void ok_get_str(octx_t *x) {
  assert_string_equal(x->s, "baseline string");
  assert_int_equal(x->slen, strlen("baseline string"));
  ray_free(x->s);
}
static void fail_get_str(octx_t *x) {
  assert_null(x->s);
}

static void prep_msgpack(octx_t *x) {
  assert_rc(ray_put_msgpack(&g_mp.data, &x->out[1]), 0);
}
static int op_get_msgpack(octx_t *x) {
  return ray_get_msgpack(x->out[1], 0, &x->m);
}
static void ok_get_msgpack(octx_t *x) {
  assert_true(msgpack_object_equal(g_mp.data, x->m.obj));
  ray_msgpack_release(&x->m);
  assert_rc(ray_ref_release(x->out[1]), 0);
}
static void fail_get_msgpack(octx_t *x) {
  assert_rc(ray_ref_release(x->out[1]), 0);
}

static void prep_batch(octx_t *x) {
  unsigned char buf[3000];
  for (size_t i = 0; i < NBATCH; i++) {
    rt_fill(buf, batch_size(i), i + 900);
    assert_rc(ray_put(buf, batch_size(i), &x->ready_many[i]), 0);
  }
}
static void release_batch(octx_t *x) {
  for (size_t i = 0; i < NBATCH; i++) assert_rc(ray_ref_release(x->ready_many[i]), 0);
}
static int op_get_batch(octx_t *x) {
  return ray_get_batch(x->ready_many, NBATCH, 0, x->bufs);
}
static void ok_get_batch(octx_t *x) {
  for (size_t i = 0; i < NBATCH; i++) {
    assert_true(x->bufs[i].size == batch_size(i) &&
                rt_check(x->bufs[i].data, x->bufs[i].size, i + 900));
    ray_buf_release(&x->bufs[i]);
  }
  release_batch(x);
}
static void fail_get_batch(octx_t *x) {
  assert_true(rt_is_zero(x->bufs, sizeof x->bufs)); /* no view held */
  release_batch(x);
}

/* A batch get that has to wait on pending refs (and times out). */
static int op_get_batch_pending(octx_t *x) {
  ray_ref_t refs[NBATCH];
  memcpy(refs, x->ready_many, sizeof refs);
  refs[5] = x->pending[1];
  refs[NBATCH - 1] = x->pending[2];
  return ray_get_batch(refs, NBATCH, 10, x->bufs);
}

static int op_get_error(octx_t *x) {
  return ray_get_error(x->failed, &x->err);
}
static void ok_get_error(octx_t *x) {
  assert_chain(x->err);
  ray_error_free(x->err);
}
static void fail_get_error(octx_t *x) {
  assert_null(x->err);
}

/* ---- wait ------------------------------------------------------------------- */

/* Mixed ready and pending refs, more wanted than ready: must register
 * watchers and sleep, then time out with 2 flagged. */
static int op_wait_pending(octx_t *x) {
  ray_ref_t refs[NPENDING + 2];
  refs[0] = x->pending[0];
  refs[1] = x->small;
  for (size_t i = 1; i < NPENDING; i++) refs[i + 1] = x->pending[i];
  refs[NPENDING + 1] = x->failed;
  return ray_wait(refs, NPENDING + 2, 4, 10, x->ready);
}
static void ok_wait_pending(octx_t *x) {
  for (size_t i = 0; i < NPENDING + 2; i++)
    assert_int_equal(x->ready[i], i == 1 || i == NPENDING + 1);
}

/* Only ready refs: satisfied from the first pass. */
static int op_wait_ready(octx_t *x) {
  return ray_wait(x->ready_many, NBATCH, NBATCH / 2, 0, x->ready);
}
static void ok_wait_ready(octx_t *x) {
  for (size_t i = 0; i < NBATCH; i++) assert_int_equal(x->ready[i], i < NBATCH / 2);
  release_batch(x);
}

/* ---- on_ready ---------------------------------------------------------------- */

static int op_on_ready_pending(octx_t *x) {
  return ray_ref_on_ready(x->pending[3], rt_cb_record, &x->rec);
}
static void ok_on_ready_pending(octx_t *x) {
  x->cb_expected = 1;
  assert_int_equal(atomic_load(&x->rec.calls), 0);
  assert_rc(ray__object_fulfil(x->pending[3], "q", 1), 0);
  rt_latch_wait(&x->latch, 1);
  assert_int_equal(atomic_load(&x->rec.status), 0);
  assert_true(atomic_load(&x->rec.id) == x->pending[3].id);
}
static void fail_on_ready(octx_t *x) {
  x->cb_expected = 0;
}

static int op_on_ready_ready(octx_t *x) {
  return ray_ref_on_ready(x->big, rt_cb_record, &x->rec);
}
static void ok_on_ready_ready(octx_t *x) {
  x->cb_expected = 1;
  rt_latch_wait(&x->latch, 1);
  assert_int_equal(atomic_load(&x->rec.status), 0);
}

/* Registered on a pending ref that is never completed and that only the
 * registration holds: fires at shutdown with RAY_ESHUTDOWN. */
static void prep_on_ready_shutdown(octx_t *x) {
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &x->out[0]), 0);
}
static int op_on_ready_shutdown(octx_t *x) {
  return ray_ref_on_ready(x->out[0], rt_cb_record, &x->rec);
}
static void ok_on_ready_shutdown(octx_t *x) {
  x->cb_expected = 1;
  assert_rc(ray_ref_release(x->out[0]), 0);
}
static void fail_on_ready_shutdown(octx_t *x) {
  x->cb_expected = 0;
  assert_rc(ray_ref_release(x->out[0]), 0);
}

/* ---- producers (internal interface) ------------------------------------------ */

static unsigned char g_fulfil_data[20000];
static int op_fulfil(octx_t *x) {
  return ray__object_fulfil(x->pending[4], g_fulfil_data, sizeof g_fulfil_data);
}
static void ok_fulfil(octx_t *x) {
  ray_buf_t b;
  assert_rc(ray_get(x->pending[4], 0, &b), 0);
  assert_true(b.size == sizeof g_fulfil_data && rt_check(b.data, b.size, 44));
  ray_buf_release(&b);
}
static void fail_fulfil(octx_t *x) {
  ray_buf_t b;
  assert_rc(ray_get(x->pending[4], 0, &b), RAY_ETIMEDOUT); /* still pending */
}

static ray_error_t *g_chain;
static int op_fail_armed(octx_t *x) {
  return ray__object_fail(x->pending[5], g_chain);
}
static void ok_fail(octx_t *x) {
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(x->pending[5], &e), 0);
  assert_chain(e);
  ray_error_free(e);
}
static void fail_fail(octx_t *x) {
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(x->pending[5], &e), RAY_ENOTREADY);
  assert_null(e);
}

static int op_create_pending(octx_t *x) {
  return ray__object_create_pending(RAY_TYPE_I64, &x->out[0]);
}
static void ok_create_pending(octx_t *x) {
  ray_buf_t b;
  assert_rc(ray_get(x->out[0], 0, &b), RAY_ETIMEDOUT);
  assert_rc(ray_ref_release(x->out[0]), 0);
}

/* ---- tasks ------------------------------------------------------------------- */

static const uint32_t k_oom_three[] = {RAY_TYPE_I64, RAY_TYPE_STR, RAY_TYPE_BYTES};
static atomic_int g_task_calls;
static atomic_int g_task_bad; /* checks that failed inside tasks */
static unsigned char g_task_big[5000];

/* Holds a worker until x->go is signalled. */
static int fn_oom_block(ray_task_ctx_t *ctx, void *arg) {
  octx_t *x = arg;
  rt_latch_signal(&x->started);
  rt_latch_wait(&x->go, 1);
  return ray_return_i64(ctx, 0, 1);
}

/* Occupy both workers, so that a submitted task stays queued. */
static void prep_blockers(octx_t *x) {
  rt_latch_init(&x->started);
  rt_latch_init(&x->go);
  atomic_store(&g_task_calls, 0);
  atomic_store(&g_task_bad, 0);
  ray_function_t b;
  assert_rc(ray_function_register("oom-block", fn_oom_block, x, rt_t_i64, 1, &b), 0);
  for (int i = 0; i < 2; i++) assert_rc(ray_task_submit(b, NULL, 0, NULL, &x->blockers[i]), 0);
  rt_latch_wait(&x->started, 2);
}

static void release_blockers(octx_t *x) {
  rt_latch_signal(&x->go);
  for (int i = 0; i < 2; i++) {
    int64_t v = 0;
    assert_rc(ray_get_i64(x->blockers[i], RAY_TIMEOUT_INFINITE, &v), 0);
    assert_int_equal(v, 1);
    assert_rc(ray_ref_release(x->blockers[i]), 0);
  }
}

static void destroy_blockers(octx_t *x) {
  rt_latch_destroy(&x->started);
  rt_latch_destroy(&x->go);
}

/* Submit; on failure record what the call created and freed on the way
 * (a stored value argument, result entries), at most `max_created`. */
static int submit_counted(octx_t *x, const ray_arg_t *a, size_t n, const ray_task_opts_t *o,
                          uint64_t max_created) {
  ray_stats_t s0, s1;
  if (ray_stats(&s0) != 0) return -1000;
  int rc = ray_task_submit(x->fn, a, n, o, x->res);
  if (rc != 0) {
    if (ray_stats(&s1) != 0) return -1000;
    x->created_anyway = s1.objects_created - s0.objects_created;
    if (x->created_anyway > max_created) return -1001;
  }
  return rc;
}

/* Checks its arguments (any mix: values and refs, by type) against the
 * values the cases pass; returns their count and, with three returns, a
 * string and bytes too. */
static int fn_oom_args(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_task_calls, 1);
  size_t n = ray_ctx_nargs(ctx);
  for (size_t i = 0; i < n; i++) {
    int ok = 0;
    int64_t v;
    double d;
    const char *s;
    size_t len;
    const void *p;
    msgpack_object o;
    switch (ray_ctx_arg_type(ctx, i)) {
      case RAY_TYPE_I64:
        ok = ray_ctx_arg_i64(ctx, i, &v) == 0 && (v == -5 || v == -42 || v == 100 || v == 7);
        break;
      case RAY_TYPE_F64:
        ok = ray_ctx_arg_f64(ctx, i, &d) == 0 && d == 0.5;
        break;
      case RAY_TYPE_STR:
        ok =
            ray_ctx_arg_str(ctx, i, &s, &len) == 0 && len == 10 && memcmp(s, "oom string", 10) == 0;
        break;
      case RAY_TYPE_BYTES:
        ok = ray_ctx_arg_bytes(ctx, i, &p, &len) == 0 &&
             ((len == 16 && memcmp(p, "0123456789abcdef", 16) == 0) ||
              (len == sizeof g_task_big && memcmp(p, g_task_big, len) == 0));
        break;
      case RAY_TYPE_MSGPACK:
        ok = ray_ctx_arg_msgpack(ctx, i, &o) == 0 && msgpack_object_equal(o, g_mp.data);
        break;
      default:
        break;
    }
    if (!ok) atomic_fetch_add(&g_task_bad, 1);
  }
  int rc = ray_return_i64(ctx, 0, (int64_t)n);
  if (rc == 0 && strcmp(ray_ctx_name(ctx), "oom-display") == 0) {
    if ((rc = ray_return_str(ctx, 1, "second")) == 0) rc = ray_return_bytes(ctx, 2, "third", 5);
  }
  return rc;
}

static void prep_task_values(octx_t *x) {
  prep_blockers(x);
  assert_rc(ray_function_register("oom-args", fn_oom_args, NULL, rt_t_i64, 1, &x->fn), 0);
}
static int op_submit_values(octx_t *x) {
  ray_arg_t a[6] = {ray_arg_i64(-5),
                    ray_arg_f64(0.5),
                    ray_arg_str("oom string"),
                    ray_arg_bytes("0123456789abcdef", 16),
                    ray_arg_msgpack(&g_mp.data),
                    ray_arg_bytes(g_task_big, sizeof g_task_big)};
  return submit_counted(x, a, 6, NULL, 2);
}
static void ok_task_one(octx_t *x, int64_t want) {
  release_blockers(x);
  int64_t v = 0;
  assert_rc(ray_get_i64(x->res[0], RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, want);
  assert_rc(ray_ref_release(x->res[0]), 0);
  assert_int_equal(atomic_load(&g_task_bad), 0);
  destroy_blockers(x);
}
static void ok_submit_values(octx_t *x) {
  ok_task_one(x, 6);
}
static void fail_submit_task(octx_t *x) {
  release_blockers(x);
  assert_int_equal(atomic_load(&g_task_calls), 0); /* no task exists */
  destroy_blockers(x);
}

/* Ref arguments: ready (inline and not), typed, and one still pending. */
static void prep_task_refs(octx_t *x) {
  prep_task_values(x);
  assert_rc(ray_put("0123456789abcdef", 16, &x->args[0]), 0);
  assert_rc(ray_put(g_task_big, sizeof g_task_big, &x->args[1]), 0);
  assert_rc(ray_put_str("oom string", &x->args[2]), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &x->args[3]), 0);
}
static int op_submit_refs(octx_t *x) {
  ray_arg_t a[6] = {ray_arg_ref(x->args[0]), ray_arg_ref(x->args[1]), ray_arg_ref(x->args[2]),
                    ray_arg_ref(x->args[3]), ray_arg_ref(x->i64),     ray_arg_i64(7)};
  return submit_counted(x, a, 6, NULL, 1);
}
static void fulfil_dep(octx_t *x) {
  char enc[16];
  size_t n = rt_encode_i64(100, enc, sizeof enc);
  assert_rc(ray__object_fulfil(x->args[3], enc, n), 0);
}
/* Releasing the arguments frees each: a failed call kept no reference. */
static void release_task_args(octx_t *x, bool must_free) {
  for (int i = 0; i < 4; i++) {
    uint64_t before = rt_stats().objects;
    assert_rc(ray_ref_release(x->args[i]), 0);
    if (must_free) assert_int_equal(rt_stats().objects, before - 1);
  }
}
static void ok_submit_refs(octx_t *x) {
  fulfil_dep(x);
  ok_task_one(x, 6);
  release_task_args(x, false);
}
static void fail_submit_refs(octx_t *x) {
  release_task_args(x, true);
  fail_submit_task(x);
}

/* Three returns, a display name and a num_returns check. */
static void prep_task_three(octx_t *x) {
  prep_blockers(x);
  assert_rc(ray_function_register("oom-three", fn_oom_args, NULL, k_oom_three, 3, &x->fn), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &x->args[3]), 0);
}
static int op_submit_three(octx_t *x) {
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.num_returns = 3;
  o.name = "oom-display";
  ray_arg_t a[3] = {ray_arg_ref(x->args[3]), ray_arg_str("oom string"),
                    ray_arg_bytes(g_task_big, sizeof g_task_big)};
  return submit_counted(x, a, 3, &o, 4);
}
static void ok_submit_three(octx_t *x) {
  fulfil_dep(x);
  release_blockers(x);
  int64_t v = 0;
  assert_rc(ray_get_i64(x->res[0], RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v, 3);
  char *s = NULL;
  assert_rc(ray_get_str(x->res[1], RAY_TIMEOUT_INFINITE, &s, NULL), 0);
  assert_string_equal(s, "second");
  ray_free(s);
  ray_buf_t b;
  assert_rc(ray_get(x->res[2], RAY_TIMEOUT_INFINITE, &b), 0);
  assert_true(b.size == 5 && memcmp(b.data, "third", 5) == 0);
  ray_buf_release(&b);
  for (int i = 0; i < 3; i++) assert_rc(ray_ref_release(x->res[i]), 0);
  assert_int_equal(atomic_load(&g_task_bad), 0);
  assert_rc(ray_ref_release(x->args[3]), 0);
  destroy_blockers(x);
}
static void fail_submit_three(octx_t *x) {
  uint64_t before = rt_stats().objects;
  assert_rc(ray_ref_release(x->args[3]), 0);
  assert_int_equal(rt_stats().objects, before - 1);
  fail_submit_task(x);
}

/* ---- tests ------------------------------------------------------------------- */

static const oom_case_t k_cases[] = {
    {"ray_put small", 0, NULL, op_put_small, 0, ok_put_small, fail_nothing_out},
    {"ray_put big", 0, NULL, op_put_big, 0, ok_put_big, fail_nothing_out},
    {"ray_put x many", 1, NULL, op_put_many, 0, ok_put_many, fail_nothing_out},
    {"ray_put_owned", 0, NULL, op_put_owned, 0, ok_put_owned, fail_put_owned},
    {"ray_put_batch", 0, NULL, op_put_batch, 0, ok_put_batch, fail_nothing_out},
    {"ray_put_i64", 0, NULL, op_put_i64, 0, ok_put_i64, fail_nothing_out},
    {"ray_put_f64", 0, NULL, op_put_f64, 0, ok_put_f64, fail_nothing_out},
    {"ray_put_str", 0, NULL, op_put_str, 0, ok_put_str, fail_nothing_out},
    {"ray_put_msgpack", 0, NULL, op_put_msgpack, 0, ok_put_msgpack, fail_nothing_out},
    {"ray_get", 0, NULL, op_get_big, 0, ok_get_big, fail_get},
    {"ray_get pending", 0, NULL, op_get_pending, RAY_ETIMEDOUT, fail_get, fail_get},
    {"ray_get_i64", 0, NULL, op_get_i64, 0, ok_get_i64, fail_nothing_out},
    {"ray_get_str", 0, NULL, op_get_str, 0, ok_get_str, fail_get_str},
    {"ray_get_msgpack", 0, prep_msgpack, op_get_msgpack, 0, ok_get_msgpack, fail_get_msgpack},
    {"ray_get_batch", 0, prep_batch, op_get_batch, 0, ok_get_batch, fail_get_batch},
    {"ray_get_batch pending", 0, prep_batch, op_get_batch_pending, RAY_ETIMEDOUT, fail_get_batch,
     fail_get_batch},
    {"ray_get_error", 0, NULL, op_get_error, 0, ok_get_error, fail_get_error},
    {"ray_wait pending", 0, NULL, op_wait_pending, 2, ok_wait_pending, fail_nothing_out},
    {"ray_wait ready", 0, prep_batch, op_wait_ready, NBATCH / 2, ok_wait_ready, fail_get_batch},
    {"ray_ref_on_ready pending", 0, NULL, op_on_ready_pending, 0, ok_on_ready_pending,
     fail_on_ready},
    {"ray_ref_on_ready ready", 0, NULL, op_on_ready_ready, 0, ok_on_ready_ready, fail_on_ready},
    {"ray_ref_on_ready shutdown", 0, prep_on_ready_shutdown, op_on_ready_shutdown, 0,
     ok_on_ready_shutdown, fail_on_ready_shutdown},
    {"ray__object_fulfil", 0, NULL, op_fulfil, 0, ok_fulfil, fail_fulfil},
    {"ray__object_fail", 0, NULL, op_fail_armed, 0, ok_fail, fail_fail},
    {"create_pending", 0, NULL, op_create_pending, 0, ok_create_pending, fail_nothing_out},
    {"ray_task_submit values", 0, prep_task_values, op_submit_values, 0, ok_submit_values,
     fail_submit_task},
    {"ray_task_submit refs", 0, prep_task_refs, op_submit_refs, 0, ok_submit_refs,
     fail_submit_refs},
    {"ray_task_submit 3 returns", 0, prep_task_three, op_submit_three, 0, ok_submit_three,
     fail_submit_three},
};

static int setup(void **state) {
  (void)state;
  memset(g_long_str, 's', 3000);
  g_long_str[3000] = '\0';
  rt_fill(g_fulfil_data, sizeof g_fulfil_data, 44);
  rt_fill(g_task_big, sizeof g_task_big, 45);
  mp_init();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  mp_destroy();
  return 0;
}

#define CASE_TEST(fn, idx)       \
  static void fn(void **state) { \
    (void)state;                 \
    run_case(&k_cases[idx]);     \
  }

CASE_TEST(test_oom_put_small, 0)
CASE_TEST(test_oom_put_big, 1)
CASE_TEST(test_oom_put_many, 2)
CASE_TEST(test_oom_put_owned, 3)
CASE_TEST(test_oom_put_batch, 4)
CASE_TEST(test_oom_put_i64, 5)
CASE_TEST(test_oom_put_f64, 6)
CASE_TEST(test_oom_put_str, 7)
CASE_TEST(test_oom_put_msgpack, 8)
CASE_TEST(test_oom_get, 9)
CASE_TEST(test_oom_get_pending, 10)
CASE_TEST(test_oom_get_i64, 11)
CASE_TEST(test_oom_get_str, 12)
CASE_TEST(test_oom_get_msgpack, 13)
CASE_TEST(test_oom_get_batch, 14)
CASE_TEST(test_oom_get_batch_pending, 15)
CASE_TEST(test_oom_get_error, 16)
CASE_TEST(test_oom_wait_pending, 17)
CASE_TEST(test_oom_wait_ready, 18)
CASE_TEST(test_oom_on_ready_pending, 19)
CASE_TEST(test_oom_on_ready_ready, 20)
CASE_TEST(test_oom_on_ready_shutdown, 21)
CASE_TEST(test_oom_fulfil, 22)
CASE_TEST(test_oom_fail, 23)
CASE_TEST(test_oom_create_pending, 24)
CASE_TEST(test_oom_task_submit_values, 25)
CASE_TEST(test_oom_task_submit_refs, 26)
CASE_TEST(test_oom_task_submit_three, 27)

/* A task's own run under memory failure: its ray_return_* calls, the
 * publication of its results, its failure. The task starts, waits on a
 * latch; the failure is armed, the latch released, and the host waits for
 * the results with ray_get (which allocates nothing). Every result then is
 * either right or failed with RAY_ENOMEM (with retries: always right, the
 * retry runs unarmed); nothing hangs, nothing leaks, and every buffer the
 * function handed over (or tried to) is freed exactly once (by the store,
 * or by the function when the store refused it). `sticky`: every
 * allocation from the N-th on fails. */
static rt_latch_t g_run_started, g_run_go;
static atomic_int g_run_frees, g_run_mallocs;

static void run_free(void *p, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_run_frees, 1);
  free(p);
}

static int fn_oom_run(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  if (ray_ctx_attempt(ctx) == 1) {
    rt_latch_signal(&g_run_started);
    rt_latch_wait(&g_run_go, 1);
  }
  int rc = ray_return_i64(ctx, 0, 42);
  if (rc == 0) rc = ray_return_str(ctx, 1, g_long_str);
  if (rc == 0) {
    void *p = malloc(3000);
    if (p == NULL) return RAY_ENOMEM;
    atomic_fetch_add(&g_run_mallocs, 1);
    rt_fill(p, 3000, 31);
    rc = ray_return_owned(ctx, 2, p, 3000, run_free, NULL);
    if (rc != 0) run_free(p, NULL); /* refused: still ours */
  }
  return rc;
}

static void run_task_oom(bool sticky, uint32_t max_retries) {
  bool converged = false;
  long n, failed_runs = 0;
  for (n = 1; n <= OOM_MAX_N && !converged; n++) {
    rt_latch_init(&g_run_started);
    rt_latch_init(&g_run_go);
    atomic_store(&g_run_frees, 0);
    atomic_store(&g_run_mallocs, 0);
    rt_begin();
    ray_function_t f;
    assert_rc(ray_function_register("oom-run", fn_oom_run, NULL, k_oom_three, 3, &f), 0);
    ray_task_opts_t o;
    ray_task_opts_init(&o);
    o.max_retries = max_retries;
    o.retry_on_error = max_retries > 0;
    ray_ref_t r[3];
    assert_rc(ray_task_submit(f, NULL, 0, &o, r), 0);
    rt_latch_wait(&g_run_started, 1);

    ray__alloc_fail_after(n, sticky);
    rt_latch_signal(&g_run_go);
    int rc[3];
    for (int i = 0; i < 3; i++) {
      ray_buf_t b;
      rc[i] = ray_get(r[i], RAY_TIMEOUT_INFINITE, &b);
      ray_buf_release(&b);
    }
    bool fired = ray__alloc_failed();
    ray__alloc_fail_after(0, false);

    bool all_ok = rc[0] == 0 && rc[1] == 0 && rc[2] == 0;
    converged = all_ok && !fired;
    if (!fired && !all_ok) {
      print_error("task run: N=%ld: results %s %s %s without an injected failure\n", n,
                  ray_err_name(rc[0]), ray_err_name(rc[1]), ray_err_name(rc[2]));
      fail();
    }
    if (!all_ok) failed_runs++;
    for (int i = 0; i < 3; i++) {
      if (rc[i] != 0) {
        if (rc[i] != RAY_ENOMEM || (max_retries > 0 && !sticky)) {
          print_error("task run: N=%ld%s: result %d failed with %s\n", n, sticky ? " sticky" : "",
                      i, ray_err_name(rc[i]));
          fail();
        }
        ray_error_t *e = NULL;
        assert_rc(ray_get_error(r[i], &e), 0);
        assert_int_equal(ray_error_code(e), RAY_ENOMEM);
        ray_error_free(e);
      }
    }
    if (rc[0] == 0) {
      int64_t v = 0;
      assert_rc(ray_get_i64(r[0], 0, &v), 0);
      assert_int_equal(v, 42);
    }
    if (rc[1] == 0) {
      char *s = NULL;
      assert_rc(ray_get_str(r[1], 0, &s, NULL), 0);
      assert_string_equal(s, g_long_str);
      ray_free(s);
    }
    if (rc[2] == 0) {
      ray_buf_t b;
      assert_rc(ray_get(r[2], 0, &b), 0);
      assert_true(b.size == 3000 && rt_check(b.data, b.size, 31));
      ray_buf_release(&b);
    }
    for (int i = 0; i < 3; i++) assert_rc(ray_ref_release(r[i]), 0);
    rt_end();
    /* Every buffer the function made was freed, once. */
    assert_int_equal(atomic_load(&g_run_frees), atomic_load(&g_run_mallocs));
    if (rc[2] == 0) assert_true(atomic_load(&g_run_mallocs) >= 1);
    rt_latch_destroy(&g_run_started);
    rt_latch_destroy(&g_run_go);
  }
  if (!converged) {
    print_error("task run did not converge within %d injected failures\n", OOM_MAX_N);
    fail();
  }
  print_message("[   OOM    ] task run%s, %u retries: %ld allocation points, %ld failed runs\n",
                sticky ? " (sticky)" : "", max_retries, n - 1, failed_runs);
}

static void test_oom_task_run(void **state) {
  (void)state;
  run_task_oom(false, 0);
}

static void test_oom_task_run_sticky(void **state) {
  (void)state;
  run_task_oom(true, 0);
}

static void test_oom_task_run_retried(void **state) {
  (void)state;
  run_task_oom(false, 2);
}

/* ray_init: on failure nothing is running and nothing is allocated. */
static void test_oom_init(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  bool converged = false;
  long n;
  for (n = 1; n <= OOM_MAX_N && !converged; n++) {
    ray_config_t cfg;
    rt_config(&cfg);
    ray__alloc_track(true);
    ray__alloc_fail_after(n, false);
    int rc = ray_init(&cfg);
    bool fired = ray__alloc_failed();
    ray__alloc_fail_after(0, false);
    if (rc == 0) {
      converged = !fired;
      ray_ref_t r;
      assert_rc(ray_put_i64(5, &r), 0);
      int64_t v = 0;
      assert_rc(ray_get_i64(r, 0, &v), 0);
      assert_int_equal(v, 5);
      assert_rc(ray_ref_release(r), 0);
      rt_end();
    } else {
      if (rc != RAY_ENOMEM || !fired) {
        print_error("ray_init: N=%ld returned %d (%s), injected failure %s\n", n, rc,
                    ray_err_name(rc), fired ? "fired" : "did not fire");
        fail();
      }
      assert_false(ray_is_initialized());
      assert_int_equal(ray__threads_alive(), 0);
      assert_int_equal(ray__alloc_outstanding(), 0);
      ray_ref_t r;
      assert_rc(ray_put("x", 1, &r), RAY_ENOTINIT);
    }
  }
  assert_true(converged);
  print_message("[   OOM    ] %-22s %ld allocation points\n", "ray_init", n - 1);
}

/* Error objects: no runtime needed. */
static void test_oom_errors(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  ray_error_t *src = NULL;
  ray__alloc_track(true);
  src = make_chain();
  /* ray_error_new */
  bool converged = false;
  for (long n = 1; n <= OOM_MAX_N && !converged; n++) {
    ray_error_t *e = NULL;
    ray__alloc_fail_after(n, false);
    int rc = ray_error_new(&e, RAY_ETASK, "some.origin", "message %d with %s", 7, "text");
    bool fired = ray__alloc_failed();
    ray__alloc_fail_after(0, false);
    if (rc == 0) {
      converged = !fired;
      assert_string_equal(ray_error_message(e), "message 7 with text");
      assert_string_equal(ray_error_origin(e), "some.origin");
      ray_error_free(e);
    } else {
      assert_rc(rc, RAY_ENOMEM);
      assert_true(fired);
      assert_null(e);
    }
  }
  assert_true(converged);
  /* ray_error_copy */
  converged = false;
  for (long n = 1; n <= OOM_MAX_N && !converged; n++) {
    ray_error_t *e = NULL;
    ray__alloc_fail_after(n, false);
    int rc = ray_error_copy(src, &e);
    bool fired = ray__alloc_failed();
    ray__alloc_fail_after(0, false);
    if (rc == 0) {
      converged = !fired;
      assert_chain(e);
      ray_error_free(e);
    } else {
      assert_rc(rc, RAY_ENOMEM);
      assert_true(fired);
      assert_null(e);
    }
  }
  assert_true(converged);
  ray_error_free(src);
  assert_int_equal(ray__alloc_outstanding(), 0);
}

static int chain_setup(void **state) {
  (void)state;
  ray__alloc_fail_after(0, false);
  g_chain = make_chain();
  return 0;
}

static int chain_teardown(void **state) {
  (void)state;
  ray_error_free(g_chain);
  g_chain = NULL;
  return 0;
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_oom_init),
    cmocka_unit_test(test_oom_errors),
    cmocka_unit_test(test_oom_put_small),
    cmocka_unit_test(test_oom_put_big),
    cmocka_unit_test(test_oom_put_many),
    cmocka_unit_test(test_oom_put_owned),
    cmocka_unit_test(test_oom_put_batch),
    cmocka_unit_test(test_oom_put_i64),
    cmocka_unit_test(test_oom_put_f64),
    cmocka_unit_test(test_oom_put_str),
    cmocka_unit_test(test_oom_put_msgpack),
    cmocka_unit_test(test_oom_get),
    cmocka_unit_test(test_oom_get_pending),
    cmocka_unit_test(test_oom_get_i64),
    cmocka_unit_test(test_oom_get_str),
    cmocka_unit_test(test_oom_get_msgpack),
    cmocka_unit_test(test_oom_get_batch),
    cmocka_unit_test(test_oom_get_batch_pending),
    cmocka_unit_test(test_oom_get_error),
    cmocka_unit_test(test_oom_wait_pending),
    cmocka_unit_test(test_oom_wait_ready),
    cmocka_unit_test(test_oom_on_ready_pending),
    cmocka_unit_test(test_oom_on_ready_ready),
    cmocka_unit_test(test_oom_on_ready_shutdown),
    cmocka_unit_test(test_oom_fulfil),
    cmocka_unit_test_setup_teardown(test_oom_fail, chain_setup, chain_teardown),
    cmocka_unit_test(test_oom_create_pending),
    cmocka_unit_test(test_oom_task_submit_values),
    cmocka_unit_test(test_oom_task_submit_refs),
    cmocka_unit_test(test_oom_task_submit_three),
    cmocka_unit_test(test_oom_task_run),
    cmocka_unit_test(test_oom_task_run_sticky),
    cmocka_unit_test(test_oom_task_run_retried),
};

int main(void) {
  rt_main_init();
  return cmocka_run_group_tests(tests, setup, teardown);
}
