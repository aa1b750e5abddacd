/* test_typed.c - the typed layer (rustyray/typed.h): every declaration form
 * (RAY_TYPE, RAY_FUNCTION with no, one, several and the most params, one
 * and several returns of every kind, RAY_ACTOR / RAY_CONSTRUCTOR /
 * RAY_METHOD / RAY_DESTRUCTOR), both call forms (the plain functions and
 * RAY_CALL with values or refs per argument), RAY_PUT / RAY_GET of every
 * kind, failed refs and handles (RAY_STATUS) and their propagation, the
 * error paths inside wrappers (bad arguments, NULL results, ray_fail),
 * options, nesting, named actors checked by class, re-initialisation and
 * concurrent callers.
 *
 * What must not compile is in tests/compile_fail/. */
/* A small class table, so the test of a full one stays small: it must come
 * before the first include of rustyray/typed.h. */
#define RAY_TYPED_MAX_METHODS 12

#include "test_util.h"

#include "rustyray/typed.h"

/* ---- User types -------------------------------------------------------------- */

typedef struct {
  double x, y;
} point_t;

static int point_pack(msgpack_packer *pk, const point_t *p) {
  return msgpack_pack_array(pk, 2) || msgpack_pack_double(pk, p->x) ||
         msgpack_pack_double(pk, p->y);
}
static int point_unpack(const msgpack_object *o, point_t *p) {
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2 ||
      o->via.array.ptr[0].type != MSGPACK_OBJECT_FLOAT64 ||
      o->via.array.ptr[1].type != MSGPACK_OBJECT_FLOAT64)
    return -1;
  p->x = o->via.array.ptr[0].via.f64;
  p->y = o->via.array.ptr[1].via.f64;
  return 0;
}
RAY_TYPE(point, point_t, 1, point_pack, point_unpack)

/* A second type, with a string inside (copied by unpack) and a pack that
 * can refuse a value. */
typedef struct {
  char name[16];
  int64_t qty;
} item_t;

static int item_pack(msgpack_packer *pk, const item_t *it) {
  size_t n = strnlen(it->name, sizeof it->name);
  if (it->qty < 0) return -1; /* refused: the call fails with RAY_EINVAL */
  return msgpack_pack_map(pk, 2) || msgpack_pack_str_with_body(pk, "name", 4) ||
         msgpack_pack_str_with_body(pk, it->name, n) || msgpack_pack_str_with_body(pk, "qty", 3) ||
         msgpack_pack_int64(pk, it->qty);
}
static int item_unpack(const msgpack_object *o, item_t *it) {
  memset(it, 0, sizeof *it);
  if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 2) return -1;
  const msgpack_object *name = &o->via.map.ptr[0].val, *qty = &o->via.map.ptr[1].val;
  if (name->type != MSGPACK_OBJECT_STR || name->via.str.size >= sizeof it->name) return -1;
  if (qty->type != MSGPACK_OBJECT_POSITIVE_INTEGER && qty->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
    return -1;
  memcpy(it->name, name->via.str.ptr, name->via.str.size);
  it->qty = qty->via.i64;
  return 0;
}
RAY_TYPE(item, item_t, 2, item_pack, item_unpack)

/* ---- Actors ------------------------------------------------------------------ */

typedef struct {
  int64_t value;
  int64_t calls;
} counter_t;

static atomic_int g_ctor_runs, g_dtor_runs;

RAY_ACTOR(Counter, counter_t)

RAY_CONSTRUCTOR(Counter, (i64, start)) {
  if (start < 0)
    return ray_fail(RAY_CTX, RAY_EINVAL, "Counter: negative start %lld", (long long)start);
  self->value = start;
  atomic_fetch_add(&g_ctor_runs, 1);
  return 0;
}

RAY_DESTRUCTOR(Counter) {
  (void)self;
  atomic_fetch_add(&g_dtor_runs, 1);
}

RAY_METHOD(Counter, i64, incr, (i64, by)) {
  self->value += by;
  self->calls++;
  return self->value;
}

RAY_METHOD(Counter, i64, get) {
  return self->value;
}

RAY_METHOD(Counter, ((i64, value), (i64, calls), (str, text)), snapshot) {
  RAY_RESULT(Counter_snapshot)
  r = {self->value, self->calls,
       ray_str_format("%lld after %lld calls", (long long)self->value, (long long)self->calls)};
  return r;
}

RAY_METHOD(Counter, point, as_point, (f64, y)) {
  return (point_t){(double)self->value, y};
}

/* Ends the actor (Ray's exit_actor): with restarts left it restarts. */
RAY_METHOD(Counter, i64, quit) {
  (void)self;
  ray_actor_exit(RAY_CTX);
  return 0;
}

RAY_METHOD(Counter, i64, add7, (i64, a), (i64, b), (i64, c), (i64, d), (i64, e), (i64, f),
           (i64, g)) {
  self->value += a + b + c + d + e + f + g;
  return self->value;
}

/* Its own handle, checked back into a typed one. */
RAY_METHOD(Counter, i64, self_check) {
  (void)self;
  ray_actor_t raw;
  if (ray_ctx_actor(RAY_CTX, &raw) != 0) return -1;
  Counter me = RAY_ACTOR_CAST(Counter, raw);
  return RAY_STATUS(me) == 0 && me.actor.id == raw.id ? 1 : 0;
}

typedef struct {
  double total;
} acc_t;

RAY_ACTOR(Accumulator, acc_t)

RAY_CONSTRUCTOR(Accumulator) {
  (void)self;
  return 0;
}

RAY_METHOD(Accumulator, f64, add, (f64, x)) {
  self->total += x;
  return self->total;
}

/* A class with the default constructor: no parameters, zeroed state. */
typedef struct {
  int64_t x;
  char tag[8];
} blank_t;

RAY_ACTOR(Blank, blank_t)
RAY_DEFAULT_CONSTRUCTOR(Blank)

RAY_METHOD(Blank, i64, bump) {
  return ++self->x + (self->tag[0] == '\0' ? 0 : 1000);
}

/* Twelve methods for a table of twelve, one of them taken by the class
 * check: one method does not fit, and its calls fail with RAY_EINVAL. */
typedef struct {
  char unused;
} wide_t;

RAY_ACTOR(Wide, wide_t)
RAY_DEFAULT_CONSTRUCTOR(Wide)
#define WIDE_METHOD(k)          \
  RAY_METHOD(Wide, i64, m##k) { \
    (void)self;                 \
    return k;                   \
  }
WIDE_METHOD(1)
WIDE_METHOD(2)
WIDE_METHOD(3)
WIDE_METHOD(4)
WIDE_METHOD(5)
WIDE_METHOD(6)
WIDE_METHOD(7)
WIDE_METHOD(8)
WIDE_METHOD(9)
WIDE_METHOD(10)
WIDE_METHOD(11)
WIDE_METHOD(12)

/* ---- Remote functions --------------------------------------------------------- */

RAY_FUNCTION(i64, t_add, (i64, a), (i64, b)) {
  return a + b;
}

RAY_FUNCTION(i64, t_one) {
  return 1;
}

RAY_FUNCTION(f64, t_scale, (f64, x), (f64, k)) {
  return x * k;
}

RAY_FUNCTION(str, t_concat, (str, a), (str, b)) {
  return ray_str_format("%s%s", a, b);
}

