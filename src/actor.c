/* actor.c - actors: classes, creation, ordered method calls, kill,
 * restarts, handles and names.
 *
 * An actor is a mailbox of method calls run on the shared worker pool like
 * a serial queue: no thread per actor. A call is a task (task.c runs it)
 * whose ops table is method_ops here: it joins the mailbox when submitted,
 * is admitted when ready, runs with the actor's state, and on done hands
 * back the actor's next call or retries after a restart. The constructor's
 * ops are ctor_ops; task.c never calls in here otherwise, so what a call
 * does as an actor's is all in this file.
 * Calls join the mailbox in submission order; the head is admitted (pushed
 * to a worker) once its ref arguments are ready and fewer than
 * max_concurrency calls run. A worker finishing a call takes the actor's
 * next admissible call inline, up to RAY__ACTOR_BATCH in a row, then puts
 * it back on the queues so other actors and tasks get their turn.
 *
 * The constructor is a task (ctor_ops) queued before any call; the actor
 * keeps it (and so its arguments) to run it again on a restart.
 *
 * States: STARTING (constructor pending) -> ALIVE -> RESTARTING (destructor,
 * then constructor again, once no call runs) -> ALIVE ..., and DEAD for
 * good (killed, constructor failed, restarts exhausted, or released). A dead
 * actor fails queued and future calls with RAY_EACTORDIED; its destructor
 * runs once, when no call of it runs any more.
 *
 * The destructor is actor work like a call: it is posted to the workers as
 * a runnable embedded in the actor (`dtor_rn`, so posting never allocates
 * or fails), never run on the thread that killed or released the actor. A
 * restart's constructor is queued by that runnable once the destructor has
 * returned, so one destructor at most is in flight per actor and `dtor_rn`
 * is free again before the next construction can owe one. Once shutdown has
 * begun, the thread calling ray_shutdown() runs the destructors still owed:
 * the runnable's drop (queues drained after the workers are joined), or
 * ray__actors_shutdown; a kill or release racing with it runs its own
 * (dtor_post).
 *
 * Lifetime: `refs` counts the table's hold (until the last handle goes, or
 * shutdown), one per task of the actor, a posted destructor, and lookups in
 * flight.
 *
 * Locks: the registry rwlock (table, names, handles, the list of all) is a
 * leaf. An actor's `mu` may be taken under a shard lock (a call's arguments
 * became ready) and takes only scheduler queue locks inside. User code
 * (constructor, destructor) never runs under either. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "error_internal.h"
#include "internal.h"
#include "lock.h"

enum { A_STARTING, A_ALIVE, A_RESTARTING, A_DEAD };
enum { RAY__ACTOR_BATCH = 64 };

typedef struct ray__class_s {
  const ray_actor_class_t *cls;
  ray__func_t ctor;     /* "Class.__init__", no returns */
  ray__func_t *methods; /* "Class.method", one per method */
  struct ray__class_s *next;
} ray__class_t;

struct ray__actor_s {
  uint64_t id;
  ray__runtime_t *rt;
  ray__class_t *klass;
  atomic_int refs;
  /* Registry lock: */
  char *name;
  unsigned handles;
  bool in_table;
  struct ray__actor_s *hnext;
  struct ray__actor_s *all_prev, *all_next;
  /* Actor lock (a ray__lock_t: short sections only, never a wait): */
  ray__lock_t mu;
  int state;
  bool constructed; /* the destructor is owed */
  bool closing;     /* no handle left: destroy once idle */
  bool keep;        /* detached or named: handles going to zero do not destroy */
  atomic_bool dead; /* dead for good (readable under the registry lock) */
  bool ctor_busy;   /* the constructor is queued or running */
  void *state_ptr;
  ray__task_t *ctor;
  ray__task_t *mb_head, *mb_tail;
  uint32_t running;
  uint32_t batch;
  uint32_t max_conc;
  uint32_t restarts_left;
  uint32_t restarts; /* restarts begun so far (ray_ctx_actor_restarts) */
  uint32_t max_task_retries;
  ray_error_t *death; /* set once, before the state becomes DEAD */
  /* The posted destructor (see the top): written before the post, read by
   * the runnable; one in flight at a time. */
  ray__runnable_t dtor_rn;
  void *dtor_state;
  ray__task_t *dtor_then; /* a restart's constructor, queued after it */
  /* A stub of an actor on another rank (cluster mode; home < 0: local).
   * smu orders its calls' numbering with their submission, which may wait
   * (a stored argument), so it is a mutex, not `mu`. */
  int home;
  bool job_named; /* its name is the job's (rank 0's registry), not this table's */
  uv_mutex_t smu;
  uint64_t next_seq; /* smu: the number of its next call (0 was the constructor) */
  uint64_t serial;   /* its life here: 0 when this rank made it, else adopted (a new id) */
};

static const ray__task_ops_t method_ops, ctor_ops;
static int handle_retain(ray__runtime_t *rt, uint64_t id);
static void handle_drop(ray__runtime_t *rt, uint64_t id);
static const ray__handle_ops_t handle_ops = {.retain = handle_retain, .release = handle_drop};

/* What to do once the actor lock is released. */
typedef struct actions_s {
  ray__task_t *killed; /* calls failed by the death (linked by rn.next) */
  bool dtor;
  void *dtor_state;
  ray__task_t *ctor_start; /* run the constructor (again) */
  ray__task_t *ctor_drop;  /* the constructor is no longer needed */
  bool unname;
} actions_t;

/* ---- Registry ---- */

int ray__actors_init(ray__actors_t *reg) {
  memset(reg, 0, sizeof *reg);
  atomic_init(&reg->remote, NULL);
  reg->buckets = ray__calloc(64, sizeof *reg->buckets);
  if (reg->buckets == NULL) return RAY_ENOMEM;
  reg->mask = 63;
  reg->handle_ops = &handle_ops;
  if (ray__rwlock_init(&reg->lock) != 0) goto fail;
  if (uv_mutex_init(&reg->classes_mu) != 0) {
    ray__rwlock_destroy(&reg->lock);
    goto fail;
  }
  return 0;
fail:
  ray__free(reg->buckets);
  return RAY_ENOMEM;
}

void ray__actors_destroy(ray__actors_t *reg) {
  ray__class_t *k = reg->classes;
  while (k != NULL) {
    ray__class_t *next = k->next;
    for (size_t i = 0; i < k->cls->num_methods; i++) ray__free(k->methods[i].name);
    ray__free(k->methods);
    ray__free(k->ctor.name);
    ray__free(k);
    k = next;
  }
  ray__free(reg->buckets);
  uv_mutex_destroy(&reg->classes_mu);
  ray__rwlock_destroy(&reg->lock);
}

