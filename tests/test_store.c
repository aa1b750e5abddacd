/* test_store.c - the object store through the public API: put/get of every
 * type, owned buffers, views, refcounting, timeouts, blocking gets woken by
 * producers, failed objects and their errors, batches, wait and on_ready. */
#include "test_util.h"

static ray_ref_t k_unknown(void) {
  ray_ref_t r = {UINT64_MAX - 12345, RAY_TYPE_BYTES};
  return r;
}

static ray_ref_t make_failed(uint32_t type, int code, const char *msg) {
  ray_ref_t r;
  ray_error_t *e = NULL;
  assert_rc(ray__object_create_pending(type, &r), 0);
  assert_rc(ray_error_new(&e, code, "producer", "%s", msg), 0);
  assert_rc(ray__object_fail(r, e), 0);
  ray_error_free(e);
  return r;
}

/* ---- bytes ---------------------------------------------------------------- */

static void test_put_get_bytes(void **state) {
  (void)state;
  rt_begin();
  const char msg[] = "hello, object store";
  ray_ref_t r;
  assert_rc(ray_put(msg, sizeof msg, &r), 0);
  assert_true(r.id != 0);
  assert_int_equal(r.type, RAY_TYPE_BYTES);
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  assert_int_equal(b.size, sizeof msg);
  assert_int_equal(b.type, RAY_TYPE_BYTES);
  assert_memory_equal(b.data, msg, sizeof msg);
  assert_ptr_not_equal(b.data, msg); /* copied */
  /* Zero-copy: a second view points at the same bytes. */
  ray_buf_t b2;
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b2), 0);
  assert_ptr_equal(b2.data, b.data);
  ray_buf_release(&b);
  rt_assert_buf_zeroed(&b);
  ray_buf_release(&b); /* zeroed: no-op */
  ray_buf_release(&b2);
  /* Distinct puts get distinct ids. */
  ray_ref_t r2;
  assert_rc(ray_put(msg, sizeof msg, &r2), 0);
  assert_true(r2.id != r.id);
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(r2), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_put_copies_input(void **state) {
  (void)state;
  rt_begin();
  char src[2000];
  rt_fill(src, sizeof src, 5);
  ray_ref_t small, big;
  assert_rc(ray_put(src, 10, &small), 0);
  assert_rc(ray_put(src, sizeof src, &big), 0);
  memset(src, 0, sizeof src);
  rt_assert_bytes(small, 10, 5);
  rt_assert_bytes(big, 2000, 5);
  assert_rc(ray_ref_release(small), 0);
  assert_rc(ray_ref_release(big), 0);
  rt_end();
}

