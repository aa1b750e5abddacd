/* store.c - the sharded in-memory object store: the table. With memory.c
 * (an entry's memory: capacity, freeing, spilling, restoring), the only
 * code that takes a shard lock or changes an entry's references or life;
 * every other file goes through the functions of store.h.
 *
 * Shards: a power-of-two number, each with its own lock (ray__lock_t,
 * thread.h: it spins, never sleeps in the kernel), a chained hash
 * table and its counters. Ids come from thread-local blocks of one global
 * counter; a whole block maps to one shard (see ray__shard_index), so
 * concurrent putters work on different shards, and bucket keys stay dense.
 *
 * Entry lifetime: `refcnt` (under the shard lock) counts references. When it
 * reaches zero the entry leaves the table, so its id is unknown from then on
 * and can never alias another object (ids are never reused). The memory is
 * freed (memory.c) when `life` reaches zero: the table holds one unit while
 * the entry is in it and every pinned view (ray_buf_t) holds one. `life`
 * only grows under the shard lock while the entry is in the table; it may
 * shrink anywhere.
 *
 * Failure: ray__store_fail is the one way an entry fails with an error
 * (its encoded error as the payload, or in place with the bare code when
 * memory for that ran out); shutdown's ray__store_fail_all_pending fails
 * the rest in place the same way (fail_locked).
 *
 * Completion: a pending entry is replaced in its chain by the completed one
 * (one allocation holds header and small payload alike), and its watchers
 * are notified under the shard lock. Nobody can hold a pointer to a pending
 * entry outside the lock (a pending entry cannot be pinned), so the swap is
 * safe.
 *
 * Lock order: a shard lock is a leaf except for the locks watchers take
 * (a waiter's mutex, the loop queue, the scheduler queue), which are taken
 * inside it and never the other way round. No code holds two shard locks.
 * User code (free_fn) always runs with no lock held. */
#include "store.h"

#include <string.h>

#include "alloc.h"
#include "codec.h"
#include "rfree.h"
#include "error_internal.h"

enum { ID_BLOCK = RAY__ID_BLOCK, INITIAL_BUCKETS = 64 };

static atomic_uint_fast64_t next_id_block = 1; /* ids start at ID_BLOCK: 0 is nil */
static _Thread_local uint64_t tl_id_next RAY__TLS_FAST;
static _Thread_local uint64_t tl_id_end RAY__TLS_FAST;

/* Cluster mode: the owner's rank in every id's top bits (0 otherwise). */
static atomic_uint_fast64_t id_owner_bits;

uint64_t ray__id_next(void) {
  if (tl_id_next == tl_id_end) {
    uint64_t b = atomic_fetch_add_explicit(&next_id_block, 1, memory_order_relaxed);
    tl_id_next = b * ID_BLOCK;
    tl_id_end = tl_id_next + ID_BLOCK;
    ray__mem_set_home(tl_id_next); /* the thread's puts insert into this block's shard now */
  }
  return tl_id_next++ | atomic_load_explicit(&id_owner_bits, memory_order_relaxed);
}

void ray__id_set_owner(unsigned rank) {
  atomic_store(&id_owner_bits, (uint64_t)rank << RAY__ID_RANK_SHIFT);
}

/* Whether `id` names an object this rank does not own (cluster mode). */
static bool id_foreign(uint64_t id) {
  uint64_t mask = ~(((uint64_t)1 << RAY__ID_RANK_SHIFT) - 1);
  return (id & mask) != atomic_load_explicit(&id_owner_bits, memory_order_relaxed);
}

int ray__store_init(ray__store_t *st, unsigned nshards, size_t inline_threshold,
                    const ray__store_opts_t *opts) {
  memset(st, 0, sizeof *st);
  st->nshards = nshards;
  while ((1u << st->shard_bits) < nshards) st->shard_bits++;
  st->inline_threshold = inline_threshold;
  st->capacity = opts->capacity;
  /* Small enough that budgets parked in shards are a small part of the
   * capacity, large enough that most puts never touch the shared counter. */
  int64_t chunk = (int64_t)(opts->capacity / (nshards * 16u));
  st->chunk = chunk < 4096 ? 4096 : chunk > (1 << 20) ? (1 << 20) : chunk;
  st->full_timeout_ms = opts->full_timeout_ms;
  st->spill_enabled = opts->spill_enabled;
  if (opts->spill_dir != NULL && (st->spill_dir = ray__strdup(opts->spill_dir)) == NULL)
    return RAY_ENOMEM;
  st->spill_dir_owned = opts->spill_dir == NULL;
  if (uv_mutex_init(&st->mem_mu) != 0) goto fail_dir;
  if (uv_cond_init(&st->mem_cv) != 0) goto fail_mem_mu;
  if (uv_cond_init(&st->fetch_cv) != 0) goto fail_mem_cv;
  if (uv_mutex_init(&st->spill_mu) != 0) goto fail_fetch_cv;
  st->mem = ray__malloc(sizeof(ray__shard_slot_t) * nshards + 64);
  if (st->mem == NULL) goto fail_spill_mu;
  st->shards = (ray__shard_slot_t *)(((uintptr_t)st->mem + 63) & ~(uintptr_t)63);
  memset(st->shards, 0, sizeof(ray__shard_slot_t) * nshards);
  for (unsigned i = 0; i < nshards; i++) {
    ray__shard_t *sh = &st->shards[i].s;
    sh->buckets = ray__calloc(INITIAL_BUCKETS, sizeof *sh->buckets);
    ray__lock_init(&sh->mu);
    if (sh->buckets == NULL) {
      ray__free(sh->buckets);
      sh->buckets = NULL;
      st->nshards = i; /* destroy what was made */
      ray__store_destroy(st);
      return RAY_ENOMEM;
    }
    sh->mask = INITIAL_BUCKETS - 1;
  }
  return 0;
fail_spill_mu:
  uv_mutex_destroy(&st->spill_mu);
fail_fetch_cv:
  uv_cond_destroy(&st->fetch_cv);
fail_mem_cv:
  uv_cond_destroy(&st->mem_cv);
fail_mem_mu:
  uv_mutex_destroy(&st->mem_mu);
fail_dir:
  ray__free(st->spill_dir);
  return RAY_ENOMEM;
}

