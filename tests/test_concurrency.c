/* test_concurrency.c - several host threads putting, getting, waiting,
 * retaining and releasing the same refs; producers and consumers; callbacks
 * racing completion; functions run on the worker pool. Helper threads only
 * record into atomics; the main thread asserts after joining them. */
#include "test_util.h"

#define NTHREADS 4

static int iters(int normal) {
  return rt_iters(normal, normal / 10 > 0 ? normal / 10 : 1);
}

static size_t shared_size(size_t k) {
  return k % 2 ? 3000 + k : 16 + k;
}

static void start_threads(uv_thread_t *th, int n, uv_thread_cb fn, void *args, size_t arg_size) {
  for (int i = 0; i < n; i++)
    assert_int_equal(uv_thread_create(&th[i], fn, (char *)args + (size_t)i * arg_size), 0);
}

static void join_threads(uv_thread_t *th, int n) {
  for (int i = 0; i < n; i++) assert_int_equal(uv_thread_join(&th[i]), 0);
}

/* ---- many threads on the same shared refs -------------------------------- */

#define NSHARED 16

typedef struct {
  int id;
  int iters;
  ray_ref_t *shared;
  rt_errs_t *errs;
  rt_latch_t *gate;
} shared_arg_t;

static void shared_worker(void *arg) {
  shared_arg_t *a = (shared_arg_t *)arg;
  rt_errs_t *errs = a->errs;
  rt_latch_wait(a->gate, 1);
  for (int i = 0; i < a->iters; i++) {
    size_t k = (size_t)(i + a->id * 5) % NSHARED;
    ray_ref_t r = a->shared[k];
    int rc = ray_ref_retain(r);
    RT_CHECK(errs, rc == 0, rc);
    ray_buf_t b;
    rc = ray_get(r, RAY_TIMEOUT_INFINITE, &b);
    RT_CHECK(errs, rc == 0, rc);
    if (rc == 0) {
      RT_CHECK(errs, b.size == shared_size(k) && rt_check(b.data, b.size, k), (int)k);
      ray_buf_release(&b);
    }
    bool ready[NSHARED];
    rc = ray_wait(a->shared, NSHARED, NSHARED / 2, 0, ready);
    RT_CHECK(errs, rc == NSHARED / 2, rc);
    for (int j = 0; j < NSHARED; j++) RT_CHECK(errs, ready[j] == (j < NSHARED / 2), j);
    if (i % 8 == 0) {
      ray_buf_t bs[NSHARED];
      rc = ray_get_batch(a->shared, NSHARED, 0, bs);
      RT_CHECK(errs, rc == 0, rc);
      if (rc == 0)
        for (size_t j = 0; j < NSHARED; j++) {
          RT_CHECK(errs, bs[j].size == shared_size(j) && rt_check(bs[j].data, bs[j].size, j),
                   (int)j);
          ray_buf_release(&bs[j]);
        }
    }
    /* A private object of this thread. */
    ray_ref_t mine;
    rc = ray_put_i64((int64_t)a->id * 1000000 + i, &mine);
    RT_CHECK(errs, rc == 0, rc);
    int64_t v = -1;
    rc = ray_get_i64(mine, 0, &v);
    RT_CHECK(errs, rc == 0 && v == (int64_t)a->id * 1000000 + i, rc);
    rc = ray_ref_release(mine);
    RT_CHECK(errs, rc == 0, rc);
    rc = ray_ref_release(r);
    RT_CHECK(errs, rc == 0, rc);
  }
}

static void test_shared_refs(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t shared[NSHARED];
  unsigned char buf[4000];
  for (size_t k = 0; k < NSHARED; k++) {
    rt_fill(buf, shared_size(k), k);
    assert_rc(ray_put(buf, shared_size(k), &shared[k]), 0);
  }
  rt_errs_t errs;
  rt_errs_init(&errs);
  rt_latch_t gate;
  rt_latch_init(&gate);
  shared_arg_t args[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    args[i].id = i;
    args[i].iters = iters(3000);
    args[i].shared = shared;
    args[i].errs = &errs;
    args[i].gate = &gate;
  }
  uv_thread_t th[NTHREADS];
  start_threads(th, NTHREADS, shared_worker, args, sizeof args[0]);
  rt_latch_signal(&gate);
  join_threads(th, NTHREADS);
  rt_errs_assert(&errs);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, NSHARED); /* every private object was freed */
  assert_int_equal(s.objects_created, NSHARED + (uint64_t)NTHREADS * (uint64_t)args[0].iters);
  for (size_t k = 0; k < NSHARED; k++) assert_rc(ray_ref_release(shared[k]), 0);
  s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  rt_latch_destroy(&gate);
  rt_end();
}