static ray__actor_t **bucket_of(ray__actors_t *reg, uint64_t id) {
  return &reg->buckets[(id * 0x9E3779B97F4A7C15ull >> 40) & reg->mask];
}

/* Registry lock held (either mode). */
static ray__actor_t *table_find(ray__actors_t *reg, uint64_t id) {
  ray__actor_t *a = *bucket_of(reg, id);
  while (a != NULL && a->id != id) a = a->hnext;
  return a;
}

/* Write lock held. */
static void table_insert(ray__actors_t *reg, ray__actor_t *a) {
  if (reg->count >= reg->mask + 1) { /* grow; on failure chains just get longer */
    size_t nb = (reg->mask + 1) * 2;
    ray__actor_t **b = ray__calloc(nb, sizeof *b);
    if (b != NULL) {
      ray__actor_t **old = reg->buckets;
      size_t oldn = reg->mask + 1;
      reg->buckets = b;
      reg->mask = nb - 1;
      for (size_t i = 0; i < oldn; i++) {
        ray__actor_t *x = old[i];
        while (x != NULL) {
          ray__actor_t *next = x->hnext;
          ray__actor_t **h = bucket_of(reg, x->id);
          x->hnext = *h;
          *h = x;
          x = next;
        }
      }
      ray__free(old);
    }
  }
  ray__actor_t **h = bucket_of(reg, a->id);
  a->hnext = *h;
  *h = a;
  a->in_table = true;
  reg->count++;
}

/* Write lock held. */
static void table_remove(ray__actors_t *reg, ray__actor_t *a) {
  if (!a->in_table) return;
  for (ray__actor_t **p = bucket_of(reg, a->id); *p != NULL; p = &(*p)->hnext) {
    if (*p == a) {
      *p = a->hnext;
      break;
    }
  }
  a->in_table = false;
  reg->count--;
  ray__free(a->name);
  a->name = NULL;
}

/* Write lock held. */
static ray__actor_t *find_by_name(ray__actors_t *reg, const char *name) {
  for (ray__actor_t *a = reg->all; a != NULL; a = a->all_next)
    if (a->in_table && a->name != NULL && strcmp(a->name, name) == 0) return a;
  return NULL;
}

static void actor_free(ray__actor_t *a) {
  ray__actors_t *reg = &a->rt->actors;
  ray__rwlock_wrlock(&reg->lock);
  if (a->all_prev != NULL)
    a->all_prev->all_next = a->all_next;
  else
    reg->all = a->all_next;
  if (a->all_next != NULL) a->all_next->all_prev = a->all_prev;
  ray__rwlock_wrunlock(&reg->lock);
  ray_error_free(a->death);
  ray__free(a->name);
  if (a->home >= 0) uv_mutex_destroy(&a->smu);
  atomic_fetch_sub(&reg->alive, 1);
  ray__free(a);
}

static void actor_unref(ray__actor_t *a) {
  if (atomic_fetch_sub(&a->refs, 1) == 1) actor_free(a);
}

/* The actor behind a handle, with a reference for the caller. */
static ray__actor_t *lookup_hold(ray__runtime_t *rt, uint64_t id) {
  ray__rwlock_rdlock(&rt->actors.lock);
  ray__actor_t *a = id != 0 ? table_find(&rt->actors, id) : NULL;
  if (a != NULL) atomic_fetch_add(&a->refs, 1);
  ray__rwlock_rdunlock(&rt->actors.lock);
  return a;
}

/* ---- Classes ---- */

static bool class_valid(const ray_actor_class_t *cls) {
  if (cls->name == NULL || *cls->name == '\0') return false;
  if (cls->num_methods > 0 && cls->methods == NULL) return false;
  for (size_t i = 0; i < cls->num_methods; i++) {
    const ray_method_def_t *m = &cls->methods[i];
    if (m->name == NULL || m->fn == NULL || m->return_types == NULL || m->num_returns == 0 ||
        m->num_returns > RAY_MAX_RETURNS)
      return false;
    for (size_t k = 0; k < m->num_returns; k++)
      if (m->return_types[k] == 0) return false;
  }
  return true;
}

static char *join_name(const char *a, const char *b) {
  size_t n = strlen(a) + 1 + strlen(b) + 1;
  char *s = ray__malloc(n);
  if (s != NULL) snprintf(s, n, "%s.%s", a, b);
  return s;
}

/* The runtime's record of `cls`, made on first use. */
static int class_get(ray__runtime_t *rt, const ray_actor_class_t *cls, ray__class_t **out) {
  ray__actors_t *reg = &rt->actors;
  int rc = 0;
  uv_mutex_lock(&reg->classes_mu);
  ray__class_t *k = reg->classes;
  while (k != NULL && k->cls != cls) k = k->next;
  if (k == NULL) {
    k = ray__calloc(1, sizeof *k);
    if (k == NULL) goto oom;
    k->cls = cls;
    k->methods = ray__calloc(cls->num_methods, sizeof *k->methods);
    if (k->methods == NULL || (k->ctor.name = join_name(cls->name, "__init__")) == NULL) goto oom;
    for (size_t i = 0; i < cls->num_methods; i++) {
      ray__func_t *f = &k->methods[i];
      if ((f->name = join_name(cls->name, cls->methods[i].name)) == NULL) goto oom;
      f->fn = cls->methods[i].fn;
      f->nreturns = (uint32_t)cls->methods[i].num_returns;
      memcpy(f->types, cls->methods[i].return_types, f->nreturns * sizeof *f->types);
    }
    k->next = reg->classes;
    reg->classes = k;
  }
  *out = k;
  goto out;
oom:
  if (k != NULL) {
    for (size_t i = 0; k->methods != NULL && i < cls->num_methods; i++)
      ray__free(k->methods[i].name);
    ray__free(k->methods);
    ray__free(k->ctor.name);
    ray__free(k);
  }
  rc = RAY_ENOMEM;
out:
  uv_mutex_unlock(&reg->classes_mu);
  return rc;
}

/* Static class descriptors (ray_static_class_add), for actors that other
 * ranks create here by class name. */
static uv_once_t statics_once = UV_ONCE_INIT;
static uv_mutex_t statics_mu;
static ray_static_class_t *statics;

static void statics_init(void) {
  if (uv_mutex_init(&statics_mu) != 0) abort(); /* uv_once cannot report it */
}