RAY_FUNCTION(i64, t_strlen, (str, s)) {
  return (int64_t)strlen(s);
}

/* The arg given with RAY_BYTES_OWNED is the counter (it must arrive). */
static atomic_int g_owned_frees;
static void counted_free(void *p, void *arg) {
  free(p);
  atomic_fetch_add((atomic_int *)arg, 1);
}

/* bytes in, bytes out handed over without a copy. */
RAY_FUNCTION(bytes, t_reverse, (bytes, in)) {
  unsigned char *out = malloc(in.size > 0 ? in.size : 1);
  if (out == NULL) return ray_fail(RAY_CTX, RAY_ENOMEM, "t_reverse"), RAY_BYTES(NULL, 0);
  const unsigned char *p = in.data;
  for (size_t i = 0; i < in.size; i++) out[i] = p[in.size - 1 - i];
  return RAY_BYTES_OWNED(out, in.size, counted_free, &g_owned_frees);
}

/* bytes out copied from static data. */
RAY_FUNCTION(bytes, t_static_bytes) {
  static const char k[] = "static";
  return RAY_BYTES(k, 6);
}

/* msgpack in (an array of integers), msgpack out ({"sum": s, "n": n}). */
RAY_FUNCTION(msgpack, t_mp_sum, (msgpack, m)) {
  int64_t sum = 0;
  uint32_t n = m.type == MSGPACK_OBJECT_ARRAY ? m.via.array.size : 0;
  for (uint32_t i = 0; i < n; i++) sum += m.via.array.ptr[i].via.i64;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "sum", 3);
  msgpack_pack_int64(&pk, sum);
  msgpack_pack_str_with_body(&pk, "n", 1);
  msgpack_pack_uint32(&pk, n);
  return sb;
}

RAY_FUNCTION(point, t_mid, (point, a), (point, b)) {
  return (point_t){(a.x + b.x) / 2, (a.y + b.y) / 2};
}

RAY_FUNCTION(item, t_restock, (item, it), (i64, more)) {
  it.qty += more;
  return it;
}

/* Several returns of several kinds, from doubles given as bytes. */
RAY_FUNCTION(((point, lo), (point, hi), (i64, n), (str, label)), t_bounds, (bytes, pts)) {
  const double *v = pts.data;
  size_t n = pts.size / (2 * sizeof(double));
  RAY_RESULT(t_bounds) r = {{0, 0}, {0, 0}, (int64_t)n, NULL};
  for (size_t i = 0; i < n; i++) {
    point_t p = {v[2 * i], v[2 * i + 1]};
    if (i == 0 || p.x < r.lo.x) r.lo.x = p.x;
    if (i == 0 || p.y < r.lo.y) r.lo.y = p.y;
    if (i == 0 || p.x > r.hi.x) r.hi.x = p.x;
    if (i == 0 || p.y > r.hi.y) r.hi.y = p.y;
  }
  r.label = ray_str_format("%zu points", n);
  return r;
}

RAY_FUNCTION(i64, t_sum8, (i64, a), (i64, b), (i64, c), (i64, d), (i64, e), (i64, f), (i64, g),
             (i64, h)) {
  return a + 10 * b + 100 * c + 1000 * d + 10000 * e + 100000 * f + 1000000 * g + 10000000 * h;
}

RAY_FUNCTION(i64, t_fail, (i64, code)) {
  ray_fail(RAY_CTX, (int)code, "t_fail(%lld) as asked", (long long)code);
  return 0;
}

RAY_FUNCTION(str, t_null_str) {
  return NULL;
}

RAY_FUNCTION(msgpack, t_empty_mp) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  return sb;
}

/* Fails its first `fail_times` attempts, then returns the attempt number. */
RAY_FUNCTION(i64, t_flaky, (i64, fail_times)) {
  uint32_t attempt = ray_ctx_attempt(RAY_CTX);
  if ((int64_t)attempt <= fail_times) return ray_fail(RAY_CTX, RAY_ETASK, "attempt %u", attempt);
  return attempt;
}

/* Recursion through the typed layer: nested gets, and RAY_CTX must be this
 * task's again after them (a blocked worker may run the children inline). */
RAY_FUNCTION(i64, t_fib, (i64, n)) {
  if (n < 2) return n;
  uint64_t me = ray_ctx_task_id(RAY_CTX);
  RAY_REF(i64) a = t_fib(n - 1), b = RAY_CALL(t_fib, n - 2);
  int64_t fa = -1, fb = -1;
  int ra = RAY_GET(a, RAY_TIMEOUT_INFINITE, &fa), rb = RAY_GET(b, RAY_TIMEOUT_INFINITE, &fb);
  ray_ref_release(a.ref);
  ray_ref_release(b.ref);
  if (ra != 0 || rb != 0) return ray_fail(RAY_CTX, RAY_EDEPFAILED, "children: %d %d", ra, rb);
  if (ray_ctx_task_id(RAY_CTX) != me) return ray_fail(RAY_CTX, RAY_ETASK, "RAY_CTX not restored");
  return fa + fb;
}

/* An actor handle as a parameter: n calls, then the last value. */
RAY_FUNCTION(i64, t_bump, (Counter, c), (i64, n)) {
  RAY_REF(i64) last = {0};
  for (int64_t i = 0; i < n; i++) {
    ray_ref_release(last.ref);
    last = Counter_incr(c, 1);
  }
  int64_t v = -1;
  int rc = RAY_GET(last, RAY_TIMEOUT_INFINITE, &v);
  ray_ref_release(last.ref);
  if (rc != 0) return ray_fail(RAY_CTX, rc, "t_bump: %s", ray_err_name(rc));
  return v;
}

RAY_FUNCTION(i64, t_acc_param, (Accumulator, a)) {
  return a.actor.id != 0;
}

/* ---- Helpers ------------------------------------------------------------------ */

static int64_t get_i64(RAY_REF(i64) r) {
  int64_t v = INT64_MIN;
  assert_rc(RAY_GET(r, RAY_TIMEOUT_INFINITE, &v), 0);
  return v;
}

static double get_f64(RAY_REF(f64) r) {
  double v = -1;
  assert_rc(RAY_GET(r, RAY_TIMEOUT_INFINITE, &v), 0);
  return v;
}

static void release_all(const ray_ref_t *refs, size_t n) {
  for (size_t i = 0; i < n; i++) assert_rc(ray_ref_release(refs[i]), 0);
}

/* The store empty and no actor alive, once in-flight releases are done
 * (the documented hook: no polling, no time limit of its own). */
static void wait_quiet(void) {
  assert_rc(ray__quiesce(RAY_TIMEOUT_INFINITE), 0);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.objects, 0);
  assert_int_equal(s.actors_alive, 0);
}

static void check_error(ray_ref_t ref, int code, const char *needle) {
  ray_error_t *err = NULL;
  assert_rc(ray_get_error(ref, &err), 0);
  assert_non_null(err);
  assert_int_equal(ray_error_code(err), code);
  char text[2048];
  ray_error_format(err, text, sizeof text);
  if (strstr(text, needle) == NULL) {
    print_error("error text \"%s\" lacks \"%s\"\n", text, needle);
    fail();
  }
  ray_error_free(err);
}

/* ---- Put and get ------------------------------------------------------------- */

