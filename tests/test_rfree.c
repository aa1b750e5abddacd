/* test_rfree.c - frees handed back to the allocating thread (src/rfree.h):
 * a free on the allocating thread is immediate; a free from another thread
 * waits in the allocator's inbox until that thread drains it (or
 * ray__rfree_drain_all runs); a home whose thread has ended frees directly
 * and is reused by the next thread; small blocks come from the thread's
 * slabs (src/slab.h) in address order, go back to their slab from any
 * thread, and outlive their thread as orphans until the last is freed; and
 * through the runtime, results that workers drop in a chain are all freed
 * by shutdown. */
#define _POSIX_C_SOURCE 200809L
#include "test_util.h"

#include "rfree.h"
#include "slab.h"

#include <string.h>

static void test_same_thread_frees_at_once(void **state) {
  (void)state;
  ray__alloc_track(true);
  ray__rfree_home_t *home = ray__rfree_home();
  assert_non_null(home);
  assert_ptr_equal(ray__rfree_home(), home); /* one per thread */
  void *b = ray__malloc(64);
  assert_non_null(b);
  assert_int_equal(ray__alloc_outstanding(), 1);
  ray__rfree(home, b);
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__rfree(home, NULL); /* a no-op */
  void *c = ray__malloc(16);
  ray__rfree(NULL, c); /* no home: freed at once */
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__alloc_track(false);
}

typedef struct {
  ray__rfree_home_t *home;
  void *blocks[3];
  int n;
} remote_t;

static void free_remotely(void *arg) {
  remote_t *r = arg;
  for (int i = 0; i < r->n; i++) ray__rfree(r->home, r->blocks[i]);
}

static void test_remote_free_waits_for_the_owner(void **state) {
  (void)state;
  ray__alloc_track(true);
  remote_t r = {.home = ray__rfree_home(), .n = 3};
  for (int i = 0; i < r.n; i++) assert_non_null(r.blocks[i] = ray__malloc(32));
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, free_remotely, &r), 0);
  uv_thread_join(&t);
  assert_int_equal(ray__alloc_outstanding(), 3); /* in our inbox, not freed */
  ray__rfree_drain();
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__rfree_drain(); /* empty: nothing to do */
  /* ray__rfree_drain_all, from any thread, empties every inbox. */
  for (int i = 0; i < r.n; i++) assert_non_null(r.blocks[i] = ray__malloc(32));
  assert_int_equal(uv_thread_create(&t, free_remotely, &r), 0);
  uv_thread_join(&t);
  assert_int_equal(ray__alloc_outstanding(), 3);
  ray__rfree_drain_all();
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__alloc_track(false);
}

/* A thread makes a block and ends: its home is closed. */
typedef struct {
  ray__rfree_home_t *home;
  void *block;
} made_t;

static void make_and_end(void *arg) {
  made_t *m = arg;
  m->home = ray__rfree_home();
  m->block = ray__malloc(48);
}

static void take_home(void *arg) {
  *(ray__rfree_home_t **)arg = ray__rfree_home();
}

static void test_closed_home_frees_directly_and_is_reused(void **state) {
  (void)state;
  ray__alloc_track(true);
  made_t m = {0};
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, make_and_end, &m), 0);
  uv_thread_join(&t); /* its exit hook closed the home */
  assert_non_null(m.home);
  assert_int_equal(ray__alloc_outstanding(), 1);
  ray__rfree(m.home, m.block); /* from this thread, to an ended one */
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__rfree_home_t *next = NULL;
  assert_int_equal(uv_thread_create(&t, take_home, &next), 0);
  uv_thread_join(&t);
  assert_ptr_equal(next, m.home); /* the ended thread's home, reopened, closed again */
  ray__alloc_track(false);
}

/* Small blocks: the lowest free slot of a slab first; counted like
 * allocations; a slab with no block out is kept or trimmed. */
static void test_small_blocks_in_address_order(void **state) {
  (void)state;
  ray__rfree_trim();
  size_t slabs = ray__slab_count();
  ray__alloc_track(true);
  enum { N = 10 };
  char *b[N];
  for (int i = 0; i < N; i++) {
    assert_non_null(b[i] = ray__rfree_alloc_small());
    assert_int_equal((uintptr_t)b[i] % 16, 0);
    if (i > 0) assert_ptr_equal(b[i], b[i - 1] + RAY__RFREE_SMALL); /* one fresh slab */
    memset(b[i], i, RAY__RFREE_SMALL);                              /* all of it is ours */
  }
  assert_int_equal(ray__slab_count(), slabs + 1);
  assert_int_equal(ray__alloc_outstanding(), N);
  ray__rfree_home_t *home = ray__rfree_home();
  ray__rfree_small(home, b[5]);
  ray__rfree_small(home, b[2]);
  assert_int_equal(ray__alloc_outstanding(), N - 2);
  assert_ptr_equal(ray__rfree_alloc_small(), b[2]); /* the lowest first */
  assert_ptr_equal(ray__rfree_alloc_small(), b[5]);
  for (int i = 0; i < N; i++) ray__rfree_small(home, b[i]);
  ray__rfree_small(home, NULL); /* a no-op */
  assert_int_equal(ray__alloc_outstanding(), 0);
  assert_int_equal(ray__slab_count(), slabs + 1); /* empty, kept */
  ray__rfree_trim();
  assert_int_equal(ray__slab_count(), slabs);
  ray__alloc_track(false);
}

