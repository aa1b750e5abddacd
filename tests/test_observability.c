/* test_observability.c - seeing into the runtime: the timeline (Chrome
 * Trace Event JSON, parsed back here by a strict JSON reader and checked
 * against a known DAG), the Prometheus metrics text and its HTTP endpoint
 * (scraped with curl), and the log (levels, RAY_LOG_LEVEL, host handler).
 *
 * Waiting for the counters: a task's results become ready before its
 * worker records the run (span, histogram), counts it finished and releases
 * its arguments, so after ray_get a test waits on ray_stats() itself
 * (wait_quiet: the finished count, and the objects left) before it reads
 * the timeline or compares the metrics with the stats. */
#include "test_util.h"

#include <sched.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* ======================================================================== */
/* A strict JSON reader for the subset the timeline uses: objects, arrays,
 * strings (ASCII escapes) and numbers. Anything else (true/false/null,
 * trailing commas, duplicate keys, stray bytes after the value) is an error. */

typedef struct jv_s jv_t;
struct jv_s {
  char t;      /* 'o' object, 'a' array, 's' string, 'n' number */
  char *s;     /* the string, or the number's text */
  double num;  /* 'n' */
  size_t n;    /* members or items */
  char **keys; /* 'o' */
  jv_t **v;    /* 'o' values, 'a' items */
};

typedef struct jp_s {
  const char *p, *start, *end;
  const char *err;
  int depth;
} jp_t;

static void jv_free(jv_t *v) {
  if (v == NULL) return;
  for (size_t i = 0; i < v->n; i++) {
    if (v->keys != NULL) free(v->keys[i]);
    jv_free(v->v[i]);
  }
  free(v->keys);
  free(v->v);
  free(v->s);
  free(v);
}

static void jp_ws(jp_t *jp) {
  while (jp->p < jp->end && (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
    jp->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* At the opening quote. Returns a malloc'd string or NULL (jp->err set). */
static char *jp_string(jp_t *jp) {
  jp->p++;
  size_t cap = 32, len = 0;
  char *out = malloc(cap);
  if (out == NULL) {
    jp->err = "out of memory";
    return NULL;
  }
  for (;;) {
    if (jp->p >= jp->end) {
      jp->err = "unterminated string";
      break;
    }
    unsigned char c = (unsigned char)*jp->p++;
    if (c == '"') {
      out[len] = '\0';
      return out;
    }
    if (c < 0x20) {
      jp->err = "raw control character in a string";
      break;
    }
    if (c == '\\') {
      if (jp->p >= jp->end) {
        jp->err = "unterminated escape";
        break;
      }
      char e = *jp->p++;
      if (e == '"' || e == '\\' || e == '/') {
        c = (unsigned char)e;
      } else if (e == 'b') {
        c = '\b';
      } else if (e == 'f') {
        c = '\f';
      } else if (e == 'n') {
        c = '\n';
      } else if (e == 'r') {
        c = '\r';
      } else if (e == 't') {
        c = '\t';
      } else if (e == 'u') {
        int code = 0;
        for (int i = 0; i < 4; i++) {
          int h = jp->p < jp->end ? hexval(*jp->p) : -1;
          if (h < 0) {
            jp->err = "bad \\u escape";
            goto fail;
          }
          code = code * 16 + h;
          jp->p++;
        }
        if (code == 0 || code > 0x7f) {
          jp->err = "\\u escape outside ASCII (never emitted)";
          break;
        }
        c = (unsigned char)code;
      } else {
        jp->err = "unknown escape";
        break;
      }
    }
    if (len + 2 > cap) {
      char *bigger = realloc(out, cap *= 2);
      if (bigger == NULL) {
        jp->err = "out of memory";
        break;
      }
      out = bigger;
    }
    out[len++] = (char)c;
  }
fail:
  free(out);
  return NULL;
}

static bool is_digit(const jp_t *jp) {
  return jp->p < jp->end && *jp->p >= '0' && *jp->p <= '9';
}

static jv_t *jv_new(char t) {
  jv_t *v = calloc(1, sizeof *v);
  if (v != NULL) v->t = t;
  return v;
}

static jv_t *jp_value(jp_t *jp);

static bool jv_push(jv_t *v, char *key, jv_t *item) {
  jv_t **items = realloc(v->v, (v->n + 1) * sizeof *items);
  if (items == NULL) return false;
  v->v = items;
  if (v->t == 'o') {
    char **keys = realloc(v->keys, (v->n + 1) * sizeof *keys);
    if (keys == NULL) return false;
    v->keys = keys;
    v->keys[v->n] = key;
  }
  v->v[v->n++] = item;
  return true;
}

static jv_t *jp_number(jp_t *jp) {
  const char *s = jp->p;
  if (jp->p < jp->end && *jp->p == '-') jp->p++;
  if (jp->p < jp->end && *jp->p == '0') {
    jp->p++;
  } else if (is_digit(jp)) {
    while (is_digit(jp)) jp->p++;
  } else {
    jp->err = "bad number";
    return NULL;
  }
  if (jp->p < jp->end && *jp->p == '.') {
    jp->p++;
    if (!is_digit(jp)) {
      jp->err = "bad fraction";
      return NULL;
    }
    while (is_digit(jp)) jp->p++;
  }
  if (jp->p < jp->end && (*jp->p == 'e' || *jp->p == 'E')) {
    jp->p++;
    if (jp->p < jp->end && (*jp->p == '+' || *jp->p == '-')) jp->p++;
    if (!is_digit(jp)) {
      jp->err = "bad exponent";
      return NULL;
    }
    while (is_digit(jp)) jp->p++;
  }
  jv_t *v = jv_new('n');
  if (v == NULL || (v->s = strndup(s, (size_t)(jp->p - s))) == NULL) {
    free(v);
    jp->err = "out of memory";
    return NULL;
  }
  v->num = strtod(v->s, NULL);
  return v;
}

/* At '{' or '['. */
static jv_t *jp_container(jp_t *jp) {
  bool obj = *jp->p == '{';
  char close = obj ? '}' : ']';
  if (++jp->depth > 32) {
    jp->err = "nested too deep";
    return NULL;
  }
  jp->p++;
  jv_t *v = jv_new(obj ? 'o' : 'a');
  if (v == NULL) {
    jp->err = "out of memory";
    return NULL;
  }
  jp_ws(jp);
  if (jp->p < jp->end && *jp->p == close) {
    jp->p++;
    jp->depth--;
    return v;
  }
  for (;;) {
    char *key = NULL;
    if (obj) {
      jp_ws(jp);
      if (jp->p >= jp->end || *jp->p != '"') {
        jp->err = "expected a key";
        goto fail;
      }
      if ((key = jp_string(jp)) == NULL) goto fail;
      for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->keys[i], key) == 0) {
          jp->err = "duplicate key";
          free(key);
          goto fail;
        }
      }
      jp_ws(jp);
      if (jp->p >= jp->end || *jp->p != ':') {
        jp->err = "expected ':'";
        free(key);
        goto fail;
      }
      jp->p++;
    }
    jv_t *item = jp_value(jp);
    if (item == NULL) {
      free(key);
      goto fail;
    }
    if (!jv_push(v, key, item)) {
      jp->err = "out of memory";
      free(key);
      jv_free(item);
      goto fail;
    }
    jp_ws(jp);
    if (jp->p < jp->end && *jp->p == ',') {
      jp->p++;
      continue;
    }
    if (jp->p < jp->end && *jp->p == close) {
      jp->p++;
      jp->depth--;
      return v;
    }
    jp->err = obj ? "expected ',' or '}'" : "expected ',' or ']'";
    goto fail;
  }
fail:
  jv_free(v);
  return NULL;
}

static jv_t *jp_value(jp_t *jp) {
  jp_ws(jp);
  if (jp->p >= jp->end) {
    jp->err = "unexpected end";
    return NULL;
  }
  char c = *jp->p;
  if (c == '{' || c == '[') return jp_container(jp);
  if (c == '"') {
    char *s = jp_string(jp);
    if (s == NULL) return NULL;
    jv_t *v = jv_new('s');
    if (v == NULL) {
      free(s);
      jp->err = "out of memory";
      return NULL;
    }
    v->s = s;
    return v;
  }
  if (c == '-' || (c >= '0' && c <= '9')) return jp_number(jp);
  jp->err = "unexpected character (true/false/null are not in the subset)";
  return NULL;
}

static bool g_json_quiet; /* the reader's own test expects errors */

