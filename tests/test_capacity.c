/* test_capacity.c - the object store's capacity through the public API:
 * never exceeded (checked with the high-water mark, with a working set ten
 * times the limit read back byte for byte, also from several threads),
 * least-recently-used spilling order, pinned views never spilled, owned
 * buffers spilled and restored, objects larger than the store, and the
 * store-full code (everything pinned, spilling off, inline objects only,
 * batches, a waiter woken when memory is freed).
 *
 * Helpers, task functions and their state are in memory_util.h; functions
 * run on worker threads and record failed checks into g_errs (TC), asserted
 * after each runtime is shut down. Nothing sleeps, and nothing asserts on
 * time. */
#define _POSIX_C_SOURCE 200809L
#include "memory_util.h"

/* ================================================================================
 * Capacity
 * ================================================================================ */

/* A working set ten times the capacity, of objects from cap/128 to cap/8
 * (64 KiB .. 1 MiB in an 8 MiB store), with reads of random earlier objects
 * mixed in; every value read back byte for byte, forwards and backwards. */
static void test_capacity_never_exceeded(void **state) {
  (void)state;
  const size_t cap = under_vg() ? 1 * MiB : 8 * MiB;
  const size_t lo = cap / 128, hi = cap / 8;
  m_begin(cap, 10000);
  size_t max_objs = 10 * cap / lo + 1, n = 0, total = 0;
  obj_t *objs = calloc(max_objs, sizeof *objs);
  assert_non_null(objs);
  uint64_t rng = 12345;
  while (total < 10 * cap) {
    rng = mix64(rng);
    size_t size = lo + (size_t)(rng % (hi - lo + 1));
    objs[n].size = size;
    objs[n].seed = 1000 + n;
    objs[n].ref = put_pat(size, objs[n].seed);
    total += size;
    n++;
    if (n % 3 == 0) { /* read an earlier one: restores it if spilled */
      size_t k = (size_t)(mix64(rng ^ 77) % n);
      assert_pat(objs[k].ref, objs[k].size, objs[k].seed);
    }
    assert_within_capacity();
  }
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, n);
  assert_true(s.object_store_memory == cap);
  assert_true(s.spill_count > 0);
  assert_true(s.bytes_spilled > 0);
  assert_true(s.bytes_spilled_total >= s.bytes_spilled);
  /* Nothing lost (the spiller may be between freeing one object and
   * counting it on disk). */
  assert_true(s.bytes_in_memory + s.bytes_spilled + hi >= total);
  for (size_t i = 0; i < n; i++) assert_pat(objs[i].ref, objs[i].size, objs[i].seed);
  for (size_t i = n; i-- > 0;) assert_pat(objs[i].ref, objs[i].size, objs[i].seed);
  s = rt_stats();
  assert_true(s.restore_count > 0);
  assert_true(s.bytes_in_memory_high_water <= cap);
  assert_true(s.bytes_in_memory_high_water >= cap / 2); /* it was used */
  assert_true(s.bytes_in_memory <= cap);
  print_message(
      "[  MEMORY  ] %zu objects, %zu MiB through %zu MiB: %llu spills, %llu restores, "
      "high water %llu\n",
      n, total >> 20, cap >> 20, (unsigned long long)s.spill_count,
      (unsigned long long)s.restore_count, (unsigned long long)s.bytes_in_memory_high_water);
  for (size_t i = 0; i < n; i++) rt_release(objs[i].ref);
  rt_assert_store_empty();
  free(objs);
  m_end();
}

/* Four host threads, each with its own working set (2.5x the capacity in
 * all), putting, reading back at random and at the end. */
typedef struct {
  int tid;
  size_t cap;
  uv_thread_t th;
} cap_thread_t;

