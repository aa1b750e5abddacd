/* test_nested_refs.c - refs inside objects through the public API: kept
 * alive by the outer object and freed with it, owned refs from
 * ray_get_msgpack, unknown refs, wide objects, a 100,000-level chain freed
 * without recursion, spilled objects holding refs, tasks returning and
 * taking them, and out-of-memory runs of the msgpack-with-refs paths (put,
 * large put, get, get of a spilled value, task submission).
 *
 * Helpers, task functions and their state are in memory_util.h; functions
 * run on worker threads and record failed checks into g_errs (TC), asserted
 * after each runtime is shut down. Nothing sleeps, and nothing asserts on
 * time. */
#define _POSIX_C_SOURCE 200809L
#include "memory_util.h"

/* ================================================================================
 * Refs inside objects
 * ================================================================================ */

static void test_refs_keep_targets_alive(void **state) {
  (void)state;
  m_begin(64 * MiB, 1000);
  ray_ref_t inner = put_pat(5000, 1);
  ray_ref_t outer;
  assert_rc(put_refs(&inner, 1, 7, &outer), 0);
  assert_int_equal(outer.type, RAY_TYPE_MSGPACK);
  assert_int_equal(rt_stats().objects, 2);
  rt_release(inner);
  assert_int_equal(rt_stats().objects, 2);
  assert_pat(inner, 5000, 1); /* still alive: the outer object holds it */
  assert_rc(ray_ref_retain(inner), 0);
  rt_release(inner);
  ray_stats_t s = rt_stats();
  uint64_t freed = s.objects_freed;
  rt_release(outer);
  s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_true(s.objects_freed == freed + 2);
  assert_gone(inner);
  assert_rc(ray_ref_retain(inner), RAY_ENOTFOUND);
  rt_assert_store_empty();

  /* Two levels and a shared target: a <- b, a <- c, b <- d. */
  ray_ref_t a = put_pat(3000, 2), b, c, d;
  assert_rc(put_refs(&a, 1, 1, &b), 0);
  assert_rc(put_refs(&a, 1, 2, &c), 0);
  assert_rc(put_refs(&b, 1, 3, &d), 0);
  rt_release(a);
  rt_release(b);
  assert_int_equal(rt_stats().objects, 4);
  rt_release(c);
  assert_int_equal(rt_stats().objects, 3); /* d -> b -> a */
  assert_pat(a, 3000, 2);
  rt_release(d);
  rt_assert_store_empty();

  /* The same ref twice in one object holds it twice. */
  ray_ref_t t = put_pat(2000, 3);
  ray_ref_t two[2] = {t, t}, o2;
  assert_rc(put_refs(two, 2, 0, &o2), 0);
  rt_release(t);
  assert_pat(t, 2000, 3);
  rt_release(o2);
  assert_gone(t);
  rt_assert_store_empty();
  m_end();
}

/* ray_put_msgpack_bytes: a value encoded by someone else (the C++ API's
 * msgpack-c++) holds the refs inside it as ray_put_msgpack's does; bad
 * bytes are refused and nothing is stored. */
static void test_put_msgpack_bytes(void **state) {
  (void)state;
  ray_ref_t r = RAY_REF_NIL;
  const unsigned char one[] = {0x01};
  assert_rc(ray_put_msgpack_bytes(one, 1, &r), RAY_ENOTINIT);
  m_begin(64 * MiB, 1000);
  ray_ref_t inner = put_pat(4000, 9);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_int(&pk, 7);
  assert_rc(ray_msgpack_pack_ref(&pk, inner), 0);
  ray_ref_t outer;
  assert_rc(ray_put_msgpack_bytes(sb.data, sb.size, &outer), 0);
  assert_int_equal(outer.type, RAY_TYPE_MSGPACK);
  rt_release(inner);
  assert_pat(inner, 4000, 9); /* held by the outer object */
  ray_buf_t b;
  assert_rc(ray_get(outer, 0, &b), 0);
  assert_int_equal(b.size, sb.size);
  assert_memory_equal(b.data, sb.data, sb.size);
  ray_buf_release(&b);
  rt_release(outer);
  assert_gone(inner);
  /* Refused: NULL, invalid, trailing, truncated, an unknown ref inside. */
  uint64_t before = rt_stats().objects;
  assert_rc(ray_put_msgpack_bytes(NULL, 1, &r), RAY_EINVAL);
  assert_rc(ray_put_msgpack_bytes(one, 1, NULL), RAY_EINVAL);
  const unsigned char bad[] = {0xc1};
  assert_rc(ray_put_msgpack_bytes(bad, 1, &r), RAY_EDECODE);
  const unsigned char two[] = {0x01, 0x02};
  assert_rc(ray_put_msgpack_bytes(two, 2, &r), RAY_EDECODE);
  const unsigned char cut[] = {0x92, 0x01};
  assert_rc(ray_put_msgpack_bytes(cut, 2, &r), RAY_EDECODE);
  assert_rc(ray_put_msgpack_bytes(sb.data, sb.size, &r), RAY_ENOTFOUND); /* inner is gone */
  assert_int_equal(rt_stats().objects, before);
  msgpack_sbuffer_destroy(&sb);
  rt_assert_store_empty();
  m_end();
}