static void test_put_get_every_kind(void **state) {
  (void)state;
  rt_begin();
  RAY_REF(i64) i = RAY_PUT(i64, -42);
  RAY_REF(f64) f = RAY_PUT(f64, 2.5);
  RAY_REF(str) s = RAY_PUT(str, "hello");
  RAY_REF(bytes) b = RAY_PUT(bytes, RAY_BYTES("abc", 3));
  RAY_REF(point) p = RAY_PUT(point, ((point_t){1.5, -2}));
  item_t it0 = {"bolt", 7};
  RAY_REF(item) it = RAY_PUT(item, it0);
  assert_int_equal(RAY_STATUS(i) + RAY_STATUS(f) + RAY_STATUS(s) + RAY_STATUS(b) + RAY_STATUS(p) +
                       RAY_STATUS(it),
                   0);
  assert_int_equal(i.ref.type, RAY_TYPE_I64);
  assert_int_equal(f.ref.type, RAY_TYPE_F64);
  assert_int_equal(s.ref.type, RAY_TYPE_STR);
  assert_int_equal(b.ref.type, RAY_TYPE_BYTES);
  assert_int_equal(p.ref.type, RAY_TYPE_USER + 1);
  assert_int_equal(it.ref.type, RAY_TYPE_USER + 2);

  assert_int_equal(get_i64(i), -42);
  assert_true(get_f64(f) == 2.5);
  char *text = NULL;
  assert_rc(RAY_GET(s, 0, &text), 0);
  assert_string_equal(text, "hello");
  ray_free(text);
  ray_buf_t view;
  assert_rc(RAY_GET(b, 0, &view), 0);
  assert_int_equal(view.size, 3);
  assert_memory_equal(view.data, "abc", 3);
  ray_buf_release(&view);
  point_t pt = {0, 0};
  assert_rc(RAY_GET(p, 0, &pt), 0);
  assert_true(pt.x == 1.5 && pt.y == -2);
  item_t back;
  assert_rc(RAY_GET(it, 0, &back), 0);
  assert_string_equal(back.name, "bolt");
  assert_int_equal(back.qty, 7);

  /* msgpack, with a ref inside it. */
  msgpack_object elems[2];
  elems[0].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  elems[0].via.u64 = 5;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  assert_rc(ray_msgpack_pack_ref(&pk, i.ref), 0);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
  elems[1] = u.data;
  msgpack_object arr;
  arr.type = MSGPACK_OBJECT_ARRAY;
  arr.via.array.size = 2;
  arr.via.array.ptr = elems;
  RAY_REF(msgpack) m = RAY_PUT(msgpack, &arr);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  assert_rc(RAY_STATUS(m), 0);
  ray_msgpack_t mv;
  assert_rc(RAY_GET(m, 0, &mv), 0);
  assert_int_equal(mv.obj.type, MSGPACK_OBJECT_ARRAY);
  assert_int_equal(mv.nrefs, 1);
  assert_int_equal(mv.refs[0].id, i.ref.id);
  release_all(mv.refs, mv.nrefs); /* the array itself goes with the value */
  ray_msgpack_release(&mv);

  /* A bytes buffer handed over: freed once, when the object goes. */
  atomic_store(&g_owned_frees, 0);
  char *mine = malloc(4);
  memcpy(mine, "mine", 4);
  RAY_REF(bytes) o = RAY_PUT(bytes, RAY_BYTES_OWNED(mine, 4, counted_free, &g_owned_frees));
  assert_rc(RAY_GET(o, 0, &view), 0);
  assert_ptr_equal(view.data, mine);
  ray_buf_release(&view);
  assert_rc(ray_ref_release(o.ref), 0);
  assert_int_equal(atomic_load(&g_owned_frees), 1);

  const ray_ref_t all[] = {i.ref, f.ref, s.ref, b.ref, p.ref, it.ref, m.ref};
  release_all(all, sizeof all / sizeof all[0]);
  wait_quiet();
  rt_end();
}

static void test_put_get_errors(void **state) {
  (void)state;
  /* Before ray_init: failed refs with the put's code. */
  if (ray_is_initialized()) (void)ray_shutdown();
  RAY_REF(i64) early = RAY_PUT(i64, 1);
  assert_int_equal(early.ref.id, 0);
  assert_rc(RAY_STATUS(early), RAY_ENOTINIT);
  int64_t v = 99;
  assert_rc(RAY_GET(early, 0, &v), RAY_ENOTINIT);
  assert_int_equal(v, 99);
  assert_rc(ray_ref_release(early.ref), RAY_ENOTINIT); /* harmless */
  RAY_REF(point) pearly = RAY_PUT(point, ((point_t){1, 1}));
  assert_rc(RAY_STATUS(pearly), RAY_ENOTINIT);

  rt_begin();
  /* A zeroed typed ref is "no ref". */
  RAY_REF(f64) none = {0};
  assert_rc(RAY_STATUS(none), RAY_ENOTFOUND);
  double d;
  assert_rc(RAY_GET(none, 0, &d), RAY_ENOTFOUND);
  char *text = (char *)"x";
  RAY_REF(str) snone = {0};
  assert_rc(RAY_GET(snone, 0, &text), RAY_ENOTFOUND);
  assert_null(text);

  /* A value a user type refuses to pack. */
  item_t bad = {"neg", -1};
  RAY_REF(item) rb = RAY_PUT(item, bad);
  assert_rc(RAY_STATUS(rb), RAY_EINVAL);
  /* A NULL string. */
  RAY_REF(str) sn = RAY_PUT(str, NULL);
  assert_rc(RAY_STATUS(sn), RAY_EINVAL);

  /* Casts: the tag must match; the reference is the same. */
  ray_ref_t raw;
  assert_rc(ray_put_i64(5, &raw), 0);
  RAY_REF(i64) ok = RAY_REF_CAST(i64, raw);
  assert_int_equal(ok.ref.id, raw.id);
  assert_int_equal(get_i64(ok), 5);
  RAY_REF(point) wrong = RAY_REF_CAST(point, raw);
  assert_rc(RAY_STATUS(wrong), RAY_ETYPE);
  point_t pt;
  assert_rc(RAY_GET(wrong, 0, &pt), RAY_ETYPE);
  RAY_REF(f64) nilcast = RAY_REF_CAST(f64, RAY_REF_NIL);
  assert_rc(RAY_STATUS(nilcast), RAY_ENOTFOUND);
  /* Bytes tagged as a point but not a point: RAY_EDECODE, nothing written. */
  ray_ref_t junk;
  assert_rc(ray_put_typed("\xc1", 1, RAY_TYPE_USER + 1, &junk), 0);
  pt.x = 7;
  assert_rc(RAY_GET(RAY_REF_CAST(point, junk), 0, &pt), RAY_EDECODE);
  /* A point's bytes read as an item (same shape of call, other tag). */
  RAY_REF(point) p = RAY_PUT(point, ((point_t){1, 2}));
  item_t it;
  assert_rc(RAY_GET(RAY_REF_CAST(item, p.ref), 0, &it), RAY_ETYPE);
  /* A released ref. */
  assert_rc(ray_ref_release(p.ref), 0);
  assert_rc(RAY_GET(p, 0, &pt), RAY_ENOTFOUND);
  /* A zeroed bytes ref zeroes the view. */
  ray_buf_t view;
  rt_garbage(&view, sizeof view);
  RAY_REF(bytes) bnone = {0};
  assert_rc(RAY_GET(bnone, 0, &view), RAY_ENOTFOUND);
  rt_assert_buf_zeroed(&view);
  assert_rc(ray_ref_release(raw), 0);
  assert_rc(ray_ref_release(junk), 0);
  wait_quiet();
  rt_end();
}