static void cap_thread(void *p) {
  cap_thread_t *t = p;
  const size_t lo = t->cap / 64, hi = t->cap / 8;
  size_t max = 10 * t->cap / 4 / lo + 1, n = 0, total = 0;
  obj_t *objs = calloc(max, sizeof *objs);
  unsigned char *buf = malloc(hi);
  uint64_t rng = (uint64_t)t->tid * 7919 + 1;
  while (objs != NULL && buf != NULL && total < 10 * t->cap / 4) {
    rng = mix64(rng);
    size_t size = lo + (size_t)(rng % (hi - lo + 1));
    objs[n].size = size;
    objs[n].seed = (uint64_t)t->tid * 1000000 + n;
    pat_fill(buf, size, objs[n].seed);
    int rc = ray_put(buf, size, &objs[n].ref);
    TC(rc == 0, rc);
    if (rc != 0) break;
    total += size;
    n++;
    size_t k = (size_t)(mix64(rng ^ 5) % n);
    ray_buf_t b;
    rc = ray_get(objs[k].ref, 0, &b);
    TC(rc == 0, rc);
    TC(rc != 0 || (b.size == objs[k].size && pat_check(b.data, b.size, objs[k].seed)), (int)k);
    ray_buf_release(&b);
  }
  for (size_t i = 0; i < n; i++) {
    ray_buf_t b;
    int rc = ray_get(objs[i].ref, 0, &b);
    TC(rc == 0, rc);
    TC(rc != 0 || (b.size == objs[i].size && pat_check(b.data, b.size, objs[i].seed)), (int)i);
    ray_buf_release(&b);
  }
  for (size_t i = 0; i < n; i++) TC(ray_ref_release(objs[i].ref) == 0, (int)i);
  free(objs);
  free(buf);
}

static void test_capacity_threads(void **state) {
  (void)state;
  const size_t cap = under_vg() ? 1 * MiB : 4 * MiB;
  m_begin(cap, 10000);
  cap_thread_t th[4];
  for (int i = 0; i < 4; i++) {
    th[i].tid = i + 1;
    th[i].cap = cap;
    assert_int_equal(uv_thread_create(&th[i].th, cap_thread, &th[i]), 0);
  }
  for (int i = 0; i < 4; i++) assert_int_equal(uv_thread_join(&th[i].th), 0);
  rt_errs_assert(&g_errs);
  ray_stats_t s = rt_stats();
  assert_true(s.spill_count > 0);
  assert_true(s.restore_count > 0);
  assert_true(s.bytes_in_memory_high_water <= cap);
  rt_assert_store_empty();
  m_end();
}

/* Least recently used first: an object read after every put is never
 * spilled while 3x the capacity goes through; the oldest untouched one is. */
static void test_lru_order(void **state) {
  (void)state;
  const size_t cap = 1 * MiB, size = 64 * KiB;
  enum { N = 48 };
  m_begin(cap, 10000);
  ray_ref_t refs[N];
  refs[0] = put_pat(size, 0);
  for (int i = 1; i < N; i++) {
    refs[i] = put_pat(size, (uint64_t)i);
    assert_pat(refs[0], size, 0);
  }
  ray_stats_t s = rt_stats();
  assert_true(s.spill_count >= (uint64_t)(N - (int)(cap / size)));
  assert_int_equal(s.restore_count, 0); /* refs[0] was always in memory */
  assert_pat(refs[1], size, 1);         /* the oldest: on disk */
  assert_int_equal(rt_stats().restore_count, 1);
  assert_pat(refs[0], size, 0);
  assert_int_equal(rt_stats().restore_count, 1);
  for (int i = 0; i < N; i++) rt_release(refs[i]);
  rt_assert_store_empty();
  m_end();
}

/* A pinned view is never spilled: its pointer and bytes stay while 3x the
 * capacity goes through, and a new get of it finds it in memory. */