void ray__store_destroy(ray__store_t *st) {
  for (unsigned i = 0; i < st->nshards; i++) {
    ray__shard_t *sh = &st->shards[i].s;
    for (size_t b = 0; b <= sh->mask; b++) {
      ray__entry_t *e = sh->buckets[b];
      while (e != NULL) {
        ray__entry_t *next = e->next;
        ray__mem_entry_detach(e); /* views keep it alive until released, after the store is gone */
        ray__mem_entry_unpin(e);
        e = next;
      }
    }
    ray__free(sh->buckets);
  }
  ray__spill_cleanup(st);
  ray__free(st->spill_dir);
  uv_mutex_destroy(&st->spill_mu);
  uv_cond_destroy(&st->fetch_cv);
  uv_cond_destroy(&st->mem_cv);
  uv_mutex_destroy(&st->mem_mu);
  ray__free(st->mem);
  memset(st, 0, sizeof *st);
}

static _Thread_local int tl_entry_err RAY__TLS_FAST;

int ray__entry_error(void) {
  return tl_entry_err;
}

/* The header, with `extra` payload bytes inline. */
static ray__entry_t *entry_alloc(ray__store_t *st, size_t extra, uint32_t type, uint8_t state) {
  ray__rfree_drain(); /* what other threads freed of ours: back to our slabs or arena */
  /* Small headers come from the thread's slabs, which need its home (rfree.h);
   * without one (no thread-exit hook to be had) malloc still serves. */
  ray__rfree_home_t *home = ray__rfree_home();
  bool small = sizeof(ray__entry_t) + extra <= RAY__RFREE_SMALL && home != NULL;
  ray__entry_t *e = small ? ray__rfree_alloc_small() : ray__malloc(sizeof *e + extra);
  if (e == NULL) return NULL;
  memset(e, 0, sizeof *e);
  e->small = small;
  e->home = home;
  atomic_init(&e->life, 1);
  e->refcnt = 1;
  e->type = type;
  e->state = state;
  atomic_init(&e->st, st);
  return e;
}

/* ray__entry_new with `size` bytes reserved already (given back on failure). */
static ray__entry_t *entry_new_reserved(ray__store_t *st, size_t size, uint32_t type,
                                        uint8_t state) {
  bool inl = size <= st->inline_threshold;
  size_t room = state == RAY__PENDING ? RAY__SMALL_RESULT : 0;
  ray__entry_t *e = entry_alloc(st, (inl ? size : 0) + room, type, state);
  if (e != NULL && inl) {
    e->data = e->inline_data;
    e->flags = RAY__F_INLINE;
  } else if (e != NULL && (e->data = ray__malloc(size)) == NULL) {
    ray__mem_entry_discard(e); /* never seen by another thread */
    e = NULL;
  }
  if (e == NULL) {
    ray__mem_release(st, size);
    tl_entry_err = RAY_ENOMEM;
    return NULL;
  }
  e->size = size;
  e->acct = size;
  return e;
}

ray__entry_t *ray__entry_new(ray__store_t *st, size_t size, uint32_t type, uint8_t state) {
  int rc = ray__mem_reserve(st, size);
  if (rc != 0) {
    tl_entry_err = rc;
    return NULL;
  }
  return entry_new_reserved(st, size, type, state);
}

ray__entry_t *ray__entry_try_new(ray__store_t *st, size_t size, uint32_t type) {
  int rc = ray__mem_try_reserve(st, size);
  if (rc != 0) {
    tl_entry_err = rc;
    return NULL;
  }
  return entry_new_reserved(st, size, type, RAY__READY);
}

ray__entry_t *ray__entry_new_owned(ray__store_t *st, void *data, size_t size, ray_free_fn free_fn,
                                   void *arg, uint32_t type, bool account) {
  int rc = account ? ray__mem_reserve(st, size) : 0;
  if (rc != 0) {
    tl_entry_err = rc;
    return NULL;
  }
  ray__entry_t *e = entry_alloc(st, 0, type, RAY__READY);
  if (e == NULL) {
    if (account) ray__mem_release(st, size);
    tl_entry_err = RAY_ENOMEM;
    return NULL;
  }
  e->flags = RAY__F_OWNED;
  e->data = data;
  e->size = size;
  e->acct = account ? size : 0;
  e->free_fn = free_fn;
  e->free_arg = arg;
  return e;
}

static void unpin_entry(void *data, void *e) {
  (void)data; /* a view into e, which owns it */
  ray__mem_entry_unpin(e);
}

