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
 * Messages (msgpack arrays, the first element the kind):
 *   TASK      [1, task_id, function name, nreturns, max_retries,
 *              retry_on_error, name|nil, [[type, bytes], ...]]
 *   COMPLETE  [2, task_id, [[true, type, bytes] | [true, type, size] |
 *              [false, code, error], ...], load]   (size: its bytes follow as
 *              a message of their own; load: the sender's, for placement)
 *   SHUTDOWN  [3]                  rank 0 -> every other rank
 *   ACK       [4]                  the answer, the last message a rank sends
 *   CANCEL    [5, task_id]         owner -> the rank running a task it sent
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
 * What is not here yet (ADR-006, issue 13): refs that travel (a ref inside
 * a value sent to or from another rank fails with RAY_ENOTSUP), and pulls
 * of large values (a value travels with its task or answer, up to the
 * transport's 2 GiB a message; large results as bodies of their own).
 *
 * Threads: send_task and send_results run on the communication thread (its
 * tick: sending never waits for a free worker), as does on_recv; the
 * communication thread; the in-flight table, the table of tasks run here
 * for other ranks and the shutdown state under `mu`. */
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "codec.h"
#include "internal.h"
#include "transport.h"

enum { K_TASK = 1, K_COMPLETE = 2, K_SHUTDOWN = 3, K_ACK = 4, K_CANCEL = 5 };
enum { FLIGHT_BUCKETS = 1024, NAME_MAX_LEN = 128 };
/* A result value this large goes as a body of its own after the answer,
 * sent from the stored value (no copy), and lands in the receive buffer it
 * arrived in (no copy either). */
enum { LAND_IN_PLACE = 64 * 1024 };
/* How long rank 0 waits for every other rank to confirm the shutdown. */
#define STOP_TIMEOUT_NS (30ull * 1000 * 1000 * 1000)

/* A task sent to another rank, until its COMPLETE comes back. */
typedef struct flight_s {
  struct flight_s *next;
  uint64_t task_id;
  ray__task_t *t;
} flight_t;

struct exec_s;

/* A task whose answer came, waiting for the bodies of its large results
 * (the messages that follow the answer from the same rank). */
typedef struct pend_s {
  ray__task_t *t;
  int left;   /* bodies still to come */
  int failed; /* a result's failure code, for the task's fail_code */
} pend_t;

/* One body to come: the result it completes. */
typedef struct body_s {
  struct body_s *next;
  pend_t *p;
  uint32_t slot;
  uint32_t type;
  uint64_t size;
} body_t;

typedef struct bodies_s {
  body_t *head, *tail;
} bodies_t;

struct ray__cluster_s {
  ray__runtime_t *rt;
  ray__transport_t *tr;
  uv_mutex_t mu;
  uv_cond_t cv;                         /* an ACK came; the stop was asked for */
  flight_t *flights[FLIGHT_BUCKETS];    /* under mu */
  struct exec_s *execs[FLIGHT_BUCKETS]; /* under mu: tasks run here for other ranks */
  bodies_t *bodies;                     /* per rank: bodies to come (communication thread) */
  /* Placement of RAY_NODE_ANY tasks: per rank, the load it last reported
   * (with its answers) and our tasks in flight there; all in flight. */
  atomic_int *reported;
  atomic_int *inflight;
  atomic_int inflight_all;
  /* Work for the communication thread (its tick): tasks ready to send, and
   * tasks run here whose results are ready to go back. Under qmu, a leaf
   * (taken under a shard lock by the ready and watch callbacks). */
  uv_mutex_t qmu;
  ray__runnable_t *to_send, *to_answer; /* linked through rn.next, LIFO */
  int acks;                             /* rank 0: ranks that confirmed the stop */
  bool closing;                         /* the runtime is stopping: TASKs refused */
  int in_task;                          /* on_task calls under way (close waits them out) */
  bool stop_asked;                      /* other ranks: SHUTDOWN came */
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

/* Send what b holds to `dest`. Errors: RAY_ENOMEM, the transport's. */
static int send_buf(ray__cluster_t *cl, int dest, ray__mpbuf_t *b) {
  size_t len;
  void *p = take_bytes(b, &len);
  ray__mpbuf_destroy(b);
  if (p == NULL) return RAY_ENOMEM;
  int rc = ray__transport_send(cl->tr, dest, p, len);
  if (rc == 0) atomic_fetch_add_explicit(&cl->rt->remote_bytes_sent, len, memory_order_relaxed);
  return rc;
}

static void pack_cstr(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

/* A control message: [kind] or, with a task id, [kind, task_id]. */
static int send_control(ray__cluster_t *cl, int dest, int kind, const uint64_t *task_id) {
  ray__mpbuf_t b;
  msgpack_packer pk;
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_array(&pk, task_id != NULL ? 2 : 1);
  msgpack_pack_int(&pk, kind);
  if (task_id != NULL) msgpack_pack_uint64(&pk, *task_id);
  return send_buf(cl, dest, &b);
}

/* Whether msgpack bytes hold a ref (which cannot travel yet). Undecodable
 * bytes count as none: the receiver reports them as it would locally. */
static bool holds_refs(const void *data, size_t size) {
  msgpack_unpacked u;
  if (ray__mp_decode(data, size, &u) != 0) return false;
  ray_ref_t *refs = NULL;
  size_t n = 0;
  int rc = ray__mp_collect_refs(&u.data, &refs, &n);
  ray__free(refs);
  msgpack_unpacked_destroy(&u);
  return rc == 0 && n > 0;
}

/* ---- The in-flight table (mu held) ---- */

static flight_t **bucket(ray__cluster_t *cl, uint64_t task_id) {
  return &cl->flights[(task_id * 0x9E3779B97F4A7C15ull) >> 54];
}

static flight_t *flight_take(ray__cluster_t *cl, uint64_t task_id) {
  for (flight_t **p = bucket(cl, task_id); *p != NULL; p = &(*p)->next) {
    if ((*p)->task_id != task_id) continue;
    flight_t *f = *p;
    *p = f->next;
    return f;
  }
  return NULL;
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

static ray__task_t *remote_done(ray__task_t *t, ray__task_end_t *end) {
  ray_error_free(end->err);
  ray__task_finish(t);
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

/* Pack the TASK message of `t`, its arguments pinned. Errors: RAY_ENOTSUP
 * (an argument holds a ref), RAY_ENOMEM. */
static int pack_task(ray__task_t *t, ray__mpbuf_t *b) {
  for (uint32_t i = 0; i < t->nargs; i++) {
    const ray__task_arg_t *a = &t->args[i];
    if (a->kind == RAY_ARG_ACTOR) return RAY_ENOTSUP;
    if (a->type == RAY_TYPE_MSGPACK && holds_refs(a->data, a->size)) return RAY_ENOTSUP;
  }
  msgpack_packer pk;
  ray__mpbuf_init(b, &pk);
  msgpack_pack_array(&pk, 8);
  msgpack_pack_int(&pk, K_TASK);
  msgpack_pack_uint64(&pk, t->task_id);
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
  for (uint32_t i = 0; i < t->nargs; i++) {
    const ray__task_arg_t *a = &t->args[i];
    msgpack_pack_array(&pk, 2);
    msgpack_pack_uint32(&pk, a->type);
    msgpack_pack_bin(&pk, a->size);
    msgpack_pack_bin_body(&pk, a->data, a->size);
  }
  if (b->oom) {
    ray__mpbuf_destroy(b);
    return RAY_ENOMEM;
  }
  return 0;
}

static void send_task(ray__runnable_t *rn) {
  ray__task_t *t = (ray__task_t *)rn;
  ray__runtime_t *rt = t->rt;
  ray__cluster_t *cl = rt->cluster;
  int expected = RAY__T_PENDING;
  if (!atomic_compare_exchange_strong(&t->state, &expected, RAY__T_RUNNING)) {
    ray__task_end_t end = {.code = atomic_load(&t->fail_code)}; /* cancelled */
    (void)t->ops->done(t, &end);
    return;
  }
  if (atomic_load(&rt->stopping)) {
    (void)ray__task_not_run(t, RAY_ESHUTDOWN, 0, 0);
    return;
  }
  int dep = atomic_load(&t->dep_status);
  if (dep != 0) {
    (void)ray__task_not_run(t, RAY_EDEPFAILED, atomic_load(&t->dep_failed), dep);
    return;
  }
  uint32_t pinned = ray__task_pin_args(t);
  if (pinned < t->nargs) {
    ray__task_unpin_args(t, pinned);
    (void)ray__task_not_run(t, RAY_EDEPFAILED, 0, 0);
    return;
  }
  ray__mpbuf_t b;
  int rc = pack_task(t, &b);
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
    uv_mutex_lock(&cl->mu);
    flight_t **p = bucket(cl, t->task_id);
    f->next = *p;
    *p = f;
    rc = send_buf(cl, t->node, &b);
    if (rc == 0) {
      atomic_fetch_add_explicit(&t->rt->remote_tasks_sent, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&cl->inflight[t->node], 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&cl->inflight_all, 1, memory_order_relaxed);
    }
    if (rc == 0 && atomic_load(&t->cancel)) (void)send_cancel(cl, t->node, t->task_id);
    if (rc != 0) f = flight_take(cl, t->task_id);
    uv_mutex_unlock(&cl->mu);
    if (rc == 0) return; /* the COMPLETE finishes it */
    ray__free(f);
  }
  if (rc == RAY_ENOTSUP)
    ray__task_fail(t, rc, 0, NULL,
                   "an argument of %s holds a ref or an actor handle, which cannot go to rank %d "
                   "yet",
                   t->name, (int)t->node);
  else
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
    if (r == self) continue;
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

/* A landed value's payload lives on in the message that brought it. */
static void free_message(void *data, void *base) {
  (void)data;
  ray__free(base);
}

/* Complete pending entry `id` with a value that arrived, a copy of `data`;
 * or, when `*base` is the message (a ray__malloc block holding `data`),
 * not a copy: the entry takes the message (and *base becomes NULL). */
static void land_value(ray__store_t *st, uint64_t id, uint32_t type, const void *data, size_t size,
                       void **base) {
  if (*base != NULL) {
    ray__entry_t *e = ray__entry_new_owned(st, (void *)data, size, free_message, *base, type, true);
    if (e != NULL) {
      *base = NULL;
      e->id = id;
      ray__store_complete(st, e);
      return;
    }
  }
  ray__entry_t *e = ray__entry_new(st, size, type, RAY__READY);
  if (e == NULL) {
    ray__store_fail(st, id, ray__entry_error(), NULL, 0, true);
    return;
  }
  if (size > 0) memcpy(e->data, data, size);
  e->id = id;
  ray__store_complete(st, e);
}

/* Fail pending entry `id` with an error chain that arrived. Returns its code. */
static int land_error(ray__task_t *t, uint64_t id, int code, const void *data, size_t size) {
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
    ray_error_set_task_id(err, t->task_id); /* the owner's id for the task, not the runner's */
  }
  if (code >= 0) code = RAY_EDECODE;
  ray__store_fail(&t->rt->store, id, code, err, 0, true);
  ray_error_free(err);
  return code;
}

/* Returns true when a result took the message (`msg`) over. */
static void on_complete(ray__cluster_t *cl, int src, const msgpack_object *m) {
  if (m->via.array.size != 4 || m->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      m->via.array.ptr[2].type != MSGPACK_OBJECT_ARRAY ||
      m->via.array.ptr[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed COMPLETE from rank %d", src);
    return;
  }
  uint64_t task_id = m->via.array.ptr[1].via.u64;
  uint64_t load = m->via.array.ptr[3].via.u64; /* the sender's, for placement */
  atomic_store_explicit(&cl->reported[src], load > INT32_MAX ? INT32_MAX : (int)load,
                        memory_order_relaxed);
  uv_mutex_lock(&cl->mu);
  flight_t *f = flight_take(cl, task_id);
  uv_mutex_unlock(&cl->mu);
  if (f == NULL) return; /* finished by the stop already */
  ray__task_t *t = f->t;
  ray__free(f);
  atomic_fetch_sub_explicit(&cl->inflight[t->node], 1, memory_order_relaxed);
  atomic_fetch_sub_explicit(&cl->inflight_all, 1, memory_order_relaxed);
  const msgpack_object_array *res = &m->via.array.ptr[2].via.array;
  int failed = 0;
  pend_t *pend = NULL; /* made at the first body to come */
  for (uint32_t i = 0; i < t->nreturns; i++) {
    uint64_t id = t->returns[i].id;
    const msgpack_object *r = i < res->size ? &res->ptr[i] : NULL;
    if (r == NULL || r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 3 ||
        r->via.array.ptr[0].type != MSGPACK_OBJECT_BOOLEAN) {
      failed = RAY_EDECODE;
      ray__task_fail(t, RAY_EDECODE, 0, NULL, "a malformed result of %s from rank %d", t->name,
                     src);
      break;
    }
    const msgpack_object *v = r->via.array.ptr;
    bool ok = v[0].via.boolean && v[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    if (ok && v[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER) { /* its body follows */
      body_t *bd = ray__calloc(1, sizeof *bd);
      if (pend == NULL && bd != NULL && (pend = ray__calloc(1, sizeof *pend)) != NULL) pend->t = t;
      if (bd == NULL || pend == NULL) { /* the body still comes: read it as a lost one */
        ray__free(bd);
        ray__store_fail(&t->rt->store, id, RAY_ENOMEM, NULL, 0, true);
        failed = RAY_ENOMEM;
        bd = ray__calloc(1, sizeof *bd); /* best effort to keep the stream in step */
        if (bd == NULL) continue;
      }
      bd->p = pend;
      bd->slot = i;
      bd->type = (uint32_t)v[1].via.u64;
      bd->size = v[2].via.u64;
      if (pend != NULL) pend->left++;
      bodies_t *q = &cl->bodies[src];
      if (q->tail != NULL)
        q->tail->next = bd;
      else
        q->head = bd;
      q->tail = bd;
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
    if (ok) { /* inside the answer: small (large ones come as bodies), copied */
      void *no_base = NULL;
      land_value(&t->rt->store, id, (uint32_t)v[1].via.u64, data, size, &no_base);
    } else {
      int code = v[1].type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (int)v[1].via.i64 : RAY_EDECODE;
      failed = land_error(t, id, code, data, size);
    }
  }
  if (pend != NULL && pend->left > 0) { /* the last body finishes it */
    pend->failed = failed;
    return;
  }
  ray__free(pend);
  if (failed != 0) atomic_store(&t->fail_code, failed);
  ray__task_finish(t);
}

/* ---- The executor: a TASK arrives (communication thread) ---- */

/* A task run here for another rank: its results, watched until the last
 * completes, then sent back by a worker (send_results). */
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
  uint64_t h = (task_id ^ ((uint64_t)(unsigned)src << 48)) * 0x9E3779B97F4A7C15ull;
  return &cl->execs[h >> 54];
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
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_int(&pk, K_COMPLETE);
  msgpack_pack_uint64(&pk, task_id);
  msgpack_pack_array(&pk, n);
  for (uint32_t i = 0; i < n; i++) pack_failure(&pk, err, code);
  msgpack_pack_uint32(&pk, (uint32_t)local_load(cl->rt));
  ray_error_free(err);
  (void)send_buf(cl, src, &b);
}

/* Pack one result of x (complete) into pk. */
/* A large result's view, open until MPI has sent it. */
static void release_view(void *arg) {
  ray_buf_release(arg);
  ray__free(arg);
}

/* Pack one result (complete) into pk: [true, type, bytes], or, for a large
 * value, [true, type, size] with the value as *body (returns true). */
static bool pack_result(msgpack_packer *pk, ray_ref_t ref, ray__transport_body_t *body) {
  ray_buf_t buf;
  int rc = ray_get(ref, 0, &buf);
  if (rc == 0 && buf.type == RAY_TYPE_MSGPACK && holds_refs(buf.data, buf.size)) {
    ray_buf_release(&buf);
    rc = RAY_ENOTSUP;
  }
  if (rc == 0) {
    msgpack_pack_array(pk, 3);
    msgpack_pack_true(pk);
    msgpack_pack_uint32(pk, buf.type);
    ray_buf_t *held = buf.size >= LAND_IN_PLACE ? ray__malloc(sizeof *held) : NULL;
    if (held != NULL) {
      *held = buf;
      msgpack_pack_uint64(pk, buf.size);
      *body = (ray__transport_body_t){buf.data, buf.size, release_view, held};
      return true;
    }
    msgpack_pack_bin(pk, buf.size);
    msgpack_pack_bin_body(pk, buf.data, buf.size);
    ray_buf_release(&buf);
    return false;
  }
  ray_error_t *err = NULL;
  if (rc == RAY_ENOTSUP)
    ray_error_new(&err, rc, NULL, "a result holds a ref, which cannot leave rank %d yet",
                  ray_rank());
  else if (rc == RAY_ETIMEDOUT) /* never: every result is complete */
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
  ray__mpbuf_init(&b, &pk);
  msgpack_pack_array(&pk, 4);
  msgpack_pack_int(&pk, K_COMPLETE);
  msgpack_pack_uint64(&pk, x->task_id);
  msgpack_pack_array(&pk, x->n);
  ray__transport_body_t bodies[RAY_MAX_RETURNS];
  size_t nb = 0;
  for (uint32_t i = 0; i < x->n; i++)
    if (pack_result(&pk, x->refs[i], &bodies[nb])) nb++;
  msgpack_pack_uint32(&pk, (uint32_t)local_load(x->cl->rt)); /* for the owner's placement */
  size_t len;
  void *head = take_bytes(&b, &len);
  ray__mpbuf_destroy(&b);
  int rc = head != NULL ? 0 : RAY_ENOMEM;
  size_t total = len;
  for (size_t i = 0; i < nb; i++) total += bodies[i].len;
  if (rc == 0)
    rc = ray__transport_send_group(x->cl->tr, x->src, head, len, nb, bodies);
  else
    for (size_t i = 0; i < nb; i++) bodies[i].done(bodies[i].arg);
  if (rc == 0)
    atomic_fetch_add_explicit(&x->cl->rt->remote_bytes_sent, total, memory_order_relaxed);
  if (rc != 0) /* too large, or no memory: the owner must still hear of it */
    refuse(x->cl, x->src, x->task_id, x->n, rc, "the results could not be sent back: %s",
           ray_err_name(rc));
  exec_free(x);
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
  memcpy(p, o->via.str.ptr, o->via.str.size);
  p[o->via.str.size] = '\0';
  return p;
}

static void run_task(ray__cluster_t *cl, int src, const msgpack_object *m);
static void run_named(ray__cluster_t *cl, int src, uint64_t task_id, uint32_t nreturns,
                      const char *fname, const char *tname, const msgpack_object *v);

/* A TASK: run it unless the runtime is closing (then refuse it). */
static void on_task(ray__cluster_t *cl, int src, const msgpack_object *m) {
  uv_mutex_lock(&cl->mu);
  bool closing = cl->closing;
  if (!closing) cl->in_task++;
  uv_mutex_unlock(&cl->mu);
  if (closing) {
    const msgpack_object *v = m->via.array.ptr;
    if (m->via.array.size == 8 && v[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        v[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER && v[3].via.u64 <= RAY_MAX_RETURNS)
      refuse(cl, src, v[1].via.u64, (uint32_t)v[3].via.u64, RAY_ESHUTDOWN,
             "the runtime shut down before %s ran", "the task");
    return;
  }
  run_task(cl, src, m);
  uv_mutex_lock(&cl->mu);
  if (--cl->in_task == 0 && cl->closing) uv_cond_broadcast(&cl->cv);
  uv_mutex_unlock(&cl->mu);
}

static void run_task(ray__cluster_t *cl, int src, const msgpack_object *m) {
  const msgpack_object *v = m->via.array.ptr;
  if (m->via.array.size != 8 || v[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
      v[2].type != MSGPACK_OBJECT_STR ||
      (v[6].type != MSGPACK_OBJECT_STR && v[6].type != MSGPACK_OBJECT_NIL) ||
      v[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[3].via.u64 > RAY_MAX_RETURNS ||
      v[4].type != MSGPACK_OBJECT_POSITIVE_INTEGER || v[5].type != MSGPACK_OBJECT_BOOLEAN ||
      v[7].type != MSGPACK_OBJECT_ARRAY || v[7].via.array.size > RAY_MAX_ARGS) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed TASK from rank %d", src);
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
  run_named(cl, src, task_id, nreturns, fname, tname, v);
  ray__free(fname);
  ray__free(tname);
}

/* run_task, its names copied out. */
static void run_named(ray__cluster_t *cl, int src, uint64_t task_id, uint32_t nreturns,
                      const char *fname, const char *tname, const msgpack_object *v) {
  ray__runtime_t *rt = cl->rt;
  ray__func_t *f = ray__function_find(&rt->funcs, fname);
  if (f == NULL) {
    refuse(cl, src, task_id, nreturns, RAY_ENOTFOUND, "function %s is not registered here", fname);
    return;
  }
  if (f->nreturns != nreturns) {
    refuse(cl, src, task_id, nreturns, RAY_EINVAL, "function %s has another number of returns here",
           fname);
    return;
  }
  ray_arg_t args[RAY_MAX_ARGS];
  const msgpack_object_array *av = &v[7].via.array;
  for (uint32_t i = 0; i < av->size; i++) {
    const msgpack_object *a = &av->ptr[i];
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 2 ||
        a->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        a->via.array.ptr[1].type != MSGPACK_OBJECT_BIN) {
      refuse(cl, src, task_id, nreturns, RAY_EDECODE, "a malformed argument of %s", fname);
      return;
    }
    args[i].kind = RAY__ARG_ENCODED;
    args[i].type = (uint32_t)a->via.array.ptr[0].via.u64;
    args[i].u.bytes.data = a->via.array.ptr[1].via.bin.ptr;
    args[i].u.bytes.size = a->via.array.ptr[1].via.bin.size;
  }
  ray_task_opts_t opts;
  ray_task_opts_init(&opts);
  opts.max_retries = (uint32_t)v[4].via.u64;
  opts.retry_on_error = v[5].via.boolean;
  opts.name = tname; /* NULL (nil): the function's */
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
  int rc = ray__task_submit_encoded(rt, f, args, av->size, &opts, x->refs);
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

/* A CANCEL from the owner of a task running here: cancel it as ray_cancel
 * does (its results go back as usual). One retained, the ref outlives a
 * send_results racing with us. */
static void on_cancel(ray__cluster_t *cl, int src, const msgpack_object *m) {
  if (m->via.array.size != 2 || m->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
    ray__log(RAY_LOG_ERROR, "cluster: a malformed CANCEL from rank %d", src);
    return;
  }
  uint64_t task_id = m->via.array.ptr[1].via.u64;
  ray_ref_t ref = {0, 0};
  uv_mutex_lock(&cl->mu);
  for (exec_t *x = *exec_bucket(cl, src, task_id); x != NULL; x = x->next)
    if (x->src == src && x->task_id == task_id) {
      ref = x->refs[0];
      if (ray__store_retain(&cl->rt->store, ref.id) != 0) ref.id = 0;
      break;
    }
  uv_mutex_unlock(&cl->mu);
  if (ref.id == 0) return; /* finished and answered already */
  (void)ray_cancel(ref);   /* RAY_EFINISHED when it just finished: nothing to do */
  ray__store_release(&cl->rt->store, ref.id);
}

/* The next body `src` owed us (its answer came first): land it in place
 * and, with the task's last, finish the task. Returns whether the entry
 * kept the message. */
static bool on_body(ray__cluster_t *cl, int src, void *data, size_t len) {
  bodies_t *q = &cl->bodies[src];
  body_t *bd = q->head;
  q->head = bd->next;
  if (q->head == NULL) q->tail = NULL;
  pend_t *p = bd->p;
  bool kept = false;
  if (p != NULL) { /* NULL: no memory to track it when its answer came; dropped */
    ray__task_t *t = p->t;
    uint64_t id = t->returns[bd->slot].id;
    if (len != bd->size) {
      ray__store_fail(&t->rt->store, id, RAY_EDECODE, NULL, 0, true);
      p->failed = RAY_EDECODE;
    } else {
      void *in_place = data;
      land_value(&t->rt->store, id, bd->type, data, len, &in_place);
      kept = in_place == NULL;
    }
    if (--p->left == 0) {
      if (p->failed != 0) atomic_store(&t->fail_code, p->failed);
      ray__task_finish(t);
      ray__free(p);
    }
  }
  ray__free(bd);
  return kept;
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

/* The tick: send what is ready, answer what ran. */
static bool on_tick(void *arg) {
  ray__cluster_t *cl = arg;
  uv_mutex_lock(&cl->qmu);
  ray__runnable_t *send = cl->to_send, *answer = cl->to_answer;
  cl->to_send = cl->to_answer = NULL;
  uv_mutex_unlock(&cl->qmu);
  run_list(answer, false);
  run_list(send, false);
  return send != NULL || answer != NULL;
}

/* ---- Receiving (communication thread) ---- */

static bool on_recv(void *arg, int src, void *data, size_t len) {
  ray__cluster_t *cl = arg;
  atomic_fetch_add_explicit(&cl->rt->remote_bytes_received, len, memory_order_relaxed);
  if (cl->bodies[src].head != NULL) return on_body(cl, src, data, len); /* raw bytes */
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
  bool kept = false;
  switch (m->via.array.ptr[0].via.u64) {
    case K_TASK:
      on_task(cl, src, m);
      break;
    case K_COMPLETE:
      on_complete(cl, src, m);
      break;
    case K_CANCEL:
      on_cancel(cl, src, m);
      break;
    case K_SHUTDOWN:
      if (src != 0) break; /* only the driver stops the job */
      uv_mutex_lock(&cl->mu);
      cl->stop_asked = true;
      uv_cond_broadcast(&cl->cv);
      uv_mutex_unlock(&cl->mu);
      break;
    case K_ACK:
      uv_mutex_lock(&cl->mu);
      cl->acks++;
      uv_cond_broadcast(&cl->cv);
      uv_mutex_unlock(&cl->mu);
      break;
    default:
      ray__log(RAY_LOG_ERROR, "cluster: a message of unknown kind from rank %d", src);
  }
  msgpack_unpacked_destroy(&u); /* the zone only: bins point into `data` */
  return kept;
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
  atomic_store_explicit(&rt->rank, ray__transport_rank(tr), memory_order_relaxed);
  atomic_store_explicit(&rt->nranks, ray__transport_size(tr), memory_order_release);
  int nranks = ray__transport_size(tr);
  cl->bodies = ray__calloc((size_t)nranks, sizeof *cl->bodies);
  cl->reported = ray__calloc((size_t)nranks, sizeof *cl->reported);
  cl->inflight = ray__calloc((size_t)nranks, sizeof *cl->inflight);
  if (cl->bodies == NULL || cl->reported == NULL || cl->inflight == NULL) return RAY_ENOMEM;
  for (int r = 0; r < nranks; r++) {
    atomic_init(&cl->reported[r], 0);
    atomic_init(&cl->inflight[r], 0);
  }
  atomic_init(&cl->inflight_all, 0);
  uint64_t mine = registry_hash(&rt->funcs);
  uint64_t *all = ray__calloc((size_t)nranks, sizeof *all);
  if (all == NULL) return RAY_ENOMEM;
  int rc = ray__transport_allgather(tr, &mine, sizeof mine, all);
  bool same = true;
  for (int i = 0; rc == 0 && i < nranks; i++) same &= all[i] == all[0];
  ray__free(all);
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
                             .arg = cl};
  rt->cluster = cl;            /* before the thread: on_recv may run at once */
  ray__transport_t *tr = NULL; /* setup stored it in cl->tr already */
  int rc = ray__transport_start(&o, &tr);
  if (rc != 0) {
    ray__free(cl->bodies);
    ray__free(cl->reported);
    ray__free(cl->inflight);
    atomic_store(&rt->place_any, NULL);
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
  /* The thread's work it never got to: tasks not sent fail as a stopped
   * runtime's do; answers not sent are let go (rank 0 failed them). */
  run_list(cl->to_answer, true);
  run_list(cl->to_send, true);
  cl->to_answer = cl->to_send = NULL;
  /* Tasks whose answer never came: their results failed with the runtime's
   * pending objects; let them go. */
  for (unsigned b = 0; b < FLIGHT_BUCKETS; b++)
    while (cl->flights[b] != NULL) {
      flight_t *f = cl->flights[b];
      cl->flights[b] = f->next;
      int none = 0;
      atomic_compare_exchange_strong(&f->t->fail_code, &none, RAY_ESHUTDOWN);
      ray__task_finish(f->t);
      ray__free(f);
    }
  /* Bodies that never came: their tasks' results failed with the rest. */
  for (int r = 0; r < nranks; r++)
    while (cl->bodies[r].head != NULL) {
      body_t *bd = cl->bodies[r].head;
      cl->bodies[r].head = bd->next;
      pend_t *p = bd->p;
      if (p != NULL && --p->left == 0) {
        int none = 0;
        atomic_compare_exchange_strong(&p->t->fail_code, &none, RAY_ESHUTDOWN);
        ray__task_finish(p->t);
        ray__free(p);
      }
      ray__free(bd);
    }
  ray__free(cl->bodies);
  ray__free(cl->reported);
  ray__free(cl->inflight);
  atomic_store(&rt->place_any, NULL);
  rt->cluster = NULL;
  uv_mutex_destroy(&cl->qmu);
  uv_cond_destroy(&cl->cv);
  uv_mutex_destroy(&cl->mu);
  ray__free(cl);
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

int ray__cluster_serve_wait(void) {
  RAY__API_ENTER(rt);
  /* A call that comes once shutdown began finds it stopping (guard.h) and
   * must not touch the cluster, which the shutdown frees. */
  if (atomic_load(&rt->stopping)) return 0;
  ray__cluster_t *cl = rt->cluster;
  if (cl == NULL || atomic_load(&rt->rank) == 0) return RAY_EINVAL;
  /* Inside the guard: the runtime (and cl) stay until we leave, and the
   * only shutdown that can start meanwhile is one the driver asked for,
   * which ends this wait first. */
  uv_mutex_lock(&cl->mu);
  while (!cl->stop_asked) uv_cond_wait(&cl->cv, &cl->mu);
  uv_mutex_unlock(&cl->mu);
  return 0;
}