static void test_small_block_failure_injection(void **state) {
  (void)state;
  ray__alloc_track(true);
  ray__alloc_fail_after(1, false);
  assert_null(ray__rfree_alloc_small());
  assert_true(ray__alloc_failed());
  void *b = ray__rfree_alloc_small(); /* not sticky: the next one works */
  assert_non_null(b);
  ray__rfree_small(ray__rfree_home(), b);
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__alloc_fail_after(0, false);
  ray__alloc_track(false);
  ray__rfree_trim();
}

/* Another thread's free of a small block counts at once, and the block
 * waits in our inbox until we drain it (ray__rfree_drain_all, run by
 * another thread, leaves it there: only we may touch our slabs). */
static void free_small_remotely(void *arg) {
  remote_t *r = arg;
  for (int i = 0; i < r->n; i++) ray__rfree_small(r->home, r->blocks[i]);
}

static void drain_all(void *arg) {
  (void)arg;
  ray__rfree_drain_all();
}

static void test_small_remote_free_goes_home(void **state) {
  (void)state;
  ray__rfree_trim();
  size_t slabs = ray__slab_count();
  ray__alloc_track(true);
  remote_t r = {.home = ray__rfree_home(), .n = 3};
  for (int i = 0; i < r.n; i++) assert_non_null(r.blocks[i] = ray__rfree_alloc_small());
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, free_small_remotely, &r), 0);
  uv_thread_join(&t);
  assert_int_equal(ray__alloc_outstanding(), 0); /* counted as freed */
  assert_int_equal(uv_thread_create(&t, drain_all, NULL), 0);
  uv_thread_join(&t);
  /* Still in our inbox: the slots are not free, so the next block is new. */
  void *next = ray__slab_alloc();
  assert_ptr_equal(next, (char *)r.blocks[2] + RAY__RFREE_SMALL);
  ray__slab_free(next);
  ray__rfree_drain(); /* now they are back */
  assert_ptr_equal(ray__rfree_alloc_small(), r.blocks[0]);
  ray__rfree_small(r.home, r.blocks[0]);
  ray__rfree_trim();
  assert_int_equal(ray__slab_count(), slabs);
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__alloc_track(false);
}

/* A thread allocates small blocks and ends: its slab stays, an orphan,
 * until the last block comes back (from this thread, to a closed home). */
typedef struct {
  ray__rfree_home_t *home;
  void *blocks[3];
} orphan_t;

static void alloc_small_and_end(void *arg) {
  orphan_t *o = arg;
  o->home = ray__rfree_home();
  for (int i = 0; i < 3; i++) o->blocks[i] = ray__rfree_alloc_small();
  ray__rfree_small(o->home, o->blocks[1]); /* one back before the end */
}

/* Run alloc_small_and_end on a thread of its own, to its end. */
static void make_orphan(orphan_t *o) {
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, alloc_small_and_end, o), 0);
  uv_thread_join(&t);
}

static void test_small_blocks_outlive_their_thread(void **state) {
  (void)state;
  size_t slabs = ray__slab_count();
  ray__alloc_track(true);
  orphan_t o = {0};
  make_orphan(&o);
  assert_non_null(o.blocks[0]);
  assert_non_null(o.blocks[2]);
  assert_int_equal(ray__alloc_outstanding(), 2);
  assert_int_equal(ray__slab_count(), slabs + 1); /* the orphan */
  memset(o.blocks[0], 7, RAY__RFREE_SMALL);       /* still ours to use */
  ray__rfree_small(o.home, o.blocks[0]);
  assert_int_equal(ray__slab_count(), slabs + 1);
  ray__rfree_small(o.home, o.blocks[2]); /* the last: the slab goes */
  assert_int_equal(ray__slab_count(), slabs);
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__alloc_track(false);
}

/* The orphan's home is reused by a new thread while blocks of the ended
 * thread are still out: a free to that home lands in the new thread's
 * inbox, and its drain hands the block back to the orphaned slab. */
typedef struct {
  ray__rfree_home_t *home;
  rt_latch_t freed, drained;
} reuser_t;

static void reuse_and_drain(void *arg) {
  reuser_t *r = arg;
  r->home = ray__rfree_home(); /* the ended thread's */
  rt_latch_signal(&r->drained);
  rt_latch_wait(&r->freed, 1);
  ray__rfree_drain();
  rt_latch_signal(&r->drained);
}

