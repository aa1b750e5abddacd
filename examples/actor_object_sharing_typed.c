/* actor_object_sharing_typed.c - actor_object_sharing.c with the typed layer.
 *
 * Actors and tasks share a large object through the store, with no copies:
 * every reader reports the address it read from, and all are the address
 * of the buffer the producer allocated.
 *
 *                       Producer actor
 *                  make(16 MiB) -> (data, address)     (handed over, not copied)
 *        +-------------+---------------+----------+
 *   checksum task  Reader A.digest  Reader B.digest  the host's RAY_GET
 *         -- all four read the producer's buffer, at its address --
 *
 * Then Reader A keeps the ref in its state (borrowing), the host drops its
 * own, A still reads the same bytes, and the buffer is freed once A lets go.
 * Last, the host hands its own buffer to the store and an actor reads it.
 *
 * Methods with two returns give RAY_REFS(Class_method): a struct of typed
 * refs with the names declared, e.g. made.data (bytes) and made.address (i64).
 *
 * It checks every value and exits non-zero on a mismatch
 * (example_actor_object_sharing_typed). */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "rustyray.h"
#include "rustyray/typed.h"

#define MIB ((size_t)1 << 20)
#define OBJECT_MIB 16 /* big enough to matter, small enough for valgrind */

#define EXPECT(cond)                                                                     \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "actor_object_sharing_typed:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                                           \
    }                                                                                    \
  } while (0)

#define WAIT_UNTIL(cond)                                               \
  do {                                                                 \
    uint64_t wait_deadline_ = uv_hrtime() + 60 * (uint64_t)1000000000; \
    while (!(cond)) {                                                  \
      EXPECT(uv_hrtime() < wait_deadline_);                            \
      uv_sleep(1);                                                     \
    }                                                                  \
  } while (0)

/* The value of an i64 result, released. */
static int64_t take(RAY_REF(i64) r) {
  int64_t v = 0;
  int rc = RAY_GET(r, RAY_TIMEOUT_INFINITE, &v);
  if (rc != RAY_OK) fprintf(stderr, "actor_object_sharing_typed: %s\n", ray_err_name(rc));
  EXPECT(rc == RAY_OK && ray_ref_release(r.ref) == RAY_OK);
  return v;
}

/* A reader's (checksum, address) results: print them, check them. */
static void expect_read(const char *who, RAY_REF(i64) sum, RAY_REF(i64) at, int64_t want_sum,
                        int64_t want_at) {
  int64_t s = take(sum), a = take(at);
  printf("  %-20s %-20" PRId64 " 0x%" PRIx64 "\n", who, s, (uint64_t)a);
  EXPECT(s == want_sum && a == want_at);
}

/* ---- The data ----------------------------------------------------------------- */

static uint64_t word(uint64_t seed, size_t i) { /* word i of the object made with seed */
  uint64_t x = (seed + 1) * 0x9E3779B97F4A7C15ull + i;
  x ^= x >> 29;
  return x * 0xBF58476D1CE4E5B9ull;
}

static int64_t checksum_of(const void *data, size_t size) { /* 63 bits: fits an i64 */
  const uint64_t *w = data;
  uint64_t sum = 0;
  for (size_t i = 0; i < size / sizeof *w; i++) sum = (sum ^ w[i]) * 31 + 7;
  return (int64_t)(sum >> 1);
}

static atomic_int g_big_frees; /* big buffers freed by the store */

static void big_free(void *p, void *arg) {
  (void)arg;
  free(p);
  atomic_fetch_add(&g_big_frees, 1);
}

static int64_t addr_of(const void *p) {
  return (int64_t)(intptr_t)p;
}

/* ---- Producer: an actor that makes big objects ----------------------------- */

typedef struct {
  int64_t made;
} producer_t;

RAY_ACTOR(Producer, producer_t)
RAY_DEFAULT_CONSTRUCTOR(Producer)

/* make(mib, seed) -> (bytes data, i64 address): the buffer goes to the store
 * without a copy; the store frees it with big_free. */
