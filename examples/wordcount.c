/* wordcount.c - map-reduce over a real text file.
 *
 * The "hello world" of data processing, as a Ray user would write it:
 *
 *                        +--> count(text, chunk 1) --+
 *     text (one object) -+--> count(text, chunk 2) --+--> merge(...) -> [[word, n], ...]
 *                        +--> ...                    |
 *                        +--> count(text, chunk 8) --+
 *
 *   - The file is read once and handed to the object store without a copy
 *     (ray_put_owned). Every map task gets the same ref plus its byte range
 *     and reads the text zero-copy.
 *   - A map task counts the words of its chunk and returns them as a
 *     msgpack map {word: count} (RAY_TYPE_MSGPACK, packed with msgpack-c and
 *     handed over without a copy: ray_return_owned).
 *   - The reduce task takes the eight maps as ref arguments (it runs once
 *     all of them exist), decodes them zero-copy (ray_ctx_arg_msgpack),
 *     merges them and returns a msgpack array of [word, count] pairs, most
 *     frequent first.
 *
 * A word is a maximal run of ASCII letters, lowercased. The program checks
 * every count against the classic shell pipeline, run on the same file
 * through popen:
 *
 *     tr -cs 'A-Za-z' '\n' < FILE | tr A-Z a-z | sort | uniq -c
 *
 * and prints the ten most frequent words. It exits non-zero on any
 * mismatch (ctest runs it as example_wordcount).
 *
 * Usage: wordcount [file]. Default: /usr/share/common-licenses/GPL-3 (in
 * Debian's base-files); when that is missing, a generated corpus.
 *
 * The same binary runs as an MPI job (docs/cluster.md), unchanged:
 *   RAY_CLUSTER=mpi mpirun -np 4 ./wordcount
 * ray_init comes first and the functions are registered before it, so the
 * other ranks (which serve inside ray_init) have them and print nothing. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rustyray.h"

/* The free callback (ray_free_fn) of a malloc'd buffer handed to the store
 * without a copy; this program needs no arg. */
static void free_buffer(void *data, void *arg) {
  (void)arg;
  free(data);
}

#define NUM_CHUNKS 8
#ifndef DEFAULT_FILE
#define DEFAULT_FILE "/usr/share/common-licenses/GPL-3"
#endif

/* ---- Checking helpers ----------------------------------------------------- */

