/* rustyray/runtime.h - runtime lifecycle, configuration and statistics.
 *
 * One runtime per process. ray_init() starts it: a libuv event loop on its own
 * thread, a pool of worker threads and a sharded object store. ray_shutdown()
 * stops it: everything still pending fails with RAY_ESHUTDOWN, every waiter
 * wakes, every thread is joined and every byte is freed. The runtime can be
 * started again after a shutdown.
 *
 * Every other call that needs the runtime returns RAY_ENOTINIT before
 * ray_init() and after ray_shutdown(). */
#ifndef RUSTYRAY_RUNTIME_H
#define RUSTYRAY_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the runtime runs (ray_config_t.cluster). */
enum {
  RAY_CLUSTER_NONE = 0, /* one process (the default) */
  RAY_CLUSTER_MPI = 1   /* every rank of an MPI job (docs/cluster.md) */
};

/* Runtime configuration. Always fill it with ray_config_init() first, then
 * change the fields you care about: fields may be added in later versions. */
typedef struct ray_config_s {
  /* Worker threads. Default: the number of CPUs. Env: RAY_NUM_WORKERS. */
  unsigned num_workers;
  /* Object store shards; a power of two from 1 to 4096. Default 64.
   * Env: RAY_NUM_SHARDS. */
  unsigned num_shards;
  /* Payloads up to this many bytes live inside the store entry itself (one
   * allocation, never spilled). Default 1024. Env: RAY_INLINE_THRESHOLD. */
  size_t inline_threshold;
  /* Bytes of payload the store may hold in memory; the total in memory never
   * exceeds it. Default: 30% of the machine's memory, as Ray's.
   * Env: RAY_OBJECT_STORE_MEMORY. */
  uint64_t object_store_memory;
  /* When a put would cross object_store_memory, spill ready objects nobody
   * is reading to disk, least recently used first (copies of other ranks'
   * objects are evicted before, spilling on or off). Default true.
   * Env: RAY_ENABLE_SPILLING (0 or 1). */
  bool enable_spilling;
  /* Directory for spill files: an existing directory this process can
   * write to, checked by ray_init when spilling is on (RAY_EINVAL if not;
   * never created for you); its files are removed, the directory kept.
   * NULL (default): a fresh directory under the system temp dir, made at
   * the first spill and removed at shutdown. Env: RAY_SPILL_DIR. */
  const char *spill_dir;
  /* How long a put waits for memory when nothing can be spilled, before it
   * fails with RAY_ESTOREFULL: 0 fails at once; any positive value waits
   * that long (up to INT64_MAX: past about 292 years it means forever, it
   * never wraps). Negative is RAY_EINVAL. Default 1000.
   * Env: RAY_STORE_FULL_TIMEOUT_MS. */
  int64_t store_full_timeout_ms;
  /* Record a timeline span per task, actor call and actor creation (see
   * ray_timeline_dump). Default false. Env: RAY_TIMELINE=path turns it on
   * and sets timeline_path. */
  bool timeline;
  /* When set (and timeline is on), the timeline is written here at
   * shutdown. Copied at ray_init. */
  const char *timeline_path;
  /* Serve GET /metrics (Prometheus text) on this TCP port from the
   * runtime's loop (in cluster mode, on this port + the rank the MPI
   * launcher gave the process, so ranks on one host do not collide; above
   * 65535 is RAY_EINVAL): 0 (default) off, -1 any free port (see
   * ray_metrics_port). Env: RAY_METRICS_PORT (0..65535, or -1). One request
   * per connection; a malformed request gets a 4xx and a close; at most 64
   * connections are open (a new one evicts the oldest still sending its
   * request) and a request must arrive within 5 s (docs/api.md, section 9). */
  int metrics_port;
  /* The address it listens on. Default (NULL) "127.0.0.1": loopback only,
   * never another interface unless the host sets one. Env: RAY_METRICS_BIND. */
  const char *metrics_bind;
  /* How long an idle worker keeps looking for work before it parks, in
   * microseconds: longer catches the next task without a wake-up through
   * the kernel, shorter gives an idle CPU back sooner (after it, an idle
   * runtime uses no CPU). 0 to 1,000,000; default 50.
   * Env: RAY_WORKER_SPIN_US. */
  uint32_t worker_spin_us;
  /* How long ray_get/ray_wait spin on a pending object before parking, in
   * microseconds (a hand-off from another core is often quicker than a
   * sleep and wake). 0 to 1,000,000; default 20. Env: RAY_WAIT_SPIN_US. */
  uint32_t wait_spin_us;
  /* A host thread (one of yours) blocked with no timeout in ray_get,
   * ray_get_batch or ray_wait (waiting for all of its refs) runs the task
   * that produces an object it waits for, if that task is still queued
   * when it looks, instead of waiting for a worker to take it (as TBB's
   * wait runs work): a remote function's task, or an actor's method call
   * that the actor has admitted (its turn in the actor's order has come;
   * the actor's next call then goes to the workers). That task runs on
   * your thread, on its stack. Only those producers (whatever they need,
   * your wait needed anyway, so no new deadlock), never other work, never
   * an actor's constructor; not for a ray_wait that needs fewer than all
   * of its refs (it could end without that producer), not with a timeout
   * (a run could overshoot it), nor while the timeline or the metrics
   * endpoint records runs. From such a task ray_init and ray_shutdown
   * return RAY_EBUSY, as from a worker. Default true. Env: RAY_HOST_HELP
   * (0 or 1). */
  bool host_help;
  /* RAY_CLUSTER_NONE (default) or RAY_CLUSTER_MPI: run one program across
   * the ranks of an MPI job (launched with mpirun or srun; every rank calls
   * ray_init, rank 0 is the driver, the others call ray_serve, or serve
   * inside ray_init: cluster_serve_in_init). A library built without MPI
   * (RAY_WITH_MPI off) refuses RAY_CLUSTER_MPI with RAY_ENOTSUP. Env:
   * RAY_CLUSTER (none or mpi; mpi also sets cluster_serve_in_init). See
   * docs/cluster.md. */
  int cluster;
  /* Cluster mode on an MPI the host initialised itself (with
   * MPI_THREAD_MULTIPLE): a pointer to the MPI_Comm to run on (duplicated:
   * our messages never meet the host's). NULL (default): MPI_COMM_WORLD.
   * Ignored when the library initialises MPI. */
  void *mpi_comm;
  /* The communication thread of cluster mode: how long it keeps looking for
   * traffic after the last message before it sleeps, yielding its core at
   * every look (µs, 0 to 1,000,000; default 1000: longer than a round trip
   * to another rank, so a conversation never waits for a sleeper; Env:
   * RAY_CLUSTER_SPIN_US), and how often it looks while it sleeps (MPI has
   * no wake-up event for arriving messages: µs, 1 to 1,000,000; default
   * 200; Env: RAY_CLUSTER_POLL_US). */
  uint32_t cluster_spin_us;
  uint32_t cluster_poll_us;
  /* Cluster mode: on ranks other than 0, ray_init does not return. Once
   * the runtime is up it serves (as ray_serve) until the driver shuts down,
   * then ends the process with exit(0) (exit(1) if this rank's shutdown
   * failed), so a program written for one process runs unchanged as an MPI
   * job: its code after ray_init runs on rank 0 only. Functions must then
   * be registered before ray_init (ray_static_function_add, or the typed
   * layer's RAY_FUNCTION), since the other ranks never get past it. Default
   * false; RAY_CLUSTER=mpi in the environment sets it true (a program that
   * handles its ranks itself sets it back to false). Env:
   * RAY_CLUSTER_SERVE_IN_INIT (0 or 1), applied after RAY_CLUSTER. */
  bool cluster_serve_in_init;
  /* Cluster mode, every rank a driver (SPMD, as MPI programs are often
   * written): ray_init returns on every rank (cluster_serve_in_init is
   * ignored), each rank runs its own program and places work on any rank
   * (tasks, and actors through ray_actor_opts_t.node), and ray_shutdown is
   * collective: each rank's call says it is done and keeps serving the
   * others until every rank has called it (a rank taken as lost counts as
   * done), then all stop together. ray_serve on a rank other than 0 is the
   * same as ray_shutdown. Default false. Env: RAY_CLUSTER_SPMD (0 or 1). */
  bool cluster_spmd;
} ray_config_t;

