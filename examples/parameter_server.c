/* parameter_server.c - a synchronous parameter server: one actor holds the
 * model's weights, worker actors compute gradients on their own shard of
 * the data, and the driver runs the training loop (Ray's parameter server
 * example, in C).
 *
 *     loop STEPS times:
 *       w     = server.get()                       -> the weights (bytes)
 *       g_i   = worker_i.gradient(w)  for each i   -> its shard's gradient
 *       norm  = server.apply(g_1, ..., g_W)        -> |mean gradient|, the step taken
 *
 * The model is the least-squares fit of a vector to the workers' targets:
 * worker i's loss is 0.5 * |w - t_i|^2, its gradient w - t_i, and the best
 * w is the mean of the t_i. The refs flow straight from one call to the
 * next: the workers' calls take the server's result as their argument, and
 * the server's apply takes every worker's result; the driver only waits
 * for the norm. Everything is deterministic (fixed data, sums in argument
 * order), so the figures printed are the same on any number of ranks.
 *
 * As an MPI job each worker lives on a rank of its own when there are
 * ranks enough (ray_actor_opts_t.node: 1 + i mod the rank count), the
 * server on rank 0; the classes are static descriptors, so every rank can
 * make their actors:
 *   RAY_CLUSTER=mpi mpirun -np 4 ./parameter_server
 * In one process everything is local. Checks: the mean gradient's norm
 * (the distance to the best weights) falls at every step (it halves), and
 * the weights end within 1e-4 of the targets' mean. Exits non-zero on a mismatch (ctest runs it as
 * example_parameter_server, and as a 4-rank job: cluster_example_*). */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rustyray.h"

enum { DIM = 64, WORKERS = 6, STEPS = 40 };
#define LEARNING_RATE 0.5