/* Parse a whole document; on error prints where and returns NULL. */
static jv_t *json_parse(const char *text, size_t len) {
  jp_t jp = {text, text, text + len, NULL, 0};
  jv_t *v = jp_value(&jp);
  if (v != NULL) {
    jp_ws(&jp);
    if (jp.p != jp.end) {
      jp.err = "bytes after the value";
      jv_free(v);
      v = NULL;
    }
  }
  if (v == NULL && !g_json_quiet)
    print_error("JSON error at byte %zu: %s\n", (size_t)(jp.p - jp.start), jp.err ? jp.err : "?");
  return v;
}

static const jv_t *jget(const jv_t *o, const char *key) {
  if (o == NULL || o->t != 'o') return NULL;
  for (size_t i = 0; i < o->n; i++)
    if (strcmp(o->keys[i], key) == 0) return o->v[i];
  return NULL;
}

static const char *jstr(const jv_t *o, const char *key) {
  const jv_t *v = jget(o, key);
  return v != NULL && v->t == 's' ? v->s : NULL;
}

/* A number member that must be present. */
static double jnum(const jv_t *o, const char *key) {
  const jv_t *v = jget(o, key);
  if (v == NULL || v->t != 'n') {
    print_error("missing number member \"%s\"\n", key);
    fail();
  }
  return v->num;
}

/* A non-negative integer member, read exactly from its text. */
static uint64_t juint(const jv_t *o, const char *key) {
  const jv_t *v = jget(o, key);
  if (v == NULL || v->t != 'n' || v->s[0] == '-' || strpbrk(v->s, ".eE") != NULL) {
    print_error("member \"%s\" is not a non-negative integer\n", key);
    fail();
  }
  return strtoull(v->s, NULL, 10);
}

static void test_json_reader_is_strict(void **state) {
  (void)state;
  static const char *bad[] = {
      "",       "{",          "{\"a\":1,}",        "[1,]",          "{\"a\":1,\"a\":2}",
      "[true]", "[null]",     "{\"a\" 1}",         "[01]",          "[1.]",
      "[1e]",   "[\"\x01\"]", "[\"\\x\"]",         "[\"\\u00e9\"]", "[1] x",
      "'a'",    "[-]",        "{\"a\":1 \"b\":2}", "[\"abc",
  };
  g_json_quiet = true;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    jv_t *v = json_parse(bad[i], strlen(bad[i]));
    if (v != NULL) {
      print_error("accepted invalid JSON: %s\n", bad[i]);
      jv_free(v);
      fail();
    }
  }
  g_json_quiet = false;
  const char *good = " {\"a\":[1,-2.5,3e2,0],\"b\":{\"c\":\"x\\\"y\\\\z\\u0041\\n\"},\"d\":[]} ";
  jv_t *v = json_parse(good, strlen(good));
  assert_non_null(v);
  const jv_t *a = jget(v, "a");
  assert_non_null(a);
  assert_int_equal(a->n, 4);
  assert_true(a->v[1]->num == -2.5 && a->v[2]->num == 300.0);
  assert_string_equal(jstr(jget(v, "b"), "c"), "x\"y\\zA\n");
  assert_int_equal(jget(v, "d")->n, 0);
  jv_free(v);
}

/* ======================================================================== */
/* Files. */

static void tmp_path(char *out, size_t cap, const char *tag) {
  const char *dir = getenv("TMPDIR");
  if (dir == NULL || *dir == '\0') dir = "/tmp";
  snprintf(out, cap, "%s/rustyray_%s_XXXXXX", dir, tag);
  int fd = mkstemp(out);
  assert_true(fd >= 0);
  close(fd);
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  assert_non_null(buf);
  for (;;) {
    if (n + 1 >= cap) {
      buf = realloc(buf, cap *= 2);
      assert_non_null(buf);
    }
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    if (got == 0) break;
    n += got;
  }
  fclose(f);
  buf[n] = '\0';
  *len = n;
  return buf;
}

static bool file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* ======================================================================== */
/* The workload: leaves feeding a combine task, a failing task, and an
 * accumulator actor. Each body records its task id for the trace check. */

enum { ID_LEAF0, ID_LEAF1, ID_COMBINE, ID_CTOR, ID_ADD, ID_GET, ID_BOOM, ID_N };
static atomic_uint_fast64_t g_task_id[ID_N];
static rt_errs_t g_errs;

static void note_id(int slot, ray_task_ctx_t *ctx) {
  uint64_t id = ray_ctx_task_id(ctx);
  RT_CHECK(&g_errs, id != 0, slot);
  atomic_store(&g_task_id[slot], id);
}

/* leaf(which, value) -> value */
static int leaf_fn(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t which = -1, value = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &which);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &value);
  if (rc != 0) return rc;
  if (which == 0 || which == 1) note_id(which == 0 ? ID_LEAF0 : ID_LEAF1, ctx);
  return ray_return_i64(ctx, 0, value);
}

/* combine(a, b) -> a + b */
static int combine_fn(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t a = 0, b = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &a);
  if (rc == 0) rc = ray_ctx_arg_i64(ctx, 1, &b);
  if (rc != 0) return rc;
  note_id(ID_COMBINE, ctx);
  return ray_return_i64(ctx, 0, a + b);
}

/* boom() fails with a code of its own choosing: the span's outcome names it. */
static int boom_fn(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  note_id(ID_BOOM, ctx);
  return ray_fail(ctx, RAY_EINVAL, "boom refuses on purpose");
}

static int acc_ctor(ray_task_ctx_t *ctx, void **state) {
  int64_t start = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &start);
  if (rc != 0) return rc;
  note_id(ID_CTOR, ctx);
  int64_t *s = malloc(sizeof *s);
  if (s == NULL) return RAY_ENOMEM;
  *s = start;
  *state = s;
  return 0;
}

static void acc_dtor(void *state) {
  free(state);
}

static int acc_add(ray_task_ctx_t *ctx, void *state) {
  int64_t *s = state, by = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &by);
  if (rc != 0) return rc;
  note_id(ID_ADD, ctx);
  *s += by;
  return ray_return_i64(ctx, 0, *s);
}

static int acc_get(ray_task_ctx_t *ctx, void *state) {
  note_id(ID_GET, ctx);
  return ray_return_i64(ctx, 0, *(int64_t *)state);
}

static const ray_method_def_t k_acc_methods[] = {
    {"add", acc_add, rt_t_i64, 1},
    {"get", acc_get, rt_t_i64, 1},
};
static const ray_actor_class_t k_acc = {"Acc", acc_ctor, acc_dtor, k_acc_methods, 2};

typedef struct fns_s {
  ray_function_t leaf, combine, boom;
} fns_t;

static fns_t register_fns(void) {
  fns_t f;
  assert_rc(ray_function_register("leaf", leaf_fn, NULL, rt_t_i64, 1, &f.leaf), 0);
  assert_rc(ray_function_register("combine", combine_fn, NULL, rt_t_i64, 1, &f.combine), 0);
  assert_rc(ray_function_register("boom", boom_fn, NULL, rt_t_i64, 1, &f.boom), 0);
  rt_errs_init(&g_errs);
  for (int i = 0; i < ID_N; i++) atomic_store(&g_task_id[i], 0);
  return f;
}

static ray_ref_t submit_leaf(fns_t *f, int64_t which, int64_t value) {
  ray_arg_t a[] = {ray_arg_i64(which), ray_arg_i64(value)};
  ray_ref_t r;
  assert_rc(ray_task_submit(f->leaf, a, 2, NULL, &r), 0);
  return r;
}

static ray_ref_t submit_combine(fns_t *f, ray_ref_t x, ray_ref_t y) {
  ray_arg_t a[] = {ray_arg_ref(x), ray_arg_ref(y)};
  ray_ref_t r;
  assert_rc(ray_task_submit(f->combine, a, 2, NULL, &r), 0);
  return r;
}

static ray_ref_t submit_boom(fns_t *f) {
  ray_ref_t r;
  assert_rc(ray_task_submit(f->boom, NULL, 0, NULL, &r), 0);
  return r;
}

static int64_t get_i64(ray_ref_t r) {
  int64_t v = 0;
  assert_rc(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v), 0);
  return v;
}

/* Results become ready before their worker records the run and counts the
 * task finished, and a task lets go of its arguments only after that: wait
 * for the runtime to be quiet (every submitted task finished) through the
 * documented test hook, then check the count and, when `objects` is not
 * UINT64_MAX, that the store holds exactly that many objects. */
static void wait_quiet(uint64_t finished, uint64_t objects) {
  assert_rc(ray__quiesce(60000), 0);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.tasks_finished, finished);
  if (objects != UINT64_MAX) assert_int_equal(s.objects, objects);
}

static inline void wait_finished(uint64_t n) {
  wait_quiet(n, UINT64_MAX);
}

/* ======================================================================== */
/* The trace, read back. */

typedef struct span_s {
  const char *name, *cat, *outcome;
  unsigned tid;
  double ts, dur;
  uint64_t task_id;
} span_t;

