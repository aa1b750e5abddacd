/* metrics.c - the runtime's counters in Prometheus text format, and the
 * optional GET /metrics endpoint served by the runtime's libuv loop.
 *
 * The endpoint lives entirely on the loop thread: it is started by a loop
 * item during ray_init (which waits for the bind result) and closed by the
 * loop's stop hook, so no handle is ever touched from another thread (the
 * counts are atomics, written there and read anywhere). It listens on
 * 127.0.0.1 unless the host sets metrics_bind, and answers one request per
 * connection (HTTP/1.0 style, "Connection: close").
 *
 * It is built to keep answering scrapes while abused (DECISIONS.md):
 * - each connection holds one fixed buffer of RAY__HTTP_MAX_HEAD bytes and
 *   the answer being written; the head is parsed by ray__http_parse (http.c)
 *   after every read, and a bad one is answered with its 4xx/505 and closed;
 * - at most lim.max_conns connections are open; a new one evicts the oldest
 *   lingering one, else the oldest whose head is still arriving, so slow
 *   clients cannot hold every slot (only connections being answered are
 *   never evicted; if all are, the newcomer is dropped);
 * - a per-connection timer closes a head that is not in within
 *   head_timeout_ms of the accept or stalls idle_timeout_ms (408 if it sent
 *   anything), and a write that stalls idle_timeout_ms;
 * - after the answer the connection sends FIN and drains input for up to
 *   linger_ms, so closing with unread input never resets the answer away.
 * Invariant: a connection is in the list and the count exactly while its
 * state is not C_CLOSING; it is freed when both its handles have closed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "internal.h"

/* ---- The text ---- */

typedef struct text_s {
  char *buf;
  size_t len, used;
} text_t;