ray__entry_t *ray__entry_new_shared(ray__store_t *st, ray_buf_t *view) {
  const void *data = view->data;
  size_t size = view->size;
  ray__entry_t *src = ray__view_close(view);
  ray__entry_t *e = ray__entry_new_owned(st, (void *)data, size, unpin_entry, src, 0, false);
  if (e == NULL) ray__mem_entry_unpin(src);
  return e;
}

static ray__entry_t **find_slot(const ray__store_t *st, ray__shard_t *sh, uint64_t id) {
  ray__entry_t **p = &sh->buckets[ray__bucket_key(st, id) & sh->mask];
  while (*p != NULL && (*p)->id != id) p = &(*p)->next;
  return p;
}

static ray__entry_t *find(const ray__store_t *st, ray__shard_t *sh, uint64_t id) {
  return *find_slot(st, sh, id);
}

/* Double the bucket array when the load passes 1. A failed allocation is
 * harmless: chains just grow longer until the next try. */
static void maybe_grow(ray__store_t *st, ray__shard_t *sh) {
  if (sh->count <= sh->mask + 1) return;
  size_t nb = (sh->mask + 1) * 2;
  ray__entry_t **b = ray__calloc(nb, sizeof *b);
  if (b == NULL) return;
  for (size_t i = 0; i <= sh->mask; i++) {
    ray__entry_t *e = sh->buckets[i];
    while (e != NULL) {
      ray__entry_t *next = e->next;
      size_t k = ray__bucket_key(st, e->id) & (nb - 1);
      e->next = b[k];
      b[k] = e;
      e = next;
    }
  }
  ray__free(sh->buckets);
  sh->buckets = b;
  sh->mask = nb - 1;
}

/* Insert with the shard lock held. */
static void insert_locked(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e) {
  ray__entry_t **head = &sh->buckets[ray__bucket_key(st, e->id) & sh->mask];
  e->next = *head;
  *head = e;
  sh->count++;
  sh->created++;
  ray__lru_add(st, sh, e);
  maybe_grow(st, sh);
}

void ray__store_insert(ray__store_t *st, ray__entry_t *e) {
  ray__shard_t *sh = ray__shard_of(st, e->id);
  ray__lock(&sh->mu);
  insert_locked(st, sh, e);
  ray__unlock(&sh->mu);
}

int ray__groups_make(ray__store_t *st, const ray_ref_t *refs, size_t n, ray__groups_t *g) {
  g->order = ray__malloc(n * sizeof *g->order);
  g->starts = ray__calloc(st->nshards + 1, sizeof *g->starts);
  if (g->order == NULL || g->starts == NULL) {
    ray__groups_free(g);
    return RAY_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) g->starts[ray__shard_index(st, refs[i].id) + 1]++;
  for (unsigned s = 0; s < st->nshards; s++) g->starts[s + 1] += g->starts[s];
  /* Fill using a moving cursor per shard: borrow starts[s] and restore it after. */
  for (size_t i = 0; i < n; i++) g->order[g->starts[ray__shard_index(st, refs[i].id)]++] = i;
  for (unsigned s = st->nshards; s > 0; s--) g->starts[s] = g->starts[s - 1];
  g->starts[0] = 0;
  return 0;
}

void ray__groups_free(ray__groups_t *g) {
  ray__free(g->order);
  ray__free(g->starts);
  g->order = NULL;
  g->starts = NULL;
}

int ray__store_insert_batch(ray__store_t *st, ray__entry_t **es, size_t n) {
  ray_ref_t *ids = ray__malloc(n * sizeof *ids);
  if (ids == NULL) return RAY_ENOMEM;
  for (size_t i = 0; i < n; i++) ids[i] = (ray_ref_t){es[i]->id, es[i]->type};
  ray__groups_t g;
  int rc = ray__groups_make(st, ids, n, &g);
  ray__free(ids);
  if (rc != 0) return rc;
  for (unsigned s = 0; s < st->nshards; s++) {
    if (g.starts[s] == g.starts[s + 1]) continue;
    ray__shard_t *sh = &st->shards[s].s;
    ray__lock(&sh->mu);
    for (size_t k = g.starts[s]; k < g.starts[s + 1]; k++) insert_locked(st, sh, es[g.order[k]]);
    ray__unlock(&sh->mu);
  }
  ray__groups_free(&g);
  return 0;
}

/* Notify and clear an entry's watchers (shard lock held). */
static void notify_locked(ray__entry_t *e, int status) {
  ray__watch_t *w = e->watchers;
  e->watchers = NULL;
  while (w != NULL) {
    ray__watch_t *next = w->next; /* fn may reuse the node */
    w->fn(w, status);
    w = next;
  }
}

static int status_of(const ray__entry_t *e) {
  return e->state == RAY__FAILED ? e->err_code : 0;
}

/* A proxy whose copy was evicted (memory.c): ready, its payload at its
 * owner. Shard lock held. */
static bool evicted_locked(const ray__entry_t *e) {
  return e->proxy && e->state == RAY__READY && (e->flags & RAY__F_SPILLED);
}

/* The owner's value for the evicted proxy at *slot came again (`done`,
 * holding what the value names, as any fill does): `done` takes its place,
 * with its references, serial and watchers' readers woken; the old entry
 * lets go of what it held. A failure (`done` FAILED) only ends the fetch,
 * with its code: the next reader asks again. Shard lock held; unlocks. */
