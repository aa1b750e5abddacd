/* test_proxies.c - the store's proxies (cluster mode's borrowing, ADR-006):
 * ray__store_hold_inner_borrowing makes a proxy for a ref another rank
 * owns, or holds the one there is; lists the proxies it made even when it
 * fails; a proxy keeps its mark and serial when it completes, stays off
 * the spill list (on the caches list instead), and tells the proxy-gone
 * hook once, with its serial, when its last reference goes; with the hook
 * cleared nothing is told. A filled proxy's copy is a cache: under memory
 * pressure it is evicted before any object of ours is spilled and never
 * written to disk; its next reader asks the fetch hook once for all
 * readers and gets the value when it lands again (holding what it names,
 * as before), or the fetch's failure, RAY_ETIMEDOUT at its deadline,
 * RAY_ESHUTDOWN with no hook, the owner's loss; a task taking it as an
 * argument waits for it on its worker. A proxy's owner is asked for the
 * value at its first read only, once; an ask that cannot go fails it.
 *
 * One process: the test makes this runtime "rank 1" (ray__id_set_owner),
 * so ids with 2 in their top bits are another rank's. */
#include "test_util.h"

#include "internal.h" /* the store */

/* What the cluster's hooks saw (fetches may come from a worker: `asked`
 * is posted after each when `post`). */
typedef struct gone_s {
  int calls;
  uint64_t id, serial;
  atomic_int fetches;
  uint64_t fetched;
  int answer; /* what the fetch hook returns */
  bool post;
  uv_sem_t asked;
} gone_t;

static void on_gone(void *arg, uint64_t id, uint64_t serial) {
  gone_t *g = arg;
  g->calls++;
  g->id = id;
  g->serial = serial;
}

static int on_fetch(void *arg, uint64_t id) {
  gone_t *g = arg;
  g->fetched = id;
  atomic_fetch_add(&g->fetches, 1);
  if (g->post) uv_sem_post(&g->asked);
  return g->answer;
}

static const uint64_t k_theirs = ((uint64_t)2 << RAY__ID_RANK_SHIFT) | 77;

static ray__store_t *begin_cfg(gone_t *g, const ray_config_t *cfg) {
  rt_begin_cfg(cfg);
  ray__id_set_owner(1);
  ray__store_t *st = &ray__rt()->store;
  ray__store_remote_set(st, on_gone, on_fetch, g);
  return st;
}

static ray__store_t *begin(gone_t *g) {
  ray_config_t cfg;
  rt_config(&cfg);
  return begin_cfg(g, &cfg);
}

static void end(ray__store_t *st) {
  ray__store_remote_set(st, NULL, NULL, NULL);
  ray__id_set_owner(0);
  rt_end();
}

/* Whether `e` is on list `l` (shard lock held). */
static bool listed(const ray__lru_t *l, const ray__entry_t *e) {
  for (const ray__entry_t *x = l->head; x != NULL; x = x->lru_next)
    if (x == e) return true;
  return false;
}

/* The entry `id`, looked at under its shard lock: whether it is there, a
 * proxy, on the spill list (lru), and on the list of caches evicted first. */
static bool look(ray__store_t *st, uint64_t id, bool *proxy, bool *in_lru, bool *in_caches,
                 uint64_t *serial) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = ray__shard_find(st, sh, id);
  if (e != NULL) {
    *proxy = e->proxy;
    *in_lru = listed(&sh->lru, e);
    *in_caches = listed(&sh->caches, e);
    *serial = e->serial;
  }
  ray__unlock(&sh->mu);
  return e != NULL;
}

/* Hold k_theirs as a value naming it would, which makes its proxy: the
 * serial of the life made. */
static uint64_t hold_new_proxy(ray__store_t *st, uint32_t type, uint64_t **inner) {
  ray_ref_t list[] = {{k_theirs, type}};
  uint32_t nobj, nact;
  ray__proxy_t *made = NULL;
  size_t nmade = 0;
  assert_rc(ray__store_hold_inner_borrowing(st, list, 1, inner, &nobj, &nact, &made, &nmade), 0);
  assert_int_equal(nmade, 1);
  assert_int_equal(made[0].id, k_theirs);
  assert_true(made[0].serial != 0);
  assert_int_equal(nobj, 1);
  assert_int_equal(nact, 0);
  uint64_t serial = made[0].serial;
  ray__free(made);
  return serial;
}