static void test_pinned_view_never_spilled(void **state) {
  (void)state;
  const size_t cap = 1 * MiB;
  m_begin(cap, 10000);
  ray_ref_t a = put_pat(256 * KiB, 1);
  ray_buf_t va;
  assert_rc(ray_get(a, 0, &va), 0);
  const void *p = va.data;
  /* An owned one too: its free_fn must not run while it is read. */
  unsigned char *own = malloc(128 * KiB);
  assert_non_null(own);
  pat_fill(own, 128 * KiB, 2);
  ray_ref_t b;
  assert_rc(ray_put_owned(own, 128 * KiB, count_free_task, NULL, &b), 0);
  ray_buf_t vb;
  assert_rc(ray_get(b, 0, &vb), 0);
  assert_ptr_equal(vb.data, own);
  ray_ref_t others[48];
  for (int i = 0; i < 48; i++) {
    others[i] = put_pat(64 * KiB, 100 + (uint64_t)i);
    assert_ptr_equal(va.data, p);
    assert_within_capacity();
  }
  ray_stats_t s = rt_stats();
  assert_true(s.spill_count > 0);
  assert_int_equal(s.restore_count, 0);
  assert_int_equal(atomic_load(&g_calls), 0);
  assert_true(pat_check(va.data, 256 * KiB, 1));
  assert_true(pat_check(vb.data, 128 * KiB, 2));
  ray_buf_t va2, vb2;
  assert_rc(ray_get(a, 0, &va2), 0);
  assert_ptr_equal(va2.data, p);
  assert_rc(ray_get(b, 0, &vb2), 0);
  assert_ptr_equal(vb2.data, own);
  assert_int_equal(rt_stats().restore_count, 0);
  ray_buf_release(&va2);
  ray_buf_release(&vb2);
  /* Released views: now they may go to disk, and come back intact. */
  ray_buf_release(&va);
  ray_buf_release(&vb);
  for (int i = 0; i < 48; i++) rt_release(others[i]);
  for (int i = 0; i < 48; i++) others[i] = put_pat(64 * KiB, 200 + (uint64_t)i);
  assert_rc(ray__quiesce(60000), 0);          /* the spiller frees after its batch */
  assert_int_equal(atomic_load(&g_calls), 1); /* b was spilled: its buffer freed once */
  assert_pat(a, 256 * KiB, 1);
  assert_pat(b, 128 * KiB, 2);
  for (int i = 0; i < 48; i++) rt_release(others[i]);
  rt_release(a);
  rt_release(b);
  assert_int_equal(atomic_load(&g_calls), 1); /* not again at free */
  rt_assert_store_empty();
  m_end();
}

/* ---- owned buffers ----------------------------------------------------------- */

enum { NOWNED = 24 };
static atomic_int g_owned_frees[NOWNED];
static atomic_int g_owned_bad; /* free_fn saw damaged bytes */
static const size_t OWNED_SIZE = 128 * 1024;

/* An owned payload: its index in the first 8 bytes, then a pattern. */
static void owned_free(void *p, void *arg) {
  (void)arg;
  ray_stats_t s; /* takes every shard lock: would deadlock if one were held */
  if (ray_stats(&s) != 0) atomic_fetch_add(&g_owned_bad, 1);
  uint64_t idx;
  memcpy(&idx, p, 8);
  if (idx < NOWNED)
    atomic_fetch_add(&g_owned_frees[idx], 1);
  else
    atomic_fetch_add(&g_owned_bad, 1);
  if (!pat_check((unsigned char *)p + 8, OWNED_SIZE - 8, 5000 + idx))
    atomic_fetch_add(&g_owned_bad, 1);
  free(p);
}

static bool owned_ok(const void *p, size_t size, uint64_t idx) {
  uint64_t got;
  if (size != OWNED_SIZE) return false;
  memcpy(&got, p, 8);
  return got == idx && pat_check((const unsigned char *)p + 8, OWNED_SIZE - 8, 5000 + idx);
}