typedef struct flowpt_s {
  uint64_t id;
  unsigned tid;
  double ts;
} flowpt_t;

typedef struct trace_s {
  jv_t *root;
  span_t spans[256];
  size_t nspans;
  flowpt_t s[256], f[256];
  size_t ns, nf;
  unsigned rows[256]; /* tids named by thread_name metadata */
  size_t nrows;
  bool process_named;
} trace_t;

static bool row_named(const trace_t *t, unsigned tid) {
  for (size_t i = 0; i < t->nrows; i++)
    if (t->rows[i] == tid) return true;
  return false;
}

/* Parse `path` and check the shape of every event. */
static void trace_load(const char *path, trace_t *t) {
  memset(t, 0, sizeof *t);
  size_t len = 0;
  char *text = read_all(path, &len);
  if (text == NULL) {
    print_error("cannot read %s\n", path);
    fail();
  }
  t->root = json_parse(text, len);
  free(text);
  assert_non_null(t->root);
  assert_int_equal(t->root->t, 'o');
  assert_non_null(jstr(t->root, "displayTimeUnit"));
  const jv_t *events = jget(t->root, "traceEvents");
  assert_non_null(events);
  assert_int_equal(events->t, 'a');
  for (size_t i = 0; i < events->n; i++) {
    const jv_t *e = events->v[i];
    assert_int_equal(e->t, 'o');
    const char *ph = jstr(e, "ph"), *name = jstr(e, "name");
    assert_non_null(ph);
    assert_non_null(name);
    assert_int_equal(juint(e, "pid"), 0); /* the rank: 0 in a single process */
    if (strcmp(ph, "X") == 0) {
      assert_true(t->nspans < 256);
      span_t *s = &t->spans[t->nspans++];
      s->name = name;
      s->cat = jstr(e, "cat");
      assert_non_null(s->cat);
      s->tid = (unsigned)juint(e, "tid");
      s->ts = jnum(e, "ts");
      s->dur = jnum(e, "dur");
      assert_true(s->ts >= 0 && s->dur >= 0);
      const jv_t *args = jget(e, "args");
      assert_non_null(args);
      s->task_id = juint(args, "task_id");
      assert_true(s->task_id != 0);
      s->outcome = jstr(args, "outcome");
      assert_non_null(s->outcome);
    } else if (strcmp(ph, "s") == 0 || strcmp(ph, "f") == 0) {
      bool start = ph[0] == 's';
      assert_string_equal(name, "result");
      assert_string_equal(jstr(e, "cat"), "dependency");
      if (!start) assert_string_equal(jstr(e, "bp"), "e"); /* binds to the enclosing slice */
      size_t *n = start ? &t->ns : &t->nf;
      assert_true(*n < 256);
      flowpt_t *p = start ? &t->s[(*n)++] : &t->f[(*n)++];
      p->id = juint(e, "id");
      p->tid = (unsigned)juint(e, "tid");
      p->ts = jnum(e, "ts");
    } else if (strcmp(ph, "M") == 0) {
      const char *label = jstr(jget(e, "args"), "name");
      assert_non_null(label);
      if (strcmp(name, "thread_name") == 0) {
        unsigned tid = (unsigned)juint(e, "tid");
        char want[32];
        snprintf(want, sizeof want, "worker %u", tid);
        assert_string_equal(label, want);
        assert_false(row_named(t, tid)); /* one row per worker thread */
        assert_true(t->nrows < 256);
        t->rows[t->nrows++] = tid;
      } else {
        assert_string_equal(name, "process_name");
        assert_string_equal(label, "rustyray rank 0");
        t->process_named = true;
      }
    } else {
      print_error("unexpected event phase \"%s\"\n", ph);
      fail();
    }
  }
  assert_true(t->process_named);
  /* Every span sits on a named worker row. */
  for (size_t i = 0; i < t->nspans; i++) assert_true(row_named(t, t->spans[i].tid));
}

static void trace_free(trace_t *t) {
  jv_free(t->root);
  t->root = NULL;
}

static const span_t *span_by_task(const trace_t *t, uint64_t task_id) {
  const span_t *found = NULL;
  for (size_t i = 0; i < t->nspans; i++) {
    if (t->spans[i].task_id == task_id) {
      assert_null(found); /* one span per run */
      found = &t->spans[i];
    }
  }
  return found;
}

static size_t spans_named(const trace_t *t, const char *name) {
  size_t n = 0;
  for (size_t i = 0; i < t->nspans; i++) n += strcmp(t->spans[i].name, name) == 0;
  return n;
}

/* The span a flow point belongs to: the start inside its producer's slice,
 * the finish at its consumer's start, both on the span's row. */
static const span_t *span_at(const trace_t *t, const flowpt_t *p, bool start) {
  const span_t *found = NULL;
  for (size_t i = 0; i < t->nspans; i++) {
    const span_t *s = &t->spans[i];
    if (s->tid != p->tid) continue;
    bool hit = start ? (p->ts >= s->ts - 0.0015 && p->ts <= s->ts + s->dur + 0.0015)
                     : fabs(p->ts - s->ts) < 0.0005;
    if (hit) {
      if (found != NULL) {
        print_error("flow point %llu at %.3f matches two spans\n", (unsigned long long)p->id,
                    p->ts);
        fail();
      }
      found = s;
    }
  }
  if (found == NULL) {
    print_error("flow point %llu (%s) at %.3f on row %u matches no span\n",
                (unsigned long long)p->id, start ? "s" : "f", p->ts, p->tid);
    fail();
  }
  return found;
}

typedef struct edge_s {
  uint64_t from, to; /* producer and consumer task ids */
} edge_t;

/* The arrows, as (producer, consumer) task id pairs; every id pairs one "s"
 * with one "f". Returns how many. */
static size_t trace_edges(const trace_t *t, edge_t *out, size_t cap) {
  assert_int_equal(t->ns, t->nf);
  for (size_t i = 0; i < t->ns; i++) {
    size_t matches = 0, j_match = 0;
    for (size_t j = 0; j < t->nf; j++) {
      if (t->f[j].id == t->s[i].id) {
        matches++;
        j_match = j;
      }
    }
    assert_int_equal(matches, 1);
    for (size_t k = 0; k < i; k++) assert_true(t->s[k].id != t->s[i].id);
    assert_true(i < cap);
    out[i].from = span_at(t, &t->s[i], true)->task_id;
    out[i].to = span_at(t, &t->f[j_match], false)->task_id;
  }
  return t->ns;
}

/* The arrows are exactly `want` (as a multiset). */
static void assert_edges(const trace_t *t, const edge_t *want, size_t nwant) {
  edge_t got[256];
  size_t n = trace_edges(t, got, 256);
  assert_int_equal(n, nwant);
  bool used[256] = {false};
  for (size_t i = 0; i < nwant; i++) {
    bool found = false;
    for (size_t j = 0; j < n && !found; j++) {
      if (!used[j] && got[j].from == want[i].from && got[j].to == want[i].to)
        used[j] = found = true;
    }
    if (!found) {
      print_error("missing flow arrow %llu -> %llu\n", (unsigned long long)want[i].from,
                  (unsigned long long)want[i].to);
      fail();
    }
  }
}

static const span_t *expect_span(const trace_t *t, int slot, const char *name, const char *cat,
                                 const char *outcome) {
  uint64_t id = atomic_load(&g_task_id[slot]);
  assert_true(id != 0);
  const span_t *s = span_by_task(t, id);
  if (s == NULL) {
    print_error("no span for %s (task %llu)\n", name, (unsigned long long)id);
    fail();
  }
  assert_string_equal(s->name, name);
  assert_string_equal(s->cat, cat);
  assert_string_equal(s->outcome, outcome);
  return s;
}

/* ======================================================================== */
/* Timeline tests. */

/* The DAG:
 *     leaf0(10) --+--> combine --> Acc.add(c)     Acc.get()     boom()
 *     leaf1(32) --+                   ^
 *     leaf0 --------> Acc.__init__ ---+ (the actor, created with leaf0's result)
 * Spans: 7 (one per task, call and creation). Arrows: leaf0 -> combine,
 * leaf1 -> combine, combine -> Acc.add, leaf0 -> Acc.__init__. */