/* ray_get_msgpack hands out one owned reference per ref inside. */
static void test_get_msgpack_owned_refs(void **state) {
  (void)state;
  m_begin(64 * MiB, 1000);
  ray_ref_t r1 = put_pat(100, 1), r2 = put_pat(5000, 2), r3 = put_pat(10, 3);
  /* {"a": [r1, {"b": r2}], r3: r1} */
  mp_t m;
  mp_start(&m);
  msgpack_pack_map(&m.pk, 2);
  msgpack_pack_str(&m.pk, 1);
  msgpack_pack_str_body(&m.pk, "a", 1);
  msgpack_pack_array(&m.pk, 2);
  assert_rc(ray_msgpack_pack_ref(&m.pk, r1), 0);
  msgpack_pack_map(&m.pk, 1);
  msgpack_pack_str(&m.pk, 1);
  msgpack_pack_str_body(&m.pk, "b", 1);
  assert_rc(ray_msgpack_pack_ref(&m.pk, r2), 0);
  assert_rc(ray_msgpack_pack_ref(&m.pk, r3), 0);
  assert_rc(ray_msgpack_pack_ref(&m.pk, r1), 0);
  const msgpack_object *obj = mp_obj(&m);
  ray_ref_t outer;
  assert_rc(ray_put_msgpack(obj, &outer), 0);
  rt_release(r1);
  rt_release(r2);
  rt_release(r3);
  assert_int_equal(rt_stats().objects, 4);

  ray_msgpack_t v;
  assert_rc(ray_get_msgpack(outer, 0, &v), 0);
  assert_true(msgpack_object_equal(v.obj, *obj));
  mp_done(&m);
  assert_int_equal(v.nrefs, 4);
  assert_non_null(v.refs);
  uint64_t want[4] = {r1.id, r2.id, r3.id, r1.id}; /* document order */
  for (int i = 0; i < 4; i++) assert_true(v.refs[i].id == want[i]);
  assert_int_equal(v.refs[0].type, RAY_TYPE_BYTES);
  ray_ref_t via;
  assert_rc(ray_msgpack_ref(&v.obj.via.map.ptr[0].val.via.array.ptr[0], &via), 0);
  assert_true(via.id == r1.id && via.type == r1.type);
  assert_rc(ray_msgpack_ref(&v.obj.via.map.ptr[0].key, &via), RAY_ETYPE);
  assert_rc(ray_msgpack_ref(NULL, &via), RAY_EINVAL);
  ray_ref_t got[4];
  memcpy(got, v.refs, sizeof got);
  ray_msgpack_release(&v); /* does not release the refs */
  rt_release(outer);
  assert_int_equal(rt_stats().objects, 3); /* our refs keep the targets */
  assert_pat(r1, 100, 1);
  assert_pat(r2, 5000, 2);
  assert_pat(r3, 10, 3);
  assert_rc(ray_ref_release_batch(got, 4), 0);
  assert_gone(r1);
  assert_gone(r2);
  rt_assert_store_empty();

  /* A value without refs: nrefs 0, refs NULL. */
  ray_ref_t plain;
  assert_rc(put_refs(NULL, 0, 5, &plain), 0);
  assert_rc(ray_get_msgpack(plain, 0, &v), 0);
  assert_int_equal(v.nrefs, 0);
  assert_null(v.refs);
  ray_msgpack_release(&v);
  rt_release(plain);
  rt_assert_store_empty();
  m_end();
}

/* Refs that are unknown, released or malformed: the put fails and nothing
 * is created or retained. */