#define CHECK(call)                                                           \
  do {                                                                        \
    int check_rc_ = (call);                                                   \
    if (check_rc_ != RAY_OK) {                                                \
      fprintf(stderr, "wordcount:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));              \
      exit(1);                                                                \
    }                                                                         \
  } while (0)

#define EXPECT(cond)                                                    \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "wordcount:%d: mismatch: %s\n", __LINE__, #cond); \
      exit(1);                                                          \
    }                                                                   \
  } while (0)

#define TRY(ctx, call)                                                         \
  do {                                                                         \
    int try_rc_ = (call);                                                      \
    if (try_rc_ != RAY_OK)                                                     \
      return ray_fail((ctx), try_rc_, "%s: %s", #call, ray_err_name(try_rc_)); \
  } while (0)

/* ---- A word -> count table (open addressing, lowercase keys) --------------- */

static bool is_letter(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

typedef struct word_s {
  char *word; /* lowercase, NUL-terminated; NULL: empty slot */
  size_t len;
  uint64_t count;
} word_t;

typedef struct table_s {
  word_t *slots;
  size_t cap, n;
} table_t;

static uint64_t hash_lower(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)lower(s[i])) * 1099511628211ull;
  return h;
}

static bool same_word(const word_t *w, const char *s, size_t len) {
  if (w->len != len) return false;
  for (size_t i = 0; i < len; i++)
    if (w->word[i] != lower(s[i])) return false;
  return true;
}

static void table_free(table_t *t) {
  for (size_t i = 0; i < t->cap; i++) free(t->slots[i].word);
  free(t->slots);
  t->slots = NULL;
  t->cap = t->n = 0;
}

static word_t *table_slot(word_t *slots, size_t cap, const char *s, size_t len) {
  size_t i = (size_t)hash_lower(s, len) & (cap - 1);
  while (slots[i].word != NULL && !same_word(&slots[i], s, len)) i = (i + 1) & (cap - 1);
  return &slots[i];
}

/* Add n to the count of s[0..len) (any case). Returns false when out of memory. */
static bool table_add(table_t *t, const char *s, size_t len, uint64_t n) {
  if ((t->n + 1) * 10 > t->cap * 7) { /* keep the load under 70% */
    size_t cap = t->cap ? t->cap * 2 : 256;
    word_t *slots = calloc(cap, sizeof *slots);
    if (slots == NULL) return false;
    for (size_t i = 0; i < t->cap; i++)
      if (t->slots[i].word != NULL)
        *table_slot(slots, cap, t->slots[i].word, t->slots[i].len) = t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
  }
  word_t *w = table_slot(t->slots, t->cap, s, len);
  if (w->word == NULL) {
    if ((w->word = malloc(len + 1)) == NULL) return false;
    for (size_t i = 0; i < len; i++) w->word[i] = lower(s[i]);
    w->word[len] = '\0';
    w->len = len;
    w->count = 0;
    t->n++;
  }
  w->count += n;
  return true;
}

static const word_t *table_find(const table_t *t, const char *s, size_t len) {
  if (t->cap == 0) return NULL;
  const word_t *w = table_slot(t->slots, t->cap, s, len);
  return w->word != NULL ? w : NULL;
}

/* Most frequent first; ties in alphabetical order. */
static int by_count(const void *a, const void *b) {
  const word_t *x = *(const word_t *const *)a, *y = *(const word_t *const *)b;
  if (x->count != y->count) return x->count < y->count ? 1 : -1;
  return strcmp(x->word, y->word);
}

/* ---- The remote functions ------------------------------------------------- */

/* count(text, start, end) -> msgpack map {word: count} for text[start..end). */
static int count_chunk(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *data;
  size_t size;
  int64_t start, end;
  TRY(ctx, ray_ctx_arg_bytes(ctx, 0, &data, &size)); /* the whole file, zero-copy */
  TRY(ctx, ray_ctx_arg_i64(ctx, 1, &start));
  TRY(ctx, ray_ctx_arg_i64(ctx, 2, &end));
  if (start < 0 || end < start || (size_t)end > size)
    return ray_fail(ctx, RAY_EINVAL, "count: bad range [%" PRId64 ", %" PRId64 ")", start, end);
  const char *text = data;
  table_t t = {0};
  for (size_t i = (size_t)start; i < (size_t)end;) {
    if (!is_letter(text[i])) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < (size_t)end && is_letter(text[j])) j++;
    if (!table_add(&t, text + i, j - i, 1)) {
      table_free(&t);
      return ray_fail(ctx, RAY_ENOMEM, "count: out of memory");
    }
    i = j;
  }
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, t.n);
  for (size_t i = 0; i < t.cap; i++) {
    if (t.slots[i].word == NULL) continue;
    msgpack_pack_str(&pk, t.slots[i].len);
    msgpack_pack_str_body(&pk, t.slots[i].word, t.slots[i].len);
    msgpack_pack_uint64(&pk, t.slots[i].count);
  }
  table_free(&t);
  size_t len = sb.size;
  char *packed = msgpack_sbuffer_release(&sb); /* malloc'd: the store frees it */
  int rc = ray_return_owned(ctx, 0, packed, len, free_buffer, NULL);
  if (rc != RAY_OK) free(packed);
  TRY(ctx, rc);
  return 0;
}

/* merge(map_1, ..., map_k) -> msgpack array of [word, count], most frequent first. */
static int merge_counts(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  table_t t = {0};
  for (size_t a = 0; a < ray_ctx_nargs(ctx); a++) {
    msgpack_object m;
    int rc = ray_ctx_arg_msgpack(ctx, a, &m); /* strings point into the store: zero-copy */
    if (rc == RAY_OK && m.type != MSGPACK_OBJECT_MAP) rc = RAY_ETYPE;
    for (uint32_t i = 0; rc == RAY_OK && i < m.via.map.size; i++) {
      const msgpack_object_kv *kv = &m.via.map.ptr[i];
      if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        rc = RAY_EDECODE;
      else if (!table_add(&t, kv->key.via.str.ptr, kv->key.via.str.size, kv->val.via.u64))
        rc = RAY_ENOMEM;
    }
    if (rc != RAY_OK) {
      table_free(&t);
      return ray_fail(ctx, rc, "merge: argument %zu: %s", a, ray_err_name(rc));
    }
  }
  const word_t **order = malloc((t.n ? t.n : 1) * sizeof *order);
  if (order == NULL) {
    table_free(&t);
    return ray_fail(ctx, RAY_ENOMEM, "merge: out of memory");
  }
  size_t n = 0;
  for (size_t i = 0; i < t.cap; i++)
    if (t.slots[i].word != NULL) order[n++] = &t.slots[i];
  qsort(order, n, sizeof *order, by_count);
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, n);
  for (size_t i = 0; i < n; i++) {
    msgpack_pack_array(&pk, 2);
    msgpack_pack_str(&pk, order[i]->len);
    msgpack_pack_str_body(&pk, order[i]->word, order[i]->len);
    msgpack_pack_uint64(&pk, order[i]->count);
  }
  free(order);
  table_free(&t);
  size_t len = sb.size;
  char *packed = msgpack_sbuffer_release(&sb);
  int rc = ray_return_owned(ctx, 0, packed, len, free_buffer, NULL);
  if (rc != RAY_OK) free(packed);
  TRY(ctx, rc);
  return 0;
}