static void refill_locked(ray__store_t *st, ray__shard_t *sh, ray__entry_t **slot,
                          ray__entry_t *done) {
  ray__entry_t *old = *slot;
  if (done->state != RAY__READY) {
    ray__mem_fetch_end(old, done->err_code);
    ray__unlock(&sh->mu);
    ray__store_drop(st, done);
    ray__mem_fetch_wake(st);
    return;
  }
  if (done->type == 0) done->type = old->type;
  done->refcnt = old->refcnt;
  done->next = old->next;
  done->proxy = true;
  done->serial = old->serial;
  *slot = done;
  ray__lru_add(st, sh, done);   /* to the shard's caches */
  uint64_t *inner = old->inner; /* `done` holds the same, taken again */
  uint32_t nobj = old->ninner, nact = old->nactors;
  old->inner = NULL;
  old->ninner = old->nactors = 0;
  ray__unlock(&sh->mu);
  ray__store_unhold_inner(st, inner, nobj, nact);
  ray__mem_entry_unpin(old);
  ray__mem_fetch_wake(st);
}

int ray__store_complete(ray__store_t *st, ray__entry_t *done) {
  ray__shard_t *sh = ray__shard_of(st, done->id);
  ray__lock(&sh->mu);
  ray__entry_t **slot = find_slot(st, sh, done->id);
  ray__entry_t *old = *slot;
  if (old != NULL && evicted_locked(old)) {
    refill_locked(st, sh, slot, done); /* unlocks */
    return 0;
  }
  if (old == NULL || old->state != RAY__PENDING) {
    ray__unlock(&sh->mu);
    ray__store_drop(st, done);
    return old == NULL ? 0 : RAY_EBUSY;
  }
  if (done->type == 0) done->type = old->type;
  done->refcnt = old->refcnt;
  done->next = old->next;
  done->proxy = old->proxy; /* a filled proxy: a cache of the owner's value */
  done->serial = old->serial;
  *slot = done;
  ray__lru_add(st, sh, done); /* a proxy's to the shard's caches (memory.c) */
  notify_locked(old, status_of(done));
  ray__unlock(&sh->mu);
  ray__mem_entry_unpin(old);
  return 0;
}

int ray__store_complete_small(ray__store_t *st, uint64_t id, const void *data, size_t size) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  if (e == NULL || e->state != RAY__PENDING) {
    ray__unlock(&sh->mu);
    ray__mem_release(st, size);
    return e == NULL ? 0 : RAY_EBUSY;
  }
  /* A pending entry is inline with RAY__SMALL_RESULT bytes of room and no
   * payload; nobody reads its data before it is READY (under this lock). */
  memcpy(e->data, data, size);
  e->size = size;
  e->acct = size;
  e->state = RAY__READY;
  e->producer = NULL;
  notify_locked(e, 0);
  ray__unlock(&sh->mu);
  return 0;
}

static void fail_locked(ray__entry_t *e, int code) {
  e->state = RAY__FAILED;
  e->flags |= RAY__F_ERROR;
  e->err_code = code;
  e->producer = NULL;
  notify_locked(e, code);
}

void ray__store_fail_all_pending(ray__store_t *st, int code) {
  for (unsigned i = 0; i < st->nshards; i++) {
    ray__shard_t *sh = &st->shards[i].s;
    ray__lock(&sh->mu);
    for (size_t b = 0; b <= sh->mask; b++)
      for (ray__entry_t *e = sh->buckets[b]; e != NULL; e = e->next)
        if (e->state == RAY__PENDING) fail_locked(e, code);
    ray__unlock(&sh->mu);
  }
}

void ray__store_fail_proxies_of(ray__store_t *st, unsigned rank, int code) {
  for (unsigned i = 0; i < st->nshards; i++) {
    ray__shard_t *sh = &st->shards[i].s;
    ray__lock(&sh->mu);
    for (size_t b = 0; b <= sh->mask; b++)
      for (ray__entry_t *e = sh->buckets[b]; e != NULL; e = e->next)
        if (e->proxy && (e->id >> RAY__ID_RANK_SHIFT) == rank &&
            (e->state == RAY__PENDING || evicted_locked(e))) {
          e->flags &= (uint8_t)~RAY__F_FETCHING;
          e->size = 0; /* an evicted copy's payload is gone: no error payload either */
          fail_locked(e, code);
        }
    ray__unlock(&sh->mu);
  }
  ray__mem_fetch_wake(st); /* readers waiting for an evicted copy */
}

/* Fail `id` in place, if still pending: no payload, no allocation. */
static int fail_in_place(ray__store_t *st, uint64_t id, int code) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  int rc = e == NULL ? 0 : e->state == RAY__PENDING ? 0 : RAY_EBUSY;
  bool fetch_failed = e != NULL && evicted_locked(e);
  if (e != NULL && e->state == RAY__PENDING) fail_locked(e, code);
  if (fetch_failed) { /* an evicted proxy's fetch: the next reader asks again */
    ray__mem_fetch_end(e, code);
    rc = 0;
  }
  ray__unlock(&sh->mu);
  if (fetch_failed) ray__mem_fetch_wake(st);
  return rc;
}

