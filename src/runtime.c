/* runtime.c - runtime lifecycle and configuration.
 *
 * One runtime per process, published through an atomic pointer (defined
 * with the API guard, guard.c) so the hot paths read it with a plain load.
 * Init and shutdown serialise on one lifecycle mutex. Shutdown order
 * matters:
 *   1. mark stopping (through wait.c, under the blocked-caller count's lock,
 *      so no caller starts to park afterwards);
 *   2. fail every pending object (wakes blocked callers, queues callbacks);
 *   3. join the workers (running jobs finish);
 *   3b. finish every actor: queued calls, owed destructors;
 *   4. wait for blocked callers to leave (ray__wait_blocking_drain);
 *   5. stop the loop (it runs every queued callback first);
 *   6. unpublish, free the store (views keep their entries), free the runtime.
 * This file is the top layer (scripts/layers.txt): it starts and stops
 * every subsystem, and none calls back into it. What it used to hold for
 * them lives below: threads in thread.c, ray_stats and ray__quiesce in
 * stats.c, the blocked-caller count in wait.c.
 * Lock order: lifecycle -> everything else. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "internal.h"
#include "rfree.h"
#include "testing.h"

static uv_once_t lifecycle_once = UV_ONCE_INIT;
static uv_mutex_t lifecycle_mu;
/* Set while this thread holds lifecycle_mu: code the library runs during
 * ray_init/ray_shutdown (an actor destructor, a log handler) that calls
 * either again gets RAY_EBUSY instead of deadlocking on the mutex. */
static _Thread_local bool tls_in_lifecycle;

static void lifecycle_init(void) {
  /* uv_once cannot report failure; glibc's mutex init cannot fail. */
  if (uv_mutex_init(&lifecycle_mu) != 0) abort();
}

/* ---- Configuration ---- */

/* Parse an unsigned decimal environment variable. Returns 0 when unset, 1
 * when parsed into *out, RAY_EINVAL when malformed or outside [min, max]. */
static int env_u64(const char *name, uint64_t min, uint64_t max, uint64_t *out) {
  const char *s = getenv(name);
  if (s == NULL) return 0;
  if (*s < '0' || *s > '9') return RAY_EINVAL;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return RAY_EINVAL;
  *out = v;
  return 1;
}

/* RAY_METRICS_PORT: a port 0..65535, or -1 (any free port) as the config
 * field takes. Returns as env_u64. */
static int env_port(const char *name, int *out) {
  const char *s = getenv(name);
  if (s != NULL && strcmp(s, "-1") == 0) {
    *out = -1;
    return 1;
  }
  uint64_t v;
  int r = env_u64(name, 0, 65535, &v);
  if (r == 1) *out = (int)v;
  return r;
}

/* Whether `dir` is a directory this process can create files in: checked
 * at ray_init so a bad spill_dir fails there, not at the first spill, deep
 * inside some put (ADR-004: the directory must exist; the store never makes
 * it). */
static bool dir_usable(const char *dir) {
  uv_fs_t req;
  bool ok = uv_fs_stat(NULL, &req, dir, NULL) == 0 && S_ISDIR(req.statbuf.st_mode);
  uv_fs_req_cleanup(&req);
  if (ok) {
    ok = uv_fs_access(NULL, &req, dir, W_OK | X_OK, NULL) == 0;
    uv_fs_req_cleanup(&req);
  }
  return ok;
}

static bool is_pow2(unsigned x) {
  return x != 0 && (x & (x - 1)) == 0;
}

enum { MAX_WORKERS = 1024, MAX_SHARDS = 4096, MAX_SPIN_US = 1000000 };