static void test_proxy_made_held_and_gone(void **state) {
  (void)state;
  gone_t g = {0};
  ray__store_t *st = begin(&g);
  ray_ref_t list[] = {{k_theirs, RAY_TYPE_I64}};
  uint64_t *inner = NULL, *inner2 = NULL;
  uint32_t nobj, nact;
  ray__proxy_t *made = NULL;
  size_t nmade = 0;
  uint64_t serial = hold_new_proxy(st, RAY_TYPE_I64, &inner);
  bool proxy = false, in_lru = true, in_caches = true;
  uint64_t seen = 0;
  assert_true(look(st, k_theirs, &proxy, &in_lru, &in_caches, &seen));
  assert_true(proxy);
  assert_false(in_lru);
  assert_false(in_caches); /* pending: nothing to evict */
  assert_int_equal(seen, serial);
  ray_buf_t b;
  assert_rc(ray_get((ray_ref_t){k_theirs, RAY_TYPE_I64}, 0, &b), RAY_ETIMEDOUT); /* pending */
  /* A second value naming it holds the same proxy: nothing made. */
  assert_rc(ray__store_hold_inner_borrowing(st, list, 1, &inner2, &nobj, &nact, &made, &nmade), 0);
  assert_int_equal(nmade, 0);
  assert_null(made);
  ray__store_unhold_inner(st, inner, 1, 0);
  assert_int_equal(g.calls, 0); /* still held */
  ray__store_unhold_inner(st, inner2, 1, 0);
  assert_int_equal(g.calls, 1); /* its last reference went: told once, with its serial */
  assert_int_equal(g.id, k_theirs);
  assert_int_equal(g.serial, serial);
  assert_rc(ray_get((ray_ref_t){k_theirs, RAY_TYPE_I64}, 0, &b), RAY_ENOTFOUND);
  /* Made again: another life, another serial. */
  assert_true(hold_new_proxy(st, RAY_TYPE_I64, &inner) != serial);
  ray__store_unhold_inner(st, inner, 1, 0);
  assert_int_equal(g.calls, 2);
  end(st);
}

/* Filled (completed by its owner's value), a proxy is a cache: still a
 * proxy with its serial, readable, never on the spill list, and its owner
 * hears when it goes. */
static void test_filled_proxy_is_a_cache(void **state) {
  (void)state;
  gone_t g = {0};
  ray__store_t *st = begin(&g);
  uint64_t *inner = NULL;
  uint64_t serial = hold_new_proxy(st, RAY_TYPE_BYTES, &inner);
  size_t size =
      st->inline_threshold + 4096; /* a block of its own: a spill candidate if not a proxy */
  ray__entry_t *e = ray__entry_new(st, size, RAY_TYPE_BYTES, RAY__READY);
  assert_non_null(e);
  memset(e->data, 0x5A, size);
  e->id = k_theirs;
  assert_rc(ray__store_complete(st, e), 0);
  bool proxy = false, in_lru = true, in_caches = false;
  uint64_t seen = 0;
  assert_true(look(st, k_theirs, &proxy, &in_lru, &in_caches, &seen));
  assert_true(proxy);
  assert_false(in_lru); /* never spilled */
  assert_true(in_caches);
  assert_int_equal(seen, serial);
  ray_buf_t b;
  assert_rc(ray_get((ray_ref_t){k_theirs, RAY_TYPE_BYTES}, 0, &b), 0);
  assert_int_equal(b.size, size);
  assert_int_equal(((const unsigned char *)b.data)[size - 1], 0x5A);
  ray_buf_release(&b);
  ray__store_unhold_inner(st, inner, 1, 0);
  assert_int_equal(g.calls, 1);
  assert_int_equal(g.serial, serial);
  end(st);
}