/* ---- Functions ---------------------------------------------------------------- */

static void test_function_values(void **state) {
  (void)state;
  rt_begin();
  /* Plain calls, with values of every C type a kind takes. */
  RAY_REF(i64) a = t_add(40, 2);
  RAY_REF(i64) a2 = RAY_CALL(t_add, (char)1, (unsigned long long)2);
  RAY_REF(i64) a3 = RAY_CALL(t_add, (short)-3, true);
  RAY_REF(f64) f = RAY_CALL(t_scale, 1.5f, 4.0);
  RAY_REF(str) s = t_concat("con", "cat");
  char word[] = "array";
  RAY_REF(i64) len = RAY_CALL(t_strlen, word);
  char long_text[300];
  memset(long_text, 'z', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  RAY_REF(i64) len_long = RAY_CALL(t_strlen, (const char *)long_text); /* the heap path */
  RAY_REF(str) s_long = RAY_CALL(t_concat, long_text, "!");
  RAY_REF(point) mid = RAY_CALL(t_mid, ((point_t){0, 0}), ((point_t){4, -2}));
  item_t it0 = {"nut", 3};
  RAY_REF(item) more = t_restock(it0, 4);
  atomic_store(&g_owned_frees, 0);
  RAY_REF(bytes) rev = RAY_CALL(t_reverse, RAY_BYTES("abcdef", 6));
  RAY_REF(bytes) sb = t_static_bytes();
  RAY_REF(i64) sum8 = t_sum8(1, 2, 3, 4, 5, 6, 7, 8);
  RAY_REF(i64) one = t_one();
  RAY_REF(i64) one2 = RAY_CALL(t_one);

  msgpack_object nums[3];
  for (int k = 0; k < 3; k++) {
    nums[k].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    nums[k].via.u64 = (uint64_t)(k + 1) * 10;
  }
  msgpack_object arr;
  arr.type = MSGPACK_OBJECT_ARRAY;
  arr.via.array.size = 3;
  arr.via.array.ptr = nums;
  RAY_REF(msgpack) ms = RAY_CALL(t_mp_sum, arr); /* by value */
  RAY_REF(msgpack) ms2 = t_mp_sum(&arr);         /* a pointer */
  RAY_REF(msgpack) ms3 = RAY_CALL(t_mp_sum, (const msgpack_object *)&arr);

  /* Typed at submission, as declared. */
  assert_int_equal(a.ref.type, RAY_TYPE_I64);
  assert_int_equal(f.ref.type, RAY_TYPE_F64);
  assert_int_equal(s.ref.type, RAY_TYPE_STR);
  assert_int_equal(rev.ref.type, RAY_TYPE_BYTES);
  assert_int_equal(ms.ref.type, RAY_TYPE_MSGPACK);
  assert_int_equal(mid.ref.type, RAY_TYPE_USER + 1);
  assert_int_equal(more.ref.type, RAY_TYPE_USER + 2);

  assert_int_equal(get_i64(a), 42);
  assert_int_equal(get_i64(a2), 3);
  assert_int_equal(get_i64(a3), -2);
  assert_true(get_f64(f) == 6.0);
  char *text = NULL;
  assert_rc(RAY_GET(s, RAY_TIMEOUT_INFINITE, &text), 0);
  assert_string_equal(text, "concat");
  ray_free(text);
  assert_int_equal(get_i64(len), 5);
  assert_int_equal(get_i64(len_long), 299);
  assert_rc(RAY_GET(s_long, RAY_TIMEOUT_INFINITE, &text), 0);
  assert_int_equal(strlen(text), 300);
  assert_int_equal(text[299], '!');
  ray_free(text);
  point_t pm;
  assert_rc(RAY_GET(mid, RAY_TIMEOUT_INFINITE, &pm), 0);
  assert_true(pm.x == 2 && pm.y == -1);
  item_t it;
  assert_rc(RAY_GET(more, RAY_TIMEOUT_INFINITE, &it), 0);
  assert_string_equal(it.name, "nut");
  assert_int_equal(it.qty, 7);
  ray_buf_t view;
  assert_rc(RAY_GET(rev, RAY_TIMEOUT_INFINITE, &view), 0);
  assert_int_equal(view.size, 6);
  assert_memory_equal(view.data, "fedcba", 6);
  ray_buf_release(&view);
  assert_rc(RAY_GET(sb, RAY_TIMEOUT_INFINITE, &view), 0);
  assert_memory_equal(view.data, "static", 6);
  ray_buf_release(&view);
  assert_int_equal(get_i64(sum8), 87654321);
  assert_int_equal(get_i64(one), 1);
  assert_int_equal(get_i64(one2), 1);
  RAY_REF(msgpack) mss[] = {ms, ms2, ms3};
  for (int k = 0; k < 3; k++) {
    ray_msgpack_t mv;
    assert_rc(RAY_GET(mss[k], RAY_TIMEOUT_INFINITE, &mv), 0);
    assert_int_equal(mv.obj.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(mv.obj.via.map.ptr[0].val.via.i64, 60);
    assert_int_equal(mv.obj.via.map.ptr[1].val.via.u64, 3);
    ray_msgpack_release(&mv);
  }

  const ray_ref_t all[] = {a.ref,        a2.ref,     a3.ref,   f.ref,    s.ref,   len.ref,
                           len_long.ref, s_long.ref, mid.ref,  more.ref, rev.ref, sb.ref,
                           sum8.ref,     one.ref,    one2.ref, ms.ref,   ms2.ref, ms3.ref};
  release_all(all, sizeof all / sizeof all[0]);
  wait_quiet();
  assert_int_equal(atomic_load(&g_owned_frees), 1); /* t_reverse's buffer, once */
  rt_end();
}

static void test_function_refs(void **state) {
  (void)state;
  rt_begin();
  /* Refs from puts and from other tasks, for every kind, mixed with values. */
  RAY_REF(i64) forty = RAY_PUT(i64, 40);
  RAY_REF(i64) two = t_one();
  RAY_REF(i64) sum = RAY_CALL(t_add, forty, two);
  RAY_REF(i64) sum2 = RAY_CALL(t_add, sum, 100);
  RAY_REF(f64) k = RAY_PUT(f64, 0.5);
  RAY_REF(f64) half = RAY_CALL(t_scale, 9.0, k);
  RAY_REF(f64) quarter = RAY_CALL(t_scale, half, k);
  RAY_REF(str) hello = RAY_PUT(str, "hello, ");
  RAY_REF(str) msg = RAY_CALL(t_concat, hello, "world");
  RAY_REF(i64) msg_len = RAY_CALL(t_strlen, msg);
  RAY_REF(bytes) raw = RAY_PUT(bytes, RAY_BYTES("xyz", 3));
  RAY_REF(bytes) rev = RAY_CALL(t_reverse, raw);
  RAY_REF(bytes) rev2 = RAY_CALL(t_reverse, rev);
  RAY_REF(point) p = RAY_PUT(point, ((point_t){2, 2}));
  RAY_REF(point) m1 = RAY_CALL(t_mid, p, ((point_t){4, 6}));
  RAY_REF(point) m2 = RAY_CALL(t_mid, m1, p);
  item_t it0 = {"gear", 1};
  RAY_REF(item) it1 = RAY_PUT(item, it0);
  RAY_REF(item) it2 = RAY_CALL(t_restock, it1, two);
  RAY_REF(item) it3 = RAY_CALL(t_restock, it2, sum);
  msgpack_object nums[2];
  nums[0].type = nums[1].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  nums[0].via.u64 = 1;
  nums[1].via.u64 = 2;
  msgpack_object arr;
  arr.type = MSGPACK_OBJECT_ARRAY;
  arr.via.array.size = 2;
  arr.via.array.ptr = nums;
  RAY_REF(msgpack) mp = RAY_PUT(msgpack, &arr);
  RAY_REF(msgpack) ms = RAY_CALL(t_mp_sum, mp);
  RAY_REF(i64) sum8 = RAY_CALL(t_sum8, forty, 0, two, 0, sum, 0, 0, forty);

  assert_int_equal(get_i64(sum), 41);
  assert_int_equal(get_i64(sum2), 141);
  assert_true(get_f64(quarter) == 2.25);
  assert_int_equal(get_i64(msg_len), 12);
  ray_buf_t view;
  assert_rc(RAY_GET(rev2, RAY_TIMEOUT_INFINITE, &view), 0);
  assert_memory_equal(view.data, "xyz", 3);
  ray_buf_release(&view);
  point_t pt;
  assert_rc(RAY_GET(m2, RAY_TIMEOUT_INFINITE, &pt), 0);
  assert_true(pt.x == 2.5 && pt.y == 3);
  item_t it;
  assert_rc(RAY_GET(it3, RAY_TIMEOUT_INFINITE, &it), 0);
  assert_int_equal(it.qty, 1 + 1 + 41);
  ray_msgpack_t mv;
  assert_rc(RAY_GET(ms, RAY_TIMEOUT_INFINITE, &mv), 0);
  assert_int_equal(mv.obj.via.map.ptr[0].val.via.i64, 3);
  ray_msgpack_release(&mv);
  assert_int_equal(get_i64(sum8), 40 + 100 * 1 + 10000 * 41 + 10000000LL * 40);

  const ray_ref_t all[] = {forty.ref,   two.ref,   sum.ref, sum2.ref,    k.ref,   half.ref,
                           quarter.ref, hello.ref, msg.ref, msg_len.ref, raw.ref, rev.ref,
                           rev2.ref,    p.ref,     m1.ref,  m2.ref,      it1.ref, it2.ref,
                           it3.ref,     mp.ref,    ms.ref,  sum8.ref};
  release_all(all, sizeof all / sizeof all[0]);
  wait_quiet();
  rt_end();
}

static void test_function_several_returns(void **state) {
  (void)state;
  rt_begin();
  const double pts[] = {1, 5, -2, 3, 4, -1};
  RAY_REFS(t_bounds) b = RAY_CALL(t_bounds, RAY_BYTES(pts, sizeof pts));
  assert_int_equal(b.lo.ref.type, RAY_TYPE_USER + 1);
  assert_int_equal(b.hi.ref.type, RAY_TYPE_USER + 1);
  assert_int_equal(b.n.ref.type, RAY_TYPE_I64);
  assert_int_equal(b.label.ref.type, RAY_TYPE_STR);
  point_t lo, hi;
  assert_rc(RAY_GET(b.lo, RAY_TIMEOUT_INFINITE, &lo), 0);
  assert_rc(RAY_GET(b.hi, RAY_TIMEOUT_INFINITE, &hi), 0);
  assert_true(lo.x == -2 && lo.y == -1 && hi.x == 4 && hi.y == 5);
  assert_int_equal(get_i64(b.n), 3);
  char *label;
  assert_rc(RAY_GET(b.label, RAY_TIMEOUT_INFINITE, &label), 0);
  assert_string_equal(label, "3 points");
  ray_free(label);
  /* One return of a several-returns call as the argument of another call. */
  RAY_REF(point) m = RAY_CALL(t_mid, b.lo, b.hi);
  point_t pm;
  assert_rc(RAY_GET(m, RAY_TIMEOUT_INFINITE, &pm), 0);
  assert_true(pm.x == 1 && pm.y == 2);
  const ray_ref_t all[] = {b.lo.ref, b.hi.ref, b.n.ref, b.label.ref, m.ref};
  release_all(all, sizeof all / sizeof all[0]);

  /* The core sees the same registration: two... four returns, typed. */
  ray_function_t fn;
  size_t nret = 0;
  assert_rc(ray_function_lookup("t_bounds", &fn), 0);
  assert_rc(ray_function_info(fn, NULL, &nret), 0);
  assert_int_equal(nret, 4);
  assert_rc(ray_function_lookup("t_add", &fn), 0);
  assert_rc(ray_function_info(fn, NULL, &nret), 0);
  assert_int_equal(nret, 1);
  wait_quiet();
  rt_end();
}

static void test_function_failures(void **state) {
  (void)state;
  rt_begin();
  /* ray_fail(RAY_CTX, ...) in a body. */
  RAY_REF(i64) f = t_fail(RAY_EINVAL);
  int64_t v;
  assert_rc(RAY_GET(f, RAY_TIMEOUT_INFINITE, &v), RAY_EINVAL);
  check_error(f.ref, RAY_EINVAL, "t_fail(-1) as asked");
  /* A failed ref as an argument: the task does not run, EDEPFAILED. */
  RAY_REF(i64) dep = RAY_CALL(t_add, f, 1);
  assert_rc(RAY_STATUS(dep), 0); /* submitted: it is f's producer that failed */
  assert_rc(RAY_GET(dep, RAY_TIMEOUT_INFINITE, &v), RAY_EDEPFAILED);
  /* Results the body did not give. */
  RAY_REF(str) ns = t_null_str();
  char *text = (char *)"x";
  assert_rc(RAY_GET(ns, RAY_TIMEOUT_INFINITE, &text), RAY_ENORESULT);
  assert_null(text);
  RAY_REF(msgpack) nm = t_empty_mp();
  ray_msgpack_t mv;
  assert_rc(RAY_GET(nm, RAY_TIMEOUT_INFINITE, &mv), RAY_ENORESULT);
  /* A user value that does not pack: nothing submitted. */
  item_t bad = {"neg", -5};
  RAY_REF(item) r = t_restock(bad, 1);
  assert_rc(RAY_STATUS(r), RAY_EINVAL);
  RAY_REF(str) s = RAY_CALL(t_concat, (const char *)NULL, "x");
  assert_rc(RAY_STATUS(s), RAY_EINVAL);
  RAY_REF(bytes) bb = RAY_CALL(t_reverse, RAY_BYTES(NULL, 3));
  assert_rc(RAY_STATUS(bb), RAY_EINVAL);
  RAY_REF(msgpack) nmp = t_mp_sum(NULL);
  assert_rc(RAY_STATUS(nmp), RAY_ENOTFOUND);

  /* Arguments of the wrong type reach a typed function only through the
   * core API: the wrapper fails the task, naming the argument. */
  ray_function_t fn;
  assert_rc(ray_function_lookup("t_add", &fn), 0);
  ray_arg_t args[] = {ray_arg_i64(1), ray_arg_str("two")};
  ray_ref_t out;
  assert_rc(ray_task_submit(fn, args, 2, NULL, &out), 0);
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &v), RAY_ETYPE);
  check_error(out, RAY_ETYPE, "t_add: argument 'b'");
  assert_rc(ray_ref_release(out), 0);
  assert_rc(ray_task_submit(fn, args, 1, NULL, &out), 0); /* one missing */
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &v), RAY_EINVAL);
  check_error(out, RAY_EINVAL, "argument 'b'");
  assert_rc(ray_ref_release(out), 0);
  assert_rc(ray_function_lookup("t_mid", &fn), 0);
  ray_arg_t pargs[] = {ray_arg_bytes("\xc1", 1), ray_arg_i64(3)};
  assert_rc(ray_task_submit(fn, pargs, 2, NULL, &out), 0); /* not a point */
  point_t pt;
  assert_rc(RAY_GET(RAY_REF_CAST(point, out), RAY_TIMEOUT_INFINITE, &pt), RAY_EDECODE);
  check_error(out, RAY_EDECODE, "t_mid: argument 'a'");
  assert_rc(ray_ref_release(out), 0);
  RAY_REF(item) an_item = RAY_PUT(item, ((item_t){"x", 1}));
  pargs[0] = ray_arg_ref(an_item.ref); /* a ref of another user type */
  assert_rc(ray_task_submit(fn, pargs, 2, NULL, &out), 0);
  assert_rc(RAY_GET(RAY_REF_CAST(point, out), RAY_TIMEOUT_INFINITE, &pt), RAY_ETYPE);
  assert_rc(ray_ref_release(out), 0);

  const ray_ref_t all[] = {f.ref, dep.ref, ns.ref, nm.ref, an_item.ref};
  release_all(all, sizeof all / sizeof all[0]);
  wait_quiet();
  rt_end();
}

