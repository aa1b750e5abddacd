/* memory_util.h - what the memory-management test programs share:
 * test_memory.c, test_capacity.c, test_spill.c and test_nested_refs.c.
 *
 * Sizes (a 1 MiB store with 600 KiB objects makes spilling exact), the
 * state task functions record into (reset by m_begin, checked by m_end),
 * pattern payloads checked byte for byte, spill-directory helpers, the task
 * functions the programs register, a fence that waits for every task
 * submitted so far, and msgpack helpers for objects holding refs.
 * Functions run on worker threads, where cmocka must not be used: they
 * record failed checks into g_errs (TC) and each test asserts it after its
 * runtime is shut down. Tasks that must stay put wait on a latch; nothing
 * sleeps, and nothing asserts on time. Everything is static (inline): each
 * program has its own copy of the state; main() frees g_scratch. */
#ifndef RAY_MEMORY_UTIL_H
#define RAY_MEMORY_UTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <dirent.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

/* In a 1 MiB store, objects of 600 KiB never share memory: every put or
 * restore spills the one other object synchronously (one segment file per
 * spill), and the background spiller, which starts only past 80% of the
 * capacity, never runs. So the files in the spill directory can be counted
 * exactly, with nothing running in the background. */
#define BIG_OBJ ((size_t)600 * 1024)

/* ---- shared state --------------------------------------------------------- */

static rt_errs_t g_errs;       /* checks made on workers and helper threads */
static atomic_int g_calls;     /* task invocations counted by a test */
static rt_latch_t g_started;   /* fn_block: started */
static rt_latch_t g_go;        /* fn_block: waits for this */
static rt_latch_t g_fence_in;  /* fn_fence: arrived */
static rt_latch_t g_fence_out; /* fn_fence: waits for this */
static long g_fences;          /* fences done in this runtime */
static atomic_int g_task_rc;   /* a return code seen inside a task */

#define TC(cond, value) RT_CHECK(&g_errs, (cond), (value))

static inline void m_reset(void) {
  rt_errs_init(&g_errs);
  atomic_store(&g_calls, 0);
  atomic_store(&g_task_rc, 1);
  rt_latch_init(&g_started);
  rt_latch_init(&g_go);
  rt_latch_init(&g_fence_in);
  rt_latch_init(&g_fence_out);
  g_fences = 0;
}

static inline void m_begin_cfg(const ray_config_t *cfg) {
  m_reset();
  rt_begin_cfg(cfg);
}

/* Defaults with two workers, the given capacity and full-store wait. */
static inline void m_config(ray_config_t *cfg, uint64_t capacity, int64_t full_timeout_ms) {
  rt_config(cfg);
  cfg->object_store_memory = capacity;
  cfg->store_full_timeout_ms = full_timeout_ms;
}

static inline void m_begin(uint64_t capacity, int64_t full_timeout_ms) {
  ray_config_t cfg;
  m_config(&cfg, capacity, full_timeout_ms);
  m_begin_cfg(&cfg);
}

static inline void m_latches_destroy(void) {
  rt_latch_destroy(&g_started);
  rt_latch_destroy(&g_go);
  rt_latch_destroy(&g_fence_in);
  rt_latch_destroy(&g_fence_out);
}

static inline void m_end(void) {
  rt_end();
  rt_errs_assert(&g_errs);
  m_latches_destroy();
}

static inline bool under_vg(void) {
  return rt_under_valgrind();
}

/* ---- payloads --------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Word i of object `seed`: differs between positions and between objects. */
static inline uint64_t pat_word(uint64_t s, size_t i) {
  return s ^ ((uint64_t)i * 0x100000001B3ull);
}

static inline void pat_fill(void *p, size_t n, uint64_t seed) {
  unsigned char *c = p;
  uint64_t s = mix64(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w = pat_word(s, i);
    memcpy(c + i, &w, 8);
  }
  for (; i < n; i++) c[i] = (unsigned char)(s >> (i % 8 * 8)) ^ (unsigned char)i;
}

