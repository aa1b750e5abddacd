/* timeline.c - what ran where and when: per-worker span buffers and task
 * latency histograms (summed for the metrics), and the Chrome Trace Event
 * writer.
 *
 * Recording is per worker: the owner appends to its own chunk list under
 * its own (uncontended) mutex, so leaving the timeline on costs no global
 * lock per event. A dump (ray_timeline_dump, or shutdown with
 * RAY_TIMELINE set) walks every worker's record, then writes one JSON file:
 * a complete event ("ph":"X") per span on the row of its worker thread,
 * named after the function or "Class.method", and a flow arrow ("s" -> "f")
 * from each task to every task that took one of its results as a ref
 * argument. Perfetto and chrome://tracing open it.
 *
 * Layering: the records are this file's; the scheduler, below, only holds
 * one opaque pointer per worker, made and freed through the functions the
 * runtime hands it (ray__timeline_obs_new/free), and lists them for a dump or for
 * the metrics' latency histogram (ray__sched_foreach): only this file
 * reads a record. Lock order: a record's mu is taken under the
 * scheduler's spawn_mu (the walk), never the other way round. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

ray__obs_t *ray__timeline_obs_new(unsigned serial) {
  ray__obs_t *o = ray__calloc(1, sizeof *o);
  if (o == NULL) return NULL;
  o->serial = serial;
  if (uv_mutex_init(&o->mu) != 0) {
    ray__free(o);
    return NULL;
  }
  return o;
}

void ray__timeline_obs_free(ray__obs_t *o) {
  if (o == NULL) return;
  ray__span_chunk_t *c = o->head;
  while (c != NULL) {
    ray__span_chunk_t *next = c->next;
    ray__free(c);
    c = next;
  }
  ray__id_chunk_t *k = o->ids;
  while (k != NULL) {
    ray__id_chunk_t *next = k->next;
    ray__free(k);
    k = next;
  }
  uv_mutex_destroy(&o->mu);
  ray__free(o);
}

void ray__timeline_obs_record(ray__obs_t *o, const ray__span_t *span, bool keep_span) {
  uint64_t ns = span->end - span->start;
  int b = 0;
  for (uint64_t limit = 1000; b < RAY__LAT_BUCKETS - 1 && ns > limit; limit *= 10) b++;
  uv_mutex_lock(&o->mu);
  o->lat_buckets[b]++;
  o->lat_count++;
  o->lat_sum_ns += ns;
  if (keep_span) {
    if (o->tail == NULL || o->tail->n == RAY__SPAN_CHUNK) {
      ray__span_chunk_t *c = ray__malloc(sizeof *c);
      if (c != NULL) { /* out of memory: the span is dropped, nothing else */
        c->next = NULL;
        c->n = 0;
        if (o->tail != NULL)
          o->tail->next = c;
        else
          o->head = c;
        o->tail = c;
      }
    }
    uint32_t n = span->nargs + span->nresults;
    uint64_t *ids = NULL;
    if (n > 0) { /* copy the id list into the arena (a chunk of its own when large) */
      if (o->ids == NULL || o->ids->cap - o->ids->n < n) {
        uint32_t cap = n > RAY__ID_CHUNK ? n : RAY__ID_CHUNK;
        ray__id_chunk_t *k = ray__malloc(sizeof *k + cap * sizeof(uint64_t));
        if (k != NULL) {
          k->next = o->ids;
          k->n = 0;
          k->cap = cap;
          o->ids = k;
        }
      }
      if (o->ids != NULL && o->ids->cap - o->ids->n >= n) {
        ids = o->ids->ids + o->ids->n;
        memcpy(ids, span->ids, n * sizeof *ids);
        o->ids->n += n;
      }
    }
    if (o->tail != NULL && o->tail->n < RAY__SPAN_CHUNK && (n == 0 || ids != NULL)) {
      ray__span_t *s = &o->tail->spans[o->tail->n++];
      *s = *span;
      s->ids = ids;
    }
  }
  uv_mutex_unlock(&o->mu);
}

static void add_latency(ray__obs_t *o, void *arg) {
  ray__latency_t *l = arg;
  uv_mutex_lock(&o->mu);
  for (int i = 0; i < RAY__LAT_BUCKETS; i++) l->buckets[i] += o->lat_buckets[i];
  l->count += o->lat_count;
  l->sum_ns += o->lat_sum_ns;
  uv_mutex_unlock(&o->mu);
}

