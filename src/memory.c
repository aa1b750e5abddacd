/* memory.c - an entry's memory: the object store's capacity (accounting),
 * freeing entries, spilling to disk and restoring.
 *
 * Layering: this file sits below store.c (the table), which calls it; it
 * never calls store.c. It finds entries only through store.h's inline
 * ray__shard_find under their shard lock, and store.c tells it each
 * thread's home shard (ray__mem_set_home) when the thread takes a new
 * block of ids.
 *
 * Freeing: an entry's memory goes when its last `life` unit is dropped
 * (ray__mem_entry_unpin: the table's unit, a view's, or a spill's or restore's
 * pin); ray__mem_entry_detach settles its accounts with the store first, when
 * it leaves the table. The header goes back to the thread that allocated it
 * (rfree.h: freed there at its next allocation, not into its malloc arena
 * from here), except once the runtime is gone, when it is freed at once.
 *
 * Accounting: every payload held in memory has reserved its bytes (an
 * entry's `acct`) from `capacity`; so the bytes in memory never exceed it.
 * `reserved` counts what the shards have taken; each shard keeps a small
 * budget (up to two chunks) so most puts reserve with one atomic on a cache
 * line their shard lock already owns, not on a line every thread shares
 * (the calling thread's home shard: that of its id block, where its puts
 * insert; frees give back to it too, wherever the entry lived).
 * When the store cannot give more, shard budgets are reclaimed first, then
 * ready objects that nobody is reading are spilled (least recently used
 * first), then the put waits up to full_timeout_ms for frees, then it fails
 * with RAY_ESTOREFULL. Nothing referenced is ever dropped, except copies
 * of other ranks' objects (cluster mode's proxies), which are caches.
 *
 * Evicting: a proxy's copy (its owner has the value) is never written to
 * disk. It sits on its shard's `caches` list, not the `lru`, and a
 * reservation that finds no room evicts the least recently used of those
 * nobody is reading before it spills anything (evict_some: the payload is
 * freed, the entry stays, flagged SPILLED), and so does the background
 * spiller. Evicting writes no file and takes no spill_mu, so a thread
 * that must not block (ray__mem_try_reserve) evicts too. A reader of an
 * evicted copy (ray__spill_restore) asks the owner again through the
 * store's fetch hook, once for all its readers (RAY__F_FETCHING), and
 * waits on fetch_cv, up to its deadline, for the value to land in place
 * (store.c's ray__store_complete) or the fetch to fail.
 *
 * Spilling takes a batch of victims (up to a sixteenth of the capacity) and
 * writes them one after another into one new segment file,
 * <spill_dir>/<n>.seg, through libuv's file API, each with a checksum; then
 * frees their memory. The entries stay, flagged SPILLED, each pointing at
 * its segment and offset. A background spiller keeps memory between the
 * 80% and 60% watermarks; a put that still finds no room spills in its own
 * thread. A get (or a task taking the object as an argument) restores it,
 * verifying the checksum; the copy on disk is kept (a second spill costs no
 * write), and a segment file is deleted with the last object in it.
 *
 * Locks: spill_mu (one spill batch at a time) is taken before any shard
 * lock, never under one; restores do not take it (the entry and its
 * segment are pinned instead). No file I/O happens under a shard lock: an
 * entry being written is pinned and flagged SPILLING instead. A reader of
 * an evicted copy holds mem_mu while it looks at the entry under its shard
 * lock (mem_mu before a shard lock), so nothing takes mem_mu under a shard
 * lock: frees and wakes come after the shard lock is released. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "rfree.h"
#include "wait.h"

/* ---- Accounting ---- */

/* The first id of the calling thread's current id block (0 before its
 * first): store.c tells us when the thread takes a new block. */
static _Thread_local uint64_t tl_home_id RAY__TLS_FAST;

void ray__mem_set_home(uint64_t id) {
  tl_home_id = id;
}

/* The thread's home shard: that of its id block, where its puts insert, so
 * its budget sits on a line the thread's own shard lock keeps in its cache
 * (a thread that never put uses shard 0). */
static ray__shard_t *home_shard(ray__store_t *st) {
  return ray__shard_of(st, tl_home_id);
}

static void note_high_water(ray__store_t *st, int64_t v) {
  int64_t hw = atomic_load_explicit(&st->high_water, memory_order_relaxed);
  while (v > hw && !atomic_compare_exchange_weak(&st->high_water, &hw, v)) {
  }
}

/* Take n bytes from the capacity, or nothing. */
static bool take(ray__store_t *st, int64_t n) {
  int64_t cur = atomic_load_explicit(&st->reserved, memory_order_relaxed);
  do {
    if (n > (int64_t)st->capacity - cur) return false; /* no overflow near INT64_MAX */
  } while (!atomic_compare_exchange_weak(&st->reserved, &cur, cur + n));
  note_high_water(st, cur + n);
  return true;
}