static void test_refs_unknown_inside(void **state) {
  (void)state;
  m_begin(64 * MiB, 1000);
  ray_ref_t known[3] = {put_pat(10, 1), put_pat(5000, 2), put_pat(20, 3)};
  ray_ref_t gone = put_pat(10, 4);
  rt_release(gone);
  ray_ref_t unknown = {UINT64_MAX - 99, RAY_TYPE_BYTES};
  ray_stats_t before = rt_stats();
  for (int pos = 0; pos < 4; pos++) {
    ray_ref_t set[4];
    int k = 0;
    for (int i = 0; i < 4; i++) set[i] = i == pos ? (pos % 2 ? gone : unknown) : known[k++];
    ray_ref_t out = {123, 456};
    assert_rc(put_refs(set, 4, 0, &out), RAY_ENOTFOUND);
  }
  ray_ref_t out;
  assert_rc(put_refs(&gone, 1, 0, &out), RAY_ENOTFOUND);
  ray_stats_t after = rt_stats();
  assert_int_equal(after.objects, before.objects);
  assert_true(after.objects_created == before.objects_created);
  assert_true(after.bytes_in_memory == before.bytes_in_memory);

  /* A nil ref cannot be packed. */
  mp_t m;
  mp_start(&m);
  assert_rc(ray_msgpack_pack_ref(&m.pk, RAY_REF_NIL), RAY_EINVAL);
  assert_rc(ray_msgpack_pack_ref(NULL, known[0]), RAY_EINVAL);
  mp_done(&m);
  /* A ref ext of the wrong length, or holding id 0. */
  mp_start(&m);
  msgpack_pack_array(&m.pk, 2);
  assert_rc(ray_msgpack_pack_ref(&m.pk, known[0]), 0);
  msgpack_pack_ext(&m.pk, 5, RAY_MSGPACK_EXT_REF);
  msgpack_pack_ext_body(&m.pk, "abcde", 5);
  int rc = ray_put_msgpack(mp_obj(&m), &out);
  mp_done(&m);
  assert_true(rc == RAY_EDECODE || rc == RAY_EINVAL);
  mp_start(&m);
  static const char zero12[12] = {0};
  msgpack_pack_ext(&m.pk, 12, RAY_MSGPACK_EXT_REF);
  msgpack_pack_ext_body(&m.pk, zero12, 12);
  rc = ray_put_msgpack(mp_obj(&m), &out);
  mp_done(&m);
  assert_true(rc == RAY_EDECODE || rc == RAY_EINVAL || rc == RAY_ENOTFOUND);
  /* Another ext type is just data. */
  mp_start(&m);
  msgpack_pack_ext(&m.pk, 12, RAY_MSGPACK_EXT_ACTOR + 1);
  msgpack_pack_ext_body(&m.pk, zero12, 12);
  assert_rc(ray_put_msgpack(mp_obj(&m), &out), 0);
  mp_done(&m);
  rt_release(out);
  after = rt_stats();
  assert_int_equal(after.objects, before.objects);
  /* Each known ref was retained by nobody: one release frees it. */
  for (int i = 0; i < 3; i++) {
    rt_release(known[i]);
    assert_gone(known[i]);
  }
  rt_assert_store_empty();
  m_end();
}

/* One object holding 10,000 refs: gets hand out 10,000 owned refs. */
static void test_refs_wide(void **state) {
  (void)state;
  m_begin(256 * MiB, 1000);
  enum { N = 10000 };
  ray_ref_t *refs = calloc(N, sizeof *refs);
  assert_non_null(refs);
  for (int i = 0; i < N; i++) assert_rc(ray_put(&i, sizeof i, &refs[i]), 0);
  ray_ref_t outer;
  assert_rc(put_refs(refs, N, -1, &outer), 0);
  assert_rc(ray_ref_release_batch(refs, N), 0);
  assert_int_equal(rt_stats().objects, N + 1);
  for (int round = 0; round < 3; round++) {
    ray_msgpack_t v;
    assert_rc(ray_get_msgpack(outer, 0, &v), 0);
    assert_int_equal(v.nrefs, N);
    for (int i = 0; i < N; i++) assert_true(v.refs[i].id == refs[i].id);
    assert_rc(ray_ref_release_batch(v.refs, v.nrefs), 0);
    ray_msgpack_release(&v);
  }
  assert_int_equal(rt_stats().objects, N + 1);
  ray_buf_t b;
  assert_rc(ray_get(refs[N / 2], 0, &b), 0);
  int val;
  memcpy(&val, b.data, sizeof val);
  assert_int_equal(val, N / 2);
  ray_buf_release(&b);
  rt_release(outer);
  rt_assert_store_empty();
  free(refs);
  m_end();
}

