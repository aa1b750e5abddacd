/* test_store_wait.c - waiting on objects through the public API: get
 * timeouts, blocking gets woken by a fulfil, a fail, shutdown or a release
 * of their ref, batch puts and gets (failed, woken, timing out), ray_wait
 * (order, num_returns, failed refs, timeouts, completed by another thread,
 * many refs), and on_ready callbacks (already ready, completed later, at
 * shutdown, holding a reference, many, using the store).
 *
 * Threads blocked in a call are woken by what they wait on, never by a
 * sleep; helper threads record into atomics, only the main thread asserts. */
#include "test_util.h"

/* ---- a blocked get woken while its notifier still holds its node ---------- */

/* The get parks (WAIT_PARK), a fulfil on another thread wakes it and is
 * held inside the notification (NOTIFIED, shard lock held) until the get,
 * finding the notification unfinished, goes for the lock (UNWATCH). The get
 * must wait for the notifier to let go of its node (on its stack) before it
 * returns: ASan's stack-use-after-return check sees any touch after. */
static rt_latch_t g_parked, g_fallback;
static atomic_int g_unwatch_hits, g_notified_hits;

static void notify_order_hook(int point, void *arg) {
  (void)arg;
  if (point == RAY__AT_WAIT_PARK) rt_latch_signal(&g_parked);
  if (point == RAY__AT_UNWATCH) {
    atomic_fetch_add(&g_unwatch_hits, 1);
    rt_latch_signal(&g_fallback);
  }
  if (point == RAY__AT_NOTIFIED) {
    atomic_fetch_add(&g_notified_hits, 1);
    rt_latch_wait(&g_fallback, 1); /* the get is past its spin, at the lock */
  }
}

static void fulfil_when_parked(void *arg) {
  rt_latch_wait(&g_parked, 1);
  int64_t v = 42;
  (void)ray__object_fulfil(*(ray_ref_t *)arg, &v, sizeof v);
}

static void test_get_woken_during_notification(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.wait_spin_us = 0; /* park at once */
  rt_begin_cfg(&cfg);
  rt_latch_init(&g_parked);
  rt_latch_init(&g_fallback);
  atomic_store(&g_unwatch_hits, 0);
  atomic_store(&g_notified_hits, 0);
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  ray__hook_set(notify_order_hook);
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, fulfil_when_parked, &p), 0);
  ray_buf_t b;
  assert_rc(ray_get(p, RAY_TIMEOUT_INFINITE, &b), 0);
  assert_int_equal(uv_thread_join(&t), 0);
  ray__hook_set(NULL);
  assert_int_equal(b.size, sizeof(int64_t));
  int64_t v;
  memcpy(&v, b.data, sizeof v);
  assert_int_equal(v, 42);
  ray_buf_release(&b);
  assert_int_equal(atomic_load(&g_notified_hits), 1);
  assert_int_equal(atomic_load(&g_unwatch_hits), 1);
  rt_release(p);
  rt_latch_destroy(&g_parked);
  rt_latch_destroy(&g_fallback);
  rt_end();
}

/* ---- timeouts and blocking gets ----------------------------------------- */

static void test_get_timeouts(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t p, pi;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &pi), 0);
  assert_int_equal(p.type, RAY_TYPE_BYTES);
  assert_int_equal(pi.type, RAY_TYPE_I64);
  ray_buf_t b;
  rt_garbage(&b, sizeof b);
  assert_rc(ray_get(p, 0, &b), RAY_ETIMEDOUT);
  rt_assert_buf_zeroed(&b);
  rt_garbage(&b, sizeof b);
  assert_rc(ray_get(p, 10, &b), RAY_ETIMEDOUT);
  rt_assert_buf_zeroed(&b);
  assert_rc(ray_get(p, 1, &b), RAY_ETIMEDOUT);
  int64_t v;
  assert_rc(ray_get_i64(pi, 0, &v), RAY_ETIMEDOUT);
  assert_rc(ray_get_i64(pi, 20, &v), RAY_ETIMEDOUT);
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(p, &e), RAY_ENOTREADY);
  assert_null(e);
  assert_int_equal(rt_stats().objects, 2);
  assert_int_equal(rt_stats().bytes_in_memory, 0);

  /* After the timed-out waits, completing the objects works normally. */
  assert_rc(ray__object_fulfil(p, "done", 4), 0);
  char enc[16];
  size_t n = rt_encode_i64(31, enc, sizeof enc);
  assert_rc(ray__object_fulfil(pi, enc, n), 0);
  assert_rc(ray_get(p, 0, &b), 0);
  assert_int_equal(b.size, 4);
  assert_memory_equal(b.data, "done", 4);
  ray_buf_release(&b);
  assert_rc(ray_get_i64(pi, 10, &v), 0);
  assert_int_equal(v, 31);
  assert_rc(ray_get_error(p, &e), 0);
  assert_null(e);
  assert_rc(ray_ref_release(p), 0);
  assert_rc(ray_ref_release(pi), 0);
  rt_assert_store_empty();
  rt_end();
}

typedef struct {
  ray_ref_t ref;
  rt_latch_t *about_to_get;
  int kind; /* 0: ray_get, 1: ray_get_i64, 2: ray_get_batch of refs[0..1] */
  ray_ref_t refs[2];
  atomic_int rc;
  int64_t i64;
  size_t size;
  char data[64];
} getter_t;