static void test_failed_refs_propagate(void **state) {
  (void)state;
  if (ray_is_initialized()) (void)ray_shutdown();
  /* Before ray_init every call fails with RAY_ENOTINIT... */
  RAY_REF(i64) a = t_add(1, 2);
  assert_int_equal(a.ref.id, 0);
  assert_rc(RAY_STATUS(a), RAY_ENOTINIT);
  RAY_REFS(t_bounds) b = RAY_CALL(t_bounds, RAY_BYTES("", 0));
  assert_rc(RAY_STATUS(b.lo), RAY_ENOTINIT);
  assert_rc(RAY_STATUS(b.label), RAY_ENOTINIT);
  Counter c = Counter_new(1);
  assert_int_equal(c.actor.id, 0);
  assert_rc(RAY_STATUS(c), RAY_ENOTINIT);

  rt_begin();
  /* ... and a failed ref or handle fails the calls it is passed to with its
   * own code, submitting nothing. */
  RAY_REF(i64) b2 = RAY_CALL(t_add, a, 1);
  assert_rc(RAY_STATUS(b2), RAY_ENOTINIT);
  RAY_REF(i64) b3 = RAY_CALL(t_add, 1, b2);
  assert_rc(RAY_STATUS(b3), RAY_ENOTINIT);
  int64_t v = 5;
  assert_rc(RAY_GET(b3, 0, &v), RAY_ENOTINIT);
  RAY_REF(i64) ci = Counter_incr(c, 1);
  assert_rc(RAY_STATUS(ci), RAY_ENOTINIT);
  RAY_REFS(Counter_snapshot) snap = Counter_snapshot(c);
  assert_rc(RAY_STATUS(snap.value), RAY_ENOTINIT);
  assert_rc(RAY_STATUS(snap.text), RAY_ENOTINIT);
  RAY_REF(i64) bump = RAY_CALL(t_bump, c, 3);
  assert_rc(RAY_STATUS(bump), RAY_ENOTINIT);
  Counter c2 = RAY_CALL(Counter_new, b3);
  assert_rc(RAY_STATUS(c2), RAY_ENOTINIT);
  /* A zeroed handle. */
  Counter zero = {{0}};
  assert_rc(RAY_STATUS(zero), RAY_ENOTFOUND);
  assert_rc(RAY_STATUS(Counter_get(zero)), RAY_ENOTFOUND);
  /* A released ref: the core's own check. */
  RAY_REF(i64) gone = RAY_PUT(i64, 3);
  assert_rc(ray_ref_release(gone.ref), 0);
  RAY_REF(i64) late = RAY_CALL(t_add, gone, 1);
  assert_rc(RAY_STATUS(late), RAY_ENOTFOUND);
  /* A released handle. */
  Counter dead = Counter_new(0);
  assert_rc(RAY_STATUS(dead), 0);
  assert_rc(ray_actor_release(dead.actor), 0);
  RAY_REF(i64) after = Counter_get(dead);
  assert_rc(RAY_STATUS(after), RAY_ENOTFOUND);
  wait_quiet();
  rt_end();
}