#define CHECK(call)                                                                  \
  do {                                                                               \
    int check_rc_ = (call);                                                          \
    if (check_rc_ != RAY_OK) {                                                       \
      fprintf(stderr, "parameter_server:%d: %s returned %s (%s)\n", __LINE__, #call, \
              ray_err_name(check_rc_), ray_strerror(check_rc_));                     \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

static const uint32_t k_bytes[] = {RAY_TYPE_BYTES};
static const uint32_t k_f64[] = {RAY_TYPE_F64};
static const uint32_t k_i64[] = {RAY_TYPE_I64};

/* Worker i's target: a fixed vector. */
static double target(int worker, int d) {
  return sin(0.37 * (double)(worker * DIM + d)) + 0.1 * (double)worker;
}

/* ---- The server: the weights ---------------------------------------------- */

typedef struct {
  double w[DIM];
} server_t;

static int server_ctor(ray_task_ctx_t *ctx, void **state) {
  (void)ctx;
  server_t *s = calloc(1, sizeof *s); /* the weights start at 0 */
  if (s == NULL) return RAY_ENOMEM;
  *state = s;
  return 0;
}

static int server_get(ray_task_ctx_t *ctx, void *state) {
  return ray_return_bytes(ctx, 0, ((server_t *)state)->w, sizeof(double) * DIM);
}

/* apply(g_1, ..., g_W): step by the mean gradient; returns its norm. */
static int server_apply(ray_task_ctx_t *ctx, void *state) {
  server_t *s = state;
  size_t n = ray_ctx_nargs(ctx);
  double mean[DIM] = {0}, norm = 0;
  for (size_t i = 0; i < n; i++) {
    const void *data;
    size_t size;
    int rc = ray_ctx_arg_bytes(ctx, i, &data, &size);
    if (rc != 0) return rc;
    if (size != sizeof(double) * DIM)
      return ray_fail(ctx, RAY_EINVAL, "a gradient of %zu bytes", size);
    double g[DIM];
    memcpy(g, data, sizeof g);
    for (int d = 0; d < DIM; d++) mean[d] += g[d] / (double)n;
  }
  for (int d = 0; d < DIM; d++) {
    norm += mean[d] * mean[d];
    s->w[d] -= LEARNING_RATE * mean[d];
  }
  return ray_return_f64(ctx, 0, sqrt(norm));
}

static const ray_method_def_t k_server_methods[] = {{"get", server_get, k_bytes, 1},
                                                    {"apply", server_apply, k_f64, 1}};
static const ray_actor_class_t k_server = {"ParameterServer", server_ctor, free, k_server_methods,
                                           2};
static ray_static_class_t s_server = {&k_server, NULL};

/* ---- A worker: its shard's gradient ---------------------------------------- */

typedef struct {
  int id;
} worker_t;

static int worker_ctor(ray_task_ctx_t *ctx, void **state) {
  int64_t id;
  int rc = ray_ctx_arg_i64(ctx, 0, &id);
  if (rc != 0) return rc;
  worker_t *w = malloc(sizeof *w);
  if (w == NULL) return RAY_ENOMEM;
  w->id = (int)id;
  *state = w;
  return 0;
}

static int worker_gradient(ray_task_ctx_t *ctx, void *state) {
  const worker_t *wk = state;
  const void *data;
  size_t size;
  int rc = ray_ctx_arg_bytes(ctx, 0, &data, &size);
  if (rc != 0) return rc;
  if (size != sizeof(double) * DIM) return ray_fail(ctx, RAY_EINVAL, "weights of %zu bytes", size);
  double w[DIM], g[DIM];
  memcpy(w, data, sizeof w);
  for (int d = 0; d < DIM; d++) g[d] = w[d] - target(wk->id, d);
  return ray_return_bytes(ctx, 0, g, sizeof g);
}

static int worker_rank(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, ray_rank());
}

static const ray_method_def_t k_worker_methods[] = {{"gradient", worker_gradient, k_bytes, 1},
                                                    {"rank", worker_rank, k_i64, 1}};
static const ray_actor_class_t k_worker = {"Worker", worker_ctor, free, k_worker_methods, 2};
static ray_static_class_t s_worker = {&k_worker, NULL};

/* ---- The driver -------------------------------------------------------------- */

static ray_ref_t call(ray_actor_t a, const char *method, const ray_arg_t *args, size_t nargs) {
  ray_ref_t r;
  CHECK(ray_actor_call(a, method, args, nargs, NULL, &r));
  return r;
}

int main(void) {
  /* Before ray_init: as an MPI job the other ranks never get past it. */
  ray_static_class_add(&s_server);
  ray_static_class_add(&s_worker);
  CHECK(ray_init(NULL));
  int ranks = ray_num_ranks();

  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.node = 0;
  ray_actor_t server;
  CHECK(ray_actor_create(&k_server, NULL, 0, &o, &server));
  ray_actor_t workers[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    o.node = ranks > 1 ? 1 + i % (ranks - 1) : 0;
    ray_arg_t id = ray_arg_i64(i);
    CHECK(ray_actor_create(&k_worker, &id, 1, &o, &workers[i]));
  }

  bool ok = true;
  double prev = INFINITY, norm = 0;
  for (int step = 0; step < STEPS; step++) {
    ray_ref_t weights = call(server, "get", NULL, 0);
    ray_arg_t grads[WORKERS];
    ray_arg_t warg = ray_arg_ref(weights);
    for (int i = 0; i < WORKERS; i++)
      grads[i] = ray_arg_ref(call(workers[i], "gradient", &warg, 1));
    ray_ref_t l = call(server, "apply", grads, WORKERS);
    CHECK(ray_get_f64(l, RAY_TIMEOUT_INFINITE, &norm));
    CHECK(ray_ref_release(l));
    for (int i = 0; i < WORKERS; i++) CHECK(ray_ref_release(grads[i].u.ref));
    CHECK(ray_ref_release(weights));
    if (step % 5 == 0 || step == STEPS - 1) printf("step %2d: |mean gradient| %.6e\n", step, norm);
    if (!(norm < prev)) {
      printf("FAIL: the gradient did not shrink at step %d (%.6e after %.6e)\n", step, norm, prev);
      ok = false;
    }
    prev = norm;
  }

  /* The weights against the targets' mean. */
  ray_ref_t wr = call(server, "get", NULL, 0);
  ray_buf_t b;
  CHECK(ray_get(wr, RAY_TIMEOUT_INFINITE, &b));
  double err = 0;
  for (int d = 0; d < DIM; d++) {
    double mean = 0;
    for (int i = 0; i < WORKERS; i++) mean += target(i, d) / WORKERS;
    double w;
    memcpy(&w, (const char *)b.data + sizeof(double) * (size_t)d, sizeof w);
    err = fmax(err, fabs(w - mean));
  }
  ray_buf_release(&b);
  CHECK(ray_ref_release(wr));
  printf("largest distance from the best weights: %s\n", err < 1e-4 ? "below 1e-4" : "too far");
  if (!(err < 1e-4)) {
    printf("FAIL: the weights are %.3g from the best\n", err);
    ok = false;
  }

  int elsewhere = 0;
  for (int i = 0; i < WORKERS; i++) {
    int64_t r = -1;
    ray_ref_t rr = call(workers[i], "rank", NULL, 0);
    CHECK(ray_get_i64(rr, RAY_TIMEOUT_INFINITE, &r));
    CHECK(ray_ref_release(rr));
    elsewhere += r != 0;
    CHECK(ray_actor_release(workers[i]));
  }
  printf("%d of %d workers ran on the %d other ranks\n", elsewhere, WORKERS, ranks - 1);
  CHECK(ray_actor_release(server));
  CHECK(ray_shutdown());
  printf(ok ? "parameter_server: all checks passed\n" : "parameter_server: FAILED\n");
  return ok ? 0 : 1;
}
