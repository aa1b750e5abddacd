/* transport_mpi.c - the transport on MPI (built with RAY_WITH_MPI): one
 * communication thread per rank makes every MPI call (ADR-006).
 *
 * Why one thread: a thread parked in a blocking MPI_Recv on each rank made
 * a 0.3 µs ping-pong take about 19 ms on the 2-core machines (Open MPI's
 * progress engine polls, and several ranks share the cores). So no thread
 * but this one ever enters MPI, and it never blocks there while it has
 * anything else to do.
 *
 * The thread's loop: take the queue other threads filled (a mutex and a
 * list), post each message with MPI_Isend; test the posted sends
 * (MPI_Testsome) and free what went; probe for arrivals (MPI_Iprobe, then
 * MPI_Recv of that message: only this thread receives, so nothing else can
 * take it in between, and a message with no memory to land in stays in MPI
 * until the next look) and hand each to on_recv. While there is traffic,
 * or a send of ours is still in flight (MPI progresses it only while we
 * call in), it keeps looping; spin_us after the last message it sleeps on
 * the queue's condition variable, poll_us at a time (a local sender wakes
 * it at once; an arriving message only at the next look, as MPI has no
 * wake-up event: the one bounded poll of the design). The looks thin out
 * once nothing has come for 100 ms: each empty one then doubles the gap,
 * up to POLL_BACKOFF times poll_us, and traffic brings it back to poll_us
 * (an idle rank then costs about 0.5% of a core instead of 8% at a steady
 * 200 µs). Thinning out sooner slowed sparse traffic: a 10,000-link chain
 * through 4 ranks on a loaded machine took 150 s instead of 2.
 *
 * Stopping is collective: every rank, as its last message, sends END to
 * every other rank (a zero-byte message on its own tag), and keeps
 * receiving until it has END from all of them, dropping whatever else
 * still arrives (its runtime is going: the cluster layer's handshake has
 * settled what mattered). As messages between two ranks keep their order,
 * nothing is addressed to a rank after the ENDs it waits for, so no send
 * towards it is left unmatched, whichever ranks talked to which. Bounded
 * by STOP_TIMEOUT_S: a peer that never ends (a dead one: fail-stop) is
 * logged and left.
 *
 * MPI's lifetime: when the host has not initialised MPI, this thread calls
 * MPI_Init_thread (asking for MPI_THREAD_MULTIPLE, needing at least
 * SERIALIZED, as only this thread calls MPI) and MPI_Finalize at stop, so
 * the whole of MPI's life is on one thread. A host-initialised MPI must
 * provide MPI_THREAD_MULTIPLE (the host's threads call it too); it is left
 * initialised. Either way we work on a duplicate of the communicator, so
 * our messages never match the host's receives, with MPI_ERRORS_RETURN. */
#include <limits.h>
#include <sched.h>
#include <mpi.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <uv.h>

#include "alloc.h"
#include "lock.h"
#include "log.h"
#include "rustyray/error.h"
#include "thread.h"
#include "transport.h"

enum { TAG = 1, TAG_END = 2, TAG_BATCH = 3 };
/* Small messages to one rank that are queued together go as one MPI
 * message (TAG_BATCH: each as a 4-byte big-endian length and its bytes), up
 * to BATCH_MAX bytes: MPI's cost per message (its progress engine, a
 * mutex round under MPI_THREAD_MULTIPLE) dominated many small calls. */
enum { BATCH_PART_MAX = 4096, BATCH_MAX = 64 * 1024 };
/* A rank idle for IDLE_NS looks for arrivals ever less often, down to once
 * every POLL_BACKOFF * poll_us (5 ms by default); before that, every
 * poll_us, so sparse traffic (a busy machine, a slow peer) is not slowed. */
#define POLL_BACKOFF 25
#define IDLE_NS (100ull * 1000 * 1000)
/* How long a stopping rank waits for every other rank's END. */
#define STOP_TIMEOUT_S 60

/* A message to send: a block of ours (freed once sent), or a caller's
 * bytes (`done` called once sent, or dropped). */
