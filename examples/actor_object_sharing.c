/* actor_object_sharing.c - actors and tasks share large objects through the
 * object store, with no copies.
 *
 * In Ray, actors and tasks exchange big data by ObjectRef: the producer puts
 * it in the object store once, and every consumer reads that same memory.
 * Here the store is in the process, so "no copies" can be shown directly:
 * every reader reports the address it read from, and they are all the
 * address of the buffer the producer allocated.
 *
 *                       Producer actor
 *                  make(16 MiB) -> [data, address]     (ray_return_owned:
 *                      |                                the buffer is handed
 *        +-------------+---------------+----------+     over, not copied)
 *        |             |               |          |
 *   checksum task  Reader A.digest  Reader B.digest  the host's ray_get
 *        \             |               /          /
 *         -- all four read the producer's buffer, at its address --
 *
 * Then: Reader A keeps the ref in its state (Ray's borrowing: the object
 * lives as long as someone holds a reference), the host drops its own, and
 * A still reads the same bytes later; the buffer is freed once A lets go.
 * Last, the host hands its own buffer to the store (ray_put_owned) and an
 * actor reads it in place.
 *
 * It checks every value and return code and exits non-zero on a mismatch,
 * so it doubles as a test (example_actor_object_sharing). */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rustyray.h"