void ray_static_class_add(ray_static_class_t *c) {
  if (c == NULL || c->cls == NULL) return;
  uv_once(&statics_once, statics_init);
  uv_mutex_lock(&statics_mu);
  ray_static_class_t *p = statics;
  while (p != NULL && p != c) p = p->next;
  if (p == NULL) {
    c->next = statics;
    statics = c;
  }
  uv_mutex_unlock(&statics_mu);
}

const ray_actor_class_t *ray__actors_class_named(ray__runtime_t *rt, const char *name) {
  const ray_actor_class_t *found = NULL;
  ray__actors_t *reg = &rt->actors;
  uv_mutex_lock(&reg->classes_mu);
  for (ray__class_t *k = reg->classes; k != NULL && found == NULL; k = k->next)
    if (strcmp(k->cls->name, name) == 0) found = k->cls;
  uv_mutex_unlock(&reg->classes_mu);
  if (found != NULL) return found;
  uv_once(&statics_once, statics_init);
  uv_mutex_lock(&statics_mu);
  for (ray_static_class_t *c = statics; c != NULL && found == NULL; c = c->next)
    if (c->cls->name != NULL && strcmp(c->cls->name, name) == 0) found = c->cls;
  uv_mutex_unlock(&statics_mu);
  return found;
}

void ray__actors_set_remote(ray__actors_t *reg, const ray__actor_remote_t *ops) {
  atomic_store(&reg->remote, ops);
}

int ray_actor_method(const ray_actor_class_t *cls, const char *name, uint32_t *out) {
  if (cls == NULL || name == NULL || out == NULL) return RAY_EINVAL;
  for (size_t i = 0; i < cls->num_methods; i++) {
    if (cls->methods != NULL && cls->methods[i].name != NULL &&
        strcmp(cls->methods[i].name, name) == 0) {
      *out = (uint32_t)i;
      return 0;
    }
  }
  return RAY_ENOTFOUND;
}

/* ---- The state machine (actor lock held unless said) ---- */

/* Push admissible calls to the workers; `yield`: behind the work already
 * queued (the actor's turn is over). */
static void admit_locked(ray__actor_t *a, bool yield) {
  if (atomic_load(&a->rt->stopping)) return; /* shutdown finishes the mailbox */
  while (a->state == A_ALIVE && a->running < a->max_conc && a->mb_head != NULL &&
         a->mb_head->ready) {
    ray__task_t *t = a->mb_head;
    a->mb_head = (ray__task_t *)t->rn.next;
    if (a->mb_head == NULL) a->mb_tail = NULL;
    t->admitted = true;
    a->running++;
    if (yield)
      ray__sched_yield(&a->rt->sched, &t->rn);
    else
      ray__sched_push(&a->rt->sched, &t->rn);
  }
}

/* Take the next admissible call for the worker that just finished one.
 * *yield is set when the actor's turn is over (a batch ran inline): the
 * rest goes behind the work already queued, so a long mailbox does not
 * starve other actors and tasks. */
static ray__task_t *next_inline_locked(ray__actor_t *a, bool *yield) {
  if (a->state != A_ALIVE || a->running >= a->max_conc || a->mb_head == NULL ||
      !a->mb_head->ready || atomic_load(&a->rt->stopping))
    return NULL;
  if (++a->batch > RAY__ACTOR_BATCH) {
    a->batch = 0;
    *yield = true;
    return NULL;
  }
  ray__task_t *t = a->mb_head;
  a->mb_head = (ray__task_t *)t->rn.next;
  if (a->mb_head == NULL) a->mb_tail = NULL;
  t->admitted = true;
  a->running++;
  return t;
}

/* Mark the actor dead and take its queued calls. */
static void die_locked(ray__actor_t *a, actions_t *act) {
  a->state = A_DEAD;
  ray__task_t *t = a->mb_head;
  a->mb_head = a->mb_tail = NULL;
  while (t != NULL) {
    ray__task_t *next = (ray__task_t *)t->rn.next;
    int expected = RAY__T_PENDING;
    bool cancelled_now = atomic_compare_exchange_strong(&t->state, &expected, RAY__T_CANCELED);
    /* A call ray_cancel failed earlier is in the mailbox too (not admitted
     * yet): nobody else would finish it once the mailbox is gone. */
    if (cancelled_now || expected == RAY__T_CANCELED) {
      /* Its own link: a call still waiting for arguments may be pushed to a
       * worker (rn) by call_ready any moment now; and held, so it
       * cannot be freed while run_actions fails it. */
      ray__task_hold(t);
      t->kill_ready = t->ready;
      t->kill_cancelled = !cancelled_now;
      t->kill_next = act->killed;
      act->killed = t;
    }
    t = next;
  }
  atomic_store(&a->dead, true);
  act->unname = true;
}

/* Once no call runs: owed destructor, restart, final cleanup. */
static void settle_locked(ray__actor_t *a, actions_t *act) {
  if (a->running > 0 || a->ctor_busy) return;
  if (a->state == A_RESTARTING) {
    if (a->constructed) {
      act->dtor = true;
      act->dtor_state = a->state_ptr;
      a->constructed = false;
    }
    a->state_ptr = NULL;
    a->ctor_busy = true;
    atomic_store(&a->ctor->state, RAY__T_PENDING);
    act->ctor_start = a->ctor;
    return;
  }
  if (a->closing && a->state != A_DEAD && a->mb_head == NULL) {
    a->state = A_DEAD; /* released and idle: destroy */
    atomic_store(&a->dead, true);
    act->unname = true;
  }
  if (a->state == A_DEAD) {
    if (a->constructed) {
      act->dtor = true;
      act->dtor_state = a->state_ptr;
      a->constructed = false;
    }
    if (a->ctor != NULL) {
      act->ctor_drop = a->ctor;
      a->ctor = NULL;
    }
  }
}

static void death_error(ray__actor_t *a, const char *why) {
  if (a->death != NULL) return;
  ray_error_new(&a->death, RAY_EACTORDIED, a->klass->cls->name, "actor %s %s", a->klass->cls->name,
                why);
}

/* Run the posted destructor, then queue the restart's constructor (when
 * `start` and there is one). Reads everything before that push: the
 * constructor may finish and post the next destructor at once. */
static void dtor_finish(ray__actor_t *a, bool start) {
  void *state = a->dtor_state;
  ray__task_t *then = a->dtor_then;
  a->klass->cls->dtor(state);
  if (then != NULL && start) ray__sched_push(&a->rt->sched, &then->rn);
  actor_unref(a); /* the post's */
}

