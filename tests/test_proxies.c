/* test_proxies.c - the store's proxies (cluster mode's borrowing, ADR-006):
 * ray__store_hold_inner_borrowing makes a proxy for a ref another rank
 * owns, or holds the one there is; lists the proxies it made even when it
 * fails; a proxy keeps its mark and serial when it completes, stays off the
 * spill list, and tells the proxy-gone hook once, with its serial, when its
 * last reference goes; with the hook cleared nothing is told.
 *
 * One process: the test makes this runtime "rank 1" (ray__id_set_owner),
 * so ids with 2 in their top bits are another rank's. */
#include "test_util.h"

#include "internal.h" /* the store */

typedef struct gone_s {
  int calls;
  uint64_t id, serial;
} gone_t;

static void on_gone(void *arg, uint64_t id, uint64_t serial) {
  gone_t *g = arg;
  g->calls++;
  g->id = id;
  g->serial = serial;
}

static const uint64_t k_theirs = ((uint64_t)2 << RAY__ID_RANK_SHIFT) | 77;

static ray__store_t *begin(gone_t *g) {
  rt_begin();
  ray__id_set_owner(1);
  ray__store_t *st = &ray__rt()->store;
  ray__store_remote_set(st, on_gone, g);
  return st;
}

static void end(ray__store_t *st) {
  ray__store_remote_set(st, NULL, NULL);
  ray__id_set_owner(0);
  rt_end();
}

/* The entry `id`, looked at under its shard lock: whether it is there, a
 * proxy, and on the spill list. */
static bool look(ray__store_t *st, uint64_t id, bool *proxy, bool *in_lru, uint64_t *serial) {
  ray__shard_t *sh = ray__shard_of(st, id);
  ray__lock(&sh->mu);
  ray__entry_t *e = ray__shard_find(st, sh, id);
  if (e != NULL) {
    *proxy = e->proxy;
    *in_lru = e->lru_prev != NULL || sh->lru_head == e;
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
  bool proxy = false, in_lru = true;
  uint64_t seen = 0;
  assert_true(look(st, k_theirs, &proxy, &in_lru, &seen));
  assert_true(proxy);
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
  bool proxy = false, in_lru = true;
  uint64_t seen = 0;
  assert_true(look(st, k_theirs, &proxy, &in_lru, &seen));
  assert_true(proxy);
  assert_false(in_lru);
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
  ray__store_remote_set(st, NULL, NULL);
  uint64_t *inner = NULL;
  (void)hold_new_proxy(st, RAY_TYPE_I64, &inner);
  ray__store_unhold_inner(st, inner, 1, 0);
  assert_int_equal(g.calls, 0);
  end(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_proxy_made_held_and_gone),
      cmocka_unit_test(test_filled_proxy_is_a_cache),
      cmocka_unit_test(test_failure_lists_the_proxies_made),
      cmocka_unit_test(test_no_hook_no_calls),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