/* A value naming another rank's ref and an unknown one of ours: refused
 * (RAY_ENOTFOUND), nothing held, and the proxy made on the way is listed
 * and gone again (its owner must hear of both). */
static void test_failure_lists_the_proxies_made(void **state) {
  (void)state;
  gone_t g = {0};
  ray__store_t *st = begin(&g);
  uint64_t ours_unknown = ((uint64_t)1 << RAY__ID_RANK_SHIFT) | 999999;
  ray_ref_t list[] = {{k_theirs, RAY_TYPE_I64}, {ours_unknown, RAY_TYPE_I64}};
  uint64_t *inner = (uint64_t *)1;
  uint32_t nobj = 9, nact = 9;
  ray__proxy_t *made = NULL;
  size_t nmade = 0;
  assert_rc(ray__store_hold_inner_borrowing(st, list, 2, &inner, &nobj, &nact, &made, &nmade),
            RAY_ENOTFOUND);
  assert_null(inner);
  assert_int_equal(nobj, 0);
  assert_int_equal(nmade, 1);
  assert_int_equal(made[0].id, k_theirs);
  assert_int_equal(g.calls, 1);
  assert_int_equal(g.serial, made[0].serial);
  ray__free(made);
  ray_buf_t b;
  assert_rc(ray_get((ray_ref_t){k_theirs, RAY_TYPE_I64}, 0, &b), RAY_ENOTFOUND);
  /* Refs of ours only: the plain hold, no proxies. */
  ray_ref_t mine;
  assert_rc(ray_put_i64(3, &mine), 0);
  assert_int_equal(mine.id >> RAY__ID_RANK_SHIFT, 1);
  assert_rc(ray__store_hold_inner_borrowing(st, &mine, 1, &inner, &nobj, &nact, &made, &nmade), 0);
  assert_int_equal(nmade, 0);
  assert_int_equal(nobj, 1);
  ray__store_unhold_inner(st, inner, nobj, nact);
  assert_rc(ray_ref_release(mine), 0);
  assert_int_equal(g.calls, 1);
  end(st);
}

/* With the hook cleared (the cluster stopped), a proxy that goes tells
 * nobody. */
static void test_no_hook_no_calls(void **state) {
  (void)state;
  gone_t g = {0};
  ray__store_t *st = begin(&g);
  ray__store_remote_set(st, NULL, NULL, NULL);
  uint64_t *inner = NULL;
  (void)hold_new_proxy(st, RAY_TYPE_I64, &inner);
  ray__store_unhold_inner(st, inner, 1, 0);
  assert_int_equal(g.calls, 0);
  end(st);
}

/* ---- Evicted copies ---- */

enum { KIB = 1024 };

/* A 1 MiB store whose puts wait 100 ms for memory at most. */
static ray__store_t *begin_small(gone_t *g, bool spilling) {
  ray_config_t cfg;
  rt_config(&cfg);
  cfg.object_store_memory = 1024 * KIB;
  cfg.enable_spilling = spilling;
  cfg.store_full_timeout_ms = 100;
  return begin_cfg(g, &cfg);
}

/* The owner's value lands in k_theirs's proxy, as a FILL's does: `size`
 * bytes of pattern `seed`, holding `inner` (a ref of ours, or nil). */
static int fill(ray__store_t *st, size_t size, uint64_t seed, ray_ref_t inner) {
  ray__entry_t *e = ray__entry_new(st, size, RAY_TYPE_BYTES, RAY__READY);
  assert_non_null(e);
  rt_fill(e->data, size, seed);
  if (inner.id != 0) {
    uint32_t nobj, nact;
    assert_rc(ray__store_hold_inner(st, &inner, 1, &e->inner, &nobj, &nact), 0);
    e->ninner = nobj;
  }
  e->id = k_theirs;
  return ray__store_complete(st, e);
}

/* Entry `id`'s flags and references (it must be there). */
static uint8_t flags_of(ray__store_t *st, uint64_t id, uint32_t *refcnt) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = ray__shard_find(st, sh, id);
  assert_non_null(e);
  uint8_t f = e->flags;
  if (refcnt != NULL) *refcnt = e->refcnt;
  ray__unlock(&sh->mu);
  return f;
}