static void getter_main(void *arg) {
  getter_t *g = (getter_t *)arg;
  rt_latch_signal(g->about_to_get);
  int rc;
  if (g->kind == 0) {
    ray_buf_t b;
    rc = ray_get(g->ref, RAY_TIMEOUT_INFINITE, &b);
    if (rc == 0) {
      g->size = b.size;
      memcpy(g->data, b.data, b.size < sizeof g->data ? b.size : sizeof g->data);
      ray_buf_release(&b);
    }
  } else if (g->kind == 1) {
    rc = ray_get_i64(g->ref, RAY_TIMEOUT_INFINITE, &g->i64);
  } else {
    ray_buf_t bs[2];
    rc = ray_get_batch(g->refs, 2, RAY_TIMEOUT_INFINITE, bs);
    if (rc == 0) {
      ray_buf_release(&bs[0]);
      ray_buf_release(&bs[1]);
    } else if (!rt_is_zero(bs, sizeof bs)) {
      rc = 12345; /* outputs not zeroed on error */
    }
  }
  atomic_store(&g->rc, rc);
}

static void start_getter(getter_t *g, rt_latch_t *latch, uv_thread_t *th) {
  atomic_init(&g->rc, 1);
  g->about_to_get = latch;
  assert_int_equal(uv_thread_create(th, getter_main, g), 0);
  rt_latch_wait(latch, 1);
}

static void test_get_woken_by_fulfil(void **state) {
  (void)state;
  rt_begin();
  int rounds = rt_iters(50, 5);
  for (int i = 0; i < rounds; i++) {
    rt_latch_t latch;
    rt_latch_init(&latch);
    getter_t g;
    memset(&g, 0, sizeof g);
    uv_thread_t th;
    assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &g.ref), 0);
    start_getter(&g, &latch, &th);
    assert_rc(ray__object_fulfil(g.ref, "woken up", 8), 0);
    assert_int_equal(uv_thread_join(&th), 0);
    assert_rc(atomic_load(&g.rc), 0);
    assert_int_equal(g.size, 8);
    assert_memory_equal(g.data, "woken up", 8);
    assert_rc(ray_ref_release(g.ref), 0);
    rt_latch_destroy(&latch);

    /* Typed. */
    rt_latch_init(&latch);
    memset(&g, 0, sizeof g);
    g.kind = 1;
    assert_rc(ray__object_create_pending(RAY_TYPE_I64, &g.ref), 0);
    start_getter(&g, &latch, &th);
    char enc[16];
    size_t n = rt_encode_i64(INT64_MIN + i, enc, sizeof enc);
    assert_rc(ray__object_fulfil(g.ref, enc, n), 0);
    assert_int_equal(uv_thread_join(&th), 0);
    assert_rc(atomic_load(&g.rc), 0);
    assert_true(g.i64 == INT64_MIN + i);
    assert_rc(ray_ref_release(g.ref), 0);
    rt_latch_destroy(&latch);
  }
  rt_assert_store_empty();
  rt_end();
}

static void test_get_woken_by_fail(void **state) {
  (void)state;
  rt_begin();
  rt_latch_t latch;
  rt_latch_init(&latch);
  getter_t g;
  memset(&g, 0, sizeof g);
  uv_thread_t th;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &g.ref), 0);
  start_getter(&g, &latch, &th);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_EACTORDIED, "Actor.m", "it died"), 0);
  assert_rc(ray__object_fail(g.ref, e), 0);
  ray_error_free(e);
  assert_int_equal(uv_thread_join(&th), 0);
  assert_rc(atomic_load(&g.rc), RAY_EACTORDIED);
  assert_rc(ray_ref_release(g.ref), 0);
  rt_latch_destroy(&latch);
  rt_assert_store_empty();
  rt_end();
}

/* Blocked getters at shutdown return RAY_ESHUTDOWN. The getters run on the
 * worker threads: the runtime outlives its workers, so once a getter has
 * signalled that it is about to call ray_get, shutting down cannot race its
 * start (host threads must not start calls while shutdown runs). */
typedef struct {
  ray_ref_t ref;
  atomic_int rc;
  int64_t timeout_ms;
  rt_latch_t *about;
} worker_getter_t;

static void worker_get(void *arg) {
  worker_getter_t *g = (worker_getter_t *)arg;
  rt_latch_signal(g->about);
  ray_buf_t b;
  int rc = ray_get(g->ref, g->timeout_ms, &b);
  if (rc == 0) ray_buf_release(&b);
  atomic_store(&g->rc, rc);
}

static void test_get_woken_by_shutdown(void **state) {
  (void)state;
  rt_begin();
  int nw = (int)rt_stats().num_workers;
  rt_latch_t latch;
  rt_latch_init(&latch);
  worker_getter_t g[2];
  for (int i = 0; i < nw && i < 2; i++) {
    atomic_init(&g[i].rc, 1);
    g[i].about = &latch;
    g[i].timeout_ms = i == 0 ? RAY_TIMEOUT_INFINITE : 60 * 60 * 1000;
    assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &g[i].ref), 0);
    assert_rc(ray__runtime_worker_post(worker_get, &g[i]), 0);
  }
  rt_latch_wait(&latch, nw < 2 ? nw : 2);
  rt_end(); /* fails the pending objects, joins the workers */
  for (int i = 0; i < nw && i < 2; i++) assert_rc(atomic_load(&g[i].rc), RAY_ESHUTDOWN);
  rt_latch_destroy(&latch);
}

/* A getter blocked on a pending ref whose last reference another thread
 * drops: RAY_ENOTFOUND, not a hang. */