static void test_call_opts(void **state) {
  (void)state;
  rt_begin();
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.max_retries = 3;
  o.retry_on_error = true;
  o.name = "flaky-by-name";
  RAY_REF(i64) r = RAY_CALL_OPTS(&o, t_flaky, 2);
  assert_int_equal(get_i64(r), 3); /* third attempt */
  assert_rc(ray_ref_release(r.ref), 0);
  o.max_retries = 0;
  r = RAY_CALL_OPTS(&o, t_flaky, 1);
  int64_t v;
  assert_rc(RAY_GET(r, RAY_TIMEOUT_INFINITE, &v), RAY_ETASK);
  check_error(r.ref, RAY_ETASK, "flaky-by-name");
  assert_rc(ray_ref_release(r.ref), 0);
  /* num_returns is a check against the declaration. */
  ray_task_opts_init(&o);
  o.num_returns = 2;
  r = RAY_CALL_OPTS(&o, t_add, 1, 2);
  assert_rc(RAY_STATUS(r), RAY_EINVAL);
  o.num_returns = 4;
  RAY_REFS(t_bounds) b = RAY_CALL_OPTS(&o, t_bounds, RAY_BYTES("", 0));
  assert_rc(RAY_STATUS(b.n), 0);
  assert_int_equal(get_i64(b.n), 0);
  const ray_ref_t all[] = {b.lo.ref, b.hi.ref, b.n.ref, b.label.ref};
  release_all(all, sizeof all / sizeof all[0]);
  /* NULL options: the defaults. */
  r = RAY_CALL_OPTS(NULL, t_add, 2, 3);
  assert_int_equal(get_i64(r), 5);
  assert_rc(ray_ref_release(r.ref), 0);
  wait_quiet();
  rt_end();
}

static void test_nested(void **state) {
  (void)state;
  rt_begin(); /* two workers: recursion must not deadlock the pool */
  RAY_REF(i64) r = t_fib(rt_iters(12, 8));
  assert_int_equal(get_i64(r), rt_under_valgrind() ? 21 : 144);
  assert_rc(ray_ref_release(r.ref), 0);
  assert_null(RAY_CTX); /* the host thread runs no body */
  wait_quiet();
  rt_end();
}

static void test_reinit(void **state) {
  (void)state;
  for (int round = 0; round < 3; round++) {
    rt_begin(); /* handles are refreshed by every ray_init */
    RAY_REF(i64) r = RAY_CALL(t_add, round, 1);
    assert_int_equal(get_i64(r), round + 1);
    assert_rc(ray_ref_release(r.ref), 0);
    Counter c = Counter_new(round);
    RAY_REF(i64) g = Counter_get(c);
    assert_int_equal(get_i64(g), round);
    assert_rc(ray_ref_release(g.ref), 0);
    assert_rc(ray_actor_release(c.actor), 0);
    wait_quiet();
    rt_end();
  }
}