/* Fill `cfg` with the defaults, then apply the RAY_* environment variables
 * that are set (RAY_NUM_WORKERS, RAY_NUM_SHARDS, RAY_INLINE_THRESHOLD,
 * RAY_OBJECT_STORE_MEMORY, RAY_ENABLE_SPILLING, RAY_SPILL_DIR,
 * RAY_STORE_FULL_TIMEOUT_MS, RAY_TIMELINE, RAY_METRICS_PORT,
 * RAY_METRICS_BIND, RAY_WORKER_SPIN_US, RAY_WAIT_SPIN_US, RAY_HOST_HELP,
 * RAY_CLUSTER, RAY_CLUSTER_SPIN_US, RAY_CLUSTER_POLL_US,
 * RAY_CLUSTER_SERVE_IN_INIT, RAY_CLUSTER_SPMD).
 * Does not need the runtime.
 * Numbers are plain decimal; each variable takes the values its field does
 * (RAY_OBJECT_STORE_MEMORY up to INT64_MAX, RAY_METRICS_PORT -1 too).
 * Errors: RAY_EINVAL when cfg is NULL or an environment variable is not a
 * valid value (cfg then holds the defaults for that field and every valid
 * variable applied). Never blocks; thread-safe. */
RAY_EXTERN int ray_config_init(ray_config_t *cfg);