/* Give every shard's parked budget back to the store. */
static void reclaim(ray__store_t *st) {
  for (unsigned i = 0; i < st->nshards; i++) {
    int64_t b = atomic_exchange(&st->shards[i].s.budget, 0);
    if (b > 0)
      atomic_fetch_sub(&st->reserved, b);
    else if (b < 0)
      atomic_fetch_add(&st->shards[i].s.budget, b); /* a reservation in flight: give it back */
  }
}

static size_t spill_some(ray__store_t *st, size_t need);
static size_t evict_some(ray__store_t *st, size_t need);
static void spiller_kick(ray__store_t *st);
static void segment_unref(ray__store_t *st, struct ray__segment_s *seg);

/* Spill in the background past this share of the capacity, down to the low one. */
#define RAY__SPILL_HIGH(st) ((st)->capacity / 10 * 8)
#define RAY__SPILL_LOW(st) ((st)->capacity / 10 * 6)

/* The reservation's steps that neither spill nor wait: the home shard's
 * budget, the store's free capacity (with a chunk of budget for the
 * home shard when there is room), then every shard's parked budget. */
static bool reserve_now(ray__store_t *st, ray__shard_t *sh, int64_t want) {
  if (want <= INT64_MAX - st->chunk && take(st, want + st->chunk)) {
    atomic_fetch_add(&sh->budget, st->chunk);
    return true;
  }
  if (take(st, want)) return true;
  reclaim(st);
  return take(st, want);
}

/* The home shard's budget, or false; and the background spiller kicked
 * once the store is past its high mark. */
static bool reserve_start(ray__store_t *st, ray__shard_t *sh, int64_t want) {
  if (atomic_fetch_sub(&sh->budget, want) - want >= 0) return true;
  atomic_fetch_add(&sh->budget, want);
  if (st->spill_enabled &&
      (uint64_t)atomic_load_explicit(&st->reserved, memory_order_relaxed) > RAY__SPILL_HIGH(st))
    spiller_kick(st);
  return false;
}

int ray__mem_try_reserve(ray__store_t *st, size_t n) {
  if (n == 0) return 0;
  if (n > st->capacity) return RAY_ESTOREFULL;
  ray__shard_t *sh = home_shard(st);
  if (reserve_start(st, sh, (int64_t)n) || reserve_now(st, sh, (int64_t)n)) return 0;
  /* Evicting proxies' copies never blocks: no file, no spill_mu. */
  return evict_some(st, n) > 0 && reserve_now(st, sh, (int64_t)n) ? 0 : RAY_ESTOREFULL;
}

int ray__mem_reserve(ray__store_t *st, size_t n) {
  if (n == 0) return 0;
  if (n > st->capacity) return RAY_ESTOREFULL;
  ray__shard_t *sh = home_shard(st);
  int64_t want = (int64_t)n;
  if (reserve_start(st, sh, want)) return 0;
  uint64_t deadline = 0;
  for (;;) {
    if (reserve_now(st, sh, want)) return 0;
    if (evict_some(st, n) > 0) continue; /* caches first: no disk write */
    if (st->spill_enabled && spill_some(st, n) > 0) continue;
    /* Nothing to spill (all pinned, or spilling off): wait for frees. */
    if (atomic_load(&st->mem_stop)) return RAY_ESHUTDOWN;
    if (deadline == 0) deadline = ray__sched_deadline(st->full_timeout_ms);
    uint64_t now = uv_hrtime();
    if (now >= deadline) return RAY_ESTOREFULL;
    /* A worker waiting here (a task's ray_return_*, a put from a task)
     * gives its CPU away as a blocked get does (scheduler.c, I3): the task
     * whose end frees the memory may be queued behind it. If no spare can
     * start, the wait is still bounded by the deadline. */
    ray__worker_t *wk = ray__worker_self();
    if (wk != NULL) (void)ray__sched_block_begin(wk);
    uv_mutex_lock(&st->mem_mu);
    atomic_fetch_add(&st->mem_waiters, 1);
    /* Re-check under mem_mu: a free (or ray__mem_stop, at shutdown) in
     * between has signalled already. */
    if (atomic_load(&st->reserved) > (int64_t)st->capacity - want && !atomic_load(&st->mem_stop))
      (void)ray__thread_cond_wait_until(&st->mem_cv, &st->mem_mu, deadline);
    atomic_fetch_sub(&st->mem_waiters, 1);
    uv_mutex_unlock(&st->mem_mu);
    if (wk != NULL) ray__sched_block_end(wk);
  }
}

void ray__mem_stop(ray__store_t *st) {
  uv_mutex_lock(&st->mem_mu);
  atomic_store(&st->mem_stop, true);
  uv_cond_broadcast(&st->mem_cv);
  uv_cond_broadcast(&st->fetch_cv); /* readers of evicted proxies */
  uv_mutex_unlock(&st->mem_mu);
}