static void test_put_get_empty(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t a, b, c;
  assert_rc(ray_put(NULL, 0, &a), 0);
  assert_rc(ray_put("ignored", 0, &b), 0);
  assert_rc(ray_put_typed(NULL, 0, RAY_TYPE_USER, &c), 0);
  ray_buf_t v;
  assert_rc(ray_get(a, 0, &v), 0);
  assert_int_equal(v.size, 0);
  assert_int_equal(v.type, RAY_TYPE_BYTES);
  ray_buf_release(&v);
  assert_rc(ray_get(b, 0, &v), 0);
  assert_int_equal(v.size, 0);
  ray_buf_release(&v);
  assert_rc(ray_get(c, 0, &v), 0);
  assert_int_equal(v.size, 0);
  assert_int_equal(v.type, RAY_TYPE_USER);
  ray_buf_release(&v);
  assert_int_equal(rt_stats().objects, 3);
  assert_int_equal(rt_stats().bytes_in_memory, 0);
  assert_rc(ray_ref_release(a), 0);
  assert_rc(ray_ref_release(b), 0);
  assert_rc(ray_ref_release(c), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_put_get_sizes(void **state) {
  (void)state;
  rt_begin();
  const size_t sizes[] = {1, 2, 7, 8, 63, 64, 1000, 1023, 1024, 1025, 2048, 4096, 65536, 1 << 20};
  const size_t n = sizeof sizes / sizeof sizes[0];
  ray_ref_t refs[sizeof sizes / sizeof sizes[0]];
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    refs[i] = rt_put_bytes(sizes[i], i + 100);
    total += sizes[i];
  }
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, n);
  assert_true(s.bytes_in_memory == total);
  for (size_t i = 0; i < n; i++) rt_assert_bytes(refs[i], sizes[i], i + 100);
  for (size_t i = 0; i < n; i++) assert_rc(ray_ref_release(refs[i]), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_put_get_64mib(void **state) {
  (void)state;
  rt_begin();
  const size_t size = (size_t)64 << 20;
  unsigned char *p = malloc(size);
  assert_non_null(p);
  for (size_t i = 0; i < size; i++) p[i] = (unsigned char)(i * 2654435761u >> 13);
  ray_ref_t r;
  assert_rc(ray_put(p, size, &r), 0);
  assert_true(rt_stats().bytes_in_memory == size);
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  assert_true(b.size == size);
  assert_true(memcmp(b.data, p, size) == 0);
  assert_rc(ray_ref_release(r), 0);
  assert_true(memcmp(b.data, p, size) == 0); /* the view keeps it */
  ray_buf_release(&b);
  free(p);
  rt_assert_store_empty();
  rt_end();
}

static void test_put_invalid(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t r;
  assert_rc(ray_put("x", 1, NULL), RAY_EINVAL);
  assert_rc(ray_put(NULL, 1, &r), RAY_EINVAL);
  assert_rc(ray_put_typed("x", 1, 0, &r), RAY_EINVAL);
  assert_rc(ray_put_typed("x", 1, RAY_TYPE_BYTES, NULL), RAY_EINVAL);
  assert_rc(ray_put_typed(NULL, 3, RAY_TYPE_BYTES, &r), RAY_EINVAL);
  assert_rc(ray_put_i64(1, NULL), RAY_EINVAL);
  assert_rc(ray_put_f64(1.0, NULL), RAY_EINVAL);
  assert_rc(ray_put_str(NULL, &r), RAY_EINVAL);
  assert_rc(ray_put_str("s", NULL), RAY_EINVAL);
  assert_rc(ray_put_msgpack(NULL, &r), RAY_EINVAL);
  msgpack_object o;
  memset(&o, 0, sizeof o);
  o.type = MSGPACK_OBJECT_NIL;
  assert_rc(ray_put_msgpack(&o, NULL), RAY_EINVAL);
  assert_rc(ray_put_owned(NULL, 5, free, &r), RAY_EINVAL);
  char buf[4];
  assert_rc(ray_put_owned(buf, 4, NULL, NULL), RAY_EINVAL);
  ray_buf_t b;
  ray_ref_t ok;
  assert_rc(ray_put("x", 1, &ok), 0);
  assert_rc(ray_get(ok, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_i64(ok, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_f64(ok, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_str(ok, 0, NULL, NULL), RAY_EINVAL);
  assert_rc(ray_get_msgpack(ok, 0, NULL), RAY_EINVAL);
  assert_rc(ray_get_error(ok, NULL), RAY_EINVAL);
  /* Nothing was created by the failed calls. */
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 1);
  assert_int_equal(s.objects_created, 1);
  assert_rc(ray_get(ok, 0, &b), 0);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(ok), 0);
  rt_end();
}

static void test_put_typed(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t u;
  assert_rc(ray_put_typed("user", 4, RAY_TYPE_USER + 7, &u), 0);
  assert_int_equal(u.type, RAY_TYPE_USER + 7);
  ray_buf_t b;
  assert_rc(ray_get(u, 0, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_USER + 7);
  assert_int_equal(b.size, 4);
  assert_memory_equal(b.data, "user", 4);
  ray_buf_release(&b);
  int64_t v;
  assert_rc(ray_get_i64(u, 0, &v), RAY_ETYPE);

  /* Pre-encoded msgpack with a typed tag decodes like ray_put_i64's. */
  char enc[16];
  size_t n = rt_encode_i64(-123456789012LL, enc, sizeof enc);
  assert_true(n > 0);
  ray_ref_t t;
  assert_rc(ray_put_typed(enc, n, RAY_TYPE_I64, &t), 0);
  assert_int_equal(t.type, RAY_TYPE_I64);
  assert_rc(ray_get_i64(t, 0, &v), 0);
  assert_true(v == -123456789012LL);

  /* Payloads that are not a valid encoding of their type: RAY_EDECODE. */
  ray_ref_t bad[6];
  assert_rc(ray_put_typed("\xc1", 1, RAY_TYPE_I64, &bad[0]), 0);         /* never-used byte */
  assert_rc(ray_put_typed("\xa2hi", 3, RAY_TYPE_I64, &bad[1]), 0);       /* a str */
  assert_rc(ray_put_typed(NULL, 0, RAY_TYPE_I64, &bad[2]), 0);           /* empty */
  assert_rc(ray_put_typed("\x07", 1, RAY_TYPE_STR, &bad[3]), 0);         /* an int */
  assert_rc(ray_put_typed("\x92\x01", 2, RAY_TYPE_MSGPACK, &bad[4]), 0); /* truncated */
  assert_rc(ray_put_typed("\xa2hi", 3, RAY_TYPE_F64, &bad[5]), 0);       /* a str */
  /* A msgpack uint64 above INT64_MAX is not an int64. */
  ray_ref_t big_u;
  assert_rc(ray_put_typed("\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9, RAY_TYPE_I64, &big_u), 0);
  assert_rc(ray_get_i64(big_u, 0, &v), RAY_EDECODE);
  assert_rc(ray_ref_release(big_u), 0);
  assert_rc(ray_get_i64(bad[0], 0, &v), RAY_EDECODE);
  assert_rc(ray_get_i64(bad[1], 0, &v), RAY_EDECODE);
  assert_rc(ray_get_i64(bad[2], 0, &v), RAY_EDECODE);
  char *s = NULL;
  assert_rc(ray_get_str(bad[3], 0, &s, NULL), RAY_EDECODE);
  assert_null(s);
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(bad[4], 0, &m), RAY_EDECODE);
  double d;
  assert_rc(ray_get_f64(bad[5], 0, &d), RAY_EDECODE);
  for (int i = 0; i < 6; i++) assert_rc(ray_ref_release(bad[i]), 0);
  assert_rc(ray_ref_release(u), 0);
  assert_rc(ray_ref_release(t), 0);
  rt_assert_store_empty();
  rt_end();
}

/* ---- typed values -------------------------------------------------------- */

static void test_i64_roundtrip(void **state) {
  (void)state;
  rt_begin();
  const int64_t vals[] = {
      0,    1,     -1,        127,          128,       -32,       -33,           255,          256,
      -129, 65535, 1LL << 32, -(1LL << 40), INT64_MAX, INT64_MIN, INT64_MAX - 1, INT64_MIN + 1};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    ray_ref_t r;
    assert_rc(ray_put_i64(vals[i], &r), 0);
    assert_int_equal(r.type, RAY_TYPE_I64);
    int64_t got = vals[i] ^ 0x5555;
    assert_rc(ray_get_i64(r, 0, &got), 0);
    assert_true(got == vals[i]);
    /* The raw view is msgpack. */
    ray_buf_t b;
    assert_rc(ray_get(r, 0, &b), 0);
    assert_int_equal(b.type, RAY_TYPE_I64);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&u, b.data, b.size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, b.size);
    if (u.data.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
      assert_true(vals[i] >= 0 && u.data.via.u64 == (uint64_t)vals[i]);
    else {
      assert_int_equal(u.data.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
      assert_true(u.data.via.i64 == vals[i]);
    }
    msgpack_unpacked_destroy(&u);
    ray_buf_release(&b);
    assert_rc(ray_ref_release(r), 0);
  }
  rt_assert_store_empty();
  rt_end();
}

static void test_f64_roundtrip(void **state) {
  (void)state;
  rt_begin();
  const double vals[] = {0.0,     1.0,      -1.5,   3.141592653589793, 1e300,    -1e-300, DBL_MAX,
                         DBL_MIN, -DBL_MAX, 5e-324, INFINITY,          -INFINITY};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    ray_ref_t r;
    assert_rc(ray_put_f64(vals[i], &r), 0);
    assert_int_equal(r.type, RAY_TYPE_F64);
    double got = 42.0;
    assert_rc(ray_get_f64(r, 0, &got), 0);
    assert_true(memcmp(&got, &vals[i], sizeof got) == 0); /* bit-exact */
    assert_rc(ray_ref_release(r), 0);
  }
  ray_ref_t r;
  double got = 0;
  assert_rc(ray_put_f64(-0.0, &r), 0);
  assert_rc(ray_get_f64(r, 0, &got), 0);
  assert_true(got == 0.0 && signbit(got));
  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_put_f64(NAN, &r), 0);
  assert_rc(ray_get_f64(r, 0, &got), 0);
  assert_true(isnan(got));
  assert_rc(ray_ref_release(r), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_str_roundtrip(void **state) {
  (void)state;
  rt_begin();
  const char *vals[] = {"",
                        "a",
                        "hello",
                        "h\xc3\xa9llo w\xc3\xb6rld \xe2\x82\xac",
                        "31 chars long string abcdefghij",
                        "32 chars long string abcdefghijk"};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    ray_ref_t r;
    assert_rc(ray_put_str(vals[i], &r), 0);
    assert_int_equal(r.type, RAY_TYPE_STR);
    char *s = NULL;
    size_t len = 999;
    assert_rc(ray_get_str(r, 0, &s, &len), 0);
    assert_non_null(s);
    assert_string_equal(s, vals[i]);
    assert_int_equal(len, strlen(vals[i]));
    ray_free(s);
    s = NULL;
    assert_rc(ray_get_str(r, 0, &s, NULL), 0); /* len optional */
    assert_string_equal(s, vals[i]);
    ray_free(s);
    assert_rc(ray_ref_release(r), 0);
  }
  /* A long string (str32 encoding). */
  size_t n = 100000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  for (size_t i = 0; i < n; i++) big[i] = (char)('A' + i % 26);
  big[n] = '\0';
  ray_ref_t r;
  assert_rc(ray_put_str(big, &r), 0);
  char *s = NULL;
  size_t len = 0;
  assert_rc(ray_get_str(r, 0, &s, &len), 0);
  assert_int_equal(len, n);
  assert_string_equal(s, big);
  ray_free(s);
  free(big);
  assert_rc(ray_ref_release(r), 0);
  rt_assert_store_empty();
  rt_end();
}

/* {"a": -5, "b": [1, 2.5, "xyz", nil, true], "bin": <00 01 02>} */
static void pack_sample(msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 3);
  msgpack_pack_str(&pk, 1);
  msgpack_pack_str_body(&pk, "a", 1);
  msgpack_pack_int64(&pk, -5);
  msgpack_pack_str(&pk, 1);
  msgpack_pack_str_body(&pk, "b", 1);
  msgpack_pack_array(&pk, 5);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_double(&pk, 2.5);
  msgpack_pack_str(&pk, 3);
  msgpack_pack_str_body(&pk, "xyz", 3);
  msgpack_pack_nil(&pk);
  msgpack_pack_true(&pk);
  msgpack_pack_str(&pk, 3);
  msgpack_pack_str_body(&pk, "bin", 3);
  msgpack_pack_bin(&pk, 3);
  msgpack_pack_bin_body(&pk, "\0\1\2", 3);
}

static void unpack(msgpack_unpacked *u, const msgpack_sbuffer *sb) {
  size_t off = 0;
  msgpack_unpacked_init(u);
  assert_int_equal(msgpack_unpack_next(u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
}

static bool in_view(const void *p, const ray_buf_t *b) {
  const char *c = (const char *)p, *base = (const char *)b->data;
  return c >= base && c < base + b->size;
}

static void test_msgpack_roundtrip(void **state) {
  (void)state;
  rt_begin();
  msgpack_sbuffer sb;
  pack_sample(&sb);
  msgpack_unpacked u;
  unpack(&u, &sb);
  ray_ref_t r;
  assert_rc(ray_put_msgpack(&u.data, &r), 0);
  assert_int_equal(r.type, RAY_TYPE_MSGPACK);
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(r, 0, &m), 0);
  assert_true(msgpack_object_equal(u.data, m.obj));
  assert_int_equal(m.obj.type, MSGPACK_OBJECT_MAP);
  assert_int_equal(m.obj.via.map.size, 3);
  /* Zero-copy: strings point into the pinned payload. */
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_MSGPACK);
  assert_true(in_view(m.obj.via.map.ptr[0].key.via.str.ptr, &b));
  assert_true(in_view(m.obj.via.map.ptr[2].val.via.bin.ptr, &b));
  ray_buf_release(&b);
  ray_msgpack_release(&m);
  ray_msgpack_release(&m); /* released value is zeroed: no-op */
  ray_msgpack_release(NULL);

  /* An array and a scalar. */
  msgpack_object_array arr_items;
  msgpack_object items[3];
  memset(items, 0, sizeof items);
  items[0].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  items[0].via.u64 = UINT64_MAX;
  items[1].type = MSGPACK_OBJECT_BOOLEAN;
  items[1].via.boolean = false;
  items[2].type = MSGPACK_OBJECT_STR;
  items[2].via.str.ptr = "q";
  items[2].via.str.size = 1;
  arr_items.size = 3;
  arr_items.ptr = items;
  msgpack_object arr;
  memset(&arr, 0, sizeof arr);
  arr.type = MSGPACK_OBJECT_ARRAY;
  arr.via.array = arr_items;
  ray_ref_t ra;
  assert_rc(ray_put_msgpack(&arr, &ra), 0);
  assert_rc(ray_get_msgpack(ra, 0, &m), 0);
  assert_true(msgpack_object_equal(arr, m.obj));
  ray_msgpack_release(&m);

  msgpack_object nil;
  memset(&nil, 0, sizeof nil);
  nil.type = MSGPACK_OBJECT_NIL;
  ray_ref_t rn;
  assert_rc(ray_put_msgpack(&nil, &rn), 0);
  assert_int_equal(rn.type, RAY_TYPE_MSGPACK);
  assert_rc(ray_get_msgpack(rn, 0, &m), 0);
  assert_int_equal(m.obj.type, MSGPACK_OBJECT_NIL);
  ray_msgpack_release(&m);
  /* A msgpack integer is still a MSGPACK object, not an I64 one. */
  int64_t v;
  assert_rc(ray_get_i64(rn, 0, &v), RAY_ETYPE);

  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(ra), 0);
  assert_rc(ray_ref_release(rn), 0);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  rt_assert_store_empty();
  rt_end();
}

static void test_msgpack_outlives_refs_and_shutdown(void **state) {
  (void)state;
  rt_begin();
  msgpack_sbuffer sb;
  pack_sample(&sb);
  msgpack_unpacked u;
  unpack(&u, &sb);
  ray_ref_t r;
  assert_rc(ray_put_msgpack(&u.data, &r), 0);
  ray_msgpack_t m;
  assert_rc(ray_get_msgpack(r, 0, &m), 0);
  assert_rc(ray_ref_release(r), 0);
  assert_true(msgpack_object_equal(u.data, m.obj));
  rt_shutdown_clean();
  assert_true(msgpack_object_equal(u.data, m.obj));
  ray_msgpack_release(&m);
  rt_assert_no_leaks();
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
}

/* Every typed getter on every other type: RAY_ETYPE. */
static void test_typed_get_wrong_type(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t refs[6];
  /* A BYTES object that happens to hold a valid msgpack int: still ETYPE,
   * because the tag is checked before anything is decoded. */
  assert_rc(ray_put("\x07", 1, &refs[0]), 0);
  assert_rc(ray_put_i64(7, &refs[1]), 0);
  assert_rc(ray_put_f64(7.0, &refs[2]), 0);
  assert_rc(ray_put_str("7", &refs[3]), 0);
  msgpack_object o;
  memset(&o, 0, sizeof o);
  o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  o.via.u64 = 7;
  assert_rc(ray_put_msgpack(&o, &refs[4]), 0);
  assert_rc(ray_put_typed("\x07", 1, RAY_TYPE_USER, &refs[5]), 0);
  const uint32_t types[6] = {RAY_TYPE_BYTES, RAY_TYPE_I64,     RAY_TYPE_F64,
                             RAY_TYPE_STR,   RAY_TYPE_MSGPACK, RAY_TYPE_USER};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(refs[i].type, types[i]);
    int64_t v = 99;
    double d = 99;
    char *s = NULL;
    size_t len = 99;
    ray_msgpack_t m;
    int want = types[i] == RAY_TYPE_I64 ? 0 : RAY_ETYPE;
    assert_rc(ray_get_i64(refs[i], 0, &v), want);
    assert_true(want != 0 || v == 7);
    want = types[i] == RAY_TYPE_F64 ? 0 : RAY_ETYPE;
    assert_rc(ray_get_f64(refs[i], 0, &d), want);
    assert_true(want != 0 || d == 7.0);
    want = types[i] == RAY_TYPE_STR ? 0 : RAY_ETYPE;
    assert_rc(ray_get_str(refs[i], 0, &s, &len), want);
    if (want == 0) {
      assert_string_equal(s, "7");
      ray_free(s);
    } else {
      assert_null(s);
    }
    want = types[i] == RAY_TYPE_MSGPACK ? 0 : RAY_ETYPE;
    assert_rc(ray_get_msgpack(refs[i], 0, &m), want);
    if (want == 0) {
      assert_true(msgpack_object_equal(o, m.obj));
      ray_msgpack_release(&m);
    }
    /* The untyped get works on every type and reports the tag. */
    ray_buf_t b;
    assert_rc(ray_get(refs[i], 0, &b), 0);
    assert_int_equal(b.type, types[i]);
    ray_buf_release(&b);
  }
  /* A ref whose tag was changed by hand: the object's own tag decides. */
  for (int i = 0; i < 6; i++) {
    int64_t v;
    double d;
    char *s = NULL;
    ray_msgpack_t m;
    ray_ref_t as_i64 = {refs[i].id, RAY_TYPE_I64}, as_f64 = {refs[i].id, RAY_TYPE_F64};
    ray_ref_t as_str = {refs[i].id, RAY_TYPE_STR}, as_mp = {refs[i].id, RAY_TYPE_MSGPACK};
    if (types[i] != RAY_TYPE_I64) assert_rc(ray_get_i64(as_i64, 0, &v), RAY_ETYPE);
    if (types[i] != RAY_TYPE_F64) assert_rc(ray_get_f64(as_f64, 0, &d), RAY_ETYPE);
    if (types[i] != RAY_TYPE_STR) assert_rc(ray_get_str(as_str, 0, &s, NULL), RAY_ETYPE);
    assert_null(s);
    if (types[i] != RAY_TYPE_MSGPACK) assert_rc(ray_get_msgpack(as_mp, 0, &m), RAY_ETYPE);
  }
  for (int i = 0; i < 6; i++) assert_rc(ray_ref_release(refs[i]), 0);
  rt_assert_store_empty();
  rt_end();
}

/* ---- owned buffers ------------------------------------------------------- */

static atomic_int g_frees;
static void *_Atomic g_freed_ptr;
static void count_free(void *p) {
  atomic_store(&g_freed_ptr, p);
  atomic_fetch_add(&g_frees, 1);
  free(p);
}

static void *owned_buf(size_t n, uint64_t seed) {
  void *p = malloc(n ? n : 1);
  assert_non_null(p);
  rt_fill(p, n, seed);
  return p;
}

static void test_owned_freed_once(void **state) {
  (void)state;
  rt_begin();
  const size_t sizes[] = {0, 10, 1024, 5000, 1 << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    atomic_store(&g_frees, 0);
    void *p = owned_buf(sizes[i], i);
    ray_ref_t r;
    assert_rc(ray_put_owned(p, sizes[i], count_free, &r), 0);
    assert_int_equal(r.type, RAY_TYPE_BYTES);
    assert_true(rt_stats().bytes_in_memory == sizes[i]);
    ray_buf_t b;
    assert_rc(ray_get(r, 0, &b), 0);
    if (sizes[i] > 0) assert_ptr_equal(b.data, p); /* no copy */
    assert_int_equal(b.size, sizes[i]);
    ray_buf_release(&b);
    assert_rc(ray_ref_retain(r), 0);
    assert_rc(ray_ref_release(r), 0);
    assert_int_equal(atomic_load(&g_frees), 0);
    assert_rc(ray_ref_release(r), 0);
    assert_int_equal(atomic_load(&g_frees), 1);
    assert_ptr_equal(atomic_load(&g_freed_ptr), p);
    assert_rc(ray_ref_release(r), RAY_ENOTFOUND);
    assert_int_equal(atomic_load(&g_frees), 1);
  }
  rt_assert_store_empty();
  rt_end();
}

static void test_owned_view_outlives_ref(void **state) {
  (void)state;
  rt_begin();
  atomic_store(&g_frees, 0);
  void *p = owned_buf(4096, 77);
  ray_ref_t r;
  assert_rc(ray_put_owned(p, 4096, count_free, &r), 0);
  ray_buf_t b1, b2;
  assert_rc(ray_get(r, 0, &b1), 0);
  assert_rc(ray_get(r, 0, &b2), 0);
  assert_rc(ray_ref_release(r), 0);
  assert_int_equal(atomic_load(&g_frees), 0);
  ray_buf_t tmp;
  assert_rc(ray_get(r, 0, &tmp), RAY_ENOTFOUND);
  assert_true(rt_check(b1.data, 4096, 77));
  ray_buf_release(&b1);
  assert_int_equal(atomic_load(&g_frees), 0);
  assert_true(rt_check(b2.data, 4096, 77));
  ray_buf_release(&b2);
  assert_int_equal(atomic_load(&g_frees), 1);
  rt_assert_store_empty();
  rt_end();
}

static void test_owned_at_shutdown(void **state) {
  (void)state;
  /* Still referenced at shutdown: freed once by shutdown. */
  rt_begin();
  atomic_store(&g_frees, 0);
  ray_ref_t r;
  assert_rc(ray_put_owned(owned_buf(3000, 1), 3000, count_free, &r), 0);
  assert_rc(ray_ref_retain(r), 0);
  rt_end();
  assert_int_equal(atomic_load(&g_frees), 1);

  /* A view held across shutdown: freed once, when the view goes. */
  rt_begin();
  atomic_store(&g_frees, 0);
  void *p = owned_buf(3000, 2);
  assert_rc(ray_put_owned(p, 3000, count_free, &r), 0);
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  rt_shutdown_clean();
  assert_int_equal(atomic_load(&g_frees), 0);
  assert_ptr_equal(b.data, p);
  assert_true(rt_check(b.data, 3000, 2));
  ray_buf_release(&b);
  assert_int_equal(atomic_load(&g_frees), 1);
  rt_assert_no_leaks();
}

static void test_owned_null_free_fn(void **state) {
  (void)state;
  rt_begin();
  static char keep[100];
  rt_fill(keep, sizeof keep, 3);
  ray_ref_t r;
  assert_rc(ray_put_owned(keep, sizeof keep, NULL, &r), 0);
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  assert_ptr_equal(b.data, keep);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(r), 0);
  assert_true(rt_check(keep, sizeof keep, 3));
  /* Failed put_owned: the caller keeps the buffer, free_fn never runs. */
  atomic_store(&g_frees, 0);
  void *p = owned_buf(10, 4);
  assert_rc(ray_put_owned(p, 10, count_free, NULL), RAY_EINVAL);
  assert_int_equal(atomic_load(&g_frees), 0);
  free(p);
  rt_assert_store_empty();
  rt_end();
}