RAY_METHOD(Producer, ((bytes, data), (i64, address)), make, (i64, mib), (i64, seed)) {
  size_t size = (size_t)mib * MIB;
  uint64_t *buf = mib > 0 && mib <= 1024 ? malloc(size) : NULL;
  if (buf == NULL) ray_fail(RAY_CTX, RAY_EINVAL, "make: %" PRId64 " MiB", mib), size = 0;
  for (size_t i = 0; i < size / sizeof *buf; i++) buf[i] = word((uint64_t)seed, i);
  self->made++;
  return (RAY_RESULT(Producer_make)){RAY_BYTES_OWNED(buf, size, big_free, NULL), addr_of(buf)};
}

/* ---- Reader: an actor that reads objects, and can keep one --------------- */

typedef struct {
  int64_t bytes_read;
  RAY_REF(bytes) kept; /* a ref it holds on to (zeroed: none) */
} reader_t;

RAY_ACTOR(Reader, reader_t)
RAY_DEFAULT_CONSTRUCTOR(Reader)
RAY_DESTRUCTOR(Reader) {
  ray_ref_release(self->kept.ref); /* normally dropped by drop() already */
}

/* digest(data) -> (checksum, address read): the ref argument is resolved
 * before the call; the body reads the bytes where they lie. */
RAY_METHOD(Reader, ((i64, checksum), (i64, address)), digest, (bytes, data)) {
  self->bytes_read += (int64_t)data.size;
  return (RAY_RESULT(Reader_digest)){checksum_of(data.data, data.size), addr_of(data.data)};
}

/* keep(data) -> size: holds a reference to the argument's object. */
RAY_METHOD(Reader, i64, keep, (bytes, data)) {
  ray_ref_t ref; /* the ref the argument came as: borrowed for the call ... */
  if (ray_ctx_arg_ref(RAY_CTX, 0, &ref) != RAY_OK || ray_ref_retain(ref) != RAY_OK)
    return ray_fail(RAY_CTX, RAY_EINVAL, "keep: pass a ref");
  ray_ref_release(self->kept.ref);
  self->kept = RAY_REF_CAST(bytes, ref); /* ... and now the actor owns one */
  return (int64_t)data.size;
}

/* peek() -> (checksum, address): reads the kept object again. */
RAY_METHOD(Reader, ((i64, checksum), (i64, address)), peek) {
  ray_buf_t view; /* zeroed if nothing is kept: the call fails */
  int rc = RAY_GET(self->kept, RAY_TIMEOUT_INFINITE, &view);
  if (rc != RAY_OK) ray_fail(RAY_CTX, rc, "peek: nothing kept (%s)", ray_err_name(rc));
  RAY_RESULT(Reader_peek) r = {checksum_of(view.data, view.size), addr_of(view.data)};
  ray_buf_release(&view);
  return r;
}

RAY_METHOD(Reader, i64, drop) { /* lets go of the kept object */
  ray_ref_release(self->kept.ref);
  self->kept = (RAY_REF(bytes)){{0, 0}};
  return 0;
}

RAY_METHOD(Reader, i64, total) { /* bytes this reader has read */
  return self->bytes_read;
}

/* A plain task that reads the object too. */
RAY_FUNCTION(((i64, checksum), (i64, address)), checksum, (bytes, data)) {
  return (RAY_RESULT(checksum)){checksum_of(data.data, data.size), addr_of(data.data)};
}

/* ---- The program ------------------------------------------------------------ */

