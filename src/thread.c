/* thread.c - the library's threads: creation and join, counted so a test
 * can assert that a shutdown left none behind; the calling thread's role;
 * and the one thread-exit mechanism every per-thread registry uses.
 *
 * Counting: ray__thread_create counts a thread in once the system has
 * started it, ray__thread_join counts it out once it has ended, so after a
 * clean shutdown the count is 0 (across runtimes: it is process-wide). A
 * test can make the next n creations fail (ray__thread_fail_next) to drive
 * the paths that handle a refused thread, and the next n thread-exit hook
 * registrations (ray__thread_at_exit_fail_next) for a thread with no key.
 *
 * Thread exit: the API guard's per-thread record (guard.c) and the view
 * cache's free slots (view.c) must go back to their pools when a thread
 * ends, whichever thread it is (the host's too). libuv's keys have no
 * destructor, so one C11 tss key with a destructor carries them all: each
 * registry keeps a hook node in its own thread-local storage and links it
 * into the thread's list (ray__thread_at_exit); the key's destructor runs
 * the list. The key's value is only a marker that the list is non-empty.
 * A hook that registers again while hooks run (its state was used by a
 * later destructor) makes the key's value non-NULL again, so the system
 * runs another round (bounded by its destructor iterations).
 *
 * Invariants: this file calls no other file of the library (the bottom
 * layer); the hook lists are thread-local, so no lock: only the one-time
 * key creation is shared, under uv_once. */
#include "thread.h"

#include <stdatomic.h>
#include <threads.h>

#include "rustyray.h" /* RAY_E* */
#include "testing.h"  /* ray__threads_alive, ray__thread_fail_next */

_Thread_local int ray__thread_role RAY__TLS_FAST;

static atomic_int threads_alive;
static atomic_int threads_to_fail; /* test hook: ray__thread_fail_next */
static atomic_int exits_to_fail;   /* test hook: ray__thread_at_exit_fail_next */

void ray__thread_fail_next(int n) {
  atomic_store(&threads_to_fail, n < 0 ? 0 : n);
}

void ray__thread_at_exit_fail_next(int n) {
  atomic_store(&exits_to_fail, n < 0 ? 0 : n);
}

/* Take one armed failure of `counter`: whether this call must fail. */
static bool take_failure(atomic_int *counter) {
  int left = atomic_load_explicit(counter, memory_order_relaxed);
  while (left > 0 && !atomic_compare_exchange_weak(counter, &left, left - 1)) {
  }
  return left > 0;
}

int ray__thread_create(uv_thread_t *t, void (*fn)(void *), void *arg) {
  if (take_failure(&threads_to_fail)) return RAY_EIO;
  if (uv_thread_create(t, fn, arg) != 0) return RAY_EIO;
  atomic_fetch_add(&threads_alive, 1);
  return 0;
}

void ray__thread_join(uv_thread_t *t) {
  uv_thread_join(t);
  atomic_fetch_sub(&threads_alive, 1);
}

int ray__threads_alive(void) {
  return atomic_load(&threads_alive);
}

/* ---- Thread exit ---- */

static uv_once_t exit_once = UV_ONCE_INIT;
static tss_t exit_key;
static bool exit_key_ok;
static _Thread_local ray__thread_exit_t *tls_exits; /* armed hooks, newest first */

/* The key's destructor, on the exiting thread (the system cleared the
 * key's value before the call). Detach the list first: a hook that
 * registers again starts a new list, and the system's next round runs it. */
static void run_exits(void *marker) {
  (void)marker;
  ray__thread_exit_t *h = tls_exits;
  tls_exits = NULL;
  while (h != NULL) {
    ray__thread_exit_t *next = h->next;
    h->armed = false;
    h->fn(h);
    h = next;
  }
}

static void exit_init(void) {
  exit_key_ok = tss_create(&exit_key, run_exits) == thrd_success;
}

int ray__thread_cond_wait_until(uv_cond_t *cv, uv_mutex_t *mu, uint64_t deadline) {
  if (deadline == UINT64_MAX) {
    uv_cond_wait(cv, mu);
    return 0;
  }
  uint64_t now = uv_hrtime();
  if (now >= deadline) return RAY_ETIMEDOUT;
  (void)uv_cond_timedwait(cv, mu, deadline - now);
  return 0;
}

int ray__thread_at_exit(ray__thread_exit_t *h) {
  if (h->armed) return 0;
  uv_once(&exit_once, exit_init);
  if (!exit_key_ok || take_failure(&exits_to_fail)) return RAY_ENOMEM;
  /* The value only needs setting when the list was empty: the destructor
   * runs while it is non-NULL, and clears it. */
  if (tls_exits == NULL && tss_set(exit_key, &tls_exits) != thrd_success) return RAY_ENOMEM;
  h->armed = true;
  h->next = tls_exits;
  tls_exits = h;
  return 0;
}