/* ---- views --------------------------------------------------------------- */

static void test_view_outlives_refs(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t small = rt_put_bytes(16, 1), big = rt_put_bytes(100000, 2);
  ray_buf_t bs, bb;
  assert_rc(ray_get(small, 0, &bs), 0);
  assert_rc(ray_get(big, 0, &bb), 0);
  assert_rc(ray_ref_release(small), 0);
  assert_rc(ray_ref_release(big), 0);
  ray_buf_t tmp;
  rt_garbage(&tmp, sizeof tmp);
  assert_rc(ray_get(small, 0, &tmp), RAY_ENOTFOUND);
  rt_assert_buf_zeroed(&tmp);
  /* The ids are unknown now, but the views still read the data. */
  ray_ref_t other = rt_put_bytes(16, 99); /* reuse of freed memory would show */
  assert_true(rt_check(bs.data, 16, 1));
  assert_true(rt_check(bb.data, 100000, 2));
  assert_int_equal(bs.size, 16);
  assert_int_equal(bb.size, 100000);
  ray_buf_release(&bs);
  ray_buf_release(&bb);
  assert_rc(ray_ref_release(other), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_view_outlives_shutdown(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t small = rt_put_bytes(16, 5), big = rt_put_bytes(200000, 6);
  ray_ref_t i = RAY_REF_NIL;
  assert_rc(ray_put_i64(-77, &i), 0);
  ray_buf_t bs, bb, bi;
  assert_rc(ray_get(small, 0, &bs), 0);
  assert_rc(ray_get(big, 0, &bb), 0);
  assert_rc(ray_get(i, 0, &bi), 0);
  assert_rc(ray_ref_release(small), 0); /* released; big and i still referenced */
  rt_shutdown_clean();
  assert_true(ray__alloc_outstanding() > 0); /* the views pin their entries */
  assert_true(rt_check(bs.data, 16, 5));
  assert_true(rt_check(bb.data, 200000, 6));
  assert_int_equal(bi.type, RAY_TYPE_I64);
  ray_buf_release(&bs);
  ray_buf_release(&bb);
  ray_buf_release(&bi);
  rt_assert_no_leaks();
  /* A new runtime does not see those objects. */
  rt_begin();
  ray_buf_t b;
  assert_rc(ray_get(big, 0, &b), RAY_ENOTFOUND);
  rt_end();
}

/* ---- unknown, nil and released refs -------------------------------------- */

static int noop_calls;
static void noop_cb(ray_ref_t ref, int status, void *arg) {
  (void)ref;
  (void)status;
  (void)arg;
  noop_calls++; /* must never run; only read after shutdown */
}

static void assert_all_notfound(ray_ref_t r) {
  ray_buf_t b;
  rt_garbage(&b, sizeof b);
  assert_rc(ray_get(r, 0, &b), RAY_ENOTFOUND);
  rt_assert_buf_zeroed(&b);
  assert_rc(ray_get(r, 10, &b), RAY_ENOTFOUND);
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), RAY_ENOTFOUND);
  int64_t v;
  double d;
  char *s = NULL;
  ray_msgpack_t m;
  /* Typed gets with refs of their own type (the ref's tag may be checked
   * first, giving RAY_ETYPE). */
  ray_ref_t ri = {r.id, RAY_TYPE_I64}, rf = {r.id, RAY_TYPE_F64};
  ray_ref_t rs = {r.id, RAY_TYPE_STR}, rm = {r.id, RAY_TYPE_MSGPACK};
  assert_rc(ray_get_i64(ri, 0, &v), RAY_ENOTFOUND);
  assert_rc(ray_get_f64(rf, 0, &d), RAY_ENOTFOUND);
  assert_rc(ray_get_str(rs, RAY_TIMEOUT_INFINITE, &s, NULL), RAY_ENOTFOUND);
  assert_null(s);
  assert_rc(ray_get_msgpack(rm, 0, &m), RAY_ENOTFOUND);
  assert_rc(ray_ref_retain(r), RAY_ENOTFOUND);
  assert_rc(ray_ref_release(r), RAY_ENOTFOUND);
  ray_error_t *e = NULL;
  assert_rc(ray_get_error(r, &e), RAY_ENOTFOUND);
  assert_null(e);
  assert_rc(ray_ref_on_ready(r, noop_cb, NULL), RAY_ENOTFOUND);
  bool ready[3] = {false, false, false};
  ray_ref_t good = rt_put_bytes(4, 1);
  ray_ref_t refs[3] = {good, r, good};
  assert_rc(ray_wait(&r, 1, 1, 0, ready), RAY_ENOTFOUND);
  assert_rc(ray_wait(&r, 1, 1, RAY_TIMEOUT_INFINITE, ready), RAY_ENOTFOUND);
  assert_rc(ray_wait(refs, 3, 1, RAY_TIMEOUT_INFINITE, ready), RAY_ENOTFOUND);
  assert_false(ready[0] || ready[1] || ready[2]);
  ray_buf_t bs[3];
  rt_garbage(bs, sizeof bs);
  assert_rc(ray_get_batch(refs, 3, RAY_TIMEOUT_INFINITE, bs), RAY_ENOTFOUND);
  assert_true(rt_is_zero(bs, sizeof bs));
  assert_rc(ray_ref_release(good), 0);
}