static void dtor_run(ray__runnable_t *r) {
  dtor_finish((ray__actor_t *)((char *)r - offsetof(ray__actor_t, dtor_rn)), true);
}

/* Shutdown drops the runnable after the workers stopped: the destructor is
 * still owed and runs here, on the thread calling ray_shutdown(). A
 * restart's constructor is not queued any more: the actor still holds it
 * (ctor_busy), and ray__actors_shutdown drops it. */
static void dtor_drop(ray__runnable_t *r) {
  dtor_finish((ray__actor_t *)((char *)r - offsetof(ray__actor_t, dtor_rn)), false);
}

/* Destroy `state` on a worker, then queue `then` (a restart's constructor,
 * or NULL). A worker's push lands on its own queue, which shutdown drains
 * after joining it. A host thread's push is safe while it sees `stopping`
 * unset: shutdown waits for such a caller to leave its public call before
 * it joins the workers (guard.h). One that sees it set (the thread calling
 * ray_shutdown(), or a call racing with it) might push onto a queue already
 * drained, so it runs the destructor here and now. */
static void dtor_post(ray__actor_t *a, void *state, ray__task_t *then) {
  ray__runtime_t *rt = a->rt;
  atomic_fetch_add(&a->refs, 1); /* the post's */
  a->dtor_state = state;
  a->dtor_then = then;
  a->dtor_rn.run = dtor_run;
  a->dtor_rn.drop = dtor_drop;
  if (ray__worker_self() == NULL && atomic_load(&rt->stopping))
    dtor_drop(&a->dtor_rn);
  else
    ray__sched_push(&rt->sched, &a->dtor_rn);
}

/* Carry out `act` with no lock held. The caller holds a reference on `a`
 * throughout (the constructor's, dropped last here, counts). */
static void run_actions(ray__actor_t *a, actions_t *act) {
  ray__runtime_t *rt = a->rt;
  bool drop_table = false;
  if (act->unname) {
    ray__rwlock_wrlock(&rt->actors.lock);
    ray__free(a->name); /* the name is free for a new actor at once */
    a->name = NULL;
    /* A kept (named or detached) actor with no handle left goes now. */
    if (a->in_table && a->handles == 0) {
      table_remove(&rt->actors, a);
      drop_table = true;
    }
    ray__rwlock_wrunlock(&rt->actors.lock);
  }
  ray__task_t *t = act->killed;
  while (t != NULL) {
    ray__task_t *next = t->kill_next;
    if (!t->kill_cancelled) /* a cancelled call's results carry RAY_ECANCELED already */
      ray__task_fail(t, RAY_EACTORDIED, 0, a->death, "%s: actor died before the call ran", t->name);
    /* A call waiting for arguments is finished when they arrive (its state
     * says cancelled); one that was ready sits in no queue: finish it now. */
    if (t->kill_ready) {
      actor_unref(a); /* before it counts finished: ray__quiesce sees the actor gone */
      ray__task_finish(t);
    }
    ray__task_unref(t); /* die_locked's hold */
    t = next;
  }
  if (act->dtor && a->klass->cls->dtor != NULL)
    dtor_post(a, act->dtor_state, act->ctor_start); /* queues the constructor after it */
  else if (act->ctor_start != NULL)
    ray__sched_push(&rt->sched, &act->ctor_start->rn);
  if (drop_table) {
    ray__lock(&a->mu);
    a->closing = true; /* the table's reference goes: nothing else may drop it */
    ray__unlock(&a->mu);
    actor_unref(a);
  }
  if (act->ctor_drop != NULL) {
    actor_unref(a); /* before it counts finished: ray__quiesce sees the actor gone */
    ray__task_finish(act->ctor_drop);
  }
}

/* ---- The ops of an actor's tasks (task.h) ---- */

/* A call joins its actor's mailbox, in submission order. When every
 * argument is resolved already (only the submission guard is left on
 * `deps`: no watch can fire any more), it takes the guard and is admitted
 * in the same critical section, as call_ready would do: returns true. */
static bool call_submitted(ray__task_t *t) {
  ray__actor_t *a = t->owner;
  bool now_ready = false;
  ray__lock(&a->mu);
  bool dead = a->state == A_DEAD;
  if (!dead) {
    t->retries_left = a->max_task_retries;
    t->rn.next = NULL;
    if (a->mb_tail != NULL)
      a->mb_tail->rn.next = &t->rn;
    else
      a->mb_head = t;
    a->mb_tail = t;
    if (atomic_load(&t->deps) == 1) { /* the guard, ours: nothing else can change it */
      atomic_store(&t->deps, 0);
      t->ready = true;
      admit_locked(a, false);
      now_ready = true;
    }
  }
  ray__unlock(&a->mu);
  if (dead) {
    int expected = RAY__T_PENDING;
    if (atomic_compare_exchange_strong(&t->state, &expected, RAY__T_CANCELED))
      ray__task_fail(t, RAY_EACTORDIED, 0, a->death, "%s: the actor is dead", t->name);
    /* It is finished when its arguments are ready (call_ready). */
  }
  return now_ready;
}

/* A call's arguments are all resolved (maybe under a shard lock). */
static void call_ready(ray__task_t *t) {
  ray__actor_t *a = t->owner;
  ray__lock(&a->mu);
  if (a->state == A_DEAD) {
    /* Not in the mailbox (a dying actor takes it, a dead one never links
     * it): cancelled already, it only has to be finished. */
    ray__unlock(&a->mu);
    ray__task_push(t);
    return;
  }
  /* Still in the mailbox, even if ray_cancel failed it: it leaves through
   * admission, in order, so the calls behind it are never cut off (its rn
   * link is the mailbox's), and finishes on the worker. */
  t->ready = true;
  admit_locked(a, false);
  ray__unlock(&a->mu);
}

/* A method runs with the actor's state (stable while a call runs); its
 * RAY_EACTORDIED ends the actor, as ray_actor_exit does. */
static int call_body(ray__task_t *t, ray_task_ctx_t *ctx) {
  ray__actor_t *a = t->owner;
  int rc = t->fn->fn(ctx, a->state_ptr);
  if (rc == RAY_EACTORDIED) ctx->exit = true;
  return rc;
}

/* A call has run, or will not (cancelled, failed arguments, shutdown);
 * end->fatal: it ended its actor. Returns the next call of this actor to
 * run inline on this worker (never on a host), or NULL. Finishes `t`, unless it is retried
 * after the restart (then it goes back to the head of the mailbox). */