static void test_orphan_block_through_a_reused_home(void **state) {
  (void)state;
  size_t slabs = ray__slab_count();
  ray__alloc_track(true);
  orphan_t o = {0};
  make_orphan(&o);
  ray__rfree_small(o.home, o.blocks[0]); /* closed: back to the orphan at once */
  assert_int_equal(ray__slab_count(), slabs + 1);
  reuser_t r;
  rt_latch_init(&r.freed);
  rt_latch_init(&r.drained);
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, reuse_and_drain, &r), 0);
  rt_latch_wait(&r.drained, 1);
  assert_ptr_equal(r.home, o.home);      /* reopened for the new thread */
  ray__rfree_small(o.home, o.blocks[2]); /* into its inbox, not the slab */
  assert_int_equal(ray__slab_count(), slabs + 1);
  rt_latch_signal(&r.freed);
  rt_latch_wait(&r.drained, 2);
  assert_int_equal(ray__slab_count(), slabs); /* its drain returned the last block */
  uv_thread_join(&t);
  rt_latch_destroy(&r.freed);
  rt_latch_destroy(&r.drained);
  assert_int_equal(ray__alloc_outstanding(), 0);
  ray__alloc_track(false);
}

/* A thread that can get no thread-exit hook has no home, so no slabs: its
 * entry headers come from malloc, and everything still works and is freed. */
typedef struct {
  int rc_put, rc_get;
  int64_t got;
  size_t slabs_before, slabs_after;
} homeless_t;

static void put_without_home(void *arg) {
  homeless_t *h = arg;
  ray_stats_t st;
  (void)ray_stats(&st); /* the API guard's hook is in: the next one is rfree's */
  h->slabs_before = ray__slab_count();
  ray__thread_at_exit_fail_next(1);
  ray_ref_t r = {0};
  h->rc_put = ray_put_i64(41, &r);
  ray__thread_at_exit_fail_next(0);
  h->slabs_after = ray__slab_count();
  h->rc_get = h->rc_put == 0 ? ray_get_i64(r, 0, &h->got) : -1;
  if (h->rc_put == 0) (void)ray_ref_release(r);
}

static void test_no_home_falls_back_to_malloc(void **state) {
  (void)state;
  rt_begin();
  homeless_t h = {0};
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, put_without_home, &h), 0);
  uv_thread_join(&t);
  assert_rc(h.rc_put, 0);
  assert_rc(h.rc_get, 0);
  assert_true(h.got == 41);
  assert_int_equal(h.slabs_after, h.slabs_before); /* no slab made for it */
  rt_end();                                        /* nothing outstanding */
}

/* Through the runtime: each link of a chain drops the previous result on a
 * worker, which hands the entry back to this thread; shutdown frees what
 * is still in an inbox, so nothing is outstanding after it (rt_end). */
static int inc(ray_task_ctx_t *ctx, void *arg) {
  (void)arg;
  int64_t v = 0;
  int rc = ray_ctx_arg_i64(ctx, 0, &v);
  return rc != 0 ? rc : ray_return_i64(ctx, 0, v + 1);
}

static void test_chain_entries_all_freed(void **state) {
  (void)state;
  rt_begin();
  ray_function_t fn;
  assert_rc(ray_function_register("inc", inc, NULL, (uint32_t[]){RAY_TYPE_I64}, 1, &fn), 0);
  int n = rt_iters(2000, 200);
  ray_arg_t a = ray_arg_i64(0);
  ray_ref_t prev;
  assert_rc(ray_task_submit(fn, &a, 1, NULL, &prev), 0);
  for (int i = 1; i < n; i++) {
    ray_ref_t next;
    a = ray_arg_ref(prev);
    assert_rc(ray_task_submit(fn, &a, 1, NULL, &next), 0);
    assert_rc(ray_ref_release(prev), 0);
    prev = next;
  }
  int64_t v = 0;
  assert_rc(ray_get_i64(prev, RAY_TIMEOUT_INFINITE, &v), 0);
  assert_true(v == n);
  assert_rc(ray_ref_release(prev), 0);
  assert_rc(ray__quiesce(RAY_TIMEOUT_INFINITE), 0);
  assert_int_equal(rt_stats().objects, 0);
  rt_end();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_thread_frees_at_once),
      cmocka_unit_test(test_remote_free_waits_for_the_owner),
      cmocka_unit_test(test_closed_home_frees_directly_and_is_reused),
      cmocka_unit_test(test_small_blocks_in_address_order),
      cmocka_unit_test(test_small_block_failure_injection),
      cmocka_unit_test(test_small_remote_free_goes_home),
      cmocka_unit_test(test_small_blocks_outlive_their_thread),
      cmocka_unit_test(test_orphan_block_through_a_reused_home),
      cmocka_unit_test(test_no_home_falls_back_to_malloc),
      cmocka_unit_test(test_chain_entries_all_freed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