static void test_notfound_refs(void **state) {
  (void)state;
  rt_begin();
  noop_calls = 0;
  assert_all_notfound(RAY_REF_NIL);
  ray_ref_t nil_typed = {0, RAY_TYPE_I64};
  assert_all_notfound(nil_typed);
  assert_all_notfound(k_unknown());
  ray_ref_t r = rt_put_bytes(8, 1);
  ray_ref_t far = {r.id + 1000000, RAY_TYPE_BYTES};
  assert_all_notfound(far);
  assert_rc(ray_ref_release(r), 0);
  assert_all_notfound(r);
  /* Released typed refs and released pending refs. */
  ray_ref_t i, p;
  assert_rc(ray_put_i64(3, &i), 0);
  assert_rc(ray_ref_release(i), 0);
  assert_all_notfound(i);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray_ref_release(p), 0);
  assert_all_notfound(p);
  /* Producing the unreferenced pending object drops it. */
  assert_rc(ray__object_fulfil(p, "x", 1), 0);
  assert_all_notfound(p);
  rt_assert_store_empty();
  rt_end();
  assert_int_equal(noop_calls, 0);
}

static void test_retain_release_counting(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t r = rt_put_bytes(5000, 8);
  for (int i = 0; i < 3; i++) assert_rc(ray_ref_retain(r), 0);
  for (int i = 0; i < 3; i++) {
    assert_rc(ray_ref_release(r), 0);
    rt_assert_bytes(r, 5000, 8); /* still alive */
    ray_stats_t s = rt_stats();
    assert_int_equal(s.objects, 1);
    assert_int_equal(s.bytes_in_memory, 5000);
    assert_int_equal(s.objects_freed, 0);
  }
  assert_rc(ray_ref_release(r), 0); /* the last one */
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.bytes_in_memory, 0);
  assert_int_equal(s.objects_freed, 1);
  assert_rc(ray_ref_release(r), RAY_ENOTFOUND);
  assert_rc(ray_ref_retain(r), RAY_ENOTFOUND);

  /* Many objects of every kind: bytes return to zero. */
  ray_ref_t refs[64];
  for (int i = 0; i < 64; i++) {
    switch (i % 5) {
      case 0:
        refs[i] = rt_put_bytes((size_t)i * 100, (uint64_t)i);
        break;
      case 1:
        assert_rc(ray_put_i64(i, &refs[i]), 0);
        break;
      case 2:
        assert_rc(ray_put_f64(i, &refs[i]), 0);
        break;
      case 3:
        assert_rc(ray_put_str("some string", &refs[i]), 0);
        break;
      default:
        refs[i] = make_failed(RAY_TYPE_BYTES, RAY_ETASK, "failed object");
        break;
    }
  }
  s = rt_stats();
  assert_int_equal(s.objects, 64);
  assert_true(s.bytes_in_memory > 0);
  for (int i = 0; i < 64; i++) assert_rc(ray_ref_release(refs[i]), 0);
  rt_assert_store_empty();
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
    assert_rc(ray__worker_post(worker_get, &g[i]), 0);
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