#define MIB ((size_t)1 << 20)
#define OBJECT_MIB 16 /* big enough to matter, small enough for valgrind */

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                                      \
  do {                                                                                   \
    int check_rc_ = (call);                                                              \
    if (check_rc_ != RAY_OK) {                                                           \
      fprintf(stderr, "actor_object_sharing:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                         \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

#define EXPECT(cond)                                                               \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "actor_object_sharing:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

#define WAIT_UNTIL(cond)                                                                         \
  do {                                                                                           \
    uint64_t wait_deadline_ = uv_hrtime() + 60 * (uint64_t)1000000000;                           \
    while (!(cond)) {                                                                            \
      if (uv_hrtime() > wait_deadline_) {                                                        \
        fprintf(stderr, "actor_object_sharing:%d: timed out waiting for %s\n", __LINE__, #cond); \
        exit(1);                                                                                 \
      }                                                                                          \
      uv_sleep(1);                                                                               \
    }                                                                                            \
  } while (0)

#define TRY(ctx, call)                                                         \
  do {                                                                         \
    int try_rc_ = (call);                                                      \
    if (try_rc_ != RAY_OK)                                                     \
      return ray_fail((ctx), try_rc_, "%s: %s", #call, ray_err_name(try_rc_)); \
  } while (0)

static int64_t get_i64(const char *what, ray_ref_t ref) {
  int64_t v = 0;
  int rc = ray_get_i64(ref, RAY_TIMEOUT_INFINITE, &v);
  if (rc != RAY_OK) {
    ray_error_t *err = NULL;
    char text[2048] = "(no error object)";
    if (ray_get_error(ref, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
    ray_error_free(err);
    fprintf(stderr, "actor_object_sharing: %s failed with %s:\n%s\n", what, ray_err_name(rc), text);
    exit(1);
  }
  return v;
}

/* ---- The data ----------------------------------------------------------------- */

/* Word i of the object made with `seed`. */
static uint64_t word(uint64_t seed, size_t i) {
  uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull + i;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

/* A checksum every reader computes the same way (kept to 63 bits so it
 * round-trips through an i64 result unchanged). */
static int64_t checksum_of(const void *data, size_t size) {
  const uint64_t *w = data;
  uint64_t sum = 0;
  for (size_t i = 0; i < size / sizeof *w; i++) sum = (sum ^ w[i]) * 31 + 7;
  return (int64_t)(sum >> 1);
}

static atomic_int g_big_frees; /* producer buffers freed by the store */

static void big_free(void *p, void *arg) {
  (void)arg;
  free(p);
  atomic_fetch_add(&g_big_frees, 1);
}

static int64_t addr_of(const void *p) {
  return (int64_t)(intptr_t)p;
}

/* ---- Producer: an actor that makes big objects ----------------------------- */

typedef struct producer_s {
  int64_t made; /* objects made so far */
} producer_t;

static int producer_ctor(ray_task_ctx_t *ctx, void **state) {
  producer_t *p = calloc(1, sizeof *p);
  if (p == NULL) return ray_fail(ctx, RAY_ENOMEM, "Producer: no memory");
  *state = p;
  return 0;
}

/* make(mib, seed) -> [bytes data, i64 address]: fills a fresh buffer and
 * hands it to the store without copying (the store frees it with
 * big_free when the last reference and view are gone). */
static int producer_make(ray_task_ctx_t *ctx, void *state) {
  producer_t *p = state;
  int64_t mib, seed;
  TRY(ctx, ray_ctx_arg_i64(ctx, 0, &mib));
  TRY(ctx, ray_ctx_arg_i64(ctx, 1, &seed));
  if (mib <= 0 || mib > 1024) return ray_fail(ctx, RAY_EINVAL, "make: %" PRId64 " MiB", mib);
  size_t size = (size_t)mib * MIB;
  uint64_t *buf = malloc(size);
  if (buf == NULL) return ray_fail(ctx, RAY_ENOMEM, "make: no memory for %" PRId64 " MiB", mib);
  for (size_t i = 0; i < size / sizeof *buf; i++) buf[i] = word((uint64_t)seed, i);
  int rc = ray_return_owned(ctx, 0, buf, size, big_free, NULL);
  if (rc != RAY_OK) free(buf); /* on error the buffer is still ours */
  TRY(ctx, rc);
  p->made++;
  return ray_return_i64(ctx, 1, addr_of(buf));
}

/* ---- Reader: an actor that reads objects, and can keep one --------------- */

typedef struct reader_s {
  int64_t bytes_read; /* its own state: plain fields, one call at a time */
  ray_ref_t kept;     /* a ref it holds on to (RAY_REF_NIL: none) */
} reader_t;

static int reader_ctor(ray_task_ctx_t *ctx, void **state) {
  reader_t *r = calloc(1, sizeof *r);
  if (r == NULL) return ray_fail(ctx, RAY_ENOMEM, "Reader: no memory");
  *state = r;
  return 0;
}

static void reader_dtor(void *state) {
  reader_t *r = state;
  if (r->kept.id != 0) ray_ref_release(r->kept); /* normally dropped by drop() */
  free(r);
}

/* digest(data) -> [i64 checksum, i64 address read]: the argument is a ref,
 * resolved before the call runs; the bytes are read where they lie. */
static int reader_digest(ray_task_ctx_t *ctx, void *state) {
  reader_t *r = state;
  const void *data;
  size_t size;
  TRY(ctx, ray_ctx_arg_bytes(ctx, 0, &data, &size));
  r->bytes_read += (int64_t)size;
  TRY(ctx, ray_return_i64(ctx, 0, checksum_of(data, size)));
  return ray_return_i64(ctx, 1, addr_of(data));
}

/* keep(data) -> i64 size: holds a reference to the argument's object in
 * the actor's state (the call's own reference ends with the call). */
static int reader_keep(ray_task_ctx_t *ctx, void *state) {
  reader_t *r = state;
  ray_ref_t ref;
  TRY(ctx, ray_ctx_arg_ref(ctx, 0, &ref)); /* borrowed for the call ... */
  TRY(ctx, ray_ref_retain(ref));           /* ... now the actor owns one */
  if (r->kept.id != 0) ray_ref_release(r->kept);
  r->kept = ref;
  const void *data;
  size_t size;
  TRY(ctx, ray_ctx_arg_bytes(ctx, 0, &data, &size));
  return ray_return_i64(ctx, 0, (int64_t)size);
}

/* peek() -> [i64 checksum, i64 address]: reads the kept object again. */
static int reader_peek(ray_task_ctx_t *ctx, void *state) {
  reader_t *r = state;
  if (r->kept.id == 0) return ray_fail(ctx, RAY_ENOTFOUND, "peek: nothing kept");
  ray_buf_t view;
  TRY(ctx, ray_get(r->kept, RAY_TIMEOUT_INFINITE, &view));
  int64_t sum = checksum_of(view.data, view.size), addr = addr_of(view.data);
  ray_buf_release(&view);
  TRY(ctx, ray_return_i64(ctx, 0, sum));
  return ray_return_i64(ctx, 1, addr);
}

/* drop() -> i64 0: lets go of the kept object. */
static int reader_drop(ray_task_ctx_t *ctx, void *state) {
  reader_t *r = state;
  if (r->kept.id != 0) TRY(ctx, ray_ref_release(r->kept));
  r->kept = RAY_REF_NIL;
  return ray_return_i64(ctx, 0, 0);
}

/* total() -> i64: bytes this reader has read. */
static int reader_total(ray_task_ctx_t *ctx, void *state) {
  reader_t *r = state;
  return ray_return_i64(ctx, 0, r->bytes_read);
}

static const uint32_t k_bytes_i64[] = {RAY_TYPE_BYTES, RAY_TYPE_I64};
static const uint32_t k_i64_i64[] = {RAY_TYPE_I64, RAY_TYPE_I64};
static const uint32_t k_i64[] = {RAY_TYPE_I64};

static const ray_method_def_t k_producer_methods[] = {{"make", producer_make, k_bytes_i64, 2}};
static const ray_actor_class_t k_producer = {"Producer", producer_ctor, free, k_producer_methods,
                                             1};

static const ray_method_def_t k_reader_methods[] = {
    {"digest", reader_digest, k_i64_i64, 2}, {"keep", reader_keep, k_i64, 1},
    {"peek", reader_peek, k_i64_i64, 2},     {"drop", reader_drop, k_i64, 1},
    {"total", reader_total, k_i64, 1},
};
static const ray_actor_class_t k_reader = {"Reader", reader_ctor, reader_dtor, k_reader_methods, 5};

/* ---- A plain task that reads the object too ---------------------------------- */

/* checksum(data) -> [i64 checksum, i64 address read]. */
static int checksum_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *data;
  size_t size;
  TRY(ctx, ray_ctx_arg_bytes(ctx, 0, &data, &size));
  TRY(ctx, ray_return_i64(ctx, 0, checksum_of(data, size)));
  return ray_return_i64(ctx, 1, addr_of(data));
}

/* ---- The program ------------------------------------------------------------ */

static void print_mem(const char *when) {
  ray_stats_t s;
  CHECK(ray_stats(&s));
  printf("  [store %s: %" PRIu64 " objects, %.2f MiB in memory]\n", when, s.objects,
         (double)s.bytes_in_memory / (double)MIB);
}

/* A pair of i64 results: (checksum, address). */
static void get_pair(const char *what, const ray_ref_t pair[2], int64_t *sum, int64_t *addr) {
  *sum = get_i64(what, pair[0]);
  *addr = get_i64(what, pair[1]);
  CHECK(ray_ref_release(pair[0]));
  CHECK(ray_ref_release(pair[1]));
}

int main(void) {
  CHECK(ray_init(NULL));
  const size_t size = (size_t)OBJECT_MIB * MIB;
  const int64_t seed = 7;

  ray_actor_t producer, reader_a, reader_b;
  CHECK(ray_actor_create(&k_producer, NULL, 0, NULL, &producer));
  CHECK(ray_actor_create(&k_reader, NULL, 0, NULL, &reader_a));
  CHECK(ray_actor_create(&k_reader, NULL, 0, NULL, &reader_b));
  const uint32_t t2[] = {RAY_TYPE_I64, RAY_TYPE_I64};
  ray_function_t f_checksum;
  CHECK(ray_function_register("checksum", checksum_task, NULL, t2, 2, &f_checksum));
  printf("actors: Producer %" PRIu64 ", Reader A %" PRIu64 ", Reader B %" PRIu64
         "; task: checksum\n",
         producer.id, reader_a.id, reader_b.id);

  /* 1. One big object, four readers. Everything is submitted before the
   *    object exists: the readers' calls wait for it without holding a worker. */
  printf("\n== Producer.make(%d MiB) and four readers, submitted at once\n", OBJECT_MIB);
  ray_arg_t make_args[] = {ray_arg_i64(OBJECT_MIB), ray_arg_i64(seed)};
  ray_ref_t made[2]; /* [data, address] */
  CHECK(ray_actor_call(producer, "make", make_args, 2, NULL, made));
  ray_ref_t data = made[0];
  ray_arg_t by_ref = ray_arg_ref(data);
  ray_ref_t via_task[2], via_a[2], via_b[2];
  CHECK(ray_task_submit(f_checksum, &by_ref, 1, NULL, via_task));
  CHECK(ray_actor_call(reader_a, "digest", &by_ref, 1, NULL, via_a));
  CHECK(ray_actor_call(reader_b, "digest", &by_ref, 1, NULL, via_b));

  int64_t made_at = get_i64("make", made[1]);
  CHECK(ray_ref_release(made[1]));
  ray_buf_t view;
  CHECK(ray_get(data, RAY_TIMEOUT_INFINITE, &view));
  EXPECT(view.size == size);
  int64_t expected = checksum_of(view.data, view.size);

  /* What the data should be, recomputed here, word by word. */
  const uint64_t *w = view.data;
  size_t bad = 0;
  for (size_t i = 0; i < size / sizeof *w; i++) bad += w[i] != word((uint64_t)seed, i);
  EXPECT(bad == 0);

  int64_t s_task, a_task, s_a, a_a, s_b, a_b;
  get_pair("checksum", via_task, &s_task, &a_task);
  get_pair("Reader A.digest", via_a, &s_a, &a_a);
  get_pair("Reader B.digest", via_b, &s_b, &a_b);
  printf("  %-24s %-20s %s\n", "who", "checksum", "address of the bytes");
  printf("  %-24s %-20s 0x%" PRIx64 "\n", "Producer (allocated)", "-", (uint64_t)made_at);
  printf("  %-24s %-20" PRId64 " 0x%" PRIx64 "\n", "host ray_get view", expected,
         (uint64_t)addr_of(view.data));
  printf("  %-24s %-20" PRId64 " 0x%" PRIx64 "\n", "checksum task", s_task, (uint64_t)a_task);
  printf("  %-24s %-20" PRId64 " 0x%" PRIx64 "\n", "Reader A.digest", s_a, (uint64_t)a_a);
  printf("  %-24s %-20" PRId64 " 0x%" PRIx64 "\n", "Reader B.digest", s_b, (uint64_t)a_b);
  EXPECT(s_task == expected && s_a == expected && s_b == expected);
  EXPECT(addr_of(view.data) == made_at && a_task == made_at && a_a == made_at && a_b == made_at);
  printf("  same checksum, same address everywhere: one buffer, zero copies\n");

  ray_stats_t st;
  CHECK(ray_stats(&st));
  printf("  [store: %" PRIu64 " objects, %.2f MiB in memory for a %d MiB object]\n", st.objects,
         (double)st.bytes_in_memory / (double)MIB, OBJECT_MIB);
  /* One copy of the big object; the small results are a few bytes each. */
  EXPECT(st.bytes_in_memory >= size && st.bytes_in_memory < size + MIB);

  /* 2. Borrowing: Reader A keeps a reference; the host drops its own. */
  printf("\n== Reader A keeps the object; the host lets go of it\n");
  ray_ref_t r;
  CHECK(ray_actor_call(reader_a, "keep", &by_ref, 1, NULL, &r));
  EXPECT(get_i64("keep", r) == (int64_t)size);
  CHECK(ray_ref_release(r));
  ray_buf_release(&view);
  CHECK(ray_ref_release(data)); /* the host holds nothing now */
  ray_ref_t peek[2];
  CHECK(ray_actor_call(reader_a, "peek", NULL, 0, NULL, peek));
  int64_t s_peek, a_peek;
  get_pair("Reader A.peek", peek, &s_peek, &a_peek);
  printf("  Reader A.peek(): checksum %" PRId64 " at 0x%" PRIx64
         " (still the producer's buffer); freed so far: %d\n",
         s_peek, (uint64_t)a_peek, atomic_load(&g_big_frees));
  EXPECT(s_peek == expected && a_peek == made_at && atomic_load(&g_big_frees) == 0);
  CHECK(ray_actor_call(reader_a, "drop", NULL, 0, NULL, &r));
  EXPECT(get_i64("drop", r) == 0);
  CHECK(ray_ref_release(r));
  WAIT_UNTIL(atomic_load(&g_big_frees) == 1); /* the last reference went with drop() */
  printf("  Reader A.drop(): the last reference is gone, the buffer is freed (%d free)\n",
         atomic_load(&g_big_frees));
  print_mem("now");

  /* 3. The host's own buffer, handed over without a copy and read in place. */
  printf("\n== the host hands a %d MiB buffer to the store (ray_put_owned)\n", OBJECT_MIB);
  uint64_t *mine = malloc(size);
  EXPECT(mine != NULL);
  for (size_t i = 0; i < size / sizeof *mine; i++) mine[i] = word(99, i);
  int64_t mine_sum = checksum_of(mine, size), mine_at = addr_of(mine);
  ray_ref_t owned;
  CHECK(ray_put_owned(mine, size, big_free, NULL, &owned));
  by_ref = ray_arg_ref(owned);
  CHECK(ray_actor_call(reader_b, "digest", &by_ref, 1, NULL, via_b));
  CHECK(ray_task_submit(f_checksum, &by_ref, 1, NULL, via_task));
  CHECK(ray_ref_release(owned)); /* the call and the task hold their own */
  get_pair("Reader B.digest", via_b, &s_b, &a_b);
  get_pair("checksum", via_task, &s_task, &a_task);
  printf("  host buffer at 0x%" PRIx64 "; Reader B read 0x%" PRIx64 ", the task read 0x%" PRIx64
         "\n",
         (uint64_t)mine_at, (uint64_t)a_b, (uint64_t)a_task);
  EXPECT(a_b == mine_at && a_task == mine_at);
  EXPECT(s_b == mine_sum && s_task == mine_sum);
  WAIT_UNTIL(atomic_load(&g_big_frees) == 2); /* freed once the readers are done */

  /* Reader totals: each read the bytes in place, once per call. */
  ray_ref_t ta, tb;
  CHECK(ray_actor_call(reader_a, "total", NULL, 0, NULL, &ta));
  CHECK(ray_actor_call(reader_b, "total", NULL, 0, NULL, &tb));
  int64_t total_a = get_i64("total", ta), total_b = get_i64("total", tb);
  CHECK(ray_ref_release(ta));
  CHECK(ray_ref_release(tb));
  printf("\nReader A read %" PRId64 " MiB, Reader B %" PRId64
         " MiB; the store never held a second copy\n",
         total_a / (int64_t)MIB, total_b / (int64_t)MIB);
  EXPECT(total_a == (int64_t)size && total_b == 2 * (int64_t)size);

  CHECK(ray_actor_release(producer));
  CHECK(ray_actor_release(reader_a));
  CHECK(ray_actor_release(reader_b));
  CHECK(ray_stats(&st));
  WAIT_UNTIL(ray_stats(&st) == 0 && st.objects == 0 && st.actors_alive == 0);
  printf("all released: %" PRIu64 " objects, %" PRIu64 " bytes, %" PRIu64
         " actors left; %d buffers freed by the store\n",
         st.objects, st.bytes_in_memory, st.actors_alive, atomic_load(&g_big_frees));
  EXPECT(st.bytes_in_memory == 0 && atomic_load(&g_big_frees) == 2);
  CHECK(ray_shutdown());
  printf("shutdown: OK\n");
  return 0;
}