void ray__mem_release(ray__store_t *st, size_t n) {
  if (n == 0) return;
  ray__shard_t *sh = home_shard(st);
  int64_t b = atomic_fetch_add(&sh->budget, (int64_t)n) + (int64_t)n;
  if (b > 2 * st->chunk) {
    int64_t give = b - st->chunk;
    if (atomic_compare_exchange_strong(&sh->budget, &b, st->chunk))
      atomic_fetch_sub(&st->reserved, give);
  }
  if (atomic_load(&st->mem_waiters) > 0) {
    reclaim(st); /* waiters need it in the store, not parked in a shard */
    uv_mutex_lock(&st->mem_mu);
    uv_cond_broadcast(&st->mem_cv);
    uv_mutex_unlock(&st->mem_mu);
  }
}

uint64_t ray__mem_used(ray__store_t *st) {
  int64_t used = atomic_load(&st->reserved);
  for (unsigned i = 0; i < st->nshards; i++) {
    int64_t b = atomic_load(&st->shards[i].s.budget);
    if (b > 0) used -= b;
  }
  return used > 0 ? (uint64_t)used : 0;
}

/* ---- Freeing ---- */

/* Done when an entry leaves the store (or is freed without ever entering
 * it), so an entry kept alive only by views never touches the store again:
 * views may outlive it. Memory held only by such views is no longer
 * counted. */
void ray__mem_entry_detach(ray__entry_t *e) {
  ray__store_t *st = atomic_load_explicit(&e->st, memory_order_relaxed);
  if (st == NULL) return;
  if (e->acct > 0) ray__mem_release(st, e->acct);
  e->acct = 0;
  if (e->flags & RAY__F_FILE) segment_unref(st, e->seg);
  if ((e->flags & RAY__F_SPILLED) && !e->proxy) /* an evicted proxy's copy is at its owner */
    atomic_fetch_sub(&st->bytes_on_disk, (int64_t)e->size);
  /* Detached: the flags are no longer written (a spill may still read them). */
  atomic_store_explicit(&e->st, NULL, memory_order_relaxed);
}

/* Give an entry's header back to its thread (rfree.h); with `direct`, a
 * malloc'd one is freed at once (a small one always goes back: only its
 * thread may touch its slab, and it counts as freed already). */
static void header_free(ray__entry_t *e, bool direct) {
  if (e->small)
    ray__rfree_small(e->home, e);
  else
    ray__rfree(direct ? NULL : e->home, e);
}

/* Free `e` and what it owns; the header goes back to the thread that
 * allocated it (rfree.h) unless `direct` (the runtime is gone: nothing
 * would drain an inbox before a leak check). */
static void entry_free(ray__entry_t *e, bool direct) {
  if (!(e->flags & RAY__F_SPILLED)) {
    if (e->flags & RAY__F_OWNED) {
      if (e->free_fn != NULL) e->free_fn(e->data, e->free_arg);
    } else if (!(e->flags & RAY__F_INLINE)) {
      ray__free(e->data);
    }
  }
  ray__mem_entry_detach(e);
  ray__free(e->inner);
  header_free(e, direct);
}

void ray__mem_entry_discard(ray__entry_t *e) {
  header_free(e, false);
}

void ray__mem_entry_free(ray__entry_t *e) {
  entry_free(e, false);
}

void ray__mem_entry_unpin(ray__entry_t *e) {
  ray__mem_entry_unpin_view(e, true);
}

void ray__mem_entry_unpin_view(ray__entry_t *e, bool store_live) {
  ray__store_t *st = store_live ? atomic_load_explicit(&e->st, memory_order_relaxed) : NULL;
  unsigned prev = atomic_fetch_sub_explicit(&e->life, 1, memory_order_acq_rel);
  if (prev == 1) {
    entry_free(e, !store_live);
  } else if (prev == 2 && st != NULL && atomic_load(&st->mem_waiters) > 0) {
    /* The last view went: the object may be spillable now, and a put may be
     * waiting for exactly that. */
    uv_mutex_lock(&st->mem_mu);
    uv_cond_broadcast(&st->mem_cv);
    uv_mutex_unlock(&st->mem_mu);
  }
}

/* ---- LRU lists (shard lock held) ---- */

/* Ready, in memory, payload in its own block (inline ones are small and
 * share the header's allocation), counted: this rank's objects are spill
 * candidates (the shard's lru), proxies' copies are caches of another
 * rank's objects (its `caches`), evicted, never written to disk. */
static bool candidate(const ray__entry_t *e) {
  return e->state == RAY__READY && !(e->flags & (RAY__F_INLINE | RAY__F_SPILLED)) && e->acct > 0;
}

static ray__lru_t *list_of(ray__shard_t *sh, const ray__entry_t *e) {
  return e->proxy ? &sh->caches : &sh->lru;
}

static bool in_list(const ray__lru_t *l, const ray__entry_t *e) {
  return e->lru_prev != NULL || l->head == e;
}

/* `e` to the tail of l, as its newest. */
static void lru_link_tail(ray__store_t *st, ray__lru_t *l, ray__entry_t *e) {
  e->tick = atomic_fetch_add_explicit(&st->tick, 1, memory_order_relaxed);
  e->lru_next = NULL;
  e->lru_prev = l->tail;
  if (l->tail != NULL)
    l->tail->lru_next = e;
  else
    l->head = e;
  l->tail = e;
}

