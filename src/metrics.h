/* metrics.h - the optional metrics endpoint (see metrics.c). */
#ifndef RAY_METRICS_H
#define RAY_METRICS_H

#include <stdbool.h>
#include <uv.h>

#include "loop.h"

typedef struct ray__metrics_s {
  ray__loop_item_t start; /* first: the loop item that binds (loop thread) */
  ray__loop_t *loop;
  uv_tcp_t server;
  bool open;
  void *clients; /* connections being served (loop thread) */
  int port;      /* as configured: -1 any */
  int bound_port;
  char bind[64];
  uv_sem_t started;
  int start_rc;
} ray__metrics_t;

/* Bind and listen on the loop (waits for the result). Errors: RAY_EIO, RAY_ENOMEM. */
int ray__metrics_start(ray__metrics_t *m, ray__loop_t *loop, int port, const char *bind);

#endif /* RAY_METRICS_H */