/* A chain of 100,000 objects, each a msgpack array holding the previous
 * one's ref, freed by releasing the outermost (on a thread with a small
 * stack: freeing must not recurse); and another walked from the top with
 * ray_get_msgpack's owned refs. */
enum { CHAIN = 100000 };

static ray_ref_t build_chain(int levels) {
  ray_ref_t cur = put_pat(2000, 1);
  for (int i = 1; i <= levels; i++) {
    ray_ref_t next;
    assert_rc(put_refs(&cur, 1, i, &next), 0);
    rt_release(cur);
    cur = next;
  }
  return cur;
}

typedef struct {
  ray_ref_t top;
  int rc;
} release_job_t;

static void release_thread(void *p) {
  release_job_t *j = p;
  j->rc = ray_ref_release(j->top);
}

static void test_deep_chain(void **state) {
  (void)state;
  m_begin(1024 * MiB, 1000);
  ray_ref_t top = build_chain(CHAIN);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, CHAIN + 1);
  release_job_t job = {top, 1};
  uv_thread_t th;
  uv_thread_options_t opts;
  opts.flags = UV_THREAD_HAS_STACK_SIZE;
  opts.stack_size = 256 * 1024;
  assert_int_equal(uv_thread_create_ex(&th, &opts, release_thread, &job), 0);
  assert_int_equal(uv_thread_join(&th), 0);
  assert_rc(job.rc, 0);
  s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_true(s.objects_freed == s.objects_created);
  rt_assert_store_empty();

  /* Walk down: each level's one ref leads to the next; the last is bytes. */
  top = build_chain(CHAIN);
  ray_ref_t cur = top;
  for (int i = CHAIN; i >= 1; i--) {
    ray_msgpack_t v;
    assert_rc(ray_get_msgpack(cur, 0, &v), 0);
    assert_int_equal(v.nrefs, 1);
    assert_true(v.obj.type == MSGPACK_OBJECT_ARRAY && v.obj.via.array.size == 2);
    assert_true(v.obj.via.array.ptr[1].via.i64 == i);
    ray_ref_t next = v.refs[0];
    ray_msgpack_release(&v);
    rt_release(cur); /* frees this level; `next` is ours */
    cur = next;
  }
  assert_int_equal(rt_stats().objects, 1);
  assert_pat(cur, 2000, 1);
  rt_release(cur);
  rt_assert_store_empty();
  m_end();
}