static void test_timeline_dag(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.timeline = true;
  rt_begin_cfg(&cfg);
  fns_t f = register_fns();
  ray_ref_t a = submit_leaf(&f, 0, 10);
  ray_ref_t b = submit_leaf(&f, 1, 32);
  ray_ref_t c = submit_combine(&f, a, b);
  ray_arg_t ctor_args[] = {ray_arg_ref(a)};
  ray_actor_t acc;
  assert_rc(ray_actor_create(&k_acc, ctor_args, 1, NULL, &acc), 0);
  ray_arg_t add_args[] = {ray_arg_ref(c)};
  ray_ref_t d, e;
  assert_rc(ray_actor_call(acc, "add", add_args, 1, NULL, &d), 0);
  assert_rc(ray_actor_call(acc, "get", NULL, 0, NULL, &e), 0);
  ray_ref_t x = submit_boom(&f);

  assert_int_equal(get_i64(c), 42);
  assert_int_equal(get_i64(d), 52);
  assert_int_equal(get_i64(e), 52);
  int64_t v;
  assert_rc(ray_get_i64(x, RAY_TIMEOUT_INFINITE, &v), RAY_EINVAL);
  wait_finished(6); /* leaf x2, combine, add, get, boom (creations are not tasks) */
  rt_errs_assert(&g_errs);

  char path[512];
  tmp_path(path, sizeof path, "timeline");
  assert_rc(ray_timeline_dump(path), 0);
  trace_t *t = malloc(sizeof *t);
  assert_non_null(t);
  trace_load(path, t);
  assert_int_equal(t->nspans, 7);
  assert_true(t->nrows >= 2); /* every worker gets its row, busy or not */
  assert_int_equal(spans_named(t, "leaf"), 2);
  const span_t *s_l0 = expect_span(t, ID_LEAF0, "leaf", "task", "OK");
  const span_t *s_l1 = expect_span(t, ID_LEAF1, "leaf", "task", "OK");
  const span_t *s_c = expect_span(t, ID_COMBINE, "combine", "task", "OK");
  const span_t *s_i = expect_span(t, ID_CTOR, "Acc.__init__", "actor_creation", "OK");
  const span_t *s_a = expect_span(t, ID_ADD, "Acc.add", "actor_call", "OK");
  const span_t *s_g = expect_span(t, ID_GET, "Acc.get", "actor_call", "OK");
  expect_span(t, ID_BOOM, "boom", "task", "EINVAL"); /* its own code, by name */
  /* Calls of one actor run in order: get starts no earlier than add did. */
  assert_true(s_g->ts >= s_a->ts);
  edge_t want[] = {
      {s_l0->task_id, s_c->task_id},
      {s_l1->task_id, s_c->task_id},
      {s_c->task_id, s_a->task_id},
      {s_l0->task_id, s_i->task_id},
  };
  assert_edges(t, want, 4);
  trace_free(t);

  /* A second dump rewrites the file (truncating it) with the same content. */
  assert_rc(ray_timeline_dump(path), 0);
  trace_load(path, t);
  assert_int_equal(t->nspans, 7);
  assert_int_equal(t->ns, 4);
  trace_free(t);
  free(t);
  unlink(path);

  ray_ref_t all[] = {a, b, c, d, e, x};
  assert_rc(ray_ref_release_batch(all, 6), 0);
  assert_rc(ray_actor_release(acc), 0);
  rt_end();
}

/* Dumps taken while workers record: each is a valid trace whose arrows all
 * pair up; the last, once everything finished, has every span and arrow. */
static void test_timeline_dump_while_running(void **state) {
  (void)state;
  enum { PAIRS = 60 };
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.timeline = true;
  rt_begin_cfg(&cfg);
  fns_t f = register_fns();
  ray_ref_t refs[3 * PAIRS];
  for (int i = 0; i < PAIRS; i++) {
    refs[3 * i] = submit_leaf(&f, 100, i);
    refs[3 * i + 1] = submit_leaf(&f, 100, 1000 + i);
    refs[3 * i + 2] = submit_combine(&f, refs[3 * i], refs[3 * i + 1]);
  }
  char path[512];
  tmp_path(path, sizeof path, "timeline_live");
  trace_t *t = malloc(sizeof *t);
  assert_non_null(t);
  edge_t edges[256];
  size_t last = 0;
  for (int k = 0; k < 3; k++) { /* racing the workers on purpose */
    assert_rc(ray_timeline_dump(path), 0);
    trace_load(path, t);
    assert_true(t->nspans >= last && t->nspans <= 3 * PAIRS);
    last = t->nspans;
    trace_edges(t, edges, 256);
    trace_free(t);
  }
  for (int i = 0; i < PAIRS; i++) assert_int_equal(get_i64(refs[3 * i + 2]), 1000 + 2 * i);
  wait_finished(3 * PAIRS);
  assert_rc(ray_timeline_dump(path), 0);
  trace_load(path, t);
  assert_int_equal(t->nspans, 3 * PAIRS);
  assert_int_equal(spans_named(t, "combine"), PAIRS);
  size_t n = trace_edges(t, edges, 256);
  assert_int_equal(n, 2 * PAIRS);
  for (size_t i = 0; i < n; i++) {
    const span_t *to = span_by_task(t, edges[i].to), *from = span_by_task(t, edges[i].from);
    assert_string_equal(from->name, "leaf");
    assert_string_equal(to->name, "combine");
  }
  trace_free(t);
  free(t);
  unlink(path);
  assert_rc(ray_ref_release_batch(refs, 3 * PAIRS), 0);
  rt_errs_assert(&g_errs);
  rt_end();
}

/* RAY_TIMELINE=path turns the timeline on and writes it at shutdown. */
static void test_timeline_env_written_at_shutdown(void **state) {
  (void)state;
  char path[512];
  tmp_path(path, sizeof path, "timeline_env");
  unlink(path); /* shutdown creates it */
  assert_int_equal(setenv("RAY_TIMELINE", path, 1), 0);
  ray_config_t cfg;
  assert_rc(ray_config_init(&cfg), 0);
  assert_true(cfg.timeline);
  assert_string_equal(cfg.timeline_path, path);
  rt_begin_cfg(NULL);                            /* the defaults, read from the environment */
  assert_int_equal(unsetenv("RAY_TIMELINE"), 0); /* the runtime keeps its own copy */
  fns_t f = register_fns();
  ray_ref_t a = submit_leaf(&f, 0, 1);
  ray_ref_t b = submit_leaf(&f, 1, 2);
  ray_ref_t c = submit_combine(&f, a, b);
  assert_int_equal(get_i64(c), 3);
  ray_ref_t all[] = {a, b, c};
  assert_rc(ray_ref_release_batch(all, 3), 0);
  assert_false(file_exists(path));
  rt_end();
  rt_errs_assert(&g_errs);

  trace_t *t = malloc(sizeof *t);
  assert_non_null(t);
  trace_load(path, t);
  assert_int_equal(t->nspans, 3);
  const span_t *s_l0 = expect_span(t, ID_LEAF0, "leaf", "task", "OK");
  const span_t *s_l1 = expect_span(t, ID_LEAF1, "leaf", "task", "OK");
  const span_t *s_c = expect_span(t, ID_COMBINE, "combine", "task", "OK");
  edge_t want[] = {{s_l0->task_id, s_c->task_id}, {s_l1->task_id, s_c->task_id}};
  assert_edges(t, want, 2);
  trace_free(t);
  free(t);
  unlink(path);
}

static void test_timeline_errors(void **state) {
  (void)state;
  char path[512], dir[512];
  tmp_path(path, sizeof path, "timeline_err");
  snprintf(dir, sizeof dir, "%s", path); /* a directory: cannot be opened for writing */
  unlink(dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  tmp_path(path, sizeof path, "timeline_err");

  /* Before init. */
  assert_rc(ray_timeline_dump(path), RAY_ENOTINIT);
  assert_rc(ray_timeline_dump(NULL), RAY_EINVAL);

  /* Timeline off: dumping is refused; a path alone does not turn it on. */
  ray_config_t cfg;
  rt_config(&cfg);
  unlink(path);
  cfg.timeline_path = path;
  rt_begin_cfg(&cfg);
  assert_rc(ray_timeline_dump(path), RAY_EINVAL);
  rt_end();
  assert_false(file_exists(path));

  /* An empty timeline_path is refused by ray_init, leaving nothing behind. */
  rt_config(&cfg);
  cfg.timeline = true;
  cfg.timeline_path = "";
  assert_rc(ray_init(&cfg), RAY_EINVAL);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);

  /* Timeline on. */
  rt_config(&cfg);
  cfg.timeline = true;
  rt_begin_cfg(&cfg);
  assert_rc(ray_timeline_dump(NULL), RAY_EINVAL);
  assert_rc(ray_timeline_dump(""), RAY_EINVAL);
  int level = ray_log_level();
  assert_rc(ray_log_set_level(RAY_LOG_OFF), 0); /* the EIO is also logged: keep it quiet */
  assert_rc(ray_timeline_dump(dir), RAY_EIO);
  assert_rc(ray_timeline_dump("/nonexistent-rustyray-dir/trace.json"), RAY_EIO);
  assert_rc(ray_log_set_level(level), 0);
  /* Nothing ran: still a valid trace, with the worker rows and no spans. */
  assert_rc(ray_timeline_dump(path), 0);
  trace_t *t = malloc(sizeof *t);
  assert_non_null(t);
  trace_load(path, t);
  assert_int_equal(t->nspans, 0);
  assert_int_equal(t->ns, 0);
  assert_int_equal(t->nrows, 2);
  trace_free(t);
  free(t);
  rt_end();
  assert_rc(ray_timeline_dump(path), RAY_ENOTINIT);
  unlink(path);
  rmdir(dir);
}