static inline bool pat_check(const void *p, size_t n, uint64_t seed) {
  const unsigned char *c = p;
  uint64_t s = mix64(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, c + i, 8);
    if (w != pat_word(s, i)) return false;
  }
  for (; i < n; i++)
    if (c[i] != ((unsigned char)(s >> (i % 8 * 8)) ^ (unsigned char)i)) return false;
  return true;
}

/* A scratch buffer for puts (the store copies). */
static unsigned char *g_scratch;
static size_t g_scratch_size;

static const void *scratch(size_t n, uint64_t seed) {
  if (n > g_scratch_size) {
    free(g_scratch);
    g_scratch = malloc(n);
    assert_non_null(g_scratch);
    g_scratch_size = n;
  }
  pat_fill(g_scratch, n, seed);
  return g_scratch;
}

static inline ray_ref_t put_pat(size_t n, uint64_t seed) {
  ray_ref_t r = RAY_REF_NIL;
  assert_rc(ray_put(scratch(n, seed), n, &r), 0);
  assert_true(r.id != 0);
  return r;
}

static inline void assert_pat(ray_ref_t r, size_t n, uint64_t seed) {
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), 0);
  assert_true(b.size == n);
  assert_true(pat_check(b.data, n, seed));
  ray_buf_release(&b);
}

static inline void assert_gone(ray_ref_t r) {
  ray_buf_t b;
  assert_rc(ray_get(r, 0, &b), RAY_ENOTFOUND);
}

static inline void assert_within_capacity(void) {
  ray_stats_t s = rt_stats();
  assert_true(s.bytes_in_memory <= s.object_store_memory);
  assert_true(s.bytes_in_memory_high_water <= s.object_store_memory);
}

/* ---- directories ------------------------------------------------------------ */

/* Entries of `path` whose names start with `prefix` and end with `suffix`
 * (either may be ""), or -1 when the directory cannot be opened. */
static inline int dir_count(const char *path, const char *prefix, const char *suffix) {
  DIR *d = opendir(path);
  if (d == NULL) return -1;
  int n = 0;
  struct dirent *de;
  size_t pl = strlen(prefix), sl = strlen(suffix);
  while ((de = readdir(d)) != NULL) {
    const char *name = de->d_name;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
    size_t len = strlen(name);
    if (len < pl + sl) continue;
    if (strncmp(name, prefix, pl) != 0) continue;
    if (strcmp(name + len - sl, suffix) != 0) continue;
    n++;
  }
  closedir(d);
  return n;
}

/* The first entry of `path` starting with `prefix`, as a full path. */
static inline bool dir_find(const char *path, const char *prefix, char *out, size_t len) {
  DIR *d = opendir(path);
  if (d == NULL) return false;
  struct dirent *de;
  bool found = false;
  while (!found && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) {
      size_t pl = strlen(path), nl = strlen(de->d_name);
      if (pl + 1 + nl < len) {
        memcpy(out, path, pl);
        out[pl] = '/';
        memcpy(out + pl + 1, de->d_name, nl + 1);
        found = true;
      }
    }
  }
  closedir(d);
  return found;
}

static inline void make_tmpdir(char *buf, size_t len) {
  snprintf(buf, len, "/tmp/rr-test-memory-XXXXXX");
  assert_non_null(mkdtemp(buf));
}

static inline bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- task functions --------------------------------------------------------- */

/* Wait for g_go (signalling g_started first). */
static inline int fn_block(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  rt_latch_signal(&g_started);
  rt_latch_wait(&g_go, 1);
  return ray_return_i64(ctx, 0, 1);
}

/* fn_fence(k): arrive, then wait for the k-th release. */
static inline int fn_fence(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t k = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &k) == 0, 0);
  rt_latch_signal(&g_fence_in);
  rt_latch_wait(&g_fence_out, (long)k);
  return ray_return_i64(ctx, 0, k);
}

static inline int fn_fail(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  return ray_fail(ctx, RAY_ETASK, "failing on purpose");
}

static inline void count_free_task(void *p, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  free(p);
}