int ray_config_init(ray_config_t *cfg) {
  if (cfg == NULL) return RAY_EINVAL;
  memset(cfg, 0, sizeof *cfg);
  unsigned cpus = uv_available_parallelism();
  cfg->num_workers = cpus == 0 ? 1 : cpus;
  cfg->num_shards = 64;
  cfg->inline_threshold = 1024;
  uint64_t mem = uv_get_total_memory();
  cfg->object_store_memory = mem ? mem / 10 * 3 : (uint64_t)1 << 30;
  cfg->enable_spilling = true;
  cfg->spill_dir = NULL;
  cfg->store_full_timeout_ms = 1000;
  cfg->worker_spin_us = 50;
  cfg->wait_spin_us = 20;
  cfg->host_help = true;
  cfg->cluster = RAY_CLUSTER_NONE;
  cfg->cluster_spin_us = 1000;
  cfg->cluster_poll_us = 200;

  int rc = 0, r;
  uint64_t v;
  if ((r = env_u64("RAY_NUM_WORKERS", 1, MAX_WORKERS, &v)) == 1)
    cfg->num_workers = (unsigned)v;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_NUM_SHARDS", 1, MAX_SHARDS, &v)) == 1 && is_pow2((unsigned)v))
    cfg->num_shards = (unsigned)v;
  else if (r != 0)
    rc = RAY_EINVAL;
  if ((r = env_u64("RAY_INLINE_THRESHOLD", 0, (uint64_t)1 << 20, &v)) == 1)
    cfg->inline_threshold = (size_t)v;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_OBJECT_STORE_MEMORY", 1, INT64_MAX, &v)) == 1)
    cfg->object_store_memory = v;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_ENABLE_SPILLING", 0, 1, &v)) == 1)
    cfg->enable_spilling = v == 1;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_STORE_FULL_TIMEOUT_MS", 0, INT64_MAX, &v)) == 1)
    cfg->store_full_timeout_ms = (int64_t)v;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_WORKER_SPIN_US", 0, MAX_SPIN_US, &v)) == 1)
    cfg->worker_spin_us = (uint32_t)v;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_WAIT_SPIN_US", 0, MAX_SPIN_US, &v)) == 1)
    cfg->wait_spin_us = (uint32_t)v;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_HOST_HELP", 0, 1, &v)) == 1)
    cfg->host_help = v == 1;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_CLUSTER_SPIN_US", 0, MAX_SPIN_US, &v)) == 1)
    cfg->cluster_spin_us = (uint32_t)v;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_CLUSTER_POLL_US", 1, MAX_SPIN_US, &v)) == 1)
    cfg->cluster_poll_us = (uint32_t)v;
  else if (r < 0)
    rc = r;
  const char *cluster = getenv("RAY_CLUSTER");
  if (cluster != NULL && *cluster != '\0') {
    /* A program run as an MPI job by the environment alone has not been
     * written for ranks: the others serve inside ray_init. */
    if (strcmp(cluster, "mpi") == 0)
      cfg->cluster = RAY_CLUSTER_MPI, cfg->cluster_serve_in_init = true;
    else if (strcmp(cluster, "none") == 0)
      cfg->cluster = RAY_CLUSTER_NONE, cfg->cluster_serve_in_init = false;
    else
      rc = RAY_EINVAL;
  }
  if ((r = env_u64("RAY_CLUSTER_SERVE_IN_INIT", 0, 1, &v)) == 1)
    cfg->cluster_serve_in_init = v == 1;
  else if (r < 0)
    rc = r;
  if ((r = env_u64("RAY_CLUSTER_SPMD", 0, 1, &v)) == 1)
    cfg->cluster_spmd = v == 1;
  else if (r < 0)
    rc = r;
  const char *dir = getenv("RAY_SPILL_DIR");
  if (dir != NULL && *dir != '\0') cfg->spill_dir = dir;
  const char *tl = getenv("RAY_TIMELINE");
  if (tl != NULL && *tl != '\0') {
    cfg->timeline = true;
    cfg->timeline_path = tl;
  }
  if ((r = env_port("RAY_METRICS_PORT", &cfg->metrics_port)) < 0) rc = r;
  const char *bind = getenv("RAY_METRICS_BIND");
  if (bind != NULL && *bind != '\0') cfg->metrics_bind = bind;
  return rc;
}

static int config_check(const ray_config_t *cfg) {
  if (cfg->num_workers == 0 || cfg->num_workers > MAX_WORKERS) return RAY_EINVAL;
  if (!is_pow2(cfg->num_shards) || cfg->num_shards > MAX_SHARDS) return RAY_EINVAL;
  if (cfg->inline_threshold > ((size_t)1 << 20)) return RAY_EINVAL;
  if (cfg->object_store_memory == 0 || cfg->object_store_memory > (uint64_t)INT64_MAX)
    return RAY_EINVAL;
  if (cfg->store_full_timeout_ms < 0) return RAY_EINVAL;
  if (cfg->spill_dir != NULL && *cfg->spill_dir == '\0') return RAY_EINVAL;
  if (cfg->enable_spilling && cfg->spill_dir != NULL && !dir_usable(cfg->spill_dir))
    return RAY_EINVAL;
  if (cfg->metrics_port < -1 || cfg->metrics_port > 65535) return RAY_EINVAL;
  struct sockaddr_in addr;
  if (cfg->metrics_bind != NULL &&
      (strlen(cfg->metrics_bind) >= 64 || uv_ip4_addr(cfg->metrics_bind, 0, &addr) != 0))
    return RAY_EINVAL;
  if (cfg->timeline_path != NULL && *cfg->timeline_path == '\0') return RAY_EINVAL;
  if (cfg->worker_spin_us > MAX_SPIN_US || cfg->wait_spin_us > MAX_SPIN_US) return RAY_EINVAL;
  if (cfg->cluster != RAY_CLUSTER_NONE && cfg->cluster != RAY_CLUSTER_MPI) return RAY_EINVAL;
  if (cfg->cluster_spin_us > MAX_SPIN_US || cfg->cluster_poll_us == 0 ||
      cfg->cluster_poll_us > MAX_SPIN_US)
    return RAY_EINVAL;
  return 0;
}