static const ray_ref_t k_theirs_ref = {k_theirs, RAY_TYPE_BYTES};

/* A put that needs room evicts the proxy's copy, not an older object of
 * ours, and writes nothing to disk; readers ask once for all and read the
 * value when it lands again, holding what it names as before. */
static void test_cache_evicted_first_and_fetched_again(void **state) {
  (void)state;
  gone_t g = {0};
  ray__store_t *st = begin_small(&g, true);
  uint64_t *inner = NULL;
  uint64_t serial = hold_new_proxy(st, RAY_TYPE_BYTES, &inner);
  char *buf = malloc(640 * KIB);
  assert_non_null(buf);
  rt_fill(buf, 256 * KIB, 1);
  ray_ref_t a, b, named;
  assert_rc(ray_put(buf, 256 * KIB, &a), 0); /* older than the copy */
  assert_rc(ray_put_i64(5, &named), 0);
  assert_rc(fill(st, 256 * KIB, 2, named), 0);
  uint32_t refs = 0;
  (void)flags_of(st, named.id, &refs);
  assert_int_equal(refs, 2); /* ours and the copy's */
  /* 256 + 256 + 640 KiB do not fit in 1 MiB: the copy goes. (The
   * background spiller is kicked only by a reservation that starts above
   * 80% of the capacity; none does in this test, so nothing of ours is
   * spilled behind its back.) */
  rt_fill(buf, 640 * KIB, 3);
  assert_rc(ray_put(buf, 640 * KIB, &b), 0);
  ray_stats_t s = rt_stats();
  assert_int_equal(s.evict_count, 1);
  assert_int_equal(s.spill_count, 0);
  assert_int_equal(s.bytes_spilled, 0);
  assert_true(flags_of(st, k_theirs, NULL) & RAY__F_SPILLED);
  assert_false(flags_of(st, a.id, NULL) & RAY__F_SPILLED);
  (void)flags_of(st, named.id, &refs);
  assert_int_equal(refs, 2); /* an evicted copy still holds what it names */
  /* Its readers: the first asks, the next finds the fetch under way. */
  ray_buf_t v;
  assert_rc(ray_get(k_theirs_ref, 0, &v), RAY_ETIMEDOUT);
  assert_int_equal(atomic_load(&g.fetches), 1);
  assert_int_equal(g.fetched, k_theirs);
  assert_true(flags_of(st, k_theirs, NULL) & RAY__F_FETCHING);
  assert_rc(ray_get_batch(&k_theirs_ref, 1, 0, &v), RAY_ETIMEDOUT);
  assert_int_equal(atomic_load(&g.fetches), 1);
  assert_int_equal(rt_stats().refetch_count, 1);
  /* It lands again (room made first: spilling is not what is tested). */
  rt_release(b);
  assert_rc(fill(st, 256 * KIB, 2, named), 0);
  assert_rc(ray_get(k_theirs_ref, 0, &v), 0);
  assert_int_equal(v.size, 256 * KIB);
  assert_true(rt_check(v.data, v.size, 2));
  ray_buf_release(&v);
  bool proxy = false, in_lru = true, in_caches = false;
  uint64_t seen = 0;
  assert_true(look(st, k_theirs, &proxy, &in_lru, &in_caches, &seen));
  assert_true(proxy);
  assert_false(in_lru);
  assert_true(in_caches);         /* evictable again */
  assert_int_equal(seen, serial); /* the same life */
  assert_false(flags_of(st, k_theirs, NULL) & (RAY__F_SPILLED | RAY__F_FETCHING));
  (void)flags_of(st, named.id, &refs);
  assert_int_equal(refs, 2); /* the old entry let go of what the new one holds */
  /* A second fill of a copy in memory is refused (and dropped). */
  assert_rc(fill(st, 256 * KIB, 2, named), RAY_EBUSY);
  ray__store_unhold_inner(st, inner, 1, 0);
  assert_int_equal(g.calls, 1);
  assert_int_equal(g.serial, serial);
  (void)flags_of(st, named.id, &refs);
  assert_int_equal(refs, 1);
  rt_release(named);
  rt_release(a);
  free(buf);
  assert_int_equal(rt_stats().objects, 0);
  end(st);
}