void ray__timeline_latency(ray__runtime_t *rt, ray__latency_t *out) {
  memset(out, 0, sizeof *out);
  ray__sched_foreach(&rt->sched, add_latency, out);
}

/* ---- The writer ---- */

typedef struct out_s {
  char *buf;
  size_t len, cap;
  bool oom;
} out_t;

static void emit(out_t *o, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void emit(out_t *o, const char *fmt, ...) {
  if (o->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      o->oom = true;
      return;
    }
    if ((size_t)n < o->cap - o->len) {
      o->len += (size_t)n;
      return;
    }
    size_t cap = o->cap * 2 + (size_t)n;
    char *p = ray__realloc(o->buf, cap);
    if (p == NULL) {
      o->oom = true;
      return;
    }
    o->buf = p;
    o->cap = cap;
  }
}

/* A JSON string body (names are ours and C identifiers, but be safe). */
static void emit_name(out_t *o, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      emit(o, "\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      emit(o, "\\u%04x", (unsigned char)*s);
    else
      emit(o, "%c", *s);
  }
}

typedef struct rowset_s {
  const ray__span_t **spans;
  unsigned *rows;
  size_t n, cap;
  bool oom;
  out_t *out;
  int pid; /* the process id of every event: the rank (cluster mode), else 0 */
} rowset_t;

/* Collect every span (worker record lock held by the caller's loop). */
static void gather(ray__obs_t *obs, void *arg) {
  rowset_t *rs = arg;
  uv_mutex_lock(&obs->mu);
  emit(rs->out,
       "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%u,\"args\":{\"name\":\"worker "
       "%u\"}},\n",
       rs->pid, obs->serial, obs->serial);
  for (ray__span_chunk_t *c = obs->head; c != NULL && !rs->oom; c = c->next) {
    for (uint32_t i = 0; i < c->n; i++) {
      if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 1024;
        const ray__span_t **s = ray__realloc(rs->spans, cap * sizeof *s);
        unsigned *r = ray__realloc(rs->rows, cap * sizeof *r);
        if (s != NULL) rs->spans = s;
        if (r != NULL) rs->rows = r;
        if (s == NULL || r == NULL) {
          rs->oom = true;
          break;
        }
        rs->cap = cap;
      }
      rs->spans[rs->n] = &c->spans[i];
      rs->rows[rs->n++] = obs->serial;
    }
  }
  uv_mutex_unlock(&obs->mu);
}

/* Open addressing: result id -> index of the span that produced it. */
typedef struct producers_s {
  uint64_t *keys;
  size_t *vals;
  size_t mask;
} producers_t;

static size_t slot_of(const producers_t *p, uint64_t id) {
  size_t i = (size_t)(id * 0x9E3779B97F4A7C15ull) & p->mask;
  while (p->keys[i] != 0 && p->keys[i] != id) i = (i + 1) & p->mask;
  return i;
}