typedef struct out_msg_s {
  struct out_msg_s *next;
  void *data;
  size_t len;
  int dest;
  int tag;
  void (*done)(void *arg); /* NULL: data is ours */
  void *done_arg;
  bool body; /* a group's body: a message of its own, right after its head */
} out_msg_t;

/* Let a message go: sent, or never to be. */
static void msg_free(out_msg_t *m) {
  if (m->done != NULL)
    m->done(m->done_arg);
  else
    ray__free(m->data);
  ray__free(m);
}

struct ray__transport_s {
  ray__transport_opts_t opts;
  MPI_Comm comm;
  int rank, size;
  bool we_init; /* MPI_Init_thread was ours: MPI_Finalize is too */
  uv_thread_t thread;
  /* The outbound queue and the thread's sleep (mu, cv). */
  uv_mutex_t mu;
  uv_cond_t cv;
  out_msg_t *head, *tail;
  bool stop;     /* under mu: finish sending, then end (END to every rank) */
  bool stopping; /* under mu: sends refused from here on */
  /* Start-up's result, handed to ray__transport_start (under mu, cv). */
  bool started;
  int start_rc;
  /* The thread's own: sends in flight. */
  MPI_Request *reqs;
  out_msg_t **inflight;
  int ninflight, cap;
  int *done_idx;
  MPI_Status *statuses; /* of the completed sends: which failed */
  bool *lost;           /* per rank: MPI failed a message to or from it */
  int nlost;            /* such ranks: no END is awaited from them */
  bool oom_logged;      /* a message waits for memory, said once */
  bool woken;           /* under mu: on_tick has work (ray__transport_wake) */
};

/* ---- Start-up, on the thread ---- */

static int mpi_up(ray__transport_t *tr) {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (finalized) return RAY_ENOTSUP; /* MPI cannot start twice in a process */
  int provided = 0;
  if (!inited) {
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) return RAY_EIO;
    tr->we_init = true;
    if (provided < MPI_THREAD_SERIALIZED) return RAY_ENOTSUP;
  } else {
    MPI_Query_thread(&provided);
    if (provided < MPI_THREAD_MULTIPLE) return RAY_ENOTSUP;
  }
  MPI_Comm base =
      tr->opts.mpi_comm != NULL && !tr->we_init ? *(MPI_Comm *)tr->opts.mpi_comm : MPI_COMM_WORLD;
  if (MPI_Comm_dup(base, &tr->comm) != MPI_SUCCESS) return RAY_EIO;
  MPI_Comm_set_errhandler(tr->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(tr->comm, &tr->rank);
  MPI_Comm_size(tr->comm, &tr->size);
  tr->lost = ray__calloc((size_t)tr->size, sizeof *tr->lost);
  return tr->lost != NULL ? 0 : RAY_ENOMEM;
}

/* MPI failed a message to or from `rank`: say so once, and tell the caller
 * (the peer is lost: ADR-006's fail-stop model). */
static void peer_lost(ray__transport_t *tr, int rank, int mpi_err) {
  if (rank < 0 || rank >= tr->size || tr->lost[rank]) return;
  tr->lost[rank] = true;
  tr->nlost++;
  char text[MPI_MAX_ERROR_STRING] = "";
  int n = 0;
  MPI_Error_string(mpi_err, text, &n);
  ray__log(RAY_LOG_ERROR, "cluster: MPI failed a message with rank %d (%s): taken as lost", rank,
           text);
  if (tr->opts.on_lost != NULL) tr->opts.on_lost(tr->opts.arg, rank);
}

static void mpi_down(ray__transport_t *tr) {
  if (tr->comm != MPI_COMM_NULL) MPI_Comm_free(&tr->comm);
  if (tr->we_init) MPI_Finalize();
}

/* ---- The loop ---- */

/* Room for one more send in flight. Returns false when memory ran out. */
static bool grow(ray__transport_t *tr) {
  if (tr->ninflight < tr->cap) return true;
  int cap = tr->cap == 0 ? 64 : tr->cap * 2;
  MPI_Request *r = ray__realloc(tr->reqs, (size_t)cap * sizeof *r);
  if (r == NULL) return false;
  tr->reqs = r;
  out_msg_t **f = ray__realloc(tr->inflight, (size_t)cap * sizeof *f);
  if (f == NULL) return false;
  tr->inflight = f;
  int *d = ray__realloc(tr->done_idx, (size_t)cap * sizeof *d);
  if (d == NULL) return false;
  tr->done_idx = d;
  MPI_Status *st = ray__realloc(tr->statuses, (size_t)cap * sizeof *st);
  if (st == NULL) return false;
  tr->statuses = st;
  tr->cap = cap;
  return true;
}