/* A store with k_theirs's proxy filled with 512 KiB and evicted by a put
 * (spilling off: the put evicts in its own thread); the fetch hook posts
 * `asked`. */
typedef struct evicted_s {
  gone_t g;
  ray__store_t *st;
  uint64_t *inner; /* what holds the proxy */
  ray_ref_t put;
} evicted_t;

static void evicted_begin(evicted_t *ev) {
  *ev = (evicted_t){.g = {.post = true}};
  assert_int_equal(uv_sem_init(&ev->g.asked, 0), 0);
  ev->st = begin_small(&ev->g, false);
  (void)hold_new_proxy(ev->st, RAY_TYPE_BYTES, &ev->inner);
  assert_rc(fill(ev->st, 512 * KIB, 7, RAY_REF_NIL), 0);
  void *buf = calloc(1, 640 * KIB);
  assert_non_null(buf);
  assert_rc(ray_put(buf, 640 * KIB, &ev->put), 0);
  free(buf);
  assert_true(flags_of(ev->st, k_theirs, NULL) & RAY__F_SPILLED);
}

/* Lets go of the proxy and the put (unless let go already: put nil). */
static void evicted_end(evicted_t *ev) {
  ray__store_unhold_inner(ev->st, ev->inner, 1, 0);
  if (ev->put.id != 0) rt_release(ev->put);
  assert_int_equal(rt_stats().objects, 0);
  end(ev->st);
  uv_sem_destroy(&ev->g.asked);
}

/* A thread reading k_theirs (ray_get with timeout_ms), and what it got. */
typedef struct reader_s {
  uv_thread_t th;
  int rc;
  int64_t timeout_ms;
} reader_t;

static void reader_main(void *arg) {
  reader_t *r = arg;
  ray_buf_t v;
  r->rc = ray_get(k_theirs_ref, r->timeout_ms, &v);
  if (r->rc == 0) ray_buf_release(&v);
}

/* Start a reader with no practical bound and wait until it has asked. */
static void reader_start(evicted_t *ev, reader_t *r) {
  *r = (reader_t){.timeout_ms = 60000};
  assert_int_equal(uv_thread_create(&r->th, reader_main, r), 0);
  uv_sem_wait(&ev->g.asked); /* it asked, and waits (or is about to) */
}

static int reader_join(reader_t *r) {
  assert_int_equal(uv_thread_join(&r->th), 0);
  return r->rc;
}

/* A fetch that fails ends its readers' waits with its code, and the next
 * reader asks again; so does a hook that cannot ask; a bounded read of a
 * fetch that does not come times out; with no hook (the cluster stopped),
 * RAY_ESHUTDOWN. */
static void test_evicted_copy_fetch_failures(void **state) {
  (void)state;
  evicted_t ev;
  evicted_begin(&ev);
  ray__store_t *st = ev.st;
  reader_t r;
  reader_start(&ev, &r);
  assert_rc(ray__store_fail(st, k_theirs, RAY_ENOMEM, NULL, 0, true), 0);
  assert_rc(reader_join(&r), RAY_ENOMEM);
  assert_false(flags_of(st, k_theirs, NULL) & RAY__F_FETCHING);
  /* The hook itself fails: that reader gets its code. */
  ev.g.answer = RAY_ENOMEM;
  ray_buf_t v;
  assert_rc(ray_get(k_theirs_ref, 0, &v), RAY_ENOMEM);
  uv_sem_wait(&ev.g.asked);
  assert_int_equal(atomic_load(&ev.g.fetches), 2);
  assert_false(flags_of(st, k_theirs, NULL) & RAY__F_FETCHING);
  /* A fetch that never comes: the read is bounded by its timeout. */
  ev.g.answer = 0;
  assert_rc(ray_get(k_theirs_ref, 20, &v), RAY_ETIMEDOUT);
  uv_sem_wait(&ev.g.asked);
  assert_int_equal(atomic_load(&ev.g.fetches), 3);
  /* It comes late, failed: the next reader asks again. */
  assert_rc(ray__store_fail(st, k_theirs, RAY_EIO, NULL, 0, true), 0);
  assert_rc(ray_get(k_theirs_ref, 0, &v), RAY_ETIMEDOUT);
  uv_sem_wait(&ev.g.asked);
  assert_int_equal(atomic_load(&ev.g.fetches), 4);
  assert_rc(ray__store_fail(st, k_theirs, RAY_EIO, NULL, 0, true), 0);
  /* No hook: nobody to ask. */
  ray__store_remote_set(st, NULL, NULL, NULL);
  assert_rc(ray_get(k_theirs_ref, 0, &v), RAY_ESHUTDOWN);
  assert_int_equal(atomic_load(&ev.g.fetches), 4);
  evicted_end(&ev);
}

