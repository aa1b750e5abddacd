/* cluster.c - cluster mode (ADR-006): the messages between ranks, and what
 * each rank does with them, through the runtime's ordinary steps.
 *
 * A function call placed on another rank (ray_task_opts_t.node) is an
 * ordinary task with this file's ops (remote_ops): its dependencies are
 * counted here, at the owner, as any task's; once they resolve, the
 * communication thread runs `send_task` instead of the body: it pins the arguments, packs them
 * with the call into a TASK message, notes the task in the in-flight table
 * and hands the message to the transport. The rank that receives it
 * submits an ordinary local task with the arguments as values and watches
 * its results; when the last one completes, the communication thread packs
 * them (values,
 * or each failure's whole error chain) into a COMPLETE message back to the
 * owner. The owner's communication thread completes or fails the pending
 * result entries with them, so a waiter is woken by the normal completion
 * path, and finishes the task (its argument references go). Retries happen
 * where the task runs; only the outcome travels.
 *
 * A result of PULL_FROM bytes or more stays where it was made (the
 * executor holds a view of it, so it stays in memory: pinned, never
 * spilled): the answer says only its type and size, and the owner pulls
 * it. It reserves the bytes through the store's capacity accounting first
 * (on the communication thread when there is room now; else a worker
 * waits for room, spilling as any reservation does, so that thread never
 * blocks on memory), then asks for the value in chunks of at most
 * pull_chunk bytes (MPI counts are int), which the executor sends straight
 * from its view and the owner receives straight into the new entry (no
 * copy on either side). When every pulled result of the task has landed
 * (or failed), the owner finishes the task and releases the values.
 *
 * Messages (msgpack arrays, the first element the kind):
 *   TASK      [1, task_id, function name, nreturns, max_retries,
 *              retry_on_error, name|nil, [[type, bytes] | [type, size] |
 *              [6, actor id], ...], actor part|nil, handles]
 *              (size: held by the owner, to be pulled)
 *   COMPLETE  [2, task_id, [[true, type, bytes] | [true, type, size] |
 *              [false, code, error], ...], load, handles]   (size: held there, to
 *              be pulled; load: the sender's, for placement; a value naming
 *              refs has a fourth element, true: held there until RELEASE)
 *   SHUTDOWN  [3]                  rank 0 -> every other rank
 *   ACK       [4]                  the answer, the last message a rank sends
 *   CANCEL    [5, task_id]         owner -> the rank running a task it sent
 *   PULL      [6, task_id, slot, offset, len]   reader -> holder (a result's
 *              owner -> its executor; an argument's executor -> its owner)
 *   DATA      [7, task_id, slot, offset, ok]    holder -> reader; when ok,
 *              the len bytes follow as a message of their own (nothing
 *              from that rank comes between)
 *   RELEASE   [8, task_id]         owner -> executor: the held results go
 *   TASK of an actor (ray_actor_opts_t.node: actors on other ranks):
 *             the same with the ninth element [actor_id, seq, method,
 *             max_restarts, max_task_retries, max_concurrency, class,
 *             serial] (serial: the calling stub's life, 0 for its maker's):
 *             method -1 and seq 0 make the actor (the owner's id names it;
 *             the actor here has its own), then calls 1, 2, ... run in that
 *             order (a stream per calling stub's life: they may arrive,
 *             or finish pulling their arguments, in another)
 *   AKILL     [9, actor_id, no_restart]      owner -> home
 *   ADROP     [10, actor_id, ncalls, serial]  stub -> home: its last handle
 *              went; that life ends after that many have run (its
 *              maker's: the actor goes then, unless another life holds it)
 *   ASKIP     [11, actor_id, seq, code, serial]  stub -> home: call seq
 *              failed before it left (the calls after it must not wait)
 *   DONE      [12]                 any rank -> 0 (cluster_spmd): its program
 *              called ray_shutdown; rank 0 stops everyone once all did
 *   NAME      [13, req, op, name, id, home, class]   any -> 0: claim, find or
 *              delete an actor's name in the job's registry (rank 0's)
 *   NAMED     [14, req, code, id, home, class]       0 -> the asker (a
 *              delete is not answered)
 *   BORROWS   [15, borrower, [id, serial, ...], [actor id, serial, home,
 *              ...]]  -> the rank a value came from: proxies and actor
 *              stubs made on `borrower` (forwarded to the owner, the home)
 *   SUB       [16, id]             proxy's rank -> owner: send the value (at
 *              the proxy's first read, and again when its evicted copy is read)
 *   FILL      [17, id, result, handles]  owner -> proxy's rank (a result as in
 *              COMPLETE; a large one pulled with PULL/DATA/RELEASE keyed by
 *              the object's id)
 *   GONE      [18, [id, serial, ...]]   proxy's rank -> owner
 * (Borrowing: see "Borrowing" below.)
 * A rank that finds an actor by name, or receives a handle of it, calls
 * it through a stub of its own (a life, with a serial), on a stream of
 * its own at the home, attached to the owner's actor (made by the owner's
 * stream, or the home's own), its calls numbered from 0.
 * A CANCEL always follows its TASK (both are queued under `mu`, the TASK
 * first), so the running rank knows the task when the CANCEL comes: it
 * cancels its local task as ray_cancel does (not run if still queued; the
 * flag ray_task_is_cancelled reads if running), and the outcome comes back
 * in the COMPLETE as usual.
 * `error` is ray__encode_error's encoding of the whole chain (no cause
 * object: the chain is copied out, as the owner cannot read the
 * executor's objects). Between two ranks messages arrive in the order sent
 * (transport.h), which the shutdown handshake rests on: a rank's ACK comes
 * after every answer it sent rank 0; then every rank's transport stop
 * exchanges END with every other rank, which drains whatever ranks still
 * had in flight between them.
 *
 * Shutdown on every rank starts by closing: a TASK that arrives from then
 * on is refused (RAY_ESHUTDOWN), and the close waits for one being
 * submitted, so nothing reaches the runtime after its queues are drained.
 *
 * Large arguments travel the same way the other way round: the owner holds
 * a view of each and the TASK says only its type and size; the rank that
 * runs the task reserves, pulls them (PULL/DATA) into new objects of its
 * store and submits the task once all landed (or refuses it); the owner
 * lets them go when the task's answer comes. The holds of both kinds are
 * one table, keyed by (peer, task_id): a task id names its owner.
 *
 * Actor handles travel too (see "Actor handles that travel" below): a
 * TASK, COMPLETE or FILL whose values name handles carries their table
 * ([[id, home, class], ...], the TASK's tenth element, the COMPLETE's
 * fifth, the FILL's fourth), and the home counts every stub's life.
 *
 * Threads: send_task, send_results and the pulls run on the communication
 * thread (its tick: sending never waits for a free worker), as does
 * on_recv. A pulled value never makes that thread wait for memory (a
 * reservation without room now goes to a worker); it still reserves on
 * its own when it restores a spilled argument or result before sending
 * it, and when it submits a task whose argument is above inline_threshold
 * or names refs or actor handles (submit.c puts such an argument: those
 * may wait up to store_full_timeout_ms). The in-flight table, the
 * tables of tasks run here for other ranks and of held values, and the
 * shutdown state are under `mu`; the lists of pulls and arrivals and the
 * expected bodies are the communication thread's (a pull that reserves on
 * a worker is that worker's until the tick takes it back: only its entry
 * and error are written there). */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "codec.h"
#include "internal.h"
#include "testing.h"
#include "transport.h"

enum {
  K_TASK = 1,
  K_COMPLETE = 2,
  K_SHUTDOWN = 3,
  K_ACK = 4,
  K_CANCEL = 5,
  K_PULL = 6,
  K_DATA = 7,
  K_RELEASE = 8,
  K_AKILL = 9,    /* [9, actor_id, no_restart] */
  K_ADROP = 10,   /* [10, actor_id, ncalls, serial]: a stub's life ends after ncalls */
  K_ASKIP = 11,   /* [11, actor_id, seq, code, serial]: call seq never left its stub */
  K_DONE = 12,    /* [12]: SPMD, this rank's program called ray_shutdown */
  K_NAME = 13,    /* [13, req, op, name, id, home, class]: to rank 0's registry */
  K_NAMED = 14,   /* [14, req, code, id, home, class]: its answer */
  K_BORROWS = 15, /* [15, borrower, [id, serial, ...], [actor, serial, home, ...]]: made there */
  K_SUB = 16,     /* [16, id]: a proxy asks its owner for the value */
  K_FILL = 17,    /* [17, id, result, handles]: the answer, a result as in COMPLETE */
  K_GONE = 18     /* [18, [id, serial, ...]]: proxies gone */
};
enum { NAME_PUT = 0, NAME_GET = 1, NAME_DEL = 2 };
/* How long a rank waits for rank 0's answer about a name. */
#define NAME_TIMEOUT_NS (30ull * 1000 * 1000 * 1000)
enum { FLIGHT_BUCKETS = 1024, NAME_MAX_LEN = 128 };
/* A result value this large stays where it was made until its owner pulls
 * it; smaller ones travel inside the answer. */
enum { PULL_FROM = 64 * 1024 };
/* The largest chunk a pull asks for (MPI counts are int); a test hook
 * (testing.h) makes it smaller. */
#define PULL_CHUNK_MAX ((size_t)256 << 20)
static atomic_size_t pull_chunk = PULL_CHUNK_MAX;
/* How long rank 0 waits for every other rank to confirm the shutdown. */
#define STOP_TIMEOUT_NS (30ull * 1000 * 1000 * 1000)

/* A task sent to another rank, until its COMPLETE comes back. */
typedef struct flight_s {
  struct flight_s *next;
  uint64_t task_id;
  ray__task_t *t;
} flight_t;

struct exec_s;

struct arrival_s;

/* Pulls that settle together: a task of ours whose answer came, waiting
 * for its large results (t); a task from another rank waiting for its
 * large arguments before it can run here (a); or a proxy's large value
 * (fill). */
typedef struct pend_s {
  ray__task_t *t;
  struct arrival_s *a;
  bool fill;              /* neither: a proxy's value (FILL), task_id its id */
  struct held_s *handles; /* the actor handles its message brought, until all landed */
  uint64_t task_id;       /* the task's, and the key its values are held by */
  int holder;             /* the rank that ran it */
  int left;               /* pulls not settled, + 1 while the answer is read */
  int failed;             /* a result's failure code, for the task's fail_code */
} pend_t;

/* One result landing late: a large one pulled into an entry reserved for
 * it, or a small one (its bytes copied out of the answer) waiting for
 * room. */
typedef struct pull_s {
  ray__runnable_t rn;  /* on a worker while it waits for room; then the tick */
  struct pull_s *next; /* cl->pulls (communication thread) */
  ray__cluster_t *cl;
  pend_t *p;
  uint32_t slot, type;
  uint64_t id;        /* the pending result or proxy entry it completes (0: an argument) */
  uint64_t size, got; /* bytes in all, and landed */
  size_t chunk;       /* the chunk size its PULLs asked for */
  ray__entry_t *e;    /* the reserved entry the chunks land in */
  int err;            /* why there is no entry (the worker's reservation) */
  void *copy;         /* a small value's bytes, or NULL: pull them */
  bool requesting;    /* its PULLs went: only now may a DATA or a loss settle it
                         (while it reserves, a worker or the tick list has it) */
} pull_t;

/* The body a DATA announced: the next message from its rank. */
typedef struct expect_s {
  bool on;
  pull_t *pl; /* NULL: the pull is gone; the body is dropped */
  char *dest;
  size_t len;
} expect_t;

struct ray__cluster_s {
  ray__runtime_t *rt;
  ray__transport_t *tr;
  uv_mutex_t mu;
  uv_cond_t cv;                         /* an ACK came; the stop was asked for */
  flight_t *flights[FLIGHT_BUCKETS];    /* under mu */
  struct exec_s *execs[FLIGHT_BUCKETS]; /* under mu: tasks run here for other ranks */
  struct hold_s *holds[FLIGHT_BUCKETS]; /* under mu: values held for other ranks' pulls */
  expect_t *expect;                     /* per rank: a body to come (communication thread) */
  pull_t *pulls;                        /* pulls under way (communication thread) */
  struct arrival_s *arrivals;           /* tasks pulling their arguments (the same) */
  struct stream_s *streams;             /* actors run here for other ranks (the same) */
  /* Placement of RAY_NODE_ANY tasks: per rank, the load it last reported
   * (with its answers) and our tasks in flight there; all in flight. */
  atomic_int *reported;
  atomic_int *inflight;
  atomic_int inflight_all;
  atomic_bool *lost;     /* per rank: taken as lost (ray__transport_lost_fn) */
  atomic_int lose_asked; /* the test hook's rank + 1, for the tick (0: none) */
  /* Work for the communication thread (its tick): tasks ready to send, and
   * tasks run here whose results are ready to go back. Under qmu, a leaf
   * (taken under a shard lock by the ready and watch callbacks). */
  uv_mutex_t qmu;
  ray__runnable_t *to_send, *to_answer; /* linked through rn.next, LIFO */
  ray__runnable_t *to_pull;             /* pulls whose reservation ended on a worker */
  int acks;                             /* rank 0: ranks that confirmed the stop */
  bool closing;                         /* the runtime is stopping: TASKs refused */
  int in_task;                          /* on_task calls under way (close waits them out) */
  bool stop_asked;                      /* other ranks: SHUTDOWN came */
  int dones;                            /* rank 0, SPMD: ranks whose program is done (mu) */
  bool done_said;                       /* SPMD: this rank's ray_shutdown began (mu) */
  struct job_name_s *names;             /* rank 0: the job's actor names (mu) */
  struct name_wait_s *name_waits;       /* questions to rank 0 awaiting its answer (mu) */
  uint64_t next_req;                    /* (mu) */
  struct homed_s *homed;               /* actors made here for other ranks (communication thread) */
  struct lent_s *lent[FLIGHT_BUCKETS]; /* our objects other ranks hold proxies of (the same) */
  atomic_uint actor_rr;                /* the next RAY_NODE_ANY actor's rank */
};

/* ---- Packing helpers ---- */

/* The packed bytes as a block the transport can take (ray__malloc'd). */
static void *take_bytes(ray__mpbuf_t *b, size_t *len) {
  *len = b->size;
  if (b->oom) {
    ray__mpbuf_destroy(b);
    return NULL;
  }
  if (b->data != b->small) {
    void *p = b->data;
    b->data = b->small; /* ours now: destroy frees nothing */
    return p;
  }
  void *p = ray__malloc(b->size > 0 ? b->size : 1);
  if (p != NULL) memcpy(p, b->data, b->size);
  return p;
}

/* Send what b holds to `dest`; to a lost rank only when `to_lost` (the
 * stop's SHUTDOWN and ACK: the transport drops them too if MPI itself
 * failed that rank). Errors: RAY_ENOMEM, RAY_ENODE (dest was lost), the
 * transport's. */