/* ---- The input ------------------------------------------------------------- */

static char *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  EXPECT(buf != NULL);
  for (;;) {
    if (n == cap) {
      buf = realloc(buf, cap *= 2);
      EXPECT(buf != NULL);
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    if (got == 0) break;
    n += got;
  }
  fclose(f);
  *size = n;
  return buf;
}

/* When the default file is missing: a deterministic corpus of mixed-case
 * words and punctuation, written to a temporary file (so the shell pipeline
 * reads the same bytes). */
static void make_corpus(char *path, size_t cap) {
  static const char *words[] = {"Ray",    "task",  "actor", "object", "store", "the",
                                "of",     "a",     "get",   "put",    "Wait",  "future",
                                "worker", "shard", "ref",   "LOOP",   "spill", "graph"};
  static const char *seps[] = {" ", " ", " ", ", ", ".\n", "; ", " -- ", "\n\n", "(", ") "};
  const char *dir = getenv("TMPDIR");
  snprintf(path, cap, "%s/rustyray_corpus_XXXXXX", dir != NULL && *dir ? dir : "/tmp");
  int fd = mkstemp(path);
  EXPECT(fd >= 0);
  FILE *f = fdopen(fd, "w");
  EXPECT(f != NULL);
  uint64_t s = 42;
  for (int i = 0; i < 20000; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    fputs(words[(s >> 33) % (sizeof words / sizeof words[0])], f);
    fputs(seps[(s >> 17) % (sizeof seps / sizeof seps[0])], f);
  }
  EXPECT(fclose(f) == 0);
}

/* The reference: `sort | uniq -c` over the same file. */
static table_t shell_counts(const char *path) {
  EXPECT(strchr(path, '\'') == NULL); /* quoted below */
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "LC_ALL=C tr -cs 'A-Za-z' '\\n' < '%s' | LC_ALL=C tr A-Z a-z | LC_ALL=C sort | uniq -c",
           path);
  FILE *p = popen(cmd, "r");
  EXPECT(p != NULL);
  table_t t = {0};
  char line[4096];
  while (fgets(line, sizeof line, p) != NULL) {
    size_t len = strlen(line);
    EXPECT(len > 0 && line[len - 1] == '\n');
    line[--len] = '\0';
    char *end;
    unsigned long long n = strtoull(line, &end, 10);
    EXPECT(end != line && n > 0);
    EXPECT(*end == ' ' || *end == '\0');
    const char *word = *end == ' ' ? end + 1 : end;
    if (*word == '\0') continue; /* the empty line tr makes of leading non-letters */
    EXPECT(table_add(&t, word, strlen(word), n));
  }
  EXPECT(pclose(p) == 0);
  return t;
}

/* ---- The program ------------------------------------------------------------ */