static void test_owned_spill_restore(void **state) {
  (void)state;
  const size_t cap = 1 * MiB; /* 24 x 128 KiB: 3x */
  m_begin(cap, 10000);
  for (int i = 0; i < NOWNED; i++) atomic_store(&g_owned_frees[i], 0);
  atomic_store(&g_owned_bad, 0);
  ray_ref_t refs[NOWNED];
  void *bufs[NOWNED];
  for (uint64_t i = 0; i < NOWNED; i++) {
    unsigned char *p = malloc(OWNED_SIZE);
    assert_non_null(p);
    memcpy(p, &i, 8);
    pat_fill(p + 8, OWNED_SIZE - 8, 5000 + i);
    bufs[i] = p;
    assert_rc(ray_put_owned(p, OWNED_SIZE, owned_free, NULL, &refs[i]), 0);
    assert_within_capacity();
  }
  int spilled = 0;
  for (int i = 0; i < NOWNED; i++) {
    int f = atomic_load(&g_owned_frees[i]);
    assert_true(f == 0 || f == 1);
    spilled += f;
  }
  assert_true(spilled >= NOWNED - (int)(cap / OWNED_SIZE)); /* they count against the limit */
  ray_stats_t s = rt_stats();
  assert_true(s.spill_count + 1 >= (uint64_t)spilled); /* the spiller may be between the two */
  /* An owned buffer is read in place until the object is spilled; one read
   * back from anywhere else was spilled, so its buffer is freed (perhaps
   * only once the spiller's batch is done: the spiller frees after it). */
  bool moved[NOWNED];
  for (uint64_t i = 0; i < NOWNED; i++) {
    ray_buf_t b;
    assert_rc(ray_get(refs[i], 0, &b), 0);
    moved[i] = b.data != bufs[i];
    assert_true(owned_ok(b.data, b.size, i));
    ray_buf_release(&b);
  }
  assert_true(rt_stats().restore_count > 0);
  assert_rc(ray__quiesce(60000), 0);
  for (int i = 0; i < NOWNED; i++)
    if (moved[i]) assert_int_equal(atomic_load(&g_owned_frees[i]), 1);
  for (int i = 0; i < NOWNED; i++) rt_release(refs[i]);
  assert_rc(ray__quiesce(60000), 0); /* a batch in flight may free the last ones */
  for (int i = 0; i < NOWNED; i++) assert_int_equal(atomic_load(&g_owned_frees[i]), 1);
  assert_int_equal(atomic_load(&g_owned_bad), 0);
  rt_assert_store_empty();
  m_end();
}

/* ---- larger than the store --------------------------------------------------- */

static void never_called(void *p, void *arg) {
  (void)arg;
  (void)p;
  atomic_fetch_add(&g_calls, 1000);
}

/* The store-full wait is an hour here: the code must come at once (a wait
 * would hit the test's timeout). */