static ray__task_t *call_done(ray__task_t *t, ray__task_end_t *end) {
  ray__actor_t *a = t->owner;
  bool fatal = end->fatal;
  actions_t act = {0};
  ray__task_t *next = NULL;
  bool retry = false;
  ray_error_free(end->err); /* in its results already */
  ray__lock(&a->mu);
  if (t->admitted) {
    t->admitted = false;
    a->running--;
  }
  if (fatal) {
    bool stopping = atomic_load(&a->rt->stopping);
    if (end->final && a->state != A_DEAD) { /* an intended exit: never restarts */
      death_error(a, "exited");
      die_locked(a, &act);
    } else if (a->state == A_ALIVE && a->restarts_left > 0 && !stopping) {
      a->state = A_RESTARTING;
      a->restarts_left--;
      a->restarts++;
    } else if (a->state != A_RESTARTING) {
      death_error(a, "exited");
      die_locked(a, &act);
    }
    if (a->state == A_RESTARTING && t->retries_left > 0) {
      t->retries_left--; /* run it again once the actor is back, first in line */
      atomic_store(&t->state, RAY__T_PENDING);
      t->rn.next = a->mb_head ? &a->mb_head->rn : NULL;
      a->mb_head = t;
      if (a->mb_tail == NULL) a->mb_tail = t;
      retry = true;
    }
  }
  bool yield = false;
  /* A host that ran the call it waited for (wait.c) runs no other: the
   * next call goes to the workers. */
  if (!fatal && ray__worker_self() != NULL) next = next_inline_locked(a, &yield);
  admit_locked(a, yield);
  settle_locked(a, &act);
  ray__unlock(&a->mu);
  if (!retry && fatal) ray__task_fail(t, RAY_EACTORDIED, 0, NULL, "%s ended its actor", t->name);
  run_actions(a, &act); /* while t still holds the actor */
  if (!retry) {
    actor_unref(a); /* before it counts finished: ray__quiesce sees the actor gone */
    ray__task_finish(t);
  }
  return next;
}

/* Run the class's constructor, storing the actor's state. */
static int ctor_body(ray__task_t *t, ray_task_ctx_t *ctx) {
  ray__actor_t *a = t->owner;
  void *state = NULL;
  int rc = a->klass->cls->ctor != NULL ? a->klass->cls->ctor(ctx, &state) : 0;
  ray__lock(&a->mu);
  a->state_ptr = state;
  ray__unlock(&a->mu);
  return rc;
}

/* The constructor has run, or cannot (shutdown, a failed argument): the
 * actor comes alive, or dies with the reason as its death's cause. The
 * actor keeps the task (a->ctor) to run it again on a restart. */
static ray__task_t *ctor_done(ray__task_t *ctor, ray__task_end_t *end) {
  ray__actor_t *a = ctor->owner;
  ray_error_t *err = end->err;
  bool failed = !end->ran || end->code != 0;
  if (failed && err == NULL) {
    if (!end->ran) {
      ray_error_new(&err, end->code, ctor->name, "%s could not run: %s%s", ctor->name,
                    ray_err_name(end->code), end->cause_id ? " (an argument failed)" : "");
      if (err != NULL) ray_error_set_task_id(err, ctor->task_id);
    } else {
      ray_error_new(&err, RAY_ENOMEM, NULL, NULL);
    }
  }
  actions_t act = {0};
  atomic_fetch_add(&a->refs, 1); /* admitted calls may drop the constructor's meanwhile */
  ray__lock(&a->mu);
  a->ctor_busy = false;
  atomic_store(&ctor->state, RAY__T_DONE);
  if (!failed) {
    a->constructed = true;
    if (a->state == A_STARTING || a->state == A_RESTARTING) a->state = A_ALIVE;
    admit_locked(a, false);
  } else if (a->state != A_DEAD) {
    if (a->death == NULL) {
      ray_error_t *death = NULL;
      if (ray_error_new(&death, RAY_EACTORDIED, a->klass->cls->name,
                        "actor %s: the constructor failed", a->klass->cls->name) == 0) {
        ray_error_set_cause(death, err);
        err = NULL;
      }
      a->death = death;
    }
    die_locked(a, &act);
  }
  settle_locked(a, &act);
  ray__unlock(&a->mu);
  ray_error_free(err);
  run_actions(a, &act);
  actor_unref(a);
  return NULL;
}

static const ray__task_ops_t method_ops = {
    .kind = RAY__TASK_METHOD,
    .counted = true,
    .submitted = call_submitted,
    .ready = call_ready,
    .body = call_body,
    .done = call_done,
};

/* Not counted as a task (ray_stats counts the actor); queued as soon as its
 * arguments are ready, before any call can be admitted. */
static const ray__task_ops_t ctor_ops = {
    .kind = RAY__TASK_CTOR,
    .counted = false,
    .submitted = NULL,
    .ready = ray__task_push,
    .body = ctor_body,
    .done = ctor_done,
};

/* ---- The context of an actor's task ---- */

int ray_actor_exit(ray_task_ctx_t *ctx) {
  if (ctx == NULL || ctx->t->ops != &method_ops) return RAY_EINVAL;
  ctx->exit = true;
  return 0;
}

int ray_actor_exit_no_restart(ray_task_ctx_t *ctx) {
  int rc = ray_actor_exit(ctx);
  if (rc == 0) ctx->exit_final = true;
  return rc;
}

int ray_ctx_actor_restarts(ray_task_ctx_t *ctx, uint32_t *out) {
  if (ctx == NULL || out == NULL || (ctx->t->ops != &method_ops && ctx->t->ops != &ctor_ops))
    return RAY_EINVAL;
  ray__actor_t *a = ctx->t->owner;
  ray__lock(&a->mu);
  *out = a->restarts;
  ray__unlock(&a->mu);
  return 0;
}

int ray_ctx_method_index(ray_task_ctx_t *ctx, uint32_t *out) {
  if (ctx == NULL || out == NULL || ctx->t->ops != &method_ops) return RAY_EINVAL;
  ray__actor_t *a = ctx->t->owner;
  *out = (uint32_t)(ctx->t->fn - a->klass->methods);
  return 0;
}

int ray_ctx_actor(ray_task_ctx_t *ctx, ray_actor_t *out) {
  if (ctx == NULL || out == NULL || (ctx->t->ops != &method_ops && ctx->t->ops != &ctor_ops))
    return RAY_EINVAL;
  out->id = ((ray__actor_t *)ctx->t->owner)->id;
  return 0;
}