int main(int argc, char **argv) {
  /* The functions, registered by every ray_init from here on (in cluster
   * mode on every rank, before the ranks compare their registrations). */
  static const uint32_t t_msgpack[] = {RAY_TYPE_MSGPACK};
  static ray_function_t f_count, f_merge;
  static ray_static_function_t s_count = {"count", count_chunk, NULL, t_msgpack, 1, &f_count, NULL};
  static ray_static_function_t s_merge = {"merge", merge_counts, NULL, t_msgpack,
                                          1,       &f_merge,     NULL};
  ray_static_function_add(&s_count);
  ray_static_function_add(&s_merge);
  CHECK(ray_init(NULL)); /* first: in cluster mode only rank 0 goes on */

  char corpus[512] = "";
  const char *path = argc > 1 ? argv[1] : DEFAULT_FILE;
  size_t size = 0;
  char *text = read_file(path, &size);
  if (text == NULL && argc > 1) {
    fprintf(stderr, "wordcount: cannot read %s\n", path);
    CHECK(ray_shutdown());
    return 2;
  }
  if (text == NULL) {
    make_corpus(corpus, sizeof corpus);
    path = corpus;
    text = read_file(path, &size);
    EXPECT(text != NULL);
    printf("%s is missing: counting a generated corpus instead\n", DEFAULT_FILE);
  }
  printf("counting the words of %s (%zu bytes) in %d chunks\n", path, size, NUM_CHUNKS);

  /* 1. The text, once, without a copy: the store frees it with free(). */
  ray_ref_t text_ref;
  CHECK(ray_put_owned(text, size, free_buffer, NULL, &text_ref));

  /* 2. Map: chunk boundaries moved forward out of words, so no word is cut. */
  printf("\n== map: %d count tasks\n", NUM_CHUNKS);
  ray_ref_t maps[NUM_CHUNKS];
  ray_arg_t merge_args[NUM_CHUNKS];
  size_t from = 0;
  for (int k = 0; k < NUM_CHUNKS; k++) {
    size_t to = k == NUM_CHUNKS - 1 ? size : size / NUM_CHUNKS * (size_t)(k + 1);
    if (to < from) to = from;
    while (to > 0 && to < size && is_letter(text[to - 1]) && is_letter(text[to])) to++;
    ray_arg_t a[] = {ray_arg_ref(text_ref), ray_arg_i64((int64_t)from), ray_arg_i64((int64_t)to)};
    CHECK(ray_task_submit(f_count, a, 3, NULL, &maps[k]));
    merge_args[k] = ray_arg_ref(maps[k]);
    printf("  chunk %d: bytes [%zu, %zu)\n", k + 1, from, to);
    from = to;
  }
  CHECK(ray_ref_release(text_ref)); /* each task holds its own reference */

  /* 3. Reduce: submitted at once; it runs when all eight maps exist. */
  ray_ref_t merged;
  CHECK(ray_task_submit(f_merge, merge_args, NUM_CHUNKS, NULL, &merged));
  EXPECT(merged.type == RAY_TYPE_MSGPACK); /* typed at submission */

  /* 4. The result: a zero-copy view of the msgpack array. */
  ray_msgpack_t m;
  int rc = ray_get_msgpack(merged, RAY_TIMEOUT_INFINITE, &m);
  if (rc != RAY_OK) {
    ray_error_t *err = NULL;
    char why[2048] = "(no error object)";
    if (ray_get_error(merged, &err) == 0 && err != NULL) ray_error_format(err, why, sizeof why);
    ray_error_free(err);
    fprintf(stderr, "wordcount: merge failed with %s:\n%s\n", ray_err_name(rc), why);
    return 1;
  }
  EXPECT(m.obj.type == MSGPACK_OBJECT_ARRAY);
  size_t distinct = m.obj.via.array.size;
  uint64_t total = 0;
  table_t ours = {0};
  printf("\n== reduce: top 10 of %zu distinct words\n", distinct);
  for (size_t i = 0; i < distinct; i++) {
    const msgpack_object *pair = &m.obj.via.array.ptr[i];
    EXPECT(pair->type == MSGPACK_OBJECT_ARRAY && pair->via.array.size == 2);
    const msgpack_object *w = &pair->via.array.ptr[0], *c = &pair->via.array.ptr[1];
    EXPECT(w->type == MSGPACK_OBJECT_STR && c->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    if (i < 10)
      printf("  %2zu. %-12.*s %6" PRIu64 "\n", i + 1, (int)w->via.str.size, w->via.str.ptr,
             c->via.u64);
    if (i > 0) { /* most frequent first */
      const msgpack_object *prev = &m.obj.via.array.ptr[i - 1].via.array.ptr[1];
      EXPECT(prev->via.u64 >= c->via.u64);
    }
    EXPECT(table_find(&ours, w->via.str.ptr, w->via.str.size) == NULL); /* each word once */
    EXPECT(table_add(&ours, w->via.str.ptr, w->via.str.size, c->via.u64));
    total += c->via.u64;
  }
  ray_msgpack_release(&m);
  printf("  %" PRIu64 " words in all\n", total);

  /* 5. Check every count against `sort | uniq -c` on the same file. */
  table_t want = shell_counts(path);
  uint64_t want_total = 0;
  size_t checked = 0;
  for (size_t i = 0; i < want.cap; i++) {
    const word_t *w = &want.slots[i];
    if (w->word == NULL) continue;
    const word_t *got = table_find(&ours, w->word, w->len);
    if (got == NULL || got->count != w->count) {
      fprintf(stderr, "wordcount: \"%s\": uniq -c says %" PRIu64 ", the tasks say %" PRIu64 "\n",
              w->word, w->count, got ? got->count : 0);
      return 1;
    }
    want_total += w->count;
    checked++;
  }
  EXPECT(checked == distinct && want_total == total);
  printf("\n== check\n  all %zu counts equal those of `tr | sort | uniq -c` on the same file\n",
         checked);
  table_free(&want);
  table_free(&ours);

  if (ray_num_ranks() > 1) { /* cluster mode: where the work went */
    ray_stats_t st;
    CHECK(ray_stats(&st));
    printf("  %" PRIu64 " of %d tasks ran on the %d other ranks\n", st.remote_tasks_sent,
           NUM_CHUNKS + 1, ray_num_ranks() - 1);
  }

  CHECK(ray_ref_release_batch(maps, NUM_CHUNKS));
  CHECK(ray_ref_release(merged));
  CHECK(ray_shutdown());
  if (corpus[0] != '\0') unlink(corpus);
  printf("shutdown: OK\n");
  return 0;
}
