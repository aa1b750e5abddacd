/* memory_optimization.c - a working set larger than the object store.
 *
 * The store holds at most `object_store_memory` bytes of payloads in memory.
 * This program gives it 16 MiB and pushes 64 MiB of 1 MiB objects through a
 * pipeline of tasks, keeping every result:
 *
 *     host ray_put(input i) --> transform(input) --> output i  (kept)
 *                                                |
 *                                                +-> digest(output) -> i64
 *
 * When a put or a task result would cross the limit, the store spills ready
 * objects nobody is reading, least recently used first, to files in a spill
 * directory, and restores them transparently when someone reads them again
 * (ray_get, or a task taking them as an argument), checking a checksum. The
 * bytes in memory never exceed the capacity; ray_stats shows the high-water
 * mark, the spills and the restores.
 *
 * The outputs are also kept alive in an unusual way: by one small msgpack
 * "manifest" object whose value contains their refs (ray_msgpack_pack_ref).
 * The store holds a reference on every ref inside an object, so the host
 * can drop its own refs to the outputs and keep only the manifest; reading
 * the manifest back hands out refs again.
 *
 * Last, with spilling switched off, a put that cannot fit waits up to
 * store_full_timeout_ms for memory to be freed and then fails with
 * RAY_ESTOREFULL: no referenced object is ever dropped to make room.
 *
 * Usage: memory_optimization [store_MiB total_MiB]   (default 16 64)
 *
 * It checks every byte it reads back and exits non-zero on a mismatch, so
 * it doubles as a test (example_memory_optimization). */
/* <uv.h> and mkdtemp need POSIX declarations that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "rustyray.h"

/* The free callback (ray_free_fn) of a malloc'd buffer handed to the store
 * without a copy; this program needs no arg. */
static void free_buffer(void *data, void *arg) {
  (void)arg;
  free(data);
}