int ray__store_fail(ray__store_t *st, uint64_t id, int code, const ray_error_t *err,
                    uint64_t cause_id, bool must_land) {
  if (err == NULL) return fail_in_place(st, id, code);
  code = err->code;
  ray__mpbuf_t b;
  int rc = ray__encode_error(err, cause_id, &b);
  ray__entry_t *e = NULL;
  if (rc == 0) {
    if ((e = ray__entry_new(st, b.size, 0, RAY__FAILED)) != NULL)
      memcpy(e->data, b.data, b.size);
    else
      rc = tl_entry_err;
    ray__mpbuf_destroy(&b);
  }
  if (e == NULL) return must_land ? fail_in_place(st, id, code) : rc;
  e->flags |= RAY__F_ERROR;
  e->err_code = code;
  /* The error continues in the cause's own entry: keep that alive with it
   * (without the reference, ray_get_error stops at this link). */
  if (cause_id != 0 && (e->inner = ray__malloc(sizeof *e->inner)) != NULL &&
      ray__store_retain(st, cause_id) == 0) {
    e->inner[0] = cause_id;
    e->ninner = 1;
  }
  e->id = id;
  return ray__store_complete(st, e);
}

int ray__store_retain(ray__store_t *st, uint64_t id) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  int rc = RAY_ENOTFOUND;
  if (e != NULL && e->refcnt < UINT32_MAX) {
    e->refcnt++;
    rc = 0;
  } else if (e != NULL) {
    rc = RAY_EINVAL; /* 4 billion references: refuse rather than wrap */
  }
  ray__unlock(&sh->mu);
  return rc;
}

/* Drop one reference (shard lock held). Returns the entry when that was the
 * last: it has left the table and the caller must ray__store_drop it after
 * unlocking. */
static ray__entry_t *release_locked(ray__store_t *st, ray__shard_t *sh, ray__entry_t **slot) {
  ray__entry_t *e = *slot;
  if (--e->refcnt > 0) return NULL;
  *slot = e->next;
  sh->count--;
  sh->freed++;
  ray__lru_remove(st, sh, e);
  notify_locked(e, RAY_ENOTFOUND); /* released while still pending */
  return e;
}

int ray__store_release(ray__store_t *st, uint64_t id) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t **slot = find_slot(st, sh, id);
  if (*slot == NULL) {
    ray__unlock(&sh->mu);
    return RAY_ENOTFOUND;
  }
  ray__entry_t *gone = release_locked(st, sh, slot);
  ray__unlock(&sh->mu);
  if (gone != NULL) ray__store_drop(st, gone);
  return 0;
}

void ray__store_drop(ray__store_t *st, ray__entry_t *e) {
  /* A work list threaded through `next` (free once an entry has left the
   * table): releasing an inner ref may free an object holding refs too. */
  e->next = NULL;
  ray__entry_t *todo = e;
  while (todo != NULL) {
    ray__entry_t *cur = todo;
    todo = cur->next;
    for (uint32_t i = 0; i < cur->ninner; i++) {
      uint64_t id = cur->inner[i];
      ray__shard_t *sh = ray__shard_of(st, id);
      ray__lock(&sh->mu);
      ray__entry_t **slot = find_slot(st, sh, id);
      ray__entry_t *gone = *slot ? release_locked(st, sh, slot) : NULL;
      ray__unlock(&sh->mu);
      if (gone != NULL) {
        gone->next = todo;
        todo = gone;
      }
    }
    /* The actor handles it held, with no lock held: the actor layer may
     * free an actor, whose constructor's arguments come back here. */
    for (uint32_t i = 0; i < cur->nactors; i++)
      st->actor_hold.release(st->actor_hold.arg, cur->inner[cur->ninner + i]);
    cur->ninner = 0;
    cur->nactors = 0;
    if (cur->proxy) { /* its owner hears that this life of it here ended */
      atomic_fetch_add(&st->remote.busy, 1);
      ray__proxy_gone_fn gone = atomic_load(&st->remote.gone);
      if (gone != NULL) gone(st->remote.arg, cur->id, cur->serial);
      atomic_fetch_sub(&st->remote.busy, 1);
    }
    ray__mem_entry_detach(cur);
    ray__mem_entry_unpin(cur);
  }
}

/* Pin a view of entry `e` (shard lock held; its payload in memory): add a
 * `life` unit and open a view handle (view.h) in *out. Errors: RAY_ENOMEM
 * (no view slot). */
static int pin_locked(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e, ray_buf_t *out) {
  ray__view_t *v = ray__view_take();
  if (v == NULL) return RAY_ENOMEM;
  ray__lru_touch(st, sh, e);
  atomic_fetch_add_explicit(&e->life, 1, memory_order_relaxed);
  ray__view_open(v, e, e->data, e->size, e->type, out);
  return 0;
}

/* Whether entry `e` (or none) can be read in memory now: 0, or 1 (pending;
 * not an error code: a failed object may carry any code), 2 (spilled),
 * RAY_ENOTFOUND, or a failed entry's code. Shard lock held. */
static int readable_locked(const ray__entry_t *e) {
  if (e == NULL) return RAY_ENOTFOUND;
  if (e->state == RAY__PENDING) return 1;
  if (e->state == RAY__FAILED) return e->err_code;
  return (e->flags & RAY__F_SPILLED) ? 2 : 0;
}

/* ---- Proxies' values, asked for at the first read ----
 *
 * A proxy (cluster mode) is made pending, and its owner is asked for the
 * value only when something reads it: a pin or a look that finds it
 * pending (a get, with timeout 0 too; ray_wait's passes) or a watch (a
 * blocked get or wait, a task's dependency). RAY__F_FETCHING marks it
 * asked, so it is asked once; a ref only passed on is never fetched. */