static void put(text_t *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void put(text_t *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *at = t->buf != NULL && t->used < t->len ? t->buf + t->used : NULL;
  int n = vsnprintf(at, at ? t->len - t->used : 0, fmt, ap);
  va_end(ap);
  if (n > 0) t->used += (size_t)n;
}

static void metric(text_t *t, const char *name, const char *type, const char *help, uint64_t v) {
  put(t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
      (unsigned long long)v);
}

int ray_metrics_text(char *buf, size_t len) {
  if (buf == NULL && len > 0) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  ray_stats_t s;
  int rc = ray_stats(&s);
  if (rc != 0) return rc;
  text_t t = {buf, len, 0};
  metric(&t, "rustyray_objects", "gauge", "Objects in the store.", s.objects);
  metric(&t, "rustyray_object_store_bytes", "gauge", "Payload bytes held in memory.",
         s.bytes_in_memory);
  metric(&t, "rustyray_object_store_capacity_bytes", "gauge", "The store's memory capacity.",
         s.object_store_memory);
  metric(&t, "rustyray_object_store_high_water_bytes", "gauge",
         "Most bytes ever reserved in memory.", s.bytes_in_memory_high_water);
  metric(&t, "rustyray_objects_created_total", "counter", "Objects created.", s.objects_created);
  metric(&t, "rustyray_objects_freed_total", "counter", "Objects freed.", s.objects_freed);
  metric(&t, "rustyray_spilled_bytes", "gauge", "Payload bytes on disk.", s.bytes_spilled);
  metric(&t, "rustyray_spilled_bytes_total", "counter", "Payload bytes ever spilled.",
         s.bytes_spilled_total);
  metric(&t, "rustyray_spills_total", "counter", "Objects spilled.", s.spill_count);
  metric(&t, "rustyray_restores_total", "counter", "Objects restored from disk.", s.restore_count);
  metric(&t, "rustyray_evictions_total", "counter", "Copies of other ranks' objects evicted.",
         s.evict_count);
  metric(&t, "rustyray_refetches_total", "counter", "Evicted copies asked of their owners again.",
         s.refetch_count);
  metric(&t, "rustyray_tasks_submitted_total", "counter", "Tasks and actor calls submitted.",
         s.tasks_submitted);
  metric(&t, "rustyray_tasks_finished_total", "counter", "Tasks and actor calls finished.",
         s.tasks_finished);
  metric(&t, "rustyray_tasks_failed_total", "counter", "Tasks and actor calls failed.",
         s.tasks_failed);
  metric(&t, "rustyray_actors_alive", "gauge", "Actors alive.", s.actors_alive);
  metric(&t, "rustyray_workers", "gauge", "Worker threads (spares included).", s.num_workers);
  metric(&t, "rustyray_remote_tasks_sent_total", "counter",
         "Tasks sent to other ranks (cluster mode).", s.remote_tasks_sent);
  metric(&t, "rustyray_remote_tasks_received_total", "counter",
         "Tasks other ranks sent here (cluster mode).", s.remote_tasks_received);
  metric(&t, "rustyray_remote_bytes_sent_total", "counter",
         "Bytes of messages sent to other ranks (cluster mode).", s.remote_bytes_sent);
  metric(&t, "rustyray_remote_bytes_received_total", "counter",
         "Bytes of messages received from other ranks (cluster mode).", s.remote_bytes_received);
  ray__latency_t l;
  ray__timeline_latency(rt, &l);
  put(&t,
      "# HELP rustyray_task_run_seconds Time tasks and actor calls ran.\n"
      "# TYPE rustyray_task_run_seconds histogram\n");
  static const char *les[RAY__LAT_BUCKETS - 1] = {"1e-06", "1e-05", "0.0001", "0.001",
                                                  "0.01",  "0.1",   "1"};
  uint64_t cum = 0;
  for (int i = 0; i < RAY__LAT_BUCKETS - 1; i++) {
    cum += l.buckets[i];
    put(&t, "rustyray_task_run_seconds_bucket{le=\"%s\"} %llu\n", les[i], (unsigned long long)cum);
  }
  put(&t, "rustyray_task_run_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)l.count);
  put(&t, "rustyray_task_run_seconds_sum %.9f\n", (double)l.sum_ns / 1e9);
  put(&t, "rustyray_task_run_seconds_count %llu\n", (unsigned long long)l.count);
  if (buf != NULL && len > 0 && t.used >= len) buf[len - 1] = '\0';
  return t.used > (size_t)INT32_MAX ? INT32_MAX : (int)t.used;
}

/* ---- The endpoint (loop thread only) ---- */

static const ray__metrics_limits_t default_limits = {
    .max_conns = 64, .head_timeout_ms = 5000, .idle_timeout_ms = 2000, .linger_ms = 2000};
static ray__metrics_limits_t test_limits; /* ray__metrics_set_limits; zero: defaults */

/* Kernel queue of connections not yet accepted: each accept of a full
 * endpoint evicts one connection, so this also bounds how many evicted
 * connections wait for their close callbacks at once. */
#define LISTEN_BACKLOG 128

typedef enum conn_state_e {
  C_READING, /* the head is arriving: evictable, head and idle timers */
  C_WRITING, /* the answer is being written: idle timer */
  C_LINGER,  /* answered, FIN sent: draining input until EOF; evictable */
  C_CLOSING  /* uv_close called; no longer in the list or the count */
} conn_state_t;

typedef struct ray__metrics_conn_s {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t wr;
  uv_shutdown_t sd;
  struct ray__metrics_conn_s *prev, *next; /* accept order */
  ray__metrics_t *m;
  conn_state_t state;
  int handles;            /* handles not yet closed */
  bool peer_done;         /* the client sent EOF: no need to linger */
  uint64_t head_deadline; /* uv_now() by which the head must be in */
  char *resp;
  size_t len;                   /* bytes of head received (C_READING) */
  char buf[RAY__HTTP_MAX_HEAD]; /* the head; afterwards a drain scratch */
} conn_t;

static void bump(atomic_uint_fast64_t *c) {
  atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1, memory_order_relaxed);
}

static void set_open(ray__metrics_t *m, int delta) {
  int n = atomic_load_explicit(&m->n_open, memory_order_relaxed) + delta;
  atomic_store_explicit(&m->n_open, n, memory_order_relaxed);
  if (n > atomic_load_explicit(&m->high_water, memory_order_relaxed))
    atomic_store_explicit(&m->high_water, n, memory_order_relaxed);
}

static void handle_closed(uv_handle_t *h) {
  conn_t *c = h->data;
  if (--c->handles > 0) return;
  ray__free(c->resp);
  ray__free(c);
}

/* Close a connection: out of the list and the count now, freed once both
 * of its handles have closed. Pending write and shutdown callbacks then run
 * with UV_ECANCELED and see C_CLOSING. */
static void conn_close(conn_t *c) {
  if (c->state == C_CLOSING) return;
  ray__metrics_t *m = c->m;
  c->state = C_CLOSING;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    m->first = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  else
    m->last = c->prev;
  c->prev = c->next = NULL;
  set_open(m, -1);
  uv_close((uv_handle_t *)&c->tcp, handle_closed);
  uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void timer_fired(uv_timer_t *t);

static void arm(conn_t *c, uint64_t ms) {
  (void)uv_timer_start(&c->timer, timer_fired, ms, 0); /* cannot fail: the callback is set */
}

/* Re-arm while reading: the earlier of the head deadline and the idle limit. */
static void arm_reading(conn_t *c) {
  uint64_t now = uv_now(c->tcp.loop);
  uint64_t left = c->head_deadline > now ? c->head_deadline - now : 0;
  uint64_t idle = (uint64_t)c->m->lim.idle_timeout_ms;
  arm(c, left < idle ? left : idle);
}

/* Render the body first (it may grow between a measuring pass and the
 * rendering one: retry), then the header with its real length. */
static char *render_body(size_t *len) {
  size_t cap = 4096;
  for (int tries = 0; tries < 8; tries++) {
    char *b = ray__malloc(cap);
    if (b == NULL) return NULL;
    int n = ray_metrics_text(b, cap);
    if (n >= 0 && (size_t)n < cap) {
      *len = (size_t)n;
      return b;
    }
    ray__free(b);
    if (n < 0) return NULL;
    cap = (size_t)n + 1024;
  }
  return NULL;
}

static void wrote(uv_write_t *wr, int status);
static void shut(uv_shutdown_t *sd, int status);

/* Send `status` (the metrics page for 200; with head_only, headers only)
 * and close: the connection stops being evictable until the answer is out. */
static void answer(conn_t *c, int status, bool head_only) {
  char small[64];
  char *body = NULL;
  size_t blen = 0;
  if (status == 200) {
    body = render_body(&blen);
    if (body == NULL) status = 500;
  }
  if (status != 200) {
    int n = snprintf(small, sizeof small, "%d %s\n", status, ray__http_reason(status));
    blen = n > 0 ? (size_t)n : 0;
  }
  const char *text = body != NULL ? body : small;
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "HTTP/1.0 %d %s\r\nContent-Type: text/plain%s\r\n"
                      "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                      status, ray__http_reason(status),
                      status == 200 ? "; version=0.0.4; charset=utf-8" : "", blen,
                      status == 405 ? "Allow: GET, HEAD\r\n" : "");
  size_t send = (size_t)hlen + (head_only ? 0 : blen);
  c->resp = ray__malloc(send);
  if (c->resp == NULL) {
    ray__free(body);
    conn_close(c);
    return;
  }
  memcpy(c->resp, head, (size_t)hlen);
  if (!head_only) memcpy(c->resp + hlen, text, blen);
  ray__free(body);
  bump(status == 200 ? &c->m->answered : &c->m->refused);
  c->state = C_WRITING;
  arm(c, (uint64_t)c->m->lim.idle_timeout_ms);
  uv_buf_t b = uv_buf_init(c->resp, (unsigned)send);
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, wrote) != 0) conn_close(c);
}