/* ---- Lifecycle ---- */

/* The rank the MPI launcher gave this process (Open MPI, PMIx, PMI, Slurm
 * set one of these before MPI starts), or 0: the metrics endpoint of a
 * cluster listens on metrics_port + rank, chosen before MPI is up. */
static int launcher_rank(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK",
                                     "SLURM_PROCID"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    char *end;
    long r = v != NULL ? strtol(v, &end, 10) : -1;
    if (v != NULL && *v != '\0' && *end == '\0' && r >= 0 && r < 65536) return (int)r;
  }
  return 0;
}

/* The store's hold on the actor handles inside values (store.h): the actor
 * layer's handle references, as a task's actor arguments use them. */
static int hold_actor(void *arg, uint64_t id) {
  ray__runtime_t *rt = arg;
  return rt->actors.handle_ops->retain(rt, id);
}

static void unhold_actor(void *arg, uint64_t id) {
  ray__runtime_t *rt = arg;
  rt->actors.handle_ops->release(rt, id);
}

int ray_init(const ray_config_t *cfg) {
  ray_config_t defaults;
  if (cfg == NULL) {
    if (ray_config_init(&defaults) != 0) return RAY_EINVAL;
    cfg = &defaults;
  }
  /* Not from the library's threads, nor from code it runs on a host thread
   * inside a call (a task the host runs while it waits, a callback). */
  if (ray__thread_role != RAY__ROLE_HOST || tls_in_lifecycle || ray__api_inside() ||
      ray__log_in_handler())
    return RAY_EBUSY;
  uv_once(&lifecycle_once, lifecycle_init);
  ray__guard_setup();
  uv_mutex_lock(&lifecycle_mu);
  tls_in_lifecycle = true;
  int rc;
  if (ray__rt() != NULL) {
    rc = RAY_EALREADY;
    goto out;
  }
  if ((rc = config_check(cfg)) != 0) goto out;
  ray__runtime_t *rt = ray__calloc(1, sizeof *rt);
  if (rt == NULL) {
    rc = RAY_ENOMEM;
    goto out;
  }
  rt->cfg = *cfg;
  atomic_init(&rt->rank, 0);
  atomic_init(&rt->nranks, 1);
  atomic_init(&rt->remote_fn_ops, NULL);
  atomic_init(&rt->place_any, NULL);
  atomic_init(&rt->stopping, false);
  atomic_init(&rt->remote_tasks_sent, 0);
  atomic_init(&rt->remote_tasks_received, 0);
  atomic_init(&rt->remote_bytes_sent, 0);
  atomic_init(&rt->remote_bytes_received, 0);
  atomic_init(&rt->quiet_waiters, 0);
  ray__counter_init(&rt->tasks_submitted);
  ray__counter_init(&rt->tasks_finished);
  if (uv_mutex_init(&rt->quiet_mu) != 0) {
    ray__free(rt);
    rc = RAY_ENOMEM;
    goto out;
  }
  if (uv_cond_init(&rt->quiet_cv) != 0) {
    uv_mutex_destroy(&rt->quiet_mu);
    ray__free(rt);
    rc = RAY_ENOMEM;
    goto out;
  }
  rt->record_runs = cfg->timeline || cfg->metrics_port != 0;
  /* Not while runs are recorded: the timeline and the metrics keep their
   * records per worker, and a run on a host thread would be missing. */
  rt->run_producer = cfg->host_help && !rt->record_runs ? ray__task_run_producer : NULL;
  if (cfg->timeline_path != NULL && (rt->timeline_path = ray__strdup(cfg->timeline_path)) == NULL) {
    uv_cond_destroy(&rt->quiet_cv);
    uv_mutex_destroy(&rt->quiet_mu);
    ray__free(rt);
    rc = RAY_ENOMEM;
    goto out;
  }
  rt->cfg.timeline_path = rt->timeline_path;
  rt->cfg.metrics_bind = NULL; /* the caller's string; the endpoint keeps a copy */
  rt->cfg.spill_dir = NULL;    /* the caller's string: the store keeps its own copy */
  ray__store_opts_t so = {.capacity = cfg->object_store_memory,
                          .spill_enabled = cfg->enable_spilling,
                          .spill_dir = cfg->spill_dir,
                          .full_timeout_ms = cfg->store_full_timeout_ms};
  if ((rc = ray__store_init(&rt->store, cfg->num_shards, cfg->inline_threshold, &so)) != 0)
    goto fail_rt;
  if ((rc = ray__spiller_start(&rt->store)) != 0) goto fail_store;
  if ((rc = ray__function_registry_init(&rt->funcs)) != 0) goto fail_spiller;
  if ((rc = ray__actors_init(&rt->actors)) != 0) goto fail_funcs;
  rt->store.actor_hold = (ray__actor_hold_t){hold_actor, unhold_actor, rt};
  if ((rc = ray__loop_start(&rt->loop)) != 0) goto fail_actors;
  /* The timeline owns each worker's record; the scheduler only holds it. */
  static const ray__worker_rec_ops_t rec_ops = {ray__timeline_obs_new, ray__timeline_obs_free};
  if ((rc = ray__sched_start(&rt->sched, cfg->num_workers, (uint64_t)cfg->worker_spin_us * 1000u,
                             &rec_ops)) != 0)
    goto fail_loop;
  atomic_store_explicit(&ray__runtime_ptr, rt, memory_order_release);
  if (cfg->metrics_port != 0) {
    /* A cluster's ranks may share a host: each its own port. */
    int port = cfg->metrics_port;
    if (port > 0 && cfg->cluster == RAY_CLUSTER_MPI) port += launcher_rank();
    rc = port > 65535
             ? RAY_EINVAL
             : ray__metrics_start(&rt->metrics, &rt->loop, port,
                                  cfg->metrics_bind != NULL ? cfg->metrics_bind : "127.0.0.1");
    rt->metrics_on = rc == 0;
    if (rc != 0) { /* the runtime is up: take it down again */
      tls_in_lifecycle = false;
      uv_mutex_unlock(&lifecycle_mu);
      ray_shutdown();
      return rc;
    }
  }
  /* Cluster mode last: every rank's functions are registered by then, and
   * the start checks they are the same everywhere. */
  if ((rc = ray__function_add_statics()) != 0 ||
      (cfg->cluster == RAY_CLUSTER_MPI && (rc = ray__cluster_start(rt)) != 0)) {
    tls_in_lifecycle = false; /* the runtime is up: take it down again */
    uv_mutex_unlock(&lifecycle_mu);
    ray_shutdown();
    return rc;
  }
  goto out;

fail_loop:
  ray__loop_stop(&rt->loop);
fail_actors:
  ray__actors_destroy(&rt->actors);
fail_funcs:
  ray__function_registry_destroy(&rt->funcs);
fail_spiller:
  ray__spiller_stop(&rt->store);
fail_store:
  ray__store_destroy(&rt->store);
fail_rt:
  ray__free(rt->timeline_path);
  uv_cond_destroy(&rt->quiet_cv);
  uv_mutex_destroy(&rt->quiet_mu);
  ray__free(rt);
out:
  tls_in_lifecycle = false;
  uv_mutex_unlock(&lifecycle_mu);
  if (rc == 0) /* logged with no lock held: a log handler may call into the library */
    ray__log(RAY_LOG_INFO,
             "runtime started: %u workers, %u shards, %llu bytes of object store, rank %d of %d",
             cfg->num_workers, cfg->num_shards, (unsigned long long)cfg->object_store_memory,
             ray_rank(), ray_num_ranks());
  if (rc == 0 && cfg->cluster == RAY_CLUSTER_MPI && cfg->cluster_serve_in_init &&
      !cfg->cluster_spmd && ray_rank() != 0) {
    /* ray_config_t.cluster_serve_in_init: this rank never returns to a
     * program written for one process. */
    ray__log(RAY_LOG_INFO, "rank %d serves inside ray_init until the driver shuts down",
             ray_rank());
    exit(ray_serve() == 0 ? 0 : 1);
  }
  return rc;
}

