/* metrics.c - the runtime's counters in Prometheus text format, and the
 * optional GET /metrics endpoint served by the runtime's libuv loop.
 *
 * The endpoint lives entirely on the loop thread: it is started by a loop
 * item during ray_init (which waits for the bind result) and closed by the
 * loop's stop hook, so no handle is ever touched from another thread. It
 * listens on 127.0.0.1 unless the host sets metrics_bind. It answers one
 * request per connection (HTTP/1.0 style) and closes. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

typedef struct lat_s {
  uint64_t buckets[RAY__LAT_BUCKETS];
  uint64_t count, sum_ns;
} lat_t;

static void add_lat(ray__obs_t *o, void *arg) {
  lat_t *l = arg;
  uv_mutex_lock(&o->mu);
  for (int i = 0; i < RAY__LAT_BUCKETS; i++) l->buckets[i] += o->lat_buckets[i];
  l->count += o->lat_count;
  l->sum_ns += o->lat_sum_ns;
  uv_mutex_unlock(&o->mu);
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
  metric(&t, "rustyray_tasks_submitted_total", "counter", "Tasks and actor calls submitted.",
         s.tasks_submitted);
  metric(&t, "rustyray_tasks_finished_total", "counter", "Tasks and actor calls finished.",
         s.tasks_finished);
  metric(&t, "rustyray_tasks_failed_total", "counter", "Tasks and actor calls failed.",
         s.tasks_failed);
  metric(&t, "rustyray_actors_alive", "gauge", "Actors alive.", s.actors_alive);
  metric(&t, "rustyray_workers", "gauge", "Worker threads (spares included).", s.num_workers);
  lat_t l;
  memset(&l, 0, sizeof l);
  ray__sched_foreach(&rt->sched, add_lat, &l);
  put(&t, "# HELP rustyray_task_run_seconds Time tasks and actor calls ran.\n"
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

typedef struct client_s {
  uv_tcp_t tcp;
  uv_write_t wr;
  struct client_s *next;
  ray__metrics_t *m;
  char req[2048];
  size_t reqlen;
  char *resp;
  bool closing;
} client_t;

static void client_closed(uv_handle_t *h) {
  client_t *c = h->data;
  ray__metrics_t *m = c->m;
  for (client_t **p = (client_t **)&m->clients; *p != NULL; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      break;
    }
  }
  ray__free(c->resp);
  ray__free(c);
}

static void client_close(client_t *c) {
  if (c->closing) return;
  c->closing = true;
  uv_close((uv_handle_t *)&c->tcp, client_closed);
}

static void wrote(uv_write_t *wr, int status) {
  (void)status;
  client_close(wr->data);
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

static void respond(client_t *c) {
  bool ok = c->reqlen >= 12 && memcmp(c->req, "GET /metrics", 12) == 0 &&
            (c->req[12] == ' ' || c->req[12] == '?');
  static const char body404[] = "not found: try GET /metrics\n";
  size_t blen = sizeof body404 - 1;
  char *body = ok ? render_body(&blen) : NULL;
  if (ok && body == NULL) {
    client_close(c);
    return;
  }
  char head[256];
  int hlen = snprintf(head, sizeof head,
                      "HTTP/1.0 %s\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      ok ? "200 OK" : "404 Not Found", blen);
  c->resp = ray__malloc((size_t)hlen + blen);
  if (c->resp == NULL) {
    ray__free(body);
    client_close(c);
    return;
  }
  memcpy(c->resp, head, (size_t)hlen);
  memcpy(c->resp + hlen, ok ? body : body404, blen);
  ray__free(body);
  uv_buf_t b = uv_buf_init(c->resp, (unsigned)((size_t)hlen + blen));
  c->wr.data = c;
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, wrote) != 0) client_close(c);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  (void)suggested;
  client_t *c = h->data;
  b->base = c->req + c->reqlen;
  b->len = sizeof c->req - 1 - c->reqlen;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  client_t *c = s->data;
  if (n < 0) {
    client_close(c);
    return;
  }
  c->reqlen += (size_t)n;
  c->req[c->reqlen] = '\0';
  if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL) {
    uv_read_stop(s);
    respond(c);
  } else if (c->reqlen >= sizeof c->req - 1) {
    client_close(c); /* no request line fits: not ours */
  }
}

static void on_connection(uv_stream_t *server, int status) {
  ray__metrics_t *m = server->data;
  if (status != 0) return;
  client_t *c = ray__calloc(1, sizeof *c);
  if (c == NULL) return;
  c->m = m;
  c->tcp.data = c;
  if (uv_tcp_init(server->loop, &c->tcp) != 0) {
    ray__free(c);
    return;
  }
  c->next = m->clients;
  m->clients = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
    client_close(c);
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
    rc = uv_tcp_bind(&m->server, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&m->server, 64, on_connection);
    if (rc == 0) {
      struct sockaddr_in got;
      int len = sizeof got;
      rc = uv_tcp_getsockname(&m->server, (struct sockaddr *)&got, &len);
      if (rc == 0) m->bound_port = ntohs(got.sin_port);
    }
  }
  m->start_rc = rc == 0 ? 0 : RAY_EIO;
  if (rc != 0) ray__log(RAY_LOG_ERROR, "metrics endpoint %s:%d: %s", m->bind, m->port, uv_strerror(rc));
  uv_sem_post(&m->started);
}

/* Loop stop hook: close the listener and every client. */
static void stop_hook(void *arg) {
  ray__metrics_t *m = arg;
  if (m->open) {
    m->open = false;
    uv_close((uv_handle_t *)&m->server, NULL);
  }
  for (client_t *c = m->clients; c != NULL; c = c->next) client_close(c);
}

int ray__metrics_start(ray__metrics_t *m, ray__loop_t *loop, int port, const char *bind) {
  memset(&m->start, 0, sizeof m->start);
  m->loop = loop;
  m->port = port;
  m->clients = NULL;
  m->open = false;
  m->bound_port = 0;
  snprintf(m->bind, sizeof m->bind, "%s", bind);
  if (uv_sem_init(&m->started, 0) != 0) return RAY_ENOMEM;
  m->start.run = start_run;
  ray__loop_on_stop(loop, stop_hook, m);
  ray__loop_post(loop, &m->start);
  uv_sem_wait(&m->started);
  uv_sem_destroy(&m->started);
  return m->start_rc;
}

int ray_metrics_port(void) {
  RAY__API_ENTER(rt);
  return rt->metrics.bound_port > 0 ? rt->metrics.bound_port : RAY_EINVAL;
}