/* An object holding refs, spilled and restored, still holds them. */
static void test_spilled_object_with_refs(void **state) {
  (void)state;
  const size_t cap = 1 * MiB;
  m_begin(cap, 10000);
  ray_ref_t inner[2] = {put_pat(50, 1), put_pat(100 * KiB, 2)};
  unsigned char *bin = malloc(300 * KiB);
  assert_non_null(bin);
  pat_fill(bin, 300 * KiB, 3);
  mp_t m;
  mp_start(&m);
  msgpack_pack_array(&m.pk, 3);
  assert_rc(ray_msgpack_pack_ref(&m.pk, inner[0]), 0);
  msgpack_pack_bin(&m.pk, 300 * KiB);
  msgpack_pack_bin_body(&m.pk, bin, 300 * KiB);
  assert_rc(ray_msgpack_pack_ref(&m.pk, inner[1]), 0);
  ray_ref_t outer;
  assert_rc(ray_put_msgpack(mp_obj(&m), &outer), 0);
  mp_done(&m);
  rt_release(inner[0]);
  rt_release(inner[1]);
  ray_ref_t filler[48];
  for (int i = 0; i < 48; i++) filler[i] = put_pat(64 * KiB, 100 + (uint64_t)i);
  assert_true(rt_stats().spill_count > 0);
  assert_int_equal(rt_stats().objects, 48 + 3);
  ray_msgpack_t v;
  assert_rc(ray_get_msgpack(outer, 0, &v), 0);
  assert_true(rt_stats().restore_count >= 1);
  assert_int_equal(v.nrefs, 2);
  assert_true(v.obj.via.array.ptr[1].type == MSGPACK_OBJECT_BIN);
  assert_true(v.obj.via.array.ptr[1].via.bin.size == 300 * KiB);
  assert_memory_equal(v.obj.via.array.ptr[1].via.bin.ptr, bin, 300 * KiB);
  assert_true(v.refs[0].id == inner[0].id && v.refs[1].id == inner[1].id);
  assert_pat(v.refs[0], 50, 1);
  assert_pat(v.refs[1], 100 * KiB, 2);
  assert_rc(ray_ref_release_batch(v.refs, v.nrefs), 0);
  ray_msgpack_release(&v);
  for (int i = 0; i < 48; i++) rt_release(filler[i]);
  rt_release(outer);
  assert_gone(inner[1]);
  rt_assert_store_empty();

  /* Freed while on disk: its refs are released with it. */
  ray_ref_t in2 = put_pat(100 * KiB, 4);
  mp_start(&m);
  msgpack_pack_array(&m.pk, 2);
  assert_rc(ray_msgpack_pack_ref(&m.pk, in2), 0);
  msgpack_pack_bin(&m.pk, 300 * KiB);
  msgpack_pack_bin_body(&m.pk, bin, 300 * KiB);
  assert_rc(ray_put_msgpack(mp_obj(&m), &outer), 0);
  mp_done(&m);
  rt_release(in2);
  uint64_t spilled_before = rt_stats().spill_count;
  for (int i = 0; i < 48; i++) filler[i] = put_pat(64 * KiB, 300 + (uint64_t)i);
  assert_true(rt_stats().spill_count >= spilled_before + 2); /* outer and in2 among them */
  assert_int_equal(rt_stats().restore_count, 2);             /* only the reads above */
  rt_release(outer);
  assert_gone(in2);
  for (int i = 0; i < 48; i++) rt_release(filler[i]);
  free(bin);
  rt_assert_store_empty();
  m_end();
}