/* ---- failed objects ------------------------------------------------------ */

static ray_error_t *make_chain(void) {
  ray_error_t *top = NULL, *mid = NULL, *leaf = NULL;
  assert_rc(ray_error_new(&top, RAY_EDEPFAILED, "consumer", NULL), 0);
  assert_rc(ray_error_new(&mid, RAY_ETASK, "producer", "boom %d", 42), 0);
  assert_rc(ray_error_new(&leaf, RAY_EIO, NULL, "disk read failed"), 0);
  assert_rc(ray_error_set_task_id(top, 7), 0);
  assert_rc(ray_error_set_task_id(mid, 3), 0);
  assert_rc(ray_error_set_attempts(mid, 2), 0);
  assert_rc(ray_error_set_attempts(top, 1), 0);
  assert_rc(ray_error_set_cause(mid, leaf), 0);
  assert_rc(ray_error_set_cause(top, mid), 0);
  return top;
}

static void assert_same_error(const ray_error_t *a, const ray_error_t *b) {
  size_t depth = 0;
  while (a != NULL || b != NULL) {
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(ray_error_code(a), ray_error_code(b));
    assert_string_equal(ray_error_message(a), ray_error_message(b));
    const char *oa = ray_error_origin(a), *ob = ray_error_origin(b);
    assert_string_equal(oa ? oa : "", ob ? ob : "");
    assert_true(ray_error_task_id(a) == ray_error_task_id(b));
    assert_int_equal(ray_error_attempts(a), ray_error_attempts(b));
    a = ray_error_cause(a);
    b = ray_error_cause(b);
    depth++;
  }
  assert_true(depth > 0);
}