static void test_get_blocked_ref_released(void **state) {
  (void)state;
  rt_begin();
  int rounds = rt_iters(20, 3);
  for (int i = 0; i < rounds; i++) {
    rt_latch_t latch;
    rt_latch_init(&latch);
    getter_t g;
    memset(&g, 0, sizeof g);
    g.kind = i % 2; /* ray_get, ray_get_i64 */
    uv_thread_t th;
    assert_rc(ray__object_create_pending(g.kind ? RAY_TYPE_I64 : RAY_TYPE_BYTES, &g.ref), 0);
    start_getter(&g, &latch, &th);
    assert_rc(ray_ref_release(g.ref), 0);
    /* A blocked get holds its object: the release did not free it, and it
     * completes when produced. (Or the release came first: then the get saw
     * no object at all.) Fulfilling a freed object is a no-op. */
    char enc[16];
    size_t n = rt_encode_i64(77, enc, sizeof enc);
    assert_rc(ray__object_fulfil(g.ref, enc, n), 0);
    assert_int_equal(uv_thread_join(&th), 0);
    int rc = atomic_load(&g.rc);
    assert_true(rc == 0 || rc == RAY_ENOTFOUND);
    if (rc == 0 && g.kind == 1) assert_int_equal(g.i64, 77);
    if (rc == 0 && g.kind == 0) assert_int_equal(g.size, n);
    rt_latch_destroy(&latch);
  }
  rt_assert_store_empty();
  rt_end();
}

/* ---- batches ------------------------------------------------------------- */

static size_t batch_size_of(size_t i) {
  switch (i % 5) {
    case 0:
      return 0;
    case 1:
      return 1 + i % 17;
    case 2:
      return 1000 + i;
    case 3:
      return 5000 + i * 3;
    default:
      return 64;
  }
}

static void test_put_batch_get_batch(void **state) {
  (void)state;
  rt_begin();
  const size_t n = 300;
  const void **data = calloc(n, sizeof *data);
  void **mem = calloc(n, sizeof *mem);
  size_t *sizes = calloc(n, sizeof *sizes);
  ray_ref_t *refs = calloc(n, sizeof *refs);
  ray_buf_t *bufs = calloc(n, sizeof *bufs);
  assert_true(data && mem && sizes && refs && bufs);
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    sizes[i] = batch_size_of(i);
    void *p = malloc(sizes[i] ? sizes[i] : 1);
    assert_non_null(p);
    rt_fill(p, sizes[i], i);
    mem[i] = p;
    data[i] = sizes[i] ? p : NULL;
    total += sizes[i];
  }
  assert_rc(ray_put_batch(data, sizes, n, refs), 0);
  for (size_t i = 0; i < n; i++) free(mem[i]);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, n);
  assert_true(s.bytes_in_memory == total);
  for (size_t i = 0; i < n; i++) {
    assert_true(refs[i].id != 0);
    assert_int_equal(refs[i].type, RAY_TYPE_BYTES);
    for (size_t j = i + 1; j < n && j < i + 8; j++) assert_true(refs[i].id != refs[j].id);
  }
  /* Order kept, both ways: single gets and a batch get. */
  for (size_t i = 0; i < n; i += 7) rt_assert_bytes(refs[i], sizes[i], i);
  assert_rc(ray_get_batch(refs, n, 0, bufs), 0);
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(bufs[i].size, sizes[i]);
    assert_int_equal(bufs[i].type, RAY_TYPE_BYTES);
    assert_true(rt_check(bufs[i].data, sizes[i], i));
  }
  for (size_t i = 0; i < n; i++) ray_buf_release(&bufs[i]);

  /* Reversed order and duplicates. */
  ray_ref_t rev[4] = {refs[3], refs[2], refs[3], refs[1]};
  assert_rc(ray_get_batch(rev, 4, RAY_TIMEOUT_INFINITE, bufs), 0);
  assert_true(rt_check(bufs[0].data, sizes[3], 3) && bufs[0].size == sizes[3]);
  assert_true(rt_check(bufs[1].data, sizes[2], 2) && bufs[1].size == sizes[2]);
  assert_ptr_equal(bufs[0].data, bufs[2].data);
  assert_true(rt_check(bufs[3].data, sizes[1], 1) && bufs[3].size == sizes[1]);
  /* Views outlive the refs. */
  for (size_t i = 0; i < n; i++) assert_rc(ray_ref_release(refs[i]), 0);
  assert_true(rt_check(bufs[1].data, sizes[2], 2));
  for (size_t i = 0; i < 4; i++) ray_buf_release(&bufs[i]);

  /* n == 0 is a no-op, even with NULL arrays. */
  assert_rc(ray_put_batch(NULL, NULL, 0, NULL), 0);
  assert_rc(ray_get_batch(NULL, 0, 0, NULL), 0);
  rt_assert_store_empty();
  free(data);
  free(mem);
  free(sizes);
  free(refs);
  free(bufs);
  rt_end();
}

