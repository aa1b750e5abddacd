/* cluster_bench.c - rustyray_microbenchmark's cluster cases (a build with
 * RAY_WITH_MPI), run when it is launched with RAY_CLUSTER=mpi under mpirun:
 *
 *   RAY_CLUSTER=mpi mpirun -np 2 ./bench/rustyray_microbenchmark          # sync, 1 MiB
 *   RAY_CLUSTER=mpi mpirun -np 4 ./bench/rustyray_microbenchmark          # + async
 *
 * (as root add --allow-run-as-root; on 2 cores --oversubscribe). Every rank
 * runs the program; rank 0 measures and prints, the others serve. Each case
 * prints one line, and the ones with a raw MPI baseline print it beside,
 * measured in the same run, and the ratio:
 *
 *   remote_tasks_sync     a task placed on rank 1, then ray_get: round trips/s.
 *                         Baseline remote_tasks_sync_raw_mpi: the same round
 *                         trip written by hand on MPI as well as we know how,
 *                         app thread to app thread through a communication
 *                         thread on each rank (the application thread hands
 *                         its request to the communication thread through a
 *                         spinning flag; that thread sends it with MPI and
 *                         polls for the answer; on rank 1 the communication
 *                         thread hands it to an application thread, which
 *                         answers the same way). Target: ours >= 1/3 of it.
 *   remote_tasks_async    as many tasks as fit in a batch, placed round-robin
 *                         on ranks 1.., then every result got: tasks/s.
 *                         Target: >= 50,000 with 4 ranks on 2 cores.
 *   remote_get_1mib       a 1 MiB object stored on rank 1, read on rank 0 (a
 *                         task there returns it, ray_return_ref: no copy on
 *                         rank 1; rank 0 gets the result): MiB/s. Baseline
 *                         remote_get_1mib_raw_mpi: the same request and
 *                         1 MiB answer by hand as above.
 *                         Target: ours >= 0.5 of it.
 *   remote_1_1_actor_calls_sync
 *                         an actor on rank 1 (ray_actor_opts_t.node), called
 *                         from rank 0 and got, one at a time: round trips/s,
 *                         beside the same raw baseline as remote_tasks_sync.
 *                         Target: a round trip <= 3x the raw one (>= 1/3).
 *   remote_n_n_actor_calls_async
 *                         every rank a driver (ray_config_t.cluster_spmd):
 *                         rank r makes an actor on rank r+1 (mod n) and calls
 *                         it in batches of 10,000, getting each batch, for the
 *                         same time on every rank: the calls of all ranks per
 *                         second. Target: >= 100,000 with 4 ranks on 2 cores.
 *
 * The raw baseline runs on its own duplicate of MPI_COMM_WORLD, made after
 * ray_init (which initialised MPI with MPI_THREAD_MULTIPLE), so it never
 * meets the runtime's messages; its threads poll only while a raw case
 * runs, yielding the core in every turn of a wait (two ranks of two threads
 * each share 2 cores here: a hard spin would starve the thread it waits
 * for). */
/* <uv.h> needs POSIX types (pthread_rwlock_t) that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include "cluster_bench.h"

#include <mpi.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "rustyray.h"

#define DIE(what, rc)                                                                    \
  do {                                                                                   \
    fprintf(stderr, "cluster_bench: %s failed: %d (%s) at line %d\n", (what), (int)(rc), \
            ray_err_name((int)(rc)), __LINE__);                                          \
    MPI_Abort(MPI_COMM_WORLD, 1);                                                        \
  } while (0)
#define CHECK(call)                \
  do {                             \
    int rc_ = (call);              \
    if (rc_ != 0) DIE(#call, rc_); \
  } while (0)

enum { MIB = 1 << 20, ASYNC_BATCH = 10000 };

/* ---- The functions every rank registers ---- */

static const uint32_t k_i64[] = {RAY_TYPE_I64};
static const uint32_t k_bytes[] = {RAY_TYPE_BYTES};

static int fn_noop(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_i64(ctx, 0, 1);
}