/* Whether `e`, a pending proxy not asked for yet, is to be asked for now
 * (then marked asked). Shard lock held. */
static bool want_locked(ray__entry_t *e) {
  if (e == NULL || !e->proxy || e->state != RAY__PENDING || (e->flags & RAY__F_FETCHING))
    return false;
  e->flags |= RAY__F_FETCHING;
  return true;
}

/* Ask the owner for `id`, which want_locked marked (no lock held). An ask
 * that cannot go (no memory, or the cluster stopped) fails the proxy with
 * its code: its readers may be watches only (a task's dependency, a
 * blocked get), which would otherwise wait for an answer never asked. */
static void ask(ray__store_t *st, uint64_t id) {
  int rc = ray__mem_ask_owner(st, id);
  if (rc != 0) (void)fail_in_place(st, id, rc);
}

static void want(ray__store_t *st, uint64_t id) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  bool asking = want_locked(find(st, sh, id));
  ray__unlock(&sh->mu);
  if (asking) ask(st, id);
}

int ray__store_pin(ray__store_t *st, uint64_t id, ray_buf_t *out) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  int rc = readable_locked(e);
  bool asking = rc == 1 && want_locked(e);
  if (rc == 0) rc = pin_locked(st, sh, e, out);
  ray__unlock(&sh->mu);
  if (asking) ask(st, id);
  return rc;
}

int ray__store_copy_small(ray__store_t *st, uint64_t id, void *dst, size_t cap, size_t *size,
                          uint32_t *type) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  int rc = readable_locked(e);
  if (rc == 0 && e->size > cap) rc = 2;
  if (rc == 0) {
    memcpy(dst, e->data, e->size);
    *size = e->size;
    *type = e->type;
  }
  ray__unlock(&sh->mu);
  return rc;
}

int ray__store_pin_any(ray__store_t *st, uint64_t id, ray_buf_t *out, int *state) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  int rc = 0;
  if (e == NULL) {
    rc = RAY_ENOTFOUND;
  } else {
    *state = e->state;
    if (e->state != RAY__PENDING) rc = pin_locked(st, sh, e, out); /* failed ones never spill */
  }
  ray__unlock(&sh->mu);
  return rc;
}

/* One look at every ref (grouped by shard in g), each shard lock taken
 * once: the shared body of ray__store_states (out NULL) and
 * ray__store_pin_batch. Returns how many out[] hold a view. */
static size_t look_batch(ray__store_t *st, const ray_ref_t *refs, const ray__groups_t *g,
                         int8_t *states, int *codes, ray_buf_t *out) {
  size_t pinned = 0;
  bool unasked = false; /* a pending proxy whose value nobody asked for yet */
  for (unsigned s = 0; s < st->nshards; s++) {
    if (g->starts[s] == g->starts[s + 1]) continue;
    ray__shard_t *sh = &st->shards[s].s;
    ray__lock(&sh->mu);
    for (size_t k = g->starts[s]; k < g->starts[s + 1]; k++) {
      size_t i = g->order[k];
      ray__entry_t *e = find(st, sh, refs[i].id);
      states[i] = e ? (int8_t)e->state : -1;
      unasked |= e != NULL && e->proxy && e->state == RAY__PENDING && !(e->flags & RAY__F_FETCHING);
      if (out == NULL) continue;
      codes[i] = e == NULL ? RAY_ENOTFOUND : status_of(e);
      if (e != NULL && e->state == RAY__READY && out[i].priv_ == NULL &&
          !(e->flags & RAY__F_SPILLED) && pin_locked(st, sh, e, &out[i]) != 0)
        codes[i] = RAY_ENOMEM;
      if (out[i].priv_ != NULL) pinned++;
    }
    ray__unlock(&sh->mu);
  }
  if (unasked) /* rare: once per proxy read */
    for (size_t i = 0; i < g->starts[st->nshards]; i++)
      if (states[i] == RAY__PENDING) want(st, refs[i].id);
  return pinned;
}

void ray__store_states(ray__store_t *st, const ray_ref_t *refs, const ray__groups_t *g,
                       int8_t *states) {
  (void)look_batch(st, refs, g, states, NULL, NULL);
}

size_t ray__store_pin_batch(ray__store_t *st, const ray_ref_t *refs, const ray__groups_t *g,
                            int8_t *states, int *codes, ray_buf_t *out) {
  return look_batch(st, refs, g, states, codes, out);
}

void ray__store_counts(ray__store_t *st, uint64_t *objects, uint64_t *created, uint64_t *freed) {
  *objects = *created = *freed = 0;
  for (unsigned i = 0; i < st->nshards; i++) {
    ray__shard_t *sh = &st->shards[i].s;
    ray__lock(&sh->mu);
    *objects += sh->count;
    *created += sh->created;
    *freed += sh->freed;
    ray__unlock(&sh->mu);
  }
}

int ray__store_watch(ray__store_t *st, uint64_t id, ray__watch_t *w, bool retain, int *status) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  int rc;
  bool asking = false;
  if (e == NULL) {
    rc = RAY_ENOTFOUND;
  } else {
    if (retain) e->refcnt++;
    if (e->state == RAY__PENDING) {
      w->next = e->watchers;
      e->watchers = w;
      w->helpable = (e->flags & RAY__F_HELPABLE) && e->producer != NULL;
      asking = want_locked(e);
      rc = 0;
    } else {
      *status = status_of(e);
      rc = 1;
    }
  }
  ray__unlock(&sh->mu);
  if (asking) ask(st, id);
  return rc;
}