static void test_batch_invalid(void **state) {
  (void)state;
  rt_begin();
  const void *data[3] = {"a", NULL, "ccc"};
  size_t sizes[3] = {1, 2, 3};
  ray_ref_t out[3];
  ray_stats_t before = rt_stats();
  assert_rc(ray_put_batch(NULL, sizes, 3, out), RAY_EINVAL);
  assert_rc(ray_put_batch(data, NULL, 3, out), RAY_EINVAL);
  assert_rc(ray_put_batch(data, sizes, 3, NULL), RAY_EINVAL);
  /* data[1] NULL with size 2: all or nothing, no object created. */
  assert_rc(ray_put_batch(data, sizes, 3, out), RAY_EINVAL);
  ray_stats_t after = rt_stats();
  assert_int_equal(after.objects, before.objects);
  assert_int_equal(after.objects_created, before.objects_created);
  assert_int_equal(after.bytes_in_memory, before.bytes_in_memory);
  /* NULL data with size 0 is fine. */
  sizes[1] = 0;
  assert_rc(ray_put_batch(data, sizes, 3, out), 0);
  ray_buf_t bufs[3];
  assert_rc(ray_get_batch(NULL, 3, 0, bufs), RAY_EINVAL);
  assert_rc(ray_get_batch(out, 3, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_batch(out, 3, 0, bufs), 0);
  assert_int_equal(bufs[1].size, 0);
  assert_memory_equal(bufs[2].data, "ccc", 3);
  for (int i = 0; i < 3; i++) ray_buf_release(&bufs[i]);
  for (int i = 0; i < 3; i++) assert_rc(ray_ref_release(out[i]), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_get_batch_failed_fails_at_once(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t ready = rt_put_bytes(5000, 1), small = rt_put_bytes(10, 2);
  ray_ref_t pending;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &pending), 0);
  ray_ref_t failed = rt_make_failed(RAY_TYPE_BYTES, RAY_ECANCELED, "cancelled");
  ray_ref_t refs[4] = {ready, pending, small, failed};
  ray_buf_t bufs[4];
  rt_garbage(bufs, sizeof bufs);
  /* Infinite timeout: it must not wait for the pending one. */
  assert_rc(ray_get_batch(refs, 4, RAY_TIMEOUT_INFINITE, bufs), RAY_ECANCELED);
  assert_true(rt_is_zero(bufs, sizeof bufs));
  ray_ref_t refs2[3] = {failed, ready, small};
  rt_garbage(bufs, sizeof bufs);
  assert_rc(ray_get_batch(refs2, 3, 0, bufs), RAY_ECANCELED);
  assert_true(rt_is_zero(bufs, 3 * sizeof bufs[0]));
  /* No views are held: releasing the refs frees the memory (checked at
   * shutdown) and the byte count drops to the pending object's zero. */
  assert_rc(ray_ref_release(ready), 0);
  assert_rc(ray_ref_release(small), 0);
  assert_rc(ray_ref_release(failed), 0);
  assert_rc(ray_ref_release(pending), 0);
  rt_end();
}

static void test_get_batch_fail_while_waiting(void **state) {
  (void)state;
  rt_begin();
  rt_latch_t latch;
  rt_latch_init(&latch);
  getter_t g;
  memset(&g, 0, sizeof g);
  g.kind = 2;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &g.refs[0]), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &g.refs[1]), 0);
  uv_thread_t th;
  start_getter(&g, &latch, &th);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, "t", "late failure"), 0);
  assert_rc(ray__object_fail(g.refs[1], e), 0);
  ray_error_free(e);
  /* refs[0] never completes before the join: the batch must fail at once. */
  assert_int_equal(uv_thread_join(&th), 0);
  assert_rc(atomic_load(&g.rc), RAY_ETASK);
  assert_rc(ray__object_fulfil(g.refs[0], "x", 1), 0);
  assert_rc(ray_ref_release(g.refs[0]), 0);
  assert_rc(ray_ref_release(g.refs[1]), 0);
  rt_latch_destroy(&latch);
  rt_assert_store_empty();
  rt_end();
}

static void test_get_batch_woken(void **state) {
  (void)state;
  rt_begin();
  rt_latch_t latch;
  rt_latch_init(&latch);
  getter_t g;
  memset(&g, 0, sizeof g);
  g.kind = 2;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &g.refs[0]), 0);
  g.refs[1] = rt_put_bytes(3, 3);
  uv_thread_t th;
  start_getter(&g, &latch, &th);
  assert_rc(ray__object_fulfil(g.refs[0], "x", 1), 0);
  assert_int_equal(uv_thread_join(&th), 0);
  assert_rc(atomic_load(&g.rc), 0);
  assert_rc(ray_ref_release(g.refs[0]), 0);
  assert_rc(ray_ref_release(g.refs[1]), 0);
  rt_latch_destroy(&latch);
  rt_assert_store_empty();
  rt_end();
}

static void test_get_batch_timeout(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t refs[3];
  refs[0] = rt_put_bytes(100, 1);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &refs[1]), 0);
  refs[2] = rt_put_bytes(2000, 2);
  ray_buf_t bufs[3];
  rt_garbage(bufs, sizeof bufs);
  assert_rc(ray_get_batch(refs, 3, 0, bufs), RAY_ETIMEDOUT);
  assert_true(rt_is_zero(bufs, sizeof bufs));
  rt_garbage(bufs, sizeof bufs);
  assert_rc(ray_get_batch(refs, 3, 20, bufs), RAY_ETIMEDOUT);
  assert_true(rt_is_zero(bufs, sizeof bufs));
  assert_rc(ray__object_fulfil(refs[1], "late", 4), 0);
  assert_rc(ray_get_batch(refs, 3, 0, bufs), 0);
  assert_memory_equal(bufs[1].data, "late", 4);
  assert_true(rt_check(bufs[2].data, 2000, 2));
  for (int i = 0; i < 3; i++) ray_buf_release(&bufs[i]);
  for (int i = 0; i < 3; i++) assert_rc(ray_ref_release(refs[i]), 0);
  rt_assert_store_empty();
  rt_end();
}

/* ---- wait ----------------------------------------------------------------- */

static void set_all(bool *ready, size_t n, bool v) {
  for (size_t i = 0; i < n; i++) ready[i] = v;
}

static void assert_flags(const bool *ready, const char *want) {
  for (size_t i = 0; want[i]; i++) {
    if (ready[i] != (want[i] == '1')) {
      print_error("ready[%zu] is %d, want pattern %s\n", i, (int)ready[i], want);
      fail();
    }
  }
}

static void test_wait_invalid(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t refs[2] = {rt_put_bytes(1, 1), rt_put_bytes(1, 2)};
  bool ready[2];
  assert_rc(ray_wait(NULL, 2, 1, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 2, 1, 0, NULL), RAY_EINVAL);
  assert_rc(ray_wait(refs, 0, 0, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 0, 1, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 2, 0, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 2, 3, 0, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 2, SIZE_MAX, RAY_TIMEOUT_INFINITE, ready), RAY_EINVAL);
  assert_rc(ray_wait(refs, 2, 2, 0, ready), 2);
  assert_rc(ray_ref_release(refs[0]), 0);
  assert_rc(ray_ref_release(refs[1]), 0);
  rt_end();
}