static void lru_unlink(ray__lru_t *l, ray__entry_t *e) {
  if (e->lru_prev != NULL)
    e->lru_prev->lru_next = e->lru_next;
  else
    l->head = e->lru_next;
  if (e->lru_next != NULL)
    e->lru_next->lru_prev = e->lru_prev;
  else
    l->tail = e->lru_prev;
  e->lru_prev = e->lru_next = NULL;
}

/* The caches are counted store-wide (ncaches), so a reservation in a
 * store that holds none (any store outside cluster mode) evicts without
 * looking at a shard. */
void ray__lru_add(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e) {
  if (!candidate(e)) return;
  lru_link_tail(st, list_of(sh, e), e);
  if (e->proxy) atomic_fetch_add_explicit(&st->ncaches, 1, memory_order_relaxed);
}

void ray__lru_remove(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e) {
  ray__lru_t *l = list_of(sh, e);
  if (!in_list(l, e)) return;
  lru_unlink(l, e);
  if (e->proxy) atomic_fetch_sub_explicit(&st->ncaches, 1, memory_order_relaxed);
}

void ray__lru_touch(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e) {
  ray__lru_t *l = list_of(sh, e);
  if (!in_list(l, e) || l->tail == e) return;
  lru_unlink(l, e);
  lru_link_tail(st, l, e);
}

/* ---- Files ---- */

uint64_t ray__spill_checksum(const void *data, size_t n) {
  /* Four independent multiply-xor lanes over 32-byte blocks (the multiplies
   * overlap, so it runs near memory speed), folded at the end: enough to
   * catch a damaged or foreign file without slowing the disk down. */
  const unsigned char *p = data;
  const uint64_t k = 0xFF51AFD7ED558CCDull;
  uint64_t h[4] = {0x9E3779B97F4A7C15ull ^ n, 0xC2B2AE3D27D4EB4Full, 0x165667B19E3779F9ull,
                   0x27D4EB2F165667C5ull};
  while (n >= 32) {
    for (int i = 0; i < 4; i++) {
      uint64_t w;
      memcpy(&w, p + 8 * i, 8);
      h[i] = (h[i] ^ w) * k;
      h[i] ^= h[i] >> 31;
    }
    p += 32;
    n -= 32;
  }
  uint64_t r = h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7);
  while (n > 0) {
    uint64_t w = 0;
    size_t m = n < 8 ? n : 8;
    memcpy(&w, p, m);
    r = (r ^ w) * k;
    r ^= r >> 29;
    p += m;
    n -= m;
  }
  return r ^ (r >> 32);
}

/* A spill segment: one file holding the payloads of one spill batch, so a
 * batch costs one file creation and sequential writes. Deleted when the
 * last object with a copy in it is freed. */
typedef struct ray__segment_s {
  uint64_t id;
  atomic_int live;
} ray__segment_t;

static void segment_path(const ray__store_t *st, uint64_t seg, char *buf, size_t len) {
  snprintf(buf, len, "%s/%llu.seg", st->spill_dir, (unsigned long long)seg);
}

/* spill_mu held. */
static int ensure_spill_dir(ray__store_t *st) {
  if (st->spill_dir != NULL) return 0;
  char tmp[1024];
  size_t len = sizeof tmp;
  if (uv_os_tmpdir(tmp, &len) != 0) return RAY_EIO;
  char tmpl[1100];
  snprintf(tmpl, sizeof tmpl, "%s/rustyray-spill-XXXXXX", tmp);
  uv_fs_t req;
  int r = uv_fs_mkdtemp(NULL, &req, tmpl, NULL);
  if (r == 0 && (st->spill_dir = ray__strdup(req.path)) == NULL) r = RAY_ENOMEM;
  uv_fs_req_cleanup(&req);
  return r == 0 ? 0 : r == RAY_ENOMEM ? r : RAY_EIO;
}

/* Write or read `size` bytes at `off` of an open file, whole. */
static int file_io(int fd, void *data, size_t size, uint64_t off, bool write) {
  /* libuv reads at the current position for a negative offset: never let
   * an offset wrap into one. */
  if (off > (uint64_t)INT64_MAX || size > (uint64_t)INT64_MAX - off) return RAY_EIO;
  size_t done = 0;
  while (done < size) {
    size_t n = size - done > (1u << 30) ? (1u << 30) : size - done;
    uv_buf_t b = uv_buf_init((char *)data + done, (unsigned)n);
    uv_fs_t req;
    int r = write ? uv_fs_write(NULL, &req, fd, &b, 1, (int64_t)(off + done), NULL)
                  : uv_fs_read(NULL, &req, fd, &b, 1, (int64_t)(off + done), NULL);
    uv_fs_req_cleanup(&req);
    if (r <= 0) return RAY_EIO;
    done += (size_t)r;
  }
  return 0;
}

int ray__spill_record_read(int fd, uint64_t off, size_t size, uint64_t sum, void *data) {
  int rc = file_io(fd, data, size, off, false); /* a short file is RAY_EIO too */
  if (rc == 0 && ray__spill_checksum(data, size) != sum)
    rc = RAY_EIO; /* damaged: never hand it out */
  return rc;
}

