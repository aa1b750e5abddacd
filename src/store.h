/* store.h - the sharded in-memory object store (see store.c). */
#ifndef RAY_STORE_H
#define RAY_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lock.h"
#include "rustyray/error.h"
#include "rustyray/object.h"
#include "view.h"

enum { RAY__PENDING = 0, RAY__READY = 1, RAY__FAILED = 2 };

/* Entry metadata flags. */
enum {
  RAY__F_ERROR = 1u << 0,    /* the payload is an encoded ray_error_t (or empty: code only) */
  RAY__F_INLINE = 1u << 1,   /* the payload lives inside the entry allocation */
  RAY__F_OWNED = 1u << 2,    /* the payload is a caller buffer released with free_fn */
  RAY__F_SPILLED = 1u << 3,  /* the payload is not in memory (data NULL): on disk, or for a
                                proxy, evicted (its owner has it: ray__spill_restore fetches
                                it again) */
  RAY__F_SPILLING = 1u << 4, /* claimed by a spill or an eviction: not a victim again */
  RAY__F_FILE = 1u << 5,     /* the payload has a copy in a spill segment (`seg`) */
  RAY__F_HELPABLE = 1u << 6, /* pending: its producer is a remote function's task or an
                                actor's method call, which a waiting host may run
                                (ray__task_run_producer) */
  RAY__F_FETCHING = 1u << 7  /* a proxy whose value was asked of its owner: pending, at
                                its first read (store.c), or evicted, again (memory.c) */
};

/* A watch: notified once when an entry completes (status 0 when ready, the
 * error code when failed) or is released while pending (RAY_ENOTFOUND).
 * `fn` runs with the entry's shard lock held: it must be short internal code
 * that takes no lock other than its own leaf locks (never user code). */
typedef struct ray__watch_s ray__watch_t;
typedef void (*ray__watch_fn)(ray__watch_t *w, int status);
struct ray__watch_s {
  ray__watch_t *next;
  ray__watch_fn fn;
  /* Set by ray__store_watch when it registers: the entry has a producer and
   * it is a remote function's task or a method call (RAY__F_HELPABLE), so a
   * waiting host may try to run it; saves the waiter a lock round trip
   * otherwise. */
  bool helpable;
};

typedef struct ray__entry_s {
  struct ray__entry_s *next; /* hash chain (shard lock) */
  uint64_t id;
  atomic_uint life; /* 1 while in the table, +1 per pinned view */
  uint32_t refcnt;  /* references (shard lock) */
  uint32_t type;
  uint8_t state;    /* RAY__PENDING / READY / FAILED */
  uint8_t flags;    /* RAY__F_* */
  bool proxy;       /* cluster mode: another rank owns it (ray__store_hold_inner_borrowing);
                       its copy is a cache, evicted rather than spilled, and its owner is
                       told when it goes (here, in what was padding) */
  int32_t err_code; /* when failed: the error's code; an evicted proxy: why its last fetch
                       failed (0: none) */
  uint32_t nactors; /* the actor handles after the refs in `inner` (here, in what was
                       padding: the header stays at 176 bytes) */
  size_t size;
  void *data;
  ray_free_fn free_fn; /* RAY__F_OWNED: free_fn(data, free_arg) when freed */
  void *free_arg;
  ray__watch_t *watchers;         /* pending only (shard lock) */
  void *producer;                 /* pending only: the task that will complete it */
  uint64_t *inner;                /* refs this object holds (released with it), then
                                     nactors actor handles (ray__store_hold_inner) */
  uint32_t ninner;                /* the refs in `inner` */
  bool small;                     /* the header is an rfree small block (ray__rfree_alloc_small) */
  struct ray__rfree_home_s *home; /* the allocating thread's (rfree.h), or NULL */
  /* Memory accounting and spilling (memory.c): */
  /* NULL once the entry has left its store (views may outlive the store). */
  _Atomic(struct ray__store_s *) st;
  size_t acct;                /* bytes reserved for the payload in memory */
  uint64_t tick;              /* last use, for LRU (shard lock) */
  uint64_t sum;               /* checksum of the spilled copy */
  struct ray__segment_s *seg; /* the spill segment holding a copy (RAY__F_FILE) */
  union {
    uint64_t seg_off; /* where in it */
    uint64_t serial;  /* a proxy (never written to disk): which of its lives on this rank */
  };
  struct ray__entry_s *lru_prev, *lru_next; /* in a shard's lru or caches (shard lock) */
  max_align_t inline_data[];                /* RAY__F_INLINE payload */
} ray__entry_t;

