/* cluster.h - cluster mode (ADR-006): one program across the ranks of an
 * MPI job. cluster.c knows the messages between ranks and turns them into
 * the runtime's ordinary steps (submitting a task, completing or failing
 * an entry); transport.h moves the bytes. It sits above the store, the
 * scheduler and the tasks, below the lifecycle (runtime.c). */
#ifndef RAY_CLUSTER_H
#define RAY_CLUSTER_H

#include <stdbool.h>

struct ray__runtime_s;
typedef struct ray__cluster_s ray__cluster_t;

/* Start cluster mode for `rt` (rt->cfg.cluster == RAY_CLUSTER_MPI), its
 * functions registered: start the transport, check that every rank
 * registered the same functions (a collective), and set rt->rank,
 * rt->nranks, rt->remote_fn_ops and rt->cluster. Errors: as
 * ray__transport_start; RAY_EINVAL (the registrations differ: logged with
 * the first function that does, on every rank). */
int ray__cluster_start(struct ray__runtime_s *rt);
/* ray_shutdown's first step: refuse TASKs from here on, and wait for one
 * being submitted now. No-op in a single process. */
void ray__cluster_close(struct ray__runtime_s *rt);
/* Whether ray_shutdown may stop this rank now: always on rank 0 (and in a
 * single process); on another rank only once the driver asked. */
bool ray__cluster_may_stop(struct ray__runtime_s *rt);
/* ray_shutdown's step, after every local task ended and before the store
 * goes: on rank 0 stop every other rank and wait for each to confirm (at
 * most 30 s); on the others confirm. Then stop the transport (which
 * exchanges END with every rank) and free the state. No-op in a single
 * process. */
void ray__cluster_stop(struct ray__runtime_s *rt);

/* ray_serve's wait: until the driver asks this rank to stop (0 at once
 * when the runtime is stopping already). Errors: RAY_ENOTINIT, RAY_EINVAL
 * (rank 0, or not in cluster mode). */
int ray__cluster_serve_wait(void);

/* ray_shutdown's first step with ray_config_t.cluster_spmd: say this rank
 * is done (to rank 0) and serve on until every rank is (rank 0: until
 * every other rank said so, or was lost; then it stops them all as
 * usual; the others: until rank 0 asks them to stop). Once per runtime; 0
 * at once when not SPMD, not running, or stopping already. */
int ray__cluster_spmd_done(void);

#endif /* RAY_CLUSTER_H */