/* ---- Public API ---- */

void ray_actor_opts_init(ray_actor_opts_t *opts) {
  if (opts == NULL) return;
  memset(opts, 0, sizeof *opts);
  opts->max_concurrency = 1;
  opts->node = RAY_NODE_ANY;
}

/* A new actor into the id table and the list of all (registry lock held). */
static void register_locked(ray__actors_t *reg, ray__actor_t *a) {
  table_insert(reg, a);
  atomic_fetch_add(&reg->alive, 1);
  a->all_next = reg->all;
  if (reg->all != NULL) reg->all->all_prev = a;
  reg->all = a;
}

/* A handle on the actor `in` names (another rank's, found by name or
 * passed here): one more handle on it if this rank knows it already (its
 * own, or adopted before: *made 0), else a stub of it (its id, no
 * constructor: its calls go to its home, numbered from 0; a life of its
 * own, *made its serial). */
int ray__actors_adopt(ray__runtime_t *rt, const ray__actor_info_t *in, ray_actor_t *out,
                      uint64_t *made) {
  *made = 0;
  ray__actors_t *reg = &rt->actors;
  ray__rwlock_wrlock(&reg->lock);
  ray__actor_t *known = table_find(reg, in->id);
  if (known != NULL) known->handles++;
  ray__rwlock_wrunlock(&reg->lock);
  if (known != NULL) {
    out->id = in->id;
    return 0;
  }
  const ray_actor_class_t *cls = ray__actors_class_named(rt, in->cls);
  if (cls == NULL) return RAY_ENOTFOUND; /* not a class this rank knows */
  ray__class_t *k;
  int rc = class_get(rt, cls, &k);
  if (rc != 0) return rc;
  ray__actor_t *a = ray__calloc(1, sizeof *a);
  if (a == NULL) return RAY_ENOMEM;
  if (uv_mutex_init(&a->smu) != 0) {
    ray__free(a);
    return RAY_ENOMEM;
  }
  ray__lock_init(&a->mu);
  a->id = in->id;
  a->rt = rt;
  a->klass = k;
  a->home = in->home;
  a->serial = ray__id_next(); /* unique here: names this life at its home */
  atomic_init(&a->refs, 1);
  a->handles = 1;
  a->state = A_ALIVE;
  atomic_init(&a->dead, false);
  a->max_conc = 1;
  ray__rwlock_wrlock(&reg->lock);
  known = table_find(reg, in->id); /* another thread adopted it meanwhile */
  if (known != NULL) {
    known->handles++;
  } else {
    register_locked(reg, a);
  }
  ray__rwlock_wrunlock(&reg->lock);
  if (known != NULL) {
    uv_mutex_destroy(&a->smu);
    ray__free(a);
  } else {
    *made = a->serial;
  }
  out->id = in->id;
  return 0;
}

/* ray__actors_adopt for a name's answer: the home hears of a new life. */
static int adopt_named(ray__runtime_t *rt, const ray__actor_info_t *in, ray_actor_t *out) {
  uint64_t made;
  int rc = ray__actors_adopt(rt, in, out, &made);
  const ray__actor_remote_t *remote = atomic_load(&rt->actors.remote);
  if (rc == 0 && made != 0 && remote != NULL) remote->adopted(rt, in->id, in->home, made);
  return rc;
}

int ray__actors_info(ray__runtime_t *rt, uint64_t id, ray__actor_info_t *out) {
  ray__actors_t *reg = &rt->actors;
  ray__rwlock_rdlock(&reg->lock);
  ray__actor_t *a = id != 0 ? table_find(reg, id) : NULL;
  if (a != NULL) {
    out->id = id;
    out->home = a->home >= 0 ? a->home : atomic_load(&rt->rank);
    snprintf(out->cls, sizeof out->cls, "%s", a->klass->cls->name);
  }
  ray__rwlock_rdunlock(&reg->lock);
  return a != NULL ? 0 : RAY_ENOTFOUND;
}

/* ray_actor_create, and ray__actors_create_encoded (encoded_ok): a local
 * actor, or a stub of one on another rank (opts->node). */
static int create(ray__runtime_t *rt, const ray_actor_class_t *cls, const ray_arg_t *args,
                  size_t nargs, const ray_actor_opts_t *opts, bool encoded_ok, ray_actor_t *out) {
  if (atomic_load(&rt->stopping)) return RAY_ESHUTDOWN;
  ray_actor_opts_t defaults;
  if (opts == NULL) {
    ray_actor_opts_init(&defaults);
    opts = &defaults;
  }
  int nranks = atomic_load_explicit(&rt->nranks, memory_order_acquire);
  if (opts->node < RAY_NODE_ANY || opts->node >= nranks) return RAY_EINVAL;
  const ray__actor_remote_t *remote = atomic_load(&rt->actors.remote);
  int home = -1; /* here */
  int node = opts->node;
  if (node == RAY_NODE_ANY && remote != NULL && !encoded_ok) node = remote->place(rt); /* spread */
  if (node != RAY_NODE_ANY && node != atomic_load(&rt->rank)) {
    if (remote == NULL) return RAY_EINVAL; /* not (or no longer) a cluster */
    home = node;
  }
  ray__class_t *k;
  int rc = class_get(rt, cls, &k);
  if (rc != 0) return rc;
  ray__actor_t *a = ray__calloc(1, sizeof *a);
  if (a == NULL) return RAY_ENOMEM;
  if (opts->name != NULL && (a->name = ray__strdup(opts->name)) == NULL) {
    ray__free(a);
    return RAY_ENOMEM;
  }
  if (home >= 0 && uv_mutex_init(&a->smu) != 0) {
    ray__free(a->name);
    ray__free(a);
    return RAY_ENOMEM;
  }
  ray__lock_init(&a->mu);
  a->id = ray__id_next();
  a->rt = rt;
  a->klass = k;
  a->home = home;
  /* The table's, and the constructor's (a stub has none here). */
  atomic_init(&a->refs, home >= 0 ? 1 : 2);
  a->handles = 1;
  a->state = home >= 0 ? A_ALIVE : A_STARTING; /* a stub's state is its home's business */
  a->keep = opts->detached || opts->name != NULL;
  atomic_init(&a->dead, false);
  a->ctor_busy = home < 0;
  a->max_conc = opts->max_concurrency ? opts->max_concurrency : 1;
  a->restarts_left = opts->max_restarts;
  a->max_task_retries = opts->max_task_retries;

  ray__actors_t *reg = &rt->actors;
  if (a->name != NULL && remote != NULL && !encoded_ok) { /* cluster mode: the job's name */
    ray__actor_info_t me = {.id = a->id, .home = home >= 0 ? home : atomic_load(&rt->rank)};
    snprintf(me.cls, sizeof me.cls, "%s", cls->name);
    ray__actor_info_t taken;
    rc = remote->name_put(rt, a->name, &me, &taken);
    if (rc == 0) {
      ray__free(a->name); /* not this table's: every lookup asks rank 0 */
      a->name = NULL;
      a->job_named = true;
    } else {
      if (home >= 0) uv_mutex_destroy(&a->smu);
      ray__free(a->name);
      ray__free(a);
      if (rc == RAY_ENAMEEXISTS && opts->get_if_exists) return adopt_named(rt, &taken, out);
      return rc;
    }
  }
  ray__rwlock_wrlock(&reg->lock);
  if (a->name != NULL) {
    ray__actor_t *other = find_by_name(reg, a->name);
    if (other != NULL) {
      if (opts->get_if_exists) {
        other->handles++;
        out->id = other->id;
      }
      ray__rwlock_wrunlock(&reg->lock);
      if (home >= 0) uv_mutex_destroy(&a->smu);
      ray__free(a->name);
      ray__free(a);
      return opts->get_if_exists ? 0 : RAY_ENAMEEXISTS;
    }
  }
  register_locked(reg, a);
  ray__rwlock_wrunlock(&reg->lock);

  if (home >= 0) { /* call 0 on its home rank */
    uv_mutex_lock(&a->smu);
    rc = remote->create(rt, a->id, home, cls, &k->ctor, args, nargs, opts);
    if (rc == 0) a->next_seq = 1;
    uv_mutex_unlock(&a->smu);
  } else {
    rc = ray__task_submit_ex(rt, &k->ctor, &ctor_ops, a, args, nargs, NULL, encoded_ok, NULL,
                             &a->ctor);
  }
  if (rc != 0) {
    if (a->job_named) remote->name_del(rt, a->id);
    ray__rwlock_wrlock(&reg->lock);
    table_remove(reg, a);
    ray__rwlock_wrunlock(&reg->lock);
    atomic_store(&a->refs, 1);
    actor_unref(a);
    return rc;
  }
  out->id = a->id;
  return 0;
}