/* Its owner lost, an evicted copy fails with RAY_ENODE (as a pending proxy
 * does), code only; its readers waiting wake with it. */
static void test_evicted_copy_owner_lost(void **state) {
  (void)state;
  evicted_t ev;
  evicted_begin(&ev);
  reader_t r;
  reader_start(&ev, &r);
  ray__store_fail_proxies_of(ev.st, 2, RAY_ENODE);
  assert_rc(reader_join(&r), RAY_ENODE);
  ray_buf_t v;
  assert_rc(ray_get(k_theirs_ref, 0, &v), RAY_ENODE);
  ray_error_t *err = rt_get_error(k_theirs_ref);
  assert_int_equal(ray_error_code(err), RAY_ENODE);
  ray_error_free(err);
  evicted_end(&ev);
}

static int sum_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  const void *data = NULL;
  size_t size = 0;
  int rc = ray_ctx_arg_bytes(ctx, 0, &data, &size);
  if (rc != 0) return rc;
  return ray_return_i64(ctx, 0, size == 512 * KIB && rt_check(data, size, 7) ? 1 : 0);
}

/* A task taking an evicted copy as its argument waits for it on its
 * worker (which gives its CPU away meanwhile) and runs on the value. */
static void test_task_waits_for_evicted_argument(void **state) {
  (void)state;
  evicted_t ev;
  evicted_begin(&ev);
  ray_function_t f = rt_register("sum_evicted", sum_task, NULL, rt_t_i64, 1);
  ray_arg_t arg = ray_arg_ref(k_theirs_ref);
  ray_ref_t out = rt_submit(f, &arg, 1, NULL);
  uv_sem_wait(&ev.g.asked); /* its worker asked */
  rt_release(ev.put);       /* room for the value */
  ev.put = RAY_REF_NIL;
  assert_rc(fill(ev.st, 512 * KIB, 7, RAY_REF_NIL), 0);
  assert_int_equal(rt_get_i64(out), 1);
  rt_release(out);
  assert_int_equal(atomic_load(&ev.g.fetches), 1);
  evicted_end(&ev);
}

/* ---- Asked for at the first read ---- */

static const uint64_t k_theirs2 = ((uint64_t)2 << RAY__ID_RANK_SHIFT) | 78;

/* Hold `id` (another rank's) as a value naming it would: its proxy. */
static uint64_t *hold_proxy(ray__store_t *st, uint64_t id) {
  ray_ref_t list[] = {{id, RAY_TYPE_I64}};
  uint64_t *inner = NULL;
  uint32_t nobj, nact;
  ray__proxy_t *made = NULL;
  size_t nmade = 0;
  assert_rc(ray__store_hold_inner_borrowing(st, list, 1, &inner, &nobj, &nact, &made, &nmade), 0);
  assert_int_equal(nmade, 1);
  ray__free(made);
  return inner;
}

/* Complete proxy `id` with the i64 v, as its owner's FILL would. */
static void fill_i64(ray__store_t *st, uint64_t id, int64_t v) {
  char buf[16];
  size_t n = rt_encode_i64(v, buf, sizeof buf);
  ray__entry_t *e = ray__entry_new(st, n, RAY_TYPE_I64, RAY__READY);
  assert_non_null(e);
  memcpy(e->data, buf, n);
  e->id = id;
  assert_rc(ray__store_complete(st, e), 0);
}