bool ray__store_unwatch(ray__store_t *st, uint64_t id, ray__watch_t *w) {
  ray__shard_t *sh = ray__shard_of(st, id);
  bool removed = false;
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  if (e != NULL) {
    for (ray__watch_t **p = &e->watchers; *p != NULL; p = &(*p)->next) {
      if (*p == w) {
        *p = w->next;
        removed = true;
        break;
      }
    }
  }
  ray__unlock(&sh->mu);
  return removed;
}

int ray__store_claim_producer(ray__store_t *st, uint64_t id, void (*hold)(void *), void **out) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  int rc = RAY_ENOTFOUND;
  if (e != NULL && (e->state != RAY__PENDING || e->producer == NULL)) {
    rc = RAY_EFINISHED;
  } else if (e != NULL) {
    hold(e->producer);
    *out = e->producer;
    rc = 0;
  }
  ray__unlock(&sh->mu);
  return rc;
}

int ray__store_pin_ready_until(ray__store_t *st, uint64_t id, ray_buf_t *out, uint64_t deadline) {
  for (;;) {
    int rc = ray__store_pin(st, id, out);
    if (rc != 2) return rc;
    if ((rc = ray__spill_restore(st, id, deadline)) != 0) return rc;
  }
}

int ray__store_pin_ready(ray__store_t *st, uint64_t id, ray_buf_t *out) {
  return ray__store_pin_ready_until(st, id, out, UINT64_MAX);
}

int ray__store_retain_batch(ray__store_t *st, const ray_ref_t *refs, size_t n) {
  if (n == 0) return 0;
  ray__groups_t g;
  int rc = ray__groups_make(st, refs, n, &g);
  if (rc != 0) return rc;
  unsigned s = 0;
  for (; s < st->nshards; s++) {
    if (g.starts[s] == g.starts[s + 1]) continue;
    ray__shard_t *sh = &st->shards[s].s;
    ray__lock(&sh->mu);
    size_t k = g.starts[s];
    for (; k < g.starts[s + 1]; k++) {
      ray__entry_t *e = find(st, sh, refs[g.order[k]].id);
      if (e == NULL || e->refcnt == UINT32_MAX) break;
      e->refcnt++;
    }
    bool failed = k < g.starts[s + 1];
    if (failed) /* undo this shard's part (nothing was freed: counts only went up) */
      for (size_t j = g.starts[s]; j < k; j++) find(st, sh, refs[g.order[j]].id)->refcnt--;
    ray__unlock(&sh->mu);
    if (failed) {
      rc = RAY_ENOTFOUND;
      break;
    }
  }
  if (rc != 0) /* undo the shards before the failing one */
    for (unsigned u = 0; u < s; u++)
      for (size_t k = g.starts[u]; k < g.starts[u + 1]; k++)
        ray__store_release(st, refs[g.order[k]].id);
  ray__groups_free(&g);
  return rc;
}

int ray__store_hold_inner(ray__store_t *st, const ray_ref_t *list, size_t n, uint64_t **inner,
                          uint32_t *nobj, uint32_t *nact) {
  *inner = NULL;
  *nobj = *nact = 0;
  if (n == 0) return 0;
  if (n > UINT32_MAX) return RAY_ENOMEM;
  size_t na = 0;
  for (size_t i = 0; i < n; i++) na += list[i].type == RAY_TYPE_ACTOR;
  size_t no = n - na;
  uint64_t *ids = ray__malloc(n * sizeof *ids);
  /* The refs first (as refs, for the batch retain), then the handles. */
  ray_ref_t *refs = na == 0 ? (ray_ref_t *)list : ray__malloc((no ? no : 1) * sizeof *refs);
  if (refs == NULL || ids == NULL) {
    if (refs != list) ray__free(refs);
    ray__free(ids);
    return RAY_ENOMEM;
  }
  for (size_t i = 0, o = 0, a = 0; i < n; i++) {
    if (list[i].type == RAY_TYPE_ACTOR) {
      ids[no + a++] = list[i].id;
    } else {
      if (refs != list) refs[o] = list[i];
      ids[o++] = list[i].id;
    }
  }
  int rc = ray__store_retain_batch(st, refs, no); /* all or nothing */
  size_t held = 0;
  while (rc == 0 && held < na && st->actor_hold.retain != NULL &&
         st->actor_hold.retain(st->actor_hold.arg, ids[no + held]) == 0)
    held++;
  if (rc == 0 && held < na) { /* an unknown handle: let go of the rest */
    for (size_t i = 0; i < held; i++) st->actor_hold.release(st->actor_hold.arg, ids[no + i]);
    ray__store_release_batch(st, refs, no);
    rc = RAY_ENOTFOUND;
  }
  if (refs != list) ray__free(refs);
  if (rc != 0) {
    ray__free(ids);
    return rc;
  }
  *inner = ids;
  *nobj = (uint32_t)no;
  *nact = (uint32_t)na;
  return 0;
}