/* A list of entries whose memory may be taken back, least recently used
 * first (memory.c). */
typedef struct ray__lru_s {
  struct ray__entry_s *head, *tail;
} ray__lru_t;

typedef struct ray__shard_s {
  ray__lock_t mu;
  ray__entry_t **buckets;
  size_t mask; /* buckets - 1 */
  size_t count;
  uint64_t created;
  uint64_t freed;
  /* Bytes reserved from the store's capacity and not yet used (memory.c):
   * a per-shard cache so most puts reserve without touching a shared line. */
  atomic_int_fast64_t budget;
  /* Ready payloads outside their entry, in memory: this rank's objects
   * (spill candidates) and proxies' copies (caches, evicted first). */
  ray__lru_t lru, caches;
} ray__shard_t;

/* Shards padded to their own cache lines so two shard locks never share one. */
typedef union ray__shard_slot_u {
  ray__shard_t s;
  char pad[(sizeof(ray__shard_t) + 63) / 64 * 64];
} ray__shard_slot_t;

/* How the store holds the actor handles inside values
 * (RAY_MSGPACK_EXT_ACTOR): the actor layer's handle references, set by the
 * runtime, so the store calls up into actors only through it. Unset
 * (retain NULL): a value holding a handle is refused (RAY_ENOTFOUND). */
typedef struct ray__actor_hold_s {
  int (*retain)(void *arg, uint64_t id); /* RAY_ENOTFOUND */
  void (*release)(void *arg, uint64_t id);
  void *arg;
} ray__actor_hold_t;

/* Cluster mode: what the store tells the cluster when a proxy (a ref
 * another rank owns) leaves the table, so its owner hears (ray__store_drop).
 * The cluster sets `gone` when it starts and clears it when it stops
 * (ray__store_remote_set with NULL, which waits out calls under way). */
typedef void (*ray__proxy_gone_fn)(void *arg, uint64_t id, uint64_t serial);
/* And how it asks the owner for the value of a proxy: at its first read
 * (store.c), and again once its copy was evicted (ray__spill_restore). The
 * answer comes through ray__store_complete (or ray__store_fail). Any
 * thread, no store lock held. Returns 0 or RAY_ENOMEM. */
typedef int (*ray__proxy_fetch_fn)(void *arg, uint64_t id);
typedef struct ray__remote_hold_s {
  _Atomic(ray__proxy_gone_fn) gone;
  _Atomic(ray__proxy_fetch_fn) fetch;
  void *arg;
  atomic_int busy; /* calls of gone or fetch under way */
} ray__remote_hold_t;

/* A proxy ray__store_hold_inner_borrowing made: its id and which life of it
 * on this rank (its owner counts each). */
typedef struct ray__proxy_s {
  uint64_t id;
  uint64_t serial;
} ray__proxy_t;

typedef struct ray__store_s {
  void *mem; /* the allocation `shards` is aligned within */
  ray__shard_slot_t *shards;
  unsigned nshards;
  unsigned shard_bits;
  size_t inline_threshold;
  /* Capacity (memory.c). */
  uint64_t capacity;
  int64_t chunk;                  /* budget a shard takes from the store at once */
  atomic_int_fast64_t reserved;   /* taken from capacity: used + shard budgets */
  atomic_int_fast64_t high_water; /* the most ever reserved (>= the most ever used) */
  int64_t full_timeout_ms;        /* how long a put waits for memory */
  uv_mutex_t mem_mu;              /* with mem_cv: puts waiting for memory */
  uv_cond_t mem_cv;
  atomic_int mem_waiters;
  atomic_bool mem_stop; /* shutting down: puts stop waiting (RAY_ESHUTDOWN) */
  /* Spilling (memory.c). */
  bool spill_enabled;
  bool spill_dir_owned;  /* made by us: removed at shutdown */
  char *spill_dir;       /* NULL until the first spill when owned */
  uv_mutex_t spill_mu;   /* one spill batch at a time; before any shard lock */
  uint64_t next_segment; /* spill_mu */
  /* The background spiller: wakes when memory in use passes the high
   * watermark and spills until it is under the low one, so puts seldom wait
   * for disk writes themselves. */
  uv_thread_t spiller;
  bool spiller_running;
  uv_mutex_t spiller_mu;
  uv_cond_t spiller_cv;
  uv_cond_t spiller_idle_cv; /* a round ended (ray__spiller_quiesce) */
  bool spiller_kick;         /* spiller_mu */
  bool spiller_stop;         /* spiller_mu */
  atomic_uint_fast64_t tick;
  atomic_uint_fast64_t spilled_bytes_total;
  atomic_uint_fast64_t spill_count;
  atomic_uint_fast64_t restore_count;
  atomic_int_fast64_t bytes_on_disk;
  /* Proxies' copies (memory.c): evicted, and fetched again; readers of an
   * evicted one wait on fetch_cv (with mem_mu) for the fetch to end. */
  atomic_uint_fast64_t evict_count;
  atomic_uint_fast64_t refetch_count;
  atomic_size_t ncaches; /* copies on the shards' caches lists (evictable) */
  uv_cond_t fetch_cv;
  /* Last: the hot fields above keep the places they had before it. */
  ray__actor_hold_t actor_hold;
  ray__remote_hold_t remote;
} ray__store_t;