static int inc_task(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t v = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &v);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, v + 1);
}

/* A proxy's owner is asked for the value only when something reads it
 * (a get, with timeout 0 too; ray_wait; a task depending on it), once;
 * holding, retaining or passing it on asks nothing; an ask that cannot go
 * fails the proxy with its code. */
static void test_proxy_asked_at_first_read(void **state) {
  (void)state;
  gone_t g = {0};
  ray__store_t *st = begin(&g);
  uint64_t *inner = hold_proxy(st, k_theirs);
  ray_ref_t ref = {k_theirs, RAY_TYPE_I64};
  assert_rc(ray_ref_retain(ref), 0);
  assert_int_equal(atomic_load(&g.fetches), 0); /* made and held: not read */
  ray_buf_t v;
  assert_rc(ray_get(ref, 0, &v), RAY_ETIMEDOUT);
  assert_int_equal(atomic_load(&g.fetches), 1);
  assert_int_equal(g.fetched, k_theirs);
  assert_rc(ray_get(ref, 0, &v), RAY_ETIMEDOUT);
  bool ready = true;
  assert_rc(ray_wait(&ref, 1, 1, 0, &ready), 0);
  assert_false(ready);
  assert_int_equal(atomic_load(&g.fetches), 1); /* once */
  fill_i64(st, k_theirs, 41);
  assert_int_equal(rt_get_i64(ref), 41);
  /* ray_wait is a read too. */
  uint64_t *inner2 = hold_proxy(st, k_theirs2);
  ray_ref_t ref2 = {k_theirs2, RAY_TYPE_I64};
  assert_rc(ray_wait(&ref2, 1, 1, 0, &ready), 0);
  assert_false(ready);
  assert_int_equal(atomic_load(&g.fetches), 2);
  assert_int_equal(g.fetched, k_theirs2);
  ray__store_fail(st, k_theirs2, RAY_EIO, NULL, 0, true);
  ray__store_unhold_inner(st, inner2, 1, 0);
  /* A task depending on one asks for it as it is submitted. */
  inner2 = hold_proxy(st, k_theirs2);
  ray_function_t f = rt_register("inc_borrowed", inc_task, NULL, rt_t_i64, 1);
  ray_arg_t arg = ray_arg_ref(ref2);
  ray_ref_t out = rt_submit(f, &arg, 1, NULL);
  assert_int_equal(atomic_load(&g.fetches), 3);
  fill_i64(st, k_theirs2, 9);
  assert_int_equal(rt_get_i64(out), 10);
  rt_release(out);
  ray__store_unhold_inner(st, inner2, 1, 0);
  /* An ask that cannot go fails the proxy with its code, so a task that
   * only watches it does not wait for an answer never asked. */
  g.answer = RAY_ENOMEM;
  inner2 = hold_proxy(st, k_theirs2);
  out = rt_submit(f, &arg, 1, NULL);
  assert_int_equal(atomic_load(&g.fetches), 4);
  int64_t got = 0;
  assert_rc(ray_get_i64(out, RAY_TIMEOUT_INFINITE, &got), RAY_EDEPFAILED);
  assert_rc(ray_get(ref2, 0, &v), RAY_ENOMEM);
  rt_release(out);
  ray__store_unhold_inner(st, inner2, 1, 0);
  rt_release(ref);
  ray__store_unhold_inner(st, inner, 1, 0);
  assert_int_equal(rt_stats().objects, 0);
  assert_int_equal(g.calls, 4); /* each life told its owner it went */
  end(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_proxy_made_held_and_gone),
      cmocka_unit_test(test_filled_proxy_is_a_cache),
      cmocka_unit_test(test_failure_lists_the_proxies_made),
      cmocka_unit_test(test_no_hook_no_calls),
      cmocka_unit_test(test_cache_evicted_first_and_fetched_again),
      cmocka_unit_test(test_evicted_copy_fetch_failures),
      cmocka_unit_test(test_evicted_copy_owner_lost),
      cmocka_unit_test(test_task_waits_for_evicted_argument),
      cmocka_unit_test(test_proxy_asked_at_first_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
