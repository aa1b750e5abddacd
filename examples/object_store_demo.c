/* object_store_demo.c - a tour of librustyray's object store.
 *
 * The first program to run (`bash scripts/dev.sh demo`). It walks through:
 *   1. starting the runtime with a configuration
 *   2. put/get of raw bytes (a zero-copy view)
 *   3. typed values: int64, double, string, msgpack; a typed get on the
 *      wrong type
 *   4. a batch put and a batch get
 *   5. wait: which refs are ready, in input order, without reading them
 *   6. reference counting: retain, release, and a released ref's error
 *   7. statistics: everything released, the store is empty
 *   8. an on_ready callback, run on the runtime's loop thread
 *   9. structured errors: a cause chain, formatted
 *  10. shutdown, and a view that outlives it
 *
 * It checks every value it reads back and every return code, and exits
 * non-zero on the first mismatch, so it doubles as a test (ctest runs it as
 * example_object_store_demo). */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rustyray.h"

/* ---- Checking helpers ----------------------------------------------------- */

/* CHECK(call): the call must succeed; otherwise say which one and why. */
#define CHECK(call)                                                                   \
  do {                                                                                \
    int check_rc_ = (call);                                                           \
    if (check_rc_ != RAY_OK) {                                                        \
      fprintf(stderr, "object_store_demo:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                      \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

/* EXPECT(cond): a value read back must be what the demo put in. */
#define EXPECT(cond)                                                            \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "object_store_demo:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                                  \
    }                                                                           \
  } while (0)

/* EXPECT_CODE(call, code): the call must fail with exactly this code. */
#define EXPECT_CODE(call, code)                                                               \
  do {                                                                                        \
    int expect_rc_ = (call);                                                                  \
    if (expect_rc_ != (code)) {                                                               \
      fprintf(stderr, "object_store_demo:%d: %s returned %s, expected %s\n", __LINE__, #call, \
              ray_err_name(expect_rc_), ray_err_name(code));                                  \
      exit(1);                                                                                \
    }                                                                                         \
  } while (0)

static void section(const char *title) {
  printf("\n== %s\n", title);
}

/* ---- on_ready: the callback runs on the loop thread ----------------------- */

typedef struct {
  uv_mutex_t lock;
  uv_cond_t cond;
  int calls;
  int status;
  uint64_t id;
  bool on_caller_thread;
  uv_thread_t caller;
} ready_state_t;

static void on_ready(ray_ref_t ref, int status, void *arg) {
  ready_state_t *st = arg;
  uv_thread_t self = uv_thread_self();
  uv_mutex_lock(&st->lock);
  st->calls++;
  st->status = status;
  st->id = ref.id;
  st->on_caller_thread = uv_thread_equal(&self, &st->caller) != 0;
  uv_cond_signal(&st->cond);
  uv_mutex_unlock(&st->lock);
}

/* ---- The tour -------------------------------------------------------------- */

static void demo_bytes(void) {
  section("put / get of bytes");
  const char msg[] = "hello, rustyray";
  ray_ref_t ref;
  CHECK(ray_put(msg, sizeof msg, &ref));
  printf("ray_put(\"%s\") -> ref id=%" PRIu64 " type=%" PRIu32 " (RAY_TYPE_BYTES)\n", msg, ref.id,
         ref.type);
  EXPECT(ref.id != 0 && ref.type == RAY_TYPE_BYTES);

  /* ray_get pins a zero-copy, read-only view of the stored payload. */
  ray_buf_t buf;
  CHECK(ray_get(ref, RAY_TIMEOUT_INFINITE, &buf));
  printf("ray_get -> %zu bytes: \"%s\"\n", buf.size, (const char *)buf.data);
  EXPECT(buf.size == sizeof msg && memcmp(buf.data, msg, sizeof msg) == 0);
  EXPECT(buf.data != (const void *)msg); /* ray_put copied it */
  ray_buf_release(&buf);
  EXPECT(buf.data == NULL); /* release zeroes the view */

  CHECK(ray_ref_release(ref));
}

static int g_owned_frees;
static void free_counting(void *p, void *arg) {
  (void)arg;
  g_owned_frees++;
  free(p);
}

static void demo_owned(void) {
  section("put_owned: hand a buffer over, no copy");
  size_t n = 1 << 20;
  unsigned char *big = malloc(n);
  EXPECT(big != NULL);
  for (size_t i = 0; i < n; i++) big[i] = (unsigned char)i;
  ray_ref_t ref;
  CHECK(ray_put_owned(big, n, free_counting, NULL, &ref));
  ray_buf_t buf;
  CHECK(ray_get(ref, 0, &buf));
  printf("ray_put_owned(1 MiB) -> the view points at the caller's buffer: %s\n",
         buf.data == big ? "yes" : "no");
  EXPECT(buf.data == big && buf.size == n);
  ray_buf_release(&buf);
  CHECK(ray_ref_release(ref)); /* last reference: the store calls free_counting once */
  printf("after the last release, free_fn ran %d time(s)\n", g_owned_frees);
  EXPECT(g_owned_frees == 1);
}

static void demo_typed(void) {
  section("typed values (msgpack-encoded, tagged with their type)");
  ray_ref_t ri, rf, rs, rm;

  CHECK(ray_put_i64(-1234567890123, &ri));
  int64_t i;
  CHECK(ray_get_i64(ri, 0, &i));
  printf("i64: %" PRId64 "\n", i);
  EXPECT(ri.type == RAY_TYPE_I64 && i == -1234567890123);

  CHECK(ray_put_f64(3.14159, &rf));
  double f;
  CHECK(ray_get_f64(rf, 0, &f));
  printf("f64: %g\n", f);
  EXPECT(rf.type == RAY_TYPE_F64 && f == 3.14159);

  CHECK(ray_put_str("Ray Core, in one process", &rs));
  char *s;
  size_t len;
  CHECK(ray_get_str(rs, 0, &s, &len));
  printf("str: \"%s\" (%zu bytes)\n", s, len);
  EXPECT(rs.type == RAY_TYPE_STR && len == 24 && strcmp(s, "Ray Core, in one process") == 0);
  ray_free(s);

  /* Any msgpack value: here the array [1, "two", 3.5, true]. */
  msgpack_object items[4];
  memset(items, 0, sizeof items);
  items[0].type = MSGPACK_OBJECT_POSITIVE_INTEGER;
  items[0].via.u64 = 1;
  items[1].type = MSGPACK_OBJECT_STR;
  items[1].via.str.ptr = "two";
  items[1].via.str.size = 3;
  items[2].type = MSGPACK_OBJECT_FLOAT64;
  items[2].via.f64 = 3.5;
  items[3].type = MSGPACK_OBJECT_BOOLEAN;
  items[3].via.boolean = true;
  msgpack_object arr;
  memset(&arr, 0, sizeof arr);
  arr.type = MSGPACK_OBJECT_ARRAY;
  arr.via.array.size = 4;
  arr.via.array.ptr = items;
  CHECK(ray_put_msgpack(&arr, &rm));

  ray_msgpack_t m;
  CHECK(ray_get_msgpack(rm, 0, &m));
  printf("msgpack: ");
  msgpack_object_print(stdout, m.obj);
  printf("\n");
  EXPECT(rm.type == RAY_TYPE_MSGPACK);
  EXPECT(m.obj.type == MSGPACK_OBJECT_ARRAY && m.obj.via.array.size == 4);
  const msgpack_object *o = m.obj.via.array.ptr;
  EXPECT(o[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER && o[0].via.u64 == 1);
  EXPECT(o[1].type == MSGPACK_OBJECT_STR && o[1].via.str.size == 3 &&
         memcmp(o[1].via.str.ptr, "two", 3) == 0);
  EXPECT(o[2].type == MSGPACK_OBJECT_FLOAT64 && o[2].via.f64 == 3.5);
  EXPECT(o[3].type == MSGPACK_OBJECT_BOOLEAN && o[3].via.boolean);
  ray_msgpack_release(&m);

  /* A typed get checks the tag before decoding anything. */
  int64_t wrong;
  int rc = ray_get_i64(rs, 0, &wrong);
  printf("ray_get_i64 on the string ref -> %s (%s)\n", ray_err_name(rc), ray_strerror(rc));
  EXPECT(rc == RAY_ETYPE);

  CHECK(ray_ref_release(ri));
  CHECK(ray_ref_release(rf));
  CHECK(ray_ref_release(rs));
  CHECK(ray_ref_release(rm));
}

#define NBATCH 4

static void demo_batch_and_wait(void) {
  section("batch put / batch get");
  const char *words[NBATCH] = {"alpha", "beta", "gamma", "delta"};
  const void *data[NBATCH];
  size_t sizes[NBATCH];
  for (int i = 0; i < NBATCH; i++) {
    data[i] = words[i];
    sizes[i] = strlen(words[i]);
  }
  ray_ref_t refs[NBATCH];
  CHECK(ray_put_batch(data, sizes, NBATCH, refs)); /* one lock per shard touched */

  ray_buf_t bufs[NBATCH];
  CHECK(ray_get_batch(refs, NBATCH, RAY_TIMEOUT_INFINITE, bufs)); /* in input order */
  for (int i = 0; i < NBATCH; i++) {
    printf("  [%d] id=%" PRIu64 " \"%.*s\"\n", i, refs[i].id, (int)bufs[i].size,
           (const char *)bufs[i].data);
    EXPECT(bufs[i].size == sizes[i] && memcmp(bufs[i].data, words[i], sizes[i]) == 0);
    ray_buf_release(&bufs[i]);
  }

  section("wait: flag the first num_returns ready refs, without reading them");
  bool ready[NBATCH];
  int n = ray_wait(refs, NBATCH, 2, 0, ready);
  printf("ray_wait(4 refs, num_returns=2, timeout 0) -> %d flagged:", n);
  for (int i = 0; i < NBATCH; i++) printf(" %s", ready[i] ? "ready" : "-");
  printf("\n");
  EXPECT(n == 2 && ready[0] && ready[1] && !ready[2] && !ready[3]);

  n = ray_wait(refs, NBATCH, NBATCH, 1000, ready);
  EXPECT(n == NBATCH && ready[0] && ready[1] && ready[2] && ready[3]);

  EXPECT_CODE(ray_wait(refs, NBATCH, NBATCH + 1, 0, ready), RAY_EINVAL);
  printf("num_returns > n -> EINVAL\n");

  for (int i = 0; i < NBATCH; i++) CHECK(ray_ref_release(refs[i]));
}

static void demo_on_ready(void) {
  section("on_ready: a callback on the runtime's loop thread");
  ready_state_t st;
  memset(&st, 0, sizeof st);
  EXPECT(uv_mutex_init(&st.lock) == 0 && uv_cond_init(&st.cond) == 0);
  st.caller = uv_thread_self();

  ray_ref_t ref;
  CHECK(ray_put_i64(7, &ref));
  CHECK(ray_ref_on_ready(ref, on_ready, &st));
  /* The registration holds its own reference (dropped after the callback
   * returns): releasing ours now is fine. */
  CHECK(ray_ref_release(ref));

  uv_mutex_lock(&st.lock);
  while (st.calls == 0) uv_cond_wait(&st.cond, &st.lock);
  uv_mutex_unlock(&st.lock);
  printf("callback ran for id=%" PRIu64 " with status %s, on %s\n", st.id, ray_err_name(st.status),
         st.on_caller_thread ? "the caller's thread" : "the loop thread");
  EXPECT(st.calls == 1 && st.status == RAY_OK && st.id == ref.id && !st.on_caller_thread);

  uv_cond_destroy(&st.cond);
  uv_mutex_destroy(&st.lock);
}

static void demo_refcount(void) {
  section("reference counting");
  ray_ref_t ref;
  CHECK(ray_put_str("shared", &ref));
  CHECK(ray_ref_retain(ref));  /* now two references */
  CHECK(ray_ref_release(ref)); /* one left: still readable */
  char *s;
  CHECK(ray_get_str(ref, 0, &s, NULL));
  EXPECT(strcmp(s, "shared") == 0);
  ray_free(s);
  CHECK(ray_ref_release(ref)); /* last one: freed, and its id is never reused */

  ray_buf_t buf;
  int rc = ray_get(ref, 0, &buf);
  printf("ray_get on a released ref -> %s (%s)\n", ray_err_name(rc), ray_strerror(rc));
  EXPECT(rc == RAY_ENOTFOUND && buf.data == NULL);
  EXPECT_CODE(ray_ref_release(ref), RAY_ENOTFOUND);
  EXPECT_CODE(ray_get(RAY_REF_NIL, 0, &buf), RAY_ENOTFOUND);
}

static void demo_errors(void) {
  section("structured errors: a cause chain");
  /* A task "load_data" failed on its 3rd attempt; the task that consumed its
   * result failed with it as the cause. (Failed tasks store such errors in
   * the store in place of their results; ray_get then returns the code and
   * ray_get_error() the whole chain.) */
  ray_error_t *root, *top;
  CHECK(ray_error_new(&root, RAY_ETASK, "load_data", "cannot open %s", "input.csv"));
  CHECK(ray_error_set_task_id(root, 41));
  CHECK(ray_error_set_attempts(root, 3));
  CHECK(ray_error_new(&top, RAY_EDEPFAILED, "consumer", NULL));
  CHECK(ray_error_set_task_id(top, 42));
  CHECK(ray_error_set_cause(top, root)); /* top owns root now */

  int need = ray_error_format(top, NULL, 0); /* snprintf rules: ask the length */
  EXPECT(need > 0);
  char *text = malloc((size_t)need + 1);
  EXPECT(text != NULL);
  EXPECT(ray_error_format(top, text, (size_t)need + 1) == need);
  printf("%s%s", text, text[need - 1] == '\n' ? "" : "\n");
  EXPECT(strstr(text, "EDEPFAILED") != NULL && strstr(text, "consumer") != NULL);
  EXPECT(strstr(text, "caused by") != NULL && strstr(text, "ETASK") != NULL);
  EXPECT(strstr(text, "cannot open input.csv") != NULL && strstr(text, "load_data") != NULL);
  EXPECT(strstr(text, "EDEPFAILED") < strstr(text, "ETASK")); /* outermost first */
  free(text);

  const ray_error_t *cause = ray_error_cause(top);
  EXPECT(ray_error_code(top) == RAY_EDEPFAILED && cause != NULL);
  EXPECT(ray_error_code(cause) == RAY_ETASK && ray_error_attempts(cause) == 3);
  EXPECT(ray_error_task_id(cause) == 41 && strcmp(ray_error_origin(cause), "load_data") == 0);
  EXPECT(ray_error_cause(cause) == NULL);
  ray_error_free(top); /* frees the whole chain */
}

static void demo_stats(const ray_config_t *cfg) {
  section("stats");
  ray_stats_t st;
  CHECK(ray_stats(&st));
  printf("objects %" PRIu64 ", bytes %" PRIu64 ", created %" PRIu64 ", freed %" PRIu64
         ", workers %" PRIu64 ", shards %" PRIu64 "\n",
         st.objects, st.bytes_in_memory, st.objects_created, st.objects_freed, st.num_workers,
         st.num_shards);
  /* Everything above was released: the store is empty again. (Checked
   * before the on_ready demo: that registration's reference is dropped on
   * the loop thread just after its callback returns, asynchronously.) */
  EXPECT(st.objects == 0 && st.bytes_in_memory == 0);
  EXPECT(st.objects_created >= 11 && st.objects_created == st.objects_freed);
  EXPECT(st.num_workers == 2 && st.num_shards == cfg->num_shards);
}

int main(void) {
  printf("librustyray %s: object store demo\n", ray_version());
  EXPECT(ray_version_hex() == RAY_VERSION_HEX); /* headers match the library */

  section("runtime");
  EXPECT_CODE(ray_put_i64(1, &(ray_ref_t){0, 0}), RAY_ENOTINIT); /* not started yet */
  ray_config_t cfg;
  CHECK(ray_config_init(&cfg)); /* defaults, then RAY_* environment variables */
  cfg.num_workers = 2;
  CHECK(ray_init(&cfg));
  EXPECT(ray_is_initialized());
  EXPECT_CODE(ray_init(&cfg), RAY_EALREADY);
  printf("ray_init: %u workers, %u shards, inline threshold %zu bytes\n", cfg.num_workers,
         cfg.num_shards, cfg.inline_threshold);

  demo_bytes();
  demo_owned();
  demo_typed();
  demo_batch_and_wait();
  demo_refcount();
  demo_stats(&cfg);
  demo_on_ready();
  demo_errors();

  section("shutdown");
  /* A view stays valid after every ref is released, and even after shutdown. */
  ray_ref_t ref;
  CHECK(ray_put("still here", 11, &ref));
  ray_buf_t view;
  CHECK(ray_get(ref, 0, &view));
  CHECK(ray_ref_release(ref));
  CHECK(ray_shutdown());
  EXPECT(!ray_is_initialized());
  printf("after ray_shutdown, a view taken before still reads \"%s\"\n", (const char *)view.data);
  EXPECT(view.size == 11 && strcmp(view.data, "still here") == 0);
  ray_buf_release(&view);
  EXPECT_CODE(ray_put("x", 1, &ref), RAY_ENOTINIT);
  EXPECT_CODE(ray_shutdown(), RAY_ENOTINIT);
  printf("calls after shutdown -> ENOTINIT\n");

  printf("\nobject_store_demo: all checks passed\n");
  return 0;
}