/* Put what could not be posted back at the head of the queue. */
static void requeue(ray__transport_t *tr, out_msg_t *list) {
  if (list == NULL) return;
  out_msg_t *last = list;
  while (last->next != NULL) last = last->next;
  uv_mutex_lock(&tr->mu);
  last->next = tr->head;
  tr->head = list;
  if (tr->tail == NULL) tr->tail = last;
  uv_mutex_unlock(&tr->mu);
}

/* Whether m may go inside a batch: a small block of ours on the message
 * tag (not a caller's body, which must arrive as a message of its own:
 * the rank reads it straight into its destination). */
static bool batchable(const out_msg_t *m) {
  return !m->body && m->done == NULL && m->tag == TAG && m->len <= BATCH_PART_MAX;
}

/* Join the run of batchable messages to one rank at the head of `list`
 * (two or more) into one TAG_BATCH message, in order; the parts are freed.
 * Returns the new head (unchanged when there is no such run, or no memory:
 * they then go one by one). */
static out_msg_t *batch_run(out_msg_t *list) {
  size_t total = 0, n = 0;
  out_msg_t *end = list;
  while (end != NULL && batchable(end) && end->dest == list->dest &&
         total + 4 + end->len <= BATCH_MAX) {
    total += 4 + end->len;
    n++;
    end = end->next;
  }
  if (n < 2) return list;
  unsigned char *buf = ray__malloc(total);
  if (buf == NULL) return list;
  size_t off = 0;
  out_msg_t *m = list;
  while (m != end) {
    out_msg_t *next = m->next;
    uint32_t len = (uint32_t)m->len;
    for (int i = 0; i < 4; i++) buf[off + (size_t)i] = (unsigned char)(len >> (24 - 8 * i));
    if (m->len > 0) memcpy(buf + off + 4, m->data, m->len);
    off += 4 + m->len;
    if (m != list) msg_free(m);
    m = next;
  }
  ray__free(list->data); /* the first part's record carries the batch */
  list->data = buf;
  list->len = total;
  list->tag = TAG_BATCH;
  list->next = end;
  return list;
}

/* Post every queued message (with no memory to track more, the rest go
 * back to the queue for the next round). Returns whether any was posted. */
static bool post_sends(ray__transport_t *tr, out_msg_t *list) {
  bool any = false;
  while (list != NULL) {
    if (!grow(tr)) {
      requeue(tr, list);
      return any;
    }
    if (batchable(list)) list = batch_run(list);
    out_msg_t *m = list;
    list = m->next;
    if (tr->lost[m->dest]) { /* lost: nothing more goes there (the rest of a group neither) */
      msg_free(m);
      continue;
    }
    int err = MPI_Isend(m->data, (int)m->len, MPI_BYTE, m->dest, m->tag, tr->comm,
                        &tr->reqs[tr->ninflight]);
    if (err != MPI_SUCCESS) {
      int dest = m->dest;
      msg_free(m);
      peer_lost(tr, dest, err);
      continue;
    }
    tr->inflight[tr->ninflight++] = m;
    any = true;
  }
  return any;
}

/* Free the sends that completed. */
static void reap_sends(ray__transport_t *tr) {
  if (tr->ninflight == 0) return;
  int ndone = 0;
  int err = MPI_Testsome(tr->ninflight, tr->reqs, &ndone, tr->done_idx, tr->statuses);
  if ((err != MPI_SUCCESS && err != MPI_ERR_IN_STATUS) || ndone == MPI_UNDEFINED || ndone == 0)
    return;
  for (int i = 0; i < ndone; i++) {
    out_msg_t *m = tr->inflight[tr->done_idx[i]];
    int dest = m->dest;
    tr->inflight[tr->done_idx[i]] = NULL;
    msg_free(m);
    if (err == MPI_ERR_IN_STATUS && tr->statuses[i].MPI_ERROR != MPI_SUCCESS)
      peer_lost(tr, dest, tr->statuses[i].MPI_ERROR);
  }
  int k = 0; /* compact: completed requests are MPI_REQUEST_NULL now */
  for (int i = 0; i < tr->ninflight; i++) {
    if (tr->inflight[i] == NULL) continue;
    tr->reqs[k] = tr->reqs[i];
    tr->inflight[k++] = tr->inflight[i];
  }
  tr->ninflight = k;
}