int ray__timeline_write(ray__runtime_t *rt, const char *path) {
  out_t out = {0};
  out.cap = 1 << 16;
  if ((out.buf = ray__malloc(out.cap)) == NULL) return RAY_ENOMEM;
  emit(&out, "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
  /* The rank as the process id: the traces of every rank merge into one
   * view, a process per rank. */
  rowset_t rs = {.out = &out, .pid = atomic_load(&rt->rank)};
  /* Spans stay put while we write: records only grow, and the workers are
   * either joined (at shutdown) or only append. */
  ray__sched_foreach(&rt->sched, gather, &rs);
  int rc = rs.oom ? RAY_ENOMEM : 0;
  uint64_t base = UINT64_MAX;
  for (size_t i = 0; i < rs.n; i++)
    if (rs.spans[i]->start < base) base = rs.spans[i]->start;
  producers_t prod = {0};
  size_t cap = 16;
  size_t nresults = 0;
  for (size_t i = 0; i < rs.n; i++) nresults += rs.spans[i]->nresults;
  while (cap < nresults * 2) cap *= 2;
  if (rc == 0) {
    prod.keys = ray__calloc(cap, sizeof *prod.keys);
    prod.vals = ray__calloc(cap, sizeof *prod.vals);
    prod.mask = cap - 1;
    if (prod.keys == NULL || prod.vals == NULL) rc = RAY_ENOMEM;
  }
  for (size_t i = 0; rc == 0 && i < rs.n; i++) {
    const ray__span_t *s = rs.spans[i];
    for (uint32_t k = 0; k < s->nresults; k++) {
      uint64_t id = s->ids[s->nargs + k];
      size_t j = slot_of(&prod, id);
      prod.keys[j] = id;
      prod.vals[j] = i;
    }
  }
  uint64_t flow = 0;
  for (size_t i = 0; rc == 0 && i < rs.n; i++) {
    const ray__span_t *s = rs.spans[i];
    double ts = (double)(s->start - base) / 1000.0, dur = (double)(s->end - s->start) / 1000.0;
    emit(&out, "{\"name\":\"");
    emit_name(&out, s->name);
    emit(&out,
         "\",\"cat\":\"%s\",\"ph\":\"X\",\"pid\":%d,\"tid\":%u,\"ts\":%.3f,\"dur\":%.3f,"
         "\"args\":{\"task_id\":%llu,\"outcome\":\"%s\"}},\n",
         s->kind == RAY__TASK_FN     ? "task"
         : s->kind == RAY__TASK_CTOR ? "actor_creation"
                                     : "actor_call",
         rs.pid, rs.rows[i], ts, dur, (unsigned long long)s->task_id, ray_err_name(s->outcome));
    for (uint32_t k = 0; k < s->nargs; k++) {
      size_t j = slot_of(&prod, s->ids[k]);
      if (prod.keys[j] != s->ids[k]) continue; /* not produced by a recorded task */
      const ray__span_t *p = rs.spans[prod.vals[j]];
      double pend = (double)(p->end - base) / 1000.0, pstart = (double)(p->start - base) / 1000.0;
      double at = pend - 0.001 > pstart ? pend - 0.001 : pstart; /* inside the producer's slice */
      flow++; /* unique across ranks too: traces of several ranks merge */
      unsigned long long fid = ((unsigned long long)rs.pid << 48) | flow;
      emit(&out,
           "{\"name\":\"result\",\"cat\":\"dependency\",\"ph\":\"s\",\"id\":%llu,\"pid\":%d,"
           "\"tid\":%u,\"ts\":%.3f},\n",
           fid, rs.pid, rs.rows[prod.vals[j]], at);
      emit(&out,
           "{\"name\":\"result\",\"cat\":\"dependency\",\"ph\":\"f\",\"bp\":\"e\",\"id\":%llu,"
           "\"pid\":%d,\"tid\":%u,\"ts\":%.3f},\n",
           fid, rs.pid, rs.rows[i], ts);
    }
  }
  emit(&out,
       "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"rustyray rank "
       "%d\"}}\n]}\n",
       rs.pid, rs.pid);
  if (rc == 0 && out.oom) rc = RAY_ENOMEM;
  if (rc == 0) {
    uv_fs_t req;
    int fd = uv_fs_open(NULL, &req, path, O_CREAT | O_WRONLY | O_TRUNC, 0644, NULL);
    uv_fs_req_cleanup(&req);
    if (fd < 0) {
      rc = RAY_EIO;
    } else {
      size_t done = 0;
      while (done < out.len && rc == 0) {
        uv_buf_t b = uv_buf_init(out.buf + done, (unsigned)(out.len - done));
        int w = uv_fs_write(NULL, &req, fd, &b, 1, (int64_t)done, NULL);
        uv_fs_req_cleanup(&req);
        if (w <= 0)
          rc = RAY_EIO;
        else
          done += (size_t)w;
      }
      uv_fs_close(NULL, &req, fd, NULL);
      uv_fs_req_cleanup(&req);
    }
  }
  ray__free(prod.keys);
  ray__free(prod.vals);
  ray__free(rs.spans);
  ray__free(rs.rows);
  ray__free(out.buf);
  return rc;
}

int ray_timeline_dump(const char *path) {
  if (path == NULL || *path == '\0') return RAY_EINVAL;
  RAY__API_ENTER(rt);
  if (!rt->cfg.timeline) return RAY_EINVAL;
  int rc = ray__timeline_write(rt, path);
  if (rc != 0)
    ray__log(RAY_LOG_ERROR, "cannot write the timeline to %s: %s", path, ray_err_name(rc));
  return rc;
}