static int file_open(const char *path, int flags) {
  uv_fs_t req;
  int fd = uv_fs_open(NULL, &req, path, flags, 0600, NULL);
  uv_fs_req_cleanup(&req);
  return fd;
}

static void file_close(int fd) {
  uv_fs_t req;
  uv_fs_close(NULL, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
}

static void file_unlink(const char *path) {
  uv_fs_t req;
  uv_fs_unlink(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
}

/* Let go of a segment (an entry with a copy in it is freed, or a spill
 * batch is done writing): the file is deleted with its last object. */
static void segment_unref(ray__store_t *st, ray__segment_t *seg) {
  if (atomic_fetch_sub(&seg->live, 1) != 1) return;
  char path[1200];
  segment_path(st, seg->id, path, sizeof path);
  file_unlink(path);
  ray__free(seg);
}

void ray__spill_cleanup(ray__store_t *st) {
  if (st->spill_dir == NULL || !st->spill_dir_owned) return;
  uv_fs_t req;
  uv_fs_rmdir(NULL, &req, st->spill_dir, NULL);
  uv_fs_req_cleanup(&req);
}

/* ---- Spilling ---- */

/* Claim the least recently used candidate nobody is reading, across the
 * shards, from their caches (a proxy's copy, to evict) or their lru (an
 * object of ours, to spill): flag it SPILLING and pin it. NULL when there
 * is none. */
static ray__entry_t *claim_victim(ray__store_t *st, bool caches, bool *has_file) {
  for (int attempt = 0; attempt < 8; attempt++) {
    uint64_t best = UINT64_MAX, id = 0;
    for (unsigned i = 0; i < st->nshards; i++) {
      ray__shard_t *sh = &st->shards[i].s;
      ray__lock(&sh->mu);
      for (ray__entry_t *e = caches ? sh->caches.head : sh->lru.head; e != NULL; e = e->lru_next) {
        if (atomic_load(&e->life) != 1 || (e->flags & RAY__F_SPILLING)) continue; /* pinned */
        if (e->tick < best) {
          best = e->tick;
          id = e->id;
        }
        break; /* the oldest unpinned one of this shard */
      }
      ray__unlock(&sh->mu);
    }
    if (id == 0) return NULL;
    ray__shard_t *sh = ray__shard_of(st, id);
    ray__lock(&sh->mu);
    ray__entry_t *e = ray__shard_find(st, sh, id);
    bool ok = e != NULL && candidate(e) && e->proxy == caches && atomic_load(&e->life) == 1 &&
              !(e->flags & RAY__F_SPILLING);
    if (ok) {
      *has_file = (e->flags & RAY__F_FILE) != 0; /* read under the lock */
      e->flags |= RAY__F_SPILLING;
      atomic_fetch_add(&e->life, 1); /* keeps the payload while we write it */
    }
    ray__unlock(&sh->mu);
    if (ok) return e;
    /* Changed meanwhile (read or freed): look again. */
  }
  return NULL;
}

/* A payload a spill has taken out of memory, to free once spill_mu is
 * released (a caller's free_fn may call back into the store). */
typedef struct dropped_s {
  void *data; /* captured before the entry's data was cleared */
  ray_free_fn free_fn;
  void *free_arg;
  bool owned;
  size_t bytes;
} dropped_t;

static void free_dropped(ray__store_t *st, dropped_t *d) {
  if (d->bytes == 0) return;
  if (!d->owned)
    ray__free(d->data);
  else if (d->free_fn != NULL)
    d->free_fn(d->data, d->free_arg); /* the caller's buffer goes now; a restore makes our own */
  ray__mem_release(st, d->bytes);
}

/* After the write: take the payload out of memory if the entry is still
 * ours alone (*d says what to free; its bytes are 0 when nothing was). */
/* Take a claimed entry's payload out of memory (shard lock held; it is
 * ours alone: the table's hold and the claim's pin): off its list, flagged
 * SPILLED, data NULL; what to free, with no lock held, is returned. */
static dropped_t take_payload_locked(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e) {
  ray__lru_remove(st, sh, e);
  dropped_t d = {e->data, e->free_fn, e->free_arg, (e->flags & RAY__F_OWNED) != 0, e->acct};
  e->data = NULL;
  e->flags |= RAY__F_SPILLED;
  e->flags &= (uint8_t)~RAY__F_OWNED; /* a payload restored or fetched again is ours */
  e->acct = 0;
  return d;
}

static void finish_spill(ray__store_t *st, ray__entry_t *e, ray__segment_t *seg, uint64_t off,
                         uint64_t sum, bool written, dropped_t *d) {
  ray__shard_t *sh = ray__shard_of(st, e->id);
  *d = (dropped_t){0};
  ray__lock(&sh->mu);
  /* Released meanwhile: detach() has run or runs now, without the lock, so
   * leave the entry alone (attaching the segment would leak it). */
  bool listed = ray__shard_find(st, sh, e->id) == e;
  if (listed) e->flags &= (uint8_t)~RAY__F_SPILLING;
  if (written && listed && !(e->flags & RAY__F_FILE)) {
    e->flags |= RAY__F_FILE;
    e->seg = seg;
    e->seg_off = off;
    e->sum = sum;
    atomic_fetch_add(&seg->live, 1);
  }
  /* The table's hold and our pin only, and still in the table? */
  if (listed && (e->flags & RAY__F_FILE) && atomic_load(&e->life) == 2)
    *d = take_payload_locked(st, sh, e);
  ray__unlock(&sh->mu);
  size_t freed = d->bytes;
  if (freed > 0) {
    atomic_fetch_add(&st->spill_count, 1);
    atomic_fetch_add(&st->spilled_bytes_total, freed);
    atomic_fetch_add(&st->bytes_on_disk, (int64_t)freed);
  }
  ray__mem_entry_unpin(e);
}

/* ---- Evicting proxies' copies ---- */

/* Evict the least recently used proxies' copies nobody is reading until
 * `need` bytes are freed or none is left: each payload is freed and its
 * entry flagged SPILLED (its owner still has the value, which a reader
 * fetches again: ray__spill_restore). No file is written and spill_mu is
 * not taken, so a thread that must not block may evict. Returns the bytes
 * freed. */
static size_t evict_some(ray__store_t *st, size_t need) {
  size_t freed = 0;
  if (atomic_load_explicit(&st->ncaches, memory_order_relaxed) == 0) return 0; /* no scan */
  while (freed < need) {
    bool unused;
    ray__entry_t *e = claim_victim(st, true, &unused);
    if (e == NULL) break;
    ray__shard_t *sh = ray__shard_of(st, e->id);
    dropped_t d = {0};
    ray__lock(&sh->mu);
    /* Released meanwhile: detach() owns it now (as in finish_spill). */
    if (ray__shard_find(st, sh, e->id) == e) {
      e->flags &= (uint8_t)~RAY__F_SPILLING;
      if (atomic_load(&e->life) == 2) { /* the table's hold and our pin only */
        d = take_payload_locked(st, sh, e);
        e->err_code = 0; /* no fetch of it has failed yet */
      }
    }
    ray__unlock(&sh->mu);
    if (d.bytes > 0) {
      free_dropped(st, &d);
      atomic_fetch_add(&st->evict_count, 1);
      freed += d.bytes;
    }
    ray__mem_entry_unpin(e);
  }
  return freed;
}

enum { RAY__SPILL_BATCH = 256 };

/* Spill least recently used objects, at least `need` bytes' worth if it can,
 * batched (up to a sixteenth of the capacity) into one new segment file.
 * Returns the bytes freed. */
static size_t spill_some(ray__store_t *st, size_t need) {
  uv_mutex_lock(&st->spill_mu);
  size_t freed = 0;
  if (ensure_spill_dir(st) != 0) goto out;
  size_t target = st->capacity / 16 > need ? st->capacity / 16 : need;
  ray__entry_t *batch[RAY__SPILL_BATCH];
  bool had_file[RAY__SPILL_BATCH];
  size_t n = 0, bytes = 0;
  while (n < RAY__SPILL_BATCH && bytes < target) {
    ray__entry_t *e = claim_victim(st, false, &had_file[n]);
    if (e == NULL) break;
    batch[n++] = e;
    bytes += e->size;
  }
  if (n == 0) goto out;
  ray__segment_t *seg = ray__calloc(1, sizeof *seg);
  int fd = -1;
  char path[1200];
  if (seg != NULL) {
    seg->id = ++st->next_segment;
    atomic_init(&seg->live, 1); /* ours while we write */
    segment_path(st, seg->id, path, sizeof path);
    fd = file_open(path, O_CREAT | O_WRONLY | O_TRUNC);
  }
  uint64_t off = 0;
  dropped_t dropped[RAY__SPILL_BATCH];
  for (size_t i = 0; i < n; i++) {
    ray__entry_t *e = batch[i];
    bool written = false;
    uint64_t sum = 0;
    if (!had_file[i] && fd >= 0) { /* a copy made earlier still holds: reuse it */
      sum = ray__spill_checksum(e->data, e->size);
      written = file_io(fd, e->data, e->size, off, true) == 0;
    }
    size_t size = e->size; /* finish_spill may free e */
    finish_spill(st, e, seg, off, sum, written, &dropped[i]);
    freed += dropped[i].bytes;
    if (written) off += size;
  }
  if (fd >= 0) file_close(fd);
  if (seg != NULL) segment_unref(st, seg);
  uv_mutex_unlock(&st->spill_mu);
  for (size_t i = 0; i < n; i++) free_dropped(st, &dropped[i]); /* no lock held */
  /* Logged with no lock held: a log handler may call into the library. */
  if (fd < 0) ray__log(RAY_LOG_ERROR, "cannot create a spill file in %s", st->spill_dir);
  ray__log(RAY_LOG_DEBUG, "spilled %zu objects, %zu bytes freed", n, freed);
  return freed;
out:
  uv_mutex_unlock(&st->spill_mu);
  return freed;
}

/* ---- Fetching an evicted proxy's copy again ---- */

void ray__mem_fetch_end(ray__entry_t *e, int code) {
  e->flags &= (uint8_t)~RAY__F_FETCHING;
  e->err_code = code;
}

void ray__mem_fetch_wake(ray__store_t *st) {
  uv_mutex_lock(&st->mem_mu);
  uv_cond_broadcast(&st->fetch_cv);
  uv_mutex_unlock(&st->mem_mu);
}

int ray__mem_ask_owner(ray__store_t *st, uint64_t id) {
  atomic_fetch_add(&st->remote.busy, 1); /* ray__store_remote_set waits this out */
  ray__proxy_fetch_fn fetch = atomic_load(&st->remote.fetch);
  int rc = fetch != NULL ? fetch(st->remote.arg, id) : RAY_ESHUTDOWN;
  atomic_fetch_sub(&st->remote.busy, 1);
  return rc;
}

/* Proxy `id`'s copy was evicted: ask its owner again, once for all its
 * readers (RAY__F_FETCHING while asked), and wait, with mem_mu, until the
 * copy is back (ray__store_complete puts it in place), the fetch failed
 * (its code kept in err_code, which this returns), the proxy failed or
 * went, shutdown, or the deadline (RAY_ETIMEDOUT: the fetch goes on). A
 * worker gives its CPU away meanwhile, as a blocked get does. */
static int refetch(ray__store_t *st, uint64_t id, uint64_t deadline) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__worker_t *wk = ray__worker_self();
  if (wk != NULL) (void)ray__sched_block_begin(wk);
  bool waited = false; /* saw a fetch under way, or began one */
  int rc = 0;
  uv_mutex_lock(&st->mem_mu);
  for (;;) {
    bool ask = false;
    ray__lock(&sh->mu);
    ray__entry_t *e = ray__shard_find(st, sh, id);
    if (e == NULL)
      rc = RAY_ENOTFOUND;
    else if (e->state != RAY__READY || !(e->flags & RAY__F_SPILLED))
      rc = 1; /* back (or failed): the caller pins and sees which */
    else if (e->flags & RAY__F_FETCHING)
      waited = true;
    else if (waited && e->err_code != 0)
      rc = e->err_code; /* the fetch this call waited for failed */
    else {              /* none under way: begin one (a failed one is tried again) */
      e->flags |= RAY__F_FETCHING;
      e->err_code = 0;
      ask = waited = true;
    }
    ray__unlock(&sh->mu);
    if (rc != 0) break;
    if (ask) {
      uv_mutex_unlock(&st->mem_mu); /* the hook queues: no lock of ours held */
      int arc = ray__mem_ask_owner(st, id);
      if (arc == 0) atomic_fetch_add(&st->refetch_count, 1);
      uv_mutex_lock(&st->mem_mu);
      if (arc != 0) {
        ray__lock(&sh->mu);
        if ((e = ray__shard_find(st, sh, id)) != NULL && (e->flags & RAY__F_FETCHING))
          ray__mem_fetch_end(e, arc);
        ray__unlock(&sh->mu);
        uv_cond_broadcast(&st->fetch_cv); /* mem_mu held */
      }
      continue; /* look again: the answer may be here already */
    }
    if (atomic_load(&st->mem_stop)) {
      rc = RAY_ESHUTDOWN;
      break;
    }
    if (ray__thread_cond_wait_until(&st->fetch_cv, &st->mem_mu, deadline) != 0) {
      rc = RAY_ETIMEDOUT;
      break;
    }
  }
  uv_mutex_unlock(&st->mem_mu);
  if (wk != NULL) ray__sched_block_end(wk);
  return rc == 1 ? 0 : rc;
}

/* ---- Restoring ---- */

int ray__spill_restore(ray__store_t *st, uint64_t id, uint64_t deadline) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = ray__shard_find(st, sh, id);
  if (e == NULL || !(e->flags & RAY__F_SPILLED)) { /* freed, or restored by someone else */
    ray__unlock(&sh->mu);
    return e == NULL ? RAY_ENOTFOUND : 0;
  }
  if (e->proxy) { /* evicted: its owner has the value */
    ray__unlock(&sh->mu);
    return refetch(st, id, deadline);
  }
  atomic_fetch_add(&e->life, 1); /* keeps the entry (and its segment) while we read */
  size_t size = e->size;
  /* The segment may go as soon as the entry leaves the table (even pinned):
   * keep its number, not the pointer. */
  uint64_t sum = e->sum, off = e->seg_off, seg_id = e->seg->id;
  ray__unlock(&sh->mu);

  /* Room first: this may spill others (never this one: it is not a candidate). */
  int rc = ray__mem_reserve(st, size);
  void *data = NULL;
  if (rc == 0 && (data = ray__malloc(size == 0 ? 1 : size)) == NULL) {
    ray__mem_release(st, size);
    rc = RAY_ENOMEM;
  }
  if (rc == 0) {
    char path[1200];
    segment_path(st, seg_id, path, sizeof path);
    int fd = file_open(path, O_RDONLY);
    rc = fd < 0 ? RAY_EIO : ray__spill_record_read(fd, off, size, sum, data);
    if (fd >= 0) file_close(fd);
    if (rc != 0)
      ray__log(RAY_LOG_ERROR, "cannot restore object %llu from %s", (unsigned long long)id, path);
  }
  bool installed = false;
  if (rc == 0) {
    ray__lock(&sh->mu);
    if ((e->flags & RAY__F_SPILLED) && ray__shard_find(st, sh, id) == e) {
      e->data = data;
      e->acct = size;
      e->flags &= (uint8_t)~RAY__F_SPILLED;
      ray__lru_add(st, sh, e);
      installed = true;
    }
    ray__unlock(&sh->mu);
    if (installed) {
      atomic_fetch_add(&st->restore_count, 1);
      atomic_fetch_sub(&st->bytes_on_disk, (int64_t)size);
    }
  }
  if (!installed && data != NULL) { /* restored meanwhile by another reader, or freed */
    ray__free(data);
    ray__mem_release(st, size);
  }
  if (rc != 0) { /* freed meanwhile (its file with it)? Then say so, not EIO. */
    ray__lock(&sh->mu);
    if (ray__shard_find(st, sh, id) != e) rc = RAY_ENOTFOUND;
    ray__unlock(&sh->mu);
  }
  ray__mem_entry_unpin(e);
  return rc;
}