static unsigned char *g_mib; /* 1 MiB of pattern, made once per rank */
static ray_ref_t g_mib_ref;  /* and stored once per rank */

/* The rank's stored 1 MiB object as its result (the same object, no copy):
 * getting the result on another rank is reading a remote object. */
static int fn_mib(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  return ray_return_ref(ctx, 0, g_mib_ref);
}

/* An actor every rank knows: noop() -> 1. */
static int bench_actor_noop(ray_task_ctx_t *ctx, void *state) {
  (void)state;
  return ray_return_i64(ctx, 0, 1);
}
static const ray_method_def_t k_bench_methods[] = {{"noop", bench_actor_noop, k_i64, 1}};
static const ray_actor_class_t k_bench_actor = {"BenchActor", NULL, NULL, k_bench_methods, 1};
static ray_static_class_t s_bench_actor = {&k_bench_actor, NULL};

static ray_function_t g_noop, g_mib_fn;
static ray_static_function_t s_noop = {"bench_noop", fn_noop, NULL, k_i64, 1, &g_noop, NULL};
static ray_static_function_t s_mib = {"bench_mib", fn_mib, NULL, k_bytes, 1, &g_mib_fn, NULL};

/* ---- The raw MPI baseline: request and answer through communication
 * threads, app thread to app thread ----
 *
 * Its threads spin only during a raw phase (between raw_phase(true) and
 * raw_phase(false) on rank 0, which tells rank 1 with a PAUSE); otherwise
 * they look once a millisecond, so they take no CPU from our runtime while
 * ours is measured. */

enum { RAW_STOP = -1, RAW_PAUSE = -2, RAW_TAG = 7 };

typedef struct raw_s {
  MPI_Comm comm;
  /* Rank 0: the app thread's request (answer size wanted; 0: none), and
   * the answer's arrival; whether a raw phase runs. */
  _Atomic int64_t request;
  atomic_bool answered;
  atomic_bool hot;
  /* Rank 1: a request handed to its app thread, and the answer back. */
  _Atomic int64_t job;
  atomic_bool job_done;
  unsigned char *buf; /* MIB bytes */
  uv_thread_t comm_thread, app_thread;
} raw_t;

static raw_t g_raw;

static void raw_send(int64_t v, int dest) {
  MPI_Request req;
  MPI_Isend(&v, 1, MPI_INT64_T, dest, RAW_TAG, g_raw.comm, &req);
  int done = 0;
  while (!done) MPI_Test(&req, &done, MPI_STATUS_IGNORE);
}

/* Rank 0's communication thread: send each request, poll for its answer. */
static void raw_comm0(void *arg) {
  raw_t *r = arg;
  for (;;) {
    int64_t want = atomic_load_explicit(&r->request, memory_order_acquire);
    if (want == 0) {
      if (!atomic_load_explicit(&r->hot, memory_order_relaxed))
        uv_sleep(1);
      else
        sched_yield();
      continue;
    }
    raw_send(want, 1);
    if (want == RAW_STOP) return;
    if (want == RAW_PAUSE) {
      atomic_store_explicit(&r->request, 0, memory_order_relaxed);
      atomic_store_explicit(&r->answered, true, memory_order_release);
      continue;
    }
    int flag = 0;
    MPI_Status st;
    while (!flag) {
      MPI_Iprobe(1, RAW_TAG, r->comm, &flag, &st);
      if (!flag) sched_yield();
    }
    MPI_Recv(r->buf, (int)want, MPI_BYTE, 1, RAW_TAG, r->comm, MPI_STATUS_IGNORE);
    atomic_store_explicit(&r->request, 0, memory_order_relaxed);
    atomic_store_explicit(&r->answered, true, memory_order_release);
  }
}