/* Refs grouped by shard (a counting sort), so a batch takes each lock once:
 * the refs of shard s are refs[order[starts[s]] .. order[starts[s+1]-1]]. */
typedef struct ray__groups_s {
  size_t *order;
  size_t *starts; /* nshards + 1 */
} ray__groups_t;

/* Store options beyond the shard layout. */
typedef struct ray__store_opts_s {
  uint64_t capacity;
  bool spill_enabled;
  const char *spill_dir; /* NULL: a fresh directory under the temp dir */
  int64_t full_timeout_ms;
} ray__store_opts_t;

int ray__store_init(ray__store_t *st, unsigned nshards, size_t inline_threshold,
                    const ray__store_opts_t *opts);
/* Free every entry; entries pinned by views stay alive until released. */
void ray__store_destroy(ray__store_t *st);

/* Ids are handed out in per-thread blocks of RAY__ID_BLOCK (store.c). A
 * whole block maps to one shard, so threads putting at once each stay on
 * their own shard instead of walking the shards in lock-step; within the
 * shard, the bucket key is the id with the shard bits squeezed out, which
 * keeps keys dense. */
#define RAY__ID_BLOCK_BITS 10
#define RAY__ID_BLOCK (1u << RAY__ID_BLOCK_BITS)

static inline unsigned ray__shard_index(const ray__store_t *st, uint64_t id) {
  return (unsigned)(id >> RAY__ID_BLOCK_BITS) & (st->nshards - 1);
}

static inline uint64_t ray__bucket_key(const ray__store_t *st, uint64_t id) {
  return (id & (RAY__ID_BLOCK - 1)) |
         ((id >> (RAY__ID_BLOCK_BITS + st->shard_bits)) << RAY__ID_BLOCK_BITS);
}

static inline ray__shard_t *ray__shard_of(ray__store_t *st, uint64_t id) {
  return &st->shards[ray__shard_index(st, id)].s;
}

/* The entry `id` in shard `sh` (its lock held), or NULL. */
static inline ray__entry_t *ray__shard_find(const ray__store_t *st, ray__shard_t *sh, uint64_t id) {
  ray__entry_t *e = sh->buckets[ray__bucket_key(st, id) & sh->mask];
  while (e != NULL && e->id != id) e = e->next;
  return e;
}

/* A fresh, never used id (thread-local blocks of a global counter), with
 * the owner's rank in its top bits in cluster mode (ADR-006: an id names
 * the rank that owns it; the counter has the low 48 bits). */
uint64_t ray__id_next(void);
#define RAY__ID_RANK_SHIFT 48
#define RAY__ID_MAX_RANKS 65536
/* The rank ids made from now on carry: cluster mode sets it at start (0
 * again when it stops; a single process is rank 0). */
void ray__id_set_owner(unsigned rank);

/* Payload bytes a pending entry holds in place, so that a small result
 * (an i64, an f64, a short string) completes it without a second entry:
 * ray__store_complete_small. */
enum { RAY__SMALL_RESULT = 16 };