/* fn_big(seed, size, owned): a pattern of `size` bytes, copied or handed over. */
static inline int fn_big(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t seed = 0, size = 0, owned = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &seed) == 0, 0);
  TC(ray_ctx_arg_i64(ctx, 1, &size) == 0, 0);
  TC(ray_ctx_arg_i64(ctx, 2, &owned) == 0, 0);
  unsigned char *p = malloc((size_t)size);
  if (p == NULL) return RAY_ENOMEM;
  pat_fill(p, (size_t)size, (uint64_t)seed);
  int rc;
  if (owned) {
    rc = ray_return_owned(ctx, 0, p, (size_t)size, count_free_task, NULL);
    if (rc != 0) free(p);
  } else {
    rc = ray_return_bytes(ctx, 0, p, (size_t)size);
    free(p);
  }
  atomic_store(&g_task_rc, rc);
  return rc;
}

/* fn_check(ref0, seed0, ref1, seed1, ...): how many ref arguments hold the
 * pattern of their seed. Also checks ray_ctx_arg_ref. */
static inline int fn_check(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  atomic_fetch_add(&g_calls, 1);
  size_t n = ray_ctx_nargs(ctx);
  int64_t good = 0;
  for (size_t i = 0; i + 1 < n; i += 2) {
    const void *data = NULL;
    size_t size = 0;
    int64_t seed = 0;
    ray_ref_t r;
    TC(ray_ctx_arg_ref(ctx, i, &r) == 0 && r.id != 0, (int)i);
    TC(ray_ctx_arg_bytes(ctx, i, &data, &size) == 0, (int)i);
    TC(ray_ctx_arg_i64(ctx, i + 1, &seed) == 0, (int)i);
    if (data != NULL && pat_check(data, size, (uint64_t)seed)) good++;
  }
  return ray_return_i64(ctx, 0, good);
}

/* fn_make_refs(n, fail): put n objects, return [ref0 .. ref(n-1), "tail"]
 * holding them (its own refs released), then fail when `fail`. */
static inline int fn_make_refs(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t n = 0, fail_after = 0;
  TC(ray_ctx_arg_i64(ctx, 0, &n) == 0, 0);
  TC(ray_ctx_arg_i64(ctx, 1, &fail_after) == 0, 0);
  ray_ref_t *refs = calloc((size_t)n, sizeof *refs);
  if (refs == NULL) return RAY_ENOMEM;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, (size_t)n + 1);
  for (int64_t i = 0; i < n; i++) {
    size_t size = 100 + (size_t)i * 700; /* inline and not */
    unsigned char *p = malloc(size);
    pat_fill(p, size, 9000 + (uint64_t)i);
    TC(ray_put(p, size, &refs[i]) == 0, (int)i);
    free(p);
    TC(ray_msgpack_pack_ref(&pk, refs[i]) == 0, (int)i);
  }
  msgpack_pack_str(&pk, 4);
  msgpack_pack_str_body(&pk, "tail", 4);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  TC(msgpack_unpack_next(&u, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS, 0);
  int rc = ray_return_msgpack(ctx, 0, &u.data);
  TC(rc == 0, rc);
  msgpack_unpacked_destroy(&u);
  msgpack_sbuffer_destroy(&sb);
  /* The result holds them now. */
  TC(ray_ref_release_batch(refs, (size_t)n) == 0, 0);
  free(refs);
  atomic_fetch_add(&g_calls, 1);
  if (fail_after) return ray_fail(ctx, RAY_ETASK, "failing after setting a result with refs");
  return rc;
}

/* fn_read_refs(msgpack [ref, seed, ref, seed, ...]): how many refs inside
 * the argument hold their pattern (sizes from the views). */
static inline int fn_read_refs(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  msgpack_object o;
  int rc = ray_ctx_arg_msgpack(ctx, 0, &o);
  TC(rc == 0, rc);
  if (rc != 0) return rc;
  TC(o.type == MSGPACK_OBJECT_ARRAY, o.type);
  int64_t good = 0;
  for (uint32_t i = 0; o.type == MSGPACK_OBJECT_ARRAY && i + 1 < o.via.array.size; i += 2) {
    ray_ref_t r;
    rc = ray_msgpack_ref(&o.via.array.ptr[i], &r);
    TC(rc == 0, rc);
    if (rc != 0) continue;
    uint64_t seed = o.via.array.ptr[i + 1].via.u64;
    ray_buf_t b;
    rc = ray_get(r, 0, &b); /* the argument holds it: ready and known */
    TC(rc == 0, rc);
    if (rc == 0 && pat_check(b.data, b.size, seed)) good++;
    ray_buf_release(&b);
  }
  atomic_fetch_add(&g_calls, 1);
  return ray_return_i64(ctx, 0, good);
}