/* ---- producers and consumers over pending objects ------------------------- */

typedef struct {
  int role; /* 0,1: producers (even / odd indices, backwards); 2: getter; 3: waiter; 4: batch */
  ray_ref_t *refs;
  size_t n;
  rt_errs_t *errs;
  rt_latch_t *gate;
} pc_arg_t;

static void pc_worker(void *arg) {
  pc_arg_t *a = (pc_arg_t *)arg;
  rt_errs_t *errs = a->errs;
  rt_latch_wait(a->gate, 1);
  int rc;
  if (a->role <= 1) {
    for (size_t j = a->n; j-- > 0;) {
      if (j % 2 != (size_t)a->role) continue;
      char enc[16];
      size_t len = rt_encode_i64((int64_t)j * 3, enc, sizeof enc);
      rc = ray__object_fulfil(a->refs[j], enc, len);
      RT_CHECK(errs, rc == 0, rc);
    }
  } else if (a->role == 2) {
    for (size_t j = 0; j < a->n; j++) {
      int64_t v = -1;
      rc = ray_get_i64(a->refs[j], RAY_TIMEOUT_INFINITE, &v);
      RT_CHECK(errs, rc == 0 && v == (int64_t)j * 3, rc);
    }
  } else if (a->role == 3) {
    bool *ready = calloc(a->n, sizeof *ready);
    RT_CHECK(errs, ready != NULL, 0);
    if (ready == NULL) return;
    /* Wait for growing prefixes of readiness, then for all of them. */
    for (size_t k = 1; k <= a->n; k += a->n / 4 + 1) {
      rc = ray_wait(a->refs, a->n, k, RAY_TIMEOUT_INFINITE, ready);
      RT_CHECK(errs, rc == (int)k, rc);
      size_t flagged = 0;
      for (size_t j = 0; j < a->n; j++) flagged += ready[j];
      RT_CHECK(errs, flagged == k, (int)flagged);
    }
    rc = ray_wait(a->refs, a->n, a->n, RAY_TIMEOUT_INFINITE, ready);
    RT_CHECK(errs, rc == (int)a->n, rc);
    free(ready);
  } else {
    ray_buf_t *bs = calloc(a->n, sizeof *bs);
    RT_CHECK(errs, bs != NULL, 0);
    if (bs == NULL) return;
    rc = ray_get_batch(a->refs, a->n, RAY_TIMEOUT_INFINITE, bs);
    RT_CHECK(errs, rc == 0, rc);
    if (rc == 0)
      for (size_t j = 0; j < a->n; j++) {
        RT_CHECK(errs, bs[j].type == RAY_TYPE_I64 && bs[j].size > 0, (int)j);
        ray_buf_release(&bs[j]);
      }
    free(bs);
  }
}

static void test_producers_consumers(void **state) {
  (void)state;
  rt_begin();
  int rounds = iters(20);
  for (int round = 0; round < rounds; round++) {
    const size_t n = 200;
    ray_ref_t refs[200];
    for (size_t j = 0; j < n; j++) assert_rc(ray__object_create_pending(RAY_TYPE_I64, &refs[j]), 0);
    rt_errs_t errs;
    rt_errs_init(&errs);
    rt_latch_t gate;
    rt_latch_init(&gate);
    pc_arg_t args[5];
    for (int i = 0; i < 5; i++) {
      args[i].role = i;
      args[i].refs = refs;
      args[i].n = n;
      args[i].errs = &errs;
      args[i].gate = &gate;
    }
    uv_thread_t th[5];
    start_threads(th, 5, pc_worker, args, sizeof args[0]);
    rt_latch_signal(&gate);
    join_threads(th, 5);
    rt_errs_assert(&errs);
    for (size_t j = 0; j < n; j++) {
      int64_t v;
      assert_rc(ray_get_i64(refs[j], 0, &v), 0);
      assert_true(v == (int64_t)j * 3);
      assert_rc(ray_ref_release(refs[j]), 0);
    }
    rt_latch_destroy(&gate);
  }
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  rt_end();
}

/* ---- retain/release storms on one ref ------------------------------------- */

typedef struct {
  ray_ref_t ref;
  int iters;
  rt_errs_t *errs;
  rt_latch_t *gate;
} rr_arg_t;