/* Rank 1's app thread: answer each job handed to it. */
static void raw_app1(void *arg) {
  raw_t *r = arg;
  for (;;) {
    int64_t job = atomic_load_explicit(&r->job, memory_order_acquire);
    if (job == 0) {
      if (!atomic_load_explicit(&r->hot, memory_order_relaxed))
        uv_sleep(1);
      else
        sched_yield();
      continue;
    }
    if (job == RAW_STOP) return;
    r->buf[0] = (unsigned char)job; /* the "work": touch the answer */
    atomic_store_explicit(&r->job, 0, memory_order_relaxed);
    atomic_store_explicit(&r->job_done, true, memory_order_release);
  }
}

/* Rank 1's communication thread: receive, hand over, send the answer. */
static void raw_comm1(void *arg) {
  raw_t *r = arg;
  for (;;) {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(0, RAW_TAG, r->comm, &flag, &st);
    if (!flag) {
      if (!atomic_load_explicit(&r->hot, memory_order_relaxed))
        uv_sleep(1);
      else
        sched_yield();
      continue;
    }
    int64_t want;
    MPI_Recv(&want, 1, MPI_INT64_T, 0, RAW_TAG, r->comm, MPI_STATUS_IGNORE);
    if (want == RAW_PAUSE) {
      atomic_store_explicit(&r->hot, false, memory_order_relaxed);
      continue;
    }
    atomic_store_explicit(&r->hot, true, memory_order_relaxed);
    atomic_store_explicit(&r->job, want, memory_order_release);
    if (want == RAW_STOP) return;
    while (!atomic_load_explicit(&r->job_done, memory_order_acquire)) sched_yield();
    atomic_store_explicit(&r->job_done, false, memory_order_relaxed);
    MPI_Request req;
    MPI_Isend(r->buf, (int)want, MPI_BYTE, 0, RAW_TAG, r->comm, &req);
    int done = 0;
    while (!done) MPI_Test(&req, &done, MPI_STATUS_IGNORE);
  }
}

/* One request from rank 0's app thread, answered with `size` bytes (or a
 * PAUSE, answered at once). */
static void raw_request(int64_t size) {
  atomic_store_explicit(&g_raw.request, size, memory_order_release);
  while (!atomic_load_explicit(&g_raw.answered, memory_order_acquire)) sched_yield();
  atomic_store_explicit(&g_raw.answered, false, memory_order_relaxed);
}

/* Begin or end a raw phase (rank 0). */
static void raw_phase(bool on) {
  atomic_store_explicit(&g_raw.hot, on, memory_order_relaxed);
  if (!on) raw_request(RAW_PAUSE);
}

/* Start the baseline's threads on ranks 0 and 1 (collective: every rank
 * duplicates the communicator). */
static void raw_start(int rank) {
  memset(&g_raw, 0, sizeof g_raw);
  if (MPI_Comm_dup(MPI_COMM_WORLD, &g_raw.comm) != MPI_SUCCESS) DIE("MPI_Comm_dup", -1);
  g_raw.buf = malloc(MIB);
  if (g_raw.buf == NULL) DIE("malloc", -2);
  memset(g_raw.buf, 1, MIB);
  if (rank == 0) {
    if (uv_thread_create(&g_raw.comm_thread, raw_comm0, &g_raw) != 0) DIE("thread", -1);
  } else if (rank == 1) {
    if (uv_thread_create(&g_raw.app_thread, raw_app1, &g_raw) != 0 ||
        uv_thread_create(&g_raw.comm_thread, raw_comm1, &g_raw) != 0)
      DIE("thread", -1);
  }
}

/* Stop them: rank 0 tells rank 1; rank 1 waits for that. */
static void raw_stop(int rank) {
  if (rank == 0) {
    atomic_store_explicit(&g_raw.request, RAW_STOP, memory_order_release);
    uv_thread_join(&g_raw.comm_thread);
  } else if (rank == 1) {
    uv_thread_join(&g_raw.comm_thread);
    uv_thread_join(&g_raw.app_thread);
  }
  MPI_Comm_free(&g_raw.comm);
  free(g_raw.buf);
}

/* ---- Measuring (rank 0) ---- */

typedef uint64_t (*batch_fn)(void);