int main(void) {
  EXPECT(ray_init(NULL) == RAY_OK);
  const size_t size = (size_t)OBJECT_MIB * MIB;
  Producer producer = Producer_new();
  Reader reader_a = Reader_new(), reader_b = Reader_new();

  /* 1. One big object, four readers, all submitted before it exists. */
  printf("== Producer.make(%d MiB) and four readers, submitted at once\n", OBJECT_MIB);
  RAY_REFS(Producer_make) made = Producer_make(producer, OBJECT_MIB, 7);
  RAY_REFS(checksum) via_task = RAY_CALL(checksum, made.data);
  RAY_REFS(Reader_digest) via_a = RAY_CALL(Reader_digest, reader_a, made.data);
  RAY_REFS(Reader_digest) via_b = RAY_CALL(Reader_digest, reader_b, made.data);
  int64_t made_at = take(made.address);
  ray_buf_t view;
  EXPECT(RAY_GET(made.data, RAY_TIMEOUT_INFINITE, &view) == RAY_OK && view.size == size);
  int64_t expected = checksum_of(view.data, view.size);
  const uint64_t *w = view.data; /* what the data should be, word by word */
  size_t bad = 0;
  for (size_t i = 0; i < size / sizeof *w; i++) bad += w[i] != word(7, i);
  printf("  %-20s %-20s 0x%" PRIx64 "\n", "Producer (allocated)", "-", (uint64_t)made_at);
  printf("  %-20s %-20" PRId64 " 0x%" PRIx64 "\n", "host view", expected, (uint64_t)addr_of(w));
  EXPECT(bad == 0 && addr_of(w) == made_at);
  expect_read("checksum task", via_task.checksum, via_task.address, expected, made_at);
  expect_read("Reader A.digest", via_a.checksum, via_a.address, expected, made_at);
  expect_read("Reader B.digest", via_b.checksum, via_b.address, expected, made_at);
  ray_stats_t st;
  EXPECT(ray_stats(&st) == RAY_OK);
  printf("  same checksum, same address: one buffer, zero copies (%.2f MiB in the store)\n",
         (double)st.bytes_in_memory / (double)MIB);
  EXPECT(st.bytes_in_memory >= size && st.bytes_in_memory < size + MIB);

  /* 2. Borrowing: Reader A keeps a reference; the host drops its own. */
  printf("\n== Reader A keeps the object; the host lets go of it\n");
  EXPECT(take(RAY_CALL(Reader_keep, reader_a, made.data)) == (int64_t)size);
  ray_buf_release(&view);
  EXPECT(ray_ref_release(made.data.ref) == RAY_OK); /* the host holds nothing now */
  RAY_REFS(Reader_peek) peek = Reader_peek(reader_a);
  expect_read("Reader A.peek", peek.checksum, peek.address, expected, made_at);
  EXPECT(atomic_load(&g_big_frees) == 0 && take(Reader_drop(reader_a)) == 0);
  WAIT_UNTIL(atomic_load(&g_big_frees) == 1); /* the last reference went with drop() */
  printf("  Reader A.drop(): the last reference is gone, the buffer is freed\n");

  /* 3. The host's own buffer, handed over without a copy and read in place. */
  printf("\n== the host hands a %d MiB buffer to the store\n", OBJECT_MIB);
  uint64_t *mine = malloc(size);
  EXPECT(mine != NULL);
  for (size_t i = 0; i < size / sizeof *mine; i++) mine[i] = word(99, i);
  int64_t mine_sum = checksum_of(mine, size), mine_at = addr_of(mine);
  RAY_REF(bytes) owned = RAY_PUT(bytes, RAY_BYTES_OWNED(mine, size, big_free, NULL));
  via_b = RAY_CALL(Reader_digest, reader_b, owned);
  via_task = RAY_CALL(checksum, owned);
  EXPECT(ray_ref_release(owned.ref) == RAY_OK); /* the call and the task hold their own */
  expect_read("Reader B.digest", via_b.checksum, via_b.address, mine_sum, mine_at);
  expect_read("checksum task", via_task.checksum, via_task.address, mine_sum, mine_at);
  WAIT_UNTIL(atomic_load(&g_big_frees) == 2);

  int64_t total_a = take(Reader_total(reader_a)), total_b = take(Reader_total(reader_b));
  printf("\nReader A read %" PRId64 " MiB, Reader B %" PRId64 " MiB; never a second copy\n",
         total_a / (int64_t)MIB, total_b / (int64_t)MIB);
  EXPECT(total_a == (int64_t)size && total_b == 2 * (int64_t)size);
  EXPECT(ray_actor_release(producer.actor) == RAY_OK &&
         ray_actor_release(reader_a.actor) == RAY_OK &&
         ray_actor_release(reader_b.actor) == RAY_OK);
  WAIT_UNTIL(ray_stats(&st) == 0 && st.objects == 0 && st.actors_alive == 0);
  printf("all released: %" PRIu64 " objects, %" PRIu64 " actors left; %d buffers freed\n",
         st.objects, st.actors_alive, atomic_load(&g_big_frees));
  EXPECT(st.bytes_in_memory == 0 && atomic_load(&g_big_frees) == 2);
  EXPECT(ray_shutdown() == RAY_OK);
  printf("shutdown: OK\n");
  return 0;
}