static void test_larger_than_capacity(void **state) {
  (void)state;
  const size_t cap = 1 * MiB;
  ray_config_t cfg;
  m_config(&cfg, cap, 3600 * 1000);
  cfg.num_workers = 1;
  m_begin_cfg(&cfg);
  ray_ref_t keep = put_pat(100 * KiB, 1);
  ray_stats_t before = rt_stats();
  unsigned char *big = malloc(cap + 1);
  assert_non_null(big);
  pat_fill(big, cap + 1, 2);
  ray_ref_t r = RAY_REF_NIL;
  assert_rc(ray_put(big, cap + 1, &r), RAY_ESTOREFULL);
  assert_rc(ray_put_typed(big, cap + 1, RAY_TYPE_USER, &r), RAY_ESTOREFULL);
  assert_rc(ray_put_owned(big, cap + 1, never_called, NULL, &r), RAY_ESTOREFULL);
  const void *data[3] = {big, big, big};
  size_t sizes[3] = {10, cap + 1, 10};
  ray_ref_t out3[3];
  assert_rc(ray_put_batch(data, sizes, 3, out3), RAY_ESTOREFULL);
  /* A msgpack value holding a ref: the ref is not left retained. */
  mp_t m;
  mp_start(&m);
  msgpack_pack_array(&m.pk, 2);
  assert_rc(ray_msgpack_pack_ref(&m.pk, keep), 0);
  msgpack_pack_bin(&m.pk, cap);
  msgpack_pack_bin_body(&m.pk, big, cap);
  assert_rc(ray_put_msgpack(mp_obj(&m), &r), RAY_ESTOREFULL);
  mp_done(&m);
  ray_stats_t after = rt_stats();
  assert_int_equal(after.objects, before.objects);
  assert_true(after.bytes_in_memory == before.bytes_in_memory);
  assert_true(after.objects_created == before.objects_created);
  assert_int_equal(atomic_load(&g_calls), 0); /* the owned buffer is still ours */
  assert_true(pat_check(big, cap + 1, 2));

  /* Tasks: a result too large fails the task with the code; a value
   * argument too large fails the submission. */
  ray_function_t fbig = rt_register("big", fn_big, NULL, rt_t_bytes, 1);
  ray_arg_t args[3] = {ray_arg_i64(3), ray_arg_i64((int64_t)cap + 1), ray_arg_i64(0)};
  ray_ref_t res = rt_submit(fbig, args, 3, NULL);
  ray_buf_t b;
  assert_rc(ray_get(res, RAY_TIMEOUT_INFINITE, &b), RAY_ESTOREFULL);
  assert_int_equal(atomic_load(&g_task_rc), RAY_ESTOREFULL);
  rt_release(res);
  args[2] = ray_arg_i64(1); /* owned */
  res = rt_submit(fbig, args, 3, NULL);
  assert_rc(ray_get(res, RAY_TIMEOUT_INFINITE, &b), RAY_ESTOREFULL);
  rt_release(res);
  ray_function_t fchk = rt_register("check", fn_check, NULL, rt_t_i64, 1);
  ray_arg_t va[2] = {ray_arg_bytes(big, cap + 1), ray_arg_i64(2)};
  ray_ref_t none;
  assert_rc(ray_task_submit(fchk, va, 2, NULL, &none), RAY_ESTOREFULL);

  /* Exactly the capacity fits: everything else goes to disk. */
  rt_release(keep);
  ray_ref_t small[3];
  for (int i = 0; i < 3; i++) small[i] = put_pat(300 * KiB, 10 + (uint64_t)i);
  assert_rc(ray_put(big, cap, &r), 0);
  assert_true(rt_stats().bytes_in_memory == cap);
  for (int i = 0; i < 3; i++) assert_pat(small[i], 300 * KiB, 10 + (uint64_t)i);
  ray_buf_t v;
  assert_rc(ray_get(r, 0, &v), 0);
  assert_true(v.size == cap && memcmp(v.data, big, cap) == 0);
  ray_buf_release(&v);
  rt_release(r);
  for (int i = 0; i < 3; i++) rt_release(small[i]);
  free(big);
  assert_true(rt_stats().bytes_in_memory_high_water <= cap);
  rt_assert_store_empty();
  m_end();
  assert_int_equal(atomic_load(&g_calls), 0);
}

/* ---- store full --------------------------------------------------------------- */

/* Everything pinned: puts wait store_full_timeout_ms, then fail; nothing is
 * dropped; a released view makes room again by spilling. */