/* ======================================================================== */
/* Metrics. */

/* The value of the sample line `name` (exact, labels included). */
static bool metric_find(const char *text, const char *name, const char **value) {
  size_t nl = strlen(name);
  for (const char *line = text; line != NULL && *line != '\0';) {
    if (strncmp(line, name, nl) == 0 && line[nl] == ' ') {
      *value = line + nl + 1;
      return true;
    }
    const char *eol = strchr(line, '\n');
    line = eol != NULL ? eol + 1 : NULL;
  }
  return false;
}

static uint64_t metric_u64(const char *text, const char *name) {
  const char *v;
  if (!metric_find(text, name, &v)) {
    print_error("metric %s not found in:\n%s\n", name, text);
    fail();
  }
  char *end;
  unsigned long long n = strtoull(v, &end, 10);
  assert_true(end != v && *end == '\n');
  return n;
}

static double metric_f64(const char *text, const char *name) {
  const char *v;
  if (!metric_find(text, name, &v)) {
    print_error("metric %s not found\n", name);
    fail();
  }
  char *end;
  double d = strtod(v, &end);
  assert_true(end != v && *end == '\n');
  return d;
}

/* The exposition format: every sample belongs to a family declared by a
 * HELP and a TYPE line before it; the text ends with a newline. */
static void assert_exposition_format(const char *text) {
  size_t len = strlen(text);
  assert_true(len > 0 && text[len - 1] == '\n');
  char families[64][96];
  char types[64][16];
  bool helped[64] = {false};
  size_t nfam = 0;
  const char *line = text;
  while (*line != '\0') {
    const char *eol = strchr(line, '\n');
    assert_non_null(eol);
    char buf[256];
    size_t n = (size_t)(eol - line);
    assert_true(n > 0 && n < sizeof buf);
    memcpy(buf, line, n);
    buf[n] = '\0';
    char name[96], what[16];
    if (strncmp(buf, "# HELP ", 7) == 0) {
      assert_int_equal(sscanf(buf + 7, "%95s", name), 1);
      assert_true(nfam < 64);
      snprintf(families[nfam], sizeof families[nfam], "%s", name);
      types[nfam][0] = '\0';
      helped[nfam++] = true;
    } else if (strncmp(buf, "# TYPE ", 7) == 0) {
      assert_int_equal(sscanf(buf + 7, "%95s %15s", name, what), 2);
      assert_true(nfam > 0 && strcmp(families[nfam - 1], name) == 0); /* right after its HELP */
      assert_true(strcmp(what, "counter") == 0 || strcmp(what, "gauge") == 0 ||
                  strcmp(what, "histogram") == 0);
      snprintf(types[nfam - 1], sizeof types[nfam - 1], "%s", what);
    } else {
      assert_true(buf[0] != '#');
      size_t k = strcspn(buf, "{ ");
      assert_true(k > 0 && k < sizeof name);
      memcpy(name, buf, k);
      name[k] = '\0';
      bool ok = false;
      for (size_t i = 0; i < nfam && !ok; i++) {
        size_t fl = strlen(families[i]);
        if (strcmp(name, families[i]) == 0) {
          ok = strcmp(types[i], "histogram") != 0;
        } else if (strcmp(types[i], "histogram") == 0 && strncmp(name, families[i], fl) == 0) {
          const char *sfx = name + fl;
          ok =
              strcmp(sfx, "_bucket") == 0 || strcmp(sfx, "_sum") == 0 || strcmp(sfx, "_count") == 0;
        }
        ok = ok && helped[i];
      }
      if (!ok) {
        print_error("sample of an undeclared family: %s\n", buf);
        fail();
      }
      const char *val = strrchr(buf, ' ');
      assert_non_null(val);
      char *end;
      strtod(val + 1, &end);
      assert_true(end != val + 1 && *end == '\0');
    }
    line = eol + 1;
  }
}

/* The histogram's buckets are cumulative and end at the count. */
static void assert_histogram(const char *text, uint64_t count) {
  static const char *les[] = {"1e-06", "1e-05", "0.0001", "0.001", "0.01", "0.1", "1", "+Inf"};
  uint64_t prev = 0;
  for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
    char name[96];
    snprintf(name, sizeof name, "rustyray_task_run_seconds_bucket{le=\"%s\"}", les[i]);
    uint64_t v = metric_u64(text, name);
    assert_true(v >= prev);
    prev = v;
  }
  assert_int_equal(prev, count);
  assert_int_equal(metric_u64(text, "rustyray_task_run_seconds_count"), count);
  assert_true(metric_f64(text, "rustyray_task_run_seconds_sum") >= 0.0);
}

static char *metrics_text(void) {
  int n = ray_metrics_text(NULL, 0);
  assert_true(n > 0);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(ray_metrics_text(buf, (size_t)n + 1), n);
  assert_int_equal(strlen(buf), (size_t)n);
  return buf;
}

/* The counters' metrics against a ray_stats snapshot. */
static void assert_metrics_match_stats(const char *text, const ray_stats_t *s) {
  assert_int_equal(metric_u64(text, "rustyray_tasks_submitted_total"), s->tasks_submitted);
  assert_int_equal(metric_u64(text, "rustyray_tasks_finished_total"), s->tasks_finished);
  assert_int_equal(metric_u64(text, "rustyray_tasks_failed_total"), s->tasks_failed);
  assert_int_equal(metric_u64(text, "rustyray_object_store_bytes"), s->bytes_in_memory);
  assert_int_equal(metric_u64(text, "rustyray_objects"), s->objects);
  assert_int_equal(metric_u64(text, "rustyray_objects_created_total"), s->objects_created);
  assert_int_equal(metric_u64(text, "rustyray_objects_freed_total"), s->objects_freed);
  assert_int_equal(metric_u64(text, "rustyray_object_store_capacity_bytes"),
                   s->object_store_memory);
  assert_int_equal(metric_u64(text, "rustyray_actors_alive"), s->actors_alive);
  assert_int_equal(metric_u64(text, "rustyray_workers"), s->num_workers);
  assert_int_equal(metric_u64(text, "rustyray_spills_total"), s->spill_count);
}

/* A known workload: 5 leaves, 2 booms, a combine that never runs (its
 * argument failed), an actor created once and called 3 times, and a 100 KB
 * object kept alive. Results are gotten and released except the blob. */
typedef struct workload_s {
  ray_ref_t blob;
  ray_actor_t acc;
} workload_t;

enum {
  W_BLOB = 100000,
  W_RAN = 5 + 2 + 3,      /* task bodies and calls that ran */
  W_FINISHED = W_RAN + 1, /* plus the combine that failed without running */
  W_FAILED = 2 + 1,
  W_RUNS = W_RAN + 1 /* timed runs: the creation is timed too */
};

static workload_t run_workload(void) {
  workload_t w;
  fns_t f = register_fns();
  unsigned char *blob = malloc(W_BLOB);
  assert_non_null(blob);
  rt_fill(blob, W_BLOB, 7);
  assert_rc(ray_put(blob, W_BLOB, &w.blob), 0);
  free(blob);
  ray_ref_t r[12];
  size_t n = 0;
  for (int i = 0; i < 5; i++) r[n++] = submit_leaf(&f, 10 + i, i);
  ray_ref_t boom1 = submit_boom(&f), boom2 = submit_boom(&f);
  r[n++] = boom1;
  r[n++] = boom2;
  r[n++] = submit_combine(&f, boom1, r[0]);
  ray_arg_t ctor_args[] = {ray_arg_i64(100)};
  assert_rc(ray_actor_create(&k_acc, ctor_args, 1, NULL, &w.acc), 0);
  for (int i = 0; i < 3; i++) {
    ray_arg_t a[] = {ray_arg_i64(1)};
    assert_rc(ray_actor_call(w.acc, "add", a, 1, NULL, &r[n++]), 0);
  }
  for (int i = 0; i < 5; i++) assert_int_equal(get_i64(r[i]), i);
  int64_t v;
  assert_rc(ray_get_i64(boom1, RAY_TIMEOUT_INFINITE, &v), RAY_EINVAL);
  assert_rc(ray_get_i64(boom2, RAY_TIMEOUT_INFINITE, &v), RAY_EINVAL);
  assert_rc(ray_get_i64(r[7], RAY_TIMEOUT_INFINITE, &v), RAY_EDEPFAILED);
  for (int i = 0; i < 3; i++) assert_int_equal(get_i64(r[8 + i]), 101 + i);
  assert_rc(ray_ref_release_batch(r, n), 0);
  wait_quiet(W_FINISHED, 1); /* only the blob is left */
  rt_errs_assert(&g_errs);
  return w;
}

