/* transport_none.c - the transport of a library built without MPI
 * (RAY_WITH_MPI off): cluster mode is refused with RAY_ENOTSUP, and nothing
 * else here is ever reached (no transport is ever started). */
#include <stdlib.h>

#include "rustyray/error.h"
#include "transport.h"

int ray__transport_start(const ray__transport_opts_t *opts, ray__transport_t **out) {
  (void)opts;
  *out = NULL;
  return RAY_ENOTSUP;
}

void ray__transport_wake(ray__transport_t *tr) {
  (void)tr;
}

int ray__transport_rank(const ray__transport_t *tr) {
  (void)tr;
  return 0;
}

int ray__transport_size(const ray__transport_t *tr) {
  (void)tr;
  return 1;
}

int ray__transport_send(ray__transport_t *tr, int dest, void *data, size_t len) {
  (void)tr;
  (void)dest;
  (void)data;
  (void)len;
  return RAY_ENOTSUP;
}

int ray__transport_send_group(ray__transport_t *tr, int dest, void *head, size_t len, size_t nbody,
                              const ray__transport_body_t *bodies) {
  (void)tr;
  (void)dest;
  (void)head;
  (void)len;
  (void)nbody;
  (void)bodies;
  return RAY_ENOTSUP;
}

int ray__transport_allgather(ray__transport_t *tr, const void *mine, size_t len, void *all) {
  (void)tr;
  (void)mine;
  (void)len;
  (void)all;
  return RAY_ENOTSUP;
}

int ray__transport_bcast(ray__transport_t *tr, void *buf, size_t len, int root) {
  (void)tr;
  (void)buf;
  (void)len;
  (void)root;
  return RAY_ENOTSUP;
}

void ray__transport_stop(ray__transport_t *tr) {
  (void)tr;
}