/* Allocate an entry with room for `size` payload bytes (inline when small,
 * else a separate block; a PENDING one gets RAY__SMALL_RESULT bytes of room
 * as well), reserving them from the store's capacity (which may spill other
 * objects or wait, see memory.c); refcnt 1, life 1, not yet in the table.
 * NULL on failure, with the reason in ray__entry_error(). */
ray__entry_t *ray__entry_new(ray__store_t *st, size_t size, uint32_t type, uint8_t state);
/* As ray__entry_new for a READY entry, reserving with ray__mem_try_reserve:
 * never spills or waits (RAY_ESTOREFULL in ray__entry_error() when there
 * is no room now). */
ray__entry_t *ray__entry_try_new(ray__store_t *st, size_t size, uint32_t type);
/* An entry whose payload is the caller's buffer (freed with free_fn(arg)),
 * reserving `size` bytes when `account`. NULL on failure (ray__entry_error). */
ray__entry_t *ray__entry_new_owned(ray__store_t *st, void *data, size_t size, ray_free_fn free_fn,
                                   void *arg, uint32_t type, bool account);
/* A ready entry sharing the payload of the pinned view *view (closed here:
 * its pin passes to the new entry, which drops it when freed, so the
 * source's payload stays in memory and counted there, never spilled).
 * Type 0 (ray__store_complete gives it the pending entry's). NULL when
 * memory ran out (the view is released then). */
ray__entry_t *ray__entry_new_shared(ray__store_t *st, ray_buf_t *view);
/* Why the calling thread's last ray__entry_new* failed: RAY_ENOMEM,
 * RAY_ESTOREFULL, or RAY_ESHUTDOWN (the runtime stopped while it waited). */
int ray__entry_error(void);
/* Drop an entry that is not (or no longer) in the table: release the refs
 * it holds, iteratively (a long chain of nested refs never recurses), and
 * drop the table's hold on it (ray__mem_entry_unpin). */
void ray__store_drop(ray__store_t *st, ray__entry_t *e);

/* Insert a new entry (it has a fresh id). Never fails. */
void ray__store_insert(ray__store_t *st, ray__entry_t *e);
/* Insert n entries, each shard lock taken once. Errors: RAY_ENOMEM. */
int ray__store_insert_batch(ray__store_t *st, ray__entry_t **es, size_t n);

/* Replace the pending entry with `done`'s id by `done` (READY or FAILED),
 * waking its watchers. If the id is no longer referenced, `done` is dropped
 * (with the refs it holds) and 0 returned. A proxy whose copy was evicted
 * takes the value again the same way (its fetch's readers woken); a FAILED
 * `done` only ends that fetch with its code (dropped; 0). Errors: RAY_EBUSY
 * (not pending: `done` is dropped). */
int ray__store_complete(ray__store_t *st, ray__entry_t *done);
/* Complete the pending entry `id` in place with `size` <= RAY__SMALL_RESULT
 * bytes, which the caller has reserved (ray__mem_reserve): READY, its
 * watchers woken, one lock round trip and no allocation. If the id is no
 * longer referenced (0) or not pending (RAY_EBUSY), the reservation is
 * released. */
int ray__store_complete_small(ray__store_t *st, uint64_t id, const void *data, size_t size);
/* Fail every pending entry in place with `code` (no payload). */
void ray__store_fail_all_pending(ray__store_t *st, int code);
/* Fail in place with `code` every pending proxy, and every one whose copy
 * was evicted, of an object rank `rank` owns (cluster mode: that rank was
 * lost, its values will never come again). */
void ray__store_fail_proxies_of(ray__store_t *st, unsigned rank, int code);
/* Fail the pending entry `id`: the one way an entry fails (shutdown's
 * ray__store_fail_all_pending aside). With `err`, its encoding becomes the
 * payload (flagged RAY__F_ERROR, the entry's code err's code); `cause_id`,
 * when not 0, is a failed object the error continues with, on which the
 * failed entry then holds a reference. Without `err`, or when its payload
 * cannot be made and `must_land`, the entry fails in place with the bare
 * code (no allocation), so a failure always lands. Returns 0 (also when
 * nobody references `id` any more), RAY_EBUSY (not pending), or, when the
 * payload cannot be made and !must_land (the entry is then left pending),
 * RAY_ENOMEM, RAY_ESTOREFULL or RAY_ESHUTDOWN. For a proxy whose copy was
 * evicted it ends the fetch under way with `code` (ray__store_complete). */