static void assert_same_format(const ray_error_t *a, const ray_error_t *b) {
  int na = ray_error_format(a, NULL, 0), nb = ray_error_format(b, NULL, 0);
  assert_true(na > 0);
  assert_int_equal(na, nb);
  char *sa = malloc((size_t)na + 1), *sb = malloc((size_t)nb + 1);
  assert_non_null(sa);
  assert_non_null(sb);
  assert_int_equal(ray_error_format(a, sa, (size_t)na + 1), na);
  assert_int_equal(ray_error_format(b, sb, (size_t)nb + 1), nb);
  assert_string_equal(sa, sb);
  free(sa);
  free(sb);
}

static void test_failed_object(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *src = make_chain();
  ray_ref_t r, ri;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_I64, &ri), 0);
  assert_rc(ray__object_fail(r, src), 0);
  assert_rc(ray__object_fail(ri, src), 0);

  /* ray_get returns the error's own code; the view is zeroed. */
  ray_buf_t b;
  rt_garbage(&b, sizeof b);
  assert_rc(ray_get(r, 0, &b), RAY_EDEPFAILED);
  rt_assert_buf_zeroed(&b);
  assert_rc(ray_get(r, RAY_TIMEOUT_INFINITE, &b), RAY_EDEPFAILED);
  int64_t v;
  assert_rc(ray_get_i64(ri, 0, &v), RAY_EDEPFAILED);

  /* The error survives the store round trip, chain intact. */
  ray_error_t *got = NULL;
  assert_rc(ray_get_error(r, &got), 0);
  assert_non_null(got);
  assert_ptr_not_equal(got, src);
  assert_same_error(src, got);
  assert_same_format(src, got);
  assert_int_equal(ray_error_code(got), RAY_EDEPFAILED);
  assert_string_equal(ray_error_message(ray_error_cause(got)), "boom 42");
  assert_int_equal(ray_error_attempts(ray_error_cause(got)), 2);
  assert_true(ray_error_task_id(got) == 7);
  /* Each call returns a new, independent copy. */
  ray_error_t *again = NULL;
  assert_rc(ray_get_error(r, &again), 0);
  assert_ptr_not_equal(again, got);
  ray_error_free(got);
  assert_same_error(src, again);
  ray_error_free(again);
  assert_rc(ray_get_error(ri, &got), 0);
  assert_same_error(src, got);
  ray_error_free(got);
  ray_error_free(src); /* fail() copied it */
  assert_rc(ray_get_error(r, &got), 0);
  assert_int_equal(ray_error_code(got), RAY_EDEPFAILED);
  ray_error_free(got);

  /* get_error on a ready object: 0 and NULL. */
  ray_ref_t ok = rt_put_bytes(3, 3);
  got = (ray_error_t *)&got; /* non-NULL sentinel */
  assert_rc(ray_get_error(ok, &got), 0);
  assert_null(got);
  ray_ref_t oki;
  assert_rc(ray_put_i64(1, &oki), 0);
  got = (ray_error_t *)&got;
  assert_rc(ray_get_error(oki, &got), 0);
  assert_null(got);
  /* Pending: RAY_ENOTREADY. */
  ray_ref_t p;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  got = NULL;
  assert_rc(ray_get_error(p, &got), RAY_ENOTREADY);
  assert_null(got);
  assert_rc(ray_get_error(p, NULL), RAY_EINVAL);

  assert_rc(ray_ref_release(r), 0);
  assert_rc(ray_ref_release(ri), 0);
  assert_rc(ray_ref_release(ok), 0);
  assert_rc(ray_ref_release(oki), 0);
  assert_rc(ray_ref_release(p), 0);
  rt_assert_store_empty();
  rt_end();
}