static void test_wait_order_and_num_returns(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t p0, p1;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p0), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &p1), 0);
  ray_ref_t r0 = rt_put_bytes(10, 0), r1 = rt_put_bytes(5000, 1);
  ray_ref_t f = rt_make_failed(RAY_TYPE_BYTES, RAY_ETASK, "x");
  ray_ref_t refs[5] = {p0, r0, p1, r1, f};
  bool ready[5];

  set_all(ready, 5, true);
  assert_rc(ray_wait(refs, 5, 1, 0, ready), 1);
  assert_flags(ready, "01000");
  set_all(ready, 5, true);
  assert_rc(ray_wait(refs, 5, 2, 0, ready), 2);
  assert_flags(ready, "01010");
  set_all(ready, 5, true);
  assert_rc(ray_wait(refs, 5, 3, RAY_TIMEOUT_INFINITE, ready), 3); /* failed counts */
  assert_flags(ready, "01011");
  /* More than are ready: fewer returned, on timeout. */
  set_all(ready, 5, true);
  assert_rc(ray_wait(refs, 5, 4, 0, ready), 3);
  assert_flags(ready, "01011");
  set_all(ready, 5, true);
  assert_rc(ray_wait(refs, 5, 5, 20, ready), 3);
  assert_flags(ready, "01011");

  /* All ready: the first num_returns in input order. */
  char enc[16];
  size_t n = rt_encode_i64(1, enc, sizeof enc);
  assert_rc(ray__object_fulfil(p0, "z", 1), 0);
  assert_rc(ray__object_fulfil(p1, enc, n), 0);
  for (size_t k = 1; k <= 5; k++) {
    set_all(ready, 5, true);
    assert_rc(ray_wait(refs, 5, k, 0, ready), (int)k);
    for (size_t i = 0; i < 5; i++) assert_int_equal(ready[i], i < k);
  }
  /* Wait reads no payload and takes no reference: the refs are unchanged. */
  for (int i = 0; i < 5; i++) assert_rc(ray_ref_release(refs[i]), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_wait_failed_only(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t refs[3];
  for (int i = 0; i < 3; i++) refs[i] = rt_make_failed(RAY_TYPE_BYTES, RAY_EIO, "io");
  bool ready[3];
  assert_rc(ray_wait(refs, 3, 3, RAY_TIMEOUT_INFINITE, ready), 3);
  assert_flags(ready, "111");
  for (int i = 0; i < 3; i++) assert_rc(ray_ref_release(refs[i]), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_wait_timeout_pending(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t refs[4];
  for (int i = 0; i < 4; i++) assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &refs[i]), 0);
  bool ready[4];
  set_all(ready, 4, true);
  assert_rc(ray_wait(refs, 4, 1, 0, ready), 0);
  assert_flags(ready, "0000");
  set_all(ready, 4, true);
  assert_rc(ray_wait(refs, 4, 2, 10, ready), 0);
  assert_flags(ready, "0000");
  assert_rc(ray__object_fulfil(refs[2], "a", 1), 0);
  set_all(ready, 4, true);
  assert_rc(ray_wait(refs, 4, 2, 30, ready), 1);
  assert_flags(ready, "0010");
  /* The timed-out waits left nothing behind: completing works. */
  assert_rc(ray__object_fulfil(refs[0], "b", 1), 0);
  assert_rc(ray__object_fulfil(refs[1], "c", 1), 0);
  assert_rc(ray__object_fulfil(refs[3], "d", 1), 0);
  assert_rc(ray_wait(refs, 4, 4, 0, ready), 4);
  for (int i = 0; i < 4; i++) assert_rc(ray_ref_release(refs[i]), 0);
  rt_assert_store_empty();
  rt_end();
}

typedef struct {
  ray_ref_t *refs;
  size_t n, num_returns;
  bool ready[8];
  atomic_int rc;
  rt_latch_t *latch;
} waiter_t;

static void waiter_main(void *arg) {
  waiter_t *w = (waiter_t *)arg;
  rt_latch_signal(w->latch);
  atomic_store(&w->rc, ray_wait(w->refs, w->n, w->num_returns, RAY_TIMEOUT_INFINITE, w->ready));
}

static void test_wait_completed_by_other_thread(void **state) {
  (void)state;
  rt_begin();
  int rounds = rt_iters(30, 4);
  for (int round = 0; round < rounds; round++) {
    ray_ref_t refs[3];
    for (int i = 0; i < 3; i++) assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &refs[i]), 0);
    rt_latch_t latch;
    rt_latch_init(&latch);
    waiter_t w;
    memset(&w, 0, sizeof w);
    w.refs = refs;
    w.n = 3;
    w.num_returns = 2;
    w.latch = &latch;
    atomic_init(&w.rc, 99);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, waiter_main, &w), 0);
    rt_latch_wait(&latch, 1);
    assert_rc(ray__object_fulfil(refs[2], "two", 3), 0);
    ray_error_t *e = NULL;
    assert_rc(ray_error_new(&e, RAY_ETASK, NULL, NULL), 0);
    assert_rc(ray__object_fail(refs[0], e), 0);
    ray_error_free(e);
    assert_int_equal(uv_thread_join(&th), 0);
    assert_rc(atomic_load(&w.rc), 2);
    assert_flags(w.ready, "101");
    for (int i = 0; i < 3; i++) assert_rc(ray_ref_release(refs[i]), 0);
    rt_latch_destroy(&latch);
  }
  rt_assert_store_empty();
  rt_end();
}