int ray__store_fail(ray__store_t *st, uint64_t id, int code, const ray_error_t *err,
                    uint64_t cause_id, bool must_land);

/* Reference counting. Errors: RAY_ENOTFOUND. */
int ray__store_retain(ray__store_t *st, uint64_t id);
int ray__store_release(ray__store_t *st, uint64_t id);
/* The same for n refs, each shard lock taken once. Retaining is all or
 * nothing (RAY_ENOTFOUND: none retained); releasing skips unknown refs and
 * returns RAY_ENOTFOUND if there was one. Errors also: RAY_ENOMEM. */
int ray__store_retain_batch(ray__store_t *st, const ray_ref_t *refs, size_t n);
int ray__store_release_batch(ray__store_t *st, const ray_ref_t *refs, size_t n);

/* Hold what a value names for the entry that will store it: `list` is
 * ray__mp_collect_refs's (refs, and actor handles typed RAY_TYPE_ACTOR).
 * Retains each, all or nothing, and returns a new array in *inner (NULL
 * when n is 0): the object ids first (*nobj), then the actor ids (*nact),
 * as ray__entry_t.inner keeps them; hand it to an entry (which releases
 * all of it when freed) or to ray__store_unhold_inner. Errors:
 * RAY_ENOTFOUND (an unknown or released ref or handle), RAY_ENOMEM. */
int ray__store_hold_inner(ray__store_t *st, const ray_ref_t *list, size_t n, uint64_t **inner,
                          uint32_t *nobj, uint32_t *nact);
/* ray__store_hold_inner for a value that came from another rank (cluster
 * mode): a ref owned by another rank that is not in the table yet gets a
 * proxy (a pending entry with no producer, marked `proxy`, which the
 * cluster fills once it is read: store.c asks through the fetch hook). The proxies made are listed
 * in *made (ray__malloc'd, *nmade; NULL when none), also when it fails (then they are gone again):
 * their owners must hear of each. Errors: as ray__store_hold_inner. */
int ray__store_hold_inner_borrowing(ray__store_t *st, const ray_ref_t *list, size_t n,
                                    uint64_t **inner, uint32_t *nobj, uint32_t *nact,
                                    ray__proxy_t **made, size_t *nmade);
/* Set (the cluster starts) or clear (gone NULL: it stops; returns once no
 * call of the old ones is under way) the proxy hooks. */
void ray__store_remote_set(ray__store_t *st, ray__proxy_gone_fn gone, ray__proxy_fetch_fn fetch,
                           void *arg);
/* Release what ray__store_hold_inner held, when no entry took it, and free
 * the array (NULL: a no-op). */
void ray__store_unhold_inner(ray__store_t *st, uint64_t *inner, uint32_t nobj, uint32_t nact);

/* Pin a view of a ready entry. Returns 0 (pinned), 1 (still pending), 2
 * (spilled: restore it first), or RAY_ENOTFOUND, RAY_ENOMEM, or the error
 * code of a failed entry (any code). A pending proxy found here (or by
 * ray__store_states, ray__store_pin_batch, ray__store_watch) is read: its
 * owner is asked for the value through the fetch hook, once. */
int ray__store_pin(ray__store_t *st, uint64_t id, ray_buf_t *out);
/* Copy a ready entry's payload of at most `cap` bytes into dst, with no
 * view: for the scalar getters (ray_get_i64, ray_get_f64), which would
 * otherwise pin and unpin. Returns 0 (copied: *size and *type set), 1
 * (pending), 2 (spilled, or larger than cap: pin it instead), or
 * RAY_ENOTFOUND, or the error code of a failed entry. */
int ray__store_copy_small(ray__store_t *st, uint64_t id, void *dst, size_t cap, size_t *size,
                          uint32_t *type);
/* ray__store_pin, restoring a spilled object from disk first, or fetching
 * an evicted proxy's copy from its owner again (waiting up to `deadline`,
 * an absolute uv_hrtime; UINT64_MAX: until it comes, fails or shutdown).
 * Returns 0, 1 (pending), or an error (RAY_EIO when the file is unreadable
 * or its checksum does not match, RAY_ESTOREFULL, RAY_ENOMEM,
 * RAY_ETIMEDOUT, the fetch's failure, ...). The cluster's communication
 * thread, which delivers fetches, calls it with deadline 0 only (it asks
 * and returns RAY_ETIMEDOUT without waiting). */