static void test_store_full_all_pinned(void **state) {
  (void)state;
  const size_t cap = 1 * MiB, size = 200 * KiB;
  ray_config_t cfg;
  m_config(&cfg, cap, 50);
  cfg.num_workers = 1;
  m_begin_cfg(&cfg);
  ray_ref_t refs[5];
  ray_buf_t views[5];
  for (int i = 0; i < 5; i++) {
    refs[i] = put_pat(size, (uint64_t)i);
    assert_rc(ray_get(refs[i], 0, &views[i]), 0);
  }
  ray_stats_t before = rt_stats();
  ray_ref_t r;
  assert_rc(ray_put(scratch(size, 9), size, &r), RAY_ESTOREFULL);
  unsigned char *own = malloc(size);
  assert_non_null(own);
  pat_fill(own, size, 8);
  assert_rc(ray_put_owned(own, size, never_called, NULL, &r), RAY_ESTOREFULL);
  ray_ref_t inner = put_pat(10, 77); /* small ones still fit */
  assert_rc(put_refs(&inner, 1, 1, &r), 0);
  rt_release(r);
  rt_release(inner);
  ray_stats_t after = rt_stats();
  assert_int_equal(after.objects, before.objects);
  assert_true(after.bytes_in_memory == before.bytes_in_memory);
  assert_int_equal(after.spill_count, 0);
  /* A task result that does not fit: the task fails with the code. */
  ray_function_t fbig = rt_register("big", fn_big, NULL, rt_t_bytes, 1);
  ray_arg_t args[3] = {ray_arg_i64(3), ray_arg_i64((int64_t)size), ray_arg_i64(0)};
  ray_ref_t res = rt_submit(fbig, args, 3, NULL);
  ray_buf_t b;
  assert_rc(ray_get(res, RAY_TIMEOUT_INFINITE, &b), RAY_ESTOREFULL);
  rt_release(res);
  for (int i = 0; i < 5; i++) assert_true(pat_check(views[i].data, size, (uint64_t)i));

  /* One view released: the next put spills that object. */
  ray_buf_release(&views[0]);
  ray_ref_t extra;
  assert_rc(ray_put(scratch(size, 9), size, &extra), 0);
  assert_true(rt_stats().spill_count >= 1);
  /* Restoring refs[0] needs room: only `extra` (unpinned) can go. */
  assert_rc(ray_get(refs[0], 0, &views[0]), 0);
  assert_true(pat_check(views[0].data, size, 0));
  assert_int_equal(rt_stats().restore_count, 1);
  /* Now everything is pinned again and `extra` must be on disk (it cannot
   * fit beside them): its get cannot restore it and fails with the
   * store-full code (after the wait), and nothing is lost. */
  assert_rc(ray_get(extra, 0, &b), RAY_ESTOREFULL);
  ray_buf_release(&views[4]);
  assert_pat(extra, size, 9);
  for (int i = 0; i < 4; i++) ray_buf_release(&views[i]);
  for (int i = 0; i < 5; i++) assert_pat(refs[i], size, (uint64_t)i);
  for (int i = 0; i < 5; i++) rt_release(refs[i]);
  rt_release(extra);
  free(own);
  assert_true(rt_stats().bytes_in_memory_high_water <= cap);
  rt_assert_store_empty();
  m_end();
  assert_int_equal(atomic_load(&g_calls), 0);
}

/* Spilling off: puts fail once the store is full, until something is freed. */
static void test_store_full_spilling_disabled(void **state) {
  (void)state;
  char tmp[64];
  make_tmpdir(tmp, sizeof tmp);
  env_save_t e;
  env_set(&e, "TMPDIR", tmp);
  const size_t cap = 1 * MiB, size = 200 * KiB;
  ray_config_t cfg;
  m_config(&cfg, cap, 50);
  cfg.enable_spilling = false;
  m_begin_cfg(&cfg);
  ray_ref_t refs[5];
  for (int i = 0; i < 5; i++) refs[i] = put_pat(size, (uint64_t)i);
  ray_ref_t r;
  assert_rc(ray_put(scratch(size, 9), size, &r), RAY_ESTOREFULL);
  assert_rc(ray_put(scratch(size, 9), size, &r), RAY_ESTOREFULL);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 5);
  assert_int_equal(s.spill_count, 0);
  assert_int_equal(s.bytes_spilled, 0);
  for (int i = 0; i < 5; i++) assert_pat(refs[i], size, (uint64_t)i);
  rt_release(refs[2]);
  assert_rc(ray_put(scratch(size, 9), size, &refs[2]), 0);
  assert_rc(ray_put(scratch(size, 9), size, &r), RAY_ESTOREFULL);
  for (int i = 0; i < 5; i++) assert_pat(refs[i], size, i == 2 ? 9 : (uint64_t)i);
  assert_int_equal(dir_count(tmp, "", ""), 0); /* no spill directory was made */
  for (int i = 0; i < 5; i++) rt_release(refs[i]);
  rt_assert_store_empty();
  m_end();
  env_restore(&e);
  assert_int_equal(rmdir(tmp), 0);
}