/* The answer is in the kernel: send FIN and keep reading (discarding) until
 * the client closes too, so unread input never turns our close into a reset
 * that could destroy the answer before the client reads it. */
static void wrote(uv_write_t *wr, int status) {
  conn_t *c = wr->data;
  if (c->state == C_CLOSING) return;
  if (status != 0 || c->peer_done) {
    conn_close(c);
    return;
  }
  c->state = C_LINGER;
  arm(c, (uint64_t)c->m->lim.linger_ms);
  c->sd.data = c;
  if (uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, shut) != 0) conn_close(c);
}

static void shut(uv_shutdown_t *sd, int status) {
  conn_t *c = sd->data;
  if (status != 0 && c->state != C_CLOSING) conn_close(c);
}

static void timer_fired(uv_timer_t *t) {
  conn_t *c = t->data;
  if (c->state == C_READING) {
    bump(&c->m->timed_out);
    if (c->len > 0) {
      answer(c, 408, false);
      return;
    }
  } else if (c->state == C_WRITING) {
    bump(&c->m->timed_out);
  }
  conn_close(c); /* an idle connection, a stalled write, or lingering done */
}

/* Only GET and HEAD of /metrics (a query string allowed) are served. */
static void route(conn_t *c, const ray__http_req_t *r) {
  static const char path[] = "/metrics";
  size_t pl = sizeof path - 1;
  bool ours = r->target_len >= pl && memcmp(r->target, path, pl) == 0 &&
              (r->target_len == pl || r->target[pl] == '?');
  bool get = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0;
  bool head = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
  if (!ours)
    answer(c, 404, head);
  else if (!get && !head)
    answer(c, 405, false);
  else
    answer(c, 200, head);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  conn_t *c = h->data;
  /* While reading, len < RAY__HTTP_MAX_HEAD: a full buffer always parses to
   * DONE or BAD (431) and leaves C_READING. Afterwards input is discarded. */
  if (c->state == C_READING)
    *b = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
  else
    *b = uv_buf_init(c->buf, (unsigned)sizeof c->buf);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  conn_t *c = s->data;
  if (c->state == C_CLOSING || n == 0) return;
  if (n < 0) {
    if (n == UV_EOF && (c->state == C_WRITING || (c->state == C_READING && c->len > 0))) {
      /* Half-closed: still answer (a truncated head is a bad request). */
      c->peer_done = true;
      uv_read_stop(s);
      if (c->state == C_READING) answer(c, 400, false);
      return;
    }
    conn_close(c);
    return;
  }
  if (c->state != C_READING) return; /* draining */
  c->len += (size_t)n;
  ray__http_req_t req;
  int r = ray__http_parse(c->buf, c->len, &req);
  if (r == RAY__HTTP_MORE)
    arm_reading(c);
  else if (r == RAY__HTTP_BAD)
    answer(c, req.status, false);
  else
    route(c, &req);
}