/* ---- The background spiller ---- */

static void spiller_kick(ray__store_t *st) {
  uv_mutex_lock(&st->spiller_mu);
  if (!st->spiller_kick) {
    st->spiller_kick = true;
    uv_cond_signal(&st->spiller_cv);
  }
  uv_mutex_unlock(&st->spiller_mu);
}

static void spiller_main(void *arg) {
  ray__store_t *st = arg;
  ray__thread_role = RAY__ROLE_SPILLER; /* ray_shutdown from a free_fn run here: RAY_EBUSY */
  uv_mutex_lock(&st->spiller_mu);
  for (;;) {
    while (!st->spiller_kick && !st->spiller_stop) uv_cond_wait(&st->spiller_cv, &st->spiller_mu);
    if (st->spiller_stop) break;
    uv_mutex_unlock(&st->spiller_mu);
    while (ray__mem_used(st) > RAY__SPILL_LOW(st)) {
      size_t over = ray__mem_used(st) - RAY__SPILL_LOW(st);
      if (evict_some(st, over) > 0) continue; /* caches first: no disk write */
      if (spill_some(st, over) == 0) break;   /* nothing left to spill: puts will wait */
    }
    uv_mutex_lock(&st->spiller_mu);
    st->spiller_kick = false;
    uv_cond_broadcast(&st->spiller_idle_cv); /* ray__spiller_quiesce */
  }
  uv_mutex_unlock(&st->spiller_mu);
}