/* Small objects live inside their entries and are never spilled: a store
 * full of them is full even with spilling on. */
static void test_store_full_inline_objects(void **state) {
  (void)state;
  const size_t cap = 64 * KiB;
  m_begin(cap, 50);
  ray_ref_t refs[200];
  int n = 0;
  int rc = 0;
  while (n < 200) {
    rc = ray_put(scratch(1000, (uint64_t)n), 1000, &refs[n]);
    if (rc != 0) break;
    n++;
  }
  assert_rc(rc, RAY_ESTOREFULL);
  assert_true(n > 0 && (size_t)n * 1000 <= cap);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.spill_count, 0);
  assert_int_equal(s.objects, n);
  for (int i = 0; i < n; i++) assert_pat(refs[i], 1000, (uint64_t)i);
  rt_release(refs[0]);
  assert_rc(ray_put(scratch(1000, 0), 1000, &refs[0]), 0);
  for (int i = 0; i < n; i++) rt_release(refs[i]);
  rt_assert_store_empty();
  m_end();
}

/* ray_put_batch is all or nothing: a batch larger than the store fails with
 * the store-full code and creates nothing; one that fits spills others. */
static void test_put_batch_capacity(void **state) {
  (void)state;
  const size_t cap = 1 * MiB, size = 200 * KiB;
  m_begin(cap, 50);
  unsigned char *mem = malloc(6 * size);
  assert_non_null(mem);
  const void *data[6];
  size_t sizes[6];
  for (int i = 0; i < 6; i++) {
    pat_fill(mem + (size_t)i * size, size, 50 + (uint64_t)i);
    data[i] = mem + (size_t)i * size;
    sizes[i] = size;
  }
  ray_ref_t out[6];
  assert_rc(ray_put_batch(data, sizes, 6, out), RAY_ESTOREFULL);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.objects_created, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  ray_ref_t refs[5];
  for (int i = 0; i < 5; i++) refs[i] = put_pat(size, (uint64_t)i);
  assert_rc(ray_put_batch(data, sizes, 4, out), 0);
  assert_true(rt_stats().spill_count >= 4);
  for (int i = 0; i < 4; i++) assert_pat(out[i], size, 50 + (uint64_t)i);
  for (int i = 0; i < 5; i++) assert_pat(refs[i], size, (uint64_t)i);
  assert_rc(ray_ref_release_batch(out, 4), 0);
  assert_rc(ray_ref_release_batch(refs, 5), 0);
  free(mem);
  assert_true(rt_stats().bytes_in_memory_high_water <= cap);
  rt_assert_store_empty();
  m_end();
}

/* A put waiting for memory goes on when another thread frees some (the wait
 * is an hour: only a wake-up lets the test finish in time). */
typedef struct {
  rt_latch_t ready;
  int rc;
  ray_ref_t ref;
} waiter_t;

static void waiter_thread(void *p) {
  waiter_t *w = p;
  const void *data = NULL;
  unsigned char *buf = malloc(200 * KiB);
  if (buf != NULL) {
    pat_fill(buf, 200 * KiB, 42);
    data = buf;
  }
  rt_latch_signal(&w->ready);
  w->rc = data != NULL ? ray_put(data, 200 * KiB, &w->ref) : RAY_ENOMEM;
  free(buf);
}