static void test_failed_error_edge_cases(void **state) {
  (void)state;
  rt_begin();
  /* Long chain. */
  size_t depth = 1000;
  ray_error_t *chain = NULL;
  for (size_t i = 0; i < depth; i++) {
    ray_error_t *e = NULL;
    assert_rc(ray_error_new(&e, RAY_ETASK, i % 3 ? "f" : NULL, "link %zu", i), 0);
    assert_rc(ray_error_set_task_id(e, i * 1000003u), 0);
    if (chain) assert_rc(ray_error_set_cause(e, chain), 0);
    chain = e;
  }
  ray_ref_t r;
  assert_rc(ray__object_create_pending(RAY_TYPE_STR, &r), 0);
  assert_rc(ray__object_fail(r, chain), 0);
  ray_error_t *got = NULL;
  assert_rc(ray_get_error(r, &got), 0);
  assert_same_error(chain, got);
  ray_error_free(got);
  ray_error_free(chain);
  char *s = NULL;
  assert_rc(ray_get_str(r, 0, &s, NULL), RAY_ETASK);
  assert_null(s);
  assert_rc(ray_ref_release(r), 0);

  /* Long message and origin; an error without origin; every code. */
  size_t n = 50000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  memset(big, 'm', n);
  big[n] = '\0';
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ESTOREFULL, big, "%s", big), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
  assert_rc(ray__object_fail(r, e), 0);
  assert_rc(ray_get_error(r, &got), 0);
  assert_same_error(e, got);
  ray_error_free(got);
  ray_error_free(e);
  free(big);
  assert_rc(ray_ref_release(r), 0);

  rt_assert_store_empty();
  rt_end();
}

/* Empty message and origin survive the round trip. */
static void test_failed_empty_strings(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *e = NULL, *c = NULL, *got = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, "", "%s", ""), 0);
  assert_rc(ray_error_new(&c, RAY_EIO, NULL, "%s", ""), 0);
  assert_rc(ray_error_set_cause(e, c), 0);
  ray_ref_t r;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
  assert_rc(ray__object_fail(r, e), 0);
  assert_rc(ray_get_error(r, &got), 0);
  assert_same_error(e, got);
  assert_string_equal(ray_error_message(got), "");
  assert_string_equal(ray_error_message(ray_error_cause(got)), "");
  ray_error_free(got);
  ray_error_free(e);
  assert_rc(ray_ref_release(r), 0);
  rt_assert_store_empty();
  rt_end();
}

/* Any code can be an object's error, including the ones the store uses
 * internally (RAY_ENOTREADY, RAY_ENOTFOUND, RAY_ETIMEDOUT): ray_get returns
 * it and does not mistake the failed object for a pending or missing one. */
static void test_failed_with_every_code(void **state) {
  (void)state;
  rt_begin();
  ray_error_t *e = NULL, *got = NULL;
  ray_ref_t r;
  const int codes[] = {RAY_EINVAL,  RAY_ENOMEM,    RAY_ETIMEDOUT, RAY_ECANCELED, RAY_ESHUTDOWN,
                       RAY_EDECODE, RAY_ENOTFOUND, RAY_EIO,       RAY_ENOTREADY};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    assert_rc(ray_error_new(&e, codes[i], NULL, NULL), 0);
    assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &r), 0);
    assert_rc(ray__object_fail(r, e), 0);
    ray_buf_t b;
    int rc0 = ray_get(r, 0, &b), rc1 = ray_get(r, 10, &b);
    assert_rc(ray_get_error(r, &got), 0);
    assert_same_error(e, got);
    ray_error_free(got);
    ray_error_free(e);
    assert_rc(ray_ref_release(r), 0);
    assert_rc(rc0, codes[i]); /* after the frees: a failure leaks nothing */
    assert_rc(rc1, codes[i]);
  }
  rt_assert_store_empty();
  rt_end();
}