int ray_shutdown(void) {
  /* Not from the library's own threads, from code it runs during init or
   * shutdown, or from a callback inside a public call on this thread (the
   * call would return into a freed runtime). */
  if (ray__thread_role != RAY__ROLE_HOST || tls_in_lifecycle || ray__api_inside() ||
      ray__log_in_handler())
    return RAY_EBUSY;
  /* Every rank a driver: done here; serve the others until all are. */
  (void)ray__cluster_spmd_done();
  uv_once(&lifecycle_once, lifecycle_init);
  uv_mutex_lock(&lifecycle_mu);
  ray__runtime_t *rt = ray__rt();
  if (rt == NULL) {
    uv_mutex_unlock(&lifecycle_mu);
    return RAY_ENOTINIT;
  }
  if (!ray__cluster_may_stop(rt)) { /* another rank than the driver: ray_serve */
    uv_mutex_unlock(&lifecycle_mu);
    return RAY_EBUSY;
  }
  tls_in_lifecycle = true;
  ray__cluster_close(rt);      /* no task from another rank reaches the runtime any more */
  ray__wait_blocking_stop(rt); /* sets `stopping`: from here on no caller starts to park */
  ray__mem_stop(&rt->store);   /* puts waiting for memory give up */
  ray__store_fail_all_pending(&rt->store, RAY_ESHUTDOWN);
  /* A call on another thread that passed its `stopping` check before the
   * flag was set may still queue work: wait for it to leave (guard.c)
   * before the queues are drained and freed. Workers are joined next. */
  ray__guard_close();
  ray__sched_join(&rt->sched);
  ray__actors_shutdown(rt);
  /* Every local task has ended: stop the other ranks (rank 0) or confirm
   * (the others), while the store can still take their last answers. */
  ray__cluster_stop(rt);
  int tl_rc = 0;
  if (rt->cfg.timeline && rt->timeline_path != NULL)
    tl_rc = ray__timeline_write(rt, rt->timeline_path);
  ray__sched_free(&rt->sched);
  ray__hook(RAY__AT_SCHED_FREED, NULL);
  ray__wait_blocking_drain(); /* failed above: they are on their way out */
  ray__loop_stop(&rt->loop);
  /* Unpublish, then wait for every thread still inside a public call to
   * leave it (guard.c): a call that races with shutdown gets RAY_ENOTINIT
   * from here on, or finished on a live runtime. */
  atomic_store(&ray__runtime_ptr, NULL);
  ray__guard_drain();
  unsigned long long spilled = atomic_load(&rt->store.spill_count);
  unsigned long long restored = atomic_load(&rt->store.restore_count);
  ray__spiller_stop(&rt->store);
  ray__store_destroy(&rt->store);
  ray__function_registry_destroy(&rt->funcs);
  ray__actors_destroy(&rt->actors);
  char *tl_path = rt->timeline_path;
  uv_cond_destroy(&rt->quiet_cv);
  uv_mutex_destroy(&rt->quiet_mu);
  ray__free(rt);
  ray__rfree_drain_all(); /* entries freed into other threads' inboxes (rfree.h) */
  ray__rfree_trim();      /* and this thread's cache of entry headers */
  tls_in_lifecycle = false;
  uv_mutex_unlock(&lifecycle_mu);
  /* Logged with no lock held: a log handler may call into the library. */
  if (tl_rc != 0)
    ray__log(RAY_LOG_ERROR, "cannot write the timeline to %s: %s", tl_path, ray_err_name(tl_rc));
  ray__free(tl_path);
  ray__log(RAY_LOG_INFO, "runtime stopped: %llu objects spilled, %llu restored", spilled, restored);
  return 0;
}