/* A waiter blocked on pending refs, one of which is released by another
 * thread: the wait holds it, so it completes when the object is produced
 * (or, if the release came before the wait looked, RAY_ENOTFOUND). */
static void test_wait_blocked_ref_released(void **state) {
  (void)state;
  rt_begin();
  int rounds = rt_iters(20, 3);
  for (int round = 0; round < rounds; round++) {
    ray_ref_t refs[2];
    for (int i = 0; i < 2; i++) assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &refs[i]), 0);
    rt_latch_t latch;
    rt_latch_init(&latch);
    waiter_t w;
    memset(&w, 0, sizeof w);
    w.refs = refs;
    w.n = 2;
    w.num_returns = 1;
    w.latch = &latch;
    atomic_init(&w.rc, 99);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, waiter_main, &w), 0);
    rt_latch_wait(&latch, 1);
    assert_rc(ray_ref_release(refs[1]), 0);
    assert_rc(ray__object_fulfil(refs[1], "x", 1), 0); /* a no-op if it was freed */
    assert_int_equal(uv_thread_join(&th), 0);
    int rc = atomic_load(&w.rc);
    assert_true(rc == 1 || rc == RAY_ENOTFOUND);
    if (rc == 1) assert_true(!w.ready[0] && w.ready[1]);
    if (rc != 1) assert_false(w.ready[0] || w.ready[1]);
    assert_rc(ray_ref_release(refs[0]), 0);
    rt_latch_destroy(&latch);
  }
  rt_assert_store_empty();
  rt_end();
}

static void test_wait_many(void **state) {
  (void)state;
  rt_begin();
  const size_t n = 2000;
  ray_ref_t *refs = calloc(n, sizeof *refs);
  bool *ready = calloc(n, sizeof *ready);
  assert_true(refs && ready);
  for (size_t i = 0; i < n; i++) {
    if (i % 10 == 3)
      assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &refs[i]), 0);
    else
      assert_rc(ray_put_i64((int64_t)i, &refs[i]), 0);
  }
  assert_rc(ray_wait(refs, n, n - n / 10, 0, ready), (int)(n - n / 10));
  for (size_t i = 0; i < n; i++) assert_int_equal(ready[i], i % 10 != 3);
  assert_rc(ray_wait(refs, n, 100, 0, ready), 100);
  size_t flagged = 0, last = 0;
  for (size_t i = 0; i < n; i++)
    if (ready[i]) {
      flagged++;
      last = i;
    }
  assert_int_equal(flagged, 100);
  assert_int_equal(last, 110); /* 100 ready among the first 111, skipping 11 pending */
  assert_rc(ray_wait(refs, n, n, 5, ready), (int)(n - n / 10));
  for (size_t i = 0; i < n; i++) assert_rc(ray_ref_release(refs[i]), 0);
  free(refs);
  free(ready);
  rt_assert_store_empty();
  rt_end();
}

/* ---- on_ready --------------------------------------------------------------- */

static void test_on_ready_already_ready(void **state) {
  (void)state;
  rt_begin();
  rt_latch_t latch;
  rt_latch_init(&latch);
  rt_cb_rec_t rec;
  rt_cb_rec_init(&rec, &latch);
  ray_ref_t r = rt_put_bytes(100, 4);
  assert_rc(ray_ref_on_ready(r, rt_cb_record, &rec), 0);
  rt_latch_wait(&latch, 1); /* fires without anything else happening */
  assert_int_equal(atomic_load(&rec.calls), 1);
  assert_int_equal(atomic_load(&rec.status), 0);
  assert_int_equal(atomic_load(&rec.on_main), 0);
  assert_true(atomic_load(&rec.id) == r.id);
  /* Two more registrations on the same ref: once each. */
  assert_rc(ray_ref_on_ready(r, rt_cb_record, &rec), 0);
  assert_rc(ray_ref_on_ready(r, rt_cb_record, &rec), 0);
  rt_latch_wait(&latch, 3);
  /* A failed ref fires with the error's code. */
  rt_cb_rec_t frec;
  rt_cb_rec_init(&frec, &latch);
  ray_ref_t f = rt_make_failed(RAY_TYPE_BYTES, RAY_EDEPFAILED, "dep");
  assert_rc(ray_ref_on_ready(f, rt_cb_record, &frec), 0);
  rt_latch_wait(&latch, 4);
  assert_int_equal(atomic_load(&frec.status), RAY_EDEPFAILED);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(f), 0);
  rt_end();
  assert_int_equal(atomic_load(&rec.calls), 3);
  assert_int_equal(atomic_load(&rec.on_main), 0);
  assert_int_equal(atomic_load(&frec.calls), 1);
  rt_latch_destroy(&latch);
}