/* Start the runtime with `cfg` (NULL: ray_config_init() defaults).
 * Errors: RAY_EALREADY (already running), RAY_EINVAL (a field out of range:
 * num_workers 0 or > 1024, num_shards not a power of two in 1..4096,
 * inline_threshold > 1 MiB, object_store_memory 0 or above INT64_MAX,
 * store_full_timeout_ms negative, an empty spill_dir, with spilling on a
 * spill_dir that is not an existing directory this process can create files
 * in, metrics_port below -1 or above 65535,
 * metrics_bind not an IPv4 address, worker_spin_us, wait_spin_us or
 * cluster_spin_us above 1,000,000, cluster_poll_us 0 or above 1,000,000,
 * cluster neither RAY_CLUSTER_NONE nor RAY_CLUSTER_MPI, or a bad environment
 * variable when cfg is NULL; in cluster mode also: the ranks did not
 * register the same functions with the same return types, logged at
 * RAY_LOG_ERROR with the first function that differs, on every rank),
 * RAY_ENOTSUP (RAY_CLUSTER_MPI in a library built without MPI, a
 * host-initialised MPI without MPI_THREAD_MULTIPLE, an MPI that gives
 * less than MPI_THREAD_SERIALIZED, or MPI finalised already: cluster mode
 * starts once per process), RAY_ENOMEM, RAY_EIO (a thread or loop could
 * not be created, or the metrics port could not be bound), RAY_EBUSY (from code the library runs: a
 * task, an actor method, constructor or destructor, a callback, a free function or a log handler).
 * On failure nothing is left running or allocated. Blocks while threads start; thread-safe
 * (concurrent calls: one wins, the others get RAY_EALREADY). In cluster
 * mode with cluster_serve_in_init, on a rank other than 0 a successful
 * ray_init does not return: the process exits when the driver shuts down. */
RAY_EXTERN int ray_init(const ray_config_t *cfg);

/* Stop the runtime: fail every pending object with RAY_ESHUTDOWN (which wakes
 * every blocked ray_get/ray_wait and delivers every pending on_ready callback
 * with that status), join every thread and free the store. Views from
 * ray_get() that are still held stay valid until ray_buf_release().
 * In cluster mode, on rank 0 (the driver), once its own work has ended it
 * stops every other rank (their ray_serve returns) and waits up to 30 s
 * for each to confirm; then every rank finalises MPI together.
 * Errors: RAY_ENOTINIT (not running), RAY_EBUSY (on a rank other than 0 in
 * cluster mode before the driver stopped it: see ray_serve; from the
 * library's own threads, or from code it runs inside a call on this thread: a callback,
 * a free function, an actor destructor the shutdown runs, a log handler;
 * it would free or join under itself). Blocks until the calls other
 * threads are making have left and every thread is joined. Other threads
 * may call into the library meanwhile: a blocked ray_get/ray_wait returns
 * RAY_ESHUTDOWN, and every call either completes on the live runtime or
 * fails with RAY_ESHUTDOWN or RAY_ENOTINIT. */
RAY_EXTERN int ray_shutdown(void);

/* Cluster mode (ray_config_t.cluster): this process's rank, and the
 * number of ranks in the job. 0 and 1 in a single process, and before
 * ray_init. Never blocks; thread-safe. */
RAY_EXTERN int ray_rank(void);
RAY_EXTERN int ray_num_ranks(void);