static void test_fulfil_fail_misuse(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t p;
  assert_rc(ray__object_create_pending(0, &p), RAY_EINVAL);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, NULL), RAY_EINVAL);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_true(p.id != 0);
  assert_rc(ray__object_fulfil(p, NULL, 3), RAY_EINVAL);
  assert_rc(ray__object_fail(p, NULL), RAY_EINVAL);
  assert_rc(ray__object_fulfil(p, "one", 3), 0);
  assert_rc(ray__object_fulfil(p, "two", 3), RAY_EBUSY);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, NULL, NULL), 0);
  assert_rc(ray__object_fail(p, e), RAY_EBUSY);
  ray_buf_t b;
  assert_rc(ray_get(p, 0, &b), 0);
  assert_memory_equal(b.data, "one", 3); /* unchanged */
  ray_buf_release(&b);
  ray_error_t *got = NULL;
  assert_rc(ray_get_error(p, &got), 0);
  assert_null(got);
  assert_rc(ray_ref_release(p), 0);

  ray_ref_t q;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &q), 0);
  assert_rc(ray__object_fail(q, e), 0);
  assert_rc(ray__object_fulfil(q, "x", 1), RAY_EBUSY);
  assert_rc(ray__object_fail(q, e), RAY_EBUSY);
  assert_rc(ray_get(q, 0, &b), RAY_ETASK);
  assert_rc(ray_ref_release(q), 0);

  /* Ready puts are not pending: fulfilling them is EBUSY. */
  ray_ref_t r = rt_put_bytes(2, 2);
  assert_rc(ray__object_fulfil(r, "zz", 2), RAY_EBUSY);
  rt_assert_bytes(r, 2, 2);
  assert_rc(ray_ref_release(r), 0);
  ray_error_free(e);

  /* Fulfil with an empty value. */
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray__object_fulfil(p, NULL, 0), 0);
  assert_rc(ray_get(p, 0, &b), 0);
  assert_int_equal(b.size, 0);
  assert_int_equal(b.type, RAY_TYPE_BYTES);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(p), 0);
  /* Fulfil with a big value. */
  unsigned char *big = malloc(300000);
  assert_non_null(big);
  rt_fill(big, 300000, 12);
  assert_rc(ray__object_create_pending(RAY_TYPE_USER + 1, &p), 0);
  assert_int_equal(p.type, RAY_TYPE_USER + 1);
  assert_rc(ray__object_fulfil(p, big, 300000), 0);
  free(big);
  assert_rc(ray_get(p, 0, &b), 0);
  assert_int_equal(b.type, RAY_TYPE_USER + 1);
  assert_true(b.size == 300000 && rt_check(b.data, 300000, 12));
  ray_buf_release(&b);
  assert_rc(ray_ref_release(p), 0);
  rt_assert_store_empty();
  rt_end();
}

/* A pending object nobody references any more: producing it drops the value. */
static void test_pending_released_then_produced(void **state) {
  (void)state;
  rt_begin();
  ray_ref_t p, q;
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &p), 0);
  assert_rc(ray__object_create_pending(RAY_TYPE_BYTES, &q), 0);
  assert_rc(ray_ref_release(p), 0);
  assert_rc(ray_ref_release(q), 0);
  assert_rc(ray__object_fulfil(p, "dropped", 7), 0);
  ray_error_t *e = NULL;
  assert_rc(ray_error_new(&e, RAY_ETASK, NULL, NULL), 0);
  assert_rc(ray__object_fail(q, e), 0);
  ray_error_free(e);
  ray_buf_t b;
  assert_rc(ray_get(p, 0, &b), RAY_ENOTFOUND);
  assert_rc(ray_get(q, 0, &b), RAY_ENOTFOUND);
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
  ray_ref_t failed = make_failed(RAY_TYPE_BYTES, RAY_ECANCELED, "cancelled");
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
  ray_ref_t f = make_failed(RAY_TYPE_BYTES, RAY_ETASK, "x");
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
  for (int i = 0; i < 3; i++) refs[i] = make_failed(RAY_TYPE_BYTES, RAY_EIO, "io");
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
  ray_ref_t f = make_failed(RAY_TYPE_BYTES, RAY_EDEPFAILED, "dep");
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
  assert_rc(ray_ref_on_ready(k_unknown(), rt_cb_record, &rec), RAY_ENOTFOUND);
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
    cmocka_unit_test(test_put_get_bytes),
    cmocka_unit_test(test_put_copies_input),
    cmocka_unit_test(test_put_get_empty),
    cmocka_unit_test(test_put_get_sizes),
    cmocka_unit_test(test_put_get_64mib),
    cmocka_unit_test(test_put_invalid),
    cmocka_unit_test(test_put_typed),
    cmocka_unit_test(test_i64_roundtrip),
    cmocka_unit_test(test_f64_roundtrip),
    cmocka_unit_test(test_str_roundtrip),
    cmocka_unit_test(test_msgpack_roundtrip),
    cmocka_unit_test(test_msgpack_outlives_refs_and_shutdown),
    cmocka_unit_test(test_typed_get_wrong_type),
    cmocka_unit_test(test_owned_freed_once),
    cmocka_unit_test(test_owned_view_outlives_ref),
    cmocka_unit_test(test_owned_at_shutdown),
    cmocka_unit_test(test_owned_null_free_fn),
    cmocka_unit_test(test_view_outlives_refs),
    cmocka_unit_test(test_view_outlives_shutdown),
    cmocka_unit_test(test_notfound_refs),
    cmocka_unit_test(test_retain_release_counting),
    cmocka_unit_test(test_get_timeouts),
    cmocka_unit_test(test_get_woken_by_fulfil),
    cmocka_unit_test(test_get_woken_by_fail),
    cmocka_unit_test(test_get_woken_by_shutdown),
    cmocka_unit_test(test_get_blocked_ref_released),
    cmocka_unit_test(test_failed_object),
    cmocka_unit_test(test_failed_error_edge_cases),
    cmocka_unit_test(test_failed_empty_strings),
    cmocka_unit_test(test_failed_with_every_code),
    cmocka_unit_test(test_fulfil_fail_misuse),
    cmocka_unit_test(test_pending_released_then_produced),
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
    cmocka_unit_test(test_on_ready_at_shutdown),
    cmocka_unit_test(test_on_ready_invalid),
    cmocka_unit_test(test_on_ready_many),
    cmocka_unit_test(test_on_ready_callback_uses_store),
};

RT_MAIN(tests)