static void rr_worker(void *arg) {
  rr_arg_t *a = (rr_arg_t *)arg;
  rt_latch_wait(a->gate, 1);
  for (int i = 0; i < a->iters; i++) {
    int rc = ray_ref_retain(a->ref);
    RT_CHECK(a->errs, rc == 0, rc);
    if (i % 4 == 0) {
      ray_buf_t b;
      rc = ray_get(a->ref, 0, &b);
      RT_CHECK(a->errs, rc == 0 && b.size == 100 && rt_check(b.data, 100, 4), rc);
      if (rc == 0) ray_buf_release(&b);
    }
    rc = ray_ref_release(a->ref);
    RT_CHECK(a->errs, rc == 0, rc);
  }
}

static void test_retain_release_storm(void **state) {
  (void)state;
  rt_begin();
  unsigned char data[100];
  rt_fill(data, sizeof data, 4);
  ray_ref_t r;
  assert_rc(ray_put(data, sizeof data, &r), 0);
  rt_errs_t errs;
  rt_errs_init(&errs);
  rt_latch_t gate;
  rt_latch_init(&gate);
  rr_arg_t args[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    args[i].ref = r;
    args[i].iters = iters(20000);
    args[i].errs = &errs;
    args[i].gate = &gate;
  }
  uv_thread_t th[NTHREADS];
  start_threads(th, NTHREADS, rr_worker, args, sizeof args[0]);
  rt_latch_signal(&gate);
  join_threads(th, NTHREADS);
  rt_errs_assert(&errs);
  /* Exactly the caller's reference is left. */
  assert_int_equal(rt_stats().objects, 1);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(r), RAY_ENOTFOUND);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  rt_latch_destroy(&gate);
  rt_end();
}

/* ---- racing last releases of an owned buffer ----------------------------- */

typedef struct {
  ray_ref_t ref;
  rt_errs_t *errs;
  rt_latch_t *gate;
} lr_arg_t;

static void last_release_worker(void *arg) {
  lr_arg_t *a = (lr_arg_t *)arg;
  rt_latch_wait(a->gate, 1);
  ray_buf_t b;
  int rc = ray_get(a->ref, 0, &b);
  RT_CHECK(a->errs, rc == 0, rc);
  rc = ray_ref_release(a->ref);
  RT_CHECK(a->errs, rc == 0, rc);
  if (b.data != NULL) RT_CHECK(a->errs, rt_check(b.data, b.size, 6), 0);
  ray_buf_release(&b);
}

static void test_concurrent_last_release(void **state) {
  (void)state;
  rt_begin();
  atomic_store(&rt_frees, 0);
  int rounds = iters(100);
  for (int round = 0; round < rounds; round++) {
    void *p = malloc(2048);
    assert_non_null(p);
    rt_fill(p, 2048, 6);
    ray_ref_t r;
    assert_rc(ray_put_owned(p, 2048, rt_count_free, NULL, &r), 0);
    for (int i = 0; i < NTHREADS; i++) assert_rc(ray_ref_retain(r), 0);
    rt_errs_t errs;
    rt_errs_init(&errs);
    rt_latch_t gate;
    rt_latch_init(&gate);
    lr_arg_t args[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
      args[i].ref = r;
      args[i].errs = &errs;
      args[i].gate = &gate;
    }
    uv_thread_t th[NTHREADS];
    start_threads(th, NTHREADS, last_release_worker, args, sizeof args[0]);
    rt_latch_signal(&gate);
    assert_rc(ray_ref_release(r), 0); /* races the threads' releases */
    join_threads(th, NTHREADS);
    rt_errs_assert(&errs);
    assert_int_equal(atomic_load(&rt_frees), round + 1);
    rt_latch_destroy(&gate);
  }
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  rt_end();
  assert_int_equal(atomic_load(&rt_frees), rounds);
}

/* ---- on_ready registrations racing completion --------------------------- */

typedef struct {
  int role; /* 0: registers, 1: fulfils, 2: registers on the odd ones too */
  ray_ref_t *refs;
  size_t n;
  rt_cb_rec_t *rec;
  rt_errs_t *errs;
  rt_latch_t *gate;
} or_arg_t;

static void on_ready_worker(void *arg) {
  or_arg_t *a = (or_arg_t *)arg;
  rt_latch_wait(a->gate, 1);
  for (size_t j = 0; j < a->n; j++) {
    int rc;
    if (a->role == 1)
      rc = ray__object_fulfil(a->refs[j], "v", 1);
    else if (a->role == 0 || j % 2 == 1)
      rc = ray_ref_on_ready(a->refs[j], rt_cb_record, a->rec);
    else
      continue;
    RT_CHECK(a->errs, rc == 0, rc);
  }
}