#define MIB ((size_t)1 << 20)
#define OBJ_SIZE MIB
#define OBJ_WORDS (OBJ_SIZE / sizeof(uint64_t))

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                                     \
  do {                                                                                  \
    int check_rc_ = (call);                                                             \
    if (check_rc_ != RAY_OK) {                                                          \
      fprintf(stderr, "memory_optimization:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                        \
      exit(1);                                                                          \
    }                                                                                   \
  } while (0)

#define EXPECT(cond)                                                              \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "memory_optimization:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                                    \
    }                                                                             \
  } while (0)

#define WAIT_UNTIL(cond)                                                                        \
  do {                                                                                          \
    uint64_t wait_deadline_ = uv_hrtime() + 60 * (uint64_t)1000000000;                          \
    while (!(cond)) {                                                                           \
      if (uv_hrtime() > wait_deadline_) {                                                       \
        fprintf(stderr, "memory_optimization:%d: timed out waiting for %s\n", __LINE__, #cond); \
        exit(1);                                                                                \
      }                                                                                         \
      uv_sleep(1);                                                                              \
    }                                                                                           \
  } while (0)

#define TRY(ctx, call)                                                         \
  do {                                                                         \
    int try_rc_ = (call);                                                      \
    if (try_rc_ != RAY_OK)                                                     \
      return ray_fail((ctx), try_rc_, "%s: %s", #call, ray_err_name(try_rc_)); \
  } while (0)

static void fail_with_chain(const char *what, ray_ref_t ref, int rc) {
  ray_error_t *err = NULL;
  char text[2048] = "(no error object)";
  if (ray_get_error(ref, &err) == 0 && err != NULL) ray_error_format(err, text, sizeof text);
  ray_error_free(err);
  fprintf(stderr, "memory_optimization: %s failed with %s:\n%s\n", what, ray_err_name(rc), text);
  exit(1);
}

/* ---- The data and the tasks ----------------------------------------------------- */

/* Word k of input object i. */
static uint64_t input_word(uint64_t i, size_t k) {
  uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull ^ k;
  return x * 0xBF58476D1CE4E5B9ull;
}

/* What transform does to each word. */
static uint64_t transform_word(uint64_t x, size_t k) {
  return (x ^ (x >> 31)) + k;
}

static int64_t checksum_of(const uint64_t *w, size_t n) {
  uint64_t sum = 0;
  for (size_t k = 0; k < n; k++) sum = (sum ^ w[k]) * 0x100000001B3ull;
  return (int64_t)(sum >> 1);
}

/* transform(input) -> bytes: a new 1 MiB object, handed over without a copy. */
static int transform(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *data;
  size_t size;
  TRY(ctx, ray_ctx_arg_bytes(ctx, 0, &data, &size)); /* restored first if it was spilled */
  if (size != OBJ_SIZE) return ray_fail(ctx, RAY_EDECODE, "transform: %zu bytes", size);
  const uint64_t *in = data;
  uint64_t *out = malloc(size);
  if (out == NULL) return ray_fail(ctx, RAY_ENOMEM, "transform: no memory");
  for (size_t k = 0; k < OBJ_WORDS; k++) out[k] = transform_word(in[k], k);
  int rc = ray_return_owned(ctx, 0, out, size, free_buffer, NULL); /* counts against the capacity */
  if (rc != RAY_OK) free(out);
  TRY(ctx, rc);
  return 0;
}

/* digest(output) -> i64 checksum. */
static int digest(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *data;
  size_t size;
  TRY(ctx, ray_ctx_arg_bytes(ctx, 0, &data, &size));
  return ray_return_i64(ctx, 0, checksum_of(data, size / sizeof(uint64_t)));
}

/* ---- Stats and the spill directory ----------------------------------------------- */

static int count_files(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

static double mib(uint64_t bytes) {
  return (double)bytes / (double)MIB;
}

static void print_stats_header(void) {
  printf("  %-30s %8s %10s %10s %7s %8s %9s %9s %6s\n", "", "objects", "in memory", "high-water",
         "spills", "restores", "spilled", "on disk", "files");
}

static void print_stats(const char *when, const char *dir, ray_stats_t *out) {
  ray_stats_t s;
  CHECK(ray_stats(&s));
  printf("  %-30s %8" PRIu64 " %6.1f MiB %6.1f MiB %7" PRIu64 " %8" PRIu64
         " %5.1f MiB %5.1f MiB %6d\n",
         when, s.objects, mib(s.bytes_in_memory), mib(s.bytes_in_memory_high_water), s.spill_count,
         s.restore_count, mib(s.bytes_spilled_total), mib(s.bytes_spilled), count_files(dir));
  if (out != NULL) *out = s;
}

/* On a failed check, don't leave the spill directory behind in /tmp. */
static char g_spill_dir[1100];

static void remove_spill_dir(void) {
  if (g_spill_dir[0] == '\0') return;
  DIR *d = opendir(g_spill_dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char path[1400];
      snprintf(path, sizeof path, "%s/%s", g_spill_dir, e->d_name);
      remove(path);
    }
    closedir(d);
  }
  remove(g_spill_dir);
}

/* ---- The program ------------------------------------------------------------ */

int main(int argc, char **argv) {
  size_t store_mib = 16, total_mib = 64;
  if (argc == 3) {
    store_mib = (size_t)strtoul(argv[1], NULL, 10);
    total_mib = (size_t)strtoul(argv[2], NULL, 10);
  } else if (getenv("RAY_TEST_UNDER_VALGRIND") != NULL) {
    store_mib = 8;
    total_mib = 32;
  }
  if (argc != 1 && argc != 3) {
    fprintf(stderr, "usage: %s [store_MiB total_MiB]\n", argv[0]);
    return 2;
  }
  if (store_mib < 4 || total_mib < 1 || total_mib > 65536) {
    fprintf(stderr, "memory_optimization: store_MiB >= 4 and 1 <= total_MiB <= 65536, please\n");
    return 2;
  }
  const size_t n = total_mib; /* 1 MiB objects */

  /* A spill directory of our own, so the files can be watched. */
  char tmp[1024];
  size_t tmplen = sizeof tmp;
  CHECK(uv_os_tmpdir(tmp, &tmplen) == 0 ? RAY_OK : RAY_EIO);
  char *spill_dir = g_spill_dir;
  snprintf(spill_dir, sizeof g_spill_dir, "%s/rustyray-example-XXXXXX", tmp);
  EXPECT(mkdtemp(spill_dir) != NULL);
  atexit(remove_spill_dir);

  ray_config_t cfg;
  CHECK(ray_config_init(&cfg));
  cfg.object_store_memory = (uint64_t)store_mib * MIB;
  cfg.enable_spilling = true; /* the default */
  cfg.spill_dir = spill_dir;  /* default: a fresh temp directory, removed at shutdown */
  CHECK(ray_init(&cfg));
  printf("object store: %zu MiB in memory, spilling to %s\n", store_mib, spill_dir);
  printf("working set: %zu objects of 1 MiB in, %zu out (%zu MiB kept: %.0fx the store)\n", n, n,
         total_mib, (double)total_mib / (double)store_mib);

  const uint32_t t_bytes[] = {RAY_TYPE_BYTES}, t_i64[] = {RAY_TYPE_I64};
  ray_function_t f_transform, f_digest;
  CHECK(ray_function_register("transform", transform, NULL, t_bytes, 1, &f_transform));
  CHECK(ray_function_register("digest", digest, NULL, t_i64, 1, &f_digest));

  printf("\n");
  print_stats_header();
  ray_stats_t before;
  print_stats("before", spill_dir, &before);

  /* 1. The pipeline: every input is put and handed on at once. */
  uint64_t t0 = uv_hrtime();
  ray_ref_t *outputs = malloc(n * sizeof *outputs);
  ray_ref_t *sums = malloc(n * sizeof *sums);
  uint64_t *buf = malloc(OBJ_SIZE);
  EXPECT(outputs != NULL && sums != NULL && buf != NULL);
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < OBJ_WORDS; k++) buf[k] = input_word(i, k);
    ray_ref_t input;
    CHECK(ray_put(buf, OBJ_SIZE, &input)); /* may spill older objects to make room */
    ray_arg_t a = ray_arg_ref(input);
    CHECK(ray_task_submit(f_transform, &a, 1, NULL, &outputs[i]));
    CHECK(ray_ref_release(input)); /* transform holds its own until it has run */
    a = ray_arg_ref(outputs[i]);
    CHECK(ray_task_submit(f_digest, &a, 1, NULL, &sums[i]));
  }
  print_stats("all submitted", spill_dir, NULL);

  /* 2. A manifest: one msgpack object whose value holds every output's ref. */
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str(&pk, 5);
  msgpack_pack_str_body(&pk, "count", 5);
  msgpack_pack_uint64(&pk, n);
  msgpack_pack_str(&pk, 7);
  msgpack_pack_str_body(&pk, "outputs", 7);
  msgpack_pack_array(&pk, n);
  for (size_t i = 0; i < n; i++) CHECK(ray_msgpack_pack_ref(&pk, outputs[i]));
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  EXPECT(msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS);
  ray_ref_t manifest;
  CHECK(ray_put_msgpack(&u.data, &manifest)); /* takes a reference on every output */
  msgpack_unpacked_destroy(&u);
  printf("  (manifest: %zu bytes of msgpack holding %zu refs; the host drops its own refs)\n",
         sb.size, n);
  msgpack_sbuffer_destroy(&sb);
  CHECK(ray_ref_release_batch(outputs, n));

  /* 3. The digests, as they come: each digest read its output in memory, or
   *    restored it from disk first. */
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    int64_t got;
    int rc = ray_get_i64(sums[i], RAY_TIMEOUT_INFINITE, &got);
    if (rc != RAY_OK) fail_with_chain("digest", sums[i], rc);
    for (size_t k = 0; k < OBJ_WORDS; k++) buf[k] = transform_word(input_word(i, k), k);
    bad += got != checksum_of(buf, OBJ_WORDS);
  }
  CHECK(ray_ref_release_batch(sums, n));
  EXPECT(bad == 0);
  ray_stats_t mid;
  print_stats("pipeline done", spill_dir, &mid);

  /* 4. Read every output back through the manifest and compare every byte. */
  ray_msgpack_t m;
  CHECK(ray_get_msgpack(manifest, RAY_TIMEOUT_INFINITE, &m));
  EXPECT(m.nrefs == n);
  size_t bad_bytes = 0;
  for (size_t i = 0; i < m.nrefs; i++) {
    ray_buf_t view;
    int rc = ray_get(m.refs[i], RAY_TIMEOUT_INFINITE, &view); /* restores it if spilled */
    if (rc != RAY_OK) fail_with_chain("output", m.refs[i], rc);
    EXPECT(view.size == OBJ_SIZE);
    for (size_t k = 0; k < OBJ_WORDS; k++) buf[k] = transform_word(input_word(i, k), k);
    if (memcmp(view.data, buf, OBJ_SIZE) != 0) bad_bytes++;
    ray_buf_release(&view);
  }
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  ray_stats_t after;
  print_stats("every output read back", spill_dir, &after);
  CHECK(ray_ref_release_batch(m.refs, m.nrefs)); /* the refs the manifest handed out */
  ray_msgpack_release(&m);
  EXPECT(bad_bytes == 0);

  /* 5. Drop the manifest: every output goes with it, and so do the files. */
  CHECK(ray_ref_release(manifest));
  ray_stats_t end;
  WAIT_UNTIL(ray_stats(&end) == 0 && end.objects == 0 && end.bytes_in_memory == 0);
  print_stats("manifest released", spill_dir, &end);
  free(buf);
  free(outputs);
  free(sums);

  printf("\n%zu MiB in and %zu MiB out through a %zu MiB store in %.2f s; every byte checked\n",
         total_mib, total_mib, store_mib, secs);
  printf("high-water mark %.1f MiB <= capacity %.1f MiB; %" PRIu64 " spills (%.1f MiB), %" PRIu64
         " restores\n",
         mib(after.bytes_in_memory_high_water), mib(after.object_store_memory), after.spill_count,
         mib(after.bytes_spilled_total), after.restore_count);
  EXPECT(after.bytes_in_memory_high_water <= after.object_store_memory);
  EXPECT(after.object_store_memory == (uint64_t)store_mib * MIB);
  if (total_mib > store_mib) EXPECT(after.spill_count > 0 && after.restore_count > 0);
  EXPECT(end.objects == 0 && end.bytes_in_memory == 0 && end.bytes_spilled == 0);
  EXPECT(count_files(spill_dir) == 0); /* a segment file goes with its last object */
  CHECK(ray_shutdown());

  /* 6. Spilling off: a full store makes puts wait, then fail. */
  printf("\n== spilling off, a 4 MiB store, puts wait at most 100 ms\n");
  CHECK(ray_config_init(&cfg));
  cfg.object_store_memory = 4 * MIB;
  cfg.enable_spilling = false;
  cfg.store_full_timeout_ms = 100;
  CHECK(ray_init(&cfg));
  void *one = calloc(1, OBJ_SIZE);
  EXPECT(one != NULL);
  ray_ref_t held[8];
  int nheld = 0, rc = RAY_OK;
  uint64_t waited = 0;
  while (nheld < 8) {
    uint64_t t = uv_hrtime();
    rc = ray_put(one, OBJ_SIZE, &held[nheld]);
    waited = uv_hrtime() - t;
    if (rc != RAY_OK) break;
    nheld++;
  }
  printf("  %d puts of 1 MiB fit; put %d returned %s after %.0f ms\n", nheld, nheld + 1,
         ray_err_name(rc), (double)waited / 1e6);
  EXPECT(nheld == 4 && rc == RAY_ESTOREFULL);
  EXPECT(waited >= 90 * (uint64_t)1000000);
  CHECK(ray_ref_release(held[--nheld]));
  CHECK(ray_put(one, OBJ_SIZE, &held[nheld++]));
  printf("  after one release, the next put fits again\n");
  CHECK(ray_ref_release_batch(held, (size_t)nheld));
  free(one);
  CHECK(ray_shutdown());

  /* The spill directory was ours: the store removed its files, not the
   * directory, which is empty now. */
  uv_fs_t req;
  EXPECT(uv_fs_rmdir(NULL, &req, spill_dir, NULL) == 0);
  uv_fs_req_cleanup(&req);
  g_spill_dir[0] = '\0';
  printf("shutdown: OK\n");
  return 0;
}