static void test_on_ready_completed_later(void **state) {
  (void)state;
  rt_begin();
  rt_latch_t latch;
  rt_latch_init(&latch);
  rt_cb_rec_t recs[3], frec;
  for (int i = 0; i < 3; i++) rt_cb_rec_init(&recs[i], &latch);
  rt_cb_rec_init(&frec, &latch);
  ray_ref_t p, q;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &q), 0);
  for (int i = 0; i < 3; i++) assert_rc(ray_ref_on_ready(p, rt_cb_record, &recs[i]), 0);
  assert_rc(ray_ref_on_ready(q, rt_cb_record, &frec), 0);
  recs[0].do_get = true;
  recs[0].size = 6;
  recs[0].seed = 1;
  char val[6];
  rt_fill(val, 6, 1);
  assert_rc(ray__object_fulfil(p, val, 6), 0);
  rt_latch_wait(&latch, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(atomic_load(&recs[i].calls), 1);
    assert_int_equal(atomic_load(&recs[i].status), 0);
    assert_true(atomic_load(&recs[i].id) == p.id);
    assert_int_equal(atomic_load(&recs[i].on_main), 0);
  }
  /* The callback may poll the store: the value is there. */
  assert_rc(atomic_load(&recs[0].get_rc), 0);
  assert_int_equal(atomic_load(&recs[0].get_ok), 1);
  assert_int_equal(atomic_load(&frec.calls), 0);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ECANCELED, NULL, NULL), 0);
  assert_rc(ray__object_fail(q, e), 0);
  ray_error_free(e);
  rt_latch_wait(&latch, 4);
  assert_int_equal(atomic_load(&frec.status), RAY_ECANCELED);
  assert_rc(ray_ref_release(p), 0);
  assert_rc(ray_ref_release(q), 0);
  rt_end();
  for (int i = 0; i < 3; i++) assert_int_equal(atomic_load(&recs[i].calls), 1);
  assert_int_equal(atomic_load(&frec.calls), 1);
  rt_latch_destroy(&latch);
}

static void test_on_ready_holds_reference(void **state) {
  (void)state;
  rt_begin();
  rt_latch_t latch;
  rt_latch_init(&latch);
  /* Pending: the caller releases its ref before the object is produced. */
  rt_cb_rec_t rec;
  rt_cb_rec_init(&rec, &latch);
  rec.do_get = true;
  rec.seed = 21;
  rec.size = 3000;
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray_ref_on_ready(p, rt_cb_record, &rec), 0);
  assert_rc(ray_ref_release(p), 0);
  unsigned char val[3000];
  rt_fill(val, sizeof val, 21);
  assert_rc(ray__object_fulfil(p, val, sizeof val), 0);
  rt_latch_wait(&latch, 1);
  assert_int_equal(atomic_load(&rec.status), 0);
  assert_rc(atomic_load(&rec.get_rc), 0);
  assert_int_equal(atomic_load(&rec.get_ok), 1);

  /* Ready: released right after registering; the callback still sees it. */
  rt_cb_rec_t rec2;
  rt_cb_rec_init(&rec2, &latch);
  rec2.do_get = true;
  rec2.seed = 22;
  rec2.size = 50;
  ray_ref_t r = rt_put_bytes(50, 22);
  assert_rc(ray_ref_on_ready(r, rt_cb_record, &rec2), 0);
  assert_rc(ray_ref_release(r), 0);
  rt_latch_wait(&latch, 2);
  assert_int_equal(atomic_load(&rec2.status), 0);
  assert_rc(atomic_load(&rec2.get_rc), 0);
  assert_int_equal(atomic_load(&rec2.get_ok), 1);

  rt_end(); /* the registrations' references are gone: nothing leaked */
  assert_int_equal(atomic_load(&rec.calls), 1);
  assert_int_equal(atomic_load(&rec2.calls), 1);
  rt_latch_destroy(&latch);
}

/* ray__quiesce waits for the loop thread: a callback still running (here
 * held inside by a latch) keeps it from returning, and once it returns the
 * registration's reference is gone, so the store is empty. Under load the
 * loop thread could be preempted between a callback and that release;
 * test_stress asserted an empty store right after ray__quiesce. */
typedef struct {
  rt_latch_t entered, go;
} held_cb_t;

static void held_cb(ray_ref_t ref, int status, void *arg) {
  (void)ref;
  (void)status;
  held_cb_t *h = arg;
  rt_latch_signal(&h->entered);
  rt_latch_wait(&h->go, 1);
}

static void test_quiesce_waits_for_callbacks(void **state) {
  (void)state;
  rt_begin();
  held_cb_t h;
  rt_latch_init(&h.entered);
  rt_latch_init(&h.go);
  ray_ref_t r = rt_put_bytes(64, 5);
  assert_rc(ray_ref_on_ready(r, held_cb, &h), 0);
  assert_rc(ray_ref_release(r), 0);
  rt_latch_wait(&h.entered, 1);
  /* The callback runs: the loop is not quiet, and its reference is held.
   * Let the callback go before asserting, so a failure cannot hang. */
  int q0 = ray__quiesce(0), q20 = ray__quiesce(20);
  uint64_t held = rt_stats().objects;
  rt_latch_signal(&h.go);
  assert_rc(q0, RAY_ETIMEDOUT);
  assert_rc(q20, RAY_ETIMEDOUT);
  assert_int_equal(held, 1);
  assert_rc(ray__quiesce(RAY_TIMEOUT_INFINITE), 0);
  assert_int_equal(rt_stats().objects, 0); /* guaranteed now, not a race */
  rt_end();
  rt_latch_destroy(&h.entered);
  rt_latch_destroy(&h.go);
}

static void test_on_ready_at_shutdown(void **state) {
  (void)state;
  rt_begin();
  rt_cb_rec_t recs[4];
  ray_ref_t p, q;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &q), 0);
  for (int i = 0; i < 4; i++) {
    rt_cb_rec_init(&recs[i], NULL);
    assert_rc(ray_ref_on_ready(i < 3 ? p : q, rt_cb_record, &recs[i]), 0);
  }
  assert_rc(ray_ref_release(q), 0); /* only the registration holds q */
  rt_end();
  for (int i = 0; i < 4; i++) {
    assert_int_equal(atomic_load(&recs[i].calls), 1);
    assert_int_equal(atomic_load(&recs[i].status), RAY_ESHUTDOWN);
    assert_int_equal(atomic_load(&recs[i].on_main), 0);
  }
  assert_true(atomic_load(&recs[3].id) == q.id);
}