static void test_on_ready_races_fulfil(void **state) {
  (void)state;
  rt_begin();
  const size_t n = (size_t)iters(2000);
  ray_ref_t *refs = calloc(n, sizeof *refs);
  assert_non_null(refs);
  for (size_t j = 0; j < n; j++) assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &refs[j]), 0);
  rt_latch_t done, gate;
  rt_latch_init(&done);
  rt_latch_init(&gate);
  rt_cb_rec_t rec;
  rt_cb_rec_init(&rec, &done);
  rt_errs_t errs;
  rt_errs_init(&errs);
  or_arg_t args[3];
  for (int i = 0; i < 3; i++) {
    args[i].role = i;
    args[i].refs = refs;
    args[i].n = n;
    args[i].rec = &rec;
    args[i].errs = &errs;
    args[i].gate = &gate;
  }
  uv_thread_t th[3];
  start_threads(th, 3, on_ready_worker, args, sizeof args[0]);
  rt_latch_signal(&gate);
  join_threads(th, 3);
  rt_errs_assert(&errs);
  long expected = (long)n + (long)(n / 2);
  rt_latch_wait(&done, expected); /* all fire while running, none lost */
  for (size_t j = 0; j < n; j++) assert_rc(ray_ref_release(refs[j]), 0);
  rt_end();
  assert_int_equal(atomic_load(&rec.calls), expected); /* and none twice */
  assert_int_equal(atomic_load(&rec.status), 0);
  assert_int_equal(atomic_load(&rec.on_main), 0);
  rt_latch_destroy(&done);
  rt_latch_destroy(&gate);
  free(refs);
}

/* ---- batches from several threads ------------------------------------------- */

typedef struct {
  int id;
  int iters;
  rt_errs_t *errs;
  rt_latch_t *gate;
} batch_arg_t;

static void batch_worker(void *arg) {
  batch_arg_t *a = (batch_arg_t *)arg;
  enum { N = 64 };
  rt_latch_wait(a->gate, 1);
  static const size_t sizes[4] = {0, 8, 1500, 70};
  unsigned char *mem = malloc(N * 1500);
  RT_CHECK(a->errs, mem != NULL, 0);
  if (mem == NULL) return;
  for (int it = 0; it < a->iters; it++) {
    const void *data[N];
    size_t sz[N];
    ray_ref_t refs[N];
    ray_buf_t bufs[N];
    for (size_t j = 0; j < N; j++) {
      sz[j] = sizes[j % 4];
      data[j] = mem + j * 1500;
      rt_fill(mem + j * 1500, sz[j], (uint64_t)a->id * 100000u + (uint64_t)it * 100u + j);
    }
    int rc = ray_put_batch(data, sz, N, refs);
    RT_CHECK(a->errs, rc == 0, rc);
    if (rc != 0) continue;
    rc = ray_get_batch(refs, N, 0, bufs);
    RT_CHECK(a->errs, rc == 0, rc);
    if (rc == 0)
      for (size_t j = 0; j < N; j++) {
        RT_CHECK(
            a->errs,
            bufs[j].size == sz[j] &&
                rt_check(bufs[j].data, sz[j], (uint64_t)a->id * 100000u + (uint64_t)it * 100u + j),
            (int)j);
        ray_buf_release(&bufs[j]);
      }
    bool ready[N];
    rc = ray_wait(refs, N, N, 0, ready);
    RT_CHECK(a->errs, rc == N, rc);
    for (size_t j = 0; j < N; j++) {
      rc = ray_ref_release(refs[j]);
      RT_CHECK(a->errs, rc == 0, rc);
    }
  }
  free(mem);
}

static void test_concurrent_batches(void **state) {
  (void)state;
  rt_begin();
  rt_errs_t errs;
  rt_errs_init(&errs);
  rt_latch_t gate;
  rt_latch_init(&gate);
  batch_arg_t args[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    args[i].id = i;
    args[i].iters = iters(200);
    args[i].errs = &errs;
    args[i].gate = &gate;
  }
  uv_thread_t th[NTHREADS];
  start_threads(th, NTHREADS, batch_worker, args, sizeof args[0]);
  rt_latch_signal(&gate);
  join_threads(th, NTHREADS);
  rt_errs_assert(&errs);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  assert_int_equal(s.objects_created, (uint64_t)NTHREADS * (uint64_t)args[0].iters * 64u);
  rt_latch_destroy(&gate);
  rt_end();
}

/* ---- the worker pool ------------------------------------------------------ */