int ray_actor_create(const ray_actor_class_t *cls, const ray_arg_t *args, size_t nargs,
                     const ray_actor_opts_t *opts, ray_actor_t *out) {
  if (cls == NULL || out == NULL || (args == NULL && nargs > 0) || nargs > RAY_MAX_ARGS ||
      !class_valid(cls))
    return RAY_EINVAL;
  RAY__API_ENTER(rt);
  return create(rt, cls, args, nargs, opts, false, out);
}

int ray__actors_create_encoded(ray__runtime_t *rt, const ray_actor_class_t *cls,
                               const ray_arg_t *args, size_t nargs, const ray_actor_opts_t *opts,
                               ray_actor_t *out) {
  if (!class_valid(cls) || nargs > RAY_MAX_ARGS) return RAY_EINVAL;
  ray_actor_opts_t here = *opts;
  here.node = RAY_NODE_ANY; /* it is home */
  return create(rt, cls, args, nargs, &here, true, out);
}

/* ray_actor_call(_id), and ray__actors_call_encoded (encoded_ok). */
static int call_in(ray__runtime_t *rt, ray_actor_t actor, const char *method, uint32_t index,
                   const ray_arg_t *args, size_t nargs, const ray_task_opts_t *opts,
                   bool encoded_ok, ray_ref_t *out_refs) {
  ray__actor_t *a = lookup_hold(rt, actor.id); /* becomes the task's reference */
  if (a == NULL) return RAY_ENOTFOUND;
  const ray_actor_class_t *cls = a->klass->cls;
  int rc = 0;
  if (method != NULL) rc = ray_actor_method(cls, method, &index);
  if (rc == 0 && index >= cls->num_methods) rc = RAY_ENOTFOUND;
  if (rc == 0 && opts != NULL && opts->num_returns != 0 &&
      opts->num_returns != a->klass->methods[index].nreturns)
    rc = RAY_EINVAL;
  if (rc == 0 && a->home >= 0) { /* numbered as submitted: its home runs them in order */
    const ray__actor_remote_t *remote = atomic_load(&rt->actors.remote);
    uv_mutex_lock(&a->smu);
    rc = remote == NULL ? RAY_ESHUTDOWN
                        : remote->call(rt, a->id, a->home, a->serial, a->next_seq, index,
                                       &a->klass->methods[index], args, nargs, out_refs);
    if (rc == 0) a->next_seq++;
    uv_mutex_unlock(&a->smu);
    actor_unref(a);
    return rc;
  }
  /* Only num_returns (a check) applies to calls: name and retries are the
   * method's and the actor's. */
  ray_task_opts_t call_opts;
  ray_task_opts_init(&call_opts);
  if (opts != NULL) call_opts.num_returns = opts->num_returns;
  if (rc == 0)
    rc = ray__task_submit_ex(rt, &a->klass->methods[index], &method_ops, a, args, nargs, &call_opts,
                             encoded_ok, out_refs, NULL);
  if (rc != 0) actor_unref(a);
  return rc;
}

static int call(ray_actor_t actor, const char *method, uint32_t index, const ray_arg_t *args,
                size_t nargs, const ray_task_opts_t *opts, ray_ref_t *out_refs) {
  if (out_refs == NULL || (args == NULL && nargs > 0) || nargs > RAY_MAX_ARGS) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  return call_in(rt, actor, method, index, args, nargs, opts, false, out_refs);
}

int ray__actors_call_encoded(ray__runtime_t *rt, ray_actor_t actor, uint32_t index,
                             const ray_arg_t *args, size_t nargs, ray_ref_t *out_refs) {
  return call_in(rt, actor, NULL, index, args, nargs, NULL, true, out_refs);
}

int ray_actor_call(ray_actor_t actor, const char *method, const ray_arg_t *args, size_t nargs,
                   const ray_task_opts_t *opts, ray_ref_t *out_refs) {
  if (method == NULL) return RAY_EINVAL;
  return call(actor, method, 0, args, nargs, opts, out_refs);
}

int ray_actor_call_id(ray_actor_t actor, uint32_t method, const ray_arg_t *args, size_t nargs,
                      const ray_task_opts_t *opts, ray_ref_t *out_refs) {
  return call(actor, NULL, method, args, nargs, opts, out_refs);
}