static void end_workload(workload_t *w) {
  assert_rc(ray_ref_release(w->blob), 0);
  assert_rc(ray_actor_release(w->acc), 0);
}

static void test_metrics_text_snprintf(void **state) {
  (void)state;
  char small[16];
  assert_rc(ray_metrics_text(small, sizeof small), RAY_ENOTINIT);
  assert_rc(ray_metrics_text(NULL, 0), RAY_ENOTINIT);
  rt_begin();
  assert_rc(ray_metrics_text(NULL, 5), RAY_EINVAL);
  int n = ray_metrics_text(NULL, 0); /* measure */
  assert_true(n > 100);
  char *full = malloc((size_t)n + 1);
  assert_non_null(full);
  memset(full, 'Z', (size_t)n + 1);
  assert_int_equal(ray_metrics_text(full, (size_t)n + 1), n);
  assert_int_equal(strlen(full), (size_t)n);
  assert_exposition_format(full);
  /* Exactly too small by one: truncated, still terminated, same length back. */
  char *cut = malloc((size_t)n);
  assert_non_null(cut);
  assert_int_equal(ray_metrics_text(cut, (size_t)n), n);
  assert_int_equal(strlen(cut), (size_t)n - 1);
  assert_memory_equal(cut, full, (size_t)n - 1);
  free(cut);
  /* Much too small. */
  memset(small, 'Z', sizeof small);
  assert_int_equal(ray_metrics_text(small, sizeof small), n);
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_memory_equal(small, full, sizeof small - 1);
  /* One byte: just the terminator. Zero bytes with a buffer: untouched. */
  small[0] = 'Z';
  assert_int_equal(ray_metrics_text(small, 1), n);
  assert_int_equal(small[0], '\0');
  small[0] = 'Z';
  assert_int_equal(ray_metrics_text(small, 0), n);
  assert_int_equal(small[0], 'Z');
  /* Names the issue promises. */
  const char *v;
  assert_true(metric_find(full, "rustyray_tasks_finished_total", &v));
  assert_true(metric_find(full, "rustyray_object_store_bytes", &v));
  assert_true(strstr(full, "# TYPE rustyray_task_run_seconds histogram\n") != NULL);
  assert_true(strstr(full, "# TYPE rustyray_tasks_finished_total counter\n") != NULL);
  assert_true(strstr(full, "# TYPE rustyray_object_store_bytes gauge\n") != NULL);
  free(full);

  /* Neither the timeline nor the endpoint is on: runs are not timed, so the
   * histogram stays empty while the counters count. */
  workload_t w = run_workload();
  ray_stats_t s = rt_stats();
  char *text = metrics_text();
  assert_exposition_format(text);
  assert_metrics_match_stats(text, &s);
  assert_int_equal(metric_u64(text, "rustyray_tasks_finished_total"), W_FINISHED);
  assert_histogram(text, 0);
  free(text);
  end_workload(&w);
  rt_end();
  assert_rc(ray_metrics_text(NULL, 0), RAY_ENOTINIT);
}

static void test_metrics_values_with_timeline(void **state) {
  (void)state;
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.timeline = true;
  rt_begin_cfg(&cfg);
  workload_t w = run_workload();
  ray_stats_t s = rt_stats();
  assert_int_equal(s.tasks_finished, W_FINISHED);
  assert_int_equal(s.tasks_failed, W_FAILED);
  assert_int_equal(s.tasks_submitted, W_FINISHED);
  assert_int_equal(s.actors_alive, 1);
  assert_true(s.bytes_in_memory >= W_BLOB);
  char *text = metrics_text();
  assert_exposition_format(text);
  assert_metrics_match_stats(text, &s);
  assert_int_equal(metric_u64(text, "rustyray_tasks_finished_total"), W_FINISHED);
  assert_int_equal(metric_u64(text, "rustyray_tasks_failed_total"), W_FAILED);
  assert_histogram(text, W_RUNS);
  /* Idle: a second rendering is the same text. */
  char *again = metrics_text();
  assert_string_equal(text, again);
  free(again);
  free(text);
  end_workload(&w);
  rt_end();
}

/* ---- The endpoint, scraped with curl ---- */

/* Run a shell command, returning its output (malloc'd) and exit status. */
static char *run_cmd(const char *cmd, int *status) {
  FILE *p = popen(cmd, "r");
  if (p == NULL) {
    print_error("popen failed: %s\n", cmd);
    fail();
  }
  size_t cap = 4096, n = 0;
  char *out = malloc(cap);
  assert_non_null(out);
  for (;;) {
    if (n + 1 >= cap) {
      out = realloc(out, cap *= 2);
      assert_non_null(out);
    }
    size_t got = fread(out + n, 1, cap - n - 1, p);
    if (got == 0) break;
    n += got;
  }
  out[n] = '\0';
  int st = pclose(p);
  *status = st;
  return out;
}

static void require_curl(void) {
  int st;
  char *out = run_cmd("curl --version 2>/dev/null", &st);
  bool ok = st == 0 && strncmp(out, "curl ", 5) == 0;
  free(out);
  if (!ok) {
    print_error("curl is needed for the endpoint tests (scripts/dev.sh installs it)\n");
    fail();
  }
}

static char *scrape(const char *host, int port, const char *path, const char *extra, int *status) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "curl -s --max-time 60 %s 'http://%s:%d%s'", extra, host, port, path);
  return run_cmd(cmd, status);
}

/* A non-loopback IPv4 address of this host, if it has one. */
static bool other_ipv4(char *out, size_t cap) {
  uv_interface_address_t *ifs;
  int n;
  if (uv_interface_addresses(&ifs, &n) != 0) return false;
  bool found = false;
  for (int i = 0; i < n && !found; i++) {
    if (ifs[i].is_internal || ifs[i].address.address4.sin_family != AF_INET) continue;
    found = uv_ip4_name(&ifs[i].address.address4, out, cap) == 0;
  }
  uv_free_interface_addresses(ifs, n);
  return found;
}

static void test_metrics_endpoint(void **state) {
  (void)state;
  require_curl();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.metrics_port = -1; /* any free port */
  rt_begin_cfg(&cfg);
  int port = ray_metrics_port();
  assert_true(port > 0 && port <= 65535);
  workload_t w = run_workload();
  ray_stats_t s = rt_stats();

  int st;
  char *body = scrape("127.0.0.1", port, "/metrics", "", &st);
  assert_int_equal(st, 0);
  assert_exposition_format(body);
  assert_metrics_match_stats(body, &s);
  assert_int_equal(metric_u64(body, "rustyray_tasks_finished_total"), W_FINISHED);
  assert_int_equal(metric_u64(body, "rustyray_tasks_failed_total"), W_FAILED);
  assert_true(metric_u64(body, "rustyray_object_store_bytes") >= W_BLOB);
  assert_histogram(body, W_RUNS); /* the endpoint turns run timing on */
  /* Idle runtime: the page is exactly what ray_metrics_text renders. */
  char *text = metrics_text();
  assert_string_equal(body, text);
  free(text);
  free(body);

  /* Status line and content type; a query string is still /metrics. */
  char *head = scrape("127.0.0.1", port, "/metrics?x=1", "-D - -o /dev/null", &st);
  assert_int_equal(st, 0);
  assert_true(strncmp(head, "HTTP/1.0 200 OK\r\n", 17) == 0);
  assert_non_null(strstr(head, "Content-Type: text/plain; version=0.0.4"));
  free(head);
  /* Any other path: 404. */
  char *code = scrape("127.0.0.1", port, "/", "-o /dev/null -w '%{http_code}'", &st);
  assert_string_equal(code, "404");
  free(code);
  code = scrape("127.0.0.1", port, "/metricsfoo", "-o /dev/null -w '%{http_code}'", &st);
  assert_string_equal(code, "404");
  free(code);

  /* Loopback only: another interface of this host refuses the connection
   * (curl exit 7). Skipped when the host has no other IPv4 interface. */
  char ip[64];
  if (other_ipv4(ip, sizeof ip)) {
    char *out = scrape(ip, port, "/metrics", "-o /dev/null", &st);
    free(out);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 7);
  }

  /* Still serving after all that; counters unchanged. */
  body = scrape("127.0.0.1", port, "/metrics", "", &st);
  assert_int_equal(st, 0);
  assert_int_equal(metric_u64(body, "rustyray_tasks_finished_total"), W_FINISHED);
  free(body);
  end_workload(&w);
  rt_end();
  assert_rc(ray_metrics_port(), RAY_ENOTINIT);
}

