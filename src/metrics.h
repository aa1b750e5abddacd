/* metrics.h - the optional metrics endpoint (see metrics.c), and the
 * internal test hooks that shorten its limits and read its connection
 * counts. Not public API. */
#ifndef RAY_METRICS_H
#define RAY_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "loop.h"

/* The endpoint's limits. The defaults (metrics.c, DECISIONS.md) are the
 * product's; the tests may shorten them through ray__metrics_set_limits. */
typedef struct ray__metrics_limits_s {
  int max_conns;       /* connections open at once (default 64) */
  int head_timeout_ms; /* the whole request head must arrive within this of
                          the accept (default 5000); then 408 and close */
  int idle_timeout_ms; /* longest silence while a head or an answer is on
                          its way (default 2000) */
  int linger_ms;       /* after the answer: how long to keep draining what
                          the client still sends before closing (default
                          2000), so closing never resets the answer away */
} ray__metrics_limits_t;

/* What the endpoint has done, for tests and diagnosis. */
typedef struct ray__metrics_counts_s {
  int open;           /* connections open now (never above max_conns) */
  int high_water;     /* most open at once */
  uint64_t accepted;  /* connections accepted */
  uint64_t answered;  /* 200 answers */
  uint64_t refused;   /* 4xx/5xx answers (bad requests, timeouts...) */
  uint64_t evicted;   /* closed to make room for a new connection */
  uint64_t timed_out; /* closed or answered 408 by the head/idle timers */
  uint64_t dropped;   /* closed at once: full of connections being answered */
} ray__metrics_counts_t;

struct ray__metrics_conn_s;

typedef struct ray__metrics_s {
  ray__loop_item_t start; /* first: the loop item that binds (loop thread) */
  ray__loop_t *loop;
  uv_tcp_t server;
  uv_timer_t retry; /* retries an accept that could not allocate */
  bool open;
  ray__metrics_limits_t lim;
  /* Open connections in accept order, oldest first (loop thread). */
  struct ray__metrics_conn_s *first, *last;
  int port; /* as configured: -1 any */
  int bound_port;
  char bind[64];
  uv_sem_t started;
  int start_rc;
  /* Written by the loop thread only; read by any (ray__metrics_counts). */
  atomic_int n_open, high_water;
  atomic_uint_fast64_t accepted, answered, refused, evicted, timed_out, dropped;
} ray__metrics_t;

/* Bind and listen on the loop (waits for the result). Errors: RAY_EIO, RAY_ENOMEM. */
int ray__metrics_start(ray__metrics_t *m, ray__loop_t *loop, int port, const char *bind);

/* Test hook: the limits endpoints started from now on use. NULL restores
 * the defaults; a field <= 0 keeps its default. Call it only while no
 * ray_init is running (it is a plain global, read by ray_init). */
void ray__metrics_set_limits(const ray__metrics_limits_t *lim);

/* Test hook: the running endpoint's counts. Callable from any thread while
 * the runtime is up. Errors: RAY_EINVAL (out NULL), RAY_ENOTINIT, RAY_EINVAL
 * (no endpoint configured). */
int ray__metrics_counts(ray__metrics_counts_t *out);

#endif /* RAY_METRICS_H */