void ray__store_remote_set(ray__store_t *st, ray__proxy_gone_fn gone, ray__proxy_fetch_fn fetch,
                           void *arg) {
  if (gone != NULL) {
    st->remote.arg = arg;
    atomic_store(&st->remote.fetch, fetch);
    atomic_store(&st->remote.gone, gone);
    return;
  }
  atomic_store(&st->remote.gone, NULL);
  atomic_store(&st->remote.fetch, NULL);
  /* A drop that read the old hook counted itself first (seq_cst both). */
  while (atomic_load(&st->remote.busy) > 0) ray__cpu_relax();
}

/* Take a reference on `id`, another rank's, making its proxy when this rank
 * has none (then listed in made[*nmade]). Errors: RAY_ENOMEM, RAY_EINVAL
 * (4 billion references). */
static int retain_or_proxy(ray__store_t *st, ray_ref_t ref, ray__proxy_t *made, size_t *nmade) {
  if (ray__store_retain(st, ref.id) == 0) return 0;
  ray__entry_t *e = entry_new_reserved(st, 0, ref.type, RAY__PENDING); /* reserves nothing */
  if (e == NULL) return RAY_ENOMEM;
  e->id = ref.id;
  e->proxy = true;
  e->serial = ray__id_next(); /* unique on this rank: names this life of the proxy */
  ray__shard_t *sh = ray__shard_of(st, ref.id);
  ray__lock(&sh->mu);
  ray__entry_t *old = find(st, sh, ref.id);
  int rc = 0;
  if (old != NULL && old->refcnt < UINT32_MAX)
    old->refcnt++; /* made meanwhile by another thread */
  else if (old != NULL)
    rc = RAY_EINVAL;
  else
    insert_locked(st, sh, e);
  ray__unlock(&sh->mu);
  if (old != NULL) {
    ray__mem_entry_discard(e);
    return rc;
  }
  made[(*nmade)++] = (ray__proxy_t){ref.id, e->serial};
  return 0;
}

int ray__store_hold_inner_borrowing(ray__store_t *st, const ray_ref_t *list, size_t n,
                                    uint64_t **inner, uint32_t *nobj, uint32_t *nact,
                                    ray__proxy_t **made, size_t *nmade) {
  *made = NULL;
  *nmade = 0;
  *inner = NULL;
  *nobj = *nact = 0;
  size_t nf = 0; /* the refs another rank owns: each held here first (a proxy made if none) */
  for (size_t i = 0; i < n; i++) nf += list[i].type != RAY_TYPE_ACTOR && id_foreign(list[i].id);
  if (nf == 0) return ray__store_hold_inner(st, list, n, inner, nobj, nact);
  uint64_t *held = ray__malloc(nf * sizeof *held);
  ray__proxy_t *mk = ray__malloc(nf * sizeof *mk);
  if (held == NULL || mk == NULL) {
    ray__free(held);
    ray__free(mk);
    return RAY_ENOMEM;
  }
  size_t nh = 0;
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (list[i].type == RAY_TYPE_ACTOR || !id_foreign(list[i].id)) continue;
    if ((rc = retain_or_proxy(st, list[i], mk, nmade)) == 0) held[nh++] = list[i].id;
  }
  if (rc == 0) rc = ray__store_hold_inner(st, list, n, inner, nobj, nact);
  for (size_t i = 0; i < nh; i++) ray__store_release(st, held[i]); /* what `inner` holds stays */
  ray__free(held);
  if (*nmade == 0) {
    ray__free(mk);
    mk = NULL;
  }
  *made = mk;
  return rc;
}

void ray__store_unhold_inner(ray__store_t *st, uint64_t *inner, uint32_t nobj, uint32_t nact) {
  if (inner == NULL) return;
  for (uint32_t i = 0; i < nact; i++) st->actor_hold.release(st->actor_hold.arg, inner[nobj + i]);
  for (uint32_t i = 0; i < nobj; i++) ray__store_release(st, inner[i]);
  ray__free(inner);
}

int ray__store_release_batch(ray__store_t *st, const ray_ref_t *refs, size_t n) {
  if (n == 0) return 0;
  ray__groups_t g;
  int rc = ray__groups_make(st, refs, n, &g);
  if (rc != 0) { /* no memory to group: one by one */
    rc = 0;
    for (size_t i = 0; i < n; i++)
      if (ray__store_release(st, refs[i].id) != 0) rc = RAY_ENOTFOUND;
    return rc;
  }
  for (unsigned s = 0; s < st->nshards; s++) {
    if (g.starts[s] == g.starts[s + 1]) continue;
    ray__shard_t *sh = &st->shards[s].s;
    ray__entry_t *gone = NULL;
    ray__lock(&sh->mu);
    for (size_t k = g.starts[s]; k < g.starts[s + 1]; k++) {
      ray__entry_t **slot = find_slot(st, sh, refs[g.order[k]].id);
      if (*slot == NULL) {
        rc = RAY_ENOTFOUND;
        continue;
      }
      ray__entry_t *e = release_locked(st, sh, slot);
      if (e != NULL) {
        e->next = gone;
        gone = e;
      }
    }
    ray__unlock(&sh->mu);
    while (gone != NULL) {
      ray__entry_t *next = gone->next;
      ray__store_drop(st, gone);
      gone = next;
    }
  }
  ray__groups_free(&g);
  return rc;
}

void ray__store_clear_producer(ray__store_t *st, uint64_t id) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = find(st, sh, id);
  if (e != NULL) e->producer = NULL;
  ray__unlock(&sh->mu);
}