/* Wait for every task submitted so far to finish: `workers` fence tasks,
 * one per worker (no task in these tests blocks in a get, so there is no
 * spare), all arrive before any leaves. */
static inline void fence(ray_function_t ffence, unsigned workers) {
  assert_int_equal(rt_stats().num_workers, workers);
  long k = ++g_fences;
  ray_ref_t rs[16];
  for (unsigned i = 0; i < workers; i++) {
    ray_arg_t a = ray_arg_i64(k);
    rs[i] = rt_submit(ffence, &a, 1, NULL);
  }
  rt_latch_wait(&g_fence_in, k * (long)workers);
  rt_latch_signal(&g_fence_out);
  for (unsigned i = 0; i < workers; i++) {
    assert_int_equal(rt_get_i64(rs[i]), k);
    rt_release(rs[i]);
  }
}

/* ---- msgpack helpers ---------------------------------------------------------- */

/* A decoded value built by the caller: pack into sb, then unpack into u. */
typedef struct {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_unpacked u;
} mp_t;

static inline void mp_start(mp_t *m) {
  msgpack_sbuffer_init(&m->sb);
  msgpack_packer_init(&m->pk, &m->sb, msgpack_sbuffer_write);
  msgpack_unpacked_init(&m->u);
}

static const msgpack_object *mp_obj(mp_t *m) {
  size_t off = 0;
  assert_int_equal(msgpack_unpack_next(&m->u, m->sb.data, m->sb.size, &off),
                   MSGPACK_UNPACK_SUCCESS);
  return &m->u.data;
}

static inline void mp_done(mp_t *m) {
  msgpack_unpacked_destroy(&m->u);
  msgpack_sbuffer_destroy(&m->sb);
}

/* Put [refs..., tag] as a msgpack object; returns the put's code. */
static inline int put_refs(const ray_ref_t *refs, size_t n, int64_t tag, ray_ref_t *out) {
  mp_t m;
  mp_start(&m);
  msgpack_pack_array(&m.pk, n + 1);
  for (size_t i = 0; i < n; i++) assert_rc(ray_msgpack_pack_ref(&m.pk, refs[i]), 0);
  msgpack_pack_int64(&m.pk, tag);
  int rc = ray_put_msgpack(mp_obj(&m), out);
  mp_done(&m);
  return rc;
}

/* A scoped environment variable. */
typedef struct {
  const char *name;
  char *old;
} env_save_t;

static inline void env_set(env_save_t *e, const char *name, const char *value) {
  e->name = name;
  const char *o = getenv(name);
  e->old = o != NULL ? strdup(o) : NULL;
  if (value != NULL)
    assert_int_equal(setenv(name, value, 1), 0);
  else
    assert_int_equal(unsetenv(name), 0);
}

static inline void env_restore(env_save_t *e) {
  if (e->old != NULL)
    assert_int_equal(setenv(e->name, e->old, 1), 0);
  else
    assert_int_equal(unsetenv(e->name), 0);
  free(e->old);
  e->old = NULL;
}

/* An object of a working set: its ref and the pattern it holds. */
typedef struct {
  ray_ref_t ref;
  size_t size;
  uint64_t seed;
} obj_t;

/* Errors the library logs, counted instead of printed. The handler calls
 * the store too (it runs with no internal lock held). */
static atomic_int g_log_errors;

static inline void count_log(int level, const char *message, void *arg) {
  (void)message;
  (void)arg;
  ray_stats_t s;
  (void)ray_stats(&s);
  if (level == RAY_LOG_ERROR) atomic_fetch_add(&g_log_errors, 1);
}

static inline void log_capture(bool on) {
  atomic_store(&g_log_errors, 0);
  ray_log_set_handler(on ? count_log : NULL, NULL);
}

#endif /* RAY_MEMORY_UTIL_H */