static void test_on_ready_invalid(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t r = rt_put_bytes(1, 1);
  assert_rc(ray_ref_on_ready(r, NULL, NULL), RAY_EINVAL);
  rt_cb_rec_t rec;
  rt_cb_rec_init(&rec, NULL);
  assert_rc(ray_ref_on_ready(RAY_REF_NIL, rt_cb_record, &rec), RAY_ENOTFOUND);
  assert_rc(ray_ref_on_ready(rt_unknown_ref(), rt_cb_record, &rec), RAY_ENOTFOUND);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_on_ready(r, rt_cb_record, &rec), RAY_ENOTFOUND);
  rt_end();
  assert_int_equal(atomic_load(&rec.calls), 0); /* failed registrations never run */
}

static void test_on_ready_many(void **state) {
  (void)state;
  rt_begin();
  const int n = rt_iters(2000, 300);
  ray_ref_t *refs = calloc((size_t)n, sizeof *refs);
  assert_non_null(refs);
  rt_latch_t latch;
  rt_latch_init(&latch);
  rt_cb_rec_t rec;
  rt_cb_rec_init(&rec, &latch);
  for (int i = 0; i < n; i++) {
    if (i % 2)
      assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &refs[i]), 0);
    else
      assert_rc(ray_put_i64(i, &refs[i]), 0);
    assert_rc(ray_ref_on_ready(refs[i], rt_cb_record, &rec), 0);
  }
  for (int i = 1; i < n; i += 2) assert_rc(ray__object_fulfil(refs[i], "v", 1), 0);
  rt_latch_wait(&latch, n);
  for (int i = 0; i < n; i++) assert_rc(ray_ref_release(refs[i]), 0);
  rt_end();
  assert_int_equal(atomic_load(&rec.calls), n);
  assert_int_equal(atomic_load(&rec.status), 0);
  assert_int_equal(atomic_load(&rec.on_main), 0);
  rt_latch_destroy(&latch);
  free(refs);
}

/* A callback may use the store (non-blocking calls) and register more callbacks. */
typedef struct {
  atomic_int put_rc, get_rc, reg_rc;
  atomic_llong value;
  rt_cb_rec_t *chained;
  rt_latch_t *latch;
} cb_user_t;

static void store_using_cb(ray_ref_t ref, int status, void *arg) {
  cb_user_t *u = (cb_user_t *)arg;
  (void)status;
  ray_ref_t mine;
  int rc = ray_put_i64(1234, &mine);
  atomic_store(&u->put_rc, rc);
  if (rc == 0) {
    int64_t v = 0;
    atomic_store(&u->get_rc, ray_get_i64(mine, 0, &v));
    atomic_store(&u->value, v);
    (void)ray_ref_release(mine);
  }
  atomic_store(&u->reg_rc, ray_ref_on_ready(ref, rt_cb_record, u->chained));
  rt_latch_signal(u->latch);
}

static void test_on_ready_callback_uses_store(void **state) {
  (void)state;
  rt_begin();
  rt_latch_t latch;
  rt_latch_init(&latch);
  rt_cb_rec_t chained;
  rt_cb_rec_init(&chained, &latch);
  cb_user_t u;
  atomic_init(&u.put_rc, 1);
  atomic_init(&u.get_rc, 1);
  atomic_init(&u.reg_rc, 1);
  atomic_init(&u.value, 0);
  u.chained = &chained;
  u.latch = &latch;
  ray_ref_t r = rt_put_bytes(8, 8);
  assert_rc(ray_ref_on_ready(r, store_using_cb, &u), 0);
  rt_latch_wait(&latch, 2); /* the callback, then the one it registered */
  assert_rc(atomic_load(&u.put_rc), 0);
  assert_rc(atomic_load(&u.get_rc), 0);
  assert_int_equal(atomic_load(&u.value), 1234);
  assert_rc(atomic_load(&u.reg_rc), 0);
  assert_int_equal(atomic_load(&chained.status), 0);
  assert_rc(ray_ref_release(r), 0);
  rt_end();
  assert_int_equal(atomic_load(&chained.calls), 1);
  rt_latch_destroy(&latch);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_get_woken_during_notification),
    cmocka_unit_test(test_get_timeouts),
    cmocka_unit_test(test_get_woken_by_fulfil),
    cmocka_unit_test(test_get_woken_by_fail),
    cmocka_unit_test(test_get_woken_by_shutdown),
    cmocka_unit_test(test_get_blocked_ref_released),
    cmocka_unit_test(test_put_batch_get_batch),
    cmocka_unit_test(test_batch_invalid),
    cmocka_unit_test(test_get_batch_failed_fails_at_once),
    cmocka_unit_test(test_get_batch_fail_while_waiting),
    cmocka_unit_test(test_get_batch_woken),
    cmocka_unit_test(test_get_batch_timeout),
    cmocka_unit_test(test_wait_invalid),
    cmocka_unit_test(test_wait_order_and_num_returns),
    cmocka_unit_test(test_wait_failed_only),
    cmocka_unit_test(test_wait_timeout_pending),
    cmocka_unit_test(test_wait_completed_by_other_thread),
    cmocka_unit_test(test_wait_blocked_ref_released),
    cmocka_unit_test(test_wait_many),
    cmocka_unit_test(test_on_ready_already_ready),
    cmocka_unit_test(test_on_ready_completed_later),
    cmocka_unit_test(test_on_ready_holds_reference),
    cmocka_unit_test(test_quiesce_waits_for_callbacks),
    cmocka_unit_test(test_on_ready_at_shutdown),
    cmocka_unit_test(test_on_ready_invalid),
    cmocka_unit_test(test_on_ready_many),
    cmocka_unit_test(test_on_ready_callback_uses_store),
};

RT_MAIN(tests)