/* Hand each part of a TAG_BATCH message to on_recv, in order (a part is
 * never kept: none is a body). A malformed one is dropped from where it
 * goes wrong. */
static void deliver_batch(ray__transport_t *tr, int src, const unsigned char *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    if (len - off < 4) break;
    uint32_t part = 0;
    for (int i = 0; i < 4; i++) part = (part << 8) | buf[off + (size_t)i];
    off += 4;
    if (part > len - off) break;
    (void)tr->opts.on_recv(tr->opts.arg, src, (void *)(buf + off), part);
    off += part;
  }
  if (off != len) ray__log(RAY_LOG_ERROR, "cluster: a malformed batch from rank %d", src);
}

/* Receive every message that has arrived: deliver it, or drop it once
 * stopping; count the ENDs. Returns how many arrived. */
static int receive(ray__transport_t *tr, bool stopping, int *ends) {
  int n = 0;
  for (;;) {
    int flag = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, tr->comm, &flag, &status) != MPI_SUCCESS || !flag)
      return n;
    int count = 0;
    MPI_Get_count(&status, MPI_BYTE, &count);
    void *placed = NULL; /* the caller's memory: never ours to free */
    if (!stopping && status.MPI_TAG != TAG_END && tr->opts.on_place != NULL)
      placed = tr->opts.on_place(tr->opts.arg, status.MPI_SOURCE, (size_t)count);
    void *buf = placed != NULL ? placed : ray__malloc(count > 0 ? (size_t)count : 1);
    if (buf == NULL) { /* it stays in MPI: the next look tries again */
      if (!tr->oom_logged)
        ray__log(RAY_LOG_ERROR, "cluster: no memory for a %d-byte message from rank %d yet", count,
                 status.MPI_SOURCE);
      tr->oom_logged = true;
      return n;
    }
    tr->oom_logged = false;
    int err = MPI_Recv(buf, count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, tr->comm,
                       MPI_STATUS_IGNORE);
    bool kept = false;
    if (err != MPI_SUCCESS) {
      if (placed == NULL) ray__free(buf);
      peer_lost(tr, status.MPI_SOURCE, err);
      n++;
      continue;
    }
    if (status.MPI_TAG == TAG_END)
      (*ends)++;
    else if (status.MPI_TAG == TAG_BATCH && !stopping)
      deliver_batch(tr, status.MPI_SOURCE, buf, (size_t)count);
    else if (!stopping)
      kept = tr->opts.on_recv(tr->opts.arg, status.MPI_SOURCE, buf, (size_t)count);
    if (!kept && placed == NULL) ray__free(buf);
    n++;
  }
}

/* Queue END for every other rank (under mu: after everything queued). */
static void queue_ends(ray__transport_t *tr) {
  for (int r = 0; r < tr->size; r++) {
    if (r == tr->rank) continue;
    out_msg_t *m = ray__calloc(1, sizeof *m);
    void *byte = m != NULL ? ray__malloc(1) : NULL;
    if (byte == NULL) { /* the peer then waits out its STOP_TIMEOUT_S */
      ray__free(m);
      ray__log(RAY_LOG_ERROR, "cluster: no memory to tell rank %d we stop", r);
      continue;
    }
    m->data = byte;
    m->dest = r;
    m->tag = TAG_END;
    if (tr->tail != NULL)
      tr->tail->next = m;
    else
      tr->head = m;
    tr->tail = m;
  }
}