/* Make room for one more connection: close the oldest lingering one, else
 * the oldest one whose head is still arriving. Connections being answered
 * are never evicted. Returns whether a slot was freed. */
static bool evict_one(ray__metrics_t *m) {
  conn_t *victim = NULL;
  for (conn_t *c = m->first; c != NULL && victim == NULL; c = c->next)
    if (c->state == C_LINGER) victim = c;
  for (conn_t *c = m->first; c != NULL && victim == NULL; c = c->next)
    if (c->state == C_READING) victim = c;
  if (victim == NULL) return false;
  bump(&m->evicted);
  conn_close(victim);
  return true;
}

static void retry_accept(uv_timer_t *t);

/* Accept the pending connection, making room for it first. libuv stops
 * watching the listener until uv_accept is called, so when no memory is to
 * be had a timer retries rather than leave the endpoint deaf. */
static void accept_one(ray__metrics_t *m) {
  bool room =
      atomic_load_explicit(&m->n_open, memory_order_relaxed) < m->lim.max_conns || evict_one(m);
  conn_t *c = ray__calloc(1, sizeof *c);
  if (c == NULL || uv_tcp_init(&m->loop->loop, &c->tcp) != 0) {
    ray__free(c);
    (void)uv_timer_start(&m->retry, retry_accept, 100, 0);
    return;
  }
  (void)uv_timer_init(&m->loop->loop, &c->timer); /* cannot fail on an initialised loop */
  c->m = m;
  c->tcp.data = c;
  c->timer.data = c;
  c->handles = 2;
  int rc = uv_accept((uv_stream_t *)&m->server, (uv_stream_t *)&c->tcp);
  if (rc != 0 || !room) {
    /* Never listed nor counted. Without room every slot is being answered:
     * the newcomer is dropped rather than let the count pass the cap. */
    if (rc == 0) bump(&m->dropped);
    c->state = C_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    return;
  }
  bump(&m->accepted);
  c->state = C_READING;
  c->prev = m->last;
  if (m->last != NULL)
    m->last->next = c;
  else
    m->first = c;
  m->last = c;
  set_open(m, +1);
  c->head_deadline = uv_now(&m->loop->loop) + (uint64_t)m->lim.head_timeout_ms;
  arm_reading(c);
  if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) conn_close(c);
}

static void retry_accept(uv_timer_t *t) {
  ray__metrics_t *m = t->data;
  if (m->open) accept_one(m);
}

static void on_connection(uv_stream_t *server, int status) {
  if (status == 0) accept_one(server->data);
}

