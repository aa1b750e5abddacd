/* transport.h - how the ranks of a cluster reach each other: one
 * communication thread per rank that makes every call into the transport
 * (MPI: transport_mpi.c; a library built without MPI links
 * transport_none.c, which refuses to start). cluster.c, above it, knows
 * the messages; this layer only moves bytes between ranks, in order
 * between any two of them (MPI does not overtake on one tag and
 * communicator), and never calls up. See docs/adr/ADR-006-cluster-mpi.md. */
#ifndef RAY_TRANSPORT_H
#define RAY_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ray__transport_s ray__transport_t;

/* A message arrived from rank `src` (on the communication thread). `data`
 * is a ray__malloc block: return true to keep it (the callee frees it with
 * ray__free when done), false to let the transport free it after the call.
 * Small messages sent to one rank together arrive as one batch, handed
 * over part by part, in order; a part lies inside the batch's block and is
 * never the callee's to keep (the return is ignored): the cluster keeps
 * none. */
typedef bool (*ray__transport_recv_fn)(void *arg, int src, void *data, size_t len);
/* Before a message of `len` bytes from `src` is received (on the
 * communication thread): where it should go, or NULL for a block of the
 * transport's. A message received into the caller's memory is still handed
 * to on_recv (data is that memory), which never frees it: the transport
 * ignores the return then. */
typedef void *(*ray__transport_place_fn)(void *arg, int src, size_t len);
/* MPI reported an error on a message to or from `rank` (on the
 * communication thread, once per rank): with no fault tolerance in Open
 * MPI 4.1, the peer is taken as lost (ADR-006's fail-stop model). */
typedef void (*ray__transport_lost_fn)(void *arg, int rank);
/* Run once on the communication thread after the transport started, before
 * ray__transport_start returns: the place for collectives
 * (ray__transport_allgather, ray__transport_bcast), which every rank makes
 * in the same order. A non-zero return fails the start with that code. */
typedef int (*ray__transport_setup_fn)(void *arg, ray__transport_t *tr);
/* Run at every turn of the communication thread's loop, before it posts
 * what is queued (the caller's own work for that thread: packing and
 * queueing messages). Returns whether it did anything (traffic: the
 * thread keeps looking instead of sleeping). */
typedef bool (*ray__transport_tick_fn)(void *arg);

typedef struct ray__transport_opts_s {
  void *mpi_comm;   /* the host's MPI_Comm *, or NULL: MPI_COMM_WORLD */
  uint32_t spin_us; /* keep looking this long after the last message */
  uint32_t poll_us; /* then look this often */
  ray__transport_recv_fn on_recv;
  ray__transport_setup_fn on_setup;
  ray__transport_tick_fn on_tick;   /* may be NULL */
  ray__transport_place_fn on_place; /* may be NULL */
  ray__transport_lost_fn on_lost;   /* may be NULL */
  void *arg;                        /* for all five */
} ray__transport_opts_t;

/* Start the communication thread (initialising MPI there when the host has
 * not), run on_setup on it, and return. Errors: RAY_ENOTSUP (no transport
 * in this build; MPI without the thread support we need), RAY_EIO (the
 * transport failed to start), RAY_ENOMEM, or on_setup's code. On failure
 * nothing is left running (MPI is finalised again if we initialised it). */
int ray__transport_start(const ray__transport_opts_t *opts, ray__transport_t **out);
/* Wake the communication thread (work for its on_tick was queued). Any
 * thread, any time before ray__transport_stop; takes only a leaf mutex. */
void ray__transport_wake(ray__transport_t *tr);
/* This rank, and the number of ranks. */
int ray__transport_rank(const ray__transport_t *tr);
int ray__transport_size(const ray__transport_t *tr);
/* Queue `len` bytes for rank `dest`; the transport takes `data` (a block
 * from ray__malloc) in every case and frees it once sent. Any thread, any
 * time before ray__transport_stop; never blocks on the network. Errors:
 * RAY_EINVAL (dest out of range, or len above INT_MAX: larger messages go
 * in chunks), RAY_ESHUTDOWN (stopping). */
int ray__transport_send(ray__transport_t *tr, int dest, void *data, size_t len);
/* A part of a group (ray__transport_send_group): `len` bytes of the
 * caller's at `data`, sent as they are (no copy); done(arg) runs once MPI
 * is finished with them, or they will not be sent (on the communication
 * thread, or on the caller's when the group is refused). */
typedef struct ray__transport_body_s {
  const void *data;
  size_t len;
  void (*done)(void *arg);
  void *arg;
} ray__transport_body_t;

/* Queue `head` (taken, as ray__transport_send) and then each of `bodies`
 * as messages of their own to rank `dest`, all at once: no other message
 * to `dest` comes between them, so the receiver finds the bodies right
 * after the head. Errors: as ray__transport_send (then every body's done
 * has run). */
int ray__transport_send_group(ray__transport_t *tr, int dest, void *head, size_t len, size_t nbody,
                              const ray__transport_body_t *bodies);
/* Collectives, only from on_setup: every rank's `len` bytes, in rank order
 * into `all` (size * len bytes); `len` bytes from rank `root` into buf on
 * every rank. Errors: RAY_EIO. */
int ray__transport_allgather(ray__transport_t *tr, const void *mine, size_t len, void *all);
int ray__transport_bcast(ray__transport_t *tr, void *buf, size_t len, int root);
/* Stop, collectively: finish sending what is queued, tell every other rank
 * this one ends, and wait until every other rank said the same (at most
 * 60 s), dropping the messages that still arrive meanwhile (on_recv is not
 * called again once this is called); then stop the communication thread
 * (finalising MPI if ray__transport_start initialised it) and free the
 * transport. Every rank must call it, after the exchanges that matter are
 * done (cluster.c's shutdown handshake). */
void ray__transport_stop(ray__transport_t *tr);

#endif /* RAY_TRANSPORT_H */