/* Tasks returning values that hold refs, and failing after setting one. */
static void test_task_returns_refs(void **state) {
  (void)state;
  ray_config_t cfg;
  m_config(&cfg, 64 * MiB, 1000);
  cfg.num_workers = 1;
  m_begin_cfg(&cfg);
  ray_function_t fmake = rt_register("make_refs", fn_make_refs, NULL, rt_t_msgpack, 1);
  ray_arg_t a[2] = {ray_arg_i64(20), ray_arg_i64(0)};
  ray_ref_t res = rt_submit(fmake, a, 2, NULL);
  ray_msgpack_t v;
  assert_rc(ray_get_msgpack(res, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_int_equal(v.nrefs, 20);
  assert_true(v.obj.via.array.size == 21);
  assert_true(v.obj.via.array.ptr[20].type == MSGPACK_OBJECT_STR);
  assert_int_equal(rt_stats().objects, 21);
  for (size_t i = 0; i < v.nrefs; i++) assert_pat(v.refs[i], 100 + i * 700, 9000 + i);
  ray_ref_t held[20];
  memcpy(held, v.refs, sizeof held);
  ray_msgpack_release(&v);
  rt_release(res);
  assert_int_equal(rt_stats().objects, 20); /* our refs from the get */
  assert_rc(ray_ref_release_batch(held, 20), 0);
  rt_assert_store_empty();

  /* Failing after ray_return_msgpack: the value and its refs are dropped. */
  a[1] = ray_arg_i64(1);
  res = rt_submit(fmake, a, 2, NULL);
  ray_buf_t b;
  assert_rc(ray_get(res, RAY_TIMEOUT_INFINITE, &b), RAY_ETASK);
  assert_rc(ray__quiesce(60000), 0);       /* every task has finished */
  assert_int_equal(rt_stats().objects, 1); /* the failed result only */
  rt_release(res);
  rt_assert_store_empty();

  /* A result released before the task runs: the value and its refs go. */
  ray_function_t fblock = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  ray_ref_t blk = rt_submit(fblock, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  a[1] = ray_arg_i64(0);
  res = rt_submit(fmake, a, 2, NULL);
  rt_release(res);
  rt_latch_signal(&g_go);
  assert_int_equal(rt_get_i64(blk), 1);
  rt_release(blk);
  assert_rc(ray__quiesce(60000), 0);
  assert_int_equal(atomic_load(&g_calls), 3);
  rt_assert_store_empty();
  m_end();
}

/* Tasks taking msgpack values that hold refs: the argument holds them until
 * the task is done; an unknown ref fails the submission. */
static void test_task_msgpack_arg_refs(void **state) {
  (void)state;
  ray_config_t cfg;
  m_config(&cfg, 64 * MiB, 1000);
  cfg.num_workers = 1;
  m_begin_cfg(&cfg);
  ray_function_t fread = rt_register("read_refs", fn_read_refs, NULL, rt_t_i64, 1);
  ray_function_t fblock = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  ray_ref_t blk = rt_submit(fblock, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
  ray_ref_t x = put_pat(5000, 11), y = put_pat(30, 12);
  mp_t m;
  mp_start(&m);
  msgpack_pack_array(&m.pk, 4);
  assert_rc(ray_msgpack_pack_ref(&m.pk, x), 0);
  msgpack_pack_uint64(&m.pk, 11);
  assert_rc(ray_msgpack_pack_ref(&m.pk, y), 0);
  msgpack_pack_uint64(&m.pk, 12);
  ray_arg_t arg = ray_arg_msgpack(mp_obj(&m));
  ray_ref_t res = rt_submit(fread, &arg, 1, NULL);
  rt_release(x);
  rt_release(y);
  assert_true(rt_stats().objects >= 4); /* blk, res, x, y (and the stored argument) */
  assert_pat(x, 5000, 11);
  /* An unknown ref inside: nothing submitted, nothing created. */
  ray_stats_t before = rt_stats();
  mp_t m2;
  mp_start(&m2);
  msgpack_pack_array(&m2.pk, 2);
  ray_ref_t bogus = {UINT64_MAX - 7, RAY_TYPE_BYTES};
  assert_rc(ray_msgpack_pack_ref(&m2.pk, bogus), 0);
  msgpack_pack_uint64(&m2.pk, 0);
  ray_arg_t bad = ray_arg_msgpack(mp_obj(&m2));
  ray_ref_t none;
  assert_rc(ray_task_submit(fread, &bad, 1, NULL, &none), RAY_ENOTFOUND);
  mp_done(&m2);
  ray_stats_t after = rt_stats();
  assert_int_equal(after.objects, before.objects);
  assert_true(after.objects_created == before.objects_created);
  assert_true(after.tasks_submitted == before.tasks_submitted);
  rt_latch_signal(&g_go);
  assert_int_equal(rt_get_i64(res), 2);
  mp_done(&m);
  rt_release(res);
  assert_int_equal(rt_get_i64(blk), 1);
  rt_release(blk);
  assert_rc(ray__quiesce(60000), 0); /* every task has finished */
  assert_gone(x);
  assert_gone(y);
  rt_assert_store_empty();
  m_end();
}

/* ================================================================================
 * Out of memory: msgpack values with refs
 * ================================================================================ */

enum { OOM_REFS = 40, OOM_MAX_N = 500 };

typedef struct {
  ray_ref_t inner[OOM_REFS];
  ray_ref_t outer; /* prepared for the get case */
  ray_ref_t out;   /* the operation's result */
  ray_msgpack_t m;
  mp_t mp;
  const msgpack_object *obj;
  ray_function_t fread, fblock;
  ray_ref_t blk;
  bool bin;          /* append a 300 KiB bin: a large (owned, spillable) value */
  ray_ref_t fill[4]; /* objects that push the value out to disk */
  int nfill;
} oom_x;

typedef struct {
  const char *name;
  void (*prepare)(oom_x *);
  int (*op)(oom_x *);
  void (*ok)(oom_x *);      /* after success: check and release what op made */
  void (*on_fail)(oom_x *); /* after ENOMEM: check nothing is held */
  bool made_and_freed;      /* a failed call may create and free objects on the way */
  size_t capacity;          /* 0: 64 MiB */
  bool spills;              /* a failed call may have spilled others (bytes in memory move) */
} oom_case;

static void oom_pack(oom_x *x) {
  mp_start(&x->mp);
  msgpack_pack_array(&x->mp.pk, 2 * OOM_REFS + (x->bin ? 1 : 0));
  for (int i = 0; i < OOM_REFS; i++) {
    assert_rc(ray_msgpack_pack_ref(&x->mp.pk, x->inner[i]), 0);
    msgpack_pack_uint64(&x->mp.pk, 300 + (uint64_t)i);
  }
  if (x->bin) {
    msgpack_pack_bin(&x->mp.pk, 300 * KiB);
    msgpack_pack_bin_body(&x->mp.pk, scratch(300 * KiB, 77), 300 * KiB);
  }
  x->obj = mp_obj(&x->mp);
}

/* A large value holding refs: the owned path of ray_put_msgpack. */
static void prep_put_big(oom_x *x) {
  x->bin = true;
  oom_pack(x);
}

/* A large value holding refs, on disk: the get restores it. */
static void prep_get_spilled(oom_x *x) {
  x->bin = true;
  oom_pack(x);
  assert_rc(ray_put_msgpack(x->obj, &x->outer), 0);
  x->nfill = 3;
  for (int i = 0; i < x->nfill; i++) x->fill[i] = put_pat(800 * KiB, 400 + (uint64_t)i);
  assert_true(rt_stats().spill_count > 0);
}

static void prep_put(oom_x *x) {
  oom_pack(x);
}
static int op_put(oom_x *x) {
  return ray_put_msgpack(x->obj, &x->out);
}
static void ok_put(oom_x *x) {
  ray_msgpack_t v;
  assert_rc(ray_get_msgpack(x->out, 0, &v), 0);
  assert_true(msgpack_object_equal(v.obj, *x->obj));
  assert_int_equal(v.nrefs, OOM_REFS);
  assert_rc(ray_ref_release_batch(v.refs, v.nrefs), 0);
  ray_msgpack_release(&v);
  rt_release(x->out);
  mp_done(&x->mp);
}
static void fail_put(oom_x *x) {
  mp_done(&x->mp);
}

static void prep_get(oom_x *x) {
  oom_pack(x);
  assert_rc(ray_put_msgpack(x->obj, &x->outer), 0);
}
static int op_get(oom_x *x) {
  memset(&x->m, 0x5A, sizeof x->m);
  return ray_get_msgpack(x->outer, 0, &x->m);
}
static void ok_get(oom_x *x) {
  assert_true(msgpack_object_equal(x->m.obj, *x->obj));
  assert_int_equal(x->m.nrefs, OOM_REFS);
  for (int i = 0; i < OOM_REFS; i++) assert_true(x->m.refs[i].id == x->inner[i].id);
  assert_rc(ray_ref_release_batch(x->m.refs, x->m.nrefs), 0);
  ray_msgpack_release(&x->m);
  rt_release(x->outer);
  mp_done(&x->mp);
}
static void fail_get(oom_x *x) {
  assert_true(rt_is_zero(&x->m, sizeof x->m)); /* zeroed, no refs handed out */
  rt_release(x->outer);
  mp_done(&x->mp);
}

/* Submitting a task whose msgpack argument holds refs; the one worker is
 * held so the task cannot run (and allocate) while the failure is armed. */
static void prep_submit(oom_x *x) {
  oom_pack(x);
  x->fread = rt_register("read_refs", fn_read_refs, NULL, rt_t_i64, 1);
  x->fblock = rt_register("block", fn_block, NULL, rt_t_i64, 1);
  x->blk = rt_submit(x->fblock, NULL, 0, NULL);
  rt_latch_wait(&g_started, 1);
}
static int op_submit(oom_x *x) {
  ray_arg_t a = ray_arg_msgpack(x->obj);
  return ray_task_submit(x->fread, &a, 1, NULL, &x->out);
}
static void unblock(oom_x *x) {
  rt_latch_signal(&g_go);
  assert_int_equal(rt_get_i64(x->blk), 1);
  rt_release(x->blk);
}
static void ok_submit(oom_x *x) {
  unblock(x);
  /* fn_read_refs checks pat of each inner (seeded 300+i). */
  assert_int_equal(rt_get_i64(x->out), OOM_REFS);
  rt_release(x->out);
  assert_rc(ray__quiesce(60000), 0);
  mp_done(&x->mp);
}
static void fail_submit(oom_x *x) {
  unblock(x);
  assert_rc(ray__quiesce(60000), 0);
  mp_done(&x->mp);
}

static void oom_run(const oom_case *c) {
  bool converged = false;
  long n, fired_runs = 0;
  for (n = 1; n <= OOM_MAX_N && !converged; n++) {
    oom_x *x = calloc(1, sizeof *x);
    assert_non_null(x);
    ray_config_t cfg;
    m_config(&cfg, c->capacity ? c->capacity : 64 * MiB, 50);
    cfg.num_workers = 1;
    m_begin_cfg(&cfg);
    /* Inner objects over several shards, inline and not. */
    enum { SPAN = 2100 };
    ray_ref_t *all = calloc(SPAN, sizeof *all);
    assert_non_null(all);
    for (int i = 0; i < SPAN; i++) {
      int k = i / 52;
      bool mine = i % 52 == 0 && k < OOM_REFS;
      size_t size = mine ? (k % 2 ? 2000 : 20) : 4;
      assert_rc(ray_put(scratch(size, 300 + (uint64_t)k), size, &all[i]), 0);
      if (mine)
        x->inner[k] = all[i];
      else
        rt_release(all[i]);
    }
    free(all);
    c->prepare(x);
    ray_stats_t before = rt_stats();

    ray__alloc_fail_after(n, false);
    int rc = c->op(x);
    bool fired = ray__alloc_failed();
    ray__alloc_fail_after(0, false);

    if (rc == 0) {
      converged = !fired;
      c->ok(x);
    } else {
      if (rc != RAY_ENOMEM || !fired) {
        print_error("%s: N=%ld returned %d (%s), injected failure %s\n", c->name, n, rc,
                    ray_err_name(rc), fired ? "fired" : "did not fire");
        fail();
      }
      fired_runs++;
      ray_stats_t after = rt_stats();
      if (after.objects != before.objects ||
          (!c->spills && after.bytes_in_memory != before.bytes_in_memory) ||
          (!c->made_and_freed && after.objects_created != before.objects_created) ||
          after.tasks_submitted != before.tasks_submitted) {
        print_error(
            "%s: N=%ld: a failed call changed the store: objects %llu -> %llu, bytes "
            "%llu -> %llu\n",
            c->name, n, (unsigned long long)before.objects, (unsigned long long)after.objects,
            (unsigned long long)before.bytes_in_memory, (unsigned long long)after.bytes_in_memory);
        fail();
      }
      c->on_fail(x);
    }
    for (int i = 0; i < x->nfill; i++) {
      assert_pat(x->fill[i], 800 * KiB, 400 + (uint64_t)i);
      rt_release(x->fill[i]);
    }
    /* No reference was left behind: one release frees each inner object. */
    for (int i = 0; i < OOM_REFS; i++) {
      assert_pat(x->inner[i], i % 2 ? 2000 : 20, 300 + (uint64_t)i);
      rt_release(x->inner[i]);
      assert_gone(x->inner[i]);
    }
    rt_assert_store_empty();
    m_end();
    free(x);
  }
  if (!converged) {
    print_error("%s did not converge within %d injected failures\n", c->name, OOM_MAX_N);
    fail();
  }
  assert_true(fired_runs > 0);
  print_message("[   OOM    ] %-22s %ld allocation points, %ld ENOMEM runs\n", c->name, n - 1,
                fired_runs);
}

static void test_oom_msgpack_refs(void **state) {
  (void)state;
  log_capture(true); /* failed spills log errors */
  static const oom_case cases[] = {
      {"put_msgpack_refs", prep_put, op_put, ok_put, fail_put, false, 0, false},
      {"put_msgpack_refs_big", prep_put_big, op_put, ok_put, fail_put, false, 0, false},
      {"get_msgpack_refs", prep_get, op_get, ok_get, fail_get, false, 0, false},
      {"get_msgpack_spilled", prep_get_spilled, op_get, ok_get, fail_get, false, 1 * MiB, true},
      {"submit_msgpack_refs", prep_submit, op_submit, ok_submit, fail_submit, true, 0, false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) oom_run(&cases[i]);
  log_capture(false);
}

int main(void) {
  rt_main_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_refs_keep_targets_alive),
      cmocka_unit_test(test_put_msgpack_bytes),
      cmocka_unit_test(test_get_msgpack_owned_refs),
      cmocka_unit_test(test_refs_unknown_inside),
      cmocka_unit_test(test_refs_wide),
      cmocka_unit_test(test_deep_chain),
      cmocka_unit_test(test_spilled_object_with_refs),
      cmocka_unit_test(test_task_returns_refs),
      cmocka_unit_test(test_task_msgpack_arg_refs),
      cmocka_unit_test(test_oom_msgpack_refs),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  free(g_scratch);
  return rc;
}