/* Run batches for `seconds` after a tenth of warm-up: operations per second. */
static double measure(double seconds, batch_fn fn) {
  uint64_t warm_end = uv_hrtime() + (uint64_t)(seconds * 1e8);
  while (uv_hrtime() < warm_end) fn();
  uint64_t ops = 0, start = uv_hrtime(), end = start + (uint64_t)(seconds * 1e9), now;
  do {
    ops += fn();
    now = uv_hrtime();
  } while (now < end);
  return (double)ops * 1e9 / (double)(now - start);
}

static int g_ranks;

static uint64_t ours_sync(void) {
  for (int i = 0; i < 100; i++) {
    ray_task_opts_t o;
    ray_task_opts_init(&o);
    o.node = 1;
    ray_ref_t r;
    CHECK(ray_task_submit(g_noop, NULL, 0, &o, &r));
    int64_t v = 0;
    CHECK(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v));
    if (v != 1) DIE("remote_tasks_sync: the value", v);
    CHECK(ray_ref_release(r));
  }
  return 100;
}

static uint64_t raw_sync(void) {
  for (int i = 0; i < 100; i++) raw_request(8);
  return 100;
}

static ray_ref_t g_async_refs[ASYNC_BATCH];

static uint64_t ours_async(void) {
  for (int i = 0; i < ASYNC_BATCH; i++) {
    ray_task_opts_t o;
    ray_task_opts_init(&o);
    o.node = 1 + i % (g_ranks - 1);
    CHECK(ray_task_submit(g_noop, NULL, 0, &o, &g_async_refs[i]));
  }
  for (int i = 0; i < ASYNC_BATCH; i++) {
    int64_t v = 0;
    CHECK(ray_get_i64(g_async_refs[i], RAY_TIMEOUT_INFINITE, &v));
    if (v != 1) DIE("remote_tasks_async: a value", v);
    CHECK(ray_ref_release(g_async_refs[i]));
  }
  return ASYNC_BATCH;
}

static uint64_t ours_mib(void) {
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = 1;
  ray_ref_t r;
  CHECK(ray_task_submit(g_mib_fn, NULL, 0, &o, &r));
  ray_buf_t b;
  CHECK(ray_get(r, RAY_TIMEOUT_INFINITE, &b));
  if (b.size != MIB || memcmp(b.data, g_mib, 64) != 0) DIE("remote_get_1mib: the bytes", -1);
  ray_buf_release(&b);
  CHECK(ray_ref_release(r));
  return 1; /* MiB */
}

static uint64_t raw_mib(void) {
  raw_request(MIB);
  return 1;
}

/* The actor the actor cases call (rank 0: on rank 1; SPMD: on the next). */
static ray_actor_t g_actor;

static ray_actor_t actor_on(int node) {
  ray_actor_opts_t o;
  ray_actor_opts_init(&o);
  o.node = node;
  ray_actor_t a;
  CHECK(ray_actor_create(&k_bench_actor, NULL, 0, &o, &a));
  return a;
}

static uint64_t ours_actor_sync(void) {
  for (int i = 0; i < 100; i++) {
    ray_ref_t r;
    CHECK(ray_actor_call_id(g_actor, 0, NULL, 0, NULL, &r));
    int64_t v = 0;
    CHECK(ray_get_i64(r, RAY_TIMEOUT_INFINITE, &v));
    if (v != 1) DIE("remote_1_1_actor_calls_sync: the value", v);
    CHECK(ray_ref_release(r));
  }
  return 100;
}

static uint64_t ours_actor_async(void) {
  for (int i = 0; i < ASYNC_BATCH; i++)
    CHECK(ray_actor_call_id(g_actor, 0, NULL, 0, NULL, &g_async_refs[i]));
  for (int i = 0; i < ASYNC_BATCH; i++) {
    int64_t v = 0;
    CHECK(ray_get_i64(g_async_refs[i], RAY_TIMEOUT_INFINITE, &v));
    if (v != 1) DIE("remote_n_n_actor_calls_async: a value", v);
    CHECK(ray_ref_release(g_async_refs[i]));
  }
  return ASYNC_BATCH;
}