int ray__spiller_quiesce(ray__store_t *st, uint64_t deadline) {
  if (!st->spiller_running) return 0;
  int rc = 0;
  uv_mutex_lock(&st->spiller_mu);
  /* A kick still set means a round is due or in flight: each round ends by
   * clearing it, after its batches are written and their memory freed. */
  while (rc == 0 && st->spiller_kick && !st->spiller_stop)
    rc = ray__thread_cond_wait_until(&st->spiller_idle_cv, &st->spiller_mu, deadline);
  uv_mutex_unlock(&st->spiller_mu);
  return rc;
}

int ray__spiller_start(ray__store_t *st) {
  st->spiller_kick = st->spiller_stop = false;
  if (!st->spill_enabled) return 0;
  if (uv_mutex_init(&st->spiller_mu) != 0) return RAY_ENOMEM;
  if (uv_cond_init(&st->spiller_cv) != 0) {
    uv_mutex_destroy(&st->spiller_mu);
    return RAY_ENOMEM;
  }
  if (uv_cond_init(&st->spiller_idle_cv) != 0) {
    uv_cond_destroy(&st->spiller_cv);
    uv_mutex_destroy(&st->spiller_mu);
    return RAY_ENOMEM;
  }
  if (ray__thread_create(&st->spiller, spiller_main, st) != 0) {
    uv_cond_destroy(&st->spiller_idle_cv);
    uv_cond_destroy(&st->spiller_cv);
    uv_mutex_destroy(&st->spiller_mu);
    return RAY_EIO;
  }
  st->spiller_running = true;
  return 0;
}

void ray__spiller_stop(ray__store_t *st) {
  if (!st->spiller_running) return;
  uv_mutex_lock(&st->spiller_mu);
  st->spiller_stop = true;
  uv_cond_signal(&st->spiller_cv);
  uv_mutex_unlock(&st->spiller_mu);
  ray__thread_join(&st->spiller);
  uv_cond_destroy(&st->spiller_idle_cv);
  uv_cond_destroy(&st->spiller_cv);
  uv_mutex_destroy(&st->spiller_mu);
  st->spiller_running = false;
}