int ray__store_pin_ready_until(ray__store_t *st, uint64_t id, ray_buf_t *out, uint64_t deadline);
/* ray__store_pin_ready_until with no deadline. */
int ray__store_pin_ready(ray__store_t *st, uint64_t id, ray_buf_t *out);
/* Like ray__store_pin, but also pins a failed entry's payload (the encoded
 * error) and reports its state in *state. */
int ray__store_pin_any(ray__store_t *st, uint64_t id, ray_buf_t *out, int *state);

/* ---- memory.c: an entry's memory (capacity, freeing, spilling,
 * restoring). It sits below the table: nothing here calls store.c. ---- */

/* The calling thread has taken a new block of ids starting at `id`: its
 * home shard (whose budget its reservations and releases use) is that
 * block's from now on. Called by ray__id_next only. */
void ray__mem_set_home(uint64_t id);
/* Reserve n payload bytes from the capacity: from the calling thread's
 * home shard budget, else from the store, else after evicting least
 * recently used proxies' copies, else after spilling least recently used
 * objects, else after waiting up to full_timeout_ms for frees
 * (a saturated deadline, ray__sched_deadline; the wait looks at shutdown every
 * 100 ms). Errors: RAY_ESTOREFULL, RAY_ESHUTDOWN. */
int ray__mem_reserve(ray__store_t *st, size_t n);
/* As ray__mem_reserve, but only what needs neither spilling nor waiting
 * (evicting proxies' copies included; the background spiller is still
 * kicked past the high mark): for a
 * thread that must not block (cluster mode's communication thread).
 * Errors: RAY_ESTOREFULL (no room now, or n above the capacity). */
int ray__mem_try_reserve(ray__store_t *st, size_t n);
/* Give n bytes back, into the calling thread's home shard budget. */
void ray__mem_release(ray__store_t *st, size_t n);
/* Settle an entry's accounts with its store (when it leaves the table):
 * release the memory it reserved and its spill segment; from then on it
 * never touches the store (e->st NULL). */
void ray__mem_entry_detach(ray__entry_t *e);
/* Free an entry that never entered the table (or has left it, life 0):
 * its payload (free_fn for an owned one), its accounts, the entry. Does not
 * release the refs in `inner` (see ray__store_drop). */
void ray__mem_entry_free(ray__entry_t *e);
/* Free the header of an entry that no other thread has seen and that owns
 * nothing yet (ray__entry_new's failure path). */
void ray__mem_entry_discard(ray__entry_t *e);
/* Drop one `life` unit; frees the entry when it was the last. */
void ray__mem_entry_unpin(ray__entry_t *e);
/* The same, for a view released by the host: `store_live` says the runtime
 * is up (the caller holds the API guard); otherwise the entry's store may
 * be freed and is not looked at. */
void ray__mem_entry_unpin_view(ray__entry_t *e, bool store_live);
/* Shutdown: puts waiting for memory, and any that would wait from now on,
 * fail with RAY_ESHUTDOWN. */
void ray__mem_stop(ray__store_t *st);
/* Bring a spilled object back into memory: from disk, or, for a proxy
 * whose copy was evicted, from its owner (through the store's fetch hook;
 * waits up to `deadline`, see ray__store_pin_ready_until). 0 when it is in
 * memory now (or failed meanwhile: pin it to see). Errors: RAY_ENOTFOUND,
 * RAY_EIO, RAY_ESTOREFULL, RAY_ENOMEM, RAY_ETIMEDOUT, RAY_ESHUTDOWN, or the
 * code the owner's fetch failed with. */
int ray__spill_restore(ray__store_t *st, uint64_t id, uint64_t deadline);
/* An evicted proxy's fetch ended (shard lock held): `code` 0 when its copy
 * is back, else why not (its readers return it). */
void ray__mem_fetch_end(ray__entry_t *e, int code);
/* Wake the readers waiting for evicted proxies' copies (no lock held). */
void ray__mem_fetch_wake(ray__store_t *st);
/* Ask the owner of proxy `id` for its value through the store's fetch
 * hook (no lock held). Returns 0, RAY_ENOMEM, or RAY_ESHUTDOWN (no hook:
 * the cluster stopped). */