/* On a rank other than 0 in cluster mode: wait until the driver (rank 0)
 * calls ray_shutdown, then shut this rank's runtime down (as ray_shutdown
 * does; MPI is finalised if ray_init initialised it) and return 0. Work
 * the other ranks send here runs from ray_init on, whether or not a thread
 * waits here; ray_serve is how such a rank ends. Before the driver stops
 * it, ray_shutdown on such a rank returns RAY_EBUSY.
 * Errors: RAY_ENOTINIT, RAY_EINVAL (rank 0, or not in cluster mode),
 * RAY_EBUSY (as ray_shutdown: from the library's own threads or code it
 * runs). Blocks until the driver shuts down (a rank that died ends the
 * whole job: docs/cluster.md); thread-safe. */
RAY_EXTERN int ray_serve(void);

/* Whether the runtime is running. Never blocks; thread-safe. */
RAY_EXTERN bool ray_is_initialized(void);

/* A snapshot of the runtime's counters. */
typedef struct ray_stats_s {
  uint64_t objects;                    /* objects in the store (pending, ready or failed) */
  uint64_t bytes_in_memory;            /* payload bytes held in memory (a payload kept
                                          only by views after its last ref went is not counted) */
  uint64_t objects_created;            /* objects ever created since ray_init */
  uint64_t objects_freed;              /* objects freed since ray_init */
  uint64_t num_workers;                /* worker threads running (spares included) */
  uint64_t num_shards;                 /* store shards */
  uint64_t object_store_memory;        /* the capacity */
  uint64_t bytes_in_memory_high_water; /* most ever reserved in memory (>= used, <= capacity) */
  uint64_t bytes_spilled;              /* payload bytes on disk now */
  uint64_t bytes_spilled_total;        /* payload bytes ever spilled */
  uint64_t spill_count;                /* objects spilled */
  uint64_t restore_count;              /* objects restored from disk */
  uint64_t tasks_submitted;            /* tasks and actor calls submitted */
  uint64_t tasks_finished;             /* of which finished (succeeded or failed) */
  uint64_t tasks_failed;               /* of which failed */
  uint64_t actors_alive;               /* actors created and not yet freed (a killed actor
                                          counts until its last handle is released) */
  /* Cluster mode (0 in a single process): */
  uint64_t remote_tasks_sent;     /* tasks this rank handed to the transport for another rank */
  uint64_t remote_tasks_received; /* tasks other ranks sent that ran (or failed) here */
  uint64_t remote_bytes_sent;     /* bytes of every message this rank queued for others */
  uint64_t remote_bytes_received; /* bytes of every message it received */
  uint64_t evict_count;           /* copies of other ranks' objects evicted from memory (never
                                     spilled: their owners keep the values) */
  uint64_t refetch_count;         /* evicted copies asked of their owners again, by a reader */
} ray_stats_t;

/* Fill `out` with a consistent-per-shard snapshot of the counters.
 * Errors: RAY_EINVAL (out NULL), RAY_ENOTINIT. Takes each shard lock once;
 * never blocks otherwise; thread-safe. */
RAY_EXTERN int ray_stats(ray_stats_t *out);

/* Write the timeline recorded so far as Chrome Trace Event JSON (Perfetto
 * and chrome://tracing open it): one row per worker thread, a span per task
 * ("function"), actor call ("Class.method") and actor creation
 * ("Class.__init__"), with task id and outcome, and flow arrows from each
 * task to the tasks that took its results as ref arguments.
 * Errors: RAY_EINVAL (path NULL or empty, or the timeline is off),
 * RAY_ENOTINIT, RAY_EIO, RAY_ENOMEM. Blocks on file I/O; thread-safe. */
RAY_EXTERN int ray_timeline_dump(const char *path);

/* Render the runtime's counters in Prometheus text exposition format
 * (rustyray_tasks_finished_total, rustyray_object_store_bytes, the task
 * run-time histogram rustyray_task_run_seconds, ...) into buf (at most len
 * bytes with the NUL, snprintf rules). Returns the length the full text
 * needs (without the NUL), or RAY_EINVAL (buf NULL with len > 0),
 * RAY_ENOTINIT. The histogram fills when metrics_port or the timeline is
 * on. Never blocks; thread-safe. */
RAY_EXTERN int ray_metrics_text(char *buf, size_t len);

/* The port the metrics endpoint listens on, or RAY_ENOTINIT / RAY_EINVAL
 * (no endpoint). */
RAY_EXTERN int ray_metrics_port(void);

/* Free memory the library allocated for the caller (ray_get_str's string).
 * NULL is a no-op. Does not need the runtime. */
RAY_EXTERN void ray_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* RUSTYRAY_RUNTIME_H */