static void test_store_full_waiter_woken(void **state) {
  (void)state;
  const size_t cap = 1 * MiB, size = 200 * KiB;
  ray_config_t cfg;
  m_config(&cfg, cap, 3600 * 1000);
  cfg.enable_spilling = false;
  m_begin_cfg(&cfg);
  for (int round = 0; round < 3; round++) {
    ray_ref_t refs[5];
    for (int i = 0; i < 5; i++) refs[i] = put_pat(size, (uint64_t)i);
    waiter_t w;
    rt_latch_init(&w.ready);
    w.rc = 1;
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, waiter_thread, &w), 0);
    rt_latch_wait(&w.ready, 1);
    rt_release(refs[round]); /* before or while the put waits */
    assert_int_equal(uv_thread_join(&th), 0);
    rt_latch_destroy(&w.ready);
    assert_rc(w.rc, 0);
    assert_pat(w.ref, size, 42);
    rt_release(w.ref);
    for (int i = 0; i < 5; i++)
      if (i != round) rt_release(refs[i]);
  }
  rt_assert_store_empty();
  m_end();
}

/* A task waiting for store memory gives its worker's CPU away, as a blocked
 * get does: with one worker, the task whose end frees the memory is queued
 * behind it and runs on a spare. (Before, the waiter held the only worker
 * until store_full_timeout_ms ran out: RAY_ESTOREFULL.) */
enum { HOLD = 700 * 1024, RET = 500 * 1024 };

static int fn_return_big(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  unsigned char *p = malloc(RET);
  TC(p != NULL, 0);
  if (p == NULL) return ray_fail(ctx, RAY_ENOMEM, "malloc");
  rt_fill(p, RET, 77);
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  int rc = ray_return_bytes(ctx, 0, p, RET); /* waits for memory */
  free(p);
  atomic_store(&g_task_rc, rc);
  return rc;
}

static int fn_hold(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *data = NULL;
  size_t size = 0;
  TC(ray_ctx_arg_bytes(ctx, 0, &data, &size) == 0 && size == HOLD, 0);
  return ray_return_i64(ctx, 0, 1);
}

static void test_memory_wait_gives_cpu(void **state) {
  (void)state;
  ray_config_t cfg;
  m_config(&cfg, 1 * MiB, 120 * 1000); /* generous: the fix does not need it */
  cfg.enable_spilling = false;
  cfg.num_workers = 1;
  m_begin_cfg(&cfg);
  ray_function_t fa = rt_register("return_big", fn_return_big, NULL, rt_t_bytes, 1);
  ray_function_t fb = rt_register("hold", fn_hold, NULL, rt_t_i64, 1);
  ray_ref_t x = put_pat(HOLD, 5);
  ray_ref_t a = rt_submit(fa, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1); /* A holds the only worker */
  ray_arg_t arg = ray_arg_ref(x);
  ray_ref_t b = rt_submit(fb, &arg, 1, NULL); /* queued behind A; holds x */
  rt_release(x);
  rt_latch_signal(&g_go); /* A now needs 500 KiB of the 324 KiB left */
  ray_buf_t buf;
  assert_rc(ray_get(a, RAY_TIMEOUT_INFINITE, &buf), 0);
  assert_int_equal(buf.size, RET);
  assert_true(rt_check(buf.data, RET, 77));
  ray_buf_release(&buf);
  assert_int_equal(atomic_load(&g_task_rc), 0);
  assert_int_equal(rt_get_i64(b), 1);
  rt_release(a);
  rt_release(b);
  rt_assert_store_empty();
  m_end();
}

int main(void) {
  rt_main_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_capacity_never_exceeded),
      cmocka_unit_test(test_capacity_threads),
      cmocka_unit_test(test_lru_order),
      cmocka_unit_test(test_pinned_view_never_spilled),
      cmocka_unit_test(test_owned_spill_restore),
      cmocka_unit_test(test_larger_than_capacity),
      cmocka_unit_test(test_store_full_all_pinned),
      cmocka_unit_test(test_store_full_spilling_disabled),
      cmocka_unit_test(test_store_full_inline_objects),
      cmocka_unit_test(test_put_batch_capacity),
      cmocka_unit_test(test_store_full_waiter_woken),
      cmocka_unit_test(test_memory_wait_gives_cpu),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(g_scratch);
  return rc;
}