int ray_actor_kill(ray_actor_t actor, bool no_restart) {
  RAY__API_ENTER(rt);
  ray__actor_t *a = lookup_hold(rt, actor.id);
  if (a == NULL) return RAY_ENOTFOUND;
  actions_t act = {0};
  const ray__actor_remote_t *remote = atomic_load(&rt->actors.remote);
  /* Killed for good (or maybe: a restart may find none left), the job's
   * name goes at once; rank 0 frees names only of this actor. */
  if (remote != NULL && (a->home >= 0 || a->job_named) && no_restart) remote->name_del(rt, a->id);
  if (a->home >= 0) { /* its home kills it; for good, the name goes here too */
    if (remote != NULL) remote->kill(rt, a->id, a->home, no_restart);
    if (no_restart) {
      ray__lock(&a->mu);
      atomic_store(&a->dead, true);
      act.unname = true;
      ray__unlock(&a->mu);
      run_actions(a, &act);
    }
    actor_unref(a);
    return 0;
  }
  ray__lock(&a->mu);
  if (a->state == A_ALIVE && !no_restart && a->restarts_left > 0) {
    a->state = A_RESTARTING;
    a->restarts_left--;
    a->restarts++;
  } else if (a->state != A_DEAD) {
    death_error(a, "was killed");
    die_locked(a, &act);
  }
  settle_locked(a, &act);
  ray__unlock(&a->mu);
  run_actions(a, &act);
  actor_unref(a);
  return 0;
}

int ray_actor_retain(ray_actor_t actor) {
  RAY__API_ENTER(rt);
  return handle_retain(rt, actor.id);
}

/* A handle reference (ray_actor_retain, a task's actor argument).
 * Errors: RAY_ENOTFOUND. */
static int handle_retain(ray__runtime_t *rt, uint64_t id) {
  ray__rwlock_wrlock(&rt->actors.lock);
  ray__actor_t *a = id != 0 ? table_find(&rt->actors, id) : NULL;
  if (a != NULL) a->handles++;
  ray__rwlock_wrunlock(&rt->actors.lock);
  return a != NULL ? 0 : RAY_ENOTFOUND;
}

static int handle_release(ray__runtime_t *rt, uint64_t id) {
  ray__actors_t *reg = &rt->actors;
  ray__rwlock_wrlock(&reg->lock);
  ray__actor_t *a = id != 0 ? table_find(reg, id) : NULL;
  if (a != NULL && a->handles == 0) a = NULL; /* a kept actor over-released */
  bool gone = false;
  if (a != NULL && --a->handles == 0 && (!a->keep || atomic_load(&a->dead))) {
    table_remove(reg, a); /* the handle id is unknown from now on */
    gone = true;
  }
  ray__rwlock_wrunlock(&reg->lock);
  if (a == NULL) return RAY_ENOTFOUND;
  if (gone && a->home >= 0) { /* a stub: its home lets go after the calls made here */
    const ray__actor_remote_t *remote = atomic_load(&rt->actors.remote);
    uv_mutex_lock(&a->smu);
    uint64_t ncalls = a->next_seq;
    uv_mutex_unlock(&a->smu);
    /* An adopted life ends at the home even with no calls (it was counted). */
    if (remote != NULL && (ncalls > 0 || a->serial != 0))
      remote->drop(rt, a->id, a->home, a->serial, ncalls);
    actor_unref(a); /* the table's */
    return 0;
  }
  if (gone) {
    actions_t act = {0};
    ray__lock(&a->mu);
    a->closing = true;
    settle_locked(a, &act);
    ray__unlock(&a->mu);
    run_actions(a, &act);
    actor_unref(a); /* the table's */
  }
  return 0;
}

/* A task lets go of its actor argument's handle (it holds one: cannot fail). */
static void handle_drop(ray__runtime_t *rt, uint64_t id) {
  (void)handle_release(rt, id);
}

int ray_actor_release(ray_actor_t actor) {
  RAY__API_ENTER(rt);
  return handle_release(rt, actor.id);
}

int ray_get_actor(const char *name, ray_actor_t *out) {
  if (name == NULL || out == NULL) return RAY_EINVAL;
  RAY__API_ENTER(rt);
  const ray__actor_remote_t *remote = atomic_load(&rt->actors.remote);
  if (remote != NULL) { /* cluster mode: the job's names, on rank 0 */
    ray__actor_info_t in;
    int rc = remote->name_get(rt, name, &in);
    return rc != 0 ? rc : adopt_named(rt, &in, out);
  }
  ray__rwlock_wrlock(&rt->actors.lock);
  ray__actor_t *a = find_by_name(&rt->actors, name);
  if (a != NULL) {
    a->handles++;
    out->id = a->id;
  }
  ray__rwlock_wrunlock(&rt->actors.lock);
  return a != NULL ? 0 : RAY_ENOTFOUND;
}

/* ---- Shutdown ---- */

void ray__actors_shutdown(ray__runtime_t *rt) {
  ray__actors_t *reg = &rt->actors;
  for (;;) {
    /* Take one actor at a time: finishing its calls may free others. */
    ray__rwlock_wrlock(&reg->lock);
    ray__actor_t *a = reg->all;
    while (a != NULL && a->state == A_DEAD && !a->in_table && a->ctor == NULL &&
           a->mb_head == NULL && !a->constructed)
      a = a->all_next; /* already settled; freed when its last task goes */
    if (a != NULL) {
      atomic_fetch_add(&a->refs, 1);
      table_remove(reg, a);
    }
    ray__rwlock_wrunlock(&reg->lock);
    if (a == NULL) break;
    actions_t act = {0};
    ray__lock(&a->mu);
    ray__task_t *t = a->mb_head; /* calls never admitted: results failed already */
    a->mb_head = a->mb_tail = NULL;
    a->state = A_DEAD;
    a->ctor_busy = false;
    a->running = 0;
    settle_locked(a, &act);
    ray__unlock(&a->mu);
    while (t != NULL) {
      ray__task_t *next = (ray__task_t *)t->rn.next;
      ray__task_fail(t, RAY_ESHUTDOWN, 0, NULL, "runtime shut down before %s ran", t->name);
      actor_unref(a); /* before it counts finished: ray__quiesce sees the actor gone */
      ray__task_finish(t);
      t = next;
    }
    run_actions(a, &act);
    if (!a->closing) { /* the table still held its reference */
      a->closing = true;
      actor_unref(a);
    }
    actor_unref(a); /* ours */
  }
}