static void thread_main(void *arg) {
  ray__transport_t *tr = arg;
  ray__thread_role = RAY__ROLE_COMM;
  tr->comm = MPI_COMM_NULL;
  int rc = mpi_up(tr);
  if (rc == 0 && tr->opts.on_setup != NULL) rc = tr->opts.on_setup(tr->opts.arg, tr);
  if (rc != 0) mpi_down(tr);
  uv_mutex_lock(&tr->mu);
  tr->started = true;
  tr->start_rc = rc;
  uv_cond_broadcast(&tr->cv);
  uv_mutex_unlock(&tr->mu);
  if (rc != 0) return;

  uint64_t spin_ns = (uint64_t)tr->opts.spin_us * 1000u;
  uint64_t poll_ns = (uint64_t)tr->opts.poll_us * 1000u, gap = poll_ns;
  uint64_t last = uv_hrtime(), deadline = 0;
  int ends = 0;
  bool stopping = false;
  for (;;) {
    uv_mutex_lock(&tr->mu);
    if (tr->stop && !stopping) { /* the last messages: END to everyone */
      stopping = true;
      queue_ends(tr);
      deadline = uv_hrtime() + (uint64_t)STOP_TIMEOUT_S * 1000000000u;
    }
    bool woken = tr->woken;
    tr->woken = false;
    uv_mutex_unlock(&tr->mu);
    bool busy = woken && tr->opts.on_tick != NULL && !stopping && tr->opts.on_tick(tr->opts.arg);
    uv_mutex_lock(&tr->mu);
    out_msg_t *list = tr->head;
    tr->head = tr->tail = NULL;
    uv_mutex_unlock(&tr->mu);
    busy |= post_sends(tr, list);
    reap_sends(tr);
    busy |= receive(tr, stopping, &ends) > 0;
    uint64_t now = uv_hrtime();
    if (stopping && ends + tr->nlost >= tr->size - 1 && tr->ninflight == 0) {
      uv_mutex_lock(&tr->mu);
      bool queued = tr->head != NULL;
      uv_mutex_unlock(&tr->mu);
      if (!queued) break;
    }
    if (stopping && now > deadline) {
      ray__log(RAY_LOG_ERROR,
               "cluster: %d of %d ranks did not end within %d s; %d sends still in flight",
               tr->size - 1 - ends, tr->size - 1, STOP_TIMEOUT_S, tr->ninflight);
      break;
    }
    if (busy) {
      last = now;
      gap = poll_ns;
    } else if (now - last < spin_ns || tr->ninflight > 0 || stopping) {
      sched_yield(); /* cooperative: the cores are shared with workers and other ranks */
    } else {
      /* Asleep: look again after `gap`, which doubles at every empty look
       * up to POLL_BACKOFF times poll_us (a local message wakes us at once;
       * one from another rank waits for the next look). */
      uv_mutex_lock(&tr->mu);
      if (tr->head == NULL && !tr->stop && !tr->woken)
        ray__thread_cond_wait_until(&tr->cv, &tr->mu, now + gap);
      uv_mutex_unlock(&tr->mu);
      if (now - last > IDLE_NS && gap < poll_ns * POLL_BACKOFF) gap *= 2;
    }
  }
  /* Sends still in flight here went to a peer that never ended (the
   * timeout): MPI may still read their buffers, so they are left. */
  if (tr->ninflight == 0) mpi_down(tr);
}

/* ---- The interface ---- */

int ray__transport_start(const ray__transport_opts_t *opts, ray__transport_t **out) {
  ray__transport_t *tr = ray__calloc(1, sizeof *tr);
  if (tr == NULL) return RAY_ENOMEM;
  tr->opts = *opts;
  if (uv_mutex_init(&tr->mu) != 0) {
    ray__free(tr);
    return RAY_ENOMEM;
  }
  if (uv_cond_init(&tr->cv) != 0) {
    uv_mutex_destroy(&tr->mu);
    ray__free(tr);
    return RAY_ENOMEM;
  }
  int rc = ray__thread_create(&tr->thread, thread_main, tr);
  if (rc == 0) {
    uv_mutex_lock(&tr->mu);
    while (!tr->started) uv_cond_wait(&tr->cv, &tr->mu);
    rc = tr->start_rc;
    uv_mutex_unlock(&tr->mu);
    if (rc != 0) ray__thread_join(&tr->thread);
  }
  if (rc != 0) {
    ray__free(tr->lost);
    uv_cond_destroy(&tr->cv);
    uv_mutex_destroy(&tr->mu);
    ray__free(tr);
    return rc;
  }
  *out = tr;
  return 0;
}