static void test_metrics_endpoint_config(void **state) {
  (void)state;
  assert_rc(ray_metrics_port(), RAY_ENOTINIT);
  /* No endpoint configured. */
  rt_begin();
  assert_rc(ray_metrics_port(), RAY_EINVAL);
  rt_end();

  /* Bad settings: refused by ray_init, nothing left running. */
  ray_config_t cfg;
  const int bad_ports[] = {70000, 65536, -2};
  for (size_t i = 0; i < sizeof bad_ports / sizeof bad_ports[0]; i++) {
    rt_config(&cfg);
    cfg.metrics_port = bad_ports[i];
    assert_rc(ray_init(&cfg), RAY_EINVAL);
  }
  const char *bad_binds[] = {"nope", "", "::1", "127.0.0.1:80", "256.0.0.1"};
  for (size_t i = 0; i < sizeof bad_binds / sizeof bad_binds[0]; i++) {
    rt_config(&cfg);
    cfg.metrics_port = -1;
    cfg.metrics_bind = bad_binds[i];
    assert_rc(ray_init(&cfg), RAY_EINVAL);
  }
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);

  /* The environment. */
  assert_int_equal(setenv("RAY_METRICS_PORT", "abc", 1), 0);
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  assert_int_equal(cfg.metrics_port, 0);
  assert_int_equal(setenv("RAY_METRICS_PORT", "70000", 1), 0);
  assert_rc(ray_config_init(&cfg), RAY_EINVAL);
  assert_int_equal(setenv("RAY_METRICS_PORT", "9123", 1), 0);
  assert_int_equal(setenv("RAY_METRICS_BIND", "127.0.0.2", 1), 0);
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.metrics_port, 9123);
  assert_string_equal(cfg.metrics_bind, "127.0.0.2");
  unsetenv("RAY_METRICS_PORT");
  unsetenv("RAY_METRICS_BIND");
  assert_rc(ray_config_init(&cfg), 0);
  assert_int_equal(cfg.metrics_port, 0);
  assert_null(cfg.metrics_bind); /* default: loopback */

  /* An explicit bind address is used as given. */
  rt_config(&cfg);
  cfg.metrics_port = -1;
  cfg.metrics_bind = "127.0.0.1";
  rt_begin_cfg(&cfg);
  int port = ray_metrics_port();
  assert_true(port > 0);
  require_curl();
  int st;
  char *body = scrape("127.0.0.1", port, "/metrics", "", &st);
  assert_int_equal(st, 0);
  assert_true(metric_u64(body, "rustyray_workers") == 2);
  free(body);

  rt_end();

  /* A port that is taken: ray_init fails with RAY_EIO and takes the
   * runtime it had started down again: no thread, no allocation left. */
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(sock >= 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  assert_int_equal(bind(sock, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(listen(sock, 1), 0);
  socklen_t alen = sizeof addr;
  assert_int_equal(getsockname(sock, (struct sockaddr *)&addr, &alen), 0);
  rt_config(&cfg);
  cfg.metrics_port = ntohs(addr.sin_port);
  int level = ray_log_level();
  assert_rc(ray_log_set_level(RAY_LOG_OFF), 0); /* the bind failure is logged */
  ray__alloc_track(true);
  assert_rc(ray_init(&cfg), RAY_EIO);
  assert_rc(ray_log_set_level(level), 0);
  close(sock);
  assert_false(ray_is_initialized());
  assert_int_equal(ray__threads_alive(), 0);
  rt_assert_no_leaks();
}

/* ======================================================================== */
/* Logging. */

typedef struct logrec_s {
  uv_mutex_t mu;
  int n;
  int levels[256];
  char msgs[256][160];
  int by_level[5];
} logrec_t;

static void logrec_init(logrec_t *r) {
  memset(r, 0, sizeof *r);
  assert_int_equal(uv_mutex_init(&r->mu), 0);
}

/* Runs on whichever thread logged (so it only records). */
static void logrec_fn(int level, const char *message, void *arg) {
  logrec_t *r = arg;
  uv_mutex_lock(&r->mu);
  if (r->n < 256) {
    r->levels[r->n] = level;
    snprintf(r->msgs[r->n], sizeof r->msgs[r->n], "%s", message);
    r->n++;
  }
  if (level >= 0 && level <= 4) r->by_level[level]++;
  uv_mutex_unlock(&r->mu);
}

/* How many messages recorded at `level` contain `needle`. Call with every
 * logging thread done (after ray_shutdown) or under the lock's protection. */
static int logrec_count(logrec_t *r, int level, const char *needle) {
  uv_mutex_lock(&r->mu);
  int n = 0;
  for (int i = 0; i < r->n; i++)
    if (r->levels[i] == level && strstr(r->msgs[i], needle) != NULL) n++;
  uv_mutex_unlock(&r->mu);
  return n;
}

static void logrec_reset(logrec_t *r) {
  uv_mutex_lock(&r->mu);
  r->n = 0;
  memset(r->by_level, 0, sizeof r->by_level);
  uv_mutex_unlock(&r->mu);
}

static int logrec_total(logrec_t *r) {
  uv_mutex_lock(&r->mu);
  int n = r->n;
  uv_mutex_unlock(&r->mu);
  return n;
}

static void test_log_set_level(void **state) {
  (void)state;
  int before = ray_log_level();
  assert_true(before >= RAY_LOG_OFF && before <= RAY_LOG_DEBUG);
  for (int l = RAY_LOG_OFF; l <= RAY_LOG_DEBUG; l++) {
    assert_rc(ray_log_set_level(l), 0);
    assert_int_equal(ray_log_level(), l);
  }
  assert_rc(ray_log_set_level(RAY_LOG_INFO), 0);
  assert_rc(ray_log_set_level(9), RAY_EINVAL);
  assert_rc(ray_log_set_level(5), RAY_EINVAL);
  assert_rc(ray_log_set_level(-1), RAY_EINVAL);
  assert_int_equal(ray_log_level(), RAY_LOG_INFO); /* unchanged by the refusals */
  assert_rc(ray_log_set_level(before), 0);
}

/* The path of this test program, to run it again as a probe. */
static void self_path(char *out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  assert_true(n > 0 && (size_t)n < cap - 1);
  out[n] = '\0';
}

/* RAY_LOG_LEVEL is read once, at the first use of the log: each value is
 * checked in a fresh process (this program run with --print-log-level). */
static void test_log_level_env(void **state) {
  (void)state;
  char exe[1024];
  self_path(exe, sizeof exe);
  static const struct {
    const char *env; /* NULL: unset */
    int want;
  } cases[] = {
      {"off", 0},  {"error", 1}, {"warn", 2}, {"info", 3}, {"debug", 4}, {"0", 0},
      {"1", 1},    {"2", 2},     {"3", 3},    {"4", 4},    {"INFO", 3},  {"Debug", 4},
      {"loud", 2}, {"5", 2},     {"", 2},     {NULL, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char cmd[1400];
    if (cases[i].env != NULL)
      snprintf(cmd, sizeof cmd, "RAY_LOG_LEVEL='%s' '%s' --print-log-level", cases[i].env, exe);
    else
      snprintf(cmd, sizeof cmd, "unset RAY_LOG_LEVEL; '%s' --print-log-level", exe);
    int st;
    char *out = run_cmd(cmd, &st);
    int got = -1;
    bool parsed = sscanf(out, "%d", &got) == 1;
    free(out);
    if (st != 0 || !parsed || got != cases[i].want) {
      print_error("RAY_LOG_LEVEL=%s: got %d (status %d), want %d\n",
                  cases[i].env ? cases[i].env : "(unset)", got, st, cases[i].want);
      fail();
    }
  }
}

/* Spill a little, so the store logs at DEBUG ("spilled ..."). */
static void spill_workload(void) {
  enum { N = 8, SIZE = 64 * 1024 };
  ray_ref_t refs[N];
  unsigned char *p = malloc(SIZE);
  assert_non_null(p);
  for (int i = 0; i < N; i++) {
    rt_fill(p, SIZE, (uint64_t)i);
    assert_rc(ray_put(p, SIZE, &refs[i]), 0);
  }
  free(p);
  for (int i = 0; i < N; i++) {
    ray_buf_t b;
    assert_rc(ray_get(refs[i], RAY_TIMEOUT_INFINITE, &b), 0);
    assert_true(b.size == SIZE && rt_check(b.data, b.size, (uint64_t)i));
    ray_buf_release(&b);
  }
  assert_true(rt_stats().spill_count > 0);
  assert_rc(ray_ref_release_batch(refs, N), 0);
}

static void spill_cfg(ray_config_t *cfg) {
  rt_config(cfg);
  cfg->object_store_memory = 256 * 1024;
}

static void test_log_handler_levels(void **state) {
  (void)state;
  int before = ray_log_level();
  logrec_t *r = malloc(sizeof *r);
  assert_non_null(r);
  logrec_init(r);
  ray_log_set_handler(logrec_fn, r);
  ray_config_t cfg;

  /* DEBUG: everything, including the spiller's messages. */
  assert_rc(ray_log_set_level(RAY_LOG_DEBUG), 0);
  spill_cfg(&cfg);
  rt_begin_cfg(&cfg);
  spill_workload();
  rt_end(); /* every thread that could log is joined */
  assert_int_equal(logrec_count(r, RAY_LOG_INFO, "runtime started"), 1);
  assert_int_equal(logrec_count(r, RAY_LOG_INFO, "runtime stopped"), 1);
  assert_true(logrec_count(r, RAY_LOG_DEBUG, "spilled") >= 1);
  assert_int_equal(r->by_level[RAY_LOG_ERROR], 0);

  /* INFO: the same run, and nothing more detailed than INFO arrives. */
  logrec_reset(r);
  assert_rc(ray_log_set_level(RAY_LOG_INFO), 0);
  rt_begin_cfg(&cfg);
  /* Delivered synchronously, on the thread that called ray_init. */
  assert_int_equal(logrec_count(r, RAY_LOG_INFO, "runtime started"), 1);
  spill_workload();
  rt_end();
  assert_int_equal(logrec_count(r, RAY_LOG_INFO, "runtime stopped"), 1);
  assert_int_equal(r->by_level[RAY_LOG_DEBUG], 0);
  assert_int_equal(r->n, r->by_level[RAY_LOG_INFO]);

  /* WARN (the default): a quiet run says nothing. */
  logrec_reset(r);
  assert_rc(ray_log_set_level(RAY_LOG_WARN), 0);
  rt_begin_cfg(&cfg);
  spill_workload();
  rt_end();
  assert_int_equal(logrec_total(r), 0);

  /* ERROR messages come through at ERROR, and not at OFF. */
  rt_config(&cfg);
  cfg.timeline = true;
  char dir[512];
  tmp_path(dir, sizeof dir, "logdir");
  unlink(dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  rt_begin_cfg(&cfg);
  assert_rc(ray_log_set_level(RAY_LOG_ERROR), 0);
  assert_rc(ray_timeline_dump(dir), RAY_EIO);
  assert_int_equal(logrec_count(r, RAY_LOG_ERROR, "cannot write the timeline"), 1);
  assert_rc(ray_log_set_level(RAY_LOG_OFF), 0);
  assert_rc(ray_timeline_dump(dir), RAY_EIO);
  assert_int_equal(logrec_total(r), 1);
  rt_end();
  assert_int_equal(logrec_total(r), 1);
  rmdir(dir);

  ray_log_set_handler(NULL, NULL);
  assert_rc(ray_log_set_level(before), 0);
  uv_mutex_destroy(&r->mu);
  free(r);
}

/* Handler NULL: messages go to stderr again, as "rustyray LEVEL: message". */
static void test_log_handler_null_restores_stderr(void **state) {
  (void)state;
  int before = ray_log_level();
  logrec_t *r = malloc(sizeof *r);
  assert_non_null(r);
  logrec_init(r);
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.timeline = true;
  char dir[512];
  tmp_path(dir, sizeof dir, "logdir");
  unlink(dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  rt_begin_cfg(&cfg);
  assert_rc(ray_log_set_level(RAY_LOG_ERROR), 0);
  ray_log_set_handler(logrec_fn, r);
  assert_rc(ray_timeline_dump(dir), RAY_EIO);
  assert_int_equal(logrec_total(r), 1);
  ray_log_set_handler(NULL, NULL);

  /* Capture fd 2 while the library logs one error. */
  FILE *cap = tmpfile();
  assert_non_null(cap);
  fflush(stderr);
  int saved = dup(2);
  assert_true(saved >= 0);
  int rc_dup = dup2(fileno(cap), 2);
  int rc_dump = ray_timeline_dump(dir);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  assert_true(rc_dup == 2);
  assert_rc(rc_dump, RAY_EIO);
  char text[2048] = {0};
  rewind(cap);
  size_t n = fread(text, 1, sizeof text - 1, cap);
  fclose(cap);
  text[n] = '\0';
  char want[700];
  snprintf(want, sizeof want, "rustyray ERROR: cannot write the timeline to %s: EIO\n", dir);
  assert_string_equal(text, want);
  assert_int_equal(logrec_total(r), 1); /* the old handler got nothing more */

  assert_rc(ray_log_set_level(before), 0);
  rt_end();
  rmdir(dir);
  uv_mutex_destroy(&r->mu);
  free(r);
}

/* A handler that breaks the rule on its own thread cannot deadlock: a
 * message caused by a call it makes goes to stderr (not to the handler, not
 * under the log's mutex), and ray_log_set_handler, ray_init and
 * ray_shutdown from it are RAY_EBUSY and change nothing. Before, each of
 * these hung on the log's non-recursive mutex. */
typedef struct {
  const char *dir;
  atomic_int calls, set_rc, init_rc, shutdown_rc, dump_rc;
} reenter_t;

static void reentrant_handler(int level, const char *message, void *arg) {
  (void)level;
  (void)message;
  reenter_t *r = arg;
  if (atomic_fetch_add(&r->calls, 1) != 0) return; /* only the first one */
  atomic_store(&r->set_rc, ray_log_set_handler(NULL, NULL));
  atomic_store(&r->init_rc, ray_init(NULL));
  atomic_store(&r->shutdown_rc, ray_shutdown());
  atomic_store(&r->dump_rc, ray_timeline_dump(r->dir)); /* logs an error again */
}

static void test_log_handler_reentry_is_refused(void **state) {
  (void)state;
  int before = ray_log_level();
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.timeline = true;
  char dir[512];
  tmp_path(dir, sizeof dir, "logreenter");
  unlink(dir);
  assert_int_equal(mkdir(dir, 0700), 0);
  rt_begin_cfg(&cfg);
  reenter_t r = {.dir = dir};
  assert_rc(ray_log_set_level(RAY_LOG_ERROR), 0);
  assert_rc(ray_log_set_handler(reentrant_handler, &r), 0);
  /* Hide the nested message's stderr line from the test output. */
  fflush(stderr);
  int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
  assert_true(saved >= 0 && devnull >= 0);
  assert_int_equal(dup2(devnull, 2), 2);
  int rc = ray_timeline_dump(dir); /* a directory: EIO, logged */
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(devnull);
  assert_rc(rc, RAY_EIO);
  assert_int_equal(atomic_load(&r.calls), 1); /* the nested message did not reach it */
  assert_rc(atomic_load(&r.set_rc), RAY_EBUSY);
  assert_rc(atomic_load(&r.init_rc), RAY_EBUSY);
  assert_rc(atomic_load(&r.shutdown_rc), RAY_EBUSY);
  assert_rc(atomic_load(&r.dump_rc), RAY_EIO);
  assert_true(ray_is_initialized());
  assert_rc(ray_log_set_handler(NULL, NULL), 0); /* the handler stayed until now */
  assert_rc(ray_log_set_level(before), 0);
  rt_end();
  rmdir(dir);
}

int main(int argc, char **argv) {
  /* Probe mode for test_log_level_env: the level this fresh process reads. */
  if (argc == 2 && strcmp(argv[1], "--print-log-level") == 0) {
    printf("%d\n", ray_log_level());
    return 0;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_reader_is_strict),
      cmocka_unit_test(test_timeline_dag),
      cmocka_unit_test(test_timeline_dump_while_running),
      cmocka_unit_test(test_timeline_env_written_at_shutdown),
      cmocka_unit_test(test_timeline_errors),
      cmocka_unit_test(test_metrics_text_snprintf),
      cmocka_unit_test(test_metrics_values_with_timeline),
      cmocka_unit_test(test_metrics_endpoint),
      cmocka_unit_test(test_metrics_endpoint_config),
      cmocka_unit_test(test_log_set_level),
      cmocka_unit_test(test_log_level_env),
      cmocka_unit_test(test_log_handler_levels),
      cmocka_unit_test(test_log_handler_null_restores_stderr),
      cmocka_unit_test(test_log_handler_reentry_is_refused),
  };
  rt_main_init();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