/* Loop thread: bind and listen, then tell ray_init how it went. */
static void start_run(ray__loop_item_t *item) {
  ray__metrics_t *m = (ray__metrics_t *)((char *)item - offsetof(ray__metrics_t, start));
  struct sockaddr_in addr;
  int rc = uv_ip4_addr(m->bind, m->port < 0 ? 0 : m->port, &addr);
  if (rc == 0) rc = uv_tcp_init(&m->loop->loop, &m->server);
  if (rc == 0) {
    m->server.data = m;
    m->open = true;
    (void)uv_timer_init(&m->loop->loop, &m->retry);
    m->retry.data = m;
    rc = uv_tcp_bind(&m->server, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&m->server, LISTEN_BACKLOG, on_connection);
    if (rc == 0) {
      struct sockaddr_in got;
      int len = sizeof got;
      rc = uv_tcp_getsockname(&m->server, (struct sockaddr *)&got, &len);
      if (rc == 0) m->bound_port = ntohs(got.sin_port);
    }
  }
  m->start_rc = rc == 0 ? 0 : RAY_EIO;
  if (rc != 0)
    ray__log(RAY_LOG_ERROR, "metrics endpoint %s:%d: %s", m->bind, m->port, uv_strerror(rc));
  uv_sem_post(&m->started);
}

/* Loop stop hook: close the listener, the retry timer and every connection. */
static void stop_hook(void *arg) {
  ray__metrics_t *m = arg;
  if (m->open) {
    m->open = false;
    uv_close((uv_handle_t *)&m->server, NULL);
    uv_close((uv_handle_t *)&m->retry, NULL);
  }
  while (m->first != NULL) conn_close(m->first);
}

static int limit_or(int v, int def) {
  return v > 0 ? v : def;
}

int ray__metrics_start(ray__metrics_t *m, ray__loop_t *loop, int port, const char *bind) {
  memset(&m->start, 0, sizeof m->start);
  m->loop = loop;
  m->port = port;
  m->first = m->last = NULL;
  m->open = false;
  m->bound_port = 0;
  m->lim.max_conns = limit_or(test_limits.max_conns, default_limits.max_conns);
  m->lim.head_timeout_ms = limit_or(test_limits.head_timeout_ms, default_limits.head_timeout_ms);
  m->lim.idle_timeout_ms = limit_or(test_limits.idle_timeout_ms, default_limits.idle_timeout_ms);
  m->lim.linger_ms = limit_or(test_limits.linger_ms, default_limits.linger_ms);
  atomic_init(&m->n_open, 0);
  atomic_init(&m->high_water, 0);
  atomic_init(&m->accepted, 0);
  atomic_init(&m->answered, 0);
  atomic_init(&m->refused, 0);
  atomic_init(&m->evicted, 0);
  atomic_init(&m->timed_out, 0);
  atomic_init(&m->dropped, 0);
  snprintf(m->bind, sizeof m->bind, "%s", bind);
  if (uv_sem_init(&m->started, 0) != 0) return RAY_ENOMEM;
  m->start.run = start_run;
  ray__loop_on_stop(loop, stop_hook, m);
  ray__loop_post(loop, &m->start);
  uv_sem_wait(&m->started);
  uv_sem_destroy(&m->started);
  return m->start_rc;
}

void ray__metrics_set_limits(const ray__metrics_limits_t *lim) {
  if (lim == NULL)
    memset(&test_limits, 0, sizeof test_limits);
  else
    test_limits = *lim;
}

int ray__metrics_counts(ray__metrics_counts_t *out) {
  if (out == NULL) return RAY_EINVAL;
  ray__runtime_t *rt = ray__rt();
  if (rt == NULL) return RAY_ENOTINIT;
  if (!rt->metrics_on) return RAY_EINVAL;
  ray__metrics_t *m = &rt->metrics;
  out->open = atomic_load_explicit(&m->n_open, memory_order_relaxed);
  out->high_water = atomic_load_explicit(&m->high_water, memory_order_relaxed);
  out->accepted = atomic_load_explicit(&m->accepted, memory_order_relaxed);
  out->answered = atomic_load_explicit(&m->answered, memory_order_relaxed);
  out->refused = atomic_load_explicit(&m->refused, memory_order_relaxed);
  out->evicted = atomic_load_explicit(&m->evicted, memory_order_relaxed);
  out->timed_out = atomic_load_explicit(&m->timed_out, memory_order_relaxed);
  out->dropped = atomic_load_explicit(&m->dropped, memory_order_relaxed);
  return 0;
}

int ray_metrics_port(void) {
  RAY__API_ENTER(rt);
  return rt->metrics.bound_port > 0 ? rt->metrics.bound_port : RAY_EINVAL;
}