int ray_serve(void) {
  if (ray__thread_role != RAY__ROLE_HOST || tls_in_lifecycle || ray__api_inside() ||
      ray__log_in_handler())
    return RAY_EBUSY;
  int rc = ray__cluster_serve_wait(); /* SPMD: at once (ray_shutdown waits for every rank) */
  if (rc != 0) return rc;
  rc = ray_shutdown();
  return rc == RAY_ENOTINIT ? 0 : rc; /* another thread of ours stopped it: served all the same */
}

/* ray__runtime_worker_post: a plain function as a runnable. */
typedef struct posted_s {
  ray__runnable_t rn;
  void (*fn)(void *arg);
  void *arg;
} posted_t;

static void posted_run(ray__runnable_t *r) {
  posted_t *p = (posted_t *)r;
  p->fn(p->arg);
  ray__free(p);
}

static void posted_drop(ray__runnable_t *r) {
  ray__free(r);
}

int ray__runtime_worker_post(void (*fn)(void *arg), void *arg) {
  if (fn == NULL) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  if (atomic_load(&rt->stopping)) return RAY_ESHUTDOWN;
  posted_t *p = ray__malloc(sizeof *p);
  if (p == NULL) return RAY_ENOMEM;
  p->rn.run = posted_run;
  p->rn.drop = posted_drop;
  p->fn = fn;
  p->arg = arg;
  ray__sched_push(&rt->sched, &p->rn);
  return 0;
}

void ray_free(void *ptr) {
  ray__free(ptr);
}