typedef struct {
  int64_t i;
  atomic_llong *sum;
  atomic_int *on_main;
  rt_errs_t *errs;
  rt_latch_t *done;
} post_arg_t;

static void posted_fn(void *arg) {
  post_arg_t *a = (post_arg_t *)arg;
  uv_thread_t self = uv_thread_self();
  if (uv_thread_equal(&self, &rt_main_thread)) atomic_fetch_add(a->on_main, 1);
  ray_ref_t r;
  int rc = ray_put_i64(a->i, &r);
  RT_CHECK(a->errs, rc == 0, rc);
  if (rc == 0) {
    int64_t v = -1;
    rc = ray_get_i64(r, 0, &v);
    RT_CHECK(a->errs, rc == 0 && v == a->i, rc);
    atomic_fetch_add(a->sum, v);
    rc = ray_ref_release(r);
    RT_CHECK(a->errs, rc == 0, rc);
  }
  rt_latch_signal(a->done);
}

static void test_worker_post(void **state) {
  (void)state;
  rt_begin();
  const int n = iters(1000);
  post_arg_t *args = calloc((size_t)n, sizeof *args);
  assert_non_null(args);
  atomic_llong sum;
  atomic_int on_main;
  atomic_init(&sum, 0);
  atomic_init(&on_main, 0);
  rt_errs_t errs;
  rt_errs_init(&errs);
  rt_latch_t done;
  rt_latch_init(&done);
  for (int i = 0; i < n; i++) {
    args[i].i = i + 1;
    args[i].sum = &sum;
    args[i].on_main = &on_main;
    args[i].errs = &errs;
    args[i].done = &done;
    assert_rc(ray__runtime_worker_post(posted_fn, &args[i]), 0);
  }
  rt_latch_wait(&done, n);
  rt_errs_assert(&errs);
  assert_int_equal(atomic_load(&sum), (long long)n * (n + 1) / 2);
  assert_int_equal(atomic_load(&on_main), 0);
  assert_rc(ray__runtime_worker_post(NULL, NULL), RAY_EINVAL);
  rt_end();
  rt_latch_destroy(&done);
  free(args);
}

/* Every worker blocks in ray_get on the same pending object; the main
 * thread produces it and wakes them all. */
typedef struct {
  ray_ref_t ref;
  atomic_int ok;
  rt_errs_t *errs;
  rt_latch_t *started;
  rt_latch_t *done;
} wg_arg_t;

static void worker_getter(void *arg) {
  wg_arg_t *a = (wg_arg_t *)arg;
  rt_latch_signal(a->started);
  ray_buf_t b;
  int rc = ray_get(a->ref, RAY_TIMEOUT_INFINITE, &b);
  RT_CHECK(a->errs, rc == 0, rc);
  if (rc == 0) {
    RT_CHECK(a->errs, b.size == 5 && memcmp(b.data, "ready", 5) == 0, 0);
    ray_buf_release(&b);
    atomic_fetch_add(&a->ok, 1);
  }
  rt_latch_signal(a->done);
}

static void test_workers_block_on_get(void **state) {
  (void)state;
  rt_begin();
  int nw = (int)rt_stats().num_workers;
  int rounds = iters(20);
  for (int round = 0; round < rounds; round++) {
    rt_errs_t errs;
    rt_errs_init(&errs);
    rt_latch_t started, done;
    rt_latch_init(&started);
    rt_latch_init(&done);
    wg_arg_t a;
    atomic_init(&a.ok, 0);
    a.errs = &errs;
    a.started = &started;
    a.done = &done;
    assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &a.ref), 0);
    for (int i = 0; i < nw; i++) assert_rc(ray__runtime_worker_post(worker_getter, &a), 0);
    rt_latch_wait(&started, nw); /* every worker is in (or entering) ray_get */
    assert_rc(ray__object_fulfil(a.ref, "ready", 5), 0);
    rt_latch_wait(&done, nw);
    rt_errs_assert(&errs);
    assert_int_equal(atomic_load(&a.ok), nw);
    assert_rc(ray_ref_release(a.ref), 0);
    rt_latch_destroy(&started);
    rt_latch_destroy(&done);
  }
  rt_end();
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_shared_refs),           cmocka_unit_test(test_producers_consumers),
    cmocka_unit_test(test_retain_release_storm),  cmocka_unit_test(test_concurrent_last_release),
    cmocka_unit_test(test_on_ready_races_fulfil), cmocka_unit_test(test_concurrent_batches),
    cmocka_unit_test(test_worker_post),           cmocka_unit_test(test_workers_block_on_get),
};

RT_MAIN(tests)