/* ---- Actors -------------------------------------------------------------------- */

static void test_actor_calls(void **state) {
  (void)state;
  rt_begin();
  atomic_store(&g_ctor_runs, 0);
  atomic_store(&g_dtor_runs, 0);
  Counter c = Counter_new(100);
  assert_rc(RAY_STATUS(c), 0);
  enum { N = 200 };
  RAY_REF(i64) refs[N];
  for (int i = 0; i < N; i++) refs[i] = i % 2 ? Counter_incr(c, 1) : RAY_CALL(Counter_incr, c, 1);
  for (int i = 0; i < N; i++) {
    assert_int_equal(refs[i].ref.type, RAY_TYPE_I64);
    assert_int_equal(get_i64(refs[i]), 100 + i + 1); /* submission order */
    assert_rc(ray_ref_release(refs[i].ref), 0);
  }
  /* A ref argument: the call waits for it without holding a worker. */
  RAY_REF(i64) ten = t_add(5, 5);
  RAY_REF(i64) v = RAY_CALL(Counter_incr, c, ten);
  assert_int_equal(get_i64(v), 100 + N + 10);
  /* Several returns. */
  RAY_REFS(Counter_snapshot) s = Counter_snapshot(c);
  assert_int_equal(get_i64(s.value), 100 + N + 10);
  assert_int_equal(get_i64(s.calls), N + 1);
  char *text;
  assert_rc(RAY_GET(s.text, RAY_TIMEOUT_INFINITE, &text), 0);
  assert_string_equal(text, "310 after 201 calls");
  ray_free(text);
  /* A user-type return, the most params, the handle checked from inside. */
  RAY_REF(point) p = RAY_CALL(Counter_as_point, c, 0.5);
  point_t pt;
  assert_rc(RAY_GET(p, RAY_TIMEOUT_INFINITE, &pt), 0);
  assert_true(pt.x == 310 && pt.y == 0.5);
  RAY_REF(i64) s7 = RAY_CALL(Counter_add7, c, 1, 1, 1, 1, 1, ten, 1);
  assert_int_equal(get_i64(s7), 310 + 16);
  RAY_REF(i64) sc = Counter_self_check(c);
  assert_int_equal(get_i64(sc), 1);
  /* A ctor argument by ref. */
  Counter c2 = RAY_CALL(Counter_new, ten);
  RAY_REF(i64) g2 = Counter_get(c2);
  assert_int_equal(get_i64(g2), 10);
  /* Another class, with a default-free state and no destructor body. */
  Accumulator acc = Accumulator_new();
  RAY_REF(f64) a1 = Accumulator_add(acc, 1.5);
  RAY_REF(f64) a2 = RAY_CALL(Accumulator_add, acc, a1);
  assert_true(get_f64(a2) == 3.0);
  RAY_REF(i64) ap = RAY_CALL(t_acc_param, acc);
  assert_int_equal(get_i64(ap), 1);
  /* The default constructor: no arguments, a zeroed state. */
  Blank blank = RAY_CALL(Blank_new);
  RAY_REF(i64) bb1 = Blank_bump(blank), bb2 = RAY_CALL(Blank_bump, blank);
  assert_int_equal(get_i64(bb1), 1);
  assert_int_equal(get_i64(bb2), 2);
  assert_rc(ray_ref_release(bb1.ref), 0);
  assert_rc(ray_ref_release(bb2.ref), 0);
  assert_rc(ray_actor_release(blank.actor), 0);

  const ray_ref_t all[] = {ten.ref, v.ref,  s.value.ref, s.calls.ref, s.text.ref, p.ref,
                           s7.ref,  sc.ref, g2.ref,      a1.ref,      a2.ref,     ap.ref};
  release_all(all, sizeof all / sizeof all[0]);
  assert_rc(ray_actor_release(c.actor), 0);
  assert_rc(ray_actor_release(c2.actor), 0);
  assert_rc(ray_actor_release(acc.actor), 0);
  wait_quiet();
  assert_int_equal(atomic_load(&g_ctor_runs), 2);
  assert_int_equal(atomic_load(&g_dtor_runs), 2); /* once per construction */
  rt_end();
}

static void test_actor_lifecycle(void **state) {
  (void)state;
  rt_begin();
  atomic_store(&g_ctor_runs, 0);
  atomic_store(&g_dtor_runs, 0);
  /* A failing constructor: calls fail with RAY_EACTORDIED caused by its
   * error; the state is freed without the destructor body. */
  Counter bad = Counter_new(-1);
  assert_rc(RAY_STATUS(bad), 0); /* created: the constructor runs later */
  RAY_REF(i64) r = Counter_get(bad);
  int64_t v;
  assert_rc(RAY_GET(r, RAY_TIMEOUT_INFINITE, &v), RAY_EACTORDIED);
  check_error(r.ref, RAY_EACTORDIED, "negative start -1");
  assert_rc(ray_ref_release(r.ref), 0);
  assert_rc(ray_actor_release(bad.actor), 0);

  /* A bad constructor argument (through the core API): named in the error. */
  ray_arg_t sarg = ray_arg_str("ten");
  ray_actor_t raw;
  assert_rc(ray_actor_create(&Counter__class, &sarg, 1, NULL, &raw), 0);
  ray_ref_t out;
  assert_rc(ray_actor_call(raw, "get", NULL, 0, NULL, &out), 0);
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &v), RAY_EACTORDIED);
  check_error(out, RAY_EACTORDIED, "Counter.__init__: argument 'start'");
  assert_rc(ray_ref_release(out), 0);
  assert_rc(ray_actor_release(raw), 0);
  wait_quiet();
  assert_int_equal(atomic_load(&g_ctor_runs), 0);
  assert_int_equal(atomic_load(&g_dtor_runs), 0);

  /* Restarts: quit() ends the actor; with a restart left, the destructor
   * then the constructor run again and later calls see a fresh state. */
  ray_actor_opts_t ao;
  ray_actor_opts_init(&ao);
  ao.max_restarts = 1;
  Counter c = RAY_CALL_OPTS(&ao, Counter_new, 5);
  RAY_REF(i64) i1 = Counter_incr(c, 1);
  assert_int_equal(get_i64(i1), 6);
  RAY_REF(i64) q = Counter_quit(c);
  assert_rc(RAY_GET(q, RAY_TIMEOUT_INFINITE, &v), RAY_EACTORDIED);
  RAY_REF(i64) i2 = Counter_incr(c, 1);
  assert_int_equal(get_i64(i2), 6); /* constructed again from 5 */
  assert_rc(ray_actor_kill(c.actor, true), 0);
  RAY_REF(i64) i3 = Counter_incr(c, 1);
  assert_rc(RAY_GET(i3, RAY_TIMEOUT_INFINITE, &v), RAY_EACTORDIED);
  const ray_ref_t all[] = {i1.ref, q.ref, i2.ref, i3.ref};
  release_all(all, sizeof all / sizeof all[0]);
  assert_rc(ray_actor_release(c.actor), 0);
  wait_quiet();
  assert_int_equal(atomic_load(&g_ctor_runs), 2);
  assert_int_equal(atomic_load(&g_dtor_runs), 2);
  rt_end();
}