void ray__transport_wake(ray__transport_t *tr) {
  uv_mutex_lock(&tr->mu);
  tr->woken = true;
  uv_cond_signal(&tr->cv);
  uv_mutex_unlock(&tr->mu);
}

int ray__transport_rank(const ray__transport_t *tr) {
  return tr->rank;
}

int ray__transport_size(const ray__transport_t *tr) {
  return tr->size;
}

int ray__transport_send(ray__transport_t *tr, int dest, void *data, size_t len) {
  return ray__transport_send_group(tr, dest, data, len, 0, NULL);
}

int ray__transport_send_group(ray__transport_t *tr, int dest, void *head, size_t len, size_t nbody,
                              const ray__transport_body_t *bodies) {
  int rc = dest < 0 || dest >= tr->size || len > INT_MAX ? RAY_EINVAL : 0;
  for (size_t i = 0; i < nbody && rc == 0; i++)
    if (bodies[i].len > INT_MAX) rc = RAY_EINVAL;
  /* One list, queued at once: nobody's message comes in between. */
  out_msg_t *first = NULL, **link = &first;
  for (size_t i = 0; i <= nbody && rc == 0; i++) {
    out_msg_t *m = ray__calloc(1, sizeof *m);
    if (m == NULL) {
      rc = RAY_ENOMEM;
      break;
    }
    m->dest = dest;
    m->tag = TAG;
    if (i == 0) {
      m->data = head;
      m->len = len;
    } else {
      m->data = (void *)bodies[i - 1].data;
      m->len = bodies[i - 1].len;
      m->body = true;
      m->done = bodies[i - 1].done;
      m->done_arg = bodies[i - 1].arg;
    }
    *link = m;
    link = &m->next;
  }
  if (rc == 0) {
    uv_mutex_lock(&tr->mu);
    if (tr->stopping) {
      rc = RAY_ESHUTDOWN;
    } else {
      out_msg_t *last = first;
      while (last->next != NULL) last = last->next;
      if (tr->tail != NULL)
        tr->tail->next = first;
      else
        tr->head = first;
      tr->tail = last;
      uv_cond_signal(&tr->cv);
    }
    uv_mutex_unlock(&tr->mu);
    if (rc == 0) return 0;
  }
  /* Not queued: every part is let go, as if sent. */
  size_t made = 0;
  while (first != NULL) {
    out_msg_t *m = first;
    first = m->next;
    msg_free(m);
    made++;
  }
  if (made == 0) ray__free(head);
  for (size_t i = made > 0 ? made - 1 : 0; i < nbody; i++)
    if (bodies[i].done != NULL) bodies[i].done(bodies[i].arg);
  return rc;
}

int ray__transport_allgather(ray__transport_t *tr, const void *mine, size_t len, void *all) {
  if (len > INT_MAX) return RAY_EINVAL;
  return MPI_Allgather(mine, (int)len, MPI_BYTE, all, (int)len, MPI_BYTE, tr->comm) == MPI_SUCCESS
             ? 0
             : RAY_EIO;
}

int ray__transport_bcast(ray__transport_t *tr, void *buf, size_t len, int root) {
  if (len > INT_MAX) return RAY_EINVAL;
  return MPI_Bcast(buf, (int)len, MPI_BYTE, root, tr->comm) == MPI_SUCCESS ? 0 : RAY_EIO;
}

void ray__transport_stop(ray__transport_t *tr) {
  if (tr == NULL) return;
  uv_mutex_lock(&tr->mu);
  tr->stopping = true;
  tr->stop = true;
  uv_cond_signal(&tr->cv);
  uv_mutex_unlock(&tr->mu);
  ray__thread_join(&tr->thread);
  ray__free(tr->reqs);
  ray__free(tr->inflight);
  ray__free(tr->done_idx);
  ray__free(tr->statuses);
  ray__free(tr->lost);
  uv_cond_destroy(&tr->cv);
  uv_mutex_destroy(&tr->mu);
  ray__free(tr);
}