static int send_bytes(ray__cluster_t *cl, int dest, ray__mpbuf_t *b, bool to_lost) {
  size_t len;
  void *p = take_bytes(b, &len);
  ray__mpbuf_destroy(b);
  if (p == NULL) return RAY_ENOMEM;
  if (!to_lost && cl->lost != NULL && atomic_load(&cl->lost[dest])) {
    ray__free(p);
    return RAY_ENODE;
  }
  int rc = ray__transport_send(cl->tr, dest, p, len);
  if (rc == 0) atomic_fetch_add_explicit(&cl->rt->remote_bytes_sent, len, memory_order_relaxed);
  return rc;
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

/* Start a message about a task: [kind, task_id, ...] of `n` elements. */
static void msg_begin(ray__mpbuf_t *b, msgpack_packer *pk, uint32_t n, int kind, uint64_t task_id) {
  ray__mpbuf_init(b, pk);
  msgpack_pack_array(pk, n);
  msgpack_pack_int(pk, kind);
  msgpack_pack_uint64(pk, task_id);
}

static int send_buf(ray__cluster_t *cl, int dest, ray__mpbuf_t *b) {
  return send_bytes(cl, dest, b, false);
}

/* A control message: [kind] or, with a task id, [kind, task_id]. SHUTDOWN
 * and ACK go even to a rank taken as lost (the stop must reach it). */
static int send_control(ray__cluster_t *cl, int dest, int kind, const uint64_t *task_id) {
  ray__mpbuf_t b;
  msgpack_packer pk;
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_array(&pk, task_id != NULL ? 2 : 1);
  msgpack_pack_int(&pk, kind);
  if (task_id != NULL) msgpack_pack_uint64(&pk, *task_id);
  return send_bytes(cl, dest, &b, kind == K_SHUTDOWN || kind == K_ACK);
}

/* A growing list of actor ids. */
typedef struct ids_s {
  uint64_t *v;
  size_t n, cap;
  bool oom;
} ids_t;

static void ids_add(ids_t *l, uint64_t id) {
  for (size_t i = 0; i < l->n; i++)
    if (l->v[i] == id) return;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 4;
    uint64_t *v = ray__realloc(l->v, cap * sizeof *v);
    if (v == NULL) {
      l->oom = true;
      return;
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = id;
}

/* What msgpack bytes name: VALUE_REFS when they hold refs, VALUE_ACTORS
 * when actor handles, whose ids are added to *handles (unless NULL), in
 * the same pass. Undecodable bytes count as naming nothing: the receiver
 * reports them as it would locally. */
enum { VALUE_REFS = 1, VALUE_ACTORS = 2 };
static int value_names(uint32_t type, const void *data, size_t size, ids_t *handles) {
  if (type != RAY_TYPE_MSGPACK) return 0;
  msgpack_unpacked u;
  if (ray__mp_decode(data, size, &u) != 0) return 0;
  ray_ref_t *refs = NULL;
  size_t n = 0;
  int what = 0;
  if (ray__mp_collect_refs(&u.data, &refs, &n) == 0)
    for (size_t i = 0; i < n; i++) {
      what |= refs[i].type == RAY_TYPE_ACTOR ? VALUE_ACTORS : VALUE_REFS;
      if (refs[i].type == RAY_TYPE_ACTOR && handles != NULL) ids_add(handles, refs[i].id);
    }
  ray__free(refs);
  msgpack_unpacked_destroy(&u);
  return what;
}

/* ---- The in-flight table (mu held) ---- */

static flight_t **bucket(ray__cluster_t *cl, uint64_t task_id) {
  return &cl->flights[(task_id * 0x9E3779B97F4A7C15ull) >> 54];
}

/* Take task `task_id`, sent to rank `node`, out of the table: NULL if it
 * is not there (or went elsewhere: an answer from another rank is not its). */
static flight_t *flight_take(ray__cluster_t *cl, uint64_t task_id, int node) {
  for (flight_t **p = bucket(cl, task_id); *p != NULL; p = &(*p)->next) {
    if ((*p)->task_id != task_id || (*p)->t->node != node) continue;
    flight_t *f = *p;
    *p = f->next;
    return f;
  }
  return NULL;
}

/* ---- Values held for another rank's pulls ---- */

/* The key of a (rank, task) pair in a table of FLIGHT_BUCKETS buckets. */
static unsigned pair_bucket(int rank, uint64_t task_id) {
  uint64_t h = (task_id ^ ((uint64_t)(unsigned)rank << 48)) * 0x9E3779B97F4A7C15ull;
  return (unsigned)(h >> 54);
}

/* The large values of one task that rank `peer` pulls: its results, held
 * by the rank that ran it for the owner, or its arguments, held by the
 * owner for the rank running it. Views keep them in memory (pinned, never
 * spilled) until released (the owner's RELEASE, for results; the task's
 * answer, for arguments), and the hold goes once MPI has sent its last
 * chunk. Keyed by (peer, task_id): a task id names its owner, so the holds
 * of a rank's own tasks and of other ranks' never share a key. In `holds`
 * under mu; used and freed on the communication thread only. */
typedef struct hold_s {
  struct hold_s *next;
  ray__cluster_t *cl;
  int peer;
  uint64_t task_id;
  int sending;   /* chunks MPI is still sending from the views */
  bool released; /* nobody pulls from it any more */
  uint32_t n;
  uint64_t *kept;    /* by slot: a result naming refs, held until the owner took them (0: none) */
  ray_buf_t views[]; /* by slot; data NULL: not held */
} hold_t;

static hold_t *hold_new(ray__cluster_t *cl, uint32_t n) {
  hold_t *h = ray__calloc(1, sizeof *h + n * (sizeof(ray_buf_t) + sizeof(uint64_t)));
  if (h != NULL) {
    h->cl = cl;
    h->n = n;
    h->kept = (uint64_t *)(void *)&h->views[n]; /* ray_buf_t's alignment covers a uint64_t */
  }
  return h;
}

static void hold_free(hold_t *h) {
  for (uint32_t i = 0; i < h->n; i++) {
    if (h->views[i].data != NULL) ray_buf_release(&h->views[i]);
    if (h->kept[i] != 0) ray__store_release(&h->cl->rt->store, h->kept[i]);
  }
  ray__free(h);
}

static void hold_add(ray__cluster_t *cl, hold_t *h, int peer, uint64_t task_id) {
  h->peer = peer;
  h->task_id = task_id;
  uv_mutex_lock(&cl->mu);
  hold_t **b = &cl->holds[pair_bucket(peer, task_id)];
  h->next = *b;
  *b = h;
  uv_mutex_unlock(&cl->mu);
}

/* The hold of (peer, task_id) not released yet (two FILLs of one object
 * for one rank may each hold one), or NULL. */
static hold_t *hold_find(ray__cluster_t *cl, int peer, uint64_t task_id) {
  uv_mutex_lock(&cl->mu);
  hold_t *h = cl->holds[pair_bucket(peer, task_id)];
  while (h != NULL && (h->peer != peer || h->task_id != task_id || h->released)) h = h->next;
  uv_mutex_unlock(&cl->mu);
  return h;
}

/* Out of the table and freed. */
static void hold_drop(hold_t *h) {
  ray__cluster_t *cl = h->cl;
  uv_mutex_lock(&cl->mu);
  for (hold_t **p = &cl->holds[pair_bucket(h->peer, h->task_id)]; *p != NULL; p = &(*p)->next)
    if (*p == h) {
      *p = h->next;
      break;
    }
  uv_mutex_unlock(&cl->mu);
  hold_free(h);
}

/* Nobody pulls from the hold of (peer, task_id) any more, if there is one. */
static void hold_release(ray__cluster_t *cl, int peer, uint64_t task_id) {
  hold_t *h = hold_find(cl, peer, task_id);
  if (h == NULL || h->released) return;
  h->released = true;
  if (h->sending == 0) hold_drop(h);
}

/* MPI is done with a chunk sent from h's views. */
static void chunk_sent(void *arg) {
  hold_t *h = arg;
  if (--h->sending == 0 && h->released) hold_drop(h);
}

/* ---- Borrowing: refs that travel ----
 *
 * A ref this rank does not own that arrives inside a value (an argument,
 * a result, a proxy's value) gets a proxy here (store.h): a pending entry
 * whose owner is asked for the value at its first read (the store's fetch
 * hook: SUB, answered by FILL), which then holds what that value names in
 * turn; a ref only passed on is never fetched. Each life of a proxy has a
 * serial, and the owner counts lives, not ranks:
 *  - the rank that made it reports it (BORROWS) to the rank the value came
 *    from, before anything lets that rank drop its own hold: the report
 *    goes before the task's answer, or before the RELEASE of a result or
 *    the GONE of the outer proxy, on the same pair of ranks;
 *  - that rank, if it is not the owner, forwards the report to the owner,
 *    before its own hold can go (the same argument, one link up);
 *  - when the proxy goes, its rank tells the owner (GONE, straight there).
 * A GONE may reach the owner before the forwarded BORROWS of the same life:
 * the owner keeps it as a tombstone, which that BORROWS cancels. The owner
 * holds one reference on an object while any life or tombstone of it is
 * listed (`lent`), so it frees an object when its own count is zero and no
 * rank holds a proxy: while a BORROWS is in flight, the rank forwarding it
 * still holds its own life (its GONE comes after, on the same pair), so
 * something listed or local always holds the object.
 * The lists are the communication thread's. */
typedef struct life_s {
  int rank;
  bool tomb; /* its GONE came before its BORROWS */
  uint64_t serial;
} life_t;

/* The lives of one object's proxies (or one actor's stubs) elsewhere. */
typedef struct lives_s {
  uint32_t n, cap;
  life_t *v;
} lives_t;

/* A life began (its BORROWS: tomb false) or ended (tomb true): it cancels
 * its counterpart if that is listed, else it is listed. Errors: RAY_ENOMEM
 * (not listed). */
static int lives_count(lives_t *l, int rank, uint64_t serial, bool tomb) {
  for (uint32_t i = 0; i < l->n; i++)
    if (l->v[i].rank == rank && l->v[i].serial == serial && l->v[i].tomb != tomb) {
      l->v[i] = l->v[--l->n];
      return 0;
    }
  if (l->n == l->cap) {
    uint32_t cap = l->cap ? 2 * l->cap : 2;
    life_t *v = ray__realloc(l->v, cap * sizeof *v);
    if (v == NULL) return RAY_ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = (life_t){rank, tomb, serial};
  return 0;
}

/* A rank is lost: its lives will never end. */
static void lives_drop_rank(lives_t *l, int rank) {
  for (uint32_t i = 0; i < l->n;)
    if (l->v[i].rank == rank)
      l->v[i] = l->v[--l->n];
    else
      i++;
}

typedef struct lent_s {
  struct lent_s *next;
  uint64_t id;
  lives_t lives;
} lent_t;

static lent_t **lent_slot(ray__cluster_t *cl, uint64_t id) {
  lent_t **p = &cl->lent[(id * 0x9E3779B97F4A7C15ull) >> 54];
  while (*p != NULL && (*p)->id != id) p = &(*p)->next;
  return p;
}

static void lent_free(ray__cluster_t *cl, lent_t **p) {
  lent_t *l = *p;
  *p = l->next;
  ray__store_release(&cl->rt->store, l->id);
  ray__free(l->lives.v);
  ray__free(l);
}

/* A life of a proxy of our object `id` on `rank` began (its BORROWS: tomb
 * false) or ended (its GONE: tomb true): it cancels its counterpart if that
 * is listed, else it is listed. */
static void lent_note(ray__cluster_t *cl, uint64_t id, int rank, uint64_t serial, bool tomb) {
  lent_t **p = lent_slot(cl, id), *l = *p;
  if (l == NULL) {
    /* Never gone: a rank that lends it on holds it until this comes. */
    if (ray__store_retain(&cl->rt->store, id) != 0) {
      ray__log(RAY_LOG_ERROR, "cluster: rank %d borrows object %llx, which is gone here", rank,
               (unsigned long long)id);
      return;
    }
    if ((l = ray__calloc(1, sizeof *l)) == NULL) {
      ray__store_release(&cl->rt->store, id);
      ray__log(RAY_LOG_ERROR, "cluster: no memory to count a borrow of object %llx",
               (unsigned long long)id);
      return;
    }
    l->id = id;
    *p = l;
  }
  if (lives_count(&l->lives, rank, serial, tomb) != 0) /* the object may go early: logged */
    ray__log(RAY_LOG_ERROR, "cluster: no memory to count a borrow of object %llx",
             (unsigned long long)id);
  if (l->lives.n == 0) lent_free(cl, p);
}

/* A rank is lost: its proxies will never say they went. */
static void lent_forget(ray__cluster_t *cl, int rank) {
  for (unsigned b = 0; b < FLIGHT_BUCKETS; b++)
    for (lent_t **p = &cl->lent[b]; *p != NULL;) {
      lent_t *l = *p;
      lives_drop_rank(&l->lives, rank);
      if (l->lives.n == 0)
        lent_free(cl, p);
      else
        p = &l->next;
    }
}

static int owner_of(uint64_t id) {
  return (int)(id >> RAY__ID_RANK_SHIFT);
}

/* A life of an actor stub on some rank (an actor handle that travelled),
 * counted at the actor's home. */
typedef struct alife_s {
  uint64_t id, serial;
  int home;
} alife_t;

/* BORROWS [15, borrower, [id, serial, ...], [actor id, serial, home, ...]]
 * to `dest`: proxies and actor stubs made on `borrower`. */
static void send_borrows(ray__cluster_t *cl, int dest, int borrower, const ray__proxy_t *v,
                         size_t n, const alife_t *lives, size_t nlives) {
  ray__mpbuf_t b;
  msgpack_packer pk;
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_int(&pk, K_BORROWS);
  msgpack_pack_int(&pk, borrower);
  msgpack_pack_array(&pk, (uint32_t)(2 * n));
  for (size_t i = 0; i < n; i++) {
    msgpack_pack_uint64(&pk, v[i].id);
    msgpack_pack_uint64(&pk, v[i].serial);
  }
  msgpack_pack_array(&pk, (uint32_t)(3 * nlives));
  for (size_t i = 0; i < nlives; i++) {
    msgpack_pack_uint64(&pk, lives[i].id);
    msgpack_pack_uint64(&pk, lives[i].serial);
    msgpack_pack_int(&pk, lives[i].home);
  }
  (void)send_buf(cl, dest, &b); /* a lost rank: nobody to tell */
}

/* The store's hook (any thread): a proxy went, GONE to its owner. */
static void proxy_gone(void *arg, uint64_t id, uint64_t serial) {
  ray__cluster_t *cl = arg;
  ray__mpbuf_t b;
  msgpack_packer pk;
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_int(&pk, K_GONE);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_uint64(&pk, id);
  msgpack_pack_uint64(&pk, serial);
  if (send_buf(cl, owner_of(id), &b) == RAY_ENOMEM) /* the object stays at its owner: logged */
    ray__log(RAY_LOG_ERROR, "cluster: no memory to tell rank %d that object %llx went here",
             owner_of(id), (unsigned long long)id);
}

/* What a value holds on to, for the entry or task that will keep it. */
typedef struct held_s {
  uint64_t *ids;
  uint32_t nobj, nact;
} held_t;

static void unhold(ray__cluster_t *cl, held_t *h) {
  ray__store_unhold_inner(&cl->rt->store, h->ids, h->nobj, h->nact);
  *h = (held_t){0};
}

/* A pend's handles (a heap copy, or NULL), let go. */
static void unhold_handles(ray__cluster_t *cl, held_t **h) {
  if (*h == NULL) return;
  unhold(cl, *h);
  ray__free(*h);
  *h = NULL;
}

/* Hold what msgpack bytes that came from rank `src` name: the refs of
 * other ranks get proxies here (reported to src; their owners are asked
 * for the values at the first read). Undecodable bytes name nothing (the reader reports them).
 * Errors: RAY_ENOTFOUND (a ref of ours that is gone, or an actor handle
 * this rank could not adopt from the message's table), RAY_EDECODE (a ref
 * naming no rank of the job), RAY_ENOMEM. */
static int borrow_bytes(ray__cluster_t *cl, int src, const void *data, size_t size, held_t *out) {
  *out = (held_t){0};
  msgpack_unpacked u;
  if (ray__mp_decode(data, size, &u) != 0) return 0;
  ray_ref_t *refs = NULL;
  size_t n = 0;
  int rc = ray__mp_collect_refs(&u.data, &refs, &n);
  msgpack_unpacked_destroy(&u);
  uint64_t nranks = (uint64_t)atomic_load(&cl->rt->nranks);
  for (size_t i = 0; i < n && rc == 0; i++)
    if (refs[i].type != RAY_TYPE_ACTOR && (uint64_t)owner_of(refs[i].id) >= nranks)
      rc = RAY_EDECODE;
  ray__proxy_t *made = NULL;
  size_t nmade = 0;
  if (rc == 0 && n > 0)
    rc = ray__store_hold_inner_borrowing(&cl->rt->store, refs, n, &out->ids, &out->nobj, &out->nact,
                                         &made, &nmade);
  ray__free(refs);
  /* Gone again if rc != 0: reported all the same, their GONEs follow.
   * Their values are asked for at the first read (the store's fetch hook). */
  if (nmade > 0) send_borrows(cl, src, atomic_load(&cl->rt->rank), made, nmade, NULL, 0);
  ray__free(made);
  return rc;
}

/* borrow_bytes for an entry not in the table yet, which then holds them. */
static int take_refs(ray__cluster_t *cl, int src, ray__entry_t *e) {
  if (e->type != RAY_TYPE_MSGPACK) return 0;
  held_t h;
  int rc = borrow_bytes(cl, src, e->data, e->size, &h);
  if (rc == 0) {
    e->inner = h.ids;
    e->ninner = h.nobj;
    e->nactors = h.nact;
  }
  return rc;
}

/* Add what `h` holds to *into (h emptied). Errors: RAY_ENOMEM (h let go). */
static int held_merge(ray__cluster_t *cl, held_t *into, held_t *h) {
  if (h->ids == NULL) return 0;
  if (into->ids == NULL) {
    *into = *h;
    *h = (held_t){0};
    return 0;
  }
  size_t n = (size_t)into->nobj + into->nact + h->nobj + h->nact;
  uint64_t *ids = ray__malloc(n * sizeof *ids);
  if (ids == NULL) {
    unhold(cl, h);
    return RAY_ENOMEM;
  }
  /* Objects first, then actor handles, as ray__store_unhold_inner reads them. */
  memcpy(ids, into->ids, into->nobj * sizeof *ids);
  memcpy(ids + into->nobj, h->ids, h->nobj * sizeof *ids);
  memcpy(ids + into->nobj + h->nobj, into->ids + into->nobj, into->nact * sizeof *ids);
  memcpy(ids + into->nobj + h->nobj + into->nact, h->ids + h->nobj, h->nact * sizeof *ids);
  ray__free(into->ids);
  ray__free(h->ids);
  *into = (held_t){ids, into->nobj + h->nobj, into->nact + h->nact};
  *h = (held_t){0};
  return 0;
}

/* Give what `h` holds to a pend whose values land late (h emptied);
 * without memory for it, it is let go (values naming those handles then
 * fail to land, RAY_ENOTFOUND, unless held otherwise). */
static void pend_take(ray__cluster_t *cl, held_t **into, held_t *h) {
  if (h->ids == NULL) return;
  if (*into == NULL && (*into = ray__calloc(1, sizeof **into)) == NULL) {
    unhold(cl, h);
    return;
  }
  (void)held_merge(cl, *into, h);
}

/* Hold what the arguments of a task from `src` that came inside its
 * message name, until the task holds them itself. Errors: borrow_bytes's
 * (nothing held then). */
static int borrow_args(ray__cluster_t *cl, int src, const ray_arg_t *args, uint32_t nargs,
                       held_t *out) {
  *out = (held_t){0};
  int rc = 0;
  for (uint32_t i = 0; i < nargs && rc == 0; i++) {
    if (args[i].kind != RAY__ARG_ENCODED || args[i].type != RAY_TYPE_MSGPACK) continue;
    held_t h;
    if ((rc = borrow_bytes(cl, src, args[i].u.bytes.data, args[i].u.bytes.size, &h)) == 0)
      rc = held_merge(cl, out, &h);
  }
  if (rc != 0) unhold(cl, out);
  return rc;
}

static void lives_note(ray__cluster_t *cl, uint64_t actor_id, int rank, uint64_t serial,
                       bool ended);

/* BORROWS: proxies made on `borrower` of refs this rank sent (or forwarded
 * to it): counted if ours, else forwarded to their owner; and actor stubs
 * made there, counted if the actor lives here, else forwarded to its home. */
static void on_borrows(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  int nranks = atomic_load(&cl->rt->nranks), self = atomic_load(&cl->rt->rank);
  if ((m->via.array.size != 3 && m->via.array.size != 4) ||
      v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[1].via.u64 >= (uint64_t)nranks ||
      v[2].type != MSGPACK_OBJECT_ARRAY || v[2].via.array.size % 2 != 0) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed BORROWS from rank %d", src);
    return;
  }
  int borrower = (int)v[1].via.u64;
  const msgpack_object *p = v[2].via.array.ptr;
  for (uint32_t i = 0; i + 1 < v[2].via.array.size; i += 2) {
    if (p[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        p[i + 1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
      continue;
    ray__proxy_t life = {p[i].via.u64, p[i + 1].via.u64};
    int owner = owner_of(life.id);
    if (owner == self)
      lent_note(cl, life.id, borrower, life.serial, false);
    else if (owner < nranks)
      send_borrows(cl, owner, borrower, &life, 1, NULL, 0);
  }
  if (m->via.array.size < 4 || v[3].type != MSGPACK_OBJECT_ARRAY) return;
  /* Actor stubs: counted at their home, forwarded there if it is not us. */
  const msgpack_object *q = v[3].via.array.ptr;
  for (uint32_t i = 0; i + 2 < v[3].via.array.size; i += 3) {
    if (q[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        q[i + 1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        q[i + 2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || q[i + 2].via.u64 >= (uint64_t)nranks)
      continue;
    alife_t life = {q[i].via.u64, q[i + 1].via.u64, (int)q[i + 2].via.u64};
    if (life.home == self)
      lives_note(cl, life.id, borrower, life.serial, false);
    else
      send_borrows(cl, life.home, borrower, NULL, 0, &life, 1);
  }
}

/* GONE: proxies of our objects went on `src`. */
static void on_gone(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  if (m->via.array.size != 2 || v[1].type != MSGPACK_OBJECT_ARRAY || v[1].via.array.size % 2 != 0) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed GONE from rank %d", src);
    return;
  }
  int self = atomic_load(&cl->rt->rank);
  const msgpack_object *p = v[1].via.array.ptr;
  for (uint32_t i = 0; i + 1 < v[1].via.array.size; i += 2)
    if (p[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        p[i + 1].type == MSGPACK_OBJECT_POSITIVE_INTEGER && owner_of(p[i].via.u64) == self)
      lent_note(cl, p[i].via.u64, src, p[i + 1].via.u64, true);
}

/* ---- Actor handles that travel ----
 *
 * A message whose values (or arguments) name actor handles carries a table
 * of them, [[id, home, class], ...], so the receiver can call them: it
 * adopts each (ray__actors_adopt: a stub of its own, or one more handle on
 * the one it has) before the values land, and reports each stub it made
 * (a life) with the BORROWS of the refs, to the rank the message came
 * from, which forwards it to the actor's home. The home counts the lives
 * as an owner counts proxies (homed_t below), so the actor goes once the
 * stub that made it and every adopted one have let go and their calls ran
 * there: an adopted life ends with its ADROP (its call count), on the same
 * pair of ranks as its calls. */
/* Pack the table of the handles in l: [[id, home, class], ...] (home -1:
 * not known here, which the receiver refuses). */
static void pack_handles(ray__cluster_t *cl, msgpack_packer *pk, const ids_t *l) {
  msgpack_pack_array(pk, (uint32_t)l->n);
  for (size_t i = 0; i < l->n; i++) {
    ray__actor_info_t in = {0};
    if (ray__actors_info(cl->rt, l->v[i], &in) != 0) in.home = -1;
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, l->v[i]);
    msgpack_pack_int(pk, in.home);
    pack_cstr(pk, in.cls);
  }
}

/* Adopt the handles of a table that came from `src`, held in *out (as a
 * value's actor handles: unhold() lets them go once what names them holds
 * them itself), and report the stubs made (new lives) to src. Entries
 * this rank cannot adopt (a class it does not know) are left out: what
 * names them then fails to land (RAY_ENOTFOUND). */
static void adopt_handles(ray__cluster_t *cl, int src, const msgpack_object *tab, held_t *out) {
  *out = (held_t){0};
  if (tab == NULL || tab->type != MSGPACK_OBJECT_ARRAY || tab->via.array.size == 0) return;
  uint32_t n = tab->via.array.size;
  uint64_t *ids = ray__malloc(n * sizeof *ids);
  alife_t *made = ray__malloc(n * sizeof *made);
  if (ids == NULL || made == NULL) {
    ray__free(ids);
    ray__free(made);
    return;
  }
  int nranks = atomic_load(&cl->rt->nranks);
  uint32_t k = 0, nm = 0;
  for (uint32_t i = 0; i < n; i++) {
    const msgpack_object *e = &tab->via.array.ptr[i];
    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
        e->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        e->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        e->via.array.ptr[1].via.u64 >= (uint64_t)nranks ||
        e->via.array.ptr[2].type != MSGPACK_OBJECT_STR ||
        e->via.array.ptr[2].via.str.size >= RAY__CLASS_NAME_MAX)
      continue;
    ray__actor_info_t in = {.id = e->via.array.ptr[0].via.u64,
                            .home = (int)e->via.array.ptr[1].via.u64};
    if (e->via.array.ptr[2].via.str.size > 0)
      memcpy(in.cls, e->via.array.ptr[2].via.str.ptr, e->via.array.ptr[2].via.str.size);
    ray_actor_t h;
    uint64_t serial = 0;
    if (ray__actors_adopt(cl->rt, &in, &h, &serial) != 0) continue;
    ids[k++] = h.id;
    if (serial != 0) made[nm++] = (alife_t){in.id, serial, in.home};
  }
  if (nm > 0) send_borrows(cl, src, atomic_load(&cl->rt->rank), NULL, 0, made, nm);
  ray__free(made);
  if (k == 0) {
    ray__free(ids);
    return;
  }
  *out = (held_t){ids, 0, k};
}

/* ---- The owner: sending a task ---- */

/* A remote task's ops: ready hands it to a worker, which sends it. */
static void send_task(ray__runnable_t *rn);

/* Hand work to the communication thread: sending does not wait for a
 * free worker (this rank's workers may all be busy for long). */
static void queue_for_tick(ray__cluster_t *cl, ray__runnable_t **list, ray__runnable_t *rn) {
  uv_mutex_lock(&cl->qmu);
  rn->next = *list;
  *list = rn;
  uv_mutex_unlock(&cl->qmu);
  ray__transport_wake(cl->tr);
}

static void remote_ready(ray__task_t *t) {
  t->rn.run = send_task;
  queue_for_tick(t->rt->cluster, &t->rt->cluster->to_send, &t->rn);
}

static const ray__task_ops_t actor_ops;

/* Finish a task we sent (or meant to send) to another rank: an actor's
 * carries its actor_msg_t. */
static void remote_finish(ray__task_t *t) {
  if (t->ops == &actor_ops) {
    ray__free(t->owner);
    t->owner = NULL;
  }
  ray__task_finish(t);
}

static ray__task_t *remote_done(ray__task_t *t, ray__task_end_t *end) {
  ray_error_free(end->err);
  remote_finish(t);
  return NULL;
}

static int send_cancel(ray__cluster_t *cl, int dest, uint64_t task_id) {
  return send_control(cl, dest, K_CANCEL, &task_id);
}

/* ray_cancel of a task past PENDING: if it was sent (in the table), ask
 * its rank; if it is about to be, send_task sees the flag under mu. */
static void remote_cancel(ray__task_t *t) {
  ray__cluster_t *cl = t->rt->cluster;
  uv_mutex_lock(&cl->mu);
  bool sent = false;
  for (flight_t *f = *bucket(cl, t->task_id); f != NULL && !sent; f = f->next) sent = f->t == t;
  if (sent) (void)send_cancel(cl, t->node, t->task_id);
  uv_mutex_unlock(&cl->mu);
}

static const ray__task_ops_t remote_ops = {
    .kind = RAY__TASK_FN,
    .counted = true,
    .ready = remote_ready,
    .body = NULL, /* never runs here: send_task replaces the run */
    .done = remote_done,
    .cancel = remote_cancel,
};

/* ---- The owner: actors on other ranks (actor.h's remote operations) ---- */

/* What a TASK carrying an actor's constructor or call says beyond a
 * function call: the task's owner (actor_ops). */
typedef struct actor_msg_s {
  uint64_t actor_id, seq;
  uint64_t serial; /* the calling stub's life (0: the stub that made it) */
  int64_t method;  /* -1: the constructor (seq 0) */
  uint32_t max_restarts, max_task_retries, max_concurrency;
  bool sent;  /* its TASK left (mu): else its home hears of it by ASKIP */
  char cls[]; /* the class's name */
} actor_msg_t;

static void send_skip(ray__cluster_t *cl, int home, const actor_msg_t *m, int code) {
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 5, K_ASKIP, m->actor_id);
  msgpack_pack_uint64(&pk, m->seq);
  msgpack_pack_int(&pk, code);
  msgpack_pack_uint64(&pk, m->serial);
  (void)send_buf(cl, home, &b);
}

/* As remote_done; a call that never left tells its home, which runs the
 * calls in their order and must not wait for it. */
static ray__task_t *actor_done(ray__task_t *t, ray__task_end_t *end) {
  actor_msg_t *m = t->owner;
  ray__cluster_t *cl = t->rt->cluster;
  uv_mutex_lock(&cl->mu);
  bool sent = m->sent;
  uv_mutex_unlock(&cl->mu);
  if (!sent && !atomic_load(&cl->lost[t->node]))
    send_skip(cl, t->node, m, end->code != 0 ? end->code : RAY_ECANCELED);
  return remote_done(t, end);
}

static const ray__task_ops_t actor_ops = {
    .kind = RAY__TASK_FN,
    .counted = true,
    .ready = remote_ready,
    .body = NULL, /* never runs here: send_task replaces the run */
    .done = actor_done,
    .cancel = remote_cancel,
};

static int actor_send(ray__runtime_t *rt, int home, actor_msg_t *m, ray__func_t *fn,
                      const ray_arg_t *args, size_t nargs, ray_ref_t *out_refs) {
  ray_task_opts_t o;
  ray_task_opts_init(&o);
  o.node = home;
  int rc = ray__task_submit(rt, fn, &actor_ops, m, args, nargs, &o, out_refs, NULL);
  if (rc != 0) ray__free(m); /* not taken over */
  return rc;
}

static int actor_create(ray__runtime_t *rt, uint64_t id, int home, const ray_actor_class_t *cls,
                        ray__func_t *ctor, const ray_arg_t *args, size_t nargs,
                        const ray_actor_opts_t *opts) {
  size_t n = strlen(cls->name);
  actor_msg_t *m = ray__calloc(1, sizeof *m + n + 1);
  if (m == NULL) return RAY_ENOMEM;
  *m = (actor_msg_t){.actor_id = id,
                     .method = -1,
                     .max_restarts = opts->max_restarts,
                     .max_task_retries = opts->max_task_retries,
                     .max_concurrency = opts->max_concurrency};
  memcpy(m->cls, cls->name, n + 1);
  return actor_send(rt, home, m, ctor, args, nargs, NULL);
}

static int actor_call(ray__runtime_t *rt, uint64_t id, int home, uint64_t serial, uint64_t seq,
                      uint32_t index, ray__func_t *fn, const ray_arg_t *args, size_t nargs,
                      ray_ref_t *out_refs) {
  actor_msg_t *m = ray__calloc(1, sizeof *m + 1);
  if (m == NULL) return RAY_ENOMEM;
  *m = (actor_msg_t){.actor_id = id, .seq = seq, .serial = serial, .method = index};
  return actor_send(rt, home, m, fn, args, nargs, out_refs);
}

/* [kind, id, value] (or [kind, id, value, serial] with `serial`) to home. */
static void actor_control(ray__runtime_t *rt, int home, int kind, uint64_t id, uint64_t value,
                          const uint64_t *serial) {
  ray__cluster_t *cl = rt->cluster;
  if (cl == NULL || atomic_load(&cl->lost[home])) return;
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, serial != NULL ? 4 : 3, kind, id);
  msgpack_pack_uint64(&pk, value);
  if (serial != NULL) msgpack_pack_uint64(&pk, *serial);
  (void)send_buf(cl, home, &b);
}

static void actor_kill(ray__runtime_t *rt, uint64_t id, int home, bool no_restart) {
  actor_control(rt, home, K_AKILL, id, no_restart, NULL);
}

static void actor_drop(ray__runtime_t *rt, uint64_t id, int home, uint64_t serial,
                       uint64_t ncalls) {
  actor_control(rt, home, K_ADROP, id, ncalls, &serial);
}

/* A stub adopted by name: its life begins at the home (before any of its
 * calls or its drop, all later on the same pair of ranks). */
static void actor_adopted(ray__runtime_t *rt, uint64_t id, int home, uint64_t serial);

static int actor_name_put(ray__runtime_t *rt, const char *name, const ray__actor_info_t *in,
                          ray__actor_info_t *taken);
static int actor_name_get(ray__runtime_t *rt, const char *name, ray__actor_info_t *out);
static void actor_name_del(ray__runtime_t *rt, uint64_t id);

/* RAY_NODE_ANY actors: round-robin over the ranks not lost. */
static int actor_place(ray__runtime_t *rt) {
  ray__cluster_t *cl = rt->cluster;
  int n = atomic_load(&rt->nranks);
  for (int tries = 0; tries < n; tries++) {
    int r = (int)(atomic_fetch_add(&cl->actor_rr, 1) % (unsigned)n);
    if (!atomic_load(&cl->lost[r])) return r;
  }
  return atomic_load(&rt->rank);
}

static const ray__actor_remote_t actor_remote = {
    .place = actor_place,
    .create = actor_create,
    .call = actor_call,
    .kill = actor_kill,
    .drop = actor_drop,
    .adopted = actor_adopted,
    .name_put = actor_name_put,
    .name_get = actor_name_get,
    .name_del = actor_name_del,
};

static void actor_adopted(ray__runtime_t *rt, uint64_t id, int home, uint64_t serial) {
  ray__cluster_t *cl = rt->cluster;
  if (cl == NULL || atomic_load(&cl->lost[home])) return;
  alife_t life = {id, serial, home};
  send_borrows(cl, home, atomic_load(&rt->rank), NULL, 0, &life, 1);
}

/* ---- The job's actor names: a registry on rank 0 ---- */

static char *str_of(const msgpack_object *o);

typedef struct job_name_s {
  struct job_name_s *next;
  char *name;
  ray__actor_info_t info;
} job_name_t;

/* A question to rank 0, waiting for its answer (on cl->cv). */
typedef struct name_wait_s {
  struct name_wait_s *next;
  uint64_t req;
  bool answered;
  int code;
  ray__actor_info_t info;
} name_wait_t;

/* Rank 0 answers `op` on its registry (mu held): 0, RAY_ENAMEEXISTS (put:
 * *out is the holder), RAY_ENOTFOUND (get), RAY_ENOMEM. */
static int registry_op(ray__cluster_t *cl, int op, const char *name, const ray__actor_info_t *in,
                       ray__actor_info_t *out) {
  if (op == NAME_DEL) { /* every name of actor in->id */
    for (job_name_t **p = &cl->names; *p != NULL;) {
      job_name_t *n = *p;
      if (n->info.id != in->id) {
        p = &n->next;
        continue;
      }
      *p = n->next;
      ray__free(n->name);
      ray__free(n);
    }
    return 0;
  }
  for (job_name_t *n = cl->names; n != NULL; n = n->next)
    if (strcmp(n->name, name) == 0) {
      *out = n->info;
      return op == NAME_PUT ? RAY_ENAMEEXISTS : 0;
    }
  if (op == NAME_GET) return RAY_ENOTFOUND;
  job_name_t *n = ray__calloc(1, sizeof *n);
  char *copy = n != NULL ? ray__strdup(name) : NULL;
  if (copy == NULL) {
    ray__free(n);
    return RAY_ENOMEM;
  }
  n->name = copy;
  n->info = *in;
  n->next = cl->names;
  cl->names = n;
  return 0;
}

static void pack_info(msgpack_packer *pk, const ray__actor_info_t *in) {
  msgpack_pack_uint64(pk, in->id);
  msgpack_pack_int(pk, in->home);
  pack_cstr(pk, in->cls);
}

/* Ask rank 0 (or, there, look): op on `name`, waiting for the answer. */
static int name_ask(ray__runtime_t *rt, int op, const char *name, const ray__actor_info_t *in,
                    ray__actor_info_t *out) {
  ray__cluster_t *cl = rt->cluster;
  ray__actor_info_t none = {0};
  if (in == NULL) in = &none;
  if (strlen(name) > 4096) return RAY_EINVAL;
  if (atomic_load(&rt->rank) == 0) {
    uv_mutex_lock(&cl->mu);
    int rc = registry_op(cl, op, name, in, out);
    uv_mutex_unlock(&cl->mu);
    return rc;
  }
  if (atomic_load(&cl->lost[0])) return RAY_ENODE;
  name_wait_t w = {0};
  uv_mutex_lock(&cl->mu);
  w.req = ++cl->next_req;
  if (op != NAME_DEL) { /* a delete is not answered */
    w.next = cl->name_waits;
    cl->name_waits = &w;
  }
  uv_mutex_unlock(&cl->mu);
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 7, K_NAME, w.req);
  msgpack_pack_int(&pk, op);
  pack_cstr(&pk, name);
  pack_info(&pk, in);
  int rc = send_buf(cl, 0, &b);
  if (op == NAME_DEL) return rc;
  uint64_t deadline = uv_hrtime() + NAME_TIMEOUT_NS;
  uv_mutex_lock(&cl->mu);
  while (rc == 0 && !w.answered && !atomic_load(&cl->lost[0]) &&
         ray__thread_cond_wait_until(&cl->cv, &cl->mu, deadline) == 0) {
  }
  for (name_wait_t **p = &cl->name_waits; *p != NULL; p = &(*p)->next)
    if (*p == &w) {
      *p = w.next;
      break;
    }
  uv_mutex_unlock(&cl->mu);
  if (rc != 0) return rc;
  if (!w.answered) return atomic_load(&cl->lost[0]) ? RAY_ENODE : RAY_ETIMEDOUT;
  if (out != NULL) *out = w.info;
  return w.code;
}

static int actor_name_put(ray__runtime_t *rt, const char *name, const ray__actor_info_t *in,
                          ray__actor_info_t *taken) {
  return name_ask(rt, NAME_PUT, name, in, taken);
}

static int actor_name_get(ray__runtime_t *rt, const char *name, ray__actor_info_t *out) {
  return name_ask(rt, NAME_GET, name, NULL, out);
}

static void actor_name_del(ray__runtime_t *rt, uint64_t id) {
  ray__actor_info_t in = {.id = id};
  (void)name_ask(rt, NAME_DEL, "", &in, NULL);
}

/* An actor's info out of [id, home, class] at v. */
static bool info_of(const msgpack_object *v, ray__actor_info_t *out) {
  if (v[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      (v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
       v[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
      v[2].type != MSGPACK_OBJECT_STR || v[2].via.str.size >= sizeof out->cls)
    return false;
  out->id = v[0].via.u64;
  out->home = (int)v[1].via.i64;
  if (v[2].via.str.size > 0) memcpy(out->cls, v[2].via.str.ptr, v[2].via.str.size);
  out->cls[v[2].via.str.size] = '\0';
  return true;
}

/* NAME on rank 0: answer from the registry (a delete is not answered). */
static void on_name(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  ray__actor_info_t in;
  if (m->via.array.size != 7 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[2].via.u64 > NAME_DEL ||
      v[3].type != MSGPACK_OBJECT_STR || !info_of(&v[4], &in) || atomic_load(&cl->rt->rank) != 0) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed NAME from rank %d", src);
    return;
  }
  char *name = str_of(&v[3]);
  ray__actor_info_t out = {0};
  int op = (int)v[2].via.u64;
  uv_mutex_lock(&cl->mu);
  int code = name != NULL ? registry_op(cl, op, name, &in, &out) : RAY_ENOMEM;
  uv_mutex_unlock(&cl->mu);
  ray__free(name);
  if (op == NAME_DEL) return;
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 6, K_NAMED, v[1].via.u64);
  msgpack_pack_int(&pk, code);
  pack_info(&pk, &out);
  (void)send_buf(cl, src, &b);
}

/* NAMED: rank 0's answer to one of our questions. */
static void on_named(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  ray__actor_info_t info;
  if (m->via.array.size != 6 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      (v[2].type != MSGPACK_OBJECT_NEGATIVE_INTEGER &&
       v[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) ||
      !info_of(&v[3], &info)) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed NAMED from rank %d", src);
    return;
  }
  uv_mutex_lock(&cl->mu);
  for (name_wait_t *w = cl->name_waits; w != NULL; w = w->next)
    if (w->req == v[1].via.u64) {
      w->answered = true;
      w->code = (int)v[2].via.i64;
      w->info = info;
    }
  uv_cond_broadcast(&cl->cv);
  uv_mutex_unlock(&cl->mu);
}

/* Pack the TASK message of `t`, its arguments pinned: each as its bytes,
 * or a large one as its size, with a view of it in *hold (made at the
 * first) for the executor's pulls; an actor handle argument as its id; and
 * the table of the handles the arguments are or name. The refs and handles
 * travel (the task holds them until its answer, which comes after the
 * executor's BORROWS). Errors: RAY_ENOMEM (*hold is freed then). */
static int pack_task(ray__cluster_t *cl, ray__task_t *t, ray__mpbuf_t *b, hold_t **hold) {
  ids_t handles = {0}; /* the actor handles the arguments are or name */
  for (uint32_t i = 0; i < t->nargs; i++) {
    const ray__task_arg_t *a = &t->args[i];
    if (a->kind == RAY_ARG_ACTOR)
      ids_add(&handles, a->ref_id);
    else
      (void)value_names(a->type, a->data, a->size, &handles);
  }
  msgpack_packer pk;
  const actor_msg_t *am = t->ops == &actor_ops ? t->owner : NULL;
  msg_begin(b, &pk, 10, K_TASK, t->task_id);
  pack_cstr(&pk, t->fn->name);
  msgpack_pack_uint32(&pk, t->nreturns);
  msgpack_pack_uint32(&pk, t->max_retries);
  if (t->retry_on_error)
    msgpack_pack_true(&pk);
  else
    msgpack_pack_false(&pk);
  if (t->name != t->fn->name)
    pack_cstr(&pk, t->name);
  else
    msgpack_pack_nil(&pk);
  msgpack_pack_array(&pk, t->nargs);
  bool oom = false;
  for (uint32_t i = 0; i < t->nargs; i++) {
    const ray__task_arg_t *a = &t->args[i];
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, a->type);
    if (a->kind == RAY_ARG_ACTOR) { /* [RAY_TYPE_ACTOR, id]: the table says where it lives */
      msgpack_pack_uint64(&pk, a->ref_id);
      continue;
    }
    if (a->kind == RAY_ARG_REF && a->size >= PULL_FROM) { /* stored here: pulled */
      if (*hold == NULL && (*hold = hold_new(cl, t->nargs)) == NULL) oom = true;
      if (!oom && ray__store_pin_ready(&t->rt->store, a->ref_id, &(*hold)->views[i]) != 0)
        oom = true; /* it is pinned already: only memory for the view can fail */
      msgpack_pack_uint64(&pk, a->size);
      continue;
    }
    msgpack_pack_bin(&pk, a->size);
    msgpack_pack_bin_body(&pk, a->data, a->size);
  }
  if (am != NULL) { /* [actor_id, seq, method, restarts, task retries, concurrency, class,
                       serial] */
    msgpack_pack_array(&pk, 8);
    msgpack_pack_uint64(&pk, am->actor_id);
    msgpack_pack_uint64(&pk, am->seq);
    msgpack_pack_int64(&pk, am->method);
    msgpack_pack_uint32(&pk, am->max_restarts);
    msgpack_pack_uint32(&pk, am->max_task_retries);
    msgpack_pack_uint32(&pk, am->max_concurrency);
    pack_cstr(&pk, am->cls);
    msgpack_pack_uint64(&pk, am->serial);
  } else {
    msgpack_pack_nil(&pk);
  }
  pack_handles(cl, &pk, &handles);
  oom = oom || handles.oom;
  ray__free(handles.v);
  if (b->oom || oom) {
    ray__mpbuf_destroy(b);
    if (*hold != NULL) hold_free(*hold);
    *hold = NULL;
    return RAY_ENOMEM;
  }
  return 0;
}

static void send_running(ray__task_t *t);
static bool door_enter(ray__cluster_t *cl);
static void door_leave(ray__cluster_t *cl);

static void send_task(ray__runnable_t *rn) {
  ray__task_t *t = (ray__task_t *)rn;
  int expected = RAY__T_PENDING;
  if (!atomic_compare_exchange_strong(&t->state, &expected, RAY__T_RUNNING)) {
    ray__task_end_t end = {.code = atomic_load(&t->fail_code)}; /* cancelled */
    (void)t->ops->done(t, &end);
    return;
  }
  send_running(t);
}

/* Back from fetch_args (on a worker): its arguments are pinned, or one
 * could not be read (dep_status). */
static void send_fetched(ray__runnable_t *rn) {
  send_running((ray__task_t *)rn);
}

/* Stopping before this thread took it back: the arguments fetch_args
 * pinned are let go (releasing an unpinned view does nothing), and the
 * task does not run, as any task dropped at shutdown. */
static void fetched_drop(ray__runnable_t *rn) {
  ray__task_t *t = (ray__task_t *)rn;
  ray__task_unpin_args(t, t->nargs);
  (void)ray__task_not_run(t, RAY_ESHUTDOWN, 0, 0);
}

/* On a worker: wait for the evicted copies among t's arguments to come
 * back from their owners (this thread may wait; the communication thread,
 * which delivers them, may not), pinned, then back to send_running. */
static void fetch_args(ray__runnable_t *rn) {
  ray__task_t *t = (ray__task_t *)rn;
  ray__cluster_t *cl = t->rt->cluster;
  int why;
  uint32_t pinned = ray__task_pin_args(t, UINT64_MAX, &why);
  if (pinned < t->nargs) {
    ray__task_unpin_args(t, pinned);
    int none = 0;
    if (atomic_compare_exchange_strong(&t->dep_status, &none, why))
      atomic_store(&t->dep_failed, t->args[pinned].ref_id);
  }
  t->rn.run = send_fetched;
  t->rn.drop = fetched_drop;
  queue_for_tick(cl, &cl->to_send, &t->rn);
}

/* t, RUNNING, goes to its rank: its arguments pinned (an evicted copy is
 * fetched again on a worker first), packed, and sent. */
static void send_running(ray__task_t *t) {
  ray__runtime_t *rt = t->rt;
  ray__cluster_t *cl = rt->cluster;
  bool stopping = atomic_load(&rt->stopping);
  int dep = atomic_load(&t->dep_status);
  bool lost = atomic_load(&cl->lost[t->node]); /* this thread marks them: no race with the loss */
  if (stopping || dep != 0 || lost) ray__task_unpin_args(t, t->nargs); /* fetch_args's pins */
  if (stopping) {
    (void)ray__task_not_run(t, RAY_ESHUTDOWN, 0, 0);
    return;
  }
  if (dep != 0) {
    (void)ray__task_not_run(t, RAY_EDEPFAILED, atomic_load(&t->dep_failed), dep);
    return;
  }
  if (lost) {
    ray__task_fail(t, RAY_ENODE, 0, NULL, "%s was placed on rank %d, which was lost", t->name,
                   (int)t->node);
    ray__task_end_t end = {.code = RAY_ENODE};
    (void)t->ops->done(t, &end);
    return;
  }
  int why; /* never waits here: this thread delivers what a fetch brings */
  uint32_t pinned = ray__task_pin_args(t, 0, &why);
  if (pinned < t->nargs) {
    ray__task_unpin_args(t, pinned);
    if (why == RAY_ETIMEDOUT && door_enter(cl)) { /* an evicted copy, asked for: wait on a worker */
      t->rn.run = fetch_args;
      ray__sched_push(&rt->sched, &t->rn);
      door_leave(cl);
      return;
    }
    (void)ray__task_not_run(t, RAY_EDEPFAILED, 0, 0);
    return;
  }
  ray__mpbuf_t b;
  hold_t *hold = NULL; /* its large arguments, for the executor's pulls */
  int rc = pack_task(cl, t, &b, &hold);
  ray__task_unpin_args(t, pinned);
  flight_t *f = rc == 0 ? ray__malloc(sizeof *f) : NULL;
  if (rc == 0 && f == NULL) {
    ray__mpbuf_destroy(&b);
    rc = RAY_ENOMEM;
  }
  if (rc == 0) {
    /* In the table before it goes (the answer may come at once), and
     * queued under mu with the cancel check, so a CANCEL never overtakes
     * its TASK (remote_cancel). */
    f->task_id = t->task_id;
    f->t = t;
    if (hold != NULL) hold_add(cl, hold, t->node, t->task_id); /* until its answer comes */
    uv_mutex_lock(&cl->mu);
    flight_t **p = bucket(cl, t->task_id);
    f->next = *p;
    *p = f;
    rc = send_buf(cl, t->node, &b);
    if (rc == 0 && t->ops == &actor_ops) ((actor_msg_t *)t->owner)->sent = true;
    if (rc == 0) {
      atomic_fetch_add_explicit(&t->rt->remote_tasks_sent, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&cl->inflight[t->node], 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&cl->inflight_all, 1, memory_order_relaxed);
    }
    if (rc == 0 && atomic_load(&t->cancel)) (void)send_cancel(cl, t->node, t->task_id);
    if (rc != 0) f = flight_take(cl, t->task_id, t->node);
    uv_mutex_unlock(&cl->mu);
    if (rc == 0) return; /* the COMPLETE finishes it */
    ray__free(f);
    if (hold != NULL) hold_drop(hold);
  } else if (hold != NULL) {
    hold_free(hold);
  }
  ray__task_fail(t, rc, 0, NULL, "%s could not be sent to rank %d: %s", t->name, (int)t->node,
                 ray_err_name(rc));
  ray__task_end_t end = {.code = rc};
  (void)t->ops->done(t, &end);
}

/* ---- Placement of RAY_NODE_ANY tasks ---- */

/* This rank's load: its tasks submitted and not finished, less those it
 * sent elsewhere (still counted here until their answer comes). */
static int local_load(ray__runtime_t *rt) {
  uint64_t out = ray__counter_sum(&rt->tasks_submitted) - ray__counter_sum(&rt->tasks_finished);
  int64_t load =
      (int64_t)out - atomic_load_explicit(&rt->cluster->inflight_all, memory_order_relaxed);
  return load < 0 ? 0 : load > INT32_MAX ? INT32_MAX : (int)load;
}

/* RAY_NODE_ANY: here while the local pool keeps up (fewer than two tasks a
 * worker waiting or running); else the rank with the least load, as it
 * last reported it plus what we sent it since, if that is less than ours.
 * From inside a task (a worker), always here: nested work stays where its
 * parent runs unless placed. */
static int place_any(ray__runtime_t *rt) {
  int self = atomic_load_explicit(&rt->rank, memory_order_relaxed);
  /* Stopping: the cluster may be going (a call that entered once shutdown
   * began sees the flag, guard.h); the submission fails anyway. */
  if (atomic_load(&rt->stopping)) return self;
  ray__cluster_t *cl = rt->cluster;
  /* From inside a task (a worker, or a host thread running one while it
   * waits): nested work stays with its parent. */
  if (cl == NULL || ray__worker_self() != NULL || ray__sched_running_here()) return self;
  int load = local_load(rt);
  if (load < 2 * (int)rt->cfg.num_workers) return self;
  int best = self, nranks = atomic_load_explicit(&rt->nranks, memory_order_relaxed);
  for (int r = 0; r < nranks; r++) {
    if (r == self || atomic_load_explicit(&cl->lost[r], memory_order_relaxed)) continue;
    int l = atomic_load_explicit(&cl->reported[r], memory_order_relaxed) +
            atomic_load_explicit(&cl->inflight[r], memory_order_relaxed);
    if (l < load) {
      best = r;
      load = l;
    }
  }
  return best;
}

/* ---- The owner: a COMPLETE arrives (communication thread) ---- */

/* Complete pending entry `id` with a small value that arrived from `src`
 * inside an answer, a copy of `data` holding the refs it names
 * (take_refs), if the store has room for it now (an arriving value never
 * makes this thread wait for memory). Returns 0, or why not
 * (ray__entry_error: RAY_ESTOREFULL when there is no room now; take_refs's
 * errors). */
static int land_value(ray__cluster_t *cl, int src, uint64_t id, uint32_t type, const void *data,
                      size_t size) {
  ray__store_t *st = &cl->rt->store;
  ray__entry_t *e = ray__entry_try_new(st, size, type);
  if (e == NULL) return ray__entry_error();
  if (size > 0) memcpy(e->data, data, size);
  int rc = take_refs(cl, src, e); /* the refs inside, borrowed from src */
  if (rc != 0) {
    ray__store_drop(st, e);
    return rc;
  }
  e->id = id;
  ray__store_complete(st, e);
  return 0;
}

/* Fail pending entry `id` with an error chain that arrived, as the error
 * of task `task_id` (0: as it came). Returns its code. */
static int land_error(ray__store_t *st, uint64_t task_id, uint64_t id, int code, const void *data,
                      size_t size) {
  ray_error_t *err = NULL;
  uint64_t cause = 0;
  if (ray__decode_error(data, size, &err, &cause) != 0) err = NULL;
  if (err != NULL && ray_error_code(err) >= 0) { /* a peer's garbage never succeeds */
    ray_error_free(err);
    err = NULL;
    code = RAY_EDECODE;
  }
  if (err != NULL) {
    code = ray_error_code(err);
    if (task_id != 0) ray_error_set_task_id(err, task_id); /* the owner's id, not the runner's */
  }
  if (code >= 0) code = RAY_EDECODE;
  ray__store_fail(st, id, code, err, 0, true);
  ray_error_free(err);
  return code;
}

/* ---- The owner: pulling a large result (communication thread) ---- */

/* The door a runnable passes to reach the scheduler from the
 * communication thread: shut once the runtime starts stopping
 * (ray__cluster_close waits for those inside), so nothing is pushed after
 * the workers are joined. Returns false when shut. */
static bool door_enter(ray__cluster_t *cl) {
  uv_mutex_lock(&cl->mu);
  bool open = !cl->closing;
  if (open) cl->in_task++;
  uv_mutex_unlock(&cl->mu);
  return open;
}

static void door_leave(ray__cluster_t *cl) {
  uv_mutex_lock(&cl->mu);
  if (--cl->in_task == 0 && cl->closing) uv_cond_broadcast(&cl->cv);
  uv_mutex_unlock(&cl->mu);
}

static void arrival_done(ray__cluster_t *cl, struct arrival_s *a, int failed, bool can_send);

/* Every pull has settled: run the task that waited for its arguments; or
 * finish ours and, while the transport runs, tell its executor to let go
 * of what it holds. */
static void unhold_handles(ray__cluster_t *cl, struct held_s **h);

static void pend_done(ray__cluster_t *cl, pend_t *p, bool can_send) {
  unhold_handles(cl, &p->handles);
  if (p->fill) { /* the owner lets go of its view; on_fill's hold on the proxy goes */
    if (can_send) (void)send_control(cl, p->holder, K_RELEASE, &p->task_id);
    ray__store_release(&cl->rt->store, p->task_id);
    ray__free(p);
    return;
  }
  if (p->a != NULL) {
    arrival_done(cl, p->a, p->failed, can_send);
    ray__free(p);
    return;
  }
  if (p->failed != 0) atomic_store(&p->t->fail_code, p->failed);
  if (can_send) (void)send_control(cl, p->holder, K_RELEASE, &p->task_id);
  remote_finish(p->t);
  ray__free(p);
}

/* The pull is over (landed, or failed with `failed`): out of the list, its
 * entry freed if it never landed, and the task's count down. */
static void pull_settle(ray__cluster_t *cl, pull_t *pl, int failed, bool can_send) {
  for (pull_t **q = &cl->pulls; *q != NULL; q = &(*q)->next)
    if (*q == pl) {
      *q = pl->next;
      break;
    }
  if (pl->e != NULL) ray__store_drop(&cl->rt->store, pl->e); /* never entered the table */
  ray__free(pl->copy);
  pend_t *p = pl->p;
  if (failed != 0 && p->failed == 0) p->failed = failed;
  ray__free(pl);
  if (--p->left == 0) pend_done(cl, p, can_send);
}

/* Fail the result a pull was for, with a message saying which, and settle. */
static void pull_fail(ray__cluster_t *cl, pull_t *pl, int code) {
  if (pl->p->a != NULL) { /* an argument: the task is refused (arrival_done) */
    pull_settle(cl, pl, code, true);
    return;
  }
  ray_error_t *err = NULL;
  if (pl->p->fill)
    (void)ray_error_new(&err, code, NULL,
                        "the value of object %llx (%llu bytes) could not be fetched from its "
                        "owner, rank %d: %s",
                        (unsigned long long)pl->id, (unsigned long long)pl->size, pl->p->holder,
                        ray_err_name(code));
  else if (ray_error_new(&err, code, NULL,
                         "result %u of %s (%llu bytes) could not be fetched from rank %d: %s",
                         (unsigned)pl->slot, pl->p->t->name, (unsigned long long)pl->size,
                         pl->p->holder, ray_err_name(code)) == 0)
    ray_error_set_task_id(err, pl->p->t->task_id);
  ray__store_fail(&cl->rt->store, pl->id, code, err, 0, true);
  ray_error_free(err);
  pull_settle(cl, pl, code, true);
}

/* The entry is reserved: ask the executor for every chunk, in order. */
static void pull_request(ray__cluster_t *cl, pull_t *pl) {
  if (atomic_load(&cl->lost[pl->p->holder])) {
    pull_fail(cl, pl, RAY_ENODE);
    return;
  }
  pl->requesting = true;
  pl->chunk = atomic_load(&pull_chunk);
  for (uint64_t off = 0; off < pl->size; off += pl->chunk) {
    uint64_t len = pl->size - off < pl->chunk ? pl->size - off : pl->chunk;
    ray__mpbuf_t b;
    msgpack_packer pk;
    msg_begin(&b, &pk, 5, K_PULL, pl->p->task_id);
    msgpack_pack_uint32(&pk, pl->slot);
    msgpack_pack_uint64(&pk, off);
    msgpack_pack_uint64(&pk, len);
    int rc = send_buf(cl, pl->p->holder, &b);
    if (rc != 0) { /* chunks asked for already are dropped as they come */
      pull_fail(cl, pl, rc);
      return;
    }
  }
}

/* The entry completes the result: the last chunk landed, or the copy. */
static void arrival_landed(struct arrival_s *a, uint32_t slot, ray_ref_t ref);

static void pull_land(ray__cluster_t *cl, pull_t *pl) {
  int rc = take_refs(cl, pl->p->holder, pl->e); /* the refs inside, borrowed from the holder */
  if (rc != 0) {
    pull_fail(cl, pl, rc); /* the entry goes with the pull */
    return;
  }
  ray__entry_t *e = pl->e;
  pl->e = NULL;
  if (pl->p->a == NULL) { /* a result, or a proxy's value: it completes the pending entry */
    e->id = pl->id;
    ray__store_complete(&cl->rt->store, e);
  } else { /* an argument: a new object here, the task's argument */
    e->id = ray__id_next();
    ray__store_insert(&cl->rt->store, e);
    arrival_landed(pl->p->a, pl->slot, (ray_ref_t){e->id, pl->type});
  }
  pull_settle(cl, pl, 0, true);
}

/* The entry is reserved: land a small value's copy, or pull a large one. */
static void pull_go(ray__cluster_t *cl, pull_t *pl) {
  if (pl->copy == NULL) {
    pull_request(cl, pl);
    return;
  }
  memcpy(pl->e->data, pl->copy, pl->size);
  pull_land(cl, pl);
}

/* The reservation ended on a worker (communication thread, its tick). */
static void pull_resume(ray__runnable_t *rn) {
  pull_t *pl = (pull_t *)rn;
  if (pl->e != NULL)
    pull_go(pl->cl, pl);
  else
    pull_fail(pl->cl, pl, pl->err);
}

/* The transport stopped before the tick took it (ray__cluster_stop). */
static void pull_abandon(ray__runnable_t *rn) {
  pull_t *pl = (pull_t *)rn;
  pull_settle(pl->cl, pl, RAY_ESHUTDOWN, false);
}

static void pull_to_tick(pull_t *pl) {
  pl->rn.run = pull_resume;
  pl->rn.drop = pull_abandon;
  queue_for_tick(pl->cl, &pl->cl->to_pull, &pl->rn);
}

/* On a worker: reserve as any put does (spilling, or waiting for frees up
 * to the store's timeout), then back to the communication thread. */
static void pull_reserve(ray__runnable_t *rn) {
  pull_t *pl = (pull_t *)rn;
  pl->e = ray__entry_new(&pl->cl->rt->store, pl->size, pl->type, RAY__READY);
  pl->err = pl->e != NULL ? 0 : ray__entry_error();
  pull_to_tick(pl);
}

/* The workers stopped before one took it. */
static void pull_unreserved(ray__runnable_t *rn) {
  pull_t *pl = (pull_t *)rn;
  pl->err = RAY_ESHUTDOWN;
  pull_to_tick(pl);
}

/* Start a pull: reserve now if there is room, else on a worker. */
static void pull_start(ray__cluster_t *cl, pull_t *pl) {
  ray__runtime_t *rt = cl->rt;
  pl->e = ray__entry_try_new(&rt->store, pl->size, pl->type);
  if (pl->e != NULL) {
    pull_go(cl, pl);
    return;
  }
  int err = ray__entry_error();
  if (err == RAY_ESTOREFULL && pl->size <= rt->store.capacity) { /* no room now */
    if (door_enter(cl)) {
      pl->rn.run = pull_reserve;
      pl->rn.drop = pull_unreserved;
      ray__sched_push(&rt->sched, &pl->rn);
      door_leave(cl);
      return;
    }
    err = RAY_ESHUTDOWN;
  }
  pull_fail(cl, pl, err);
}

/* A DATA from `src`: the body it announces is the next message from there. */
static void on_data(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  if (m->via.array.size != 5 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[4].type != MSGPACK_OBJECT_BOOLEAN) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed DATA from rank %d", src);
    return;
  }
  pull_t *pl = cl->pulls; /* one that asked: a peer cannot settle one still reserving */
  while (pl != NULL && (!pl->requesting || pl->p->holder != src || pl->p->task_id != v[1].via.u64 ||
                        pl->slot != v[2].via.u64))
    pl = pl->next;
  if (!v[4].via.boolean) { /* it no longer holds the value: no body follows */
    if (pl != NULL) pull_fail(cl, pl, RAY_ENOTFOUND);
    return;
  }
  expect_t *x = &cl->expect[src];
  *x = (expect_t){.on = true};
  if (pl == NULL) return;        /* failed meanwhile: the body is dropped */
  if (v[3].via.u64 != pl->got) { /* chunks come in the order asked */
    pull_fail(cl, pl, RAY_EDECODE);
    return;
  }
  uint64_t left = pl->size - pl->got;
  x->pl = pl;
  x->dest = (char *)pl->e->data + pl->got;
  x->len = left < pl->chunk ? left : pl->chunk;
}

/* Where the next message from `src` goes: straight into the entry when it
 * is the body a DATA announced (the transport's on_place). */
static void *on_place(void *arg, int src, size_t len) {
  ray__cluster_t *cl = arg;
  const expect_t *x = &cl->expect[src];
  return x->on && x->pl != NULL && x->len == len ? x->dest : NULL;
}

/* The body a DATA announced: a chunk of a pull (in its entry already when
 * on_place placed it); the last completes the result. */
static void on_body(ray__cluster_t *cl, int src, const void *data, size_t len) {
  expect_t x = cl->expect[src];
  cl->expect[src].on = false;
  pull_t *pl = x.pl;
  if (pl == NULL) return;
  if (len != x.len) {
    pull_fail(cl, pl, RAY_EDECODE);
    return;
  }
  if (data != x.dest) memcpy(x.dest, data, len);
  pl->got += len;
  if (pl->got == pl->size) pull_land(cl, pl);
}

/* Value `slot` lands late under pend (its count held at 1 by the caller
 * until the message is read): a pull of `size` bytes from pend's holder,
 * or with `copy`, a small value waiting for room. `id`: the pending result
 * entry it completes, or 0 for an argument. Errors: RAY_ENOMEM,
 * RAY_EDECODE (a pull of no bytes: a peer's garbage). */
static int pull_add(ray__cluster_t *cl, pend_t *pend, uint32_t slot, uint32_t type, uint64_t id,
                    uint64_t size, const void *copy) {
  if (copy == NULL && size == 0) return RAY_EDECODE; /* nothing would ever come */
  pull_t *pl = ray__calloc(1, sizeof *pl);
  void *bytes = pl != NULL && copy != NULL ? ray__malloc(size > 0 ? size : 1) : NULL;
  if (pl == NULL || (copy != NULL && bytes == NULL)) {
    ray__free(pl);
    return RAY_ENOMEM;
  }
  if (copy != NULL) memcpy(bytes, copy, size);
  *pl = (pull_t){.next = cl->pulls,
                 .cl = cl,
                 .p = pend,
                 .slot = slot,
                 .type = type,
                 .id = id,
                 .size = size,
                 .copy = bytes};
  cl->pulls = pl;
  pend->left++;
  pull_start(cl, pl);
  return 0;
}

/* Result `slot` of task t (answered by `src`) lands late (pull_add), under
 * *pend, made at the first. Errors: RAY_ENOMEM. */
static int land_late(ray__cluster_t *cl, pend_t **pend, ray__task_t *t, uint64_t task_id, int src,
                     uint32_t slot, uint32_t type, uint64_t size, const void *copy) {
  if (*pend == NULL && (*pend = ray__calloc(1, sizeof **pend)) != NULL)
    **pend = (pend_t){.t = t, .task_id = task_id, .holder = src, .left = 1};
  if (*pend == NULL) return RAY_ENOMEM;
  return pull_add(cl, *pend, slot, type, t->returns[slot].id, size, copy);
}

/* Whether an answer's results announce values held for us: for our pulls
 * ([true, type, size]) or until we took the refs inside ([..., true]). */
static bool announces_held(const msgpack_object_array *res) {
  for (uint32_t i = 0; i < res->size; i++) {
    const msgpack_object *r = &res->ptr[i];
    if (r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size < 3 ||
        r->via.array.ptr[0].type != MSGPACK_OBJECT_BOOLEAN || !r->via.array.ptr[0].via.boolean)
      continue;
    if (r->via.array.ptr[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER || r->via.array.size == 4)
      return true;
  }
  return false;
}

/* A COMPLETE from the rank that ran one of our tasks: each result lands
 * (small), is pulled (large) or fails; the task finishes once all did. */
static void on_complete(ray__cluster_t *cl, int src, const msgpack_object *m) {
  if ((m->via.array.size != 4 && m->via.array.size != 5) ||
      m->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      m->via.array.ptr[2].type != MSGPACK_OBJECT_ARRAY ||
      m->via.array.ptr[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed COMPLETE from rank %d", src);
    return;
  }
  uint64_t task_id = m->via.array.ptr[1].via.u64;
  uint64_t load = m->via.array.ptr[3].via.u64; /* the sender's, for placement */
  atomic_store_explicit(&cl->reported[src], load > INT32_MAX ? INT32_MAX : (int)load,
                        memory_order_relaxed);
  const msgpack_object_array *res = &m->via.array.ptr[2].via.array;
  uv_mutex_lock(&cl->mu);
  flight_t *f = flight_take(cl, task_id, src);
  uv_mutex_unlock(&cl->mu);
  if (f == NULL) { /* finished already (a loss, the stop), or not ours: let go of what it holds */
    if (announces_held(res)) (void)send_control(cl, src, K_RELEASE, &task_id);
    return;
  }
  ray__task_t *t = f->t;
  ray__free(f);
  hold_release(cl, src, task_id); /* its arguments: it ran, so they were pulled */
  atomic_fetch_sub_explicit(&cl->inflight[t->node], 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&cl->inflight_all, 1, memory_order_relaxed);
  int failed = 0;
  pend_t *pend = NULL; /* made at the first result to pull */
  held_t handles;      /* adopted before the values that name them land */
  adopt_handles(cl, src, m->via.array.size == 5 ? &m->via.array.ptr[4] : NULL, &handles);
  for (uint32_t i = 0; i < t->nreturns; i++) {
    uint64_t id = t->returns[i].id;
    const msgpack_object *r = i < res->size ? &res->ptr[i] : NULL;
    if (r == NULL || r->type != MSGPACK_OBJECT_ARRAY ||
        (r->via.array.size != 3 && r->via.array.size != 4) ||
        r->via.array.ptr[0].type != MSGPACK_OBJECT_BOOLEAN) {
      failed = RAY_EDECODE;
      ray__task_fail(t, RAY_EDECODE, 0, NULL, "a malformed result of %s from rank %d", t->name,
                     src);
      break;
    }
    const msgpack_object *v = r->via.array.ptr;
    bool ok = v[0].via.boolean && v[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    if (ok && v[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER) { /* held there: pull it */
      int rc = land_late(cl, &pend, t, task_id, src, i, (uint32_t)v[1].via.u64, v[2].via.u64, NULL);
      if (rc != 0) {
        ray__store_fail(&t->rt->store, id, rc, NULL, 0, true);
        failed = rc;
      }
      continue;
    }
    if (v[2].type != MSGPACK_OBJECT_BIN) {
      failed = RAY_EDECODE;
      ray__task_fail(t, RAY_EDECODE, 0, NULL, "a malformed result of %s from rank %d", t->name,
                     src);
      break;
    }
    const void *data = v[2].via.bin.ptr;
    size_t size = v[2].via.bin.size;
    if (ok) { /* inside the answer: small (large ones are pulled), copied */
      uint32_t type = (uint32_t)v[1].via.u64;
      int rc = land_value(cl, src, id, type, data, size);
      if (rc == RAY_ESTOREFULL) /* no room now: wait for it as a pull would */
        rc = land_late(cl, &pend, t, task_id, src, i, type, size, data);
      if (rc != 0) {
        ray__store_fail(&t->rt->store, id, rc, NULL, 0, true);
        failed = rc;
      }
    } else {
      int code = v[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (int)v[1].via.i64 : RAY_EDECODE;
      failed = land_error(&t->rt->store, t->task_id, id, code, data, size);
    }
  }
  if (pend != NULL) { /* the last pull to settle finishes it (and releases) */
    pend_take(cl, &pend->handles, &handles);
    if (failed != 0 && pend->failed == 0) pend->failed = failed;
    if (--pend->left == 0) pend_done(cl, pend, true);
    return;
  }
  unhold(cl, &handles);
  /* Nothing pulled (no memory for it, or a malformed answer): what the
   * executor holds for us goes all the same. */
  if (announces_held(res)) (void)send_control(cl, src, K_RELEASE, &task_id);
  if (failed != 0) atomic_store(&t->fail_code, failed);
  remote_finish(t);
}

/* ---- The executor: a TASK arrives (communication thread) ---- */

/* A task run here for another rank: its results, watched until the last
 * completes, then sent back by the communication thread (send_results;
 * the large ones held for the owner's pulls). */
typedef struct exec_s exec_t;
typedef struct exec_watch_s {
  ray__watch_t w;
  exec_t *x;
} exec_watch_t;
struct exec_s {
  ray__runnable_t rn;
  struct exec_s *next; /* cl->execs */
  ray__cluster_t *cl;
  int src;
  uint64_t task_id;
  uint32_t n;
  atomic_uint left;
  ray_ref_t refs[RAY_MAX_RETURNS];
  exec_watch_t watch[RAY_MAX_RETURNS];
};

static struct exec_s **exec_bucket(ray__cluster_t *cl, int src, uint64_t task_id) {
  return &cl->execs[pair_bucket(src, task_id)];
}

/* Take x out of the table (mu held), if it is there. */
static void exec_unlink(exec_t *x) {
  for (exec_t **p = exec_bucket(x->cl, x->src, x->task_id); *p != NULL; p = &(*p)->next)
    if (*p == x) {
      *p = x->next;
      return;
    }
}

static void exec_free(exec_t *x) {
  uv_mutex_lock(&x->cl->mu);
  exec_unlink(x);
  uv_mutex_unlock(&x->cl->mu);
  ray__store_t *st = &x->cl->rt->store;
  for (uint32_t i = 0; i < x->n; i++) ray__store_release(st, x->refs[i].id);
  ray__free(x);
}

/* The task `task_id` of rank `src` run here, if still known (mu held). */
static exec_t *exec_find(ray__cluster_t *cl, int src, uint64_t task_id) {
  for (exec_t *x = *exec_bucket(cl, src, task_id); x != NULL; x = x->next)
    if (x->src == src && x->task_id == task_id) return x;
  return NULL;
}

/* Pack one failed result, [false, code, error]: `err`'s whole chain
 * encoded (no cause object: the owner cannot read ours), or no bytes when
 * there is none or memory ran out (the owner then has the code alone). */
static void pack_failure(msgpack_packer *pk, const ray_error_t *err, int code) {
  ray__mpbuf_t eb;
  bool have = err != NULL && ray__encode_error(err, 0, &eb) == 0;
  msgpack_pack_array(pk, 3);
  msgpack_pack_false(pk);
  msgpack_pack_int(pk, code);
  msgpack_pack_bin(pk, have ? eb.size : 0);
  if (have) {
    msgpack_pack_bin_body(pk, eb.data, eb.size);
    ray__mpbuf_destroy(&eb);
  }
}

/* Answer task `task_id` of rank `src` with `n` results failed with `code`
 * and the message fmt (one %s: `what`) and this rank: it could not even be
 * submitted here. */
static void refuse(ray__cluster_t *cl, int src, uint64_t task_id, uint32_t n, int code,
                   const char *fmt, const char *what) {
  char msg[256], text[320];
  snprintf(msg, sizeof msg, fmt, what);
  snprintf(text, sizeof text, "%s (rank %d)", msg, atomic_load(&cl->rt->rank));
  ray_error_t *err = NULL;
  if (ray_error_new(&err, code, NULL, "%s", text) == 0) ray_error_set_task_id(err, task_id);
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 4, K_COMPLETE, task_id);
  msgpack_pack_array(&pk, n);
  for (uint32_t i = 0; i < n; i++) pack_failure(&pk, err, code);
  msgpack_pack_uint32(&pk, (uint32_t)local_load(cl->rt));
  ray_error_free(err);
  (void)send_buf(cl, src, &b);
}

/* Pack one result (complete) into pk: [true, type, bytes], or, for a large
 * value, [true, type, size], keeping a view of it in *held for the pulls
 * (returns true); the actor handles it names are added to *handles (the
 * message's table). With `keep`, a value naming refs or handles gets a
 * fourth element, true (*keep set): the sender holds it until the
 * receiver's RELEASE, which comes after the receiver reported its borrows. */
static bool pack_result(msgpack_packer *pk, ray_ref_t ref, ray_buf_t *held, bool *keep,
                        ids_t *handles) {
  ray_buf_t buf;
  int rc = ray_get(ref, 0, &buf);
  int names = rc == 0 ? value_names(buf.type, buf.data, buf.size, handles) : 0;
  if (rc == 0) {
    bool mark = keep != NULL && names != 0;
    if (mark) *keep = true;
    msgpack_pack_array(pk, mark ? 4 : 3);
    msgpack_pack_true(pk);
    msgpack_pack_uint32(pk, buf.type);
    bool large = buf.size >= PULL_FROM;
    if (large)
      msgpack_pack_uint64(pk, buf.size);
    else {
      msgpack_pack_bin(pk, buf.size);
      msgpack_pack_bin_body(pk, buf.data, buf.size);
    }
    if (mark) msgpack_pack_true(pk);
    if (large)
      *held = buf;
    else
      ray_buf_release(&buf);
    return large;
  }
  ray_error_t *err = NULL;
  if (rc == RAY_ETIMEDOUT) /* never: every result is complete */
    ray_error_new(&err, RAY_EDECODE, NULL, "a result was not complete");
  else if (ray_get_error(ref, &err) != 0)
    err = NULL;
  pack_failure(pk, err, err != NULL ? ray_error_code(err) : rc);
  ray_error_free(err);
  return false;
}

static void send_results(ray__runnable_t *rn) {
  exec_t *x = (exec_t *)rn;
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 5, K_COMPLETE, x->task_id);
  msgpack_pack_array(&pk, x->n);
  hold_t *h = NULL; /* the large results, for the owner's pulls, and those naming refs */
  ids_t handles = {0};
  for (uint32_t i = 0; i < x->n; i++) {
    ray_buf_t view = {0};
    bool keep = false;
    if (!pack_result(&pk, x->refs[i], &view, &keep, &handles) && !keep) continue;
    if (h == NULL) h = hold_new(x->cl, x->n);
    if (h != NULL) {
      h->views[i] = view;
      /* Until the owner's RELEASE: the refs inside stay held here meanwhile. */
      if (keep && ray__store_retain(&x->cl->rt->store, x->refs[i].id) == 0)
        h->kept[i] = x->refs[i].id;
    } else { /* no memory: the owner's pull finds nothing and fails; refs may go early */
      if (view.data != NULL) ray_buf_release(&view);
      if (keep)
        ray__log(RAY_LOG_ERROR, "cluster: no memory to hold a result naming refs for rank %d",
                 x->src);
    }
  }
  if (handles.oom) /* what names the ones left out fails to land there: logged */
    ray__log(RAY_LOG_ERROR, "cluster: no memory to list the actor handles of results for rank %d",
             x->src);
  msgpack_pack_uint32(&pk, (uint32_t)local_load(x->cl->rt)); /* for the owner's placement */
  pack_handles(x->cl, &pk, &handles);
  ray__free(handles.v);
  if (h != NULL) hold_add(x->cl, h, x->src, x->task_id); /* before a PULL can come */
  int rc = send_buf(x->cl, x->src, &b);
  if (rc != 0) { /* too large, or no memory: the owner must still hear of it */
    if (h != NULL) hold_drop(h);
    refuse(x->cl, x->src, x->task_id, x->n, rc, "the results could not be sent back: %s",
           ray_err_name(rc));
  }
  exec_free(x);
}

/* A PULL: send the chunk asked for straight from the held value (a result
 * of a task run here, or an argument of one of ours running there), after
 * a DATA saying what it is; or a DATA saying there is no such value
 * (nothing follows). */
static void on_pull(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  if (m->via.array.size != 5 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed PULL from rank %d", src);
    return;
  }
  uint64_t task_id = v[1].via.u64, slot = v[2].via.u64, off = v[3].via.u64, len = v[4].via.u64;
  hold_t *hd = hold_find(cl, src, task_id); /* only this thread frees it */
  const ray_buf_t *h = hd != NULL && !hd->released && slot < hd->n && hd->views[slot].data != NULL
                           ? &hd->views[slot]
                           : NULL;
  bool ok = h != NULL && off <= h->size && len <= h->size - off && len <= INT32_MAX;
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 5, K_DATA, task_id);
  msgpack_pack_uint64(&pk, slot);
  msgpack_pack_uint64(&pk, off);
  if (ok)
    msgpack_pack_true(&pk);
  else
    msgpack_pack_false(&pk);
  if (!ok) {
    (void)send_buf(cl, src, &b);
    return;
  }
  size_t hlen;
  void *head = take_bytes(&b, &hlen);
  ray__mpbuf_destroy(&b);
  if (head == NULL) { /* the owner's pull then waits for the stop: log it */
    ray__log(RAY_LOG_ERROR, "cluster: no memory to answer a pull from rank %d", src);
    return;
  }
  hd->sending++;
  ray__transport_body_t body = {(const char *)h->data + off, (size_t)len, chunk_sent, hd};
  if (ray__transport_send_group(cl->tr, src, head, hlen, 1, &body) == 0)
    atomic_fetch_add_explicit(&cl->rt->remote_bytes_sent, hlen + len, memory_order_relaxed);
}

/* A RELEASE: the owner has what it pulled; the held values go (once MPI
 * has sent the last chunk). */
static void on_release(ray__cluster_t *cl, int src, const msgpack_object *m) {
  if (m->via.array.size != 2 || m->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed RELEASE from rank %d", src);
    return;
  }
  hold_release(cl, src, m->via.array.ptr[1].via.u64);
}

/* ---- Proxies' values: SUB and FILL (communication thread) ---- */

/* A proxy's question at its owner, until the object completes. */
typedef struct sub_s {
  ray__runnable_t rn; /* to_answer once complete */
  ray__watch_t w;     /* holds a reference on the object meanwhile */
  ray__cluster_t *cl;
  int dest;
  uint64_t id;
} sub_t;

/* FILL [17, id, failure, []]: the value of `id` cannot come (`code`). */
static void fill_fail(ray__cluster_t *cl, int dest, uint64_t id, int code) {
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 4, K_FILL, id);
  pack_failure(&pk, NULL, code);
  msgpack_pack_array(&pk, 0); /* no handles */
  (void)send_buf(cl, dest, &b);
}

/* FILL [17, id, result] to the proxy's rank; a large value is held for its
 * pull (keyed by (rank, id): ids are unique on their owner). */
static void fill_send(ray__runnable_t *rn) {
  sub_t *sb = (sub_t *)rn;
  ray__cluster_t *cl = sb->cl;
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 4, K_FILL, sb->id);
  ray_buf_t view = {0};
  hold_t *h = NULL;
  ids_t handles = {0};
  /* No keep: the refs inside stay held by the object itself, which lives
   * until that rank's GONE of it, after its BORROWS on the same pair. */
  if (pack_result(&pk, (ray_ref_t){sb->id, 0}, &view, NULL, &handles)) {
    if ((h = hold_new(cl, 1)) != NULL) {
      h->views[0] = view;
      hold_add(cl, h, sb->dest, sb->id);
    } else {
      ray_buf_release(&view); /* its pull finds nothing and fails */
    }
  }
  if (handles.oom) /* what names the ones left out fails to land there: logged */
    ray__log(RAY_LOG_ERROR, "cluster: no memory to list the actor handles of object %llx",
             (unsigned long long)sb->id);
  pack_handles(cl, &pk, &handles);
  ray__free(handles.v);
  int rc = send_buf(cl, sb->dest, &b);
  if (rc != 0 && h != NULL) hold_drop(h);
  if (rc != 0 && rc != RAY_ENODE) fill_fail(cl, sb->dest, sb->id, rc); /* small: it may go */
  ray__store_release(&cl->rt->store, sb->id);
  ray__free(sb);
}

static void fill_drop(ray__runnable_t *rn) { /* stopping */
  sub_t *sb = (sub_t *)rn;
  ray__store_release(&sb->cl->rt->store, sb->id);
  ray__free(sb);
}

static void sub_notify(ray__watch_t *w, int status) {
  (void)status;
  sub_t *sb = (sub_t *)(void *)((char *)w - offsetof(sub_t, w));
  queue_for_tick(sb->cl, &sb->cl->to_answer, &sb->rn);
}

/* SUB [16, id]: a proxy of our object `id` on `src` wants its value. */
static void on_sub(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  if (m->via.array.size != 2 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      owner_of(v[1].via.u64) != atomic_load(&cl->rt->rank)) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed SUB from rank %d", src);
    return;
  }
  uint64_t id = v[1].via.u64;
  sub_t *sb = ray__calloc(1, sizeof *sb);
  if (sb == NULL) { /* a failure is a small message: it may still go */
    ray__log(RAY_LOG_ERROR, "cluster: no memory to answer rank %d about object %llx", src,
             (unsigned long long)id);
    fill_fail(cl, src, id, RAY_ENOMEM);
    return;
  }
  *sb = (sub_t){.rn = {.run = fill_send, .drop = fill_drop}, .cl = cl, .dest = src, .id = id};
  sb->w.fn = sub_notify;
  int status = 0;
  int rc = ray__store_watch(&cl->rt->store, id, &sb->w, true, &status);
  if (rc == 0) return; /* sub_notify queues it once complete */
  if (rc == 1) {
    fill_send(&sb->rn);
    return;
  }
  ray__free(sb); /* never: a borrowed object stays until its proxies went */
  ray__log(RAY_LOG_ERROR, "cluster: rank %d asks for object %llx, which is gone here", src,
           (unsigned long long)id);
  fill_fail(cl, src, id, RAY_ENOTFOUND);
}

/* FILL [17, id, result, handles] from the owner: the proxy `id`
 * completes (a small value copied, a large one pulled, or the failure),
 * holding the refs and actor handles the value names (borrowed from the
 * owner). A proxy gone already takes nothing. */
static void on_fill(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  const msgpack_object *r = m->via.array.size == 4 ? &v[2] : NULL;
  if (r == NULL || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 3 ||
      r->via.array.ptr[0].type != MSGPACK_OBJECT_BOOLEAN ||
      (r->via.array.ptr[2].type != MSGPACK_OBJECT_BIN &&
       r->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER)) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed FILL from rank %d", src);
    return;
  }
  uint64_t id = v[1].via.u64;
  ray__store_t *st = &cl->rt->store;
  const msgpack_object *f = r->via.array.ptr;
  bool ok = f[0].via.boolean && f[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
  /* Held while its value lands (the pulls' pend holds it till they settle):
   * its GONE cannot then overtake the BORROWS of what the value names. A
   * proxy gone already takes nothing (a large value is let go unpulled). */
  if (ray__store_retain(st, id) != 0) {
    if (ok && f[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
      (void)send_control(cl, src, K_RELEASE, &id);
    return;
  }
  if (!ok) {
    int code = f[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (int)f[1].via.i64 : RAY_EDECODE;
    if (f[2].type == MSGPACK_OBJECT_BIN)
      (void)land_error(st, 0, id, code, f[2].via.bin.ptr, f[2].via.bin.size);
    else
      ray__store_fail(st, id, RAY_EDECODE, NULL, 0, true);
    ray__store_release(st, id);
    return;
  }
  uint32_t type = (uint32_t)f[1].via.u64;
  int rc = 0;
  held_t handles; /* adopted before the value that names them lands */
  adopt_handles(cl, src, &v[3], &handles);
  if (f[2].type == MSGPACK_OBJECT_BIN)
    rc = land_value(cl, src, id, type, f[2].via.bin.ptr, f[2].via.bin.size);
  if (f[2].type == MSGPACK_OBJECT_BIN && rc != RAY_ESTOREFULL) {
    unhold(cl, &handles);
    if (rc != 0) ray__store_fail(st, id, rc, NULL, 0, true);
    ray__store_release(st, id);
    return;
  }
  /* Large (pull it), or small with no room now (wait for room as a pull). */
  pend_t *p = ray__calloc(1, sizeof *p);
  if (p == NULL) {
    unhold(cl, &handles);
    ray__store_fail(st, id, RAY_ENOMEM, NULL, 0, true);
    ray__store_release(st, id);
    if (f[2].type != MSGPACK_OBJECT_BIN) (void)send_control(cl, src, K_RELEASE, &id);
    return;
  }
  *p = (pend_t){.fill = true, .task_id = id, .holder = src, .left = 1};
  pend_take(cl, &p->handles, &handles);
  if (f[2].type == MSGPACK_OBJECT_BIN)
    rc = pull_add(cl, p, 0, type, id, f[2].via.bin.size, f[2].via.bin.ptr);
  else
    rc = pull_add(cl, p, 0, type, id, f[2].via.u64, NULL);
  if (rc != 0) ray__store_fail(st, id, rc, NULL, 0, true);
  if (--p->left == 0) pend_done(cl, p, true);
}

/* ---- Proxies' evicted copies: asked for again ----
 *
 * A proxy's copy is a cache: the store evicts it under memory pressure
 * (memory.c) and its next reader asks for it again through the store's
 * fetch hook. The SUB goes from this thread, so it follows the RELEASE
 * that let go of the previous copy's pull on the same pair of ranks (two
 * holds of one object for one rank would otherwise race); the owner
 * answers with a FILL as for the first, and on_fill lands it in place
 * (ray__store_complete). */
typedef struct refetch_s {
  ray__runnable_t rn; /* to_send */
  ray__cluster_t *cl;
  uint64_t id;
} refetch_t;

/* Held while the SUB goes, so a GONE of the proxy (sent where its last
 * reference goes) comes after it; a proxy gone already asks nothing. */
static void refetch_send(ray__runnable_t *rn) {
  refetch_t *r = (refetch_t *)rn;
  ray__store_t *st = &r->cl->rt->store;
  if (ray__store_retain(st, r->id) == 0) {
    int rc = send_control(r->cl, owner_of(r->id), K_SUB, &r->id); /* RAY_ENODE: lost */
    if (rc != 0) ray__store_fail(st, r->id, rc, NULL, 0, true);   /* ends the fetch */
    ray__store_release(st, r->id);
  }
  ray__free(r);
}

static void refetch_drop(ray__runnable_t *rn) { /* stopping: its readers give up */
  refetch_t *r = (refetch_t *)rn;
  ray__store_fail(&r->cl->rt->store, r->id, RAY_ESHUTDOWN, NULL, 0, true);
  ray__free(r);
}

/* The store's fetch hook (any thread): queue the SUB for this thread. */
static int proxy_fetch(void *arg, uint64_t id) {
  ray__cluster_t *cl = arg;
  refetch_t *r = ray__malloc(sizeof *r);
  if (r == NULL) return RAY_ENOMEM;
  *r = (refetch_t){.rn = {.run = refetch_send, .drop = refetch_drop}, .cl = cl, .id = id};
  queue_for_tick(cl, &cl->to_send, &r->rn);
  return 0;
}

static void drop_results(ray__runnable_t *rn) { /* stopping: the owner fails them itself */
  exec_free((exec_t *)rn);
}

/* One result (or the guard) is complete: the last hands x to a worker. */
static void exec_countdown(exec_t *x) {
  if (atomic_fetch_sub(&x->left, 1) == 1) queue_for_tick(x->cl, &x->cl->to_answer, &x->rn);
}

/* A result's watch, under its shard lock. */
static void exec_notify(ray__watch_t *w, int status) {
  (void)status;
  exec_countdown(((exec_watch_t *)w)->x);
}

/* A msgpack str as a NUL-terminated copy (ray__free it), or NULL (not a
 * str, or no memory). */
static char *str_of(const msgpack_object *o) {
  if (o->type != MSGPACK_OBJECT_STR) return NULL;
  char *p = ray__malloc(o->via.str.size + 1);
  if (p == NULL) return NULL;
  if (o->via.str.size > 0) memcpy(p, o->via.str.ptr, o->via.str.size); /* "" may have no ptr */
  p[o->via.str.size] = '\0';
  return p;
}

static void run_task(ray__cluster_t *cl, int src, const msgpack_object *m);
static void run_named(ray__cluster_t *cl, int src, uint64_t task_id, uint32_t nreturns,
                      const char *fname, const char *tname, const msgpack_object *v,
                      const msgpack_object *actor);

/* A TASK: run it unless the runtime is closing (then refuse it). */
static void on_task(ray__cluster_t *cl, int src, const msgpack_object *m) {
  if (!door_enter(cl)) {
    const msgpack_object *v = m->via.array.ptr;
    if (m->via.array.size >= 8 && v[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        v[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER && v[3].via.u64 <= RAY_MAX_RETURNS)
      refuse(cl, src, v[1].via.u64, (uint32_t)v[3].via.u64, RAY_ESHUTDOWN,
             "the runtime shut down before %s ran", "the task");
    return;
  }
  run_task(cl, src, m);
  door_leave(cl);
}

/* An actor's part of a TASK: [actor_id, seq, method, restarts, task
 * retries, concurrency, class, serial]. */
static bool actor_part_ok(const msgpack_object *o) {
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 8 ||
      o->via.array.ptr[7].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return false;
  const msgpack_object *p = o->via.array.ptr;
  for (int i = 0; i < 6; i++)
    if (i != 2 && p[i].type != MSGPACK_OBJECT_POSITIVE_INTEGER) return false;
  if (p[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER && p[2].type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
    return false;
  return p[6].type == MSGPACK_OBJECT_STR && p[3].via.u64 <= UINT32_MAX &&
         p[4].via.u64 <= UINT32_MAX && p[5].via.u64 <= UINT32_MAX;
}

static void run_task(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  bool is_actor = m->via.array.size == 10 && v[8].type != MSGPACK_OBJECT_NIL;
  if (m->via.array.size != 10 || (is_actor && !actor_part_ok(&v[8])) ||
      v[9].type != MSGPACK_OBJECT_ARRAY || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[2].type != MSGPACK_OBJECT_STR ||
      (v[6].type != MSGPACK_OBJECT_STR && v[6].type != MSGPACK_OBJECT_NIL) ||
      v[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[3].via.u64 > RAY_MAX_RETURNS ||
      v[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[5].type != MSGPACK_OBJECT_BOOLEAN ||
      v[7].type != MSGPACK_OBJECT_ARRAY || v[7].via.array.size > RAY_MAX_ARGS) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed TASK from rank %d", src);
    /* Answered when it says which task it is: its owner must not wait on
     * it, nor hold its arguments for it. */
    if (m->via.array.size >= 4 && v[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        v[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER && v[3].via.u64 <= RAY_MAX_RETURNS)
      refuse(cl, src, v[1].via.u64, (uint32_t)v[3].via.u64, RAY_EDECODE, "a malformed task%s", "");
    return;
  }
  uint64_t task_id = v[1].via.u64;
  uint32_t nreturns = (uint32_t)v[3].via.u64;
  char *fname = str_of(&v[2]);
  char *tname = v[6].type == MSGPACK_OBJECT_NIL ? NULL : str_of(&v[6]);
  if (fname == NULL || (tname == NULL && v[6].type != MSGPACK_OBJECT_NIL)) {
    refuse(cl, src, task_id, nreturns, RAY_ENOMEM, "no memory for a task's names%s", "");
    ray__free(fname);
    ray__free(tname);
    return;
  }
  run_named(cl, src, task_id, nreturns, fname, tname, v, is_actor ? &v[8] : NULL);
  ray__free(fname);
  ray__free(tname);
}

/* A task from another rank whose large arguments are being pulled from
 * its owner: submitted once they all landed (arrival_done), else refused. */
typedef struct arrival_s {
  struct arrival_s *next; /* cl->arrivals, then a stream's waiting list (communication thread) */
  bool cancelled;         /* a CANCEL came meanwhile: refused, never run */
  int src;
  uint64_t task_id; /* 0: an ASKIP's place in a stream (nothing to answer) */
  uint32_t nreturns, nargs;
  ray__func_t *f; /* NULL: an actor's constructor or call */
  char *fname;    /* an actor's: "Class.method" */
  char *tname;    /* NULL: the function's */
  uint32_t max_retries;
  bool retry_on_error;
  /* An actor's constructor (method -1) or call, the seq-th of its stream: */
  const ray_actor_class_t *cls; /* NULL: not known here */
  uint64_t actor_id, seq, serial;
  int64_t method;
  ray_actor_opts_t aopts;
  int failed;                   /* in a stream: run it (0) or refuse it with this code */
  ray_arg_t args[RAY_MAX_ARGS]; /* small: into `bytes`; large: RAY__ARG_STORED once landed */
  char *bytes;                  /* the small ones' copies (the message goes) */
  held_t held;                  /* what the small ones name, until the task holds it */
} arrival_t;

static void stream_arrive(ray__cluster_t *cl, arrival_t *a, bool can_send);

/* Submit the task `task_id` of rank `src` here, and watch its results for
 * the answer (or refuse it). */
static void exec_start(ray__cluster_t *cl, int src, uint64_t task_id, uint32_t nreturns,
                       ray__func_t *f, const char *fname, ray_actor_t actor, uint32_t method,
                       const ray_arg_t *args, uint32_t nargs, const ray_task_opts_t *opts) {
  ray__runtime_t *rt = cl->rt;
  exec_t *x = ray__calloc(1, sizeof *x);
  if (x == NULL) {
    refuse(cl, src, task_id, nreturns, RAY_ENOMEM, "no memory to run %s", fname);
    return;
  }
  x->rn.run = send_results;
  x->rn.drop = drop_results;
  x->cl = cl;
  x->src = src;
  x->task_id = task_id;
  int rc = f != NULL ? ray__task_submit_encoded(rt, f, args, nargs, opts, x->refs)
                     : ray__actors_call_encoded(rt, actor, method, args, nargs, x->refs);
  if (rc != 0) {
    ray__free(x);
    refuse(cl, src, task_id, nreturns, rc, "%s could not be submitted", fname);
    return;
  }
  x->n = nreturns;
  atomic_fetch_add_explicit(&rt->remote_tasks_received, 1, memory_order_relaxed);
  uv_mutex_lock(&cl->mu); /* known to a CANCEL from here on */
  exec_t **b = exec_bucket(cl, src, task_id);
  x->next = *b;
  *b = x;
  uv_mutex_unlock(&cl->mu);
  atomic_init(&x->left, nreturns + 1); /* + 1 until every watch is set */
  for (uint32_t i = 0; i < nreturns; i++) {
    x->watch[i].w.fn = exec_notify;
    x->watch[i].x = x;
    int status = 0;
    /* 1: complete already; never RAY_ENOTFOUND, as we hold the ref. */
    if (ray__store_watch(&rt->store, x->refs[i].id, &x->watch[i].w, false, &status) != 0)
      exec_countdown(x);
  }
  exec_countdown(x); /* the guard */
}

static void arrival_landed(arrival_t *a, uint32_t slot, ray_ref_t ref) {
  a->args[slot].kind = RAY__ARG_STORED;
  a->args[slot].u.ref = ref;
}

/* Its pulls settled: run the task (`failed` 0, and the runtime is not
 * closing), or refuse it; then let the landed arguments go (the task holds
 * its own references). */
static void arrival_free(ray__cluster_t *cl, arrival_t *a) {
  unhold(cl, &a->held);
  for (uint32_t i = 0; i < a->nargs; i++)
    if (a->args[i].kind == RAY__ARG_STORED) ray__store_release(&cl->rt->store, a->args[i].u.ref.id);
  ray__free(a->bytes);
  ray__free(a->tname);
  ray__free(a->fname);
  ray__free(a);
}

static void arrival_done(ray__cluster_t *cl, arrival_t *a, int failed, bool can_send) {
  for (arrival_t **q = &cl->arrivals; *q != NULL; q = &(*q)->next)
    if (*q == a) {
      *q = a->next;
      break;
    }
  if (a->f == NULL) { /* an actor's: in its stream's order */
    if (a->failed == 0) a->failed = a->cancelled ? RAY_ECANCELED : failed;
    stream_arrive(cl, a, can_send);
    return;
  }
  if (a->cancelled) {
    if (can_send)
      refuse(cl, a->src, a->task_id, a->nreturns, RAY_ECANCELED, "%s was cancelled before it ran",
             a->f->name);
  } else if (failed == 0 && door_enter(cl)) {
    ray_task_opts_t opts;
    ray_task_opts_init(&opts);
    opts.max_retries = a->max_retries;
    opts.retry_on_error = a->retry_on_error;
    opts.name = a->tname;
    exec_start(cl, a->src, a->task_id, a->nreturns, a->f, a->f->name, (ray_actor_t){0}, 0, a->args,
               a->nargs, &opts);
    door_leave(cl);
  } else if (can_send) {
    refuse(cl, a->src, a->task_id, a->nreturns, failed != 0 ? failed : RAY_ESHUTDOWN,
           "an argument of %s could not be fetched from its owner", a->f->name);
  }
  arrival_free(cl, a);
}

/* A TASK with large arguments (or an actor's): copy what the message
 * holds, pull the rest from the owner, and run it when they are here. */
static void arrive(ray__cluster_t *cl, int src, uint64_t task_id, uint32_t nreturns, ray__func_t *f,
                   const char *fname, const char *tname, const msgpack_object *v,
                   const arrival_t *actor, const ray_arg_t *args, const uint64_t *pull_size,
                   uint32_t nargs, held_t *held) {
  size_t small = 0;
  for (uint32_t i = 0; i < nargs; i++)
    if (args[i].kind == RAY__ARG_ENCODED) small += args[i].u.bytes.size;
  arrival_t *a = ray__calloc(1, sizeof *a);
  pend_t *p = a != NULL ? ray__calloc(1, sizeof *p) : NULL;
  char *bytes = p != NULL ? ray__malloc(small > 0 ? small : 1) : NULL;
  char *tn = tname != NULL && bytes != NULL ? ray__strdup(tname) : NULL;
  char *fn = actor != NULL && bytes != NULL ? ray__strdup(fname) : NULL;
  if (bytes == NULL || (tname != NULL && tn == NULL) || (actor != NULL && fn == NULL)) {
    ray__free(a);
    ray__free(p);
    ray__free(bytes);
    ray__free(tn);
    /* An actor's stream waits for this call: it stays unanswered (the
     * owner's get is bounded by its timeout); logged. */
    if (actor != NULL)
      ray__log(RAY_LOG_ERROR, "cluster: no memory for %s from rank %d: its actor stalls", fname,
               src);
    unhold(cl, held);
    refuse(cl, src, task_id, nreturns, RAY_ENOMEM, "no memory to take %s's arguments", fname);
    return;
  }
  if (actor != NULL) *a = *actor;
  a->held = *held; /* the arrival's now */
  *held = (held_t){0};
  a->src = src;
  a->task_id = task_id;
  a->nreturns = nreturns;
  a->nargs = nargs;
  a->f = f;
  a->fname = fn;
  a->tname = tn;
  a->max_retries = (uint32_t)v[4].via.u64;
  a->retry_on_error = v[5].via.boolean;
  a->bytes = bytes;
  *p = (pend_t){.a = a, .task_id = task_id, .holder = src, .left = 1};
  a->next = cl->arrivals; /* known to a CANCEL from here on */
  cl->arrivals = a;
  size_t off = 0;
  for (uint32_t i = 0; i < nargs; i++) {
    a->args[i] = args[i]; /* a large one: kind 0 until it lands (arrival_landed) */
    if (args[i].kind != RAY__ARG_ENCODED) continue;
    if (args[i].u.bytes.size > 0) memcpy(bytes + off, args[i].u.bytes.data, args[i].u.bytes.size);
    a->args[i].u.bytes.data = bytes + off;
    off += args[i].u.bytes.size;
  }
  int failed = 0;
  for (uint32_t i = 0; i < nargs && failed == 0; i++)
    if (pull_size[i] != 0) failed = pull_add(cl, p, i, args[i].type, 0, pull_size[i], NULL);
  if (failed != 0 && p->failed == 0) p->failed = failed;
  if (--p->left == 0) pend_done(cl, p, true);
}

/* run_task, its names copied out. */
/* An actor's constructor or call that cannot run: it still takes its
 * place in its stream (refused there, in order). */
static void actor_reject(ray__cluster_t *cl, int src, uint64_t task_id, uint32_t nreturns,
                         const arrival_t *tmpl, const char *fname, int code) {
  arrival_t *a = ray__calloc(1, sizeof *a);
  char *fn = a != NULL ? ray__strdup(fname) : NULL;
  if (fn == NULL) {
    ray__free(a);
    ray__log(RAY_LOG_ERROR, "cluster: no memory for %s from rank %d: its actor stalls", fname, src);
    refuse(cl, src, task_id, nreturns, code, "%s could not run here", fname);
    return;
  }
  *a = *tmpl;
  a->src = src;
  a->task_id = task_id;
  a->nreturns = nreturns;
  a->fname = fn;
  a->failed = code;
  stream_arrive(cl, a, true);
}

static void run_named(ray__cluster_t *cl, int src, uint64_t task_id, uint32_t nreturns,
                      const char *fname, const char *tname, const msgpack_object *v,
                      const msgpack_object *actor) {
  ray__runtime_t *rt = cl->rt;
  ray__func_t *f = NULL;
  arrival_t tmpl; /* an actor's part */
  memset(&tmpl, 0, sizeof tmpl);
  if (actor != NULL) {
    const msgpack_object *p = actor->via.array.ptr;
    tmpl.actor_id = p[0].via.u64;
    tmpl.seq = p[1].via.u64;
    tmpl.serial = p[7].via.u64;
    tmpl.method = p[2].type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? -1 : (int64_t)p[2].via.u64;
    ray_actor_opts_init(&tmpl.aopts);
    tmpl.aopts.max_restarts = (uint32_t)p[3].via.u64;
    tmpl.aopts.max_task_retries = (uint32_t)p[4].via.u64;
    tmpl.aopts.max_concurrency = (uint32_t)p[5].via.u64;
    char *cname = str_of(&p[6]);
    tmpl.cls = cname != NULL ? ray__actors_class_named(rt, cname) : NULL;
    ray__free(cname);
    int code = 0;
    if (tmpl.cls == NULL && tmpl.method < 0)
      code = RAY_ENOTFOUND; /* a class this rank does not know */
    else if (tmpl.method >= 0 && tmpl.cls != NULL &&
             ((uint64_t)tmpl.method >= tmpl.cls->num_methods ||
              tmpl.cls->methods[tmpl.method].num_returns != nreturns))
      code = RAY_EINVAL;
    if (code != 0) {
      actor_reject(cl, src, task_id, nreturns, &tmpl, fname, code);
      return;
    }
  } else {
    f = ray__function_find(&rt->funcs, fname);
    if (f == NULL) {
      refuse(cl, src, task_id, nreturns, RAY_ENOTFOUND, "function %s is not registered here",
             fname);
      return;
    }
    if (f->nreturns != nreturns) {
      refuse(cl, src, task_id, nreturns, RAY_EINVAL,
             "function %s has another number of returns here", fname);
      return;
    }
  }
  /* Each argument is [type, bytes], or [type, size] for a large one its
   * owner holds for us to pull. */
  ray_arg_t args[RAY_MAX_ARGS];
  uint64_t pull_size[RAY_MAX_ARGS] = {0};
  const msgpack_object_array *av = &v[7].via.array;
  bool pull = false;
  for (uint32_t i = 0; i < av->size; i++) {
    const msgpack_object *a = &av->ptr[i];
    const msgpack_object *b =
        a->type == MSGPACK_OBJECT_ARRAY && a->via.array.size == 2 ? &a->via.array.ptr[1] : NULL;
    if (b == NULL || a->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        (b->type != MSGPACK_OBJECT_BIN && b->type != MSGPACK_OBJECT_POSITIVE_INTEGER)) {
      if (actor != NULL)
        actor_reject(cl, src, task_id, nreturns, &tmpl, fname, RAY_EDECODE);
      else
        refuse(cl, src, task_id, nreturns, RAY_EDECODE, "a malformed argument of %s", fname);
      return;
    }
    args[i].type = (uint32_t)a->via.array.ptr[0].via.u64;
    if (args[i].type == RAY_TYPE_ACTOR) { /* a handle: adopted below, from the table */
      if (b->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (actor != NULL)
          actor_reject(cl, src, task_id, nreturns, &tmpl, fname, RAY_EDECODE);
        else
          refuse(cl, src, task_id, nreturns, RAY_EDECODE, "a malformed argument of %s", fname);
        return;
      }
      args[i].kind = RAY_ARG_ACTOR;
      args[i].u.i64 = (int64_t)b->via.u64;
      continue;
    }
    if (b->type == MSGPACK_OBJECT_POSITIVE_INTEGER) { /* pulled: filled in when it lands */
      args[i].kind = 0;
      pull_size[i] = b->via.u64;
      if (pull_size[i] == 0) {
        if (actor != NULL)
          actor_reject(cl, src, task_id, nreturns, &tmpl, fname, RAY_EDECODE);
        else
          refuse(cl, src, task_id, nreturns, RAY_EDECODE, "a malformed argument of %s", fname);
        return;
      }
      pull = true;
      continue;
    }
    args[i].kind = RAY__ARG_ENCODED;
    args[i].u.bytes.data = b->via.bin.ptr;
    args[i].u.bytes.size = b->via.bin.size;
  }
  /* The refs they name are held from now on (borrowed: reported to src
   * before the answer that lets src drop its own hold). */
  held_t held, handles;
  adopt_handles(cl, src, &v[9], &handles); /* the handles first: the values name them */
  int rc = borrow_args(cl, src, args, av->size, &held);
  if (rc == 0) rc = held_merge(cl, &held, &handles);
  unhold(cl, &handles);
  if (rc != 0) {
    unhold(cl, &held);
    if (actor != NULL)
      actor_reject(cl, src, task_id, nreturns, &tmpl, fname, rc);
    else
      refuse(cl, src, task_id, nreturns, rc, "an argument of %s names a ref that cannot be held",
             fname);
    return;
  }
  if (pull || actor != NULL) { /* an actor's always: it may wait for its turn */
    arrive(cl, src, task_id, nreturns, f, fname, tname, v, actor != NULL ? &tmpl : NULL, args,
           pull_size, av->size, &held);
    return;
  }
  ray_task_opts_t opts;
  ray_task_opts_init(&opts);
  opts.max_retries = (uint32_t)v[4].via.u64;
  opts.retry_on_error = v[5].via.boolean;
  opts.name = tname; /* NULL (nil): the function's */
  exec_start(cl, src, task_id, nreturns, f, f->name, (ray_actor_t){0}, 0, args, av->size, &opts);
  unhold(cl, &held); /* the task holds them itself now (or was refused) */
}

/* ---- The executor: actors run here for other ranks (communication thread) ---- */

/* The constructor and calls one rank sent for one actor, run here in the
 * order that rank numbered them (they may arrive, or finish pulling their
 * arguments, in another). */
typedef struct stream_s {
  struct stream_s *next; /* cl->streams */
  int src;
  bool owner;         /* src made the actor (its constructor is call 0); else src's stub was
                         adopted (by name, or a handle passed there): its calls start at 0
                         once the owner's made it */
  uint64_t actor_id;  /* the owner's id: the actor here has its own */
  uint64_t serial;    /* the stub's life on src (0: the owner's first) */
  ray_actor_t local;  /* the actor here (0: not made yet, or it could not be) */
  int create_failed;  /* why it could not be made */
  uint64_t next_seq;  /* the next to run */
  arrival_t *waiting; /* those that came early, by seq */
  int kill;           /* a kill that came before the constructor ran: 1 restart, 2 for good */
  uint64_t drop_at;   /* the owner's last handle went after this many (UINT64_MAX: not yet) */
} stream_t;

/* An actor living here that other ranks call: made here for its owner
 * (by the owner's stream), or this rank's own once a handle of it
 * travelled. It holds one handle on the local actor while its owner's
 * stream runs (`owned`) or any life of a stub elsewhere is listed: an
 * adopted stub's life is listed by its BORROWS and ends when its stream
 * has run the calls its ADROP counted; an end may come before the BORROWS
 * (on another pair of ranks), kept as a tombstone that the BORROWS
 * cancels (as lent_note counts proxies). The communication thread's. */
typedef struct homed_s {
  struct homed_s *next; /* cl->homed */
  uint64_t actor_id;
  bool made;         /* its constructor ran here (or could not), or it is ours */
  bool owned;        /* its owner's stream has not let go */
  ray_actor_t local; /* 0: it could not be made, or it is gone */
  int failed;
  lives_t lives;
} homed_t;

static homed_t *homed_find(ray__cluster_t *cl, uint64_t actor_id) {
  for (homed_t *h = cl->homed; h != NULL; h = h->next)
    if (h->actor_id == actor_id) return h;
  return NULL;
}

/* Out of the list, its handle let go. */
static void homed_free(ray__cluster_t *cl, homed_t *h) {
  for (homed_t **p = &cl->homed; *p != NULL; p = &(*p)->next)
    if (*p == h) {
      *p = h->next;
      break;
    }
  if (h->local.id != 0) (void)ray_actor_release(h->local);
  ray__free(h->lives.v);
  ray__free(h);
}

static void homed_settle(ray__cluster_t *cl, homed_t *h) {
  if (!h->owned && h->lives.n == 0) homed_free(cl, h);
}

/* The record of actor_id, made if there is none (NULL: no memory). One of
 * ours holds a handle of its own from the start; another rank's waits for
 * its owner's constructor (homed_made). */
static homed_t *homed_get(ray__cluster_t *cl, uint64_t actor_id) {
  homed_t *h = homed_find(cl, actor_id);
  if (h != NULL) return h;
  if ((h = ray__calloc(1, sizeof *h)) == NULL) return NULL;
  h->actor_id = actor_id;
  if (owner_of(actor_id) == atomic_load(&cl->rt->rank)) {
    h->made = true;
    h->local.id = actor_id;
    if (ray_actor_retain(h->local) != 0) { /* gone already: its calls fail */
      h->local.id = 0;
      h->failed = RAY_EACTORDIED;
    }
  }
  h->next = cl->homed;
  cl->homed = h;
  return h;
}

static void lives_note(ray__cluster_t *cl, uint64_t actor_id, int rank, uint64_t serial,
                       bool ended) {
  homed_t *h = homed_get(cl, actor_id);
  if (h == NULL) {
    ray__log(RAY_LOG_ERROR, "cluster: no memory to count a handle of actor %llx",
             (unsigned long long)actor_id);
    return;
  }
  if (lives_count(&h->lives, rank, serial, ended) != 0) /* the actor may go early: logged */
    ray__log(RAY_LOG_ERROR, "cluster: no memory to count a handle of actor %llx",
             (unsigned long long)actor_id);
  homed_settle(cl, h);
}

/* A rank is lost: its stubs' lives will never end here. */
static void lives_forget(ray__cluster_t *cl, int rank) {
  for (homed_t *h = cl->homed, *next; h != NULL; h = next) {
    next = h->next;
    lives_drop_rank(&h->lives, rank);
    homed_settle(cl, h);
  }
}

/* The actor here that another rank's stream calls: made for its owner by
 * the owner's stream (homed), or this rank's own (its id is its local
 * one). Returns false while the owner's constructor has not run here. */
static bool attached(ray__cluster_t *cl, uint64_t actor_id, ray_actor_t *local, int *failed) {
  *failed = 0;
  homed_t *h = homed_find(cl, actor_id);
  if (h != NULL && h->made) {
    *local = h->local;
    *failed = h->failed;
    return true;
  }
  if (owner_of(actor_id) == atomic_load(&cl->rt->rank)) {
    local->id = actor_id;
    return true;
  }
  return false;
}

static stream_t *stream_get(ray__cluster_t *cl, int src, uint64_t actor_id, uint64_t serial) {
  for (stream_t *s = cl->streams; s != NULL; s = s->next)
    if (s->src == src && s->actor_id == actor_id && s->serial == serial) return s;
  stream_t *s = ray__calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->src = src;
  /* Ids name the rank that made them; its first stub is life 0. */
  s->owner = src == owner_of(actor_id) && serial == 0;
  s->actor_id = actor_id;
  s->serial = serial;
  s->drop_at = UINT64_MAX;
  s->next = cl->streams;
  cl->streams = s;
  return s;
}

/* Out of the table; its actor's handle here goes (the actor ends once its
 * calls have run, unless named or detached here, which it is not). */
static void stream_free(ray__cluster_t *cl, stream_t *s) {
  for (stream_t **p = &cl->streams; *p != NULL; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      break;
    }
  while (s->waiting != NULL) {
    arrival_t *a = s->waiting;
    s->waiting = a->next;
    arrival_free(cl, a);
  }
  homed_t *h = homed_find(cl, s->actor_id);
  if (s->owner &&
      h != NULL) { /* its owner let go: the actor goes once no stub elsewhere holds it */
    h->owned = false;
    homed_settle(cl, h);
  } else if (s->owner && s->local.id != 0) { /* never told homed_made (no memory) */
    (void)ray_actor_release(s->local);
  } else if (!s->owner) { /* an adopted stub's life ended: its calls ran */
    lives_note(cl, s->actor_id, s->src, s->serial, true);
  }
  ray__free(s);
}

static void stream_flush(ray__cluster_t *cl, stream_t *s, bool can_send);

/* The owner's constructor ran (or could not): the other ranks' streams of
 * the actor may go on. */
static void homed_made(ray__cluster_t *cl, stream_t *os, bool can_send) {
  homed_t *h = homed_get(cl, os->actor_id);
  if (h == NULL) {
    ray__log(RAY_LOG_ERROR, "cluster: no memory: other ranks' calls of an actor stall");
    return;
  }
  h->made = true;
  h->owned = true;
  h->local = os->local; /* its handle is the record's from now on (the stream calls a copy) */
  h->failed = os->create_failed;
  for (bool again = true; again;) { /* a flush may free a stream: look again from the start */
    again = false;
    for (stream_t *s = cl->streams; s != NULL; s = s->next)
      if (!s->owner && s->actor_id == os->actor_id && s->waiting != NULL &&
          s->waiting->seq == s->next_seq) {
        stream_flush(cl, s, can_send);
        again = true;
        break;
      }
  }
}

/* COMPLETE with no results: a constructor's answer. */
static void answer_none(ray__cluster_t *cl, int src, uint64_t task_id) {
  ray__mpbuf_t b;
  msgpack_packer pk;
  msg_begin(&b, &pk, 4, K_COMPLETE, task_id);
  msgpack_pack_array(&pk, 0);
  msgpack_pack_uint32(&pk, (uint32_t)local_load(cl->rt));
  (void)send_buf(cl, src, &b);
}

/* Run `a`, the next of stream s: make the actor, or call it; or refuse. */
static void stream_run(ray__cluster_t *cl, stream_t *s, arrival_t *a, bool can_send) {
  bool answer = can_send && a->task_id != 0;
  int rc = a->failed;
  if (a->method < 0) { /* the constructor */
    if (rc == 0 && door_enter(cl)) {
      rc = ray__actors_create_encoded(cl->rt, a->cls, a->args, a->nargs, &a->aopts, &s->local);
      door_leave(cl);
    } else if (rc == 0) {
      rc = RAY_ESHUTDOWN;
    }
    if (rc != 0) {
      s->local.id = 0;
      s->create_failed = rc;
      ray__log(RAY_LOG_WARN, "cluster: %s from rank %d could not make its actor: %s", a->fname,
               a->src, ray_err_name(rc));
    } else if (s->kill != 0) {
      (void)ray_actor_kill(s->local, s->kill == 2);
    }
    if (answer) answer_none(cl, a->src, a->task_id);
    if (s->owner) homed_made(cl, s, can_send);
    return;
  }
  ray_actor_t local = s->local;
  if (!s->owner) { /* found by name: the owner's actor (stream_flush waited for it) */
    int failed = 0;
    if (!attached(cl, s->actor_id, &local, &failed)) local.id = 0;
    if (failed != 0) s->create_failed = failed;
  }
  if (rc == 0 && local.id == 0) rc = RAY_EACTORDIED;
  if (rc == 0 && !door_enter(cl)) rc = RAY_ESHUTDOWN;
  if (rc != 0) {
    if (answer) {
      char what[200];
      snprintf(what, sizeof what, "%s (its actor: %s)", a->fname,
               s->create_failed != 0 ? ray_err_name(s->create_failed) : "made");
      refuse(cl, a->src, a->task_id, a->nreturns, rc, "%s could not run here", what);
    }
    return;
  }
  exec_start(cl, a->src, a->task_id, a->nreturns, NULL, a->fname, local, (uint32_t)a->method,
             a->args, a->nargs, NULL);
  door_leave(cl);
}

/* Run what is next in s, in order; then let it go if its owner did. */
static void stream_flush(ray__cluster_t *cl, stream_t *s, bool can_send) {
  /* Another rank's calls wait until the owner's constructor ran here
   * (homed_made flushes them then). */
  ray_actor_t local;
  int failed;
  if (!s->owner && !attached(cl, s->actor_id, &local, &failed)) {
    /* A life that ended having made no call more needs no actor to end. */
    if (s->waiting == NULL && s->next_seq >= s->drop_at) stream_free(cl, s);
    return;
  }
  while (s->waiting != NULL && s->waiting->seq == s->next_seq) {
    arrival_t *a = s->waiting;
    s->waiting = a->next;
    stream_run(cl, s, a, can_send);
    arrival_free(cl, a);
    s->next_seq++;
  }
  if (s->next_seq >= s->drop_at) stream_free(cl, s);
}

/* An actor's constructor or call is ready (or refused: a->failed): into
 * its stream, in order. */
static void stream_arrive(ray__cluster_t *cl, arrival_t *a, bool can_send) {
  stream_t *s = stream_get(cl, a->src, a->actor_id, a->serial);
  if (s == NULL || a->seq < s->next_seq) {
    ray__log(RAY_LOG_ERROR, "cluster: %s from rank %d: %s", a->fname, a->src,
             s == NULL ? "no memory for its actor's stream" : "a call number seen already");
    if (can_send && a->task_id != 0)
      refuse(cl, a->src, a->task_id, a->nreturns, s == NULL ? RAY_ENOMEM : RAY_EINVAL,
             "%s could not run here", a->fname);
    arrival_free(cl, a);
    return;
  }
  arrival_t **p = &s->waiting;
  while (*p != NULL && (*p)->seq < a->seq) p = &(*p)->next;
  a->next = *p;
  *p = a;
  stream_flush(cl, s, can_send);
}

/* AKILL [9, actor_id, no_restart]: kill it here (or once it is made). */
static void on_akill(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  if (m->via.array.size != 3 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed AKILL from rank %d", src);
    return;
  }
  uint64_t id = v[1].via.u64;
  bool no_restart = v[2].via.u64 != 0;
  ray_actor_t local;
  int failed;
  if (attached(cl, id, &local, &failed)) { /* made (or not: nothing to kill) */
    if (local.id != 0) (void)ray_actor_kill(local, no_restart);
    return;
  }
  stream_t *s = stream_get(cl, owner_of(id), id, 0); /* the owner's, whoever kills */
  if (s == NULL) {
    ray__log(RAY_LOG_ERROR, "cluster: no memory for a kill from rank %d", src);
    return;
  }
  if (s->next_seq == 0 && (no_restart || s->kill == 0)) s->kill = no_restart ? 2 : 1;
}

/* ADROP [10, actor_id, ncalls, serial]: the last handle of that stub's
 * life on src went after ncalls (the constructor included): the stream
 * ends once they have run (the owner's first life: the actor goes then,
 * unless a stub elsewhere holds it; another: that life ends). */
static void on_adrop(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  if (m->via.array.size != 4 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed ADROP from rank %d", src);
    return;
  }
  stream_t *s = stream_get(cl, src, v[1].via.u64, v[3].via.u64);
  if (s == NULL) {
    ray__log(RAY_LOG_ERROR, "cluster: no memory for a release from rank %d", src);
    return;
  }
  s->drop_at = v[2].via.u64;
  stream_flush(cl, s, true);
}

/* ASKIP [11, actor_id, seq, code, serial]: call seq of that stub's life
 * never left its rank (it failed there): the calls after it must not wait
 * for it. */
static void on_askip(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  if (m->via.array.size != 5 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      (v[3].type != MSGPACK_OBJECT_NEGATIVE_INTEGER &&
       v[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) ||
      v[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed ASKIP from rank %d", src);
    return;
  }
  arrival_t tmpl;
  memset(&tmpl, 0, sizeof tmpl);
  tmpl.actor_id = v[1].via.u64;
  tmpl.seq = v[2].via.u64;
  tmpl.serial = v[4].via.u64;
  /* Call 0 of the stub that made the actor is its constructor; an adopted
   * stub's calls are all method calls. */
  bool ctor = tmpl.seq == 0 && tmpl.serial == 0 && src == owner_of(tmpl.actor_id);
  tmpl.method = ctor ? -1 : 0;
  int code = (int)v[3].via.i64;
  actor_reject(cl, src, 0, 0, &tmpl, "a call that never left its owner",
               code != 0 ? code : RAY_ECANCELED);
}

/* A CANCEL from the owner of a task sent here: one still pulling its
 * arguments is refused with RAY_ECANCELED once they settled (never run);
 * one submitted is cancelled as ray_cancel does (its results go back as
 * usual; one retained, the ref outlives a send_results racing with us). */
static void on_cancel(ray__cluster_t *cl, int src, const msgpack_object *m) {
  if (m->via.array.size != 2 || m->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed CANCEL from rank %d", src);
    return;
  }
  uint64_t task_id = m->via.array.ptr[1].via.u64;
  ray_ref_t ref = {0, 0};
  for (arrival_t *a = cl->arrivals; a != NULL; a = a->next)
    if (a->src == src && a->task_id == task_id) { /* still pulling its arguments */
      a->cancelled = true;
      return;
    }
  uv_mutex_lock(&cl->mu);
  exec_t *x = exec_find(cl, src, task_id);
  if (x != NULL) {
    ref = x->refs[0];
    if (ray__store_retain(&cl->rt->store, ref.id) != 0) ref.id = 0;
  }
  uv_mutex_unlock(&cl->mu);
  if (ref.id == 0) return; /* finished and answered already */
  (void)ray_cancel(ref);   /* RAY_EFINISHED when it just finished: nothing to do */
  ray__store_release(&cl->rt->store, ref.id);
}

/* ---- A lost rank (communication thread) ---- */

/* Rank `rank` is lost (MPI failed a message with it; Open MPI 4.1 has no
 * fault tolerance, so it is not coming back): the tasks we sent there and
 * the values we were pulling from there fail with RAY_ENODE; from now on
 * nothing is placed or sent there (send_task, pull_request, place_any).
 * Its END is not awaited at the stop (the transport counts it). */
static void on_lost(void *arg, int rank) {
  ray__cluster_t *cl = arg;
  if (atomic_exchange(&cl->lost[rank], true)) return;
  flight_t *gone = NULL;
  uv_mutex_lock(&cl->mu);
  for (unsigned b = 0; b < FLIGHT_BUCKETS; b++)
    for (flight_t **p = &cl->flights[b]; *p != NULL;) {
      flight_t *f = *p;
      if (f->t->node != rank) {
        p = &f->next;
        continue;
      }
      *p = f->next;
      f->next = gone;
      gone = f;
    }
  uv_mutex_unlock(&cl->mu);
  while (gone != NULL) {
    flight_t *f = gone;
    gone = f->next;
    ray__task_t *t = f->t;
    ray__free(f);
    atomic_fetch_sub_explicit(&cl->inflight[rank], 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&cl->inflight_all, 1, memory_order_relaxed);
    ray__task_fail(t, RAY_ENODE, 0, NULL, "rank %d, where %s ran, was lost", rank, t->name);
    ray__task_end_t end = {.code = RAY_ENODE};
    (void)t->ops->done(t, &end);
  }
  /* Pulls that asked it fail; one still reserving fails when it would ask
   * (pull_request sees the loss). */
  for (pull_t *pl = cl->pulls, *next; pl != NULL; pl = next) {
    next = pl->next;
    if (pl->requesting && pl->p->holder == rank) pull_fail(cl, pl, RAY_ENODE);
  }
  cl->expect[rank].pl = NULL; /* a body still on its way is dropped, not read as a message */
  lent_forget(cl, rank);      /* its proxies will never say they went */
  lives_forget(cl, rank);     /* nor its actor stubs */
  /* Proxies of its objects never get their values. */
  ray__store_fail_proxies_of(&cl->rt->store, (unsigned)rank, RAY_ENODE);
  /* Nobody pulls what we hold for it any more. */
  for (unsigned b = 0; b < FLIGHT_BUCKETS; b++)
    for (hold_t *h = cl->holds[b], *next; h != NULL; h = next) {
      next = h->next;
      if (h->peer == rank) hold_release(cl, rank, h->task_id);
    }
  uv_mutex_lock(&cl->mu); /* an SPMD shutdown waiting for it waits no more */
  uv_cond_broadcast(&cl->cv);
  uv_mutex_unlock(&cl->mu);
  ray__log(RAY_LOG_ERROR, "cluster: rank %d is lost: its work failed with RAY_ENODE", rank);
}

/* ---- The communication thread's own work ---- */

/* Run (or, stopping, drop) every runnable of a list, oldest first. */
static void run_list(ray__runnable_t *rn, bool drop) {
  ray__runnable_t *rev = NULL; /* the list is newest first: turn it */
  while (rn != NULL) {
    ray__runnable_t *next = rn->next;
    rn->next = rev;
    rev = rn;
    rn = next;
  }
  while (rev != NULL) {
    ray__runnable_t *next = rev->next;
    if (drop)
      rev->drop(rev);
    else
      rev->run(rev);
    rev = next;
  }
}

/* The tick: answer what ran, pull what has room now, send what is ready. */
static bool on_tick(void *arg) {
  ray__cluster_t *cl = arg;
  int lose = atomic_exchange(&cl->lose_asked, 0);
  if (lose > 0) on_lost(cl, lose - 1);
  uv_mutex_lock(&cl->qmu);
  ray__runnable_t *send = cl->to_send, *answer = cl->to_answer, *pull = cl->to_pull;
  cl->to_send = cl->to_answer = cl->to_pull = NULL;
  uv_mutex_unlock(&cl->qmu);
  run_list(answer, false);
  run_list(pull, false);
  run_list(send, false);
  return send != NULL || answer != NULL || pull != NULL;
}

/* ---- Receiving (communication thread) ---- */

/* SHUTDOWN: only the driver stops the job. */
static void on_shutdown(ray__cluster_t *cl, int src, const msgpack_object *m) {
  (void)m;
  if (src != 0) return;
  uv_mutex_lock(&cl->mu);
  cl->stop_asked = true;
  uv_cond_broadcast(&cl->cv);
  uv_mutex_unlock(&cl->mu);
}

/* DONE: one more rank's program is done (SPMD; rank 0 counts). */
static void on_done(ray__cluster_t *cl, int src, const msgpack_object *m) {
  (void)src;
  (void)m;
  uv_mutex_lock(&cl->mu);
  cl->dones++;
  uv_cond_broadcast(&cl->cv);
  uv_mutex_unlock(&cl->mu);
}

/* ACK: one more rank confirmed the stop. */
static void on_ack(ray__cluster_t *cl, int src, const msgpack_object *m) {
  (void)src;
  (void)m;
  uv_mutex_lock(&cl->mu);
  cl->acks++;
  uv_cond_broadcast(&cl->cv);
  uv_mutex_unlock(&cl->mu);
}

typedef void (*handler_fn)(ray__cluster_t *cl, int src, const msgpack_object *m);
static const handler_fn handlers[] = {
    [K_TASK] = on_task,   [K_COMPLETE] = on_complete, [K_SHUTDOWN] = on_shutdown,
    [K_ACK] = on_ack,     [K_CANCEL] = on_cancel,     [K_PULL] = on_pull,
    [K_DATA] = on_data,   [K_RELEASE] = on_release,   [K_AKILL] = on_akill,
    [K_ADROP] = on_adrop, [K_ASKIP] = on_askip,       [K_DONE] = on_done,
    [K_NAME] = on_name,   [K_NAMED] = on_named,       [K_BORROWS] = on_borrows,
    [K_SUB] = on_sub,     [K_FILL] = on_fill,         [K_GONE] = on_gone,
};

static bool on_recv(void *arg, int src, void *data, size_t len) {
  ray__cluster_t *cl = arg;
  atomic_fetch_add_explicit(&cl->rt->remote_bytes_received, len, memory_order_relaxed);
  if (cl->expect[src].on) { /* raw bytes: the body a DATA announced */
    on_body(cl, src, data, len);
    return false;
  }
  msgpack_unpacked u;
  if (ray__mp_decode(data, len, &u) != 0) {
    ray__log(RAY_LOG_ERROR, "cluster: an undecodable message from rank %d", src);
    return false;
  }
  const msgpack_object *m = &u.data;
  if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.size == 0 ||
      m->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed message from rank %d", src);
    msgpack_unpacked_destroy(&u);
    return false;
  }
  uint64_t kind = m->via.array.ptr[0].via.u64;
  if (kind < sizeof handlers / sizeof handlers[0] && handlers[kind] != NULL)
    handlers[kind](cl, src, m);
  else
    ray__log(RAY_LOG_ERROR, "cluster: a message of unknown kind from rank %d", src);
  msgpack_unpacked_destroy(&u); /* the zone only: bins point into `data` */
  return false;
}

/* ---- Start-up: the same functions on every rank ---- */

/* FNV-1a over a function's name, number of returns and their types. */
static uint64_t fn_hash(const ray__func_t *f) {
  uint64_t h = 1469598103934665603ull;
  for (const char *p = f->name; *p != '\0'; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull; /* the name's end */
  h = (h ^ f->nreturns) * 1099511628211ull;
  for (uint32_t i = 0; i < f->nreturns; i++) h = (h ^ f->types[i]) * 1099511628211ull;
  return h;
}

/* The order-independent hash of the registry: a sum of the functions'. */
static uint64_t registry_hash(ray__registry_t *r) {
  uint64_t h = 0;
  unsigned n = ray__function_count(r);
  for (unsigned i = 0; i < n; i++) h += fn_hash(ray__function_at(r, i));
  return h + n;
}

/* FNV-1a of a function's name alone. */
static uint64_t name_hash(const char *name) {
  uint64_t h = 1469598103934665603ull;
  for (const char *p = name; *p != '\0'; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
  return h;
}

/* Ours among the registered functions whose name hashes to nh, or NULL. */
static const ray__func_t *find_by_hash(ray__registry_t *r, uint64_t nh) {
  unsigned n = ray__function_count(r);
  for (unsigned i = 0; i < n; i++) {
    const ray__func_t *f = ray__function_at(r, i);
    if (name_hash(f->name) == nh) return f;
  }
  return NULL;
}

/* The first function (in rank 0's order, then ours) that rank 0 and this
 * rank do not register alike, into name (its first NAME_MAX_LEN - 1
 * bytes; "" if none): rank 0's list goes to every rank (collectives, in
 * the same order on every rank). Errors: RAY_EIO, RAY_ENOMEM (then the
 * other ranks stay in the collective until the launcher ends the job,
 * which mpirun does when this rank's ray_init fails and it exits). */
static int first_difference(ray__cluster_t *cl, ray__transport_t *tr, char *name) {
  ray__registry_t *r = &cl->rt->funcs;
  unsigned n = ray__function_count(r);
  /* Rank 0's list: n entries, fixed size, matched by the name's hash. */
  typedef struct {
    uint64_t name_hash, hash;
    char name[NAME_MAX_LEN];
  } item_t;
  uint64_t n0 = n;
  int rc = ray__transport_bcast(tr, &n0, sizeof n0, 0);
  if (rc != 0) return rc;
  item_t *list = ray__calloc(n0 > 0 ? n0 : 1, sizeof *list);
  if (list == NULL) return RAY_ENOMEM;
  if (atomic_load(&cl->rt->rank) == 0)
    for (unsigned i = 0; i < n; i++) {
      const ray__func_t *f = ray__function_at(r, i);
      list[i].name_hash = name_hash(f->name);
      list[i].hash = fn_hash(f);
      snprintf(list[i].name, NAME_MAX_LEN, "%s", f->name);
    }
  rc = ray__transport_bcast(tr, list, n0 * sizeof *list, 0);
  name[0] = '\0';
  for (uint64_t i = 0; rc == 0 && i < n0 && name[0] == '\0'; i++) {
    const ray__func_t *f = find_by_hash(r, list[i].name_hash);
    if (f == NULL || fn_hash(f) != list[i].hash) snprintf(name, NAME_MAX_LEN, "%s", list[i].name);
  }
  for (unsigned i = 0; rc == 0 && i < n && name[0] == '\0'; i++) {
    const ray__func_t *f = ray__function_at(r, i);
    uint64_t nh = name_hash(f->name);
    bool found = false;
    for (uint64_t k = 0; k < n0 && !found; k++) found = list[k].name_hash == nh;
    if (!found) snprintf(name, NAME_MAX_LEN, "%s", f->name);
  }
  ray__free(list);
  return rc;
}

static int setup(void *arg, ray__transport_t *tr) {
  ray__cluster_t *cl = arg;
  ray__runtime_t *rt = cl->rt;
  /* Here, before the thread receives anything: a worker answering the
   * first task reads it (ray__transport_start's own *out comes later). */
  cl->tr = tr;
  /* The ops before the rank count: a submitter that sees another rank is
   * valid also sees how to send there (submit.c loads in that order). */
  atomic_store_explicit(&rt->remote_fn_ops, &remote_ops, memory_order_relaxed);
  atomic_store_explicit(&rt->place_any, place_any, memory_order_relaxed);
  ray__actors_set_remote(&rt->actors, &actor_remote);
  atomic_store_explicit(&rt->rank, ray__transport_rank(tr), memory_order_relaxed);
  atomic_store_explicit(&rt->nranks, ray__transport_size(tr), memory_order_release);
  int nranks = ray__transport_size(tr);
  /* Every rank alike: an id names its owner in 16 bits. */
  if (nranks > RAY__ID_MAX_RANKS) {
    ray__log(RAY_LOG_ERROR, "cluster: %d ranks, more than ids can name (%d)", nranks,
             RAY__ID_MAX_RANKS);
    return RAY_ENOTSUP;
  }
  ray__id_set_owner((unsigned)ray__transport_rank(tr));
  cl->expect = ray__calloc((size_t)nranks, sizeof *cl->expect);
  cl->reported = ray__calloc((size_t)nranks, sizeof *cl->reported);
  cl->inflight = ray__calloc((size_t)nranks, sizeof *cl->inflight);
  cl->lost = ray__calloc((size_t)nranks, sizeof *cl->lost);
  if (cl->expect == NULL || cl->reported == NULL || cl->inflight == NULL || cl->lost == NULL)
    return RAY_ENOMEM;
  for (int r = 0; r < nranks; r++) {
    atomic_init(&cl->reported[r], 0);
    atomic_init(&cl->inflight[r], 0);
    atomic_init(&cl->lost[r], false);
  }
  atomic_init(&cl->inflight_all, 0);
  uint64_t mine = registry_hash(&rt->funcs);
  uint64_t *all = ray__calloc((size_t)nranks, sizeof *all);
  if (all == NULL) return RAY_ENOMEM;
  int rc = ray__transport_allgather(tr, &mine, sizeof mine, all);
  bool same = true;
  for (int i = 0; rc == 0 && i < nranks; i++) same &= all[i] == all[0];
  ray__free(all);
  /* Proxies tell their owners they went, from the first message on. */
  if (rc == 0 && same) ray__store_remote_set(&rt->store, proxy_gone, proxy_fetch, cl);
  if (rc != 0 || same) return rc;
  /* They differ: find which function, and agree on one name to report. */
  char name[NAME_MAX_LEN];
  if ((rc = first_difference(cl, tr, name)) != 0) return rc;
  char *names = ray__calloc((size_t)nranks, NAME_MAX_LEN);
  if (names == NULL) return RAY_ENOMEM;
  if ((rc = ray__transport_allgather(tr, name, NAME_MAX_LEN, names)) == 0) {
    const char *first = "";
    int at = 0;
    for (int i = 0; i < nranks && *first == '\0'; i++) first = names + (size_t)i * NAME_MAX_LEN;
    for (int i = 0; i < nranks; i++)
      if (strcmp(names + (size_t)i * NAME_MAX_LEN, first) == 0 && *first != '\0') {
        at = i;
        break;
      }
    ray__log(RAY_LOG_ERROR,
             "cluster: function %s is not registered alike on every rank (rank %d differs from "
             "rank 0: missing, or other return types)",
             first, at);
    rc = RAY_EINVAL;
  }
  ray__free(names);
  return rc;
}

/* ---- Lifecycle ---- */

int ray__cluster_start(ray__runtime_t *rt) {
  ray__cluster_t *cl = ray__calloc(1, sizeof *cl);
  if (cl == NULL) return RAY_ENOMEM;
  cl->rt = rt;
  if (uv_mutex_init(&cl->mu) != 0) {
    ray__free(cl);
    return RAY_ENOMEM;
  }
  if (uv_cond_init(&cl->cv) != 0) {
    uv_mutex_destroy(&cl->mu);
    ray__free(cl);
    return RAY_ENOMEM;
  }
  if (uv_mutex_init(&cl->qmu) != 0) {
    uv_cond_destroy(&cl->cv);
    uv_mutex_destroy(&cl->mu);
    ray__free(cl);
    return RAY_ENOMEM;
  }
  ray__transport_opts_t o = {.mpi_comm = rt->cfg.mpi_comm,
                             .spin_us = rt->cfg.cluster_spin_us,
                             .poll_us = rt->cfg.cluster_poll_us,
                             .on_recv = on_recv,
                             .on_setup = setup,
                             .on_tick = on_tick,
                             .on_place = on_place,
                             .on_lost = on_lost,
                             .arg = cl};
  rt->cluster = cl;            /* before the thread: on_recv may run at once */
  ray__transport_t *tr = NULL; /* setup stored it in cl->tr already */
  int rc = ray__transport_start(&o, &tr);
  if (rc != 0) {
    ray__store_remote_set(&rt->store, NULL, NULL, NULL); /* set if setup got that far */
    uv_mutex_destroy(&cl->qmu);
    ray__id_set_owner(0);
    ray__free(cl->expect);
    ray__free(cl->lost);
    ray__free(cl->reported);
    ray__free(cl->inflight);
    atomic_store(&rt->place_any, NULL);
    ray__actors_set_remote(&rt->actors, NULL);
    rt->cluster = NULL;
    atomic_store(&rt->nranks, 1);
    atomic_store(&rt->rank, 0);
    atomic_store(&rt->remote_fn_ops, NULL);
    uv_cond_destroy(&cl->cv);
    uv_mutex_destroy(&cl->mu);
    ray__free(cl);
    return rc;
  }
  return 0;
}

void ray__cluster_close(ray__runtime_t *rt) {
  ray__cluster_t *cl = rt->cluster;
  if (cl == NULL) return;
  uv_mutex_lock(&cl->mu);
  cl->closing = true;
  while (cl->in_task > 0) uv_cond_wait(&cl->cv, &cl->mu);
  uv_mutex_unlock(&cl->mu);
}

bool ray__cluster_may_stop(ray__runtime_t *rt) {
  ray__cluster_t *cl = rt->cluster;
  if (cl == NULL || atomic_load(&rt->rank) == 0) return true;
  uv_mutex_lock(&cl->mu);
  bool asked = cl->stop_asked;
  uv_mutex_unlock(&cl->mu);
  return asked;
}

void ray__cluster_stop(ray__runtime_t *rt) {
  ray__cluster_t *cl = rt->cluster;
  if (cl == NULL) return;
  /* Proxies that go from now on tell nobody, and stubs let go of no
   * actor at its home: every rank is stopping, and the transport goes. */
  ray__store_remote_set(&rt->store, NULL, NULL, NULL);
  ray__actors_set_remote(&rt->actors, NULL);
  int rank = atomic_load(&rt->rank), nranks = atomic_load(&rt->nranks);
  if (rank == 0) {
    for (int r = 1; r < nranks; r++) (void)send_control(cl, r, K_SHUTDOWN, NULL);
    uint64_t deadline = uv_hrtime() + STOP_TIMEOUT_NS;
    uv_mutex_lock(&cl->mu);
    while (cl->acks < nranks - 1 && ray__thread_cond_wait_until(&cl->cv, &cl->mu, deadline) == 0) {
    }
    int acks = cl->acks;
    uv_mutex_unlock(&cl->mu);
    if (acks < nranks - 1)
      ray__log(RAY_LOG_ERROR, "cluster: %d of %d ranks did not confirm the shutdown",
               nranks - 1 - acks, nranks - 1);
  } else {
    (void)send_control(cl, 0, K_ACK, NULL); /* the last message this rank sends */
  }
  ray__transport_stop(cl->tr);
  /* Our objects other ranks borrowed: every rank is stopping. */
  for (unsigned b = 0; b < FLIGHT_BUCKETS; b++)
    while (cl->lent[b] != NULL) lent_free(cl, &cl->lent[b]);
  /* The thread's work it never got to: tasks not sent fail as a stopped
   * runtime's do; answers not sent are let go (rank 0 failed them). */
  run_list(cl->to_answer, true);
  run_list(cl->to_pull, true);
  run_list(cl->to_send, true);
  cl->to_answer = cl->to_pull = cl->to_send = NULL;
  /* Pulls whose chunks never came: their results failed with the runtime's
   * pending objects. Values held for other ranks' pulls go. */
  while (cl->pulls != NULL) pull_settle(cl, cl->pulls, RAY_ESHUTDOWN, false);
  for (unsigned b = 0; b < FLIGHT_BUCKETS; b++)
    while (cl->holds[b] != NULL) {
      hold_t *h = cl->holds[b];
      cl->holds[b] = h->next;
      if (h->sending == 0) {
        hold_free(h);
        continue;
      }
      /* The stop timed out with chunks in flight: MPI may still read them. */
      ray__log(RAY_LOG_ERROR, "cluster: values held for rank %d are left to MPI", h->peer);
    }
  while (cl->streams != NULL) stream_free(cl, cl->streams); /* their actors are gone */
  while (cl->homed != NULL) homed_free(cl, cl->homed);
  while (cl->names != NULL) {
    job_name_t *n = cl->names;
    cl->names = n->next;
    ray__free(n->name);
    ray__free(n);
  }
  /* Tasks whose answer never came: their results failed with the runtime's
   * pending objects; let them go. */
  for (unsigned b = 0; b < FLIGHT_BUCKETS; b++)
    while (cl->flights[b] != NULL) {
      flight_t *f = cl->flights[b];
      cl->flights[b] = f->next;
      int none = 0;
      atomic_compare_exchange_strong(&f->t->fail_code, &none, RAY_ESHUTDOWN);
      remote_finish(f->t);
      ray__free(f);
    }
  ray__free(cl->expect);
  ray__free(cl->lost);
  ray__free(cl->reported);
  ray__free(cl->inflight);
  ray__id_set_owner(0);
  atomic_store(&rt->place_any, NULL);
  ray__actors_set_remote(&rt->actors, NULL);
  rt->cluster = NULL;
  uv_mutex_destroy(&cl->qmu);
  uv_cond_destroy(&cl->cv);
  uv_mutex_destroy(&cl->mu);
  ray__free(cl);
}

/* ---- Test hooks (testing.h) ---- */

size_t ray__cluster_set_pull_chunk(size_t bytes) {
  if (bytes == 0 || bytes > PULL_CHUNK_MAX) bytes = PULL_CHUNK_MAX;
  return atomic_exchange(&pull_chunk, bytes);
}

int ray__cluster_lose_rank(int rank) {
  RAY__API_ENTER(rt);
  ray__cluster_t *cl = rt->cluster;
  if (atomic_load(&rt->stopping)) return RAY_ESHUTDOWN;
  if (cl == NULL || rank < 0 || rank >= atomic_load(&rt->nranks) || rank == atomic_load(&rt->rank))
    return RAY_EINVAL;
  atomic_store(&cl->lose_asked, rank + 1);
  ray__transport_wake(cl->tr);
  return 0;
}

/* ---- The public calls ---- */

int ray_rank(void) {
  RAY__API_GUARD(rt);
  return rt != NULL ? atomic_load_explicit(&rt->rank, memory_order_relaxed) : 0;
}

int ray_num_ranks(void) {
  RAY__API_GUARD(rt);
  return rt != NULL ? atomic_load_explicit(&rt->nranks, memory_order_relaxed) : 1;
}

/* Ranks lost so far (mu held or not: a snapshot). */
static int lost_count(ray__cluster_t *cl, int nranks) {
  int n = 0;
  for (int r = 1; r < nranks; r++) n += atomic_load(&cl->lost[r]);
  return n;
}

int ray__cluster_spmd_done(void) {
  RAY__API_ENTER(rt);
  if (atomic_load(&rt->stopping) || !rt->cfg.cluster_spmd) return 0;
  ray__cluster_t *cl = rt->cluster;
  if (cl == NULL) return 0;
  int rank = atomic_load(&rt->rank), nranks = atomic_load(&rt->nranks);
  uv_mutex_lock(&cl->mu);
  bool first = !cl->done_said;
  cl->done_said = true;
  uv_mutex_unlock(&cl->mu);
  if (first && rank != 0 && !atomic_load(&cl->lost[0])) (void)send_control(cl, 0, K_DONE, NULL);
  /* Inside the guard: the runtime (and cl) stay until we leave; this
   * rank's own shutdown waits for us (lifecycle). */
  uv_mutex_lock(&cl->mu);
  if (rank == 0)
    while (cl->dones + lost_count(cl, nranks) < nranks - 1) uv_cond_wait(&cl->cv, &cl->mu);
  else
    while (!cl->stop_asked && !atomic_load(&cl->lost[0])) uv_cond_wait(&cl->cv, &cl->mu);
  uv_mutex_unlock(&cl->mu);
  return 0;
}

int ray__cluster_serve_wait(void) {
  RAY__API_ENTER(rt);
  /* A call that comes once shutdown began finds it stopping (guard.h) and
   * must not touch the cluster, which the shutdown frees. */
  if (atomic_load(&rt->stopping)) return 0;
  ray__cluster_t *cl = rt->cluster;
  if (cl == NULL || atomic_load(&rt->rank) == 0) return RAY_EINVAL;
  if (rt->cfg.cluster_spmd) return 0; /* ray_shutdown waits for every rank */
  /* Inside the guard: the runtime (and cl) stay until we leave, and the
   * only shutdown that can start meanwhile is one the driver asked for,
   * which ends this wait first. */
  uv_mutex_lock(&cl->mu);
  while (!cl->stop_asked) uv_cond_wait(&cl->cv, &cl->mu);
  uv_mutex_unlock(&cl->mu);
  return 0;
}