static void test_actor_handle_param(void **state) {
  (void)state;
  rt_begin();
  Counter c = Counter_new(0);
  RAY_REF(i64) b1 = RAY_CALL(t_bump, c, 25);
  RAY_REF(i64) b2 = t_bump(c, 25);
  int64_t v1 = get_i64(b1), v2 = get_i64(b2);
  RAY_REF(i64) g = Counter_get(c);
  assert_int_equal(get_i64(g), 50);
  assert_true((v1 == 50 || v2 == 50) && v1 <= 50 && v2 <= 50);
  const ray_ref_t all[] = {b1.ref, b2.ref, g.ref};
  release_all(all, sizeof all / sizeof all[0]);
  /* The task borrowed the handle: releasing ours ends the actor. */
  assert_rc(ray_actor_release(c.actor), 0);
  wait_quiet();
  rt_end();
}

static void test_actor_named_and_checked(void **state) {
  (void)state;
  rt_begin();
  ray_actor_opts_t ao;
  ray_actor_opts_init(&ao);
  ao.name = "typed-counter";
  Counter c = RAY_CALL_OPTS(&ao, Counter_new, 7);
  assert_rc(RAY_STATUS(c), 0);
  Counter dup = RAY_CALL_OPTS(&ao, Counter_new, 8);
  assert_rc(RAY_STATUS(dup), RAY_ENAMEEXISTS);
  ao.name = "typed-acc";
  Accumulator a = RAY_CALL_OPTS(&ao, Accumulator_new);
  assert_rc(RAY_STATUS(a), 0);

  Counter found = RAY_ACTOR_GET(Counter, "typed-counter");
  assert_rc(RAY_STATUS(found), 0);
  assert_int_equal(found.actor.id, c.actor.id);
  RAY_REF(i64) g = Counter_get(found);
  assert_int_equal(get_i64(g), 7);
  assert_rc(ray_ref_release(g.ref), 0);
  assert_rc(ray_actor_release(found.actor), 0);
  /* The name of an actor of another class: RAY_ETYPE, nothing held. */
  Counter wrong = RAY_ACTOR_GET(Counter, "typed-acc");
  assert_rc(RAY_STATUS(wrong), RAY_ETYPE);
  Accumulator right = RAY_ACTOR_GET(Accumulator, "typed-acc");
  assert_rc(RAY_STATUS(right), 0);
  assert_rc(ray_actor_release(right.actor), 0);
  Counter nobody = RAY_ACTOR_GET(Counter, "nobody");
  assert_rc(RAY_STATUS(nobody), RAY_ENOTFOUND);
  /* Casts of untyped handles. */
  Accumulator as_acc = RAY_ACTOR_CAST(Accumulator, c.actor);
  assert_rc(RAY_STATUS(as_acc), RAY_ETYPE);
  Counter as_counter = RAY_ACTOR_CAST(Counter, c.actor);
  assert_int_equal(as_counter.actor.id, c.actor.id);
  ray_actor_t nil = {0};
  assert_rc(RAY_STATUS(RAY_ACTOR_CAST(Counter, nil)), RAY_ENOTFOUND);

  assert_rc(ray_actor_kill(c.actor, true), 0);
  assert_rc(ray_actor_kill(a.actor, true), 0);
  assert_rc(ray_actor_release(c.actor), 0);
  assert_rc(ray_actor_release(a.actor), 0);
  wait_quiet();
  rt_end();
}

/* ---- Concurrency ---------------------------------------------------------------- */

typedef struct {
  Counter c;
  int calls;
  rt_errs_t *errs;
  atomic_llong sum;
} client_t;

static void client_run(void *arg) {
  client_t *cl = arg;
  for (int i = 0; i < cl->calls; i++) {
    RAY_REF(i64) r = RAY_CALL(t_add, i, 1);
    RAY_REF(i64) s = RAY_CALL(Counter_incr, cl->c, r);
    int64_t v = 0;
    int rc = RAY_GET(s, RAY_TIMEOUT_INFINITE, &v);
    RT_CHECK(cl->errs, rc == 0, rc);
    RT_CHECK(cl->errs, ray_ref_release(r.ref) == 0, -1);
    RT_CHECK(cl->errs, ray_ref_release(s.ref) == 0, -1);
    atomic_fetch_add(&cl->sum, i + 1);
  }
}

static void test_concurrent_callers(void **state) {
  (void)state;
  rt_begin();
  rt_errs_t errs;
  rt_errs_init(&errs);
  enum { THREADS = 4 };
  client_t cl;
  cl.c = Counter_new(0);
  cl.calls = rt_iters(200, 20);
  cl.errs = &errs;
  atomic_init(&cl.sum, 0);
  uv_thread_t th[THREADS];
  for (int t = 0; t < THREADS; t++) assert_int_equal(uv_thread_create(&th[t], client_run, &cl), 0);
  for (int t = 0; t < THREADS; t++) assert_int_equal(uv_thread_join(&th[t]), 0);
  rt_errs_assert(&errs);
  RAY_REF(i64) g = Counter_get(cl.c);
  assert_int_equal(get_i64(g), atomic_load(&cl.sum));
  assert_rc(ray_ref_release(g.ref), 0);
  assert_rc(ray_actor_release(cl.c.actor), 0);
  wait_quiet();
  rt_end();
}

static void test_class_table_full(void **state) {
  (void)state;
  rt_begin();
  Wide w = Wide_new();
  RAY_REF(i64)
  r[12] = {Wide_m1(w), Wide_m2(w), Wide_m3(w), Wide_m4(w),  Wide_m5(w),  Wide_m6(w),
           Wide_m7(w), Wide_m8(w), Wide_m9(w), Wide_m10(w), Wide_m11(w), Wide_m12(w)};
  int ok = 0, full = 0;
  for (int k = 0; k < 12; k++) {
    if (RAY_STATUS(r[k]) == RAY_EINVAL) {
      full++;
      continue;
    }
    assert_int_equal(get_i64(r[k]), k + 1);
    assert_rc(ray_ref_release(r[k].ref), 0);
    ok++;
  }
  assert_int_equal(ok, 11);
  assert_int_equal(full, 1);
  assert_int_equal(Wide__class.num_methods, 12);
  assert_rc(ray_actor_release(w.actor), 0);
  wait_quiet();
  rt_end();
}

static void test_str_format(void **state) {
  (void)state;
  char *s = ray_str_format("%d-%s", 7, "x");
  assert_string_equal(s, "7-x");
  free(s);
  s = ray_str_format("%s", "");
  assert_string_equal(s, "");
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get_every_kind),
      cmocka_unit_test(test_put_get_errors),
      cmocka_unit_test(test_function_values),
      cmocka_unit_test(test_function_refs),
      cmocka_unit_test(test_function_several_returns),
      cmocka_unit_test(test_function_failures),
      cmocka_unit_test(test_failed_refs_propagate),
      cmocka_unit_test(test_call_opts),
      cmocka_unit_test(test_nested),
      cmocka_unit_test(test_reinit),
      cmocka_unit_test(test_actor_calls),
      cmocka_unit_test(test_actor_lifecycle),
      cmocka_unit_test(test_actor_handle_param),
      cmocka_unit_test(test_actor_named_and_checked),
      cmocka_unit_test(test_concurrent_callers),
      cmocka_unit_test(test_class_table_full),
      cmocka_unit_test(test_str_format),
  };
  rt_main_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