/* The phases every rank runs together (SPMD), told by rank 0 through a
 * broadcast the others wait for without spinning (they sleep between
 * looks, so they take no core from rank 0's measurements). */
enum { PHASE_END = 0, PHASE_N_N = 1 };
static MPI_Comm g_coord;

static int phase_wait(int phase) {
  MPI_Request req;
  int p = phase;
  if (MPI_Ibcast(&p, 1, MPI_INT, 0, g_coord, &req) != MPI_SUCCESS) DIE("MPI_Ibcast", -1);
  for (;;) {
    int done = 0;
    if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) DIE("MPI_Test", -1);
    if (done) return p;
    uv_sleep(1);
  }
}

/* remote_n_n_actor_calls_async on every rank: the calls made here in
 * `seconds`; rank 0 gets the sum and the longest time. */
static void n_n_phase(int rank, double seconds) {
  g_actor = actor_on((rank + 1) % g_ranks);
  double secs = seconds;
  if (MPI_Bcast(&secs, 1, MPI_DOUBLE, 0, g_coord) != MPI_SUCCESS) DIE("MPI_Bcast", -1);
  (void)ours_actor_async(); /* warm-up */
  uint64_t calls = 0, start = uv_hrtime(), end = start + (uint64_t)(secs * 1e9), now;
  do {
    calls += ours_actor_async();
    now = uv_hrtime();
  } while (now < end);
  double mine[2] = {(double)calls, (double)(now - start) / 1e9}, sum[2];
  if (MPI_Reduce(&mine[0], &sum[0], 1, MPI_DOUBLE, MPI_SUM, 0, g_coord) != MPI_SUCCESS ||
      MPI_Reduce(&mine[1], &sum[1], 1, MPI_DOUBLE, MPI_MAX, 0, g_coord) != MPI_SUCCESS)
    DIE("MPI_Reduce", -1);
  CHECK(ray_actor_release(g_actor));
  if (rank == 0) {
    printf("remote_n_n_actor_calls_async %.0f calls/s\n", sum[0] / sum[1]);
    fflush(stdout);
  }
}

/* A raw measurement: its threads hot only meanwhile. */
static double measure_raw(double seconds, batch_fn fn) {
  raw_phase(true);
  double rate = measure(seconds, fn);
  raw_phase(false);
  return rate;
}

static bool selected(const char *name, char **prefixes, int n) {
  if (n == 0) return true;
  for (int i = 0; i < n; i++)
    if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
  return false;
}

/* ours beside raw, 5 interleaved rounds, medians and the median ratio. */
static void compare(const char *name, const char *unit, double seconds, batch_fn ours,
                    batch_fn raw) {
  enum { ROUNDS = 5 };
  double o[ROUNDS], w[ROUNDS], q[ROUNDS];
  for (int k = 0; k < ROUNDS; k++) {
    if (k % 2 == 0) {
      o[k] = measure(seconds, ours);
      w[k] = measure_raw(seconds, raw);
    } else {
      w[k] = measure_raw(seconds, raw);
      o[k] = measure(seconds, ours);
    }
    q[k] = o[k] / w[k];
    fprintf(stderr, "# %s round %d/%d: ours %.4g, raw %.4g, ratio %.3f\n", name, k + 1, ROUNDS,
            o[k], w[k], q[k]);
  }
  for (int a = 0; a < ROUNDS; a++) /* sort each (5 values) */
    for (int b = a + 1; b < ROUNDS; b++) {
      double t;
      if (o[b] < o[a]) t = o[a], o[a] = o[b], o[b] = t;
      if (w[b] < w[a]) t = w[a], w[a] = w[b], w[b] = t;
      if (q[b] < q[a]) t = q[a], q[a] = q[b], q[b] = t;
    }
  printf("%s %.0f %s\n%s_raw_mpi %.0f %s\n%s_vs_raw_mpi %.3f ratio\n", name, o[ROUNDS / 2], unit,
         name, w[ROUNDS / 2], unit, name, q[ROUNDS / 2]);
  fflush(stdout);
}