int ray__mem_ask_owner(ray__store_t *st, uint64_t id);
/* LRU upkeep (shard lock held). */
void ray__lru_add(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e);
void ray__lru_remove(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e);
void ray__lru_touch(ray__store_t *st, ray__shard_t *sh, ray__entry_t *e);
/* Bytes held in memory now (used, without shard budgets). */
uint64_t ray__mem_used(ray__store_t *st);
/* A spill segment is the records of one spill batch written back to back,
 * with no header: each record's offset, size and checksum live in its entry
 * (seg_off, size, sum). The checksum of n bytes (pure; not cryptographic,
 * but any change confined to one aligned 8-byte word changes it). */
uint64_t ray__spill_checksum(const void *data, size_t n);
/* Read one record back from an open segment: the `size` bytes at `off`
 * into data[0..size), verified against `sum`. Errors: RAY_EIO (unreadable,
 * the file ends early, an offset past INT64_MAX, or a checksum mismatch:
 * data then holds bytes that must not be handed out). The restore path and
 * the spill_segment fuzz target use it. */
int ray__spill_record_read(int fd, uint64_t off, size_t size, uint64_t sum, void *data);
/* Remove the spill directory if we made it (shutdown). */
void ray__spill_cleanup(ray__store_t *st);
/* Start / stop the background spiller (no-op when spilling is off). */
int ray__spiller_start(ray__store_t *st);
void ray__spiller_stop(ray__store_t *st);
/* Wait until the background spiller has no round due or in flight, or
 * `deadline` (uv_hrtime ns; UINT64_MAX: none). Returns 0 or RAY_ETIMEDOUT. */
int ray__spiller_quiesce(ray__store_t *st, uint64_t deadline);

/* ---- store.c again: watches, producers, grouping ---- */

/* Register `w` on a pending entry (and set w->helpable; a proxy's owner is
 * asked for the value, see ray__store_pin). Returns 0 when registered, 1
 * when the entry is already complete (*status set, `w` not registered), or
 * RAY_ENOTFOUND. If `retain`, also adds a reference (in both success
 * cases). */
int ray__store_watch(ray__store_t *st, uint64_t id, ray__watch_t *w, bool retain, int *status);
/* Remove `w` if it is still registered on `id`. Returns true when removed
 * (it will never be notified), false when it was already notified. */
bool ray__store_unwatch(ray__store_t *st, uint64_t id, ray__watch_t *w);

/* For a pending entry with a producer: call hold(producer) under the shard
 * lock (so the producer cannot go away) and return it in *out.
 * Errors: RAY_ENOTFOUND, RAY_EFINISHED (ready, failed, or no producer). */
int ray__store_claim_producer(ray__store_t *st, uint64_t id, void (*hold)(void *), void **out);
/* The producer is done with a still pending entry (a result that waits on
 * another object): cancelling it is no longer possible. */
void ray__store_clear_producer(ray__store_t *st, uint64_t id);

int ray__groups_make(ray__store_t *st, const ray_ref_t *refs, size_t n, ray__groups_t *g);
void ray__groups_free(ray__groups_t *g);

/* The state of each of refs (grouped by shard in g, each shard lock taken
 * once), without touching payloads: states[i] RAY__PENDING, RAY__READY,
 * RAY__FAILED, or -1 when the ref is unknown. */
void ray__store_states(ray__store_t *st, const ray_ref_t *refs, const ray__groups_t *g,
                       int8_t *states);
/* The same look, also pinning (as ray__store_pin) each ready ref that is in
 * memory and has no view in out[i] yet (out[i].priv_ NULL); codes[i] is 0,
 * the code of a failed ref, RAY_ENOTFOUND, or RAY_ENOMEM (no view slot). A
 * ready ref that is spilled stays unpinned with code 0: restore it
 * (ray__spill_restore) and look again. Returns how many out[] hold a view. */
size_t ray__store_pin_batch(ray__store_t *st, const ray_ref_t *refs, const ray__groups_t *g,
                            int8_t *states, int *codes, ray_buf_t *out);
/* The table's counters summed over the shards (each shard's read under its
 * lock, so they agree per shard): objects in it, ever created, ever freed. */
void ray__store_counts(ray__store_t *st, uint64_t *objects, uint64_t *created, uint64_t *freed);

#endif /* RAY_STORE_H */
