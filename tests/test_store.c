/* test_store.c - the object store through the public API: put/get of bytes
 * (every size up to 64 MiB) and of every typed value, owned buffers, views
 * that outlive their refs and the runtime, and refcounting of unknown, nil
 * and released refs.
 *
 * The other store programs: failed objects and their errors in
 * test_failed_objects.c; timeouts, blocking gets woken by producers,
 * batches, wait and on_ready in test_store_wait.c. */
#include "test_util.h"

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
  assert_rc(ray_put_owned(NULL, 5, rt_count_free, NULL, &r), RAY_EINVAL);
  char buf[4];
  assert_rc(ray_put_owned(buf, 4, NULL, NULL, NULL), RAY_EINVAL);
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
static void count_free(void *p, void *arg) {
  (void)arg;
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
    assert_rc(ray_put_owned(p, sizes[i], count_free, NULL, &r), 0);
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
  assert_rc(ray_put_owned(p, 4096, count_free, NULL, &r), 0);
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
  assert_rc(ray_put_owned(owned_buf(3000, 1), 3000, count_free, NULL, &r), 0);
  assert_rc(ray_ref_retain(r), 0);
  rt_end();
  assert_int_equal(atomic_load(&g_frees), 1);

  /* A view held across shutdown: freed once, when the view goes. */
  rt_begin();
  atomic_store(&g_frees, 0);
  void *p = owned_buf(3000, 2);
  assert_rc(ray_put_owned(p, 3000, count_free, NULL, &r), 0);
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
  assert_rc(ray_put_owned(keep, sizeof keep, NULL, NULL, &r), 0);
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  assert_ptr_equal(b.data, keep);
  ray_buf_release(&b);
  assert_rc(ray_ref_release(r), 0);
  assert_true(rt_check(keep, sizeof keep, 3));
  /* Failed put_owned: the caller keeps the buffer, free_fn never runs. */
  atomic_store(&g_frees, 0);
  void *p = owned_buf(10, 4);
  assert_rc(ray_put_owned(p, 10, count_free, NULL, NULL), RAY_EINVAL);
  assert_int_equal(atomic_load(&g_frees), 0);
  free(p);
  rt_assert_store_empty();
  rt_end();
}

/* The free_fn gets the buffer and the arg it was handed over with, once. */
static void test_owned_free_gets_arg(void **state) {
  (void)state;
  rt_begin();
  static int pool; /* stands for a caller's allocator */
  atomic_store(&rt_frees, 0);
  void *p = owned_buf(2048, 9);
  ray_ref_t r;
  assert_rc(ray_put_owned(p, 2048, rt_count_free, &pool, &r), 0);
  assert_int_equal(atomic_load(&rt_frees), 0);
  assert_rc(ray_ref_release(r), 0);
  assert_int_equal(atomic_load(&rt_frees), 1);
  assert_ptr_equal(atomic_load(&rt_freed_data), p);
  assert_ptr_equal(atomic_load(&rt_freed_arg), &pool);
  rt_assert_store_empty();
  rt_end();
  assert_int_equal(atomic_load(&rt_frees), 1);
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
  assert_all_notfound(rt_unknown_ref());
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
        refs[i] = rt_make_failed(RAY_TYPE_BYTES, RAY_ETASK, "failed object");
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
    cmocka_unit_test(test_owned_free_gets_arg),
    cmocka_unit_test(test_view_outlives_refs),
    cmocka_unit_test(test_view_outlives_shutdown),
    cmocka_unit_test(test_notfound_refs),
    cmocka_unit_test(test_retain_release_counting),
};

RT_MAIN(tests)