int cluster_bench_run(double seconds, char **prefixes, int nprefixes) {
  ray_static_function_add(&s_noop);
  ray_static_function_add(&s_mib);
  ray_static_class_add(&s_bench_actor);
  g_mib = malloc(MIB);
  if (g_mib == NULL) return 2;
  for (size_t i = 0; i < MIB; i++) g_mib[i] = (unsigned char)(i * 31u);
  ray_config_t cfg;
  if (ray_config_init(&cfg) != 0) return 2;
  cfg.cluster = RAY_CLUSTER_MPI;
  cfg.cluster_serve_in_init = false; /* every rank runs the raw baseline first */
  cfg.cluster_spmd = true;           /* and every rank calls in remote_n_n_actor_calls_async */
  int rc = ray_init(&cfg);
  if (rc != 0) {
    fprintf(stderr, "rustyray_microbenchmark: ray_init in cluster mode: %s\n", ray_err_name(rc));
    free(g_mib);
    return 2;
  }
  int rank = ray_rank();
  g_ranks = ray_num_ranks();
  CHECK(ray_put(g_mib, MIB, &g_mib_ref));
  if (MPI_Comm_dup(MPI_COMM_WORLD, &g_coord) != MPI_SUCCESS) DIE("MPI_Comm_dup", -1);
  raw_start(rank);
  if (rank != 0) {
    /* The runtime serves from ray_init on; this rank joins the phases rank
     * 0 starts, and its baseline's threads end when rank 0 is done
     * measuring, before the collective stop (and MPI with it). */
    while (phase_wait(0) == PHASE_N_N) n_n_phase(rank, seconds);
    raw_stop(rank);
    CHECK(ray_ref_release(g_mib_ref));
    MPI_Comm_free(&g_coord);
    rc = ray_shutdown(); /* collective: after rank 0's */
    free(g_mib);
    return rc == 0 ? 0 : 1;
  }
  fprintf(stderr, "# rustyray %s cluster cases, %d ranks, %.3g s per case\n", ray_version(),
          g_ranks, seconds);
  if (g_ranks < 2) {
    fprintf(stderr, "# the cluster cases need 2 ranks or more (mpirun -np 2)\n");
  } else {
    if (selected("remote_tasks_sync", prefixes, nprefixes))
      compare("remote_tasks_sync", "round_trips/s", seconds, ours_sync, raw_sync);
    if (selected("remote_tasks_async", prefixes, nprefixes)) {
      printf("remote_tasks_async %.0f tasks/s\n", measure(seconds, ours_async));
      fflush(stdout);
    }
    if (selected("remote_get_1mib", prefixes, nprefixes))
      compare("remote_get_1mib", "MiB/s", seconds, ours_mib, raw_mib);
    if (selected("remote_1_1_actor_calls_sync", prefixes, nprefixes)) {
      g_actor = actor_on(1);
      compare("remote_1_1_actor_calls_sync", "round_trips/s", seconds, ours_actor_sync, raw_sync);
      CHECK(ray_actor_release(g_actor));
    }
    if (selected("remote_n_n_actor_calls_async", prefixes, nprefixes)) {
      (void)phase_wait(PHASE_N_N);
      n_n_phase(rank, seconds);
    }
  }
  (void)phase_wait(PHASE_END);
  raw_stop(rank);
  MPI_Comm_free(&g_coord);
  CHECK(ray_ref_release(g_mib_ref));
  ray_stats_t st;
  CHECK(ray_stats(&st));
  fprintf(stderr, "# rank 0 sent %llu remote tasks, %llu bytes; received %llu bytes\n",
          (unsigned long long)st.remote_tasks_sent, (unsigned long long)st.remote_bytes_sent,
          (unsigned long long)st.remote_bytes_received);
  rc = ray_shutdown();
  free(g_mib);
  return rc == 0 ? 0 : 1;
}
